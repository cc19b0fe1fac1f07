/*
 * Private to proxy/px_client.c and proxy/px_req.c: a client connection's
 * state, and what the request side (px_req.c: respond, reject, and write the
 * answers in request order) needs of the connection side.
 */
#ifndef PX_CLIENT_INT_H
#define PX_CLIENT_INT_H

#include "proxy/px_proxy.h"
#include "proxy/px_sasl.h"

#include <arpa/inet.h>
#include <event2/util.h>
#include <sys/queue.h>

struct px_client {
    px_proxy *px;
    struct bufferevent *bev;
    struct event *resume;  /* re-runs the reader after a pause ends */
    char peer[INET6_ADDRSTRLEN + 8];
    int refcnt;            /* the socket, plus one per request in flight */
    int closed;
    int paused;
    int ninflight;
    size_t inflight_bytes;
    TAILQ_HEAD(px_req_q, px_req) reqs;
    kc_frame_rx rx;         /* a large frame being read straight from the socket */
    char zone[64];          /* the zone this client is served as */
    int zone_checked;       /* client.id looked at */
    px_client *next, *prev; /* px->clients */
    int npriv;              /* this client's own broker connections */
    struct px_priv {
        int32_t broker;
        mc_conn *conn;
    } priv[8];
    struct px_fetch_replicas *fetch_replicas; /* px_route_fetch.c: read replicas by partition */
    struct px_seq_marks *seq_marks;           /* px_route_produce.c: failed sequences, no router */
    int tls;                /* bev is an OpenSSL bufferevent (client_tls) */
    int tls_done;           /* its handshake completed */
    int tls_dry;            /* the last read found OpenSSL waiting to read (1) or write (2) the socket */
    int tls_failed;         /* a read failed and was logged */
    size_t tls_turn;        /* bytes decrypted in this run of the reader */
    struct event *sniff;    /* TLS listener: waits for the first bytes, before bev exists */
    evutil_socket_t fd;     /* the socket while sniff owns it */
    char *principal;        /* who authenticated (certificate subject or SASL user), or NULL */
    px_client_auth auth;    /* client SASL state (px_sasl.c) */
    /* workers (px_worker.c) */
    px_client *shadow;      /* on a worker: this connection's stand-in on the main thread, once it
                             * relayed a request (the main thread sets it up and frees it) */
    struct px_worker *relay;/* on a shadow: the worker its answers go back to; NULL otherwise */
    char *relay_bad;        /* on a shadow: why the worker's connection must close */
    struct px_cut *cut;     /* px_cut.c: the Produce frame being received, dispatched early */
    int produce_private;    /* px_cut.c: its Produce requests use its own broker connections */
};

/* Log one line naming the peer and the reason, then close the connection. */
void px_client_bad(px_client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Make rq of a received frame (taken), queue it, count it, check the
 * header and the SASL gate; NULL when it was answered or refused (cl may be
 * closed). px_cut.c dispatches a Produce whose body is still arriving. */
px_req *px_dispatch_begin(px_client *cl, kc_frame *f);
/* Drop one reference (the socket's or a request's); the last frees cl. */
void px_client_release(px_client *cl);
/* Upgrade drain (px_drain.c): read nothing more; close the connection once
 * its requests are answered and written (call again until it is closed). */
void px_client_drain(px_client *cl);
/* The listener's accept callback (arg: the px that serves the connection;
 * each worker has its own listener event on the one socket). */
struct evconnlistener;
void px_accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg);
/* Close the connection now (its requests finish and are freed). */
void px_client_close(px_client *cl);
/* Bytes of answers written and not yet sent: the bufferevent's output and,
 * over TLS, records the socket BIO still holds (px_tls_sock.h). */
size_t px_client_unsent(const px_client *cl);
/* The bufferevent's callbacks and the reader's re-run event (px_accept.c
 * sets them up). */
void px_client_read_cb(struct bufferevent *bev, void *arg);
void px_client_write_cb(struct bufferevent *bev, void *arg);
void px_client_resume_cb(evutil_socket_t fd, short what, void *arg);
/* Read again if a pause for backpressure can end now. */
void px_client_maybe_resume(px_client *cl);
/* px_req.c: write the completed responses at the head of the queue, in
 * request order, and free their requests. */
void px_client_flush(px_client *cl);

#endif
