/*
 * kz_bench: the load generator of the benchmark (tests/bench/run_bench.py).
 *
 *   kz_bench produce -b HOST:PORT -t TOPIC [--rate-mbps R | --rate-msgs N]
 *            [--msg-size 1024] [--duration 10] [--warmup 2] [--partition P]
 *            [--idempotent] [-X key=value ...]
 *   kz_bench consume -b HOST:PORT -t TOPIC [--max-bytes N] [--timeout S] [-X ...]
 *
 * produce: librdkafka producer, at a fixed offered rate (paced in steps of
 * KB_PACE_NS) or, without a rate, as fast as the client queue accepts.
 * Messages enqueued during --warmup are delivered but not counted; the
 * window then lasts --duration seconds. Each message carries its enqueue
 * time (monotonic) as opaque, and its delivery report gives the latency,
 * kept in a log-linear histogram (error < 1/KB_SUB) for the percentiles.
 * Throughput is counted bytes (and messages) delivered / the longer of
 * (last - first counted delivery) and (last - first counted enqueue): the
 * first is shifted by about one latency at both ends, so a long latency is
 * not charged twice; the second bounds it when deliveries come in a few
 * bursts (a WAL object carries the acks of many requests at once).
 *
 * consume: assigns every partition of the topic from the beginning (no
 * group protocol, no commits) and reads until every partition reports EOF
 * or --max-bytes have been read; with --duration it then seeks back to the
 * beginning and reads again, pass after pass, until the duration is over
 * (the test bed keeps only the last few MB of each partition, so one pass
 * is too short to time). Throughput is bytes / the sum over passes of
 * (last message - first message of the pass): the seek between passes
 * is not counted.
 *
 * Either mode prints exactly one JSON line on stdout and exits 0 when it
 * measured something, 1 on a failure (the JSON then has "error"), 2 on bad
 * arguments. Every wait is bounded by --timeout.
 */
#include "config.h"

#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KB_SUB_BITS 7
#define KB_SUB (1u << KB_SUB_BITS)      /* sub-buckets per power of two */
#define KB_HIST_N ((64 - KB_SUB_BITS + 1) * KB_SUB)
#define KB_PACE_NS 200000LL             /* pacing step of the fixed-rate producer */
#define KB_MAX_CONF 64
#define KB_MAX_MSG_SIZE (16 * 1024 * 1024)

/* Latency histogram in microseconds: values below KB_SUB exact, above that
 * KB_SUB buckets per power of two. */
typedef struct kb_hist {
    uint64_t counts[KB_HIST_N];
    uint64_t n;
    uint64_t max;
    double sum;
} kb_hist;

typedef struct kb_opts {
    const char *mode;
    const char *bootstrap;
    const char *topic;
    const char *client_id;
    int partition; /* -1: the partitioner decides */
    int msg_size;
    double rate_mbps; /* 0: flat out (unless rate_msgs) */
    double rate_msgs;
    double duration;
    double warmup;
    double timeout;
    int64_t max_bytes;
    int idempotent;
    int conf_cnt;
    const char *conf[KB_MAX_CONF];
} kb_opts;

typedef struct kb_state {
    const kb_opts *o;
    uint64_t window_start_ns; /* messages enqueued before this are warmup */
    uint64_t last_enq_ns;     /* last counted enqueue */
    uint64_t first_dr_ns;     /* first counted delivery */
    uint64_t last_dr_ns;      /* last counted delivery */
    uint64_t enqueued;        /* in the window */
    uint64_t warmup_enqueued;
    uint64_t delivered;
    uint64_t delivered_bytes;
    uint64_t warmup_delivered;
    uint64_t failed;
    uint64_t queue_full; /* times the client queue was full */
    char first_error[256];
    kb_hist lat;
} kb_state;

static volatile sig_atomic_t kb_stop;
static int kb_log_debug; /* -X debug=...: pass librdkafka's debug lines on */

static void kb_on_signal(int sig)
{
    (void)sig;
    kb_stop = 1;
}

