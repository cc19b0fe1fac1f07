/* ListOffsets golden bytes (ListOffsetsRequest.json / ListOffsetsResponse.json, v0-v7). */
#include "config.h"

#include "codec/kc_msg.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Encode msg with fn at version and compare with the wanted bytes. */
#define EXPECT_ENCODED(fn, version, msg, want, want_len)                                          \
    do {                                                                                           \
        struct evbuffer *eb_ = evbuffer_new();                                                     \
        kc_wr w_;                                                                                  \
        kc_wr_init(&w_, eb_, NULL);                                                                \
        fn(&w_, (version), (msg));                                                                 \
        ck_assert_int_eq(w_.err, 0);                                                               \
        size_t n_ = evbuffer_get_length(eb_);                                                      \
        kz_expect_bytes(#fn, evbuffer_pullup(eb_, -1), n_, (want), (want_len));                    \
        evbuffer_free(eb_);                                                                        \
    } while (0)

#define TS 1700000000000LL /* a timestamp in ms */

/* ---------------- request goldens ---------------- */

/* v0: MaxNumOffsets per partition. */
static const uint8_t req_v0[] = {
    I32(-1),                /* ReplicaId -1 (consumer) */
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
    I32(1),                 /*   Partitions: 1 */
    I32(0),                 /*     PartitionIndex */
    I64(-1),                /*     Timestamp LATEST */
    I32(5),                 /*     MaxNumOffsets */
};

/* v1: MaxNumOffsets gone. */
static const uint8_t req_v1[] = {
    I32(-1),                /* ReplicaId */
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
    I32(2),                 /*   Partitions: 2 */
    I32(0),                 /*     PartitionIndex */
    I64(-2),                /*     Timestamp EARLIEST */
    I32(1),                 /*     PartitionIndex */
    I64(TS),                /*     Timestamp */
};

/* v4: IsolationLevel (v2+) and CurrentLeaderEpoch (v4+). */
static const uint8_t req_v4[] = {
    I32(-1),                /* ReplicaId */
    I8(1),                  /* IsolationLevel READ_COMMITTED */
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
    I32(1),                 /*   Partitions: 1 */
    I32(2),                 /*     PartitionIndex */
    I32(9),                 /*     CurrentLeaderEpoch */
    I64(-1),                /*     Timestamp LATEST */
};

/* v7: flexible, MAX_TIMESTAMP (-3) lookups allowed; an unknown partition tag. */
static const uint8_t req_v7[] = {
    I32(-1),                /* ReplicaId */
    I8(0),                  /* IsolationLevel READ_UNCOMMITTED */
    UV(2),                  /* Topics: compact 1 */
    UV(4), 'f', 'o', 'o',  /*   Name "foo" */
    UV(3),                  /*   Partitions: compact 2 */
    I32(0),                 /*     PartitionIndex */
    I32(5),                 /*     CurrentLeaderEpoch */
    I64(-3),                /*     Timestamp MAX_TIMESTAMP */
    NOTAGS,                 /*     partition tags */
    I32(1),                 /*     PartitionIndex */
    I32(-1),                /*     CurrentLeaderEpoch unknown */
    I64(TS),                /*     Timestamp */
    UV(1), UV(3), UV(2), 0x01, 0x02, /* partition tags: tag 3, 2 bytes */
    NOTAGS,                 /*   topic tags */
    NOTAGS,                 /* tags */
};

/* ---------------- response goldens ---------------- */

/* v0: OldStyleOffsets instead of Timestamp/Offset. */
static const uint8_t resp_v0[] = {
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
    I32(1),                 /*   Partitions: 1 */
    I32(0),                 /*     PartitionIndex */
    I16(0),                 /*     ErrorCode */
    I32(2), I64(42), I64(0), /*    OldStyleOffsets [42, 0] */
};

/* v1: a single Timestamp/Offset pair. */
static const uint8_t resp_v1[] = {
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
    I32(1),                 /*   Partitions: 1 */
    I32(0),                 /*     PartitionIndex */
    I16(0),                 /*     ErrorCode */
    I64(-1),                /*     Timestamp -1 */
    I64(42),                /*     Offset */
};

/* v4: ThrottleTimeMs (v2+) and LeaderEpoch (v4+), still not flexible. */
static const uint8_t resp_v4[] = {
    I32(0),                 /* ThrottleTimeMs */
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
    I32(1),                 /*   Partitions: 1 */
    I32(3),                 /*     PartitionIndex */
    I16(0),                 /*     ErrorCode */
    I64(TS),                /*     Timestamp */
    I64(1000),              /*     Offset */
    I32(2),                 /*     LeaderEpoch */
};

/* v7: ThrottleTimeMs (v2+), LeaderEpoch (v4+), flexible. */
static const uint8_t resp_v7[] = {
    I32(4),                 /* ThrottleTimeMs */
    UV(2),                  /* Topics: compact 1 */
    UV(4), 'f', 'o', 'o',  /*   Name "foo" */
    UV(3),                  /*   Partitions: compact 2 */
    I32(0),                 /*     PartitionIndex */
    I16(0),                 /*     ErrorCode */
    I64(TS),                /*     Timestamp */
    I64(42),                /*     Offset */
    I32(5),                 /*     LeaderEpoch */
    NOTAGS,                 /*     partition tags */
    I32(1),                 /*     PartitionIndex */
    I16(6),                 /*     ErrorCode NOT_LEADER_OR_FOLLOWER */
    I64(-1),                /*     Timestamp */
    I64(-1),                /*     Offset */
    I32(-1),                /*     LeaderEpoch */
    NOTAGS,                 /*     partition tags */
    NOTAGS,                 /*   topic tags */
    NOTAGS,                 /* tags */
};

/* ---------------- helpers ---------------- */

static void lo_req_decode_ok(const uint8_t *g, size_t len, int16_t v, kc_arena *a,
                             kc_listoffsets_req *out)
{
    kc_rd rd;
    kc_rd_init(&rd, g, len);
    int rc = kc_listoffsets_req_decode(&rd, v, a, out);
    ck_assert_msg(rc == 0, "ListOffsetsRequest v%d: %s at %zu", v, rd.err, rd.err_off);
}

static void lo_resp_decode_ok(const uint8_t *g, size_t len, int16_t v, kc_arena *a,
                              kc_listoffsets_resp *out)
{
    kc_rd rd;
    kc_rd_init(&rd, g, len);
    int rc = kc_listoffsets_resp_decode(&rd, v, a, out);
    ck_assert_msg(rc == 0, "ListOffsetsResponse v%d: %s at %zu", v, rd.err, rd.err_off);
}

static void lo_req_roundtrip(const uint8_t *g, size_t len, int16_t v)
{
    kc_arena a;
    kc_listoffsets_req r;
    kc_arena_init(&a);
    lo_req_decode_ok(g, len, v, &a, &r);
    EXPECT_ENCODED(kc_listoffsets_req_encode, v, &r, g, len);
    kc_arena_destroy(&a);
}

static void lo_resp_roundtrip(const uint8_t *g, size_t len, int16_t v)
{
    kc_arena a;
    kc_listoffsets_resp r;
    kc_arena_init(&a);
    lo_resp_decode_ok(g, len, v, &a, &r);
    EXPECT_ENCODED(kc_listoffsets_resp_encode, v, &r, g, len);
    kc_arena_destroy(&a);
}

/* ---------------- request tests ---------------- */

START_TEST(test_listoffsets_req_v0)
{
    kc_arena a;
    kc_listoffsets_req r;
    kc_arena_init(&a);
    lo_req_decode_ok(req_v0, sizeof(req_v0), 0, &a, &r);
    ck_assert_int_eq(r.replica_id, -1);
    ck_assert_int_eq(r.isolation_level, 0);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    ck_assert_int_eq(r.topics[0].npartitions, 1);
    const kc_listoffsets_req_partition *p = &r.topics[0].partitions[0];
    ck_assert_int_eq(p->partition_index, 0);
    ck_assert_int_eq(p->current_leader_epoch, -1); /* default */
    ck_assert_int_eq(p->timestamp, -1);
    ck_assert_int_eq(p->max_num_offsets, 5);
    kc_arena_destroy(&a);
    lo_req_roundtrip(req_v0, sizeof(req_v0), 0);
}
END_TEST

START_TEST(test_listoffsets_req_v1)
{
    kc_arena a;
    kc_listoffsets_req r;
    kc_arena_init(&a);
    lo_req_decode_ok(req_v1, sizeof(req_v1), 1, &a, &r);
    ck_assert_int_eq(r.topics[0].npartitions, 2);
    const kc_listoffsets_req_partition *p = r.topics[0].partitions;
    ck_assert_int_eq(p[0].timestamp, -2);
    ck_assert_int_eq(p[0].max_num_offsets, 1); /* default */
    ck_assert_int_eq(p[0].current_leader_epoch, -1);
    ck_assert_int_eq(p[1].partition_index, 1);
    ck_assert_int_eq(p[1].timestamp, TS);
    kc_arena_destroy(&a);
    lo_req_roundtrip(req_v1, sizeof(req_v1), 1);
}
END_TEST

START_TEST(test_listoffsets_req_v4)
{
    kc_arena a;
    kc_listoffsets_req r;
    kc_arena_init(&a);
    lo_req_decode_ok(req_v4, sizeof(req_v4), 4, &a, &r);
    ck_assert_int_eq(r.isolation_level, 1);
    const kc_listoffsets_req_partition *p = r.topics[0].partitions;
    ck_assert_int_eq(p[0].partition_index, 2);
    ck_assert_int_eq(p[0].current_leader_epoch, 9);
    ck_assert_int_eq(p[0].timestamp, -1);
    kc_arena_destroy(&a);
    lo_req_roundtrip(req_v4, sizeof(req_v4), 4);
}
END_TEST

START_TEST(test_listoffsets_req_v7)
{
    kc_arena a;
    kc_listoffsets_req r;
    kc_arena_init(&a);
    lo_req_decode_ok(req_v7, sizeof(req_v7), 7, &a, &r);
    ck_assert_int_eq(r.replica_id, -1);
    ck_assert_int_eq(r.isolation_level, 0);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    ck_assert_int_eq(r.topics[0].npartitions, 2);
    const kc_listoffsets_req_partition *p = r.topics[0].partitions;
    ck_assert_int_eq(p[0].current_leader_epoch, 5);
    ck_assert_int_eq(p[0].timestamp, -3);
    ck_assert_int_eq(p[1].current_leader_epoch, -1);
    ck_assert_int_eq(p[1].timestamp, TS);
    ck_assert_uint_eq(p[1].tags.count, 1);
    ck_assert_int_eq(p[1].tags.raw.len, 4);
    kc_arena_destroy(&a);
    lo_req_roundtrip(req_v7, sizeof(req_v7), 7);
}
END_TEST

START_TEST(test_listoffsets_req_downgrade)
{
    kc_arena a;
    kc_listoffsets_req r;
    kc_arena_init(&a);
    lo_req_decode_ok(req_v7, sizeof(req_v7), 7, &a, &r);
    /* v7 -> v1: IsolationLevel, CurrentLeaderEpoch and tags dropped. */
    static const uint8_t want_v1[] = {
        I32(-1),                /* ReplicaId */
        I32(1),                 /* Topics: 1 */
        I16(3), 'f', 'o', 'o', /*   Name "foo" */
        I32(2),                 /*   Partitions: 2 */
        I32(0), I64(-3),        /*     PartitionIndex, Timestamp */
        I32(1), I64(TS),        /*     PartitionIndex, Timestamp */
    };
    EXPECT_ENCODED(kc_listoffsets_req_encode, 1, &r, want_v1, sizeof(want_v1));
    /* v7 -> v0: MaxNumOffsets appears with its default, 1. */
    static const uint8_t want_v0[] = {
        I32(-1),                /* ReplicaId */
        I32(1),                 /* Topics: 1 */
        I16(3), 'f', 'o', 'o', /*   Name "foo" */
        I32(2),                 /*   Partitions: 2 */
        I32(0), I64(-3), I32(1), /*    PartitionIndex, Timestamp, MaxNumOffsets */
        I32(1), I64(TS), I32(1), /*    PartitionIndex, Timestamp, MaxNumOffsets */
    };
    EXPECT_ENCODED(kc_listoffsets_req_encode, 0, &r, want_v0, sizeof(want_v0));
    kc_arena_destroy(&a);
}
END_TEST

/* ---------------- response tests ---------------- */

START_TEST(test_listoffsets_resp_v0)
{
    kc_arena a;
    kc_listoffsets_resp r;
    kc_arena_init(&a);
    lo_resp_decode_ok(resp_v0, sizeof(resp_v0), 0, &a, &r);
    ck_assert_int_eq(r.throttle_time_ms, 0);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    const kc_listoffsets_resp_partition *p = r.topics[0].partitions;
    ck_assert_int_eq(p[0].partition_index, 0);
    ck_assert_int_eq(p[0].error_code, 0);
    ck_assert_int_eq(p[0].nold_style_offsets, 2);
    ck_assert_int_eq(p[0].old_style_offsets[0], 42);
    ck_assert_int_eq(p[0].old_style_offsets[1], 0);
    ck_assert_int_eq(p[0].timestamp, -1); /* defaults */
    ck_assert_int_eq(p[0].offset, -1);
    ck_assert_int_eq(p[0].leader_epoch, -1);
    kc_arena_destroy(&a);
    lo_resp_roundtrip(resp_v0, sizeof(resp_v0), 0);
}
END_TEST

START_TEST(test_listoffsets_resp_v1)
{
    kc_arena a;
    kc_listoffsets_resp r;
    kc_arena_init(&a);
    lo_resp_decode_ok(resp_v1, sizeof(resp_v1), 1, &a, &r);
    const kc_listoffsets_resp_partition *p = r.topics[0].partitions;
    ck_assert_int_eq(p[0].nold_style_offsets, 0);
    ck_assert_int_eq(p[0].timestamp, -1);
    ck_assert_int_eq(p[0].offset, 42);
    ck_assert_int_eq(p[0].leader_epoch, -1);
    kc_arena_destroy(&a);
    lo_resp_roundtrip(resp_v1, sizeof(resp_v1), 1);
}
END_TEST

START_TEST(test_listoffsets_resp_v4)
{
    kc_arena a;
    kc_listoffsets_resp r;
    kc_arena_init(&a);
    lo_resp_decode_ok(resp_v4, sizeof(resp_v4), 4, &a, &r);
    ck_assert_int_eq(r.throttle_time_ms, 0);
    const kc_listoffsets_resp_partition *p = r.topics[0].partitions;
    ck_assert_int_eq(p[0].partition_index, 3);
    ck_assert_int_eq(p[0].timestamp, TS);
    ck_assert_int_eq(p[0].offset, 1000);
    ck_assert_int_eq(p[0].leader_epoch, 2);
    kc_arena_destroy(&a);
    lo_resp_roundtrip(resp_v4, sizeof(resp_v4), 4);
}
END_TEST

START_TEST(test_listoffsets_resp_v7)
{
    kc_arena a;
    kc_listoffsets_resp r;
    kc_arena_init(&a);
    lo_resp_decode_ok(resp_v7, sizeof(resp_v7), 7, &a, &r);
    ck_assert_int_eq(r.throttle_time_ms, 4);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert_int_eq(r.topics[0].npartitions, 2);
    const kc_listoffsets_resp_partition *p = r.topics[0].partitions;
    ck_assert_int_eq(p[0].timestamp, TS);
    ck_assert_int_eq(p[0].offset, 42);
    ck_assert_int_eq(p[0].leader_epoch, 5);
    ck_assert_int_eq(p[1].partition_index, 1);
    ck_assert_int_eq(p[1].error_code, 6);
    ck_assert_int_eq(p[1].offset, -1);
    kc_arena_destroy(&a);
    lo_resp_roundtrip(resp_v7, sizeof(resp_v7), 7);
}
END_TEST

START_TEST(test_listoffsets_resp_downgrade)
{
    kc_arena a;
    kc_listoffsets_resp r;
    kc_arena_init(&a);
    lo_resp_decode_ok(resp_v7, sizeof(resp_v7), 7, &a, &r);
    /* v7 -> v2: ThrottleTimeMs kept, LeaderEpoch and tags dropped. */
    static const uint8_t want_v2[] = {
        I32(4),                 /* ThrottleTimeMs */
        I32(1),                 /* Topics: 1 */
        I16(3), 'f', 'o', 'o', /*   Name "foo" */
        I32(2),                 /*   Partitions: 2 */
        I32(0), I16(0), I64(TS), I64(42), /* PartitionIndex, ErrorCode, Timestamp, Offset */
        I32(1), I16(6), I64(-1), I64(-1), /* PartitionIndex, ErrorCode, Timestamp, Offset */
    };
    EXPECT_ENCODED(kc_listoffsets_resp_encode, 2, &r, want_v2, sizeof(want_v2));
    kc_arena_destroy(&a);
}
END_TEST

/* ---------------- bad input ---------------- */

static const struct {
    const uint8_t *bytes;
    size_t len;
    int16_t version;
    int resp;
} lo_goldens[] = {
    {req_v0, sizeof(req_v0), 0, 0},   {req_v1, sizeof(req_v1), 1, 0},
    {req_v4, sizeof(req_v4), 4, 0},   {req_v7, sizeof(req_v7), 7, 0},
    {resp_v0, sizeof(resp_v0), 0, 1}, {resp_v1, sizeof(resp_v1), 1, 1},
    {resp_v4, sizeof(resp_v4), 4, 1}, {resp_v7, sizeof(resp_v7), 7, 1},
};

static int lo_decode(const uint8_t *b, size_t len, int16_t v, int resp, kc_rd *rd, kc_arena *a)
{
    kc_rd_init(rd, b, len);
    if (resp) {
        kc_listoffsets_resp r;
        return kc_listoffsets_resp_decode(rd, v, a, &r);
    }
    kc_listoffsets_req r;
    return kc_listoffsets_req_decode(rd, v, a, &r);
}

START_TEST(test_listoffsets_truncated)
{
    for (size_t g = 0; g < sizeof(lo_goldens) / sizeof(lo_goldens[0]); g++) {
        for (size_t cut = 0; cut < lo_goldens[g].len; cut++) {
            /* A heap copy of exactly cut bytes, so an overread is caught. */
            uint8_t *buf = malloc(cut ? cut : 1);
            ck_assert_ptr_nonnull(buf);
            memcpy(buf, lo_goldens[g].bytes, cut);
            kc_rd rd;
            kc_arena a;
            kc_arena_init(&a);
            int rc = lo_decode(buf, cut, lo_goldens[g].version, lo_goldens[g].resp, &rd, &a);
            ck_assert_msg(rc == -1, "golden %zu cut at %zu decoded", g, cut);
            ck_assert_ptr_nonnull(rd.err);
            kc_arena_destroy(&a);
            free(buf);
        }
    }
}
END_TEST

START_TEST(test_listoffsets_huge_counts)
{
    /* v1 request: 2^31-1 topics. */
    static const uint8_t req_topics[] = {I32(-1), I32(0x7fffffff), I16(1), 't', I32(0)};
    /* v7 request: ~4 billion partitions. */
    static const uint8_t req_parts[] = {
        I32(-1), I8(0), UV(2), UV(2), 't', 0xff, 0xff, 0xff, 0xff, 0x0f, NOTAGS, NOTAGS,
    };
    /* v0 response: 2^28 old-style offsets with 16 bytes present. */
    static const uint8_t resp_offsets[] = {
        I32(1), I16(1), 't', I32(1), I32(0), I16(0), I32(0x10000000), I64(1), I64(2),
    };
    /* v4 response: 3 partitions claimed, 26 bytes each at least, 26 present. */
    static const uint8_t resp_parts[] = {
        I32(0), I32(1), I16(1), 't', I32(3), I32(0), I16(0), I64(-1), I64(7), I32(0),
    };
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    ck_assert_int_eq(lo_decode(req_topics, sizeof(req_topics), 1, 0, &rd, &a), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_int_eq(lo_decode(req_parts, sizeof(req_parts), 7, 0, &rd, &a), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_int_eq(lo_decode(resp_offsets, sizeof(resp_offsets), 0, 1, &rd, &a), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_int_eq(lo_decode(resp_parts, sizeof(resp_parts), 4, 1, &rd, &a), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_uint_lt(a.total, 4096);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_listoffsets_trailing_garbage)
{
    uint8_t buf[sizeof(req_v1) + 2];
    memcpy(buf, req_v1, sizeof(req_v1));
    buf[sizeof(req_v1)] = 0;
    buf[sizeof(req_v1) + 1] = 0;
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    ck_assert_int_eq(lo_decode(buf, sizeof(buf), 1, 0, &rd, &a), -1);
    ck_assert_str_eq(rd.err, "garbage after message");
    kc_arena_destroy(&a);
}
END_TEST

Suite *kc_listoffsets_suite(void)
{
    Suite *s = suite_create("kc_listoffsets");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_listoffsets_req_v0);
    tcase_add_test(tc, test_listoffsets_req_v1);
    tcase_add_test(tc, test_listoffsets_req_v4);
    tcase_add_test(tc, test_listoffsets_req_v7);
    tcase_add_test(tc, test_listoffsets_req_downgrade);
    tcase_add_test(tc, test_listoffsets_resp_v0);
    tcase_add_test(tc, test_listoffsets_resp_v1);
    tcase_add_test(tc, test_listoffsets_resp_v4);
    tcase_add_test(tc, test_listoffsets_resp_v7);
    tcase_add_test(tc, test_listoffsets_resp_downgrade);
    suite_add_tcase(s, tc);
    TCase *bad = tcase_create("bad_input");
    tcase_add_test(bad, test_listoffsets_truncated);
    tcase_add_test(bad, test_listoffsets_huge_counts);
    tcase_add_test(bad, test_listoffsets_trailing_garbage);
    suite_add_tcase(s, bad);
    return s;
}
