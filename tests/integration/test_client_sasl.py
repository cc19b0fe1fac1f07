#!/usr/bin/python3
"""Client SASL termination (client_sasl) on the mock backend.

One proxy with client_sasl (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and a
credentials file made by `kzproxy --scram-credential`:
- ApiVersions (before any login) advertises SaslHandshake v1 and
  SaslAuthenticate v0-v2; an unauthenticated Metadata request is refused
  (the connection is closed, as Kafka does on a SASL listener).
- kafka-python (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN), PyPI's confluent-kafka
  in tests/clients/pyvenv (SCRAM-SHA-512, SCRAM-SHA-256) and Debian's
  confluent-kafka (PLAIN) produce and consume through the proxy.
- Debian's librdkafka 2.0.2 SCRAM: before 2.6.1 librdkafka repeats its own
  nonce in the client-final message; kzproxy refuses that like Kafka 4: kcat
  fails and the proxy logs "SCRAM client-final nonce is not the combined
  nonce" (a newer kcat must succeed).
- A SaslHandshake v0 login whose user name holds a newline and a quote is
  logged with them replaced ('?'): a client cannot forge log lines.
- A wrong password gets SASL_AUTHENTICATION_FAILED on the client, the proxy
  counts it (kzproxy_client_sasl_failures_total) and keeps serving others.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402

TOPIC = 'sasl3'
USERS = {'alice': 'alice-secret', 'bob,=x': 'b0b pass'}
VENV_PY = os.path.join(kz.top_srcdir(), 'tests', 'clients', 'pyvenv', 'bin', 'python')


def frame(api_key, version, corr, body=b'', client_id=b'raw'):
    hdr = struct.pack('>hhih', api_key, version, corr, len(client_id)) + client_id
    msg = hdr + body
    return struct.pack('>i', len(msg)) + msg


def read_frame(s):
    def rd(n):
        b = b''
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                return None
            b += c
        return b
    h = rd(4)
    if h is None:
        return None
    return rd(struct.unpack('>i', h)[0])


def raw_checks(addr):
    host, port = addr.rsplit(':', 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame(18, 0, 1))
        r = read_frame(s)
        err, n = struct.unpack('>hi', r[4:10])
        keys = {}
        for i in range(n):
            k, lo, hi = struct.unpack('>hhh', r[10 + 6 * i:16 + 6 * i])
            keys[k] = (lo, hi)
        assert err == 0 and keys.get(17) == (0, 1) and keys.get(36) == (0, 2), keys
        # Metadata v1 (all topics) before authenticating: the proxy closes.
        s.sendall(frame(3, 1, 2, struct.pack('>i', -1)))
        assert read_frame(s) is None, 'unauthenticated Metadata got an answer'
    print('raw: ApiVersions advertises SaslHandshake v0-1, SaslAuthenticate v0-2; '
          'unauthenticated Metadata: connection closed')
    with socket.create_connection((host, int(port)), timeout=10) as s:
        # SaslHandshake v1 for an unknown mechanism: error 33 and the list, then closed.
        mech = b'GSSAPI'
        s.sendall(frame(17, 1, 1, struct.pack('>h', len(mech)) + mech))
        r = read_frame(s)
        err, = struct.unpack('>h', r[4:6])
        assert err == 33, err
        assert read_frame(s) is None
    print('raw: SaslHandshake GSSAPI: UNSUPPORTED_SASL_MECHANISM, connection closed')


def v0_user_in_log(addr, p):
    """SaslHandshake v0 and a raw PLAIN token whose user name holds a newline
    and a quote: refused, and the log line shows them as '?' (a client must
    not be able to forge log lines)."""
    host, port = addr.rsplit(':', 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        mech = b'PLAIN'
        s.sendall(frame(17, 0, 1, struct.pack('>h', len(mech)) + mech))
        r = read_frame(s)
        assert struct.unpack('>h', r[4:6])[0] == 0, r
        token = b'\0eve\n1970-01-01 forged line "x\0not-the-password'
        s.sendall(struct.pack('>i', len(token)) + token)
        assert read_frame(s) is None, 'a bad v0 PLAIN login got an answer'
    needle = 'authentication failed for user "eve?1970-01-01 forged line ?x" (SaslHandshake v0)'
    kz.wait_until(lambda: needle in open(p.log, errors='replace').read(), 10, 'the v0 failure log line')
    assert 'forged line "x' not in open(p.log, errors='replace').read()
    print('raw: SaslHandshake v0 PLAIN, user name with a newline and a quote: refused; logged as %r' % needle)


def kafka_python(addr, mech, user, pw, tag):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    common = dict(bootstrap_servers=[addr], security_protocol='SASL_PLAINTEXT', sasl_mechanism=mech,
                  sasl_plain_username=user, sasl_plain_password=pw)
    p = KafkaProducer(acks='all', **common)
    futs = [p.send(TOPIC, key=b'k%d' % i, value=('%s-%d' % (tag, i)).encode(), partition=i % 3)
            for i in range(30)]
    p.flush(30)
    for f in futs:
        f.get(timeout=30)
    p.close()
    c = KafkaConsumer(consumer_timeout_ms=5000, auto_offset_reset='earliest', enable_auto_commit=False,
                      **common)
    c.assign([TopicPartition(TOPIC, i) for i in range(3)])
    got = {m.value.decode() for m in c if m.value.decode().startswith(tag + '-')}
    c.close()
    if len(got) != 30:
        raise HarnessError('kafka-python %s: consumed %d of 30' % (mech, len(got)))
    print('kafka-python %s: produced and consumed 30 messages' % mech)


def rdkafka_conf(mech, user, pw):
    return {'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanisms': mech, 'sasl.username': user,
            'sasl.password': pw}


def confluent(addr, mech, user, pw, tag):
    conf = rdkafka_conf(mech, user, pw)
    kz.produce(addr, TOPIC, [(b'k%d' % i, ('%s-%d' % (tag, i)).encode()) for i in range(30)], config=conf,
               timeout=30)
    rows = kz.consume_all(addr, TOPIC, config=conf, timeout=30)
    n = sum(1 for r in rows if r[3] and r[3].decode().startswith(tag + '-'))
    if n != 30:
        raise HarnessError('confluent %s: consumed %d of 30' % (mech, n))


VENV_SCRIPT = r'''
import sys
from confluent_kafka import Producer, Consumer, TopicPartition
addr, mech, user, pw, tag, topic = sys.argv[1:]
conf = {'bootstrap.servers': addr, 'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanisms': mech,
        'sasl.username': user, 'sasl.password': pw}
errs = []
p = Producer(dict(conf, **{'linger.ms': 5}))
for i in range(30):
    p.produce(topic, key=b'k%d' % i, value=('%s-%d' % (tag, i)).encode(),
              on_delivery=lambda e, m: e and errs.append(str(e)))
left = p.flush(30)
assert not left and not errs, (left, errs[:1])
c = Consumer(dict(conf, **{'group.id': 'venv-' + tag, 'enable.auto.commit': False}))
c.assign([TopicPartition(topic, i, 0) for i in range(3)])
seen = set()
import time
end = time.time() + 30
while len(seen) < 30 and time.time() < end:
    m = c.poll(0.5)
    if m is not None and not m.error() and m.value().decode().startswith(tag + '-'):
        seen.add(m.value())
c.close()
assert len(seen) == 30, len(seen)
print('ok')
'''


def venv_confluent(addr, mech, user, pw, tag):
    if not os.path.exists(VENV_PY):
        print('PyPI confluent-kafka %s: SKIP (no tests/clients/pyvenv)' % mech)
        return
    cp = subprocess.run([VENV_PY, '-c', VENV_SCRIPT, addr, mech, user, pw, tag, TOPIC],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
    if cp.returncode != 0:
        raise HarnessError('PyPI confluent-kafka %s failed:\n%s' % (mech, cp.stdout.decode()[-2000:]))
    print('PyPI confluent-kafka (librdkafka %s) %s: produced and consumed 30 messages'
          % (subprocess.run([VENV_PY, '-c', 'import confluent_kafka as c; print(c.libversion()[0])'],
                            stdout=subprocess.PIPE).stdout.decode().strip(), mech))


NONCE_REFUSAL = ('SASL SCRAM-SHA-512 authentication failed for user "alice": '
                 'SCRAM client-final nonce is not the combined nonce')


def kcat_librdkafka_version():
    cp = subprocess.run([kz.require_kcat(), '-V'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    for word in cp.stdout.decode('utf-8', 'replace').replace(',', ' ').split('librdkafka ')[1:]:
        try:
            return tuple(int(x) for x in word.split()[0].split('.')[:3])
        except ValueError:
            pass
    return None


def scram_nonce_refused(addr, p):
    """librdkafka before 2.6.1 (Debian's kcat: 2.0.2) repeats its own nonce in
    the SCRAM client-final message; kzproxy refuses it like Kafka 4, and says
    so in its log."""
    ver = kcat_librdkafka_version()
    before = p.log_text().count(NONCE_REFUSAL)
    cp = kz.kcat('-L', '-b', addr, '-X', 'security.protocol=SASL_PLAINTEXT', '-X',
                 'sasl.mechanisms=SCRAM-SHA-512', '-X', 'sasl.username=alice', '-X',
                 'sasl.password=' + USERS['alice'], '-m', '5', check=False, timeout=30)
    tail = cp.stderr.decode('utf-8', 'replace').strip().splitlines()
    vs = '.'.join(map(str, ver)) if ver else '?'
    if ver is None or ver >= (2, 6, 1):
        if cp.returncode != 0:
            raise HarnessError('kcat (librdkafka %s) SCRAM-SHA-512 failed: %s' % (vs, tail[-1:]))
        print('kcat (librdkafka %s) SCRAM-SHA-512 metadata: ok' % vs)
        return
    deadline = time.monotonic() + 5
    while p.log_text().count(NONCE_REFUSAL) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    if cp.returncode == 0 or p.log_text().count(NONCE_REFUSAL) == before:
        raise HarnessError('kcat (librdkafka %s) SCRAM-SHA-512: exit %d, and no "%s" in the proxy log'
                           % (vs, cp.returncode, NONCE_REFUSAL))
    print('kcat (librdkafka %s) SCRAM-SHA-512 metadata: refused as expected (proxy log: "%s"), exit %d'
          % (vs, NONCE_REFUSAL.split(': ', 1)[1], cp.returncode))


def wrong_password(addr, pc, p):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError
    t0 = time.monotonic()
    try:
        KafkaProducer(bootstrap_servers=[addr], security_protocol='SASL_PLAINTEXT',
                      sasl_mechanism='SCRAM-SHA-512', sasl_plain_username='alice',
                      sasl_plain_password='wrong', api_version_auto_timeout_ms=5000)
        raise HarnessError('kafka-python logged in with a wrong password')
    except KafkaError as e:
        msg = str(e)
    print('kafka-python wrong password: %s after %.1fs' % (msg.splitlines()[0][:160], time.monotonic() - t0))
    # An unknown user with PLAIN through librdkafka: an authentication error, not a hang.
    from confluent_kafka import Producer
    errs = []
    prod = Producer(dict(rdkafka_conf('PLAIN', 'mallory', 'x'), **{'bootstrap.servers': addr,
                                                                   'error_cb': lambda e: errs.append(e)}))
    prod.produce(TOPIC, b'never')
    deadline = time.monotonic() + 15
    while not errs and time.monotonic() < deadline:
        prod.poll(0.2)
    codes = {e.code() for e in errs}
    from confluent_kafka import KafkaError as KE
    if KE._AUTHENTICATION not in codes:
        raise HarnessError('librdkafka unknown user: errors %s' % [str(e) for e in errs])
    print('confluent-kafka PLAIN unknown user: %s' % errs[0].str()[:160])
    prod.purge()
    del prod
    log = p.log_text()
    if 'alice' not in log or 'authentication failed' not in log or 'wrong' in log.split('alice', 1)[0][-5:]:
        raise HarnessError('no failure line in the log')
    for pw in USERS.values():
        if pw in log:
            raise HarnessError('a password is in the log')


def main():
    kz.require_kcat()
    tmp = tempfile.mkdtemp(prefix='kz-sasl-')
    creds = os.path.join(tmp, 'users.json')
    kz.scram_credentials_file(creds, USERS)
    extra = {'client_sasl': {'mechanisms': ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'PLAIN'],
                             'credentials_file': creds, 'failure_delay_ms': 300}}
    with kz.TestBed(zones=('a',), brokers=1, topics={TOPIC: 3}) as tb, \
            kz.ProxyCluster(tb, zones=('a',), per_zone=1, extra_config=extra) as pc:
        p = pc.proxy_in('a')
        addr = p.kafka
        raw_checks(addr)
        v0_user_in_log(addr, p)
        for mech in ('SCRAM-SHA-512', 'SCRAM-SHA-256', 'PLAIN'):
            kafka_python(addr, mech, 'alice', USERS['alice'], 'kp-' + mech)
        venv_confluent(addr, 'SCRAM-SHA-256', 'bob,=x', USERS['bob,=x'], 'venv-escaped')  # kafka-python 2.0.2 does not escape saslname
        for mech in ('SCRAM-SHA-512', 'SCRAM-SHA-256'):
            venv_confluent(addr, mech, 'alice', USERS['alice'], 'venv-' + mech)
        confluent(addr, 'PLAIN', 'alice', USERS['alice'], 'deb-PLAIN')
        print('Debian confluent-kafka (librdkafka 2.0.2) PLAIN: produced and consumed 30 messages')
        scram_nonce_refused(addr, p)
        cp = kz.kcat('-L', '-b', addr, '-X', 'security.protocol=SASL_PLAINTEXT', '-X', 'sasl.mechanisms=PLAIN',
                     '-X', 'sasl.username=alice', '-X', 'sasl.password=' + USERS['alice'], '-m', '5', timeout=30)
        assert b'topic "sasl3"' in cp.stdout, cp.stdout[:300]
        print('kcat PLAIN metadata: ok')
        before = pc.metrics(p).sum('kzproxy_client_sasl_failures_total', 0)
        wrong_password(addr, pc, p)
        kafka_python(addr, 'SCRAM-SHA-512', 'alice', USERS['alice'], 'kp-after')
        m = pc.metrics(p)
        fails = m.sum('kzproxy_client_sasl_failures_total', 0) - before
        ok = m.sum('kzproxy_client_sasl_successes_total', 0)
        if fails < 2 or ok < 5:
            raise HarnessError('metrics: %s failures, %s successes' % (fails, ok))
        print('metrics: kzproxy_client_sasl_failures_total +%d, successes %d' % (fails, ok))


if __name__ == '__main__':
    kz.run_test(main, timeout=240)
