/*
 * router-out: WAL-path partitions go into a WAL object per destination zone;
 * once the object is stored, one KzWalAppend per object goes to a peer of
 * that zone, and its per-partition answers complete the client's batches.
 */
#include "config.h"

#include "router/rt_int.h"

#include "codec/kc_peer.h"
#include "codec/kc_proto.h"
#include "common/kz_log.h"
#include "meta-client/mc_xzone.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

int64_t rt_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---------------- batches ---------------- */

static void rt_part_fail(rt_batch *b, int part, int16_t code)
{
    rt_part *p = &b->parts[part];
    p->result = (kc_produce_resp_partition){0};
    p->result.index = p->partition;
    p->result.error_code = code;
    p->result.base_offset = -1;
    p->result.log_append_time_ms = -1;
    p->result.log_start_offset = -1;
    p->result.error_message = kc_str_c(NULL);
    b->rt->st.out_errors++;
}

/* One part is resolved; the last one completes the batch. */
static void rt_part_done(rt_batch *b)
{
    if (--b->pending == 0)
        b->done(b, b->arg);
}

/* Copy a result into the batch (its strings into the batch's arena). */
static void rt_part_result(rt_batch *b, int part, const kc_produce_resp_partition *r)
{
    rt_part *p = &b->parts[part];
    p->result = *r;
    p->result.index = p->partition;
    p->result.tags = (kc_tags){0};
    p->result.error_message = kc_str_c(NULL);
    p->result.nrecord_errors = 0;
    p->result.record_errors = NULL;
    if (r->error_message.len > 0) {
        char *s = kc_arena_calloc(b->arena, (size_t)r->error_message.len, 1);
        if (s) {
            memcpy(s, r->error_message.p, (size_t)r->error_message.len);
            p->result.error_message = (kc_str){s, r->error_message.len};
        }
    }
    if (r->nrecord_errors > 0) {
        kc_produce_record_error *e = kc_arena_calloc(b->arena, (size_t)r->nrecord_errors, sizeof(*e));
        if (e) {
            for (int32_t i = 0; i < r->nrecord_errors; i++) {
                e[i].batch_index = r->record_errors[i].batch_index;
                e[i].batch_index_error_message = kc_str_c(NULL);
                kc_str m = r->record_errors[i].batch_index_error_message;
                char *s = m.len > 0 ? kc_arena_calloc(b->arena, (size_t)m.len, 1) : NULL;
                if (s) {
                    memcpy(s, m.p, (size_t)m.len);
                    e[i].batch_index_error_message = (kc_str){s, m.len};
                }
            }
            p->result.record_errors = e;
            p->result.nrecord_errors = r->nrecord_errors;
        }
    }
    if (r->error_code != 0)
        b->rt->st.out_errors++;
}

/* ---------------- destinations ---------------- */

static void rt_sealed_cb(const ow_sealed *obj, void *arg);
static void rt_room_cb(void *arg);

static void rt_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rt_dest *d = arg;
    ow_writer_flush(d->w); /* appends stopped: the clients wait on this object */
}

static rt_dest *rt_dest_get(rt_router *rt, const char *zone)
{
    for (int i = 0; i < rt->ndests; i++)
        if (strcmp(rt->dests[i]->zone, zone) == 0)
            return rt->dests[i];
    if (rt->ndests == (int)(sizeof(rt->dests) / sizeof(rt->dests[0]))) {
        kz_err("router: more than %d destination zones", rt->ndests);
        return NULL;
    }
    rt_dest *d = calloc(1, sizeof(*d));
    if (d == NULL || (d->zone = strdup(zone)) == NULL) {
        free(d);
        return NULL;
    }
    d->rt = rt;
    ow_writer_config wc;
    ow_writer_config_init(&wc);
    wc.seal_bytes = rt->cfg.seal_bytes;
    wc.seal_age_ms = rt->cfg.seal_age_ms;
    wc.max_inflight = rt->cfg.max_inflight_uploads;
    wc.mem_cap = rt->cfg.mem_cap;
    wc.proxy_id = rt->proxy_id;
    wc.zone = rt->zone;
    wc.key_prefix = rt->key_prefix;
    wc.gc = rt->cfg.gc;
    char err[256];
    d->w = ow_writer_new(rt->base, rt->cfg.store, &wc, rt_sealed_cb, d, err, sizeof(err));
    if (d->w == NULL) {
        kz_err("router: cannot create the WAL writer for zone %s: %s", zone, err);
        free(d->zone);
        free(d);
        return NULL;
    }
    if (rt->cfg.seal_idle_ms > 0 && (d->idle = event_new(rt->base, -1, 0, rt_idle_cb, d)) == NULL) {
        ow_writer_free(d->w);
        free(d->zone);
        free(d);
        return NULL;
    }
    rt->dests[rt->ndests++] = d;
    return d;
}

