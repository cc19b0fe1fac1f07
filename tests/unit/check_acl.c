/*
 * kz_acl (common/kz_acl.c) and the "acls" config section
 * (proxy/px_config_acl.c): matching by literal name, prefix and "*", deny
 * wins, anonymous and any-authenticated principals, no ACLs = allow all,
 * and the parser's errors naming the rule.
 */
#include "config.h"

#include "common/kz_acl.h"
#include "proxy/px_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static int allows(const kz_acl *a, const char *who, kz_acl_op op, kz_acl_res res, const char *name)
{
    return kz_acl_allows(a, who, op, res, name, name ? strlen(name) : 0);
}

static void add(kz_acl *a, kz_acl_who who, const char *principal, int deny, unsigned ops, kz_acl_res res,
                kz_acl_pattern pat, const char *name)
{
    kz_acl_rule_spec r = {who, principal, deny, ops, res, pat, name};
    ck_assert_int_eq(kz_acl_add(a, &r), 0);
}

#define OP(o) (1u << (o))

START_TEST(test_null_allows_all)
{
    ck_assert_int_eq(allows(NULL, NULL, KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "t"), 1);
    ck_assert_int_eq(allows(NULL, "u", KZ_ACL_ALTER, KZ_ACL_CLUSTER, NULL), 1);
    kz_acl_free(NULL);
}
END_TEST

START_TEST(test_empty_denies_all)
{
    kz_acl *a = kz_acl_new();
    ck_assert_int_eq(allows(a, "u", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "t"), 0); /* not frozen: deny */
    ck_assert_int_eq(kz_acl_freeze(a), 0);
    ck_assert_int_eq(allows(a, "u", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "t"), 0);
    ck_assert_int_eq(allows(a, NULL, KZ_ACL_DESCRIBE, KZ_ACL_CLUSTER, NULL), 0);
    kz_acl_free(a);
}
END_TEST

START_TEST(test_literal_prefix_wildcard)
{
    kz_acl *a = kz_acl_new();
    add(a, KZ_ACL_WHO_NAME, "alice", 0, OP(KZ_ACL_PRODUCE) | OP(KZ_ACL_DESCRIBE), KZ_ACL_TOPIC, KZ_ACL_PREFIX,
        "app-a.");
    add(a, KZ_ACL_WHO_NAME, "alice", 0, OP(KZ_ACL_CONSUME), KZ_ACL_GROUP, KZ_ACL_LITERAL, "ga");
    add(a, KZ_ACL_WHO_NAME, "bob", 0, KZ_ACL_OPS_ALL, KZ_ACL_TOPIC, KZ_ACL_LITERAL, "*");
    add(a, KZ_ACL_WHO_NAME, "carol", 0, OP(KZ_ACL_ALTER), KZ_ACL_CLUSTER, KZ_ACL_LITERAL, NULL);
    ck_assert_int_eq(kz_acl_freeze(a), 0);
    ck_assert_int_eq(kz_acl_count(a), 4);
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "app-a.orders"), 1);
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "app-a."), 1);
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "app-a"), 0);
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "app-b.orders"), 0);
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_CONSUME, KZ_ACL_TOPIC, "app-a.orders"), 0); /* op not granted */
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_PRODUCE, KZ_ACL_GROUP, "app-a.x"), 0);      /* other kind */
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_CONSUME, KZ_ACL_GROUP, "ga"), 1);
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_CONSUME, KZ_ACL_GROUP, "gab"), 0);          /* literal */
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_CONSUME, KZ_ACL_GROUP, "g"), 0);
    ck_assert_int_eq(allows(a, "bob", KZ_ACL_DELETE, KZ_ACL_TOPIC, "anything"), 1);
    ck_assert_int_eq(allows(a, "bob", KZ_ACL_DELETE, KZ_ACL_GROUP, "anything"), 0);
    ck_assert_int_eq(allows(a, "carol", KZ_ACL_ALTER, KZ_ACL_CLUSTER, NULL), 1);
    ck_assert_int_eq(allows(a, "carol", KZ_ACL_CREATE, KZ_ACL_CLUSTER, NULL), 0);
    ck_assert_int_eq(allows(a, "alicia", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "app-a.orders"), 0); /* exact principal */
    ck_assert_int_eq(allows(a, "alic", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "app-a.orders"), 0);
    ck_assert_int_eq(allows(a, NULL, KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "app-a.orders"), 0);
    /* The name is a length, not a C string. */
    ck_assert_int_eq(kz_acl_allows(a, "alice", KZ_ACL_CONSUME, KZ_ACL_GROUP, "gaXX", 2), 1);
    kz_acl_free(a);
}
END_TEST

