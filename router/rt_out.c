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

/* Retriable codes a later part may inherit from the failure it would overtake. */
static int16_t rt_retriable(int16_t code)
{
    return code == KC_ERR_NOT_LEADER_OR_FOLLOWER || code == KC_ERR_LEADER_NOT_AVAILABLE ||
                   code == KC_ERR_REQUEST_TIMED_OUT
               ? code
               : KC_ERR_REQUEST_TIMED_OUT;
}

/* A part ended with an error: later parts of its key that are in flight
 * must not be appended before the client's retry of it. */
static void rt_poison(rt_batch *b, int part, int16_t code)
{
    rt_part *p = &b->parts[part];
    rt_okey *k = p->okey;
    if (k == NULL || p->poisoned)
        return;
    p->poisoned = 1;
    k->open_fails++;
    if (k->fail_from == 0 || b->seq < k->fail_from) {
        k->fail_from = b->seq;
        k->fail_code = rt_retriable(code);
    }
}

/* Would this part, about to be sent, overtake the retry of a failed one? */
static int rt_overtakes(const rt_batch *b, int part)
{
    const rt_okey *k = b->parts[part].okey;
    return k && k->fail_from != 0 && b->seq > k->fail_from && (k->open_fails > 0 || b->seq < k->fail_to);
}

static void rt_part_fail(rt_batch *b, int part, int16_t code, const char *cause, int32_t peer)
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
    rt_note(b->rt, "router-out", cause, code, peer, p->topic, p->partition);
    rt_poison(b, part, code);
}

/* The batch completes: its keys are released (a failed part keeps its key
 * failing later batches submitted up to now), then the caller is told. */
static void rt_batch_complete(rt_batch *b)
{
    rt_router *rt = b->rt;
    for (int i = 0; i < b->nparts; i++) {
        rt_part *p = &b->parts[i];
        rt_okey *k = p->okey;
        if (k == NULL)
            continue;
        if (p->tracked) { /* cannot happen: a tracked part completes through rt_part_resolved */
            p->tracked = 0;
            k->queued--;
        }
        if (p->poisoned) {
            p->poisoned = 0;
            k->open_fails--;
            if (k->fail_to < rt->submit_seq + 1)
                k->fail_to = rt->submit_seq + 1;
        }
        p->okey = NULL;
        rt_okey_unref(rt, k);
    }
    b->done(b, b->arg);
}

/* One part is resolved; the last one completes the batch. */
static void rt_part_done(rt_batch *b)
{
    if (--b->pending == 0)
        rt_batch_complete(b);
}

/* A part that was in an object is resolved. */
static void rt_part_resolved(rt_batch *b, int part)
{
    rt_part *p = &b->parts[part];
    if (p->tracked) {
        p->tracked = 0;
        p->okey->queued--;
    }
    rt_part_done(b);
}

/* Copy a result into the batch (its strings into the batch's arena). */
static void rt_part_result(rt_batch *b, int part, const kc_produce_resp_partition *r, int32_t peer)
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
    if (r->error_code != 0) {
        b->rt->st.out_errors++;
        rt_note(b->rt, "router-out", "the peer answered with this error (its own, or the leader's)", r->error_code,
                peer, p->topic, p->partition);
        rt_poison(b, part, r->error_code);
    }
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
    o->ents[o->n++] = (rt_ent){.b = b, .part = part, .chunk = chunk};
    rt_part *p = &b->parts[part];
    if (p->okey) {
        p->tracked = 1;
        p->okey->queued++;
        p->okey->dest = d;
    }
    return 0;
}

