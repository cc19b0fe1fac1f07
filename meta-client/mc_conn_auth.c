/*
 * mc_conn's handshakes: failure streaks (logged once per broker address) and
 * the SASL login with the proxy's own credentials (mc_conn.h says what).
 */
#include "config.h"

#include "meta-client/mc_conn_int.h"

#include "codec/kc_msg.h"
#include "codec/kc_proto.h"
#include "common/kz_log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- handshake failure streaks ---------------- */

static uint64_t mc_conn_addr_key(const mc_conn *c)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of host, then port */
    for (const char *p = c->host; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    h = (h ^ (uint64_t)(uint32_t)c->port) * 1099511628211ULL;
    return h ? h : 1;
}

/* Record how a handshake to c's address went; returns 1 when this changes
 * the address's state (first failure of a streak, or the first success after
 * one): that is when it is logged. */
static int mc_conn_streak_note(mc_conn *c, int failed)
{
    mc_conn_security *sec = c->cfg.sec;
    if (sec == NULL)
        return failed;
    uint64_t key = mc_conn_addr_key(c);
    /* The address's slot: open addressing from its home slot, so that two
     * addresses whose keys share a slot (a few per cent for three brokers)
     * do not reset each other's streak and log it again on every retry.
     * With every slot taken by other addresses, the home slot is reused
     * (at worst one more log line). */
    size_t home = (size_t)(key % MC_CONN_STREAKS);
    mc_conn_streak *s = NULL;
    for (size_t i = 0; i < MC_CONN_STREAKS && s == NULL; i++) {
        mc_conn_streak *t = &sec->streaks[(home + i) % MC_CONN_STREAKS];
        if (t->key == key || t->key == 0)
            s = t;
    }
    if (s == NULL)
        s = &sec->streaks[home];
    if (s->key != key) {
        s->key = key;
        s->failing = 0;
    }
    int changed = s->failing != failed;
    s->failing = failed;
    return changed;
}

/* A TLS or SASL handshake failed: count it, log it once per streak, fail
 * what waits and back off like a refused connect. */
void mc_conn_handshake_failed(mc_conn *c, int tls, const char *why)
{
    if (c->stats) {
        if (tls)
            c->stats->tls_failures++;
        else
            c->stats->auth_failures++;
    }
    char msg[600];
    const char *kind = c->cfg.kind ? c->cfg.kind : "broker";
    if (c->broker_id >= 0)
        snprintf(msg, sizeof(msg), "%s %d (%s:%d): %s", kind, c->broker_id, c->host, c->port, why);
    else /* a discovery probe: who answers there is not known yet */
        snprintf(msg, sizeof(msg), "%s %s:%d: %s", kind, c->host, c->port, why);
    int first = mc_conn_streak_note(c, 1);
    kz_log(first && !c->cfg.quiet ? KZ_LOG_WARN : KZ_LOG_DEBUG, "%s%s%s%s", msg,
           first ? " (logged once until a handshake with this " : "", first ? kind : "",
           first ? " succeeds)" : "");
    c->backoff_until_ms = kz_mono_ms() + c->cfg.reconnect_backoff_ms;
    mc_conn_fail_all(c, msg, 1);
}

/* The connection is ready for requests. */
void mc_conn_up(mc_conn *c)
{
    c->state = MC_UP;
    if (c->cfg.sec != NULL && mc_conn_streak_note(c, 0))
        kz_log(c->cfg.quiet ? KZ_LOG_DEBUG : KZ_LOG_INFO, "%s %d (%s:%d): %s%s%s handshake succeeded again",
               c->cfg.kind ? c->cfg.kind : "broker", c->broker_id, c->host, c->port, c->cfg.sec->tls ? "TLS" : "",
               c->cfg.sec->tls && c->cfg.sec->sasl ? " and " : "", c->cfg.sec->sasl ? "SASL" : "");
    mc_conn_pump(c);
}

/* ---------------- SASL ---------------- */

static void mc_conn_sasl_cb(kc_frame *resp, const char *err, void *arg);

/* Write one of the connection's own requests now, ahead of anything queued
 * (the queue waits for MC_UP). 0, or -1 when out of memory. */
