#include "config.h"

#include "objwal/ow_writer.h"

#include "codec/kc_crc32c.h"
#include "common/kz_log.h"
#include "objwal/ow_format.h"
#include "objwal/ow_gc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef enum { OW_W_QUEUED, OW_W_UPLOADING, OW_W_DONE } ow_wstate;

typedef struct ow_wobj {
    struct ow_writer *w;
    uint64_t seq;
    char key[800];
    struct evbuffer *body;
    ow_chunk_info *chunks;
    char *names;
    size_t nchunks;
    uint64_t size;
    ow_req *req;
    ow_wstate state;
    int err;
    char *errmsg;
    double flush_age_s;
    uint64_t upload_start_us;
    double upload_s;
    struct ow_wobj *next;
} ow_wobj;

typedef struct ow_waiter {
    ow_room_cb cb;
    void *arg;
} ow_waiter;

struct ow_writer {
    struct event_base *base;
    ow_store *st;
    ow_writer_config cfg;
    char *proxy_id, *zone, *key_prefix;
    char key_zone[OW_MAX_NAME + 1], key_proxy[OW_MAX_NAME + 1];
    uint64_t nonce;
    ow_sealed_cb sealed_cb;
    void *arg;
    ow_obj_builder *open;   /* the object being filled, NULL when none */
    uint64_t open_seq;
    uint64_t open_first_us;
    uint64_t last_seal_us;  /* 0 until the first seal */
    struct event *age_timer;
    struct event *deliver_ev;
    ow_wobj *head, *tail;   /* sealed, in seal order, not yet reported */
    size_t npending;
    unsigned inflight;
    uint64_t sealed_bytes;  /* bytes of sealed objects not yet uploaded */
    uint64_t next_seq;
    ow_waiter *waiters;
    size_t nwaiters, waiters_cap;
};

static uint64_t ow_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int64_t ow_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ow_writer_config_init(ow_writer_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->seal_bytes = 8 * 1024 * 1024;
    cfg->seal_age_ms = 250;
    cfg->max_inflight = 4;
    cfg->mem_cap = 64 * 1024 * 1024;
    cfg->key_prefix = "wal/";
}

uint64_t ow_writer_mem_used(const ow_writer *w)
{
    return w->sealed_bytes + (w->open != NULL ? ow_obj_builder_size(w->open) : 0);
}

size_t ow_writer_pending(const ow_writer *w)
{
    return w->npending;
}

