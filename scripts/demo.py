#!/usr/bin/python3
"""The kzproxy demo: 3 zones, a broker and a proxy in each, a topic whose
partition leaders sit in every zone; a producer in each zone writes through its
zone's proxy, a consumer in another zone reads everything back; then an
account of what each proxy did, from its own /metrics."""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'integration'))
import kzharness as kz  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--messages', type=int, default=3000, help='messages per zone (default 3000)')
    ap.add_argument('--partitions', type=int, default=12)
    args = ap.parse_args()
    zones = ('a', 'b', 'c')
    topic = 'demo'
    print('Starting a mock Kafka cluster (3 brokers, racks a/b/c) and one kzproxy per zone...')
    with kz.TestBed(zones=zones, brokers=3, topics={topic: args.partitions}) as tb, \
            kz.ProxyCluster(tb, zones=zones) as pc:
        for b in tb.brokers:
            print('  broker %d  %-21s zone %s' % (b.id, b.address, b.rack))
        for p in pc.proxies:
            print('  kzproxy %d %-21s zone %s  (admin http://%s/metrics)' % (p.node_id, p.kafka, p.zone, p.admin))
        print('Partition leaders: partition p is led by broker (p %% 3) + 1, so every zone leads %d partitions.'
              % (args.partitions // 3))
        t0 = time.monotonic()
        sent = 0
        for z in zones:
            p = pc.proxy_in(z)
            msgs = [(('%s-key%d' % (z, i % 50)).encode(), ('zone %s message %d' % (z, i)).encode())
                    for i in range(args.messages)]
            kz.produce(p.kafka, topic, msgs, config={'client.id': 'demo-producer-' + z})
            sent += len(msgs)
            print('Produced %d messages through the zone-%s proxy' % (len(msgs), z))
        reader = pc.proxy_in('b')
        got = kz.consume_all(reader.kafka, topic, partitions=list(range(args.partitions)), timeout=60)
        elapsed = time.monotonic() - t0
        print('Consumed %d messages through the zone-b proxy (%.1fs in all)' % (len(got), elapsed))
        seen = {}
        in_order = True
        for m in got:
            key, value = m[2], m[3]
            n = int(value.split()[-1])
            if key in seen and seen[key] >= n:
                in_order = False
            seen[key] = n
        print('Every message back exactly once: %s; each key in order: %s'
              % ('yes' if len(got) == sent and len(set(x[3] for x in got)) == sent else 'NO', 'yes' if in_order else 'NO'))
        print()
        print('%-8s %-5s %10s %10s %12s %12s %12s %10s' % ('proxy', 'zone', 'requests', 'produced', 'fetched',
                                                       'to brokers', 'from brokers', 'bad input'))
        for p in pc.proxies:
            m = kz.metrics(p)
            print('%-8d %-5s %10d %10s %12s %12s %12s %10d' % (
                p.node_id, p.zone, m.sum('kzproxy_requests_total', 0),
                human(m.sum('kzproxy_produce_record_bytes_total', 0)),
                human(m.sum('kzproxy_fetch_record_bytes_total', 0)),
                human(m.sum('kzproxy_upstream_bytes_out_total', 0)),
                human(m.sum('kzproxy_upstream_bytes_in_total', 0)),
                m.sum('kzproxy_connections_closed_bad_input_total', 0)))
        print()
        print('Each client saw a cluster made only of its own zone\'s proxy; the proxy split every')
        print('Produce and Fetch by the real leader and merged the answers. In this version Produce')
        print('to a leader in another zone still crosses zones directly; the WAL path through S3')
        print('that keeps payload in-zone is the next milestone (see README, "Deployment modes").')
        if len(got) != sent or not in_order:
            sys.exit(1)


def human(n):
    n = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if n < 1024 or unit == 'GiB':
            return '%.1f %s' % (n, unit) if unit != 'B' else '%d B' % n
        n /= 1024


if __name__ == '__main__':
    main()
