/* The WAL object format: round trip, corruption at every byte, truncation. */
#include "config.h"

#include "tests/unit/ow_test.h"

#include "codec/kc_crc32c.h"
#include "objwal/ow_format.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

START_TEST(format_round_trip)
{
    ow_obj_builder *b = ow_obj_builder_new("proxy-7", "eu-west-1a", 1716000000123LL);
    ck_assert(b != NULL);
    uint32_t c;
    uint8_t big[3000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    ck_assert_int_eq(ow_obj_builder_add(b, "zone-b", "orders", 0, "aaaa", 4, &c), OW_OK);
    ck_assert_uint_eq(c, 0);
    ck_assert_int_eq(ow_obj_builder_add(b, "zone-c", "orders", 1, big, sizeof(big), &c), OW_OK);
    ck_assert_uint_eq(c, 1);
    struct evbuffer *moved = evbuffer_new();
    evbuffer_add(moved, "moved-bytes", 11);
    ck_assert_int_eq(ow_obj_builder_add_evbuffer(b, "zone-b", "payments", 7, moved, NULL, &c), OW_OK);
    ck_assert_uint_eq(c, 2);
    ck_assert_uint_eq(evbuffer_get_length(moved), 0);
    evbuffer_free(moved);
    ck_assert_uint_eq(ow_obj_builder_nchunks(b), 3);
    uint64_t predicted = ow_obj_builder_size(b);

    ow_chunk_info *ci;
    char *names;
    struct evbuffer *eb = ow_obj_builder_finish(b, &ci, &names);
    ck_assert(eb != NULL);
    ow_obj_builder_free(b);
    size_t len = evbuffer_get_length(eb);
    ck_assert_uint_eq(len, predicted);
    const uint8_t *p = evbuffer_pullup(eb, -1);

    /* Chunks of a destination are contiguous: zone-b's two come first. */
    ck_assert_str_eq(ci[0].dest, "zone-b");
    ck_assert_str_eq(ci[2].dest, "zone-b");
    ck_assert_str_eq(ci[2].topic, "payments");
    ck_assert_int_eq(ci[2].partition, 7);
    ck_assert_uint_eq(ci[2].range.off, ci[0].range.off + 4);
    ck_assert_uint_eq(ci[1].range.off, ci[2].range.off + 11);
    ck_assert(memcmp(p + ci[0].range.off, "aaaa", 4) == 0);
    ck_assert(memcmp(p + ci[1].range.off, big, sizeof(big)) == 0);
    ck_assert(memcmp(p + ci[2].range.off, "moved-bytes", 11) == 0);
    ck_assert_uint_eq(ci[1].range.crc32c, kc_crc32c(0, big, sizeof(big)));
    ck_assert_uint_eq(ci[2].range.crc32c, kc_crc32c(0, "moved-bytes", 11));

    /* A CRC the caller gives is the chunk's, unread: a wrong one is what a
     * reader then finds the bytes do not match. */
    ow_obj_builder *b2 = ow_obj_builder_new("proxy-7", "eu-west-1a", 1716000000123LL);
    struct evbuffer *given = evbuffer_new();
    evbuffer_add(given, "given", 5);
    uint32_t wrong = kc_crc32c(0, "given", 5) ^ 1;
    ck_assert_int_eq(ow_obj_builder_add_evbuffer(b2, "zone-b", "t", 0, given, &wrong, &c), OW_OK);
    ow_chunk_info *ci2;
    char *names2;
    struct evbuffer *eb2 = ow_obj_builder_finish(b2, &ci2, &names2);
    ck_assert(eb2 != NULL);
    ck_assert_uint_eq(ci2[0].range.crc32c, wrong);
    ck_assert_int_eq(ow_range_verify(&ci2[0].range, evbuffer_pullup(eb2, -1) + ci2[0].range.off, 5, NULL, 0),
                     OW_ECORRUPT);
    ow_obj_builder_free(b2);
    evbuffer_free(given);
    evbuffer_free(eb2);
    free(ci2);
    free(names2);

    ow_obj_view v;
    char err[256];
    ck_assert_int_eq(ow_obj_parse(p, len, 1, &v, err, sizeof(err)), OW_OK);
    ck_assert_uint_eq(v.version, OW_FORMAT_VERSION);
    ck_assert_uint_eq(v.object_size, len);
    ck_assert_int_eq(v.created_ms, 1716000000123LL);
    ck_assert(kc_str_eq(v.proxy_id, "proxy-7"));
    ck_assert(kc_str_eq(v.zone, "eu-west-1a"));
    ck_assert_uint_eq(v.nentries, 3);
    /* The index is in object order: zone-b, zone-b, zone-c. */
    ck_assert(kc_str_eq(v.entries[0].dest, "zone-b"));
    ck_assert(kc_str_eq(v.entries[1].dest, "zone-b"));
    ck_assert(kc_str_eq(v.entries[1].topic, "payments"));
    ck_assert(kc_str_eq(v.entries[2].dest, "zone-c"));
    ck_assert_uint_eq(v.entries[2].range.off, ci[1].range.off);
    ck_assert_uint_eq(v.entries[2].range.crc32c, ci[1].range.crc32c);
    ck_assert_int_eq(v.entries[2].partition, 1);
    /* The ranges the writer reports verify against the bytes. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ow_range_verify(&ci[i].range, p + ci[i].range.off, ci[i].range.len, err,
                                         sizeof(err)),
                         OW_OK);
    ow_obj_view_clear(&v);
    free(ci);
    free(names);
    evbuffer_free(eb);
}
END_TEST

START_TEST(format_empty_object)
{
    ow_obj_builder *b = ow_obj_builder_new("p", "z", 1);
    ow_chunk_info *ci;
    char *names;
    struct evbuffer *eb = ow_obj_builder_finish(b, &ci, &names);
    ow_obj_builder_free(b);
    ck_assert(eb != NULL);
    ow_obj_view v;
    char err[256];
    size_t len = evbuffer_get_length(eb);
    ck_assert_int_eq(ow_obj_parse(evbuffer_pullup(eb, -1), len, 1, &v, err, sizeof(err)), OW_OK);
    ck_assert_uint_eq(v.nentries, 0);
    ow_obj_view_clear(&v);
    free(ci);
    free(names);
    evbuffer_free(eb);
}
END_TEST

/* Flip each byte of a small object in turn: every one must be caught. */
START_TEST(format_corruption_every_byte)
{
    size_t len;
    uint8_t *p = ow_t_small_object(&len);
    uint8_t *q = malloc(len);
    char err[256];
    for (size_t i = 0; i < len; i++) {
        for (int flip = 0; flip < 3; flip++) {
            static const uint8_t masks[] = {0x01, 0x80, 0xff};
            memcpy(q, p, len);
            q[i] ^= masks[flip];
            ow_obj_view v;
            int rc = ow_obj_parse(q, len, 1, &v, err, sizeof(err));
            ck_assert_msg(rc == OW_ECORRUPT, "byte %zu ^ 0x%02x of %zu: got %s (%s)", i,
                          masks[flip], len, ow_err_name(rc), rc == OW_OK ? "accepted" : err);
        }
    }
    free(q);
    free(p);
}
END_TEST

/* Every shorter prefix is reported as truncated (or corrupt when even the
 * magic is cut), never accepted. */
START_TEST(format_truncation)
{
    size_t len;
    uint8_t *p = ow_t_small_object(&len);
    char err[256];
    for (size_t n = 0; n < len; n++) {
        uint8_t *q = malloc(n ? n : 1);
        memcpy(q, p, n);
        ow_obj_view v;
        int rc = ow_obj_parse(q, n, 1, &v, err, sizeof(err));
        ck_assert_msg(rc == OW_ETRUNCATED, "prefix of %zu/%zu bytes: got %s", n, len,
                      ow_err_name(rc));
        free(q);
    }
    /* Extra bytes after the trailer are corruption. */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, p, len);
    longer[len] = 0;
    ow_obj_view v;
    ck_assert_int_eq(ow_obj_parse(longer, len + 1, 1, &v, err, sizeof(err)), OW_ECORRUPT);
    free(longer);
    free(p);
}
END_TEST

START_TEST(format_range_verify)
{
    const char *data = "0123456789";
    ow_range r = {100, 10, kc_crc32c(0, data, 10)};
    char err[256];
    ck_assert_int_eq(ow_range_verify(&r, (const uint8_t *)data, 10, err, sizeof(err)), OW_OK);
    ck_assert_int_eq(ow_range_verify(&r, (const uint8_t *)data, 9, err, sizeof(err)),
                     OW_ETRUNCATED);
    ck_assert_int_eq(ow_range_verify(&r, (const uint8_t *)"0123456780", 10, err, sizeof(err)),
                     OW_ECORRUPT);
    ck_assert(strstr(err, "CRC32C") != NULL);
}
END_TEST

START_TEST(format_builder_limits)
{
    ow_obj_builder *b = ow_obj_builder_new("p", "z", 1);
    uint32_t c;
    char longname[300];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(ow_obj_builder_add(b, longname, "t", 0, "x", 1, &c), OW_EINVAL);
    ck_assert_int_eq(ow_obj_builder_add(b, "d", longname, 0, "x", 1, &c), OW_EINVAL);
    ck_assert_int_eq(ow_obj_builder_add(b, "d", "t", 0, "x", 0, &c), OW_EINVAL);
    ck_assert_uint_eq(ow_obj_builder_nchunks(b), 0);
    ow_obj_builder_free(b);
    ck_assert(ow_obj_builder_new(longname, "z", 1) == NULL);
}
END_TEST

/* A hostile trailer cannot make the index decoder allocate or read past
 * what is there. */
START_TEST(format_hostile_trailer)
{
    uint8_t t[OW_TRAILER_SIZE];
    memset(t, 0xff, sizeof(t));
    memcpy(t + 28, OW_TRAILER_MAGIC, 4);
    uint32_t crc = kc_crc32c(0, t, 24);
    t[24] = (uint8_t)(crc >> 24);
    t[25] = (uint8_t)(crc >> 16);
    t[26] = (uint8_t)(crc >> 8);
    t[27] = (uint8_t)crc;
    ow_trailer tr;
    char err[256];
    ck_assert_int_eq(ow_trailer_decode(t, sizeof(t), 0, &tr, err, sizeof(err)), OW_ECORRUPT);
    ck_assert_int_eq(ow_trailer_decode(t, 31, 0, &tr, err, sizeof(err)), OW_ECORRUPT);
}
END_TEST

Suite *ow_format_suite(void)
{
    Suite *s = suite_create("ow_format");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, format_round_trip);
    tcase_add_test(tc, format_empty_object);
    tcase_add_test(tc, format_corruption_every_byte);
    tcase_add_test(tc, format_truncation);
    tcase_add_test(tc, format_range_verify);
    tcase_add_test(tc, format_builder_limits);
    tcase_add_test(tc, format_hostile_trailer);
    suite_add_tcase(s, tc);
    return s;
}
