#include "config.h"

#include "proxy/px_tls.h"
#include "proxy/px_tls_sock.h"

#include "common/kz_log.h"
#include "common/kz_time.h"
#include "meta-client/mc_tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* What the files looked like when last loaded (or last failed to load). */
typedef struct px_tls_stamp {
    struct {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
        int missing;
    } f[3]; /* cert, key, ca */
} px_tls_stamp;

struct px_tls {
    const px_client_tls *cfg;
    SSL_CTX *ctx;        /* the current context; SSLs hold their own reference */
    px_tls_stamp loaded; /* the files behind ctx */
    px_tls_stamp failed; /* the files of the last failed rebuild: not retried, not logged again */
    int have_failed;
    int64_t checked_ms;  /* last stat round */
};

static void px_tls_stamp_take(const px_client_tls *cfg, px_tls_stamp *s)
{
    const char *paths[3] = {cfg->cert_file, cfg->key_file, cfg->ca_file};
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 3; i++) {
        struct stat st;
        if (paths[i] == NULL)
            continue;
        if (stat(paths[i], &st) != 0) {
            s->f[i].missing = 1;
            continue;
        }
        s->f[i].dev = st.st_dev;
        s->f[i].ino = st.st_ino;
        s->f[i].size = st.st_size;
        s->f[i].mtime = st.st_mtim;
    }
}

static int px_tls_stamp_same(const px_tls_stamp *a, const px_tls_stamp *b)
{
    for (int i = 0; i < 3; i++) {
        if (a->f[i].missing != b->f[i].missing || a->f[i].dev != b->f[i].dev || a->f[i].ino != b->f[i].ino ||
            a->f[i].size != b->f[i].size || a->f[i].mtime.tv_sec != b->f[i].mtime.tv_sec ||
            a->f[i].mtime.tv_nsec != b->f[i].mtime.tv_nsec)
            return 0;
    }
    return 1;
}

static SSL_CTX *px_tls_ctx_fail(SSL_CTX *ctx, char *errstr, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static SSL_CTX *px_tls_ctx_fail(SSL_CTX *ctx, char *errstr, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mc_tls_verror(errstr, n, fmt, ap);
    va_end(ap);
    SSL_CTX_free(ctx);
    return NULL;
}

#define PX_TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* A server context from the files as they are now. */
static SSL_CTX *px_tls_ctx_build(const px_client_tls *cfg, char *errstr, size_t n)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return px_tls_ctx_fail(NULL, errstr, n, "cannot create a TLS context");
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        return px_tls_ctx_fail(ctx, errstr, n, "cannot require TLS 1.2");
    /* Clients renegotiating, or resuming across a rotation, gain nothing. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    /* TLS 1.3: AES-128-GCM first. OpenSSL's default order puts AES-256-GCM
     * first, which decrypts every produced byte with 14 AES rounds instead
     * of 10 for no protection a Kafka client's session needs; a client that
     * offers only the others still gets them. */
    if (SSL_CTX_set_ciphersuites(ctx, PX_TLS13_SUITES) != 1)
        return px_tls_ctx_fail(ctx, errstr, n, "cannot set the TLS 1.3 cipher suites");
    if (mc_tls_load_keypair(ctx, "client_tls", cfg->cert_file, cfg->key_file, errstr, n) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (cfg->client_auth != PX_TLS_AUTH_NONE) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1)
            return px_tls_ctx_fail(ctx, errstr, n, "client_tls.ca_file %s: cannot load CA certificates", cfg->ca_file);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
        if (names == NULL)
            return px_tls_ctx_fail(ctx, errstr, n, "client_tls.ca_file %s: no CA certificate names", cfg->ca_file);
        SSL_CTX_set_client_CA_list(ctx, names);
        int mode = SSL_VERIFY_PEER;
        if (cfg->client_auth == PX_TLS_AUTH_REQUIRED)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
    }
    return ctx;
}

px_tls *px_tls_new(const px_client_tls *cfg, char *errstr, size_t n)
{
    px_tls *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(errstr, n, "out of memory");
        return NULL;
    }
    t->cfg = cfg;
    px_tls_stamp_take(cfg, &t->loaded);
    if ((t->ctx = px_tls_ctx_build(cfg, errstr, n)) == NULL) {
        free(t);
        return NULL;
    }
    t->checked_ms = kz_mono_ms();
    return t;
}

