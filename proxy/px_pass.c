/*
 * Requests kzproxy forwards unchanged: group requests go to the real group
 * coordinator, transaction requests to the transaction coordinator, admin
 * requests to the controller (or any broker). kzproxy reads only the field it
 * routes by, so it advertises only the versions whose layout it knows.
 *
 * One exception: config requests (DescribeConfigs, AlterConfigs,
 * IncrementalAlterConfigs) whose resources name one broker (BROKER or
 * BROKER_LOGGER with a broker id). Through kzproxy that id is a proxy's node
 * id, which no backend broker answers for; such resources are answered here
 * with an error in their own slot, and the others go to the backend
 * (see px_cfg_* below).
 */
#include "config.h"

#include "proxy/px_proxy.h"
#include "proxy/px_acl.h"

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

/* ---------------- config resources of one broker ---------------- */

/* ConfigResource types that name one broker by its id (the others: TOPIC 2,
 * CLIENT_METRICS 16, GROUP 32, and BROKER with an empty name, the
 * cluster-wide broker default, are the backend's to answer). */
#define PX_RES_BROKER 4
#define PX_RES_BROKER_LOGGER 8

/*
 * The answer for a resource that names a broker id. The ids clients see are
 * the virtual cluster's: proxies, none of which is a Kafka broker, and a
 * proxy id maps to no one backend broker (several brokers map to each proxy,
 * px_vc_map_broker), so there is no broker to forward it to, and sending it
 * to the controller as is would describe or alter whichever broker happens
 * to have that id, or fail there.
 *
 * INVALID_REQUEST is what Kafka itself answers, in the resource's slot, when
 * a BROKER or BROKER_LOGGER resource names a broker other than the one that
 * received the request ("Unexpected broker id"): here the node addressed, a
 * proxy, cannot serve any broker's configs, the same situation. It is not
 * retriable, which is right: asking again cannot help. (UNKNOWN_SERVER_ERROR
 * would suggest a passing fault in kzproxy; the retriable codes would make
 * clients retry forever.)
 */
static const char px_res_broker_msg[] =
    "kzproxy: node ids of this cluster are proxies, not Kafka brokers: per-broker configs cannot be "
    "described or altered through kzproxy (an empty broker name addresses the cluster-wide default)";
static const char px_res_logger_msg[] =
    "kzproxy: node ids of this cluster are proxies, not Kafka brokers: broker loggers cannot be "
    "described or altered through kzproxy";

typedef struct px_cfg_res {
    int8_t type;
    kc_str name;     /* points into the request frame */
    size_t off, len; /* the resource's bytes in the request body */
    int local;       /* answered by kzproxy */
    int16_t code;    /* the ACLs' error (px_acl_config_code), or 0 */
} px_cfg_res;

typedef struct px_cfg {
    int flex;
    int32_t nres, nlocal;
    px_cfg_res *res;
    size_t tail_off; /* body bytes after the resources array (flags, tags) */
} px_cfg;

static int px_cfg_is_config_api(int16_t key)
{
    return key == KC_API_DESCRIBECONFIGS || key == 33 /* AlterConfigs */ ||
           key == 44 /* IncrementalAlterConfigs */;
}

/* Find the resources of a config request and those kzproxy answers.
 * 0 (cfg filled, res allocated), or -1 with rd->err set (malformed) or
 * not (out of memory). */
static int px_cfg_parse(kc_rd *rd, int16_t key, int flex, px_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->flex = flex;
    /* type, name length, one array count: at least 3 bytes */
    int32_t n = kc_rd_arraylen(rd, flex, 0, 3);
    if (rd->err)
        return -1;
    cfg->res = calloc((size_t)(n > 0 ? n : 1), sizeof(*cfg->res));
    if (cfg->res == NULL)
        return -1;
    cfg->nres = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        px_cfg_res *r = &cfg->res[i];
        r->off = rd->off;
        r->type = kc_rd_i8(rd);
        r->name = kc_rd_string(rd, flex);
        if (key == KC_API_DESCRIBECONFIGS) {
            int32_t nk = kc_rd_arraylen(rd, flex, 1, 1); /* configuration keys, null: all */
            for (int32_t j = 0; j < nk && rd->err == NULL; j++)
                (void)kc_rd_string(rd, flex);
        } else {
            int32_t nc = kc_rd_arraylen(rd, flex, 0, 2);
            for (int32_t j = 0; j < nc && rd->err == NULL; j++) {
                (void)kc_rd_string(rd, flex); /* name */
                if (key == 44)
                    (void)kc_rd_i8(rd); /* operation */
                (void)kc_rd_nstring(rd, flex); /* value */
                if (flex)
                    kc_rd_tags(rd, NULL);
            }
        }
        if (flex)
            kc_rd_tags(rd, NULL);
        r->len = rd->off - r->off;
        r->local = (r->type == PX_RES_BROKER || r->type == PX_RES_BROKER_LOGGER) && r->name.len > 0;
        cfg->nlocal += r->local;
    }
    cfg->tail_off = rd->off;
    if (rd->err) {
        free(cfg->res);
        cfg->res = NULL;
        return -1;
    }
    return 0;
}

