/* The reader (ow_reader.c) on the local store and on the fake store: slices
 * of multi-MiB objects checked as they arrive, the record-batch CRC check,
 * and the repeated reads of a just-written object (OW_READ_JUST_WRITTEN). */
#include "config.h"

#include "tests/unit/ow_test.h"

#include "codec/kc_crc32c.h"
#include "objwal/ow_format.h"
#include "objwal/ow_reader.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct put_box {
    int done;
    int err;
    char msg[512];
} put_box;

static void put_cb(const ow_result *r, void *arg)
{
    put_box *b = arg;
    b->done = 1;
    b->err = r->err;
    snprintf(b->msg, sizeof(b->msg), "%s", r->errmsg ? r->errmsg : "");
}

typedef struct big_box {
    int done;
    int err;
    char msg[1024];
    size_t n;
    int same; /* every slice held the bytes written (a slice with err: skipped) */
    int slice_err[4];
    const uint8_t *want[4];
    size_t want_len[4];
} big_box;

static void big_cb(const ow_read_result *r, void *arg)
{
    big_box *b = arg;
    b->done = 1;
    b->err = r->err;
    snprintf(b->msg, sizeof(b->msg), "%s", r->errmsg);
    b->n = r->nslices;
    b->same = 1;
    for (size_t i = 0; i < r->nslices && i < 4; i++) {
        b->slice_err[i] = r->slices[i].err;
        if (r->slices[i].err == OW_OK && (r->slices[i].len != b->want_len[i] ||
                                          memcmp(r->slices[i].p, b->want[i], b->want_len[i]) != 0))
            b->same = 0;
    }
}

/* Finish ob and PUT it as key: the chunks' ranges in *ci, their names in
 * *names (both the caller's to free). */
static void put_built(ow_store *st, struct event_base *base, const char *key, ow_obj_builder *ob,
                      ow_chunk_info **ci, char **names)
{
    struct evbuffer *body = ow_obj_builder_finish(ob, ci, names);
    ck_assert_ptr_nonnull(body);
    ow_obj_builder_free(ob);
    put_box pb = {0};
    ck_assert(ow_store_put(st, key, body, put_cb, &pb) != NULL);
    ck_assert(ow_t_run_until(base, &pb.done, 5000));
    ck_assert_msg(pb.err == OW_OK, "%s", pb.msg);
    evbuffer_free(body);
}

/* Slices of a multi-MiB object: their CRC32Cs are computed as the store
 * reads the bytes (in pieces, the tap), whatever piece a slice starts or
 * ends in; ranges out of order take the second pass; one flipped byte in
 * the middle of a piece fails that slice only. */
