#!/usr/bin/python3
"""TLS between proxies (peer_tls), on the mock backend.

Three zones, one proxy each, every proxy with client_tls (the test CA's
127.0.0.1/localhost certificate, kzbed.make_test_pki), peer_secret and a
local WAL store. Checked:
  - peer_tls {"ca_file": CA}: the peers' KzHello health checks pass over TLS
    (kzproxy_peer_up, no health failures); a confluent-kafka producer over
    TLS to the zone-a proxy writes to a 12-partition topic led in all zones:
    the WAL path carries the remote leaders' partitions (KzWalAppend over
    TLS), and every message is read back exactly once through the zone-b
    proxy over TLS;
  - without a peer_tls section, peers follow client_tls (verifying against
    client_tls.ca_file): when the zone-b proxy presents a certificate from
    another CA, the zone-a proxy logs a line naming peer 102 and the verify
    error, and marks it down (kzproxy_peer_up 0) while zone c stays up;
  - --check-config rejects peer_tls without client_tls, and peer_tls
    "enabled": false with client_tls and a peer_secret.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kzbed import make_test_pki  # noqa: E402
from kzharness import (HarnessError, ProxyCluster, TestBed, consume_all, kzproxy_binary,  # noqa: E402
                       metrics, run_test, wait_until)
from walpath import SECRET, store_config  # noqa: E402

TOPIC = 'ptls12'
PARTITIONS = 12
MESSAGES = 1200


def mkdir(*parts):
    d = os.path.join(*parts)
    os.makedirs(d, exist_ok=True)
    return d


def log_text(p):
    with open(p.log, errors='replace') as f:
        return f.read()


def tls_conf(ca):
    return {'security.protocol': 'SSL', 'ssl.ca.location': ca}


def peers_settled(p, want_up):
    """peer_up sums to want_up on p once health checks ran."""
    m = metrics(p)
    return m.sum('kzproxy_peer_health_checks_total', 0) >= 4 and m.sum('kzproxy_peer_up', 0) == want_up


def produce_tls(addr, ca):
    from confluent_kafka import Producer
    p = Producer(dict(tls_conf(ca), **{'bootstrap.servers': addr, 'client.id': 'kz-test-peer-tls',
                                        'acks': 'all', 'linger.ms': 10, 'message.timeout.ms': 30000}))
    errors, acked = [], []

    def dr(err, msg):
        (errors if err is not None else acked).append(err or msg.value())

    for i in range(MESSAGES):
        p.produce(TOPIC, value=b'ptls:%d' % i, partition=i % PARTITIONS, on_delivery=dr)
        if i % 200 == 0:
            p.poll(0)
    left = p.flush(60)
    if errors or left:
        raise HarnessError('producer over TLS: %d errors (first %s), %d undelivered' %
                           (len(errors), errors[:1], left))
    return len(acked)


def check_config(work, pki):
    base = {'node_id': 1, 'zone': 'a', 'listen': '127.0.0.1:9092', 'bootstrap_servers': ['127.0.0.1:1']}
    cases = [
        ('peer_tls without client_tls', dict(base, peer_tls={'ca_file': pki['ca']}, peer_secret=SECRET),
         'peer_tls: TLS to peers without client_tls'),
        ('peer_tls off with client_tls', dict(base, peer_secret=SECRET, peer_tls={'enabled': False},
                                              client_tls={'cert_file': pki['server'], 'key_file': pki['server_key']}),
         'peer_tls.enabled: false with client_tls'),
        ('peer_tls.ca_file missing', dict(base, peer_secret=SECRET, peer_tls={'ca_file': '/nonexistent/ca.pem'},
                                          client_tls={'cert_file': pki['server'], 'key_file': pki['server_key']}),
         'peer_tls.ca_file /nonexistent/ca.pem'),
    ]
    import json
    for name, cfg, want in cases:
        path = os.path.join(work, 'check.json')
        with open(path, 'w') as f:
            json.dump(cfg, f)
        cp = subprocess.run([kzproxy_binary(), '--check-config', path], capture_output=True, text=True, timeout=30)
        if cp.returncode == 0 or want not in cp.stderr:
            raise HarnessError('--check-config, %s: rc %d, %r (want %r)' % (name, cp.returncode, cp.stderr, want))
        print('--check-config, %s: %s' % (name, cp.stderr.strip()))


def wal_over_tls(tb, work, pki):
    ca = pki['ca']
    extra = {'peer_secret': SECRET, 'health_check_ms': 200,
             'wal': {'store': store_config('local', work), 'flush_ms': 20},
             'client_tls': {'cert_file': pki['server'], 'key_file': pki['server_key']},
             'peer_tls': {'ca_file': ca}}
    with ProxyCluster(tb, extra_config=extra, workdir=mkdir(work, 'run1')) as pc:
        for p in pc.proxies:
            wait_until(lambda p=p: peers_settled(p, 2), 15, 'proxy %d to see both peers up over TLS' % p.node_id)
        a, b = pc.proxy_in('a'), pc.proxy_in('b')
        t0 = time.monotonic()
        n = produce_tls(a.kafka, ca)
        secs = time.monotonic() - t0
        m = metrics(a)
        wal = m.sum('kzproxy_produce_path_partitions_total', 0, path='wal')
        cross = m.sum('kzproxy_produce_path_partitions_total', 0, path='cross_zone')
        rpcs = m.sum('kzproxy_wal_rpcs_sent_total', 0)
        rpc_fail = m.sum('kzproxy_wal_rpcs_failed_total', 0)
        if wal == 0 or cross != 0:
            raise HarnessError('zone-a proxy: partitions by path wal %d, cross-zone %d (want wal > 0, cross 0); '
                               'RPCs %d, failed %d' % (wal, cross, rpcs, rpc_fail))
        for p in pc.proxies:
            pm = metrics(p)
            up = pm.sum('kzproxy_peer_up', 0)
            fails = pm.sum('kzproxy_peer_health_failures_total', 0)
            if up != 2 or fails != 0:
                raise HarnessError('proxy %d: kzproxy_peer_up %d, health failures %d (want 2, 0)' %
                                   (p.node_id, up, fails))
            if 'is down' in log_text(p):
                raise HarnessError('proxy %d logged a peer down: %s' % (p.node_id, [
                    ln for ln in log_text(p).splitlines() if 'is down' in ln][:2]))
        rows = consume_all(b.kafka, TOPIC, config=dict(tls_conf(ca), **{'client.id': 'kz-test-peer-tls-reader'}),
                           timeout=60)
        seen = {}
        for part, off, _k, v in rows:
            if not v.startswith(b'ptls:'):
                continue
            i = int(v.split(b':')[1])
            if i % PARTITIONS != part:
                raise HarnessError('message %d read from partition %d' % (i, part))
            if i in seen:
                raise HarnessError('message %d read twice (offsets %d and %d)' % (i, seen[i], off))
            seen[i] = off
        if len(seen) != MESSAGES:
            missing = [i for i in range(MESSAGES) if i not in seen][:5]
            raise HarnessError('%d of %d messages read back through zone b; missing e.g. %s' %
                               (len(seen), MESSAGES, missing))
        print('WAL path over peer TLS: %d messages produced over TLS to zone a in %.2fs; partitions by path: '
              'wal %d, cross-zone %d; KzWalAppend RPCs %d (failed %d); peers up on every proxy; all %d read back '
              'once through zone b over TLS' % (n, secs, wal, cross, rpcs, rpc_fail, len(seen)))
        line = [ln for ln in log_text(a).splitlines() if 'peer connections: TLS' in ln]
        print('zone-a proxy: %s' % (line[0] if line else '(no peer TLS line)'))


def untrusted_peer(tb, work, pki, pki2):
    """No peer_tls: peers follow client_tls and its ca_file. Zone b's
    certificate comes from another CA."""
    def extra(p):
        srv = pki2 if p.zone == 'b' else pki
        return {'peer_secret': SECRET, 'health_check_ms': 200,
                'wal': {'store': store_config('local', work), 'flush_ms': 20},
                'client_tls': {'cert_file': srv['server'], 'key_file': srv['server_key'], 'ca_file': pki['ca']}}
    with ProxyCluster(tb, extra_config=extra, workdir=mkdir(work, 'run2')) as pc:
        a = pc.proxy_in('a')
        b_id = pc.proxy_in('b').node_id
        c_id = pc.proxy_in('c').node_id
        want = 'peer %d (' % b_id
        wait_until(lambda: any(want in ln and 'is down' in ln and 'certificate verify failed' in ln
                               for ln in log_text(a).splitlines()), 15,
                   'the zone-a proxy to log peer %d down for its certificate' % b_id)
        wait_until(lambda: metrics(a).sum('kzproxy_peer_up', 0, node_id=b_id) == 0 and
                   metrics(a).sum('kzproxy_peer_up', 0, node_id=c_id) == 1 and
                   metrics(a).sum('kzproxy_peer_health_checks_total', 0) >= 6, 10,
                   'peer %d down and peer %d up on the zone-a proxy' % (b_id, c_id))
        line = [ln for ln in log_text(a).splitlines() if want in ln and 'is down' in ln][0]
        print('untrusted peer certificate: zone-a proxy: %s' % line)
        tls_failures = metrics(a).sum('kzproxy_peer_tls_failures_total', 0)
        if tls_failures < 1:
            raise HarnessError('kzproxy_peer_tls_failures_total is %s on the zone-a proxy, want >= 1' % tls_failures)
        print('untrusted peer certificate: kzproxy_peer_tls_failures_total %d' % tls_failures)
        lines = [ln for ln in log_text(a).splitlines() if 'peer connections: TLS' in ln]
        print('zone-a proxy: %s' % (lines[0] if lines else '(no peer TLS line)'))


def main():
    work = tempfile.mkdtemp(prefix='kz-peer-tls-')
    try:
        pki = make_test_pki(os.path.join(work, 'pki'))
        pki2 = make_test_pki(os.path.join(work, 'pki2'))  # another CA
        check_config(work, pki)
        with TestBed(topics={TOPIC: PARTITIONS}) as tb:
            wal_over_tls(tb, work, pki)
            untrusted_peer(tb, work, pki, pki2)
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    run_test(main, timeout=240)
