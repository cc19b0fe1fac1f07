#!/usr/bin/python3
"""A record batch whose own CRC is wrong, on the WAL path (issue 17, item 2).

Proxy a derives each WAL chunk's CRC32C from the record batches' headers and
their own CRC fields instead of reading the payload (router/rt_out.c), so
proxy b's check of the slice it reads covers the producer's batch CRC too.
Who refuses the bad batch depends on the receiver's wal.read_check:
- on the mock backend (the default here), which does not check batch CRCs,
  the proxies run with read_check "payload": proxy b computes the CRC32C of
  every byte it reads, finds the slice does not match, and refuses it;
- on real Kafka (KZ_BACKEND=kafka) they keep the default "headers": proxy b
  checks only the CRC derived from the batch headers, which matches, and
  the broker refuses the batch on append (Kafka checks every batch's CRC).
Three zones, a local WAL store. Raw Produce v7 requests go to the zone-a
proxy for two partitions P and Q whose leaders are both in one other zone,
so that both travel in one WAL object, one KzWalAppend and one ranged read:

1. one request carrying a good batch for P and, for Q, a batch with one
   value byte changed after its CRC was computed: P is answered 0, Q
   CORRUPT_MESSAGE (2), in their own slots;
2. both went the WAL path (kzproxy_produce_path_partitions_total{path=wal}
   rose by 2) in one KzWalAppend (the receiver's kzproxy_wal_in_rpcs_total
   rose by 1); with "payload" the receiver counted one corrupt partition
   (kzproxy_wal_in_corrupt_partitions_total), with "headers" none and one
   partition error (kzproxy_wal_in_partition_errors_total, the broker's);
3. Q's log did not move (nothing of the bad batch was appended: the mock
   would have taken it), P's grew by the good batch's records;
4. the same connection then produces a good batch to Q: answered 0.
"""
import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402
from test_cut_through import high_watermarks, leaders, produce_request, read_produce_response  # noqa: E402
from test_cut_through import record_batch as cut_record_batch  # noqa: E402
import test_cut_through  # noqa: E402
import walpath  # noqa: E402

TOPIC = 'corrupt1'
PARTITIONS = 6
CORRUPT_MESSAGE = 2
NRECS = 3


def send(s, corr, parts):
    s.sendall(produce_request(corr, parts, client_id='kz-test-corrupt'))
    got, res = read_produce_response(s)
    if got != corr:
        raise HarnessError('correlation id %d, sent %d' % (got, corr))
    return {p: e for p, (e, _base) in res.items()}


