/*
 * Worker threads (the `workers` key): see px_worker.h for the model. The
 * main thread creates every worker's objects, then the thread runs its own
 * loop; the two talk only through the mailboxes below.
 */
#include "config.h"

#include "proxy/px_worker.h"

#include "codec/kc_crc32c.h"
#include "common/kz_log.h"
#include "proxy/px_client_int.h"
#include "proxy/px_fcache.h"
#include "proxy/px_sasl.h"
#include "proxy/px_tls.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* To the main thread: RELAY, SHADOW_FREE, READY; to a worker: the rest. */
enum { PX_MSG_RELAY, PX_MSG_SHADOW_FREE, PX_MSG_READY, PX_MSG_ANSWER, PX_MSG_NODES, PX_MSG_DRAIN, PX_MSG_STOP };

typedef struct px_msg {
    struct px_msg *next;
    int kind;
    px_worker *w;
    px_req *rq;            /* RELAY, ANSWER: the worker's request */
    px_client *shadow;     /* RELAY, SHADOW_FREE: allocated by the worker, set up and freed by main */
    kc_frame *frame;       /* RELAY: the request frame (a reference) */
    kc_req_hdr hdr;        /* RELAY: its header (strings into frame) */
    size_t body_off;
    struct evbuffer *resp; /* ANSWER: the framed response */
    int no_response;       /* ANSWER: answered without a response (acks=0) */
    char *text;            /* RELAY: the principal (NULL: none); ANSWER: why the connection closes */
    char zone[64];         /* RELAY */
    char peer[INET6_ADDRSTRLEN + 8];
    px_node *nodes;        /* NODES: one block, as px_vcluster.c builds it */
    int nnodes;
    int draining;          /* DRAIN */
} px_msg;

/* A mutex-protected FIFO whose owner's loop wakes on an eventfd. */
typedef struct px_mbox {
    pthread_mutex_t mu;
    px_msg *head, *tail;
    int efd;
    struct event *ev;
    int closed; /* the owner is gone: posts fail */
} px_mbox;

struct px_worker {
    int index;            /* 1..n-1 (0 is the main thread) */
    px_proxy px;          /* this thread's proxy */
    px_proxy *main;
    px_workers *set;
    pthread_t thread;
    int started;          /* its thread runs */
    int joined;           /* its thread ran and ended (it tore its loop's objects down) */
    px_mbox box;
    struct event *tick;   /* snapshot, and the upgrade drain */
    mc_xz xz;
    int ready;            /* main side: its READY arrived */
    pthread_mutex_t snap_mu; /* guards the snapshot below */
    px_metrics snap;
    mc_xz snap_xz;
    mc_conn_stats snap_us;
    px_fcache_stats snap_fc;
    int snap_nconn, snap_nreq;
};

struct px_workers {
    int n;                /* threads beside the main thread */
    px_worker **w;
    px_mbox box;          /* the main thread's */
    mc_config mcfg;
    void (*announce)(px_proxy *px);
    int nready;
    int announced;
};

/* Metrics are structs of uint64_t only: summed as arrays. */
_Static_assert(sizeof(px_metrics) % sizeof(uint64_t) == 0, "px_metrics holds uint64_t only");
_Static_assert(sizeof(mc_xz) % sizeof(uint64_t) == 0, "mc_xz holds uint64_t only");
_Static_assert(sizeof(mc_conn_stats) % sizeof(uint64_t) == 0, "mc_conn_stats holds uint64_t only");
_Static_assert(sizeof(px_fcache_stats) % sizeof(uint64_t) == 0, "px_fcache_stats holds uint64_t only");

static void px_u64_add(void *dst, const void *src, size_t size)
{
    uint64_t *d = dst;
    const uint64_t *s = src;
    for (size_t i = 0; i < size / sizeof(uint64_t); i++)
        d[i] += s[i];
}

/* ---------------- mailboxes ---------------- */

static void px_msg_free(px_msg *m)
{
    if (m == NULL)
        return;
    kc_frame_release(m->frame);
    if (m->resp)
        evbuffer_free(m->resp);
    free(m->text);
    free(m->nodes);
    free(m);
}

