#!/usr/bin/python3
"""A consumer group across zones through kzproxy (issue 3 acceptance).

Three confluent-kafka consumers of one group, one per zone, each bootstrapped
on its zone's proxy, subscribe to a 12-partition topic whose leaders sit in
all three zones:
  1. the group settles: every member holds some partitions, the union is all
     12, no partition is held twice;
  2. 3,000 messages are produced (through the zone-a proxy) only after that,
     so no rebalance can hand a partition over mid-read; the members consume
     them all, each message exactly once across the group and only from the
     member that holds its partition, and commit synchronously; the committed
     offsets read back (OffsetFetch) equal the end offsets;
  3. the members close (LeaveGroup); 3,000 more messages are produced;
  4. three fresh members (new instances, same group id, auto.offset.reset=
     earliest, so a lost commit would replay the first batch) settle again
     and consume: exactly the 3,000 new messages, each once, and each
     partition's first record is at the offset committed in step 2. A record
     read again at the same offset (the group rebalanced once more and gave
     the partition back before any commit, at-least-once as in Kafka) is
     counted as a redelivery; the same message at another offset fails.
Short session timeouts keep the mock's rejoin wait (it waits about
session.timeout.ms for members of an emptied group) within a few seconds.

KZ_TEST_DIRECT=1 runs the members against the mock brokers of their zones.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError, SkipTest  # noqa: E402

TOPIC = 'grp12'
PARTITIONS = 12
BATCH = 3000
ZONES = ('a', 'b', 'c')
SETTLE_TIMEOUT = 25
CONSUME_TIMEOUT = 20


class Member:
    def __init__(self, zone, bootstrap, group, gen):
        from confluent_kafka import Consumer
        self.zone = zone
        self.name = 'member-%s%d' % (zone, gen)
        self.errors = []
        self.records = []
        self.redelivered = 0
        self.c = Consumer({'bootstrap.servers': bootstrap, 'group.id': group,
                           'client.id': 'kz-test-group-%s' % self.name,
                           'enable.auto.commit': False, 'auto.offset.reset': 'earliest',
                           'session.timeout.ms': 4000, 'heartbeat.interval.ms': 300,
                           'partition.assignment.strategy': 'range',
                           'fetch.wait.max.ms': 100, 'topic.metadata.refresh.interval.ms': 5000,
                           'error_cb': lambda e: self.errors.append(e)})
        self.c.subscribe([TOPIC])

    def poll(self, timeout):
        from confluent_kafka import KafkaError
        for msg in self.c.consume(num_messages=1000, timeout=timeout):
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise HarnessError('%s: %s' % (self.name, msg.error()))
            self.records.append((msg.partition(), msg.offset(), msg.value()))

    def assigned(self):
        return {tp.partition for tp in self.c.assignment() if tp.topic == TOPIC}


def poll_all(members, timeout=0.02):
    for m in members:
        m.poll(timeout)


def settle(members, what):
    """Poll until the members' assignments split all partitions, each has some, none shared."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        poll_all(members)
        sets = [m.assigned() for m in members]
        union = set().union(*sets)
        if all(sets) and union == set(range(PARTITIONS)) and sum(len(s) for s in sets) == PARTITIONS:
            return {m.name: sorted(s) for m, s in zip(members, sets)}
        if time.monotonic() > deadline:
            errs = '; '.join('%s: %s' % (m.name, m.errors[-3:]) for m in members if m.errors)
            raise HarnessError('%s: the group did not settle within %ds: assignments %s%s'
                               % (what, SETTLE_TIMEOUT, {m.name: sorted(s) for m, s in zip(members, sets)},
                                  '; client errors: ' + errs if errs else ''))


def consume(members, expected, what):
    """Poll until the members hold len(expected) records; returns {value: (member, partition, offset)}."""
    deadline = time.monotonic() + CONSUME_TIMEOUT
    while sum(len(m.records) for m in members) < len(expected):
        if time.monotonic() > deadline:
            got = sum(len(m.records) for m in members)
            raise HarnessError('%s: %d of %d messages consumed within %ds (per member: %s)'
                               % (what, got, len(expected), CONSUME_TIMEOUT,
                                  {m.name: len(m.records) for m in members}))
        poll_all(members)
    for _ in range(3):  # a short extra look for duplicates: bounded, not a synchronisation
        poll_all(members, 0.1)
    seen = {}
    for m in members:
        held = m.assigned()
        last = {}
        for part, off, value in m.records:
            v = value.decode()
            if v in seen and seen[v][1:] == (part, off):
                # The same record at the same offset again: a redelivery after a
                # rebalance that handed the partition back before any commit
                # (at-least-once, as in Kafka), not a second copy in the log.
                m.redelivered += 1
                continue
            if v in seen:
                raise HarnessError('%s: %s consumed twice (%s at %s and %s at partition %d offset %d; errors %s)' % (what, v, seen[v][0], seen[v][1:], m.name, part, off, [str(e) for e in m.errors[-3:]]))
            if part not in held:
                raise HarnessError('%s: %s read partition %d, which it does not hold (%s)'
                                   % (what, m.name, part, sorted(held)))
            if last.get(part, -1) >= off:
                raise HarnessError('%s: %s partition %d offset %d after %d' % (what, m.name, part, off, last[part]))
            last[part] = off
            seen[v] = (m.name, part, off)
    if set(seen) != set(expected):
        extra = sorted(set(seen) - set(expected))[:5]
        missing = sorted(set(expected) - set(seen))[:5]
        raise HarnessError('%s: consumed set differs: unexpected %s, missing %s' % (what, extra, missing))
    return seen


