/*
 * px_acl.h: the decision on a forwarded request (px_acl_pass.c), kept free
 * of connections so the fuzz target can drive it. The checks on client
 * connections (px_acl_check, px_acl_pass) are in px_proxy.h.
 */
#ifndef PX_ACL_H
#define PX_ACL_H

#include "codec/kc_buf.h"
#include "common/kz_acl.h"

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

typedef struct px_acl_pass_ctx {
    /* 1 when allowed; a refusal is counted and logged by check, not by allowed */
    int (*check)(void *arg, kz_acl_op op, kz_acl_res res, kc_str name);
    int (*allowed)(void *arg, kz_acl_op op, kz_acl_res res, kc_str name);
    void *arg;
} px_acl_pass_ctx;

typedef enum px_acl_verdict {
    PX_ACL_FORWARD = 0, /* every resource allowed (or none named): forward */
    PX_ACL_ANSWER,      /* denied: out holds the response body with the error */
    PX_ACL_REFUSE,      /* denied, no answer built: close the connection (*why) */
    PX_ACL_MALFORMED,   /* the body does not parse (*why, at *err_off) */
} px_acl_verdict;

/* Decide the request body[0..len) of ApiKey key at version, one of the
 * forwarded APIs (px_pass.c; others are taken as admin requests on the
 * cluster). out gets the answer's body (drained unless PX_ACL_ANSWER). */
px_acl_verdict px_acl_pass_eval(const px_acl_pass_ctx *ctx, int16_t key, int16_t version, const uint8_t *body,
                                size_t len, struct evbuffer *out, const char **why, size_t *err_off);

/* ---- px_acl_split.c: per-topic decisions on CreateTopics, DeleteTopics,
 * CreatePartitions, OffsetCommit and OffsetFetch ---- */

typedef struct px_acl_ent {
    size_t off, len; /* the topic's entry in the request body */
    kc_str name;     /* null: a DeleteTopics v6 entry naming its topic by id */
    kc_uuid id;      /* DeleteTopics v6 */
    int16_t code;    /* 0: forwarded; else answered by kzproxy with this error */
} px_acl_ent;

typedef struct px_acl_split {
    int16_t key, version;
    int flex;
    int all_topics; /* OffsetFetch v2+ with null topics: the answer is filtered */
    int32_t n, ndenied;
    px_acl_ent *e;
    size_t arr_off, tail_off; /* the topics array's count; the bytes after it */
} px_acl_split;

/* 1 for the APIs px_acl_split_* handle. */
int px_acl_split_applies(int16_t key);
/* Read the topics of the request body[0..len) and decide each (ctx->check:
 * counted). 0, or -1 with *why (and *err_off when malformed). */
int px_acl_split_parse(px_acl_split *s, const px_acl_pass_ctx *ctx, int16_t key, int16_t version,
                       const uint8_t *body, size_t len, const char **why, size_t *err_off);
/* The request for the backend: the allowed topics only, byte for byte. */
int px_acl_split_request(const px_acl_split *s, const uint8_t *body, size_t len, struct evbuffer *out);
/* The client's response body: the backend's (resp[0..resp_len), after the
 * response header; NULL when nothing was forwarded) and a result with the
 * error for each denied topic. 0, or -1 with *why. */
int px_acl_split_response(const px_acl_split *s, const px_acl_pass_ctx *ctx, const uint8_t *body,
                          const uint8_t *resp, size_t resp_len, struct evbuffer *out, const char **why);
void px_acl_split_free(px_acl_split *s);

/* The error for one resource of DescribeConfigs/AlterConfigs/
 * IncrementalAlterConfigs (ConfigResource type, name), 0 when allowed. */
int16_t px_acl_config_code(const px_acl_pass_ctx *ctx, int16_t key, int8_t type, kc_str name);

/* Metadata naming topics[0..n): those ctx allows describe on go to create
 * (when allow_create, the client's flag, is set and ctx allows create on
 * the topic or on the cluster: the backend may auto-create them) or to
 * lookup (looked up, never created); the others to neither (the answer
 * refuses them). Not counted (ctx->allowed). create and lookup hold n. */
void px_acl_metadata_split(const px_acl_pass_ctx *ctx, const kc_str *topics, int n, int allow_create, kc_str *create,
                           int *ncreate, kc_str *lookup, int *nlookup);

#endif
