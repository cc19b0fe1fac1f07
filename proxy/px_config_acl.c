/*
 * The "acls" config section: authorization rules per principal (kz_acl).
 *
 *   "acls": [ rule, ... ]
 *   "acls": {"rules": [ rule, ... ], "file": "/etc/kzproxy/acls.json"}
 *
 * The file (read once at start, like the config) holds a JSON array of
 * rules, or an object {"rules": [...]}; its rules come after the inline
 * ones. A rule:
 *
 *   {"principal": "alice",             or "*" (any authenticated principal),
 *    "anonymous": true,                instead of principal: unauthenticated clients
 *    "effect": "allow",                or "deny" (default allow; deny wins)
 *    "operations": ["produce", ...],   produce consume describe create delete alter all
 *    "resources": [{"type": "topic", "name": "app-a.", "pattern": "prefix"},
 *                  {"type": "group", "name": "ga"},      pattern literal by default;
 *                  {"type": "cluster"}]}                 the literal name "*": every name
 *
 * Errors name the rule: "acls[2].operations[1]: unknown operation \"wrte\"; ...".
 */
#include "config.h"

#include "proxy/px_config_int.h"

#include "common/kz_acl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A string element; NULL (errstr filled) when it is not a non-empty string. */
static const char *px_acl_string(json_t *v, const char *where, char *errstr, size_t n)
{
    if (!json_is_string(v) || json_string_length(v) == 0) {
        px_cfg_err(errstr, n, "%s: expected a non-empty string", where);
        return NULL;
    }
    return json_string_value(v);
}

static int px_acl_rule(json_t *r, const char *where, kz_acl *acl, char *errstr, size_t n)
{
    static const char *const keys[] = {"principal", "anonymous", "effect", "operations", "resources", NULL};
    static const char *const rkeys[] = {"type", "name", "pattern", NULL};
    char w[160], w2[200];
    if (!json_is_object(r))
        return px_cfg_err(errstr, n, "%s: expected an object (principal, effect, operations, resources)", where);
    snprintf(w, sizeof(w), "%s.", where);
    if (px_cfg_known(r, w, keys, errstr, n) != 0)
        return -1;
    kz_acl_rule_spec spec = {0};
    int anonymous = 0;
    if (px_cfg_bool(r, "anonymous", w, &anonymous, errstr, n) != 0)
        return -1;
    json_t *pv = json_object_get(r, "principal");
    if (pv != NULL && anonymous)
        return px_cfg_err(errstr, n, "%s: give either principal or \"anonymous\": true, not both", where);
    if (pv == NULL && !anonymous)
        return px_cfg_err(errstr, n, "%s.principal: missing (a user name or certificate subject, \"*\" for "
                          "any authenticated client, or \"anonymous\": true for clients that do not log in)", where);
    if (anonymous) {
        spec.who = KZ_ACL_WHO_ANONYMOUS;
    } else {
        snprintf(w2, sizeof(w2), "%s.principal", where);
        if ((spec.principal = px_acl_string(pv, w2, errstr, n)) == NULL)
            return -1;
        spec.who = strcmp(spec.principal, "*") == 0 ? KZ_ACL_WHO_ANY : KZ_ACL_WHO_NAME;
    }
    json_t *ev = json_object_get(r, "effect");
    if (ev != NULL) {
        snprintf(w2, sizeof(w2), "%s.effect", where);
        const char *e = px_acl_string(ev, w2, errstr, n);
        if (e == NULL)
            return -1;
        if (strcmp(e, "deny") == 0)
            spec.deny = 1;
        else if (strcmp(e, "allow") != 0)
            return px_cfg_err(errstr, n, "%s: unknown effect \"%s\"; one of allow, deny", w2, e);
    }
    json_t *ops = json_object_get(r, "operations");
    if (!json_is_array(ops) || json_array_size(ops) == 0)
        return px_cfg_err(errstr, n, "%s.operations: expected a non-empty array (of %s)", where, kz_acl_op_names);
    size_t i;
    json_t *v;
    json_array_foreach(ops, i, v) {
        snprintf(w2, sizeof(w2), "%s.operations[%zu]", where, i);
        const char *s = px_acl_string(v, w2, errstr, n);
        if (s == NULL)
            return -1;
        int op = kz_acl_op_parse(s);
        if (op == -1)
            return px_cfg_err(errstr, n, "%s: unknown operation \"%s\"; one of %s", w2, s, kz_acl_op_names);
        spec.ops |= op == -2 ? KZ_ACL_OPS_ALL : 1u << op;
    }
    json_t *res = json_object_get(r, "resources");
    if (!json_is_array(res) || json_array_size(res) == 0)
        return px_cfg_err(errstr, n, "%s.resources: expected a non-empty array of {\"type\", \"name\", \"pattern\"}",
                          where);
    json_array_foreach(res, i, v) {
        snprintf(w2, sizeof(w2), "%s.resources[%zu]", where, i);
        if (!json_is_object(v))
            return px_cfg_err(errstr, n, "%s: expected an object {\"type\", \"name\", \"pattern\"}", w2);
        char wk[220];
        snprintf(wk, sizeof(wk), "%s.", w2);
        if (px_cfg_known(v, wk, rkeys, errstr, n) != 0)
            return -1;
        json_t *tv = json_object_get(v, "type");
        if (tv == NULL)
            return px_cfg_err(errstr, n, "%s.type: missing (one of %s)", w2, kz_acl_res_names);
        snprintf(wk, sizeof(wk), "%s.type", w2);
        const char *t = px_acl_string(tv, wk, errstr, n);
        if (t == NULL)
            return -1;
        int rt = kz_acl_res_parse(t);
        if (rt < 0)
            return px_cfg_err(errstr, n, "%s: unknown resource type \"%s\"; one of %s", wk, t, kz_acl_res_names);
        spec.res = (kz_acl_res)rt;
        spec.pattern = KZ_ACL_LITERAL;
        spec.name = NULL;
        json_t *nv = json_object_get(v, "name"), *patv = json_object_get(v, "pattern");
        if (rt == KZ_ACL_CLUSTER) {
            if (nv != NULL || patv != NULL)
                return px_cfg_err(errstr, n, "%s: a cluster resource takes no name or pattern", w2);
        } else {
            if (nv == NULL)
                return px_cfg_err(errstr, n, "%s.name: missing (the %s name, its prefix, or \"*\" for every %s)",
                                  w2, t, t);
            snprintf(wk, sizeof(wk), "%s.name", w2);
            if ((spec.name = px_acl_string(nv, wk, errstr, n)) == NULL)
                return -1;
            if (patv != NULL) {
                snprintf(wk, sizeof(wk), "%s.pattern", w2);
                const char *p = px_acl_string(patv, wk, errstr, n);
                if (p == NULL)
                    return -1;
                int pt = kz_acl_pattern_parse(p);
                if (pt < 0)
                    return px_cfg_err(errstr, n, "%s: unknown pattern \"%s\"; one of %s", wk, p,
                                      kz_acl_pattern_names);
                spec.pattern = (kz_acl_pattern)pt;
            }
        }
        if (kz_acl_add(acl, &spec) != 0)
            return px_cfg_err(errstr, n, "out of memory");
    }
    return 0;
}

