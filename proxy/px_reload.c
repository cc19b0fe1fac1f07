/*
 * Live reload (SIGHUP, POST /reload): re-read the config file and apply
 * what can change without a restart.
 *
 * The new file is loaded and validated into a fresh px_config. Invalid: the
 * running config stays, the first error is logged and counted. Valid: the
 * keys that can change live are moved field by field INTO the running
 * px_config (px->cfg), and the values they replace go to the fresh one,
 * which is then freed. The running px_config itself is never replaced,
 * because long-lived objects keep pointers into it (px_tls: client_tls;
 * mc_peers and the router: peer_secret; the metadata client: bootstrap and
 * zone; the virtual cluster: zone and advertised host); only fields that
 * nothing keeps a pointer to are swapped, and the one that is kept (the
 * router's ACL pointer) is updated in the same step, between two events.
 *
 * Live: peers (static list), discovery.dns_name and interval_ms,
 * client_zones, client-side limits, admin_reload, prices, log_level, wal.flush_ms /
 * flush_idle_ms / flush_bytes, cross_zone_policy between "wal" and "direct"
 * (to or from "auto": a restart), fetch_from_follower and
 * its retry delays, drain_timeout_ms, acls; client_tls files are re-read.
 * Everything else is compared and, when changed, named in one log line as
 * needing a restart.
 */
#include "config.h"

#include "proxy/px_proxy.h"
#include "proxy/px_tls.h"
#include "proxy/px_worker.h"

#include "common/kz_acl.h"
#include "common/kz_log.h"
#include "meta-client/mc_peers.h"
#include "router/rt_router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int px_streq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static int px_listen_eq(const px_listen_addr *a, const px_listen_addr *b)
{
    return a->fd == b->fd && a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* Append name to the list of keys that need a restart. */
static void px_restart_key(char *list, size_t n, const char *name)
{
    size_t len = strlen(list);
    if (len + 1 < n)
        snprintf(list + len, n - len, "%s%s", len ? ", " : "", name);
}

static int px_strv_eq(char **a, int na, char **b, int nb)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (!px_streq(a[i], b[i]))
            return 0;
    return 1;
}

