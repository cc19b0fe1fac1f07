/*
 * The proxy's side of the peer RPC (codec/kc_peer.h, docs/PEER_RPC.md):
 * authenticate the request, answer KzHello with this proxy's identity, and
 * hand KzWalAppend to router-in. Responses are sealed with the request's
 * nonce. A request that fails authentication closes the connection with one
 * log line that says what to check.
 */
#include "config.h"

#include "proxy/px_proxy.h"

#include "codec/kc_peer.h"
#include "common/kz_log.h"
#include "router/rt_router.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* How far a sender's clock may be from ours (a replay older than this fails). */
#define PX_PEER_MAX_SKEW_MS (5 * 60 * 1000)

static int64_t px_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t px_peer_wall_ms(void) { return px_wall_ms(); }

/* Seal body as the response to rq (whose nonce is given) and respond. */
static void px_peer_respond(px_req *rq, const uint8_t *nonce, struct evbuffer *body)
{
    px_proxy *px = px_client_proxy(rq->cl);
    const char *secret = px->cfg->peer_secret;
    if (kc_peer_seal(body, secret, strlen(secret), rq->hdr.api_key, rq->hdr.api_version, nonce) != 0) {
        px_req_reject(rq, "out of memory for a peer response");
        return;
    }
    px_req_respond(rq, body);
}

typedef struct px_wal_in {
    px_req *rq;
    uint8_t nonce[KC_PEER_NONCE_LEN];
} px_wal_in;

static void px_peer_wal_done(struct evbuffer *resp, const char *err, void *arg)
{
    px_wal_in *wi = arg;
    if (resp == NULL)
        px_req_reject(wi->rq, "%s", err ? err : "KzWalAppend failed");
    else
        px_peer_respond(wi->rq, wi->nonce, resp);
    free(wi);
}

void px_peer_dispatch(px_req *rq)
{
    px_proxy *px = px_client_proxy(rq->cl);
    const char *secret = px->cfg->peer_secret;
    const uint8_t *body = rq->frame->data + rq->body_off;
    size_t len = rq->frame->len - rq->body_off, plen = 0;
    px->m.peer_requests++;
    if (secret == NULL) {
        px_req_reject(rq, "peer RPC %s, but this proxy has no peer_secret configured",
                      kc_api_name(rq->hdr.api_key));
        return;
    }
    if (kc_peer_verify(body, len, secret, strlen(secret), rq->hdr.api_key, rq->hdr.api_version, NULL,
                       &plen) != 0) {
        px->m.peer_auth_failures++;
        px_req_reject(rq, "peer RPC %s failed authentication: check that every proxy has the same peer_secret",
                      kc_api_name(rq->hdr.api_key));
        return;
    }
    kc_rd rd;
    kc_rd_init(&rd, body, plen);
    kc_peer_auth auth;
    auth.sender = kc_rd_i32(&rd);
    auth.ts_ms = kc_rd_i64(&rd);
    if (kc_rd_remain(&rd) >= KC_PEER_NONCE_LEN)
        memcpy(auth.nonce, rd.p + rd.off, KC_PEER_NONCE_LEN);
    kc_rd_skip(&rd, KC_PEER_NONCE_LEN);
    if (rd.err) {
        px_req_reject(rq, "peer RPC too short for its authentication header");
        return;
    }
    int64_t skew = px_wall_ms() - auth.ts_ms;
    if (skew > PX_PEER_MAX_SKEW_MS || skew < -PX_PEER_MAX_SKEW_MS) {
        px->m.peer_auth_failures++;
        px_req_reject(rq, "peer RPC from node %d is %lld ms off this proxy's clock (replayed, or clocks not synchronised)",
                      auth.sender, (long long)skew);
        return;
    }
    if (rq->hdr.api_key == KC_API_KZ_HELLO) {
        kc_peer_hello in;
        if (kc_peer_hello_decode(&rd, &in) != 0) {
            px_req_reject(rq, "malformed KzHello: %s at byte %zu", rd.err, rq->body_off + rd.err_off);
            return;
        }
        struct evbuffer *out = evbuffer_new();
        if (out == NULL) {
            px_req_reject(rq, "out of memory");
            return;
        }
        kc_wr w;
        kc_wr_init(&w, out, NULL);
        kc_peer_hello me = {.node_id = px->cfg->node_id,
                            .zone = kc_str_c(px->cfg->zone),
                            .host = kc_str_c(px->cfg->advertised_host),
                            .port = px->cfg->advertised_port,
                            .started_ms = px->started_wall_ms};
        kc_peer_hello_encode(&w, &me);
        if (w.err)
            px_req_reject(rq, "out of memory");
        else
            px_peer_respond(rq, auth.nonce, out);
        evbuffer_free(out);
        return;
    }
    /* KzWalAppend */
    if (px->rt == NULL) {
        px_req_reject(rq, "KzWalAppend from node %d, but this proxy has no wal store configured", auth.sender);
        return;
    }
    px_wal_in *wi = calloc(1, sizeof(*wi));
    if (wi == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    wi->rq = rq;
    memcpy(wi->nonce, auth.nonce, sizeof(wi->nonce));
    /* auth.ts_ms is verified (MAC, skew): router-in starts no append past
     * ts_ms + the group's timeout, when the sender may have given up. */
    rt_in_append(px->rt, rq->frame, rd.p + rd.off, kc_rd_remain(&rd), auth.sender, auth.ts_ms,
                 px_client_stream(rq->cl), px_peer_wal_done, wi);
}
