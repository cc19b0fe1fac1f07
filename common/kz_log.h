/*
 * kz_log: one-line logs to stderr with a timestamp and a level, as text or
 * as one JSON object per line.
 * The macros test the level before formatting, so a debug line costs a
 * comparison when debug logging is off.
 */
#ifndef KZ_LOG_H
#define KZ_LOG_H

enum kz_log_level { KZ_LOG_ERROR = 0, KZ_LOG_WARN = 1, KZ_LOG_INFO = 2, KZ_LOG_DEBUG = 3 };

/* Read atomically (workers' threads log; a reload sets it on the main thread). */
extern int kz_log_level;

/* Parse "error", "warn", "info" or "debug"; -1 if none of them. */
int kz_log_level_parse(const char *s);

/* The shape of a line: KZ_LOG_TEXT "2026-01-02T03:04:05.678Z info  msg", or
 * KZ_LOG_JSON, one object per line: {"ts":"...","level":"info","msg":"..."}
 * (config key log_format). Set once at start, before the loop runs. */
enum kz_log_format { KZ_LOG_TEXT = 0, KZ_LOG_JSON = 1 };
extern int kz_log_format;
/* Parse "text" or "json"; -1 if neither. */
int kz_log_format_parse(const char *s);
void kz_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kz_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= __atomic_load_n(&kz_log_level, __ATOMIC_RELAXED))                          \
            kz_log_write((level), __VA_ARGS__);                                                    \
    } while (0)
#define kz_err(...) kz_log(KZ_LOG_ERROR, __VA_ARGS__)
#define kz_warn(...) kz_log(KZ_LOG_WARN, __VA_ARGS__)
#define kz_info(...) kz_log(KZ_LOG_INFO, __VA_ARGS__)
#define kz_dbg(...) kz_log(KZ_LOG_DEBUG, __VA_ARGS__)

#endif
