/* The admin HTTP listener: GET /metrics (Prometheus text) and GET /healthz. */
#include "config.h"

#include "proxy/px_proxy.h"

#include "codec/kc_buf.h"
#include "codec/kc_peer.h"
#include "common/kz_log.h"
#include "meta-client/mc_peers.h"
#include "meta-client/mc_xzone.h"
#include "objwal/ow_metrics.h"
#include "objwal/ow_store.h"
#include "proxy/px_fcache.h"
#include "proxy/px_worker.h"
#include "router/rt_router.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static void px_metric(struct evbuffer *b, const char *name, const char *type, const char *help,
                      uint64_t v)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type,
                        name, v);
}

static void px_gauge_f(struct evbuffer *b, const char *name, const char *help, double v)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.6f\n", name, help, name, name, v);
}

/* Peer RPC requests refused after their MAC passed, by reason; and peer
 * TLS handshakes that failed. */
static void px_admin_peer_rejected(px_proxy *px, struct evbuffer *b)
{
    const px_metrics *m = &px->m;
    const rt_stats *st = px->rt ? rt_get_stats(px->rt) : NULL;
    evbuffer_add_printf(b, "# HELP kzproxy_peer_rejected_total Peer RPC requests refused (nothing appended), by reason.\n"
                           "# TYPE kzproxy_peer_rejected_total counter\n"
                           "kzproxy_peer_rejected_total{reason=\"clock_skew\"} %" PRIu64 "\n"
                           "kzproxy_peer_rejected_total{reason=\"replay\"} %" PRIu64 "\n"
                           "kzproxy_peer_rejected_total{reason=\"nonce_cache_full\"} %" PRIu64 "\n"
                           "kzproxy_peer_rejected_total{reason=\"before_start\"} %" PRIu64 "\n"
                           "kzproxy_peer_rejected_total{reason=\"bad_key\"} %" PRIu64 "\n",
                        m->peer_rejected_skew, m->peer_rejected_replay, m->peer_rejected_full,
                        m->peer_rejected_before_start, st ? st->in_bad_keys : 0);
    px_metric(b, "kzproxy_peer_acl_denied_partitions_total", "counter",
              "KzWalAppend partitions refused: the producer's principal may not produce there (ACL).",
              st ? st->in_acl_denied : 0);
    px_metric(b, "kzproxy_peer_tls_failures_total", "counter",
              "TLS handshakes to peer proxies that failed (certificate, hostname, protocol).",
              px->peers ? mc_peers_get_stats(px->peers)->conns.tls_failures : 0);
}

/* The WAL path: bytes across zones, the router, the object store, and what
 * it all costs and saves at the configured prices. */
