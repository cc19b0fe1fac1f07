/* FindCoordinator golden bytes (FindCoordinatorRequest.json /
 * FindCoordinatorResponse.json, v0-v4). */
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

/* ---------------- request goldens ---------------- */

/* v0: Key "grp" (KeyType is implicitly group). */
static const uint8_t req_v0[] = {
    I16(3), 'g', 'r', 'p', /* Key "grp" */
};

/* v1: Key "tx1", KeyType 1 (transaction). */
static const uint8_t req_v1[] = {
    I16(3), 't', 'x', '1', /* Key "tx1" */
    I8(1),                  /* KeyType transaction */
};

/* v3: first flexible version. */
static const uint8_t req_v3[] = {
    UV(4), 'g', 'r', 'p',  /* Key "grp" */
    I8(0),                  /* KeyType group */
    NOTAGS,                 /* tags */
};

/* v4: batched CoordinatorKeys (KIP-699), no Key. */
static const uint8_t req_v4[] = {
    I8(0),                  /* KeyType group */
    UV(3),                  /* CoordinatorKeys: compact 2 */
    UV(3), 'g', '1',       /*   "g1" */
    UV(3), 'g', '2',       /*   "g2" */
    NOTAGS,                 /* tags */
};

/* ---------------- response goldens ---------------- */

/* v0: ErrorCode, NodeId, Host, Port. */
static const uint8_t resp_v0[] = {
    I16(0),                 /* ErrorCode */
    I32(1),                 /* NodeId 1 */
    I16(2), 'b', '1',      /* Host "b1" */
    I32(9092),              /* Port */
};

/* v1: ThrottleTimeMs and ErrorMessage added; an error answer. */
static const uint8_t resp_v1[] = {
    I32(3),                 /* ThrottleTimeMs */
    I16(15),                /* ErrorCode COORDINATOR_NOT_AVAILABLE */
    I16(2), 'n', 'o',      /* ErrorMessage "no" */
    I32(-1),                /* NodeId -1 */
    I16(0),                 /* Host "" */
    I32(-1),                /* Port -1 */
};

/* v3: first flexible version, null ErrorMessage. */
static const uint8_t resp_v3[] = {
    I32(0),                 /* ThrottleTimeMs */
    I16(0),                 /* ErrorCode */
    UV(0),                  /* ErrorMessage null */
    I32(1),                 /* NodeId 1 */
    UV(3), 'b', '1',       /* Host "b1" */
    I32(9092),              /* Port */
    NOTAGS,                 /* tags */
};

/* v4: a Coordinators array; an unknown tagged field at the top level. */
static const uint8_t resp_v4[] = {
    I32(0),                 /* ThrottleTimeMs */
    UV(3),                  /* Coordinators: compact 2 */
    UV(3), 'g', '1',       /*   Key "g1" */
    I32(1),                 /*   NodeId 1 */
    UV(3), 'b', '1',       /*   Host "b1" */
    I32(9092),              /*   Port */
    I16(0),                 /*   ErrorCode */
    UV(0),                  /*   ErrorMessage null */
    NOTAGS,                 /*   coordinator tags */
    UV(3), 'g', '2',       /*   Key "g2" */
    I32(-1),                /*   NodeId -1 */
    UV(1),                  /*   Host "" */
    I32(-1),                /*   Port -1 */
    I16(15),                /*   ErrorCode COORDINATOR_NOT_AVAILABLE */
    UV(3), 'n', 'o',       /*   ErrorMessage "no" */
    NOTAGS,                 /*   coordinator tags */
    UV(1), UV(0), UV(1), 0x07, /* tags: tag 0, 1 byte */
};

/* ---------------- helpers ---------------- */

static void fc_req_decode_ok(const uint8_t *g, size_t len, int16_t v, kc_arena *a,
                             kc_findcoordinator_req *out)
{
    kc_rd rd;
    kc_rd_init(&rd, g, len);
    int rc = kc_findcoordinator_req_decode(&rd, v, a, out);
    ck_assert_msg(rc == 0, "FindCoordinatorRequest v%d: %s at %zu", v, rd.err, rd.err_off);
}

static void fc_resp_decode_ok(const uint8_t *g, size_t len, int16_t v, kc_arena *a,
                              kc_findcoordinator_resp *out)
{
    kc_rd rd;
    kc_rd_init(&rd, g, len);
    int rc = kc_findcoordinator_resp_decode(&rd, v, a, out);
    ck_assert_msg(rc == 0, "FindCoordinatorResponse v%d: %s at %zu", v, rd.err, rd.err_off);
}

