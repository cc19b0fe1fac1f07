#!/usr/bin/python3
"""What a client of each zone sees (issue 3 acceptance): the virtual cluster.

Test bed: 3 brokers in zones a, b, c, topic t12 (12 partitions, leaders in
every zone); kzproxy with per_zone=2 (node ids 101-102 zone a, 103-104 zone b,
105-106 zone c).

Part 1, zones (must pass): for every zone Z and each proxy of Z, raw Metadata
requests (v1, v2, v5, with kafka-python's protocol classes on a plain socket,
so we know exactly which proxy answers) and FindCoordinator (v0, v1) must
  - name as brokers exactly the proxies of Z (node id, host, port, rack = Z),
  - name a proxy of Z as controller, as every partition's leader, and in
    every replica and ISR list (the leader among the replicas and the ISR),
  - carry the backend's cluster id and the backend's partitions,
  - be identical whichever proxy of Z answers;
and confluent-kafka's list_topics() through each zone-b proxy (a real client
view) must name only zone-b proxies, identically.

Part 2, client.id zone keys: a client that connects to a zone-a proxy with
client.id "app,kz_az=c" (and the other keys and separators of the issue:
automq_az=, warpstream_az=, diskless_az=, zone=; , & | ;) must see the zone-c
proxies. Then, with proxies only in zones a and b, a client naming zone c
falls back to proxies of other zones and kzproxy_zone_fallbacks_total counts
it. A proxy that answers "app,kz_az=c" with the zone-a proxies (the key not
honoured) fails the test, saying so. The test is skipped (exit 77) only when
a tool it needs is missing: kafka-python or confluent-kafka not importable.
"""
import io
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError, SkipTest  # noqa: E402

TOPIC = 't12'
PARTITIONS = 12
GROUP = 'kz-test-md-group'


def _kafka_python():
    try:
        from kafka.protocol.api import RequestHeader  # noqa: F401
        return True
    except ImportError as e:
        raise SkipTest('kafka-python does not import (%s): apt-get install python3-kafka' % e)


def _recv_exact(s, n, deadline, addr):
    buf = b''
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise HarnessError('%s: response not complete in time (%d of %d bytes)' % (addr, len(buf), n))
        s.settimeout(left)
        try:
            chunk = s.recv(n - len(buf))
        except socket.timeout:
            continue
        if not chunk:
            raise HarnessError('%s closed the connection (%d of %d bytes read)' % (addr, len(buf), n))
        buf += chunk
    return buf


def kafka_request(addr, request, client_id='kz-test', timeout=10):
    """Send one request on a fresh connection to addr ("host:port"); return the decoded response."""
    from kafka.protocol.api import RequestHeader
    host, port = addr.rsplit(':', 1)
    corr = 4242
    header = RequestHeader(request, correlation_id=corr, client_id=client_id)  # keep: encode() is a weak method
    msg = header.encode() + request.encode()
    deadline = time.monotonic() + timeout
    what = '%s (client.id %r) to %s' % (type(request).__name__, client_id, addr)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.sendall(struct.pack('>i', len(msg)) + msg)
            size = struct.unpack('>i', _recv_exact(s, 4, deadline, what))[0]
            body = _recv_exact(s, size, deadline, what)
    except OSError as e:
        raise HarnessError('%s: %s' % (what, e))
    got = struct.unpack('>i', body[:4])[0]
    if got != corr:
        raise HarnessError('%s: correlation id %d, sent %d' % (addr, got, corr))
    return request.RESPONSE_TYPE.decode(io.BytesIO(body[4:]))


