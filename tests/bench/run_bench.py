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
  kroxylicious: the same-zone produce (latency pairs with direct, fixed
    load, flat out) and consume through Kroxylicious 0.12.0, a Java Kafka
    proxy, as a pass-through virtual cluster in front of the same brokers
    (bench_kroxy.py, tests/kroxylicious), beside kzproxy's figures;
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

The driver's modules, beside it: bench_const.py (the constants),
bench_measure.py (kz_bench runs, /proc and /metrics readings),
bench_java.py, bench_instr.py and bench_peer.py (the Java, instr and
Kroxylicious scenarios, mixins of Bench; bench_kroxy.py starts
Kroxylicious) and bench_report.py (ratios to direct, targets, the table).
"""

import argparse
import json
import os
import resource
import selectors
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

from kzharness import (HarnessError, ProxyCluster, SkipTest, TestBed, log_tail, metrics, rss_kib,  # noqa: E402
                       wait_until)
from bench_const import (FANOUT_GROUPS, FLUSH_IDLE_MS, FLUSH_MS, IDEM_DEFAULT_QUEUE_KIB,  # noqa: E402
                         IDEM_DEFAULT_RATE_MBPS, IDEM_QUEUE_KIB, IDEM_RATE_MBPS, INSTR_MSGS, INSTR_MSGS_QUICK,
                         MSG_SIZE, NA_WAL, PEER_SECRET, PIPE_BATCH_RECORDS, PIPE_IN_FLIGHT)
from bench_measure import (kz_bench_binary, measure, proc_status_kib, proxy_cpu_per_gb,  # noqa: E402
                           ratio, run_kz_bench)
from bench_report import (add_ratios, fmt, fmt_ratio, machine_info, peer_side_by_side, print_table,  # noqa: E402
                          targets)
from bench_java import BenchJava  # noqa: E402
from bench_instr import BenchInstr  # noqa: E402
from bench_peer import BenchPeer  # noqa: E402


# ---------------------------------------------------------------- scenarios

class Bench(BenchJava, BenchInstr, BenchPeer):
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
            sys.stderr.write('run_bench: proxy %s log ends:\n%s\n' % (who, lines))

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

    def latency_pairs(self, a, cluster, path='same_zone', key='latency_pairs', name='same-zone'):
        """Direct and same-zone at the fixed load, alternately, --pairs times.
        The p99 of one 10 s run moves by a millisecond or more from run to
        run on a shared machine, five times the 0.2 ms being judged; the
        median of the pairwise differences does not drift with the machine.
        a: the proxy (its .kafka the bootstrap); path, key and name: the
        path's name in the pairs, the results key and the printed name
        (the Kroxylicious peer's pairs use their own)."""
        o = self.o
        runs = []
        px_path = path
        for i in range(o.pairs):
            pair = {}
            for path, boot, pc in (('direct', self.tb.bootstrap, None), (px_path, a.kafka, cluster)):
                proxies = pc.proxies if pc else []
                (res, _), fig = measure(proxies, {'brokers': self.tb.pids},
                                        lambda: run_kz_bench(self.producer_args(
                                            boot, 'bench_a', o.rate_mbps, ('--duration', o.pair_s)),
                                            o.timeout))
                if 'error' in res and not res.get('delivered'):
                    self.fail('%s latency pair %d' % (path, i + 1), res['error'], proxies)
                    return
                payload = (res.get('delivered', 0) + res.get('warmup_delivered', 0)) * MSG_SIZE
                pair[path] = {'p50_ms': res['lat_us']['p50'] / 1e3, 'p99_ms': res['lat_us']['p99'] / 1e3,
                              'p999_ms': res['lat_us']['p999'] / 1e3, 'mbps': res.get('mbps'),
                              'proxy_cpu_s_per_gb': proxy_cpu_per_gb(fig['proxy_cpu_s'], payload)}
            for q in ('p50', 'p99', 'p999'):
                pair['%s_added_ms' % q] = round(pair[px_path]['%s_ms' % q] - pair['direct']['%s_ms' % q], 3)
            runs.append(pair)
            sys.stdout.write('  pair %d: direct p99 %.2f ms, %s p99 %.2f ms (%+.2f), proxy %.2f core-s/GB\n' % (
                i + 1, pair['direct']['p99_ms'], name, pair[px_path]['p99_ms'], pair['p99_added_ms'],
                pair[px_path]['proxy_cpu_s_per_gb'] or 0))
            sys.stdout.flush()
        med = lambda xs: statistics.median(xs) if xs else None
        cut = None
        if getattr(a, 'admin', None):  # Produce requests streamed as they arrived (px_cut.c), over the pairs
            try:
                cut = metrics(a).sum('kzproxy_produce_cut_through_total', default=0)
                sys.stdout.write('  cut-through Produce requests during the pairs: %d\n' % cut)
            except (HarnessError, OSError):
                pass
        cpu = med([r[px_path]['proxy_cpu_s_per_gb'] for r in runs if r[px_path]['proxy_cpu_s_per_gb'] is not None])
        self.results[key] = {
            'cut_through_requests': cut, 'path': px_path,
            'pairs': len(runs), 'duration_s': o.pair_s, 'runs': runs,
            'median': {k: med([r[k] for r in runs]) for k in ('p50_added_ms', 'p99_added_ms', 'p999_added_ms')},
            'median_proxy_cpu_s_per_gb': cpu,
        }
        if px_path == 'same_zone':
            self.results[key]['median_same_zone_cpu_s_per_gb'] = cpu

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
            self.fail('consume %s' % path, res['error'], proxies)
        self.results['consume'].append(e)
        m = fig['metrics']
        sys.stdout.write('  consume %-18s %8.1f MB/s (%d passes)%s%s\n' % (
            path, res.get('mbps', 0), res.get('passes', 0),
            '  fetch payload across zones %s B, follower partitions %s, cache hits %s' % (
                fmt(xz, '%.0f'), fmt(m.get('follower_partitions'), '%.0f'),
                fmt(m.get('fetch_cache_hits'), '%.0f')) if any(getattr(p, 'admin', None) for p in proxies)
            else '',
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
        if self.want('kroxylicious'):
            self.kroxylicious()

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

    def close(self):
        if self.tb is not None:
            self.tb.stop(check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


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
                                   'idle,workers,wal_local,wal_s3,instr,kroxylicious')
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
    if (results.get('kroxylicious') or {}).get('available'):
        results['kroxylicious']['side_by_side'] = peer_side_by_side(results)
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
