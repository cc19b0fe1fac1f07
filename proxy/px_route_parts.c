/*
 * ListOffsets, OffsetForLeaderEpoch and DeleteRecords: the partition-listing
 * APIs. Their requests and responses have one shape: a list of topics, each
 * {kc_str name; int32_t npartitions; P *partitions; kc_tags tags}, each
 * partition naming its index (and, in a response, its error code). So one
 * mechanism splits them by leader and merges the answers in the request's
 * order; a px_parts_api says where its API keeps those fields (checked at
 * compile time), and gives its codec and what differs: the fields reset in a
 * sub-request, a partition's defaults when the proxy answers it with an
 * error, how long a broker may hold the request, whether throttle times are
 * merged.
 */
#include "config.h"

#include "proxy/px_route_int.h"

#include "proxy/px_fcache.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Where a message keeps its topic list, and the layout of its topics and
 * partitions (sizes and field offsets). */
typedef struct px_list {
    size_t size;                            /* of the message */
    size_t ntopics, topics;                 /* int32_t count, array */
    size_t topic_size, name, nparts, parts; /* kc_str, int32_t count, array */
    size_t part_size, index;                /* int32_t partition index */
} px_list;

#define PX_NO_FIELD ((size_t)-1)

typedef struct px_parts_api {
    int16_t key;
    px_list req, resp;
    size_t resp_error;    /* a response partition's int16_t error code */
    size_t resp_tags;     /* a response partition's kc_tags */
    size_t resp_throttle; /* the response's int32_t throttle time, or PX_NO_FIELD */
    int (*req_decode)(kc_rd *rd, int16_t version, kc_arena *a, void *msg);
    void (*req_encode)(kc_wr *w, int16_t version, const void *msg);
    int (*resp_decode)(kc_rd *rd, int16_t version, kc_arena *a, void *msg);
    void (*resp_encode)(kc_wr *w, int16_t version, const void *msg);
    /* Fields of a sub-request (a copy of the client's) to reset; may be NULL. */
    void (*sub_init)(void *msg);
    /* A response partition the proxy answers itself (zeroed before). */
    void (*part_error)(void *part, int32_t index, int16_t code);
    /* How long past its timeout a broker may hold the request; may be NULL. */
    int (*extra_wait_ms)(const void *msg);
} px_parts_api;

#define PX_LIST(msg_t, topic_t, part_t, name_f, index_f)                                           \
    {sizeof(msg_t), offsetof(msg_t, ntopics), offsetof(msg_t, topics), sizeof(topic_t),          \
     offsetof(topic_t, name_f), offsetof(topic_t, npartitions), offsetof(topic_t, partitions),   \
     sizeof(part_t), offsetof(part_t, index_f)}

