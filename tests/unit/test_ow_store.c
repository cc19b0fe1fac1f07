/* The local store, the reader and the garbage collector on a temp dir. */
#include "config.h"

#include "tests/unit/ow_test.h"

#include "codec/kc_crc32c.h"
#include "objwal/ow_format.h"
#include "objwal/ow_gc.h"
#include "objwal/ow_reader.h"
#include "objwal/ow_writer.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct res_box {
    int done;
    int err;
    char msg[1024];
    size_t body_len;
    char body[256];
    uint64_t object_size;
    size_t nentries;
    char keys[16][128];
    char next[128];
    int frame;         /* 1: res->frame held exactly the body's bytes; -1: it did not */
} res_box;

static void box_cb(const ow_result *r, void *arg)
{
    res_box *b = arg;
    b->done = 1;
    b->err = r->err;
    snprintf(b->msg, sizeof(b->msg), "%s", r->errmsg);
    if (r->body != NULL) {
        b->body_len = evbuffer_get_length(r->body);
        evbuffer_copyout(r->body, b->body, sizeof(b->body) - 1);
    }
    if (r->frame != NULL) {
        size_t n = r->body ? evbuffer_get_length(r->body) : 0;
        b->frame = r->frame->len == n && n <= sizeof(b->body) - 1 &&
                           memcmp(r->frame->data, b->body, n) == 0
                       ? 1
                       : -1;
    }
    b->object_size = r->object_size;
    b->nentries = r->nentries;
    for (size_t i = 0; i < r->nentries && i < 16; i++)
        snprintf(b->keys[i], sizeof(b->keys[i]), "%s", r->entries[i].key);
    snprintf(b->next, sizeof(b->next), "%s", r->next_token ? r->next_token : "");
}

static struct evbuffer *buf_of(const char *s)
{
    struct evbuffer *eb = evbuffer_new();
    evbuffer_add(eb, s, strlen(s));
    return eb;
}

