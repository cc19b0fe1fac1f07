/*
 * px_accept: a client connection's start and end. The listener (px_listen),
 * the accept callback (the connection limit, a worker's handoff, the zone
 * from the address), the TLS listener's first-bytes sniff and handshake
 * (px_tls.c's context over px_tls_sock.c's socket BIO), and the
 * bufferevent's events:
 * handshake done or failed, EOF, errors. What the connection reads and
 * answers is px_client.c's.
 */
#include "config.h"

#include "proxy/px_client_int.h"
#include "proxy/px_tls.h"
#include "proxy/px_tls_sock.h"

#include "codec/kc_peer.h"
#include "proxy/px_sasl.h"
#include "proxy/px_worker.h"

#include "common/kz_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The OpenSSL error that says why, of those the TLS bufferevent recorded
 * (0 if none): the first of the SSL library's (the handshake's own verdict,
 * after e.g. a crypto library's detail), else the first with a library;
 * libevent also records SSL_get_error codes, which have none. */
static unsigned long px_client_tls_error(px_client *cl)
{
    unsigned long e, first = 0, first_ssl = 0;
    while ((e = bufferevent_get_openssl_error(cl->bev)) != 0) { /* popped last to first */
        if (ERR_GET_LIB(e) == ERR_LIB_SSL)
            first_ssl = e;
        if (ERR_GET_LIB(e) != 0)
            first = e;
    }
    return first_ssl ? first_ssl : first;
}

/* A TLS handshake did not complete: one line naming the client and why. */
static void px_client_tls_failed(px_client *cl, const char *why)
{
    cl->px->m.client_tls_failures++;
    kz_warn("client %s: TLS handshake failed: %s", cl->peer, why);
}

/* The TLS socket BIO sent the last of its records (err 0), or a send
 * failed: during the handshake that is a failed handshake like any other. */
static void px_client_tls_drained(void *arg, int err)
{
    px_client *cl = arg;
    if (cl->closed)
        return;
    if (err != 0) {
        char why[200];
        snprintf(why, sizeof(why), "connection error: %s", strerror(err));
        if (!cl->tls_done)
            px_client_tls_failed(cl, why);
        else
            kz_info("client %s: %s", cl->peer, why);
        px_client_close(cl);
        return;
    }
    px_client_write_cb(cl->bev, cl);
}

