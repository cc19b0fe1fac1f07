/* DescribeCluster golden bytes (DescribeClusterRequest.json /
 * DescribeClusterResponse.json, v0-v1, flexible in every version). */
#include "config.h"

#include "codec/kc_msg.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- goldens ---------------- */

static const uint8_t req_v0[] = {
    I8(1),  /* IncludeClusterAuthorizedOperations */
    NOTAGS, /* tags */
};

static const uint8_t req_v1[] = {
    I8(0),  /* IncludeClusterAuthorizedOperations */
    I8(1),  /* EndpointType brokers */
    NOTAGS, /* tags */
};

static const uint8_t resp_v0[] = {
    I32(0),                           /* ThrottleTimeMs */
    I16(0),                           /* ErrorCode */
    UV(0),                            /* ErrorMessage null */
    UV(4), 'c', 'i', 'd',             /* ClusterId "cid" */
    I32(11),                          /* ControllerId */
    UV(3),                            /* Brokers: compact 2 */
    I32(11),                          /*   BrokerId */
    UV(3), 'h', '1',                  /*   Host "h1" */
    I32(9092),                        /*   Port */
    UV(2), 'a',                       /*   Rack "a" */
    NOTAGS,                           /*   broker tags */
    I32(12),                          /*   BrokerId */
    UV(3), 'h', '2',                  /*   Host "h2" */
    I32(9093),                        /*   Port */
    UV(0),                            /*   Rack null */
    NOTAGS,                           /*   broker tags */
    I32(INT32_MIN),                   /* ClusterAuthorizedOperations: not asked */
    NOTAGS,                           /* tags */
};

static const uint8_t resp_v1[] = {
    I32(0),                           /* ThrottleTimeMs */
    I16(0),                           /* ErrorCode */
    UV(0),                            /* ErrorMessage null */
    I8(1),                            /* EndpointType brokers */
    UV(4), 'c', 'i', 'd',             /* ClusterId "cid" */
    I32(11),                          /* ControllerId */
    UV(2),                            /* Brokers: compact 1 */
    I32(11),                          /*   BrokerId */
    UV(3), 'h', '1',                  /*   Host "h1" */
    I32(9092),                        /*   Port */
    UV(2), 'a',                       /*   Rack "a" */
    NOTAGS,                           /*   broker tags */
    I32(INT32_MIN),                   /* ClusterAuthorizedOperations */
    NOTAGS,                           /* tags */
};

static const struct {
    const uint8_t *bytes;
    size_t len;
    int16_t version;
    int resp;
} dc_goldens[] = {
    {req_v0, sizeof(req_v0), 0, 0},
    {req_v1, sizeof(req_v1), 1, 0},
    {resp_v0, sizeof(resp_v0), 0, 1},
    {resp_v1, sizeof(resp_v1), 1, 1},
};

static int dc_decode(const uint8_t *b, size_t len, int16_t v, int resp, kc_rd *rd, kc_arena *a,
                     struct evbuffer *enc)
{
    kc_wr w;
    kc_rd_init(rd, b, len);
    if (enc)
        kc_wr_init(&w, enc, NULL);
    if (resp) {
        kc_describecluster_resp r;
        int rc = kc_describecluster_resp_decode(rd, v, a, &r);
        if (rc == 0 && enc)
            kc_describecluster_resp_encode(&w, v, &r);
        return rc;
    }
    kc_describecluster_req r;
    int rc = kc_describecluster_req_decode(rd, v, a, &r);
    if (rc == 0 && enc)
        kc_describecluster_req_encode(&w, v, &r);
    return rc;
}

