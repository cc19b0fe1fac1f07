#include "config.h"

#include "objwal/ow_metrics.h"

#include <event2/buffer.h>
#include <string.h>

static const double ow_size_bounds[] = {65536, 262144, 1048576, 2097152, 4194304,
                                        8388608, 16777216, 67108864};
static const double ow_age_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
static const double ow_lat_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

#define OW_NB(a) ((int)(sizeof(a) / sizeof((a)[0])))

void ow_metrics_init(ow_metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->object_size_bytes.bounds = ow_size_bounds;
    m->object_size_bytes.nbounds = OW_NB(ow_size_bounds);
    m->flush_age_seconds.bounds = ow_age_bounds;
    m->flush_age_seconds.nbounds = OW_NB(ow_age_bounds);
    m->upload_latency_seconds.bounds = ow_lat_bounds;
    m->upload_latency_seconds.nbounds = OW_NB(ow_lat_bounds);
}

void ow_hist_observe(ow_hist *h, double v)
{
    for (int i = 0; i < h->nbounds; i++) {
        if (v <= h->bounds[i]) {
            h->counts[i]++;
            break;
        }
    }
    h->count++;
    h->sum += v;
}

static int ow_write_hist(struct evbuffer *out, const char *prefix, const char *name,
                         const char *help, const ow_hist *h)
{
    int rc = 0;
    rc |= evbuffer_add_printf(out, "# HELP %s%s %s\n# TYPE %s%s histogram\n", prefix, name, help,
                              prefix, name) < 0;
    uint64_t cum = 0;
    for (int i = 0; i < h->nbounds; i++) {
        cum += h->counts[i];
        rc |= evbuffer_add_printf(out, "%s%s_bucket{le=\"%g\"} %llu\n", prefix, name, h->bounds[i],
                                  (unsigned long long)cum) < 0;
    }
    rc |= evbuffer_add_printf(out, "%s%s_bucket{le=\"+Inf\"} %llu\n%s%s_sum %g\n%s%s_count %llu\n",
                              prefix, name, (unsigned long long)h->count, prefix, name, h->sum,
                              prefix, name, (unsigned long long)h->count) < 0;
    return rc ? -1 : 0;
}

static int ow_write_counter(struct evbuffer *out, const char *prefix, const char *name,
                            const char *help, uint64_t v)
{
    return evbuffer_add_printf(out, "# HELP %s%s %s\n# TYPE %s%s counter\n%s%s %llu\n", prefix,
                               name, help, prefix, name, prefix, name, (unsigned long long)v) < 0
               ? -1
               : 0;
}

int ow_metrics_write_prometheus(const ow_metrics *m, const char *prefix, struct evbuffer *out)
{
    int rc = 0;
    rc |= evbuffer_add_printf(out, "# HELP %srequests_total Object store requests (attempts).\n"
                                   "# TYPE %srequests_total counter\n", prefix, prefix) < 0;
    rc |= evbuffer_add_printf(out, "%srequests_total{op=\"put\"} %llu\n", prefix,
                              (unsigned long long)m->put_requests) < 0;
    rc |= evbuffer_add_printf(out, "%srequests_total{op=\"get\"} %llu\n", prefix,
                              (unsigned long long)m->get_requests) < 0;
    rc |= evbuffer_add_printf(out, "%srequests_total{op=\"delete\"} %llu\n", prefix,
                              (unsigned long long)m->delete_requests) < 0;
    rc |= evbuffer_add_printf(out, "%srequests_total{op=\"list\"} %llu\n", prefix,
                              (unsigned long long)m->list_requests) < 0;
    rc |= ow_write_counter(out, prefix, "bytes_up_total", "Object bytes uploaded.", m->bytes_up);
    rc |= ow_write_counter(out, prefix, "bytes_down_total", "Bytes downloaded.", m->bytes_down);
    rc |= ow_write_counter(out, prefix, "retries_total", "Requests retried.", m->retries);
    rc |= ow_write_counter(out, prefix, "read_lag_retries_total",
                           "GETs of a just-written object repeated: the store answered it missing or short.",
                           m->read_lag_retries);
    rc |= evbuffer_add_printf(out, "# HELP %serrors_total Failed operations by class.\n"
                                   "# TYPE %serrors_total counter\n", prefix, prefix) < 0;
    for (int i = 1; i < OW_ERR__COUNT; i++)
        rc |= evbuffer_add_printf(out, "%serrors_total{class=\"%s\"} %llu\n", prefix,
                                  ow_err_name(i), (unsigned long long)m->errors[i]) < 0;
    rc |= ow_write_counter(out, prefix, "objects_sealed_total", "WAL objects sealed.",
                           m->objects_sealed);
    rc |= ow_write_counter(out, prefix, "objects_gc_deleted_total",
                           "Objects deleted after every destination confirmed.",
                           m->objects_gc_deleted);
    rc |= ow_write_counter(out, prefix, "objects_swept_total",
                           "Old objects deleted by the sweeper.", m->objects_swept);
    rc |= ow_write_hist(out, prefix, "object_size_bytes", "Sealed WAL object sizes.",
                        &m->object_size_bytes);
    rc |= ow_write_hist(out, prefix, "flush_age_seconds", "Age of an object's first chunk at seal.",
                        &m->flush_age_seconds);
    rc |= ow_write_hist(out, prefix, "upload_latency_seconds",
                        "Upload time of a sealed object, retries included.",
                        &m->upload_latency_seconds);
    return rc ? -1 : 0;
}
