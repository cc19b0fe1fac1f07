/*
 * kz_acl (common/kz_acl.c) and the "acls" config section
 * (proxy/px_config_acl.c): matching by literal name, prefix and "*", deny
 * wins, anonymous and any-authenticated principals, no ACLs = allow all,
 * and the parser's errors naming the rule. The decisions on requests
 * (proxy/px_acl_pass.c, px_acl_split.c, px_route_listgroups.c) driven
 * through a real rule set: Metadata's auto-creation, ListGroups' filter, the
 * topics of TxnOffsetCommit, OffsetDelete and ConsumerGroupHeartbeat, a
 * null transactional id.
 */
#include "config.h"

#include "codec/kc_proto.h"
#include "common/kz_acl.h"
#include "proxy/px_acl.h"
#include "proxy/px_config.h"
#include "proxy/px_proxy.h"

#include <check.h>
#include <event2/buffer.h>
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

/* ---------------- decisions on requests, through a real rule set ---------------- */

typedef struct dec_ctx {
    const kz_acl *acl;
    const char *who;
    int checked_denied; /* refusals counted by check */
} dec_ctx;

static int dec_allowed(void *arg, kz_acl_op op, kz_acl_res res, kc_str name)
{
    dec_ctx *d = arg;
    return kz_acl_allows(d->acl, d->who, op, res, name.p, name.len > 0 ? (size_t)name.len : 0);
}

static int dec_check(void *arg, kz_acl_op op, kz_acl_res res, kc_str name)
{
    int ok = dec_allowed(arg, op, res, name);
    ((dec_ctx *)arg)->checked_denied += !ok;
    return ok;
}

/* alice: everything on topics app-a.*, describe only on ro-a.*, consume
 * describe and delete group ga, produce transactional id tx-a; bob: create and
 * describe on the cluster, describe every topic; carol: nothing. */
static kz_acl *dec_rules(void)
{
    kz_acl *a = kz_acl_new();
    add(a, KZ_ACL_WHO_NAME, "alice", 0, KZ_ACL_OPS_ALL, KZ_ACL_TOPIC, KZ_ACL_PREFIX, "app-a.");
    add(a, KZ_ACL_WHO_NAME, "alice", 0, OP(KZ_ACL_DESCRIBE), KZ_ACL_TOPIC, KZ_ACL_PREFIX, "ro-a.");
    add(a, KZ_ACL_WHO_NAME, "alice", 0, OP(KZ_ACL_CONSUME) | OP(KZ_ACL_DESCRIBE) | OP(KZ_ACL_DELETE), KZ_ACL_GROUP,
        KZ_ACL_LITERAL, "ga");
    add(a, KZ_ACL_WHO_NAME, "alice", 0, OP(KZ_ACL_PRODUCE), KZ_ACL_TRANSACTIONAL_ID, KZ_ACL_LITERAL, "tx-a");
    add(a, KZ_ACL_WHO_NAME, "bob", 0, OP(KZ_ACL_CREATE) | OP(KZ_ACL_DESCRIBE), KZ_ACL_CLUSTER, KZ_ACL_LITERAL, NULL);
    add(a, KZ_ACL_WHO_NAME, "bob", 0, OP(KZ_ACL_DESCRIBE), KZ_ACL_TOPIC, KZ_ACL_LITERAL, "*");
    ck_assert_int_eq(kz_acl_freeze(a), 0);
    return a;
}

static int same(kc_str s, const char *c)
{
    return s.len == (int32_t)strlen(c) && memcmp(s.p, c, strlen(c)) == 0;
}

