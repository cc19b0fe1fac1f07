/*
 * Worker threads' mailboxes (a mutex-protected FIFO and an eventfd), and the
 * requests workers relay to the main thread: the shadow connections they run
 * on and the answers that go back (px_worker.h has the model).
 */
#include "config.h"

#include "proxy/px_worker_int.h"

#include "codec/kc_peer.h"
#include "common/kz_log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

void px_msg_free(px_msg *m)
{
    if (m == NULL)
        return;
    if (m->kind == PX_MSG_ADOPT && m->fd >= 0)
        evutil_closesocket(m->fd);
    kc_frame_release(m->frame);
    if (m->resp)
        evbuffer_free(m->resp);
    free(m->text);
    free(m->nodes);
    free(m);
}

int px_mbox_init(px_mbox *mb, struct event_base *base, event_callback_fn cb, void *arg)
{
    pthread_mutex_init(&mb->mu, NULL);
    mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mb->efd < 0)
        return -1;
    mb->ev = event_new(base, mb->efd, EV_READ | EV_PERSIST, cb, arg);
    if (mb->ev == NULL || event_add(mb->ev, NULL) != 0)
        return -1;
    return 0;
}

/* Queue m for the owner; 0, or -1 when the owner is gone (m not taken). */
int px_mbox_post(px_mbox *mb, px_msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&mb->mu);
    if (mb->closed) {
        pthread_mutex_unlock(&mb->mu);
        return -1;
    }
    /* The owner reads the eventfd before it takes the queue, so a wake per
     * empty-to-non-empty step loses nothing. */
    int wake = mb->head == NULL;
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    pthread_mutex_unlock(&mb->mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t r = write(mb->efd, &one, sizeof(one));
        (void)r; /* EAGAIN: the counter is already non-zero */
    }
    return 0;
}

px_msg *px_mbox_take(px_mbox *mb, int close)
{
    uint64_t v;
    if (mb->efd >= 0) {
        ssize_t r = read(mb->efd, &v, sizeof(v));
        (void)r;
    }
    pthread_mutex_lock(&mb->mu);
    px_msg *m = mb->head;
    mb->head = mb->tail = NULL;
    if (close)
        mb->closed = 1;
    pthread_mutex_unlock(&mb->mu);
    return m;
}

/* The owner's last act: refuse further posts, drop what is queued. */
void px_mbox_close(px_mbox *mb)
{
    px_msg *m = px_mbox_take(mb, 1);
    while (m) {
        px_msg *next = m->next;
        px_msg_free(m);
        m = next;
    }
    if (mb->ev) {
        event_free(mb->ev);
        mb->ev = NULL;
    }
}

void px_mbox_destroy(px_mbox *mb)
{
    if (mb->efd >= 0)
        close(mb->efd);
    mb->efd = -1;
    pthread_mutex_destroy(&mb->mu);
}

/* ---------------- helpers ---------------- */

void px_worker_answer(px_msg *m)
{
    px_req *rq = m->rq;
    px_client *cl = rq->cl;
    if (m->text != NULL) {
        px_client_bad(cl, "%s", m->text);
    } else if (m->resp == NULL) {
        rq->no_response = 1;
    } else {
        rq->resp = m->resp;
        m->resp = NULL;
    }
    rq->done = 1;
    px_client_flush(cl);
}

int px_worker_relays_produce(const px_proxy *px)
{
    return px->worker != NULL && px->worker->main->rt != NULL; /* set before the workers start */
}

int px_worker_relay(px_req *rq)
{
    px_client *cl = rq->cl;
    px_worker *w = cl->px->worker;
    int16_t k = rq->hdr.api_key;
    if (!(k == KC_API_KZ_HELLO || k == KC_API_KZ_WAL_APPEND || (k == KC_API_PRODUCE && px_worker_relays_produce(cl->px))))
        return 0;
    px_msg *m = calloc(1, sizeof(*m));
    if (m == NULL || (cl->shadow == NULL && (cl->shadow = calloc(1, sizeof(*cl->shadow))) == NULL)) {
        free(m);
        px_req_reject(rq, "out of memory relaying a request to the main thread");
        return 1;
    }
    m->kind = PX_MSG_RELAY;
    m->w = w;
    m->rq = rq;
    m->shadow = cl->shadow;
    m->frame = kc_frame_keep(rq->frame);
    m->hdr = rq->hdr;
    m->body_off = rq->body_off;
    m->text = cl->principal ? strdup(cl->principal) : NULL;
    snprintf(m->zone, sizeof(m->zone), "%s", cl->zone);
    snprintf(m->peer, sizeof(m->peer), "%s", cl->peer);
    if ((cl->principal && m->text == NULL) || px_mbox_post(&w->set->box, m) != 0) {
        px_msg_free(m);
        px_req_reject(rq, "cannot relay a request to the main thread (out of memory or stopping)");
    }
    return 1;
}

