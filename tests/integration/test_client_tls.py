#!/usr/bin/python3
"""TLS on the client listener (client_tls), on the mock backend.

A test CA (kzbed.make_test_pki) signs the proxy's certificate (127.0.0.1 /
localhost) and a client certificate (CN=kz-client). Checked:
  - kcat, confluent-kafka (Debian's) and kafka-python produce and consume
    through a TLS proxy; 700 KB values go through (the large-frame path
    reads through the TLS bufferevent);
  - a server certificate from another CA fails on the client with a verify
    error; a plaintext client on the TLS port and a TLS client on a
    plaintext port fail on the client, the proxy logs what happened
    (kzproxy_client_tls_failures_total counts the first), and keeps serving;
  - client_auth "required": no client certificate fails clearly, with one
    the client works and the proxy takes its subject as the principal;
  - rotation: new files and SIGHUP, or new files alone (mtime, checked on
    accept at most once a second), serve new connections with the new
    certificate while an open connection keeps working; a bad new file
    keeps the current certificate;
  - kzproxy --check-config rejects a key that does not match the certificate.
"""
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kzbed import make_test_pki  # noqa: E402
from kzharness import (HarnessError, ProxyCluster, TestBed, consume_all, kcat, kzproxy_binary,  # noqa: E402
                       kzproxy_has_asan, metrics, produce, require_kcat, run_test, wait_until)

TOPIC = 't1'
# limits.frame_pool_idle_ms of the workers: 2 phase (the default is 30 s).
POOL_IDLE_MS = 3000


def log_text(p):
    with open(p.log, errors='replace') as f:
        return f.read()


def wait_log(p, needle, timeout=10):
    return wait_until(lambda: needle in log_text(p), timeout, 'log line %r in %s' % (needle, p.log))


def tls_conf(ca, cert=None, key=None):
    c = {'security.protocol': 'SSL', 'ssl.ca.location': ca}
    if cert:
        c.update({'ssl.certificate.location': cert, 'ssl.key.location': key})
    return c


def peer_der(addr, ca=None):
    """The DER certificate the proxy at addr presents to a new connection."""
    host, port = addr.rsplit(':', 1)
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
    with socket.create_connection((host, int(port)), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=host) as ss:
            return ss.getpeercert(binary_form=True)


def file_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def api_versions(ss, corr):
    """One ApiVersions v0 round trip on an open (TLS) socket; returns its error code."""
    body = struct.pack('>hhih', 18, 0, corr, 4) + b'test'
    ss.sendall(struct.pack('>i', len(body)) + body)
    hdr = b''
    while len(hdr) < 4:
        hdr += ss.recv(4 - len(hdr))
    n = struct.unpack('>i', hdr)[0]
    data = b''
    while len(data) < n:
        chunk = ss.recv(n - len(data))
        if not chunk:
            raise HarnessError('ApiVersions: connection closed')
        data += chunk
    got_corr, err = struct.unpack('>ih', data[:6])
    if got_corr != corr:
        raise HarnessError('ApiVersions: correlation id %d, expected %d' % (got_corr, corr))
    return err


def api_versions_frame(corr):
    body = struct.pack('>hhih', 18, 0, corr, 4) + b'test'
    return struct.pack('>i', len(body)) + body


def tls_connect(addr, ca, rcvbuf=None):
    """A TLS client over memory BIOs: (socket, SSLObject, incoming BIO, outgoing BIO),
    the handshake done but the client's last flight not yet sent. rcvbuf: the
    socket's receive buffer, set before connecting (the window it offers)."""
    host, port = addr.rsplit(':', 1)
    ctx = ssl.create_default_context(cafile=ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=host)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((host, int(port)))
    while True:
        try:
            obj.do_handshake()
            return s, obj, inc, out
        except ssl.SSLWantReadError:
            if out.pending:
                s.sendall(out.read())
            data = s.recv(65536)
            if not data:
                raise HarnessError('the proxy closed during the handshake')
            inc.write(data)


