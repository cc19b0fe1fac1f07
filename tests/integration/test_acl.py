#!/usr/bin/python3
"""Per-principal authorization (acls) on the mock backend (issue 14, item 4).

Two SASL PLAIN users: alice may produce, consume and describe topics with the
prefix "app-a." and use group "ga"; bob the same with "app-b." and "gb".
Three zones (brokers 1/2/3 in zones a/b/c lead partition p on broker
p % 3 + 1), one proxy per zone, the WAL path on (peer_secret, a local
store): through the zone-a proxy, partition 0 of a topic goes direct and
partitions 1 and 2 through a WAL object and a peer.

Each user, on raw connections (client libraries hide the error codes or
never send a request for a topic Metadata refused), asks for its own topic
and the other user's:
  Metadata [own, other]: own listed, other TOPIC_AUTHORIZATION_FAILED;
      Metadata of all topics lists no topic of the other prefix;
  Produce to every partition: own acknowledged, other 29 in every slot;
  Fetch, ListOffsets: own served, other 29 in every slot;
  OffsetCommit in the own group succeeds, in the other's group every
      partition gets GROUP_AUTHORIZATION_FAILED (30); in the own group for
      the other's topic (alone, and next to the own topic) every partition
      of that topic gets 29, the own topic is committed;
  OffsetFetch in the own group for both topics: own served, other 29 per
      partition; of all the group's topics (null): the other's topic, which
      the group has offsets for (committed on the backend), is left out;
  FindCoordinator of the other's group: 30.
Admin requests (when the backend offers them: real Kafka, not librdkafka's
mock), for alice, each naming an own and a denied resource, every response
parsed to its end (flexible versions where the API has them):
  CreateTopics v5, CreatePartitions v2, DeleteTopics v4: own topic done by
      the backend, the other's topic 29 in its slot (the two merged);
  DescribeConfigs v4: own topic described, other topic 29, the cluster-wide
      broker resource CLUSTER_AUTHORIZATION_FAILED (31);
  IncrementalAlterConfigs v1, AlterConfigs v1: the other's topic 29;
  DescribeAcls v2, CreateAcls v1 (two creations), DeleteAcls v2: 31.
Every refusal is counted by the test; kzproxy_acl_denied_total must match
per operation and resource. The backend's end offsets show that only the
allowed batches landed (nothing denied reached the direct or WAL path), and
the produce path counters show both paths carried the allowed produce.
"""
import os
import shutil
import socket
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402
from kzharness import HarnessError  # noqa: E402

PARTS = 3
USERS = {'alice': ('alice-pw-1', 'app-a.', 'ga'), 'bob': ('bob-pw-2', 'app-b.', 'gb')}
RECORDS_PER_BATCH = 3


def acl_config():
    rules = []
    for user, (_pw, prefix, group) in USERS.items():
        rules.append({'principal': user, 'operations': ['produce', 'consume', 'describe', 'create', 'delete', 'alter'],
                      'resources': [{'type': 'topic', 'name': prefix, 'pattern': 'prefix'}]})
        rules.append({'principal': user, 'operations': ['consume', 'describe', 'delete'],
                      'resources': [{'type': 'group', 'name': group}]})
    # describe only (no create): Metadata must not auto-create these
    rules.append({'principal': 'alice', 'operations': ['describe'],
                  'resources': [{'type': 'topic', 'name': 'ro-a.', 'pattern': 'prefix'}]})
    rules.append({'principal': 'alice', 'operations': ['produce', 'describe'],
                  'resources': [{'type': 'transactional_id', 'name': 'tx-ok-a'}]})
    return rules


# ---- the wire, non-flexible versions only ----

def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def zigzag(n):
    z = (n << 1) ^ (n >> 63)
    out = b''
    while z >= 0x80:
        out += bytes([(z & 0x7f) | 0x80])
        z >>= 7
    return out + bytes([z])


def batch(values):
    recs = b''
    for i, v in enumerate(values):
        r = b'\0' + zigzag(0) + zigzag(i) + zigzag(-1) + zigzag(len(v)) + v + zigzag(0)
        recs += zigzag(len(r)) + r
    tail = struct.pack('>hiqqqhii', 0, len(values) - 1, 1700000000000, 1700000000000, -1, -1, -1,
                       len(values)) + recs
    body = struct.pack('>ib', -1, 2) + struct.pack('>I', crc32c(tail)) + tail
    return struct.pack('>qi', 0, len(body)) + body


def s16(b):
    return struct.pack('>h', len(b)) + b


def arr(items):
    return struct.pack('>i', len(items)) + b''.join(items)


def uv(n):
    out = b''
    while n >= 0x80:
        out += bytes([(n & 0x7f) | 0x80])
        n >>= 7
    return out + bytes([n])


def cs(b):
    """compact string (flexible versions); None: null"""
    return b'\0' if b is None else uv(len(b) + 1) + b


def carr(items):
    return uv(len(items) + 1) + b''.join(items)


T = b'\0'  # no tagged fields