void px_worker_shadow_drop(px_client *cl)
{
    px_worker *w = cl->px->worker;
    px_msg *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return; /* leaks the shadow: out of memory already */
    m->kind = PX_MSG_SHADOW_FREE;
    m->w = w;
    m->shadow = cl->shadow;
    cl->shadow = NULL;
    if (px_mbox_post(&w->set->box, m) != 0)
        px_msg_free(m);
}

/* ---------------- main side ---------------- */

static void px_shadow_noop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

void px_main_relay(px_proxy *px, px_msg *m)
{
    px_client *sh = m->shadow;
    if (sh->px == NULL) {
        sh->px = px;
        sh->relay = m->w;
        sh->refcnt = 1; /* the worker's connection's; dropped on SHADOW_FREE */
        sh->fd = -1;
        sh->zone_checked = 1;
        sh->auth.state = PX_AUTH_OK; /* the worker's gate let the request through */
        TAILQ_INIT(&sh->reqs);
        snprintf(sh->peer, sizeof(sh->peer), "%s", m->peer);
        sh->resume = event_new(px->base, -1, 0, px_shadow_noop, NULL);
    }
    if ((sh->principal == NULL) != (m->text == NULL) || (m->text && strcmp(sh->principal, m->text) != 0)) {
        free(sh->principal);
        sh->principal = m->text;
        m->text = NULL;
    }
    snprintf(sh->zone, sizeof(sh->zone), "%s", m->zone);
    px_req *srq = sh->resume ? calloc(1, sizeof(*srq)) : NULL;
    if (srq == NULL) {
        /* Refused: the message goes back as the answer (px_main_box_cb). */
        m->kind = PX_MSG_ANSWER;
        kc_frame_release(m->frame);
        m->frame = NULL;
        free(m->text);
        m->text = strdup("out of memory relaying a request");
        return;
    }
    srq->cl = sh;
    srq->frame = m->frame;
    m->frame = NULL;
    srq->hdr = m->hdr;
    srq->body_off = m->body_off;
    srq->relay_of = m->rq;
    sh->refcnt++;
    sh->ninflight++;
    sh->inflight_bytes += srq->frame->len;
    TAILQ_INSERT_TAIL(&sh->reqs, srq, link);
    if (srq->hdr.api_key == KC_API_PRODUCE)
        px_route_produce(srq);
    else
        px_peer_dispatch(srq);
}

void px_worker_shadow_bad(px_client *sh, const char *why)
{
    if (sh->relay_bad == NULL)
        sh->relay_bad = strdup(why);
    sh->closed = 1; /* px_client_conn gives no more broker connections */
}

void px_worker_shadow_flush(px_client *sh)
{
    px_worker *w = sh->relay;
    px_req *rq, *next;
    sh->refcnt++;
    for (rq = TAILQ_FIRST(&sh->reqs); rq != NULL; rq = next) {
        next = TAILQ_NEXT(rq, link);
        if (!rq->done)
            continue;
        TAILQ_REMOVE(&sh->reqs, rq, link);
        px_msg *m = calloc(1, sizeof(*m));
        if (m != NULL) {
            m->kind = PX_MSG_ANSWER;
            m->w = w;
            m->rq = rq->relay_of;
            if (rq->resp == NULL && !rq->no_response)
                m->text = strdup(sh->relay_bad ? sh->relay_bad : "request refused");
            m->resp = rq->resp;
            rq->resp = NULL;
            if (px_mbox_post(&w->box, m) != 0)
                px_msg_free(m);
        } else {
            kz_err("client %s: out of memory passing an answer back to worker %d; the connection stalls",
                   sh->peer, w->index);
        }
        sh->ninflight--;
        sh->inflight_bytes -= rq->frame->len;
        if (rq->resp)
            evbuffer_free(rq->resp);
        kc_frame_release(rq->frame);
        free(rq);
        px_client_release(sh);
    }
    px_client_release(sh);
}

void px_main_shadow_free(px_client *sh)
{
    if (sh == NULL)
        return;
    if (sh->px == NULL) {
        free(sh);
        return;
    }
    for (int i = 0; i < sh->npriv; i++)
        mc_conn_free(sh->priv[i].conn);
    sh->npriv = 0;
    free(sh->relay_bad);
    sh->relay_bad = NULL;
    px_client_release(sh);
}
