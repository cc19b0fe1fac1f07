/* Internal to the config parser: the typed readers every section uses and
 * the sections kept in their own files (px_config_sec.c: backend, client and
 * peer TLS, client SASL). Each reader fills errstr with "<where><key>: what
 * is wrong" and returns -1 on a bad value. */
#ifndef KZ_PX_CONFIG_INT_H
#define KZ_PX_CONFIG_INT_H

#include "proxy/px_config.h"

#include <jansson.h>
#include <stddef.h>

int px_cfg_err(char *errstr, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int px_cfg_known(json_t *obj, const char *where, const char *const *keys, char *errstr, size_t n);
int px_cfg_int(json_t *obj, const char *key, const char *where, long long min, long long max,
               long long *out, int required, char *errstr, size_t n);
int px_cfg_str(json_t *obj, const char *key, const char *where, char **out, int required,
               char *errstr, size_t n);
int px_cfg_listen(json_t *obj, const char *key, px_listen_addr *la, int required, int *present,
                  char *errstr, size_t n);
int px_cfg_hostport(json_t *obj, const char *key, const char *where, char **host, int *port,
                    int required, char *errstr, size_t n);
int px_cfg_bool(json_t *obj, const char *key, const char *where, int *out, char *errstr, size_t n);
int px_cfg_num(json_t *obj, const char *key, const char *where, double min, double max, double *out,
               char *errstr, size_t n);
int px_cfg_backend(json_t *obj, px_config *cfg, char *errstr, size_t n);
int px_cfg_client_tls(json_t *obj, px_client_tls *t, char *errstr, size_t n);
int px_cfg_peer_tls(json_t *obj, px_config *cfg, char *errstr, size_t n);
int px_cfg_client_sasl(json_t *obj, px_client_sasl *cs, char *errstr, size_t n);
/* wal.store's S3 security keys: session_token, sse, sse_kms_key_id, ca_file. */
int px_cfg_s3_security(json_t *st, px_wal_config *w, char *errstr, size_t n);
/* "acls" (px_config_acl.c): the rule set into cfg->acl. */
int px_cfg_acls(json_t *obj, px_config *cfg, char *errstr, size_t n);

#endif
