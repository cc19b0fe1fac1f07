/* Produce golden bytes (ProduceRequest.json / ProduceResponse.json, v3-v9). */
#include "config.h"

#include "codec/kc_crc32c.h"
#include "codec/kc_msg.h"
#include "codec/kc_proto.h"
#include "tests/unit/kz_test.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
/*
 * A real record batch (DefaultRecordBatch.java layout) as a non-idempotent
 * producer sends it: one record, key null, value "hi". The CRC32C covers
 * Attributes..end; test_produce_batch_crc recomputes it.
 */
#define BATCH_LEN 70
#define BATCH_CRC 0xbbcc4115u
#define BATCH \
    I64(0),              /* BaseOffset: assigned by the broker */ \
    I32(58),             /* Length: bytes after this field */ \
    I32(-1),             /* PartitionLeaderEpoch: set by the broker */ \
    I8(2),               /* Magic */ \
    I32(BATCH_CRC),      /* CRC */ \
    I16(0),              /* Attributes: no compression, CreateTime */ \
    I32(0),              /* LastOffsetDelta */ \
    I64(1700000000000),  /* BaseTimestamp */ \
    I64(1700000000000),  /* MaxTimestamp */ \
    I64(-1),             /* ProducerId: not idempotent */ \
    I16(-1),             /* ProducerEpoch */ \
    I32(-1),             /* BaseSequence */ \
    I32(1),              /* RecordsCount */ \
    0x10,                /* Record Length 8 (zig-zag varint) */ \
    0x00,                /* Record Attributes */ \
    0x00,                /* TimestampDelta 0 */ \
    0x00,                /* OffsetDelta 0 */ \
    0x01,                /* KeyLength -1: null key */ \
    0x04, 'h', 'i',      /* ValueLength 2, Value "hi" */ \
    0x00                 /* Headers: 0 */

/* v3 request: not transactional, acks=all, one topic "foo", partition 0 with the batch. */
static const uint8_t req_v3[] = {
    I16(-1),               /* TransactionalId: null */
    I16(-1),               /* Acks: -1 (full ISR) */
    I32(30000),            /* TimeoutMs */
    I32(1),                /* TopicData: 1 topic */
    I16(3), 'f', 'o', 'o', /* Name */
    I32(1),                /* PartitionData: 1 partition */
    I32(0),                /* Index */
    I32(BATCH_LEN), BATCH, /* Records */
};
#define REQ_V3_BATCH_OFF 29

/* v9 request: transactional id "tx", partition 2 with the batch, partition 3
 * with null records, and an unknown top-level tag that must pass through. */
static const uint8_t req_v9[] = {
    UV(3), 't', 'x',                 /* TransactionalId "tx" (compact) */
    I16(1),                          /* Acks: leader only */
    I32(1000),                       /* TimeoutMs */
    UV(2),                           /* TopicData: 1 topic */
    UV(4), 'f', 'o', 'o',            /* Name */
    UV(3),                           /* PartitionData: 2 partitions */
    I32(2),                          /* Index */
    UV(BATCH_LEN + 1), BATCH,        /* Records (compact nullable) */
    NOTAGS,                          /* partition tags */
    I32(3),                          /* Index */
    UV(0),                           /* Records: null */
    NOTAGS,                          /* partition tags */
    NOTAGS,                          /* topic tags */
    UV(1), UV(7), UV(2), 0xab, 0xcd, /* tags: 1 unknown (tag 7, 2 bytes) */
};
#define REQ_V9_BATCH_OFF 20

/* v7 response: partition 0 appended at 42, partition 1 rejected (INVALID_RECORD). */
static const uint8_t resp_v7[] = {
    I32(1),                /* Responses: 1 topic */
    I16(3), 'f', 'o', 'o', /* Name */
    I32(2),                /* PartitionResponses: 2 */
    I32(0),                /* Index */
    I16(0),                /* ErrorCode */
    I64(42),               /* BaseOffset */
    I64(-1),               /* LogAppendTimeMs: CreateTime topic */
    I64(0),                /* LogStartOffset */
    I32(1),                /* Index */
    I16(87),               /* ErrorCode: INVALID_RECORD */
    I64(-1),               /* BaseOffset */
    I64(-1),               /* LogAppendTimeMs */
    I64(-1),               /* LogStartOffset */
    I32(0),                /* ThrottleTimeMs */
};

