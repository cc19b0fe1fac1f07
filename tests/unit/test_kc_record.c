/* Record batch v2 header parsing (DefaultRecordBatch.java). */
#include "config.h"

#include "codec/kc_crc32c.h"
#include "codec/kc_msg.h"
#include "tests/unit/kz_test.h"

#include <stdlib.h>
#include <string.h>

/* clang-format off */
/* A transactional batch of one record, CRC left 0: make_batch fills it in. */
static const uint8_t batch_tmpl[] = {
    I64(1000),          /* BaseOffset */
    I32(58),            /* Length: bytes after this field */
    I32(7),             /* PartitionLeaderEpoch */
    I8(2),              /* Magic */
    I32(0),             /* CRC: computed by make_batch */
    I16(0x0010),        /* Attributes: transactional, no compression, CreateTime */
    I32(0),             /* LastOffsetDelta */
    I64(1700000000000), /* BaseTimestamp */
    I64(1700000000123), /* MaxTimestamp */
    I64(4242),          /* ProducerId */
    I16(3),             /* ProducerEpoch */
    I32(17),            /* BaseSequence */
    I32(1),             /* RecordsCount */
    0x10,               /* Record Length 8 (zig-zag varint) */
    0x00,               /* Record Attributes */
    0x00,               /* TimestampDelta 0 */
    0x00,               /* OffsetDelta 0 */
    0x01,               /* KeyLength -1: null key */
    0x04, 'h', 'i',     /* ValueLength 2, Value "hi" */
    0x00,               /* Headers: 0 */
};
/* clang-format on */

#define BLEN ((int)sizeof(batch_tmpl))
#define CRC_OFF 17
#define ATTR_OFF 21
#define MAGIC_OFF 16
#define LEN_OFF 8

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Copy the template to out with base_offset set and a correct CRC32C. */
static void make_batch(uint8_t *out, int64_t base_offset)
{
    memcpy(out, batch_tmpl, sizeof(batch_tmpl));
    put32(out, (uint32_t)((uint64_t)base_offset >> 32));
    put32(out + 4, (uint32_t)base_offset);
    put32(out + CRC_OFF, kc_crc32c(0, out + ATTR_OFF, sizeof(batch_tmpl) - ATTR_OFF));
}

/* Run validate over an exact-size heap copy, so ASan sees any overread. */
static int validate(const uint8_t *p, size_t len, int allow_partial, kc_rd *rd, size_t *tail)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    kc_bytes b = {copy, (int32_t)len};
    int n = kc_record_batches_validate(&b, allow_partial, rd, tail);
    free(copy);
    return n;
}

START_TEST(test_record_batch_valid)
{
    uint8_t b[BLEN];
    make_batch(b, 1000);
    kc_rd rd;
    kc_record_batch rb;
    kc_rd_init(&rd, b, sizeof(b));
    ck_assert_int_eq(kc_record_batch_decode(&rd, &rb), 0);
    ck_assert_int_eq(rb.base_offset, 1000);
    ck_assert_int_eq(rb.batch_length, 58);
    ck_assert_int_eq(rb.partition_leader_epoch, 7);
    ck_assert_int_eq(rb.magic, 2);
    ck_assert_uint_eq(rb.crc, kc_crc32c(0, b + ATTR_OFF, sizeof(b) - ATTR_OFF));
    ck_assert_int_eq(rb.attributes, 0x10);
    ck_assert_int_eq(rb.last_offset_delta, 0);
    ck_assert_int_eq(rb.base_timestamp, 1700000000000LL);
    ck_assert_int_eq(rb.max_timestamp, 1700000000123LL);
    ck_assert_int_eq(rb.producer_id, 4242);
    ck_assert_int_eq(rb.producer_epoch, 3);
    ck_assert_int_eq(rb.base_sequence, 17);
    ck_assert_int_eq(rb.record_count, 1);
    /* Records: the bytes after the header, pointing into the input. */
    ck_assert_ptr_eq(rb.records.p, b + KC_RECORD_BATCH_HEADER_SIZE);
    ck_assert_int_eq(rb.records.len, BLEN - KC_RECORD_BATCH_HEADER_SIZE);
    ck_assert_uint_eq(rd.off, sizeof(b));

    size_t tail = 99;
    ck_assert_int_eq(validate(b, sizeof(b), 0, &rd, &tail), 1);
    ck_assert_uint_eq(tail, 0);
}
END_TEST

