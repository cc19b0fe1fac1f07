/*
 * kc_msg: decoded forms of the Kafka messages kzproxy reads and writes itself.
 *
 * Field names keep their Kafka schema spelling in snake case. A field that
 * exists only in some versions is noted with its range; outside that range the
 * decoder leaves it at its default (0, null, or the schema default noted) and
 * the encoder skips it. Every struct of a flexible version keeps its tagged
 * fields raw in `tags` so that they pass through unchanged.
 *
 * Decoders: kc_<msg>_decode(rd, version, arena, out) read the body (the reader
 * is positioned after the header) and return 0, or -1 with rd->err set. Arrays
 * are allocated in the arena; strings and bytes point into the reader's range.
 * Trailing bytes after the body are an error ("garbage after message").
 * Encoders: kc_<msg>_encode(w, version, in) append the body at version; fields
 * the version does not have are dropped.
 */
#ifndef KC_MSG_H
#define KC_MSG_H

#include "codec/kc_arena.h"
#include "codec/kc_buf.h"

#include <stdint.h>

/* Decoders call this last: fails on trailing bytes, returns 0 or -1. */
int kc_rd_finish(kc_rd *rd);

/* ---------------- ApiVersions (18), v0-v3, flexible v3+ ---------------- */

typedef struct kc_apiversions_req {
    kc_str client_software_name;    /* v3+ */
    kc_str client_software_version; /* v3+ */
    kc_tags tags;
} kc_apiversions_req;

typedef struct kc_apiversions_key {
    int16_t api_key;
    int16_t min_version;
    int16_t max_version;
    kc_tags tags;
} kc_apiversions_key;

typedef struct kc_apiversions_resp {
    int16_t error_code;
    int32_t napi_keys;
    kc_apiversions_key *api_keys;
    int32_t throttle_time_ms; /* v1+ */
    kc_tags tags;             /* v3+: SupportedFeatures etc. kept raw */
} kc_apiversions_resp;

int kc_apiversions_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_apiversions_req *out);
void kc_apiversions_req_encode(kc_wr *w, int16_t version, const kc_apiversions_req *in);
int kc_apiversions_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_apiversions_resp *out);
void kc_apiversions_resp_encode(kc_wr *w, int16_t version, const kc_apiversions_resp *in);

/* ---------------- Metadata (3), v0-v12, flexible v9+ ---------------- */

typedef struct kc_metadata_req_topic {
    kc_uuid topic_id; /* v10+ */
    kc_str name;      /* nullable v10+ */
    kc_tags tags;
} kc_metadata_req_topic;

typedef struct kc_metadata_req {
    /* -1: all topics, in every version. v0 has no null array and says "all"
     * with an empty one: the v0 decoder turns that into -1 and the v0 encoder
     * writes -1 as an empty array (so 0, "no topics", cannot be sent at v0). */
    int32_t ntopics;
    kc_metadata_req_topic *topics;
    int allow_auto_topic_creation;              /* v4+, default true */
    int include_cluster_authorized_operations; /* v8-v10 */
    int include_topic_authorized_operations;   /* v8+ */
    kc_tags tags;
} kc_metadata_req;

typedef struct kc_metadata_broker {
    int32_t node_id;
    kc_str host;
    int32_t port;
    kc_str rack; /* v1+, nullable */
    kc_tags tags;
} kc_metadata_broker;

typedef struct kc_metadata_partition {
    int16_t error_code;
    int32_t partition_index;
    int32_t leader_id;
    int32_t leader_epoch; /* v7+, default -1 */
    int32_t nreplica_nodes;
    int32_t *replica_nodes;
    int32_t nisr_nodes;
    int32_t *isr_nodes;
    int32_t noffline_replicas; /* v5+ */
    int32_t *offline_replicas;
    kc_tags tags;
} kc_metadata_partition;

typedef struct kc_metadata_topic {
    int16_t error_code;
    kc_str name;      /* nullable v12+ */
    kc_uuid topic_id; /* v10+ */
    int is_internal;  /* v1+ */
    int32_t npartitions;
    kc_metadata_partition *partitions;
    int32_t topic_authorized_operations; /* v8+, default INT32_MIN */
    kc_tags tags;
} kc_metadata_topic;

typedef struct kc_metadata_resp {
    int32_t throttle_time_ms; /* v3+ */
    int32_t nbrokers;
    kc_metadata_broker *brokers;
    kc_str cluster_id;     /* v2+, nullable */
    int32_t controller_id; /* v1+, default -1 */
    int32_t ntopics;
    kc_metadata_topic *topics;
    int32_t cluster_authorized_operations; /* v8-v10, default INT32_MIN */
    kc_tags tags;
} kc_metadata_resp;

