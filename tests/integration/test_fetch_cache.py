#!/usr/bin/python3
"""One upstream fetch per zone for fan-out (issue 15, item 2: the fetch cache).

Three zones, a broker and a proxy in each; every partition of the topic is led
by the zone-a broker (on the mock, whose leaders name no preferred replica
unless told, that makes every read from zone b cross zones, as for a topic
whose replicas are all in zone a). MESSAGES messages are produced through the
zone-a proxy; then GROUPS consumer groups, one after the other, read the topic
through the zone-b proxy. Each must get every message once and in order per
partition. The figure: the fetch payload that crossed zones during the consume
phase, from the proxies' kzproxy_xzone_bytes_total{category="payload",
direction="in"}, must be at most BOUND x the record bytes one group read (not
GROUPS x): the first group's fetches fill the cache (fetch_cache_bytes, default
64 MiB), the others are answered from it.

A control phase with fetch_cache_bytes 0 shows the figure without the cache
(about GROUPS x one group's bytes).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402
from test_zone_fetch import check_once_in_order, consume  # noqa: E402

PARTITIONS = 6
MESSAGES = 9000
GROUPS = 3
BOUND = 1.2
PRODUCER = {'client.id': 'kz-test-fetch-cache-producer', 'acks': 'all', 'linger.ms': 20,
            'compression.type': 'none'}


def messages():
    out = []
    for i in range(MESSAGES):
        head = b'%d:' % i
        size = 200 + (i * 397) % 800
        out.append((b'fc-%06d' % i, head + b'c' * (size - len(head))))
    return out


def counters(pcs):
    tot = [0, 0, 0, 0]
    for p in pcs:
        m = kz.metrics(p)
        tot[0] += m.sum('kzproxy_xzone_bytes_total', 0, category='payload', direction='in')
        tot[1] += m.sum('kzproxy_fetch_record_bytes_total', 0)
        tot[2] += m.sum('kzproxy_fetch_cache_hits_total', 0)
        tot[3] += m.sum('kzproxy_fetch_cache_bytes_saved_total', 0)
    return tot


def phase(tb, label, topic, extra):
    msgs = messages()
    zone_a = tb.brokers_in('a')[0].id
    for p in range(PARTITIONS):
        if tb.backend == 'kafka':
            tb.set_replicas(topic, p, [zone_a])  # no replica left in zone b to fetch from
        else:
            tb.set_leader(topic, p, zone_a)
    with kz.ProxyCluster(tb, extra_config=extra) as pc:
        acked = kz.produce(pc.proxy_in('a').kafka, topic, msgs, config=PRODUCER, timeout=120)
        reader = pc.proxy_in('b')
        start = counters(pc.proxies)
        per_group = []
        for g in range(GROUPS):
            before = counters(pc.proxies)
            got = consume(reader.kafka, topic, 'kz-fetch-cache-%s-%d-%d' % (label, os.getpid(), g), MESSAGES)
            n = check_once_in_order('%s group %d' % (label, g), got, msgs, acked)
            after = counters(pc.proxies)
            per_group.append((n, after[1] - before[1], after[0] - before[0]))
        end = counters(pc.proxies)
    xz = end[0] - start[0]
    one = per_group[0][1]
    for g, (n, fetched, gxz) in enumerate(per_group):
        print('%s: group %d read %d messages once and in order: %d B of records, %d B of fetch payload across zones'
              % (label, g, n, fetched, gxz))
    print('%s (%s): fetch payload across zones for %d groups %d B = %.2f x one group\'s %d B; cache hits %d, '
          'bytes saved %d' % (label, tb.backend, GROUPS, xz, xz / max(1, one), one, end[2] - start[2],
                              end[3] - start[3]))
    return xz, one, end[2] - start[2]


def main():
    kafka = kz.backend_name() == 'kafka'
    # On real Kafka, one replica per partition (moved to the zone-a broker by
    # phase()): a topic with no replica in the reading zone. The mock's
    # followers serve nobody unless told, so its default layout does.
    with kz.TestBed(topics={} if kafka else {'fc-off': PARTITIONS, 'fc-on': PARTITIONS}) as tb:
        if kafka:
            for topic in ('fc-off', 'fc-on'):
                tb.create_topic(topic, PARTITIONS, rf=1)
        off_xz, off_one, _ = phase(tb, 'no cache', 'fc-off', {'fetch_cache_bytes': 0})
        if off_xz < (GROUPS - 0.5) * off_one:
            raise HarnessError('no cache: %d B crossed zones for %d groups of %d B: the control phase should '
                               'cross about %d x' % (off_xz, GROUPS, off_one, GROUPS))
        xz, one, hits = phase(tb, 'cache', 'fc-on', {})
        if hits == 0:
            raise HarnessError('cache: no fetch was answered from the cache')
        if xz > BOUND * one:
            raise HarnessError('cache: %d B of fetch payload crossed zones for %d groups, want at most %.1f x one '
                               'group\'s %d B' % (xz, GROUPS, BOUND, one))


if __name__ == '__main__':
    kz.run_test(main, timeout=300)
