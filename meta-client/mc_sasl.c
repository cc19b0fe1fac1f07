#include "config.h"

#include "meta-client/mc_sasl.h"

#include "common/kz_scram.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_SECRET_FILE_MAX (64 * 1024)

struct mc_sasl {
    int mech;
    char *username;
    char *password;
    char *token;
    char *token_file;
};

enum { MC_SS_START = 0, MC_SS_SENT_FIRST, MC_SS_SENT_FINAL, MC_SS_DONE, MC_SS_FAILED };

struct mc_sasl_session {
    const mc_sasl *s;
    int state;
    char *token;        /* OAUTHBEARER: this connection's token */
    char *nonce;        /* SCRAM: client nonce */
    char *first_bare;   /* SCRAM: client-first-message-bare */
    uint8_t server_sig[EVP_MAX_MD_SIZE]; /* SCRAM: the ServerSignature the broker must show */
    size_t sig_len;
};

static int mc_sasl_err(char *errstr, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, n, fmt, ap);
    va_end(ap);
    return -1;
}

int mc_sasl_mech_parse(const char *name)
{
    static const struct {
        const char *name;
        int mech;
    } t[] = {{"PLAIN", MC_SASL_PLAIN},
             {"SCRAM-SHA-256", MC_SASL_SCRAM_SHA_256},
             {"SCRAM-SHA-512", MC_SASL_SCRAM_SHA_512},
             {"OAUTHBEARER", MC_SASL_OAUTHBEARER}};
    for (size_t i = 0; name && i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(name, t[i].name) == 0)
            return t[i].mech;
    return -1;
}

const char *mc_sasl_mech_name(int mech)
{
    switch (mech) {
    case MC_SASL_PLAIN: return "PLAIN";
    case MC_SASL_SCRAM_SHA_256: return "SCRAM-SHA-256";
    case MC_SASL_SCRAM_SHA_512: return "SCRAM-SHA-512";
    case MC_SASL_OAUTHBEARER: return "OAUTHBEARER";
    default: return "NONE";
    }
}

char *mc_sasl_printable(char *dst, size_t n, const void *src, size_t len)
{
    const unsigned char *p = src;
    size_t o = 0;
    int cut = 0;
    for (size_t i = 0; i < len; i++) {
        if (o + 1 >= n) {
            cut = 1;
            break;
        }
        dst[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    }
    if (cut && n >= 4) {
        memcpy(dst + n - 4, "...", 3);
        o = n - 1;
    }
    dst[o] = '\0';
    return dst;
}

static void mc_wipe_str(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void mc_sasl_wipe_free(uint8_t *p, size_t n)
{
    if (p) {
        OPENSSL_cleanse(p, n);
        free(p);
    }
}

/* Read a small secret file whole, dropping trailing whitespace. */
static char *mc_read_secret(const char *path, const char *what, char *errstr, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        mc_sasl_err(errstr, n, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MC_SECRET_FILE_MAX + 1);
    size_t len = buf ? fread(buf, 1, MC_SECRET_FILE_MAX + 1, f) : 0;
    int rerr = ferror(f);
    fclose(f);
    if (buf == NULL || rerr || len > MC_SECRET_FILE_MAX) {
        if (buf) {
            OPENSSL_cleanse(buf, MC_SECRET_FILE_MAX + 1);
            free(buf);
        }
        mc_sasl_err(errstr, n, "%s %s: %s", what, path,
                    buf == NULL ? "out of memory" : rerr ? "read error" : "larger than 64 KiB");
        return NULL;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        len--;
    buf[len] = '\0';
    if (len == 0 || memchr(buf, '\0', len) != NULL) {
        OPENSSL_cleanse(buf, MC_SECRET_FILE_MAX + 1);
        free(buf);
        mc_sasl_err(errstr, n, "%s %s: %s", what, path, len == 0 ? "empty" : "contains a NUL byte");
        return NULL;
    }
    return buf;
}

/* A bearer token (RFC 6750 b64token, as Kafka's OAUTHBEARER checks it). */
static int mc_token_ok(const char *t)
{
    size_t n = strlen(t), i = 0;
    for (; i < n && t[i] != '='; i++)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') ||
              strchr("-._~+/", t[i]) != NULL))
            return 0;
    if (i == 0)
        return 0;
    for (; i < n; i++)
        if (t[i] != '=')
            return 0;
    return 1;
}

mc_sasl *mc_sasl_new(const mc_sasl_config *cfg, char *errstr, size_t n)
{
    mc_sasl *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        mc_sasl_err(errstr, n, "out of memory");
        return NULL;
    }
    s->mech = cfg->mechanism;
    switch (s->mech) {
    case MC_SASL_PLAIN:
    case MC_SASL_SCRAM_SHA_256:
    case MC_SASL_SCRAM_SHA_512:
        if (cfg->username == NULL || cfg->username[0] == '\0') {
            mc_sasl_err(errstr, n, "backend.sasl.username: missing");
            goto fail;
        }
        s->username = strdup(cfg->username);
        if (cfg->password_file)
            s->password = mc_read_secret(cfg->password_file, "backend.sasl.password_file", errstr, n);
        else if (cfg->password)
            s->password = strdup(cfg->password);
        else
            mc_sasl_err(errstr, n, "backend.sasl: a password or password_file is required");
        if (s->username == NULL || s->password == NULL)
            goto fail;
        break;
    case MC_SASL_OAUTHBEARER:
        if (cfg->token_file) {
            char *t = mc_read_secret(cfg->token_file, "backend.sasl.token_file", errstr, n);
            if (t == NULL)
                goto fail;
            mc_wipe_str(t);
            s->token_file = strdup(cfg->token_file);
            if (s->token_file == NULL)
                goto fail;
        } else if (cfg->token) {
            if (!mc_token_ok(cfg->token)) {
                mc_sasl_err(errstr, n, "backend.sasl.token: not a bearer token (RFC 6750 b64token characters)");
                goto fail;
            }
            if ((s->token = strdup(cfg->token)) == NULL)
                goto fail;
        } else {
            mc_sasl_err(errstr, n, "backend.sasl: a token or token_file is required with OAUTHBEARER");
            goto fail;
        }
        break;
    default:
        mc_sasl_err(errstr, n, "backend.sasl.mechanism: unknown mechanism");
        goto fail;
    }
    return s;
fail:
    if (errstr[0] == '\0')
        mc_sasl_err(errstr, n, "out of memory");
    mc_sasl_free(s);
    return NULL;
}

