#include "config.h"

#include "proxy/px_sasl.h"

#include "codec/kc_peer.h"
#include "common/kz_log.h"
#include "common/kz_scram.h"
#include "proxy/px_proxy.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/px_sasl_int.h"

static int px_why(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int px_why(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *const px_mech_names[PX_MECH_N] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};

const char *px_sasl_mech_name(int mech)
{
    return mech >= 0 && mech < PX_MECH_N ? px_mech_names[mech] : "NONE";
}

static int px_mech_sha(int mech) { return mech == PX_MECH_SCRAM_SHA_256 ? 256 : 512; }

int px_sasl_mech_enabled(const px_sasl *s, const char *name, size_t len)
{
    for (int m = 0; m < PX_MECH_N; m++)
        if (s->enabled[m] && strlen(px_mech_names[m]) == len && memcmp(px_mech_names[m], name, len) == 0)
            return m;
    return -1;
}

int px_sasl_nusers(const px_sasl *s) { return s->nusers; }

/* ---------------- the credentials file ---------------- */

static int px_cred_b64(json_t *o, const char *key, uint8_t *out, size_t cap, size_t *len, size_t want,
                       const char *where, char *err, size_t n)
{
    const char *v = json_string_value(json_object_get(o, key));
    long l = v ? kz_b64_decode(v, strlen(v), out, cap) : -1;
    if (l <= 0 || (want && (size_t)l != want))
        return px_why(err, n, "%s.%s: expected base64 of %s bytes", where, key,
                      want == 32 ? "32" : want == 64 ? "64" : "1-128");
    if (len)
        *len = (size_t)l;
    return 0;
}

static int px_cred_parse(json_t *o, int mech, px_sasl_cred *c, const char *where, char *err, size_t n)
{
    if (!json_is_object(o))
        return px_why(err, n, "%s: expected an object", where);
    json_t *it = json_object_get(o, "iterations");
    if (!json_is_integer(it) || json_integer_value(it) < PX_SASL_ITER_MIN ||
        json_integer_value(it) > PX_SASL_ITER_MAX)
        return px_why(err, n, "%s.iterations: expected an integer in [%d, %d]", where, PX_SASL_ITER_MIN,
                      PX_SASL_ITER_MAX);
    c->iterations = (int)json_integer_value(it);
    if (px_cred_b64(o, "salt", c->salt, sizeof(c->salt), &c->salt_len, 0, where, err, n) != 0)
        return -1;
    if (mech == PX_MECH_PLAIN) {
        if (px_cred_b64(o, "hash", c->stored_key, sizeof(c->stored_key), NULL, PX_PLAIN_HASH_LEN, where, err,
                        n) != 0)
            return -1;
    } else {
        size_t hl = kz_sha_len(px_mech_sha(mech));
        if (px_cred_b64(o, "stored_key", c->stored_key, sizeof(c->stored_key), NULL, hl, where, err, n) != 0 ||
            px_cred_b64(o, "server_key", c->server_key, sizeof(c->server_key), NULL, hl, where, err, n) != 0)
            return -1;
    }
    c->present = 1;
    return 0;
}

static int px_sasl_load(px_sasl *s, json_t *root, char *err, size_t n)
{
    json_t *users = json_is_object(root) ? json_object_get(root, "users") : NULL;
    if (!json_is_array(users))
        return px_why(err, n, "expected {\"users\": [...]}");
    size_t nu = json_array_size(users);
    s->users = calloc(nu ? nu : 1, sizeof(*s->users));
    if (s->users == NULL)
        return px_why(err, n, "out of memory");
    for (size_t i = 0; i < nu; i++) {
        json_t *u = json_array_get(users, i);
        const char *name = json_string_value(json_object_get(u, "name"));
        char where[PX_SASL_USER_MAX + 64];
        if (name == NULL || name[0] == '\0' || strlen(name) > PX_SASL_USER_MAX)
            return px_why(err, n, "users[%zu].name: expected a string of 1-%d bytes", i, PX_SASL_USER_MAX);
        for (int k = 0; k < s->nusers; k++)
            if (strcmp(s->users[k].name, name) == 0)
                return px_why(err, n, "users[%zu]: user \"%s\" listed twice", i, name);
        px_sasl_user *pu = &s->users[s->nusers++];
        if ((pu->name = strdup(name)) == NULL)
            return px_why(err, n, "out of memory");
        const char *key;
        json_t *v;
        json_object_foreach(u, key, v)
        {
            int m = -1;
            for (int k = 0; k < PX_MECH_N; k++)
                if (strcmp(key, px_mech_names[k]) == 0)
                    m = k;
            if (strcmp(key, "name") == 0)
                continue;
            if (m < 0)
                return px_why(err, n, "users[%zu] (\"%s\"): unknown key \"%s\" (a password is never stored: "
                                      "use kzproxy --scram-credential)", i, name, key);
            snprintf(where, sizeof(where), "users[%zu] (\"%s\").%s", i, name, key);
            if (px_cred_parse(v, m, &pu->cred[m], where, err, n) != 0)
                return -1;
            if (s->fake_iter[m] == 0)
                s->fake_iter[m] = pu->cred[m].iterations;
        }
    }
    return 0;
}

static px_sasl *px_sasl_make(const px_client_sasl *cfg, json_t *root, const char *what, char *err, size_t n)
{
    px_sasl *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        px_why(err, n, "out of memory");
        return NULL;
    }
    for (int i = 0; i < cfg->nmechanisms; i++)
        for (int m = 0; m < PX_MECH_N; m++)
            if (strcmp(cfg->mechanisms[i], px_mech_names[m]) == 0)
                s->enabled[m] = 1;
    char why[400] = "";
    s->plain_cache = px_plain_cache_new();
    if (RAND_bytes(s->fake_key, sizeof(s->fake_key)) == 1)
        px_sasl_load(s, root, why, sizeof(why));
    else
        px_why(why, sizeof(why), "no random bytes");
    for (int m = 0; m < PX_MECH_N; m++)
        if (s->fake_iter[m] == 0)
            s->fake_iter[m] = 8192; /* kzproxy --scram-credential's default */
    if (why[0] != '\0') {
        px_why(err, n, "client_sasl.credentials_file %s: %s", what, why);
        px_sasl_free(s);
        return NULL;
    }
    return s;
}