START_TEST(local_put_get_delete_list)
{
    char *dir = ow_t_mkdtemp();
    struct event_base *base = event_base_new();
    ow_store *st = ow_t_local_store(base, dir);
    struct evbuffer *body = buf_of("0123456789");
    res_box b = {0};

    ck_assert(ow_store_put(st, "wal/ab/x1", body, box_cb, &b) != NULL);
    ck_assert_int_eq(b.done, 0); /* never from inside the call */
    ck_assert(ow_t_run_until(base, &b.done, 2000));
    ck_assert_int_eq(b.err, OW_OK);
    ck_assert_uint_eq(evbuffer_get_length(body), 10); /* not drained */

    memset(&b, 0, sizeof(b));
    ow_store_put(st, "wal/ab/x1", body, box_cb, &b);
    ow_t_run_until(base, &b.done, 2000);
    ck_assert_int_eq(b.err, OW_EEXISTS);

    memset(&b, 0, sizeof(b));
    ow_store_get(st, "wal/ab/x1", 2, 3, box_cb, &b);
    ow_t_run_until(base, &b.done, 2000);
    ck_assert_int_eq(b.err, OW_OK);
    ck_assert_uint_eq(b.body_len, 3);
    ck_assert(memcmp(b.body, "234", 3) == 0);
    ck_assert_uint_eq(b.object_size, 10);
    ck_assert_int_eq(b.frame, 1); /* read into a frame the body references */

    memset(&b, 0, sizeof(b));
    ow_store_get(st, "wal/ab/x1", -4, 0, box_cb, &b);
    ow_t_run_until(base, &b.done, 2000);
    ck_assert_uint_eq(b.body_len, 4);
    ck_assert(memcmp(b.body, "6789", 4) == 0);

    memset(&b, 0, sizeof(b));
    ow_store_get(st, "wal/ab/x1", 10, 1, box_cb, &b);
    ow_t_run_until(base, &b.done, 2000);
    ck_assert_int_eq(b.err, OW_ETRUNCATED);

    memset(&b, 0, sizeof(b));
    ow_store_get(st, "wal/ab/nope", 0, 0, box_cb, &b);
    ow_t_run_until(base, &b.done, 2000);
    ck_assert_int_eq(b.err, OW_ENOTFOUND);
    ck_assert(strstr(b.msg, "wal/ab/nope") != NULL);

    /* A few more keys, then list in pages of 2. */
    const char *keys[] = {"wal/cd/x2", "wal/ef/x3", "other/x4"};
    for (int i = 0; i < 3; i++) {
        memset(&b, 0, sizeof(b));
        ow_store_put(st, keys[i], body, box_cb, &b);
        ow_t_run_until(base, &b.done, 2000);
        ck_assert_int_eq(b.err, OW_OK);
    }
    memset(&b, 0, sizeof(b));
    ow_store_list(st, "wal/", NULL, 2, box_cb, &b);
    ow_t_run_until(base, &b.done, 2000);
    ck_assert_int_eq(b.err, OW_OK);
    ck_assert_uint_eq(b.nentries, 2);
    ck_assert_str_eq(b.keys[0], "wal/ab/x1");
    ck_assert_str_eq(b.keys[1], "wal/cd/x2");
    char tok[128];
    snprintf(tok, sizeof(tok), "%s", b.next);
    ck_assert_str_ne(tok, "");
    memset(&b, 0, sizeof(b));
    ow_store_list(st, "wal/", tok, 2, box_cb, &b);
    ow_t_run_until(base, &b.done, 2000);
    ck_assert_uint_eq(b.nentries, 1);
    ck_assert_str_eq(b.keys[0], "wal/ef/x3");
    ck_assert_str_eq(b.next, "");

    memset(&b, 0, sizeof(b));
    ow_store_delete(st, "wal/ab/x1", box_cb, &b);
    ow_t_run_until(base, &b.done, 2000);
    ck_assert_int_eq(b.err, OW_OK);
    memset(&b, 0, sizeof(b));
    ow_store_delete(st, "wal/ab/x1", box_cb, &b); /* again: still fine */
    ow_t_run_until(base, &b.done, 2000);
    ck_assert_int_eq(b.err, OW_OK);

    /* Bad keys are refused up front. */
    ck_assert(ow_store_get(st, "../etc/passwd", 0, 0, box_cb, &b) == NULL);
    ck_assert(ow_store_get(st, "/abs", 0, 0, box_cb, &b) == NULL);
    ck_assert(ow_store_put(st, "a b", body, box_cb, &b) == NULL);

    /* A canceled request never calls back. */
    memset(&b, 0, sizeof(b));
    ow_req *rq = ow_store_get(st, "wal/cd/x2", 0, 0, box_cb, &b);
    ow_req_cancel(rq);
    ow_t_run_until(base, &b.done, 50);
    ck_assert_int_eq(b.done, 0);

    ow_metrics *m = ow_store_metrics(st);
    ck_assert_uint_ge(m->put_requests, 5);
    ck_assert_uint_eq(m->errors[OW_EEXISTS], 1);
    struct evbuffer *txt = evbuffer_new();
    ck_assert_int_eq(ow_metrics_write_prometheus(m, "kz_objwal_", txt), 0);
    evbuffer_add(txt, "", 1);
    ck_assert(strstr((const char *)evbuffer_pullup(txt, -1),
                     "kz_objwal_requests_total{op=\"put\"}") != NULL);
    evbuffer_free(txt);

    evbuffer_free(body);
    ow_store_free(st);
    event_base_free(base);
    ow_t_rmdir(dir);
}
END_TEST

/* ---- writer + reader through the local store ---- */

typedef struct wr_box {
    int nsealed;
    char key[800];
    ow_range ranges[8];
    char dests[8][32];
    size_t nchunks;
    int err;
} wr_box;

static void wr_sealed(const ow_sealed *o, void *arg)
{
    wr_box *b = arg;
    b->nsealed++;
    b->err = o->err;
    snprintf(b->key, sizeof(b->key), "%s", o->key);
    b->nchunks = o->nchunks;
    for (size_t i = 0; i < o->nchunks && i < 8; i++) {
        b->ranges[i] = o->chunks[i].range;
        snprintf(b->dests[i], sizeof(b->dests[i]), "%s", o->chunks[i].dest);
    }
}

typedef struct rd_box {
    int done;
    int err;
    char msg[1024];
    size_t n;
    char data[8][64];
    char topics[8][32];
    int slice_err[8];
    kc_frame *kept;
} rd_box;

