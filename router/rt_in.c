/*
 * router-in: serve a KzWalAppend. One ranged GET reads every slice named
 * (the reader checks each CRC32C); then, in the order the RPCs arrived on
 * their connection, each group's slices go to their leaders in this zone as
 * ProduceRequests carrying the client's record batches by reference, with
 * the client's version (or the backend's highest if lower), acks, timeout
 * and transactional id. The leaders' answers make the RPC's answer.
 */
#include "config.h"

#include "router/rt_int.h"

#include "codec/kc_peer.h"
#include "codec/kc_proto.h"
#include "common/kz_log.h"
#include "objwal/ow_reader.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rt_in_part {
    int group;
    const kc_wal_part *wp;
    const uint8_t *data; /* the verified slice, in the read frame */
    kc_produce_resp_partition result;
    int32_t leader;
    int sub;             /* produce sub-request index, -1 when answered locally */
} rt_in_part;

typedef struct rt_in_sub {
    rt_in_req *r;
    int group;
    int32_t leader;
    int16_t version;
    kc_frame *resp;
    kc_arena arena;
} rt_in_sub;

struct rt_in_req {
    rt_router *rt;
    kc_arena arena;
    kc_frame *frame; /* the request (strings point into it) */
    kc_wal_append_req req;
    rt_stream *stream;
    int32_t sender;
    int64_t sent_ms; /* the sender's clock when it sent the request */
    rt_in_done_fn done;
    void *arg;
    int nparts;
    rt_in_part *parts;
    ow_read *read;
    kc_frame *data;  /* the slices, once read */
    int ready;       /* the read finished (well or not) */
    int read_err;
    int nsubs;
    rt_in_sub *subs;
    int pending;     /* sub-requests awaiting an answer */
    rt_in_req *next; /* in the stream */
};

static void rt_in_req_free(rt_in_req *r)
{
    if (r->read)
        ow_read_cancel(r->read);
    for (int i = 0; i < r->nsubs; i++) {
        kc_frame_release(r->subs[i].resp);
        kc_arena_destroy(&r->subs[i].arena);
    }
    free(r->subs);
    kc_frame_release(r->data);
    kc_frame_release(r->frame);
    kc_arena_destroy(&r->arena);
    free(r);
}

static void rt_in_answer(rt_in_req *r, rt_in_part *p, int16_t code, const char *cause)
{
    if (code != KC_ERR_NONE)
        rt_note(r->rt, "router-in", cause, code, r->sender, p->wp->topic, p->wp->partition);
    p->result = (kc_produce_resp_partition){0};
    p->result.index = p->wp->partition;
    p->result.error_code = code;
    p->result.base_offset = -1;
    p->result.log_append_time_ms = -1;
    p->result.log_start_offset = -1;
    p->result.error_message = kc_str_c(NULL);
}

/* Every sub-request answered: encode the RPC's answer. */
static void rt_in_finish(rt_in_req *r)
{
    kc_wal_append_resp out = {.ngroups = r->req.ngroups};
    out.groups = kc_arena_calloc(&r->arena, (size_t)(r->req.ngroups ? r->req.ngroups : 1), sizeof(*out.groups));
    struct evbuffer *eb = evbuffer_new();
    if (out.groups == NULL || eb == NULL) {
        if (eb)
            evbuffer_free(eb);
        r->done(NULL, "out of memory for the KzWalAppend answer", r->arg);
        rt_in_req_free(r);
        return;
    }
    int k = 0;
    for (int32_t g = 0; g < r->req.ngroups; g++) {
        int32_t n = 0;
        for (int32_t b = 0; b < r->req.groups[g].nbrokers; b++)
            n += r->req.groups[g].brokers[b].nparts;
        out.groups[g].nparts = n;
        out.groups[g].parts = kc_arena_calloc(&r->arena, (size_t)(n ? n : 1), sizeof(kc_produce_resp_partition));
        if (out.groups[g].parts == NULL)
            n = out.groups[g].nparts = 0;
        for (int32_t j = 0; j < n; j++, k++) {
            out.groups[g].parts[j] = r->parts[k].result;
            if (r->parts[k].result.error_code != 0)
                r->rt->st.in_errors++;
        }
    }
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    kc_wal_append_resp_encode(&w, &out);
    if (w.err)
        r->done(NULL, "out of memory for the KzWalAppend answer", r->arg);
    else
        r->done(eb, NULL, r->arg);
    evbuffer_free(eb);
    rt_in_req_free(r);
}

