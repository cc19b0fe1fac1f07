#include "config.h"

#include "proxy/px_proxy.h"
#include "proxy/px_acl.h"
#include "proxy/px_worker.h"

#include "codec/kc_msg.h"
#include "codec/kc_peer.h"
#include "common/kz_log.h"
#include "meta-client/mc_peers.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- the proxies a zone sees ---------------- */

static int px_node_cmp(const void *a, const void *b)
{
    const px_node *x = a, *y = b;
    int c = strcmp(x->zone, y->zone);
    if (c)
        return c;
    return (x->node_id > y->node_id) - (x->node_id < y->node_id);
}

/* Append a copy of s to the string area at *pos; returns the copy. */
static const char *px_vc_put(char **pos, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = *pos;
    memcpy(d, s, n);
    *pos += n;
    return d;
}

int px_vc_nodes_rebuild(px_proxy *px)
{
    const px_config *cfg = px->cfg;
    int n = 1;
    size_t strbytes = strlen(cfg->zone) + strlen(cfg->advertised_host) + 2;
    int np = px->peers ? mc_peers_count(px->peers) : cfg->npeers;
    for (int i = 0; i < np; i++) {
        const char *zone, *host;
        if (px->peers) {
            const mc_peer *p = mc_peers_at(px->peers, i);
            if (!p->healthy)
                continue;
            zone = p->zone;
            host = p->host;
        } else {
            zone = cfg->peers[i].zone;
            host = cfg->peers[i].host;
        }
        n++;
        strbytes += strlen(zone) + strlen(host) + 2;
    }
    /* One block: the nodes, then the strings they point to. */
    px_node *nodes = malloc((size_t)n * sizeof(px_node) + strbytes);
    if (nodes == NULL)
        return -1;
    char *pos = (char *)(nodes + n);
    int k = 0;
    nodes[k++] = (px_node){cfg->node_id, px_vc_put(&pos, cfg->zone), px_vc_put(&pos, cfg->advertised_host),
                           cfg->advertised_port};
    for (int i = 0; i < np; i++) {
        if (px->peers) {
            const mc_peer *p = mc_peers_at(px->peers, i);
            if (!p->healthy)
                continue;
            nodes[k].node_id = p->node_id;
            nodes[k].zone = px_vc_put(&pos, p->zone);
            nodes[k].host = px_vc_put(&pos, p->host);
            nodes[k].port = p->port;
        } else {
            const px_peer *p = &cfg->peers[i];
            nodes[k].node_id = p->node_id;
            nodes[k].zone = px_vc_put(&pos, p->zone);
            nodes[k].host = px_vc_put(&pos, p->host);
            nodes[k].port = p->port;
        }
        k++;
    }
    qsort(nodes, (size_t)n, sizeof(px_node), px_node_cmp);
    if (px->draining == 1 && n > 1) { /* leaving (px_drain.c): answer with the others only */
        for (int i = 0; i < n; i++) {
            if (nodes[i].node_id == cfg->node_id) {
                memmove(&nodes[i], &nodes[i + 1], (size_t)(n - i - 1) * sizeof(px_node));
                n--;
                break;
            }
        }
    }
    free(px->nodes);
    px->nodes = nodes;
    px->nnodes = n;
    if (px->workers)
        px_workers_nodes_changed(px); /* each worker answers from its own copy */
    return 0;
}

static void px_vc_nodes_cb(evutil_socket_t fd, short what, void *arg)
{
    px_proxy *px = arg;
    (void)fd;
    (void)what;
    if (px_vc_nodes_rebuild(px) != 0) {
        kz_err("out of memory rebuilding the virtual cluster; keeping the previous one");
        return;
    }
    kz_dbg("virtual cluster: %d proxies", px->nnodes);
}

void px_vc_peers_changed(void *arg)
{
    px_proxy *px = arg;
    /* Rebuild from the loop, not deep inside a peer connection's callback:
     * several changes in one pass give one rebuild, and px->nodes stays put
     * while anyone up the stack may be using it. */
    if (px->nodes_ev)
        event_active(px->nodes_ev, EV_TIMEOUT, 0);
    else
        px_vc_nodes_cb(-1, 0, px);
}

