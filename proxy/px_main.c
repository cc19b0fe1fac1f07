/* kzproxy: the daemon's entry point. */
#include "config.h"

#include "codec/kc_buf.h"
#include "common/kz_log.h"
#include "common/kz_time.h"
#include "meta-client/mc_sasl.h"
#include "meta-client/mc_tls.h"
#include "meta-client/mc_xzone.h"
#include "proxy/px_config_check.h"
#include "proxy/px_fcache.h"
#include "proxy/px_proxy.h"
#include "proxy/px_sasl.h"
#include "proxy/px_tls.h"
#include "proxy/px_worker.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
            "       kzproxy --reload --pid-file FILE\n"
            "       kzproxy --scram-credential USER [--password-file FILE] [--iterations N]\n"
            "\n"
            "kzproxy is a zone-aware Kafka proxy: clients bootstrap on it and see a Kafka\n"
            "cluster made of the proxies of their own availability zone.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE        run with this JSON configuration file\n"
            "      --check-config FILE  validate FILE, name the first invalid key, and exit\n"
            "  -l, --log-level LEVEL    error, warn, info (default) or debug; overrides the file\n"
            "      --pid-file FILE      write the process id to FILE (rewritten by an upgrade)\n"
            "      --reload             with --pid-file: ask that kzproxy to reload its config (SIGHUP)\n"
            "\n"
            "Signals: SIGTERM/SIGINT drain and exit (a second one exits at once), SIGHUP\n"
            "reloads the config, SIGUSR2 starts a new process on the same sockets (upgrade).\n"
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

/* Once the main thread and every worker have a backend view. */
static void px_ready_announce(px_proxy *px)
{
    kz_info("ready: serving the virtual cluster of zone %s", px->cfg->zone);
    /* The test harness and service managers wait for this line. */
    printf("kzproxy ready\n");
    fflush(stdout);
    px_upgrade_ready(px); /* the old process of an upgrade drains now */
}

static void px_ready_cb(mc_view *view, const char *err, void *arg)
{
    px_proxy *px = arg;
    (void)view;
    (void)err;
    px->ready = 1;
    if (px_workers_ready(px))
        px_ready_announce(px); /* else the last worker's view does (px_worker.c) */
}

/* --pid-file: this process's id, replaced atomically (an upgrade's new
 * process rewrites it). 0, or -1 logged. */
