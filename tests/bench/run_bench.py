#!/usr/bin/python3
"""run_bench: kzproxy measured side by side with direct-to-broker (issue 6).

Starts the test bed (librdkafka mock brokers in zones a and b, or with
--backend kafka two Apache Kafka brokers), kzproxy
daemons (one per zone) and, for the S3 path, s3rver, and drives the load
generator tests/bench/kz_bench through every scenario in one run:

  produce, 1 KiB messages, at a fixed offered load and flat out:
    direct       client -> brokers (leaders in zone a)
    same-zone    client (zone a) -> proxy a -> leader in zone a
    same-zone TLS  the same with client_tls on proxy a (librdkafka's TLS
                 client, security.protocol=ssl), right after the plaintext
                 run, and the difference in the proxy's CPU per GB
    Java same-zone (TLS)  the same two with Apache Kafka's own producer
                 benchmark (org.apache.kafka.tools.ProducerPerformance, the
                 Java client of the real-Kafka test bed's release), which
                 writes 16 KiB TLS records where librdkafka writes two per
                 message; skipped when java or the jars are missing
    WAL local    client (zone a) -> proxy a -> WAL object (local store) ->
                 RPC -> proxy b -> leader in zone b
    WAL s3rver   the same with the S3 backend on s3rver
  librdkafka's idempotent producer at its default settings on 12
    partitions, direct and on the WAL paths (20 MB/s offered and flat out);
  consume, direct and through proxy a; a consumer in zone b through proxy
    b of a topic led in zone a, with its follower in zone b (zone-local
    fetch, issue 15) and without one (read across zones); fan-out: 3
    consumers in zone b of a topic with no replica there, fetch cache on and
    off (the fetch payload that crosses zones);
  10,000 idle client connections on proxy a (RSS per connection);
  instr: the proxies' user-space instructions per payload byte on the
    same-zone and the WAL local path (proxy a, b and both), counted by
    valgrind's callgrind: a figure that does not move with the machine
    (issue 17), where CPU seconds move 3x from run to run;
  one producer (max.in.flight=5) on one partition, same-zone and through
  the WAL paths: produce requests per second and p99. librdkafka, idempotent
  and not (an idempotent librdkafka producer keeps one request in flight
  per partition once its batches hold more than 5 messages), and kz_bench's
  own protocol-level idempotent producer (`kz_bench idem`), which keeps 5
  requests in flight as the Java client does; it checks that its batches
  stayed in order (base offsets), and once more with a transactional id,
  for which the test bed's mock broker checks sequences, plus a control run
  with a deliberate sequence gap to show that check is live; the same
  producers straight to the leader are the references of their ratios.

Every figure is also given as a ratio to direct measured in the same run
(machines differ by 3x from run to run): throughput and latency as
multiples of direct's, the proxies' CPU per GB over the brokers' CPU per GB
in the direct run.

For every run it reads the proxies' CPU time (utime+stime, /proc/PID/stat),
peak RSS (VmHWM), and /metrics before and after (cross-zone bytes, S3
requests, object sizes). Prints a table, writes JSON (--json), and lists
the issue's targets as met or missed. Nothing here asserts a timing: the
numbers are reported, and judged by people.

  /usr/bin/python3 tests/bench/run_bench.py [--quick] [--json FILE]
      [--duration S] [--rate-mbps R] [--idle-conns N] [--only a,b] [--perf DIR]

Run from the build directory (or set top_builddir); `make bench` does that.
--quick is the smoke test's mode: every scenario for a fraction of a second.
Exit status: 0 when every scenario that could run produced numbers, 1 if
one failed (its entry in the JSON says why), 2 on bad arguments.
"""

import argparse
import json
import math
import os
import platform
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))

from kzharness import (HarnessError, ProxyCluster, SkipTest, TestBed,  # noqa: E402
                       kzproxy_has_asan, log_tail, metrics, rss_kib, top_builddir, top_srcdir, wait_until)

NA_WAL = 'n/a (WAL path not available)'
MSG_SIZE = 1024
PEER_SECRET = 'kz-bench-peer-secret-0123456789abcdef'
FLUSH_MS = 250
FLUSH_IDLE_MS = 5         # wal.flush_idle_ms of the second idempotent run
IDEM_RATE_MBPS = 20       # offered to the one idempotent producer
IDEM_QUEUE_KIB = 4096     # its client queue
# kz_bench's pipelined idempotent producer: one batch of 15 1 KiB values per
# ProduceRequest (what fits the Java client's default batch.size, 16384),
# at most 5 requests in flight.
PIPE_BATCH_RECORDS = 15
PIPE_IN_FLIGHT = 5
# librdkafka's idempotent producer at its default settings (issue 17 item 4)
# on a 12-partition topic: offered IDEM_DEFAULT_RATE_MBPS (what the WAL path
# carries with one request in flight per partition), then flat out with the
# client queue bounded to IDEM_DEFAULT_QUEUE_KIB (the default, 1 GiB, would
# make a flat-out run drain for minutes at the WAL path's rate).
IDEM_DEFAULT_RATE_MBPS = 20
IDEM_DEFAULT_QUEUE_KIB = 65536
# Fan-out (issue 15): this many consumers (each its own group.id) in zone b
# read, one after the other, a topic with no replica in zone b.
FANOUT_GROUPS = 3
# instr (issue 17): user-space instructions per payload byte, counted by
# callgrind. Each path runs twice on fresh proxies, INSTR_MSGS and twice as
# many messages; the difference of the counts over the difference of the
# payload bytes leaves out start-up and shutdown. One producer, one
# partition, INSTR_BATCH_MSGS messages per Produce request (batch.num.messages
# with a linger that never expires first: every request is alike, whatever
# the machine's speed), paced at INSTR_RATE_MBPS, which the proxies keep up
# with under callgrind's slowdown.
INSTR_MSGS = 20000
INSTR_MSGS_QUICK = 500
INSTR_BATCH_MSGS = 100
INSTR_RATE_MBPS = 10
INSTR_LINGER_MS = 1000
# The WAL runs' flush interval: at INSTR_RATE_MBPS an object fills its 8 MiB
# (flush_bytes, as at the fixed load's 100 MB/s) in 0.84 s, so every object
# but a run's last is full, and each run stores the same number whatever the
# timing (sealed by age at 250 ms, the count moves by one or two from run to
# run, and each object costs a peer RPC: 2 % of proxy b's figure).
INSTR_FLUSH_MS = 2000
# The cache and branch simulators off (callgrind's defaults, made explicit):
# only Ir, instructions executed, is counted.
CALLGRIND_ARGS = ('--tool=callgrind', '--dump-instr=no', '--collect-jumps=no', '--cache-sim=no',
                  '--branch-sim=no')
CLK_TCK = os.sysconf('SC_CLK_TCK')
# same_zone_tls_java: Apache Kafka's producer benchmark. Flat out it is told
# to send what JAVA_CEILING_MSGS_S records/s (about 1 GB/s, above any
# flat-out figure measured here) would in the run's time, and stopped by
# time; ProducerPerformance has no time limit of its own.
JAVA_PERF_MAIN = 'org.apache.kafka.tools.ProducerPerformance'
JAVA_CEILING_MSGS_S = 1000000
JAVA_START_S = 60.0       # JVM start, metadata, TLS handshake: time to the first record
JAVA_OFFSETS_EVERY_S = 0.1  # how often the topic's end offsets are read during a run
JAVA_SUMMARY = re.compile(r'^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, '
                          r'([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th')

# Every produce scenario: (name, label, path) in table order.
PATHS = [
    ('direct', 'direct', None),
    ('same_zone', 'kzproxy same-zone', 'same_zone'),
    ('same_zone_tls', 'kzproxy same-zone TLS', 'same_zone_tls'),
    ('same_zone_java', 'Java same-zone', 'same_zone_java'),
    ('same_zone_tls_java', 'Java same-zone TLS', 'same_zone_tls_java'),
    ('wal_local', 'kzproxy WAL local', 'wal_local'),
    ('wal_s3', 'kzproxy WAL s3rver', 'wal_s3'),
]


# ---------------------------------------------------------------- measurements

def kz_bench_binary():
    return os.path.join(top_builddir(), 'tests', 'bench', 'kz_bench')


def proc_cpu_s(pid):
    """utime + stime of a process in seconds (/proc/PID/stat), None if gone;
    pid may be a list (the brokers of a real Kafka cluster): their sum."""
    if isinstance(pid, (list, tuple)):
        vals = [proc_cpu_s(p) for p in pid]
        return None if any(v is None for v in vals) else sum(vals)
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid, key):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_kz_bench(args, timeout):
    """Run kz_bench; returns (its JSON result, its CPU seconds). The result
    has "error" when kz_bench failed or printed no JSON."""
    argv = [kz_bench_binary()] + [str(a) for a in args]
    c0 = children_cpu_s()
    try:
        cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        return {'error': 'kz_bench did not finish within %.0fs' % (timeout + 30)}, None
    cpu = children_cpu_s() - c0
    lines = cp.stdout.decode('utf-8', 'replace').strip().splitlines()
    try:
        res = json.loads(lines[-1])
    except (IndexError, ValueError):
        err = cp.stderr.decode('utf-8', 'replace').strip().splitlines()
        return {'error': 'kz_bench exited %d without results: %s'
                         % (cp.returncode, ' | '.join(err[-3:]))}, cpu
    if cp.returncode != 0 and 'error' not in res:
        res['error'] = 'kz_bench exited %d' % cp.returncode
    return res, cpu


class Snapshot:
    """CPU seconds and /metrics of a set of processes at one moment."""

    def __init__(self, proxies, others):
        self.cpu = {p.node_id: proc_cpu_s(p.pid) for p in proxies}
        self.other_cpu = {name: proc_cpu_s(pid) for name, pid in others.items()}
        self.metrics = {}
        for p in proxies:
            try:
                self.metrics[p.node_id] = metrics(p)
            except HarnessError:
                self.metrics[p.node_id] = None


def series_sum(m, pred):
    """Sum of the series of Metrics m for which pred(name, labels) holds; None if none."""
    if m is None:
        return None
    vals = [v for n, ls, v in m.series if pred(n, ls)]
    return sum(vals) if vals else None


def is_xzone(n):
    return n.endswith('xzone_bytes_total')


def is_objwal(n, suffix):
    return 'objwal' in n and n.endswith(suffix)


METRIC_PICKS = {
    # name: predicate over (series name, labels)
    'produce_record_bytes': lambda n, ls: n == 'kzproxy_produce_record_bytes_total',
    'fetch_record_bytes': lambda n, ls: n == 'kzproxy_fetch_record_bytes_total',
    'produce_requests': lambda n, ls: n == 'kzproxy_requests_total' and ls.get('api') == 'Produce',
    'partition_errors': lambda n, ls: n == 'kzproxy_partition_errors_total',
    # Cross-zone bytes: everything a proxy sends to another zone, plus what it
    # receives from brokers of another zone (brokers count nothing); bytes
    # between proxies are counted once, by the sender.
    'xzone_bytes': lambda n, ls: is_xzone(n) and (ls.get('direction') == 'out' or
                                                 ls.get('peer') == 'broker'),
    'xzone_payload_bytes': lambda n, ls: is_xzone(n) and ls.get('category') == 'payload' and (
        ls.get('direction') == 'out' or ls.get('peer') == 'broker'),
    'wal_partitions': lambda n, ls: n == 'kzproxy_produce_path_partitions_total' and ls.get('path') == 'wal',
    'cross_zone_partitions': lambda n, ls: (n == 'kzproxy_produce_path_partitions_total'
                                            and ls.get('path') == 'cross_zone'),
    # Consume (issue 15): partitions fetched from a follower, the fetch cache.
    'follower_partitions': lambda n, ls: n == 'kzproxy_fetch_partitions_total' and ls.get('replica') == 'follower',
    'follower_fallbacks': lambda n, ls: n == 'kzproxy_fetch_follower_fallbacks_total',
    'fetch_cache_hits': lambda n, ls: n == 'kzproxy_fetch_cache_hits_total',
    'fetch_cache_bytes_saved': lambda n, ls: n == 'kzproxy_fetch_cache_bytes_saved_total',
    's3_put': lambda n, ls: is_objwal(n, 'requests_total') and ls.get('op') == 'put',
    's3_get': lambda n, ls: is_objwal(n, 'requests_total') and ls.get('op') == 'get',
    's3_bytes_up': lambda n, ls: is_objwal(n, 'bytes_up_total'),
    'object_size_sum': lambda n, ls: is_objwal(n, 'object_size_bytes_sum'),
    'object_size_count': lambda n, ls: is_objwal(n, 'object_size_bytes_count'),
}


def delta_metrics(before, after, node_ids=None):
    """{pick: delta summed over proxies (those of node_ids if given)}; None
    where no proxy has the metric."""
    out = {}
    for key, pred in METRIC_PICKS.items():
        tot = None
        for nid, m1 in after.metrics.items():
            if node_ids is not None and nid not in node_ids:
                continue
            v1 = series_sum(m1, pred)
            if v1 is None:
                continue
            v0 = series_sum(before.metrics.get(nid), pred) or 0
            tot = (tot or 0) + v1 - v0
        out[key] = tot
    return out


