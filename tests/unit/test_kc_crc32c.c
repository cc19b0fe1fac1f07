/* CRC32C: every implementation against a reference and known check
 * values, over many lengths and alignments. */
#include "config.h"

#include "codec/kc_crc32c.h"
#include "tests/unit/kz_test.h"

#include <stdlib.h>
#include <string.h>

/* The definition one bit at a time, made into a byte table by the test
 * itself: independent of the module's tables and of the instruction. */
static uint32_t ref_table[256];

static uint32_t ref_crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    if (ref_table[1] == 0)
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int b = 0; b < 8; b++)
                c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
            ref_table[i] = c;
        }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = ref_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

static const char *const kind_names[] = {"table", "sse4.2", "sse4.2 3-way"};

/* Every implementation this CPU has, kc_crc32c itself first. */
static int impls(kc_crc32c_fn *out, const char **names)
{
    int n = 0;
    out[n] = kc_crc32c;
    names[n++] = "kc_crc32c";
    for (int k = KC_CRC32C_TABLE; k <= KC_CRC32C_SSE42_3WAY; k++) {
        kc_crc32c_fn f = kc_crc32c_impl((kc_crc32c_kind)k);
        if (f != NULL) {
            out[n] = f;
            names[n++] = kind_names[k];
        }
    }
    return n;
}

START_TEST(test_crc32c_known)
{
    kc_crc32c_fn fn[4];
    const char *name[4];
    int nf = impls(fn, name);
    uint8_t zeros[32] = {0}, ones[32], inc[32], dec[32];
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++) {
        inc[i] = (uint8_t)i;
        dec[i] = (uint8_t)(31 - i);
    }
    static uint8_t big[1 << 20]; /* 1 MiB of zeros */
    uint32_t big_crc = ref_crc32c(0, big, sizeof(big));
    for (int f = 0; f < nf; f++) {
        /* RFC 3720 appendix B.4, and the usual check value. */
        ck_assert_msg(fn[f](0, zeros, 32) == 0x8a9136aa, "%s: 32 zeros", name[f]);
        ck_assert_msg(fn[f](0, ones, 32) == 0x62a8ab43, "%s: 32 x 0xff", name[f]);
        ck_assert_msg(fn[f](0, inc, 32) == 0x46dd794e, "%s: 0..31", name[f]);
        ck_assert_msg(fn[f](0, dec, 32) == 0x113fdb5c, "%s: 31..0", name[f]);
        ck_assert_msg(fn[f](0, "123456789", 9) == 0xe3069283, "%s: 123456789", name[f]);
        ck_assert_msg(fn[f](0, NULL, 0) == 0, "%s: empty", name[f]);
        ck_assert_msg(fn[f](0x12345678, "", 0) == 0x12345678, "%s: empty continues", name[f]);
        ck_assert_msg(fn[f](kc_crc32c(0, inc, 5), inc + 5, 27) == 0x46dd794e, "%s: continued",
                      name[f]);
        ck_assert_msg(fn[f](0, big, sizeof(big)) == big_crc, "%s: 1 MiB of zeros", name[f]);
    }
    /* What kc_crc32c runs is one of the kinds this CPU has. */
    ck_assert_ptr_nonnull(kc_crc32c_impl(kc_crc32c_used()));
    ck_assert_ptr_nonnull(kc_crc32c_impl(KC_CRC32C_TABLE));
}
END_TEST

/* Lengths 0..5000, each at an alignment that varies independently of the
 * length, against the reference; every alignment around the block sizes. */
START_TEST(test_crc32c_lengths)
{
    kc_crc32c_fn fn[4];
    const char *name[4];
    int nf = impls(fn, name);
    enum { MAXLEN = 5000, EDGEMAX = 24583 };
    uint8_t *buf = malloc(EDGEMAX + 64);
    ck_assert_ptr_nonnull(buf);
    fill(buf, EDGEMAX + 64, 1);
    for (size_t len = 0; len <= MAXLEN; len++) {
        size_t off = (len / 8 + len / 3) % 8;
        uint32_t want = ref_crc32c(0, buf + off, len);
        for (int f = 0; f < nf; f++)
            ck_assert_msg(fn[f](0, buf + off, len) == want, "%s: %zu bytes at +%zu", name[f], len,
                          off);
    }
    /* Either side of one and several rounds of short (128) and long (4096)
     * blocks, three per round, at every alignment. */
    static const size_t edges[] = {383,   384,   385,   391,   392,   767,   768,
                                   769,   1151,  1152,  1159,  4095,  4096,  4097,
                                   12287, 12288, 12289, 12671, 12672, 12673, 24583};
    for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++)
        for (size_t off = 0; off < 16; off++) {
            uint32_t want = ref_crc32c(0x5a5a5a5a, buf + off, edges[e]);
            for (int f = 0; f < nf; f++)
                ck_assert_msg(fn[f](0x5a5a5a5a, buf + off, edges[e]) == want,
                              "%s: %zu bytes at +%zu", name[f], edges[e], off);
        }
    free(buf);
}
END_TEST

