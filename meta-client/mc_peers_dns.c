/*
 * mc_peers_dns: DNS discovery of peers (see mc_peers.h for the behaviour).
 *
 * One probe (mc_probe) per address of the latest DNS answer, with a
 * connection of its own only while it asks "who are you" (KzHello). A probe
 * that answers names a node id: this proxy (ignored from then on), a known
 * peer, or a new peer, which is added to the table (mc_peers.c).
 *
 * Callbacks from a probe's connection may run inside mc_conn_request (a
 * refused connect) and inside mc_conn_free ("shutting down"): probes carry a
 * closing flag for the latter and never free a connection from its own
 * callback; idle probe connections are freed on the next DNS round.
 */
#include "config.h"

#include "meta-client/mc_peers_int.h"

#include "codec/kc_proto.h"
#include "common/kz_log.h"
#include "meta-client/mc_xzone.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void mc_probe_free(mc_probe *pr)
{
    pr->closing = 1;
    if (pr->conn)
        mc_conn_free(pr->conn);
    free(pr);
}

/* The probe answered hello: place the node it names. */
static void mc_probe_answered(mc_probe *pr, const kc_peer_hello *h)
{
    mc_peers *ps = pr->ps;
    char zone[256];
    if (h->host.len >= (int32_t)sizeof(pr->adv_host) || h->zone.len >= (int32_t)sizeof(zone)) {
        kz_warn("discovery: %s:%d (node %d) advertises a host or zone name too long to use", pr->host,
                ps->cfg.dns_port, h->node_id);
        return;
    }
    snprintf(zone, sizeof(zone), "%.*s", (int)h->zone.len, h->zone.p);
    pr->node_id = h->node_id;
    snprintf(pr->adv_host, sizeof(pr->adv_host), "%.*s", (int)h->host.len, h->host.p);
    pr->adv_port = h->port;
    if (h->node_id == ps->cfg.self_id) {
        if (!pr->is_self)
            kz_info("discovery: %s:%d (from %s) is this proxy", pr->host, ps->cfg.dns_port, ps->dns_name);
        pr->is_self = 1;
        return;
    }
    pr->is_self = 0;
    mc_peer_int *p = mc_peers_get(ps, h->node_id);
    if (p == NULL && (h->flags & KC_PEER_HELLO_DRAINING)) {
        kz_dbg("discovery: node %d at %s:%d is draining; not adding it", h->node_id, pr->adv_host, pr->adv_port);
        return;
    }
    if (p != NULL && (p->pub.is_static ||
                      (strcmp(p->pub.host, pr->adv_host) == 0 && p->pub.port == pr->adv_port)))
        return; /* known: its own health checks decide */
    if (p != NULL) {
        if (p->pub.healthy) {
            kz_dbg("discovery: node %d answers at %s:%d but is healthy at %s:%d; keeping that", h->node_id,
                   pr->adv_host, pr->adv_port, p->pub.host, p->pub.port);
            return;
        }
        kz_info("discovery: peer %d moved from %s:%d to %s:%d", h->node_id, p->pub.host, p->pub.port,
                pr->adv_host, pr->adv_port);
        mc_peers_remove(ps, p);
    }
    p = mc_peers_insert(ps, h->node_id, zone, pr->adv_host, pr->adv_port, 0);
    if (p == NULL) {
        kz_warn("discovery: cannot add peer %d (%s:%d): %s", h->node_id, pr->adv_host, pr->adv_port,
                ps->n >= MC_PEERS_MAX ? "too many peers" : "out of memory");
        mc_peers_changed(ps);
        return;
    }
    p->pub.started_ms = h->started_ms;
    ps->stats.discovered++;
    kz_info("discovery: found peer %d (%s:%d, zone %s) at %s:%d through %s", h->node_id, pr->adv_host,
            pr->adv_port, zone, pr->host, ps->cfg.dns_port, ps->dns_name);
    mc_peers_changed(ps);
}

static void mc_probe_cb(kc_frame *resp, const char *err, void *arg)
{
    mc_probe *pr = arg;
    if (pr->closing) {
        if (resp)
            kc_frame_release(resp);
        return;
    }
    mc_peers *ps = pr->ps;
    pr->inflight = 0;
    char why[256];
    kc_peer_hello h;
    if (resp == NULL)
        snprintf(why, sizeof(why), "%s", err ? err : "KzHello failed");
    else if (mc_hello_parse(ps, resp, pr->nonce, &h, why, sizeof(why)) == 0)
        why[0] = '\0';
    if (why[0]) {
        if (!pr->failing)
            kz_warn("discovery: %s:%d (from %s) does not answer as a kzproxy peer: %s", pr->host,
                    ps->cfg.dns_port, ps->dns_name, why);
        pr->failing = 1;
    } else {
        if (pr->failing)
            kz_info("discovery: %s:%d (from %s) answers now", pr->host, ps->cfg.dns_port, ps->dns_name);
        pr->failing = 0;
        if (ps->cfg.xz && !kc_str_eq(h.zone, ps->self_zone)) {
            /* The exchange crossed zones: count it now that we know. */
            mc_xz_count(ps->cfg.xz, MC_XZ_OUT, MC_XZ_PEER, KC_API_KZ_HELLO, pr->req_bytes);
            mc_xz_count(ps->cfg.xz, MC_XZ_IN, MC_XZ_PEER, KC_API_KZ_HELLO, 4 + (uint64_t)resp->len);
        }
        mc_probe_answered(pr, &h);
    }
    if (resp)
        kc_frame_release(resp);
}