def tls_read_frames(s, obj, inc, n, what):
    """n response frames (size prefix stripped) from the TLS connection."""
    buf, frames = b'', []
    while len(frames) < n:
        try:
            buf += obj.read(65536)
        except ssl.SSLWantReadError:
            try:
                data = s.recv(65536)
            except socket.timeout:
                raise HarnessError('%s: %d of %d requests answered in 10 s' % (what, len(frames), n))
            if not data:
                raise HarnessError('%s: the proxy closed the connection' % what)
            inc.write(data)
            continue
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack('>i', buf[:4])[0]:
            size = struct.unpack('>i', buf[:4])[0]
            frames.append(buf[4:4 + size])
            buf = buf[4 + size:]
    return frames


def read_ahead(addr, ca, n):
    """The client's last handshake flight and n ApiVersions requests (one TLS
    record each) reach the proxy in one send: OpenSSL's read-ahead takes the
    requests with the handshake, and they are answered though the socket
    has nothing more to signal. Then n more in one send, pipelined."""
    s, obj, inc, out = tls_connect(addr, ca)
    with s:
        corr = 0
        for burst in range(2):
            first = corr + 1
            for _ in range(n):
                corr += 1
                obj.write(api_versions_frame(corr))
            s.sendall(out.read())  # with the client's Finished, the first time
            for i, fr in enumerate(tls_read_frames(s, obj, inc, n, 'read-ahead burst %d' % burst)):
                got_corr, err = struct.unpack('>ih', fr[:6])
                if got_corr != first + i or err != 0:
                    raise HarnessError('read-ahead: answer %d: correlation id %d, error %d' % (i, got_corr, err))
    print('read-ahead: %d requests sent with the handshake\'s last flight, then %d in one send: all answered'
          % (n, n))


def answers_past_a_full_socket(p, ca, n):
    """n ApiVersions requests sent, and all of them answered by the proxy
    (its request counter says so), before the client reads any answer
    through the 4 KiB window it offers: the answers (6 MB for 50,000) pass
    what the proxy's socket holds (4 MB at most here), so its socket BIO
    finds it full with records gathered and must send them once there is
    room. Every answer arrives, whole and in order."""
    before = metrics(p).sum('kzproxy_requests_total', 0)
    s, obj, inc, out = tls_connect(p.kafka, ca, rcvbuf=4096)
    with s:
        s.sendall(out.read())  # the client's Finished
        for corr in range(1, n + 1):
            obj.write(api_versions_frame(corr))
            if corr % 1000 == 0:
                s.sendall(out.read())
        s.sendall(out.read())
        wait_until(lambda: metrics(p).sum('kzproxy_requests_total', 0) >= before + n, 60,
                   'the proxy to take all %d requests' % n)
        frames = tls_read_frames(s, obj, inc, n, 'answers past a full socket')
        size = sum(len(fr) + 4 for fr in frames)
        for i, fr in enumerate(frames):
            got_corr, err = struct.unpack('>ih', fr[:6])
            if got_corr != i + 1 or err != 0:
                raise HarnessError('past a full socket: answer %d: correlation id %d, error %d' % (i, got_corr, err))
        # The connection still serves a request after the backlog.
        if api_versions(obj_socket(s, obj, inc, out), n + 1) != 0:
            raise HarnessError('past a full socket: the next ApiVersions failed')
    print('%d ApiVersions sent before reading any answer (%.1f MB of answers): all answered, in order'
          % (n, size / 1e6))


class obj_socket:
    """sendall/recv over a memory-BIO TLS client, for api_versions."""
    def __init__(self, s, obj, inc, out):
        self.s, self.obj, self.inc, self.out = s, obj, inc, out

    def sendall(self, data):
        self.obj.write(data)
        self.s.sendall(self.out.read())

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                data = self.s.recv(65536)
                if not data:
                    return b''
                self.inc.write(data)


