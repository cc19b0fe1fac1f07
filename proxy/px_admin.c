/* The admin HTTP listener: GET /metrics (Prometheus text) and GET /healthz. */
#include "config.h"

#include "proxy/px_proxy.h"

#include "common/kz_log.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void px_metric(struct evbuffer *b, const char *name, const char *type, const char *help,
                      uint64_t v)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type,
                        name, v);
}

static void px_admin_metrics(struct evhttp_request *req, void *arg)
{
    px_proxy *px = arg;
    const px_metrics *m = &px->m;
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    evbuffer_add_printf(b, "# HELP kzproxy_info Static facts about this proxy.\n# TYPE kzproxy_info gauge\n"
                           "kzproxy_info{version=\"%s\",zone=\"%s\",node_id=\"%d\"} 1\n",
                        PACKAGE_VERSION, px->cfg->zone, px->cfg->node_id);
    px_metric(b, "kzproxy_ready", "gauge", "1 once the backend cluster view is loaded.", (uint64_t)px->ready);
    px_metric(b, "kzproxy_connections_accepted_total", "counter", "Client connections accepted.",
              m->connections_accepted);
    px_metric(b, "kzproxy_connections_active", "gauge", "Client connections open.", m->connections_active);
    px_metric(b, "kzproxy_connections_rejected_total", "counter",
              "Client connections refused over limits.max_connections.", m->connections_rejected);
    px_metric(b, "kzproxy_connections_closed_bad_input_total", "counter",
              "Client connections closed because of malformed or unsupported requests.",
              m->connections_closed_bad);
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
    const mc_conn_stats *us = mc_cluster_stats(px->mc);
    px_metric(b, "kzproxy_upstream_requests_total", "counter", "Requests sent to brokers.", us->requests);
    px_metric(b, "kzproxy_upstream_responses_total", "counter", "Responses received from brokers.",
              us->responses);
    px_metric(b, "kzproxy_upstream_bytes_out_total", "counter", "Bytes sent to brokers.", us->bytes_out);
    px_metric(b, "kzproxy_upstream_bytes_in_total", "counter", "Bytes received from brokers.", us->bytes_in);
    px_metric(b, "kzproxy_upstream_failures_total", "counter",
              "Broker requests failed by a lost connection or a timeout.", us->failures);
    px_metric(b, "kzproxy_upstream_connects_total", "counter", "Connections opened to brokers.",
              us->connects);
    mc_view *v = mc_cluster_view(px->mc);
    px_metric(b, "kzproxy_backend_brokers", "gauge", "Brokers in the backend view.",
              v ? (uint64_t)v->nbrokers : 0);
    px_metric(b, "kzproxy_backend_topics", "gauge", "Topics in the backend view.", v ? (uint64_t)v->ntopics : 0);
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
                        px->ready ? "ok" : "starting", px->cfg->zone, px->cfg->node_id,
                        v ? v->nbrokers : 0);
    if (px->ready)
        evhttp_send_reply(req, HTTP_OK, "OK", b);
    else
        evhttp_send_reply(req, 503, "Starting", b);
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
    evhttp_set_allowed_methods(px->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_cb(px->http, "/metrics", px_admin_metrics, px);
    evhttp_set_cb(px->http, "/healthz", px_admin_healthz, px);
    evhttp_set_gencb(px->http, px_admin_other, px);
    const px_listen_addr *la = &px->cfg->admin_listen;
    if (la->fd >= 0) {
        evutil_make_socket_nonblocking(la->fd);
        if (evhttp_accept_socket(px->http, la->fd) != 0) {
            snprintf(errstr, n, "admin_listen: fd %d is not a listening socket", la->fd);
            return -1;
        }
    } else if (evhttp_bind_socket(px->http, la->host, (ev_uint16_t)la->port) != 0) {
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