static void px_admin_zone_metrics(px_proxy *px, struct evbuffer *b)
{
    static const char *const dirs[2] = {"out", "in"}, *const kinds[2] = {"broker", "peer"};
    px_metrics msum;
    mc_xz xzsum;
    const px_metrics *m = px_workers_metrics(px, &msum); /* summed over the workers */
    const mc_xz *xz = px_workers_xz(px, &xzsum);
    evbuffer_add_printf(b, "# HELP kzproxy_xzone_bytes_total Bytes sent to (out) and received from (in) "
                           "brokers and peers in other zones, by category.\n"
                           "# TYPE kzproxy_xzone_bytes_total counter\n");
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 2; k++)
            for (int c = 0; c < MC_XZ_NCAT; c++)
                evbuffer_add_printf(b, "kzproxy_xzone_bytes_total{direction=\"%s\",peer=\"%s\",category=\"%s\"} %" PRIu64 "\n",
                                    dirs[d], kinds[k], mc_xz_category_name(c), xz->bytes[d][k][c]);
    evbuffer_add_printf(b, "# HELP kzproxy_produce_path_partitions_total Produce partitions by path.\n"
                           "# TYPE kzproxy_produce_path_partitions_total counter\n"
                           "kzproxy_produce_path_partitions_total{path=\"direct\"} %" PRIu64 "\n"
                           "kzproxy_produce_path_partitions_total{path=\"wal\"} %" PRIu64 "\n"
                           "kzproxy_produce_path_partitions_total{path=\"cross_zone\"} %" PRIu64 "\n",
                        m->produce_parts_direct, m->produce_parts_wal, m->produce_parts_cross);
    evbuffer_add_printf(b, "# HELP kzproxy_xzone_bill_bytes_total Bytes across zones by kind: produce_payload "
                           "(record bytes sent), fetch_payload (record bytes received), peer_rpc, metadata_control "
                           "(metadata, Produce/Fetch headers, group and admin requests), both directions.\n"
                           "# TYPE kzproxy_xzone_bill_bytes_total counter\n");
    for (int k = 0; k < MC_XZ_NKIND; k++)
        evbuffer_add_printf(b, "kzproxy_xzone_bill_bytes_total{kind=\"%s\"} %" PRIu64 "\n", mc_xz_kind_name(k),
                            mc_xz_kind(xz, k));
    px_metric(b, "kzproxy_xzone_replication_estimate_bytes_total", "counter",
              "ESTIMATE, not measured: bytes the backend will copy across zones to replicate the records "
              "produced through this proxy (record bytes x replicas in racks other than the leader's, from the "
              "metadata). No proxy removes this on a stock cluster; only a diskless backend does.",
              xz->replication_est);
    px_metric(b, "kzproxy_peer_requests_total", "counter", "Peer RPC requests received.", m->peer_requests);
    px_metric(b, "kzproxy_peer_auth_failures_total", "counter",
              "Peer RPC requests refused: bad MAC (peer_secret differs).", m->peer_auth_failures);
    px_admin_peer_rejected(px, b);
    px_metric(b, "kzproxy_client_sasl_successes_total", "counter",
              "Client SASL logins and re-authentications that passed (client_sasl).", m->client_sasl_successes);
    px_metric(b, "kzproxy_client_sasl_failures_total", "counter",
              "Client SASL logins refused: unknown user, wrong password or malformed exchange.",
              m->client_sasl_failures);
    evbuffer_add_printf(b, "# HELP kzproxy_acl_denied_total Client operations refused by the ACLs (acls): "
                           "one per denied partition, group, transactional id or cluster request.\n"
                           "# TYPE kzproxy_acl_denied_total counter\n");
    for (int o = 0; o < KZ_ACL_NOPS; o++)
        for (int r = 0; r < KZ_ACL_NRES; r++)
            if (m->acl_denied[o][r] || px->cfg->acl)
                evbuffer_add_printf(b, "kzproxy_acl_denied_total{operation=\"%s\",resource=\"%s\"} %" PRIu64 "\n",
                                    kz_acl_op_name((kz_acl_op)o), kz_acl_res_name((kz_acl_res)r),
                                    m->acl_denied[o][r]);
    double gb = 1e9, xz_bytes = 0;
    for (int d = 0; d < 2; d++)
        xz_bytes += (double)mc_xz_total(xz, d, -1, -1);
    const px_prices *pr = &px->cfg->prices;
    /* Each direction is charged to one side: count what this proxy sends
     * and receives at half the both-ways price. */
    px_gauge_f(b, "kzproxy_cost_xzone_usd", "Estimated cost of this proxy's cross-zone traffic (USD).",
               xz_bytes / gb * pr->cross_zone_per_gb / 2);
    px_gauge_f(b, "kzproxy_cost_xzone_replication_estimate_usd",
               "ESTIMATE of the backend's own cross-zone replication cost for the records produced through this "
               "proxy (USD, at cross_zone_per_gb: a replica copy is paid by both zones).",
               (double)xz->replication_est / gb * pr->cross_zone_per_gb);
    if (px->rt == NULL)
        return;
    const rt_stats *st = rt_get_stats(px->rt);
    rt_policy_metrics(px->rt, b);
    px_metric(b, "kzproxy_wal_batches_total", "counter", "Client Produce requests with WAL-path partitions.",
              st->out_batches);
    px_metric(b, "kzproxy_wal_partitions_total", "counter", "Partitions sent on the WAL path.", st->out_parts);
    px_metric(b, "kzproxy_wal_record_bytes_total", "counter",
              "Record bytes sent on the WAL path: cross-zone bytes avoided.", st->out_bytes);
    px_metric(b, "kzproxy_wal_partition_errors_total", "counter",
              "WAL-path partitions answered with an error (retriable for the client).", st->out_errors);
    px_metric(b, "kzproxy_wal_memory_waits_total", "counter", "Appends that waited for writer memory.",
              st->out_waits);
    px_metric(b, "kzproxy_wal_memory_bytes", "gauge", "Bytes held by the WAL writers.", rt_mem_used(px->rt));
    px_metric(b, "kzproxy_wal_memory_cap_bytes", "gauge",
              "wal.mem_cap_bytes: bytes the WAL writer of one destination zone may hold before appends wait.",
              (uint64_t)px->cfg->wal.mem_cap_bytes);
    px_metric(b, "kzproxy_wal_rpcs_sent_total", "counter", "KzWalAppend RPCs sent.", st->rpcs_sent);
    px_metric(b, "kzproxy_wal_rpcs_failed_total", "counter", "KzWalAppend attempts that failed.", st->rpcs_failed);
    px_metric(b, "kzproxy_wal_rpcs_retried_total", "counter",
              "KzWalAppend RPCs refused at once by a peer's connection (never sent) and sent to another peer.",
              st->rpcs_retried);
    px_metric(b, "kzproxy_wal_order_holds_total", "counter",
              "Partitions answered NOT_LEADER_OR_FOLLOWER because WAL-path batches of the same client connection "
              "and partition were in flight and a direct or other-zone append would overtake them.",
              st->order_holds);
    px_metric(b, "kzproxy_wal_order_failures_total", "counter",
              "WAL-path partitions failed instead of sent: an earlier batch of the same client connection and "
              "partition failed, and they would overtake its retry.",
              st->order_failures);
    px_metric(b, "kzproxy_wal_in_rpcs_total", "counter", "KzWalAppend RPCs served for peers.", st->in_rpcs);
    px_metric(b, "kzproxy_wal_in_partitions_total", "counter", "Partitions appended for peers.", st->in_parts);
    px_metric(b, "kzproxy_wal_in_record_bytes_total", "counter", "Record bytes appended for peers.",
              st->in_bytes);
    px_metric(b, "kzproxy_wal_in_partition_errors_total", "counter",
              "Partitions of served RPCs answered with an error.", st->in_errors);
    px_metric(b, "kzproxy_wal_in_read_errors_total", "counter",
              "WAL object reads that failed whole (store error, truncated object); a slice that fails its "
              "CRC is counted in kzproxy_wal_in_corrupt_partitions_total.",
              st->in_read_errors);
    px_metric(b, "kzproxy_wal_in_corrupt_partitions_total", "counter",
              "Partitions whose slice failed its CRC32C check (wal.read_check headers: damaged batch headers or "
              "CRC fields; payload: any damaged byte or a producer's bad batch CRC): answered CORRUPT_MESSAGE, "
              "not appended. Damaged records under read_check headers are refused by the broker and counted "
              "in kzproxy_wal_in_partition_errors_total only.",
              st->in_corrupt);
    px_metric(b, "kzproxy_wal_in_topic_lookups_total", "counter",
              "Metadata requests router-in made for topics a KzWalAppend named that this proxy's view lacked.",
              st->in_topic_lookups);
    const ow_metrics *om = ow_store_metrics(px->store);
    ow_metrics_write_prometheus(om, "kzproxy_objwal_", b);
    px_gauge_f(b, "kzproxy_cost_xzone_avoided_usd",
               "Estimated cross-zone transfer cost avoided by the WAL path (USD).",
               (double)st->out_bytes / gb * pr->cross_zone_per_gb);
    px_gauge_f(b, "kzproxy_cost_s3_requests_usd", "Estimated cost of this proxy's object-store requests (USD).",
               (double)om->put_requests / 1000 * pr->s3_put_per_1000 +
                   (double)om->get_requests / 1000 * pr->s3_get_per_1000);
}

