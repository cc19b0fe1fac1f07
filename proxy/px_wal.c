/*
 * Setting up the zone-aware produce path from the config: the peers (for
 * the RPC and its health checks), and with a "wal" section the object store,
 * its garbage collector and the router.
 */
#include "config.h"

#include "proxy/px_proxy.h"

#include "common/kz_log.h"
#include "meta-client/mc_peers.h"
#include "meta-client/mc_tls.h"
#include "meta-client/mc_xzone.h"
#include "objwal/ow_gc.h"
#include "objwal/ow_store.h"
#include "proxy/px_replay.h"
#include "router/rt_router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int px_wal_store(px_proxy *px, char *errstr, size_t n)
{
    const px_wal_config *w = &px->cfg->wal;
    ow_store_config sc;
    ow_store_config_init(&sc);
    if (strcmp(w->backend, "local") == 0) {
        sc.backend = OW_BACKEND_LOCAL;
        sc.local.root = w->root;
        sc.local.no_fsync = w->no_fsync;
    } else {
        sc.backend = OW_BACKEND_S3;
        sc.s3.bucket = w->bucket;
        sc.s3.endpoint = w->endpoint;
        sc.s3.region = w->region;
        sc.s3.path_style = w->path_style;
        sc.s3.unsigned_payload = w->unsigned_payload;
        sc.s3.access_key = w->access_key;
        sc.s3.secret_key = w->secret_key;
        sc.s3.session_token = w->session_token;
        sc.s3.sse = w->sse;
        sc.s3.sse_kms_key_id = w->sse_kms_key_id;
        sc.s3.ca_file = w->ca_file;
        sc.s3.deadline_ms = (uint32_t)w->store_deadline_ms;
    }
    char err[512];
    px->store = ow_store_new(px->base, &sc, err, sizeof(err));
    if (px->store == NULL) {
        snprintf(errstr, n, "wal.store: %s", err);
        return -1;
    }
    ow_gc_config gc;
    ow_gc_config_init(&gc);
    gc.prefix = w->key_prefix ? w->key_prefix : "wal/";
    gc.sweep_interval_ms = (uint32_t)w->gc_sweep_ms;
    gc.max_age_ms = (uint64_t)w->gc_max_age_ms;
    px->gc = ow_gc_new(px->base, px->store, &gc, err, sizeof(err));
    if (px->gc == NULL) {
        snprintf(errstr, n, "wal: garbage collector: %s", err);
        return -1;
    }
    return 0;
}

/* TLS to peers from peer_tls (or client_tls, see px_peer_tls): px->peer_sec
 * stays NULL when off. Only proxies that talk to peers (a peer_secret) need
 * it. 0, or -1 with errstr. */
static int px_peer_security_new(px_proxy *px, char *errstr, size_t n)
{
    const px_peer_tls *t = &px->cfg->peer_tls;
    if (!t->enabled || px->cfg->peer_secret == NULL)
        return 0;
    if ((px->peer_sec = calloc(1, sizeof(*px->peer_sec))) == NULL) {
        snprintf(errstr, n, "out of memory");
        return -1;
    }
    mc_tls_config tc = {.ca_file = t->ca_file,
                        .verify_hostname = t->verify_hostname,
                        .cert_file = t->cert_file,
                        .key_file = t->key_file,
                        .where = t->present ? "peer_tls" : "client_tls (for peers)"};
    if ((px->peer_sec->tls = mc_tls_new(&tc, errstr, n)) == NULL)
        return -1;
    if (!t->verify_hostname)
        kz_warn("peer_tls.verify_hostname is off: any certificate the CA signed is accepted for every peer");
    kz_info("peer connections: TLS (%s), verifying against %s%s", t->present ? "peer_tls" : "as client_tls",
            t->ca_file ? t->ca_file : "the system's trust store", t->cert_file ? ", with a client certificate" : "");
    return 0;
}

