#include "config.h"

#include "meta-client/mc_conn_int.h"

#include "codec/kc_msg.h"
#include "codec/kc_proto.h"
#include "common/kz_log.h"
#include "meta-client/mc_sasl.h"
#include "meta-client/mc_tls.h"
#include "meta-client/mc_xzone.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>


void mc_pending_free(mc_pending *p)
{
    if (p->frame)
        evbuffer_free(p->frame);
    free(p);
}

/* Write queued requests while the in-flight window has room. */
void mc_conn_pump(mc_conn *c)
{
    while (c->state == MC_UP && c->ninflight < c->cfg.max_inflight && c->open == NULL) {
        mc_pending *p = TAILQ_FIRST(&c->waiting);
        if (p == NULL)
            break;
        TAILQ_REMOVE(&c->waiting, p, link);
        size_t n = evbuffer_get_length(p->frame);
        if (bufferevent_write_buffer(c->bev, p->frame) != 0) {
            TAILQ_INSERT_HEAD(&c->waiting, p, link);
            mc_conn_fail_all(c, "write to broker failed", 0);
            return;
        }
        if (c->stats)
            c->stats->bytes_out += n;
        mc_xz_count(c->xz, MC_XZ_OUT, c->xz_kind, p->api_key, n);
        evbuffer_free(p->frame);
        p->frame = NULL;
        if (p->stream_left > 0)
            c->open = p; /* its body follows as it arrives (mc_conn_stream_add) */
        if (p->expect_response) {
            TAILQ_INSERT_TAIL(&c->inflight, p, link);
            c->ninflight++;
        } else {
            c->noresp[c->nnoresp++ % (sizeof(c->noresp) / sizeof(c->noresp[0]))] = p->corr;
            c->npending--;
            mc_pending_free(p);
        }
    }
}

static int mc_conn_was_noresp(const mc_conn *c, int32_t corr)
{
    unsigned n = c->nnoresp < 32 ? c->nnoresp : 32;
    for (unsigned i = 0; i < n; i++)
        if (c->noresp[i] == corr)
            return 1;
    return 0;
}

static void mc_conn_event_cb(struct bufferevent *bev, short what, void *arg);

