#!/usr/bin/python3
"""The real-Kafka test bed itself (tests/integration/kzbed.py KafkaBed with
tls=True), checked from outside with clients nobody here wrote:

  - three brokers in racks a, b, c (kafka-python's describe_cluster), a
    topic laid out as the harness promises (partition p led by broker p%3+1);
  - every listener: PLAINTEXT; SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256 and
    SCRAM-SHA-512 (the users created at startup), a wrong password refused
    with an authentication error; SSL against the test CA, with and without a
    client certificate; SASL_SSL with SCRAM-SHA-512;
  - the faults: broker_down (kill -9) moves its partitions to other leaders
    and produce goes on, broker_up brings it back into every ISR, set_leader
    moves a leadership back; nothing acknowledged is lost;
  - on stop, no broker JVM is left running.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzbed import SCRAM_USERS, KafkaBed  # noqa: E402
from kzharness import HarnessError  # noqa: E402

TOPIC = 't3'


def list_topics(conf, expect_ok=True):
    """Metadata through a librdkafka client with conf; returns broker ids, or the errors seen."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    errors = []
    conf = dict(conf, error_cb=lambda e: errors.append(e))
    client = AdminClient(conf)
    try:
        md = client.list_topics(timeout=8 if expect_ok else 4)
    except KafkaException as e:
        client.poll(1.0)  # serve the error callbacks
        if expect_ok:
            raise HarnessError('metadata over %s failed: %s; errors %s' % (conf.get('security.protocol'), e, errors))
        return errors
    if not expect_ok:
        raise HarnessError('metadata over %s with bad credentials succeeded' % conf.get('security.protocol'))
    return sorted(md.brokers)


SCRAM_PROBE = r"""
import sys
from confluent_kafka.admin import AdminClient
errors = []
conf = dict(a.split('=', 1) for a in sys.argv[1:])
conf['error_cb'] = lambda e: errors.append(str(e))
client = AdminClient(conf)
try:
    print(sorted(client.list_topics(timeout=8).brokers))
except Exception as e:
    client.poll(1.0)
    print('error', e, errors[:1])
"""


