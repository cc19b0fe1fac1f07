/*
 * Fetch (ApiKey 1), v4-v13, flexible from v12 (FetchRequest.json,
 * FetchResponse.json). v4 is the first version whose responses carry magic 2
 * batches and aborted transactions; v13 names topics by id instead of name.
 *
 * Tagged fields stay raw: the request's ClusterId (tag 0, top level) and the
 * response partition's DivergingEpoch, CurrentLeader and SnapshotId (tags 0-2)
 * pass through untouched unless the proxy rewrites them itself.
 */
#include "config.h"

#include "codec/kc_msg.h"
#include "codec/kc_proto.h"

#include <string.h>

#define KC_FETCH_FLEX 12
#define KC_FETCH_TOPIC_IDS 13

/* Smallest encoded topic entry: name (int16 or one uvarint byte) or a 16-byte
 * id, then the partitions array count, then tags when flexible. */
static size_t kc_fetch_topic_min(int16_t version, int flex)
{
    if (version >= KC_FETCH_TOPIC_IDS)
        return 16 + 1 + 1;
    return flex ? 1 + 1 + 1 : 2 + 4;
}

/* Topic names exist up to v12, ids from v13: read whichever this version has
 * and leave the other at its default ("" / all zero). */
static void kc_fetch_rd_topic(kc_rd *rd, int16_t version, int flex, kc_str *name, kc_uuid *id)
{
    *name = (kc_str){"", 0};
    *id = (kc_uuid){{0}};
    if (version >= KC_FETCH_TOPIC_IDS)
        *id = kc_rd_uuid(rd);
    else
        *name = kc_rd_string(rd, flex);
}

static void kc_fetch_wr_topic(kc_wr *w, int16_t version, int flex, kc_str name, kc_uuid id)
{
    if (version >= KC_FETCH_TOPIC_IDS) {
        kc_wr_uuid(w, id);
    } else {
        /* A topic decoded from v13 has no name; never write null for a
         * non-nullable string (the proxy must fill it in to downgrade). */
        kc_wr_string(w, name.len >= 0 ? name : (kc_str){"", 0}, flex);
    }
}

/* ---- request ---- */

static size_t kc_fetch_req_partition_min(int16_t version, int flex)
{
    size_t n = 4 + 8 + 4; /* Partition, FetchOffset, PartitionMaxBytes */
    if (version >= 5)
        n += 8; /* LogStartOffset */
    if (version >= 9)
        n += 4; /* CurrentLeaderEpoch */
    if (version >= 12)
        n += 4; /* LastFetchedEpoch */
    if (flex)
        n += 1; /* tags */
    return n;
}

static void kc_fetch_req_partition_decode(kc_rd *rd, int16_t version, int flex,
                                          kc_fetch_req_partition *p)
{
    p->current_leader_epoch = -1;
    p->last_fetched_epoch = -1;
    p->log_start_offset = -1;
    p->partition = kc_rd_i32(rd);
    if (version >= 9)
        p->current_leader_epoch = kc_rd_i32(rd);
    p->fetch_offset = kc_rd_i64(rd);
    if (version >= 12)
        p->last_fetched_epoch = kc_rd_i32(rd);
    if (version >= 5)
        p->log_start_offset = kc_rd_i64(rd);
    p->partition_max_bytes = kc_rd_i32(rd);
    if (flex)
        kc_rd_tags(rd, &p->tags);
}

static void kc_fetch_req_topic_decode(kc_rd *rd, int16_t version, int flex, kc_arena *a,
                                      kc_fetch_req_topic *t)
{
    kc_fetch_rd_topic(rd, version, flex, &t->topic, &t->topic_id);
    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_fetch_req_partition_min(version, flex));
    if (rd->err)
        return;
    t->partitions = kc_arena_calloc(a, (size_t)n, sizeof(*t->partitions));
    if (t->partitions == NULL) {
        kc_rd_fail(rd, "out of memory");
        return;
    }
    t->npartitions = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_fetch_req_partition_decode(rd, version, flex, &t->partitions[i]);
    if (flex)
        kc_rd_tags(rd, &t->tags);
}

static void kc_fetch_forgotten_decode(kc_rd *rd, int16_t version, int flex, kc_arena *a,
                                      kc_fetch_forgotten_topic *f)
{
    kc_fetch_rd_topic(rd, version, flex, &f->topic, &f->topic_id);
    int32_t n = kc_rd_arraylen(rd, flex, 0, 4);
    if (rd->err)
        return;
    f->partitions = kc_arena_calloc(a, (size_t)n, sizeof(*f->partitions));
    if (f->partitions == NULL) {
        kc_rd_fail(rd, "out of memory");
        return;
    }
    f->npartitions = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        f->partitions[i] = kc_rd_i32(rd);
    if (flex)
        kc_rd_tags(rd, &f->tags);
}

