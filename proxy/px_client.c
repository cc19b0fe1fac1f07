#include "config.h"

#include "proxy/px_client_int.h"
#include "proxy/px_cut.h"
#include "proxy/px_tls.h"
#include "proxy/px_tls_sock.h"

#include "codec/kc_peer.h"
#include "proxy/px_sasl.h"
#include "proxy/px_worker.h"

#include "common/kz_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes of a frame kzproxy must see before it accepts the frame: the size,
 * ApiKey, ApiVersion and correlation id. */
#define PX_PEEK 12

/* Frames up to this size are read straight from the socket into their
 * kc_frame once the header is checked (Produce requests are about 1 MB at
 * clients' defaults); larger ones accumulate in the input buffer first. */
#define PX_RX_DIRECT_MAX ((size_t)16 << 20)


const char *px_client_zone(const px_client *cl) { return cl->zone; }
const char *px_client_peer(const px_client *cl) { return cl->peer; }
px_proxy *px_client_proxy(const px_client *cl) { return cl->px; }
const char *px_client_principal(const px_client *cl) { return cl->principal; }
int px_client_authenticated(const px_client *cl)
{
    return cl->px->csasl == NULL || cl->auth.state == PX_AUTH_OK;
}
int px_client_set_principal(px_client *cl, const char *principal)
{
    char *p = strdup(principal);
    if (p == NULL)
        return -1;
    free(cl->principal);
    cl->principal = p;
    return 0;
}
struct px_fetch_replicas **px_client_fetch_replicas(px_client *cl) { return cl->closed ? NULL : &cl->fetch_replicas; }
struct px_seq_marks **px_client_seq_marks(px_client *cl) { return cl->closed ? NULL : &cl->seq_marks; }

void px_client_release(px_client *cl)
{
    if (--cl->refcnt > 0)
        return;
    if (cl->shadow)
        px_worker_shadow_drop(cl);
    px_fetch_replicas_free(cl->fetch_replicas);
    px_seq_marks_free(cl->seq_marks);
    px_client_auth_free(&cl->auth);
    event_free(cl->resume);
    free(cl->principal);
    free(cl);
}

void px_client_close(px_client *cl)
{
    if (cl->closed)
        return;
    cl->closed = 1;
    px_cut_drop(cl); /* before its own broker connections go */
    kc_frame_rx_drop(&cl->rx);
    if (cl->bev) {
        if (cl->tls)
            px_tls_sock_close(bufferevent_openssl_get_ssl(cl->bev));
        bufferevent_free(cl->bev);
        cl->bev = NULL;
    }
    if (cl->sniff) {
        event_free(cl->sniff);
        cl->sniff = NULL;
        evutil_closesocket(cl->fd);
    }
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        cl->px->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    cl->next = cl->prev = NULL;
    /* Fails what is pending on them: those requests complete (unsent) and
     * drop their references; ours keeps cl alive meanwhile. */
    for (int i = 0; i < cl->npriv; i++)
        mc_conn_free(cl->priv[i].conn);
    cl->npriv = 0;
    cl->px->m.connections_active--;
    px_workers_conn_give(cl->px);
    px_client_release(cl);
}

mc_conn *px_client_conn(px_client *cl, int32_t broker_id, int blocking)
{
    mc_cluster *mc = cl->px->mc;
    if (!blocking || cl->closed)
        return cl->closed ? NULL : mc_cluster_conn(mc, broker_id);
    const mc_broker *b = mc_view_broker(mc_cluster_view(mc), broker_id);
    if (b == NULL)
        return NULL;
    for (int i = 0; i < cl->npriv; i++) {
        struct px_priv *pv = &cl->priv[i];
        if (pv->broker != broker_id)
            continue;
        if (strcmp(mc_conn_host(pv->conn), b->host) == 0 && mc_conn_port(pv->conn) == b->port)
            return pv->conn;
        mc_conn_free(pv->conn); /* the broker moved */
        pv->conn = mc_cluster_conn_private(mc, broker_id);
        return pv->conn;
    }
    if (cl->npriv == (int)(sizeof(cl->priv) / sizeof(cl->priv[0])))
        return mc_cluster_conn(mc, broker_id); /* more brokers than slots: share */
    mc_conn *c = mc_cluster_conn_private(mc, broker_id);
    if (c != NULL) {
        cl->priv[cl->npriv].broker = broker_id;
        cl->priv[cl->npriv].conn = c;
        cl->npriv++;
    }
    return c;
}

