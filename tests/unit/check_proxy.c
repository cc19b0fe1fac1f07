/* Unit tests for the proxy's pure pieces: client zones, the broker->proxy
 * mapping, addresses, the CIDR map, the KIP-951 CurrentLeader rewrite, Fetch
 * v13 topic ids -> names, the ListGroups merge; mc_conn against a broker
 * whose frames are out of line. */
#include "config.h"

#include "common/kz_addr.h"
#include "proxy/px_proxy.h"
#include "router/rt_seq.h"

#include <arpa/inet.h>
#include <check.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *zone_of(const char *cid)
{
    static char out[64];
    return px_zone_from_client_id(kc_str_c(cid), out, sizeof(out)) == 0 ? out : NULL;
}

START_TEST(test_zone_keys)
{
    ck_assert_str_eq(zone_of("kz_az=b"), "b");
    ck_assert_str_eq(zone_of("billing,kz_az=us-east-1b"), "us-east-1b");
    ck_assert_str_eq(zone_of("app&automq_az=c&x=1"), "c");
    ck_assert_str_eq(zone_of("a|warpstream_az=z1"), "z1");
    ck_assert_str_eq(zone_of("a;diskless_az=z2;b"), "z2");
    ck_assert_str_eq(zone_of("zone=eu-west-1a"), "eu-west-1a");
    ck_assert_ptr_null(zone_of("plain-client"));
    ck_assert_ptr_null(zone_of("kz_az="));
    ck_assert_ptr_null(zone_of("xkz_az=b"));  /* not the key */
    ck_assert_ptr_null(zone_of("kz_azz=b"));
    ck_assert_ptr_null(zone_of(""));
    ck_assert_ptr_null(zone_of(NULL));
    /* A value too long for the buffer is rejected, not truncated. */
    char longid[200] = "kz_az=";
    memset(longid + 6, 'x', 150);
    longid[156] = '\0';
    ck_assert_ptr_null(zone_of(longid));
}
END_TEST

START_TEST(test_map_broker_deterministic)
{
    px_node nodes[3] = {{101, "a", "h", 1}, {102, "a", "h", 2}, {103, "a", "h", 3}};
    int hits[3] = {0};
    for (int32_t b = 0; b < 300; b++) {
        const px_node *p = px_vc_map_broker(nodes, 3, b);
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_eq(p, px_vc_map_broker(nodes, 3, b)); /* same answer every time */
        hits[p - nodes]++;
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_gt(hits[i], 50); /* spread over all proxies */
    ck_assert_ptr_null(px_vc_map_broker(nodes, 3, -1));
    ck_assert_ptr_null(px_vc_map_broker(nodes, 0, 1));
}
END_TEST

START_TEST(test_hostport)
{
    char h[64];
    int port;
    ck_assert_int_eq(kz_split_hostport("127.0.0.1:9092", h, sizeof(h), &port), 0);
    ck_assert_str_eq(h, "127.0.0.1");
    ck_assert_int_eq(port, 9092);
    ck_assert_int_eq(kz_split_hostport("[::1]:19092", h, sizeof(h), &port), 0);
    ck_assert_str_eq(h, "::1");
    ck_assert_int_eq(kz_split_hostport("::1:9092", h, sizeof(h), &port), -1);
    ck_assert_int_eq(kz_split_hostport("host", h, sizeof(h), &port), -1);
    ck_assert_int_eq(kz_split_hostport("host:", h, sizeof(h), &port), -1);
    ck_assert_int_eq(kz_split_hostport("host:70000", h, sizeof(h), &port), -1);
    ck_assert_int_eq(kz_split_hostport(":9092", h, sizeof(h), &port), -1);
}
END_TEST

START_TEST(test_cidr_map)
{
    px_config cfg;
    char err[256];
    const char *json = "{\"node_id\":1,\"zone\":\"a\",\"listen\":\"127.0.0.1:9092\","
                       "\"bootstrap_servers\":[\"127.0.0.1:1\"],"
                       "\"client_zones\":[{\"cidr\":\"10.1.0.0/16\",\"zone\":\"b\"},"
                       "{\"cidr\":\"10.0.0.0/8\",\"zone\":\"c\"},{\"cidr\":\"fd00::/8\",\"zone\":\"d\"}]}";
    ck_assert_msg(px_config_parse(json, &cfg, err, sizeof(err)) == 0, "%s", err);
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr);
    ck_assert_str_eq(px_zone_from_addr(&cfg, (struct sockaddr *)&s4), "b");
    inet_pton(AF_INET, "10.2.2.3", &s4.sin_addr);
    ck_assert_str_eq(px_zone_from_addr(&cfg, (struct sockaddr *)&s4), "c");
    inet_pton(AF_INET, "192.168.1.1", &s4.sin_addr);
    ck_assert_ptr_null(px_zone_from_addr(&cfg, (struct sockaddr *)&s4));
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "fd12::1", &s6.sin6_addr);
    ck_assert_str_eq(px_zone_from_addr(&cfg, (struct sockaddr *)&s6), "d");
    px_config_free(&cfg);

    const char *bad = "{\"node_id\":1,\"zone\":\"a\",\"listen\":\"127.0.0.1:9092\","
                      "\"bootstrap_servers\":[\"127.0.0.1:1\"],"
                      "\"client_zones\":[{\"cidr\":\"10.1.0.0/33\",\"zone\":\"b\"}]}";
    ck_assert_int_eq(px_config_parse(bad, &cfg, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "client_zones[0].cidr") != NULL, "%s", err);
    px_config_free(&cfg);
}
END_TEST