void mc_sasl_free(mc_sasl *s)
{
    if (s == NULL)
        return;
    free(s->username);
    mc_wipe_str(s->password);
    mc_wipe_str(s->token);
    free(s->token_file);
    free(s);
}

int mc_sasl_mechanism(const mc_sasl *s) { return s->mech; }

mc_sasl_session *mc_sasl_session_new(const mc_sasl *s, char *errstr, size_t n)
{
    mc_sasl_session *ss = calloc(1, sizeof(*ss));
    if (ss == NULL) {
        mc_sasl_err(errstr, n, "out of memory");
        return NULL;
    }
    ss->s = s;
    if (s->mech == MC_SASL_OAUTHBEARER) {
        if (s->token_file) {
            errstr[0] = '\0';
            ss->token = mc_read_secret(s->token_file, "token_file", errstr, n);
            if (ss->token && !mc_token_ok(ss->token)) {
                mc_sasl_err(errstr, n, "token_file %s: not a bearer token (RFC 6750 b64token characters)",
                            s->token_file);
                mc_wipe_str(ss->token);
                ss->token = NULL;
            }
        } else {
            ss->token = strdup(s->token);
            if (ss->token == NULL)
                mc_sasl_err(errstr, n, "out of memory");
        }
        if (ss->token == NULL) {
            free(ss);
            return NULL;
        }
    }
    return ss;
}

void mc_sasl_session_free(mc_sasl_session *ss)
{
    if (ss == NULL)
        return;
    mc_wipe_str(ss->token);
    free(ss->nonce);
    free(ss->first_bare);
    OPENSSL_cleanse(ss->server_sig, sizeof(ss->server_sig));
    free(ss);
}

int mc_sasl_session_set_nonce(mc_sasl_session *ss, const char *nonce)
{
    free(ss->nonce);
    ss->nonce = strdup(nonce);
    return ss->nonce ? 0 : -1;
}

/* base64, HMAC and the SCRAM key derivation live in common/kz_scram (shared
 * with the proxy's server side). */
static char *mc_b64(const uint8_t *p, size_t n) { return kz_b64_encode(p, n); }

static long mc_unb64(const char *s, size_t n, uint8_t *out, size_t cap)
{
    return kz_b64_decode(s, n, out, cap);
}

/* ---------------- SCRAM parsers ---------------- */

#define mc_scram_attr kz_scram_attr

