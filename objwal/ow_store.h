/*
 * ow_store: one object-store interface, two backends.
 *
 *  - OW_BACKEND_S3: any S3-compatible store. libcurl's multi interface runs
 *    on the caller's libevent loop; requests are signed with SigV4 (OpenSSL);
 *    path-style or virtual-host addressing; PUT carries If-None-Match: * so
 *    an object is never overwritten; GETs are ranged. Retryable failures (5xx,
 *    503 SlowDown, 429, timeouts, refused or reset connections) are retried
 *    with jittered exponential backoff until the operation's deadline.
 *  - OW_BACKEND_LOCAL: a directory on one machine. PUT writes a temporary
 *    file, fsyncs it, links it into place (failing if the key exists) and
 *    fsyncs the directory. The file I/O runs on the loop's thread (short,
 *    local writes), but callbacks are always deferred to the loop.
 *
 * Calling convention for every request: the function returns a handle, or
 * NULL when the request could not even be queued (bad argument, out of
 * memory); its callback then never runs. Otherwise the callback runs exactly
 * once, later, from the event loop (never from inside the call), unless the
 * request is canceled first. The handle is valid until the callback returns
 * or ow_req_cancel is called; do not use it after.
 *
 * Keys: 1..1024 bytes of [A-Za-z0-9._-/], not starting with '/', no ".." and no "//"; the local
 * store also refuses "." components and its own ".tmp/" directory.
 */
#ifndef OW_STORE_H
#define OW_STORE_H

#include "objwal/ow_metrics.h"
#include "objwal/ow_types.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;

typedef struct ow_store ow_store;
typedef struct ow_req ow_req;

typedef enum ow_backend { OW_BACKEND_LOCAL = 1, OW_BACKEND_S3 = 2 } ow_backend;

typedef struct ow_local_config {
    const char *root;          /* directory holding the objects (created if missing) */
    int no_fsync;              /* 1 skips fsync (tests only: loses durability) */
} ow_local_config;

/* The longest session token the store sends (STS tokens are well below):
 * a longer one is refused at setup, never cut short. */
#define OW_S3_MAX_TOKEN 4096

typedef struct ow_s3_config {
    const char *bucket;        /* required */
    const char *endpoint;      /* "http://127.0.0.1:4568", "https://s3.eu-west-1.amazonaws.com";
                                * NULL: https://s3.<region>.amazonaws.com */
    const char *region;        /* NULL: $AWS_REGION, $AWS_DEFAULT_REGION, else "us-east-1" */
    int path_style;            /* 1: <endpoint>/<bucket>/<key>; 0: <bucket>.<endpoint host>/<key> */
    const char *access_key;    /* NULL: $AWS_ACCESS_KEY_ID */
    const char *secret_key;    /* NULL: $AWS_SECRET_ACCESS_KEY */
    const char *session_token; /* NULL: $AWS_SESSION_TOKEN (optional); at most OW_S3_MAX_TOKEN bytes */
    int unsigned_payload;      /* 1: send UNSIGNED-PAYLOAD instead of hashing bodies */
    uint32_t deadline_ms;      /* whole operation, retries included (default 30000) */
    uint32_t attempt_timeout_ms; /* one HTTP attempt (default 10000) */
    uint32_t connect_timeout_ms; /* TCP+TLS connect (default 3000) */
    uint32_t backoff_base_ms;  /* first retry waits up to this (default 100) */
    uint32_t backoff_max_ms;   /* cap of one wait (default 5000) */
    uint32_t max_connections;  /* concurrent connections (default 32) */
    const char *sse;           /* server-side encryption of PUTs: NULL (the bucket's default),
                                * "AES256" (SSE-S3) or "aws:kms" (SSE-KMS) */
    const char *sse_kms_key_id; /* with "aws:kms": the KMS key id or ARN (required) */
    const char *ca_file;       /* https: PEM CAs to verify the endpoint against (NULL: the
                                * system's); verification is always on */
} ow_s3_config;

typedef struct ow_store_config {
    ow_backend backend;
    ow_local_config local;
    ow_s3_config s3;
} ow_store_config;

/* Fill cfg with the defaults (backend local, root NULL). */
void ow_store_config_init(ow_store_config *cfg);

/*
 * Create a store on base (not owned; must outlive the store). Strings in cfg
 * are copied. Returns NULL with a sentence in errstr when the configuration
 * is incomplete (no bucket, no credentials, root not creatable...).
 */
ow_store *ow_store_new(struct event_base *base, const ow_store_config *cfg, char *errstr,
                       size_t errstr_size);

/* Cancel every pending request (their callbacks do not run) and free.
 * Not from inside one of the store's callbacks. */
void ow_store_free(ow_store *st);

/* The store's counters (owned by the store). */
ow_metrics *ow_store_metrics(ow_store *st);
/* A short description for logs: "s3://bucket (endpoint)" or "local:/dir". */
const char *ow_store_describe(const ow_store *st);

/* res and everything it points to live until the callback returns. */
typedef void (*ow_store_cb)(const ow_result *res, void *arg);

/*
 * Store body under key unless the key exists (OW_EEXISTS). body is not
 * owned and is not drained: keep it unchanged until the callback or cancel.
 */
ow_req *ow_store_put(ow_store *st, const char *key, struct evbuffer *body, ow_store_cb cb,
                     void *arg);

/*
 * Read part of an object:
 *   off >= 0, len > 0:  bytes [off, off+len) (fewer if the object is shorter)
 *   off >= 0, len == 0: from off to the end
 *   off < 0:            the last -off bytes (len ignored)
 * res->body holds the bytes; res->object_size the whole size when known.
 * res->frame, when not NULL, holds the same bytes (the local store always,
 * S3 for a 206 answer to off >= 0, len > 0): keep it to use them without a
 * copy (the reader does).
 * A range starting at or past the end gives OW_ETRUNCATED; no key, OW_ENOTFOUND.
 */
ow_req *ow_store_get(ow_store *st, const char *key, int64_t off, uint64_t len, ow_store_cb cb,
                     void *arg);

/*
 * A GET's bytes as they land in res->frame, while they are still in the
 * cache: tap(tap_arg, at, p, n) says that bytes [at, at+n) of the body are
 * p. Calls come in order; an S3 retry starts again at 0, and bytes that do
 * not go into the frame are not shown (res->frame is then NULL or shorter).
 * The reader checks each slice's CRC32C so instead of in a second pass.
 */
typedef void (*ow_store_tap)(void *tap_arg, uint64_t at, const uint8_t *p, size_t n);
ow_req *ow_store_get_tap(ow_store *st, const char *key, int64_t off, uint64_t len,
                         ow_store_tap tap, void *tap_arg, ow_store_cb cb, void *arg);

/* Delete key; deleting a missing key succeeds (as in S3). */
ow_req *ow_store_delete(ow_store *st, const char *key, ow_store_cb cb, void *arg);

/*
 * List one page (at most max_keys, capped at 1000) of the keys starting with
 * prefix, in key order, after the page named by token (NULL for the first).
 */
ow_req *ow_store_list(ow_store *st, const char *prefix, const char *token, unsigned max_keys,
                      ow_store_cb cb, void *arg);

/* Cancel a pending request: its callback will not run. */
void ow_req_cancel(ow_req *req);

/* 1 if key is acceptable to the stores (see above). */
int ow_key_valid(const char *key);

#endif