START_TEST(test_dc_roundtrip)
{
    for (size_t g = 0; g < sizeof(dc_goldens) / sizeof(dc_goldens[0]); g++) {
        kc_rd rd;
        kc_arena a;
        kc_arena_init(&a);
        struct evbuffer *eb = evbuffer_new();
        int rc = dc_decode(dc_goldens[g].bytes, dc_goldens[g].len, dc_goldens[g].version,
                           dc_goldens[g].resp, &rd, &a, eb);
        ck_assert_msg(rc == 0, "golden %zu: %s at %zu", g, rd.err, rd.err_off);
        kz_expect_bytes("DescribeCluster re-encoded", evbuffer_pullup(eb, -1), evbuffer_get_length(eb),
                        dc_goldens[g].bytes, dc_goldens[g].len);
        evbuffer_free(eb);
        kc_arena_destroy(&a);
    }
}
END_TEST

START_TEST(test_dc_fields)
{
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    kc_describecluster_req q;
    kc_rd_init(&rd, req_v0, sizeof(req_v0));
    ck_assert_int_eq(kc_describecluster_req_decode(&rd, 0, &a, &q), 0);
    ck_assert_int_eq(q.include_cluster_authorized_operations, 1);
    ck_assert_int_eq(q.endpoint_type, 1); /* default */

    kc_describecluster_resp r;
    kc_rd_init(&rd, resp_v0, sizeof(resp_v0));
    ck_assert_int_eq(kc_describecluster_resp_decode(&rd, 0, &a, &r), 0);
    ck_assert_int_eq(r.error_message.len, -1);
    ck_assert(kc_str_eq(r.cluster_id, "cid"));
    ck_assert_int_eq(r.controller_id, 11);
    ck_assert_int_eq(r.nbrokers, 2);
    ck_assert(kc_str_eq(r.brokers[0].host, "h1"));
    ck_assert_int_eq(r.brokers[0].port, 9092);
    ck_assert(kc_str_eq(r.brokers[0].rack, "a"));
    ck_assert_int_eq(r.brokers[1].rack.len, -1);
    ck_assert_int_eq(r.cluster_authorized_operations, INT32_MIN);
    kc_rd_init(&rd, resp_v1, sizeof(resp_v1));
    ck_assert_int_eq(kc_describecluster_resp_decode(&rd, 1, &a, &r), 0);
    ck_assert_int_eq(r.endpoint_type, 1);
    ck_assert_int_eq(r.nbrokers, 1);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_dc_truncated)
{
    for (size_t g = 0; g < sizeof(dc_goldens) / sizeof(dc_goldens[0]); g++) {
        for (size_t cut = 0; cut < dc_goldens[g].len; cut++) {
            uint8_t *buf = malloc(cut ? cut : 1);
            ck_assert_ptr_nonnull(buf);
            memcpy(buf, dc_goldens[g].bytes, cut);
            kc_rd rd;
            kc_arena a;
            kc_arena_init(&a);
            int rc = dc_decode(buf, cut, dc_goldens[g].version, dc_goldens[g].resp, &rd, &a, NULL);
            ck_assert_msg(rc == -1, "golden %zu cut at %zu decoded", g, cut);
            ck_assert_ptr_nonnull(rd.err);
            kc_arena_destroy(&a);
            free(buf);
        }
    }
}
END_TEST

START_TEST(test_dc_huge_counts)
{
    /* v0 response: ~4 billion brokers. */
    static const uint8_t resp_brokers[] = {
        I32(0), I16(0), UV(0), UV(1), I32(-1), 0xff, 0xff, 0xff, 0xff, 0x0f, I32(0), NOTAGS,
    };
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    ck_assert_int_eq(dc_decode(resp_brokers, sizeof(resp_brokers), 0, 1, &rd, &a, NULL), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_uint_lt(a.total, 4096);
    kc_arena_destroy(&a);
}
END_TEST

Suite *kc_describecluster_suite(void)
{
    Suite *s = suite_create("kc_describecluster");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_dc_roundtrip);
    tcase_add_test(tc, test_dc_fields);
    suite_add_tcase(s, tc);
    TCase *bad = tcase_create("bad_input");
    tcase_add_test(bad, test_dc_truncated);
    tcase_add_test(bad, test_dc_huge_counts);
    suite_add_tcase(s, bad);
    return s;
}
