/*
 * px_fcache: the fetch cache (fetch_cache_bytes). One upstream read per zone
 * for fan-out: the record batches this proxy fetched across zones for a
 * partition are kept for a while, so that the next consumer (another group)
 * of the same partition in this zone reads them from the proxy instead of
 * from a broker in another zone.
 *
 * What is kept: per (topic, partition), segments of whole record batches,
 * each with the high watermark, last stable offset and log start offset of
 * the answer it came from, the leader epoch of the view it was fetched
 * with and the isolation level of the fetch. A segment references the
 * broker's response frame (kc_frame, refcounted) when its batches are at
 * least half of that frame; otherwise (a frame of many partitions, most not
 * cached) its bytes are copied into a frame of their own, so the memory held
 * is at most about twice what is accounted. Least recently used segments go
 * first when the bytes pass the cap.
 *
 * Never stale: an answer is served only from data the broker sent, with the
 * watermarks it sent with it (never past them); a read_committed fetch is
 * served only from segments fetched read_committed with no aborted
 * transactions; a different leader epoch in the view, any error from the
 * broker for the partition, or a high watermark below cached data (a
 * truncation) drops the partition's segments.
 */
#ifndef PX_FCACHE_H
#define PX_FCACHE_H

#include "codec/kc_buf.h"
#include "codec/kc_msg.h"

#include <stddef.h>
#include <stdint.h>

typedef struct px_fcache px_fcache;

typedef struct px_fcache_stats {
    uint64_t hits;        /* partitions answered from the cache */
    uint64_t misses;      /* partitions fetched across zones with records (then cached) */
    uint64_t bytes_saved; /* record bytes answered from the cache */
    uint64_t evictions;   /* segments dropped for the cap */
    uint64_t invalidations; /* partitions dropped: epoch change, error, truncation */
    uint64_t bytes;       /* record bytes held now (gauge) */
} px_fcache_stats;

/* A cache holding at most cap bytes of records; NULL when out of memory. */
px_fcache *px_fcache_new(size_t cap);
void px_fcache_free(px_fcache *c);

/*
 * After a broker of another zone answered a partition of a Fetch: keep the
 * whole record batches of rp (checked with their CRC; a trailing partial
 * batch and anything after a bad one is not kept) from the frame f they lie
 * in (a reference is taken, or the bytes copied). epoch: the partition's
 * leader epoch in the view; isolation: the fetch's. An answer with an error,
 * or a high watermark below cached data, drops the partition instead.
 */
void px_fcache_put(px_fcache *c, kc_str topic, int32_t partition, int32_t epoch, int8_t isolation,
                   kc_frame *f, const kc_fetch_resp_partition *rp);
/*
 * A Fetch partition at offset: 1 when the cache answers it, with *out the
 * partition's answer (records pointing into *frame, whose reference the
 * caller now owns and releases; batches from the one holding offset, up to
 * max_bytes but at least one), else 0. A different epoch drops the
 * partition's segments.
 */
int px_fcache_get(px_fcache *c, kc_str topic, int32_t partition, int32_t epoch, int8_t isolation, int64_t offset,
                  int32_t max_bytes, kc_fetch_resp_partition *out, kc_frame **frame);
/* Forget a partition. */
void px_fcache_drop(px_fcache *c, kc_str topic, int32_t partition);
const px_fcache_stats *px_fcache_stats_get(const px_fcache *c);

#endif