static void rd_cb(const ow_read_result *r, void *arg)
{
    rd_box *b = arg;
    b->done = 1;
    b->err = r->err;
    snprintf(b->msg, sizeof(b->msg), "%s", r->errmsg);
    b->n = r->nslices;
    for (size_t i = 0; i < r->nslices && i < 8; i++) {
        if (r->slices[i].p != NULL)
            snprintf(b->data[i], sizeof(b->data[i]), "%.*s", (int)r->slices[i].len,
                     (const char *)r->slices[i].p);
        b->slice_err[i] = r->slices[i].err;
        if (r->chunks != NULL)
            snprintf(b->topics[i], sizeof(b->topics[i]), "%s", r->chunks[i].topic);
    }
    if (r->frame != NULL)
        b->kept = kc_frame_keep(r->frame);
}

static void write_one_object(struct event_base *base, ow_store *st, wr_box *wb, ow_gc *gc)
{
    ow_writer_config cfg;
    ow_writer_config_init(&cfg);
    cfg.proxy_id = "proxy-a1";
    cfg.zone = "zone-a";
    cfg.gc = gc;
    char err[256];
    ow_writer *w = ow_writer_new(base, st, &cfg, wr_sealed, wb, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    ow_ticket t;
    ck_assert_int_eq(ow_writer_append(w, "zone-b", "orders", 0, "b-first", 7, &t), OW_OK);
    ck_assert_uint_eq(t.seq, 1);
    ck_assert_uint_eq(t.chunk, 0);
    ck_assert_int_eq(ow_writer_append(w, "zone-c", "orders", 1, "c-only", 6, &t), OW_OK);
    struct evbuffer *eb = buf_of("b-second");
    ck_assert_int_eq(ow_writer_append_evbuffer(w, "zone-b", "payments", 2, eb, NULL, &t), OW_OK);
    ck_assert_uint_eq(evbuffer_get_length(eb), 0);
    evbuffer_free(eb);
    ck_assert_uint_eq(t.chunk, 2);
    ow_writer_flush(w);
    ck_assert(ow_t_run_until(base, &wb->nsealed, 3000));
    ck_assert_int_eq(wb->err, OW_OK);
    ck_assert_uint_eq(ow_writer_pending(w), 0);
    ow_writer_free(w);
}

START_TEST(writer_reader_local)
{
    char *dir = ow_t_mkdtemp();
    struct event_base *base = event_base_new();
    ow_store *st = ow_t_local_store(base, dir);
    wr_box wb = {0};
    write_one_object(base, st, &wb, NULL);
    ck_assert_uint_eq(wb.nchunks, 3);
    ck_assert(strncmp(wb.key, "wal/", 4) == 0);
    ck_assert(strstr(wb.key, "/zone-a/proxy-a1/") != NULL);

    /* The ranges the RPC would carry: zone-b's two chunks. */
    ow_range rb[2] = {wb.ranges[0], wb.ranges[2]};
    rd_box rb_box = {0};
    ck_assert(ow_read_ranges(st, wb.key, rb, 2, rd_cb, &rb_box) != NULL);
    ck_assert(ow_t_run_until(base, &rb_box.done, 2000));
    ck_assert_msg(rb_box.err == OW_OK, "%s", rb_box.msg);
    ck_assert_uint_eq(rb_box.n, 2);
    ck_assert_str_eq(rb_box.data[0], "b-first");
    ck_assert_str_eq(rb_box.data[1], "b-second");
    /* The frame was kept past the callback. */
    ck_assert(rb_box.kept != NULL);
    kc_frame_release(rb_box.kept);

    /* Through the index. */
    rd_box db = {0};
    ck_assert(ow_read_dest(st, wb.key, "zone-b", rd_cb, &db) != NULL);
    ck_assert(ow_t_run_until(base, &db.done, 2000));
    ck_assert_msg(db.err == OW_OK, "%s", db.msg);
    ck_assert_uint_eq(db.n, 2);
    ck_assert_str_eq(db.data[1], "b-second");
    ck_assert_str_eq(db.topics[1], "payments");
    kc_frame_release(db.kept);

    rd_box none = {0};
    ow_read_dest(st, wb.key, "zone-z", rd_cb, &none);
    ow_t_run_until(base, &none.done, 2000);
    ck_assert_int_eq(none.err, OW_ENOTFOUND);

    /* Corrupt one byte of zone-c's chunk on disk: its read fails, zone-b's
     * still succeeds. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, wb.key);
    FILE *f = fopen(path, "r+b");
    ck_assert(f != NULL);
    fseek(f, (long)wb.ranges[1].off + 2, SEEK_SET);
    fputc('X', f);
    fclose(f);
    rd_box cb = {0};
    ow_read_ranges(st, wb.key, &wb.ranges[1], 1, rd_cb, &cb);
    ow_t_run_until(base, &cb.done, 2000);
    ck_assert_int_eq(cb.err, OW_ECORRUPT);
    ck_assert(cb.kept == NULL);
    ck_assert(strstr(cb.msg, "CRC32C") != NULL);
    rd_box ok = {0};
    ow_read_ranges(st, wb.key, rb, 2, rd_cb, &ok);
    ow_t_run_until(base, &ok.done, 2000);
    ck_assert_int_eq(ok.err, OW_OK);
    kc_frame_release(ok.kept);
    /* With OW_READ_SLICE_ERRORS the damaged range is reported in its slice
     * and the other one is handed on. */
    rd_box each = {0};
    ow_read_ranges_opt(st, wb.key, wb.ranges, 2, OW_READ_SLICE_ERRORS, rd_cb, &each);
    ow_t_run_until(base, &each.done, 2000);
    ck_assert_int_eq(each.err, OW_OK);
    ck_assert_uint_eq(each.n, 2);
    ck_assert_int_eq(each.slice_err[0], OW_OK);
    ck_assert_int_eq(each.slice_err[1], OW_ECORRUPT);
    ck_assert_str_eq(each.data[0], "b-first");
    ck_assert_str_eq(each.data[1], ""); /* no bytes handed on for it */
    kc_frame_release(each.kept);

    /* Truncate the object inside zone-c's chunk. */
    ck_assert_int_eq(truncate(path, (off_t)wb.ranges[1].off + 3), 0);
    rd_box tb = {0};
    ow_read_ranges(st, wb.key, &wb.ranges[1], 1, rd_cb, &tb);
    ow_t_run_until(base, &tb.done, 2000);
    ck_assert_int_eq(tb.err, OW_ETRUNCATED);
    /* A range cut short fails the whole read even with slice errors. */
    rd_box tbe = {0};
    ow_read_ranges_opt(st, wb.key, wb.ranges, 2, OW_READ_SLICE_ERRORS, rd_cb, &tbe);
    ow_t_run_until(base, &tbe.done, 2000);
    ck_assert_int_eq(tbe.err, OW_ETRUNCATED);
    rd_box tdb = {0};
    ow_read_dest(st, wb.key, "zone-b", rd_cb, &tdb);
    ow_t_run_until(base, &tdb.done, 2000);
    ck_assert_msg(tdb.err == OW_ECORRUPT || tdb.err == OW_ETRUNCATED, "%s", tdb.msg);

    rd_box nf = {0};
    ow_read_ranges(st, "wal/none", rb, 1, rd_cb, &nf);
    ow_t_run_until(base, &nf.done, 2000);
    ck_assert_int_eq(nf.err, OW_ENOTFOUND);

    ow_store_free(st);
    event_base_free(base);
    ow_t_rmdir(dir);
}
END_TEST

typedef struct sw_box {
    int done;
    ow_sweep_result r;
} sw_box;

static void sw_cb(const ow_sweep_result *r, void *arg)
{
    sw_box *b = arg;
    b->done = 1;
    b->r = *r;
}

START_TEST(gc_confirm_and_sweep)
{
    char *dir = ow_t_mkdtemp();
    struct event_base *base = event_base_new();
    ow_store *st = ow_t_local_store(base, dir);
    ow_gc_config gcfg;
    ow_gc_config_init(&gcfg);
    char err[256];
    ow_gc *gc = ow_gc_new(base, st, &gcfg, err, sizeof(err));
    ck_assert_msg(gc != NULL, "%s", err);

    wr_box wb = {0};
    write_one_object(base, st, &wb, gc);
    ck_assert_uint_eq(ow_gc_tracked(gc), 1);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, wb.key);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);

    ck_assert_int_eq(ow_gc_confirm(gc, wb.key, "zone-b"), OW_OK);
    ck_assert_int_eq(ow_gc_confirm(gc, wb.key, "zone-b"), OW_ENOTFOUND); /* twice */
    ck_assert_int_eq(ow_gc_confirm(gc, wb.key, "zone-q"), OW_ENOTFOUND);
    ck_assert_int_eq(stat(path, &sb), 0); /* zone-c has not confirmed */
    ck_assert_int_eq(ow_gc_confirm(gc, wb.key, "zone-c"), OW_OK);
    ck_assert_uint_eq(ow_gc_tracked(gc), 0);
    int gone = 0;
    for (int i = 0; i < 100 && !gone; i++) {
        int never = 0;
        ow_t_run_until(base, &never, 10);
        gone = stat(path, &sb) != 0;
    }
    ck_assert_msg(gone, "object not deleted after every destination confirmed");
    ck_assert_uint_eq(ow_store_metrics(st)->objects_gc_deleted, 1);

    /* Two objects left behind (nobody confirms): the sweeper takes them
     * once they are older than max_age, and leaves younger ones. */
    wr_box w2 = {0}, w3 = {0};
    write_one_object(base, st, &w2, gc);
    write_one_object(base, st, &w3, NULL);
    ck_assert_uint_eq(ow_gc_tracked(gc), 1);
    sw_box sw = {0};
    ck_assert_int_eq(ow_gc_sweep(gc, 0, sw_cb, &sw), OW_OK);
    ck_assert_int_eq(ow_gc_sweep(gc, 0, sw_cb, &sw), OW_EAGAIN);
    ck_assert(ow_t_run_until(base, &sw.done, 2000));
    ck_assert_int_eq(sw.r.err, OW_OK);
    ck_assert_uint_eq(sw.r.listed, 2);
    ck_assert_uint_eq(sw.r.deleted, 0);
    memset(&sw, 0, sizeof(sw));
    int64_t later = (int64_t)time(NULL) * 1000 + 2 * 3600 * 1000;
    ck_assert_int_eq(ow_gc_sweep(gc, later, sw_cb, &sw), OW_OK);
    ck_assert(ow_t_run_until(base, &sw.done, 2000));
    ck_assert_int_eq(sw.r.err, OW_OK);
    ck_assert_uint_eq(sw.r.deleted, 2);
    ck_assert_uint_eq(ow_gc_tracked(gc), 0);
    snprintf(path, sizeof(path), "%s/%s", dir, w3.key);
    ck_assert_int_ne(stat(path, &sb), 0);

    ow_gc_free(gc);
    ow_store_free(st);
    event_base_free(base);
    ow_t_rmdir(dir);
}
END_TEST


