/* OffsetForLeaderEpoch golden bytes (OffsetForLeaderEpochRequest.json /
 * OffsetForLeaderEpochResponse.json, v0-v4, flexible from v4). */
#include "config.h"

#include "codec/kc_msg.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- goldens ---------------- */

/* v2: CurrentLeaderEpoch (v2+), no ReplicaId (v3+), not flexible. */
static const uint8_t req_v2[] = {
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Topic "foo" */
    I32(2),                 /*   Partitions: 2 */
    I32(0),                 /*     Partition */
    I32(7),                 /*     CurrentLeaderEpoch */
    I32(5),                 /*     LeaderEpoch */
    I32(3),                 /*     Partition */
    I32(-1),                /*     CurrentLeaderEpoch unknown */
    I32(6),                 /*     LeaderEpoch */
};

/* v4: ReplicaId, flexible; an unknown partition tag kept raw. */
static const uint8_t req_v4[] = {
    I32(-1),                /* ReplicaId (consumer) */
    UV(3),                  /* Topics: compact 2 */
    UV(4), 'f', 'o', 'o',  /*   Topic "foo" */
    UV(2),                  /*   Partitions: compact 1 */
    I32(1),                 /*     Partition */
    I32(9),                 /*     CurrentLeaderEpoch */
    I32(8),                 /*     LeaderEpoch */
    UV(1), UV(5), UV(1), 0x2a, /*  partition tags: tag 5, 1 byte */
    NOTAGS,                 /*   topic tags */
    UV(2), 'b',             /*   Topic "b" */
    UV(1),                  /*   Partitions: compact 0 */
    NOTAGS,                 /*   topic tags */
    NOTAGS,                 /* tags */
};

/* v0: no LeaderEpoch in the response, no throttle time. */
static const uint8_t resp_v0[] = {
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Topic "foo" */
    I32(1),                 /*   Partitions: 1 */
    I16(0),                 /*     ErrorCode */
    I32(0),                 /*     Partition */
    I64(100),               /*     EndOffset */
};

/* v4: ThrottleTimeMs (v2+), LeaderEpoch (v1+), flexible. */
static const uint8_t resp_v4[] = {
    I32(3),                 /* ThrottleTimeMs */
    UV(2),                  /* Topics: compact 1 */
    UV(4), 'f', 'o', 'o',  /*   Topic "foo" */
    UV(3),                  /*   Partitions: compact 2 */
    I16(0),                 /*     ErrorCode */
    I32(1),                 /*     Partition */
    I32(8),                 /*     LeaderEpoch */
    I64(4242),              /*     EndOffset */
    NOTAGS,                 /*     partition tags */
    I16(74),                /*     ErrorCode FENCED_LEADER_EPOCH */
    I32(2),                 /*     Partition */
    I32(-1),                /*     LeaderEpoch */
    I64(-1),                /*     EndOffset */
    NOTAGS,                 /*     partition tags */
    NOTAGS,                 /*   topic tags */
    NOTAGS,                 /* tags */
};

static const struct {
    const uint8_t *bytes;
    size_t len;
    int16_t version;
    int resp;
} ofle_goldens[] = {
    {req_v2, sizeof(req_v2), 2, 0},
    {req_v4, sizeof(req_v4), 4, 0},
    {resp_v0, sizeof(resp_v0), 0, 1},
    {resp_v4, sizeof(resp_v4), 4, 1},
};

/* Decode (and, when enc is set, re-encode into enc) one golden. */
static int ofle_decode(const uint8_t *b, size_t len, int16_t v, int resp, kc_rd *rd, kc_arena *a,
                       struct evbuffer *enc)
{
    kc_wr w;
    kc_rd_init(rd, b, len);
    if (enc)
        kc_wr_init(&w, enc, NULL);
    if (resp) {
        kc_offsetforleaderepoch_resp r;
        int rc = kc_offsetforleaderepoch_resp_decode(rd, v, a, &r);
        if (rc == 0 && enc)
            kc_offsetforleaderepoch_resp_encode(&w, v, &r);
        return rc;
    }
    kc_offsetforleaderepoch_req r;
    int rc = kc_offsetforleaderepoch_req_decode(rd, v, a, &r);
    if (rc == 0 && enc)
        kc_offsetforleaderepoch_req_encode(&w, v, &r);
    return rc;
}

