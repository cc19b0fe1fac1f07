/*
 * kz_acl: authorization rules per principal (issue 14, item 4).
 *
 * The proxy terminates client authentication, so it also decides what each
 * principal may do; the brokers see only the proxy's own identity. A rule
 * set is built once from the config (proxy/px_config_acl.c) and is
 * immutable afterwards, so the router (router-in, checking a peer's
 * KzWalAppend) and the proxy front end share one instance.
 *
 * Principals are the strings px_client_principal() returns: the SASL user
 * name, or the TLS client certificate's subject; an unauthenticated client
 * is the principal NULL ("anonymous").
 *
 * A rule: who (one principal by exact name, any authenticated principal, or
 * anonymous clients), allow or deny, a set of operations, and one resource
 * pattern (a topic, group or transactional id by literal name, "*" for
 * every name, or a name prefix; or the cluster). kz_acl_add() takes rules,
 * kz_acl_freeze() precomputes, per principal, per resource kind and per
 * operation, the rules that can apply (deny rules first), so that
 * kz_acl_allows() is one binary search on the principal and a scan of a
 * short array, without allocating.
 */
#ifndef KZ_ACL_H
#define KZ_ACL_H

#include <stddef.h>

typedef enum kz_acl_res {
    KZ_ACL_TOPIC = 0,
    KZ_ACL_GROUP,
    KZ_ACL_TRANSACTIONAL_ID,
    KZ_ACL_CLUSTER,
} kz_acl_res;
#define KZ_ACL_NRES 4

typedef enum kz_acl_op {
    KZ_ACL_PRODUCE = 0, /* Produce; InitProducerId/AddPartitionsToTxn on a txn id */
    KZ_ACL_CONSUME,     /* Fetch, offset commits and fetches, group membership */
    KZ_ACL_DESCRIBE,    /* Metadata, ListOffsets, OffsetForLeaderEpoch, Describe* */
    KZ_ACL_CREATE,
    KZ_ACL_DELETE,
    KZ_ACL_ALTER,       /* AlterConfigs, CreatePartitions, DeleteRecords, ... */
} kz_acl_op;
#define KZ_ACL_NOPS 6
#define KZ_ACL_OPS_ALL ((1u << KZ_ACL_NOPS) - 1)

/* Who a rule applies to. */
typedef enum kz_acl_who {
    KZ_ACL_WHO_NAME = 0,  /* the principal named exactly */
    KZ_ACL_WHO_ANY,       /* "*": every authenticated principal (not anonymous) */
    KZ_ACL_WHO_ANONYMOUS, /* clients that did not authenticate (principal NULL) */
} kz_acl_who;

/* How a rule names its resource (ignored for KZ_ACL_CLUSTER). */
typedef enum kz_acl_pattern {
    KZ_ACL_LITERAL = 0, /* exactly name; the literal "*" matches every name */
    KZ_ACL_PREFIX,      /* every name that starts with name */
} kz_acl_pattern;

typedef struct kz_acl kz_acl;

/* One rule as kz_acl_add takes it; the strings are copied. */
typedef struct kz_acl_rule_spec {
    kz_acl_who who;
    const char *principal; /* KZ_ACL_WHO_NAME only */
    int deny;              /* 1: deny, 0: allow */
    unsigned ops;          /* bit (1 << kz_acl_op) per operation; KZ_ACL_OPS_ALL */
    kz_acl_res res;
    kz_acl_pattern pattern;
    const char *name;      /* the resource name or prefix; unused for KZ_ACL_CLUSTER */
} kz_acl_rule_spec;

/* An empty rule set (which, frozen, denies everything); NULL out of memory. */
kz_acl *kz_acl_new(void);
/* Add one rule (before kz_acl_freeze). 0, or -1 out of memory. */
int kz_acl_add(kz_acl *acl, const kz_acl_rule_spec *r);
/* Precompute the lookup tables; no rule can be added afterwards. 0, or -1
 * out of memory. */
int kz_acl_freeze(kz_acl *acl);
/* Number of rules added. */
size_t kz_acl_count(const kz_acl *acl);

/*
 * 1 when principal (NULL: anonymous) may perform op on the resource named
 * name[0..name_len) of kind res (name ignored for KZ_ACL_CLUSTER), else 0.
 * A NULL acl allows everything (no ACLs configured). Deny rules win over
 * allow rules; with ACLs configured, what no rule allows is denied (also
 * on a rule set that was never frozen).
 */
int kz_acl_allows(const kz_acl *acl, const char *principal, kz_acl_op op, kz_acl_res res,
                  const char *name, size_t name_len);

void kz_acl_free(kz_acl *acl);

/* Names as the config spells them ("produce", "topic", "prefix", ...);
 * the parsers return -1 for an unknown name. */
const char *kz_acl_op_name(kz_acl_op op);
const char *kz_acl_res_name(kz_acl_res res);
int kz_acl_op_parse(const char *s);      /* "all" gives -2 (every operation) */
int kz_acl_res_parse(const char *s);
int kz_acl_pattern_parse(const char *s);
/* The accepted names, for error messages: "produce, consume, ..., all". */
extern const char kz_acl_op_names[];
extern const char kz_acl_res_names[];
extern const char kz_acl_pattern_names[];

#endif
