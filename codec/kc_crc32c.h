/*
 * CRC32C (Castagnoli), as used by Kafka record batches and WAL objects.
 * Uses the SSE4.2 instruction where the CPU has it (three interleaved
 * chains when it also has PCLMULQDQ), a table otherwise.
 */
#ifndef KC_CRC32C_H
#define KC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0. */
uint32_t kc_crc32c(uint32_t crc, const void *p, size_t n);

/* The CRC of A followed by B from A's CRC, B's CRC and B's length, without
 * B's bytes: a few dozen instructions, whatever len_b (below 2^48). */
uint32_t kc_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* ---- the implementations behind kc_crc32c, for tests and benchmarks ---- */

typedef enum kc_crc32c_kind {
    KC_CRC32C_TABLE = 0,      /* software: eight tables, eight bytes per step */
    KC_CRC32C_SSE42 = 1,      /* crc32q, one serial chain */
    KC_CRC32C_SSE42_3WAY = 2, /* crc32q, three chains joined with pclmulqdq */
} kc_crc32c_kind;

typedef uint32_t (*kc_crc32c_fn)(uint32_t crc, const void *p, size_t n);

/* The implementation of that kind (same contract as kc_crc32c), or NULL when
 * this CPU or build lacks it. */
kc_crc32c_fn kc_crc32c_impl(kc_crc32c_kind kind);

/* kc_crc32c_combine without the carry-less multiply, whatever the CPU. */
uint32_t kc_crc32c_combine_sw(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* The kind kc_crc32c uses on this CPU. */
kc_crc32c_kind kc_crc32c_used(void);

#endif
