/*
 * rt_router: zone-aware routing of Produce (see docs/ARCHITECTURE.md,
 * docs/PEER_RPC.md).
 *
 * router-out (in the producer's zone): partitions whose leader is in another
 * zone take the WAL path. Their record batches go into a WAL object (one
 * ow_writer per destination zone, so a destination's slices are contiguous
 * and read with one ranged GET); when the object is stored it queues, in
 * seal order, for its one KzWalAppend RPC to a healthy peer of the leader's
 * zone, which answers with the leader's per-partition results. One RPC per
 * zone is in flight: the next is built once the previous has its outcome.
 *
 * router-in (in the leader's zone): a KzWalAppend reads its slices with one
 * ranged GET, checks each CRC32C, and appends them to the leaders over
 * same-zone connections in ProduceRequests carrying the client's batches
 * byte for byte, with the client's acks, timeout and transactional id. It
 * starts no append after the sender's ts_ms + the group's timeout.
 *
 * At most once: an RPC that may have reached a peer is never resent (its
 * partitions get REQUEST_TIMED_OUT); one refused at once by a connection in
 * backoff goes to the next peer. With the start deadline (the sender waits
 * longer), a proxy appends each slice at most once; the client's retry is a
 * new batch.
 *
 * Order per (client connection, partition): objects are queued in seal
 * order, one RPC per zone in flight, router-in appends one connection's
 * RPCs in arrival order. An order key per (stream, topic, partition) with
 * parts in flight fails, instead of sending, later parts of a partition
 * whose earlier part failed (they would overtake the client's retry), and
 * rt_out_inflight / the feed hold back a batch that would take another path
 * (direct, another zone) past parts still in flight.
 *
 * Failure: any failure (upload, RPC, peer, GET, CRC, leader moved, deadline)
 * becomes a retriable Kafka error on the partitions concerned, logged at info
 * once per (cause, peer) per 10 s; nothing is reported as written before the
 * leader said so.
 */
#ifndef RT_ROUTER_H
#define RT_ROUTER_H

#include "codec/kc_arena.h"
#include "codec/kc_buf.h"
#include "codec/kc_msg.h"
#include "meta-client/mc_cluster.h"
#include "meta-client/mc_peers.h"
#include "objwal/ow_gc.h"
#include "objwal/ow_store.h"
#include "objwal/ow_writer.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct kz_acl;

typedef struct rt_router rt_router;

typedef struct rt_config {
    int32_t node_id;
    const char *zone;
    const void *secret; /* peer RPC secret (not copied) */
    size_t secret_len;
    ow_store *store;    /* not owned */
    ow_gc *gc;          /* optional, not owned */
    uint64_t seal_bytes;
    uint32_t seal_age_ms;
    uint32_t seal_idle_ms; /* also seal when no append came for this long (0: off) */
    unsigned max_inflight_uploads;
    uint64_t mem_cap;   /* per destination zone */
    const char *key_prefix;
    int read_check_payload; /* router-in: CRC32C over every byte read, not derived from the
                             * batch headers (OW_READ_BATCH_CRC) */
    int rpc_timeout_ms; /* on top of the produce timeout */
    int cross_zone_direct; /* policy: never take the WAL path */
    int cross_zone_auto;   /* policy "auto": by the rate per destination zone (rt_policy.c) */
    double auto_wal_above, auto_direct_below; /* bytes/s thresholds */
    int auto_min_dwell_ms, auto_window_ms;
    const struct kz_acl *acl; /* router-in checks each partition's producer against it;
                               * NULL: allow all (not owned) */
} rt_config;