/* v9 response: the same plus the v8 RecordErrors and ErrorMessage. */
static const uint8_t resp_v9[] = {
    UV(2),                     /* Responses: 1 topic */
    UV(4), 'f', 'o', 'o',      /* Name */
    UV(3),                     /* PartitionResponses: 2 */
    I32(0),                    /* Index */
    I16(0),                    /* ErrorCode */
    I64(42),                   /* BaseOffset */
    I64(-1),                   /* LogAppendTimeMs */
    I64(0),                    /* LogStartOffset */
    UV(1),                     /* RecordErrors: empty */
    UV(0),                     /* ErrorMessage: null */
    NOTAGS,                    /* partition tags */
    I32(1),                    /* Index */
    I16(87),                   /* ErrorCode: INVALID_RECORD */
    I64(-1),                   /* BaseOffset */
    I64(-1),                   /* LogAppendTimeMs */
    I64(-1),                   /* LogStartOffset */
    UV(2),                     /* RecordErrors: 1 */
    I32(0),                    /* BatchIndex */
    UV(4), 'b', 'a', 'd',      /* BatchIndexErrorMessage "bad" */
    NOTAGS,                    /* record error tags */
    UV(5), 'o', 'o', 'p', 's', /* ErrorMessage "oops" */
    NOTAGS,                    /* partition tags */
    NOTAGS,                    /* topic tags */
    I32(0),                    /* ThrottleTimeMs */
    NOTAGS,                    /* response tags */
};
/* clang-format on */

/* ---- helpers: one set for both directions, through small adapters ---- */

typedef struct codec {
    const char *name;
    int (*dec)(kc_rd *, int16_t, kc_arena *, void *);
    void (*enc)(kc_wr *, int16_t, const void *);
} codec;

static int req_dec(kc_rd *rd, int16_t v, kc_arena *a, void *m)
{
    return kc_produce_req_decode(rd, v, a, m);
}
static void req_enc(kc_wr *w, int16_t v, const void *m)
{
    kc_produce_req_encode(w, v, m);
}
static int resp_dec(kc_rd *rd, int16_t v, kc_arena *a, void *m)
{
    return kc_produce_resp_decode(rd, v, a, m);
}
static void resp_enc(kc_wr *w, int16_t v, const void *m)
{
    kc_produce_resp_encode(w, v, m);
}

static const codec REQ = {"ProduceRequest", req_dec, req_enc};
static const codec RESP = {"ProduceResponse", resp_dec, resp_enc};

/* Big enough for either message struct. */
typedef union any_msg {
    kc_produce_req req;
    kc_produce_resp resp;
} any_msg;

/* Encode m at version into a fresh buffer; caller frees. */
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

/* Decode the golden, re-encode it to the same bytes. */
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

/* Every cut of the golden short of its end fails, without reading past it. */
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

/*
 * The proxy translates versions: a message decoded at one version must encode
 * at every other version of the range, and that encoding must decode again
 * and re-encode to itself.
 */
