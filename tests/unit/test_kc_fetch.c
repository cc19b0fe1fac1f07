/* Fetch golden bytes (FetchRequest.json / FetchResponse.json, v4-v13). */
#include "config.h"

#include "codec/kc_msg.h"
#include "codec/kc_proto.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
/* A one-record batch (DefaultRecordBatch.java layout); test_fetch_resp_v4
 * checks its CRC through kc_record_batches_validate. */
#define BATCH_LEN 70
#define BATCH \
    I64(5),              /* BaseOffset */ \
    I32(58),             /* Length: bytes after this field */ \
    I32(0),              /* PartitionLeaderEpoch */ \
    I8(2),               /* Magic */ \
    I32(0xbbcc4115),     /* CRC32C of Attributes..end */ \
    I16(0),              /* Attributes: no compression, CreateTime */ \
    I32(0),              /* LastOffsetDelta */ \
    I64(1700000000000),  /* BaseTimestamp */ \
    I64(1700000000000),  /* MaxTimestamp */ \
    I64(-1),             /* ProducerId */ \
    I16(-1),             /* ProducerEpoch */ \
    I32(-1),             /* BaseSequence */ \
    I32(1),              /* RecordsCount */ \
    0x10, 0x00, 0x00,    /* Record: Length 8, Attributes, TimestampDelta 0 */ \
    0x00, 0x01,          /* OffsetDelta 0, KeyLength -1 (null) */ \
    0x04, 'h', 'i',      /* ValueLength 2, Value "hi" */ \
    0x00                 /* Headers: 0 */

/* Topic ids of "foo" and "bar" in the v13 goldens. */
#define FOO_ID 'o', 'o', 'f', '-', 't', 'o', 'p', 'i', 'c', '-', 'i', 'd', '-', '0', '0', '1'
#define BAR_ID 'b', 'a', 'r', '-', 't', 'o', 'p', 'i', 'c', '-', 'i', 'd', '-', '0', '0', '2'
static const uint8_t foo_id[16] = {FOO_ID};
static const uint8_t bar_id[16] = {BAR_ID};

/* ---- request goldens ---- */

/* v11: read_committed consumer in zone-a, one partition, forgetting bar 1,2. */
static const uint8_t req_v11[] = {
    I32(-1),                              /* ReplicaId: consumer */
    I32(500),                             /* MaxWaitMs */
    I32(1),                               /* MinBytes */
    I32(52428800),                        /* MaxBytes */
    I8(1),                                /* IsolationLevel: read_committed */
    I32(0),                               /* SessionId */
    I32(-1),                              /* SessionEpoch: full fetch */
    I32(1),                               /* Topics: 1 */
    I16(3), 'f', 'o', 'o',                /* Topic */
    I32(1),                               /* Partitions: 1 */
    I32(0),                               /* Partition */
    I32(5),                               /* CurrentLeaderEpoch */
    I64(42),                              /* FetchOffset */
    I64(-1),                              /* LogStartOffset */
    I32(1048576),                         /* PartitionMaxBytes */
    I32(1),                               /* ForgottenTopicsData: 1 */
    I16(3), 'b', 'a', 'r',                /* Topic */
    I32(2), I32(1), I32(2),               /* Partitions [1, 2] */
    I16(6), 'z', 'o', 'n', 'e', '-', 'a', /* RackId */
};

/* v12: first flexible version; names still, ClusterId as tag 0. */
static const uint8_t req_v12[] = {
    I32(-1),                             /* ReplicaId */
    I32(500),                            /* MaxWaitMs */
    I32(1),                              /* MinBytes */
    I32(52428800),                       /* MaxBytes */
    I8(0),                               /* IsolationLevel: read_uncommitted */
    I32(7),                              /* SessionId */
    I32(1),                              /* SessionEpoch */
    UV(2),                               /* Topics: 1 */
    UV(4), 'f', 'o', 'o',                /* Topic */
    UV(2),                               /* Partitions: 1 */
    I32(0),                              /* Partition */
    I32(5),                              /* CurrentLeaderEpoch */
    I64(42),                             /* FetchOffset */
    I32(4),                              /* LastFetchedEpoch */
    I64(-1),                             /* LogStartOffset */
    I32(1048576),                        /* PartitionMaxBytes */
    NOTAGS,                              /* partition tags */
    NOTAGS,                              /* topic tags */
    UV(1),                               /* ForgottenTopicsData: empty */
    UV(7), 'z', 'o', 'n', 'e', '-', 'a', /* RackId */
    UV(1),                               /* tags: 1 */
    UV(0), UV(3),                        /* tag 0 ClusterId, 3 bytes: */
    UV(3), 'c', '1',                     /*   compact string "c1" */
};