static void fc_req_roundtrip(const uint8_t *g, size_t len, int16_t v)
{
    kc_arena a;
    kc_findcoordinator_req r;
    kc_arena_init(&a);
    fc_req_decode_ok(g, len, v, &a, &r);
    EXPECT_ENCODED(kc_findcoordinator_req_encode, v, &r, g, len);
    kc_arena_destroy(&a);
}

static void fc_resp_roundtrip(const uint8_t *g, size_t len, int16_t v)
{
    kc_arena a;
    kc_findcoordinator_resp r;
    kc_arena_init(&a);
    fc_resp_decode_ok(g, len, v, &a, &r);
    EXPECT_ENCODED(kc_findcoordinator_resp_encode, v, &r, g, len);
    kc_arena_destroy(&a);
}

/* ---------------- request tests ---------------- */

START_TEST(test_findcoordinator_req_v0)
{
    kc_arena a;
    kc_findcoordinator_req r;
    kc_arena_init(&a);
    fc_req_decode_ok(req_v0, sizeof(req_v0), 0, &a, &r);
    ck_assert(kc_str_eq(r.key, "grp"));
    ck_assert_int_eq(r.key_type, 0); /* default: group */
    ck_assert_int_eq(r.ncoordinator_keys, 0);
    kc_arena_destroy(&a);
    fc_req_roundtrip(req_v0, sizeof(req_v0), 0);
}
END_TEST

START_TEST(test_findcoordinator_req_v1)
{
    kc_arena a;
    kc_findcoordinator_req r;
    kc_arena_init(&a);
    fc_req_decode_ok(req_v1, sizeof(req_v1), 1, &a, &r);
    ck_assert(kc_str_eq(r.key, "tx1"));
    ck_assert_int_eq(r.key_type, 1);
    kc_arena_destroy(&a);
    fc_req_roundtrip(req_v1, sizeof(req_v1), 1);
}
END_TEST

START_TEST(test_findcoordinator_req_v3)
{
    kc_arena a;
    kc_findcoordinator_req r;
    kc_arena_init(&a);
    fc_req_decode_ok(req_v3, sizeof(req_v3), 3, &a, &r);
    ck_assert(kc_str_eq(r.key, "grp"));
    ck_assert_int_eq(r.key_type, 0);
    ck_assert_uint_eq(r.tags.count, 0);
    kc_arena_destroy(&a);
    fc_req_roundtrip(req_v3, sizeof(req_v3), 3);
}
END_TEST

START_TEST(test_findcoordinator_req_v4)
{
    kc_arena a;
    kc_findcoordinator_req r;
    kc_arena_init(&a);
    fc_req_decode_ok(req_v4, sizeof(req_v4), 4, &a, &r);
    ck_assert_int_eq(r.key.len, -1); /* not in v4 */
    ck_assert_int_eq(r.key_type, 0);
    ck_assert_int_eq(r.ncoordinator_keys, 2);
    ck_assert(kc_str_eq(r.coordinator_keys[0], "g1"));
    ck_assert(kc_str_eq(r.coordinator_keys[1], "g2"));
    kc_arena_destroy(&a);
    fc_req_roundtrip(req_v4, sizeof(req_v4), 4);
}
END_TEST

START_TEST(test_findcoordinator_req_downgrade)
{
    kc_arena a;
    kc_findcoordinator_req r;

    /* v1 -> v0: KeyType dropped. */
    kc_arena_init(&a);
    fc_req_decode_ok(req_v1, sizeof(req_v1), 1, &a, &r);
    static const uint8_t want_v0[] = {I16(3), 't', 'x', '1' /* Key "tx1" */};
    EXPECT_ENCODED(kc_findcoordinator_req_encode, 0, &r, want_v0, sizeof(want_v0));
    kc_arena_destroy(&a);

    /* v4 -> v3: the batch is dropped and the unset Key (not nullable) is
     * written as ""; folding keys into Key is the caller's decision. */
    kc_arena_init(&a);
    fc_req_decode_ok(req_v4, sizeof(req_v4), 4, &a, &r);
    static const uint8_t want_v3[] = {
        UV(1),  /* Key "" */
        I8(0),  /* KeyType group */
        NOTAGS, /* tags */
    };
    EXPECT_ENCODED(kc_findcoordinator_req_encode, 3, &r, want_v3, sizeof(want_v3));
    kc_arena_destroy(&a);
}
END_TEST

/* ---------------- response tests ---------------- */

