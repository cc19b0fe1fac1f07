#!/usr/bin/python3
"""OffsetForLeaderEpoch, DeleteRecords, ListGroups, DescribeCluster, Fetch v13
(topic ids) and the KIP-951 CurrentLeader tag, end to end through kzproxy.

librdkafka's mock cluster has none of OffsetForLeaderEpoch, DeleteRecords,
ListGroups or topic ids, so the backend here is fakekafka: three scripted
brokers in zones a, b, c that answer at the versions each scenario advertises
and record which broker got which partition. Run twice: a backend below
Fetch v13 (the proxy maps topic ids to names, and translates OffsetForLeaderEpoch
v4 to v3 and DeleteRecords v2 to v1) and one at v13 (ids pass through).
The requests are hand-built frames; every answer is checked field by field.
"""
import os
import socket
import struct
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakekafka as fk  # noqa: E402
import kzharness as kz  # noqa: E402
from fakekafka import carray, cstr, i8, i16, i32, i64, tag_section, uvarint  # noqa: E402

FETCH, LISTGROUPS, DELETERECORDS, OFLE, DESCRIBECLUSTER, METADATA = 1, 16, 21, 23, 60, 3
TOPIC_PARTS = {'fk': 6, 'fk2': 2}


def leader_of(p):
    return p % 3 + 1


# ---------------- the scripted brokers ----------------

class Script:
    """Handlers for the fake brokers, and what they saw."""

    def __init__(self, cluster_ref):
        self.cluster = cluster_ref  # filled in once the FakeKafka exists
        self.seen = []              # (broker, api, version, [(topic name or id, partition)])
        self.listgroups_errors = {}  # broker -> error code

    def topic_name(self, key, ids):
        if not ids:
            return key.decode()
        for t in self.cluster[0].topics:
            if t.topic_id == key:
                return t.name
        return None

    def fetch(self, broker, version, r):
        flex, ids = version >= 12, version >= 13
        r.i32(), r.i32(), r.i32(), r.i32(), r.i8(), r.i32(), r.i32()
        asked, topics = [], []
        for _ in range(r.array_len(flex)):
            key = r.uuid() if ids else r.string(flex)
            parts = []
            for _ in range(r.array_len(flex)):
                p = r.i32()
                r.i32(), r.i64(), r.i32(), r.i64(), r.i32()
                r.tags()
                parts.append(p)
                asked.append((key, p))
            r.tags()
            topics.append((key, parts))
        for _ in range(r.array_len(flex)):
            r.uuid() if ids else r.string(flex)
            for _ in range(r.array_len(flex)):
                r.i32()
            r.tags()
        r.cstr()
        r.tags()
        assert r.done(), 'Fetch v%d: bytes left over' % version
        self.seen.append((broker, FETCH, version, asked))
        out = []
        for key, parts in topics:
            name = self.topic_name(key, ids)
            pout = []
            for p in parts:
                ok = name is not None and leader_of(p) == broker
                tags = []
                if p == 0:
                    tags.append((0, i32(2) + i64(77) + uvarint(0)))      # DivergingEpoch
                tags.append((1, i32(broker) + i32(3) + uvarint(0)))       # CurrentLeader: a real id
                tags.append((9, b'\xde\xad'))                              # unknown: must be dropped
                pout.append(i32(p) + i16(0 if ok else 6) + i64(1000 * broker + p) + i64(-1) + i64(0) +
                            uvarint(0) + i32(-1) + uvarint(0) + tag_section(tags))
            out.append((key if ids else cstr(key)) + carray(pout) + uvarint(0))
        return i32(0) + i16(0) + i32(0) + carray(out) + uvarint(0)

    def ofle(self, broker, version, r):
        flex = version >= 4
        if version >= 3:
            assert r.i32() == -1, 'OffsetForLeaderEpoch: replica id not the consumer\'s'
        asked, out = [], []
        for _ in range(r.array_len(flex)):
            name = r.string(flex)
            pout = []
            for _ in range(r.array_len(flex)):
                p = r.i32()
                cur = r.i32() if version >= 2 else -1
                epoch = r.i32()
                if flex:
                    r.tags()
                asked.append((name, p))
                assert cur == 3 and epoch == 2, (cur, epoch)
                pout.append(i16(0) + i32(p) + (i32(3) if version >= 1 else b'') + i64(1000 * broker + p) +
                            (uvarint(0) if flex else b''))
            if flex:
                r.tags()
            out.append((cstr(name) if flex else i16(len(name)) + name) +
                       (carray(pout) if flex else i32(len(pout)) + b''.join(pout)) + (uvarint(0) if flex else b''))
        if flex:
            r.tags()
        assert r.done()
        self.seen.append((broker, OFLE, version, asked))
        return ((i32(0) if version >= 2 else b'') + (carray(out) if flex else i32(len(out)) + b''.join(out)) +
                (uvarint(0) if flex else b''))

    def deleterecords(self, broker, version, r):
        flex = version >= 2
        asked, out = [], []
        for _ in range(r.array_len(flex)):
            name = r.string(flex)
            pout = []
            for _ in range(r.array_len(flex)):
                p, off = r.i32(), r.i64()
                if flex:
                    r.tags()
                asked.append((name, p, off))
                pout.append(i32(p) + i64(off) + i16(0) + (uvarint(0) if flex else b''))
            if flex:
                r.tags()
            out.append((cstr(name) if flex else i16(len(name)) + name) +
                       (carray(pout) if flex else i32(len(pout)) + b''.join(pout)) + (uvarint(0) if flex else b''))
        assert r.i32() == 5000, 'DeleteRecords timeout not passed on'
        if flex:
            r.tags()
        assert r.done()
        self.seen.append((broker, DELETERECORDS, version, asked))
        return i32(0) + (carray(out) if flex else i32(len(out)) + b''.join(out)) + (uvarint(0) if flex else b'')

    def listgroups(self, broker, version, r):
        flex = version >= 3
        states = []
        if version >= 4:
            states = [r.string(True) for _ in range(r.array_len(True))]
        if flex:
            r.tags()
        assert r.done()
        self.seen.append((broker, LISTGROUPS, version, states))
        err = self.listgroups_errors.get(broker, 0)
        groups = [] if err else [b'g-%d' % broker]
        def s(x):
            return cstr(x) if flex else i16(len(x)) + x
        items = [s(g) + s(b'consumer') + (s(b'Stable') if version >= 4 else b'') + (uvarint(0) if flex else b'')
                 for g in groups]
        return ((i32(1) if version >= 1 else b'') + i16(err) + (carray(items) if flex else i32(len(items)) + b''.join(items)) +
                (uvarint(0) if flex else b''))


