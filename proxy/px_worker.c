/*
 * Worker threads (the `workers` key): see px_worker.h for the model. The
 * main thread creates every worker's objects, then the thread runs its own
 * loop; the threads talk only through mailboxes (px_worker_box.c).
 */
#include "config.h"

#include "proxy/px_worker_int.h"

#include "codec/kc_buf.h"
#include "codec/kc_crc32c.h"
#include "common/kz_log.h"
#include "common/kz_time.h"
#include "proxy/px_sasl.h"
#include "proxy/px_tls.h"

#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Wait here, touching nothing, while the main thread holds the workers. */
static void px_worker_park(px_workers *set)
{
    pthread_mutex_lock(&set->park_mu);
    set->parked++;
    pthread_cond_broadcast(&set->park_cv);
    while (set->paused)
        pthread_cond_wait(&set->park_cv, &set->park_mu);
    set->parked--;
    pthread_mutex_unlock(&set->park_mu);
}

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
    kc_frame_pool_decay(kz_mono_ms(), w->px.cfg->limits.frame_pool_idle_ms); /* before the gauge */
    px_worker_snapshot(w);
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
        case PX_MSG_ADOPT:
            px_accept_cb(NULL, m->fd, (struct sockaddr *)&m->ss, m->salen, px);
            m->fd = -1;
            break;
        case PX_MSG_PAUSE:
            px_worker_park(w->set);
            break;
        case PX_MSG_SNAP:
            px_worker_snapshot(w);
            pthread_mutex_lock(&w->set->park_mu);
            w->set->snapped++;
            pthread_cond_broadcast(&w->set->park_cv);
            pthread_mutex_unlock(&w->set->park_mu);
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
        case PX_MSG_ADOPT:
            px_accept_cb(NULL, m->fd, (struct sockaddr *)&m->ss, m->salen, px);
            m->fd = -1;
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

/* The set a px belongs to (main: its own), or NULL with workers: 1. */
px_workers *px_set_of(px_proxy *px)
{
    return px->worker ? px->worker->set : px->workers;
}

int px_workers_handoff(px_proxy *px, evutil_socket_t fd, struct sockaddr *sa, int salen)
{
    px_workers *set = px_set_of(px);
    if (set == NULL || (size_t)salen > sizeof(struct sockaddr_storage))
        return 0;
    int me = px->worker ? px->worker->index : 0;
    int to = (int)(__atomic_fetch_add(&set->rr, 1, __ATOMIC_RELAXED) % (unsigned)(set->n + 1));
    if (to == me)
        return 0;
    px_msg *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return 0;
    m->kind = PX_MSG_ADOPT;
    m->fd = fd;
    memcpy(&m->ss, sa, (size_t)salen);
    m->salen = salen;
    if (px_mbox_post(to == 0 ? &set->box : &set->w[to - 1]->box, m) != 0) {
        m->fd = -1; /* gone (stopping): serve it here */
        px_msg_free(m);
        return 0;
    }
    return 1;
}

int px_workers_conn_take(px_proxy *px)
{
    px_workers *set = px_set_of(px);
    uint64_t max = (uint64_t)px->cfg->limits.max_connections;
    if (set == NULL)
        return px->m.connections_active < max;
    if (__atomic_add_fetch(&set->conns, 1, __ATOMIC_RELAXED) <= max)
        return 1;
    __atomic_sub_fetch(&set->conns, 1, __ATOMIC_RELAXED);
    return 0;
}

void px_workers_conn_give(px_proxy *px)
{
    px_workers *set = px_set_of(px);
    if (set != NULL)
        __atomic_sub_fetch(&set->conns, 1, __ATOMIC_RELAXED);
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
    px->fcache = mpx->fcache; /* one fetch cache per process (it locks) */
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
    /* px->fcache is the main thread's (shared), freed by it. */
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
    pthread_mutex_init(&set->park_mu, NULL);
    pthread_cond_init(&set->park_cv, NULL);
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

void px_workers_pause(px_proxy *px)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return;
    pthread_mutex_lock(&set->park_mu);
    set->paused = 1;
    pthread_mutex_unlock(&set->park_mu);
    int n = 0;
    for (int i = 0; i < set->n; i++)
        if (set->w[i]->started) {
            px_workers_post(set->w[i], PX_MSG_PAUSE, 0);
            n++;
        }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&set->park_mu);
    while (set->parked < n)
        if (pthread_cond_timedwait(&set->park_cv, &set->park_mu, &until) != 0)
            break;
    if (set->parked < n)
        kz_warn("reload: %d of %d workers did not pause within 5 s; applying anyway", n - set->parked, n);
    pthread_mutex_unlock(&set->park_mu);
}

void px_workers_sync(px_proxy *px)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return;
    pthread_mutex_lock(&set->park_mu);
    set->snapped = 0;
    pthread_mutex_unlock(&set->park_mu);
    int n = 0;
    for (int i = 0; i < set->n; i++)
        if (set->w[i]->started) {
            px_workers_post(set->w[i], PX_MSG_SNAP, 0);
            n++;
        }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    pthread_mutex_lock(&set->park_mu);
    while (set->snapped < n)
        if (pthread_cond_timedwait(&set->park_cv, &set->park_mu, &until) != 0)
            break; /* a worker busy for a second: its last snapshot serves */
    pthread_mutex_unlock(&set->park_mu);
}

void px_workers_resume(px_proxy *px)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return;
    pthread_mutex_lock(&set->park_mu);
    set->paused = 0;
    pthread_cond_broadcast(&set->park_cv);
    pthread_mutex_unlock(&set->park_mu);
}

void px_workers_tls_reload(px_proxy *px)
{
    px_workers *set = px->workers;
    for (int i = 0; set != NULL && i < set->n; i++) {
        char err[512];
        if (set->w[i]->px.tls != NULL && px_tls_reload(set->w[i]->px.tls, err, sizeof(err)) != 0)
            kz_err("reload: worker %d keeps its client_tls certificate: %s", i + 1, err);
    }
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
    for (int i = 0; i < set->nretired; i++) {
        px_config_free(set->retired[i]);
        free(set->retired[i]);
    }
    free(set->retired);
    pthread_cond_destroy(&set->park_cv);
    pthread_mutex_destroy(&set->park_mu);
    for (int i = 0; i < set->n; i++)
        px_worker_free(set->w[i]);
    free(set->w);
    free(set);
    px->workers = NULL;
}

int px_workers_retire_config(px_proxy *px, px_config *c)
{
    px_workers *set = px->workers;
    if (set == NULL)
        return -1;
    px_config *keep = malloc(sizeof(*keep));
    px_config **r = realloc(set->retired, (size_t)(set->nretired + 1) * sizeof(*r));
    if (r != NULL)
        set->retired = r;
    if (keep == NULL || r == NULL) {
        free(keep);
        kz_warn("reload: out of memory keeping the replaced configuration for the workers; freeing it");
        return -1;
    }
    *keep = *c;
    set->retired[set->nretired++] = keep;
    return 0;
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
