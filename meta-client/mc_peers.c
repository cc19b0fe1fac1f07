/*
 * mc_peers, first cut: static peers only, no health checks yet (a peer
 * marked down by a failed RPC comes back after one health period). The
 * health-checked, DNS-discovering version replaces this file.
 */
#include "config.h"

#include "meta-client/mc_peers.h"

#include "common/kz_log.h"
#include "meta-client/mc_xzone.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct mc_peers {
    struct event_base *base;
    struct evdns_base *dns;
    mc_peers_config cfg;
    char *self_zone;
    int n, cap;
    mc_peer *v;
    int64_t *down_until;
    struct event *tick;
    mc_peers_change_fn change;
    void *change_arg;
    mc_peers_stats st;
};

static int64_t mc_peers_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void mc_peers_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mc_peers *ps = arg;
    int changed = 0;
    int64_t now = mc_peers_now();
    for (int i = 0; i < ps->n; i++) {
        if (!ps->v[i].healthy && now >= ps->down_until[i]) {
            ps->v[i].healthy = 1;
            changed = 1;
        }
    }
    if (changed && ps->change)
        ps->change(ps->change_arg);
    struct timeval tv = {ps->cfg.health_ms / 1000, (ps->cfg.health_ms % 1000) * 1000};
    event_add(ps->tick, &tv);
}

mc_peers *mc_peers_new(struct event_base *base, struct evdns_base *dns, const mc_peers_config *cfg)
{
    mc_peers *ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return NULL;
    ps->base = base;
    ps->dns = dns;
    ps->cfg = *cfg;
    if (ps->cfg.health_ms <= 0)
        ps->cfg.health_ms = 1000;
    ps->self_zone = strdup(cfg->self_zone ? cfg->self_zone : "");
    ps->tick = event_new(base, -1, 0, mc_peers_tick, ps);
    if (ps->self_zone == NULL || ps->tick == NULL) {
        mc_peers_free(ps);
        return NULL;
    }
    return ps;
}

void mc_peers_free(mc_peers *ps)
{
    if (ps == NULL)
        return;
    for (int i = 0; i < ps->n; i++) {
        mc_conn_free(ps->v[i].conn);
        free(ps->v[i].zone);
        free(ps->v[i].host);
    }
    free(ps->v);
    free(ps->down_until);
    if (ps->tick)
        event_free(ps->tick);
    free(ps->self_zone);
    free(ps);
}

static int mc_peer_cmp(const void *a, const void *b)
{
    const mc_peer *x = a, *y = b;
    return (x->node_id > y->node_id) - (x->node_id < y->node_id);
}

int mc_peers_add_static(mc_peers *ps, int32_t node_id, const char *zone, const char *host, int port)
{
    if (ps->n == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 8;
        mc_peer *nv = realloc(ps->v, (size_t)cap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        ps->v = nv;
        int64_t *nd = realloc(ps->down_until, (size_t)cap * sizeof(*nd));
        if (nd == NULL)
            return -1;
        ps->down_until = nd;
        ps->cap = cap;
    }
    mc_peer *p = &ps->v[ps->n];
    memset(p, 0, sizeof(*p));
    p->node_id = node_id;
    p->zone = strdup(zone);
    p->host = strdup(host);
    p->port = port;
    p->is_static = 1;
    p->healthy = 1;
    p->conn = mc_conn_new(ps->base, ps->dns, host, port, node_id, &ps->cfg.conn, NULL);
    if (p->zone == NULL || p->host == NULL || p->conn == NULL) {
        free(p->zone);
        free(p->host);
        if (p->conn)
            mc_conn_free(p->conn);
        return -1;
    }
    if (ps->cfg.xz && strcmp(zone, ps->self_zone) != 0)
        mc_conn_set_xzone(p->conn, ps->cfg.xz, MC_XZ_PEER);
    ps->down_until[ps->n] = 0;
    ps->n++;
    qsort(ps->v, (size_t)ps->n, sizeof(*ps->v), mc_peer_cmp);
    return 0;
}

void mc_peers_start(mc_peers *ps)
{
    struct timeval tv = {ps->cfg.health_ms / 1000, (ps->cfg.health_ms % 1000) * 1000};
    event_add(ps->tick, &tv);
}

void mc_peers_on_change(mc_peers *ps, mc_peers_change_fn fn, void *arg)
{
    ps->change = fn;
    ps->change_arg = arg;
}

int mc_peers_count(const mc_peers *ps) { return ps ? ps->n : 0; }
const mc_peer *mc_peers_at(const mc_peers *ps, int i) { return &ps->v[i]; }

const mc_peer *mc_peers_find(const mc_peers *ps, int32_t node_id)
{
    for (int i = 0; ps && i < ps->n; i++)
        if (ps->v[i].node_id == node_id)
            return &ps->v[i];
    return NULL;
}

const mc_peer *mc_peers_pick(const mc_peers *ps, const char *zone, uint32_t key, int32_t avoid_id)
{
    if (ps == NULL)
        return NULL;
    int cnt = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->v[i].healthy && ps->v[i].node_id != avoid_id && strcmp(ps->v[i].zone, zone) == 0)
            cnt++;
    if (cnt == 0)
        return NULL;
    int want = (int)(key % (uint32_t)cnt);
    for (int i = 0; i < ps->n; i++)
        if (ps->v[i].healthy && ps->v[i].node_id != avoid_id && strcmp(ps->v[i].zone, zone) == 0 && want-- == 0)
            return &ps->v[i];
    return NULL;
}

void mc_peers_mark_down(mc_peers *ps, int32_t node_id, const char *why)
{
    for (int i = 0; ps && i < ps->n; i++) {
        if (ps->v[i].node_id != node_id || !ps->v[i].healthy)
            continue;
        kz_warn("peer %d (zone %s) marked down: %s", node_id, ps->v[i].zone, why);
        ps->v[i].healthy = 0;
        ps->down_until[i] = mc_peers_now() + ps->cfg.health_ms;
        ps->st.marked_down++;
        if (ps->change)
            ps->change(ps->change_arg);
    }
}

const mc_peers_stats *mc_peers_get_stats(const mc_peers *ps) { return &ps->st; }
