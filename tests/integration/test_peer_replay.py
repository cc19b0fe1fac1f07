#!/usr/bin/python3
"""Peer RPC hardening at the receiver (issue 14, item 5), mock backend.

Two zones, one proxy in a and two in b, sharing a local WAL store. The test
plays a peer: it knows peer_secret, writes a WAL object (one record batch of
3 records) into the store itself and sends hand-built, correctly MAC'd
KzWalAppend requests to the first zone-b proxy (b1), where the partition's
leader (broker 2) lives. Every request's MAC names its receiver's node id:

  - a fresh request appends the batch (error 0);
  - the same bytes sent again (a captured request replayed) are answered
    INVALID_REQUEST "... a replay ..." and append nothing: the partition
    holds exactly 3 records, read back from the backend;
  - the same bytes sent to b2 (the other proxy of zone b, same store and
    secret, has never seen the nonce) fail authentication there: the MAC
    names b1; b2 closes the connection and reads nothing;
  - a KzWalAppend sealed for the "unknown" receiver (-1) is refused as well;
    a KzHello sealed for -1 (DNS discovery's first question) is answered,
    and one sealed for b2 is refused by b1;
  - a key outside the store's prefix ("other/...", the object exists there)
    and a key with ".." are refused whole, without a GET of the store;
  - a request whose ts_ms is 2 minutes old (outside peer_replay_window_ms)
    is refused as clock skew;
  - the producer's principal (tagged field 0) is checked against the ACLs:
    "mallory" and an anonymous producer get TOPIC_AUTHORIZATION_FAILED;
  - a request with a wrong MAC closes the connection (as before);
  - after b1 restarts (its seen-nonce set is empty), the first request
    replayed to it is refused as "before_start" (stamped before the new
    process started), NOT_LEADER_OR_FOLLOWER, nothing appended.

Each refusal is counted in kzproxy_peer_rejected_total{reason=...}.
"""
import hashlib
import hmac
import os
import shutil
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402

SECRET = b'kz-test-peer-secret-0123456789abcdef'
TOPIC = 'replay1'
KZ_HELLO, KZ_WAL_APPEND = 0x4b5a, 0x4b5b
UNKNOWN_RECEIVER = -1
INVALID_REQUEST, NOT_LEADER_OR_FOLLOWER, TOPIC_AUTHORIZATION_FAILED = 42, 6, 29
# The receiver checks the producer's principal: alice may produce to the
# topic; unauthenticated clients (the test's reader) may only read.
ACLS = [{'principal': 'alice', 'operations': ['produce', 'describe'], 'resources': [{'type': 'topic', 'name': TOPIC}]},
        {'anonymous': True, 'operations': ['consume', 'describe'],
         'resources': [{'type': 'topic', 'name': '*'}, {'type': 'group', 'name': '*'}, {'type': 'cluster'}]}]


def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def uvarint(n):
    out = b''
    while n >= 0x80:
        out += bytes([(n & 0x7f) | 0x80])
        n >>= 7
    return out + bytes([n])


def varint(n):
    return uvarint((n << 1) ^ (n >> 63))


def cstr(s):
    return uvarint(len(s) + 1) + s


def record_batch(values):
    recs = b''
    for i, v in enumerate(values):
        rec = b'\0' + varint(0) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        recs += varint(len(rec)) + rec
    n = len(values)
    after_crc = struct.pack('>hiqqqhii', 0, n - 1, 1700000000000, 1700000000000, -1, -1, -1, n) + recs
    body = struct.pack('>ib', -1, 2) + struct.pack('>I', crc32c(after_crc)) + after_crc
    return struct.pack('>qi', 0, len(body)) + body


def seal(api, receiver, body):
    """The request MAC: HMAC-SHA256 of "Q" | ApiKey | version | receiver node id | body."""
    return body + hmac.new(SECRET, b'Q' + struct.pack('>hhi', api, 0, receiver) + body, hashlib.sha256).digest()


def hello(receiver, sender, ts_ms):
    """A sealed KzHello request body for node receiver."""
    msg = struct.pack('>i', sender) + cstr(b'a') + cstr(b'127.0.0.1') + struct.pack('>iq', 9, 1)
    return seal(KZ_HELLO, receiver, struct.pack('>iq', sender, ts_ms) + os.urandom(16) + msg)


