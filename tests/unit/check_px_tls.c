/* Unit tests for the client listener's TLS pieces: the client_tls config
 * section and the first-bytes check that names plaintext on the TLS port. */
#include "config.h"

#include "proxy/px_config.h"
#include "proxy/px_tls.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PX_T_BASE "{\"node_id\":1,\"zone\":\"a\",\"listen\":\"127.0.0.1:9092\",\"bootstrap_servers\":[\"127.0.0.1:1\"]"

START_TEST(test_client_tls_config)
{
    static const struct {
        const char *extra;
        int rc;
        const char *err; /* in errstr when rc is -1 */
        int auth;
    } cases[] = {
        {"", 0, NULL, PX_TLS_AUTH_NONE},
        {",\"client_tls\":{\"cert_file\":\"c\",\"key_file\":\"k\"}", 0, NULL, PX_TLS_AUTH_NONE},
        {",\"client_tls\":{\"cert_file\":\"c\",\"key_file\":\"k\",\"ca_file\":\"ca\",\"client_auth\":\"required\"}", 0,
         NULL, PX_TLS_AUTH_REQUIRED},
        {",\"client_tls\":{\"cert_file\":\"c\",\"key_file\":\"k\",\"ca_file\":\"ca\",\"client_auth\":\"requested\"}", 0,
         NULL, PX_TLS_AUTH_REQUESTED},
        {",\"client_tls\":{\"key_file\":\"k\"}", -1, "client_tls.cert_file: missing", 0},
        {",\"client_tls\":{\"cert_file\":\"c\"}", -1, "client_tls.key_file: missing", 0},
        {",\"client_tls\":{\"cert_file\":\"c\",\"key_file\":\"k\",\"client_auth\":\"required\"}", -1,
         "client_tls.ca_file: missing", 0},
        {",\"client_tls\":{\"cert_file\":\"c\",\"key_file\":\"k\",\"client_auth\":\"yes\"}", -1,
         "client_tls.client_auth: expected", 0},
        {",\"client_tls\":{\"cert_file\":\"c\",\"key_file\":\"k\",\"ciphers\":\"x\"}", -1, "client_tls.ciphers: unknown key", 0},
        {",\"client_tls\":true", -1, "client_tls: expected an object", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[512], err[256] = "";
        px_config cfg;
        snprintf(json, sizeof(json), PX_T_BASE "%s}", cases[i].extra);
        int rc = px_config_parse(json, &cfg, err, sizeof(err));
        ck_assert_msg(rc == cases[i].rc, "case %zu: rc %d (%s)", i, rc, err);
        if (rc == 0) {
            ck_assert_int_eq(cfg.client_tls.enabled, i > 0);
            ck_assert_int_eq(cfg.client_tls.client_auth, cases[i].auth);
        } else {
            ck_assert_msg(strstr(err, cases[i].err) != NULL, "case %zu: %s", i, err);
        }
        px_config_free(&cfg);
    }
}
END_TEST

START_TEST(test_sniff)
{
    const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00};
    const uint8_t kafka[] = {0x00, 0x00, 0x00, 0x21, 0x00, 0x12};
    ck_assert_ptr_null(px_tls_sniff(hello, sizeof(hello)));
    ck_assert_ptr_nonnull(strstr(px_tls_sniff(kafka, sizeof(kafka)), "plaintext Kafka request"));
    ck_assert_ptr_nonnull(strstr(px_tls_sniff((const uint8_t *)"GET / HTTP/1.1", 14), "HTTP"));
    ck_assert_ptr_nonnull(px_tls_sniff((const uint8_t *)"\x15\x03\x03", 3));
    ck_assert_ptr_nonnull(px_tls_sniff((const uint8_t *)"hello", 1));
}
END_TEST

START_TEST(test_new_missing_files)
{
    px_client_tls t = {.enabled = 1, .cert_file = "/nonexistent/c.pem", .key_file = "/nonexistent/k.pem"};
    char err[512] = "";
    ck_assert_ptr_null(px_tls_new(&t, err, sizeof(err)));
    ck_assert_msg(strstr(err, "client_tls.cert_file /nonexistent/c.pem") != NULL, "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("px_tls");
    TCase *tc = tcase_create("pieces");
    tcase_add_test(tc, test_client_tls_config);
    tcase_add_test(tc, test_sniff);
    tcase_add_test(tc, test_new_missing_files);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