/* Remember that part of b went into object seq of d. */
static int rt_dest_track(rt_dest *d, uint64_t seq, rt_batch *b, int part, uint32_t chunk)
{
    rt_obj *o = d->tail;
    if (o == NULL || o->seq != seq) {
        o = calloc(1, sizeof(*o));
        if (o == NULL)
            return -1;
        o->seq = seq;
        if (d->tail)
            d->tail->next = o;
        else
            d->head = o;
        d->tail = o;
    }
    if (o->n == o->cap) {
        int cap = o->cap ? o->cap * 2 : 16;
        rt_ent *ne = realloc(o->ents, (size_t)cap * sizeof(*ne));
        if (ne == NULL)
            return -1;
        o->ents = ne;
        o->cap = cap;
    }
    o->ents[o->n++] = (rt_ent){b, part, chunk};
    return 0;
}

/* ---------------- submitting ---------------- */

/* The zone of a partition's leader, NULL when it is unknown now. */
static const char *rt_leader_zone(rt_router *rt, const mc_view *v, int32_t leader_id)
{
    const mc_broker *br = v ? mc_view_broker(v, leader_id) : NULL;
    (void)rt;
    return br ? br->rack : NULL;
}

int rt_out_path(rt_router *rt, const mc_view *v, int32_t leader_id)
{
    if (rt == NULL || !mc_cluster_broker_remote(rt->mc, v, leader_id))
        return RT_PATH_DIRECT;
    if (rt->cfg.cross_zone_direct)
        return RT_PATH_CROSS;
    const char *zone = rt_leader_zone(rt, v, leader_id);
    if (zone == NULL || mc_peers_pick(rt->peers, zone, (uint32_t)rt->cfg.node_id, -1) == NULL)
        return RT_PATH_CROSS; /* no healthy proxy there: cross zones rather than fail */
    return RT_PATH_WAL;
}

/*
 * Hand the batch's parts, from b->submitted on, to the writers. Returns 1
 * when all are taken, 0 when a writer is full (the batch waits for room).
 */
