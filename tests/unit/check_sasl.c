/*
 * The proxy's own login to brokers: SaslHandshake / SaslAuthenticate golden
 * bytes (SaslHandshake{Request,Response}.json v0-v1,
 * SaslAuthenticate{Request,Response}.json v0-v2), and the mechanisms:
 * SCRAM-SHA-256 against RFC 7677's worked example (section 3), a
 * SCRAM-SHA-512 round trip against a server written here from RFC 5802,
 * the SCRAM parsers' refusals, PLAIN (RFC 4616) and OAUTHBEARER (RFC 7628)
 * messages.
 */
#include "config.h"

#include "codec/kc_msg.h"
#include "meta-client/mc_sasl.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#define EXPECT_ENCODED(fn, version, msg, want)                                                     \
    do {                                                                                           \
        struct evbuffer *eb_ = evbuffer_new();                                                     \
        kc_wr w_;                                                                                  \
        kc_wr_init(&w_, eb_, NULL);                                                                \
        fn(&w_, (version), (msg));                                                                 \
        ck_assert_int_eq(w_.err, 0);                                                               \
        size_t n_ = evbuffer_get_length(eb_);                                                      \
        kz_expect_bytes(#fn, evbuffer_pullup(eb_, -1), n_, (want), sizeof(want));                  \
        evbuffer_free(eb_);                                                                        \
    } while (0)

/* ---------------- codec goldens ---------------- */

static const uint8_t hs_req[] = {I16(5), 'P', 'L', 'A', 'I', 'N'}; /* Mechanism "PLAIN" */

static const uint8_t hs_resp[] = {
    I16(33),                                          /* ErrorCode UNSUPPORTED_SASL_MECHANISM */
    I32(2),                                           /* Mechanisms: 2 */
    I16(5), 'P', 'L', 'A', 'I', 'N',                  /*   "PLAIN" */
    I16(13), 'S', 'C', 'R', 'A', 'M', '-', 'S', 'H', 'A', '-', '5', '1', '2', /* "SCRAM-SHA-512" */
};

START_TEST(test_saslhandshake)
{
    for (int16_t v = 0; v <= KC_SASLHANDSHAKE_MAX_VERSION; v++) {
        kc_saslhandshake_req rq = {.mechanism = kc_str_c("PLAIN")};
        EXPECT_ENCODED(kc_saslhandshake_req_encode, v, &rq, hs_req);
        kc_rd rd;
        kc_arena a;
        kc_arena_init(&a);
        kc_rd_init(&rd, hs_req, sizeof(hs_req));
        ck_assert_int_eq(kc_saslhandshake_req_decode(&rd, v, &a, &rq), 0);
        ck_assert(kc_str_eq(rq.mechanism, "PLAIN"));
        kc_saslhandshake_resp r;
        kc_rd_init(&rd, hs_resp, sizeof(hs_resp));
        ck_assert_int_eq(kc_saslhandshake_resp_decode(&rd, v, &a, &r), 0);
        ck_assert_int_eq(r.error_code, 33);
        ck_assert_int_eq(r.nmechanisms, 2);
        ck_assert(kc_str_eq(r.mechanisms[1], "SCRAM-SHA-512"));
        EXPECT_ENCODED(kc_saslhandshake_resp_encode, v, &r, hs_resp);
        /* A count the bytes cannot hold fails before allocating. */
        static const uint8_t huge[] = {I16(0), I32(0x7fffffff)};
        kc_rd_init(&rd, huge, sizeof(huge));
        ck_assert_int_eq(kc_saslhandshake_resp_decode(&rd, v, &a, &r), -1);
        kc_arena_destroy(&a);
    }
}
END_TEST

static const uint8_t au_req_v0[] = {I32(3), 'a', 'b', 'c'};          /* AuthBytes */
static const uint8_t au_req_v2[] = {UV(4), 'a', 'b', 'c', NOTAGS};   /* compact AuthBytes, tags */

static const uint8_t au_resp_v0[] = {
    I16(58),                                   /* ErrorCode SASL_AUTHENTICATION_FAILED */
    I16(3), 'b', 'a', 'd',                     /* ErrorMessage "bad" */
    I32(2), 'x', 'y',                          /* AuthBytes */
};
static const uint8_t au_resp_v1[] = {
    I16(0),                                    /* ErrorCode */
    I16(-1),                                   /* ErrorMessage null */
    I32(2), 'x', 'y',                          /* AuthBytes */
    I64(3600000),                              /* SessionLifetimeMs */
};
static const uint8_t au_resp_v2[] = {
    I16(0),                                    /* ErrorCode */
    UV(0),                                     /* ErrorMessage null (compact) */
    UV(3), 'x', 'y',                           /* AuthBytes */
    I64(3600000),                              /* SessionLifetimeMs */
    NOTAGS,
};

START_TEST(test_saslauthenticate)
{
    kc_saslauthenticate_req rq = {.auth_bytes = {(const uint8_t *)"abc", 3}};
    EXPECT_ENCODED(kc_saslauthenticate_req_encode, 0, &rq, au_req_v0);
    EXPECT_ENCODED(kc_saslauthenticate_req_encode, 1, &rq, au_req_v0);
    EXPECT_ENCODED(kc_saslauthenticate_req_encode, 2, &rq, au_req_v2);
    kc_rd rd;
    kc_arena a;
    kc_arena_init(&a);
    kc_saslauthenticate_resp r;
    kc_rd_init(&rd, au_resp_v0, sizeof(au_resp_v0));
    ck_assert_int_eq(kc_saslauthenticate_resp_decode(&rd, 0, &a, &r), 0);
    ck_assert_int_eq(r.error_code, 58);
    ck_assert(kc_str_eq(r.error_message, "bad"));
    ck_assert_int_eq(r.auth_bytes.len, 2);
    EXPECT_ENCODED(kc_saslauthenticate_resp_encode, 0, &r, au_resp_v0);
    kc_rd_init(&rd, au_resp_v1, sizeof(au_resp_v1));
    ck_assert_int_eq(kc_saslauthenticate_resp_decode(&rd, 1, &a, &r), 0);
    ck_assert_int_eq(r.error_message.len, -1);
    ck_assert_int_eq(r.session_lifetime_ms, 3600000);
    EXPECT_ENCODED(kc_saslauthenticate_resp_encode, 1, &r, au_resp_v1);
    kc_rd_init(&rd, au_resp_v2, sizeof(au_resp_v2));
    ck_assert_int_eq(kc_saslauthenticate_resp_decode(&rd, 2, &a, &r), 0);
    ck_assert_int_eq(r.auth_bytes.len, 2);
    EXPECT_ENCODED(kc_saslauthenticate_resp_encode, 2, &r, au_resp_v2);
    /* Truncated: no SessionLifetimeMs at v1. */
    kc_rd_init(&rd, au_resp_v0, sizeof(au_resp_v0));
    ck_assert_int_eq(kc_saslauthenticate_resp_decode(&rd, 1, &a, &r), -1);
    kc_arena_destroy(&a);
}
END_TEST

/* ---------------- mechanisms ---------------- */

static mc_sasl *new_sasl(int mech, const char *user, const char *password, const char *token)
{
    char err[256] = "";
    mc_sasl_config cfg = {.mechanism = mech, .username = user, .password = password, .token = token};
    mc_sasl *s = mc_sasl_new(&cfg, err, sizeof(err));
    ck_assert_msg(s != NULL, "mc_sasl_new: %s", err);
    return s;
}

/* Step ss with in (a C string, or NULL) and expect rc; the message in *out. */
static int step(mc_sasl_session *ss, const char *in, char **out, size_t *out_len, char *err, size_t en)
{
    uint8_t *o = NULL;
    size_t ol = 0;
    int rc = mc_sasl_session_step(ss, (const uint8_t *)in, in ? strlen(in) : 0, &o, &ol, err, en);
    if (out) {
        *out = NULL;
        if (o) {
            *out = malloc(ol + 1);
            memcpy(*out, o, ol);
            (*out)[ol] = '\0';
        }
        *out_len = ol;
    }
    mc_sasl_wipe_free(o, ol);
    return rc;
}

/* RFC 7677 section 3. */
#define RFC_SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                                           \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

START_TEST(test_scram_sha256_rfc7677)
{
    mc_sasl *s = new_sasl(MC_SASL_SCRAM_SHA_256, "user", "pencil", NULL);
    char err[256];
    mc_sasl_session *ss = mc_sasl_session_new(s, err, sizeof(err));
    ck_assert_ptr_nonnull(ss);
    ck_assert_int_eq(mc_sasl_session_set_nonce(ss, "rOprNGfwEbeRWgbNEkqO"), 0);
    char *msg;
    size_t len;
    ck_assert_int_eq(step(ss, NULL, &msg, &len, err, sizeof(err)), 1);
    ck_assert_str_eq(msg, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    free(msg);
    ck_assert_int_eq(step(ss, RFC_SERVER_FIRST, &msg, &len, err, sizeof(err)), 1);
    ck_assert_str_eq(msg, RFC_CLIENT_FINAL);
    free(msg);
    ck_assert_msg(step(ss, RFC_SERVER_FINAL, &msg, &len, err, sizeof(err)) == 0, "%s", err);
    ck_assert_ptr_null(msg);
    mc_sasl_session_free(ss);

    /* The same exchange with one bit of the server signature flipped fails. */
    ss = mc_sasl_session_new(s, err, sizeof(err));
    mc_sasl_session_set_nonce(ss, "rOprNGfwEbeRWgbNEkqO");
    ck_assert_int_eq(step(ss, NULL, NULL, NULL, err, sizeof(err)), 1);
    ck_assert_int_eq(step(ss, RFC_SERVER_FIRST, NULL, NULL, err, sizeof(err)), 1);
    ck_assert_int_eq(step(ss, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95H4=", NULL, NULL, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "server signature") != NULL, "%s", err);
    mc_sasl_session_free(ss);

    /* A server nonce that does not extend ours is refused. */
    ss = mc_sasl_session_new(s, err, sizeof(err));
    mc_sasl_session_set_nonce(ss, "rOprNGfwEbeRWgbNEkqO");
    ck_assert_int_eq(step(ss, NULL, NULL, NULL, err, sizeof(err)), 1);
    ck_assert_int_eq(step(ss, "r=XXprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", NULL, NULL, err,
                          sizeof(err)), -1);
    ck_assert_msg(strstr(err, "nonce") != NULL, "%s", err);
    mc_sasl_session_free(ss);
    /* The broker's "e=" is its reason. */
    ss = mc_sasl_session_new(s, err, sizeof(err));
    mc_sasl_session_set_nonce(ss, "rOprNGfwEbeRWgbNEkqO");
    step(ss, NULL, NULL, NULL, err, sizeof(err));
    step(ss, RFC_SERVER_FIRST, NULL, NULL, err, sizeof(err));
    ck_assert_int_eq(step(ss, "e=invalid-proof", NULL, NULL, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "invalid-proof") != NULL, "%s", err);
    mc_sasl_session_free(ss);
    mc_sasl_free(s);
}
END_TEST

/* ---- a SCRAM server (RFC 5802 section 3), to check the client against ---- */

static void b64(const uint8_t *p, size_t n, char *out) { EVP_EncodeBlock((unsigned char *)out, p, (int)n); }

static size_t unb64(const char *s, uint8_t *out)
{
    int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)strlen(s));
    size_t l = strlen(s);
    ck_assert_int_ge(n, 0);
    while (l > 0 && s[l - 1] == '=') {
        n--;
        l--;
    }
    return (size_t)n;
}

START_TEST(test_scram_sha512_round_trip)
{
    const EVP_MD *md = EVP_sha512();
    const size_t hl = 64;
    const char *password = "kzproxy-secret, with = and ,";
    mc_sasl *s = new_sasl(MC_SASL_SCRAM_SHA_512, "kz,proxy=1", password, NULL);
    char err[256];
    mc_sasl_session *ss = mc_sasl_session_new(s, err, sizeof(err));
    char *first, *final;
    size_t len;
    ck_assert_int_eq(step(ss, NULL, &first, &len, err, sizeof(err)), 1);
    /* The user name is escaped; the nonce is random base64. */
    ck_assert_msg(strncmp(first, "n,,n=kz=2Cproxy=3D1,r=", 22) == 0, "%s", first);
    const char *cnonce = first + 22;
    ck_assert_int_ge(strlen(cnonce), 24);
    ck_assert_ptr_null(strchr(cnonce, ','));

    /* Server: salt, iterations, its nonce part. */
    uint8_t salt[16];
    for (int i = 0; i < 16; i++)
        salt[i] = (uint8_t)(i * 7 + 3);
    char salt64[64], server_first[512];
    b64(salt, sizeof(salt), salt64);
    snprintf(server_first, sizeof(server_first), "r=%sSERVERnonce+/,s=%s,i=4096", cnonce, salt64);
    ck_assert_int_eq(step(ss, server_first, &final, &len, err, sizeof(err)), 1);

    /* The client-final nonce is exactly the server's combined nonce (Kafka 4 checks it). */
    char want_prefix[512];
    snprintf(want_prefix, sizeof(want_prefix), "c=biws,r=%sSERVERnonce+/,p=", cnonce);
    ck_assert_msg(strncmp(final, want_prefix, strlen(want_prefix)) == 0, "%s", final);

    /* Verify the proof as a server does: ClientKey = proof XOR
     * HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey. */
    uint8_t salted[64], ckey[64], stored[64], skey[64], csig[64], ssig[64], proof[128];
    unsigned int ol;
    ck_assert_int_eq(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt), 4096, md, (int)hl,
                                       salted), 1);
    HMAC(md, salted, (int)hl, (const uint8_t *)"Client Key", 10, ckey, &ol);
    EVP_Digest(ckey, hl, stored, &ol, md, NULL);
    HMAC(md, salted, (int)hl, (const uint8_t *)"Server Key", 10, skey, &ol);
    char auth[2048];
    size_t without_proof = strlen(want_prefix) - 3;
    snprintf(auth, sizeof(auth), "%s,%s,%.*s", first + 3, server_first, (int)without_proof, final);
    HMAC(md, stored, (int)hl, (const uint8_t *)auth, strlen(auth), csig, &ol);
    ck_assert_uint_eq(unb64(final + strlen(want_prefix), proof), hl);
    uint8_t got_ckey[64], got_stored[64];
    for (size_t i = 0; i < hl; i++)
        got_ckey[i] = proof[i] ^ csig[i];
    EVP_Digest(got_ckey, hl, got_stored, &ol, md, NULL);
    ck_assert(memcmp(got_stored, stored, hl) == 0);

    /* Server-final: the client checks the server signature. */
    HMAC(md, skey, (int)hl, (const uint8_t *)auth, strlen(auth), ssig, &ol);
    char server_final[256] = "v=";
    b64(ssig, hl, server_final + 2);
    ck_assert_int_eq(step(ss, server_final, NULL, NULL, err, sizeof(err)), 0);
    free(first);
    free(final);
    mc_sasl_session_free(ss);
    mc_sasl_free(s);
}
END_TEST

