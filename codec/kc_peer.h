/*
 * kc_peer: kzproxy's own RPC between proxies (see docs/PEER_RPC.md).
 *
 * The RPC rides on the Kafka listener under two private ApiKeys that are
 * never advertised to clients, so it reuses the Kafka framing, the client
 * connection limits and the pipelined upstream connection (mc_conn):
 *
 *   KzHello     (0x4b5a): who are you (node id, zone, Kafka address); the
 *                         health check and the way DNS-discovered peers are
 *                         identified.
 *   KzWalAppend (0x4b5b): append these WAL-object slices to their leaders;
 *                         answer with the leaders' per-partition results.
 *
 * Both are version 0, encoded with Kafka's compact (flexible) primitives.
 *
 * Authentication: every body ends with a 32-byte HMAC-SHA256 under the
 * shared peer secret. A request body starts with the sender's node id, its
 * wall clock (ms) and a random 16-byte nonce; its MAC covers the ApiKey, the
 * version, the receiver's node id (not sent: the receiver verifies with its
 * own) and everything before the MAC, so a request captured on its way to
 * one proxy does not verify at another. A response's MAC also covers the
 * request's nonce, so a response cannot be replayed onto another request.
 */
#ifndef KC_PEER_H
#define KC_PEER_H

#include "codec/kc_arena.h"
#include "codec/kc_buf.h"
#include "codec/kc_msg.h"

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define KC_API_KZ_HELLO ((int16_t)0x4b5a)
#define KC_API_KZ_WAL_APPEND ((int16_t)0x4b5b)
#define KC_PEER_VERSION 0
#define KC_PEER_MAC_LEN 32
#define KC_PEER_NONCE_LEN 16
/* A secret shorter than this is refused by the config. */
#define KC_PEER_SECRET_MIN 16

/* 1 for the private peer ApiKeys. */
int kc_peer_api(int16_t key);

/* The authenticated prefix of every request body. */
typedef struct kc_peer_auth {
    int32_t sender;   /* node id of the sending proxy */
    int64_t ts_ms;    /* sender's wall clock */
    uint8_t nonce[KC_PEER_NONCE_LEN];
} kc_peer_auth;

/* Write the auth prefix with a fresh random nonce (copied to a->nonce). */
void kc_peer_auth_write(kc_wr *w, kc_peer_auth *a);

/*
 * The receiver a request is sealed for when the sender does not know the
 * node id at that address yet: DNS discovery's first KzHello to an address.
 * A receiver accepts it for KzHello only (which reads nothing and changes
 * nothing), never for KzWalAppend.
 */
#define KC_PEER_RECEIVER_UNKNOWN ((int32_t)-1)

/*
 * Append the MAC of everything in body: a request for node `receiver` when
 * req_nonce is NULL, else a response to the request with that nonce
 * (receiver is then not used: the nonce already names one request).
 * 0, or -1 (out of memory).
 */
int kc_peer_seal(struct evbuffer *body, const void *secret, size_t secret_len, int16_t api_key,
                 int16_t version, int32_t receiver, const uint8_t *req_nonce);

/*
 * Check the MAC at the end of p[0..len) (constant-time compare): a request
 * sealed for `receiver` when req_nonce is NULL, else a response. On success
 * returns 0 and sets *payload_len to len minus the MAC; -1 when too short or
 * the MAC does not match.
 */
int kc_peer_verify(const uint8_t *p, size_t len, const void *secret, size_t secret_len,
                   int16_t api_key, int16_t version, int32_t receiver, const uint8_t *req_nonce,
                   size_t *payload_len);

/* ---- KzHello: request and response carry the same fields ---- */
typedef struct kc_peer_hello {
    int32_t node_id;
    kc_str zone;
    kc_str host; /* advertised Kafka address */
    int32_t port;
    int64_t started_ms; /* process start, wall clock: a restart changes it */
    /* KC_PEER_HELLO_*: an optional tagged field (tag 0), written only when
     * non-zero, so a proxy that does not know it still reads every hello
     * except a draining proxy's (which it then takes as down: the same). */
    uint32_t flags;
} kc_peer_hello;

/* The proxy is draining (shutting down): take it out of the virtual cluster. */
#define KC_PEER_HELLO_DRAINING 0x1u
/* As a receiver, it refuses a slice whose CRC32C fails for that partition
 * alone (CORRUPT_MESSAGE), so a sender may derive the CRC from the record
 * batches' own CRCs: one producer's bad batch CRC then costs only its own
 * partition. A receiver without it fails the whole append on a mismatch. */
#define KC_PEER_HELLO_SLICE_ERRORS 0x2u

int kc_peer_hello_decode(kc_rd *rd, kc_peer_hello *out);
void kc_peer_hello_encode(kc_wr *w, const kc_peer_hello *in);

/* ---- KzWalAppend ---- */

/* One partition's slice of the object. */
typedef struct kc_wal_part {
    kc_str topic;
    int32_t partition;
    int64_t off;     /* byte offset in the object */
    int32_t len;     /* slice length: > 0 */
    uint32_t crc32c; /* of the slice */
} kc_wal_part;

/* The slices meant for one leader, as the sender saw it. */
typedef struct kc_wal_broker {
    int32_t broker_id;
    int32_t nparts;
    kc_wal_part *parts;
} kc_wal_broker;

/* One client Produce request's share of the object, with its context. */
typedef struct kc_wal_group {
    int16_t produce_version;
    int16_t acks;
    int32_t timeout_ms;
    kc_str transactional_id; /* nullable */
    kc_str client_id;        /* nullable */
    kc_str principal;        /* the producing client's principal; null: anonymous
                              * (carried in the trailing tagged field 0) */
    int32_t nbrokers;
    kc_wal_broker *brokers;
} kc_wal_group;

/*
 * Tagged fields after the groups (an optional section, absent in the
 * original v0 encoding, so a request without any of them is byte for byte
 * what an old peer sends and expects):
 *   tag 0: the groups' principals, a compact array of nullable compact
 *          strings, one per group in order. Written only when a group has a
 *          non-null principal; an old peer then refuses the request as
 *          malformed (it cannot enforce ACLs), rather than ignoring it.
 */
#define KC_WAL_TAG_PRINCIPALS 0

typedef struct kc_wal_append_req {
    kc_str key; /* object key */
    int32_t ngroups;
    kc_wal_group *groups;
} kc_wal_append_req;

/* Results per group, per partition in request order (brokers flattened). */
typedef struct kc_wal_group_result {
    int32_t throttle_time_ms;
    int32_t nparts;
    kc_produce_resp_partition *parts; /* .index is the partition */
} kc_wal_group_result;

typedef struct kc_wal_append_resp {
    int32_t ngroups;
    kc_wal_group_result *groups;
} kc_wal_append_resp;

/* Bounds a decoder enforces (beyond the bytes left). */
#define KC_WAL_MAX_GROUPS 4096
#define KC_WAL_MAX_PARTS 100000

int kc_wal_append_req_decode(kc_rd *rd, kc_arena *a, kc_wal_append_req *out);
void kc_wal_append_req_encode(kc_wr *w, const kc_wal_append_req *in);
int kc_wal_append_resp_decode(kc_rd *rd, kc_arena *a, kc_wal_append_resp *out);
void kc_wal_append_resp_encode(kc_wr *w, const kc_wal_append_resp *in);

#endif
