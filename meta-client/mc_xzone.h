/*
 * mc_xzone: the bytes a proxy sends to and receives from other zones.
 *
 * Every upstream connection whose far end is in another zone (a broker whose
 * rack differs from the proxy's zone, or a peer proxy of another zone) is
 * tagged with the meter; the connection counts whole frames by ApiKey
 * (metadata-type requests, the peer RPC, everything else). Produce and Fetch
 * frames start as "other"; the code that knows how many of their bytes are
 * record data moves those to "payload" (mc_xz_payload).
 */
#ifndef MC_XZONE_H
#define MC_XZONE_H

#include <stdint.h>

enum { MC_XZ_OUT = 0, MC_XZ_IN = 1 };
enum { MC_XZ_BROKER = 0, MC_XZ_PEER = 1 };
enum { MC_XZ_PAYLOAD = 0, MC_XZ_RPC, MC_XZ_METADATA, MC_XZ_OTHER, MC_XZ_NCAT };

typedef struct mc_xz {
    uint64_t bytes[2][2][MC_XZ_NCAT]; /* [direction][far end][category] */
    /* An estimate, not a measurement: the bytes the backend itself will copy
     * across zones to replicate the records produced through this proxy
     * (record bytes x replicas in a rack other than the leader's). */
    uint64_t replication_est;
} mc_xz;

/* The bill by kind, from the categories above (kzproxy_xzone_bill_bytes_total). */
enum { MC_XZ_KIND_PRODUCE = 0, MC_XZ_KIND_FETCH, MC_XZ_KIND_RPC, MC_XZ_KIND_CONTROL, MC_XZ_NKIND };

/* The category of a whole frame of this ApiKey. */
int mc_xz_category(int16_t api_key);
/* Count n bytes of a frame (direction, far end, ApiKey). */
void mc_xz_count(mc_xz *m, int dir, int kind, int16_t api_key, uint64_t n);
/* Of the bytes already counted as "other", n were record data. Call it once
 * the frame has been counted (mc_conn counts a request when it writes it, a
 * response when it reads it): it never moves more than "other" holds. px_route
 * calls it for the Produce requests and Fetch responses of metered
 * connections. */
void mc_xz_payload(mc_xz *m, int dir, int kind, uint64_t n);
/* Bytes across zones of one kind (MC_XZ_KIND_*): produce payload (record
 * bytes sent), fetch payload (record bytes received), peer RPC (both ways),
 * metadata and control (everything else, both ways: metadata, headers of
 * Produce/Fetch frames, group and admin requests). */
uint64_t mc_xz_kind(const mc_xz *m, int kind);
const char *mc_xz_kind_name(int kind);
struct mc_view;
/* Records of n bytes produced to (topic, partition) through this proxy: add
 * n x (replicas whose broker's rack differs from the leader's) to the
 * replication estimate, from the view (nothing when racks are unknown). */
void mc_xz_replication(mc_xz *m, const struct mc_view *v, const char *topic, int32_t topic_len,
                       int32_t partition, uint64_t n);
/* Label of a category / direction / far end for /metrics. */
const char *mc_xz_category_name(int cat);
/* Sum over categories (and both far ends when kind < 0). */
uint64_t mc_xz_total(const mc_xz *m, int dir, int kind, int cat);

#endif