def metadata(addr, version, client_id='kz-test'):
    """Metadata for TOPIC at version (1, 2 or 5), normalised:
    {brokers: {id: (host, port, rack)}, controller, cluster_id, partitions: {p: (err, leader, replicas, isr)}}."""
    from kafka.protocol.metadata import MetadataRequest
    if version >= 4:
        req = MetadataRequest[version](topics=[TOPIC], allow_auto_topic_creation=False)
    else:
        req = MetadataRequest[version](topics=[TOPIC])
    r = kafka_request(addr, req, client_id)
    brokers = {b[0]: (b[1], b[2], b[3]) for b in r.brokers}
    if len(brokers) != len(r.brokers):
        raise HarnessError('%s: Metadata v%d names a broker id twice: %s' % (addr, version, r.brokers))
    topics = [t for t in r.topics if t[1] == TOPIC]
    if len(topics) != 1:
        raise HarnessError('%s: Metadata v%d has %d entries for %s: %s' % (addr, version, len(topics), TOPIC, r.topics))
    err, _, _, parts = topics[0][:4]
    if err != 0:
        raise HarnessError('%s: Metadata v%d: topic %s error %d' % (addr, version, TOPIC, err))
    partitions = {}
    for p in parts:
        perr, pid, leader, replicas, isr = p[:5]
        partitions[pid] = (perr, leader, tuple(replicas), tuple(isr))
    return {'brokers': brokers, 'controller': r.controller_id,
            'cluster_id': getattr(r, 'cluster_id', None), 'partitions': partitions}


def find_coordinator(addr, version, client_id='kz-test'):
    """(error, node id, host, port) of GROUP's coordinator (FindCoordinator v0/v1)."""
    from kafka.protocol.commit import GroupCoordinatorRequest
    if version == 0:
        r = kafka_request(addr, GroupCoordinatorRequest[0](GROUP), client_id)
    else:
        r = kafka_request(addr, _find_coordinator_v1()(GROUP, 0), client_id)
    return (r.error_code, r.coordinator_id, r.host, r.port)


def _find_coordinator_v1():
    """FindCoordinator v1 with the right response schema: kafka-python 2.0.2's
    GroupCoordinatorResponse_v1 lacks the leading throttle_time_ms."""
    from kafka.protocol.api import Request, Response
    from kafka.protocol.types import Int8, Int16, Int32, Schema, String

    class FindCoordinatorResponseV1(Response):
        API_KEY = 10
        API_VERSION = 1
        SCHEMA = Schema(('throttle_time_ms', Int32), ('error_code', Int16), ('error_message', String('utf-8')),
                        ('coordinator_id', Int32), ('host', String('utf-8')), ('port', Int32))

    class FindCoordinatorRequestV1(Request):
        API_KEY = 10
        API_VERSION = 1
        RESPONSE_TYPE = FindCoordinatorResponseV1
        SCHEMA = Schema(('coordinator_key', String('utf-8')), ('coordinator_type', Int8))

    return FindCoordinatorRequestV1


def expect_zone_view(md, zone_proxies, zone, what):
    """md names exactly zone_proxies (rack zone) as brokers, and only them anywhere else."""
    want = {p.node_id: ('127.0.0.1', p.kafka_port, zone) for p in zone_proxies}
    if md['brokers'] != want:
        raise HarnessError('%s: brokers %s, expected the zone-%s proxies %s' % (what, md['brokers'], zone, want))
    ids = set(want)
    if md['controller'] not in ids:
        raise HarnessError('%s: controller %s is not a zone-%s proxy %s' % (what, md['controller'], zone, sorted(ids)))
    if set(md['partitions']) != set(range(PARTITIONS)):
        raise HarnessError('%s: partitions %s, expected 0..%d' % (what, sorted(md['partitions']), PARTITIONS - 1))
    for pid, (err, leader, replicas, isr) in sorted(md['partitions'].items()):
        if err != 0:
            raise HarnessError('%s: partition %d error %d' % (what, pid, err))
        if leader not in ids:
            raise HarnessError('%s: partition %d leader %s is not a zone-%s proxy %s' % (what, pid, leader, zone, sorted(ids)))
        if not replicas or not set(replicas) <= ids or not isr or not set(isr) <= ids:
            raise HarnessError('%s: partition %d replicas %s / isr %s name brokers that are not zone-%s proxies %s'
                               % (what, pid, replicas, isr, zone, sorted(ids)))
        if leader not in replicas or leader not in isr:
            raise HarnessError('%s: partition %d leader %d is not among its replicas %s and isr %s'
                               % (what, pid, leader, replicas, isr))