START_TEST(test_scram_parsers)
{
    mc_scram_server_first f;
    mc_scram_server_final g;
    char err[256];
#define SF(str) mc_scram_parse_server_first((const uint8_t *)(str), strlen(str), &f, err, sizeof(err))
#define SG(str) mc_scram_parse_server_final((const uint8_t *)(str), strlen(str), &g, err, sizeof(err))
    ck_assert_int_eq(SF("r=abc,s=QUJD,i=4096"), 0);
    ck_assert_int_eq(f.iterations, 4096);
    ck_assert_uint_eq(f.salt_len, 3);
    ck_assert_int_eq(SF("r=abc,s=QUJD,i=4096,x=ext"), 0);
    ck_assert_int_eq(SF("m=must,r=abc,s=QUJD,i=4096"), -1);
    ck_assert_int_eq(SF("r=abc,s=QUJD,i=4095"), -1);     /* below Kafka's minimum */
    ck_assert_int_eq(SF("r=abc,s=QUJD,i=65537"), -1);    /* a broker cannot make us burn CPU */
    ck_assert_int_eq(SF("r=abc,s=QUJD,i=99999999999"), -1);
    ck_assert_int_eq(SF("r=abc,s=QU=D,i=4096"), -1);     /* padding inside */
    ck_assert_int_eq(SF("r=abc,s=QUJ,i=4096"), -1);      /* not a multiple of 4 */
    ck_assert_int_eq(SF("r=abc,i=4096"), -1);            /* no salt */
    ck_assert_int_eq(SF("r=,s=QUJD,i=4096"), -1);        /* empty nonce */
    ck_assert_int_eq(SF("r=abc,s=QUJD,i=4096,"), -1);    /* trailing comma */
    ck_assert_int_eq(SF("r=a\tc,s=QUJD,i=4096"), -1);    /* control byte */
    ck_assert_int_eq(SF(""), -1);
    ck_assert_int_eq(SG("v=QUJD"), 0);
    ck_assert_uint_eq(g.verifier_len, 3);
    ck_assert_int_eq(SG("e=other-error"), 0);
    ck_assert(g.is_error);
    ck_assert_str_eq(g.error, "other-error");
    ck_assert_int_eq(SG("x=QUJD"), -1);
    ck_assert_int_eq(SG("v=!!!!"), -1);
    ck_assert_int_eq(SG("v=QUJ="), -1);                  /* bits set past the data */
    ck_assert_int_eq(SG("v=QUI="), 0);
    ck_assert_int_eq(SG("v"), -1);
#undef SF
#undef SG
}
END_TEST