/* Take the client's zone from its client.id the first time it names one. */
static void px_client_check_zone(px_client *cl, kc_str client_id)
{
    px_proxy *px = cl->px;
    char zone[sizeof(cl->zone)];
    cl->zone_checked = 1;
    if (px_zone_from_client_id(client_id, zone, sizeof(zone)) != 0)
        return;
    snprintf(cl->zone, sizeof(cl->zone), "%s", zone);
    px->m.clients_zone_from_id++;
    if (px_vc_zone_known(px, zone))
        return; /* even when none of its proxies is up right now */
    /* A typo must not silently cost money: count it, and log once per client id. */
    px->m.clients_unknown_zone++;
    uint32_t h = 2166136261u;
    for (int32_t i = 0; i < client_id.len; i++)
        h = (h ^ (uint8_t)client_id.p[i]) * 16777619u;
    h |= 1;
    uint32_t *slot = &px->unknown_zone_logged[h % 256];
    if (*slot != h) {
        *slot = h;
        kz_warn("client %s: client.id \"%.*s\" names zone \"%s\", which no proxy serves; answering "
                "with proxies of all zones (check the zone key for a typo)", cl->peer, (int)client_id.len,
                client_id.p, zone);
    }
}


/* Log one line naming the peer and the reason, then close. */
void px_client_bad(px_client *cl, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (cl->relay) {
        px_worker_shadow_bad(cl, why); /* the worker closes the connection */
        return;
    }
    if (cl->closed)
        return;
    kz_warn("client %s: closing connection: %s", cl->peer, why);
    cl->px->m.connections_closed_bad++;
    px_client_close(cl);
}

static int px_client_over_limits(px_client *cl)
{
    const px_limits *l = &cl->px->cfg->limits;
    /* Bytes count only while a request is in flight: a frame being received
     * alone (bounded by max_frame_bytes) cannot wait for one to finish. */
    if (cl->ninflight >= l->max_inflight_requests || (cl->ninflight > 0 && cl->inflight_bytes >= l->max_inflight_bytes))
        return 1;
    return cl->bev && evbuffer_get_length(bufferevent_get_output(cl->bev)) >= l->max_output_bytes;
}

static void px_client_pause(px_client *cl)
{
    if (cl->paused || cl->closed)
        return;
    cl->paused = 1;
    cl->px->m.backpressure_pauses++;
    bufferevent_disable(cl->bev, EV_READ);
}

void px_client_maybe_resume(px_client *cl)
{
    if (!cl->paused || cl->closed || cl->auth.close_after_flush || px_client_over_limits(cl))
        return;
    cl->paused = 0;
    bufferevent_enable(cl->bev, EV_READ);
    /* Frames already buffered get no new read event: run the reader soon. */
    event_active(cl->resume, EV_READ, 0);
}

/* After a refused login or SASL mechanism: close once the answer is out
 * (Kafka closes the connection too); read nothing more meanwhile. */
static void px_client_close_if_drained(px_client *cl)
{
    if (!cl->auth.close_after_flush || cl->closed || !TAILQ_EMPTY(&cl->reqs))
        return;
    if (px_client_unsent(cl) == 0)
        px_client_close(cl);
}

size_t px_client_unsent(const px_client *cl)
{
    if (cl->bev == NULL)
        return 0;
    size_t n = evbuffer_get_length(bufferevent_get_output(cl->bev));
    return cl->tls ? n + px_tls_sock_unsent(bufferevent_openssl_get_ssl(cl->bev)) : n;
}

const void *px_client_stream(const px_client *cl) { return cl; }

