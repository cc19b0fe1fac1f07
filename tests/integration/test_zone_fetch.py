#!/usr/bin/python3
"""Zone-local consume (issue 15, item 1; KIP-392 fetch from follower).

Three zones, a broker and a proxy in each, replication factor 3 (every
partition has a replica in every zone), a 12-partition topic per phase led in
all three zones. MESSAGES messages are produced through the zone-a proxy; then
one consumer group member in zone b (confluent_kafka Consumer, subscribe,
through the zone-b proxy) reads them, and the test checks it got every
message once and in order per partition (offsets 0, 1, 2, ... with the values
produced). The figure is the zone-b proxy's payload meter during the consume
phase, kzproxy_xzone_bytes_total{category="payload",direction="in"}: the
record-batch bytes it fetched from brokers of other zones.

  off       fetch_from_follower "off": every partition read from its leader;
            the figure is about two thirds of the bytes fetched (8 of 12
            partitions are led in zones a and c).
  broker    the default: the proxy asks remote leaders with rack_id "b", the
            leader (RackAwareReplicaSelector) names the zone-b replica and
            sends no records, and the partition's next fetches go to it. The
            figure must be at most BOUND of the off figure: a leader answers
            with records only when the zone-b replica is not in its ISR or
            behind the fetch offset, and the test waits for the ISR first
            (measured: 0 B on Kafka).
  kill      the default mode, with the zone-b broker (the in-zone follower of
            every partition, and the leader of four) killed (kill -9) a third
            of the way through the consume phase and started again at two
            thirds: still every message once and in order; partitions are read
            from their leaders while it is down
            (kzproxy_fetch_follower_fallbacks_total moved, but by at most
            FALLBACKS_MAX: each partition backs off its dead follower). The group's
            coordinator is chosen outside zone b so the kill forces no
            rebalance (a rebalance may legitimately re-deliver uncommitted
            messages, which is not what this test is about).

On the mock (KZ_BACKEND unset): the mock has no replica selector but
rd_kafka_mock_partition_set_follower makes a leader name a follower (to any
client, rack_id or not, with no records), so the broker phase names the zone-b
broker for the partitions led elsewhere; the mock moves no leaders when a
broker dies, so during the kill phase the partitions led by (or followed on)
the zone-b broker wait for it to come back, and the off phase uses a topic
with no follower set (a mock leader with one never sends records).
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402

PARTITIONS = 12
MESSAGES = 30000
BOUND = 0.01  # broker mode: at most 1% of the off figure crosses zones
FALLBACKS_MAX = 5 * PARTITIONS  # kill phase, while the broker is down
PRODUCER = {'client.id': 'kz-test-zone-fetch-producer', 'acks': 'all', 'linger.ms': 20,
            'compression.type': 'none'}


def messages():
    out = []
    for i in range(MESSAGES):
        key = b'zf-%06d' % i
        size = 200 + (i * 397) % 800
        head = b'%d:' % i
        out.append((key, head + b'z' * (size - len(head))))
    return out


def leader_zones(tb, topic):
    if hasattr(tb, 'describe'):
        return {d['partition']: tb.broker(d['leader']).rack for d in tb.describe(topic)}
    return {p: tb.broker(p % len(tb.brokers) + 1).rack for p in range(PARTITIONS)}


def java_hash(s):
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h


def group_outside(tb, prefix, zone):
    """A group id whose coordinator is not a broker of zone (Kafka: the leader
    of __consumer_offsets partition hash % partitions; mock: set)."""
    avoid = {b.id for b in tb.brokers_in(zone)}
    if tb.backend == 'mock':
        gid = '%s-%d' % (prefix, os.getpid())
        other = [b.id for b in tb.brokers if b.id not in avoid][0]
        tb.set_coordinator('group', gid, other)
        return gid
    leaders = {d['partition']: d['leader'] for d in tb.describe('__consumer_offsets')}
    for i in range(1000):
        gid = '%s-%d-%d' % (prefix, os.getpid(), i)
        if leaders[(java_hash(gid) & 0x7FFFFFFF) % len(leaders)] not in avoid:
            return gid
    raise HarnessError('no group id with a coordinator outside zone %s' % zone)


def payload_in(p):
    m = kz.metrics(p)
    return (m.sum('kzproxy_xzone_bytes_total', 0, category='payload', direction='in'),
            m.sum('kzproxy_fetch_record_bytes_total', 0),
            m.sum('kzproxy_fetch_follower_fallbacks_total', 0),
            m.sum('kzproxy_fetch_partitions_total', 0, replica='follower'))


def consume(bootstrap, topic, group, want, on_progress=None, pace=0, timeout=240):
    """Subscribe and read until `want` messages came, then a second more (to
    see duplicates); {partition: [(offset, value)]} in consumed order."""
    from confluent_kafka import Consumer
    conf = {'bootstrap.servers': bootstrap, 'group.id': group, 'client.id': 'kz-test-zone-fetch-consumer',
            'auto.offset.reset': 'earliest', 'enable.auto.commit': True, 'auto.commit.interval.ms': 500,
            'session.timeout.ms': 30000}
    if pace:
        # Fetch in small steps so the kill lands mid-stream, not after a
        # prefetch of everything.
        conf.update({'queued.max.messages.kbytes': 256, 'max.partition.fetch.bytes': 16384,
                     'fetch.max.bytes': 65536, 'message.max.bytes': 65536})
    c = Consumer(conf)
    got, n = {}, 0
    deadline = time.monotonic() + timeout
    done_at = None
    try:
        c.subscribe([topic])
        while True:
            now = time.monotonic()
            if done_at is not None and now >= done_at:
                break
            if now > deadline:
                raise HarnessError('consume %s: %d of %d messages after %.0fs' % (topic, n, want, timeout))
            for msg in c.consume(500, 0.2):
                if msg.error() is not None:
                    raise HarnessError('consume %s: %s' % (topic, msg.error()))
                got.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))
                n += 1
            if on_progress:
                on_progress(n)
            if n >= want and done_at is None:
                done_at = time.monotonic() + 1.0
            if pace:
                time.sleep(pace)
    finally:
        c.close()
    return got


def check_once_in_order(label, got, msgs, acked):
    by_part = {}
    for (k, v), (part, off) in zip(msgs, acked):
        by_part.setdefault(part, {})[off] = v
    total = 0
    for part, want in by_part.items():
        rows = got.get(part, [])
        offs = [o for o, _v in rows]
        if offs != sorted(want):
            dup = len(offs) - len(set(offs))
            raise HarnessError('%s: partition %d: %d messages read for %d produced (%d duplicates), or out of order'
                               % (label, part, len(offs), len(want), dup))
        for o, v in rows:
            if want[o] != v:
                raise HarnessError('%s: partition %d offset %d: not the value produced' % (label, part, o))
        total += len(rows)
    extra = set(got) - set(by_part)
    if extra:
        raise HarnessError('%s: messages from partitions %s nobody produced to' % (label, sorted(extra)))
    return total


def phase(tb, label, topic, extra, followers=False, kill=False):
    msgs = messages()
    zones = leader_zones(tb, topic)
    if sorted(set(zones.values())) != ['a', 'b', 'c']:
        raise HarnessError('%s: leaders of %s are in zones %s, want a, b and c' % (label, topic, zones))
    zone_b = tb.brokers_in('b')[0].id
    if followers:  # the mock: a leader names the zone-b broker
        for p in range(PARTITIONS):
            if zones[p] != 'b':
                tb.set_follower(topic, p, zone_b)
    with kz.ProxyCluster(tb, extra_config=extra) as pc:
        acked = kz.produce(pc.proxy_in('a').kafka, topic, msgs, config=PRODUCER, timeout=120)
        if hasattr(tb, 'wait_in_sync'):
            tb.wait_in_sync(60)
        reader = pc.proxy_in('b')
        before = payload_in(reader)
        group = group_outside(tb, 'kz-zone-fetch-' + label, 'b')
        events = []
        state = {'down': False, 'up': False, 'error': None}
        thread = None

        def killer(n):
            # Runs in its own thread: broker_down/up wait for the controller.
            try:
                at_kill = payload_in(reader)
                tb.broker_down(zone_b)
                events.append('broker %d (zone b) killed after %d messages; fetch payload across zones until '
                              'then %d B' % (zone_b, n, at_kill[0] - before[0]))
                # Up again at two thirds (real Kafka: the leaders serve the
                # partitions meanwhile), or after 8 s (the mock: nothing of a
                # partition that involves the dead broker moves until then).
                until = time.monotonic() + 8
                while state['n'] < 2 * MESSAGES // 3 and time.monotonic() < until:
                    time.sleep(0.1)
                at_up = payload_in(reader)
                tb.broker_up(zone_b)
                state['down_fallbacks'] = at_up[2] - at_kill[2]
                events.append('broker %d started again after %d messages; fetch payload across zones while it '
                              'was down %d B, follower fallbacks %d'
                              % (zone_b, state['n'], at_up[0] - at_kill[0], at_up[2] - at_kill[2]))
            except BaseException as e:  # noqa: BLE001 -- reported by the main thread
                state['error'] = e
            finally:
                state['up'] = True

        def progress(n):
            nonlocal thread
            state['n'] = n
            if kill and not state['down'] and n >= MESSAGES // 3:
                state['down'] = True
                thread = threading.Thread(target=killer, args=(n,), daemon=True)
                thread.start()

        state['n'] = 0
        got = consume(reader.kafka, topic, group, MESSAGES, on_progress=progress, pace=0.02 if kill else 0)
        if thread is not None:
            thread.join(150)
            if not state['up']:
                raise HarnessError('%s: the broker restart did not finish' % label)
            if state['error']:
                raise state['error']
        after = payload_in(reader)
    n = check_once_in_order(label, got, msgs, acked)
    xz, fetched = after[0] - before[0], after[1] - before[1]
    res = {'xz': xz, 'fetched': fetched, 'fallbacks': after[2] - before[2], 'follower_parts': after[3] - before[3],
           'down_fallbacks': state.get('down_fallbacks', 0)}
    for e in events:
        print('%s: %s' % (label, e))
    print('%s (%s): %d messages read once and in order; fetch payload across zones at the zone-b proxy %d B of '
          '%d B fetched (%.1f%%); partitions fetched from a zone-b follower %d; follower fallbacks %d'
          % (label, tb.backend, n, xz, fetched, 100.0 * xz / max(1, fetched), res['follower_parts'],
             res['fallbacks']))
    return res


def main():
    topics = {'zf-off': PARTITIONS, 'zf-broker': PARTITIONS, 'zf-kill': PARTITIONS}
    with kz.TestBed(topics=topics) as tb:
        mock = tb.backend == 'mock'
        off = phase(tb, 'off', 'zf-off', {'fetch_from_follower': 'off'})
        if not 0.5 <= off['xz'] / max(1, off['fetched']) <= 0.8:
            raise HarnessError('off: %d of %d bytes fetched crossed zones, want about two thirds'
                               % (off['xz'], off['fetched']))
        on = phase(tb, 'broker', 'zf-broker', {}, followers=mock)
        if on['xz'] > BOUND * off['xz']:
            raise HarnessError('broker: %d B of fetch payload crossed zones, want at most %d (%.0f%% of off: %d)'
                               % (on['xz'], BOUND * off['xz'], 100 * BOUND, off['xz']))
        if on['follower_parts'] == 0:
            raise HarnessError('broker: no partition was fetched from a follower')
        print('fetch payload across zones: off %d B, broker (default) %d B' % (off['xz'], on['xz']))
        k = phase(tb, 'kill', 'zf-kill', {}, followers=mock, kill=True)
        if k['fallbacks'] == 0:
            raise HarnessError('kill: the follower fallback counter did not move')
        # A dead follower is backed off per partition (fetch_follower_retry_ms,
        # doubling): a few fallbacks per partition and connection, not a busy
        # loop between the follower and the leader (once ~200,000 in 8 s).
        if k['down_fallbacks'] > FALLBACKS_MAX:
            raise HarnessError('kill: %d follower fallbacks while the broker was down, want at most %d (a partition '
                               'bounces between its dead follower and its leader)'
                               % (k['down_fallbacks'], FALLBACKS_MAX))


if __name__ == '__main__':
    kz.run_test(main, timeout=900)
