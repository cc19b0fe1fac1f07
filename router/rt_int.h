/*
 * Private to router/: the router's state shared by rt_out.c and rt_in.c.
 */
#ifndef RT_INT_H
#define RT_INT_H

#include "router/rt_router.h"
#include "router/rt_seq.h"

/* One part of a batch in a WAL object; its range once the object is sealed. */
typedef struct rt_ent {
    rt_batch *b;
    int part;
    uint32_t chunk;
    uint64_t off;
    uint32_t len, crc32c;
} rt_ent;

/* The parts of one WAL object, in append order. Once sealed (key set, or
 * failed), it waits in its destination's queue for its KzWalAppend. */
typedef struct rt_obj {
    uint64_t seq;
    int n, cap;
    rt_ent *ents;
    char *key;   /* sealed and stored */
    int failed;  /* sealed, not stored */
    struct rt_obj *next;
} rt_obj;

struct rt_rpc;

/* A destination zone: its writer, the objects it has not reported yet, the
 * sealed objects waiting for their KzWalAppend (one in flight at a time). */
typedef struct rt_dest {
    char *zone;
    ow_writer *w;
    rt_obj *head, *tail;   /* appended to, not sealed yet, in seal order */
    rt_obj *sq_head, *sq_tail; /* sealed, RPC not started, in seal order */
    struct rt_rpc *busy;   /* the RPC in flight */
    int kicking;
    struct rt_router *rt;
    int waiting; /* a room callback is registered */
    struct event *idle; /* seal_idle_ms timer, re-armed on every append */
} rt_dest;

/*
 * Order key: (client stream, topic, partition) with WAL parts of live batches
 * (submitted, done not run yet). Freed when refs drops to 0.
 */
typedef struct rt_okey {
    const void *stream;
    char *topic;
    int32_t tlen, partition;
    uint32_t hash;
    int refs;          /* parts of live batches, and direct sends (below) */
    int direct;        /* direct or cross-zone sends in flight (px_route_produce) */
    /* An idempotent producer's batch of this key failed (retriably) and its
     * retry has not come yet: later sequences are held until it does
     * (rt_out_seq_*, rt_seq.h). A set mark holds one of refs. */
    rt_seqmark retry;
    int queued;        /* parts in objects of dest, not resolved */
    rt_dest *dest;     /* where its last part went */
    int open_fails;    /* failed parts whose batch is not done yet */
    uint64_t fail_from;/* submit seq of the earliest failed batch (0: none) */
    uint64_t fail_to;  /* batches in (fail_from, fail_to) are failed, and every later one while open_fails */
    int16_t fail_code;
    struct rt_okey *next;
} rt_okey;

#define RT_OKEY_BUCKETS 1024

/* Rate-limited WAL-path error log: first per (cause, code, peer) per 10 s. */
typedef struct rt_logslot {
    const char *cause;
    int16_t code;
    int32_t peer;
    int64_t first_ms;
    uint64_t suppressed;
} rt_logslot;

#define RT_LOG_SLOTS 64
#define RT_LOG_WINDOW_MS 10000

typedef struct rt_in_req rt_in_req;

/* Appends that came on one peer connection, in arrival order. */
typedef struct rt_stream {
    const void *id;
    rt_in_req *head, *tail;
    struct rt_stream *next;
} rt_stream;

struct rt_router {
    struct event_base *base;
    mc_cluster *mc;
    mc_peers *peers;
    rt_config cfg;
    char *zone, *key_prefix, proxy_id[16];
    rt_stats st;
    int ndests;
    rt_dest *dests[64];
    rt_batch *wait_head, *wait_tail; /* batches waiting for writer memory, in order */
    rt_stream *streams;
    uint64_t submit_seq;  /* the last batch's */
    rt_okey *okeys[RT_OKEY_BUCKETS];
    rt_logslot logs[RT_LOG_SLOTS];
    int closing;
    struct rt_policy *policy; /* cross_zone_policy auto (rt_policy.c); NULL until used */
};

/* Kafka errors used on the WAL path. */
#define RT_ERR_MESSAGE_TOO_LARGE 10

void rt_in_free_all(rt_router *rt);
void rt_policy_free(rt_router *rt);

/* rt_out.c, for rt_rpc.c: a part's outcome. rt_part_fail records a
 * (retriable) error with its cause for the log; rt_part_result copies the
 * leader's answer; rt_part_resolved then releases the part (the last one
 * completes its batch). rt_overtakes: would this part, about to be sent,
 * overtake the client's retry of a failed earlier one (rt_order.c)? */
void rt_part_fail(rt_batch *b, int part, int16_t code, const char *cause, int32_t peer);
void rt_part_result(rt_batch *b, int part, const kc_produce_resp_partition *r, int32_t peer);
void rt_part_resolved(rt_batch *b, int part);
int rt_overtakes(const rt_batch *b, int part);
void rt_obj_free(rt_obj *o);
/* rt_rpc.c: the writer's report of a sealed object (stored or not), in seal
 * order; rt_rpc_detach: the router is going, d's RPC in flight (if any) will
 * free itself without touching d. */
void rt_sealed_cb(const ow_sealed *obj, void *arg);
void rt_rpc_detach(rt_dest *d);

/* rt_order.c: order keys. */
rt_okey *rt_okey_get(rt_router *rt, const void *stream, kc_str topic, int32_t partition, int create);
void rt_okey_unref(rt_router *rt, rt_okey *k);
void rt_okey_free_all(rt_router *rt);

/* rt_order.c: log an error a WAL-path partition got, at info, once per
 * (cause, code, peer) per 10 s with the number not logged. side: "router-out"
 * or "router-in"; peer: the node id at the other end (-1: none). */
void rt_note(rt_router *rt, const char *side, const char *cause, int16_t code, int32_t peer, kc_str topic,
             int32_t partition);

#endif