# ---------------- the client side ----------------

def call(sock, api, version, corr, body, flexible):
    hdr = struct.pack('>hhi', api, version, corr) + struct.pack('>h', 8) + b'kz-tests' + (b'\0' if flexible else b'')
    sock.sendall(struct.pack('>i', len(hdr) + len(body)) + hdr + body)
    head = fk.recv_exact(sock, 4)
    if head is None:
        raise kz.HarnessError('proxy closed the connection on %d v%d' % (api, version))
    r = fk.Reader(fk.recv_exact(sock, struct.unpack('>i', head)[0]))
    assert r.i32() == corr, 'correlation id mismatch'
    if flexible:
        r.tags()
    return r


def apiversions(sock):
    r = call(sock, 18, 0, 1, b'', False)
    assert r.i16() == 0
    out = {}
    for _ in range(r.i32()):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        out[k] = (lo, hi)
    return out


def metadata_leaders(sock):
    """Metadata v1 as the client sees it: {(topic, partition): proxy id}, and the broker ids."""
    r = call(sock, METADATA, 1, 2, i32(-1), False)
    brokers = []
    for _ in range(r.i32()):
        brokers.append(r.i32())
        r.string(False), r.i32(), r.string(False)
    r.i32()  # controller
    leaders = {}
    for _ in range(r.i32()):
        r.i16()
        name = r.string(False).decode()
        r.i8()
        for _ in range(r.i32()):
            r.i16()
            p, leader = r.i32(), r.i32()
            for _ in range(2):
                for _ in range(r.i32()):
                    r.i32()
            leaders[(name, p)] = leader
    return leaders, brokers