int px_vc_nodes_init(px_proxy *px)
{
    px->nodes_ev = event_new(px->base, -1, 0, px_vc_nodes_cb, px);
    if (px->nodes_ev == NULL)
        return -1;
    if (px->peers)
        mc_peers_on_change(px->peers, px_vc_peers_changed, px);
    return px_vc_nodes_rebuild(px);
}

void px_vc_nodes_free(px_proxy *px)
{
    if (px->nodes_ev) {
        event_free(px->nodes_ev);
        px->nodes_ev = NULL;
    }
    free(px->nodes);
    px->nodes = NULL;
    px->nnodes = 0;
}

int px_vc_zone_known(px_proxy *px, const char *zone)
{
    if (strcmp(px->cfg->zone, zone) == 0)
        return 1;
    int np = px->peers ? mc_peers_count(px->peers) : 0;
    for (int i = 0; i < np; i++)
        if (strcmp(mc_peers_at(px->peers, i)->zone, zone) == 0)
            return 1;
    for (int i = 0; i < px->nnodes; i++)
        if (strcmp(px->nodes[i].zone, zone) == 0)
            return 1;
    return 0;
}

int px_vc_zone_nodes(px_proxy *px, const char *zone, const px_node **out, int *fallback)
{
    /* nodes is sorted by zone then node id, so a zone's proxies are contiguous. */
    int first = -1, n = 0;
    for (int i = 0; i < px->nnodes; i++) {
        if (strcmp(px->nodes[i].zone, zone) == 0) {
            if (first < 0)
                first = i;
            n++;
        }
    }
    if (n > 0) {
        *out = &px->nodes[first];
        *fallback = 0;
        return n;
    }
    *out = px->nodes;
    *fallback = 1;
    return px->nnodes;
}

/* Murmur3's finaliser: spreads consecutive broker ids over the proxies. */
static uint32_t px_mix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

const px_node *px_vc_map_broker(const px_node *nodes, int n, int32_t broker_id)
{
    if (n <= 0 || broker_id < 0)
        return NULL;
    return &nodes[px_mix32((uint32_t)broker_id) % (uint32_t)n];
}

/* ---------------- ApiVersions ---------------- */

/* The ApiKeys kzproxy serves, and whether it forwards them to brokers (then
 * the range is intersected with the backend's). */
static const struct {
    int16_t key;
    int forwarded;
    int optional; /* forwarded, and some backends lack it: offered only when the backend has it */
} px_served[] = {
    {KC_API_PRODUCE, 1, 0},
    {KC_API_FETCH, 1, 0},
    {KC_API_LISTOFFSETS, 1, 0},
    {KC_API_METADATA, 0, 0},
    {KC_API_APIVERSIONS, 0, 0},
    {KC_API_FINDCOORDINATOR, 0, 0},
    {KC_API_OFFSETFORLEADEREPOCH, 1, 1},
    {KC_API_DELETERECORDS, 1, 1},
    {KC_API_LISTGROUPS, 1, 1},
    {KC_API_DESCRIBECLUSTER, 0, 0},
};

