#!/usr/bin/python3
"""Clients over SASL_SSL and over mTLS alone, through the WAL path (mock backend).

Two zones, broker 1 in zone a leading partitions 0 and 2 of each 4-partition
topic, broker 2 in zone b leading 1 and 3; one kzproxy per zone sharing a
local WAL store (peer_secret, peer_tls with the test CA), so a client's
batches for partitions 1 and 3 through the zone-a proxy take the WAL path.
Every round trip produces through the zone-a proxy and consumes back through
the zone-b proxy, each client to its own topic; the consumed records must be
exactly the produced ones, each partition in production order, all four
partitions used, and on the zone-a proxy kzproxy_produce_path_partitions_total
{path="wal"} and kzproxy_wal_rpcs_sent_total must have risen (cross_zone
not) during the round trip.

1. client_tls (the test CA's 127.0.0.1/localhost certificate, no client
   certificate) and client_sasl (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512,
   credentials from `kzproxy --scram-credential`), clients on SASL_SSL:
   - confluent-kafka from PyPI (tests/clients/pyvenv, a librdkafka >= 2.6.1)
     with SCRAM-SHA-512;
   - kafka-python with SCRAM-SHA-512;
   - KafkaJS (tests/clients/kafkajs_roundtrip.js, KZJS_* variables) with
     SCRAM-SHA-512;
   - kcat with PLAIN (Debian's kcat is librdkafka 2.0.2, whose SCRAM
     client-final nonce kzproxy refuses: see test_client_sasl.py);
   - a wrong password over SASL_SSL: KafkaJS and PyPI confluent-kafka
     (SCRAM-SHA-512) and kcat (PLAIN) fail with Kafka's "Authentication
     failed ... invalid credentials" on the client. kafka-python 2.0.2 logs
     in with SaslHandshake v0 and raw SASL tokens, where a failure carries
     no message (Kafka closes the connection, so does kzproxy): it fails
     with NoBrokersAvailable after "Connection reset" while
     <authenticating>, and the proxy's log line names the client, the user
     and the reason. The proxy counts every failure
     (kzproxy_client_sasl_failures_total), logs no password, and a later
     client still produces and consumes.
2. client_tls with client_auth "required" and no SASL (mTLS alone; the
   proxies' peer connections send the client certificate too): kcat,
   kafka-python and KafkaJS with the client certificate produce and consume
   through the WAL path.
KafkaJS and PyPI confluent-kafka parts are skipped (with a line saying so)
when node/kafkajs or the venv are missing; kcat and kafka-python are
required.
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
from kzbed import make_test_pki  # noqa: E402
from kzharness import HarnessError, SkipTest  # noqa: E402
from walpath import SECRET, store_config  # noqa: E402

PARTITIONS = 4
N = 200          # messages per round trip
KEYS = 20        # keyed clients (kcat, KafkaJS): key k<i % KEYS>
USER, PASSWORD = 'alice', 'alice-s3cret pw'
TOPICS = ['ss_confluent', 'ss_kafka_python', 'ss_kafkajs', 'ss_kcat', 'ss_after',
          'mt_kcat', 'mt_kafka_python', 'mt_kafkajs']
CLIENTS_DIR = kz.clients_dir()
VENV_PY = os.path.join(CLIENTS_DIR, 'pyvenv', 'bin', 'python')
KAFKAJS_SCRIPT = os.path.join(CLIENTS_DIR, 'kafkajs_roundtrip.js')
FAILURE_DELAY_MS = 200


# ---------------------------------------------------------------- setup

def wal_extra(work, name):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    return {'peer_secret': SECRET, 'health_check_ms': 200,
            'wal': {'store': store_config('local', d), 'flush_ms': 20}}


def peers_up(pc):
    for p in pc.proxies:
        kz.wait_until(lambda p=p: kz.metrics(p).sum('kzproxy_peer_up', 0) == 1, 15,
                      'proxy %d to see its peer up over TLS' % p.node_id)


def venv_python():
    if not os.access(VENV_PY, os.X_OK):
        return None, '%s does not exist: run scripts/deps.sh' % VENV_PY
    return VENV_PY, None


# ---------------------------------------------------------------- checks

def check_records(name, produced, records):
    """produced: [(key, value)] in production order (str); records:
    [(partition, offset, key, value)] as consumed. Every produced value exactly
    once with its key, each partition's records in production order with
    increasing offsets, all partitions used. Returns {partition: count}."""
    def s(x):
        return x.decode('utf-8', 'replace') if isinstance(x, (bytes, bytearray)) else x
    index = {v: i for i, (_, v) in enumerate(produced)}
    keys = dict((v, k) for k, v in produced)
    seen, last, per = set(), {}, {}
    for part, off, key, value in records:
        key, value = s(key), s(value)
        if value not in index:
            raise HarnessError('%s: consumed %r (partition %d offset %d), never produced' % (name, value, part, off))
        if keys[value] != key:
            raise HarnessError('%s: %r came with key %r, produced with %r' % (name, value, key, keys[value]))
        if value in seen:
            raise HarnessError('%s: %r consumed twice' % (name, value))
        seen.add(value)
        if part in last and (last[part][0] >= off or last[part][1] >= index[value]):
            raise HarnessError('%s: partition %d: %r at offset %d after %r at offset %d: not in production order'
                               % (name, part, value, off, produced[last[part][1]][1], last[part][0]))
        last[part] = (off, index[value])
        per[part] = per.get(part, 0) + 1
    if len(seen) != len(produced):
        missing = [v for _, v in produced if v not in seen]
        raise HarnessError('%s: consumed %d of %d messages; missing e.g. %s' % (name, len(seen), len(produced),
                                                                               missing[:5]))
    if set(per) != set(range(PARTITIONS)):
        raise HarnessError('%s: messages in partitions %s, want all of 0..%d' % (name, sorted(per), PARTITIONS - 1))
    return per


class WalWatch:
    """The zone-a proxy's produce-path counters around one round trip."""

    def __init__(self, p):
        self.p = p
        self.before = self.read()

    def read(self):
        m = kz.metrics(self.p)
        return {'wal': m.sum('kzproxy_produce_path_partitions_total', 0, path='wal'),
                'direct': m.sum('kzproxy_produce_path_partitions_total', 0, path='direct'),
                'cross': m.sum('kzproxy_produce_path_partitions_total', 0, path='cross_zone'),
                'rpcs': m.sum('kzproxy_wal_rpcs_sent_total', 0),
                'puts': m.sum('kzproxy_objwal_requests_total', 0, op='put')}

    def check(self, name):
        after = self.read()
        d = {k: after[k] - self.before[k] for k in after}
        if d['wal'] == 0 or d['rpcs'] == 0 or d['cross'] != 0:
            raise HarnessError('%s: zone-a proxy partitions by path: wal +%d, direct +%d, cross-zone +%d; '
                               'KzWalAppend RPCs +%d (want wal > 0, RPCs > 0, cross-zone 0)'
                               % (name, d['wal'], d['direct'], d['cross'], d['rpcs']))
        return 'partitions by path wal +%d, direct +%d, cross-zone +%d; KzWalAppend RPCs +%d, WAL PUTs +%d' % (
            d['wal'], d['direct'], d['cross'], d['rpcs'], d['puts'])


