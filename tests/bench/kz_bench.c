/*
 * kz_bench: the load generator of the benchmark (tests/bench/run_bench.py).
 *
 *   kz_bench produce -b HOST:PORT -t TOPIC [--rate-mbps R | --rate-msgs N]
 *            [--msg-size 1024] [--duration 10] [--warmup 2] [--partition P]
 *            [--messages N] [--idempotent] [-X key=value ...]
 *   kz_bench consume -b HOST:PORT -t TOPIC [--max-bytes N] [--timeout S] [-X ...]
 *   kz_bench idem -b HOST:PORT -t TOPIC [--partition 0] [--batch-records 15]
 *            [--msg-size 1024] [--max-in-flight 5] [--duration 10] [--warmup 2]
 *
 * produce: librdkafka producer, at a fixed offered rate (paced in steps of
 * KB_PACE_NS) or, without a rate, as fast as the client queue accepts.
 * Messages enqueued during --warmup are delivered but not counted; the
 * window then lasts --duration seconds (longer, up to --timeout, if the
 * client queue stays full until then). Each message carries its enqueue
 * time (monotonic) as opaque, and its delivery report gives the latency,
 * kept in a log-linear histogram (error < 1/KB_SUB) for the percentiles.
 * Throughput is counted bytes (and messages) delivered / the longer of
 * (last - first counted delivery) and (last - first counted enqueue): the
 * first is shifted by about one latency at both ends, so a long latency is
 * not charged twice; the second bounds it when deliveries come in a few
 * bursts (a WAL object carries the acks of many requests at once).
 * With --messages N it enqueues exactly N messages (warm-up included) and
 * stops, whatever the duration: a fixed amount of work, for counting the
 * instructions a proxy spends on it (run_bench.py's instr scenario).
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
 * idem: kz_bench's own idempotent producer, written against the protocol
 * with the project's codec (no librdkafka), shaped like the Java client's
 * with max.in.flight.requests.per.connection=5: ApiVersions and Metadata on
 * the bootstrap connection, InitProducerId (no transactional id) for a
 * producer id and epoch, then, on one connection to the partition's leader
 * as Metadata advertises it (through kzproxy: a proxy), one record batch
 * (magic 2, CRC32C, that producer id and epoch, base sequences following
 * each other) per ProduceRequest (acks=-1), with up to --max-in-flight
 * requests outstanding and answers expected in order. librdkafka cannot
 * serve here: an idempotent librdkafka producer stops sending a
 * partition's next request once max.in.flight MESSAGES are in flight, so
 * with batches of more than that it keeps one request outstanding. Flat
 * out, no retries: after the first failed request nothing more is sent
 * (a gap in the sequence makes every later batch out of order), and the
 * answers of those in flight are counted too, per error code.
 *
 * Order is checked twice. A broker that checks sequences answers a batch
 * that arrives before its predecessor with OUT_OF_ORDER_SEQUENCE_NUMBER
 * (45) and one that arrives again with DUPLICATE_SEQUENCE_NUMBER (46):
 * Kafka does for every idempotent producer, the librdkafka mock of the test
 * bed only for one with a transactional id (--transactional-id: the
 * producer then finds its coordinator, takes the id with InitProducerId,
 * adds the partition with AddPartitionsToTxn and marks its batches
 * transactional; it never commits). And on any broker, the base offsets
 * answered must follow each other batch after batch, as the broker
 * assigns them in arrival order: a reordered or repeated batch shows as an
 * offset going back or a gap (so no other producer may write to the
 * partition during the run). --skip-sequence-at makes one request leave
 * a gap, to show that the broker's check is live.
 *
 * Latency is per request, from handing it to the socket to reading its
 * answer. Requests sent during --warmup are not counted; the window runs
 * from its start to the last counted answer, so every counted request was
 * sent and answered inside it. Exits 1 if any request failed or the
 * offsets were out of order.
 *
 * Every mode prints exactly one JSON line on stdout and exits 0 when it
 * measured something (idem: and nothing failed), 1 on a failure (the JSON
 * then has "error"), 2 on bad arguments. Every wait is bounded by --timeout.
 */
#include "config.h"

#include "codec/kc_crc32c.h"
#include "codec/kc_msg.h"
#include "codec/kc_proto.h"
#include "common/kz_addr.h"