int px_vc_version_range(px_proxy *px, int16_t key, int16_t *min, int16_t *max)
{
    int16_t pmax;
    if (kc_peer_api(key)) {
        /* The peer RPC: only when a secret is configured (never advertised). */
        if (px->cfg->peer_secret == NULL)
            return -1;
        *min = *max = KC_PEER_VERSION;
        return 0;
    }
    if (key == KC_API_SASLHANDSHAKE || key == KC_API_SASLAUTHENTICATE) {
        /* Served by px_sasl.c when clients log in (client_sasl). SaslHandshake
         * v0 is followed by bare tokens (kafka-python 2.0 uses it). */
        if (px->csasl == NULL)
            return -1;
        *min = 0;
        *max = key == KC_API_SASLHANDSHAKE ? 1 : 2;
        return 0;
    }
    if (px_pass_versions(key, &pmax) == 0) {
        /* Forwarded unchanged: the backend's range, capped where kzproxy
         * knows the routing field. Not offered before the backend is known. */
        int16_t bmin, bmax;
        if (px->mc == NULL || mc_cluster_backend_versions(px->mc, key, &bmin, &bmax) != 0)
            return -1;
        if (bmax > pmax)
            bmax = pmax;
        if (bmin > bmax)
            return -1;
        *min = bmin;
        *max = bmax;
        return 0;
    }
    for (size_t i = 0; i < sizeof(px_served) / sizeof(px_served[0]); i++) {
        if (px_served[i].key != key)
            continue;
        const kc_api_info *ai = kc_api_lookup(key);
        int16_t lo = ai->min_version, hi = ai->max_version, bmin, bmax;
        int have = px_served[i].forwarded && px->mc &&
                   mc_cluster_backend_versions(px->mc, key, &bmin, &bmax) == 0;
        if (px_served[i].optional && !have)
            return -1;
        if (have) {
            /* kzproxy re-encodes these: a client may use any version the codec
             * knows, and the brokers get min(client's, backend's highest). */
            if (bmin > lo)
                lo = bmin;
            if (bmax < lo)
                return -1;
            /* Brokers below ListGroups v4 cannot filter by state nor report
             * it: a client must not be offered what they cannot answer. */
            if (key == KC_API_LISTGROUPS && bmax < hi)
                hi = bmax;
        }
        /* Fetch v13+ names topics by id: served only when the view knows the
         * ids (the backend speaks Metadata v10+), else capped at v12. */
        if (key == KC_API_FETCH && hi > 12 && !(px->mc && mc_view_has_topic_ids(mc_cluster_view(px->mc))))
            hi = 12;
        if (lo > hi)
            return -1;
        *min = lo;
        *max = hi;
        return 0;
    }
    return -1;
}

void px_vc_apiversions(px_req *rq)
{
    px_proxy *px = px_client_proxy(rq->cl);
    const kc_api_info *ai = kc_api_lookup(KC_API_APIVERSIONS);
    int16_t version = rq->hdr.api_version;
    kc_apiversions_key keys[KC_API_MAX + 1];
    kc_apiversions_resp r = {0};
    r.api_keys = keys;
    for (int16_t k = 0; k <= KC_API_MAX; k++) {
        int16_t lo, hi;
        if (px_vc_version_range(px, k, &lo, &hi) != 0)
            continue;
        keys[r.napi_keys++] = (kc_apiversions_key){.api_key = k, .min_version = lo, .max_version = hi};
    }
    if (version > ai->max_version) {
        /* A newer client: answer at v0 with the error and our range so that
         * it retries with a version we speak (KIP-511). */
        r.error_code = KC_ERR_UNSUPPORTED_VERSION;
        version = 0;
        rq->hdr.api_version = 0;
    } else {
        kc_rd rd;
        kc_apiversions_req req;
        kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
        if (kc_apiversions_req_decode(&rd, version, NULL, &req) != 0) {
            px_req_reject(rq, "malformed request: %s at byte %zu", rd.err, rq->body_off + rd.err_off);
            return;
        }
    }
    struct evbuffer *body = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, body, NULL);
    kc_apiversions_resp_encode(&w, version, &r);
    px_req_respond(rq, body);
    evbuffer_free(body);
}

/* ---------------- Metadata ---------------- */

typedef struct px_md {
    px_req *rq;
    kc_arena arena;
    kc_metadata_req req;
    kc_str *names;
    int nnames; /* -1: all topics */
    int pending;  /* backend refreshes not answered yet (px_md_part) */
    int failed;   /* one of them failed: err */
    char err[192];
} px_md;

/* Map a list of broker ids to proxy ids, dropping duplicates. */
static int32_t px_vc_map_ids(kc_arena *a, const px_node *nodes, int n, const int32_t *ids,
                             int32_t nids, int32_t **out)
{
    int32_t *r = kc_arena_calloc(a, (size_t)(nids > 0 ? nids : 0), sizeof(int32_t));
    int32_t cnt = 0;
    *out = r;
    if (r == NULL)
        return 0;
    for (int32_t i = 0; i < nids; i++) {
        const px_node *p = px_vc_map_broker(nodes, n, ids[i]);
        if (p == NULL)
            continue;
        int dup = 0;
        for (int32_t j = 0; j < cnt; j++)
            dup |= r[j] == p->node_id;
        if (!dup)
            r[cnt++] = p->node_id;
    }
    return cnt;
}

