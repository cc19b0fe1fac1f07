/*
 * Produce (ApiKey 0), v3-v9, flexible from v9 (ProduceRequest.json,
 * ProduceResponse.json). v3 is the first version that carries record batches
 * of magic 2 and a TransactionalId, which is why the proxy starts there.
 * The records field is kept as a pointer into the frame: the proxy forwards
 * client batches byte for byte.
 */
#include "config.h"

#include "codec/kc_msg.h"
#include "codec/kc_proto.h"

#define KC_PRODUCE_FLEX 9

/* ---- request ---- */

static void kc_produce_req_partition_decode(kc_rd *rd, int flex, kc_produce_req_partition *p)
{
    p->index = kc_rd_i32(rd);
    p->records = kc_rd_nbytes(rd, flex);
    if (flex)
        kc_rd_tags(rd, &p->tags);
}

static void kc_produce_req_topic_decode(kc_rd *rd, int flex, kc_arena *a, kc_produce_req_topic *t)
{
    t->name = kc_rd_string(rd, flex);
    /* Index int32 + records length (int32, or one uvarint byte) + tags. */
    int32_t n = kc_rd_arraylen(rd, flex, 0, flex ? 6 : 8);
    if (rd->err)
        return;
    t->partitions = kc_arena_calloc(a, (size_t)n, sizeof(*t->partitions));
    if (t->partitions == NULL) {
        kc_rd_fail(rd, "out of memory");
        return;
    }
    t->npartitions = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_produce_req_partition_decode(rd, flex, &t->partitions[i]);
    if (flex)
        kc_rd_tags(rd, &t->tags);
}

int kc_produce_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_produce_req *out)
{
    const int flex = version >= KC_PRODUCE_FLEX;
    *out = (kc_produce_req){0};
    out->transactional_id = kc_rd_nstring(rd, flex);
    out->acks = kc_rd_i16(rd);
    out->timeout_ms = kc_rd_i32(rd);
    /* Name (string length) + partitions array length (+ tags when flexible). */
    int32_t n = kc_rd_arraylen(rd, flex, 0, flex ? 3 : 6);
    if (rd->err)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_produce_req_topic_decode(rd, flex, a, &out->topics[i]);
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

/* An array count of the head, checked against the whole frame's bytes
 * (they are on their way); empty and null arrays are refused. */
static int32_t kc_produce_head_count(kc_rd *rd, int flex, size_t total, size_t min_elem)
{
    int64_t n = flex ? (int64_t)kc_rd_uvarint(rd) - 1 : (int64_t)kc_rd_i32(rd);
    if (rd->err)
        return -1;
    if (n <= 0)
        return kc_rd_fail(rd, "an empty or null array");
    if ((uint64_t)n > (total - rd->off) / min_elem)
        return kc_rd_fail(rd, "array count larger than the frame");
    return (int32_t)n;
}

/* Cut-through: the partition list of a request whose bytes are still
 * arriving (kc_msg.h). The same fields as kc_produce_req_decode up to the last
 * partition's records length; its records are announced, not read. */
int kc_produce_req_decode_head(kc_rd *rd, int16_t version, size_t total, size_t need_records, kc_arena *a,
                               kc_produce_req *out)
{
    const int flex = version >= KC_PRODUCE_FLEX;
    *out = (kc_produce_req){0};
    if (total < rd->len)
        return kc_rd_fail(rd, "more bytes than the frame holds");
    out->transactional_id = kc_rd_nstring(rd, flex);
    out->acks = kc_rd_i16(rd);
    out->timeout_ms = kc_rd_i32(rd);
    int32_t n = kc_produce_head_count(rd, flex, total, flex ? 3 : 6);
    if (n < 0)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_produce_req_topic *t = &out->topics[i];
        t->name = kc_rd_string(rd, flex);
        int32_t np = kc_produce_head_count(rd, flex, total, flex ? 6 : 8);
        if (np < 0)
            return -1;
        t->partitions = kc_arena_calloc(a, (size_t)np, sizeof(*t->partitions));
        if (t->partitions == NULL)
            return kc_rd_fail(rd, "out of memory");
        t->npartitions = np;
        for (int32_t j = 0; j < np && rd->err == NULL; j++) {
            kc_produce_req_partition *p = &t->partitions[j];
            if (i < n - 1 || j < np - 1) {
                kc_produce_req_partition_decode(rd, flex, p);
                continue;
            }
            /* The last one: its length, and the first need_records bytes. */
            p->index = kc_rd_i32(rd);
            int64_t len = flex ? (int64_t)kc_rd_uvarint(rd) - 1 : (int64_t)kc_rd_i32(rd);
            if (rd->err)
                return -1;
            if (len < 0)
                return kc_rd_fail(rd, "null records");
            /* Flexible versions end with three tag sections after them. */
            if ((uint64_t)len + (flex ? 3 : 0) > total - rd->off)
                return kc_rd_fail(rd, "records longer than the frame");
            size_t need = (size_t)len < need_records ? (size_t)len : need_records;
            if (need > kc_rd_remain(rd))
                return kc_rd_fail(rd, "records not here yet");
            p->records.p = rd->p + rd->off;
            p->records.len = (int32_t)len;
        }
        if (flex && i < n - 1)
            kc_rd_tags(rd, &t->tags);
    }
    return rd->err ? -1 : 0;
}