px_sasl *px_sasl_new_text(const px_client_sasl *cfg, const char *text, char *err, size_t n)
{
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        px_why(err, n, "client_sasl.credentials_file: line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    px_sasl *s = px_sasl_make(cfg, root, "(text)", err, n);
    json_decref(root);
    return s;
}

px_sasl *px_sasl_new(const px_client_sasl *cfg, char *err, size_t n)
{
    json_error_t je;
    json_t *root = json_load_file(cfg->credentials_file, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        px_why(err, n, "client_sasl.credentials_file %s: line %d column %d: %s", cfg->credentials_file,
               je.line, je.column, je.text);
        return NULL;
    }
    px_sasl *s = px_sasl_make(cfg, root, cfg->credentials_file, err, n);
    json_decref(root);
    return s;
}

void px_sasl_free(px_sasl *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->nusers; i++)
        free(s->users[i].name);
    if (s->users)
        OPENSSL_cleanse(s->users, sizeof(*s->users) * (size_t)s->nusers);
    free(s->users);
    OPENSSL_cleanse(s->fake_key, sizeof(s->fake_key));
    px_plain_cache_free(s->plain_cache);
    free(s);
}

/* ---------------- SCRAM client message parsers ---------------- */

static int px_scram_check(const uint8_t *p, size_t n, const char *what, char *why, size_t wn)
{
    if (n == 0)
        return px_why(why, wn, "empty SCRAM %s", what);
    if (n > PX_SCRAM_CLIENT_MSG_MAX)
        return px_why(why, wn, "SCRAM %s of %zu bytes (at most %d)", what, n, PX_SCRAM_CLIENT_MSG_MAX);
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return px_why(why, wn, "SCRAM %s has a non-printable byte at %zu", what, i);
    return 0;
}

