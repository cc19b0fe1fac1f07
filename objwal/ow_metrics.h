/*
 * ow_metrics: counters and histograms of objwal for /metrics.
 *
 * One ow_metrics lives in each ow_store (ow_store_metrics); the writer and
 * the garbage collector built on a store add to the same one. Everything is
 * touched from the event loop's thread only, so plain integers suffice.
 */
#ifndef OW_METRICS_H
#define OW_METRICS_H

#include "objwal/ow_types.h"

#include <stdint.h>

struct evbuffer;

#define OW_HIST_BUCKETS 16

/* A cumulative histogram with fixed upper bounds (Prometheus style). */
typedef struct ow_hist {
    const double *bounds;              /* nbounds ascending upper bounds */
    int nbounds;                       /* at most OW_HIST_BUCKETS */
    uint64_t counts[OW_HIST_BUCKETS];  /* observations <= bounds[i] (not cumulative) */
    uint64_t count;                    /* all observations (the +Inf bucket) */
    double sum;                        /* sum of observed values */
} ow_hist;

typedef struct ow_metrics {
    uint64_t put_requests;     /* HTTP PUT attempts (or local writes) */
    uint64_t get_requests;     /* GET attempts */
    uint64_t delete_requests;  /* DELETE attempts */
    uint64_t list_requests;    /* ListObjectsV2 attempts */
    uint64_t bytes_up;         /* object bytes sent (successful PUTs) */
    uint64_t bytes_down;       /* bytes received by GETs */
    uint64_t retries;          /* attempts repeated after a retryable failure */
    uint64_t read_lag_retries; /* GETs of a just-written object repeated (OW_READ_JUST_WRITTEN) */
    uint64_t errors[OW_ERR__COUNT]; /* failed operations by class (final outcome) */
    uint64_t objects_sealed;   /* objects the writers sealed */
    uint64_t objects_gc_deleted; /* objects deleted once every destination confirmed */
    uint64_t objects_swept;    /* old objects deleted by the sweeper */
    ow_hist object_size_bytes;     /* sealed object sizes */
    ow_hist flush_age_seconds;     /* first chunk to seal */
    ow_hist upload_latency_seconds; /* PUT start to completion, retries included */
} ow_metrics;

/* Zero the counters and set the histogram bounds. */
void ow_metrics_init(ow_metrics *m);
void ow_hist_observe(ow_hist *h, double v);

/*
 * Append the metrics in Prometheus text format, every name starting with
 * prefix (e.g. "kz_objwal_"). Returns 0, or -1 if the buffer ran out of memory.
 */
int ow_metrics_write_prometheus(const ow_metrics *m, const char *prefix, struct evbuffer *out);

#endif
