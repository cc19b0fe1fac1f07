/*
 * ow_reader: read a destination's slice of a WAL object, verified.
 *
 *  - ow_read_ranges: the RPC carried the ranges (offset, length, CRC32C) of
 *    the chunks meant for this destination: one ranged GET covering them
 *    all, then a CRC32C check of each.
 *  - ow_read_dest: only the key is known: GET the trailer (suffix range),
 *    GET the index, then one ranged GET of the destination's chunks.
 *
 * The callback gets every slice verified, or an error and no data: a short
 * read is OW_ETRUNCATED, a CRC or format mismatch OW_ECORRUPT, a missing
 * object OW_ENOTFOUND; store errors (OW_ETIMEOUT, OW_EAUTH...) pass through.
 * Bytes are never handed on unverified.
 */
#ifndef OW_READER_H
#define OW_READER_H

#include "codec/kc_buf.h"
#include "objwal/ow_store.h"
#include "objwal/ow_types.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ow_read ow_read;

typedef struct ow_slice {
    const uint8_t *p;  /* into frame->data */
    size_t len;
    int err;           /* OW_OK; OW_ECORRUPT (OW_READ_SLICE_ERRORS only): its bytes
                        * arrived but do not match its CRC32C (p NULL, len 0) */
} ow_slice;

typedef struct ow_read_result {
    int err;                     /* OW_OK or an ow_err */
    const char *errmsg;          /* sentence with the key and cause; "" when ok */
    kc_frame *frame;             /* holds the bytes; kc_frame_keep() it to keep the
                                  * slices past the callback (then kc_frame_release) */
    const ow_slice *slices;      /* one per range asked / chunk found */
    const ow_chunk_info *chunks; /* ow_read_dest: what each slice is; NULL for ranges */
    size_t nslices;
} ow_read_result;

/* r and all it points to (but a kept frame) live until the callback returns. */
typedef void (*ow_read_cb)(const ow_read_result *r, void *arg);

/*
 * Read n ranges (1..OW_MAX_CHUNKS, each non-empty; copied) of key in one
 * GET. Returns a handle (valid until the callback returns) or NULL if the
 * arguments are invalid or memory ran out (no callback then).
 */
ow_read *ow_read_ranges(ow_store *st, const char *key, const ow_range *ranges, size_t n,
                        ow_read_cb cb, void *arg);

/* ow_read_ranges with flags. OW_READ_SLICE_ERRORS: a range whose bytes all
 * arrived but fail their CRC32C is reported in its slice's err, and the
 * others are handed on, instead of failing the whole read: for ranges whose
 * CRC a third party vouched for (a producer's record batch CRCs), so that
 * one bad range costs only its own. */
#define OW_READ_SLICE_ERRORS 1
/* OW_READ_BATCH_CRC: ranges that are whole Kafka v2 record batches are
 * checked against a CRC32C derived from each batch's first 21 bytes and its
 * own CRC field (kc_record_batches_crc32c), not from every byte: the batches'
 * own CRCs, which cover their records, are left to the broker, which checks
 * each on append. Other ranges are read in full. No tap then. */
#define OW_READ_BATCH_CRC 2
/* OW_READ_JUST_WRITTEN: the object was stored a moment ago (a peer names it
 * in a KzWalAppend once its PUT succeeded), so an answer that it does not
 * exist, or that ends before a range does, is a store whose reads lag its
 * writes (s3rver answers a PUT before the file is fully written; some
 * S3-compatible stores are eventually consistent). The GET is repeated
 * after 20, 40, 80, 160 and 320 ms (OW_READ_LAG_TRIES) before the read
 * fails; each repeated GET counts in the store's read_lag_retries, and only
 * the last answer in its errors[]. An object that is really gone costs the
 * read about 0.6 s more. */
#define OW_READ_JUST_WRITTEN 4
#define OW_READ_LAG_TRIES 5
#define OW_READ_LAG_FIRST_MS 20
ow_read *ow_read_ranges_opt(ow_store *st, const char *key, const ow_range *ranges, size_t n,
                            int flags, ow_read_cb cb, void *arg);

/* Read every chunk of dest in key, found through the object's index. */
ow_read *ow_read_dest(ow_store *st, const char *key, const char *dest, ow_read_cb cb, void *arg);

/* Cancel: the callback will not run. */
void ow_read_cancel(ow_read *rd);

#endif
