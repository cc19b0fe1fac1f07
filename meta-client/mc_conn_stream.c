/*
 * mc_conn streams (cut-through): a request written before its whole body is
 * here. The header and the first body bytes go out like any request; while
 * such a frame is on the wire and incomplete (c->open), mc_conn_pump writes
 * nothing else, so no other request can land inside it. Requests queued
 * meanwhile wait. If the source of the body goes away mid-frame, the
 * connection is closed (mc_conn_stream_abort): the broker drops a frame cut
 * short by the end of its connection, and every request that was on that
 * connection fails as on any connection loss.
 *
 * Callers name a stream by the id mc_conn_stream_open returned, never by a
 * pointer: a stream that failed (its callback ran) is simply not found.
 */
#include "config.h"

#include "meta-client/mc_conn_int.h"

#include "codec/kc_msg.h"
#include "codec/kc_proto.h"
#include "common/kz_log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>

static uint64_t mc_stream_next_id = 1; /* shared by the worker threads: atomic */

/* The stream's request if it is still queued or on the wire; NULL if it failed. */
static mc_pending *mc_stream_find(mc_conn *c, uint64_t id, int *written)
{
    *written = 0;
    if (id == 0)
        return NULL;
    if (c->open != NULL && c->open->stream_id == id) {
        *written = 1;
        return c->open;
    }
    mc_pending *p;
    TAILQ_FOREACH(p, &c->waiting, link)
        if (p->stream_id == id)
            return p;
    return NULL;
}

uint64_t mc_conn_stream_open(mc_conn *c, int16_t api_key, int16_t version, kc_str client_id,
                             struct evbuffer *body, size_t body_len, mc_resp_fn fn, void *arg)
{
    int64_t now = kz_mono_ms();
    size_t have = evbuffer_get_length(body);
    if (c->doomed || (c->state == MC_DOWN && now < c->backoff_until_ms) || have > body_len ||
        body_len > INT32_MAX / 2)
        return 0;
    mc_pending *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return 0;
    p->frame = evbuffer_new();
    if (p->frame == NULL) {
        free(p);
        return 0;
    }
    p->corr = c->next_corr++;
    if (c->next_corr == INT32_MAX)
        c->next_corr = 1;
    p->api_key = api_key;
    p->version = version;
    p->expect_response = 1;
    p->deadline_ms = now + c->cfg.request_timeout_ms;
    p->fn = fn;
    p->arg = arg;
    p->stream_id = __atomic_fetch_add(&mc_stream_next_id, 1, __ATOMIC_RELAXED);
    p->stream_left = body_len - have;
    kc_req_hdr h = {.api_key = api_key, .api_version = version, .correlation_id = p->corr,
                    .client_id = client_id};
    kc_wr w;
    kc_wr_init(&w, p->frame, NULL);
    kc_req_hdr_encode(&w, &h);
    size_t n = evbuffer_get_length(p->frame) + body_len;
    uint8_t sz[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    if (w.err || n > INT32_MAX || evbuffer_prepend(p->frame, sz, 4) != 0 ||
        evbuffer_add_buffer(p->frame, body) != 0) {
        mc_pending_free(p);
        return 0;
    }
    if (c->stats)
        c->stats->requests++;
    TAILQ_INSERT_TAIL(&c->waiting, p, link);
    c->npending++;
    uint64_t id = p->stream_id;
    if (c->state == MC_DOWN)
        mc_conn_connect(c);
    else
        mc_conn_pump(c);
    return id;
}

int mc_conn_stream_add(mc_conn *c, uint64_t id, struct evbuffer *more)
{
    int written;
    mc_pending *p = mc_stream_find(c, id, &written);
    if (p == NULL)
        return -1;
    size_t n = evbuffer_get_length(more);
    if (n > p->stream_left) {
        kz_err("broker %d (%s:%d): a streamed request got %zu bytes more than its size, closing the connection",
               c->broker_id, c->host, c->port, n - p->stream_left);
        mc_conn_fail_all(c, "streamed request longer than announced", 0);
        return -1;
    }
    if (!written) {
        if (evbuffer_add_buffer(p->frame, more) != 0) {
            mc_conn_stream_abort(c, id, "out of memory");
            return -1;
        }
        p->stream_left -= n;
        return p->stream_left > 0;
    }
    if (bufferevent_write_buffer(c->bev, more) != 0) {
        mc_conn_fail_all(c, "write to broker failed", 0);
        return -1;
    }
    if (c->stats)
        c->stats->bytes_out += n;
    mc_xz_count(c->xz, MC_XZ_OUT, c->xz_kind, p->api_key, n);
    p->stream_left -= n;
    /* The request's time runs from its last byte, as for any request. */
    p->deadline_ms = kz_mono_ms() + c->cfg.request_timeout_ms;
    if (p->stream_left > 0)
        return 1;
    c->open = NULL;
    mc_conn_pump(c); /* what queued behind it */
    return 0;
}

void mc_conn_stream_abort(mc_conn *c, uint64_t id, const char *why)
{
    int written;
    mc_pending *p = mc_stream_find(c, id, &written);
    if (p == NULL)
        return;
    if (written) {
        kz_info("broker %d (%s:%d): closing the connection: %s in the middle of a streamed %s request",
                c->broker_id, c->host, c->port, why, kc_api_name(p->api_key));
        mc_conn_fail_all(c, why, 0);
        return;
    }
    TAILQ_REMOVE(&c->waiting, p, link);
    c->npending--;
    if (c->stats)
        c->stats->failures++;
    c->busy++;
    p->fn(NULL, why, p->arg);
    c->busy--;
    mc_pending_free(p);
}
