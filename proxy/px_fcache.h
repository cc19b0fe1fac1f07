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
 * transactions; a different leader epoch or topic id in the view (a topic
 * deleted and created again under the same name starts at epoch 0 again,
 * with a new id), any error from the broker for the partition, a high
 * watermark below cached data (a truncation), a log start offset above the
 * start of cached data (DeleteRecords, retention) or a DeleteRecords answer
 * through this proxy (px_fcache_drop) drops the partition's segments; and
 * a segment older than max_age_ms (fetch_cache_max_age_ms) is never served,
 * which bounds what a deletion elsewhere, unseen by this proxy and by a
 * backend without topic ids, can leave behind.
 *
 * One cache per process: the event-loop threads (workers) share it, and
 * every function below takes its mutex (held for a lookup or an insert,
 * never across I/O), so one consumer group's read serves the zone's other
 * groups whichever thread their connections landed on.
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
    uint64_t invalidations; /* partitions dropped: epoch or topic id change, error, truncation, deletion */
    uint64_t expirations; /* segments dropped for their age (max_age_ms) */
    uint64_t bytes;       /* record bytes held now (gauge) */
} px_fcache_stats;

/* What a partition's data is keyed by: all must match to be served. */
typedef struct px_fc_key {
    kc_str topic;
    kc_uuid topic_id; /* from the view; all zero when the backend has no topic ids */
    int32_t partition;
    int32_t epoch;    /* the partition's leader epoch in the view */
} px_fc_key;

/* A cache holding at most cap bytes of records, each segment served for at
 * most max_age_ms (> 0) after it was fetched; NULL when out of memory. */
px_fcache *px_fcache_new(size_t cap, int64_t max_age_ms);
void px_fcache_free(px_fcache *c);

/*
 * After a broker of another zone answered a partition of a Fetch: keep the
 * whole record batches of rp (checked with their CRC; a trailing partial
 * batch and anything after a bad one is not kept) from the frame f they lie
 * in (a reference is taken, or the bytes copied). k: the partition, its
 * topic id and leader epoch in the view; isolation: the fetch's; now_ms: a
 * monotonic clock. An answer with an error, a high watermark below cached
 * data or a log start offset above its start drops the partition instead.
 */
void px_fcache_put(px_fcache *c, const px_fc_key *k, int8_t isolation, int64_t now_ms, kc_frame *f,
                   const kc_fetch_resp_partition *rp);
/*
 * A Fetch partition at offset: 1 when the cache answers it, with *out the
 * partition's answer (records pointing into *frame, whose reference the
 * caller now owns and releases; batches from the one holding offset, up to
 * max_bytes but at least one), else 0. A different epoch or topic id drops
 * the partition's segments, and segments past their age are dropped.
 */
int px_fcache_get(px_fcache *c, const px_fc_key *k, int8_t isolation, int64_t offset, int32_t max_bytes,
                  int64_t now_ms, kc_fetch_resp_partition *out, kc_frame **frame);
/* Forget a partition (whatever its topic id): DeleteRecords through the proxy. */
void px_fcache_drop(px_fcache *c, kc_str topic, int32_t partition);
/* A copy of the counters (all zero for NULL). */
void px_fcache_stats_get(px_fcache *c, px_fcache_stats *out);

#endif
