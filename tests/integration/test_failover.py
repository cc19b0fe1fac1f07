#!/usr/bin/python3
"""Backend failover under a live stream through kzproxy (issue 3 acceptance).

An idempotent confluent-kafka producer (acks=all) streams 24,000 messages
through the zone-a proxy to a 12-partition topic (message i goes to
partition i % 12, value "i"), while a consumer (assign(), every partition
from the beginning) reads through the zone-b proxy. In one loop, paced by the
producer's progress rather than by sleeps:
  1. after 6,000 messages: the leaders of partition 0 (broker 1, zone a) and
     partition 4 (broker 2, zone b) move to brokers 2 and 3
     (rd_kafka_mock_partition_set_leader);
  2. after 12,000: broker 3 (zone c, now leading partitions 2, 4, 5, 8, 11)
     goes down; it stays down for at least 1.5 s (the fault's length, not a
     synchronisation) and until the other partitions have had 2,000 more
     messages acknowledged and consumed, showing that both clients carry on;
  3. broker 3 comes back up; the rest is produced and flushed.
Then: every message is acknowledged (no delivery failure, no fatal error);
each partition's acknowledged offsets are 0..n-1 in production order (no
duplicate, gap or reordering); the consumer reads every acknowledged message
exactly once at its acknowledged offset, in order per partition.

KZ_TEST_DIRECT=1 runs against the mock brokers directly.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError, SkipTest  # noqa: E402

TOPIC = 'fo12'
PARTITIONS = 12
MESSAGES = 24000
MOVE_AT = 6000
DOWN_AT = 12000
DOWN_BROKER = 3
MOVES = ((0, 2), (4, 3))          # (partition, new leader)
DOWN_MIN_SECONDS = 1.5
DOWN_PROGRESS = 2000              # acks and reads on healthy partitions while the broker is down
CHUNK = 50                        # messages produced per loop turn
MAX_OUTSTANDING = 6000
TIMEOUT = 50


def run(tb, prod, cons, mode):
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
    perrors, cerrors = [], []
    p = Producer({'bootstrap.servers': prod, 'client.id': 'kz-test-failover-producer',
                  'enable.idempotence': True, 'acks': 'all', 'max.in.flight.requests.per.connection': 5,
                  'linger.ms': 5, 'message.timeout.ms': 40000, 'retry.backoff.ms': 100,
                  'error_cb': lambda e: perrors.append(e)})
    c = Consumer({'bootstrap.servers': cons, 'group.id': 'kz-test-failover-%d' % os.getpid(),
                  'client.id': 'kz-test-failover-consumer', 'enable.auto.commit': False,
                  'fetch.wait.max.ms': 100,
                  'error_cb': lambda e: cerrors.append(e)})
    acked, failed = {}, []          # value -> (partition, offset)
    consumed = []                   # (partition, offset, value) in consumed order
    leader = {part: (part % 3) + 1 for part in range(PARTITIONS)}
    for part, b in MOVES:
        leader[part] = b
    healthy = {part for part in range(PARTITIONS) if leader[part] != DOWN_BROKER}

    def dr(err, msg):
        if err is not None:
            failed.append('%s: %s' % (msg.value(), err))
        else:
            acked[int(msg.value())] = (msg.partition(), msg.offset())

    def healthy_acked():
        return sum(1 for part, _ in acked.values() if part in healthy)

    def healthy_consumed():
        return sum(1 for part, _, _ in consumed if part in healthy)

    c.assign([TopicPartition(TOPIC, part, OFFSET_BEGINNING) for part in range(PARTITIONS)])
    produced, stage, events = 0, 0, []
    t0 = time.monotonic()
    deadline = t0 + TIMEOUT
    try:
        while True:
            now = time.monotonic()
            if now > deadline:
                # Which partitions lag, and where each consumer stands.
                lag = {}
                for part, _ in acked.values():
                    lag[part] = lag.get(part, 0) + 1
                for part, _, _ in consumed:
                    lag[part] = lag.get(part, 0) - 1
                raise HarnessError('stage %d after %ds: produced %d, acknowledged %d, failed %d, consumed %d; '
                                   'acknowledged minus consumed per partition %s; '
                                   'events %s; producer errors %s; consumer errors %s'
                                   % (stage, TIMEOUT, produced, len(acked), len(failed), len(consumed),
                                      {p: n for p, n in sorted(lag.items()) if n}, events,
                                      perrors[-3:], cerrors[-3:]))
            if stage == 0 and produced >= MOVE_AT:
                for part, b in MOVES:
                    tb.set_leader(TOPIC, part, b)
                events.append('%.2fs leaders of %s moved to %s at %d produced, %d acked'
                              % (now - t0, [m[0] for m in MOVES], [m[1] for m in MOVES], produced, len(acked)))
                stage = 1
            elif stage == 1 and produced >= DOWN_AT:
                tb.broker_down(DOWN_BROKER)
                down_at, down_acked, down_consumed = now, healthy_acked(), healthy_consumed()
                events.append('%.2fs broker %d down at %d produced, %d acked' % (now - t0, DOWN_BROKER, produced, len(acked)))
                stage = 2
            elif stage == 2 and now - down_at >= DOWN_MIN_SECONDS and \
                    healthy_acked() - down_acked >= DOWN_PROGRESS and healthy_consumed() - down_consumed >= DOWN_PROGRESS:
                tb.broker_up(DOWN_BROKER)
                events.append('%.2fs broker %d up after %.2fs, meanwhile %d acked and %d consumed on the other '
                              'partitions' % (now - t0, DOWN_BROKER, now - down_at, healthy_acked() - down_acked,
                                              healthy_consumed() - down_consumed))
                up_at = now
                stage = 3
            if produced < MESSAGES and produced - len(acked) - len(failed) < MAX_OUTSTANDING:
                for i in range(produced, min(MESSAGES, produced + CHUNK)):
                    try:
                        p.produce(TOPIC, value=b'%d' % i, partition=i % PARTITIONS, on_delivery=dr)
                    except BufferError:
                        break
                    except KafkaException as e:
                        p.poll(0)  # serve error_cb, so the producer's own errors are in the message
                        raise HarnessError('producer refused message %d: %s; producer errors: %s'
                                           % (i, e.args[0] if e.args else e, perrors[-3:]))
                    produced = i + 1
            p.poll(0)
            for msg in c.consume(num_messages=2000, timeout=0.01):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise HarnessError('consumer: %s' % msg.error())
                consumed.append((msg.partition(), msg.offset(), int(msg.value())))
            fatal = [e for e in perrors if e.fatal()]
            if fatal:
                raise HarnessError('producer fatal error: %s' % fatal[0])
            if failed:
                raise HarnessError('%d deliveries failed, first: %s (events: %s)' % (len(failed), failed[0], events))
            if stage == 3 and len(acked) == MESSAGES and len(consumed) >= MESSAGES:
                break
        t_end = time.monotonic()
        left = p.flush(5)
        if left:
            raise HarnessError('%d messages still queued after every one was acknowledged' % left)
    finally:
        c.close()
    check(acked, consumed)
    print('failover (%s): %d messages acknowledged and consumed exactly once, in order per partition, at their '
          'acknowledged offsets; %s; stalled partitions drained %.2fs after broker up; total %.2fs; transient '
          'client errors: producer %d, consumer %d'
          % (mode, MESSAGES, '; '.join(events), t_end - up_at, t_end - t0, len(perrors), len(cerrors)))


def check(acked, consumed):
    if len(acked) != MESSAGES:
        raise HarnessError('%d of %d messages acknowledged' % (len(acked), MESSAGES))
    by_part = {}
    for i in range(MESSAGES):
        part, off = acked[i]
        if part != i % PARTITIONS:
            raise HarnessError('message %d acknowledged in partition %d' % (i, part))
        by_part.setdefault(part, []).append(off)
    for part, offs in sorted(by_part.items()):
        if offs != list(range(len(offs))):
            bad = next(n for n, o in enumerate(offs) if o != n)
            raise HarnessError('partition %d: acknowledged offsets are not 0..%d in production order: its message '
                               '#%d (value %d) is at offset %d' % (part, len(offs) - 1, bad,
                                                                   bad * PARTITIONS + part, offs[bad]))
    seen, last = set(), {}
    for part, off, v in consumed:
        if v in seen:
            raise HarnessError('message %d consumed twice (again at partition %d offset %d)' % (v, part, off))
        seen.add(v)
        if acked.get(v) != (part, off):
            raise HarnessError('message %d consumed at partition %d offset %d, acknowledged at %s'
                               % (v, part, off, acked.get(v)))
        if last.get(part, -1) >= v:
            raise HarnessError('partition %d: message %d consumed after %d' % (part, v, last[part]))
        last[part] = v
    missing = sorted(set(acked) - seen)
    if missing:
        raise HarnessError('%d acknowledged messages never consumed, first %s' % (len(missing), missing[:10]))


def main():
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as e:
        raise SkipTest('confluent_kafka does not import (%s)' % e)
    with kz.TestBed(zones=('a', 'b', 'c'), brokers=3, topics={TOPIC: PARTITIONS}) as tb:
        if tb.broker(DOWN_BROKER).rack != 'c':
            raise HarnessError('test bed layout changed: broker %d is in zone %s' % (DOWN_BROKER, tb.broker(DOWN_BROKER).rack))
        if os.environ.get('KZ_TEST_DIRECT') == '1':
            run(tb, tb.brokers_in('a')[0].address, tb.brokers_in('b')[0].address, 'direct')
        else:
            with kz.ProxyCluster(tb, zones=('a', 'b', 'c'), per_zone=1) as pc:
                try:
                    run(tb, pc.proxy_in('a').kafka, pc.proxy_in('b').kafka, 'proxy')
                except (HarnessError, AssertionError):
                    for p in pc.proxies:
                        sys.stderr.write('--- kzproxy %d (zone %s) log %s ends:\n%s\n'
                                         % (p.node_id, p.zone, p.log, kz.log_tail(p, 20)))
                    raise


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