def wal_append(key, receiver, sender, ts_ms, nonce, off, length, crc, broker=2, principal=None):
    """A sealed KzWalAppend body for node receiver (auth prefix, message, MAC);
    principal: the producer's, in the trailing tagged field 0 (None:
    anonymous, no tag)."""
    part = cstr(TOPIC.encode()) + struct.pack('>iqiI', 0, off, length, crc)
    group = (struct.pack('>hhi', 7, -1, 30000) + uvarint(0) + cstr(b'kz-test-replay') +
             uvarint(2) + struct.pack('>i', broker) + uvarint(2) + part)
    msg = cstr(key) + uvarint(2) + group
    if principal is not None:
        tag = uvarint(2) + cstr(principal)
        msg += uvarint(1) + uvarint(0) + uvarint(len(tag)) + tag
    return seal(KZ_WAL_APPEND, receiver, struct.pack('>iq', sender, ts_ms) + nonce + msg)


class Peer:
    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=20)
        self.corr = 0

    def recv_exact(self, n):
        buf = b''
        while len(buf) < n:
            c = self.s.recv(n - len(buf))
            if not c:
                raise EOFError('the proxy closed the connection')
            buf += c
        return buf

    def send(self, api, body):
        """Send body as api v0; returns (the answer body, its reader after the header)."""
        self.corr += 1
        hdr = struct.pack('>hhi', api, 0, self.corr) + struct.pack('>h', 7) + b'kz-peer' + b'\0'
        self.s.sendall(struct.pack('>i', len(hdr) + len(body)) + hdr + body)
        size = struct.unpack('>i', self.recv_exact(4))[0]
        resp = self.recv_exact(size)
        r = Reader(resp)
        if r.i32() != self.corr:
            raise HarnessError('correlation id mismatch')
        r.tags()
        return resp, r

    def check_mac(self, api, body, resp, start, end):
        nonce = body[12:28]
        want = hmac.new(SECRET, b'R' + struct.pack('>hh', api, 0) + nonce + resp[start:end], hashlib.sha256).digest()
        if not hmac.compare_digest(want, resp[end:]):
            raise HarnessError('the answer\'s MAC does not verify')

    def hello(self, body):
        """Send a KzHello; returns (node id, started_ms) of the answer."""
        resp, r = self.send(KZ_HELLO, body)
        start = r.o
        node = r.i32()
        r.cstr(), r.cstr(), r.i32()
        started = r.i64()
        if len(resp) - r.o > 32:
            r.tags()
        self.check_mac(KZ_HELLO, body, resp, start, r.o)
        return node, started

    def call(self, body):
        """Send body as KzWalAppend v0; returns [(error, message)] per partition."""
        resp, r = self.send(KZ_WAL_APPEND, body)
        start = r.o
        out = []
        for _ in range(r.uv() - 1):
            r.i32()  # throttle
            for _ in range(r.uv() - 1):
                r.i32()
                err = r.i16()
                r.i64(), r.i64(), r.i64()
                for _ in range(r.uv() - 1):
                    r.i32(), r.cstr()
                m = r.cstr()
                out.append((err, m.decode() if m else None))
        self.check_mac(KZ_WAL_APPEND, body, resp, start, r.o)
        return out


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        v = self.b[self.o:self.o + n]
        if len(v) != n:
            raise HarnessError('answer truncated at byte %d' % self.o)
        self.o += n
        return v

    def i16(self): return struct.unpack('>h', self.take(2))[0]
    def i32(self): return struct.unpack('>i', self.take(4))[0]
    def i64(self): return struct.unpack('>q', self.take(8))[0]

    def uv(self):
        n = shift = 0
        while True:
            c = self.take(1)[0]
            n |= (c & 0x7f) << shift
            shift += 7
            if not c & 0x80:
                return n

    def cstr(self):
        n = self.uv() - 1
        return None if n < 0 else self.take(n)

    def tags(self):
        for _ in range(self.uv()):
            self.uv()
            self.take(self.uv())


