#!/usr/bin/python3
"""The reference Java client (org.apache.kafka:kafka-clients, the version the
real-Kafka test bed pins) through kzproxy's WAL path.

Three zones, one proxy each, a shared local WAL store; a 12-partition topic
whose leaders sit in all three zones. Through the zone-a proxy:
  1. an idempotent producer (acks=all, max.in.flight=5: the Java defaults)
     writes 6,000 messages "idem:SEQ", SEQ to partition SEQ % 12;
  2. a transactional producer runs 6 transactions of 200 messages and aborts
     every third (tests/kafka KzJavaClient txn);
then through the zone-b proxy consumer groups read the topic back and check
every expected message exactly once, in order per partition, and no aborted
one (read_committed): with the classic group protocol and with the KIP-848
protocol (group.protocol=consumer: ConsumerGroupHeartbeat through the proxy
to the group coordinator).

Always against real Kafka (the backend the client is the reference for): the
librdkafka 2.0.2 mock writes no transaction markers, has no KIP-848 APIs,
and answers ListOffsets v5 with 4 bytes after the message, which kzproxy
rejects as a malformed response.
Then the Java Admin client, through the zone-a proxy, runs the everyday admin
calls (KzJavaClient admin: create/describe/delete topics, list offsets, delete
records, configs, partitions, consumer groups), each checked.
Most of the partitions' leaders are in other zones than a, so the produce
goes through the WAL path; the test checks it did and that no record payload
crossed zones.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402
from kzharness import HarnessError  # noqa: E402
from kzbed import java_argv  # noqa: E402

TOPIC = 'java12'
PARTITIONS = 12
IDEM = 6000
TXNS, PER_TXN, ABORT_EVERY = 6, 200, 3


def java(mode, *args, timeout=120):
    argv = java_argv('io.kzproxy.tests.KzJavaClient', heap='256m') + [mode] + [str(a) for a in args]
    t0 = time.monotonic()
    try:
        cp = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise HarnessError('KzJavaClient %s did not finish in %ds; stderr ends:\n%s'
                           % (mode, timeout, (e.stderr or b'').decode('utf-8', 'replace')[-3000:]))
    lines = [ln for ln in cp.stdout.decode('utf-8', 'replace').splitlines() if ln.startswith('{')]
    if not lines:
        raise HarnessError('KzJavaClient %s printed no result (exit %d); stderr ends:\n%s'
                           % (mode, cp.returncode, cp.stderr.decode('utf-8', 'replace')[-3000:]))
    out = json.loads(lines[-1])
    out['secs'] = time.monotonic() - t0
    if cp.returncode != 0:
        raise HarnessError('KzJavaClient %s failed: %s; stderr ends:\n%s'
                           % (mode, lines[-1], cp.stderr.decode('utf-8', 'replace')[-3000:]))
    return out


def main():
    workdir = tempfile.mkdtemp(prefix='kz-java-')
    backend = 'kafka'
    try:
        extra = {'peer_secret': walpath.SECRET,
                 'wal': {'store': walpath.store_config('local', workdir), 'flush_ms': 50}}
        with kz.TestBed(topics={TOPIC: PARTITIONS}, backend=backend) as tb, \
                kz.ProxyCluster(tb, extra_config=extra, workdir=workdir) as pc:
            a, b = pc.proxy_in('a'), pc.proxy_in('b')
            before = walpath.proxy_figures(pc)
            r = java('produce', '--bootstrap', a.kafka, '--topic', TOPIC, '--count', IDEM,
                     '--partitions', PARTITIONS, '--tag', 'idem')
            print('java idempotent producer via zone a: %d acked in %.1fs' % (r['acked'], r['seconds']))
            t = java('txn', '--bootstrap', a.kafka, '--topic', TOPIC, '--partitions', PARTITIONS, '--tag', 'txn',
                     '--txn-id', 'kz-java-txn-%d' % os.getpid(), '--transactions', TXNS,
                     '--per-txn', PER_TXN, '--abort-every', ABORT_EVERY)
            print('java transactional producer via zone a: %d committed, %d aborted' % (t['committed'], t['aborted']))
            after = walpath.proxy_figures(pc)
            wal_parts = walpath.delta(after, before, 'wal_parts')
            payload = walpath.delta(after, before, 'payload')
            if wal_parts == 0:
                raise HarnessError('no produce partition took the WAL path (figures %s)' % after)
            if payload != 0:
                raise HarnessError('%d record payload bytes crossed zones (want 0)' % payload)
            expect = 'idem:%d,txn:%d' % (IDEM, t['committed'])
            for proto in ('classic', 'consumer'):
                c = java('consume', '--bootstrap', b.kafka, '--topic', TOPIC, '--group',
                         'kz-java-%s-%d' % (proto, os.getpid()), '--protocol', proto, '--expect', expect,
                         '--read-committed', '--timeout', 60)
                print('java consumer group (%s protocol) via zone b: %d consumed, missing %d, duplicates %d, '
                      'out of order %d, aborted seen %d, in %.1fs'
                      % (proto, c['consumed'], c['missing'], c['duplicates'], c['out_of_order'],
                         c['aborted_seen'], c['secs']))
            print('java client on %s: WAL-path partitions %d, payload across zones %d B' % (backend, wal_parts, payload))
            r = java('admin', '--bootstrap', a.kafka, '--topic', 'java-admin-%d' % os.getpid(), '--tag', 'admin',
                     '--group', 'kz-java-classic-%d' % os.getpid())
            print('java Admin client via zone a: %s' % '; '.join(r['steps']))
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    kz.run_test(main, timeout=400)
