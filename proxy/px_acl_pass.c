/*
 * Authorization of the requests kzproxy forwards unchanged (px_pass.c):
 * the group, transactional and admin requests. px_acl_pass_eval reads the
 * resource names of a request body (bounded reads, kc_rd), asks the
 * context's check for each, and decides: forward, answer with the
 * authorization error in the message's own format, or refuse. It touches no
 * connection, so the fuzz target (tests/fuzz/fuzz_acl.c) drives it directly;
 * px_acl_pass() in px_acl.c applies the decision to a client request.
 *
 * Group requests are authorized on the group here (OffsetCommit and
 * OffsetFetch then also on each topic, consume, in px_acl_split.c);
 * transactional requests on the transactional id, and AddPartitionsToTxn
 * also on each topic (produce); the ACL APIs on the
 * cluster, answered here; the other admin requests per topic or resource in
 * px_acl_split.c.
 */
#include "config.h"

#include "proxy/px_acl.h"

#include "codec/kc_proto.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <string.h>

enum { PX_ACL_MAXNAMES = 64 }; /* group ids of one Describe/DeleteGroups checked and mirrored */

typedef struct px_acl_req {
    const px_acl_pass_ctx *ctx;
    int16_t key, version;
    int flex;
    kc_rd rd;
    struct evbuffer *out; /* the answer's body */
    px_acl_verdict verdict;
    const char *why;
} px_acl_req;

#define PX_ACL_CHECK(ar, op, res, name) (ar)->ctx->check((ar)->ctx->arg, (op), (res), (name))

/* The answer is in ar->out, or it could not be encoded (refused). */
static void px_acl_respond(px_acl_req *ar, kc_wr *w)
{
    if (w->err) {
        ar->verdict = PX_ACL_REFUSE;
        ar->why = "cannot encode the authorization error";
    } else {
        ar->verdict = PX_ACL_ANSWER;
    }
}

/* Answer with the simple shape [throttle] error [fields...]: the APIs whose
 * response is one error code and fields that have empty values. */
static void px_acl_simple(px_acl_req *ar, int16_t code)
{
    int16_t v = ar->version;
    int flex = ar->flex;
    kc_wr w;
    kc_wr_init(&w, ar->out, NULL);
    kc_str empty = kc_str_c(""), null = kc_str_c(NULL);
    switch (ar->key) {
    case KC_API_HEARTBEAT:
    case KC_API_ADDOFFSETSTOTXN:
    case KC_API_ENDTXN:
        if (ar->key != KC_API_HEARTBEAT || v >= 1)
            kc_wr_i32(&w, 0);
        kc_wr_i16(&w, code);
        break;
    case KC_API_JOINGROUP:
        if (v >= 2)
            kc_wr_i32(&w, 0);
        kc_wr_i16(&w, code);
        kc_wr_i32(&w, -1); /* generation id */
        if (v >= 7)
            kc_wr_string(&w, null, flex); /* protocol type */
        kc_wr_string(&w, v >= 7 ? null : empty, flex); /* protocol name */
        kc_wr_string(&w, empty, flex);                 /* leader */
        if (v >= 9)
            kc_wr_bool(&w, 0); /* skip assignment */
        kc_wr_string(&w, empty, flex); /* member id */
        kc_wr_arraylen(&w, 0, flex);
        break;
    case KC_API_SYNCGROUP:
        if (v >= 1)
            kc_wr_i32(&w, 0);
        kc_wr_i16(&w, code);
        if (v >= 5) {
            kc_wr_string(&w, null, flex);
            kc_wr_string(&w, null, flex);
        }
        kc_wr_bytes(&w, (kc_bytes){NULL, 0}, flex);
        break;
    case KC_API_LEAVEGROUP:
        if (v >= 1)
            kc_wr_i32(&w, 0);
        kc_wr_i16(&w, code);
        if (v >= 3)
            kc_wr_arraylen(&w, 0, flex);
        break;
    case KC_API_OFFSETFETCH: /* v2+: the top-level error */
        if (v >= 3)
            kc_wr_i32(&w, 0);
        kc_wr_arraylen(&w, 0, flex);
        kc_wr_i16(&w, code);
        break;
    case 47: /* OffsetDelete */
        kc_wr_i16(&w, code);
        kc_wr_i32(&w, 0);
        kc_wr_arraylen(&w, 0, flex);
        break;
    case KC_API_INITPRODUCERID:
        kc_wr_i32(&w, 0);
        kc_wr_i16(&w, code);
        kc_wr_i64(&w, -1);
        kc_wr_i16(&w, -1);
        break;
    case KC_API_CONSUMERGROUPHEARTBEAT:
        kc_wr_i32(&w, 0);
        kc_wr_i16(&w, code);
        kc_wr_string(&w, null, flex); /* error message */
        kc_wr_string(&w, null, flex); /* member id */
        kc_wr_i32(&w, 0);             /* member epoch */
        kc_wr_i32(&w, 0);             /* heartbeat interval */
        kc_wr_i8(&w, -1);             /* assignment: null */
        break;
    default:
        kc_wr_fail(&w, "no error response for this API");
        break;
    }
    if (flex)
        kc_wr_tags(&w, NULL);
    px_acl_respond(ar, &w);
}

