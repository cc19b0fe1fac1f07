/*
 * mc_cluster: the proxy's view of the backend Kafka cluster.
 *
 * It learns the brokers (with their racks = zones), topics, partition leaders
 * and the cluster id from Metadata requests it sends itself, refreshed on a
 * period and on demand (NOT_LEADER-type errors, unknown topics). It also
 * learns the API versions the backend supports, and owns the pool of upstream
 * connections, one per broker, shared by every client connection.
 *
 * A view is an immutable, reference-counted snapshot: a request keeps the view
 * it routed with even if a refresh replaces it meanwhile.
 */
#ifndef MC_CLUSTER_H
#define MC_CLUSTER_H

#include "codec/kc_arena.h"
#include "codec/kc_buf.h"
#include "meta-client/mc_conn.h"

#include <stdint.h>

struct event_base;
struct evdns_base;

typedef struct mc_broker {
    int32_t id;
    char *host;
    int32_t port;
    char *rack; /* NULL when the broker has none */
} mc_broker;

typedef struct mc_partition {
    int32_t index;
    int16_t error_code;
    int32_t leader_id; /* -1 when none */
    int32_t leader_epoch;
    int32_t nreplicas;
    int32_t *replicas;
    int32_t nisr;
    int32_t *isr;
    int32_t noffline;
    int32_t *offline;
} mc_partition;

typedef struct mc_topic {
    char *name;
    kc_uuid topic_id;
    int16_t error_code;
    int is_internal;
    int32_t npartitions;
    mc_partition *partitions; /* indexed by partition number when dense */
} mc_topic;

typedef struct mc_view {
    int refcnt;
    kc_arena arena; /* everything below lives here */
    char *cluster_id;
    int32_t controller_id;
    int32_t nbrokers;
    mc_broker *brokers; /* sorted by id */
    int32_t ntopics;
    mc_topic *topics; /* sorted by name */
    int32_t nby_id;
    mc_topic **by_id; /* the topics that have an id (Metadata v10+), sorted by id */
} mc_view;

mc_view *mc_view_keep(mc_view *v);
void mc_view_release(mc_view *v);
const mc_broker *mc_view_broker(const mc_view *v, int32_t id);
const mc_topic *mc_view_topic(const mc_view *v, kc_str name);
const mc_partition *mc_view_partition(const mc_view *v, kc_str topic, int32_t partition);
/* The topic with this id (Fetch v13+ names topics by id), NULL when unknown
 * or the id is all zero. */
const mc_topic *mc_view_topic_by_id(const mc_view *v, kc_uuid id);
/* Whether the view knows any topic id: only then can the proxy translate
 * requests that name topics by id (the backend speaks Metadata v10+). */
int mc_view_has_topic_ids(const mc_view *v);

typedef struct mc_config {
    char **bootstrap;  /* "host:port" strings, not owned */
    int nbootstrap;
    int refresh_ms;    /* periodic full refresh */
    mc_conn_config conn;
    const char *zone;  /* the proxy's zone (not owned): brokers of other racks cross zones */
    struct mc_xz *xz;  /* cross-zone meter for those connections (may be NULL) */
} mc_config;

typedef struct mc_cluster mc_cluster;

/* Called once the first view is loaded (ready) or on every refresh result. */
typedef void (*mc_refresh_fn)(mc_view *view, const char *err, void *arg);

mc_cluster *mc_cluster_new(struct event_base *base, struct evdns_base *dns, const mc_config *cfg);
void mc_cluster_free(mc_cluster *mc);

/* Start: ApiVersions, then a full Metadata refresh, then periodic ones.
 * ready is called once, when the first view is in place. */
void mc_cluster_start(mc_cluster *mc, mc_refresh_fn ready, void *arg);

/* The current view (borrowed; keep it to hold on), NULL before the first. */
mc_view *mc_cluster_view(mc_cluster *mc);

/* The backend's supported range for an ApiKey; 0, or -1 if it has none. */
int mc_cluster_backend_versions(const mc_cluster *mc, int16_t key, int16_t *min, int16_t *max);

/*
 * Refresh the given topics (ntopics == -1: all topics), letting the broker
 * auto-create them when allow_create is set, merge the result into the view,
 * and call fn with the new view (borrowed for the call) or an error. fn may be
 * NULL. The callback may run before this function returns.
 */
void mc_cluster_refresh(mc_cluster *mc, const kc_str *topics, int ntopics, int allow_create,
                        mc_refresh_fn fn, void *arg);

/* Ask for a full refresh soon (debounced): called on NOT_LEADER errors. */
void mc_cluster_refresh_soon(mc_cluster *mc);

/* The pooled connection to a broker of the current view, NULL if unknown. */
mc_conn *mc_cluster_conn(mc_cluster *mc, int32_t broker_id);

/*
 * The real coordinator of a group (key_type 0) or transactional id (1).
 * Answers from a cache unless refresh is set (a client asking FindCoordinator
 * again usually means the coordinator moved), else asks the backend. fn gets
 * the broker id (or -1) and a Kafka error code; it may run before this returns.
 */
typedef void (*mc_coord_fn)(int32_t broker_id, int16_t error_code, void *arg);
void mc_cluster_coordinator(mc_cluster *mc, int8_t key_type, kc_str key, int refresh, mc_coord_fn fn,
                            void *arg);

/*
 * A new connection to a broker of the current view that only the caller uses
 * (it frees it with mc_conn_free): for requests a broker may hold for long
 * (Fetch long polls, group joins). A broker serves one request per connection
 * at a time, so these must not queue behind each other on a shared one.
 */
mc_conn *mc_cluster_conn_private(mc_cluster *mc, int32_t broker_id);

/* 1 if the broker is in another zone than the proxy (or its rack is unknown). */
int mc_cluster_broker_remote(const mc_cluster *mc, const mc_view *v, int32_t broker_id);

/* Counters of all upstream connections. */
const mc_conn_stats *mc_cluster_stats(const mc_cluster *mc);

#endif
