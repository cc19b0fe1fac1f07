/*
 * Requests that carry partitions (Produce, Fetch, ListOffsets,
 * OffsetForLeaderEpoch, DeleteRecords) are split by the real leader of each
 * partition, sent over the pooled broker connections, and the answers merged
 * back into one response in the request's order. ListGroups goes to every
 * broker (each lists the groups it coordinates) and the lists are merged.
 * Record data is never copied: sub-requests reference the client's frame and
 * the merged response references the brokers' frames.
 */
#include "config.h"

#include "proxy/px_proxy.h"

#include "codec/kc_msg.h"
#include "common/kz_log.h"
#include "router/rt_router.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct px_sub {
    int32_t broker;
    kc_frame *resp;
    int16_t fail_code; /* non-zero: every partition of this sub gets it */
    kc_arena arena;
    union {
        kc_produce_resp produce;
        kc_fetch_resp fetch;
        kc_listoffsets_resp lo;
        kc_offsetforleaderepoch_resp ofle;
        kc_deleterecords_resp dr;
        kc_listgroups_resp lg;
    } r;
    int32_t cursor_t, cursor_p; /* where the next lookup starts */
} px_sub;

typedef struct px_split {
    px_req *rq;
    int16_t key, version; /* the client's */
    int16_t up_version;   /* what the brokers get: the client's, or the backend's highest if lower */
    kc_arena arena;
    mc_view *view;
    union {
        kc_produce_req produce;
        kc_fetch_req fetch;
        kc_listoffsets_req lo;
        kc_offsetforleaderepoch_req ofle;
        kc_deleterecords_req dr;
        kc_listgroups_req lg;
    } in;
    int nsubs;
    px_sub *subs;
    int pending;
    int16_t **assign; /* per topic, per partition: sub index >= 0, or -error code */
    struct px_subcb {
        struct px_split *sp;
        int idx;
    } *cbs;
    rt_batch wal;     /* Produce: the partitions on the WAL path */
    kc_frame *frame;  /* the client's frame, kept while the WAL path needs it */
} px_split;

/* assign[][] value of a partition on the WAL path. */
#define PX_ASSIGN_WAL INT16_MAX