/* Keys may hold only [A-Za-z0-9._-/]: other bytes of a zone or id become '_'. */
static void ow_key_safe(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++) {
        char c = in[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
}

static void ow_schedule_deliver(ow_writer *w)
{
    event_active(w->deliver_ev, 0, 0);
}

static void ow_wobj_free(ow_wobj *o)
{
    if (o->req != NULL)
        ow_req_cancel(o->req);
    if (o->body != NULL)
        evbuffer_free(o->body);
    free(o->chunks);
    free(o->names);
    free(o->errmsg);
    free(o);
}

static void ow_upload_done(const ow_result *res, void *arg)
{
    ow_wobj *o = arg;
    ow_writer *w = o->w;
    o->req = NULL;
    o->err = res->err;
    if (res->err != OW_OK)
        o->errmsg = strdup(res->errmsg);
    o->upload_s = (double)(ow_now_us() - o->upload_start_us) / 1e6;
    if (res->err == OW_OK)
        ow_hist_observe(&ow_store_metrics(w->st)->upload_latency_seconds, o->upload_s);
    else
        kz_warn("objwal: upload of %s failed: %s", o->key, res->errmsg);
    evbuffer_free(o->body);
    o->body = NULL;
    w->sealed_bytes -= o->size;
    w->inflight--;
    o->state = OW_W_DONE;
    ow_schedule_deliver(w);
}

/* Start uploads while slots are free, oldest sealed first. */
static void ow_pump(ow_writer *w)
{
    for (ow_wobj *o = w->head; o != NULL && w->inflight < w->cfg.max_inflight; o = o->next) {
        if (o->state != OW_W_QUEUED)
            continue;
        o->state = OW_W_UPLOADING;
        o->upload_start_us = ow_now_us();
        w->inflight++;
        o->req = ow_store_put(w->st, o->key, o->body, ow_upload_done, o);
        if (o->req == NULL) {
            w->inflight--;
            o->state = OW_W_DONE;
            o->err = OW_ENOMEM;
            o->errmsg = strdup("could not queue the upload (out of memory)");
            evbuffer_free(o->body);
            o->body = NULL;
            w->sealed_bytes -= o->size;
            ow_schedule_deliver(w);
        }
    }
}

static void ow_seal(ow_writer *w)
{
    if (w->open == NULL)
        return;
    evtimer_del(w->age_timer);
    w->last_seal_us = ow_now_us();
    ow_obj_builder *b = w->open;
    w->open = NULL;
    ow_wobj *o = calloc(1, sizeof(*o));
    uint32_t nchunks = ow_obj_builder_nchunks(b);
    if (o == NULL) {
        /* Cannot even report it: the caller's tickets for this object will
         * never complete. Log loudly; this is out-of-memory territory. */
        kz_err("objwal: out of memory sealing object %" PRIu64 " (%" PRIu32 " chunks lost)",
               w->open_seq, nchunks);
        ow_obj_builder_free(b);
        return;
    }
    o->w = w;
    o->seq = w->open_seq;
    o->nchunks = nchunks;
    o->flush_age_s = (double)(ow_now_us() - w->open_first_us) / 1e6;
    char tail[640];
    snprintf(tail, sizeof(tail), "%s/%s/%" PRId64 "-%06" PRIu64 "-%016" PRIx64, w->key_zone,
             w->key_proxy, ow_wall_ms(), o->seq, w->nonce);
    uint32_t h = kc_crc32c(0, tail, strlen(tail));
    snprintf(o->key, sizeof(o->key), "%s%04" PRIx32 "/%s", w->key_prefix, h & 0xffff, tail);
    o->body = ow_obj_builder_finish(b, &o->chunks, &o->names);
    ow_obj_builder_free(b);
    ow_metrics *m = ow_store_metrics(w->st);
    if (o->body == NULL) {
        o->state = OW_W_DONE;
        o->err = OW_ENOMEM;
        o->errmsg = strdup("out of memory sealing the object");
        ow_schedule_deliver(w);
    } else {
        o->size = evbuffer_get_length(o->body);
        w->sealed_bytes += o->size;
        o->state = OW_W_QUEUED;
        m->objects_sealed++;
        ow_hist_observe(&m->object_size_bytes, (double)o->size);
        ow_hist_observe(&m->flush_age_seconds, o->flush_age_s);
    }
    if (w->tail != NULL)
        w->tail->next = o;
    else
        w->head = o;
    w->tail = o;
    w->npending++;
    ow_pump(w);
}

static void ow_age_cb(evutil_socket_t fd, short what, void *arg)
{
    ow_writer *w = arg;
    (void)fd;
    (void)what;
    if (w->open != NULL && ow_obj_builder_nchunks(w->open) == 0) {
        /* The append that opened it failed: nothing to store. */
        ow_obj_builder_free(w->open);
        w->open = NULL;
        return;
    }
    ow_seal(w);
}

static void ow_track_gc(ow_writer *w, const ow_wobj *o)
{
    const char *dests[64];
    size_t nd = 0;
    /* Chunks are few per object; a quadratic dedup is fine. */
    for (size_t i = 0; i < o->nchunks; i++) {
        size_t k = 0;
        while (k < nd && strcmp(dests[k], o->chunks[i].dest) != 0)
            k++;
        if (k == nd) {
            if (nd == sizeof(dests) / sizeof(dests[0])) {
                nd = 0; /* too many to track: the sweeper will collect it */
                break;
            }
            dests[nd++] = o->chunks[i].dest;
        }
    }
    if (nd > 0 && ow_gc_track(w->cfg.gc, o->key, dests, nd) != OW_OK)
        kz_warn("objwal: cannot track %s for garbage collection; the sweeper will delete it",
                o->key);
}

static void ow_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    ow_writer *w = arg;
    ow_pump(w);
    while (w->head != NULL && w->head->state == OW_W_DONE) {
        ow_wobj *o = w->head;
        w->head = o->next;
        if (w->head == NULL)
            w->tail = NULL;
        w->npending--;
        if (o->err == OW_OK && w->cfg.gc != NULL)
            ow_track_gc(w, o);
        ow_sealed s = {
            .seq = o->seq,
            .err = o->err,
            .errmsg = o->errmsg ? o->errmsg : (o->err ? ow_err_name(o->err) : ""),
            .key = o->key,
            .size = o->size,
            .chunks = o->chunks,
            .nchunks = o->nchunks,
            .flush_age_s = o->flush_age_s,
            .upload_s = o->upload_s,
        };
        w->sealed_cb(&s, w->arg);
        ow_wobj_free(o);
    }
    /* Room: wake waiters in order while under the cap. */
    while (w->nwaiters > 0 && ow_writer_mem_used(w) < w->cfg.mem_cap) {
        ow_waiter wt = w->waiters[0];
        memmove(w->waiters, w->waiters + 1, (w->nwaiters - 1) * sizeof(*w->waiters));
        w->nwaiters--;
        wt.cb(wt.arg);
    }
}

