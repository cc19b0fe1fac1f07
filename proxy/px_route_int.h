/*
 * px_route_int.h: what the px_route*.c files share (private to them).
 *
 * Requests that carry partitions are split by the real leader of each
 * partition into one sub-request per broker (a px_sub), sent over the pooled
 * broker connections, and the answers merged back into one response in the
 * request's order; ListGroups goes to every broker. A px_split is one client
 * request on its way; its family (px_route_ops) decodes the brokers' answers
 * and merges them:
 *   px_route.c            the split itself: placement, sending, answers, the
 *                         cross-zone payload meter
 *   px_route_produce.c    Produce (and the WAL path's batch)
 *   px_route_fetch.c      Fetch
 *   px_route_parts.c      ListOffsets, OffsetForLeaderEpoch, DeleteRecords:
 *                         one mechanism, a table of per-API callbacks
 *   px_route_listgroups.c ListGroups
 */
#ifndef PX_ROUTE_INT_H
#define PX_ROUTE_INT_H

#include "proxy/px_proxy.h"

#include "router/rt_router.h"

#include <stdint.h>

struct evbuffer;
struct mc_xz;

typedef struct px_sub {
    int32_t broker;
    int variant; /* family-specific: sub-requests to one broker that must differ (Fetch: rack_id) */
    kc_frame *resp;
    int16_t fail_code; /* non-zero: every partition of this sub gets it */
    kc_arena arena;
    union {
        kc_produce_resp produce;
        kc_fetch_resp fetch;
        kc_listoffsets_resp lo;
        kc_offsetforleaderepoch_resp ofle;
        kc_deleterecords_resp dr;
        kc_listgroups_resp lg;
    } r;
    int32_t cursor_t, cursor_p; /* where the next lookup starts */
    /* Cross-zone meter of the connection the sub went on (NULL when that
     * connection is not metered: the broker is in this proxy's zone), and
     * the record bytes of its frames, moved from "other" to "payload" once
     * the frames are known to have crossed (px_route.c). */
    struct mc_xz *xz;
    int xz_kind;
    uint64_t payload_out; /* Produce: the records of the sub-request */
    uint64_t payload_in;  /* Fetch: the records of the decoded response */
} px_sub;

typedef struct px_split px_split;

/* What a family of APIs does with the brokers' answers. */
typedef struct px_route_ops {
    /* Decode a broker's response body (rd is past the header) into s->r;
     * 0, or -1 with rd's error. */
    int (*resp_decode)(px_split *sp, px_sub *s, kc_rd *rd);
    /* Encode the merged response at the client's version; w->err on failure. */
    void (*merge)(kc_wr *w, px_split *sp);
} px_route_ops;

struct px_split {
    px_req *rq;
    const px_route_ops *ops;
    int16_t key, version; /* the client's */
    int16_t up_version;   /* what the brokers get: the client's, or the backend's highest if lower */
    int no_response;      /* acks=0 Produce: nothing goes back to the client */
    kc_arena arena;
    mc_view *view;
    union {
        kc_produce_req produce;
        kc_fetch_req fetch;
        kc_listoffsets_req lo;
        kc_offsetforleaderepoch_req ofle;
        kc_deleterecords_req dr;
        kc_listgroups_req lg;
    } in;
    int nsubs;
    px_sub *subs;
    int pending;
    int16_t **assign; /* per topic, per partition: sub index >= 0, or -error code */
    struct px_subcb {
        struct px_split *sp;
        int idx;
    } *cbs;
    rt_batch wal;     /* Produce: the partitions on the WAL path */
    kc_frame *frame;  /* the client's frame, kept while the WAL path needs it */
    /* Produce: partitions sent straight to a broker, registered with the
     * router (rt_out_direct_begin) so a WAL-path batch of the same partition
     * does not overtake them; ended when the split is freed. */
    struct px_proxy *px;
    struct rt_okey **direct;
    int ndirect, direct_cap;
    /* Fetch: partitions answered from the fetch cache (assign[][] is
     * PX_ASSIGN_CACHE; per topic, per partition, allocated in the arena), and
     * the frames their records lie in (owned references, released with the
     * split; the merged response references them). */
    kc_fetch_resp_partition **cached;
    kc_frame **xrefs;
    int nxrefs, xrefs_cap;
};

/* assign[][] value of a partition on the WAL path. */
#define PX_ASSIGN_WAL INT16_MAX
/* assign[][] value of a Fetch partition answered from the fetch cache. */
#define PX_ASSIGN_CACHE (INT16_MAX - 1)

