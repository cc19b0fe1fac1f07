/*
 * ow_gc: garbage collection of WAL objects.
 *
 *  - Confirmation: each uploaded object is tracked with the set of
 *    destinations that have chunks in it (the writer does this when its
 *    config names a gc). When every destination has confirmed that its
 *    append to the leader succeeded (ow_gc_confirm), the object is deleted.
 *  - Sweeper: every sweep_interval_ms, objects under prefix older than
 *    max_age_ms are deleted, whatever their state: they were left by a
 *    crashed writer, or a destination never confirmed. max_age_ms must be
 *    far longer than any write's deadline plus the RPC's.
 *  - Backstop: an S3 lifecycle rule expiring the prefix after a day (see
 *    docs/OBJWAL.md) catches whatever a crashed fleet leaves behind.
 *
 * Tracking is in memory: a restart forgets it and the sweeper takes over.
 */
#ifndef OW_GC_H
#define OW_GC_H

#include "objwal/ow_store.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct ow_gc ow_gc;

typedef struct ow_gc_config {
    const char *prefix;         /* what the sweeper lists (default "wal/") */
    uint32_t sweep_interval_ms; /* 0 disables the periodic sweep (default 0) */
    uint64_t max_age_ms;        /* sweep objects older than this (default 3600000) */
    unsigned max_tracked;       /* objects tracked at most (default 100000) */
} ow_gc_config;

void ow_gc_config_init(ow_gc_config *cfg);

/* Create on base and st (not owned; both outlive the gc). NULL + errstr on
 * a bad configuration. */
ow_gc *ow_gc_new(struct event_base *base, ow_store *st, const ow_gc_config *cfg, char *errstr,
                 size_t errstr_size);
/* Free; pending deletes are canceled (the sweeper will find those objects). */
void ow_gc_free(ow_gc *gc);

/*
 * Track key, awaiting a confirmation from each of the ndests destinations
 * (strings copied). Returns OW_OK, OW_EEXISTS if already tracked, OW_ETOOBIG
 * past max_tracked, OW_ENOMEM.
 */
int ow_gc_track(ow_gc *gc, const char *key, const char *const *dests, size_t ndests);

/*
 * Destination dest confirms it has appended its chunks of key. The last
 * confirmation deletes the object (asynchronously, with the store's
 * retries). Returns OW_OK, or OW_ENOTFOUND when key is not tracked or dest
 * is not one of its destinations (or already confirmed).
 */
int ow_gc_confirm(ow_gc *gc, const char *key, const char *dest);

/* Objects tracked now. */
size_t ow_gc_tracked(const ow_gc *gc);

/* Outcome of a sweep: objects listed, deleted, and the first error. */
typedef struct ow_sweep_result {
    int err;
    const char *errmsg;
    uint64_t listed;
    uint64_t deleted;
} ow_sweep_result;
typedef void (*ow_sweep_cb)(const ow_sweep_result *r, void *arg);

/*
 * Run one sweep now, deleting objects older than max_age_ms (now_ms is the
 * wall clock in ms since the epoch; 0 means the current time). cb (may be
 * NULL) runs when it is done. Returns OW_OK, or OW_EAGAIN if a sweep is
 * already running.
 */
int ow_gc_sweep(ow_gc *gc, int64_t now_ms, ow_sweep_cb cb, void *arg);

#endif