def large_produce_bursts(addr, ca, n):
    """n Produce requests of 600 KB (streamed: cut-through, 64 KiB a turn),
    each sent whole in one send and answered before the next: the end of a
    frame can sit decrypted-ahead in OpenSSL when a turn ends."""
    import test_cut_through as ct
    batch = ct.record_batch(600, 1000)
    s, obj, inc, out = tls_connect(addr, ca)
    with s:
        for i in range(n):
            obj.write(ct.produce_request(i + 1, [(0, batch)], topic=TOPIC))
            s.sendall(out.read())
            fr = tls_read_frames(s, obj, inc, 1, 'large Produce %d' % i)[0]
            corr = struct.unpack('>i', fr[:4])[0]
            err = struct.unpack('>h', fr[4 + 4 + 2 + len(TOPIC) + 4 + 4:][:2])[0]
            if corr != i + 1 or err != 0:
                raise HarnessError('large Produce %d: correlation id %d, error %d' % (i, corr, err))
    print('%d Produce requests of %d KB, each in one send over TLS: all answered' % (n, len(batch) // 1000))


def kafka_python_roundtrip(addr, ca, n=20):
    from kafka import KafkaConsumer, KafkaProducer
    kp = KafkaProducer(bootstrap_servers=addr, security_protocol='SSL', ssl_cafile=ca,
                       request_timeout_ms=15000, api_version_auto_timeout_ms=15000)
    vals = [b'kp-%d' % i for i in range(n)]
    for v in vals:
        kp.send(TOPIC, v).get(timeout=30)
    kp.close()
    kc = KafkaConsumer(TOPIC, bootstrap_servers=addr, security_protocol='SSL', ssl_cafile=ca,
                       auto_offset_reset='earliest', consumer_timeout_ms=10000, enable_auto_commit=False)
    got = [m.value for m in kc if m.value.startswith(b'kp-')]
    kc.close()
    if got[-n:] != vals:
        raise HarnessError('kafka-python consumed %r, expected %r' % (got[-n:], vals))
    print('kafka-python over TLS: %d messages produced and consumed' % n)


def copy_keypair(src_cert, src_key, dst_cert, dst_key):
    """Replace the proxy's files the way a rotation does: new file, rename."""
    for s, d in ((src_cert, dst_cert), (src_key, dst_key)):
        shutil.copyfile(s, d + '.new')
        os.rename(d + '.new', d)


def check_config_mismatch(work, pki, pki2):
    cfg = os.path.join(work, 'mismatch.json')
    with open(cfg, 'w') as f:
        f.write('{"node_id": 1, "zone": "a", "listen": "127.0.0.1:9092", "bootstrap_servers": ["127.0.0.1:1"],'
                ' "client_tls": {"cert_file": "%s", "key_file": "%s"}}' % (pki['server'], pki2['server_key']))
    cp = subprocess.run([kzproxy_binary(), '--check-config', cfg], capture_output=True, text=True, timeout=30)
    if cp.returncode == 0 or 'does not match' not in cp.stderr:
        raise HarnessError('--check-config with a mismatched key: rc %d, %r' % (cp.returncode, cp.stderr))
    print('--check-config: %s' % cp.stderr.strip())


def main():
    require_kcat()
    work = tempfile.mkdtemp(prefix='kz-client-tls-')
    try:
        run(work)
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(work, ignore_errors=True)


def run(work):
    pki = make_test_pki(os.path.join(work, 'pki'))
    pki2 = make_test_pki(os.path.join(work, 'pki2'))  # another CA: untrusted, and rotation
    check_config_mismatch(work, pki, pki2)
    # The proxy's own copies, so rotation can replace them.
    cert, key = os.path.join(work, 'proxy-cert.pem'), os.path.join(work, 'proxy-key.pem')
    copy_keypair(pki['server'], pki['server_key'], cert, key)
    tls = {'client_tls': {'cert_file': cert, 'key_file': key}}
    with TestBed(zones=('a',), brokers=1, topics={TOPIC: 1}) as tb:
        with ProxyCluster(tb, zones=('a',), extra_config=tls) as pc:
            p = pc.proxy_in('a')
            basic(p, pki, pki2)
            rotation(pc, p, pki, pki2, cert, key)
        with ProxyCluster(tb, zones=('a',), extra_config=dict(tls, workers=2,
                                                              limits={'frame_pool_idle_ms': POOL_IDLE_MS})) as pc:
            two_workers(pc.proxy_in('a'), pki)
        with ProxyCluster(tb, zones=('a',)) as pc:
            tls_on_plaintext(pc.proxy_in('a'), pki)
        mtls = {'client_tls': {'cert_file': pki['server'], 'key_file': pki['server_key'], 'ca_file': pki['ca'],
                               'client_auth': 'required'}}
        with ProxyCluster(tb, zones=('a',), extra_config=mtls, log_level='debug') as pc:
            mutual(pc.proxy_in('a'), pki, pki2)


def basic(p, pki, pki2):
    ca = pki['ca']
    # kcat
    kcat('-P', '-b', p.kafka, '-t', TOPIC, '-X', 'security.protocol=ssl', '-X', 'ssl.ca.location=' + ca,
         input=''.join('kcat-%d\n' % i for i in range(100)))
    out = kcat('-C', '-b', p.kafka, '-t', TOPIC, '-o', 'beginning', '-e', '-q', '-X', 'security.protocol=ssl',
               '-X', 'ssl.ca.location=' + ca).stdout.decode().split()
    if out[:100] != ['kcat-%d' % i for i in range(100)]:
        raise HarnessError('kcat over TLS consumed %r...' % out[:5])
    print('kcat over TLS: 100 messages produced and consumed')
    # confluent-kafka with large values: frames over the direct-read threshold go through the TLS bev
    big = [(b'big-%d' % i, os.urandom(16) * (700 * 1024 // 16)) for i in range(6)]
    produce(p.kafka, TOPIC, big, config=dict(tls_conf(ca), **{'message.max.bytes': 2000000}))
    got = {k: v for _, _, k, v in consume_all(p.kafka, TOPIC, config=dict(
        tls_conf(ca), **{'fetch.max.bytes': 8000000, 'max.partition.fetch.bytes': 8000000}))}
    for k, v in big:
        if got.get(k) != v:
            raise HarnessError('700 KB value %r came back %s' % (k, 'missing' if k not in got else 'different'))
    print('confluent-kafka over TLS: %d values of 700 KB produced and consumed intact' % len(big))
    kafka_python_roundtrip(p.kafka, ca)
    read_ahead(p.kafka, ca, 500)
    answers_past_a_full_socket(p, ca, 50000)
    large_produce_bursts(p.kafka, ca, 30)

    # A server certificate from another CA: the client says so.
    cp = kcat('-L', '-b', p.kafka, '-m', '5', '-X', 'security.protocol=ssl', '-X', 'ssl.ca.location=' + pki2['ca'],
              check=False, timeout=30)
    err = cp.stderr.decode('utf-8', 'replace')
    if cp.returncode == 0 or 'certificate verify failed' not in err:
        raise HarnessError('untrusted server certificate: kcat rc %d, stderr %r' % (cp.returncode, err[-800:]))
    print('untrusted CA: client error: %s' % [ln for ln in err.splitlines() if 'verify failed' in ln][0].strip())
    wait_log(p, 'TLS handshake failed')

    # Plaintext against the TLS port: the client fails, the proxy says what it was.
    before = metrics(p).sum('kzproxy_client_tls_failures_total')
    cp = kcat('-L', '-b', p.kafka, '-m', '5', check=False, timeout=30)
    err = cp.stderr.decode('utf-8', 'replace')
    if cp.returncode == 0:
        raise HarnessError('plaintext kcat against the TLS port succeeded')
    wait_log(p, 'sent a plaintext Kafka request (the client is not using TLS')
    after = wait_until(lambda: metrics(p).sum('kzproxy_client_tls_failures_total') > before and
                       metrics(p).sum('kzproxy_client_tls_failures_total'), 10, 'the TLS failure counter')
    print('plaintext on the TLS port: client: %s' % (err.strip().splitlines() or ['?'])[-1][:200])
    print('plaintext on the TLS port: proxy: %s' % [ln for ln in log_text(p).splitlines()
                                                    if 'plaintext Kafka request' in ln][0])
    print('kzproxy_client_tls_failures_total %d' % after)
    # ... and keeps serving TLS clients.
    kcat('-L', '-b', p.kafka, '-m', '10', '-X', 'security.protocol=ssl', '-X', 'ssl.ca.location=' + ca)


def two_workers(p, pki):
    """workers: 2: TLS connections on both threads (each its own loop for
    the socket BIO's events), a kcat round trip, and answers past a full
    socket on each of the first two connections."""
    ca = pki['ca']
    for i in range(2):
        answers_past_a_full_socket(p, ca, 50000)
    kcat('-P', '-b', p.kafka, '-t', TOPIC, '-X', 'security.protocol=ssl', '-X', 'ssl.ca.location=' + ca,
         input=''.join('w2-%d\n' % i for i in range(100)))
    out = kcat('-C', '-b', p.kafka, '-t', TOPIC, '-o', '-100', '-e', '-q', '-X', 'security.protocol=ssl',
               '-X', 'ssl.ca.location=' + ca).stdout.decode().split()
    if out != ['w2-%d' % i for i in range(100)]:
        raise HarnessError('workers 2: kcat over TLS consumed %r...' % out[:5])
    m = metrics(p)
    per_worker = {ls['worker']: v for n, ls, v in m.series if n == 'kzproxy_worker_connections_accepted_total'}
    if len(per_worker) != 2 or min(per_worker.values()) == 0:
        raise HarnessError('workers 2: TLS connections not on both workers: %s' % per_worker)
    # The TLS buffers (128 KiB) went back to the threads' pools, which the
    # gauge sums over the threads; AddressSanitizer builds keep no pool.
    pool = m.sum('kzproxy_frame_pool_bytes')
    asan = kzproxy_has_asan()
    if not asan and pool < 128 * 1024:
        raise HarnessError('workers 2: kzproxy_frame_pool_bytes %d after TLS traffic on both threads' % pool)
    print('workers 2: TLS connections accepted per worker %s; kcat round trip of 100 ok; frame pool %d KiB'
          % ({k: int(v) for k, v in sorted(per_worker.items())}, pool // 1024))
    # limits.frame_pool_idle_ms: left unused, what the threads kept is given
    # back (within two periods of the last use).
    if not asan:
        t0 = time.monotonic()
        wait_until(lambda: metrics(p).sum('kzproxy_frame_pool_bytes') == 0, 10 + 2 * POOL_IDLE_MS / 1000,
                   'kzproxy_frame_pool_bytes back to 0 after %d ms unused' % POOL_IDLE_MS)
        print('workers 2: frame pools given back %.1f s after the traffic (frame_pool_idle_ms %d)'
              % (time.monotonic() - t0, POOL_IDLE_MS))


def rotation(pc, p, pki, pki2, cert, key):
    old_der = file_der(pki['server'])
    if peer_der(p.kafka, pki['ca']) != old_der:
        raise HarnessError('the proxy does not present its configured certificate')
    host, port = p.kafka.rsplit(':', 1)
    ctx = ssl.create_default_context(cafile=pki['ca'])
    raw = socket.create_connection((host, int(port)), timeout=10)
    held = ctx.wrap_socket(raw, server_hostname=host)
    if api_versions(held, 1) != 0:
        raise HarnessError('ApiVersions over TLS failed')
    # A bad new key: the current certificate stays.
    with open(key + '.new', 'w') as f:
        f.write('not a key\n')
    os.rename(key + '.new', key)
    p.proc.send_signal(signal.SIGHUP)
    wait_log(p, 'certificate not reloaded (keeping the current one)')
    if peer_der(p.kafka, pki['ca']) != old_der:
        raise HarnessError('a bad key replaced the certificate')
    print('rotation: a bad key file keeps the current certificate')
    # New files and SIGHUP.
    copy_keypair(pki2['server'], pki2['server_key'], cert, key)
    p.proc.send_signal(signal.SIGHUP)
    wait_log(p, 'received SIGHUP: client_tls certificate reloaded')
    new_der = file_der(pki2['server'])
    if peer_der(p.kafka, pki2['ca']) != new_der:
        raise HarnessError('after SIGHUP a new connection does not see the new certificate')
    if api_versions(held, 2) != 0:
        raise HarnessError('the open connection broke on rotation')
    print('rotation (SIGHUP): new connections get the new certificate (%s); the open one still works'
          % ssl.DER_cert_to_PEM_cert(new_der).splitlines()[1][:24])
    # New files alone: the accept path notices the mtime within a second.
    copy_keypair(pki['server'], pki['server_key'], cert, key)
    wait_until(lambda: peer_der(p.kafka) == old_der, 10, 'the proxy to serve the rotated-back certificate',
               interval=0.3)
    wait_log(p, 'client_tls: certificate files changed: loaded')
    if api_versions(held, 3) != 0:
        raise HarnessError('the open connection broke on the second rotation')
    held.close()
    print('rotation (mtime): new connections get the replaced certificate without a signal')
    kcat('-L', '-b', p.kafka, '-m', '10', '-X', 'security.protocol=ssl', '-X', 'ssl.ca.location=' + pki['ca'])


def tls_on_plaintext(p, pki):
    cp = kcat('-L', '-b', p.kafka, '-m', '5', '-X', 'security.protocol=ssl', '-X', 'ssl.ca.location=' + pki['ca'],
              check=False, timeout=30)
    err = cp.stderr.decode('utf-8', 'replace')
    if cp.returncode == 0:
        raise HarnessError('TLS kcat against a plaintext port succeeded')
    wait_log(p, 'a TLS handshake on the plaintext client listener')
    print('TLS on the plaintext port: client: %s' % (err.strip().splitlines() or ['?'])[-1][:200])
    print('TLS on the plaintext port: proxy: %s' % [ln for ln in log_text(p).splitlines()
                                                    if 'TLS handshake on the plaintext' in ln][0])
    kcat('-L', '-b', p.kafka, '-m', '10')  # still serving


def mutual(p, pki, pki2):
    ca = pki['ca']
    cp = kcat('-L', '-b', p.kafka, '-m', '5', '-X', 'security.protocol=ssl', '-X', 'ssl.ca.location=' + ca,
              check=False, timeout=30)
    err = cp.stderr.decode('utf-8', 'replace')
    if cp.returncode == 0 or 'certificate required' not in err:
        raise HarnessError('mTLS without a client certificate: kcat rc %d, stderr %r' % (cp.returncode, err[-800:]))
    wait_log(p, 'TLS handshake failed: peer did not return a certificate')
    print('mTLS without a client certificate: client: %s' % [ln for ln in err.splitlines()
                                                              if 'certificate required' in ln][0].strip()[:200])
    # A client certificate from another CA.
    cp = kcat('-L', '-b', p.kafka, '-m', '5', '-X', 'security.protocol=ssl', '-X', 'ssl.ca.location=' + ca,
              '-X', 'ssl.certificate.location=' + pki2['client'], '-X', 'ssl.key.location=' + pki2['client_key'],
              check=False, timeout=30)
    if cp.returncode == 0:
        raise HarnessError('mTLS with a certificate of another CA succeeded')
    wait_log(p, "the client's certificate does not verify")
    conf = tls_conf(ca, pki['client'], pki['client_key'])
    produce(p.kafka, TOPIC, [(b'mtls', b'hello')], config=conf)
    got = [v for _, _, k, v in consume_all(p.kafka, TOPIC, config=conf) if k == b'mtls']
    if got != [b'hello']:
        raise HarnessError('mTLS round trip: %r' % got)
    wait_log(p, 'certificate subject CN=kz-client')
    print('mTLS with a client certificate: round trip ok, principal CN=kz-client')
    print('kzproxy_client_tls_failures_total %d' % metrics(p).sum('kzproxy_client_tls_failures_total'))


if __name__ == '__main__':
    run_test(main, timeout=240)
