/* DeleteRecords golden bytes (DeleteRecordsRequest.json / DeleteRecordsResponse.json,
 * v0-v2, flexible from v2). */
#include "config.h"

#include "codec/kc_msg.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- goldens ---------------- */

/* v1 (same as v0): Topics then TimeoutMs. */
static const uint8_t req_v1[] = {
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
    I32(2),                 /*   Partitions: 2 */
    I32(0),                 /*     PartitionIndex */
    I64(10),                /*     Offset */
    I32(1),                 /*     PartitionIndex */
    I64(-1),                /*     Offset -1: the high watermark */
    I32(30000),             /* TimeoutMs */
};

/* v2: flexible; a top-level unknown tag kept raw. */
static const uint8_t req_v2[] = {
    UV(2),                  /* Topics: compact 1 */
    UV(4), 'f', 'o', 'o',  /*   Name "foo" */
    UV(2),                  /*   Partitions: compact 1 */
    I32(3),                 /*     PartitionIndex */
    I64(77),                /*     Offset */
    NOTAGS,                 /*     partition tags */
    NOTAGS,                 /*   topic tags */
    I32(1500),              /* TimeoutMs */
    UV(1), UV(9), UV(2), 0x01, 0x02, /* tags: tag 9, 2 bytes */
};

static const uint8_t resp_v0[] = {
    I32(0),                 /* ThrottleTimeMs */
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
    I32(2),                 /*   Partitions: 2 */
    I32(0),                 /*     PartitionIndex */
    I64(10),                /*     LowWatermark */
    I16(0),                 /*     ErrorCode */
    I32(1),                 /*     PartitionIndex */
    I64(-1),                /*     LowWatermark */
    I16(6),                 /*     ErrorCode NOT_LEADER_OR_FOLLOWER */
};

static const uint8_t resp_v2[] = {
    I32(5),                 /* ThrottleTimeMs */
    UV(2),                  /* Topics: compact 1 */
    UV(4), 'f', 'o', 'o',  /*   Name "foo" */
    UV(2),                  /*   Partitions: compact 1 */
    I32(3),                 /*     PartitionIndex */
    I64(77),                /*     LowWatermark */
    I16(0),                 /*     ErrorCode */
    NOTAGS,                 /*     partition tags */
    NOTAGS,                 /*   topic tags */
    NOTAGS,                 /* tags */
};

static const struct {
    const uint8_t *bytes;
    size_t len;
    int16_t version;
    int resp;
} dr_goldens[] = {
    {req_v1, sizeof(req_v1), 1, 0},
    {req_v2, sizeof(req_v2), 2, 0},
    {resp_v0, sizeof(resp_v0), 0, 1},
    {resp_v2, sizeof(resp_v2), 2, 1},
};

static int dr_decode(const uint8_t *b, size_t len, int16_t v, int resp, kc_rd *rd, kc_arena *a,
                     struct evbuffer *enc)
{
    kc_wr w;
    kc_rd_init(rd, b, len);
    if (enc)
        kc_wr_init(&w, enc, NULL);
    if (resp) {
        kc_deleterecords_resp r;
        int rc = kc_deleterecords_resp_decode(rd, v, a, &r);
        if (rc == 0 && enc)
            kc_deleterecords_resp_encode(&w, v, &r);
        return rc;
    }
    kc_deleterecords_req r;
    int rc = kc_deleterecords_req_decode(rd, v, a, &r);
    if (rc == 0 && enc)
        kc_deleterecords_req_encode(&w, v, &r);
    return rc;
}

/* ---------------- tests ---------------- */

START_TEST(test_dr_roundtrip)
{
    for (size_t g = 0; g < sizeof(dr_goldens) / sizeof(dr_goldens[0]); g++) {
        kc_rd rd;
        kc_arena a;
        kc_arena_init(&a);
        struct evbuffer *eb = evbuffer_new();
        int rc = dr_decode(dr_goldens[g].bytes, dr_goldens[g].len, dr_goldens[g].version,
                           dr_goldens[g].resp, &rd, &a, eb);
        ck_assert_msg(rc == 0, "golden %zu: %s at %zu", g, rd.err, rd.err_off);
        kz_expect_bytes("DeleteRecords re-encoded", evbuffer_pullup(eb, -1), evbuffer_get_length(eb),
                        dr_goldens[g].bytes, dr_goldens[g].len);
        evbuffer_free(eb);
        kc_arena_destroy(&a);
    }
}
END_TEST

