/*
 * ListOffsets (ApiKey 2), v0-v7, flexible from v6 (ListOffsetsRequest.json,
 * ListOffsetsResponse.json).
 *
 * The proxy splits a ListOffsets request by partition leader and merges the
 * responses, so both directions are decoded and encoded. v0 differs in shape:
 * the request carries MaxNumOffsets per partition and the response a list of
 * offsets (OldStyleOffsets) instead of one Timestamp/Offset pair.
 */
#include "config.h"

#include "codec/kc_msg.h"

#define KC_LISTOFFSETS_FLEX 6

/* Topic names are never null on the wire; an unset one goes out as "". */
static kc_str kc_lo_nonnull(kc_str s)
{
    static const kc_str empty = {"", 0};
    return s.len >= 0 ? s : empty;
}

/* Smallest topic, request or response: a name and a partition array (2+4
 * bytes, or 1+1 compact plus the tag count). */
static size_t kc_lo_min_topic(int flex)
{
    return flex ? 3 : 6;
}

/* ---------------- request ---------------- */

static size_t kc_lo_min_req_partition(int16_t version, int flex)
{
    size_t n = 4 + 8; /* partition_index, timestamp */
    if (version >= 4)
        n += 4; /* current_leader_epoch */
    if (version == 0)
        n += 4; /* max_num_offsets */
    return n + (flex ? 1 : 0);
}

int kc_listoffsets_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_listoffsets_req *out)
{
    const int flex = version >= KC_LISTOFFSETS_FLEX;
    *out = (kc_listoffsets_req){0};

    out->replica_id = kc_rd_i32(rd);
    if (version >= 2)
        out->isolation_level = kc_rd_i8(rd);

    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_lo_min_topic(flex));
    if (rd->err)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_listoffsets_req_topic *t = &out->topics[i];
        t->name = kc_rd_string(rd, flex);
        int32_t np = kc_rd_arraylen(rd, flex, 0, kc_lo_min_req_partition(version, flex));
        if (rd->err)
            break;
        t->partitions = kc_arena_calloc(a, (size_t)np, sizeof(*t->partitions));
        if (t->partitions == NULL)
            return kc_rd_fail(rd, "out of memory");
        t->npartitions = np;
        for (int32_t j = 0; j < np && rd->err == NULL; j++) {
            kc_listoffsets_req_partition *p = &t->partitions[j];
            p->partition_index = kc_rd_i32(rd);
            p->current_leader_epoch = version >= 4 ? kc_rd_i32(rd) : -1;
            p->timestamp = kc_rd_i64(rd);
            p->max_num_offsets = version == 0 ? kc_rd_i32(rd) : 1;
            if (flex)
                kc_rd_tags(rd, &p->tags);
        }
        if (flex)
            kc_rd_tags(rd, &t->tags);
    }
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_listoffsets_req_encode(kc_wr *w, int16_t version, const kc_listoffsets_req *in)
{
    const int flex = version >= KC_LISTOFFSETS_FLEX;
    kc_wr_i32(w, in->replica_id);
    if (version >= 2)
        kc_wr_i8(w, in->isolation_level);
    int32_t n = in->ntopics < 0 ? 0 : in->ntopics;
    kc_wr_arraylen(w, n, flex);
    for (int32_t i = 0; i < n; i++) {
        const kc_listoffsets_req_topic *t = &in->topics[i];
        kc_wr_string(w, kc_lo_nonnull(t->name), flex);
        int32_t np = t->npartitions < 0 ? 0 : t->npartitions;
        kc_wr_arraylen(w, np, flex);
        for (int32_t j = 0; j < np; j++) {
            const kc_listoffsets_req_partition *p = &t->partitions[j];
            kc_wr_i32(w, p->partition_index);
            if (version >= 4)
                kc_wr_i32(w, p->current_leader_epoch);
            kc_wr_i64(w, p->timestamp);
            if (version == 0)
                kc_wr_i32(w, p->max_num_offsets);
            if (flex)
                kc_wr_tags(w, &p->tags);
        }
        if (flex)
            kc_wr_tags(w, &t->tags);
    }
    if (flex)
        kc_wr_tags(w, &in->tags);
}

