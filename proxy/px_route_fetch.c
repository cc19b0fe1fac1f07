/*
 * Fetch: split by the replica each partition is read from, each broker asked
 * for a full fetch (no session), the answers merged in the request's order
 * with the record bytes referenced from the brokers' frames. Fetch v13 topic
 * ids are mapped to names through the view for brokers below v13; a
 * partition's KIP-951 CurrentLeader is rewritten to a proxy id.
 *
 * Zone-local reads (KIP-392, fetch_from_follower). A partition led in this
 * proxy's zone is read from its leader. One led elsewhere:
 *   "broker"   (default) goes to the leader with this proxy's zone as rack_id;
 *              a leader with a replica selector (RackAwareReplicaSelector)
 *              answers with no records and the PreferredReadReplica to use,
 *              which is remembered per client connection and partition (as
 *              the Java consumer does: for PX_FF_LEASE_MS, while that leader
 *              leads and the view has the replica in the ISR) and the
 *              partition's next fetches go there;
 *   "metadata" goes to an in-sync replica of this zone from the metadata
 *              (for backends that serve follower fetches but name no
 *              preferred replica);
 *   "off"      goes to the leader, rack_id "" (the behaviour before).
 * The zone is the proxy's own, not the client's: the records travel broker ->
 * proxy -> client, and the two differ only when a zone has no proxy, where a
 * replica in the proxy's zone still saves one crossing.
 * The client never sees a preferred replica (real broker ids must not reach
 * it; it talks to the proxies of its zone): -1 always. A follower that cannot
 * answer (OFFSET_OUT_OF_RANGE, NOT_LEADER_OR_FOLLOWER, FENCED_/
 * UNKNOWN_LEADER_EPOCH, any other error, no answer, or a high watermark
 * behind the client's offset for PX_FF_BEHIND_MS) sends the partition back to
 * its leader, with rack_id "" so that the leader answers with records, for
 * fetch_follower_retry_ms, doubled on each fallback in a row up to
 * fetch_follower_retry_max_ms (a leader naming the failed follower meanwhile
 * is not followed, so a dead follower costs a few fallbacks, not a loop); the
 * client gets the partition empty and without error and fetches again (the
 * leader answers then), and fetch_follower_fallbacks counts it. Brokers below Fetch v11 serve no
 * follower fetches: everything goes to the leader.
 */
#include "config.h"

#include "proxy/px_route_int.h"

#include "common/kz_log.h"
#include "common/kz_time.h"
#include "proxy/px_fcache.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

/* A preferred read replica is used this long before the leader is asked
 * again (the Java consumer's metadata.max.age.ms default). */
#define PX_FF_LEASE_MS 300000
/* A follower whose high watermark stays behind the client's fetch offset this
 * long (it is lagging, not just one replication round behind): the leader. */
#define PX_FF_BEHIND_MS 1000

/* Sub-request variants to one broker: rack_id "" or the proxy's zone. */
#define PX_FF_NORACK 0
#define PX_FF_RACK 1

typedef struct px_ff_entry {
    char *topic; /* NULL: a free slot */
    int32_t partition;
    uint32_t hash;
    int32_t replica;      /* the read replica a leader named, -1 none */
    int32_t leader;       /* the leader that named it */
    int64_t replica_until;
    int64_t leader_until; /* after a fallback: the leader only, rack_id "", until then */
    int64_t behind_since; /* when the follower was first seen behind the client's offset, or 0 */
    int32_t fails;        /* fallbacks in a row (no good follower answer between): the backoff grows */
} px_ff_entry;

struct px_fetch_replicas {
    uint32_t cap, n; /* cap: a power of two, at most half full */
    px_ff_entry *e;
};

static uint32_t px_ff_hash(kc_str topic, int32_t partition)
{
    uint32_t h = 2166136261u;
    for (int32_t i = 0; i < topic.len; i++)
        h = (h ^ (uint8_t)topic.p[i]) * 16777619u;
    for (int i = 0; i < 4; i++)
        h = (h ^ (uint8_t)((uint32_t)partition >> (8 * i))) * 16777619u;
    return h;
}

