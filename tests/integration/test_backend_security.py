#!/usr/bin/python3
"""kzproxy's own connections to brokers over TLS and SASL (backend.tls,
backend.sasl), against real Apache Kafka (KafkaBed with tls=True: SSL,
SASL_SSL and SASL_PLAINTEXT listeners, users SCRAM_USERS):

  - TLS + SCRAM-SHA-512 (SASL_SSL): clients produce and consume through the
    proxy; every broker connection the proxy holds goes to a SASL_SSL port
    (Kafka answers Metadata with the addresses of the listener asked, so a
    proxy bootstrapped there reaches every broker over SASL_SSL);
  - TLS + PLAIN (SASL_SSL); SCRAM-SHA-256 without TLS (SASL_PLAINTEXT);
    mTLS alone (SSL listener, client certificate); OAUTHBEARER with an
    unsecured JWT (SASL_PLAINTEXT with Kafka's unsecured validator), static
    and from a token file;
  - failures, each one log line naming the broker, logged once per streak,
    and the proxy never reports ready: a CA the broker's certificate is not
    from; a wrong broker password (the broker's message shown, the password
    nowhere in the log); a certificate that does not name the address dialled
    (hostname and IP mismatch). Kafka's certificate names 127.0.0.1 and
    localhost, the only addresses its listeners are on, so the mismatch is
    checked against a TLS server of this test presenting a certificate (from
    its own CA) for another name; verify_hostname off then lets the same
    handshake through.
"""
import base64
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzbed import SCRAM_USERS, KafkaBed, _openssl, make_test_pki  # noqa: E402
from kzharness import HarnessError  # noqa: E402

TOPIC = 'sec6'
USER = 'kzproxy'
PASSWORD = SCRAM_USERS[USER]


def unsecured_jwt(sub, lifetime_s=3600):
    """An unsecured JWS (alg none, empty signature) as Kafka's default OAUTHBEARER validator takes it."""
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d, separators=(',', ':')).encode()).rstrip(b'=').decode()
    now = int(time.time())
    return '%s.%s.' % (b64({'alg': 'none'}), b64({'sub': sub, 'iat': now, 'exp': now + lifetime_s}))


def proxy_socket_ports(pid):
    """Remote ports of the established TCP connections of process pid."""
    out = subprocess.run(['ss', '-tnpH', 'state', 'established'], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, timeout=10).stdout
    ports = set()
    for line in out.splitlines():
        if 'pid=%d,' % pid not in line:
            continue
        fields = line.split()
        peer = fields[3] if len(fields) > 3 else ''
        ports.add(int(peer.rsplit(':', 1)[1]))
    return ports


def round_trip(tb, name, backend, bootstrap, check_ports=None, big=False):
    """Proxy with the given backend security: produce and consume through it
    (big: also messages of 700 KB, so broker responses of several MB cross
    the TLS layer in many reads, the large-frame path)."""
    extra = {'bootstrap_servers': bootstrap.split(','), 'backend': backend}
    with kz.ProxyCluster(tb, zones=('a',), extra_config=extra, ready_timeout=60) as pc:
        p = pc.proxies[0]
        topic = '%s-%s' % (TOPIC, name)
        msgs = [(b'k%d' % i, b'%s-%d' % (name.encode(), i)) for i in range(300)]
        if big:
            msgs += [(b'big%d' % i, bytes([65 + i]) * (700 * 1024)) for i in range(12)]
        kz.produce(p.kafka, topic, msgs, timeout=60)
        want = sorted(v for _, v in msgs)
        # Read until every message is seen: a follower of the proxy's zone
        # (fetch from follower) may end a partition at a high watermark
        # that lags the leader's for a moment.
        deadline = time.monotonic() + 60
        while True:
            got = kz.consume_all(p.kafka, topic, timeout=60)
            if sorted(v for _, _, _, v in got) == want or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert sorted(v for _, _, _, v in got) == want, \
            '%s: consumed %d of %d messages' % (name, len(got), len(msgs))
        if check_ports is not None:
            ports = proxy_socket_ports(p.pid)
            brokers = {int(a.rsplit(':', 1)[1]) for a in check_ports.split(',')}
            broker_side = {port for port in ports if port != p.admin_port and port != p.kafka_port}
            assert broker_side and broker_side <= brokers, \
                '%s: proxy connected to ports %s, not only the listener %s' % (name, sorted(broker_side),
                                                                               sorted(brokers))
            print('%s: broker connections to ports %s, all on the listener asked' % (name, sorted(broker_side)))
        text = p.log_text()
        for secret in (PASSWORD,):
            assert secret not in text, '%s: a secret is in the proxy log' % name
        print('%s: %d messages through the proxy and back' % (name, len(got)))


