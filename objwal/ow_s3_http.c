/*
 * S3 backend, HTTP plumbing: libcurl's multi interface driven by the
 * libevent loop (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION), and the
 * easy handle's callbacks: the PUT body read from its evbuffer, a ranged
 * GET's 206 body written straight into a frame, the object's size from
 * Content-Range.
 */
#include "config.h"

#include "objwal/ow_s3_int.h"

#include "common/kz_log.h"

#include "objwal/ow_format.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- libevent <-> curl multi glue ---- */

static void ow_s3_event_cb(evutil_socket_t fd, short what, void *arg)
{
    ow_s3 *s3 = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(s3->multi, fd, flags, &running);
    ow_s3_check_done(s3);
}

void ow_s3_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    ow_s3 *s3 = arg;
    int running;
    curl_multi_socket_action(s3->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    ow_s3_check_done(s3);
}

int ow_s3_sock_fn(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    ow_s3 *s3 = userp;
    ow_s3_sock *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL) {
            event_free(sk->ev);
            free(sk);
            curl_multi_assign(s3->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) |
                         EV_PERSIST);
    if (sk == NULL) {
        sk = calloc(1, sizeof(*sk));
        if (sk == NULL)
            return -1;
        curl_multi_assign(s3->multi, s, sk);
    } else {
        event_free(sk->ev);
    }
    sk->ev = event_new(s3->st->base, s, kind, ow_s3_event_cb, s3);
    if (sk->ev == NULL)
        return -1;
    event_add(sk->ev, NULL);
    return 0;
}

int ow_s3_timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    ow_s3 *s3 = userp;
    if (timeout_ms < 0) {
        evtimer_del(s3->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(s3->timer, &tv);
    return 0;
}

/* ---- curl easy callbacks ---- */

/* Hand the frame's bytes to resp by reference (once per attempt). */
int ow_s3_frame_to_resp(ow_s3_req *r)
{
    if (r->frame == NULL || r->frame_in_resp)
        return 0;
    r->frame->len = r->frame_used;
    r->frame_in_resp = 1;
    if (r->frame_used == 0)
        return 0;
    return kc_frame_add_ref(r->resp, r->frame, r->frame->data, r->frame_used);
}

void ow_s3_frame_drop(ow_s3_req *r)
{
    kc_frame_release(r->frame);
    r->frame = NULL;
    r->frame_used = 0;
    r->frame_in_resp = 0;
}

size_t ow_s3_write_fn(char *p, size_t size, size_t nmemb, void *arg)
{
    ow_s3_req *r = arg;
    size_t n = size * nmemb;
    if (r->frame_cap > 0 && r->frame == NULL && evbuffer_get_length(r->resp) == 0) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status == 206)
            r->frame = kc_frame_new((size_t)r->frame_cap); /* NULL: into resp after all */
        if (r->frame == NULL)
            r->frame_cap = 0;
    }
    if (r->frame != NULL && !r->frame_in_resp) {
        if (n <= r->frame_cap - r->frame_used) {
            memcpy(r->frame->data + r->frame_used, p, n);
            if (r->base.tap != NULL) /* while the bytes are in the cache */
                r->base.tap(r->base.tap_arg, r->frame_used, r->frame->data + r->frame_used, n);
            r->frame_used += n;
            return n;
        }
        /* More than the range: the rest goes after it in resp, capped below. */
        if (ow_s3_frame_to_resp(r) != 0)
            return 0;
        ow_s3_frame_drop(r);
        r->frame_cap = 0;
    }
    if (evbuffer_get_length(r->resp) + n > r->resp_cap)
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    if (evbuffer_add(r->resp, p, n) != 0)
        return 0;
    return n;
}

size_t ow_s3_read_fn(char *p, size_t size, size_t nmemb, void *arg)
{
    ow_s3_req *r = arg;
    size_t want = size * nmemb;
    ev_ssize_t got = evbuffer_copyout_from(r->base.body, &r->upos, p, want);
    if (got < 0)
        return CURL_READFUNC_ABORT;
    if (got > 0)
        evbuffer_ptr_set(r->base.body, &r->upos, (size_t)got, EVBUFFER_PTR_ADD);
    return (size_t)got;
}

int ow_s3_seek_fn(void *arg, curl_off_t off, int origin)
{
    ow_s3_req *r = arg;
    if (origin != SEEK_SET || off < 0 || (size_t)off > evbuffer_get_length(r->base.body))
        return CURL_SEEKFUNC_CANTSEEK;
    evbuffer_ptr_set(r->base.body, &r->upos, (size_t)off, EVBUFFER_PTR_SET);
    return CURL_SEEKFUNC_OK;
}

size_t ow_s3_header_fn(char *p, size_t size, size_t nmemb, void *arg)
{
    ow_s3_req *r = arg;
    size_t n = size * nmemb;
    static const char cr[] = "content-range:";
    if (n > sizeof(cr) && n < 256 && strncasecmp(p, cr, sizeof(cr) - 1) == 0) {
        char line[256];
        memcpy(line, p, n);
        line[n] = '\0';
        const char *slash = strchr(line, '/');
        if (slash != NULL && slash[1] >= '0' && slash[1] <= '9') {
            unsigned long long total = strtoull(slash + 1, NULL, 10);
            if (total <= OW_MAX_OBJECT)
                r->object_size = total;
        }
    }
    return n;
}