void px_fetch_replicas_free(struct px_fetch_replicas *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->cap; i++)
        free(r->e[i].topic);
    free(r->e);
    free(r);
}

static px_ff_entry *px_ff_slot(px_ff_entry *e, uint32_t cap, kc_str topic, int32_t partition, uint32_t h)
{
    for (uint32_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        px_ff_entry *x = &e[i];
        if (x->topic == NULL || (x->hash == h && x->partition == partition &&
                                 strlen(x->topic) == (size_t)topic.len &&
                                 memcmp(x->topic, topic.p, (size_t)topic.len) == 0))
            return x;
    }
}

/* The entry of a partition; created when create is set (NULL when out of
 * memory), else NULL when there is none. */
static px_ff_entry *px_ff_get(px_client *cl, kc_str topic, int32_t partition, int create)
{
    struct px_fetch_replicas **rp = px_client_fetch_replicas(cl);
    if (rp == NULL)
        return NULL; /* the client is gone */
    struct px_fetch_replicas *r = *rp;
    uint32_t h = px_ff_hash(topic, partition);
    if (r && r->cap) {
        px_ff_entry *x = px_ff_slot(r->e, r->cap, topic, partition, h);
        if (x->topic || !create)
            return x->topic ? x : NULL;
    } else if (!create) {
        return NULL;
    }
    if (r == NULL && (r = *rp = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    if ((r->n + 1) * 2 > r->cap) {
        uint32_t ncap = r->cap ? r->cap * 2 : 64;
        px_ff_entry *ne = calloc(ncap, sizeof(*ne));
        if (ne == NULL)
            return NULL;
        for (uint32_t i = 0; i < r->cap; i++)
            if (r->e[i].topic)
                *px_ff_slot(ne, ncap, kc_str_c(r->e[i].topic), r->e[i].partition, r->e[i].hash) = r->e[i];
        free(r->e);
        r->e = ne;
        r->cap = ncap;
    }
    px_ff_entry *x = px_ff_slot(r->e, r->cap, topic, partition, h);
    x->topic = malloc((size_t)topic.len + 1);
    if (x->topic == NULL)
        return NULL;
    memcpy(x->topic, topic.p, (size_t)topic.len);
    x->topic[topic.len] = '\0';
    x->partition = partition;
    x->hash = h;
    x->replica = x->leader = -1;
    r->n++;
    return x;
}

static int px_ff_in_isr(const mc_partition *p, int32_t broker)
{
    for (int32_t i = 0; i < p->nisr; i++)
        if (p->isr[i] == broker)
            return 1;
    return 0;
}

/* A follower failed this partition: its leader, without rack_id, for a while. */
static void px_ff_fallback(px_split *sp, kc_str topic, int32_t partition, int32_t broker, int16_t err,
                           const char *why)
{
    px_proxy *px = px_client_proxy(sp->rq->cl);
    px_ff_entry *e = px_ff_get(sp->rq->cl, topic, partition, 1);
    if (e) {
        /* retry_ms, doubled on each fallback in a row, up to retry_max_ms. */
        int64_t wait = px->cfg->fetch_follower_retry_ms;
        for (int32_t i = 0; i < e->fails && wait < px->cfg->fetch_follower_retry_max_ms; i++)
            wait *= 2;
        if (wait > px->cfg->fetch_follower_retry_max_ms)
            wait = px->cfg->fetch_follower_retry_max_ms;
        if (e->fails < 64)
            e->fails++;
        e->replica = -1;
        e->behind_since = 0;
        e->leader_until = kz_mono_ms() + wait;
    }
    px->m.fetch_follower_fallbacks++;
    kz_dbg("client %s: %.*s-%d: follower %d %s (error %d): reading from the leader", px_client_peer(sp->rq->cl),
           (int)topic.len, topic.p, partition, broker, why, err);
}

/* Whether Fetch partitions may be read from followers in this split, and how. */
static int px_ff_mode(px_split *sp)
{
    px_proxy *px = px_client_proxy(sp->rq->cl);
    if (sp->up_version < 11 || sp->view == NULL)
        return PX_FETCH_FOLLOWER_OFF;
    return px->cfg->fetch_from_follower;
}

/* Where one partition is read: the index of its sub-request, or -error code. */
static int16_t px_fetch_place(px_split *sp, int mode, int64_t now, kc_str topic, int32_t partition, int *cap)
{
    px_proxy *px = px_client_proxy(sp->rq->cl);
    int16_t code;
    const mc_partition *p = px_split_partition(sp, topic, partition, &code);
    if (p == NULL)
        return (int16_t)-code;
    int32_t leader = p->leader_id;
    if (mode == PX_FETCH_FOLLOWER_OFF || !mc_cluster_broker_remote(px->mc, sp->view, leader)) {
        px->m.fetch_parts_leader++;
        return px_split_sub_for(sp, leader, cap); /* off, or the leader is in this zone */
    }
    px_ff_entry *e = px_ff_get(sp->rq->cl, topic, partition, mode == PX_FETCH_FOLLOWER_BROKER);
    int32_t replica = -1;
    if (e && e->leader_until > now) {
        px->m.fetch_parts_leader++;
        return px_split_sub_for_variant(sp, leader, PX_FF_NORACK, cap); /* after a fallback */
    }
    if (e && e->replica >= 0) { /* named by the leader */
        if (now >= e->replica_until || e->leader != leader) {
            e->replica = -1; /* lease over, or another leader: ask the leader again */
        } else if (!px_ff_in_isr(p, e->replica) || mc_view_broker(sp->view, e->replica) == NULL) {
            px->m.fetch_follower_fallbacks++; /* left the ISR: ask the leader again */
            e->replica = -1;
        } else {
            replica = e->replica;
        }
    }
    if (replica < 0 && mode == PX_FETCH_FOLLOWER_METADATA) {
        for (int32_t i = 0; i < p->nisr && replica < 0; i++)
            if (p->isr[i] != leader && mc_view_broker(sp->view, p->isr[i]) &&
                !mc_cluster_broker_remote(px->mc, sp->view, p->isr[i]))
                replica = p->isr[i];
    }
    if (replica >= 0) {
        px->m.fetch_parts_follower++;
        return px_split_sub_for_variant(sp, replica, PX_FF_NORACK, cap);
    }
    px->m.fetch_parts_leader++;
    return px_split_sub_for_variant(sp, leader, mode == PX_FETCH_FOLLOWER_BROKER ? PX_FF_RACK : PX_FF_NORACK,
                                    cap);
}

int px_fetch_rewrite_tags(kc_arena *a, const kc_tags *in, const px_node *nodes, int nnodes, kc_tags *out)
{
    kc_fetch_partition_tags pt;
    *out = (kc_tags){0};
    if (in == NULL || in->count == 0)
        return 0;
    if (kc_fetch_partition_tags_parse(in, &pt) != 0)
        return 0; /* a malformed section is dropped, not passed on */
    if (pt.has_current_leader) {
        const px_node *p = px_vc_map_broker(nodes, nnodes, pt.leader_id);
        pt.leader_id = p ? p->node_id : -1;
    }
    return kc_fetch_partition_tags_build(a, &pt, out);
}

void px_fetch_names_from_ids(kc_fetch_req *in, const mc_view *view, uint8_t *unknown)
{
    for (int32_t t = 0; t < in->ntopics; t++) {
        const mc_topic *mt = mc_view_topic_by_id(view, in->topics[t].topic_id);
        unknown[t] = mt == NULL;
        /* The name lives in the view, which the request keeps until it ends. */
        in->topics[t].topic = mt ? kc_str_c(mt->name) : (kc_str){"", 0};
    }
}

static int px_fetch_topic_match(int16_t version, const kc_fetch_resp_topic *rt, const kc_fetch_req_topic *it)
{
    if (version >= 13)
        return memcmp(rt->topic_id.b, it->topic_id.b, 16) == 0;
    return rt->topic.len == it->topic.len && memcmp(rt->topic.p, it->topic.p, (size_t)it->topic.len) == 0;
}

static const kc_fetch_resp_partition *px_fetch_find(px_sub *s, int16_t version,
                                                    const kc_fetch_req_topic *it, int32_t part)
{
    const kc_fetch_resp *r = &s->r.fetch;
    for (int32_t k = 0; k < r->nresponses; k++) {
        int32_t t = (s->cursor_t + k) % r->nresponses;
        const kc_fetch_resp_topic *rt = &r->responses[t];
        if (!px_fetch_topic_match(version, rt, it))
            continue;
        for (int32_t j = 0; j < rt->npartitions; j++) {
            if (rt->partitions[j].partition_index == part) {
                s->cursor_t = t;
                return &rt->partitions[j];
            }
        }
    }
    return NULL;
}

/* Decode a broker's answer; its record batches are the payload of the frame
 * (metered by px_sub_cb when the broker is in another zone). */
static int px_fetch_resp_decode(px_split *sp, px_sub *s, kc_rd *rd)
{
    if (kc_fetch_resp_decode(rd, sp->up_version, &s->arena, &s->r.fetch) != 0)
        return -1;
    const kc_fetch_resp *r = &s->r.fetch;
    for (int32_t t = 0; t < r->nresponses; t++)
        for (int32_t p = 0; p < r->responses[t].npartitions; p++)
            if (r->responses[t].partitions[p].records.len > 0)
                s->payload_in += (uint64_t)r->responses[t].partitions[p].records.len;
    return 0;
}

/* The answer a client gets for a partition a follower could not serve. */
static const kc_fetch_resp_partition ff_empty = {
    .high_watermark = -1, .last_stable_offset = -1, .log_start_offset = -1,
    .naborted_transactions = -1, .preferred_read_replica = -1};

/*
 * Zone-local reads, for one partition of the answer (placed on sub s): learn
 * the preferred read replica a leader named; a follower's failure sends the
 * partition back to its leader and *found becomes &ff_empty. Returns 1 when
 * the error says the metadata may be stale.
 */
static int px_fetch_follower_answer(px_split *sp, const kc_fetch_req_topic *it, int32_t p, const px_sub *s,
                                    const kc_fetch_resp_partition **found, int16_t *code)
{
    const kc_fetch_req_partition *rp = &it->partitions[p];
    if (px_client_fetch_replicas(sp->rq->cl) == NULL)
        return 0; /* the client is gone (its connections failed what was pending): nobody reads this */
    int16_t unused;
    const mc_partition *mp = px_split_partition(sp, it->topic, rp->partition, &unused);
    if (mp == NULL)
        return 0;
    const kc_fetch_resp_partition *f = *found;
    if (s->broker == mp->leader_id) {
        /* The leader: it names a replica (and sends no records) when its
         * selector prefers one for our rack_id. */
        if (f == NULL || f->error_code != 0 || f->preferred_read_replica < 0 ||
            f->preferred_read_replica == mp->leader_id)
            return 0;
        px_ff_entry *e = px_ff_get(sp->rq->cl, it->topic, rp->partition, 1);
        if (e == NULL)
            return 0;
        if (e->leader_until > kz_mono_ms())
            return 0; /* backing off that follower: a leader that names it anyway (the mock) is not followed */
        if (mc_view_broker(sp->view, f->preferred_read_replica) != NULL) {
            /* Followed even when named unasked (no rack_id: a leader whose
             * selector ignores racks, or the mock): it sent no records, and
             * asking it again would bring none either. */
            e->replica = f->preferred_read_replica;
            e->leader = mp->leader_id;
            e->replica_until = kz_mono_ms() + PX_FF_LEASE_MS;
            e->leader_until = 0;
            e->behind_since = 0;
        } else {
            /* A broker the view does not know (yet): ask without rack_id. */
            e->replica = -1;
            e->leader_until = kz_mono_ms() + px_client_proxy(sp->rq->cl)->cfg->fetch_follower_retry_ms;
            mc_cluster_refresh_soon(px_client_proxy(sp->rq->cl)->mc);
        }
        return 0;
    }
    /* A follower. */
    int16_t err = f ? f->error_code : *code;
    if (f == NULL || err != 0) {
        px_ff_fallback(sp, it->topic, rp->partition, s->broker, err, f ? "answered an error" : "did not answer");
        *found = &ff_empty;
        *code = 0;
        return px_is_stale_metadata(err) || err == KC_ERR_OFFSET_OUT_OF_RANGE;
    }
    px_ff_entry *e = px_ff_get(sp->rq->cl, it->topic, rp->partition, 1);
    if (e == NULL)
        return 0;
    if (f->records.len == 0 && f->high_watermark >= 0 && f->high_watermark < rp->fetch_offset) {
        int64_t now = kz_mono_ms();
        if (e->behind_since == 0) {
            e->behind_since = now;
        } else if (now - e->behind_since >= PX_FF_BEHIND_MS) {
            px_ff_fallback(sp, it->topic, rp->partition, s->broker, 0, "has a high watermark behind the client");
            *found = &ff_empty;
        }
    } else {
        e->behind_since = 0;
        if (f->records.len > 0)
            e->fails = 0; /* the follower serves: the next fallback waits retry_ms again */
    }
    return 0;
}

/* The cache key of a partition in the view: its topic id (a topic deleted
 * and created again under the same name has a new one) and leader epoch. */
static px_fc_key px_fetch_cache_key(const px_split *sp, kc_str topic, int32_t partition, const mc_partition *mp)
{
    const mc_topic *mt = sp->view ? mc_view_topic(sp->view, topic) : NULL;
    px_fc_key k = {.topic = topic, .partition = partition, .epoch = mp->leader_epoch};
    if (mt)
        k.topic_id = mt->topic_id;
    return k;
}

/* A partition a broker of another zone answered: into the cache. */
static void px_fetch_cache_put(px_split *sp, const kc_fetch_req_topic *it, int32_t p, const px_sub *s,
                               const kc_fetch_resp_partition *found)
{
    px_fcache *fc = px_client_proxy(sp->rq->cl)->fcache; /* the process's one; NULL: off */
    int16_t unused;
    const mc_partition *mp = px_split_partition(sp, it->topic, it->partitions[p].partition, &unused);
    if (fc == NULL || mp == NULL || sp->in.fetch.replica_id >= 0)
        return;
    px_fc_key k = px_fetch_cache_key(sp, it->topic, it->partitions[p].partition, mp);
    px_fcache_put(fc, &k, sp->in.fetch.isolation_level, kz_mono_ms(), s->resp, found);
}

/* Answer a partition from the fetch cache when it holds its fetch offset and
 * the partition is led in another zone (what the cache holds was read across
 * zones). 1 when answered (sp->cached[t][p] set, assign PX_ASSIGN_CACHE). */
static int px_fetch_cache_get(px_split *sp, int32_t t, int32_t p)
{
    px_proxy *px = px_client_proxy(sp->rq->cl);
    const kc_fetch_req *in = &sp->in.fetch;
    const kc_fetch_req_topic *it = &in->topics[t];
    const kc_fetch_req_partition *rp = &it->partitions[p];
    px_fcache *fc = px->fcache;
    int16_t unused;
    if (fc == NULL || in->replica_id >= 0 || sp->view == NULL)
        return 0;
    const mc_partition *mp = px_split_partition(sp, it->topic, rp->partition, &unused);
    if (mp == NULL || !mc_cluster_broker_remote(px->mc, sp->view, mp->leader_id))
        return 0;
    if (rp->current_leader_epoch >= 0 && rp->current_leader_epoch != mp->leader_epoch)
        return 0; /* the leader decides (FENCED_ / UNKNOWN_LEADER_EPOCH) */
    if (sp->cached == NULL &&
        (sp->cached = kc_arena_calloc(&sp->arena, (size_t)in->ntopics, sizeof(*sp->cached))) == NULL)
        return 0;
    if (sp->cached[t] == NULL &&
        (sp->cached[t] = kc_arena_calloc(&sp->arena, (size_t)it->npartitions, sizeof(**sp->cached))) == NULL)
        return 0;
    kc_frame *f = NULL;
    px_fc_key k = px_fetch_cache_key(sp, it->topic, rp->partition, mp);
    if (!px_fcache_get(fc, &k, in->isolation_level, rp->fetch_offset, rp->partition_max_bytes, kz_mono_ms(),
                       &sp->cached[t][p], &f))
        return 0;
    if (px_split_keep_frame(sp, f) != 0)
        return 0;
    sp->assign[t][p] = PX_ASSIGN_CACHE;
    return 1;
}

static void px_fetch_encode(kc_wr *w, px_split *sp)
{
    const kc_fetch_req *in = &sp->in.fetch;
    px_proxy *px = px_client_proxy(sp->rq->cl);
    kc_arena *a = &sp->arena;
    kc_fetch_resp out = {0};
    const px_node *nodes;
    int fallback;
    int nnodes = px_vc_zone_nodes(px, px_client_zone(sp->rq->cl), &nodes, &fallback);
    out.nresponses = in->ntopics;
    out.responses = kc_arena_calloc(a, (size_t)in->ntopics, sizeof(*out.responses));
    if (out.responses == NULL) {
        w->err = 1;
        return;
    }
    int stale = 0;
    int ff = px_ff_mode(sp) != PX_FETCH_FOLLOWER_OFF;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_fetch_req_topic *it = &in->topics[t];
        kc_fetch_resp_topic *ot = &out.responses[t];
        ot->topic = it->topic;
        ot->topic_id = it->topic_id;
        ot->npartitions = it->npartitions;
        ot->partitions = kc_arena_calloc(a, (size_t)it->npartitions, sizeof(*ot->partitions));
        if (ot->partitions == NULL) {
            w->err = 1;
            return;
        }
        for (int32_t p = 0; p < it->npartitions; p++) {
            kc_fetch_resp_partition *op = &ot->partitions[p];
            int16_t where = sp->assign[t][p];
            const kc_fetch_resp_partition *found = NULL;
            int16_t code;
            if (where == PX_ASSIGN_CACHE) {
                *op = sp->cached[t][p]; /* records referenced from a cached frame (sp->xrefs) */
                px->m.fetch_record_bytes += (uint64_t)op->records.len;
                continue;
            }
            px_sub *s = px_split_answer(sp, where, &code);
            if (s && s->r.fetch.error_code != 0)
                code = s->r.fetch.error_code; /* the whole response failed */
            else if (s && (found = px_fetch_find(s, sp->up_version, it, it->partitions[p].partition)) == NULL)
                code = KC_ERR_NETWORK_EXCEPTION;
            if (ff && where >= 0 && px_fetch_follower_answer(sp, it, p, &sp->subs[where], &found, &code))
                stale = 1;
            if (s && s->xz && found && found != &ff_empty)
                px_fetch_cache_put(sp, it, p, s, found); /* read across zones: keep it for the zone */
            if (found == &ff_empty) {
                *op = ff_empty; /* a follower could not answer: empty, no error, the client fetches again */
                op->partition_index = it->partitions[p].partition;
            } else if (found) {
                *op = *found;
                /* Real broker ids must not reach the client: no preferred
                 * replica, and a CurrentLeader tag names the proxy its
                 * leader maps to. */
                op->preferred_read_replica = -1;
                if (px_fetch_rewrite_tags(a, &found->tags, nodes, nnodes, &op->tags) != 0) {
                    w->err = 1;
                    return;
                }
                if (op->records.len > 0)
                    px->m.fetch_record_bytes += (uint64_t)op->records.len;
            } else {
                op->partition_index = it->partitions[p].partition;
                op->error_code = code;
                op->high_watermark = -1;
                op->last_stable_offset = -1;
                op->log_start_offset = -1;
                op->naborted_transactions = -1;
                op->preferred_read_replica = -1;
                op->records.p = NULL;
                op->records.len = 0;
                px->m.partition_errors++;
            }
            stale |= px_is_stale_metadata(op->error_code);
        }
    }
    for (int i = 0; i < sp->nsubs; i++)
        if (sp->subs[i].resp && sp->subs[i].fail_code == 0 &&
            sp->subs[i].r.fetch.throttle_time_ms > out.throttle_time_ms)
            out.throttle_time_ms = sp->subs[i].r.fetch.throttle_time_ms;
    out.session_id = 0; /* incremental fetch sessions are declined */
    if (stale)
        mc_cluster_refresh_soon(px->mc);
    kc_fetch_resp_encode(w, sp->version, &out);
}

static const px_route_ops px_fetch_ops = {px_fetch_resp_decode, px_fetch_encode};

void px_route_fetch(px_req *rq)
{
    px_proxy *px = px_client_proxy(rq->cl);
    px_split *sp = px_split_new(rq, &px_fetch_ops);
    if (sp == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    kc_fetch_req *in = &sp->in.fetch;
    if (kc_fetch_req_decode(&rd, sp->version, &sp->arena, in) != 0) {
        px_split_decode_fail(sp, &rd);
        return;
    }
    /* v13+ names topics by id: look the names up, so partitions can be
     * placed and brokers below v13 be asked by name. */
    uint8_t *unknown_id = NULL;
    if (sp->version >= 13) {
        unknown_id = kc_arena_calloc(&sp->arena, (size_t)in->ntopics, 1);
        if (unknown_id == NULL)
            goto oom;
        px_fetch_names_from_ids(in, sp->view, unknown_id);
    }
    int cap = 0, nhits = 0;
    int16_t denied;
    int mode = px_ff_mode(sp);
    int64_t now = kz_mono_ms();
    if (px_split_assign_alloc(sp, in->ntopics) != 0)
        goto oom;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_fetch_req_topic *it = &in->topics[t];
        sp->assign[t] = kc_arena_calloc(&sp->arena, (size_t)it->npartitions, sizeof(int16_t));
        if (sp->assign[t] == NULL)
            goto oom;
        for (int32_t p = 0; p < it->npartitions; p++) {
            if (unknown_id && unknown_id[t])
                sp->assign[t][p] = -KC_ERR_UNKNOWN_TOPIC_ID;
            else if ((denied = px_split_acl(sp, it->topic)) != 0) /* ACLs: before the cache too */
                sp->assign[t][p] = (int16_t)-denied;
            else if (px_fetch_cache_get(sp, t, p))
                nhits++;
            else
                sp->assign[t][p] = px_fetch_place(sp, mode, now, it->topic, it->partitions[p].partition, &cap);
        }
    }
    struct evbuffer **bodies = calloc((size_t)(sp->nsubs ? sp->nsubs : 1), sizeof(*bodies));
    if (bodies == NULL)
        goto oom;
    for (int i = 0; i < sp->nsubs; i++) {
        kc_fetch_req sub = *in;
        kc_arena *a = &sp->arena;
        sub.replica_id = -1;
        sub.session_id = 0;
        sub.session_epoch = -1; /* a full fetch, no session on the broker */
        sub.nforgotten_topics_data = 0;
        sub.forgotten_topics_data = NULL;
        if (nhits > 0)
            sub.max_wait_ms = 0; /* records are ready: no long poll for the others */
        /* KIP-392: the leader picks a read replica for this rack. */
        sub.rack_id = kc_str_c(sp->subs[i].variant == PX_FF_RACK ? px->cfg->zone : "");
        sub.tags = (kc_tags){0};
        sub.topics = kc_arena_calloc(a, (size_t)in->ntopics, sizeof(*sub.topics));
        sub.ntopics = 0;
        if (sub.topics == NULL)
            continue;
        for (int32_t t = 0; t < in->ntopics; t++) {
            const kc_fetch_req_topic *it = &in->topics[t];
            kc_fetch_req_topic *st = &sub.topics[sub.ntopics];
            *st = *it;
            st->npartitions = 0;
            st->partitions = kc_arena_calloc(a, (size_t)it->npartitions, sizeof(*st->partitions));
            if (st->partitions == NULL)
                break;
            for (int32_t p = 0; p < it->npartitions; p++)
                if (sp->assign[t][p] == i)
                    st->partitions[st->npartitions++] = it->partitions[p];
            if (st->npartitions > 0)
                sub.ntopics++;
        }
        bodies[i] = evbuffer_new();
        if (bodies[i]) {
            kc_wr w;
            kc_wr_init(&w, bodies[i], NULL);
            kc_fetch_req_encode(&w, sp->up_version, &sub);
            px_sub_encoded(sp, i, &w, &bodies[i]);
        }
    }
    px_split_send(sp, bodies, 1, in->max_wait_ms > 0 && nhits == 0 ? in->max_wait_ms : 0);
    free(bodies);
    return;
oom:
    px_req_reject(rq, "out of memory");
    px_split_free(sp);
}
