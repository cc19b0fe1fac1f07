#!/usr/bin/python3
"""Rolling restart with graceful drains (issue 16 item 1 acceptance).

Three zones, two proxies each, the WAL path on (local store). One idempotent
producer per zone (acks=all, max.in.flight 5, bootstrapped on both proxies of
its zone) writes keyed messages steadily, and a consumer group member in zone
a reads, for RUN_S seconds (60 by default, as issue 16 asks; the
environment's KZ_RR_SECONDS changes it), while every proxy in turn, at
intervals spread evenly over that time, gets SIGTERM, must exit 0 within
drain_timeout_ms, and is started again on the same ports. Then: no delivery
failed, no fatal or OutOfOrderSequence error, every acknowledged message is
in the topic, each key's messages are in order, and the consumer group kept
consuming, also after the last restart. Prints each drain's time and the
longest gap between two acknowledgements of one producer (the longest
client stall).

The topic is read back straight from the backend: through a proxy, on the
mock, it takes about 40 s. The mock answers a Fetch with one record batch
per partition, the WAL path stored these slow producers' messages as
batches of about one message, and a proxy answers a Fetch whose partitions
are led by several brokers only when every broker has answered: a broker
whose partitions are at their end holds its part for the client's
fetch.wait.max.ms (500 ms), so once some partitions are read to their end,
each Fetch brings one batch per remaining partition every 500 ms.
"""
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402
from kzharness import HarnessError  # noqa: E402

TOPIC = 'rr6'
PARTITIONS = 6
KEYS = 12
DRAIN_TIMEOUT_MS = 10000
RATE_HZ = 80          # messages per second per producer
SETTLE_ACKS = 150      # acknowledgements each producer needs between two restarts
RUN_S = float(os.environ.get('KZ_RR_SECONDS', '60'))  # traffic, restarts spread over it


class ZoneProducer(threading.Thread):
    def __init__(self, zone, bootstrap):
        super().__init__(name='producer-%s' % zone, daemon=True)
        from confluent_kafka import Producer
        self.zone = zone
        self.errors, self.fatal, self.failed = [], [], []
        self.acked = {}          # value -> (partition, offset)
        self.nacked = 0
        self.last_ack = None
        self.max_stall = 0.0
        self.stop = threading.Event()
        self.p = Producer({'bootstrap.servers': bootstrap, 'client.id': 'kz-test-rr-%s' % zone,
                           'enable.idempotence': True, 'acks': 'all', 'max.in.flight.requests.per.connection': 5,
                           'linger.ms': 5, 'message.timeout.ms': 60000, 'error_cb': self._error})

    def _error(self, e):
        self.errors.append(str(e))
        if e.fatal():
            self.fatal.append(str(e))

    def _dr(self, err, msg):
        now = time.monotonic()
        if err is not None:
            self.failed.append('%s: %s' % (msg.value(), err))
            return
        self.acked[msg.value().decode()] = (msg.partition(), msg.offset())
        self.nacked += 1
        if self.last_ack is not None:
            self.max_stall = max(self.max_stall, now - self.last_ack)
        self.last_ack = now

    def run(self):
        seq = [0] * KEYS
        n = 0
        t0 = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - t0) * RATE_HZ)
            while n < due:
                k = n % KEYS
                try:
                    self.p.produce(TOPIC, key=b'%s-%d' % (self.zone.encode(), k),
                                   value=b'%s-%d-%d' % (self.zone.encode(), k, seq[k]), on_delivery=self._dr)
                except BufferError:
                    break
                seq[k] += 1
                n += 1
            self.p.poll(0.005)
        self.p.flush(60)


class GroupConsumer(threading.Thread):
    def __init__(self, bootstrap):
        super().__init__(name='consumer', daemon=True)
        from confluent_kafka import Consumer
        self.count = 0
        self.errors = []
        self.stop = threading.Event()
        self.c = Consumer({'bootstrap.servers': bootstrap, 'group.id': 'kz-test-rr-group',
                           'client.id': 'kz-test-rr-consumer', 'auto.offset.reset': 'earliest',
                           'session.timeout.ms': 6000, 'error_cb': lambda e: self.errors.append(str(e))})
        self.c.subscribe([TOPIC])

    def run(self):
        while not self.stop.is_set():
            m = self.c.poll(0.1)
            if m is not None and m.error() is None:
                self.count += 1
        self.c.close()