/* Whether the address needs asking who is there. */
static int mc_probe_needed(const mc_peers *ps, const mc_probe *pr)
{
    if (pr->inflight || pr->is_self)
        return 0;
    if (pr->node_id < 0)
        return 1;
    const mc_peer_int *p = mc_peers_get(ps, pr->node_id);
    if (p == NULL)
        return 1; /* forgotten (or never added): ask again */
    if (p->pub.is_static)
        return 0;
    if (strcmp(p->pub.host, pr->adv_host) != 0 || p->pub.port != pr->adv_port)
        return !p->pub.healthy; /* the node moved: replace it once it is down */
    return 0;
}

static void mc_probe_send(mc_probe *pr)
{
    mc_peers *ps = pr->ps;
    if (pr->conn == NULL) {
        pr->conn = mc_conn_new(ps->base, ps->dns, pr->host, ps->cfg.dns_port, -1, &ps->cfg.conn, &ps->stats.conns);
        if (pr->conn == NULL)
            return;
    }
    /* Sealed for "unknown": the node at this address may have changed since
     * the last answer (a pod's address reused); a receiver accepts that for
     * KzHello only. */
    struct evbuffer *body = mc_hello_body(ps, KC_PEER_RECEIVER_UNKNOWN, pr->nonce);
    if (body == NULL)
        return;
    pr->req_bytes = mc_hello_frame_bytes(evbuffer_get_length(body));
    pr->inflight = 1;
    if (mc_conn_request(pr->conn, KC_API_KZ_HELLO, KC_PEER_VERSION, kc_str_c(MC_PEER_CLIENT_ID), body, 1, 0,
                        mc_probe_cb, pr) != 0) {
        pr->inflight = 0;
        if (!pr->failing)
            kz_warn("discovery: %s:%d (from %s): cannot connect", pr->host, ps->cfg.dns_port, ps->dns_name);
        pr->failing = 1;
    }
    evbuffer_free(body);
}

static mc_probe *mc_probe_find(const mc_peers *ps, const char *host)
{
    for (int i = 0; i < ps->nprobes; i++)
        if (strcmp(ps->probes[i]->host, host) == 0)
            return ps->probes[i];
    return NULL;
}

/* Note one address of the current answer. */
static void mc_dns_address(mc_peers *ps, int af, const void *addr)
{
    char host[INET6_ADDRSTRLEN];
    if (inet_ntop(af, addr, host, sizeof(host)) == NULL)
        return;
    mc_probe *pr = mc_probe_find(ps, host);
    if (pr == NULL) {
        if (ps->nprobes >= MC_PROBES_MAX) {
            kz_dbg("discovery: %s names more than %d addresses; ignoring %s", ps->dns_name, MC_PROBES_MAX,
                   host);
            return;
        }
        mc_probe **np = realloc(ps->probes, (size_t)(ps->nprobes + 1) * sizeof(*np));
        pr = np ? calloc(1, sizeof(*pr)) : NULL;
        if (np)
            ps->probes = np;
        if (pr == NULL)
            return;
        pr->ps = ps;
        pr->node_id = -1;
        snprintf(pr->host, sizeof(pr->host), "%s", host);
        ps->probes[ps->nprobes++] = pr;
    }
    pr->in_dns = 1;
}

/* Whether a discovered peer is still named by the latest complete answer. */
static int mc_peer_in_dns(const mc_peers *ps, const mc_peer_int *p)
{
    for (int i = 0; i < ps->nprobes; i++) {
        const mc_probe *pr = ps->probes[i];
        if (pr->in_dns && pr->node_id == p->pub.node_id && pr->adv_port == p->pub.port &&
            strcmp(pr->adv_host, p->pub.host) == 0)
            return 1;
    }
    return 0;
}

