#include "config.h"

#include "common/kz_log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int kz_log_level = KZ_LOG_INFO;
int kz_log_format = KZ_LOG_TEXT;

static const char *const kz_log_names[] = {"error", "warn", "info", "debug"};

int kz_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, kz_log_names[i]) == 0)
            return i;
    return -1;
}

int kz_log_format_parse(const char *s)
{
    if (strcmp(s, "text") == 0)
        return KZ_LOG_TEXT;
    if (strcmp(s, "json") == 0)
        return KZ_LOG_JSON;
    return -1;
}

/*
 * Replace, in place, every byte that does not start or continue a valid
 * UTF-8 sequence with '?': log lines quote client input (client ids, topic
 * names) and a truncated line may cut a character, but a JSON string must be
 * valid UTF-8 (jansson refuses anything else).
 */
static void kz_log_utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int len = 0;
        unsigned int min = 0;
        if (p[0] < 0x80)
            len = 1;
        else if ((p[0] & 0xE0) == 0xC0)
            len = 2, min = 0x80;
        else if ((p[0] & 0xF0) == 0xE0)
            len = 3, min = 0x800;
        else if ((p[0] & 0xF8) == 0xF0 && p[0] <= 0xF4)
            len = 4, min = 0x10000;
        unsigned int cp = len > 1 ? (p[0] & (0x7F >> len)) : p[0];
        int ok = len > 0;
        for (int i = 1; ok && i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                ok = 0; /* also stops at the terminating NUL */
            else
                cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (ok && len > 1 && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
            ok = 0;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += len;
    }
}

/* One JSON object per line; the text form if jansson cannot build it (out of
 * memory), so a line is never lost. */
static void kz_log_json(const char *ts, int level, char *msg)
{
    kz_log_utf8_clean(msg);
    json_t *o = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", kz_log_names[level & 3], "msg", msg);
    char *out = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (out == NULL) {
        fprintf(stderr, "%s %-5s %s\n", ts, kz_log_names[level & 3], msg);
        return;
    }
    fprintf(stderr, "%s\n", out);
    free(out);
}

void kz_log_write(int level, const char *fmt, ...)
{
    char ts[64], line[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000L);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One write per line so lines from one process never interleave. */
    if (kz_log_format == KZ_LOG_JSON)
        kz_log_json(ts, level, line);
    else
        fprintf(stderr, "%s %-5s %s\n", ts, kz_log_names[level & 3], line);
}