static int px_mbox_init(px_mbox *mb, struct event_base *base, event_callback_fn cb, void *arg)
{
    pthread_mutex_init(&mb->mu, NULL);
    mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mb->efd < 0)
        return -1;
    mb->ev = event_new(base, mb->efd, EV_READ | EV_PERSIST, cb, arg);
    if (mb->ev == NULL || event_add(mb->ev, NULL) != 0)
        return -1;
    return 0;
}

/* Queue m for the owner; 0, or -1 when the owner is gone (m not taken). */
static int px_mbox_post(px_mbox *mb, px_msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&mb->mu);
    if (mb->closed) {
        pthread_mutex_unlock(&mb->mu);
        return -1;
    }
    /* The owner reads the eventfd before it takes the queue, so a wake per
     * empty-to-non-empty step loses nothing. */
    int wake = mb->head == NULL;
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    pthread_mutex_unlock(&mb->mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t r = write(mb->efd, &one, sizeof(one));
        (void)r; /* EAGAIN: the counter is already non-zero */
    }
    return 0;
}

static px_msg *px_mbox_take(px_mbox *mb, int close)
{
    uint64_t v;
    if (mb->efd >= 0) {
        ssize_t r = read(mb->efd, &v, sizeof(v));
        (void)r;
    }
    pthread_mutex_lock(&mb->mu);
    px_msg *m = mb->head;
    mb->head = mb->tail = NULL;
    if (close)
        mb->closed = 1;
    pthread_mutex_unlock(&mb->mu);
    return m;
}

/* The owner's last act: refuse further posts, drop what is queued. */
static void px_mbox_close(px_mbox *mb)
{
    px_msg *m = px_mbox_take(mb, 1);
    while (m) {
        px_msg *next = m->next;
        px_msg_free(m);
        m = next;
    }
    if (mb->ev) {
        event_free(mb->ev);
        mb->ev = NULL;
    }
}

static void px_mbox_destroy(px_mbox *mb)
{
    if (mb->efd >= 0)
        close(mb->efd);
    mb->efd = -1;
    pthread_mutex_destroy(&mb->mu);
}

/* ---------------- helpers ---------------- */

int px_workers_count(const px_config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

/* A copy of a nodes block (px_vcluster.c's layout: nodes, then strings). */
static px_node *px_nodes_dup(const px_node *in, int n)
{
    size_t sb = 0;
    for (int i = 0; i < n; i++)
        sb += strlen(in[i].zone) + strlen(in[i].host) + 2;
    px_node *out = malloc((size_t)n * sizeof(px_node) + sb + 1);
    if (out == NULL)
        return NULL;
    char *pos = (char *)(out + n);
    for (int i = 0; i < n; i++) {
        out[i] = in[i];
        size_t lz = strlen(in[i].zone) + 1, lh = strlen(in[i].host) + 1;
        memcpy(pos, in[i].zone, lz);
        out[i].zone = pos;
        pos += lz;
        memcpy(pos, in[i].host, lh);
        out[i].host = pos;
        pos += lh;
    }
    return out;
}

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
        if (waiting == 0 && cl->bev && evbuffer_get_length(bufferevent_get_output(cl->bev)) > 0)
            n++;
    }
    return n;
}

static void px_worker_snapshot(px_worker *w)
{
    int nreq = px_worker_nreq(&w->px);
    pthread_mutex_lock(&w->snap_mu);
    w->snap = w->px.m;
    w->snap_xz = w->xz;
    w->snap_us = *mc_cluster_stats(w->px.mc);
    w->snap_fc = *px_fcache_stats_get(w->px.fcache);
    w->snap_nconn = (int)w->px.m.connections_active;
    w->snap_nreq = nreq;
    pthread_mutex_unlock(&w->snap_mu);
}

/* ---------------- worker side ---------------- */

static void px_worker_tick(evutil_socket_t fd, short what, void *arg)
{
    px_worker *w = arg;
    (void)fd;
    (void)what;
    if (w->px.draining == 2) {
        for (px_client *cl = w->px.clients, *next; cl; cl = next) {
            next = cl->next;
            px_client_drain(cl);
        }
    }
    px_worker_snapshot(w);
}

static void px_worker_answer(px_msg *m)
{
    px_req *rq = m->rq;
    px_client *cl = rq->cl;
    if (m->text != NULL) {
        px_client_bad(cl, "%s", m->text);
    } else if (m->resp == NULL) {
        rq->no_response = 1;
    } else {
        rq->resp = m->resp;
        m->resp = NULL;
    }
    rq->done = 1;
    px_client_flush(cl);
}