/* DescribeGroups, DeleteGroups, ConsumerGroupDescribe: one result per group
 * id, denied ones GROUP_AUTHORIZATION_FAILED, the others INVALID_REQUEST
 * (not looked up: a request with a denied group is answered here whole). */
static void px_acl_groups(px_acl_req *ar, const kc_str *ids, const uint8_t *denied, int32_t n)
{
    int16_t v = ar->version;
    int flex = ar->flex;
    kc_wr w;
    kc_wr_init(&w, ar->out, NULL);
    kc_str empty = kc_str_c("");
    if (ar->key != KC_API_DESCRIBEGROUPS || v >= 1)
        kc_wr_i32(&w, 0);
    kc_wr_arraylen(&w, n, flex);
    for (int32_t i = 0; i < n; i++) {
        int16_t code = denied[i] ? KC_ERR_GROUP_AUTHORIZATION_FAILED : KC_ERR_INVALID_REQUEST;
        if (ar->key == KC_API_DELETEGROUPS) {
            kc_wr_string(&w, ids[i], flex);
            kc_wr_i16(&w, code);
        } else if (ar->key == KC_API_DESCRIBEGROUPS) {
            kc_wr_i16(&w, code);
            kc_wr_string(&w, ids[i], flex);
            kc_wr_string(&w, empty, flex); /* state */
            kc_wr_string(&w, empty, flex); /* protocol type */
            kc_wr_string(&w, empty, flex); /* protocol data */
            kc_wr_arraylen(&w, 0, flex);   /* members */
            if (v >= 3)
                kc_wr_i32(&w, INT32_MIN);
        } else { /* ConsumerGroupDescribe */
            kc_wr_i16(&w, code);
            kc_wr_string(&w, kc_str_c(NULL), flex);
            kc_wr_string(&w, ids[i], flex);
            kc_wr_string(&w, empty, flex); /* state */
            kc_wr_i32(&w, -1);             /* group epoch */
            kc_wr_i32(&w, -1);             /* assignment epoch */
            kc_wr_string(&w, empty, flex); /* assignor */
            kc_wr_arraylen(&w, 0, flex);   /* members */
            kc_wr_i32(&w, INT32_MIN);
        }
        if (flex)
            kc_wr_tags(&w, NULL);
    }
    if (flex)
        kc_wr_tags(&w, NULL);
    px_acl_respond(ar, &w);
}

/*
 * OffsetCommit, TxnOffsetCommit, AddPartitionsToTxn: every partition of the
 * request answered with an error: code_all, or, when 0, per topic
 * TOPIC_AUTHORIZATION_FAILED for a topic denied produce and
 * OPERATION_NOT_ATTEMPTED (55) for the others (AddPartitionsToTxn, as
 * Kafka answers). ar->rd stands at the topics array. 0, or -1 when the
 * request is malformed (ar->rd's error).
 */
