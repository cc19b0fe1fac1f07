"""A scripted Kafka backend for tests of what librdkafka's mock cluster cannot
show: it speaks just enough of the protocol (ApiVersions v0, Metadata v10,
and whatever handlers a test registers) for a kzproxy to take it as its
backend, on kernel-chosen ports, one thread per broker connection.

It stands in for a kzharness.TestBed (bootstrap, brokers, bootstrap_list), so
a kzharness.ProxyCluster runs against it unchanged. Every request a broker
receives is recorded in FakeKafka.received as (broker id, api key, version)
so a test can check what the proxy sent where.

Only the wire helpers and the two requests a kzproxy sends on its own are
here; a test registers handler(broker, version, reader) -> response body for
the ApiKeys it exercises.
"""
import select
import socket
import struct
import threading
import uuid

import kzharness as kz

API_METADATA = 3
API_APIVERSIONS = 18


# ---- wire helpers (big-endian, compact forms for flexible versions) ----

def uvarint(n):
    out = b''
    while n >= 0x80:
        out += bytes([(n & 0x7f) | 0x80])
        n >>= 7
    return out + bytes([n])


def cstr(s):
    """Compact (nullable) string: None is null."""
    if s is None:
        return uvarint(0)
    if isinstance(s, str):
        s = s.encode()
    return uvarint(len(s) + 1) + s


def carray(items):
    """Compact array of already-encoded items."""
    return uvarint(len(items) + 1) + b''.join(items)


def i8(v): return struct.pack('>b', v)
def i16(v): return struct.pack('>h', v)
def i32(v): return struct.pack('>i', v)
def i64(v): return struct.pack('>q', v)


def tag_section(tags):
    """tags: list of (tag, raw bytes), in tag order."""
    return uvarint(len(tags)) + b''.join(uvarint(t) + uvarint(len(v)) + v for t, v in tags)


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        v = self.b[self.o:self.o + n]
        if len(v) != n:
            raise kz.HarnessError('message truncated at byte %d' % self.o)
        self.o += n
        return v

    def i8(self): return struct.unpack('>b', self.take(1))[0]
    def i16(self): return struct.unpack('>h', self.take(2))[0]
    def i32(self): return struct.unpack('>i', self.take(4))[0]
    def i64(self): return struct.unpack('>q', self.take(8))[0]
    def uuid(self): return self.take(16)

    def uv(self):
        n = shift = 0
        for _ in range(5):
            c = self.take(1)[0]
            n |= (c & 0x7f) << shift
            shift += 7
            if not c & 0x80:
                return n
        raise kz.HarnessError('uvarint longer than 5 bytes')

    def string(self, flexible):
        n = self.uv() - 1 if flexible else self.i16()
        return None if n < 0 else self.take(n)

    def cstr(self):
        return self.string(True)

    def array_len(self, flexible):
        return self.uv() - 1 if flexible else self.i32()

    def tags(self):
        """Returns {tag: raw bytes}."""
        out = {}
        for _ in range(self.uv()):
            t = self.uv()
            out[t] = self.take(self.uv())
        return out

    def done(self):
        return self.o == len(self.b)


def recv_exact(sock, n):
    buf = b''
    while len(buf) < n:
        c = sock.recv(n - len(buf))
        if not c:
            return None
        buf += c
    return buf


# ---- the fake cluster ----

class FakeTopic:
    def __init__(self, name, partitions, leaders, topic_id=None):
        self.name = name
        self.partitions = partitions
        self.leaders = leaders  # partition -> broker id
        self.topic_id = topic_id if topic_id is not None else uuid.uuid4().bytes


