#include "config.h"

#include "proxy/px_tls_sock.h"

#include "codec/kc_buf.h"

#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Reads: one recv() of up to PX_TLS_READ_AHEAD bytes, handed out as OpenSSL
 * asks for them (a record's 5-byte header, then its body), where OpenSSL's
 * socket BIO makes a read() for each. OpenSSL's own read-ahead would do the
 * reads, but it moves what is left of its buffer to the front at every
 * record: with librdkafka's half-KiB records, tens of bytes moved per byte
 * received. Here each byte is copied once.
 *
 * Writes: OpenSSL hands over one record at a time (at most 16 KiB of
 * plaintext), and its socket BIO makes a send() for each: a 1 MB Fetch
 * answer took 64. Here records gather in a buffer of PX_TLS_WRITE_BUF bytes,
 * sent when the next record might not fit, and at the latest by an event
 * made active by the write, which runs once libevent's write round (every
 * SSL_write it had to make) is over, before the loop waits again. When the
 * socket is full the event waits for room; a write that finds the buffer
 * still full is told to retry, as a socket's EAGAIN would.
 *
 * Both buffers are pooled frames (codec/kc_frame.c), taken when needed and
 * given back once empty: an idle connection holds none, and a busy thread
 * reuses the same few. */
#define PX_TLS_READ_AHEAD (KC_FRAME_POOL_MIN - sizeof(kc_frame))
#define PX_TLS_WRITE_BUF (KC_FRAME_POOL_MIN - sizeof(kc_frame))
/* Room for one more record: 16 KiB of plaintext, its header, tag and padding. */
#define PX_TLS_RECORD_ROOM (16384 + 512)

typedef struct px_tls_sock {
    int fd;
    int eof;     /* recv() returned 0: OpenSSL then reports an unexpected EOF */
    kc_frame *f; /* read ahead, NULL while empty */
    size_t off, len;
    kc_frame *wf; /* records to send, wf->data[woff..wlen); NULL while empty */
    size_t woff, wlen;
    int werr;   /* send() failed with it: every later write fails so */
    int closed; /* px_tls_sock_close: nothing more is sent */
    struct event_base *base;
    struct event *wev; /* sends wf: made active by a write, or waiting for room */
    int wev_on;        /* wev is active or pending */
    void (*drained)(void *arg, int err);
    void *drained_arg;
} px_tls_sock;

static void px_tls_sock_drop(px_tls_sock *s)
{
    if (s->f != NULL)
        kc_frame_release(s->f);
    s->f = NULL;
    s->off = s->len = 0;
}

static void px_tls_sock_wdrop(px_tls_sock *s)
{
    if (s->wf != NULL)
        kc_frame_release(s->wf);
    s->wf = NULL;
    s->woff = s->wlen = 0;
}

static int px_tls_sock_read(BIO *b, char *out, int outl)
{
    px_tls_sock *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (out == NULL || outl <= 0)
        return 0;
    if (s->off == s->len) {
        if (s->f == NULL && (s->f = kc_frame_new(PX_TLS_READ_AHEAD)) == NULL) {
            errno = ENOMEM;
            return -1;
        }
        ssize_t n = recv(s->fd, s->f->data, PX_TLS_READ_AHEAD, 0);
        if (n <= 0) {
            int e = errno;
            px_tls_sock_drop(s);
            if (n == 0)
                s->eof = 1;
            if (n < 0 && (e == EAGAIN || e == EWOULDBLOCK || e == EINTR))
                BIO_set_retry_read(b);
            errno = e;
            return (int)n;
        }
        s->off = 0;
        s->len = (size_t)n;
    }
    size_t k = s->len - s->off < (size_t)outl ? s->len - s->off : (size_t)outl;
    memcpy(out, s->f->data + s->off, k);
    s->off += k;
    if (s->off == s->len)
        px_tls_sock_drop(s);
    return (int)k;
}

/* Send what is buffered: 1 all of it, 0 the socket is full (the rest kept),
 * -1 send() failed (s->werr; the rest dropped). */