static int rt_is_stale(int16_t e)
{
    return e == KC_ERR_NOT_LEADER_OR_FOLLOWER || e == KC_ERR_LEADER_NOT_AVAILABLE ||
           e == KC_ERR_UNKNOWN_TOPIC_OR_PARTITION || e == KC_ERR_FENCED_LEADER_EPOCH;
}

static void rt_in_sub_cb(kc_frame *resp, const char *err, void *arg)
{
    rt_in_sub *s = arg;
    rt_in_req *r = s->r;
    rt_router *rt = r->rt;
    int sidx = (int)(s - r->subs);
    kc_produce_resp pr;
    int ok = 0;
    if (resp == NULL) {
        /* As on the direct path: the client refreshes its metadata and retries. */
        kz_info("router-in: Produce to broker %d failed: %s", s->leader, err ? err : "?");
        mc_cluster_refresh_soon(rt->mc);
    } else {
        s->resp = resp;
        kc_rd rd;
        kc_rd_init(&rd, resp->data, resp->len);
        (void)kc_resp_hdr_decode(&rd, kc_resp_hdr_version(KC_API_PRODUCE, s->version));
        ok = kc_produce_resp_decode(&rd, s->version, &s->arena, &pr) == 0;
        if (!ok)
            kz_warn("router-in: broker %d: malformed Produce v%d response: %s at byte %zu", s->leader, s->version,
                    rd.err, rd.err_off);
    }
    int stale = 0;
    for (int i = 0; i < r->nparts; i++) {
        rt_in_part *p = &r->parts[i];
        if (p->sub != sidx)
            continue;
        const kc_produce_resp_partition *found = NULL;
        for (int32_t t = 0; ok && found == NULL && t < pr.ntopics; t++) {
            if (pr.topics[t].name.len != p->wp->topic.len ||
                memcmp(pr.topics[t].name.p, p->wp->topic.p, (size_t)p->wp->topic.len) != 0)
                continue;
            for (int32_t j = 0; j < pr.topics[t].npartitions; j++)
                if (pr.topics[t].partitions[j].index == p->wp->partition)
                    found = &pr.topics[t].partitions[j];
        }
        if (found) {
            p->result = *found;
            p->result.tags = (kc_tags){0};
            stale |= rt_is_stale(found->error_code);
            if (found->error_code != 0)
                rt_note(rt, "router-in", "the leader answered with this error", found->error_code, r->sender,
                        p->wp->topic, p->wp->partition);
        } else if (resp == NULL) {
            rt_in_answer(r, p, KC_ERR_NOT_LEADER_OR_FOLLOWER, "Produce to the leader failed (connection)");
        } else if (!ok) {
            rt_in_answer(r, p, KC_ERR_REQUEST_TIMED_OUT, "malformed Produce answer from the leader");
        } else {
            /* No answer for it, though it may have been appended: the client retries. */
            rt_in_answer(r, p, KC_ERR_REQUEST_TIMED_OUT, "the leader's answer left the partition out");
        }
    }
    if (stale)
        mc_cluster_refresh_soon(rt->mc);
    if (--r->pending == 0)
        rt_in_finish(r);
}