int kc_fetch_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_fetch_req *out)
{
    const int flex = version >= KC_FETCH_FLEX;
    *out = (kc_fetch_req){0};
    /* Defaults of the fields older versions lack (ReplicaId and MaxBytes are
     * in every version from v4, so they need none). */
    out->session_epoch = -1;
    out->rack_id = (kc_str){"", 0};
    out->replica_id = kc_rd_i32(rd);
    out->max_wait_ms = kc_rd_i32(rd);
    out->min_bytes = kc_rd_i32(rd);
    out->max_bytes = kc_rd_i32(rd);      /* v3+ */
    out->isolation_level = kc_rd_i8(rd); /* v4+ */
    if (version >= 7) {
        out->session_id = kc_rd_i32(rd);
        out->session_epoch = kc_rd_i32(rd);
    }
    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_fetch_topic_min(version, flex));
    if (rd->err)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_fetch_req_topic_decode(rd, version, flex, a, &out->topics[i]);
    if (version >= 7) {
        n = kc_rd_arraylen(rd, flex, 0, kc_fetch_topic_min(version, flex));
        if (rd->err)
            return -1;
        out->forgotten_topics_data =
            kc_arena_calloc(a, (size_t)n, sizeof(*out->forgotten_topics_data));
        if (out->forgotten_topics_data == NULL)
            return kc_rd_fail(rd, "out of memory");
        out->nforgotten_topics_data = n;
        for (int32_t i = 0; i < n && rd->err == NULL; i++)
            kc_fetch_forgotten_decode(rd, version, flex, a, &out->forgotten_topics_data[i]);
    }
    if (version >= 11)
        out->rack_id = kc_rd_string(rd, flex);
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_fetch_req_encode(kc_wr *w, int16_t version, const kc_fetch_req *in)
{
    const int flex = version >= KC_FETCH_FLEX;
    kc_wr_i32(w, in->replica_id);
    kc_wr_i32(w, in->max_wait_ms);
    kc_wr_i32(w, in->min_bytes);
    kc_wr_i32(w, in->max_bytes);
    kc_wr_i8(w, in->isolation_level);
    if (version >= 7) {
        kc_wr_i32(w, in->session_id);
        kc_wr_i32(w, in->session_epoch);
    }
    kc_wr_arraylen(w, in->ntopics, flex);
    for (int32_t i = 0; i < in->ntopics; i++) {
        const kc_fetch_req_topic *t = &in->topics[i];
        kc_fetch_wr_topic(w, version, flex, t->topic, t->topic_id);
        kc_wr_arraylen(w, t->npartitions, flex);
        for (int32_t j = 0; j < t->npartitions; j++) {
            const kc_fetch_req_partition *p = &t->partitions[j];
            kc_wr_i32(w, p->partition);
            if (version >= 9)
                kc_wr_i32(w, p->current_leader_epoch);
            kc_wr_i64(w, p->fetch_offset);
            if (version >= 12)
                kc_wr_i32(w, p->last_fetched_epoch);
            if (version >= 5)
                kc_wr_i64(w, p->log_start_offset);
            kc_wr_i32(w, p->partition_max_bytes);
            if (flex)
                kc_wr_tags(w, &p->tags);
        }
        if (flex)
            kc_wr_tags(w, &t->tags);
    }
    if (version >= 7) {
        kc_wr_arraylen(w, in->nforgotten_topics_data, flex);
        for (int32_t i = 0; i < in->nforgotten_topics_data; i++) {
            const kc_fetch_forgotten_topic *f = &in->forgotten_topics_data[i];
            kc_fetch_wr_topic(w, version, flex, f->topic, f->topic_id);
            kc_wr_arraylen(w, f->npartitions, flex);
            for (int32_t j = 0; j < f->npartitions; j++)
                kc_wr_i32(w, f->partitions[j]);
            if (flex)
                kc_wr_tags(w, &f->tags);
        }
    }
    if (version >= 11)
        kc_wr_string(w, in->rack_id.len >= 0 ? in->rack_id : (kc_str){"", 0}, flex);
    if (flex)
        kc_wr_tags(w, &in->tags);
}

/* ---- response ---- */

