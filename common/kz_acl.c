/* kz_acl: the rule set and its precomputed lookup (see kz_acl.h). */
#include "config.h"

#include "common/kz_acl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A rule as added. */
typedef struct kz_acl_rule {
    kz_acl_who who;
    char *principal;
    int deny;
    unsigned ops;
    kz_acl_res res;
    kz_acl_pattern pattern;
    char *name;
    size_t len;
} kz_acl_rule;

/* A rule as the lookup sees it, in the table of one (resource, operation). */
typedef struct kz_acl_entry {
    const char *name; /* into the rule's copy */
    size_t len;
    uint8_t match;    /* KZ_ACL_M_* */
} kz_acl_entry;

enum { KZ_ACL_M_ALL, KZ_ACL_M_LITERAL, KZ_ACL_M_PREFIX };

/* What applies to one principal: per (resource, operation), the deny
 * entries then the allow entries. */
typedef struct kz_acl_set {
    kz_acl_entry *block;
    kz_acl_entry *e[KZ_ACL_NRES][KZ_ACL_NOPS];
    uint32_t ndeny[KZ_ACL_NRES][KZ_ACL_NOPS];
    uint32_t n[KZ_ACL_NRES][KZ_ACL_NOPS];
} kz_acl_set;

struct kz_acl {
    kz_acl_rule *rules;
    size_t nrules, cap;
    int frozen;
    size_t nprin;
    const char **prin; /* distinct named principals, sorted (strings in rules) */
    kz_acl_set *sets;  /* per prin[i]: its rules and the "*" rules */
    kz_acl_set any;    /* an authenticated principal no rule names: the "*" rules */
    kz_acl_set anon;   /* anonymous clients */
};

const char kz_acl_op_names[] = "produce, consume, describe, create, delete, alter, all";
const char kz_acl_res_names[] = "topic, group, transactional_id, cluster";
const char kz_acl_pattern_names[] = "literal, prefix";

static const char *const kz_acl_ops[KZ_ACL_NOPS] = {"produce", "consume", "describe", "create", "delete", "alter"};
static const char *const kz_acl_ress[KZ_ACL_NRES] = {"topic", "group", "transactional_id", "cluster"};

const char *kz_acl_op_name(kz_acl_op op)
{
    return (unsigned)op < KZ_ACL_NOPS ? kz_acl_ops[op] : "?";
}

const char *kz_acl_res_name(kz_acl_res res)
{
    return (unsigned)res < KZ_ACL_NRES ? kz_acl_ress[res] : "?";
}

int kz_acl_op_parse(const char *s)
{
    if (strcmp(s, "all") == 0)
        return -2;
    for (int i = 0; i < KZ_ACL_NOPS; i++)
        if (strcmp(s, kz_acl_ops[i]) == 0)
            return i;
    return -1;
}

int kz_acl_res_parse(const char *s)
{
    for (int i = 0; i < KZ_ACL_NRES; i++)
        if (strcmp(s, kz_acl_ress[i]) == 0)
            return i;
    return -1;
}

int kz_acl_pattern_parse(const char *s)
{
    if (strcmp(s, "literal") == 0)
        return KZ_ACL_LITERAL;
    if (strcmp(s, "prefix") == 0)
        return KZ_ACL_PREFIX;
    return -1;
}

kz_acl *kz_acl_new(void)
{
    return calloc(1, sizeof(kz_acl));
}

size_t kz_acl_count(const kz_acl *acl)
{
    return acl ? acl->nrules : 0;
}

int kz_acl_add(kz_acl *acl, const kz_acl_rule_spec *r)
{
    if (acl->frozen || (unsigned)r->res >= KZ_ACL_NRES)
        return -1;
    if (acl->nrules == acl->cap) {
        size_t ncap = acl->cap ? acl->cap * 2 : 8;
        kz_acl_rule *nr = realloc(acl->rules, ncap * sizeof(*nr));
        if (nr == NULL)
            return -1;
        acl->rules = nr;
        acl->cap = ncap;
    }
    kz_acl_rule *k = &acl->rules[acl->nrules];
    memset(k, 0, sizeof(*k));
    k->who = r->who;
    k->deny = r->deny ? 1 : 0;
    k->ops = r->ops & KZ_ACL_OPS_ALL;
    k->res = r->res;
    k->pattern = r->pattern;
    if (r->who == KZ_ACL_WHO_NAME && (k->principal = strdup(r->principal ? r->principal : "")) == NULL)
        return -1;
    if (r->res != KZ_ACL_CLUSTER) {
        if ((k->name = strdup(r->name ? r->name : "")) == NULL) {
            free(k->principal);
            return -1;
        }
        k->len = strlen(k->name);
    }
    acl->nrules++;
    return 0;
}

/* Whether rule k applies to the set of principal kind who (and name). */
static int kz_acl_rule_for(const kz_acl_rule *k, kz_acl_who who, const char *name)
{
    switch (who) {
    case KZ_ACL_WHO_NAME:
        return k->who == KZ_ACL_WHO_ANY || (k->who == KZ_ACL_WHO_NAME && strcmp(k->principal, name) == 0);
    case KZ_ACL_WHO_ANY:
        return k->who == KZ_ACL_WHO_ANY;
    case KZ_ACL_WHO_ANONYMOUS:
        return k->who == KZ_ACL_WHO_ANONYMOUS;
    }
    return 0;
}