/* Send the head's appends to the leaders. */
static void rt_in_dispatch(rt_in_req *r)
{
    rt_router *rt = r->rt;
    mc_view *v = mc_cluster_view(rt->mc);
    int16_t bmin = 3, bmax = 9;
    (void)mc_cluster_backend_versions(rt->mc, KC_API_PRODUCE, &bmin, &bmax);
    r->subs = calloc((size_t)(r->nparts ? r->nparts : 1), sizeof(*r->subs));
    if (r->subs == NULL) {
        for (int i = 0; i < r->nparts; i++)
            rt_in_answer(r, &r->parts[i], KC_ERR_REQUEST_TIMED_OUT, "out of memory (not appended)");
        rt_in_finish(r);
        return;
    }
    int stale = 0;
    int64_t now = rt_wall_ms();
    /* Place every part: a sub-request per (group, leader), or a local answer. */
    for (int i = 0; i < r->nparts; i++) {
        rt_in_part *p = &r->parts[i];
        p->sub = -1;
        if (r->read_err) {
            rt_in_answer(r, p, KC_ERR_REQUEST_TIMED_OUT, "cannot read or verify its slice of the WAL object");
            continue;
        }
        /* The start deadline: past it the sender (who waits longer) may have
         * given up on this request, and a late append would come after the
         * client's retry. acks=0: no retry to overtake, nobody waits. */
        const kc_wal_group *pg = &r->req.groups[p->group];
        if (pg->acks != 0 && now > r->sent_ms + pg->timeout_ms) {
            rt_in_answer(r, p, KC_ERR_REQUEST_TIMED_OUT,
                         "its produce timeout passed before its append could start (not appended)");
            continue;
        }
        const mc_partition *mp = v ? mc_view_partition(v, p->wp->topic, p->wp->partition) : NULL;
        if (mp == NULL || mp->leader_id < 0) {
            rt_in_answer(r, p, mp == NULL ? KC_ERR_UNKNOWN_TOPIC_OR_PARTITION : KC_ERR_LEADER_NOT_AVAILABLE,
                         "no leader in this proxy's view");
            stale = 1;
            continue;
        }
        if (mc_cluster_broker_remote(rt->mc, v, mp->leader_id)) {
            /* The leader left this zone: appending from here would cross zones. */
            rt_in_answer(r, p, KC_ERR_NOT_LEADER_OR_FOLLOWER, "the leader is no longer in this zone");
            stale = 1;
            continue;
        }
        int16_t ver = r->req.groups[p->group].produce_version;
        if (ver > bmax)
            ver = bmax;
        if (ver < 3 || ver < bmin || ver > 9) {
            rt_in_answer(r, p, KC_ERR_UNSUPPORTED_VERSION, "no Produce version both client and broker speak");
            continue;
        }
        int s = 0;
        while (s < r->nsubs && !(r->subs[s].group == p->group && r->subs[s].leader == mp->leader_id))
            s++;
        if (s == r->nsubs) {
            r->subs[s] = (rt_in_sub){.r = r, .group = p->group, .leader = mp->leader_id, .version = ver};
            kc_arena_init(&r->subs[s].arena);
            r->nsubs++;
        }
        p->sub = s;
        p->leader = mp->leader_id;
    }
    if (stale)
        mc_cluster_refresh_soon(rt->mc);
    r->pending = 1; /* until every sub is sent */
    for (int s = 0; s < r->nsubs; s++) {
        rt_in_sub *sub = &r->subs[s];
        const kc_wal_group *g = &r->req.groups[sub->group];
        kc_produce_req pq = {.transactional_id = g->transactional_id, .acks = g->acks,
                             .timeout_ms = g->timeout_ms};
        pq.topics = kc_arena_calloc(&sub->arena, (size_t)r->nparts, sizeof(*pq.topics));
        kc_produce_req_partition *pp = kc_arena_calloc(&sub->arena, (size_t)r->nparts, sizeof(*pp));
        struct evbuffer *eb = evbuffer_new();
        int n = 0;
        uint64_t bytes = 0;
        if (pq.topics && pp && eb) {
            for (int i = 0; i < r->nparts; i++) {
                rt_in_part *p = &r->parts[i];
                if (p->sub != s)
                    continue;
                kc_produce_req_topic *t = pq.ntopics > 0 ? &pq.topics[pq.ntopics - 1] : NULL;
                if (t == NULL || t->name.len != p->wp->topic.len ||
                    memcmp(t->name.p, p->wp->topic.p, (size_t)p->wp->topic.len) != 0) {
                    t = &pq.topics[pq.ntopics++];
                    t->name = p->wp->topic;
                    t->partitions = &pp[n];
                }
                pp[n] = (kc_produce_req_partition){.index = p->wp->partition,
                                                   .records = {p->data, p->wp->len}};
                t->npartitions++;
                n++;
                bytes += (uint64_t)p->wp->len;
            }
            kc_wr w;
            kc_wr_init(&w, eb, r->data); /* the batches go by reference */
            kc_produce_req_encode(&w, sub->version, &pq);
            if (w.err && kc_wr_unencodable(&w)) {
                /* e.g. a transactional id too long for the leader's version:
                 * a retry cannot help, so not NOT_LEADER. */
                kz_info("router-in: Produce cannot be sent to broker %d at v%d: %s", sub->leader, sub->version,
                        kc_wr_why(&w));
                evbuffer_free(eb);
                for (int i = 0; i < r->nparts; i++)
                    if (r->parts[i].sub == s)
                        rt_in_answer(r, &r->parts[i], KC_ERR_INVALID_REQUEST,
                                     "the Produce cannot be encoded at the leader's version");
                continue;
            }
            mc_conn *c = w.err ? NULL : mc_cluster_conn(rt->mc, sub->leader);
            if (c && mc_conn_request(c, KC_API_PRODUCE, sub->version, g->client_id, eb, g->acks != 0,
                                     g->timeout_ms, rt_in_sub_cb, sub) == 0) {
                evbuffer_free(eb);
                rt->st.in_parts += (uint64_t)n;
                rt->st.in_bytes += bytes;
                if (g->acks != 0) {
                    r->pending++;
                } else {
                    for (int i = 0; i < r->nparts; i++)
                        if (r->parts[i].sub == s)
                            rt_in_answer(r, &r->parts[i], KC_ERR_NONE, NULL); /* acks=0: nothing to wait for */
                }
                continue;
            }
        }
        if (eb)
            evbuffer_free(eb);
        for (int i = 0; i < r->nparts; i++)
            if (r->parts[i].sub == s)
                rt_in_answer(r, &r->parts[i], KC_ERR_NOT_LEADER_OR_FOLLOWER,
                             "no connection to the leader (not appended)");
        mc_cluster_refresh_soon(rt->mc);
    }
    if (--r->pending == 0)
        rt_in_finish(r);
}

