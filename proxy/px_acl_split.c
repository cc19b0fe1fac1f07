/*
 * Per-topic authorization of the forwarded requests that name several
 * topics: CreateTopics, DeleteTopics, CreatePartitions (admin), OffsetCommit,
 * OffsetFetch, TxnOffsetCommit and OffsetDelete (group requests, whose
 * topics Kafka also authorizes: READ, here consume).
 *
 * px_acl_split_parse reads the request's topics (bounded reads, kc_rd) and
 * asks the check for each; a denied topic is taken out of the request that
 * goes to the backend (px_acl_split_request, the others' bytes copied as
 * they were) and answered by kzproxy: px_acl_split_response appends its
 * result, with TOPIC_AUTHORIZATION_FAILED, to the backend's results (or,
 * when every topic is denied, builds the whole response). An OffsetFetch of
 * all the group's topics (null topics) is forwarded whole and the topics
 * the principal may not consume are left out of the answer, as Kafka does.
 *
 * Nothing here touches a connection: px_pass.c applies it, and the fuzz
 * target (tests/fuzz/fuzz_acl_split.c) drives it directly.
 */
#include "config.h"

#include "proxy/px_acl.h"

#include "codec/kc_proto.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#define PX_SPLIT_OFFSETFETCH_MAXV 7 /* px_pass.c advertises v0-7 (one group per request) */
#define PX_API_OFFSETDELETE 47

static const char px_split_msg[] = "kzproxy: the ACLs do not allow this principal this operation on this topic";

int px_acl_split_applies(int16_t key)
{
    return key == KC_API_CREATETOPICS || key == KC_API_DELETETOPICS || key == KC_API_CREATEPARTITIONS ||
           key == KC_API_OFFSETCOMMIT || key == KC_API_OFFSETFETCH || key == KC_API_TXNOFFSETCOMMIT ||
           key == PX_API_OFFSETDELETE;
}

void px_acl_split_free(px_acl_split *s)
{
    free(s->e);
    s->e = NULL;
}

/* The operation a topic of the request needs, and the cluster-wide right
 * that covers every topic (KZ_ACL_NOPS: none). */
static kz_acl_op px_split_op(int16_t key, kz_acl_op *cluster_op)
{
    switch (key) {
    case KC_API_CREATETOPICS: *cluster_op = KZ_ACL_CREATE; return KZ_ACL_CREATE;
    case KC_API_DELETETOPICS: *cluster_op = KZ_ACL_DELETE; return KZ_ACL_DELETE;
    case KC_API_CREATEPARTITIONS: *cluster_op = KZ_ACL_ALTER; return KZ_ACL_ALTER;
    default: *cluster_op = KZ_ACL_NOPS; return KZ_ACL_CONSUME; /* the offset requests: READ */
    }
}

/* Skip one topic entry of the request at rd; its name (and DeleteTopics
 * v6's id) in *e. */