class NotReadyProxy(kz.ProxyCluster):
    """A proxy expected to fail its broker handshakes: waits for a log line
    instead of "kzproxy ready", then checks ready never came."""

    def __init__(self, tb, patterns, **kw):
        super().__init__(tb, zones=('a',), **kw)
        self.patterns = patterns

    def _wait_ready(self, proxies):
        p = proxies[0]
        kz.wait_until(lambda: any(all(x in ln for x in self.patterns) for ln in p.log_text().splitlines()), 30,
                      'log lines %s in %s' % (self.patterns, p.log))
        # Several reconnects later (200 ms backoff, 500 ms bootstrap retries).
        r, _, _ = select.select([p.proc.stdout], [], [], 2.5)
        early = os.read(p.proc.stdout.fileno(), 65536).decode() if r else ''
        if self.READY_LINE in early:
            raise HarnessError('kzproxy reported ready although its broker handshakes fail')


def expect_failure(tb, name, backend, bootstrap, patterns, streak=True):
    extra = {'bootstrap_servers': bootstrap.split(','), 'backend': backend}
    with NotReadyProxy(tb, patterns, extra_config=extra) as pc:
        p = pc.proxies[0]
        text = p.log_text()
        # One address's lines: each bootstrap address has its own streak.
        lines = [ln for ln in text.splitlines() if all(x in ln for x in patterns)]
        warn = [ln for ln in lines if 'logged once' in ln] if streak else lines[:1]
        assert len(warn) == 1, '%s: %d first-of-streak lines (want 1):\n%s' % (name, len(warn), '\n'.join(lines))
        assert PASSWORD not in text and 'wrong-secret' not in text, '%s: a secret is in the proxy log' % name
        print('%s: %s' % (name, warn[0].split(']', 1)[-1].strip()))


