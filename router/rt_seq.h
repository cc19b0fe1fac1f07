/*
 * rt_seq: an idempotent producer's sequence across a failure, per partition,
 * as a broker checks it. When a batch fails with a retriable code before it
 * reached the broker, a later batch of the same producer that the client had
 * already sent must not land first: a broker that checks sequences answers
 * it OUT_OF_ORDER_SEQUENCE, and one that does not (librdkafka's mock, for a
 * producer without a transactional id) appends it, after which the client
 * takes the failed batch as written although it never was. A mark records
 * the earliest failed sequence; later sequences are held until its retry
 * comes (a batch of that producer at or below it) or RT_SEQ_HOLD_MS pass.
 * Router-out keeps one per order key (rt_order.c); the direct path without
 * a router keeps one per client connection and partition (px_route_produce.c).
 */
#ifndef RT_SEQ_H
#define RT_SEQ_H

#include "codec/kc_buf.h"

#include <stdint.h>

/* What must not overtake a failed batch are the batches the client sent
 * before it read the failure: they come within a round trip. A retry can
 * also come on another connection (the partition's virtual leader moved to
 * another proxy), and then waiting longer would only stall the partition. */
#define RT_SEQ_HOLD_MS 2000

typedef struct rt_seqmark {
    int set;
    int16_t epoch;
    int32_t seq;      /* the earliest failed base sequence */
    int64_t pid;
    int64_t until_ms; /* the hold ends then at the latest */
} rt_seqmark;

/* 1 when a batch (record batch v2 in records) that failed with code is one a
 * mark is for: an idempotent producer's (producer id and base sequence set),
 * failed with an error the client retries. */
int rt_seq_markable(kc_bytes records, int16_t code);
/* Record that the batch in records failed (rt_seq_markable was 1): sets the
 * mark, or renews its deadline when it already holds an earlier sequence of
 * the same producer session. */
void rt_seq_failed(rt_seqmark *m, kc_bytes records, int64_t now_ms);
/* 1 when the batch in records must wait for the marked one's retry. Clears
 * the mark (set 0) when it expired, records are another producer session's,
 * or they are the retry itself (a sequence at or below the mark). Batches
 * without a producer id are never held. */
int rt_seq_hold(rt_seqmark *m, kc_bytes records, int64_t now_ms);

#endif
