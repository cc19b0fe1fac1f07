/*
 * Private to meta-client/mc_conn*.c: a broker connection's state, shared by
 * mc_conn.c (connect, write, read, fail), mc_conn_auth.c (handshake failure
 * streaks and the SASL login) and mc_conn_stream.c (a request whose body is
 * still arriving: cut-through).
 */
#ifndef MC_CONN_INT_H
#define MC_CONN_INT_H

#include "common/kz_time.h"
#include "meta-client/mc_conn.h"
#include "meta-client/mc_sasl.h"
#include "meta-client/mc_xzone.h"

#include <sys/queue.h>

typedef struct mc_pending {
    TAILQ_ENTRY(mc_pending) link;
    int32_t corr;
    int16_t api_key;
    int16_t version;
    int expect_response;
    int64_t deadline_ms;
    struct evbuffer *frame; /* while queued: the framed request */
    mc_resp_fn fn;
    void *arg;
    int internal; /* the connection's own SASL request: not counted as pending */
    uint64_t stream_id; /* a streamed request's id (mc_conn_stream_open), else 0 */
    size_t stream_left; /* body bytes still to come (mc_conn_stream_*): while
                         * written and > 0, nothing else goes on the wire */
} mc_pending;

TAILQ_HEAD(mc_pending_q, mc_pending);

/* MC_CONNECTING covers the TLS handshake; MC_AUTH the SASL exchange. */
enum { MC_DOWN = 0, MC_CONNECTING, MC_AUTH, MC_UP };
enum { MC_SASL_PHASE_HANDSHAKE = 0, MC_SASL_PHASE_AUTHENTICATE };

struct mc_conn {
    struct event_base *base;
    struct evdns_base *dns;
    char *host;
    int port;
    int32_t broker_id;
    mc_conn_config cfg;
    mc_conn_stats *stats;
    mc_xz *xz;   /* set when the far end is in another zone */
    int xz_kind;
    struct bufferevent *bev;
    int state;
    int32_t next_corr;
    int ninflight;
    int npending;
    int64_t backoff_until_ms;
    struct mc_pending_q inflight; /* written, awaiting a response */
    struct mc_pending_q waiting;  /* not yet written */
    /* Correlation ids of the last requests sent without expecting an answer
     * (acks=0 Produce). Kafka brokers send none; some (librdkafka's mock
     * cluster) do: such an answer is dropped instead of breaking the stream. */
    int32_t noresp[32];
    unsigned nnoresp;
    struct event *timer;          /* request deadlines */
    kc_frame_rx rx;               /* a large response read straight from the socket */
    int tls;                      /* bev is an OpenSSL bufferevent */
    mc_sasl_session *sasl;        /* the SASL exchange under way (MC_AUTH) */
    int sasl_phase;               /* MC_SASL_PHASE_* */
    int64_t handshake_deadline_ms; /* TLS handshake and SASL exchange must end by then */
    int busy;                     /* callbacks running: mc_conn_free must not free c yet */
    int doomed;                   /* mc_conn_free ran while busy: freed in the next loop turn */
    mc_pending *open;             /* written, body still streaming: the wire is its alone */
};

/* Close the socket and fail what was sent (and, if asked, what waits). */
void mc_conn_fail_all(mc_conn *c, const char *why, int include_waiting);
/* Write queued requests while the in-flight window has room. */
void mc_conn_pump(mc_conn *c);
void mc_pending_free(mc_pending *p);
/* Connect (or reconnect) and, once up, write what waits. */
void mc_conn_connect(mc_conn *c);
/* mc_conn_auth.c: the connection is ready for requests. */
void mc_conn_up(mc_conn *c);
/* mc_conn_auth.c: a TLS or SASL handshake failed: count it, log it once per
 * streak, fail what waits and back off like a refused connect. */
void mc_conn_handshake_failed(mc_conn *c, int tls, const char *why);
/* mc_conn_auth.c: start the SASL login on a connected socket. */
void mc_conn_sasl_start(mc_conn *c);

#endif