static int px_acl_topics(px_acl_req *ar, int16_t code_all)
{
    int16_t v = ar->version, key = ar->key;
    int flex = ar->flex;
    kc_rd *rd = &ar->rd;
    kc_wr w;
    kc_wr_init(&w, ar->out, NULL);
    if (key != KC_API_OFFSETCOMMIT || v >= 3)
        kc_wr_i32(&w, 0);
    int32_t nt = kc_rd_arraylen(rd, flex, 0, 2);
    kc_wr_arraylen(&w, nt > 0 ? nt : 0, flex);
    for (int32_t t = 0; t < nt && rd->err == NULL; t++) {
        kc_str name = kc_rd_string(rd, flex);
        int16_t code = code_all;
        if (code == 0)
            code = PX_ACL_CHECK(ar, KZ_ACL_PRODUCE, KZ_ACL_TOPIC, name)
                       ? 55 /* OPERATION_NOT_ATTEMPTED */
                       : KC_ERR_TOPIC_AUTHORIZATION_FAILED;
        kc_wr_string(&w, name, flex);
        int32_t np = kc_rd_arraylen(rd, flex, 0, 4);
        kc_wr_arraylen(&w, np > 0 ? np : 0, flex);
        for (int32_t p = 0; p < np && rd->err == NULL; p++) {
            int32_t index = kc_rd_i32(rd);
            if (key == KC_API_OFFSETCOMMIT) {
                (void)kc_rd_i64(rd); /* committed offset */
                if (v >= 6)
                    (void)kc_rd_i32(rd); /* leader epoch */
                if (v == 1)
                    (void)kc_rd_i64(rd); /* commit timestamp */
                (void)kc_rd_nstring(rd, flex);
                if (flex)
                    kc_rd_tags(rd, NULL);
            } else if (key == KC_API_TXNOFFSETCOMMIT) {
                (void)kc_rd_i64(rd);
                if (v >= 2)
                    (void)kc_rd_i32(rd);
                (void)kc_rd_nstring(rd, flex);
                if (flex)
                    kc_rd_tags(rd, NULL);
            }
            kc_wr_i32(&w, index);
            kc_wr_i16(&w, code);
            if (flex)
                kc_wr_tags(&w, NULL);
        }
        if (flex) {
            kc_rd_tags(rd, NULL);
            kc_wr_tags(&w, NULL);
        }
    }
    if (flex)
        kc_wr_tags(&w, NULL);
    if (rd->err)
        return -1;
    px_acl_respond(ar, &w);
    return 0;
}

/* DescribeAcls, CreateAcls, DeleteAcls denied on the cluster: answered
 * with CLUSTER_AUTHORIZATION_FAILED (CreateAcls and DeleteAcls: in the
 * slot of each creation or filter). 0, or -1 when malformed. */
static int px_acl_acls(px_acl_req *ar)
{
    int flex = ar->flex;
    kc_wr w;
    kc_wr_init(&w, ar->out, NULL);
    kc_str msg = kc_str_c("kzproxy: the ACLs do not allow this principal this operation on the cluster");
    kc_wr_i32(&w, 0);
    if (ar->key == 29) {
        kc_wr_i16(&w, KC_ERR_CLUSTER_AUTHORIZATION_FAILED);
        kc_wr_string(&w, msg, flex);
        kc_wr_arraylen(&w, 0, flex); /* resources */
    } else {
        /* type, name, principal, host, operation, permission: 9 bytes at least */
        int32_t n = kc_rd_arraylen(&ar->rd, flex, 0, 9);
        if (ar->rd.err)
            return -1;
        kc_wr_arraylen(&w, n, flex);
        for (int32_t i = 0; i < n; i++) {
            kc_wr_i16(&w, KC_ERR_CLUSTER_AUTHORIZATION_FAILED);
            kc_wr_string(&w, msg, flex);
            if (ar->key == 31)
                kc_wr_arraylen(&w, 0, flex); /* matching ACLs */
            if (flex)
                kc_wr_tags(&w, NULL);
        }
    }
    if (flex)
        kc_wr_tags(&w, NULL);
    px_acl_respond(ar, &w);
    return 0;
}

/* Refuse a denied request kzproxy does not build an answer for. */
static void px_acl_refuse(px_acl_req *ar, const char *what)
{
    ar->verdict = PX_ACL_REFUSE;
    ar->why = what;
}

/*
 * ConsumerGroupHeartbeat (KIP-848), the group allowed: the backend resolves
 * the subscribed topic names under the proxy's identity, so, as Kafka does,
 * every name needs describe, else the heartbeat is answered with
 * TOPIC_AUTHORIZATION_FAILED. ar->rd stands after the group id. 1 when
 * answered, 0 to forward (or malformed: ar->rd.err). The regex form (v1)
 * cannot be checked here: README, Authorization.
 */
static int px_acl_cgh_topics(px_acl_req *ar)
{
    kc_rd *rd = &ar->rd;
    int flex = ar->flex;
    (void)kc_rd_string(rd, flex);  /* member id */
    (void)kc_rd_i32(rd);           /* member epoch */
    (void)kc_rd_nstring(rd, flex); /* instance id */
    (void)kc_rd_nstring(rd, flex); /* rack id */
    (void)kc_rd_i32(rd);           /* rebalance timeout */
    int32_t n = kc_rd_arraylen(rd, flex, 1, 1); /* subscribed topic names, null: unchanged */
    int denied = 0;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_str name = kc_rd_string(rd, flex);
        if (rd->err == NULL && !PX_ACL_CHECK(ar, KZ_ACL_DESCRIBE, KZ_ACL_TOPIC, name))
            denied++;
    }
    if (rd->err || denied == 0)
        return 0;
    px_acl_simple(ar, KC_ERR_TOPIC_AUTHORIZATION_FAILED);
    return 1;
}

