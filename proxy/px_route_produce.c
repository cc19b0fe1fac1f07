/*
 * Produce: each partition goes to its leader (in this zone, or across zones
 * when the policy or the peers' health says so) or, leader in another zone
 * with a healthy peer there, to the WAL path as one rt_batch. The answers
 * (brokers and the batch) are merged in the request's order. A partition
 * with WAL-path batches of the same client connection still in flight is not
 * sent another way (rt_out_inflight): it would overtake them.
 */
#include "config.h"

#include "proxy/px_route_int.h"

#include "common/kz_log.h"
#include "common/kz_time.h"
#include "meta-client/mc_xzone.h"
#include "router/rt_seq.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Sequence holds without a router. With a wal section router-out keeps, per
 * client connection and partition, the earliest batch of an idempotent
 * producer that failed with a retriable error, and holds the producer's
 * later batches until that retry comes (rt_out_seq_failed, rt_out_seq_hold).
 * Without one, the direct path keeps the same marks (rt_seq.h) here, per
 * client connection: a batch that failed in this proxy without reaching its
 * broker (the connection in reconnect backoff, a refused connect) must not
 * be overtaken by a later one the client had already sent, which finds the
 * broker back a moment later.
 */
typedef struct px_seq_mark {
    char *topic;
    int32_t partition;
    rt_seqmark mark;
} px_seq_mark;

struct px_seq_marks {
    int n, cap;
    px_seq_mark *m;
};

void px_seq_marks_free(struct px_seq_marks *sm)
{
    if (sm == NULL)
        return;
    for (int i = 0; i < sm->n; i++)
        free(sm->m[i].topic);
    free(sm->m);
    free(sm);
}

static px_seq_mark *px_seq_find(struct px_seq_marks *sm, kc_str topic, int32_t partition)
{
    for (int i = 0; sm && i < sm->n; i++)
        if (sm->m[i].partition == partition && strlen(sm->m[i].topic) == (size_t)topic.len &&
            memcmp(sm->m[i].topic, topic.p, (size_t)topic.len) == 0)
            return &sm->m[i];
    return NULL;
}

static void px_seq_failed(px_client *cl, kc_str topic, int32_t partition, kc_bytes records, int16_t code)
{
    struct px_seq_marks **smp = px_client_seq_marks(cl);
    if (smp == NULL || topic.len < 0 || !rt_seq_markable(records, code))
        return;
    px_seq_mark *m = px_seq_find(*smp, topic, partition);
    if (m == NULL) {
        struct px_seq_marks *sm = *smp;
        if (sm == NULL && (sm = *smp = calloc(1, sizeof(*sm))) == NULL)
            return;
        if (sm->n == sm->cap) {
            int ncap = sm->cap ? sm->cap * 2 : 8;
            px_seq_mark *nm = realloc(sm->m, (size_t)ncap * sizeof(*nm));
            if (nm == NULL)
                return;
            sm->m = nm;
            sm->cap = ncap;
        }
        char *t = malloc((size_t)topic.len + 1);
        if (t == NULL)
            return;
        memcpy(t, topic.p, (size_t)topic.len);
        t[topic.len] = '\0';
        m = &sm->m[sm->n++];
        *m = (px_seq_mark){.topic = t, .partition = partition};
    }
    rt_seq_failed(&m->mark, records, kz_mono_ms());
}

/* 1 when records must wait for the retry of an earlier failed batch. */
static int px_seq_hold(px_client *cl, kc_str topic, int32_t partition, kc_bytes records)
{
    struct px_seq_marks **smp = px_client_seq_marks(cl);
    px_seq_mark *m = smp ? px_seq_find(*smp, topic, partition) : NULL;
    if (m == NULL)
        return 0;
    if (rt_seq_hold(&m->mark, records, kz_mono_ms())) {
        kz_dbg("client %s: Produce %.*s-%d held: an earlier batch of this producer (sequence %d) failed and "
               "its retry has not come yet", px_client_peer(cl), (int)topic.len, topic.p, (int)partition,
               (int)m->mark.seq);
        return 1;
    }
    if (!m->mark.set) { /* expired, another producer session, or the retry itself */
        struct px_seq_marks *sm = *smp;
        free(m->topic);
        *m = sm->m[--sm->n];
    }
    return 0;
}

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