int kc_metadata_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_metadata_req *out);
void kc_metadata_req_encode(kc_wr *w, int16_t version, const kc_metadata_req *in);
int kc_metadata_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_metadata_resp *out);
void kc_metadata_resp_encode(kc_wr *w, int16_t version, const kc_metadata_resp *in);

/* ---------------- Produce (0), v3-v9, flexible v9+ ---------------- */

typedef struct kc_produce_req_partition {
    int32_t index;
    kc_bytes records; /* nullable; one or more record batches, untouched */
    kc_tags tags;
} kc_produce_req_partition;

typedef struct kc_produce_req_topic {
    kc_str name;
    int32_t npartitions;
    kc_produce_req_partition *partitions;
    kc_tags tags;
} kc_produce_req_topic;

typedef struct kc_produce_req {
    kc_str transactional_id; /* nullable */
    int16_t acks;
    int32_t timeout_ms;
    int32_t ntopics;
    kc_produce_req_topic *topics;
    kc_tags tags;
} kc_produce_req;

typedef struct kc_produce_record_error {
    int32_t batch_index;
    kc_str batch_index_error_message; /* nullable */
    kc_tags tags;
} kc_produce_record_error;

typedef struct kc_produce_resp_partition {
    int32_t index;
    int16_t error_code;
    int64_t base_offset;
    int64_t log_append_time_ms; /* v2+, default -1 */
    int64_t log_start_offset;   /* v5+, default -1 */
    int32_t nrecord_errors;     /* v8+ */
    kc_produce_record_error *record_errors;
    kc_str error_message; /* v8+, nullable */
    kc_tags tags;
} kc_produce_resp_partition;

typedef struct kc_produce_resp_topic {
    kc_str name;
    int32_t npartitions;
    kc_produce_resp_partition *partitions;
    kc_tags tags;
} kc_produce_resp_topic;

typedef struct kc_produce_resp {
    int32_t ntopics;
    kc_produce_resp_topic *topics;
    int32_t throttle_time_ms; /* v1+ */
    kc_tags tags;
} kc_produce_resp;

int kc_produce_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_produce_req *out);
/* Cut-through: decode the partition list of a request of total body bytes of
 * which rd holds the first ones. Every field up to the last partition's
 * records length must be in rd, and the first min(its length, need_records)
 * bytes of those records (a record batch header: 61); that partition's
 * records.p points where they start and .len is their announced length,
 * checked against total. Nothing after them is read (no tags of the last
 * partition, topic and request). 0, or -1 with rd's error: more bytes may
 * fix that while rd holds fewer than total. */
int kc_produce_req_decode_head(kc_rd *rd, int16_t version, size_t total, size_t need_records, kc_arena *a,
                               kc_produce_req *out);
void kc_produce_req_encode(kc_wr *w, int16_t version, const kc_produce_req *in);
int kc_produce_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_produce_resp *out);
void kc_produce_resp_encode(kc_wr *w, int16_t version, const kc_produce_resp *in);

/* ---------------- Fetch (1), v4-v13, flexible v12+ ---------------- */

typedef struct kc_fetch_req_partition {
    int32_t partition;
    int32_t current_leader_epoch; /* v9+, default -1 */
    int64_t fetch_offset;
    int32_t last_fetched_epoch; /* v12+, default -1 */
    int64_t log_start_offset;   /* v5+, default -1 */
    int32_t partition_max_bytes;
    kc_tags tags;
} kc_fetch_req_partition;

typedef struct kc_fetch_req_topic {
    kc_str topic;     /* v0-v12 */
    kc_uuid topic_id; /* v13+ */
    int32_t npartitions;
    kc_fetch_req_partition *partitions;
    kc_tags tags;
} kc_fetch_req_topic;

typedef struct kc_fetch_forgotten_topic {
    kc_str topic;     /* v7-v12 */
    kc_uuid topic_id; /* v13+ */
    int32_t npartitions;
    int32_t *partitions;
    kc_tags tags;
} kc_fetch_forgotten_topic;