static void px_worker_box_cb(evutil_socket_t fd, short what, void *arg)
{
    px_worker *w = arg;
    px_proxy *px = &w->px;
    (void)fd;
    (void)what;
    px_msg *m = px_mbox_take(&w->box, 0);
    while (m) {
        px_msg *next = m->next;
        switch (m->kind) {
        case PX_MSG_ANSWER:
            px_worker_answer(m);
            break;
        case PX_MSG_NODES:
            free(px->nodes);
            px->nodes = m->nodes;
            px->nnodes = m->nnodes;
            m->nodes = NULL;
            break;
        case PX_MSG_DRAIN:
            px->draining = m->draining;
            if (px->listener) {
                evconnlistener_free(px->listener);
                px->listener = NULL;
            }
            break;
        case PX_MSG_STOP:
            px_listen_close(px);
            event_base_loopexit(px->base, NULL);
            break;
        default:
            break;
        }
        px_msg_free(m);
        m = next;
    }
}

static void px_worker_ready_cb(mc_view *view, const char *err, void *arg)
{
    px_worker *w = arg;
    (void)view;
    (void)err;
    w->px.ready = 1;
    px_msg *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return;
    m->kind = PX_MSG_READY;
    m->w = w;
    if (px_mbox_post(&w->set->box, m) != 0)
        px_msg_free(m);
}

static void *px_worker_run(void *arg)
{
    px_worker *w = arg;
    px_proxy *px = &w->px;
    mc_cluster_start(px->mc, px_worker_ready_cb, w);
    event_base_dispatch(px->base);
    /* Stopped (its clients are closed): tear down on this thread. */
    px_worker_snapshot(w);
    px_mbox_close(&w->box);
    event_free(w->tick);
    w->tick = NULL;
    mc_cluster_free(px->mc);
    px->mc = NULL;
    event_base_loop(px->base, EVLOOP_NONBLOCK);
    return NULL;
}

int px_worker_relay(px_req *rq)
{
    px_client *cl = rq->cl;
    px_worker *w = cl->px->worker;
    int16_t k = rq->hdr.api_key;
    if (!(k == KC_API_KZ_HELLO || k == KC_API_KZ_WAL_APPEND || (k == KC_API_PRODUCE && w->main->rt != NULL)))
        return 0;
    px_msg *m = calloc(1, sizeof(*m));
    if (m == NULL || (cl->shadow == NULL && (cl->shadow = calloc(1, sizeof(*cl->shadow))) == NULL)) {
        free(m);
        px_req_reject(rq, "out of memory relaying a request to the main thread");
        return 1;
    }
    m->kind = PX_MSG_RELAY;
    m->w = w;
    m->rq = rq;
    m->shadow = cl->shadow;
    m->frame = kc_frame_keep(rq->frame);
    m->hdr = rq->hdr;
    m->body_off = rq->body_off;
    m->text = cl->principal ? strdup(cl->principal) : NULL;
    snprintf(m->zone, sizeof(m->zone), "%s", cl->zone);
    snprintf(m->peer, sizeof(m->peer), "%s", cl->peer);
    if ((cl->principal && m->text == NULL) || px_mbox_post(&w->set->box, m) != 0) {
        px_msg_free(m);
        px_req_reject(rq, "cannot relay a request to the main thread (out of memory or stopping)");
    }
    return 1;
}

void px_worker_shadow_drop(px_client *cl)
{
    px_worker *w = cl->px->worker;
    px_msg *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return; /* leaks the shadow: out of memory already */
    m->kind = PX_MSG_SHADOW_FREE;
    m->w = w;
    m->shadow = cl->shadow;
    cl->shadow = NULL;
    if (px_mbox_post(&w->set->box, m) != 0)
        px_msg_free(m);
}

/* ---------------- main side ---------------- */