static int px_vc_fill_topic(kc_arena *a, kc_metadata_topic *t, const mc_topic *mt,
                            const px_node *nodes, int n)
{
    t->error_code = mt->error_code;
    t->name = kc_str_c(mt->name);
    t->topic_id = mt->topic_id;
    t->is_internal = mt->is_internal;
    t->topic_authorized_operations = INT32_MIN;
    t->npartitions = mt->npartitions;
    t->partitions = kc_arena_calloc(a, (size_t)mt->npartitions, sizeof(kc_metadata_partition));
    if (t->partitions == NULL)
        return -1;
    for (int32_t i = 0; i < mt->npartitions; i++) {
        const mc_partition *mp = &mt->partitions[i];
        kc_metadata_partition *p = &t->partitions[i];
        const px_node *leader = px_vc_map_broker(nodes, n, mp->leader_id);
        p->error_code = mp->error_code;
        p->partition_index = mp->index;
        p->leader_id = leader ? leader->node_id : -1;
        p->leader_epoch = mp->leader_epoch;
        p->nreplica_nodes = px_vc_map_ids(a, nodes, n, mp->replicas, mp->nreplicas, &p->replica_nodes);
        p->nisr_nodes = px_vc_map_ids(a, nodes, n, mp->isr, mp->nisr, &p->isr_nodes);
        p->noffline_replicas = 0;
        p->offline_replicas = NULL;
        if (p->replica_nodes == NULL || p->isr_nodes == NULL)
            return -1;
        if (leader == NULL && p->error_code == 0)
            p->error_code = KC_ERR_LEADER_NOT_AVAILABLE;
    }
    return 0;
}

static void px_md_answer(mc_view *view, const char *err, void *arg)
{
    px_md *md = arg;
    px_req *rq = md->rq;
    px_proxy *px = px_client_proxy(rq->cl);
    kc_arena *a = &md->arena;
    int16_t version = rq->hdr.api_version;
    if (view == NULL) {
        view = mc_cluster_view(px->mc);
        if (err)
            kz_warn("client %s: Metadata: backend refresh failed (%s); answering from the last view",
                    px_client_peer(rq->cl), err);
    }

    const px_node *nodes;
    int fallback;
    int n = px_vc_zone_nodes(px, px_client_zone(rq->cl), &nodes, &fallback);
    if (fallback)
        px->m.zone_fallbacks++;

    kc_metadata_resp r = {0};
    r.cluster_authorized_operations = INT32_MIN;
    r.controller_id = n > 0 ? nodes[0].node_id : -1;
    r.cluster_id = kc_str_c(view ? view->cluster_id : NULL);
    r.nbrokers = n;
    r.brokers = kc_arena_calloc(a, (size_t)n, sizeof(*r.brokers));
    int ok = r.brokers != NULL;
    for (int i = 0; ok && i < n; i++) {
        r.brokers[i].node_id = nodes[i].node_id;
        r.brokers[i].host = kc_str_c(nodes[i].host);
        r.brokers[i].port = nodes[i].port;
        r.brokers[i].rack = kc_str_c(nodes[i].zone);
    }
    if (ok && md->nnames < 0) {
        int32_t nt = view ? view->ntopics : 0;
        r.topics = kc_arena_calloc(a, (size_t)nt, sizeof(*r.topics));
        ok = r.topics != NULL;
        for (int32_t i = 0; ok && i < nt; i++)
            if (px_acl_allowed(rq->cl, KZ_ACL_DESCRIBE, KZ_ACL_TOPIC, kc_str_c(view->topics[i].name)))
                ok = px_vc_fill_topic(a, &r.topics[r.ntopics++], &view->topics[i], nodes, n) == 0;
    } else if (ok) {
        r.topics = kc_arena_calloc(a, (size_t)md->nnames, sizeof(*r.topics));
        ok = r.topics != NULL;
        for (int i = 0; ok && i < md->nnames; i++) {
            kc_metadata_topic *t = &r.topics[r.ntopics++];
            const mc_topic *mt = mc_view_topic(view, md->names[i]);
            if (!px_acl_check(rq->cl, KZ_ACL_DESCRIBE, KZ_ACL_TOPIC, md->names[i])) {
                t->name = md->names[i]; /* named but not describable: Kafka's answer, nothing about it */
                t->error_code = KC_ERR_TOPIC_AUTHORIZATION_FAILED;
                t->topic_authorized_operations = INT32_MIN;
                t->partitions = NULL;
            } else if (mt != NULL) {
                ok = px_vc_fill_topic(a, t, mt, nodes, n) == 0;
            } else {
                t->name = md->names[i];
                t->error_code = err ? KC_ERR_LEADER_NOT_AVAILABLE : KC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                t->topic_authorized_operations = INT32_MIN;
                t->partitions = NULL;
            }
        }
    }
    struct evbuffer *body = ok ? evbuffer_new() : NULL;
    if (body == NULL) {
        px_req_reject(rq, "out of memory answering Metadata");
    } else {
        kc_wr w;
        kc_wr_init(&w, body, NULL);
        kc_metadata_resp_encode(&w, version, &r);
        px_req_respond(rq, body);
        evbuffer_free(body);
    }
    kc_arena_destroy(&md->arena);
    free(md);
}

