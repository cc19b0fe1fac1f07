/*
 * Fuzz target for kc_produce_req_decode_head (codec/kc_msg_produce.c), the
 * partition list of a Produce request whose bytes are still arriving
 * (cut-through, proxy/px_cut.c).
 *
 * Input: bytes 0-1 the version (big-endian, folded into 3-9), bytes 2-4 how
 * many more bytes the frame claims beyond those given (big-endian, below
 * 2^20), then the body's first bytes. Checked: every byte read lies in the
 * given bytes (AddressSanitizer), every records field but the last lies in
 * them too, the last one's announced length fits the frame. And a
 * differential check: when nothing more is claimed and the whole request
 * decodes (kc_produce_req_decode) with every topic and the last partition
 * non-empty, the head decodes too, to the same topics, partitions and
 * records. fuzz_main.c replays tests/fuzz/corpus/fuzz_produce_head without
 * libFuzzer.
 */
#include "config.h"

#include "codec/kc_arena.h"
#include "codec/kc_msg.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int kz_in(const uint8_t *base, size_t n, const uint8_t *p, int64_t len)
{
    return p >= base && len >= 0 && (size_t)(p - base) <= n && (uint64_t)len <= n - (size_t)(p - base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    int16_t version = (int16_t)(3 + ((data[0] << 8 | data[1]) % 7));
    size_t extra = ((size_t)data[2] << 16 | (size_t)data[3] << 8 | data[4]) & 0xFFFFF;
    const uint8_t *body = data + 5;
    size_t n = size - 5;
    kc_arena a;
    kc_rd rd;
    kc_produce_req head;
    kc_arena_init(&a);
    kc_rd_init(&rd, body, n);
    if (kc_produce_req_decode_head(&rd, version, n + extra, 61, &a, &head) == 0) {
        if (head.ntopics <= 0)
            abort();
        for (int32_t t = 0; t < head.ntopics; t++) {
            const kc_produce_req_topic *tp = &head.topics[t];
            if (tp->npartitions <= 0 || !kz_in(body, n, (const uint8_t *)tp->name.p, tp->name.len))
                abort();
            for (int32_t p = 0; p < tp->npartitions; p++) {
                kc_bytes r = tp->partitions[p].records;
                int last = t == head.ntopics - 1 && p == tp->npartitions - 1;
                if (!last && r.len >= 0 && !kz_in(body, n, r.p, r.len))
                    abort();
                if (last && (r.len < 0 || !kz_in(body, n + extra, r.p, r.len)))
                    abort(); /* within the frame, not necessarily here yet */
                if (last && !kz_in(body, n, r.p, r.len < 61 ? r.len : 61))
                    abort(); /* the batch header is here */
            }
        }
    }
    kc_arena_destroy(&a);
    if (extra != 0)
        return 0;
    kc_produce_req full;
    kc_arena_init(&a);
    kc_rd_init(&rd, body, n);
    if (kc_produce_req_decode(&rd, version, &a, &full) == 0 && full.ntopics > 0) {
        int ok = 1;
        for (int32_t t = 0; t < full.ntopics; t++)
            ok &= full.topics[t].npartitions > 0;
        if (ok) {
            const kc_produce_req_topic *lt = &full.topics[full.ntopics - 1];
            ok = lt->partitions[lt->npartitions - 1].records.len >= 0;
        }
        if (ok) {
            kc_rd_init(&rd, body, n);
            if (kc_produce_req_decode_head(&rd, version, n, 61, &a, &head) != 0 || head.ntopics != full.ntopics ||
                head.acks != full.acks || head.timeout_ms != full.timeout_ms)
                abort();
            for (int32_t t = 0; t < full.ntopics; t++) {
                const kc_produce_req_topic *x = &full.topics[t], *y = &head.topics[t];
                if (x->npartitions != y->npartitions || x->name.p != y->name.p || x->name.len != y->name.len)
                    abort();
                for (int32_t p = 0; p < x->npartitions; p++)
                    if (x->partitions[p].index != y->partitions[p].index ||
                        x->partitions[p].records.p != y->partitions[p].records.p ||
                        x->partitions[p].records.len != y->partitions[p].records.len)
                        abort();
            }
        }
    }
    kc_arena_destroy(&a);
    return 0;
}
