#!/usr/bin/env python3
"""confluent-kafka-python from PyPI (the current librdkafka its wheel bundles)
round trip for tests/integration/test_clients.py; run by the venv that
scripts/deps.sh makes in tests/clients/pyvenv (tests/clients/requirements.txt).

    pyvenv/bin/python confluent_roundtrip.py --produce H:P --consume H:P --topic T
        [--messages 10000] [--keys 100] [--group G] [--timeout-ms 60000]

Produces --messages keyed messages through the --produce address with a
Producer (message i: key "k<i % keys>", value "k<i % keys>.<i // keys>",
acks=all, librdkafka's default partitioner), then reads the topic's end
offsets through the --consume address (get_watermark_offsets) and consumes
everything back with a Consumer in a group (group.id, subscribe(),
auto.offset.reset=earliest, no commits) through the --consume address until
every partition reaches its end offset. Prints one JSON line on stdout:
  {"produce_ms":..,"consume_ms":..,"ends":{"0":n,..},"records":[[p,off,key,value],..],
   "acked":[[p,off],..]}
where acked[i] is the partition and offset of message i's delivery report.
librdkafka's log goes to stderr. Exits 77 with a message when confluent_kafka
does not import, 1 with a message on any error or when --timeout-ms passes.
"""
import argparse
import json
import os
import sys
import time


def fail(msg):
    sys.stderr.write('confluent_roundtrip: %s\n' % msg)
    sys.exit(1)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--produce', required=True)
    ap.add_argument('--consume', required=True)
    ap.add_argument('--topic', required=True)
    ap.add_argument('--messages', type=int, default=10000)
    ap.add_argument('--keys', type=int, default=100)
    ap.add_argument('--group', default='kzcfk-%d-%d' % (os.getpid(), int(time.time() * 1000)))
    ap.add_argument('--timeout-ms', type=int, default=60000)
    try:
        return ap.parse_args()
    except SystemExit as e:  # a usage error is an error like any other: exit 1, not argparse's 2
        sys.exit(1 if e.code else 0)


def main():
    o = parse_args()
    try:
        import confluent_kafka
        from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
    except ImportError as e:
        sys.stderr.write('confluent_kafka does not import under %s (%s): run scripts/deps.sh '
                         '(tests/clients/pyvenv, pip install -r tests/clients/requirements.txt)\n'
                         % (sys.executable, e))
        sys.exit(77)
    version = confluent_kafka.version()  # a string in 2.x, (string, int) before
    sys.stderr.write('confluent-kafka %s, librdkafka %s\n' % (version[0] if isinstance(version, tuple) else version,
                                                              confluent_kafka.libversion()[0]))
    deadline = time.monotonic() + o.timeout_ms / 1000.0
    errors = []

    def error_cb(err):
        sys.stderr.write('confluent error_cb: %s\n' % err)
        if err.fatal():
            errors.append(err)

    # ---- produce
    t0 = time.monotonic()
    producer = Producer({'bootstrap.servers': o.produce, 'client.id': 'kzcfk-producer', 'acks': 'all',
                         'linger.ms': 5, 'socket.connection.setup.timeout.ms': 5000,
                         'message.timeout.ms': max(1000, o.timeout_ms), 'error_cb': error_cb})
    acked = [None] * o.messages
    failed = []

    def delivered(i):
        def cb(err, msg):
            if err is not None:
                failed.append('message %d: %s' % (i, err))
            else:
                acked[i] = [msg.partition(), msg.offset()]
        return cb

    for i in range(o.messages):
        k = 'k%d' % (i % o.keys)
        value = '%s.%d' % (k, i // o.keys)
        while True:
            try:
                producer.produce(o.topic, key=k.encode(), value=value.encode(), on_delivery=delivered(i))
                break
            except BufferError:
                producer.poll(0.1)
            if time.monotonic() > deadline:
                fail('produce: the local queue stayed full until the deadline (message %d)' % i)
        producer.poll(0)
    left = producer.flush(max(0.0, deadline - time.monotonic()))
    if errors:
        fail('produce: fatal error: %s' % errors[0])
    if left:
        fail('produce: %d messages not delivered before the deadline' % left)
    if failed:
        fail('produce: %d of %d failed, first: %s' % (len(failed), o.messages, failed[0]))
    produce_ms = int((time.monotonic() - t0) * 1000)

    # ---- end offsets and a group consumer through the consume-side address
    t1 = time.monotonic()
    consumer = Consumer({'bootstrap.servers': o.consume, 'client.id': 'kzcfk-consumer', 'group.id': o.group,
                         'auto.offset.reset': 'earliest', 'enable.auto.commit': False,
                         'session.timeout.ms': 10000, 'heartbeat.interval.ms': 1000,
                         'fetch.wait.max.ms': 250, 'socket.connection.setup.timeout.ms': 5000,
                         'error_cb': error_cb})
    records = []
    ends = {}
    try:
        md = consumer.list_topics(o.topic, timeout=max(1.0, deadline - time.monotonic()))
        tmd = md.topics.get(o.topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            fail('end offsets: no partitions for %s: %s' % (o.topic, tmd.error if tmd is not None else 'no topic'))
        for p in sorted(tmd.partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(o.topic, p),
                                                      timeout=max(1.0, deadline - time.monotonic()), cached=False)
            ends[p] = high
        pending = {p for p, end in ends.items() if end > 0}
        consumer.subscribe([o.topic])
        while pending:
            if errors:
                fail('consume: fatal error: %s' % errors[0])
            if time.monotonic() > deadline:
                fail('consume: partitions %s not at their end offsets before the deadline (%d records read)'
                     % (','.join(str(p) for p in sorted(pending)), len(records)))
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    if m.error().fatal():
                        raise KafkaException(m.error())
                    sys.stderr.write('confluent consumer: %s\n' % m.error())
                    continue
                p, off = m.partition(), m.offset()
                records.append([p, off, m.key().decode() if m.key() is not None else None,
                                m.value().decode() if m.value() is not None else None])
                if p in pending and off + 1 >= ends[p]:
                    pending.discard(p)
    except KafkaException as e:
        fail('consume: %s' % e)
    finally:
        consumer.close()
    consume_ms = int((time.monotonic() - t1) * 1000)
    sys.stdout.write(json.dumps({'produce_ms': produce_ms, 'consume_ms': consume_ms,
                                 'ends': {str(p): n for p, n in ends.items()},
                                 'records': records, 'acked': acked}) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    main()
