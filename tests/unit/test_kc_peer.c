/* The peer RPC codec (codec/kc_peer.h): KzHello and KzWalAppend golden
 * bytes, and the MAC: seal, verify, and every way verification must fail. */
#include "config.h"

#include "codec/kc_peer.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "0123456789abcdef-peer-secret"

/* Encode with fn into a fresh buffer and compare with the golden bytes. */
#define EXPECT_ENCODED(fn, msg, want)                                                              \
    do {                                                                                           \
        struct evbuffer *eb_ = evbuffer_new();                                                     \
        kc_wr w_;                                                                                  \
        kc_wr_init(&w_, eb_, NULL);                                                                \
        fn(&w_, (msg));                                                                            \
        ck_assert_int_eq(w_.err, 0);                                                               \
        size_t n_ = evbuffer_get_length(eb_);                                                      \
        kz_expect_bytes(#fn, evbuffer_pullup(eb_, -1), n_, (want), sizeof(want));                  \
        evbuffer_free(eb_);                                                                        \
    } while (0)

/* ---------------- KzHello ---------------- */

static const uint8_t hello[] = {
    I32(103),                     /* node_id */
    UV(2), 'b',                   /* zone "b" */
    UV(10), '1', '2', '7', '.', '0', '.', '0', '.', '4', /* host "127.0.0.4" */
    I32(9092),                    /* port */
    I64(1700000000123LL),         /* started_ms */
};

START_TEST(test_hello_golden)
{
    kc_rd rd;
    kc_peer_hello h;
    kc_rd_init(&rd, hello, sizeof(hello));
    ck_assert_int_eq(kc_peer_hello_decode(&rd, &h), 0);
    ck_assert_int_eq(h.node_id, 103);
    ck_assert(kc_str_eq(h.zone, "b"));
    ck_assert(kc_str_eq(h.host, "127.0.0.4"));
    ck_assert_int_eq(h.port, 9092);
    ck_assert(h.started_ms == 1700000000123LL);
    EXPECT_ENCODED(kc_peer_hello_encode, &h, hello);
}
END_TEST

/* A draining proxy's hello: the flags as tag 0 after started_ms; encoded
 * only when non-zero, so every other hello stays byte for byte as before. */
static const uint8_t hello_draining[] = {
    I32(103), UV(2), 'b', UV(10), '1', '2', '7', '.', '0', '.', '0', '.', '4', I32(9092), I64(1700000000123LL),
    UV(1), UV(0), UV(4), I32(1), /* one tag: 0, 4 bytes, KC_PEER_HELLO_DRAINING */
};

START_TEST(test_hello_draining)
{
    kc_rd rd;
    kc_peer_hello h;
    kc_rd_init(&rd, hello_draining, sizeof(hello_draining));
    ck_assert_int_eq(kc_peer_hello_decode(&rd, &h), 0);
    ck_assert_uint_eq(h.flags, KC_PEER_HELLO_DRAINING);
    EXPECT_ENCODED(kc_peer_hello_encode, &h, hello_draining);
    kc_rd_init(&rd, hello, sizeof(hello));
    ck_assert_int_eq(kc_peer_hello_decode(&rd, &h), 0);
    ck_assert_uint_eq(h.flags, 0);
    /* An unknown tag is skipped; a tag longer than the message fails. */
    static const uint8_t other_tag[] = {I32(1), UV(2), 'b', UV(2), 'h', I32(1), I64(0), UV(1), UV(7), UV(2), 0, 0};
    kc_rd_init(&rd, other_tag, sizeof(other_tag));
    ck_assert_int_eq(kc_peer_hello_decode(&rd, &h), 0);
    ck_assert_uint_eq(h.flags, 0);
    static const uint8_t long_tag[] = {I32(1), UV(2), 'b', UV(2), 'h', I32(1), I64(0), UV(1), UV(0), UV(9), 0};
    kc_rd_init(&rd, long_tag, sizeof(long_tag));
    ck_assert_int_eq(kc_peer_hello_decode(&rd, &h), -1);
}
END_TEST

START_TEST(test_hello_bad)
{
    uint8_t b[sizeof(hello)];
    kc_rd rd;
    kc_peer_hello h;
    /* Every truncation fails. */
    for (size_t n = 0; n < sizeof(hello); n++) {
        kc_rd_init(&rd, hello, n);
        ck_assert_int_eq(kc_peer_hello_decode(&rd, &h), -1);
    }
    /* Trailing bytes that are not a tagged-field section fail (a count of
     * 5 tags with nothing after it). */
    uint8_t longer[sizeof(hello) + 1];
    memcpy(longer, hello, sizeof(hello));
    longer[sizeof(hello)] = 5;
    kc_rd_init(&rd, longer, sizeof(longer));
    ck_assert_int_eq(kc_peer_hello_decode(&rd, &h), -1);
    /* Port 0 and an empty zone fail. */
    memcpy(b, hello, sizeof(b));
    size_t port_off = 4 + 2 + 10;
    memset(b + port_off, 0, 4);
    kc_rd_init(&rd, b, sizeof(b));
    ck_assert_int_eq(kc_peer_hello_decode(&rd, &h), -1);
    static const uint8_t empty_zone[] = {I32(1), UV(1), UV(2), 'h', I32(1), I64(0)};
    kc_rd_init(&rd, empty_zone, sizeof(empty_zone));
    ck_assert_int_eq(kc_peer_hello_decode(&rd, &h), -1);
}
END_TEST

/* ---------------- KzWalAppend ---------------- */

static const uint8_t wal_req[] = {
    UV(6), 'w', 'a', 'l', '/', 'k',   /* key "wal/k" */
    UV(2),                             /* groups: 1 */
    I16(9),                            /*   produce_version */
    I16(-1),                           /*   acks all */
    I32(30000),                        /*   timeout_ms */
    UV(0),                             /*   transactional_id null */
    UV(4), 'a', 'p', 'p',              /*   client_id "app" */
    UV(2),                             /*   brokers: 1 */
    I32(2),                            /*     broker_id */
    UV(3),                             /*     parts: 2 */
    UV(2), 't',                        /*       topic "t" */
    I32(0),                            /*       partition */
    I64(64),                           /*       off */
    I32(100),                          /*       len */
    I32(0xdeadbeef),                   /*       crc32c */
    UV(2), 't',                        /*       topic "t" */
    I32(5),                            /*       partition */
    I64(164),                          /*       off */
    I32(7),                            /*       len */
    I32(0x01020304),                   /*       crc32c */
};

START_TEST(test_wal_req_golden)
{
    kc_rd rd;
    kc_arena a;
    kc_wal_append_req r;
    kc_arena_init(&a);
    kc_rd_init(&rd, wal_req, sizeof(wal_req));
    ck_assert_int_eq(kc_wal_append_req_decode(&rd, &a, &r), 0);
    ck_assert(kc_str_eq(r.key, "wal/k"));
    ck_assert_int_eq(r.ngroups, 1);
    const kc_wal_group *g = &r.groups[0];
    ck_assert_int_eq(g->produce_version, 9);
    ck_assert_int_eq(g->acks, -1);
    ck_assert_int_eq(g->timeout_ms, 30000);
    ck_assert_int_lt(g->transactional_id.len, 0);
    ck_assert(kc_str_eq(g->client_id, "app"));
    ck_assert_int_eq(g->nbrokers, 1);
    ck_assert_int_eq(g->brokers[0].broker_id, 2);
    ck_assert_int_eq(g->brokers[0].nparts, 2);
    const kc_wal_part *p = &g->brokers[0].parts[1];
    ck_assert(kc_str_eq(p->topic, "t"));
    ck_assert_int_eq(p->partition, 5);
    ck_assert(p->off == 164);
    ck_assert_int_eq(p->len, 7);
    ck_assert_uint_eq(p->crc32c, 0x01020304u);
    ck_assert_uint_eq(g->brokers[0].parts[0].crc32c, 0xdeadbeefu);
    EXPECT_ENCODED(kc_wal_append_req_encode, &r, wal_req);
    /* Truncations fail; acks 2 fails. */
    for (size_t n = 0; n < sizeof(wal_req); n++) {
        kc_rd_init(&rd, wal_req, n);
        ck_assert_int_eq(kc_wal_append_req_decode(&rd, &a, &r), -1);
    }
    uint8_t bad[sizeof(wal_req)];
    memcpy(bad, wal_req, sizeof(bad));
    bad[6 + 1 + 2] = 0;     /* acks (after key and group count, version): */
    bad[6 + 1 + 2 + 1] = 2; /*   2 */
    kc_rd_init(&rd, bad, sizeof(bad));
    ck_assert_int_eq(kc_wal_append_req_decode(&rd, &a, &r), -1);
    kc_arena_destroy(&a);
}
END_TEST


/* The same request with principals: the tagged section after the groups. */
static const uint8_t wal_req_principal[] = {
    UV(6), 'w', 'a', 'l', '/', 'k',
    UV(2),
    I16(9), I16(-1), I32(30000), UV(0), UV(4), 'a', 'p', 'p',
    UV(2), I32(2), UV(2),
    UV(2), 't', I32(0), I64(64), I32(100), I32(0xdeadbeef),
    UV(1),                             /* tagged fields: 1 */
    UV(0),                             /*   tag 0: principals */
    UV(7),                             /*   size */
    UV(2),                             /*   principals: 1 */
    UV(6), 'a', 'l', 'i', 'c', 'e',    /*     "alice" */
};

START_TEST(test_wal_req_principal)
{
    kc_rd rd;
    kc_arena a;
    kc_wal_append_req r;
    kc_arena_init(&a);
    kc_rd_init(&rd, wal_req_principal, sizeof(wal_req_principal));
    ck_assert_int_eq(kc_wal_append_req_decode(&rd, &a, &r), 0);
    ck_assert_int_eq(r.ngroups, 1);
    ck_assert(kc_str_eq(r.groups[0].principal, "alice"));
    EXPECT_ENCODED(kc_wal_append_req_encode, &r, wal_req_principal);
    /* Without principals: no tagged section at all (what an old peer reads),
     * and the decoder gives null principals. */
    kc_rd_init(&rd, wal_req, sizeof(wal_req));
    ck_assert_int_eq(kc_wal_append_req_decode(&rd, &a, &r), 0);
    ck_assert_int_lt(r.groups[0].principal.len, 0);
    r.groups[0].principal = (kc_str){NULL, 0}; /* a zeroed field is null too */
    EXPECT_ENCODED(kc_wal_append_req_encode, &r, wal_req);
    /* Truncations inside the tagged section fail (10 bytes back it is absent). */
    for (size_t n = sizeof(wal_req_principal) - 9; n < sizeof(wal_req_principal); n++) {
        kc_rd_init(&rd, wal_req_principal, n);
        ck_assert_int_eq(kc_wal_append_req_decode(&rd, &a, &r), -1);
    }
    uint8_t bad[sizeof(wal_req_principal)];
    /* A count that does not match the groups. */
    memcpy(bad, wal_req_principal, sizeof(bad));
    bad[sizeof(bad) - 7] = 3;
    kc_rd_init(&rd, bad, sizeof(bad));
    ck_assert_int_eq(kc_wal_append_req_decode(&rd, &a, &r), -1);
    ck_assert_str_eq(rd.err, "principals do not match the groups");
    /* A NUL inside the principal. */
    memcpy(bad, wal_req_principal, sizeof(bad));
    bad[sizeof(bad) - 3] = 0;
    kc_rd_init(&rd, bad, sizeof(bad));
    ck_assert_int_eq(kc_wal_append_req_decode(&rd, &a, &r), -1);
    ck_assert_str_eq(rd.err, "principal contains a NUL byte");
    /* An unknown tag is skipped. */
    uint8_t unk[sizeof(wal_req) + 5];
    memcpy(unk, wal_req, sizeof(wal_req));
    const uint8_t tail[] = {1, 9, 2, 0xaa, 0xbb};
    memcpy(unk + sizeof(wal_req), tail, sizeof(tail));
    kc_rd_init(&rd, unk, sizeof(unk));
    ck_assert_int_eq(kc_wal_append_req_decode(&rd, &a, &r), 0);
    ck_assert_int_lt(r.groups[0].principal.len, 0);
    /* A tag longer than the frame fails. */
    unk[sizeof(wal_req) + 2] = 9;
    kc_rd_init(&rd, unk, sizeof(unk));
    ck_assert_int_eq(kc_wal_append_req_decode(&rd, &a, &r), -1);
    kc_arena_destroy(&a);
}
END_TEST

static const uint8_t wal_resp[] = {
    UV(2),                             /* groups: 1 */
    I32(0),                            /*   throttle_time_ms */
    UV(3),                             /*   parts: 2 */
    I32(0),                            /*     index */
    I16(0),                            /*     error_code */
    I64(42),                           /*     base_offset */
    I64(-1),                           /*     log_append_time_ms */
    I64(0),                            /*     log_start_offset */
    UV(1),                             /*     record_errors: 0 */
    UV(0),                             /*     error_message null */
    I32(5),                            /*     index */
    I16(6),                            /*     error_code NOT_LEADER_OR_FOLLOWER */
    I64(-1),                           /*     base_offset */
    I64(-1),                           /*     log_append_time_ms */
    I64(-1),                           /*     log_start_offset */
    UV(2),                             /*     record_errors: 1 */
    I32(3),                            /*       batch_index */
    UV(3), 'n', 'o',                   /*       message "no" */
    UV(4), 'e', 'r', 'r',              /*     error_message "err" */
};

START_TEST(test_wal_resp_golden)
{
    kc_rd rd;
    kc_arena a;
    kc_wal_append_resp r;
    kc_arena_init(&a);
    kc_rd_init(&rd, wal_resp, sizeof(wal_resp));
    ck_assert_int_eq(kc_wal_append_resp_decode(&rd, &a, &r), 0);
    ck_assert_int_eq(r.ngroups, 1);
    ck_assert_int_eq(r.groups[0].nparts, 2);
    const kc_produce_resp_partition *p = &r.groups[0].parts[0];
    ck_assert(p->base_offset == 42);
    ck_assert_int_lt(p->error_message.len, 0);
    p = &r.groups[0].parts[1];
    ck_assert_int_eq(p->index, 5);
    ck_assert_int_eq(p->error_code, 6);
    ck_assert_int_eq(p->nrecord_errors, 1);
    ck_assert_int_eq(p->record_errors[0].batch_index, 3);
    ck_assert(kc_str_eq(p->record_errors[0].batch_index_error_message, "no"));
    ck_assert(kc_str_eq(p->error_message, "err"));
    EXPECT_ENCODED(kc_wal_append_resp_encode, &r, wal_resp);
    for (size_t n = 0; n < sizeof(wal_resp); n++) {
        kc_rd_init(&rd, wal_resp, n);
        ck_assert_int_eq(kc_wal_append_resp_decode(&rd, &a, &r), -1);
    }
    /* A group count that cannot fit in the bytes left fails before allocating. */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0x7f};
    kc_rd_init(&rd, huge, sizeof(huge));
    ck_assert_int_eq(kc_wal_append_resp_decode(&rd, &a, &r), -1);
    kc_arena_destroy(&a);
}
END_TEST

