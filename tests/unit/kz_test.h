/*
 * Helpers shared by the Check unit tests.
 *
 * Golden byte vectors are spelled field by field with the macros below, in
 * the order of the Kafka message schema, so a reader can check each field
 * against the schema: I16(3) is an INT16 3, STR2('a','b') ... etc.
 */
#ifndef KZ_TEST_H
#define KZ_TEST_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#define I8(v) (uint8_t)(v)
#define I16(v) (uint8_t)((uint16_t)(v) >> 8), (uint8_t)(v)
#define I32(v)                                                                                     \
    (uint8_t)((uint32_t)(v) >> 24), (uint8_t)((uint32_t)(v) >> 16), (uint8_t)((uint32_t)(v) >> 8), \
        (uint8_t)(v)
#define I64(v) I32((uint64_t)(v) >> 32), I32((uint64_t)(v))
/* Unsigned varint of a value below 128 (one byte): compact lengths n+1. */
#define UV(v) (uint8_t)(v)
#define NOTAGS 0x00

/* Encode with enc into a fresh evbuffer and compare with the golden bytes;
 * the check fails naming the first differing offset. */
void kz_expect_bytes(const char *what, const void *got, size_t got_len, const uint8_t *want,
                     size_t want_len);

Suite *kc_buf_suite(void);
Suite *kc_apiversions_suite(void);
Suite *kc_metadata_suite(void);
Suite *kc_produce_suite(void);
Suite *kc_fetch_suite(void);
Suite *kc_listoffsets_suite(void);
Suite *kc_findcoordinator_suite(void);
Suite *kc_record_suite(void);
Suite *kc_listgroups_suite(void);
Suite *kc_deleterecords_suite(void);
Suite *kc_offsetforleaderepoch_suite(void);
Suite *kc_describecluster_suite(void);
Suite *kc_peer_suite(void);
Suite *kc_crc32c_suite(void);

#endif