/* v13: topic ids instead of names. */
static const uint8_t req_v13[] = {
    I32(-1),       /* ReplicaId */
    I32(500),      /* MaxWaitMs */
    I32(1),        /* MinBytes */
    I32(52428800), /* MaxBytes */
    I8(0),         /* IsolationLevel */
    I32(7),        /* SessionId */
    I32(2),        /* SessionEpoch */
    UV(2),         /* Topics: 1 */
    FOO_ID,        /* TopicId */
    UV(2),         /* Partitions: 1 */
    I32(0),        /* Partition */
    I32(5),        /* CurrentLeaderEpoch */
    I64(43),       /* FetchOffset */
    I32(5),        /* LastFetchedEpoch */
    I64(-1),       /* LogStartOffset */
    I32(1048576),  /* PartitionMaxBytes */
    NOTAGS,        /* partition tags */
    NOTAGS,        /* topic tags */
    UV(2),         /* ForgottenTopicsData: 1 */
    BAR_ID,        /* TopicId */
    UV(2), I32(3), /* Partitions [3] */
    NOTAGS,        /* forgotten topic tags */
    UV(1),         /* RackId "" */
    NOTAGS,        /* tags */
};

/* v4: none of the v5+ fields (the decoder fills their defaults). */
static const uint8_t req_v4[] = {
    I32(-1),     /* ReplicaId */
    I32(100),    /* MaxWaitMs */
    I32(1),      /* MinBytes */
    I32(1024),   /* MaxBytes */
    I8(0),       /* IsolationLevel */
    I32(1),      /* Topics: 1 */
    I16(1), 't', /* Topic */
    I32(1),      /* Partitions: 1 */
    I32(3),      /* Partition */
    I64(9),      /* FetchOffset */
    I32(4096),   /* PartitionMaxBytes */
};

/* ---- response goldens ---- */

/* v4: partition 0 has a batch and one aborted transaction; partition 1 is
 * out of range with null aborted transactions and empty records. */
static const uint8_t resp_v4[] = {
    I32(0),                /* ThrottleTimeMs */
    I32(1),                /* Responses: 1 */
    I16(3), 'f', 'o', 'o', /* Topic */
    I32(2),                /* Partitions: 2 */
    I32(0),                /* PartitionIndex */
    I16(0),                /* ErrorCode */
    I64(6),                /* HighWatermark */
    I64(6),                /* LastStableOffset */
    I32(1),                /* AbortedTransactions: 1 */
    I64(1000),             /* ProducerId */
    I64(3),                /* FirstOffset */
    I32(BATCH_LEN), BATCH, /* Records */
    I32(1),                /* PartitionIndex */
    I16(1),                /* ErrorCode: OFFSET_OUT_OF_RANGE */
    I64(-1),               /* HighWatermark */
    I64(-1),               /* LastStableOffset */
    I32(-1),               /* AbortedTransactions: null */
    I32(0),                /* Records: empty */
};
#define RESP_V4_BATCH_OFF 63

/* v12: partition 0 with the batch; partition 1 NOT_LEADER_OR_FOLLOWER with
 * the tagged CurrentLeader (tag 1) and null records. */
static const uint8_t resp_v12[] = {
    I32(0),                   /* ThrottleTimeMs */
    I16(0),                   /* ErrorCode */
    I32(7),                   /* SessionId */
    UV(2),                    /* Responses: 1 */
    UV(4), 'f', 'o', 'o',     /* Topic */
    UV(3),                    /* Partitions: 2 */
    I32(0),                   /* PartitionIndex */
    I16(0),                   /* ErrorCode */
    I64(6),                   /* HighWatermark */
    I64(6),                   /* LastStableOffset */
    I64(0),                   /* LogStartOffset */
    UV(1),                    /* AbortedTransactions: empty */
    I32(-1),                  /* PreferredReadReplica */
    UV(BATCH_LEN + 1), BATCH, /* Records */
    NOTAGS,                   /* partition tags */
    I32(1),                   /* PartitionIndex */
    I16(6),                   /* ErrorCode: NOT_LEADER_OR_FOLLOWER */
    I64(-1),                  /* HighWatermark */
    I64(-1),                  /* LastStableOffset */
    I64(-1),                  /* LogStartOffset */
    UV(0),                    /* AbortedTransactions: null */
    I32(-1),                  /* PreferredReadReplica */
    UV(0),                    /* Records: null */
    UV(1),                    /* partition tags: 1 */
    UV(1), UV(9),             /* tag 1 CurrentLeader, 9 bytes: */
    I32(2), I32(6), NOTAGS,   /*   LeaderId 2, LeaderEpoch 6, no tags */
    NOTAGS,                   /* topic tags */
    NOTAGS,                   /* tags */
};