/* wal.store.unsigned_payload: a bool or an error; unset, on for AWS's endpoint
 * and https:// ones, off for http://. */
START_TEST(test_wal_unsigned_payload)
{
    static const char *const fmt =
        "{\"node_id\":1,\"zone\":\"a\",\"listen\":\"127.0.0.1:9092\","
        "\"bootstrap_servers\":[\"127.0.0.1:1\"],\"peer_secret\":\"0123456789abcdef0123\","
        "\"wal\":{\"store\":{\"backend\":\"s3\",\"bucket\":\"b\"%s}}}";
    static const struct {
        const char *extra;
        int ok, want;
    } cases[] = {{"", 1, 1},
                 {",\"endpoint\":\"https://s3.example.net\"", 1, 1},
                 {",\"endpoint\":\"HTTPS://s3.example.net\"", 1, 1},
                 {",\"endpoint\":\"http://127.0.0.1:9000\"", 1, 0},
                 {",\"endpoint\":\"http://127.0.0.1:9000\",\"unsigned_payload\":true", 1, 1},
                 {",\"endpoint\":\"https://s3.example.net\",\"unsigned_payload\":false", 1, 0},
                 {",\"unsigned_payload\":true", 1, 1},
                 {",\"unsigned_payload\":false", 1, 0},
                 {",\"unsigned_payload\":1", 0, 0},
                 {",\"unsigned_payload\":\"true\"", 0, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[512], err[256] = "";
        px_config cfg;
        snprintf(json, sizeof(json), fmt, cases[i].extra);
        int rc = px_config_parse(json, &cfg, err, sizeof(err));
        if (cases[i].ok) {
            ck_assert_msg(rc == 0, "%s: %s", cases[i].extra, err);
            ck_assert_int_eq(cfg.wal.enabled, 1);
            ck_assert_int_eq(cfg.wal.unsigned_payload, cases[i].want);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_msg(strstr(err, "wal.store.unsigned_payload: expected true or false") != NULL,
                          "%s", err);
        }
        px_config_free(&cfg);
    }
}
END_TEST

/* fetch_from_follower: "broker" by default, "metadata", "off", else an error;
 * fetch_follower_retry_ms 10000 by default. */
START_TEST(test_fetch_from_follower_config)
{
    static const char *const fmt = "{\"node_id\":1,\"zone\":\"a\",\"listen\":\"127.0.0.1:9092\","
                                   "\"bootstrap_servers\":[\"127.0.0.1:1\"]%s}";
    static const struct {
        const char *extra;
        int ok, mode, retry;
    } cases[] = {{"", 1, PX_FETCH_FOLLOWER_BROKER, 10000},
                 {",\"fetch_from_follower\":\"broker\"", 1, PX_FETCH_FOLLOWER_BROKER, 10000},
                 {",\"fetch_from_follower\":\"metadata\"", 1, PX_FETCH_FOLLOWER_METADATA, 10000},
                 {",\"fetch_from_follower\":\"off\",\"fetch_follower_retry_ms\":500", 1,
                  PX_FETCH_FOLLOWER_OFF, 500},
                 {",\"fetch_from_follower\":\"leader\"", 0, 0, 0},
                 {",\"fetch_from_follower\":true", 0, 0, 0},
                 {",\"fetch_follower_retry_ms\":5", 0, 0, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[512], err[256] = "";
        px_config cfg;
        snprintf(json, sizeof(json), fmt, cases[i].extra);
        int rc = px_config_parse(json, &cfg, err, sizeof(err));
        if (cases[i].ok) {
            ck_assert_msg(rc == 0, "%s: %s", cases[i].extra, err);
            ck_assert_int_eq(cfg.fetch_from_follower, cases[i].mode);
            ck_assert_int_eq(cfg.fetch_follower_retry_ms, cases[i].retry);
        } else {
            ck_assert_msg(rc == -1, "%s accepted", cases[i].extra);
            ck_assert_msg(strstr(err, "fetch_f") != NULL, "%s", err);
        }
        px_config_free(&cfg);
    }
}
END_TEST

/* A Fetch partition's tags: CurrentLeader names the proxy the real leader
 * maps to, the epoch stays, DivergingEpoch passes, unknown tags go. */
START_TEST(test_fetch_rewrite_tags)
{
    px_node nodes[2] = {{201, "b", "h", 1}, {202, "b", "h", 2}};
    static const uint8_t raw[] = {
        0x00, 13, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0x01, 0xf4, 0x00, /* DivergingEpoch 4 @ 500 */
        0x01, 9, 0, 0, 0, 7, 0, 0, 0, 42, 0x00,                   /* CurrentLeader 7, epoch 42 */
        0x05, 1, 0xaa,                                           /* unknown tag 5 */
    };
    kc_tags in = {3, {raw, (int32_t)sizeof(raw)}};
    kc_arena a;
    kc_arena_init(&a);
    kc_tags out;
    ck_assert_int_eq(px_fetch_rewrite_tags(&a, &in, nodes, 2, &out), 0);
    ck_assert_uint_eq(out.count, 2);
    int32_t want = px_vc_map_broker(nodes, 2, 7)->node_id;
    uint8_t expect[] = {
        0x00, 13, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0x01, 0xf4, 0x00,
        0x01, 9, 0, 0, 0, (uint8_t)want, 0, 0, 0, 42, 0x00,
    };
    ck_assert_int_eq(out.raw.len, (int32_t)sizeof(expect));
    ck_assert_mem_eq(out.raw.p, expect, sizeof(expect));

    kc_fetch_partition_tags pt;
    ck_assert_int_eq(kc_fetch_partition_tags_parse(&out, &pt), 0);
    ck_assert(want == 201 || want == 202);
    ck_assert_int_eq(pt.leader_id, want);
    ck_assert_int_eq(pt.leader_epoch, 42);

    /* An unknown leader (-1) stays -1. */
    static const uint8_t none[] = {0x01, 9, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0x00};
    kc_tags in2 = {1, {none, (int32_t)sizeof(none)}};
    ck_assert_int_eq(px_fetch_rewrite_tags(&a, &in2, nodes, 2, &out), 0);
    ck_assert_int_eq(kc_fetch_partition_tags_parse(&out, &pt), 0);
    ck_assert_int_eq(pt.leader_id, -1);
    ck_assert_int_eq(pt.leader_epoch, 1);

    /* A malformed section (CurrentLeader of 2 bytes) is dropped, not passed on. */
    static const uint8_t bad[] = {0x01, 2, 0, 7};
    kc_tags in3 = {1, {bad, (int32_t)sizeof(bad)}};
    ck_assert_int_eq(px_fetch_rewrite_tags(&a, &in3, nodes, 2, &out), 0);
    ck_assert_uint_eq(out.count, 0);
    kc_arena_destroy(&a);
}
END_TEST

static int uuid_cmp(const void *x, const void *y)
{
    const mc_topic *a = *(const mc_topic *const *)x, *b = *(const mc_topic *const *)y;
    return memcmp(a->topic_id.b, b->topic_id.b, 16);
}

/* Fetch v13 names topics by id; brokers below v13 need names. */
START_TEST(test_fetch_names_from_ids)
{
    mc_topic topics[3] = {{.name = "alpha"}, {.name = "beta"}, {.name = "gamma"}};
    topics[0].topic_id.b[0] = 0x90; /* ids in another order than names */
    topics[1].topic_id.b[15] = 0x01;
    /* gamma has no id (all zero): never found by id */
    mc_topic *by_id[2] = {&topics[0], &topics[1]};
    qsort(by_id, 2, sizeof(by_id[0]), uuid_cmp);
    mc_view v = {.refcnt = 1, .ntopics = 3, .topics = topics, .nby_id = 2, .by_id = by_id};
    ck_assert(mc_view_has_topic_ids(&v));
    ck_assert_ptr_eq(mc_view_topic_by_id(&v, topics[1].topic_id), &topics[1]);

    kc_fetch_req_topic rt[4] = {0};
    rt[0].topic_id = topics[1].topic_id; /* beta */
    rt[1].topic_id.b[3] = 0x77;          /* unknown */
    rt[2].topic_id = topics[0].topic_id; /* alpha */
    /* rt[3]: the zero id, which is gamma's "no id" and must not match it */
    kc_fetch_req in = {.ntopics = 4, .topics = rt};
    uint8_t unknown[4];
    px_fetch_names_from_ids(&in, &v, unknown);
    ck_assert(kc_str_eq(rt[0].topic, "beta"));
    ck_assert(!unknown[0]);
    ck_assert(unknown[1]);
    ck_assert_int_eq(rt[1].topic.len, 0);
    ck_assert(kc_str_eq(rt[2].topic, "alpha"));
    ck_assert(!unknown[2]);
    ck_assert(unknown[3]);

    mc_view noids = {.refcnt = 1, .ntopics = 3, .topics = topics};
    ck_assert(!mc_view_has_topic_ids(&noids));
    ck_assert(!mc_view_has_topic_ids(NULL));
    px_fetch_names_from_ids(&in, &noids, unknown);
    ck_assert(unknown[0] && unknown[2]);
}
END_TEST

/* ListGroups: groups of the brokers that answered without error, in broker
 * order, and the first broker's error. */
START_TEST(test_listgroups_merge)
{
    kc_listgroups_group g1[2] = {{.group_id = kc_str_c("a")}, {.group_id = kc_str_c("b")}};
    kc_listgroups_group g3[1] = {{.group_id = kc_str_c("c")}};
    kc_listgroups_group gx[1] = {{.group_id = kc_str_c("x")}};
    kc_listgroups_resp r1 = {.throttle_time_ms = 5, .ngroups = 2, .groups = g1};
    kc_listgroups_resp r3 = {.ngroups = 1, .groups = g3};
    kc_listgroups_resp loading = {.error_code = 14, .ngroups = 1, .groups = gx};
    kc_arena a;
    kc_arena_init(&a);
    kc_listgroups_resp out;

    const kc_listgroups_resp *all_ok[2] = {&r1, &r3};
    ck_assert_int_eq(px_listgroups_merge(&a, all_ok, 2, &out), 0);
    ck_assert_int_eq(out.error_code, 0);
    ck_assert_int_eq(out.throttle_time_ms, 5);
    ck_assert_int_eq(out.ngroups, 3);
    ck_assert(kc_str_eq(out.groups[0].group_id, "a"));
    ck_assert(kc_str_eq(out.groups[2].group_id, "c"));

    /* A broker that did not answer counts as COORDINATOR_NOT_AVAILABLE. */
    const kc_listgroups_resp *gone[3] = {&r1, NULL, &loading};
    ck_assert_int_eq(px_listgroups_merge(&a, gone, 3, &out), 0);
    ck_assert_int_eq(out.error_code, 15);
    ck_assert_int_eq(out.ngroups, 2);

    /* The first error wins; an erring broker's groups are not listed. */
    const kc_listgroups_resp *first[3] = {&loading, &r3, NULL};
    ck_assert_int_eq(px_listgroups_merge(&a, first, 3, &out), 0);
    ck_assert_int_eq(out.error_code, 14);
    ck_assert_int_eq(out.ngroups, 1);
    ck_assert(kc_str_eq(out.groups[0].group_id, "c"));

    ck_assert_int_eq(px_listgroups_merge(&a, NULL, 0, &out), 0);
    ck_assert_int_eq(out.error_code, 0);
    ck_assert_int_eq(out.ngroups, 0);
    kc_arena_destroy(&a);
}
END_TEST

/* A request's callback that frees its own connection (a client closed while
 * its broker connection fails) must not leave mc_conn reading freed memory;
 * the sanitizer build and valgrind see it if it does. */
struct free_in_cb {
    mc_conn *conn;
    int calls;
    evutil_socket_t accepted;
};

static void free_in_cb_fn(kc_frame *resp, const char *err, void *arg)
{
    struct free_in_cb *t = arg;
    ck_assert_ptr_null(resp);
    ck_assert_ptr_nonnull(err);
    if (t->calls++ == 0)
        mc_conn_free(t->conn); /* the second request fails inside this call */
}

static void free_in_cb_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int n,
                              void *arg)
{
    (void)l;
    (void)sa;
    (void)n;
    ((struct free_in_cb *)arg)->accepted = fd;
}

START_TEST(test_conn_freed_in_callback)
{
    struct event_base *base = event_base_new();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct free_in_cb t = {.accepted = -1};
    struct evconnlistener *l = evconnlistener_new_bind(base, free_in_cb_accept, &t, LEV_OPT_CLOSE_ON_FREE, 8,
                                                       (struct sockaddr *)&sin, sizeof(sin));
    ck_assert_ptr_nonnull(l);
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &len), 0);
    mc_conn_config cfg = {.max_inflight = 1, .request_timeout_ms = 5000, .max_response_bytes = 1 << 20,
                          .reconnect_backoff_ms = 100, .quiet = 1};
    t.conn = mc_conn_new(base, NULL, "127.0.0.1", ntohs(sin.sin_port), 1, &cfg, NULL);
    ck_assert_ptr_nonnull(t.conn);
    for (int i = 0; i < 2; i++) {
        struct evbuffer *body = evbuffer_new();
        evbuffer_add(body, "\0\0\0\0", 4);
        ck_assert_int_eq(mc_conn_request(t.conn, KC_API_METADATA, 1, kc_str_c("t"), body, 1, 0, free_in_cb_fn,
                                         &t),
                         0);
        evbuffer_free(body);
    }
    /* Accept, let the first request go out, then close: the broker went
     * away with one request on the wire and one waiting. */
    for (int i = 0; i < 200 && t.accepted < 0; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ck_assert_int_ge(t.accepted, 0);
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    evutil_closesocket(t.accepted);
    for (int i = 0; i < 500 && t.calls < 2; i++)
        event_base_loop(base, EVLOOP_ONCE);
    ck_assert_int_eq(t.calls, 2);
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK); /* runs the deferred free */
    evconnlistener_free(l);
    event_base_free(base);
}
END_TEST

