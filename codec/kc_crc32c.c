/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Three implementations, chosen once by what the CPU has:
 *
 *  - table: software, eight 256-entry tables, eight bytes per step;
 *  - SSE4.2: one chain of crc32q. The instruction has a latency of 3 cycles
 *    but can start one per cycle, so a single chain runs at a third of the
 *    possible rate;
 *  - SSE4.2 + PCLMULQDQ: the buffer is cut into rounds of three adjacent
 *    blocks of B bytes, each with its own crc32q chain (the second and
 *    third starting from 0), so three instructions are in flight at once.
 *    The three results are then joined. The raw CRC register (without the
 *    pre- and post-inversion) is linear, so for blocks X, Y, Z:
 *
 *        raw(c, X Y Z) = raw(c, X) * x^(16B) + raw(0, Y) * x^(8B) + raw(0, Z)   (mod P)
 *
 *    Multiplying a 32-bit state S by x^m (mod P) is one carry-less multiply
 *    by a constant K and one crc32q of the 64-bit product: with the bit
 *    order of the instruction (bit j of the register is the coefficient of
 *    x^(31-j)), clmul(S, K) read as a 64-bit message is S*K*x, and crc32q
 *    of a 64-bit message M from state 0 is M*x^32 (mod P); so
 *    crc32q(0, clmul(S, K)) = S*K*x^33, and K = x^(m-33) mod P. The
 *    constants are computed when the module first runs (kc_crc32c_setup).
 */
#include "config.h"

#include "codec/kc_crc32c.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#include <wmmintrin.h>
#define KC_HAVE_SSE42_PATH 1
#endif

#define KC_CRC32C_POLY 0x82F63B78u /* reflected: bit 31 is x^0 */

/* Bytes per block in one round of the three-chain path. Long blocks for the
 * bulk (a join costs about as much as 10 crc32q), short ones for what is
 * left; under 3 short blocks, one chain. */
#define KC_CRC_LONG 4096
#define KC_CRC_SHORT 128

typedef uint32_t (*kc_crc_raw_fn)(uint32_t crc, const unsigned char *p, size_t n);

static uint32_t kc_crc32c_table[8][256];
/* {x^(8B-33), x^(16B-33)} mod P for B = KC_CRC_LONG and KC_CRC_SHORT. */
static uint32_t kc_crc_k_long[2], kc_crc_k_short[2];
static kc_crc_raw_fn kc_crc_best; /* NULL until kc_crc32c_setup ran */
/* For kc_crc32c_combine: x^(8 * 2^i) mod P, and with PCLMULQDQ the
 * constants x^(8 * 2^i - 33) mod P (i >= 3) that shift by 2^i bytes. */
#define KC_CRC_POW2_MAX 48 /* lengths below 2^48 bytes */
static uint32_t kc_crc_pow2[KC_CRC_POW2_MAX], kc_crc_k_pow2[KC_CRC_POW2_MAX];

/* S * x mod P. */
static uint32_t kc_crc_mulx(uint32_t s)
{
    return (s & 1) ? (s >> 1) ^ KC_CRC32C_POLY : s >> 1;
}

/* a * b mod P. */
static uint32_t kc_crc_mulmod(uint32_t a, uint32_t b)
{
    uint32_t prod = 0;
    for (int i = 0; i < 32; i++) { /* b holds (the original b) * x^i */
        if (a & (0x80000000u >> i))
            prod ^= b;
        b = kc_crc_mulx(b);
    }
    return prod;
}

/* x^n mod P, by squaring. */
static uint32_t kc_crc_xpow(uint64_t n)
{
    uint32_t r = 0x80000000u, sq = 0x40000000u; /* x^0, x^1 */
    while (n != 0) {
        if (n & 1)
            r = kc_crc_mulmod(r, sq);
        sq = kc_crc_mulmod(sq, sq);
        n >>= 1;
    }
    return r;
}

