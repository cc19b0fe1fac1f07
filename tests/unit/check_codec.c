/* Check runner for the codec unit tests. */
#include "config.h"

#include "tests/unit/kz_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kz_expect_bytes(const char *what, const void *got, size_t got_len, const uint8_t *want,
                     size_t want_len)
{
    const uint8_t *g = got;
    size_t n = got_len < want_len ? got_len : want_len;
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(g[i] == want[i], "%s: byte %zu is 0x%02x, golden says 0x%02x", what, i, g[i],
                      want[i]);
    ck_assert_msg(got_len == want_len, "%s: %zu bytes, golden has %zu", what, got_len, want_len);
}

int main(void)
{
    SRunner *sr = srunner_create(kc_buf_suite());
    srunner_add_suite(sr, kc_apiversions_suite());
    srunner_add_suite(sr, kc_metadata_suite());
    srunner_add_suite(sr, kc_produce_suite());
    srunner_add_suite(sr, kc_fetch_suite());
    srunner_add_suite(sr, kc_listoffsets_suite());
    srunner_add_suite(sr, kc_findcoordinator_suite());
    srunner_add_suite(sr, kc_record_suite());
    srunner_add_suite(sr, kc_listgroups_suite());
    srunner_add_suite(sr, kc_deleterecords_suite());
    srunner_add_suite(sr, kc_offsetforleaderepoch_suite());
    srunner_add_suite(sr, kc_describecluster_suite());
    srunner_add_suite(sr, kc_peer_suite());
    srunner_add_suite(sr, kc_crc32c_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
