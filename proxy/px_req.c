/*
 * A request's life on its client connection: answered (px_req_respond, or
 * the broker's own bytes with px_req_respond_frame), refused (px_req_reject:
 * the connection closes), and written in request order (px_client_flush),
 * as Kafka requires.
 */
#include "config.h"

#include "proxy/px_client_int.h"
#include "proxy/px_tls.h"
#include "proxy/px_worker.h"

#include "codec/kc_buf.h"
#include "common/kz_log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void px_req_reject(px_req *rq, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    px_client_bad(rq->cl, "%s (%s v%d, correlation id %d)", why, kc_api_name(rq->hdr.api_key),
                  rq->hdr.api_version, rq->hdr.correlation_id);
    if (!rq->done) {
        rq->done = 1;
        px_client_flush(rq->cl);
    }
}

/* Write completed responses in request order. */
void px_client_flush(px_client *cl)
{
    px_req *rq;
    if (cl->relay) { /* a shadow: the answers go back to the worker */
        px_worker_shadow_flush(cl);
        return;
    }
    cl->refcnt++; /* hold on while requests are freed */
    while ((rq = TAILQ_FIRST(&cl->reqs)) != NULL && rq->done) {
        TAILQ_REMOVE(&cl->reqs, rq, link);
        if (!cl->closed && rq->resp != NULL) {
            size_t n = evbuffer_get_length(rq->resp);
            cl->px->m.response_bytes += n;
            int rc;
            if (cl->tls && n <= PX_TLS_RECORD_MAX) {
                /* libevent's TLS layer makes a record (and a send) of each
                 * piece of the output: a small answer is copied into one,
                 * and answers in a row share it. */
                uint8_t b[PX_TLS_RECORD_MAX];
                evbuffer_copyout(rq->resp, b, n);
                rc = bufferevent_write(cl->bev, b, n);
            } else {
                rc = bufferevent_write_buffer(cl->bev, rq->resp);
            }
            if (rc != 0)
                px_client_bad(cl, "cannot queue a response (out of memory)");
        }
        cl->ninflight--;
        cl->inflight_bytes -= rq->frame->len;
        if (rq->resp)
            evbuffer_free(rq->resp);
        kc_frame_release(rq->frame);
        free(rq);
        px_client_release(cl);
    }
    if (cl->auth.close_after_flush && !cl->closed)
        bufferevent_disable(cl->bev, EV_READ);
    px_client_maybe_resume(cl);
    px_client_release(cl);
}

void px_req_respond(px_req *rq, struct evbuffer *body)
{
    if (body == NULL) {
        rq->no_response = 1;
    } else {
        kc_wr w;
        rq->resp = evbuffer_new();
        if (rq->resp == NULL) {
            px_req_reject(rq, "out of memory for the response");
            return;
        }
        kc_wr_init(&w, rq->resp, NULL);
        kc_resp_hdr_encode(&w, rq->hdr.correlation_id,
                           kc_resp_hdr_version(rq->hdr.api_key, rq->hdr.api_version));
        if (w.err || evbuffer_add_buffer(rq->resp, body) != 0 || kc_wr_frame_size(rq->resp) != 0) {
            px_req_reject(rq, "out of memory for the response");
            return;
        }
    }
    rq->done = 1;
    px_client_flush(rq->cl);
}

void px_req_respond_frame(px_req *rq, kc_frame *resp)
{
    /* [size][client's correlation id][the broker's bytes after its own] */
    kc_wr w;
    int rc = -1;
    if ((rq->resp = evbuffer_new()) != NULL) {
        kc_wr_init(&w, rq->resp, NULL);
        kc_wr_i32(&w, (int32_t)resp->len);
        kc_wr_i32(&w, rq->hdr.correlation_id);
        rc = w.err ? -1 : 0;
        if (rc == 0 && resp->len > 4)
            rc = kc_frame_add_ref(rq->resp, resp, resp->data + 4, resp->len - 4);
    }
    kc_frame_release(resp);
    if (rc != 0) {
        px_req_reject(rq, "out of memory for the response");
        return;
    }
    rq->done = 1;
    px_client_flush(rq->cl);
}
