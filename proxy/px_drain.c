/*
 * Signals and the graceful drain.
 *
 * SIGTERM / SIGINT start a drain; a second one exits at once. Draining:
 *   - the Kafka listener is closed (new connections go to the other proxies;
 *     after an upgrade the new process holds its own copy of the socket);
 *   - KzHello answers carry KC_PEER_HELLO_DRAINING and /healthz answers 503,
 *     so peers drop this proxy from their virtual cluster;
 *   - this proxy's own Metadata and FindCoordinator answers leave it out
 *     (px_vcluster.c), so its clients move at their next refresh;
 *   - open WAL objects are sealed now (rt_flush);
 *   - requests in flight and peers' KzWalAppend finish (Fetch long polls are
 *     not waited for: the client asks again elsewhere); new Produce / Fetch
 *     partitions get NOT_LEADER_OR_FOLLOWER (px_route.c) and group and
 *     transaction requests NOT_COORDINATOR (px_pass.c), which make clients
 *     refresh their metadata.
 * The process exits (code 0) once nothing is in flight and the peers had
 * time to see the draining flag (two health-check periods), or at
 * drain_timeout_ms at the latest.
 */
#include "config.h"

#include "proxy/px_client_int.h"
#include "proxy/px_worker.h"

#include "common/kz_log.h"
#include "common/kz_time.h"
#include "meta-client/mc_peers.h"
#include "router/rt_router.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdio.h>

#define PX_DRAIN_TICK_MS 50
#define PX_DRAIN_LOG_MS 1000

/* Requests the drain does not wait for: a Fetch long poll only reads, and a
 * client that loses one on the closed connection asks again elsewhere. Group
 * joins are waited for (up to drain_timeout_ms): a client that sent its
 * JoinGroup / SyncGroup again while the first is still held by the
 * coordinator would confuse some backends (librdkafka's mock asserts). */
static int px_drain_abandonable(int16_t key)
{
    return key == KC_API_FETCH;
}

/* Client connections (peers' included) and their requests not answered or
 * whose answers are not written yet; *what: the API of one of them. */
static void px_drain_counts(px_proxy *px, int *nconn, int *nreq, const char **what)
{
    *nconn = 0;
    *nreq = 0;
    if (what)
        *what = NULL;
    for (px_client *cl = px->clients; cl; cl = cl->next) {
        (*nconn)++;
        int waiting = 0;
        px_req *rq;
        TAILQ_FOREACH(rq, &cl->reqs, link) {
            if (rq->done || (px->draining == 1 && px_drain_abandonable(rq->hdr.api_key)))
                continue;
            waiting++;
            if (what && *what == NULL)
                *what = kc_api_name(rq->hdr.api_key);
        }
        *nreq += waiting;
        if (waiting == 0 && px_client_unsent(cl) > 0)
            (*nreq)++; /* an answer still being written */
    }
    px_workers_drain_counts(px, nconn, nreq); /* the other threads' (their last snapshot) */
}

