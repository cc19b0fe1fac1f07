/*
 * px_tls_sock: the client's socket under OpenSSL (a BIO), for px_tls. It
 * reads ahead (one recv() of up to 128 KiB, handed to OpenSSL a record at a
 * time) and gathers the records OpenSSL writes into one send() of up to
 * 128 KiB, sent once libevent's write round is over (an event on base) or
 * when the buffer is full. Records read ahead are not signalled by the
 * socket: the reader drains them (px_tls_read). Records written but not yet
 * sent count as output (px_tls_sock_unsent): a connection closed after its
 * last answer waits for them, told by the drained callback.
 */
#ifndef PX_TLS_SOCK_H
#define PX_TLS_SOCK_H

#include <stddef.h>

struct event_base;
typedef struct ssl_st SSL;

/* Put fd under ssl through this BIO, its events on base (the thread's
 * loop). 0, or -1 when out of memory. The fd is not closed by the BIO. */
int px_tls_sock_attach(SSL *ssl, int fd, struct event_base *base);

/* cb(arg, 0) each time the records gathered for ssl have all been sent by
 * the BIO's event (the handshake's flights too); cb(arg, errno) when a send
 * failed. The callback may free the SSL. */
void px_tls_sock_on_drained(SSL *ssl, void (*cb)(void *arg, int err), void *arg);

/* The connection is closing: drop the records not yet sent and send no
 * more (libevent frees the SSL later, and closes the fd meanwhile). */
void px_tls_sock_close(SSL *ssl);

/* Bytes of records written by OpenSSL and not yet sent (0 for an SSL not
 * on this BIO). */
size_t px_tls_sock_unsent(SSL *ssl);

#endif