static int rt_batch_feed(rt_router *rt, rt_batch *b)
{
    mc_view *v = mc_cluster_view(rt->mc);
    while (b->submitted < b->nparts) {
        int i = b->submitted;
        rt_part *p = &b->parts[i];
        const char *zone = rt_leader_zone(rt, v, p->leader_id);
        rt_dest *d = zone ? rt_dest_get(rt, zone) : NULL;
        if (d == NULL || p->records.len <= 0) {
            rt_part_fail(b, i, KC_ERR_LEADER_NOT_AVAILABLE);
            b->submitted++;
            rt_part_done(b);
            continue;
        }
        char topic[256];
        size_t tl = (size_t)p->topic.len < sizeof(topic) - 1 ? (size_t)p->topic.len : sizeof(topic) - 1;
        memcpy(topic, p->topic.p, tl);
        topic[tl] = '\0';
        struct evbuffer *eb = evbuffer_new();
        ow_ticket t;
        int rc = OW_ENOMEM;
        if (eb && kc_frame_add_ref(eb, b->frame, p->records.p, (size_t)p->records.len) == 0)
            rc = ow_writer_append_evbuffer(d->w, d->zone, topic, p->partition, eb, &t);
        if (eb)
            evbuffer_free(eb);
        if (rc == OW_EAGAIN) {
            rt->st.out_waits++;
            if (!d->waiting && ow_writer_wait_room(d->w, rt_room_cb, d) == OW_OK)
                d->waiting = 1;
            return 0;
        }
        b->submitted++;
        if (rc != OW_OK) {
            kz_warn("router: cannot add %s/%d (%d bytes) to a WAL object: %s", topic, p->partition,
                    p->records.len, ow_err_name(rc));
            rt_part_fail(b, i, rc == OW_ETOOBIG ? RT_ERR_MESSAGE_TOO_LARGE : KC_ERR_REQUEST_TIMED_OUT);
            rt_part_done(b);
            continue;
        }
        if (rt_dest_track(d, t.seq, b, i, t.chunk) != 0) {
            /* The bytes are in the object but nobody will know: fail the part. */
            rt_part_fail(b, i, KC_ERR_REQUEST_TIMED_OUT);
            rt_part_done(b);
            continue;
        }
        rt->st.out_parts++;
        rt->st.out_bytes += (uint64_t)p->records.len;
        if (d->idle) {
            struct timeval tv = {rt->cfg.seal_idle_ms / 1000, (rt->cfg.seal_idle_ms % 1000) * 1000};
            event_add(d->idle, &tv);
        }
    }
    return 1;
}

/* Feed waiting batches in order while the writers take them. */
static void rt_pump(rt_router *rt)
{
    while (rt->wait_head) {
        rt_batch *b = rt->wait_head;
        if (!rt_batch_feed(rt, b))
            return;
        rt->wait_head = b->next_wait;
        if (rt->wait_head == NULL)
            rt->wait_tail = NULL;
        b->next_wait = NULL;
        rt_part_done(b); /* the submit guard */
    }
}

static void rt_room_cb(void *arg)
{
    rt_dest *d = arg;
    d->waiting = 0;
    rt_pump(d->rt);
}

void rt_out_submit(rt_router *rt, rt_batch *b)
{
    b->rt = rt;
    b->submitted = 0;
    b->pending = b->nparts + 1; /* +1 until every part is handed over */
    b->next_wait = NULL;
    rt->st.out_batches++;
    /* Behind batches already waiting, so a producer's order survives. */
    if (rt->wait_tail)
        rt->wait_tail->next_wait = b;
    else
        rt->wait_head = b;
    rt->wait_tail = b;
    rt_pump(rt);
}

/* ---------------- the RPC ---------------- */

typedef struct rt_rpc {
    rt_router *rt;
    rt_dest *d;
    char *key;
    int nents;
    rt_ent *ents;       /* in the order the request lists them */
    int ngroups;
    int *group_sizes;   /* parts per group, in order */
    uint8_t *body;      /* the sealed request, kept for a retry */
    size_t body_len;
    uint8_t nonce[KC_PEER_NONCE_LEN];
    int32_t peer_id;
    int attempts;
    int32_t wait_ms;
} rt_rpc;

static void rt_rpc_free(rt_rpc *r)
{
    free(r->key);
    free(r->ents);
    free(r->group_sizes);
    free(r->body);
    free(r);
}

static void rt_rpc_fail(rt_rpc *r, int16_t code)
{
    for (int i = 0; i < r->nents; i++) {
        rt_part_fail(r->ents[i].b, r->ents[i].part, code);
        rt_part_done(r->ents[i].b);
    }
}

/* Every destination that got its answer (or never will) confirms, so the
 * object can be deleted. */
static void rt_rpc_finish(rt_rpc *r)
{
    if (r->rt->cfg.gc)
        (void)ow_gc_confirm(r->rt->cfg.gc, r->key, r->d->zone);
    rt_rpc_free(r);
}

