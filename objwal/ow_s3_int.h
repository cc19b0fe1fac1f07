/*
 * ow_s3_int: the S3 backend's private state, shared by its files:
 *   ow_store_s3.c  requests: URL, headers, SigV4, one curl attempt; setup
 *   ow_s3_http.c   libcurl's multi interface on the libevent loop, and the
 *                  easy handle's body and header callbacks
 *   ow_s3_retry.c  an attempt's outcome: retry with jittered backoff within
 *                  the deadline, or finish the request
 *   ow_s3_xml.c    the XML S3 answers with: error bodies, ListObjectsV2
 * Private to objwal.
 */
#ifndef OW_S3_INT_H
#define OW_S3_INT_H

#include "objwal/ow_store_int.h"

#include "codec/kc_buf.h"

#include <curl/curl.h>
#include <event2/buffer.h>
#include <stdint.h>
#include <time.h>

#define OW_S3_ERRBODY_MAX (64 * 1024)
#define OW_S3_LIST_MAX (16 * 1024 * 1024)

typedef struct ow_s3 {
    ow_store *st;
    CURLM *multi;
    struct event *timer;
    char *bucket;
    char *scheme;     /* "http" or "https" */
    char *hostport;   /* endpoint host[:port] */
    char *host_hdr;   /* Host header: hostport, or bucket.hostport */
    char *url_base;   /* up to the key: "http://h:p/bucket" or "https://bucket.h" */
    char *uri_base;   /* canonical URI prefix: "/bucket" or "" */
    char *region, *access_key, *secret_key, *token;
    char *sse, *sse_kms_key_id; /* x-amz-server-side-encryption(-aws-kms-key-id) on PUT, or NULL */
    char *ca_file;              /* CURLOPT_CAINFO, or NULL: the system's CAs */
    int unsigned_payload;
    uint32_t deadline_ms, attempt_timeout_ms, connect_timeout_ms, backoff_base_ms, backoff_max_ms;
    uint64_t rng;
} ow_s3;

typedef struct ow_s3_sock {
    struct event *ev;
} ow_s3_sock;

typedef struct ow_s3_req {
    ow_req base;
    CURL *easy;
    int in_multi;
    struct curl_slist *hdrs;
    struct event *retry_ev;
    struct evbuffer *resp;
    uint64_t resp_cap;
    /* A ranged GET's 206 body goes straight into a frame of the range's
     * size, which resp then references (no second copy, ow_result.frame). */
    uint64_t frame_cap;  /* the range's length; 0: everything into resp */
    kc_frame *frame;
    size_t frame_used;
    int frame_in_resp;   /* resp references the frame's bytes */
    struct evbuffer_ptr upos;
    char payload_hash[65];
    uint64_t deadline_us;
    unsigned attempt;
    uint64_t object_size;
    int ranged;
    char errbuf[CURL_ERROR_SIZE];
    char lastmsg[768];
} ow_s3_req;

static inline uint64_t ow_s3_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- ow_store_s3.c ---- */
/* Start one attempt. Returns OW_OK or an ow_err (the attempt did not start). */
int ow_s3_attempt(ow_s3 *s3, ow_s3_req *r);
/* Remove and free the attempt's easy handle and its header list. */
void ow_s3_release_easy(ow_s3 *s3, ow_s3_req *r);
/* "PUT s3://bucket/key", for messages. */
void ow_s3_describe(ow_s3 *s3, ow_s3_req *r, char *out, size_t n);

/* ---- ow_s3_http.c ---- */
int ow_s3_sock_fn(CURL *e, curl_socket_t s, int what, void *userp, void *socketp);
int ow_s3_timer_fn(CURLM *multi, long timeout_ms, void *userp);
void ow_s3_timer_cb(evutil_socket_t fd, short what, void *arg);
size_t ow_s3_write_fn(char *p, size_t size, size_t nmemb, void *arg);
size_t ow_s3_read_fn(char *p, size_t size, size_t nmemb, void *arg);
int ow_s3_seek_fn(void *arg, curl_off_t off, int origin);
size_t ow_s3_header_fn(char *p, size_t size, size_t nmemb, void *arg);
/* curl's buffers for object bodies: PUT (at most 2 MiB in curl) and a
 * ranged GET of at least this much (at most 512 KiB before curl 7.88). */
#define OW_S3_UPLOAD_BUFFER (512L * 1024)
#define OW_S3_GET_BUFFER (256L * 1024)

/* Hand a ranged GET's frame to resp by reference (once per attempt); 0 or -1. */
int ow_s3_frame_to_resp(ow_s3_req *r);
void ow_s3_frame_drop(ow_s3_req *r);

/* ---- ow_s3_retry.c ---- */
/* Handle every finished transfer of the multi handle. */
void ow_s3_check_done(ow_s3 *s3);
/* Finish req with the outcome of its last attempt (req is freed). */
void ow_s3_finish(ow_s3 *s3, ow_s3_req *r, int err, long status, const char *msg);

/* ---- ow_s3_xml.c ---- */
typedef struct ow_s3_list {
    ow_list_entry *e;
    size_t n;
    char *next;
} ow_s3_list;

/* "Code: Message" of an S3 error body, into out ("" if none). */
void ow_s3_error_text(struct evbuffer *body, char *out, size_t n);
/* Parse a ListObjectsV2 result. Returns OW_OK or OW_ECORRUPT/OW_ENOMEM. */
int ow_s3_parse_list(struct evbuffer *body, unsigned max_keys, ow_s3_list *l);
void ow_s3_list_free(ow_s3_list *l);

#endif
