#include "config.h"

#include "codec/kc_crc32c.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define KC_HAVE_SSE42_PATH 1
#endif

static uint32_t kc_crc32c_table[8][256];
static int kc_crc32c_ready;

static void kc_crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        kc_crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = kc_crc32c_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = kc_crc32c_table[0][c & 0xff] ^ (c >> 8);
            kc_crc32c_table[t][i] = c;
        }
    }
    kc_crc32c_ready = 1;
}

static uint32_t kc_crc32c_sw(uint32_t crc, const unsigned char *p, size_t n)
{
    if (!kc_crc32c_ready)
        kc_crc32c_init();
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= crc;
        crc = kc_crc32c_table[7][lo & 0xff] ^ kc_crc32c_table[6][(lo >> 8) & 0xff] ^
              kc_crc32c_table[5][(lo >> 16) & 0xff] ^ kc_crc32c_table[4][lo >> 24] ^
              kc_crc32c_table[3][hi & 0xff] ^ kc_crc32c_table[2][(hi >> 8) & 0xff] ^
              kc_crc32c_table[1][(hi >> 16) & 0xff] ^ kc_crc32c_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = kc_crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#ifdef KC_HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) static uint32_t kc_crc32c_hw(uint32_t crc, const unsigned char *p,
                                                               size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}
#endif

uint32_t kc_crc32c(uint32_t crc, const void *buf, size_t n)
{
    crc = ~crc;
#ifdef KC_HAVE_SSE42_PATH
    if (__builtin_cpu_supports("sse4.2"))
        return ~kc_crc32c_hw(crc, buf, n);
#endif
    return ~kc_crc32c_sw(crc, buf, n);
}
