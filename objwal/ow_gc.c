#include "config.h"

#include "objwal/ow_gc.h"

#include "common/kz_log.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OW_GC_BUCKETS 1024
#define OW_GC_DELETES 8 /* deletes in flight during a sweep */

typedef struct ow_gc_obj {
    char *key;
    char **dests;      /* not yet confirmed */
    size_t ndests;
    struct ow_gc_obj *next;
} ow_gc_obj;

typedef struct ow_gc_del {
    ow_gc *gc;
    ow_req *req;
    int sweep;         /* part of the running sweep */
    struct ow_gc_del *prev, *next;
} ow_gc_del;

struct ow_gc {
    struct event_base *base;
    ow_store *st;
    char *prefix;
    uint32_t sweep_interval_ms;
    uint64_t max_age_ms;
    unsigned max_tracked;
    ow_gc_obj *buckets[OW_GC_BUCKETS];
    size_t ntracked;
    ow_gc_del *dels;   /* deletes in flight */
    struct event *sweep_timer;
    /* the running sweep */
    int sweeping;
    int64_t sweep_now_ms;
    ow_sweep_cb sweep_cb;
    void *sweep_arg;
    ow_req *list_req;
    char **todo;       /* keys of the current page still to delete */
    size_t ntodo, todo_next;
    char *next_token;
    unsigned sweep_inflight;
    ow_sweep_result res;
    char errmsg[512];
};

void ow_gc_config_init(ow_gc_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->prefix = "wal/";
    cfg->max_age_ms = 3600 * 1000;
    cfg->max_tracked = 100000;
}

static uint32_t ow_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static void ow_gc_obj_free(ow_gc_obj *o)
{
    for (size_t i = 0; i < o->ndests; i++)
        free(o->dests[i]);
    free(o->dests);
    free(o->key);
    free(o);
}

size_t ow_gc_tracked(const ow_gc *gc)
{
    return gc->ntracked;
}

int ow_gc_track(ow_gc *gc, const char *key, const char *const *dests, size_t ndests)
{
    if (key == NULL || ndests == 0)
        return OW_EINVAL;
    uint32_t b = ow_hash(key) % OW_GC_BUCKETS;
    for (ow_gc_obj *o = gc->buckets[b]; o != NULL; o = o->next)
        if (strcmp(o->key, key) == 0)
            return OW_EEXISTS;
    if (gc->ntracked >= gc->max_tracked)
        return OW_ETOOBIG;
    ow_gc_obj *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return OW_ENOMEM;
    o->key = strdup(key);
    o->dests = calloc(ndests, sizeof(*o->dests));
    if (o->key == NULL || o->dests == NULL) {
        ow_gc_obj_free(o);
        return OW_ENOMEM;
    }
    for (size_t i = 0; i < ndests; i++) {
        if ((o->dests[i] = strdup(dests[i])) == NULL) {
            ow_gc_obj_free(o);
            return OW_ENOMEM;
        }
        o->ndests++;
    }
    o->next = gc->buckets[b];
    gc->buckets[b] = o;
    gc->ntracked++;
    return OW_OK;
}

static void ow_gc_sweep_step(ow_gc *gc);

static void ow_gc_del_done(const ow_result *res, void *arg)
{
    ow_gc_del *d = arg;
    ow_gc *gc = d->gc;
    if (d->prev != NULL)
        d->prev->next = d->next;
    else
        gc->dels = d->next;
    if (d->next != NULL)
        d->next->prev = d->prev;
    int sweep = d->sweep;
    free(d);
    ow_metrics *m = ow_store_metrics(gc->st);
    if (res->err != OW_OK)
        kz_warn("objwal gc: %s", res->errmsg);
    if (sweep) {
        gc->sweep_inflight--;
        if (res->err == OW_OK) {
            gc->res.deleted++;
            m->objects_swept++;
        } else if (gc->res.err == OW_OK) {
            gc->res.err = res->err;
            snprintf(gc->errmsg, sizeof(gc->errmsg), "%s", res->errmsg);
        }
        ow_gc_sweep_step(gc);
    } else if (res->err == OW_OK) {
        m->objects_gc_deleted++;
    }
}