typedef struct rt_stats {
    uint64_t out_batches;       /* client produce requests (with WAL partitions) */
    uint64_t out_parts;         /* partitions sent on the WAL path */
    uint64_t out_bytes;         /* record bytes sent on the WAL path (cross-zone bytes avoided) */
    uint64_t out_errors;        /* WAL-path partitions answered with an error */
    uint64_t out_waits;         /* appends that waited for writer memory */
    uint64_t rpcs_sent;
    uint64_t rpcs_failed;       /* attempts that failed (refused, connection, timeout, bad answer) */
    uint64_t rpcs_retried;      /* refused at once (never sent), so sent to another peer of the zone */
    uint64_t order_holds;       /* partitions answered NOT_LEADER_OR_FOLLOWER: a path switch would overtake
                                 * WAL parts of the same (client connection, partition) in flight */
    uint64_t order_failures;    /* WAL parts failed, not sent: an earlier batch of their (client
                                 * connection, partition) failed, and they would overtake its retry */
    uint64_t in_rpcs;           /* KzWalAppend served */
    uint64_t in_parts;
    uint64_t in_bytes;          /* record bytes appended for peers */
    uint64_t in_errors;         /* partitions answered with an error */
    uint64_t in_read_errors;    /* objects that could not be read or verified */
    uint64_t in_corrupt;        /* partitions whose slice failed its CRC32C (CORRUPT_MESSAGE) */
    uint64_t in_topic_lookups;  /* Metadata asked for topics an append named, unknown here */
    uint64_t in_bad_keys;       /* KzWalAppend refused: its object key is outside this store's
                                 * prefix or not a plain key (nothing read) */
    uint64_t in_acl_denied;     /* partitions refused: the producer's principal may not produce */
    uint64_t in_refused;        /* KzWalAppend refused whole (bad key, replay, clock) */
} rt_stats;

/* NULL with a sentence in errstr on a bad configuration. */
rt_router *rt_new(struct event_base *base, mc_cluster *mc, mc_peers *peers, const rt_config *cfg,
                  char *errstr, size_t errstr_size);
/* Flush, and free; requests still in flight fail. */
void rt_free(rt_router *rt);
const rt_stats *rt_get_stats(const rt_router *rt);
/* Drain: seal every open WAL object now (they upload and go to their peers). */
void rt_flush(rt_router *rt);
/* 1 while WAL objects are open, uploading or waiting for their KzWalAppend,
 * or peers' appends are being served. */
int rt_busy(const rt_router *rt);
/* Live reload: the seal thresholds (flush_bytes, flush_ms, flush_idle_ms)
 * for every writer, now and later, and the cross-zone policy. */
void rt_set_live(rt_router *rt, uint64_t seal_bytes, uint32_t seal_age_ms, uint32_t seal_idle_ms,
                 int cross_zone_direct);
/* Live reload: the ACL router-in checks appends against (not owned). */
void rt_set_acl(rt_router *rt, const struct kz_acl *acl);
/* Bytes held by the writers (for /metrics). */
uint64_t rt_mem_used(const rt_router *rt);

/* ---- router-out ---- */

enum { RT_PATH_DIRECT = 0, RT_PATH_WAL = 1, RT_PATH_CROSS = 2 };

/* The path for a partition whose leader is leader_id in view v: direct when
 * the leader is in this zone, WAL when a healthy peer serves its zone, else
 * a direct cross-zone append (counted). */
int rt_out_path(rt_router *rt, const mc_view *v, int32_t leader_id);
/* The same for a partition carrying bytes of records, under cross_zone_policy
 * "auto": the bytes count in the destination zone's rate, which picks WAL
 * or cross-zone direct with hysteresis (rt_policy.c). */
int rt_out_path_n(rt_router *rt, const mc_view *v, int32_t leader_id, int64_t bytes);
/* The auto policy's per-zone choice, rate and switches, Prometheus text. */
void rt_policy_metrics(rt_router *rt, struct evbuffer *b);

typedef struct rt_part {
    kc_str topic;       /* into the client's frame */
    int32_t partition;
    int32_t leader_id;
    kc_bytes records;   /* into the client's frame */
    kc_produce_resp_partition result; /* filled before done; strings in the batch's arena */
    /* router-private */
    struct rt_okey *okey; /* its (stream, topic, partition) order key, NULL if none */
    int poisoned;         /* it failed and counts in okey->open_fails */
    int tracked;          /* it is in an object of okey->dest, not resolved yet */
} rt_part;

typedef struct rt_batch rt_batch;
typedef void (*rt_batch_done_fn)(rt_batch *b, void *arg);

/* One client Produce request's WAL-path partitions. Set the fields, then
 * rt_out_submit; done runs exactly once, later, from the loop. */
struct rt_batch {
    kc_frame *frame;        /* the client's request frame (kept while needed) */
    int16_t version;        /* the client's Produce version */
    int16_t acks;
    int32_t timeout_ms;
    kc_str transactional_id;
    kc_str client_id;
    kc_str principal;       /* the client's principal (null: anonymous), carried to the peer */
    int nparts;
    rt_part *parts;
    kc_arena *arena;        /* for the results' strings (the caller's) */
    const void *stream;     /* the client connection: order is kept per (stream, partition) */
    rt_batch_done_fn done;
    void *arg;
    /* router-private */
    uint64_t seq;           /* submit sequence, from 1 */
    int pending;
    int submitted;          /* parts handed to writers so far */
    rt_router *rt;
    struct rt_batch *next_wait;
};