void px_client_drain(px_client *cl)
{
    if (cl->closed)
        return;
    if (cl->bev == NULL) { /* TLS listener, nothing received yet */
        px_client_close(cl);
        return;
    }
    cl->auth.close_after_flush = 1; /* also keeps px_client_maybe_resume from reading again */
    bufferevent_disable(cl->bev, EV_READ);
    px_client_close_if_drained(cl);
}

px_req *px_dispatch_begin(px_client *cl, kc_frame *f)
{
    px_proxy *px = cl->px;
    px_req *rq = calloc(1, sizeof(*rq));
    if (rq == NULL) {
        kc_frame_release(f);
        px_client_bad(cl, "out of memory for a request of %zu bytes", f->len);
        return NULL;
    }
    rq->cl = cl;
    rq->frame = f;
    cl->refcnt++;
    cl->ninflight++;
    cl->inflight_bytes += f->len;
    TAILQ_INSERT_TAIL(&cl->reqs, rq, link);
    px->m.request_bytes += f->len + 4;

    kc_rd rd;
    kc_rd_init(&rd, f->data, f->len);
    if (kc_req_hdr_decode(&rd, &rq->hdr) != 0) {
        px_client_bad(cl, "malformed request header: %s at byte %zu", rd.err, rd.err_off);
        rq->done = 1;
        px_client_flush(cl);
        return NULL;
    }
    rq->body_off = rd.off;
    if (rq->hdr.api_key >= 0 && rq->hdr.api_key <= KC_API_MAX)
        px->m.requests[rq->hdr.api_key]++;
    if (!cl->zone_checked && rq->hdr.client_id.len > 0)
        px_client_check_zone(cl, rq->hdr.client_id);
    kz_dbg("client %s: %s v%d correlation id %d, %zu bytes", cl->peer, kc_api_name(rq->hdr.api_key),
           rq->hdr.api_version, rq->hdr.correlation_id, f->len);
    if (px->csasl != NULL && px_sasl_gate(rq, &cl->auth))
        return NULL;
    return rq;
}

static void px_dispatch(px_client *cl, kc_frame *f)
{
    px_proxy *px = cl->px;
    px_req *rq = px_dispatch_begin(cl, f);
    if (rq == NULL)
        return;
    if (px->worker != NULL && px_worker_relay(rq))
        return; /* runs on the main thread (px_worker.c) */
    switch (rq->hdr.api_key) {
    case KC_API_APIVERSIONS:
        px_vc_apiversions(rq);
        break;
    case KC_API_METADATA:
        px_vc_metadata(rq);
        break;
    case KC_API_PRODUCE:
        px_route_produce(rq);
        break;
    case KC_API_FETCH:
        px_route_fetch(rq);
        break;
    case KC_API_LISTOFFSETS:
        px_route_listoffsets(rq);
        break;
    case KC_API_FINDCOORDINATOR:
        px_vc_findcoordinator(rq);
        break;
    case KC_API_KZ_HELLO:
    case KC_API_KZ_WAL_APPEND:
        px_peer_dispatch(rq);
        break;
    case KC_API_OFFSETFORLEADEREPOCH:
        px_route_offsetforleaderepoch(rq);
        break;
    case KC_API_DELETERECORDS:
        px_route_deleterecords(rq);
        break;
    case KC_API_LISTGROUPS:
        px_route_listgroups(rq);
        break;
    case KC_API_DESCRIBECLUSTER:
        px_vc_describecluster(rq);
        break;
    default:
        if (px_pass_versions(rq->hdr.api_key, NULL) == 0) {
            px->m.passthrough_requests++;
            px_pass_route(rq);
            break;
        }
        /* The frame check lets through only what px_vc_version_range serves. */
        px_req_reject(rq, "no handler");
        break;
    }
}

/* TLS: decrypt into buf, as recv() would (kc_rx_read_fn). A failure is
 * logged here, with OpenSSL's reason. */
