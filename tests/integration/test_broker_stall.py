#!/usr/bin/python3
"""A broker whose response frame claims far more than it sends.

fakekafka's broker 1 answers a ListOffsets with the 4-byte size of a 400 MiB
response, the correlation id and a few bytes, then nothing more on that
connection. kzproxy must not reserve the 400 MiB on the broker's word: its
address space (VmSize) and RSS stay small while it waits (untouched pages of
a reservation add no RSS, so VmSize is what shows one). At the request's
deadline (limits.upstream_timeout_ms) the client gets a retriable error for
the partition, not a crash, and the proxy goes on serving. Then a second
broker answers with a size over limits.max_response_bytes: the request fails
at once and the log names the broker and the limit.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakekafka as fk  # noqa: E402
import kzharness as kz  # noqa: E402
from fakekafka import i16, i32, i64  # noqa: E402

LISTOFFSETS = 2
CLAIM = 400 << 20
TIMEOUT_MS = 2000
MAX_RESPONSE = 512 << 20  # the default, set explicitly
NOT_LEADER_OR_FOLLOWER = 6


class StallingKafka(fk.FakeKafka):
    """ListOffsets to broker 1: a 400 MiB claim, then silence; to broker 2: a
    frame over max_response_bytes; to broker 3: a real answer."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.stalled = set()
        self.claims = []  # (broker, claimed size)

    def _serve_one(self, broker_id, sock):
        if sock in self.stalled:
            # Read and drop whatever else the proxy sends here; answer nothing.
            try:
                data = sock.recv(65536)
            except OSError:
                data = b''
            if not data:
                self.stalled.discard(sock)
                return False
            return True
        head = fk.recv_exact(sock, 4)
        if head is None:
            return False
        frame = fk.recv_exact(sock, struct.unpack('>i', head)[0])
        if frame is None:
            return False
        r = fk.Reader(frame)
        key, version, corr = r.i16(), r.i16(), r.i32()
        if key == LISTOFFSETS and broker_id in (1, 2):
            size = CLAIM if broker_id == 1 else MAX_RESPONSE + 1
            with self._lock:
                self.received.append((broker_id, key, version))
                self.claims.append((broker_id, size))
            sock.sendall(i32(size) + i32(corr) + b'\0' * 16)
            self.stalled.add(sock)
            return True
        # Anything else: fakekafka's own answer, from the bytes already read.
        return super()._serve_one(broker_id, Replay(i32(len(frame)) + frame, sock))


class Replay:
    """A socket for fakekafka's _serve_one whose reads return bytes already read."""

    def __init__(self, data, real):
        self.data, self.real = data, real

    def recv(self, n):
        out, self.data = self.data[:n], self.data[n:]
        return out

    def sendall(self, b):
        self.real.sendall(b)


def listoffsets(broker, version, r):
    """A real ListOffsets v1 answer: offset 1000 * broker + partition."""
    r.i32()
    out = []
    for _ in range(r.i32()):
        name = r.string(False)
        parts = []
        for _ in range(r.i32()):
            p = r.i32()
            r.i64()
            parts.append(i32(p) + i16(0) + i64(-1) + i64(1000 * broker + p))
        out.append(i16(len(name)) + name + i32(len(parts)) + b''.join(parts))
    return i32(len(out)) + b''.join(out)


def call(sock, api, version, corr, body):
    hdr = struct.pack('>hhi', api, version, corr) + struct.pack('>h', 8) + b'kz-tests'
    sock.sendall(struct.pack('>i', len(hdr) + len(body)) + hdr + body)
    head = fk.recv_exact(sock, 4)
    if head is None:
        raise kz.HarnessError('proxy closed the connection on ApiKey %d v%d' % (api, version))
    r = fk.Reader(fk.recv_exact(sock, struct.unpack('>i', head)[0]))
    assert r.i32() == corr, 'correlation id mismatch'
    return r


def list_offset(sock, corr, partition):
    """ListOffsets v1 for one partition of 'fk': (error, offset)."""
    body = i32(-1) + i32(1) + i16(2) + b'fk' + i32(1) + i32(partition) + i64(-1)
    r = call(sock, LISTOFFSETS, 1, corr, body)
    assert r.i32() == 1 and r.string(False) == b'fk' and r.i32() == 1
    p, err, _, off = r.i32(), r.i16(), r.i64(), r.i64()
    assert p == partition and r.done()
    return err, off