/* ---------------- MAC ---------------- */

/* A sealed KzHello request for node 7: auth prefix + hello + MAC. */
static size_t sealed_request(uint8_t *out, size_t cap, kc_peer_auth *auth)
{
    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    auth->sender = 101;
    auth->ts_ms = 1700000000000LL;
    kc_peer_auth_write(&w, auth);
    kc_wr_raw(&w, hello, sizeof(hello));
    ck_assert_int_eq(w.err, 0);
    ck_assert_int_eq(kc_peer_seal(eb, SECRET, strlen(SECRET), KC_API_KZ_HELLO, KC_PEER_VERSION, 7, NULL), 0);
    size_t n = evbuffer_get_length(eb);
    ck_assert_uint_le(n, cap);
    evbuffer_remove(eb, out, n);
    evbuffer_free(eb);
    return n;
}

START_TEST(test_mac_request)
{
    uint8_t buf[256];
    kc_peer_auth auth;
    size_t n = sealed_request(buf, sizeof(buf), &auth);
    size_t want = 4 + 8 + KC_PEER_NONCE_LEN + sizeof(hello) + KC_PEER_MAC_LEN;
    ck_assert_uint_eq(n, want);
    /* The prefix as documented: sender, wall clock, nonce. */
    static const uint8_t prefix[] = {I32(101), I64(1700000000000LL)};
    kz_expect_bytes("auth prefix", buf, 12, prefix, sizeof(prefix));
    ck_assert_int_eq(memcmp(buf + 12, auth.nonce, KC_PEER_NONCE_LEN), 0);
    size_t plen = 0;
    ck_assert_int_eq(kc_peer_verify(buf, n, SECRET, strlen(SECRET), KC_API_KZ_HELLO, KC_PEER_VERSION, 7, NULL, &plen),
                     0);
    ck_assert_uint_eq(plen, n - KC_PEER_MAC_LEN);
    /* Two seals differ (fresh nonce), both verify. */
    uint8_t buf2[256];
    kc_peer_auth auth2;
    size_t n2 = sealed_request(buf2, sizeof(buf2), &auth2);
    ck_assert_uint_eq(n2, n);
    ck_assert_int_ne(memcmp(auth.nonce, auth2.nonce, KC_PEER_NONCE_LEN), 0);
    /* Any flipped bit fails, MAC included. */
    for (size_t i = 0; i < n; i++) {
        buf[i] ^= 0x01;
        ck_assert_int_eq(kc_peer_verify(buf, n, SECRET, strlen(SECRET), KC_API_KZ_HELLO, KC_PEER_VERSION, 7, NULL,
                                        &plen),
                         -1);
        buf[i] ^= 0x01;
    }
    /* Wrong secret, wrong ApiKey or version, as a response, truncated: all fail. */
    ck_assert_int_eq(kc_peer_verify(buf, n, "another-secret-0123", 19, KC_API_KZ_HELLO, KC_PEER_VERSION, 7, NULL,
                                    &plen),
                     -1);
    ck_assert_int_eq(kc_peer_verify(buf, n, SECRET, strlen(SECRET), KC_API_KZ_WAL_APPEND, KC_PEER_VERSION,
                                    7, NULL, &plen),
                     -1);
    ck_assert_int_eq(kc_peer_verify(buf, n, SECRET, strlen(SECRET), KC_API_KZ_HELLO, 1, 7, NULL, &plen), -1);
    ck_assert_int_eq(kc_peer_verify(buf, n, SECRET, strlen(SECRET), KC_API_KZ_HELLO, KC_PEER_VERSION,
                                    7, auth.nonce, &plen),
                     -1);
    ck_assert_int_eq(kc_peer_verify(buf, n - 1, SECRET, strlen(SECRET), KC_API_KZ_HELLO, KC_PEER_VERSION, 7, NULL,
                                    &plen),
                     -1);
    ck_assert_int_eq(kc_peer_verify(buf, KC_PEER_MAC_LEN - 1, SECRET, strlen(SECRET), KC_API_KZ_HELLO,
                                    KC_PEER_VERSION, 7, NULL, &plen),
                     -1);
}
END_TEST