static px_split *px_split_new(px_req *rq)
{
    px_split *sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return NULL;
    sp->rq = rq;
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

static void px_split_free(px_split *sp)
{
    for (int i = 0; i < sp->nsubs; i++) {
        kc_frame_release(sp->subs[i].resp);
        kc_arena_destroy(&sp->subs[i].arena);
    }
    mc_view_release(sp->view);
    kc_frame_release(sp->frame);
    kc_arena_destroy(&sp->arena);
    free(sp->subs);
    free(sp->cbs);
    free(sp);
}

static int px_split_decode_fail(px_split *sp, kc_rd *rd)
{
    px_req_reject(sp->rq, "malformed request: %s at byte %zu", rd->err, sp->rq->body_off + rd->err_off);
    px_split_free(sp);
    return -1;
}

static int16_t px_split_sub_for(px_split *sp, int32_t broker, int *cap);

/* Decide where one partition goes: a sub index, PX_ASSIGN_WAL (Produce with
 * records, leader in a zone with a healthy peer), or -error code. */
static int16_t px_split_place_path(px_split *sp, kc_str topic, int32_t partition, int *cap, int wal_ok);

static int16_t px_split_place(px_split *sp, kc_str topic, int32_t partition, int *cap)
{
    return px_split_place_path(sp, topic, partition, cap, 0);
}

static int16_t px_split_place_path(px_split *sp, kc_str topic, int32_t partition, int *cap, int wal_ok)
{
    if (sp->view == NULL)
        return -KC_ERR_LEADER_NOT_AVAILABLE;
    const mc_topic *t = mc_view_topic(sp->view, topic);
    if (t == NULL)
        return -KC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    const mc_partition *p = mc_view_partition(sp->view, topic, partition);
    if (p == NULL)
        return -KC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (p->leader_id < 0 || mc_view_broker(sp->view, p->leader_id) == NULL)
        return -KC_ERR_LEADER_NOT_AVAILABLE;
    if (sp->key == KC_API_PRODUCE) {
        px_proxy *px = px_client_proxy(sp->rq->cl);
        int path = rt_out_path(px->rt, sp->view, p->leader_id);
        if (path == RT_PATH_WAL && wal_ok) {
            px->m.produce_parts_wal++;
            return PX_ASSIGN_WAL;
        }
        if (path == RT_PATH_DIRECT)
            px->m.produce_parts_direct++;
        else
            px->m.produce_parts_cross++;
    }
    return px_split_sub_for(sp, p->leader_id, cap);
}

/* The index of the sub-request to broker, added when there is none yet; or
 * -UNKNOWN_SERVER_ERROR when out of memory. */
static int16_t px_split_sub_for(px_split *sp, int32_t broker, int *cap)
{
    for (int i = 0; i < sp->nsubs; i++)
        if (sp->subs[i].broker == broker)
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
    kc_arena_init(&s->arena);
    return (int16_t)sp->nsubs++;
}

/* Allocate the assignment table for ntopics topics of counts[] partitions. */
static int px_split_assign_alloc(px_split *sp, int32_t ntopics)
{
    sp->assign = kc_arena_calloc(&sp->arena, (size_t)ntopics, sizeof(int16_t *));
    return sp->assign ? 0 : -1;
}

static int px_is_stale_metadata(int16_t e)
{
    return e == KC_ERR_NOT_LEADER_OR_FOLLOWER || e == KC_ERR_LEADER_NOT_AVAILABLE ||
           e == KC_ERR_UNKNOWN_TOPIC_OR_PARTITION || e == KC_ERR_FENCED_LEADER_EPOCH ||
           e == KC_ERR_UNKNOWN_LEADER_EPOCH || e == KC_ERR_UNKNOWN_TOPIC_ID;
}

/* The sub-request that answers an assigned partition, or NULL with the
 * error the partition gets instead (placement error, or the sub failed). */
static px_sub *px_split_answer(px_split *sp, int16_t where, int16_t *code)
{
    if (where < 0) {
        *code = (int16_t)-where;
        return NULL;
    }
    px_sub *s = &sp->subs[where];
    *code = s->fail_code;
    return s->fail_code == 0 ? s : NULL;
}

static void px_split_finish(px_split *sp);
static void px_produce_encode(kc_wr *w, px_split *sp);
static void px_fetch_encode(kc_wr *w, px_split *sp);
static void px_listoffsets_encode(kc_wr *w, px_split *sp);
static void px_ofle_encode(kc_wr *w, px_split *sp);
static void px_dr_encode(kc_wr *w, px_split *sp);
static void px_lg_encode(kc_wr *w, px_split *sp);

static void px_sub_cb(kc_frame *resp, const char *err, void *arg)
{
    struct px_subcb *cb = arg;
    px_split *sp = cb->sp;
    px_sub *s = &sp->subs[cb->idx];
    px_proxy *px = px_client_proxy(sp->rq->cl);
    if (resp == NULL) {
        kz_info("client %s: %s to broker %d failed: %s", px_client_peer(sp->rq->cl),
                kc_api_name(sp->key), s->broker, err ? err : "?");
        s->fail_code = KC_ERR_NOT_LEADER_OR_FOLLOWER;
        mc_cluster_refresh_soon(px->mc);
    } else {
        s->resp = resp;
        kc_rd rd;
        kc_rd_init(&rd, resp->data, resp->len);
        (void)kc_resp_hdr_decode(&rd, kc_resp_hdr_version(sp->key, sp->up_version));
        int rc = -1;
        switch (sp->key) {
        case KC_API_PRODUCE:
            rc = kc_produce_resp_decode(&rd, sp->up_version, &s->arena, &s->r.produce);
            break;
        case KC_API_FETCH:
            rc = kc_fetch_resp_decode(&rd, sp->up_version, &s->arena, &s->r.fetch);
            break;
        case KC_API_LISTOFFSETS:
            rc = kc_listoffsets_resp_decode(&rd, sp->up_version, &s->arena, &s->r.lo);
            break;
        case KC_API_OFFSETFORLEADEREPOCH:
            rc = kc_offsetforleaderepoch_resp_decode(&rd, sp->up_version, &s->arena, &s->r.ofle);
            break;
        case KC_API_DELETERECORDS:
            rc = kc_deleterecords_resp_decode(&rd, sp->up_version, &s->arena, &s->r.dr);
            break;
        case KC_API_LISTGROUPS:
            rc = kc_listgroups_resp_decode(&rd, sp->up_version, &s->arena, &s->r.lg);
            break;
        }
        if (rc != 0) {
            kz_warn("broker %d: malformed %s v%d response: %s at byte %zu", s->broker,
                    kc_api_name(sp->key), sp->up_version, rd.err, rd.err_off);
            s->fail_code = KC_ERR_NETWORK_EXCEPTION;
        }
    }
    if (--sp->pending == 0)
        px_split_finish(sp);
}

/* Send every sub-request; bodies[i] is drained. */
static void px_split_send(px_split *sp, struct evbuffer **bodies, int expect_response, int extra_wait_ms)
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
                                    sp->key == KC_API_FETCH || sp->key == KC_API_DELETERECORDS);
        if (sp->cbs == NULL || c == NULL || bodies[i] == NULL) {
            s->fail_code = KC_ERR_LEADER_NOT_AVAILABLE;
            sp->pending--;
            continue;
        }
        sp->cbs[i].sp = sp;
        sp->cbs[i].idx = i;
        if (mc_conn_request(c, sp->key, sp->up_version, sp->rq->hdr.client_id, bodies[i], expect_response,
                            extra_wait_ms, px_sub_cb, &sp->cbs[i]) != 0) {
            s->fail_code = KC_ERR_NOT_LEADER_OR_FOLLOWER; /* broker in backoff: client retries */
            sp->pending--;
            mc_cluster_refresh_soon(px->mc);
        } else if (!expect_response) {
            sp->pending--;
        }
    }
    for (int i = 0; i < sp->nsubs; i++)
        if (bodies[i])
            evbuffer_free(bodies[i]);
    if (sp->wal.nparts > 0)
        rt_out_submit(px->rt, &sp->wal); /* its done callback drops the extra count */
    if (--sp->pending == 0)
        px_split_finish(sp);
}

