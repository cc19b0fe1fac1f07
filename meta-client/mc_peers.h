/*
 * mc_peers: the other kzproxy instances (peers) of every zone, and their
 * health.
 *
 * Peers come from the static config and from DNS discovery (A/AAAA records
 * of a name, all on one port, re-resolved on a period with libevent's evdns).
 * Each peer gets two pipelined mc_conns to its address: conn (below) for the
 * peer RPC (KzWalAppend), and a private one for the KzHello health checks, so
 * that a check never waits behind a slow RPC (a peer answers a connection's
 * requests in order); a peer in another zone has both metered as cross-zone
 * traffic. A DNS-discovered address becomes a peer once it answers KzHello
 * with its node id, zone and advertised address; an address that is this
 * proxy itself is ignored.
 *
 * Health: every health_ms each peer gets a KzHello on its health connection.
 * A static peer starts healthy (so the first produce after start does not
 * cross zones); a failed health check or a failed RPC (mc_peers_mark_down:
 * that is how a stuck RPC connection shows, its requests miss their
 * deadlines) marks it down until a health check succeeds again. A
 * discovered peer that has been down and absent from DNS for a while is
 * forgotten.
 */
#ifndef MC_PEERS_H
#define MC_PEERS_H

#include "meta-client/mc_conn.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct mc_xz;

typedef struct mc_peer {
    int32_t node_id;
    char *zone;
    char *host;       /* advertised Kafka address, which also serves the RPC */
    int port;
    int is_static;    /* from the config */
    int healthy;
    int64_t started_ms; /* from its last KzHello, 0 before */
    uint32_t flags;     /* KC_PEER_HELLO_* of its last healthy KzHello, 0 before */
    mc_conn *conn;    /* for RPCs (not the health checks); owned by mc_peers */
} mc_peer;

typedef struct mc_peers_config {
    int32_t self_id;          /* this proxy: used in KzHello and to skip itself */
    const char *self_zone;
    const char *self_host;    /* advertised */
    int self_port;
    int64_t started_ms;
    const void *secret;       /* peer RPC secret (not copied: must outlive) */
    size_t secret_len;
    int health_ms;            /* health-check period */
    const char *dns_name;     /* NULL: no discovery */
    int dns_port;
    int dns_interval_ms;
    mc_conn_config conn;
    struct mc_xz *xz;         /* cross-zone meter (may be NULL) */
} mc_peers_config;

typedef struct mc_peers mc_peers;

/* Strings in cfg are copied except secret. */
mc_peers *mc_peers_new(struct event_base *base, struct evdns_base *dns, const mc_peers_config *cfg);
/* Frees every peer connection (failing their pending requests) and cancels
 * DNS queries in flight; evdns reports those through deferred callbacks that
 * free the last bits, so run the loop once more (EVLOOP_NONBLOCK) before
 * freeing the evdns and event bases. */
void mc_peers_free(mc_peers *ps);
/* A peer from the config (before mc_peers_start). 0, or -1. */
int mc_peers_add_static(mc_peers *ps, int32_t node_id, const char *zone, const char *host, int port);
/* Start health checks (and discovery). */
void mc_peers_start(mc_peers *ps);

/* Called (from the loop) whenever a peer appears, disappears or changes health. */
typedef void (*mc_peers_change_fn)(void *arg);
void mc_peers_on_change(mc_peers *ps, mc_peers_change_fn fn, void *arg);

/* Every known peer, sorted by node id (pointers valid until the next change). */
int mc_peers_count(const mc_peers *ps);
const mc_peer *mc_peers_at(const mc_peers *ps, int i);
const mc_peer *mc_peers_find(const mc_peers *ps, int32_t node_id);

/*
 * A healthy peer of zone, chosen deterministically by key among the healthy
 * peers of that zone (so one sender keeps using one peer while it is
 * healthy), never avoid_id (-1: none). NULL when the zone has none.
 */
const mc_peer *mc_peers_pick(const mc_peers *ps, const char *zone, uint32_t key, int32_t avoid_id);

/* 1 when every healthy peer of zone said flag (KC_PEER_HELLO_*) in its
 * last KzHello and there is at least one; 0 otherwise. */
int mc_peers_zone_all(const mc_peers *ps, const char *zone, uint32_t flag);

/* A failed RPC: mark the peer down until a health check succeeds. */
void mc_peers_mark_down(mc_peers *ps, int32_t node_id, const char *why);

/* A static peer as the config names it (strings copied by the calls). */
typedef struct mc_peer_spec {
    int32_t node_id;
    const char *zone;
    const char *host;
    int port;
} mc_peer_spec;

/* Live reload: make the static peers exactly v[0..n): peers no longer named
 * (or changed) are removed, new ones added (healthy until checked);
 * discovered peers are left alone unless the config now names their id.
 * Notifies the change. 0, or -1 when some could not be added (logged). */
int mc_peers_set_static(mc_peers *ps, const mc_peer_spec *v, int n);
/* Live reload of discovery: the DNS name (the next round resolves it) and
 * the period. -1 when discovery would have to be turned on or off (a
 * restart) or out of memory. */
int mc_peers_set_discovery(mc_peers *ps, const char *dns_name, int interval_ms);

/* Counters for /metrics. */
typedef struct mc_peers_stats {
    uint64_t health_checks;
    uint64_t health_failures;
    uint64_t marked_down;      /* by failed RPCs */
    uint64_t dns_resolutions;
    uint64_t dns_failures;
    uint64_t discovered;       /* peers added through DNS */
    mc_conn_stats conns;       /* every peer connection: RPC, health check, discovery probe
                                * (tls_failures: peer TLS handshakes that failed) */
} mc_peers_stats;
const mc_peers_stats *mc_peers_get_stats(const mc_peers *ps);

#endif