/* Both queries of a round are in. */
static void mc_dns_round_done(mc_peers *ps)
{
    int complete = !ps->round_transient;
    if (ps->round_err) {
        ps->stats.dns_failures++;
        if (!ps->dns_failing)
            kz_warn("discovery: resolving %s failed: %s%s", ps->dns_name, evdns_err_to_string(ps->round_err),
                    complete ? "" : " (keeping the peers found so far)");
        ps->dns_failing = 1;
    } else if (ps->dns_failing) {
        kz_info("discovery: resolving %s works again", ps->dns_name);
        ps->dns_failing = 0;
    }
    int changed = 0;
    for (int i = 0; i < ps->nprobes;) {
        mc_probe *pr = ps->probes[i];
        if (complete && !pr->in_dns) {
            /* The address left DNS. */
            ps->probes[i] = ps->probes[--ps->nprobes];
            mc_probe_free(pr);
            continue;
        }
        if (pr->conn && !pr->inflight) {
            /* Done asking: no need for one more connection to that proxy. */
            mc_conn *c = pr->conn;
            pr->conn = NULL;
            pr->closing = 1;
            mc_conn_free(c);
            pr->closing = 0;
        }
        i++;
    }
    if (complete) {
        for (int i = 0; i < ps->n;) {
            mc_peer_int *p = ps->v[i];
            if (p->discovered && !p->pub.healthy && !mc_peer_in_dns(ps, p)) {
                kz_info("discovery: forgetting peer %d (%s:%d): down and no longer in %s", p->pub.node_id,
                        p->pub.host, p->pub.port, ps->dns_name);
                mc_peers_remove(ps, p);
                changed = 1;
                continue;
            }
            i++;
        }
    }
    if (changed)
        mc_peers_changed(ps);
    /* Probing may add peers (callbacks run later) but never removes probes. */
    for (int i = 0; i < ps->nprobes; i++)
        if (ps->probes[i]->in_dns && mc_probe_needed(ps, ps->probes[i]))
            mc_probe_send(ps->probes[i]);
}

static void mc_dns_cb(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    mc_dnsq *q = arg;
    mc_peers *ps = q->ps;
    int fam = q->family;
    (void)ttl;
    free(q);
    if (ps == NULL)
        return; /* cancelled by mc_peers_free */
    ps->dnsq[fam] = NULL;
    if (result == DNS_ERR_NONE) {
        if (count > MC_PROBES_MAX)
            count = MC_PROBES_MAX;
        for (int i = 0; i < count; i++) {
            if (type == DNS_IPv4_A)
                mc_dns_address(ps, AF_INET, (const uint8_t *)addresses + 4 * i);
            else if (type == DNS_IPv6_AAAA)
                mc_dns_address(ps, AF_INET6, (const uint8_t *)addresses + 16 * i);
        }
    } else if (result != DNS_ERR_NODATA) {
        /* NXDOMAIN is an answer (the name is gone); anything else says nothing. */
        if (ps->round_err == 0)
            ps->round_err = result;
        if (result != DNS_ERR_NOTEXIST)
            ps->round_transient = 1;
    }
    if (--ps->dns_pending == 0)
        mc_dns_round_done(ps);
}

/* The dns_ev callback: start a round (an A and an AAAA query). */
void mc_dns_round(evutil_socket_t fd, short what, void *arg)
{
    mc_peers *ps = arg;
    (void)fd;
    (void)what;
    if (ps->dns_pending > 0)
        return; /* the previous round is still waiting (evdns has its own timeouts) */
    ps->stats.dns_resolutions++;
    ps->round_err = 0;
    ps->round_transient = 0;
    for (int i = 0; i < ps->nprobes; i++)
        ps->probes[i]->in_dns = 0;
    ps->dns_pending = 2;
    for (int fam = 0; fam < 2; fam++) {
        mc_dnsq *q = calloc(1, sizeof(*q));
        if (q == NULL) {
            ps->round_transient = 1;
            if (ps->round_err == 0)
                ps->round_err = DNS_ERR_UNKNOWN;
            if (--ps->dns_pending == 0)
                mc_dns_round_done(ps);
            continue;
        }
        q->ps = ps;
        q->family = fam;
        ps->dnsq[fam] = q;
        struct evdns_request *r =
            fam == 0 ? evdns_base_resolve_ipv4(ps->dns, ps->dns_name, DNS_QUERY_NO_SEARCH, mc_dns_cb, q)
                     : evdns_base_resolve_ipv6(ps->dns, ps->dns_name, DNS_QUERY_NO_SEARCH, mc_dns_cb, q);
        if (r == NULL) {
            /* Refused at once; the callback does not run (unless it already has). */
            if (ps->dnsq[fam] == q) {
                ps->dnsq[fam] = NULL;
                free(q);
                ps->round_transient = 1;
                if (ps->round_err == 0)
                    ps->round_err = DNS_ERR_UNKNOWN;
                if (--ps->dns_pending == 0)
                    mc_dns_round_done(ps);
            }
        } else if (ps->dnsq[fam] == q) {
            q->req = r;
        }
    }
}

/* Cancel the queries in flight and free the probes (from mc_peers_free). */
void mc_dns_free(mc_peers *ps)
{
    for (int fam = 0; fam < 2; fam++) {
        mc_dnsq *q = ps->dnsq[fam];
        if (q == NULL)
            continue;
        /* The cancelled callback runs later (deferred): it frees q. */
        q->ps = NULL;
        ps->dnsq[fam] = NULL;
        if (q->req)
            evdns_cancel_request(ps->dns, q->req);
    }
    for (int i = 0; i < ps->nprobes; i++)
        mc_probe_free(ps->probes[i]);
    free(ps->probes);
    ps->probes = NULL;
    ps->nprobes = 0;
}