START_TEST(reader_large_slices_local)
{
    char *dir = ow_t_mkdtemp();
    struct event_base *base = event_base_new();
    ow_store *st = ow_t_local_store(base, dir);
    static const size_t lens[3] = {300001, 131072, 777777};
    uint8_t *data[3];
    ow_obj_builder *ob = ow_obj_builder_new("proxy-a1", "zone-a", 1);
    ck_assert_ptr_nonnull(ob);
    for (int c = 0; c < 3; c++) {
        data[c] = malloc(lens[c]);
        ck_assert_ptr_nonnull(data[c]);
        for (size_t i = 0; i < lens[c]; i++)
            data[c][i] = (uint8_t)(i * 31 + (i >> 11) + c);
        ck_assert_int_eq(ow_obj_builder_add(ob, "zone-b", "orders", c, data[c], lens[c], NULL),
                         OW_OK);
    }
    ow_chunk_info *ci;
    char *names;
    put_built(st, base, "wal/big/1", ob, &ci, &names);

    ow_range asc[3] = {ci[0].range, ci[1].range, ci[2].range};
    big_box a = {0};
    for (int c = 0; c < 3; c++) {
        a.want[c] = data[c];
        a.want_len[c] = lens[c];
    }
    ck_assert(ow_read_ranges(st, "wal/big/1", asc, 3, big_cb, &a) != NULL);
    ck_assert(ow_t_run_until(base, &a.done, 5000));
    ck_assert_msg(a.err == OW_OK, "%s", a.msg);
    ck_assert_uint_eq(a.n, 3);
    ck_assert(a.same);

    /* Out of order: checked after the read. */
    ow_range desc[2] = {ci[2].range, ci[0].range};
    big_box d = {.want = {data[2], data[0]}, .want_len = {lens[2], lens[0]}};
    ck_assert(ow_read_ranges(st, "wal/big/1", desc, 2, big_cb, &d) != NULL);
    ck_assert(ow_t_run_until(base, &d.done, 5000));
    ck_assert_msg(d.err == OW_OK, "%s", d.msg);
    ck_assert(d.same);

    /* One byte of the last chunk, far from its ends, flipped on disk. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/wal/big/1", dir);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    long at = (long)ci[2].range.off + 400000;
    fseek(f, at, SEEK_SET);
    int old = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(old ^ 0x01, f);
    fclose(f);
    for (int order = 0; order < 2; order++) {
        big_box bad = {0};
        ck_assert(ow_read_ranges(st, "wal/big/1", order ? desc : asc, order ? 2 : 3, big_cb,
                                 &bad) != NULL);
        ck_assert(ow_t_run_until(base, &bad.done, 5000));
        ck_assert_int_eq(bad.err, OW_ECORRUPT);
        ck_assert_msg(strstr(bad.msg, "CRC32C") != NULL, "%s", bad.msg);
        ck_assert_uint_eq(bad.n, 0);
        /* With OW_READ_SLICE_ERRORS, through the tap (ascending) and the
         * check after the read (descending) alike: the flipped chunk alone
         * is reported, the others are handed on intact. */
        big_box each = {0};
        for (int c = 0; c < 3; c++) {
            each.want[c] = order ? (c == 0 ? data[2] : data[0]) : data[c];
            each.want_len[c] = order ? (c == 0 ? lens[2] : lens[0]) : lens[c];
        }
        ck_assert(ow_read_ranges_opt(st, "wal/big/1", order ? desc : asc, order ? 2 : 3, OW_READ_SLICE_ERRORS,
                                     big_cb, &each) != NULL);
        ck_assert(ow_t_run_until(base, &each.done, 5000));
        ck_assert_msg(each.err == OW_OK, "%s", each.msg);
        ck_assert_uint_eq(each.n, order ? 2 : 3);
        ck_assert(each.same);
        for (size_t c = 0; c < each.n; c++)
            ck_assert_int_eq(each.slice_err[c], (order ? c == 0 : c == 2) ? OW_ECORRUPT : OW_OK);
    }
    big_box ok = {.want = {data[0], data[1]}, .want_len = {lens[0], lens[1]}};
    ck_assert(ow_read_ranges(st, "wal/big/1", asc, 2, big_cb, &ok) != NULL);
    ck_assert(ow_t_run_until(base, &ok.done, 5000));
    ck_assert_msg(ok.err == OW_OK, "%s", ok.msg);
    ck_assert(ok.same);

    free(ci);
    free(names);
    for (int c = 0; c < 3; c++)
        free(data[c]);
    ow_store_free(st);
    event_base_free(base);
    ow_t_rmdir(dir);
}
END_TEST
/* A v2 record batch of len bytes (61 of header, the rest record bytes)
 * with its own CRC32C over bytes 21.. set. */
static void bc_batch(uint8_t *b, size_t len, int64_t base_offset, uint8_t fill)
{
    memset(b, 0, len);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)base_offset >> (56 - 8 * i));
    uint32_t blen = (uint32_t)(len - 12);
    for (int i = 0; i < 4; i++)
        b[8 + i] = (uint8_t)(blen >> (24 - 8 * i));
    b[16] = 2;
    for (size_t i = 61; i < len; i++)
        b[i] = (uint8_t)(fill + i * 7);
    uint32_t crc = kc_crc32c(0, b + 21, len - 21);
    for (int i = 0; i < 4; i++)
        b[17 + i] = (uint8_t)(crc >> (24 - 8 * i));
}

static void bc_flip(const char *path, uint64_t at)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, (long)at, SEEK_SET);
    int old = fgetc(f);
    fseek(f, (long)at, SEEK_SET);
    fputc(old ^ 0x10, f);
    fclose(f);
}

