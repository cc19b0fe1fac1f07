#include "config.h"

#include "objwal/ow_sigv4.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void ow_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void ow_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(p, n, md);
    ow_hex(md, sizeof(md), out);
}

int ow_sha256_hex_evbuffer(struct evbuffer *eb, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return -1;
    }
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(eb, &pos, 0, EVBUFFER_PTR_SET);
    size_t left = evbuffer_get_length(eb);
    int rc = 0;
    while (left > 0) {
        struct evbuffer_iovec v[8];
        int n = evbuffer_peek(eb, (ev_ssize_t)left, &pos, v, 8);
        if (n <= 0) {
            rc = -1;
            break;
        }
        if (n > 8)
            n = 8;
        size_t batch = 0;
        for (int i = 0; i < n && batch < left; i++) {
            size_t l = v[i].iov_len < left - batch ? v[i].iov_len : left - batch;
            EVP_DigestUpdate(ctx, v[i].iov_base, l);
            batch += l;
        }
        left -= batch;
        if (left > 0 && evbuffer_ptr_set(eb, &pos, batch, EVBUFFER_PTR_ADD) != 0) {
            rc = -1;
            break;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (rc == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1)
        ow_hex(md, mdlen, out);
    else
        rc = -1;
    EVP_MD_CTX_free(ctx);
    return rc;
}

void ow_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

size_t ow_uri_encode(const char *s, size_t n, int keep_slash, char *out, size_t out_size)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int keep = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
                   (keep_slash && c == '/');
        if (keep) {
            if (o + 1 >= out_size)
                return (size_t)-1;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= out_size)
                return (size_t)-1;
            out[o++] = '%';
            out[o++] = hx[c >> 4];
            out[o++] = hx[c & 15];
        }
    }
    if (o >= out_size)
        return (size_t)-1;
    out[o] = '\0';
    return o;
}

/* A growing string that remembers running out of memory. */
typedef struct ow_sb {
    char *p;
    size_t len, cap;
    int err;
} ow_sb;

static void ow_sb_add(ow_sb *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        /* Not realloc: the canonical request holds the session token, and a
         * moved block would leave a copy behind in freed memory. */
        char *np = malloc(cap);
        if (np == NULL) {
            b->err = 1;
            return;
        }
        if (b->p != NULL) {
            memcpy(np, b->p, b->len + 1);
            OPENSSL_cleanse(b->p, b->cap);
            free(b->p);
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Wipe and free (the buffers may hold the session token). */
static void ow_sb_free(ow_sb *b)
{
    if (b->p != NULL)
        OPENSSL_cleanse(b->p, b->cap);
    free(b->p);
    *b = (ow_sb){0};
}

static void ow_sb_str(ow_sb *b, const char *s)
{
    ow_sb_add(b, s, strlen(s));
}

typedef struct ow_qparam {
    const char *p; /* "name=value" or "name" */
    size_t len;
    size_t name_len;
} ow_qparam;

static int ow_qparam_cmp(const void *a, const void *b)
{
    const ow_qparam *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->p, y->p, n);
    if (c != 0)
        return c;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    /* Same name: order by value. */
    size_t xv = x->len - x->name_len, yv = y->len - y->name_len;
    n = xv < yv ? xv : yv;
    c = memcmp(x->p + x->name_len, y->p + y->name_len, n);
    return c != 0 ? c : (xv < yv ? -1 : xv > yv);
}

/* Canonical query: parameters sorted by name, each "name=value" (a bare
 * name gets '='). The values are expected already URI-encoded. */
static void ow_canonical_query(ow_sb *b, const char *q)
{
    ow_qparam ps[32];
    size_t np = 0;
    const char *s = q;
    while (*s && np < 32) {
        const char *e = strchr(s, '&');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len > 0) {
            const char *eq = memchr(s, '=', len);
            ps[np].p = s;
            ps[np].len = len;
            ps[np].name_len = eq ? (size_t)(eq - s) : len;
            np++;
        }
        s += len + (e ? 1 : 0);
    }
    qsort(ps, np, sizeof(ps[0]), ow_qparam_cmp);
    for (size_t i = 0; i < np; i++) {
        if (i)
            ow_sb_add(b, "&", 1);
        ow_sb_add(b, ps[i].p, ps[i].len);
        if (ps[i].name_len == ps[i].len)
            ow_sb_add(b, "=", 1);
    }
}

typedef struct ow_hdr {
    char name[64];
    const char *value;
} ow_hdr;