static void px_split_req_entry(kc_rd *rd, int16_t key, int16_t v, int flex, px_acl_ent *e)
{
    if (key == KC_API_DELETETOPICS) {
        if (v >= 6) {
            e->name = kc_rd_nstring(rd, flex);
            e->id = kc_rd_uuid(rd);
            if (flex)
                kc_rd_tags(rd, NULL);
        } else {
            e->name = kc_rd_string(rd, flex); /* an array of strings, no tags */
        }
        return;
    }
    e->name = kc_rd_string(rd, flex);
    switch (key) {
    case KC_API_CREATETOPICS: {
        (void)kc_rd_i32(rd); /* partitions */
        (void)kc_rd_i16(rd); /* replication factor */
        int32_t na = kc_rd_arraylen(rd, flex, 0, 5);
        for (int32_t i = 0; i < na && rd->err == NULL; i++) {
            (void)kc_rd_i32(rd);
            int32_t nb = kc_rd_arraylen(rd, flex, 0, 4);
            for (int32_t j = 0; j < nb && rd->err == NULL; j++)
                (void)kc_rd_i32(rd);
            if (flex)
                kc_rd_tags(rd, NULL);
        }
        int32_t nc = kc_rd_arraylen(rd, flex, 0, 2);
        for (int32_t i = 0; i < nc && rd->err == NULL; i++) {
            (void)kc_rd_string(rd, flex);
            (void)kc_rd_nstring(rd, flex);
            if (flex)
                kc_rd_tags(rd, NULL);
        }
        break;
    }
    case KC_API_CREATEPARTITIONS: {
        (void)kc_rd_i32(rd); /* count */
        int32_t na = kc_rd_arraylen(rd, flex, 1, 1);
        for (int32_t i = 0; i < na && rd->err == NULL; i++) {
            int32_t nb = kc_rd_arraylen(rd, flex, 0, 4);
            for (int32_t j = 0; j < nb && rd->err == NULL; j++)
                (void)kc_rd_i32(rd);
            if (flex)
                kc_rd_tags(rd, NULL);
        }
        break;
    }
    case KC_API_OFFSETCOMMIT:
    case KC_API_TXNOFFSETCOMMIT: {
        int32_t np = kc_rd_arraylen(rd, flex, 0, 14);
        for (int32_t i = 0; i < np && rd->err == NULL; i++) {
            (void)kc_rd_i32(rd); /* partition */
            (void)kc_rd_i64(rd); /* offset */
            if (key == KC_API_OFFSETCOMMIT ? v >= 6 : v >= 2)
                (void)kc_rd_i32(rd); /* leader epoch */
            if (key == KC_API_OFFSETCOMMIT && v == 1)
                (void)kc_rd_i64(rd); /* commit timestamp */
            (void)kc_rd_nstring(rd, flex);
            if (flex)
                kc_rd_tags(rd, NULL);
        }
        break;
    }
    default: { /* OffsetFetch, OffsetDelete: partition indexes */
        int32_t np = kc_rd_arraylen(rd, flex, 0, 4);
        for (int32_t i = 0; i < np && rd->err == NULL; i++)
            (void)kc_rd_i32(rd);
        break;
    }
    }
    if (flex)
        kc_rd_tags(rd, NULL);
}

int px_acl_split_parse(px_acl_split *s, const px_acl_pass_ctx *ctx, int16_t key, int16_t version,
                       const uint8_t *body, size_t len, const char **why, size_t *err_off)
{
    memset(s, 0, sizeof(*s));
    s->key = key;
    s->version = version;
    s->flex = kc_api_flexible(key, version);
    int flex = s->flex;
    *why = NULL;
    *err_off = 0;
    if (key == KC_API_OFFSETFETCH && version > PX_SPLIT_OFFSETFETCH_MAXV) {
        *why = "OffsetFetch v8+ is not split by kzproxy";
        return -1;
    }
    kc_rd rd;
    kc_rd_init(&rd, body, len);
    if (key == KC_API_OFFSETCOMMIT) {
        (void)kc_rd_string(&rd, flex); /* group id */
        if (version >= 1) {
            (void)kc_rd_i32(&rd);
            (void)kc_rd_string(&rd, flex);
        }
        if (version >= 7)
            (void)kc_rd_nstring(&rd, flex);
        if (version >= 2 && version <= 4)
            (void)kc_rd_i64(&rd);
    } else if (key == KC_API_TXNOFFSETCOMMIT) {
        (void)kc_rd_string(&rd, flex); /* transactional id */
        (void)kc_rd_string(&rd, flex); /* group id */
        (void)kc_rd_i64(&rd);          /* producer id */
        (void)kc_rd_i16(&rd);          /* producer epoch */
        if (version >= 3) {
            (void)kc_rd_i32(&rd);           /* generation */
            (void)kc_rd_string(&rd, flex);  /* member id */
            (void)kc_rd_nstring(&rd, flex); /* group instance id */
        }
    } else if (key == KC_API_OFFSETFETCH || key == PX_API_OFFSETDELETE) {
        (void)kc_rd_string(&rd, flex); /* group id */
    }
    s->arr_off = rd.off;
    int nullable = key == KC_API_OFFSETFETCH && version >= 2;
    int32_t n = kc_rd_arraylen(&rd, flex, nullable, 2);
    if (rd.err == NULL && n < 0) {
        s->all_topics = 1; /* OffsetFetch of every topic of the group */
        n = 0;
    }
    if (rd.err == NULL) {
        s->e = calloc((size_t)(n > 0 ? n : 1), sizeof(*s->e));
        if (s->e == NULL) {
            *why = "out of memory";
            return -1;
        }
    }
    for (int32_t i = 0; i < n && rd.err == NULL; i++) {
        px_acl_ent *e = &s->e[i];
        e->off = rd.off;
        px_split_req_entry(&rd, key, version, flex, e);
        e->len = rd.off - e->off;
        s->n = i + 1;
    }
    s->tail_off = rd.off;
    if (rd.err) {
        *why = rd.err;
        *err_off = rd.err_off;
        px_acl_split_free(s);
        return -1;
    }
    kz_acl_op cluster_op;
    kz_acl_op op = px_split_op(key, &cluster_op);
    if (n == 0 || (cluster_op != KZ_ACL_NOPS && ctx->allowed(ctx->arg, cluster_op, KZ_ACL_CLUSTER, kc_str_c(NULL))))
        return 0;
    for (int32_t i = 0; i < n; i++) {
        px_acl_ent *e = &s->e[i];
        /* A DeleteTopics v6 entry naming its topic by id only: kzproxy
         * cannot tell the name, so only the cluster-wide right covers it. */
        int ok = e->name.len >= 0 ? ctx->check(ctx->arg, op, KZ_ACL_TOPIC, e->name)
                                  : ctx->check(ctx->arg, cluster_op, KZ_ACL_CLUSTER, kc_str_c(NULL));
        if (!ok) {
            e->code = KC_ERR_TOPIC_AUTHORIZATION_FAILED;
            s->ndenied++;
        }
    }
    return 0;
}

