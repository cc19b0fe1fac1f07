#!/usr/bin/python3
"""Transactions through the WAL path, against real Apache Kafka (its
transaction coordinator writes the markers; the librdkafka mock writes none).

Three zones, two proxies per zone, a shared local WAL store; a 12-partition
topic led in all three zones. A transactional producer (confluent-kafka)
bootstraps at both zone-a proxies, so two thirds of its partitions go through
WAL objects to leaders in zones b and c:
  1. a transaction of 600 messages, committed;
  2. a transaction of 600 messages, aborted;
  3. a transaction of 600 messages, every one acknowledged, then the zone-a
     proxy the producer talks to is killed (SIGKILL) before the commit; the
     producer commits through the other zone-a proxy, or, if the commit fails,
     aborts; either way the transaction must end whole.
A read_committed consumer through a zone-b proxy then sees transaction 1 once
each in order, nothing of 2, and all or nothing of 3 as the producer was told.
"""
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402
from kzharness import HarnessError  # noqa: E402

TOPIC = 'wtxn12'
PARTITIONS = 12
PER_TXN = 600


def txn_producer(bootstrap, txn_id, errors):
    from confluent_kafka import Producer
    return Producer({'bootstrap.servers': bootstrap, 'client.id': 'kz-test-wal-txn', 'transactional.id': txn_id,
                     'transaction.timeout.ms': 60000, 'linger.ms': 5, 'message.timeout.ms': 60000,
                     'error_cb': lambda e: errors.append(e)})


def call(what, fn, *args):
    from confluent_kafka import KafkaException
    try:
        return fn(*args)
    except KafkaException as e:
        err = e.args[0]
        raise HarnessError('%s failed: %s (retriable %s, abortable %s, fatal %s)'
                           % (what, err, err.retriable(), err.txn_requires_abort(), err.fatal()))


def produce_txn(p, tag, acked, failed):
    def dr(err, msg):
        if err is not None:
            failed.append('%s: %s' % (msg.value(), err))
        else:
            acked.append(msg.value())
    for i in range(PER_TXN):
        p.produce(TOPIC, value=b'%s:%d' % (tag, i), partition=i % PARTITIONS, on_delivery=dr)
        p.poll(0)
    left = p.flush(30)
    if left or failed or len(acked) != PER_TXN:
        raise HarnessError('transaction %s: %d acknowledged, %d undelivered, failures %s'
                           % (tag.decode(), len(acked), left, failed[:3]))


def main():
    from confluent_kafka import KafkaException
    workdir = tempfile.mkdtemp(prefix='kz-wal-txn-')
    try:
        extra = {'peer_secret': walpath.SECRET,
                 'wal': {'store': walpath.store_config('local', workdir), 'flush_ms': 50}}
        with kz.TestBed(topics={TOPIC: PARTITIONS}, backend='kafka') as tb, \
                kz.ProxyCluster(tb, per_zone=2, extra_config=extra, workdir=workdir) as pc:
            a1, a2 = pc.proxies_in('a')
            errors = []
            p = txn_producer('%s,%s' % (a1.kafka, a2.kafka), 'kz-wal-txn-%d' % os.getpid(), errors)
            call('init_transactions', p.init_transactions, 30)
            t0 = time.monotonic()
            for tag, commit in ((b'one', True), (b'two', False)):
                call('begin_transaction', p.begin_transaction)
                acked, failed = [], []
                produce_txn(p, tag, acked, failed)
                call('%s_transaction' % ('commit' if commit else 'abort'),
                     p.commit_transaction if commit else p.abort_transaction, 30)
            wal_parts = sum(pc.metrics(q).sum('kzproxy_produce_path_partitions_total', 0, path='wal')
                            for q in (a1, a2))
            if wal_parts == 0:
                raise HarnessError('no partition of the zone-a proxies took the WAL path')
            # 3: acknowledged, then the proxy dies before the commit.
            call('begin_transaction', p.begin_transaction)
            acked, failed = [], []
            produce_txn(p, b'three', acked, failed)
            served = {q.node_id: pc.metrics(q).sum('kzproxy_requests_total', 0, api='EndTxn') +
                      pc.metrics(q).sum('kzproxy_requests_total', 0, api='AddPartitionsToTxn') for q in (a1, a2)}
            victim = a1 if served[a1.node_id] >= served[a2.node_id] else a2
            pc.stop_proxy(victim, sig=signal.SIGKILL)
            try:
                p.commit_transaction(60)
                outcome = 'committed'
            except KafkaException as e:
                err = e.args[0]
                if err.fatal():
                    raise HarnessError('commit after the proxy died: fatal error %s' % err)
                call('abort_transaction after a failed commit (%s)' % err, p.abort_transaction, 60)
                outcome = 'aborted'
            secs = time.monotonic() - t0
            fatal = [e for e in errors if e.fatal()]
            if fatal:
                raise HarnessError('fatal producer errors: %s' % fatal)
            b = pc.proxy_in('b')
            rows = kz.consume_all(b.kafka, TOPIC, partitions=list(range(PARTITIONS)),
                                  config={'isolation.level': 'read_committed', 'client.id': 'kz-test-wal-txn-reader'},
                                  timeout=60)
            seen = {}
            last = {}
            for part, off, _k, v in rows:
                tag, seq = v.split(b':')
                seen.setdefault(tag, []).append(int(seq))
                if last.get((tag, part), -1) >= int(seq):
                    raise HarnessError('partition %d: %s after %s:%d' % (part, v, tag, last[(tag, part)]))
                last[(tag, part)] = int(seq)
            if sorted(seen.get(b'one', [])) != list(range(PER_TXN)):
                raise HarnessError('committed transaction 1: read %d messages, want %d once each'
                                   % (len(seen.get(b'one', [])), PER_TXN))
            if seen.get(b'two'):
                raise HarnessError('aborted transaction 2: %d messages visible to read_committed' % len(seen[b'two']))
            three = sorted(seen.get(b'three', []))
            want = list(range(PER_TXN)) if outcome == 'committed' else []
            if three != want:
                raise HarnessError('transaction 3 (%s after proxy %d was killed): %d of %d messages visible: '
                                   'half a transaction' % (outcome, victim.node_id, len(three), PER_TXN))
            print('transactions through the WAL path (%d WAL-path partitions on the zone-a proxies): committed %d '
                  'read once each in order, aborted %d invisible; proxy %d killed between produce and commit: '
                  'the transaction %s whole (%d of %d visible) via the other zone-a proxy; %.1fs'
                  % (wal_parts, PER_TXN, PER_TXN, victim.node_id, outcome, len(three), PER_TXN, secs))
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    kz.run_test(main, timeout=300)
