/*
 * ow_s3_tool: drives objwal against a real object store for the integration
 * tests (tests/integration/test_objwal_*.py start the servers and run it).
 *
 *   ow_s3_tool roundtrip [store options]
 *       Write a few hundred chunks for three destinations through the
 *       batching writer (several uploads in flight), check the objects come
 *       back in seal order, read every destination's slice back by ranges
 *       and through the index, list them, confirm them to the GC and check
 *       they are deleted.
 *   ow_s3_tool put [store options] --expect CLASS
 *       Write one object and read it back; print the outcome
 *       ("result err=CLASS retries=N ms=T msg=...") and exit 0 when the
 *       error class is CLASS ("ok", "auth", "timeout"...).
 *
 * Store options: --local DIR | --endpoint URL --bucket B [--vhost] [--unsigned-payload]
 *   [--access-key K --secret-key S] [--region R] [--deadline-ms N]
 *   [--attempt-ms N] [--backoff-ms N] [--sse AES256|aws:kms] [--sse-kms-key-id ID] [--ca-file PEM]
 */
#include "config.h"

#include "objwal/ow_format.h"
#include "objwal/ow_gc.h"
#include "objwal/ow_reader.h"
#include "objwal/ow_store.h"
#include "objwal/ow_writer.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "ow_s3_tool: " __VA_ARGS__);                                               \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

static struct event_base *base;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Run the loop until *flag or timeout_ms. */
static int run_until(const int *flag, long timeout_ms)
{
    long t0 = now_ms();
    struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
    struct timeval tv = {0, 20000};
    event_add(t, &tv);
    while (!*flag && now_ms() - t0 < timeout_ms)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *flag;
}

/* ---- the chunks written, to check what comes back ---- */

#define NCHUNKS 300
#define NDESTS 3
static const char *dests[NDESTS] = {"zone-b", "zone-c", "zone-d"};

typedef struct chunk {
    int dest;
    int32_t partition;
    uint8_t *data;
    size_t len;
    ow_ticket t;
} chunk;

typedef struct object {
    uint64_t seq;
    char key[800];
    int err;
    size_t nchunks;
    ow_chunk_info *ci; /* copied, names point into dests[] */
} object;

static chunk chunks[NCHUNKS];
static object objects[NCHUNKS];
static int nobjects;
static int sealed_errors;
static char last_err[2048];
static int last_err_class = -1;

static void on_sealed(const ow_sealed *o, void *arg)
{
    object *ob = &objects[nobjects++];
    ob->seq = o->seq;
    ob->err = o->err;
    snprintf(ob->key, sizeof(ob->key), "%s", o->key);
    ob->nchunks = o->nchunks;
    ob->ci = calloc(o->nchunks ? o->nchunks : 1, sizeof(*ob->ci));
    for (size_t i = 0; i < o->nchunks; i++) {
        ob->ci[i] = o->chunks[i];
        for (int d = 0; d < NDESTS; d++)
            if (strcmp(o->chunks[i].dest, dests[d]) == 0)
                ob->ci[i].dest = dests[d];
        ob->ci[i].topic = "orders";
    }
    if (o->err != OW_OK) {
        sealed_errors++;
        last_err_class = o->err;
        snprintf(last_err, sizeof(last_err), "%s", o->errmsg);
    } else if (last_err_class < 0) {
        last_err_class = OW_OK;
    }
}

typedef struct read_box {
    int done;
    int err;
    char msg[1024];
    size_t n;
    kc_frame *frame;
    ow_slice slices[NCHUNKS];
} read_box;

static void on_read(const ow_read_result *r, void *arg)
{
    read_box *b = arg;
    b->done = 1;
    b->err = r->err;
    snprintf(b->msg, sizeof(b->msg), "%s", r->errmsg);
    b->n = r->nslices;
    if (r->err == OW_OK) {
        b->frame = kc_frame_keep(r->frame);
        memcpy(b->slices, r->slices, r->nslices * sizeof(*r->slices));
    }
}

typedef struct store_box {
    int done;
    int err;
    char msg[1024];
    size_t nentries;
    int has_next;
    int frame; /* GET: 1 if res->frame held exactly the body's bytes, -1 if not, 0 none */
} store_box;