def scram_probe(conf):
    """Metadata over SCRAM with PyPI's confluent-kafka (tests/clients/pyvenv, a
    librdkafka >= 2.6.1: Debian's 2.0.2 sends a SCRAM nonce Kafka 4 refuses,
    librdkafka#4895). Returns what it printed: broker ids or the error."""
    py = os.path.join(kz.top_srcdir(), 'tests', 'clients', 'pyvenv', 'bin', 'python')
    if not os.access(py, os.X_OK):
        raise HarnessError('%s missing: scripts/deps.sh makes it (confluent-kafka from PyPI)' % py)
    cp = subprocess.run([py, '-c', SCRAM_PROBE] + ['%s=%s' % kv for kv in conf.items()], stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
    return cp.stdout.decode('utf-8', 'replace').strip()


def main():
    user, password = 'alice', SCRAM_USERS['alice']
    with KafkaBed(topics={TOPIC: 3}, tls=True) as tb:
        pids = tb.pids
        from kafka.admin import KafkaAdminClient
        adm = KafkaAdminClient(bootstrap_servers=tb.bootstrap, client_id='kz-bed-check')
        racks = {b['node_id']: b['rack'] for b in adm.describe_cluster()['brokers']}
        adm.close()
        if racks != {1: 'a', 2: 'b', 3: 'c'}:
            raise HarnessError('broker racks %s, want {1: a, 2: b, 3: c}' % racks)
        leaders = {p['partition']: p['leader'] for p in tb.describe(TOPIC)}
        if leaders != {0: 1, 1: 2, 2: 3}:
            raise HarnessError('%s leaders %s, want partition p led by broker p %% 3 + 1' % (TOPIC, leaders))
        print('brokers: racks %s; %s leaders %s' % (racks, TOPIC, leaders))

        checks = [('PLAINTEXT', {'bootstrap.servers': tb.bootstrap})]
        checks.append(('SASL_PLAINTEXT PLAIN', {
            'bootstrap.servers': tb.sasl_bootstrap, 'security.protocol': 'SASL_PLAINTEXT',
            'sasl.mechanisms': 'PLAIN', 'sasl.username': user, 'sasl.password': password}))
        checks.append(('SSL', {'bootstrap.servers': tb.ssl_bootstrap, 'security.protocol': 'SSL',
                               'ssl.ca.location': tb.pki['ca']}))
        checks.append(('SSL with a client certificate', {
            'bootstrap.servers': tb.ssl_bootstrap, 'security.protocol': 'SSL', 'ssl.ca.location': tb.pki['ca'],
            'ssl.certificate.location': tb.pki['client'], 'ssl.key.location': tb.pki['client_key']}))
        checks.append(('SASL_SSL PLAIN', {
            'bootstrap.servers': tb.sasl_ssl_bootstrap, 'security.protocol': 'SASL_SSL',
            'ssl.ca.location': tb.pki['ca'], 'sasl.mechanisms': 'PLAIN', 'sasl.username': user,
            'sasl.password': password}))
        for what, conf in checks:
            ids = list_topics(conf)
            if ids != [1, 2, 3]:
                raise HarnessError('%s: metadata names brokers %s' % (what, ids))
        names = [w for w, _ in checks]
        for mech, ssl in (('SCRAM-SHA-256', False), ('SCRAM-SHA-512', False), ('SCRAM-SHA-512', True)):
            proto = 'SASL_SSL' if ssl else 'SASL_PLAINTEXT'
            conf = {'bootstrap.servers': tb.sasl_ssl_bootstrap if ssl else tb.sasl_bootstrap,
                    'security.protocol': proto, 'sasl.mechanisms': mech, 'sasl.username': user,
                    'sasl.password': password}
            if ssl:
                conf['ssl.ca.location'] = tb.pki['ca']
            got = scram_probe(conf)
            if got != '[1, 2, 3]':
                raise HarnessError('%s over %s: %s' % (mech, proto, got))
            names.append('%s %s' % (proto, mech))
        errs = list_topics({'bootstrap.servers': tb.sasl_bootstrap, 'security.protocol': 'SASL_PLAINTEXT',
                            'sasl.mechanisms': 'PLAIN', 'sasl.username': user, 'sasl.password': 'wrong'},
                           expect_ok=False)
        if not any('uthentication' in str(e) for e in errs):
            raise HarnessError('a wrong PLAIN password gave %s, want an authentication error' % errs)
        got = scram_probe({'bootstrap.servers': tb.sasl_bootstrap, 'security.protocol': 'SASL_PLAINTEXT',
                           'sasl.mechanisms': 'SCRAM-SHA-256', 'sasl.username': user, 'sasl.password': 'wrong'})
        if 'invalid credentials' not in got:
            raise HarnessError('a wrong SCRAM-SHA-256 password gave %r, want invalid credentials' % got)
        print('listeners: %s answer Metadata; a wrong password is refused (PLAIN, SCRAM-SHA-256)' % ', '.join(names))

        t0 = time.monotonic()
        kz.produce(tb.bootstrap, TOPIC, [(None, b'before-%d' % i) for i in range(100)],
                           config={'acks': 'all'}, timeout=30)
        tb.broker_down(3)
        after = {p['partition']: p['leader'] for p in tb.describe(TOPIC)}
        if after[2] in (3, -1):
            raise HarnessError('partition 2 still led by %d after broker 3 was killed' % after[2])
        alive = ','.join(b.address for b in tb.brokers if b.id != 3)
        kz.produce(alive, TOPIC, [(None, b'during-%d' % i) for i in range(100)], config={'acks': 'all'}, timeout=30)
        tb.broker_up(3)
        tb.wait_in_sync(60)
        tb.set_leader(TOPIC, 2, 3)
        back = {p['partition']: p['leader'] for p in tb.describe(TOPIC)}
        if back[2] != 3:
            raise HarnessError('set_leader: partition 2 led by %d, want 3' % back[2])
        rows = kz.consume_all(tb.bootstrap, TOPIC, timeout=30)
        values = sorted(r[3] for r in rows)
        want = sorted([b'before-%d' % i for i in range(100)] + [b'during-%d' % i for i in range(100)])
        if values != want:
            raise HarnessError('read back %d messages, want the 200 acknowledged once each' % len(values))
        print('faults: broker 3 killed -> partition 2 led by %d, produce went on; restarted, back in every ISR; '
              'set_leader gave partition 2 back to broker 3; 200 acknowledged messages read back once each '
              '(%.1fs)' % (after[2], time.monotonic() - t0))
    left = [pid for pid in pids if os.path.exists('/proc/%d' % pid) and
            open('/proc/%d/stat' % pid).read().split()[2] != 'Z']
    if left:
        raise HarnessError('broker JVMs still running after stop: %s' % left)
    print('stop: no broker JVM left running')


if __name__ == '__main__':
    kz.run_test(main, timeout=300)
