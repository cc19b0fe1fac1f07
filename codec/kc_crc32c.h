/*
 * CRC32C (Castagnoli), as used by Kafka record batches and WAL objects.
 * Uses the SSE4.2 instruction where the CPU has it, a table otherwise.
 */
#ifndef KC_CRC32C_H
#define KC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0. */
uint32_t kc_crc32c(uint32_t crc, const void *p, size_t n);

#endif
