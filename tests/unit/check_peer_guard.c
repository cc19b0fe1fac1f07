/* Unit tests for the peer RPC's receiver guards: the replay set
 * (px_replay) and router-in's object-key check (rt_in_key_check). */
#include "config.h"

#include "proxy/px_replay.h"
#include "router/rt_router.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static void nonce_of(uint8_t n[KC_PEER_NONCE_LEN], unsigned i)
{
    memset(n, 0, KC_PEER_NONCE_LEN);
    memcpy(n, &i, sizeof(i));
    n[15] = 0x5a;
}

START_TEST(test_replay_window)
{
    px_replay *r = px_replay_new(30000, 1024, INT64_MIN);
    ck_assert_ptr_nonnull(r);
    uint8_t n[KC_PEER_NONCE_LEN];
    nonce_of(n, 1);
    int64_t now = 1700000000000LL;
    ck_assert_int_eq(px_replay_check(r, now, 7, now - 30001, n, 1), PX_REPLAY_SKEW);
    ck_assert_int_eq(px_replay_check(r, now, 7, now + 30001, n, 1), PX_REPLAY_SKEW);
    ck_assert_int_eq(px_replay_check(r, now, 7, INT64_MIN, n, 1), PX_REPLAY_SKEW);
    ck_assert_int_eq(px_replay_check(r, now, 7, INT64_MAX, n, 1), PX_REPLAY_SKEW);
    ck_assert_uint_eq(px_replay_size(r), 0);
    ck_assert_int_eq(px_replay_check(r, now, 7, now - 30000, n, 1), PX_REPLAY_OK);
    /* The same (sender, nonce): a replay, however late within the window. */
    ck_assert_int_eq(px_replay_check(r, now, 7, now - 30000, n, 1), PX_REPLAY_SEEN);
    ck_assert_int_eq(px_replay_check(r, now + 1, 7, now - 30000, n, 1), PX_REPLAY_SKEW);
    /* Another sender may use the same nonce bytes. */
    ck_assert_int_eq(px_replay_check(r, now, 8, now, n, 1), PX_REPLAY_OK);
    ck_assert_int_eq(px_replay_check(r, now, 8, now, n, 1), PX_REPLAY_SEEN);
    ck_assert_str_eq(px_replay_reason(PX_REPLAY_SEEN), "replay");
    ck_assert_str_eq(px_replay_reason(PX_REPLAY_SKEW), "clock_skew");
    ck_assert_str_eq(px_replay_reason(PX_REPLAY_FULL), "nonce_cache_full");
    px_replay_free(r);
}
END_TEST

START_TEST(test_replay_full)
{
    const size_t cap = 1000;
    px_replay *r = px_replay_new(1000, cap, 0);
    ck_assert_ptr_nonnull(r);
    uint8_t n[KC_PEER_NONCE_LEN];
    int64_t t0 = 5000000;
    for (unsigned i = 0; i < cap; i++) {
        nonce_of(n, i);
        ck_assert_int_eq(px_replay_check(r, t0 + i, 1, t0 + i, n, 1), PX_REPLAY_OK);
    }
    ck_assert_uint_eq(px_replay_size(r), cap);
    /* Full of live nonces: a new one is refused, old ones are still known. */
    nonce_of(n, 5000);
    ck_assert_int_eq(px_replay_check(r, t0 + 999, 1, t0 + 999, n, 1), PX_REPLAY_FULL);
    nonce_of(n, 0);
    ck_assert_int_eq(px_replay_check(r, t0 + 999, 1, t0, n, 1), PX_REPLAY_SEEN);
    /* Once the first ten expire (ts + window < now), ten new ones fit. */
    int64_t later = t0 + 1000 + 10;
    for (unsigned i = 0; i < 10; i++) {
        nonce_of(n, 6000 + i);
        ck_assert_int_eq(px_replay_check(r, later, 1, later, n, 1), PX_REPLAY_OK);
    }
    nonce_of(n, 7000);
    ck_assert_int_eq(px_replay_check(r, later, 1, later, n, 1), PX_REPLAY_FULL);
    /* Those still inside the window were not forgotten. */
    nonce_of(n, 500);
    ck_assert_int_eq(px_replay_check(r, later, 1, t0 + 500, n, 1), PX_REPLAY_SEEN);
    px_replay_free(r);
    ck_assert_ptr_null(px_replay_new(0, 10, 0));
    ck_assert_ptr_null(px_replay_new(10, 0, 0));
}
END_TEST

/* A request stamped before the process started is refused (a restart
 * empties the set: the previous process may have accepted it). */
START_TEST(test_replay_before_start)
{
    int64_t start = 1700000000000LL;
    px_replay *r = px_replay_new(30000, 64, start);
    ck_assert_ptr_nonnull(r);
    uint8_t n[KC_PEER_NONCE_LEN];
    nonce_of(n, 1);
    ck_assert_int_eq(px_replay_check(r, start + 10, 7, start - 1, n, 1), PX_REPLAY_BEFORE_START);
    ck_assert_int_eq(px_replay_check(r, start + 10, 7, start - 29000, n, 1), PX_REPLAY_BEFORE_START);
    /* Outside the window is still clock skew (checked first). */
    ck_assert_int_eq(px_replay_check(r, start + 10, 7, start - 40000, n, 1), PX_REPLAY_SKEW);
    ck_assert_uint_eq(px_replay_size(r), 0);
    ck_assert_int_eq(px_replay_check(r, start + 10, 7, start, n, 1), PX_REPLAY_OK);
    ck_assert_int_eq(px_replay_check(r, start + 10, 7, start, n, 1), PX_REPLAY_SEEN);
    /* Even if this host's clock steps back behind its own start. */
    nonce_of(n, 2);
    ck_assert_int_eq(px_replay_check(r, start - 5000, 7, start - 4000, n, 1), PX_REPLAY_BEFORE_START);
    /* Not asked (KzHello): accepted. */
    ck_assert_int_eq(px_replay_check(r, start + 10, 7, start - 1, n, 0), PX_REPLAY_OK);
    ck_assert_str_eq(px_replay_reason(PX_REPLAY_BEFORE_START), "before_start");
    px_replay_free(r);
}
END_TEST