static void mc_conn_read_cb(struct bufferevent *bev, void *arg)
{
    mc_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        kc_frame *f;
        if (c->rx.f != NULL) {
            /* Over TLS the bytes arrive decrypted in the input buffer only:
             * no socket to read past it. */
            int r = kc_frame_rx_fill(&c->rx, in, c->tls ? -1 : bufferevent_getfd(bev));
            if (r == 0)
                return;
            if (r < 0) {
                if (errno == ENOMEM) {
                    kz_warn("broker %d (%s:%d): out of memory after %zu of the %zu bytes of a response, "
                            "reconnecting", c->broker_id, c->host, c->port, c->rx.got, c->rx.want);
                    mc_conn_fail_all(c, "out of memory for a response from the broker", 0);
                    return;
                }
                mc_conn_event_cb(bev, BEV_EVENT_READING | (errno == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), c);
                return;
            }
            f = kc_frame_rx_take(&c->rx);
        } else {
            uint8_t szb[4];
            size_t have = evbuffer_get_length(in);
            if (evbuffer_copyout(in, szb, 4) < 4)
                return;
            uint32_t size = (uint32_t)szb[0] << 24 | (uint32_t)szb[1] << 16 | (uint32_t)szb[2] << 8 | szb[3];
            if (size < 4 || size > c->cfg.max_response_bytes) {
                /* The callbacks get the reason too (a client's request
                 * fails with it): say which broker and which limit. */
                char why[200];
                if (size < 4)
                    snprintf(why, sizeof(why), "broker %d (%s:%d) sent a response frame of %u bytes, "
                             "shorter than a correlation id", c->broker_id, c->host, c->port, size);
                else
                    snprintf(why, sizeof(why), "broker %d (%s:%d) sent a response frame of %u bytes, "
                             "over limits.max_response_bytes (%zu)", c->broker_id, c->host, c->port, size,
                             c->cfg.max_response_bytes);
                kz_warn("%s, reconnecting", why);
                mc_conn_fail_all(c, why, 0);
                return;
            }
            evbuffer_drain(in, 4);
            have -= 4;
            if (have < (size_t)size) {
                /* The rest is still on its way. The size is only the
                 * broker's claim: reserve what has arrived (or a small
                 * bound) and grow as the bytes come, read straight into the
                 * frame (kc_frame_rx_fill). A broker that has sent
                 * KC_RX_RESERVE of it sends the rest: the frame is then
                 * allocated whole, once, where doubling copied a 12 MB
                 * Fetch answer's bytes 14 MB over (1 to 16 MiB). */
                if (kc_frame_rx_begin(&c->rx, size, have) != 0) {
                    mc_conn_fail_all(c, "out of memory", 0);
                    return;
                }
                c->rx.whole_after = KC_RX_RESERVE;
                continue;
            }
            f = kc_frame_new(size);
            if (f == NULL) {
                mc_conn_fail_all(c, "out of memory", 0);
                return;
            }
            evbuffer_remove(in, f->data, size);
        }
        size_t size = f->len;
        if (c->stats) {
            c->stats->bytes_in += 4 + size;
            c->stats->responses++;
        }
        int32_t corr = (int32_t)((uint32_t)f->data[0] << 24 | (uint32_t)f->data[1] << 16 |
                                 (uint32_t)f->data[2] << 8 | f->data[3]);
        mc_pending *p = TAILQ_FIRST(&c->inflight);
        if ((p == NULL || p->corr != corr) && mc_conn_was_noresp(c, corr)) {
            kc_frame_release(f);
            continue;
        }
        if (p == NULL || p->corr != corr) {
            kz_warn("broker %d (%s:%d): response with correlation id %d matches no request, "
                    "reconnecting", c->broker_id, c->host, c->port, corr);
            kc_frame_release(f);
            mc_conn_fail_all(c, "unexpected response from broker", 0);
            return;
        }
        mc_xz_count(c->xz, MC_XZ_IN, c->xz_kind, p->api_key, 4 + (uint64_t)size);
        TAILQ_REMOVE(&c->inflight, p, link);
        c->ninflight--;
        if (!p->internal)
            c->npending--;
        /* The callback may send more on this connection (it is consistent
         * now), or free it: then it is only doomed, and closed. */
        c->busy++;
        p->fn(f, NULL, p->arg);
        c->busy--;
        mc_pending_free(p);
        if (c->doomed)
            return;
        mc_conn_pump(c);
        if (c->state != MC_UP)
            return;
    }
}


/* ---------------- connection events ---------------- */

static void mc_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    mc_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* Requests are whole frames written at once: Nagle would only hold
         * a frame's tail back for the broker's delayed ACK (the benchmark's
         * profile showed it in the same-zone p99). */
        int one = 1;
        evutil_socket_t fd = bufferevent_getfd(bev);
        if (fd >= 0)
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (c->stats)
            c->stats->connects++;
        kz_dbg("broker %d (%s:%d): connected%s", c->broker_id, c->host, c->port, c->tls ? " (TLS)" : "");
        if (c->cfg.sec != NULL && c->cfg.sec->sasl != NULL) {
            mc_conn_sasl_start(c);
            return;
        }
        mc_conn_up(c);
        return;
    }
    if (c->state == MC_CONNECTING && c->tls) {
        /* Not yet connected over TLS: the TCP connect or the handshake failed. */
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        unsigned long oerr = bufferevent_get_openssl_error(bev);
        int dnserr = bufferevent_socket_get_dns_error(bev);
        long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        if (oerr != 0 || vr != X509_V_OK || ((what & BEV_EVENT_EOF) && !dnserr)) {
            char why[400];
            if (oerr == 0 && vr == X509_V_OK)
                snprintf(why, sizeof(why), "connection closed during the TLS handshake (is this a TLS listener? "
                         "does it require a client certificate?)");
            else
                mc_tls_describe_failure(ssl, c->host, oerr, why, sizeof(why));
            mc_conn_handshake_failed(c, 1, why);
            return;
        }
    }
    if (c->state == MC_AUTH) {
        mc_conn_handshake_failed(c, 0, (what & BEV_EVENT_EOF) ? "connection closed by the broker during SASL "
                                       "authentication" : "connection to the broker failed during SASL authentication");
        return;
    }
    int was_connecting = c->state == MC_CONNECTING;
    const char *why = (what & BEV_EVENT_EOF) ? "connection closed by broker" : "connection to broker failed";
    if (was_connecting) {
        int dnserr = bufferevent_socket_get_dns_error(bev);
        kz_log(c->cfg.quiet ? KZ_LOG_DEBUG : KZ_LOG_WARN, "broker %d (%s:%d): cannot connect: %s",
               c->broker_id, c->host, c->port,
               dnserr ? evutil_gai_strerror(dnserr) : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        c->backoff_until_ms = kz_mono_ms() + c->cfg.reconnect_backoff_ms;
    } else {
        kz_log(c->cfg.quiet ? KZ_LOG_DEBUG : KZ_LOG_INFO, "broker %d (%s:%d): %s", c->broker_id, c->host,
               c->port, why);
    }
    /* A refused connect fails queued requests too: they would only wait. */
    mc_conn_fail_all(c, why, was_connecting);
}