static uint64_t kb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void kb_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !kb_stop)
        ;
}

static unsigned kb_hist_index(uint64_t v)
{
    if (v < KB_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= KB_SUB_BITS */
    unsigned shift = e - KB_SUB_BITS;
    return (shift + 1) * KB_SUB + (unsigned)((v >> shift) - KB_SUB);
}

/* The middle of bucket i, in the histogram's unit. */
static double kb_hist_value(unsigned i)
{
    if (i < KB_SUB)
        return (double)i;
    unsigned shift = i / KB_SUB - 1;
    double lo = (double)((uint64_t)(KB_SUB + i % KB_SUB) << shift);
    return lo + (double)((1ull << shift) - 1) / 2.0;
}

static void kb_hist_add(kb_hist *h, uint64_t v)
{
    h->counts[kb_hist_index(v)]++;
    h->n++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
}

/* The q-quantile (0 < q <= 1): the smallest bucket whose cumulative count
 * reaches ceil(q * n). -1 when empty. */
static double kb_hist_quantile(const kb_hist *h, double q)
{
    if (h->n == 0)
        return -1;
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t cum = 0;
    for (unsigned i = 0; i < KB_HIST_N; i++) {
        cum += h->counts[i];
        if (cum >= rank) {
            double v = kb_hist_value(i);
            return v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

static void kb_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void kb_usage(FILE *out)
{
    fputs("Usage: kz_bench produce|consume -b BOOTSTRAP -t TOPIC [OPTIONS]\n"
          "  -b, --bootstrap H:P[,..]  brokers (or a kzproxy) to connect to\n"
          "  -t, --topic NAME          topic\n"
          "  -X, --conf KEY=VALUE      librdkafka property (repeatable)\n"
          "      --client-id ID        client.id (e.g. to name a zone: kz_az=a)\n"
          "      --timeout S           bound on every wait (default 120)\n"
          "produce:\n"
          "      --msg-size N          value bytes per message (default 1024)\n"
          "      --rate-mbps R         offered load in MB/s (10^6 bytes of values)\n"
          "      --rate-msgs N         offered load in messages/s\n"
          "                            (neither: flat out)\n"
          "      --duration S          measured window (default 10)\n"
          "      --warmup S            unmeasured lead-in (default 2)\n"
          "      --partition P         produce to partition P only\n"
          "      --idempotent          enable.idempotence=true\n"
          "consume:\n"
          "      --max-bytes N         stop after N value bytes (default: at EOF)\n"
          "      --duration S          read the topic again from the beginning\n"
          "                            until S seconds have passed (default: once)\n"
          "Prints one JSON line of results.\n",
          out);
}

static void kb_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void kb_die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("kz_bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    exit(2);
}

static double kb_parse_num(const char *opt, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
        kb_die_usage("%s '%s': expected a number in [%g, %g]", opt, s, lo, hi);
    return v;
}

static void kb_parse_args(kb_opts *o, int argc, char **argv)
{
    enum {
        O_CLIENT_ID = 256, O_TIMEOUT, O_MSG_SIZE, O_RATE_MBPS, O_RATE_MSGS, O_DURATION,
        O_WARMUP, O_PARTITION, O_IDEMPOTENT, O_MAX_BYTES, O_HELP
    };
    static const struct option opts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"conf", required_argument, NULL, 'X'},
        {"client-id", required_argument, NULL, O_CLIENT_ID},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"msg-size", required_argument, NULL, O_MSG_SIZE},
        {"rate-mbps", required_argument, NULL, O_RATE_MBPS},
        {"rate-msgs", required_argument, NULL, O_RATE_MSGS},
        {"duration", required_argument, NULL, O_DURATION},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"partition", required_argument, NULL, O_PARTITION},
        {"idempotent", no_argument, NULL, O_IDEMPOTENT},
        {"max-bytes", required_argument, NULL, O_MAX_BYTES},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->partition = -1;
    o->msg_size = 1024;
    o->duration = -1; /* produce: 10; consume: one pass */
    o->warmup = 2;
    o->timeout = 120;
    o->client_id = "kz_bench";
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        kb_usage(stdout);
        exit(0);
    }
    if (argc < 2 || (strcmp(argv[1], "produce") != 0 && strcmp(argv[1], "consume") != 0))
        kb_die_usage("the first argument must be produce or consume");
    o->mode = argv[1];
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":b:t:X:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': o->bootstrap = optarg; break;
        case 't': o->topic = optarg; break;
        case 'X':
            if (o->conf_cnt == KB_MAX_CONF)
                kb_die_usage("-X: at most %d properties", KB_MAX_CONF);
            if (strchr(optarg, '=') == NULL)
                kb_die_usage("-X '%s': expected KEY=VALUE", optarg);
            o->conf[o->conf_cnt++] = optarg;
            if (strncmp(optarg, "debug=", 6) == 0)
                kb_log_debug = 1;
            break;
        case O_CLIENT_ID: o->client_id = optarg; break;
        case O_TIMEOUT: o->timeout = kb_parse_num("--timeout", optarg, 0.1, 86400); break;
        case O_MSG_SIZE:
            o->msg_size = (int)kb_parse_num("--msg-size", optarg, 1, KB_MAX_MSG_SIZE);
            break;
        case O_RATE_MBPS: o->rate_mbps = kb_parse_num("--rate-mbps", optarg, 0, 1e6); break;
        case O_RATE_MSGS: o->rate_msgs = kb_parse_num("--rate-msgs", optarg, 0, 1e9); break;
        case O_DURATION: o->duration = kb_parse_num("--duration", optarg, 0.01, 86400); break;
        case O_WARMUP: o->warmup = kb_parse_num("--warmup", optarg, 0, 86400); break;
        case O_PARTITION: o->partition = (int)kb_parse_num("--partition", optarg, 0, 1e6); break;
        case O_IDEMPOTENT: o->idempotent = 1; break;
        case O_MAX_BYTES: o->max_bytes = (int64_t)kb_parse_num("--max-bytes", optarg, 1, 1e15); break;
        case O_HELP:
        case 'h':
            kb_usage(stdout);
            exit(0);
        case ':': kb_die_usage("option '%s' needs an argument", argv[optind - 1]);
        default: kb_die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        kb_die_usage("unexpected argument '%s'", argv[optind]);
    if (o->bootstrap == NULL || o->topic == NULL)
        kb_die_usage("-b BOOTSTRAP and -t TOPIC are required");
    if (o->rate_mbps > 0 && o->rate_msgs > 0)
        kb_die_usage("give --rate-mbps or --rate-msgs, not both");
    if (o->duration < 0 && strcmp(o->mode, "produce") == 0)
        o->duration = 10;
    if (o->rate_mbps > 0)
        o->rate_msgs = o->rate_mbps * 1e6 / o->msg_size;
}

