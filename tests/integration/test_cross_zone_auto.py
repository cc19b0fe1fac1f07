#!/usr/bin/python3
"""cross_zone_policy "auto" (issue 15, item 4).

Three zones, a broker and a proxy in each, a shared local WAL store. Two
producers in zone a, one idempotent and one not (max.in.flight 1, so that
Kafka itself promises order), write to two partitions led by the zone-b
broker, through the zone-a proxy, at a rate that changes mid-stream:

  slow   a trickle (2 KB/s each): produce to zone b goes direct (cross-zone
         path counter moves, WAL path counter does not, the zone's gauge 0);
  fast   0.6 MB/s each, above wal_above_bytes_per_s: the zone switches to
         the WAL path (gauge 1, WAL path counter moves);
  slow   a trickle again: once the rate has decayed below
         direct_below_bytes_per_s and min_dwell_ms has passed, back direct.

Exactly one switch each way (kzproxy_cross_zone_auto_switches_total 2 at the
end), every message acknowledged with no error (no OutOfOrderSequence), and
read back through the zone-b proxy once each and in order per partition.
"""
import os
import sys
import tempfile
import shutil
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402
from kzharness import HarnessError  # noqa: E402

TOPIC = 'auto'
PARTITIONS = 6
AUTO = {'wal_above_bytes_per_s': 400000, 'direct_below_bytes_per_s': 100000, 'min_dwell_ms': 2000,
        'window_ms': 1000}
# (label, seconds, bytes/s per producer)
PHASES = [('slow', 3.0, 2000), ('fast', 3.0, 600000), ('slow again', 6.0, 2000)]


def auto_state(p):
    m = kz.metrics(p)
    return {'wal_gauge': m.sum('kzproxy_cross_zone_auto_wal', -1, zone='b'),
            'switches': m.sum('kzproxy_cross_zone_auto_switches_total', 0, zone='b'),
            'wal': m.sum('kzproxy_produce_path_partitions_total', 0, path='wal'),
            'cross': m.sum('kzproxy_produce_path_partitions_total', 0, path='cross_zone'),
            'holds': m.sum('kzproxy_wal_order_holds_total', 0)}


def main():
    from confluent_kafka import Producer
    workdir = tempfile.mkdtemp(prefix='kz-auto-')
    try:
        extra = {'peer_secret': walpath.SECRET, 'cross_zone_policy': 'auto', 'cross_zone_auto': AUTO,
                 'wal': {'store': walpath.store_config('local', workdir), 'flush_ms': 500}}
        with kz.TestBed(topics={TOPIC: PARTITIONS}) as tb, \
                kz.ProxyCluster(tb, extra_config=extra, workdir=workdir) as pc:
            zone_b = tb.brokers_in('b')[0].id
            parts = [p for p in range(PARTITIONS) if p % 3 + 1 == zone_b][:2]
            writer = pc.proxy_in('a')
            errors, acked = [], {}

            def on_delivery(err, msg):
                if err is not None:
                    errors.append(str(err))
                else:
                    acked.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))

            base = {'bootstrap.servers': writer.kafka, 'acks': 'all', 'linger.ms': 5,
                    'compression.type': 'none', 'message.timeout.ms': 60000}
            prods = [('idem', parts[0], Producer(dict(base, **{'enable.idempotence': True,
                                                                   'client.id': 'kz-auto-idem'}))),
                     ('plain', parts[1], Producer(dict(base, **{'enable.idempotence': False,
                                                                    'max.in.flight.requests.per.connection': 1,
                                                                    'client.id': 'kz-auto-plain'})))]
            seq = {name: 0 for name, _p, _pr in prods}
            states = []
            for label, secs, rate in PHASES:
                size = 200 if rate < 50000 else 8000
                interval = size / float(rate)
                end = time.monotonic() + secs
                nxt = time.monotonic()
                while time.monotonic() < end:
                    for name, part, pr in prods:
                        head = b'%s:%08d:' % (name.encode(), seq[name])
                        pr.produce(TOPIC, head + b'x' * (size - len(head)), partition=part,
                                   on_delivery=on_delivery)
                        seq[name] += 1
                        pr.poll(0)
                    nxt += interval
                    delay = nxt - time.monotonic()
                    if delay > 0:
                        time.sleep(min(delay, 0.2))  # pacing the producer, not waiting for a condition
                # No flush between phases: the switch lands while batches of
                # the old path are in flight (the order keys must hold them).
                st = auto_state(writer)
                states.append((label, st))
                print('%s (%d B/s per producer): zone b %s, switches %d, partitions by path wal %d cross-zone %d, '
                      'order holds %d' % (label, rate, {1: 'WAL', 0: 'direct'}.get(st['wal_gauge'], '?'),
                                          st['switches'], st['wal'], st['cross'], st['holds']))
            for _n, _p, pr in prods:
                if pr.flush(60) != 0:
                    raise HarnessError('messages still unacknowledged 60 s after the last phase')
            prods_done = [(n, p) for n, p, _pr in prods]
            prods.clear()  # the producers close before the proxies do
            if errors:
                raise HarnessError('%d delivery errors, first: %s' % (len(errors), errors[0]))
            s1, s2, s3 = (s for _l, s in states)
            if s1['wal'] != 0 or s1['cross'] == 0 or s1['wal_gauge'] != 0:
                raise HarnessError('slow: want every partition direct, got %s' % s1)
            if s2['wal'] == 0 or s2['wal_gauge'] != 1 or s2['switches'] != 1:
                raise HarnessError('fast: want the WAL path after one switch, got %s' % s2)
            if s3['wal_gauge'] != 0 or s3['switches'] != 2 or s3['cross'] <= s2['cross']:
                raise HarnessError('slow again: want direct after exactly two switches, got %s' % s3)
            got = kz.consume_all(pc.proxy_in('b').kafka, TOPIC, partitions=parts, timeout=120)
            for name, part in prods_done:
                vals = [v for p, _o, _k, v in got if p == part]
                want = [b'%s:%08d:' % (name.encode(), i) for i in range(seq[name])]
                heads = [v[:len(want[0])] for v in vals]
                if heads != want:
                    dup = len(heads) - len(set(heads))
                    raise HarnessError('%s (partition %d): %d messages read for %d produced (%d duplicates), or '
                                       'out of order' % (name, part, len(heads), len(want), dup))
                print('%s (partition %d): %d messages acknowledged, read back once each and in order'
                      % (name, part, len(heads)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    kz.run_test(main, timeout=240)