typedef struct kc_fetch_req {
    int32_t replica_id; /* default -1 */
    int32_t max_wait_ms;
    int32_t min_bytes;
    int32_t max_bytes;       /* v3+, default 0x7fffffff */
    int8_t isolation_level;  /* v4+ */
    int32_t session_id;      /* v7+ */
    int32_t session_epoch;   /* v7+, default -1 */
    int32_t ntopics;
    kc_fetch_req_topic *topics;
    int32_t nforgotten_topics_data; /* v7+ */
    kc_fetch_forgotten_topic *forgotten_topics_data;
    kc_str rack_id; /* v11+, default "" */
    kc_tags tags;   /* v12+: ClusterId (tag 0) kept raw */
} kc_fetch_req;

typedef struct kc_fetch_aborted_txn {
    int64_t producer_id;
    int64_t first_offset;
    kc_tags tags;
} kc_fetch_aborted_txn;

typedef struct kc_fetch_resp_partition {
    int32_t partition_index;
    int16_t error_code;
    int64_t high_watermark;
    int64_t last_stable_offset; /* v4+, default -1 */
    int64_t log_start_offset;   /* v5+, default -1 */
    int32_t naborted_transactions; /* v4+, -1 for null */
    kc_fetch_aborted_txn *aborted_transactions;
    int32_t preferred_read_replica; /* v11+, default -1 */
    kc_bytes records;               /* nullable */
    kc_tags tags; /* v12+: DivergingEpoch, CurrentLeader, SnapshotId kept raw */
} kc_fetch_resp_partition;

typedef struct kc_fetch_resp_topic {
    kc_str topic;     /* v0-v12 */
    kc_uuid topic_id; /* v13+ */
    int32_t npartitions;
    kc_fetch_resp_partition *partitions;
    kc_tags tags;
} kc_fetch_resp_topic;

typedef struct kc_fetch_resp {
    int32_t throttle_time_ms; /* v1+ */
    int16_t error_code;       /* v7+ */
    int32_t session_id;       /* v7+ */
    int32_t nresponses;
    kc_fetch_resp_topic *responses;
    kc_tags tags;
} kc_fetch_resp;

int kc_fetch_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_fetch_req *out);
void kc_fetch_req_encode(kc_wr *w, int16_t version, const kc_fetch_req *in);
int kc_fetch_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_fetch_resp *out);
void kc_fetch_resp_encode(kc_wr *w, int16_t version, const kc_fetch_resp *in);

/* ---------------- ListOffsets (2), v0-v7, flexible v6+ ---------------- */

typedef struct kc_listoffsets_req_partition {
    int32_t partition_index;
    int32_t current_leader_epoch; /* v4+, default -1 */
    int64_t timestamp;
    int32_t max_num_offsets; /* v0 only, default 1 */
    kc_tags tags;
} kc_listoffsets_req_partition;

typedef struct kc_listoffsets_req_topic {
    kc_str name;
    int32_t npartitions;
    kc_listoffsets_req_partition *partitions;
    kc_tags tags;
} kc_listoffsets_req_topic;

typedef struct kc_listoffsets_req {
    int32_t replica_id;
    int8_t isolation_level; /* v2+ */
    int32_t ntopics;
    kc_listoffsets_req_topic *topics;
    kc_tags tags;
} kc_listoffsets_req;

typedef struct kc_listoffsets_resp_partition {
    int32_t partition_index;
    int16_t error_code;
    int32_t nold_style_offsets; /* v0 only */
    int64_t *old_style_offsets;
    int64_t timestamp;    /* v1+, default -1 */
    int64_t offset;       /* v1+, default -1 */
    int32_t leader_epoch; /* v4+, default -1 */
    kc_tags tags;
} kc_listoffsets_resp_partition;

typedef struct kc_listoffsets_resp_topic {
    kc_str name;
    int32_t npartitions;
    kc_listoffsets_resp_partition *partitions;
    kc_tags tags;
} kc_listoffsets_resp_topic;

typedef struct kc_listoffsets_resp {
    int32_t throttle_time_ms; /* v2+ */
    int32_t ntopics;
    kc_listoffsets_resp_topic *topics;
    kc_tags tags;
} kc_listoffsets_resp;

int kc_listoffsets_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_listoffsets_req *out);
void kc_listoffsets_req_encode(kc_wr *w, int16_t version, const kc_listoffsets_req *in);
int kc_listoffsets_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_listoffsets_resp *out);
void kc_listoffsets_resp_encode(kc_wr *w, int16_t version, const kc_listoffsets_resp *in);

/* ---------------- FindCoordinator (10), v0-v4, flexible v3+ ---------------- */

typedef struct kc_findcoordinator_req {
    kc_str key;      /* v0-v3 */
    int8_t key_type; /* v1+ (0 group, 1 transaction) */
    int32_t ncoordinator_keys; /* v4+ */
    kc_str *coordinator_keys;
    kc_tags tags;
} kc_findcoordinator_req;