/* v13: topic id; DivergingEpoch (tag 0) on a partition with no records. */
static const uint8_t resp_v13[] = {
    I32(5),                   /* ThrottleTimeMs */
    I16(0),                   /* ErrorCode */
    I32(7),                   /* SessionId */
    UV(2),                    /* Responses: 1 */
    FOO_ID,                   /* TopicId */
    UV(3),                    /* Partitions: 2 */
    I32(0),                   /* PartitionIndex */
    I16(0),                   /* ErrorCode */
    I64(6),                   /* HighWatermark */
    I64(5),                   /* LastStableOffset */
    I64(0),                   /* LogStartOffset */
    UV(2),                    /* AbortedTransactions: 1 */
    I64(1000),                /* ProducerId */
    I64(3),                   /* FirstOffset */
    NOTAGS,                   /* aborted transaction tags */
    I32(2),                   /* PreferredReadReplica */
    UV(BATCH_LEN + 1), BATCH, /* Records */
    NOTAGS,                   /* partition tags */
    I32(1),                   /* PartitionIndex */
    I16(0),                   /* ErrorCode */
    I64(9),                   /* HighWatermark */
    I64(9),                   /* LastStableOffset */
    I64(0),                   /* LogStartOffset */
    UV(1),                    /* AbortedTransactions: empty */
    I32(-1),                  /* PreferredReadReplica */
    UV(1),                    /* Records: empty */
    UV(1),                    /* partition tags: 1 */
    UV(0), UV(13),            /* tag 0 DivergingEpoch, 13 bytes: */
    I32(3), I64(100), NOTAGS, /*   Epoch 3, EndOffset 100, no tags */
    NOTAGS,                   /* topic tags */
    NOTAGS,                   /* tags */
};
/* clang-format on */

/* ---- helpers ---- */

typedef struct codec {
    const char *name;
    int (*dec)(kc_rd *, int16_t, kc_arena *, void *);
    void (*enc)(kc_wr *, int16_t, const void *);
} codec;

static int req_dec(kc_rd *rd, int16_t v, kc_arena *a, void *m)
{
    return kc_fetch_req_decode(rd, v, a, m);
}
static void req_enc(kc_wr *w, int16_t v, const void *m)
{
    kc_fetch_req_encode(w, v, m);
}
static int resp_dec(kc_rd *rd, int16_t v, kc_arena *a, void *m)
{
    return kc_fetch_resp_decode(rd, v, a, m);
}
static void resp_enc(kc_wr *w, int16_t v, const void *m)
{
    kc_fetch_resp_encode(w, v, m);
}

static const codec REQ = {"FetchRequest", req_dec, req_enc};
static const codec RESP = {"FetchResponse", resp_dec, resp_enc};

typedef union any_msg {
    kc_fetch_req req;
    kc_fetch_resp resp;
} any_msg;

static struct evbuffer *encode(const codec *c, int16_t version, const void *m)
{
    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    c->enc(&w, version, m);
    ck_assert_int_eq(w.err, 0);
    return eb;
}

static void expect_encodes_to(const codec *c, int16_t version, const void *m, const uint8_t *want,
                              size_t len)
{
    struct evbuffer *eb = encode(c, version, m);
    kz_expect_bytes(c->name, evbuffer_pullup(eb, -1), evbuffer_get_length(eb), want, len);
    evbuffer_free(eb);
}

static void expect_roundtrip(const codec *c, const uint8_t *golden, size_t len, int16_t version)
{
    kc_rd rd;
    kc_arena a;
    any_msg m;
    kc_rd_init(&rd, golden, len);
    kc_arena_init(&a);
    ck_assert_msg(c->dec(&rd, version, &a, &m) == 0, "%s v%d: %s at %zu", c->name, version, rd.err,
                  rd.err_off);
    expect_encodes_to(c, version, &m, golden, len);
    kc_arena_destroy(&a);
}

static void expect_truncation_fails(const codec *c, const uint8_t *golden, size_t len,
                                    int16_t version)
{
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size, for ASan */
        memcpy(copy, golden, cut);
        kc_rd rd;
        kc_arena a;
        any_msg m;
        kc_rd_init(&rd, copy, cut);
        kc_arena_init(&a);
        ck_assert_msg(c->dec(&rd, version, &a, &m) == -1, "%s v%d cut at %zu decoded", c->name,
                      version, cut);
        ck_assert_ptr_nonnull(rd.err);
        kc_arena_destroy(&a);
        free(copy);
    }
}

/* Decoded at one version, the message encodes at every version of the range
 * (the proxy translates), and each encoding decodes and re-encodes to itself. */
static void expect_every_version(const codec *c, const uint8_t *golden, size_t len, int16_t version)
{
    const kc_api_info *ai = kc_api_lookup(KC_API_FETCH);
    kc_rd rd;
    kc_arena a;
    any_msg m;
    kc_rd_init(&rd, golden, len);
    kc_arena_init(&a);
    ck_assert_int_eq(c->dec(&rd, version, &a, &m), 0);
    for (int16_t v = ai->min_version; v <= ai->max_version; v++) {
        struct evbuffer *eb = encode(c, v, &m);
        size_t n = evbuffer_get_length(eb);
        const uint8_t *p = evbuffer_pullup(eb, -1);
        kc_rd rd2;
        kc_arena a2;
        any_msg m2;
        kc_rd_init(&rd2, p, n);
        kc_arena_init(&a2);
        ck_assert_msg(c->dec(&rd2, v, &a2, &m2) == 0, "%s v%d as v%d: %s", c->name, version, v,
                      rd2.err);
        expect_encodes_to(c, v, &m2, p, n);
        kc_arena_destroy(&a2);
        evbuffer_free(eb);
    }
    kc_arena_destroy(&a);
}