void rt_out_submit(rt_router *rt, rt_batch *b);
/* A Produce partition sent straight to a broker (direct or cross-zone):
 * while it is in flight, a WAL-path batch of the same (stream, partition)
 * is held (NOT_LEADER_OR_FOLLOWER) rather than let overtake it, as the leader
 * moved out of this zone. Returns a handle for rt_out_direct_end (NULL when
 * there is no router or no memory: then nothing is held). rt_out_direct_end
 * with a NULL router (freed at shutdown) does nothing. */
struct rt_okey;
struct rt_okey *rt_out_direct_begin(rt_router *rt, const void *stream, kc_str topic, int32_t partition);
void rt_out_direct_end(rt_router *rt, struct rt_okey *k);

/*
 * 1 when WAL-path parts of (stream, topic, partition) are in flight (submitted,
 * their batch not completed yet). A caller about to send a later batch of that
 * partition another way (direct, cross-zone) must not let it overtake them:
 * it answers NOT_LEADER_OR_FOLLOWER instead (the client refreshes its metadata
 * and retries). A 1 is counted in order_holds, so call it only to decide that.
 */
int rt_out_inflight(rt_router *rt, const void *stream, kc_str topic, int32_t partition);
/* An idempotent producer's sequences across failures, as a broker checks
 * them (the mock does not, and a batch sent another way than a failed one
 * must not land before its retry): rt_out_seq_failed records that the batch
 * in records (record batch v2: producer id, epoch, base sequence) of
 * (stream, partition) failed with a retriable code; until its retry comes
 * (a batch of that producer with a base sequence at or below it, or 2 s),
 * rt_out_seq_hold returns 1 for later sequences, which the caller answers
 * NOT_LEADER_OR_FOLLOWER (counted as an order hold). Batches of producers
 * without an id are never held. */
void rt_out_seq_failed(rt_router *rt, const void *stream, kc_str topic, int32_t partition, kc_bytes records,
                       int16_t code);
int rt_out_seq_hold(rt_router *rt, const void *stream, kc_str topic, int32_t partition, kc_bytes records);

/* ---- router-in ---- */

/* resp: the response payload (unsealed), or NULL and err (close the peer's
 * connection: the request was malformed). */
typedef void (*rt_in_done_fn)(struct evbuffer *resp, const char *err, void *arg);

/*
 * Serve a KzWalAppend whose payload (after the auth header, before the MAC)
 * is p[0..len) inside frame. stream identifies the connection it came on:
 * appends of one stream start in arrival order. sent_ms is the sender's wall
 * clock from the (verified) auth header: a group whose leader append has not
 * started by sent_ms + its timeout_ms is answered REQUEST_TIMED_OUT unappended,
 * since the sender (which waits longer) may have given up on it.
 */
void rt_in_append(rt_router *rt, kc_frame *frame, const uint8_t *p, size_t len, int32_t sender,
                  int64_t sent_ms, const void *stream, rt_in_done_fn done, void *arg);

/* The peer RPC client side needs this proxy's clock (wall, ms). */
/*
 * Answer a KzWalAppend (p[0..len), after the auth prefix) without appending
 * anything: every partition gets code and the error message msg. For
 * requests refused before router-in may look at them (a replay, a clock too
 * far off). done as for rt_in_append; NULL resp when the body is malformed.
 */
void rt_in_refuse(rt_router *rt, kc_frame *frame, const uint8_t *p, size_t len, int32_t sender,
                  int16_t code, const char *msg, rt_in_done_fn done, void *arg);

/*
 * The object-key check router-in applies to a KzWalAppend before reading
 * anything: at most RT_IN_MAX_KEY bytes, starting with prefix (this store's
 * wal.key_prefix), no leading '/', no "..", no "//", no backslash or
 * control byte, no empty component (a trailing '/') and none starting with
 * '.' (".", ".tmp", hidden names), and otherwise a key ow_key_valid accepts.
 * 0, or -1 with why.
 */
#define RT_IN_MAX_KEY 1024
int rt_in_key_check(const char *prefix, kc_str key, char *why, size_t why_size);

int64_t rt_wall_ms(void);

#endif