ow_writer *ow_writer_new(struct event_base *base, ow_store *st, const ow_writer_config *cfg,
                         ow_sealed_cb sealed_cb, void *arg, char *errstr, size_t errstr_size)
{
    if (base == NULL || st == NULL || cfg == NULL || sealed_cb == NULL) {
        snprintf(errstr, errstr_size, "objwal writer: missing event base, store or callback");
        return NULL;
    }
    if (cfg->proxy_id == NULL || cfg->zone == NULL || !*cfg->proxy_id || !*cfg->zone ||
        strlen(cfg->proxy_id) > OW_MAX_NAME || strlen(cfg->zone) > OW_MAX_NAME) {
        snprintf(errstr, errstr_size,
                 "objwal writer: proxy id and zone are required (1..255 bytes each)");
        return NULL;
    }
    const char *prefix = cfg->key_prefix ? cfg->key_prefix : "wal/";
    if (strlen(prefix) > 128 || (prefix[0] && !ow_key_valid(prefix))) {
        snprintf(errstr, errstr_size, "objwal writer: key prefix \"%s\" is not a valid key part",
                 prefix);
        return NULL;
    }
    ow_writer *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(errstr, errstr_size, "objwal writer: out of memory");
        return NULL;
    }
    w->base = base;
    w->st = st;
    w->cfg = *cfg;
    if (w->cfg.seal_bytes == 0)
        w->cfg.seal_bytes = 8 * 1024 * 1024;
    if (w->cfg.seal_bytes > OW_MAX_OBJECT / 2)
        w->cfg.seal_bytes = OW_MAX_OBJECT / 2;
    if (w->cfg.seal_age_ms == 0)
        w->cfg.seal_age_ms = 250;
    if (w->cfg.max_inflight == 0)
        w->cfg.max_inflight = 4;
    if (w->cfg.mem_cap == 0)
        w->cfg.mem_cap = 64 * 1024 * 1024;
    if (w->cfg.mem_cap < w->cfg.seal_bytes)
        w->cfg.mem_cap = w->cfg.seal_bytes;
    w->proxy_id = strdup(cfg->proxy_id);
    w->zone = strdup(cfg->zone);
    w->key_prefix = strdup(prefix);
    w->cfg.proxy_id = w->proxy_id;
    w->cfg.zone = w->zone;
    w->cfg.key_prefix = w->key_prefix;
    ow_key_safe(w->zone ? w->zone : "", w->key_zone, sizeof(w->key_zone));
    ow_key_safe(w->proxy_id ? w->proxy_id : "", w->key_proxy, sizeof(w->key_proxy));
    w->sealed_cb = sealed_cb;
    w->arg = arg;
    w->next_seq = 1;
    w->age_timer = evtimer_new(base, ow_age_cb, w);
    w->deliver_ev = event_new(base, -1, 0, ow_deliver_cb, w);
    /* A per-process nonce keeps keys unique across restarts of one proxy id. */
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd == -1 || read(fd, &w->nonce, sizeof(w->nonce)) != (ssize_t)sizeof(w->nonce))
        w->nonce = ow_now_us() ^ ((uint64_t)getpid() << 40) ^ (uintptr_t)w;
    if (fd != -1)
        close(fd);
    if (w->proxy_id == NULL || w->zone == NULL || w->key_prefix == NULL || w->age_timer == NULL ||
        w->deliver_ev == NULL) {
        snprintf(errstr, errstr_size, "objwal writer: out of memory");
        ow_writer_free(w);
        return NULL;
    }
    return w;
}

