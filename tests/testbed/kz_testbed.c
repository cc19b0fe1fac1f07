/*
 * kz-testbed: a librdkafka mock cluster whose brokers are spread over zones
 * (racks), for tests on one machine.
 *
 * Contract with the harness (tests/integration/kzharness.py):
 * - once the cluster answers Metadata with every broker and topic in place, one
 *   JSON line goes to stdout:
 *   {"bootstrap":"127.0.0.1:p1,...","brokers":[{"id":1,"host":"127.0.0.1",
 *    "port":p1,"rack":"a"},...],"topics":[{"name":"t","partitions":12}]}
 * - then it reads control commands from stdin, one a line, and answers each
 *   with one line, "ok" or "error <reason>" (see usage()).
 * - it stops on SIGTERM, SIGINT or SIGHUP, or on stdin EOF with --stdin-eof,
 *   destroys the cluster and exits 0. Bad arguments exit 2, a cluster that
 *   cannot be set up exits 1.
 */
#include "config.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TB_MAX_BROKERS 64
#define TB_MAX_ZONES 16
#define TB_MAX_ZONE_LEN 63
#define TB_MAX_TOPICS 64
#define TB_MAX_TOPIC_LEN 249 /* Kafka's own limit */
#define TB_MAX_PARTITIONS 10000
#define TB_LINE_MAX 1024
#define TB_VERIFY_TIMEOUT_MS 10000
#define TB_KICK_AFTER_MS 5

typedef struct tb_topic {
    char name[TB_MAX_TOPIC_LEN + 1];
    int partitions;
} tb_topic;

typedef struct tb_broker {
    int32_t id;
    char host[64];
    int port;
    char rack[TB_MAX_ZONE_LEN + 1];
} tb_broker;

/*
 * Works around a lost wake-up in librdkafka 2.0.2's mock cluster: its thread
 * serves the op queue and only then drains its wake-up pipe, so the wake-up of
 * an op enqueued in between is thrown away and that op waits for the poll()
 * timeout (1 s). Every rd_kafka_mock_*() call below is bracketed by
 * TB_MOCK(); while one has been in flight for TB_KICK_AFTER_MS, this
 * thread connects to a broker's listener, which makes the mock thread's poll()
 * return and serve the op. The connection is closed at once.
 */
typedef struct tb_kicker {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    int busy;            /* a mock call is in flight */
    int stop;
    int started;
    int port_cnt;
    int ports[TB_MAX_BROKERS]; /* listeners to poke */
    unsigned next;
    pthread_t thread;
} tb_kicker;

typedef struct tb_state {
    int broker_cnt;
    int zone_cnt;
    char zones[TB_MAX_ZONES][TB_MAX_ZONE_LEN + 1];
    int topic_cnt;
    tb_topic topics[TB_MAX_TOPICS];
    int stdin_eof; /* exit on stdin EOF */
    int verbose;
    tb_broker brokers[TB_MAX_BROKERS];
    rd_kafka_t *rk;                /* owner of the mock cluster (no bootstrap) */
    rd_kafka_mock_cluster_t *mcluster;
    tb_kicker kick;
} tb_state;

static int tb_verbose;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kz-testbed [OPTIONS]\n"
            "Run a librdkafka mock Kafka cluster whose brokers are spread over zones.\n"
            "\n"
            "  --brokers N          number of brokers, ids 1..N (default 3, max %d)\n"
            "  --zones a,b,c        racks; broker i gets zones[(i-1) %% nzones] (default a,b,c)\n"
            "  --topic NAME:PARTS   create a topic (repeatable); replication factor min(3,N),\n"
            "                       partition p led by broker (p %% N)+1\n"
            "  --stdin-eof          exit when stdin reaches EOF (dies with its parent)\n"
            "  --verbose            pass librdkafka's warnings and mock debug logs to stderr\n"
            "  --help               this text\n"
            "\n"
            "Once ready, prints one JSON line on stdout describing bootstrap, brokers and\n"
            "topics. Then reads commands on stdin, one a line, each answered with \"ok\"\n"
            "or \"error <reason>\" on stdout:\n"
            "  ping\n"
            "  leader TOPIC PARTITION BROKER     (BROKER -1: no leader)\n"
            "  follower TOPIC PARTITION BROKER   (preferred replica)\n"
            "  down BROKER | up BROKER           (BROKER -1: all)\n"
            "  rtt BROKER MS\n"
            "  rack BROKER RACK\n"
            "  coordinator group|transaction KEY BROKER\n"
            "  topic NAME PARTITIONS             (created like --topic)\n"
            "  error APIKEY ERRCODE [COUNT]      (next COUNT requests of APIKEY fail)\n"
            "Stops on SIGTERM, SIGINT, SIGHUP (and stdin EOF with --stdin-eof); exit 0.\n",
            TB_MAX_BROKERS);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("kz-testbed: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    exit(2);
}

