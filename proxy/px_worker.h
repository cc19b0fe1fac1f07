/*
 * px_worker: the `workers` key. The main thread is worker 0 and owns what
 * is process-wide: the admin HTTP listener, the signals, the peers, the WAL
 * router (its writers, uploads and RPCs) and router-in. Workers 1..N-1 are
 * threads, each with its own px_proxy: its own event_base, resolver,
 * mc_cluster (metadata refresh and pooled broker connections), client TLS
 * context, client SASL, fetch cache, metrics, and its own listener event on
 * the one listening socket (a dup of the main thread's: `fd:N`, systemd and
 * upgrade sockets work unchanged; the kernel wakes the threads and one
 * accept wins).
 *
 * A worker never touches another thread's objects. What must happen on the
 * main thread is relayed as a whole request through a mailbox (a mutex-
 * protected FIFO and an eventfd the owner's loop watches): Produce when a WAL
 * router exists (so one ow_writer per destination zone batches the whole
 * process: more workers never mean more, smaller objects), and the peer RPC
 * (KzHello, KzWalAppend). On the main thread the request runs against a
 * "shadow" connection (one per relaying client connection: the order key of
 * the WAL path, its principal and zone); its framed answer, or the reason to
 * close, goes back through the worker's mailbox and is written in request
 * order like any other. Frames and views crossing threads are counted
 * atomically (kc_frame_keep, mc_view_keep); evbuffers move whole, one owner
 * at a time.
 *
 * Workers publish a snapshot of their metrics under a mutex when the main
 * thread asks (px_workers_sync: /metrics, the drain) and every
 * PX_WORKER_SNAP_MS; /metrics sums them with the main thread's own. A reload
 * parks the workers (px_workers_pause) while it swaps the shared config's
 * live keys.
 */
#ifndef PX_WORKER_H
#define PX_WORKER_H

#include "meta-client/mc_cluster.h"
#include "meta-client/mc_xzone.h"
#include "proxy/px_proxy.h"

#include <event2/util.h>

struct sockaddr;

#define PX_WORKER_SNAP_MS 100

typedef struct px_worker px_worker;
typedef struct px_workers px_workers;

/* How many event-loop threads `workers` asks for (0: the CPUs this process
 * may run on). */
int px_workers_count(const px_config *cfg);
/* Start n-1 worker threads beside the main thread (px->workers; nothing
 * for n <= 1). mcfg is copied (its xz replaced by each worker's own);
 * announce runs once on the main thread when the main thread and every
 * worker have their first backend view. Call after px_listen. 0, or -1
 * with errstr. */
int px_workers_start(px_proxy *px, int n, const mc_config *mcfg, void (*announce)(px_proxy *px),
                     char *errstr, size_t errstr_size);
/* 1 when every worker has its first view (and there are workers or none). */
int px_workers_ready(px_proxy *px);
/* Stop the threads and join them (their clients are closed). */
void px_workers_stop(px_proxy *px);
/* Free what is left (after the router and the main mc_cluster). */
void px_workers_free(px_proxy *px);

/* px_client.c's accept, on any thread: connections are spread round robin
 * over the threads, whichever thread's accept won; 1 when fd went to
 * another thread (it adopts it), 0 to serve it here. */
int px_workers_handoff(px_proxy *px, evutil_socket_t fd, struct sockaddr *sa, int salen);
/* limits.max_connections is for the process, whichever threads hold the
 * connections: take one of them for a new client connection (0: over the
 * limit, refuse it), and give it back when the connection goes. */
int px_workers_conn_take(px_proxy *px);
void px_workers_conn_give(px_proxy *px);
/* Worker side, px_client.c: relay rq to the main thread when it must run
 * there; 1 if relayed (answered later), 0 to serve it here. */
int px_worker_relay(px_req *rq);
/* 1 on a worker thread of a process with a WAL router: its Produce requests
 * are served by the main thread (px_worker_relay), so they are not streamed
 * here (px_cut.c). 0 on the main thread and without a wal section. */
int px_worker_relays_produce(const px_proxy *px);
/* Worker side: the relaying client connection is freed: its shadow goes. */
void px_worker_shadow_drop(px_client *cl);
/* Main side, px_req.c / px_client.c: a shadow's answers go back to its
 * worker, and a refusal closes the worker's connection. */
void px_worker_shadow_flush(px_client *shadow);
void px_worker_shadow_bad(px_client *shadow, const char *why);

/* Main side, px_reload.c: hold every worker parked (it touches nothing)
 * while a reload swaps the live keys in the shared config, then let them
 * go; and reload each worker's client_tls certificate meanwhile. */
void px_workers_pause(px_proxy *px);
void px_workers_resume(px_proxy *px);
void px_workers_tls_reload(px_proxy *px);
/* Main side, px_reload.c: keep a replaced config (its swapped-out values)
 * until exit, since workers may still read them; 0 kept (c is taken), -1
 * (no workers, or out of memory): the caller frees it. */
int px_workers_retire_config(px_proxy *px, px_config *c);
/* Main side: px->nodes changed (px_vcluster.c): every worker gets a copy. */
void px_workers_nodes_changed(px_proxy *px);
/* Main side, px_drain.c: stop the workers' listeners, and pass the drain
 * mode on (1: drain, 2: upgrade: close each connection once answered). */
void px_workers_drain(px_proxy *px);
/* Main side: add the workers' open connections and unanswered requests
 * (as of their last snapshot). */
void px_workers_drain_counts(px_proxy *px, int *nconn, int *nreq);
/* Main side: every worker publishes a snapshot now (waits at most 1 s), so
 * /metrics and the drain see what was done before they were asked. */
void px_workers_sync(px_proxy *px);
/* Main side, /metrics (after px_workers_sync): the sums over the main thread and the workers. Each
 * returns its argument filled in, or the main thread's own without workers. */
const px_metrics *px_workers_metrics(px_proxy *px, px_metrics *sum);
const mc_conn_stats *px_workers_upstream(px_proxy *px, mc_conn_stats *sum);
const mc_xz *px_workers_xz(px_proxy *px, mc_xz *sum);
/* kzproxy_workers and the per-worker connection gauges, Prometheus text. */
void px_workers_metrics_text(px_proxy *px, struct evbuffer *b);

#endif