/* ---------------- tests ---------------- */

START_TEST(test_ofle_roundtrip)
{
    for (size_t g = 0; g < sizeof(ofle_goldens) / sizeof(ofle_goldens[0]); g++) {
        kc_rd rd;
        kc_arena a;
        kc_arena_init(&a);
        struct evbuffer *eb = evbuffer_new();
        int rc = ofle_decode(ofle_goldens[g].bytes, ofle_goldens[g].len, ofle_goldens[g].version,
                             ofle_goldens[g].resp, &rd, &a, eb);
        ck_assert_msg(rc == 0, "golden %zu: %s at %zu", g, rd.err, rd.err_off);
        kz_expect_bytes("OffsetForLeaderEpoch re-encoded", evbuffer_pullup(eb, -1), evbuffer_get_length(eb),
                        ofle_goldens[g].bytes, ofle_goldens[g].len);
        evbuffer_free(eb);
        kc_arena_destroy(&a);
    }
}
END_TEST

START_TEST(test_ofle_req_fields)
{
    kc_rd rd;
    kc_arena a;
    kc_offsetforleaderepoch_req r;
    kc_arena_init(&a);
    kc_rd_init(&rd, req_v2, sizeof(req_v2));
    ck_assert_int_eq(kc_offsetforleaderepoch_req_decode(&rd, 2, &a, &r), 0);
    ck_assert_int_eq(r.replica_id, -2); /* schema default before v3 */
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].topic, "foo"));
    ck_assert_int_eq(r.topics[0].npartitions, 2);
    ck_assert_int_eq(r.topics[0].partitions[0].current_leader_epoch, 7);
    ck_assert_int_eq(r.topics[0].partitions[0].leader_epoch, 5);
    ck_assert_int_eq(r.topics[0].partitions[1].partition, 3);
    ck_assert_int_eq(r.topics[0].partitions[1].leader_epoch, 6);

    kc_rd_init(&rd, req_v4, sizeof(req_v4));
    ck_assert_int_eq(kc_offsetforleaderepoch_req_decode(&rd, 4, &a, &r), 0);
    ck_assert_int_eq(r.replica_id, -1);
    ck_assert_int_eq(r.ntopics, 2);
    ck_assert_int_eq(r.topics[0].partitions[0].current_leader_epoch, 9);
    ck_assert_uint_eq(r.topics[0].partitions[0].tags.count, 1);
    ck_assert(kc_str_eq(r.topics[1].topic, "b"));
    ck_assert_int_eq(r.topics[1].npartitions, 0);

    /* v4 -> v0: ReplicaId, CurrentLeaderEpoch and tags dropped. */
    static const uint8_t want_v0[] = {
        I32(2),                                   /* Topics: 2 */
        I16(3), 'f', 'o', 'o', I32(1), I32(1), I32(8), /* "foo" [Partition 1, LeaderEpoch 8] */
        I16(1), 'b', I32(0),                      /* "b" [] */
    };
    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    kc_offsetforleaderepoch_req_encode(&w, 0, &r);
    kz_expect_bytes("OffsetForLeaderEpochRequest v0", evbuffer_pullup(eb, -1), evbuffer_get_length(eb),
                    want_v0, sizeof(want_v0));
    evbuffer_free(eb);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_ofle_resp_fields)
{
    kc_rd rd;
    kc_arena a;
    kc_offsetforleaderepoch_resp r;
    kc_arena_init(&a);
    kc_rd_init(&rd, resp_v0, sizeof(resp_v0));
    ck_assert_int_eq(kc_offsetforleaderepoch_resp_decode(&rd, 0, &a, &r), 0);
    ck_assert_int_eq(r.throttle_time_ms, 0);
    ck_assert_int_eq(r.topics[0].partitions[0].leader_epoch, -1); /* default */
    ck_assert_int_eq(r.topics[0].partitions[0].end_offset, 100);

    kc_rd_init(&rd, resp_v4, sizeof(resp_v4));
    ck_assert_int_eq(kc_offsetforleaderepoch_resp_decode(&rd, 4, &a, &r), 0);
    ck_assert_int_eq(r.throttle_time_ms, 3);
    ck_assert_int_eq(r.topics[0].npartitions, 2);
    ck_assert_int_eq(r.topics[0].partitions[0].leader_epoch, 8);
    ck_assert_int_eq(r.topics[0].partitions[0].end_offset, 4242);
    ck_assert_int_eq(r.topics[0].partitions[1].error_code, 74);
    ck_assert_int_eq(r.topics[0].partitions[1].partition, 2);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_ofle_truncated)
{
    for (size_t g = 0; g < sizeof(ofle_goldens) / sizeof(ofle_goldens[0]); g++) {
        for (size_t cut = 0; cut < ofle_goldens[g].len; cut++) {
            uint8_t *buf = malloc(cut ? cut : 1); /* exactly cut bytes: overreads are caught */
            ck_assert_ptr_nonnull(buf);
            memcpy(buf, ofle_goldens[g].bytes, cut);
            kc_rd rd;
            kc_arena a;
            kc_arena_init(&a);
            int rc = ofle_decode(buf, cut, ofle_goldens[g].version, ofle_goldens[g].resp, &rd, &a, NULL);
            ck_assert_msg(rc == -1, "golden %zu cut at %zu decoded", g, cut);
            ck_assert_ptr_nonnull(rd.err);
            kc_arena_destroy(&a);
            free(buf);
        }
    }
}
END_TEST

