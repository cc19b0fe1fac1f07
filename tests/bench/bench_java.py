"""bench_java: the Java scenario of the benchmark driver run_bench.py
(same_zone_tls_java: Apache Kafka's ProducerPerformance through proxy a,
plaintext and TLS), a mixin of its Bench, whose helpers (cluster, fail,
derive_produce, print_progress) and state (o, results, tb, workdir) it uses."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))

from bench_const import JAVA_CEILING_MSGS_S, JAVA_OFFSETS_EVERY_S, JAVA_START_S, MSG_SIZE  # noqa: E402
from bench_measure import children_cpu_s, java_client_figures, java_perf_argv, measure  # noqa: E402


class BenchJava:
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