/* A symbolic link to a directory planted inside the root (a component
 * before the last) is refused on GET, PUT and DELETE, and LIST neither
 * follows nor lists it: nothing outside the root is read, written or
 * removed. */
START_TEST(local_symlinked_dir)
{
    char *dir = ow_t_mkdtemp(), *out = ow_t_mkdtemp();
    struct event_base *base = event_base_new();
    ow_store *st = ow_t_local_store(base, dir);
    char p[4096], q[4096];
    snprintf(p, sizeof(p), "%s/secret", out);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("outside", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/wal", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/wal/link", dir);
    ck_assert_int_eq(symlink(out, p), 0);
    snprintf(p, sizeof(p), "%s/top", dir);
    ck_assert_int_eq(symlink(out, p), 0);
    struct evbuffer *body = buf_of("planted");
    const char *gets[] = {"wal/link/secret", "top/secret"};
    for (int i = 0; i < 2; i++) {
        res_box b = {0};
        ck_assert(ow_store_get(st, gets[i], 0, 0, box_cb, &b) != NULL);
        ck_assert(ow_t_run_until(base, &b.done, 2000));
        ck_assert_msg(b.err == OW_EINVAL, "GET %s: err %d (%s)", gets[i], b.err, b.msg);
        ck_assert_uint_eq(b.body_len, 0);
        ck_assert(strstr(b.msg, "symbolic link") != NULL);
    }
    res_box b = {0};
    ck_assert(ow_store_put(st, "wal/link/new", body, box_cb, &b) != NULL);
    ck_assert(ow_t_run_until(base, &b.done, 2000));
    ck_assert_msg(b.err == OW_EINVAL, "PUT: err %d (%s)", b.err, b.msg);
    snprintf(q, sizeof(q), "%s/new", out);
    ck_assert_int_eq(access(q, F_OK), -1);
    /* A deeper path through the link: not created outside either. */
    memset(&b, 0, sizeof(b));
    ow_store_put(st, "top/sub/new", body, box_cb, &b);
    ck_assert(ow_t_run_until(base, &b.done, 2000));
    ck_assert_int_eq(b.err, OW_EINVAL);
    snprintf(q, sizeof(q), "%s/sub", out);
    ck_assert_int_eq(access(q, F_OK), -1);
    memset(&b, 0, sizeof(b));
    ow_store_delete(st, "wal/link/secret", box_cb, &b);
    ck_assert(ow_t_run_until(base, &b.done, 2000));
    ck_assert_msg(b.err == OW_EINVAL, "DELETE: err %d (%s)", b.err, b.msg);
    snprintf(q, sizeof(q), "%s/secret", out);
    ck_assert_int_eq(access(q, F_OK), 0);
    /* LIST does not go through the links. */
    memset(&b, 0, sizeof(b));
    ow_store_list(st, "", NULL, 100, box_cb, &b);
    ck_assert(ow_t_run_until(base, &b.done, 2000));
    ck_assert_int_eq(b.err, OW_OK);
    ck_assert_uint_eq(b.nentries, 0);
    /* A real directory beside them still works, and the leaf link rule holds. */
    memset(&b, 0, sizeof(b));
    ow_store_put(st, "wal/real/x", body, box_cb, &b);
    ck_assert(ow_t_run_until(base, &b.done, 2000));
    ck_assert_int_eq(b.err, OW_OK);
    snprintf(p, sizeof(p), "%s/wal/real/leaf", dir);
    ck_assert_int_eq(symlink(q, p), 0);
    memset(&b, 0, sizeof(b));
    ow_store_get(st, "wal/real/leaf", 0, 0, box_cb, &b);
    ck_assert(ow_t_run_until(base, &b.done, 2000));
    ck_assert_int_eq(b.err, OW_EINVAL);
    memset(&b, 0, sizeof(b));
    ow_store_get(st, "wal/real/x", 0, 0, box_cb, &b);
    ck_assert(ow_t_run_until(base, &b.done, 2000));
    ck_assert_int_eq(b.err, OW_OK);
    ck_assert_uint_eq(b.body_len, 7);
    evbuffer_free(body);
    ow_store_free(st);
    event_base_free(base);
    ow_t_rmdir(dir);
    ow_t_rmdir(out);
}
END_TEST