def main():
    workdir = tempfile.mkdtemp(prefix='kz-rolling-')
    try:
        extra = {'peer_secret': walpath.SECRET, 'health_check_ms': 200, 'rpc_timeout_ms': 5000,
                 'drain_timeout_ms': DRAIN_TIMEOUT_MS,
                 'wal': {'store': walpath.store_config('local', workdir), 'flush_ms': 20}}
        with kz.TestBed(topics={TOPIC: PARTITIONS}) as tb, \
                kz.ProxyCluster(tb, per_zone=2, extra_config=extra, workdir=workdir) as pc:
            prods = [ZoneProducer(z, ','.join(q.kafka for q in pc.proxies_in(z))) for z in ('a', 'b', 'c')]
            cons = GroupConsumer(','.join(q.kafka for q in pc.proxies_in('a')))
            t0 = time.monotonic()
            for t in prods + [cons]:
                t.start()

            def settle(what):
                start = [p.nacked for p in prods]
                kz.wait_until(lambda: all(p.nacked - s >= SETTLE_ACKS for p, s in zip(prods, start))
                              or any(p.fatal or p.failed for p in prods), 30, what)

            settle('the first acknowledgements')
            drains = []
            # Restart i is due at t0 + (i + 1) * RUN_S / (n + 1); traffic runs
            # until t0 + RUN_S at least (the last restart and its settling
            # may take longer).
            step = RUN_S / (len(pc.proxies) + 1)

            def pace_until(at):
                # Traffic keeps running meanwhile; a producer's fatal error
                # or failed delivery ends the wait (reported below).
                while time.monotonic() < at and not any(p.fatal or p.failed for p in prods):
                    time.sleep(0.1)

            for i, q in enumerate(pc.proxies):
                pace_until(t0 + (i + 1) * step)
                t = time.monotonic()
                rc = pc.stop_proxy(q, sig=signal.SIGTERM, timeout=DRAIN_TIMEOUT_MS / 1000 + 10)
                took = time.monotonic() - t
                if rc != 0:
                    raise HarnessError('proxy %d exited with %s on SIGTERM; log ends:\n%s'
                                       % (q.node_id, rc, kz.log_tail(q)))
                if took * 1000 > DRAIN_TIMEOUT_MS + 1000:
                    raise HarnessError('proxy %d took %.1fs to drain (drain_timeout_ms %d)'
                                       % (q.node_id, took, DRAIN_TIMEOUT_MS))
                if 'drain finished' not in q.log_text() and 'drain timed out' not in q.log_text():
                    raise HarnessError('proxy %d logged no drain end' % q.node_id)
                drains.append('%d:%.2fs@%.0fs' % (q.node_id, took, t - t0))
                pc.restart_proxy(q)
                settle('acknowledgements after restarting proxy %d' % q.node_id)
            consumed_at_last_restart = cons.count
            pace_until(t0 + RUN_S)
            # The group still reads after the last restart (bounded wait).
            kz.wait_until(lambda: cons.count > consumed_at_last_restart, 30,
                          'the consumer group reading after the last restart')
            consumed_before_end = cons.count
            for p in prods:
                p.stop.set()
            for p in prods:
                p.join(90)
            secs = time.monotonic() - t0
            cons.stop.set()
            cons.join(30)
            for p in prods:
                if p.fatal:
                    raise HarnessError('producer %s: fatal error %s' % (p.zone, p.fatal[0]))
                if p.failed:
                    raise HarnessError('producer %s: %d deliveries failed, first %s' % (p.zone, len(p.failed),
                                                                                      p.failed[0]))
                oos = [e for e in p.errors if 'OUT_OF_ORDER' in e.upper()]
                if oos:
                    raise HarnessError('producer %s: %s' % (p.zone, oos[0]))
            rows = kz.consume_all(tb.bootstrap, TOPIC, timeout=60)  # straight from the backend
            seen, last, order_bad = set(), {}, []
            for part, off, key, v in rows:
                v = v.decode()
                if v in seen:
                    continue  # a duplicate (the mock does not deduplicate retries)
                seen.add(v)
                zone, k, s = v.split('-')
                kk = (zone, k)
                if kk in last and int(s) <= last[kk]:
                    order_bad.append('%s after %d' % (v, last[kk]))
                last[kk] = int(s)
            acked = {v for p in prods for v in p.acked}
            lost = acked - seen
            if lost:
                raise HarnessError('%d acknowledged messages lost, e.g. %s' % (len(lost), sorted(lost)[:5]))
            if order_bad:
                raise HarnessError('%d messages out of key order, e.g. %s' % (len(order_bad), order_bad[:3]))
            if consumed_before_end == 0:
                raise HarnessError('the consumer group read nothing; errors %s' % cons.errors[-3:])
            stall = max(p.max_stall for p in prods)
            print('rolling restart: %d proxies drained and restarted over %.1fs of traffic (each drain, '
                  'node:duration@start: %s; drain_timeout_ms %d); %d messages acknowledged, all read back, per-key '
                  'order kept (%d rows, %d duplicates); the consumer group read %d (%d after the last restart); '
                  'longest client stall %.2fs (per zone: %s); transient client errors %d'
                  % (len(pc.proxies), secs, ' '.join(drains), DRAIN_TIMEOUT_MS, len(acked), len(rows),
                     len(rows) - len(seen), cons.count, consumed_before_end - consumed_at_last_restart, stall,
                     ' '.join('%s %.2fs' % (p.zone, p.max_stall) for p in prods),
                     sum(len(p.errors) for p in prods)))
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    kz.run_test(main, timeout=RUN_S + 150)