static void px_wal_done(rt_batch *b, void *arg)
{
    (void)b;
    px_split *sp = arg;
    if (--sp->pending == 0)
        px_split_finish(sp);
}

static void px_split_respond(px_split *sp, void (*encode)(kc_wr *, px_split *))
{
    struct evbuffer *body = evbuffer_new();
    kc_frame *refs[64];
    int nrefs = 0;
    for (int i = 0; i < sp->nsubs && nrefs < 64; i++)
        if (sp->subs[i].resp)
            refs[nrefs++] = sp->subs[i].resp;
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

/* ======================= Produce ======================= */

static const kc_produce_resp_partition *px_produce_find(px_sub *s, kc_str topic, int32_t part)
{
    const kc_produce_resp *r = &s->r.produce;
    for (int32_t k = 0; k < r->ntopics; k++) {
        int32_t t = (s->cursor_t + k) % r->ntopics;
        const kc_produce_resp_topic *rt = &r->topics[t];
        if (rt->name.len != topic.len || memcmp(rt->name.p, topic.p, (size_t)topic.len) != 0)
            continue;
        for (int32_t j = 0; j < rt->npartitions; j++) {
            if (rt->partitions[j].index == part) {
                s->cursor_t = t;
                return &rt->partitions[j];
            }
        }
    }
    return NULL;
}

static void px_produce_encode(kc_wr *w, px_split *sp)
{
    const kc_produce_req *in = &sp->in.produce;
    px_proxy *px = px_client_proxy(sp->rq->cl);
    kc_produce_resp out = {0};
    kc_arena *a = &sp->arena;
    out.ntopics = in->ntopics;
    out.topics = kc_arena_calloc(a, (size_t)in->ntopics, sizeof(*out.topics));
    if (out.topics == NULL) {
        w->err = 1;
        return;
    }
    int stale = 0, widx = 0;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_produce_req_topic *it = &in->topics[t];
        kc_produce_resp_topic *ot = &out.topics[t];
        ot->name = it->name;
        ot->npartitions = it->npartitions;
        ot->partitions = kc_arena_calloc(a, (size_t)it->npartitions, sizeof(*ot->partitions));
        if (ot->partitions == NULL) {
            w->err = 1;
            return;
        }
        for (int32_t p = 0; p < it->npartitions; p++) {
            kc_produce_resp_partition *op = &ot->partitions[p];
            int16_t where = sp->assign[t][p];
            const kc_produce_resp_partition *found = NULL;
            int16_t code;
            px_sub *s;
            if (where == PX_ASSIGN_WAL) {
                found = widx < sp->wal.nparts ? &sp->wal.parts[widx++].result : NULL;
                code = found ? 0 : KC_ERR_NETWORK_EXCEPTION;
            } else if ((s = px_split_answer(sp, where, &code)) != NULL &&
                       (found = px_produce_find(s, it->name, it->partitions[p].index)) == NULL) {
                code = KC_ERR_NETWORK_EXCEPTION; /* the broker left it out */
            }
            if (found) {
                *op = *found;
                op->tags = (kc_tags){0};
                if (op->error_code != 0)
                    px->m.partition_errors++;
            } else {
                op->index = it->partitions[p].index;
                op->error_code = code;
                op->base_offset = -1;
                op->log_append_time_ms = -1;
                op->log_start_offset = -1;
                px->m.partition_errors++;
            }
            stale |= px_is_stale_metadata(op->error_code);
        }
    }
    for (int i = 0; i < sp->nsubs; i++)
        if (sp->subs[i].resp && sp->subs[i].fail_code == 0 &&
            sp->subs[i].r.produce.throttle_time_ms > out.throttle_time_ms)
            out.throttle_time_ms = sp->subs[i].r.produce.throttle_time_ms;
    if (stale)
        mc_cluster_refresh_soon(px->mc);
    kc_produce_resp_encode(w, sp->version, &out);
}

static void px_split_finish(px_split *sp)
{
    if (sp->key == KC_API_PRODUCE) {
        if (sp->in.produce.acks != 0)
            px_split_respond(sp, px_produce_encode);
    } else if (sp->key == KC_API_FETCH) {
        px_split_respond(sp, px_fetch_encode);
    } else if (sp->key == KC_API_OFFSETFORLEADEREPOCH) {
        px_split_respond(sp, px_ofle_encode);
    } else if (sp->key == KC_API_DELETERECORDS) {
        px_split_respond(sp, px_dr_encode);
    } else if (sp->key == KC_API_LISTGROUPS) {
        px_split_respond(sp, px_lg_encode);
    } else {
        px_split_respond(sp, px_listoffsets_encode);
    }
    px_split_free(sp);
}

