/*
 * mc_peers: the peer table, KzHello and the peers' health (see mc_peers.h
 * for the behaviour); DNS discovery is in mc_peers_dns.c.
 *
 * Peers (mc_peer_int) are the static ones from the config and those found
 * through DNS, each with two mc_conns to its advertised address: one for the
 * RPCs (pub.conn) and one for the health checks (health).
 *
 * What "healthy" means: the peer answers KzHello on its health connection.
 * That connection never waits behind an RPC, so a slow KzWalAppend (an
 * acks=all produce on a loaded backend) no longer makes the peer look down.
 * The reverse case, a peer that answers its health checks while its RPC
 * connection is stuck, is caught by the RPCs themselves: each has its own
 * deadline on pub.conn (mc_conn fails it and reconnects), and router-out
 * reports the failure through mc_peers_mark_down, which marks the peer down
 * until the next good health check; a refused RPC connect does the same.
 *
 * Callbacks from a connection may run inside mc_conn_request (a refused
 * connect) and inside mc_conn_free ("shutting down"): peers carry a closing
 * flag for the latter and never free a connection from its own callback.
 */
#include "config.h"

#include "meta-client/mc_peers_int.h"

#include "codec/kc_proto.h"
#include "common/kz_log.h"
#include "common/kz_time.h"
#include "meta-client/mc_xzone.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static int64_t mc_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void mc_peers_changed(mc_peers *ps)
{
    if (ps->change_fn)
        ps->change_fn(ps->change_arg);
}

/* ---------------- KzHello ---------------- */

/* A sealed KzHello request body for node receiver (caller frees), its nonce
 * in nonce; NULL on allocation failure or without a secret. */
struct evbuffer *mc_hello_body(mc_peers *ps, int32_t receiver, uint8_t nonce[KC_PEER_NONCE_LEN])
{
    if (ps->cfg.secret == NULL)
        return NULL;
    struct evbuffer *b = evbuffer_new();
    if (b == NULL)
        return NULL;
    kc_wr w;
    kc_wr_init(&w, b, NULL);
    kc_peer_auth a = {.sender = ps->cfg.self_id, .ts_ms = mc_wall_ms()};
    kc_peer_auth_write(&w, &a);
    kc_peer_hello me = {.node_id = ps->cfg.self_id,
                        .zone = kc_str_c(ps->self_zone),
                        .host = kc_str_c(ps->self_host),
                        .port = ps->cfg.self_port,
                        .started_ms = ps->cfg.started_ms};
    kc_peer_hello_encode(&w, &me);
    if (w.err || kc_peer_seal(b, ps->cfg.secret, ps->cfg.secret_len, KC_API_KZ_HELLO, KC_PEER_VERSION,
                              receiver, NULL) != 0) {
        evbuffer_free(b);
        return NULL;
    }
    memcpy(nonce, a.nonce, KC_PEER_NONCE_LEN);
    return b;
}

/* Bytes of the request frame for a body of n bytes (size, header, body). */
size_t mc_hello_frame_bytes(size_t n)
{
    size_t h = 4 + 2 + 2 + 4 + 2 + strlen(MC_PEER_CLIENT_ID);
    if (kc_req_hdr_version(KC_API_KZ_HELLO, KC_PEER_VERSION) >= 2)
        h += 1; /* empty tagged fields */
    return h + n;
}

/*
 * Check and decode a KzHello response frame (correlation id first) answering
 * the request with nonce. 0 with *h pointing into resp; -1 with why filled.
 */
int mc_hello_parse(mc_peers *ps, const kc_frame *resp, const uint8_t *nonce, kc_peer_hello *h,
                   char *why, size_t whysz)
{
    kc_rd rd;
    kc_rd_init(&rd, resp->data, resp->len);
    kc_resp_hdr_decode(&rd, kc_resp_hdr_version(KC_API_KZ_HELLO, KC_PEER_VERSION));
    if (rd.err) {
        snprintf(why, whysz, "KzHello answer too short for its header");
        return -1;
    }
    size_t plen = 0;
    if (kc_peer_verify(rd.p + rd.off, kc_rd_remain(&rd), ps->cfg.secret, ps->cfg.secret_len,
                       KC_API_KZ_HELLO, KC_PEER_VERSION, ps->cfg.self_id, nonce, &plen) != 0) {
        snprintf(why, whysz, "KzHello answer failed authentication (check that every proxy has the "
                             "same peer_secret)");
        return -1;
    }
    kc_rd body;
    kc_rd_init(&body, rd.p + rd.off, plen);
    if (kc_peer_hello_decode(&body, h) != 0) {
        snprintf(why, whysz, "malformed KzHello answer: %s at byte %zu", body.err, body.err_off);
        return -1;
    }
    return 0;
}

