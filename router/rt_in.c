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
#include "common/kz_acl.h"
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
    int corrupt;         /* its bytes do not match the CRC32C the sender sent */
    kc_produce_resp_partition result;
    int32_t leader;
    int sub;             /* produce sub-request index, -1 when answered locally */
    int16_t denied;      /* the ACL's error for it (not read, not appended), or 0 */
} rt_in_part;

typedef struct rt_in_sub {
    rt_in_req *r;
    int group;
    int32_t leader;
    int16_t version;
    int nparts; /* of the request's parts, those this sub-request carries */
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
    int nread;       /* parts read from the object: those not denied */
    ow_read *read;
    kc_frame *data;  /* the slices, once read */
    int ready;       /* the read finished (well or not) */
    int read_err;
    int nsubs;
    rt_in_sub *subs;
    int pending;     /* sub-requests awaiting an answer */
    int md_asked;    /* topics missing from the view were asked for once */
    struct rt_in_mdwait *mdw; /* that Metadata request, while in flight */
    rt_in_req *next; /* in the stream */
};

/* A Metadata request for topics a KzWalAppend names that this proxy's view
 * does not have yet: its own clients may never have asked for them. Kept
 * apart from the request so that freeing the request (at shutdown) only
 * detaches it: the callback comes later and frees this. */
typedef struct rt_in_mdwait {
    rt_in_req *r; /* NULL once detached */
    int sync;     /* the callback ran inside mc_cluster_refresh */
} rt_in_mdwait;