static void rt_obj_free(rt_obj *o)
{
    free(o->ents);
    free(o->key);
    free(o);
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
            b->submitted++;
            rt_part_fail(b, i, KC_ERR_LEADER_NOT_AVAILABLE, "leader's zone unknown", -1);
            rt_part_done(b);
            continue;
        }
        if (p->okey && p->okey->queued > 0 && p->okey->dest != d) {
            /* The leader moved to another zone while earlier parts of this
             * partition are on their way to the old one: this one would
             * overtake them. The client refreshes its metadata and retries. */
            b->submitted++;
            rt->st.order_holds++;
            rt_part_fail(b, i, KC_ERR_NOT_LEADER_OR_FOLLOWER,
                         "held: earlier parts of this partition from this client are in flight to another zone",
                         -1);
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
            rt_part_fail(b, i, rc == OW_ETOOBIG ? RT_ERR_MESSAGE_TOO_LARGE : KC_ERR_REQUEST_TIMED_OUT,
                         "cannot add it to a WAL object", -1);
            rt_part_done(b);
            continue;
        }
        if (rt_dest_track(d, t.seq, b, i, t.chunk) != 0) {
            /* The bytes are in the object but nobody will know: fail the part. */
            rt_part_fail(b, i, KC_ERR_REQUEST_TIMED_OUT, "out of memory tracking it", -1);
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
    b->seq = ++rt->submit_seq;
    b->submitted = 0;
    b->pending = b->nparts + 1; /* +1 until every part is handed over */
    b->next_wait = NULL;
    for (int i = 0; i < b->nparts; i++) {
        rt_part *p = &b->parts[i];
        p->tracked = p->poisoned = 0;
        /* No key (out of memory): the part goes unordered by the checks. */
        p->okey = rt_okey_get(rt, b->stream, p->topic, p->partition, 1);
        if (p->okey)
            p->okey->refs++;
    }
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

/*
 * One KzWalAppend in flight per destination zone: sealed objects wait in
 * d's queue, and the next one's request is built only once the previous one
 * has its outcome, so a failure is known (and later parts of the failed
 * partitions held back) before anything that follows is sent. A request
 * that may have reached a peer is never sent again.
 */
typedef struct rt_rpc {
    rt_router *rt;
    rt_dest *d;         /* NULL once the router is freed: the answer is dropped */
    char *key;
    int nents;
    rt_ent *ents;       /* in the order the request lists them */
    int ngroups;
    int *group_sizes;   /* parts per group, in order */
    uint8_t *body;      /* the sealed request, for another peer if one refuses at once */
    size_t body_len;
    uint8_t nonce[KC_PEER_NONCE_LEN];
    int32_t peer_id;
    int32_t wait_ms;
} rt_rpc;

static void rt_dest_kick(rt_dest *d);

static void rt_rpc_free(rt_rpc *r)
{
    free(r->key);
    free(r->ents);
    free(r->group_sizes);
    free(r->body);
    free(r);
}

static void rt_rpc_fail(rt_rpc *r, int16_t code, const char *cause, int32_t peer)
{
    /* Every part first (so each failure marks its key), then the batches. */
    for (int i = 0; i < r->nents; i++)
        rt_part_fail(r->ents[i].b, r->ents[i].part, code, cause, peer);
    for (int i = 0; i < r->nents; i++)
        rt_part_resolved(r->ents[i].b, r->ents[i].part);
}

/* Every destination that got its answer (or never will) confirms, so the
 * object can be deleted. */
static void rt_confirm(rt_router *rt, const char *key, const char *zone);

static void rt_rpc_finish(rt_rpc *r)
{
    rt_confirm(r->rt, r->key, r->d->zone);
    rt_rpc_free(r);
}

static const char RT_CAUSE_LOST[] = "KzWalAppend failed after it was sent (connection lost or timed out): "
                                    "outcome unknown, not resent";
static const char RT_CAUSE_MAC[] = "KzWalAppend answer failed authentication: outcome unknown, not resent";
static const char RT_CAUSE_BAD[] = "KzWalAppend answer malformed: outcome unknown, not resent";

static void rt_rpc_cb(kc_frame *resp, const char *err, void *arg)
{
    rt_rpc *r = arg;
    rt_dest *d = r->d;
    if (d == NULL) { /* the router is gone */
        kc_frame_release(resp);
        rt_rpc_free(r);
        return;
    }
    rt_router *rt = r->rt;
    if (d->busy == r)
        d->busy = NULL;
    char why[256] = "";
    const char *cause = RT_CAUSE_LOST;
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
            cause = RT_CAUSE_MAC;
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
                cause = RT_CAUSE_BAD;
            } else {
                int k = 0;
                for (int g = 0; g < out.ngroups; g++)
                    for (int32_t j = 0; j < out.groups[g].nparts; j++, k++)
                        rt_part_result(r->ents[k].b, r->ents[k].part, &out.groups[g].parts[j], r->peer_id);
                kc_arena_destroy(&a);
                kc_frame_release(resp);
                for (int i = 0; i < r->nents; i++)
                    rt_part_resolved(r->ents[i].b, r->ents[i].part);
                rt_rpc_finish(r);
                rt_dest_kick(d);
                return;
            }
            kc_arena_destroy(&a);
        }
        kc_frame_release(resp);
    }
    rt->st.rpcs_failed++;
    kz_warn("router: KzWalAppend of %s to peer %d (zone %s) failed: %s; its %d partitions get "
            "REQUEST_TIMED_OUT (it may have been appended: not resent)",
            r->key, r->peer_id, d->zone, why, r->nents);
    mc_peers_mark_down(rt->peers, r->peer_id, why);
    rt_rpc_fail(r, KC_ERR_REQUEST_TIMED_OUT, cause, r->peer_id);
    rt_rpc_finish(r);
    rt_dest_kick(d);
}

