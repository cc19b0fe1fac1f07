/* Config sections for security: backend TLS/SASL, client TLS, peer TLS and
 * client SASL termination. */
#include "config.h"

#include "proxy/px_config_int.h"

#include "objwal/ow_store.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int px_cfg_backend(json_t *obj, px_config *cfg, char *errstr, size_t n)
{
    static const char *const keys[] = {"tls", "sasl", NULL};
    static const char *const tkeys[] = {"enabled", "ca_file", "verify_hostname", "cert_file", "key_file", NULL};
    static const char *const skeys[] = {"mechanism", "username", "password", "password_file", "token",
                                        "token_file", NULL};
    if (!json_is_object(obj))
        return px_cfg_err(errstr, n, "backend: expected an object");
    if (px_cfg_known(obj, "backend.", keys, errstr, n) != 0)
        return -1;
    json_t *tls = json_object_get(obj, "tls");
    if (tls) {
        px_backend_tls *t = &cfg->backend_tls;
        if (!json_is_object(tls))
            return px_cfg_err(errstr, n, "backend.tls: expected an object");
        if (px_cfg_known(tls, "backend.tls.", tkeys, errstr, n) != 0)
            return -1;
        t->enabled = 1; /* the object's presence turns TLS on unless "enabled": false */
        if (px_cfg_bool(tls, "enabled", "backend.tls.", &t->enabled, errstr, n) != 0 ||
            px_cfg_bool(tls, "verify_hostname", "backend.tls.", &t->verify_hostname, errstr, n) != 0 ||
            px_cfg_str(tls, "ca_file", "backend.tls.", &t->ca_file, 0, errstr, n) != 0 ||
            px_cfg_str(tls, "cert_file", "backend.tls.", &t->cert_file, 0, errstr, n) != 0 ||
            px_cfg_str(tls, "key_file", "backend.tls.", &t->key_file, 0, errstr, n) != 0)
            return -1;
        if ((t->cert_file == NULL) != (t->key_file == NULL))
            return px_cfg_err(errstr, n, "backend.tls: cert_file and key_file go together (a client certificate and its key)");
    }
    json_t *sasl = json_object_get(obj, "sasl");
    if (sasl) {
        px_backend_sasl *a = &cfg->backend_sasl;
        if (!json_is_object(sasl))
            return px_cfg_err(errstr, n, "backend.sasl: expected an object");
        if (px_cfg_known(sasl, "backend.sasl.", skeys, errstr, n) != 0)
            return -1;
        if (px_cfg_str(sasl, "mechanism", "backend.sasl.", &a->mechanism, 1, errstr, n) != 0 ||
            px_cfg_str(sasl, "username", "backend.sasl.", &a->username, 0, errstr, n) != 0 ||
            px_cfg_str(sasl, "password", "backend.sasl.", &a->password, 0, errstr, n) != 0 ||
            px_cfg_str(sasl, "password_file", "backend.sasl.", &a->password_file, 0, errstr, n) != 0 ||
            px_cfg_str(sasl, "token", "backend.sasl.", &a->token, 0, errstr, n) != 0 ||
            px_cfg_str(sasl, "token_file", "backend.sasl.", &a->token_file, 0, errstr, n) != 0)
            return -1;
        int oauth = strcmp(a->mechanism, "OAUTHBEARER") == 0;
        if (!oauth && strcmp(a->mechanism, "PLAIN") != 0 && strcmp(a->mechanism, "SCRAM-SHA-256") != 0 &&
            strcmp(a->mechanism, "SCRAM-SHA-512") != 0)
            return px_cfg_err(errstr, n, "backend.sasl.mechanism: \"%s\" is not one of PLAIN, SCRAM-SHA-256, "
                              "SCRAM-SHA-512, OAUTHBEARER", a->mechanism);
        if (oauth) {
            if (a->username || a->password || a->password_file)
                return px_cfg_err(errstr, n, "backend.sasl: OAUTHBEARER takes token or token_file, not a username or password");
            if ((a->token == NULL) == (a->token_file == NULL))
                return px_cfg_err(errstr, n, "backend.sasl: OAUTHBEARER needs exactly one of token and token_file");
        } else {
            if (a->token || a->token_file)
                return px_cfg_err(errstr, n, "backend.sasl: token and token_file are for OAUTHBEARER only");
            if (a->username == NULL)
                return px_cfg_err(errstr, n, "backend.sasl.username: missing (required with %s)", a->mechanism);
            if ((a->password == NULL) == (a->password_file == NULL))
                return px_cfg_err(errstr, n, "backend.sasl: %s needs exactly one of password and password_file",
                                  a->mechanism);
        }
    }
    return 0;
}

