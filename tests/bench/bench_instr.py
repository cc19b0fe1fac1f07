"""bench_instr: the instr scenario of the benchmark driver run_bench.py (the
proxies' user-space instructions per payload byte, counted by callgrind),
a mixin of its Bench, whose helpers (wal_config, fail) and state (o,
results, tb, workdir) it uses."""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))

from kzharness import HarnessError, ProxyCluster, metrics, wait_until  # noqa: E402
from bench_const import (CALLGRIND_ARGS, INSTR_BATCH_MSGS, INSTR_FLUSH_MS, INSTR_LINGER_MS,  # noqa: E402
                         INSTR_RATE_MBPS, MSG_SIZE)
from bench_measure import METRIC_PICKS, callgrind_ir, instr_unavailable, run_kz_bench, series_sum  # noqa: E402
from bench_report import instr_line  # noqa: E402


class BenchInstr:
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