/* ---- request ---- */

START_TEST(test_fetch_req_v11)
{
    kc_rd rd;
    kc_arena a;
    kc_fetch_req r;
    kc_rd_init(&rd, req_v11, sizeof(req_v11));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_fetch_req_decode(&rd, 11, &a, &r), 0);
    ck_assert_int_eq(r.replica_id, -1);
    ck_assert_int_eq(r.max_wait_ms, 500);
    ck_assert_int_eq(r.min_bytes, 1);
    ck_assert_int_eq(r.max_bytes, 52428800);
    ck_assert_int_eq(r.isolation_level, 1);
    ck_assert_int_eq(r.session_id, 0);
    ck_assert_int_eq(r.session_epoch, -1);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].topic, "foo"));
    ck_assert_int_eq(r.topics[0].npartitions, 1);
    const kc_fetch_req_partition *p = &r.topics[0].partitions[0];
    ck_assert_int_eq(p->partition, 0);
    ck_assert_int_eq(p->current_leader_epoch, 5);
    ck_assert_int_eq(p->fetch_offset, 42);
    ck_assert_int_eq(p->last_fetched_epoch, -1); /* v12+: default */
    ck_assert_int_eq(p->log_start_offset, -1);
    ck_assert_int_eq(p->partition_max_bytes, 1048576);
    ck_assert_int_eq(r.nforgotten_topics_data, 1);
    ck_assert(kc_str_eq(r.forgotten_topics_data[0].topic, "bar"));
    ck_assert_int_eq(r.forgotten_topics_data[0].npartitions, 2);
    ck_assert_int_eq(r.forgotten_topics_data[0].partitions[1], 2);
    ck_assert(kc_str_eq(r.rack_id, "zone-a"));
    expect_encodes_to(&REQ, 11, &r, req_v11, sizeof(req_v11));
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_fetch_req_v12)
{
    kc_rd rd;
    kc_arena a;
    kc_fetch_req r;
    kc_rd_init(&rd, req_v12, sizeof(req_v12));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_fetch_req_decode(&rd, 12, &a, &r), 0);
    ck_assert_int_eq(r.isolation_level, 0);
    ck_assert_int_eq(r.session_id, 7);
    ck_assert_int_eq(r.session_epoch, 1);
    ck_assert(kc_str_eq(r.topics[0].topic, "foo"));
    ck_assert_int_eq(r.topics[0].partitions[0].current_leader_epoch, 5);
    ck_assert_int_eq(r.topics[0].partitions[0].last_fetched_epoch, 4);
    ck_assert_int_eq(r.nforgotten_topics_data, 0);
    ck_assert(kc_str_eq(r.rack_id, "zone-a"));
    /* ClusterId stays raw in the top-level tags. */
    ck_assert_uint_eq(r.tags.count, 1);
    ck_assert_int_eq(r.tags.raw.len, 5);
    ck_assert_int_eq(r.tags.raw.p[0], 0); /* tag 0 */
    expect_encodes_to(&REQ, 12, &r, req_v12, sizeof(req_v12));
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_fetch_req_v13)
{
    kc_rd rd;
    kc_arena a;
    kc_fetch_req r;
    kc_rd_init(&rd, req_v13, sizeof(req_v13));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_fetch_req_decode(&rd, 13, &a, &r), 0);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert_mem_eq(r.topics[0].topic_id.b, foo_id, 16);
    ck_assert_int_eq(r.topics[0].topic.len, 0); /* no names in v13: default "" */
    ck_assert_int_eq(r.topics[0].partitions[0].fetch_offset, 43);
    ck_assert_int_eq(r.topics[0].partitions[0].last_fetched_epoch, 5);
    ck_assert_int_eq(r.nforgotten_topics_data, 1);
    ck_assert_mem_eq(r.forgotten_topics_data[0].topic_id.b, bar_id, 16);
    ck_assert_int_eq(r.forgotten_topics_data[0].npartitions, 1);
    ck_assert_int_eq(r.forgotten_topics_data[0].partitions[0], 3);
    ck_assert(kc_str_eq(r.rack_id, ""));
    expect_encodes_to(&REQ, 13, &r, req_v13, sizeof(req_v13));
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_fetch_req_v4_defaults)
{
    kc_rd rd;
    kc_arena a;
    kc_fetch_req r;
    kc_rd_init(&rd, req_v4, sizeof(req_v4));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_fetch_req_decode(&rd, 4, &a, &r), 0);
    ck_assert_int_eq(r.session_id, 0);
    ck_assert_int_eq(r.session_epoch, -1);
    ck_assert_int_eq(r.nforgotten_topics_data, 0);
    ck_assert(kc_str_eq(r.rack_id, ""));
    ck_assert_int_eq(r.topics[0].partitions[0].current_leader_epoch, -1);
    ck_assert_int_eq(r.topics[0].partitions[0].last_fetched_epoch, -1);
    ck_assert_int_eq(r.topics[0].partitions[0].log_start_offset, -1);
    expect_encodes_to(&REQ, 4, &r, req_v4, sizeof(req_v4));
    expect_truncation_fails(&REQ, req_v4, sizeof(req_v4), 4);
    expect_every_version(&REQ, req_v4, sizeof(req_v4), 4);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_fetch_req_versions)
{
    expect_roundtrip(&REQ, req_v11, sizeof(req_v11), 11);
    expect_roundtrip(&REQ, req_v12, sizeof(req_v12), 12);
    expect_roundtrip(&REQ, req_v13, sizeof(req_v13), 13);
    expect_every_version(&REQ, req_v11, sizeof(req_v11), 11);
    expect_every_version(&REQ, req_v12, sizeof(req_v12), 12);
    expect_every_version(&REQ, req_v13, sizeof(req_v13), 13);
}
END_TEST

