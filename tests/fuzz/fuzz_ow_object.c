/*
 * Fuzz target for the WAL object decoder: the whole-object parser, and the
 * trailer and index decoders on their own as a reader that fetched only the
 * object's tail would use them. Replayed from tests/fuzz/corpus/fuzz_ow_object
 * by make check (tests/fuzz/fuzz_main.c).
 */
#include "config.h"

#include "objwal/ow_format.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    ow_obj_view v;
    if (ow_obj_parse(data, size, 1, &v, err, sizeof(err)) == OW_OK) {
        /* Whatever parses must describe bytes inside the input. */
        for (uint32_t i = 0; i < v.nentries; i++)
            if (v.entries[i].range.off + v.entries[i].range.len > size)
                abort();
        ow_obj_view_clear(&v);
    }
    if (size >= OW_TRAILER_SIZE) {
        ow_trailer t;
        const uint8_t *tp = data + size - OW_TRAILER_SIZE;
        if (ow_trailer_decode(tp, OW_TRAILER_SIZE, 0, &t, err, sizeof(err)) == OW_OK &&
            t.index_len <= size - OW_TRAILER_SIZE) {
            /* Index taken just before the trailer, whatever the offset says. */
            ow_index_entry *e;
            if (ow_index_decode(tp - t.index_len, t.index_len, &t, &e, err, sizeof(err)) ==
                OW_OK)
                free(e);
        }
    }
    return 0;
}