static ssize_t px_client_tls_rd(void *arg, void *buf, size_t len)
{
    px_client *cl = arg;
    char why[256];
    ssize_t n = px_tls_read(bufferevent_openssl_get_ssl(cl->bev), buf, len, &cl->tls_dry, why, sizeof(why));
    if (n < 0 && errno != EAGAIN) {
        int e = errno;
        cl->tls_failed = 1;
        kz_info("client %s: TLS error: %s", cl->peer, why);
        errno = e;
    }
    return n;
}

/* Bytes of small frames a TLS client's reader decrypts in one turn before
 * it lets the event loop serve others (plus at most one large frame's
 * KC_RX_TURN_MAX), as the plaintext reader takes one 16 KiB socket read of
 * them: at 64 KiB a client pipelining ApiVersions held others' round trips
 * for seconds. */
#define PX_TLS_TURN_MAX (16 * 1024)

/* TLS, whenever the reader needs more bytes: decrypt what OpenSSL holds or
 * the socket has into the input buffer (at most PX_TLS_TURN_MAX a turn).
 * The read-ahead (px_tls_ssl_new) holds whole records the socket no longer
 * signals, and libevent takes one record per read event. 1 when bytes were
 * added; 0 when there are none now, or the turn's are taken (the reader
 * then runs again soon), or the client closed (cl closed). */
static int px_client_tls_pull(px_client *cl)
{
    if (!cl->tls || !cl->tls_done || cl->closed || cl->auth.close_after_flush || cl->tls_turn >= PX_TLS_TURN_MAX)
        return 0;
    struct evbuffer *in = bufferevent_get_input(cl->bev);
    /* Through the stack, not space reserved in the buffer: a reservation
     * that got nothing would stay allocated while the connection idles. */
    uint8_t rec[PX_TLS_RECORD_MAX];
    ssize_t n = px_client_tls_rd(cl, rec, sizeof(rec));
    if (n > 0) {
        if (evbuffer_add(in, rec, (size_t)n) != 0) {
            px_client_bad(cl, "out of memory for %zd bytes of input", n);
            return 0;
        }
        cl->tls_turn += (size_t)n;
        return 1;
    }
    if (n == 0) {
        size_t left = evbuffer_get_length(in) + cl->rx.got;
        if (left > 0)
            kz_info("client %s: closed with %zu bytes of an incomplete frame", cl->peer, left);
        else
            kz_dbg("client %s: closed", cl->peer);
        px_client_close(cl);
    } else if (errno != EAGAIN) {
        px_client_close(cl);
    }
    return 0;
}

/* Go on filling the frame being received; 1 when it is complete and dispatched. */
static int px_client_fill(px_client *cl)
{
    /* Over TLS the socket carries ciphertext: the frame fills from what the
     * bufferevent has decrypted, then from OpenSSL straight into the frame. */
    size_t start = cl->rx.got;
    struct evbuffer *in = bufferevent_get_input(cl->bev);
    int r = cl->tls ? kc_frame_rx_fill_fn(&cl->rx, in, px_client_tls_rd, cl)
                    : kc_frame_rx_fill(&cl->rx, in, bufferevent_getfd(cl->bev));
    if (cl->tls && cl->rx.got > start)
        cl->tls_turn += cl->rx.got - start; /* the turn's budget counts these too */
    if (r == 0 && cl->cut != NULL && !cl->closed) /* a Produce streamed as it arrives (px_cut.c) */
        r = px_cut_progress(cl, start);
    if (r == 0)
        return 0;
    if (r < 0) {
        if (errno == 0)
            kz_info("client %s: closed with %zu of the %zu bytes of a frame", cl->peer, cl->rx.got,
                    cl->rx.f->len);
        else if (!cl->tls_failed)
            kz_info("client %s: connection error: %s", cl->peer, strerror(errno));
        px_client_close(cl);
        return 0;
    }
    kc_frame *f = kc_frame_rx_take(&cl->rx);
    if (cl->cut != NULL && px_cut_complete(cl, f))
        return !cl->closed; /* dispatched as it arrived */
    cl->inflight_bytes -= f->len; /* px_dispatch counts it as a request */
    px_dispatch(cl, f);
    return 1;
}

