/*
 * Metadata (ApiKey 3), v0-v12, flexible from v9 (MetadataRequest.json,
 * MetadataResponse.json).
 *
 * The proxy answers Metadata itself and also asks the brokers for it, so both
 * directions are decoded and encoded, and a response decoded at one version
 * may be encoded at another (fields the target version lacks are dropped).
 */
#include "config.h"

#include "codec/kc_msg.h"

#include <stdint.h>

#define KC_METADATA_FLEX 9

/* A non-nullable string field must never go out as null: a value that came
 * from a version where the field is nullable (or was never set) is written as
 * the empty string instead, which every version can carry. */
static kc_str kc_md_nonnull(kc_str s)
{
    static const kc_str empty = {"", 0};
    return s.len >= 0 ? s : empty;
}

/* An []int32 array of broker ids, in the arena. */
static int32_t *kc_md_rd_ids(kc_rd *rd, int flex, kc_arena *a, int32_t *n_out)
{
    *n_out = 0;
    int32_t n = kc_rd_arraylen(rd, flex, 0, 4);
    if (rd->err)
        return NULL;
    int32_t *v = kc_arena_calloc(a, (size_t)n, sizeof(*v));
    if (v == NULL) {
        kc_rd_fail(rd, "out of memory");
        return NULL;
    }
    for (int32_t i = 0; i < n; i++)
        v[i] = kc_rd_i32(rd);
    *n_out = n;
    return v;
}

static void kc_md_wr_ids(kc_wr *w, int flex, int32_t n, const int32_t *v)
{
    /* These arrays are not nullable in any version. */
    if (n < 0)
        n = 0;
    kc_wr_arraylen(w, n, flex);
    for (int32_t i = 0; i < n; i++)
        kc_wr_i32(w, v[i]);
}

/* ---------------- request ---------------- */

int kc_metadata_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_metadata_req *out)
{
    const int flex = version >= KC_METADATA_FLEX;
    *out = (kc_metadata_req){0};
    out->allow_auto_topic_creation = 1; /* schema default for v0-v3 */

    /* Smallest topic on the wire: a name (2-byte length; or a 1-byte compact
     * length plus a 1-byte tag count, also 2), plus the topic id from v10. */
    size_t min_topic = 2;
    if (version >= 10)
        min_topic += 16;
    int32_t n = kc_rd_arraylen(rd, flex, version >= 1, min_topic);
    if (rd->err)
        return -1;
    if (n >= 0) {
        out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
        if (out->topics == NULL)
            return kc_rd_fail(rd, "out of memory");
    }
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_metadata_req_topic *t = &out->topics[i];
        if (version >= 10)
            t->topic_id = kc_rd_uuid(rd);
        t->name = version >= 10 ? kc_rd_nstring(rd, flex) : kc_rd_string(rd, flex);
        if (flex)
            kc_rd_tags(rd, &t->tags);
    }
    /* v0 has no null array: an empty one asks for every topic. Normalise to
     * the v1+ spelling so callers test one thing (ntopics < 0) in all versions. */
    if (version == 0 && n == 0) {
        n = -1;
        out->topics = NULL;
    }
    out->ntopics = n;

    if (version >= 4)
        out->allow_auto_topic_creation = kc_rd_bool(rd);
    if (version >= 8 && version <= 10)
        out->include_cluster_authorized_operations = kc_rd_bool(rd);
    if (version >= 8)
        out->include_topic_authorized_operations = kc_rd_bool(rd);
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_metadata_req_encode(kc_wr *w, int16_t version, const kc_metadata_req *in)
{
    const int flex = version >= KC_METADATA_FLEX;
    int32_t n = in->ntopics;
    /* "All topics" is a null array from v1 and an empty one in v0. A request
     * for no topics (0) cannot be said in v0; it goes out as all topics. */
    if (n < 0 && version == 0)
        n = 0;
    kc_wr_arraylen(w, n, flex);
    for (int32_t i = 0; i < n; i++) {
        const kc_metadata_req_topic *t = &in->topics[i];
        if (version >= 10)
            kc_wr_uuid(w, t->topic_id);
        kc_wr_string(w, version >= 10 ? t->name : kc_md_nonnull(t->name), flex);
        if (flex)
            kc_wr_tags(w, &t->tags);
    }
    if (version >= 4)
        kc_wr_bool(w, in->allow_auto_topic_creation);
    if (version >= 8 && version <= 10)
        kc_wr_bool(w, in->include_cluster_authorized_operations);
    if (version >= 8)
        kc_wr_bool(w, in->include_topic_authorized_operations);
    if (flex)
        kc_wr_tags(w, &in->tags);
}

