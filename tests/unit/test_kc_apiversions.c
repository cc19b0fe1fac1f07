/* ApiVersions golden bytes (ApiVersionsRequest.json / ApiVersionsResponse.json). */
#include "config.h"

#include "codec/kc_msg.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>

/* v3 request: ClientSoftwareName "kcat", ClientSoftwareVersion "1.7", no tags. */
static const uint8_t req_v3[] = {UV(5), 'k', 'c', 'a', 't', UV(4), '1', '.', '7', NOTAGS};

/* v0 response: ErrorCode 0, ApiKeys [ {0,3,7}, {18,0,3} ]. */
static const uint8_t resp_v0[] = {I16(0), I32(2), I16(0), I16(3), I16(7), I16(18), I16(0), I16(3)};

/* v3 response: ErrorCode 0, ApiKeys compact [ {0,3,9} ], ThrottleTimeMs 5, no tags. */
static const uint8_t resp_v3[] = {I16(0), UV(2), I16(0), I16(3), I16(9), NOTAGS, I32(5), NOTAGS};

static void roundtrip_resp(const uint8_t *golden, size_t len, int16_t version)
{
    kc_rd rd;
    kc_arena a;
    kc_apiversions_resp r;
    kc_rd_init(&rd, golden, len);
    kc_arena_init(&a);
    ck_assert_int_eq(kc_apiversions_resp_decode(&rd, version, &a, &r), 0);
    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    kc_apiversions_resp_encode(&w, version, &r);
    size_t n = evbuffer_get_length(eb);
    kz_expect_bytes("ApiVersionsResponse", evbuffer_pullup(eb, -1), n, golden, len);
    evbuffer_free(eb);
    kc_arena_destroy(&a);
}

START_TEST(test_apiversions_req_v3)
{
    kc_rd rd;
    kc_apiversions_req r;
    kc_rd_init(&rd, req_v3, sizeof(req_v3));
    ck_assert_int_eq(kc_apiversions_req_decode(&rd, 3, NULL, &r), 0);
    ck_assert(kc_str_eq(r.client_software_name, "kcat"));
    ck_assert(kc_str_eq(r.client_software_version, "1.7"));
    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    kc_apiversions_req_encode(&w, 3, &r);
    kz_expect_bytes("ApiVersionsRequest v3", evbuffer_pullup(eb, -1), evbuffer_get_length(eb),
                    req_v3, sizeof(req_v3));
    evbuffer_free(eb);
}
END_TEST

START_TEST(test_apiversions_req_v0_empty)
{
    kc_rd rd;
    kc_apiversions_req r;
    kc_rd_init(&rd, "", 0);
    ck_assert_int_eq(kc_apiversions_req_decode(&rd, 0, NULL, &r), 0);
    uint8_t extra = 1;
    kc_rd_init(&rd, &extra, 1);
    ck_assert_int_eq(kc_apiversions_req_decode(&rd, 0, NULL, &r), -1);
    ck_assert_str_eq(rd.err, "garbage after message");
}
END_TEST

START_TEST(test_apiversions_resp_v0)
{
    roundtrip_resp(resp_v0, sizeof(resp_v0), 0);
}
END_TEST

START_TEST(test_apiversions_resp_v3)
{
    kc_rd rd;
    kc_arena a;
    kc_apiversions_resp r;
    kc_rd_init(&rd, resp_v3, sizeof(resp_v3));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_apiversions_resp_decode(&rd, 3, &a, &r), 0);
    ck_assert_int_eq(r.napi_keys, 1);
    ck_assert_int_eq(r.api_keys[0].max_version, 9);
    ck_assert_int_eq(r.throttle_time_ms, 5);
    kc_arena_destroy(&a);
    roundtrip_resp(resp_v3, sizeof(resp_v3), 3);
}
END_TEST

START_TEST(test_apiversions_resp_truncated)
{
    for (size_t cut = 0; cut < sizeof(resp_v3); cut++) {
        kc_rd rd;
        kc_arena a;
        kc_apiversions_resp r;
        kc_rd_init(&rd, resp_v3, cut);
        kc_arena_init(&a);
        ck_assert_int_eq(kc_apiversions_resp_decode(&rd, 3, &a, &r), -1);
        kc_arena_destroy(&a);
    }
}
END_TEST

Suite *kc_apiversions_suite(void)
{
    Suite *s = suite_create("kc_apiversions");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_apiversions_req_v3);
    tcase_add_test(tc, test_apiversions_req_v0_empty);
    tcase_add_test(tc, test_apiversions_resp_v0);
    tcase_add_test(tc, test_apiversions_resp_v3);
    tcase_add_test(tc, test_apiversions_resp_truncated);
    suite_add_tcase(s, tc);
    return s;
}