def check_fetch(s, script, cluster, version, leaders, backend_fetch_max):
    ids = version >= 13
    t = cluster.topic('fk')
    order = [4, 0, 5, 1]
    unknown = uuid.uuid4().bytes
    parts = b''.join(i32(p) + i32(-1) + i64(0) + i32(-1) + i64(-1) + i32(1 << 20) + uvarint(0) for p in order)
    topics = [(t.topic_id if ids else cstr('fk')) + uvarint(len(order) + 1) + parts + uvarint(0)]
    if ids:
        topics.append(unknown + uvarint(2) + i32(0) + i32(-1) + i64(0) + i32(-1) + i64(-1) + i32(1 << 20) +
                      uvarint(0) + uvarint(0))
    body = (i32(-1) + i32(10) + i32(1) + i32(1 << 20) + i8(0) + i32(0) + i32(-1) + carray(topics) + carray([]) +
            cstr('') + uvarint(0))
    del script.seen[:]
    r = call(s, FETCH, version, 10 + version, body, True)
    r.i32()
    assert r.i16() == 0 and r.i32() == 0
    assert r.uv() - 1 == len(topics)
    key = r.uuid() if ids else r.cstr()
    assert key == (t.topic_id if ids else b'fk'), key
    assert r.uv() - 1 == len(order)
    for p in order:
        assert r.i32() == p, 'partitions out of request order'
        err, hw = r.i16(), r.i64()
        r.i64(), r.i64()
        assert r.uv() == 0  # aborted: null
        assert r.i32() == -1, 'preferred read replica names a broker'
        assert r.uv() == 0  # records: null
        tags = r.tags()
        assert err == 0 and hw == 1000 * leader_of(p) + p, (p, err, hw)
        assert sorted(tags) == ([0, 1] if p == 0 else [1]), 'partition %d tags %s' % (p, sorted(tags))
        cl = fk.Reader(tags[1])
        lid, lep = cl.i32(), cl.i32()
        assert lid == leaders[('fk', p)] and lep == 3, \
            'CurrentLeader of fk-%d is %d epoch %d, Metadata says %d' % (p, lid, lep, leaders[('fk', p)])
        if p == 0:
            assert tags[0] == i32(2) + i64(77) + b'\0', 'DivergingEpoch changed'
    r.tags()
    if ids:
        assert r.uuid() == unknown and r.uv() == 2 and r.i32() == 0
        assert r.i16() == 100, 'unknown topic id not answered UNKNOWN_TOPIC_ID'
        r.i64(), r.i64(), r.i64(), r.uv(), r.i32(), r.uv(), r.tags()
        r.tags()
    r.tags()
    assert r.done()
    up = min(version, backend_fetch_max)
    sent = sorted((b, v) for b, api, v, _ in script.seen if api == FETCH)
    assert sent == [(1, up), (2, up), (3, up)], sent
    for b, _, v, asked in script.seen:
        for key, p in asked:
            assert leader_of(p) == b, 'fk-%d sent to broker %d' % (p, b)
            if v >= 13:
                assert key == t.topic_id
            else:
                assert key == b'fk', 'broker below v13 not asked by name: %r' % (key,)
    print('Fetch v%d -> backend v%d: %d partitions merged in order, CurrentLeader names proxies%s' %
          (version, up, len(order), ', unknown id -> UNKNOWN_TOPIC_ID' if ids else ''))