static void px_client_sasl_close_cb(evutil_socket_t fd, short what, void *arg)
{
    px_client *cl = arg;
    (void)fd;
    (void)what;
    px_client_close(cl);
    px_client_release(cl);
}

/* After SaslHandshake v0 the client sends bare [size][token] frames (no
 * Kafka header) until authenticated. 1 when one was served, 0 to wait for
 * more bytes (or when the connection is closed). */
static int px_client_raw_token(px_client *cl)
{
    struct evbuffer *in = bufferevent_get_input(cl->bev);
    uint8_t hb[4];
    if (evbuffer_get_length(in) < 4)
        return 0;
    evbuffer_copyout(in, hb, 4);
    uint32_t size = (uint32_t)hb[0] << 24 | (uint32_t)hb[1] << 16 | (uint32_t)hb[2] << 8 | hb[3];
    if (size > 65536) {
        px_client_bad(cl, "SASL token of %u bytes after SaslHandshake v0 (at most 65536)", size);
        return 0;
    }
    if (evbuffer_get_length(in) < 4 + (size_t)size)
        return 0;
    uint8_t *tok = malloc(size ? size : 1), *out = NULL;
    size_t out_len = 0;
    if (tok == NULL) {
        px_client_bad(cl, "out of memory for a SASL token");
        return 0;
    }
    evbuffer_drain(in, 4);
    evbuffer_remove(in, tok, size);
    int r = px_sasl_raw_token(cl, &cl->auth, tok, size, &out, &out_len);
    explicit_bzero(tok, size);
    free(tok);
    if (r < 0) {
        /* Kafka closes without an answer; the close waits failure_delay_ms. */
        int delay = cl->px->cfg->client_sasl.failure_delay_ms;
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        bufferevent_disable(cl->bev, EV_READ);
        cl->refcnt++;
        if (delay <= 0 || event_base_once(cl->px->base, -1, EV_TIMEOUT, px_client_sasl_close_cb, cl, &tv) != 0)
            px_client_sasl_close_cb(-1, 0, cl);
        return 0;
    }
    uint8_t sz[4] = {(uint8_t)(out_len >> 24), (uint8_t)(out_len >> 16), (uint8_t)(out_len >> 8), (uint8_t)out_len};
    if (out == NULL || bufferevent_write(cl->bev, sz, 4) != 0 || bufferevent_write(cl->bev, out, out_len) != 0)
        px_client_bad(cl, "cannot queue a SASL token (out of memory)");
    free(out);
    return !cl->closed;
}

/* What one step of the reader left: go on, wait for more bytes (over TLS,
 * first what OpenSSL read ahead), or stop (closed, paused, or bytes wait
 * on the socket). */
enum { PX_RD_NEXT, PX_RD_MORE, PX_RD_STOP };

/* Take the next frame's header from the input buffer: dispatch the frame if
 * it is all there, or start receiving it into its own kc_frame. */
