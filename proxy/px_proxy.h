/*
 * px_proxy: the Kafka front end. Shared state of one kzproxy process and the
 * pieces of the front end:
 *   px_client.c   client connections: framing, limits, in-order responses
 *   px_vcluster.c the virtual cluster: ApiVersions and Metadata answers
 *   px_route*.c   Produce / Fetch / ListOffsets / OffsetForLeaderEpoch /
 *                 DeleteRecords split by leader and merged; ListGroups fanned out
 *                 (px_route.c the shared split, one file per API family)
 *   px_admin.c    the admin HTTP listener: /metrics, /healthz, POST /reload
 *   px_drain.c    signals and the graceful drain
 *   px_reload.c   live reload of the config file
 *   px_upgrade.c  socket handoff: LISTEN_FDS and the SIGUSR2 upgrade
 */
#ifndef PX_PROXY_H
#define PX_PROXY_H

#include "codec/kc_arena.h"
#include "codec/kc_buf.h"
#include "codec/kc_msg.h"
#include "codec/kc_proto.h"
#include "common/kz_acl.h"
#include "meta-client/mc_cluster.h"
#include "proxy/px_config.h"

#include <stdint.h>
#include <sys/queue.h>

struct event;
struct event_base;
struct evdns_base;
struct evconnlistener;
struct evhttp;
struct bufferevent;
struct evbuffer;

/* A proxy of the virtual cluster, as clients see it. */
typedef struct px_node {
    int32_t node_id;
    const char *zone;
    const char *host;
    int port;
} px_node;

typedef struct px_metrics {
    uint64_t connections_accepted;
    uint64_t connections_active;
    uint64_t frame_pool_bytes; /* buffers kept for reuse by the thread (kc_buf.h's
                                * pool and big frame): set when read out */
    uint64_t connections_rejected;     /* over max_connections */
    uint64_t connections_closed_bad;   /* closed for bad input */
    uint64_t requests[KC_API_MAX + 1]; /* by ApiKey */
    uint64_t request_bytes;
    uint64_t response_bytes;
    uint64_t produce_partitions;
    uint64_t produce_record_bytes;
    uint64_t produce_cut_through;      /* Produce requests streamed to their broker as they arrived (px_cut.c) */
    uint64_t produce_cut_aborted;      /*   of which the client closed before the frame's end */
    uint64_t fetch_record_bytes;
    uint64_t partition_errors;         /* partitions answered with an error by the proxy */
    uint64_t backpressure_pauses;      /* client reads paused by in-flight caps */
    uint64_t zone_fallbacks;           /* metadata answered with other zones' proxies */
    uint64_t clients_unknown_zone;     /* client connections naming a zone no proxy serves */
    uint64_t clients_zone_from_id;     /* client connections placed by their client.id */
    uint64_t clients_zone_from_cidr;   /* client connections placed by the CIDR map */
    uint64_t passthrough_requests;     /* requests forwarded unchanged */
    uint64_t peer_requests;            /* peer RPC requests received */
    uint64_t peer_auth_failures;       /* peer RPC requests refused (MAC) */
    uint64_t peer_rejected_skew;       /* peer RPC requests refused: ts_ms outside the replay window */
    uint64_t peer_rejected_replay;     /*   (sender, nonce) seen before */
    uint64_t peer_rejected_full;       /*   the seen-nonce set was full of live nonces */
    uint64_t peer_rejected_before_start; /* ts_ms earlier than this process's start */
    uint64_t produce_parts_direct;     /* produce partitions by path: leader in this zone */
    uint64_t produce_parts_wal;        /*   leader in another zone, through a WAL object */
    uint64_t produce_parts_cross;      /*   leader in another zone, sent straight to it */
    uint64_t fetch_parts_leader;       /* fetch partitions sent to: their leader */
    uint64_t fetch_parts_follower;     /*   a follower of the proxy's zone (KIP-392) */
    uint64_t fetch_follower_fallbacks; /* partitions sent back to the leader after a follower failed */
    uint64_t client_sasl_successes;    /* client SASL logins (and re-authentications) that passed */
    uint64_t client_sasl_failures;     /* client SASL logins refused */
    uint64_t client_tls_failures;      /* client TLS handshakes failed (incl. plaintext on the TLS listener) */
    uint64_t acl_denied[KZ_ACL_NOPS][KZ_ACL_NRES]; /* authorization refusals (px_acl.c) */
    uint64_t config_reloads;           /* live reloads applied (SIGHUP, POST /reload) */
    uint64_t config_reload_failures;   /* reloads refused: the new file is invalid */
    uint64_t admin_reloads_refused;    /* POST /reload refused by admin_reload */
    uint64_t upgrades;                 /* new processes started with the listening sockets (SIGUSR2) */
} px_metrics;