def check_ofle(s, script, backend_max):
    want = [('fk', 5), ('fk2', 0), ('fk', 0), ('fk', 3), ('nope', 0)]
    by_topic = []
    for name, p in want:
        if by_topic and by_topic[-1][0] == name:
            by_topic[-1][1].append(p)
        else:
            by_topic.append((name, [p]))
    for version in (4, 2):
        flex = version >= 4
        del script.seen[:]
        tops = []
        for name, ps in by_topic:
            pp = [i32(p) + i32(3) + i32(2) + (uvarint(0) if flex else b'') for p in ps]
            tops.append((cstr(name) if flex else i16(len(name)) + name.encode()) +
                        (carray(pp) if flex else i32(len(pp)) + b''.join(pp)) + (uvarint(0) if flex else b''))
        body = ((i32(-1) if version >= 3 else b'') + (carray(tops) if flex else i32(len(tops)) + b''.join(tops)) +
                (uvarint(0) if flex else b''))
        r = call(s, OFLE, version, 30 + version, body, flex)
        r.i32()
        assert r.array_len(flex) == len(by_topic)
        for name, ps in by_topic:
            assert r.string(flex) == name.encode()
            assert r.array_len(flex) == len(ps)
            for p in ps:
                err, part, epoch, end = r.i16(), r.i32(), r.i32(), r.i64()
                if flex:
                    r.tags()
                assert part == p, 'partitions out of request order'
                if name == 'nope':
                    assert err == 3 and end == -1, (err, end)
                else:
                    assert err == 0 and epoch == 3 and end == 1000 * leader_of(p) + p, (name, p, err, epoch, end)
            if flex:
                r.tags()
        if flex:
            r.tags()
        assert r.done()
        up = min(version, backend_max)
        for b, api, v, asked in script.seen:
            assert v == up, 'OffsetForLeaderEpoch v%d sent as v%d, want v%d' % (version, v, up)
            for name, p in asked:
                assert leader_of(p) == b, '%s-%d sent to broker %d' % (name, p, b)
        assert sorted(b for b, *_ in script.seen) == [1, 3], script.seen  # leaders of fk-5,fk2-0,fk-0,fk-3
        print('OffsetForLeaderEpoch v%d -> backend v%d: split over brokers 1 and 3, merged in order' % (version, up))


def check_deleterecords(s, script, backend_max):
    want = [(1, 10), (3, 30), (2, 20)]  # leaders 2, 1, 3
    for version in (2, 0):
        flex = version >= 2
        del script.seen[:]
        pp = [i32(p) + i64(off) + (uvarint(0) if flex else b'') for p, off in want]
        top = ((cstr('fk') if flex else i16(2) + b'fk') + (carray(pp) if flex else i32(len(pp)) + b''.join(pp)) +
               (uvarint(0) if flex else b''))
        body = (carray([top]) if flex else i32(1) + top) + i32(5000) + (uvarint(0) if flex else b'')
        r = call(s, DELETERECORDS, version, 40 + version, body, flex)
        r.i32()
        assert r.array_len(flex) == 1 and r.string(flex) == b'fk' and r.array_len(flex) == len(want)
        for p, off in want:
            part, low, err = r.i32(), r.i64(), r.i16()
            if flex:
                r.tags()
            assert (part, low, err) == (p, off, 0), (part, low, err)
        if flex:
            r.tags()
            r.tags()
        assert r.done()
        up = min(version, backend_max)
        got = sorted((b, v, tuple(a)) for b, api, v, a in script.seen)
        assert got == [(1, up, ((b'fk', 3, 30),)), (2, up, ((b'fk', 1, 10),)), (3, up, ((b'fk', 2, 20),))], got
        print('DeleteRecords v%d -> backend v%d: one partition to each leader, merged in order' % (version, up))


def check_listgroups(s, script):
    for version in (4, 0):
        flex = version >= 3
        body = (carray([cstr('Stable')]) if version >= 4 else b'') + (uvarint(0) if flex else b'')
        for failing in ({}, {2: 14}):
            script.listgroups_errors = failing
            del script.seen[:]
            r = call(s, LISTGROUPS, version, 50 + version, body, flex)
            if version >= 1:
                assert r.i32() == 1, 'throttle time not merged'
            err = r.i16()
            groups = []
            for _ in range(r.array_len(flex)):
                g = r.string(flex)
                assert r.string(flex) == b'consumer'
                if version >= 4:
                    assert r.string(flex) == b'Stable'
                if flex:
                    r.tags()
                groups.append(g)
            if flex:
                r.tags()
            assert r.done()
            assert sorted(b for b, *_ in script.seen) == [1, 2, 3], 'not every broker asked'
            if version >= 4:
                assert all(st == [b'Stable'] for *_, st in script.seen), 'states filter not passed on'
            if failing:
                assert err == 14 and groups == [b'g-1', b'g-3'], (err, groups)
            else:
                assert err == 0 and groups == [b'g-1', b'g-2', b'g-3'], (err, groups)
        print('ListGroups v%d: fanned out to 3 brokers; merged, and with broker 2 loading: error 14 + the rest'
              % version)
    script.listgroups_errors = {}