/* One result for a resource kzproxy answers (same layout in the three
 * responses, DescribeConfigs adding an empty configs array). */
static void px_cfg_write_local(kc_wr *w, int16_t key, int flex, const px_cfg_res *r)
{
    kc_wr_i16(w, r->code ? r->code : KC_ERR_INVALID_REQUEST);
    if (r->code)
        kc_wr_string(w, kc_str_c("kzproxy: the ACLs do not allow this principal this operation on this resource"),
                     flex);
    else
        kc_wr_string(w, kc_str_c(r->type == PX_RES_BROKER ? px_res_broker_msg : px_res_logger_msg), flex);
    kc_wr_i8(w, r->type);
    kc_wr_string(w, r->name, flex);
    if (key == KC_API_DESCRIBECONFIGS)
        kc_wr_arraylen(w, 0, flex);
    if (flex)
        kc_wr_tags(w, NULL);
}

/* The request for the backend: the resources kzproxy does not answer, in
 * their order, byte for byte, then the rest of the body as it was. */
static int px_cfg_backend_body(const px_cfg *cfg, const uint8_t *body, size_t body_len, struct evbuffer *eb)
{
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    kc_wr_arraylen(&w, cfg->nres - cfg->nlocal, cfg->flex);
    for (int32_t i = 0; i < cfg->nres; i++)
        if (!cfg->res[i].local)
            kc_wr_raw(&w, body + cfg->res[i].off, cfg->res[i].len);
    kc_wr_raw(&w, body + cfg->tail_off, body_len - cfg->tail_off);
    return w.err ? -1 : 0;
}

/* One result of the backend's response. */
typedef struct px_cfg_result {
    int8_t type;
    kc_str name;
    size_t off, len; /* in the response frame */
    int used;
} px_cfg_result;

/*
 * The client's response: the backend's results and kzproxy's, in the order
 * of the request's resources (clients match results by resource, but keep
 * it anyway), the backend's bytes copied as they were. A result the backend
 * added that matches no resource is kept, at the end. resp NULL: every
 * resource is kzproxy's. 0, or -1 with *why set.
 */
