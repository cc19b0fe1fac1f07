#!/usr/bin/python3
"""The kzproxy demo: 3 zones, a broker and a proxy in each, a topic whose
partition leaders sit in every zone; a producer in each zone writes through its
zone's proxy (batches for leaders in other zones go through WAL objects and a
peer proxy in the leader's zone), a consumer in another zone reads everything
back; then an account, from the proxies' own /metrics, of the payload
produced, the bytes that crossed zones, the S3 requests, and the money saved
per TB."""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'integration'))
import kzharness as kz  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--messages', type=int, default=10000, help='messages per zone (default 10000)')
    ap.add_argument('--size', type=int, default=1024, help='message size in bytes (default 1024)')
    ap.add_argument('--partitions', type=int, default=12)
    ap.add_argument('--flush-ms', type=int, default=250, help='WAL object flush interval (default 250)')
    ap.add_argument('--kafka', action='store_true',
                    help='run against a real Apache Kafka cluster (3 KRaft brokers in racks a/b/c, about 15 s '
                         'to start) instead of the embedded mock')
    args = ap.parse_args()
    backend = 'kafka' if args.kafka else 'mock'
    zones = ('a', 'b', 'c')
    topic = 'demo'
    workdir = tempfile.mkdtemp(prefix='kzproxy-demo-')
    extra = {'peer_secret': 'demo-peer-secret-%s' % os.urandom(8).hex(),
             'wal': {'store': {'backend': 'local', 'root': os.path.join(workdir, 'wal-store')},
                     'flush_ms': args.flush_ms}}
    print('Starting %s (3 brokers, racks a/b/c) and one kzproxy per zone,'
          % ('an Apache Kafka cluster' if args.kafka else 'a mock Kafka cluster'))
    print('sharing a WAL store in %s/wal-store (the local stand-in for S3)...' % workdir)
    try:
        with kz.TestBed(zones=zones, brokers=3, topics={topic: args.partitions}, backend=backend) as tb, \
                kz.ProxyCluster(tb, zones=zones, extra_config=extra, workdir=workdir) as pc:
            run(args, tb, pc, zones, topic)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args, tb, pc, zones, topic):
    for b in tb.brokers:
        print('  broker %d  %-21s zone %s' % (b.id, b.address, b.rack))
    for p in pc.proxies:
        print('  kzproxy %d %-21s zone %s  (admin http://%s/metrics)' % (p.node_id, p.kafka, p.zone, p.admin))
    print('Partition leaders: partition p is led by broker (p %% 3) + 1, so every zone leads %d partitions.'
          % (args.partitions // 3))
    t0 = time.monotonic()
    sent = 0
    pad = b'.' * args.size
    for z in zones:
        p = pc.proxy_in(z)
        msgs = []
        for i in range(args.messages):
            head = ('zone %s message %d ' % (z, i)).encode()
            msgs.append((('%s-key%d' % (z, i % 50)).encode(), head + pad[:max(0, args.size - len(head))]))
        kz.produce(p.kafka, topic, msgs, config={'client.id': 'demo-producer-' + z, 'linger.ms': 20})
        sent += len(msgs)
        print('Produced %d messages of %d bytes through the zone-%s proxy' % (len(msgs), args.size, z))
    produced_at = {p.node_id: kz.metrics(p) for p in pc.proxies}
    reader = pc.proxy_in('b')
    zone_b = tb.brokers_in('b')[0].id
    led_elsewhere = [p for p in range(args.partitions) if p % 3 + 1 != zone_b]
    if not args.kafka:
        # Real Kafka's RackAwareReplicaSelector names the zone-b replica to the
        # zone-b proxy (KIP-392); the mock has no selector: tell its leaders to.
        for p in led_elsewhere:
            tb.set_follower(topic, p, zone_b)
    got = kz.consume_all(reader.kafka, topic, partitions=list(range(args.partitions)), timeout=120)
    consumed_at = {p.node_id: kz.metrics(p) for p in pc.proxies}
    elapsed = time.monotonic() - t0
    print('Consumed %d messages through the zone-b proxy (%.1fs in all)' % (len(got), elapsed))
    seen = {}
    in_order = True
    for m in got:
        key, value = m[2], m[3]
        n = int(value.split()[3])
        if key in seen and seen[key] >= n:
            in_order = False
        seen[key] = n
    once = len(got) == sent and len(set(x[3] for x in got)) == sent
    print('Every message back exactly once: %s; each key in order: %s' % ('yes' if once else 'NO',
                                                                        'yes' if in_order else 'NO'))
    print()
    print('While producing (each proxy\'s own /metrics):')
    print('%-8s %-5s %10s %8s %8s %12s %12s %6s %6s' % ('proxy', 'zone', 'produced', 'direct', 'via WAL',
                                                      'xzone data', 'xzone all', 'PUTs', 'GETs'))
    tot = dict(produced=0, wal=0, payload=0, xall=0, puts=0, gets=0)
    for p in pc.proxies:
        m = produced_at[p.node_id]
        row = dict(produced=m.sum('kzproxy_produce_record_bytes_total', 0),
                   wal=m.sum('kzproxy_wal_record_bytes_total', 0),
                   payload=m.sum('kzproxy_xzone_bytes_total', 0, category='payload'),
                   xall=m.sum('kzproxy_xzone_bytes_total', 0),
                   puts=m.sum('kzproxy_objwal_requests_total', 0, op='put'),
                   gets=m.sum('kzproxy_objwal_requests_total', 0, op='get'))
        for k in tot:
            tot[k] += row[k]
        print('%-8d %-5s %10s %8d %8d %12s %12s %6d %6d' % (
            p.node_id, p.zone, human(row['produced']),
            m.sum('kzproxy_produce_path_partitions_total', 0, path='direct'),
            m.sum('kzproxy_produce_path_partitions_total', 0, path='wal'),
            human(row['payload']), human(row['xall']), row['puts'], row['gets']))
    print()
    tb_bytes = 1e12
    scale = tb_bytes / tot['produced'] if tot['produced'] else 0
    xz_price, put_price, get_price = 0.02, 0.005 / 1000, 0.0004 / 1000
    remote_share = tot['wal'] / tot['produced'] if tot['produced'] else 0
    avoided = tot['wal'] * scale / 1e9 * xz_price
    s3_cost = (tot['puts'] * put_price + tot['gets'] * get_price) * scale
    control = tot['xall'] * scale / 1e9 * xz_price / 2
    print('Payload produced:            %s' % human(tot['produced']))
    print('Sent through WAL objects:    %s (%.0f%%: the share whose leader was in another zone)'
          % (human(tot['wal']), remote_share * 100))
    # The payload meter counts the record batches of the decoded Produce requests sent to, and
    # Fetch responses received from, brokers of another zone (not the frames' other bytes).
    # The consumer reads through the zone-b proxy, which (fetch_from_follower "broker", the default) asks
    # leaders in other zones with rack_id "b" and follows the replica they name (KIP-392).
    fetch_payload = (consumed_at[reader.node_id].sum('kzproxy_xzone_bytes_total', 0, category='payload',
                                                     direction='in')
                     - produced_at[reader.node_id].sum('kzproxy_xzone_bytes_total', 0, category='payload',
                                                       direction='in'))
    fetched = (consumed_at[reader.node_id].sum('kzproxy_fetch_record_bytes_total', 0)
               - produced_at[reader.node_id].sum('kzproxy_fetch_record_bytes_total', 0))
    print('Payload bytes across zones:  %s (while producing; measured from the decoded Produce/Fetch frames)'
          % human(tot['payload']))
    # Without zone-local fetch, the partitions led in zones a and c would be
    # read from their leaders: their share of the bytes consumed.
    part_bytes = {}
    for m in got:
        part_bytes[m[0]] = part_bytes.get(m[0], 0) + len(m[2] or b'') + len(m[3] or b'')
    share = sum(part_bytes.get(p, 0) for p in led_elsewhere) / max(1, sum(part_bytes.values()))
    print('Fetch payload across zones:  %s with zone-local fetch (zone-b proxy, consume phase: %s fetched, read '
          'from the zone-b replica each leader named); without it about %s (the %d of %d partitions led in zones '
          'a and c, read from their leaders)'
          % (human(fetch_payload), human(fetched), human(fetched * share), len(led_elsewhere), args.partitions))
    repl = sum(produced_at[p.node_id].sum('kzproxy_xzone_replication_estimate_bytes_total', 0) for p in pc.proxies)
    print('Replication across zones (estimate): %s (Kafka\'s own copies to followers in other racks of the %s '
          'produced, from the metadata; no proxy removes this on a stock cluster, a diskless backend does)'
          % (human(repl), human(tot['produced'])))
    bill = {}
    for p in pc.proxies:
        for k in ('produce_payload', 'fetch_payload', 'peer_rpc', 'metadata_control'):
            bill[k] = bill.get(k, 0) + consumed_at[p.node_id].sum('kzproxy_xzone_bill_bytes_total', 0, kind=k)
    print('Bytes across zones by kind:  produce payload %s, fetch payload %s, peer RPC %s, metadata/control %s '
          '(all proxies, whole run)' % (human(bill['produce_payload']), human(bill['fetch_payload']),
                                        human(bill['peer_rpc']), human(bill['metadata_control'])))
    print('All bytes across zones:      %s while producing (%.3f%% of payload: RPCs and metadata)'
          % (human(tot['xall']), 100.0 * tot['xall'] / max(1, tot['produced'])))
    print('S3 requests:                 %d PUTs, %d GETs' % (tot['puts'], tot['gets']))
    print('Per TB produced at list prices ($0.02/GB cross-zone, $0.005 per 1,000 PUTs, $0.0004 per 1,000 GETs):')
    print('  cross-zone transfer avoided  $%8.2f' % avoided)
    print('  S3 requests spent            $%8.2f  (objects here are small: %d ms flushes of a short burst)'
          % (s3_cost, args.flush_ms))
    print('  control traffic across zones $%8.2f' % control)
    print('  saved                        $%8.2f per TB' % (avoided - s3_cost - control))
    if not once or not in_order or tot['payload'] != 0 or fetch_payload != 0:
        sys.exit(1)


def human(n):
    n = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if n < 1024 or unit == 'GiB':
            return '%.1f %s' % (n, unit) if unit != 'B' else '%d B' % n
        n /= 1024


if __name__ == '__main__':
    main()