static int px_tls_sock_flush(px_tls_sock *s)
{
    while (s->woff < s->wlen) {
        ssize_t n = send(s->fd, s->wf->data + s->woff, s->wlen - s->woff, MSG_NOSIGNAL);
        if (n > 0) {
            s->woff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (s->woff > 0) { /* keep the rest at the front: room for whole records */
                memmove(s->wf->data, s->wf->data + s->woff, s->wlen - s->woff);
                s->wlen -= s->woff;
                s->woff = 0;
            }
            return 0;
        } else {
            s->werr = n < 0 ? errno : EPIPE;
            px_tls_sock_wdrop(s);
            return -1;
        }
    }
    px_tls_sock_wdrop(s);
    return 1;
}

static void px_tls_sock_wev_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    px_tls_sock *s = arg;
    s->wev_on = 0;
    int r = s->werr ? -1 : px_tls_sock_flush(s);
    if (r == 0) {
        if (event_add(s->wev, NULL) == 0) {
            s->wev_on = 1;
            return;
        }
        s->werr = ENOMEM; /* nothing would send the rest: fail the connection */
        px_tls_sock_wdrop(s);
        r = -1;
    }
    /* Last: the callback may close the connection, which frees s. */
    if (s->drained != NULL)
        s->drained(s->drained_arg, r < 0 ? s->werr : 0);
}

/* Have wev run: now (after the current callbacks) or, the socket being
 * full, when it has room. 0, or -1 when out of memory. */
static int px_tls_sock_wev_arm(px_tls_sock *s, int now)
{
    if (s->closed)
        return 0;
    if (s->wev == NULL && (s->wev = event_new(s->base, s->fd, EV_WRITE, px_tls_sock_wev_cb, s)) == NULL)
        return -1;
    if (s->wev_on)
        return 0;
    if (now)
        event_active(s->wev, EV_WRITE, 1);
    else if (event_add(s->wev, NULL) != 0)
        return -1;
    s->wev_on = 1;
    return 0;
}

static int px_tls_sock_write(BIO *b, const char *in, int inl)
{
    px_tls_sock *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (inl <= 0)
        return 0;
    if (s->werr) {
        errno = s->werr;
        return -1;
    }
    size_t n = (size_t)inl;
    if (s->wlen + n > PX_TLS_WRITE_BUF) { /* no room: send what is buffered */
        if (s->wlen > 0 && px_tls_sock_flush(s) < 0) {
            errno = s->werr;
            return -1;
        }
        if (s->wlen > 0 && s->wlen + n > PX_TLS_WRITE_BUF) { /* the socket is full: OpenSSL retries this record */
            if (px_tls_sock_wev_arm(s, 0) != 0)
                return -1;
            BIO_set_retry_write(b);
            errno = EAGAIN;
            return -1;
        }
        if (n > PX_TLS_WRITE_BUF) { /* never a record: sent as it is, nothing being buffered */
            ssize_t k = send(s->fd, in, n, MSG_NOSIGNAL);
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                BIO_set_retry_write(b);
            return (int)k;
        }
    }
    if (s->wf == NULL && (s->wf = kc_frame_new(PX_TLS_WRITE_BUF)) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(s->wf->data + s->wlen, in, n);
    s->wlen += n;
    /* Full enough: send now. Else, or when the socket took only part, wev
     * sends the rest; a failed send is reported by the next write, or by
     * wev to the drained callback. */
    int r = s->wlen + PX_TLS_RECORD_ROOM > PX_TLS_WRITE_BUF ? px_tls_sock_flush(s) : 2;
    if (r != 1 && px_tls_sock_wev_arm(s, r != 0) != 0) {
        errno = ENOMEM;
        return -1;
    }
    return inl;
}

static long px_tls_sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    px_tls_sock *s = BIO_get_data(b);
    switch (cmd) {
    case BIO_C_GET_FD: /* libevent learns the fd so, and closes it on free */
        if (s == NULL)
            return -1;
        if (ptr != NULL)
            *(int *)ptr = s->fd;
        return s->fd;
    case BIO_CTRL_GET_CLOSE:
        return BIO_get_shutdown(b);
    case BIO_CTRL_SET_CLOSE:
        BIO_set_shutdown(b, (int)num);
        return 1;
    case BIO_CTRL_PENDING:
        return s != NULL ? (long)(s->len - s->off) : 0;
    case BIO_CTRL_WPENDING:
        return s != NULL ? (long)(s->wlen - s->woff) : 0;
    case BIO_CTRL_EOF:
        return s != NULL && s->eof && s->off == s->len;
    case BIO_CTRL_FLUSH: /* the handshake's flights: sent now, the rest when there is room */
        if (s == NULL || s->wlen == s->woff)
            return s == NULL || !s->werr;
        if (px_tls_sock_flush(s) < 0)
            return 0;
        return s->wlen == s->woff || px_tls_sock_wev_arm(s, 0) == 0;
    default:
        return 0;
    }
}

