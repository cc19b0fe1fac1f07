/*
 * crc_bench: CRC32C throughput of each implementation in codec/kc_crc32c.c
 * (table, SSE4.2 one chain, SSE4.2 three chains), in GB/s (10^9 bytes) over
 * buffers of several sizes. Each figure is the best of a few repetitions of
 * about 0.2 s of CPU time, so other load on the machine lowers it less.
 *
 * Usage: tests/bench/crc_bench [seconds per figure, default 0.2]
 */
#include "config.h"

#include "codec/kc_crc32c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile uint32_t sink;

/* Bytes per CPU second of fn over buf[0, len), best of 3 runs of secs each. */
static double measure(kc_crc32c_fn fn, const uint8_t *buf, size_t len, double secs)
{
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        uint64_t bytes = 0;
        uint32_t c = 0;
        double t0 = cpu_seconds(), t;
        size_t iters = len >= (1u << 20) ? 1 : (1u << 20) / len;
        do {
            for (size_t i = 0; i < iters; i++)
                c = fn(c, buf, len);
            bytes += (uint64_t)iters * len;
            t = cpu_seconds() - t0;
        } while (t < secs / 3);
        sink = c;
        double rate = (double)bytes / t;
        if (rate > best)
            best = rate;
    }
    return best;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 0.2;
    if (secs <= 0)
        secs = 0.2;
    static const size_t sizes[] = {64, 512, 4096, 16384, 65536, 1u << 20, 8u << 20};
    static const char *const names[] = {"table", "sse4.2 1 chain", "sse4.2 3 chains"};
    size_t max = 8u << 20;
    uint8_t *buf = malloc(max);
    if (buf == NULL)
        return 1;
    for (size_t i = 0; i < max; i++)
        buf[i] = (uint8_t)(i * 131 + (i >> 9));
    static const char *const kinds[] = {"table", "sse4.2", "sse4.2 3-way"};
    printf("crc_bench: CRC32C GB/s (10^9 bytes per CPU second); kc_crc32c uses: %s\n",
           kinds[kc_crc32c_used()]);
    printf("%-16s", "bytes");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
        printf(" %9zu", sizes[s]);
    printf("\n");
    double rate[3][sizeof(sizes) / sizeof(sizes[0])] = {{0}};
    for (int k = KC_CRC32C_TABLE; k <= KC_CRC32C_SSE42_3WAY; k++) {
        kc_crc32c_fn fn = kc_crc32c_impl((kc_crc32c_kind)k);
        printf("%-16s", names[k]);
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            if (fn == NULL) {
                printf(" %9s", "-");
                continue;
            }
            rate[k][s] = measure(fn, buf, sizes[s], secs) / 1e9;
            printf(" %9.2f", rate[k][s]);
            fflush(stdout);
        }
        printf("\n");
    }
    if (rate[KC_CRC32C_SSE42][0] > 0 && rate[KC_CRC32C_SSE42_3WAY][0] > 0) {
        printf("%-16s", "3 chains / 1");
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
            printf(" %9.2f", rate[KC_CRC32C_SSE42_3WAY][s] / rate[KC_CRC32C_SSE42][s]);
        printf("\n");
    }
    free(buf);
    return 0;
}
