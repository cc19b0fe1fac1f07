#!/usr/bin/python3
"""Third-party clients round trip through kzproxy (issue 3 acceptance).

For each client: produce 10,000 keyed messages (100 keys, value "k<key>.<seq>")
to a 12-partition topic whose leaders sit in all three zones, through the
zone-a proxy, whose batches for leaders in zones b and c take the WAL path
(a local WAL store shared by the proxies); consume them all back through the
zone-b proxy; check that every
message arrives exactly once, that offsets increase per partition, that each
key stays in one partition with its sequence numbers in order, and that all
12 partitions were used. Where the client reports the (partition, offset) of
each acknowledged message, the consumed record must sit exactly there.

    test_clients.py                   every client
    test_clients.py kafka-python ...  only the named ones
Clients: confluent-kafka-python, kafka-python, kafkajs, franz-go,
platformatic-kafka, confluent-kafka-pypi. kcat has its own test
(test_kcat_roundtrip.py). Each client runs against its own test bed and
proxies, so one failure does not hide another. The automake tests are the
wrappers test_client_confluent.py, test_client_kafka_python.py,
test_client_kafkajs.py, test_client_go.py, test_client_platformatic.py and
test_client_confluent_pypi.py, one client each.

- confluent-kafka-python: Producer (linger 5 ms); Consumer with assign() of
  every partition from the beginning, no commits (it still has a group.id:
  the Python binding requires one).
- kafka-python: KafkaProducer (acks=all, version auto-detected through the
  proxy); KafkaConsumer with group_id=None and assign(): no group at all.
- KafkaJS (tests/clients/kafkajs_roundtrip.js, installed by scripts/deps.sh):
  producer (acks=all, DefaultPartitioner); the consumer is necessarily a
  consumer group (subscribe fromBeginning), so it needs FindCoordinator and
  the group requests through the proxy.
- franz-go (tests/clients/go, built into kzgo-roundtrip by scripts/deps.sh),
  @platformatic/kafka (tests/clients/platformatic_roundtrip.js, npm) and
  confluent-kafka from PyPI with the librdkafka its wheel bundles
  (tests/clients/confluent_roundtrip.py in the venv tests/clients/pyvenv):
  programs with KafkaJS's command line and JSON result (run_external), each
  a producer with acks=all and a consumer group reading from the start.
  franz-go and confluent-kafka report where each message was acknowledged.
  None of the three works against the librdkafka 2.0.2 mock (see MOCK_SKIP):
  on the mock backend they are skipped, on real Kafka they must pass.

Exit: 0 all selected passed, 1 any failed, 77 all selected skipped.
KZ_TEST_DIRECT=1 runs against the mock brokers directly (zone-a broker for
produce, zone-b broker for consume) to validate the test without a proxy.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402
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


def run_external(name, argv, prod, cons, produced):
    """Run a round-trip program that follows the external client contract:

        PROGRAM --produce H:P --consume H:P --topic T --messages N --keys K
                --group G --timeout-ms MS

    It produces message i with key "k<i % K>", value "k<i % K>.<i // K>"
    (acks=all) through --produce, reads the end offsets and consumes it all
    back with a consumer group through --consume, and prints one JSON line
    {"produce_ms", "consume_ms", "ends": {"0": n, ...},
     "records": [[p, off, key, value], ...]} and, where it knows where each
    message was acknowledged, "acked": [[p, off], ...] in production order.
    It exits 77 with the reason on stderr when it cannot run here (SkipTest),
    anything else but 0 on an error."""
    argv = list(argv) + ['--produce', prod, '--consume', cons,
                         '--topic', TOPIC, '--messages', str(MESSAGES), '--keys', str(KEYS),
                         '--group', 'kz-test-%s-%d-%d' % (name, os.getpid(), time.monotonic_ns()),
                         '--timeout-ms', str(CLIENT_TIMEOUT * 1000)]
    prog = os.path.basename(argv[1] if os.path.basename(argv[0]) in ('node', 'python', 'python3') else argv[0])
    try:
        cp = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=CLIENT_TIMEOUT + 15)
    except subprocess.TimeoutExpired as e:
        raise HarnessError('%s did not finish in %ds; stderr ends:\n%s'
                           % (prog, CLIENT_TIMEOUT + 15, (e.stderr or b'').decode('utf-8', 'replace')[-3000:]))
    err = cp.stderr.decode('utf-8', 'replace')
    if cp.returncode == 77:
        raise SkipTest(err.strip())
    if cp.returncode != 0:
        raise HarnessError('%s exited with %d; stderr ends:\n%s' % (prog, cp.returncode, err[-3000:]))
    lines = cp.stdout.decode('utf-8', 'replace').strip().splitlines()
    try:
        out = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise HarnessError('%s printed no JSON result; stderr ends:\n%s' % (prog, err[-3000:]))
    if err.strip():
        sys.stderr.write('%s log:\n%s\n' % (name, err[-3000:]))
    ends = {int(p): n for p, n in out['ends'].items()}
    if sum(ends.values()) != MESSAGES or set(ends) != set(range(PARTITIONS)):
        raise HarnessError('%s: end offsets through %s are %s (sum %d), expected %d partitions summing to %d'
                           % (name, cons, ends, sum(ends.values()), PARTITIONS, MESSAGES))
    acked = None
    if out.get('acked') is not None:
        if len(out['acked']) != len(produced):
            raise HarnessError('%s: %d acknowledged positions for %d messages produced'
                               % (name, len(out['acked']), len(produced)))
        acked = {v: tuple(pos) if pos is not None else None for (_, v), pos in zip(produced, out['acked'])}
    return out['produce_ms'] / 1000.0, out['consume_ms'] / 1000.0, [tuple(r) for r in out['records']], acked


def _node_package(package, script, prod, cons, produced, name):
    """A tests/clients/SCRIPT under node, with PACKAGE from tests/clients/node_modules."""
    node, why = kz.node_package(package)
    if node is None:
        raise SkipTest(why)
    return run_external(name, [node, os.path.join(kz.clients_dir(), script)], prod, cons, produced)


def run_kafkajs(prod, cons, produced):
    return _node_package('kafkajs', 'kafkajs_roundtrip.js', prod, cons, produced, 'kafkajs')


def run_platformatic(prod, cons, produced):
    return _node_package(os.path.join('@platformatic', 'kafka'), 'platformatic_roundtrip.js',
                         prod, cons, produced, 'platformatic')


def run_go(prod, cons, produced):
    """franz-go: tests/clients/go/kzgo-roundtrip, built by scripts/deps.sh."""
    src = os.path.join(kz.clients_dir(), 'go')
    binary = os.path.join(src, 'kzgo-roundtrip')
    build = 'scripts/deps.sh (cd tests/clients/go && go build -o kzgo-roundtrip .)'
    if not os.access(binary, os.X_OK):
        raise SkipTest('%s is not built: run %s' % (binary, build))
    built = os.path.getmtime(binary)
    stale = [f for f in ('main.go', 'go.mod', 'go.sum') if os.path.getmtime(os.path.join(src, f)) > built]
    if stale:
        raise HarnessError('%s is older than %s: rebuild it with %s' % (binary, ', '.join(stale), build))
    return run_external('go', [binary], prod, cons, produced)


def run_confluent_pypi(prod, cons, produced):
    """confluent-kafka from PyPI in the venv tests/clients/pyvenv, made by scripts/deps.sh."""
    clients = kz.clients_dir()
    python = os.path.join(clients, 'pyvenv', 'bin', 'python')
    if not os.access(python, os.X_OK):
        raise SkipTest('%s does not exist: run scripts/deps.sh (python3 -m venv tests/clients/pyvenv; '
                       'tests/clients/pyvenv/bin/pip install -r tests/clients/requirements.txt)' % python)
    return run_external('confluent-pypi', [python, os.path.join(clients, 'confluent_roundtrip.py')],
                        prod, cons, produced)


CLIENTS = {
    'confluent-kafka-python': run_confluent,
    'kafka-python': run_kafka_python,
    'kafkajs': run_kafkajs,
    'franz-go': run_go,
    'platformatic-kafka': run_platformatic,
    'confluent-kafka-pypi': run_confluent_pypi,
}
# Clients whose consumer is a consumer group: check_served wants the group
# requests to have gone through the zone-b proxy.
GROUP_CLIENTS = ('kafkajs', 'franz-go', 'platformatic-kafka', 'confluent-kafka-pypi')
ALIASES = {'confluent': 'confluent-kafka-python', 'confluent-kafka': 'confluent-kafka-python',
           'kafka_python': 'kafka-python', 'KafkaJS': 'kafkajs', 'kafka-js': 'kafkajs',
           'go': 'franz-go', 'franz': 'franz-go', 'kgo': 'franz-go',
           'platformatic': 'platformatic-kafka', '@platformatic/kafka': 'platformatic-kafka',
           'confluent-pypi': 'confluent-kafka-pypi'}


# ---------------------------------------------------------------- the mock backend

# librdkafka before 2.1.0 (Debian 12 has 2.0.2) encodes the mock's ListOffsets
# v4+ responses wrongly: LeaderEpoch goes out as an int64, not an int32 (4 stray
# bytes per partition; fixed by librdkafka commit a0871a1a8, KIP-320, in 2.1.0).
# kzproxy rightly rejects such a response ("broker N: malformed ListOffsets v5
# response: garbage after message at byte ...") and answers the client
# NETWORK_EXCEPTION. Clients that only speak v4+ to a proxy offering v5 cannot
# read offsets, hence cannot reset a consumer to the start, on that mock.
MOCK_FIXED_LIBRDKAFKA = 0x020100ff  # 2.1.0
_LISTOFFSETS = ('the librdkafka %s mock encodes ListOffsets v4+ responses wrongly (LeaderEpoch as an int64, '
                'not an int32; fixed in librdkafka 2.1.0), so kzproxy drops them as malformed ("malformed '
                'ListOffsets v5 response: garbage after message") and answers NETWORK_EXCEPTION')
MOCK_SKIP = {
    'franz-go': 'franz-go asks ListOffsets v5 (the highest kzproxy offers over this mock) for the end offsets '
                'and for the group consumer\'s reset to the start, and %s: "end offsets: NETWORK_EXCEPTION: The '
                'server disconnected before a response was received"; it passes on the kafka backend'
                % _LISTOFFSETS,
    'confluent-kafka-pypi': 'the PyPI wheel\'s librdkafka asks ListOffsets v5 for the watermarks and the '
                            'earliest reset, and %s: "Failed to get watermark offsets: Broker: Broker disconnected '
                            'before response received"; it passes on the kafka backend' % _LISTOFFSETS,
    'platformatic-kafka': '@platformatic/kafka implements only ListOffsets v5-v9, and %s ("Listing offsets '
                          'failed"); past that it implements only JoinGroup v6+, SyncGroup v4+, Heartbeat v4+ and '
                          'Fetch v12+, where this mock stops at JoinGroup v5, SyncGroup v3, Heartbeat v3 and Fetch '
                          'v11 ("No usable implementation found for API JoinGroup."); it passes on the kafka '
                          'backend' % _LISTOFFSETS,
}


def mock_librdkafka_version():
    """(hex, text) of the librdkafka that kz-testbed loads, or None if unknown."""
    try:
        cp = subprocess.run(['ldd', kz.testbed_binary()], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            timeout=10)
        lib = next(ln.split('=>')[1].split('(')[0].strip() for ln in cp.stdout.decode().splitlines()
                   if 'librdkafka' in ln and '=>' in ln)
        import ctypes
        rd = ctypes.CDLL(lib)
        rd.rd_kafka_version_str.restype = ctypes.c_char_p
        return rd.rd_kafka_version(), rd.rd_kafka_version_str().decode()
    except (OSError, StopIteration, IndexError, AttributeError, subprocess.SubprocessError):
        return None


def mock_skip(name):
    """SkipTest when client name cannot work against this mock backend (see MOCK_SKIP)."""
    if name not in MOCK_SKIP or kz.backend_name() != 'mock':
        return
    v = mock_librdkafka_version()
    if v is not None and v[0] >= MOCK_FIXED_LIBRDKAFKA:
        return
    raise SkipTest('on the mock backend: ' + MOCK_SKIP[name] % (v[1] if v else '(version unknown)'))


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
    wal = ma.sum('kzproxy_produce_path_partitions_total', 0, path='wal')
    payload = sum(m.sum('kzproxy_xzone_bytes_total', 0, category='payload', direction='out') for m in (ma, mb, mc))
    if wal == 0 or payload != 0:
        raise HarnessError('%s: the zone-a proxy sent %d partitions through the WAL path (want > 0) and the '
                           'proxies sent %d produce payload bytes across zones (want 0)' % (name, wal, payload))
    if name in GROUP_CLIENTS:
        low = {api: mb.sum('kzproxy_requests_total', default=0, api=api)
               for api in ('FindCoordinator', 'JoinGroup', 'SyncGroup', 'Heartbeat', 'LeaveGroup')}
        if not all(low[a] >= 1 for a in ('FindCoordinator', 'JoinGroup', 'SyncGroup')):
            raise HarnessError('%s: the zone-b proxy served too few group requests: %s' % (name, low))
    return wal


def run_one(name):
    """One client against a fresh test bed and proxies; prints its summary line."""
    fn = CLIENTS[name]
    mock_skip(name)
    produced = plan()
    start = time.monotonic()
    with kz.TestBed(zones=('a', 'b', 'c'), brokers=3, topics={TOPIC: PARTITIONS}) as tb:
        if os.environ.get('KZ_TEST_DIRECT') == '1':
            mode, prod, cons = 'direct', tb.brokers_in('a')[0].address, tb.brokers_in('b')[0].address
            wal_parts = 0
            tp, tc, records, acked = fn(prod, cons, produced)
        else:
            workdir = tempfile.mkdtemp(prefix='kz-clients-')
            wal = {'peer_secret': walpath.SECRET,
                   'wal': {'store': walpath.store_config('local', workdir), 'flush_ms': 50}}
            with kz.ProxyCluster(tb, zones=('a', 'b', 'c'), per_zone=1, extra_config=wal, workdir=workdir) as pc:
                mode, prod, cons = 'proxy', pc.proxy_in('a').kafka, pc.proxy_in('b').kafka
                try:
                    tp, tc, records, acked = fn(prod, cons, produced)
                    wal_parts = check_served(pc, name, produced)
                except (HarnessError, AssertionError):
                    for p in pc.proxies:
                        sys.stderr.write('--- kzproxy %d (zone %s) log %s ends:\n%s\n'
                                         % (p.node_id, p.zone, p.log, kz.log_tail(p, 15)))
                    raise
            if not os.environ.get('KZ_TEST_KEEP'):
                shutil.rmtree(workdir, ignore_errors=True)
        parts = check(produced, records, acked)
    print('%s (%s, %s): %d messages exactly once over %d partitions, produced via zone a in %.2fs (%d partitions '
          'through the WAL path, no payload across zones), consumed via zone b in %.2fs%s, total %.2fs'
          % (name, mode, tb.backend, len(records), len(parts), tp, wal_parts, tc,
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
