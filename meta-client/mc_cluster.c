#include "config.h"

#include "meta-client/mc_cluster.h"
#include "meta-client/mc_xzone.h"

#include "codec/kc_msg.h"
#include "codec/kc_proto.h"
#include "common/kz_addr.h"
#include "common/kz_log.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

typedef struct mc_pool_entry {
    int32_t broker_id;
    mc_conn *conn;
} mc_pool_entry;

typedef struct mc_version_range {
    int16_t min, max;
    int have;
} mc_version_range;

/* A cached coordinator: (key type, key) -> broker id. */
typedef struct mc_coord {
    int8_t key_type;
    char *key;
    int32_t broker_id;
    uint64_t used; /* for eviction: the least recently used goes */
} mc_coord;

#define MC_COORD_CACHE_MAX 4096

struct mc_cluster {
    struct event_base *base;
    struct evdns_base *dns;
    mc_config cfg;
    mc_conn_stats stats;
    /* bootstrap connections, one per configured address, used until a view exists */
    int nboot;
    mc_conn **boot;
    int boot_next;
    /* pooled broker connections */
    int npool, cappool;
    mc_pool_entry *pool;
    unsigned rr; /* round robin over brokers for our own requests */
    mc_view *view;
    mc_version_range versions[KC_API_MAX + 1];
    int have_versions;
    int versions_failures; /* ApiVersions attempts failed in a row: only the first is a warning */
    int16_t metadata_version;
    struct event *tick;     /* periodic refresh, and retry before the first view */
    struct event *soon;     /* debounced refresh on errors */
    int soon_pending;
    int full_inflight;
    mc_refresh_fn ready;
    void *ready_arg;
    int closing;
    mc_coord *coords;
    int ncoords;
    uint64_t coord_clock;
};

/* ---------------- views ---------------- */

/* Atomic: a view may be held by requests of several threads (workers). */
mc_view *mc_view_keep(mc_view *v)
{
    __atomic_add_fetch(&v->refcnt, 1, __ATOMIC_RELAXED);
    return v;
}