typedef struct kc_findcoordinator_coord {
    kc_str key;
    int32_t node_id;
    kc_str host;
    int32_t port;
    int16_t error_code;
    kc_str error_message; /* nullable */
    kc_tags tags;
} kc_findcoordinator_coord;

typedef struct kc_findcoordinator_resp {
    int32_t throttle_time_ms; /* v1+ */
    int16_t error_code;       /* v0-v3 */
    kc_str error_message;     /* v1-v3, nullable */
    int32_t node_id;          /* v0-v3 */
    kc_str host;              /* v0-v3 */
    int32_t port;             /* v0-v3 */
    int32_t ncoordinators;    /* v4+ */
    kc_findcoordinator_coord *coordinators;
    kc_tags tags;
} kc_findcoordinator_resp;

int kc_findcoordinator_req_decode(kc_rd *rd, int16_t version, kc_arena *a,
                                  kc_findcoordinator_req *out);
void kc_findcoordinator_req_encode(kc_wr *w, int16_t version, const kc_findcoordinator_req *in);
int kc_findcoordinator_resp_decode(kc_rd *rd, int16_t version, kc_arena *a,
                                   kc_findcoordinator_resp *out);
void kc_findcoordinator_resp_encode(kc_wr *w, int16_t version, const kc_findcoordinator_resp *in);

/* ---------------- ListGroups (16), v0-v4, flexible v3+ ---------------- */

typedef struct kc_listgroups_req {
    int32_t nstates_filter; /* v4+ */
    kc_str *states_filter;
    kc_tags tags;
} kc_listgroups_req;

typedef struct kc_listgroups_group {
    kc_str group_id;
    kc_str protocol_type;
    kc_str group_state; /* v4+, default "" */
    kc_tags tags;
} kc_listgroups_group;

typedef struct kc_listgroups_resp {
    int32_t throttle_time_ms; /* v1+ */
    int16_t error_code;
    int32_t ngroups;
    kc_listgroups_group *groups;
    kc_tags tags;
} kc_listgroups_resp;

int kc_listgroups_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_listgroups_req *out);
void kc_listgroups_req_encode(kc_wr *w, int16_t version, const kc_listgroups_req *in);
int kc_listgroups_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_listgroups_resp *out);
void kc_listgroups_resp_encode(kc_wr *w, int16_t version, const kc_listgroups_resp *in);

/* ---------------- DeleteRecords (21), v0-v2, flexible v2+ ---------------- */

typedef struct kc_deleterecords_req_partition {
    int32_t partition_index;
    int64_t offset;
    kc_tags tags;
} kc_deleterecords_req_partition;

typedef struct kc_deleterecords_req_topic {
    kc_str name;
    int32_t npartitions;
    kc_deleterecords_req_partition *partitions;
    kc_tags tags;
} kc_deleterecords_req_topic;

typedef struct kc_deleterecords_req {
    int32_t ntopics;
    kc_deleterecords_req_topic *topics;
    int32_t timeout_ms;
    kc_tags tags;
} kc_deleterecords_req;

typedef struct kc_deleterecords_resp_partition {
    int32_t partition_index;
    int64_t low_watermark;
    int16_t error_code;
    kc_tags tags;
} kc_deleterecords_resp_partition;

typedef struct kc_deleterecords_resp_topic {
    kc_str name;
    int32_t npartitions;
    kc_deleterecords_resp_partition *partitions;
    kc_tags tags;
} kc_deleterecords_resp_topic;

typedef struct kc_deleterecords_resp {
    int32_t throttle_time_ms;
    int32_t ntopics;
    kc_deleterecords_resp_topic *topics;
    kc_tags tags;
} kc_deleterecords_resp;

int kc_deleterecords_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_deleterecords_req *out);
void kc_deleterecords_req_encode(kc_wr *w, int16_t version, const kc_deleterecords_req *in);
int kc_deleterecords_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_deleterecords_resp *out);
void kc_deleterecords_resp_encode(kc_wr *w, int16_t version, const kc_deleterecords_resp *in);

/* ---------------- OffsetForLeaderEpoch (23), v0-v4, flexible v4+ ---------------- */

typedef struct kc_offsetforleaderepoch_req_partition {
    int32_t partition;
    int32_t current_leader_epoch; /* v2+, default -1 */
    int32_t leader_epoch;
    kc_tags tags;
} kc_offsetforleaderepoch_req_partition;