def check_listgroups_second(port, script):
    """The zone's other proxies list no groups (clients ask every proxy and
    would see each group once per proxy otherwise)."""
    s2 = socket.create_connection(('127.0.0.1', port), timeout=20)
    del script.seen[:]
    r = call(s2, LISTGROUPS, 4, 70, carray([]) + uvarint(0), True)
    r.i32()
    err, n = r.i16(), r.array_len(True)
    s2.close()
    assert err == 0 and n == 0 and not script.seen, (err, n, script.seen)
    print('ListGroups to the zone\'s second proxy: no groups, no broker asked (the first proxy lists them)')


def check_describecluster(s, zone_proxies):
    for version in (0, 1):
        body = i8(0) + (i8(1) if version >= 1 else b'') + uvarint(0)
        r = call(s, DESCRIBECLUSTER, version, 60 + version, body, True)
        assert r.i32() == 0 and r.i16() == 0 and r.cstr() is None
        if version >= 1:
            assert r.i8() == 1
        assert r.cstr() == b'fake-cluster'
        controller = r.i32()
        brokers = []
        for _ in range(r.uv() - 1):
            brokers.append((r.i32(), r.cstr(), r.i32(), r.cstr()))
            r.tags()
        assert r.i32() == -2**31
        r.tags()
        assert r.done()
        want = sorted((p.node_id, b'127.0.0.1', p.kafka_port, b'b') for p in zone_proxies)
        assert sorted(brokers) == want, (brokers, want)
        assert controller in [p.node_id for p in zone_proxies], controller
    r = call(s, DESCRIBECLUSTER, 1, 62, i8(0) + i8(2) + uvarint(0), True)
    assert r.i32() == 0 and r.i16() == 114, 'controllers endpoint not refused with MISMATCHED_ENDPOINT_TYPE'
    print('DescribeCluster v0/v1: the zone-b proxies, backend cluster id; controllers -> MISMATCHED_ENDPOINT_TYPE')


def scenario(fetch_max, ofle_max, dr_max):
    cluster_ref = []
    script = Script(cluster_ref)
    topics = [fk.FakeTopic(n, c, {p: leader_of(p) for p in range(c)}) for n, c in TOPIC_PARTS.items()]
    backend = fk.FakeKafka(
        topics=topics,
        versions={FETCH: (4, fetch_max), OFLE: (0, ofle_max), DELETERECORDS: (0, dr_max), LISTGROUPS: (0, 4)},
        handlers={FETCH: script.fetch, OFLE: script.ofle, DELETERECORDS: script.deleterecords,
                  LISTGROUPS: script.listgroups},
        flexible={FETCH: 12, OFLE: 4, DELETERECORDS: 2, LISTGROUPS: 3})
    cluster_ref.append(backend)
    print('--- backend: Fetch 4-%d, OffsetForLeaderEpoch 0-%d, DeleteRecords 0-%d' % (fetch_max, ofle_max, dr_max))
    with backend, kz.ProxyCluster(backend, zones=('a', 'b', 'c'), per_zone=2) as pc:
        zone_b = [p for p in pc.proxies if p.zone == 'b']
        s = socket.create_connection(('127.0.0.1', zone_b[0].kafka_port), timeout=20)
        v = apiversions(s)
        for k, want in ((FETCH, (4, 13)), (OFLE, (0, 4)), (DELETERECORDS, (0, 2)), (LISTGROUPS, (0, 4)),
                        (DESCRIBECLUSTER, (0, 1))):
            assert v.get(k) == want, 'ApiKey %d advertised %s, want %s' % (k, v.get(k), want)
        leaders, brokers = metadata_leaders(s)
        assert sorted(brokers) == sorted(p.node_id for p in zone_b)
        check_fetch(s, script, backend, 13, leaders, fetch_max)
        check_fetch(s, script, backend, 12, leaders, fetch_max)
        check_ofle(s, script, ofle_max)
        check_deleterecords(s, script, dr_max)
        check_listgroups(s, script)
        check_listgroups_second(zone_b[1].kafka_port, script)
        check_describecluster(s, zone_b)
        s.close()


def main():
    scenario(fetch_max=12, ofle_max=3, dr_max=1)
    scenario(fetch_max=13, ofle_max=4, dr_max=2)


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