static void mc_conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    mc_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == MC_CONNECTING && c->cfg.sec != NULL && kz_mono_ms() > c->handshake_deadline_ms) {
        char why[200];
        snprintf(why, sizeof(why), "%s timed out after %d ms", c->tls ? "connect and TLS handshake" : "connect",
                 c->cfg.request_timeout_ms);
        mc_conn_handshake_failed(c, c->tls, why);
        return;
    }
    mc_pending *p = TAILQ_FIRST(&c->inflight);
    if (p != NULL && kz_mono_ms() > p->deadline_ms) {
        if (p->internal) {
            char why[200];
            snprintf(why, sizeof(why), "SASL authentication timed out (no %s response in %d ms)",
                     kc_api_name(p->api_key), c->cfg.request_timeout_ms);
            mc_conn_handshake_failed(c, 0, why);
            return;
        }
        kz_warn("broker %d (%s:%d): %s request timed out, reconnecting", c->broker_id, c->host,
                c->port, kc_api_name(p->api_key));
        mc_conn_fail_all(c, "request to broker timed out", 0);
    }
}

/* Close the socket and fail what was sent (and, if asked, what waits). */
void mc_conn_fail_all(mc_conn *c, const char *why, int include_waiting)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    kc_frame_rx_drop(&c->rx);
    mc_sasl_session_free(c->sasl);
    c->sasl = NULL;
    c->tls = 0;
    c->state = MC_DOWN;
    c->open = NULL; /* a half-written frame dies with the socket */
    struct mc_pending_q failed;
    TAILQ_INIT(&failed);
    TAILQ_CONCAT(&failed, &c->inflight, link);
    c->ninflight = 0;
    if (include_waiting)
        TAILQ_CONCAT(&failed, &c->waiting, link);
    mc_pending *p;
    c->busy++;
    while ((p = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, p, link);
        if (!p->internal) {
            c->npending--;
            if (c->stats)
                c->stats->failures++;
        }
        if (p->expect_response)
            p->fn(NULL, why, p->arg);
        mc_pending_free(p);
    }
    c->busy--;
    /* Requests still queued get a fresh connection. */
    if (!c->doomed && !TAILQ_EMPTY(&c->waiting) && c->bev == NULL)
        mc_conn_connect(c);
}

void mc_conn_connect(mc_conn *c)
{
    mc_conn_security *sec = c->cfg.sec;
    c->tls = 0;
    if (sec != NULL && sec->tls != NULL) {
        SSL *ssl = mc_tls_ssl_new(sec->tls, c->host);
        /* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns ssl, even when
         * its creation fails. */
        c->bev = ssl ? bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (c->bev != NULL) {
            c->tls = 1;
            /* Brokers often close without a close_notify: an end of stream,
             * not an attack on a finished exchange (frames are length-prefixed). */
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
            /* Decrypted bytes reach the input buffer one read at a time:
             * larger reads, fewer turns for a large frame. */
            bufferevent_set_max_single_read(c->bev, KC_RX_TURN_MAX);
        }
    } else {
        c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        mc_conn_fail_all(c, "out of memory", 1);
        return;
    }
    bufferevent_setcb(c->bev, mc_conn_read_cb, NULL, mc_conn_event_cb, c);
    bufferevent_set_max_single_write(c->bev, KC_TX_WRITE_MAX);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->state = MC_CONNECTING;
    c->handshake_deadline_ms = kz_mono_ms() + c->cfg.request_timeout_ms;
    if (bufferevent_socket_connect_hostname(c->bev, c->dns, AF_UNSPEC, c->host, c->port) != 0) {
        /* The event callback has run or will run with the error. */
        if (c->state == MC_CONNECTING && c->bev) {
            c->backoff_until_ms = kz_mono_ms() + c->cfg.reconnect_backoff_ms;
            mc_conn_fail_all(c, "cannot connect to broker", 1);
        }
    }
}