/* The fields PX_LIST names have the types this file reads them as. */
#define PX_IS(expr, type) _Generic((expr), type: 1, default: 0)
#define PX_LIST_CHECK(msg_t, topic_t, part_t, name_f, index_f)                                     \
    _Static_assert(PX_IS(((msg_t *)0)->ntopics, int32_t) &&                                        \
                       PX_IS(((msg_t *)0)->topics, topic_t *) &&                                   \
                       PX_IS(((topic_t *)0)->name_f, kc_str) &&                                    \
                       PX_IS(((topic_t *)0)->npartitions, int32_t) &&                              \
                       PX_IS(((topic_t *)0)->partitions, part_t *) &&                              \
                       PX_IS(((part_t *)0)->index_f, int32_t),                                     \
                   #msg_t " is not shaped as px_list reads it")
#define PX_RESP_CHECK(msg_t, part_t)                                                               \
    _Static_assert(PX_IS(((part_t *)0)->error_code, int16_t) &&                                    \
                       PX_IS(((part_t *)0)->tags, kc_tags) &&                                      \
                       PX_IS(((msg_t *)0)->throttle_time_ms, int32_t),                             \
                   #part_t " is not shaped as px_parts_api reads it")

/* Untyped entry points to a message's codec (pfx_req_decode, ...). */
#define PX_PARTS_CODEC(pfx, msg)                                                                   \
    static int pfx##_req_decode(kc_rd *rd, int16_t v, kc_arena *a, void *m)                       \
    {                                                                                              \
        return kc_##msg##_req_decode(rd, v, a, m);                                                 \
    }                                                                                              \
    static void pfx##_req_encode(kc_wr *w, int16_t v, const void *m)                              \
    {                                                                                              \
        kc_##msg##_req_encode(w, v, m);                                                            \
    }                                                                                              \
    static int pfx##_resp_decode(kc_rd *rd, int16_t v, kc_arena *a, void *m)                      \
    {                                                                                              \
        return kc_##msg##_resp_decode(rd, v, a, m);                                                \
    }                                                                                              \
    static void pfx##_resp_encode(kc_wr *w, int16_t v, const void *m)                             \
    {                                                                                              \
        kc_##msg##_resp_encode(w, v, m);                                                           \
    }

/* ---------------- the three APIs ---------------- */

PX_LIST_CHECK(kc_listoffsets_req, kc_listoffsets_req_topic, kc_listoffsets_req_partition, name,
              partition_index);
PX_LIST_CHECK(kc_listoffsets_resp, kc_listoffsets_resp_topic, kc_listoffsets_resp_partition, name,
              partition_index);
PX_RESP_CHECK(kc_listoffsets_resp, kc_listoffsets_resp_partition);
PX_PARTS_CODEC(px_lo, listoffsets)

static void px_lo_sub_init(void *msg)
{
    kc_listoffsets_req *sub = msg;
    sub->replica_id = -1;
}

static void px_lo_part_error(void *part, int32_t index, int16_t code)
{
    kc_listoffsets_resp_partition *op = part;
    op->partition_index = index;
    op->error_code = code;
    op->timestamp = -1;
    op->offset = -1;
    op->leader_epoch = -1;
}

static const px_parts_api px_lo_api = {
    .key = KC_API_LISTOFFSETS,
    .req = PX_LIST(kc_listoffsets_req, kc_listoffsets_req_topic, kc_listoffsets_req_partition, name,
                   partition_index),
    .resp = PX_LIST(kc_listoffsets_resp, kc_listoffsets_resp_topic, kc_listoffsets_resp_partition, name,
                    partition_index),
    .resp_error = offsetof(kc_listoffsets_resp_partition, error_code),
    .resp_tags = offsetof(kc_listoffsets_resp_partition, tags),
    .resp_throttle = PX_NO_FIELD, /* ListOffsets answers have always gone with throttle 0 */
    .req_decode = px_lo_req_decode,
    .req_encode = px_lo_req_encode,
    .resp_decode = px_lo_resp_decode,
    .resp_encode = px_lo_resp_encode,
    .sub_init = px_lo_sub_init,
    .part_error = px_lo_part_error,
};

PX_LIST_CHECK(kc_offsetforleaderepoch_req, kc_offsetforleaderepoch_req_topic,
              kc_offsetforleaderepoch_req_partition, topic, partition);
PX_LIST_CHECK(kc_offsetforleaderepoch_resp, kc_offsetforleaderepoch_resp_topic,
              kc_offsetforleaderepoch_resp_partition, topic, partition);
PX_RESP_CHECK(kc_offsetforleaderepoch_resp, kc_offsetforleaderepoch_resp_partition);
PX_PARTS_CODEC(px_ofle, offsetforleaderepoch)

static void px_ofle_part_error(void *part, int32_t index, int16_t code)
{
    kc_offsetforleaderepoch_resp_partition *op = part;
    op->partition = index;
    op->error_code = code;
    op->leader_epoch = -1;
    op->end_offset = -1;
}

static const px_parts_api px_ofle_api = {
    .key = KC_API_OFFSETFORLEADEREPOCH,
    .req = PX_LIST(kc_offsetforleaderepoch_req, kc_offsetforleaderepoch_req_topic,
                   kc_offsetforleaderepoch_req_partition, topic, partition),
    .resp = PX_LIST(kc_offsetforleaderepoch_resp, kc_offsetforleaderepoch_resp_topic,
                    kc_offsetforleaderepoch_resp_partition, topic, partition),
    .resp_error = offsetof(kc_offsetforleaderepoch_resp_partition, error_code),
    .resp_tags = offsetof(kc_offsetforleaderepoch_resp_partition, tags),
    .resp_throttle = offsetof(kc_offsetforleaderepoch_resp, throttle_time_ms),
    .req_decode = px_ofle_req_decode,
    .req_encode = px_ofle_req_encode,
    .resp_decode = px_ofle_resp_decode,
    .resp_encode = px_ofle_resp_encode,
    .part_error = px_ofle_part_error,
};

PX_LIST_CHECK(kc_deleterecords_req, kc_deleterecords_req_topic, kc_deleterecords_req_partition, name,
              partition_index);
PX_LIST_CHECK(kc_deleterecords_resp, kc_deleterecords_resp_topic, kc_deleterecords_resp_partition, name,
              partition_index);
PX_RESP_CHECK(kc_deleterecords_resp, kc_deleterecords_resp_partition);
PX_PARTS_CODEC(px_dr, deleterecords)

static void px_dr_part_error(void *part, int32_t index, int16_t code)
{
    kc_deleterecords_resp_partition *op = part;
    op->partition_index = index;
    op->low_watermark = -1;
    op->error_code = code;
}

/* The leader waits up to TimeoutMs for the followers to catch up. */
static int px_dr_extra_wait_ms(const void *msg)
{
    const kc_deleterecords_req *in = msg;
    return in->timeout_ms > 0 ? in->timeout_ms : 0;
}

static const px_parts_api px_dr_api = {
    .key = KC_API_DELETERECORDS,
    .req = PX_LIST(kc_deleterecords_req, kc_deleterecords_req_topic, kc_deleterecords_req_partition, name,
                   partition_index),
    .resp = PX_LIST(kc_deleterecords_resp, kc_deleterecords_resp_topic, kc_deleterecords_resp_partition, name,
                    partition_index),
    .resp_error = offsetof(kc_deleterecords_resp_partition, error_code),
    .resp_tags = offsetof(kc_deleterecords_resp_partition, tags),
    .resp_throttle = offsetof(kc_deleterecords_resp, throttle_time_ms),
    .req_decode = px_dr_req_decode,
    .req_encode = px_dr_req_encode,
    .resp_decode = px_dr_resp_decode,
    .resp_encode = px_dr_resp_encode,
    .part_error = px_dr_part_error,
    .extra_wait_ms = px_dr_extra_wait_ms,
};

static const px_parts_api *const px_parts_apis[] = {&px_lo_api, &px_ofle_api, &px_dr_api};

static const px_parts_api *px_parts_api_of(int16_t key)
{
    for (size_t i = 0; i < sizeof(px_parts_apis) / sizeof(px_parts_apis[0]); i++)
        if (px_parts_apis[i]->key == key)
            return px_parts_apis[i];
    return NULL; /* cannot happen: a split of this family has one of their keys */
}

/* ---------------- fields by offset ---------------- */

static int32_t px_get_i32(const void *base, size_t off)
{
    int32_t v;
    memcpy(&v, (const char *)base + off, sizeof(v));
    return v;
}

static void px_put_i32(void *base, size_t off, int32_t v)
{
    memcpy((char *)base + off, &v, sizeof(v));
}

static int16_t px_get_i16(const void *base, size_t off)
{
    int16_t v;
    memcpy(&v, (const char *)base + off, sizeof(v));
    return v;
}

static kc_str px_get_str(const void *base, size_t off)
{
    kc_str v;
    memcpy(&v, (const char *)base + off, sizeof(v));
    return v;
}

static void px_put_str(void *base, size_t off, kc_str v)
{
    memcpy((char *)base + off, &v, sizeof(v));
}

/* An array field (any element type) as bytes. */
static char *px_get_array(const void *base, size_t off)
{
    void *v;
    memcpy(&v, (const char *)base + off, sizeof(v));
    return v;
}

static void px_put_array(void *base, size_t off, void *v)
{
    memcpy((char *)base + off, &v, sizeof(v));
}

/* ---------------- split and merge ---------------- */

/* The partition of a sub's answer for (topic, index), or NULL. */
static const char *px_parts_find(const px_list *l, const px_sub *s, kc_str topic, int32_t index)
{
    const void *r = &s->r;
    int32_t nt = px_get_i32(r, l->ntopics);
    const char *topics = px_get_array(r, l->topics);
    for (int32_t t = 0; t < nt; t++) {
        const char *rt = topics + (size_t)t * l->topic_size;
        kc_str name = px_get_str(rt, l->name);
        if (name.len != topic.len || memcmp(name.p, topic.p, (size_t)topic.len) != 0)
            continue;
        int32_t np = px_get_i32(rt, l->nparts);
        const char *parts = px_get_array(rt, l->parts);
        for (int32_t j = 0; j < np; j++)
            if (px_get_i32(parts + (size_t)j * l->part_size, l->index) == index)
                return parts + (size_t)j * l->part_size;
    }
    return NULL;
}

static int px_parts_resp_decode(px_split *sp, px_sub *s, kc_rd *rd)
{
    return px_parts_api_of(sp->key)->resp_decode(rd, sp->up_version, &s->arena, &s->r);
}

/* The answer to the client: its topics and partitions in its order, each
 * from the sub-request that carried it, or an error. */
static void px_parts_merge(kc_wr *w, px_split *sp)
{
    const px_parts_api *api = px_parts_api_of(sp->key);
    const px_list *q = &api->req, *r = &api->resp;
    const void *in = &sp->in;
    px_proxy *px = px_client_proxy(sp->rq->cl);
    kc_arena *a = &sp->arena;
    int32_t nt = px_get_i32(in, q->ntopics);
    const char *itopics = px_get_array(in, q->topics);
    void *out = kc_arena_calloc(a, 1, r->size);
    char *otopics = kc_arena_calloc(a, (size_t)nt, r->topic_size);
    if (out == NULL || otopics == NULL) {
        w->err = 1;
        return;
    }
    px_put_i32(out, r->ntopics, nt);
    px_put_array(out, r->topics, otopics);
    int stale = 0;
    for (int32_t t = 0; t < nt; t++) {
        const char *it = itopics + (size_t)t * q->topic_size;
        char *ot = otopics + (size_t)t * r->topic_size;
        kc_str name = px_get_str(it, q->name);
        int32_t np = px_get_i32(it, q->nparts);
        const char *iparts = px_get_array(it, q->parts);
        char *oparts = kc_arena_calloc(a, (size_t)np, r->part_size);
        if (oparts == NULL) {
            w->err = 1;
            return;
        }
        px_put_str(ot, r->name, name);
        px_put_i32(ot, r->nparts, np);
        px_put_array(ot, r->parts, oparts);
        for (int32_t p = 0; p < np; p++) {
            char *op = oparts + (size_t)p * r->part_size;
            int32_t index = px_get_i32(iparts + (size_t)p * q->part_size, q->index);
            const char *found = NULL;
            int16_t code;
            px_sub *s = px_split_answer(sp, sp->assign[t][p], &code);
            if (s && (found = px_parts_find(r, s, name, index)) == NULL)
                code = KC_ERR_NETWORK_EXCEPTION; /* the broker left it out */
            if (found) {
                static const kc_tags none = {0};
                memcpy(op, found, r->part_size);
                memcpy(op + api->resp_tags, &none, sizeof(none));
            } else {
                api->part_error(op, index, code);
                px->m.partition_errors++;
            }
            /* Deleted records must not be served from the fetch cache: dropped
             * on any answer (a timed-out delete may have happened). */
            if (api->key == KC_API_DELETERECORDS)
                px_fcache_drop(px->fcache, name, index);
            stale |= px_is_stale_metadata(px_get_i16(op, api->resp_error));
        }
    }
    if (api->resp_throttle != PX_NO_FIELD) {
        int32_t throttle = 0;
        for (int i = 0; i < sp->nsubs; i++)
            if (sp->subs[i].resp && sp->subs[i].fail_code == 0 &&
                px_get_i32(&sp->subs[i].r, api->resp_throttle) > throttle)
                throttle = px_get_i32(&sp->subs[i].r, api->resp_throttle);
        px_put_i32(out, api->resp_throttle, throttle);
    }
    if (stale)
        mc_cluster_refresh_soon(px->mc);
    api->resp_encode(w, sp->version, out);
}

static const px_route_ops px_parts_ops = {px_parts_resp_decode, px_parts_merge};

/* Sub-request i: a copy of the client's request with only the partitions
 * assigned to it, encoded into *body. 0, or -1 with *body freed and NULL
 * (out of memory, or a value its version cannot carry: px_sub_encoded). */
static int px_parts_sub_encode(px_split *sp, const px_parts_api *api, int i, struct evbuffer **body)
{
    const px_list *q = &api->req;
    const void *in = &sp->in;
    kc_arena *a = &sp->arena;
    int32_t nt = px_get_i32(in, q->ntopics);
    const char *topics = px_get_array(in, q->topics);
    void *sub = kc_arena_calloc(a, 1, q->size);
    char *stopics = kc_arena_calloc(a, (size_t)nt, q->topic_size);
    if (sub == NULL || stopics == NULL) {
        evbuffer_free(*body);
        *body = NULL; /* px_split_send answers LEADER_NOT_AVAILABLE */
        return -1;
    }
    memcpy(sub, in, q->size);
    if (api->sub_init)
        api->sub_init(sub);
    int32_t ns = 0;
    for (int32_t t = 0; t < nt; t++) {
        const char *it = topics + (size_t)t * q->topic_size;
        char *st = stopics + (size_t)ns * q->topic_size;
        int32_t np = px_get_i32(it, q->nparts);
        const char *parts = px_get_array(it, q->parts);
        memcpy(st, it, q->topic_size);
        char *sparts = kc_arena_calloc(a, (size_t)np, q->part_size);
        if (sparts == NULL)
            break;
        int32_t k = 0;
        for (int32_t p = 0; p < np; p++)
            if (sp->assign[t][p] == i)
                memcpy(sparts + (size_t)k++ * q->part_size, parts + (size_t)p * q->part_size, q->part_size);
        px_put_i32(st, q->nparts, k);
        px_put_array(st, q->parts, sparts);
        if (k > 0)
            ns++;
    }
    px_put_i32(sub, q->ntopics, ns);
    px_put_array(sub, q->topics, stopics);
    kc_wr w;
    kc_wr_init(&w, *body, NULL);
    api->req_encode(&w, sp->up_version, sub);
    return px_sub_encoded(sp, i, &w, body);
}

static void px_parts_route(px_req *rq, const px_parts_api *api)
{
    px_split *sp = px_split_new(rq, &px_parts_ops);
    if (sp == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    if (api->req_decode(&rd, sp->version, &sp->arena, &sp->in) != 0) {
        px_split_decode_fail(sp, &rd);
        return;
    }
    const px_list *q = &api->req;
    int32_t nt = px_get_i32(&sp->in, q->ntopics);
    const char *topics = px_get_array(&sp->in, q->topics);
    int cap = 0;
    if (px_split_assign_alloc(sp, nt) != 0)
        goto oom;
    for (int32_t t = 0; t < nt; t++) {
        const char *it = topics + (size_t)t * q->topic_size;
        kc_str name = px_get_str(it, q->name);
        int32_t np = px_get_i32(it, q->nparts);
        const char *parts = px_get_array(it, q->parts);
        sp->assign[t] = kc_arena_calloc(&sp->arena, (size_t)np, sizeof(int16_t));
        if (sp->assign[t] == NULL)
            goto oom;
        for (int32_t p = 0; p < np; p++) {
            int32_t index = px_get_i32(parts + (size_t)p * q->part_size, q->index);
            sp->assign[t][p] = px_split_place(sp, name, index, &cap);
        }
    }
    struct evbuffer **bodies = calloc((size_t)(sp->nsubs ? sp->nsubs : 1), sizeof(*bodies));
    if (bodies == NULL)
        goto oom;
    for (int i = 0; i < sp->nsubs; i++) {
        bodies[i] = evbuffer_new();
        if (bodies[i])
            px_parts_sub_encode(sp, api, i, &bodies[i]);
    }
    px_split_send(sp, bodies, 1, api->extra_wait_ms ? api->extra_wait_ms(&sp->in) : 0);
    free(bodies);
    return;
oom:
    px_req_reject(rq, "out of memory");
    px_split_free(sp);
}

void px_route_listoffsets(px_req *rq)
{
    px_parts_route(rq, &px_lo_api);
}

void px_route_offsetforleaderepoch(px_req *rq)
{
    px_parts_route(rq, &px_ofle_api);
}

void px_route_deleterecords(px_req *rq)
{
    px_parts_route(rq, &px_dr_api);
}
