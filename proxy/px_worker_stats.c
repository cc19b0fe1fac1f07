/*
 * Workers' metrics: each publishes a snapshot every PX_WORKER_SNAP_MS under
 * its mutex; /metrics and the drain sum them with the main thread's own.
 */
#include "config.h"

#include "proxy/px_worker_int.h"

#include "codec/kc_buf.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Metrics are structs of uint64_t only: summed as arrays. */
_Static_assert(sizeof(px_metrics) % sizeof(uint64_t) == 0, "px_metrics holds uint64_t only");
_Static_assert(sizeof(mc_xz) % sizeof(uint64_t) == 0, "mc_xz holds uint64_t only");
_Static_assert(sizeof(mc_conn_stats) % sizeof(uint64_t) == 0, "mc_conn_stats holds uint64_t only");

static void px_u64_add(void *dst, const void *src, size_t size)
{
    uint64_t *d = dst;
    const uint64_t *s = src;
    for (size_t i = 0; i < size / sizeof(uint64_t); i++)
        d[i] += s[i];
}

/* ---------------- mailboxes ---------------- */

/* A worker's requests not answered or not written (px_drain.c's count). */
static int px_worker_nreq(px_proxy *px)
{
    int n = 0;
    for (px_client *cl = px->clients; cl; cl = cl->next) {
        int waiting = 0;
        px_req *rq;
        TAILQ_FOREACH(rq, &cl->reqs, link) {
            if (rq->done || (px->draining == 1 && rq->hdr.api_key == KC_API_FETCH))
                continue;
            waiting++;
        }
        n += waiting;
        if (waiting == 0 && px_client_unsent(cl) > 0)
            n++;
    }
    return n;
}

void px_worker_snapshot(px_worker *w)
{
    int nreq = px_worker_nreq(&w->px);
    w->px.m.frame_pool_bytes = kc_frame_kept_bytes(); /* this thread's */
    pthread_mutex_lock(&w->snap_mu);
    w->snap = w->px.m;
    w->snap_xz = w->xz;
    w->snap_us = *mc_cluster_stats(w->px.mc);
    w->snap_nconn = (int)w->px.m.connections_active;
    w->snap_nreq = nreq;
    pthread_mutex_unlock(&w->snap_mu);
}

/* ---------------- worker side ---------------- */

void px_workers_drain_counts(px_proxy *px, int *nconn, int *nreq)
{
    px_workers *set = px->workers;
    px_workers_sync(px);
    for (int i = 0; set != NULL && i < set->n; i++) {
        px_worker *w = set->w[i];
        pthread_mutex_lock(&w->snap_mu);
        *nconn += w->snap_nconn;
        *nreq += w->snap_nreq;
        pthread_mutex_unlock(&w->snap_mu);
    }
}

const px_metrics *px_workers_metrics(px_proxy *px, px_metrics *sum)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return &px->m;
    *sum = px->m;
    for (int i = 0; i < set->n; i++) {
        pthread_mutex_lock(&set->w[i]->snap_mu);
        px_u64_add(sum, &set->w[i]->snap, sizeof(*sum));
        pthread_mutex_unlock(&set->w[i]->snap_mu);
    }
    return sum;
}

const mc_conn_stats *px_workers_upstream(px_proxy *px, mc_conn_stats *sum)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return mc_cluster_stats(px->mc);
    *sum = *mc_cluster_stats(px->mc);
    for (int i = 0; i < set->n; i++) {
        pthread_mutex_lock(&set->w[i]->snap_mu);
        px_u64_add(sum, &set->w[i]->snap_us, sizeof(*sum));
        pthread_mutex_unlock(&set->w[i]->snap_mu);
    }
    return sum;
}

const mc_xz *px_workers_xz(px_proxy *px, mc_xz *sum)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return px->xz;
    *sum = *px->xz;
    for (int i = 0; i < set->n; i++) {
        pthread_mutex_lock(&set->w[i]->snap_mu);
        px_u64_add(sum, &set->w[i]->snap_xz, sizeof(*sum));
        pthread_mutex_unlock(&set->w[i]->snap_mu);
    }
    return sum;
}


void px_workers_metrics_text(px_proxy *px, struct evbuffer *b)
{
    px_workers *set = px->workers;
    int n = set ? set->n + 1 : 1;
    evbuffer_add_printf(b, "# HELP kzproxy_workers Event-loop threads serving clients (the workers key).\n"
                           "# TYPE kzproxy_workers gauge\nkzproxy_workers %d\n", n);
    static const char *const names[2] = {"kzproxy_worker_connections_active",
                                         "kzproxy_worker_connections_accepted_total"};
    evbuffer_add_printf(b, "# HELP %s Client connections open, by worker (0: the main thread).\n"
                           "# TYPE %s gauge\n", names[0], names[0]);
    evbuffer_add_printf(b, "%s{worker=\"0\"} %" PRIu64 "\n", names[0], px->m.connections_active);
    for (int i = 1; i < n; i++) {
        pthread_mutex_lock(&set->w[i - 1]->snap_mu);
        uint64_t v = set->w[i - 1]->snap.connections_active;
        pthread_mutex_unlock(&set->w[i - 1]->snap_mu);
        evbuffer_add_printf(b, "%s{worker=\"%d\"} %" PRIu64 "\n", names[0], i, v);
    }
    evbuffer_add_printf(b, "# HELP %s Client connections accepted, by worker (0: the main thread).\n"
                           "# TYPE %s counter\n", names[1], names[1]);
    evbuffer_add_printf(b, "%s{worker=\"0\"} %" PRIu64 "\n", names[1], px->m.connections_accepted);
    for (int i = 1; i < n; i++) {
        pthread_mutex_lock(&set->w[i - 1]->snap_mu);
        uint64_t v = set->w[i - 1]->snap.connections_accepted;
        pthread_mutex_unlock(&set->w[i - 1]->snap_mu);
        evbuffer_add_printf(b, "%s{worker=\"%d\"} %" PRIu64 "\n", names[1], i, v);
    }
}