static int mc_scram_check_msg(const uint8_t *p, size_t n, char *errstr, size_t en)
{
    if (n == 0)
        return mc_sasl_err(errstr, en, "empty SCRAM message");
    if (n > MC_SCRAM_MSG_MAX)
        return mc_sasl_err(errstr, en, "SCRAM message of %zu bytes (at most %d accepted)", n, MC_SCRAM_MSG_MAX);
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return mc_sasl_err(errstr, en, "SCRAM message has a non-printable byte at %zu", i);
    return 0;
}

int mc_scram_parse_server_first(const uint8_t *msg, size_t n, mc_scram_server_first *out, char *errstr,
                                size_t en)
{
    memset(out, 0, sizeof(*out));
    if (mc_scram_check_msg(msg, n, errstr, en) != 0)
        return -1;
    const char *p = (const char *)msg, *end = p + n;
    char key;
    const char *v;
    size_t vl;
    if (mc_scram_attr(&p, end, &key, &v, &vl) != 0)
        return mc_sasl_err(errstr, en, "malformed SCRAM server-first message");
    if (key == 'm')
        return mc_sasl_err(errstr, en, "SCRAM server-first message demands an unsupported extension");
    if (key != 'r' || vl == 0 || vl > MC_SCRAM_NONCE_MAX || memchr(v, ',', vl))
        return mc_sasl_err(errstr, en, "SCRAM server-first message: bad or missing nonce");
    out->nonce = v;
    out->nonce_len = vl;
    if (p >= end || mc_scram_attr(&p, end, &key, &v, &vl) != 0 || key != 's')
        return mc_sasl_err(errstr, en, "SCRAM server-first message: missing salt");
    long sl = mc_unb64(v, vl, out->salt, sizeof(out->salt));
    if (sl <= 0)
        return mc_sasl_err(errstr, en, "SCRAM server-first message: salt is not base64 of 1-%d bytes",
                           MC_SCRAM_SALT_MAX);
    out->salt_len = (size_t)sl;
    if (p >= end || mc_scram_attr(&p, end, &key, &v, &vl) != 0 || key != 'i')
        return mc_sasl_err(errstr, en, "SCRAM server-first message: missing iteration count");
    long it = 0;
    if (vl == 0 || vl > 9)
        return mc_sasl_err(errstr, en, "SCRAM server-first message: bad iteration count");
    for (size_t i = 0; i < vl; i++) {
        if (v[i] < '0' || v[i] > '9')
            return mc_sasl_err(errstr, en, "SCRAM server-first message: bad iteration count");
        it = it * 10 + (v[i] - '0');
    }
    if (it < MC_SCRAM_ITER_MIN || it > MC_SCRAM_ITER_MAX)
        return mc_sasl_err(errstr, en, "SCRAM iteration count %ld outside [%d, %d]", it, MC_SCRAM_ITER_MIN,
                           MC_SCRAM_ITER_MAX);
    out->iterations = (int)it;
    /* Extensions may follow; each must still be an attribute. */
    while (p < end)
        if (mc_scram_attr(&p, end, &key, &v, &vl) != 0)
            return mc_sasl_err(errstr, en, "malformed SCRAM server-first message");
    return 0;
}

int mc_scram_parse_server_final(const uint8_t *msg, size_t n, mc_scram_server_final *out, char *errstr,
                                size_t en)
{
    memset(out, 0, sizeof(*out));
    if (mc_scram_check_msg(msg, n, errstr, en) != 0)
        return -1;
    const char *p = (const char *)msg, *end = p + n;
    char key;
    const char *v;
    size_t vl;
    if (mc_scram_attr(&p, end, &key, &v, &vl) != 0)
        return mc_sasl_err(errstr, en, "malformed SCRAM server-final message");
    if (key == 'e') {
        out->is_error = 1;
        mc_sasl_printable(out->error, sizeof(out->error), v, vl);
    } else if (key == 'v') {
        long l = mc_unb64(v, vl, out->verifier, sizeof(out->verifier));
        if (l <= 0)
            return mc_sasl_err(errstr, en, "SCRAM server-final message: verifier is not base64");
        out->verifier_len = (size_t)l;
    } else {
        return mc_sasl_err(errstr, en, "SCRAM server-final message has neither v= nor e=");
    }
    while (p < end)
        if (mc_scram_attr(&p, end, &key, &v, &vl) != 0)
            return mc_sasl_err(errstr, en, "malformed SCRAM server-final message");
    return 0;
}

/* ---------------- mechanisms ---------------- */

