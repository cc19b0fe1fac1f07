/* ListGroups golden bytes (ListGroupsRequest.json / ListGroupsResponse.json,
 * v0-v4, flexible from v3). */
#include "config.h"

#include "codec/kc_msg.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- goldens ---------------- */

/* v3: flexible, no StatesFilter yet: just the tag section. */
static const uint8_t req_v3[] = {
    NOTAGS, /* tags */
};

/* v4: StatesFilter (KIP-518). */
static const uint8_t req_v4[] = {
    UV(3),                            /* StatesFilter: compact 2 */
    UV(7), 'S', 't', 'a', 'b', 'l', 'e', /* "Stable" */
    UV(6), 'E', 'm', 'p', 't', 'y',   /* "Empty" */
    NOTAGS,                           /* tags */
};

/* v1: ThrottleTimeMs (v1+), not flexible. */
static const uint8_t resp_v1[] = {
    I32(0),                                 /* ThrottleTimeMs */
    I16(0),                                 /* ErrorCode */
    I32(2),                                 /* Groups: 2 */
    I16(2), 'g', '1',                       /*   GroupId "g1" */
    I16(8), 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r', /* ProtocolType "consumer" */
    I16(2), 'g', '2',                       /*   GroupId "g2" */
    I16(0),                                 /*   ProtocolType "" */
};

/* v4: flexible, GroupState (v4+). */
static const uint8_t resp_v4[] = {
    I32(7),                                 /* ThrottleTimeMs */
    I16(0),                                 /* ErrorCode */
    UV(2),                                  /* Groups: compact 1 */
    UV(3), 'g', '1',                        /*   GroupId "g1" */
    UV(9), 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r', /* ProtocolType "consumer" */
    UV(7), 'S', 't', 'a', 'b', 'l', 'e',   /*   GroupState "Stable" */
    NOTAGS,                                 /*   group tags */
    NOTAGS,                                 /* tags */
};

static const struct {
    const uint8_t *bytes;
    size_t len;
    int16_t version;
    int resp;
} lg_goldens[] = {
    {req_v3, sizeof(req_v3), 3, 0},
    {req_v4, sizeof(req_v4), 4, 0},
    {resp_v1, sizeof(resp_v1), 1, 1},
    {resp_v4, sizeof(resp_v4), 4, 1},
};

static int lg_decode(const uint8_t *b, size_t len, int16_t v, int resp, kc_rd *rd, kc_arena *a,
                     struct evbuffer *enc)
{
    kc_wr w;
    kc_rd_init(rd, b, len);
    if (enc)
        kc_wr_init(&w, enc, NULL);
    if (resp) {
        kc_listgroups_resp r;
        int rc = kc_listgroups_resp_decode(rd, v, a, &r);
        if (rc == 0 && enc)
            kc_listgroups_resp_encode(&w, v, &r);
        return rc;
    }
    kc_listgroups_req r;
    int rc = kc_listgroups_req_decode(rd, v, a, &r);
    if (rc == 0 && enc)
        kc_listgroups_req_encode(&w, v, &r);
    return rc;
}

/* ---------------- tests ---------------- */

START_TEST(test_lg_roundtrip)
{
    for (size_t g = 0; g < sizeof(lg_goldens) / sizeof(lg_goldens[0]); g++) {
        kc_rd rd;
        kc_arena a;
        kc_arena_init(&a);
        struct evbuffer *eb = evbuffer_new();
        int rc = lg_decode(lg_goldens[g].bytes, lg_goldens[g].len, lg_goldens[g].version,
                           lg_goldens[g].resp, &rd, &a, eb);
        ck_assert_msg(rc == 0, "golden %zu: %s at %zu", g, rd.err, rd.err_off);
        kz_expect_bytes("ListGroups re-encoded", evbuffer_pullup(eb, -1), evbuffer_get_length(eb),
                        lg_goldens[g].bytes, lg_goldens[g].len);
        evbuffer_free(eb);
        kc_arena_destroy(&a);
    }
}
END_TEST