static void px_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    px_client *cl = arg;
    (void)bev;
    if (cl->tls && (what & BEV_EVENT_CONNECTED)) {
        SSL *ssl = bufferevent_openssl_get_ssl(cl->bev);
        cl->tls_done = 1;
        if (cl->principal == NULL)
            cl->principal = px_tls_peer_subject(ssl);
        kz_dbg("client %s: TLS handshake done (%s, %s)%s%s", cl->peer, SSL_get_version(ssl),
               SSL_get_cipher_name(ssl), cl->principal ? ", certificate subject " : "",
               cl->principal ? cl->principal : "");
        /* The handshake's last read may have taken the first requests too
         * (read-ahead), and libevent reads again only when the socket is
         * readable. */
        event_active(cl->resume, EV_READ, 0);
        return;
    }
    if (cl->tls && !cl->tls_done && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
        char why[300];
        unsigned long e = px_client_tls_error(cl);
        int sock_err = EVUTIL_SOCKET_ERROR();
        if (e == 0 && (what & BEV_EVENT_ERROR) && sock_err != 0)
            snprintf(why, sizeof(why), "connection error: %s", evutil_socket_error_to_string(sock_err));
        else
            px_tls_describe_failure(bufferevent_openssl_get_ssl(cl->bev), e, why, sizeof(why));
        px_client_tls_failed(cl, why);
        px_client_close(cl);
        return;
    }
    if (cl->tls && (what & BEV_EVENT_ERROR)) {
        unsigned long e = px_client_tls_error(cl);
        if (e != 0) {
            char why[256];
            ERR_error_string_n(e, why, sizeof(why));
            kz_info("client %s: TLS error: %s", cl->peer, why);
            px_client_close(cl);
            return;
        }
    }
    if (what & BEV_EVENT_EOF) {
        size_t left = evbuffer_get_length(bufferevent_get_input(cl->bev)) + cl->rx.got;
        if (left > 0)
            kz_info("client %s: closed with %zu bytes of an incomplete frame", cl->peer, left);
        else
            kz_dbg("client %s: closed", cl->peer);
    } else if (what & BEV_EVENT_ERROR) {
        kz_info("client %s: connection error: %s", cl->peer,
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
    px_client_close(cl);
}

/* Give cl its bufferevent on fd: plain, or TLS (server side) with ssl,
 * which it then owns. -1 when out of memory (fd and ssl freed). */
static int px_client_start(px_client *cl, evutil_socket_t fd, SSL *ssl)
{
    px_proxy *px = cl->px;
    if (ssl != NULL) {
        cl->tls = 1;
        cl->bev = bufferevent_openssl_socket_new(px->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                 BEV_OPT_CLOSE_ON_FREE);
        if (cl->bev == NULL) {
            SSL_free(ssl);
            evutil_closesocket(fd);
            return -1;
        }
        px_tls_sock_on_drained(ssl, px_client_tls_drained, cl);
        /* A client that closes without close_notify is an EOF, not an error. */
        bufferevent_openssl_set_allow_dirty_shutdown(cl->bev, 1);
        bufferevent_set_max_single_read(cl->bev, PX_TLS_READ_BUFFER);
    } else {
        cl->bev = bufferevent_socket_new(px->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (cl->bev == NULL) {
            evutil_closesocket(fd);
            return -1;
        }
    }
    bufferevent_setcb(cl->bev, px_client_read_cb, px_client_write_cb, px_client_event_cb, cl);
    bufferevent_setwatermark(cl->bev, EV_WRITE, px->cfg->limits.max_output_bytes / 2, 0);
    bufferevent_set_max_single_write(cl->bev, KC_TX_WRITE_MAX); /* Fetch responses run to MBs */
    bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
    return 0;
}

/* TLS listener: the client's first bytes arrived (or it went away). A
 * handshake record starts TLS; anything else (a plaintext Kafka request, an
 * HTTP probe) is logged for what it is and closed, which OpenSSL would only
 * report as "wrong version number" or "packet length too long". */
static void px_client_sniff_cb(evutil_socket_t fd, short what, void *arg)
{
    px_client *cl = arg;
    (void)what;
    uint8_t b[8];
    ssize_t r = recv(fd, b, sizeof(b), MSG_PEEK);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(cl->sniff, NULL);
        return;
    }
    if (r <= 0) {
        kz_dbg("client %s: closed before sending anything", cl->peer);
        px_client_close(cl);
        return;
    }
    const char *what_it_is = px_tls_sniff(b, (size_t)r);
    if (what_it_is != NULL) {
        char why[200];
        snprintf(why, sizeof(why), "the client sent %s on the TLS listener", what_it_is);
        px_client_tls_failed(cl, why);
        px_client_close(cl);
        return;
    }
    event_free(cl->sniff);
    cl->sniff = NULL;
    SSL *ssl = px_tls_ssl_new(cl->px->tls, cl->px->base, fd);
    if (ssl == NULL) {
        evutil_closesocket(fd);
        kz_err("client %s: out of memory for a TLS session", cl->peer);
        px_client_close(cl);
        return;
    }
    if (px_client_start(cl, fd, ssl) != 0) {
        kz_err("client %s: out of memory for a TLS connection", cl->peer);
        px_client_close(cl);
    }
}

void px_accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    px_proxy *px = arg;
    if (lis != NULL && px_workers_handoff(px, fd, sa, salen))
        return; /* another thread's turn (workers): it adopts the connection */
    if (!px_workers_conn_take(px)) {
        px->m.connections_rejected++;
        kz_warn("refusing a client connection: %d connections already (limits.max_connections)",
                px->cfg->limits.max_connections);
        evutil_closesocket(fd);
        return;
    }
    px_client *cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        px_workers_conn_give(px);
        evutil_closesocket(fd);
        return;
    }
    cl->px = px;
    cl->refcnt = 1;
    cl->fd = -1;
    TAILQ_INIT(&cl->reqs);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        port = ntohs(s4->sin_port);
        snprintf(cl->peer, sizeof(cl->peer), "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        port = ntohs(s6->sin6_port);
        snprintf(cl->peer, sizeof(cl->peer), "[%s]:%d", host, port);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    cl->resume = event_new(px->base, -1, 0, px_client_resume_cb, cl);
    if (px->tls != NULL && cl->resume != NULL) {
        cl->fd = fd;
        cl->sniff = event_new(px->base, fd, EV_READ, px_client_sniff_cb, cl);
    }
    if (cl->resume == NULL || (px->tls != NULL ? cl->sniff == NULL : px_client_start(cl, fd, NULL) != 0)) {
        if (cl->resume == NULL || px->tls != NULL)
            evutil_closesocket(fd); /* px_client_start closes it itself */
        if (cl->resume)
            event_free(cl->resume);
        free(cl);
        px_workers_conn_give(px);
        return;
    }
    if (cl->sniff)
        event_add(cl->sniff, NULL);
    const char *cz = px_zone_from_addr(px->cfg, sa);
    if (cz != NULL)
        px->m.clients_zone_from_cidr++;
    snprintf(cl->zone, sizeof(cl->zone), "%s", cz ? cz : px->cfg->zone);
    cl->next = px->clients;
    if (px->clients)
        px->clients->prev = cl;
    px->clients = cl;
    px->m.connections_accepted++;
    px->m.connections_active++;
    kz_dbg("client %s: connected%s", cl->peer, px->tls ? " (TLS listener)" : "");
}