START_TEST(test_record_batch_crc_every_byte)
{
    /* The CRC covers everything after itself: flip each byte in turn. */
    for (int i = ATTR_OFF; i < BLEN; i++) {
        uint8_t b[BLEN];
        make_batch(b, 0);
        b[i] ^= 0x01;
        kc_rd rd;
        kc_record_batch rb;
        kc_rd_init(&rd, b, sizeof(b));
        ck_assert_msg(kc_record_batch_decode(&rd, &rb) == -1, "flip at %d accepted", i);
        ck_assert_str_eq(rd.err, "record batch CRC mismatch");
        ck_assert_uint_eq(rd.err_off, 0);
        ck_assert_int_eq(validate(b, sizeof(b), 1, &rd, NULL), -1);
        ck_assert_str_eq(rd.err, "record batch CRC mismatch");
    }
    /* And a wrong CRC field itself. */
    uint8_t b[BLEN];
    make_batch(b, 0);
    b[CRC_OFF + 3] ^= 0x80;
    kc_rd rd;
    ck_assert_int_eq(validate(b, sizeof(b), 0, &rd, NULL), -1);
    ck_assert_str_eq(rd.err, "record batch CRC mismatch");
}
END_TEST

START_TEST(test_record_batch_outside_crc)
{
    /* BaseOffset and PartitionLeaderEpoch are rewritten by brokers, so the
     * CRC leaves them out: changing them keeps the batch valid. */
    uint8_t b[BLEN];
    make_batch(b, 5);
    put32(b + 12, 99);
    kc_rd rd;
    kc_record_batch rb;
    kc_rd_init(&rd, b, sizeof(b));
    ck_assert_int_eq(kc_record_batch_decode(&rd, &rb), 0);
    ck_assert_int_eq(rb.base_offset, 5);
    ck_assert_int_eq(rb.partition_leader_epoch, 99);
}
END_TEST

START_TEST(test_record_batch_bad_magic)
{
    for (int magic = 0; magic < 256; magic++) {
        if (magic == 2)
            continue;
        uint8_t b[BLEN];
        make_batch(b, 0);
        b[MAGIC_OFF] = (uint8_t)magic;
        kc_rd rd;
        kc_record_batch rb;
        kc_rd_init(&rd, b, sizeof(b));
        ck_assert_int_eq(kc_record_batch_decode(&rd, &rb), -1);
        ck_assert_str_eq(rd.err, "record batch magic is not 2");
        /* Even as a partial tail, a wrong magic is corruption. */
        ck_assert_int_eq(validate(b, 20, 1, &rd, NULL), -1);
        ck_assert_str_eq(rd.err, "record batch magic is not 2");
    }
}
END_TEST

START_TEST(test_record_batch_truncated)
{
    uint8_t b[BLEN];
    make_batch(b, 0);
    for (size_t cut = 1; cut < sizeof(b); cut++) {
        uint8_t *copy = malloc(cut);
        memcpy(copy, b, cut);
        kc_rd rd;
        kc_record_batch rb;
        kc_rd_init(&rd, copy, cut);
        ck_assert_msg(kc_record_batch_decode(&rd, &rb) == -1, "cut at %zu decoded", cut);
        free(copy);
        size_t tail = 0;
        ck_assert_msg(validate(b, cut, 0, &rd, &tail) == -1, "cut at %zu validated", cut);
        ck_assert_uint_eq(rd.err_off, 0);
        /* Allowed as a partial tail: no batch, cut bytes left over. */
        ck_assert_int_eq(validate(b, cut, 1, &rd, &tail), 0);
        ck_assert_ptr_null(rd.err);
        ck_assert_uint_eq(tail, cut);
    }
}
END_TEST