static int px_pid_file_write(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        kz_err("cannot start: --pid-file %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* kzproxy --reload --pid-file FILE: send sig to the process FILE names. */
static int px_pid_file_signal(const char *path, int sig)
{
    if (path == NULL) {
        fprintf(stderr, "kzproxy: --reload needs --pid-file FILE (the one the running kzproxy was given)\n");
        return 2;
    }
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "kzproxy: --pid-file %s: %s\n", path, f ? "no process id in it" : strerror(errno));
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    if (kill((pid_t)pid, sig) != 0) {
        fprintf(stderr, "kzproxy: process %ld (from %s): %s\n", pid, path, strerror(errno));
        return 1;
    }
    printf("kzproxy: asked process %ld to reload (its log says whether the new config was applied)\n", pid);
    return 0;
}

/* The main thread's frame pool gives back what it did not reuse (the
 * workers do the same from their tick, px_worker.c). */
#define PX_POOL_DECAY_TICK_MS 250

static void px_pool_decay_tick(evutil_socket_t fd, short what, void *arg)
{
    px_proxy *px = arg;
    (void)fd;
    (void)what;
    kc_frame_pool_decay(kz_mono_ms(), px->cfg->limits.frame_pool_idle_ms);
}

static int px_pool_decay_start(px_proxy *px)
{
    struct timeval tv = {0, PX_POOL_DECAY_TICK_MS * 1000};
    px->pool_ev = event_new(px->base, -1, EV_PERSIST, px_pool_decay_tick, px);
    return px->pool_ev != NULL && event_add(px->pool_ev, &tv) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"check-config", required_argument, NULL, 'C'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"scram-credential", required_argument, NULL, 'S'}, {"password-file", required_argument, NULL, 'P'},
        {"iterations", required_argument, NULL, 'I'},
        {"pid-file", required_argument, NULL, 'p'},         {"reload", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *check_path = NULL, *level = NULL;
    const char *scram_user = NULL, *password_file = NULL;
    int iterations = 8192, reload = 0;
    const char *pid_file = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'C': check_path = optarg; break;
        case 'l': level = optarg; break;
        case 'S': scram_user = optarg; break;
        case 'P': password_file = optarg; break;
        case 'I': iterations = atoi(optarg); break;
        case 'p': pid_file = optarg; break;
        case 'R': reload = 1; break;
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
    if (reload)
        return px_pid_file_signal(pid_file, SIGHUP);
    char err[512];
    px_config cfg;
    if (check_path) {
        if (px_config_load(check_path, &cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "kzproxy: %s: invalid: %s\n", check_path, err);
            px_config_free(&cfg);
            return 1;
        }
        if (px_config_check(&cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "kzproxy: %s: invalid: %s\n", check_path, err);
            px_config_free(&cfg);
            return 1;
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
    int level_cli = level != NULL;
    if (level == NULL)
        level = cfg.log_level;
    if (level && (kz_log_level = kz_log_level_parse(level)) < 0) {
        fprintf(stderr, "kzproxy: --log-level: \"%s\" is not one of error, warn, info, debug\n", level);
        px_config_free(&cfg);
        return 2;
    }
    kz_log_format = cfg.log_format;
    signal(SIGPIPE, SIG_IGN);

    px_proxy px;
    memset(&px, 0, sizeof(px));
    mc_conn_security *backend_sec = NULL;
    px.cfg = &cfg;
    px.config_path = config_path;
    px.log_level_cli = level_cli;
    px.argv = argv;
    int rc = 1;
    if (px_listen_fds_take(&cfg, err, sizeof(err)) < 0) {
        kz_err("cannot start: %s", err);
        px_config_free(&cfg);
        return 1;
    }
    px.started_wall_ms = px_peer_wall_ms();
    int nworkers = px_workers_count(&cfg);
    /* Several threads: libevent's own shared state (its random numbers for
     * DNS ids, ...) must be locked; one thread keeps it lock-free. */
    if (nworkers > 1 && evthread_use_pthreads() != 0) {
        kz_err("cannot start: libevent has no thread support for workers: %d", nworkers);
        px_config_free(&cfg);
        return 1;
    }
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
    /* Before the workers: they share it. */
    if (cfg.fetch_cache_bytes > 0 &&
        (px.fcache = px_fcache_new((size_t)cfg.fetch_cache_bytes, cfg.fetch_cache_max_age_ms)) == NULL) {
        kz_err("cannot start: out of memory for the fetch cache");
        goto out;
    }
    if (px_workers_start(&px, nworkers, &mcfg, px_ready_announce, err, sizeof(err)) != 0) {
        kz_err("cannot start: %s", err);
        goto out;
    }
    if (px_signals_start(&px) != 0 || px_pool_decay_start(&px) != 0) {
        kz_err("cannot start: out of memory");
        goto out;
    }
    if (pid_file && px_pid_file_write(pid_file) != 0)
        goto out;
    kz_info("kzproxy %s starting: zone %s, node %d, %d peers, backend %s%s", PACKAGE_VERSION, cfg.zone,
            cfg.node_id, cfg.npeers, cfg.bootstrap[0], cfg.nbootstrap > 1 ? ",..." : "");
    mc_cluster_start(px.mc, px_ready_cb, &px);
    event_base_dispatch(px.base);
    rc = 0;
out:
    px_workers_stop(&px); /* before what their relayed requests use */
    px_signals_stop(&px);
    if (px.pool_ev)
        event_free(px.pool_ev);
    px_upgrade_free(&px);
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
    px_workers_free(&px); /* after the router and mc: shadows answer into the workers' mailboxes */
    px_backend_security_free(backend_sec);
    if (px.dns)
        evdns_base_free(px.dns, 0);
    if (px.base)
        event_base_free(px.base);
    free(px.xz);
    px_fcache_free(px.fcache);
    px_config_free(&cfg);
    return rc;
}