/* ---------------- response ---------------- */

/* Minimum wire sizes, so that a claimed count is checked against the bytes
 * left before anything is allocated for it. A string or array length is 2 or
 * 4 bytes (1 when compact); every flexible struct ends in a tag count. */
static size_t kc_md_min_broker(int16_t version, int flex)
{
    size_t n = 4 + (flex ? 1 : 2) + 4; /* node_id, host, port */
    if (version >= 1)
        n += flex ? 1 : 2; /* rack */
    return n + (flex ? 1 : 0);
}

static size_t kc_md_min_partition(int16_t version, int flex)
{
    size_t arr = flex ? 1 : 4;
    size_t n = 2 + 4 + 4 + arr + arr; /* error, index, leader, replicas, isr */
    if (version >= 7)
        n += 4; /* leader_epoch */
    if (version >= 5)
        n += arr; /* offline_replicas */
    return n + (flex ? 1 : 0);
}

static size_t kc_md_min_topic(int16_t version, int flex)
{
    size_t n = 2 + (flex ? 1 : 2) + (flex ? 1 : 4); /* error, name, partitions */
    if (version >= 10)
        n += 16; /* topic_id */
    if (version >= 1)
        n += 1; /* is_internal */
    if (version >= 8)
        n += 4; /* topic_authorized_operations */
    return n + (flex ? 1 : 0);
}

static void kc_md_partition_decode(kc_rd *rd, int16_t version, int flex, kc_arena *a,
                                   kc_metadata_partition *p)
{
    p->error_code = kc_rd_i16(rd);
    p->partition_index = kc_rd_i32(rd);
    p->leader_id = kc_rd_i32(rd);
    p->leader_epoch = version >= 7 ? kc_rd_i32(rd) : -1;
    p->replica_nodes = kc_md_rd_ids(rd, flex, a, &p->nreplica_nodes);
    p->isr_nodes = kc_md_rd_ids(rd, flex, a, &p->nisr_nodes);
    if (version >= 5)
        p->offline_replicas = kc_md_rd_ids(rd, flex, a, &p->noffline_replicas);
    if (flex)
        kc_rd_tags(rd, &p->tags);
}

static void kc_md_topic_decode(kc_rd *rd, int16_t version, int flex, kc_arena *a,
                               kc_metadata_topic *t)
{
    t->error_code = kc_rd_i16(rd);
    t->name = version >= 12 ? kc_rd_nstring(rd, flex) : kc_rd_string(rd, flex);
    if (version >= 10)
        t->topic_id = kc_rd_uuid(rd);
    if (version >= 1)
        t->is_internal = kc_rd_bool(rd);
    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_md_min_partition(version, flex));
    if (rd->err)
        return;
    t->partitions = kc_arena_calloc(a, (size_t)n, sizeof(*t->partitions));
    if (t->partitions == NULL) {
        kc_rd_fail(rd, "out of memory");
        return;
    }
    t->npartitions = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_md_partition_decode(rd, version, flex, a, &t->partitions[i]);
    t->topic_authorized_operations = version >= 8 ? kc_rd_i32(rd) : INT32_MIN;
    if (flex)
        kc_rd_tags(rd, &t->tags);
}