def expect(what, got, code, text):
    if len(got) != 1 or got[0][0] != code or text not in (got[0][1] or ''):
        raise HarnessError('%s: answered %s, want error %d with "%s"' % (what, got, code, text))
    print('%s: refused, error %d: %s' % (what, code, got[0][1]))


def expect_closed(what, fn):
    try:
        fn()
    except (EOFError, ConnectionResetError):
        print('%s: connection closed' % what)
        return
    raise HarnessError('%s: answered' % what)


def main():
    workdir = tempfile.mkdtemp(prefix='kz-replay-')
    root = os.path.join(workdir, 'wal-store')
    try:
        # A window long enough that the first request is still inside it after b1's restart.
        extra = {'peer_secret': SECRET.decode(), 'peer_replay_window_ms': 120000,
                 'wal': {'store': {'backend': 'local', 'root': root, 'no_fsync': True}, 'key_prefix': 'wal/'},
                 'acls': ACLS}
        with kz.TestBed(topics={TOPIC: 1}) as tb, \
                kz.ProxyCluster(tb, zones=('a', 'b', 'b'), extra_config=extra, workdir=workdir) as pc:
            tb.set_leader(TOPIC, 0, 2)
            b, b2 = pc.proxy_in('b', 0), pc.proxy_in('b', 1)
            sender = pc.proxy_in('a').node_id
            batch = record_batch([b'one', b'two', b'three'])
            for rel in ('wal/kztest/obj1', 'other/kztest/obj1'):
                os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
                with open(os.path.join(root, rel), 'wb') as f:
                    f.write(b'\0' * 64 + batch)
            crc = crc32c(batch)

            def now_ms():
                return int(time.time() * 1000)

            def req(key=b'wal/kztest/obj1', ts=None, principal=b'alice', receiver=None):
                ts = now_ms() if ts is None else ts
                receiver = b.node_id if receiver is None else receiver
                return wal_append(key, receiver, sender, ts, os.urandom(16), 64, len(batch), crc, principal=principal)

            peer = Peer(b.kafka_port)
            # KzHello: sealed for b1, or for "unknown" (discovery's first question): answered.
            node, started = peer.hello(hello(b.node_id, sender, now_ms()))
            node2, _ = peer.hello(hello(UNKNOWN_RECEIVER, sender, now_ms()))
            if node != b.node_id or node2 != b.node_id:
                raise HarnessError('KzHello answered as node %d / %d, want %d' % (node, node2, b.node_id))
            print('KzHello sealed for node %d and for "unknown": answered' % b.node_id)
            first = req()
            # The leader may not be known to proxy b at once: retry fresh requests until one appends.
            deadline = time.monotonic() + 20
            while True:
                got = peer.call(first)
                if got[0][0] == 0:
                    break
                if time.monotonic() > deadline:
                    raise HarnessError('a fresh KzWalAppend was answered %s' % got)
                time.sleep(0.2)  # a poll interval, not synchronisation: the condition is re-checked
                first = req()
            print('fresh KzWalAppend: appended (3 records)')
            gets0 = kz.metrics(b).sum('kzproxy_objwal_requests_total', 0, op='get')
            gets0_b2 = kz.metrics(b2).sum('kzproxy_objwal_requests_total', 0, op='get')

            expect('the same KzWalAppend replayed', peer.call(first), INVALID_REQUEST, 'a replay')
            # The captured request sent to the other proxy of the zone: its MAC names b1.
            expect_closed('the same KzWalAppend replayed to b2 (node %d)' % b2.node_id,
                          lambda: Peer(b2.kafka_port).call(first))
            expect('key outside the prefix', peer.call(req(b'other/kztest/obj1')), INVALID_REQUEST,
                   'prefix "wal/"')
            expect('key with ".."', peer.call(req(b'wal/../other/kztest/obj1')), INVALID_REQUEST, '".."')
            expect('ts 5 minutes old', peer.call(req(ts=now_ms() - 300000)), NOT_LEADER_OR_FOLLOWER, 'clock')
            expect('ts 5 minutes ahead', peer.call(req(ts=now_ms() + 300000)), NOT_LEADER_OR_FOLLOWER, 'clock')
            expect('ts before b1 started', peer.call(req(ts=started - 1)), NOT_LEADER_OR_FOLLOWER,
                   'before this proxy started')
            expect('principal mallory', peer.call(req(principal=b'mallory')), TOPIC_AUTHORIZATION_FAILED,
                   'may not produce')
            expect('anonymous producer', peer.call(req(principal=None)), TOPIC_AUTHORIZATION_FAILED,
                   'may not produce')
            # A wrong MAC: the connection closes.
            bad = bytearray(req())
            bad[-1] ^= 1
            expect_closed('wrong MAC', lambda: peer.call(bytes(bad)))
            expect_closed('KzWalAppend sealed for the unknown receiver',
                          lambda: Peer(b.kafka_port).call(req(receiver=UNKNOWN_RECEIVER)))
            expect_closed('KzHello sealed for b2, sent to b1',
                          lambda: Peer(b.kafka_port).hello(hello(b2.node_id, sender, now_ms())))

            m = kz.metrics(b)
            counts = {r: m.sum('kzproxy_peer_rejected_total', 0, reason=r)
                      for r in ('replay', 'bad_key', 'clock_skew', 'nonce_cache_full', 'before_start')}
            want = {'replay': 1, 'bad_key': 2, 'clock_skew': 2, 'nonce_cache_full': 0, 'before_start': 1}
            if counts != want:
                raise HarnessError('kzproxy_peer_rejected_total %s, want %s' % (counts, want))
            gets = m.sum('kzproxy_objwal_requests_total', 0, op='get') - gets0
            if gets != 0:
                raise HarnessError('refused requests read the store: %d GETs' % gets)
            denied = m.sum('kzproxy_peer_acl_denied_partitions_total', 0)
            if denied != 2:
                raise HarnessError('kzproxy_peer_acl_denied_partitions_total %s, want 2' % denied)
            if m.sum('kzproxy_peer_auth_failures_total', 0) != 3:
                raise HarnessError('kzproxy_peer_auth_failures_total %s, want 3'
                                   % m.sum('kzproxy_peer_auth_failures_total', 0))
            m2 = kz.metrics(b2)
            if m2.sum('kzproxy_peer_auth_failures_total', 0) != 1:
                raise HarnessError('b2: kzproxy_peer_auth_failures_total %s, want 1'
                                   % m2.sum('kzproxy_peer_auth_failures_total', 0))
            if m2.sum('kzproxy_objwal_requests_total', 0, op='get') != gets0_b2:
                raise HarnessError('b2 read the store for a request sealed for b1')
            log = b.log_text()
            if 'a replay' not in log or 'synchronise' not in log:
                raise HarnessError('no refusal logged; log tail:\n%s' % kz.log_tail(b))

            # b1 restarts: its seen-nonce set is empty, but the first request
            # (still inside the window) was stamped before the new process began.
            pc.stop_proxy(b)
            pc.restart_proxy(b)
            if now_ms() - int.from_bytes(first[4:12], 'big') >= 120000:
                raise HarnessError('the restart took longer than the replay window; the test proves nothing')
            expect('the first KzWalAppend replayed to b1 after its restart', Peer(b.kafka_port).call(first),
                   NOT_LEADER_OR_FOLLOWER, 'before this proxy started')
            mr = kz.metrics(b)
            if mr.sum('kzproxy_peer_rejected_total', 0, reason='before_start') != 1:
                raise HarnessError('after the restart: before_start %s, want 1'
                                   % mr.sum('kzproxy_peer_rejected_total', 0, reason='before_start'))
            if mr.sum('kzproxy_objwal_requests_total', 0, op='get') != 0:
                raise HarnessError('the restarted proxy read the store for a replay')

            rows = kz.consume_all(b.kafka, TOPIC, config={'client.id': 'kz-test-replay-reader'}, timeout=30)
            values = sorted(r[3] for r in rows)
            if values != sorted([b'one', b'two', b'three']):
                raise HarnessError('the partition holds %s, want the 3 records once' % values)
            print('peer replay: replay, 2 bad keys, 2 clock skews, 1 before start refused (counted %s); the same '
                  'request at b2 and sealed for "unknown" failed authentication; 2 partitions denied by the ACL '
                  '(mallory, anonymous); after b1 restarted the replay was refused (before_start); the partition '
                  'holds its 3 records once; no GET for a refused request' % counts)
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
