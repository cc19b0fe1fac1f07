"""bench_peer: the benchmark's peer scenario (kroxylicious), a mixin of
run_bench's Bench, whose helpers (fail, producer_args, latency_pairs,
produce_runs, consume_run, fill_consume_topic) and state (o, results, tb,
workdir, consume_filled) it uses.

Kroxylicious (bench_kroxy: a pass-through virtual cluster, no filters) in
front of the same brokers as kzproxy, in the same run: the latency it adds
over direct (median of alternating pairs, as for kzproxy's same-zone path),
its CPU per GB at the fixed load and flat out, and consume through it. Its
rows sit in the produce and consume tables beside kzproxy's, with the same
ratios to direct; print_table adds one side-by-side block."""

import os
import sys
import tempfile
import types

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))

from kzharness import HarnessError, SkipTest  # noqa: E402
from bench_measure import run_kz_bench  # noqa: E402

# Unmeasured produce through the JVM before its figures count: its first
# ~0.4 GB run partly interpreted (5.2 core-s/GB in a first 3 s run against
# 1.6 in a third, bench_kroxy's commit).
KROXY_WARMUP_S = 8.0


class KroxyPeer:
    """Kroxylicious as measure() and Bench.fail() see a proxy: a pid whose
    CPU is read, zone a, no admin port (no /metrics), its log."""

    def __init__(self, k):
        self.k = k
        self.node_id = 'kroxylicious'
        self.zone = 'a'
        self.admin = None
        self.kafka = k.bootstrap

    @property
    def pid(self):
        return self.k.pid

    def log_text(self):
        return self.k.log_tail(200)


class BenchPeer:
    def kroxylicious(self):
        from bench_kroxy import KROXY_VERSION, Kroxylicious, unavailable
        o = self.o
        label = 'Kroxylicious %s' % KROXY_VERSION
        why = unavailable()
        k = None
        if why is None:
            k = Kroxylicious(self.tb.bootstrap, tempfile.mkdtemp(prefix='kroxy-', dir=self.workdir))
            try:
                k.start()
            except (HarnessError, SkipTest) as err:
                why = str(err).splitlines()[0][:300]
                if isinstance(err, HarnessError):
                    self.fail('kroxylicious', err)
                k.stop(check=False)
                k = None
        if k is None:
            sys.stdout.write('  %-20s n/a: %s\n' % (label, why))
            self.results['kroxylicious'] = {'available': False, 'reason': why, 'version': KROXY_VERSION}
            return
        try:
            peer = KroxyPeer(k)
            cluster = types.SimpleNamespace(proxies=[peer])
            self.results['kroxylicious'] = {'available': True, 'version': KROXY_VERSION,
                                            'start_s': round(k.start_s, 2) if k.start_s else None,
                                            'warmup_s': 0.5 if o.quick else KROXY_WARMUP_S}
            sys.stdout.write('  %s: started in %.1f s, pid %d, bootstrap %s\n' % (label, k.start_s or 0, k.pid,
                                                                                  k.bootstrap))
            warm, _ = run_kz_bench(self.producer_args(
                k.bootstrap, 'bench_a', o.rate_mbps,
                ('--duration', self.results['kroxylicious']['warmup_s'], '--warmup', 0)), o.timeout)
            if 'error' in warm and not warm.get('delivered'):
                self.fail('kroxylicious warm-up', warm['error'], [peer])
            if self.want('direct') and o.pairs > 0:
                self.latency_pairs(peer, cluster, path='kroxylicious', key='latency_pairs_kroxylicious',
                                   name='Kroxylicious')
            self.produce_runs('kroxylicious', label, k.bootstrap, 'bench_a', cluster)
            if not self.consume_filled:
                self.fill_consume_topic()
                self.consume_filled = True
            self.consume_run('kroxylicious', label, k.bootstrap, cluster)
        finally:
            try:
                k.stop()
            except HarnessError as err:
                self.fail('kroxylicious (stop)', err)
