#include "config.h"

#include "proxy/px_config.h"
#include "proxy/px_config_int.h"

#include "common/kz_acl.h"
#include "common/kz_addr.h"
#include "common/kz_log.h"
#include "objwal/ow_store.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int px_cfg_err(char *errstr, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reject keys the schema does not list: a typo must not be silently ignored. */
int px_cfg_known(json_t *obj, const char *where, const char *const *keys, char *errstr,
                        size_t n)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int ok = 0;
        for (const char *const *kk = keys; *kk; kk++)
            if (strcmp(k, *kk) == 0)
                ok = 1;
        if (!ok)
            return px_cfg_err(errstr, n, "%s%s: unknown key", where, k);
    }
    return 0;
}

int px_cfg_int(json_t *obj, const char *key, const char *where, long long min, long long max,
                      long long *out, int required, char *errstr, size_t n)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required)
            return px_cfg_err(errstr, n, "%s%s: missing (an integer is required)", where, key);
        return 0;
    }
    if (!json_is_integer(v))
        return px_cfg_err(errstr, n, "%s%s: expected an integer", where, key);
    long long x = json_integer_value(v);
    if (x < min || x > max)
        return px_cfg_err(errstr, n, "%s%s: %lld is out of range [%lld, %lld]", where, key, x, min, max);
    *out = x;
    return 0;
}

int px_cfg_str(json_t *obj, const char *key, const char *where, char **out, int required,
                      char *errstr, size_t n)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required)
            return px_cfg_err(errstr, n, "%s%s: missing (a string is required)", where, key);
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0)
        return px_cfg_err(errstr, n, "%s%s: expected a non-empty string", where, key);
    free(*out);
    *out = strdup(json_string_value(v));
    return *out ? 0 : px_cfg_err(errstr, n, "out of memory");
}

int px_cfg_listen(json_t *obj, const char *key, px_listen_addr *la, int required,
                         int *present, char *errstr, size_t n)
{
    char *s = NULL;
    if (px_cfg_str(obj, key, "", &s, required, errstr, n) != 0)
        return -1;
    if (s == NULL)
        return 0;
    int rc = 0;
    la->fd = -1;
    if (strncmp(s, "fd:", 3) == 0) {
        char *end;
        long fd = strtol(s + 3, &end, 10);
        if (s[3] == '\0' || *end != '\0' || fd < 0 || fd > INT_MAX)
            rc = px_cfg_err(errstr, n, "%s: \"%s\" is not fd:N", key, s);
        else
            la->fd = (int)fd;
    } else if (strcmp(s, "systemd") == 0) {
        la->fd = PX_LISTEN_SYSTEMD; /* px_listen_fds_take fills it in */
    } else if (kz_split_hostport(s, la->host, sizeof(la->host), &la->port) != 0) {
        rc = px_cfg_err(errstr, n, "%s: \"%s\" is not host:port or fd:N", key, s);
    }
    free(s);
    if (present && rc == 0)
        *present = 1;
    return rc;
}

int px_cfg_hostport(json_t *obj, const char *key, const char *where, char **host, int *port,
                           int required, char *errstr, size_t n)
{
    char *s = NULL;
    if (px_cfg_str(obj, key, where, &s, required, errstr, n) != 0)
        return -1;
    if (s == NULL)
        return 0;
    char h[256];
    int rc = 0;
    if (kz_split_hostport(s, h, sizeof(h), port) != 0 || *port == 0)
        rc = px_cfg_err(errstr, n, "%s%s: \"%s\" is not host:port", where, key, s);
    else if ((*host = strdup(h)) == NULL)
        rc = px_cfg_err(errstr, n, "out of memory");
    free(s);
    return rc;
}

int px_cfg_bool(json_t *obj, const char *key, const char *where, int *out, char *errstr, size_t n)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v))
        return px_cfg_err(errstr, n, "%s%s: expected true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

int px_cfg_num(json_t *obj, const char *key, const char *where, double min, double max, double *out,
                      char *errstr, size_t n)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return px_cfg_err(errstr, n, "%s%s: expected a number", where, key);
    double x = json_number_value(v);
    if (!(x >= min && x <= max))
        return px_cfg_err(errstr, n, "%s%s: %g is out of range [%g, %g]", where, key, x, min, max);
    *out = x;
    return 0;
}

#define PX_CFG_INT(obj, key, where, min, max, lvalue)                                              \
    do {                                                                                           \
        long long v_ = (long long)(lvalue);                                                        \
        if (px_cfg_int(obj, key, where, min, max, &v_, 0, errstr, n) != 0)                         \
            return -1;                                                                             \
        (lvalue) = (__typeof__(lvalue))v_;                                                         \
    } while (0)