static size_t kc_fetch_resp_partition_min(int16_t version, int flex)
{
    /* PartitionIndex, ErrorCode, HighWatermark, LastStableOffset (v4+) */
    size_t n = 4 + 2 + 8 + 8;
    if (version >= 5)
        n += 8; /* LogStartOffset */
    if (version >= 11)
        n += 4; /* PreferredReadReplica */
    /* AbortedTransactions count and Records length; tags */
    n += flex ? 1 + 1 + 1 : 4 + 4;
    return n;
}

static void kc_fetch_resp_partition_decode(kc_rd *rd, int16_t version, int flex, kc_arena *a,
                                           kc_fetch_resp_partition *p)
{
    p->last_stable_offset = -1;
    p->log_start_offset = -1;
    p->preferred_read_replica = -1;
    p->records = (kc_bytes){NULL, -1};
    p->partition_index = kc_rd_i32(rd);
    p->error_code = kc_rd_i16(rd);
    p->high_watermark = kc_rd_i64(rd);
    p->last_stable_offset = kc_rd_i64(rd); /* v4+ */
    if (version >= 5)
        p->log_start_offset = kc_rd_i64(rd);
    /* ProducerId + FirstOffset (+ tags). Null (v4+) means none, kept as -1. */
    int32_t n = kc_rd_arraylen(rd, flex, 1, flex ? 17 : 16);
    if (rd->err)
        return;
    if (n >= 0) {
        p->aborted_transactions = kc_arena_calloc(a, (size_t)n, sizeof(*p->aborted_transactions));
        if (p->aborted_transactions == NULL) {
            kc_rd_fail(rd, "out of memory");
            return;
        }
    }
    p->naborted_transactions = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_fetch_aborted_txn *t = &p->aborted_transactions[i];
        t->producer_id = kc_rd_i64(rd);
        t->first_offset = kc_rd_i64(rd);
        if (flex)
            kc_rd_tags(rd, &t->tags);
    }
    if (version >= 11)
        p->preferred_read_replica = kc_rd_i32(rd);
    p->records = kc_rd_nbytes(rd, flex);
    if (flex)
        kc_rd_tags(rd, &p->tags);
}

static void kc_fetch_resp_topic_decode(kc_rd *rd, int16_t version, int flex, kc_arena *a,
                                       kc_fetch_resp_topic *t)
{
    kc_fetch_rd_topic(rd, version, flex, &t->topic, &t->topic_id);
    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_fetch_resp_partition_min(version, flex));
    if (rd->err)
        return;
    t->partitions = kc_arena_calloc(a, (size_t)n, sizeof(*t->partitions));
    if (t->partitions == NULL) {
        kc_rd_fail(rd, "out of memory");
        return;
    }
    t->npartitions = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_fetch_resp_partition_decode(rd, version, flex, a, &t->partitions[i]);
    if (flex)
        kc_rd_tags(rd, &t->tags);
}