/* Fill the WAL batch from the partitions assigned to it, in request order. */
static int px_split_wal_prepare(px_split *sp)
{
    const kc_produce_req *in = &sp->in.produce;
    rt_batch *b = &sp->wal;
    b->parts = kc_arena_calloc(&sp->arena, (size_t)b->nparts, sizeof(*b->parts));
    if (b->parts == NULL)
        return -1;
    int k = 0;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_produce_req_topic *it = &in->topics[t];
        for (int32_t p = 0; p < it->npartitions; p++) {
            if (sp->assign[t][p] != PX_ASSIGN_WAL || k >= b->nparts)
                continue;
            rt_part *rp = &b->parts[k++];
            rp->topic = it->name;
            rp->partition = it->partitions[p].index;
            rp->records = it->partitions[p].records;
            rp->leader_id = mc_view_partition(sp->view, it->name, rp->partition)->leader_id;
        }
    }
    sp->frame = kc_frame_keep(sp->rq->frame);
    b->frame = sp->frame;
    b->version = sp->version;
    b->acks = in->acks;
    b->timeout_ms = in->timeout_ms;
    b->transactional_id = in->transactional_id;
    b->client_id = sp->rq->hdr.client_id;
    b->arena = &sp->arena;
    b->done = px_wal_done;
    b->arg = sp;
    return 0;
}

void px_route_produce(px_req *rq)
{
    px_proxy *px = px_client_proxy(rq->cl);
    px_split *sp = px_split_new(rq);
    if (sp == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    kc_produce_req *in = &sp->in.produce;
    if (kc_produce_req_decode(&rd, sp->version, &sp->arena, in) != 0) {
        px_split_decode_fail(sp, &rd);
        return;
    }
    int cap = 0;
    if (px_split_assign_alloc(sp, in->ntopics) != 0)
        goto oom;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_produce_req_topic *it = &in->topics[t];
        sp->assign[t] = kc_arena_calloc(&sp->arena, (size_t)it->npartitions, sizeof(int16_t));
        if (sp->assign[t] == NULL)
            goto oom;
        for (int32_t p = 0; p < it->npartitions; p++) {
            int32_t rlen = it->partitions[p].records.len;
            sp->assign[t][p] = px_split_place_path(sp, it->name, it->partitions[p].index, &cap, rlen > 0);
            px->m.produce_partitions++;
            if (rlen > 0)
                px->m.produce_record_bytes += (uint64_t)rlen;
            if (sp->assign[t][p] == PX_ASSIGN_WAL)
                sp->wal.nparts++;
        }
    }
    if (sp->wal.nparts > 0 && px_split_wal_prepare(sp) != 0)
        goto oom;
    struct evbuffer **bodies = calloc((size_t)(sp->nsubs ? sp->nsubs : 1), sizeof(*bodies));
    if (bodies == NULL)
        goto oom;
    for (int i = 0; i < sp->nsubs; i++) {
        kc_produce_req sub = *in;
        kc_arena *a = &sp->arena;
        sub.topics = kc_arena_calloc(a, (size_t)in->ntopics, sizeof(*sub.topics));
        sub.ntopics = 0;
        if (sub.topics == NULL)
            continue;
        for (int32_t t = 0; t < in->ntopics; t++) {
            const kc_produce_req_topic *it = &in->topics[t];
            kc_produce_req_topic *st = &sub.topics[sub.ntopics];
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
            kc_wr_init(&w, bodies[i], rq->frame); /* records by reference */
            kc_produce_req_encode(&w, sp->up_version, &sub);
            if (w.err) {
                evbuffer_free(bodies[i]);
                bodies[i] = NULL;
            }
        }
    }
    int acks = in->acks;
    px_split_send(sp, bodies, acks != 0, 0);
    free(bodies);
    if (acks == 0)
        px_req_respond(rq, NULL); /* acks=0: the client expects no response */
    return;
oom:
    px_req_reject(rq, "out of memory");
    px_split_free(sp);
}