static void px_cfg_defaults(px_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->node_id = -1;
    cfg->listen.fd = -1;
    cfg->admin_listen.fd = -1;
    cfg->metadata_refresh_ms = 10000;
    cfg->limits.max_frame_bytes = 100 * 1024 * 1024;
    cfg->limits.max_inflight_requests = 256;
    cfg->limits.max_inflight_bytes = 256 * 1024 * 1024;
    cfg->limits.max_output_bytes = 128 * 1024 * 1024;
    cfg->limits.upstream_max_inflight = 64;
    cfg->limits.upstream_timeout_ms = 30000;
    cfg->limits.max_response_bytes = 512 * 1024 * 1024;
    cfg->limits.max_connections = 100000;
    cfg->limits.cut_through_min_bytes = 64 * 1024;
    cfg->limits.frame_pool_idle_ms = 30000;
    cfg->wal.flush_ms = 250;
    cfg->wal.flush_bytes = 8 * 1024 * 1024;
    cfg->wal.max_inflight_uploads = 8;
    cfg->wal.mem_cap_bytes = 128 * 1024 * 1024;
    cfg->wal.store_deadline_ms = 15000;
    cfg->wal.gc_sweep_ms = 60000;
    cfg->wal.gc_max_age_ms = 3600000;
    cfg->health_check_ms = 1000;
    cfg->rpc_timeout_ms = 10000;
    cfg->peer_replay_window_ms = 30000;
    cfg->peer_replay_max_nonces = 65536;
    cfg->drain_timeout_ms = 30000;
    cfg->workers = PX_WORKERS_DEFAULT;
    cfg->discovery.interval_ms = 10000;
    cfg->prices.cross_zone_per_gb = 0.02;
    cfg->prices.s3_put_per_1000 = 0.005;
    cfg->prices.s3_get_per_1000 = 0.0004;
    cfg->backend_tls.verify_hostname = 1;
    cfg->fetch_from_follower = PX_FETCH_FOLLOWER_BROKER;
    cfg->fetch_follower_retry_ms = 10000;
    cfg->fetch_follower_retry_max_ms = 300000;
    cfg->fetch_cache_bytes = 64LL * 1024 * 1024;
    cfg->fetch_cache_max_age_ms = 60000;
}