/* A session token longer than the store sends is refused at setup with a
 * clear message (it used to be cut short in the header line). */
START_TEST(s3_long_token_refused)
{
    struct event_base *base = event_base_new();
    char *tok = malloc(OW_S3_MAX_TOKEN + 2);
    memset(tok, 'A', OW_S3_MAX_TOKEN + 1);
    tok[OW_S3_MAX_TOKEN + 1] = '\0';
    ow_store_config cfg;
    ow_store_config_init(&cfg);
    cfg.backend = OW_BACKEND_S3;
    cfg.s3.bucket = "b";
    cfg.s3.endpoint = "http://127.0.0.1:9";
    cfg.s3.path_style = 1;
    cfg.s3.access_key = "AKIDEXAMPLE";
    cfg.s3.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    cfg.s3.session_token = tok;
    char err[512] = "";
    ck_assert_ptr_null(ow_store_new(base, &cfg, err, sizeof(err)));
    ck_assert_msg(strstr(err, "session token") != NULL && strstr(err, "4097 bytes") != NULL, "%s", err);
    tok[OW_S3_MAX_TOKEN] = '\0'; /* exactly the limit: accepted */
    ow_store *st = ow_store_new(base, &cfg, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    ow_store_free(st);
    free(tok);
    event_base_free(base);
}
END_TEST

Suite *ow_store_suite(void)
{
    Suite *s = suite_create("ow_store");
    TCase *tc = tcase_create("local");
    tcase_add_test(tc, local_put_get_delete_list);
    tcase_add_test(tc, writer_reader_local);
    tcase_add_test(tc, gc_confirm_and_sweep);
    tcase_add_test(tc, local_symlinked_dir);
    tcase_add_test(tc, s3_long_token_refused);
    suite_add_tcase(s, tc);
    return s;
}
