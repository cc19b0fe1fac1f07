/*
 * FindCoordinator (ApiKey 10), v0-v4, flexible from v3
 * (FindCoordinatorRequest.json, FindCoordinatorResponse.json).
 *
 * v4 (KIP-699) replaces the single Key with a CoordinatorKeys array and the
 * single coordinator in the response with a Coordinators array. This codec
 * maps fields one to one; moving between the single and batched forms when
 * the proxy changes version is the caller's job, because only the caller
 * knows whether a batch may be split.
 */
#include "config.h"

#include "codec/kc_msg.h"

#define KC_FINDCOORD_FLEX 3

/* Non-nullable strings never go out as null (e.g. a key left unset because
 * the message was decoded at v4): the empty string is valid in every version. */
static kc_str kc_fc_nonnull(kc_str s)
{
    static const kc_str empty = {"", 0};
    return s.len >= 0 ? s : empty;
}

/* ---------------- request ---------------- */

int kc_findcoordinator_req_decode(kc_rd *rd, int16_t version, kc_arena *a,
                                  kc_findcoordinator_req *out)
{
    const int flex = version >= KC_FINDCOORD_FLEX;
    *out = (kc_findcoordinator_req){0};
    out->key = kc_str_c(NULL);

    if (version <= 3)
        out->key = kc_rd_string(rd, flex);
    if (version >= 1)
        out->key_type = kc_rd_i8(rd);
    if (version >= 4) {
        /* []string: each key is at least its 1-byte compact length. */
        int32_t n = kc_rd_arraylen(rd, flex, 0, 1);
        if (rd->err)
            return -1;
        out->coordinator_keys = kc_arena_calloc(a, (size_t)n, sizeof(*out->coordinator_keys));
        if (out->coordinator_keys == NULL)
            return kc_rd_fail(rd, "out of memory");
        out->ncoordinator_keys = n;
        for (int32_t i = 0; i < n && rd->err == NULL; i++)
            out->coordinator_keys[i] = kc_rd_string(rd, flex);
    }
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_findcoordinator_req_encode(kc_wr *w, int16_t version, const kc_findcoordinator_req *in)
{
    const int flex = version >= KC_FINDCOORD_FLEX;
    if (version <= 3)
        kc_wr_string(w, kc_fc_nonnull(in->key), flex);
    if (version >= 1)
        kc_wr_i8(w, in->key_type);
    if (version >= 4) {
        int32_t n = in->ncoordinator_keys < 0 ? 0 : in->ncoordinator_keys;
        kc_wr_arraylen(w, n, flex);
        for (int32_t i = 0; i < n; i++)
            kc_wr_string(w, kc_fc_nonnull(in->coordinator_keys[i]), flex);
    }
    if (flex)
        kc_wr_tags(w, &in->tags);
}

/* ---------------- response ---------------- */

int kc_findcoordinator_resp_decode(kc_rd *rd, int16_t version, kc_arena *a,
                                   kc_findcoordinator_resp *out)
{
    const int flex = version >= KC_FINDCOORD_FLEX;
    *out = (kc_findcoordinator_resp){0};
    out->error_message = kc_str_c(NULL);
    out->host = kc_str_c(NULL);

    if (version >= 1)
        out->throttle_time_ms = kc_rd_i32(rd);
    if (version <= 3) {
        out->error_code = kc_rd_i16(rd);
        if (version >= 1)
            out->error_message = kc_rd_nstring(rd, flex);
        out->node_id = kc_rd_i32(rd);
        out->host = kc_rd_string(rd, flex);
        out->port = kc_rd_i32(rd);
    } else {
        /* Smallest coordinator: key 1, node_id 4, host 1, port 4,
         * error_code 2, error_message 1, tag count 1. */
        int32_t n = kc_rd_arraylen(rd, flex, 0, 14);
        if (rd->err)
            return -1;
        out->coordinators = kc_arena_calloc(a, (size_t)n, sizeof(*out->coordinators));
        if (out->coordinators == NULL)
            return kc_rd_fail(rd, "out of memory");
        out->ncoordinators = n;
        for (int32_t i = 0; i < n && rd->err == NULL; i++) {
            kc_findcoordinator_coord *c = &out->coordinators[i];
            c->key = kc_rd_string(rd, flex);
            c->node_id = kc_rd_i32(rd);
            c->host = kc_rd_string(rd, flex);
            c->port = kc_rd_i32(rd);
            c->error_code = kc_rd_i16(rd);
            c->error_message = kc_rd_nstring(rd, flex);
            kc_rd_tags(rd, &c->tags);
        }
    }
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_findcoordinator_resp_encode(kc_wr *w, int16_t version, const kc_findcoordinator_resp *in)
{
    const int flex = version >= KC_FINDCOORD_FLEX;
    if (version >= 1)
        kc_wr_i32(w, in->throttle_time_ms);
    if (version <= 3) {
        kc_wr_i16(w, in->error_code);
        if (version >= 1)
            kc_wr_string(w, in->error_message, flex);
        kc_wr_i32(w, in->node_id);
        kc_wr_string(w, kc_fc_nonnull(in->host), flex);
        kc_wr_i32(w, in->port);
    } else {
        int32_t n = in->ncoordinators < 0 ? 0 : in->ncoordinators;
        kc_wr_arraylen(w, n, flex);
        for (int32_t i = 0; i < n; i++) {
            const kc_findcoordinator_coord *c = &in->coordinators[i];
            kc_wr_string(w, kc_fc_nonnull(c->key), flex);
            kc_wr_i32(w, c->node_id);
            kc_wr_string(w, kc_fc_nonnull(c->host), flex);
            kc_wr_i32(w, c->port);
            kc_wr_i16(w, c->error_code);
            kc_wr_string(w, c->error_message, flex);
            kc_wr_tags(w, &c->tags);
        }
    }
    if (flex)
        kc_wr_tags(w, &in->tags);
}
