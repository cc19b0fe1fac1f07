/*
 * ListGroups (ApiKey 16), v0-v4, flexible from v3 (ListGroupsRequest.json,
 * ListGroupsResponse.json). v4 adds the StatesFilter in the request and the
 * GroupState in the response (KIP-518).
 *
 * Each broker lists only the groups it coordinates: the proxy asks every
 * broker and merges the lists.
 */
#include "config.h"

#include "codec/kc_msg.h"

#define KC_LG_FLEX 3

static kc_str kc_lg_nonnull(kc_str s)
{
    static const kc_str empty = {"", 0};
    return s.len >= 0 ? s : empty;
}

int kc_listgroups_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_listgroups_req *out)
{
    const int flex = version >= KC_LG_FLEX;
    *out = (kc_listgroups_req){0};
    if (version >= 4) {
        int32_t n = kc_rd_arraylen(rd, flex, 0, 1);
        if (rd->err)
            return -1;
        out->states_filter = kc_arena_calloc(a, (size_t)n, sizeof(kc_str));
        if (out->states_filter == NULL)
            return kc_rd_fail(rd, "out of memory");
        out->nstates_filter = n;
        for (int32_t i = 0; i < n && rd->err == NULL; i++)
            out->states_filter[i] = kc_rd_string(rd, flex);
    }
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_listgroups_req_encode(kc_wr *w, int16_t version, const kc_listgroups_req *in)
{
    const int flex = version >= KC_LG_FLEX;
    if (version >= 4) {
        int32_t n = in->nstates_filter < 0 ? 0 : in->nstates_filter;
        kc_wr_arraylen(w, n, flex);
        for (int32_t i = 0; i < n; i++)
            kc_wr_string(w, kc_lg_nonnull(in->states_filter[i]), flex);
    }
    if (flex)
        kc_wr_tags(w, &in->tags);
}

static size_t kc_lg_min_group(int16_t version, int flex)
{
    /* GroupId, ProtocolType, GroupState (v4+): 2 bytes each, 1 compact; tags */
    size_t per = flex ? 1 : 2;
    return per * (version >= 4 ? 3 : 2) + (flex ? 1 : 0);
}

int kc_listgroups_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_listgroups_resp *out)
{
    const int flex = version >= KC_LG_FLEX;
    *out = (kc_listgroups_resp){0};
    if (version >= 1)
        out->throttle_time_ms = kc_rd_i32(rd);
    out->error_code = kc_rd_i16(rd);
    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_lg_min_group(version, flex));
    if (rd->err)
        return -1;
    out->groups = kc_arena_calloc(a, (size_t)n, sizeof(*out->groups));
    if (out->groups == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ngroups = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_listgroups_group *g = &out->groups[i];
        g->group_id = kc_rd_string(rd, flex);
        g->protocol_type = kc_rd_string(rd, flex);
        g->group_state = version >= 4 ? kc_rd_string(rd, flex) : (kc_str){"", 0};
        if (flex)
            kc_rd_tags(rd, &g->tags);
    }
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_listgroups_resp_encode(kc_wr *w, int16_t version, const kc_listgroups_resp *in)
{
    const int flex = version >= KC_LG_FLEX;
    if (version >= 1)
        kc_wr_i32(w, in->throttle_time_ms);
    kc_wr_i16(w, in->error_code);
    int32_t n = in->ngroups < 0 ? 0 : in->ngroups;
    kc_wr_arraylen(w, n, flex);
    for (int32_t i = 0; i < n; i++) {
        const kc_listgroups_group *g = &in->groups[i];
        kc_wr_string(w, kc_lg_nonnull(g->group_id), flex);
        kc_wr_string(w, kc_lg_nonnull(g->protocol_type), flex);
        if (version >= 4)
            kc_wr_string(w, kc_lg_nonnull(g->group_state), flex);
        if (flex)
            kc_wr_tags(w, &g->tags);
    }
    if (flex)
        kc_wr_tags(w, &in->tags);
}