/* The peers: their health, the health checks and DNS discovery. */
static void px_admin_peer_metrics(px_proxy *px, struct evbuffer *b)
{
    if (px->peers) {
        int n = mc_peers_count(px->peers);
        evbuffer_add_printf(b, "# HELP kzproxy_peer_up 1 while the peer proxy answers its health checks.\n"
                               "# TYPE kzproxy_peer_up gauge\n");
        for (int i = 0; i < n; i++) {
            const mc_peer *p = mc_peers_at(px->peers, i);
            evbuffer_add_printf(b, "kzproxy_peer_up{node_id=\"%d\",zone=\"%s\",source=\"%s\"} %d\n",
                                p->node_id, p->zone, p->is_static ? "static" : "dns", p->healthy ? 1 : 0);
        }
        evbuffer_add_printf(b, "# HELP kzproxy_peer_slice_errors 1 when the peer's last KzHello said it refuses a "
                               "slice failing its CRC for that partition alone; senders derive chunk CRCs from "
                               "the record batches' own only when every peer of the zone says so.\n"
                               "# TYPE kzproxy_peer_slice_errors gauge\n");
        for (int i = 0; i < n; i++) {
            const mc_peer *p = mc_peers_at(px->peers, i);
            evbuffer_add_printf(b, "kzproxy_peer_slice_errors{node_id=\"%d\",zone=\"%s\"} %d\n", p->node_id,
                                p->zone, (p->flags & KC_PEER_HELLO_SLICE_ERRORS) ? 1 : 0);
        }
        const mc_peers_stats *st = mc_peers_get_stats(px->peers);
        px_metric(b, "kzproxy_peer_health_checks_total", "counter", "KzHello health checks sent to peers.",
                  st->health_checks);
        px_metric(b, "kzproxy_peer_health_failures_total", "counter",
                  "Peer health checks that failed (no connection, timeout, bad answer).", st->health_failures);
        px_metric(b, "kzproxy_peer_marked_down_total", "counter", "Peers marked down by a failed RPC.",
                  st->marked_down);
        px_metric(b, "kzproxy_discovery_resolutions_total", "counter",
                  "DNS resolutions of discovery.dns_name (A and AAAA).", st->dns_resolutions);
        px_metric(b, "kzproxy_discovery_failures_total", "counter",
                  "DNS resolutions of discovery.dns_name that failed.", st->dns_failures);
        px_metric(b, "kzproxy_discovery_peers_found_total", "counter", "Peers added through DNS discovery.",
                  st->discovered);
    }
}