static void on_store(const ow_result *r, void *arg)
{
    store_box *b = arg;
    b->done = 1;
    b->err = r->err;
    snprintf(b->msg, sizeof(b->msg), "%s", r->errmsg);
    b->nentries = r->nentries;
    b->has_next = r->next_token != NULL;
    if (r->frame != NULL && r->body != NULL) {
        size_t n = evbuffer_get_length(r->body);
        const uint8_t *p = n ? evbuffer_pullup(r->body, -1) : NULL;
        b->frame = r->frame->len == n && (n == 0 || memcmp(r->frame->data, p, n) == 0) ? 1 : -1;
    }
}

/* ---- options ---- */

static ow_store_config scfg;
static const char *expect = "ok";
static char prefix[64];

static void parse_args(int argc, char **argv)
{
    ow_store_config_init(&scfg);
    scfg.backend = OW_BACKEND_S3;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--vhost") == 0) {
            scfg.s3.path_style = 0;
            continue;
        }
        if (strcmp(a, "--unsigned-payload") == 0) {
            scfg.s3.unsigned_payload = 1;
            continue;
        }
        if (v == NULL)
            DIE("%s needs a value", a);
        i++;
        if (strcmp(a, "--local") == 0) {
            scfg.backend = OW_BACKEND_LOCAL;
            scfg.local.root = v;
        } else if (strcmp(a, "--endpoint") == 0) {
            scfg.s3.endpoint = v;
        } else if (strcmp(a, "--bucket") == 0) {
            scfg.s3.bucket = v;
        } else if (strcmp(a, "--access-key") == 0) {
            scfg.s3.access_key = v;
        } else if (strcmp(a, "--secret-key") == 0) {
            scfg.s3.secret_key = v;
        } else if (strcmp(a, "--region") == 0) {
            scfg.s3.region = v;
        } else if (strcmp(a, "--deadline-ms") == 0) {
            scfg.s3.deadline_ms = (uint32_t)atoi(v);
        } else if (strcmp(a, "--attempt-ms") == 0) {
            scfg.s3.attempt_timeout_ms = (uint32_t)atoi(v);
        } else if (strcmp(a, "--backoff-ms") == 0) {
            scfg.s3.backoff_base_ms = (uint32_t)atoi(v);
            scfg.s3.backoff_max_ms = (uint32_t)atoi(v) * 8;
        } else if (strcmp(a, "--sse") == 0) {
            scfg.s3.sse = v;
        } else if (strcmp(a, "--sse-kms-key-id") == 0) {
            scfg.s3.sse_kms_key_id = v;
        } else if (strcmp(a, "--ca-file") == 0) {
            scfg.s3.ca_file = v;
        } else if (strcmp(a, "--expect") == 0) {
            expect = v;
        } else {
            DIE("unknown option %s", a);
        }
    }
    /* A prefix of our own, so runs sharing a bucket do not see each other. */
    snprintf(prefix, sizeof(prefix), "wal-%ld-%ld/", (long)time(NULL) % 100000, now_ms() % 100000);
}

static void fill(chunk *c, int i)
{
    c->dest = i % NDESTS;
    c->partition = i % 7;
    c->len = 100 + (size_t)(i * 7919) % 3000;
    c->data = malloc(c->len);
    for (size_t k = 0; k < c->len; k++)
        c->data[k] = (uint8_t)(i * 31 + k);
}

static void on_room(void *arg)
{
    *(int *)arg = 1;
}

/* Wait until the writer has reported everything sealed. */
static void drain(ow_writer *w, long timeout_ms)
{
    ow_writer_flush(w);
    long t0 = now_ms();
    while (ow_writer_pending(w) > 0 && now_ms() - t0 < timeout_ms) {
        int never = 0;
        run_until(&never, 20);
    }
    if (ow_writer_pending(w) > 0)
        DIE("%zu objects still not reported after %ld ms", ow_writer_pending(w), timeout_ms);
}