typedef struct kc_offsetforleaderepoch_req_topic {
    kc_str topic;
    int32_t npartitions;
    kc_offsetforleaderepoch_req_partition *partitions;
    kc_tags tags;
} kc_offsetforleaderepoch_req_topic;

typedef struct kc_offsetforleaderepoch_req {
    int32_t replica_id; /* v3+, default -2 */
    int32_t ntopics;
    kc_offsetforleaderepoch_req_topic *topics;
    kc_tags tags;
} kc_offsetforleaderepoch_req;

typedef struct kc_offsetforleaderepoch_resp_partition {
    int16_t error_code;
    int32_t partition;
    int32_t leader_epoch; /* v1+, default -1 */
    int64_t end_offset;
    kc_tags tags;
} kc_offsetforleaderepoch_resp_partition;

typedef struct kc_offsetforleaderepoch_resp_topic {
    kc_str topic;
    int32_t npartitions;
    kc_offsetforleaderepoch_resp_partition *partitions;
    kc_tags tags;
} kc_offsetforleaderepoch_resp_topic;

typedef struct kc_offsetforleaderepoch_resp {
    int32_t throttle_time_ms; /* v2+ */
    int32_t ntopics;
    kc_offsetforleaderepoch_resp_topic *topics;
    kc_tags tags;
} kc_offsetforleaderepoch_resp;

int kc_offsetforleaderepoch_req_decode(kc_rd *rd, int16_t version, kc_arena *a,
                                       kc_offsetforleaderepoch_req *out);
void kc_offsetforleaderepoch_req_encode(kc_wr *w, int16_t version, const kc_offsetforleaderepoch_req *in);
int kc_offsetforleaderepoch_resp_decode(kc_rd *rd, int16_t version, kc_arena *a,
                                        kc_offsetforleaderepoch_resp *out);
void kc_offsetforleaderepoch_resp_encode(kc_wr *w, int16_t version,
                                         const kc_offsetforleaderepoch_resp *in);

/* ---------------- DescribeCluster (60), v0-v1, flexible v0+ ---------------- */

typedef struct kc_describecluster_req {
    int include_cluster_authorized_operations;
    int8_t endpoint_type; /* v1+, default 1 (brokers) */
    kc_tags tags;
} kc_describecluster_req;

typedef struct kc_describecluster_broker {
    int32_t broker_id;
    kc_str host;
    int32_t port;
    kc_str rack; /* nullable */
    kc_tags tags;
} kc_describecluster_broker;

typedef struct kc_describecluster_resp {
    int32_t throttle_time_ms;
    int16_t error_code;
    kc_str error_message; /* nullable */
    int8_t endpoint_type; /* v1+, default 1 */
    kc_str cluster_id;
    int32_t controller_id; /* default -1 */
    int32_t nbrokers;
    kc_describecluster_broker *brokers;
    int32_t cluster_authorized_operations; /* default INT32_MIN */
    kc_tags tags;
} kc_describecluster_resp;

int kc_describecluster_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_describecluster_req *out);
void kc_describecluster_req_encode(kc_wr *w, int16_t version, const kc_describecluster_req *in);
int kc_describecluster_resp_decode(kc_rd *rd, int16_t version, kc_arena *a,
                                   kc_describecluster_resp *out);
void kc_describecluster_resp_encode(kc_wr *w, int16_t version, const kc_describecluster_resp *in);

/*
 * The tagged fields of a Fetch response partition (v12+) that kzproxy knows:
 * DivergingEpoch (tag 0) and SnapshotId (tag 2) carry no broker ids and are
 * kept as their raw values; CurrentLeader (tag 1, KIP-951) names a broker and
 * is decoded so the proxy can rewrite it. Unknown tags are dropped.
 */
typedef struct kc_fetch_partition_tags {
    int has_diverging_epoch;
    kc_bytes diverging_epoch; /* raw value of tag 0 */
    int has_current_leader;
    int32_t leader_id;        /* tag 1: LeaderId */
    int32_t leader_epoch;     /* tag 1: LeaderEpoch */
    int has_snapshot_id;
    kc_bytes snapshot_id;     /* raw value of tag 2 */
} kc_fetch_partition_tags;

/* Parse a partition's raw tag section. 0, or -1 when it is malformed (a
 * truncated tag, or a CurrentLeader shorter than its two int32s). */
int kc_fetch_partition_tags_parse(const kc_tags *tags, kc_fetch_partition_tags *out);
/* Build a tag section with the known tags of pt, in tag order; the raw bytes
 * are allocated in a. 0, or -1 when out of memory. */