START_TEST(test_record_batch_length_bounds)
{
    uint8_t b[BLEN];
    kc_rd rd;
    kc_record_batch rb;
    static const int32_t bad[] = {INT32_MIN, -1, 0, 48};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        make_batch(b, 0);
        put32(b + LEN_OFF, (uint32_t)bad[i]);
        kc_rd_init(&rd, b, sizeof(b));
        ck_assert_int_eq(kc_record_batch_decode(&rd, &rb), -1);
        ck_assert_str_eq(rd.err, "record batch length too small");
        /* Too small is corruption, never a cut. */
        ck_assert_int_eq(validate(b, sizeof(b), 1, &rd, NULL), -1);
        ck_assert_str_eq(rd.err, "record batch length too small");
    }
    /* Longer than the bytes left: one past, and the largest int32. */
    static const int32_t over[] = {59, 0x7fffffff};
    for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
        make_batch(b, 0);
        put32(b + LEN_OFF, (uint32_t)over[i]);
        kc_rd_init(&rd, b, sizeof(b));
        ck_assert_int_eq(kc_record_batch_decode(&rd, &rb), -1);
        ck_assert_str_eq(rd.err, "record batch length exceeds records");
        ck_assert_int_eq(validate(b, sizeof(b), 0, &rd, NULL), -1);
        ck_assert_str_eq(rd.err, "record batch length exceeds records");
    }
    /* A shorter length moves the CRC coverage: the CRC no longer matches. */
    make_batch(b, 0);
    put32(b + LEN_OFF, 57);
    kc_rd_init(&rd, b, sizeof(b));
    ck_assert_int_eq(kc_record_batch_decode(&rd, &rb), -1);
    ck_assert_str_eq(rd.err, "record batch CRC mismatch");
}
END_TEST

START_TEST(test_record_batch_back_to_back)
{
    uint8_t b[2 * BLEN];
    make_batch(b, 0);
    make_batch(b + BLEN, 1);
    kc_rd rd;
    kc_record_batch rb;
    kc_rd_init(&rd, b, sizeof(b));
    ck_assert_int_eq(kc_record_batch_decode(&rd, &rb), 0);
    ck_assert_int_eq(rb.base_offset, 0);
    ck_assert_int_eq(rd.off, BLEN);
    ck_assert_int_eq(kc_record_batch_decode(&rd, &rb), 0);
    ck_assert_int_eq(rb.base_offset, 1);
    ck_assert_int_eq(rd.off, 2 * BLEN);
    size_t tail = 99;
    ck_assert_int_eq(validate(b, sizeof(b), 0, &rd, &tail), 2);
    ck_assert_uint_eq(tail, 0);
    /* The second one corrupt: reported at its start. */
    b[BLEN + 40] ^= 0xff;
    ck_assert_int_eq(validate(b, sizeof(b), 1, &rd, &tail), -1);
    ck_assert_str_eq(rd.err, "record batch CRC mismatch");
    ck_assert_uint_eq(rd.err_off, BLEN);
}
END_TEST

START_TEST(test_record_batch_partial_tail)
{
    /* Two whole batches and the start of a third, as a broker may send when
     * a fetch hits its byte limit. */
    uint8_t b[3 * BLEN];
    make_batch(b, 0);
    make_batch(b + BLEN, 1);
    make_batch(b + 2 * BLEN, 2);
    for (size_t part = 1; part < BLEN; part++) {
        size_t len = 2 * BLEN + part;
        kc_rd rd;
        size_t tail = 0;
        ck_assert_int_eq(validate(b, len, 1, &rd, &tail), 2);
        ck_assert_uint_eq(tail, part);
        ck_assert_int_eq(validate(b, len, 0, &rd, &tail), -1);
        ck_assert_uint_eq(rd.err_off, 2 * BLEN);
    }
    kc_rd rd;
    size_t tail = 99;
    ck_assert_int_eq(validate(b, sizeof(b), 0, &rd, &tail), 3);
    ck_assert_uint_eq(tail, 0);
}
END_TEST