static int px_cfg_wal(json_t *obj, px_wal_config *w, char *errstr, size_t n)
{
    static const char *const keys[] = {"store", "flush_ms", "flush_bytes", "max_inflight_uploads",
                                       "mem_cap_bytes", "flush_idle_ms", "key_prefix", "store_deadline_ms",
                                       "gc_sweep_ms", "gc_max_age_ms", "read_check", NULL};
    static const char *const skeys[] = {"backend", "root", "no_fsync", "bucket", "endpoint", "region",
                                        "path_style", "unsigned_payload", "access_key", "secret_key",
                                        "session_token", "sse", "sse_kms_key_id", "ca_file", NULL};
    if (!json_is_object(obj))
        return px_cfg_err(errstr, n, "wal: expected an object");
    if (px_cfg_known(obj, "wal.", keys, errstr, n) != 0)
        return -1;
    json_t *st = json_object_get(obj, "store");
    if (st == NULL)
        return px_cfg_err(errstr, n, "wal.store: missing (an object with \"backend\": \"local\" or \"s3\")");
    if (!json_is_object(st))
        return px_cfg_err(errstr, n, "wal.store: expected an object");
    if (px_cfg_known(st, "wal.store.", skeys, errstr, n) != 0 ||
        px_cfg_str(st, "backend", "wal.store.", &w->backend, 1, errstr, n) != 0)
        return -1;
    if (strcmp(w->backend, "local") == 0) {
        if (px_cfg_str(st, "root", "wal.store.", &w->root, 1, errstr, n) != 0 ||
            px_cfg_bool(st, "no_fsync", "wal.store.", &w->no_fsync, errstr, n) != 0)
            return -1;
    } else if (strcmp(w->backend, "s3") == 0) {
        if (px_cfg_str(st, "bucket", "wal.store.", &w->bucket, 1, errstr, n) != 0 ||
            px_cfg_str(st, "endpoint", "wal.store.", &w->endpoint, 0, errstr, n) != 0 ||
            px_cfg_str(st, "region", "wal.store.", &w->region, 0, errstr, n) != 0 ||
            px_cfg_bool(st, "path_style", "wal.store.", &w->path_style, errstr, n) != 0 ||
            px_cfg_bool(st, "unsigned_payload", "wal.store.", &w->unsigned_payload, errstr, n) != 0 ||
            px_cfg_str(st, "access_key", "wal.store.", &w->access_key, 0, errstr, n) != 0 ||
            px_cfg_str(st, "secret_key", "wal.store.", &w->secret_key, 0, errstr, n) != 0 ||
            px_cfg_s3_security(st, w, errstr, n) != 0)
            return -1;
        /* Unset: unsigned over TLS (AWS's endpoint, or an https:// one), where
         * TLS protects the body and each chunk carries its CRC32C anyway;
         * signed over plain HTTP, where the signature is the body's only
         * check in transit beyond TCP's. */
        if (json_object_get(st, "unsigned_payload") == NULL)
            w->unsigned_payload = w->endpoint == NULL || strncasecmp(w->endpoint, "https://", 8) == 0;
    } else {
        return px_cfg_err(errstr, n, "wal.store.backend: \"%s\" is not \"local\" or \"s3\"", w->backend);
    }
    PX_CFG_INT(obj, "flush_ms", "wal.", 1, 60000, w->flush_ms);
    PX_CFG_INT(obj, "flush_idle_ms", "wal.", 0, 60000, w->flush_idle_ms);
    PX_CFG_INT(obj, "flush_bytes", "wal.", 1024, 1LL << 30, w->flush_bytes);
    PX_CFG_INT(obj, "max_inflight_uploads", "wal.", 1, 1024, w->max_inflight_uploads);
    PX_CFG_INT(obj, "mem_cap_bytes", "wal.", 1LL << 20, 1LL << 36, w->mem_cap_bytes);
    PX_CFG_INT(obj, "store_deadline_ms", "wal.", 100, 600000, w->store_deadline_ms);
    PX_CFG_INT(obj, "gc_sweep_ms", "wal.", 0, 86400000, w->gc_sweep_ms);
    PX_CFG_INT(obj, "gc_max_age_ms", "wal.", 60000, 7LL * 86400000, w->gc_max_age_ms);
    if (px_cfg_str(obj, "key_prefix", "wal.", &w->key_prefix, 0, errstr, n) != 0)
        return -1;
    /* Router-in refuses a peer's object key outside this prefix, so it must
     * be a plain directory-like key. */
    if (w->key_prefix && (w->key_prefix[0] == '\0' || w->key_prefix[strlen(w->key_prefix) - 1] != '/' ||
                          strlen(w->key_prefix) > 200 || !ow_key_valid(w->key_prefix)))
        return px_cfg_err(errstr, n, "wal.key_prefix: \"%s\" must be a plain key ending in '/' (e.g. \"wal/\": "
                          "[A-Za-z0-9._-/], no leading '/', no \"..\" or \"//\", at most 200 bytes)", w->key_prefix);
    char *check = NULL;
    if (px_cfg_str(obj, "read_check", "wal.", &check, 0, errstr, n) != 0)
        return -1;
    if (check != NULL && strcmp(check, "headers") != 0 && strcmp(check, "payload") != 0) {
        px_cfg_err(errstr, n, "wal.read_check: \"%s\" is not \"headers\" (the default: the broker checks each "
                   "record batch's CRC) or \"payload\" (a CRC32C over every byte read, for a backend that does "
                   "not check batch CRCs)", check);
        free(check);
        return -1;
    }
    w->read_check_payload = check != NULL && strcmp(check, "payload") == 0;
    free(check);
    if (w->mem_cap_bytes < w->flush_bytes)
        return px_cfg_err(errstr, n, "wal.mem_cap_bytes: must be at least wal.flush_bytes (%lld)", w->flush_bytes);
    w->enabled = 1;
    return 0;
}

static int px_cfg_discovery(json_t *obj, px_discovery *d, char *errstr, size_t n)
{
    static const char *const keys[] = {"dns_name", "port", "interval_ms", "nameservers", NULL};
    if (!json_is_object(obj))
        return px_cfg_err(errstr, n, "discovery: expected an object");
    if (px_cfg_known(obj, "discovery.", keys, errstr, n) != 0 ||
        px_cfg_str(obj, "dns_name", "discovery.", &d->dns_name, 1, errstr, n) != 0)
        return -1;
    long long port = 0;
    if (px_cfg_int(obj, "port", "discovery.", 1, 65535, &port, 1, errstr, n) != 0)
        return -1;
    d->port = (int)port;
    PX_CFG_INT(obj, "interval_ms", "discovery.", 100, 3600000, d->interval_ms);
    json_t *ns = json_object_get(obj, "nameservers");
    if (ns) {
        if (!json_is_array(ns))
            return px_cfg_err(errstr, n, "discovery.nameservers: expected an array of \"ip[:port]\"");
        size_t cnt = json_array_size(ns);
        d->nameservers = calloc(cnt ? cnt : 1, sizeof(char *));
        if (d->nameservers == NULL)
            return px_cfg_err(errstr, n, "out of memory");
        for (size_t i = 0; i < cnt; i++) {
            json_t *s = json_array_get(ns, i);
            if (!json_is_string(s) || json_string_length(s) == 0)
                return px_cfg_err(errstr, n, "discovery.nameservers[%zu]: expected \"ip[:port]\"", i);
            d->nameservers[d->nnameservers++] = strdup(json_string_value(s));
        }
    }
    return 0;
}

