"""bench_measure: the measurements of the benchmark driver run_bench.py:
kz_bench runs, the CPU seconds and RSS of processes (/proc), the proxies'
/metrics before and after a run, callgrind's instruction counts, and the
figures of a Java ProducerPerformance run."""

import json
import os
import re
import resource
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))

from kzharness import HarnessError, kzproxy_has_asan, metrics, top_builddir  # noqa: E402
from bench_const import JAVA_PERF_MAIN, JAVA_START_S, JAVA_SUMMARY, MSG_SIZE  # noqa: E402

CLK_TCK = os.sysconf('SC_CLK_TCK')


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
            if getattr(p, 'admin', None) is None:  # a peer proxy (bench_peer): no /metrics
                self.metrics[p.node_id] = None
                continue
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