START_TEST(test_deny_wins)
{
    kz_acl *a = kz_acl_new();
    add(a, KZ_ACL_WHO_NAME, "alice", 0, KZ_ACL_OPS_ALL, KZ_ACL_TOPIC, KZ_ACL_LITERAL, "*");
    add(a, KZ_ACL_WHO_NAME, "alice", 1, OP(KZ_ACL_PRODUCE), KZ_ACL_TOPIC, KZ_ACL_PREFIX, "secret.");
    add(a, KZ_ACL_WHO_ANY, NULL, 1, OP(KZ_ACL_DELETE), KZ_ACL_TOPIC, KZ_ACL_LITERAL, "*");
    /* an allow added after the deny still loses */
    add(a, KZ_ACL_WHO_NAME, "alice", 0, OP(KZ_ACL_PRODUCE), KZ_ACL_TOPIC, KZ_ACL_LITERAL, "secret.x");
    ck_assert_int_eq(kz_acl_freeze(a), 0);
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "public"), 1);
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "secret.x"), 0);
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_CONSUME, KZ_ACL_TOPIC, "secret.x"), 1);
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_DELETE, KZ_ACL_TOPIC, "public"), 0); /* the "*" deny */
    ck_assert_int_eq(allows(a, "dave", KZ_ACL_DELETE, KZ_ACL_TOPIC, "public"), 0);
    kz_acl_free(a);
}
END_TEST

START_TEST(test_anonymous_and_any)
{
    kz_acl *a = kz_acl_new();
    add(a, KZ_ACL_WHO_ANY, NULL, 0, OP(KZ_ACL_DESCRIBE), KZ_ACL_TOPIC, KZ_ACL_LITERAL, "*");
    add(a, KZ_ACL_WHO_ANONYMOUS, NULL, 0, OP(KZ_ACL_CONSUME), KZ_ACL_TOPIC, KZ_ACL_PREFIX, "public.");
    add(a, KZ_ACL_WHO_NAME, "alice", 0, OP(KZ_ACL_PRODUCE), KZ_ACL_TOPIC, KZ_ACL_LITERAL, "t");
    ck_assert_int_eq(kz_acl_freeze(a), 0);
    /* "*": every authenticated principal, named in a rule or not */
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_DESCRIBE, KZ_ACL_TOPIC, "x"), 1);
    ck_assert_int_eq(allows(a, "zed", KZ_ACL_DESCRIBE, KZ_ACL_TOPIC, "x"), 1);
    ck_assert_int_eq(allows(a, NULL, KZ_ACL_DESCRIBE, KZ_ACL_TOPIC, "x"), 0); /* not anonymous */
    ck_assert_int_eq(allows(a, NULL, KZ_ACL_CONSUME, KZ_ACL_TOPIC, "public.news"), 1);
    ck_assert_int_eq(allows(a, "zed", KZ_ACL_CONSUME, KZ_ACL_TOPIC, "public.news"), 0); /* anonymous only */
    ck_assert_int_eq(allows(a, "alice", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "t"), 1);
    ck_assert_int_eq(allows(a, "zed", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "t"), 0);
    kz_acl_free(a);
}
END_TEST

START_TEST(test_many_principals)
{
    kz_acl *a = kz_acl_new();
    char name[32], topic[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "user%03d", (i * 37) % 200);
        snprintf(topic, sizeof(topic), "t%03d.", (i * 37) % 200);
        add(a, KZ_ACL_WHO_NAME, name, 0, OP(KZ_ACL_PRODUCE), KZ_ACL_TOPIC, KZ_ACL_PREFIX, topic);
    }
    ck_assert_int_eq(kz_acl_freeze(a), 0);
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "user%03d", i);
        snprintf(topic, sizeof(topic), "t%03d.x", i);
        ck_assert_int_eq(allows(a, name, KZ_ACL_PRODUCE, KZ_ACL_TOPIC, topic), 1);
        snprintf(topic, sizeof(topic), "t%03d.x", (i + 1) % 200);
        ck_assert_int_eq(allows(a, name, KZ_ACL_PRODUCE, KZ_ACL_TOPIC, topic), 0);
    }
    kz_acl_free(a);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_int_eq(kz_acl_op_parse("produce"), KZ_ACL_PRODUCE);
    ck_assert_int_eq(kz_acl_op_parse("alter"), KZ_ACL_ALTER);
    ck_assert_int_eq(kz_acl_op_parse("all"), -2);
    ck_assert_int_eq(kz_acl_op_parse("write"), -1);
    ck_assert_int_eq(kz_acl_res_parse("transactional_id"), KZ_ACL_TRANSACTIONAL_ID);
    ck_assert_int_eq(kz_acl_res_parse("broker"), -1);
    ck_assert_int_eq(kz_acl_pattern_parse("prefix"), KZ_ACL_PREFIX);
    ck_assert_int_eq(kz_acl_pattern_parse("prefixed"), -1);
    ck_assert_str_eq(kz_acl_op_name(KZ_ACL_CONSUME), "consume");
    ck_assert_str_eq(kz_acl_res_name(KZ_ACL_CLUSTER), "cluster");
}
END_TEST

