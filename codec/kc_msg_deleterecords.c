/*
 * DeleteRecords (ApiKey 21), v0-v2, flexible from v2 (DeleteRecordsRequest.json,
 * DeleteRecordsResponse.json). v1 is v0 with throttling after the response.
 *
 * It moves a partition's log start offset and must reach the partition's
 * leader, so the proxy splits it by leader and merges the answers.
 */
#include "config.h"

#include "codec/kc_msg.h"

#define KC_DR_FLEX 2

static kc_str kc_dr_nonnull(kc_str s)
{
    static const kc_str empty = {"", 0};
    return s.len >= 0 ? s : empty;
}

static size_t kc_dr_min_topic(int flex)
{
    return flex ? 3 : 6;
}

/* ---------------- request ---------------- */

int kc_deleterecords_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_deleterecords_req *out)
{
    const int flex = version >= KC_DR_FLEX;
    *out = (kc_deleterecords_req){0};

    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_dr_min_topic(flex));
    if (rd->err)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_deleterecords_req_topic *t = &out->topics[i];
        t->name = kc_rd_string(rd, flex);
        /* PartitionIndex, Offset (+ tags) */
        int32_t np = kc_rd_arraylen(rd, flex, 0, flex ? 13 : 12);
        if (rd->err)
            break;
        t->partitions = kc_arena_calloc(a, (size_t)np, sizeof(*t->partitions));
        if (t->partitions == NULL)
            return kc_rd_fail(rd, "out of memory");
        t->npartitions = np;
        for (int32_t j = 0; j < np && rd->err == NULL; j++) {
            kc_deleterecords_req_partition *p = &t->partitions[j];
            p->partition_index = kc_rd_i32(rd);
            p->offset = kc_rd_i64(rd);
            if (flex)
                kc_rd_tags(rd, &p->tags);
        }
        if (flex)
            kc_rd_tags(rd, &t->tags);
    }
    out->timeout_ms = kc_rd_i32(rd);
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_deleterecords_req_encode(kc_wr *w, int16_t version, const kc_deleterecords_req *in)
{
    const int flex = version >= KC_DR_FLEX;
    int32_t n = in->ntopics < 0 ? 0 : in->ntopics;
    kc_wr_arraylen(w, n, flex);
    for (int32_t i = 0; i < n; i++) {
        const kc_deleterecords_req_topic *t = &in->topics[i];
        kc_wr_string(w, kc_dr_nonnull(t->name), flex);
        int32_t np = t->npartitions < 0 ? 0 : t->npartitions;
        kc_wr_arraylen(w, np, flex);
        for (int32_t j = 0; j < np; j++) {
            const kc_deleterecords_req_partition *p = &t->partitions[j];
            kc_wr_i32(w, p->partition_index);
            kc_wr_i64(w, p->offset);
            if (flex)
                kc_wr_tags(w, &p->tags);
        }
        if (flex)
            kc_wr_tags(w, &t->tags);
    }
    kc_wr_i32(w, in->timeout_ms);
    if (flex)
        kc_wr_tags(w, &in->tags);
}

/* ---------------- response ---------------- */

int kc_deleterecords_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_deleterecords_resp *out)
{
    const int flex = version >= KC_DR_FLEX;
    *out = (kc_deleterecords_resp){0};
    out->throttle_time_ms = kc_rd_i32(rd);

    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_dr_min_topic(flex));
    if (rd->err)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_deleterecords_resp_topic *t = &out->topics[i];
        t->name = kc_rd_string(rd, flex);
        /* PartitionIndex, LowWatermark, ErrorCode (+ tags) */
        int32_t np = kc_rd_arraylen(rd, flex, 0, flex ? 15 : 14);
        if (rd->err)
            break;
        t->partitions = kc_arena_calloc(a, (size_t)np, sizeof(*t->partitions));
        if (t->partitions == NULL)
            return kc_rd_fail(rd, "out of memory");
        t->npartitions = np;
        for (int32_t j = 0; j < np && rd->err == NULL; j++) {
            kc_deleterecords_resp_partition *p = &t->partitions[j];
            p->partition_index = kc_rd_i32(rd);
            p->low_watermark = kc_rd_i64(rd);
            p->error_code = kc_rd_i16(rd);
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

void kc_deleterecords_resp_encode(kc_wr *w, int16_t version, const kc_deleterecords_resp *in)
{
    const int flex = version >= KC_DR_FLEX;
    kc_wr_i32(w, in->throttle_time_ms);
    int32_t n = in->ntopics < 0 ? 0 : in->ntopics;
    kc_wr_arraylen(w, n, flex);
    for (int32_t i = 0; i < n; i++) {
        const kc_deleterecords_resp_topic *t = &in->topics[i];
        kc_wr_string(w, kc_dr_nonnull(t->name), flex);
        int32_t np = t->npartitions < 0 ? 0 : t->npartitions;
        kc_wr_arraylen(w, np, flex);
        for (int32_t j = 0; j < np; j++) {
            const kc_deleterecords_resp_partition *p = &t->partitions[j];
            kc_wr_i32(w, p->partition_index);
            kc_wr_i64(w, p->low_watermark);
            kc_wr_i16(w, p->error_code);
            if (flex)
                kc_wr_tags(w, &p->tags);
        }
        if (flex)
            kc_wr_tags(w, &t->tags);
    }
    if (flex)
        kc_wr_tags(w, &in->tags);
}
