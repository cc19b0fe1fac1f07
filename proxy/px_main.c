/* kzproxy: the daemon's entry point. */
#include "config.h"

#include "common/kz_log.h"
#include "meta-client/mc_sasl.h"
#include "meta-client/mc_tls.h"
#include "meta-client/mc_xzone.h"
#include "proxy/px_proxy.h"
#include "proxy/px_sasl.h"
#include "proxy/px_tls.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* kzproxy --scram-credential: print one users entry of the credentials file. */
static int px_scram_credential(const char *user, const char *pwfile, int iterations)
{
    FILE *f = pwfile ? fopen(pwfile, "r") : stdin;
    if (f == NULL) {
        fprintf(stderr, "kzproxy: --password-file %s: %s\n", pwfile, strerror(errno));
        return 1;
    }
    char pw[1024];
    size_t n = fread(pw, 1, sizeof(pw) - 1, f);
    if (pwfile)
        fclose(f);
    pw[n] = '\0';
    n = strcspn(pw, "\r\n");
    pw[n] = '\0';
    int rc = 1;
    char err[256] = "";
    if (n == 0) {
        fprintf(stderr, "kzproxy: --scram-credential: empty password (give it on stdin or with --password-file)\n");
    } else {
        char *entry = px_sasl_credential_entry(user, pw, n, iterations, err, sizeof(err));
        if (entry == NULL) {
            fprintf(stderr, "kzproxy: --scram-credential: %s\n", err);
        } else {
            printf("%s\n", entry);
            free(entry);
            rc = 0;
        }
    }
    explicit_bzero(pw, sizeof(pw));
    return rc;
}

static void px_usage(FILE *f)
{
    fprintf(f,
            "Usage: kzproxy --config FILE [--log-level LEVEL]\n"
            "       kzproxy --check-config FILE\n"
            "       kzproxy --scram-credential USER [--password-file FILE] [--iterations N]\n"
            "\n"
            "kzproxy is a zone-aware Kafka proxy: clients bootstrap on it and see a Kafka\n"
            "cluster made of the proxies of their own availability zone.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE        run with this JSON configuration file\n"
            "      --check-config FILE  validate FILE, name the first invalid key, and exit\n"
            "  -l, --log-level LEVEL    error, warn, info (default) or debug; overrides the file\n"
            "      --scram-credential USER\n"
            "                           print USER's entry for client_sasl.credentials_file\n"
            "                           (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN) and exit; the\n"
            "                           password is the first line of stdin or --password-file\n"
            "      --password-file FILE read the password from FILE (first line)\n"
            "      --iterations N       PBKDF2 rounds (default 8192, at least 4096)\n"
            "  -h, --help               show this help and exit\n"
            "  -V, --version            show the version and exit\n"
            "\n"
            "See README.md for the configuration reference.\n");
}

/*
 * The resolver: the system's (resolv.conf), or, when discovery names its
 * nameservers, only those (plus /etc/hosts, so "localhost" and local names
 * still resolve). NULL with errstr on a nameserver evdns refuses.
 */
static struct evdns_base *px_dns_new(px_proxy *px, char *errstr, size_t n)
{
    const px_discovery *d = &px->cfg->discovery;
    struct evdns_base *dns;
    if (d->nnameservers == 0) {
        dns = evdns_base_new(px->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (dns == NULL)
            dns = evdns_base_new(px->base, 0); /* no resolv.conf: numeric addresses still work */
        if (dns == NULL)
            snprintf(errstr, n, "cannot create the DNS resolver");
        return dns;
    }
    dns = evdns_base_new(px->base, 0);
    if (dns == NULL) {
        snprintf(errstr, n, "cannot create the DNS resolver");
        return NULL;
    }
    evdns_base_load_hosts(dns, NULL);
    for (int i = 0; i < d->nnameservers; i++) {
        if (evdns_base_nameserver_ip_add(dns, d->nameservers[i]) != 0) {
            snprintf(errstr, n, "discovery.nameservers[%d]: cannot use \"%s\" as a nameserver "
                     "(expected an IP address, optionally with :port)", i, d->nameservers[i]);
            evdns_base_free(dns, 0);
            return NULL;
        }
    }
    return dns;
}

/* TLS and SASL for the broker connections from backend.tls / backend.sasl:
 * *out stays NULL when neither is configured. 0, or -1 with errstr. */
static int px_backend_security_new(const px_config *cfg, mc_conn_security **out, char *errstr, size_t n)
{
    *out = NULL;
    if (!cfg->backend_tls.enabled && cfg->backend_sasl.mechanism == NULL)
        return 0;
    mc_conn_security *sec = calloc(1, sizeof(*sec));
    if (sec == NULL) {
        snprintf(errstr, n, "out of memory");
        return -1;
    }
    *out = sec;
    if (cfg->backend_tls.enabled) {
        mc_tls_config tc = {.ca_file = cfg->backend_tls.ca_file,
                            .verify_hostname = cfg->backend_tls.verify_hostname,
                            .cert_file = cfg->backend_tls.cert_file,
                            .key_file = cfg->backend_tls.key_file};
        if ((sec->tls = mc_tls_new(&tc, errstr, n)) == NULL)
            return -1;
        if (!tc.verify_hostname)
            kz_warn("backend.tls.verify_hostname is off: any certificate the CA signed is accepted for every broker");
    }
    if (cfg->backend_sasl.mechanism != NULL) {
        const px_backend_sasl *b = &cfg->backend_sasl;
        mc_sasl_config sc = {.mechanism = mc_sasl_mech_parse(b->mechanism),
                             .username = b->username,
                             .password = b->password,
                             .password_file = b->password_file,
                             .token = b->token,
                             .token_file = b->token_file};
        errstr[0] = '\0';
        if ((sec->sasl = mc_sasl_new(&sc, errstr, n)) == NULL)
            return -1;
    }
    kz_info("broker connections: %s%s%s", sec->tls ? "TLS" : "plaintext", sec->sasl ? ", SASL " : "",
            sec->sasl ? mc_sasl_mech_name(mc_sasl_mechanism(sec->sasl)) : "");
    return 0;
}

static void px_backend_security_free(mc_conn_security *sec)
{
    if (sec == NULL)
        return;
    mc_tls_free(sec->tls);
    mc_sasl_free((mc_sasl *)sec->sasl);
    free(sec);
}

static void px_ready_cb(mc_view *view, const char *err, void *arg)
{
    px_proxy *px = arg;
    (void)view;
    (void)err;
    px->ready = 1;
    kz_info("ready: serving the virtual cluster of zone %s", px->cfg->zone);
    /* The test harness and service managers wait for this line. */
    printf("kzproxy ready\n");
    fflush(stdout);
}

static void px_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    px_proxy *px = arg;
    (void)what;
    kz_info("received signal %d, shutting down", (int)sig);
    event_base_loopexit(px->base, NULL);
}

