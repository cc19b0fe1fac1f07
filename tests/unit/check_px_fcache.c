/* The fetch cache (proxy/px_fcache.c): what it keeps, serves and drops. */
#include "config.h"

#include "codec/kc_crc32c.h"
#include "proxy/px_fcache.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_LEN 61 /* a v2 header with no records */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A batch at base of count offsets (header only, CRC correct). */
static void batch(uint8_t *b, int64_t base, int32_t count)
{
    memset(b, 0, BATCH_LEN);
    put32(b, (uint32_t)((uint64_t)base >> 32));
    put32(b + 4, (uint32_t)base);
    put32(b + 8, BATCH_LEN - 12);
    b[16] = 2;
    put32(b + 23, (uint32_t)(count - 1));
    put32(b + 57, (uint32_t)count);
    put32(b + 17, kc_crc32c(0, b + 21, BATCH_LEN - 21));
}

/* A frame of n batches of 10 offsets from base, plus `extra` unrelated bytes. */
static kc_frame *frame_of(int64_t base, int n, size_t extra, kc_fetch_resp_partition *rp, int64_t hwm)
{
    kc_frame *f = kc_frame_new((size_t)n * BATCH_LEN + extra);
    ck_assert_ptr_nonnull(f);
    memset(f->data, 0, f->len);
    for (int i = 0; i < n; i++)
        batch(f->data + extra + (size_t)i * BATCH_LEN, base + 10 * i, 10);
    *rp = (kc_fetch_resp_partition){.high_watermark = hwm, .last_stable_offset = hwm, .log_start_offset = 0,
                                    .naborted_transactions = -1, .preferred_read_replica = -1};
    rp->records.p = f->data + extra;
    rp->records.len = n * BATCH_LEN;
    return f;
}

static const kc_str T = {"t", 1};
/* Topic ids: the topic, and the same name deleted and created again. */
static const kc_uuid ID1 = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};
static const kc_uuid ID2 = {{2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};
#define AGE 60000
#define NOW 1000000
#define KEYID(p, e, id) (&(px_fc_key){.topic = T, .topic_id = (id), .partition = (p), .epoch = (e)})
#define KEY(p, e) KEYID((p), (e), ID1)

static px_fcache_stats fc_stats(px_fcache *c)
{
    px_fcache_stats st;
    px_fcache_stats_get(c, &st);
    return st;
}

START_TEST(test_fcache_hit_miss)
{
    px_fcache *c = px_fcache_new(1 << 20, AGE);
    kc_fetch_resp_partition rp, out;
    kc_frame *f = frame_of(100, 4, 0, &rp, 140), *g = NULL;
    px_fcache_put(c, KEY(0, 5), 0, NOW, f, &rp);
    kc_frame_release(f); /* the cache holds its own reference */
    ck_assert_uint_eq(fc_stats(c).bytes, 4 * BATCH_LEN);
    /* Offset 125 is in the third batch: batches 3 and 4 come back. */
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 5), 0, 125, 1 << 20, NOW, &out, &g), 1);
    ck_assert_int_eq(out.records.len, 2 * BATCH_LEN);
    ck_assert_int_eq(out.high_watermark, 140);
    kc_frame_release(g);
    /* max_bytes: at least one batch. */
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 5), 0, 100, 1, NOW, &out, &g), 1);
    ck_assert_int_eq(out.records.len, BATCH_LEN);
    kc_frame_release(g);
    /* Never past what was fetched: the end (== hwm), other partitions, below. */
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 5), 0, 140, 1 << 20, NOW, &out, &g), 0);
    ck_assert_int_eq(px_fcache_get(c, KEY(1, 5), 0, 100, 1 << 20, NOW, &out, &g), 0);
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 5), 0, 99, 1 << 20, NOW, &out, &g), 0);
    /* read_committed is not served from a read_uncommitted fetch. */
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 5), 1, 100, 1 << 20, NOW, &out, &g), 0);
    /* A new leader epoch drops the partition. */
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 6), 0, 100, 1 << 20, NOW, &out, &g), 0);
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 5), 0, 100, 1 << 20, NOW, &out, &g), 0);
    ck_assert_uint_eq(fc_stats(c).bytes, 0);
    ck_assert_uint_eq(fc_stats(c).hits, 2);
    /* A thread that read the clock just before another one put: its clock
     * is a little behind the segment's birth, which is still served. */
    f = frame_of(100, 4, 0, &rp, 140);
    px_fcache_put(c, KEY(0, 6), 0, NOW + 1, f, &rp);
    kc_frame_release(f);
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 6), 0, 100, 1 << 20, NOW, &out, &g), 1);
    kc_frame_release(g);
    ck_assert_uint_eq(fc_stats(c).expirations, 0);
    px_fcache_free(c);
}
END_TEST