/* ======================= Fetch ======================= */

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
            px_sub *s = px_split_answer(sp, where, &code);
            if (s && s->r.fetch.error_code != 0)
                code = s->r.fetch.error_code; /* the whole response failed */
            else if (s && (found = px_fetch_find(s, sp->up_version, it, it->partitions[p].partition)) == NULL)
                code = KC_ERR_NETWORK_EXCEPTION;
            if (found) {
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

void px_route_fetch(px_req *rq)
{
    px_split *sp = px_split_new(rq);
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
    int cap = 0;
    if (px_split_assign_alloc(sp, in->ntopics) != 0)
        goto oom;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_fetch_req_topic *it = &in->topics[t];
        sp->assign[t] = kc_arena_calloc(&sp->arena, (size_t)it->npartitions, sizeof(int16_t));
        if (sp->assign[t] == NULL)
            goto oom;
        for (int32_t p = 0; p < it->npartitions; p++)
            sp->assign[t][p] = unknown_id && unknown_id[t]
                                   ? -KC_ERR_UNKNOWN_TOPIC_ID
                                   : px_split_place(sp, it->topic, it->partitions[p].partition, &cap);
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
        sub.rack_id = kc_str_c("");
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
            if (w.err) {
                evbuffer_free(bodies[i]);
                bodies[i] = NULL;
            }
        }
    }
    px_split_send(sp, bodies, 1, in->max_wait_ms > 0 ? in->max_wait_ms : 0);
    free(bodies);
    return;
oom:
    px_req_reject(rq, "out of memory");
    px_split_free(sp);
}

/* ======================= ListOffsets ======================= */

static const kc_listoffsets_resp_partition *px_lo_find(px_sub *s, kc_str topic, int32_t part)
{
    const kc_listoffsets_resp *r = &s->r.lo;
    for (int32_t t = 0; t < r->ntopics; t++) {
        const kc_listoffsets_resp_topic *rt = &r->topics[t];
        if (rt->name.len != topic.len || memcmp(rt->name.p, topic.p, (size_t)topic.len) != 0)
            continue;
        for (int32_t j = 0; j < rt->npartitions; j++)
            if (rt->partitions[j].partition_index == part)
                return &rt->partitions[j];
    }
    return NULL;
}

static void px_listoffsets_encode(kc_wr *w, px_split *sp)
{
    const kc_listoffsets_req *in = &sp->in.lo;
    px_proxy *px = px_client_proxy(sp->rq->cl);
    kc_arena *a = &sp->arena;
    kc_listoffsets_resp out = {0};
    out.ntopics = in->ntopics;
    out.topics = kc_arena_calloc(a, (size_t)in->ntopics, sizeof(*out.topics));
    if (out.topics == NULL) {
        w->err = 1;
        return;
    }
    int stale = 0;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_listoffsets_req_topic *it = &in->topics[t];
        kc_listoffsets_resp_topic *ot = &out.topics[t];
        ot->name = it->name;
        ot->npartitions = it->npartitions;
        ot->partitions = kc_arena_calloc(a, (size_t)it->npartitions, sizeof(*ot->partitions));
        if (ot->partitions == NULL) {
            w->err = 1;
            return;
        }
        for (int32_t p = 0; p < it->npartitions; p++) {
            kc_listoffsets_resp_partition *op = &ot->partitions[p];
            int16_t where = sp->assign[t][p];
            const kc_listoffsets_resp_partition *found = NULL;
            int16_t code;
            px_sub *s = px_split_answer(sp, where, &code);
            if (s && (found = px_lo_find(s, it->name, it->partitions[p].partition_index)) == NULL)
                code = KC_ERR_NETWORK_EXCEPTION;
            if (found) {
                *op = *found;
                op->tags = (kc_tags){0};
            } else {
                op->partition_index = it->partitions[p].partition_index;
                op->error_code = code;
                op->timestamp = -1;
                op->offset = -1;
                op->leader_epoch = -1;
                px->m.partition_errors++;
            }
            stale |= px_is_stale_metadata(op->error_code);
        }
    }
    if (stale)
        mc_cluster_refresh_soon(px->mc);
    kc_listoffsets_resp_encode(w, sp->version, &out);
}

void px_route_listoffsets(px_req *rq)
{
    px_split *sp = px_split_new(rq);
    if (sp == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    kc_listoffsets_req *in = &sp->in.lo;
    if (kc_listoffsets_req_decode(&rd, sp->version, &sp->arena, in) != 0) {
        px_split_decode_fail(sp, &rd);
        return;
    }
    int cap = 0;
    if (px_split_assign_alloc(sp, in->ntopics) != 0)
        goto oom;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_listoffsets_req_topic *it = &in->topics[t];
        sp->assign[t] = kc_arena_calloc(&sp->arena, (size_t)it->npartitions, sizeof(int16_t));
        if (sp->assign[t] == NULL)
            goto oom;
        for (int32_t p = 0; p < it->npartitions; p++)
            sp->assign[t][p] = px_split_place(sp, it->name, it->partitions[p].partition_index, &cap);
    }
    struct evbuffer **bodies = calloc((size_t)(sp->nsubs ? sp->nsubs : 1), sizeof(*bodies));
    if (bodies == NULL)
        goto oom;
    for (int i = 0; i < sp->nsubs; i++) {
        kc_listoffsets_req sub = *in;
        kc_arena *a = &sp->arena;
        sub.replica_id = -1;
        sub.topics = kc_arena_calloc(a, (size_t)in->ntopics, sizeof(*sub.topics));
        sub.ntopics = 0;
        if (sub.topics == NULL)
            continue;
        for (int32_t t = 0; t < in->ntopics; t++) {
            const kc_listoffsets_req_topic *it = &in->topics[t];
            kc_listoffsets_req_topic *st = &sub.topics[sub.ntopics];
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
            kc_listoffsets_req_encode(&w, sp->up_version, &sub);
            if (w.err) {
                evbuffer_free(bodies[i]);
                bodies[i] = NULL;
            }
        }
    }
    px_split_send(sp, bodies, 1, 0);
    free(bodies);
    return;
oom:
    px_req_reject(rq, "out of memory");
    px_split_free(sp);
}

