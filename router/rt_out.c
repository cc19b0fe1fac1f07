/*
 * router-out: WAL-path partitions go into a WAL object per destination zone
 * (their batches, per-part results and order keys); rt_rpc.c sends each
 * stored object's KzWalAppend and feeds the answers back here.
 */
#include "config.h"

#include "router/rt_int.h"

#include "codec/kc_msg.h"
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
    rt_out_seq_failed(b->rt, b->stream, p->topic, p->partition, p->records, code);
    k->open_fails++;
    if (k->fail_from == 0 || b->seq < k->fail_from) {
        k->fail_from = b->seq;
        k->fail_code = rt_retriable(code);
    }
}

/* Would this part, about to be sent, overtake the retry of a failed one? */
int rt_overtakes(const rt_batch *b, int part)
{
    const rt_okey *k = b->parts[part].okey;
    return k && k->fail_from != 0 && b->seq > k->fail_from && (k->open_fails > 0 || b->seq < k->fail_to);
}

void rt_part_fail(rt_batch *b, int part, int16_t code, const char *cause, int32_t peer)
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
void rt_part_resolved(rt_batch *b, int part)
{
    rt_part *p = &b->parts[part];
    if (p->tracked) {
        p->tracked = 0;
        p->okey->queued--;
    }
    rt_part_done(b);
}

/* Copy a result into the batch (its strings into the batch's arena). */
void rt_part_result(rt_batch *b, int part, const kc_produce_resp_partition *r, int32_t peer)
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

void rt_obj_free(rt_obj *o)
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
        if (p->okey && ((p->okey->queued > 0 && p->okey->dest != d) || p->okey->direct > 0)) {
            /* The leader moved to another zone (or out of this one) while
             * earlier parts of this partition are on their way to the old
             * one (or straight to the old leader): this one would overtake
             * them. The client refreshes its metadata and retries. */
            b->submitted++;
            rt->st.order_holds++;
            rt_part_fail(b, i, KC_ERR_NOT_LEADER_OR_FOLLOWER,
                         p->okey->direct > 0
                             ? "held: an earlier batch of this partition from this client is in flight to a broker"
                             : "held: earlier parts of this partition from this client are in flight to another zone",
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
        /* The chunk's CRC from the batches' own CRCs and headers, without a
         * pass over the payload: proxy b's check of the bytes it reads then
         * covers the producer's batch CRCs too (docs/PEER_RPC.md). Only when
         * every receiver of the zone refuses a bad slice for its partition
         * alone: an older one would fail every partition of the append. */
        uint32_t crc = 0;
        int have_crc = mc_peers_zone_all(rt->peers, d->zone, KC_PEER_HELLO_SLICE_ERRORS) &&
                       kc_record_batches_crc32c(p->records.p, (size_t)p->records.len, &crc) == 0;
        if (eb && kc_frame_add_ref(eb, b->frame, p->records.p, (size_t)p->records.len) == 0)
            rc = ow_writer_append_evbuffer(d->w, d->zone, topic, p->partition, eb, have_crc ? &crc : NULL, &t);
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
        rt_rpc_detach(d); /* its answer (or failure) frees it */
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
    rt_policy_free(rt);
    free(rt->zone);
    free(rt->key_prefix);
    free(rt);
}

const rt_stats *rt_get_stats(const rt_router *rt) { return &rt->st; }

void rt_flush(rt_router *rt)
{
    for (int i = 0; i < rt->ndests; i++)
        ow_writer_flush(rt->dests[i]->w);
}

int rt_busy(const rt_router *rt)
{
    for (int i = 0; i < rt->ndests; i++) {
        const rt_dest *d = rt->dests[i];
        if (d->head || d->sq_head || d->busy || ow_writer_pending(d->w) > 0)
            return 1;
    }
    for (const rt_stream *s = rt->streams; s; s = s->next)
        if (s->head)
            return 1;
    return 0;
}

void rt_set_live(rt_router *rt, uint64_t seal_bytes, uint32_t seal_age_ms, uint32_t seal_idle_ms,
                 int cross_zone_direct)
{
    rt->cfg.seal_bytes = seal_bytes;
    rt->cfg.seal_age_ms = seal_age_ms;
    rt->cfg.cross_zone_direct = cross_zone_direct;
    rt->cfg.seal_idle_ms = seal_idle_ms;
    for (int i = 0; i < rt->ndests; i++) {
        rt_dest *d = rt->dests[i];
        ow_writer_set_seal(d->w, seal_bytes, seal_age_ms);
        if (seal_idle_ms > 0 && d->idle == NULL)
            d->idle = event_new(rt->base, -1, 0, rt_idle_cb, d);
        else if (seal_idle_ms == 0 && d->idle != NULL) {
            event_free(d->idle);
            d->idle = NULL;
        }
    }
}

void rt_set_acl(rt_router *rt, const struct kz_acl *acl) { rt->cfg.acl = acl; }

uint64_t rt_mem_used(const rt_router *rt)
{
    uint64_t n = 0;
    for (int i = 0; i < rt->ndests; i++)
        n += ow_writer_mem_used(rt->dests[i]->w);
    return n;
}