static int px_cfg_response(const px_cfg *cfg, int16_t key, int16_t version, const kc_frame *resp,
                           struct evbuffer *out, const char **why)
{
    int flex = cfg->flex;
    int32_t throttle = 0, nback = 0;
    px_cfg_result *back = NULL;
    size_t tail_off = 0;
    kc_rd rd;
    if (resp != NULL) {
        kc_rd_init(&rd, resp->data, resp->len);
        (void)kc_resp_hdr_decode(&rd, kc_resp_hdr_version(key, version));
        throttle = kc_rd_i32(&rd);
        nback = kc_rd_arraylen(&rd, flex, 0, 5);
        back = rd.err ? NULL : calloc((size_t)(nback > 0 ? nback : 1), sizeof(*back));
        if (back == NULL) {
            *why = rd.err ? rd.err : "out of memory";
            return -1;
        }
        for (int32_t i = 0; i < nback && rd.err == NULL; i++) {
            px_cfg_result *b = &back[i];
            b->off = rd.off;
            (void)kc_rd_i16(&rd);          /* error code */
            (void)kc_rd_nstring(&rd, flex); /* error message */
            b->type = kc_rd_i8(&rd);
            b->name = kc_rd_string(&rd, flex);
            if (key == KC_API_DESCRIBECONFIGS) {
                int32_t nc = kc_rd_arraylen(&rd, flex, 0, 4);
                for (int32_t j = 0; j < nc && rd.err == NULL; j++) {
                    (void)kc_rd_string(&rd, flex);  /* name */
                    (void)kc_rd_nstring(&rd, flex); /* value */
                    (void)kc_rd_bool(&rd);          /* read only */
                    if (version == 0)
                        (void)kc_rd_bool(&rd); /* is default */
                    if (version >= 1)
                        (void)kc_rd_i8(&rd); /* config source */
                    (void)kc_rd_bool(&rd);   /* is sensitive */
                    if (version >= 1) {
                        int32_t ns = kc_rd_arraylen(&rd, flex, 0, 4);
                        for (int32_t k = 0; k < ns && rd.err == NULL; k++) {
                            (void)kc_rd_string(&rd, flex);
                            (void)kc_rd_nstring(&rd, flex);
                            (void)kc_rd_i8(&rd);
                            if (flex)
                                kc_rd_tags(&rd, NULL);
                        }
                    }
                    if (version >= 3) {
                        (void)kc_rd_i8(&rd);            /* config type */
                        (void)kc_rd_nstring(&rd, flex); /* documentation */
                    }
                    if (flex)
                        kc_rd_tags(&rd, NULL);
                }
            }
            if (flex)
                kc_rd_tags(&rd, NULL);
            b->len = rd.off - b->off;
        }
        tail_off = rd.off; /* the top-level tags of a flexible version */
        if (rd.err) {
            free(back);
            *why = rd.err;
            return -1;
        }
    }
    kc_wr w;
    kc_wr_init(&w, out, NULL);
    kc_wr_i32(&w, throttle);
    kc_wr_arraylen(&w, cfg->nlocal + nback, flex);
    for (int32_t i = 0; i < cfg->nres; i++) {
        const px_cfg_res *r = &cfg->res[i];
        if (r->local) {
            px_cfg_write_local(&w, key, flex, r);
            continue;
        }
        for (int32_t j = 0; j < nback; j++) {
            px_cfg_result *b = &back[j];
            if (!b->used && b->type == r->type && b->name.len == r->name.len &&
                memcmp(b->name.p, r->name.p, (size_t)r->name.len) == 0) {
                b->used = 1;
                kc_wr_raw(&w, resp->data + b->off, b->len);
                break;
            }
        }
    }
    for (int32_t j = 0; j < nback; j++)
        if (!back[j].used)
            kc_wr_raw(&w, resp->data + back[j].off, back[j].len);
    if (resp != NULL)
        kc_wr_raw(&w, resp->data + tail_off, resp->len - tail_off);
    else if (flex)
        kc_wr_tags(&w, NULL);
    free(back);
    if (w.err) {
        *why = kc_wr_why(&w);
        return -1;
    }
    return 0;
}

/* ---------------- forwarding ---------------- */

typedef struct px_pass {
    px_req *rq;
    const px_pass_api *pa;
    int32_t broker;
    px_cfg cfg; /* config requests with resources kzproxy answers (cfg.nlocal > 0) */
    px_acl_split split; /* topics the ACLs deny, answered by kzproxy (split_on) */
    int split_on;
} px_pass;

static void px_pass_free(px_pass *ps)
{
    px_acl_split_free(&ps->split);
    free(ps->cfg.res);
    free(ps);
}

/* The end of a merged answer: respond with body when the merge (rc)
 * succeeded, else reject with why; then release the backend's response
 * and the pass. */
static void px_merged_done(px_pass *ps, int rc, struct evbuffer *body, kc_frame *resp, int32_t broker,
                           const char *why)
{
    px_req *rq = ps->rq;
    if (body == NULL)
        px_req_reject(rq, "out of memory");
    else if (rc != 0 && resp != NULL)
        px_req_reject(rq, "malformed response from broker %d: %s", broker, why);
    else if (rc != 0)
        px_req_reject(rq, "cannot encode the response: %s", why);
    else
        px_req_respond(rq, body);
    if (body)
        evbuffer_free(body);
    kc_frame_release(resp);
    px_pass_free(ps);
}

/* Answer a config request from the backend's response (or none: every
 * resource is kzproxy's) and kzproxy's own results. */
static void px_cfg_answer(px_pass *ps, kc_frame *resp, int32_t broker)
{
    px_req *rq = ps->rq;
    const char *why = NULL;
    struct evbuffer *body = evbuffer_new();
    int rc = body == NULL ? -1
                          : px_cfg_response(&ps->cfg, rq->hdr.api_key, rq->hdr.api_version, resp, body, &why);
    px_merged_done(ps, rc, body, resp, broker, why);
}