START_TEST(test_lg_fields)
{
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    kc_listgroups_req q;
    /* v0-v2 requests are empty. */
    kc_rd_init(&rd, req_v3, 0);
    ck_assert_int_eq(kc_listgroups_req_decode(&rd, 0, &a, &q), 0);
    ck_assert_int_eq(q.nstates_filter, 0);
    kc_rd_init(&rd, req_v4, sizeof(req_v4));
    ck_assert_int_eq(kc_listgroups_req_decode(&rd, 4, &a, &q), 0);
    ck_assert_int_eq(q.nstates_filter, 2);
    ck_assert(kc_str_eq(q.states_filter[0], "Stable"));
    ck_assert(kc_str_eq(q.states_filter[1], "Empty"));

    kc_listgroups_resp r;
    kc_rd_init(&rd, resp_v1, sizeof(resp_v1));
    ck_assert_int_eq(kc_listgroups_resp_decode(&rd, 1, &a, &r), 0);
    ck_assert_int_eq(r.ngroups, 2);
    ck_assert(kc_str_eq(r.groups[0].group_id, "g1"));
    ck_assert(kc_str_eq(r.groups[0].protocol_type, "consumer"));
    ck_assert(kc_str_eq(r.groups[1].protocol_type, ""));
    ck_assert(kc_str_eq(r.groups[1].group_state, "")); /* default before v4 */
    kc_rd_init(&rd, resp_v4, sizeof(resp_v4));
    ck_assert_int_eq(kc_listgroups_resp_decode(&rd, 4, &a, &r), 0);
    ck_assert_int_eq(r.throttle_time_ms, 7);
    ck_assert(kc_str_eq(r.groups[0].group_state, "Stable"));
    /* v4 -> v0: no throttle time, no state, fixed-width lengths. */
    static const uint8_t want_v0[] = {
        I16(0), I32(1), I16(2), 'g', '1', I16(8), 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r',
    };
    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    kc_listgroups_resp_encode(&w, 0, &r);
    kz_expect_bytes("ListGroupsResponse v0", evbuffer_pullup(eb, -1), evbuffer_get_length(eb), want_v0,
                    sizeof(want_v0));
    evbuffer_free(eb);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_lg_truncated)
{
    for (size_t g = 0; g < sizeof(lg_goldens) / sizeof(lg_goldens[0]); g++) {
        for (size_t cut = 0; cut < lg_goldens[g].len; cut++) {
            uint8_t *buf = malloc(cut ? cut : 1);
            ck_assert_ptr_nonnull(buf);
            memcpy(buf, lg_goldens[g].bytes, cut);
            kc_rd rd;
            kc_arena a;
            kc_arena_init(&a);
            int rc = lg_decode(buf, cut, lg_goldens[g].version, lg_goldens[g].resp, &rd, &a, NULL);
            ck_assert_msg(rc == -1, "golden %zu cut at %zu decoded", g, cut);
            ck_assert_ptr_nonnull(rd.err);
            kc_arena_destroy(&a);
            free(buf);
        }
    }
}
END_TEST

START_TEST(test_lg_huge_counts)
{
    /* v4 request: ~4 billion states. */
    static const uint8_t req_states[] = {0xff, 0xff, 0xff, 0xff, 0x0f, NOTAGS};
    /* v0 response: 2^31-1 groups. */
    static const uint8_t resp_groups[] = {I16(0), I32(0x7fffffff), I16(0), I16(0)};
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    ck_assert_int_eq(lg_decode(req_states, sizeof(req_states), 4, 0, &rd, &a, NULL), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_int_eq(lg_decode(resp_groups, sizeof(resp_groups), 0, 1, &rd, &a, NULL), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_uint_lt(a.total, 4096);
    kc_arena_destroy(&a);
}
END_TEST

Suite *kc_listgroups_suite(void)
{
    Suite *s = suite_create("kc_listgroups");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_lg_roundtrip);
    tcase_add_test(tc, test_lg_fields);
    suite_add_tcase(s, tc);
    TCase *bad = tcase_create("bad_input");
    tcase_add_test(bad, test_lg_truncated);
    tcase_add_test(bad, test_lg_huge_counts);
    suite_add_tcase(s, bad);
    return s;
}
