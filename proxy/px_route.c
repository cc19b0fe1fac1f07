/*
 * Requests that carry partitions (Produce, Fetch, ListOffsets,
 * OffsetForLeaderEpoch, DeleteRecords) are split by the real leader of each
 * partition, sent over the pooled broker connections, and the answers merged
 * back into one response in the request's order. ListGroups goes to every
 * broker (each lists the groups it coordinates) and the lists are merged.
 * Record data is never copied: sub-requests reference the client's frame and
 * the merged response references the brokers' frames.
 *
 * This file is the split itself, shared by every family (px_route_int.h);
 * the families are in px_route_produce.c, px_route_fetch.c,
 * px_route_parts.c and px_route_listgroups.c.
 *
 * The cross-zone payload meter lives here too. mc_conn counts every frame on
 * a metered connection (a broker of another zone) as "other" for Produce and
 * Fetch; once a frame is known to have crossed, the record bytes of its
 * decoded partitions are moved to "payload" (mc_xz_payload): a Produce
 * sub-request's when its answer arrives (or, acks=0, when mc_conn wrote it at
 * once), a Fetch answer's when it arrives and decodes.
 */
#include "config.h"

#include "proxy/px_route_int.h"
#include "proxy/px_cut.h"

#include "common/kz_log.h"
#include "meta-client/mc_conn.h"
#include "meta-client/mc_xzone.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

px_split *px_split_new(px_req *rq, const px_route_ops *ops)
{
    px_split *sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return NULL;
    sp->rq = rq;
    sp->ops = ops;
    sp->key = rq->hdr.api_key;
    sp->version = rq->hdr.api_version;
    sp->up_version = sp->version;
    int16_t bmin, bmax;
    if (mc_cluster_backend_versions(px_client_proxy(rq->cl)->mc, sp->key, &bmin, &bmax) == 0 &&
        bmax < sp->version)
        sp->up_version = bmax; /* px_vc_version_range made sure the codec decodes bmax */
    kc_arena_init(&sp->arena);
    px_proxy *px = px_client_proxy(rq->cl);
    sp->view = mc_cluster_view(px->mc);
    if (sp->view)
        mc_view_keep(sp->view);
    return sp;
}

void px_split_free(px_split *sp)
{
    for (int i = 0; i < sp->ndirect; i++)
        rt_out_direct_end(sp->px->rt, sp->direct[i]); /* px->rt is NULL once the router is freed */
    free(sp->direct);
    for (int i = 0; i < sp->nsubs; i++) {
        kc_frame_release(sp->subs[i].resp);
        kc_arena_destroy(&sp->subs[i].arena);
    }
    mc_view_release(sp->view);
    kc_frame_release(sp->frame);
    for (int i = 0; i < sp->nxrefs; i++)
        kc_frame_release(sp->xrefs[i]);
    free(sp->xrefs);
    kc_arena_destroy(&sp->arena);
    free(sp->subs);
    free(sp->cbs);
    free(sp);
}

int px_split_decode_fail(px_split *sp, kc_rd *rd)
{
    px_req_reject(sp->rq, "malformed request: %s at byte %zu", rd->err, sp->rq->body_off + rd->err_off);
    px_split_free(sp);
    return -1;
}

