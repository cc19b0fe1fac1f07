/*
 * OffsetForLeaderEpoch (ApiKey 23), v0-v4, flexible from v4
 * (OffsetForLeaderEpochRequest.json, OffsetForLeaderEpochResponse.json).
 *
 * Consumers send it after a leader change to detect log truncation; the proxy
 * splits it by partition leader and merges the answers, so both directions
 * are decoded and encoded.
 */
#include "config.h"

#include "codec/kc_msg.h"

#define KC_OFLE_FLEX 4

static kc_str kc_ofle_nonnull(kc_str s)
{
    static const kc_str empty = {"", 0};
    return s.len >= 0 ? s : empty;
}

/* Smallest topic: a name and a partition array (2+4 bytes, or 1+1 compact
 * plus the tag count). */
static size_t kc_ofle_min_topic(int flex)
{
    return flex ? 3 : 6;
}

/* ---------------- request ---------------- */

static size_t kc_ofle_min_req_partition(int16_t version, int flex)
{
    size_t n = 4 + 4; /* Partition, LeaderEpoch */
    if (version >= 2)
        n += 4; /* CurrentLeaderEpoch */
    return n + (flex ? 1 : 0);
}

int kc_offsetforleaderepoch_req_decode(kc_rd *rd, int16_t version, kc_arena *a,
                                       kc_offsetforleaderepoch_req *out)
{
    const int flex = version >= KC_OFLE_FLEX;
    *out = (kc_offsetforleaderepoch_req){0};
    out->replica_id = version >= 3 ? kc_rd_i32(rd) : -2;

    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_ofle_min_topic(flex));
    if (rd->err)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_offsetforleaderepoch_req_topic *t = &out->topics[i];
        t->topic = kc_rd_string(rd, flex);
        int32_t np = kc_rd_arraylen(rd, flex, 0, kc_ofle_min_req_partition(version, flex));
        if (rd->err)
            break;
        t->partitions = kc_arena_calloc(a, (size_t)np, sizeof(*t->partitions));
        if (t->partitions == NULL)
            return kc_rd_fail(rd, "out of memory");
        t->npartitions = np;
        for (int32_t j = 0; j < np && rd->err == NULL; j++) {
            kc_offsetforleaderepoch_req_partition *p = &t->partitions[j];
            p->partition = kc_rd_i32(rd);
            p->current_leader_epoch = version >= 2 ? kc_rd_i32(rd) : -1;
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

void kc_offsetforleaderepoch_req_encode(kc_wr *w, int16_t version, const kc_offsetforleaderepoch_req *in)
{
    const int flex = version >= KC_OFLE_FLEX;
    if (version >= 3)
        kc_wr_i32(w, in->replica_id);
    int32_t n = in->ntopics < 0 ? 0 : in->ntopics;
    kc_wr_arraylen(w, n, flex);
    for (int32_t i = 0; i < n; i++) {
        const kc_offsetforleaderepoch_req_topic *t = &in->topics[i];
        kc_wr_string(w, kc_ofle_nonnull(t->topic), flex);
        int32_t np = t->npartitions < 0 ? 0 : t->npartitions;
        kc_wr_arraylen(w, np, flex);
        for (int32_t j = 0; j < np; j++) {
            const kc_offsetforleaderepoch_req_partition *p = &t->partitions[j];
            kc_wr_i32(w, p->partition);
            if (version >= 2)
                kc_wr_i32(w, p->current_leader_epoch);
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

/* ---------------- response ---------------- */

static size_t kc_ofle_min_resp_partition(int16_t version, int flex)
{
    size_t n = 2 + 4 + 8; /* ErrorCode, Partition, EndOffset */
    if (version >= 1)
        n += 4; /* LeaderEpoch */
    return n + (flex ? 1 : 0);
}

int kc_offsetforleaderepoch_resp_decode(kc_rd *rd, int16_t version, kc_arena *a,
                                        kc_offsetforleaderepoch_resp *out)
{
    const int flex = version >= KC_OFLE_FLEX;
    *out = (kc_offsetforleaderepoch_resp){0};
    if (version >= 2)
        out->throttle_time_ms = kc_rd_i32(rd);

    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_ofle_min_topic(flex));
    if (rd->err)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_offsetforleaderepoch_resp_topic *t = &out->topics[i];
        t->topic = kc_rd_string(rd, flex);
        int32_t np = kc_rd_arraylen(rd, flex, 0, kc_ofle_min_resp_partition(version, flex));
        if (rd->err)
            break;
        t->partitions = kc_arena_calloc(a, (size_t)np, sizeof(*t->partitions));
        if (t->partitions == NULL)
            return kc_rd_fail(rd, "out of memory");
        t->npartitions = np;
        for (int32_t j = 0; j < np && rd->err == NULL; j++) {
            kc_offsetforleaderepoch_resp_partition *p = &t->partitions[j];
            p->error_code = kc_rd_i16(rd);
            p->partition = kc_rd_i32(rd);
            p->leader_epoch = version >= 1 ? kc_rd_i32(rd) : -1;
            p->end_offset = kc_rd_i64(rd);
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

void kc_offsetforleaderepoch_resp_encode(kc_wr *w, int16_t version,
                                         const kc_offsetforleaderepoch_resp *in)
{
    const int flex = version >= KC_OFLE_FLEX;
    if (version >= 2)
        kc_wr_i32(w, in->throttle_time_ms);
    int32_t n = in->ntopics < 0 ? 0 : in->ntopics;
    kc_wr_arraylen(w, n, flex);
    for (int32_t i = 0; i < n; i++) {
        const kc_offsetforleaderepoch_resp_topic *t = &in->topics[i];
        kc_wr_string(w, kc_ofle_nonnull(t->topic), flex);
        int32_t np = t->npartitions < 0 ? 0 : t->npartitions;
        kc_wr_arraylen(w, np, flex);
        for (int32_t j = 0; j < np; j++) {
            const kc_offsetforleaderepoch_resp_partition *p = &t->partitions[j];
            kc_wr_i16(w, p->error_code);
            kc_wr_i32(w, p->partition);
            if (version >= 1)
                kc_wr_i32(w, p->leader_epoch);
            kc_wr_i64(w, p->end_offset);
            if (flex)
                kc_wr_tags(w, &p->tags);
        }
        if (flex)
            kc_wr_tags(w, &t->tags);
    }
    if (flex)
        kc_wr_tags(w, &in->tags);
}
