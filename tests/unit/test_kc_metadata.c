/* Metadata golden bytes (MetadataRequest.json / MetadataResponse.json, v0-v12). */
#include "config.h"

#include "codec/kc_msg.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Two topic ids, spelled byte by byte (a uuid is 16 raw bytes). */
#define UUID_A 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01
#define UUID_B 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00
static const uint8_t uuid_a[16] = {UUID_A};
static const uint8_t uuid_b[16] = {UUID_B};

/* Encode msg with fn at version and compare with the wanted bytes. */
#define EXPECT_ENCODED(fn, version, msg, want, want_len)                                          \
    do {                                                                                           \
        struct evbuffer *eb_ = evbuffer_new();                                                     \
        kc_wr w_;                                                                                  \
        kc_wr_init(&w_, eb_, NULL);                                                                \
        fn(&w_, (version), (msg));                                                                 \
        ck_assert_int_eq(w_.err, 0);                                                               \
        size_t n_ = evbuffer_get_length(eb_);                                                      \
        kz_expect_bytes(#fn, evbuffer_pullup(eb_, -1), n_, (want), (want_len));                    \
        evbuffer_free(eb_);                                                                        \
    } while (0)

/* ---------------- request goldens ---------------- */

/* v0: Topics ["foo"]. */
static const uint8_t req_v0[] = {
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
};

/* v0: Topics [] which in v0 means every topic. */
static const uint8_t req_v0_all[] = {
    I32(0), /* Topics: empty */
};

/* v1: Topics ["foo", "ab"]. */
static const uint8_t req_v1[] = {
    I32(2),                 /* Topics: 2 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
    I16(2), 'a', 'b',      /*   Name "ab" */
};

/* v1: Topics null, which from v1 means every topic. */
static const uint8_t req_v1_all[] = {
    I32(-1), /* Topics: null */
};

/* v8: the last non-flexible version, with every request field. */
static const uint8_t req_v8[] = {
    I32(1),                 /* Topics: 1 */
    I16(3), 'f', 'o', 'o', /*   Name "foo" */
    I8(0),                  /* AllowAutoTopicCreation false */
    I8(1),                  /* IncludeClusterAuthorizedOperations true */
    I8(1),                  /* IncludeTopicAuthorizedOperations true */
};

/* v9: first flexible version. */
static const uint8_t req_v9[] = {
    UV(2),                  /* Topics: compact 1 */
    UV(4), 'f', 'o', 'o',  /*   Name "foo" */
    NOTAGS,                 /*   topic tags */
    I8(1),                  /* AllowAutoTopicCreation true */
    I8(0),                  /* IncludeClusterAuthorizedOperations false */
    I8(1),                  /* IncludeTopicAuthorizedOperations true */
    NOTAGS,                 /* tags */
};

/* v12: topic ids, a null name, no IncludeClusterAuthorizedOperations, and an
 * unknown tagged field that must pass through untouched. */
static const uint8_t req_v12[] = {
    UV(3),                  /* Topics: compact 2 */
    UUID_A,                 /*   TopicId A */
    UV(0),                  /*   Name null */
    NOTAGS,                 /*   topic tags */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* TopicId zero */
    UV(4), 'f', 'o', 'o',  /*   Name "foo" */
    NOTAGS,                 /*   topic tags */
    I8(1),                  /* AllowAutoTopicCreation true */
    I8(0),                  /* IncludeTopicAuthorizedOperations false */
    UV(1),                  /* tags: 1 field */
    UV(5), UV(2), 0xab, 0xcd, /* tag 5, 2 bytes */
};

/* ---------------- response goldens ---------------- */

/* v0: one broker, one topic with one partition. */
static const uint8_t resp_v0[] = {
    I32(1),                         /* Brokers: 1 */
    I32(1),                         /*   NodeId 1 */
    I16(2), 'b', '1',              /*   Host "b1" */
    I32(9092),                      /*   Port */
    I32(1),                         /* Topics: 1 */
    I16(0),                         /*   ErrorCode */
    I16(3), 'f', 'o', 'o',         /*   Name "foo" */
    I32(1),                         /*   Partitions: 1 */
    I16(0),                         /*     ErrorCode */
    I32(0),                         /*     PartitionIndex */
    I32(1),                         /*     LeaderId */
    I32(2), I32(1), I32(2),         /*     ReplicaNodes [1, 2] */
    I32(1), I32(1),                 /*     IsrNodes [1] */
};

/* v1: racks (one null), ControllerId, IsInternal. */
static const uint8_t resp_v1[] = {
    I32(2),                         /* Brokers: 2 */
    I32(1),                         /*   NodeId 1 */
    I16(2), 'b', '1',              /*   Host "b1" */
    I32(9092),                      /*   Port */
    I16(3), 'a', 'z', 'a',         /*   Rack "aza" */
    I32(2),                         /*   NodeId 2 */
    I16(2), 'b', '2',              /*   Host "b2" */
    I32(9093),                      /*   Port */
    I16(-1),                        /*   Rack null */
    I32(2),                         /* ControllerId 2 */
    I32(1),                         /* Topics: 1 */
    I16(0),                         /*   ErrorCode */
    I16(3), 'f', 'o', 'o',         /*   Name "foo" */
    I8(1),                          /*   IsInternal true */
    I32(1),                         /*   Partitions: 1 */
    I16(0),                         /*     ErrorCode */
    I32(0),                         /*     PartitionIndex */
    I32(1),                         /*     LeaderId */
    I32(2), I32(1), I32(2),         /*     ReplicaNodes [1, 2] */
    I32(2), I32(1), I32(2),         /*     IsrNodes [1, 2] */
};

/* v9: first flexible version, with ClusterAuthorizedOperations (v8-v10). */
static const uint8_t resp_v9[] = {
    I32(7),                         /* ThrottleTimeMs */
    UV(2),                          /* Brokers: compact 1 */
    I32(1),                         /*   NodeId 1 */
    UV(3), 'b', '1',               /*   Host "b1" */
    I32(9092),                      /*   Port */
    UV(4), 'a', 'z', 'a',          /*   Rack "aza" */
    NOTAGS,                         /*   broker tags */
    UV(4), 'k', 'c', '1',          /* ClusterId "kc1" */
    I32(1),                         /* ControllerId 1 */
    UV(2),                          /* Topics: compact 1 */
    I16(0),                         /*   ErrorCode */
    UV(4), 'f', 'o', 'o',          /*   Name "foo" */
    I8(0),                          /*   IsInternal false */
    UV(3),                          /*   Partitions: compact 2 */
    I16(0),                         /*     ErrorCode */
    I32(0),                         /*     PartitionIndex */
    I32(1),                         /*     LeaderId */
    I32(5),                         /*     LeaderEpoch */
    UV(3), I32(1), I32(2),          /*     ReplicaNodes [1, 2] */
    UV(2), I32(1),                  /*     IsrNodes [1] */
    UV(2), I32(2),                  /*     OfflineReplicas [2] */
    NOTAGS,                         /*     partition tags */
    I16(5),                         /*     ErrorCode LEADER_NOT_AVAILABLE */
    I32(1),                         /*     PartitionIndex */
    I32(-1),                        /*     LeaderId */
    I32(-1),                        /*     LeaderEpoch */
    UV(1),                          /*     ReplicaNodes [] */
    UV(1),                          /*     IsrNodes [] */
    UV(1),                          /*     OfflineReplicas [] */
    NOTAGS,                         /*     partition tags */
    I32(0xff8),                     /*   TopicAuthorizedOperations */
    NOTAGS,                         /*   topic tags */
    I32(0xbf8),                     /* ClusterAuthorizedOperations */
    NOTAGS,                         /* tags */
};

/* v12: TopicId, a null topic name (unknown topic asked by id), a null rack, a
 * null ClusterId, and an unknown tagged field at partition level. */
static const uint8_t resp_v12[] = {
    I32(0),                         /* ThrottleTimeMs */
    UV(3),                          /* Brokers: compact 2 */
    I32(1),                         /*   NodeId 1 */
    UV(3), 'b', '1',               /*   Host "b1" */
    I32(9092),                      /*   Port */
    UV(4), 'a', 'z', 'a',          /*   Rack "aza" */
    NOTAGS,                         /*   broker tags */
    I32(2),                         /*   NodeId 2 */
    UV(3), 'b', '2',               /*   Host "b2" */
    I32(9093),                      /*   Port */
    UV(0),                          /*   Rack null */
    NOTAGS,                         /*   broker tags */
    UV(0),                          /* ClusterId null */
    I32(2),                         /* ControllerId 2 */
    UV(3),                          /* Topics: compact 2 */
    I16(0),                         /*   ErrorCode */
    UV(4), 'f', 'o', 'o',          /*   Name "foo" */
    UUID_A,                         /*   TopicId A */
    I8(0),                          /*   IsInternal false */
    UV(2),                          /*   Partitions: compact 1 */
    I16(0),                         /*     ErrorCode */
    I32(0),                         /*     PartitionIndex */
    I32(1),                         /*     LeaderId */
    I32(3),                         /*     LeaderEpoch */
    UV(3), I32(1), I32(2),          /*     ReplicaNodes [1, 2] */
    UV(3), I32(1), I32(2),          /*     IsrNodes [1, 2] */
    UV(1),                          /*     OfflineReplicas [] */
    UV(1), UV(9), UV(1), 0x2a,      /*     partition tags: tag 9, 1 byte */
    I32(INT32_MIN),                 /*   TopicAuthorizedOperations (not asked) */
    NOTAGS,                         /*   topic tags */
    I16(100),                       /*   ErrorCode UNKNOWN_TOPIC_ID */
    UV(0),                          /*   Name null */
    UUID_B,                         /*   TopicId B */
    I8(0),                          /*   IsInternal false */
    UV(1),                          /*   Partitions: compact 0 */
    I32(INT32_MIN),                 /*   TopicAuthorizedOperations */
    NOTAGS,                         /*   topic tags */
    NOTAGS,                         /* tags */
};

/* resp_v12 encoded at v9: TopicId dropped, the null name becomes "", the
 * ClusterAuthorizedOperations default appears, tagged fields are kept. */
static const uint8_t resp_v12_as_v9[] = {
    I32(0),                         /* ThrottleTimeMs */
    UV(3),                          /* Brokers: compact 2 */
    I32(1), UV(3), 'b', '1', I32(9092), UV(4), 'a', 'z', 'a', NOTAGS,
    I32(2), UV(3), 'b', '2', I32(9093), UV(0), NOTAGS,
    UV(0),                          /* ClusterId null */
    I32(2),                         /* ControllerId 2 */
    UV(3),                          /* Topics: compact 2 */
    I16(0),                         /*   ErrorCode */
    UV(4), 'f', 'o', 'o',          /*   Name "foo" */
    I8(0),                          /*   IsInternal false */
    UV(2),                          /*   Partitions: compact 1 */
    I16(0), I32(0), I32(1), I32(3), /*     ErrorCode, PartitionIndex, LeaderId, LeaderEpoch */
    UV(3), I32(1), I32(2),          /*     ReplicaNodes [1, 2] */
    UV(3), I32(1), I32(2),          /*     IsrNodes [1, 2] */
    UV(1),                          /*     OfflineReplicas [] */
    UV(1), UV(9), UV(1), 0x2a,      /*     partition tags, kept */
    I32(INT32_MIN),                 /*   TopicAuthorizedOperations */
    NOTAGS,                         /*   topic tags */
    I16(100),                       /*   ErrorCode UNKNOWN_TOPIC_ID */
    UV(1),                          /*   Name "" (not nullable before v12) */
    I8(0),                          /*   IsInternal false */
    UV(1),                          /*   Partitions: compact 0 */
    I32(INT32_MIN),                 /*   TopicAuthorizedOperations */
    NOTAGS,                         /*   topic tags */
    I32(INT32_MIN),                 /* ClusterAuthorizedOperations (default) */
    NOTAGS,                         /* tags */
};

/* resp_v12 encoded at v1: non-flexible, no ThrottleTimeMs, ClusterId,
 * LeaderEpoch, OfflineReplicas, TopicAuthorizedOperations or tags. */
static const uint8_t resp_v12_as_v1[] = {
    I32(2),                         /* Brokers: 2 */
    I32(1), I16(2), 'b', '1', I32(9092), I16(3), 'a', 'z', 'a',
    I32(2), I16(2), 'b', '2', I32(9093), I16(-1),
    I32(2),                         /* ControllerId 2 */
    I32(2),                         /* Topics: 2 */
    I16(0),                         /*   ErrorCode */
    I16(3), 'f', 'o', 'o',         /*   Name "foo" */
    I8(0),                          /*   IsInternal false */
    I32(1),                         /*   Partitions: 1 */
    I16(0), I32(0), I32(1),         /*     ErrorCode, PartitionIndex, LeaderId */
    I32(2), I32(1), I32(2),         /*     ReplicaNodes [1, 2] */
    I32(2), I32(1), I32(2),         /*     IsrNodes [1, 2] */
    I16(100),                       /*   ErrorCode UNKNOWN_TOPIC_ID */
    I16(0),                         /*   Name "" */
    I8(0),                          /*   IsInternal false */
    I32(0),                         /*   Partitions: 0 */
};

/* ---------------- helpers ---------------- */

static void md_req_decode_ok(const uint8_t *g, size_t len, int16_t v, kc_arena *a,
                             kc_metadata_req *out)
{
    kc_rd rd;
    kc_rd_init(&rd, g, len);
    int rc = kc_metadata_req_decode(&rd, v, a, out);
    ck_assert_msg(rc == 0, "MetadataRequest v%d: %s at %zu", v, rd.err, rd.err_off);
}

static void md_resp_decode_ok(const uint8_t *g, size_t len, int16_t v, kc_arena *a,
                              kc_metadata_resp *out)
{
    kc_rd rd;
    kc_rd_init(&rd, g, len);
    int rc = kc_metadata_resp_decode(&rd, v, a, out);
    ck_assert_msg(rc == 0, "MetadataResponse v%d: %s at %zu", v, rd.err, rd.err_off);
}

/* Decode at v and encode again at v: the bytes must come back identical. */
static void md_req_roundtrip(const uint8_t *g, size_t len, int16_t v)
{
    kc_arena a;
    kc_metadata_req r;
    kc_arena_init(&a);
    md_req_decode_ok(g, len, v, &a, &r);
    EXPECT_ENCODED(kc_metadata_req_encode, v, &r, g, len);
    kc_arena_destroy(&a);
}

static void md_resp_roundtrip(const uint8_t *g, size_t len, int16_t v)
{
    kc_arena a;
    kc_metadata_resp r;
    kc_arena_init(&a);
    md_resp_decode_ok(g, len, v, &a, &r);
    EXPECT_ENCODED(kc_metadata_resp_encode, v, &r, g, len);
    kc_arena_destroy(&a);
}

/* ---------------- request tests ---------------- */

START_TEST(test_metadata_req_v0)
{
    kc_arena a;
    kc_metadata_req r;
    kc_arena_init(&a);
    md_req_decode_ok(req_v0, sizeof(req_v0), 0, &a, &r);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    ck_assert_int_eq(r.allow_auto_topic_creation, 1); /* schema default */
    ck_assert_int_eq(r.include_cluster_authorized_operations, 0);
    ck_assert_int_eq(r.include_topic_authorized_operations, 0);
    kc_arena_destroy(&a);
    md_req_roundtrip(req_v0, sizeof(req_v0), 0);
}
END_TEST

START_TEST(test_metadata_req_v0_all_topics)
{
    /* An empty v0 array means "all topics", reported as -1 like v1's null. */
    kc_arena a;
    kc_metadata_req r;
    kc_arena_init(&a);
    md_req_decode_ok(req_v0_all, sizeof(req_v0_all), 0, &a, &r);
    ck_assert_int_eq(r.ntopics, -1);
    /* ...and written back as v0's empty array, or as null from v1. */
    EXPECT_ENCODED(kc_metadata_req_encode, 0, &r, req_v0_all, sizeof(req_v0_all));
    EXPECT_ENCODED(kc_metadata_req_encode, 1, &r, req_v1_all, sizeof(req_v1_all));
    kc_arena_destroy(&a);

    /* The other way: v1 null goes down to v0 as the empty array. */
    kc_arena_init(&a);
    md_req_decode_ok(req_v1_all, sizeof(req_v1_all), 1, &a, &r);
    ck_assert_int_eq(r.ntopics, -1);
    ck_assert_ptr_null(r.topics);
    EXPECT_ENCODED(kc_metadata_req_encode, 0, &r, req_v0_all, sizeof(req_v0_all));
    kc_arena_destroy(&a);

    /* v0 has no null array at all. */
    kc_rd rd;
    kc_arena_init(&a);
    kc_rd_init(&rd, req_v1_all, sizeof(req_v1_all));
    ck_assert_int_eq(kc_metadata_req_decode(&rd, 0, &a, &r), -1);
    ck_assert_str_eq(rd.err, "null in non-nullable array");
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_metadata_req_v1)
{
    kc_arena a;
    kc_metadata_req r;
    kc_arena_init(&a);
    md_req_decode_ok(req_v1, sizeof(req_v1), 1, &a, &r);
    ck_assert_int_eq(r.ntopics, 2);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    ck_assert(kc_str_eq(r.topics[1].name, "ab"));
    ck_assert_int_eq(r.allow_auto_topic_creation, 1);
    kc_arena_destroy(&a);
    md_req_roundtrip(req_v1, sizeof(req_v1), 1);
}
END_TEST

START_TEST(test_metadata_req_v8)
{
    kc_arena a;
    kc_metadata_req r;
    kc_arena_init(&a);
    md_req_decode_ok(req_v8, sizeof(req_v8), 8, &a, &r);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    ck_assert_int_eq(r.allow_auto_topic_creation, 0);
    ck_assert_int_eq(r.include_cluster_authorized_operations, 1);
    ck_assert_int_eq(r.include_topic_authorized_operations, 1);
    kc_arena_destroy(&a);
    md_req_roundtrip(req_v8, sizeof(req_v8), 8);
}
END_TEST

START_TEST(test_metadata_req_v9)
{
    kc_arena a;
    kc_metadata_req r;
    kc_arena_init(&a);
    md_req_decode_ok(req_v9, sizeof(req_v9), 9, &a, &r);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    ck_assert_int_eq(r.allow_auto_topic_creation, 1);
    ck_assert_int_eq(r.include_cluster_authorized_operations, 0);
    ck_assert_int_eq(r.include_topic_authorized_operations, 1);
    ck_assert_uint_eq(r.tags.count, 0);
    kc_arena_destroy(&a);
    md_req_roundtrip(req_v9, sizeof(req_v9), 9);
}
END_TEST

START_TEST(test_metadata_req_v12)
{
    kc_arena a;
    kc_metadata_req r;
    kc_arena_init(&a);
    md_req_decode_ok(req_v12, sizeof(req_v12), 12, &a, &r);
    ck_assert_int_eq(r.ntopics, 2);
    ck_assert_mem_eq(r.topics[0].topic_id.b, uuid_a, 16);
    ck_assert_int_eq(r.topics[0].name.len, -1);
    ck_assert(kc_str_eq(r.topics[1].name, "foo"));
    ck_assert_int_eq(r.allow_auto_topic_creation, 1);
    ck_assert_int_eq(r.include_cluster_authorized_operations, 0);
    ck_assert_int_eq(r.include_topic_authorized_operations, 0);
    ck_assert_uint_eq(r.tags.count, 1);
    ck_assert_int_eq(r.tags.raw.len, 4);
    kc_arena_destroy(&a);
    md_req_roundtrip(req_v12, sizeof(req_v12), 12);

    /* A null name is only legal from v10. */
    kc_rd rd;
    kc_arena_init(&a);
    static const uint8_t v9_null_name[] = {UV(2), UV(0), NOTAGS, I8(1), I8(0), I8(0), NOTAGS};
    kc_rd_init(&rd, v9_null_name, sizeof(v9_null_name));
    ck_assert_int_eq(kc_metadata_req_decode(&rd, 9, &a, &r), -1);
    ck_assert_str_eq(rd.err, "null in non-nullable string");
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_metadata_req_downgrade)
{
    kc_arena a;
    kc_metadata_req r;

    /* v9 -> v1 and v4: the v4+/v8+ flags and all tags are dropped. */
    kc_arena_init(&a);
    md_req_decode_ok(req_v9, sizeof(req_v9), 9, &a, &r);
    static const uint8_t want_v1[] = {
        I32(1),                 /* Topics: 1 */
        I16(3), 'f', 'o', 'o', /*   Name "foo" */
    };
    EXPECT_ENCODED(kc_metadata_req_encode, 1, &r, want_v1, sizeof(want_v1));
    static const uint8_t want_v4[] = {
        I32(1),                 /* Topics: 1 */
        I16(3), 'f', 'o', 'o', /*   Name "foo" */
        I8(1),                  /* AllowAutoTopicCreation true */
    };
    EXPECT_ENCODED(kc_metadata_req_encode, 4, &r, want_v4, sizeof(want_v4));
    kc_arena_destroy(&a);

    /* v12 -> v9: TopicId dropped, a null name (not nullable before v10) goes
     * out as "", IncludeClusterAuthorizedOperations reappears, tags kept. */
    kc_arena_init(&a);
    md_req_decode_ok(req_v12, sizeof(req_v12), 12, &a, &r);
    static const uint8_t want_v9[] = {
        UV(3),                  /* Topics: compact 2 */
        UV(1),                  /*   Name "" */
        NOTAGS,                 /*   topic tags */
        UV(4), 'f', 'o', 'o',  /*   Name "foo" */
        NOTAGS,                 /*   topic tags */
        I8(1),                  /* AllowAutoTopicCreation true */
        I8(0),                  /* IncludeClusterAuthorizedOperations false */
        I8(0),                  /* IncludeTopicAuthorizedOperations false */
        UV(1), UV(5), UV(2), 0xab, 0xcd, /* tags, kept */
    };
    EXPECT_ENCODED(kc_metadata_req_encode, 9, &r, want_v9, sizeof(want_v9));
    kc_arena_destroy(&a);
}
END_TEST

/* ---------------- response tests ---------------- */

START_TEST(test_metadata_resp_v0)
{
    kc_arena a;
    kc_metadata_resp r;
    kc_arena_init(&a);
    md_resp_decode_ok(resp_v0, sizeof(resp_v0), 0, &a, &r);
    ck_assert_int_eq(r.throttle_time_ms, 0);
    ck_assert_int_eq(r.nbrokers, 1);
    ck_assert_int_eq(r.brokers[0].node_id, 1);
    ck_assert(kc_str_eq(r.brokers[0].host, "b1"));
    ck_assert_int_eq(r.brokers[0].port, 9092);
    ck_assert_int_eq(r.brokers[0].rack.len, -1); /* default null */
    ck_assert_int_eq(r.cluster_id.len, -1);      /* default null */
    ck_assert_int_eq(r.controller_id, -1);       /* default -1 */
    ck_assert_int_eq(r.ntopics, 1);
    const kc_metadata_topic *t = &r.topics[0];
    ck_assert_int_eq(t->error_code, 0);
    ck_assert(kc_str_eq(t->name, "foo"));
    ck_assert_int_eq(t->is_internal, 0);
    ck_assert_int_eq(t->topic_authorized_operations, INT32_MIN);
    ck_assert_int_eq(t->npartitions, 1);
    const kc_metadata_partition *p = &t->partitions[0];
    ck_assert_int_eq(p->partition_index, 0);
    ck_assert_int_eq(p->leader_id, 1);
    ck_assert_int_eq(p->leader_epoch, -1); /* default -1 */
    ck_assert_int_eq(p->nreplica_nodes, 2);
    ck_assert_int_eq(p->replica_nodes[0], 1);
    ck_assert_int_eq(p->replica_nodes[1], 2);
    ck_assert_int_eq(p->nisr_nodes, 1);
    ck_assert_int_eq(p->isr_nodes[0], 1);
    ck_assert_int_eq(p->noffline_replicas, 0);
    ck_assert_int_eq(r.cluster_authorized_operations, INT32_MIN);
    kc_arena_destroy(&a);
    md_resp_roundtrip(resp_v0, sizeof(resp_v0), 0);
}
END_TEST

START_TEST(test_metadata_resp_v1)
{
    kc_arena a;
    kc_metadata_resp r;
    kc_arena_init(&a);
    md_resp_decode_ok(resp_v1, sizeof(resp_v1), 1, &a, &r);
    ck_assert_int_eq(r.nbrokers, 2);
    ck_assert(kc_str_eq(r.brokers[0].rack, "aza"));
    ck_assert_int_eq(r.brokers[1].node_id, 2);
    ck_assert(kc_str_eq(r.brokers[1].host, "b2"));
    ck_assert_int_eq(r.brokers[1].port, 9093);
    ck_assert_int_eq(r.brokers[1].rack.len, -1);
    ck_assert_int_eq(r.cluster_id.len, -1);
    ck_assert_int_eq(r.controller_id, 2);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert_int_eq(r.topics[0].is_internal, 1);
    ck_assert_int_eq(r.topics[0].partitions[0].nisr_nodes, 2);
    kc_arena_destroy(&a);
    md_resp_roundtrip(resp_v1, sizeof(resp_v1), 1);
}
END_TEST

START_TEST(test_metadata_resp_v9)
{
    kc_arena a;
    kc_metadata_resp r;
    kc_arena_init(&a);
    md_resp_decode_ok(resp_v9, sizeof(resp_v9), 9, &a, &r);
    ck_assert_int_eq(r.throttle_time_ms, 7);
    ck_assert_int_eq(r.nbrokers, 1);
    ck_assert(kc_str_eq(r.brokers[0].rack, "aza"));
    ck_assert(kc_str_eq(r.cluster_id, "kc1"));
    ck_assert_int_eq(r.controller_id, 1);
    ck_assert_int_eq(r.ntopics, 1);
    const kc_metadata_topic *t = &r.topics[0];
    ck_assert(kc_str_eq(t->name, "foo"));
    ck_assert_int_eq(t->npartitions, 2);
    ck_assert_int_eq(t->partitions[0].leader_epoch, 5);
    ck_assert_int_eq(t->partitions[0].noffline_replicas, 1);
    ck_assert_int_eq(t->partitions[0].offline_replicas[0], 2);
    ck_assert_int_eq(t->partitions[1].error_code, 5);
    ck_assert_int_eq(t->partitions[1].leader_id, -1);
    ck_assert_int_eq(t->partitions[1].nreplica_nodes, 0);
    ck_assert_int_eq(t->topic_authorized_operations, 0xff8);
    ck_assert_int_eq(r.cluster_authorized_operations, 0xbf8);
    kc_arena_destroy(&a);
    md_resp_roundtrip(resp_v9, sizeof(resp_v9), 9);
}
END_TEST

START_TEST(test_metadata_resp_v12)
{
    kc_arena a;
    kc_metadata_resp r;
    kc_arena_init(&a);
    md_resp_decode_ok(resp_v12, sizeof(resp_v12), 12, &a, &r);
    ck_assert_int_eq(r.nbrokers, 2);
    ck_assert_int_eq(r.brokers[1].rack.len, -1);
    ck_assert_int_eq(r.cluster_id.len, -1);
    ck_assert_int_eq(r.controller_id, 2);
    ck_assert_int_eq(r.ntopics, 2);
    ck_assert_mem_eq(r.topics[0].topic_id.b, uuid_a, 16);
    ck_assert_int_eq(r.topics[0].partitions[0].leader_epoch, 3);
    ck_assert_uint_eq(r.topics[0].partitions[0].tags.count, 1);
    ck_assert_int_eq(r.topics[1].error_code, 100);
    ck_assert_int_eq(r.topics[1].name.len, -1);
    ck_assert_mem_eq(r.topics[1].topic_id.b, uuid_b, 16);
    ck_assert_int_eq(r.topics[1].npartitions, 0);
    /* Not in v11+: left at its default. */
    ck_assert_int_eq(r.cluster_authorized_operations, INT32_MIN);
    kc_arena_destroy(&a);
    md_resp_roundtrip(resp_v12, sizeof(resp_v12), 12);

    /* The same bytes are not a valid v11 message: the topic name may not be
     * null before v12. */
    kc_rd rd;
    kc_arena_init(&a);
    kc_rd_init(&rd, resp_v12, sizeof(resp_v12));
    ck_assert_int_eq(kc_metadata_resp_decode(&rd, 11, &a, &r), -1);
    ck_assert_str_eq(rd.err, "null in non-nullable string");
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_metadata_resp_downgrade)
{
    kc_arena a;
    kc_metadata_resp r;
    kc_arena_init(&a);
    md_resp_decode_ok(resp_v12, sizeof(resp_v12), 12, &a, &r);
    EXPECT_ENCODED(kc_metadata_resp_encode, 9, &r, resp_v12_as_v9, sizeof(resp_v12_as_v9));
    EXPECT_ENCODED(kc_metadata_resp_encode, 1, &r, resp_v12_as_v1, sizeof(resp_v12_as_v1));
    kc_arena_destroy(&a);

    /* What came out at v1 reads back as v1. */
    kc_arena_init(&a);
    md_resp_decode_ok(resp_v12_as_v1, sizeof(resp_v12_as_v1), 1, &a, &r);
    ck_assert_int_eq(r.ntopics, 2);
    ck_assert(kc_str_eq(r.topics[1].name, ""));
    kc_arena_destroy(&a);
}
END_TEST

/* ---------------- bad input ---------------- */

static const struct {
    const uint8_t *bytes;
    size_t len;
    int16_t version;
    int resp;
} md_goldens[] = {
    {req_v0, sizeof(req_v0), 0, 0},       {req_v0_all, sizeof(req_v0_all), 0, 0},
    {req_v1, sizeof(req_v1), 1, 0},       {req_v1_all, sizeof(req_v1_all), 1, 0},
    {req_v8, sizeof(req_v8), 8, 0},       {req_v9, sizeof(req_v9), 9, 0},
    {req_v12, sizeof(req_v12), 12, 0},    {resp_v0, sizeof(resp_v0), 0, 1},
    {resp_v1, sizeof(resp_v1), 1, 1},     {resp_v9, sizeof(resp_v9), 9, 1},
    {resp_v12, sizeof(resp_v12), 12, 1},  {resp_v12_as_v9, sizeof(resp_v12_as_v9), 9, 1},
    {resp_v12_as_v1, sizeof(resp_v12_as_v1), 1, 1},
};

START_TEST(test_metadata_truncated)
{
    /* Every proper prefix of every golden message must fail, with an error
     * recorded and no read past the cut (ASan checks the latter). */
    for (size_t g = 0; g < sizeof(md_goldens) / sizeof(md_goldens[0]); g++) {
        for (size_t cut = 0; cut < md_goldens[g].len; cut++) {
            /* A heap copy of exactly cut bytes, so an overread is caught. */
            uint8_t *buf = malloc(cut ? cut : 1);
            ck_assert_ptr_nonnull(buf);
            memcpy(buf, md_goldens[g].bytes, cut);
            kc_rd rd;
            kc_arena a;
            kc_rd_init(&rd, buf, cut);
            kc_arena_init(&a);
            int rc;
            if (md_goldens[g].resp) {
                kc_metadata_resp r;
                rc = kc_metadata_resp_decode(&rd, md_goldens[g].version, &a, &r);
            } else {
                kc_metadata_req r;
                rc = kc_metadata_req_decode(&rd, md_goldens[g].version, &a, &r);
            }
            ck_assert_msg(rc == -1, "golden %zu cut at %zu decoded", g, cut);
            ck_assert_ptr_nonnull(rd.err);
            kc_arena_destroy(&a);
            free(buf);
        }
    }
}
END_TEST

START_TEST(test_metadata_huge_counts)
{
    /* Counts far beyond the bytes present fail before any allocation. */
    static const uint8_t req_v1_huge[] = {I32(0x7fffffff), I16(3), 'f', 'o', 'o'};
    static const uint8_t req_v9_huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f, UV(4), 'f', 'o', 'o'};
    /* 40 topics claimed, room for one at most (18 bytes each from v10). */
    static const uint8_t req_v12_many[] = {UV(41), UUID_A, UV(1), NOTAGS, I8(1), I8(0), NOTAGS};
    static const uint8_t resp_v1_huge_brokers[] = {I32(0x7fffffff), I32(1)};
    static const uint8_t resp_v9_huge_topics[] = {
        I32(0),                    /* ThrottleTimeMs */
        UV(1),                     /* Brokers: compact 0 */
        UV(0),                     /* ClusterId null */
        I32(1),                    /* ControllerId */
        0xfe, 0xff, 0xff, 0xff, 0x0f, /* Topics: ~4 billion */
        I32(0), NOTAGS,
    };
    static const uint8_t resp_v5_huge_replicas[] = {
        I32(0),                    /* ThrottleTimeMs */
        I32(0),                    /* Brokers: 0 */
        I16(-1),                   /* ClusterId null */
        I32(1),                    /* ControllerId */
        I32(1),                    /* Topics: 1 */
        I16(0), I16(1), 't', I8(0), /*  ErrorCode, Name "t", IsInternal */
        I32(1),                    /*   Partitions: 1 */
        I16(0), I32(0), I32(1),    /*     ErrorCode, PartitionIndex, LeaderId */
        I32(0x40000000),           /*     ReplicaNodes: 2^30 */
        I32(0), I32(0),
    };
    /* v12: 5 partitions claimed (18 bytes at least each), 24 bytes present. */
    static const uint8_t resp_v12_many_parts[] = {
        I32(0), UV(1), UV(0), I32(1), /* ThrottleTimeMs, Brokers [], ClusterId, ControllerId */
        UV(2),                         /* Topics: compact 1 */
        I16(0), UV(2), 't', UUID_A, I8(0), /* ErrorCode, Name "t", TopicId, IsInternal */
        UV(6),                         /*   Partitions: compact 5 */
        I16(0), I32(0), I32(1), I32(0), UV(1), UV(1), UV(1), NOTAGS,
        I32(0), NOTAGS, NOTAGS,
    };
    const struct {
        const uint8_t *b;
        size_t len;
        int16_t v;
        int resp;
    } cases[] = {
        {req_v1_huge, sizeof(req_v1_huge), 1, 0},
        {req_v9_huge, sizeof(req_v9_huge), 9, 0},
        {req_v12_many, sizeof(req_v12_many), 12, 0},
        {resp_v1_huge_brokers, sizeof(resp_v1_huge_brokers), 1, 1},
        {resp_v9_huge_topics, sizeof(resp_v9_huge_topics), 9, 1},
        {resp_v5_huge_replicas, sizeof(resp_v5_huge_replicas), 5, 1},
        {resp_v12_many_parts, sizeof(resp_v12_many_parts), 12, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kc_rd rd;
        kc_arena a;
        kc_rd_init(&rd, cases[i].b, cases[i].len);
        kc_arena_init(&a);
        int rc;
        if (cases[i].resp) {
            kc_metadata_resp r;
            rc = kc_metadata_resp_decode(&rd, cases[i].v, &a, &r);
        } else {
            kc_metadata_req r;
            rc = kc_metadata_req_decode(&rd, cases[i].v, &a, &r);
        }
        ck_assert_msg(rc == -1, "case %zu decoded", i);
        ck_assert_msg(strcmp(rd.err, "array count exceeds frame") == 0, "case %zu: %s", i,
                      rd.err);
        /* Nothing was allocated for the claimed elements. */
        ck_assert_uint_lt(a.total, 4096);
        kc_arena_destroy(&a);
    }
}
END_TEST

START_TEST(test_metadata_trailing_garbage)
{
    uint8_t buf[sizeof(resp_v9) + 1];
    memcpy(buf, resp_v9, sizeof(resp_v9));
    buf[sizeof(resp_v9)] = 0;
    kc_rd rd;
    kc_arena a;
    kc_metadata_resp r;
    kc_rd_init(&rd, buf, sizeof(buf));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_metadata_resp_decode(&rd, 9, &a, &r), -1);
    ck_assert_str_eq(rd.err, "garbage after message");
    kc_arena_destroy(&a);
}
END_TEST

Suite *kc_metadata_suite(void)
{
    Suite *s = suite_create("kc_metadata");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_metadata_req_v0);
    tcase_add_test(tc, test_metadata_req_v0_all_topics);
    tcase_add_test(tc, test_metadata_req_v1);
    tcase_add_test(tc, test_metadata_req_v8);
    tcase_add_test(tc, test_metadata_req_v9);
    tcase_add_test(tc, test_metadata_req_v12);
    tcase_add_test(tc, test_metadata_req_downgrade);
    tcase_add_test(tc, test_metadata_resp_v0);
    tcase_add_test(tc, test_metadata_resp_v1);
    tcase_add_test(tc, test_metadata_resp_v9);
    tcase_add_test(tc, test_metadata_resp_v12);
    tcase_add_test(tc, test_metadata_resp_downgrade);
    suite_add_tcase(s, tc);
    TCase *bad = tcase_create("bad_input");
    tcase_add_test(bad, test_metadata_truncated);
    tcase_add_test(bad, test_metadata_huge_counts);
    tcase_add_test(bad, test_metadata_trailing_garbage);
    suite_add_tcase(s, bad);
    return s;
}