/* Shared by both appends: make room in the open object, then add. */
static int ow_writer_add(ow_writer *w, const char *dest, const char *topic, int32_t partition,
                         const void *p, struct evbuffer *eb, const uint32_t *crc, size_t len,
                         ow_ticket *ticket)
{
    if (dest == NULL || topic == NULL || len == 0)
        return OW_EINVAL;
    if (strlen(dest) > OW_MAX_NAME || strlen(topic) > OW_MAX_NAME)
        return OW_EINVAL;
    uint64_t need = len + OW_INDEX_ENTRY_MIN + strlen(dest) + strlen(topic);
    if (need + OW_HEADER_MIN + 2 * OW_MAX_NAME + OW_TRAILER_SIZE + 4 > w->cfg.mem_cap ||
        need > OW_MAX_OBJECT / 2)
        return OW_ETOOBIG;
    if (ow_writer_mem_used(w) + need > w->cfg.mem_cap) {
        /* Start uploading what is open so that memory comes back soon,
         * rather than at the object's age. */
        ow_writer_flush(w);
        return OW_EAGAIN;
    }
    if (w->open != NULL && ow_obj_builder_nchunks(w->open) > 0 &&
        (ow_obj_builder_size(w->open) + need > w->cfg.seal_bytes ||
         ow_obj_builder_nchunks(w->open) >= OW_MAX_CHUNKS))
        ow_seal(w);
    if (w->open == NULL) {
        w->open = ow_obj_builder_new(w->proxy_id, w->zone, ow_wall_ms());
        if (w->open == NULL)
            return OW_ENOMEM;
        w->open_seq = w->next_seq++;
        w->open_first_us = ow_now_us();
        /* The age bounds how often objects are stored, not how long each
         * batch must wait: an object is due seal_age_ms after the previous
         * seal. After a quiet spell that is now, and the object takes what
         * this turn of the event loop appends. Under steady load it is the
         * same as counting from the first chunk; a lone pipelined client
         * gets a full object every seal_age_ms instead of every seal_age_ms
         * plus the round trip. */
        uint64_t age_us = (uint64_t)w->cfg.seal_age_ms * 1000;
        uint64_t due = w->last_seal_us + age_us;
        uint64_t wait = w->last_seal_us == 0 || due <= w->open_first_us ? 0 : due - w->open_first_us;
        struct timeval tv = {(time_t)(wait / 1000000), (suseconds_t)(wait % 1000000)};
        evtimer_add(w->age_timer, &tv);
    }
    uint32_t chunk;
    int rc = eb != NULL
                 ? ow_obj_builder_add_evbuffer(w->open, dest, topic, partition, eb, crc, &chunk)
                 : ow_obj_builder_add(w->open, dest, topic, partition, p, len, &chunk);
    if (rc != OW_OK)
        return rc;
    if (ticket != NULL) {
        ticket->seq = w->open_seq;
        ticket->chunk = chunk;
    }
    if (ow_obj_builder_size(w->open) >= w->cfg.seal_bytes)
        ow_seal(w);
    return OW_OK;
}

int ow_writer_append(ow_writer *w, const char *dest, const char *topic, int32_t partition,
                     const void *p, size_t len, ow_ticket *ticket)
{
    if (p == NULL)
        return OW_EINVAL;
    return ow_writer_add(w, dest, topic, partition, p, NULL, NULL, len, ticket);
}

int ow_writer_append_evbuffer(ow_writer *w, const char *dest, const char *topic,
                              int32_t partition, struct evbuffer *eb, const uint32_t *crc,
                              ow_ticket *ticket)
{
    if (eb == NULL)
        return OW_EINVAL;
    return ow_writer_add(w, dest, topic, partition, NULL, eb, crc, evbuffer_get_length(eb), ticket);
}

int ow_writer_wait_room(ow_writer *w, ow_room_cb cb, void *arg)
{
    if (cb == NULL)
        return OW_EINVAL;
    if (w->nwaiters == w->waiters_cap) {
        size_t cap = w->waiters_cap ? w->waiters_cap * 2 : 16;
        ow_waiter *nw = realloc(w->waiters, cap * sizeof(*nw));
        if (nw == NULL)
            return OW_ENOMEM;
        w->waiters = nw;
        w->waiters_cap = cap;
    }
    w->waiters[w->nwaiters++] = (ow_waiter){cb, arg};
    return OW_OK;
}

void ow_writer_cancel_room(ow_writer *w, ow_room_cb cb, void *arg)
{
    size_t k = 0;
    for (size_t i = 0; i < w->nwaiters; i++)
        if (!(w->waiters[i].cb == cb && w->waiters[i].arg == arg))
            w->waiters[k++] = w->waiters[i];
    w->nwaiters = k;
}

void ow_writer_set_seal(ow_writer *w, uint64_t seal_bytes, uint32_t seal_age_ms)
{
    if (seal_bytes == 0)
        seal_bytes = 8 * 1024 * 1024;
    if (seal_bytes > OW_MAX_OBJECT / 2)
        seal_bytes = OW_MAX_OBJECT / 2;
    if (seal_bytes > w->cfg.mem_cap)
        seal_bytes = w->cfg.mem_cap; /* the cap is fixed at creation */
    w->cfg.seal_bytes = seal_bytes;
    w->cfg.seal_age_ms = seal_age_ms ? seal_age_ms : 250;
}

void ow_writer_flush(ow_writer *w)
{
    if (w->open != NULL && ow_obj_builder_nchunks(w->open) > 0)
        ow_seal(w);
}

void ow_writer_free(ow_writer *w)
{
    if (w == NULL)
        return;
    while (w->head != NULL) {
        ow_wobj *o = w->head;
        w->head = o->next;
        ow_wobj_free(o);
    }
    ow_obj_builder_free(w->open);
    if (w->age_timer != NULL)
        event_free(w->age_timer);
    if (w->deliver_ev != NULL)
        event_free(w->deliver_ev);
    free(w->waiters);
    free(w->proxy_id);
    free(w->zone);
    free(w->key_prefix);
    free(w);
}