/* Parse a whole decimal integer in [lo, hi]; 0 on success, -1 otherwise. */
static int tb_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;
    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Kafka topic names and our zone names: [A-Za-z0-9._-]+ */
static int tb_name_ok(const char *s, size_t maxlen)
{
    size_t n = strlen(s);
    if (n == 0 || n > maxlen)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void tb_parse_zones(tb_state *st, const char *arg)
{
    char buf[TB_MAX_ZONES * (TB_MAX_ZONE_LEN + 1) + 1];
    char *start = buf;
    if (strlen(arg) >= sizeof(buf))
        die_usage("--zones: list too long");
    strcpy(buf, arg);
    st->zone_cnt = 0;
    /* not strtok: it would skip empty items, and an empty zone is a typo */
    for (;;) {
        char *comma = strchr(start, ',');
        if (comma != NULL)
            *comma = '\0';
        if (st->zone_cnt == TB_MAX_ZONES)
            die_usage("--zones: at most %d zones", TB_MAX_ZONES);
        if (!tb_name_ok(start, TB_MAX_ZONE_LEN))
            die_usage("--zones: bad zone name '%s' (want 1-%d of [A-Za-z0-9._-])", start,
                      TB_MAX_ZONE_LEN);
        strcpy(st->zones[st->zone_cnt++], start);
        if (comma == NULL)
            break;
        start = comma + 1;
    }
}

static void tb_parse_topic(tb_state *st, const char *arg)
{
    const char *colon = strrchr(arg, ':');
    char name[TB_MAX_TOPIC_LEN + 2];
    long parts;
    size_t n;
    if (colon == NULL)
        die_usage("--topic '%s': expected NAME:PARTITIONS", arg);
    n = (size_t)(colon - arg);
    if (n == 0 || n > TB_MAX_TOPIC_LEN)
        die_usage("--topic '%s': topic name must have 1-%d characters", arg, TB_MAX_TOPIC_LEN);
    memcpy(name, arg, n);
    name[n] = '\0';
    if (!tb_name_ok(name, TB_MAX_TOPIC_LEN))
        die_usage("--topic '%s': topic name must use only [A-Za-z0-9._-]", arg);
    if (tb_parse_int(colon + 1, 1, TB_MAX_PARTITIONS, &parts) != 0)
        die_usage("--topic '%s': partitions must be an integer in 1..%d", arg, TB_MAX_PARTITIONS);
    for (int i = 0; i < st->topic_cnt; i++)
        if (strcmp(st->topics[i].name, name) == 0)
            die_usage("--topic '%s': topic given twice", name);
    if (st->topic_cnt == TB_MAX_TOPICS)
        die_usage("--topic: at most %d topics", TB_MAX_TOPICS);
    strcpy(st->topics[st->topic_cnt].name, name);
    st->topics[st->topic_cnt].partitions = (int)parts;
    st->topic_cnt++;
}

static void tb_parse_args(tb_state *st, int argc, char **argv)
{
    enum { OPT_BROKERS = 1, OPT_ZONES, OPT_TOPIC, OPT_STDIN_EOF, OPT_VERBOSE, OPT_HELP };
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, OPT_BROKERS},
        {"zones", required_argument, NULL, OPT_ZONES},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"stdin-eof", no_argument, NULL, OPT_STDIN_EOF},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    long v;
    int c;

    st->broker_cnt = 3;
    tb_parse_zones(st, "a,b,c");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_BROKERS:
            if (tb_parse_int(optarg, 1, TB_MAX_BROKERS, &v) != 0)
                die_usage("--brokers '%s': expected an integer in 1..%d", optarg, TB_MAX_BROKERS);
            st->broker_cnt = (int)v;
            break;
        case OPT_ZONES:
            tb_parse_zones(st, optarg);
            break;
        case OPT_TOPIC:
            tb_parse_topic(st, optarg);
            break;
        case OPT_STDIN_EOF:
            st->stdin_eof = 1;
            break;
        case OPT_VERBOSE:
            st->verbose = 1;
            break;
        case OPT_HELP:
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            die_usage("option '%s' needs an argument", argv[optind - 1]);
        default:
            die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
}