/* saslname: ',' and '=' escaped (RFC 5802 5.1). SASLprep is not applied:
 * user names are taken as given (ASCII names are unaffected). */
static char *mc_scram_saslname(const char *u)
{
    size_t n = 0;
    for (const char *c = u; *c; c++)
        n += (*c == ',' || *c == '=') ? 3 : 1;
    char *o = malloc(n + 1), *w = o;
    if (o == NULL)
        return NULL;
    for (const char *c = u; *c; c++) {
        if (*c == ',') {
            memcpy(w, "=2C", 3);
            w += 3;
        } else if (*c == '=') {
            memcpy(w, "=3D", 3);
            w += 3;
        } else {
            *w++ = *c;
        }
    }
    *w = '\0';
    return o;
}

static int mc_scram_first(mc_sasl_session *ss, uint8_t **out, size_t *out_len, char *errstr, size_t en)
{
    if (ss->nonce == NULL) {
        uint8_t rnd[24];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return mc_sasl_err(errstr, en, "no random bytes for the SCRAM nonce");
        ss->nonce = mc_b64(rnd, sizeof(rnd));
        if (ss->nonce == NULL)
            return mc_sasl_err(errstr, en, "out of memory");
    }
    char *name = mc_scram_saslname(ss->s->username);
    size_t bl = name ? strlen(name) + strlen(ss->nonce) + 6 : 0;
    ss->first_bare = name ? malloc(bl + 1) : NULL;
    if (ss->first_bare == NULL) {
        free(name);
        return mc_sasl_err(errstr, en, "out of memory");
    }
    snprintf(ss->first_bare, bl + 1, "n=%s,r=%s", name, ss->nonce);
    free(name);
    /* gs2 header: no channel binding, no authzid. */
    char *msg = malloc(bl + 4);
    if (msg == NULL)
        return mc_sasl_err(errstr, en, "out of memory");
    snprintf(msg, bl + 4, "n,,%s", ss->first_bare);
    *out = (uint8_t *)msg;
    *out_len = strlen(msg);
    return 1;
}

static int mc_scram_final(mc_sasl_session *ss, const uint8_t *in, size_t in_len, uint8_t **out,
                          size_t *out_len, char *errstr, size_t en)
{
    mc_scram_server_first sf;
    if (mc_scram_parse_server_first(in, in_len, &sf, errstr, en) != 0)
        return -1;
    size_t cl = strlen(ss->nonce);
    if (sf.nonce_len <= cl || memcmp(sf.nonce, ss->nonce, cl) != 0)
        return mc_sasl_err(errstr, en, "SCRAM server nonce does not extend the client nonce");
    const int sha = ss->s->mech == MC_SASL_SCRAM_SHA_512 ? 512 : 256;
    size_t hl = kz_sha_len(sha);
    uint8_t ckey[KZ_SHA_MAX], skey[KZ_SHA_MAX], stored[KZ_SHA_MAX];
    uint8_t csig[KZ_SHA_MAX], proof[KZ_SHA_MAX];
    int rc = -1;
    char *without_proof = NULL, *auth = NULL, *proof64 = NULL, *msg = NULL;
    const char *pw = ss->s->password;
    /* Kafka 4 requires the client-final nonce to be exactly the server's. */
    size_t wl = 9 + sf.nonce_len;
    without_proof = malloc(wl + 1);
    size_t al = strlen(ss->first_bare) + 1 + in_len + 1 + wl;
    auth = without_proof ? malloc(al + 1) : NULL;
    if (auth == NULL) {
        mc_sasl_err(errstr, en, "out of memory");
        goto out;
    }
    snprintf(without_proof, wl + 1, "c=biws,r=%.*s", (int)sf.nonce_len, sf.nonce);
    snprintf(auth, al + 1, "%s,%.*s,%s", ss->first_bare, (int)in_len, (const char *)in, without_proof);
    if (kz_scram_keys(sha, pw, strlen(pw), sf.salt, sf.salt_len, sf.iterations, ckey, stored, skey) != 0 ||
        kz_hmac(sha, stored, hl, auth, al, csig) != 0 ||
        kz_hmac(sha, skey, hl, auth, al, ss->server_sig) != 0) {
        mc_sasl_err(errstr, en, "SCRAM key derivation failed in OpenSSL");
        goto out;
    }
    ss->sig_len = hl;
    for (size_t i = 0; i < hl; i++)
        proof[i] = ckey[i] ^ csig[i];
    proof64 = mc_b64(proof, hl);
    size_t ml = proof64 ? wl + 3 + strlen(proof64) : 0;
    msg = proof64 ? malloc(ml + 1) : NULL;
    if (msg == NULL) {
        mc_sasl_err(errstr, en, "out of memory");
        goto out;
    }
    snprintf(msg, ml + 1, "%s,p=%s", without_proof, proof64);
    *out = (uint8_t *)msg;
    *out_len = ml;
    msg = NULL;
    rc = 1;
out:
    OPENSSL_cleanse(ckey, sizeof(ckey));
    OPENSSL_cleanse(skey, sizeof(skey));
    OPENSSL_cleanse(stored, sizeof(stored));
    OPENSSL_cleanse(csig, sizeof(csig));
    OPENSSL_cleanse(proof, sizeof(proof));
    free(without_proof);
    free(auth);
    mc_wipe_str(proof64);
    free(msg);
    return rc;
}