START_TEST(test_metadata_autocreate)
{
    kz_acl *a = dec_rules();
    dec_ctx d = {a, "alice", 0};
    px_acl_pass_ctx ctx = {dec_check, dec_allowed, &d};
    kc_str names[4] = {kc_str_c("app-a.new"), kc_str_c("ro-a.new"), kc_str_c("app-b.x"), kc_str_c("ro-a.old")};
    kc_str create[4], lookup[4];
    int nc, nl;
    /* describe-only topics are looked up, never created; undescribable ones neither */
    px_acl_metadata_split(&ctx, names, 4, 1, create, &nc, lookup, &nl);
    ck_assert_int_eq(nc, 1);
    ck_assert(same(create[0], "app-a.new"));
    ck_assert_int_eq(nl, 2);
    ck_assert(same(lookup[0], "ro-a.new") && same(lookup[1], "ro-a.old"));
    /* the client did not ask for creation: nothing is created */
    px_acl_metadata_split(&ctx, names, 4, 0, create, &nc, lookup, &nl);
    ck_assert_int_eq(nc, 0);
    ck_assert_int_eq(nl, 3);
    /* create on the cluster covers every topic */
    d.who = "bob";
    px_acl_metadata_split(&ctx, names, 4, 1, create, &nc, lookup, &nl);
    ck_assert_int_eq(nc, 4);
    ck_assert_int_eq(nl, 0);
    /* nothing allowed: nothing asked */
    d.who = "carol";
    px_acl_metadata_split(&ctx, names, 4, 1, create, &nc, lookup, &nl);
    ck_assert_int_eq(nc + nl, 0);
    ck_assert_int_eq(d.checked_denied, 0); /* not counted */
    kz_acl_free(a);
}
END_TEST

START_TEST(test_listgroups_filter)
{
    kz_acl *a = dec_rules();
    dec_ctx d = {a, "alice", 0};
    px_acl_pass_ctx ctx = {dec_check, dec_allowed, &d};
    kc_listgroups_group g[3] = {{.group_id = kc_str_c("gb")}, {.group_id = kc_str_c("ga")},
                                {.group_id = kc_str_c("gc")}};
    kc_listgroups_resp r = {.ngroups = 3, .groups = g};
    ck_assert_int_eq(px_listgroups_filter(&r, &ctx), 2);
    ck_assert_int_eq(r.ngroups, 1);
    ck_assert(same(r.groups[0].group_id, "ga"));
    kc_listgroups_group g2[2] = {{.group_id = kc_str_c("gb")}, {.group_id = kc_str_c("ga")}};
    kc_listgroups_resp r2 = {.ngroups = 2, .groups = g2};
    d.who = "bob"; /* describe on the cluster: every group */
    ck_assert_int_eq(px_listgroups_filter(&r2, &ctx), 0);
    ck_assert_int_eq(r2.ngroups, 2);
    d.who = NULL; /* anonymous: none */
    ck_assert_int_eq(px_listgroups_filter(&r2, &ctx), 2);
    ck_assert_int_eq(r2.ngroups, 0);
    ck_assert_int_eq(d.checked_denied, 0);
    kz_acl_free(a);
}
END_TEST

/* The bytes written to eb, copied into buf (at most cap); their length. */
static size_t take(struct evbuffer *eb, uint8_t *buf, size_t cap)
{
    size_t n = evbuffer_get_length(eb);
    ck_assert(n <= cap);
    evbuffer_remove(eb, buf, n);
    return n;
}

static px_acl_verdict eval(px_acl_pass_ctx *ctx, int16_t key, int16_t v, struct evbuffer *req, struct evbuffer *out)
{
    uint8_t body[512];
    size_t n = take(req, body, sizeof(body));
    const char *why = NULL;
    size_t off = 0;
    return px_acl_pass_eval(ctx, key, v, body, n, out, &why, &off);
}

START_TEST(test_null_transactional_id)
{
    kz_acl *a = dec_rules();
    dec_ctx d = {a, "alice", 0};
    px_acl_pass_ctx ctx = {dec_check, dec_allowed, &d};
    struct evbuffer *req = evbuffer_new(), *out = evbuffer_new();
    kc_wr w;
    static const int16_t keys[] = {KC_API_ADDOFFSETSTOTXN, KC_API_ENDTXN, KC_API_INITPRODUCERID};
    for (size_t i = 0; i < 3; i++) {
        kc_wr_init(&w, req, NULL);
        kc_wr_string(&w, kc_str_c(NULL), 0); /* transactional id: null */
        if (keys[i] == KC_API_INITPRODUCERID) {
            kc_wr_i32(&w, 60000);
        } else {
            kc_wr_i64(&w, 1);
            kc_wr_i16(&w, 0);
            if (keys[i] == KC_API_ADDOFFSETSTOTXN)
                kc_wr_string(&w, kc_str_c("ga"), 0);
            else
                kc_wr_bool(&w, 1);
        }
        px_acl_verdict v = eval(&ctx, keys[i], 1, req, out);
        /* only an idempotent producer's InitProducerId goes on */
        ck_assert_int_eq(v, keys[i] == KC_API_INITPRODUCERID ? PX_ACL_FORWARD : PX_ACL_MALFORMED);
        ck_assert_int_eq(evbuffer_get_length(out), 0);
    }
    evbuffer_free(req);
    evbuffer_free(out);
    kz_acl_free(a);
}
END_TEST

