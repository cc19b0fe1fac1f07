/*
 * ow_store_int: what the store backends share with the generic store code.
 * Private to objwal.
 */
#ifndef OW_STORE_INT_H
#define OW_STORE_INT_H

#include "objwal/ow_store.h"

typedef enum ow_op { OW_OP_PUT, OW_OP_GET, OW_OP_DELETE, OW_OP_LIST } ow_op;

extern const char *const ow_op_names[];

/* A request; backends allocate ops->req_size bytes and put their state after
 * this struct (it must be the first member). */
struct ow_req {
    ow_store *st;
    ow_op op;
    ow_store_cb cb;
    void *arg;
    char *key;               /* key, or the prefix of a LIST */
    char *token;             /* LIST continuation token, may be NULL */
    unsigned max_keys;       /* LIST page size */
    struct evbuffer *body;   /* PUT body, not owned */
    int64_t off;             /* GET range */
    uint64_t len;
    ow_store_tap tap;        /* GET: bytes as they land in the frame, may be NULL */
    void *tap_arg;
    struct ow_req *prev, *next; /* the store's pending list */
};

typedef struct ow_store_ops {
    size_t req_size;
    /* Start req; OW_OK, or an ow_err when it cannot start (req is then freed
     * by the caller and no callback runs). */
    int (*start)(ow_store *st, ow_req *req);
    /* Forget req's backend state (the request is being canceled or freed). */
    void (*cancel)(ow_store *st, ow_req *req);
    void (*destroy)(ow_store *st);
} ow_store_ops;

struct ow_store {
    const ow_store_ops *ops;
    struct event_base *base;
    ow_metrics metrics;
    char desc[256];
    ow_req *pending;   /* doubly linked list of requests in progress */
    void *impl;        /* backend state */
};

/* Deliver res to req's callback, then free req (backend state via cancel
 * hook not called: the backend has already released it). Counts errors. */
void ow_req_complete(ow_req *req, ow_result *res);

int ow_local_init(ow_store *st, const ow_local_config *cfg, char *errstr, size_t errstr_size);
int ow_s3_init(ow_store *st, const ow_s3_config *cfg, char *errstr, size_t errstr_size);

#endif