/* Start the appends of every request at the head of the stream whose read is done. */
static void rt_stream_pump(rt_router *rt, rt_stream *st)
{
    while (st->head && st->head->ready) {
        rt_in_req *r = st->head;
        st->head = r->next;
        if (st->head == NULL)
            st->tail = NULL;
        r->stream = NULL;
        rt_in_dispatch(r);
    }
    if (st->head == NULL) {
        for (rt_stream **pp = &rt->streams; *pp; pp = &(*pp)->next) {
            if (*pp == st) {
                *pp = st->next;
                free(st);
                break;
            }
        }
    }
}

static void rt_in_read_cb(const ow_read_result *res, void *arg)
{
    rt_in_req *r = arg;
    r->read = NULL;
    r->ready = 1;
    if (res->err != OW_OK || res->nslices != (size_t)r->nparts) {
        r->read_err = res->err != OW_OK ? res->err : OW_ECORRUPT;
        r->rt->st.in_read_errors++;
        kz_warn("router-in: cannot read %.*s: %s", (int)r->req.key.len, r->req.key.p,
                res->errmsg && *res->errmsg ? res->errmsg : ow_err_name(r->read_err));
    } else {
        r->data = kc_frame_keep(res->frame);
        for (int i = 0; i < r->nparts; i++)
            r->parts[i].data = res->slices[i].p;
    }
    rt_stream_pump(r->rt, r->stream);
}