START_TEST(test_dr_fields)
{
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    kc_deleterecords_req q;
    kc_rd_init(&rd, req_v1, sizeof(req_v1));
    ck_assert_int_eq(kc_deleterecords_req_decode(&rd, 1, &a, &q), 0);
    ck_assert_int_eq(q.ntopics, 1);
    ck_assert(kc_str_eq(q.topics[0].name, "foo"));
    ck_assert_int_eq(q.topics[0].npartitions, 2);
    ck_assert_int_eq(q.topics[0].partitions[0].offset, 10);
    ck_assert_int_eq(q.topics[0].partitions[1].partition_index, 1);
    ck_assert_int_eq(q.topics[0].partitions[1].offset, -1);
    ck_assert_int_eq(q.timeout_ms, 30000);

    kc_rd_init(&rd, req_v2, sizeof(req_v2));
    ck_assert_int_eq(kc_deleterecords_req_decode(&rd, 2, &a, &q), 0);
    ck_assert_int_eq(q.timeout_ms, 1500);
    ck_assert_uint_eq(q.tags.count, 1);
    ck_assert_int_eq(q.tags.raw.len, 4);
    /* v2 -> v0: tags dropped, fixed-width lengths. */
    static const uint8_t want_v0[] = {
        I32(1), I16(3), 'f', 'o', 'o', I32(1), I32(3), I64(77), I32(1500),
    };
    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    kc_deleterecords_req_encode(&w, 0, &q);
    kz_expect_bytes("DeleteRecordsRequest v0", evbuffer_pullup(eb, -1), evbuffer_get_length(eb), want_v0,
                    sizeof(want_v0));
    evbuffer_free(eb);

    kc_deleterecords_resp r;
    kc_rd_init(&rd, resp_v0, sizeof(resp_v0));
    ck_assert_int_eq(kc_deleterecords_resp_decode(&rd, 0, &a, &r), 0);
    ck_assert_int_eq(r.topics[0].partitions[0].low_watermark, 10);
    ck_assert_int_eq(r.topics[0].partitions[1].error_code, 6);
    kc_rd_init(&rd, resp_v2, sizeof(resp_v2));
    ck_assert_int_eq(kc_deleterecords_resp_decode(&rd, 2, &a, &r), 0);
    ck_assert_int_eq(r.throttle_time_ms, 5);
    ck_assert_int_eq(r.topics[0].partitions[0].partition_index, 3);
    ck_assert_int_eq(r.topics[0].partitions[0].low_watermark, 77);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_dr_truncated)
{
    for (size_t g = 0; g < sizeof(dr_goldens) / sizeof(dr_goldens[0]); g++) {
        for (size_t cut = 0; cut < dr_goldens[g].len; cut++) {
            uint8_t *buf = malloc(cut ? cut : 1);
            ck_assert_ptr_nonnull(buf);
            memcpy(buf, dr_goldens[g].bytes, cut);
            kc_rd rd;
            kc_arena a;
            kc_arena_init(&a);
            int rc = dr_decode(buf, cut, dr_goldens[g].version, dr_goldens[g].resp, &rd, &a, NULL);
            ck_assert_msg(rc == -1, "golden %zu cut at %zu decoded", g, cut);
            ck_assert_ptr_nonnull(rd.err);
            kc_arena_destroy(&a);
            free(buf);
        }
    }
}
END_TEST

START_TEST(test_dr_huge_counts)
{
    /* v0 request: 2^31-1 topics. */
    static const uint8_t req_topics[] = {I32(0x7fffffff), I16(1), 't', I32(0), I32(0)};
    /* v0 response: 2 partitions of 14 bytes claimed, 14 present. */
    static const uint8_t resp_parts[] = {I32(0), I32(1), I16(1), 't', I32(2), I32(0), I64(0), I16(0)};
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    ck_assert_int_eq(dr_decode(req_topics, sizeof(req_topics), 0, 0, &rd, &a, NULL), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_int_eq(dr_decode(resp_parts, sizeof(resp_parts), 0, 1, &rd, &a, NULL), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_uint_lt(a.total, 4096);
    kc_arena_destroy(&a);
}
END_TEST

Suite *kc_deleterecords_suite(void)
{
    Suite *s = suite_create("kc_deleterecords");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_dr_roundtrip);
    tcase_add_test(tc, test_dr_fields);
    suite_add_tcase(s, tc);
    TCase *bad = tcase_create("bad_input");
    tcase_add_test(bad, test_dr_truncated);
    tcase_add_test(bad, test_dr_huge_counts);
    suite_add_tcase(s, bad);
    return s;
}