static void kb_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 4 || kb_log_debug)
        fprintf(stderr, "kz_bench: rdkafka %d %s: %s\n", level, fac, buf);
}

/* A configuration with the common properties and the -X ones; NULL (and a
 * message on stderr) on a bad property. */
static rd_kafka_conf_t *kb_conf_new(const kb_opts *o)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *base[][2] = {
        {"bootstrap.servers", o->bootstrap},
        {"client.id", o->client_id},
    };
    rd_kafka_conf_set_log_cb(conf, kb_log_cb);
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        if (rd_kafka_conf_set(conf, base[i][0], base[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
            goto bad;
    }
    for (int i = 0; i < o->conf_cnt; i++) {
        char key[256];
        const char *eq = strchr(o->conf[i], '=');
        size_t n = (size_t)(eq - o->conf[i]);
        if (n == 0 || n >= sizeof(key)) {
            snprintf(errstr, sizeof(errstr), "bad property '%s'", o->conf[i]);
            goto bad;
        }
        memcpy(key, o->conf[i], n);
        key[n] = '\0';
        if (rd_kafka_conf_set(conf, key, eq + 1, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            goto bad;
    }
    return conf;
bad:
    fprintf(stderr, "kz_bench: configuration: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void kb_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kb_state *st = opaque;
    uint64_t sent = (uint64_t)(uintptr_t)m->_private;
    (void)rk;
    if (m->err) {
        if (st->failed++ == 0)
            snprintf(st->first_error, sizeof(st->first_error), "delivery failed: %s",
                     rd_kafka_err2str(m->err));
        return;
    }
    if (st->window_start_ns == 0 || sent < st->window_start_ns) {
        st->warmup_delivered++;
        return;
    }
    uint64_t now = kb_now_ns();
    kb_hist_add(&st->lat, (now - sent) / 1000);
    if (st->delivered++ == 0)
        st->first_dr_ns = now;
    st->delivered_bytes += m->len;
    st->last_dr_ns = now;
}

static void kb_print_latency(const kb_hist *h)
{
    printf("\"lat_us\":{\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%" PRIu64
           ",\"mean\":%.1f,\"n\":%" PRIu64 "}",
           kb_hist_quantile(h, 0.50), kb_hist_quantile(h, 0.90), kb_hist_quantile(h, 0.99),
           kb_hist_quantile(h, 0.999), h->max, h->n ? h->sum / (double)h->n : -1.0, h->n);
}

static int kb_produce(const kb_opts *o)
{
    char errstr[512];
    kb_state *st = calloc(1, sizeof(*st));
    char *payload = malloc((size_t)o->msg_size);
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    int rc = 1;

    if (st == NULL || payload == NULL) {
        fprintf(stderr, "kz_bench: out of memory\n");
        free(st);
        free(payload);
        return 1;
    }
    st->o = o;
    /* Incompressible bytes, so a codec set with -X cannot flatter a path. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < o->msg_size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        payload[i] = (char)(x >> 24);
    }
    conf = kb_conf_new(o);
    if (conf == NULL)
        goto out;
    if (o->idempotent &&
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kz_bench: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, kb_dr_cb);
    rd_kafka_conf_set_opaque(conf, st);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kz_bench: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }

    const uint64_t t0 = kb_now_ns();
    const uint64_t warm_end = t0 + (uint64_t)(o->warmup * 1e9);
    const uint64_t end = warm_end + (uint64_t)(o->duration * 1e9);
    const uint64_t hard_end = t0 + (uint64_t)(o->timeout * 1e9);
    const double ns_per_msg = o->rate_msgs > 0 ? 1e9 / o->rate_msgs : 0;
    uint64_t n_sent = 0; /* paced messages since t0 */
    uint64_t max_lag_ns = 0;
    int32_t part = o->partition >= 0 ? o->partition : RD_KAFKA_PARTITION_UA;

    while (!kb_stop) {
        uint64_t now = kb_now_ns();
        if (now >= end)
            break;
        if (st->window_start_ns == 0 && now >= warm_end)
            st->window_start_ns = now;
        uint64_t due = ns_per_msg > 0 ? (uint64_t)((double)(now - t0) / ns_per_msg) + 1 : n_sent + 10000;
        /* Enqueue what is due; each message carries its own enqueue time. */
        while (n_sent < due && !kb_stop) {
            uint64_t ts = kb_now_ns();
            if (ts >= end)
                break;
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_PARTITION(part),
                RD_KAFKA_V_VALUE(payload, (size_t)o->msg_size),
                RD_KAFKA_V_MSGFLAGS(0), /* the payload outlives the producer */
                RD_KAFKA_V_OPAQUE((void *)(uintptr_t)ts), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                st->queue_full++;
                rd_kafka_poll(rk, 1);
                continue;
            }
            if (err) {
                snprintf(st->first_error, sizeof(st->first_error), "produce: %s",
                         rd_kafka_err2str(err));
                goto finish;
            }
            n_sent++;
            if (st->window_start_ns != 0) {
                st->enqueued++;
                st->last_enq_ns = ts;
            }
            else
                st->warmup_enqueued++;
            if (ns_per_msg == 0 && (n_sent & 1023) == 0)
                break; /* flat out: serve delivery reports now and then */
        }
        rd_kafka_poll(rk, 0);
        if (ns_per_msg > 0) {
            now = kb_now_ns();
            uint64_t next = t0 + (uint64_t)((double)n_sent * ns_per_msg);
            if (now > next && now - next > max_lag_ns && now >= warm_end)
                max_lag_ns = now - next;
            if (next > now)
                kb_sleep_ns(next - now < (uint64_t)KB_PACE_NS ? (uint64_t)KB_PACE_NS : next - now);
        }
    }
finish:
    if (st->window_start_ns == 0)
        st->window_start_ns = kb_now_ns(); /* a warmup longer than the run: nothing counted */
    {
        uint64_t now = kb_now_ns();
        int left_ms = now < hard_end ? (int)((hard_end - now) / 1000000) : 0;
        rd_kafka_flush(rk, left_ms);
    }
    int undelivered = rd_kafka_outq_len(rk);
    double win = st->delivered > 1 && st->last_dr_ns > st->first_dr_ns
                     ? (double)(st->last_dr_ns - st->first_dr_ns) / 1e9
                     : 0;
    double enq_win = st->last_enq_ns > st->window_start_ns
                         ? (double)(st->last_enq_ns - st->window_start_ns) / 1e9
                         : 0;
    if (st->delivered > 0 && enq_win > win)
        win = enq_win;
    if (st->first_error[0] == '\0' && undelivered > 0)
        snprintf(st->first_error, sizeof(st->first_error),
                 "%d messages undelivered after the %.0f s timeout", undelivered, o->timeout);
    if (st->first_error[0] == '\0' && st->delivered == 0)
        snprintf(st->first_error, sizeof(st->first_error), "no message delivered in the window");
    rc = st->first_error[0] != '\0' && st->delivered == 0 ? 1 : 0;

    printf("{\"mode\":\"produce\",\"topic\":");
    kb_json_str(o->topic);
    printf(",\"msg_size\":%d,\"offered_msgs_per_s\":%.0f,\"offered_mbps\":%.3f,"
           "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"idempotent\":%s,",
           o->msg_size, o->rate_msgs, o->rate_msgs * o->msg_size / 1e6, o->duration, o->warmup,
           o->idempotent ? "true" : "false");
    printf("\"enqueued\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"delivered_bytes\":%" PRIu64
           ",\"warmup_delivered\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"undelivered\":%d,"
           "\"queue_full\":%" PRIu64 ",\"window_s\":%.3f,",
           st->enqueued, st->delivered, st->delivered_bytes, st->warmup_delivered, st->failed,
           undelivered, st->queue_full, win);
    printf("\"mbps\":%.3f,\"msgs_per_s\":%.1f,\"max_pacing_lag_ms\":%.3f,",
           win > 0 ? (double)st->delivered_bytes / 1e6 / win : 0.0,
           win > 0 ? (double)st->delivered / win : 0.0, (double)max_lag_ns / 1e6);
    kb_print_latency(&st->lat);
    if (st->first_error[0] != '\0') {
        printf(",\"error\":");
        kb_json_str(st->first_error);
    }
    printf("}\n");
out:
    if (rk != NULL)
        rd_kafka_destroy(rk);
    free(payload);
    free(st);
    return rc;
}

static int kb_consume(const kb_opts *o)
{
    char errstr[512];
    char group[64];
    rd_kafka_conf_t *conf = kb_conf_new(o);
    rd_kafka_t *rk = NULL;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_topic_t *rkt = NULL;
    char err_msg[256] = "";
    uint64_t msgs = 0, bytes = 0, first_ns = 0, last_ns = 0, win_ns = 0;
    int eof_cnt = 0, part_cnt = 0, passes = 0, rc = 1;

    if (conf == NULL)
        return 1;
    snprintf(group, sizeof(group), "kz_bench-%ld-%" PRIu64, (long)getpid(), kb_now_ns());
    const char *cprops[][2] = {
        {"group.id", group},                /* required by the API; never joined */
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},
    };
    for (size_t i = 0; i < sizeof(cprops) / sizeof(cprops[0]); i++) {
        if (rd_kafka_conf_set(conf, cprops[i][0], cprops[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            fprintf(stderr, "kz_bench: %s\n", errstr);
            rd_kafka_conf_destroy(conf);
            return 1;
        }
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kz_bench: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    const uint64_t t0 = kb_now_ns();
    const uint64_t hard_end = t0 + (uint64_t)(o->timeout * 1e9);
    const uint64_t pass_end = o->duration > 0 ? t0 + (uint64_t)(o->duration * 1e9) : 0;
    rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, (int)(o->timeout * 1000));
    if (err || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0) {
        snprintf(err_msg, sizeof(err_msg), "metadata of %s: %s", o->topic,
                 rd_kafka_err2str(err ? err : md->topic_cnt == 1 ? md->topics[0].err
                                                                 : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto report;
    }
    part_cnt = md->topics[0].partition_cnt;
    parts = rd_kafka_topic_partition_list_new(part_cnt);
    for (int i = 0; i < part_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, o->topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    err = rd_kafka_assign(rk, parts);
    if (err) {
        snprintf(err_msg, sizeof(err_msg), "assign: %s", rd_kafka_err2str(err));
        goto report;
    }
    while (!kb_stop && (o->max_bytes == 0 || (int64_t)bytes < o->max_bytes)) {
        if (eof_cnt == part_cnt) {
            passes++;
            win_ns += last_ns - first_ns;
            first_ns = last_ns = 0;
            if (pass_end == 0 || kb_now_ns() >= pass_end || msgs == 0)
                break;
            /* Another pass: back to the beginning of every partition. */
            eof_cnt = 0;
            for (int i = 0; i < parts->cnt; i++)
                parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
            rd_kafka_error_t *serr = rd_kafka_seek_partitions(rk, parts, (int)(o->timeout * 1000));
            if (serr != NULL) {
                snprintf(err_msg, sizeof(err_msg), "seek: %s", rd_kafka_error_string(serr));
                rd_kafka_error_destroy(serr);
                break;
            }
            continue;
        }
        if (kb_now_ns() >= hard_end) {
            snprintf(err_msg, sizeof(err_msg), "%d of %d partitions at EOF after the %.0f s timeout",
                     eof_cnt, part_cnt, o->timeout);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof_cnt++;
        } else if (m->err) {
            snprintf(err_msg, sizeof(err_msg), "consume: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            break;
        } else {
            last_ns = kb_now_ns();
            if (first_ns == 0)
                first_ns = last_ns;
            msgs++;
            bytes += m->len;
        }
        rd_kafka_message_destroy(m);
    }
report:;
    win_ns += last_ns - first_ns; /* a pass cut short */
    double win = (double)win_ns / 1e9;
    rc = msgs > 0 && err_msg[0] == '\0' ? 0 : 1;
    printf("{\"mode\":\"consume\",\"topic\":");
    kb_json_str(o->topic);
    printf(",\"partitions\":%d,\"passes\":%d,\"msgs\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"window_s\":%.3f,"
           "\"mbps\":%.3f,\"msgs_per_s\":%.1f",
           part_cnt, passes, msgs, bytes, win, win > 0 ? (double)bytes / 1e6 / win : 0.0,
           win > 0 ? (double)msgs / win : 0.0);
    if (err_msg[0] != '\0') {
        printf(",\"error\":");
        kb_json_str(err_msg);
    }
    printf("}\n");
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

int main(int argc, char **argv)
{
    kb_opts o;
    struct sigaction sa;

    kb_parse_args(&o, argc, argv);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kb_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    int rc = strcmp(o.mode, "produce") == 0 ? kb_produce(&o) : kb_consume(&o);
    fflush(stdout);
    return rc;
}