int px_acl_split_request(const px_acl_split *s, const uint8_t *body, size_t len, struct evbuffer *out)
{
    kc_wr w;
    kc_wr_init(&w, out, NULL);
    kc_wr_raw(&w, body, s->arr_off);
    if (s->all_topics) {
        kc_wr_arraylen(&w, -1, s->flex);
    } else {
        kc_wr_arraylen(&w, s->n - s->ndenied, s->flex);
        for (int32_t i = 0; i < s->n; i++)
            if (s->e[i].code == 0)
                kc_wr_raw(&w, body + s->e[i].off, s->e[i].len);
    }
    kc_wr_raw(&w, body + s->tail_off, len - s->tail_off);
    return w.err ? -1 : 0;
}

/* The throttle time comes first in these responses from these versions. */
static int px_split_has_throttle(int16_t key, int16_t v)
{
    switch (key) {
    case KC_API_CREATETOPICS: return v >= 2;
    case KC_API_DELETETOPICS: return v >= 1;
    case KC_API_CREATEPARTITIONS: return 1;
    case KC_API_TXNOFFSETCOMMIT: return 1;
    case PX_API_OFFSETDELETE: return 0; /* error code, then throttle: px_acl_split_response */
    default: return v >= 3; /* OffsetCommit, OffsetFetch */
    }
}

/* Skip one result of the backend's response; its topic name in *name. */
static void px_split_resp_entry(kc_rd *rd, int16_t key, int16_t v, int flex, kc_str *name)
{
    *name = key == KC_API_DELETETOPICS && v >= 6 ? kc_rd_nstring(rd, flex) : kc_rd_string(rd, flex);
    switch (key) {
    case KC_API_CREATETOPICS:
        if (v >= 7)
            (void)kc_rd_uuid(rd);
        (void)kc_rd_i16(rd);
        if (v >= 1)
            (void)kc_rd_nstring(rd, flex);
        if (v >= 5) {
            (void)kc_rd_i32(rd);
            (void)kc_rd_i16(rd);
            int32_t nc = kc_rd_arraylen(rd, flex, 1, 5);
            for (int32_t i = 0; i < nc && rd->err == NULL; i++) {
                (void)kc_rd_string(rd, flex);
                (void)kc_rd_nstring(rd, flex);
                (void)kc_rd_bool(rd);
                (void)kc_rd_i8(rd);
                (void)kc_rd_bool(rd);
                if (flex)
                    kc_rd_tags(rd, NULL);
            }
        }
        break;
    case KC_API_DELETETOPICS:
        if (v >= 6)
            (void)kc_rd_uuid(rd);
        (void)kc_rd_i16(rd);
        if (v >= 5)
            (void)kc_rd_nstring(rd, flex);
        break;
    case KC_API_CREATEPARTITIONS:
        (void)kc_rd_i16(rd);
        (void)kc_rd_nstring(rd, flex);
        break;
    case KC_API_OFFSETCOMMIT:
    case KC_API_TXNOFFSETCOMMIT:
    case PX_API_OFFSETDELETE: {
        int32_t np = kc_rd_arraylen(rd, flex, 0, 6);
        for (int32_t i = 0; i < np && rd->err == NULL; i++) {
            (void)kc_rd_i32(rd);
            (void)kc_rd_i16(rd);
            if (flex)
                kc_rd_tags(rd, NULL);
        }
        break;
    }
    default: { /* OffsetFetch */
        int32_t np = kc_rd_arraylen(rd, flex, 0, 15);
        for (int32_t i = 0; i < np && rd->err == NULL; i++) {
            (void)kc_rd_i32(rd);
            (void)kc_rd_i64(rd);
            if (v >= 5)
                (void)kc_rd_i32(rd);
            (void)kc_rd_nstring(rd, flex);
            (void)kc_rd_i16(rd);
            if (flex)
                kc_rd_tags(rd, NULL);
        }
        break;
    }
    }
    if (flex)
        kc_rd_tags(rd, NULL);
}

