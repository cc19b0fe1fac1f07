/*
 * mc_tls: TLS to brokers. One SSL_CTX for the process (TLS 1.2 or later,
 * the peer's certificate verified against ca_file or the system's trust
 * store, an optional client certificate for mTLS), and per connection an
 * SSL that checks the broker's certificate names the address the proxy
 * dialled: the host or IP the broker advertises in Metadata (or the
 * bootstrap address), unless verify_hostname is off.
 */
#ifndef MC_TLS_H
#define MC_TLS_H

#include <stdarg.h>
#include <stddef.h>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

typedef struct mc_tls_config {
    const char *ca_file;   /* PEM CA certificates; NULL: the system's default trust store */
    int verify_hostname;   /* check the certificate's SAN/CN against the dialled host or IP */
    const char *cert_file; /* PEM client certificate chain (mTLS), or NULL */
    const char *key_file;  /* its unencrypted PEM private key; with cert_file */
    const char *where;     /* the config section named in errors; NULL: "backend.tls" */
} mc_tls_config;

typedef struct mc_tls mc_tls;

/* Build the context, loading the CA and client certificate files now so a
 * bad path fails at startup. NULL with errstr (file and OpenSSL's reason). */
mc_tls *mc_tls_new(const mc_tls_config *cfg, char *errstr, size_t errstr_size);
void mc_tls_free(mc_tls *t);

/* A client SSL for a connection to host (a DNS name or an IP literal): SNI
 * for names, and the name or address the certificate must carry. NULL when
 * out of memory. The caller (its bufferevent) owns and frees it. */
SSL *mc_tls_ssl_new(mc_tls *t, const char *host);

/* Why a handshake failed, as a sentence: the certificate verify error
 * (e.g. "certificate verify failed: hostname mismatch (expected 10.0.0.5)"),
 * else OpenSSL's error for err (non-zero), else a generic text. */
void mc_tls_describe_failure(SSL *ssl, const char *host, unsigned long err, char *buf, size_t n);

/* Load a PEM certificate chain and its unencrypted key into ctx and check
 * that the key matches the certificate (shared with the proxy's listener
 * TLS). where names the config section in errstr ("backend.tls"). 0, or -1
 * with errstr naming the file and OpenSSL's reason; the error queue is left
 * clear either way. */
int mc_tls_load_keypair(SSL_CTX *ctx, const char *where, const char *cert_file, const char *key_file,
                        char *errstr, size_t errstr_size);

/* errstr = what, then ": " and OpenSSL's last error if there is one; clears
 * OpenSSL's error queue (so the next failure reports its own reason). */
void mc_tls_error(char *errstr, size_t n, const char *what);
/* The same with what formatted from fmt and ap. */
void mc_tls_verror(char *errstr, size_t n, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

#endif
