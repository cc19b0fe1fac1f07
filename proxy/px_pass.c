/*
 * Requests kzproxy forwards unchanged: group requests go to the real group
 * coordinator, transaction requests to the transaction coordinator, admin
 * requests to the controller (or any broker). kzproxy reads only the field it
 * routes by, so it advertises only the versions whose layout it knows.
 */
#include "config.h"

#include "proxy/px_proxy.h"

#include "codec/kc_msg.h"
#include "common/kz_log.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

enum px_target {
    PX_T_ANY,        /* any broker (the controller when known) */
    PX_T_GROUP,      /* the coordinator of the group named by the routing field */
    PX_T_TXN,        /* the coordinator of the transactional id (null: any broker) */
};

/* How to find the routing field: skip `skip` strings, then read a string (or
 * the first string of an array when `array`). */
typedef struct px_pass_api {
    int16_t key;
    int16_t max_version; /* highest version whose routing field kzproxy knows */
    int8_t target;
    int8_t skip;
    int8_t array;
    int8_t blocking; /* the broker may hold it: use the client's own connection */
} px_pass_api;

static const px_pass_api px_pass_apis[] = {
    {KC_API_OFFSETCOMMIT, 9, PX_T_GROUP, 0, 0, 0},
    {KC_API_OFFSETFETCH, 7, PX_T_GROUP, 0, 0, 0},
    {KC_API_JOINGROUP, 9, PX_T_GROUP, 0, 0, 1},
    {KC_API_HEARTBEAT, 4, PX_T_GROUP, 0, 0, 0},
    {KC_API_LEAVEGROUP, 5, PX_T_GROUP, 0, 0, 0},
    {KC_API_SYNCGROUP, 5, PX_T_GROUP, 0, 0, 1},
    {KC_API_DESCRIBEGROUPS, 5, PX_T_GROUP, 0, 1, 0},
    {KC_API_DELETEGROUPS, 2, PX_T_GROUP, 0, 1, 0},
    {KC_API_TXNOFFSETCOMMIT, 4, PX_T_GROUP, 1, 0, 0},
    {47 /* OffsetDelete */, 0, PX_T_GROUP, 0, 0, 0},
    {KC_API_CONSUMERGROUPHEARTBEAT, 1, PX_T_GROUP, 0, 0, 0}, /* KIP-848 */
    {KC_API_CONSUMERGROUPDESCRIBE, 1, PX_T_GROUP, 0, 1, 0},
    {KC_API_INITPRODUCERID, 5, PX_T_TXN, 0, 0, 0},
    {KC_API_ADDPARTITIONSTOTXN, 3, PX_T_TXN, 0, 0, 0},
    {KC_API_ADDOFFSETSTOTXN, 4, PX_T_TXN, 0, 0, 0},
    {KC_API_ENDTXN, 4, PX_T_TXN, 0, 0, 0},
    {KC_API_CREATETOPICS, 7, PX_T_ANY, 0, 0, 0},
    {KC_API_DELETETOPICS, 6, PX_T_ANY, 0, 0, 0},
    {KC_API_DESCRIBECONFIGS, 4, PX_T_ANY, 0, 0, 0},
    {33 /* AlterConfigs */, 2, PX_T_ANY, 0, 0, 0},
    {KC_API_CREATEPARTITIONS, 3, PX_T_ANY, 0, 0, 0},
    {44 /* IncrementalAlterConfigs */, 1, PX_T_ANY, 0, 0, 0},
    {29 /* DescribeAcls */, 3, PX_T_ANY, 0, 0, 0},
    {30 /* CreateAcls */, 3, PX_T_ANY, 0, 0, 0},
    {31 /* DeleteAcls */, 3, PX_T_ANY, 0, 0, 0},
};

static const px_pass_api *px_pass_lookup(int16_t key)
{
    for (size_t i = 0; i < sizeof(px_pass_apis) / sizeof(px_pass_apis[0]); i++)
        if (px_pass_apis[i].key == key)
            return &px_pass_apis[i];
    return NULL;
}

int px_pass_versions(int16_t key, int16_t *max_version)
{
    const px_pass_api *pa = px_pass_lookup(key);
    if (pa == NULL)
        return -1;
    if (max_version)
        *max_version = pa->max_version;
    return 0;
}

typedef struct px_pass {
    px_req *rq;
    const px_pass_api *pa;
    int32_t broker;
} px_pass;