static void expect_every_version(const codec *c, const uint8_t *golden, size_t len, int16_t version)
{
    const kc_api_info *ai = kc_api_lookup(KC_API_PRODUCE);
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

START_TEST(test_produce_batch_crc)
{
    /* The golden batch is a real one: its CRC is the CRC32C of its bytes. */
    const uint8_t *batch = req_v3 + REQ_V3_BATCH_OFF;
    ck_assert_uint_eq(kc_crc32c(0, batch + 21, BATCH_LEN - 21), BATCH_CRC);
    kc_rd rd;
    kc_record_batch b;
    kc_rd_init(&rd, batch, BATCH_LEN);
    ck_assert_int_eq(kc_record_batch_decode(&rd, &b), 0);
    ck_assert_int_eq(b.record_count, 1);
    ck_assert_int_eq(b.base_timestamp, 1700000000000LL);
    ck_assert_int_eq(b.producer_id, -1);
}
END_TEST

START_TEST(test_produce_req_v3)
{
    kc_rd rd;
    kc_arena a;
    kc_produce_req r;
    kc_rd_init(&rd, req_v3, sizeof(req_v3));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_produce_req_decode(&rd, 3, &a, &r), 0);
    ck_assert_int_eq(r.transactional_id.len, -1);
    ck_assert_int_eq(r.acks, -1);
    ck_assert_int_eq(r.timeout_ms, 30000);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    ck_assert_int_eq(r.topics[0].npartitions, 1);
    const kc_produce_req_partition *p = &r.topics[0].partitions[0];
    ck_assert_int_eq(p->index, 0);
    ck_assert_int_eq(p->records.len, BATCH_LEN);
    /* Records point into the frame: never copied. */
    ck_assert_ptr_eq(p->records.p, req_v3 + REQ_V3_BATCH_OFF);
    kc_rd brd;
    size_t tail = 99;
    ck_assert_int_eq(kc_record_batches_validate(&p->records, 0, &brd, &tail), 1);
    ck_assert_uint_eq(tail, 0);
    expect_encodes_to(&REQ, 3, &r, req_v3, sizeof(req_v3));
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_produce_req_v9)
{
    kc_rd rd;
    kc_arena a;
    kc_produce_req r;
    kc_rd_init(&rd, req_v9, sizeof(req_v9));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_produce_req_decode(&rd, 9, &a, &r), 0);
    ck_assert(kc_str_eq(r.transactional_id, "tx"));
    ck_assert_int_eq(r.acks, 1);
    ck_assert_int_eq(r.timeout_ms, 1000);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    ck_assert_int_eq(r.topics[0].npartitions, 2);
    ck_assert_int_eq(r.topics[0].partitions[0].index, 2);
    ck_assert_int_eq(r.topics[0].partitions[0].records.len, BATCH_LEN);
    ck_assert_ptr_eq(r.topics[0].partitions[0].records.p, req_v9 + REQ_V9_BATCH_OFF);
    ck_assert_int_eq(r.topics[0].partitions[1].index, 3);
    ck_assert_int_eq(r.topics[0].partitions[1].records.len, -1);
    ck_assert_uint_eq(r.tags.count, 1);
    ck_assert_int_eq(r.tags.raw.len, 4);
    expect_encodes_to(&REQ, 9, &r, req_v9, sizeof(req_v9));
    kc_arena_destroy(&a);
}
END_TEST

/* Re-encoding a flexible (v9) request for a broker at v8: a transactional id
 * over 32767 bytes fits v9's compact string but not v8's int16 length, so
 * the v8 encoding must fail (the writer's sticky error) instead of wrapping. */
START_TEST(test_produce_req_long_string_downgrade)
{
    enum { N = 40000 };
    char *txn = malloc(N);
    ck_assert_ptr_nonnull(txn);
    memset(txn, 't', N);
    kc_produce_req_partition part = {.index = 0, .records = {NULL, -1}};
    kc_produce_req_topic topic = {.name = kc_str_c("foo"), .npartitions = 1, .partitions = &part};
    kc_produce_req r = {.transactional_id = {txn, N}, .acks = -1, .timeout_ms = 1000, .ntopics = 1,
                        .topics = &topic};
    for (int16_t v = 3; v <= 8; v++) {
        struct evbuffer *eb = evbuffer_new();
        kc_wr w;
        kc_wr_init(&w, eb, NULL);
        kc_produce_req_encode(&w, v, &r);
        ck_assert_msg(w.err && kc_wr_unencodable(&w), "v%d encoded a %d-byte string", v, N);
        evbuffer_free(eb);
    }
    struct evbuffer *eb = encode(&REQ, 9, &r);
    kc_rd rd;
    kc_arena a;
    kc_produce_req back;
    kc_arena_init(&a);
    kc_rd_init(&rd, evbuffer_pullup(eb, -1), evbuffer_get_length(eb));
    ck_assert_int_eq(kc_produce_req_decode(&rd, 9, &a, &back), 0);
    ck_assert_int_eq(back.transactional_id.len, N);
    ck_assert_int_eq(memcmp(back.transactional_id.p, txn, N), 0);
    ck_assert(kc_str_eq(back.topics[0].name, "foo"));
    kc_arena_destroy(&a);
    evbuffer_free(eb);
    free(txn);
}
END_TEST

START_TEST(test_produce_req_versions)
{
    expect_roundtrip(&REQ, req_v3, sizeof(req_v3), 3);
    expect_roundtrip(&REQ, req_v9, sizeof(req_v9), 9);
    expect_every_version(&REQ, req_v3, sizeof(req_v3), 3);
    expect_every_version(&REQ, req_v9, sizeof(req_v9), 9);
}
END_TEST

START_TEST(test_produce_req_truncated)
{
    expect_truncation_fails(&REQ, req_v3, sizeof(req_v3), 3);
    expect_truncation_fails(&REQ, req_v9, sizeof(req_v9), 9);
}
END_TEST