def part_zones(tb, pc):
    backend = metadata(tb.brokers[0].address, 2)
    if set(backend['partitions']) != set(range(PARTITIONS)):
        raise HarnessError('backend: partitions %s' % sorted(backend['partitions']))
    real_leaders = {p: v[1] for p, v in backend['partitions'].items()}
    if {tb.broker(b).rack for b in real_leaders.values()} != {'a', 'b', 'c'}:
        raise HarnessError('backend: leaders %s are not in every zone' % real_leaders)
    for zone in ('a', 'b', 'c'):
        zps = pc.proxies_in(zone)
        for version in (1, 2, 5):
            answers = []
            for p in zps:
                md = metadata(p.kafka, version)
                what = 'Metadata v%d from kzproxy %d (zone %s)' % (version, p.node_id, zone)
                expect_zone_view(md, zps, zone, what)
                if version >= 2 and md['cluster_id'] != backend['cluster_id']:
                    raise HarnessError('%s: cluster id %r, backend %r' % (what, md['cluster_id'], backend['cluster_id']))
                answers.append((p, md))
            first_p, first = answers[0]
            for p, md in answers[1:]:
                if md != first:
                    raise HarnessError('zone %s Metadata v%d differs between kzproxy %d and %d:\n  %s\n  %s'
                                       % (zone, version, first_p.node_id, p.node_id, first, md))
        coords = []
        for version in (0, 1):
            for p in zps:
                err, node, host, port = find_coordinator(p.kafka, version)
                what = 'FindCoordinator v%d from kzproxy %d (zone %s)' % (version, p.node_id, zone)
                if err != 0:
                    raise HarnessError('%s: error %d' % (what, err))
                if (node, host, port) not in {(q.node_id, '127.0.0.1', q.kafka_port) for q in zps}:
                    raise HarnessError('%s: coordinator %d at %s:%d is not a zone-%s proxy'
                                       % (what, node, host, port, zone))
                coords.append((node, host, port))
        if len(set(coords)) != 1:
            raise HarnessError('zone %s: FindCoordinator answers differ between proxies/versions: %s' % (zone, coords))
    # A real client's view through each zone-b proxy: confluent-kafka list_topics().
    try:
        from confluent_kafka import Consumer
    except ImportError as e:
        raise SkipTest('confluent_kafka does not import (%s)' % e)
    zps = pc.proxies_in('b')
    views = []
    for p in zps:
        c = Consumer({'bootstrap.servers': p.kafka, 'group.id': 'kz-test-md-%d' % p.node_id,
                      'client.id': 'kz-test-zone-b'})
        try:
            cm = c.list_topics(TOPIC, timeout=10)
        finally:
            c.close()
        t = cm.topics.get(TOPIC)
        if t is None or t.error is not None:
            raise HarnessError('list_topics via kzproxy %d: %s' % (p.node_id, t.error if t else 'no topic'))
        view = {'brokers': {b.id: (b.host, b.port) for b in cm.brokers.values()},
                'partitions': {pid: (pm.leader, tuple(pm.replicas), tuple(pm.isrs)) for pid, pm in t.partitions.items()},
                'controller': cm.controller_id, 'cluster_id': cm.cluster_id}
        want = {q.node_id: ('127.0.0.1', q.kafka_port) for q in zps}
        if view['brokers'] != want:
            raise HarnessError('list_topics via kzproxy %d: brokers %s, expected zone-b proxies %s'
                               % (p.node_id, view['brokers'], want))
        if any(v[0] not in want for v in view['partitions'].values()):
            raise HarnessError('list_topics via kzproxy %d: leaders %s outside the zone-b proxies'
                               % (p.node_id, view['partitions']))
        views.append(view)
    if views[0] != views[1]:
        raise HarnessError('list_topics differs between the zone-b proxies:\n  %s\n  %s' % (views[0], views[1]))
    print('zones: Metadata v1/v2/v5 and FindCoordinator v0/v1 from each of 6 proxies name only their zone\'s '
          'proxies, identical within a zone; confluent list_topics via both zone-b proxies agrees')