/* "cross_zone_auto": the thresholds of cross_zone_policy "auto"; a threshold
 * left out comes from the prices and wal.flush_ms (router/rt_policy.c). */
static int px_cfg_auto(json_t *obj, px_config *cfg, char *errstr, size_t n)
{
    static const char *const keys[] = {"wal_above_bytes_per_s", "direct_below_bytes_per_s", "min_dwell_ms",
                                       "window_ms", NULL};
    if (obj && !json_is_object(obj))
        return px_cfg_err(errstr, n, "cross_zone_auto: expected an object");
    cfg->auto_min_dwell_ms = 30000;
    cfg->auto_window_ms = 5000;
    if (obj) {
        if (px_cfg_known(obj, "cross_zone_auto.", keys, errstr, n) != 0 ||
            px_cfg_num(obj, "wal_above_bytes_per_s", "cross_zone_auto.", 0, 1e12, &cfg->auto_wal_above, errstr,
                       n) != 0 ||
            px_cfg_num(obj, "direct_below_bytes_per_s", "cross_zone_auto.", 0, 1e12, &cfg->auto_direct_below,
                       errstr, n) != 0)
            return -1;
        PX_CFG_INT(obj, "min_dwell_ms", "cross_zone_auto.", 0, 3600000, cfg->auto_min_dwell_ms);
        PX_CFG_INT(obj, "window_ms", "cross_zone_auto.", 100, 600000, cfg->auto_window_ms);
    }
    /* Break-even: (1000 / flush_ms) objects a second, a PUT and a GET each,
     * against rate x the cross-zone price. */
    const px_prices *pr = &cfg->prices;
    double even = pr->cross_zone_per_gb > 0
                      ? 1000.0 / cfg->wal.flush_ms * (pr->s3_put_per_1000 + pr->s3_get_per_1000) / 1000 /
                            pr->cross_zone_per_gb * 1e9
                      : 1e12;
    if (cfg->auto_wal_above <= 0)
        cfg->auto_wal_above = 1.25 * even;
    if (cfg->auto_direct_below <= 0)
        cfg->auto_direct_below = 0.75 * even;
    if (cfg->auto_direct_below >= cfg->auto_wal_above)
        return px_cfg_err(errstr, n, "cross_zone_auto: direct_below_bytes_per_s (%.0f) must be below "
                                     "wal_above_bytes_per_s (%.0f), or the choice would flap",
                          cfg->auto_direct_below, cfg->auto_wal_above);
    return 0;
}

static int px_cfg_prices(json_t *obj, px_prices *p, char *errstr, size_t n)
{
    static const char *const keys[] = {"cross_zone_per_gb", "s3_put_per_1000", "s3_get_per_1000", NULL};
    if (!json_is_object(obj))
        return px_cfg_err(errstr, n, "prices: expected an object");
    if (px_cfg_known(obj, "prices.", keys, errstr, n) != 0 ||
        px_cfg_num(obj, "cross_zone_per_gb", "prices.", 0, 1000, &p->cross_zone_per_gb, errstr, n) != 0 ||
        px_cfg_num(obj, "s3_put_per_1000", "prices.", 0, 1000, &p->s3_put_per_1000, errstr, n) != 0 ||
        px_cfg_num(obj, "s3_get_per_1000", "prices.", 0, 1000, &p->s3_get_per_1000, errstr, n) != 0)
        return -1;
    return 0;
}

static int px_cfg_limits(json_t *obj, px_limits *l, char *errstr, size_t n)
{
    static const char *const keys[] = {"max_frame_bytes", "max_inflight_requests",
                                       "max_inflight_bytes", "max_output_bytes",
                                       "upstream_max_inflight", "upstream_timeout_ms",
                                       "max_response_bytes", "max_connections",
                                       "cut_through_min_bytes", "frame_pool_idle_ms", NULL};
    if (!json_is_object(obj))
        return px_cfg_err(errstr, n, "limits: expected an object");
    if (px_cfg_known(obj, "limits.", keys, errstr, n) != 0)
        return -1;
    long long v;
    const char *w = "limits.";
#define PX_LIM(key, min, max, field)                                                               \
    v = (long long)l->field;                                                                       \
    if (px_cfg_int(obj, key, w, min, max, &v, 0, errstr, n) != 0)                                  \
        return -1;                                                                                 \
    l->field = (__typeof__(l->field))v;
    PX_LIM("max_frame_bytes", 1024, 1LL << 30, max_frame_bytes);
    PX_LIM("max_inflight_requests", 1, 100000, max_inflight_requests);
    PX_LIM("max_inflight_bytes", 1024, 1LL << 34, max_inflight_bytes);
    PX_LIM("max_output_bytes", 1024, 1LL << 34, max_output_bytes);
    PX_LIM("upstream_max_inflight", 1, 100000, upstream_max_inflight);
    PX_LIM("upstream_timeout_ms", 100, 3600000, upstream_timeout_ms);
    PX_LIM("max_response_bytes", 1024, 1LL << 31, max_response_bytes);
    PX_LIM("max_connections", 1, 10000000, max_connections);
    PX_LIM("cut_through_min_bytes", 0, 1LL << 30, cut_through_min_bytes);
    PX_LIM("frame_pool_idle_ms", 0, 86400000, frame_pool_idle_ms);
#undef PX_LIM
    return 0;
}