static void rt_in_req_free(rt_in_req *r)
{
    if (r->mdw)
        r->mdw->r = NULL;
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

/* Answer p locally with code and, when msg is not NULL, that error message
 * (kept in r's arena). A cause is logged (rate-limited) for an error. */
static void rt_in_answer_msg(rt_in_req *r, rt_in_part *p, int16_t code, const char *cause, const char *msg)
{
    if (code != KC_ERR_NONE && cause != NULL)
        rt_note(r->rt, "router-in", cause, code, r->sender, p->wp->topic, p->wp->partition);
    p->result = (kc_produce_resp_partition){0};
    p->result.index = p->wp->partition;
    p->result.error_code = code;
    p->result.base_offset = -1;
    p->result.log_append_time_ms = -1;
    p->result.log_start_offset = -1;
    p->result.error_message = kc_str_c(NULL);
    if (msg != NULL) {
        size_t n = strlen(msg);
        char *m = kc_arena_calloc(&r->arena, n + 1, 1);
        if (m != NULL) {
            memcpy(m, msg, n);
            p->result.error_message = (kc_str){m, (int32_t)n};
        }
    }
}

static void rt_in_answer(rt_in_req *r, rt_in_part *p, int16_t code, const char *cause)
{
    rt_in_answer_msg(r, p, code, cause, NULL);
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
        if (p->denied) {
            rt_in_answer_msg(r, p, p->denied, "its producer may not produce to the topic (ACL)",
                             p->denied == KC_ERR_TOPIC_AUTHORIZATION_FAILED
                                 ? "the producer's principal may not produce to this topic"
                                 : "the producer's principal may not use this transactional id");
            continue;
        }
        if (r->read_err) {
            rt_in_answer(r, p, KC_ERR_REQUEST_TIMED_OUT, "cannot read or verify its slice of the WAL object");
            continue;
        }
        if (p->corrupt) {
            rt_in_answer(r, p, KC_ERR_CORRUPT_MESSAGE,
                         "its slice does not match its CRC32C: a record batch CRC wrong as produced, or the "
                         "WAL object damaged (not appended)");
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
        r->subs[s].nparts++;
    }
    if (stale)
        mc_cluster_refresh_soon(rt->mc);
    r->pending = 1; /* until every sub is sent */
    for (int s = 0; s < r->nsubs; s++) {
        rt_in_sub *sub = &r->subs[s];
        const kc_wal_group *g = &r->req.groups[sub->group];
        kc_produce_req pq = {.transactional_id = g->transactional_id, .acks = g->acks,
                             .timeout_ms = g->timeout_ms};
        /* Sized by this sub-request's parts, not the request's: an object's
         * RPC carries many clients' requests, each its own sub-request. */
        pq.topics = kc_arena_calloc(&sub->arena, (size_t)sub->nparts, sizeof(*pq.topics));
        kc_produce_req_partition *pp = kc_arena_calloc(&sub->arena, (size_t)sub->nparts, sizeof(*pp));
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

static void rt_stream_pump(rt_router *rt, rt_stream *st);

static void rt_in_md_cb(mc_view *view, const char *err, void *arg)
{
    (void)view;
    (void)err; /* still unknown after it: rt_in_dispatch answers UNKNOWN_TOPIC */
    rt_in_mdwait *w = arg;
    rt_in_req *r = w->r;
    int sync = w->sync;
    free(w);
    if (r == NULL)
        return;
    r->mdw = NULL;
    if (!sync)
        rt_stream_pump(r->rt, r->stream);
}

/*
 * Before r's appends start: when a topic it names is missing from this
 * proxy's view (a topic just created, that none of this proxy's own clients
 * asked about), ask the backend for those topics once and wait for the
 * answer, instead of failing the partitions with UNKNOWN_TOPIC_OR_PARTITION:
 * the producer's retry would come after its later batches (a non-idempotent
 * producer's order lost). 1 while the request is in flight, else 0.
 */
static int rt_in_ask_topics(rt_router *rt, rt_in_req *r)
{
    r->md_asked = 1;
    mc_view *v = mc_cluster_view(rt->mc);
    if (r->read_err || v == NULL)
        return 0;
    kc_str *topics = NULL;
    int n = 0;
    for (int i = 0; i < r->nparts; i++) {
        const kc_wal_part *wp = r->parts[i].wp;
        if (r->parts[i].denied || mc_view_partition(v, wp->topic, wp->partition) != NULL)
            continue;
        int seen = 0;
        for (int k = 0; k < n && !seen; k++)
            seen = topics[k].len == wp->topic.len &&
                   memcmp(topics[k].p, wp->topic.p, (size_t)wp->topic.len) == 0;
        if (seen)
            continue;
        if (topics == NULL && (topics = kc_arena_calloc(&r->arena, (size_t)r->nparts, sizeof(*topics))) == NULL)
            return 0;
        topics[n++] = wp->topic;
    }
    if (n == 0)
        return 0;
    rt_in_mdwait *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return 0;
    w->r = r;
    w->sync = 1;
    r->mdw = w;
    rt->st.in_topic_lookups++;
    mc_cluster_refresh(rt->mc, topics, n, 0, rt_in_md_cb, w);
    if (r->mdw == NULL)
        return 0; /* answered already (w is freed) */
    w->sync = 0;
    return 1;
}

/* Start the appends of every request at the head of the stream whose read is
 * done (and whose topics this proxy knows, or has asked about once). */
static void rt_stream_pump(rt_router *rt, rt_stream *st)
{
    while (st->head && st->head->ready) {
        rt_in_req *r = st->head;
        if (r->mdw)
            return; /* rt_in_md_cb pumps again */
        if (!r->md_asked && rt_in_ask_topics(rt, r))
            return;
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
    if (res->err != OW_OK || res->nslices != (size_t)r->nread) {
        r->read_err = res->err != OW_OK ? res->err : OW_ECORRUPT;
        r->rt->st.in_read_errors++;
        kz_warn("router-in: cannot read %.*s: %s", (int)r->req.key.len, r->req.key.p,
                res->errmsg && *res->errmsg ? res->errmsg : ow_err_name(r->read_err));
    } else {
        r->data = kc_frame_keep(res->frame);
        for (int i = 0, k = 0; i < r->nparts; i++) {
            rt_in_part *p = &r->parts[i];
            if (p->denied)
                continue;
            const ow_slice *s = &res->slices[k++];
            p->data = s->p;
            if (s->err != OW_OK) {
                /* The sender derives a chunk's CRC from the record batches'
                 * own CRCs (rt_out.c): a mismatch is bytes damaged in the
                 * store or, with read_check "payload" (every byte read) and
                 * a derived chunk CRC, a batch its producer checksummed
                 * wrong as well. Either way only this partition is
                 * refused, as a broker would; its answer logs the cause
                 * (rate-limited: a client can send bad batches at will). */
                p->corrupt = 1; /* its slice hands on no bytes (p NULL) */
                r->rt->st.in_corrupt++;
            }
        }
    }
    rt_stream_pump(r->rt, r->stream);
}

/* Decode a KzWalAppend into a new rt_in_req with its parts listed; NULL
 * after answering done when it is malformed or memory runs out. */
static rt_in_req *rt_in_decode(rt_router *rt, kc_frame *frame, const uint8_t *p, size_t len, int32_t sender,
                               int64_t sent_ms, rt_in_done_fn done, void *arg)
{
    rt_in_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        done(NULL, "out of memory", arg);
        return NULL;
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
        return NULL;
    }
    for (int32_t g = 0; g < r->req.ngroups; g++)
        for (int32_t b = 0; b < r->req.groups[g].nbrokers; b++)
            r->nparts += r->req.groups[g].brokers[b].nparts;
    r->parts = kc_arena_calloc(&r->arena, (size_t)(r->nparts ? r->nparts : 1), sizeof(*r->parts));
    if (r->parts == NULL) {
        done(NULL, "out of memory", arg);
        rt_in_req_free(r);
        return NULL;
    }
    int k = 0;
    for (int32_t g = 0; g < r->req.ngroups; g++) {
        for (int32_t b = 0; b < r->req.groups[g].nbrokers; b++) {
            const kc_wal_broker *wb = &r->req.groups[g].brokers[b];
            for (int32_t j = 0; j < wb->nparts; j++, k++) {
                r->parts[k].group = g;
                r->parts[k].wp = &wb->parts[j];
            }
        }
    }
    return r;
}

/* Every part answered code with msg (nothing read, nothing appended). */
static void rt_in_refuse_all(rt_in_req *r, int16_t code, const char *cause, const char *msg)
{
    r->rt->st.in_refused++;
    for (int i = 0; i < r->nparts; i++)
        rt_in_answer_msg(r, &r->parts[i], code, cause, msg);
    rt_in_finish(r);
}

void rt_in_refuse(rt_router *rt, kc_frame *frame, const uint8_t *p, size_t len, int32_t sender, int16_t code,
                  const char *msg, rt_in_done_fn done, void *arg)
{
    rt_in_req *r = rt_in_decode(rt, frame, p, len, sender, 0, done, arg);
    if (r != NULL)
        rt_in_refuse_all(r, code, NULL, msg); /* the caller logs */
}

int rt_in_key_check(const char *prefix, kc_str key, char *why, size_t why_size)
{
    size_t plen = strlen(prefix);
    if (key.len <= 0 || key.len > RT_IN_MAX_KEY) {
        snprintf(why, why_size, "object key of %d bytes (1 to %d allowed)", (int)key.len, RT_IN_MAX_KEY);
        return -1;
    }
    const char *k = key.p;
    size_t n = (size_t)key.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c < 0x20 || c == 0x7f || c == '\\') {
            snprintf(why, why_size, "object key has a control byte or a backslash at byte %zu", i);
            return -1;
        }
    }
    if (n < plen || memcmp(k, prefix, plen) != 0) {
        snprintf(why, why_size, "object key does not start with this store's prefix \"%s\"", prefix);
        return -1;
    }
    if (k[0] == '/' || memmem(k, n, "..", 2) != NULL || memmem(k, n, "//", 2) != NULL) {
        snprintf(why, why_size, "object key has a leading '/', \"..\" or \"//\"");
        return -1;
    }
    char buf[RT_IN_MAX_KEY + 1];
    memcpy(buf, k, n);
    buf[n] = '\0';
    if (!ow_key_valid(buf)) {
        snprintf(why, why_size, "object key has characters outside [A-Za-z0-9._/-]");
        return -1;
    }
    /* Every component a plain name: not empty (a trailing '/'), and not
     * starting with '.' (".", "..", a store's ".tmp", hidden names, which
     * no writer makes and the local store's LIST skips). */
    for (size_t i = 0;; i++) {
        size_t j = i;
        while (j < n && k[j] != '/')
            j++;
        if (j == i || k[i] == '.') {
            snprintf(why, why_size, "object key has an empty component or one starting with '.' at byte %zu", i);
            return -1;
        }
        if (j == n)
            return 0;
        i = j;
    }
}

/* A NUL-terminated copy of a (non-null) kc_str in the request's arena. */
static const char *rt_in_cstr(rt_in_req *r, kc_str s)
{
    if (s.p == NULL || s.len < 0)
        return NULL;
    char *c = kc_arena_calloc(&r->arena, (size_t)s.len + 1, 1);
    if (c != NULL)
        memcpy(c, s.p, (size_t)s.len);
    return c;
}

/* Mark the parts whose group's principal may not produce; 0, or -1 out of memory. */
static int rt_in_acl(rt_in_req *r)
{
    const kz_acl *acl = r->rt->cfg.acl;
    if (acl == NULL)
        return 0;
    for (int32_t g = 0; g < r->req.ngroups; g++) {
        const kc_wal_group *wg = &r->req.groups[g];
        const char *principal = rt_in_cstr(r, wg->principal);
        if (principal == NULL && wg->principal.p != NULL && wg->principal.len >= 0)
            return -1;
        int16_t txn_denied = 0;
        if (wg->transactional_id.p != NULL && wg->transactional_id.len >= 0 &&
            !kz_acl_allows(acl, principal, KZ_ACL_PRODUCE, KZ_ACL_TRANSACTIONAL_ID, wg->transactional_id.p,
                           (size_t)wg->transactional_id.len))
            txn_denied = KC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        for (int i = 0; i < r->nparts; i++) {
            rt_in_part *p = &r->parts[i];
            if (p->group != g)
                continue;
            if (txn_denied)
                p->denied = txn_denied;
            else if (!kz_acl_allows(acl, principal, KZ_ACL_PRODUCE, KZ_ACL_TOPIC, p->wp->topic.p,
                                    (size_t)p->wp->topic.len))
                p->denied = KC_ERR_TOPIC_AUTHORIZATION_FAILED;
            if (p->denied)
                r->rt->st.in_acl_denied++;
        }
    }
    return 0;
}

void rt_in_append(rt_router *rt, kc_frame *frame, const uint8_t *p, size_t len, int32_t sender,
                  int64_t sent_ms, const void *stream, rt_in_done_fn done, void *arg)
{
    rt_in_req *r = rt_in_decode(rt, frame, p, len, sender, sent_ms, done, arg);
    if (r == NULL)
        return;
    rt->st.in_rpcs++;
    /* The key first: a peer must not make this proxy read any object but
     * this store's WAL objects (nor, on a local store, any other path). */
    char why[200];
    if (rt_in_key_check(rt->key_prefix, r->req.key, why, sizeof(why)) != 0) {
        rt->st.in_bad_keys++;
        char msg[300];
        snprintf(msg, sizeof(msg), "KzWalAppend refused, nothing read or appended: %s", why);
        rt_in_refuse_all(r, KC_ERR_INVALID_REQUEST, "its KzWalAppend names an object key outside this store's WAL prefix",
                         msg);
        return;
    }
    if (rt_in_acl(r) != 0) {
        rt_in_refuse_all(r, KC_ERR_REQUEST_TIMED_OUT, "out of memory (not appended)", NULL);
        return;
    }
    char key[RT_IN_MAX_KEY + 1];
    snprintf(key, sizeof(key), "%.*s", (int)r->req.key.len, r->req.key.p);
    ow_range *ranges = calloc((size_t)(r->nparts ? r->nparts : 1), sizeof(*ranges));
    rt_stream *st = NULL;
    for (st = rt->streams; st && st->id != stream; st = st->next)
        ;
    if (st == NULL && (st = calloc(1, sizeof(*st))) != NULL) {
        st->id = stream;
        st->next = rt->streams;
        rt->streams = st;
    }
    if (ranges == NULL || st == NULL) {
        free(ranges);
        done(NULL, "out of memory", arg);
        rt_in_req_free(r);
        return;
    }
    for (int i = 0; i < r->nparts; i++) {
        const kc_wal_part *wp = r->parts[i].wp;
        if (!r->parts[i].denied)
            ranges[r->nread++] = (ow_range){(uint64_t)wp->off, (uint32_t)wp->len, wp->crc32c};
    }
    /* Into the stream first: the read may finish at once. */
    r->stream = st;
    if (st->tail)
        st->tail->next = r;
    else
        st->head = r;
    st->tail = r;
    if (r->nread == 0) {
        r->ready = 1;
    } else {
        /* The sender stored the object before it sent this: a store that
         * answers it missing or short is lagging, and is asked again. */
        int flags = OW_READ_SLICE_ERRORS | OW_READ_JUST_WRITTEN |
                    (rt->cfg.read_check_payload ? 0 : OW_READ_BATCH_CRC);
        r->read = ow_read_ranges_opt(rt->cfg.store, key, ranges, (size_t)r->nread, flags, rt_in_read_cb, r);
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
