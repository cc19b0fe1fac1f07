/*
 * Cut-through of large Produce requests on the direct path: what and why in
 * px_cut.h.
 */
#include "config.h"

#include "proxy/px_cut.h"
#include "proxy/px_client_int.h"
#include "proxy/px_route_int.h"

#include "common/kz_log.h"
#include "meta-client/mc_conn.h"
#include "proxy/px_worker.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>

enum {
    PX_CUT_PARSING = 0, /* the partition list is not all here yet */
    PX_CUT_STREAMING,   /* dispatched, placed, its body streams to one broker */
    PX_CUT_PLACED,      /* dispatched and placed; sent once complete (px_produce_send) */
    PX_CUT_ANSWERED,    /* dispatched and already answered (refused, malformed header) */
};

struct px_cut {
    kc_frame *f;      /* the frame being received (cl->rx.f; the request holds a reference) */
    int state;
    px_split *sp;     /* STREAMING, PLACED */
    mc_conn *conn;    /* STREAMING: the client's own connection it goes on */
    uint64_t id;      /* STREAMING: the stream (0 once it failed) */
    size_t sent;      /* bytes of f handed to the stream */
    size_t last_got;  /* rx.got at the last step */
    int busy;         /* px_cut_progress runs: px_cut_drop only marks it dropped */
    int dropped;      /* the connection closed meanwhile: stop, px_cut_progress frees it */
};

int px_cut_private(const px_client *cl) { return cl->produce_private; }

void px_cut_begin(px_client *cl, int16_t key, kc_frame *f)
{
    px_proxy *px = cl->px;
    size_t min = px->cfg->limits.cut_through_min_bytes;
    if (key != KC_API_PRODUCE || min == 0 || f->len < min || cl->cut != NULL || cl->closed ||
        px_worker_relays_produce(px) || cl->relay != NULL || px->draining || !px_client_authenticated(cl) ||
        cl->auth.close_after_flush)
        return;
    struct px_cut *ct = calloc(1, sizeof(*ct));
    if (ct == NULL)
        return; /* read whole, as usual */
    ct->f = f;
    cl->cut = ct;
    cl->rx.turn_max = PX_CUT_STEP;
}

/* c is still one of cl's own connections (one that moved is freed). */
static int px_cut_conn_live(const px_client *cl, const mc_conn *c)
{
    for (int i = 0; i < cl->npriv; i++)
        if (cl->priv[i].conn == c)
            return 1;
    return 0;
}

/* The client's own connection to broker for rq, or NULL (no slot left, or
 * the switch to own connections would let rq overtake its earlier Produce
 * requests on the pooled one). */
static mc_conn *px_cut_conn(px_client *cl, px_req *rq, int32_t broker)
{
    if (!cl->produce_private) {
        px_req *o;
        TAILQ_FOREACH(o, &cl->reqs, link)
            if (o != rq && !o->done && o->hdr.api_key == KC_API_PRODUCE)
                return NULL;
    }
    mc_conn *c = px_client_conn(cl, broker, 1);
    return c != NULL && px_cut_conn_live(cl, c) ? c : NULL;
}

/* Hand the bytes up to got to the stream. */
static void px_cut_forward(px_client *cl, struct px_cut *ct, size_t got)
{
    if (got <= ct->sent)
        return;
    /* Pass on whole steps: over TLS a read callback brings a record or two
     * (16 KiB or less), and a write of each would cost the broker
     * connection a writev and two epoll_ctl calls per record. The rest goes
     * when the frame is complete (got == its length). */
    if (got < ct->f->len && got - ct->sent < PX_CUT_STEP)
        return;
    size_t from = ct->sent;
    ct->sent = got;
    if (ct->id == 0)
        return; /* the stream failed: the bytes are only read */
    if (!px_cut_conn_live(cl, ct->conn)) {
        ct->id = 0;
        return;
    }
    struct evbuffer *more = evbuffer_new();
    if (more == NULL || kc_frame_add_ref(more, ct->f, ct->f->data + from, got - from) != 0) {
        uint64_t id = ct->id;
        ct->id = 0;
        mc_conn_stream_abort(ct->conn, id, "out of memory");
    } else {
        uint64_t id = ct->id;
        ct->id = 0; /* while the connection's callbacks may run */
        if (mc_conn_stream_add(ct->conn, id, more) >= 0 && !ct->dropped)
            ct->id = id;
    }
    if (more)
        evbuffer_free(more);
}