static int ow_gc_delete(ow_gc *gc, const char *key, int sweep)
{
    ow_gc_del *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return OW_ENOMEM;
    d->gc = gc;
    d->sweep = sweep;
    d->req = ow_store_delete(gc->st, key, ow_gc_del_done, d);
    if (d->req == NULL) {
        free(d);
        return OW_ENOMEM;
    }
    d->next = gc->dels;
    if (gc->dels != NULL)
        gc->dels->prev = d;
    gc->dels = d;
    return OW_OK;
}

int ow_gc_confirm(ow_gc *gc, const char *key, const char *dest)
{
    uint32_t b = ow_hash(key) % OW_GC_BUCKETS;
    ow_gc_obj **pp = &gc->buckets[b];
    for (; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->key, key) == 0)
            break;
    ow_gc_obj *o = *pp;
    if (o == NULL)
        return OW_ENOTFOUND;
    size_t i = 0;
    while (i < o->ndests && strcmp(o->dests[i], dest) != 0)
        i++;
    if (i == o->ndests)
        return OW_ENOTFOUND;
    free(o->dests[i]);
    o->dests[i] = o->dests[--o->ndests];
    if (o->ndests == 0) {
        *pp = o->next;
        gc->ntracked--;
        if (ow_gc_delete(gc, o->key, 0) != OW_OK)
            kz_warn("objwal gc: cannot queue the delete of %s; the sweeper will", o->key);
        ow_gc_obj_free(o);
    }
    return OW_OK;
}

/* ---- sweeper ---- */

static void ow_gc_untrack(ow_gc *gc, const char *key)
{
    uint32_t b = ow_hash(key) % OW_GC_BUCKETS;
    for (ow_gc_obj **pp = &gc->buckets[b]; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            ow_gc_obj *o = *pp;
            *pp = o->next;
            gc->ntracked--;
            kz_warn("objwal gc: %s is older than the sweep age with %zu destination(s) "
                    "unconfirmed; deleting it", key, o->ndests);
            ow_gc_obj_free(o);
            return;
        }
    }
}

static void ow_gc_free_todo(ow_gc *gc)
{
    for (size_t i = 0; i < gc->ntodo; i++)
        free(gc->todo[i]);
    free(gc->todo);
    gc->todo = NULL;
    gc->ntodo = gc->todo_next = 0;
}

static void ow_gc_list_done(const ow_result *res, void *arg);

static void ow_gc_sweep_end(ow_gc *gc)
{
    gc->sweeping = 0;
    ow_gc_free_todo(gc);
    free(gc->next_token);
    gc->next_token = NULL;
    ow_sweep_result r = gc->res;
    r.errmsg = gc->errmsg;
    if (r.err != OW_OK)
        kz_warn("objwal gc: sweep: %s", gc->errmsg);
    if (gc->sweep_cb != NULL)
        gc->sweep_cb(&r, gc->sweep_arg);
}

static void ow_gc_sweep_step(ow_gc *gc)
{
    while (gc->todo_next < gc->ntodo && gc->sweep_inflight < OW_GC_DELETES) {
        if (ow_gc_delete(gc, gc->todo[gc->todo_next], 1) == OW_OK)
            gc->sweep_inflight++;
        gc->todo_next++;
    }
    if (gc->sweep_inflight > 0 || gc->todo_next < gc->ntodo || gc->list_req != NULL)
        return;
    ow_gc_free_todo(gc);
    if (gc->next_token != NULL && gc->res.err == OW_OK) {
        char *tok = gc->next_token;
        gc->next_token = NULL;
        gc->list_req = ow_store_list(gc->st, gc->prefix, tok, 1000, ow_gc_list_done, gc);
        free(tok);
        if (gc->list_req != NULL)
            return;
        gc->res.err = OW_ENOMEM;
        snprintf(gc->errmsg, sizeof(gc->errmsg), "cannot queue the next LIST page");
    }
    ow_gc_sweep_end(gc);
}