static void rt_rpc_send(rt_rpc *r);

static void rt_rpc_cb(kc_frame *resp, const char *err, void *arg)
{
    rt_rpc *r = arg;
    rt_router *rt = r->rt;
    char why[256] = "";
    if (resp == NULL) {
        snprintf(why, sizeof(why), "%s", err ? err : "connection failed");
    } else {
        kc_rd rd;
        kc_rd_init(&rd, resp->data, resp->len);
        (void)kc_resp_hdr_decode(&rd, 1);
        size_t plen = 0;
        const uint8_t *p = rd.err ? NULL : rd.p + rd.off;
        if (p == NULL || kc_peer_verify(p, kc_rd_remain(&rd), rt->cfg.secret, rt->cfg.secret_len,
                                        KC_API_KZ_WAL_APPEND, KC_PEER_VERSION, r->nonce, &plen) != 0) {
            snprintf(why, sizeof(why), "answer failed authentication (peer_secret differs?)");
        } else {
            kc_arena a;
            kc_arena_init(&a);
            kc_rd prd;
            kc_rd_init(&prd, p, plen);
            kc_wal_append_resp out;
            int ok = kc_wal_append_resp_decode(&prd, &a, &out) == 0 && out.ngroups == r->ngroups;
            for (int g = 0; ok && g < out.ngroups; g++)
                ok = out.groups[g].nparts == r->group_sizes[g];
            if (!ok) {
                snprintf(why, sizeof(why), "malformed answer: %s",
                         prd.err ? prd.err : "groups or partitions do not match the request");
            } else {
                int k = 0;
                for (int g = 0; g < out.ngroups; g++)
                    for (int32_t j = 0; j < out.groups[g].nparts; j++, k++)
                        rt_part_result(r->ents[k].b, r->ents[k].part, &out.groups[g].parts[j]);
                kc_arena_destroy(&a);
                kc_frame_release(resp);
                for (int i = 0; i < r->nents; i++)
                    rt_part_done(r->ents[i].b);
                rt_rpc_finish(r);
                return;
            }
            kc_arena_destroy(&a);
        }
        kc_frame_release(resp);
    }
    rt->st.rpcs_failed++;
    kz_warn("router: KzWalAppend of %s to peer %d (zone %s) failed: %s", r->key, r->peer_id, r->d->zone, why);
    mc_peers_mark_down(rt->peers, r->peer_id, why);
    if (r->attempts < 2 && !rt->closing) {
        rt->st.rpcs_retried++;
        rt_rpc_send(r);
        return;
    }
    rt_rpc_fail(r, KC_ERR_REQUEST_TIMED_OUT);
    rt_rpc_finish(r);
}

static void rt_rpc_send(rt_rpc *r)
{
    rt_router *rt = r->rt;
    int32_t avoid = r->attempts > 0 ? r->peer_id : -1;
    for (;;) {
        const mc_peer *peer = mc_peers_pick(rt->peers, r->d->zone, (uint32_t)rt->cfg.node_id, avoid);
        if (peer == NULL || r->attempts >= 2) {
            kz_warn("router: no healthy peer in zone %s for %s: its partitions get a retriable error",
                    r->d->zone, r->key);
            rt_rpc_fail(r, r->attempts > 0 ? KC_ERR_REQUEST_TIMED_OUT : KC_ERR_LEADER_NOT_AVAILABLE);
            rt_rpc_finish(r);
            return;
        }
        r->attempts++;
        r->peer_id = peer->node_id;
        struct evbuffer *eb = evbuffer_new();
        if (eb && evbuffer_add(eb, r->body, r->body_len) == 0 &&
            mc_conn_request(peer->conn, KC_API_KZ_WAL_APPEND, KC_PEER_VERSION, kc_str_c(rt->proxy_id), eb, 1,
                            r->wait_ms + rt->cfg.rpc_timeout_ms, rt_rpc_cb, r) == 0) {
            evbuffer_free(eb);
            rt->st.rpcs_sent++;
            return;
        }
        if (eb)
            evbuffer_free(eb);
        /* Connection in backoff: that peer is down, try the next. */
        rt->st.rpcs_failed++;
        mc_peers_mark_down(rt->peers, peer->node_id, "connection refused");
        avoid = peer->node_id;
    }
}