void mc_view_release(mc_view *v)
{
    if (v == NULL || __atomic_sub_fetch(&v->refcnt, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    kc_arena_destroy(&v->arena);
    free(v);
}

static int mc_broker_cmp(const void *a, const void *b)
{
    const mc_broker *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int mc_topic_cmp(const void *a, const void *b)
{
    return strcmp(((const mc_topic *)a)->name, ((const mc_topic *)b)->name);
}

const mc_broker *mc_view_broker(const mc_view *v, int32_t id)
{
    mc_broker key = {.id = id};
    return v ? bsearch(&key, v->brokers, (size_t)v->nbrokers, sizeof(mc_broker), mc_broker_cmp) : NULL;
}

const mc_topic *mc_view_topic(const mc_view *v, kc_str name)
{
    if (v == NULL || name.len < 0)
        return NULL;
    size_t lo = 0, hi = (size_t)v->ntopics;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *t = v->topics[mid].name;
        size_t tl = strlen(t);
        size_t n = tl < (size_t)name.len ? tl : (size_t)name.len;
        int c = memcmp(t, name.p, n);
        if (c == 0)
            c = (tl > (size_t)name.len) - (tl < (size_t)name.len);
        if (c == 0)
            return &v->topics[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int mc_uuid_is_zero(const kc_uuid *u)
{
    static const kc_uuid zero;
    return memcmp(u->b, zero.b, sizeof(zero.b)) == 0;
}

static int mc_topic_id_cmp(const void *a, const void *b)
{
    const mc_topic *x = *(const mc_topic *const *)a, *y = *(const mc_topic *const *)b;
    return memcmp(x->topic_id.b, y->topic_id.b, sizeof(x->topic_id.b));
}

const mc_topic *mc_view_topic_by_id(const mc_view *v, kc_uuid id)
{
    if (v == NULL || v->nby_id == 0 || mc_uuid_is_zero(&id))
        return NULL;
    mc_topic key = {.topic_id = id};
    const mc_topic *kp = &key;
    mc_topic *const *hit = bsearch(&kp, v->by_id, (size_t)v->nby_id, sizeof(mc_topic *), mc_topic_id_cmp);
    return hit ? *hit : NULL;
}

int mc_view_has_topic_ids(const mc_view *v)
{
    return v != NULL && v->nby_id > 0;
}

const mc_partition *mc_view_partition(const mc_view *v, kc_str topic, int32_t partition)
{
    const mc_topic *t = mc_view_topic(v, topic);
    if (t == NULL || partition < 0)
        return NULL;
    if (partition < t->npartitions && t->partitions[partition].index == partition)
        return &t->partitions[partition];
    for (int32_t i = 0; i < t->npartitions; i++)
        if (t->partitions[i].index == partition)
            return &t->partitions[i];
    return NULL;
}

static char *mc_arena_str(kc_arena *a, const char *p, int32_t len)
{
    if (len < 0)
        return NULL;
    char *s = kc_arena_calloc(a, (size_t)len + 1, 1);
    if (s && len > 0)
        memcpy(s, p, (size_t)len);
    return s;
}

static int32_t *mc_arena_ids(kc_arena *a, const int32_t *ids, int32_t n)
{
    int32_t *r = kc_arena_calloc(a, n > 0 ? (size_t)n : 0, sizeof(int32_t));
    if (r && n > 0)
        memcpy(r, ids, (size_t)n * sizeof(int32_t));
    return r;
}

static int mc_copy_topic_from_wire(kc_arena *a, mc_topic *t, const kc_metadata_topic *wt)
{
    t->name = mc_arena_str(a, wt->name.p, wt->name.len < 0 ? 0 : wt->name.len);
    t->topic_id = wt->topic_id;
    t->error_code = wt->error_code;
    t->is_internal = wt->is_internal;
    t->npartitions = wt->npartitions;
    t->partitions = kc_arena_calloc(a, (size_t)wt->npartitions, sizeof(mc_partition));
    if (t->name == NULL || t->partitions == NULL)
        return -1;
    for (int32_t i = 0; i < wt->npartitions; i++) {
        const kc_metadata_partition *wp = &wt->partitions[i];
        mc_partition *p = &t->partitions[i];
        p->index = wp->partition_index;
        p->error_code = wp->error_code;
        p->leader_id = wp->leader_id;
        p->leader_epoch = wp->leader_epoch;
        p->nreplicas = wp->nreplica_nodes;
        p->replicas = mc_arena_ids(a, wp->replica_nodes, wp->nreplica_nodes);
        p->nisr = wp->nisr_nodes;
        p->isr = mc_arena_ids(a, wp->isr_nodes, wp->nisr_nodes);
        p->noffline = wp->noffline_replicas > 0 ? wp->noffline_replicas : 0;
        p->offline = mc_arena_ids(a, wp->offline_replicas, p->noffline);
        if (!p->replicas || !p->isr || !p->offline)
            return -1;
    }
    /* Keep partitions in index order so lookups are direct. */
    for (int32_t i = 1; i < t->npartitions; i++) {
        mc_partition x = t->partitions[i];
        int32_t j = i - 1;
        while (j >= 0 && t->partitions[j].index > x.index) {
            t->partitions[j + 1] = t->partitions[j];
            j--;
        }
        t->partitions[j + 1] = x;
    }
    return 0;
}

static int mc_copy_topic(kc_arena *a, mc_topic *t, const mc_topic *o)
{
    *t = *o;
    t->name = mc_arena_str(a, o->name, (int32_t)strlen(o->name));
    t->partitions = kc_arena_calloc(a, (size_t)o->npartitions, sizeof(mc_partition));
    if (t->name == NULL || t->partitions == NULL)
        return -1;
    for (int32_t i = 0; i < o->npartitions; i++) {
        mc_partition *p = &t->partitions[i];
        *p = o->partitions[i];
        p->replicas = mc_arena_ids(a, o->partitions[i].replicas, p->nreplicas);
        p->isr = mc_arena_ids(a, o->partitions[i].isr, p->nisr);
        p->offline = mc_arena_ids(a, o->partitions[i].offline, p->noffline);
        if (!p->replicas || !p->isr || !p->offline)
            return -1;
    }
    return 0;
}

/* Build a view from a Metadata response; topics of old that the response does
 * not mention are carried over unless full is set. NULL on allocation failure. */
static mc_view *mc_view_build(const kc_metadata_resp *r, const mc_view *old, int full)
{
    mc_view *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    v->refcnt = 1;
    kc_arena_init(&v->arena);
    kc_arena *a = &v->arena;
    v->cluster_id = r->cluster_id.len >= 0 ? mc_arena_str(a, r->cluster_id.p, r->cluster_id.len)
                    : (old && old->cluster_id ? mc_arena_str(a, old->cluster_id, (int32_t)strlen(old->cluster_id)) : NULL);
    v->controller_id = r->controller_id;
    v->nbrokers = r->nbrokers;
    v->brokers = kc_arena_calloc(a, (size_t)r->nbrokers, sizeof(mc_broker));
    if (v->brokers == NULL)
        goto fail;
    for (int32_t i = 0; i < r->nbrokers; i++) {
        mc_broker *b = &v->brokers[i];
        b->id = r->brokers[i].node_id;
        b->host = mc_arena_str(a, r->brokers[i].host.p, r->brokers[i].host.len);
        b->port = r->brokers[i].port;
        b->rack = mc_arena_str(a, r->brokers[i].rack.p, r->brokers[i].rack.len);
        if (b->host == NULL)
            goto fail;
    }
    qsort(v->brokers, (size_t)v->nbrokers, sizeof(mc_broker), mc_broker_cmp);

    int32_t carried = 0;
    if (old && !full)
        carried = old->ntopics;
    v->topics = kc_arena_calloc(a, (size_t)r->ntopics + (size_t)carried, sizeof(mc_topic));
    if (v->topics == NULL)
        goto fail;
    int32_t n = 0;
    for (int32_t i = 0; i < r->ntopics; i++) {
        if (r->topics[i].name.len <= 0)
            continue;
        if (mc_copy_topic_from_wire(a, &v->topics[n], &r->topics[i]) != 0)
            goto fail;
        n++;
    }
    int32_t fresh = n;
    qsort(v->topics, (size_t)fresh, sizeof(mc_topic), mc_topic_cmp);
    for (int32_t i = 0; i < carried; i++) {
        const mc_topic *o = &old->topics[i];
        mc_topic key = {.name = o->name};
        if (bsearch(&key, v->topics, (size_t)fresh, sizeof(mc_topic), mc_topic_cmp))
            continue;
        if (mc_copy_topic(a, &v->topics[n], o) != 0)
            goto fail;
        n++;
    }
    v->ntopics = n;
    qsort(v->topics, (size_t)n, sizeof(mc_topic), mc_topic_cmp);
    /* Index of the topics that have an id (Metadata v10+), for Fetch v13+. */
    v->by_id = kc_arena_calloc(a, (size_t)n, sizeof(mc_topic *));
    if (v->by_id == NULL)
        goto fail;
    for (int32_t i = 0; i < n; i++)
        if (!mc_uuid_is_zero(&v->topics[i].topic_id))
            v->by_id[v->nby_id++] = &v->topics[i];
    qsort(v->by_id, (size_t)v->nby_id, sizeof(mc_topic *), mc_topic_id_cmp);
    return v;
fail:
    mc_view_release(v);
    return NULL;
}

/* ---------------- connections ---------------- */

int mc_cluster_broker_remote(const mc_cluster *mc, const mc_view *v, int32_t broker_id)
{
    const mc_broker *b = mc_view_broker(v, broker_id);
    return mc->cfg.zone == NULL || b == NULL || b->rack == NULL || strcmp(b->rack, mc->cfg.zone) != 0;
}

/* A new connection to a broker of the view, metered when it crosses zones. */
static mc_conn *mc_new_conn(mc_cluster *mc, const mc_broker *b)
{
    mc_conn *c = mc_conn_new(mc->base, mc->dns, b->host, b->port, b->id, &mc->cfg.conn, &mc->stats);
    if (c && mc->cfg.xz && mc_cluster_broker_remote(mc, mc->view, b->id))
        mc_conn_set_xzone(c, mc->cfg.xz, MC_XZ_BROKER);
    return c;
}

mc_conn *mc_cluster_conn(mc_cluster *mc, int32_t broker_id)
{
    const mc_broker *b = mc_view_broker(mc->view, broker_id);
    if (b == NULL)
        return NULL;
    for (int i = 0; i < mc->npool; i++) {
        mc_pool_entry *e = &mc->pool[i];
        if (e->broker_id != broker_id)
            continue;
        if (strcmp(mc_conn_host(e->conn), b->host) == 0 && mc_conn_port(e->conn) == b->port)
            return e->conn;
        /* The broker moved: new address, new connection. */
        kz_info("broker %d moved to %s:%d", broker_id, b->host, b->port);
        mc_conn_free(e->conn);
        e->conn = mc_new_conn(mc, b);
        return e->conn;
    }
    if (mc->npool == mc->cappool) {
        int cap = mc->cappool ? mc->cappool * 2 : 8;
        mc_pool_entry *np = realloc(mc->pool, (size_t)cap * sizeof(*np));
        if (np == NULL)
            return NULL;
        mc->pool = np;
        mc->cappool = cap;
    }
    mc_conn *c = mc_new_conn(mc, b);
    if (c == NULL)
        return NULL;
    mc->pool[mc->npool].broker_id = broker_id;
    mc->pool[mc->npool].conn = c;
    mc->npool++;
    return c;
}

mc_conn *mc_cluster_conn_private(mc_cluster *mc, int32_t broker_id)
{
    const mc_broker *b = mc_view_broker(mc->view, broker_id);
    if (b == NULL)
        return NULL;
    return mc_new_conn(mc, b);
}

/* A connection for the proxy's own requests: a broker of the view, in turn,
 * or a bootstrap address before there is a view. */
static mc_conn *mc_any_conn(mc_cluster *mc)
{
    if (mc->view && mc->view->nbrokers > 0) {
        const mc_broker *b = &mc->view->brokers[mc->rr++ % (unsigned)mc->view->nbrokers];
        return mc_cluster_conn(mc, b->id);
    }
    if (mc->nboot == 0)
        return NULL;
    return mc->boot[mc->boot_next++ % mc->nboot];
}

/* ---------------- requests ---------------- */

typedef struct mc_req {
    mc_cluster *mc;
    int16_t version;
    int full;
    int attempts; /* brokers tried (full refreshes move on to the next) */
    mc_refresh_fn fn;
    void *arg;
} mc_req;

static void mc_tick_arm(mc_cluster *mc, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(mc->tick, &tv);
}

static void mc_cluster_refresh_full_retry(mc_cluster *mc, int attempts);

static void mc_metadata_cb(kc_frame *resp, const char *err, void *arg)
{
    mc_req *rq = arg;
    mc_cluster *mc = rq->mc;
    char errbuf[160];
    mc_view *nv = NULL;
    if (rq->full)
        mc->full_inflight = 0;
    if (mc->closing) {
        /* Callers still get their answer, so they can free what they hold. */
        kc_frame_release(resp);
        if (rq->fn)
            rq->fn(NULL, "shutting down", rq->arg);
        free(rq);
        return;
    }
    if (resp != NULL) {
        kc_rd rd;
        kc_arena a;
        kc_metadata_resp r;
        kc_rd_init(&rd, resp->data, resp->len);
        kc_arena_init(&a);
        (void)kc_resp_hdr_decode(&rd, kc_resp_hdr_version(KC_API_METADATA, rq->version));
        if (kc_metadata_resp_decode(&rd, rq->version, &a, &r) == 0) {
            nv = mc_view_build(&r, mc->view, rq->full);
            if (nv == NULL)
                err = "out of memory building the cluster view";
        } else {
            snprintf(errbuf, sizeof(errbuf), "malformed Metadata response from broker: %s at byte %zu",
                     rd.err, rd.err_off);
            err = errbuf;
        }
        kc_arena_destroy(&a);
        kc_frame_release(resp);
    }
    if (nv == NULL && resp == NULL && rq->full && rq->fn == NULL && mc->view &&
        rq->attempts < mc->view->nbrokers) {
        /* The broker asked is unreachable (a down broker is exactly when the
         * view matters): ask the next one now rather than at the next tick. */
        kz_info("metadata refresh failed (%s); asking another broker", err ? err : "?");
        mc_cluster_refresh_full_retry(mc, rq->attempts + 1);
        free(rq);
        return;
    }
    if (nv != NULL) {
        int first = mc->view == NULL;
        mc_view_release(mc->view);
        mc->view = nv;
        if (first) {
            kz_info("backend cluster %s: %d brokers, %d topics", nv->cluster_id ? nv->cluster_id : "(no id)",
                    nv->nbrokers, nv->ntopics);
            mc_tick_arm(mc, mc->cfg.refresh_ms);
            if (mc->ready)
                mc->ready(nv, NULL, mc->ready_arg);
        }
    } else {
        kz_warn("metadata refresh failed: %s", err ? err : "unknown error");
        if (mc->view == NULL)
            mc_tick_arm(mc, 500);
    }
    if (rq->fn)
        rq->fn(nv, nv ? NULL : err, rq->arg);
    free(rq);
}

static void mc_cluster_refresh_n(mc_cluster *mc, const kc_str *topics, int ntopics, int allow_create,
                                 mc_refresh_fn fn, void *arg, int attempts);

static void mc_cluster_refresh_full_retry(mc_cluster *mc, int attempts)
{
    mc_cluster_refresh_n(mc, NULL, -1, 0, NULL, NULL, attempts);
}

void mc_cluster_refresh(mc_cluster *mc, const kc_str *topics, int ntopics, int allow_create,
                        mc_refresh_fn fn, void *arg)
{
    mc_cluster_refresh_n(mc, topics, ntopics, allow_create, fn, arg, 1);
}

static void mc_cluster_refresh_n(mc_cluster *mc, const kc_str *topics, int ntopics, int allow_create,
                                 mc_refresh_fn fn, void *arg, int attempts)
{
    const char *why = "no broker to ask";
    mc_conn *c = mc->have_versions ? mc_any_conn(mc) : NULL;
    if (!mc->have_versions)
        why = "backend API versions not known yet";
    mc_req *rq = c ? calloc(1, sizeof(*rq)) : NULL;
    struct evbuffer *body = rq ? evbuffer_new() : NULL;
    if (body == NULL) {
        free(rq);
        if (fn)
            fn(NULL, why, arg);
        return;
    }
    rq->mc = mc;
    rq->version = mc->metadata_version;
    rq->full = ntopics < 0;
    rq->attempts = attempts;
    rq->fn = fn;
    rq->arg = arg;
    kc_metadata_req req = {0};
    req.allow_auto_topic_creation = allow_create;
    kc_arena a;
    kc_arena_init(&a);
    if (ntopics < 0) {
        req.ntopics = rq->version == 0 ? 0 : -1;
    } else {
        req.ntopics = ntopics;
        req.topics = kc_arena_calloc(&a, (size_t)ntopics, sizeof(*req.topics));
        for (int i = 0; req.topics && i < ntopics; i++)
            req.topics[i].name = topics[i];
    }
    kc_wr w;
    kc_wr_init(&w, body, NULL);
    if (req.ntopics < 0 || req.topics != NULL)
        kc_metadata_req_encode(&w, rq->version, &req);
    kc_arena_destroy(&a);
    if (rq->full)
        mc->full_inflight = 1;
    if (w.err || mc_conn_request(c, KC_API_METADATA, rq->version, kc_str_c("kzproxy"), body, 1, 0,
                                 mc_metadata_cb, rq) != 0)
        mc_metadata_cb(NULL, "cannot send Metadata request to broker", rq);
    evbuffer_free(body);
}

static void mc_apiversions_cb(kc_frame *resp, const char *err, void *arg)
{
    mc_cluster *mc = arg;
    if (mc->closing) {
        kc_frame_release(resp);
        return;
    }
    if (resp != NULL) {
        kc_rd rd;
        kc_arena a;
        kc_apiversions_resp r;
        kc_rd_init(&rd, resp->data, resp->len);
        kc_arena_init(&a);
        (void)kc_resp_hdr_decode(&rd, 0);
        if (kc_apiversions_resp_decode(&rd, 0, &a, &r) == 0 && r.error_code == 0) {
            for (int32_t i = 0; i < r.napi_keys; i++) {
                int16_t k = r.api_keys[i].api_key;
                if (k < 0 || k > KC_API_MAX)
                    continue;
                mc->versions[k].min = r.api_keys[i].min_version;
                mc->versions[k].max = r.api_keys[i].max_version;
                mc->versions[k].have = 1;
            }
            mc->have_versions = 1;
            int16_t mv = mc->versions[KC_API_METADATA].have ? mc->versions[KC_API_METADATA].max : 0;
            const kc_api_info *ai = kc_api_lookup(KC_API_METADATA);
            mc->metadata_version = mv > ai->max_version ? ai->max_version : mv;
        } else {
            err = rd.err ? rd.err : "ApiVersions error from broker";
        }
        kc_arena_destroy(&a);
        kc_frame_release(resp);
    }
    if (!mc->have_versions) {
        /* Retried every 500 ms: say it once (the connection logs each
         * broker's reason once per streak too), the rest at debug level. */
        kz_log(mc->versions_failures++ == 0 ? KZ_LOG_WARN : KZ_LOG_DEBUG,
               "cannot learn the backend's API versions: %s; retrying every 500 ms", err ? err : "?");
        mc_tick_arm(mc, 500);
        return;
    }
    if (mc->versions_failures > 0)
        kz_info("learned the backend's API versions after %d failed attempts", mc->versions_failures);
    mc_cluster_refresh(mc, NULL, -1, 0, NULL, NULL);
}

static void mc_send_apiversions(mc_cluster *mc)
{
    mc_conn *c = mc_any_conn(mc);
    struct evbuffer *body = evbuffer_new();
    if (c == NULL || body == NULL ||
        mc_conn_request(c, KC_API_APIVERSIONS, 0, kc_str_c("kzproxy"), body, 1, 0, mc_apiversions_cb, mc) != 0) {
        kz_warn("cannot reach any bootstrap server; retrying");
        mc_tick_arm(mc, 500);
    }
    if (body)
        evbuffer_free(body);
}

static void mc_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    mc_cluster *mc = arg;
    (void)fd;
    (void)what;
    if (!mc->have_versions) {
        mc_send_apiversions(mc);
        return;
    }
    if (!mc->full_inflight)
        mc_cluster_refresh(mc, NULL, -1, 0, NULL, NULL);
    if (mc->view)
        mc_tick_arm(mc, mc->cfg.refresh_ms);
}

static void mc_soon_cb(evutil_socket_t fd, short what, void *arg)
{
    mc_cluster *mc = arg;
    (void)fd;
    (void)what;
    mc->soon_pending = 0;
    if (mc->have_versions && !mc->full_inflight)
        mc_cluster_refresh(mc, NULL, -1, 0, NULL, NULL);
}

void mc_cluster_refresh_soon(mc_cluster *mc)
{
    if (mc->soon_pending)
        return;
    mc->soon_pending = 1;
    struct timeval tv = {0, 100000}; /* coalesce a burst of errors into one refresh */
    event_add(mc->soon, &tv);
}

mc_cluster *mc_cluster_new(struct event_base *base, struct evdns_base *dns, const mc_config *cfg)
{
    mc_cluster *mc = calloc(1, sizeof(*mc));
    if (mc == NULL)
        return NULL;
    mc->base = base;
    mc->dns = dns;
    mc->cfg = *cfg;
    mc->boot = calloc((size_t)(cfg->nbootstrap > 0 ? cfg->nbootstrap : 1), sizeof(mc_conn *));
    mc->tick = event_new(base, -1, 0, mc_tick_cb, mc);
    mc->soon = event_new(base, -1, 0, mc_soon_cb, mc);
    if (mc->boot == NULL || mc->tick == NULL || mc->soon == NULL)
        goto fail;
    for (int i = 0; i < cfg->nbootstrap; i++) {
        char host[256];
        int port;
        if (kz_split_hostport(cfg->bootstrap[i], host, sizeof(host), &port) != 0 || port == 0) {
            kz_err("bootstrap server '%s' is not host:port", cfg->bootstrap[i]);
            goto fail;
        }
        mc->boot[mc->nboot] = mc_conn_new(base, dns, host, port, -1, &cfg->conn, &mc->stats);
        if (mc->boot[mc->nboot] == NULL)
            goto fail;
        mc->nboot++;
    }
    return mc;
fail:
    mc_cluster_free(mc);
    return NULL;
}

void mc_cluster_start(mc_cluster *mc, mc_refresh_fn ready, void *arg)
{
    mc->ready = ready;
    mc->ready_arg = arg;
    mc_send_apiversions(mc);
}

void mc_cluster_free(mc_cluster *mc)
{
    if (mc == NULL)
        return;
    mc->closing = 1;
    for (int i = 0; i < mc->nboot; i++)
        mc_conn_free(mc->boot[i]);
    for (int i = 0; i < mc->npool; i++)
        mc_conn_free(mc->pool[i].conn);
    free(mc->boot);
    free(mc->pool);
    for (int i = 0; i < mc->ncoords; i++)
        free(mc->coords[i].key);
    free(mc->coords);
    if (mc->tick)
        event_free(mc->tick);
    if (mc->soon)
        event_free(mc->soon);
    mc_view_release(mc->view);
    free(mc);
}

mc_view *mc_cluster_view(mc_cluster *mc) { return mc->view; }

int mc_cluster_backend_versions(const mc_cluster *mc, int16_t key, int16_t *min, int16_t *max)
{
    if (key < 0 || key > KC_API_MAX || !mc->versions[key].have)
        return -1;
    *min = mc->versions[key].min;
    *max = mc->versions[key].max;
    return 0;
}

const mc_conn_stats *mc_cluster_stats(const mc_cluster *mc) { return &mc->stats; }

/* ---------------- coordinators ---------------- */

static mc_coord *mc_coord_find(mc_cluster *mc, int8_t key_type, kc_str key)
{
    for (int i = 0; i < mc->ncoords; i++) {
        mc_coord *c = &mc->coords[i];
        if (c->key_type == key_type && kc_str_eq(key, c->key)) {
            c->used = ++mc->coord_clock;
            return c;
        }
    }
    return NULL;
}

static void mc_coord_store(mc_cluster *mc, int8_t key_type, const char *key, int32_t broker_id)
{
    mc_coord *c = mc_coord_find(mc, key_type, kc_str_c(key));
    if (c == NULL) {
        if (mc->coords == NULL && (mc->coords = calloc(MC_COORD_CACHE_MAX, sizeof(mc_coord))) == NULL)
            return;
        if (mc->ncoords < MC_COORD_CACHE_MAX) {
            c = &mc->coords[mc->ncoords++];
        } else {
            c = &mc->coords[0];
            for (int i = 1; i < mc->ncoords; i++)
                if (mc->coords[i].used < c->used)
                    c = &mc->coords[i];
            free(c->key);
        }
        c->key = strdup(key);
        if (c->key == NULL) {
            *c = mc->coords[--mc->ncoords];
            return;
        }
        c->key_type = key_type;
        c->used = ++mc->coord_clock;
    }
    c->broker_id = broker_id;
}

typedef struct mc_coord_req {
    mc_cluster *mc;
    int8_t key_type;
    int16_t version;
    char *key;
    mc_coord_fn fn;
    void *arg;
} mc_coord_req;

static void mc_coord_cb(kc_frame *resp, const char *err, void *arg)
{
    mc_coord_req *cr = arg;
    mc_cluster *mc = cr->mc;
    int32_t broker = -1;
    int16_t code = KC_ERR_COORDINATOR_NOT_AVAILABLE;
    if (resp != NULL && !mc->closing) {
        kc_rd rd;
        kc_arena a;
        kc_findcoordinator_resp r;
        kc_rd_init(&rd, resp->data, resp->len);
        kc_arena_init(&a);
        (void)kc_resp_hdr_decode(&rd, kc_resp_hdr_version(KC_API_FINDCOORDINATOR, cr->version));
        if (kc_findcoordinator_resp_decode(&rd, cr->version, &a, &r) == 0) {
            code = r.error_code;
            if (code == 0) {
                broker = r.node_id;
                mc_coord_store(mc, cr->key_type, cr->key, broker);
            }
        } else {
            kz_warn("malformed FindCoordinator response from broker: %s", rd.err);
        }
        kc_arena_destroy(&a);
    } else if (err) {
        kz_info("FindCoordinator for %s: %s", cr->key, err);
    }
    kc_frame_release(resp);
    cr->fn(broker, code, cr->arg); /* even when closing: the caller frees its state */
    free(cr->key);
    free(cr);
}

void mc_cluster_coordinator(mc_cluster *mc, int8_t key_type, kc_str key, int refresh, mc_coord_fn fn,
                            void *arg)
{
    if (!refresh) {
        mc_coord *c = mc_coord_find(mc, key_type, key);
        if (c != NULL && mc_view_broker(mc->view, c->broker_id) != NULL) {
            fn(c->broker_id, 0, arg);
            return;
        }
    }
    int16_t bmin = 0, bmax = 0;
    mc_conn *conn = mc->have_versions ? mc_any_conn(mc) : NULL;
    mc_coord_req *cr = conn ? calloc(1, sizeof(*cr)) : NULL;
    struct evbuffer *body = cr ? evbuffer_new() : NULL;
    if (body == NULL || mc_cluster_backend_versions(mc, KC_API_FINDCOORDINATOR, &bmin, &bmax) != 0 ||
        (key_type != 0 && bmax < 1) || (cr->key = kc_str_dup(key)) == NULL) {
        if (body)
            evbuffer_free(body);
        free(cr);
        fn(-1, KC_ERR_COORDINATOR_NOT_AVAILABLE, arg);
        return;
    }
    cr->mc = mc;
    cr->key_type = key_type;
    cr->version = bmax > 3 ? 3 : bmax; /* one key per request: the v0-v3 form */
    cr->fn = fn;
    cr->arg = arg;
    kc_findcoordinator_req req = {.key = key, .key_type = key_type};
    kc_wr w;
    kc_wr_init(&w, body, NULL);
    kc_findcoordinator_req_encode(&w, cr->version, &req);
    if (w.err || mc_conn_request(conn, KC_API_FINDCOORDINATOR, cr->version, kc_str_c("kzproxy"), body, 1,
                                 0, mc_coord_cb, cr) != 0)
        mc_coord_cb(NULL, "cannot send FindCoordinator to broker", cr);
    evbuffer_free(body);
}