int px_scram_parse_client_first(const uint8_t *msg, size_t n, px_scram_client_first *out, char *why, size_t wn)
{
    memset(out, 0, sizeof(*out));
    if (px_scram_check(msg, n, "client-first message", why, wn) != 0)
        return -1;
    const char *p = (const char *)msg, *end = p + n;
    if (n < 3 || memcmp(p, "n,,", 3) != 0)
        return px_why(why, wn, "SCRAM client-first message: gs2 header is not \"n,,\" (channel binding "
                               "and authzid are not supported)");
    if (n > 3 && msg[n - 1] == ',')
        return px_why(why, wn, "SCRAM client-first message ends with a comma (an empty attribute)");
    p += 3;
    out->bare = p;
    out->bare_len = (size_t)(end - p);
    char key;
    const char *v;
    size_t vl;
    if (kz_scram_attr(&p, end, &key, &v, &vl) != 0 || key != 'n' || vl == 0)
        return px_why(why, wn, "SCRAM client-first message: missing user name");
    size_t o = 0;
    for (size_t i = 0; i < vl; i++) {
        char c = v[i];
        if (c == '=') {
            if (i + 2 < vl && v[i + 1] == '2' && v[i + 2] == 'C')
                c = ',';
            else if (i + 2 < vl && v[i + 1] == '3' && v[i + 2] == 'D')
                c = '=';
            else
                return px_why(why, wn, "SCRAM client-first message: bad escape in the user name");
            i += 2;
        }
        if (o >= PX_SASL_USER_MAX)
            return px_why(why, wn, "SCRAM client-first message: user name longer than %d bytes", PX_SASL_USER_MAX);
        out->user[o++] = c;
    }
    out->user[o] = '\0';
    if (p >= end || kz_scram_attr(&p, end, &key, &v, &vl) != 0 || key != 'r' || vl == 0 ||
        vl > PX_SCRAM_NONCE_MAX)
        return px_why(why, wn, "SCRAM client-first message: bad or missing nonce");
    out->nonce = v;
    out->nonce_len = vl;
    /* Extensions (RFC 5802 "ext", Kafka's "name=value"): only to be ignored;
     * a delegation token login is not served. */
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t l = (size_t)((c ? c : end) - p);
        if (l < 2 || memchr(p, '=', l) == NULL || p[0] == '=' || (c && c + 1 == end))
            return px_why(why, wn, "SCRAM client-first message: malformed extension");
        if (l >= 10 && memcmp(p, "tokenauth=", 10) == 0)
            return px_why(why, wn, "SCRAM delegation token logins are not supported");
        if (p[0] == 'm' && p[1] == '=')
            return px_why(why, wn, "SCRAM client-first message demands an unsupported extension");
        p = c ? c + 1 : end;
    }
    return 0;
}

int px_scram_parse_client_final(const uint8_t *msg, size_t n, px_scram_client_final *out, char *why, size_t wn)
{
    memset(out, 0, sizeof(*out));
    if (px_scram_check(msg, n, "client-final message", why, wn) != 0)
        return -1;
    if (msg[n - 1] == ',')
        return px_why(why, wn, "SCRAM client-final message ends with a comma (an empty attribute)");
    const char *p = (const char *)msg, *end = p + n;
    char key;
    const char *v;
    size_t vl;
    if (kz_scram_attr(&p, end, &key, &v, &vl) != 0 || key != 'c' || vl != 4 || memcmp(v, "biws", 4) != 0)
        return px_why(why, wn, "SCRAM client-final message: channel binding is not \"biws\" (n,,)");
    if (p >= end || kz_scram_attr(&p, end, &key, &v, &vl) != 0 || key != 'r' || vl == 0 || vl > 2 * PX_SCRAM_NONCE_MAX)
        return px_why(why, wn, "SCRAM client-final message: bad or missing nonce");
    out->nonce = v;
    out->nonce_len = vl;
    for (;;) {
        const char *at = p;
        if (p >= end || kz_scram_attr(&p, end, &key, &v, &vl) != 0)
            return px_why(why, wn, "SCRAM client-final message: missing proof");
        if (key == 'p') {
            if (p != end)
                return px_why(why, wn, "SCRAM client-final message: the proof is not last");
            long l = kz_b64_decode(v, vl, out->proof, sizeof(out->proof));
            if (l <= 0)
                return px_why(why, wn, "SCRAM client-final message: the proof is not base64 of 1-64 bytes");
            out->proof_len = (size_t)l;
            out->without_proof_len = (size_t)(at - 1 - (const char *)msg);
            return 0;
        }
    }
}

/* ---------------- sessions ---------------- */

px_sasl_sess *px_sasl_sess_new(const px_sasl *s, int mech)
{
    px_sasl_sess *ss = calloc(1, sizeof(*ss));
    if (ss) {
        ss->s = s;
        ss->mech = mech;
    }
    return ss;
}

const char *px_sasl_sess_user(const px_sasl_sess *ss) { return ss->user; }

int px_sasl_sess_set_nonce(px_sasl_sess *ss, const char *nonce)
{
    free(ss->server_nonce);
    ss->server_nonce = strdup(nonce);
    return ss->server_nonce ? 0 : -1;
}