int px_wal_start(px_proxy *px, char *errstr, size_t n)
{
    px_config *cfg = px->cfg;
    if (px_peer_security_new(px, errstr, n) != 0)
        return -1;
    if (cfg->peer_secret) {
        px->replay = px_replay_new(cfg->peer_replay_window_ms, (size_t)cfg->peer_replay_max_nonces,
                                   px->started_wall_ms);
        if (px->replay == NULL) {
            snprintf(errstr, n, "out of memory for %d peer RPC nonces (peer_replay_max_nonces)",
                     cfg->peer_replay_max_nonces);
            return -1;
        }
    }
    mc_peers_config pc = {
        .self_id = cfg->node_id,
        .self_zone = cfg->zone,
        .self_host = cfg->advertised_host,
        .self_port = cfg->advertised_port,
        .started_ms = px->started_wall_ms,
        .secret = cfg->peer_secret,
        .secret_len = cfg->peer_secret ? strlen(cfg->peer_secret) : 0,
        .health_ms = cfg->health_check_ms,
        .dns_name = cfg->discovery.dns_name,
        .dns_port = cfg->discovery.port,
        .dns_interval_ms = cfg->discovery.interval_ms,
        .conn = {.max_inflight = cfg->limits.upstream_max_inflight,
                 .request_timeout_ms = cfg->rpc_timeout_ms,
                 .max_response_bytes = cfg->limits.max_response_bytes,
                 .reconnect_backoff_ms = 200,
                 .sec = px->peer_sec,
                 .kind = "peer"},
        .xz = px->xz,
    };
    px->peers = mc_peers_new(px->base, px->dns, &pc);
    if (px->peers == NULL) {
        snprintf(errstr, n, "out of memory");
        return -1;
    }
    for (int i = 0; i < cfg->npeers; i++) {
        const px_peer *p = &cfg->peers[i];
        if (mc_peers_add_static(px->peers, p->node_id, p->zone, p->host, p->port) != 0) {
            snprintf(errstr, n, "out of memory");
            return -1;
        }
    }
    if (cfg->wal.enabled) {
        if (px_wal_store(px, errstr, n) != 0)
            return -1;
        rt_config rc = {
            .node_id = cfg->node_id,
            .zone = cfg->zone,
            .secret = cfg->peer_secret,
            .secret_len = strlen(cfg->peer_secret),
            .store = px->store,
            .gc = px->gc,
            .seal_bytes = (uint64_t)cfg->wal.flush_bytes,
            .seal_age_ms = (uint32_t)cfg->wal.flush_ms,
            .seal_idle_ms = (uint32_t)cfg->wal.flush_idle_ms,
            .max_inflight_uploads = (unsigned)cfg->wal.max_inflight_uploads,
            .mem_cap = (uint64_t)cfg->wal.mem_cap_bytes,
            .key_prefix = cfg->wal.key_prefix,
            .read_check_payload = cfg->wal.read_check_payload,
            .rpc_timeout_ms = cfg->rpc_timeout_ms,
            .cross_zone_direct = cfg->cross_zone_direct,
            .cross_zone_auto = cfg->cross_zone_auto,
            .auto_wal_above = cfg->auto_wal_above,
            .auto_direct_below = cfg->auto_direct_below,
            .auto_min_dwell_ms = cfg->auto_min_dwell_ms,
            .auto_window_ms = cfg->auto_window_ms,
            .acl = cfg->acl,
        };
        px->rt = rt_new(px->base, px->mc, px->peers, &rc, errstr, n);
        if (px->rt == NULL)
            return -1;
        kz_info("WAL path on %s: flush at %d ms or %lld bytes, %d uploads in flight, reads checked by %s, policy %s",
                ow_store_describe(px->store), cfg->wal.flush_ms, cfg->wal.flush_bytes,
                cfg->wal.max_inflight_uploads, cfg->wal.read_check_payload ? "payload" : "headers",
                cfg->cross_zone_direct ? "direct" : cfg->cross_zone_auto ? "auto" : "wal");
    } else {
        kz_info("no wal section: produce to leaders in other zones goes straight to them");
    }
    mc_peers_start(px->peers);
    return 0;
}

void px_wal_stop(px_proxy *px)
{
    rt_free(px->rt);
    px->rt = NULL;
    mc_peers_free(px->peers);
    px->peers = NULL;
    if (px->peer_sec)
        mc_tls_free(px->peer_sec->tls);
    free(px->peer_sec); /* after the peers' connections */
    px->peer_sec = NULL;
    ow_gc_free(px->gc);
    px->gc = NULL;
    px_replay_free(px->replay);
    px->replay = NULL;
    if (px->store)
        ow_store_free(px->store);
    px->store = NULL;
}