mc_conn *mc_conn_new(struct event_base *base, struct evdns_base *dns, const char *host, int port,
                     int32_t broker_id, const mc_conn_config *cfg, mc_conn_stats *stats)
{
    mc_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->host = strdup(host);
    c->timer = event_new(base, -1, EV_PERSIST, mc_conn_timer_cb, c);
    if (c->host == NULL || c->timer == NULL) {
        free(c->host);
        if (c->timer)
            event_free(c->timer);
        free(c);
        return NULL;
    }
    c->base = base;
    c->dns = dns;
    c->port = port;
    c->broker_id = broker_id;
    c->cfg = *cfg;
    if (c->cfg.max_inflight < 1)
        c->cfg.max_inflight = 1;
    c->stats = stats;
    c->next_corr = 1;
    TAILQ_INIT(&c->inflight);
    TAILQ_INIT(&c->waiting);
    struct timeval tv = {0, 250000};
    event_add(c->timer, &tv);
    return c;
}

static void mc_conn_destroy(mc_conn *c)
{
    event_free(c->timer);
    free(c->host);
    free(c);
}

static void mc_conn_destroy_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mc_conn_destroy(arg);
}

void mc_conn_free(mc_conn *c)
{
    if (c == NULL || c->doomed)
        return;
    c->doomed = 1;
    mc_conn_fail_all(c, "shutting down", 1);
    event_del(c->timer);
    if (c->busy == 0) {
        mc_conn_destroy(c);
        return;
    }
    /* Called from one of c's own callbacks, which returns into code that
     * still reads c: free it once the loop is back in control. */
    struct timeval now = {0, 0};
    if (event_base_once(c->base, -1, EV_TIMEOUT, mc_conn_destroy_cb, c, &now) != 0)
        kz_err("broker %d (%s:%d): cannot schedule freeing a closed connection (%zu bytes leak)",
               c->broker_id, c->host, c->port, sizeof(*c));
}

int mc_conn_request(mc_conn *c, int16_t api_key, int16_t version, kc_str client_id,
                    struct evbuffer *body, int expect_response, int extra_wait_ms, mc_resp_fn fn,
                    void *arg)
{
    int64_t now = kz_mono_ms();
    if (c->doomed || (c->state == MC_DOWN && now < c->backoff_until_ms))
        return -1;
    mc_pending *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -1;
    p->frame = evbuffer_new();
    if (p->frame == NULL) {
        free(p);
        return -1;
    }
    p->corr = c->next_corr++;
    if (c->next_corr == INT32_MAX)
        c->next_corr = 1;
    p->api_key = api_key;
    p->version = version;
    p->expect_response = expect_response;
    p->deadline_ms = now + c->cfg.request_timeout_ms + (extra_wait_ms > 0 ? extra_wait_ms : 0);
    p->fn = fn;
    p->arg = arg;

    kc_req_hdr h = {.api_key = api_key, .api_version = version, .correlation_id = p->corr,
                    .client_id = client_id};
    kc_wr w;
    kc_wr_init(&w, p->frame, NULL);
    kc_req_hdr_encode(&w, &h);
    if (w.err || evbuffer_add_buffer(p->frame, body) != 0 || kc_wr_frame_size(p->frame) != 0) {
        mc_pending_free(p);
        return -1;
    }
    if (c->stats)
        c->stats->requests++;
    TAILQ_INSERT_TAIL(&c->waiting, p, link);
    c->npending++;
    if (c->state == MC_DOWN)
        mc_conn_connect(c);
    else
        mc_conn_pump(c);
    return 0;
}

void mc_conn_set_xzone(mc_conn *c, mc_xz *m, int kind)
{
    c->xz = m;
    c->xz_kind = kind;
}

mc_xz *mc_conn_xzone(const mc_conn *c, int *kind)
{
    if (kind)
        *kind = c->xz_kind;
    return c->xz;
}

int32_t mc_conn_broker_id(const mc_conn *c) { return c->broker_id; }
const char *mc_conn_host(const mc_conn *c) { return c->host; }
int mc_conn_port(const mc_conn *c) { return c->port; }
int mc_conn_pending(const mc_conn *c) { return c->npending; }