def report(name, per, wal, secs):
    print('%s: %d messages produced via zone a, consumed via zone b exactly once, in order per partition %s; '
          '%s; %.2fs' % (name, sum(per.values()), dict(sorted(per.items())), wal, secs))
    sys.stdout.flush()


# ---------------------------------------------------------------- kafka-python

def kp_security(sec):
    """kafka-python keyword arguments for sec: {'ca', 'cert', 'key', 'mech', 'user', 'password'}."""
    kw = {'ssl_cafile': sec['ca']}
    if sec.get('cert'):
        kw.update(ssl_certfile=sec['cert'], ssl_keyfile=sec['key'])
    if sec.get('mech'):
        kw.update(security_protocol='SASL_SSL', sasl_mechanism=sec['mech'], sasl_plain_username=sec['user'],
                  sasl_plain_password=sec['password'])
    else:
        kw['security_protocol'] = 'SSL'
    return kw


def kafka_python_roundtrip(prod, cons, topic, sec, tag):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    produced = [('k%d' % (i % KEYS), '%s-%d' % (tag, i)) for i in range(N)]
    kw = kp_security(sec)
    p = KafkaProducer(bootstrap_servers=[prod], acks='all', linger_ms=5, request_timeout_ms=15000,
                      api_version_auto_timeout_ms=10000, **kw)
    try:
        futs = [p.send(topic, key=k.encode(), value=v.encode(), partition=i % PARTITIONS)
                for i, (k, v) in enumerate(produced)]
        p.flush(30)
        for f in futs:
            f.get(timeout=30)
    finally:
        p.close(timeout=5)
    c = KafkaConsumer(bootstrap_servers=[cons], group_id=None, enable_auto_commit=False,
                      auto_offset_reset='earliest', request_timeout_ms=30000, api_version_auto_timeout_ms=10000,
                      **kw)
    records = []
    try:
        tps = [TopicPartition(topic, i) for i in range(PARTITIONS)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps)
        deadline = time.monotonic() + 30
        while any(c.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise HarnessError('kafka-python: %d of %d records read in 30s' % (len(records), N))
            for _tp, msgs in c.poll(timeout_ms=500).items():
                records += [(m.partition, m.offset, m.key, m.value) for m in msgs]
    finally:
        c.close(autocommit=False)
    return produced, records


def kafka_python_wrong_password(addr, sec, proxy):
    """kafka-python 2.0.2 with a wrong password: it logs in with SaslHandshake
    v0 and raw SASL tokens, where a failure has no error message (Kafka, and
    kzproxy, close the connection): its KafkaProducer fails with
    NoBrokersAvailable, its log says the connection closed while
    <authenticating>, and the proxy logs why. Returns (exception, client log,
    proxy log line, seconds)."""
    import logging
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    class Grab(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.lines = []

        def emit(self, record):
            why = ': %s' % record.exc_info[1] if record.exc_info else ''
            self.lines.append(record.getMessage() + why)

    grab = Grab()
    log = logging.getLogger('kafka')
    log.addHandler(grab)
    old_propagate, log.propagate = log.propagate, False
    seen = proxy.log_text().count('(SaslHandshake v0): wrong password')
    try:
        t0 = time.monotonic()
        try:
            KafkaProducer(bootstrap_servers=[addr], api_version_auto_timeout_ms=5000,
                          **kp_security(dict(sec, password='not-' + sec['password'])))
        except KafkaError as e:
            exc = '%s: %s' % (type(e).__name__, e)
        else:
            raise HarnessError('kafka-python logged in with a wrong password')
        secs = time.monotonic() - t0
    finally:
        log.removeHandler(grab)
        log.propagate = old_propagate
    auth = [ln for ln in grab.lines if '<authenticating>' in ln]
    if not auth:
        raise HarnessError('kafka-python wrong password: %s, and no connection error while <authenticating> in its '
                           'log %s' % (exc, grab.lines[:5]))
    kz.wait_until(lambda: proxy.log_text().count('(SaslHandshake v0): wrong password') > seen, 10,
                  'the proxy to log kafka-python\'s failed login')
    line = [ln for ln in proxy.log_text().splitlines() if '(SaslHandshake v0): wrong password' in ln][seen]
    return exc, auth[0].splitlines()[0], line, secs


# ---------------------------------------------------------------- KafkaJS

def kafkajs_env(sec):
    env = dict(os.environ, KZJS_SSL_CA=sec['ca'])
    if sec.get('cert'):
        env.update(KZJS_SSL_CERT=sec['cert'], KZJS_SSL_KEY=sec['key'])
    if sec.get('mech'):
        env.update(KZJS_SASL_MECHANISM=sec['mech'].lower(), KZJS_SASL_USERNAME=sec['user'],
                   KZJS_SASL_PASSWORD=sec['password'])
    return env


def kafkajs_run(node, prod, cons, topic, sec, messages, timeout_s=40):
    argv = [node, KAFKAJS_SCRIPT, '--produce', prod, '--consume', cons, '--topic', topic,
            '--messages', str(messages), '--keys', str(KEYS), '--chunk', '50',
            '--group', 'kz-sasl-ssl-%d-%d' % (os.getpid(), time.monotonic_ns()),
            '--timeout-ms', str(timeout_s * 1000)]
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=kafkajs_env(sec), timeout=timeout_s + 15)
    except subprocess.TimeoutExpired as e:
        raise HarnessError('kafkajs_roundtrip.js did not finish in %ds; stderr ends:\n%s'
                           % (timeout_s + 15, (e.stderr or b'').decode('utf-8', 'replace')[-3000:]))


def kafkajs_roundtrip(node, prod, cons, topic, sec):
    cp = kafkajs_run(node, prod, cons, topic, sec, N)
    err = cp.stderr.decode('utf-8', 'replace')
    if cp.returncode != 0:
        raise HarnessError('kafkajs_roundtrip.js exited with %d; stderr ends:\n%s' % (cp.returncode, err[-3000:]))
    out = json.loads(cp.stdout.decode().strip().splitlines()[-1])
    produced = [('k%d' % (i % KEYS), 'k%d.%d' % (i % KEYS, i // KEYS)) for i in range(N)]
    return produced, [tuple(r) for r in out['records']]


def kafkajs_wrong_password(node, addr, topic, sec):
    t0 = time.monotonic()
    cp = kafkajs_run(node, addr, addr, topic, dict(sec, password='not-' + sec['password']), 1, timeout_s=20)
    err = cp.stderr.decode('utf-8', 'replace')
    line = [ln for ln in err.splitlines() if 'KafkaJSSASLAuthenticationError' in ln]
    if cp.returncode == 0 or not line:
        raise HarnessError('KafkaJS wrong password: exit %d, stderr ends:\n%s' % (cp.returncode, err[-2000:]))
    return line[0].replace('kafkajs_roundtrip: ', '').strip(), time.monotonic() - t0


# ---------------------------------------------------------------- confluent-kafka from PyPI

VENV_SCRIPT = r'''
import json, sys, time
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
mode, prod, cons, topic, n, parts, tag = sys.argv[1:]
n, parts = int(n), int(parts)
sec = json.load(sys.stdin)
if mode == 'wrong':
    errs = []
    p = Producer(dict(sec, **{'bootstrap.servers': prod, 'error_cb': errs.append}))
    p.produce(topic, b'never')
    end = time.time() + 15
    while not any(e.code() == KafkaError._AUTHENTICATION for e in errs) and time.time() < end:
        p.poll(0.1)
    p.purge()
    auth = [e.str() for e in errs if e.code() == KafkaError._AUTHENTICATION]
    print(json.dumps({'auth': auth[:1], 'other': [e.str() for e in errs if e.code() != KafkaError._AUTHENTICATION]}))
    sys.exit(0)
errs = []
p = Producer(dict(sec, **{'bootstrap.servers': prod, 'linger.ms': 5, 'acks': 'all'}))
for i in range(n):
    p.produce(topic, key=b'k%d' % (i % 20), value=('%s-%d' % (tag, i)).encode(), partition=i % parts,
              on_delivery=lambda e, m: e and errs.append(str(e)))
left = p.flush(30)
if left or errs:
    sys.exit('produce: %d undelivered, errors %s' % (left, errs[:2]))
c = Consumer(dict(sec, **{'bootstrap.servers': cons, 'group.id': 'kz-sasl-ssl-' + tag, 'enable.auto.commit': False}))
c.assign([TopicPartition(topic, i, 0) for i in range(parts)])
records, end = [], time.time() + 30
while len(records) < n and time.time() < end:
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        sys.exit('consume: %s' % m.error())
    records.append([m.partition(), m.offset(), m.key().decode(), m.value().decode()])
c.close()
print(json.dumps({'records': records}))
'''


def venv_run(py, mode, prod, cons, topic, sec, tag):
    cp = subprocess.run([py, '-c', VENV_SCRIPT, mode, prod, cons, topic, str(N), str(PARTITIONS), tag],
                        input=json.dumps(sec).encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=75)
    if cp.returncode != 0:
        raise HarnessError('PyPI confluent-kafka (%s) exited with %d:\n%s'
                           % (mode, cp.returncode, cp.stderr.decode('utf-8', 'replace')[-2000:]))
    return json.loads(cp.stdout.decode().strip().splitlines()[-1])


def rdkafka_sasl_ssl(ca, mech, user, password):
    return {'security.protocol': 'SASL_SSL', 'ssl.ca.location': ca, 'sasl.mechanisms': mech,
            'sasl.username': user, 'sasl.password': password}


def venv_libversion(py):
    return subprocess.run([py, '-c', 'import confluent_kafka as c; print(c.libversion()[0])'],
                          stdout=subprocess.PIPE, timeout=30).stdout.decode().strip()


# ---------------------------------------------------------------- kcat

def kcat_roundtrip(prod, cons, topic, xopts, tag):
    produced = [('k%d' % (i % KEYS), '%s-%d' % (tag, i)) for i in range(N)]
    kz.kcat('-P', '-b', prod, '-t', topic, '-K', ':', *xopts, input=''.join('%s:%s\n' % kv for kv in produced),
            timeout=30)
    got = []

    def read():
        cp = kz.kcat('-C', '-b', cons, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%p %o %k %s\\n',
                     *xopts, timeout=30)
        got[:] = [tuple(int(x) if i < 2 else x for i, x in enumerate(ln.split(' ')))
                  for ln in cp.stdout.decode().splitlines() if ln]
        return len(got) >= N
    # A zone-local (follower) read can end before the follower has the last
    # records: read again until all are there.
    kz.wait_until(read, 30, 'kcat to read %d records of %s through %s' % (N, topic, cons), interval=0.2)
    return produced, got


def xopts_of(d):
    out = []
    for k, v in d.items():
        out += ['-X', '%s=%s' % (k, v)]
    return out


# ---------------------------------------------------------------- the two parts

def sasl_ssl_part(tb, work, pki, creds, node, js_why, py, py_why):
    ca = pki['ca']
    extra = wal_extra(work, 'sasl-ssl')
    extra.update({'client_tls': {'cert_file': pki['server'], 'key_file': pki['server_key']},
                  'peer_tls': {'ca_file': ca},
                  'client_sasl': {'mechanisms': ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'PLAIN'],
                                  'credentials_file': creds, 'failure_delay_ms': FAILURE_DELAY_MS}})
    with kz.ProxyCluster(tb, zones=('a', 'b'), extra_config=extra, workdir=os.path.join(work, 'sasl-ssl')) as pc:
        peers_up(pc)
        a, b = pc.proxy_in('a'), pc.proxy_in('b')
        scram = {'ca': ca, 'mech': 'SCRAM-SHA-512', 'user': USER, 'password': PASSWORD}
        plain_x = xopts_of(rdkafka_sasl_ssl(ca, 'PLAIN', USER, PASSWORD))
        fails0 = sum(kz.metrics(p).sum('kzproxy_client_sasl_failures_total', 0) for p in pc.proxies)

        # PyPI confluent-kafka, SCRAM-SHA-512
        if py:
            w, t0 = WalWatch(a), time.monotonic()
            out = venv_run(py, 'roundtrip', a.kafka, b.kafka, 'ss_confluent',
                           rdkafka_sasl_ssl(ca, 'SCRAM-SHA-512', USER, PASSWORD), 'cf')
            produced = [('k%d' % (i % 20), 'cf-%d' % i) for i in range(N)]
            per = check_records('confluent-kafka', produced, [tuple(r) for r in out['records']])
            report('PyPI confluent-kafka (librdkafka %s) SASL_SSL SCRAM-SHA-512' % venv_libversion(py), per,
                   w.check('confluent-kafka'), time.monotonic() - t0)
        else:
            print('PyPI confluent-kafka SASL_SSL SCRAM-SHA-512: SKIP (%s)' % py_why)

        # kafka-python, SCRAM-SHA-512
        w, t0 = WalWatch(a), time.monotonic()
        produced, records = kafka_python_roundtrip(a.kafka, b.kafka, 'ss_kafka_python', scram, 'kp')
        per = check_records('kafka-python', produced, records)
        import kafka
        report('kafka-python %s SASL_SSL SCRAM-SHA-512' % kafka.__version__, per, w.check('kafka-python'),
               time.monotonic() - t0)

        # KafkaJS, SCRAM-SHA-512
        if node:
            w, t0 = WalWatch(a), time.monotonic()
            produced, records = kafkajs_roundtrip(node, a.kafka, b.kafka, 'ss_kafkajs', scram)
            per = check_records('KafkaJS', produced, records)
            report('KafkaJS SASL_SSL SCRAM-SHA-512', per, w.check('KafkaJS'), time.monotonic() - t0)
        else:
            print('KafkaJS SASL_SSL SCRAM-SHA-512: SKIP (%s)' % js_why)

        # kcat, PLAIN over TLS
        w, t0 = WalWatch(a), time.monotonic()
        produced, records = kcat_roundtrip(a.kafka, b.kafka, 'ss_kcat', plain_x, 'kc')
        per = check_records('kcat', produced, records)
        report('kcat SASL_SSL PLAIN', per, w.check('kcat'), time.monotonic() - t0)

        # Wrong passwords over SASL_SSL: a clear error on the client.
        failed = 0
        exc, line, pline, secs = kafka_python_wrong_password(a.kafka, scram, a)
        failed += 1
        print('kafka-python wrong password (SASL_SSL SCRAM-SHA-512): %s after %.1fs; its log: %s; proxy: %s'
              % (exc[:120], secs, line[:200], pline.split(' ', 1)[1][:200]))
        if node:
            msg, secs = kafkajs_wrong_password(node, a.kafka, 'ss_after', scram)
            failed += 1
            print('KafkaJS wrong password (SASL_SSL SCRAM-SHA-512): %s after %.1fs' % (msg[:240], secs))
        if py:
            t0 = time.monotonic()
            out = venv_run(py, 'wrong', a.kafka, a.kafka, 'ss_after',
                           rdkafka_sasl_ssl(ca, 'SCRAM-SHA-512', USER, 'not-' + PASSWORD), 'x')
            if not out['auth']:
                raise HarnessError('PyPI confluent-kafka wrong password: no _AUTHENTICATION error, only %s'
                                   % out['other'][:3])
            failed += 1
            print('PyPI confluent-kafka wrong password (SASL_SSL SCRAM-SHA-512): %s after %.1fs'
                  % (out['auth'][0][:240], time.monotonic() - t0))
        t0 = time.monotonic()
        cp = kz.kcat('-L', '-b', a.kafka, '-m', '2', *xopts_of(rdkafka_sasl_ssl(ca, 'PLAIN', USER, 'wrong')),
                     check=False, timeout=30)
        err = cp.stderr.decode('utf-8', 'replace')
        auth = [ln[ln.index('SASL authentication error'):] for ln in err.splitlines()
                if 'SASL authentication error: Authentication failed' in ln]
        if cp.returncode == 0 or not auth:
            raise HarnessError('kcat wrong password: exit %d, stderr ends:\n%s' % (cp.returncode, err[-1500:]))
        failed += 1
        print('kcat wrong password (SASL_SSL PLAIN): exit %d after %.1fs: %s'
              % (cp.returncode, time.monotonic() - t0, auth[0].strip()[:240]))

        # The proxy counted them, said why, and keeps serving.
        fails = kz.wait_until(
            lambda: (lambda f: f - fails0 >= failed and f)(
                sum(kz.metrics(p).sum('kzproxy_client_sasl_failures_total', 0) for p in pc.proxies)),
            10, 'kzproxy_client_sasl_failures_total to rise by %d' % failed) - fails0
        lines = [ln for ln in a.log_text().splitlines() if 'authentication failed' in ln]
        if not lines:
            raise HarnessError('no "authentication failed" line in the zone-a proxy log')
        if PASSWORD in a.log_text() or 'not-' + PASSWORD in a.log_text():
            raise HarnessError('a password is in the proxy log')
        print('proxy: kzproxy_client_sasl_failures_total +%d for %d clients with a wrong password (they retry); '
              'no password in its log; first line: %s' % (fails, failed, lines[0].split(' ', 1)[1][:200]))
        w, t0 = WalWatch(a), time.monotonic()
        produced, records = kafka_python_roundtrip(a.kafka, b.kafka, 'ss_after', scram, 'after')
        per = check_records('kafka-python after the failures', produced, records)
        report('after the wrong passwords, kafka-python SASL_SSL SCRAM-SHA-512', per,
               w.check('kafka-python after the failures'), time.monotonic() - t0)
        ok = sum(kz.metrics(p).sum('kzproxy_client_sasl_successes_total', 0) for p in pc.proxies)
        print('proxy: kzproxy_client_sasl_successes_total %d' % ok)


def mtls_part(tb, work, pki, node, js_why):
    ca = pki['ca']
    extra = wal_extra(work, 'mtls')
    extra.update({'client_tls': {'cert_file': pki['server'], 'key_file': pki['server_key'], 'ca_file': ca,
                                 'client_auth': 'required'},
                  'peer_tls': {'ca_file': ca, 'cert_file': pki['client'], 'key_file': pki['client_key']}})
    with kz.ProxyCluster(tb, zones=('a', 'b'), extra_config=extra, workdir=os.path.join(work, 'mtls')) as pc:
        peers_up(pc)
        a, b = pc.proxy_in('a'), pc.proxy_in('b')
        cert = {'ca': ca, 'cert': pki['client'], 'key': pki['client_key']}
        x = xopts_of({'security.protocol': 'SSL', 'ssl.ca.location': ca, 'ssl.certificate.location': pki['client'],
                      'ssl.key.location': pki['client_key']})
        w, t0 = WalWatch(a), time.monotonic()
        produced, records = kcat_roundtrip(a.kafka, b.kafka, 'mt_kcat', x, 'mkc')
        per = check_records('kcat mTLS', produced, records)
        report('kcat mTLS (client certificate, no SASL)', per, w.check('kcat mTLS'), time.monotonic() - t0)
        w, t0 = WalWatch(a), time.monotonic()
        produced, records = kafka_python_roundtrip(a.kafka, b.kafka, 'mt_kafka_python', cert, 'mkp')
        per = check_records('kafka-python mTLS', produced, records)
        report('kafka-python mTLS (client certificate, no SASL)', per, w.check('kafka-python mTLS'),
               time.monotonic() - t0)
        if node:
            w, t0 = WalWatch(a), time.monotonic()
            produced, records = kafkajs_roundtrip(node, a.kafka, b.kafka, 'mt_kafkajs', cert)
            per = check_records('KafkaJS mTLS', produced, records)
            report('KafkaJS mTLS (client certificate, no SASL)', per, w.check('KafkaJS mTLS'),
                   time.monotonic() - t0)
        else:
            print('KafkaJS mTLS: SKIP (%s)' % js_why)
        # The certificate was required: without one the handshake fails.
        cp = kz.kcat('-L', '-b', a.kafka, '-m', '5', '-X', 'security.protocol=ssl', '-X', 'ssl.ca.location=' + ca,
                     check=False, timeout=30)
        if cp.returncode == 0:
            raise HarnessError('mTLS: kcat without a client certificate got metadata')
        print('mTLS: kcat without a client certificate fails (exit %d), kzproxy_client_tls_failures_total %d'
              % (cp.returncode, kz.metrics(a).sum('kzproxy_client_tls_failures_total', 0)))


def main():
    kz.require_kcat()
    try:
        import kafka  # noqa: F401
    except ImportError as e:
        raise SkipTest('kafka-python does not import (%s): apt-get install python3-kafka' % e)
    node, js_why = kz.node_package('kafkajs')
    py, py_why = venv_python()
    work = tempfile.mkdtemp(prefix='kz-sasl-ssl-')
    ok = False
    try:
        pki = make_test_pki(os.path.join(work, 'pki'))
        creds = os.path.join(work, 'users.json')
        kz.scram_credentials_file(creds, {USER: PASSWORD})
        with kz.TestBed(zones=('a', 'b'), brokers=2, topics={t: PARTITIONS for t in TOPICS}, backend='mock') as tb:
            sasl_ssl_part(tb, work, pki, creds, node, js_why, py, py_why)
            mtls_part(tb, work, pki, node, js_why)
        ok = True
    finally:
        if ok and not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(work, ignore_errors=True)
        elif not ok:
            sys.stderr.write('test_client_sasl_ssl: work directory (PKI, configs, proxy logs) kept in %s\n' % work)


if __name__ == '__main__':
    kz.run_test(main, timeout=180)