/* Build the request for object o (key) and send it. */
static void rt_rpc_start(rt_dest *d, rt_obj *o, const ow_sealed *obj)
{
    rt_router *rt = d->rt;
    rt_rpc *r = calloc(1, sizeof(*r));
    kc_arena a;
    kc_arena_init(&a);
    struct evbuffer *eb = evbuffer_new();
    if (r == NULL || eb == NULL || (r->key = strdup(obj->key)) == NULL)
        goto oom;
    r->rt = rt;
    r->d = d;
    r->ents = calloc((size_t)o->n, sizeof(*r->ents));
    r->group_sizes = calloc((size_t)o->n, sizeof(int));
    if (r->ents == NULL || r->group_sizes == NULL)
        goto oom;

    /* Groups: runs of the same batch (a batch's parts are appended together). */
    kc_wal_append_req req = {.key = kc_str_c(obj->key)};
    req.groups = kc_arena_calloc(&a, (size_t)o->n, sizeof(*req.groups));
    if (req.groups == NULL)
        goto oom;
    for (int i = 0; i < o->n;) {
        rt_batch *b = o->ents[i].b;
        int j = i;
        while (j < o->n && o->ents[j].b == b)
            j++;
        kc_wal_group *g = &req.groups[req.ngroups];
        g->produce_version = b->version;
        g->acks = b->acks;
        g->timeout_ms = b->timeout_ms;
        g->transactional_id = b->transactional_id;
        g->client_id = b->client_id;
        if (b->timeout_ms > r->wait_ms)
            r->wait_ms = b->timeout_ms;
        g->brokers = kc_arena_calloc(&a, (size_t)(j - i), sizeof(*g->brokers));
        if (g->brokers == NULL)
            goto oom;
        /* Per leader, in order of first appearance. */
        int start = r->nents;
        for (int k = i; k < j; k++) {
            int32_t leader = b->parts[o->ents[k].part].leader_id;
            int bi = 0;
            while (bi < g->nbrokers && g->brokers[bi].broker_id != leader)
                bi++;
            if (bi == g->nbrokers) {
                g->brokers[bi].broker_id = leader;
                g->brokers[bi].parts = kc_arena_calloc(&a, (size_t)(j - i), sizeof(kc_wal_part));
                if (g->brokers[bi].parts == NULL)
                    goto oom;
                g->nbrokers++;
            }
        }
        for (int bi = 0; bi < g->nbrokers; bi++) {
            kc_wal_broker *wb = &g->brokers[bi];
            for (int k = i; k < j; k++) {
                const rt_part *p = &b->parts[o->ents[k].part];
                if (p->leader_id != wb->broker_id)
                    continue;
                if (o->ents[k].chunk >= obj->nchunks)
                    goto oom; /* cannot happen: the writer reports every chunk */
                const ow_range *rg = &obj->chunks[o->ents[k].chunk].range;
                wb->parts[wb->nparts++] = (kc_wal_part){p->topic, p->partition, (int64_t)rg->off,
                                                        (int32_t)rg->len, rg->crc32c};
                r->ents[r->nents++] = o->ents[k];
            }
        }
        r->group_sizes[req.ngroups] = r->nents - start;
        req.ngroups++;
        i = j;
    }
    r->ngroups = req.ngroups;

    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    kc_peer_auth auth = {.sender = rt->cfg.node_id, .ts_ms = rt_wall_ms()};
    kc_peer_auth_write(&w, &auth);
    kc_wal_append_req_encode(&w, &req);
    memcpy(r->nonce, auth.nonce, sizeof(r->nonce));
    if (w.err || kc_peer_seal(eb, rt->cfg.secret, rt->cfg.secret_len, KC_API_KZ_WAL_APPEND, KC_PEER_VERSION,
                              NULL) != 0)
        goto oom;
    r->body_len = evbuffer_get_length(eb);
    r->body = malloc(r->body_len);
    if (r->body == NULL)
        goto oom;
    evbuffer_remove(eb, r->body, r->body_len);
    evbuffer_free(eb);
    kc_arena_destroy(&a);
    rt_rpc_send(r);
    return;
oom:
    kz_err("router: out of memory building the KzWalAppend for %s", obj->key);
    if (eb)
        evbuffer_free(eb);
    kc_arena_destroy(&a);
    for (int i = 0; i < o->n; i++) {
        rt_part_fail(o->ents[i].b, o->ents[i].part, KC_ERR_REQUEST_TIMED_OUT);
        rt_part_done(o->ents[i].b);
    }
    if (r) {
        r->nents = 0;
        r->rt = rt;
        r->d = d;
        if (r->key)
            rt_rpc_finish(r);
        else
            rt_rpc_free(r);
    }
}