def main():
    test_cut_through.TOPIC = TOPIC  # its request and watermark helpers name the topic
    workdir = tempfile.mkdtemp(prefix='kz-corrupt-')
    on_kafka = os.environ.get('KZ_BACKEND') == 'kafka'
    wal = {'store': walpath.store_config('local', workdir), 'flush_ms': 20}
    if not on_kafka:
        wal['read_check'] = 'payload'  # the mock appends a batch whatever its CRC
    extra = {'peer_secret': walpath.SECRET, 'wal': wal}
    with kz.TestBed(topics={TOPIC: PARTITIONS}) as tb, \
            kz.ProxyCluster(tb, extra_config=extra, workdir=workdir) as pc:
        rack = {b.id: b.rack for b in tb.brokers}
        lead = leaders(tb.bootstrap)
        by_zone = {}
        for p, b in sorted(lead.items()):
            if rack.get(b) != 'a':
                by_zone.setdefault(rack.get(b), []).append(p)
        pairs = [(z, ps) for z, ps in sorted(by_zone.items()) if len(ps) >= 2]
        if not pairs:
            raise HarnessError('want two partitions led in one zone other than a: %r (racks %r)' % (lead, rack))
        zone, (good_p, bad_p) = pairs[0][0], pairs[0][1][:2]
        receiver = pc.proxy_in(zone)
        # The sender derives chunk CRCs only once the receiver's KzHello has
        # said it refuses a bad slice for its partition alone.
        kz.wait_until(lambda: kz.metrics(pc.proxy_in('a')).sum('kzproxy_peer_slice_errors', 0,
                                                                node_id=str(receiver.node_id)) == 1,
                      20, 'proxy a to learn that proxy %d refuses bad slices alone' % receiver.node_id)
        px = pc.proxy_in('a')
        s = socket.create_connection(('127.0.0.1', px.kafka_port), timeout=30)
        good = cut_record_batch(NRECS, 1000)
        # Warm up: the proxy learns the topic and the peers (retriable errors until then).
        corr = [0]

        def warm():
            corr[0] += 1
            return send(s, corr[0], [(good_p, good), (bad_p, good)]) == {good_p: 0, bad_p: 0}
        kz.wait_until(warm, 30, 'a first WAL-path produce through proxy a')

        bad = bytearray(cut_record_batch(NRECS, 1000))
        bad[-200] ^= 0x5a  # inside the last record's value, under the batch CRC
        bad = bytes(bad)
        hw0 = high_watermarks(tb.bootstrap, [good_p, bad_p])
        m0 = [kz.metrics(p) for p in pc.proxies]
        wal0 = sum(m.sum('kzproxy_produce_path_partitions_total', 0, path='wal') for m in m0)
        rpcs0 = kz.metrics(receiver).sum('kzproxy_wal_in_rpcs_total', 0)
        bad0 = sum(m.sum('kzproxy_wal_in_corrupt_partitions_total', 0) for m in m0)
        err0 = kz.metrics(receiver).sum('kzproxy_wal_in_partition_errors_total', 0)

        corr[0] += 1
        res = send(s, corr[0], [(good_p, good), (bad_p, bad)])
        if res != {good_p: 0, bad_p: CORRUPT_MESSAGE}:
            raise HarnessError('good batch on %d, bad-CRC batch on %d: answered %r (want {%d: 0, %d: %d})'
                               % (good_p, bad_p, res, good_p, bad_p, CORRUPT_MESSAGE))
        print('ok  one request: partition %d (good batch) answered 0, partition %d (bad batch CRC) '
              'CORRUPT_MESSAGE' % (good_p, bad_p))

        m1 = [kz.metrics(p) for p in pc.proxies]
        wal = sum(m.sum('kzproxy_produce_path_partitions_total', 0, path='wal') for m in m1) - wal0
        nbad = sum(m.sum('kzproxy_wal_in_corrupt_partitions_total', 0) for m in m1) - bad0
        rpcs = kz.metrics(receiver).sum('kzproxy_wal_in_rpcs_total', 0) - rpcs0
        nerr = kz.metrics(receiver).sum('kzproxy_wal_in_partition_errors_total', 0) - err0
        want_bad = 0 if on_kafka else 1  # "headers": the broker refused it, not the receiver's check
        if wal != 2 or nbad != want_bad or rpcs != 1 or nerr != 1:
            raise HarnessError('WAL-path partitions %d (want 2), corrupt partitions counted %d (want %d), '
                               'KzWalAppend served in zone %s %d (want 1), its partition errors %d (want 1)'
                               % (wal, nbad, want_bad, zone, rpcs, nerr))
        print('ok  both partitions went the WAL path in one KzWalAppend to zone %s; refused by %s'
              % (zone, 'the broker (read_check headers)' if on_kafka else
                 'the receiver, 1 corrupt partition counted (read_check payload)'))

        hw1 = high_watermarks(tb.bootstrap, [good_p, bad_p])
        if hw1[bad_p] != hw0[bad_p] or hw1[good_p] != hw0[good_p] + NRECS:
            raise HarnessError('high watermarks %r -> %r: want partition %d unchanged and %d up by %d'
                               % (hw0, hw1, bad_p, good_p, NRECS))
        print('ok  partition %d: nothing appended (high watermark %d); partition %d: +%d records'
              % (bad_p, hw1[bad_p], good_p, NRECS))

        corr[0] += 1
        res = send(s, corr[0], [(bad_p, good)])
        if res != {bad_p: 0}:
            raise HarnessError('a good batch to %d after the bad one: answered %r' % (bad_p, res))
        s.close()
        print('ok  the same connection then appends a good batch to partition %d' % bad_p)
    print('test_wal_corrupt_batch: all passed')


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