START_TEST(test_findcoordinator_resp_v0)
{
    kc_arena a;
    kc_findcoordinator_resp r;
    kc_arena_init(&a);
    fc_resp_decode_ok(resp_v0, sizeof(resp_v0), 0, &a, &r);
    ck_assert_int_eq(r.throttle_time_ms, 0);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(r.error_message.len, -1);
    ck_assert_int_eq(r.node_id, 1);
    ck_assert(kc_str_eq(r.host, "b1"));
    ck_assert_int_eq(r.port, 9092);
    ck_assert_int_eq(r.ncoordinators, 0);
    kc_arena_destroy(&a);
    fc_resp_roundtrip(resp_v0, sizeof(resp_v0), 0);
}
END_TEST

START_TEST(test_findcoordinator_resp_v1)
{
    kc_arena a;
    kc_findcoordinator_resp r;
    kc_arena_init(&a);
    fc_resp_decode_ok(resp_v1, sizeof(resp_v1), 1, &a, &r);
    ck_assert_int_eq(r.throttle_time_ms, 3);
    ck_assert_int_eq(r.error_code, 15);
    ck_assert(kc_str_eq(r.error_message, "no"));
    ck_assert_int_eq(r.node_id, -1);
    ck_assert(kc_str_eq(r.host, ""));
    ck_assert_int_eq(r.port, -1);
    kc_arena_destroy(&a);
    fc_resp_roundtrip(resp_v1, sizeof(resp_v1), 1);
}
END_TEST

START_TEST(test_findcoordinator_resp_v3)
{
    kc_arena a;
    kc_findcoordinator_resp r;
    kc_arena_init(&a);
    fc_resp_decode_ok(resp_v3, sizeof(resp_v3), 3, &a, &r);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(r.error_message.len, -1);
    ck_assert_int_eq(r.node_id, 1);
    ck_assert(kc_str_eq(r.host, "b1"));
    ck_assert_int_eq(r.port, 9092);
    kc_arena_destroy(&a);
    fc_resp_roundtrip(resp_v3, sizeof(resp_v3), 3);
}
END_TEST

START_TEST(test_findcoordinator_resp_v4)
{
    kc_arena a;
    kc_findcoordinator_resp r;
    kc_arena_init(&a);
    fc_resp_decode_ok(resp_v4, sizeof(resp_v4), 4, &a, &r);
    ck_assert_int_eq(r.throttle_time_ms, 0);
    ck_assert_int_eq(r.host.len, -1); /* single-coordinator fields absent */
    ck_assert_int_eq(r.ncoordinators, 2);
    const kc_findcoordinator_coord *c = r.coordinators;
    ck_assert(kc_str_eq(c[0].key, "g1"));
    ck_assert_int_eq(c[0].node_id, 1);
    ck_assert(kc_str_eq(c[0].host, "b1"));
    ck_assert_int_eq(c[0].port, 9092);
    ck_assert_int_eq(c[0].error_code, 0);
    ck_assert_int_eq(c[0].error_message.len, -1);
    ck_assert(kc_str_eq(c[1].key, "g2"));
    ck_assert_int_eq(c[1].node_id, -1);
    ck_assert_int_eq(c[1].error_code, 15);
    ck_assert(kc_str_eq(c[1].error_message, "no"));
    ck_assert_uint_eq(r.tags.count, 1);
    kc_arena_destroy(&a);
    fc_resp_roundtrip(resp_v4, sizeof(resp_v4), 4);
}
END_TEST

START_TEST(test_findcoordinator_resp_downgrade)
{
    kc_arena a;
    kc_findcoordinator_resp r;
    kc_arena_init(&a);
    fc_resp_decode_ok(resp_v3, sizeof(resp_v3), 3, &a, &r);
    static const uint8_t want_v0[] = {
        I16(0),             /* ErrorCode */
        I32(1),             /* NodeId 1 */
        I16(2), 'b', '1',  /* Host "b1" */
        I32(9092),          /* Port */
    };
    EXPECT_ENCODED(kc_findcoordinator_resp_encode, 0, &r, want_v0, sizeof(want_v0));
    static const uint8_t want_v2[] = {
        I32(0),             /* ThrottleTimeMs */
        I16(0),             /* ErrorCode */
        I16(-1),            /* ErrorMessage null */
        I32(1),             /* NodeId 1 */
        I16(2), 'b', '1',  /* Host "b1" */
        I32(9092),          /* Port */
    };
    EXPECT_ENCODED(kc_findcoordinator_resp_encode, 2, &r, want_v2, sizeof(want_v2));
    kc_arena_destroy(&a);
}
END_TEST

/* ---------------- bad input ---------------- */

