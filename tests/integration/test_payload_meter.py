#!/usr/bin/python3
"""The cross-zone payload meter measures (issue 13, item 1).

kzproxy_xzone_bytes_total{category="payload"} is the record-batch bytes of
the decoded Produce requests a proxy sent to, and Fetch responses it got
from, brokers of another zone. Three zones, a broker and a proxy in each,
12-partition topics led in every zone (partition p by broker p % 3 + 1).
The same workload runs twice, with a fresh proxy cluster and topic each:

  direct  cross_zone_policy "direct", no wal section: the zone-a proxy sends
          Produce straight to the leaders in zones b and c;
  wal     peer_secret + a local WAL store (as walpath.py): batches for
          leaders in other zones go through WAL objects and a peer there.

Workload: one confluent-kafka producer through the zone-a proxy, MESSAGES
messages with 8-byte keys and values of 100 to 1999 bytes, no compression,
one record per batch (batch.num.messages 1); then everything is read back
through the zone-b proxy. Checked, summing the meter over the proxies:

  produce payload (direction out): direct: at least the key+value bytes sent
      to partitions led outside zone a, at most their record batches' exact
      size (below); wal: 0, with the WAL path carrying the remote partitions;
  fetch payload (direction in): direct (run with fetch_from_follower "off",
      every partition read from its leader): at least the key+value bytes of
      the partitions led outside zone b, at most their batches' exact size;
      wal (the default fetch_from_follower "broker", KIP-392): on real Kafka
      (RackAwareReplicaSelector, a replica of every partition in zone b) 0,
      the zone-b proxy reads every partition from the zone-b replica; on the
      mock (no replica selector, no follower set) the same range as direct.

The figures are printed. Runs against the mock or real Kafka (KZ_BACKEND).
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402
from kzharness import HarnessError  # noqa: E402

PARTITIONS = 12
MESSAGES = 360
PRODUCER = {'client.id': 'kz-test-payload-meter', 'acks': 'all', 'compression.type': 'none',
            'batch.num.messages': 1, 'linger.ms': 5}


def varint_len(n):
    """Bytes of n as a Kafka (zigzag) varint."""
    z = (n << 1) ^ (n >> 63)
    size = 1
    while z >= 0x80:
        z >>= 7
        size += 1
    return size


# A record batch (magic 2) holding one record, uncompressed, no headers:
#   batch header: baseOffset 8, batchLength 4, partitionLeaderEpoch 4,
#     magic 1, crc 4, attributes 2, lastOffsetDelta 4, baseTimestamp 8,
#     maxTimestamp 8, producerId 8, producerEpoch 2, baseSequence 4,
#     record count 4                                          = 61 bytes;
#   the record: its length (varint), attributes 1, timestampDelta 0 (1),
#     offsetDelta 0 (1), key length (varint) + key, value length (varint)
#     + value, header count 0 (1): 4 bytes + three varints of 1-2 bytes
#     here, so at most 10 bytes of framing per record.
# The broker keeps a v2 uncompressed batch as it came (it only sets the base
# offset and leader epoch), so Fetch returns the same bytes. With one record
# per batch this is the exact size; the payload meter may not count more
# (it would be counting Produce/Fetch framing: topic names, partition
# fields, sizes) nor less than the key and value bytes themselves.
BATCH_HEADER = 61


def batch_bytes(key_len, value_len):
    body = 1 + 1 + 1 + varint_len(key_len) + key_len + varint_len(value_len) + value_len + 1
    return BATCH_HEADER + varint_len(body) + body


def messages():
    out = []
    for i in range(MESSAGES):
        key = b'pm-%05d' % i
        size = 100 + (i * 397) % 1900  # 100 .. 1999 bytes: 1- and 2-byte length varints
        head = b'%d:' % i
        out.append((key, head + b'v' * (size - len(head))))
    return out


def leader_zones(tb, topic):
    """Partition -> zone of its leader: as the controller sees it on real
    Kafka, by the bed's layout (broker p % 3 + 1) on the mock."""
    if hasattr(tb, 'describe'):
        return {d['partition']: tb.broker(d['leader']).rack for d in tb.describe(topic)}
    return {p: tb.broker(p % len(tb.brokers) + 1).rack for p in range(PARTITIONS)}