static void px_pass_done(kc_frame *resp, const char *err, void *arg)
{
    px_pass *ps = arg;
    px_req *rq = ps->rq;
    free(ps);
    if (resp == NULL) {
        /* There is no generic way to encode an error for a request kzproxy
         * did not decode: close, and the client retries on a new connection. */
        px_req_reject(rq, "broker unreachable: %s", err ? err : "unknown error");
        return;
    }
    px_req_respond_frame(rq, resp);
}

static void px_pass_send(px_pass *ps)
{
    px_req *rq = ps->rq;
    px_proxy *px = px_client_proxy(rq->cl);
    mc_view *v = mc_cluster_view(px->mc);
    int32_t broker = ps->broker;
    if (broker < 0 || mc_view_broker(v, broker) == NULL) {
        /* No coordinator known: any broker answers with NOT_COORDINATOR or
         * COORDINATOR_NOT_AVAILABLE in the message's own format, which makes
         * the client look it up again. */
        broker = -1;
        if (v && mc_view_broker(v, v->controller_id))
            broker = v->controller_id;
        else if (v && v->nbrokers > 0)
            broker = v->brokers[0].id;
    }
    mc_conn *c = broker >= 0 ? px_client_conn(rq->cl, broker, ps->pa->blocking) : NULL;
    struct evbuffer *body = c ? evbuffer_new() : NULL;
    if (body == NULL) {
        free(ps);
        px_req_reject(rq, "no broker to forward to");
        return;
    }
    size_t n = rq->frame->len - rq->body_off;
    if (n > 0 && kc_frame_add_ref(body, rq->frame, rq->frame->data + rq->body_off, n) != 0) {
        evbuffer_free(body);
        free(ps);
        px_req_reject(rq, "out of memory");
        return;
    }
    /* Group joins wait up to the rebalance timeout: a generous extra wait. */
    int extra = ps->pa->blocking ? 300000 : 0;
    if (mc_conn_request(c, rq->hdr.api_key, rq->hdr.api_version, rq->hdr.client_id, body, 1, extra,
                        px_pass_done, ps) != 0) {
        evbuffer_free(body);
        free(ps);
        px_req_reject(rq, "broker %d is unreachable (reconnect backoff)", broker);
        return;
    }
    evbuffer_free(body);
}

static void px_pass_coord_cb(int32_t broker_id, int16_t error_code, void *arg)
{
    px_pass *ps = arg;
    (void)error_code;
    ps->broker = broker_id;
    px_pass_send(ps);
}