static void rt_sealed_cb(const ow_sealed *obj, void *arg)
{
    rt_dest *d = arg;
    rt_obj *o = d->head;
    if (o == NULL || o->seq != obj->seq) {
        /* Every chunk is tracked as it is appended, in seal order. */
        kz_err("router: object %llu of zone %s reported out of order (expected %llu)",
               (unsigned long long)obj->seq, d->zone, o ? (unsigned long long)o->seq : 0ULL);
        return;
    }
    d->head = o->next;
    if (d->head == NULL)
        d->tail = NULL;
    if (obj->err != OW_OK) {
        kz_warn("router: WAL object for zone %s not stored: %s", d->zone, obj->errmsg);
        for (int i = 0; i < o->n; i++) {
            rt_part_fail(o->ents[i].b, o->ents[i].part, KC_ERR_REQUEST_TIMED_OUT);
            rt_part_done(o->ents[i].b);
        }
    } else {
        rt_rpc_start(d, o, obj);
    }
    free(o->ents);
    free(o);
}

/* ---------------- life cycle ---------------- */

rt_router *rt_new(struct event_base *base, mc_cluster *mc, mc_peers *peers, const rt_config *cfg,
                  char *errstr, size_t errstr_size)
{
    if (cfg->store == NULL || cfg->zone == NULL || cfg->secret == NULL || cfg->secret_len == 0) {
        snprintf(errstr, errstr_size, "router: a store, a zone and a peer secret are required");
        return NULL;
    }
    rt_router *rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    rt->base = base;
    rt->mc = mc;
    rt->peers = peers;
    rt->cfg = *cfg;
    rt->zone = strdup(cfg->zone);
    rt->key_prefix = strdup(cfg->key_prefix ? cfg->key_prefix : "wal/");
    snprintf(rt->proxy_id, sizeof(rt->proxy_id), "%d", (int)cfg->node_id);
    if (rt->zone == NULL || rt->key_prefix == NULL) {
        rt_free(rt);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    return rt;
}

void rt_free(rt_router *rt)
{
    if (rt == NULL)
        return;
    rt->closing = 1;
    rt_in_free_all(rt);
    for (int i = 0; i < rt->ndests; i++) {
        rt_dest *d = rt->dests[i];
        if (d->idle)
            event_free(d->idle);
        ow_writer_free(d->w);
        while (d->head) {
            rt_obj *o = d->head;
            d->head = o->next;
            free(o->ents);
            free(o);
        }
        free(d->zone);
        free(d);
    }
    free(rt->zone);
    free(rt->key_prefix);
    free(rt);
}

const rt_stats *rt_get_stats(const rt_router *rt) { return &rt->st; }

uint64_t rt_mem_used(const rt_router *rt)
{
    uint64_t n = 0;
    for (int i = 0; i < rt->ndests; i++)
        n += ow_writer_mem_used(rt->dests[i]->w);
    return n;
}
