#include "config.h"

#include "meta-client/mc_xzone.h"

#include "codec/kc_peer.h"
#include "codec/kc_proto.h"
#include "meta-client/mc_cluster.h"

#include <string.h>

int mc_xz_category(int16_t api_key)
{
    if (kc_peer_api(api_key))
        return MC_XZ_RPC;
    switch (api_key) {
    case KC_API_METADATA:
    case KC_API_APIVERSIONS:
    case KC_API_FINDCOORDINATOR:
    case KC_API_DESCRIBECLUSTER:
        return MC_XZ_METADATA;
    default:
        return MC_XZ_OTHER;
    }
}

void mc_xz_count(mc_xz *m, int dir, int kind, int16_t api_key, uint64_t n)
{
    if (m)
        m->bytes[dir & 1][kind & 1][mc_xz_category(api_key)] += n;
}

void mc_xz_payload(mc_xz *m, int dir, int kind, uint64_t n)
{
    if (m == NULL)
        return;
    uint64_t *other = &m->bytes[dir & 1][kind & 1][MC_XZ_OTHER];
    if (n > *other)
        n = *other; /* never more than was counted */
    *other -= n;
    m->bytes[dir & 1][kind & 1][MC_XZ_PAYLOAD] += n;
}

const char *mc_xz_category_name(int cat)
{
    static const char *const names[MC_XZ_NCAT] = {"payload", "rpc", "metadata", "other"};
    return cat >= 0 && cat < MC_XZ_NCAT ? names[cat] : "other";
}

uint64_t mc_xz_total(const mc_xz *m, int dir, int kind, int cat)
{
    uint64_t t = 0;
    for (int k = 0; k < 2; k++) {
        if (kind >= 0 && k != kind)
            continue;
        for (int c = 0; c < MC_XZ_NCAT; c++)
            if (cat < 0 || c == cat)
                t += m->bytes[dir & 1][k][c];
    }
    return t;
}

uint64_t mc_xz_kind(const mc_xz *m, int kind)
{
    switch (kind) {
    case MC_XZ_KIND_PRODUCE:
        return mc_xz_total(m, MC_XZ_OUT, -1, MC_XZ_PAYLOAD);
    case MC_XZ_KIND_FETCH:
        return mc_xz_total(m, MC_XZ_IN, -1, MC_XZ_PAYLOAD);
    case MC_XZ_KIND_RPC:
        return mc_xz_total(m, MC_XZ_OUT, -1, MC_XZ_RPC) + mc_xz_total(m, MC_XZ_IN, -1, MC_XZ_RPC);
    case MC_XZ_KIND_CONTROL:
        return mc_xz_total(m, MC_XZ_OUT, -1, MC_XZ_METADATA) + mc_xz_total(m, MC_XZ_IN, -1, MC_XZ_METADATA) +
               mc_xz_total(m, MC_XZ_OUT, -1, MC_XZ_OTHER) + mc_xz_total(m, MC_XZ_IN, -1, MC_XZ_OTHER);
    default:
        return 0;
    }
}

const char *mc_xz_kind_name(int kind)
{
    static const char *const names[MC_XZ_NKIND] = {"produce_payload", "fetch_payload", "peer_rpc",
                                                   "metadata_control"};
    return kind >= 0 && kind < MC_XZ_NKIND ? names[kind] : "metadata_control";
}

void mc_xz_replication(mc_xz *m, const struct mc_view *v, const char *topic, int32_t topic_len,
                       int32_t partition, uint64_t n)
{
    if (m == NULL || v == NULL || topic_len < 0)
        return;
    const mc_partition *p = mc_view_partition(v, (kc_str){topic, topic_len}, partition);
    const mc_broker *leader = p ? mc_view_broker(v, p->leader_id) : NULL;
    if (leader == NULL || leader->rack == NULL)
        return;
    uint64_t others = 0;
    for (int32_t i = 0; i < p->nreplicas; i++) {
        const mc_broker *b = p->replicas[i] == p->leader_id ? NULL : mc_view_broker(v, p->replicas[i]);
        if (b && b->rack && strcmp(b->rack, leader->rack) != 0)
            others++;
    }
    m->replication_est += n * others;
}
