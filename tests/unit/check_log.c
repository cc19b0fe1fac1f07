/*
 * kz_log (common/kz_log.c): log_format "json" writes one JSON object per
 * line that parses back to the message exactly, whatever it holds (quotes,
 * backslashes, control characters, non-ASCII UTF-8); bytes that are not
 * UTF-8 become '?' and the line still parses; "text" keeps its old shape;
 * the format and level parsers.
 */
#include "config.h"

#include "common/kz_log.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run one kz_log_write with stderr sent to a temporary file; returns what
 * was written (caller frees). */
static char *capture(int format, int level, const char *msg)
{
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(tmp), STDERR_FILENO), 0);
    int old = kz_log_format;
    kz_log_format = format;
    kz_log_write(level, "%s", msg);
    kz_log_format = old;
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    long n = ftell(tmp);
    ck_assert_int_ge(n, 0);
    char *buf = calloc(1, (size_t)n + 1);
    rewind(tmp);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return buf;
}

/* One line, one object: {"ts", "level", "msg"} in that order and nothing else. */
static json_t *parse_line(const char *out)
{
    size_t len = strlen(out);
    ck_assert_uint_gt(len, 1);
    ck_assert_int_eq(out[len - 1], '\n');
    ck_assert_ptr_null(memchr(out, '\n', len - 1));
    json_error_t je;
    json_t *o = json_loadb(out, len - 1, 0, &je);
    ck_assert_msg(o != NULL, "not JSON: %s (%s)", out, je.text);
    ck_assert(json_is_object(o));
    ck_assert_uint_eq(json_object_size(o), 3);
    ck_assert(json_is_string(json_object_get(o, "ts")));
    ck_assert(json_is_string(json_object_get(o, "level")));
    ck_assert(json_is_string(json_object_get(o, "msg")));
    ck_assert_ptr_eq(strstr(out, "{\"ts\":"), out);
    return o;
}

START_TEST(test_json_roundtrip)
{
    static const char *const msgs[] = {
        "plain message",
        "client.id \"a\\b\" quoted, back\\slash",
        "tab\there, newline\nthere, cr\r, bell\a, esc\x1b[0m",
        "non-ASCII UTF-8: z\xc3\xa9ro \xe2\x82\xac \xf0\x9f\x98\x80",
        "",
        "{\"looks\": [\"like\", \"json\"]}",
    };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        char *out = capture(KZ_LOG_JSON, KZ_LOG_WARN, msgs[i]);
        json_t *o = parse_line(out);
        ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), msgs[i]);
        ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "warn");
        const char *ts = json_string_value(json_object_get(o, "ts"));
        /* 2026-01-02T03:04:05.678Z */
        ck_assert_uint_eq(strlen(ts), 24);
        ck_assert_int_eq(ts[10], 'T');
        ck_assert_int_eq(ts[19], '.');
        ck_assert_int_eq(ts[23], 'Z');
        json_decref(o);
        free(out);
    }
}
END_TEST

START_TEST(test_json_invalid_utf8)
{
    /* A lone continuation byte, a truncated sequence, an overlong '/', a
     * surrogate, a byte never valid in UTF-8, a sequence cut by the end. */
    const char *msg = "a\x80" "b\xc3" "c\xc0\xaf" "d\xed\xa0\x80" "e\xff" "f\xe2\x82";
    char *out = capture(KZ_LOG_JSON, KZ_LOG_ERROR, msg);
    json_t *o = parse_line(out);
    const char *got = json_string_value(json_object_get(o, "msg"));
    ck_assert_str_eq(got, "a?b?c??d???e?f??");
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "error");
    json_decref(o);
    free(out);
}
END_TEST

START_TEST(test_json_long_line)
{
    /* Longer than the line buffer: cut, still one valid object, even when
     * the cut falls inside a multi-byte character. */
    char msg[3000];
    for (size_t i = 0; i + 2 < sizeof(msg); i += 2) {
        msg[i] = '\xc3';
        msg[i + 1] = '\xa9';
    }
    msg[sizeof(msg) - 2] = 'x';
    msg[sizeof(msg) - 1] = '\0';
    char *out = capture(KZ_LOG_JSON, KZ_LOG_INFO, msg);
    json_t *o = parse_line(out);
    ck_assert_uint_gt(strlen(json_string_value(json_object_get(o, "msg"))), 900);
    json_decref(o);
    free(out);
}
END_TEST

START_TEST(test_text_unchanged)
{
    char *out = capture(KZ_LOG_TEXT, KZ_LOG_INFO, "hello \"world\"");
    /* 2026-01-02T03:04:05.678Z info  hello "world"\n */
    ck_assert_uint_eq(strlen(out), 24 + 1 + 5 + 1 + strlen("hello \"world\"") + 1);
    ck_assert_int_eq(out[23], 'Z');
    ck_assert_str_eq(out + 24, " info  hello \"world\"\n");
    free(out);
}
END_TEST

START_TEST(test_parsers)
{
    ck_assert_int_eq(kz_log_format_parse("text"), KZ_LOG_TEXT);
    ck_assert_int_eq(kz_log_format_parse("json"), KZ_LOG_JSON);
    ck_assert_int_eq(kz_log_format_parse("JSON"), -1);
    ck_assert_int_eq(kz_log_format_parse(""), -1);
    ck_assert_int_eq(kz_log_level_parse("debug"), KZ_LOG_DEBUG);
    ck_assert_int_eq(kz_log_level_parse("loud"), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kz_log");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, test_json_roundtrip);
    tcase_add_test(tc, test_json_invalid_utf8);
    tcase_add_test(tc, test_json_long_line);
    tcase_add_test(tc, test_text_unchanged);
    tcase_add_test(tc, test_parsers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
