#include "config.h"

#include "objwal/ow_store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ow_op_names[] = {"PUT", "GET", "DELETE", "LIST"};

void ow_store_config_init(ow_store_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->backend = OW_BACKEND_LOCAL;
    cfg->s3.path_style = 1;
    cfg->s3.deadline_ms = 30000;
    cfg->s3.attempt_timeout_ms = 10000;
    cfg->s3.connect_timeout_ms = 3000;
    cfg->s3.backoff_base_ms = 100;
    cfg->s3.backoff_max_ms = 5000;
    cfg->s3.max_connections = 32;
}

int ow_key_valid(const char *key)
{
    if (key == NULL)
        return 0;
    size_t n = strlen(key);
    if (n == 0 || n > 1024 || key[0] == '/' || strstr(key, "..") != NULL || strstr(key, "//") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '/'))
            return 0;
    }
    return 1;
}

ow_store *ow_store_new(struct event_base *base, const ow_store_config *cfg, char *errstr,
                       size_t errstr_size)
{
    ow_store *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(errstr, errstr_size, "out of memory creating the object store");
        return NULL;
    }
    st->base = base;
    ow_metrics_init(&st->metrics);
    int rc;
    if (cfg->backend == OW_BACKEND_LOCAL) {
        rc = ow_local_init(st, &cfg->local, errstr, errstr_size);
    } else if (cfg->backend == OW_BACKEND_S3) {
        rc = ow_s3_init(st, &cfg->s3, errstr, errstr_size);
    } else {
        snprintf(errstr, errstr_size, "unknown object store backend %d", (int)cfg->backend);
        rc = OW_EINVAL;
    }
    if (rc != OW_OK) {
        free(st);
        return NULL;
    }
    return st;
}

static void ow_req_free(ow_req *req)
{
    free(req->key);
    free(req->token);
    free(req);
}

static void ow_req_unlink(ow_req *req)
{
    ow_store *st = req->st;
    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        st->pending = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
}

void ow_store_free(ow_store *st)
{
    if (st == NULL)
        return;
    while (st->pending != NULL)
        ow_req_cancel(st->pending);
    st->ops->destroy(st);
    free(st);
}

ow_metrics *ow_store_metrics(ow_store *st)
{
    return &st->metrics;
}

const char *ow_store_describe(const ow_store *st)
{
    return st->desc;
}

void ow_req_complete(ow_req *req, ow_result *res)
{
    ow_req_unlink(req);
    if (res->errmsg == NULL)
        res->errmsg = "";
    if (res->err != OW_OK && res->err < OW_ERR__COUNT)
        req->st->metrics.errors[res->err]++;
    req->cb(res, req->arg);
    ow_req_free(req);
}

void ow_req_cancel(ow_req *req)
{
    if (req == NULL)
        return;
    ow_req_unlink(req);
    req->st->ops->cancel(req->st, req);
    ow_req_free(req);
}

static ow_req *ow_req_start(ow_store *st, ow_op op, const char *key, ow_store_cb cb, void *arg)
{
    if (st == NULL || cb == NULL)
        return NULL;
    ow_req *req = calloc(1, st->ops->req_size);
    if (req == NULL)
        return NULL;
    req->st = st;
    req->op = op;
    req->cb = cb;
    req->arg = arg;
    req->key = strdup(key);
    if (req->key == NULL) {
        free(req);
        return NULL;
    }
    return req;
}

static ow_req *ow_req_go(ow_req *req)
{
    ow_store *st = req->st;
    req->next = st->pending;
    if (st->pending != NULL)
        st->pending->prev = req;
    st->pending = req;
    if (st->ops->start(st, req) != OW_OK) {
        ow_req_unlink(req);
        ow_req_free(req);
        return NULL;
    }
    return req;
}

ow_req *ow_store_put(ow_store *st, const char *key, struct evbuffer *body, ow_store_cb cb,
                     void *arg)
{
    if (!ow_key_valid(key) || body == NULL)
        return NULL;
    ow_req *req = ow_req_start(st, OW_OP_PUT, key, cb, arg);
    if (req == NULL)
        return NULL;
    req->body = body;
    return ow_req_go(req);
}

ow_req *ow_store_get_tap(ow_store *st, const char *key, int64_t off, uint64_t len,
                         ow_store_tap tap, void *tap_arg, ow_store_cb cb, void *arg)
{
    if (!ow_key_valid(key) || off == INT64_MIN)
        return NULL;
    ow_req *req = ow_req_start(st, OW_OP_GET, key, cb, arg);
    if (req == NULL)
        return NULL;
    req->off = off;
    req->len = len;
    req->tap = tap;
    req->tap_arg = tap_arg;
    return ow_req_go(req);
}

ow_req *ow_store_get(ow_store *st, const char *key, int64_t off, uint64_t len, ow_store_cb cb,
                     void *arg)
{
    return ow_store_get_tap(st, key, off, len, NULL, NULL, cb, arg);
}

ow_req *ow_store_delete(ow_store *st, const char *key, ow_store_cb cb, void *arg)
{
    if (!ow_key_valid(key))
        return NULL;
    ow_req *req = ow_req_start(st, OW_OP_DELETE, key, cb, arg);
    if (req == NULL)
        return NULL;
    return ow_req_go(req);
}

ow_req *ow_store_list(ow_store *st, const char *prefix, const char *token, unsigned max_keys,
                      ow_store_cb cb, void *arg)
{
    if (prefix == NULL)
        prefix = "";
    if (prefix[0] != '\0' && !ow_key_valid(prefix))
        return NULL;
    ow_req *req = ow_req_start(st, OW_OP_LIST, prefix, cb, arg);
    if (req == NULL)
        return NULL;
    if (token != NULL && (req->token = strdup(token)) == NULL) {
        ow_req_free(req);
        return NULL;
    }
    req->max_keys = max_keys == 0 || max_keys > 1000 ? 1000 : max_keys;
    return ow_req_go(req);
}