static void tb_kick_poke(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    (void)connect(fd, (struct sockaddr *)&sin, sizeof(sin)); /* loopback: queued at once */
    close(fd);
}

static void *tb_kick_main(void *arg)
{
    tb_kicker *k = arg;
    pthread_mutex_lock(&k->lock);
    while (!k->stop) {
        struct timespec ts;
        if (!k->busy || k->port_cnt == 0) {
            pthread_cond_wait(&k->cond, &k->lock);
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TB_KICK_AFTER_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        /* woken early by end/begin of a call: re-check; timed out: still stuck */
        if (pthread_cond_timedwait(&k->cond, &k->lock, &ts) == ETIMEDOUT && k->busy && !k->stop) {
            int port = k->ports[k->next++ % (unsigned)k->port_cnt];
            pthread_mutex_unlock(&k->lock);
            tb_kick_poke(port);
            pthread_mutex_lock(&k->lock);
        }
    }
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

static int tb_kick_start(tb_kicker *k)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&k->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&k->thread, NULL, tb_kick_main, k) != 0) {
        fprintf(stderr, "kz-testbed: cannot start a thread\n");
        return -1;
    }
    k->started = 1;
    return 0;
}

static void tb_kick_stop(tb_kicker *k)
{
    if (!k->started)
        return;
    pthread_mutex_lock(&k->lock);
    k->stop = 1;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->lock);
    pthread_join(k->thread, NULL);
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->lock);
    k->started = 0;
}

static void tb_kick_set(tb_kicker *k, int busy)
{
    pthread_mutex_lock(&k->lock);
    k->busy = busy;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->lock);
}

static void tb_kick_ports(tb_kicker *k, const tb_broker *brokers, int cnt)
{
    pthread_mutex_lock(&k->lock);
    for (int i = 0; i < cnt; i++)
        k->ports[i] = brokers[i].port;
    k->port_cnt = cnt;
    pthread_mutex_unlock(&k->lock);
}

/* Bracket a mock API call: TB_MOCK(st, err = rd_kafka_mock_...(...)); */
#define TB_MOCK(st, call)                                                                          \
    do {                                                                                           \
        tb_kick_set(&(st)->kick, 1);                                                               \
        call;                                                                                      \
        tb_kick_set(&(st)->kick, 0);                                                               \
    } while (0)

static void tb_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct timespec ts;
    if (level > 3 && !tb_verbose)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(stderr, "kz-testbed: %lld.%03ld %s %d %s: %s\n", (long long)ts.tv_sec,
            ts.tv_nsec / 1000000, rd_kafka_name(rk), level, fac, buf);
}

static rd_kafka_t *tb_client_new(const char *bootstrap, const char *debug)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    rd_kafka_conf_set_log_cb(conf, tb_log_cb);
    if ((bootstrap != NULL &&
         rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) !=
             RD_KAFKA_CONF_OK) ||
        (debug != NULL &&
         rd_kafka_conf_set(conf, "debug", debug, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)) {
        fprintf(stderr, "kz-testbed: rdkafka configuration: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kz-testbed: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Create a topic with replication factor min(3, N) and leaders spread over the
 * brokers (partition p on broker (p % N) + 1), so every zone leads some. */
static int tb_topic_create(tb_state *st, const char *name, int partitions, char *errstr,
                           size_t errstr_size)
{
    int rf = st->broker_cnt < 3 ? st->broker_cnt : 3;
    rd_kafka_resp_err_t err;
    TB_MOCK(st, err = rd_kafka_mock_topic_create(st->mcluster, name, partitions, rf));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "creating topic %s: %s", name, rd_kafka_err2str(err));
        return -1;
    }
    for (int p = 0; p < partitions; p++) {
        TB_MOCK(st, err = rd_kafka_mock_partition_set_leader(st->mcluster, name, p,
                                                             (p % st->broker_cnt) + 1));
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size, "setting leader of %s [%d]: %s", name, p,
                     rd_kafka_err2str(err));
            return -1;
        }
    }
    return 0;
}