static int bc_read(ow_store *st, struct event_base *base, const ow_range *r, size_t n, int flags,
                   const uint8_t *const *want, const size_t *want_len, big_box *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        out->want[i] = want[i];
        out->want_len[i] = want_len[i];
    }
    ck_assert(ow_read_ranges_opt(st, "wal/bc/1", r, n, flags, big_cb, out) != NULL);
    ck_assert(ow_t_run_until(base, &out->done, 5000));
    ck_assert_msg(out->err == OW_OK, "%s", out->msg);
    ck_assert(out->same);
    return out->slice_err[0];
}

/* OW_READ_BATCH_CRC (router-in's default): a range of whole v2 batches is
 * checked against the CRC derived from their headers and CRC fields, so a
 * changed header byte or CRC field fails the slice; a changed record byte
 * passes (the broker checks each batch's own CRC on append) where the full
 * check fails it; a range that is not v2 batches is still read in full. */
START_TEST(reader_batch_crc_local)
{
    char *dir = ow_t_mkdtemp();
    struct event_base *base = event_base_new();
    ow_store *st = ow_t_local_store(base, dir);
    static const size_t blens[3] = {1061, 61, 20061};
    size_t len0 = blens[0] + blens[1] + blens[2];
    uint8_t *batches = malloc(len0);
    ck_assert_ptr_nonnull(batches);
    size_t bat[3];
    for (size_t i = 0, at = 0; i < 3; at += blens[i], i++) {
        bat[i] = at;
        bc_batch(batches + at, blens[i], (int64_t)i * 10, (uint8_t)i);
    }
    static const char plain[] = "not record batches at all, only bytes";
    ow_obj_builder *ob = ow_obj_builder_new("proxy-a1", "zone-a", 1);
    ck_assert_ptr_nonnull(ob);
    ck_assert_int_eq(ow_obj_builder_add(ob, "zone-b", "orders", 0, batches, len0, NULL), OW_OK);
    ck_assert_int_eq(ow_obj_builder_add(ob, "zone-b", "orders", 1, plain, sizeof(plain), NULL), OW_OK);
    ow_chunk_info *ci;
    char *names;
    put_built(st, base, "wal/bc/1", ob, &ci, &names);
    char path[4096];
    snprintf(path, sizeof(path), "%s/wal/bc/1", dir);

    ow_range r[2] = {ci[0].range, ci[1].range};
    const uint8_t *want[2] = {batches, (const uint8_t *)plain};
    const size_t want_len[2] = {len0, sizeof(plain)};
    const int both = OW_READ_SLICE_ERRORS | OW_READ_BATCH_CRC;
    big_box b;
    ck_assert_int_eq(bc_read(st, base, r, 2, both, want, want_len, &b), OW_OK);
    ck_assert_int_eq(b.slice_err[1], OW_OK);

    /* Header bytes (base offset, length's low byte, epoch, magic) and
     * every byte of a CRC field: the slice fails. */
    static const uint64_t hdr[] = {3, 7, 11, 12, 16, 17, 18, 19, 20};
    for (size_t k = 0; k < sizeof(hdr) / sizeof(hdr[0]); k++)
        for (size_t i = 0; i < 3; i++) {
            uint64_t at = r[0].off + bat[i] + hdr[k];
            bc_flip(path, at);
            ck_assert_msg(bc_read(st, base, r, 2, both, want, want_len, &b) == OW_ECORRUPT,
                          "batch %zu byte %" PRIu64 " changed, slice accepted", i, hdr[k]);
            ck_assert_int_eq(b.slice_err[1], OW_OK);
            bc_flip(path, at);
        }
    /* A record byte: left to the broker with the flag, caught without it. */
    uint64_t rec = r[0].off + bat[2] + 5000;
    bc_flip(path, rec);
    uint8_t *changed = malloc(len0);
    ck_assert_ptr_nonnull(changed);
    memcpy(changed, batches, len0);
    changed[bat[2] + 5000] ^= 0x10;
    const uint8_t *want_changed[2] = {changed, (const uint8_t *)plain};
    ck_assert_int_eq(bc_read(st, base, r, 2, both, want_changed, want_len, &b), OW_OK);
    ck_assert_int_eq(bc_read(st, base, r, 2, OW_READ_SLICE_ERRORS, want_changed, want_len, &b), OW_ECORRUPT);
    bc_flip(path, rec);
    /* Bytes that are not record batches are read in full. */
    uint64_t pl = r[1].off + 9;
    bc_flip(path, pl);
    bc_read(st, base, r, 2, both, want, want_len, &b);
    ck_assert_int_eq(b.slice_err[0], OW_OK);
    ck_assert_int_eq(b.slice_err[1], OW_ECORRUPT);
    bc_flip(path, pl);
    ck_assert_int_eq(bc_read(st, base, r, 2, both, want, want_len, &b), OW_OK);
    ck_assert_int_eq(b.slice_err[1], OW_OK);

    free(changed);
    free(batches);
    free(ci);
    free(names);
    ow_store_free(st);
    event_base_free(base);
    ow_t_rmdir(dir);
}
END_TEST

