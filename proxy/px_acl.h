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

#endif
