#!/usr/bin/python3
"""Config requests whose resources name one broker, through kzproxy.

DescribeConfigs, AlterConfigs and IncrementalAlterConfigs resources of type
BROKER (4) or BROKER_LOGGER (8) carry a broker id; through kzproxy that id is
a proxy's node id, which no backend broker answers for. kzproxy answers each
such resource itself with INVALID_REQUEST and a message in its own slot, and
sends the rest (topics, and BROKER "" - the cluster-wide default) to the
backend, byte for byte; the response lists every resource in the request's
order, the backend's results as the backend wrote them (the fake answers in
reverse order to show the reordering). A request with only such resources
never reaches the backend; one without any passes through unchanged.

The backend is fakekafka (librdkafka's mock has no config APIs), at every
version kzproxy forwards: DescribeConfigs 0-4, AlterConfigs 0-2,
IncrementalAlterConfigs 0-1, flexible and not.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakekafka as fk  # noqa: E402
import kzharness as kz  # noqa: E402
from fakekafka import i8, i16, i32, uvarint  # noqa: E402

DESCRIBE, ALTER, INCREMENTAL = 32, 33, 44
FIRST_FLEX = {DESCRIBE: 4, ALTER: 2, INCREMENTAL: 1}
MAX_VERSION = {DESCRIBE: 4, ALTER: 2, INCREMENTAL: 1}
NAMES = {DESCRIBE: 'DescribeConfigs', ALTER: 'AlterConfigs', INCREMENTAL: 'IncrementalAlterConfigs'}
TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
INVALID_REQUEST = 42


def s_(x, flex):
    """A (nullable) string in the version's form."""
    if x is None:
        return uvarint(0) if flex else i16(-1)
    if isinstance(x, str):
        x = x.encode()
    return (uvarint(len(x) + 1) if flex else i16(len(x))) + x


def arr(items, flex):
    if items is None:
        return uvarint(0) if flex else i32(-1)
    return (uvarint(len(items) + 1) if flex else i32(len(items))) + b''.join(items)


def tags(flex):
    return uvarint(0) if flex else b''


# ---------------- requests (client side) ----------------

def resource_bytes(api, version, rtype, name):
    flex = version >= FIRST_FLEX[api]
    head = i8(rtype) + s_(name, flex)
    if api == DESCRIBE:
        keys = None if rtype == TOPIC else [s_('log.retention.ms', flex)]
        return head + arr(keys, flex) + tags(flex)
    cfg = s_('retention.ms', flex) + (i8(0) if api == INCREMENTAL else b'') + s_('1000', flex) + tags(flex)
    return head + arr([cfg], flex) + tags(flex)


def request_body(api, version, resources):
    flex = version >= FIRST_FLEX[api]
    body = arr([resource_bytes(api, version, t, n) for t, n in resources], flex)
    if api == DESCRIBE:
        body += (i8(1) if version >= 1 else b'') + (i8(1) if version >= 3 else b'')
    else:
        body += i8(1)  # validate only
    return body + tags(flex)


# ---------------- the fake brokers ----------------

class Script:
    def __init__(self):
        self.seen = []  # (broker, api, version, raw body, [(type, name)])

    def handler(self, api):
        def h(broker, version, r):
            flex = version >= FIRST_FLEX[api]
            raw = r.b[r.o:]
            res = []
            for _ in range(r.array_len(flex)):
                rtype, name = r.i8(), r.string(flex).decode()
                if api == DESCRIBE:
                    n = r.array_len(flex)
                    for _ in range(max(n, 0)):
                        r.string(flex)
                else:
                    for _ in range(r.array_len(flex)):
                        r.string(flex)
                        if api == INCREMENTAL:
                            r.i8()
                        r.string(flex)
                        if flex:
                            r.tags()
                if flex:
                    r.tags()
                res.append((rtype, name))
            if api == DESCRIBE:
                if version >= 1:
                    assert r.i8() == 1
                if version >= 3:
                    assert r.i8() == 1
            else:
                assert r.i8() == 1
            if flex:
                r.tags()
            assert r.done(), '%s v%d: bytes left over' % (NAMES[api], version)
            self.seen.append((broker, api, version, raw, res))
            # Answer in reverse order: the proxy puts them back in the request's.
            out = [self.result(api, version, t, n) for t, n in reversed(res)]
            return i32(7) + arr(out, flex) + tags(flex)
        return h

    @staticmethod
    def result(api, version, rtype, name):
        flex = version >= FIRST_FLEX[api]
        head = i16(0) + s_(None, flex) + i8(rtype) + s_(name, flex)
        if api != DESCRIBE:
            return head + tags(flex)
        syn = s_('log.retention.ms', flex) + s_('604800000', flex) + i8(5) + tags(flex)
        cfg = (s_('retention.ms', flex) + s_('604800000', flex) + i8(0) +
               (i8(1) if version == 0 else b'') + (i8(5) if version >= 1 else b'') + i8(0) +
               (arr([syn], flex) if version >= 1 else b'') +
               (i8(5) + s_('how long', flex) if version >= 3 else b'') + tags(flex))
        return head + arr([cfg], flex) + tags(flex)


# ---------------- checks ----------------