static void px_shadow_noop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void px_main_relay(px_proxy *px, px_msg *m)
{
    px_client *sh = m->shadow;
    if (sh->px == NULL) {
        sh->px = px;
        sh->relay = m->w;
        sh->refcnt = 1; /* the worker's connection's; dropped on SHADOW_FREE */
        sh->fd = -1;
        sh->zone_checked = 1;
        sh->auth.state = PX_AUTH_OK; /* the worker's gate let the request through */
        TAILQ_INIT(&sh->reqs);
        snprintf(sh->peer, sizeof(sh->peer), "%s", m->peer);
        sh->resume = event_new(px->base, -1, 0, px_shadow_noop, NULL);
    }
    if ((sh->principal == NULL) != (m->text == NULL) || (m->text && strcmp(sh->principal, m->text) != 0)) {
        free(sh->principal);
        sh->principal = m->text;
        m->text = NULL;
    }
    snprintf(sh->zone, sizeof(sh->zone), "%s", m->zone);
    px_req *srq = sh->resume ? calloc(1, sizeof(*srq)) : NULL;
    if (srq == NULL) {
        /* Refused: the message goes back as the answer (px_main_box_cb). */
        m->kind = PX_MSG_ANSWER;
        kc_frame_release(m->frame);
        m->frame = NULL;
        free(m->text);
        m->text = strdup("out of memory relaying a request");
        return;
    }
    srq->cl = sh;
    srq->frame = m->frame;
    m->frame = NULL;
    srq->hdr = m->hdr;
    srq->body_off = m->body_off;
    srq->relay_of = m->rq;
    sh->refcnt++;
    sh->ninflight++;
    sh->inflight_bytes += srq->frame->len;
    TAILQ_INSERT_TAIL(&sh->reqs, srq, link);
    if (srq->hdr.api_key == KC_API_PRODUCE)
        px_route_produce(srq);
    else
        px_peer_dispatch(srq);
}

void px_worker_shadow_bad(px_client *sh, const char *why)
{
    if (sh->relay_bad == NULL)
        sh->relay_bad = strdup(why);
    sh->closed = 1; /* px_client_conn gives no more broker connections */
}

void px_worker_shadow_flush(px_client *sh)
{
    px_worker *w = sh->relay;
    px_req *rq, *next;
    sh->refcnt++;
    for (rq = TAILQ_FIRST(&sh->reqs); rq != NULL; rq = next) {
        next = TAILQ_NEXT(rq, link);
        if (!rq->done)
            continue;
        TAILQ_REMOVE(&sh->reqs, rq, link);
        px_msg *m = calloc(1, sizeof(*m));
        if (m != NULL) {
            m->kind = PX_MSG_ANSWER;
            m->w = w;
            m->rq = rq->relay_of;
            if (rq->resp == NULL && !rq->no_response)
                m->text = strdup(sh->relay_bad ? sh->relay_bad : "request refused");
            m->resp = rq->resp;
            rq->resp = NULL;
            if (px_mbox_post(&w->box, m) != 0)
                px_msg_free(m);
        } else {
            kz_err("client %s: out of memory passing an answer back to worker %d; the connection stalls",
                   sh->peer, w->index);
        }
        sh->ninflight--;
        sh->inflight_bytes -= rq->frame->len;
        if (rq->resp)
            evbuffer_free(rq->resp);
        kc_frame_release(rq->frame);
        free(rq);
        px_client_release(sh);
    }
    px_client_release(sh);
}

static void px_main_shadow_free(px_client *sh)
{
    if (sh == NULL)
        return;
    if (sh->px == NULL) {
        free(sh);
        return;
    }
    for (int i = 0; i < sh->npriv; i++)
        mc_conn_free(sh->priv[i].conn);
    sh->npriv = 0;
    free(sh->relay_bad);
    sh->relay_bad = NULL;
    px_client_release(sh);
}

static void px_main_box_cb(evutil_socket_t fd, short what, void *arg)
{
    px_proxy *px = arg;
    px_workers *set = px->workers;
    (void)fd;
    (void)what;
    px_msg *m = px_mbox_take(&set->box, 0);
    while (m) {
        px_msg *next = m->next;
        switch (m->kind) {
        case PX_MSG_RELAY:
            px_main_relay(px, m);
            if (m->kind == PX_MSG_ANSWER && px_mbox_post(&m->w->box, m) == 0)
                m = NULL; /* refused: back to the worker */
            break;
        case PX_MSG_SHADOW_FREE:
            px_main_shadow_free(m->shadow);
            break;
        case PX_MSG_READY:
            if (!m->w->ready) {
                m->w->ready = 1;
                set->nready++;
            }
            if (px->ready && set->nready == set->n && !set->announced) {
                set->announced = 1;
                set->announce(px);
            }
            break;
        default:
            break;
        }
        px_msg_free(m);
        m = next;
    }
}