void px_sasl_sess_free(px_sasl_sess *ss)
{
    if (ss == NULL)
        return;
    free(ss->server_nonce);
    free(ss->first_bare);
    free(ss->server_first);
    free(ss->nonce);
    OPENSSL_cleanse(&ss->fake, sizeof(ss->fake));
    free(ss);
}

static const px_sasl_user *px_sasl_find(const px_sasl *s, const char *name)
{
    for (int i = 0; i < s->nusers; i++)
        if (strcmp(s->users[i].name, name) == 0)
            return &s->users[i];
    return NULL;
}

/* PLAIN: [authzid] NUL authcid NUL passwd; authzid empty or the user. */
static int px_plain_step(px_sasl_sess *ss, const uint8_t *in, size_t n, char *why, size_t wn)
{
    const uint8_t *z1 = n ? memchr(in, 0, n) : NULL;
    const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, n - (size_t)(z1 + 1 - in)) : NULL;
    if (z2 == NULL || n > 1024)
        return px_why(why, wn, "malformed PLAIN message");
    size_t azl = (size_t)(z1 - in), ul = (size_t)(z2 - z1 - 1), pl = n - (size_t)(z2 + 1 - in);
    if (ul == 0 || ul > PX_SASL_USER_MAX || pl == 0)
        return px_why(why, wn, "malformed PLAIN message (empty or too long user name, or empty password)");
    /* RFC 4616: no NUL in the password. HMAC pads its key with zeros, so
     * "pw\0" would otherwise pass for "pw"; Kafka refuses a fourth token. */
    if (memchr(z2 + 1, 0, pl) != NULL)
        return px_why(why, wn, "malformed PLAIN message (a NUL in the password)");
    memcpy(ss->user, z1 + 1, ul);
    ss->user[ul] = '\0';
    if (strlen(ss->user) != ul)
        return px_why(why, wn, "malformed PLAIN message");
    if (azl != 0 && (azl != ul || memcmp(in, z1 + 1, ul) != 0))
        return px_why(why, wn, "PLAIN authorization id differs from the user (not supported)");
    const px_sasl_user *u = px_sasl_find(ss->s, ss->user);
    const px_sasl_cred *c = u ? &u->cred[PX_MECH_PLAIN] : NULL;
    uint8_t h[PX_PLAIN_HASH_LEN];
    int ok = 0;
    /* The work is done for unknown users too, so that timing does not tell. */
    /* A login verified before (px_sasl_cache.c) skips the PBKDF2; a failed
     * one is never remembered, so every guess pays the full cost. */
    if (c && c->present && px_plain_cache_hit(ss->s->plain_cache, ss->user, ul, (const char *)z2 + 1, pl,
                                              c->stored_key)) {
        ok = 1;
    } else if (c && c->present) {
        ok = kz_pbkdf2(512, (const char *)z2 + 1, pl, c->salt, c->salt_len, c->iterations, h, sizeof(h)) == 0 &&
             CRYPTO_memcmp(h, c->stored_key, sizeof(h)) == 0;
        if (ok)
            px_plain_cache_put(ss->s->plain_cache, ss->user, ul, (const char *)z2 + 1, pl, c->stored_key);
    } else {
        uint8_t salt[32];
        kz_hmac(256, ss->s->fake_key, sizeof(ss->s->fake_key), ss->user, ul, salt);
        kz_pbkdf2(512, (const char *)z2 + 1, pl, salt, sizeof(salt), ss->s->fake_iter[PX_MECH_PLAIN], h, sizeof(h));
    }
    OPENSSL_cleanse(h, sizeof(h));
    if (!ok)
        return px_why(why, wn, u == NULL ? "unknown user" : !c->present ? "user has no PLAIN credential" : "wrong password");
    return 0;
}