/* Answer a request split by the ACLs: the backend's results (resp, or
 * none: every topic denied) and kzproxy's for the denied topics. */
static void px_split_answer(px_pass *ps, kc_frame *resp, int32_t broker)
{
    px_req *rq = ps->rq;
    const char *why = NULL;
    px_acl_pass_ctx ctx;
    px_acl_ctx(rq->cl, &ctx);
    struct evbuffer *body = evbuffer_new();
    const uint8_t *rb = NULL;
    size_t rlen = 0;
    int rc = -1;
    if (resp != NULL) {
        kc_rd rd;
        kc_rd_init(&rd, resp->data, resp->len);
        (void)kc_resp_hdr_decode(&rd, kc_resp_hdr_version(rq->hdr.api_key, rq->hdr.api_version));
        why = rd.err;
        rb = resp->data + rd.off;
        rlen = rd.err ? 0 : resp->len - rd.off;
    }
    if (body != NULL && why == NULL)
        rc = px_acl_split_response(&ps->split, &ctx, rq->frame->data + rq->body_off, rb, rlen, body, &why);
    px_merged_done(ps, rc, body, resp, broker, why);
}

static void px_pass_done(kc_frame *resp, const char *err, void *arg)
{
    px_pass *ps = arg;
    px_req *rq = ps->rq;
    if (resp == NULL) {
        px_pass_free(ps);
        /* There is no generic way to encode an error for a request kzproxy
         * did not decode: close, and the client retries on a new connection. */
        px_req_reject(rq, "broker unreachable: %s", err ? err : "unknown error");
        return;
    }
    if (ps->cfg.nlocal > 0) {
        px_cfg_answer(ps, resp, ps->broker);
        return;
    }
    if (ps->split_on) {
        px_split_answer(ps, resp, ps->broker);
        return;
    }
    px_pass_free(ps);
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
        px_pass_free(ps);
        px_req_reject(rq, "no broker to forward to");
        return;
    }
    size_t n = rq->frame->len - rq->body_off;
    int rc;
    if (ps->cfg.nlocal > 0)
        rc = px_cfg_backend_body(&ps->cfg, rq->frame->data + rq->body_off, n, body);
    else if (ps->split_on && ps->split.ndenied > 0)
        rc = px_acl_split_request(&ps->split, rq->frame->data + rq->body_off, n, body);
    else
        rc = n > 0 ? kc_frame_add_ref(body, rq->frame, rq->frame->data + rq->body_off, n) : 0;
    if (rc != 0) {
        evbuffer_free(body);
        px_pass_free(ps);
        px_req_reject(rq, "out of memory");
        return;
    }
    ps->broker = broker;
    /* Group joins wait up to the rebalance timeout: a generous extra wait. */
    int extra = ps->pa->blocking ? 300000 : 0;
    if (mc_conn_request(c, rq->hdr.api_key, rq->hdr.api_version, rq->hdr.client_id, body, 1, extra,
                        px_pass_done, ps) != 0) {
        evbuffer_free(body);
        px_pass_free(ps);
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
    mc_view *v = mc_cluster_view(px_client_proxy(ps->rq->cl)->mc);
    if (px_client_proxy(ps->rq->cl)->draining == 1 && v != NULL) {
        /* Leaving (px_drain.c): a broker that is not the coordinator answers
         * NOT_COORDINATOR in the message's own format; the client looks the
         * coordinator up again (FindCoordinator names another proxy now). */
        for (int i = 0; i < v->nbrokers; i++) {
            if (v->brokers[i].id != broker_id) {
                ps->broker = v->brokers[i].id;
                break;
            }
        }
    }
    px_pass_send(ps);
}