int px_workers_ready(px_proxy *px)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return 1;
    if (set->nready < set->n)
        return 0;
    set->announced = 1;
    return 1;
}

static px_worker *px_worker_new(px_proxy *mpx, px_workers *set, int index, char *errstr, size_t n)
{
    px_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(errstr, n, "out of memory for worker %d", index);
        return NULL;
    }
    w->index = index;
    w->main = mpx;
    w->set = set;
    w->box.efd = -1;
    pthread_mutex_init(&w->snap_mu, NULL);
    px_proxy *px = &w->px;
    px->worker = w;
    px->cfg = mpx->cfg;
    px->config_path = mpx->config_path;
    px->log_level_cli = mpx->log_level_cli;
    px->started_ms = mpx->started_ms;
    px->started_wall_ms = mpx->started_wall_ms;
    px->xz = &w->xz;
    if ((px->base = event_base_new()) == NULL) {
        snprintf(errstr, n, "worker %d: cannot create its event loop", index);
        return w;
    }
    px->dns = evdns_base_new(px->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (px->dns == NULL && (px->dns = evdns_base_new(px->base, 0)) != NULL)
        evdns_base_load_hosts(px->dns, NULL);
    mc_config mcfg = set->mcfg;
    mcfg.xz = &w->xz;
    if (px->dns == NULL || (px->mc = mc_cluster_new(px->base, px->dns, &mcfg)) == NULL) {
        snprintf(errstr, n, "worker %d: cannot create its backend client", index);
        return w;
    }
    if (px->cfg->client_tls.enabled && (px->tls = px_tls_new(&px->cfg->client_tls, errstr, n)) == NULL)
        return w;
    if (px->cfg->client_sasl.enabled && (px->csasl = px_sasl_new(&px->cfg->client_sasl, errstr, n)) == NULL)
        return w;
    if (mpx->nnodes > 0 && (px->nodes = px_nodes_dup(mpx->nodes, mpx->nnodes)) == NULL) {
        snprintf(errstr, n, "out of memory for worker %d", index);
        return w;
    }
    px->nnodes = mpx->nnodes;
    px->draining = mpx->draining;
    struct timeval tv = {0, PX_WORKER_SNAP_MS * 1000};
    if (px_mbox_init(&w->box, px->base, px_worker_box_cb, w) != 0 ||
        (w->tick = event_new(px->base, -1, EV_PERSIST, px_worker_tick, w)) == NULL || event_add(w->tick, &tv) != 0) {
        snprintf(errstr, n, "worker %d: cannot set up its mailbox: %s", index, strerror(errno));
        return w;
    }
    /* Its own event on the one listening socket. */
    int fd = mpx->listener ? dup(evconnlistener_get_fd(mpx->listener)) : -1;
    if (fd < 0 ||
        (px->listener = evconnlistener_new(px->base, px_accept_cb, px,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        snprintf(errstr, n, "worker %d: cannot watch the listening socket: %s", index, strerror(errno));
        return w;
    }
    errstr[0] = '\0';
    return w;
}

/* Free what the worker's thread did not (or all of it, if it never ran). */
static void px_worker_free(px_worker *w)
{
    if (w == NULL)
        return;
    px_proxy *px = &w->px;
    if (!w->joined) { /* its thread never ran: nothing was torn down */
        px_listen_close(px);
        px_mbox_close(&w->box);
        if (w->tick)
            event_free(w->tick);
        mc_cluster_free(px->mc);
        px->mc = NULL;
    }
    px_mbox_destroy(&w->box);
    free(px->nodes);
    px_sasl_free(px->csasl);
    px_tls_free(px->tls);
    px_fcache_free(px->fcache);
    if (px->dns)
        evdns_base_free(px->dns, 0);
    if (px->base)
        event_base_free(px->base);
    pthread_mutex_destroy(&w->snap_mu);
    free(w);
}

int px_workers_start(px_proxy *px, int n, const mc_config *mcfg, void (*announce)(px_proxy *px),
                     char *errstr, size_t errstr_size)
{
    if (n <= 1)
        return 0;
    uint8_t probe = 0;
    (void)kc_crc32c(0, &probe, 1); /* picks its implementation once, before any thread */
    px_workers *set = calloc(1, sizeof(*set));
    if (set == NULL || (set->w = calloc((size_t)n, sizeof(*set->w))) == NULL) {
        free(set);
        snprintf(errstr, errstr_size, "out of memory for %d workers", n);
        return -1;
    }
    set->mcfg = *mcfg;
    set->announce = announce;
    set->box.efd = -1;
    px->workers = set;
    if (px_mbox_init(&set->box, px->base, px_main_box_cb, px) != 0) {
        snprintf(errstr, errstr_size, "cannot set up the workers' mailbox: %s", strerror(errno));
        return -1;
    }
    for (int i = 1; i < n; i++) {
        px_worker *w = px_worker_new(px, set, i, errstr, errstr_size);
        if (w == NULL)
            return -1;
        set->w[set->n++] = w;
        if (errstr[0] != '\0')
            return -1;
    }
    for (int i = 0; i < set->n; i++) {
        int rc = pthread_create(&set->w[i]->thread, NULL, px_worker_run, set->w[i]);
        if (rc != 0) {
            snprintf(errstr, errstr_size, "cannot start worker %d: %s", i + 1, strerror(rc));
            return -1;
        }
        set->w[i]->started = 1;
    }
    kz_info("workers: %d event-loop threads (the main thread and %d more) accept clients on one socket", n,
            set->n);
    return 0;
}

static void px_workers_post(px_worker *w, int kind, int draining)
{
    px_msg *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        kz_err("out of memory telling worker %d to %s", w->index, kind == PX_MSG_STOP ? "stop" : "drain");
        return;
    }
    m->kind = kind;
    m->w = w;
    m->draining = draining;
    if (px_mbox_post(&w->box, m) != 0)
        px_msg_free(m);
}

void px_workers_stop(px_proxy *px)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return;
    for (int i = 0; i < set->n; i++)
        if (set->w[i]->started)
            px_workers_post(set->w[i], PX_MSG_STOP, 0);
    for (int i = 0; i < set->n; i++) {
        if (set->w[i]->started) {
            pthread_join(set->w[i]->thread, NULL);
            set->w[i]->started = 0;
            set->w[i]->joined = 1;
        }
    }
}

