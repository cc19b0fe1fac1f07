/*
 * S3 backend, retries: an attempt's outcome (curl's code, the HTTP status,
 * S3's error) becomes success, a retry after a jittered exponential backoff
 * while the operation's deadline leaves time for one more attempt, or the
 * request's final error.
 */
#include "config.h"

#include "objwal/ow_s3_int.h"

#include "common/kz_log.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t ow_s3_rand(ow_s3 *s3)
{
    /* xorshift64*: jitter only, not security. */
    uint64_t x = s3->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s3->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Finish req with the outcome of its last attempt. */
void ow_s3_finish(ow_s3 *s3, ow_s3_req *r, int err, long status, const char *msg)
{
    ow_req *req = &r->base;
    ow_result res = {.err = err, .errmsg = msg, .http_status = (int)status,
                     .attempts = r->attempt};
    ow_s3_list l = {0};
    struct evbuffer *body = r->resp;
    r->resp = NULL;
    ow_s3_release_easy(s3, r);
    char pmsg[512];
    if (err == OW_OK && req->op == OW_OP_GET) {
        res.body = body;
        res.object_size = r->object_size;
        if (r->frame != NULL && r->frame_in_resp && r->frame->len == evbuffer_get_length(body))
            res.frame = r->frame; /* 206: the body is the frame's bytes */
        s3->st->metrics.bytes_down += evbuffer_get_length(body);
        if (status == 200 && r->ranged) {
            /* The server ignored Range: cut the range out of the whole object. */
            uint64_t size = evbuffer_get_length(body), from, n;
            res.object_size = size;
            if (req->off < 0) {
                uint64_t want = (uint64_t)(-req->off);
                from = want > size ? 0 : size - want;
                n = size - from;
            } else {
                from = (uint64_t)req->off < size ? (uint64_t)req->off : size;
                n = size - from;
                if (req->len && req->len < n)
                    n = req->len;
            }
            evbuffer_drain(body, from);
            size_t have = evbuffer_get_length(body);
            if (have > n) {
                struct evbuffer *cut = evbuffer_new();
                if (cut != NULL) {
                    evbuffer_remove_buffer(body, cut, n);
                    evbuffer_free(body);
                    body = cut;
                    res.body = body;
                }
            }
        }
    } else if (err == OW_OK && req->op == OW_OP_LIST) {
        int rc = ow_s3_parse_list(body, req->max_keys, &l);
        if (rc != OW_OK) {
            res.err = rc;
            char d[1200];
            ow_s3_describe(s3, r, d, sizeof(d));
            snprintf(pmsg, sizeof(pmsg), "%.400s: unreadable ListObjectsV2 response", d);
            res.errmsg = pmsg;
        } else {
            res.entries = l.e;
            res.nentries = l.n;
            res.next_token = l.next;
        }
    } else if (err == OW_OK && req->op == OW_OP_PUT) {
        s3->st->metrics.bytes_up += evbuffer_get_length(req->body);
    }
    if (res.err != OW_OK)
        kz_dbg("objwal: %s", res.errmsg);
    kc_frame *frame = r->frame;
    r->frame = NULL;
    ow_req_complete(req, &res);
    ow_s3_list_free(&l);
    if (body != NULL)
        evbuffer_free(body);
    kc_frame_release(frame);
}

static void ow_s3_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    ow_s3_req *r = arg;
    ow_s3 *s3 = r->base.st->impl;
    event_free(r->retry_ev);
    r->retry_ev = NULL;
    int rc = ow_s3_attempt(s3, r);
    if (rc != OW_OK)
        ow_s3_finish(s3, r, rc, 0, "could not start a retry (out of memory)");
}