/* ======================= OffsetForLeaderEpoch ======================= */

static const kc_offsetforleaderepoch_resp_partition *px_ofle_find(px_sub *s, kc_str topic, int32_t part)
{
    const kc_offsetforleaderepoch_resp *r = &s->r.ofle;
    for (int32_t t = 0; t < r->ntopics; t++) {
        const kc_offsetforleaderepoch_resp_topic *rt = &r->topics[t];
        if (rt->topic.len != topic.len || memcmp(rt->topic.p, topic.p, (size_t)topic.len) != 0)
            continue;
        for (int32_t j = 0; j < rt->npartitions; j++)
            if (rt->partitions[j].partition == part)
                return &rt->partitions[j];
    }
    return NULL;
}

static void px_ofle_encode(kc_wr *w, px_split *sp)
{
    const kc_offsetforleaderepoch_req *in = &sp->in.ofle;
    px_proxy *px = px_client_proxy(sp->rq->cl);
    kc_arena *a = &sp->arena;
    kc_offsetforleaderepoch_resp out = {0};
    out.ntopics = in->ntopics;
    out.topics = kc_arena_calloc(a, (size_t)in->ntopics, sizeof(*out.topics));
    if (out.topics == NULL) {
        w->err = 1;
        return;
    }
    int stale = 0;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_offsetforleaderepoch_req_topic *it = &in->topics[t];
        kc_offsetforleaderepoch_resp_topic *ot = &out.topics[t];
        ot->topic = it->topic;
        ot->npartitions = it->npartitions;
        ot->partitions = kc_arena_calloc(a, (size_t)it->npartitions, sizeof(*ot->partitions));
        if (ot->partitions == NULL) {
            w->err = 1;
            return;
        }
        for (int32_t p = 0; p < it->npartitions; p++) {
            kc_offsetforleaderepoch_resp_partition *op = &ot->partitions[p];
            int16_t where = sp->assign[t][p];
            const kc_offsetforleaderepoch_resp_partition *found = NULL;
            int16_t code;
            px_sub *s = px_split_answer(sp, where, &code);
            if (s && (found = px_ofle_find(s, it->topic, it->partitions[p].partition)) == NULL)
                code = KC_ERR_NETWORK_EXCEPTION;
            if (found) {
                *op = *found;
                op->tags = (kc_tags){0};
            } else {
                op->partition = it->partitions[p].partition;
                op->error_code = code;
                op->leader_epoch = -1;
                op->end_offset = -1;
                px->m.partition_errors++;
            }
            stale |= px_is_stale_metadata(op->error_code);
        }
    }
    for (int i = 0; i < sp->nsubs; i++)
        if (sp->subs[i].resp && sp->subs[i].fail_code == 0 &&
            sp->subs[i].r.ofle.throttle_time_ms > out.throttle_time_ms)
            out.throttle_time_ms = sp->subs[i].r.ofle.throttle_time_ms;
    if (stale)
        mc_cluster_refresh_soon(px->mc);
    kc_offsetforleaderepoch_resp_encode(w, sp->version, &out);
}

void px_route_offsetforleaderepoch(px_req *rq)
{
    px_split *sp = px_split_new(rq);
    if (sp == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    kc_offsetforleaderepoch_req *in = &sp->in.ofle;
    if (kc_offsetforleaderepoch_req_decode(&rd, sp->version, &sp->arena, in) != 0) {
        px_split_decode_fail(sp, &rd);
        return;
    }
    int cap = 0;
    if (px_split_assign_alloc(sp, in->ntopics) != 0)
        goto oom;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_offsetforleaderepoch_req_topic *it = &in->topics[t];
        sp->assign[t] = kc_arena_calloc(&sp->arena, (size_t)it->npartitions, sizeof(int16_t));
        if (sp->assign[t] == NULL)
            goto oom;
        for (int32_t p = 0; p < it->npartitions; p++)
            sp->assign[t][p] = px_split_place(sp, it->topic, it->partitions[p].partition, &cap);
    }
    struct evbuffer **bodies = calloc((size_t)(sp->nsubs ? sp->nsubs : 1), sizeof(*bodies));
    if (bodies == NULL)
        goto oom;
    for (int i = 0; i < sp->nsubs; i++) {
        kc_offsetforleaderepoch_req sub = *in;
        kc_arena *a = &sp->arena;
        sub.topics = kc_arena_calloc(a, (size_t)in->ntopics, sizeof(*sub.topics));
        sub.ntopics = 0;
        if (sub.topics == NULL)
            continue;
        for (int32_t t = 0; t < in->ntopics; t++) {
            const kc_offsetforleaderepoch_req_topic *it = &in->topics[t];
            kc_offsetforleaderepoch_req_topic *st = &sub.topics[sub.ntopics];
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
            kc_offsetforleaderepoch_req_encode(&w, sp->up_version, &sub);
            if (w.err) {
                evbuffer_free(bodies[i]);
                bodies[i] = NULL;
            }
        }
    }
    px_split_send(sp, bodies, 1, 0);
    free(bodies);
    return;
oom:
    px_req_reject(rq, "out of memory");
    px_split_free(sp);
}