/* The keys that changed but cannot change live. */
static void px_reload_restart_keys(const px_config *o, const px_config *c, char *list, size_t n)
{
    list[0] = '\0';
    if (!px_listen_eq(&o->listen, &c->listen))
        px_restart_key(list, n, "listen");
    if (!px_streq(o->advertised_host, c->advertised_host) || o->advertised_port != c->advertised_port)
        px_restart_key(list, n, "advertised");
    if (o->have_admin != c->have_admin || !px_listen_eq(&o->admin_listen, &c->admin_listen))
        px_restart_key(list, n, "admin_listen");
    if (o->node_id != c->node_id)
        px_restart_key(list, n, "node_id");
    if (o->workers != c->workers)
        px_restart_key(list, n, "workers");
    if (!px_streq(o->zone, c->zone))
        px_restart_key(list, n, "zone");
    if (!px_strv_eq(o->bootstrap, o->nbootstrap, c->bootstrap, c->nbootstrap))
        px_restart_key(list, n, "bootstrap_servers");
    if (o->log_format != c->log_format)
        px_restart_key(list, n, "log_format");
    if (o->metadata_refresh_ms != c->metadata_refresh_ms)
        px_restart_key(list, n, "metadata_refresh_ms");
    if (o->limits.upstream_max_inflight != c->limits.upstream_max_inflight ||
        o->limits.upstream_timeout_ms != c->limits.upstream_timeout_ms ||
        o->limits.max_response_bytes != c->limits.max_response_bytes)
        px_restart_key(list, n, "limits.upstream_*/max_response_bytes");
    const px_wal_config *ow = &o->wal, *cw = &c->wal;
    if (ow->enabled != cw->enabled || !px_streq(ow->backend, cw->backend) || !px_streq(ow->root, cw->root) ||
        ow->no_fsync != cw->no_fsync || !px_streq(ow->bucket, cw->bucket) || !px_streq(ow->endpoint, cw->endpoint) ||
        !px_streq(ow->region, cw->region) || ow->path_style != cw->path_style ||
        ow->unsigned_payload != cw->unsigned_payload || !px_streq(ow->access_key, cw->access_key) ||
        !px_streq(ow->secret_key, cw->secret_key) || !px_streq(ow->key_prefix, cw->key_prefix) ||
        ow->store_deadline_ms != cw->store_deadline_ms || ow->gc_sweep_ms != cw->gc_sweep_ms ||
        ow->gc_max_age_ms != cw->gc_max_age_ms || ow->read_check_payload != cw->read_check_payload)
        px_restart_key(list, n, "wal.store/read_check");
    if (ow->max_inflight_uploads != cw->max_inflight_uploads || ow->mem_cap_bytes != cw->mem_cap_bytes)
        px_restart_key(list, n, "wal.max_inflight_uploads/mem_cap_bytes");
    if (!px_streq(o->peer_secret, c->peer_secret))
        px_restart_key(list, n, "peer_secret");
    if (o->peer_replay_window_ms != c->peer_replay_window_ms || o->peer_replay_max_nonces != c->peer_replay_max_nonces)
        px_restart_key(list, n, "peer_replay_*");
    if (o->cross_zone_auto != c->cross_zone_auto || o->auto_wal_above != c->auto_wal_above ||
        o->auto_direct_below != c->auto_direct_below || o->auto_min_dwell_ms != c->auto_min_dwell_ms ||
        o->auto_window_ms != c->auto_window_ms)
        px_restart_key(list, n, "cross_zone_policy \"auto\" / cross_zone_auto");
    if (o->health_check_ms != c->health_check_ms)
        px_restart_key(list, n, "health_check_ms");
    if (o->rpc_timeout_ms != c->rpc_timeout_ms)
        px_restart_key(list, n, "rpc_timeout_ms");
    const px_discovery *od = &o->discovery, *cd = &c->discovery;
    if ((od->dns_name == NULL) != (cd->dns_name == NULL) || od->port != cd->port ||
        !px_strv_eq(od->nameservers, od->nnameservers, cd->nameservers, cd->nnameservers))
        px_restart_key(list, n, "discovery (on/off, port, nameservers)");
    if (o->fetch_cache_bytes != c->fetch_cache_bytes || o->fetch_cache_max_age_ms != c->fetch_cache_max_age_ms)
        px_restart_key(list, n, "fetch_cache_bytes/max_age_ms");
    const px_backend_tls *ob = &o->backend_tls, *cb = &c->backend_tls;
    const px_backend_sasl *os = &o->backend_sasl, *cs = &c->backend_sasl;
    if (ob->enabled != cb->enabled || !px_streq(ob->ca_file, cb->ca_file) || ob->verify_hostname != cb->verify_hostname ||
        !px_streq(ob->cert_file, cb->cert_file) || !px_streq(ob->key_file, cb->key_file) ||
        !px_streq(os->mechanism, cs->mechanism) || !px_streq(os->username, cs->username) ||
        !px_streq(os->password, cs->password) || !px_streq(os->password_file, cs->password_file) ||
        !px_streq(os->token, cs->token) || !px_streq(os->token_file, cs->token_file))
        px_restart_key(list, n, "backend");
    const px_client_tls *ot = &o->client_tls, *ct = &c->client_tls;
    if (ot->enabled != ct->enabled || !px_streq(ot->cert_file, ct->cert_file) || !px_streq(ot->key_file, ct->key_file) ||
        !px_streq(ot->ca_file, ct->ca_file) || ot->client_auth != ct->client_auth)
        px_restart_key(list, n, "client_tls (the files it names are re-read)");
    const px_client_sasl *oc = &o->client_sasl, *cc = &c->client_sasl;
    if (oc->enabled != cc->enabled || !px_streq(oc->credentials_file, cc->credentials_file) ||
        !px_strv_eq(oc->mechanisms, oc->nmechanisms, cc->mechanisms, cc->nmechanisms) ||
        oc->failure_delay_ms != cc->failure_delay_ms || oc->session_lifetime_ms != cc->session_lifetime_ms)
        px_restart_key(list, n, "client_sasl");
    const px_peer_tls *op = &o->peer_tls, *cp = &c->peer_tls;
    if (op->enabled != cp->enabled || !px_streq(op->ca_file, cp->ca_file) || op->verify_hostname != cp->verify_hostname ||
        !px_streq(op->cert_file, cp->cert_file) || !px_streq(op->key_file, cp->key_file))
        px_restart_key(list, n, "peer_tls");
}