static void ow_gc_list_done(const ow_result *res, void *arg)
{
    ow_gc *gc = arg;
    gc->list_req = NULL;
    if (res->err != OW_OK) {
        gc->res.err = res->err;
        snprintf(gc->errmsg, sizeof(gc->errmsg), "%s", res->errmsg);
        ow_gc_sweep_step(gc);
        return;
    }
    gc->res.listed += res->nentries;
    gc->todo = calloc(res->nentries ? res->nentries : 1, sizeof(*gc->todo));
    if (gc->todo == NULL) {
        gc->res.err = OW_ENOMEM;
        snprintf(gc->errmsg, sizeof(gc->errmsg), "out of memory during a sweep");
        ow_gc_sweep_step(gc);
        return;
    }
    for (size_t i = 0; i < res->nentries; i++) {
        const ow_list_entry *e = &res->entries[i];
        if (e->mtime_ms + (int64_t)gc->max_age_ms > gc->sweep_now_ms)
            continue;
        char *k = strdup(e->key);
        if (k == NULL)
            continue;
        ow_gc_untrack(gc, k);
        gc->todo[gc->ntodo++] = k;
    }
    if (res->next_token != NULL)
        gc->next_token = strdup(res->next_token);
    ow_gc_sweep_step(gc);
}

int ow_gc_sweep(ow_gc *gc, int64_t now_ms, ow_sweep_cb cb, void *arg)
{
    if (gc->sweeping)
        return OW_EAGAIN;
    if (now_ms == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    gc->list_req = ow_store_list(gc->st, gc->prefix, NULL, 1000, ow_gc_list_done, gc);
    if (gc->list_req == NULL)
        return OW_ENOMEM;
    gc->sweeping = 1;
    gc->sweep_now_ms = now_ms;
    gc->sweep_cb = cb;
    gc->sweep_arg = arg;
    memset(&gc->res, 0, sizeof(gc->res));
    gc->errmsg[0] = '\0';
    return OW_OK;
}

static void ow_gc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    ow_gc *gc = arg;
    if (!gc->sweeping)
        ow_gc_sweep(gc, 0, NULL, NULL);
}

ow_gc *ow_gc_new(struct event_base *base, ow_store *st, const ow_gc_config *cfg, char *errstr,
                 size_t errstr_size)
{
    const char *prefix = cfg->prefix ? cfg->prefix : "wal/";
    if (prefix[0] != '\0' && !ow_key_valid(prefix)) {
        snprintf(errstr, errstr_size, "objwal gc: prefix \"%s\" is not a valid key part", prefix);
        return NULL;
    }
    ow_gc *gc = calloc(1, sizeof(*gc));
    if (gc == NULL || (gc->prefix = strdup(prefix)) == NULL) {
        free(gc);
        snprintf(errstr, errstr_size, "objwal gc: out of memory");
        return NULL;
    }
    gc->base = base;
    gc->st = st;
    gc->sweep_interval_ms = cfg->sweep_interval_ms;
    gc->max_age_ms = cfg->max_age_ms ? cfg->max_age_ms : 3600 * 1000;
    gc->max_tracked = cfg->max_tracked ? cfg->max_tracked : 100000;
    if (gc->sweep_interval_ms > 0) {
        gc->sweep_timer = event_new(base, -1, EV_PERSIST, ow_gc_timer_cb, gc);
        if (gc->sweep_timer == NULL) {
            ow_gc_free(gc);
            snprintf(errstr, errstr_size, "objwal gc: out of memory");
            return NULL;
        }
        struct timeval tv = {gc->sweep_interval_ms / 1000, (gc->sweep_interval_ms % 1000) * 1000};
        event_add(gc->sweep_timer, &tv);
    }
    return gc;
}

void ow_gc_free(ow_gc *gc)
{
    if (gc == NULL)
        return;
    if (gc->sweep_timer != NULL)
        event_free(gc->sweep_timer);
    if (gc->list_req != NULL)
        ow_req_cancel(gc->list_req);
    while (gc->dels != NULL) {
        ow_gc_del *d = gc->dels;
        gc->dels = d->next;
        ow_req_cancel(d->req);
        free(d);
    }
    for (int b = 0; b < OW_GC_BUCKETS; b++) {
        while (gc->buckets[b] != NULL) {
            ow_gc_obj *o = gc->buckets[b];
            gc->buckets[b] = o->next;
            ow_gc_obj_free(o);
        }
    }
    ow_gc_free_todo(gc);
    free(gc->next_token);
    free(gc->prefix);
    free(gc);
}