/* ======================= DeleteRecords ======================= */

static const kc_deleterecords_resp_partition *px_dr_find(px_sub *s, kc_str topic, int32_t part)
{
    const kc_deleterecords_resp *r = &s->r.dr;
    for (int32_t t = 0; t < r->ntopics; t++) {
        const kc_deleterecords_resp_topic *rt = &r->topics[t];
        if (rt->name.len != topic.len || memcmp(rt->name.p, topic.p, (size_t)topic.len) != 0)
            continue;
        for (int32_t j = 0; j < rt->npartitions; j++)
            if (rt->partitions[j].partition_index == part)
                return &rt->partitions[j];
    }
    return NULL;
}

static void px_dr_encode(kc_wr *w, px_split *sp)
{
    const kc_deleterecords_req *in = &sp->in.dr;
    px_proxy *px = px_client_proxy(sp->rq->cl);
    kc_arena *a = &sp->arena;
    kc_deleterecords_resp out = {0};
    out.ntopics = in->ntopics;
    out.topics = kc_arena_calloc(a, (size_t)in->ntopics, sizeof(*out.topics));
    if (out.topics == NULL) {
        w->err = 1;
        return;
    }
    int stale = 0;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_deleterecords_req_topic *it = &in->topics[t];
        kc_deleterecords_resp_topic *ot = &out.topics[t];
        ot->name = it->name;
        ot->npartitions = it->npartitions;
        ot->partitions = kc_arena_calloc(a, (size_t)it->npartitions, sizeof(*ot->partitions));
        if (ot->partitions == NULL) {
            w->err = 1;
            return;
        }
        for (int32_t p = 0; p < it->npartitions; p++) {
            kc_deleterecords_resp_partition *op = &ot->partitions[p];
            int16_t where = sp->assign[t][p];
            const kc_deleterecords_resp_partition *found = NULL;
            int16_t code;
            px_sub *s = px_split_answer(sp, where, &code);
            if (s && (found = px_dr_find(s, it->name, it->partitions[p].partition_index)) == NULL)
                code = KC_ERR_NETWORK_EXCEPTION;
            if (found) {
                *op = *found;
                op->tags = (kc_tags){0};
            } else {
                op->partition_index = it->partitions[p].partition_index;
                op->low_watermark = -1;
                op->error_code = code;
                px->m.partition_errors++;
            }
            stale |= px_is_stale_metadata(op->error_code);
        }
    }
    for (int i = 0; i < sp->nsubs; i++)
        if (sp->subs[i].resp && sp->subs[i].fail_code == 0 &&
            sp->subs[i].r.dr.throttle_time_ms > out.throttle_time_ms)
            out.throttle_time_ms = sp->subs[i].r.dr.throttle_time_ms;
    if (stale)
        mc_cluster_refresh_soon(px->mc);
    kc_deleterecords_resp_encode(w, sp->version, &out);
}

void px_route_deleterecords(px_req *rq)
{
    px_split *sp = px_split_new(rq);
    if (sp == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    kc_deleterecords_req *in = &sp->in.dr;
    if (kc_deleterecords_req_decode(&rd, sp->version, &sp->arena, in) != 0) {
        px_split_decode_fail(sp, &rd);
        return;
    }
    int cap = 0;
    if (px_split_assign_alloc(sp, in->ntopics) != 0)
        goto oom;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_deleterecords_req_topic *it = &in->topics[t];
        sp->assign[t] = kc_arena_calloc(&sp->arena, (size_t)it->npartitions, sizeof(int16_t));
        if (sp->assign[t] == NULL)
            goto oom;
        for (int32_t p = 0; p < it->npartitions; p++)
            sp->assign[t][p] = px_split_place(sp, it->name, it->partitions[p].partition_index, &cap);
    }
    struct evbuffer **bodies = calloc((size_t)(sp->nsubs ? sp->nsubs : 1), sizeof(*bodies));
    if (bodies == NULL)
        goto oom;
    for (int i = 0; i < sp->nsubs; i++) {
        kc_deleterecords_req sub = *in;
        kc_arena *a = &sp->arena;
        sub.topics = kc_arena_calloc(a, (size_t)in->ntopics, sizeof(*sub.topics));
        sub.ntopics = 0;
        if (sub.topics == NULL)
            continue;
        for (int32_t t = 0; t < in->ntopics; t++) {
            const kc_deleterecords_req_topic *it = &in->topics[t];
            kc_deleterecords_req_topic *st = &sub.topics[sub.ntopics];
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
            kc_deleterecords_req_encode(&w, sp->up_version, &sub);
            if (w.err) {
                evbuffer_free(bodies[i]);
                bodies[i] = NULL;
            }
        }
    }
    /* The leader waits up to TimeoutMs for the followers to catch up. */
    px_split_send(sp, bodies, 1, in->timeout_ms > 0 ? in->timeout_ms : 0);
    free(bodies);
    return;
oom:
    px_req_reject(rq, "out of memory");
    px_split_free(sp);
}