START_TEST(test_fcache_invalidate)
{
    px_fcache *c = px_fcache_new(1 << 20, AGE);
    kc_fetch_resp_partition rp, out;
    kc_frame *g = NULL, *f = frame_of(0, 3, 0, &rp, 30);
    px_fcache_put(c, KEY(0, 1), 0, NOW, f, &rp);
    kc_frame_release(f);
    /* An error for the partition drops it. */
    kc_fetch_resp_partition err = {.error_code = 1, .high_watermark = -1};
    px_fcache_put(c, KEY(0, 1), 0, NOW, NULL, &err);
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 1), 0, 0, 1 << 20, NOW, &out, &g), 0);
    /* A high watermark below cached data (truncation) drops it. */
    f = frame_of(0, 3, 0, &rp, 30);
    px_fcache_put(c, KEY(0, 1), 0, NOW, f, &rp);
    kc_frame_release(f);
    kc_fetch_resp_partition trunc = {.high_watermark = 15, .naborted_transactions = -1};
    px_fcache_put(c, KEY(0, 1), 0, NOW, NULL, &trunc);
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 1), 0, 0, 1 << 20, NOW, &out, &g), 0);
    /* Records past the high watermark they came with are not kept. */
    f = frame_of(0, 3, 0, &rp, 20);
    px_fcache_put(c, KEY(0, 1), 0, NOW, f, &rp);
    kc_frame_release(f);
    ck_assert_uint_eq(fc_stats(c).bytes, 0);
    /* A corrupt second batch: only the first is kept. */
    f = frame_of(0, 3, 0, &rp, 30);
    f->data[BATCH_LEN + 30] ^= 1;
    px_fcache_put(c, KEY(0, 1), 0, NOW, f, &rp);
    kc_frame_release(f);
    ck_assert_uint_eq(fc_stats(c).bytes, BATCH_LEN);
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 1), 0, 15, 1 << 20, NOW, &out, &g), 0);
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 1), 0, 5, 1 << 20, NOW, &out, &g), 1);
    kc_frame_release(g);
    /* read_committed: kept when fetched read_committed with no aborts, below the LSO. */
    f = frame_of(100, 2, 0, &rp, 120);
    px_fcache_put(c, KEY(2, 1), 1, NOW, f, &rp);
    kc_frame_release(f);
    ck_assert_int_eq(px_fcache_get(c, KEY(2, 1), 1, 100, 1 << 20, NOW, &out, &g), 1);
    ck_assert_int_eq(out.naborted_transactions, 0);
    kc_frame_release(g);
    px_fcache_free(c);
}
END_TEST

START_TEST(test_fcache_lru_and_copy)
{
    /* Room for 5 batches: the least recently used partition goes first. */
    px_fcache *c = px_fcache_new(5 * BATCH_LEN, AGE);
    kc_fetch_resp_partition rp, out;
    kc_frame *g = NULL;
    for (int32_t p = 0; p < 3; p++) {
        kc_frame *f = frame_of(0, 2, 0, &rp, 20);
        px_fcache_put(c, KEY(p, 1), 0, NOW, f, &rp);
        kc_frame_release(f);
        if (p == 1) { /* touch partition 0: partition 1 is now the oldest */
            ck_assert_int_eq(px_fcache_get(c, KEY(0, 1), 0, 0, 1 << 20, NOW, &out, &g), 1);
            kc_frame_release(g);
        }
    }
    ck_assert_uint_le(fc_stats(c).bytes, 5 * BATCH_LEN);
    ck_assert_int_eq(px_fcache_get(c, KEY(1, 1), 0, 0, 1 << 20, NOW, &out, &g), 0);
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 1), 0, 0, 1 << 20, NOW, &out, &g), 1);
    kc_frame_release(g);
    ck_assert_int_eq(px_fcache_get(c, KEY(2, 1), 0, 0, 1 << 20, NOW, &out, &g), 1);
    kc_frame_release(g);
    ck_assert_uint_eq(fc_stats(c).evictions, 1);
    px_fcache_free(c);
    /* Batches that are a small part of a big frame are copied out of it. */
    c = px_fcache_new(1 << 20, AGE);
    kc_frame *f = frame_of(0, 1, 10000, &rp, 10);
    px_fcache_put(c, KEY(0, 1), 0, NOW, f, &rp);
    ck_assert_int_eq(f->refcnt, 1);
    kc_frame_release(f);
    ck_assert_int_eq(px_fcache_get(c, KEY(0, 1), 0, 0, 1 << 20, NOW, &out, &g), 1);
    ck_assert_ptr_eq(out.records.p, g->data);
    ck_assert_uint_eq(g->len, BATCH_LEN);
    kc_frame_release(g);
    px_fcache_free(c);
}
END_TEST

