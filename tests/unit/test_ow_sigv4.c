/*
 * SigV4 against the worked examples of AWS's S3 documentation ("Examples:
 * Signature Calculations in AWS Signature Version 4" / "Authenticating
 * Requests: Using the Authorization Header"): bucket examplebucket, the
 * documentation's example credentials, 20130524T000000Z, us-east-1.
 */
#include "config.h"

#include "tests/unit/ow_test.h"

#include "objwal/ow_sigv4.h"

#include <event2/buffer.h>
#include <string.h>

#define EX_AK "AKIAIOSFODNN7EXAMPLE"
#define EX_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EX_HOST "examplebucket.s3.amazonaws.com"
#define EX_DATE "20130524T000000Z"

static void ex_sign(const char *method, const char *uri, const char *query,
                    const ow_sigv4_header *h, size_t nh, const char *payload, char *auth,
                    char *sig)
{
    ow_sigv4_request r = {
        .method = method,
        .canonical_uri = uri,
        .query = query,
        .headers = h,
        .nheaders = nh,
        .payload_hash = payload,
        .amz_date = EX_DATE,
        .region = "us-east-1",
        .service = "s3",
        .access_key = EX_AK,
        .secret_key = EX_SK,
    };
    ck_assert_int_eq(ow_sigv4_authorization(&r, auth, 512, sig), 0);
}

START_TEST(sigv4_get_object)
{
    ow_sigv4_header h[] = {
        {"Host", EX_HOST},
        {"Range", "bytes=0-9"},
        {"x-amz-content-sha256", OW_SHA256_EMPTY},
        {"x-amz-date", EX_DATE},
    };
    char auth[512], sig[65];
    ex_sign("GET", "/test.txt", "", h, 4, OW_SHA256_EMPTY, auth, sig);
    ck_assert_str_eq(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
                           "s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;"
                           "x-amz-date,Signature="
                           "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}
END_TEST

START_TEST(sigv4_put_object)
{
    const char *body = "Welcome to Amazon S3.";
    char hash[65];
    ow_sha256_hex(body, strlen(body), hash);
    ck_assert_str_eq(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    /* The same hash computed over an evbuffer of several chains. */
    struct evbuffer *eb = evbuffer_new();
    evbuffer_add(eb, body, 7);
    struct evbuffer *tail = evbuffer_new();
    evbuffer_add(tail, body + 7, strlen(body) - 7);
    evbuffer_add_buffer(eb, tail);
    char hash2[65];
    ck_assert_int_eq(ow_sha256_hex_evbuffer(eb, hash2), 0);
    ck_assert_str_eq(hash2, hash);
    evbuffer_free(tail);
    evbuffer_free(eb);

    char uri[64];
    ck_assert_uint_ne(ow_uri_encode("/test$file.text", 15, 1, uri, sizeof(uri)), (size_t)-1);
    ck_assert_str_eq(uri, "/test%24file.text");
    ow_sigv4_header h[] = {
        {"Host", EX_HOST},
        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
        {"x-amz-date", EX_DATE},
        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
        {"x-amz-content-sha256", hash},
    };
    char auth[512], sig[65];
    ex_sign("PUT", uri, "", h, 5, hash, auth, sig);
    ck_assert_str_eq(sig, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    ck_assert(strstr(auth, "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
                           "x-amz-storage-class,") != NULL);
}
END_TEST

START_TEST(sigv4_get_bucket_lifecycle)
{
    ow_sigv4_header h[] = {
        {"host", EX_HOST},
        {"x-amz-date", EX_DATE},
        {"x-amz-content-sha256", OW_SHA256_EMPTY},
    };
    char auth[512], sig[65];
    ex_sign("GET", "/", "lifecycle", h, 3, OW_SHA256_EMPTY, auth, sig);
    ck_assert_str_eq(sig, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}
END_TEST

START_TEST(sigv4_list_objects)
{
    ow_sigv4_header h[] = {
        {"host", EX_HOST},
        {"x-amz-date", EX_DATE},
        {"x-amz-content-sha256", OW_SHA256_EMPTY},
    };
    char auth[512], sig[65];
    /* Given out of order: the canonical query sorts it. */
    ex_sign("GET", "/", "prefix=J&max-keys=2", h, 3, OW_SHA256_EMPTY, auth, sig);
    ck_assert_str_eq(sig, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}
END_TEST

START_TEST(sigv4_helpers)
{
    char d[17];
    ow_amz_date(1369353600, d); /* 2013-05-24 00:00:00 UTC */
    ck_assert_str_eq(d, EX_DATE);
    char out[64];
    ow_uri_encode("a b/c~d", 7, 0, out, sizeof(out));
    ck_assert_str_eq(out, "a%20b%2Fc~d");
    ck_assert_uint_eq(ow_uri_encode("abcdef", 6, 0, out, 4), (size_t)-1);
}
END_TEST

Suite *ow_sigv4_suite(void)
{
    Suite *s = suite_create("ow_sigv4");
    TCase *tc = tcase_create("aws_examples");
    tcase_add_test(tc, sigv4_get_object);
    tcase_add_test(tc, sigv4_put_object);
    tcase_add_test(tc, sigv4_get_bucket_lifecycle);
    tcase_add_test(tc, sigv4_list_objects);
    tcase_add_test(tc, sigv4_helpers);
    suite_add_tcase(s, tc);
    return s;
}