def meter(pc):
    """Sums over the proxies: payload out and in, and produce partitions by path."""
    out = {'out': 0, 'in': 0, 'wal': 0, 'cross': 0}
    for p in pc.proxies:
        m = pc.metrics(p)
        out['out'] += m.sum('kzproxy_xzone_bytes_total', 0, category='payload', direction='out')
        out['in'] += m.sum('kzproxy_xzone_bytes_total', 0, category='payload', direction='in')
        out['wal'] += m.sum('kzproxy_produce_path_partitions_total', 0, path='wal')
        out['cross'] += m.sum('kzproxy_produce_path_partitions_total', 0, path='cross_zone')
    return out


def expected(msgs, acked, zones, outside):
    """(key+value bytes, exact batch bytes) of the messages whose partition
    is led outside zone `outside`."""
    kv = batches = 0
    for (k, v), (part, _off) in zip(msgs, acked):
        if zones[part] != outside:
            kv += len(k) + len(v)
            batches += batch_bytes(len(k), len(v))
    return kv, batches


def check_range(what, got, low, high):
    if not low <= got <= high:
        raise HarnessError('%s: the meter says %d bytes, want between %d (key+value) and %d (record batches)'
                           % (what, got, low, high))


def run(tb, label, topic, extra):
    msgs = messages()
    zones = leader_zones(tb, topic)
    if sorted(set(zones.values())) != ['a', 'b', 'c']:
        raise HarnessError('%s: leaders of %s are in zones %s, want a, b and c' % (label, topic, zones))
    with kz.ProxyCluster(tb, extra_config=extra) as pc:
        before = meter(pc)
        acked = kz.produce(pc.proxy_in('a').kafka, topic, msgs, config=PRODUCER, timeout=90)
        produced = meter(pc)
        rows = kz.consume_all(pc.proxy_in('b').kafka, topic, partitions=list(range(PARTITIONS)),
                              config={'client.id': 'kz-test-payload-meter-reader'}, timeout=90)
        consumed = meter(pc)
    if len(rows) != len(msgs) or sorted(r[3] for r in rows) != sorted(v for _k, v in msgs):
        raise HarnessError('%s: read back %d messages of %d, or not the same ones' % (label, len(rows), len(msgs)))
    out = produced['out'] - before['out']
    fetch_in = consumed['in'] - produced['in']
    kv_out, batch_out = expected(msgs, acked, zones, 'a')
    kv_in, batch_in = expected(msgs, acked, zones, 'b')
    if produced['in'] != before['in'] or consumed['out'] != produced['out']:
        raise HarnessError('%s: payload moved in the wrong phase: in %d -> %d while producing, out %d -> %d '
                           'while consuming' % (label, before['in'], produced['in'], produced['out'],
                                                consumed['out']))
    print('%s (%s): produce payload across zones %d bytes (key+value to leaders outside zone a %d, their '
          'batches %d); fetch payload across zones %d bytes (key+value from leaders outside zone b %d, their '
          'batches %d); produce partitions by path: wal %d, cross-zone %d'
          % (label, tb.backend, out, kv_out, batch_out, fetch_in, kv_in, batch_in,
             produced['wal'] - before['wal'], produced['cross'] - before['cross']))
    return out, fetch_in, (kv_out, batch_out), (kv_in, batch_in), produced['wal'] - before['wal']


def main():
    workdir = tempfile.mkdtemp(prefix='kz-payload-meter-')
    try:
        topics = {'pm-direct': PARTITIONS, 'pm-wal': PARTITIONS}
        with kz.TestBed(topics=topics) as tb:
            out, fetch_in, (kv_out, batch_out), (kv_in, batch_in), _ = run(
                tb, 'direct', 'pm-direct', {'cross_zone_policy': 'direct', 'fetch_from_follower': 'off'})
            check_range('direct: produce payload across zones', out, kv_out, batch_out)
            check_range('direct: fetch payload across zones', fetch_in, kv_in, batch_in)

            wal = {'peer_secret': walpath.SECRET, 'wal': {'store': walpath.store_config('local', workdir)}}
            out, fetch_in, _, (kv_in, batch_in), wal_parts = run(tb, 'wal', 'pm-wal', wal)
            if out != 0:
                raise HarnessError('wal: %d bytes of produce payload crossed zones, want 0' % out)
            if wal_parts == 0:
                raise HarnessError('wal: no produce partition took the WAL path')
            if tb.backend == 'kafka':
                if fetch_in != 0:
                    raise HarnessError('wal: %d bytes of fetch payload crossed zones, want 0 (zone-local fetch)'
                                       % fetch_in)
            else:
                check_range('wal: fetch payload across zones', fetch_in, kv_in, batch_in)
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    kz.run_test(main, timeout=400)
