/*
 * Authorization of client requests against the "acls" rule set (kz_acl).
 *
 * The proxy terminates client authentication and pools broker connections
 * under its own identity, so it is the one that enforces what each
 * principal may do. px_route*.c check every partition (a denied one gets
 * TOPIC_AUTHORIZATION_FAILED in its own slot and is never sent), Metadata
 * lists only describable topics (px_vcluster.c), FindCoordinator answers a
 * denied key in its slot (px_pass.c). The requests forwarded unchanged are
 * checked here (px_acl_pass): a denied one is answered by kzproxy with the
 * authorization error in the message's own format, or, for the old
 * versions whose answer kzproxy does not build, refused (connection closed,
 * one log line); never forwarded. The requests naming several topics or
 * config resources are split by px_pass.c (px_acl_split.c): the denied ones
 * answered by kzproxy, the others forwarded.

 */
#include "config.h"

#include "proxy/px_proxy.h"
#include "proxy/px_acl.h"

#include "common/kz_log.h"
#include "common/kz_time.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

/* ---------------- the check, the metric and the rate-limited log ---------------- */

#define PX_ACL_LOG_SLOTS 32
#define PX_ACL_LOG_WINDOW_MS 10000

/* One kind of denial recently logged: its further lines are counted, not
 * written, for PX_ACL_LOG_WINDOW_MS. The loop is single-threaded. */
typedef struct px_acl_logslot {
    uint32_t hash; /* principal, operation, resource kind */
    int used;
    int64_t first_ms;
    uint64_t suppressed;
} px_acl_logslot;

/* Per thread (workers, px_worker.c): each thread rate-limits its own lines. */
static _Thread_local px_acl_logslot px_acl_logs[PX_ACL_LOG_SLOTS];

/* Copy s into out for a log line: printable ASCII kept, the rest '?', cut
 * at outsz - 1 (names come from the wire and from certificates). */
static void px_acl_printable(char *out, size_t outsz, const char *s, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < outsz; i++)
        out[k++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
    out[k] = 0;
}

static uint32_t px_acl_hash(const char *principal, kz_acl_op op, kz_acl_res res)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = principal ? principal : ""; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ (uint32_t)op) * 16777619u;
    h = (h ^ (uint32_t)res) * 16777619u;
    return h ^ (principal ? 0 : 0x5bd1e995u);
}

static void px_acl_note(px_client *cl, const char *principal, kz_acl_op op, kz_acl_res res, kc_str name)
{
    int64_t now = kz_mono_ms();
    uint32_t h = px_acl_hash(principal, op, res);
    px_acl_logslot *s = NULL, *oldest = &px_acl_logs[0];
    for (int i = 0; i < PX_ACL_LOG_SLOTS; i++) {
        px_acl_logslot *l = &px_acl_logs[i];
        if (l->used && l->hash == h) {
            s = l;
            break;
        }
        if (!l->used || (oldest->used && l->first_ms < oldest->first_ms))
            oldest = l;
    }
    if (s != NULL && now - s->first_ms < PX_ACL_LOG_WINDOW_MS && now >= s->first_ms) {
        s->suppressed++;
        return;
    }
    uint64_t before = 0;
    if (s == NULL) {
        s = oldest;
        s->used = 1;
        s->hash = h;
    } else {
        before = s->suppressed;
    }
    s->first_ms = now;
    s->suppressed = 0;
    char who[160], what[160], more[96] = "";
    if (principal)
        px_acl_printable(who, sizeof(who), principal, strlen(principal));
    if (res != KZ_ACL_CLUSTER)
        px_acl_printable(what, sizeof(what), name.p ? name.p : "", name.len > 0 ? (size_t)name.len : 0);
    if (before > 0)
        snprintf(more, sizeof(more), " (%llu more like it since the last such line, not logged)",
                 (unsigned long long)before);
    kz_info("acl: denied %s%s%s %s on %s%s%s%s (client %s)%s", principal ? "principal \"" : "anonymous client",
            principal ? who : "", principal ? "\"" : "", kz_acl_op_name(op), kz_acl_res_name(res),
            res != KZ_ACL_CLUSTER ? " \"" : "", res != KZ_ACL_CLUSTER ? what : "", res != KZ_ACL_CLUSTER ? "\"" : "",
            px_client_peer(cl), more);
}

int px_acl_allowed(px_client *cl, kz_acl_op op, kz_acl_res res, kc_str name)
{
    const kz_acl *acl = px_client_proxy(cl)->cfg->acl;
    if (acl == NULL)
        return 1;
    return kz_acl_allows(acl, px_client_principal(cl), op, res, name.p, name.len > 0 ? (size_t)name.len : 0);
}

int px_acl_check(px_client *cl, kz_acl_op op, kz_acl_res res, kc_str name)
{
    if (px_acl_allowed(cl, op, res, name))
        return 1;
    px_proxy *px = px_client_proxy(cl);
    px->m.acl_denied[op][res]++;
    px_acl_note(cl, px_client_principal(cl), op, res, name);
    return 0;
}

/* ---------------- requests forwarded unchanged (px_acl_pass.c decides) ---------------- */

static int px_acl_ctx_check(void *arg, kz_acl_op op, kz_acl_res res, kc_str name)
{
    return px_acl_check(arg, op, res, name);
}

static int px_acl_ctx_allowed(void *arg, kz_acl_op op, kz_acl_res res, kc_str name)
{
    return px_acl_allowed(arg, op, res, name);
}

void px_acl_ctx(px_client *cl, px_acl_pass_ctx *ctx)
{
    ctx->check = px_acl_ctx_check;
    ctx->allowed = px_acl_ctx_allowed;
    ctx->arg = cl;
}

int px_acl_pass(px_req *rq)
{
    px_client *cl = rq->cl;
    if (px_client_proxy(cl)->cfg->acl == NULL)
        return 0;
    px_acl_pass_ctx ctx = {px_acl_ctx_check, px_acl_ctx_allowed, cl};
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        px_req_reject(rq, "out of memory");
        return 1;
    }
    const char *why = NULL;
    size_t err_off = 0;
    px_acl_verdict v = px_acl_pass_eval(&ctx, rq->hdr.api_key, rq->hdr.api_version, rq->frame->data + rq->body_off,
                                        rq->frame->len - rq->body_off, out, &why, &err_off);
    switch (v) {
    case PX_ACL_FORWARD:
        break;
    case PX_ACL_ANSWER:
        px_req_respond(rq, out);
        break;
    case PX_ACL_REFUSE:
        px_req_reject(rq, "%s v%d denied by the ACLs (%s); the connection is closed because kzproxy does not "
                      "build this response", kc_api_name(rq->hdr.api_key), rq->hdr.api_version, why ? why : "");
        break;
    case PX_ACL_MALFORMED:
        px_req_reject(rq, "malformed request: %s at byte %zu", why ? why : "?", rq->body_off + err_off);
        break;
    }
    evbuffer_free(out);
    return v != PX_ACL_FORWARD;
}