static const struct {
    const uint8_t *bytes;
    size_t len;
    int16_t version;
    int resp;
} fc_goldens[] = {
    {req_v0, sizeof(req_v0), 0, 0},   {req_v1, sizeof(req_v1), 1, 0},
    {req_v3, sizeof(req_v3), 3, 0},   {req_v4, sizeof(req_v4), 4, 0},
    {resp_v0, sizeof(resp_v0), 0, 1}, {resp_v1, sizeof(resp_v1), 1, 1},
    {resp_v3, sizeof(resp_v3), 3, 1}, {resp_v4, sizeof(resp_v4), 4, 1},
};

static int fc_decode(const uint8_t *b, size_t len, int16_t v, int resp, kc_rd *rd, kc_arena *a)
{
    kc_rd_init(rd, b, len);
    if (resp) {
        kc_findcoordinator_resp r;
        return kc_findcoordinator_resp_decode(rd, v, a, &r);
    }
    kc_findcoordinator_req r;
    return kc_findcoordinator_req_decode(rd, v, a, &r);
}

START_TEST(test_findcoordinator_truncated)
{
    for (size_t g = 0; g < sizeof(fc_goldens) / sizeof(fc_goldens[0]); g++) {
        for (size_t cut = 0; cut < fc_goldens[g].len; cut++) {
            /* A heap copy of exactly cut bytes, so an overread is caught. */
            uint8_t *buf = malloc(cut ? cut : 1);
            ck_assert_ptr_nonnull(buf);
            memcpy(buf, fc_goldens[g].bytes, cut);
            kc_rd rd;
            kc_arena a;
            kc_arena_init(&a);
            int rc = fc_decode(buf, cut, fc_goldens[g].version, fc_goldens[g].resp, &rd, &a);
            ck_assert_msg(rc == -1, "golden %zu cut at %zu decoded", g, cut);
            ck_assert_ptr_nonnull(rd.err);
            kc_arena_destroy(&a);
            free(buf);
        }
    }
}
END_TEST

START_TEST(test_findcoordinator_huge_counts)
{
    /* v4 request: ~4 billion keys claimed. */
    static const uint8_t req_huge[] = {I8(0), 0xff, 0xff, 0xff, 0xff, 0x0f, UV(3), 'g', '1', NOTAGS};
    /* v4 response: 10 coordinators claimed, 14 bytes at least each, 19 present. */
    static const uint8_t resp_many[] = {
        I32(0), UV(11), UV(3), 'g', '1', I32(1), UV(3), 'b', '1', I32(9092), I16(0), UV(0), NOTAGS,
        NOTAGS,
    };
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    ck_assert_int_eq(fc_decode(req_huge, sizeof(req_huge), 4, 0, &rd, &a), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_int_eq(fc_decode(resp_many, sizeof(resp_many), 4, 1, &rd, &a), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_uint_lt(a.total, 4096);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_findcoordinator_bad_fields)
{
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    /* Key is not nullable. */
    static const uint8_t null_key[] = {I16(-1), I8(0)};
    ck_assert_int_eq(fc_decode(null_key, sizeof(null_key), 1, 0, &rd, &a), -1);
    ck_assert_str_eq(rd.err, "null in non-nullable string");
    /* Trailing bytes are an error. */
    static const uint8_t trailing[] = {I16(3), 'g', 'r', 'p', I8(0)};
    ck_assert_int_eq(fc_decode(trailing, sizeof(trailing), 0, 0, &rd, &a), -1);
    ck_assert_str_eq(rd.err, "garbage after message");
    kc_arena_destroy(&a);
}
END_TEST

Suite *kc_findcoordinator_suite(void)
{
    Suite *s = suite_create("kc_findcoordinator");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_findcoordinator_req_v0);
    tcase_add_test(tc, test_findcoordinator_req_v1);
    tcase_add_test(tc, test_findcoordinator_req_v3);
    tcase_add_test(tc, test_findcoordinator_req_v4);
    tcase_add_test(tc, test_findcoordinator_req_downgrade);
    tcase_add_test(tc, test_findcoordinator_resp_v0);
    tcase_add_test(tc, test_findcoordinator_resp_v1);
    tcase_add_test(tc, test_findcoordinator_resp_v3);
    tcase_add_test(tc, test_findcoordinator_resp_v4);
    tcase_add_test(tc, test_findcoordinator_resp_downgrade);
    suite_add_tcase(s, tc);
    TCase *bad = tcase_create("bad_input");
    tcase_add_test(bad, test_findcoordinator_truncated);
    tcase_add_test(bad, test_findcoordinator_huge_counts);
    tcase_add_test(bad, test_findcoordinator_bad_fields);
    suite_add_tcase(s, bad);
    return s;
}