class TlsServer:
    """A TLS server on 127.0.0.1 presenting cert/key: records handshakes that
    completed (the client then sends its Kafka request; we close)."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.completed = 0
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            try:
                c.settimeout(2)
                with self.ctx.wrap_socket(c, server_side=True) as s:
                    self.completed += 1
                    s.recv(4)
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    def close(self):
        self.stop = True
        self.t.join(5)
        self.sock.close()


def make_cert(d, ca, ca_key, name, san):
    key, csr, crt, ext = (os.path.join(d, name + s) for s in ('.key', '.csr', '.pem', '.cnf'))
    with open(ext, 'w') as f:
        f.write('subjectAltName=%s\n' % san)
    _openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=' + name], name)
    _openssl(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', ca_key, '-CAcreateserial', '-out', crt,
              '-days', '2', '-extfile', ext], name)
    return crt, key


def main():
    work = tempfile.mkdtemp(prefix='kzsec-')
    props = {
        'listener.name.sasl_plaintext.sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER',
        'listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config':
            'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
            'unsecuredLoginStringClaim_sub="kzproxy";',
    }
    with KafkaBed(tls=True, topics={}, server_props=props) as tb:
        pki = tb.pki
        tls = {'ca_file': pki['ca']}
        round_trip(tb, 'tls-scram512', {'tls': tls, 'sasl': {'mechanism': 'SCRAM-SHA-512', 'username': USER,
                                                             'password': PASSWORD}},
                   tb.sasl_ssl_bootstrap, check_ports=tb.sasl_ssl_bootstrap, big=True)
        pwfile = os.path.join(work, 'password')
        with open(pwfile, 'w') as f:
            f.write(PASSWORD + '\n')
        round_trip(tb, 'tls-plain', {'tls': tls, 'sasl': {'mechanism': 'PLAIN', 'username': USER,
                                                          'password_file': pwfile}}, tb.sasl_ssl_bootstrap)
        round_trip(tb, 'scram256', {'sasl': {'mechanism': 'SCRAM-SHA-256', 'username': USER, 'password': PASSWORD}},
                   tb.sasl_bootstrap, check_ports=tb.sasl_bootstrap)
        round_trip(tb, 'mtls', {'tls': dict(tls, cert_file=pki['client'], key_file=pki['client_key'])},
                   tb.ssl_bootstrap, check_ports=tb.ssl_bootstrap)
        round_trip(tb, 'oauthbearer', {'sasl': {'mechanism': 'OAUTHBEARER', 'token': unsecured_jwt('kzproxy')}},
                   tb.sasl_bootstrap)
        tokfile = os.path.join(work, 'token')
        with open(tokfile, 'w') as f:
            f.write(unsecured_jwt('kzproxy') + '\n')
        round_trip(tb, 'oauthbearer-file', {'sasl': {'mechanism': 'OAUTHBEARER', 'token_file': tokfile}},
                   tb.sasl_bootstrap)

        # Failures.
        other = make_test_pki(os.path.join(work, 'other-pki'))
        expect_failure(tb, 'unknown-ca', {'tls': {'ca_file': other['ca']}}, tb.sasl_ssl_bootstrap,
                       ['certificate verify failed: self-signed certificate in certificate chain',
                        tb.sasl_ssl_bootstrap.split(',')[0]])
        expect_failure(tb, 'wrong-password',
                       {'tls': tls, 'sasl': {'mechanism': 'SCRAM-SHA-512', 'username': USER,
                                             'password': 'wrong-secret'}},
                       tb.sasl_ssl_bootstrap,
                       ['SASL SCRAM-SHA-512 authentication failed (SASL_AUTHENTICATION_FAILED)',
                        tb.sasl_ssl_bootstrap.split(',')[0]])
        expect_failure(tb, 'expired-token',
                       {'sasl': {'mechanism': 'OAUTHBEARER', 'token': unsecured_jwt('kzproxy', -600)}},
                       tb.sasl_bootstrap, ['SASL OAUTHBEARER authentication failed', tb.sasl_bootstrap.split(',')[0]])

        crt, key = make_cert(os.path.join(work, 'other-pki'), other['ca'], other['ca_key'], 'elsewhere',
                             'DNS:elsewhere.example')
        srv = TlsServer(crt, key)
        try:
            addr = '127.0.0.1:%d' % srv.port
            expect_failure(tb, 'ip-mismatch', {'tls': {'ca_file': other['ca']}}, addr,
                           ['certificate verify failed: IP address mismatch (the certificate does not name '
                            '127.0.0.1)', addr])
            expect_failure(tb, 'hostname-mismatch', {'tls': {'ca_file': other['ca']}}, 'localhost:%d' % srv.port,
                           ['certificate verify failed: hostname mismatch (the certificate does not name '
                            'localhost)', 'localhost:%d' % srv.port])
            assert srv.completed == 0, 'a handshake completed against a certificate for another name'
            # verify_hostname off: the same certificate passes (the CA still counts).
            expect_failure(tb, 'no-hostname-check', {'tls': {'ca_file': other['ca'], 'verify_hostname': False}},
                           addr, ['connection closed by broker', addr], streak=False)
            assert srv.completed > 0, 'verify_hostname false: no handshake completed'
        finally:
            srv.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    kz.run_test(main, timeout=900)