/* Deleted data is never served: a topic deleted and created again (new
 * topic id, same name and epoch), records deleted from the start of the log
 * (log start above cached data), a DeleteRecords through the proxy
 * (px_fcache_drop), and anything older than the maximum age. */
START_TEST(test_fcache_deleted)
{
    px_fcache *c = px_fcache_new(1 << 20, AGE);
    kc_fetch_resp_partition rp, out;
    kc_frame *g = NULL, *f = frame_of(0, 3, 0, &rp, 30);
    px_fcache_put(c, KEYID(0, 0, ID1), 0, NOW, f, &rp);
    kc_frame_release(f);
    ck_assert_int_eq(px_fcache_get(c, KEYID(0, 0, ID1), 0, 0, 1 << 20, NOW, &out, &g), 1);
    kc_frame_release(g);
    /* Recreated under the same name at epoch 0: the view's id differs. */
    ck_assert_int_eq(px_fcache_get(c, KEYID(0, 0, ID2), 0, 0, 1 << 20, NOW, &out, &g), 0);
    ck_assert_uint_eq(fc_stats(c).bytes, 0);
    ck_assert_int_eq(px_fcache_get(c, KEYID(0, 0, ID1), 0, 0, 1 << 20, NOW, &out, &g), 0);
    ck_assert_uint_eq(fc_stats(c).invalidations, 1);
    /* And on the put side: the new topic's answer replaces the old data. */
    f = frame_of(0, 3, 0, &rp, 30);
    px_fcache_put(c, KEYID(0, 0, ID1), 0, NOW, f, &rp);
    kc_frame_release(f);
    f = frame_of(100, 1, 0, &rp, 110);
    px_fcache_put(c, KEYID(0, 0, ID2), 0, NOW, f, &rp);
    kc_frame_release(f);
    ck_assert_uint_eq(fc_stats(c).bytes, BATCH_LEN);
    ck_assert_int_eq(px_fcache_get(c, KEYID(0, 0, ID2), 0, 0, 1 << 20, NOW, &out, &g), 0);
    ck_assert_int_eq(px_fcache_get(c, KEYID(0, 0, ID2), 0, 100, 1 << 20, NOW, &out, &g), 1);
    kc_frame_release(g);
    /* A fetch answer whose log start is above cached data: records were
     * deleted (DeleteRecords elsewhere, retention): the partition goes. */
    f = frame_of(0, 3, 0, &rp, 30);
    px_fcache_put(c, KEY(1, 0), 0, NOW, f, &rp);
    kc_frame_release(f);
    kc_fetch_resp_partition moved = {.high_watermark = 30, .last_stable_offset = 30, .log_start_offset = 10,
                                     .naborted_transactions = -1};
    px_fcache_put(c, KEY(1, 0), 0, NOW, NULL, &moved);
    ck_assert_int_eq(px_fcache_get(c, KEY(1, 0), 0, 25, 1 << 20, NOW, &out, &g), 0);
    /* The same log start as cached data: kept. */
    f = frame_of(0, 3, 0, &rp, 30);
    px_fcache_put(c, KEY(1, 0), 0, NOW, f, &rp);
    kc_frame_release(f);
    moved.log_start_offset = 0;
    px_fcache_put(c, KEY(1, 0), 0, NOW, NULL, &moved);
    ck_assert_int_eq(px_fcache_get(c, KEY(1, 0), 0, 25, 1 << 20, NOW, &out, &g), 1);
    kc_frame_release(g);
    /* DeleteRecords answered through the proxy. */
    px_fcache_drop(c, T, 1);
    ck_assert_int_eq(px_fcache_get(c, KEY(1, 0), 0, 25, 1 << 20, NOW, &out, &g), 0);
    /* Maximum age: served up to AGE ms after the fetch, then dropped. */
    f = frame_of(0, 3, 0, &rp, 30);
    px_fcache_put(c, KEY(2, 0), 0, NOW, f, &rp);
    kc_frame_release(f);
    ck_assert_int_eq(px_fcache_get(c, KEY(2, 0), 0, 0, 1 << 20, NOW + AGE, &out, &g), 1);
    kc_frame_release(g);
    uint64_t bytes = fc_stats(c).bytes;
    ck_assert_int_eq(px_fcache_get(c, KEY(2, 0), 0, 0, 1 << 20, NOW + AGE + 1, &out, &g), 0);
    ck_assert_uint_eq(fc_stats(c).expirations, 1);
    ck_assert_uint_eq(fc_stats(c).bytes, bytes - 3 * BATCH_LEN);
    px_fcache_free(c);
    ck_assert_ptr_null(px_fcache_new(1 << 20, 0));
}
END_TEST