int px_cfg_client_tls(json_t *obj, px_client_tls *t, char *errstr, size_t n)
{
    static const char *const keys[] = {"enabled", "cert_file", "key_file", "ca_file", "client_auth", NULL};
    if (!json_is_object(obj))
        return px_cfg_err(errstr, n, "client_tls: expected an object");
    if (px_cfg_known(obj, "client_tls.", keys, errstr, n) != 0)
        return -1;
    t->enabled = 1; /* the object's presence turns TLS on unless "enabled": false */
    char *auth = NULL;
    if (px_cfg_bool(obj, "enabled", "client_tls.", &t->enabled, errstr, n) != 0 ||
        px_cfg_str(obj, "cert_file", "client_tls.", &t->cert_file, 1, errstr, n) != 0 ||
        px_cfg_str(obj, "key_file", "client_tls.", &t->key_file, 1, errstr, n) != 0 ||
        px_cfg_str(obj, "ca_file", "client_tls.", &t->ca_file, 0, errstr, n) != 0 ||
        px_cfg_str(obj, "client_auth", "client_tls.", &auth, 0, errstr, n) != 0)
        return -1;
    if (auth == NULL || strcmp(auth, "none") == 0)
        t->client_auth = PX_TLS_AUTH_NONE;
    else if (strcmp(auth, "requested") == 0)
        t->client_auth = PX_TLS_AUTH_REQUESTED;
    else if (strcmp(auth, "required") == 0)
        t->client_auth = PX_TLS_AUTH_REQUIRED;
    else {
        free(auth);
        return px_cfg_err(errstr, n, "client_tls.client_auth: expected \"none\", \"requested\" or \"required\"");
    }
    free(auth);
    if (t->client_auth != PX_TLS_AUTH_NONE && t->ca_file == NULL)
        return px_cfg_err(errstr, n, "client_tls.ca_file: missing (required with client_auth \"%s\": the CA "
                          "client certificates must chain to)",
                          t->client_auth == PX_TLS_AUTH_REQUIRED ? "required" : "requested");
    return 0;
}

int px_cfg_peer_tls(json_t *obj, px_config *cfg, char *errstr, size_t n)
{
    static const char *const keys[] = {"enabled", "ca_file", "verify_hostname", "cert_file", "key_file", NULL};
    px_peer_tls *t = &cfg->peer_tls;
    t->verify_hostname = 1;
    if (obj == NULL) {
        /* Follow client_tls: the peers' listeners are configured like ours. */
        t->enabled = cfg->client_tls.enabled;
        if (t->enabled && cfg->client_tls.ca_file && (t->ca_file = strdup(cfg->client_tls.ca_file)) == NULL)
            return px_cfg_err(errstr, n, "out of memory");
        return 0;
    }
    if (!json_is_object(obj))
        return px_cfg_err(errstr, n, "peer_tls: expected an object");
    if (px_cfg_known(obj, "peer_tls.", keys, errstr, n) != 0)
        return -1;
    t->present = 1;
    t->enabled = 1; /* the object's presence turns TLS to peers on unless "enabled": false */
    if (px_cfg_bool(obj, "enabled", "peer_tls.", &t->enabled, errstr, n) != 0 ||
        px_cfg_bool(obj, "verify_hostname", "peer_tls.", &t->verify_hostname, errstr, n) != 0 ||
        px_cfg_str(obj, "ca_file", "peer_tls.", &t->ca_file, 0, errstr, n) != 0 ||
        px_cfg_str(obj, "cert_file", "peer_tls.", &t->cert_file, 0, errstr, n) != 0 ||
        px_cfg_str(obj, "key_file", "peer_tls.", &t->key_file, 0, errstr, n) != 0)
        return -1;
    if ((t->cert_file == NULL) != (t->key_file == NULL))
        return px_cfg_err(errstr, n, "peer_tls: cert_file and key_file go together (a client certificate and its key)");
    if (t->enabled && t->ca_file == NULL)
        return px_cfg_err(errstr, n, "peer_tls.ca_file: missing (the CA that signed the peers' certificates; "
                          "without it any publicly trusted certificate would pass for a peer)");
    if (t->enabled && !cfg->client_tls.enabled)
        return px_cfg_err(errstr, n, "peer_tls: TLS to peers without client_tls: this proxy's listener is plaintext, "
                          "so its peers' (configured alike: every proxy of a fleet must agree) would be too");
    if (!t->enabled && cfg->client_tls.enabled && cfg->peer_secret)
        return px_cfg_err(errstr, n, "peer_tls.enabled: false with client_tls: peers' listeners speak TLS "
                          "(every proxy of a fleet must agree), so plaintext peer RPCs would fail");
    return 0;
}