/* The decision; ar->verdict and ar->out are filled where it answers or refuses. */
/* 1 when the request was decided here (a->verdict: answered or refused),
 * 0 to forward it (or malformed: a->rd.err). */
static int px_acl_pass_decide(px_acl_req *a)
{
    kc_rd *rd = &a->rd;
    int16_t v = a->version;
    int flex = a->flex;
    kc_str group = {NULL, -1}, txn = {NULL, -1};
    switch (a->key) {
    case KC_API_OFFSETCOMMIT:
        group = kc_rd_string(rd, flex);
        if (rd->err || PX_ACL_CHECK(a, KZ_ACL_CONSUME, KZ_ACL_GROUP, group))
            break;
        if (v >= 1) {
            (void)kc_rd_i32(rd);           /* generation */
            (void)kc_rd_string(rd, flex);  /* member id */
        }
        if (v >= 7)
            (void)kc_rd_nstring(rd, flex); /* group instance id */
        if (v >= 2 && v <= 4)
            (void)kc_rd_i64(rd); /* retention */
        if (rd->err == NULL && px_acl_topics(a, KC_ERR_GROUP_AUTHORIZATION_FAILED) == 0)
            return 1;
        break;
    case KC_API_OFFSETFETCH:
    case KC_API_JOINGROUP:
    case KC_API_HEARTBEAT:
    case KC_API_LEAVEGROUP:
    case KC_API_SYNCGROUP:
    case KC_API_CONSUMERGROUPHEARTBEAT:
    case 47: /* OffsetDelete */
        group = kc_rd_string(rd, flex);
        if (rd->err)
            break;
        if (PX_ACL_CHECK(a, a->key == 47 ? KZ_ACL_DELETE : KZ_ACL_CONSUME, KZ_ACL_GROUP, group)) {
            if (a->key == KC_API_CONSUMERGROUPHEARTBEAT)
                return px_acl_cgh_topics(a);
            break;
        }
        if (a->key == KC_API_OFFSETFETCH && v < 2)
            px_acl_refuse(a, "group");
        else
            px_acl_simple(a, KC_ERR_GROUP_AUTHORIZATION_FAILED);
        return 1;
    case KC_API_DESCRIBEGROUPS:
    case KC_API_DELETEGROUPS:
    case KC_API_CONSUMERGROUPDESCRIBE: {
        kz_acl_op op = a->key == KC_API_DELETEGROUPS ? KZ_ACL_DELETE : KZ_ACL_DESCRIBE;
        int32_t n = kc_rd_arraylen(rd, flex, 0, 1);
        if (rd->err || n > PX_ACL_MAXNAMES) {
            if (n > PX_ACL_MAXNAMES) {
                px_acl_refuse(a, "more group ids than kzproxy checks in one request: send at most 64");
                return 1;
            }
            break;
        }
        kc_str ids[PX_ACL_MAXNAMES];
        uint8_t denied[PX_ACL_MAXNAMES];
        int any = 0;
        for (int32_t i = 0; i < n && rd->err == NULL; i++)
            ids[i] = kc_rd_string(rd, flex);
        if (rd->err)
            break;
        for (int32_t i = 0; i < n; i++) {
            denied[i] = !PX_ACL_CHECK(a, op, KZ_ACL_GROUP, ids[i]);
            any |= denied[i];
        }
        if (!any)
            return 0;
        px_acl_groups(a, ids, denied, n);
        return 1;
    }
    case KC_API_TXNOFFSETCOMMIT: {
        txn = kc_rd_string(rd, flex);
        group = kc_rd_string(rd, flex);
        if (rd->err)
            break;
        int16_t code = 0;
        if (!PX_ACL_CHECK(a, KZ_ACL_PRODUCE, KZ_ACL_TRANSACTIONAL_ID, txn))
            code = KC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        else if (!PX_ACL_CHECK(a, KZ_ACL_CONSUME, KZ_ACL_GROUP, group))
            code = KC_ERR_GROUP_AUTHORIZATION_FAILED;
        if (code == 0)
            return 0;
        (void)kc_rd_i64(rd); /* producer id */
        (void)kc_rd_i16(rd); /* epoch */
        if (v >= 3) {
            (void)kc_rd_i32(rd);
            (void)kc_rd_string(rd, flex);
            (void)kc_rd_nstring(rd, flex);
        }
        if (rd->err == NULL && px_acl_topics(a, code) == 0)
            return 1;
        break;
    }
    case KC_API_INITPRODUCERID:
    case KC_API_ADDOFFSETSTOTXN:
    case KC_API_ENDTXN:
        txn = kc_rd_nstring(rd, flex);
        if (rd->err == NULL && txn.len < 0 && a->key != KC_API_INITPRODUCERID) {
            /* Only an idempotent producer's InitProducerId has no
             * transactional id: the broker would close the shared
             * connection on this one, so it is malformed here. */
            kc_rd_fail(rd, "null transactional id");
            break;
        }
        if (rd->err || txn.len < 0) /* InitProducerId of an idempotent producer: no transactional id */
            break;
        if (!PX_ACL_CHECK(a, KZ_ACL_PRODUCE, KZ_ACL_TRANSACTIONAL_ID, txn)) {
            px_acl_simple(a, KC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
            return 1;
        }
        if (a->key == KC_API_ADDOFFSETSTOTXN) {
            (void)kc_rd_i64(rd);
            (void)kc_rd_i16(rd);
            group = kc_rd_string(rd, flex);
            if (rd->err == NULL && !PX_ACL_CHECK(a, KZ_ACL_CONSUME, KZ_ACL_GROUP, group)) {
                px_acl_simple(a, KC_ERR_GROUP_AUTHORIZATION_FAILED);
                return 1;
            }
        }
        break;
    case KC_API_ADDPARTITIONSTOTXN: {
        txn = kc_rd_string(rd, flex);
        (void)kc_rd_i64(rd);
        (void)kc_rd_i16(rd);
        if (rd->err)
            break;
        if (!PX_ACL_CHECK(a, KZ_ACL_PRODUCE, KZ_ACL_TRANSACTIONAL_ID, txn)) {
            if (px_acl_topics(a, KC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED) == 0)
                return 1;
            break;
        }
        /* Every topic allowed: forward. A first pass without counting. */
        kc_rd probe = *rd;
        int32_t nt = kc_rd_arraylen(&probe, flex, 0, 2);
        int any = 0;
        for (int32_t t = 0; t < nt && probe.err == NULL; t++) {
            kc_str name = kc_rd_string(&probe, flex);
            any |= !a->ctx->allowed(a->ctx->arg, KZ_ACL_PRODUCE, KZ_ACL_TOPIC, name);
            int32_t np = kc_rd_arraylen(&probe, flex, 0, 4);
            for (int32_t p = 0; p < np && probe.err == NULL; p++)
                (void)kc_rd_i32(&probe);
            if (flex)
                kc_rd_tags(&probe, NULL);
        }
        if (probe.err) {
            *rd = probe;
            break;
        }
        if (!any)
            return 0;
        if (px_acl_topics(a, 0) == 0)
            return 1;
        break;
    }
    case 29: /* DescribeAcls */
    case 30: /* CreateAcls */
    case 31: /* DeleteAcls */
        if (PX_ACL_CHECK(a, a->key == 29 ? KZ_ACL_DESCRIBE : KZ_ACL_ALTER, KZ_ACL_CLUSTER, kc_str_c(NULL)))
            return 0;
        if (px_acl_acls(a) == 0)
            return 1;
        break;
    default:
        /* CreateTopics, DeleteTopics, CreatePartitions: per topic, and the
         * config requests: per resource, in px_pass.c (px_acl_split.c). */
        if (px_acl_split_applies(a->key) || a->key == KC_API_DESCRIBECONFIGS || a->key == 33 || a->key == 44)
            return 0;
        if (PX_ACL_CHECK(a, KZ_ACL_ALTER, KZ_ACL_CLUSTER, kc_str_c(NULL)))
            return 0;
        px_acl_refuse(a, "CLUSTER_AUTHORIZATION_FAILED");
        return 1;
    }
    return 0;
}

px_acl_verdict px_acl_pass_eval(const px_acl_pass_ctx *ctx, int16_t key, int16_t version, const uint8_t *body,
                                size_t len, struct evbuffer *out, const char **why, size_t *err_off)
{
    px_acl_req a = {ctx, key, version, kc_api_flexible(key, version), {0}, out, PX_ACL_FORWARD, NULL};
    kc_rd_init(&a.rd, body, len);
    if (px_acl_pass_decide(&a))
        a.verdict = a.verdict == PX_ACL_FORWARD ? PX_ACL_REFUSE : a.verdict;
    else if (a.rd.err)
        a.verdict = PX_ACL_MALFORMED;
    if (a.verdict == PX_ACL_MALFORMED) {
        *why = a.rd.err;
        *err_off = a.rd.err_off;
    } else {
        *why = a.why;
    }
    if (a.verdict != PX_ACL_ANSWER)
        evbuffer_drain(out, evbuffer_get_length(out));
    return a.verdict;
}