static int px_scram_first(px_sasl_sess *ss, const uint8_t *in, size_t n, uint8_t **out, size_t *out_len,
                          char *why, size_t wn)
{
    px_scram_client_first cf;
    if (px_scram_parse_client_first(in, n, &cf, why, wn) != 0)
        return -1;
    memcpy(ss->user, cf.user, sizeof(ss->user));
    const px_sasl_user *u = px_sasl_find(ss->s, cf.user);
    if (u && u->cred[ss->mech].present) {
        ss->cred = &u->cred[ss->mech];
    } else {
        /* An unknown user gets a salt of its own, stable across attempts, and
         * fails at the proof like a wrong password. */
        uint8_t mac[KZ_SHA_MAX];
        kz_hmac(256, ss->s->fake_key, sizeof(ss->s->fake_key), cf.user, strlen(cf.user), mac);
        memcpy(ss->fake.salt, mac, 32);
        ss->fake.salt_len = 32;
        ss->fake.iterations = ss->s->fake_iter[ss->mech];
        RAND_bytes(ss->fake.stored_key, sizeof(ss->fake.stored_key));
        ss->cred = NULL;
    }
    const px_sasl_cred *c = ss->cred ? ss->cred : &ss->fake;
    char *rnd64 = NULL;
    if (ss->server_nonce == NULL) {
        uint8_t rnd[24];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return px_why(why, wn, "no random bytes for the SCRAM nonce");
        rnd64 = kz_b64_encode(rnd, sizeof(rnd));
    }
    const char *sn = ss->server_nonce ? ss->server_nonce : rnd64;
    char *salt64 = kz_b64_encode(c->salt, c->salt_len);
    size_t nl = cf.nonce_len + (sn ? strlen(sn) : 0);
    ss->nonce = sn ? malloc(nl + 1) : NULL;
    ss->first_bare = malloc(cf.bare_len + 1);
    size_t fl = nl + (salt64 ? strlen(salt64) : 0) + 32;
    ss->server_first = malloc(fl);
    if (rnd64 == NULL && ss->server_nonce == NULL)
        goto oom;
    if (salt64 == NULL || ss->nonce == NULL || ss->first_bare == NULL || ss->server_first == NULL)
        goto oom;
    snprintf(ss->nonce, nl + 1, "%.*s%s", (int)cf.nonce_len, cf.nonce, sn);
    memcpy(ss->first_bare, cf.bare, cf.bare_len);
    ss->first_bare[cf.bare_len] = '\0';
    snprintf(ss->server_first, fl, "r=%s,s=%s,i=%d", ss->nonce, salt64, c->iterations);
    free(rnd64);
    free(salt64);
    *out_len = strlen(ss->server_first);
    *out = (uint8_t *)strdup(ss->server_first);
    return *out ? 1 : px_why(why, wn, "out of memory");
oom:
    free(rnd64);
    free(salt64);
    return px_why(why, wn, "out of memory");
}

static int px_scram_final(px_sasl_sess *ss, const uint8_t *in, size_t n, uint8_t **out, size_t *out_len,
                          char *why, size_t wn)
{
    px_scram_client_final cf;
    if (px_scram_parse_client_final(in, n, &cf, why, wn) != 0)
        return -1;
    /* Exactly the combined nonce (RFC 5802; Kafka 4 checks it too: clients
     * that repeat their own nonce, librdkafka before 2.6.1, are refused). */
    if (cf.nonce_len != strlen(ss->nonce) || memcmp(cf.nonce, ss->nonce, cf.nonce_len) != 0)
        return px_why(why, wn, "SCRAM client-final nonce is not the combined nonce");
    const int sha = px_mech_sha(ss->mech);
    const size_t hl = kz_sha_len(sha);
    if (cf.proof_len != hl)
        return px_why(why, wn, "SCRAM proof of %zu bytes (expected %zu)", cf.proof_len, hl);
    const px_sasl_cred *c = ss->cred ? ss->cred : &ss->fake;
    size_t fbl = strlen(ss->first_bare), sfl = strlen(ss->server_first);
    size_t al = fbl + 1 + sfl + 1 + cf.without_proof_len;
    char *auth = malloc(al + 1);
    if (auth == NULL)
        return px_why(why, wn, "out of memory");
    snprintf(auth, al + 1, "%s,%s,%.*s", ss->first_bare, ss->server_first, (int)cf.without_proof_len,
             (const char *)in);
    uint8_t csig[KZ_SHA_MAX], ckey[KZ_SHA_MAX], h[KZ_SHA_MAX], ssig[KZ_SHA_MAX];
    int rc = -1;
    if (kz_hmac(sha, c->stored_key, hl, auth, al, csig) != 0) {
        px_why(why, wn, "SCRAM computation failed in OpenSSL");
        goto out;
    }
    for (size_t i = 0; i < hl; i++)
        ckey[i] = cf.proof[i] ^ csig[i];
    if (kz_hash(sha, ckey, hl, h) != 0 || CRYPTO_memcmp(h, c->stored_key, hl) != 0 || ss->cred == NULL) {
        px_why(why, wn, ss->cred == NULL ? "unknown user" : "wrong password (bad SCRAM proof)");
        goto out;
    }
    if (kz_hmac(sha, c->server_key, hl, auth, al, ssig) != 0) {
        px_why(why, wn, "SCRAM computation failed in OpenSSL");
        goto out;
    }
    char *sig64 = kz_b64_encode(ssig, hl);
    char *msg = sig64 ? malloc(strlen(sig64) + 3) : NULL;
    if (msg == NULL) {
        free(sig64);
        px_why(why, wn, "out of memory");
        goto out;
    }
    sprintf(msg, "v=%s", sig64);
    free(sig64);
    *out = (uint8_t *)msg;
    *out_len = strlen(msg);
    rc = 0;
out:
    OPENSSL_cleanse(csig, sizeof(csig));
    OPENSSL_cleanse(ckey, sizeof(ckey));
    OPENSSL_cleanse(h, sizeof(h));
    OPENSSL_cleanse(ssig, sizeof(ssig));
    free(auth);
    return rc;
}