/* ---------------- the peer table ---------------- */

static int mc_peers_index(const mc_peers *ps, int32_t node_id)
{
    int lo = 0, hi = ps->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ps->v[mid]->pub.node_id < node_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

mc_peer_int *mc_peers_get(const mc_peers *ps, int32_t node_id)
{
    int i = mc_peers_index(ps, node_id);
    return i < ps->n && ps->v[i]->pub.node_id == node_id ? ps->v[i] : NULL;
}

/* Meter the peer's connections (RPC and health) when it is in another zone. */
static void mc_peer_meter(mc_peer_int *p)
{
    mc_peers *ps = p->ps;
    struct mc_xz *xz = ps->cfg.xz && strcmp(p->pub.zone, ps->self_zone) != 0 ? ps->cfg.xz : NULL;
    mc_conn_set_xzone(p->pub.conn, xz, MC_XZ_PEER);
    mc_conn_set_xzone(p->health, xz, MC_XZ_PEER);
}

static void mc_peer_free(mc_peer_int *p)
{
    if (p == NULL)
        return;
    p->closing = 1;
    mc_conn_free(p->health);   /* fails a KzHello in flight (ignored) */
    mc_conn_free(p->pub.conn); /* may call back (ignored) and fail the router's RPCs */
    free(p->pub.zone);
    free(p->pub.host);
    free(p);
}

/* Insert a new peer (healthy). NULL when full, a duplicate or out of memory. */
mc_peer_int *mc_peers_insert(mc_peers *ps, int32_t node_id, const char *zone, const char *host,
                             int port, int is_static)
{
    if (ps->n >= MC_PEERS_MAX || node_id == ps->cfg.self_id || mc_peers_get(ps, node_id) != NULL)
        return NULL;
    mc_peer_int *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->ps = ps;
    p->discovered = !is_static;
    p->pub.node_id = node_id;
    p->pub.zone = strdup(zone);
    p->pub.host = strdup(host);
    p->pub.port = port;
    p->pub.is_static = is_static;
    p->pub.healthy = 1;
    if (p->pub.zone && p->pub.host) {
        p->pub.conn = mc_conn_new(ps->base, ps->dns, host, port, node_id, &ps->cfg.conn, &ps->stats.conns);
        p->health = mc_conn_new(ps->base, ps->dns, host, port, node_id, &ps->cfg.conn, &ps->stats.conns);
    }
    mc_peer_int **nv =
        p->pub.conn && p->health ? realloc(ps->v, (size_t)(ps->n + 1) * sizeof(*nv)) : NULL;
    if (nv == NULL) {
        if (p->pub.conn)
            mc_conn_free(p->pub.conn);
        if (p->health)
            mc_conn_free(p->health);
        free(p->pub.zone);
        free(p->pub.host);
        free(p);
        return NULL;
    }
    ps->v = nv;
    mc_peer_meter(p);
    int i = mc_peers_index(ps, node_id);
    memmove(&ps->v[i + 1], &ps->v[i], (size_t)(ps->n - i) * sizeof(*ps->v));
    ps->v[i] = p;
    ps->n++;
    return p;
}

/* Take p out of the table and free it. Callers notify the change. */
void mc_peers_remove(mc_peers *ps, mc_peer_int *p)
{
    int i = mc_peers_index(ps, p->pub.node_id);
    if (i >= ps->n || ps->v[i] != p)
        return;
    memmove(&ps->v[i], &ps->v[i + 1], (size_t)(ps->n - i - 1) * sizeof(*ps->v));
    ps->n--;
    /* Out of the table first: the router's failed RPCs may call us back. */
    mc_peer_free(p);
}

/* A check failed (or an RPC did): log on the healthy -> down edge only. */
static void mc_peer_down(mc_peer_int *p, const char *why)
{
    if (!p->pub.healthy) {
        kz_dbg("peer %d (%s:%d, zone %s): still down: %s", p->pub.node_id, p->pub.host, p->pub.port,
               p->pub.zone, why);
        return;
    }
    p->pub.healthy = 0;
    kz_warn("peer %d (%s:%d, zone %s) is down: %s", p->pub.node_id, p->pub.host, p->pub.port,
            p->pub.zone, why);
    mc_peers_changed(p->ps);
}

static void mc_peer_check_cb(kc_frame *resp, const char *err, void *arg)
{
    mc_peer_int *p = arg;
    if (p->closing) {
        if (resp)
            kc_frame_release(resp);
        return;
    }
    mc_peers *ps = p->ps;
    p->checking = 0;
    char why[256];
    kc_peer_hello h;
    if (resp == NULL) {
        snprintf(why, sizeof(why), "%s", err ? err : "KzHello failed");
    } else if (mc_hello_parse(ps, resp, p->nonce, &h, why, sizeof(why)) != 0) {
        /* why is filled */
    } else if (h.node_id != p->pub.node_id) {
        snprintf(why, sizeof(why), "it answers as node %d (check node_id there and the peers list here)",
                 h.node_id);
    } else if (!kc_str_eq(h.zone, p->pub.zone)) {
        if (p->pub.is_static) {
            snprintf(why, sizeof(why), "it says it is in zone %.*s, the config here says %s",
                     (int)h.zone.len, h.zone.p, p->pub.zone);
        } else {
            /* A discovered peer moved zones: take its word. */
            char *z = kc_str_dup(h.zone);
            if (z == NULL) {
                snprintf(why, sizeof(why), "out of memory");
            } else {
                kz_info("peer %d (%s:%d): now in zone %s (was %s)", p->pub.node_id, p->pub.host,
                        p->pub.port, z, p->pub.zone);
                free(p->pub.zone);
                p->pub.zone = z;
                mc_peer_meter(p);
                mc_peers_changed(ps);
                why[0] = '\0';
            }
        }
    } else if (h.flags & KC_PEER_HELLO_DRAINING) {
        snprintf(why, sizeof(why), "it is draining (shutting down)");
    } else {
        why[0] = '\0';
    }
    if (why[0] == '\0') {
        if (p->pub.started_ms != 0 && p->pub.started_ms != h.started_ms)
            kz_info("peer %d (%s:%d): restarted", p->pub.node_id, p->pub.host, p->pub.port);
        p->pub.started_ms = h.started_ms;
        p->pub.flags = h.flags;
        if (!p->pub.healthy) {
            p->pub.healthy = 1;
            kz_info("peer %d (%s:%d, zone %s) is up", p->pub.node_id, p->pub.host, p->pub.port,
                    p->pub.zone);
            mc_peers_changed(ps);
        }
    } else {
        ps->stats.health_failures++;
        mc_peer_down(p, why);
    }
    if (resp)
        kc_frame_release(resp);
}

static void mc_peer_check(mc_peer_int *p)
{
    mc_peers *ps = p->ps;
    struct evbuffer *body = mc_hello_body(ps, p->pub.node_id, p->nonce);
    ps->stats.health_checks++;
    if (body == NULL) {
        ps->stats.health_failures++;
        mc_peer_down(p, "out of memory for a KzHello");
        return;
    }
    p->checking = 1;
    p->check_sent_ms = kz_mono_ms();
    if (mc_conn_request(p->health, KC_API_KZ_HELLO, KC_PEER_VERSION, kc_str_c(MC_PEER_CLIENT_ID), body,
                        1, 0, mc_peer_check_cb, p) != 0) {
        /* Not sent (reconnect backoff after a refused connect): the callback does not run. */
        p->checking = 0;
        ps->stats.health_failures++;
        mc_peer_down(p, "cannot connect");
    }
    evbuffer_free(body);
}

static void mc_peers_health_cb(evutil_socket_t fd, short what, void *arg)
{
    mc_peers *ps = arg;
    (void)fd;
    (void)what;
    int64_t now = kz_mono_ms();
    /* Index loop: a check's callback may run inside mc_conn_request, but it
     * never adds or removes peers. */
    for (int i = 0; i < ps->n; i++) {
        mc_peer_int *p = ps->v[i];
        if (p->checking) {
            /* The answer may still come (the connection's own timeout, the
             * RPC one, is longer); health does not wait for it. */
            if (now - p->check_sent_ms > ps->check_timeout_ms && p->pub.healthy) {
                char why[96];
                snprintf(why, sizeof(why), "no KzHello answer within %d ms", ps->check_timeout_ms);
                ps->stats.health_failures++;
                mc_peer_down(p, why);
            }
            continue;
        }
        mc_peer_check(p);
    }
}

/* ---------------- public ---------------- */

mc_peers *mc_peers_new(struct event_base *base, struct evdns_base *dns, const mc_peers_config *cfg)
{
    mc_peers *ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return NULL;
    ps->base = base;
    ps->dns = dns;
    ps->cfg = *cfg;
    ps->self_zone = strdup(cfg->self_zone ? cfg->self_zone : "");
    ps->self_host = strdup(cfg->self_host ? cfg->self_host : "");
    ps->dns_name = cfg->dns_name ? strdup(cfg->dns_name) : NULL;
    ps->health_ev = event_new(base, -1, EV_PERSIST, mc_peers_health_cb, ps);
    ps->dns_ev = event_new(base, -1, EV_PERSIST, mc_dns_round, ps);
    if (ps->self_zone == NULL || ps->self_host == NULL || (cfg->dns_name && ps->dns_name == NULL) ||
        ps->health_ev == NULL || ps->dns_ev == NULL) {
        mc_peers_free(ps);
        return NULL;
    }
    ps->cfg.self_zone = ps->self_zone;
    ps->cfg.self_host = ps->self_host;
    ps->cfg.dns_name = ps->dns_name;
    ps->cfg.conn.quiet = 1; /* peer state changes are logged here, once each */
    if (ps->cfg.secret_len == 0)
        ps->cfg.secret = NULL;
    if (ps->cfg.health_ms <= 0)
        ps->cfg.health_ms = 1000;
    if (ps->cfg.dns_interval_ms <= 0)
        ps->cfg.dns_interval_ms = 10000;
    /* A check outstanding this long marks the peer down (its answer may still
     * bring it back): a few periods, at least a second, at most the RPC timeout. */
    ps->check_timeout_ms = 3 * ps->cfg.health_ms;
    if (ps->check_timeout_ms < 1000)
        ps->check_timeout_ms = 1000;
    if (ps->cfg.conn.request_timeout_ms > 0 && ps->check_timeout_ms > ps->cfg.conn.request_timeout_ms)
        ps->check_timeout_ms = ps->cfg.conn.request_timeout_ms;
    return ps;
}

void mc_peers_free(mc_peers *ps)
{
    if (ps == NULL)
        return;
    ps->change_fn = NULL; /* nobody to tell any more */
    mc_dns_free(ps); /* DNS queries and probes first, as before the split */
    while (ps->n > 0)
        mc_peer_free(ps->v[--ps->n]);
    free(ps->v);
    if (ps->health_ev)
        event_free(ps->health_ev);
    if (ps->dns_ev)
        event_free(ps->dns_ev);
    free(ps->self_zone);
    free(ps->self_host);
    free(ps->dns_name);
    free(ps);
}

int mc_peers_add_static(mc_peers *ps, int32_t node_id, const char *zone, const char *host, int port)
{
    if (zone == NULL || host == NULL || port <= 0 || port > 65535)
        return -1;
    return mc_peers_insert(ps, node_id, zone, host, port, 1) ? 0 : -1;
}

void mc_peers_start(mc_peers *ps)
{
    if (ps->started)
        return;
    ps->started = 1;
    if (ps->cfg.secret == NULL) {
        if (ps->n > 0)
            kz_info("peers: no peer_secret, so no peer RPC: the %d static peers are taken as healthy "
                    "and never checked", ps->n);
        if (ps->dns_name)
            kz_warn("discovery: %s is not resolved: discovered peers identify themselves over the "
                    "peer RPC, which needs a peer_secret", ps->dns_name);
        return;
    }
    struct timeval tv = {ps->cfg.health_ms / 1000, (ps->cfg.health_ms % 1000) * 1000};
    event_add(ps->health_ev, &tv);
    if (ps->dns_name && ps->dns) {
        struct timeval dv = {ps->cfg.dns_interval_ms / 1000, (ps->cfg.dns_interval_ms % 1000) * 1000};
        event_add(ps->dns_ev, &dv);
        event_active(ps->dns_ev, EV_TIMEOUT, 0); /* the first round now */
        kz_info("discovery: peers from %s port %d, every %d ms", ps->dns_name, ps->cfg.dns_port,
                ps->cfg.dns_interval_ms);
    }
}

void mc_peers_on_change(mc_peers *ps, mc_peers_change_fn fn, void *arg)
{
    ps->change_fn = fn;
    ps->change_arg = arg;
}

int mc_peers_count(const mc_peers *ps) { return ps ? ps->n : 0; }

const mc_peer *mc_peers_at(const mc_peers *ps, int i)
{
    return ps && i >= 0 && i < ps->n ? &ps->v[i]->pub : NULL;
}

const mc_peer *mc_peers_find(const mc_peers *ps, int32_t node_id)
{
    const mc_peer_int *p = ps ? mc_peers_get(ps, node_id) : NULL;
    return p ? &p->pub : NULL;
}

/* Murmur3's finaliser. */
static uint32_t mc_mix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

const mc_peer *mc_peers_pick(const mc_peers *ps, const char *zone, uint32_t key, int32_t avoid_id)
{
    /* Rendezvous hashing: a key keeps its peer while that peer is healthy,
     * whatever other peers come and go. */
    const mc_peer *best = NULL;
    uint32_t best_w = 0;
    for (int i = 0; ps && i < ps->n; i++) {
        const mc_peer *p = &ps->v[i]->pub;
        if (!p->healthy || p->node_id == avoid_id || strcmp(p->zone, zone) != 0)
            continue;
        uint32_t w = mc_mix32(key ^ mc_mix32((uint32_t)p->node_id * 0x9e3779b1u));
        if (best == NULL || w > best_w) {
            best = p;
            best_w = w;
        }
    }
    return best;
}

int mc_peers_zone_all(const mc_peers *ps, const char *zone, uint32_t flag)
{
    int n = 0;
    for (int i = 0; ps && i < ps->n; i++) {
        const mc_peer *p = &ps->v[i]->pub;
        if (!p->healthy || strcmp(p->zone, zone) != 0)
            continue;
        if ((p->flags & flag) != flag)
            return 0;
        n++;
    }
    return n > 0;
}

void mc_peers_mark_down(mc_peers *ps, int32_t node_id, const char *why)
{
    mc_peer_int *p = mc_peers_get(ps, node_id);
    if (p == NULL)
        return;
    if (ps->cfg.secret == NULL) {
        /* No health checks would ever bring it back. */
        kz_dbg("peer %d: %s (not marked down: no peer_secret, no health checks)", node_id, why);
        return;
    }
    if (p->pub.healthy)
        ps->stats.marked_down++;
    mc_peer_down(p, why ? why : "RPC failed");
}

const mc_peers_stats *mc_peers_get_stats(const mc_peers *ps) { return &ps->stats; }

int mc_peers_set_static(mc_peers *ps, const mc_peer_spec *v, int n)
{
    int changed = 0, rc = 0;
    for (int i = ps->n - 1; i >= 0; i--) {
        mc_peer_int *p = ps->v[i];
        if (!p->pub.is_static)
            continue;
        int keep = 0;
        for (int j = 0; j < n && !keep; j++)
            keep = v[j].node_id == p->pub.node_id && strcmp(v[j].zone, p->pub.zone) == 0 &&
                   strcmp(v[j].host, p->pub.host) == 0 && v[j].port == p->pub.port;
        if (!keep) {
            kz_info("peers: peer %d (%s:%d, zone %s) removed by the new configuration", p->pub.node_id,
                    p->pub.host, p->pub.port, p->pub.zone);
            mc_peers_remove(ps, p);
            changed = 1;
        }
    }
    for (int j = 0; j < n; j++) {
        mc_peer_int *p = mc_peers_get(ps, v[j].node_id);
        if (p != NULL && p->pub.is_static)
            continue; /* kept above */
        if (p != NULL)
            mc_peers_remove(ps, p); /* a discovered peer of that id: the config wins */
        if (mc_peers_insert(ps, v[j].node_id, v[j].zone, v[j].host, v[j].port, 1) == NULL) {
            kz_warn("peers: cannot add peer %d (%s:%d): %s", v[j].node_id, v[j].host, v[j].port,
                    ps->n >= MC_PEERS_MAX ? "too many peers" : "out of memory");
            rc = -1;
            continue;
        }
        kz_info("peers: peer %d (%s:%d, zone %s) added by the new configuration", v[j].node_id, v[j].host,
                v[j].port, v[j].zone);
        changed = 1;
    }
    if (changed)
        mc_peers_changed(ps);
    return rc;
}

int mc_peers_set_discovery(mc_peers *ps, const char *dns_name, int interval_ms)
{
    if (ps->dns_name == NULL || dns_name == NULL)
        return -1; /* turning discovery on or off: a restart */
    if (strcmp(ps->dns_name, dns_name) != 0) {
        char *nn = strdup(dns_name);
        if (nn == NULL)
            return -1;
        free(ps->dns_name);
        ps->dns_name = nn;
        ps->cfg.dns_name = nn;
    }
    if (interval_ms > 0 && interval_ms != ps->cfg.dns_interval_ms) {
        ps->cfg.dns_interval_ms = interval_ms;
        if (ps->started && ps->cfg.secret != NULL && ps->dns) {
            struct timeval dv = {interval_ms / 1000, (interval_ms % 1000) * 1000};
            event_add(ps->dns_ev, &dv);
        }
    }
    return 0;
}