/* Fill set with the rules that apply to (who, name). 0, or -1 out of memory. */
static int kz_acl_set_build(const kz_acl *acl, kz_acl_set *set, kz_acl_who who, const char *name)
{
    size_t total = 0;
    memset(set, 0, sizeof(*set));
    for (size_t i = 0; i < acl->nrules; i++) {
        const kz_acl_rule *k = &acl->rules[i];
        if (!kz_acl_rule_for(k, who, name))
            continue;
        for (int o = 0; o < KZ_ACL_NOPS; o++)
            if (k->ops & (1u << o)) {
                set->n[k->res][o]++;
                set->ndeny[k->res][o] += (uint32_t)k->deny;
                total++;
            }
    }
    if (total == 0)
        return 0;
    set->block = calloc(total, sizeof(kz_acl_entry));
    if (set->block == NULL)
        return -1;
    size_t off = 0;
    uint32_t fill_deny[KZ_ACL_NRES][KZ_ACL_NOPS], fill_allow[KZ_ACL_NRES][KZ_ACL_NOPS];
    for (int r = 0; r < KZ_ACL_NRES; r++)
        for (int o = 0; o < KZ_ACL_NOPS; o++) {
            set->e[r][o] = set->block + off;
            off += set->n[r][o];
            fill_deny[r][o] = 0;
            fill_allow[r][o] = set->ndeny[r][o];
        }
    for (size_t i = 0; i < acl->nrules; i++) {
        const kz_acl_rule *k = &acl->rules[i];
        if (!kz_acl_rule_for(k, who, name))
            continue;
        for (int o = 0; o < KZ_ACL_NOPS; o++) {
            if (!(k->ops & (1u << o)))
                continue;
            uint32_t *slot = k->deny ? &fill_deny[k->res][o] : &fill_allow[k->res][o];
            kz_acl_entry *e = &set->e[k->res][o][(*slot)++];
            e->name = k->name;
            e->len = k->len;
            if (k->res == KZ_ACL_CLUSTER || (k->pattern == KZ_ACL_LITERAL && k->len == 1 && k->name[0] == '*'))
                e->match = KZ_ACL_M_ALL;
            else
                e->match = k->pattern == KZ_ACL_PREFIX ? KZ_ACL_M_PREFIX : KZ_ACL_M_LITERAL;
        }
    }
    return 0;
}

static int kz_acl_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int kz_acl_freeze(kz_acl *acl)
{
    if (acl->frozen)
        return 0;
    size_t nnamed = 0;
    for (size_t i = 0; i < acl->nrules; i++)
        nnamed += acl->rules[i].who == KZ_ACL_WHO_NAME;
    acl->prin = calloc(nnamed ? nnamed : 1, sizeof(char *));
    if (acl->prin == NULL)
        return -1;
    for (size_t i = 0; i < acl->nrules; i++)
        if (acl->rules[i].who == KZ_ACL_WHO_NAME)
            acl->prin[acl->nprin++] = acl->rules[i].principal;
    qsort(acl->prin, acl->nprin, sizeof(char *), kz_acl_strcmp);
    size_t u = 0;
    for (size_t i = 0; i < acl->nprin; i++)
        if (u == 0 || strcmp(acl->prin[u - 1], acl->prin[i]) != 0)
            acl->prin[u++] = acl->prin[i];
    acl->nprin = u;
    acl->sets = calloc(u ? u : 1, sizeof(kz_acl_set));
    if (acl->sets == NULL)
        return -1;
    for (size_t i = 0; i < u; i++)
        if (kz_acl_set_build(acl, &acl->sets[i], KZ_ACL_WHO_NAME, acl->prin[i]) != 0)
            return -1;
    if (kz_acl_set_build(acl, &acl->any, KZ_ACL_WHO_ANY, NULL) != 0 ||
        kz_acl_set_build(acl, &acl->anon, KZ_ACL_WHO_ANONYMOUS, NULL) != 0)
        return -1;
    acl->frozen = 1;
    return 0;
}

static int kz_acl_match(const kz_acl_entry *e, const char *name, size_t len)
{
    switch (e->match) {
    case KZ_ACL_M_ALL:
        return 1;
    case KZ_ACL_M_LITERAL:
        return e->len == len && memcmp(e->name, name, len) == 0;
    default:
        return e->len <= len && memcmp(e->name, name, e->len) == 0;
    }
}

int kz_acl_allows(const kz_acl *acl, const char *principal, kz_acl_op op, kz_acl_res res, const char *name,
                  size_t name_len)
{
    if (acl == NULL)
        return 1;
    if (!acl->frozen || (unsigned)op >= KZ_ACL_NOPS || (unsigned)res >= KZ_ACL_NRES)
        return 0;
    const kz_acl_set *set = &acl->anon;
    if (principal != NULL) {
        set = &acl->any;
        size_t lo = 0, hi = acl->nprin;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(principal, acl->prin[mid]);
            if (c == 0) {
                set = &acl->sets[mid];
                break;
            }
            if (c < 0)
                hi = mid;
            else
                lo = mid + 1;
        }
    }
    if (name == NULL)
        name_len = 0;
    const kz_acl_entry *e = set->e[res][op];
    uint32_t n = set->n[res][op], nd = set->ndeny[res][op];
    for (uint32_t i = 0; i < nd; i++)
        if (kz_acl_match(&e[i], name, name_len))
            return 0;
    for (uint32_t i = nd; i < n; i++)
        if (kz_acl_match(&e[i], name, name_len))
            return 1;
    return 0;
}

static void kz_acl_set_free(kz_acl_set *set)
{
    free(set->block);
}

void kz_acl_free(kz_acl *acl)
{
    if (acl == NULL)
        return;
    for (size_t i = 0; i < acl->nrules; i++) {
        free(acl->rules[i].principal);
        free(acl->rules[i].name);
    }
    free(acl->rules);
    if (acl->sets)
        for (size_t i = 0; i < acl->nprin; i++)
            kz_acl_set_free(&acl->sets[i]);
    free(acl->sets);
    free(acl->prin);
    kz_acl_set_free(&acl->any);
    kz_acl_set_free(&acl->anon);
    free(acl);
}
