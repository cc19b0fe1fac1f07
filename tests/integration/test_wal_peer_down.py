#!/usr/bin/python3
"""A zone-b peer killed mid-stream on the WAL path (issue 5 acceptance).

Two proxies per zone. An idempotent producer (acks=all) in zone a streams
30,000 messages to 12 partitions all led by broker 2 (zone b), so every
batch goes through a WAL object and a KzWalAppend to a zone-b proxy. After
10,000 acknowledgements the zone-b proxy serving those RPCs is killed with
SIGKILL. The producer carries on (the RPCs go to the other zone-b proxy),
every message is acknowledged, every acknowledged message is read back from
the topic, and each partition's messages are in order.

The zone-a proxy never resends a KzWalAppend that may have reached the dead
peer: the partitions of the RPC in flight get REQUEST_TIMED_OUT (the killed
proxy may or may not have appended them), so the proxy appends each slice at
most once. The client's own retry is a new batch with the same producer id
and sequence: real Kafka (KZ_BACKEND=kafka) drops it by its sequence number
if the first append happened, so there must be no duplicate at all. The mock
cluster checks sequences only for transactional producers: there a batch the
killed proxy appended without answering is appended again by the client's
retry, so duplicates remain possible; they are counted and printed.
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

TOPIC = 'down12'
PARTITIONS = 12
MESSAGES = 30000
KILL_AT = 10000
TIMEOUT = 120


def main():
    from confluent_kafka import Producer
    workdir = tempfile.mkdtemp(prefix='kz-wal-down-')
    try:
        extra = {'peer_secret': walpath.SECRET, 'health_check_ms': 200, 'rpc_timeout_ms': 3000,
                 'wal': {'store': walpath.store_config('local', workdir), 'flush_ms': 20}}
        with kz.TestBed(topics={TOPIC: PARTITIONS}) as tb, \
                kz.ProxyCluster(tb, per_zone=2, extra_config=extra, workdir=workdir) as pc:
            for part in range(PARTITIONS):
                tb.set_leader(TOPIC, part, 2)
            errors, acked, failed = [], {}, []
            p = Producer({'bootstrap.servers': pc.proxy_in('a').kafka, 'client.id': 'kz-test-wal-down',
                          'enable.idempotence': True, 'acks': 'all', 'linger.ms': 5,
                          'message.timeout.ms': 90000, 'error_cb': lambda e: errors.append(e)})

            def dr(err, msg):
                if err is not None:
                    failed.append('%s: %s' % (msg.value(), err))
                else:
                    acked[int(msg.value())] = (msg.partition(), msg.offset())

            killed, events = None, []
            t0 = time.monotonic()
            deadline = t0 + TIMEOUT
            produced = 0
            while len(acked) + len(failed) < MESSAGES:
                if time.monotonic() > deadline:
                    raise HarnessError('after %ds: produced %d, acked %d, failed %d; events %s; errors %s'
                                       % (TIMEOUT, produced, len(acked), len(failed), events, errors[-3:]))
                if killed is None and len(acked) >= KILL_AT:
                    served = {q.node_id: pc.metrics(q).sum('kzproxy_wal_in_rpcs_total', 0)
                              for q in pc.proxies_in('b')}
                    victim = max(pc.proxies_in('b'), key=lambda q: served[q.node_id])
                    if served[victim.node_id] == 0:
                        raise HarnessError('no zone-b proxy served a KzWalAppend: %s' % served)
                    pc.stop_proxy(victim, sig=signal.SIGKILL)
                    killed = victim
                    events.append('%.2fs killed proxy %d (had served %d RPCs) at %d acked'
                                  % (time.monotonic() - t0, victim.node_id, served[victim.node_id], len(acked)))
                while produced < MESSAGES and produced - len(acked) - len(failed) < 2000:
                    try:
                        p.produce(TOPIC, value=b'%d' % produced, partition=produced % PARTITIONS, on_delivery=dr)
                    except BufferError:
                        break
                    produced += 1
                p.poll(0.01)
            p.flush(10)
            secs = time.monotonic() - t0
            if failed:
                raise HarnessError('%d deliveries failed, first %s; events %s' % (len(failed), failed[0], events))
            if killed is None:
                raise HarnessError('the stream ended before the kill')
            survivor = [q for q in pc.proxies_in('b') if q is not killed][0]
            served = pc.metrics(survivor).sum('kzproxy_wal_in_rpcs_total', 0)
            if served == 0:
                raise HarnessError('the surviving zone-b proxy %d served no RPC' % survivor.node_id)
            rows = kz.consume_all(survivor.kafka, TOPIC, timeout=60)
            seen, last = {}, {}
            for part, off, _k, v in rows:
                i = int(v)
                seen.setdefault(i, off)
                if part in last and last[part] >= i and seen[i] == off:
                    raise HarnessError('partition %d: %d after %d' % (part, i, last[part]))
                last[part] = max(i, last.get(part, -1))
            lost = [i for i in acked if i not in seen]
            if lost:
                raise HarnessError('%d acknowledged messages lost, e.g. %s' % (len(lost), lost[:5]))
            dups = len(rows) - len(seen)
            backend = kz.backend_name()
            if backend == 'kafka' and dups:
                raise HarnessError('%d duplicates on real Kafka: the proxy appended a slice twice, or an idempotent '
                                   'retry was not deduplicated; events %s' % (dups, events))
            a_stats = [pc.metrics(q) for q in pc.proxies_in('a')]
            retried = sum(m.sum('kzproxy_wal_rpcs_retried_total', 0) for m in a_stats)
            rpc_failed = sum(m.sum('kzproxy_wal_rpcs_failed_total', 0) for m in a_stats)
            order_failed = sum(m.sum('kzproxy_wal_order_failures_total', 0) for m in a_stats)
            holds = sum(m.sum('kzproxy_wal_order_holds_total', 0) for m in a_stats)
            print('peer down on the WAL path (%s): %d messages acknowledged in %.2fs, all read back in order '
                  '(%d rows, %d duplicates%s); %s; zone-a proxies saw %d failed RPC attempts (none resent; %d '
                  'refused at once went to the other peer), failed %d later in-flight partitions to keep order '
                  'and held %d; the other zone-b proxy served %d RPCs; transient client errors %d'
                  % (backend, len(acked), secs, len(rows), dups,
                     '' if backend == 'kafka' or not dups else ': the client\'s retries of appended but unanswered batches, '
                     'which the mock does not deduplicate',
                     '; '.join(events), rpc_failed, retried, order_failed, holds, served, len(errors)))
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    kz.run_test(main, timeout=300)
