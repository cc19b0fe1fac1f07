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
#include "proxy/px_replay.h"
#include "router/rt_router.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

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
    if (kc_peer_seal(body, secret, strlen(secret), rq->hdr.api_key, rq->hdr.api_version, KC_PEER_RECEIVER_UNKNOWN,
                     nonce) != 0) {
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

/* a - b, saturated at the int64 range (ts_ms comes off the wire). */
static int64_t px_ms_diff(int64_t a, int64_t b)
{
    if (b < 0 && a > INT64_MAX + b)
        return INT64_MAX;
    if (b > 0 && a < INT64_MIN + b)
        return INT64_MIN;
    return a - b;
}

/* Count a refused request and log it: one line per reason per 10 s, with
 * the number not logged since. Fills why with the answer's message. */
static void px_peer_refusal(px_proxy *px, px_replay_res rr, const kc_peer_auth *auth, int64_t now, int16_t api_key,
                            char *why, size_t why_size)
{
    static int64_t last_ms[PX_REPLAY_NRES];
    static uint64_t suppressed[PX_REPLAY_NRES];
    switch (rr) {
    case PX_REPLAY_SKEW:
        px->m.peer_rejected_skew++;
        snprintf(why, why_size,
                 "peer RPC from node %d refused: its clock is %lld ms off this proxy's (more than "
                 "peer_replay_window_ms %d): synchronise the proxies' clocks (NTP)",
                 auth->sender, (long long)px_ms_diff(now, auth->ts_ms), px->cfg->peer_replay_window_ms);
        break;
    case PX_REPLAY_BEFORE_START:
        px->m.peer_rejected_before_start++;
        snprintf(why, why_size,
                 "peer RPC from node %d refused: stamped %lld ms before this proxy started (it may have "
                 "reached the previous process), nothing appended; if this repeats, synchronise the "
                 "proxies' clocks (NTP)",
                 auth->sender, (long long)px_ms_diff(px->started_wall_ms, auth->ts_ms));
        break;
    case PX_REPLAY_SEEN:
        px->m.peer_rejected_replay++;
        snprintf(why, why_size,
                 "peer RPC from node %d refused: a replay (its nonce was already used), nothing appended",
                 auth->sender);
        break;
    default:
        px->m.peer_rejected_full++;
        snprintf(why, why_size,
                 "peer RPC from node %d refused: more than peer_replay_max_nonces (%d) requests within "
                 "peer_replay_window_ms: raise peer_replay_max_nonces",
                 auth->sender, px->cfg->peer_replay_max_nonces);
        break;
    }
    int i = (int)rr;
    if (last_ms[i] != 0 && now >= last_ms[i] && now - last_ms[i] < 10000) {
        suppressed[i]++;
        return;
    }
    if (suppressed[i])
        kz_warn("%s (%s; %llu more refused for this reason in the last 10 s)", why, kc_api_name(api_key),
                (unsigned long long)suppressed[i]);
    else
        kz_warn("%s (%s)", why, kc_api_name(api_key));
    last_ms[i] = now;
    suppressed[i] = 0;
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
    /* The MAC names the receiver: this proxy, or for KzHello only "unknown"
     * (DNS discovery's first question to an address; it changes nothing). */
    if (kc_peer_verify(body, len, secret, strlen(secret), rq->hdr.api_key, rq->hdr.api_version,
                       px->cfg->node_id, NULL, &plen) != 0 &&
        (rq->hdr.api_key != KC_API_KZ_HELLO ||
         kc_peer_verify(body, len, secret, strlen(secret), rq->hdr.api_key, rq->hdr.api_version,
                        KC_PEER_RECEIVER_UNKNOWN, NULL, &plen) != 0)) {
        px->m.peer_auth_failures++;
        px_req_reject(rq, "peer RPC %s failed authentication: check that every proxy has the same peer_secret "
                      "and that the sender's peers list gives this proxy's node_id (%d)",
                      kc_api_name(rq->hdr.api_key), px->cfg->node_id);
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
    /* Replay protection, after the MAC (so only a holder of the secret can
     * fill the set): the clock window, then the seen (sender, nonce) set. */
    int64_t now = px_wall_ms();
    int64_t win = px->cfg->peer_replay_window_ms;
    /* A KzWalAppend stamped before this process started may have been
     * accepted by the previous one (whose set is gone): refused. A KzHello
     * reads and changes nothing, and one that waited in the listen backlog
     * through a restart would otherwise mark this proxy down for a health
     * interval. */
    int since_start = rq->hdr.api_key == KC_API_KZ_WAL_APPEND;
    px_replay_res rr = px->replay ? px_replay_check(px->replay, now, auth.sender, auth.ts_ms, auth.nonce, since_start)
                       : auth.ts_ms < now - win || auth.ts_ms > now + win ? PX_REPLAY_SKEW
                                                                         : PX_REPLAY_OK;
    if (rr != PX_REPLAY_OK) {
        char why[300];
        px_peer_refusal(px, rr, &auth, now, rq->hdr.api_key, why, sizeof(why));
        if (rq->hdr.api_key == KC_API_KZ_WAL_APPEND && px->rt != NULL) {
            /* Answered, so the sender learns why; nothing is read or appended.
             * Not appended for sure: a retriable error unless it is a replay. */
            px_wal_in *wi = calloc(1, sizeof(*wi));
            if (wi == NULL) {
                px_req_reject(rq, "out of memory");
                return;
            }
            wi->rq = rq;
            memcpy(wi->nonce, auth.nonce, sizeof(wi->nonce));
            rt_in_refuse(px->rt, rq->frame, rd.p + rd.off, kc_rd_remain(&rd), auth.sender,
                         rr == PX_REPLAY_SEEN ? KC_ERR_INVALID_REQUEST : KC_ERR_NOT_LEADER_OR_FOLLOWER, why,
                         px_peer_wal_done, wi);
        } else {
            /* KzHello has no error field: the connection closes, and the
             * sender's health check marks this peer down, naming why. */
            px_req_reject(rq, "%s", why);
        }
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
                            .started_ms = px->started_wall_ms,
                            .flags = (px->draining == 1 ? KC_PEER_HELLO_DRAINING : 0) |
                                     KC_PEER_HELLO_SLICE_ERRORS};
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
