/*
 * mc_conn: one pipelined Kafka client connection from the proxy to a broker.
 *
 * Requests are written in order and responses come back in order (Kafka
 * guarantees it per connection), so pending requests form a FIFO matched by
 * correlation id. The connection assigns its own correlation ids; callers hand
 * it a request body and get the whole response frame back.
 *
 * At most max_inflight requests are on the wire; the rest wait in a local
 * queue (bounded by whoever feeds it: client connections have their own caps).
 * A lost connection fails every pending request with an error string; the
 * next request reconnects. A broker that refused a connection is not retried
 * for a short backoff: requests made then fail at once, so clients see a
 * retriable error instead of waiting.
 *
 * Broker connections may be secured (mc_conn_security): TLS first (the
 * bufferevent is an OpenSSL one; "connected" means the handshake is done and
 * the certificate verified), then SASL with the proxy's own credentials
 * (SaslHandshake v1, SaslAuthenticate v1) before any queued request is
 * written. A failed handshake fails the queued requests with the reason
 * (certificate error, hostname mismatch, the broker's authentication error),
 * starts the reconnect backoff and is logged once per failure streak of that
 * broker address.
 */
#ifndef MC_CONN_H
#define MC_CONN_H

#include "codec/kc_buf.h"

#include <stdint.h>

struct event_base;
struct evdns_base;
struct evbuffer;
struct mc_tls;
struct mc_sasl;

/* How a broker address's handshakes went lately: a streak of failures is
 * logged once, and its end once (shared by every connection of a pool). */
typedef struct mc_conn_streak {
    uint64_t key; /* hash of host:port, 0 for an unused slot */
    int failing;
} mc_conn_streak;

#define MC_CONN_STREAKS 64

/* TLS and SASL for broker connections, shared by every connection made with
 * the config that points to it; not owned by them (the daemon frees it after
 * the connections). Peer proxies get TLS only, or none. */
typedef struct mc_conn_security {
    struct mc_tls *tls;         /* NULL: plaintext */
    const struct mc_sasl *sasl; /* NULL: no SASL */
    mc_conn_streak streaks[MC_CONN_STREAKS]; /* written by the connections */
} mc_conn_security;

typedef struct mc_conn mc_conn;

/*
 * Response callback. On success resp is the response frame without its size
 * prefix (starting with the correlation id) and the callback owns one
 * reference to it; err is NULL. On failure resp is NULL and err says why
 * (static or valid only during the call).
 */
typedef void (*mc_resp_fn)(kc_frame *resp, const char *err, void *arg);

typedef struct mc_conn_config {
    int max_inflight;          /* requests on the wire at once */
    int request_timeout_ms;    /* added to a request's own wait time */
    size_t max_response_bytes; /* a larger response frame kills the connection (its
                                * requests fail naming the broker and the limit);
                                * below it, a frame's memory grows as its bytes
                                * arrive, never on the size prefix's word alone */
    int reconnect_backoff_ms;  /* after a failed connect */
    int quiet;                 /* connect failures and closes at debug level: the
                                * owner logs state changes (peer health) */
    mc_conn_security *sec;     /* TLS and/or SASL; NULL: plaintext, no login. Peer proxies
                                * get TLS only (peer_tls): the peer RPC has its own HMAC */
    const char *kind;          /* what the far end is called in logs and errors: NULL
                                * "broker", or "peer" */
} mc_conn_config;

/* Traffic counters, shared by all connections of a pool. */
typedef struct mc_conn_stats {
    uint64_t requests;
    uint64_t responses;
    uint64_t bytes_out;
    uint64_t bytes_in;
    uint64_t failures;  /* requests failed by a connection loss or timeout */
    uint64_t connects;
    uint64_t tls_failures;  /* TLS handshakes that failed (certificate, hostname, protocol, timeout) */
    uint64_t auth_failures; /* SASL logins that failed (refused, bad server proof, timeout, closed) */
    uint64_t auth_ok;       /* SASL logins that succeeded */
} mc_conn_stats;

struct mc_xz;
/* Count this connection's bytes as crossing zones (kind: MC_XZ_BROKER or
 * MC_XZ_PEER), or stop counting (m NULL). */
void mc_conn_set_xzone(mc_conn *c, struct mc_xz *m, int kind);
/* The meter and far-end kind when this connection crosses zones, else NULL. */
struct mc_xz *mc_conn_xzone(const mc_conn *c, int *kind);

/* host is copied. stats may be NULL. */
mc_conn *mc_conn_new(struct event_base *base, struct evdns_base *dns, const char *host, int port,
                     int32_t broker_id, const mc_conn_config *cfg, mc_conn_stats *stats);
/* Fails every pending request ("shutting down") and frees; called from one
 * of c's own request callbacks, it closes c now and frees it in the next
 * loop turn. */
void mc_conn_free(mc_conn *c);

/*
 * Send a request: the header (api_key, version, our correlation id,
 * client_id) is written by the connection, then body, which is drained (its
 * chains moved, not copied). extra_wait_ms extends the timeout for requests the
 * broker may hold (Fetch max wait). When expect_response is 0 (Produce with
 * acks=0) fn is never called. Returns 0; -1 when the broker is in its
 * reconnect backoff or memory ran out, in which case fn is NOT called.
 */
int mc_conn_request(mc_conn *c, int16_t api_key, int16_t version, kc_str client_id,
                    struct evbuffer *body, int expect_response, int extra_wait_ms, mc_resp_fn fn,
                    void *arg);

/*
 * Cut-through: send a request whose body is still arriving. body holds its
 * first bytes (drained), body_len the whole body's length. The header goes
 * out with the first bytes; until the last byte is added no other request
 * is written on this connection. A response is expected. Returns the
 * stream's id (> 0), or 0 (broker in backoff, out of memory): fn is then
 * not called.
 */
uint64_t mc_conn_stream_open(mc_conn *c, int16_t api_key, int16_t version, kc_str client_id,
                             struct evbuffer *body, size_t body_len, mc_resp_fn fn, void *arg);
/* The stream's next bytes (drained; by reference where they were added so).
 * 1: more to come; 0: complete; -1: the request is gone (it failed and its
 * callback has run, or this overran its size: the connection is closed). */
int mc_conn_stream_add(mc_conn *c, uint64_t id, struct evbuffer *more);
/* The body will never be complete. A request not yet written is dropped (fn
 * gets why); one on the wire closes the connection: every request on it
 * fails with why, as on a connection loss. Nothing when the stream is gone. */
void mc_conn_stream_abort(mc_conn *c, uint64_t id, const char *why);

int32_t mc_conn_broker_id(const mc_conn *c);
const char *mc_conn_host(const mc_conn *c);
int mc_conn_port(const mc_conn *c);
/* Requests pending (on the wire or queued). */
int mc_conn_pending(const mc_conn *c);

#endif