START_TEST(test_record_batch_empty_and_null)
{
    kc_rd rd;
    size_t tail = 99;
    kc_bytes null = {NULL, -1};
    ck_assert_int_eq(kc_record_batches_validate(&null, 0, &rd, &tail), 0);
    ck_assert_uint_eq(tail, 0);
    kc_bytes empty = {(const uint8_t *)"", 0};
    ck_assert_int_eq(kc_record_batches_validate(&empty, 0, &rd, &tail), 0);
    ck_assert_ptr_null(rd.err);
}
END_TEST

/* The CRC of whole batches from their headers equals the CRC of their bytes
 * when each batch's CRC is right, and differs from it when any byte the
 * batch CRC covers was changed after the producer computed it; bytes that
 * are not whole v2 batches are refused (the caller reads them instead). */
START_TEST(test_record_batches_crc32c)
{
    uint8_t b[3 * BLEN];
    make_batch(b, 0);
    make_batch(b + BLEN, 1);
    make_batch(b + 2 * BLEN, 2);
    for (size_t n = 1; n <= 3; n++) {
        uint32_t crc = 0;
        ck_assert_int_eq(kc_record_batches_crc32c(b, n * BLEN, &crc), 0);
        ck_assert_uint_eq(crc, kc_crc32c(0, b, n * BLEN));
    }
    /* A byte flipped under a batch CRC: the derived CRC is not the bytes'. */
    for (size_t i = ATTR_OFF; i < BLEN; i++) {
        b[BLEN + i] ^= 0x20;
        uint32_t crc = 0;
        ck_assert_int_eq(kc_record_batches_crc32c(b, sizeof(b), &crc), 0);
        ck_assert_msg(crc != kc_crc32c(0, b, sizeof(b)), "flip at %zu not seen", i);
        b[BLEN + i] ^= 0x20;
    }
    /* A flip in the first 21 bytes (outside the batch CRC) is in both. */
    b[BLEN + 12] ^= 1;
    uint32_t crc = 0;
    ck_assert_int_eq(kc_record_batches_crc32c(b, sizeof(b), &crc), 0);
    ck_assert_uint_eq(crc, kc_crc32c(0, b, sizeof(b)));
    b[BLEN + 12] ^= 1;
    /* Not whole batches: a cut tail, a bad magic, a length too small. */
    ck_assert_int_eq(kc_record_batches_crc32c(b, sizeof(b) - 1, &crc), -1);
    ck_assert_int_eq(kc_record_batches_crc32c(b, BLEN + 20, &crc), -1);
    b[BLEN + MAGIC_OFF] = 1;
    ck_assert_int_eq(kc_record_batches_crc32c(b, sizeof(b), &crc), -1);
    b[BLEN + MAGIC_OFF] = 2;
    put32(b + LEN_OFF, 5);
    ck_assert_int_eq(kc_record_batches_crc32c(b, sizeof(b), &crc), -1);
}
END_TEST

Suite *kc_record_suite(void)
{
    Suite *s = suite_create("kc_record");
    TCase *tc = tcase_create("batch");
    tcase_add_test(tc, test_record_batch_valid);
    tcase_add_test(tc, test_record_batch_crc_every_byte);
    tcase_add_test(tc, test_record_batch_outside_crc);
    tcase_add_test(tc, test_record_batch_bad_magic);
    tcase_add_test(tc, test_record_batch_truncated);
    tcase_add_test(tc, test_record_batch_length_bounds);
    tcase_add_test(tc, test_record_batch_back_to_back);
    tcase_add_test(tc, test_record_batch_partial_tail);
    tcase_add_test(tc, test_record_batch_empty_and_null);
    tcase_add_test(tc, test_record_batches_crc32c);
    suite_add_tcase(s, tc);
    return s;
}