/* ConsumerGroupHeartbeat v0 of group ga subscribing to topics[0..n). */
static void cgh(struct evbuffer *req, const char *const *topics, int n)
{
    kc_wr w;
    kc_wr_init(&w, req, NULL);
    kc_wr_string(&w, kc_str_c("ga"), 1);
    kc_wr_string(&w, kc_str_c(""), 1); /* member id */
    kc_wr_i32(&w, 0);
    kc_wr_string(&w, kc_str_c(NULL), 1);
    kc_wr_string(&w, kc_str_c(NULL), 1);
    kc_wr_i32(&w, 30000);
    kc_wr_arraylen(&w, n, 1);
    for (int i = 0; i < n; i++)
        kc_wr_string(&w, kc_str_c(topics[i]), 1);
    kc_wr_string(&w, kc_str_c(NULL), 1); /* server assignor */
    kc_wr_arraylen(&w, -1, 1);           /* topic partitions */
    kc_wr_tags(&w, NULL);
}

START_TEST(test_cgh_topics)
{
    kz_acl *a = dec_rules();
    dec_ctx d = {a, "alice", 0};
    px_acl_pass_ctx ctx = {dec_check, dec_allowed, &d};
    struct evbuffer *req = evbuffer_new(), *out = evbuffer_new();
    const char *own[] = {"app-a.x", "ro-a.y"}, *mixed[] = {"app-a.x", "app-b.x", "app-b.y"};
    cgh(req, own, 2);
    ck_assert_int_eq(eval(&ctx, KC_API_CONSUMERGROUPHEARTBEAT, 0, req, out), PX_ACL_FORWARD);
    cgh(req, NULL, -1); /* unchanged subscription */
    ck_assert_int_eq(eval(&ctx, KC_API_CONSUMERGROUPHEARTBEAT, 0, req, out), PX_ACL_FORWARD);
    ck_assert_int_eq(d.checked_denied, 0);
    cgh(req, mixed, 3);
    ck_assert_int_eq(eval(&ctx, KC_API_CONSUMERGROUPHEARTBEAT, 0, req, out), PX_ACL_ANSWER);
    ck_assert_int_eq(d.checked_denied, 2);
    uint8_t resp[64];
    size_t n = take(out, resp, sizeof(resp));
    ck_assert(n > 6);
    ck_assert_int_eq((resp[4] << 8) | resp[5], KC_ERR_TOPIC_AUTHORIZATION_FAILED);
    evbuffer_free(req);
    evbuffer_free(out);
    kz_acl_free(a);
}
END_TEST

/* TxnOffsetCommit v0 (tx-a, ga) or OffsetDelete v0 (ga) of partition 0 of
 * topics own and other. */
static size_t offsets_req(int16_t key, uint8_t *buf, size_t cap)
{
    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    if (key == KC_API_TXNOFFSETCOMMIT) {
        kc_wr_string(&w, kc_str_c("tx-a"), 0);
        kc_wr_string(&w, kc_str_c("ga"), 0);
        kc_wr_i64(&w, 7);
        kc_wr_i16(&w, 0);
    } else {
        kc_wr_string(&w, kc_str_c("ga"), 0);
    }
    kc_wr_arraylen(&w, 2, 0);
    const char *topics[] = {"app-a.x", "app-b.x"};
    for (int t = 0; t < 2; t++) {
        kc_wr_string(&w, kc_str_c(topics[t]), 0);
        kc_wr_arraylen(&w, 1, 0);
        kc_wr_i32(&w, 0);
        if (key == KC_API_TXNOFFSETCOMMIT) {
            kc_wr_i64(&w, 5);
            kc_wr_string(&w, kc_str_c(""), 0);
        }
    }
    size_t n = take(eb, buf, cap);
    evbuffer_free(eb);
    return n;
}

