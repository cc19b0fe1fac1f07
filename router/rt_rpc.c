/*
 * router-out's RPC: each stored WAL object of a destination zone, in seal
 * order and one at a time, becomes a KzWalAppend to a healthy peer of that
 * zone; its answers complete the client's batches (rt_out.c). An RPC that may
 * have reached a peer is never resent (docs/PEER_RPC.md).
 */
#include "config.h"

#include "router/rt_int.h"

#include "codec/kc_peer.h"
#include "codec/kc_proto.h"
#include "common/kz_log.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    uint8_t *body;      /* the request without its MAC: sealed per peer (the MAC
                         * names the receiver), for another peer if one refuses at once */
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
                                        KC_API_KZ_WAL_APPEND, KC_PEER_VERSION, rt->cfg.node_id, r->nonce,
                                        &plen) != 0) {
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
        /* Sealed for this peer: the same nonce for each, as a request refused
         * at once was never sent. */
        if (eb && evbuffer_add(eb, r->body, r->body_len) == 0 &&
            kc_peer_seal(eb, rt->cfg.secret, rt->cfg.secret_len, KC_API_KZ_WAL_APPEND, KC_PEER_VERSION,
                         peer->node_id, NULL) == 0) {
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
        g->principal = b->principal;
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
    if (w.err)
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

void rt_sealed_cb(const ow_sealed *obj, void *arg)
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

void rt_rpc_detach(rt_dest *d)
{
    if (d->busy)
        d->busy->d = NULL;
}