/* Hand r to a healthy peer of its zone; d->busy is r until its outcome. A
 * peer whose connection refuses at once (in backoff) never saw it: the next
 * peer may take it. No peer: r's parts fail (certainly not appended). */
static void rt_rpc_send(rt_rpc *r)
{
    rt_router *rt = r->rt;
    rt_dest *d = r->d;
    int32_t avoid = -1;
    for (int tries = 0;; tries++) {
        const mc_peer *peer = tries < 8 ? mc_peers_pick(rt->peers, d->zone, (uint32_t)rt->cfg.node_id, avoid)
                                        : NULL;
        if (peer == NULL) {
            kz_warn("router: no healthy peer in zone %s for %s: its %d partitions get NOT_LEADER_OR_FOLLOWER",
                    d->zone, r->key, r->nents);
            rt_rpc_fail(r, KC_ERR_NOT_LEADER_OR_FOLLOWER, "no healthy peer in the leader's zone (not sent)", -1);
            rt_rpc_finish(r);
            return;
        }
        if (tries > 0)
            rt->st.rpcs_retried++;
        r->peer_id = peer->node_id;
        struct evbuffer *eb = evbuffer_new();
        if (eb && evbuffer_add(eb, r->body, r->body_len) == 0) {
            d->busy = r; /* the answer may come before mc_conn_request returns */
            if (mc_conn_request(peer->conn, KC_API_KZ_WAL_APPEND, KC_PEER_VERSION, kc_str_c(rt->proxy_id), eb, 1,
                                r->wait_ms + rt->cfg.rpc_timeout_ms, rt_rpc_cb, r) == 0) {
                evbuffer_free(eb);
                rt->st.rpcs_sent++;
                return; /* r may be freed already */
            }
            d->busy = NULL;
        }
        if (eb)
            evbuffer_free(eb);
        /* Refused at once (connection in backoff): not sent, try the next. */
        rt->st.rpcs_failed++;
        mc_peers_mark_down(rt->peers, peer->node_id, "connection refused");
        avoid = peer->node_id;
    }
}

/* Fail n parts (each marks its key first), then resolve them. */
static void rt_ents_fail(rt_ent *e, int n, int16_t code, const char *cause)
{
    for (int i = 0; i < n; i++)
        rt_part_fail(e[i].b, e[i].part, code, cause, -1);
    for (int i = 0; i < n; i++)
        rt_part_resolved(e[i].b, e[i].part);
}

static void rt_confirm(rt_router *rt, const char *key, const char *zone)
{
    if (rt->cfg.gc)
        (void)ow_gc_confirm(rt->cfg.gc, key, zone);
}

/* Build the request for sealed object o and send it. Parts that would
 * overtake the retry of a failed earlier part of their partition fail here
 * instead of being sent. */
