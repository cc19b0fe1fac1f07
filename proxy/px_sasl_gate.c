/*
 * The SASL gate of a client connection: before login only ApiVersions,
 * SaslHandshake and SaslAuthenticate pass (the peer RPC is exempt); a
 * login's steps run through px_sasl.c's session; a refused one is answered
 * after failure_delay_ms and the connection closes, as Kafka does.
 */
#include "config.h"

#include "proxy/px_sasl_int.h"

#include "codec/kc_peer.h"
#include "common/kz_log.h"
#include "common/kz_time.h"
#include "proxy/px_proxy.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- the connection's gate ---------------- */

void px_client_auth_free(px_client_auth *auth)
{
    px_sasl_sess_free(auth->sess);
    auth->sess = NULL;
    if (auth->delay)
        event_free(auth->delay);
    auth->delay = NULL;
    if (auth->delayed_body)
        evbuffer_free(auth->delayed_body);
    auth->delayed_body = NULL;
}

/* A client-supplied user name fit for a log line: printable ASCII, no
 * quote, at most n - 1 bytes (the rest replaced by '?'). */
static void px_sasl_log_user(const char *user, char *u, size_t n)
{
    size_t ul = user != NULL ? strlen(user) : 0, i;
    for (i = 0; i < ul && i + 1 < n; i++)
        u[i] = (user[i] >= 0x20 && user[i] < 0x7f && user[i] != '"') ? user[i] : '?';
    u[i] = '\0';
}

static void px_sasl_handshake(px_req *rq, px_client_auth *auth, px_sasl *s)
{
    kc_rd rd;
    kc_saslhandshake_req req;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    if (kc_saslhandshake_req_decode(&rd, rq->hdr.api_version, NULL, &req) != 0) {
        px_req_reject(rq, "malformed request: %s at byte %zu", rd.err, rq->body_off + rd.err_off);
        return;
    }
    if (auth->state == PX_AUTH_HANDSHAKEN) {
        px_req_reject(rq, "SaslHandshake again before authenticating");
        return;
    }
    kc_saslhandshake_resp r = {0};
    kc_str names[PX_MECH_N];
    const px_config *cfg = px_client_proxy(rq->cl)->cfg;
    for (int i = 0; i < cfg->client_sasl.nmechanisms; i++)
        names[r.nmechanisms++] = (kc_str){cfg->client_sasl.mechanisms[i], (int32_t)strlen(cfg->client_sasl.mechanisms[i])};
    r.mechanisms = names;
    int mech = req.mechanism.len > 0 ? px_sasl_mech_enabled(s, req.mechanism.p, (size_t)req.mechanism.len) : -1;
    if (mech < 0) {
        /* Kafka answers UNSUPPORTED_SASL_MECHANISM with its list, then closes. */
        r.error_code = KC_ERR_UNSUPPORTED_SASL_MECHANISM;
        kz_warn("client %s: SaslHandshake asks for mechanism \"%.*s\", which is not enabled; closing",
                px_client_peer(rq->cl), req.mechanism.len > 64 ? 64 : (int)(req.mechanism.len > 0 ? req.mechanism.len : 0),
                req.mechanism.len > 0 ? req.mechanism.p : "");
        auth->close_after_flush = 1;
    } else {
        px_sasl_sess_free(auth->sess);
        auth->sess = px_sasl_sess_new(s, mech);
        if (auth->sess == NULL) {
            px_req_reject(rq, "out of memory");
            return;
        }
        auth->reauth = auth->state == PX_AUTH_OK;
        auth->state = PX_AUTH_HANDSHAKEN;
        auth->handshake_version = rq->hdr.api_version;
    }
    struct evbuffer *body = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, body, NULL);
    kc_saslhandshake_resp_encode(&w, rq->hdr.api_version, &r);
    px_req_respond(rq, body);
    evbuffer_free(body);
}

static void px_sasl_delay_cb(evutil_socket_t fd, short what, void *arg)
{
    px_client_auth *auth = arg;
    (void)fd;
    (void)what;
    px_req *rq = auth->delayed;
    struct evbuffer *body = auth->delayed_body;
    auth->delayed = NULL;
    auth->delayed_body = NULL;
    px_req_respond(rq, body);
    evbuffer_free(body);
}