/* OW_READ_JUST_WRITTEN: a GET answered not found or truncated is repeated
 * after 20, 40, 80, 160 and 320 ms, then the read fails naming the wait;
 * other errors fail at once, as does every error without the flag; a read
 * canceled while it waits calls nothing (and leaks nothing: ASan). */
START_TEST(reader_just_written)
{
    struct event_base *base = event_base_new();
    ow_store *st = ow_t_fake_store(base);
    ow_metrics *m = ow_store_metrics(st);
    ow_range r = {0, 5, 0};
    big_box b;

    /* Missing or short five times, then the sixth GET fails too: the read fails. */
    memset(&b, 0, sizeof(b));
    ck_assert(ow_read_ranges_opt(st, "wal/lag/1", &r, 1, OW_READ_JUST_WRITTEN, big_cb, &b) != NULL);
    for (int i = 0; i <= OW_READ_LAG_TRIES; i++) {
        ck_assert_uint_eq(ow_t_fake_npending(st), 1);
        ow_t_fake_complete(st, 0, i % 2 ? OW_ETRUNCATED : OW_ENOTFOUND);
        if (i < OW_READ_LAG_TRIES) {
            ck_assert(!b.done);
            /* The next GET starts only after the wait, and counts then. */
            ck_assert_uint_eq(ow_t_fake_npending(st), 0);
            ck_assert_uint_eq(m->read_lag_retries, (uint64_t)i);
            int never = 0;
            for (int k = 0; k < 100 && ow_t_fake_npending(st) == 0; k++)
                (void)ow_t_run_until(base, &never, 20);
            ck_assert_uint_eq(m->read_lag_retries, (uint64_t)i + 1);
        }
    }
    ck_assert(b.done);
    ck_assert_int_eq(b.err, OW_ETRUNCATED); /* the last answer's */
    ck_assert_msg(strstr(b.msg, "after 5 more reads over 620 ms: the object in the store is shorter") != NULL,
                  "%s", b.msg);
    ck_assert_uint_eq(m->read_lag_retries, OW_READ_LAG_TRIES);
    /* Only the final answer counts as the store's error. */
    ck_assert_uint_eq(m->errors[OW_ENOTFOUND], 0);
    ck_assert_uint_eq(m->errors[OW_ETRUNCATED], 1);

    /* Another error is not a lagging store: no repeat. */
    memset(&b, 0, sizeof(b));
    ck_assert(ow_read_ranges_opt(st, "wal/lag/2", &r, 1, OW_READ_JUST_WRITTEN, big_cb, &b) != NULL);
    ow_t_fake_complete(st, 0, OW_EAUTH);
    ck_assert(b.done);
    ck_assert_int_eq(b.err, OW_EAUTH);

    /* Without the flag, not found fails at once. */
    memset(&b, 0, sizeof(b));
    ck_assert(ow_read_ranges_opt(st, "wal/lag/3", &r, 1, 0, big_cb, &b) != NULL);
    ow_t_fake_complete(st, 0, OW_ENOTFOUND);
    ck_assert(b.done);
    ck_assert_int_eq(b.err, OW_ENOTFOUND);
    ck_assert_uint_eq(m->read_lag_retries, OW_READ_LAG_TRIES);

    /* Canceled during its wait: no callback, its timer gone. */
    memset(&b, 0, sizeof(b));
    ow_read *rd = ow_read_ranges_opt(st, "wal/lag/4", &r, 1, OW_READ_JUST_WRITTEN, big_cb, &b);
    ck_assert(rd != NULL);
    ow_t_fake_complete(st, 0, OW_ENOTFOUND);
    ck_assert(!b.done);
    ow_read_cancel(rd);
    int never = 0;
    ck_assert(!ow_t_run_until(base, &never, 60));
    ck_assert(!b.done);
    ck_assert_uint_eq(ow_t_fake_npending(st), 0);
    ck_assert_uint_eq(m->read_lag_retries, OW_READ_LAG_TRIES);

    ow_store_free(st);
    event_base_free(base);
}
END_TEST