static int px_acl_rules(json_t *arr, const char *where, kz_acl *acl, char *errstr, size_t n)
{
    if (!json_is_array(arr))
        return px_cfg_err(errstr, n, "%s: expected an array of rules", where);
    size_t i;
    json_t *r;
    json_array_foreach(arr, i, r) {
        char w[128];
        snprintf(w, sizeof(w), "%s[%zu]", where, i);
        if (px_acl_rule(r, w, acl, errstr, n) != 0)
            return -1;
    }
    return 0;
}

static int px_acl_file(const char *path, kz_acl *acl, char *errstr, size_t n)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return px_cfg_err(errstr, n, "acls.file: %s: line %d column %d: %s", path, je.line, je.column, je.text);
    char where[128];
    snprintf(where, sizeof(where), "acls.file %.80s: rules", path);
    json_t *arr = root;
    int rc = 0;
    if (json_is_object(root)) {
        static const char *const keys[] = {"rules", NULL};
        char w[140];
        snprintf(w, sizeof(w), "acls.file %.80s: ", path);
        arr = json_object_get(root, "rules");
        if (px_cfg_known(root, w, keys, errstr, n) != 0)
            rc = -1;
        else if (arr == NULL)
            rc = px_cfg_err(errstr, n, "acls.file %s: expected an array of rules or {\"rules\": [...]}", path);
    }
    if (rc == 0)
        rc = px_acl_rules(arr, where, acl, errstr, n);
    json_decref(root);
    return rc;
}

int px_cfg_acls(json_t *obj, px_config *cfg, char *errstr, size_t n)
{
    kz_acl *acl = kz_acl_new();
    if (acl == NULL)
        return px_cfg_err(errstr, n, "out of memory");
    int rc = 0;
    if (json_is_array(obj)) {
        rc = px_acl_rules(obj, "acls", acl, errstr, n);
    } else if (json_is_object(obj)) {
        static const char *const keys[] = {"rules", "file", NULL};
        char *file = NULL;
        json_t *rules = json_object_get(obj, "rules");
        if (px_cfg_known(obj, "acls.", keys, errstr, n) != 0 ||
            px_cfg_str(obj, "file", "acls.", &file, 0, errstr, n) != 0)
            rc = -1;
        else if (rules == NULL && file == NULL)
            rc = px_cfg_err(errstr, n, "acls: give rules, file or both");
        if (rc == 0 && rules != NULL)
            rc = px_acl_rules(rules, "acls.rules", acl, errstr, n);
        if (rc == 0 && file != NULL)
            rc = px_acl_file(file, acl, errstr, n);
        free(file);
    } else {
        rc = px_cfg_err(errstr, n, "acls: expected an array of rules or {\"rules\": [...], \"file\": \"path\"}");
    }
    if (rc == 0 && kz_acl_freeze(acl) != 0)
        rc = px_cfg_err(errstr, n, "out of memory");
    if (rc != 0) {
        kz_acl_free(acl);
        return -1;
    }
    kz_acl_free(cfg->acl);
    cfg->acl = acl;
    return 0;
}
