/*
 * The proxy as a SASL server for clients (proxy/px_sasl.c): RFC 7677's
 * SCRAM-SHA-256 worked example (section 3) in the server role, a
 * SCRAM-SHA-512 round trip against the proxy's own SCRAM client
 * (meta-client/mc_sasl.c), bad proofs, wrong nonces (librdkafka < 2.6.1),
 * malformed client messages, PLAIN (RFC 4616), and the credentials file's
 * refusals.
 */
#include "config.h"

#include "common/kz_scram.h"
#include "meta-client/mc_sasl.h"
#include "proxy/px_sasl.h"
#include "proxy/px_sasl_int.h"
#include "tests/unit/kz_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 7677 section 3. */
#define RFC_SALT64 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                                           \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static char *all_mechs[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};

static px_client_sasl cfg_all(void)
{
    px_client_sasl c = {.enabled = 1, .mechanisms = all_mechs, .nmechanisms = 3, .failure_delay_ms = 0};
    return c;
}

static char *b64(const uint8_t *p, size_t n)
{
    char *s = kz_b64_encode(p, n);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* A users file with "user" / "pencil" under the RFC's salt and 4096
 * iterations for all three mechanisms, written from derived keys only. */
static char *rfc_users_json(void)
{
    uint8_t salt[32], st256[KZ_SHA_MAX], sv256[KZ_SHA_MAX], st512[KZ_SHA_MAX], sv512[KZ_SHA_MAX], ph[64];
    long sl = kz_b64_decode(RFC_SALT64, strlen(RFC_SALT64), salt, sizeof(salt));
    ck_assert_int_eq(sl, 16);
    ck_assert_int_eq(kz_scram_keys(256, "pencil", 6, salt, (size_t)sl, 4096, NULL, st256, sv256), 0);
    ck_assert_int_eq(kz_scram_keys(512, "pencil", 6, salt, (size_t)sl, 4096, NULL, st512, sv512), 0);
    ck_assert_int_eq(kz_pbkdf2(512, "pencil", 6, salt, (size_t)sl, 4096, ph, sizeof(ph)), 0);
    char *a = b64(st256, 32), *b = b64(sv256, 32), *c = b64(st512, 64), *d = b64(sv512, 64), *e = b64(ph, 64);
    char *json = malloc(4096);
    snprintf(json, 4096,
             "{\"users\": [{\"name\": \"user\","
             " \"SCRAM-SHA-256\": {\"salt\": \"%s\", \"iterations\": 4096, \"stored_key\": \"%s\", \"server_key\": \"%s\"},"
             " \"SCRAM-SHA-512\": {\"salt\": \"%s\", \"iterations\": 4096, \"stored_key\": \"%s\", \"server_key\": \"%s\"},"
             " \"PLAIN\": {\"salt\": \"%s\", \"iterations\": 4096, \"hash\": \"%s\"}},"
             " {\"name\": \"scramonly\","
             " \"SCRAM-SHA-256\": {\"salt\": \"%s\", \"iterations\": 4096, \"stored_key\": \"%s\", \"server_key\": \"%s\"}}]}",
             RFC_SALT64, a, b, RFC_SALT64, c, d, RFC_SALT64, e, RFC_SALT64, a, b);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    return json;
}

static px_sasl *rfc_sasl(void)
{
    px_client_sasl cfg = cfg_all();
    char err[512] = "";
    char *json = rfc_users_json();
    px_sasl *s = px_sasl_new_text(&cfg, json, err, sizeof(err));
    ck_assert_msg(s != NULL, "px_sasl_new_text: %s", err);
    free(json);
    ck_assert_int_eq(px_sasl_nusers(s), 2);
    return s;
}

/* Step ss with the C string in; expect rc; the answer as a C string in *out
 * (NULL when none). */
static int sstep(px_sasl_sess *ss, const char *in, char **out, char *why, size_t wn)
{
    uint8_t *o = NULL;
    size_t ol = 0;
    why[0] = '\0';
    int rc = px_sasl_sess_step(ss, (const uint8_t *)in, strlen(in), &o, &ol, why, wn);
    if (out) {
        *out = NULL;
        if (o) {
            *out = malloc(ol + 1);
            memcpy(*out, o, ol);
            (*out)[ol] = '\0';
        }
    }
    free(o);
    if (rc < 0)
        ck_assert_msg(why[0] != '\0', "a failure without a reason");
    return rc;
}

START_TEST(test_rfc7677_server)
{
    px_sasl *s = rfc_sasl();
    char why[256], *out;
    px_sasl_sess *ss = px_sasl_sess_new(s, PX_MECH_SCRAM_SHA_256);
    ck_assert_int_eq(px_sasl_sess_set_nonce(ss, RFC_SERVER_NONCE), 0);
    ck_assert_msg(sstep(ss, RFC_CLIENT_FIRST, &out, why, sizeof(why)) == 1, "%s", why);
    ck_assert_str_eq(out, RFC_SERVER_FIRST);
    free(out);
    ck_assert_str_eq(px_sasl_sess_user(ss), "user");
    ck_assert_msg(sstep(ss, RFC_CLIENT_FINAL, &out, why, sizeof(why)) == 0, "%s", why);
    ck_assert_str_eq(out, RFC_SERVER_FINAL);
    free(out);
    /* Over: another token is refused. */
    ck_assert_int_eq(sstep(ss, RFC_CLIENT_FINAL, NULL, why, sizeof(why)), -1);
    px_sasl_sess_free(ss);
    px_sasl_free(s);
}
END_TEST

/* The RFC exchange up to server-first, then final as the client's last message. */
static int rfc_final(px_sasl *s, const char *final, char *why, size_t wn)
{
    char *out;
    px_sasl_sess *ss = px_sasl_sess_new(s, PX_MECH_SCRAM_SHA_256);
    px_sasl_sess_set_nonce(ss, RFC_SERVER_NONCE);
    ck_assert_int_eq(sstep(ss, RFC_CLIENT_FIRST, &out, why, wn), 1);
    free(out);
    int rc = sstep(ss, final, &out, why, wn);
    ck_assert_ptr_null(out);
    px_sasl_sess_free(ss);
    return rc;
}

START_TEST(test_scram_bad_proof_and_nonce)
{
    px_sasl *s = rfc_sasl();
    char why[256];
    /* One bit of the proof flipped. */
    ck_assert_int_eq(rfc_final(s, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=", why, sizeof(why)), -1);
    ck_assert_msg(strstr(why, "bad SCRAM proof") != NULL, "%s", why);
    /* A proof of the wrong length. */
    ck_assert_int_eq(rfc_final(s, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZQ==", why,
                               sizeof(why)), -1);
    ck_assert_msg(strstr(why, "proof of 4 bytes") != NULL, "%s", why);
    /* librdkafka < 2.6.1: the client nonce repeated before the combined one. */
    ck_assert_int_eq(rfc_final(s, "c=biws,r=rOprNGfwEbeRWgbNEkqOrOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", why, sizeof(why)), -1);
    ck_assert_msg(strstr(why, "not the combined nonce") != NULL, "%s", why);
    /* Only the client's own nonce. */
    ck_assert_int_eq(rfc_final(s, "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                               why, sizeof(why)), -1);
    ck_assert_msg(strstr(why, "not the combined nonce") != NULL, "%s", why);
    /* The combined nonce with its last character dropped. */
    ck_assert_int_eq(rfc_final(s, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k,"
                                  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", why, sizeof(why)), -1);
    ck_assert_msg(strstr(why, "not the combined nonce") != NULL, "%s", why);

    /* An unknown user gets a server-first (a stable salt, 4096 rounds) and
     * fails at the proof like a wrong password. */
    char *out1, *out2;
    px_sasl_sess *ss = px_sasl_sess_new(s, PX_MECH_SCRAM_SHA_256);
    px_sasl_sess_set_nonce(ss, "SRV");
    ck_assert_int_eq(sstep(ss, "n,,n=nobody,r=abc", &out1, why, sizeof(why)), 1);
    /* The iteration count is the file's (4096 here), not a tell-tale default. */
    ck_assert_msg(strncmp(out1, "r=abcSRV,s=", 11) == 0 && strstr(out1, ",i=4096") != NULL, "%s", out1);
    ck_assert_int_eq(sstep(ss, "c=biws,r=abcSRV,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", NULL, why,
                           sizeof(why)), -1);
    ck_assert_msg(strstr(why, "unknown user") != NULL, "%s", why);
    px_sasl_sess_free(ss);
    ss = px_sasl_sess_new(s, PX_MECH_SCRAM_SHA_256);
    px_sasl_sess_set_nonce(ss, "SRV");
    ck_assert_int_eq(sstep(ss, "n,,n=nobody,r=abc", &out2, why, sizeof(why)), 1);
    ck_assert_str_eq(out1, out2);
    free(out1);
    free(out2);
    px_sasl_sess_free(ss);
    /* A user without this mechanism's credential: the same. */
    ss = px_sasl_sess_new(s, PX_MECH_SCRAM_SHA_512);
    ck_assert_int_eq(sstep(ss, "n,,n=scramonly,r=abc", &out1, why, sizeof(why)), 1);
    free(out1);
    px_sasl_sess_free(ss);
    px_sasl_free(s);
}
END_TEST

START_TEST(test_scram_sha512_round_trip)
{
    const char *password = "s3cret, with = and ,";
    char err[512] = "";
    char *entry = px_sasl_credential_entry("kz,proxy=1", password, strlen(password), 4096, err, sizeof(err));
    ck_assert_msg(entry != NULL, "%s", err);
    ck_assert_ptr_null(strstr(entry, password));
    ck_assert_ptr_null(strstr(entry, "s3cret"));
    char json[8192];
    snprintf(json, sizeof(json), "{\"users\": [%s]}", entry);
    free(entry);
    px_client_sasl cfg = cfg_all();
    px_sasl *s = px_sasl_new_text(&cfg, json, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);

    for (int bad = 0; bad <= 1; bad++) {
        mc_sasl_config mcfg = {.mechanism = MC_SASL_SCRAM_SHA_512, .username = "kz,proxy=1",
                               .password = bad ? "s3cret, with = and ;" : password};
        mc_sasl *mc = mc_sasl_new(&mcfg, err, sizeof(err));
        ck_assert_msg(mc != NULL, "%s", err);
        mc_sasl_session *cs = mc_sasl_session_new(mc, err, sizeof(err));
        px_sasl_sess *ss = px_sasl_sess_new(s, PX_MECH_SCRAM_SHA_512);
        uint8_t *c_out = NULL, *s_out = NULL;
        size_t c_len = 0, s_len = 0;
        char why[256] = "";
        ck_assert_int_eq(mc_sasl_session_step(cs, NULL, 0, &c_out, &c_len, err, sizeof(err)), 1);
        ck_assert_msg(px_sasl_sess_step(ss, c_out, c_len, &s_out, &s_len, why, sizeof(why)) == 1, "%s", why);
        ck_assert_str_eq(px_sasl_sess_user(ss), "kz,proxy=1");
        mc_sasl_wipe_free(c_out, c_len);
        c_out = NULL;
        ck_assert_msg(mc_sasl_session_step(cs, s_out, s_len, &c_out, &c_len, err, sizeof(err)) == 1, "%s", err);
        free(s_out);
        s_out = NULL;
        int rc = px_sasl_sess_step(ss, c_out, c_len, &s_out, &s_len, why, sizeof(why));
        mc_sasl_wipe_free(c_out, c_len);
        c_out = NULL;
        if (bad) {
            ck_assert_int_eq(rc, -1);
            ck_assert_msg(strstr(why, "bad SCRAM proof") != NULL, "%s", why);
            ck_assert_ptr_null(strstr(why, "s3cret"));
            ck_assert_ptr_null(s_out);
        } else {
            ck_assert_msg(rc == 0, "%s", why);
            ck_assert_msg(s_len > 2 && memcmp(s_out, "v=", 2) == 0, "server-final");
            /* The client checks the server signature. */
            ck_assert_msg(mc_sasl_session_step(cs, s_out, s_len, &c_out, &c_len, err, sizeof(err)) == 0, "%s",
                          err);
            mc_sasl_wipe_free(c_out, c_len);
        }
        free(s_out);
        px_sasl_sess_free(ss);
        mc_sasl_session_free(cs);
        mc_sasl_free(mc);
    }
    px_sasl_free(s);
}
END_TEST

static void expect_first_refused(const char *msg, size_t n, const char *why_has)
{
    px_scram_client_first cf;
    char why[256] = "";
    ck_assert_msg(px_scram_parse_client_first((const uint8_t *)msg, n, &cf, why, sizeof(why)) == -1,
                  "accepted: %.*s", (int)(n > 80 ? 80 : n), msg);
    ck_assert_msg(strstr(why, why_has) != NULL, "\"%.*s\": %s (expected \"%s\")", (int)(n > 80 ? 80 : n), msg,
                  why, why_has);
}

static void expect_final_refused(const char *msg, size_t n, const char *why_has)
{
    px_scram_client_final cf;
    char why[256] = "";
    ck_assert_msg(px_scram_parse_client_final((const uint8_t *)msg, n, &cf, why, sizeof(why)) == -1,
                  "accepted: %.*s", (int)(n > 80 ? 80 : n), msg);
    ck_assert_msg(strstr(why, why_has) != NULL, "\"%.*s\": %s (expected \"%s\")", (int)(n > 80 ? 80 : n), msg,
                  why, why_has);
}

#define FIRST_REFUSED(m, w) expect_first_refused((m), sizeof(m) - 1, (w))
#define FINAL_REFUSED(m, w) expect_final_refused((m), sizeof(m) - 1, (w))

START_TEST(test_client_first_parser)
{
    px_scram_client_first cf;
    char why[256] = "";
    const char *m = "n,,n=a=2Cb=3Dc,r=xyz,ext=1";
    ck_assert_msg(px_scram_parse_client_first((const uint8_t *)m, strlen(m), &cf, why, sizeof(why)) == 0, "%s",
                  why);
    ck_assert_str_eq(cf.user, "a,b=c");
    ck_assert_uint_eq(cf.nonce_len, 3);
    ck_assert(memcmp(cf.nonce, "xyz", 3) == 0);
    ck_assert_uint_eq(cf.bare_len, strlen(m) - 3);

    FIRST_REFUSED("", "empty");
    FIRST_REFUSED("y,,n=user,r=abc", "gs2 header");
    FIRST_REFUSED("p=tls-unique,,n=user,r=abc", "gs2 header");
    FIRST_REFUSED("n,a=admin,n=user,r=abc", "gs2 header");
    FIRST_REFUSED("n,", "gs2 header");
    FIRST_REFUSED("n,,,", "ends with a comma");
    FIRST_REFUSED("n,,", "missing user name");
    FIRST_REFUSED("n,,r=abc", "missing user name");
    FIRST_REFUSED("n,,n=,r=abc", "missing user name");
    FIRST_REFUSED("n,,n=user", "nonce");
    FIRST_REFUSED("n,,n=user,", "ends with a comma");
    FIRST_REFUSED("n,,n=user,r=", "nonce");
    FIRST_REFUSED("n,,n=user,x=abc", "nonce");
    FIRST_REFUSED("n,,n=us=er,r=abc", "bad escape");
    FIRST_REFUSED("n,,n=user=2,r=abc", "bad escape");
    FIRST_REFUSED("n,,n=user,r=abc,", "ends with a comma");
    FIRST_REFUSED("n,,n=user,r=abc,x", "malformed extension");
    FIRST_REFUSED("n,,n=user,r=abc,m=must", "unsupported extension");
    FIRST_REFUSED("n,,n=user,r=abc,tokenauth=true", "delegation token");
    FIRST_REFUSED("n,,n=us\ner,r=abc", "non-printable");
    FIRST_REFUSED("n,,n=us\0er,r=abc", "non-printable");

    /* Over-long fields: user, nonce, message. */
    char big[4096];
    int l = snprintf(big, sizeof(big), "n,,n=");
    memset(big + l, 'u', PX_SASL_USER_MAX + 1);
    l += PX_SASL_USER_MAX + 1;
    l += snprintf(big + l, sizeof(big) - (size_t)l, ",r=abc");
    expect_first_refused(big, (size_t)l, "user name longer");
    l = snprintf(big, sizeof(big), "n,,n=user,r=");
    memset(big + l, 'x', PX_SCRAM_NONCE_MAX + 1);
    l += PX_SCRAM_NONCE_MAX + 1;
    expect_first_refused(big, (size_t)l, "nonce");
    l = snprintf(big, sizeof(big), "n,,n=user,r=abc,e=");
    memset(big + l, 'x', PX_SCRAM_CLIENT_MSG_MAX);
    l += PX_SCRAM_CLIENT_MSG_MAX;
    expect_first_refused(big, (size_t)l, "at most");
}
END_TEST

START_TEST(test_client_final_parser)
{
    px_scram_client_final cf;
    char why[256] = "";
    const char *m = "c=biws,r=abcSRV,x=ext,p=AAEC";
    ck_assert_msg(px_scram_parse_client_final((const uint8_t *)m, strlen(m), &cf, why, sizeof(why)) == 0, "%s",
                  why);
    ck_assert_uint_eq(cf.nonce_len, 6);
    ck_assert_uint_eq(cf.without_proof_len, strlen("c=biws,r=abcSRV,x=ext"));
    ck_assert_uint_eq(cf.proof_len, 3);
    ck_assert(cf.proof[0] == 0 && cf.proof[1] == 1 && cf.proof[2] == 2);

    FINAL_REFUSED("", "empty");
    FINAL_REFUSED("c=eSws,r=abc,p=AAEC", "channel binding");
    FINAL_REFUSED("c=biwsx,r=abc,p=AAEC", "channel binding");
    FINAL_REFUSED("r=abc,p=AAEC", "channel binding");
    FINAL_REFUSED("c=biws", "nonce");
    FINAL_REFUSED("c=biws,p=AAEC", "nonce");
    FINAL_REFUSED("c=biws,r=,p=AAEC", "nonce");
    FINAL_REFUSED("c=biws,r=abc", "missing proof");
    FINAL_REFUSED("c=biws,r=abc,", "ends with a comma");
    FINAL_REFUSED("c=biws,r=abc,p=AAEC,", "ends with a comma");
    FINAL_REFUSED("c=biws,r=abc,x=1", "missing proof");
    FINAL_REFUSED("c=biws,r=abc,p=AAEC,x=1", "not last");
    FINAL_REFUSED("c=biws,r=abc,p=", "not base64");
    FINAL_REFUSED("c=biws,r=abc,p=AAE", "not base64");
    FINAL_REFUSED("c=biws,r=abc,p=AA!C", "not base64");
    FINAL_REFUSED("c=biws,r=abc,p=AAF=", "not base64"); /* non-canonical padding bits */
    FINAL_REFUSED("c=biws,r=abc,p=A===", "not base64");
    FINAL_REFUSED("c=biws,r=abc,p=AA EC", "not base64");
    FINAL_REFUSED("c=biws,r=abc,p=AAEC\n", "non-printable");

    char big[4096];
    /* A proof longer than 64 bytes. */
    int l = snprintf(big, sizeof(big), "c=biws,r=abc,p=");
    memset(big + l, 'A', 88); /* 66 bytes */
    l += 88;
    expect_final_refused(big, (size_t)l, "not base64 of 1-64 bytes");
    l = snprintf(big, sizeof(big), "c=biws,r=");
    memset(big + l, 'x', 2 * PX_SCRAM_NONCE_MAX + 1);
    l += 2 * PX_SCRAM_NONCE_MAX + 1;
    l += snprintf(big + l, sizeof(big) - (size_t)l, ",p=AAEC");
    expect_final_refused(big, (size_t)l, "nonce");
    memset(big, 'x', PX_SCRAM_CLIENT_MSG_MAX + 1);
    expect_final_refused(big, PX_SCRAM_CLIENT_MSG_MAX + 1, "at most");

    /* Through a session: a malformed message fails the login. */
    px_sasl *s = rfc_sasl();
    ck_assert_int_eq(rfc_final(s, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzb!!", why,
                               sizeof(why)), -1);
    ck_assert_msg(strstr(why, "not base64") != NULL, "%s", why);
    px_sasl_sess *ss = px_sasl_sess_new(s, PX_MECH_SCRAM_SHA_256);
    ck_assert_int_eq(sstep(ss, "y,,n=user,r=abc", NULL, why, sizeof(why)), -1);
    ck_assert_msg(strstr(why, "gs2 header") != NULL, "%s", why);
    ck_assert_int_eq(sstep(ss, RFC_CLIENT_FIRST, NULL, why, sizeof(why)), -1); /* over */
    px_sasl_sess_free(ss);
    px_sasl_free(s);
}
END_TEST

static int plain(px_sasl *s, const char *msg, size_t n, char *why, size_t wn, const char **user)
{
    px_sasl_sess *ss = px_sasl_sess_new(s, PX_MECH_PLAIN);
    uint8_t *out = NULL;
    size_t ol = 0;
    why[0] = '\0';
    int rc = px_sasl_sess_step(ss, (const uint8_t *)msg, n, &out, &ol, why, wn);
    static char u[PX_SASL_USER_MAX + 1];
    snprintf(u, sizeof(u), "%s", px_sasl_sess_user(ss));
    if (user)
        *user = u;
    ck_assert_uint_eq(ol, 0);
    free(out);
    px_sasl_sess_free(ss);
    if (rc < 0) {
        ck_assert_msg(why[0] != '\0', "no reason");
        ck_assert_msg(strstr(why, "pencil") == NULL && strstr(why, "pencul") == NULL, "a password in: %s", why);
    }
    return rc;
}

#define PLAIN(m, why, user) plain(s, (m), sizeof(m) - 1, why, sizeof(why), user)

START_TEST(test_plain)
{
    px_sasl *s = rfc_sasl();
    char why[256];
    const char *user;
    ck_assert_msg(PLAIN("\0user\0pencil", why, &user) == 0, "%s", why);
    ck_assert_str_eq(user, "user");
    ck_assert_msg(PLAIN("user\0user\0pencil", why, NULL) == 0, "%s", why);
    ck_assert_int_eq(PLAIN("\0user\0pencul", why, NULL), -1);
    ck_assert_str_eq(why, "wrong password");
    /* HMAC zero-pads its key: "pencil\0" must not pass for "pencil". */
    ck_assert_int_eq(PLAIN("\0user\0pencil\0", why, NULL), -1);
    ck_assert_msg(strstr(why, "NUL in the password") != NULL, "%s", why);
    ck_assert_int_eq(PLAIN("\0user\0pencil\0\0", why, NULL), -1);
    ck_assert_int_eq(PLAIN("\0nobody\0pencil", why, NULL), -1);
    ck_assert_str_eq(why, "unknown user");
    ck_assert_int_eq(PLAIN("\0scramonly\0pencil", why, NULL), -1);
    ck_assert_msg(strstr(why, "no PLAIN credential") != NULL, "%s", why);
    ck_assert_int_eq(PLAIN("admin\0user\0pencil", why, NULL), -1);
    ck_assert_msg(strstr(why, "authorization id") != NULL, "%s", why);
    ck_assert_int_eq(PLAIN("\0user\0", why, NULL), -1);
    ck_assert_msg(strstr(why, "malformed PLAIN") != NULL, "%s", why);
    ck_assert_int_eq(PLAIN("\0\0pencil", why, NULL), -1);
    ck_assert_int_eq(PLAIN("userpencil", why, NULL), -1);
    ck_assert_int_eq(PLAIN("\0userpencil", why, NULL), -1);
    ck_assert_int_eq(plain(s, "", 0, why, sizeof(why), NULL), -1);
    char big[1100];
    memset(big, 'a', sizeof(big));
    big[0] = '\0';
    big[5] = '\0';
    ck_assert_int_eq(plain(s, big, sizeof(big), why, sizeof(why), NULL), -1);
    ck_assert_msg(strstr(why, "malformed PLAIN") != NULL, "%s", why);
    px_sasl_free(s);
}
END_TEST

/* A verified PLAIN login is remembered (px_sasl_cache.c): the next one with
 * the same password skips PBKDF2; a wrong password, or a credential that
 * changed, still goes through it and fails. */
START_TEST(test_plain_cache)
{
    px_sasl *s = rfc_sasl();
    char why[256];
    uint64_t hits, misses;
    ck_assert_msg(PLAIN("\0user\0pencil", why, NULL) == 0, "%s", why);
    px_plain_cache_stats(s->plain_cache, &hits, &misses);
    ck_assert_uint_eq(hits, 0);
    ck_assert_uint_eq(misses, 1);
    ck_assert_msg(PLAIN("\0user\0pencil", why, NULL) == 0, "%s", why);
    ck_assert_msg(PLAIN("user\0user\0pencil", why, NULL) == 0, "%s", why);
    px_plain_cache_stats(s->plain_cache, &hits, &misses);
    ck_assert_uint_eq(hits, 2);
    ck_assert_int_eq(PLAIN("\0user\0pencul", why, NULL), -1);
    ck_assert_str_eq(why, "wrong password");
    ck_assert_int_eq(PLAIN("\0user\0pencil\0", why, NULL), -1);
    ck_assert_int_eq(PLAIN("\0user\0pencil", why, NULL), 0); /* the good entry stays */
    px_plain_cache_stats(s->plain_cache, &hits, &misses);
    ck_assert_uint_eq(hits, 3);
    ck_assert_uint_eq(misses, 2);
    /* The credential changes (a reload keeps the user, another hash): no hit. */
    for (int i = 0; i < s->nusers; i++)
        if (strcmp(s->users[i].name, "user") == 0)
            s->users[i].cred[PX_MECH_PLAIN].stored_key[0] ^= 1;
    ck_assert_int_eq(PLAIN("\0user\0pencil", why, NULL), -1);
    ck_assert_str_eq(why, "wrong password");
    px_sasl_free(s);
}
END_TEST

static void expect_file_refused(const char *json, const char *err_has)
{
    px_client_sasl cfg = cfg_all();
    char err[512] = "";
    px_sasl *s = px_sasl_new_text(&cfg, json, err, sizeof(err));
    ck_assert_msg(s == NULL, "accepted: %s", json);
    ck_assert_msg(strstr(err, err_has) != NULL, "%s: \"%s\" (expected \"%s\")", json, err, err_has);
    ck_assert_msg(strstr(err, "pencil") == NULL, "a password in: %s", err);
}

#define K32 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define SCRAM256(salt, it, st) \
    "{\"salt\": \"" salt "\", \"iterations\": " it ", \"stored_key\": \"" st "\", \"server_key\": \"" K32 "\"}"

START_TEST(test_credentials_file)
{
    px_client_sasl cfg = cfg_all();
    char err[512] = "";
    px_sasl *s = px_sasl_new_text(&cfg, "{\"users\": [{\"name\": \"a\", \"SCRAM-SHA-256\": " SCRAM256(
                                            "c2FsdA==", "4096", K32) "}]}", err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_int_eq(px_sasl_mech_enabled(s, "SCRAM-SHA-256", 13), PX_MECH_SCRAM_SHA_256);
    ck_assert_int_eq(px_sasl_mech_enabled(s, "SCRAM-SHA-1", 11), -1);
    px_sasl_free(s);
    /* Only the configured mechanisms are offered. */
    char *one[] = {"SCRAM-SHA-512"};
    px_client_sasl c1 = {.enabled = 1, .mechanisms = one, .nmechanisms = 1};
    s = px_sasl_new_text(&c1, "{\"users\": []}", err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_int_eq(px_sasl_mech_enabled(s, "SCRAM-SHA-512", 13), PX_MECH_SCRAM_SHA_512);
    ck_assert_int_eq(px_sasl_mech_enabled(s, "PLAIN", 5), -1);
    px_sasl_free(s);
    /* Unknown users get the file's iteration count, not 4096, so that the
     * server-first message does not tell them from real users. */
    s = px_sasl_new_text(&cfg, "{\"users\": [{\"name\": \"a\", \"SCRAM-SHA-256\": " SCRAM256(
                                  "c2FsdA==", "10000", K32) "}]}", err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    px_sasl_sess *ss = px_sasl_sess_new(s, PX_MECH_SCRAM_SHA_256);
    char *out, why[256];
    ck_assert_int_eq(sstep(ss, "n,,n=nobody,r=abc", &out, why, sizeof(why)), 1);
    ck_assert_msg(strstr(out, ",i=10000") != NULL, "%s", out);
    free(out);
    px_sasl_sess_free(ss);
    ss = px_sasl_sess_new(s, PX_MECH_SCRAM_SHA_512); /* none in the file: the tool's default */
    ck_assert_int_eq(sstep(ss, "n,,n=nobody,r=abc", &out, why, sizeof(why)), 1);
    ck_assert_msg(strstr(out, ",i=8192") != NULL, "%s", out);
    free(out);
    px_sasl_sess_free(ss);
    px_sasl_free(s);

    expect_file_refused("{\"users\": [{\"name\": \"a\", \"password\": \"pencil\"}]}",
                        "unknown key \"password\" (a password is never stored");
    expect_file_refused("{\"users\": [{\"name\": \"a\", \"PLAIN\": {\"password\": \"pencil\"}}]}",
                        "PLAIN.iterations");
    expect_file_refused("{\"users\": [{\"name\": \"a\", \"SCRAM-SHA-256\": " SCRAM256("c2Fs!A==", "4096", K32) "}]}",
                        "users[0] (\"a\").SCRAM-SHA-256.salt: expected base64");
    expect_file_refused("{\"users\": [{\"name\": \"a\", \"SCRAM-SHA-256\": " SCRAM256("c2FsdA==", "4096", "AAAA") "}]}",
                        "SCRAM-SHA-256.stored_key: expected base64 of 32 bytes");
    expect_file_refused("{\"users\": [{\"name\": \"a\", \"SCRAM-SHA-256\": " SCRAM256("c2FsdA==", "4095", K32) "}]}",
                        "SCRAM-SHA-256.iterations: expected an integer in [4096, ");
    expect_file_refused("{\"users\": [{\"name\": \"a\", \"SCRAM-SHA-256\": " SCRAM256("c2FsdA==", "\"4096\"", K32) "}]}",
                        "SCRAM-SHA-256.iterations");
    expect_file_refused("{\"users\": [{\"name\": \"a\", \"SCRAM-SHA-256\": {\"salt\": \"c2FsdA==\", \"iterations\": "
                        "4096, \"stored_key\": \"" K32 "\"}}]}",
                        "SCRAM-SHA-256.server_key: expected base64");
    expect_file_refused("{\"users\": [{\"name\": \"a\", \"SCRAM-SHA-256\": {\"iterations\": 4096, \"stored_key\": \"" K32
                        "\", \"server_key\": \"" K32 "\"}}]}",
                        "SCRAM-SHA-256.salt: expected base64");
    expect_file_refused("{\"users\": [{\"name\": \"a\", \"PLAIN\": {\"salt\": \"c2FsdA==\", \"iterations\": 4096, "
                        "\"hash\": \"" K32 "\"}}]}",
                        "PLAIN.hash: expected base64 of 64 bytes");
    expect_file_refused("{\"users\": [{\"name\": \"a\", \"SCRAM-SHA-256\": 1}]}", "SCRAM-SHA-256: expected an object");
    expect_file_refused("{\"users\": [{\"SCRAM-SHA-256\": " SCRAM256("c2FsdA==", "4096", K32) "}]}",
                        "users[0].name: expected a string");
    expect_file_refused("{\"users\": [{\"name\": \"\"}]}", "users[0].name");
    expect_file_refused("{\"users\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}", "listed twice");
    expect_file_refused("{\"user\": []}", "expected {\"users\": [...]}");
    expect_file_refused("[]", "expected {\"users\"");
    expect_file_refused("{\"users\": [", "client_sasl.credentials_file: line 1");
    expect_file_refused("{\"users\": [], \"users\": []}", "duplicate");

    /* The file on disk: a missing file names it. */
    px_client_sasl cf = cfg_all();
    cf.credentials_file = "/nonexistent/kz-users.json";
    ck_assert_ptr_null(px_sasl_new(&cf, err, sizeof(err)));
    ck_assert_msg(strstr(err, "/nonexistent/kz-users.json") != NULL, "%s", err);

    /* px_sasl_credential_entry's own refusals. */
    ck_assert_ptr_null(px_sasl_credential_entry("u", "pencil", 6, 4095, err, sizeof(err)));
    ck_assert_msg(strstr(err, "iterations") != NULL, "%s", err);
    ck_assert_ptr_null(px_sasl_credential_entry("", "pencil", 6, 4096, err, sizeof(err)));
    ck_assert_msg(strstr(err, "user name") != NULL, "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("px_sasl");
    TCase *tc = tcase_create("scram");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rfc7677_server);
    tcase_add_test(tc, test_scram_bad_proof_and_nonce);
    tcase_add_test(tc, test_scram_sha512_round_trip);
    tcase_add_test(tc, test_client_first_parser);
    tcase_add_test(tc, test_client_final_parser);
    tcase_add_test(tc, test_plain_cache);
    suite_add_tcase(s, tc);
    tc = tcase_create("plain_and_file");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_plain);
    tcase_add_test(tc, test_credentials_file);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
