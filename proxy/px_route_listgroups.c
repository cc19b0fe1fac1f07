/*
 * ListGroups: every broker coordinates some groups, so the zone's first proxy
 * asks them all and merges the lists; the zone's other proxies answer with
 * none, so each group is listed once. With ACLs, the merged list keeps only
 * the groups the principal may describe (all of them with describe on the
 * cluster), as Kafka answers.
 */
#include "config.h"

#include "proxy/px_route_int.h"
#include "proxy/px_acl.h"

#include "common/kz_log.h"

#include <event2/buffer.h>
#include <stdlib.h>

int px_listgroups_merge(kc_arena *a, const kc_listgroups_resp *const *in, int n, kc_listgroups_resp *out)
{
    *out = (kc_listgroups_resp){0};
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (in[i] && in[i]->error_code == 0 && in[i]->ngroups > 0)
            total += (size_t)in[i]->ngroups;
    out->groups = kc_arena_calloc(a, total, sizeof(*out->groups));
    if (out->groups == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        int16_t e = in[i] ? in[i]->error_code : KC_ERR_COORDINATOR_NOT_AVAILABLE;
        if (out->error_code == 0)
            out->error_code = e;
        if (in[i] == NULL)
            continue;
        if (in[i]->throttle_time_ms > out->throttle_time_ms)
            out->throttle_time_ms = in[i]->throttle_time_ms;
        if (e != 0)
            continue;
        for (int32_t g = 0; g < in[i]->ngroups; g++) {
            out->groups[out->ngroups] = in[i]->groups[g];
            out->groups[out->ngroups++].tags = (kc_tags){0};
        }
    }
    return 0;
}

int32_t px_listgroups_filter(kc_listgroups_resp *r, const px_acl_pass_ctx *ctx)
{
    if (ctx->allowed(ctx->arg, KZ_ACL_DESCRIBE, KZ_ACL_CLUSTER, kc_str_c(NULL)))
        return 0;
    int32_t kept = 0, n = r->ngroups;
    for (int32_t g = 0; g < n; g++)
        if (ctx->allowed(ctx->arg, KZ_ACL_DESCRIBE, KZ_ACL_GROUP, r->groups[g].group_id))
            r->groups[kept++] = r->groups[g];
    r->ngroups = kept;
    return n - kept;
}

static int px_lg_resp_decode(px_split *sp, px_sub *s, kc_rd *rd)
{
    return kc_listgroups_resp_decode(rd, sp->up_version, &s->arena, &s->r.lg);
}

static void px_lg_encode(kc_wr *w, px_split *sp)
{
    const kc_listgroups_resp **in = kc_arena_calloc(&sp->arena, (size_t)sp->nsubs, sizeof(*in));
    kc_listgroups_resp out;
    if (in == NULL) {
        w->err = 1;
        return;
    }
    for (int i = 0; i < sp->nsubs; i++)
        in[i] = sp->subs[i].fail_code == 0 && sp->subs[i].resp ? &sp->subs[i].r.lg : NULL;
    if (px_listgroups_merge(&sp->arena, in, sp->nsubs, &out) != 0) {
        w->err = 1;
        return;
    }
    if (sp->nsubs == 0 && sp->view == NULL)
        out.error_code = KC_ERR_COORDINATOR_NOT_AVAILABLE; /* no broker known yet */
    if (px_client_proxy(sp->rq->cl)->cfg->acl != NULL) {
        px_acl_pass_ctx ctx;
        px_acl_ctx(sp->rq->cl, &ctx);
        (void)px_listgroups_filter(&out, &ctx);
    }
    if (out.error_code != 0)
        kz_info("client %s: ListGroups over %d brokers: %s", px_client_peer(sp->rq->cl), sp->nsubs,
                kc_err_name(out.error_code));
    kc_listgroups_resp_encode(w, sp->version, &out);
}

static const px_route_ops px_lg_ops = {px_lg_resp_decode, px_lg_encode};

void px_route_listgroups(px_req *rq)
{
    px_split *sp = px_split_new(rq, &px_lg_ops);
    if (sp == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    kc_rd rd;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    kc_listgroups_req *in = &sp->in.lg;
    if (kc_listgroups_req_decode(&rd, sp->version, &sp->arena, in) != 0) {
        px_split_decode_fail(sp, &rd);
        return;
    }
    /* Clients send ListGroups to every broker they know, here every proxy
     * of their zone: only the zone's first proxy lists the groups (it asks
     * every real broker), the others answer with none, so each group is
     * listed once. */
    px_proxy *px = px_client_proxy(rq->cl);
    const px_node *zn;
    int fallback;
    int nz = px_vc_zone_nodes(px, px_client_zone(rq->cl), &zn, &fallback);
    int lister = nz > 0 && zn[0].node_id == px->cfg->node_id;
    /* Every broker coordinates some groups: ask them all. */
    int cap = 0;
    int32_t nb = sp->view && lister ? sp->view->nbrokers : 0;
    for (int32_t b = 0; b < nb; b++)
        if (px_split_sub_for(sp, sp->view->brokers[b].id, &cap) < 0)
            goto oom;
    struct evbuffer **bodies = calloc((size_t)(sp->nsubs ? sp->nsubs : 1), sizeof(*bodies));
    if (bodies == NULL)
        goto oom;
    for (int i = 0; i < sp->nsubs; i++) {
        bodies[i] = evbuffer_new();
        if (bodies[i]) {
            kc_wr w;
            kc_wr_init(&w, bodies[i], NULL);
            kc_listgroups_req_encode(&w, sp->up_version, in);
            px_sub_encoded(sp, i, &w, &bodies[i]);
        }
    }
    px_split_send(sp, bodies, 1, 0);
    free(bodies);
    return;
oom:
    px_req_reject(rq, "out of memory");
    px_split_free(sp);
}