static int mc_scram_verify(mc_sasl_session *ss, const uint8_t *in, size_t in_len, char *errstr, size_t en)
{
    mc_scram_server_final sf;
    if (mc_scram_parse_server_final(in, in_len, &sf, errstr, en) != 0)
        return -1;
    if (sf.is_error)
        return mc_sasl_err(errstr, en, "broker refused the SCRAM proof: %s", sf.error);
    if (sf.verifier_len != ss->sig_len || CRYPTO_memcmp(sf.verifier, ss->server_sig, ss->sig_len) != 0)
        return mc_sasl_err(errstr, en, "the broker's SCRAM server signature is wrong "
                                        "(it does not know this user's credentials)");
    return 0;
}

int mc_sasl_session_step(mc_sasl_session *ss, const uint8_t *in, size_t in_len, uint8_t **out,
                         size_t *out_len, char *errstr, size_t en)
{
    *out = NULL;
    *out_len = 0;
    const mc_sasl *s = ss->s;
    int rc = -1;
    if (ss->state == MC_SS_DONE || ss->state == MC_SS_FAILED)
        return mc_sasl_err(errstr, en, "SASL exchange already over");
    if (ss->state == MC_SS_START) {
        if (s->mech == MC_SASL_PLAIN) {
            /* authzid NUL authcid NUL passwd (RFC 4616) */
            size_t ul = strlen(s->username), pl = strlen(s->password);
            uint8_t *m = malloc(ul + pl + 2);
            if (m == NULL)
                return mc_sasl_err(errstr, en, "out of memory");
            m[0] = 0;
            memcpy(m + 1, s->username, ul);
            m[1 + ul] = 0;
            memcpy(m + 2 + ul, s->password, pl);
            *out = m;
            *out_len = ul + pl + 2;
            rc = 1;
        } else if (s->mech == MC_SASL_OAUTHBEARER) {
            /* RFC 7628: gs2 header, then kvpairs separated by 0x01. */
            size_t tl = strlen(ss->token);
            size_t ml = 3 + 1 + 12 + tl + 2;
            char *m = malloc(ml + 1);
            if (m == NULL)
                return mc_sasl_err(errstr, en, "out of memory");
            snprintf(m, ml + 1, "n,,\001auth=Bearer %s\001\001", ss->token);
            *out = (uint8_t *)m;
            *out_len = ml;
            rc = 1;
        } else {
            rc = mc_scram_first(ss, out, out_len, errstr, en);
        }
        ss->state = rc == 1 ? MC_SS_SENT_FIRST : MC_SS_FAILED;
        return rc;
    }
    if (ss->state == MC_SS_SENT_FIRST) {
        if (s->mech == MC_SASL_PLAIN) {
            rc = 0;
        } else if (s->mech == MC_SASL_OAUTHBEARER) {
            /* A challenge after the token is the broker's error (JSON). */
            if (in_len > 0) {
                char why[160];
                rc = mc_sasl_err(errstr, en, "broker rejected the token: %s",
                                 mc_sasl_printable(why, sizeof(why), in, in_len));
            } else {
                rc = 0;
            }
        } else {
            rc = mc_scram_final(ss, in, in_len, out, out_len, errstr, en);
            ss->state = rc == 1 ? MC_SS_SENT_FINAL : MC_SS_FAILED;
            return rc;
        }
    } else {
        rc = mc_scram_verify(ss, in, in_len, errstr, en);
    }
    ss->state = rc == 0 ? MC_SS_DONE : MC_SS_FAILED;
    return rc;
}