/* ======================= ListGroups ======================= */

int px_listgroups_merge(kc_arena *a, const kc_listgroups_resp *const *in, int n, kc_listgroups_resp *out)
{
    *out = (kc_listgroups_resp){0};
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (in[i] && in[i]->error_code == 0 && in[i]->ngroups > 0)
            total += (size_t)in[i]->ngroups;
    out->groups = kc_arena_calloc(a, total, sizeof(*out->groups));
    if (out->groups == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        int16_t e = in[i] ? in[i]->error_code : KC_ERR_COORDINATOR_NOT_AVAILABLE;
        if (out->error_code == 0)
            out->error_code = e;
        if (in[i] == NULL)
            continue;
        if (in[i]->throttle_time_ms > out->throttle_time_ms)
            out->throttle_time_ms = in[i]->throttle_time_ms;
        if (e != 0)
            continue;
        for (int32_t g = 0; g < in[i]->ngroups; g++) {
            out->groups[out->ngroups] = in[i]->groups[g];
            out->groups[out->ngroups++].tags = (kc_tags){0};
        }
    }
    return 0;
}

static void px_lg_encode(kc_wr *w, px_split *sp)
{
    const kc_listgroups_resp **in = kc_arena_calloc(&sp->arena, (size_t)sp->nsubs, sizeof(*in));
    kc_listgroups_resp out;
    if (in == NULL) {
        w->err = 1;
        return;
    }
    for (int i = 0; i < sp->nsubs; i++)
        in[i] = sp->subs[i].fail_code == 0 && sp->subs[i].resp ? &sp->subs[i].r.lg : NULL;
    if (px_listgroups_merge(&sp->arena, in, sp->nsubs, &out) != 0) {
        w->err = 1;
        return;
    }
    if (sp->nsubs == 0 && sp->view == NULL)
        out.error_code = KC_ERR_COORDINATOR_NOT_AVAILABLE; /* no broker known yet */
    if (out.error_code != 0)
        kz_info("client %s: ListGroups over %d brokers: %s", px_client_peer(sp->rq->cl), sp->nsubs,
                kc_err_name(out.error_code));
    kc_listgroups_resp_encode(w, sp->version, &out);
}

void px_route_listgroups(px_req *rq)
{
    px_split *sp = px_split_new(rq);
    if (sp == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    kc_listgroups_req *in = &sp->in.lg;
    if (kc_listgroups_req_decode(&rd, sp->version, &sp->arena, in) != 0) {
        px_split_decode_fail(sp, &rd);
        return;
    }
    /* Clients send ListGroups to every broker they know, here every proxy
     * of their zone: only the zone's first proxy lists the groups (it asks
     * every real broker), the others answer with none, so each group is
     * listed once. */
    px_proxy *px = px_client_proxy(rq->cl);
    const px_node *zn;
    int fallback;
    int nz = px_vc_zone_nodes(px, px_client_zone(rq->cl), &zn, &fallback);
    int lister = nz > 0 && zn[0].node_id == px->cfg->node_id;
    /* Every broker coordinates some groups: ask them all. */
    int cap = 0;
    int32_t nb = sp->view && lister ? sp->view->nbrokers : 0;
    for (int32_t b = 0; b < nb; b++)
        if (px_split_sub_for(sp, sp->view->brokers[b].id, &cap) < 0)
            goto oom;
    struct evbuffer **bodies = calloc((size_t)(sp->nsubs ? sp->nsubs : 1), sizeof(*bodies));
    if (bodies == NULL)
        goto oom;
    for (int i = 0; i < sp->nsubs; i++) {
        bodies[i] = evbuffer_new();
        if (bodies[i]) {
            kc_wr w;
            kc_wr_init(&w, bodies[i], NULL);
            kc_listgroups_req_encode(&w, sp->up_version, in);
            if (w.err) {
                evbuffer_free(bodies[i]);
                bodies[i] = NULL;
            }
        }
    }
    px_split_send(sp, bodies, 1, 0);
    free(bodies);
    return;
oom:
    px_req_reject(rq, "out of memory");
    px_split_free(sp);
}