CLIENT_IDS = ['app,kz_az=c', 'automq_az=c&app', 'x|warpstream_az=c', 'diskless_az=c;x', 'app=1,zone=c']


def part_client_id(tb, pc):
    """A zone key in client.id picks the proxies a client sees (HarnessError if not)."""
    a = pc.proxy_in('a')
    zone_c = pc.proxies_in('c')
    md = metadata(a.kafka, 5, client_id=CLIENT_IDS[0])
    zone_a_ids = {p.node_id for p in pc.proxies_in('a')}
    if set(md['brokers']) == zone_a_ids:
        raise HarnessError('client.id zone keys are not honoured: kzproxy %d (zone a) answered Metadata v5 with '
                           'client.id %r with the zone-a proxies %s, expected the zone-c proxies %s'
                           % (a.node_id, CLIENT_IDS[0], sorted(zone_a_ids), sorted(p.node_id for p in zone_c)))
    for cid in CLIENT_IDS:
        for version in (1, 5):
            expect_zone_view(metadata(a.kafka, version, client_id=cid), zone_c, 'c',
                             'Metadata v%d from kzproxy %d (zone a) with client.id %r' % (version, a.node_id, cid))
        err, node, host, port = find_coordinator(a.kafka, 1, client_id=cid)
        if err != 0 or node not in {p.node_id for p in zone_c}:
            raise HarnessError('FindCoordinator from kzproxy %d with client.id %r: error %d, node %d (%s:%d), '
                               'expected a zone-c proxy' % (a.node_id, cid, err, node, host, port))
    # A real client naming its zone in client.id.
    from confluent_kafka import Consumer
    c = Consumer({'bootstrap.servers': a.kafka, 'group.id': 'kz-test-md-cid', 'client.id': 'app,kz_az=c'})
    try:
        cm = c.list_topics(TOPIC, timeout=10)
    finally:
        c.close()
    got = {b.id for b in cm.brokers.values()}
    if got != {p.node_id for p in zone_c}:
        raise HarnessError('confluent list_topics via kzproxy %d with client.id "app,kz_az=c": brokers %s, '
                           'expected zone-c proxies %s' % (a.node_id, sorted(got), [p.node_id for p in zone_c]))
    print('client.id: %s through a zone-a proxy all see the zone-c proxies (Metadata, FindCoordinator, '
          'confluent list_topics)' % ', '.join(repr(c) for c in CLIENT_IDS))


def part_fallback(tb):
    """Proxies in zones a and b only; a client naming zone c gets proxies of other zones, counted."""
    with kz.ProxyCluster(tb, zones=('a', 'b'), per_zone=1) as pc2:
        a = pc2.proxy_in('a')
        before = kz.metrics(a).sum('kzproxy_zone_fallbacks_total')
        md = metadata(a.kafka, 5, client_id='app,kz_az=c')
        ids = {p.node_id for p in pc2.proxies}
        if not md['brokers'] or not set(md['brokers']) <= ids:
            raise HarnessError('fallback: a zone-c client of kzproxy %d (no zone-c proxy) got brokers %s, '
                               'expected proxies of other zones %s' % (a.node_id, md['brokers'], sorted(ids)))
        for pid, (err, leader, replicas, isr) in md['partitions'].items():
            if leader not in md['brokers']:
                raise HarnessError('fallback: partition %d leader %s is not among the brokers %s'
                                   % (pid, leader, sorted(md['brokers'])))
        after = kz.metrics(a).sum('kzproxy_zone_fallbacks_total')
        if after <= before:
            raise HarnessError('fallback: kzproxy_zone_fallbacks_total stayed at %s' % after)
    print('fallback: with no zone-c proxy, a zone-c client sees proxies %s and the fallback is counted'
          % sorted(md['brokers']))


def main():
    _kafka_python()
    with kz.TestBed(zones=('a', 'b', 'c'), brokers=3, topics={TOPIC: PARTITIONS}) as tb:
        with kz.ProxyCluster(tb, zones=('a', 'b', 'c'), per_zone=2) as pc:
            part_zones(tb, pc)
            part_client_id(tb, pc)
        part_fallback(tb)


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