void px_pass_route(px_req *rq)
{
    px_proxy *px = px_client_proxy(rq->cl);
    const px_pass_api *pa = px_pass_lookup(rq->hdr.api_key);
    if (px_acl_pass(rq))
        return; /* denied: answered with the authorization error, or refused */
    px_pass *ps = calloc(1, sizeof(*ps));
    if (ps == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    ps->rq = rq;
    ps->pa = pa;
    ps->broker = -1;
    int flex = kc_api_flexible(rq->hdr.api_key, rq->hdr.api_version);
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    if (px_cfg_is_config_api(rq->hdr.api_key)) {
        if (px_cfg_parse(&rd, rq->hdr.api_key, flex, &ps->cfg) != 0) {
            px_pass_free(ps);
            if (rd.err)
                px_req_reject(rq, "malformed request: %s at byte %zu", rd.err, rq->body_off + rd.err_off);
            else
                px_req_reject(rq, "out of memory");
            return;
        }
        if (px_client_proxy(rq->cl)->cfg->acl != NULL) {
            px_acl_pass_ctx ctx;
            px_acl_ctx(rq->cl, &ctx);
            for (int32_t i = 0; i < ps->cfg.nres; i++) {
                px_cfg_res *r = &ps->cfg.res[i];
                r->code = px_acl_config_code(&ctx, rq->hdr.api_key, r->type, r->name);
                if (r->code && !r->local) {
                    r->local = 1;
                    ps->cfg.nlocal++;
                }
            }
        }
        if (ps->cfg.nlocal > 0)
            kz_dbg("client %s: %s: %d of %d resources name a broker id, answered by kzproxy",
                   px_client_peer(rq->cl), kc_api_name(rq->hdr.api_key), ps->cfg.nlocal, ps->cfg.nres);
        if (ps->cfg.nlocal > 0 && ps->cfg.nlocal == ps->cfg.nres) {
            px_cfg_answer(ps, NULL, -1); /* nothing for the backend */
            return;
        }
    }
    if (px->cfg->acl != NULL && px_acl_split_applies(rq->hdr.api_key) &&
        (rq->hdr.api_key != KC_API_OFFSETFETCH || rq->hdr.api_version <= 7)) {
        px_acl_pass_ctx ctx;
        px_acl_ctx(rq->cl, &ctx);
        const char *why = NULL;
        size_t err_off = 0;
        if (px_acl_split_parse(&ps->split, &ctx, rq->hdr.api_key, rq->hdr.api_version, rq->frame->data + rq->body_off,
                               rq->frame->len - rq->body_off, &why, &err_off) != 0) {
            px_pass_free(ps);
            px_req_reject(rq, "malformed request: %s at byte %zu", why ? why : "?", rq->body_off + err_off);
            return;
        }
        ps->split_on = ps->split.ndenied > 0 || ps->split.all_topics;
        if (ps->split.n > 0 && ps->split.ndenied == ps->split.n) {
            px_split_answer(ps, NULL, -1); /* every topic denied: nothing for the backend */
            return;
        }
    }
    if (pa->target == PX_T_ANY) {
        px_pass_send(ps);
        return;
    }
    for (int i = 0; i < pa->skip; i++)
        (void)kc_rd_string(&rd, flex); /* TxnOffsetCommit's transactional id: never null */
    kc_str key = {NULL, -1};
    if (pa->array) {
        int32_t n = kc_rd_arraylen(&rd, flex, 0, 1);
        if (n > 0)
            key = kc_rd_string(&rd, flex);
    } else {
        key = kc_rd_nstring(&rd, flex);
        /* Only InitProducerId may leave its key null (an idempotent
         * producer). Any other null group or transactional id would make
         * the broker close the pooled connection, which other clients'
         * requests share: refused here, the client's connection only. */
        if (rd.err == NULL && key.len < 0 && rq->hdr.api_key != KC_API_INITPRODUCERID)
            kc_rd_fail(&rd, pa->target == PX_T_TXN ? "null transactional id" : "null group id");
    }
    if (rd.err) {
        px_pass_free(ps);
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
        /* Describe on the group or transactional id (ACLs): a denied key is
         * answered in its slot and not looked up. */
        if (fc->req.key_type <= 1 &&
            !px_acl_check(rq->cl, KZ_ACL_DESCRIBE, fc->req.key_type ? KZ_ACL_TRANSACTIONAL_ID : KZ_ACL_GROUP,
                          fc->keys[i])) {
            px_fc_cb(-1, fc->req.key_type ? KC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                                          : KC_ERR_GROUP_AUTHORIZATION_FAILED, &slots[i]);
            continue;
        }
        /* A client asks again when its coordinator failed it: ask the backend. */
        mc_cluster_coordinator(px->mc, fc->req.key_type, fc->keys[i], 1, px_fc_cb, &slots[i]);
    }
    if (--fc->pending == 0)
        px_fc_answer(fc);
}