/* ---------------- response ---------------- */

static size_t kc_lo_min_resp_partition(int16_t version, int flex)
{
    size_t n = 4 + 2; /* partition_index, error_code */
    if (version == 0)
        n += 4; /* old_style_offsets count (v0 is never flexible) */
    if (version >= 1)
        n += 8 + 8; /* timestamp, offset */
    if (version >= 4)
        n += 4; /* leader_epoch */
    return n + (flex ? 1 : 0);
}

int kc_listoffsets_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_listoffsets_resp *out)
{
    const int flex = version >= KC_LISTOFFSETS_FLEX;
    *out = (kc_listoffsets_resp){0};

    if (version >= 2)
        out->throttle_time_ms = kc_rd_i32(rd);

    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_lo_min_topic(flex));
    if (rd->err)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_listoffsets_resp_topic *t = &out->topics[i];
        t->name = kc_rd_string(rd, flex);
        int32_t np = kc_rd_arraylen(rd, flex, 0, kc_lo_min_resp_partition(version, flex));
        if (rd->err)
            break;
        t->partitions = kc_arena_calloc(a, (size_t)np, sizeof(*t->partitions));
        if (t->partitions == NULL)
            return kc_rd_fail(rd, "out of memory");
        t->npartitions = np;
        for (int32_t j = 0; j < np && rd->err == NULL; j++) {
            kc_listoffsets_resp_partition *p = &t->partitions[j];
            p->partition_index = kc_rd_i32(rd);
            p->error_code = kc_rd_i16(rd);
            p->timestamp = -1;
            p->offset = -1;
            p->leader_epoch = -1;
            if (version == 0) {
                int32_t no = kc_rd_arraylen(rd, flex, 0, 8);
                if (rd->err)
                    break;
                p->old_style_offsets = kc_arena_calloc(a, (size_t)no, sizeof(int64_t));
                if (p->old_style_offsets == NULL)
                    return kc_rd_fail(rd, "out of memory");
                p->nold_style_offsets = no;
                for (int32_t k = 0; k < no; k++)
                    p->old_style_offsets[k] = kc_rd_i64(rd);
            }
            if (version >= 1) {
                p->timestamp = kc_rd_i64(rd);
                p->offset = kc_rd_i64(rd);
            }
            if (version >= 4)
                p->leader_epoch = kc_rd_i32(rd);
            if (flex)
                kc_rd_tags(rd, &p->tags);
        }
        if (flex)
            kc_rd_tags(rd, &t->tags);
    }
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_listoffsets_resp_encode(kc_wr *w, int16_t version, const kc_listoffsets_resp *in)
{
    const int flex = version >= KC_LISTOFFSETS_FLEX;
    if (version >= 2)
        kc_wr_i32(w, in->throttle_time_ms);
    int32_t n = in->ntopics < 0 ? 0 : in->ntopics;
    kc_wr_arraylen(w, n, flex);
    for (int32_t i = 0; i < n; i++) {
        const kc_listoffsets_resp_topic *t = &in->topics[i];
        kc_wr_string(w, kc_lo_nonnull(t->name), flex);
        int32_t np = t->npartitions < 0 ? 0 : t->npartitions;
        kc_wr_arraylen(w, np, flex);
        for (int32_t j = 0; j < np; j++) {
            const kc_listoffsets_resp_partition *p = &t->partitions[j];
            kc_wr_i32(w, p->partition_index);
            kc_wr_i16(w, p->error_code);
            if (version == 0) {
                int32_t no = p->nold_style_offsets < 0 ? 0 : p->nold_style_offsets;
                kc_wr_arraylen(w, no, flex);
                for (int32_t k = 0; k < no; k++)
                    kc_wr_i64(w, p->old_style_offsets[k]);
            }
            if (version >= 1) {
                kc_wr_i64(w, p->timestamp);
                kc_wr_i64(w, p->offset);
            }
            if (version >= 4)
                kc_wr_i32(w, p->leader_epoch);
            if (flex)
                kc_wr_tags(w, &p->tags);
        }
        if (flex)
            kc_wr_tags(w, &t->tags);
    }
    if (flex)
        kc_wr_tags(w, &in->tags);
}