struct mc_peers;
struct rt_router;
struct ow_store;
struct ow_gc;
struct px_sasl;

typedef struct px_proxy {
    struct event_base *base;
    struct evdns_base *dns;
    px_config *cfg;
    mc_cluster *mc;
    struct mc_peers *peers;  /* the other proxies and their health */
    mc_conn_security *peer_sec; /* TLS to peers (peer_tls); NULL: plaintext */
    struct rt_router *rt;    /* the WAL path; NULL without a wal config */
    struct px_replay *replay; /* seen peer RPC nonces; NULL without peer_secret */
    struct ow_store *store;  /* the WAL store; NULL without a wal config */
    struct ow_gc *gc;
    struct mc_xz *xz;        /* bytes to and from other zones */
    struct px_fcache *fcache; /* the fetch cache (px_fcache.h): the process's one, made by main() before
                               * the workers, which share it; NULL when off */
    struct px_sasl *csasl;   /* client SASL (client_sasl); NULL: clients do not log in */
    int64_t started_wall_ms;
    struct evconnlistener *listener;
    struct px_tls *tls;      /* TLS on the client listener; NULL without client_tls */
    struct evhttp *http;
    int ready;
    int nnodes;
    px_node *nodes; /* this proxy and the healthy peers, sorted by zone then node id;
                     * one block with its strings, replaced (from the loop) when
                     * the peers change */
    struct event *nodes_ev; /* deferred rebuild of nodes */
    px_metrics m;
    int64_t started_ms;
    struct px_client *clients; /* every open client connection */
    /* client ids already logged for an unknown zone (hashes; a log line each) */
    uint32_t unknown_zone_logged[256];
    /* operations (px_drain.c, px_reload.c, px_upgrade.c) */
    const char *config_path;   /* re-read on reload */
    int log_level_cli;         /* --log-level given: reloads keep it */
    char **argv;               /* this process's command line, for an upgrade */
    int draining;              /* SIGTERM/SIGINT/upgrade: stop taking work, then exit */
    int64_t drain_start_ms;
    int64_t drain_log_ms;
    struct event *drain_ev;    /* drain progress timer */
    struct event *pool_ev;     /* main thread: its frame pool's decay (limits.frame_pool_idle_ms) */
    struct event *sigs[4];     /* SIGTERM, SIGINT, SIGHUP, SIGUSR2 */
    struct px_upgrade *upgrade;/* an upgrade in progress (SIGUSR2) */
    void *admin_handle;        /* the admin listener's evhttp_bound_socket */
    /* threads (px_worker.h) */
    struct px_worker *worker;  /* the worker thread this px serves; NULL on the main thread */
    struct px_workers *workers;/* main thread: the other workers; NULL with workers: 1 */
} px_proxy;

/* ---- px_client.c ---- */

typedef struct px_client px_client;

/* One client request being served; responses leave in request order. */
typedef struct px_req {
    TAILQ_ENTRY(px_req) link;
    px_client *cl;
    kc_frame *frame;   /* the request frame (without size prefix) */
    kc_req_hdr hdr;    /* decoded header; strings point into frame */
    size_t body_off;   /* where the body starts in frame */
    int done;
    int no_response;   /* acks=0 Produce */
    struct evbuffer *resp; /* framed response, once done */
    struct px_req *relay_of; /* on a shadow connection (px_worker.c): the worker's request */
} px_req;

/* Start listening; 0 or -1 with errstr. */
int px_listen(px_proxy *px, char *errstr, size_t errstr_size);
/* Stop listening and close every client connection. */
void px_listen_close(px_proxy *px);
/* The connection to use for a request to a broker: the shared pooled one, or,
 * for requests a broker may hold (long polls, group joins), one of this
 * client's own, so they never queue behind each other. NULL if unknown. */
struct mc_conn *px_client_conn(px_client *cl, int32_t broker_id, int blocking);
/* Where this connection's Fetch partitions read from (px_route_fetch.c owns
 * it; freed with the connection by px_fetch_replicas_free); NULL once the
 * connection is closed. */
struct px_fetch_replicas **px_client_fetch_replicas(px_client *cl);
/* Failed idempotent Produce batches whose retries later batches wait for,
 * without a router (px_route_produce.c owns it; freed with the connection by
 * px_seq_marks_free); NULL once the connection is closed. */