int px_cfg_client_sasl(json_t *obj, px_client_sasl *cs, char *errstr, size_t n)
{
    static const char *const keys[] = {"mechanisms", "credentials_file", "failure_delay_ms",
                                       "session_lifetime_ms", NULL};
    static const char *const known[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    if (!json_is_object(obj))
        return px_cfg_err(errstr, n, "client_sasl: expected an object");
    if (px_cfg_known(obj, "client_sasl.", keys, errstr, n) != 0)
        return -1;
    cs->enabled = 1;
    json_t *m = json_object_get(obj, "mechanisms");
    if (m == NULL) {
        cs->mechanisms = calloc(2, sizeof(char *));
        if (cs->mechanisms == NULL || (cs->mechanisms[0] = strdup("SCRAM-SHA-512")) == NULL ||
            (cs->mechanisms[1] = strdup("SCRAM-SHA-256")) == NULL)
            return px_cfg_err(errstr, n, "out of memory");
        cs->nmechanisms = 2;
    } else {
        if (!json_is_array(m) || json_array_size(m) == 0 || json_array_size(m) > 3)
            return px_cfg_err(errstr, n, "client_sasl.mechanisms: expected a list of 1 to 3 of PLAIN, "
                                         "SCRAM-SHA-256, SCRAM-SHA-512");
        cs->mechanisms = calloc(json_array_size(m), sizeof(char *));
        if (cs->mechanisms == NULL)
            return px_cfg_err(errstr, n, "out of memory");
        for (size_t i = 0; i < json_array_size(m); i++) {
            const char *v = json_string_value(json_array_get(m, i));
            int ok = 0;
            for (size_t k = 0; v && k < sizeof(known) / sizeof(known[0]); k++)
                ok |= strcmp(v, known[k]) == 0;
            for (int k = 0; ok && k < cs->nmechanisms; k++)
                if (strcmp(cs->mechanisms[k], v) == 0)
                    return px_cfg_err(errstr, n, "client_sasl.mechanisms: \"%s\" listed twice", v);
            if (!ok)
                return px_cfg_err(errstr, n, "client_sasl.mechanisms[%zu]: expected one of PLAIN, "
                                             "SCRAM-SHA-256, SCRAM-SHA-512", i);
            if ((cs->mechanisms[cs->nmechanisms++] = strdup(v)) == NULL)
                return px_cfg_err(errstr, n, "out of memory");
        }
    }
    if (px_cfg_str(obj, "credentials_file", "client_sasl.", &cs->credentials_file, 1, errstr, n) != 0)
        return -1;
    long long v = cs->failure_delay_ms;
    if (px_cfg_int(obj, "failure_delay_ms", "client_sasl.", 0, 60000, &v, 0, errstr, n) != 0)
        return -1;
    cs->failure_delay_ms = (int)v;
    v = cs->session_lifetime_ms;
    if (px_cfg_int(obj, "session_lifetime_ms", "client_sasl.", 0, 7LL * 24 * 3600 * 1000, &v, 0, errstr, n) != 0)
        return -1;
    if (v > 0 && v < 1000)
        return px_cfg_err(errstr, n, "client_sasl.session_lifetime_ms: 0 (no limit) or at least 1000");
    cs->session_lifetime_ms = v;
    return 0;
}


int px_cfg_s3_security(json_t *st, px_wal_config *w, char *errstr, size_t n)
{
    if (px_cfg_str(st, "session_token", "wal.store.", &w->session_token, 0, errstr, n) != 0 ||
        px_cfg_str(st, "sse", "wal.store.", &w->sse, 0, errstr, n) != 0 ||
        px_cfg_str(st, "sse_kms_key_id", "wal.store.", &w->sse_kms_key_id, 0, errstr, n) != 0 ||
        px_cfg_str(st, "ca_file", "wal.store.", &w->ca_file, 0, errstr, n) != 0)
        return -1;
    if ((w->access_key == NULL) != (w->secret_key == NULL))
        return px_cfg_err(errstr, n, "wal.store: access_key and secret_key go together (or leave both out to use "
                          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment)");
    if (w->session_token && strlen(w->session_token) > OW_S3_MAX_TOKEN)
        return px_cfg_err(errstr, n, "wal.store.session_token: %zu bytes, more than the %d this proxy sends: check "
                          "that it is the token alone (no line breaks, quotes or other fields)",
                          strlen(w->session_token), OW_S3_MAX_TOKEN);
    if (w->session_token && w->access_key == NULL)
        return px_cfg_err(errstr, n, "wal.store.session_token: needs access_key and secret_key in the config (with "
                          "keys from the environment the token comes from AWS_SESSION_TOKEN)");
    if (w->sse && strcmp(w->sse, "AES256") != 0 && strcmp(w->sse, "aws:kms") != 0)
        return px_cfg_err(errstr, n, "wal.store.sse: \"%s\" is not \"AES256\" (SSE-S3) or \"aws:kms\" (SSE-KMS)",
                          w->sse);
    if (w->sse && strcmp(w->sse, "aws:kms") == 0 && w->sse_kms_key_id == NULL)
        return px_cfg_err(errstr, n, "wal.store.sse_kms_key_id: missing (required with sse \"aws:kms\": the KMS "
                          "key id or ARN the objects are encrypted with)");
    if (w->sse_kms_key_id && (w->sse == NULL || strcmp(w->sse, "aws:kms") != 0))
        return px_cfg_err(errstr, n, "wal.store.sse_kms_key_id: only with sse \"aws:kms\"");
    if (w->ca_file && w->endpoint && strncasecmp(w->endpoint, "https://", 8) != 0)
        return px_cfg_err(errstr, n, "wal.store.ca_file: the endpoint %s is not https://, so no certificate is "
                          "verified (use an https:// endpoint, or drop ca_file)", w->endpoint);
    return 0;
}