void px_workers_free(px_proxy *px)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return;
    px_workers_stop(px);
    px_mbox_close(&set->box);
    px_mbox_destroy(&set->box);
    for (int i = 0; i < set->n; i++)
        px_worker_free(set->w[i]);
    free(set->w);
    free(set);
    px->workers = NULL;
}

void px_workers_nodes_changed(px_proxy *px)
{
    px_workers *set = px->workers;
    for (int i = 0; set != NULL && i < set->n; i++) {
        px_msg *m = calloc(1, sizeof(*m));
        if (m == NULL || (m->nodes = px_nodes_dup(px->nodes, px->nnodes)) == NULL) {
            free(m);
            kz_err("out of memory passing the virtual cluster to worker %d; it keeps the previous one", i + 1);
            continue;
        }
        m->kind = PX_MSG_NODES;
        m->w = set->w[i];
        m->nnodes = px->nnodes;
        if (px_mbox_post(&set->w[i]->box, m) != 0)
            px_msg_free(m);
    }
}

void px_workers_drain(px_proxy *px)
{
    px_workers *set = px->workers;
    for (int i = 0; set != NULL && i < set->n; i++)
        px_workers_post(set->w[i], PX_MSG_DRAIN, px->draining);
}

void px_workers_drain_counts(px_proxy *px, int *nconn, int *nreq)
{
    px_workers *set = px->workers;
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

const px_fcache_stats *px_workers_fcache(px_proxy *px, px_fcache_stats *sum)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return px_fcache_stats_get(px->fcache);
    *sum = *px_fcache_stats_get(px->fcache);
    for (int i = 0; i < set->n; i++) {
        pthread_mutex_lock(&set->w[i]->snap_mu);
        px_u64_add(sum, &set->w[i]->snap_fc, sizeof(*sum));
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