void px_pass_route(px_req *rq)
{
    px_proxy *px = px_client_proxy(rq->cl);
    const px_pass_api *pa = px_pass_lookup(rq->hdr.api_key);
    px_pass *ps = calloc(1, sizeof(*ps));
    if (ps == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    ps->rq = rq;
    ps->pa = pa;
    ps->broker = -1;
    if (pa->target == PX_T_ANY) {
        px_pass_send(ps);
        return;
    }
    int flex = kc_api_flexible(rq->hdr.api_key, rq->hdr.api_version);
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    for (int i = 0; i < pa->skip; i++)
        (void)kc_rd_nstring(&rd, flex);
    kc_str key = {NULL, -1};
    if (pa->array) {
        int32_t n = kc_rd_arraylen(&rd, flex, 0, 1);
        if (n > 0)
            key = kc_rd_string(&rd, flex);
    } else {
        key = kc_rd_nstring(&rd, flex);
    }
    if (rd.err) {
        free(ps);
        px_req_reject(rq, "malformed request: %s at byte %zu", rd.err, rq->body_off + rd.err_off);
        return;
    }
    if (key.len < 0 || (pa->array && key.len == 0)) {
        px_pass_send(ps); /* no key (e.g. InitProducerId of an idempotent producer) */
        return;
    }
    mc_cluster_coordinator(px->mc, pa->target == PX_T_TXN ? 1 : 0, key, 0, px_pass_coord_cb, ps);
}

/* ---------------- FindCoordinator ---------------- */

typedef struct px_fc {
    px_req *rq;
    kc_arena arena;
    kc_findcoordinator_req req;
    int nkeys;
    kc_str *keys;
    int32_t *brokers;
    int16_t *errors;
    int pending;
} px_fc;

static void px_fc_answer(px_fc *fc)
{
    px_req *rq = fc->rq;
    px_proxy *px = px_client_proxy(rq->cl);
    const px_node *nodes;
    int fallback;
    int n = px_vc_zone_nodes(px, px_client_zone(rq->cl), &nodes, &fallback);
    int16_t version = rq->hdr.api_version;
    kc_findcoordinator_resp r = {0};
    kc_findcoordinator_coord *co = kc_arena_calloc(&fc->arena, (size_t)fc->nkeys, sizeof(*co));
    if (co == NULL) {
        px_req_reject(rq, "out of memory");
        goto out;
    }
    for (int i = 0; i < fc->nkeys; i++) {
        const px_node *p = fc->errors[i] == 0 ? px_vc_map_broker(nodes, n, fc->brokers[i]) : NULL;
        co[i].key = fc->keys[i];
        co[i].error_code = p ? 0 : (fc->errors[i] ? fc->errors[i] : KC_ERR_COORDINATOR_NOT_AVAILABLE);
        co[i].node_id = p ? p->node_id : -1;
        co[i].host = kc_str_c(p ? p->host : "");
        co[i].port = p ? p->port : -1;
        co[i].error_message = kc_str_c(NULL);
    }
    if (version >= 4) {
        r.ncoordinators = fc->nkeys;
        r.coordinators = co;
    } else {
        r.error_code = co[0].error_code;
        r.error_message = kc_str_c(NULL);
        r.node_id = co[0].node_id;
        r.host = co[0].host;
        r.port = co[0].port;
    }
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        px_req_reject(rq, "out of memory");
        goto out;
    }
    kc_wr w;
    kc_wr_init(&w, body, NULL);
    kc_findcoordinator_resp_encode(&w, version, &r);
    px_req_respond(rq, body);
    evbuffer_free(body);
out:
    kc_arena_destroy(&fc->arena);
    free(fc);
}

typedef struct px_fc_slot {
    px_fc *fc;
    int i;
} px_fc_slot;

static void px_fc_cb(int32_t broker_id, int16_t error_code, void *arg)
{
    px_fc_slot *sl = arg;
    px_fc *fc = sl->fc;
    fc->brokers[sl->i] = broker_id;
    fc->errors[sl->i] = error_code;
    if (--fc->pending == 0)
        px_fc_answer(fc);
}

void px_vc_findcoordinator(px_req *rq)
{
    px_proxy *px = px_client_proxy(rq->cl);
    px_fc *fc = calloc(1, sizeof(*fc));
    if (fc == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    fc->rq = rq;
    kc_arena_init(&fc->arena);
    kc_rd rd;
    int16_t version = rq->hdr.api_version;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    if (kc_findcoordinator_req_decode(&rd, version, &fc->arena, &fc->req) != 0) {
        px_req_reject(rq, "malformed request: %s at byte %zu", rd.err, rq->body_off + rd.err_off);
        kc_arena_destroy(&fc->arena);
        free(fc);
        return;
    }
    if (version >= 4) {
        fc->nkeys = fc->req.ncoordinator_keys;
        fc->keys = fc->req.coordinator_keys;
    } else {
        fc->nkeys = 1;
        fc->keys = &fc->req.key;
    }
    fc->brokers = kc_arena_calloc(&fc->arena, (size_t)fc->nkeys, sizeof(int32_t));
    fc->errors = kc_arena_calloc(&fc->arena, (size_t)fc->nkeys, sizeof(int16_t));
    px_fc_slot *slots = kc_arena_calloc(&fc->arena, (size_t)fc->nkeys, sizeof(px_fc_slot));
    if (fc->brokers == NULL || fc->errors == NULL || slots == NULL) {
        px_req_reject(rq, "out of memory");
        kc_arena_destroy(&fc->arena);
        free(fc);
        return;
    }
    if (fc->nkeys == 0) {
        px_fc_answer(fc);
        return;
    }
    fc->pending = fc->nkeys + 1;
    for (int i = 0; i < fc->nkeys; i++) {
        slots[i].fc = fc;
        slots[i].i = i;
        /* A client asks again when its coordinator failed it: ask the backend. */
        mc_cluster_coordinator(px->mc, fc->req.key_type, fc->keys[i], 1, px_fc_cb, &slots[i]);
    }
    if (--fc->pending == 0)
        px_fc_answer(fc);
}