/* Swap helpers: the running config takes c's value, c takes the old one
 * (and frees it with the rest of c). */
#define PX_SWAP(a, b)                                                                                              \
    do {                                                                                                           \
        __typeof__(a) px_swap_tmp_ = (a);                                                                          \
        (a) = (b);                                                                                                 \
        (b) = px_swap_tmp_;                                                                                        \
    } while (0)

static int px_peers_eq(const px_config *o, const px_config *c)
{
    if (o->npeers != c->npeers)
        return 0;
    for (int i = 0; i < o->npeers; i++) {
        const px_peer *a = &o->peers[i], *b = &c->peers[i];
        if (a->node_id != b->node_id || a->port != b->port || !px_streq(a->zone, b->zone) ||
            !px_streq(a->host, b->host) || !px_streq(a->admin, b->admin))
            return 0;
    }
    return 1;
}

/* Move the live keys of c into px->cfg; a sentence of what changed in done. */
static void px_reload_apply(px_proxy *px, px_config *c, const char *why, char *done, size_t n)
{
    px_config *o = px->cfg;
    done[0] = '\0';
    if (!px_peers_eq(o, c)) {
        PX_SWAP(o->peers, c->peers);
        PX_SWAP(o->npeers, c->npeers);
        if (px->peers) {
            mc_peer_spec *v = calloc((size_t)(o->npeers ? o->npeers : 1), sizeof(*v));
            if (v == NULL) {
                kz_err("reload: out of memory for the peers list; peers unchanged");
            } else {
                for (int i = 0; i < o->npeers; i++)
                    v[i] = (mc_peer_spec){o->peers[i].node_id, o->peers[i].zone, o->peers[i].host, o->peers[i].port};
                (void)mc_peers_set_static(px->peers, v, o->npeers);
                free(v);
            }
        }
        px_restart_key(done, n, "peers");
    }
    if (o->discovery.dns_name && c->discovery.dns_name &&
        (strcmp(o->discovery.dns_name, c->discovery.dns_name) != 0 ||
         o->discovery.interval_ms != c->discovery.interval_ms)) {
        if (px->peers && mc_peers_set_discovery(px->peers, c->discovery.dns_name, c->discovery.interval_ms) == 0) {
            PX_SWAP(o->discovery.dns_name, c->discovery.dns_name);
            o->discovery.interval_ms = c->discovery.interval_ms;
            px_restart_key(done, n, "discovery");
        }
    }
    /* client_zones: read on each accept (the zone is copied into the connection). */
    PX_SWAP(o->client_zones, c->client_zones);
    PX_SWAP(o->nclient_zones, c->nclient_zones);
    /* Client-side limits: read where they are used. */
    px_limits *ol = &o->limits;
    const px_limits *cl = &c->limits;
    if (ol->max_frame_bytes != cl->max_frame_bytes || ol->max_inflight_requests != cl->max_inflight_requests ||
        ol->max_inflight_bytes != cl->max_inflight_bytes || ol->max_output_bytes != cl->max_output_bytes ||
        ol->max_connections != cl->max_connections)
        px_restart_key(done, n, "limits");
    ol->max_frame_bytes = cl->max_frame_bytes;
    ol->max_inflight_requests = cl->max_inflight_requests;
    ol->max_inflight_bytes = cl->max_inflight_bytes;
    ol->max_output_bytes = cl->max_output_bytes;
    ol->max_connections = cl->max_connections;
    ol->cut_through_min_bytes = cl->cut_through_min_bytes; /* read per frame (px_cut.c) */
    ol->frame_pool_idle_ms = cl->frame_pool_idle_ms;       /* read by each thread's tick */
    if (o->admin_reload != c->admin_reload)
        px_restart_key(done, n, "admin_reload");
    o->admin_reload = c->admin_reload; /* read per POST /reload (px_admin.c) */
    o->prices = c->prices;
    if (!px_streq(o->log_level, c->log_level)) {
        PX_SWAP(o->log_level, c->log_level);
        if (px->log_level_cli)
            kz_info("reload: log_level is set by --log-level; the file's is not applied");
        else
            __atomic_store_n(&kz_log_level, kz_log_level_parse(o->log_level ? o->log_level : "info"), __ATOMIC_RELAXED);
        px_restart_key(done, n, "log_level");
    }
    px_wal_config *ow = &o->wal;
    const px_wal_config *cw = &c->wal;
    /* "wal" <-> "direct" live; to or from "auto" needs a restart (above). */
    int direct = o->cross_zone_auto == c->cross_zone_auto ? c->cross_zone_direct : o->cross_zone_direct;
    if (ow->flush_ms != cw->flush_ms || ow->flush_idle_ms != cw->flush_idle_ms || ow->flush_bytes != cw->flush_bytes ||
        o->cross_zone_direct != direct) {
        ow->flush_ms = cw->flush_ms;
        ow->flush_idle_ms = cw->flush_idle_ms;
        ow->flush_bytes = cw->flush_bytes;
        o->cross_zone_direct = direct;
        if (px->rt)
            rt_set_live(px->rt, (uint64_t)ow->flush_bytes, (uint32_t)ow->flush_ms, (uint32_t)ow->flush_idle_ms,
                        o->cross_zone_direct);
        px_restart_key(done, n, "wal flush / cross_zone_policy");
    }
    o->fetch_from_follower = c->fetch_from_follower;
    o->fetch_follower_retry_ms = c->fetch_follower_retry_ms;
    o->fetch_follower_retry_max_ms = c->fetch_follower_retry_max_ms;
    o->drain_timeout_ms = c->drain_timeout_ms;
    /* ACLs: the router-in keeps the pointer too; both change here, between
     * two events, and the old rules are freed with c. */
    PX_SWAP(o->acl, c->acl);
    if (px->rt)
        rt_set_acl(px->rt, o->acl);
    if (px->tls) {
        char err[512];
        if (px_tls_reload(px->tls, err, sizeof(err)) == 0)
            kz_info("received %s: client_tls certificate reloaded from %s", why, o->client_tls.cert_file);
        else
            kz_err("received %s: client_tls certificate not reloaded (keeping the current one): %s", why, err);
    }
}