struct px_seq_marks;
struct px_seq_marks **px_client_seq_marks(px_client *cl);
void px_seq_marks_free(struct px_seq_marks *sm);
/* The client's zone, and its address for logs. */
const char *px_client_zone(const px_client *cl);
const char *px_client_peer(const px_client *cl);
px_proxy *px_client_proxy(const px_client *cl);
/* 1 once the client may send ordinary requests (always without client_sasl). */
int px_client_authenticated(const px_client *cl);
/* Set the principal (a copy; px_sasl.c on a SASL login). 0, or -1 out of memory. */
int px_client_set_principal(px_client *cl, const char *principal);
/* Who the client authenticated as: its certificate's subject (mTLS, RFC 2253)
 * or its SASL user, whichever authenticated it; NULL if neither. Owned by
 * the connection. */
const char *px_client_principal(const px_client *cl);

/* Complete a request with a response body (drained) at the request's version:
 * the header is added here. body NULL completes with no response. */
void px_req_respond(px_req *rq, struct evbuffer *body);
/* Fail the client's connection because of what this request contained. */
void px_req_reject(px_req *rq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- px_vcluster.c ---- */

/* Build px->nodes from this proxy and the healthy peers (px->peers, or the
 * config's peers without it); 0, or -1 (out of memory: nodes unchanged). */
int px_vc_nodes_rebuild(px_proxy *px);
/* Build nodes now and rebuild them whenever px->peers reports a change. */
int px_vc_nodes_init(px_proxy *px);
void px_vc_nodes_free(px_proxy *px);
/* mc_peers change callback (arg: px): schedules a rebuild. */
void px_vc_peers_changed(void *arg);
/* 1 if this proxy or any known peer (healthy or not) is in zone. */
int px_vc_zone_known(px_proxy *px, const char *zone);
/* The proxies clients of a zone see (at least one: falls back to all). */
int px_vc_zone_nodes(px_proxy *px, const char *zone, const px_node **out, int *fallback);
/* The proxy a real broker id maps to, among the zone's proxies. */
const px_node *px_vc_map_broker(const px_node *nodes, int n, int32_t broker_id);
/* Highest version of key the proxy advertises (intersected with the backend
 * where it forwards), and the lowest; -1 when not served. */
int px_vc_version_range(px_proxy *px, int16_t key, int16_t *min, int16_t *max);
void px_vc_apiversions(px_req *rq);
void px_vc_metadata(px_req *rq);
/* DescribeCluster, answered from the virtual cluster like Metadata. */
void px_vc_describecluster(px_req *rq);

/* ---- px_zone.c ---- */
/* The zone named in a client.id ("app,kz_az=b"); 0 and the zone in out, or -1. */
int px_zone_from_client_id(kc_str client_id, char *out, size_t outsz);
/* The zone of a client address from the config's CIDR map, or NULL. */
struct sockaddr;
const char *px_zone_from_addr(const px_config *cfg, const struct sockaddr *sa);

/* ---- px_pass.c: requests forwarded unchanged ---- */
/* Whether key is forwarded unchanged, and the versions whose routing field
 * kzproxy knows how to find. */
int px_pass_versions(int16_t key, int16_t *max_version);
void px_pass_route(px_req *rq);
/* FindCoordinator, answered with proxy addresses. */
void px_vc_findcoordinator(px_req *rq);
/* Respond with a broker's response frame as is, but the client's correlation
 * id; takes the frame reference. */
void px_req_respond_frame(px_req *rq, kc_frame *resp);

/* ---- px_peer.c: the peer RPC (KzHello, KzWalAppend) ---- */
void px_peer_dispatch(px_req *rq);
/* Identifies a client connection for router-in's ordering. */
const void *px_client_stream(const px_client *cl);

/* ---- px_route_produce.c, _fetch.c, _parts.c (ListOffsets, OffsetForLeaderEpoch,
 * DeleteRecords), _listgroups.c ---- */
void px_route_produce(px_req *rq);
void px_route_fetch(px_req *rq);
void px_route_listoffsets(px_req *rq);
void px_route_offsetforleaderepoch(px_req *rq);
void px_route_deleterecords(px_req *rq);
void px_route_listgroups(px_req *rq);
/* A Fetch response partition's tags as the client gets them (KIP-951): the
 * CurrentLeader's broker id becomes the proxy of nodes[] it maps to (epoch
 * kept), DivergingEpoch and SnapshotId pass, unknown tags are dropped. The
 * new section is allocated in a. 0, or -1 when out of memory. */
int px_fetch_rewrite_tags(kc_arena *a, const kc_tags *in, const px_node *nodes, int nnodes, kc_tags *out);
/* A client connection's remembered read replicas (NULL: nothing to free). */
struct px_fetch_replicas;
void px_fetch_replicas_free(struct px_fetch_replicas *r);
/* Fetch v13+: fill each topic's name from its id using the view (names point
 * into the view); unknown[t] is set for ids the view does not know. */
void px_fetch_names_from_ids(kc_fetch_req *in, const mc_view *view, uint8_t *unknown);
/* ListGroups: merge the per-broker answers in[0..n) (NULL for a broker that
 * did not answer) into out, groups in broker order; the error is the first
 * broker's error (COORDINATOR_NOT_AVAILABLE for one that did not answer),
 * and the groups of the brokers that answered without error are kept. The
 * group array is allocated in a. 0, or -1 when out of memory. */
int px_listgroups_merge(kc_arena *a, const kc_listgroups_resp *const *in, int n, kc_listgroups_resp *out);
struct px_acl_pass_ctx;
/* ListGroups with ACLs: keep, in place and in order, only the groups ctx
 * allows describe on, unless it allows describe on the cluster (as Kafka
 * lists them); silent, not counted. Returns how many were left out. */
int32_t px_listgroups_filter(kc_listgroups_resp *r, const struct px_acl_pass_ctx *ctx);

/* ---- px_wal.c: the WAL path's parts (store, gc, peers, router) ---- */
int px_wal_start(px_proxy *px, char *errstr, size_t errstr_size);
void px_wal_stop(px_proxy *px);
int64_t px_peer_wall_ms(void);

/* ---- px_acl.c: authorization (kz_acl) of client requests ---- */
/* 1 when the client may do op on the resource (always without "acls");
 * else counts the refusal (kzproxy_acl_denied_total), logs it (one info
 * line per principal, operation and resource kind per 10 s, with the number
 * not logged) and returns 0. */
int px_acl_check(px_client *cl, kz_acl_op op, kz_acl_res res, kc_str name);
/* The same without counting or logging (Metadata's listing of all topics). */
int px_acl_allowed(px_client *cl, kz_acl_op op, kz_acl_res res, kc_str name);
/* Pass-through requests (px_pass.c): 0 when every resource the request
 * names is allowed (or no ACLs); else the request was answered with the
 * authorization error, or refused, and 1 is returned. */
int px_acl_pass(px_req *rq);
struct px_acl_pass_ctx;
/* The check context of a client (px_acl_split.c's decisions); ACLs on. */
void px_acl_ctx(px_client *cl, struct px_acl_pass_ctx *ctx);

/* ---- px_drain.c: signals and the graceful drain ---- */
/* Watch SIGTERM, SIGINT (drain; a second one exits at once), SIGHUP
 * (reload) and SIGUSR2 (upgrade). 0, or -1 out of memory. */
int px_signals_start(px_proxy *px);
void px_signals_stop(px_proxy *px);
/* Start draining (idempotent): stop accepting, say so in KzHello and
 * /healthz, leave the virtual cluster, seal the WAL objects, answer new work
 * with retriable errors, exit when idle or at drain_timeout_ms. */
void px_drain_start(px_proxy *px, const char *why);

/* ---- px_reload.c: live reload ---- */
/* Re-read px->config_path and apply what can change live; 0, or -1 with
 * errstr (the running config is kept; counted). */
int px_reload(px_proxy *px, const char *why, char *errstr, size_t errstr_size);

/* ---- px_upgrade.c: socket handoff ---- */
/* Take the listeners from systemd-style LISTEN_FDS/LISTEN_PID into cfg
 * (first: Kafka, second: admin); 1 when taken, 0 when none, -1 with errstr
 * ("systemd" in the config without them). Unsets the variables. */
int px_listen_fds_take(px_config *cfg, char *errstr, size_t errstr_size);
/* For a reload's comparison: a listen address read from the file again, as
 * the running config holds it (the inherited socket when the file still
 * says what it said at startup). admin: 0 Kafka, 1 admin listener. */
px_listen_addr px_listen_as_configured(const px_listen_addr *file, int admin);
/* SIGUSR2: start this binary again with the listening sockets; drain once
 * it says it is ready. */
void px_upgrade_start(px_proxy *px);
/* The new process of an upgrade: tell the old one it is ready. */
void px_upgrade_ready(px_proxy *px);
void px_upgrade_free(px_proxy *px);

/* ---- px_admin.c ---- */
int px_admin_start(px_proxy *px, char *errstr, size_t errstr_size);
void px_admin_stop(px_proxy *px);

#endif