static uint32_t kc_crc32c_sw(uint32_t crc, const unsigned char *p, size_t n)
{
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
static inline uint64_t kc_crc_load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* One chain of crc32q. */
__attribute__((target("sse4.2"))) static uint32_t kc_crc32c_hw(uint32_t crc, const unsigned char *p,
                                                               size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        c = _mm_crc32_u64(c, kc_crc_load64(p));
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

/* One round: blocks [p, p+b), [p+b, p+2b), [p+2b, p+3b) in three chains,
 * joined with k = {x^(8b-33), x^(16b-33)}. b is a multiple of 8. */
__attribute__((always_inline, target("sse4.2,pclmul"))) static inline uint32_t
kc_crc_round(uint32_t crc, const unsigned char *p, size_t b, const uint32_t k[2])
{
    uint64_t c0 = crc, c1 = 0, c2 = 0;
    for (size_t i = 0; i < b; i += 8) {
        c0 = _mm_crc32_u64(c0, kc_crc_load64(p + i));
        c1 = _mm_crc32_u64(c1, kc_crc_load64(p + b + i));
        c2 = _mm_crc32_u64(c2, kc_crc_load64(p + 2 * b + i));
    }
    /* c0 * x^(16b) + c1 * x^(8b): two products, one reduction (linear). */
    __m128i m0 = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)(uint32_t)c0),
                                      _mm_cvtsi32_si128((int)k[1]), 0x00);
    __m128i m1 = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)(uint32_t)c1),
                                      _mm_cvtsi32_si128((int)k[0]), 0x00);
    uint64_t m = (uint64_t)_mm_cvtsi128_si64(_mm_xor_si128(m0, m1));
    return (uint32_t)_mm_crc32_u64(0, m) ^ (uint32_t)c2;
}

/* Three chains for rounds of long then short blocks, one for the rest. */
__attribute__((target("sse4.2,pclmul"))) static uint32_t
kc_crc32c_hw3(uint32_t crc, const unsigned char *p, size_t n)
{
    if (n >= 3 * KC_CRC_SHORT) {
        while (((uintptr_t)p & 7) != 0) {
            crc = _mm_crc32_u8(crc, *p++);
            n--;
        }
        while (n >= 3 * KC_CRC_LONG) {
            crc = kc_crc_round(crc, p, KC_CRC_LONG, kc_crc_k_long);
            p += 3 * KC_CRC_LONG;
            n -= 3 * KC_CRC_LONG;
        }
        while (n >= 3 * KC_CRC_SHORT) {
            crc = kc_crc_round(crc, p, KC_CRC_SHORT, kc_crc_k_short);
            p += 3 * KC_CRC_SHORT;
            n -= 3 * KC_CRC_SHORT;
        }
    }
    return kc_crc32c_hw(crc, p, n);
}
#endif

static void kc_crc32c_setup(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = kc_crc_mulx(c);
        kc_crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = kc_crc32c_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = kc_crc32c_table[0][c & 0xff] ^ (c >> 8);
            kc_crc32c_table[t][i] = c;
        }
    }
    kc_crc_k_long[0] = kc_crc_xpow(8 * KC_CRC_LONG - 33);
    kc_crc_k_long[1] = kc_crc_xpow(16 * KC_CRC_LONG - 33);
    kc_crc_k_short[0] = kc_crc_xpow(8 * KC_CRC_SHORT - 33);
    kc_crc_k_short[1] = kc_crc_xpow(16 * KC_CRC_SHORT - 33);
    kc_crc_pow2[0] = kc_crc_xpow(8);
    for (int i = 1; i < KC_CRC_POW2_MAX; i++)
        kc_crc_pow2[i] = kc_crc_mulmod(kc_crc_pow2[i - 1], kc_crc_pow2[i - 1]);
    kc_crc_k_pow2[3] = kc_crc_xpow(8 * 8 - 33);
    for (int i = 4; i < KC_CRC_POW2_MAX; i++) /* x^(16m - 33) = x^(8m - 33) * x^(8m) */
        kc_crc_k_pow2[i] = kc_crc_mulmod(kc_crc_k_pow2[i - 1], kc_crc_pow2[i - 1]);
    kc_crc_raw_fn best = kc_crc32c_sw;
#ifdef KC_HAVE_SSE42_PATH
    __builtin_cpu_init(); /* may run as a constructor, before libgcc's own */
    if (__builtin_cpu_supports("sse4.2"))
        best = __builtin_cpu_supports("pclmul") ? kc_crc32c_hw3 : kc_crc32c_hw;
#endif
    kc_crc_best = best;
}

