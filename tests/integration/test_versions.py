#!/usr/bin/python3
"""Version translation: a client may use any version kzproxy advertises even
where the broker supports only a lower one (librdkafka's mock speaks Produce
up to v7 and Fetch up to v11). Sends hand-built flexible requests (Produce v9,
Fetch v12, Metadata v12, ApiVersions v3) and checks the answers field by field."""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402


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


def record_batch(key, value):
    rec = b'\0' + varint(0) + varint(0) + varint(len(key)) + key + varint(len(value)) + value + varint(0)
    rec = varint(len(rec)) + rec
    after_crc = struct.pack('>hiqqqhii', 0, 0, 1700000000000, 1700000000000, -1, -1, -1, 1) + rec
    body = struct.pack('>ib', -1, 2) + struct.pack('>I', crc32c(after_crc)) + after_crc
    return struct.pack('>qi', 0, len(body)) + body


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        v = self.b[self.o:self.o + n]
        assert len(v) == n, 'response truncated at byte %d' % self.o
        self.o += n
        return v

    def i8(self): return struct.unpack('>b', self.take(1))[0]
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


def call(sock, api, version, corr, body, flexible_resp_hdr=True):
    hdr = struct.pack('>hhi', api, version, corr) + struct.pack('>h', 8) + b'kz-tests' + b'\0'
    sock.sendall(struct.pack('>i', len(hdr) + len(body)) + hdr + body)
    size = struct.unpack('>i', recv_exact(sock, 4))[0]
    r = Reader(recv_exact(sock, size))
    assert r.i32() == corr, 'correlation id mismatch'
    if flexible_resp_hdr:
        r.tags()
    return r


def recv_exact(s, n):
    buf = b''
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise kz.HarnessError('proxy closed the connection')
        buf += c
    return buf


def main():
    with kz.TestBed(zones=('a',), brokers=1, topics={'tv': 1}, backend='mock') as tb, \
            kz.ProxyCluster(tb, zones=('a',)) as pc:
        p = pc.proxy_in('a')
        s = socket.create_connection(('127.0.0.1', p.kafka_port), timeout=20)

        # ApiVersions v3 (response header stays v0 for ApiVersions)
        r = call(s, 18, 3, 1, cstr(b'kz-tests') + cstr(b'1.0') + b'\0', flexible_resp_hdr=False)
        assert r.i16() == 0
        versions = {}
        for _ in range(r.uv() - 1):
            k, lo, hi = r.i16(), r.i16(), r.i16()
            r.tags()
            versions[k] = (lo, hi)
        print('advertised: Produce %s Fetch %s ListOffsets %s Metadata %s' %
              (versions[0], versions[1], versions[2], versions[3]))
        assert versions[0][1] == 9 and versions[1][1] == 12 and versions[3][1] == 12
        # The mock speaks Metadata 0-2: no topic ids, so Fetch v13 is not offered
        # (above). It lacks ListGroups, DeleteRecords and OffsetForLeaderEpoch,
        # which kzproxy forwards: not offered either. DescribeCluster is
        # answered by the proxy itself.
        for k in (16, 21, 23):
            assert k not in versions, 'ApiKey %d advertised though the backend lacks it' % k
        assert versions.get(60) == (0, 1), versions.get(60)

        # Metadata v12: all topics
        r = call(s, 3, 12, 2, uvarint(0) + b'\0' + b'\0' + b'\0')
        r.i32()  # throttle
        brokers = []
        for _ in range(r.uv() - 1):
            brokers.append((r.i32(), r.cstr(), r.i32(), r.cstr()))
            r.tags()
        assert brokers == [(p.node_id, b'127.0.0.1', p.kafka_port, b'a')], brokers
        print('Metadata v12 brokers:', brokers)

        # DescribeCluster v1 against the mock: the zone's proxy, the mock's cluster id
        r = call(s, 60, 1, 5, b'\0' + b'\1' + b'\0')
        assert r.i32() == 0 and r.i16() == 0 and r.cstr() is None and r.i8() == 1
        cluster_id = r.cstr()
        controller = r.i32()
        dc_brokers = []
        for _ in range(r.uv() - 1):
            dc_brokers.append((r.i32(), r.cstr(), r.i32(), r.cstr()))
            r.tags()
        assert r.i32() == -2**31
        assert dc_brokers == brokers and controller == p.node_id, (dc_brokers, controller)
        assert cluster_id, 'no cluster id'
        print('DescribeCluster v1: cluster %s, brokers %s' % (cluster_id.decode(), dc_brokers))

        # Produce v9 (flexible) carrying one record batch
        value = b'translated-%d' % os.getpid()
        batch = record_batch(b'k', value)
        body = (uvarint(0) + struct.pack('>hi', -1, 10000) + uvarint(2) + cstr(b'tv') + uvarint(2) +
                struct.pack('>i', 0) + uvarint(len(batch) + 1) + batch + b'\0' + b'\0' + b'\0')
        r = call(s, 0, 9, 3, body)
        assert r.uv() == 2 and r.cstr() == b'tv' and r.uv() == 2
        part, err, base = r.i32(), r.i16(), r.i64()
        print('Produce v9 -> partition %d error %d base offset %d' % (part, err, base))
        assert (part, err) == (0, 0), 'Produce v9 error %d' % err

        # Fetch v12 from that offset
        body = (struct.pack('>iiiibii', -1, 100, 1, 1 << 20, 0, 0, -1) + uvarint(2) + cstr(b'tv') +
                uvarint(2) + struct.pack('>iiqiqi', 0, -1, base, -1, -1, 1 << 20) + b'\0' + b'\0' +
                uvarint(1) + cstr(b'') + b'\0')
        r = call(s, 1, 12, 4, body)
        r.i32()
        assert r.i16() == 0
        assert r.i32() == 0, 'fetch session not declined'
        assert r.uv() == 2 and r.cstr() == b'tv' and r.uv() == 2
        part, err, hw = r.i32(), r.i16(), r.i64()
        r.i64(), r.i64()
        aborted = r.uv()
        r.i32()
        records = r.cstr()
        print('Fetch v12 -> partition %d error %d high watermark %d, %d record bytes' %
              (part, err, hw, len(records or b'')))
        assert err == 0 and hw == base + 1 and aborted in (0, 1), (err, hw, aborted)  # null or empty
        assert records and value in records, 'produced value not in fetched records: %r' % (records,)
        s.close()
        print('flexible Produce v9 / Fetch v12 / Metadata v12 served over a Produce v7 / Fetch v11 backend')


if __name__ == '__main__':
    kz.run_test(main, timeout=60)