START_TEST(test_ofle_huge_counts)
{
    /* v2 request: 2^31-1 topics. */
    static const uint8_t req_topics[] = {I32(0x7fffffff), I16(1), 't', I32(0)};
    /* v4 request: ~4 billion partitions. */
    static const uint8_t req_parts[] = {I32(-1), UV(2), UV(2), 't', 0xff, 0xff, 0xff, 0xff, 0x0f, NOTAGS, NOTAGS};
    /* v1 response: 2 partitions claimed (18 bytes each), 18 present. */
    static const uint8_t resp_parts[] = {I32(1), I16(1), 't', I32(2), I16(0), I32(0), I32(1), I64(5)};
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    ck_assert_int_eq(ofle_decode(req_topics, sizeof(req_topics), 2, 0, &rd, &a, NULL), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_int_eq(ofle_decode(req_parts, sizeof(req_parts), 4, 0, &rd, &a, NULL), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_int_eq(ofle_decode(resp_parts, sizeof(resp_parts), 1, 1, &rd, &a, NULL), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_uint_lt(a.total, 4096);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_ofle_trailing_garbage)
{
    uint8_t buf[sizeof(resp_v0) + 1];
    memcpy(buf, resp_v0, sizeof(resp_v0));
    buf[sizeof(resp_v0)] = 0;
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    ck_assert_int_eq(ofle_decode(buf, sizeof(buf), 0, 1, &rd, &a, NULL), -1);
    ck_assert_str_eq(rd.err, "garbage after message");
    kc_arena_destroy(&a);
}
END_TEST

Suite *kc_offsetforleaderepoch_suite(void)
{
    Suite *s = suite_create("kc_offsetforleaderepoch");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_ofle_roundtrip);
    tcase_add_test(tc, test_ofle_req_fields);
    tcase_add_test(tc, test_ofle_resp_fields);
    suite_add_tcase(s, tc);
    TCase *bad = tcase_create("bad_input");
    tcase_add_test(bad, test_ofle_truncated);
    tcase_add_test(bad, test_ofle_huge_counts);
    tcase_add_test(bad, test_ofle_trailing_garbage);
    suite_add_tcase(s, bad);
    return s;
}