START_TEST(test_produce_req_huge_counts)
{
    /* clang-format off */
    /* TopicData claiming 2^31-1 topics in 4 bytes. */
    static const uint8_t topics_v3[] = {
        I16(-1), I16(1), I32(1000), /* TransactionalId, Acks, TimeoutMs */
        I32(0x7fffffff),            /* TopicData: huge */
        I32(0),
    };
    /* Topic "a" claiming 2^28 partitions in 8 bytes. */
    static const uint8_t parts_v3[] = {
        I16(-1), I16(1), I32(1000), /* TransactionalId, Acks, TimeoutMs */
        I32(1),                     /* TopicData: 1 */
        I16(1), 'a',                /* Name */
        I32(0x10000000),            /* PartitionData: huge */
        I32(0), I32(0),
    };
    /* Compact TopicData count 2^31-2 as a 5-byte uvarint. */
    static const uint8_t topics_v9[] = {
        UV(0), I16(1), I32(1000),     /* TransactionalId, Acks, TimeoutMs */
        0xff, 0xff, 0xff, 0xff, 0x07, /* TopicData: huge */
        UV(0), UV(0), NOTAGS,
    };
    /* clang-format on */
    kc_rd rd;
    kc_arena a;
    kc_produce_req r;
    kc_arena_init(&a);
    kc_rd_init(&rd, topics_v3, sizeof(topics_v3));
    ck_assert_int_eq(kc_produce_req_decode(&rd, 3, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    kc_rd_init(&rd, parts_v3, sizeof(parts_v3));
    ck_assert_int_eq(kc_produce_req_decode(&rd, 3, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    kc_rd_init(&rd, topics_v9, sizeof(topics_v9));
    ck_assert_int_eq(kc_produce_req_decode(&rd, 9, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    /* Nothing was allocated for the claimed counts. */
    ck_assert_uint_lt(a.total, 4096);
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_produce_req_garbage)
{
    uint8_t buf[sizeof(req_v9) + 1];
    memcpy(buf, req_v9, sizeof(req_v9));
    buf[sizeof(req_v9)] = 0;
    kc_rd rd;
    kc_arena a;
    kc_produce_req r;
    kc_arena_init(&a);
    kc_rd_init(&rd, buf, sizeof(buf));
    ck_assert_int_eq(kc_produce_req_decode(&rd, 9, &a, &r), -1);
    ck_assert_str_eq(rd.err, "garbage after message");
    /* A null topic name is not allowed. */
    static const uint8_t null_name[] = {I16(-1), I16(1), I32(1000), I32(1), I16(-1), I32(0)};
    kc_rd_init(&rd, null_name, sizeof(null_name));
    ck_assert_int_eq(kc_produce_req_decode(&rd, 3, &a, &r), -1);
    kc_arena_destroy(&a);
}
END_TEST

/* ---- response ---- */

START_TEST(test_produce_resp_v7)
{
    kc_rd rd;
    kc_arena a;
    kc_produce_resp r;
    kc_rd_init(&rd, resp_v7, sizeof(resp_v7));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_produce_resp_decode(&rd, 7, &a, &r), 0);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    ck_assert_int_eq(r.topics[0].npartitions, 2);
    const kc_produce_resp_partition *p = r.topics[0].partitions;
    ck_assert_int_eq(p[0].index, 0);
    ck_assert_int_eq(p[0].error_code, 0);
    ck_assert_int_eq(p[0].base_offset, 42);
    ck_assert_int_eq(p[0].log_append_time_ms, -1);
    ck_assert_int_eq(p[0].log_start_offset, 0);
    ck_assert_int_eq(p[0].nrecord_errors, 0);
    ck_assert_int_eq(p[0].error_message.len, -1); /* v8+ field: default null */
    ck_assert_int_eq(p[1].index, 1);
    ck_assert_int_eq(p[1].error_code, 87);
    ck_assert_int_eq(p[1].base_offset, -1);
    ck_assert_int_eq(p[1].log_start_offset, -1);
    ck_assert_int_eq(r.throttle_time_ms, 0);
    expect_encodes_to(&RESP, 7, &r, resp_v7, sizeof(resp_v7));
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_produce_resp_v9)
{
    kc_rd rd;
    kc_arena a;
    kc_produce_resp r;
    kc_rd_init(&rd, resp_v9, sizeof(resp_v9));
    kc_arena_init(&a);
    ck_assert_int_eq(kc_produce_resp_decode(&rd, 9, &a, &r), 0);
    ck_assert_int_eq(r.ntopics, 1);
    ck_assert(kc_str_eq(r.topics[0].name, "foo"));
    const kc_produce_resp_partition *p = r.topics[0].partitions;
    ck_assert_int_eq(r.topics[0].npartitions, 2);
    ck_assert_int_eq(p[0].base_offset, 42);
    ck_assert_int_eq(p[0].nrecord_errors, 0);
    ck_assert_int_eq(p[0].error_message.len, -1);
    ck_assert_int_eq(p[1].error_code, 87);
    ck_assert_int_eq(p[1].nrecord_errors, 1);
    ck_assert_int_eq(p[1].record_errors[0].batch_index, 0);
    ck_assert(kc_str_eq(p[1].record_errors[0].batch_index_error_message, "bad"));
    ck_assert(kc_str_eq(p[1].error_message, "oops"));
    ck_assert_int_eq(r.throttle_time_ms, 0);
    expect_encodes_to(&RESP, 9, &r, resp_v9, sizeof(resp_v9));
    /* Down to v7 the v8 fields drop and the result is the v7 golden. */
    expect_encodes_to(&RESP, 7, &r, resp_v7, sizeof(resp_v7));
    kc_arena_destroy(&a);
}
END_TEST

START_TEST(test_produce_resp_versions)
{
    expect_roundtrip(&RESP, resp_v7, sizeof(resp_v7), 7);
    expect_roundtrip(&RESP, resp_v9, sizeof(resp_v9), 9);
    expect_every_version(&RESP, resp_v7, sizeof(resp_v7), 7);
    expect_every_version(&RESP, resp_v9, sizeof(resp_v9), 9);
}
END_TEST

START_TEST(test_produce_resp_truncated)
{
    expect_truncation_fails(&RESP, resp_v7, sizeof(resp_v7), 7);
    expect_truncation_fails(&RESP, resp_v9, sizeof(resp_v9), 9);
}
END_TEST

START_TEST(test_produce_resp_huge_counts)
{
    /* clang-format off */
    /* One topic claiming 2^31-1 partitions. */
    static const uint8_t parts_v7[] = {
        I32(1),          /* Responses: 1 */
        I16(1), 'a',     /* Name */
        I32(0x7fffffff), /* PartitionResponses: huge */
        I64(0), I64(0),
    };
    /* One v8 partition claiming 2^29 record errors. */
    static const uint8_t errs_v8[] = {
        I32(1),                             /* Responses: 1 */
        I16(1), 'a',                        /* Name */
        I32(1),                             /* PartitionResponses: 1 */
        I32(0), I16(0), I64(0),             /* Index, ErrorCode, BaseOffset */
        I64(-1), I64(-1),                   /* LogAppendTimeMs, LogStartOffset */
        I32(0x20000000),                    /* RecordErrors: huge */
        I16(-1), I32(0),
    };
    /* clang-format on */
    kc_rd rd;
    kc_arena a;
    kc_produce_resp r;
    kc_arena_init(&a);
    kc_rd_init(&rd, parts_v7, sizeof(parts_v7));
    ck_assert_int_eq(kc_produce_resp_decode(&rd, 7, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    kc_rd_init(&rd, errs_v8, sizeof(errs_v8));
    ck_assert_int_eq(kc_produce_resp_decode(&rd, 8, &a, &r), -1);
    ck_assert_str_eq(rd.err, "array count exceeds frame");
    ck_assert_uint_lt(a.total, 4096);
    kc_arena_destroy(&a);
}
END_TEST

Suite *kc_produce_suite(void)
{
    Suite *s = suite_create("kc_produce");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, test_produce_batch_crc);
    tcase_add_test(tc, test_produce_req_v3);
    tcase_add_test(tc, test_produce_req_v9);
    tcase_add_test(tc, test_produce_req_versions);
    tcase_add_test(tc, test_produce_req_long_string_downgrade);
    tcase_add_test(tc, test_produce_req_truncated);
    tcase_add_test(tc, test_produce_req_huge_counts);
    tcase_add_test(tc, test_produce_req_garbage);
    tcase_add_test(tc, test_produce_resp_v7);
    tcase_add_test(tc, test_produce_resp_v9);
    tcase_add_test(tc, test_produce_resp_versions);
    tcase_add_test(tc, test_produce_resp_truncated);
    tcase_add_test(tc, test_produce_resp_huge_counts);
    suite_add_tcase(s, tc);
    return s;
}