def vm_kib(pid, field):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise kz.HarnessError('no %s for pid %d' % (field, pid))


def main():
    # Partition p is led by broker p + 1.
    topic = fk.FakeTopic('fk', 3, {0: 1, 1: 2, 2: 3})
    backend = StallingKafka(topics=[topic], versions={LISTOFFSETS: (0, 1)}, handlers={LISTOFFSETS: listoffsets})
    extra = {'limits': {'upstream_timeout_ms': TIMEOUT_MS, 'max_response_bytes': MAX_RESPONSE}}
    with backend, kz.ProxyCluster(backend, zones=('a', 'b', 'c'), per_zone=1, extra_config=extra) as pc:
        proxy = pc.proxy_in('a')
        s = socket.create_connection(('127.0.0.1', proxy.kafka_port), timeout=30)
        err, off = list_offset(s, 1, 2)
        assert (err, off) == (0, 3002), (err, off)
        vm0, rss0 = vm_kib(proxy.pid, 'VmSize'), kz.rss_kib(proxy)

        # Broker 1 claims 400 MiB and stalls.
        t0 = time.monotonic()
        body = i32(-1) + i32(1) + i16(2) + b'fk' + i32(1) + i32(0) + i64(-1)
        hdr = struct.pack('>hhi', LISTOFFSETS, 1, 2) + struct.pack('>h', 8) + b'kz-tests'
        s.sendall(struct.pack('>i', len(hdr) + len(body)) + hdr + body)
        kz.wait_until(lambda: backend.claims, 10, 'broker 1 to get the ListOffsets')
        time.sleep(0.5)  # the proxy has read the claim and waits for the body
        vm1, rss1 = vm_kib(proxy.pid, 'VmSize'), kz.rss_kib(proxy)
        print('while broker 1 stalls after claiming %d MiB: VmSize %+d KiB, RSS %+d KiB'
              % (CLAIM >> 20, vm1 - vm0, rss1 - rss0))
        assert vm1 - vm0 < 64 * 1024, 'the proxy reserved %d KiB on the broker\'s word' % (vm1 - vm0)
        assert rss1 - rss0 < 64 * 1024, 'the proxy\'s RSS grew by %d KiB' % (rss1 - rss0)
        head = fk.recv_exact(s, 4)
        elapsed = time.monotonic() - t0
        assert head is not None, 'proxy closed the client connection instead of answering'
        r = fk.Reader(fk.recv_exact(s, struct.unpack('>i', head)[0]))
        assert r.i32() == 2 and r.i32() == 1 and r.string(False) == b'fk' and r.i32() == 1
        p, err = r.i32(), r.i16()
        assert p == 0 and err == NOT_LEADER_OR_FOLLOWER, (p, err)
        assert elapsed >= TIMEOUT_MS / 1000.0, 'failed after %.2fs, before its %d ms deadline' % (elapsed, TIMEOUT_MS)
        assert proxy.running, 'proxy died:\n' + kz.log_tail(proxy)
        print('ListOffsets for fk-0 failed after %.1fs (deadline %d ms) with NOT_LEADER_OR_FOLLOWER'
              % (elapsed, TIMEOUT_MS))
        assert 'broker 1 (127.0.0.1:%d): ListOffsets request timed out' % backend.brokers[0].port \
            in proxy.log_text(), kz.log_tail(proxy)

        # Broker 2: a frame over max_response_bytes fails at once, named.
        t0 = time.monotonic()
        err, _ = list_offset(s, 3, 1)
        elapsed = time.monotonic() - t0
        assert err == NOT_LEADER_OR_FOLLOWER, err
        assert elapsed < TIMEOUT_MS / 1000.0, 'an over-limit frame waited %.2fs' % elapsed
        want = ('broker 2 (127.0.0.1:%d) sent a response frame of %d bytes, over limits.max_response_bytes (%d)'
                % (backend.brokers[1].port, MAX_RESPONSE + 1, MAX_RESPONSE))
        kz.wait_until(lambda: want in proxy.log_text(), 5, 'the log line naming broker 2 and the limit')
        print('a %d-byte frame from broker 2 failed at once: "%s"' % (MAX_RESPONSE + 1, want))

        # Still serving.
        err, off = list_offset(s, 4, 2)
        assert (err, off) == (0, 3002), (err, off)
        vm2 = vm_kib(proxy.pid, 'VmSize')
        print('proxy still serves; VmSize %+d KiB over the start' % (vm2 - vm0))
        s.close()


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
