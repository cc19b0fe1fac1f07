/*
 * What the fuzz target files share: the target chosen at build time
 * (-DKZ_FUZZ_TARGET=<name>, compared as KZ_TARGET == KZ_T_<name>), and the
 * body of a message target: 2 bytes big-endian version, folded into
 * [minv, maxv], then the message; a message that decodes must encode again
 * without trouble.
 */
#ifndef KZ_FUZZ_MSG_H
#define KZ_FUZZ_MSG_H

#include "codec/kc_arena.h"
#include "codec/kc_buf.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>

#define KZ_CAT(a, b) a##b
#define KZ_XCAT(a, b) KZ_CAT(a, b)
#define KZ_TARGET KZ_XCAT(KZ_T_, KZ_FUZZ_TARGET)

#define KZ_FUZZ_ROUNDTRIP(fn, type, minv, maxv)                                                    \
    static int kz_fuzz_one(const uint8_t *data, size_t size)                                      \
    {                                                                                              \
        if (size < 2)                                                                              \
            return 0;                                                                              \
        int span = (maxv) - (minv) + 1;                                                            \
        int16_t version = (int16_t)((minv) + ((data[0] << 8 | data[1]) % span));                   \
        kc_rd rd;                                                                                  \
        kc_arena a;                                                                                \
        type msg;                                                                                  \
        kc_rd_init(&rd, data + 2, size - 2);                                                       \
        kc_arena_init(&a);                                                                         \
        if (fn##_decode(&rd, version, &a, &msg) == 0) {                                            \
            struct evbuffer *eb = evbuffer_new();                                                  \
            kc_wr w;                                                                               \
            kc_wr_init(&w, eb, NULL);                                                              \
            fn##_encode(&w, version, &msg);                                                        \
            evbuffer_free(eb);                                                                     \
        }                                                                                          \
        kc_arena_destroy(&a);                                                                      \
        return 0;                                                                                  \
    }

#endif