static void px_sasl_authenticate(px_req *rq, px_client_auth *auth, px_sasl *s)
{
    px_proxy *px = px_client_proxy(rq->cl);
    kc_rd rd;
    kc_saslauthenticate_req req;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    if (kc_saslauthenticate_req_decode(&rd, rq->hdr.api_version, NULL, &req) != 0) {
        px_req_reject(rq, "malformed request: %s at byte %zu", rd.err, rq->body_off + rd.err_off);
        return;
    }
    if (auth->state != PX_AUTH_HANDSHAKEN || auth->sess == NULL) {
        /* Kafka: an IllegalSaslStateException, which closes the connection. */
        px_req_reject(rq, "SaslAuthenticate before a SaslHandshake");
        return;
    }
    (void)s;
    uint8_t *out = NULL;
    size_t out_len = 0;
    char why[200] = "";
    int rc = px_sasl_sess_step(auth->sess, req.auth_bytes.p, req.auth_bytes.len > 0 ? (size_t)req.auth_bytes.len : 0,
                               &out, &out_len, why, sizeof(why));
    const char *user = px_sasl_sess_user(auth->sess);
    const char *mname = px_sasl_mech_name(auth->sess->mech);
    const char *was = px_client_principal(rq->cl);
    if (rc == 0 && auth->reauth && was && strcmp(was, user) != 0) {
        rc = -1;
        snprintf(why, sizeof(why), "re-authentication as another user");
    }
    kc_saslauthenticate_resp r = {0};
    char msg[160];
    if (rc < 0) {
        free(out);
        out = NULL;
        out_len = 0;
        snprintf(msg, sizeof(msg), PX_SASL_FAILED_MSG, mname);
        r.error_code = KC_ERR_SASL_AUTHENTICATION_FAILED;
        r.error_message = (kc_str){msg, (int32_t)strlen(msg)};
        px->m.client_sasl_failures++;
        char u[80];
        px_sasl_log_user(user, u, sizeof(u));
        kz_warn("client %s: SASL %s authentication failed for user \"%s\": %s; closing after %d ms",
                px_client_peer(rq->cl), mname, u, why, px->cfg->client_sasl.failure_delay_ms);
        auth->state = PX_AUTH_FAILED;
        auth->close_after_flush = 1;
    } else if (rc == 0) {
        if (!auth->reauth) {
            if (px_client_set_principal(rq->cl, user) != 0) {
                free(out);
                px_req_reject(rq, "out of memory");
                return;
            }
            kz_info("client %s: authenticated as \"%s\" (%s)", px_client_peer(rq->cl), user, mname);
        }
        px->m.client_sasl_successes++;
        auth->state = PX_AUTH_OK;
        auth->reauth = 0;
        px_sasl_sess_free(auth->sess);
        auth->sess = NULL;
        long long life = px->cfg->client_sasl.session_lifetime_ms;
        auth->expires_ms = life > 0 ? kz_mono_ms() + life : 0;
        if (rq->hdr.api_version >= 1)
            r.session_lifetime_ms = life;
    }
    r.auth_bytes = (kc_bytes){out ? out : (const uint8_t *)"", (int32_t)out_len};
    struct evbuffer *body = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, body, NULL);
    kc_saslauthenticate_resp_encode(&w, rq->hdr.api_version, &r);
    if (out) {
        OPENSSL_cleanse(out, out_len);
        free(out);
    }
    int delay = px->cfg->client_sasl.failure_delay_ms;
    if (rc < 0 && delay > 0) {
        /* Hold the answer so that guessing is slow; read nothing meanwhile. */
        if (auth->delay == NULL)
            auth->delay = evtimer_new(px->base, px_sasl_delay_cb, auth);
        if (auth->delay != NULL) {
            struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
            auth->delayed = rq;
            auth->delayed_body = body;
            evtimer_add(auth->delay, &tv);
            return;
        }
    }
    px_req_respond(rq, body);
    evbuffer_free(body);
}

int px_sasl_raw_token(px_client *cl, px_client_auth *auth, const uint8_t *in, size_t n, uint8_t **out,
                      size_t *out_len)
{
    px_proxy *px = px_client_proxy(cl);
    char why[200] = "";
    int rc = px_sasl_sess_step(auth->sess, in, n, out, out_len, why, sizeof(why));
    const char *user = px_sasl_sess_user(auth->sess);
    const char *mname = px_sasl_mech_name(auth->sess->mech);
    if (rc == 0 && px_client_set_principal(cl, user) != 0) {
        rc = -1;
        snprintf(why, sizeof(why), "out of memory");
    }
    if (rc < 0) {
        free(*out);
        *out = NULL;
        px->m.client_sasl_failures++;
        char u[80];
        px_sasl_log_user(user, u, sizeof(u));
        kz_warn("client %s: SASL %s authentication failed for user \"%s\" (SaslHandshake v0): %s; closing "
                "after %d ms", px_client_peer(cl), mname, u, why, px->cfg->client_sasl.failure_delay_ms);
        auth->state = PX_AUTH_FAILED;
        auth->close_after_flush = 1;
        return -1;
    }
    if (rc == 0) {
        kz_info("client %s: authenticated as \"%s\" (%s, SaslHandshake v0)", px_client_peer(cl), user, mname);
        px->m.client_sasl_successes++;
        auth->state = PX_AUTH_OK;
        px_sasl_sess_free(auth->sess);
        auth->sess = NULL;
        long long life = px->cfg->client_sasl.session_lifetime_ms;
        auth->expires_ms = life > 0 ? kz_mono_ms() + life : 0;
        if (*out == NULL)
            *out = calloc(1, 1); /* PLAIN: Kafka answers an empty token */
    }
    return rc;
}

int px_sasl_gate(px_req *rq, px_client_auth *auth)
{
    px_proxy *px = px_client_proxy(rq->cl);
    int16_t key = rq->hdr.api_key;
    if (px->csasl == NULL)
        return 0;
    if (key == KC_API_SASLHANDSHAKE) {
        px_sasl_handshake(rq, auth, px->csasl);
        return 1;
    }
    if (key == KC_API_SASLAUTHENTICATE) {
        px_sasl_authenticate(rq, auth, px->csasl);
        return 1;
    }
    if (auth->state == PX_AUTH_FAILED) {
        px_req_respond(rq, NULL); /* the connection closes after the failure's answer */
        return 1;
    }
    if (key == KC_API_KZ_HELLO || key == KC_API_KZ_WAL_APPEND)
        return 0; /* peers: authenticated by peer_secret on every request */
    if (auth->state == PX_AUTH_OK) {
        if (auth->expires_ms && kz_mono_ms() > auth->expires_ms) {
            px_req_reject(rq, "SASL session of \"%s\" expired (client_sasl.session_lifetime_ms) without "
                              "re-authentication", px_client_principal(rq->cl));
            return 1;
        }
        return 0;
    }
    if (key == KC_API_APIVERSIONS && auth->state == PX_AUTH_START)
        return 0;
    /* Kafka: "Unexpected Kafka request of type ... during SASL handshake",
     * an IllegalSaslStateException that closes the connection. */
    px_req_reject(rq, "unexpected request before SASL authentication (client_sasl is on)");
    return 1;
}
