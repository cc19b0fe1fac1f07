#!/usr/bin/python3
"""An idempotent producer through the WAL path (issue 5 acceptance).

One confluent-kafka producer in zone a (enable.idempotence, acks=all,
max.in.flight=5, small batches so many requests are in flight at once)
writes 20,000 messages to the 24 partitions of a topic whose leaders are
all in zones b and c, so every batch goes through a WAL object and a peer.
Then: no delivery error and no error callback at all (so no
OUT_OF_ORDER_SEQUENCE_NUMBER or other sequence error), each partition's
acknowledged offsets are 0..n-1 in production order, and a consumer reads
every message exactly once in that order.
Then an acks=0 producer writes 3,000 more through the WAL path: it gets no
responses, and every message still reaches the leaders (the partitions' end
offsets, read through the proxy, grow by 3,000).
"""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402
from kzharness import HarnessError  # noqa: E402

TOPIC = 'idem24'
PARTITIONS = 24
MESSAGES = 20000


def main():
    from confluent_kafka import Producer
    workdir = tempfile.mkdtemp(prefix='kz-wal-idem-')
    try:
        extra = {'peer_secret': walpath.SECRET,
                 'wal': {'store': walpath.store_config('local', workdir), 'flush_ms': 20,
                         'max_inflight_uploads': 8}}
        with kz.TestBed(topics={TOPIC: PARTITIONS}) as tb, \
                kz.ProxyCluster(tb, extra_config=extra, workdir=workdir) as pc:
            # Every leader out of zone a: brokers 2 (zone b) and 3 (zone c).
            for part in range(PARTITIONS):
                tb.set_leader(TOPIC, part, 2 + part % 2)
            errors, acked, failed = [], {}, []
            p = Producer({'bootstrap.servers': pc.proxy_in('a').kafka, 'client.id': 'kz-test-wal-idem',
                          'enable.idempotence': True, 'acks': 'all',
                          'max.in.flight.requests.per.connection': 5, 'linger.ms': 2,
                          'batch.num.messages': 50, 'message.timeout.ms': 60000,
                          'error_cb': lambda e: errors.append(e)})

            def dr(err, msg):
                if err is not None:
                    failed.append('%s: %s' % (msg.value(), err))
                else:
                    acked[int(msg.value())] = (msg.partition(), msg.offset())

            before = walpath.proxy_figures(pc)
            t0 = time.monotonic()
            for i in range(MESSAGES):
                while True:
                    try:
                        p.produce(TOPIC, value=b'%d' % i, partition=i % PARTITIONS, on_delivery=dr)
                        break
                    except BufferError:
                        p.poll(0.05)
                p.poll(0)
            left = p.flush(90)
            secs = time.monotonic() - t0
            after = walpath.proxy_figures(pc)
            if left or failed or errors:
                raise HarnessError('%d undelivered, %d failed (first %s), client errors %s'
                                   % (left, len(failed), failed[:1], [str(e) for e in errors[:3]]))
            by_part = {}
            for i in range(MESSAGES):
                part, off = acked[i]
                by_part.setdefault(part, []).append(off)
            for part, offs in by_part.items():
                if offs != list(range(len(offs))):
                    raise HarnessError('partition %d: acknowledged offsets not 0..n-1 in order: %s...'
                                       % (part, offs[:10]))
            rows = kz.consume_all(pc.proxy_in('b').kafka, TOPIC, timeout=60)
            seen = {}
            for part, off, _k, v in rows:
                i = int(v)
                if i in seen:
                    raise HarnessError('message %d read twice' % i)
                seen[i] = (part, off)
                if acked.get(i) != (part, off):
                    raise HarnessError('message %d read at %s, acknowledged at %s' % (i, (part, off), acked.get(i)))
            if len(seen) != MESSAGES:
                raise HarnessError('%d of %d messages read back' % (len(seen), MESSAGES))
            wal = walpath.delta(after, before, 'wal_parts')
            rpcs = walpath.delta(after, before, 'rpcs')
            if wal == 0 or walpath.delta(after, before, 'direct_parts') != 0:
                raise HarnessError('expected every partition on the WAL path: %s' % after)
            print('idempotent producer through the WAL path: %d messages, max.in.flight=5, in %.2fs; %d partition '
                  'batches on the WAL path in %d RPCs; no sequence or other errors; offsets 0..n-1 in order on '
                  'all %d partitions; read back exactly once' % (MESSAGES, secs, wal, rpcs, PARTITIONS))
            acks0(pc)
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)


ACKS0 = 3000


def end_offsets(bootstrap):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({'bootstrap.servers': bootstrap, 'group.id': 'kz-test-wal-acks0-offsets'})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(TOPIC, part), timeout=10)[1] for part in range(PARTITIONS))
    finally:
        c.close()


def acks0(pc):
    from confluent_kafka import Producer
    reader = pc.proxy_in('b').kafka
    start = end_offsets(reader)
    p = Producer({'bootstrap.servers': pc.proxy_in('a').kafka, 'client.id': 'kz-test-wal-acks0', 'acks': 0,
                  'linger.ms': 5})
    for i in range(ACKS0):
        while True:
            try:
                p.produce(TOPIC, value=b'acks0-%d' % i, partition=i % PARTITIONS)
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(30):
        raise HarnessError('acks=0 producer: messages left in its queue')
    # With no responses the only evidence is the leaders' end offsets; the
    # last count read is kept so that a timeout says whether messages were
    # lost or only slow (the sanitizer run on 2 cores is several times
    # slower, and each read is a new consumer's metadata round).
    seen = {'n': None, 'reads': 0}

    def grown():
        seen['n'] = end_offsets(reader) - start
        seen['reads'] += 1
        return seen['n'] >= ACKS0 and seen['n']
    try:
        got = kz.wait_until(grown, 90, 'the %d acks=0 messages to reach the leaders' % ACKS0, interval=0.2)
    except HarnessError as e:
        raise HarnessError('%s: end offsets grew by %s after %d reads' % (e, seen['n'], seen['reads']))
    if got != ACKS0:
        raise HarnessError('end offsets grew by %d for %d acks=0 messages' % (got, ACKS0))
    print('acks=0 through the WAL path: %d messages, no responses, all appended (end offsets +%d)' % (ACKS0, got))


if __name__ == '__main__':
    kz.run_test(main, timeout=300)