static void px_admin_metrics(struct evhttp_request *req, void *arg)
{
    px_proxy *px = arg;
    px_metrics msum;
    px_workers_sync(px); /* the workers' figures as of now */
    px->m.frame_pool_bytes = kc_frame_kept_bytes(); /* the main thread's */
    const px_metrics *m = px_workers_metrics(px, &msum); /* summed over the workers */
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    evbuffer_add_printf(b, "# HELP kzproxy_info Static facts about this proxy.\n# TYPE kzproxy_info gauge\n"
                           "kzproxy_info{version=\"%s\",zone=\"%s\",node_id=\"%d\"} 1\n",
                        PACKAGE_VERSION, px->cfg->zone, px->cfg->node_id);
    px_metric(b, "kzproxy_ready", "gauge", "1 once the backend cluster view is loaded.", (uint64_t)px->ready);
    px_metric(b, "kzproxy_draining", "gauge", "1 while the proxy drains before exiting (SIGTERM, upgrade).",
              (uint64_t)px->draining);
    px_metric(b, "kzproxy_config_reloads_total", "counter", "Configuration reloads applied (SIGHUP, POST /reload).",
              m->config_reloads);
    px_metric(b, "kzproxy_admin_reloads_refused_total", "counter",
              "POST /reload requests refused by admin_reload (off, or local and the request came from elsewhere).",
              m->admin_reloads_refused);
    px_metric(b, "kzproxy_config_reload_failures_total", "counter",
              "Configuration reloads refused because the new file is invalid (the running one is kept).",
              m->config_reload_failures);
    px_metric(b, "kzproxy_upgrades_total", "counter",
              "New processes started with this proxy's listening sockets (SIGUSR2).", m->upgrades);
    px_metric(b, "kzproxy_connections_accepted_total", "counter", "Client connections accepted.",
              m->connections_accepted);
    px_metric(b, "kzproxy_connections_active", "gauge", "Client connections open.", m->connections_active);
    px_metric(b, "kzproxy_frame_pool_bytes", "gauge",
              "Released buffers the event-loop threads keep for reuse (frame pool and big frame).",
              m->frame_pool_bytes);
    px_metric(b, "kzproxy_connections_rejected_total", "counter",
              "Client connections refused over limits.max_connections.", m->connections_rejected);
    px_metric(b, "kzproxy_connections_closed_bad_input_total", "counter",
              "Client connections closed because of malformed or unsupported requests.",
              m->connections_closed_bad);
    px_metric(b, "kzproxy_client_tls_failures_total", "counter",
              "Client TLS handshakes that failed, plaintext on the TLS listener included.",
              m->client_tls_failures);
    evbuffer_add_printf(b, "# HELP kzproxy_requests_total Client requests by API.\n"
                           "# TYPE kzproxy_requests_total counter\n");
    for (int k = 0; k <= KC_API_MAX; k++)
        if (m->requests[k])
            evbuffer_add_printf(b, "kzproxy_requests_total{api=\"%s\"} %" PRIu64 "\n", kc_api_name((int16_t)k),
                                m->requests[k]);
    px_metric(b, "kzproxy_client_request_bytes_total", "counter", "Bytes of client requests.",
              m->request_bytes);
    px_metric(b, "kzproxy_client_response_bytes_total", "counter", "Bytes of responses to clients.",
              m->response_bytes);
    px_metric(b, "kzproxy_produce_partitions_total", "counter", "Partitions in Produce requests.",
              m->produce_partitions);
    px_metric(b, "kzproxy_produce_record_bytes_total", "counter", "Record batch bytes produced.",
              m->produce_record_bytes);
    px_metric(b, "kzproxy_fetch_record_bytes_total", "counter", "Record batch bytes fetched.",
              m->fetch_record_bytes);
    px_metric(b, "kzproxy_produce_cut_through_total", "counter",
              "Produce requests streamed to their broker as their bytes arrived (cut-through).",
              m->produce_cut_through);
    px_metric(b, "kzproxy_produce_cut_through_aborted_total", "counter",
              "Cut-through Produce requests whose client closed before the frame's end (that client's "
              "own broker connection was closed).", m->produce_cut_aborted);
    evbuffer_add_printf(b, "# HELP kzproxy_fetch_partitions_total Fetch partitions by the replica read: "
                           "the leader, or a follower in this proxy's zone (fetch_from_follower).\n"
                           "# TYPE kzproxy_fetch_partitions_total counter\n"
                           "kzproxy_fetch_partitions_total{replica=\"leader\"} %" PRIu64 "\n"
                           "kzproxy_fetch_partitions_total{replica=\"follower\"} %" PRIu64 "\n",
                        m->fetch_parts_leader, m->fetch_parts_follower);
    px_metric(b, "kzproxy_fetch_follower_fallbacks_total", "counter",
              "Fetch partitions sent back to their leader because a follower could not serve them.",
              m->fetch_follower_fallbacks);
    px_fcache_stats fcs; /* one cache, shared by the threads */
    px_fcache_stats_get(px->fcache, &fcs);
    const px_fcache_stats *fc = &fcs;
    px_metric(b, "kzproxy_fetch_cache_hits_total", "counter",
              "Fetch partitions answered from the fetch cache (records read across zones before).", fc->hits);
    px_metric(b, "kzproxy_fetch_cache_misses_total", "counter",
              "Fetch partitions read from a broker of another zone with records, then cached.", fc->misses);
    px_metric(b, "kzproxy_fetch_cache_bytes_saved_total", "counter",
              "Record bytes answered from the fetch cache: cross-zone fetch bytes avoided.", fc->bytes_saved);
    px_metric(b, "kzproxy_fetch_cache_evictions_total", "counter",
              "Fetch cache segments dropped for the memory cap (fetch_cache_bytes).", fc->evictions);
    px_metric(b, "kzproxy_fetch_cache_invalidations_total", "counter",
              "Fetch cache partitions dropped: new leader epoch or topic id, an error from the broker, a "
              "truncation, a log start above cached data, or a DeleteRecords.",
              fc->invalidations);
    px_metric(b, "kzproxy_fetch_cache_expirations_total", "counter",
              "Fetch cache segments dropped for their age (fetch_cache_max_age_ms).", fc->expirations);
    px_metric(b, "kzproxy_fetch_cache_bytes", "gauge", "Record bytes held by the fetch cache.", fc->bytes);
    px_metric(b, "kzproxy_partition_errors_total", "counter",
              "Partitions the proxy answered with an error (unknown leader, broker unreachable).",
              m->partition_errors);
    px_metric(b, "kzproxy_backpressure_pauses_total", "counter",
              "Times a client connection stopped being read because of in-flight limits.",
              m->backpressure_pauses);
    px_metric(b, "kzproxy_zone_fallbacks_total", "counter",
              "Metadata answers that named proxies of other zones (no proxy in the client's zone).",
              m->zone_fallbacks);
    px_metric(b, "kzproxy_clients_unknown_zone_total", "counter",
              "Client connections whose client.id names a zone no proxy serves.", m->clients_unknown_zone);
    px_metric(b, "kzproxy_clients_zone_from_id_total", "counter",
              "Client connections placed in a zone by their client.id.", m->clients_zone_from_id);
    px_metric(b, "kzproxy_clients_zone_from_cidr_total", "counter",
              "Client connections placed in a zone by the client_zones CIDR map.", m->clients_zone_from_cidr);
    px_metric(b, "kzproxy_passthrough_requests_total", "counter",
              "Requests forwarded unchanged (group, transaction and admin requests).",
              m->passthrough_requests);
    mc_conn_stats ussum;
    const mc_conn_stats *us = px_workers_upstream(px, &ussum);
    px_metric(b, "kzproxy_upstream_requests_total", "counter", "Requests sent to brokers.", us->requests);
    px_metric(b, "kzproxy_upstream_responses_total", "counter", "Responses received from brokers.",
              us->responses);
    px_metric(b, "kzproxy_upstream_bytes_out_total", "counter", "Bytes sent to brokers.", us->bytes_out);
    px_metric(b, "kzproxy_upstream_bytes_in_total", "counter", "Bytes received from brokers.", us->bytes_in);
    px_metric(b, "kzproxy_upstream_failures_total", "counter",
              "Broker requests failed by a lost connection or a timeout.", us->failures);
    px_metric(b, "kzproxy_upstream_connects_total", "counter", "Connections opened to brokers.",
              us->connects);
    px_metric(b, "kzproxy_upstream_tls_failures_total", "counter",
              "TLS handshakes with brokers that failed (certificate, hostname, protocol, timeout).",
              us->tls_failures);
    px_metric(b, "kzproxy_upstream_sasl_failures_total", "counter",
              "SASL logins to brokers that failed (refused, bad server proof, timeout).", us->auth_failures);
    px_metric(b, "kzproxy_upstream_sasl_logins_total", "counter", "SASL logins to brokers that succeeded.",
              us->auth_ok);
    px_admin_peer_metrics(px, b);
    mc_view *v = mc_cluster_view(px->mc);
    px_metric(b, "kzproxy_backend_brokers", "gauge", "Brokers in the backend view.",
              v ? (uint64_t)v->nbrokers : 0);
    px_metric(b, "kzproxy_backend_topics", "gauge", "Topics in the backend view.", v ? (uint64_t)v->ntopics : 0);
    px_admin_zone_metrics(px, b);
    px_workers_metrics_text(px, b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", b);
    evbuffer_free(b);
}

static void px_admin_healthz(struct evhttp_request *req, void *arg)
{
    px_proxy *px = arg;
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    mc_view *v = mc_cluster_view(px->mc);
    evbuffer_add_printf(b, "{\"status\":\"%s\",\"zone\":\"%s\",\"node_id\":%d,\"backend_brokers\":%d}\n",
                        px->draining ? "draining" : px->ready ? "ok" : "starting", px->cfg->zone, px->cfg->node_id,
                        v ? v->nbrokers : 0);
    if (px->draining)
        evhttp_send_reply(req, 503, "Draining", b);
    else if (px->ready)
        evhttp_send_reply(req, HTTP_OK, "OK", b);
    else
        evhttp_send_reply(req, 503, "Starting", b);
    evbuffer_free(b);
}

/* 1 when req came from this host: a loopback address or a Unix socket. */
static int px_admin_peer_local(struct evhttp_request *req)
{
    struct evhttp_connection *con = evhttp_request_get_connection(req);
    struct bufferevent *bev = con ? evhttp_connection_get_bufferevent(con) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_UNIX)
        return 1;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)&ss;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)&ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* POST /reload: re-read the config file (as SIGHUP). 200 with what the log
 * says, or 400 with the first error (the running config is kept). Only on
 * the admin listener, and by default only from this host (admin_reload):
 * the admin port is often open to a whole network for /metrics, and every
 * reload pauses the workers for a moment. */