/* One cache shared by event-loop threads: four threads put, get and drop
 * on overlapping partitions at once, under the cap so nothing is evicted.
 * Every hit must hand back intact batches of the partition asked for, and
 * the counters must add up (a lost update or a torn list shows here, and
 * under ThreadSanitizer as a report). */
#define MT_THREADS 4
#define MT_ROUNDS 30000
#define MT_PARTS 8

typedef struct mt_arg {
    px_fcache *c;
    pthread_barrier_t *start;
    int id;
    uint64_t hits, puts, bad;
} mt_arg;

static void *mt_run(void *p)
{
    mt_arg *a = p;
    pthread_barrier_wait(a->start); /* all at once */
    for (int r = 0; r < MT_ROUNDS; r++) {
        int32_t part = (int32_t)((r * 7 + a->id) % MT_PARTS);
        kc_fetch_resp_partition rp, out;
        kc_frame *g = NULL;
        if (r % 3 == 0) {
            kc_frame *f = frame_of(1000 * part, 4, (size_t)(r % 2) * 300, &rp, 1000 * part + 40);
            px_fcache_put(a->c, KEY(part, 1), 0, NOW, f, &rp);
            kc_frame_release(f);
            a->puts++;
        } else if (r % 97 == 0) {
            px_fcache_drop(a->c, T, part);
        } else if (px_fcache_get(a->c, KEY(part, 1), 0, 1000 * part + 15, 1 << 20, NOW, &out, &g)) {
            a->hits++;
            int64_t base = 0;
            for (int i = 0; i < 8; i++)
                base = base << 8 | out.records.p[i];
            if (base != 1000 * part + 10 || out.records.len != 3 * BATCH_LEN ||
                kc_crc32c(0, out.records.p + 21, BATCH_LEN - 21) !=
                    ((uint32_t)out.records.p[17] << 24 | (uint32_t)out.records.p[18] << 16 |
                     (uint32_t)out.records.p[19] << 8 | out.records.p[20]))
                a->bad++;
            kc_frame_release(g);
        }
    }
    return NULL;
}

START_TEST(test_fcache_threads)
{
    px_fcache *c = px_fcache_new(64 << 20, AGE);
    pthread_t th[MT_THREADS];
    mt_arg args[MT_THREADS];
    pthread_barrier_t start;
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, MT_THREADS), 0);
    for (int i = 0; i < MT_THREADS; i++) {
        args[i] = (mt_arg){.c = c, .start = &start, .id = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, mt_run, &args[i]), 0);
    }
    uint64_t hits = 0, puts = 0, bad = 0;
    for (int i = 0; i < MT_THREADS; i++) {
        pthread_join(th[i], NULL);
        hits += args[i].hits;
        puts += args[i].puts;
        bad += args[i].bad;
    }
    pthread_barrier_destroy(&start);
    px_fcache_stats st = fc_stats(c);
    ck_assert_uint_eq(bad, 0);
    ck_assert_uint_gt(hits, 0);
    ck_assert_uint_eq(st.hits, hits);
    ck_assert_uint_le(st.misses, puts);
    ck_assert_uint_gt(st.misses, 0);
    ck_assert_uint_eq(st.bytes_saved, hits * 3 * BATCH_LEN);
    ck_assert_uint_eq(st.evictions, 0);
    /* What is held is whole segments of 4 batches. */
    ck_assert_uint_eq(st.bytes % (4 * BATCH_LEN), 0);
    px_fcache_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("px_fcache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, test_fcache_hit_miss);
    tcase_add_test(tc, test_fcache_invalidate);
    tcase_add_test(tc, test_fcache_lru_and_copy);
    tcase_add_test(tc, test_fcache_deleted);
    tcase_add_test(tc, test_fcache_threads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
