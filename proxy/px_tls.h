/*
 * px_tls: TLS on the client listener (config "client_tls"). One server
 * SSL_CTX at a time (TLS 1.2 or later, OpenSSL's default ciphers, no
 * renegotiation, a client certificate asked for or required when
 * client_auth says so), rebuilt when the certificate or key files change:
 * on px_tls_reload (SIGHUP) and, at most once a second, when an accepted
 * connection finds their mtime changed. Connections keep the context they
 * started with (each SSL holds a reference to it); a new file that does not
 * load leaves the current context in place and is logged once.
 */
#ifndef PX_TLS_H
#define PX_TLS_H

#include "proxy/px_config.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The most libevent's own read callback takes from a TLS client
 * connection: about 16 TLS records (libevent's default is one). */
#define PX_TLS_READ_BUFFER (256 * 1024)

/* The most plaintext one TLS record carries. */
#define PX_TLS_RECORD_MAX 16384

typedef struct ssl_st SSL;
struct event_base;
typedef struct px_tls px_tls;

/* Build the context from cfg (which must outlive it), loading the files now
 * so that a bad path, or a key that does not match the certificate, fails
 * at startup and in --check-config. NULL with errstr. */
px_tls *px_tls_new(const px_client_tls *cfg, char *errstr, size_t errstr_size);
void px_tls_free(px_tls *t);

/* A server SSL for the accepted connection fd, from the current context
 * after a rotation check (at most one stat round a second), on
 * px_tls_sock's buffered socket BIO, whose events run on base. Records read
 * ahead are not signalled by the socket: the caller drains them
 * (px_tls_read) every time it needs more bytes, or the connection stalls.
 * Records written are sent after the write round (px_tls_sock.h). NULL when
 * out of memory. The caller (its bufferevent) owns and frees it, and closes
 * fd. */
SSL *px_tls_ssl_new(px_tls *t, struct event_base *base, int fd);

/* Decrypt at most len bytes into buf, as recv() would: >0 bytes; 0 the
 * client closed (close_notify, or EOF without it); -1 with errno EAGAIN and
 * *dry 1 when OpenSSL needs more from the socket (2: it must first write to
 * it), or -1 with why (a sentence) when the connection failed. */
ssize_t px_tls_read(SSL *ssl, void *buf, size_t len, int *dry, char *why, size_t why_size);

/* Rebuild the context from the files now (SIGHUP). 0: the new context is in
 * use; -1: it did not load, the old one stays, errstr says why. */
int px_tls_reload(px_tls *t, char *errstr, size_t errstr_size);

/* Why a handshake failed, as a sentence, from OpenSSL's error err (the first
 * of the connection's errors, 0 if none) and the verify result of the
 * client's certificate. */
void px_tls_describe_failure(SSL *ssl, unsigned long err, char *buf, size_t n);

/* The subject of the client's verified certificate (RFC 2253, as Kafka
 * names an SSL principal: "CN=kz-client,O=..."), malloc'd, or NULL when the
 * client sent none. */
char *px_tls_peer_subject(SSL *ssl);

/* What the first n (>= 1) bytes a client sent on a TLS listener are when
 * they do not start a TLS handshake record, as a phrase for a log line
 * ("a plaintext Kafka request", "an HTTP request"); NULL when they do. */
const char *px_tls_sniff(const uint8_t *b, size_t n);

#endif