/* A broker (or peer) whose response's size prefix claims 400 MiB and which
 * then stalls: mc_conn must not reserve the 400 MiB on its word (the address
 * space, VmSize, is what shows a reservation: untouched pages add no RSS),
 * and the request must fail at its deadline. A size over
 * max_response_bytes fails at once, naming the broker and the limit. */
struct claim {
    evutil_socket_t accepted;
    int calls;
    char err[300];
    struct timespec done;
};

static void claim_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int n, void *arg)
{
    (void)l;
    (void)sa;
    (void)n;
    ((struct claim *)arg)->accepted = fd;
}

static void claim_fn(kc_frame *resp, const char *err, void *arg)
{
    struct claim *t = arg;
    ck_assert_ptr_null(resp);
    ck_assert_ptr_nonnull(err);
    snprintf(t->err, sizeof(t->err), "%s", err);
    clock_gettime(CLOCK_MONOTONIC, &t->done);
    t->calls++;
}

static long proc_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static double ms_since(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Send one request on a fresh connection whose broker answers with head
 * (then stalls); run the loop until the request fails. */
static void claim_run(uint32_t claimed, size_t max_response, int timeout_ms, struct claim *t, long *vm_grew_kib,
                      long *rss_grew_kib, double *failed_after_ms, int *port)
{
    struct event_base *base = event_base_new();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    memset(t, 0, sizeof(*t));
    t->accepted = -1;
    struct evconnlistener *l = evconnlistener_new_bind(base, claim_accept, t, LEV_OPT_CLOSE_ON_FREE, 8,
                                                       (struct sockaddr *)&sin, sizeof(sin));
    ck_assert_ptr_nonnull(l);
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    mc_conn_config cfg = {.max_inflight = 4, .request_timeout_ms = timeout_ms, .max_response_bytes = max_response,
                          .reconnect_backoff_ms = 100, .quiet = 1};
    mc_conn *c = mc_conn_new(base, NULL, "127.0.0.1", *port, 1, &cfg, NULL);
    ck_assert_ptr_nonnull(c);
    long vm0 = proc_status_kib("VmSize"), rss0 = proc_status_kib("VmRSS");
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, "\0\0\0\0", 4);
    ck_assert_int_eq(mc_conn_request(c, KC_API_METADATA, 1, kc_str_c("t"), body, 1, 0, claim_fn, t), 0);
    evbuffer_free(body);
    for (int i = 0; i < 200 && t->accepted < 0; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ck_assert_int_ge(t->accepted, 0);
    /* The size, the correlation id (1) and a few bytes of body, then nothing. */
    uint8_t head[12] = {(uint8_t)(claimed >> 24), (uint8_t)(claimed >> 16), (uint8_t)(claimed >> 8),
                        (uint8_t)claimed, 0, 0, 0, 1, 'a', 'b', 'c', 'd'};
    ck_assert_int_eq(send(t->accepted, head, sizeof(head), 0), (ssize_t)sizeof(head));
    for (int i = 0; i < 50 && t->calls == 0; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    *vm_grew_kib = proc_status_kib("VmSize") - vm0;
    *rss_grew_kib = proc_status_kib("VmRSS") - rss0;
    for (int i = 0; i < 1000 && t->calls == 0; i++)
        event_base_loop(base, EVLOOP_ONCE);
    ck_assert_int_eq(t->calls, 1);
    *failed_after_ms = ms_since(&start, &t->done);
    mc_conn_free(c);
    evutil_closesocket(t->accepted);
    evconnlistener_free(l);
    event_base_free(base);
}

START_TEST(test_conn_claimed_size_stall)
{
    struct claim t;
    long vm, rss;
    double after;
    int port;
    claim_run(400u << 20, (size_t)512 << 20, 600, &t, &vm, &rss, &after, &port);
    ck_assert_msg(vm < 16 * 1024, "a 400 MiB claim grew the address space by %ld KiB", vm);
    ck_assert_msg(rss < 16 * 1024, "a 400 MiB claim grew the RSS by %ld KiB", rss);
    ck_assert_msg(strstr(t.err, "timed out") != NULL, "failed with \"%s\"", t.err);
    ck_assert_msg(after >= 600, "failed after %.0f ms, before its 600 ms deadline", after);
}
END_TEST

START_TEST(test_conn_response_over_limit)
{
    struct claim t;
    long vm, rss;
    double after;
    int port;
    claim_run((1u << 20) + 1, (size_t)1 << 20, 5000, &t, &vm, &rss, &after, &port);
    char want[64];
    snprintf(want, sizeof(want), "broker 1 (127.0.0.1:%d)", port);
    ck_assert_msg(strstr(t.err, want) != NULL, "\"%s\" does not name the broker", t.err);
    ck_assert_msg(strstr(t.err, "max_response_bytes") != NULL, "\"%s\" does not name the limit", t.err);
    ck_assert_msg(strstr(t.err, "1048577") != NULL, "\"%s\" does not give the size", t.err);
    ck_assert_msg(after < 2000, "failed after %.0f ms, not at once", after);
}
END_TEST

/* A record batch v2 header of an idempotent producer (or pid -1). */
static kc_bytes seq_batch(uint8_t *b, int64_t pid, int16_t epoch, int32_t seq)
{
    memset(b, 0, 61);
    b[16] = 2;
    for (int i = 0; i < 8; i++)
        b[43 + i] = (uint8_t)((uint64_t)pid >> (56 - 8 * i));
    b[51] = (uint8_t)((uint16_t)epoch >> 8);
    b[52] = (uint8_t)epoch;
    for (int i = 0; i < 4; i++)
        b[53 + i] = (uint8_t)((uint32_t)seq >> (24 - 8 * i));
    return (kc_bytes){b, 61};
}

/* rt_seq: the sequence hold the router and the direct path share. */
START_TEST(test_seq_hold)
{
    uint8_t b[61];
    rt_seqmark m = {0};
    /* Only an idempotent producer's batch, failed retriably, is marked. */
    ck_assert_int_eq(rt_seq_markable(seq_batch(b, -1, 0, -1), 6), 0);
    ck_assert_int_eq(rt_seq_markable(seq_batch(b, 7, 0, 10), 87), 0); /* INVALID_RECORD: not retried */
    ck_assert_int_eq(rt_seq_markable(seq_batch(b, 7, 0, 10), 6), 1);  /* NOT_LEADER_OR_FOLLOWER */
    ck_assert_int_eq(rt_seq_markable((kc_bytes){b, 60}, 6), 0);
    ck_assert_int_eq(rt_seq_hold(&m, seq_batch(b, 7, 0, 15), 1000), 0); /* nothing marked */
    rt_seq_failed(&m, seq_batch(b, 7, 0, 10), 1000);
    ck_assert_int_eq(m.set, 1);
    /* A later failure of the same session keeps the earliest sequence. */
    rt_seq_failed(&m, seq_batch(b, 7, 0, 15), 1500);
    ck_assert_int_eq(m.seq, 10);
    ck_assert_int_eq(m.until_ms, 1500 + RT_SEQ_HOLD_MS);
    /* Later sequences wait; a producer without an id never does. */
    ck_assert_int_eq(rt_seq_hold(&m, seq_batch(b, 7, 0, 20), 1600), 1);
    ck_assert_int_eq(rt_seq_hold(&m, seq_batch(b, -1, 0, -1), 1600), 0);
    ck_assert_int_eq(m.set, 1);
    /* The retry itself goes and clears the mark. */
    ck_assert_int_eq(rt_seq_hold(&m, seq_batch(b, 7, 0, 10), 1700), 0);
    ck_assert_int_eq(m.set, 0);
    ck_assert_int_eq(rt_seq_hold(&m, seq_batch(b, 7, 0, 20), 1700), 0);
    /* Another session (epoch) or the deadline clears it too. */
    rt_seq_failed(&m, seq_batch(b, 7, 0, 30), 2000);
    ck_assert_int_eq(rt_seq_hold(&m, seq_batch(b, 7, 1, 0), 2100), 0);
    ck_assert_int_eq(m.set, 0);
    rt_seq_failed(&m, seq_batch(b, 7, 0, 30), 2000);
    ck_assert_int_eq(rt_seq_hold(&m, seq_batch(b, 7, 0, 31), 2000 + RT_SEQ_HOLD_MS), 1);
    ck_assert_int_eq(rt_seq_hold(&m, seq_batch(b, 7, 0, 31), 2001 + RT_SEQ_HOLD_MS), 0);
    ck_assert_int_eq(m.set, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("pieces");
    tcase_add_test(tc, test_zone_keys);
    tcase_add_test(tc, test_map_broker_deterministic);
    tcase_add_test(tc, test_hostport);
    tcase_add_test(tc, test_cidr_map);
    tcase_add_test(tc, test_wal_unsigned_payload);
    tcase_add_test(tc, test_fetch_from_follower_config);
    tcase_add_test(tc, test_fetch_rewrite_tags);
    tcase_add_test(tc, test_fetch_names_from_ids);
    tcase_add_test(tc, test_listgroups_merge);
    tcase_add_test(tc, test_conn_freed_in_callback);
    tcase_add_test(tc, test_conn_claimed_size_stall);
    tcase_add_test(tc, test_conn_response_over_limit);
    tcase_add_test(tc, test_seq_hold);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
