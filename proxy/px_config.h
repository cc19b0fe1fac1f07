/*
 * px_config: the daemon's JSON configuration file (parsed with jansson).
 * See the README's configuration reference for every key.
 */
#ifndef PX_CONFIG_H
#define PX_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* A listen address: "host:port", or "fd:N" for a socket inherited already
 * bound and listening (from a test harness or a service manager). */
typedef struct px_listen_addr {
    int fd;        /* >= 0 when inherited; PX_LISTEN_SYSTEMD for "systemd" */
    char host[256];
    int port;
} px_listen_addr;

/* "systemd": the socket comes from LISTEN_FDS (px_listen_fds_take). */
#define PX_LISTEN_SYSTEMD (-2)

typedef struct px_peer {
    int32_t node_id;
    char *zone;
    char *host; /* advertised Kafka address */
    int port;
    char *admin; /* optional "host:port" of its admin listener */
} px_peer;

/* A CIDR-to-zone rule: clients from this network are in this zone. */
typedef struct px_cidr_zone {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network address */
    int prefix;       /* prefix length in bits */
    char *zone;
} px_cidr_zone;

typedef struct px_limits {
    size_t max_frame_bytes;         /* largest request frame a client may send */
    int max_inflight_requests;      /* per client connection */
    size_t max_inflight_bytes;      /* per client connection: request bytes being served */
    size_t max_output_bytes;        /* per client connection: responses not yet sent */
    int upstream_max_inflight;      /* per broker connection */
    int upstream_timeout_ms;        /* broker request timeout (plus the request's own wait) */
    size_t max_response_bytes;      /* largest response frame accepted from a broker */
    int max_connections;            /* client connections at once */
    size_t cut_through_min_bytes;   /* Produce frames from this size stream to their broker as
                                     * they arrive (px_cut.c); 0: never */
    int frame_pool_idle_ms;         /* frames a thread kept and did not reuse for this long are
                                     * freed (kc_frame_pool_decay); 0: kept */
} px_limits;

/* The WAL path (issue: zone-aware produce). Absent: cross-zone produce goes
 * straight to the leader. */
typedef struct px_wal_config {
    int enabled;
    char *backend;      /* "local" or "s3" */
    char *root;         /* local: directory */
    int no_fsync;       /* local: tests only */
    char *bucket;       /* s3 */
    char *endpoint;     /* s3: NULL for AWS */
    char *region;       /* s3 */
    int path_style;     /* s3 */
    int unsigned_payload; /* s3: UNSIGNED-PAYLOAD instead of each body's SHA-256 in SigV4 */
    char *access_key;   /* s3: NULL for $AWS_ACCESS_KEY_ID */
    char *secret_key;   /* s3: NULL for $AWS_SECRET_ACCESS_KEY */
    char *session_token; /* s3: NULL for $AWS_SESSION_TOKEN (only with keys from the environment) */
    char *sse;          /* s3: "AES256" or "aws:kms" (server-side encryption of PUTs); NULL: bucket default */
    char *sse_kms_key_id; /* s3: the KMS key with "aws:kms" */
    char *ca_file;      /* s3: PEM CAs for an https endpoint; NULL: the system's */
    char *key_prefix;   /* default "wal/" */
    int read_check_payload; /* "read_check": "payload" (1): a CRC32C over every byte a peer's
                             * append reads; "headers" (0, default): derived from the record
                             * batches' headers, their own CRCs left to the broker */
    int flush_ms;       /* seal an object this long after its first chunk */
    int flush_idle_ms;  /* or when no append came for this long (0: off) */
    long long flush_bytes;     /* or at this size */
    int max_inflight_uploads;
    long long mem_cap_bytes;   /* bytes held by a writer at most */
    int store_deadline_ms;     /* one PUT or GET, retries included */
    int gc_sweep_ms;           /* sweeper period, 0 off */
    long long gc_max_age_ms;   /* sweep objects older than this */
} px_wal_config;

/* Peers found through DNS: A/AAAA records of a name, all on one port. */
typedef struct px_discovery {
    char *dns_name;
    int port;
    int interval_ms;
    char **nameservers; /* "ip[:port]"; none: the system's resolv.conf */
    int nnameservers;
} px_discovery;

/* Prices for the cost estimates in /metrics (USD). */
typedef struct px_prices {
    double cross_zone_per_gb; /* both directions together */
    double s3_put_per_1000;
    double s3_get_per_1000;
} px_prices;

/* Security of the proxy's own connections to brokers (metadata, pooled and
 * private connections, router-in's appends); peers are not brokers. */
typedef struct px_backend_tls {
    int enabled;
    char *ca_file;       /* NULL: the system's trust store */
    int verify_hostname; /* default 1 */
    char *cert_file;     /* client certificate (mTLS), with key_file */
    char *key_file;
} px_backend_tls;

typedef struct px_backend_sasl {
    char *mechanism;     /* NULL: no SASL; PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER */
    char *username;
    char *password;      /* or password_file */
    char *password_file;
    char *token;         /* OAUTHBEARER: or token_file (re-read on each connect) */
    char *token_file;
} px_backend_sasl;

/* TLS on the client listener ("client_tls"). */
#define PX_TLS_AUTH_NONE 0      /* no client certificate asked for */
#define PX_TLS_AUTH_REQUESTED 1 /* asked for; verified when given */
#define PX_TLS_AUTH_REQUIRED 2  /* a certificate the CA signed, or no connection (mTLS) */
typedef struct px_client_tls {
    int enabled;       /* present and not "enabled": false */
    char *cert_file;   /* PEM server certificate chain */
    char *key_file;    /* its unencrypted PEM private key */
    char *ca_file;     /* PEM CAs client certificates must chain to; needed with client_auth */
    int client_auth;   /* PX_TLS_AUTH_* */
} px_client_tls;