def call(sock, api, version, corr, body):
    flex = version >= FIRST_FLEX[api]
    hdr = struct.pack('>hhi', api, version, corr) + struct.pack('>h', 8) + b'kz-tests' + (b'\0' if flex else b'')
    sock.sendall(struct.pack('>i', len(hdr) + len(body)) + hdr + body)
    head = fk.recv_exact(sock, 4)
    if head is None:
        raise kz.HarnessError('proxy closed the connection on %s v%d' % (NAMES[api], version))
    r = fk.Reader(fk.recv_exact(sock, struct.unpack('>i', head)[0]))
    assert r.i32() == corr, 'correlation id mismatch'
    if flex:
        r.tags()
    return r


def read_results(r, api, version):
    """[(error, message, type, name, raw result bytes)], throttle."""
    flex = version >= FIRST_FLEX[api]
    throttle = r.i32()
    out = []
    for _ in range(r.array_len(flex)):
        start = r.o
        err, msg, rtype, name = r.i16(), r.string(flex), r.i8(), r.string(flex).decode()
        if api == DESCRIBE:
            for _ in range(r.array_len(flex)):
                r.string(flex), r.string(flex), r.i8()
                if version == 0:
                    r.i8()
                if version >= 1:
                    r.i8()
                r.i8()
                if version >= 1:
                    for _ in range(r.array_len(flex)):
                        r.string(flex), r.string(flex), r.i8()
                        if flex:
                            r.tags()
                if version >= 3:
                    r.i8(), r.string(flex)
                if flex:
                    r.tags()
        if flex:
            r.tags()
        out.append((err, msg, rtype, name, r.b[start:r.o]))
    if flex:
        r.tags()
    assert r.done(), 'bytes left over in the response'
    return out, throttle


def check(sock, script, api, version, corr, proxy_ids):
    mixed = [(TOPIC, 'fk'), (BROKER, str(proxy_ids[0])), (BROKER, ''), (BROKER_LOGGER, str(proxy_ids[1])),
             (TOPIC, 'fk2')]
    # 1. Mixed: the broker-id resources answered here, the rest by the backend.
    del script.seen[:]
    r = call(sock, api, version, corr, request_body(api, version, mixed))
    results, throttle = read_results(r, api, version)
    assert len(script.seen) == 1, script.seen
    _, _, v, raw, sent = script.seen[0]
    backend = [res for res in mixed if not (res[0] in (BROKER, BROKER_LOGGER) and res[1])]
    assert v == version and sent == backend, (v, sent)
    assert raw == request_body(api, version, backend), 'the backend\'s request is not the client\'s, filtered'
    assert throttle == 7, 'throttle time not the backend\'s'
    assert [(t, n) for _, _, t, n, _ in results] == mixed, 'results not in request order: %s' % results
    for (err, msg, t, n, raw), res in zip(results, mixed):
        if res in backend:
            assert err == 0 and raw == Script.result(api, version, t, n), 'backend result for %s changed' % (res,)
        else:
            assert err == INVALID_REQUEST, (res, err)
            assert b'not Kafka brokers' in msg, msg
    # 2. Only broker ids: the backend is not asked.
    del script.seen[:]
    only = [(BROKER, str(proxy_ids[0]))]
    r = call(sock, api, version, corr + 1, request_body(api, version, only))
    results, throttle = read_results(r, api, version)
    assert not script.seen, 'backend asked: %s' % script.seen
    assert throttle == 0 and len(results) == 1
    err, msg, t, n, _ = results[0]
    assert (err, t, n) == (INVALID_REQUEST, BROKER, str(proxy_ids[0])), results
    # 3. None: forwarded unchanged.
    del script.seen[:]
    plain = [(TOPIC, 'fk'), (BROKER, '')]
    r = call(sock, api, version, corr + 2, request_body(api, version, plain))
    results, _ = read_results(r, api, version)
    assert len(script.seen) == 1 and script.seen[0][3] == request_body(api, version, plain)
    assert [(t, n) for _, _, t, n, _ in results] == list(reversed(plain)), 'a plain request was changed'
    print('%s v%d: broker-id resources -> INVALID_REQUEST in their slots, %d others to the backend and '
          'merged in order; broker ids only: backend not asked; none: passed through'
          % (NAMES[api], version, len(backend)))


def main():
    script = Script()
    backend = fk.FakeKafka(
        topics=[fk.FakeTopic('fk', 1, {0: 1}), fk.FakeTopic('fk2', 1, {0: 2})],
        versions={api: (0, MAX_VERSION[api]) for api in FIRST_FLEX},
        handlers={api: script.handler(api) for api in FIRST_FLEX},
        flexible=FIRST_FLEX)
    with backend, kz.ProxyCluster(backend, zones=('a', 'b', 'c'), per_zone=2) as pc:
        zone_a = pc.proxies_in('a')
        s = socket.create_connection(('127.0.0.1', zone_a[0].kafka_port), timeout=20)
        ids = [p.node_id for p in zone_a]
        corr = 100
        for api in (DESCRIBE, ALTER, INCREMENTAL):
            for version in range(MAX_VERSION[api] + 1):
                check(s, script, api, version, corr, ids)
                corr += 10
        s.close()


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