/* Large and odd lengths at odd addresses, whole and split in two. */
START_TEST(test_crc32c_large)
{
    kc_crc32c_fn fn[4];
    const char *name[4];
    int nf = impls(fn, name);
    static const size_t lens[] = {12287,           12288, 12289,  12288 + 384,     12288 * 2 + 383,
                                  12288 * 3 + 385, 65536, 100003, (1u << 20) + 13, 3u << 20};
    size_t max = 3u << 20;
    uint8_t *buf = malloc(max + 16);
    ck_assert_ptr_nonnull(buf);
    fill(buf, max + 16, 7);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t off = (i * 3 + 1) % 8, len = lens[i];
        uint32_t want = ref_crc32c(0, buf + off, len);
        for (int f = 0; f < nf; f++) {
            ck_assert_msg(fn[f](0, buf + off, len) == want, "%s: %zu bytes at +%zu", name[f], len,
                          off);
            size_t cut = (len * (size_t)(f + 2)) / 7 + (size_t)f;
            uint32_t a = fn[f](0, buf + off, cut);
            ck_assert_msg(fn[f](a, buf + off + cut, len - cut) == want,
                          "%s: %zu bytes split at %zu", name[f], len, cut);
        }
    }
    free(buf);
}
END_TEST

/* Combining two CRCs equals the CRC of the two buffers end to end, for
 * every cut of short buffers and for long second parts, with the carry-less
 * multiply (where the CPU has it) and without. */
START_TEST(test_crc32c_combine)
{
    size_t max = (1u << 20) + 77;
    uint8_t *buf = malloc(max);
    ck_assert_ptr_nonnull(buf);
    fill(buf, max, 11);
    for (size_t len = 0; len <= 300; len += (len < 40 ? 1 : 13)) {
        uint32_t want = ref_crc32c(0, buf, len);
        for (size_t cut = 0; cut <= len; cut++) {
            uint32_t a = ref_crc32c(0, buf, cut), b = ref_crc32c(0, buf + cut, len - cut);
            ck_assert_msg(kc_crc32c_combine(a, b, len - cut) == want, "%zu bytes cut at %zu", len, cut);
            ck_assert_msg(kc_crc32c_combine_sw(a, b, len - cut) == want, "sw: %zu bytes cut at %zu", len,
                          cut);
        }
    }
    static const size_t cuts[] = {1, 7, 8, 9, 4096, 65535, 65536, 100003, (1u << 20) + 13};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        size_t cut = cuts[i];
        uint32_t want = kc_crc32c(0, buf, max);
        uint32_t a = kc_crc32c(0, buf, cut), b = kc_crc32c(0, buf + cut, max - cut);
        ck_assert_msg(kc_crc32c_combine(a, b, max - cut) == want, "%zu cut at %zu", max, cut);
        ck_assert_msg(kc_crc32c_combine_sw(a, b, max - cut) == want, "sw: %zu cut at %zu", max, cut);
    }
    /* A zero-length B leaves A's CRC as it is. */
    ck_assert_uint_eq(kc_crc32c_combine(0xdeadbeefu, 0, 0), 0xdeadbeefu);
    free(buf);
}
END_TEST

Suite *kc_crc32c_suite(void)
{
    Suite *s = suite_create("kc_crc32c");
    TCase *tc = tcase_create("crc32c");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_crc32c_known);
    tcase_add_test(tc, test_crc32c_lengths);
    tcase_add_test(tc, test_crc32c_large);
    tcase_add_test(tc, test_crc32c_combine);
    suite_add_tcase(s, tc);
    return s;
}