/* SASL on the client listener ("client_sasl"): the proxy authenticates
 * clients itself (see proxy/px_sasl.h). */
typedef struct px_client_sasl {
    int enabled;               /* the section is present */
    char **mechanisms;         /* PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, in the order offered */
    int nmechanisms;
    char *credentials_file;    /* JSON users file (kzproxy --scram-credential) */
    int failure_delay_ms;      /* wait before answering a failed login (default 1000) */
    long long session_lifetime_ms; /* KIP-368 session lifetime (default 0: none) */
} px_client_sasl;

/* TLS from this proxy to its peers' listeners (the peer RPC: KzHello health
 * checks, KzWalAppend, discovery probes). "peer_tls" sets it; without that
 * section it follows client_tls (every proxy of a fleet must agree): on when
 * this proxy's listener has TLS, verifying against client_tls.ca_file, else
 * the system's trust store. No SASL: peer_secret authenticates the RPC. */
typedef struct px_peer_tls {
    int present;         /* the "peer_tls" section is in the config */
    int enabled;         /* after the defaults: peers are dialled with TLS */
    char *ca_file;       /* NULL: the system's trust store */
    int verify_hostname; /* the peer's certificate must name its advertised host or IP (default 1) */
    char *cert_file;     /* client certificate (mTLS, for client_auth "required"), with key_file */
    char *key_file;
} px_peer_tls;

/* The default of `workers` (a build may set it with -DPX_WORKERS_DEFAULT=0:
 * the test suite's run with one thread per core). */
#ifndef PX_WORKERS_DEFAULT
#define PX_WORKERS_DEFAULT 1
#endif

/* admin_reload: POST /reload from this host only (the default), from any
 * peer of the admin listener, or never (SIGHUP still reloads). */
enum { PX_ADMIN_RELOAD_LOCAL = 0, PX_ADMIN_RELOAD_ANY, PX_ADMIN_RELOAD_OFF };

typedef struct px_config {
    int32_t node_id;
    char *zone;
    px_listen_addr listen;
    char *advertised_host;
    int advertised_port;
    int have_admin;
    px_listen_addr admin_listen;
    int admin_reload;        /* PX_ADMIN_RELOAD_*: who may POST /reload ("admin_reload") */
    char **bootstrap;
    int nbootstrap;
    px_peer *peers;
    int npeers;
    px_cidr_zone *client_zones;
    int nclient_zones;
    char *log_level;
    int log_format;          /* KZ_LOG_TEXT or KZ_LOG_JSON ("log_format") */
    int metadata_refresh_ms;
    px_limits limits;
    px_wal_config wal;
    char *peer_secret;       /* shared secret of the peer RPC */
    int peer_replay_window_ms;   /* peer RPC: accepted clock difference, and how long nonces are kept */
    int peer_replay_max_nonces;  /* peer RPC: seen (sender, nonce) pairs kept at most */
    int cross_zone_direct;   /* policy "direct": never use the WAL path */
    int cross_zone_auto;     /* policy "auto": by the produce rate per zone (router/rt_policy.c) */
    double auto_wal_above, auto_direct_below; /* "cross_zone_auto": bytes/s thresholds (0: from prices) */
    int auto_min_dwell_ms, auto_window_ms;
    int health_check_ms;     /* peer health-check period */
    int rpc_timeout_ms;      /* peer RPC timeout, on top of the produce timeout */
    int drain_timeout_ms;    /* SIGTERM: exit at the latest this long after the drain starts */
    int workers;             /* event-loop threads serving clients (px_worker.c); 0: one per usable core */
    px_discovery discovery;
    px_prices prices;
    px_backend_tls backend_tls;   /* "backend": {"tls": ...} */
    px_backend_sasl backend_sasl; /* "backend": {"sasl": ...} */
    px_client_sasl client_sasl;   /* "client_sasl": {...} */
    int fetch_from_follower;     /* PX_FETCH_FOLLOWER_*: where Fetch partitions are read (KIP-392) */
    int fetch_follower_retry_ms; /* after a follower fails a partition: leader only for this long */
    int fetch_follower_retry_max_ms; /* ... doubled on each failure in a row, up to this */
    long long fetch_cache_bytes; /* fetch cache cap (px_fcache.h); 0: off */
    int fetch_cache_max_age_ms;  /* a cached segment is served for at most this long */
    px_client_tls client_tls;    /* "client_tls": TLS on the client listener */
    px_peer_tls peer_tls;        /* "peer_tls", or derived from client_tls */
    struct kz_acl *acl;          /* "acls": NULL when none are configured (allow all) */
} px_config;

/* fetch_from_follower: "broker" (the default: ask the leader with the zone as
 * rack_id, follow its PreferredReadReplica), "metadata" (the in-sync replica
 * of the zone from the metadata), "off" (always the leader). */
#define PX_FETCH_FOLLOWER_BROKER 0
#define PX_FETCH_FOLLOWER_METADATA 1
#define PX_FETCH_FOLLOWER_OFF 2

/*
 * Load and validate a config file. Returns 0; or -1 with errstr naming the
 * first invalid key and what is wrong with it. cfg must be freed with
 * px_config_free in both cases.
 */
int px_config_load(const char *path, px_config *cfg, char *errstr, size_t errstr_size);
/* Same, from a JSON text (for tests). */
int px_config_parse(const char *json, px_config *cfg, char *errstr, size_t errstr_size);
void px_config_free(px_config *cfg);


#endif