int kc_fetch_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_fetch_resp *out)
{
    const int flex = version >= KC_FETCH_FLEX;
    *out = (kc_fetch_resp){0};
    out->throttle_time_ms = kc_rd_i32(rd); /* v1+ */
    if (version >= 7) {
        out->error_code = kc_rd_i16(rd);
        out->session_id = kc_rd_i32(rd);
    }
    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_fetch_topic_min(version, flex));
    if (rd->err)
        return -1;
    out->responses = kc_arena_calloc(a, (size_t)n, sizeof(*out->responses));
    if (out->responses == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->nresponses = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_fetch_resp_topic_decode(rd, version, flex, a, &out->responses[i]);
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_fetch_resp_encode(kc_wr *w, int16_t version, const kc_fetch_resp *in)
{
    const int flex = version >= KC_FETCH_FLEX;
    kc_wr_i32(w, in->throttle_time_ms);
    if (version >= 7) {
        kc_wr_i16(w, in->error_code);
        kc_wr_i32(w, in->session_id);
    }
    kc_wr_arraylen(w, in->nresponses, flex);
    for (int32_t i = 0; i < in->nresponses; i++) {
        const kc_fetch_resp_topic *t = &in->responses[i];
        kc_fetch_wr_topic(w, version, flex, t->topic, t->topic_id);
        kc_wr_arraylen(w, t->npartitions, flex);
        for (int32_t j = 0; j < t->npartitions; j++) {
            const kc_fetch_resp_partition *p = &t->partitions[j];
            kc_wr_i32(w, p->partition_index);
            kc_wr_i16(w, p->error_code);
            kc_wr_i64(w, p->high_watermark);
            kc_wr_i64(w, p->last_stable_offset);
            if (version >= 5)
                kc_wr_i64(w, p->log_start_offset);
            kc_wr_arraylen(w, p->naborted_transactions, flex);
            for (int32_t k = 0; k < p->naborted_transactions; k++) {
                const kc_fetch_aborted_txn *tx = &p->aborted_transactions[k];
                kc_wr_i64(w, tx->producer_id);
                kc_wr_i64(w, tx->first_offset);
                if (flex)
                    kc_wr_tags(w, &tx->tags);
            }
            if (version >= 11)
                kc_wr_i32(w, p->preferred_read_replica);
            /* Record data goes out by reference when w has the source frame. */
            kc_wr_bytes(w, p->records, flex);
            if (flex)
                kc_wr_tags(w, &p->tags);
        }
        if (flex)
            kc_wr_tags(w, &t->tags);
    }
    if (flex)
        kc_wr_tags(w, &in->tags);
}

/* ---- response partition tags (KIP-951 CurrentLeader) ---- */

int kc_fetch_partition_tags_parse(const kc_tags *tags, kc_fetch_partition_tags *out)
{
    *out = (kc_fetch_partition_tags){0};
    out->leader_id = -1;
    out->leader_epoch = -1;
    if (tags == NULL || tags->count == 0 || tags->raw.len <= 0)
        return 0;
    kc_rd rd;
    kc_rd_init(&rd, tags->raw.p, (size_t)tags->raw.len);
    for (uint32_t i = 0; i < tags->count && rd.err == NULL; i++) {
        uint32_t tag = kc_rd_uvarint(&rd);
        uint32_t size = kc_rd_uvarint(&rd);
        if (rd.err || size > kc_rd_remain(&rd))
            return -1;
        kc_bytes v = {rd.p + rd.off, (int32_t)size};
        if (tag == 0) {
            out->has_diverging_epoch = 1;
            out->diverging_epoch = v;
        } else if (tag == 1) {
            /* LeaderIdAndEpoch: two int32s, then the struct's own tags. */
            kc_rd sub;
            kc_rd_init(&sub, v.p, size);
            out->leader_id = kc_rd_i32(&sub);
            out->leader_epoch = kc_rd_i32(&sub);
            if (sub.err)
                return -1;
            out->has_current_leader = 1;
        } else if (tag == 2) {
            out->has_snapshot_id = 1;
            out->snapshot_id = v;
        }
        kc_rd_skip(&rd, size);
    }
    return rd.err ? -1 : 0;
}

/* Append an unsigned varint at b; returns the bytes written (at most 5). */
static size_t kc_fetch_put_uvarint(uint8_t *b, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    return n;
}

static size_t kc_fetch_put_tag(uint8_t *b, uint32_t tag, const void *v, uint32_t len)
{
    size_t n = kc_fetch_put_uvarint(b, tag);
    n += kc_fetch_put_uvarint(b + n, len);
    memcpy(b + n, v, len);
    return n + len;
}

int kc_fetch_partition_tags_build(kc_arena *a, const kc_fetch_partition_tags *pt, kc_tags *out)
{
    *out = (kc_tags){0};
    size_t cap = 0;
    if (pt->has_diverging_epoch && pt->diverging_epoch.len > 0)
        cap += 10 + (size_t)pt->diverging_epoch.len;
    if (pt->has_current_leader)
        cap += 10 + 9;
    if (pt->has_snapshot_id && pt->snapshot_id.len > 0)
        cap += 10 + (size_t)pt->snapshot_id.len;
    if (cap == 0)
        return 0;
    uint8_t *b = kc_arena_calloc(a, cap, 1);
    if (b == NULL)
        return -1;
    size_t n = 0;
    if (pt->has_diverging_epoch && pt->diverging_epoch.len > 0) {
        n += kc_fetch_put_tag(b + n, 0, pt->diverging_epoch.p, (uint32_t)pt->diverging_epoch.len);
        out->count++;
    }
    if (pt->has_current_leader) {
        /* LeaderId, LeaderEpoch (big-endian int32s), an empty tag section. */
        uint32_t id = (uint32_t)pt->leader_id, ep = (uint32_t)pt->leader_epoch;
        uint8_t v[9] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id,
                        (uint8_t)(ep >> 24), (uint8_t)(ep >> 16), (uint8_t)(ep >> 8), (uint8_t)ep, 0};
        n += kc_fetch_put_tag(b + n, 1, v, sizeof(v));
        out->count++;
    }
    if (pt->has_snapshot_id && pt->snapshot_id.len > 0) {
        n += kc_fetch_put_tag(b + n, 2, pt->snapshot_id.p, (uint32_t)pt->snapshot_id.len);
        out->count++;
    }
    out->raw.p = b;
    out->raw.len = (int32_t)n;
    return 0;
}
