#include "config.h"

#include "meta-client/mc_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mc_tls {
    SSL_CTX *ctx;
    int verify_hostname;
};

void mc_tls_error(char *errstr, size_t n, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char reason[256] = "";
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(errstr, n, "%s%s%s", what, e ? ": " : "", reason);
}

void mc_tls_verror(char *errstr, size_t n, const char *fmt, va_list ap)
{
    char what[300];
    vsnprintf(what, sizeof(what), fmt, ap);
    mc_tls_error(errstr, n, what);
}

static mc_tls *mc_tls_fail(mc_tls *t, char *errstr, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mc_tls_verror(errstr, n, fmt, ap);
    va_end(ap);
    mc_tls_free(t);
    return NULL;
}

mc_tls *mc_tls_new(const mc_tls_config *cfg, char *errstr, size_t n)
{
    mc_tls *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(errstr, n, "out of memory");
        return NULL;
    }
    ERR_clear_error();
    t->verify_hostname = cfg->verify_hostname;
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (t->ctx == NULL)
        return mc_tls_fail(t, errstr, n, "cannot create a TLS context");
    if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1)
        return mc_tls_fail(t, errstr, n, "cannot require TLS 1.2");
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->ca_file) {
        if (SSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, NULL) != 1)
            return mc_tls_fail(t, errstr, n, "%s.ca_file %s: cannot load CA certificates",
                               cfg->where ? cfg->where : "backend.tls", cfg->ca_file);
    } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        return mc_tls_fail(t, errstr, n, "cannot load the system's trusted CA certificates");
    }
    if (cfg->cert_file && mc_tls_load_keypair(t->ctx, cfg->where ? cfg->where : "backend.tls", cfg->cert_file, cfg->key_file, errstr, n) != 0) {
        mc_tls_free(t);
        return NULL;
    }
    return t;
}

int mc_tls_load_keypair(SSL_CTX *ctx, const char *where, const char *cert_file, const char *key_file,
                        char *errstr, size_t n)
{
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        mc_tls_fail(NULL, errstr, n, "%s.cert_file %s: cannot load the certificate", where, cert_file);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            mc_tls_fail(NULL, errstr, n, "%s.key_file %s does not match cert_file %s", where, key_file, cert_file);
            return -1;
        }
        mc_tls_fail(NULL, errstr, n, "%s.key_file %s: cannot load the private key", where, key_file);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        mc_tls_fail(NULL, errstr, n, "%s.key_file %s does not match cert_file %s", where, key_file, cert_file);
        return -1;
    }
    return 0;
}

void mc_tls_free(mc_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

SSL *mc_tls_ssl_new(mc_tls *t, const char *host)
{
    SSL *ssl = SSL_new(t->ctx);
    if (ssl == NULL)
        return NULL;
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    /* SNI carries names only (RFC 6066). */
    if (!is_ip && SSL_set_tlsext_host_name(ssl, host) != 1)
        goto fail;
    if (t->verify_hostname) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1 : SSL_set1_host(ssl, host) != 1)
            goto fail;
    }
    return ssl;
fail:
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}

void mc_tls_describe_failure(SSL *ssl, const char *host, unsigned long err, char *buf, size_t n)
{
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK) {
        int names = vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH;
        snprintf(buf, n, "certificate verify failed: %s%s%s%s", X509_verify_cert_error_string(vr),
                 names ? " (the certificate does not name " : "", names ? host : "", names ? ")" : "");
        return;
    }
    if (err != 0) {
        char reason[256];
        ERR_error_string_n(err, reason, sizeof(reason));
        snprintf(buf, n, "TLS handshake failed: %s", reason);
        return;
    }
    snprintf(buf, n, "TLS handshake failed");
}