def measure(proxies, others, fn):
    """Run fn() between two snapshots; returns (fn's result, figures)."""
    load0 = loadavg()
    s0 = Snapshot(proxies, others)
    res = fn()
    s1 = Snapshot(proxies, others)
    fig = {'proxy_cpu_s': {}, 'other_cpu_s': {}, 'metrics': delta_metrics(s0, s1),
           'metrics_by_zone': {p.zone: delta_metrics(s0, s1, {p.node_id}) for p in proxies},
           'proxy_peak_rss_kib': {}, 'proxy_rss_kib': {},
           # The 1-minute load average before and after: other work on the
           # machine shows here (the run itself adds about 2 on 2 CPUs).
           'loadavg_before_after': [load0, loadavg()]}
    for p in proxies:
        a, b = s0.cpu.get(p.node_id), s1.cpu.get(p.node_id)
        fig['proxy_cpu_s'][p.zone] = None if a is None or b is None else round(b - a, 3)
        fig['proxy_peak_rss_kib'][p.zone] = proc_status_kib(p.pid, 'VmHWM')
        fig['proxy_rss_kib'][p.zone] = proc_status_kib(p.pid, 'VmRSS')
    for name in others:
        a, b = s0.other_cpu.get(name), s1.other_cpu.get(name)
        fig['other_cpu_s'][name] = None if a is None or b is None else round(b - a, 3)
    return res, fig


def loadavg():
    try:
        with open('/proc/loadavg') as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def proxy_cpu_per_gb(proxy_cpu_s, payload_bytes):
    """Core-seconds of the proxies (those measured) per GB of payload."""
    cpu = [v for v in proxy_cpu_s.values() if v is not None]
    gb = payload_bytes / 1e9
    return round(sum(cpu) / gb, 3) if cpu and gb else None


def java_perf_argv():
    """(None, the java command line of Apache Kafka's ProducerPerformance up
    to its arguments) or (why it cannot run, None). The classpath is the
    real-Kafka test bed's (tests/kafka/target: scripts/deps.sh builds it)
    plus kafka-tools of the same release: from the bed's lib/ if there, else
    from the local Maven repository (~/.m2), where Maven put it."""
    try:
        from kzbed import java_argv, kafka_home
        argv = java_argv(JAVA_PERF_MAIN, heap='512m')
    except HarnessError as err:
        return str(err), None
    lib = os.path.join(kafka_home(), 'lib')
    names = os.listdir(lib)
    tools = sorted(n for n in names if re.match(r'kafka-tools-\d[^/]*\.jar$', n))
    if tools:
        jar = os.path.join(lib, tools[-1])
    else:
        clients = sorted(n for n in names if re.match(r'kafka-clients-\d[^/]*\.jar$', n))
        if not clients:
            return 'no kafka-clients jar in %s' % lib, None
        ver = clients[-1][len('kafka-clients-'):-len('.jar')]
        repo = os.environ.get('KZ_M2_REPOSITORY') or os.path.expanduser('~/.m2/repository')
        jar = os.path.join(repo, 'org', 'apache', 'kafka', 'kafka-tools', ver, 'kafka-tools-%s.jar' % ver)
        if not os.path.isfile(jar):
            return ('%s is missing (ProducerPerformance; mvn dependency:get '
                    '-Dartifact=org.apache.kafka:kafka-tools:%s fetches it)' % (jar, ver)), None
    i = argv.index('-cp')
    argv[i + 1] += ':' + jar
    return None, argv


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def instr_unavailable():
    """Why the instr scenario cannot run here, or None."""
    if shutil.which('valgrind') is None:
        return 'valgrind is not installed (scripts/deps.sh installs it)'
    try:
        asan = kzproxy_has_asan()
    except OSError as err:
        return 'kzproxy is not readable: %s' % err
    if asan:
        return ('kzproxy is built with AddressSanitizer (--enable-sanitizers): valgrind does not support it, '
                'and the count would be of the instrumented code')
    return None


def callgrind_ir(path):
    """Instructions executed (Ir) in a callgrind output file: its "summary:"
    line, or failing that its "totals:" line (the first event is Ir)."""
    found = {}
    with open(path) as f:
        for line in f:
            for key in ('summary:', 'totals:'):
                if line.startswith(key):
                    found[key] = int(line.split()[1])
            if line.startswith('events:') and line.split()[1:2] != ['Ir']:
                raise HarnessError('%s: the first event is not Ir: %s' % (path, line.strip()))
    v = found.get('summary:', found.get('totals:'))
    if v is None:
        raise HarnessError('%s: no summary: or totals: line' % path)
    return v


# ---------------------------------------------------------------- scenarios

def java_client_figures(lines, rc, stopped, samples, first, base, final, records, warmup):
    """The client's figures of a ProducerPerformance run: its own summary line
    (latencies), an error if it failed or fell short, and the records that
    landed in the window from warm-up's end to the last record (flat out:
    to the stop), from the end-offset samples."""
    c = {'mode': 'java ProducerPerformance', 'exit': rc, 'stopped_by_time': stopped, 'records_total': final - base}
    m = next((JAVA_SUMMARY.match(ln) for ln in reversed(lines) if JAVA_SUMMARY.match(ln)), None)
    if m:
        c['java_summary'] = m.group(0)
        # ProducerPerformance's own figures: every record, from its start (MB = 2^20)
        c['lat_us'] = {'p50': int(m.group(6)) * 1000, 'p95': int(m.group(7)) * 1000,
                       'p99': int(m.group(8)) * 1000, 'p999': int(m.group(9)) * 1000,
                       'max': float(m.group(5)) * 1000, 'mean': float(m.group(4)) * 1000}
    if first is None:
        c['error'] = 'no record reached the broker within %.0f s; output ends: %s' % (
            JAVA_START_S, ' | '.join(lines[-3:]))
    elif rc != 0 and not stopped:
        c['error'] = 'ProducerPerformance exited %d: %s' % (rc, ' | '.join(lines[-3:]))
    elif not stopped and final - base < records:
        c['error'] = '%d of %d records reached the broker' % (final - base, records)
    if first is None:
        return c
    ta, oa = next(((t, v) for t, v in samples if t >= first + warmup), samples[-1])
    if stopped:
        tb, ob = samples[-1]
    else:
        tb, ob = next(((t, v) for t, v in samples if v >= final), (samples[-1][0], final))
    if tb > ta and ob > oa:
        c['delivered'] = ob - oa
        c['warmup_delivered'] = final - base - c['delivered']  # and after the window
        c['window_s'] = round(tb - ta, 3)
        c['msgs_per_s'] = c['delivered'] / (tb - ta)
        c['mbps'] = c['msgs_per_s'] * MSG_SIZE / 1e6
    else:
        c['delivered'], c['warmup_delivered'] = 0, final - base
        c.setdefault('error', 'no record landed after the warm-up (%.1f s of records)'
                     % ((samples[-1][0] - first) if samples else 0))
    return c