/* A split of rq with the view of the moment; NULL when out of memory. */
px_split *px_split_new(px_req *rq, const px_route_ops *ops);
void px_split_free(px_split *sp);
/* Reject the request as malformed (rd says where) and free sp; returns -1. */
int px_split_decode_fail(px_split *sp, kc_rd *rd);
/* Allocate the assignment table for ntopics topics (each row by the caller). */
int px_split_assign_alloc(px_split *sp, int32_t ntopics);
/* The partition of the view, with a leader the view knows; or NULL and the
 * error the partition gets. */
const mc_partition *px_split_partition(px_split *sp, kc_str topic, int32_t partition, int16_t *code);
/* 0 when the client may do this request's operation on topic (ACLs:
 * produce, consume, describe for ListOffsets and OffsetForLeaderEpoch,
 * delete for DeleteRecords; a transactional Produce also needs produce on
 * its transactional id); else, counted and logged, the error the partition
 * gets (TOPIC_ / TRANSACTIONAL_ID_AUTHORIZATION_FAILED): it is never sent. */
int16_t px_split_acl(px_split *sp, kc_str topic);
/* Decide where one partition goes: the index of its leader's sub-request, or
 * -error code (an authorization error first, px_split_acl). */
int16_t px_split_place(px_split *sp, kc_str topic, int32_t partition, int *cap);
/* The index of the sub-request to broker, added when there is none yet; or
 * -UNKNOWN_SERVER_ERROR when out of memory. */
int16_t px_split_sub_for(px_split *sp, int32_t broker, int *cap);
/* The same, for the sub-request of that variant (px_split_sub_for: variant 0). */
int16_t px_split_sub_for_variant(px_split *sp, int32_t broker, int variant, int *cap);
/* The sub-request that answers an assigned partition, or NULL with the
 * error the partition gets instead (placement error, or the sub failed). */
px_sub *px_split_answer(px_split *sp, int16_t where, int16_t *code);
int px_is_stale_metadata(int16_t e);
/* Keep a frame (the reference is the split's now) that merged byte fields
 * may point into; 0, or -1 (out of memory: the reference is released). */
int px_split_keep_frame(px_split *sp, kc_frame *f);
/* Send every sub-request (bodies[i] is drained and freed) and the WAL batch;
 * the split finishes when every answer is in. */
void px_split_send(px_split *sp, struct evbuffer **bodies, int expect_response, int extra_wait_ms);
/* After encoding sub-request i into *body with w: on failure frees *body and
 * sets it NULL; a value the broker's version cannot carry (kc_wr_unencodable)
 * fails the sub's partitions with INVALID_REQUEST and one log line, since a
 * retry cannot help; anything else (memory) leaves px_split_send's retriable
 * LEADER_NOT_AVAILABLE. Returns 0 when encoded. */
int px_sub_encoded(px_split *sp, int i, const kc_wr *w, struct evbuffer **body);
/* The callback of sub-request answers (arg: &sp->cbs[i]). */
void px_sub_cb(kc_frame *resp, const char *err, void *arg);
/* Cut-through (px_cut.c): send sub-request 0 on c as a stream whose body,
 * body_len bytes, begins with first (drained); the split then waits for
 * its answer and for one px_split_done once the frame is complete. The
 * stream's id, or 0 when it could not start (the sub has failed). */
uint64_t px_split_stream(px_split *sp, struct mc_conn *c, struct evbuffer *first, size_t body_len);

/* ---- px_route_produce.c, cut-through (px_cut.c) ---- */
/* Bytes of a partition's records the decision needs: a record batch header
 * (the producer id and sequence, rt_out_seq_hold). */
#define PX_CUT_BATCH_HEAD 61
/* rq's frame holds its first `have` bytes: decode the partition list
 * (kc_produce_req_decode_head) and place every partition. *broker is the
 * broker the whole request goes to as it is (one sub-request with every
 * partition, no WAL, no error, the client's version), else -1: the split
 * then waits for px_produce_send once the frame is complete. NULL when the
 * list does not decode or memory ran out. */
px_split *px_produce_cut_place(px_req *rq, size_t have, int32_t *broker);
/* The frame is complete: decode it whole, check it is the list placed, and
 * take its tags. 0, or -1 with why: close the client as for a malformed
 * request. */
int px_produce_cut_full(px_split *sp, char *why, size_t n);
/* Encode and send the sub-requests and the WAL batch of a placed split. */
void px_produce_send(px_split *sp);
/* The frame will never be complete: every partition fails, the split ends. */
void px_produce_cut_abort(px_split *sp);

/* One answer fewer to wait for; after the last one the merged response goes
 * to the client (unless no_response) and sp is freed. */
void px_split_done(px_split *sp);

#endif