static void px_admin_reload(struct evhttp_request *req, void *arg)
{
    px_proxy *px = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_send_error(req, 405, "use POST /reload");
        return;
    }
    char err[512];
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    int policy = px->cfg->admin_reload;
    if (policy == PX_ADMIN_RELOAD_OFF ||
        (policy == PX_ADMIN_RELOAD_LOCAL && !px_admin_peer_local(req))) {
        px->m.admin_reloads_refused++;
        evbuffer_add_printf(b, "%s\n",
                            policy == PX_ADMIN_RELOAD_OFF
                                ? "POST /reload is off (admin_reload: off): send the proxy SIGHUP to reload"
                                : "POST /reload is taken only from the proxy's own host (admin_reload: local): "
                                  "send it from there, send the proxy SIGHUP, or set admin_reload: any");
        evhttp_send_reply(req, 403, "Forbidden", b);
        evbuffer_free(b);
        return;
    }
    if (px_reload(px, "POST /reload", err, sizeof(err)) == 0) {
        evbuffer_add_printf(b, "reloaded %s\n", px->config_path);
        evhttp_send_reply(req, HTTP_OK, "OK", b);
    } else {
        evbuffer_add_printf(b, "not reloaded (keeping the running configuration): %s\n", err);
        evhttp_send_reply(req, 400, "Invalid configuration", b);
    }
    evbuffer_free(b);
}