/* The wall clock steps back after a sweep: the swept pair must not be
 * accepted again (the window's lower bound stays at the highest clock seen). */
START_TEST(test_replay_clock_step)
{
    const int64_t win = 1000, t0 = 10000000;
    px_replay *r = px_replay_new(win, 4, 0);
    ck_assert_ptr_nonnull(r);
    uint8_t a[KC_PEER_NONCE_LEN], n[KC_PEER_NONCE_LEN];
    nonce_of(a, 1);
    ck_assert_int_eq(px_replay_check(r, t0, 7, t0, a, 1), PX_REPLAY_OK);
    for (unsigned i = 2; i <= 4; i++) {
        nonce_of(n, i);
        ck_assert_int_eq(px_replay_check(r, t0, 7, t0, n, 1), PX_REPLAY_OK);
    }
    /* Full; at t0 + 2 * win all four have expired: a new pair sweeps them. */
    nonce_of(n, 5);
    ck_assert_int_eq(px_replay_check(r, t0 + 2 * win, 7, t0 + 2 * win, n, 1), PX_REPLAY_OK);
    ck_assert_uint_eq(px_replay_size(r), 1);
    /* The clock steps back to t0 + 100: the old rule (ts within now -
     * window) would take the swept nonce a again. */
    ck_assert_int_eq(px_replay_check(r, t0 + 100, 7, t0, a, 1), PX_REPLAY_SKEW);
    ck_assert_int_eq(px_replay_check(r, t0 + 100, 7, t0 + 50, a, 1), PX_REPLAY_SKEW);
    /* A fresh request stamped with the stepped-back clock within the window
     * of the highest reading is still accepted. */
    nonce_of(n, 6);
    ck_assert_int_eq(px_replay_check(r, t0 + 1500, 7, t0 + 1500, n, 1), PX_REPLAY_OK);
    /* The upper bound follows the current clock. */
    nonce_of(n, 7);
    ck_assert_int_eq(px_replay_check(r, t0 + 100, 7, t0 + 100 + win + 1, n, 1), PX_REPLAY_SKEW);
    px_replay_free(r);
}
END_TEST

static int key_ok(const char *k)
{
    char why[200];
    return rt_in_key_check("wal/", kc_str_c(k), why, sizeof(why)) == 0;
}

START_TEST(test_key_check)
{
    char why0[200];
    ck_assert(key_ok("wal/00af/1700000000000-101-1.kzw"));
    ck_assert(!key_ok("other/00af/x"));
    ck_assert(!key_ok("wa"));
    ck_assert(!key_ok(""));
    ck_assert(!key_ok("/wal/x"));
    ck_assert(!key_ok("wal/../etc/passwd"));
    ck_assert(!key_ok("wal/..x"));
    ck_assert(!key_ok("wal//x"));
    ck_assert(!key_ok("wal/a\\b"));
    ck_assert(!key_ok("wal/a\nb"));
    ck_assert(!key_ok("wal/a\x7f"));
    ck_assert(!key_ok("wal/a b"));
    ck_assert(!key_ok("wal/a%2e%2e"));
    /* Empty and dot components (the review's cases), and hidden names. */
    ck_assert(!key_ok("wal/./x"));
    ck_assert(!key_ok("wal/."));
    ck_assert(!key_ok("wal/a/"));
    ck_assert(!key_ok("wal/"));
    ck_assert(!key_ok("wal/.tmp/x"));
    ck_assert(!key_ok("wal/a/.hidden"));
    ck_assert(!key_ok("wal/a/."));
    ck_assert(key_ok("wal/a.b/c.d"));
    ck_assert(key_ok("wal/a/b-1.kzw"));
    ck_assert_int_eq(rt_in_key_check("wal/", kc_str_c("wal/./x"), why0, sizeof(why0)), -1);
    ck_assert(strstr(why0, "starting with '.'") != NULL);
    char why[200];
    /* A NUL inside the key (a kc_str, not a C string). */
    ck_assert_int_eq(rt_in_key_check("wal/", (kc_str){"wal/a\0b", 7}, why, sizeof(why)), -1);
    char *longk = malloc(RT_IN_MAX_KEY + 2);
    memset(longk, 'a', RT_IN_MAX_KEY + 1);
    memcpy(longk, "wal/", 4);
    longk[RT_IN_MAX_KEY + 1] = '\0';
    ck_assert(!key_ok(longk));
    longk[RT_IN_MAX_KEY] = '\0';
    ck_assert(key_ok(longk));
    free(longk);
    ck_assert_int_eq(rt_in_key_check("wal/", kc_str_c("x/y"), why, sizeof(why)), -1);
    ck_assert(strstr(why, "prefix \"wal/\"") != NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("peer_guard");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_replay_window);
    tcase_add_test(tc, test_replay_full);
    tcase_add_test(tc, test_replay_before_start);
    tcase_add_test(tc, test_replay_clock_step);
    tcase_add_test(tc, test_key_check);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