void rt_in_append(rt_router *rt, kc_frame *frame, const uint8_t *p, size_t len, int32_t sender,
                  int64_t sent_ms, const void *stream, rt_in_done_fn done, void *arg)
{
    rt_in_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        done(NULL, "out of memory", arg);
        return;
    }
    r->rt = rt;
    r->sender = sender;
    r->sent_ms = sent_ms;
    r->done = done;
    r->arg = arg;
    r->frame = kc_frame_keep(frame);
    kc_arena_init(&r->arena);
    kc_rd rd;
    kc_rd_init(&rd, p, len);
    if (kc_wal_append_req_decode(&rd, &r->arena, &r->req) != 0) {
        char why[160];
        snprintf(why, sizeof(why), "malformed KzWalAppend from node %d: %s at byte %zu", sender, rd.err, rd.err_off);
        done(NULL, why, arg);
        rt_in_req_free(r);
        return;
    }
    rt->st.in_rpcs++;
    for (int32_t g = 0; g < r->req.ngroups; g++)
        for (int32_t b = 0; b < r->req.groups[g].nbrokers; b++)
            r->nparts += r->req.groups[g].brokers[b].nparts;
    char key[1100];
    snprintf(key, sizeof(key), "%.*s", (int)r->req.key.len, r->req.key.p);
    r->parts = kc_arena_calloc(&r->arena, (size_t)(r->nparts ? r->nparts : 1), sizeof(*r->parts));
    ow_range *ranges = calloc((size_t)(r->nparts ? r->nparts : 1), sizeof(*ranges));
    rt_stream *st = NULL;
    for (st = rt->streams; st && st->id != stream; st = st->next)
        ;
    if (st == NULL && (st = calloc(1, sizeof(*st))) != NULL) {
        st->id = stream;
        st->next = rt->streams;
        rt->streams = st;
    }
    if (r->parts == NULL || ranges == NULL || st == NULL) {
        free(ranges);
        done(NULL, "out of memory", arg);
        rt_in_req_free(r);
        return;
    }
    int k = 0;
    for (int32_t g = 0; g < r->req.ngroups; g++) {
        for (int32_t b = 0; b < r->req.groups[g].nbrokers; b++) {
            const kc_wal_broker *wb = &r->req.groups[g].brokers[b];
            for (int32_t j = 0; j < wb->nparts; j++, k++) {
                r->parts[k].group = g;
                r->parts[k].wp = &wb->parts[j];
                ranges[k] = (ow_range){(uint64_t)wb->parts[j].off, (uint32_t)wb->parts[j].len, wb->parts[j].crc32c};
            }
        }
    }
    /* Into the stream first: the read may finish at once. */
    r->stream = st;
    if (st->tail)
        st->tail->next = r;
    else
        st->head = r;
    st->tail = r;
    if (r->nparts == 0 || !ow_key_valid(key)) {
        r->ready = 1;
        r->read_err = r->nparts ? OW_EINVAL : 0;
    } else {
        r->read = ow_read_ranges(rt->cfg.store, key, ranges, (size_t)r->nparts, rt_in_read_cb, r);
        if (r->read == NULL) {
            r->ready = 1;
            r->read_err = OW_ENOMEM;
        }
    }
    free(ranges);
    if (r->ready)
        rt_stream_pump(rt, st);
}

void rt_in_free_all(rt_router *rt)
{
    while (rt->streams) {
        rt_stream *st = rt->streams;
        rt->streams = st->next;
        while (st->head) {
            rt_in_req *r = st->head;
            st->head = r->next;
            rt_in_req_free(r);
        }
        free(st);
    }
}