void kc_produce_req_encode(kc_wr *w, int16_t version, const kc_produce_req *in)
{
    const int flex = version >= KC_PRODUCE_FLEX;
    kc_wr_string(w, in->transactional_id, flex);
    kc_wr_i16(w, in->acks);
    kc_wr_i32(w, in->timeout_ms);
    kc_wr_arraylen(w, in->ntopics, flex);
    for (int32_t i = 0; i < in->ntopics; i++) {
        const kc_produce_req_topic *t = &in->topics[i];
        kc_wr_string(w, t->name, flex);
        kc_wr_arraylen(w, t->npartitions, flex);
        for (int32_t j = 0; j < t->npartitions; j++) {
            const kc_produce_req_partition *p = &t->partitions[j];
            kc_wr_i32(w, p->index);
            /* Large batches go out by reference when w has the source frame. */
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

/* ---- response ---- */

/* Smallest encoded partition response at version, for the array count check. */
static size_t kc_produce_resp_partition_min(int16_t version, int flex)
{
    size_t n = 4 + 2 + 8 + 8; /* Index, ErrorCode, BaseOffset, LogAppendTimeMs */
    if (version >= 5)
        n += 8; /* LogStartOffset */
    if (version >= 8)
        n += flex ? 1 + 1 : 4 + 2; /* RecordErrors count, ErrorMessage length */
    if (flex)
        n += 1; /* tags */
    return n;
}

static void kc_produce_resp_partition_decode(kc_rd *rd, int16_t version, int flex, kc_arena *a,
                                             kc_produce_resp_partition *p)
{
    p->log_append_time_ms = -1;
    p->log_start_offset = -1;
    p->error_message = kc_str_c(NULL);
    p->index = kc_rd_i32(rd);
    p->error_code = kc_rd_i16(rd);
    p->base_offset = kc_rd_i64(rd);
    p->log_append_time_ms = kc_rd_i64(rd); /* v2+, so always here from v3 */
    if (version >= 5)
        p->log_start_offset = kc_rd_i64(rd);
    if (version >= 8) {
        /* BatchIndex int32 + message length (int16, or one uvarint byte + tags). */
        int32_t n = kc_rd_arraylen(rd, flex, 0, 6);
        if (rd->err)
            return;
        p->record_errors = kc_arena_calloc(a, (size_t)n, sizeof(*p->record_errors));
        if (p->record_errors == NULL) {
            kc_rd_fail(rd, "out of memory");
            return;
        }
        p->nrecord_errors = n;
        for (int32_t i = 0; i < n && rd->err == NULL; i++) {
            kc_produce_record_error *e = &p->record_errors[i];
            e->batch_index = kc_rd_i32(rd);
            e->batch_index_error_message = kc_rd_nstring(rd, flex);
            if (flex)
                kc_rd_tags(rd, &e->tags);
        }
        p->error_message = kc_rd_nstring(rd, flex);
    }
    if (flex)
        kc_rd_tags(rd, &p->tags); /* v10+ CurrentLeader would be here */
}

static void kc_produce_resp_topic_decode(kc_rd *rd, int16_t version, int flex, kc_arena *a,
                                         kc_produce_resp_topic *t)
{
    t->name = kc_rd_string(rd, flex);
    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_produce_resp_partition_min(version, flex));
    if (rd->err)
        return;
    t->partitions = kc_arena_calloc(a, (size_t)n, sizeof(*t->partitions));
    if (t->partitions == NULL) {
        kc_rd_fail(rd, "out of memory");
        return;
    }
    t->npartitions = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_produce_resp_partition_decode(rd, version, flex, a, &t->partitions[i]);
    if (flex)
        kc_rd_tags(rd, &t->tags);
}

int kc_produce_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_produce_resp *out)
{
    const int flex = version >= KC_PRODUCE_FLEX;
    *out = (kc_produce_resp){0};
    int32_t n = kc_rd_arraylen(rd, flex, 0, flex ? 3 : 6);
    if (rd->err)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_produce_resp_topic_decode(rd, version, flex, a, &out->topics[i]);
    out->throttle_time_ms = kc_rd_i32(rd);
    if (flex)
        kc_rd_tags(rd, &out->tags); /* v10+ NodeEndpoints would be here */
    return kc_rd_finish(rd);
}

void kc_produce_resp_encode(kc_wr *w, int16_t version, const kc_produce_resp *in)
{
    const int flex = version >= KC_PRODUCE_FLEX;
    kc_wr_arraylen(w, in->ntopics, flex);
    for (int32_t i = 0; i < in->ntopics; i++) {
        const kc_produce_resp_topic *t = &in->topics[i];
        kc_wr_string(w, t->name, flex);
        kc_wr_arraylen(w, t->npartitions, flex);
        for (int32_t j = 0; j < t->npartitions; j++) {
            const kc_produce_resp_partition *p = &t->partitions[j];
            kc_wr_i32(w, p->index);
            kc_wr_i16(w, p->error_code);
            kc_wr_i64(w, p->base_offset);
            kc_wr_i64(w, p->log_append_time_ms);
            if (version >= 5)
                kc_wr_i64(w, p->log_start_offset);
            if (version >= 8) {
                kc_wr_arraylen(w, p->nrecord_errors, flex);
                for (int32_t k = 0; k < p->nrecord_errors; k++) {
                    const kc_produce_record_error *e = &p->record_errors[k];
                    kc_wr_i32(w, e->batch_index);
                    kc_wr_string(w, e->batch_index_error_message, flex);
                    if (flex)
                        kc_wr_tags(w, &e->tags);
                }
                kc_wr_string(w, p->error_message, flex);
            }
            if (flex)
                kc_wr_tags(w, &p->tags);
        }
        if (flex)
            kc_wr_tags(w, &t->tags);
    }
    kc_wr_i32(w, in->throttle_time_ms);
    if (flex)
        kc_wr_tags(w, &in->tags);
}