#include <event2/buffer.h>
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KB_SUB_BITS 7
#define KB_SUB (1u << KB_SUB_BITS)      /* sub-buckets per power of two */
#define KB_HIST_N ((64 - KB_SUB_BITS + 1) * KB_SUB)
#define KB_PACE_NS 200000LL             /* pacing step of the fixed-rate producer */
#define KB_MAX_CONF 64
#define KB_MAX_MSG_SIZE (16 * 1024 * 1024)
#define KB_IDEM_MAX_INFLIGHT 64         /* bound of --max-in-flight */
#define KB_IDEM_MAX_BATCH (64 * 1024 * 1024) /* bound of a batch's value bytes */

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
    int64_t messages;  /* produce: 0, or enqueue exactly this many and stop */
    int idempotent;
    int batch_records; /* idem: records per batch (one batch per request) */
    int max_inflight;  /* idem: requests outstanding at most */
    const char *transactional_id; /* idem: NULL, or take this transactional id */
    int64_t skip_sequence_at;     /* idem: -1, or the request sent with a sequence gap */
    int trace;                    /* idem: a line per answer on stderr */
    int rate_given;    /* a --rate-* option was given */
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
    fputs("Usage: kz_bench produce|consume|idem -b BOOTSTRAP -t TOPIC [OPTIONS]\n"
          "  -b, --bootstrap H:P[,..]  brokers (or a kzproxy) to connect to\n"
          "                            (idem: the first one)\n"
          "  -t, --topic NAME          topic\n"
          "  -X, --conf KEY=VALUE      librdkafka property (repeatable; not idem)\n"
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
          "      --messages N          enqueue exactly N messages in all (warm-up\n"
          "                            included), then stop: --duration is ignored\n"
          "      --idempotent          enable.idempotence=true\n"
          "consume:\n"
          "      --max-bytes N         stop after N value bytes (default: at EOF)\n"
          "      --duration S          read the topic again from the beginning\n"
          "                            until S seconds have passed (default: once)\n"
          "idem (kz_bench's own idempotent producer, pipelined like the Java client's):\n"
          "      --partition P         the partition (default 0)\n"
          "      --batch-records N     records per batch, one batch per request (default 15)\n"
          "      --msg-size N          value bytes per record (default 1024)\n"
          "      --max-in-flight N     requests outstanding at most (default 5)\n"
          "      --duration S, --warmup S   as for produce\n"
          "      --transactional-id ID take a transactional id (the librdkafka mock checks\n"
          "                            sequences only for such producers); no transaction\n"
          "                            is ever committed\n"
          "      --skip-sequence-at N  self-test: request N (from 0) leaves a gap in the\n"
          "                            sequence, which a broker that checks answers with\n"
          "                            OUT_OF_ORDER_SEQUENCE_NUMBER\n"
          "      --trace               one line per answer on stderr\n"
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
        O_WARMUP, O_PARTITION, O_IDEMPOTENT, O_MAX_BYTES, O_BATCH_RECORDS, O_MAX_IN_FLIGHT,
        O_TXN_ID, O_SKIP_SEQ, O_TRACE, O_MESSAGES, O_HELP
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
        {"batch-records", required_argument, NULL, O_BATCH_RECORDS},
        {"max-in-flight", required_argument, NULL, O_MAX_IN_FLIGHT},
        {"transactional-id", required_argument, NULL, O_TXN_ID},
        {"skip-sequence-at", required_argument, NULL, O_SKIP_SEQ},
        {"trace", no_argument, NULL, O_TRACE},
        {"messages", required_argument, NULL, O_MESSAGES},
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
    o->batch_records = 15; /* 15 values of 1 KiB: what fits the Java client's 16 KiB batch.size */
    o->max_inflight = 5;
    o->skip_sequence_at = -1;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        kb_usage(stdout);
        exit(0);
    }
    if (argc < 2 || (strcmp(argv[1], "produce") != 0 && strcmp(argv[1], "consume") != 0 &&
                     strcmp(argv[1], "idem") != 0))
        kb_die_usage("the first argument must be produce, consume or idem");
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
        case O_RATE_MBPS:
            o->rate_mbps = kb_parse_num("--rate-mbps", optarg, 0, 1e6);
            o->rate_given = 1;
            break;
        case O_RATE_MSGS:
            o->rate_msgs = kb_parse_num("--rate-msgs", optarg, 0, 1e9);
            o->rate_given = 1;
            break;
        case O_DURATION: o->duration = kb_parse_num("--duration", optarg, 0.01, 86400); break;
        case O_WARMUP: o->warmup = kb_parse_num("--warmup", optarg, 0, 86400); break;
        case O_PARTITION: o->partition = (int)kb_parse_num("--partition", optarg, 0, 1e6); break;
        case O_IDEMPOTENT: o->idempotent = 1; break;
        case O_MAX_BYTES: o->max_bytes = (int64_t)kb_parse_num("--max-bytes", optarg, 1, 1e15); break;
        case O_BATCH_RECORDS:
            o->batch_records = (int)kb_parse_num("--batch-records", optarg, 1, 1e6);
            break;
        case O_MAX_IN_FLIGHT:
            o->max_inflight = (int)kb_parse_num("--max-in-flight", optarg, 1, KB_IDEM_MAX_INFLIGHT);
            break;
        case O_TXN_ID:
            if (optarg[0] == '\0' || strlen(optarg) > 255)
                kb_die_usage("--transactional-id: 1 to 255 characters");
            o->transactional_id = optarg;
            break;
        case O_SKIP_SEQ:
            o->skip_sequence_at = (int64_t)kb_parse_num("--skip-sequence-at", optarg, 0, 1e12);
            break;
        case O_TRACE: o->trace = 1; break;
        case O_MESSAGES: o->messages = (int64_t)kb_parse_num("--messages", optarg, 1, 1e12); break;
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
    if (strcmp(o->mode, "idem") != 0 && (o->transactional_id || o->skip_sequence_at >= 0 || o->trace))
        kb_die_usage("--transactional-id, --skip-sequence-at and --trace are for idem");
    if (strcmp(o->mode, "produce") != 0 && o->messages > 0)
        kb_die_usage("--messages is for produce");
    if (strcmp(o->mode, "idem") == 0) {
        /* Flat out with its own protocol code: librdkafka's options do not apply. */
        if (o->conf_cnt > 0 || o->rate_given || o->idempotent || o->max_bytes > 0)
            kb_die_usage("idem takes none of -X, --rate-mbps, --rate-msgs, --idempotent, --max-bytes");
        if ((int64_t)o->batch_records * o->msg_size > KB_IDEM_MAX_BATCH)
            kb_die_usage("--batch-records x --msg-size: at most %d bytes per batch", KB_IDEM_MAX_BATCH);
        if (o->partition < 0)
            o->partition = 0;
    }
    if (o->duration < 0 && strcmp(o->mode, "consume") != 0)
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
    const uint64_t hard_end = t0 + (uint64_t)(o->timeout * 1e9);
    /* --messages: the count ends the run, the timeout bounds it. */
    const uint64_t end = o->messages > 0 ? hard_end : warm_end + (uint64_t)(o->duration * 1e9);
    const uint64_t max_sent = o->messages > 0 ? (uint64_t)o->messages : UINT64_MAX;
    const double ns_per_msg = o->rate_msgs > 0 ? 1e9 / o->rate_msgs : 0;
    uint64_t n_sent = 0; /* paced messages since t0 */
    uint64_t max_lag_ns = 0;
    int32_t part = o->partition >= 0 ? o->partition : RD_KAFKA_PARTITION_UA;

    while (!kb_stop && n_sent < max_sent) {
        uint64_t now = kb_now_ns();
        /* Flat out, the client queue can stay full through a short window
         * (a loaded machine, the sanitizers): the window then runs on until
         * one message of its own is enqueued, or the timeout. */
        if (now >= end && (st->enqueued > 0 || now >= hard_end))
            break;
        if (st->window_start_ns == 0 && now >= warm_end)
            st->window_start_ns = now;
        uint64_t due = ns_per_msg > 0 ? (uint64_t)((double)(now - t0) / ns_per_msg) + 1 : n_sent + 10000;
        if (due > max_sent)
            due = max_sent;
        /* Enqueue what is due; each message carries its own enqueue time. */
        while (n_sent < due && !kb_stop) {
            uint64_t ts = kb_now_ns();
            if (ts >= end && (st->enqueued > 0 || ts >= hard_end))
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
        if (ns_per_msg > 0 && n_sent < max_sent) {
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
    printf(",\"messages\":%" PRId64 ",\"msg_size\":%d,\"offered_msgs_per_s\":%.0f,\"offered_mbps\":%.3f,"
           "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"idempotent\":%s,",
           o->messages, o->msg_size, o->rate_msgs, o->rate_msgs * o->msg_size / 1e6, o->duration, o->warmup,
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

/* ======================= idem: kz_bench's own idempotent producer ======================= */

#define KB_IDEM_TIMEOUT_MS 30000    /* ProduceRequest timeout, the Java client's request.timeout.ms */
#define KB_IDEM_RETRY_NS 100000000ull /* between Metadata / InitProducerId attempts */
#define KB_IDEM_MAX_FRAME (256u * 1024 * 1024)
#define KB_IDEM_MAX_CODES 32

/* Names of the errors an idempotent producer may meet; kc_err_name knows
 * only those kzproxy produces itself. */
static const char *kb_err_name(int16_t code)
{
    switch (code) {
    case 10: return "MESSAGE_TOO_LARGE";
    case 19: return "NOT_ENOUGH_REPLICAS";
    case 20: return "NOT_ENOUGH_REPLICAS_AFTER_APPEND";
    case 45: return "OUT_OF_ORDER_SEQUENCE_NUMBER";
    case 46: return "DUPLICATE_SEQUENCE_NUMBER";
    case 47: return "INVALID_PRODUCER_EPOCH";
    case 49: return "INVALID_PRODUCER_ID_MAPPING";
    case 59: return "UNKNOWN_PRODUCER_ID";
    case 87: return "INVALID_RECORD";
    default: return kc_err_name(code);
    }
}

/* One connection: a non-blocking socket with its two buffers. */
typedef struct kb_conn {
    int fd;
    int dead;          /* closed or failed: why says how */
    char why[256];
    char addr[300];    /* host:port */
    const char *client_id;
    struct evbuffer *in, *out;
    int32_t next_corr;
    int16_t vmin[KC_API_MAX + 1];
    int16_t vmax[KC_API_MAX + 1]; /* -1: not offered */
} kb_conn;

static int kb_ms_left(uint64_t deadline, int cap_ms)
{
    uint64_t now = kb_now_ns();
    if (now >= deadline)
        return 0;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    return ms > (uint64_t)cap_ms ? cap_ms : (int)ms;
}

static int kb_conn_fail(kb_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int kb_conn_fail(kb_conn *c, const char *fmt, ...)
{
    if (!c->dead) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof(c->why), fmt, ap);
        va_end(ap);
        c->dead = 1;
    }
    return -1;
}

static void kb_conn_close(kb_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->in != NULL)
        evbuffer_free(c->in);
    if (c->out != NULL)
        evbuffer_free(c->out);
    c->in = c->out = NULL;
}

/* Connect (bounded by deadline). 0, or -1 with c->why. TCP_NODELAY, as the
 * Java client sets it. */
static int kb_conn_open(kb_conn *c, const char *host, int port, const char *client_id,
                        uint64_t deadline)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    int fd = -1, e = 0;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->client_id = client_id;
    c->next_corr = 1;
    for (int i = 0; i <= KC_API_MAX; i++)
        c->vmax[i] = -1;
    snprintf(c->addr, sizeof(c->addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    snprintf(portstr, sizeof(portstr), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0)
        return kb_conn_fail(c, "resolve %s: %s", c->addr, gai_strerror(gai));
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        e = errno;
        if (e == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int r;
            while ((r = poll(&p, 1, kb_ms_left(deadline, 1000))) == 0 && kb_now_ns() < deadline && !kb_stop)
                ;
            if (r < 0)
                e = errno;
            else if (r == 0)
                e = ETIMEDOUT;
            else {
                socklen_t sl = sizeof(e);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
                    e = errno;
                if (e == 0)
                    break;
            }
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return kb_conn_fail(c, "connect to %s: %s", c->addr, strerror(e));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    if (c->in == NULL || c->out == NULL)
        return kb_conn_fail(c, "out of memory");
    return 0;
}

/* Write what the socket takes now. 0, or -1 (c->dead). */
static int kb_conn_flush(kb_conn *c)
{
    while (evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        return kb_conn_fail(c, "send to %s: %s", c->addr, n == 0 ? "nothing written" : strerror(errno));
    }
    return 0;
}

/* Wait up to timeout_ms for the socket; write what is queued, read what has
 * come. 0, or -1 once the connection is closed or failed (answers read
 * before that stay in c->in). */
static int kb_conn_poll(kb_conn *c, int timeout_ms)
{
    if (c->dead)
        return -1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN | (evbuffer_get_length(c->out) ? POLLOUT : 0)};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : kb_conn_fail(c, "poll: %s", strerror(errno));
    if (r == 0)
        return 0;
    if ((p.revents & POLLOUT) && kb_conn_flush(c) < 0)
        return -1;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        for (;;) {
            int n = evbuffer_read(c->in, c->fd, 65536);
            if (n > 0)
                continue;
            if (n == 0)
                return kb_conn_fail(c, "%s closed the connection", c->addr);
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno != EINTR)
                return kb_conn_fail(c, "receive from %s: %s", c->addr, strerror(errno));
        }
    }
    return 0;
}

/* Frame a request (header, then body, which is emptied), queue it and try
 * to send it. Its correlation id, or -1 (c->dead). */
static int32_t kb_conn_send(kb_conn *c, int16_t key, int16_t version, struct evbuffer *body)
{
    struct evbuffer *f = evbuffer_new();
    kc_req_hdr h;
    kc_wr w;

    if (f == NULL)
        return kb_conn_fail(c, "out of memory");
    memset(&h, 0, sizeof(h));
    h.api_key = key;
    h.api_version = version;
    h.correlation_id = c->next_corr;
    h.client_id = kc_str_c(c->client_id);
    c->next_corr = c->next_corr == INT32_MAX ? 1 : c->next_corr + 1;
    kc_wr_init(&w, f, NULL);
    kc_req_hdr_encode(&w, &h);
    int bad = w.err || evbuffer_add_buffer(f, body) != 0 || kc_wr_frame_size(f) != 0 ||
              evbuffer_add_buffer(c->out, f) != 0;
    evbuffer_free(f);
    if (bad)
        return kb_conn_fail(c, "out of memory");
    if (kb_conn_flush(c) < 0)
        return -1;
    return h.correlation_id;
}

/* Take one whole answer off the input: 1 (*out, to release), 0 when it has
 * not all come yet, -1 when its size is impossible (c->dead). */
static int kb_conn_frame(kb_conn *c, kc_frame **out)
{
    uint8_t b[4];
    if (evbuffer_copyout(c->in, b, 4) < 4)
        return 0;
    uint32_t n = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (n < 4 || n > KB_IDEM_MAX_FRAME)
        return kb_conn_fail(c, "%s sent a frame of %" PRIu32 " bytes", c->addr, n);
    if (evbuffer_get_length(c->in) < 4 + (size_t)n)
        return 0;
    kc_frame *f = kc_frame_new(n);
    if (f == NULL)
        return kb_conn_fail(c, "out of memory");
    evbuffer_drain(c->in, 4);
    evbuffer_remove(c->in, f->data, n);
    *out = f;
    return 1;
}

/* Send a request and wait (until deadline) for its answer, with nothing
 * else outstanding: the answer (to release) with *rd after its header, or
 * NULL (c->dead). */
static kc_frame *kb_conn_call(kb_conn *c, int16_t key, int16_t version, struct evbuffer *body,
                              uint64_t deadline, kc_rd *rd)
{
    int32_t corr = kb_conn_send(c, key, version, body);
    if (corr < 0)
        return NULL;
    for (;;) {
        kc_frame *f = NULL;
        int r = kb_conn_frame(c, &f);
        if (r < 0)
            return NULL;
        if (r == 1) {
            kc_rd_init(rd, f->data, f->len);
            int32_t got = kc_resp_hdr_decode(rd, kc_resp_hdr_version(key, version));
            if (rd->err == NULL && got == corr)
                return f;
            kb_conn_fail(c, "%s answer from %s: %s", kc_api_name(key), c->addr,
                         rd->err ? rd->err : "unexpected correlation id");
            kc_frame_release(f);
            return NULL;
        }
        if (kb_stop || kb_now_ns() >= deadline) {
            kb_conn_fail(c, "no %s answer from %s in time", kc_api_name(key), c->addr);
            return NULL;
        }
        if (kb_conn_poll(c, kb_ms_left(deadline, 100)) < 0)
            return NULL;
    }
}

/* kb_conn_call with the body w wrote (its write error counts as out of
 * memory), which is freed. The answer, or NULL with err. */
static kc_frame *kb_call(kb_conn *c, int16_t key, int16_t version, kc_wr *w, uint64_t deadline,
                         kc_rd *rd, char *err, size_t errsz)
{
    kc_frame *f = w->err ? NULL : kb_conn_call(c, key, version, w->eb, deadline, rd);
    evbuffer_free(w->eb);
    if (f == NULL)
        snprintf(err, errsz, "%s", c->dead ? c->why : "out of memory");
    return f;
}

/* Whether there is time to ask again after a pause of KB_IDEM_RETRY_NS. */
static int kb_may_retry(uint64_t deadline)
{
    return !kb_stop && kb_now_ns() + KB_IDEM_RETRY_NS < deadline;
}

/* ApiVersions: v3 (as current clients send it), v0 when the server says
 * UNSUPPORTED_VERSION. Fills c->vmin/vmax. 0, or -1 (c->dead). */
static int kb_conn_versions(kb_conn *c, uint64_t deadline)
{
    int16_t v = 3;
    for (;;) {
        struct evbuffer *body = evbuffer_new();
        kc_apiversions_req req;
        kc_wr w;
        kc_rd rd;
        if (body == NULL)
            return kb_conn_fail(c, "out of memory");
        memset(&req, 0, sizeof(req));
        req.client_software_name = kc_str_c("kz_bench");
        req.client_software_version = kc_str_c(PACKAGE_VERSION);
        kc_wr_init(&w, body, NULL);
        kc_apiversions_req_encode(&w, v, &req);
        kc_frame *f = w.err ? NULL : kb_conn_call(c, KC_API_APIVERSIONS, v, body, deadline, &rd);
        evbuffer_free(body);
        if (f == NULL)
            return kb_conn_fail(c, "out of memory");
        kc_rd peek = rd;
        int16_t first_code = kc_rd_i16(&peek);
        kc_arena a;
        kc_apiversions_resp resp;
        kc_arena_init(&a);
        int bad = kc_apiversions_resp_decode(&rd, v, &a, &resp);
        if (v == 3 && first_code == KC_ERR_UNSUPPORTED_VERSION) {
            kc_arena_destroy(&a);
            kc_frame_release(f);
            v = 0;
            continue;
        }
        if (bad || resp.error_code != 0) {
            kb_conn_fail(c, "ApiVersions from %s: %s", c->addr,
                         bad ? rd.err : kb_err_name(resp.error_code));
        } else {
            for (int32_t i = 0; i < resp.napi_keys; i++) {
                const kc_apiversions_key *k = &resp.api_keys[i];
                if (k->api_key >= 0 && k->api_key <= KC_API_MAX && k->max_version >= k->min_version) {
                    c->vmin[k->api_key] = k->min_version;
                    c->vmax[k->api_key] = k->max_version;
                }
            }
        }
        kc_arena_destroy(&a);
        kc_frame_release(f);
        return c->dead ? -1 : 0;
    }
}

/* The highest version of key in [lo, hi] that the server offers, or -1. */
static int16_t kb_conn_version(const kb_conn *c, int16_t key, int16_t lo, int16_t hi)
{
    if (c->vmax[key] < 0)
        return -1;
    int16_t v = hi < c->vmax[key] ? hi : c->vmax[key];
    return v >= lo && v >= c->vmin[key] ? v : -1;
}

/* The leader of topic/part as Metadata advertises it; asks again every
 * KB_IDEM_RETRY_NS while the topic or its leader is not known, until
 * deadline. 0, or -1 with err. */
static int kb_find_leader(kb_conn *c, const char *topic, int32_t part, uint64_t deadline,
                          int32_t *leader, char *host, size_t hostsz, int *port, int16_t *vout,
                          char *err, size_t errsz)
{
    int16_t v = kb_conn_version(c, KC_API_METADATA, 1, 12);
    *vout = v;
    if (v < 0) {
        snprintf(err, errsz, "%s offers no Metadata version from 1 to 12", c->addr);
        return -1;
    }
    for (;;) {
        struct evbuffer *body = evbuffer_new();
        kc_metadata_req req;
        kc_metadata_req_topic t;
        kc_wr w;
        kc_rd rd;
        char why[200] = "";
        if (body == NULL) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        memset(&req, 0, sizeof(req));
        memset(&t, 0, sizeof(t));
        t.name = kc_str_c(topic);
        req.ntopics = 1;
        req.topics = &t;
        req.allow_auto_topic_creation = 0;
        kc_wr_init(&w, body, NULL);
        kc_metadata_req_encode(&w, v, &req);
        kc_frame *f = kb_call(c, KC_API_METADATA, v, &w, deadline, &rd, err, errsz);
        if (f == NULL)
            return -1;
        kc_arena a;
        kc_metadata_resp resp;
        kc_arena_init(&a);
        if (kc_metadata_resp_decode(&rd, v, &a, &resp) != 0) {
            snprintf(err, errsz, "Metadata from %s: %s", c->addr, rd.err);
            kc_arena_destroy(&a);
            kc_frame_release(f);
            return -1;
        }
        const kc_metadata_topic *tp = NULL;
        const kc_metadata_partition *pp = NULL;
        const kc_metadata_broker *b = NULL;
        for (int32_t i = 0; i < resp.ntopics && tp == NULL; i++)
            if (kc_str_eq(resp.topics[i].name, topic))
                tp = &resp.topics[i];
        for (int32_t i = 0; tp != NULL && i < tp->npartitions && pp == NULL; i++)
            if (tp->partitions[i].partition_index == part)
                pp = &tp->partitions[i];
        for (int32_t i = 0; pp != NULL && i < resp.nbrokers && b == NULL; i++)
            if (resp.brokers[i].node_id == pp->leader_id)
                b = &resp.brokers[i];
        if (tp == NULL)
            snprintf(why, sizeof(why), "the topic is not in the answer");
        else if (tp->error_code != 0)
            snprintf(why, sizeof(why), "%s", kb_err_name(tp->error_code));
        else if (pp == NULL)
            snprintf(why, sizeof(why), "no such partition");
        else if (pp->error_code != 0)
            snprintf(why, sizeof(why), "%s", kb_err_name(pp->error_code));
        else if (b == NULL)
            snprintf(why, sizeof(why), "leader %" PRId32 " is not among the brokers", pp->leader_id);
        else if (b->host.len <= 0 || (size_t)b->host.len >= hostsz)
            snprintf(why, sizeof(why), "leader %" PRId32 " has a bad host", pp->leader_id);
        else {
            memcpy(host, b->host.p, (size_t)b->host.len);
            host[b->host.len] = '\0';
            *port = b->port;
            *leader = b->node_id;
        }
        kc_arena_destroy(&a);
        kc_frame_release(f);
        if (why[0] == '\0')
            return 0;
        if (!kb_may_retry(deadline)) {
            snprintf(err, errsz, "Metadata of %s [%" PRId32 "] from %s: %s", topic, part, c->addr, why);
            return -1;
        }
        kb_sleep_ns(KB_IDEM_RETRY_NS);
    }
}

/* Whether a coordinator's answer says: ask again soon. */
static int kb_coordinator_retriable(int16_t code)
{
    return code == 14 /* COORDINATOR_LOAD_IN_PROGRESS */ || code == KC_ERR_COORDINATOR_NOT_AVAILABLE ||
           code == KC_ERR_NOT_COORDINATOR || code == 51 /* CONCURRENT_TRANSACTIONS */;
}

/* InitProducerId, with txid or without (null) a transactional id; there is
 * no codec for it, the few fields are written here. Asks again while the
 * coordinator is not available, until deadline. 0, or -1 with err. */
static int kb_init_producer_id(kb_conn *c, const char *txid, uint64_t deadline, int64_t *pid,
                               int16_t *epoch, int16_t *vout, char *err, size_t errsz)
{
    int16_t v = kb_conn_version(c, KC_API_INITPRODUCERID, 0, 4);
    const int flex = v >= 2;
    *vout = v;
    if (v < 0) {
        snprintf(err, errsz, "%s offers no InitProducerId version from 0 to 4", c->addr);
        return -1;
    }
    for (;;) {
        struct evbuffer *body = evbuffer_new();
        kc_wr w;
        kc_rd rd;
        if (body == NULL) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        kc_wr_init(&w, body, NULL);
        kc_wr_string(&w, kc_str_c(txid), flex); /* TransactionalId (NULL: null) */
        kc_wr_i32(&w, 60000);                   /* TransactionTimeoutMs */
        if (v >= 3) {
            kc_wr_i64(&w, -1); /* ProducerId: none yet */
            kc_wr_i16(&w, -1); /* ProducerEpoch */
        }
        if (flex)
            kc_wr_tags(&w, NULL);
        kc_frame *f = kb_call(c, KC_API_INITPRODUCERID, v, &w, deadline, &rd, err, errsz);
        if (f == NULL)
            return -1;
        (void)kc_rd_i32(&rd); /* ThrottleTimeMs */
        int16_t code = kc_rd_i16(&rd);
        *pid = kc_rd_i64(&rd);
        *epoch = kc_rd_i16(&rd);
        if (flex)
            kc_rd_tags(&rd, NULL);
        int bad = kc_rd_finish(&rd) != 0;
        kc_frame_release(f);
        if (bad) {
            snprintf(err, errsz, "InitProducerId from %s: %s", c->addr, rd.err);
            return -1;
        }
        if (code == 0 && *pid >= 0)
            return 0;
        if (!kb_coordinator_retriable(code) || !kb_may_retry(deadline)) {
            snprintf(err, errsz, "InitProducerId from %s: %s (%d)", c->addr,
                     code ? kb_err_name(code) : "no producer id", code);
            return -1;
        }
        kb_sleep_ns(KB_IDEM_RETRY_NS);
    }
}

/* The transaction coordinator of txid (FindCoordinator, key type 1), as
 * advertised: through kzproxy, a proxy of the client's zone. Asks again
 * while it is not available, until deadline. 0, or -1 with err. */
static int kb_find_coordinator(kb_conn *c, const char *txid, uint64_t deadline, char *host,
                               size_t hostsz, int *port, char *err, size_t errsz)
{
    int16_t v = kb_conn_version(c, KC_API_FINDCOORDINATOR, 1, 4);
    if (v < 0) {
        snprintf(err, errsz, "%s offers no FindCoordinator version from 1 to 4", c->addr);
        return -1;
    }
    for (;;) {
        struct evbuffer *body = evbuffer_new();
        kc_findcoordinator_req req;
        kc_str key = kc_str_c(txid);
        kc_wr w;
        kc_rd rd;
        if (body == NULL) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        memset(&req, 0, sizeof(req));
        req.key = key;
        req.key_type = 1; /* transaction */
        req.ncoordinator_keys = 1;
        req.coordinator_keys = &key;
        kc_wr_init(&w, body, NULL);
        kc_findcoordinator_req_encode(&w, v, &req);
        kc_frame *f = kb_call(c, KC_API_FINDCOORDINATOR, v, &w, deadline, &rd, err, errsz);
        if (f == NULL)
            return -1;
        kc_arena a;
        kc_findcoordinator_resp resp;
        kc_arena_init(&a);
        int bad = kc_findcoordinator_resp_decode(&rd, v, &a, &resp) != 0;
        int16_t code = -1;
        kc_str h = kc_str_c(NULL);
        if (!bad && v >= 4 && resp.ncoordinators >= 1) {
            code = resp.coordinators[0].error_code;
            h = resp.coordinators[0].host;
            *port = resp.coordinators[0].port;
        } else if (!bad && v < 4) {
            code = resp.error_code;
            h = resp.host;
            *port = resp.port;
        }
        if (!bad && code == 0 && h.len > 0 && (size_t)h.len < hostsz) {
            memcpy(host, h.p, (size_t)h.len);
            host[h.len] = '\0';
        }
        kc_arena_destroy(&a);
        kc_frame_release(f);
        if (!bad && code == 0 && h.len > 0 && (size_t)h.len < hostsz)
            return 0;
        if (bad || (code != 0 && !kb_coordinator_retriable(code)) || !kb_may_retry(deadline)) {
            snprintf(err, errsz, "FindCoordinator of %s from %s: %s", txid, c->addr,
                     bad ? rd.err : code != 0 ? kb_err_name(code) : "no usable coordinator");
            return -1;
        }
        kb_sleep_ns(KB_IDEM_RETRY_NS);
    }
}

/* AddPartitionsToTxn (v0-v2, written here: no codec) for the one
 * partition. Asks again while the coordinator says so, until deadline.
 * 0, or -1 with err. */
static int kb_add_partition_to_txn(kb_conn *c, const char *txid, int64_t pid, int16_t epoch,
                                   const char *topic, int32_t part, uint64_t deadline, char *err,
                                   size_t errsz)
{
    int16_t v = kb_conn_version(c, KC_API_ADDPARTITIONSTOTXN, 0, 2);
    if (v < 0) {
        snprintf(err, errsz, "%s offers no AddPartitionsToTxn version from 0 to 2", c->addr);
        return -1;
    }
    for (;;) {
        struct evbuffer *body = evbuffer_new();
        kc_wr w;
        kc_rd rd;
        if (body == NULL) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        kc_wr_init(&w, body, NULL);
        kc_wr_string(&w, kc_str_c(txid), 0);
        kc_wr_i64(&w, pid);
        kc_wr_i16(&w, epoch);
        kc_wr_arraylen(&w, 1, 0); /* Topics */
        kc_wr_string(&w, kc_str_c(topic), 0);
        kc_wr_arraylen(&w, 1, 0); /* Partitions */
        kc_wr_i32(&w, part);
        kc_frame *f = kb_call(c, KC_API_ADDPARTITIONSTOTXN, v, &w, deadline, &rd, err, errsz);
        if (f == NULL)
            return -1;
        int16_t code = -1;
        (void)kc_rd_i32(&rd); /* ThrottleTimeMs */
        int32_t nt = kc_rd_arraylen(&rd, 0, 0, 6);
        for (int32_t i = 0; i < nt && rd.err == NULL; i++) {
            kc_str name = kc_rd_string(&rd, 0);
            int32_t np = kc_rd_arraylen(&rd, 0, 0, 6);
            for (int32_t j = 0; j < np && rd.err == NULL; j++) {
                int32_t idx = kc_rd_i32(&rd);
                int16_t e = kc_rd_i16(&rd);
                if (kc_str_eq(name, topic) && idx == part)
                    code = e;
            }
        }
        int bad = kc_rd_finish(&rd) != 0;
        kc_frame_release(f);
        if (!bad && code == 0)
            return 0;
        if (bad || !kb_coordinator_retriable(code) || !kb_may_retry(deadline)) {
            snprintf(err, errsz, "AddPartitionsToTxn from %s: %s", c->addr,
                     bad ? rd.err : code == -1 ? "the partition is not in the answer" : kb_err_name(code));
            return -1;
        }
        kb_sleep_ns(KB_IDEM_RETRY_NS);
    }
}

/* The records every batch carries (they never change): n records without
 * key or headers, the value, timestamp delta 0, offset deltas 0..n-1.
 * NULL when out of memory. */
static struct evbuffer *kb_records_new(const char *value, int size, int n)
{
    struct evbuffer *recs = evbuffer_new(), *one = evbuffer_new();
    kc_wr w, w1;
    int bad = recs == NULL || one == NULL;
    if (!bad) {
        kc_wr_init(&w, recs, NULL);
        kc_wr_init(&w1, one, NULL);
        for (int i = 0; i < n && !bad; i++) {
            kc_wr_i8(&w1, 0);      /* Attributes */
            kc_wr_varlong(&w1, 0); /* TimestampDelta */
            kc_wr_varint(&w1, i);  /* OffsetDelta */
            kc_wr_varint(&w1, -1); /* Key: null */
            kc_wr_varint(&w1, size);
            kc_wr_raw(&w1, value, (size_t)size);
            kc_wr_varint(&w1, 0); /* Headers */
            kc_wr_varint(&w, (int32_t)evbuffer_get_length(one));
            bad = w.err || w1.err || evbuffer_add_buffer(recs, one) != 0;
        }
    }
    if (one != NULL)
        evbuffer_free(one);
    if (bad && recs != NULL) {
        evbuffer_free(recs);
        recs = NULL;
    }
    return recs;
}

/*
 * One record batch (magic 2) into bb, emptied first: the records, the
 * attributes, this producer's id and epoch, the base sequence, and the CRC32C of everything
 * from Attributes to the end, as the format requires. Its bytes (inside
 * bb, contiguous), or NULL when out of memory.
 */
static const uint8_t *kb_batch_build(struct evbuffer *bb, struct evbuffer *tail, const uint8_t *recs,
                                     size_t nrecs, int n, int16_t attributes, int64_t pid,
                                     int16_t epoch, int32_t seq, int64_t ts_ms)
{
    kc_wr w;
    evbuffer_drain(bb, evbuffer_get_length(bb));
    evbuffer_drain(tail, evbuffer_get_length(tail));
    /* What the CRC covers, up to the records. */
    kc_wr_init(&w, tail, NULL);
    kc_wr_i16(&w, attributes); /* no compression, create time; bit 4: transactional */
    kc_wr_i32(&w, n - 1); /* LastOffsetDelta */
    kc_wr_i64(&w, ts_ms); /* BaseTimestamp */
    kc_wr_i64(&w, ts_ms); /* MaxTimestamp */
    kc_wr_i64(&w, pid);
    kc_wr_i16(&w, epoch);
    kc_wr_i32(&w, seq);   /* BaseSequence */
    kc_wr_i32(&w, n);     /* Records count */
    size_t ntail = evbuffer_get_length(tail);
    const uint8_t *t = evbuffer_pullup(tail, -1);
    if (w.err || t == NULL)
        return NULL;
    uint32_t crc = kc_crc32c(kc_crc32c(0, t, ntail), recs, nrecs);
    kc_wr_init(&w, bb, NULL);
    kc_wr_i64(&w, 0); /* BaseOffset: the broker assigns it */
    kc_wr_i32(&w, (int32_t)(4 + 1 + 4 + ntail + nrecs)); /* Length: what follows */
    kc_wr_i32(&w, -1); /* PartitionLeaderEpoch */
    kc_wr_i8(&w, 2);   /* Magic */
    kc_wr_u32(&w, crc);
    kc_wr_raw(&w, t, ntail);
    kc_wr_raw(&w, recs, nrecs);
    return w.err ? NULL : evbuffer_pullup(bb, -1);
}

/* The next base sequence: sequences wrap from INT32_MAX to 0. */
static int32_t kb_seq_add(int32_t seq, int n)
{
    return (int32_t)(((int64_t)seq + n) % ((int64_t)INT32_MAX + 1));
}

typedef struct kb_idem_req {
    int32_t corr;
    int32_t seq;
    uint64_t sent_ns;
    uint64_t index; /* 0, 1, ... in sending order */
    int counted;    /* sent in the measured window */
} kb_idem_req;

typedef struct kb_idem_code {
    int16_t code;
    uint64_t n;
} kb_idem_code;

typedef struct kb_idem_st {
    kb_idem_req q[KB_IDEM_MAX_INFLIGHT]; /* in flight, oldest at head */
    int head, nq, max_seen;
    uint64_t sent, counted, answered, warmup_answered, failed;
    uint64_t window_start_ns, last_answer_ns, last_counted_send_ns;
    int64_t prev_offset;        /* base offset of the last request appended */
    uint64_t offsets_backwards; /* answers whose base offset is not above the previous one's */
    uint64_t offset_gaps;       /* answers whose base offset leaves a gap after the previous one */
    kb_idem_code codes[KB_IDEM_MAX_CODES];
    int ncodes;
    char error[512];
    kb_hist lat;
} kb_idem_st;

static void kb_idem_count(kb_idem_st *st, int16_t code)
{
    for (int i = 0; i < st->ncodes; i++) {
        if (st->codes[i].code == code) {
            st->codes[i].n++;
            return;
        }
    }
    if (st->ncodes < KB_IDEM_MAX_CODES)
        st->codes[st->ncodes++] = (kb_idem_code){code, 1};
}

static uint64_t kb_idem_code_n(const kb_idem_st *st, int16_t code)
{
    for (int i = 0; i < st->ncodes; i++)
        if (st->codes[i].code == code)
            return st->codes[i].n;
    return 0;
}

/* The answer to the oldest request in flight. 0, or -1 when the answer
 * cannot be matched (the connection is then useless). */
static int kb_idem_answer(kb_idem_st *st, const kb_opts *o, int16_t version, kc_frame *f)
{
    kb_idem_req *rq = &st->q[st->head];
    uint64_t now = kb_now_ns();
    kc_rd rd;
    kc_arena a;
    kc_produce_resp resp;
    const kc_produce_resp_partition *pp = NULL;
    int rc = 0;

    st->head = (st->head + 1) % KB_IDEM_MAX_INFLIGHT;
    st->nq--;
    kc_arena_init(&a);
    kc_rd_init(&rd, f->data, f->len);
    int32_t corr = kc_resp_hdr_decode(&rd, kc_resp_hdr_version(KC_API_PRODUCE, version));
    if (rd.err == NULL && corr != rq->corr) {
        snprintf(st->error, sizeof(st->error),
                 "answer out of order: correlation id %" PRId32 " where %" PRId32 " was next", corr,
                 rq->corr);
        rc = -1;
        goto out;
    }
    if (rd.err != NULL || kc_produce_resp_decode(&rd, version, &a, &resp) != 0) {
        snprintf(st->error, sizeof(st->error), "Produce answer to request %" PRIu64 ": %s", rq->index,
                 rd.err);
        rc = -1;
        goto out;
    }
    for (int32_t i = 0; i < resp.ntopics && pp == NULL; i++) {
        if (!kc_str_eq(resp.topics[i].name, o->topic))
            continue;
        for (int32_t j = 0; j < resp.topics[i].npartitions && pp == NULL; j++)
            if (resp.topics[i].partitions[j].index == o->partition)
                pp = &resp.topics[i].partitions[j];
    }
    if (pp == NULL) {
        snprintf(st->error, sizeof(st->error), "Produce answer to request %" PRIu64 " lacks the partition",
                 rq->index);
        rc = -1;
        goto out;
    }
    if (o->trace)
        fprintf(stderr, "kz_bench: request %" PRIu64 " base sequence %" PRId32 ": %s, base offset %" PRId64
                ", %.3f ms\n", rq->index, rq->seq, pp->error_code ? kb_err_name(pp->error_code) : "ok",
                pp->base_offset, (double)(now - rq->sent_ns) / 1e6);
    if (pp->error_code != 0) {
        st->failed++;
        kb_idem_count(st, pp->error_code);
        if (st->error[0] == '\0')
            snprintf(st->error, sizeof(st->error),
                     "request %" PRIu64 " (base sequence %" PRId32 "): %s (%d)", rq->index, rq->seq,
                     kb_err_name(pp->error_code), pp->error_code);
        goto out;
    }
    /* The broker gives offsets in the order batches reach it: with no
     * other producer on the partition, each batch follows the last. */
    if (st->prev_offset >= 0 && pp->base_offset <= st->prev_offset)
        st->offsets_backwards++;
    else if (st->prev_offset >= 0 && pp->base_offset != st->prev_offset + o->batch_records)
        st->offset_gaps++;
    st->prev_offset = pp->base_offset;
    if (!rq->counted) {
        st->warmup_answered++;
        goto out;
    }
    st->answered++;
    st->last_answer_ns = now;
    kb_hist_add(&st->lat, (now - rq->sent_ns) / 1000);
out:
    kc_arena_destroy(&a);
    return rc;
}

static int kb_idem(const kb_opts *o)
{
    kb_idem_st *st = calloc(1, sizeof(*st));
    char *payload = malloc((size_t)o->msg_size);
    struct evbuffer *recs = NULL, *bb = evbuffer_new(), *tail = evbuffer_new(), *body = evbuffer_new();
    kb_conn boot = {.fd = -1}, lead = {.fd = -1}, coord = {.fd = -1};
    char first[300], host[256], lhost[256], chost[256];
    int port = 0, lport = 0, cport = 0;
    int32_t leader = -1;
    int64_t pid = -1;
    int16_t epoch = -1, v_md = -1, v_ipid = -1, v_prod = -1;
    int32_t seq = 0;
    const int n = o->batch_records;
    const int16_t attributes = o->transactional_id ? 0x10 : 0;
    struct sigaction sa;
    int rc = 1;

    if (st == NULL || payload == NULL || bb == NULL || tail == NULL || body == NULL) {
        fprintf(stderr, "kz_bench: out of memory\n");
        goto out;
    }
    st->prev_offset = -1;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN; /* a closed connection is an error from send, not a signal */
    sigaction(SIGPIPE, &sa, NULL);
    uint64_t x = 0x9e3779b97f4a7c15ull; /* incompressible, as in produce mode */
    for (int i = 0; i < o->msg_size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        payload[i] = (char)(x >> 24);
    }
    recs = kb_records_new(payload, o->msg_size, n);
    const uint8_t *recs_p = recs ? evbuffer_pullup(recs, -1) : NULL;
    const size_t nrecs = recs ? evbuffer_get_length(recs) : 0;
    if (recs_p == NULL) {
        snprintf(st->error, sizeof(st->error), "out of memory");
        goto report;
    }

    const uint64_t t0 = kb_now_ns();
    const uint64_t hard_end = t0 + (uint64_t)(o->timeout * 1e9);
    size_t fl = strcspn(o->bootstrap, ",");
    if (fl >= sizeof(first)) {
        snprintf(st->error, sizeof(st->error), "bootstrap address too long");
        goto report;
    }
    memcpy(first, o->bootstrap, fl);
    first[fl] = '\0';
    if (kz_split_hostport(first, host, sizeof(host), &port) != 0) {
        snprintf(st->error, sizeof(st->error), "bad bootstrap address '%s': expected host:port", first);
        goto report;
    }
    /* Bootstrap: versions, the leader, a producer id. */
    if (kb_conn_open(&boot, host, port, o->client_id, hard_end) != 0 ||
        kb_conn_versions(&boot, hard_end) != 0) {
        snprintf(st->error, sizeof(st->error), "%s", boot.why);
        goto report;
    }
    if (kb_find_leader(&boot, o->topic, o->partition, hard_end, &leader, lhost, sizeof(lhost), &lport,
                       &v_md, st->error, sizeof(st->error)) != 0)
        goto report;
    if (o->transactional_id == NULL) {
        /* The idempotent producer asks any broker: the bootstrap. */
        if (kb_init_producer_id(&boot, NULL, hard_end, &pid, &epoch, &v_ipid, st->error,
                                sizeof(st->error)) != 0)
            goto report;
    } else {
        /* A transactional id is the coordinator's business. */
        if (kb_find_coordinator(&boot, o->transactional_id, hard_end, chost, sizeof(chost), &cport,
                                st->error, sizeof(st->error)) != 0)
            goto report;
        if (kb_conn_open(&coord, chost, cport, o->client_id, hard_end) != 0 ||
            kb_conn_versions(&coord, hard_end) != 0) {
            snprintf(st->error, sizeof(st->error), "%s", coord.why);
            goto report;
        }
        if (kb_init_producer_id(&coord, o->transactional_id, hard_end, &pid, &epoch, &v_ipid,
                                st->error, sizeof(st->error)) != 0 ||
            kb_add_partition_to_txn(&coord, o->transactional_id, pid, epoch, o->topic, o->partition,
                                    hard_end, st->error, sizeof(st->error)) != 0)
            goto report;
        kb_conn_close(&coord);
    }
    kb_conn_close(&boot);
    /* The leader's connection carries every ProduceRequest. */
    if (kb_conn_open(&lead, lhost, lport, o->client_id, hard_end) != 0 ||
        kb_conn_versions(&lead, hard_end) != 0) {
        snprintf(st->error, sizeof(st->error), "%s", lead.why);
        goto report;
    }
    v_prod = kb_conn_version(&lead, KC_API_PRODUCE, 3, 9);
    if (v_prod < 0) {
        snprintf(st->error, sizeof(st->error), "%s offers no Produce version from 3 to 9", lead.addr);
        goto report;
    }
    {
        /* Check the batch layout once with the codec's own decoder. */
        const uint8_t *p = kb_batch_build(bb, tail, recs_p, nrecs, n, attributes, pid, epoch, 0, 0);
        kc_rd rd;
        kc_record_batch rb;
        kc_rd_init(&rd, p, p ? evbuffer_get_length(bb) : 0);
        if (p == NULL || kc_record_batch_decode(&rd, &rb) != 0 || kc_rd_remain(&rd) != 0 ||
            rb.record_count != n || rb.producer_id != pid) {
            snprintf(st->error, sizeof(st->error), "built a bad record batch: %s",
                     p == NULL ? "out of memory" : rd.err ? rd.err : "fields differ");
            goto report;
        }
    }

    const uint64_t start = kb_now_ns();
    const uint64_t warm_end = start + (uint64_t)(o->warmup * 1e9);
    const uint64_t end = warm_end + (uint64_t)(o->duration * 1e9);
    int stopping = 0;
    for (;;) {
        uint64_t now = kb_now_ns();
        if (st->window_start_ns == 0 && now >= warm_end)
            st->window_start_ns = now;
        if (!stopping && (kb_stop || now >= end || st->failed > 0 || st->error[0] != '\0' || lead.dead))
            stopping = 1;
        while (!stopping && st->nq < o->max_inflight) {
            struct timespec rt;
            clock_gettime(CLOCK_REALTIME, &rt);
            int64_t ts_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
            if ((int64_t)st->sent == o->skip_sequence_at)
                seq = kb_seq_add(seq, n); /* the self-test's gap */
            const uint8_t *p =
                kb_batch_build(bb, tail, recs_p, nrecs, n, attributes, pid, epoch, seq, ts_ms);
            kc_produce_req_partition part;
            kc_produce_req_topic topic;
            kc_produce_req req;
            kc_wr w;
            if (p == NULL) {
                snprintf(st->error, sizeof(st->error), "out of memory");
                stopping = 1;
                break;
            }
            memset(&part, 0, sizeof(part));
            memset(&topic, 0, sizeof(topic));
            memset(&req, 0, sizeof(req));
            part.index = o->partition;
            part.records.p = p;
            part.records.len = (int32_t)evbuffer_get_length(bb);
            topic.name = kc_str_c(o->topic);
            topic.npartitions = 1;
            topic.partitions = &part;
            req.transactional_id = kc_str_c(o->transactional_id);
            req.acks = -1;
            req.timeout_ms = KB_IDEM_TIMEOUT_MS;
            req.ntopics = 1;
            req.topics = &topic;
            evbuffer_drain(body, evbuffer_get_length(body));
            kc_wr_init(&w, body, NULL);
            kc_produce_req_encode(&w, v_prod, &req);
            uint64_t sent_ns = kb_now_ns();
            int32_t corr = w.err ? -1 : kb_conn_send(&lead, KC_API_PRODUCE, v_prod, body);
            if (corr < 0) {
                snprintf(st->error, sizeof(st->error), "%s", w.err ? "out of memory" : lead.why);
                stopping = 1;
                break;
            }
            int counted = st->window_start_ns != 0;
            st->q[(st->head + st->nq) % KB_IDEM_MAX_INFLIGHT] =
                (kb_idem_req){corr, seq, sent_ns, st->sent, counted};
            st->nq++;
            st->sent++;
            if (counted) {
                st->counted++;
                st->last_counted_send_ns = sent_ns;
            }
            seq = kb_seq_add(seq, n);
        }
        if (st->nq > st->max_seen)
            st->max_seen = st->nq;
        if (st->nq == 0 && stopping)
            break;
        if (now >= hard_end) {
            if (st->error[0] == '\0')
                snprintf(st->error, sizeof(st->error), "%d requests unanswered after the %.0f s timeout",
                         st->nq, o->timeout);
            break;
        }
        int wait_ms = kb_ms_left(hard_end, 100);
        if (!stopping && kb_ms_left(end, 100) < wait_ms)
            wait_ms = kb_ms_left(end, 100);
        kb_conn_poll(&lead, wait_ms);
        kc_frame *f = NULL;
        int broken = 0;
        while (st->nq > 0 && kb_conn_frame(&lead, &f) == 1) {
            broken = kb_idem_answer(st, o, v_prod, f) != 0;
            kc_frame_release(f);
            if (broken)
                break;
        }
        if (broken)
            break;
        if (lead.dead && st->nq > 0) {
            if (st->error[0] == '\0')
                snprintf(st->error, sizeof(st->error), "%s with %d requests in flight", lead.why, st->nq);
            break;
        }
    }
report:;
    /* Every counted request was sent and answered between the window's
     * start and its last answer. */
    double win = st->answered > 0 && st->last_answer_ns > st->window_start_ns
                     ? (double)(st->last_answer_ns - st->window_start_ns) / 1e9
                     : 0;
    uint64_t msgs = st->answered * (uint64_t)n;
    uint64_t seq_errors = kb_idem_code_n(st, 45) + kb_idem_code_n(st, 46);
    if (st->error[0] == '\0' && (st->offsets_backwards > 0 || st->offset_gaps > 0))
        snprintf(st->error, sizeof(st->error),
                 "base offsets out of order: %" PRIu64 " not above the previous one's, %" PRIu64
                 " leaving a gap (another producer on the partition, or batches reordered or repeated)",
                 st->offsets_backwards, st->offset_gaps);
    if (st->error[0] == '\0' && st->answered == 0)
        snprintf(st->error, sizeof(st->error), "no request answered in the window");
    rc = st->error[0] != '\0' ? 1 : 0;

    printf("{\"mode\":\"idem\",\"topic\":");
    kb_json_str(o->topic);
    printf(",\"partition\":%d,\"msg_size\":%d,\"batch_records\":%d,\"max_in_flight\":%d,"
           "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"idempotent\":true,\"acks\":-1,",
           o->partition, o->msg_size, n, o->max_inflight, o->duration, o->warmup);
    printf("\"transactional_id\":");
    if (o->transactional_id)
        kb_json_str(o->transactional_id);
    else
        printf("null");
    printf(",\"producer_id\":%" PRId64 ",\"producer_epoch\":%d,\"leader_id\":%" PRId32 ",\"leader\":", pid,
           epoch, leader);
    kb_json_str(lead.addr);
    printf(",\"api_versions\":{\"metadata\":%d,\"init_producer_id\":%d,\"produce\":%d},", v_md, v_ipid,
           v_prod);
    printf("\"requests_sent\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"warmup_requests\":%" PRIu64
           ",\"requests_failed\":%" PRIu64 ",\"requests_unanswered\":%d,",
           st->sent, st->answered, st->warmup_answered, st->failed, st->nq);
    printf("\"delivered\":%" PRIu64 ",\"delivered_bytes\":%" PRIu64 ",\"warmup_delivered\":%" PRIu64
           ",\"failed\":%" PRIu64 ",\"window_s\":%.3f,",
           msgs, msgs * (uint64_t)o->msg_size, st->warmup_answered * (uint64_t)n, st->failed * (uint64_t)n,
           win);
    printf("\"requests_per_s\":%.2f,\"msgs_per_s\":%.1f,\"mbps\":%.3f,\"max_in_flight_seen\":%d,",
           win > 0 ? (double)st->answered / win : 0.0, win > 0 ? (double)msgs / win : 0.0,
           win > 0 ? (double)msgs * o->msg_size / 1e6 / win : 0.0, st->max_seen);
    printf("\"offsets_backwards\":%" PRIu64 ",\"offset_gaps\":%" PRIu64 ",\"sequence_errors\":%" PRIu64
           ",\"errors\":{",
           st->offsets_backwards, st->offset_gaps, seq_errors);
    for (int i = 0; i < st->ncodes; i++)
        printf("%s\"%d\":{\"name\":\"%s\",\"count\":%" PRIu64 "}", i ? "," : "", st->codes[i].code,
               kb_err_name(st->codes[i].code), st->codes[i].n);
    printf("},");
    kb_print_latency(&st->lat);
    if (st->error[0] != '\0') {
        printf(",\"error\":");
        kb_json_str(st->error);
    }
    printf("}\n");
out:
    kb_conn_close(&boot);
    kb_conn_close(&coord);
    kb_conn_close(&lead);
    if (recs != NULL)
        evbuffer_free(recs);
    if (bb != NULL)
        evbuffer_free(bb);
    if (tail != NULL)
        evbuffer_free(tail);
    if (body != NULL)
        evbuffer_free(body);
    free(payload);
    free(st);
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
    int rc = strcmp(o.mode, "produce") == 0   ? kb_produce(&o)
             : strcmp(o.mode, "consume") == 0 ? kb_consume(&o)
                                              : kb_idem(&o);
    fflush(stdout);
    return rc;
}