static int px_cfg_peers(json_t *arr, px_config *cfg, char *errstr, size_t n)
{
    static const char *const keys[] = {"node_id", "zone", "advertised", "admin", NULL};
    if (!json_is_array(arr))
        return px_cfg_err(errstr, n, "peers: expected an array of objects");
    size_t np = json_array_size(arr);
    cfg->peers = calloc(np ? np : 1, sizeof(px_peer));
    if (cfg->peers == NULL)
        return px_cfg_err(errstr, n, "out of memory");
    for (size_t i = 0; i < np; i++) {
        json_t *o = json_array_get(arr, i);
        char where[32];
        snprintf(where, sizeof(where), "peers[%zu].", i);
        if (!json_is_object(o))
            return px_cfg_err(errstr, n, "peers[%zu]: expected an object", i);
        if (px_cfg_known(o, where, keys, errstr, n) != 0)
            return -1;
        px_peer *p = &cfg->peers[cfg->npeers++];
        long long id = -1;
        if (px_cfg_int(o, "node_id", where, 0, INT32_MAX, &id, 1, errstr, n) != 0 ||
            px_cfg_str(o, "zone", where, &p->zone, 1, errstr, n) != 0 ||
            px_cfg_hostport(o, "advertised", where, &p->host, &p->port, 1, errstr, n) != 0 ||
            px_cfg_str(o, "admin", where, &p->admin, 0, errstr, n) != 0)
            return -1;
        p->node_id = (int32_t)id;
        if (p->node_id == cfg->node_id)
            return px_cfg_err(errstr, n, "%snode_id: %d is this proxy's own node_id", where, p->node_id);
        for (int j = 0; j < cfg->npeers - 1; j++)
            if (cfg->peers[j].node_id == p->node_id)
                return px_cfg_err(errstr, n, "%snode_id: %d appears twice", where, p->node_id);
    }
    return 0;
}

static int px_cfg_client_zones(json_t *arr, px_config *cfg, char *errstr, size_t n)
{
    static const char *const keys[] = {"cidr", "zone", NULL};
    if (!json_is_array(arr))
        return px_cfg_err(errstr, n, "client_zones: expected an array of {\"cidr\", \"zone\"}");
    size_t cnt = json_array_size(arr);
    cfg->client_zones = calloc(cnt ? cnt : 1, sizeof(px_cidr_zone));
    if (cfg->client_zones == NULL)
        return px_cfg_err(errstr, n, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        json_t *o = json_array_get(arr, i);
        char where[40];
        snprintf(where, sizeof(where), "client_zones[%zu].", i);
        if (!json_is_object(o))
            return px_cfg_err(errstr, n, "client_zones[%zu]: expected an object", i);
        if (px_cfg_known(o, where, keys, errstr, n) != 0)
            return -1;
        px_cidr_zone *cz = &cfg->client_zones[cfg->nclient_zones++];
        char *cidr = NULL;
        if (px_cfg_str(o, "zone", where, &cz->zone, 1, errstr, n) != 0 ||
            px_cfg_str(o, "cidr", where, &cidr, 1, errstr, n) != 0)
            return -1;
        char *slash = strchr(cidr, '/');
        char *end = NULL;
        long pl = slash ? strtol(slash + 1, &end, 10) : -1;
        if (slash)
            *slash = '\0';
        int rc = 0;
        if (inet_pton(AF_INET, cidr, cz->addr) == 1) {
            cz->family = AF_INET;
            if (!slash || *end != '\0' || pl < 0 || pl > 32)
                rc = -1;
        } else if (inet_pton(AF_INET6, cidr, cz->addr) == 1) {
            cz->family = AF_INET6;
            if (!slash || *end != '\0' || pl < 0 || pl > 128)
                rc = -1;
        } else {
            rc = -1;
        }
        cz->prefix = (int)pl;
        free(cidr);
        if (rc != 0)
            return px_cfg_err(errstr, n, "%scidr: expected an address/prefix such as 10.0.1.0/24", where);
    }
    return 0;
}