/* SIGHUP: re-read the client listener's certificate and key. */
static void px_sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    px_proxy *px = arg;
    (void)sig;
    (void)what;
    if (px->tls == NULL) {
        kz_info("received SIGHUP: nothing to reload (no client_tls)");
        return;
    }
    char err[512];
    if (px_tls_reload(px->tls, err, sizeof(err)) == 0)
        kz_info("received SIGHUP: client_tls certificate reloaded from %s", px->cfg->client_tls.cert_file);
    else
        kz_err("received SIGHUP: client_tls certificate not reloaded (keeping the current one): %s", err);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"check-config", required_argument, NULL, 'C'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"scram-credential", required_argument, NULL, 'S'}, {"password-file", required_argument, NULL, 'P'},
        {"iterations", required_argument, NULL, 'I'},       {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *check_path = NULL, *level = NULL;
    const char *scram_user = NULL, *password_file = NULL;
    int iterations = 8192;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'C': check_path = optarg; break;
        case 'l': level = optarg; break;
        case 'S': scram_user = optarg; break;
        case 'P': password_file = optarg; break;
        case 'I': iterations = atoi(optarg); break;
        case 'h': px_usage(stdout); return 0;
        case 'V': printf("kzproxy %s\n", PACKAGE_VERSION); return 0;
        default: px_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kzproxy: unexpected argument '%s'\n", argv[optind]);
        px_usage(stderr);
        return 2;
    }
    if (scram_user)
        return px_scram_credential(scram_user, password_file, iterations);
    char err[512];
    px_config cfg;
    if (check_path) {
        if (px_config_load(check_path, &cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "kzproxy: %s: invalid: %s\n", check_path, err);
            px_config_free(&cfg);
            return 1;
        }
        if (cfg.client_tls.enabled) {
            /* The files as they are now: readable, and the key matching the certificate. */
            px_tls *t = px_tls_new(&cfg.client_tls, err, sizeof(err));
            if (t == NULL) {
                fprintf(stderr, "kzproxy: %s: invalid: %s\n", check_path, err);
                px_config_free(&cfg);
                return 1;
            }
            px_tls_free(t);
        }
        if (cfg.peer_tls.enabled && cfg.peer_secret) {
            /* TLS to peers: its CA file (and client certificate) load. */
            mc_tls_config tc = {.ca_file = cfg.peer_tls.ca_file,
                                .verify_hostname = cfg.peer_tls.verify_hostname,
                                .cert_file = cfg.peer_tls.cert_file,
                                .key_file = cfg.peer_tls.key_file,
                                .where = cfg.peer_tls.present ? "peer_tls" : "client_tls (for peers)"};
            mc_tls *pt = mc_tls_new(&tc, err, sizeof(err));
            if (pt == NULL) {
                fprintf(stderr, "kzproxy: %s: invalid: %s\n", check_path, err);
                px_config_free(&cfg);
                return 1;
            }
            mc_tls_free(pt);
        }
        if (cfg.client_sasl.enabled) {
            px_sasl *s = px_sasl_new(&cfg.client_sasl, err, sizeof(err));
            if (s == NULL) {
                fprintf(stderr, "kzproxy: %s: invalid: %s\n", check_path, err);
                px_config_free(&cfg);
                return 1;
            }
            px_sasl_free(s);
        }
        printf("%s: valid (zone %s, node %d, %d peers, %d bootstrap servers)\n", check_path, cfg.zone,
               cfg.node_id, cfg.npeers, cfg.nbootstrap);
        px_config_free(&cfg);
        return 0;
    }
    if (config_path == NULL) {
        fprintf(stderr, "kzproxy: no configuration: give --config FILE (see --help)\n");
        return 2;
    }
    if (px_config_load(config_path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "kzproxy: %s: invalid: %s\n", config_path, err);
        px_config_free(&cfg);
        return 1;
    }
    if (level == NULL)
        level = cfg.log_level;
    if (level && (kz_log_level = kz_log_level_parse(level)) < 0) {
        fprintf(stderr, "kzproxy: --log-level: \"%s\" is not one of error, warn, info, debug\n", level);
        px_config_free(&cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    px_proxy px;
    memset(&px, 0, sizeof(px));
    mc_conn_security *backend_sec = NULL;
    px.cfg = &cfg;
    int rc = 1;
    px.started_wall_ms = px_peer_wall_ms();
    px.base = event_base_new();
    px.xz = calloc(1, sizeof(*px.xz));
    if (px.base == NULL || px.xz == NULL) {
        kz_err("cannot start: out of memory");
        goto out;
    }
    if ((px.dns = px_dns_new(&px, err, sizeof(err))) == NULL) {
        kz_err("cannot start: %s", err);
        goto out;
    }
    mc_config mcfg = {
        .bootstrap = cfg.bootstrap,
        .nbootstrap = cfg.nbootstrap,
        .refresh_ms = cfg.metadata_refresh_ms,
        .conn = {.max_inflight = cfg.limits.upstream_max_inflight,
                 .request_timeout_ms = cfg.limits.upstream_timeout_ms,
                 .max_response_bytes = cfg.limits.max_response_bytes,
                 .reconnect_backoff_ms = 200},
        .zone = cfg.zone,
        .xz = px.xz,
    };
    if (px_backend_security_new(&cfg, &backend_sec, err, sizeof(err)) != 0) {
        kz_err("cannot start: %s", err);
        goto out;
    }
    mcfg.conn.sec = backend_sec;
    px.mc = mc_cluster_new(px.base, px.dns, &mcfg);
    if (px.mc == NULL) {
        kz_err("cannot start the backend client");
        goto out;
    }
    if (px_wal_start(&px, err, sizeof(err)) != 0) {
        kz_err("cannot start: %s", err);
        goto out;
    }
    if (px_vc_nodes_init(&px) != 0) {
        kz_err("cannot start: out of memory");
        goto out;
    }
    if (cfg.client_sasl.enabled) {
        if ((px.csasl = px_sasl_new(&cfg.client_sasl, err, sizeof(err))) == NULL) {
            kz_err("cannot start: %s", err);
            goto out;
        }
        kz_info("client SASL: %d users, mechanisms %s%s%s%s%s", px_sasl_nusers(px.csasl),
                cfg.client_sasl.mechanisms[0], cfg.client_sasl.nmechanisms > 1 ? ", " : "",
                cfg.client_sasl.nmechanisms > 1 ? cfg.client_sasl.mechanisms[1] : "",
                cfg.client_sasl.nmechanisms > 2 ? ", " : "",
                cfg.client_sasl.nmechanisms > 2 ? cfg.client_sasl.mechanisms[2] : "");
    }
    if (px_listen(&px, err, sizeof(err)) != 0 || px_admin_start(&px, err, sizeof(err)) != 0) {
        kz_err("cannot start: %s", err);
        goto out;
    }
    struct event *sigterm = evsignal_new(px.base, SIGTERM, px_signal_cb, &px);
    struct event *sigint = evsignal_new(px.base, SIGINT, px_signal_cb, &px);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    struct event *sighup = evsignal_new(px.base, SIGHUP, px_sighup_cb, &px);
    event_add(sighup, NULL);
    kz_info("kzproxy %s starting: zone %s, node %d, %d peers, backend %s%s", PACKAGE_VERSION, cfg.zone,
            cfg.node_id, cfg.npeers, cfg.bootstrap[0], cfg.nbootstrap > 1 ? ",..." : "");
    mc_cluster_start(px.mc, px_ready_cb, &px);
    event_base_dispatch(px.base);
    event_free(sigterm);
    event_free(sigint);
    event_free(sighup);
    rc = 0;
out:
    px_admin_stop(&px);
    px_listen_close(&px);
    px_wal_stop(&px);
    /* mc_peers_free (in px_wal_stop) cancels its DNS queries; evdns reports
     * the cancel through deferred callbacks, which free the queries: run them
     * once. */
    if (px.base)
        event_base_loop(px.base, EVLOOP_NONBLOCK);
    px_vc_nodes_free(&px);
    px_sasl_free(px.csasl);
    mc_cluster_free(px.mc);
    px_backend_security_free(backend_sec);
    if (px.dns)
        evdns_base_free(px.dns, 0);
    if (px.base)
        event_base_free(px.base);
    free(px.xz);
    px_config_free(&cfg);
    return rc;
}