/* The partition list may be in: dispatch, place, and stream if it can. */
static void px_cut_try(px_client *cl, struct px_cut *ct, size_t got)
{
    kc_frame *f = ct->f;
    kc_rd rd;
    kc_req_hdr hdr;
    kc_rd_init(&rd, f->data, got);
    if (kc_req_hdr_decode(&rd, &hdr) != 0)
        return; /* not all here; a bad one is refused once complete */
    size_t body_off = rd.off;
    kc_arena a;
    kc_produce_req tmp;
    kc_arena_init(&a);
    kc_rd_init(&rd, f->data + body_off, got - body_off);
    int r = kc_produce_req_decode_head(&rd, hdr.api_version, f->len - body_off, PX_CUT_BATCH_HEAD, &a, &tmp);
    kc_arena_destroy(&a);
    if (r != 0)
        return;

    /* Dispatched now; the frame's bytes count once, as the request's. */
    cl->inflight_bytes -= f->len;
    px_req *rq = px_dispatch_begin(cl, kc_frame_keep(f));
    if (ct->dropped)
        return; /* closed */
    if (rq == NULL) {
        ct->state = PX_CUT_ANSWERED;
        return;
    }
    /* A request still arriving must not hold the reader back (max in-flight
     * requests): it counts from its last byte. */
    cl->ninflight--;
    int32_t broker;
    px_split *sp = px_produce_cut_place(rq, got, &broker);
    if (sp == NULL) {
        ct->state = PX_CUT_ANSWERED;
        cl->ninflight++;
        px_req_reject(rq, "out of memory");
        return;
    }
    ct->sp = sp;
    ct->state = PX_CUT_PLACED;
    mc_conn *c = broker >= 0 ? px_cut_conn(cl, rq, broker) : NULL;
    if (c == NULL)
        return;
    struct evbuffer *first = evbuffer_new();
    if (first == NULL || kc_frame_add_ref(first, f, f->data + rq->body_off, got - rq->body_off) != 0) {
        if (first)
            evbuffer_free(first);
        return; /* sent whole once complete */
    }
    cl->produce_private = 1;
    ct->state = PX_CUT_STREAMING;
    ct->conn = c;
    ct->sent = got;
    cl->px->m.produce_cut_through++;
    int32_t corr = rq->hdr.correlation_id;
    uint64_t id = px_split_stream(sp, c, first, f->len - rq->body_off);
    evbuffer_free(first);
    if (ct->dropped)
        return;
    ct->id = id;
    kz_dbg("client %s: Produce correlation id %d streams to broker %d from byte %zu of %zu", cl->peer,
           corr, broker, got, f->len);
}

int px_cut_progress(px_client *cl, size_t start)
{
    struct px_cut *ct = cl->cut;
    for (;;) {
        if (ct == NULL || cl->closed || cl->rx.f != ct->f)
            return 0;
        size_t got = cl->rx.got;
        ct->busy = 1;
        if (ct->state == PX_CUT_PARSING)
            px_cut_try(cl, ct, got);
        else if (ct->state == PX_CUT_STREAMING)
            px_cut_forward(cl, ct, got);
        ct->busy = 0;
        if (ct->dropped) {
            free(ct);
            return 0;
        }
        if (cl->closed || cl->rx.f != ct->f || (ct->state != PX_CUT_PARSING && ct->state != PX_CUT_STREAMING))
            return 0;
        /* Read the next step while the socket has one (no more than
         * KC_RX_TURN_MAX in one loop turn, as for any frame). */
        if (got - start >= KC_RX_TURN_MAX || got == ct->last_got)
            return 0;
        ct->last_got = got;
        int r = kc_frame_rx_fill(&cl->rx, NULL, cl->tls ? -1 : bufferevent_getfd(cl->bev));
        if (r != 0)
            return r;
    }
}

int px_cut_complete(px_client *cl, kc_frame *f)
{
    struct px_cut *ct = cl->cut;
    if (ct == NULL)
        return 0;
    cl->cut = NULL;
    if (ct->state == PX_CUT_PARSING || ct->f != f) {
        free(ct);
        return 0;
    }
    kc_frame_release(f); /* the request holds its own reference */
    if (ct->state != PX_CUT_ANSWERED)
        cl->ninflight++; /* it counts from now (px_client_flush takes it off) */
    cl->refcnt++;
    char why[300];
    if (ct->state == PX_CUT_STREAMING) {
        px_cut_forward(cl, ct, f->len);
        if (px_produce_cut_full(ct->sp, why, sizeof(why)) != 0)
            px_client_bad(cl, "%s", why); /* closes its own broker connections, the stream's too */
        px_split_done(ct->sp); /* the last byte is in: the answer is all it waits for */
    } else if (ct->state == PX_CUT_PLACED) {
        if (px_produce_cut_full(ct->sp, why, sizeof(why)) == 0) {
            px_produce_send(ct->sp);
        } else {
            px_client_bad(cl, "%s", why);
            px_produce_cut_abort(ct->sp);
        }
    }
    free(ct);
    px_client_release(cl);
    return 1;
}

void px_cut_drop(px_client *cl)
{
    struct px_cut *ct = cl->cut;
    if (ct == NULL)
        return;
    cl->cut = NULL;
    if (ct->state != PX_CUT_PARSING && ct->state != PX_CUT_ANSWERED)
        cl->ninflight++;
    if (ct->state == PX_CUT_STREAMING) {
        cl->px->m.produce_cut_aborted++;
        if (ct->id != 0 && px_cut_conn_live(cl, ct->conn))
            mc_conn_stream_abort(ct->conn, ct->id, "the client closed its connection");
        px_split_done(ct->sp);
    } else if (ct->state == PX_CUT_PLACED) {
        px_produce_cut_abort(ct->sp);
    }
    ct->state = PX_CUT_ANSWERED;
    ct->dropped = 1;
    if (!ct->busy)
        free(ct);
}
