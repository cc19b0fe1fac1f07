/* Check runner and shared helpers for the objwal unit tests. */
#include "config.h"

#include "tests/unit/ow_test.h"

#include "objwal/ow_format.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

char *ow_t_mkdtemp(void)
{
    const char *tmp = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/ow_test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    char *d = mkdtemp(buf);
    ck_assert_msg(d != NULL, "mkdtemp failed");
    return strdup(d);
}

static int ow_t_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

void ow_t_rmdir(char *dir)
{
    if (dir == NULL)
        return;
    nftw(dir, ow_t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static void ow_t_tick(evutil_socket_t fd, short what, void *arg)
{
}

int ow_t_run_until(struct event_base *base, const int *flag, int timeout_ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* A periodic timer so the loop never blocks past the deadline. */
    struct event *tick = event_new(base, -1, EV_PERSIST, ow_t_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    while (!*flag) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms > timeout_ms)
            break;
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(tick);
    return *flag;
}

ow_store *ow_t_local_store(struct event_base *base, const char *dir)
{
    ow_store_config cfg;
    ow_store_config_init(&cfg);
    cfg.backend = OW_BACKEND_LOCAL;
    cfg.local.root = dir;
    cfg.local.no_fsync = 1;
    char err[256];
    ow_store *st = ow_store_new(base, &cfg, err, sizeof(err));
    ck_assert_msg(st != NULL, "local store: %s", err);
    return st;
}

/* ---- fake store ---- */

typedef struct ow_t_fake {
    ow_req *reqs[256];
    size_t n;
} ow_t_fake;

static int ow_t_fake_start(ow_store *st, ow_req *req)
{
    ow_t_fake *f = st->impl;
    if (f->n == 256)
        return OW_ENOMEM;
    f->reqs[f->n++] = req;
    return OW_OK;
}

static void ow_t_fake_forget(ow_t_fake *f, ow_req *req)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->reqs[i] == req) {
            memmove(&f->reqs[i], &f->reqs[i + 1], (f->n - i - 1) * sizeof(f->reqs[0]));
            f->n--;
            return;
        }
    }
}

static void ow_t_fake_cancel(ow_store *st, ow_req *req)
{
    ow_t_fake_forget(st->impl, req);
}

static void ow_t_fake_destroy(ow_store *st)
{
    free(st->impl);
}

static const ow_store_ops ow_t_fake_ops = {
    .req_size = sizeof(ow_req),
    .start = ow_t_fake_start,
    .cancel = ow_t_fake_cancel,
    .destroy = ow_t_fake_destroy,
};

ow_store *ow_t_fake_store(struct event_base *base)
{
    ow_store *st = calloc(1, sizeof(*st));
    ck_assert(st != NULL);
    st->base = base;
    ow_metrics_init(&st->metrics);
    st->ops = &ow_t_fake_ops;
    st->impl = calloc(1, sizeof(ow_t_fake));
    snprintf(st->desc, sizeof(st->desc), "fake");
    return st;
}

size_t ow_t_fake_npending(ow_store *st)
{
    return ((ow_t_fake *)st->impl)->n;
}

struct evbuffer *ow_t_fake_body(ow_store *st, size_t i)
{
    ow_t_fake *f = st->impl;
    ck_assert(i < f->n);
    return f->reqs[i]->body;
}

void ow_t_fake_complete(ow_store *st, size_t i, int err)
{
    ow_t_fake *f = st->impl;
    ck_assert(i < f->n);
    ow_req *req = f->reqs[i];
    ow_t_fake_forget(f, req);
    ow_result res = {.err = err, .errmsg = err ? "fake failure" : "", .attempts = 1};
    ow_req_complete(req, &res);
}

uint8_t *ow_t_small_object(size_t *len)
{
    ow_obj_builder *b = ow_obj_builder_new("proxy-1", "zone-a", 1700000000000LL);
    ck_assert(b != NULL);
    uint32_t c;
    ck_assert_int_eq(ow_obj_builder_add(b, "zone-b", "t1", 0, "hello", 5, &c), OW_OK);
    ck_assert_int_eq(ow_obj_builder_add(b, "zone-c", "t2", 3, "world!", 6, &c), OW_OK);
    ck_assert_int_eq(ow_obj_builder_add(b, "zone-b", "t1", 1, "again", 5, &c), OW_OK);
    ow_chunk_info *ci;
    char *names;
    struct evbuffer *eb = ow_obj_builder_finish(b, &ci, &names);
    ck_assert(eb != NULL);
    ow_obj_builder_free(b);
    *len = evbuffer_get_length(eb);
    uint8_t *p = malloc(*len);
    evbuffer_remove(eb, p, *len);
    evbuffer_free(eb);
    free(ci);
    free(names);
    return p;
}

int main(void)
{
    SRunner *sr = srunner_create(ow_format_suite());
    srunner_add_suite(sr, ow_sigv4_suite());
    srunner_add_suite(sr, ow_store_suite());
    srunner_add_suite(sr, ow_reader_suite());
    srunner_add_suite(sr, ow_writer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