static void rt_rpc_start(rt_dest *d, rt_obj *o)
{
    rt_router *rt = d->rt;
    static const char oom_cause[] = "out of memory building the KzWalAppend (not sent)";

    /* The order rule: o->ents keeps the parts to send, in order. */
    rt_ent *held = malloc((size_t)(o->n ? o->n : 1) * sizeof(*held));
    if (held == NULL) {
        kz_err("router: out of memory building the KzWalAppend for %s", o->key);
        rt_ents_fail(o->ents, o->n, KC_ERR_REQUEST_TIMED_OUT, oom_cause);
        rt_confirm(rt, o->key, d->zone);
        return;
    }
    int nkeep = 0, nheld = 0;
    for (int i = 0; i < o->n; i++) {
        if (rt_overtakes(o->ents[i].b, o->ents[i].part))
            held[nheld++] = o->ents[i];
        else
            o->ents[nkeep++] = o->ents[i];
    }
    o->n = nkeep;
    for (int i = 0; i < nheld; i++) {
        const rt_okey *k = held[i].b->parts[held[i].part].okey;
        rt->st.order_failures++;
        rt_part_fail(held[i].b, held[i].part, k->fail_code,
                     "not sent: an earlier batch of this partition from this client failed, and this one would "
                     "overtake its retry",
                     -1);
    }
    for (int i = 0; i < nheld; i++)
        rt_part_resolved(held[i].b, held[i].part);
    free(held);
    if (nkeep == 0) {
        rt_confirm(rt, o->key, d->zone); /* nobody will read it */
        return;
    }

    rt_rpc *r = calloc(1, sizeof(*r));
    kc_arena a;
    kc_arena_init(&a);
    struct evbuffer *eb = evbuffer_new();
    kc_wal_append_req req = {.key = kc_str_c(o->key)};
    if (r == NULL || eb == NULL || (r->key = strdup(o->key)) == NULL)
        goto oom;
    r->rt = rt;
    r->d = d;
    r->ents = calloc((size_t)nkeep, sizeof(*r->ents));
    r->group_sizes = calloc((size_t)nkeep, sizeof(int));
    req.groups = kc_arena_calloc(&a, (size_t)nkeep, sizeof(*req.groups));
    if (r->ents == NULL || r->group_sizes == NULL || req.groups == NULL)
        goto oom;

    /* Groups: runs of the same batch (a batch's parts are appended together). */
    for (int i = 0; i < nkeep;) {
        rt_batch *b = o->ents[i].b;
        int j = i;
        while (j < nkeep && o->ents[j].b == b)
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
                const rt_ent *e = &o->ents[k];
                const rt_part *p = &b->parts[e->part];
                if (p->leader_id != wb->broker_id)
                    continue;
                wb->parts[wb->nparts++] = (kc_wal_part){p->topic, p->partition, (int64_t)e->off, (int32_t)e->len,
                                                        e->crc32c};
                r->ents[r->nents++] = *e;
            }
        }
        r->group_sizes[req.ngroups] = r->nents - start;
        req.ngroups++;
        i = j;
    }
    r->ngroups = req.ngroups;

    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    /* ts_ms is also the origin of the receiver's start deadline: taken now,
     * just before the request is handed to a connection. */
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
    kz_err("router: out of memory building the KzWalAppend for %s", o->key);
    if (eb)
        evbuffer_free(eb);
    kc_arena_destroy(&a);
    if (r)
        rt_rpc_free(r);
    rt_ents_fail(o->ents, nkeep, KC_ERR_REQUEST_TIMED_OUT, oom_cause);
    rt_confirm(rt, o->key, d->zone);
}

/* Start the RPCs of queued objects, one at a time per zone. */
static void rt_dest_kick(rt_dest *d)
{
    if (d->kicking)
        return; /* the loop below carries on */
    d->kicking = 1;
    while (d->busy == NULL && d->sq_head && !d->rt->closing) {
        rt_obj *o = d->sq_head;
        d->sq_head = o->next;
        if (d->sq_head == NULL)
            d->sq_tail = NULL;
        if (o->failed) {
            rt_ents_fail(o->ents, o->n, KC_ERR_REQUEST_TIMED_OUT, "its WAL object was not stored");
        } else {
            rt_rpc_start(d, o);
        }
        rt_obj_free(o);
    }
    d->kicking = 0;
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
    o->next = NULL;
    if (obj->err != OW_OK) {
        kz_warn("router: WAL object for zone %s not stored: %s", d->zone, obj->errmsg);
        o->failed = 1;
    } else if ((o->key = strdup(obj->key)) == NULL) {
        kz_err("router: out of memory queueing %s", obj->key);
        o->failed = 1;
    } else {
        /* obj lives only during this call: copy what the RPC needs. */
        for (int i = 0; i < o->n; i++) {
            rt_ent *e = &o->ents[i];
            if (e->chunk >= obj->nchunks) { /* cannot happen: the writer reports every chunk */
                kz_err("router: %s lacks chunk %u", obj->key, (unsigned)e->chunk);
                o->failed = 1;
                break;
            }
            const ow_range *rg = &obj->chunks[e->chunk].range;
            e->off = rg->off;
            e->len = rg->len;
            e->crc32c = rg->crc32c;
        }
    }
    if (d->sq_tail)
        d->sq_tail->next = o;
    else
        d->sq_head = o;
    d->sq_tail = o;
    rt_dest_kick(d);
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
        if (d->busy)
            d->busy->d = NULL; /* its answer (or failure) frees it */
        while (d->head) {
            rt_obj *o = d->head;
            d->head = o->next;
            rt_obj_free(o);
        }
        while (d->sq_head) {
            rt_obj *o = d->sq_head;
            d->sq_head = o->next;
            rt_obj_free(o);
        }
        free(d->zone);
        free(d);
    }
    rt_okey_free_all(rt);
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