int px_sasl_sess_step(px_sasl_sess *ss, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
                      char *why, size_t wn)
{
    *out = NULL;
    *out_len = 0;
    int rc;
    if (ss->state == PX_SS_DONE)
        return px_why(why, wn, "SASL exchange already over");
    if (ss->mech == PX_MECH_PLAIN) {
        rc = px_plain_step(ss, in, in_len, why, wn);
        ss->state = PX_SS_DONE;
        return rc;
    }
    if (ss->state == PX_SS_FIRST) {
        rc = px_scram_first(ss, in, in_len, out, out_len, why, wn);
        ss->state = rc == 1 ? PX_SS_FINAL : PX_SS_DONE;
        return rc;
    }
    ss->state = PX_SS_DONE;
    return px_scram_final(ss, in, in_len, out, out_len, why, wn);
}

/* ---------------- credentials for the file ---------------- */

static int px_cred_json(json_t *user, const char *mech, int sha, const char *pw, size_t pwl, int iter,
                        char *err, size_t n)
{
    uint8_t salt[32], a[KZ_SHA_MAX], b[KZ_SHA_MAX];
    size_t hl = sha ? kz_sha_len(sha) : PX_PLAIN_HASH_LEN;
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return px_why(err, n, "no random bytes for a salt");
    int rc = sha ? kz_scram_keys(sha, pw, pwl, salt, sizeof(salt), iter, NULL, a, b)
                 : kz_pbkdf2(512, pw, pwl, salt, sizeof(salt), iter, a, hl);
    char *s64 = kz_b64_encode(salt, sizeof(salt)), *a64 = kz_b64_encode(a, hl), *b64 = kz_b64_encode(b, hl);
    json_t *o = json_object();
    if (rc != 0 || !s64 || !a64 || !b64 || !o) {
        rc = px_why(err, n, "cannot derive the %s credential", mech);
    } else {
        json_object_set_new(o, "salt", json_string(s64));
        json_object_set_new(o, "iterations", json_integer(iter));
        if (sha) {
            json_object_set_new(o, "stored_key", json_string(a64));
            json_object_set_new(o, "server_key", json_string(b64));
        } else {
            json_object_set_new(o, "hash", json_string(a64));
        }
        json_object_set(user, mech, o);
    }
    json_decref(o);
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    free(s64);
    free(a64);
    free(b64);
    return rc;
}

char *px_sasl_credential_entry(const char *user, const char *pw, size_t pwl, int iter, char *err, size_t n)
{
    if (user == NULL || user[0] == '\0' || strlen(user) > PX_SASL_USER_MAX) {
        px_why(err, n, "the user name must be 1-%d bytes", PX_SASL_USER_MAX);
        return NULL;
    }
    if (iter < PX_SASL_ITER_MIN || iter > PX_SASL_ITER_MAX) {
        px_why(err, n, "iterations must be in [%d, %d]", PX_SASL_ITER_MIN, PX_SASL_ITER_MAX);
        return NULL;
    }
    json_t *u = json_object();
    char *text = NULL;
    if (u && json_object_set_new(u, "name", json_string(user)) == 0 &&
        px_cred_json(u, "SCRAM-SHA-512", 512, pw, pwl, iter, err, n) == 0 &&
        px_cred_json(u, "SCRAM-SHA-256", 256, pw, pwl, iter, err, n) == 0 &&
        px_cred_json(u, "PLAIN", 0, pw, pwl, iter, err, n) == 0)
        text = json_dumps(u, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(u);
    if (text == NULL && err[0] == '\0')
        px_why(err, n, "out of memory");
    return text;
}