static int px_client_take(px_client *cl)
{
    px_proxy *px = cl->px;
    const px_limits *l = &px->cfg->limits;
    struct evbuffer *in = bufferevent_get_input(cl->bev);
    size_t have = evbuffer_get_length(in);
    uint8_t hb[PX_PEEK];
    if (have < 4)
        return PX_RD_MORE;
    evbuffer_copyout(in, hb, have < PX_PEEK ? have : PX_PEEK);
    int32_t size = (int32_t)((uint32_t)hb[0] << 24 | (uint32_t)hb[1] << 16 | (uint32_t)hb[2] << 8 | hb[3]);
    if (!cl->tls && hb[0] == 0x16 && hb[1] == 0x03) {
        px_client_bad(cl, "a TLS handshake on the plaintext client listener (the client uses "
                      "security.protocol=SSL; this proxy has no client_tls)");
        return PX_RD_STOP;
    }
    if (size < PX_PEEK - 4 || (size_t)size > l->max_frame_bytes) {
        px_client_bad(cl, "frame size %d out of range [%d, %zu]", size, PX_PEEK - 4, l->max_frame_bytes);
        return PX_RD_STOP;
    }
    if (have < PX_PEEK)
        return PX_RD_MORE;
    /* Check ApiKey and version before waiting for (and allocating) the body. */
    int16_t key = (int16_t)(hb[4] << 8 | hb[5]);
    int16_t ver = (int16_t)(hb[6] << 8 | hb[7]);
    int16_t vmin, vmax;
    if (px_vc_version_range(px, key, &vmin, &vmax) != 0) {
        px_client_bad(cl, "unsupported ApiKey %d (%s)", key, kc_api_name(key));
        return PX_RD_STOP;
    }
    if (key != KC_API_APIVERSIONS && (ver < vmin || ver > vmax)) {
        px_client_bad(cl, "%s version %d is outside the supported range %d-%d", kc_api_name(key),
                      ver, vmin, vmax);
        return PX_RD_STOP;
    }
    /* A frame bigger than PX_RX_DIRECT_MAX waits in the input buffer as
     * before, so that a few header bytes cannot make the proxy reserve
     * up to max_frame_bytes. */
    if (have < 4 + (size_t)size && (size_t)size > PX_RX_DIRECT_MAX)
        return PX_RD_MORE;
    kc_frame *f = kc_frame_new((size_t)size);
    if (f == NULL) {
        px_client_bad(cl, "out of memory for a frame of %d bytes", size);
        return PX_RD_STOP;
    }
    evbuffer_drain(in, 4);
    if (have >= 4 + (size_t)size) {
        evbuffer_remove(in, f->data, (size_t)size);
        px_dispatch(cl, f);
        return PX_RD_NEXT;
    }
    /* The rest is still on its way: read it into the frame directly.
     * The frame counts against the client's in-flight bytes meanwhile. */
    kc_frame_rx_start(&cl->rx, f);
    cl->inflight_bytes += f->len;
    px_cut_begin(cl, key, f);
    return PX_RD_NEXT;
}

static void px_client_read(px_client *cl)
{
    cl->refcnt++;
    /* A budget per run (the read event and the re-run timer may both run
     * it in one pass of the loop). Not per pass: libevent's cached time is
     * the coarse clock's, the same for the passes of a millisecond or more,
     * and a budget keyed on it made the re-run timer spin without reading. */
    cl->tls_turn = 0;
    while (!cl->closed) {
        if (px_client_over_limits(cl)) {
            px_client_pause(cl);
            break;
        }
        int r;
        if (cl->auth.state == PX_AUTH_HANDSHAKEN && cl->auth.handshake_version == 0 && cl->rx.f == NULL)
            r = px_client_raw_token(cl) ? PX_RD_NEXT : PX_RD_MORE;
        else if (cl->rx.f != NULL)
            r = px_client_fill(cl) ? PX_RD_NEXT : PX_RD_STOP; /* over TLS it read through OpenSSL itself */
        else
            r = px_client_take(cl);
        /* Every wait for bytes drains OpenSSL's read-ahead first: the socket
         * will not signal those bytes again. */
        if (r == PX_RD_MORE && px_client_tls_pull(cl))
            continue;
        if (r != PX_RD_NEXT)
            break;
    }
    /* OpenSSL may still hold records when this turn's bytes were taken: no
     * read event would come for them. Run again after the event loop has
     * polled the other connections (a timer, not event_active, which would
     * run in this same pass), or, when OpenSSL needed to write to a full
     * socket, a little later. */
    if (cl->tls && cl->tls_dry != 1 && !cl->closed && !cl->paused && !cl->auth.close_after_flush) {
        struct timeval tv = {0, cl->tls_dry == 2 ? 10000 : 0};
        event_add(cl->resume, &tv);
    }
    px_client_release(cl);
}

void px_client_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    px_client_read(arg);
}

void px_client_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    px_client *cl = arg;
    if (!cl->closed && !cl->paused && (!cl->tls || cl->tls_done))
        px_client_read(cl);
}

void px_client_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    px_client *cl = arg;
    cl->refcnt++;
    px_client_close_if_drained(cl);
    px_client_maybe_resume(cl);
    px_client_release(cl);
}