static void px_admin_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics or /healthz");
}

int px_admin_start(px_proxy *px, char *errstr, size_t n)
{
    if (!px->cfg->have_admin)
        return 0;
    px->http = evhttp_new(px->base);
    if (px->http == NULL) {
        snprintf(errstr, n, "cannot create the admin HTTP server");
        return -1;
    }
    evhttp_set_allowed_methods(px->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_cb(px->http, "/metrics", px_admin_metrics, px);
    evhttp_set_cb(px->http, "/healthz", px_admin_healthz, px);
    evhttp_set_cb(px->http, "/reload", px_admin_reload, px);
    evhttp_set_gencb(px->http, px_admin_other, px);
    const px_listen_addr *la = &px->cfg->admin_listen;
    if (la->fd >= 0) {
        evutil_make_socket_nonblocking(la->fd);
        if ((px->admin_handle = evhttp_accept_socket_with_handle(px->http, la->fd)) == NULL) {
            snprintf(errstr, n, "admin_listen: fd %d is not a listening socket", la->fd);
            return -1;
        }
    } else if ((px->admin_handle = evhttp_bind_socket_with_handle(px->http, la->host, (ev_uint16_t)la->port)) == NULL) {
        snprintf(errstr, n, "admin_listen: cannot listen on %s:%d: %s", la->host, la->port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return -1;
    }
    return 0;
}

void px_admin_stop(px_proxy *px)
{
    if (px->http) {
        evhttp_free(px->http);
        px->http = NULL;
    }
}