#if defined(__GNUC__) || defined(__clang__)
/* Before main, so threads never race on the first call. */
__attribute__((constructor)) static void kc_crc32c_ctor(void)
{
    kc_crc32c_setup();
}
#endif

/* Without constructors (or before them), set up on first use. */
static void kc_crc32c_ready(void)
{
    if (kc_crc_best == NULL)
        kc_crc32c_setup();
}

uint32_t kc_crc32c(uint32_t crc, const void *buf, size_t n)
{
    kc_crc32c_ready();
    return ~kc_crc_best(~crc, buf, n);
}

/* The raw register S shifted over n zero bytes: S * x^(8n) mod P, one
 * multiplication per bit set in n. */
static uint32_t kc_crc_shift_sw(uint32_t s, uint64_t n)
{
    for (int i = 0; n != 0 && i < KC_CRC_POW2_MAX; i++, n >>= 1) {
        if (n & 1)
            s = kc_crc_mulmod(s, kc_crc_pow2[i]);
    }
    return s;
}

#ifdef KC_HAVE_SSE42_PATH
/* The same with crc32b over zero bytes for n's low three bits and, for each
 * higher bit, one carry-less multiply and one crc32q (see the top). */
__attribute__((target("sse4.2,pclmul"))) static uint32_t kc_crc_shift_hw(uint32_t s, uint64_t n)
{
    for (uint64_t i = 0; i < (n & 7); i++)
        s = _mm_crc32_u8(s, 0);
    n >>= 3;
    for (int i = 3; n != 0 && i < KC_CRC_POW2_MAX; i++, n >>= 1) {
        if (n & 1) {
            __m128i m = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)s),
                                             _mm_cvtsi32_si128((int)kc_crc_k_pow2[i]), 0x00);
            s = (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(m));
        }
    }
    return s;
}
#endif

uint32_t kc_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    kc_crc32c_ready();
    /* With A's CRC a = ~raw(~0, A) and B's b = ~raw(~0, B), linearity gives
     * ~raw(~0, A B) = b ^ a * x^(8 len_b): the inversions cancel. */
#ifdef KC_HAVE_SSE42_PATH
    if (kc_crc_best == kc_crc32c_hw3)
        return kc_crc_shift_hw(crc_a, len_b) ^ crc_b;
#endif
    return kc_crc_shift_sw(crc_a, len_b) ^ crc_b;
}

uint32_t kc_crc32c_combine_sw(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    kc_crc32c_ready();
    return kc_crc_shift_sw(crc_a, len_b) ^ crc_b;
}

/* ---- each implementation on its own, for tests and benchmarks ---- */

static uint32_t kc_crc32c_api_table(uint32_t crc, const void *buf, size_t n)
{
    kc_crc32c_ready();
    return ~kc_crc32c_sw(~crc, buf, n);
}

#ifdef KC_HAVE_SSE42_PATH
static uint32_t kc_crc32c_api_sse42(uint32_t crc, const void *buf, size_t n)
{
    return ~kc_crc32c_hw(~crc, buf, n);
}

static uint32_t kc_crc32c_api_sse42_3way(uint32_t crc, const void *buf, size_t n)
{
    kc_crc32c_ready();
    return ~kc_crc32c_hw3(~crc, buf, n);
}
#endif

kc_crc32c_fn kc_crc32c_impl(kc_crc32c_kind kind)
{
    kc_crc32c_ready();
    switch (kind) {
    case KC_CRC32C_TABLE: return kc_crc32c_api_table;
#ifdef KC_HAVE_SSE42_PATH
    case KC_CRC32C_SSE42: return __builtin_cpu_supports("sse4.2") ? kc_crc32c_api_sse42 : NULL;
    case KC_CRC32C_SSE42_3WAY:
        return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul")
                   ? kc_crc32c_api_sse42_3way
                   : NULL;
#endif
    default: return NULL;
    }
}

kc_crc32c_kind kc_crc32c_used(void)
{
    kc_crc32c_ready();
#ifdef KC_HAVE_SSE42_PATH
    if (kc_crc_best == kc_crc32c_hw3)
        return KC_CRC32C_SSE42_3WAY;
    if (kc_crc_best == kc_crc32c_hw)
        return KC_CRC32C_SSE42;
#endif
    return KC_CRC32C_TABLE;
}