static int px_produce_resp_decode(px_split *sp, px_sub *s, kc_rd *rd)
{
    return kc_produce_resp_decode(rd, sp->up_version, &s->arena, &s->r.produce);
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
            /* A batch that did not take the WAL path (router-out records
             * its own) failed: later ones of the producer wait for its retry. */
            if (op->error_code != 0 && where != PX_ASSIGN_WAL) {
                if (px->rt)
                    rt_out_seq_failed(px->rt, px_client_stream(sp->rq->cl), it->name, it->partitions[p].index,
                                      it->partitions[p].records, op->error_code);
                else
                    px_seq_failed(sp->rq->cl, it->name, it->partitions[p].index, it->partitions[p].records,
                                  op->error_code);
            }
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

static const px_route_ops px_produce_ops = {px_produce_resp_decode, px_produce_encode};

/* Decide where one partition goes: a sub index, PX_ASSIGN_WAL (records, leader
 * in a zone with a healthy peer), or -error code. */
static int16_t px_produce_place(px_split *sp, kc_str topic, int32_t partition, kc_bytes records, int *cap,
                                int wal_ok)
{
    int16_t code = px_split_acl(sp, topic); /* before the WAL: a denied batch never reaches the store */
    if (code)
        return (int16_t)-code;
    const mc_partition *p = px_split_partition(sp, topic, partition, &code);
    if (p == NULL)
        return (int16_t)-code;
    px_proxy *px = px_client_proxy(sp->rq->cl);
    /* An earlier batch of this idempotent producer failed and has not been
     * retried: this later one must not land first (either path). */
    if (px->rt ? rt_out_seq_hold(px->rt, px_client_stream(sp->rq->cl), topic, partition, records)
               : px_seq_hold(sp->rq->cl, topic, partition, records))
        return (int16_t)-KC_ERR_NOT_LEADER_OR_FOLLOWER;
    int path = rt_out_path_n(px->rt, sp->view, p->leader_id, records.len);
    if (path == RT_PATH_WAL && wal_ok) {
        px->m.produce_parts_wal++;
        return PX_ASSIGN_WAL;
    }
    /* Earlier batches of this partition from this client still on the WAL
     * path (the leader moved into this zone, or that zone's peers went
     * down): going direct now would overtake them. Retriable: the client
     * refreshes its metadata and retries once they are through. */
    if (rt_out_inflight(px->rt, px_client_stream(sp->rq->cl), topic, partition))
        return (int16_t)-KC_ERR_NOT_LEADER_OR_FOLLOWER;
    if (path == RT_PATH_DIRECT)
        px->m.produce_parts_direct++;
    else
        px->m.produce_parts_cross++;
    /* And the other way round: while this one is on its way to the broker,
     * a later batch of the partition must not take the WAL path past it. */
    if (px->rt && sp->ndirect == sp->direct_cap) {
        int ncap = sp->direct_cap ? sp->direct_cap * 2 : 8;
        struct rt_okey **nd = realloc(sp->direct, (size_t)ncap * sizeof(*nd));
        if (nd == NULL)
            return (int16_t)-KC_ERR_NOT_LEADER_OR_FOLLOWER; /* retriable */
        sp->direct = nd;
        sp->direct_cap = ncap;
    }
    if (px->rt) {
        struct rt_okey *k = rt_out_direct_begin(px->rt, px_client_stream(sp->rq->cl), topic, partition);
        if (k == NULL)
            return (int16_t)-KC_ERR_NOT_LEADER_OR_FOLLOWER;
        sp->px = px;
        sp->direct[sp->ndirect++] = k;
    }
    return px_split_sub_for(sp, p->leader_id, cap);
}

static void px_wal_done(rt_batch *b, void *arg)
{
    (void)b;
    px_split_done(arg);
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
    /* Copied: the batch may outlive the client's connection. The peer checks
     * the ACLs for this principal before appending. */
    const char *principal = px_client_principal(sp->rq->cl);
    b->principal = kc_str_c(NULL);
    if (principal) {
        size_t plen = strlen(principal);
        char *pc = kc_arena_calloc(&sp->arena, plen + 1, 1);
        if (pc == NULL)
            return -1;
        memcpy(pc, principal, plen);
        b->principal = (kc_str){pc, (int32_t)plen};
    }
    b->arena = &sp->arena;
    b->stream = px_client_stream(sp->rq->cl);
    b->done = px_wal_done;
    b->arg = sp;
    return 0;
}

/* Place every partition of sp->in.produce; 0, or -1 when out of memory. */
static int px_produce_place_all(px_split *sp, int *cap)
{
    px_proxy *px = px_client_proxy(sp->rq->cl);
    kc_produce_req *in = &sp->in.produce;
    sp->no_response = in->acks == 0;
    if (px_split_assign_alloc(sp, in->ntopics) != 0)
        return -1;
    for (int32_t t = 0; t < in->ntopics; t++) {
        const kc_produce_req_topic *it = &in->topics[t];
        sp->assign[t] = kc_arena_calloc(&sp->arena, (size_t)it->npartitions, sizeof(int16_t));
        if (sp->assign[t] == NULL)
            return -1;
        for (int32_t p = 0; p < it->npartitions; p++) {
            int32_t rlen = it->partitions[p].records.len;
            sp->assign[t][p] = px_produce_place(sp, it->name, it->partitions[p].index, it->partitions[p].records,
                                                cap, rlen > 0);
            px->m.produce_partitions++;
            if (rlen > 0)
                px->m.produce_record_bytes += (uint64_t)rlen;
            if (rlen > 0 && sp->assign[t][p] >= 0) /* placed: Kafka will replicate it */
                mc_xz_replication(px->xz, sp->view, it->name.p, it->name.len, it->partitions[p].index,
                                  (uint64_t)rlen);
            if (sp->assign[t][p] == PX_ASSIGN_WAL)
                sp->wal.nparts++;
        }
    }
    return 0;
}

void px_produce_send(px_split *sp)
{
    px_req *rq = sp->rq;
    kc_produce_req *in = &sp->in.produce;
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
        uint64_t records = 0;
        for (int32_t t = 0; t < in->ntopics; t++) {
            const kc_produce_req_topic *it = &in->topics[t];
            kc_produce_req_topic *st = &sub.topics[sub.ntopics];
            *st = *it;
            st->npartitions = 0;
            st->partitions = kc_arena_calloc(a, (size_t)it->npartitions, sizeof(*st->partitions));
            if (st->partitions == NULL)
                break;
            for (int32_t p = 0; p < it->npartitions; p++) {
                if (sp->assign[t][p] != i)
                    continue;
                st->partitions[st->npartitions++] = it->partitions[p];
                if (it->partitions[p].records.len > 0)
                    records += (uint64_t)it->partitions[p].records.len;
            }
            if (st->npartitions > 0)
                sub.ntopics++;
        }
        bodies[i] = evbuffer_new();
        if (bodies[i]) {
            kc_wr w;
            kc_wr_init(&w, bodies[i], rq->frame); /* records by reference */
            kc_produce_req_encode(&w, sp->up_version, &sub);
            px_sub_encoded(sp, i, &w, &bodies[i]);
        }
        /* The record batches this sub-request carries: cross-zone payload
         * when its broker is in another zone (px_split_send, px_sub_cb). */
        sp->subs[i].payload_out = records;
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

void px_route_produce(px_req *rq)
{
    px_split *sp = px_split_new(rq, &px_produce_ops);
    if (sp == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    if (kc_produce_req_decode(&rd, sp->version, &sp->arena, &sp->in.produce) != 0) {
        px_split_decode_fail(sp, &rd);
        return;
    }
    int cap = 0;
    if (px_produce_place_all(sp, &cap) != 0) {
        px_req_reject(rq, "out of memory");
        px_split_free(sp);
        return;
    }
    px_produce_send(sp);
}

/* ---- cut-through (px_cut.c) ---- */

px_split *px_produce_cut_place(px_req *rq, size_t have, int32_t *broker)
{
    *broker = -1;
    px_split *sp = px_split_new(rq, &px_produce_ops);
    if (sp == NULL)
        return NULL;
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, have - rq->body_off);
    kc_produce_req *in = &sp->in.produce;
    int cap = 0;
    if (kc_produce_req_decode_head(&rd, sp->version, rq->frame->len - rq->body_off, PX_CUT_BATCH_HEAD,
                                   &sp->arena, in) != 0 ||
        px_produce_place_all(sp, &cap) != 0) {
        px_split_free(sp);
        return NULL;
    }
    /* As it is, to one broker: no WAL, no partition refused, the broker
     * speaks the client's version, and an answer comes (acks != 0). */
    if (sp->nsubs != 1 || sp->wal.nparts != 0 || sp->up_version != sp->version || in->acks == 0)
        return sp;
    uint64_t records = 0;
    for (int32_t t = 0; t < in->ntopics; t++)
        for (int32_t p = 0; p < in->topics[t].npartitions; p++) {
            if (sp->assign[t][p] != 0 || in->topics[t].partitions[p].records.len <= 0)
                return sp;
            records += (uint64_t)in->topics[t].partitions[p].records.len;
        }
    sp->subs[0].payload_out = records;
    *broker = sp->subs[0].broker;
    return sp;
}

int px_produce_cut_full(px_split *sp, char *why, size_t n)
{
    px_req *rq = sp->rq;
    kc_produce_req full, *head = &sp->in.produce;
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    if (kc_produce_req_decode(&rd, sp->version, &sp->arena, &full) != 0) {
        snprintf(why, n, "malformed Produce request: %s at byte %zu (correlation id %d)", rd.err,
                 rq->body_off + rd.err_off, rq->hdr.correlation_id);
        return -1;
    }
    int same = full.ntopics == head->ntopics && full.acks == head->acks;
    for (int32_t t = 0; same && t < full.ntopics; t++) {
        const kc_produce_req_topic *a = &full.topics[t], *b = &head->topics[t];
        same = a->npartitions == b->npartitions && a->name.len == b->name.len && a->name.p == b->name.p;
        for (int32_t p = 0; same && p < a->npartitions; p++)
            same = a->partitions[p].index == b->partitions[p].index &&
                   a->partitions[p].records.len == b->partitions[p].records.len &&
                   a->partitions[p].records.p == b->partitions[p].records.p;
    }
    if (!same) { /* cannot happen: both read the same bytes */
        snprintf(why, n, "Produce request changed under its cut-through decode (correlation id %d)",
                 rq->hdr.correlation_id);
        return -1;
    }
    *head = full; /* with the tags after the last records */
    return 0;
}

void px_produce_cut_abort(px_split *sp)
{
    for (int i = 0; i < sp->nsubs; i++)
        if (sp->subs[i].fail_code == 0)
            sp->subs[i].fail_code = KC_ERR_NETWORK_EXCEPTION;
    sp->wal.nparts = 0; /* never submitted: its partitions get NETWORK_EXCEPTION */
    sp->pending = 1;
    px_split_done(sp);
}