int px_reload(px_proxy *px, const char *why, char *errstr, size_t n)
{
    px_config c;
    if (px_config_load(px->config_path, &c, errstr, n) != 0) {
        px->m.config_reload_failures++;
        kz_err("reload (%s): %s is invalid, keeping the running configuration: %s", why, px->config_path, errstr);
        px_config_free(&c);
        return -1;
    }
    /* Sockets from systemd or an upgrade: compare with what the file said. */
    c.listen = px_listen_as_configured(&c.listen, 0);
    c.admin_listen = px_listen_as_configured(&c.admin_listen, 1);
    char restart[512], done[512];
    px_reload_restart_keys(px->cfg, &c, restart, sizeof(restart));
    /* Workers read the live keys: they wait, parked, while the values are
     * swapped (px_worker.c), and load their own client_tls again. */
    px_workers_pause(px);
    px_reload_apply(px, &c, why, done, sizeof(done));
    px_workers_tls_reload(px);
    px_workers_resume(px);
    /* Workers may still read the values swapped out (client_zones, acl,
     * ...): with workers they are kept until exit. */
    if (px_workers_retire_config(px, &c) != 0)
        px_config_free(&c);
    px->m.config_reloads++;
    kz_info("reload (%s): %s applied; changed: %s", why, px->config_path, done[0] ? done : "nothing");
    if (restart[0])
        kz_warn("reload (%s): changed keys that need a restart (ignored until then): %s", why, restart);
    return 0;
}
