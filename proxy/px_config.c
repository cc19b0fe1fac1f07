#include "config.h"

#include "proxy/px_config.h"

#include "common/kz_addr.h"
#include "common/kz_log.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int px_cfg_err(char *errstr, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reject keys the schema does not list: a typo must not be silently ignored. */
static int px_cfg_known(json_t *obj, const char *where, const char *const *keys, char *errstr,
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

static int px_cfg_int(json_t *obj, const char *key, const char *where, long long min, long long max,
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

static int px_cfg_str(json_t *obj, const char *key, const char *where, char **out, int required,
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

static int px_cfg_listen(json_t *obj, const char *key, px_listen_addr *la, int required,
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
    } else if (kz_split_hostport(s, la->host, sizeof(la->host), &la->port) != 0) {
        rc = px_cfg_err(errstr, n, "%s: \"%s\" is not host:port or fd:N", key, s);
    }
    free(s);
    if (present && rc == 0)
        *present = 1;
    return rc;
}

static int px_cfg_hostport(json_t *obj, const char *key, const char *where, char **host, int *port,
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
}

static int px_cfg_limits(json_t *obj, px_limits *l, char *errstr, size_t n)
{
    static const char *const keys[] = {"max_frame_bytes", "max_inflight_requests",
                                       "max_inflight_bytes", "max_output_bytes",
                                       "upstream_max_inflight", "upstream_timeout_ms",
                                       "max_response_bytes", "max_connections", NULL};
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
                                       "bootstrap_servers", "peers", "log_level",
                                       "metadata_refresh_ms", "limits", "client_zones", NULL};
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
    v = cfg->metadata_refresh_ms;
    if (px_cfg_int(root, "metadata_refresh_ms", "", 100, 3600000, &v, 0, errstr, n) != 0)
        return -1;
    cfg->metadata_refresh_ms = (int)v;
    json_t *lim = json_object_get(root, "limits");
    if (lim && px_cfg_limits(lim, &cfg->limits, errstr, n) != 0)
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
    memset(cfg, 0, sizeof(*cfg));
}