void px_tls_free(px_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

/* Rebuild from files stamped st; 0 or -1 with errstr. */
static int px_tls_rebuild(px_tls *t, const px_tls_stamp *st, char *errstr, size_t n)
{
    SSL_CTX *ctx = px_tls_ctx_build(t->cfg, errstr, n);
    if (ctx == NULL) {
        t->failed = *st;
        t->have_failed = 1;
        return -1;
    }
    SSL_CTX_free(t->ctx); /* open connections keep it alive through their SSL */
    t->ctx = ctx;
    t->loaded = *st;
    t->have_failed = 0;
    return 0;
}

int px_tls_reload(px_tls *t, char *errstr, size_t n)
{
    px_tls_stamp st;
    px_tls_stamp_take(t->cfg, &st);
    t->checked_ms = kz_mono_ms();
    return px_tls_rebuild(t, &st, errstr, n);
}

/* At most once a second: rebuild when the files changed since they were
 * loaded (or since a rebuild last failed on them). */
static void px_tls_check_rotation(px_tls *t)
{
    int64_t now = kz_mono_ms();
    if (now - t->checked_ms < 1000)
        return;
    t->checked_ms = now;
    px_tls_stamp st;
    px_tls_stamp_take(t->cfg, &st);
    if (px_tls_stamp_same(&st, &t->loaded) || (t->have_failed && px_tls_stamp_same(&st, &t->failed)))
        return;
    char err[512];
    if (px_tls_rebuild(t, &st, err, sizeof(err)) == 0)
        kz_info("client_tls: certificate files changed: loaded %s", t->cfg->cert_file);
    else
        kz_err("client_tls: certificate files changed but do not load (keeping the current certificate): %s", err);
}

SSL *px_tls_ssl_new(px_tls *t, struct event_base *base, int fd)
{
    px_tls_check_rotation(t);
    SSL *ssl = SSL_new(t->ctx);
    if (ssl != NULL && px_tls_sock_attach(ssl, fd, base) != 0) {
        SSL_free(ssl);
        ssl = NULL;
    }
    if (ssl == NULL)
        ERR_clear_error();
    return ssl;
}

ssize_t px_tls_read(SSL *ssl, void *buf, size_t len, int *dry, char *why, size_t why_size)
{
    *dry = 0;
    if (why_size > 0)
        why[0] = '\0';
    if (len > INT_MAX)
        len = INT_MAX;
    /* SSL_get_error needs an empty queue; clearing an empty one costs 4 % of
     * the proxy's time at a record per call. */
    if (ERR_peek_error() != 0)
        ERR_clear_error();
    int r = SSL_read(ssl, buf, (int)len);
    if (r > 0)
        return r;
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *dry = e == SSL_ERROR_WANT_READ ? 1 : 2;
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
        errno = 0;
        return 0;
    }
    int sys_errno = errno;
    unsigned long err = ERR_peek_error();
    /* EOF without close_notify is a close, as on a plain socket (OpenSSL 3
     * reports it as an error unless told to ignore it). */
    if ((e == SSL_ERROR_SYSCALL && err == 0 && r == 0) ||
        (ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
        ERR_clear_error();
        errno = 0;
        return 0;
    }
    if (e == SSL_ERROR_SYSCALL && err == 0) { /* EAGAIN and EINTR are WANT_READ (the BIO's retry) */
        snprintf(why, why_size, "%s", strerror(sys_errno));
        errno = sys_errno;
        return -1;
    }
    if (err != 0)
        ERR_error_string_n(err, why, why_size);
    else
        snprintf(why, why_size, "SSL_read failed (SSL_get_error %d)", e);
    ERR_clear_error();
    errno = EPROTO;
    return -1;
}

void px_tls_describe_failure(SSL *ssl, unsigned long err, char *buf, size_t n)
{
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK) {
        snprintf(buf, n, "the client's certificate does not verify: %s", X509_verify_cert_error_string(vr));
        return;
    }
    if (err != 0) {
        const char *reason = ERR_reason_error_string(err);
        if (reason != NULL) {
            snprintf(buf, n, "%s", reason);
            return;
        }
        char full[256];
        ERR_error_string_n(err, full, sizeof(full));
        snprintf(buf, n, "%s", full);
        return;
    }
    snprintf(buf, n, "the client closed the connection during the handshake");
}

char *px_tls_peer_subject(SSL *ssl)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (cert == NULL)
        return NULL;
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return NULL;
    char *out = NULL;
    if (X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *p;
        long len = BIO_get_mem_data(b, &p);
        if (len >= 0 && (out = malloc((size_t)len + 1)) != NULL) {
            memcpy(out, p, (size_t)len);
            out[len] = '\0';
        }
    }
    BIO_free(b);
    return out;
}

const char *px_tls_sniff(const uint8_t *b, size_t n)
{
    if (n < 1)
        return NULL;
    if (b[0] == 0x16) /* handshake record: a ClientHello follows */
        return NULL;
    /* A Kafka frame starts with its size: below 16 MiB for anything a client sends first. */
    if (b[0] == 0x00)
        return "a plaintext Kafka request (the client is not using TLS: set security.protocol=SSL)";
    static const char *const http[] = {"GET ", "POST", "PUT ", "HEAD", "OPTI", "DELE", "PATC", "CONN"};
    for (size_t i = 0; i < sizeof(http) / sizeof(http[0]); i++)
        if (n >= 4 && memcmp(b, http[i], 4) == 0)
            return "an HTTP request";
    if (b[0] == 0x15)
        return "a TLS alert instead of a handshake";
    return "bytes that are not a TLS handshake";
}
