#include "config.h"

#include "meta-client/mc_xzone.h"

#include "codec/kc_peer.h"
#include "codec/kc_proto.h"

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