static void px_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    px_proxy *px = arg;
    (void)fd;
    (void)what;
    int64_t now = kz_mono_ms(), elapsed = now - px->drain_start_ms;
    int nconn, nreq;
    const char *api;
    px_drain_counts(px, &nconn, &nreq, &api);
    int wal = px->rt != NULL && rt_busy(px->rt);
    if (px->draining == 2) {
        /* Upgrade: the new process serves the same address; each connection
         * closes once its answers are out and the client reconnects there. */
        for (px_client *cl = px->clients, *next; cl; cl = next) {
            next = cl->next;
            px_client_drain(cl);
        }
        px_drain_counts(px, &nconn, &nreq, &api);
        if (nconn == 0 && !wal) {
            kz_info("drain (upgrade) finished in %lld ms: every connection handed over; exiting", (long long)elapsed);
            event_base_loopexit(px->base, NULL);
            return;
        }
    }
    /* Peers check every health_check_ms: after two periods each has seen the
     * flag (or lost the connection) and sends nothing new here. */
    int64_t grace = 2 * (int64_t)px->cfg->health_check_ms + 100;
    if (px->peers == NULL || mc_peers_count(px->peers) == 0)
        grace = 0;
    if (grace > px->cfg->drain_timeout_ms)
        grace = px->cfg->drain_timeout_ms;
    if (px->draining == 1 && nreq == 0 && !wal && elapsed >= grace) {
        kz_info("drain finished in %lld ms: nothing in flight; closing %d connections and exiting",
                (long long)elapsed, nconn);
        event_base_loopexit(px->base, NULL);
        return;
    }
    if (elapsed >= px->cfg->drain_timeout_ms) {
        kz_warn("drain timed out after %lld ms (drain_timeout_ms): %d requests in flight on %d connections "
                "(%s first)%s; exiting anyway", (long long)elapsed, nreq, nconn, api ? api : "none",
                wal ? ", WAL objects not delivered" : "");
        event_base_loopexit(px->base, NULL);
        return;
    }
    if (now - px->drain_log_ms >= PX_DRAIN_LOG_MS) {
        px->drain_log_ms = now;
        kz_info("draining for %lld ms: %d requests in flight on %d connections (%s first)%s", (long long)elapsed,
                nreq, nconn, api ? api : "none", wal ? ", WAL objects in flight" : "");
    }
}

void px_drain_start(px_proxy *px, const char *why)
{
    if (px->drain_ev)
        return;
    if (!px->draining)
        px->draining = 1; /* 2 (upgrade) is set by px_upgrade.c */
    px->drain_start_ms = px->drain_log_ms = kz_mono_ms();
    if (px->listener) {
        evconnlistener_free(px->listener); /* closes our copy of the socket */
        px->listener = NULL;
    }
    px_workers_drain(px); /* theirs too */
    int nconn, nreq;
    px_drain_counts(px, &nconn, &nreq, NULL);
    kz_info("draining (%s): stopped accepting; %d requests in flight on %d connections; exiting when idle "
            "or within %d ms (drain_timeout_ms)", why, nreq, nconn, px->cfg->drain_timeout_ms);
    /* Leave the virtual cluster this proxy's own answers describe (not in
     * an upgrade: the new process is the same node at the same address). */
    px_vc_nodes_rebuild(px);
    if (px->rt)
        rt_flush(px->rt);
    struct timeval tv = {0, PX_DRAIN_TICK_MS * 1000};
    px->drain_ev = event_new(px->base, -1, EV_PERSIST, px_drain_tick, px);
    if (px->drain_ev == NULL || event_add(px->drain_ev, &tv) != 0) {
        kz_err("drain: out of memory for its timer; exiting now");
        event_base_loopexit(px->base, NULL);
    }
}

static void px_sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
    px_proxy *px = arg;
    (void)what;
    if (px->draining) {
        kz_warn("received signal %d while draining: exiting now", (int)sig);
        event_base_loopexit(px->base, NULL);
        return;
    }
    px_drain_start(px, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

static void px_sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    px_proxy *px = arg;
    (void)sig;
    (void)what;
    char err[512];
    (void)px_reload(px, "SIGHUP", err, sizeof(err));
}

static void px_sigusr2_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    px_upgrade_start(arg);
}

int px_signals_start(px_proxy *px)
{
    static const int sigs[4] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2};
    event_callback_fn cbs[4] = {px_sigterm_cb, px_sigterm_cb, px_sighup_cb, px_sigusr2_cb};
    for (int i = 0; i < 4; i++) {
        px->sigs[i] = evsignal_new(px->base, sigs[i], cbs[i], px);
        if (px->sigs[i] == NULL || event_add(px->sigs[i], NULL) != 0)
            return -1;
    }
    return 0;
}

void px_signals_stop(px_proxy *px)
{
    for (int i = 0; i < 4; i++) {
        if (px->sigs[i])
            event_free(px->sigs[i]);
        px->sigs[i] = NULL;
    }
    if (px->drain_ev)
        event_free(px->drain_ev);
    px->drain_ev = NULL;
}