/* The same on the local store with real bytes: the object's file holds its
 * first half when the read starts (a range cut short: the frame and the
 * tap's CRCs of that answer are dropped), and all of it once the first
 * repeat has started; a later GET reads it whole and the slice is right. */
START_TEST(reader_just_written_short_local)
{
    char *dir = ow_t_mkdtemp();
    struct event_base *base = event_base_new();
    ow_store *st = ow_t_local_store(base, dir);
    ow_metrics *m = ow_store_metrics(st);
    static uint8_t data[3000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    ow_obj_builder *ob = ow_obj_builder_new("proxy-1", "zone-a", 1700000000000LL);
    ck_assert_ptr_nonnull(ob);
    uint32_t crc;
    ck_assert_int_eq(ow_obj_builder_add(ob, "zone-b", "t", 0, data, sizeof(data), &crc), OW_OK);
    ow_chunk_info *ci;
    char *names;
    struct evbuffer *body = ow_obj_builder_finish(ob, &ci, &names);
    ck_assert_ptr_nonnull(body);
    ow_obj_builder_free(ob);
    size_t len = evbuffer_get_length(body);
    uint8_t *bytes = malloc(len);
    ck_assert_ptr_nonnull(bytes);
    evbuffer_remove(body, bytes, len);
    evbuffer_free(body);
    ck_assert(ci[0].range.off + ci[0].range.len > len / 2); /* the half cuts the range */

    char path[4096];
    snprintf(path, sizeof(path), "%s/wal", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/wal/lag-1", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len / 2, f), len / 2);
    fclose(f);

    big_box b = {0};
    b.want[0] = data;
    b.want_len[0] = sizeof(data);
    ck_assert(ow_read_ranges_opt(st, "wal/lag-1", &ci[0].range, 1, OW_READ_JUST_WRITTEN, big_cb, &b) != NULL);
    for (int k = 0; k < 200 && m->read_lag_retries == 0 && !b.done; k++) {
        int never = 0;
        (void)ow_t_run_until(base, &never, 2);
    }
    ck_assert_msg(!b.done, "%s", b.msg);
    ck_assert_uint_eq(m->read_lag_retries, 1);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
    ck_assert(ow_t_run_until(base, &b.done, 2000));
    ck_assert_msg(b.err == OW_OK, "%s", b.msg);
    ck_assert_uint_eq(b.n, 1);
    ck_assert(b.same);
    ck_assert(m->read_lag_retries >= 1 && m->read_lag_retries <= 2);
    ck_assert_uint_eq(m->errors[OW_ETRUNCATED], 0);

    free(bytes);
    free(ci);
    free(names);
    ow_store_free(st);
    event_base_free(base);
    ow_t_rmdir(dir);
}
END_TEST

Suite *ow_reader_suite(void)
{
    Suite *s = suite_create("ow_reader");
    TCase *tc = tcase_create("reader");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, reader_large_slices_local);
    tcase_add_test(tc, reader_batch_crc_local);
    tcase_add_test(tc, reader_just_written);
    tcase_add_test(tc, reader_just_written_short_local);
    suite_add_tcase(s, tc);
    return s;
}