static int mc_conn_send_internal(mc_conn *c, int16_t api_key, int16_t version, struct evbuffer *body)
{
    mc_pending *p = calloc(1, sizeof(*p));
    struct evbuffer *frame = p ? evbuffer_new() : NULL;
    if (frame == NULL) {
        free(p);
        return -1;
    }
    p->corr = c->next_corr++;
    if (c->next_corr == INT32_MAX)
        c->next_corr = 1;
    p->api_key = api_key;
    p->version = version;
    p->expect_response = 1;
    p->internal = 1;
    p->deadline_ms = c->handshake_deadline_ms;
    p->fn = mc_conn_sasl_cb;
    p->arg = c;
    kc_req_hdr h = {.api_key = api_key, .api_version = version, .correlation_id = p->corr,
                    .client_id = kc_str_c("kzproxy")};
    kc_wr w;
    kc_wr_init(&w, frame, NULL);
    kc_req_hdr_encode(&w, &h);
    size_t n = 0;
    if (w.err || evbuffer_add_buffer(frame, body) != 0 || kc_wr_frame_size(frame) != 0 ||
        (n = evbuffer_get_length(frame), bufferevent_write_buffer(c->bev, frame) != 0)) {
        evbuffer_free(frame);
        free(p);
        return -1;
    }
    evbuffer_free(frame);
    if (c->stats)
        c->stats->bytes_out += n;
    mc_xz_count(c->xz, MC_XZ_OUT, c->xz_kind, api_key, n);
    TAILQ_INSERT_TAIL(&c->inflight, p, link);
    c->ninflight++;
    return 0;
}

/* Send the mechanism's next message (in: the broker's last auth bytes, or
 * NULL to start); once the mechanism is done the connection is up. */