/* One of the two refreshes of a Metadata request whose topics are split by
 * the right to create them: the answer once both are in, from the view
 * they both merged into. err is copied (it may live on the caller's stack). */
static void px_md_part(mc_view *view, const char *err, void *arg)
{
    px_md *md = arg;
    if (view == NULL && !md->failed) {
        md->failed = 1;
        snprintf(md->err, sizeof(md->err), "%s", err ? err : "unknown error");
    }
    if (--md->pending > 0)
        return;
    px_proxy *px = px_client_proxy(md->rq->cl);
    if (md->failed)
        px_md_answer(NULL, md->err, md);
    else
        px_md_answer(mc_cluster_view(px->mc), NULL, md);
}

void px_vc_metadata(px_req *rq)
{
    px_proxy *px = px_client_proxy(rq->cl);
    px_md *md = calloc(1, sizeof(*md));
    if (md == NULL) {
        px_req_reject(rq, "out of memory");
        return;
    }
    md->rq = rq;
    kc_arena_init(&md->arena);
    kc_rd rd;
    int16_t version = rq->hdr.api_version;
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    if (kc_metadata_req_decode(&rd, version, &md->arena, &md->req) != 0) {
        px_req_reject(rq, "malformed request: %s at byte %zu", rd.err, rq->body_off + rd.err_off);
        kc_arena_destroy(&md->arena);
        free(md);
        return;
    }
    const kc_metadata_req *req = &md->req;
    if (req->ntopics < 0 || (version == 0 && req->ntopics == 0)) {
        md->nnames = -1;
    } else {
        md->names = kc_arena_calloc(&md->arena, (size_t)req->ntopics, sizeof(kc_str));
        if (md->names == NULL) {
            px_req_reject(rq, "out of memory");
            kc_arena_destroy(&md->arena);
            free(md);
            return;
        }
        for (int32_t i = 0; i < req->ntopics; i++)
            if (req->topics[i].name.len > 0)
                md->names[md->nnames++] = req->topics[i].name;
    }
    if (md->nnames == 0) {
        px_md_answer(mc_cluster_view(px->mc), NULL, md);
        return;
    }
    int allow_create = version >= 4 ? req->allow_auto_topic_creation : 1;
    if (px->cfg->acl == NULL || md->nnames < 0) { /* < 0: every topic, none created */
        mc_cluster_refresh(px->mc, md->names, md->nnames, allow_create, px_md_answer, md);
        return;
    }
    /* Topics the client may not describe are neither looked up nor created
     * (the answer gives them TOPIC_AUTHORIZATION_FAILED); the backend may
     * auto-create only those it may create (as Kafka: CREATE on the topic
     * or the cluster), the others are looked up without creation, so a
     * missing one is UNKNOWN_TOPIC_OR_PARTITION. */
    kc_str *create = kc_arena_calloc(&md->arena, (size_t)md->nnames, sizeof(kc_str));
    kc_str *lookup = kc_arena_calloc(&md->arena, (size_t)md->nnames, sizeof(kc_str));
    if (create == NULL || lookup == NULL) {
        px_req_reject(rq, "out of memory");
        kc_arena_destroy(&md->arena);
        free(md);
        return;
    }
    px_acl_pass_ctx ctx;
    px_acl_ctx(rq->cl, &ctx);
    int ncreate = 0, nlookup = 0;
    px_acl_metadata_split(&ctx, md->names, md->nnames, allow_create, create, &ncreate, lookup, &nlookup);
    if (ncreate == 0 && nlookup == 0) {
        px_md_answer(mc_cluster_view(px->mc), NULL, md);
        return;
    }
    /* Metadata below v4 has no allow_auto_topic_creation: a backend that
     * speaks no higher (librdkafka's mock) may create any topic it is
     * asked about, so the lookup is then a refresh of every topic. */
    int16_t bmin, bmax;
    int lookup_all = mc_cluster_backend_versions(px->mc, KC_API_METADATA, &bmin, &bmax) != 0 || bmax < 4;
    if (ncreate == 0 || nlookup == 0) {
        if (ncreate == 0 && lookup_all)
            mc_cluster_refresh(px->mc, NULL, -1, 0, px_md_answer, md);
        else
            mc_cluster_refresh(px->mc, ncreate ? create : lookup, ncreate ? ncreate : nlookup, ncreate > 0,
                               px_md_answer, md);
        return;
    }
    md->pending = 2; /* before the first: its callback may run at once */
    mc_cluster_refresh(px->mc, create, ncreate, 1, px_md_part, md);
    if (lookup_all)
        mc_cluster_refresh(px->mc, NULL, -1, 0, px_md_part, md);
    else
        mc_cluster_refresh(px->mc, lookup, nlookup, 0, px_md_part, md);
}