/* kzproxy's result for a denied topic, from its request entry. */
static void px_split_write_denied(kc_wr *w, const px_acl_split *s, const px_acl_ent *e, const uint8_t *body)
{
    int16_t key = s->key, v = s->version;
    int flex = s->flex;
    kc_str msg = kc_str_c(px_split_msg);
    kc_wr_string(w, e->name, flex);
    switch (key) {
    case KC_API_CREATETOPICS:
        if (v >= 7)
            kc_wr_uuid(w, (kc_uuid){{0}});
        kc_wr_i16(w, e->code);
        if (v >= 1)
            kc_wr_string(w, msg, flex);
        if (v >= 5) {
            kc_wr_i32(w, -1);
            kc_wr_i16(w, -1);
            kc_wr_arraylen(w, -1, flex); /* configs: null */
        }
        break;
    case KC_API_DELETETOPICS:
        if (v >= 6)
            kc_wr_uuid(w, e->id);
        kc_wr_i16(w, e->code);
        if (v >= 5)
            kc_wr_string(w, msg, flex);
        break;
    case KC_API_CREATEPARTITIONS:
        kc_wr_i16(w, e->code);
        kc_wr_string(w, msg, flex);
        break;
    default: { /* the offset requests: every partition the request names */
        kc_rd rd;
        kc_rd_init(&rd, body + e->off, e->len);
        (void)kc_rd_string(&rd, flex);
        int32_t np = kc_rd_arraylen(&rd, flex, 0, 4);
        kc_wr_arraylen(w, np, flex);
        for (int32_t i = 0; i < np && rd.err == NULL; i++) {
            int32_t index = kc_rd_i32(&rd);
            if (key == KC_API_OFFSETCOMMIT || key == KC_API_TXNOFFSETCOMMIT) {
                (void)kc_rd_i64(&rd);
                if (key == KC_API_OFFSETCOMMIT ? v >= 6 : v >= 2)
                    (void)kc_rd_i32(&rd);
                if (key == KC_API_OFFSETCOMMIT && v == 1)
                    (void)kc_rd_i64(&rd);
                (void)kc_rd_nstring(&rd, flex);
                if (flex)
                    kc_rd_tags(&rd, NULL);
            }
            kc_wr_i32(w, index);
            if (key == KC_API_OFFSETFETCH) {
                kc_wr_i64(w, -1); /* committed offset */
                if (v >= 5)
                    kc_wr_i32(w, -1);
                kc_wr_string(w, kc_str_c(""), flex); /* metadata */
            }
            kc_wr_i16(w, e->code);
            if (flex)
                kc_wr_tags(w, NULL);
        }
        if (rd.err) /* parsed once already: cannot happen */
            kc_wr_fail(w, rd.err);
        break;
    }
    }
    if (flex)
        kc_wr_tags(w, NULL);
}