/* Split the cluster's bootstrap list "host:port,..." into st->brokers; the mock
 * lists its brokers in id order (checked against Metadata in tb_verify). */
static int tb_parse_bootstraps(tb_state *st, const char *bs)
{
    const char *p = bs;
    int i = 0;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = NULL;
        char portbuf[16];
        long port;
        for (size_t k = 0; k < len; k++)
            if (p[k] == ':')
                colon = p + k;
        if (i == st->broker_cnt || colon == NULL ||
            (size_t)(colon - p) >= sizeof(st->brokers[i].host) ||
            (size_t)(p + len - colon - 1) >= sizeof(portbuf))
            goto bad;
        memcpy(st->brokers[i].host, p, (size_t)(colon - p));
        st->brokers[i].host[colon - p] = '\0';
        memcpy(portbuf, colon + 1, (size_t)(p + len - colon - 1));
        portbuf[p + len - colon - 1] = '\0';
        if (tb_parse_int(portbuf, 1, 65535, &port) != 0)
            goto bad;
        st->brokers[i].port = (int)port;
        st->brokers[i].id = i + 1;
        i++;
        p += len;
        if (*p == ',')
            p++;
    }
    if (i != st->broker_cnt)
        goto bad;
    return 0;
bad:
    fprintf(stderr, "kz-testbed: cannot parse the mock cluster's bootstrap list '%s'\n", bs);
    return -1;
}

/* Ask the cluster for its Metadata through a throw-away client and check it
 * matches what we are about to print: broker ids and ports, partition counts
 * and leaders. Returns 0 when it does. */
static int tb_verify(tb_state *st, const char *bootstrap)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_t *rk = tb_client_new(bootstrap, st->verbose ? "broker,metadata" : NULL);
    rd_kafka_resp_err_t err;
    int rc = -1;

    if (rk == NULL)
        return -1;
    err = rd_kafka_metadata(rk, 1, NULL, &md, TB_VERIFY_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kz-testbed: Metadata from the mock cluster failed: %s\n",
                rd_kafka_err2str(err));
        goto out;
    }
    if (md->broker_cnt != st->broker_cnt) {
        fprintf(stderr, "kz-testbed: Metadata lists %d brokers, expected %d\n", md->broker_cnt,
                st->broker_cnt);
        goto out;
    }
    for (int i = 0; i < md->broker_cnt; i++) {
        int32_t id = md->brokers[i].id;
        if (id < 1 || id > st->broker_cnt || md->brokers[i].port != st->brokers[id - 1].port ||
            strcmp(md->brokers[i].host, st->brokers[id - 1].host) != 0) {
            fprintf(stderr,
                    "kz-testbed: Metadata broker %d at %s:%d does not match the bootstrap "
                    "list\n",
                    id, md->brokers[i].host, md->brokers[i].port);
            goto out;
        }
    }
    for (int t = 0; t < st->topic_cnt; t++) {
        const tb_topic *tt = &st->topics[t];
        const rd_kafka_metadata_topic_t *mt = NULL;
        for (int k = 0; k < md->topic_cnt; k++)
            if (strcmp(md->topics[k].topic, tt->name) == 0)
                mt = &md->topics[k];
        if (mt == NULL || mt->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
            mt->partition_cnt != tt->partitions) {
            fprintf(stderr, "kz-testbed: Metadata does not show topic %s with %d partitions\n",
                    tt->name, tt->partitions);
            goto out;
        }
        for (int k = 0; k < mt->partition_cnt; k++) {
            int32_t p = mt->partitions[k].id;
            if (p < 0 || p >= tt->partitions ||
                mt->partitions[k].leader != (p % st->broker_cnt) + 1) {
                fprintf(stderr, "kz-testbed: Metadata shows %s [%d] led by %d\n", tt->name, p,
                        mt->partitions[k].leader);
                goto out;
            }
        }
    }
    rc = 0;
out:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

static void tb_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static int tb_print_ready(const tb_state *st, const char *bootstrap)
{
    fputs("{\"bootstrap\":", stdout);
    tb_json_str(stdout, bootstrap);
    fputs(",\"brokers\":[", stdout);
    for (int i = 0; i < st->broker_cnt; i++) {
        const tb_broker *b = &st->brokers[i];
        printf("%s{\"id\":%d,\"host\":", i ? "," : "", (int)b->id);
        tb_json_str(stdout, b->host);
        printf(",\"port\":%d,\"rack\":", b->port);
        tb_json_str(stdout, b->rack);
        fputc('}', stdout);
    }
    fputs("],\"topics\":[", stdout);
    for (int t = 0; t < st->topic_cnt; t++) {
        printf("%s{\"name\":", t ? "," : "");
        tb_json_str(stdout, st->topics[t].name);
        printf(",\"partitions\":%d}", st->topics[t].partitions);
    }
    fputs("]}\n", stdout);
    return fflush(stdout) == 0 ? 0 : -1;
}

/* ---- control channel ---- */

static int tb_broker_arg(const tb_state *st, const char *s, int allow_all, int32_t *out)
{
    long v;
    if (tb_parse_int(s, allow_all ? -1 : 1, st->broker_cnt, &v) != 0 || v == 0)
        return -1;
    *out = (int32_t)v;
    return 0;
}