/* ---------------- DescribeCluster ---------------- */

void px_vc_describecluster(px_req *rq)
{
    px_proxy *px = px_client_proxy(rq->cl);
    int16_t version = rq->hdr.api_version;
    kc_arena a;
    kc_describecluster_req req;
    kc_rd rd;
    kc_arena_init(&a);
    kc_rd_init(&rd, rq->frame->data + rq->body_off, rq->frame->len - rq->body_off);
    if (kc_describecluster_req_decode(&rd, version, &a, &req) != 0) {
        px_req_reject(rq, "malformed request: %s at byte %zu", rd.err, rq->body_off + rd.err_off);
        kc_arena_destroy(&a);
        return;
    }
    const mc_view *view = px->mc ? mc_cluster_view(px->mc) : NULL;
    const px_node *nodes;
    int fallback;
    int n = px_vc_zone_nodes(px, px_client_zone(rq->cl), &nodes, &fallback);
    if (fallback)
        px->m.zone_fallbacks++;

    /* The same cluster Metadata shows: the zone's proxies, one of them the
     * controller, the backend's cluster id. */
    kc_describecluster_resp r = {0};
    r.error_message = kc_str_c(NULL);
    r.endpoint_type = 1;
    r.cluster_id = kc_str_c(view && view->cluster_id ? view->cluster_id : "");
    r.controller_id = n > 0 ? nodes[0].node_id : -1;
    r.cluster_authorized_operations = INT32_MIN;
    if (req.endpoint_type != 1) {
        /* Controllers (2) are not reachable through a broker endpoint. */
        r.error_code = req.endpoint_type == 2 ? KC_ERR_MISMATCHED_ENDPOINT_TYPE
                                              : KC_ERR_UNSUPPORTED_ENDPOINT_TYPE;
        r.endpoint_type = req.endpoint_type;
        r.controller_id = -1;
    } else {
        r.brokers = kc_arena_calloc(&a, (size_t)n, sizeof(*r.brokers));
        if (r.brokers == NULL) {
            px_req_reject(rq, "out of memory");
            kc_arena_destroy(&a);
            return;
        }
        r.nbrokers = n;
        for (int i = 0; i < n; i++) {
            r.brokers[i].broker_id = nodes[i].node_id;
            r.brokers[i].host = kc_str_c(nodes[i].host);
            r.brokers[i].port = nodes[i].port;
            r.brokers[i].rack = kc_str_c(nodes[i].zone);
        }
    }
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        px_req_reject(rq, "out of memory");
        kc_arena_destroy(&a);
        return;
    }
    kc_wr w;
    kc_wr_init(&w, body, NULL);
    kc_describecluster_resp_encode(&w, version, &r);
    if (w.err)
        px_req_reject(rq, "out of memory for the response");
    else
        px_req_respond(rq, body);
    evbuffer_free(body);
    kc_arena_destroy(&a);
}