def commit_all(members, what):
    from confluent_kafka import KafkaException
    for m in members:
        if not m.records:
            continue
        try:
            m.c.commit(asynchronous=False)
        except KafkaException as e:
            raise HarnessError('%s: %s commit failed: %s' % (what, m.name, e.args[0]))


def committed(members, what):
    from confluent_kafka import KafkaException, TopicPartition
    out = {}
    for m in members:
        try:
            tps = m.c.committed([TopicPartition(TOPIC, p) for p in sorted(m.assigned())], timeout=10)
        except KafkaException as e:
            raise HarnessError('%s: %s committed() failed: %s' % (what, m.name, e.args[0]))
        for tp in tps:
            if tp.error is not None:
                raise HarnessError('%s: %s committed offset of partition %d: %s' % (what, m.name, tp.partition, tp.error))
            out[tp.partition] = tp.offset
    return out


def close_all(members):
    for m in members:
        m.c.close()


def run(tb, prod, addr_of_zone, mode):
    group = 'kz-test-group-%d-%d' % (os.getpid(), time.monotonic_ns())
    t0 = time.monotonic()
    members = [Member(z, addr_of_zone(z), group, 1) for z in ZONES]
    try:
        split1 = settle(members, 'first members')
        t1 = time.monotonic()
        pos1 = kz.produce(prod, TOPIC, [(b'k%d' % (i % 60), b'a%d' % i) for i in range(BATCH)],
                          config={'acks': 'all'}, timeout=20)
        got1 = consume(members, ['a%d' % i for i in range(BATCH)], 'first batch')
        commit_all(members, 'first batch')
        ends = {}
        for part, off in pos1:
            ends[part] = max(ends.get(part, 0), off + 1)
        if set(ends) != set(range(PARTITIONS)):
            raise HarnessError('first batch: messages landed in partitions %s only' % sorted(ends))
        com = committed(members, 'first batch')
        if com != ends:
            raise HarnessError('first batch: committed offsets %s, end offsets %s' % (com, ends))
        per_member1 = {m.name: len(m.records) for m in members}
    finally:
        close_all(members)
    t2 = time.monotonic()
    kz.produce(prod, TOPIC, [(b'k%d' % (i % 60), b'b%d' % i) for i in range(BATCH)], config={'acks': 'all'}, timeout=20)
    members = [Member(z, addr_of_zone(z), group, 2) for z in ZONES]
    try:
        split2 = settle(members, 'restarted members')
        t3 = time.monotonic()
        got2 = consume(members, ['b%d' % i for i in range(BATCH)], 'after restart')
        first = {}
        for m in members:
            for part, off, _ in m.records:
                first.setdefault(part, off)
        for part, off in sorted(first.items()):
            if off != ends.get(part, 0):
                raise HarnessError('after restart: partition %d resumed at offset %d, committed %d'
                                   % (part, off, ends.get(part, 0)))
        per_member2 = {m.name: len(m.records) for m in members}
        redelivered = sum(m.redelivered for m in members)
    finally:
        close_all(members)
    print('consumer group (%s): 3 members (zones a, b, c) split 12 partitions %s in %.1fs, consumed %d once each %s, '
          'committed; 3 fresh members split them %s in %.1fs and resumed at the committed offsets: %d new messages '
          'once each %s (%d records redelivered after a rebalance), none of the first batch; total %.1fs'
          % (mode, split1, t1 - t0, len(got1), per_member1, split2, t3 - t2, len(got2), per_member2,
             redelivered, time.monotonic() - t0))


GROUP_APIS = {'FindCoordinator': 1, 'JoinGroup': 2, 'SyncGroup': 2, 'OffsetCommit': 1, 'OffsetFetch': 1,
              'LeaveGroup': 1, 'Fetch': 1}


def check_served(pc):
    """Each member's group traffic went through its zone's proxy (not around it)."""
    for p in pc.proxies:
        m = kz.metrics(p)
        low = {api: m.sum('kzproxy_requests_total', default=0, api=api) for api in GROUP_APIS}
        low = {api: n for api, n in low.items() if n < GROUP_APIS[api]}
        if low:
            raise HarnessError('kzproxy %d (zone %s) served too few group requests (want at least %s): %s'
                               % (p.node_id, p.zone, GROUP_APIS, low))
    print('each proxy served its member\'s FindCoordinator, JoinGroup, SyncGroup, OffsetCommit, OffsetFetch, '
          'LeaveGroup and Fetch requests')


def main():
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as e:
        raise SkipTest('confluent_kafka does not import (%s)' % e)
    with kz.TestBed(zones=ZONES, brokers=3, topics={TOPIC: PARTITIONS}) as tb:
        if os.environ.get('KZ_TEST_DIRECT') == '1':
            run(tb, tb.brokers_in('a')[0].address, lambda z: tb.brokers_in(z)[0].address, 'direct')
        else:
            with kz.ProxyCluster(tb, zones=ZONES, per_zone=1) as pc:
                try:
                    run(tb, pc.proxy_in('a').kafka, lambda z: pc.proxy_in(z).kafka, 'proxy')
                    check_served(pc)
                except (HarnessError, AssertionError):
                    for p in pc.proxies:
                        sys.stderr.write('--- kzproxy %d (zone %s) log %s ends:\n%s\n'
                                         % (p.node_id, p.zone, p.log, kz.log_tail(p, 15)))
                    raise


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