START_TEST(test_plain_and_oauthbearer)
{
    char err[256];
    mc_sasl *s = new_sasl(MC_SASL_PLAIN, "kzproxy", "kzproxy-secret", NULL);
    mc_sasl_session *ss = mc_sasl_session_new(s, err, sizeof(err));
    uint8_t *o;
    size_t ol;
    ck_assert_int_eq(mc_sasl_session_step(ss, NULL, 0, &o, &ol, err, sizeof(err)), 1);
    kz_expect_bytes("PLAIN", o, ol, (const uint8_t *)"\0kzproxy\0kzproxy-secret", 23);
    mc_sasl_wipe_free(o, ol);
    ck_assert_int_eq(mc_sasl_session_step(ss, (const uint8_t *)"", 0, &o, &ol, err, sizeof(err)), 0);
    mc_sasl_session_free(ss);
    mc_sasl_free(s);

    s = new_sasl(MC_SASL_OAUTHBEARER, NULL, NULL, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJreiJ9.");
    ss = mc_sasl_session_new(s, err, sizeof(err));
    ck_assert_int_eq(mc_sasl_session_step(ss, NULL, 0, &o, &ol, err, sizeof(err)), 1);
    const char *want = "n,,\001auth=Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJreiJ9.\001\001";
    kz_expect_bytes("OAUTHBEARER", o, ol, (const uint8_t *)want, strlen(want));
    mc_sasl_wipe_free(o, ol);
    /* A challenge after the token is the broker's refusal. */
    ck_assert_int_eq(mc_sasl_session_step(ss, (const uint8_t *)"{\"status\":\"invalid_token\"}", 26, &o, &ol,
                                          err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "invalid_token") != NULL, "%s", err);
    mc_sasl_session_free(ss);
    mc_sasl_free(s);

    /* A token with characters a bearer token cannot have is refused at load. */
    mc_sasl_config bad = {.mechanism = MC_SASL_OAUTHBEARER, .token = "a b"};
    ck_assert_ptr_null(mc_sasl_new(&bad, err, sizeof(err)));

    /* token_file: re-read for every session (rotation). */
    char path[] = "/tmp/kz-token-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "tok1\n", 5), 5);
    mc_sasl_config tf = {.mechanism = MC_SASL_OAUTHBEARER, .token_file = path};
    s = mc_sasl_new(&tf, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ss = mc_sasl_session_new(s, err, sizeof(err));
    ck_assert_int_eq(mc_sasl_session_step(ss, NULL, 0, &o, &ol, err, sizeof(err)), 1);
    ck_assert(ol > 0 && memmem(o, ol, "Bearer tok1\001", 12) != NULL);
    mc_sasl_wipe_free(o, ol);
    mc_sasl_session_free(ss);
    ck_assert_int_eq(ftruncate(fd, 0), 0);
    ck_assert_int_eq(pwrite(fd, "tok2", 4, 0), 4);
    ss = mc_sasl_session_new(s, err, sizeof(err));
    ck_assert_int_eq(mc_sasl_session_step(ss, NULL, 0, &o, &ol, err, sizeof(err)), 1);
    ck_assert(ol > 0 && memmem(o, ol, "Bearer tok2\001", 12) != NULL);
    mc_sasl_wipe_free(o, ol);
    mc_sasl_session_free(ss);
    mc_sasl_free(s);
    close(fd);
    unlink(path);

    /* Untrusted text is shown printable and bounded. */
    char buf[8];
    ck_assert_str_eq(mc_sasl_printable(buf, sizeof(buf), "a\nb", 3), "a?b");
    ck_assert_str_eq(mc_sasl_printable(buf, sizeof(buf), "abcdefghij", 10), "abcd...");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sasl");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_saslhandshake);
    tcase_add_test(tc, test_saslauthenticate);
    suite_add_tcase(s, tc);
    tc = tcase_create("mechanisms");
    tcase_add_test(tc, test_scram_sha256_rfc7677);
    tcase_add_test(tc, test_scram_sha512_round_trip);
    tcase_add_test(tc, test_scram_parsers);
    tcase_add_test(tc, test_plain_and_oauthbearer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