/* Run one command line; writes the answer ("ok" / "error ...") into reply. */
static void tb_command(tb_state *st, char *line, char *reply, size_t reply_size)
{
    char *argv[8];
    int argc = 0;
    char *save = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int32_t broker;
    long v, v2, v3;

    for (char *tok = strtok_r(line, " \t\r", &save); tok != NULL && argc < 8;
         tok = strtok_r(NULL, " \t\r", &save))
        argv[argc++] = tok;
    if (argc == 0) {
        reply[0] = '\0';
        return;
    }

#define TB_NEED(n, syntax)                                                                         \
    do {                                                                                           \
        if (argc != (n)) {                                                                         \
            snprintf(reply, reply_size, "error usage: %s", syntax);                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)
#define TB_BAD(...)                                                                                \
    do {                                                                                           \
        snprintf(reply, reply_size, "error " __VA_ARGS__);                                         \
        return;                                                                                    \
    } while (0)

    if (strcmp(argv[0], "ping") == 0) {
        TB_NEED(1, "ping");
    } else if (strcmp(argv[0], "leader") == 0 || strcmp(argv[0], "follower") == 0) {
        int leader = argv[0][0] == 'l';
        TB_NEED(4, leader ? "leader TOPIC PARTITION BROKER" : "follower TOPIC PARTITION BROKER");
        if (!tb_name_ok(argv[1], TB_MAX_TOPIC_LEN))
            TB_BAD("bad topic name '%s'", argv[1]);
        if (tb_parse_int(argv[2], 0, INT32_MAX, &v) != 0)
            TB_BAD("bad partition '%s'", argv[2]);
        if (tb_broker_arg(st, argv[3], 1, &broker) != 0)
            TB_BAD("bad broker '%s' (1..%d or -1)", argv[3], st->broker_cnt);
        TB_MOCK(st, err = leader ? rd_kafka_mock_partition_set_leader(st->mcluster, argv[1],
                                                                      (int32_t)v, broker)
                                 : rd_kafka_mock_partition_set_follower(st->mcluster, argv[1],
                                                                        (int32_t)v, broker));
    } else if (strcmp(argv[0], "down") == 0 || strcmp(argv[0], "up") == 0) {
        int down = argv[0][0] == 'd';
        TB_NEED(2, down ? "down BROKER" : "up BROKER");
        if (tb_broker_arg(st, argv[1], 1, &broker) != 0)
            TB_BAD("bad broker '%s' (1..%d or -1)", argv[1], st->broker_cnt);
        TB_MOCK(st, err = down ? rd_kafka_mock_broker_set_down(st->mcluster, broker)
                               : rd_kafka_mock_broker_set_up(st->mcluster, broker));
    } else if (strcmp(argv[0], "rtt") == 0) {
        TB_NEED(3, "rtt BROKER MS");
        if (tb_broker_arg(st, argv[1], 1, &broker) != 0)
            TB_BAD("bad broker '%s' (1..%d or -1)", argv[1], st->broker_cnt);
        if (tb_parse_int(argv[2], 0, 3600 * 1000, &v) != 0)
            TB_BAD("bad rtt '%s' (milliseconds)", argv[2]);
        TB_MOCK(st, err = rd_kafka_mock_broker_set_rtt(st->mcluster, broker, (int)v));
    } else if (strcmp(argv[0], "rack") == 0) {
        TB_NEED(3, "rack BROKER RACK");
        if (tb_broker_arg(st, argv[1], 0, &broker) != 0)
            TB_BAD("bad broker '%s' (1..%d)", argv[1], st->broker_cnt);
        if (!tb_name_ok(argv[2], TB_MAX_ZONE_LEN))
            TB_BAD("bad rack '%s'", argv[2]);
        TB_MOCK(st, err = rd_kafka_mock_broker_set_rack(st->mcluster, broker, argv[2]));
    } else if (strcmp(argv[0], "coordinator") == 0) {
        TB_NEED(4, "coordinator group|transaction KEY BROKER");
        if (strcmp(argv[1], "group") != 0 && strcmp(argv[1], "transaction") != 0)
            TB_BAD("coordinator type must be group or transaction");
        if (tb_broker_arg(st, argv[3], 0, &broker) != 0)
            TB_BAD("bad broker '%s' (1..%d)", argv[3], st->broker_cnt);
        TB_MOCK(st, err = rd_kafka_mock_coordinator_set(st->mcluster, argv[1], argv[2], broker));
    } else if (strcmp(argv[0], "topic") == 0) {
        char errstr[256];
        TB_NEED(3, "topic NAME PARTITIONS");
        if (!tb_name_ok(argv[1], TB_MAX_TOPIC_LEN))
            TB_BAD("bad topic name '%s'", argv[1]);
        if (tb_parse_int(argv[2], 1, TB_MAX_PARTITIONS, &v) != 0)
            TB_BAD("bad partition count '%s'", argv[2]);
        if (tb_topic_create(st, argv[1], (int)v, errstr, sizeof(errstr)) != 0)
            TB_BAD("%s", errstr);
    } else if (strcmp(argv[0], "error") == 0) {
        rd_kafka_resp_err_t errs[64];
        if (argc != 3 && argc != 4)
            TB_BAD("usage: error APIKEY ERRCODE [COUNT]");
        if (tb_parse_int(argv[1], 0, INT16_MAX, &v) != 0)
            TB_BAD("bad ApiKey '%s'", argv[1]);
        if (tb_parse_int(argv[2], -1, INT16_MAX, &v2) != 0)
            TB_BAD("bad error code '%s'", argv[2]);
        v3 = 1;
        if (argc == 4 && tb_parse_int(argv[3], 1, 64, &v3) != 0)
            TB_BAD("bad count '%s' (1..64)", argv[3]);
        for (long i = 0; i < v3; i++)
            errs[i] = (rd_kafka_resp_err_t)v2;
        TB_MOCK(st, rd_kafka_mock_push_request_errors_array(st->mcluster, (int16_t)v, (size_t)v3,
                                                            errs));
    } else {
        TB_BAD("unknown command '%s'", argv[0]);
    }
#undef TB_NEED
#undef TB_BAD
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(reply, reply_size, "error %s", rd_kafka_err2str(err));
    else
        snprintf(reply, reply_size, "ok");
}

/* Serve signals and stdin until told to stop. Returns 0 on a clean stop. */
static int tb_run(tb_state *st, int sigfd)
{
    char buf[TB_LINE_MAX];
    size_t used = 0;
    int discarding = 0; /* inside an over-long line */
    int stdin_open = 1;

    for (;;) {
        struct pollfd pfd[2] = {{sigfd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        int n = poll(pfd, stdin_open ? 2 : 1, -1);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            perror("kz-testbed: poll");
            return -1;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si) && st->verbose)
                fprintf(stderr, "kz-testbed: signal %u, stopping\n", si.ssi_signo);
            return 0;
        }
        if (!stdin_open || !(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;

        ssize_t r = read(STDIN_FILENO, buf + used, sizeof(buf) - used);
        if (r == -1 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0) {
            if (st->stdin_eof)
                return 0;
            stdin_open = 0;
            continue;
        }
        used += (size_t)r;
        for (;;) {
            char *nl = memchr(buf, '\n', used);
            char reply[512];
            if (nl == NULL) {
                if (used == sizeof(buf)) { /* too long: answer once, drop to the newline */
                    if (!discarding && printf("error line too long\n") < 0)
                        return -1;
                    fflush(stdout);
                    discarding = 1;
                    used = 0;
                }
                break;
            }
            *nl = '\0';
            if (discarding) {
                discarding = 0;
            } else {
                tb_command(st, buf, reply, sizeof(reply));
                if (reply[0] != '\0') {
                    if (printf("%s\n", reply) < 0 || fflush(stdout) != 0)
                        return -1; /* reader gone (EPIPE): nobody to serve */
                }
            }
            used -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, used);
        }
    }
}

int main(int argc, char **argv)
{
    static tb_state st; /* large; keep it off the stack */
    sigset_t mask;
    int sigfd;
    int rc = 1;
    char errstr[256];
    char *bootstrap = NULL;

    tb_parse_args(&st, argc, argv);
    tb_verbose = st.verbose;

    /* Block the stop signals before librdkafka starts threads, so they all
     * inherit the mask and the signals arrive only through sigfd. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0) {
        fprintf(stderr, "kz-testbed: cannot block signals\n");
        return 1;
    }
    sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sigfd == -1) {
        perror("kz-testbed: signalfd");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    if (tb_kick_start(&st.kick) != 0)
        goto out;
    st.rk = tb_client_new(NULL, st.verbose ? "mock" : NULL);
    if (st.rk == NULL)
        goto out;
    st.mcluster = rd_kafka_mock_cluster_new(st.rk, st.broker_cnt);
    if (st.mcluster == NULL) {
        fprintf(stderr, "kz-testbed: cannot create a mock cluster of %d brokers\n", st.broker_cnt);
        goto out;
    }
    bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(st.mcluster));
    if (bootstrap == NULL || tb_parse_bootstraps(&st, bootstrap) != 0)
        goto out;
    tb_kick_ports(&st.kick, st.brokers, st.broker_cnt);
    for (int i = 0; i < st.broker_cnt; i++) {
        tb_broker *b = &st.brokers[i];
        rd_kafka_resp_err_t err;
        strcpy(b->rack, st.zones[i % st.zone_cnt]);
        TB_MOCK(&st, err = rd_kafka_mock_broker_set_rack(st.mcluster, b->id, b->rack));
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kz-testbed: setting rack of broker %d: %s\n", (int)b->id,
                    rd_kafka_err2str(err));
            goto out;
        }
    }
    for (int t = 0; t < st.topic_cnt; t++) {
        if (tb_topic_create(&st, st.topics[t].name, st.topics[t].partitions, errstr,
                            sizeof(errstr)) != 0) {
            fprintf(stderr, "kz-testbed: %s\n", errstr);
            goto out;
        }
    }
    if (tb_verify(&st, bootstrap) != 0 || tb_print_ready(&st, bootstrap) != 0)
        goto out;
    rc = tb_run(&st, sigfd) == 0 ? 0 : 1;
out:
    free(bootstrap);
    if (st.mcluster != NULL)
        TB_MOCK(&st, rd_kafka_mock_cluster_destroy(st.mcluster));
    tb_kick_stop(&st.kick);
    if (st.rk != NULL)
        rd_kafka_destroy(st.rk);
    rd_kafka_wait_destroyed(5000);
    close(sigfd);
    return rc;
}
