/*
 * kzproxy --check-config: beyond the parser's checks (keys, types, ranges and
 * combinations of keys), load every file the security settings name, as the
 * daemon would at start: TLS certificates with their keys (a key that does
 * not match its certificate fails), CA files, the client SASL credentials,
 * the backend's password and token files, the S3 endpoint's CA file. The
 * first failure is reported, naming the key and what to do.
 */
#include "config.h"

#include "proxy/px_config_check.h"

#include "meta-client/mc_tls.h"
#include "proxy/px_sasl.h"
#include "proxy/px_tls.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

/* TLS from this proxy (to brokers or peers): its CA file and client keypair load. */
static int px_check_tls_out(const char *where, const char *ca, int verify, const char *cert, const char *key,
                            char *err, size_t n)
{
    mc_tls_config tc = {.ca_file = ca, .verify_hostname = verify, .cert_file = cert, .key_file = key,
                        .where = where};
    mc_tls *t = mc_tls_new(&tc, err, n);
    if (t == NULL)
        return -1;
    mc_tls_free(t);
    return 0;
}

/* A file a key names must be readable now (its contents are checked when used). */
static int px_check_readable(const char *key, const char *path, char *err, size_t n)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, n, "%s: cannot read %s: %s (check the path and this user's permissions)", key, path,
                 strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

/* A PEM file with at least one certificate (a CA bundle). */
static int px_check_ca_pem(const char *key, const char *path, char *err, size_t n)
{
    if (px_check_readable(key, path, err, n) != 0)
        return -1;
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (x == NULL) {
        snprintf(err, n, "%s: %s holds no PEM certificate (give the CA certificate that signed the server's)", key,
                 path);
        return -1;
    }
    X509_free(x);
    return 0;
}

int px_config_check(const px_config *cfg, char *err, size_t n)
{
    if (cfg->client_tls.enabled) {
        /* The files as they are now: readable, and the key matching the certificate. */
        px_tls *t = px_tls_new(&cfg->client_tls, err, n);
        if (t == NULL)
            return -1;
        px_tls_free(t);
    }
    if (cfg->peer_tls.enabled && cfg->peer_secret &&
        px_check_tls_out(cfg->peer_tls.present ? "peer_tls" : "client_tls (for peers)", cfg->peer_tls.ca_file,
                         cfg->peer_tls.verify_hostname, cfg->peer_tls.cert_file, cfg->peer_tls.key_file, err,
                         n) != 0)
        return -1;
    if (cfg->client_sasl.enabled) {
        px_sasl *s = px_sasl_new(&cfg->client_sasl, err, n);
        if (s == NULL)
            return -1;
        px_sasl_free(s);
    }
    const px_backend_tls *bt = &cfg->backend_tls;
    if (bt->enabled &&
        px_check_tls_out("backend.tls", bt->ca_file, bt->verify_hostname, bt->cert_file, bt->key_file, err, n) != 0)
        return -1;
    const px_backend_sasl *bs = &cfg->backend_sasl;
    if (bs->password_file && px_check_readable("backend.sasl.password_file", bs->password_file, err, n) != 0)
        return -1;
    if (bs->token_file && px_check_readable("backend.sasl.token_file", bs->token_file, err, n) != 0)
        return -1;
    if (cfg->wal.enabled && cfg->wal.ca_file && px_check_ca_pem("wal.store.ca_file", cfg->wal.ca_file, err, n) != 0)
        return -1;
    return 0;
}