static void px_accept_error_cb(struct evconnlistener *lis, void *arg)
{
    (void)lis;
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    /* EMFILE and friends: log and keep listening; clients retry. */
    kz_err("accept failed: %s", evutil_socket_error_to_string(err));
}

int px_listen(px_proxy *px, char *errstr, size_t n)
{
    const px_listen_addr *la = &px->cfg->listen;
    if (px->cfg->client_tls.enabled && (px->tls = px_tls_new(&px->cfg->client_tls, errstr, n)) == NULL)
        return -1;
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
    if (la->fd >= 0) {
        evutil_make_socket_nonblocking(la->fd);
        px->listener = evconnlistener_new(px->base, px_accept_cb, px, flags, 0, la->fd);
    } else {
        struct sockaddr_storage ss;
        int sslen = sizeof(ss);
        char spec[300];
        snprintf(spec, sizeof(spec), strchr(la->host, ':') ? "[%s]:%d" : "%s:%d", la->host, la->port);
        if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) != 0) {
            snprintf(errstr, n, "listen: \"%s\" is not a numeric address", spec);
            return -1;
        }
        px->listener = evconnlistener_new_bind(px->base, px_accept_cb, px, flags, 1024,
                                               (struct sockaddr *)&ss, sslen);
    }
    if (px->listener == NULL) {
        snprintf(errstr, n, "cannot listen for clients: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return -1;
    }
    evconnlistener_set_error_cb(px->listener, px_accept_error_cb);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    evutil_socket_t fd = evconnlistener_get_fd(px->listener);
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0) {
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (bound.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&bound)->sin_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        } else if (bound.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&bound)->sin6_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        }
        kz_info("listening for Kafka clients on %s:%d%s (advertised as %s:%d, zone %s, node %d)", host,
                port, px->tls ? " with TLS" : "", px->cfg->advertised_host, px->cfg->advertised_port, px->cfg->zone,
                px->cfg->node_id);
    }
    return 0;
}

void px_listen_close(px_proxy *px)
{
    if (px->listener) {
        evconnlistener_free(px->listener);
        px->listener = NULL;
    }
    while (px->clients)
        px_client_close(px->clients);
    px_tls_free(px->tls);
    px->tls = NULL;
}