START_TEST(test_fetch_req_truncated)
{
    expect_truncation_fails(&REQ, req_v11, sizeof(req_v11), 11);
    expect_truncation_fails(&REQ, req_v12, sizeof(req_v12), 12);
    expect_truncation_fails(&REQ, req_v13, sizeof(req_v13), 13);
}
END_TEST

START_TEST(test_fetch_req_huge_counts)
{
    /* clang-format off */
    /* v11 header fields, then Topics claiming 2^31-1 entries in 8 bytes. */
    static const uint8_t topics_v11[] = {
        I32(-1), I32(0), I32(0), I32(0), I8(0), /* ReplicaId .. IsolationLevel */
        I32(0), I32(-1),                        /* SessionId, SessionEpoch */
        I32(0x7fffffff),                        /* Topics: huge */
        I32(0), I32(0),
    };
    /* No topics, one forgotten topic "b" claiming 2^30 partitions. */
    static const uint8_t forgotten_v11[] = {
        I32(-1), I32(0), I32(0), I32(0), I8(0), /* ReplicaId .. IsolationLevel */
        I32(0), I32(-1),                        /* SessionId, SessionEpoch */
        I32(0),                                 /* Topics: 0 */
        I32(1),                                 /* ForgottenTopicsData: 1 */
        I16(1), 'b',                            /* Topic */
        I32(0x40000000),                        /* Partitions: huge */
        I32(1), I16(0),
    };
    /* v13 topic whose compact Partitions count is 2^31-2. */
    static const uint8_t parts_v13[] = {
        I32(-1), I32(0), I32(0), I32(0), I8(0), /* ReplicaId .. IsolationLevel */
        I32(0), I32(-1),                        /* SessionId, SessionEpoch */
        UV(2),                                  /* Topics: 1 */
        FOO_ID,                                 /* TopicId */
        0xff, 0xff, 0xff, 0xff, 0x07,           /* Partitions: huge uvarint */
        NOTAGS, UV(1), UV(1), NOTAGS,
    };
    /* clang-format on */
    kc_rd rd;
    kc_arena a;
    kc_fetch_req r;
    kc_arena_init(&a);
    kc_rd_init(&rd, topics_v11, sizeof(topics_v11));
    ck_assert_int_eq(kc_fetch_req_decode(&rd, 11, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    kc_rd_init(&rd, forgotten_v11, sizeof(forgotten_v11));
    ck_assert_int_eq(kc_fetch_req_decode(&rd, 11, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    kc_rd_init(&rd, parts_v13, sizeof(parts_v13));
    ck_assert_int_eq(kc_fetch_req_decode(&rd, 13, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_uint_lt(a.total, 4096);
    kc_arena_destroy(&a);
}
END_TEST

/* ---- response ---- */

START_TEST(test_fetch_resp_v4)
{
    kc_rd rd;
    kc_arena a;
    kc_fetch_resp r;
    kc_rd_init(&rd, resp_v4, sizeof(resp_v4));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_fetch_resp_decode(&rd, 4, &a, &r), 0);
    ck_assert_int_eq(r.throttle_time_ms, 0);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(r.session_id, 0);
    ck_assert_int_eq(r.nresponses, 1);
    ck_assert(kc_str_eq(r.responses[0].topic, "foo"));
    ck_assert_int_eq(r.responses[0].npartitions, 2);
    const kc_fetch_resp_partition *p = r.responses[0].partitions;
    ck_assert_int_eq(p[0].partition_index, 0);
    ck_assert_int_eq(p[0].error_code, 0);
    ck_assert_int_eq(p[0].high_watermark, 6);
    ck_assert_int_eq(p[0].last_stable_offset, 6);
    ck_assert_int_eq(p[0].log_start_offset, -1); /* v5+: default */
    ck_assert_int_eq(p[0].naborted_transactions, 1);
    ck_assert_int_eq(p[0].aborted_transactions[0].producer_id, 1000);
    ck_assert_int_eq(p[0].aborted_transactions[0].first_offset, 3);
    ck_assert_int_eq(p[0].preferred_read_replica, -1); /* v11+: default */
    ck_assert_int_eq(p[0].records.len, BATCH_LEN);
    ck_assert_ptr_eq(p[0].records.p, resp_v4 + RESP_V4_BATCH_OFF);
    kc_rd brd;
    size_t tail = 99;
    ck_assert_int_eq(kc_record_batches_validate(&p[0].records, 0, &brd, &tail), 1);
    ck_assert_uint_eq(tail, 0);
    ck_assert_int_eq(p[1].error_code, 1);
    ck_assert_int_eq(p[1].naborted_transactions, -1);
    ck_assert_ptr_null(p[1].aborted_transactions);
    ck_assert_int_eq(p[1].records.len, 0);
    expect_encodes_to(&RESP, 4, &r, resp_v4, sizeof(resp_v4));
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_fetch_resp_v12)
{
    kc_rd rd;
    kc_arena a;
    kc_fetch_resp r;
    kc_rd_init(&rd, resp_v12, sizeof(resp_v12));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_fetch_resp_decode(&rd, 12, &a, &r), 0);
    ck_assert_int_eq(r.session_id, 7);
    ck_assert(kc_str_eq(r.responses[0].topic, "foo"));
    const kc_fetch_resp_partition *p = r.responses[0].partitions;
    ck_assert_int_eq(r.responses[0].npartitions, 2);
    ck_assert_int_eq(p[0].log_start_offset, 0);
    ck_assert_int_eq(p[0].naborted_transactions, 0);
    ck_assert_ptr_nonnull(p[0].aborted_transactions);
    ck_assert_int_eq(p[0].preferred_read_replica, -1);
    ck_assert_int_eq(p[0].records.len, BATCH_LEN);
    ck_assert_uint_eq(p[0].tags.count, 0);
    ck_assert_int_eq(p[1].error_code, 6);
    ck_assert_int_eq(p[1].naborted_transactions, -1);
    ck_assert_int_eq(p[1].records.len, -1);
    /* CurrentLeader kept raw: tag 1, size 9, then the struct. */
    ck_assert_uint_eq(p[1].tags.count, 1);
    ck_assert_int_eq(p[1].tags.raw.len, 11);
    ck_assert_int_eq(p[1].tags.raw.p[0], 1);
    ck_assert_int_eq(p[1].tags.raw.p[1], 9);
    expect_encodes_to(&RESP, 12, &r, resp_v12, sizeof(resp_v12));
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_fetch_resp_v13)
{
    kc_rd rd;
    kc_arena a;
    kc_fetch_resp r;
    kc_rd_init(&rd, resp_v13, sizeof(resp_v13));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_fetch_resp_decode(&rd, 13, &a, &r), 0);
    ck_assert_int_eq(r.throttle_time_ms, 5);
    ck_assert_mem_eq(r.responses[0].topic_id.b, foo_id, 16);
    ck_assert_int_eq(r.responses[0].topic.len, 0);
    const kc_fetch_resp_partition *p = r.responses[0].partitions;
    ck_assert_int_eq(p[0].last_stable_offset, 5);
    ck_assert_int_eq(p[0].naborted_transactions, 1);
    ck_assert_int_eq(p[0].aborted_transactions[0].producer_id, 1000);
    ck_assert_int_eq(p[0].preferred_read_replica, 2);
    ck_assert_int_eq(p[0].records.len, BATCH_LEN);
    ck_assert_int_eq(p[1].high_watermark, 9);
    ck_assert_int_eq(p[1].records.len, 0);
    ck_assert_uint_eq(p[1].tags.count, 1);
    ck_assert_int_eq(p[1].tags.raw.p[0], 0); /* DivergingEpoch */
    expect_encodes_to(&RESP, 13, &r, resp_v13, sizeof(resp_v13));
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_fetch_resp_versions)
{
    expect_roundtrip(&RESP, resp_v4, sizeof(resp_v4), 4);
    expect_roundtrip(&RESP, resp_v12, sizeof(resp_v12), 12);
    expect_roundtrip(&RESP, resp_v13, sizeof(resp_v13), 13);
    expect_every_version(&RESP, resp_v4, sizeof(resp_v4), 4);
    expect_every_version(&RESP, resp_v12, sizeof(resp_v12), 12);
    expect_every_version(&RESP, resp_v13, sizeof(resp_v13), 13);
}
END_TEST

START_TEST(test_fetch_resp_truncated)
{
    expect_truncation_fails(&RESP, resp_v4, sizeof(resp_v4), 4);
    expect_truncation_fails(&RESP, resp_v12, sizeof(resp_v12), 12);
    expect_truncation_fails(&RESP, resp_v13, sizeof(resp_v13), 13);
}
END_TEST

START_TEST(test_fetch_resp_huge_counts)
{
    /* clang-format off */
    /* One topic claiming 2^31-1 partitions. */
    static const uint8_t parts_v4[] = {
        I32(0),          /* ThrottleTimeMs */
        I32(1),          /* Responses: 1 */
        I16(1), 't',     /* Topic */
        I32(0x7fffffff), /* Partitions: huge */
        I32(0), I16(0), I64(0), I64(0),
    };
    /* One partition claiming 2^28 aborted transactions. */
    static const uint8_t aborted_v4[] = {
        I32(0),                         /* ThrottleTimeMs */
        I32(1),                         /* Responses: 1 */
        I16(1), 't',                    /* Topic */
        I32(1),                         /* Partitions: 1 */
        I32(0), I16(0), I64(0), I64(0), /* PartitionIndex .. LastStableOffset */
        I32(0x10000000),                /* AbortedTransactions: huge */
        I32(0), I64(0),
    };
    /* The same at v12 with a compact count of 2^31-2. */
    static const uint8_t aborted_v12[] = {
        I32(0), I16(0), I32(0),                 /* ThrottleTimeMs, ErrorCode, SessionId */
        UV(2),                                  /* Responses: 1 */
        UV(2), 't',                             /* Topic */
        UV(2),                                  /* Partitions: 1 */
        I32(0), I16(0), I64(0), I64(0), I64(0), /* PartitionIndex .. LogStartOffset */
        0xff, 0xff, 0xff, 0xff, 0x07,           /* AbortedTransactions: huge uvarint */
        I32(-1), UV(0), NOTAGS, NOTAGS, NOTAGS,
    };
    /* clang-format on */
    kc_rd rd;
    kc_arena a;
    kc_fetch_resp r;
    kc_arena_init(&a);
    kc_rd_init(&rd, parts_v4, sizeof(parts_v4));
    ck_assert_int_eq(kc_fetch_resp_decode(&rd, 4, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    kc_rd_init(&rd, aborted_v4, sizeof(aborted_v4));
    ck_assert_int_eq(kc_fetch_resp_decode(&rd, 4, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    kc_rd_init(&rd, aborted_v12, sizeof(aborted_v12));
    ck_assert_int_eq(kc_fetch_resp_decode(&rd, 12, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_uint_lt(a.total, 4096);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_fetch_resp_records_by_reference)
{
    /* A v4 response in a frame: partition 0 has 1024 bytes of records (added
     * by reference), partition 1 has 100 (copied: below KC_WR_REF_MIN). */
    /* clang-format off */
    static const uint8_t head[] = {
        I32(0),          /* ThrottleTimeMs */
        I32(1),          /* Responses: 1 */
        I16(1), 't',     /* Topic */
        I32(2),          /* Partitions: 2 */
        I32(0),          /* PartitionIndex */
        I16(0),          /* ErrorCode */
        I64(10),         /* HighWatermark */
        I64(10),         /* LastStableOffset */
        I32(-1),         /* AbortedTransactions: null */
        I32(1024),       /* Records: 1024 bytes follow */
    };
    static const uint8_t mid[] = {
        I32(1),          /* PartitionIndex */
        I16(0),          /* ErrorCode */
        I64(10),         /* HighWatermark */
        I64(10),         /* LastStableOffset */
        I32(-1),         /* AbortedTransactions: null */
        I32(100),        /* Records: 100 bytes follow */
    };
    /* clang-format on */
    size_t len = sizeof(head) + 1024 + sizeof(mid) + 100;
    kc_frame *f = kc_frame_new(len);
    ck_assert_ptr_nonnull(f);
    uint8_t *q = f->data;
    memcpy(q, head, sizeof(head));
    q += sizeof(head);
    for (int i = 0; i < 1024; i++)
        *q++ = (uint8_t)i;
    memcpy(q, mid, sizeof(mid));
    q += sizeof(mid);
    memset(q, 0xee, 100);

    kc_rd rd;
    kc_arena a;
    kc_fetch_resp r;
    kc_rd_init(&rd, f->data, f->len);
    kc_arena_init(&a);
    ck_assert_int_eq(kc_fetch_resp_decode(&rd, 4, &a, &r), 0);
    ck_assert_ptr_eq(r.responses[0].partitions[0].records.p, f->data + sizeof(head));

    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, f);
    ck_assert_int_eq(f->refcnt, 1);
    kc_fetch_resp_encode(&w, 4, &r);
    ck_assert_int_eq(w.err, 0);
    /* One reference for the large records field, none for the small one. */
    ck_assert_int_eq(f->refcnt, 2);
    kz_expect_bytes("FetchResponse by reference", evbuffer_pullup(eb, -1), evbuffer_get_length(eb),
                    f->data, f->len);
    evbuffer_free(eb);
    ck_assert_int_eq(f->refcnt, 1);
    kc_arena_destroy(&a);
    kc_frame_release(f);
}
END_TEST

/* KIP-951: a v12+ partition's tags with DivergingEpoch (0), CurrentLeader (1),
 * SnapshotId (2) and an unknown tag 7. */
static const uint8_t ptags_raw[] = {
    UV(0), UV(13), I32(4), I64(500), NOTAGS,   /* DivergingEpoch: Epoch 4, EndOffset 500 */
    UV(1), UV(9), I32(102), I32(17), NOTAGS,   /* CurrentLeader: LeaderId 102, LeaderEpoch 17 */
    UV(2), UV(13), I64(90), I32(3), NOTAGS,    /* SnapshotId: EndOffset 90, Epoch 3 */
    UV(7), UV(2), 0xbe, 0xef,                  /* unknown tag 7 */
};

START_TEST(test_fetch_current_leader_tags)
{
    kc_tags in = {4, {ptags_raw, (int32_t)sizeof(ptags_raw)}};
    kc_fetch_partition_tags pt;
    ck_assert_int_eq(kc_fetch_partition_tags_parse(&in, &pt), 0);
    ck_assert(pt.has_diverging_epoch);
    ck_assert_int_eq(pt.diverging_epoch.len, 13);
    ck_assert(pt.has_current_leader);
    ck_assert_int_eq(pt.leader_id, 102);
    ck_assert_int_eq(pt.leader_epoch, 17);
    ck_assert(pt.has_snapshot_id);
    ck_assert_int_eq(pt.snapshot_id.len, 13);

    /* Rebuilt with the leader replaced: tags 0-2 in order, 7 dropped. */
    kc_arena a;
    kc_arena_init(&a);
    pt.leader_id = 5;
    kc_tags out;
    ck_assert_int_eq(kc_fetch_partition_tags_build(&a, &pt, &out), 0);
    static const uint8_t want[] = {
        UV(0), UV(13), I32(4), I64(500), NOTAGS,
        UV(1), UV(9), I32(5), I32(17), NOTAGS,
        UV(2), UV(13), I64(90), I32(3), NOTAGS,
    };
    ck_assert_uint_eq(out.count, 3);
    kz_expect_bytes("partition tags", out.raw.p, (size_t)out.raw.len, want, sizeof(want));

    /* Only CurrentLeader present. */
    kc_fetch_partition_tags only = {0};
    only.has_current_leader = 1;
    only.leader_id = -1;
    only.leader_epoch = 2;
    ck_assert_int_eq(kc_fetch_partition_tags_build(&a, &only, &out), 0);
    static const uint8_t want_only[] = {UV(1), UV(9), I32(-1), I32(2), NOTAGS};
    ck_assert_uint_eq(out.count, 1);
    kz_expect_bytes("CurrentLeader only", out.raw.p, (size_t)out.raw.len, want_only, sizeof(want_only));

    /* No known tag: an empty section. */
    kc_fetch_partition_tags none;
    kc_tags unknown_only = {1, {ptags_raw + sizeof(ptags_raw) - 4, 4}};
    ck_assert_int_eq(kc_fetch_partition_tags_parse(&unknown_only, &none), 0);
    ck_assert(!none.has_current_leader && !none.has_diverging_epoch && !none.has_snapshot_id);
    ck_assert_int_eq(kc_fetch_partition_tags_build(&a, &none, &out), 0);
    ck_assert_uint_eq(out.count, 0);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_fetch_current_leader_tags_bad)
{
    kc_fetch_partition_tags pt;
    /* CurrentLeader of 4 bytes: too short for LeaderId + LeaderEpoch. */
    static const uint8_t short_leader[] = {UV(1), UV(4), I32(1)};
    kc_tags t1 = {1, {short_leader, (int32_t)sizeof(short_leader)}};
    ck_assert_int_eq(kc_fetch_partition_tags_parse(&t1, &pt), -1);
    /* A tag claiming more bytes than the section holds. */
    static const uint8_t overlong[] = {UV(2), UV(100), 0x00};
    kc_tags t2 = {1, {overlong, (int32_t)sizeof(overlong)}};
    ck_assert_int_eq(kc_fetch_partition_tags_parse(&t2, &pt), -1);
    /* A count larger than the tags present. */
    static const uint8_t one[] = {UV(0), UV(1), 0x00};
    kc_tags t3 = {2, {one, (int32_t)sizeof(one)}};
    ck_assert_int_eq(kc_fetch_partition_tags_parse(&t3, &pt), -1);
}
END_TEST

Suite *kc_fetch_suite(void)
{
    Suite *s = suite_create("kc_fetch");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_fetch_req_v11);
    tcase_add_test(tc, test_fetch_req_v12);
    tcase_add_test(tc, test_fetch_req_v13);
    tcase_add_test(tc, test_fetch_req_v4_defaults);
    tcase_add_test(tc, test_fetch_req_versions);
    tcase_add_test(tc, test_fetch_req_truncated);
    tcase_add_test(tc, test_fetch_req_huge_counts);
    tcase_add_test(tc, test_fetch_resp_v4);
    tcase_add_test(tc, test_fetch_resp_v12);
    tcase_add_test(tc, test_fetch_resp_v13);
    tcase_add_test(tc, test_fetch_resp_versions);
    tcase_add_test(tc, test_fetch_resp_truncated);
    tcase_add_test(tc, test_fetch_resp_huge_counts);
    tcase_add_test(tc, test_fetch_resp_records_by_reference);
    tcase_add_test(tc, test_fetch_current_leader_tags);
    tcase_add_test(tc, test_fetch_current_leader_tags_bad);
    suite_add_tcase(s, tc);
    return s;
}