static int ow_curl_retryable(CURLcode c)
{
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

static void ow_s3_attempt_done(ow_s3 *s3, ow_s3_req *r, CURLcode code)
{
    ow_req *req = &r->base;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(s3->multi, r->easy);
    r->in_multi = 0;
    if (ow_s3_frame_to_resp(r) != 0 && code == CURLE_OK)
        code = CURLE_OUT_OF_MEMORY;

    char what[1200];
    ow_s3_describe(s3, r, what, sizeof(what));
    int err = OW_OK, retry = 0;
    char cause[512] = "";
    if (code != CURLE_OK) {
        retry = ow_curl_retryable(code);
        err = code == CURLE_OPERATION_TIMEDOUT ? OW_ETIMEOUT : OW_EIO;
        if (code == CURLE_WRITE_ERROR)
            snprintf(cause, sizeof(cause), "response larger than the %" PRIu64 " bytes expected",
                     r->resp_cap);
        else if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE)
            snprintf(cause, sizeof(cause), "%.300s (the endpoint's certificate does not verify: set "
                     "wal.store.ca_file to the CA that signed it, and check that it names the endpoint's host)",
                     r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
        else
            snprintf(cause, sizeof(cause), "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
    } else if (status >= 200 && status < 300) {
        err = OW_OK;
    } else {
        char s3err[512];
        ow_s3_error_text(r->resp, s3err, sizeof(s3err));
        snprintf(cause, sizeof(cause), "HTTP %ld%s%.480s", status, s3err[0] ? " " : "", s3err);
        if (status == 404)
            err = req->op == OW_OP_DELETE ? OW_OK : OW_ENOTFOUND;
        else if (status == 412)
            /* Our own earlier attempt may have landed before its answer was
             * lost: keys carry a random part, nobody else writes them. */
            err = req->op == OW_OP_PUT && r->attempt > 1 ? OW_OK : OW_EEXISTS;
        else if (status == 416)
            err = OW_ETRUNCATED;
        else if (status == 401 || status == 403)
            err = OW_EAUTH;
        else if (status >= 500 || status == 429 || status == 408)
            err = OW_ESERVER, retry = 1;
        else
            err = OW_ECLIENT;
    }
    if (err == OW_OK) {
        ow_s3_finish(s3, r, OW_OK, status, "");
        return;
    }
    snprintf(r->lastmsg, sizeof(r->lastmsg), "%.400s: %.360s", what, cause);
    if (retry) {
        uint64_t now = ow_s3_now_us();
        uint32_t shift = r->attempt < 16 ? r->attempt - 1 : 15;
        uint64_t cap = (uint64_t)s3->backoff_base_ms << shift;
        if (cap > s3->backoff_max_ms)
            cap = s3->backoff_max_ms;
        /* Equal jitter: half fixed, half random, so waits still grow. */
        uint64_t wait_ms = cap / 2 + (cap ? ow_s3_rand(s3) % (cap / 2 + 1) : 0);
        /* Retry only if the attempt after the wait still has a useful time to
         * run: one started with a millisecond left can only time out, and
         * its timeout would replace the real cause in the final error. */
        uint64_t min_attempt_ms = s3->attempt_timeout_ms < 50 ? s3->attempt_timeout_ms : 50;
        if (now + (wait_ms + min_attempt_ms) * 1000 < r->deadline_us) {
            s3->st->metrics.retries++;
            kz_dbg("objwal: %s; retry %u in %" PRIu64 " ms", r->lastmsg, r->attempt, wait_ms);
            curl_easy_cleanup(r->easy);
            r->easy = NULL;
            curl_slist_free_all(r->hdrs);
            r->hdrs = NULL;
            r->retry_ev = evtimer_new(s3->st->base, ow_s3_retry_cb, r);
            if (r->retry_ev != NULL) {
                struct timeval tv = {(time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000};
                evtimer_add(r->retry_ev, &tv);
                return;
            }
        }
        char msg[1200];
        snprintf(msg, sizeof(msg), "%.400s: gave up after %u attempts as the %" PRIu32
                 " ms deadline passed; last error: %s", what, r->attempt, s3->deadline_ms, cause);
        ow_s3_finish(s3, r, OW_ETIMEOUT, status, msg);
        return;
    }
    ow_s3_finish(s3, r, err, status, r->lastmsg);
}

void ow_s3_check_done(ow_s3 *s3)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s3->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        ow_s3_req *r = NULL;
        CURLcode code = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r != NULL)
            ow_s3_attempt_done(s3, r, code);
    }
}
