/*
 * cross_zone_policy "auto": per destination zone, the WAL path or a direct
 * cross-zone append, by the produce rate to that zone.
 *
 * The rate is an exponentially weighted estimate in bytes/s with time
 * constant window_ms (each append of n bytes at time t: rate = rate *
 * exp(-dt / window) + n / window). Below direct_below the zone goes direct,
 * above wal_above through WAL objects, in between it stays where it is; and
 * it stays at least min_dwell_ms after a switch, so the choice does not flap.
 * A switch reorders nothing: the order keys (rt_order.c) hold a partition's
 * batch on the new path while batches of the same client connection and
 * partition are in flight on the old one (NOT_LEADER_OR_FOLLOWER, the client
 * retries once they are through).
 *
 * Default thresholds from the prices: a destination zone on the WAL path
 * costs about (1000 / flush_ms) objects a second, each a PUT and a GET; the
 * same bytes sent direct cost rate x cross_zone_per_gb. They break even at
 * (1000 / flush_ms) x (put + get) / cross_zone_per_gb x 1e9 B/s (at list
 * prices and flush_ms 250: 4/s x $0.0054/1000 / $0.02/GB = 1.08 MB/s);
 * wal_above is 1.25 x that, direct_below 0.75 x (px_config.c).
 */
#include "config.h"

#include "router/rt_int.h"

#include "common/kz_log.h"
#include "common/kz_time.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RT_POLICY_ZONES 64

typedef struct rt_pzone {
    char *zone;
    double rate;       /* bytes/s, as of t_ms */
    int64_t t_ms;
    int wal;           /* the current choice */
    int64_t since_ms;  /* of the last switch; INT64_MIN before any */
    uint64_t switches;
} rt_pzone;

struct rt_policy {
    int n;
    rt_pzone z[RT_POLICY_ZONES];
};

static rt_pzone *rt_policy_zone(rt_router *rt, const char *zone)
{
    if (rt->policy == NULL && (rt->policy = calloc(1, sizeof(*rt->policy))) == NULL)
        return NULL;
    struct rt_policy *p = rt->policy;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->z[i].zone, zone) == 0)
            return &p->z[i];
    if (p->n == RT_POLICY_ZONES)
        return NULL;
    rt_pzone *z = &p->z[p->n];
    if ((z->zone = strdup(zone)) == NULL)
        return NULL;
    z->t_ms = kz_mono_ms();
    z->since_ms = INT64_MIN;
    p->n++;
    return z;
}

/* The rate decayed to now. */
static double rt_policy_rate(const rt_router *rt, const rt_pzone *z, int64_t now)
{
    double window = rt->cfg.auto_window_ms > 0 ? rt->cfg.auto_window_ms : 1000;
    return z->rate * exp(-(double)(now - z->t_ms) / window);
}

int rt_out_path_n(rt_router *rt, const mc_view *v, int32_t leader_id, int64_t bytes)
{
    int path = rt_out_path(rt, v, leader_id);
    if (path != RT_PATH_WAL || !rt->cfg.cross_zone_auto)
        return path;
    const mc_broker *br = mc_view_broker(v, leader_id);
    rt_pzone *z = br && br->rack ? rt_policy_zone(rt, br->rack) : NULL;
    if (z == NULL)
        return RT_PATH_WAL; /* out of memory or zones: the configured default */
    int64_t now = kz_mono_ms();
    double window_s = (rt->cfg.auto_window_ms > 0 ? rt->cfg.auto_window_ms : 1000) / 1000.0;
    z->rate = rt_policy_rate(rt, z, now) + (bytes > 0 ? (double)bytes : 0) / window_s;
    z->t_ms = now;
    int dwelt = z->since_ms == INT64_MIN || now - z->since_ms >= rt->cfg.auto_min_dwell_ms;
    if (dwelt && !z->wal && z->rate >= rt->cfg.auto_wal_above) {
        z->wal = 1;
    } else if (dwelt && z->wal && z->rate <= rt->cfg.auto_direct_below) {
        z->wal = 0;
    } else {
        return z->wal ? RT_PATH_WAL : RT_PATH_CROSS;
    }
    z->since_ms = now;
    z->switches++;
    kz_info("cross_zone_policy auto: zone %s now %s (produce rate %.0f B/s; WAL above %.0f, direct below %.0f)",
            z->zone, z->wal ? "on the WAL path" : "direct", z->rate, rt->cfg.auto_wal_above,
            rt->cfg.auto_direct_below);
    return z->wal ? RT_PATH_WAL : RT_PATH_CROSS;
}

void rt_policy_free(rt_router *rt)
{
    if (rt->policy == NULL)
        return;
    for (int i = 0; i < rt->policy->n; i++)
        free(rt->policy->z[i].zone);
    free(rt->policy);
    rt->policy = NULL;
}

void rt_policy_metrics(rt_router *rt, struct evbuffer *b)
{
    if (rt == NULL || !rt->cfg.cross_zone_auto)
        return;
    int64_t now = kz_mono_ms();
    int n = rt->policy ? rt->policy->n : 0;
    evbuffer_add_printf(b, "# HELP kzproxy_cross_zone_auto_wal 1 while produce to the zone takes the WAL path, 0 "
                           "while it goes direct (cross_zone_policy auto).\n"
                           "# TYPE kzproxy_cross_zone_auto_wal gauge\n");
    for (int i = 0; i < n; i++)
        evbuffer_add_printf(b, "kzproxy_cross_zone_auto_wal{zone=\"%s\"} %d\n", rt->policy->z[i].zone,
                            rt->policy->z[i].wal);
    evbuffer_add_printf(b, "# HELP kzproxy_cross_zone_auto_rate_bytes_per_second The produce rate to the zone "
                           "the choice is made on (exponentially weighted).\n"
                           "# TYPE kzproxy_cross_zone_auto_rate_bytes_per_second gauge\n");
    for (int i = 0; i < n; i++)
        evbuffer_add_printf(b, "kzproxy_cross_zone_auto_rate_bytes_per_second{zone=\"%s\"} %.0f\n",
                            rt->policy->z[i].zone, rt_policy_rate(rt, &rt->policy->z[i], now));
    evbuffer_add_printf(b, "# HELP kzproxy_cross_zone_auto_switches_total Changes of path for the zone.\n"
                           "# TYPE kzproxy_cross_zone_auto_switches_total counter\n");
    for (int i = 0; i < n; i++)
        evbuffer_add_printf(b, "kzproxy_cross_zone_auto_switches_total{zone=\"%s\"} %" PRIu64 "\n",
                            rt->policy->z[i].zone, rt->policy->z[i].switches);
    evbuffer_add_printf(b, "# HELP kzproxy_cross_zone_auto_threshold_bytes_per_second The thresholds: WAL "
                           "above, direct below.\n"
                           "# TYPE kzproxy_cross_zone_auto_threshold_bytes_per_second gauge\n"
                           "kzproxy_cross_zone_auto_threshold_bytes_per_second{to=\"wal\"} %.0f\n"
                           "kzproxy_cross_zone_auto_threshold_bytes_per_second{to=\"direct\"} %.0f\n",
                        rt->cfg.auto_wal_above, rt->cfg.auto_direct_below);
}