static int px_cfg_bootstrap(json_t *v, px_config *cfg, char *errstr, size_t n)
{
    if (v == NULL)
        return px_cfg_err(errstr, n, "bootstrap_servers: missing (list the backend brokers as host:port)");
    size_t cnt = json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_array(v) || cnt == 0)
        return px_cfg_err(errstr, n, "bootstrap_servers: expected a non-empty array of \"host:port\"");
    cfg->bootstrap = calloc(cnt, sizeof(char *));
    if (cfg->bootstrap == NULL)
        return px_cfg_err(errstr, n, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        json_t *s = json_array_get(v, i);
        char host[256];
        int port;
        if (!json_is_string(s) || kz_split_hostport(json_string_value(s), host, sizeof(host), &port) != 0 ||
            port == 0)
            return px_cfg_err(errstr, n, "bootstrap_servers[%zu]: expected \"host:port\"", i);
        cfg->bootstrap[cfg->nbootstrap++] = strdup(json_string_value(s));
    }
    return 0;
}

static int px_cfg_from_json(json_t *root, px_config *cfg, char *errstr, size_t n)
{
    static const char *const keys[] = {"node_id", "zone", "listen", "advertised", "admin_listen",
                                       "bootstrap_servers", "peers", "log_level", "log_format",
                                       "metadata_refresh_ms", "limits", "client_zones", "wal",
                                       "peer_secret", "cross_zone_policy", "health_check_ms",
                                       "rpc_timeout_ms", "discovery", "prices", "backend", "fetch_from_follower",
                                       "fetch_follower_retry_ms", "fetch_follower_retry_max_ms", "fetch_cache_bytes", "fetch_cache_max_age_ms", "cross_zone_auto", "client_tls", "client_sasl", "peer_tls",
                                       "peer_replay_window_ms", "peer_replay_max_nonces", "acls",
                                       "drain_timeout_ms", "workers", "admin_reload", NULL};
    if (!json_is_object(root))
        return px_cfg_err(errstr, n, "the top level must be a JSON object");
    if (px_cfg_known(root, "", keys, errstr, n) != 0)
        return -1;
    long long v = -1;
    if (px_cfg_int(root, "node_id", "", 0, INT32_MAX, &v, 1, errstr, n) != 0)
        return -1;
    cfg->node_id = (int32_t)v;
    if (px_cfg_str(root, "zone", "", &cfg->zone, 1, errstr, n) != 0)
        return -1;
    if (px_cfg_listen(root, "listen", &cfg->listen, 1, NULL, errstr, n) != 0)
        return -1;
    if (px_cfg_hostport(root, "advertised", "", &cfg->advertised_host, &cfg->advertised_port, 0,
                        errstr, n) != 0)
        return -1;
    if (cfg->advertised_host == NULL) {
        if (cfg->listen.fd >= 0 || cfg->listen.port == 0 || strcmp(cfg->listen.host, "0.0.0.0") == 0 ||
            strcmp(cfg->listen.host, "::") == 0)
            return px_cfg_err(errstr, n, "advertised: missing (required when listen is fd:N, port 0 or a wildcard address)");
        cfg->advertised_host = strdup(cfg->listen.host);
        cfg->advertised_port = cfg->listen.port;
    }
    if (px_cfg_listen(root, "admin_listen", &cfg->admin_listen, 0, &cfg->have_admin, errstr, n) != 0)
        return -1;
    char *ar = NULL;
    if (px_cfg_str(root, "admin_reload", "", &ar, 0, errstr, n) != 0)
        return -1;
    if (ar) {
        cfg->admin_reload = strcmp(ar, "local") == 0 ? PX_ADMIN_RELOAD_LOCAL
                            : strcmp(ar, "any") == 0 ? PX_ADMIN_RELOAD_ANY
                            : strcmp(ar, "off") == 0 ? PX_ADMIN_RELOAD_OFF
                                                     : -1;
        free(ar);
        if (cfg->admin_reload < 0)
            return px_cfg_err(errstr, n, "admin_reload: expected \"local\", \"any\" or \"off\"");
    }
    if (px_cfg_bootstrap(json_object_get(root, "bootstrap_servers"), cfg, errstr, n) != 0)
        return -1;
    json_t *peers = json_object_get(root, "peers");
    if (peers && px_cfg_peers(peers, cfg, errstr, n) != 0)
        return -1;
    json_t *cz = json_object_get(root, "client_zones");
    if (cz && px_cfg_client_zones(cz, cfg, errstr, n) != 0)
        return -1;
    if (px_cfg_str(root, "log_level", "", &cfg->log_level, 0, errstr, n) != 0)
        return -1;
    if (cfg->log_level && kz_log_level_parse(cfg->log_level) < 0)
        return px_cfg_err(errstr, n, "log_level: \"%s\" is not one of error, warn, info, debug", cfg->log_level);
    char *lf = NULL;
    if (px_cfg_str(root, "log_format", "", &lf, 0, errstr, n) != 0)
        return -1;
    if (lf && (cfg->log_format = kz_log_format_parse(lf)) < 0) {
        free(lf);
        return px_cfg_err(errstr, n, "log_format: expected \"text\" or \"json\"");
    }
    free(lf);
    v = cfg->metadata_refresh_ms;
    if (px_cfg_int(root, "metadata_refresh_ms", "", 100, 3600000, &v, 0, errstr, n) != 0)
        return -1;
    cfg->metadata_refresh_ms = (int)v;
    json_t *lim = json_object_get(root, "limits");
    if (lim && px_cfg_limits(lim, &cfg->limits, errstr, n) != 0)
        return -1;
    json_t *wal = json_object_get(root, "wal");
    if (wal && px_cfg_wal(wal, &cfg->wal, errstr, n) != 0)
        return -1;
    if (px_cfg_str(root, "peer_secret", "", &cfg->peer_secret, 0, errstr, n) != 0)
        return -1;
    if (cfg->peer_secret && strlen(cfg->peer_secret) < 16)
        return px_cfg_err(errstr, n, "peer_secret: too short (use at least 16 characters, e.g. from openssl rand -hex 32)");
    if (cfg->wal.enabled && cfg->peer_secret == NULL)
        return px_cfg_err(errstr, n, "peer_secret: missing (required with wal: peers authenticate the WAL RPC with it)");
    char *policy = NULL;
    if (px_cfg_str(root, "cross_zone_policy", "", &policy, 0, errstr, n) != 0)
        return -1;
    if (policy && strcmp(policy, "direct") == 0)
        cfg->cross_zone_direct = 1;
    else if (policy && strcmp(policy, "auto") == 0)
        cfg->cross_zone_auto = 1;
    else if (policy && strcmp(policy, "wal") != 0) {
        free(policy);
        return px_cfg_err(errstr, n, "cross_zone_policy: expected \"wal\", \"direct\" or \"auto\"");
    }
    free(policy);
    PX_CFG_INT(root, "health_check_ms", "", 50, 600000, cfg->health_check_ms);
    PX_CFG_INT(root, "rpc_timeout_ms", "", 100, 600000, cfg->rpc_timeout_ms);
    PX_CFG_INT(root, "peer_replay_window_ms", "", 1000, 3600000, cfg->peer_replay_window_ms);
    PX_CFG_INT(root, "peer_replay_max_nonces", "", 1024, 1 << 24, cfg->peer_replay_max_nonces);
    PX_CFG_INT(root, "drain_timeout_ms", "", 0, 3600000, cfg->drain_timeout_ms);
    PX_CFG_INT(root, "workers", "", 0, 256, cfg->workers);
    json_t *disc = json_object_get(root, "discovery");
    if (disc && px_cfg_discovery(disc, &cfg->discovery, errstr, n) != 0)
        return -1;
    if (cfg->discovery.dns_name && cfg->peer_secret == NULL)
        return px_cfg_err(errstr, n, "discovery: needs peer_secret (discovered proxies identify themselves over the authenticated peer RPC)");
    json_t *pr = json_object_get(root, "prices");
    if (pr && px_cfg_prices(pr, &cfg->prices, errstr, n) != 0)
        return -1;
    json_t *be = json_object_get(root, "backend");
    if (be && px_cfg_backend(be, cfg, errstr, n) != 0)
        return -1;
    if (px_cfg_auto(json_object_get(root, "cross_zone_auto"), cfg, errstr, n) != 0)
        return -1;
    char *fff = NULL;
    if (px_cfg_str(root, "fetch_from_follower", "", &fff, 0, errstr, n) != 0)
        return -1;
    if (fff && strcmp(fff, "broker") == 0)
        cfg->fetch_from_follower = PX_FETCH_FOLLOWER_BROKER;
    else if (fff && strcmp(fff, "metadata") == 0)
        cfg->fetch_from_follower = PX_FETCH_FOLLOWER_METADATA;
    else if (fff && strcmp(fff, "off") == 0)
        cfg->fetch_from_follower = PX_FETCH_FOLLOWER_OFF;
    else if (fff) {
        free(fff);
        return px_cfg_err(errstr, n, "fetch_from_follower: expected \"broker\", \"metadata\" or \"off\"");
    }
    free(fff);
    PX_CFG_INT(root, "fetch_follower_retry_ms", "", 100, 3600000, cfg->fetch_follower_retry_ms);
    PX_CFG_INT(root, "fetch_follower_retry_max_ms", "", 100, 3600000, cfg->fetch_follower_retry_max_ms);
    if (cfg->fetch_follower_retry_max_ms < cfg->fetch_follower_retry_ms)
        cfg->fetch_follower_retry_max_ms = cfg->fetch_follower_retry_ms;
    PX_CFG_INT(root, "fetch_cache_bytes", "", 0, 1LL << 36, cfg->fetch_cache_bytes);
    PX_CFG_INT(root, "fetch_cache_max_age_ms", "", 100, 86400000, cfg->fetch_cache_max_age_ms);
    json_t *ctls = json_object_get(root, "client_tls");
    if (ctls && px_cfg_client_tls(ctls, &cfg->client_tls, errstr, n) != 0)
        return -1;
    if (px_cfg_peer_tls(json_object_get(root, "peer_tls"), cfg, errstr, n) != 0)
        return -1;
    json_t *csasl = json_object_get(root, "client_sasl");
    cfg->client_sasl.failure_delay_ms = 1000;
    if (csasl && px_cfg_client_sasl(csasl, &cfg->client_sasl, errstr, n) != 0)
        return -1;
    json_t *acls = json_object_get(root, "acls");
    if (acls && px_cfg_acls(acls, cfg, errstr, n) != 0)
        return -1;
    return 0;
}

