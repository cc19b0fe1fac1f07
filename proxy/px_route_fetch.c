/*
 * Fetch: split by leader, each broker asked for a full fetch (no session),
 * the answers merged in the request's order with the record bytes referenced
 * from the brokers' frames. Fetch v13 topic ids are mapped to names through
 * the view for brokers below v13; a partition's KIP-951 CurrentLeader is
 * rewritten to a proxy id.
 */
#include "config.h"

#include "proxy/px_route_int.h"

#include "common/kz_log.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

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

static const px_route_ops px_fetch_ops = {px_fetch_resp_decode, px_fetch_encode};

void px_route_fetch(px_req *rq)
{
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
            px_sub_encoded(sp, i, &w, &bodies[i]);
        }
    }
    px_split_send(sp, bodies, 1, in->max_wait_ms > 0 ? in->max_wait_ms : 0);
    free(bodies);
    return;
oom:
    px_req_reject(rq, "out of memory");
    px_split_free(sp);
}