const mc_partition *px_split_partition(px_split *sp, kc_str topic, int32_t partition, int16_t *code)
{
    if (px_client_proxy(sp->rq->cl)->draining == 1) {
        /* Leaving (px_drain.c): the client refreshes its metadata, which
         * names the other proxies, and retries there. */
        *code = KC_ERR_NOT_LEADER_OR_FOLLOWER;
        return NULL;
    }
    if (sp->view == NULL) {
        *code = KC_ERR_LEADER_NOT_AVAILABLE;
        return NULL;
    }
    const mc_topic *t = mc_view_topic(sp->view, topic);
    if (t == NULL) {
        *code = KC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    const mc_partition *p = mc_view_partition(sp->view, topic, partition);
    if (p == NULL) {
        *code = KC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    if (p->leader_id < 0 || mc_view_broker(sp->view, p->leader_id) == NULL) {
        *code = KC_ERR_LEADER_NOT_AVAILABLE;
        return NULL;
    }
    return p;
}

int16_t px_split_acl(px_split *sp, kc_str topic)
{
    kz_acl_op op;
    switch (sp->key) {
    case KC_API_PRODUCE: op = KZ_ACL_PRODUCE; break;
    case KC_API_FETCH: op = KZ_ACL_CONSUME; break;
    case KC_API_DELETERECORDS: op = KZ_ACL_DELETE; break;
    default: op = KZ_ACL_DESCRIBE; break; /* ListOffsets, OffsetForLeaderEpoch */
    }
    /* Any non-null transactional id, "" too, as router-in checks it. */
    if (sp->key == KC_API_PRODUCE && sp->in.produce.transactional_id.len >= 0 &&
        !px_acl_check(sp->rq->cl, KZ_ACL_PRODUCE, KZ_ACL_TRANSACTIONAL_ID, sp->in.produce.transactional_id))
        return KC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    return px_acl_check(sp->rq->cl, op, KZ_ACL_TOPIC, topic) ? 0 : KC_ERR_TOPIC_AUTHORIZATION_FAILED;
}

int16_t px_split_place(px_split *sp, kc_str topic, int32_t partition, int *cap)
{
    int16_t denied = px_split_acl(sp, topic);
    if (denied)
        return (int16_t)-denied;
    int16_t code;
    const mc_partition *p = px_split_partition(sp, topic, partition, &code);
    if (p == NULL)
        return (int16_t)-code;
    return px_split_sub_for(sp, p->leader_id, cap);
}

int16_t px_split_sub_for(px_split *sp, int32_t broker, int *cap)
{
    return px_split_sub_for_variant(sp, broker, 0, cap);
}

int16_t px_split_sub_for_variant(px_split *sp, int32_t broker, int variant, int *cap)
{
    for (int i = 0; i < sp->nsubs; i++)
        if (sp->subs[i].broker == broker && sp->subs[i].variant == variant)
            return (int16_t)i;
    if (sp->nsubs == *cap) {
        int ncap = *cap ? *cap * 2 : 4;
        px_sub *ns = realloc(sp->subs, (size_t)ncap * sizeof(px_sub));
        if (ns == NULL)
            return -KC_ERR_UNKNOWN_SERVER_ERROR;
        sp->subs = ns;
        *cap = ncap;
    }
    px_sub *s = &sp->subs[sp->nsubs];
    memset(s, 0, sizeof(*s));
    s->broker = broker;
    s->variant = variant;
    kc_arena_init(&s->arena);
    return (int16_t)sp->nsubs++;
}

int px_split_assign_alloc(px_split *sp, int32_t ntopics)
{
    sp->assign = kc_arena_calloc(&sp->arena, (size_t)ntopics, sizeof(int16_t *));
    return sp->assign ? 0 : -1;
}

int px_is_stale_metadata(int16_t e)
{
    return e == KC_ERR_NOT_LEADER_OR_FOLLOWER || e == KC_ERR_LEADER_NOT_AVAILABLE ||
           e == KC_ERR_UNKNOWN_TOPIC_OR_PARTITION || e == KC_ERR_FENCED_LEADER_EPOCH ||
           e == KC_ERR_UNKNOWN_LEADER_EPOCH || e == KC_ERR_UNKNOWN_TOPIC_ID;
}

px_sub *px_split_answer(px_split *sp, int16_t where, int16_t *code)
{
    if (where < 0) {
        *code = (int16_t)-where;
        return NULL;
    }
    px_sub *s = &sp->subs[where];
    *code = s->fail_code;
    return s->fail_code == 0 ? s : NULL;
}

void px_sub_cb(kc_frame *resp, const char *err, void *arg)
{
    struct px_subcb *cb = arg;
    px_split *sp = cb->sp;
    px_sub *s = &sp->subs[cb->idx];
    px_proxy *px = px_client_proxy(sp->rq->cl);
    if (resp == NULL) {
        /* Whether the request left is unknown: its bytes stay "other". */
        kz_info("client %s: %s to broker %d failed: %s", px_client_peer(sp->rq->cl),
                kc_api_name(sp->key), s->broker, err ? err : "?");
        s->fail_code = KC_ERR_NOT_LEADER_OR_FOLLOWER;
        mc_cluster_refresh_soon(px->mc);
    } else {
        s->resp = resp;
        kc_rd rd;
        kc_rd_init(&rd, resp->data, resp->len);
        (void)kc_resp_hdr_decode(&rd, kc_resp_hdr_version(sp->key, sp->up_version));
        if (sp->ops->resp_decode(sp, s, &rd) != 0) {
            kz_warn("broker %d: malformed %s v%d response: %s at byte %zu", s->broker,
                    kc_api_name(sp->key), sp->up_version, rd.err, rd.err_off);
            s->fail_code = KC_ERR_NETWORK_EXCEPTION;
        }
        /* An answer: the request was written, and mc_conn has counted both
         * frames (nothing happens for a connection that is not metered). */
        mc_xz_payload(s->xz, MC_XZ_OUT, s->xz_kind, s->payload_out);
        mc_xz_payload(s->xz, MC_XZ_IN, s->xz_kind, s->payload_in);
    }
    px_split_done(sp);
}

int px_sub_encoded(px_split *sp, int i, const kc_wr *w, struct evbuffer **body)
{
    if (!w->err)
        return 0;
    evbuffer_free(*body);
    *body = NULL;
    if (kc_wr_unencodable(w)) {
        sp->subs[i].fail_code = KC_ERR_INVALID_REQUEST;
        kz_info("client %s: %s v%d cannot be sent to broker %d at v%d: %s", px_client_peer(sp->rq->cl),
                kc_api_name(sp->key), sp->rq->hdr.api_version, sp->subs[i].broker, sp->up_version, kc_wr_why(w));
    }
    return -1;
}

void px_split_send(px_split *sp, struct evbuffer **bodies, int expect_response, int extra_wait_ms)
{
    px_proxy *px = px_client_proxy(sp->rq->cl);
    sp->cbs = calloc((size_t)(sp->nsubs ? sp->nsubs : 1), sizeof(*sp->cbs));
    sp->pending = sp->nsubs + 1 + (sp->wal.nparts > 0); /* +1 until every sub is sent */
    for (int i = 0; i < sp->nsubs; i++) {
        px_sub *s = &sp->subs[i];
        /* A broker holds a Fetch up to its max wait (a DeleteRecords up to its
         * timeout) and serves one request per connection at a time: those use
         * the client's own connections. */
        mc_conn *c = px_client_conn(sp->rq->cl, s->broker,
                                    sp->key == KC_API_FETCH || sp->key == KC_API_DELETERECORDS ||
                                        (sp->key == KC_API_PRODUCE && px_cut_private(sp->rq->cl)));
        if (sp->cbs == NULL || c == NULL || bodies[i] == NULL) {
            if (s->fail_code == 0)
                s->fail_code = KC_ERR_LEADER_NOT_AVAILABLE;
            sp->pending--;
            continue;
        }
        sp->cbs[i].sp = sp;
        sp->cbs[i].idx = i;
        s->xz = mc_conn_xzone(c, &s->xz_kind);
        int queued = mc_conn_pending(c);
        uint64_t counted = s->xz ? s->xz->bytes[MC_XZ_OUT][s->xz_kind][MC_XZ_OTHER] : 0;
        if (mc_conn_request(c, sp->key, sp->up_version, sp->rq->hdr.client_id, bodies[i], expect_response,
                            extra_wait_ms, px_sub_cb, &sp->cbs[i]) != 0) {
            s->fail_code = KC_ERR_NOT_LEADER_OR_FOLLOWER; /* broker in backoff: client retries */
            sp->pending--;
            mc_cluster_refresh_soon(px->mc);
        } else if (!expect_response) {
            sp->pending--;
            /* acks=0: no answer will say the frame left. It left if mc_conn
             * wrote it at once: then it is no longer pending and its bytes
             * were counted. One that waits for its connection stays "other". */
            if (s->xz && mc_conn_pending(c) == queued &&
                s->xz->bytes[MC_XZ_OUT][s->xz_kind][MC_XZ_OTHER] - counted >= s->payload_out)
                mc_xz_payload(s->xz, MC_XZ_OUT, s->xz_kind, s->payload_out);
        }
    }
    for (int i = 0; i < sp->nsubs; i++)
        if (bodies[i])
            evbuffer_free(bodies[i]);
    if (sp->wal.nparts > 0)
        rt_out_submit(px->rt, &sp->wal); /* its done callback drops the extra count */
    px_split_done(sp);
}

uint64_t px_split_stream(px_split *sp, mc_conn *c, struct evbuffer *first, size_t body_len)
{
    px_proxy *px = px_client_proxy(sp->rq->cl);
    px_sub *s = &sp->subs[0];
    sp->pending = 2; /* the answer, and the frame's last byte */
    sp->cbs = calloc(1, sizeof(*sp->cbs));
    if (sp->cbs == NULL) {
        s->fail_code = KC_ERR_LEADER_NOT_AVAILABLE;
        sp->pending--;
        return 0;
    }
    sp->cbs[0].sp = sp;
    sp->cbs[0].idx = 0;
    s->xz = mc_conn_xzone(c, &s->xz_kind);
    uint64_t id = mc_conn_stream_open(c, sp->key, sp->up_version, sp->rq->hdr.client_id, first, body_len,
                                      px_sub_cb, &sp->cbs[0]);
    if (id == 0) {
        s->fail_code = KC_ERR_NOT_LEADER_OR_FOLLOWER; /* broker in backoff: client retries */
        sp->pending--;
        mc_cluster_refresh_soon(px->mc);
    }
    return id;
}

static void px_split_respond(px_split *sp, void (*encode)(kc_wr *, px_split *))
{
    struct evbuffer *body = evbuffer_new();
    kc_frame *refs[64];
    int nrefs = 0;
    for (int i = 0; i < sp->nsubs && nrefs < 64; i++)
        if (sp->subs[i].resp)
            refs[nrefs++] = sp->subs[i].resp;
    for (int i = 0; i < sp->nxrefs && nrefs < 64; i++)
        refs[nrefs++] = sp->xrefs[i]; /* beyond 64 frames, bytes are copied */
    if (body == NULL) {
        px_req_reject(sp->rq, "out of memory for the response");
        return;
    }
    kc_wr w;
    kc_wr_init(&w, body, NULL);
    kc_wr_set_refs(&w, refs, nrefs);
    encode(&w, sp);
    if (w.err)
        px_req_reject(sp->rq, "out of memory for the response");
    else
        px_req_respond(sp->rq, body);
    evbuffer_free(body);
}

int px_split_keep_frame(px_split *sp, kc_frame *f)
{
    for (int i = 0; i < sp->nxrefs; i++)
        if (sp->xrefs[i] == f) {
            kc_frame_release(f); /* already held */
            return 0;
        }
    if (sp->nxrefs == sp->xrefs_cap) {
        int ncap = sp->xrefs_cap ? sp->xrefs_cap * 2 : 8;
        kc_frame **n = realloc(sp->xrefs, (size_t)ncap * sizeof(*n));
        if (n == NULL) {
            kc_frame_release(f);
            return -1;
        }
        sp->xrefs = n;
        sp->xrefs_cap = ncap;
    }
    sp->xrefs[sp->nxrefs++] = f;
    return 0;
}

void px_split_done(px_split *sp)
{
    if (--sp->pending != 0)
        return;
    if (!sp->no_response)
        px_split_respond(sp, sp->ops->merge);
    px_split_free(sp);
}
