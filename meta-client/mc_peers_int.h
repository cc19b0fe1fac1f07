/*
 * mc_peers_int: what the peer table (mc_peers.c) and DNS discovery
 * (mc_peers_dns.c) share. Private to meta-client.
 */
#ifndef MC_PEERS_INT_H
#define MC_PEERS_INT_H

#include "meta-client/mc_peers.h"

#include "codec/kc_peer.h"

#include <event2/util.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct event;
struct evbuffer;
struct evdns_request;

#define MC_PEERS_MAX 1024   /* peers known at once (static + discovered) */
#define MC_PROBES_MAX 256   /* DNS addresses tracked at once */
#define MC_PEER_CLIENT_ID "kzproxy-peer"

/*
 * A peer has two connections to the same address: pub.conn carries the RPCs
 * (router-out's KzWalAppend) and health carries only the KzHello health
 * checks. The far end answers a connection's requests strictly in order, so
 * a check queued behind an append would wait for that append's acks=all
 * produce and time out on a slow but working backend.
 */
typedef struct mc_peer_int {
    mc_peer pub;          /* first: what mc_peers_at returns */
    mc_peers *ps;
    mc_conn *health;      /* KzHello health checks only */
    int discovered;       /* found through DNS: forgotten when down and gone from DNS */
    int closing;          /* its connections are being freed: ignore callbacks */
    int checking;         /* a KzHello is in flight (on health) */
    int64_t check_sent_ms;
    uint8_t nonce[KC_PEER_NONCE_LEN];
} mc_peer_int;

typedef struct mc_probe {
    mc_peers *ps;
    char host[INET6_ADDRSTRLEN];
    mc_conn *conn;        /* while asking (freed on the next round once idle) */
    int inflight;
    int closing;
    int in_dns;           /* in the latest answer */
    int failing;          /* the last attempt failed (logged once) */
    int is_self;
    int32_t node_id;      /* who answered here; -1 before */
    char adv_host[256];   /* the address that node advertised */
    int adv_port;
    size_t req_bytes;     /* of the KzHello in flight: metered once the zone is known */
    uint8_t nonce[KC_PEER_NONCE_LEN];
} mc_probe;

/* One DNS query in flight. Outlives mc_peers when cancelled at free. */
typedef struct mc_dnsq {
    mc_peers *ps;         /* NULL once mc_peers is gone */
    struct evdns_request *req;
    int family;           /* 0: A, 1: AAAA */
} mc_dnsq;

struct mc_peers {
    struct event_base *base;
    struct evdns_base *dns;
    mc_peers_config cfg;  /* strings below are our copies */
    char *self_zone, *self_host, *dns_name;
    mc_peer_int **v;      /* sorted by node id */
    int n;
    mc_probe **probes;
    int nprobes;
    struct event *health_ev;
    struct event *dns_ev;
    mc_dnsq *dnsq[2];
    int dns_pending;      /* queries of the current round not answered */
    int round_transient;  /* a query failed for a reason that says nothing about the name */
    int round_err;        /* the first error of the round (for the log) */
    int dns_failing;      /* last round failed (logged once per change) */
    int started;
    int check_timeout_ms;
    mc_peers_change_fn change_fn;
    void *change_arg;
    mc_peers_stats stats;
};

/* ---- mc_peers.c: KzHello and the peer table ---- */

/* Tell the owner that a peer appeared, disappeared or changed health. */
void mc_peers_changed(mc_peers *ps);
/* A sealed KzHello request body for node receiver (KC_PEER_RECEIVER_UNKNOWN:
 * a discovery probe, which does not know who answers at the address yet;
 * caller frees), its nonce in nonce; NULL on allocation failure or without
 * a secret. */
struct evbuffer *mc_hello_body(mc_peers *ps, int32_t receiver, uint8_t nonce[KC_PEER_NONCE_LEN]);
/* Bytes of the request frame for a body of n bytes (size, header, body). */
size_t mc_hello_frame_bytes(size_t n);
/* Check and decode a KzHello response frame answering the request with
 * nonce. 0 with *h pointing into resp; -1 with why filled. */
int mc_hello_parse(mc_peers *ps, const kc_frame *resp, const uint8_t *nonce, kc_peer_hello *h,
                   char *why, size_t whysz);
/* The peer with that node id, or NULL. */
mc_peer_int *mc_peers_get(const mc_peers *ps, int32_t node_id);
/* Insert a new peer (healthy). NULL when full, a duplicate or out of memory. */
mc_peer_int *mc_peers_insert(mc_peers *ps, int32_t node_id, const char *zone, const char *host,
                             int port, int is_static);
/* Take p out of the table and free it. Callers notify the change. */
void mc_peers_remove(mc_peers *ps, mc_peer_int *p);

/* ---- mc_peers_dns.c: DNS discovery ---- */

/* The dns_ev callback: start a round (an A and an AAAA query). */
void mc_dns_round(evutil_socket_t fd, short what, void *arg);
/* Cancel the queries in flight and free the probes (from mc_peers_free). */
void mc_dns_free(mc_peers *ps);

#endif
