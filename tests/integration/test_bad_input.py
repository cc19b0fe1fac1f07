#!/usr/bin/python3
"""Bad input: a table of malformed frames sent to a running kzproxy.

Each bad frame must get its connection closed and one log line naming the
peer and the reason, while a well-behaved client on another connection keeps
being served; claimed sizes must not make the proxy's memory grow.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402


def frame(body):
    return struct.pack('>i', len(body)) + body


def header(api_key, version, corr=1, client_id=b'bad-input'):
    h = struct.pack('>hhi', api_key, version, corr)
    return h + struct.pack('>h', len(client_id)) + client_id


# name, bytes sent, words the log line must contain
CASES = [
    ('negative size', struct.pack('>i', -1) + b'\0' * 8, 'frame size -1 out of range'),
    ('huge size', struct.pack('>i', 0x7fffffff) + b'\0' * 8, 'frame size 2147483647 out of range'),
    ('size below a header', frame(b'\0\x12\0'), 'frame size 3 out of range'),
    ('truncated header (client id longer than the frame)',
     frame(struct.pack('>hhih', 18, 0, 7, 200) + b'abc'), 'malformed request header'),
    ('unknown ApiKey', frame(header(999, 0)), 'unsupported ApiKey 999'),
    ('broker-internal ApiKey', frame(header(4, 0)), 'unsupported ApiKey 4 (LeaderAndIsr)'),
    ('version out of range', frame(header(0, 99)), 'Produce version 99 is outside the supported range'),
    ('garbage after a valid header and body', frame(header(18, 0) + b'\xde\xad\xbe\xef'),
     'garbage after message'),
    ('array count larger than the frame',
     frame(header(3, 1) + struct.pack('>i', 1000000) + struct.pack('>h', 1) + b't'),
     'array count exceeds frame'),
    ('string longer than the frame',
     frame(header(3, 1) + struct.pack('>i', 1) + struct.pack('>h', 30000) + b'xyz'),
     'length exceeds frame'),
    ('Produce with a negative partition count',
     frame(header(0, 3) + struct.pack('>hhi', -1, 1, 1000) + struct.pack('>i', 1) +
           struct.pack('>h', 1) + b't' + struct.pack('>i', -7)),
     'Produce'),
    ('DescribeCluster with garbage after the body',
     frame(header(60, 0) + b'\0' + b'\0' + b'\0' + b'\xff'), 'garbage after message'),
    ('DescribeCluster whose tag section is cut short',
     frame(header(60, 1) + b'\0' + b'\0' + b'\1' + b'\x03\x01\x50'), 'malformed request'),
    ('OffsetForLeaderEpoch, which the backend (the mock) lacks',
     frame(header(23, 2) + struct.pack('>i', 0)), 'unsupported ApiKey 23 (OffsetForLeaderEpoch)'),
]


def recv_exact(s, n, timeout=10):
    s.settimeout(timeout)
    buf = b''
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise kz.HarnessError('connection closed after %d of %d bytes' % (len(buf), n))
        buf += chunk
    return buf


def api_versions(s, corr, version=0):
    """One ApiVersions round trip on a good connection; returns (error, keys)."""
    body = header(18, version, corr, b'good-client')
    if version >= 3:
        body += b'\0'  # header tags
        body += b'\x05kcat\x041.0\x00'
    s.sendall(frame(body))
    size = struct.unpack('>i', recv_exact(s, 4))[0]
    resp = recv_exact(s, size)
    got_corr, err = struct.unpack('>ih', resp[:6])
    assert got_corr == corr, 'correlation id %d, expected %d' % (got_corr, corr)
    return err, resp


def expect_closed(s, timeout=10):
    """True when the proxy closed the connection (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def main():
    with kz.TestBed(zones=('a',), brokers=1, topics={'t1': 1}, backend='mock') as tb, \
            kz.ProxyCluster(tb, zones=('a',)) as pc:
        p = pc.proxy_in('a')
        host, port = '127.0.0.1', p.kafka_port
        good = socket.create_connection((host, port))
        corr = 100
        err, _ = api_versions(good, corr)
        assert err == 0, 'ApiVersions error %d' % err
        rss_before = kz.rss_kib(p)

        for name, data, words in CASES:
            bad = socket.create_connection((host, port))
            peer = '127.0.0.1:%d' % bad.getsockname()[1]
            bad.sendall(data)
            if not expect_closed(bad):
                raise AssertionError('%s: connection was not closed' % name)
            bad.close()
            line = kz.wait_until(
                lambda: [ln for ln in p.log_text().splitlines() if 'client %s:' % peer in ln and 'closing' in ln],
                10, 'the log line for %s' % name)
            assert len(line) == 1, '%s: %d log lines for %s, expected 1:\n%s' % (name, len(line), peer, line)
            assert words in line[0], '%s: log line lacks %r:\n%s' % (name, words, line[0])
            corr += 1
            err, _ = api_versions(good, corr)  # the good client is still served
            assert err == 0
            print('ok  %-55s -> %s' % (name, line[0].split('closing connection: ', 1)[1]))

        # A too-new ApiVersions is not bad input: UNSUPPORTED_VERSION at v0,
        # listing what the proxy speaks, and the connection stays open.
        newer = socket.create_connection((host, port))
        body = header(18, 99, 5, b'future-client') + b'\0'
        newer.sendall(frame(body))
        size = struct.unpack('>i', recv_exact(newer, 4))[0]
        resp = recv_exact(newer, size)
        c, err, nkeys = struct.unpack('>ihi', resp[:10])
        assert (c, err) == (5, 35), 'too-new ApiVersions answered %r' % ((c, err),)
        keys = {struct.unpack('>hhh', resp[10 + 6 * i:16 + 6 * i])[0]: struct.unpack('>hhh', resp[10 + 6 * i:16 + 6 * i])[1:]
                for i in range(nkeys)}
        assert keys.get(18) == (0, 3), 'ApiVersions range %r' % (keys.get(18),)
        err, _ = api_versions(newer, 6, version=3)
        assert err == 0
        newer.close()
        print('ok  %-55s -> UNSUPPORTED_VERSION at v0, then v3 works' % 'ApiVersions v99')

        # Claimed sizes must not be allocated up front: 200 connections each
        # announce a 90 MB frame and send only its first bytes.
        held = []
        claim = 90 * 1024 * 1024
        for i in range(200):
            s = socket.create_connection((host, port))
            s.sendall(struct.pack('>i', claim) + struct.pack('>hhi', 0, 7, i) + b'\0' * 100)
            held.append(s)
        corr += 1
        err, _ = api_versions(good, corr)  # processed after all of the above
        assert err == 0
        rss_after = kz.rss_kib(p)
        growth = rss_after - rss_before
        print('rss before %d KiB, after 200 connections claiming %d MiB each: %d KiB (growth %d KiB)'
              % (rss_before, claim >> 20, rss_after, growth))
        assert growth < 16 * 1024, 'RSS grew by %d KiB' % growth
        for s in held:
            s.close()
        good.close()
        m = kz.metrics(p)
        closed = m.sum('kzproxy_connections_closed_bad_input_total')
        assert closed == len(CASES), 'closed_bad_input %s, expected %d' % (closed, len(CASES))
        print('%d bad frames rejected, good client served throughout' % len(CASES))


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