int kc_fetch_partition_tags_build(kc_arena *a, const kc_fetch_partition_tags *pt, kc_tags *out);

/* ---------------- Record batch v2 header ---------------- */

#define KC_RECORD_BATCH_HEADER_SIZE 61 /* bytes up to and including the record count */

typedef struct kc_record_batch {
    int64_t base_offset;
    int32_t batch_length; /* bytes after this field */
    int32_t partition_leader_epoch;
    int8_t magic; /* 2 */
    uint32_t crc; /* CRC32C of attributes..end */
    int16_t attributes; /* bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control */
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
    kc_bytes records; /* the (possibly compressed) records, not parsed */
} kc_record_batch;

/*
 * Parse the batch header at the reader, check magic == 2, the length against
 * the bytes left, and the CRC32C; leave the reader after the batch. Records
 * are not decompressed. Returns 0, or -1 with rd->err saying which check failed.
 */
int kc_record_batch_decode(kc_rd *rd, kc_record_batch *out);

/*
 * Walk every batch in a records field. Returns the number of batches, or -1
 * with rd->err set when one is malformed. A trailing partial batch (which a
 * broker may send in a Fetch response) is reported in *partial_tail (bytes)
 * and is not an error when allow_partial is set.
 */
int kc_record_batches_validate(const kc_bytes *records, int allow_partial, kc_rd *rd,
                               size_t *partial_tail);

/*
 * The CRC32C of len bytes of whole v2 record batches, computed from each
 * batch's first 21 bytes and its own CRC field (which covers the rest)
 * instead of from every byte: for 1 KiB and larger batches a small fraction
 * of a pass. With one batch the result is the CRC of the bytes exactly when
 * its CRC field is right; with several, errors in two fields could cancel,
 * so a check of the bytes against it (the WAL receiver's) catches accidental
 * damage and wrong batch CRCs, not batches crafted to cancel (the broker
 * checks each batch's CRC anyway, and a producer can only harm its own
 * partition). Returns 0, or -1 when the bytes are not a run of whole v2
 * batches (the caller then reads them all, and the producer's CRCs are
 * left to the broker).
 */
int kc_record_batches_crc32c(const uint8_t *p, size_t len, uint32_t *crc);

/* ---------------- SASL (the proxy's own login to brokers) ----------------
 *
 * kzproxy only sends these (it authenticates to brokers; clients' SASL is not
 * served), so they are not in the API table's decoded ranges: the versions
 * are stated here. The responses are untrusted bytes from the network. */

/* SaslHandshake (17), v0-v1, never flexible. v1 means the authentication
 * bytes that follow travel in SaslAuthenticate requests (KIP-152). */
#define KC_SASLHANDSHAKE_MAX_VERSION 1

typedef struct kc_saslhandshake_req {
    kc_str mechanism;
} kc_saslhandshake_req;

typedef struct kc_saslhandshake_resp {
    int16_t error_code;
    int32_t nmechanisms;
    kc_str *mechanisms; /* the mechanisms the broker enables */
} kc_saslhandshake_resp;

int kc_saslhandshake_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_saslhandshake_req *out);
void kc_saslhandshake_req_encode(kc_wr *w, int16_t version, const kc_saslhandshake_req *in);
int kc_saslhandshake_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_saslhandshake_resp *out);
void kc_saslhandshake_resp_encode(kc_wr *w, int16_t version, const kc_saslhandshake_resp *in);

/* SaslAuthenticate (36), v0-v2, flexible v2+. */
#define KC_SASLAUTHENTICATE_MAX_VERSION 2

typedef struct kc_saslauthenticate_req {
    kc_bytes auth_bytes;
    kc_tags tags;
} kc_saslauthenticate_req;

typedef struct kc_saslauthenticate_resp {
    int16_t error_code;
    kc_str error_message;        /* nullable */
    kc_bytes auth_bytes;
    int64_t session_lifetime_ms; /* v1+: 0 when the broker sets no limit */
    kc_tags tags;
} kc_saslauthenticate_resp;

int kc_saslauthenticate_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_saslauthenticate_req *out);
void kc_saslauthenticate_req_encode(kc_wr *w, int16_t version, const kc_saslauthenticate_req *in);
int kc_saslauthenticate_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_saslauthenticate_resp *out);
void kc_saslauthenticate_resp_encode(kc_wr *w, int16_t version, const kc_saslauthenticate_resp *in);

#endif