static int ow_hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const ow_hdr *)a)->name, ((const ow_hdr *)b)->name);
}

static void ow_hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len);
}

int ow_sigv4_authorization(const ow_sigv4_request *r, char *out, size_t out_size,
                           char *signature)
{
    if (r->nheaders > 16 || r->amz_date == NULL || strlen(r->amz_date) != 16)
        return -1;
    ow_hdr h[16];
    for (size_t i = 0; i < r->nheaders; i++) {
        size_t n = strlen(r->headers[i].name);
        if (n >= sizeof(h[i].name))
            return -1;
        for (size_t k = 0; k <= n; k++)
            h[i].name[k] = (char)tolower((unsigned char)r->headers[i].name[k]);
        h[i].value = r->headers[i].value;
    }
    qsort(h, r->nheaders, sizeof(h[0]), ow_hdr_cmp);

    ow_sb creq = {0}, signed_hdrs = {0}, sts = {0};
    ow_sb_str(&creq, r->method);
    ow_sb_add(&creq, "\n", 1);
    ow_sb_str(&creq, r->canonical_uri);
    ow_sb_add(&creq, "\n", 1);
    ow_canonical_query(&creq, r->query ? r->query : "");
    ow_sb_add(&creq, "\n", 1);
    for (size_t i = 0; i < r->nheaders; i++) {
        ow_sb_str(&creq, h[i].name);
        ow_sb_add(&creq, ":", 1);
        /* Trim and fold runs of spaces, as SigV4 asks. */
        const char *v = h[i].value;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vl = strlen(v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        for (size_t k = 0; k < vl; k++) {
            if (v[k] == ' ' && k > 0 && v[k - 1] == ' ')
                continue;
            ow_sb_add(&creq, &v[k], 1);
        }
        ow_sb_add(&creq, "\n", 1);
        if (i)
            ow_sb_add(&signed_hdrs, ";", 1);
        ow_sb_str(&signed_hdrs, h[i].name);
    }
    ow_sb_add(&creq, "\n", 1);
    ow_sb_str(&creq, signed_hdrs.p ? signed_hdrs.p : "");
    ow_sb_add(&creq, "\n", 1);
    ow_sb_str(&creq, r->payload_hash);

    char date[9];
    memcpy(date, r->amz_date, 8);
    date[8] = '\0';
    char scope[128];
    snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, r->region, r->service);
    char creq_hash[65];
    if (!creq.err)
        ow_sha256_hex(creq.p, creq.len, creq_hash);
    ow_sb_str(&sts, "AWS4-HMAC-SHA256\n");
    ow_sb_str(&sts, r->amz_date);
    ow_sb_add(&sts, "\n", 1);
    ow_sb_str(&sts, scope);
    ow_sb_add(&sts, "\n", 1);
    ow_sb_str(&sts, creq.err ? "" : creq_hash);

    int rc = -1;
    if (!creq.err && !signed_hdrs.err && !sts.err) {
        char kstart[256];
        int kl = snprintf(kstart, sizeof(kstart), "AWS4%s", r->secret_key);
        unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
        if (kl > 0 && (size_t)kl < sizeof(kstart)) {
            ow_hmac(kstart, (size_t)kl, date, k1);
            ow_hmac(k1, 32, r->region, k2);
            ow_hmac(k2, 32, r->service, k3);
            ow_hmac(k3, 32, "aws4_request", k4);
            ow_hmac(k4, 32, sts.p, sig);
            /* The secret and the keys derived from it leave no copy on the stack. */
            OPENSSL_cleanse(kstart, sizeof(kstart));
            OPENSSL_cleanse(k1, sizeof(k1));
            OPENSSL_cleanse(k2, sizeof(k2));
            OPENSSL_cleanse(k3, sizeof(k3));
            OPENSSL_cleanse(k4, sizeof(k4));
            char sighex[65];
            ow_hex(sig, 32, sighex);
            int n = snprintf(out, out_size,
                             "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s",
                             r->access_key, scope, signed_hdrs.p, sighex);
            if (n > 0 && (size_t)n < out_size) {
                rc = 0;
                if (signature != NULL)
                    memcpy(signature, sighex, 65);
            }
        }
        /* Also when the secret did not fit: kstart holds part of it. */
        OPENSSL_cleanse(kstart, sizeof(kstart));
    }
    ow_sb_free(&creq);
    ow_sb_free(&signed_hdrs);
    ow_sb_free(&sts);
    return rc;
}