int px_acl_split_response(const px_acl_split *s, const px_acl_pass_ctx *ctx, const uint8_t *body,
                          const uint8_t *resp, size_t resp_len, struct evbuffer *out, const char **why)
{
    int16_t key = s->key, v = s->version;
    int flex = s->flex;
    int throttle_field = px_split_has_throttle(key, v);
    int head_error = key == PX_API_OFFSETDELETE; /* OffsetDelete: error code and throttle first */
    int16_t error_code = 0;
    int32_t throttle = 0, nback = 0;
    size_t arr_end = 0;
    kc_rd rd;
    struct {
        size_t off, len;
        int keep;
    } *back = NULL;
    int32_t nkeep = 0;
    *why = NULL;
    if (resp != NULL) {
        kc_rd_init(&rd, resp, resp_len);
        if (head_error) {
            error_code = kc_rd_i16(&rd);
            throttle = kc_rd_i32(&rd);
        }
        if (throttle_field)
            throttle = kc_rd_i32(&rd);
        nback = kc_rd_arraylen(&rd, flex, 1, 2);
        if (nback < 0)
            nback = 0; /* null (librdkafka's mock, OffsetFetch of all topics): none */
        back = rd.err ? NULL : calloc((size_t)(nback > 0 ? nback : 1), sizeof(*back));
        if (back == NULL) {
            *why = rd.err ? rd.err : "out of memory";
            return -1;
        }
        for (int32_t i = 0; i < nback && rd.err == NULL; i++) {
            kc_str name;
            back[i].off = rd.off;
            px_split_resp_entry(&rd, key, v, flex, &name);
            back[i].len = rd.off - back[i].off;
            /* Every topic of the group: those it may not read are left out. */
            back[i].keep = !s->all_topics || rd.err != NULL ||
                           ctx->allowed(ctx->arg, KZ_ACL_CONSUME, KZ_ACL_TOPIC, name);
            nkeep += back[i].keep;
        }
        arr_end = rd.off;
        if (rd.err) {
            free(back);
            *why = rd.err;
            return -1;
        }
    }
    kc_wr w;
    kc_wr_init(&w, out, NULL);
    if (head_error) {
        kc_wr_i16(&w, error_code);
        kc_wr_i32(&w, throttle);
    }
    if (throttle_field)
        kc_wr_i32(&w, throttle);
    kc_wr_arraylen(&w, nkeep + s->ndenied, flex);
    for (int32_t i = 0; i < nback; i++)
        if (back[i].keep)
            kc_wr_raw(&w, resp + back[i].off, back[i].len);
    for (int32_t i = 0; i < s->n; i++)
        if (s->e[i].code != 0)
            px_split_write_denied(&w, s, &s->e[i], body);
    if (resp != NULL) {
        kc_wr_raw(&w, resp + arr_end, resp_len - arr_end);
    } else {
        if (key == KC_API_OFFSETFETCH && v >= 2)
            kc_wr_i16(&w, 0); /* the top-level error */
        if (flex)
            kc_wr_tags(&w, NULL);
    }
    free(back);
    if (w.err) {
        *why = kc_wr_why(&w);
        return -1;
    }
    return 0;
}

int16_t px_acl_config_code(const px_acl_pass_ctx *ctx, int16_t key, int8_t type, kc_str name)
{
    kz_acl_op op = key == KC_API_DESCRIBECONFIGS ? KZ_ACL_DESCRIBE : KZ_ACL_ALTER;
    if (ctx->allowed(ctx->arg, op, KZ_ACL_CLUSTER, kc_str_c(NULL)))
        return 0;
    switch (type) {
    case 2: /* TOPIC */
        return ctx->check(ctx->arg, op, KZ_ACL_TOPIC, name) ? 0 : KC_ERR_TOPIC_AUTHORIZATION_FAILED;
    case 32: /* GROUP */
        return ctx->check(ctx->arg, op, KZ_ACL_GROUP, name) ? 0 : KC_ERR_GROUP_AUTHORIZATION_FAILED;
    default: /* BROKER, BROKER_LOGGER, CLIENT_METRICS, unknown: the cluster's */
        (void)ctx->check(ctx->arg, op, KZ_ACL_CLUSTER, kc_str_c(NULL)); /* counted and logged */
        return KC_ERR_CLUSTER_AUTHORIZATION_FAILED;
    }
}

void px_acl_metadata_split(const px_acl_pass_ctx *ctx, const kc_str *topics, int n, int allow_create, kc_str *create,
                           int *ncreate, kc_str *lookup, int *nlookup)
{
    *ncreate = *nlookup = 0;
    int cluster = allow_create && ctx->allowed(ctx->arg, KZ_ACL_CREATE, KZ_ACL_CLUSTER, kc_str_c(NULL));
    for (int i = 0; i < n; i++) {
        if (!ctx->allowed(ctx->arg, KZ_ACL_DESCRIBE, KZ_ACL_TOPIC, topics[i]))
            continue;
        if (allow_create && (cluster || ctx->allowed(ctx->arg, KZ_ACL_CREATE, KZ_ACL_TOPIC, topics[i])))
            create[(*ncreate)++] = topics[i];
        else
            lookup[(*nlookup)++] = topics[i];
    }
}