int kc_metadata_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_metadata_resp *out)
{
    const int flex = version >= KC_METADATA_FLEX;
    *out = (kc_metadata_resp){0};
    out->cluster_id = kc_str_c(NULL);
    out->controller_id = -1;
    out->cluster_authorized_operations = INT32_MIN;

    if (version >= 3)
        out->throttle_time_ms = kc_rd_i32(rd);

    int32_t n = kc_rd_arraylen(rd, flex, 0, kc_md_min_broker(version, flex));
    if (rd->err)
        return -1;
    out->brokers = kc_arena_calloc(a, (size_t)n, sizeof(*out->brokers));
    if (out->brokers == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->nbrokers = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_metadata_broker *b = &out->brokers[i];
        b->node_id = kc_rd_i32(rd);
        b->host = kc_rd_string(rd, flex);
        b->port = kc_rd_i32(rd);
        b->rack = version >= 1 ? kc_rd_nstring(rd, flex) : kc_str_c(NULL);
        if (flex)
            kc_rd_tags(rd, &b->tags);
    }

    if (version >= 2)
        out->cluster_id = kc_rd_nstring(rd, flex);
    if (version >= 1)
        out->controller_id = kc_rd_i32(rd);

    n = kc_rd_arraylen(rd, flex, 0, kc_md_min_topic(version, flex));
    if (rd->err)
        return -1;
    out->topics = kc_arena_calloc(a, (size_t)n, sizeof(*out->topics));
    if (out->topics == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->ntopics = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_md_topic_decode(rd, version, flex, a, &out->topics[i]);

    if (version >= 8 && version <= 10)
        out->cluster_authorized_operations = kc_rd_i32(rd);
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_metadata_resp_encode(kc_wr *w, int16_t version, const kc_metadata_resp *in)
{
    const int flex = version >= KC_METADATA_FLEX;
    if (version >= 3)
        kc_wr_i32(w, in->throttle_time_ms);

    int32_t nb = in->nbrokers < 0 ? 0 : in->nbrokers;
    kc_wr_arraylen(w, nb, flex);
    for (int32_t i = 0; i < nb; i++) {
        const kc_metadata_broker *b = &in->brokers[i];
        kc_wr_i32(w, b->node_id);
        kc_wr_string(w, kc_md_nonnull(b->host), flex);
        kc_wr_i32(w, b->port);
        if (version >= 1)
            kc_wr_string(w, b->rack, flex);
        if (flex)
            kc_wr_tags(w, &b->tags);
    }

    if (version >= 2)
        kc_wr_string(w, in->cluster_id, flex);
    if (version >= 1)
        kc_wr_i32(w, in->controller_id);

    int32_t nt = in->ntopics < 0 ? 0 : in->ntopics;
    kc_wr_arraylen(w, nt, flex);
    for (int32_t i = 0; i < nt; i++) {
        const kc_metadata_topic *t = &in->topics[i];
        kc_wr_i16(w, t->error_code);
        kc_wr_string(w, version >= 12 ? t->name : kc_md_nonnull(t->name), flex);
        if (version >= 10)
            kc_wr_uuid(w, t->topic_id);
        if (version >= 1)
            kc_wr_bool(w, t->is_internal);
        int32_t np = t->npartitions < 0 ? 0 : t->npartitions;
        kc_wr_arraylen(w, np, flex);
        for (int32_t j = 0; j < np; j++) {
            const kc_metadata_partition *p = &t->partitions[j];
            kc_wr_i16(w, p->error_code);
            kc_wr_i32(w, p->partition_index);
            kc_wr_i32(w, p->leader_id);
            if (version >= 7)
                kc_wr_i32(w, p->leader_epoch);
            kc_md_wr_ids(w, flex, p->nreplica_nodes, p->replica_nodes);
            kc_md_wr_ids(w, flex, p->nisr_nodes, p->isr_nodes);
            if (version >= 5)
                kc_md_wr_ids(w, flex, p->noffline_replicas, p->offline_replicas);
            if (flex)
                kc_wr_tags(w, &p->tags);
        }
        if (version >= 8)
            kc_wr_i32(w, t->topic_authorized_operations);
        if (flex)
            kc_wr_tags(w, &t->tags);
    }

    if (version >= 8 && version <= 10)
        kc_wr_i32(w, in->cluster_authorized_operations);
    if (flex)
        kc_wr_tags(w, &in->tags);
}