/* ---- the config section ---- */

#define BASE "{\"node_id\":1,\"zone\":\"a\",\"listen\":\"127.0.0.1:9092\",\"bootstrap_servers\":[\"127.0.0.1:1\"],"

static int parse(const char *acls, px_config *cfg, char *err, size_t n)
{
    char json[4096];
    snprintf(json, sizeof(json), BASE "\"acls\": %s}", acls);
    return px_config_parse(json, cfg, err, n);
}

START_TEST(test_config_ok)
{
    px_config cfg;
    char err[512];
    int rc = parse("[{\"principal\": \"alice\", \"operations\": [\"produce\", \"describe\"],"
                   "  \"resources\": [{\"type\": \"topic\", \"name\": \"app-a.\", \"pattern\": \"prefix\"},"
                   "                  {\"type\": \"group\", \"name\": \"ga\"}]},"
                   " {\"principal\": \"alice\", \"effect\": \"deny\", \"operations\": [\"all\"],"
                   "  \"resources\": [{\"type\": \"topic\", \"name\": \"app-a.secret\"}]},"
                   " {\"anonymous\": true, \"operations\": [\"describe\"], \"resources\": [{\"type\": \"cluster\"}]},"
                   " {\"principal\": \"*\", \"operations\": [\"consume\"],"
                   "  \"resources\": [{\"type\": \"transactional_id\", \"name\": \"*\"}]}]",
                   &cfg, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_ptr_nonnull(cfg.acl);
    ck_assert_int_eq(kz_acl_count(cfg.acl), 5);
    ck_assert_int_eq(allows(cfg.acl, "alice", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "app-a.x"), 1);
    ck_assert_int_eq(allows(cfg.acl, "alice", KZ_ACL_DESCRIBE, KZ_ACL_GROUP, "ga"), 1);
    ck_assert_int_eq(allows(cfg.acl, "alice", KZ_ACL_PRODUCE, KZ_ACL_TOPIC, "app-a.secret"), 0);
    ck_assert_int_eq(allows(cfg.acl, NULL, KZ_ACL_DESCRIBE, KZ_ACL_CLUSTER, NULL), 1);
    ck_assert_int_eq(allows(cfg.acl, "bob", KZ_ACL_CONSUME, KZ_ACL_TRANSACTIONAL_ID, "tx"), 1);
    px_config_free(&cfg);

    /* No "acls": no rule set, everything allowed. */
    ck_assert_int_eq(px_config_parse(BASE "\"log_level\":\"info\"}", &cfg, err, sizeof(err)), 0);
    ck_assert_ptr_null(cfg.acl);
    px_config_free(&cfg);

    /* "acls": [] is a rule set that allows nothing. */
    ck_assert_int_eq(parse("[]", &cfg, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(cfg.acl);
    ck_assert_int_eq(allows(cfg.acl, "alice", KZ_ACL_DESCRIBE, KZ_ACL_TOPIC, "t"), 0);
    px_config_free(&cfg);
}
END_TEST

START_TEST(test_config_file)
{
    char path[] = "/tmp/kz_acl_testXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *rules = "{\"rules\": [{\"principal\": \"bob\", \"operations\": [\"consume\"],"
                        " \"resources\": [{\"type\": \"topic\", \"name\": \"app-b.\", \"pattern\": \"prefix\"}]}]}";
    ck_assert_int_eq(write(fd, rules, strlen(rules)), (ssize_t)strlen(rules));
    close(fd);
    px_config cfg;
    char err[512], acls[512];
    snprintf(acls, sizeof(acls),
             "{\"file\": \"%s\", \"rules\": [{\"principal\": \"alice\", \"operations\": [\"all\"],"
             " \"resources\": [{\"type\": \"cluster\"}]}]}", path);
    ck_assert_msg(parse(acls, &cfg, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(allows(cfg.acl, "bob", KZ_ACL_CONSUME, KZ_ACL_TOPIC, "app-b.1"), 1);
    ck_assert_int_eq(allows(cfg.acl, "alice", KZ_ACL_CREATE, KZ_ACL_CLUSTER, NULL), 1);
    ck_assert_int_eq(allows(cfg.acl, "alice", KZ_ACL_CONSUME, KZ_ACL_TOPIC, "app-b.1"), 0);
    px_config_free(&cfg);

    /* A bad rule in the file names the file and the rule. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    rules = "[{\"principal\": \"bob\", \"operations\": [\"consume\", \"reed\"], \"resources\": [{\"type\": \"cluster\"}]}]";
    ck_assert_int_eq(write(fd, rules, strlen(rules)), (ssize_t)strlen(rules));
    close(fd);
    snprintf(acls, sizeof(acls), "{\"file\": \"%s\"}", path);
    ck_assert_int_eq(parse(acls, &cfg, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, path) && strstr(err, "rules[0].operations[1]: unknown operation \"reed\""), "%s", err);
    ck_assert_ptr_null(cfg.acl);
    px_config_free(&cfg);
    unlink(path);
    ck_assert_int_eq(parse(acls, &cfg, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "acls.file") != NULL, "%s", err);
    px_config_free(&cfg);
}
END_TEST

START_TEST(test_config_errors)
{
    static const struct {
        const char *acls, *want;
    } cases[] = {
        {"[{\"principal\": \"a\", \"operations\": [\"produce\"], \"resources\": [{\"type\": \"topic\", \"name\": \"t\"}]},"
         " {\"principal\": \"a\", \"operations\": [\"all\"], \"resources\": [{\"type\": \"cluster\"}]},"
         " {\"principal\": \"a\", \"operations\": [\"produce\", \"wrte\"], \"resources\": [{\"type\": \"cluster\"}]}]",
         "acls[2].operations[1]: unknown operation \"wrte\"; one of produce, consume, describe, create, delete, alter, all"},
        {"[{\"principal\": \"a\", \"operations\": [\"produce\"], \"resources\": [{\"type\": \"topics\", \"name\": \"t\"}]}]",
         "acls[0].resources[0].type: unknown resource type \"topics\"; one of topic, group, transactional_id, cluster"},
        {"[{\"principal\": \"a\", \"operations\": [\"produce\"],"
         " \"resources\": [{\"type\": \"topic\", \"name\": \"t\", \"pattern\": \"prefixed\"}]}]",
         "acls[0].resources[0].pattern: unknown pattern \"prefixed\"; one of literal, prefix"},
        {"[{\"principal\": \"a\", \"effect\": \"permit\", \"operations\": [\"produce\"], \"resources\": [{\"type\": \"cluster\"}]}]",
         "acls[0].effect: unknown effect \"permit\""},
        {"[{\"operations\": [\"produce\"], \"resources\": [{\"type\": \"cluster\"}]}]", "acls[0].principal: missing"},
        {"[{\"principal\": \"a\", \"anonymous\": true, \"operations\": [\"produce\"], \"resources\": [{\"type\": \"cluster\"}]}]",
         "acls[0]: give either principal or \"anonymous\": true"},
        {"[{\"principal\": \"a\", \"operations\": [], \"resources\": [{\"type\": \"cluster\"}]}]",
         "acls[0].operations: expected a non-empty array"},
        {"[{\"principal\": \"a\", \"operations\": [\"produce\"]}]", "acls[0].resources: expected a non-empty array"},
        {"[{\"principal\": \"a\", \"operations\": [\"produce\"], \"resources\": [{\"type\": \"topic\"}]}]",
         "acls[0].resources[0].name: missing"},
        {"[{\"principal\": \"a\", \"operations\": [\"produce\"], \"resources\": [{\"type\": \"cluster\", \"name\": \"x\"}]}]",
         "acls[0].resources[0]: a cluster resource takes no name"},
        {"[{\"principal\": \"a\", \"operation\": [\"produce\"], \"resources\": [{\"type\": \"cluster\"}]}]",
         "acls[0].operation: unknown key"},
        {"[{\"principal\": \"\", \"operations\": [\"produce\"], \"resources\": [{\"type\": \"cluster\"}]}]",
         "acls[0].principal: expected a non-empty string"},
        {"{\"rules\": [], \"files\": \"x\"}", "acls.files: unknown key"},
        {"{}", "acls: give rules, file or both"},
        {"\"alice\"", "acls: expected an array of rules"},
        {"{\"rules\": [1]}", "acls.rules[0]: expected an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        px_config cfg;
        char err[512] = "";
        ck_assert_msg(parse(cases[i].acls, &cfg, err, sizeof(err)) == -1, "case %zu parsed", i);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
        ck_assert_ptr_null(cfg.acl);
        px_config_free(&cfg);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("acl");
    TCase *tc = tcase_create("match");
    tcase_add_test(tc, test_null_allows_all);
    tcase_add_test(tc, test_empty_denies_all);
    tcase_add_test(tc, test_literal_prefix_wildcard);
    tcase_add_test(tc, test_deny_wins);
    tcase_add_test(tc, test_anonymous_and_any);
    tcase_add_test(tc, test_many_principals);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("config");
    tcase_add_test(tc, test_config_ok);
    tcase_add_test(tc, test_config_file);
    tcase_add_test(tc, test_config_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