static int roundtrip(ow_store *st)
{
    char err[512];
    ow_gc_config gcfg;
    ow_gc_config_init(&gcfg);
    gcfg.prefix = prefix;
    ow_gc *gc = ow_gc_new(base, st, &gcfg, err, sizeof(err));
    if (gc == NULL)
        DIE("%s", err);
    ow_writer_config wcfg;
    ow_writer_config_init(&wcfg);
    wcfg.proxy_id = "proxy-a1";
    wcfg.zone = "zone-a";
    wcfg.seal_bytes = 64 * 1024;
    wcfg.seal_age_ms = 50;
    wcfg.max_inflight = 4;
    wcfg.mem_cap = 256 * 1024;
    wcfg.key_prefix = prefix;
    wcfg.gc = gc;
    ow_writer *w = ow_writer_new(base, st, &wcfg, on_sealed, NULL, err, sizeof(err));
    if (w == NULL)
        DIE("%s", err);

    long t0 = now_ms();
    int waits = 0;
    for (int i = 0; i < NCHUNKS; i++) {
        chunk *c = &chunks[i];
        fill(c, i);
        int rc;
        /* Backpressure: on EAGAIN run the loop until the writer has room. */
        while ((rc = ow_writer_append(w, dests[c->dest], "orders", c->partition, c->data, c->len,
                                      &c->t)) == OW_EAGAIN) {
            int room = 0;
            waits++;
            ow_writer_wait_room(w, on_room, &room);
            if (!run_until(&room, 30000))
                DIE("no room in the writer after 30 s");
        }
        if (rc != OW_OK)
            DIE("append %d: %s", i, ow_err_name(rc));
    }
    drain(w, 20000);
    long wrote_ms = now_ms() - t0;
    if (sealed_errors > 0)
        DIE("%d objects failed: %s", sealed_errors, last_err);
    for (int i = 0; i < nobjects; i++)
        if (objects[i].seq != (uint64_t)i + 1)
            DIE("object %d reported with seq %" PRIu64 ": out of seal order", i, objects[i].seq);
    printf("roundtrip: %d chunks in %d objects written in %ld ms (%d backpressure waits)\n",
           NCHUNKS, nobjects, wrote_ms, waits);

    /* Every destination's slice of every object, by the ranges the RPC
     * would carry: one GET each, verified. */
    int reads = 0;
    for (int o = 0; o < nobjects; o++) {
        object *ob = &objects[o];
        for (int d = 0; d < NDESTS; d++) {
            ow_range rg[NCHUNKS];
            size_t idx[NCHUNKS], n = 0;
            for (size_t k = 0; k < ob->nchunks; k++)
                if (ob->ci[k].dest == dests[d]) {
                    idx[n] = k;
                    rg[n++] = ob->ci[k].range;
                }
            if (n == 0)
                continue;
            read_box rb = {0};
            if (ow_read_ranges(st, ob->key, rg, n, on_read, &rb) == NULL)
                DIE("read_ranges refused");
            if (!run_until(&rb.done, 10000))
                DIE("read of %s timed out", ob->key);
            if (rb.err != OW_OK)
                DIE("read of %s for %s: %s", ob->key, dests[d], rb.msg);
            for (size_t k = 0; k < n; k++) {
                /* Find the chunk this was: same object seq and chunk index. */
                const chunk *c = NULL;
                for (int i = 0; i < NCHUNKS; i++)
                    if (chunks[i].t.seq == ob->seq && chunks[i].t.chunk == idx[k])
                        c = &chunks[i];
                if (c == NULL || rb.slices[k].len != c->len ||
                    memcmp(rb.slices[k].p, c->data, c->len) != 0)
                    DIE("object %s, %s chunk %zu: bytes differ from what was written", ob->key,
                        dests[d], idx[k]);
            }
            kc_frame_release(rb.frame);
            reads++;
        }
    }
    /* Through the index, for the first object. */
    read_box db = {0};
    ow_read_dest(st, objects[0].key, "zone-c", on_read, &db);
    run_until(&db.done, 10000);
    if (db.err != OW_OK)
        DIE("read_dest: %s", db.msg);
    kc_frame_release(db.frame);
    printf("roundtrip: %d slices read back and verified, index read ok (%zu chunks)\n", reads,
           db.n);

    /* A ranged GET's body comes in a frame (the reader keeps it, no copy). */
    store_box fb = {0};
    ow_store_get(st, objects[0].key, 1, 100, on_store, &fb);
    run_until(&fb.done, 10000);
    if (fb.err != OW_OK || fb.frame < 0)
        DIE("ranged GET: %s, frame %d", fb.msg, fb.frame);
    printf("roundtrip: ranged GET body in a frame: %s\n", fb.frame ? "yes" : "no");

    store_box lb = {0};
    ow_store_list(st, prefix, NULL, 1000, on_store, &lb);
    run_until(&lb.done, 10000);
    if (lb.err != OW_OK || lb.nentries != (size_t)nobjects)
        DIE("list: %s, %zu keys, expected %d", lb.msg, lb.nentries, nobjects);

    /* Every destination confirms: the GC deletes every object. */
    for (int o = 0; o < nobjects; o++)
        for (int d = 0; d < NDESTS; d++)
            ow_gc_confirm(gc, objects[o].key, dests[d]);
    if (ow_gc_tracked(gc) != 0)
        DIE("%zu objects still tracked after every confirmation", ow_gc_tracked(gc));
    ow_metrics *m = ow_store_metrics(st);
    long t1 = now_ms();
    while (m->objects_gc_deleted < (uint64_t)nobjects && now_ms() - t1 < 10000) {
        int never = 0;
        run_until(&never, 20);
    }
    memset(&lb, 0, sizeof(lb));
    ow_store_list(st, prefix, NULL, 1000, on_store, &lb);
    run_until(&lb.done, 10000);
    if (lb.err != OW_OK || lb.nentries != 0)
        DIE("after GC: %s, %zu keys left", lb.msg, lb.nentries);
    store_box gb = {0};
    ow_store_get(st, objects[0].key, 0, 10, on_store, &gb);
    run_until(&gb.done, 10000);
    if (gb.err != OW_ENOTFOUND)
        DIE("GET of a deleted object: %s (%s)", ow_err_name(gb.err), gb.msg);
    printf("roundtrip: %" PRIu64 " objects deleted by GC; puts=%" PRIu64 " gets=%" PRIu64
           " deletes=%" PRIu64 " bytes_up=%" PRIu64 " bytes_down=%" PRIu64 " retries=%" PRIu64
           "\n",
           m->objects_gc_deleted, m->put_requests, m->get_requests, m->delete_requests,
           m->bytes_up, m->bytes_down, m->retries);
    struct evbuffer *txt = evbuffer_new();
    ow_metrics_write_prometheus(m, "kz_objwal_", txt);
    if (evbuffer_get_length(txt) == 0)
        DIE("no metrics text");
    evbuffer_free(txt);
    ow_writer_free(w);
    ow_gc_free(gc);
    return 0;
}

