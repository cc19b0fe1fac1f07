/*
 * Record batch v2 headers (DefaultRecordBatch.java): parsed and checked, never
 * decompressed. The proxy forwards client batches untouched, so all it needs
 * is to know where each batch ends and that its bytes are the ones the
 * producer checksummed.
 */
#include "config.h"

#include "codec/kc_crc32c.h"
#include "codec/kc_msg.h"

/* BaseOffset + Length: the part of a batch not counted in Length. */
#define KC_BATCH_LOG_OVERHEAD 12
/* Bytes up to and including Magic: enough to tell the format apart. */
#define KC_BATCH_UP_TO_MAGIC 17
/* Offset of Attributes, where the CRC coverage starts. */
#define KC_BATCH_CRC_START 21
/* Smallest Length a v2 batch can have: the header after the Length field. */
#define KC_BATCH_MIN_LENGTH (KC_RECORD_BATCH_HEADER_SIZE - KC_BATCH_LOG_OVERHEAD)

/* A big-endian 32-bit field of a batch header. */
static uint32_t kc_batch_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Fail with the reader put back at the start of the batch, so err_off names
 * the batch that is wrong rather than some field inside it. */
static int kc_batch_fail(kc_rd *rd, size_t start, const char *why)
{
    if (rd->err == NULL)
        rd->off = start;
    return kc_rd_fail(rd, why);
}

int kc_record_batch_decode(kc_rd *rd, kc_record_batch *out)
{
    const size_t start = rd->off;
    *out = (kc_record_batch){0};
    out->records.len = -1;
    if (rd->err)
        return -1;
    if (kc_rd_remain(rd) < KC_BATCH_LOG_OVERHEAD)
        return kc_batch_fail(rd, start, "truncated record batch");
    out->base_offset = kc_rd_i64(rd);
    out->batch_length = kc_rd_i32(rd);
    if (out->batch_length < KC_BATCH_MIN_LENGTH)
        return kc_batch_fail(rd, start, "record batch length too small");
    if ((uint64_t)out->batch_length > kc_rd_remain(rd))
        return kc_batch_fail(rd, start, "record batch length exceeds records");
    out->partition_leader_epoch = kc_rd_i32(rd);
    out->magic = kc_rd_i8(rd);
    if (out->magic != 2)
        return kc_batch_fail(rd, start, "record batch magic is not 2");
    out->crc = kc_rd_u32(rd);
    /* Everything after the CRC field up to the end of the batch. */
    const uint8_t *covered = rd->p + start + KC_BATCH_CRC_START;
    size_t ncovered = (size_t)out->batch_length - (KC_BATCH_CRC_START - KC_BATCH_LOG_OVERHEAD);
    if (kc_crc32c(0, covered, ncovered) != out->crc)
        return kc_batch_fail(rd, start, "record batch CRC mismatch");
    out->attributes = kc_rd_i16(rd);
    out->last_offset_delta = kc_rd_i32(rd);
    out->base_timestamp = kc_rd_i64(rd);
    out->max_timestamp = kc_rd_i64(rd);
    out->producer_id = kc_rd_i64(rd);
    out->producer_epoch = kc_rd_i16(rd);
    out->base_sequence = kc_rd_i32(rd);
    out->record_count = kc_rd_i32(rd);
    size_t nrecords = start + KC_BATCH_LOG_OVERHEAD + (size_t)out->batch_length - rd->off;
    out->records.p = rd->p + rd->off;
    out->records.len = (int32_t)nrecords;
    kc_rd_skip(rd, nrecords);
    return rd->err ? -1 : 0;
}

int kc_record_batches_validate(const kc_bytes *records, int allow_partial, kc_rd *rd,
                               size_t *partial_tail)
{
    size_t len = records->len > 0 ? (size_t)records->len : 0;
    kc_rd_init(rd, len ? records->p : NULL, len);
    if (partial_tail)
        *partial_tail = 0;
    int nbatches = 0;
    while (kc_rd_remain(rd) > 0) {
        const size_t start = rd->off;
        const size_t remain = kc_rd_remain(rd);
        const uint8_t *q = rd->p + start;
        /*
         * Decide whether what is left is a batch cut short (Kafka's
         * ByteBufferLogInputStream stops there) or a broken one. A length
         * that is too small or a wrong magic is corruption even in a tail;
         * a sane header whose length runs past the end is a cut.
         */
        int partial = remain < KC_BATCH_LOG_OVERHEAD;
        if (!partial) {
            int32_t blen = (int32_t)kc_batch_u32(q + 8);
            if (blen < KC_BATCH_MIN_LENGTH)
                return kc_batch_fail(rd, start, "record batch length too small");
            if (remain >= KC_BATCH_UP_TO_MAGIC && q[16] != 2)
                return kc_batch_fail(rd, start, "record batch magic is not 2");
            partial = (uint64_t)blen > remain - KC_BATCH_LOG_OVERHEAD;
        }
        if (partial) {
            if (!allow_partial)
                return kc_batch_fail(rd, start,
                                     remain < KC_BATCH_LOG_OVERHEAD
                                         ? "truncated record batch"
                                         : "record batch length exceeds records");
            if (partial_tail)
                *partial_tail = remain;
            kc_rd_skip(rd, remain);
            break;
        }
        kc_record_batch b;
        if (kc_record_batch_decode(rd, &b) != 0)
            return -1;
        nbatches++;
    }
    return nbatches;
}

int kc_record_batches_crc32c(const uint8_t *p, size_t len, uint32_t *crc)
{
    uint32_t c = 0;
    size_t off = 0;
    while (off < len) {
        const uint8_t *q = p + off;
        size_t remain = len - off;
        if (remain < KC_BATCH_CRC_START)
            return -1;
        int32_t blen = (int32_t)kc_batch_u32(q + 8);
        if (blen < KC_BATCH_MIN_LENGTH || (uint64_t)blen > remain - KC_BATCH_LOG_OVERHEAD || q[16] != 2)
            return -1;
        c = kc_crc32c(c, q, KC_BATCH_CRC_START);
        c = kc_crc32c_combine(c, kc_batch_u32(q + KC_BATCH_CRC_START - 4), (uint64_t)blen - (KC_BATCH_CRC_START - KC_BATCH_LOG_OVERHEAD));
        off += KC_BATCH_LOG_OVERHEAD + (size_t)blen;
    }
    *crc = c;
    return 0;
}