int px_config_parse(const char *text, px_config *cfg, char *errstr, size_t n)
{
    px_cfg_defaults(cfg);
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return px_cfg_err(errstr, n, "line %d column %d: %s", je.line, je.column, je.text);
    int rc = px_cfg_from_json(root, cfg, errstr, n);
    json_decref(root);
    return rc;
}

int px_config_load(const char *path, px_config *cfg, char *errstr, size_t n)
{
    px_cfg_defaults(cfg);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return px_cfg_err(errstr, n, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
    int rc = px_cfg_from_json(root, cfg, errstr, n);
    json_decref(root);
    return rc;
}

void px_config_free(px_config *cfg)
{
    free(cfg->zone);
    free(cfg->advertised_host);
    for (int i = 0; i < cfg->nbootstrap; i++)
        free(cfg->bootstrap[i]);
    free(cfg->bootstrap);
    for (int i = 0; i < cfg->npeers; i++) {
        free(cfg->peers[i].zone);
        free(cfg->peers[i].host);
        free(cfg->peers[i].admin);
    }
    free(cfg->peers);
    for (int i = 0; i < cfg->nclient_zones; i++)
        free(cfg->client_zones[i].zone);
    free(cfg->client_zones);
    free(cfg->log_level);
    px_wal_config *w = &cfg->wal;
    free(w->backend);
    free(w->root);
    free(w->bucket);
    free(w->endpoint);
    free(w->region);
    free(w->access_key);
    if (w->secret_key)
        explicit_bzero(w->secret_key, strlen(w->secret_key));
    free(w->secret_key);
    if (w->session_token)
        explicit_bzero(w->session_token, strlen(w->session_token));
    free(w->session_token);
    free(w->sse);
    free(w->sse_kms_key_id);
    free(w->ca_file);
    free(w->key_prefix);
    if (cfg->peer_secret)
        explicit_bzero(cfg->peer_secret, strlen(cfg->peer_secret));
    free(cfg->peer_secret);
    free(cfg->discovery.dns_name);
    for (int i = 0; i < cfg->discovery.nnameservers; i++)
        free(cfg->discovery.nameservers[i]);
    free(cfg->discovery.nameservers);
    free(cfg->backend_tls.ca_file);
    free(cfg->backend_tls.cert_file);
    free(cfg->backend_tls.key_file);
    free(cfg->client_tls.cert_file);
    free(cfg->client_tls.key_file);
    free(cfg->client_tls.ca_file);
    free(cfg->peer_tls.ca_file);
    free(cfg->peer_tls.cert_file);
    free(cfg->peer_tls.key_file);
    px_backend_sasl *bs = &cfg->backend_sasl;
    free(bs->mechanism);
    free(bs->username);
    if (bs->password)
        explicit_bzero(bs->password, strlen(bs->password));
    free(bs->password);
    free(bs->password_file);
    if (bs->token)
        explicit_bzero(bs->token, strlen(bs->token));
    free(bs->token);
    free(bs->token_file);
    for (int i = 0; i < cfg->client_sasl.nmechanisms; i++)
        free(cfg->client_sasl.mechanisms[i]);
    free(cfg->client_sasl.mechanisms);
    free(cfg->client_sasl.credentials_file);
    kz_acl_free(cfg->acl);
    memset(cfg, 0, sizeof(*cfg));
}