class Bench:
    def __init__(self, opts):
        self.o = opts
        self.results = {'produce': [], 'consume': [], 'idle_connections': [], 'idempotent': [],
                        'sequence_controls': [], 'failures': [], 'idem_default': [], 'consume_fanout': []}
        self.tb = None
        self.consume_filled = False
        self.workdir = tempfile.mkdtemp(prefix='kz-bench-')

    # -- helpers
    def want(self, name):
        return not self.o.only or name in self.o.only

    def fail(self, where, err, proxies=()):
        """Record a failure; with proxies, the last lines of each one's log
        (warnings and errors: the bench runs them at log level warn) go with
        it, so a failed run says what the proxies saw."""
        f = {'scenario': where, 'error': str(err)}
        logs = {}
        for p in proxies:
            lines = log_tail(p, 12).strip()
            if lines:
                logs['%s (zone %s)' % (p.node_id, p.zone)] = lines
        if logs:
            f['proxy_logs'] = logs
        self.results['failures'].append(f)
        sys.stderr.write('run_bench: %s: %s\n' % (where, err))
        for who, lines in logs.items():
            sys.stderr.write('run_bench: kzproxy %s log ends:\n%s\n' % (who, lines))

    def producer_args(self, bootstrap, topic, rate, extra=()):
        o = self.o
        args = ['produce', '-b', bootstrap, '-t', topic, '--msg-size', MSG_SIZE,
                '--duration', o.duration, '--warmup', o.warmup, '--timeout', o.timeout,
                '-X', 'linger.ms=5', '-X', 'acks=all',
                '-X', 'message.timeout.ms=%d' % int(o.timeout * 1000)]
        if rate:
            args += ['--rate-mbps', rate]
        elif o.quick:
            # Flat out, the warm-up fills the client queue and the proxy's
            # request buffers; a short window (slower still under the
            # sanitizers) may then see none of its own messages delivered.
            args += ['-X', 'queue.buffering.max.kbytes=8192']
        return args + list(extra)

    def produce_runs(self, path, label, bootstrap, topic, cluster=None, others=None, extra=()):
        """The fixed-rate and the flat-out run of one path (extra: more
        kz_bench arguments)."""
        proxies = cluster.proxies if cluster else []
        others = dict(others or {})
        others['brokers'] = self.tb.pids
        for load, rate in (('fixed', self.o.rate_mbps), ('saturation', None)):
            entry = {'path': path, 'label': label, 'load': load,
                     'offered_mbps': rate}
            perf = self.perf_start(path, proxies) if load == 'fixed' else []
            try:
                (res, client_cpu), fig = measure(
                    proxies, others,
                    lambda: run_kz_bench(self.producer_args(bootstrap, topic, rate, extra), self.o.timeout))
            finally:
                self.perf_stop(perf)
            entry['client'] = res
            entry['client_cpu_s'] = round(client_cpu, 3) if client_cpu is not None else None
            entry.update(fig)
            if 'error' in res and not res.get('delivered'):
                self.fail('%s %s' % (path, load), res['error'], proxies)
            self.derive_produce(entry)
            self.results['produce'].append(entry)
            self.print_progress(entry)

    def idem_default_runs(self, path, label, bootstrap, topic, cluster=None, others=None):
        """librdkafka's idempotent producer at its default settings
        (enable.idempotence=true and nothing else: linger.ms 5, batch.size
        1 MB, max.in.flight 5, acks all) on a 12-partition topic: offered
        IDEM_DEFAULT_RATE_MBPS, then flat out (client queue bounded). Next to
        kz_bench's pipelined producer, what an ordinary application gets."""
        o = self.o
        proxies = cluster.proxies if cluster else []
        others = dict(others or {})
        others['brokers'] = self.tb.pids
        loads = (('fixed', IDEM_DEFAULT_RATE_MBPS),) if o.quick else \
            (('fixed', IDEM_DEFAULT_RATE_MBPS), ('saturation', None))
        for load, rate in loads:
            args = ['produce', '-b', bootstrap, '-t', topic, '--msg-size', MSG_SIZE, '--idempotent',
                    '--duration', o.duration, '--warmup', o.warmup, '--timeout', o.timeout,
                    '-X', 'message.timeout.ms=%d' % int(o.timeout * 1000)]
            if rate:
                args += ['--rate-mbps', rate]
            else:
                args += ['-X', 'queue.buffering.max.kbytes=%d' % IDEM_DEFAULT_QUEUE_KIB]
            entry = {'path': path, 'label': label + ', idem default', 'load': load, 'offered_mbps': rate,
                     'client_kind': 'librdkafka', 'idempotent': True}
            (res, client_cpu), fig = measure(proxies, others, lambda: run_kz_bench(args, o.timeout))
            entry['client'] = res
            entry['client_cpu_s'] = round(client_cpu, 3) if client_cpu is not None else None
            entry.update(fig)
            if 'error' in res and not res.get('delivered'):
                self.fail('%s idem default %s' % (path, load), res['error'], proxies)
            self.derive_produce(entry)
            # Produce requests the client sent to the proxy of its zone.
            reqs = fig['metrics_by_zone'].get('a', {}).get('produce_requests') if proxies else None
            entry['produce_requests'] = reqs
            entry['requests_per_s'] = reqs / res['window_s'] if reqs and res.get('window_s') else None
            self.results['idem_default'].append(entry)
            self.print_progress(entry)

    def latency_pairs(self, a, cluster):
        """Direct and same-zone at the fixed load, alternately, --pairs times.
        The p99 of one 10 s run moves by a millisecond or more from run to
        run on a shared machine, five times the 0.2 ms being judged; the
        median of the pairwise differences does not drift with the machine."""
        o = self.o
        runs = []
        for i in range(o.pairs):
            pair = {}
            for path, boot, pc in (('direct', self.tb.bootstrap, None), ('same_zone', a.kafka, cluster)):
                proxies = pc.proxies if pc else []
                (res, _), fig = measure(proxies, {'brokers': self.tb.pids},
                                        lambda: run_kz_bench(self.producer_args(
                                            boot, 'bench_a', o.rate_mbps, ('--duration', o.pair_s)),
                                            o.timeout))
                if 'error' in res and not res.get('delivered'):
                    self.fail('%s latency pair %d' % (path, i + 1), res['error'])
                    return
                payload = (res.get('delivered', 0) + res.get('warmup_delivered', 0)) * MSG_SIZE
                pair[path] = {'p50_ms': res['lat_us']['p50'] / 1e3, 'p99_ms': res['lat_us']['p99'] / 1e3,
                              'p999_ms': res['lat_us']['p999'] / 1e3, 'mbps': res.get('mbps'),
                              'proxy_cpu_s_per_gb': proxy_cpu_per_gb(fig['proxy_cpu_s'], payload)}
            for q in ('p50', 'p99', 'p999'):
                pair['%s_added_ms' % q] = round(pair['same_zone']['%s_ms' % q] - pair['direct']['%s_ms' % q], 3)
            runs.append(pair)
            sys.stdout.write('  pair %d: direct p99 %.2f ms, same-zone p99 %.2f ms (%+.2f), proxy %.2f core-s/GB\n' % (
                i + 1, pair['direct']['p99_ms'], pair['same_zone']['p99_ms'], pair['p99_added_ms'],
                pair['same_zone']['proxy_cpu_s_per_gb'] or 0))
            sys.stdout.flush()
        med = lambda xs: statistics.median(xs) if xs else None
        try:  # Produce requests streamed as they arrived (px_cut.c), over the pairs
            cut = metrics(a).sum('kzproxy_produce_cut_through_total', default=0)
            sys.stdout.write('  cut-through Produce requests during the pairs: %d\n' % cut)
        except (HarnessError, OSError):
            cut = None
        self.results['latency_pairs'] = {
            'cut_through_requests': cut,
            'pairs': len(runs), 'duration_s': o.pair_s, 'runs': runs,
            'median': {k: med([r[k] for r in runs]) for k in ('p50_added_ms', 'p99_added_ms', 'p999_added_ms')},
            'median_same_zone_cpu_s_per_gb': med([r['same_zone']['proxy_cpu_s_per_gb'] for r in runs
                                                  if r['same_zone']['proxy_cpu_s_per_gb'] is not None]),
        }

    def perf_start(self, path, proxies):
        """With --perf DIR: `perf record -g` on every proxy of this run."""
        if not self.o.perf or not proxies:
            return []
        if shutil.which('perf') is None:
            self.fail('perf', 'perf is not installed (apt-get install linux-perf)')
            self.o.perf = None
            return []
        os.makedirs(self.o.perf, exist_ok=True)
        out = []
        for p in proxies:
            data = os.path.join(self.o.perf, '%s-%s.data' % (path, p.zone))
            proc = subprocess.Popen(['perf', 'record', '-g', '-o', data, '-p', str(p.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out.append((proc, data))
        return out

    def perf_stop(self, perf):
        """Stop the recorders (SIGINT, bounded) and write each report beside its data."""
        for proc, _ in perf:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, data in perf:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                continue
            with open(data[:-5] + '.txt', 'w') as f:
                subprocess.run(['perf', 'report', '-i', data, '--no-children', '--sort', 'sym',
                                '-g', 'none', '--percent-limit', '0.5', '--stdio'],
                               stdout=f, stderr=subprocess.DEVNULL, timeout=120)
            sys.stdout.write('  perf profile: %s\n' % (data[:-5] + '.txt'))

    def derive_produce(self, e):
        c = e['client']
        payload = (c.get('delivered', 0) + c.get('warmup_delivered', 0)) * MSG_SIZE
        e['payload_bytes'] = payload
        gb = payload / 1e9
        e['proxy_cpu_s_per_gb'] = proxy_cpu_per_gb(e['proxy_cpu_s'], payload)
        e['broker_cpu_s_per_gb'] = (round(e['other_cpu_s']['brokers'] / gb, 3)
                                    if gb and e['other_cpu_s'].get('brokers') is not None else None)
        e['client_cpu_s_per_gb'] = round(e['client_cpu_s'] / gb, 3) if gb and e['client_cpu_s'] else None
        # Each proxy apart (WAL: a writes the object, b reads it) and s3rver's own.
        e['proxy_cpu_s_per_gb_by_zone'] = {z: round(v / gb, 3) for z, v in e['proxy_cpu_s'].items()
                                           if v is not None and gb}
        e['s3rver_cpu_s_per_gb'] = (round(e['other_cpu_s']['s3rver'] / gb, 3)
                                    if gb and e['other_cpu_s'].get('s3rver') is not None else None)
        m = e['metrics']
        e['xzone_bytes_per_payload_byte'] = (m['xzone_bytes'] / payload
                                             if m.get('xzone_bytes') is not None and payload else None)
        e['xzone_payload_bytes_per_payload_byte'] = (
            m['xzone_payload_bytes'] / payload if m.get('xzone_payload_bytes') is not None and payload
            else None)
        e['s3_puts_per_gb'] = m['s3_put'] / gb if m.get('s3_put') is not None and gb else None
        e['s3_gets_per_gb'] = m['s3_get'] / gb if m.get('s3_get') is not None and gb else None
        e['mean_object_bytes'] = (m['object_size_sum'] / m['object_size_count']
                                  if m.get('object_size_count') else None)
        e['proxy_peak_rss_kib_max'] = max([v for v in e['proxy_peak_rss_kib'].values() if v] or [0]) or None

    def print_progress(self, e):
        c = e['client']
        lat = c.get('lat_us', {})
        split = e.get('proxy_cpu_s_per_gb_by_zone') or {}
        split = ' (%s)' % ' + '.join('%s %s' % kv for kv in sorted(split.items())) if len(split) > 1 else ''
        if e.get('s3rver_cpu_s_per_gb') is not None:
            split += ', s3rver %s' % e['s3rver_cpu_s_per_gb']
        sys.stdout.write('  %-20s %-10s %8.1f MB/s  p50 %7s ms  p99 %7s ms  proxy CPU %s s/GB%s%s\n' % (
            e['label'], e['load'], c.get('mbps', 0), fmt(lat['p50'] / 1e3 if 'p50' in lat else None),
            fmt(lat['p99'] / 1e3 if 'p99' in lat else None),
            e['proxy_cpu_s_per_gb'], split, ('  ERROR ' + c['error']) if 'error' in c else ''))
        sys.stdout.flush()

    # -- the test bed
    def start_testbed(self):
        o = self.o
        topics = {'bench_a': 12, 'bench_b': 12, 'bench_consume': o.consume_partitions,
                  'bench_idem_a': 1, 'bench_idem_b': 1,
                  # consume with followers (issue 15): led in zone a, a follower in zone b
                  'bench_follow': o.consume_partitions,
                  # fan-out: led in zone a, no replica in zone b that serves
                  'bench_fanout': 12}
        self.tb = TestBed(zones=('a', 'b'), brokers=2, topics=topics, backend=o.backend).start()
        a, b = self.tb.brokers_in('a')[0].id, self.tb.brokers_in('b')[0].id
        for name, parts in topics.items():
            leader = b if name.endswith('_b') else a
            for p in range(parts):
                self.tb.set_leader(name, p, leader)
        if self.tb.backend == 'mock':
            # The mock leader names the zone-b broker as the preferred read
            # replica (to any client, as test_zone_fetch does); real Kafka's
            # RackAwareReplicaSelector picks the replica in the client's rack.
            for p in range(topics['bench_follow']):
                self.tb.set_follower('bench_follow', p, b)

    def fill_consume_topic(self, topic='bench_consume', rate=None, duration=None):
        """Fill a topic (the test bed keeps the last few MB of a partition)."""
        args = ['produce', '-b', self.tb.bootstrap, '-t', topic, '--msg-size', MSG_SIZE,
                '--duration', duration or self.o.fill_s, '--warmup', 0, '--timeout', self.o.timeout]
        if rate:
            args += ['--rate-mbps', rate]
        res, _ = run_kz_bench(args, self.o.timeout)
        if 'error' in res:
            self.fail('consume (fill %s)' % topic, res['error'])
        return res

    def consume_run(self, path, label, bootstrap, cluster=None, topic='bench_consume', extra=()):
        proxies = cluster.proxies if cluster else []
        args = ['consume', '-b', bootstrap, '-t', topic, '--duration', self.o.consume_s,
                '--timeout', self.o.timeout, '-X', 'fetch.wait.max.ms=20'] + list(extra)
        perf = self.perf_start('consume_' + path, proxies)
        try:
            (res, ccpu), fig = measure(proxies, {'brokers': self.tb.pids},
                                       lambda: run_kz_bench(args, self.o.timeout))
        finally:
            self.perf_stop(perf)
        e = {'path': path, 'label': label, 'topic': topic, 'client': res, 'client_cpu_s': ccpu}
        e.update(fig)
        e['proxy_cpu_s_per_gb'] = proxy_cpu_per_gb(fig['proxy_cpu_s'], res.get('bytes', 0))
        gb = res.get('bytes', 0) / 1e9
        e['broker_cpu_s_per_gb'] = (round(fig['other_cpu_s']['brokers'] / gb, 3)
                                    if gb and fig['other_cpu_s'].get('brokers') is not None else None)
        # Fetch payload (record batches) the proxies took from brokers of
        # another zone, per value byte the client read.
        xz = fig['metrics'].get('xzone_payload_bytes')
        e['xzone_payload_bytes'] = xz
        e['xzone_payload_bytes_per_payload_byte'] = xz / res['bytes'] if xz is not None and res.get('bytes') else None
        if 'error' in res:
            self.fail('consume %s' % path, res['error'])
        self.results['consume'].append(e)
        m = fig['metrics']
        sys.stdout.write('  consume %-18s %8.1f MB/s (%d passes)%s%s\n' % (
            path, res.get('mbps', 0), res.get('passes', 0),
            '  fetch payload across zones %s B, follower partitions %s, cache hits %s' % (
                fmt(xz, '%.0f'), fmt(m.get('follower_partitions'), '%.0f'),
                fmt(m.get('fetch_cache_hits'), '%.0f')) if proxies else '',
            ('  ERROR ' + res['error']) if 'error' in res else ''))

    def consume_followers(self, pc):
        """Issue 15: a consumer in zone b, through the zone-b proxy, of a
        topic led in zone a: with the follower in zone b (fetch_from_follower,
        the default) and, for comparison, of a topic with no follower (read
        from the leader across zones). pc runs with fetch_cache_bytes 0: the
        cache would answer kz_bench's repeated passes over the same bytes
        (consume_fanout measures the cache)."""
        self.fill_consume_topic('bench_follow')
        b = pc.proxy_in('b')
        self.consume_run('zone_b_follower', 'kzproxy b, follower', b.kafka, pc, topic='bench_follow')
        self.consume_run('zone_b_leader', 'kzproxy b, xzone leader', b.kafka, pc)

    def consume_fanout(self):
        """Issue 15 item 2: FANOUT_GROUPS consumers (each its own group.id,
        one after the other) in zone b, through the zone-b proxy, of a topic
        led in zone a with no replica serving zone b: the fetch payload that
        crosses zones with the fetch cache (default fetch_cache_bytes) and
        without it (0)."""
        o = self.o
        fill = self.fill_consume_topic('bench_fanout', rate=IDEM_DEFAULT_RATE_MBPS, duration=o.fanout_fill_s)
        for cache, extra in (('on', None), ('off', {'fetch_cache_bytes': 0})):
            e = {'cache': cache, 'groups': [], 'fill_msgs': fill.get('delivered')}
            with self.cluster(extra) as pc:
                b = pc.proxy_in('b')
                if cache == 'off':
                    self.consume_followers(pc)
                for g in range(FANOUT_GROUPS):
                    args = ['consume', '-b', b.kafka, '-t', 'bench_fanout', '--timeout', o.timeout,
                            '-X', 'fetch.wait.max.ms=20']
                    (res, _), fig = measure(pc.proxies, {}, lambda: run_kz_bench(args, o.timeout))
                    m = fig['metrics']
                    if 'error' in res:
                        self.fail('consume fan-out, cache %s, group %d' % (cache, g + 1), res['error'])
                    e['groups'].append({'bytes': res.get('bytes'), 'msgs': res.get('msgs'), 'mbps': res.get('mbps'),
                                        'record_bytes': m.get('fetch_record_bytes'),
                                        'xzone_payload_bytes': m.get('xzone_payload_bytes') or 0,
                                        'cache_hits': m.get('fetch_cache_hits'),
                                        'cache_bytes_saved': m.get('fetch_cache_bytes_saved'),
                                        'error': res.get('error')})
            gs = e['groups']
            e['xzone_payload_bytes'] = sum(g['xzone_payload_bytes'] for g in gs)
            e['one_group_record_bytes'] = gs[0]['record_bytes']
            e['xzone_per_group_bytes'] = ratio(e['xzone_payload_bytes'], gs[0]['record_bytes'])
            self.results['consume_fanout'].append(e)
            sys.stdout.write('  consume fan-out, %d groups, cache %-3s: fetch payload across zones %s B = %s x one '
                             'group\'s %s B of records (per group %s)\n' % (
                                 FANOUT_GROUPS, cache, fmt(e['xzone_payload_bytes'], '%.0f'),
                                 fmt(e['xzone_per_group_bytes']), fmt(gs[0]['record_bytes'], '%.0f'),
                                 ', '.join('%.0f' % g['xzone_payload_bytes'] for g in gs)))

    def idempotent_run(self, path, label, proxy, topic, cluster, idempotent=True):
        """One producer, max.in.flight=5, on one partition; idempotent unless
        told otherwise (the plain one shows what the path pipelines when the
        client does: see PERFORMANCE.md)."""
        o = self.o
        # Offered well above what 5 requests per round trip carry, with a
        # bounded client queue: the producer always has a batch ready, so
        # its request rate is max.in.flight / round trip, and the run ends
        # soon after the window (no backlog of minutes to drain).
        args = ['produce', '-b', proxy.kafka, '-t', topic, '--partition', 0,
                '--msg-size', MSG_SIZE, '--duration', o.idem_s, '--warmup', 0, '--timeout', o.timeout,
                '--rate-mbps', IDEM_RATE_MBPS,
                '-X', 'max.in.flight.requests.per.connection=5', '-X', 'linger.ms=5',
                '-X', 'queue.buffering.max.kbytes=%d' % IDEM_QUEUE_KIB,
                '-X', 'message.timeout.ms=%d' % int(o.timeout * 1000)]
        if idempotent:
            args.append('--idempotent')
            label += ', idempotent'
        else:
            path, label = path + '_plain', label + ', not idempotent'
        (res, _), fig = measure(cluster.proxies, {}, lambda: run_kz_bench(args, o.timeout))
        # Produce requests the client sent to the proxy of its zone (the
        # peer's count is of the appends it makes for them).
        client_reqs = fig['metrics_by_zone'].get(proxy.zone, {}).get('produce_requests')
        e = {'path': path, 'label': label, 'client': res, 'idempotent': idempotent,
             'client_kind': 'librdkafka'}
        e.update(fig)
        e['produce_requests'] = client_reqs
        e['requests_per_s'] = (client_reqs / res['window_s']
                               if client_reqs and res.get('window_s') else None)
        if 'error' in res:
            self.fail('idempotent %s' % path, res['error'], cluster.proxies)
        self.results['idempotent'].append(e)
        lat = res.get('lat_us', {})
        sys.stdout.write('  idempotent %-12s %s req/s  p99 %.1f ms%s\n' % (
            path, e['requests_per_s'] and round(e['requests_per_s'], 1), lat.get('p99', -1) / 1e3,
            ('  ERROR ' + res['error']) if 'error' in res else ''))

    def direct_single(self):
        """The one-partition producers straight to the leader (zone a): the
        references of the proxied rows' ratios. librdkafka's request count
        is not known here (no proxy counts it)."""
        import types
        leader = types.SimpleNamespace(kafka=self.tb.bootstrap, zone='direct')
        none = types.SimpleNamespace(proxies=[])
        self.idempotent_run('direct', 'direct', leader, 'bench_idem_a', none)
        if not self.o.quick:
            self.idempotent_run('direct', 'direct', leader, 'bench_idem_a', none, idempotent=False)
        self.pipelined_run('direct', 'direct', leader, 'bench_idem_a', none, None)

    def pipelined_runs(self, path, label, proxy, topic, cluster):
        """kz_bench's own idempotent producer on one partition, 5 requests
        in flight: without a transactional id (as the Java client's
        idempotent producer), then with one (the test bed's mock checks
        sequences only then), then a control run whose deliberate sequence
        gap that check must catch."""
        self.pipelined_run(path, label, proxy, topic, cluster, None)
        self.pipelined_run(path, label, proxy, topic, cluster, 'kz-bench-%s' % path)
        self.sequence_control(path, proxy, topic)

    def pipelined_args(self, proxy, topic, duration, txid=None, extra=()):
        args = ['idem', '-b', proxy.kafka, '-t', topic, '--partition', 0, '--msg-size', MSG_SIZE,
                '--batch-records', PIPE_BATCH_RECORDS, '--max-in-flight', PIPE_IN_FLIGHT,
                '--duration', duration, '--warmup', 0, '--timeout', self.o.timeout]
        if txid:
            args += ['--transactional-id', txid]
        return args + list(extra)

    def pipelined_run(self, path, label, proxy, topic, cluster, txid):
        o = self.o
        if txid:
            path, label, dur = path + '_pipelined_txn', label + ', pipelined, txn id', o.pipe_txn_s
        else:
            path, label, dur = path + '_pipelined', label + ', pipelined', o.pipe_s
        args = self.pipelined_args(proxy, topic, dur, txid)
        (res, _), fig = measure(cluster.proxies, {}, lambda: run_kz_bench(args, o.timeout))
        e = {'path': path, 'label': label, 'client': res, 'idempotent': True, 'client_kind': 'kz_bench',
             'pipelined': True, 'transactional_id': txid,
             # The mock broker checks sequences only for a transactional id;
             # the base offsets are checked by kz_bench in every run.
             'sequences_checked_by_broker': bool(txid)}
        e.update(fig)
        # kz_bench counts its own requests exactly; the proxy's count (its
        # whole run, set-up included) is kept to cross-check.
        e['produce_requests'] = fig['metrics_by_zone'].get(proxy.zone, {}).get('produce_requests')
        e['requests_per_s'] = res.get('requests_per_s')
        e['sequence_errors'] = res.get('sequence_errors')
        e['in_order'] = ('error' not in res and res.get('sequence_errors') == 0
                         and res.get('offsets_backwards') == 0 and res.get('offset_gaps') == 0)
        if 'error' in res:
            self.fail('pipelined %s' % path, res['error'], cluster.proxies)
        self.results['idempotent'].append(e)
        lat = res.get('lat_us', {})
        sys.stdout.write('  pipelined %-22s %s req/s  p99 %.1f ms  sequence errors %s%s\n' % (
            path, e['requests_per_s'] and round(e['requests_per_s'], 1), lat.get('p99', -1) / 1e3,
            res.get('sequence_errors'), ('  ERROR ' + res['error']) if 'error' in res else ''))

    def sequence_control(self, path, proxy, topic):
        """A run whose 4th request leaves a gap in the sequence: the broker
        must answer OUT_OF_ORDER_SEQUENCE_NUMBER, or the zero sequence
        errors of the runs above prove nothing."""
        args = self.pipelined_args(proxy, topic, self.o.control_s, 'kz-bench-control-%s' % path,
                                   ('--skip-sequence-at', 3))
        res, _ = run_kz_bench(args, self.o.timeout)
        errors = res.get('errors') or {}
        e = {'path': path, 'client': res, 'detected': '45' in errors}
        if not e['detected']:
            self.fail('sequence check control %s' % path,
                      'a batch sent with a sequence gap was not answered OUT_OF_ORDER_SEQUENCE_NUMBER '
                      '(%s): the broker does not check sequences on this path'
                      % res.get('error', 'no error at all'))
        self.results['sequence_controls'].append(e)
        sys.stdout.write('  sequence check control %-12s %s\n' % (
            path, 'gap caught: %s' % res.get('error') if e['detected'] else 'NOT CAUGHT'))

    def idle_run(self, proxy, n):
        """n idle client connections on proxy, each after one ApiVersions
        exchange, as a client leaves them; RSS before and after."""
        e = {'proxy_zone': proxy.zone, 'connections': n}
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        e['rlimit_nofile'] = soft
        if n + 200 > soft:
            e['error'] = 'RLIMIT_NOFILE is %d, too low for %d connections' % (soft, n)
            self.fail('idle connections', e['error'])
            self.results['idle_connections'].append(e)
            return
        base_active = metrics(proxy).sum('kzproxy_connections_active')
        e['rss_before_kib'] = rss_kib(proxy)
        socks = []
        sel = selectors.DefaultSelector()
        req = struct.pack('>hhi', 18, 0, 1) + struct.pack('>h', 7) + b'kzbench'
        req = struct.pack('>i', len(req)) + req
        t0 = time.monotonic()
        try:
            # Connect in steps of at most a listen backlog, each step awaited
            # (bounded), so no SYN is dropped and retried a second later.
            step = 100
            for i in range(0, n, step):
                batch = []
                for _ in range(min(step, n - i)):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    s.connect_ex(('127.0.0.1', proxy.kafka_port))
                    socks.append(s)
                    batch.append(s)
                    sel.register(s, selectors.EVENT_WRITE)
                pending, deadline = set(batch), time.monotonic() + 30
                while pending:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise HarnessError('%d connections not established in 30s' % len(pending))
                    for key, _ in sel.select(left):
                        s = key.fileobj
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            raise HarnessError('connect: %s' % os.strerror(err))
                        sel.unregister(s)
                        pending.discard(s)
            wait_until(lambda: metrics(proxy).sum('kzproxy_connections_active') >= base_active + n,
                       60, '%d connections accepted' % n, interval=0.1)
            e['rss_connected_kib'] = rss_kib(proxy)
            # One ApiVersions exchange on each, as a client does before idling.
            for s in socks:
                s.send(req)  # 25 bytes into an empty socket buffer: never short
                sel.register(s, selectors.EVENT_READ, [b''])
            pending, deadline = set(socks), time.monotonic() + 60
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessError('%d ApiVersions responses missing after 60s' % len(pending))
                for key, _ in sel.select(left):
                    s, buf = key.fileobj, key.data
                    chunk = s.recv(65536)
                    if not chunk:
                        raise HarnessError('the proxy closed an idle connection')
                    buf[0] += chunk
                    if len(buf[0]) >= 4 and len(buf[0]) >= 4 + struct.unpack('>i', buf[0][:4])[0]:
                        sel.unregister(s)
                        pending.discard(s)
            e['setup_s'] = round(time.monotonic() - t0, 2)
            e['rss_idle_kib'] = rss_kib(proxy)
            e['peak_rss_kib'] = proc_status_kib(proxy.pid, 'VmHWM')
            e['kib_per_connection'] = (e['rss_idle_kib'] - e['rss_before_kib']) / n
            e['active_connections'] = metrics(proxy).sum('kzproxy_connections_active')
        except (HarnessError, OSError) as err:
            e['error'] = str(err)
            self.fail('idle connections', err)
        finally:
            sel.close()
            for s in socks:
                s.close()
        self.results['idle_connections'].append(e)
        sys.stdout.write('  idle connections: %d on proxy %s: %s KiB each (RSS %s -> %s KiB)%s\n' % (
            n, proxy.zone, e.get('kib_per_connection') and round(e['kib_per_connection'], 2),
            e.get('rss_before_kib'), e.get('rss_idle_kib'),
            ('  ERROR ' + e['error']) if 'error' in e else ''))

    # -- proxy clusters
    def cluster(self, extra):
        if self.o.proxy_config:  # --proxy-config: top-level keys over the scenario's own
            extra = dict(extra or {}, **json.loads(self.o.proxy_config))
        return ProxyCluster(self.tb, zones=('a', 'b'), per_zone=1, extra_config=extra,
                            log_level='warn', workdir=tempfile.mkdtemp(dir=self.workdir))

    def wal_config(self, store):
        # The defaults made explicit (250 ms / 8 MiB), so the table says what ran.
        return {'wal': {'store': store, 'flush_ms': self.o.flush_ms, 'flush_bytes': 8 * 1024 * 1024},
                'peer_secret': PEER_SECRET}

    def record_unavailable(self, path, label, reason):
        for load in ('fixed', 'saturation'):
            self.results['produce'].append({'path': path, 'label': label, 'load': load,
                                            'available': False, 'reason': reason})
        for load in ('fixed', 'saturation'):
            self.results['idem_default'].append({'path': path, 'label': label + ', idem default', 'load': load,
                                                 'available': False, 'reason': reason})
        for suffix, what in (('', ''), ('_pipelined', ', pipelined'), ('_pipelined_txn', ', pipelined, txn id')):
            self.results['idempotent'].append({'path': path + suffix, 'label': label + what,
                                               'available': False, 'reason': reason})
        sys.stdout.write('  %-20s %s: %s\n' % (label, NA_WAL, reason))

    def wal_path(self, path, label, store, others=None):
        pc = self.cluster(self.wal_config(store))
        try:
            pc.start()
        except HarnessError as err:
            lines = [ln for ln in str(err).splitlines() if ln.strip()]
            reason = next((ln.strip() for ln in reversed(lines) if 'wal' in ln.lower()
                           or 'unknown key' in ln or 'peer_secret' in ln), lines[0] if lines else '?')
            if 'invalid: ' in reason:  # "kzproxy: /tmp/.../x.json: invalid: wal: unknown key"
                reason = 'kzproxy rejected the config: ' + reason.split('invalid: ', 1)[1]
            self.record_unavailable(path, label, reason[:300])
            return
        failed = True
        try:
            a = pc.proxy_in('a')
            self.produce_runs(path, label, a.kafka, 'bench_b', pc, others)
            # A proxy that took the config but wrote no object did not use
            # the WAL path: say so rather than report its numbers as WAL.
            runs = [e for e in self.results['produce'] if e['path'] == path and 'client' in e]
            puts = sum((e['metrics'].get('s3_put') or 0) for e in runs)
            if puts == 0:
                for e in runs:
                    e['available'] = False
                    e['reason'] = 'no object was written: cross-zone produce did not take the WAL path'
                sys.stdout.write('  %s: %s (0 objects written)\n' % (label, NA_WAL))
            if not self.o.no_single:
                self.idem_default_runs(path, label, a.kafka, 'bench_b', pc, others)
                self.idempotent_run(path, label, a, 'bench_idem_b', pc)
                self.idempotent_run(path, label, a, 'bench_idem_b', pc, idempotent=False)
                self.pipelined_runs(path, label, a, 'bench_idem_b', pc)
            failed = False
        finally:
            problems = pc._teardown(failed=failed)
            for pr in problems:
                self.fail('%s (proxies)' % path, pr.splitlines()[0])

    def wal_idempotent_idle(self, store):
        path, label = 'wal_local_idle', 'WAL local, idle %dms' % FLUSH_IDLE_MS
        cfg = self.wal_config(store)
        cfg['wal']['flush_idle_ms'] = FLUSH_IDLE_MS
        pc = self.cluster(cfg)
        try:
            pc.start()
        except HarnessError as err:
            self.results['idempotent'].append({'path': path, 'label': label, 'available': False,
                                               'reason': str(err).splitlines()[0][:300]})
            return
        failed = True
        try:
            self.idempotent_run(path, label, pc.proxy_in('a'), 'bench_idem_b', pc)
            failed = False
        finally:
            for pr in pc._teardown(failed=failed):
                self.fail('%s (proxies)' % path, pr.splitlines()[0])

    def run(self):
        o = self.o
        self.start_testbed()
        sys.stdout.write('kzproxy benchmark: %s s per run after %s s warm-up, fixed load %s MB/s, '
                         '%d-byte messages\n' % (o.duration, o.warmup, o.rate_mbps, MSG_SIZE))
        if self.want('direct'):
            self.produce_runs('direct', 'direct', self.tb.bootstrap, 'bench_a')
            if not o.no_single:
                # The references of the idempotent rows (their ratios to direct).
                self.idem_default_runs('direct', 'direct', self.tb.bootstrap, 'bench_a')
                self.direct_single()
        if self.want('idle'):
            # A proxy of its own that has served no load, so the connections'
            # memory is not hidden in heap the produce runs left free.
            with self.cluster(None) as pc:
                self.idle_run(pc.proxy_in('a'), o.idle_conns)
        if self.want('same_zone') or self.want('consume'):
            with self.cluster(None) as pc:
                a = pc.proxy_in('a')
                if self.want('same_zone'):
                    if self.want('direct') and o.pairs > 0:
                        self.latency_pairs(a, pc)  # before any flat-out run through this proxy
                    self.produce_runs('same_zone', 'kzproxy same-zone', a.kafka, 'bench_a', pc)
                    self.idempotent_run('same_zone', 'kzproxy same-zone', a, 'bench_idem_a', pc)
                    self.idempotent_run('same_zone', 'kzproxy same-zone', a, 'bench_idem_a', pc,
                                        idempotent=False)
                    self.pipelined_runs('same_zone', 'kzproxy same-zone', a, 'bench_idem_a', pc)
                if self.want('consume'):
                    self.fill_consume_topic()
                    self.consume_filled = True
                    self.consume_run('direct', 'direct', self.tb.bootstrap)
                    self.consume_run('same_zone', 'kzproxy same-zone', a.kafka, pc)
            if self.want('consume'):
                self.consume_fanout()
        if self.want('same_zone_tls'):
            self.same_zone_tls()
        if self.want('same_zone_tls_java'):
            self.same_zone_tls_java()
        if self.want('workers'):
            self.same_zone_workers()
        if self.want('wal_local'):
            root = tempfile.mkdtemp(prefix='wal-', dir=self.workdir)
            store = {'backend': 'local', 'root': root}
            self.wal_path('wal_local', 'kzproxy WAL local', store)
            # The same with wal.flush_idle_ms (off by default): a lone
            # producer's objects are stored when its appends pause.
            if not self.o.no_single:
                self.wal_idempotent_idle(store)
        if self.want('wal_s3'):
            self.wal_s3()
        if self.want('instr'):
            self.instr()

    def same_zone_tls(self):
        """Same-zone produce through a proxy whose client listener takes TLS
        (client_tls; a test CA made with openssl), with librdkafka's own TLS
        client: what TLS termination costs the proxy."""
        from kzbed import make_test_pki
        label = 'kzproxy same-zone TLS'
        try:
            pki = make_test_pki(os.path.join(self.workdir, 'pki'))
        except Exception as err:
            self.fail(label, 'no test certificates: %s' % err)
            return
        tls = {'client_tls': {'cert_file': pki['server'], 'key_file': pki['server_key']}}
        ssl = ('-X', 'security.protocol=ssl', '-X', 'ssl.ca.location=' + pki['ca'])
        with self.cluster(tls) as pc:
            a = pc.proxy_in('a')
            self.produce_runs('same_zone_tls', label, a.kafka, 'bench_a', pc, extra=ssl)
            # Consume over TLS: the proxy encrypts what it fetched. Its
            # plaintext reference in the same run is the consume scenario's
            # same-zone row, run here when that scenario is not.
            if not self.consume_filled:
                self.fill_consume_topic()
                self.consume_filled = True
            self.consume_run('same_zone_tls', label, a.kafka, pc, extra=ssl)
        if not self.want('consume'):
            with self.cluster(None) as pc:
                self.consume_run('same_zone', 'kzproxy same-zone', pc.proxy_in('a').kafka, pc)

    def same_zone_tls_java(self):
        """Same-zone produce with the Java client (Apache Kafka's
        ProducerPerformance, the test bed's release) through proxy a,
        plaintext and with client_tls, alternately: fixed load plaintext,
        fixed load TLS, flat out plaintext, flat out TLS. The proxy's CPU
        per GB as produce_runs measures it, and TLS minus plaintext."""
        o = self.o
        label, label_tls = 'Java same-zone', 'Java same-zone TLS'
        if o.quick:
            sys.stdout.write('  %-20s skipped in --quick mode (a JVM start per run; make bench runs it)\n' % label_tls)
            self.results['java_skipped'] = 'skipped in --quick mode'
            return
        why, argv0 = java_perf_argv()
        if why is None:
            from kzbed import make_test_pki
            try:
                pki = make_test_pki(os.path.join(self.workdir, 'pki-java'))
            except Exception as err:  # openssl missing or failing
                why = 'no test certificates: %s' % err
        if why is not None:
            sys.stdout.write('  %-20s skipped: %s\n' % (label_tls, why))
            self.results['java_skipped'] = why
            for path, lab in (('same_zone_java', label), ('same_zone_tls_java', label_tls)):
                for load in ('fixed', 'saturation'):
                    self.results['produce'].append({'path': path, 'label': lab, 'load': load, 'available': False,
                                                    'na': 'skipped', 'reason': why, 'client_kind': 'java'})
            return
        tls = {'client_tls': {'cert_file': pki['server'], 'key_file': pki['server_key']}}
        tls_props = ['security.protocol=SSL', 'ssl.truststore.type=PEM', 'ssl.truststore.location=' + pki['ca']]
        from confluent_kafka import Consumer
        offsets = Consumer({'bootstrap.servers': self.tb.bootstrap, 'group.id': 'kz-bench-offsets',
                            'enable.auto.commit': False})
        try:
            with self.cluster(None) as plain, self.cluster(tls) as sec:
                for load, rate in (('fixed', o.rate_mbps), ('saturation', None)):
                    for path, lab, pc, props in (('same_zone_java', label, plain, []),
                                                 ('same_zone_tls_java', label_tls, sec, tls_props)):
                        self.java_produce_run(path, lab, pc, load, rate, argv0, props, offsets)
        finally:
            offsets.close()
        rows = {(e['path'], e['load']): e for e in self.results['produce'] if e.get('client_kind') == 'java'}
        diffs = []
        for load in ('fixed', 'saturation'):
            a, b = rows.get(('same_zone_java', load)), rows.get(('same_zone_tls_java', load))
            if a and b and a.get('proxy_cpu_s_per_gb') is not None and b.get('proxy_cpu_s_per_gb') is not None:
                diffs.append('%s %+.2f' % (load, b['proxy_cpu_s_per_gb'] - a['proxy_cpu_s_per_gb']))
        sys.stdout.write('  Java client, TLS minus plaintext, proxy CPU: %s core-s/GB\n'
                         % (', '.join(diffs) or 'n/a'))

    def topic_end_total(self, consumer, topic, partitions):
        """The sum of topic's end offsets (asked of the brokers, not through a proxy)."""
        from confluent_kafka import TopicPartition
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(partitions))

    def java_produce_run(self, path, label, pc, load, rate, argv0, props, offsets, topic='bench_a', partitions=12):
        """One ProducerPerformance run through pc's proxy a: 1 KiB records,
        acks=all, linger.ms=5 (the Java client's other defaults: batch.size
        16384, idempotence on), at rate MB/s (its --throughput in records/s)
        for warm-up + duration, or flat out (--throughput -1) stopped by time.
        Its bytes are the topic's end offsets before and after (what reached
        the broker), read every JAVA_OFFSETS_EVERY_S; MB/s counts those that
        landed from warm-up's end to the last record (flat out: to the stop).
        The proxies' CPU is measured from before the JVM starts to after it
        has exited, over every byte delivered, as produce_runs does."""
        o = self.o
        a = pc.proxy_in('a')
        span = o.warmup + o.duration
        msgs_s = rate * 1e6 / MSG_SIZE if rate else None
        records = int(round((msgs_s or JAVA_CEILING_MSGS_S) * span))
        argv = argv0 + ['--topic', topic, '--num-records', records, '--record-size', MSG_SIZE,
                        '--throughput', int(round(msgs_s)) if msgs_s else -1,
                        '--producer-props', 'bootstrap.servers=' + a.kafka, 'acks=all', 'linger.ms=5'] + props
        argv = [str(x) for x in argv]
        out_path = os.path.join(self.workdir, '%s-%s.out' % (path, load))
        entry = {'path': path, 'label': label, 'load': load, 'offered_mbps': rate, 'client_kind': 'java',
                 'java_num_records': records, 'java_throughput_arg': argv[argv.index('--throughput') + 1]}

        def end_total():
            return self.topic_end_total(offsets, topic, partitions)

        def run():
            base = end_total()
            c0 = children_cpu_s()
            samples, first, stopped, rc = self.java_poll(argv, out_path, end_total, base, span, rate)
            final = end_total()
            cpu = children_cpu_s() - c0
            with open(out_path, 'rb') as f:
                lines = [ln.strip() for ln in f.read().decode('utf-8', 'replace').splitlines() if ln.strip()]
            c = java_client_figures(lines, rc, stopped, samples, first, base, final, records, o.warmup)
            return {'cpu': cpu, 'client': c}

        res, fig = measure(pc.proxies, {'brokers': self.tb.pids}, run)
        entry['client'] = res['client']
        entry['client_cpu_s'] = round(res['cpu'], 3)
        entry.update(fig)
        if 'error' in res['client']:
            self.fail('%s %s' % (path, load), res['client']['error'])
        self.derive_produce(entry)
        self.results['produce'].append(entry)
        self.print_progress(entry)

    @staticmethod
    def java_poll(argv, out_path, end_total, base, span, rate):
        """Run ProducerPerformance (output to out_path), sampling the topic's
        end offsets until it exits, or until its deadline: JAVA_START_S for
        the first record, then warm-up + duration flat out, or 1.5 times that
        plus 10 s at a fixed rate (it ends itself; this only bounds it).
        Returns (samples [(t, total)], time of the first record or None,
        stopped by time, exit code)."""
        samples, first, stopped = [], None, False
        t0 = time.monotonic()
        with open(out_path, 'wb') as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            try:
                while True:  # bounded: every branch has a deadline
                    rc = proc.poll()
                    now, total = time.monotonic(), end_total()
                    samples.append((now, total))
                    if first is None and total > base:
                        first = now
                    if rc is not None:
                        break
                    if first is None:
                        limit = t0 + JAVA_START_S
                    elif rate is None:
                        limit = first + span
                    else:
                        limit = first + 1.5 * span + 10
                    if now >= limit:
                        stopped = True
                        break
                    try:
                        proc.wait(timeout=JAVA_OFFSETS_EVERY_S)
                    except subprocess.TimeoutExpired:
                        pass
            finally:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=30)
        return samples, first, stopped, proc.returncode

    def same_zone_workers(self, producers=2):
        """Same-zone saturation with `workers` 1 and 2: producers kz_bench
        processes at once (one connection each: a connection stays on one
        thread), flat out, next to the same producers straight to the
        brokers. On a 2-core machine the load generator and the mock broker
        share the cores with the proxy's threads: this measures that."""
        out = self.results.setdefault('workers', [])

        def run(bootstrap, proxies):
            res = [None] * producers
            def one(i):
                res[i] = run_kz_bench(self.producer_args(bootstrap, 'bench_a', None,
                                                         ('--client-id', 'kz-bench-w%d' % i)), self.o.timeout)
            ts = [threading.Thread(target=one, args=(i,)) for i in range(producers)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            return res
        # The "wal" rows give the proxies a wal section (a local store):
        # the producers still write to leaders in their own zone, but with a
        # WAL router every Produce is served by the main thread, which
        # workers hand each request to.
        for workers, wal in ((None, False), (1, False), (2, False), (1, True), (2, True)):
            cfg = {'workers': workers}
            if wal:
                cfg.update(self.wal_config({'backend': 'local', 'root': tempfile.mkdtemp(
                    prefix='wal-workers-', dir=self.workdir)}))
            pc = self.cluster(cfg) if workers else None
            try:
                if pc:
                    pc.start()
                boot = pc.proxy_in('a').kafka if pc else self.tb.bootstrap
                res, fig = measure(pc.proxies if pc else [], {'brokers': self.tb.pids}, lambda: run(boot, pc))
            except HarnessError as err:
                self.fail('workers %s%s' % (workers, ', wal section' if wal else ''), err)
                continue
            finally:
                if pc:
                    pc._teardown(failed=False)
            errs = [r.get('error') for r, _ in res if r.get('error') and not r.get('delivered')]
            if errs:
                self.fail('workers %s%s' % (workers, ', wal section' if wal else ''), errs[0])
            mbps = sum(r.get('mbps') or 0 for r, _ in res)
            payload = sum((r.get('delivered', 0) + r.get('warmup_delivered', 0)) * MSG_SIZE for r, _ in res)
            e = {'workers': workers, 'wal_section': wal, 'producers': producers, 'mbps': round(mbps, 1),
                 'proxy_cpu_s': sum(v for v in fig['proxy_cpu_s'].values() if v is not None) if pc else None,
                 'proxy_cpu_s_per_gb': proxy_cpu_per_gb(fig['proxy_cpu_s'], payload) if pc else None,
                 'broker_cpu_s': fig['other_cpu_s'].get('brokers'), 'loadavg_before_after': fig['loadavg_before_after']}
            direct = next((d for d in out if d['workers'] is None), None)
            e['ratio_to_direct'] = ratio(e['mbps'], direct['mbps']) if direct and workers else None
            out.append(e)
            sys.stdout.write('  %-20s sat  %8.1f MB/s (%d producers)%s%s\n' % (
                'kzproxy same-zone, workers %d%s' % (workers, ', wal section' if wal else '') if workers
                else 'direct',
                mbps, producers, '  ratio %s' % fmt_ratio(e['ratio_to_direct']) if workers else '',
                '  %s core-s/GB' % fmt(e['proxy_cpu_s_per_gb']) if workers else ''))
            sys.stdout.flush()

    def wal_s3(self):
        label = 'kzproxy WAL s3rver'
        try:
            from objwal_env import S3rver
            srv = S3rver('s3rver', 'kz-bench')
        except (Exception, SystemExit) as err:  # objwal_env exits when node_modules is missing
            self.record_unavailable('wal_s3', label, 's3rver did not start: %s' % err)
            return
        try:
            store = {'backend': 's3', 'bucket': 'kz-bench', 'endpoint': 'http://127.0.0.1:%d' % srv.port,
                     'region': 'us-east-1', 'path_style': True, 'access_key': 'S3RVER',
                     'secret_key': 'S3RVER',
                     # What a proxy does by default against S3 over https;
                     # s3rver speaks plain http, where the default is signed.
                     'unsigned_payload': True}
            self.wal_path('wal_s3', label, store, others={'s3rver': srv.proc.pid})
        finally:
            srv.stop()

    # -- instructions per payload byte (issue 17)
    def instr(self):
        """The proxies' user-space instructions per payload byte (callgrind's
        Ir, instructions executed) on the same-zone path (proxy a alone: the
        client in zone a, the leader in zone a) and on the WAL path with the
        local store (proxies a and b, each counted): the count of a run of 2N
        messages minus that of a run of N, each on fresh proxies stopped with
        SIGTERM (callgrind writes its file at exit), over the difference of
        their payload bytes, so start-up and shutdown cancel out. The
        kernel's work for the proxies (socket and file copies, the page
        cache) is not counted: only the proxies' code and the libraries it
        calls (libc, libevent, libcurl...)."""
        o = self.o
        n = o.instr_msgs
        out = self.results['instr'] = {
            'paths': [], 'messages': [n, 2 * n], 'msg_size': MSG_SIZE, 'batch_msgs': INSTR_BATCH_MSGS,
            'rate_mbps': INSTR_RATE_MBPS, 'callgrind_args': list(CALLGRIND_ARGS)}
        why = instr_unavailable()
        if why:
            out['skipped'] = why
            sys.stdout.write('  instr: figure skipped: %s\n' % why)
            return
        try:
            out['valgrind'] = subprocess.run(['valgrind', '--version'], stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out['valgrind'] = None
        wal = self.wal_config({'backend': 'local',
                               'root': tempfile.mkdtemp(prefix='wal-instr-', dir=self.workdir)})
        if o.quick:
            # A draining proxy waits two health-check periods (1 s each by
            # default) for its peers; the quick figures are checked for form
            # only. The full run keeps the default: the checks cost
            # instructions by the second, not by the byte.
            wal['health_check_ms'] = 200
        else:
            wal['wal']['flush_ms'] = INSTR_FLUSH_MS
        out['wal_flush_ms'], out['wal_flush_bytes'] = wal['wal']['flush_ms'], wal['wal']['flush_bytes']
        for path, label, zones, topic, cfg in (
                ('same_zone', 'same-zone', ('a',), 'bench_idem_a', None),
                ('wal_local', 'WAL local', ('a', 'b'), 'bench_idem_b', wal)):
            e = {'path': path, 'label': label, 'zones': list(zones), 'runs': []}
            out['paths'].append(e)
            try:
                for count in (n, 2 * n):
                    e['runs'].append(self.instr_run(label, zones, topic, cfg, count))
            except (HarnessError, OSError) as err:
                e['error'] = str(err)
                self.fail('instr %s' % path, err)
                continue
            r1, r2 = e['runs']
            dbytes = r2['payload_bytes'] - r1['payload_bytes']
            e['payload_bytes_difference'] = dbytes
            e['instructions_per_payload_byte_by_zone'] = {
                z: round((r2['instructions'][z] - r1['instructions'][z]) / dbytes, 4) for z in zones}
            e['instructions_per_payload_byte'] = round(
                sum(r2['instructions'][z] - r1['instructions'][z] for z in zones) / dbytes, 4)
            sys.stdout.write('instr %s\n' % instr_line(e))
            sys.stdout.flush()

    def instr_run(self, label, zones, topic, cfg, count):
        """Fresh proxies in zones under callgrind; one producer in zone a sends
        count messages through proxy a to one partition of topic; SIGTERM;
        each proxy's Ir from its callgrind file."""
        o = self.o
        outdir = tempfile.mkdtemp(prefix='callgrind-', dir=self.workdir)
        wrapper = ['valgrind'] + list(CALLGRIND_ARGS) + [
            '--callgrind-out-file=' + os.path.join(outdir, 'callgrind.out.%p')]
        if o.proxy_config:
            cfg = dict(cfg or {}, **json.loads(o.proxy_config))
        # Under callgrind a proxy starts and drains tens of times slower.
        pc = ProxyCluster(self.tb, zones=zones, per_zone=1, extra_config=cfg, log_level='warn',
                          workdir=tempfile.mkdtemp(dir=self.workdir), ready_timeout=120, stop_timeout=120)
        saved = os.environ.get('KZ_PROXY_WRAPPER')
        os.environ['KZ_PROXY_WRAPPER'] = ' '.join(shlex.quote(a) for a in wrapper)
        t0 = time.monotonic()
        try:
            pc.start()
        finally:
            if saved is None:
                os.environ.pop('KZ_PROXY_WRAPPER', None)
            else:
                os.environ['KZ_PROXY_WRAPPER'] = saved
        pids = {p.zone: p.pid for p in pc.proxies}
        failed, figs, t1 = True, {}, time.monotonic()
        try:
            if len(zones) > 1:
                # Steady state: proxy a derives chunk CRCs from the batches'
                # own once proxy b's KzHello has said it may (81aa764); a run
                # that starts before the first health check would measure
                # a mix of both ways. Asked once a second: each /metrics
                # answer is proxy a's work too, and a run asked more often
                # than the other would count more of it.
                wait_until(lambda: metrics(pc.proxy_in('a')).sum('kzproxy_peer_slice_errors', default=0) >= 1,
                           o.timeout, 'proxy a to learn from its peer\'s KzHello (under callgrind)', interval=1.0)
                t1 = time.monotonic()
            # Exactly count messages, INSTR_BATCH_MSGS to a request: the batch
            # is full long before the linger expires, at any machine speed.
            args = ['produce', '-b', pc.proxy_in('a').kafka, '-t', topic, '--partition', 0,
                    '--msg-size', MSG_SIZE, '--messages', count, '--warmup', 0,
                    '--rate-mbps', INSTR_RATE_MBPS, '--timeout', o.timeout,
                    '-X', 'acks=all', '-X', 'linger.ms=%d' % INSTR_LINGER_MS,
                    '-X', 'batch.num.messages=%d' % INSTR_BATCH_MSGS,
                    '-X', 'message.timeout.ms=%d' % int(o.timeout * 1000)]
            res, _ = run_kz_bench(args, o.timeout)
            # /metrics once per run, after the load, in both runs alike (the
            # proxy's own work to answer it cancels out in the difference).
            for p in pc.proxies:
                m = metrics(p)
                figs[p.zone] = {'produce_requests': series_sum(m, METRIC_PICKS['produce_requests']),
                                # Produce requests streamed as they arrived (px_cut.c)
                                'cut_through_requests': m.sum('kzproxy_produce_cut_through_total', default=0),
                                'objects_stored': series_sum(m, METRIC_PICKS['s3_put'])}
            failed = False
        finally:
            t2 = time.monotonic()
            problems = pc._teardown(failed=failed)
        if problems:
            raise HarnessError(problems[0].splitlines()[0])
        delivered = res.get('delivered', 0) + res.get('warmup_delivered', 0)
        if 'error' in res or delivered != count or res.get('failed'):
            raise HarnessError('%d of %d messages delivered%s' % (
                delivered, count, ': ' + res['error'] if 'error' in res else ''))
        ir = {}
        for z, pid in pids.items():
            ir[z] = callgrind_ir(os.path.join(outdir, 'callgrind.out.%d' % pid))
        r = {'messages': count, 'payload_bytes': delivered * MSG_SIZE, 'instructions': ir,
             'metrics_by_zone': figs, 'elapsed_s': round(time.monotonic() - t0, 2),
             'start_produce_stop_s': [round(t1 - t0, 2), round(t2 - t1, 2), round(time.monotonic() - t2, 2)],
             'client_mbps': res.get('mbps')}
        objects = figs.get('a', {}).get('objects_stored')
        sys.stdout.write('  instr %-10s %6d messages: %s instructions%s (%.1f s: start %.1f, produce %.1f, '
                         'stop %.1f)\n' % ((label, count, ', '.join('proxy %s %d' % kv for kv in sorted(ir.items())),
                                             ', %d objects' % objects if objects else '', r['elapsed_s'])
                                            + tuple(r['start_produce_stop_s'])))
        sys.stdout.flush()
        return r

    def close(self):
        if self.tb is not None:
            self.tb.stop(check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------- report

def machine_info():
    info = {'nproc': os.cpu_count(), 'kernel': platform.release(), 'python': platform.python_version()}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    info['cpu_model'] = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open('/proc/meminfo') as f:
            info['mem_total_kib'] = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        from confluent_kafka import libversion
        info['librdkafka'] = libversion()[0]
    except ImportError:
        pass
    try:
        info['git'] = subprocess.run(['git', '-C', top_srcdir(), 'describe', '--always', '--dirty'],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10,
                                     text=True).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def fmt(v, spec='%.2f', na='-'):
    return na if v is None else spec % v


def sig3(v):
    """v with three significant digits, trailing zeros kept: 1.10, 0.264, 812."""
    if v is None:
        return '-'
    if v <= 0:
        return '%g' % v
    return '%.*f' % (max(0, 2 - math.floor(math.log10(v))), v)


def instr_line(e):
    """'same-zone: 0.264 instructions/payload byte (proxy a)'."""
    z = e['instructions_per_payload_byte_by_zone']
    who = ('proxy %s' % e['zones'][0] if len(z) == 1 else
           ', '.join('%s %s' % (k, sig3(z[k])) for k in e['zones']))
    return '%s: %s instructions/payload byte (%s)' % (e['label'], sig3(e['instructions_per_payload_byte']), who)


def fmt_ratio(v):
    """A ratio with two significant digits below 0.1 (0.0012), else two decimals."""
    return '-' if v is None else ('%.2g' % v if v < 0.1 else '%.2f' % v)


def direct_of(results, load):
    for e in results['produce']:
        if e['path'] == 'direct' and e['load'] == load and 'client' in e:
            return e
    return None


def add_ratios(results):
    for e in results['produce']:
        d = direct_of(results, e['load'])
        if d is None or 'client' not in e or e.get('available') is False or e.get('client_kind') == 'java':
            continue
        c, dc = e['client'], d['client']
        e['throughput_ratio_to_direct'] = ratio(c.get('mbps'), dc.get('mbps'))
        for q in ('p50', 'p99', 'p999'):
            a, b = c.get('lat_us', {}).get(q), dc.get('lat_us', {}).get(q)
            e['%s_added_ms' % q] = (a - b) / 1e3 if a is not None and b is not None and a >= 0 and b >= 0 else None
    dcons = next((e for e in results['consume'] if e['path'] == 'direct'), None)
    for e in results['consume']:
        if dcons is not None:
            e['throughput_ratio_to_direct'] = ratio(e['client'].get('mbps'), dcons['client'].get('mbps'))
            e['proxy_cpu_ratio_to_direct_broker'] = ratio(e.get('proxy_cpu_s_per_gb'),
                                                          dcons.get('broker_cpu_s_per_gb'))
    # The Java rows have no reference (no Java run straight to the brokers):
    # librdkafka's direct run is another client.
    add_relative(results['produce'], lambda e: None if e.get('client_kind') == 'java' else direct_of(results, e['load']))
    add_relative(results['idem_default'],
                 lambda e: next((d for d in results['idem_default'] if d['path'] == 'direct'
                                 and d['load'] == e['load'] and 'client' in d), None))
    add_relative(results['idempotent'], lambda e: single_direct_of(results, e))


def single_direct_of(results, e):
    """The direct one-partition row an idempotent row compares with: same
    client, same idempotence, pipelined or not (txn id rows: the plain
    pipelined one)."""
    if e['path'].startswith('direct'):
        return None
    want = 'direct_pipelined' if e.get('pipelined') else ('direct' if e.get('idempotent') else 'direct_plain')
    return next((d for d in results['idempotent'] if d['path'] == want and 'client' in d), None)


def add_relative(rows, ref_of):
    """Each figure of each row as a ratio to its direct reference measured in
    the same run (issue 17 item 4: machines differ by 3x from run to run, a
    ratio does not): throughput and latencies as multiples of direct's, the
    proxies' CPU per GB as a multiple of the brokers' CPU per GB in the direct
    run (the mock broker: one thread doing the same work in every run)."""
    for e in rows:
        d = ref_of(e)
        if d is None or d is e or 'client' not in e or e.get('available') is False:
            continue
        c, dc = e['client'], d['client']
        both_mbps = c.get('mbps') is not None and dc.get('mbps') is not None
        rel = {'throughput': ratio(c.get('mbps'), dc.get('mbps')) if both_mbps
               else ratio(c.get('msgs_per_s'), dc.get('msgs_per_s'))}
        for q in ('p50', 'p99'):
            a, b = c.get('lat_us', {}).get(q), dc.get('lat_us', {}).get(q)
            rel[q] = ratio(a, b) if a is not None and b and a >= 0 and b > 0 else None
        rel['proxy_cpu_to_direct_broker_cpu'] = ratio(e.get('proxy_cpu_s_per_gb'), d.get('broker_cpu_s_per_gb'))
        rel['broker_cpu'] = ratio(e.get('broker_cpu_s_per_gb'), d.get('broker_cpu_s_per_gb'))
        rel['requests_per_s'] = ratio(e.get('requests_per_s'), d.get('requests_per_s'))
        e['relative_to_direct'] = rel
        if 'throughput_ratio_to_direct' not in e:
            e['throughput_ratio_to_direct'] = rel['throughput']


def targets(results, opts):
    """The issue's targets, each with the measured figure and met/missed."""
    out = []

    def add(name, value, ok, unit=''):
        out.append({'target': name, 'measured': value, 'unit': unit,
                    'status': 'n/a' if ok is None else ('met' if ok else 'MISSED')})

    def prod(path, load):
        for e in results['produce']:
            if e['path'] == path and e['load'] == load:
                return e if e.get('available') is not False and 'client' in e else None
        return None

    sz = prod('same_zone', 'fixed')
    if sz:
        mbps = sz['client'].get('mbps')
        add('same-zone carries the whole fixed load (%s MB/s)' % opts.rate_mbps, mbps,
            mbps is not None and mbps >= 0.97 * opts.rate_mbps and not sz['client'].get('failed')
            and not sz['client'].get('undelivered'), 'MB/s')
        lp = results.get('latency_pairs')
        if lp and lp['median']['p99_added_ms'] is not None:
            v = lp['median']['p99_added_ms']
            add('same-zone p99 added over direct <= 0.2 ms (median of %d pairs)' % lp['pairs'], v,
                v <= 0.2, 'ms')
        else:
            add('same-zone p99 added over direct <= 0.2 ms', sz.get('p99_added_ms'),
                None if sz.get('p99_added_ms') is None else sz['p99_added_ms'] <= 0.2, 'ms')
        add('same-zone proxy CPU <= 1 core-s/GB', sz.get('proxy_cpu_s_per_gb'),
            None if sz.get('proxy_cpu_s_per_gb') is None else sz['proxy_cpu_s_per_gb'] <= 1.0, 's/GB')
    for load in ('fixed', 'saturation'):
        sz, tls = prod('same_zone', load), prod('same_zone_tls', load)
        if sz and tls and sz.get('proxy_cpu_s_per_gb') is not None and tls.get('proxy_cpu_s_per_gb') is not None:
            d = round(tls['proxy_cpu_s_per_gb'] - sz['proxy_cpu_s_per_gb'], 3)
            add('same-zone TLS proxy CPU <= plaintext + 0.5 core-s/GB (%s load)' % load, d, d <= 0.5, 's/GB more')
    cons = {e['path']: e for e in results['consume']}
    sz, tls = cons.get('same_zone'), cons.get('same_zone_tls')
    if sz and tls and sz.get('proxy_cpu_s_per_gb') is not None and tls.get('proxy_cpu_s_per_gb') is not None:
        d = round(tls['proxy_cpu_s_per_gb'] - sz['proxy_cpu_s_per_gb'], 3)
        add('same-zone TLS consume proxy CPU <= plaintext + 0.5 core-s/GB', d, d <= 0.5, 's/GB more')
    for load in ('fixed', 'saturation'):
        sz, tls = prod('same_zone_java', load), prod('same_zone_tls_java', load)
        if sz and tls and sz.get('proxy_cpu_s_per_gb') is not None and tls.get('proxy_cpu_s_per_gb') is not None:
            d = round(tls['proxy_cpu_s_per_gb'] - sz['proxy_cpu_s_per_gb'], 3)
            add('same-zone TLS proxy CPU <= plaintext + 0.5 core-s/GB (Java client, %s load)' % load, d, d <= 0.5,
                's/GB more')
    for path in ('wal_local', 'wal_s3'):
        w = prod(path, 'fixed')
        add('%s proxy CPU <= 2 core-s/GB (both proxies)' % path, w and w.get('proxy_cpu_s_per_gb'),
            None if not w or w.get('proxy_cpu_s_per_gb') is None else w['proxy_cpu_s_per_gb'] <= 2.0, 's/GB')
    w = prod('wal_local', 'fixed')
    p99 = w['client'].get('lat_us', {}).get('p99') / 1e3 if w else None
    flush_ms = opts.flush_ms
    add('WAL local p99 <= flush interval + 25 ms (%d ms)' % (flush_ms + 25), p99,
        None if p99 is None else p99 <= flush_ms + 25, 'ms')
    idem = next((e for e in results['idempotent'] if e['path'] == 'wal_local'
                 and e.get('available') is not False), None)
    plain = next((e for e in results['idempotent'] if e['path'] == 'wal_local_plain'), None)
    prps = plain.get('requests_per_s') if plain else None
    add('one producer (not idempotent) on the WAL path >= 20 requests/s', prps,
        None if prps is None else prps >= 20, 'req/s')
    rps = idem.get('requests_per_s') if idem else None
    add('one idempotent producer on the WAL path >= 20 requests/s (librdkafka)', rps,
        None if rps is None else rps >= 20, 'req/s')
    pipe = next((e for e in results['idempotent'] if e['path'] == 'wal_local_pipelined'
                 and e.get('available') is not False), None)
    pps = pipe.get('requests_per_s') if pipe else None
    add('one idempotent producer on the WAL path >= 20 requests/s (pipelined)', pps,
        None if pps is None else pps >= 20, 'req/s')
    pipes = [e for e in results['idempotent'] if e.get('pipelined')]
    bad = [e for e in pipes if not e.get('in_order')]
    add('pipelined producer: every batch in order, on every path', len(bad) if pipes else None,
        None if not pipes else not bad, 'runs out of order')
    idle = next((e for e in results['idle_connections'] if 'kib_per_connection' in e), None)
    kib = idle['kib_per_connection'] if idle else None
    add('<= 16 KiB per idle client connection', kib, None if kib is None else kib <= 16, 'KiB')
    ins = next((e for e in (results.get('instr') or {}).get('paths', [])
                if e.get('path') == 'wal_local' and e.get('instructions_per_payload_byte') is not None), None)
    ipb = None if ins is None or opts.quick else ins['instructions_per_payload_byte']
    add('WAL local instructions per payload byte <= 0.55 (half of 1.10, b53b116)', ipb,
        None if ipb is None else ipb <= 0.55, 'instr/B')
    return out


def print_table(results, opts, out=sys.stdout):
    w = out.write
    m = results['machine']
    w('\nkzproxy benchmark  (%s; %s CPUs: %s; kernel %s; librdkafka %s)\n' % (
        m.get('git'), m.get('nproc'), m.get('cpu_model'), m.get('kernel'), m.get('librdkafka')))
    w('%d-byte messages, acks=all, linger.ms=5; runs of %ss after %ss warm-up; fixed load %s MB/s '
      '(MB = 10^6 bytes); flush %d ms.\n' % (MSG_SIZE, opts.duration, opts.warmup, opts.rate_mbps, opts.flush_ms))
    w('Client, brokers (%s) and proxies share the same CPUs. WAL s3rver: PUTs\n'
      'signed UNSIGNED-PAYLOAD, the default over https (s3rver itself is plain http).\n\n'
      % ('Apache Kafka: one JVM per broker' if opts.backend == 'kafka' else 'one mock-cluster thread'))
    hdr = ('%-20s %-6s %8s %9s %6s %8s %8s %8s %8s %9s %9s %8s %7s %7s %9s %9s\n' % (
        'produce', 'load', 'MB/s', 'msgs/s', 'ratio', 'p50 ms', 'p99 ms', 'p999 ms', '+p99 ms',
        'pxCPU/GB', 'brkCPU/GB', 'xzone/B', 'PUT/GB', 'GET/GB', 'obj KiB', 'peakRSS'))
    w(hdr)
    w('-' * (len(hdr) - 1) + '\n')
    for e in results['produce']:
        load = 'fixed' if e['load'] == 'fixed' else 'sat'
        if e.get('available') is False:
            w('%-20s %-6s %s: %s\n' % (e['label'], load, e.get('na', NA_WAL), e.get('reason', '')[:90]))
            continue
        c = e['client']
        lat = c.get('lat_us', {})
        w('%-20s %-6s %8s %9s %6s %8s %8s %8s %8s %9s %9s %8s %7s %7s %9s %9s%s\n' % (
            e['label'], load, fmt(c.get('mbps'), '%.1f'), fmt(c.get('msgs_per_s'), '%.0f'),
            fmt(e.get('throughput_ratio_to_direct'), '%.2f'),
            fmt(lat.get('p50') / 1e3 if 'p50' in lat else None), fmt(lat.get('p99') / 1e3 if 'p99' in lat else None),
            fmt(lat.get('p999') / 1e3 if 'p999' in lat else None),
            fmt(e.get('p99_added_ms')) if e['path'] != 'direct' else '',
            fmt(e.get('proxy_cpu_s_per_gb')) if e['path'] != 'direct' else '',
            fmt(e.get('broker_cpu_s_per_gb')),
            fmt(e.get('xzone_bytes_per_payload_byte'), '%.4f') if e['path'] != 'direct' else '',
            fmt(e.get('s3_puts_per_gb'), '%.0f') if e['path'].startswith('wal') else '',
            fmt(e.get('s3_gets_per_gb'), '%.0f') if e['path'].startswith('wal') else '',
            fmt(e['mean_object_bytes'] / 1024 if e.get('mean_object_bytes') else None, '%.0f')
            if e['path'].startswith('wal') else '',
            ('%d KiB' % e['proxy_peak_rss_kib_max']) if e.get('proxy_peak_rss_kib_max') else '',
            ('  ERROR: ' + c['error']) if 'error' in c else ''))
    if any(e.get('client_kind') == 'java' and e.get('available') is not False for e in results['produce']):
        w('(Java rows: Apache Kafka\'s ProducerPerformance through proxy a, acks=all, linger.ms=5, the Java\n'
          ' client\'s other defaults; MB/s from the topic\'s end offsets after the warm-up; p50/p99/p999 are\n'
          ' ProducerPerformance\'s own over every record, none when a flat-out run is stopped by time.)\n')
    elif results.get('java_skipped'):
        w('(Java rows: %s)\n' % results['java_skipped'])
    wal = [e for e in results['produce'] if e['path'].startswith('wal') and e.get('available') is not False
           and e.get('proxy_cpu_s_per_gb_by_zone')]
    if wal:
        w('\nWAL path, core-s per GB by process: proxy a (writes the objects), proxy b (reads them,\n'
          'produces to the leader), the store (s3rver, a node process: not the proxies\' CPU)\n')
        for e in wal:
            z = e['proxy_cpu_s_per_gb_by_zone']
            w('  %-20s %-6s a %s  b %s  both %s  s3rver %s\n' % (
                e['label'], 'fixed' if e['load'] == 'fixed' else 'sat', fmt(z.get('a')), fmt(z.get('b')),
                fmt(e.get('proxy_cpu_s_per_gb')),
                fmt(e.get('s3rver_cpu_s_per_gb')) if e['path'] == 'wal_s3' else '-'))
    rel = [e for e in results['produce'] if e.get('relative_to_direct')]
    if rel:
        w('\nratios to direct in the same run, same load: throughput, p50 and p99 latency as multiples of\n'
          'direct\'s; the proxies\' CPU per GB over the brokers\' CPU per GB in the direct run (pxCPU/brk)\n')
        w('  %-22s %-6s %8s %7s %7s %10s %9s\n' % ('', 'load', 'through', 'p50 x', 'p99 x', 'pxCPU/brk',
                                                   'brkCPU x'))
        for e in rel:
            r = e['relative_to_direct']
            w('  %-22s %-6s %8s %7s %7s %10s %9s\n' % (
                e['label'], 'fixed' if e['load'] == 'fixed' else 'sat', fmt(r['throughput']), fmt(r['p50'], '%.1f'),
                fmt(r['p99'], '%.1f'), fmt(r['proxy_cpu_to_direct_broker_cpu']), fmt(r['broker_cpu'])))
    if results.get('idem_default'):
        w('\nlibrdkafka idempotent producer, default settings (enable.idempotence=true only: linger.ms 5,\n'
          'batch.size 1 MB, max.in.flight 5), 12 partitions; fixed = %d MB/s offered, sat = flat out with a\n'
          '%d MiB client queue. ratio: to direct\'s same load; pxCPU a/b: core-s per GB of each proxy\n'
          % (IDEM_DEFAULT_RATE_MBPS, IDEM_DEFAULT_QUEUE_KIB // 1024))
        w('  %-34s %-5s %7s %6s %8s %8s %6s %7s %8s %8s %10s\n' % (
            '', 'load', 'MB/s', 'ratio', 'p50 ms', 'p99 ms', 'p99 x', 'req/s', 'pxCPU a', 'pxCPU b', 'pxCPU/brk'))
        for e in results['idem_default']:
            load = 'fixed' if e['load'] == 'fixed' else 'sat'
            if e.get('available') is False:
                w('  %-34s %-5s %s: %s\n' % (e['label'], load, NA_WAL, e.get('reason', '')[:80]))
                continue
            c, r = e['client'], e.get('relative_to_direct') or {}
            lat, z = c.get('lat_us', {}), e.get('proxy_cpu_s_per_gb_by_zone') or {}
            w('  %-34s %-5s %7s %6s %8s %8s %6s %7s %8s %8s %10s%s\n' % (
                e['label'], load, fmt(c.get('mbps'), '%.1f'), fmt(r.get('throughput')),
                fmt(lat.get('p50') / 1e3 if 'p50' in lat else None),
                fmt(lat.get('p99') / 1e3 if 'p99' in lat else None), fmt(r.get('p99'), '%.1f'),
                fmt(e.get('requests_per_s'), '%.1f'), fmt(z.get('a')), fmt(z.get('b')),
                fmt(r.get('proxy_cpu_to_direct_broker_cpu')), ('  ERROR: ' + c['error']) if 'error' in c else ''))
    lp = results.get('latency_pairs')
    if lp and lp['runs']:
        w('\nfixed load, direct and same-zone alternately, %d pairs of %ss: median of the pairs\n' % (
            lp['pairs'], lp['duration_s']))
        w('  +p50 %s ms   +p99 %s ms   +p999 %s ms   same-zone proxy %s core-s/GB\n' % (
            fmt(lp['median']['p50_added_ms']), fmt(lp['median']['p99_added_ms']),
            fmt(lp['median']['p999_added_ms']), fmt(lp['median_same_zone_cpu_s_per_gb'])))
    w('\n%-24s %8s %9s %6s %9s %10s %9s %8s %9s %7s\n' % (
        'consume', 'MB/s', 'msgs/s', 'ratio', 'pxCPU/GB', 'pxCPU/brk', 'brkCPU/GB', 'xzone/B', 'followerP', 'passes'))
    for e in results['consume']:
        c, m = e['client'], e.get('metrics') or {}
        px = e['path'] != 'direct'
        w('%-24s %8s %9s %6s %9s %10s %9s %8s %9s %7s%s\n' % (
            e['label'], fmt(c.get('mbps'), '%.1f'), fmt(c.get('msgs_per_s'), '%.0f'),
            fmt(e.get('throughput_ratio_to_direct')),
            fmt(e.get('proxy_cpu_s_per_gb')) if px else '',
            fmt(e.get('proxy_cpu_ratio_to_direct_broker')) if px else '', fmt(e.get('broker_cpu_s_per_gb')),
            fmt(e.get('xzone_payload_bytes_per_payload_byte'), '%.4f') if px else '',
            fmt(m.get('follower_partitions'), '%d') if px else '', c.get('passes', '-'),
            ('  ERROR: ' + c['error']) if 'error' in c else ''))
    if any(e['path'].startswith('zone_b') for e in results['consume']):
        w('(kzproxy b: a consumer in zone b through the zone-b proxy; follower: topic led in zone a with its\n'
          ' follower in zone b, fetch_from_follower default; xzone leader: led in zone a, no follower. xzone/B:\n'
          ' fetch payload the proxies took from brokers of another zone per byte read; followerP: partition\n'
          ' fetches sent to a follower.)\n')
    for e in results.get('consume_fanout', []):
        w('consume fan-out, %d groups in zone b, no replica there, fetch cache %-3s: fetch payload across zones '
          '%s MB = %s x one group\'s records (%s MB)\n' % (
              len(e['groups']), e['cache'], fmt(e['xzone_payload_bytes'] / 1e6, '%.1f'),
              fmt(e.get('xzone_per_group_bytes')),
              fmt(e['one_group_record_bytes'] / 1e6 if e.get('one_group_record_bytes') else None, '%.1f')))
    w('\n%-38s %-10s %8s %8s %8s %9s %6s  %s\n' % ('1 producer, 1 partition, 5 in flight', 'client', 'req/s',
                                                     'p50 ms', 'p99 ms', 'msgs/s', 'ratio', 'order'))
    for e in results['idempotent']:
        if e.get('available') is False:
            w('%-38s %s: %s\n' % (e['label'], NA_WAL, e.get('reason', '')[:90]))
            continue
        c = e['client']
        lat = c.get('lat_us', {})
        order = ''
        if e.get('pipelined'):
            order = ('ok: offsets, sequences' if e.get('sequences_checked_by_broker') else 'ok: offsets') \
                if e.get('in_order') else 'FAILED'
        w('%-38s %-10s %8s %8s %8s %9s %6s  %s%s\n' % (
            e['label'], e.get('client_kind', ''), fmt(e.get('requests_per_s'), '%.1f'),
            fmt(lat.get('p50') / 1e3 if 'p50' in lat else None), fmt(lat.get('p99') / 1e3 if 'p99' in lat else None),
            fmt(c.get('msgs_per_s'), '%.0f'), fmt_ratio((e.get('relative_to_direct') or {}).get('throughput')),
            order, ('  ERROR: ' + c['error']) if 'error' in c else ''))
    if any(e.get('pipelined') for e in results['idempotent']):
        w('(pipelined: kz_bench\'s own idempotent producer, %d requests of one %d-record batch in flight, as the\n'
          ' Java client keeps them; librdkafka keeps one. order: the base offsets followed each other; with a\n'
          ' txn id the %s.)\n'
          % (PIPE_IN_FLIGHT, PIPE_BATCH_RECORDS,
             'brokers checked every sequence (Kafka checks them for every idempotent producer)'
             if opts.backend == 'kafka' else
             'mock broker also checked every sequence, which it does only for a transactional id'))
    for e in results['sequence_controls']:
        w('sequence check control, %s: a deliberate sequence gap was %s\n' % (
            e['path'], 'answered %s' % e['client'].get('error') if e['detected'] else 'NOT CAUGHT'))
    for e in results['idle_connections']:
        w('\nidle connections: %d on proxy %s: RSS %s -> %s KiB (%s KiB per connection), peak %s KiB%s\n' % (
            e['connections'], e['proxy_zone'], e.get('rss_before_kib'), e.get('rss_idle_kib'),
            fmt(e.get('kib_per_connection')), e.get('peak_rss_kib'),
            ('  ERROR: ' + e['error']) if 'error' in e else ''))
    if results.get('workers'):
        w('\nsame-zone saturation by workers (2 producers at once; client, mock broker and proxy share the '
          'machine\'s CPUs):\n')
        for e in results['workers']:
            w('  %-32s %8s MB/s  ratio %-6s  proxy %s core-s/GB (%s core-s)\n' % (
                'workers %d%s' % (e['workers'], ', wal section' if e.get('wal_section') else '')
                if e['workers'] else 'direct', fmt(e['mbps'], '%.1f'),
                fmt_ratio(e['ratio_to_direct']), fmt(e['proxy_cpu_s_per_gb']), fmt(e['proxy_cpu_s'])))
    ins = results.get('instr')
    if ins:
        w('\ninstr: the proxies\' user-space instructions per payload byte (callgrind Ir; kernel copies not\n'
          'counted): a run of %d messages minus a run of %d, each on fresh proxies, over their payload\n'
          'difference; one producer, one partition, %d messages of %d bytes per Produce request, %s MB/s%s\n' % (
              ins['messages'][1], ins['messages'][0], ins['batch_msgs'], ins['msg_size'], ins['rate_mbps'],
              '; WAL objects of %d MiB, flush_ms %d' % (ins['wal_flush_bytes'] >> 20, ins['wal_flush_ms'])
              if ins.get('wal_flush_ms') else ''))
        if ins.get('skipped'):
            w('  figure skipped: %s\n' % ins['skipped'])
        for e in ins['paths']:
            if e.get('error'):
                w('  %s: ERROR %s\n' % (e['label'], e['error'].splitlines()[0]))
            elif e.get('instructions_per_payload_byte') is not None:
                w('  %s\n' % instr_line(e))
    w('\ntargets (reported, not asserted):\n')
    for t in results['targets']:
        v = t['measured']
        w('  %-7s %-62s %s %s\n' % (t['status'], t['target'], fmt(v, '%.4g', 'n/a'), t['unit'] if v is not None else ''))
    if results['failures']:
        w('\nfailures:\n')
        for f in results['failures']:
            w('  %s: %s\n' % (f['scenario'], f['error']))
            for who, lines in (f.get('proxy_logs') or {}).items():
                w('    kzproxy %s log ends:\n%s\n' % (who, '\n'.join('      ' + ln for ln in lines.splitlines())))
    out.flush()


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--quick', action='store_true', help='smoke-test mode: a few seconds in all')
    ap.add_argument('--json', help='write the results here')
    ap.add_argument('--duration', type=float, help='seconds per produce run (default 10)')
    ap.add_argument('--warmup', type=float, help='warm-up seconds before each run (default 2)')
    ap.add_argument('--consume-duration', type=float,
                    help='seconds per consume run (default 5; 15 gives steadier CPU per GB)')
    ap.add_argument('--rate-mbps', type=float, default=100.0, help='fixed offered load (default 100)')
    ap.add_argument('--idle-conns', type=int, help='idle client connections (default 10000)')
    ap.add_argument('--perf', metavar='DIR',
                    help='record perf profiles of the proxies during the fixed-load and consume runs into DIR '
                         '(for profiles: perf takes CPU, so do not quote that run\'s numbers)')
    ap.add_argument('--pairs', type=int,
                    help='alternating direct / same-zone fixed-load runs of 5 s for the added '
                         'latency (default 5; 0: none)')
    ap.add_argument('--no-single', action='store_true',
                    help='only the produce runs, not the one-producer (idempotent, pipelined) '
                         'runs nor librdkafka\'s idempotent producer at default settings (direct '
                         'and WAL paths); for repeated CPU measurements')
    ap.add_argument('--only', help='comma-separated: direct,same_zone,same_zone_tls,same_zone_tls_java,consume,'
                                   'idle,workers,wal_local,wal_s3,instr')
    ap.add_argument('--proxy-config', metavar='JSON',
                    help='extra proxy configuration, top-level keys, e.g. \'{"limits": '
                         '{"cut_through_min_bytes": 0}}\' for a before/after comparison')
    ap.add_argument('--backend', choices=('mock', 'kafka'), default='mock',
                    help='the brokers: librdkafka\'s mock cluster (default) or real Apache Kafka (tests/kafka)')
    o = ap.parse_args(argv)
    q = o.quick
    o.duration = o.duration or (0.5 if q else 10.0)
    o.warmup = o.warmup if o.warmup is not None else (0.2 if q else 2.0)
    o.idle_conns = o.idle_conns or (200 if q else 10000)
    o.consume_s = o.consume_duration or (0.5 if q else 5.0)
    o.fill_s = 0.3 if q else 2.0
    o.fanout_fill_s = 0.1 if q else 1.0  # at IDEM_DEFAULT_RATE_MBPS: 2 or 20 MB
    o.consume_partitions = 12 if q else 48
    o.idem_s = 0.5 if q else 10.0
    o.pairs = o.pairs if o.pairs is not None else (1 if q else 5)
    o.pair_s = 0.5 if q else 5.0
    # Quick runs are too short for 250 ms objects (the sanitizers slow the
    # path further): their figures are checked for form only.
    o.flush_ms = 50 if q else FLUSH_MS
    o.pipe_s = 0.5 if q else 4.0         # kz_bench's pipelined producer
    o.pipe_txn_s = 0.5 if q else 2.0     # the same with a transactional id
    o.control_s = 0.3 if q else 0.5      # the sequence-gap control
    o.timeout = 60.0 if q else 120.0
    o.instr_msgs = INSTR_MSGS_QUICK if q else INSTR_MSGS
    o.only = set(o.only.split(',')) if o.only else None
    return o


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n)) if hard != resource.RLIM_INFINITY else max(soft, n)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv):
    opts = parse_args(argv)
    if not os.access(kz_bench_binary(), os.X_OK):
        sys.stderr.write('run_bench: %s is not built (run make, or set top_builddir)\n' % kz_bench_binary())
        return 2
    # The proxies inherit the limit: 10,000 client sockets each side and the rest.
    raise_nofile(opts.idle_conns * 2 + 1024)
    t0 = time.monotonic()
    b = Bench(opts)
    results = b.results
    try:
        b.run()
    except (HarnessError, SkipTest, OSError) as err:
        b.fail('setup', err)
        traceback.print_exc()
    finally:
        b.close()
    results['machine'] = machine_info()
    results['options'] = {'duration_s': opts.duration, 'warmup_s': opts.warmup, 'rate_mbps': opts.rate_mbps,
                          'msg_size': MSG_SIZE, 'idle_conns': opts.idle_conns, 'flush_ms': opts.flush_ms,
                          'quick': opts.quick}
    add_ratios(results)
    results['targets'] = targets(results, opts)
    results['elapsed_s'] = round(time.monotonic() - t0, 1)
    print_table(results, opts)
    sys.stdout.write('\n(%.0f s in all)\n' % results['elapsed_s'])
    if opts.json:
        with open(opts.json, 'w') as f:
            json.dump(results, f, indent=1, sort_keys=True)
            f.write('\n')
        sys.stdout.write('results written to %s\n' % opts.json)
    return 1 if results['failures'] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
