/* Unit tests for the proxy's pure pieces: client zones, the broker->proxy
 * mapping, addresses, the CIDR map. */
#include "config.h"

#include "common/kz_addr.h"
#include "proxy/px_proxy.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("pieces");
    tcase_add_test(tc, test_zone_keys);
    tcase_add_test(tc, test_map_broker_deterministic);
    tcase_add_test(tc, test_hostport);
    tcase_add_test(tc, test_cidr_map);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
