#!/usr/bin/python3
"""Third-party clients round trip through kzproxy (issue 3 acceptance).

For each client: produce 10,000 keyed messages (100 keys, value "k<key>.<seq>")
to a 12-partition topic whose leaders sit in all three zones, through the
zone-a proxy; consume them all back through the zone-b proxy; check that every
message arrives exactly once, that offsets increase per partition, that each
key stays in one partition with its sequence numbers in order, and that all
12 partitions were used. Where the client reports the (partition, offset) of
each acknowledged message, the consumed record must sit exactly there.

    test_clients.py                   every client
    test_clients.py kafka-python ...  only the named ones
Clients: confluent-kafka-python, kafka-python, kafkajs. kcat has its own test
(test_kcat_roundtrip.py). Each client runs against its own test bed and
proxies, so one failure does not hide another. The automake tests are the
wrappers test_client_confluent.py, test_client_kafka_python.py and
test_client_kafkajs.py, one client each.

- confluent-kafka-python: Producer (linger 5 ms); Consumer with assign() of
  every partition from the beginning, no commits (it still has a group.id:
  the Python binding requires one).
- kafka-python: KafkaProducer (acks=all, version auto-detected through the
  proxy); KafkaConsumer with group_id=None and assign(): no group at all.
- KafkaJS (tests/clients/kafkajs_roundtrip.js, installed by scripts/deps.sh):
  producer (acks=all, DefaultPartitioner); the consumer is necessarily a
  consumer group (subscribe fromBeginning), so it needs FindCoordinator and
  the group requests through the proxy.

Exit: 0 all selected passed, 1 any failed, 77 all selected skipped.
KZ_TEST_DIRECT=1 runs against the mock brokers directly (zone-a broker for
produce, zone-b broker for consume) to validate the test without a proxy.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError, SkipTest  # noqa: E402

TOPIC = 't12'
PARTITIONS = 12
KEYS = 100
MESSAGES = 10000
CLIENT_TIMEOUT = 45  # seconds for one client's produce + consume


def plan():
    """[(key, value)] in production order: key k(i % KEYS), value k<key>.<i // KEYS>."""
    return [('k%d' % (i % KEYS), 'k%d.%d' % (i % KEYS, i // KEYS)) for i in range(MESSAGES)]


def _s(x):
    return x.decode('utf-8', 'replace') if isinstance(x, (bytes, bytearray)) else x


def check(produced, records, acked=None):
    """Check consumed records [(partition, offset, key, value)] (consumed order)
    against produced [(key, value)]; acked: {value: (partition, offset)} or None.
    Returns the set of partitions seen; HarnessError on the first problem."""
    want = {v: k for k, v in produced}
    if len(records) != len(produced):
        extra = ''
        if len(records) < len(produced):
            got = {_s(r[3]) for r in records}
            missing = [v for _, v in produced if v not in got]
            extra = ' (%d distinct missing, first: %s)' % (len(missing), missing[:5])
        raise HarnessError('consumed %d messages, expected %d%s' % (len(records), len(produced), extra))
    seen = set()
    key_partition = {}
    last_seq = {}      # key -> last sequence number
    last_offset = {}   # partition -> last offset
    for n, (part, off, key, value) in enumerate(records, 1):
        key, value = _s(key), _s(value)
        if value not in want:
            raise HarnessError('record %d: value %r (partition %d offset %d) was never produced'
                               % (n, value, part, off))
        if want[value] != key:
            raise HarnessError('record %d: value %r came with key %r, produced with %r'
                               % (n, value, key, want[value]))
        if value in seen:
            raise HarnessError('record %d: %r consumed twice (again at partition %d offset %d)'
                               % (n, value, part, off))
        seen.add(value)
        if acked is not None and acked.get(value) != (part, off):
            raise HarnessError('record %d: %r consumed at partition %d offset %d, acknowledged at %s'
                               % (n, value, part, off, acked.get(value)))
        if key_partition.setdefault(key, part) != part:
            raise HarnessError('record %d: key %s in partitions %d and %d' % (n, key, key_partition[key], part))
        seq = int(value.split('.')[1])
        if last_seq.get(key, -1) >= seq:
            raise HarnessError('record %d: key %s sequence %d after %d (partition %d)'
                               % (n, key, seq, last_seq[key], part))
        last_seq[key] = seq
        if last_offset.get(part, -1) >= off:
            raise HarnessError('record %d: partition %d offset %d after %d' % (n, part, off, last_offset[part]))
        last_offset[part] = off
    parts = set(last_offset)
    if parts != set(range(PARTITIONS)):
        raise HarnessError('messages landed in partitions %s, expected all of 0..%d'
                           % (sorted(parts), PARTITIONS - 1))
    return parts


# ---------------------------------------------------------------- clients

def run_confluent(prod, cons, produced):
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as e:
        raise SkipTest('confluent_kafka does not import (%s): apt-get install python3-confluent-kafka' % e)
    t0 = time.monotonic()
    positions = kz.produce(prod, TOPIC, [(k.encode(), v.encode()) for k, v in produced],
                           config={'acks': 'all', 'client.id': 'kz-test-confluent-producer'},
                           timeout=CLIENT_TIMEOUT)
    t1 = time.monotonic()
    records = kz.consume_all(cons, TOPIC, config={'client.id': 'kz-test-confluent-consumer'},
                             timeout=CLIENT_TIMEOUT)
    t2 = time.monotonic()
    acked = {v: pos for (_, v), pos in zip(produced, positions)}
    return t1 - t0, t2 - t1, records, acked


def run_kafka_python(prod, cons, produced):
    try:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    except ImportError as e:
        raise SkipTest('kafka-python does not import (%s): apt-get install python3-kafka' % e)
    from kafka.errors import KafkaError
    t0 = time.monotonic()
    deadline = t0 + CLIENT_TIMEOUT
    producer = KafkaProducer(bootstrap_servers=[prod], client_id='kz-test-kafka-python-producer',
                             acks='all', linger_ms=5, request_timeout_ms=15000,
                             api_version_auto_timeout_ms=10000)
    try:
        futures = [producer.send(TOPIC, key=k.encode(), value=v.encode()) for k, v in produced]
        producer.flush(timeout=max(1.0, deadline - time.monotonic()))
        acked, errors = {}, []
        for (_, v), f in zip(produced, futures):
            if not f.is_done:
                errors.append('%s: not delivered by the deadline' % v)
                continue
            try:
                md = f.get(timeout=0)
            except KafkaError as e:
                errors.append('%s: %r' % (v, e))
                continue
            acked[v] = (md.partition, md.offset)
        if errors:
            raise HarnessError('kafka-python produce: %d of %d failed, first: %s'
                               % (len(errors), len(produced), errors[0]))
    finally:
        producer.close(timeout=5)
    t1 = time.monotonic()
    deadline = t1 + CLIENT_TIMEOUT
    consumer = KafkaConsumer(bootstrap_servers=[cons], client_id='kz-test-kafka-python-consumer',
                             group_id=None, enable_auto_commit=False, auto_offset_reset='earliest',
                             request_timeout_ms=30000, api_version_auto_timeout_ms=10000)
    records = []
    try:
        parts = consumer.partitions_for_topic(TOPIC)
        if not parts:
            raise HarnessError('kafka-python: no partitions for %s through %s' % (TOPIC, cons))
        tps = [TopicPartition(TOPIC, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        while True:
            pending = [tp for tp in tps if consumer.position(tp) < ends[tp]]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise HarnessError('kafka-python consume: partitions %s not at their end offsets after %.0fs '
                                   '(%d records read)' % (sorted(tp.partition for tp in pending),
                                                          CLIENT_TIMEOUT, len(records)))
            for tp, msgs in consumer.poll(timeout_ms=500, max_records=5000).items():
                for m in msgs:
                    records.append((m.partition, m.offset, m.key, m.value))
    finally:
        consumer.close(autocommit=False)
    t2 = time.monotonic()
    return t1 - t0, t2 - t1, records, acked


def run_kafkajs(prod, cons, produced):
    node = shutil.which('node')
    if node is None:
        raise SkipTest('node is not installed (scripts/deps.sh installs it)')
    clients = os.path.join(kz.top_srcdir(), 'tests', 'clients')
    if not os.path.isdir(os.path.join(clients, 'node_modules', 'kafkajs')):
        raise SkipTest('kafkajs is not installed in %s/node_modules: run scripts/deps.sh '
                       '(npm ci --prefix tests/clients)' % clients)
    argv = [node, os.path.join(clients, 'kafkajs_roundtrip.js'), '--produce', prod, '--consume', cons,
            '--topic', TOPIC, '--messages', str(MESSAGES), '--keys', str(KEYS),
            '--group', 'kz-test-kafkajs-%d-%d' % (os.getpid(), time.monotonic_ns()),
            '--timeout-ms', str(CLIENT_TIMEOUT * 1000)]
    try:
        cp = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=CLIENT_TIMEOUT + 15)
    except subprocess.TimeoutExpired as e:
        raise HarnessError('kafkajs_roundtrip.js did not finish in %ds; stderr ends:\n%s'
                           % (CLIENT_TIMEOUT + 15, (e.stderr or b'').decode('utf-8', 'replace')[-3000:]))
    err = cp.stderr.decode('utf-8', 'replace')
    if cp.returncode == 77:
        raise SkipTest(err.strip())
    if cp.returncode != 0:
        raise HarnessError('kafkajs_roundtrip.js exited with %d; stderr ends:\n%s' % (cp.returncode, err[-3000:]))
    lines = cp.stdout.decode('utf-8', 'replace').strip().splitlines()
    try:
        out = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise HarnessError('kafkajs_roundtrip.js printed no JSON result; stderr ends:\n%s' % err[-3000:])
    if err.strip():
        sys.stderr.write('kafkajs log:\n%s\n' % err[-3000:])
    ends = {int(p): n for p, n in out['ends'].items()}
    if sum(ends.values()) != MESSAGES or set(ends) != set(range(PARTITIONS)):
        raise HarnessError('kafkajs: end offsets through %s are %s (sum %d), expected %d partitions summing to %d'
                           % (cons, ends, sum(ends.values()), PARTITIONS, MESSAGES))
    return out['produce_ms'] / 1000.0, out['consume_ms'] / 1000.0, [tuple(r) for r in out['records']], None


CLIENTS = {
    'confluent-kafka-python': run_confluent,
    'kafka-python': run_kafka_python,
    'kafkajs': run_kafkajs,
}
ALIASES = {'confluent': 'confluent-kafka-python', 'confluent-kafka': 'confluent-kafka-python',
           'kafka_python': 'kafka-python', 'KafkaJS': 'kafkajs', 'kafka-js': 'kafkajs'}


def check_served(pc, name, produced):
    """The records went through the proxies, not around them: the zone-a proxy saw
    at least the raw key+value bytes produced (no client compresses here), the
    zone-b proxy fetched at least as much, the zone-c proxy saw neither."""
    raw = sum(len(k) + len(v) for k, v in produced)
    ma, mb, mc = (kz.metrics(pc.proxy_in(z)) for z in ('a', 'b', 'c'))
    got = {'a produce': ma.sum('kzproxy_produce_record_bytes_total'),
           'b fetch': mb.sum('kzproxy_fetch_record_bytes_total'),
           'c produce+fetch': mc.sum('kzproxy_produce_record_bytes_total') + mc.sum('kzproxy_fetch_record_bytes_total')}
    if got['a produce'] < raw or got['b fetch'] < raw or got['c produce+fetch'] != 0:
        raise HarnessError('%s: record bytes through the proxies %s do not fit %d bytes of keys and values '
                           'produced via zone a and consumed via zone b' % (name, got, raw))
    if name == 'kafkajs':
        low = {api: mb.sum('kzproxy_requests_total', default=0, api=api)
               for api in ('FindCoordinator', 'JoinGroup', 'SyncGroup', 'Heartbeat', 'LeaveGroup')}
        if not all(low[a] >= 1 for a in ('FindCoordinator', 'JoinGroup', 'SyncGroup')):
            raise HarnessError('kafkajs: the zone-b proxy served too few group requests: %s' % low)


def run_one(name):
    """One client against a fresh test bed and proxies; prints its summary line."""
    fn = CLIENTS[name]
    produced = plan()
    start = time.monotonic()
    with kz.TestBed(zones=('a', 'b', 'c'), brokers=3, topics={TOPIC: PARTITIONS}) as tb:
        if os.environ.get('KZ_TEST_DIRECT') == '1':
            mode, prod, cons = 'direct', tb.brokers_in('a')[0].address, tb.brokers_in('b')[0].address
            tp, tc, records, acked = fn(prod, cons, produced)
        else:
            with kz.ProxyCluster(tb, zones=('a', 'b', 'c'), per_zone=1) as pc:
                mode, prod, cons = 'proxy', pc.proxy_in('a').kafka, pc.proxy_in('b').kafka
                try:
                    tp, tc, records, acked = fn(prod, cons, produced)
                    check_served(pc, name, produced)
                except (HarnessError, AssertionError):
                    for p in pc.proxies:
                        sys.stderr.write('--- kzproxy %d (zone %s) log %s ends:\n%s\n'
                                         % (p.node_id, p.zone, p.log, kz.log_tail(p, 15)))
                    raise
        parts = check(produced, records, acked)
    print('%s (%s): %d messages exactly once over %d partitions, produced via zone a in %.2fs, '
          'consumed via zone b in %.2fs%s, total %.2fs'
          % (name, mode, len(records), len(parts), tp, tc,
             ', each at its acknowledged offset' if acked is not None else '', time.monotonic() - start))
    sys.stdout.flush()


def run_main(names):
    def main():
        selected = []
        for n in names or list(CLIENTS):
            n = ALIASES.get(n, n)
            if n not in CLIENTS:
                raise HarnessError('unknown client %r; choose from %s' % (n, ', '.join(CLIENTS)))
            selected.append(n)
        failed, skipped = [], []
        for n in selected:
            try:
                run_one(n)
            except SkipTest as e:
                print('%s: SKIP: %s' % (n, e))
                skipped.append(n)
            except (HarnessError, AssertionError) as e:
                print('%s: FAIL: %s' % (n, e))
                failed.append(n)
            except Exception as e:  # a client library's own exception: still only this client fails
                traceback.print_exc()
                print('%s: FAIL: %s: %s' % (n, type(e).__name__, e))
                failed.append(n)
            sys.stdout.flush()
        if failed:
            raise HarnessError('failed: %s' % ', '.join(failed))
        if len(skipped) == len(selected):
            raise SkipTest('every selected client was skipped')
    kz.run_test(main, timeout=60 + 90 * max(1, len(names) if names else len(CLIENTS)))


if __name__ == '__main__':
    run_main(sys.argv[1:])