static int put_one(ow_store *st)
{
    char err[512];
    ow_writer_config wcfg;
    ow_writer_config_init(&wcfg);
    wcfg.proxy_id = "proxy-a1";
    wcfg.zone = "zone-a";
    wcfg.key_prefix = prefix;
    ow_writer *w = ow_writer_new(base, st, &wcfg, on_sealed, NULL, err, sizeof(err));
    if (w == NULL)
        DIE("%s", err);
    chunk *c = &chunks[0];
    fill(c, 1);
    if (ow_writer_append(w, "zone-b", "orders", 0, c->data, c->len, &c->t) != OW_OK)
        DIE("append failed");
    long t0 = now_ms();
    drain(w, 120000);
    long ms = now_ms() - t0;
    int cls = last_err_class;
    const char *msg = last_err;
    read_box rb = {0};
    if (cls == OW_OK) {
        /* Read it back: through the same faults. */
        ow_range r = objects[0].ci[0].range;
        ow_read_ranges_opt(st, objects[0].key, &r, 1, OW_READ_JUST_WRITTEN, on_read, &rb);
        run_until(&rb.done, 120000);
        if (rb.err != OW_OK) {
            cls = rb.err;
            msg = rb.msg;
        } else if (rb.slices[0].len != c->len || memcmp(rb.slices[0].p, c->data, c->len) != 0) {
            DIE("read back different bytes");
        }
        if (rb.frame)
            kc_frame_release(rb.frame);
    }
    ow_metrics *m = ow_store_metrics(st);
    printf("result err=%s retries=%" PRIu64 " puts=%" PRIu64 " read_lag_retries=%" PRIu64 " ms=%ld msg=%s\n",
           ow_err_name(cls), m->retries, m->put_requests, m->read_lag_retries, ms, msg);
    ow_writer_free(w);
    return strcmp(ow_err_name(cls), expect) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        DIE("usage: ow_s3_tool roundtrip|put [options]");
    parse_args(argc, argv);
    base = event_base_new();
    char err[512];
    ow_store *st = ow_store_new(base, &scfg, err, sizeof(err));
    if (st == NULL)
        DIE("%s", err);
    printf("store: %s\n", ow_store_describe(st));
    int rc;
    if (strcmp(argv[1], "roundtrip") == 0)
        rc = roundtrip(st);
    else if (strcmp(argv[1], "put") == 0)
        rc = put_one(st);
    else
        DIE("unknown command %s", argv[1]);
    ow_store_free(st);
    event_base_free(base);
    for (int i = 0; i < NCHUNKS; i++)
        free(chunks[i].data);
    for (int i = 0; i < nobjects; i++)
        free(objects[i].ci);
    fflush(stdout);
    return rc;
}