class FakeKafka:
    """Brokers 1..n, broker i in zone zones[(i-1) % len(zones)].

    versions: {api key: (min, max)} advertised besides ApiVersions 0-0 and
    Metadata 0-10 (Metadata is always answered at v10, with topic ids).
    handlers: {api key: fn(broker id, version, Reader) -> response body bytes}.
    flexible: {api key: first flexible version} for the registered handlers.
    """

    __test__ = False

    def __init__(self, zones=('a', 'b', 'c'), brokers=3, topics=(), versions=None, handlers=None,
                 flexible=None, cluster_id='fake-cluster'):
        self.zones = tuple(zones)
        self.broker_cnt = brokers
        self.topics = list(topics)
        self.versions = dict(versions or {})
        self.handlers = dict(handlers or {})
        self.flexible = dict(flexible or {})
        self.cluster_id = cluster_id
        self.brokers = []
        self.bootstrap = None
        self.received = []
        self._lock = threading.Lock()
        self._socks = []
        self._threads = []
        self._stop = threading.Event()

    @property
    def bootstrap_list(self):
        return [b.address for b in self.brokers]

    def topic(self, name):
        return next(t for t in self.topics if t.name == name)

    def requests(self, api_key):
        with self._lock:
            return [r for r in self.received if r[1] == api_key]

    # -- lifecycle
    def start(self):
        for i in range(1, self.broker_cnt + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('127.0.0.1', 0))
            s.listen(64)
            self._socks.append(s)
            self.brokers.append(kz.Broker(i, '127.0.0.1', s.getsockname()[1],
                                          self.zones[(i - 1) % len(self.zones)]))
            t = threading.Thread(target=self._accept_loop, args=(i, s), daemon=True,
                                 name='fakekafka-%d' % i)
            t.start()
            self._threads.append(t)
        self.bootstrap = ','.join(self.bootstrap_list)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        for s in self._socks:
            s.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- serving
    def _accept_loop(self, broker_id, lsock):
        conns = {}
        try:
            while not self._stop.is_set():
                r, _, _ = select.select([lsock] + list(conns), [], [], 0.1)
                for s in r:
                    if s is lsock:
                        c, _ = lsock.accept()
                        conns[c] = True
                        continue
                    if not self._serve_one(broker_id, s):
                        del conns[s]
                        s.close()
        finally:
            for c in conns:
                c.close()

    def _serve_one(self, broker_id, sock):
        """Read one request and answer it; False when the peer closed."""
        head = recv_exact(sock, 4)
        if head is None:
            return False
        frame = recv_exact(sock, struct.unpack('>i', head)[0])
        if frame is None:
            return False
        r = Reader(frame)
        key, version, corr = r.i16(), r.i16(), r.i32()
        r.string(False)  # client id
        if key == API_APIVERSIONS:
            body, flex_resp = self._apiversions(), False
        else:
            first_flex = 9 if key == API_METADATA else self.flexible.get(key, 99)
            flex = version >= first_flex
            if flex:
                r.tags()
            if key == API_METADATA:
                body = self._metadata(version, r)
            elif key in self.handlers:
                body = self.handlers[key](broker_id, version, r)
            else:
                return False  # not served: close, as a broker would
            flex_resp = flex
        with self._lock:
            self.received.append((broker_id, key, version))
        resp = i32(corr) + (uvarint(0) if flex_resp else b'') + body
        sock.sendall(i32(len(resp)) + resp)
        return True

    def _apiversions(self):
        keys = {API_APIVERSIONS: (0, 0), API_METADATA: (0, 10)}
        keys.update(self.versions)
        return i16(0) + i32(len(keys)) + b''.join(
            i16(k) + i16(lo) + i16(hi) for k, (lo, hi) in sorted(keys.items()))

    def _metadata(self, version, r):
        if version != 10:
            raise kz.HarnessError('fakekafka answers Metadata only at v10, asked v%d' % version)
        brokers = [i32(b.id) + cstr(b.host) + i32(b.port) + cstr(b.rack) + uvarint(0) for b in self.brokers]
        topics = []
        for t in self.topics:
            parts = [i16(0) + i32(p) + i32(t.leaders[p]) + i32(3) + carray([i32(t.leaders[p])]) +
                     carray([i32(t.leaders[p])]) + carray([]) + uvarint(0) for p in range(t.partitions)]
            topics.append(i16(0) + cstr(t.name) + t.topic_id + i8(0) + carray(parts) + i32(-2**31) + uvarint(0))
        return (i32(0) + carray(brokers) + cstr(self.cluster_id) + i32(1) + carray(topics) + i32(-2**31) +
                uvarint(0))