START_TEST(test_mac_response)
{
    /* A KzWalAppend response bound to the request's nonce. */
    uint8_t nonce[KC_PEER_NONCE_LEN], other[KC_PEER_NONCE_LEN];
    for (int i = 0; i < KC_PEER_NONCE_LEN; i++) {
        nonce[i] = (uint8_t)i;
        other[i] = (uint8_t)i;
    }
    other[KC_PEER_NONCE_LEN - 1] ^= 0x80;
    struct evbuffer *eb = evbuffer_new();
    evbuffer_add(eb, wal_resp, sizeof(wal_resp));
    ck_assert_int_eq(
        kc_peer_seal(eb, SECRET, strlen(SECRET), KC_API_KZ_WAL_APPEND, KC_PEER_VERSION, 101, nonce), 0);
    size_t n = evbuffer_get_length(eb);
    ck_assert_uint_eq(n, sizeof(wal_resp) + KC_PEER_MAC_LEN);
    const uint8_t *p = evbuffer_pullup(eb, -1);
    kz_expect_bytes("sealed payload", p, sizeof(wal_resp), wal_resp, sizeof(wal_resp));
    size_t plen = 0;
    ck_assert_int_eq(
        kc_peer_verify(p, n, SECRET, strlen(SECRET), KC_API_KZ_WAL_APPEND, KC_PEER_VERSION, 101, nonce, &plen), 0);
    ck_assert_uint_eq(plen, sizeof(wal_resp));
    /* Another request's nonce, no nonce (as a request), another secret: fail. */
    ck_assert_int_eq(
        kc_peer_verify(p, n, SECRET, strlen(SECRET), KC_API_KZ_WAL_APPEND, KC_PEER_VERSION, 101, other, &plen), -1);
    ck_assert_int_eq(
        kc_peer_verify(p, n, SECRET, strlen(SECRET), KC_API_KZ_WAL_APPEND, KC_PEER_VERSION, 101, NULL, &plen), -1);
    ck_assert_int_eq(kc_peer_verify(p, n, SECRET "x", strlen(SECRET) + 1, KC_API_KZ_WAL_APPEND, KC_PEER_VERSION,
                                    101, nonce, &plen),
                     -1);
    /* The MAC is deterministic for the same input (HMAC, not randomised). */
    struct evbuffer *eb2 = evbuffer_new();
    evbuffer_add(eb2, wal_resp, sizeof(wal_resp));
    kc_peer_seal(eb2, SECRET, strlen(SECRET), KC_API_KZ_WAL_APPEND, KC_PEER_VERSION, 101, nonce);
    ck_assert_int_eq(memcmp(evbuffer_pullup(eb2, -1), p, n), 0);
    /* A body in several evbuffer chains gets the same MAC. */
    struct evbuffer *eb3 = evbuffer_new();
    for (size_t i = 0; i < sizeof(wal_resp); i++) {
        struct evbuffer *one = evbuffer_new();
        evbuffer_add(one, &wal_resp[i], 1);
        evbuffer_add_buffer(eb3, one);
        evbuffer_free(one);
    }
    kc_peer_seal(eb3, SECRET, strlen(SECRET), KC_API_KZ_WAL_APPEND, KC_PEER_VERSION, 101, nonce);
    ck_assert_uint_eq(evbuffer_get_length(eb3), n);
    ck_assert_int_eq(memcmp(evbuffer_pullup(eb3, -1), p, n), 0);
    evbuffer_free(eb3);
    evbuffer_free(eb2);
    evbuffer_free(eb);
}
END_TEST

START_TEST(test_peer_api)
{
    ck_assert(kc_peer_api(KC_API_KZ_HELLO));
    ck_assert(kc_peer_api(KC_API_KZ_WAL_APPEND));
    ck_assert(!kc_peer_api(0));
    ck_assert(!kc_peer_api(18));
}
END_TEST

Suite *kc_peer_suite(void)
{
    Suite *s = suite_create("kc_peer");
    TCase *tc = tcase_create("peer");
    tcase_add_test(tc, test_hello_golden);
    tcase_add_test(tc, test_hello_bad);
    tcase_add_test(tc, test_hello_draining);
    tcase_add_test(tc, test_wal_req_golden);
    tcase_add_test(tc, test_wal_req_principal);
    tcase_add_test(tc, test_wal_resp_golden);
    tcase_add_test(tc, test_mac_request);
    tcase_add_test(tc, test_mac_response);
    tcase_add_test(tc, test_peer_api);
    suite_add_tcase(s, tc);
    return s;
}