static int px_tls_sock_destroy(BIO *b)
{
    px_tls_sock *s = BIO_get_data(b);
    if (s != NULL) {
        /* Unsent records go with the connection: no send() here, libevent
         * may have closed the fd (and another connection taken its number). */
        if (s->wev != NULL)
            event_free(s->wev);
        px_tls_sock_drop(s);
        px_tls_sock_wdrop(s);
        free(s); /* the fd is libevent's to close (BIO_NOCLOSE) */
    }
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

static BIO_METHOD *px_tls_sock_method;
static int px_tls_sock_type;

static void px_tls_sock_method_init(void)
{
    int type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
    BIO_METHOD *m = BIO_meth_new(type, "kzproxy buffered socket");
    if (m == NULL || BIO_meth_set_read(m, px_tls_sock_read) != 1 || BIO_meth_set_write(m, px_tls_sock_write) != 1 ||
        BIO_meth_set_ctrl(m, px_tls_sock_ctrl) != 1 || BIO_meth_set_destroy(m, px_tls_sock_destroy) != 1) {
        BIO_meth_free(m);
        return;
    }
    px_tls_sock_type = type;
    px_tls_sock_method = m;
}

int px_tls_sock_attach(SSL *ssl, int fd, struct event_base *base)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, px_tls_sock_method_init);
    px_tls_sock *s = calloc(1, sizeof(*s));
    BIO *b = px_tls_sock_method != NULL && s != NULL ? BIO_new(px_tls_sock_method) : NULL;
    if (b == NULL) {
        free(s);
        return -1;
    }
    s->fd = fd;
    s->base = base;
    BIO_set_data(b, s);
    BIO_set_shutdown(b, BIO_NOCLOSE);
    BIO_set_init(b, 1);
    SSL_set_bio(ssl, b, b);
    return 0;
}

static px_tls_sock *px_tls_sock_of(SSL *ssl)
{
    BIO *b = ssl != NULL ? SSL_get_wbio(ssl) : NULL;
    return b != NULL && px_tls_sock_method != NULL && BIO_method_type(b) == px_tls_sock_type
               ? BIO_get_data(b)
               : NULL;
}

void px_tls_sock_on_drained(SSL *ssl, void (*cb)(void *arg, int err), void *arg)
{
    px_tls_sock *s = px_tls_sock_of(ssl);
    if (s != NULL) {
        s->drained = cb;
        s->drained_arg = arg;
    }
}

void px_tls_sock_close(SSL *ssl)
{
    px_tls_sock *s = px_tls_sock_of(ssl);
    if (s == NULL)
        return;
    if (s->wev != NULL)
        event_free(s->wev);
    s->wev = NULL;
    s->wev_on = 0;
    s->drained = NULL;
    px_tls_sock_wdrop(s);
    s->closed = 1;
    if (!s->werr)
        s->werr = ECONNABORTED; /* later writes fail */
}

size_t px_tls_sock_unsent(SSL *ssl)
{
    px_tls_sock *s = px_tls_sock_of(ssl);
    return s != NULL ? s->wlen - s->woff : 0;
}
