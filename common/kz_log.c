#include "config.h"

#include "common/kz_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int kz_log_level = KZ_LOG_INFO;

static const char *const kz_log_names[] = {"error", "warn", "info", "debug"};

int kz_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, kz_log_names[i]) == 0)
            return i;
    return -1;
}

void kz_log_write(int level, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L, kz_log_names[level & 3]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so lines from one process never interleave. */
    fprintf(stderr, "%s\n", line);
}