static void mc_conn_sasl_next(mc_conn *c, const uint8_t *in, size_t in_len)
{
    char err[300];
    uint8_t *msg = NULL;
    size_t len = 0;
    int r = mc_sasl_session_step(c->sasl, in, in_len, &msg, &len, err, sizeof(err));
    if (r < 0) {
        char why[400];
        snprintf(why, sizeof(why), "SASL %s authentication failed: %s",
                 mc_sasl_mech_name(mc_sasl_mechanism(c->cfg.sec->sasl)), err);
        mc_conn_handshake_failed(c, 0, why);
        return;
    }
    if (r == 0) {
        mc_sasl_session_free(c->sasl);
        c->sasl = NULL;
        if (c->stats)
            c->stats->auth_ok++;
        kz_dbg("broker %d (%s:%d): SASL %s authentication succeeded", c->broker_id, c->host, c->port,
               mc_sasl_mech_name(mc_sasl_mechanism(c->cfg.sec->sasl)));
        mc_conn_up(c);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    kc_saslauthenticate_req req = {.auth_bytes = {msg, (int32_t)len}};
    kc_wr w;
    if (body != NULL) {
        kc_wr_init(&w, body, NULL);
        kc_saslauthenticate_req_encode(&w, 1, &req);
    }
    /* The body holds a copy of the secret-bearing message: wipe both. */
    mc_sasl_wipe_free(msg, len);
    c->sasl_phase = MC_SASL_PHASE_AUTHENTICATE;
    int rc = body == NULL || w.err ? -1 : mc_conn_send_internal(c, KC_API_SASLAUTHENTICATE, 1, body);
    if (body) {
        size_t bl = evbuffer_get_length(body);
        if (bl > 0) {
            uint8_t *b = evbuffer_pullup(body, -1);
            if (b)
                OPENSSL_cleanse(b, bl);
        }
        evbuffer_free(body);
    }
    if (rc != 0)
        mc_conn_handshake_failed(c, 0, "SASL authentication failed: out of memory");
}

void mc_conn_sasl_start(mc_conn *c)
{
    char err[300];
    const mc_sasl *s = c->cfg.sec->sasl;
    c->state = MC_AUTH;
    c->sasl_phase = MC_SASL_PHASE_HANDSHAKE;
    c->sasl = mc_sasl_session_new(s, err, sizeof(err));
    if (c->sasl == NULL) {
        char why[400];
        snprintf(why, sizeof(why), "cannot start SASL authentication: %s", err);
        mc_conn_handshake_failed(c, 0, why);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    kc_saslhandshake_req req = {.mechanism = kc_str_c(mc_sasl_mech_name(mc_sasl_mechanism(s)))};
    kc_wr w;
    if (body != NULL) {
        kc_wr_init(&w, body, NULL);
        kc_saslhandshake_req_encode(&w, 1, &req);
    }
    int rc = body == NULL || w.err ? -1 : mc_conn_send_internal(c, KC_API_SASLHANDSHAKE, 1, body);
    if (body)
        evbuffer_free(body);
    if (rc != 0)
        mc_conn_handshake_failed(c, 0, "cannot start SASL authentication: out of memory");
}

static const char *mc_sasl_err_name(int16_t code)
{
    switch (code) {
    case 33: return "UNSUPPORTED_SASL_MECHANISM";
    case 34: return "ILLEGAL_SASL_STATE";
    case 35: return "UNSUPPORTED_VERSION";
    case 58: return "SASL_AUTHENTICATION_FAILED";
    default: return kc_err_name(code);
    }
}

static void mc_conn_sasl_cb(kc_frame *resp, const char *err, void *arg)
{
    mc_conn *c = arg;
    (void)err;
    if (resp == NULL)
        return; /* the connection failed: mc_conn_fail_all reports it */
    char why[600];
    kc_rd rd;
    kc_arena a;
    kc_rd_init(&rd, resp->data, resp->len);
    kc_arena_init(&a);
    if (c->sasl_phase == MC_SASL_PHASE_HANDSHAKE) {
        kc_saslhandshake_resp r;
        (void)kc_resp_hdr_decode(&rd, kc_resp_hdr_version(KC_API_SASLHANDSHAKE, 1));
        if (kc_saslhandshake_resp_decode(&rd, 1, &a, &r) != 0) {
            snprintf(why, sizeof(why), "malformed SaslHandshake response: %s at byte %zu", rd.err, rd.err_off);
            mc_conn_handshake_failed(c, 0, why);
        } else if (r.error_code != 0) {
            char list[200] = "";
            size_t o = 0;
            for (int32_t i = 0; i < r.nmechanisms && o + 2 < sizeof(list); i++) {
                char one[64];
                mc_sasl_printable(one, sizeof(one), r.mechanisms[i].p, (size_t)r.mechanisms[i].len);
                o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", one);
            }
            snprintf(why, sizeof(why), "SASL handshake refused (%s): the broker enables %s, not %s",
                     mc_sasl_err_name(r.error_code), o ? list : "no mechanism",
                     mc_sasl_mech_name(mc_sasl_mechanism(c->cfg.sec->sasl)));
            mc_conn_handshake_failed(c, 0, why);
        } else {
            mc_conn_sasl_next(c, NULL, 0);
        }
    } else {
        kc_saslauthenticate_resp r;
        (void)kc_resp_hdr_decode(&rd, kc_resp_hdr_version(KC_API_SASLAUTHENTICATE, 1));
        if (kc_saslauthenticate_resp_decode(&rd, 1, &a, &r) != 0) {
            snprintf(why, sizeof(why), "malformed SaslAuthenticate response: %s at byte %zu", rd.err,
                     rd.err_off);
            mc_conn_handshake_failed(c, 0, why);
        } else if (r.error_code != 0) {
            char msg[300] = "no message";
            if (r.error_message.len > 0)
                mc_sasl_printable(msg, sizeof(msg), r.error_message.p, (size_t)r.error_message.len);
            snprintf(why, sizeof(why), "SASL %s authentication failed (%s): %s",
                     mc_sasl_mech_name(mc_sasl_mechanism(c->cfg.sec->sasl)), mc_sasl_err_name(r.error_code),
                     msg);
            mc_conn_handshake_failed(c, 0, why);
        } else {
            mc_conn_sasl_next(c, r.auth_bytes.p, r.auth_bytes.len > 0 ? (size_t)r.auth_bytes.len : 0);
        }
    }
    kc_arena_destroy(&a);
    kc_frame_release(resp);
}