class Rd:
    def __init__(self, b):
        self.b, self.o = b, 0

    def uv(self):
        n, shift = 0, 0
        while True:
            c = self.take(1)[0]
            n |= (c & 0x7f) << shift
            if c < 0x80:
                return n
            shift += 7

    def cs(self):
        n = self.uv()
        return None if n == 0 else self.take(n - 1).decode()

    def carr(self):
        return self.uv() - 1

    def tags(self):
        for _ in range(self.uv()):
            self.uv()
            self.take(self.uv())

    def done(self, what):
        if self.o != len(self.b):
            raise HarnessError('%s: %d bytes left after the response' % (what, len(self.b) - self.o))

    def take(self, n):
        v = self.b[self.o:self.o + n]
        if len(v) != n:
            raise HarnessError('response truncated at byte %d' % self.o)
        self.o += n
        return v

    def i8(self): return struct.unpack('>b', self.take(1))[0]
    def i16(self): return struct.unpack('>h', self.take(2))[0]
    def i32(self): return struct.unpack('>i', self.take(4))[0]
    def i64(self): return struct.unpack('>q', self.take(8))[0]

    def s(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self.take(n)


class Conn:
    def __init__(self, addr, user, pw):
        host, port = addr.rsplit(':', 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.corr = 0
        if user is None:  # a backend broker's plaintext listener
            return
        r = self.call(17, 1, s16(b'PLAIN'))
        if r.i16() != 0:
            raise HarnessError('SaslHandshake PLAIN refused')
        token = b'\0' + user.encode() + b'\0' + pw.encode()
        r = self.call(36, 0, struct.pack('>i', len(token)) + token)
        if r.i16() != 0:
            raise HarnessError('%s: SASL PLAIN login failed: %s' % (user, r.s()))

    def call(self, api, version, body, flex=False):
        self.corr += 1
        hdr = struct.pack('>hhi', api, version, self.corr) + s16(b'kz-test-acl') + (T if flex else b'')
        self.sock.sendall(struct.pack('>i', len(hdr) + len(body)) + hdr + body)
        size = struct.unpack('>i', self.recv(4))[0]
        r = Rd(self.recv(size))
        if r.i32() != self.corr:
            raise HarnessError('correlation id mismatch')
        if flex:
            r.tags()
        return r

    def api_versions(self):
        r = self.call(18, 0, b'')
        if r.i16() != 0:
            raise HarnessError('ApiVersions failed')
        return {k: (lo, hi) for k, lo, hi in (struct.unpack('>hhh', r.take(6)) for _ in range(r.i32()))}

    def recv(self, n):
        buf = b''
        while len(buf) < n:
            c = self.sock.recv(n - len(buf))
            if not c:
                raise HarnessError('the proxy closed the connection')
            buf += c
        return buf

    def close(self):
        self.sock.close()

    # Metadata v1: {topic: error}, and the partitions of each
    def metadata(self, topics):
        body = struct.pack('>i', -1) if topics is None else arr([s16(t.encode()) for t in topics])
        r = self.call(3, 1, body)
        for _ in range(r.i32()):
            r.i32(), r.s(), r.i32(), r.s()
        r.i32()
        out = {}
        for _ in range(r.i32()):
            err, name, _internal = r.i16(), r.s(), r.i8()
            for _ in range(r.i32()):
                r.i16(), r.i32(), r.i32()
                for _ in range(r.i32()):
                    r.i32()
                for _ in range(r.i32()):
                    r.i32()
            out[name] = err
        return out

    # Produce v3, acks=all: {partition: error}
    def produce(self, topic, values, txn=None):
        parts = [struct.pack('>i', p) + struct.pack('>i', len(b)) + b
                 for p, b in ((p, batch(values(p))) for p in range(PARTS))]
        body = ns(txn) + struct.pack('>hi', -1, 30000) + arr([s16(topic.encode()) + arr(parts)])
        r = self.call(0, 3, body)
        out = {}
        for _ in range(r.i32()):
            r.s()
            for _ in range(r.i32()):
                p, err = r.i32(), r.i16()
                r.i64(), r.i64()
                out[p] = err
        return out

    # Fetch v4 from offset 0: {partition: (error, records bytes)}
    def fetch(self, topic):
        parts = [struct.pack('>iqi', p, 0, 1 << 20) for p in range(PARTS)]
        body = struct.pack('>iiiib', -1, 100, 1, 1 << 22, 0) + arr([s16(topic.encode()) + arr(parts)])
        r = self.call(1, 4, body)
        r.i32()
        out = {}
        for _ in range(r.i32()):
            r.s()
            for _ in range(r.i32()):
                p, err = r.i32(), r.i16()
                r.i64(), r.i64()
                n = r.i32()
                for _ in range(max(n, 0)):
                    r.i64(), r.i64()
                rec = r.bytes_()
                out[p] = (err, len(rec or b''))
        return out

    # ListOffsets v1, latest: {partition: (error, offset)}
    def list_offsets(self, topic):
        parts = [struct.pack('>iq', p, -1) for p in range(PARTS)]
        r = self.call(2, 1, struct.pack('>i', -1) + arr([s16(topic.encode()) + arr(parts)]))
        out = {}
        for _ in range(r.i32()):
            r.s()
            for _ in range(r.i32()):
                p, err = r.i32(), r.i16()
                r.i64()
                out[p] = (err, r.i64())
        return out

    # OffsetCommit v2 (simple commit, no generation): {partition: error}, or
    # with several topics {topic: {partition: error}}
    def commit(self, group, topic):
        topics = [topic] if isinstance(topic, str) else topic
        parts = [struct.pack('>iq', p, 1) + s16(b'') for p in range(PARTS)]
        body = s16(group.encode()) + struct.pack('>i', -1) + s16(b'') + struct.pack('>q', -1) + \
            arr([s16(t.encode()) + arr(parts) for t in topics])
        r = self.call(8, 2, body)
        out = {}
        for _ in range(r.i32()):
            t = out.setdefault(r.s(), {})
            for _ in range(r.i32()):
                p = r.i32()
                t[p] = r.i16()
        r.done('OffsetCommit v2')
        return out[topic] if isinstance(topic, str) and list(out) == [topic] else out

    # OffsetFetch v5 (topics None: all the group's): (top-level error,
    # {topic: {partition: (error, offset)}})
    def offset_fetch(self, group, topics):
        body = s16(group.encode()) + (struct.pack('>i', -1) if topics is None else
                                      arr([s16(t.encode()) + arr([struct.pack('>i', p) for p in range(PARTS)])
                                           for t in topics]))
        r = self.call(9, 5, body)
        r.i32()
        out = {}
        for _ in range(r.i32()):
            t = out.setdefault(r.s(), {})
            for _ in range(r.i32()):
                p, off, _epoch, _meta, err = r.i32(), r.i64(), r.i32(), r.s(), r.i16()
                t[p] = (err, off)
        err = r.i16()
        r.done('OffsetFetch v5')
        return err, out

    # FindCoordinator v1, group: error
    def find_group(self, group):
        r = self.call(10, 1, s16(group.encode()) + b'\0')
        r.i32()
        return r.i16()


def ns(b):
    return struct.pack('>h', -1) if b is None else s16(b)


def metadata_v4(c, topics, allow_create):
    """Metadata v4 naming topics: {topic: error}."""
    r = c.call(3, 4, arr([s16(t.encode()) for t in topics]) + struct.pack('>b', 1 if allow_create else 0))
    r.i32()
    for _ in range(r.i32()):
        r.i32(), r.s(), r.i32(), r.s()
    r.s(), r.i32()
    out = {}
    for _ in range(r.i32()):
        err, name, _internal = r.i16(), r.s(), r.i8()
        for _ in range(r.i32()):
            r.i16(), r.i32(), r.i32()
            for _ in range(r.i32()):
                r.i32()
            for _ in range(r.i32()):
                r.i32()
        out[name] = err
    r.done('Metadata v4')
    return out


def backend_topics(tb):
    """Every topic of the backend (Metadata of all topics creates none)."""
    c = Conn(tb.brokers[0].address, None, None)
    try:
        return set(c.metadata(None))
    finally:
        c.close()


def list_groups(c):
    """ListGroups v1: (error, [group ids])."""
    r = c.call(16, 1, b'')
    r.i32()
    err = r.i16()
    groups = [(r.s(), r.s())[0] for _ in range(r.i32())]
    r.done('ListGroups v1')
    return err, groups


def review_fixes(tb, addr, topics, denied):
    """The security review's findings: Metadata auto-creation needs create,
    ListGroups lists only describable groups, the topics inside
    TxnOffsetCommit, OffsetDelete and ConsumerGroupHeartbeat are checked, an
    empty transactional id is checked, a null one is refused."""
    own, other = topics['alice'], topics['bob']
    c = Conn(addr, 'alice', USERS['alice'][0])
    try:
        have = c.api_versions()
        # Metadata v4 asking for auto-creation: only with create on the topic.
        expect('alice Metadata v4 [ro-a.missing] (describe only)', metadata_v4(c, ['ro-a.missing'], True),
               {'ro-a.missing': 3})
        got = metadata_v4(c, ['ro-a.missing2', 'app-a.auto'], True)
        if got.get('ro-a.missing2') != 3 or got.get('app-a.auto') not in (0, 3, 5):
            raise HarnessError('alice Metadata v4 [ro-a.missing2, app-a.auto]: %r' % got)
        bt = backend_topics(tb)
        if 'ro-a.missing' in bt or 'ro-a.missing2' in bt:
            raise HarnessError('a topic alice may only describe was auto-created: %r' % sorted(bt))
        # The backend creates app-a.auto when it auto-creates at all (real
        # Kafka here; librdkafka's mock does too): the create-allowed half of
        # the request kept its flag.
        kz.wait_until(lambda: 'app-a.auto' in backend_topics(tb), timeout=20,
                      what='app-a.auto auto-created on the backend', interval=0.2)
        print('Metadata v4 with auto-creation: ro-a.* (describe only) UNKNOWN_TOPIC_OR_PARTITION and not created; '
              'app-a.auto (create allowed) created')

        # ListGroups: only the groups alice may describe.
        if 16 in have:
            all_groups = set()
            for br in tb.brokers:
                bc = Conn(br.address, None, None)
                try:
                    all_groups |= set(list_groups(bc)[1])
                finally:
                    bc.close()
            err, got = list_groups(c)
            want = sorted(g for g in all_groups if g == 'ga')
            expect('alice ListGroups (backend has %s)' % sorted(all_groups), (err, sorted(got)), (0, want))
            if 'gb' not in all_groups:
                raise HarnessError('the backend lists no group gb, the filter is not exercised: %r' % all_groups)
            print('ListGroups: backend groups %s, alice sees %s' % (sorted(all_groups), sorted(got)))
        else:
            print('ListGroups: skipped, the backend does not offer it')

        # TxnOffsetCommit v0 (transactional id and group allowed) for the own
        # topic and the other's: the other's partitions 29 by kzproxy, the
        # own one forwarded (the backend's answer, whatever it is).
        if 28 in have:
            body = s16(b'tx-ok-a') + s16(b'ga') + struct.pack('>qh', 4242, 0) + \
                arr([s16(t.encode()) + arr([struct.pack('>iq', p, 1) + s16(b'') for p in range(PARTS)])
                     for t in (own, other)])
            r = c.call(28, 0, body)
            r.i32()
            got = {}
            for _ in range(r.i32()):
                t = got.setdefault(r.s(), {})
                for _ in range(r.i32()):
                    p = r.i32()
                    t[p] = r.i16()
            r.done('TxnOffsetCommit v0')
            if got.get(other) != {p: 29 for p in range(PARTS)} or sorted(got.get(own, {})) != list(range(PARTS)) \
                    or 29 in got[own].values():
                raise HarnessError('alice TxnOffsetCommit [%s, %s]: %r' % (own, other, got))
            denied['consume', 'topic'] += 1
            print('TxnOffsetCommit: %s 29 per partition, %s forwarded (backend: %r)' % (other, own, got[own]))
        # OffsetDelete v0 in ga for the own topic and the other's.
        if 47 in have:
            body = s16(b'ga') + arr([s16(t.encode()) + arr([struct.pack('>i', p) for p in range(PARTS)])
                                     for t in (own, other)])
            r = c.call(47, 0, body)
            err, _thr = r.i16(), r.i32()
            got = {}
            for _ in range(r.i32()):
                t = got.setdefault(r.s(), {})
                for _ in range(r.i32()):
                    p = r.i32()
                    t[p] = r.i16()
            r.done('OffsetDelete v0')
            if got.get(other) != {p: 29 for p in range(PARTS)}:
                raise HarnessError('alice OffsetDelete [%s, %s]: error %d, %r' % (own, other, err, got))
            denied['consume', 'topic'] += 1
            print('OffsetDelete: %s 29 per partition (top-level error %d, %s: %r)' % (other, err, own, got.get(own)))
        # ConsumerGroupHeartbeat subscribing to a topic alice may not describe.
        if 68 in have:
            v = min(have[68][1], 1)
            body = cs(b'ga') + cs(b'') + struct.pack('>i', 0) + cs(None) + cs(None) + struct.pack('>i', 30000) + \
                carr([cs(own.encode()), cs(other.encode())]) + (cs(None) if v >= 1 else b'') + cs(None) + \
                b'\0' + T
            r = c.call(68, v, body, flex=True)
            got = (r.i32(), r.i16())
            expect('alice ConsumerGroupHeartbeat v%d [%s, %s]' % (v, own, other), got[1], 29)
            denied['describe', 'topic'] += 1
            print('ConsumerGroupHeartbeat v%d subscribing to %s: 29' % (v, other))
        # An empty transactional id is checked like any other.
        expect('alice Produce with transactional id ""', c.produce(own, values_for('alice', 'empty-txn'), txn=b''),
               {p: 53 for p in range(PARTS)})
        denied['produce', 'transactional_id'] += PARTS
    finally:
        c.close()
    # EndTxn with a null transactional id: only the client's connection is closed.
    c = Conn(addr, 'alice', USERS['alice'][0])
    try:
        try:
            c.call(26, 1, ns(None) + struct.pack('>qhb', 1, 0, 1))
            raise HarnessError('EndTxn with a null transactional id was answered')
        except (HarnessError, OSError) as e:
            if 'was answered' in str(e):
                raise
    finally:
        c.close()
    c = Conn(addr, 'alice', USERS['alice'][0])
    try:
        expect('alice Metadata after the refused EndTxn', c.metadata([own]), {own: 0})
    finally:
        c.close()
    print('Produce with transactional id "": 53; EndTxn with a null transactional id: connection closed')


def pass_through_denials(addr, user, other_group, denied):
    """Group and transactional requests for a group / transactional id the
    user may not use: kzproxy answers each itself in the message's format
    (every field parsed to the end), never forwarding it."""
    g = s16(other_group.encode())
    c = Conn(addr, user, USERS[user][0])
    try:
        def done(what, r):
            if r.o != len(r.b):
                raise HarnessError('%s: %d bytes left after the response' % (what, len(r.b) - r.o))

        r = c.call(11, 5, g + struct.pack('>ii', 10000, 30000) + s16(b'') + ns(None) + s16(b'consumer') +
                   arr([s16(b'range') + struct.pack('>i', 0)]))
        got = (r.i32(), r.i16(), r.i32(), r.s(), r.s(), r.s(), r.i32())
        done('JoinGroup v5', r)
        expect('JoinGroup v5 %s' % other_group, got[1:], (30, -1, '', '', '', 0))
        r = c.call(14, 3, g + struct.pack('>i', 1) + s16(b'm') + ns(None) + arr([]))
        got = (r.i32(), r.i16(), r.bytes_())
        done('SyncGroup v3', r)
        expect('SyncGroup v3', got[1:], (30, b''))
        r = c.call(12, 3, g + struct.pack('>i', 1) + s16(b'm') + ns(None))
        got = (r.i32(), r.i16())
        done('Heartbeat v3', r)
        expect('Heartbeat v3', got[1], 30)
        r = c.call(13, 1, g + s16(b'm'))  # the mock backend has LeaveGroup v0-1
        got = (r.i32(), r.i16())
        done('LeaveGroup v1', r)
        expect('LeaveGroup v1', got[1], 30)
        r = c.call(9, 5, g + struct.pack('>i', -1))
        got = (r.i32(), r.i32(), r.i16())
        done('OffsetFetch v5', r)
        expect('OffsetFetch v5', got[1:], (0, 30))
        denied['consume', 'group'] += 5
        # (DescribeGroups: the mock backend lacks it, so kzproxy does not offer it there.)
        r = c.call(22, 1, ns(b'tx-' + user.encode()) + struct.pack('>i', 60000))
        got = (r.i32(), r.i16(), r.i64(), r.i16())
        done('InitProducerId v1', r)
        expect('InitProducerId v1 (transactional id)', got[1:], (53, -1, -1))
        r = c.call(26, 1, s16(b'tx-' + user.encode()) + struct.pack('>qhb', 1, 0, 1))
        got = (r.i32(), r.i16())
        done('EndTxn v1', r)
        expect('EndTxn v1', got[1], 53)
        denied['produce', 'transactional_id'] += 2
        # A transactional Produce (to a topic alice may write) needs the transactional id too.
        expect('Produce with transactional id', c.produce('app-a.orders', values_for(user, 'tx'), txn=b'tx-a'),
               {p: 53 for p in range(PARTS)})
        denied['produce', 'transactional_id'] += PARTS
        # An idempotent producer's InitProducerId (no transactional id) needs no rule.
        # (Real Kafka answers COORDINATOR_LOAD_IN_PROGRESS (14) and the like
        # for a while after it starts: asked again until it is ready.)
        def init_pid():
            r = c.call(22, 1, ns(None) + struct.pack('>i', 60000))
            r.i32()
            return r.i16()
        got, _calls = retry(init_pid, lambda e: e not in (14, 15, 16), 'InitProducerId (idempotent)')
        expect('InitProducerId v1 (idempotent)', got, 0)
    finally:
        c.close()
    print('%s: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetFetch of %s: 30; '
          'InitProducerId, EndTxn, Produce with a transactional id: 53; answered by kzproxy' % (user, other_group))


def values_for(user, topic):
    return lambda p: [('%s>%s:%d:%d' % (user, topic, p, i)).encode() for i in range(RECORDS_PER_BATCH)]


def expect(what, got, want):
    if got != want:
        raise HarnessError('%s: got %r, want %r' % (what, got, want))


def check_user(addr, user, topics, denied):
    pw, prefix, group = USERS[user]
    other_user = [u for u in USERS if u != user][0]
    own, other = topics[user], topics[other_user]
    other_group = USERS[other_user][2]
    c = Conn(addr, user, pw)
    try:
        md = c.metadata([own, other])
        expect('%s Metadata [%s, %s]' % (user, own, other), md, {own: 0, other: 29})
        denied['describe', 'topic'] += 1
        listed = c.metadata(None)
        if other in listed or own not in listed or any(t.startswith(USERS[other_user][1]) for t in listed):
            raise HarnessError('%s: Metadata of all topics lists %s' % (user, sorted(listed)))

        expect('%s Produce %s' % (user, own), c.produce(own, values_for(user, own)), {p: 0 for p in range(PARTS)})
        expect('%s Produce %s' % (user, other), c.produce(other, values_for(user, other)),
               {p: 29 for p in range(PARTS)})
        denied['produce', 'topic'] += PARTS

        got = c.fetch(own)
        if sorted(got) != list(range(PARTS)) or any(e != 0 or n == 0 for e, n in got.values()):
            raise HarnessError('%s Fetch %s: %r' % (user, own, got))
        expect('%s Fetch %s' % (user, other), c.fetch(other), {p: (29, 0) for p in range(PARTS)})
        denied['consume', 'topic'] += PARTS

        lo = c.list_offsets(own)
        if any(e != 0 or off < RECORDS_PER_BATCH for e, off in lo.values()) or len(lo) != PARTS:
            raise HarnessError('%s ListOffsets %s: %r' % (user, own, lo))
        expect('%s ListOffsets %s' % (user, other), c.list_offsets(other), {p: (29, -1) for p in range(PARTS)})
        denied['describe', 'topic'] += PARTS

        expect('%s OffsetCommit %s/%s' % (user, group, own), c.commit(group, own), {p: 0 for p in range(PARTS)})
        expect('%s OffsetCommit %s/%s' % (user, other_group, own), c.commit(other_group, own),
               {p: 30 for p in range(PARTS)})
        denied['consume', 'group'] += 1
        # The topics inside an OffsetCommit / OffsetFetch need consume too
        # (counted once per denied topic of a request).
        expect('%s OffsetCommit %s/%s' % (user, group, other), c.commit(group, other), {p: 29 for p in range(PARTS)})
        expect('%s OffsetCommit %s/[%s, %s]' % (user, group, own, other), c.commit(group, [own, other]),
               {own: {p: 0 for p in range(PARTS)}, other: {p: 29 for p in range(PARTS)}})
        denied['consume', 'topic'] += 2
        expect('%s OffsetFetch %s/[%s, %s]' % (user, group, own, other), c.offset_fetch(group, [own, other]),
               (0, {own: {p: (0, 1) for p in range(PARTS)}, other: {p: (29, -1) for p in range(PARTS)}}))
        denied['consume', 'topic'] += 1
        err, all_topics = c.offset_fetch(group, None)
        # The group has offsets for the other's topic (committed on the
        # backend by main()): left out, not counted, like Metadata's listing.
        # (librdkafka's mock answers an OffsetFetch of all topics with none.)
        want = [] if kz.backend_name() == 'mock' else [own]
        expect('%s OffsetFetch %s/all topics' % (user, group), (err, sorted(all_topics)), (0, want))
        expect('%s FindCoordinator %s' % (user, group), c.find_group(group), 0)
        expect('%s FindCoordinator %s' % (user, other_group), c.find_group(other_group), 30)
        denied['describe', 'group'] += 1
    finally:
        c.close()
    print('%s: own prefix %s served; %s refused in Metadata, Produce, Fetch, ListOffsets, OffsetCommit and '
          'OffsetFetch (hidden from the all-topics OffsetFetch); group %s refused in OffsetCommit and '
          'FindCoordinator' % (user, prefix, other, other_group))


ADMIN_APIS = {19: 5, 20: 4, 37: 2, 32: 4, 44: 1, 33: 1, 29: 2, 30: 1, 31: 2}


def retry(fn, ok, what, timeout=30):
    """fn() until ok(result), at most every 0.2 s (the backend may still be
    settling a new topic): (the last result, how many calls)."""
    calls = []

    def once():
        calls.append(fn())
        return ok(calls[-1])
    try:
        kz.wait_until(once, timeout=timeout, what=what, interval=0.2)
    except HarnessError:
        pass
    return calls[-1], len(calls)


def admin_denials(addr, user, topics, denied):
    """Admin requests naming an own and a denied resource: the own one goes
    to the backend, the denied one is answered in its slot by kzproxy, the
    two merged in one response. Only when the backend offers these APIs."""
    pw, prefix, _group = USERS[user]
    other = [t for u, t in topics.items() if u != user][0]
    c = Conn(addr, user, pw)
    try:
        have = c.api_versions()
        missing = [k for k, v in ADMIN_APIS.items() if k not in have or not have[k][0] <= v <= have[k][1]]
        if missing:
            print('admin requests: skipped, the backend does not offer ApiKeys %s at the versions used '
                  '(librdkafka\'s mock has no admin APIs; tests/integration/kafka/test_acl.kafka runs them)'
                  % missing)
            return False
        new, other_new = (prefix + 'new').encode(), (USERS['bob'][1] + 'new').encode()

        # CreateTopics v5 (flexible)
        def create():
            body = carr([cs(t) + struct.pack('>ih', 1, -1) + carr([]) + carr([]) + T for t in (new, other_new)]) + \
                struct.pack('>i', 30000) + b'\0' + T
            r = c.call(19, 5, body, flex=True)
            r.i32()
            out = {}
            for _ in range(r.carr()):
                name, err, _msg = r.cs(), r.i16(), r.cs()
                r.i32(), r.i16()
                for _ in range(max(r.carr(), 0)):
                    r.cs(), r.cs(), r.i8(), r.i8(), r.i8()
                    r.tags()
                r.tags()
                out[name] = err
            r.tags()
            r.done('CreateTopics v5')
            return out
        expect('%s CreateTopics v5' % user, create(), {new.decode(): 0, other_new.decode(): 29})
        denied['create', 'topic'] += 1

        # CreatePartitions v2 (flexible): own new topic to 2 partitions, the other's to 6
        def create_partitions():
            body = carr([cs(t) + struct.pack('>i', n) + b'\0' + T for t, n in ((new, 2), (other.encode(), 6))]) + \
                struct.pack('>i', 30000) + b'\0' + T
            r = c.call(37, 2, body, flex=True)
            r.i32()
            out = {}
            for _ in range(r.carr()):
                name, err, _msg = r.cs(), r.i16(), r.cs()
                r.tags()
                out[name] = err
            r.tags()
            r.done('CreatePartitions v2')
            return out
        got, calls = retry(create_partitions, lambda o: o.get(new.decode()) == 0, 'CreatePartitions of the new topic')
        denied['alter', 'topic'] += calls
        expect('%s CreatePartitions v2' % user, got, {new.decode(): 0, other: 29})

        # DescribeConfigs v4 (flexible): own topic, other topic, the cluster-wide broker default
        body = carr([struct.pack('>b', 2) + cs(topics[user].encode()) + carr([cs(b'retention.ms')]) + T,
                     struct.pack('>b', 2) + cs(other.encode()) + b'\0' + T,
                     struct.pack('>b', 4) + cs(b'') + b'\0' + T]) + b'\0\0' + T
        r = c.call(32, 4, body, flex=True)
        r.i32()
        got = []
        for _ in range(r.carr()):
            err, _msg, rtype, name = r.i16(), r.cs(), r.i8(), r.cs()
            nconf = r.carr()
            for _ in range(nconf):
                r.cs(), r.cs(), r.i8(), r.i8(), r.i8()
                for _ in range(r.carr()):
                    r.cs(), r.cs(), r.i8()
                    r.tags()
                r.i8(), r.cs()
                r.tags()
            r.tags()
            got.append((rtype, name, err, nconf))
        r.tags()
        r.done('DescribeConfigs v4')
        expect('%s DescribeConfigs v4' % user, got, [(2, topics[user], 0, 1), (2, other, 29, 0), (4, '', 31, 0)])
        denied['describe', 'topic'] += 1
        denied['describe', 'cluster'] += 1

        # IncrementalAlterConfigs v1 (flexible): own topic (set), other topic
        body = carr([struct.pack('>b', 2) + cs(t) + carr([cs(b'retention.ms') + b'\0' + cs(b'86400000') + T]) + T
                     for t in (topics[user].encode(), other.encode())]) + b'\0' + T
        r = c.call(44, 1, body, flex=True)
        r.i32()
        got = []
        for _ in range(r.carr()):
            err, _msg, rtype, name = r.i16(), r.cs(), r.i8(), r.cs()
            r.tags()
            got.append((rtype, name, err))
        r.tags()
        r.done('IncrementalAlterConfigs v1')
        expect('%s IncrementalAlterConfigs v1' % user, got, [(2, topics[user], 0), (2, other, 29)])
        denied['alter', 'topic'] += 1

        # AlterConfigs v1 (not flexible): the other's topic only, answered whole by kzproxy
        r = c.call(33, 1, arr([struct.pack('>b', 2) + s16(other.encode()) +
                               arr([s16(b'retention.ms') + s16(b'1000')])]) + b'\0')
        r.i32()
        got = [(r.i16(), r.s(), r.i8(), r.s())[::2] for _ in range(r.i32())]
        r.done('AlterConfigs v1')
        expect('%s AlterConfigs v1' % user, [(e, t) for e, t in got], [(29, 2)])
        denied['alter', 'topic'] += 1

        # DeleteTopics v4 (flexible): own new topic deleted, the other's refused
        body = carr([cs(new), cs(other.encode())]) + struct.pack('>i', 30000) + T
        r = c.call(20, 4, body, flex=True)
        r.i32()
        got = {}
        for _ in range(r.carr()):
            name, err = r.cs(), r.i16()
            r.tags()
            got[name] = err
        r.tags()
        r.done('DeleteTopics v4')
        expect('%s DeleteTopics v4' % user, got, {new.decode(): 0, other: 29})
        denied['delete', 'topic'] += 1

        # The ACL APIs need the cluster: DescribeAcls v2, CreateAcls v1, DeleteAcls v2
        r = c.call(29, 2, b'\x02' + b'\0' + b'\x03' + b'\0' + b'\0' + b'\x01\x01' + T, flex=True)
        got = (r.i32(), r.i16(), r.cs() is not None, r.carr())
        r.tags()
        r.done('DescribeAcls v2')
        expect('%s DescribeAcls v2' % user, got[1:], (31, True, 0))
        acl = b'\x02' + s16(other.encode()) + b'\x03' + s16(b'User:' + user.encode()) + s16(b'*') + b'\x02\x03'
        r = c.call(30, 1, arr([acl, acl]))
        r.i32()
        got = [(r.i16(), r.s())[0] for _ in range(r.i32())]
        r.done('CreateAcls v1')
        expect('%s CreateAcls v1' % user, got, [31, 31])
        flt = b'\x02' + cs(other.encode()) + b'\x03' + cs(None) + cs(None) + b'\x01\x01' + T
        r = c.call(31, 2, carr([flt]) + T, flex=True)
        r.i32()
        got = []
        for _ in range(r.carr()):
            got.append((r.i16(), r.cs() is not None, r.carr()))
            r.tags()
        r.tags()
        r.done('DeleteAcls v2')
        expect('%s DeleteAcls v2' % user, got, [(31, True, 0)])
        denied['describe', 'cluster'] += 1
        denied['alter', 'cluster'] += 2
    finally:
        c.close()
    print('%s: CreateTopics, CreatePartitions, DeleteTopics, DescribeConfigs, IncrementalAlterConfigs: own '
          'resource done by the backend, %s 29 in its slot; broker configs and the ACL APIs 31' % (user, other))
    return True


def commit_on_backend(tb, group, topic):
    """Offsets of topic in group, committed straight on the backend."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({'bootstrap.servers': tb.bootstrap, 'group.id': group, 'enable.auto.commit': False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, 1) for p in range(PARTS)], asynchronous=False)
    finally:
        c.close()


def end_offsets(tb, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({'bootstrap.servers': tb.bootstrap, 'group.id': 'kz-test-acl-check'})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTS)}
    finally:
        c.close()


def main():
    workdir = tempfile.mkdtemp(prefix='kz-acl-')
    try:
        creds = os.path.join(workdir, 'users.json')
        kz.scram_credentials_file(creds, {user: pw for user, (pw, _prefix, _group) in USERS.items()})
        topics = {'alice': 'app-a.orders', 'bob': 'app-b.orders'}
        extra = {'client_sasl': {'mechanisms': ['PLAIN'], 'credentials_file': creds, 'failure_delay_ms': 0},
                 'acls': acl_config(), 'peer_secret': walpath.SECRET,
                 'wal': {'store': walpath.store_config('local', workdir)}}
        with kz.TestBed(topics={t: PARTS for t in topics.values()}) as tb, \
                kz.ProxyCluster(tb, extra_config=extra) as pc:
            p = pc.proxy_in('a')
            before = pc.metrics(p)
            denied = {(o, r): 0 for o in ('produce', 'consume', 'describe', 'create', 'delete', 'alter')
                      for r in ('topic', 'group', 'transactional_id', 'cluster')}
            for user in USERS:
                other = [t for u, t in topics.items() if u != user][0]
                commit_on_backend(tb, USERS[user][2], other)
            for user in USERS:
                check_user(p.kafka, user, topics, denied)
            pass_through_denials(p.kafka, 'alice', 'gb', denied)
            review_fixes(tb, p.kafka, topics, denied)
            admin_denials(p.kafka, 'alice', topics, denied)
            m = pc.metrics(p)
            for (o, r), want in sorted(denied.items()):
                got = m.sum('kzproxy_acl_denied_total', 0, operation=o, resource=r) - \
                    before.sum('kzproxy_acl_denied_total', 0, operation=o, resource=r)
                if got != want:
                    raise HarnessError('kzproxy_acl_denied_total{operation="%s",resource="%s"}: %d, the test '
                                       'counted %d' % (o, r, got, want))
            total = sum(denied.values())
            print('kzproxy_acl_denied_total matches the %d refusals the test counted: %s'
                  % (total, ', '.join('%s/%s %d' % (o, r, n) for (o, r), n in sorted(denied.items()) if n)))
            paths = {k: m.sum('kzproxy_produce_path_partitions_total', 0, path=k) for k in ('direct', 'wal')}
            if paths['direct'] < 2 or paths['wal'] < 4:
                raise HarnessError('the allowed produce did not take both paths: %r' % paths)
            print('allowed produce partitions by path: direct %d, wal %d' % (paths['direct'], paths['wal']))
            for t in topics.values():
                ends = end_offsets(tb, t)
                expect('backend end offsets of %s (only the owner\'s batch may land)' % t, ends,
                       {q: RECORDS_PER_BATCH for q in range(PARTS)})
            print('backend end offsets: %d records per partition: no denied batch landed' % RECORDS_PER_BATCH)
            log = p.log_text()
            if 'acl: denied principal "bob" produce on topic "app-a.orders"' not in log:
                raise HarnessError('no denial log line for bob; log tail:\n%s' % log[-2000:])
            for _u, (pw, _p, _g) in USERS.items():
                if pw in log:
                    raise HarnessError('a password is in the proxy log')
            lines = [ln for ln in log.splitlines() if 'acl: denied' in ln]
            print('denial log lines: %d for %d refusals (rate-limited per principal, operation and resource)'
                  % (len(lines), total))
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    kz.run_test(main, timeout=180)