START_TEST(test_offsets_topics)
{
    kz_acl *a = dec_rules();
    dec_ctx d = {a, "alice", 0};
    px_acl_pass_ctx ctx = {dec_check, dec_allowed, &d};
    static const int16_t keys[] = {KC_API_TXNOFFSETCOMMIT, 47 /* OffsetDelete */};
    for (size_t k = 0; k < 2; k++) {
        int16_t key = keys[k];
        uint8_t body[256], fwd[256], resp[256], merged[256];
        size_t n = offsets_req(key, body, sizeof(body));
        ck_assert(px_acl_split_applies(key));
        struct evbuffer *out = evbuffer_new();
        /* the group and the transactional id are allowed: on to the split */
        const char *why = NULL;
        size_t off = 0;
        ck_assert_int_eq(px_acl_pass_eval(&ctx, key, 0, body, n, out, &why, &off), PX_ACL_FORWARD);
        px_acl_split s;
        d.checked_denied = 0;
        ck_assert_int_eq(px_acl_split_parse(&s, &ctx, key, 0, body, n, &why, &off), 0);
        ck_assert_int_eq(s.n, 2);
        ck_assert_int_eq(s.ndenied, 1);
        ck_assert_int_eq(d.checked_denied, 1);
        ck_assert_int_eq(px_acl_split_request(&s, body, n, out), 0);
        size_t fn = take(out, fwd, sizeof(fwd));
        ck_assert(fn < n && memmem(fwd, fn, "app-b.x", 7) == NULL && memmem(fwd, fn, "app-a.x", 7) != NULL);
        /* the backend's answer for app-a.x: partition 0, error 0 */
        kc_wr w;
        kc_wr_init(&w, out, NULL);
        if (key == 47)
            kc_wr_i16(&w, 0);
        kc_wr_i32(&w, 0); /* throttle */
        kc_wr_arraylen(&w, 1, 0);
        kc_wr_string(&w, kc_str_c("app-a.x"), 0);
        kc_wr_arraylen(&w, 1, 0);
        kc_wr_i32(&w, 0);
        kc_wr_i16(&w, 0);
        size_t rn = take(out, resp, sizeof(resp));
        ck_assert_int_eq(px_acl_split_response(&s, &ctx, body, resp, rn, out, &why), 0);
        size_t mn = take(out, merged, sizeof(merged));
        /* head, 2 topics, app-b.x's partition 0 with 29 at the end */
        size_t head = key == 47 ? 6 : 4;
        ck_assert_int_eq((merged[head] << 24) | (merged[head + 1] << 16) | (merged[head + 2] << 8) | merged[head + 3],
                         2);
        ck_assert_int_eq((merged[mn - 2] << 8) | merged[mn - 1], KC_ERR_TOPIC_AUTHORIZATION_FAILED);
        ck_assert(memmem(merged, mn, "app-b.x", 7) != NULL);
        /* every topic denied: kzproxy's answer alone */
        ck_assert_int_eq(px_acl_split_response(&s, &ctx, body, NULL, 0, out, &why), 0);
        mn = take(out, merged, sizeof(merged));
        ck_assert_int_eq((merged[mn - 2] << 8) | merged[mn - 1], KC_ERR_TOPIC_AUTHORIZATION_FAILED);
        px_acl_split_free(&s);
        evbuffer_free(out);
    }
    kz_acl_free(a);
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
    tc = tcase_create("decide");
    tcase_add_test(tc, test_metadata_autocreate);
    tcase_add_test(tc, test_listgroups_filter);
    tcase_add_test(tc, test_null_transactional_id);
    tcase_add_test(tc, test_cgh_topics);
    tcase_add_test(tc, test_offsets_topics);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
