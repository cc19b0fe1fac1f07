#!/usr/bin/python3
"""A meter that does not trust the proxy (issue 13, item 1).

Each zone is a network namespace (netzones.py): real Kafka brokers (one per
zone, KRaft voters on the zone addresses), one kzproxy and one producer per
zone all live in their zone's namespace, and every byte between zones goes
through a router namespace whose veth counters are read before and after
the produce run. Zone-to-zone packets are delayed DELAY_MS each way, so the
latency figures include a real cross-zone round trip.

The test topic has replication factor 1 (Kafka's own replication would cross
links and is not the proxy's doing), so are the internal topics; partition p
is led by broker p % 3 + 1, in zone a, b, c. Each zone's producer writes
COUNT messages of SIZE bytes through its own zone's proxy, message i to
partition i % PARTITIONS, so each zone writes a third to leaders in each zone.

Two runs on one cluster, each with its own proxies and topic:
  - WAL path (wal with peer_secret and a local-directory store, a stand-in
    for S3 whose in-region traffic is free: it crosses no link): the links
    between zones carry less than 1% of the payload produced;
  - cross_zone_policy "direct": they carry at least the payload produced to
    leaders in other zones.
Nothing is subtracted from the kernel's figure: control traffic (KRaft,
metadata, peer RPC and health checks, TCP/IP headers and ACKs, the test bed's
idle admin client) is part of what crosses, and printed. Each run also reads
the proxies' own meter (kzproxy_xzone_bytes_total over the same window) and
checks that it does not claim more than the kernel saw.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzbed import KafkaBed  # noqa: E402
from kzharness import HarnessError  # noqa: E402
from kzproc import _LineReader, _die_with_parent, _terminate  # noqa: E402
from netzones import NetZones, link_delta  # noqa: E402
from walpath import SECRET, store_config  # noqa: E402

ZONES = ('a', 'b', 'c')
PARTITIONS = 12
COUNT = int(os.environ.get('KZ_XZ_MESSAGES', '6000'))   # per zone
SIZE = 2048                                            # bytes per message value
DELAY_MS = 2
FLUSH_MS = 50
PROBES = 10                                            # sequential produces per leader zone
PYTHON = '/usr/bin/python3'


# ---------------------------------------------------------------- the producer (a subprocess in a zone)

def producer_main(bootstrap, zone, topic, count, size, partitions):
    """Run inside zone's namespace. Warms up (a message to every partition),
    prints "ready"; then per line on stdin: "go" produces count messages of
    size bytes, message i to partition i % partitions, and prints
    {"acked", "errors", "secs"}; "probe N" produces N messages one at a time
    (acks=all, no linger) to a partition led in each zone and prints the
    latencies {partition: [ms]}. Ends at EOF."""
    from confluent_kafka import Producer
    base = {'bootstrap.servers': bootstrap, 'acks': 'all', 'client.id': 'kz-xz-%s' % zone,
            'message.timeout.ms': 60000}
    bulk = Producer(dict(base, **{'linger.ms': 5, 'batch.num.messages': 10000,
                                  'queue.buffering.max.messages': 200000,
                                  'queue.buffering.max.kbytes': 1048576}))
    probe = Producer(dict(base, **{'linger.ms': 0}))
    errors = []

    def dr(err, msg):
        if err is not None:
            errors.append(str(err))

    for p in (bulk, probe):
        for part in range(partitions):
            p.produce(topic, value=b'warm-up', partition=part, on_delivery=dr)
        if p.flush(60) or errors:
            print(json.dumps({'error': 'warm-up failed: %s' % (errors[:1] or 'undelivered')}), flush=True)
            return 1
    print('ready', flush=True)
    pad = b'x' * size
    for line in sys.stdin:
        cmd = line.split()
        if cmd[:1] == ['go']:
            acked = [0]

            def ok(err, msg):
                if err is not None:
                    errors.append(str(err))
                else:
                    acked[0] += 1
            t0 = time.monotonic()
            for i in range(count):
                head = b'%s:%d:' % (zone.encode(), i)
                value = head + pad[:size - len(head)]
                while True:
                    try:
                        bulk.produce(topic, value=value, partition=i % partitions, on_delivery=ok)
                        break
                    except BufferError:
                        bulk.poll(0.05)
                if i % 500 == 0:
                    bulk.poll(0)
            left = bulk.flush(120)
            secs = time.monotonic() - t0
            print(json.dumps({'acked': acked[0], 'undelivered': left, 'errors': errors[:3], 'secs': secs}),
                  flush=True)
        elif cmd[:1] == ['probe']:
            n = int(cmd[1])
            lat = {}
            for part in range(min(partitions, 3)):  # partitions 0, 1, 2: led in zones a, b, c
                lat[part] = []
                for k in range(n):
                    t0 = time.monotonic()
                    probe.produce(topic, value=b'probe', partition=part, on_delivery=dr)
                    if probe.flush(30):
                        errors.append('probe to partition %d undelivered' % part)
                        break
                    lat[part].append((time.monotonic() - t0) * 1000)
            print(json.dumps({'latency_ms': lat, 'errors': errors[:3]}), flush=True)
    return 0


class Producers:
    """One producer subprocess per zone, run in the zone's namespace."""

    def __init__(self, nz, pc, topic, workdir):
        self.procs = {}
        self.out = {}
        for z in ZONES:
            argv = nz.exec_prefix(z) + [PYTHON, os.path.abspath(__file__), 'producer', pc.proxy_in(z).kafka,
                                        z, topic, str(COUNT), str(SIZE), str(PARTITIONS)]
            err = open(os.path.join(workdir, 'producer-%s-%s.log' % (topic, z)), 'ab')
            self.procs[z] = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                             preexec_fn=_die_with_parent)
            err.close()
            self.out[z] = _LineReader(self.procs[z].stdout, 'producer in zone %s' % z)
        self.workdir = workdir

    def expect(self, what, timeout):
        """One line from every producer within timeout (one deadline for all)."""
        deadline = time.monotonic() + timeout
        got = {}
        for z in ZONES:
            line = self.out[z].readline(max(0.1, deadline - time.monotonic()))
            if line is None:
                raise HarnessError('producer in zone %s exited (code %s) instead of %s; see %s'
                                   % (z, self.procs[z].wait(timeout=10), what, self.workdir))
            got[z] = line
        return got

    def send(self, line):
        for z in ZONES:
            self.procs[z].stdin.write(line.encode() + b'\n')
            self.procs[z].stdin.flush()

    def stop(self):
        for z, p in self.procs.items():
            try:
                p.stdin.close()
            except OSError:
                pass
        for z, p in self.procs.items():
            _terminate(p, 10, 'producer in zone %s' % z)
            p.stdout.close()


# ---------------------------------------------------------------- checks and figures

def check_layout(bed, topic, zone_of_broker):
    """Partition p led by broker p % 3 + 1, its only replica."""
    leader_zone = {}
    for d in bed.describe(topic):
        want = d['partition'] % len(ZONES) + 1
        if d['leader'] != want or d['replicas'] != [want]:
            raise HarnessError('%s-%d: leader %s, replicas %s (want %d alone)'
                               % (topic, d['partition'], d['leader'], d['replicas'], want))
        leader_zone[d['partition']] = zone_of_broker[d['leader']]
    return leader_zone


def kraft_links(nz, bed):
    """(active controller, the others) if every node but one holds an
    established connection from its zone to that node's CONTROLLER listener
    on its zone address (the voters fetch from the leader, the brokers
    heartbeat to it); else None, and the connections seen."""
    conns = {}
    for n in bed.nodes:
        cp = subprocess.run(nz.exec_prefix(n.rack) + ['ss', '-Htn', 'state', 'established'],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        # Recv-Q Send-Q Local Peer; IPv4 peers may show as [::ffff:10.77.1.2]:port.
        conns[n.id] = {line.split()[-1].replace('[::ffff:', '').replace(']', '')
                       for line in cp.stdout.decode().splitlines() if line.strip()}
    for leader in bed.nodes:
        addr = '%s:%d' % (leader.host, leader.ctl_port)
        others = [n for n in bed.nodes if n is not leader]
        if all(addr in conns[n.id] for n in others):
            return (leader, others), conns
    return None, conns


def check_kraft(nz, bed, timeout=15):
    """The KRaft quorum works across the namespaces (see kraft_links), polled."""
    seen = {}

    def probe():
        found, seen['conns'] = kraft_links(nz, bed)
        return found
    try:
        return kz.wait_until(probe, timeout, 'KRaft connections across zones', interval=0.2)
    except HarnessError as e:
        raise HarnessError('%s: no controller is reached from every other zone; established connections per '
                           'node: %s' % (e, seen.get('conns')))


def proxy_meter(pc):
    """Summed over the proxies: cross-zone bytes ('xz:<category>' and 'xz'),
    record bytes produced, produce partitions by path ('path:<path>')."""
    out = {}
    for p in pc.proxies:
        for name, labels, v in pc.metrics(p).series:
            keys = []
            if name == 'kzproxy_xzone_bytes_total':
                keys = ['xz', 'xz:' + labels.get('category', '?')]
            elif name == 'kzproxy_produce_record_bytes_total':
                keys = ['record_bytes']
            elif name == 'kzproxy_produce_path_partitions_total':
                keys = ['path:' + labels.get('path', '?')]
            for k in keys:
                out[k] = out.get(k, 0) + v
    return out


def meter_delta(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items()}


def pct(a, b):
    return 100.0 * a / b if b else float('inf')


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float('nan')


def run_mode(mode, nz, bed, leader_zone, workdir):
    """One produce run through fresh proxies; returns the figures."""
    topic = 'xz-' + mode
    extra = {'peer_secret': SECRET,
             'wal': {'store': store_config('local', workdir), 'flush_ms': FLUSH_MS},
             # The server-side CIDR map: a client's zone from its address.
             'client_zones': [{'cidr': nz.cidr[z], 'zone': z} for z in ZONES]}
    if mode == 'direct':
        extra['cross_zone_policy'] = 'direct'
    pdir = os.path.join(workdir, mode)
    os.makedirs(pdir)
    with kz.ProxyCluster(bed, zones=ZONES, extra_config=extra, workdir=pdir,
                         netns={z: (nz.ns[z], nz.addr[z]) for z in ZONES}) as pc:
        prods = Producers(nz, pc, topic, pdir)
        try:
            ready = prods.expect('"ready"', 90)
            bad = {z: line for z, line in ready.items() if line != 'ready'}
            if bad:
                raise HarnessError('%s: producers not ready: %s' % (mode, bad))
            # The kernel's window encloses the proxies': whatever a proxy
            # counts inside its window has crossed a link inside the kernel's.
            k0 = nz.link_bytes()
            m0 = proxy_meter(pc)
            t0 = time.monotonic()
            prods.send('go')
            results = {z: json.loads(line) for z, line in prods.expect('the produce result', 150).items()}
            secs = time.monotonic() - t0
            m1 = proxy_meter(pc)
            k1 = nz.link_bytes()
            for z, r in results.items():
                if r.get('acked') != COUNT or r.get('undelivered') or r.get('errors'):
                    raise HarnessError('%s: producer in zone %s: %s' % (mode, z, r))
            # Latency, outside the byte window: sequential acks=all produces.
            prods.send('probe %d' % PROBES)
            probes = {z: json.loads(line) for z, line in prods.expect('the latency probe', 120).items()}
            for z, r in probes.items():
                if r.get('errors'):
                    raise HarnessError('%s: latency probe in zone %s: %s' % (mode, z, r['errors']))
        finally:
            prods.stop()
    local, remote = [], []
    for z, r in probes.items():
        for part, ms in r['latency_ms'].items():
            (local if leader_zone[int(part)] == z else remote).extend(ms)
    k = link_delta(k1, k0, ZONES)
    payload = len(ZONES) * COUNT * SIZE
    remote_share = sum(1 for z in ZONES for i in range(COUNT)
                       if leader_zone[i % PARTITIONS] != z) * SIZE
    m = meter_delta(m1, m0)
    f = {'mode': mode, 'payload': payload, 'remote_payload': remote_share, 'secs': secs,
         'producer_secs': max(r['secs'] for r in results.values()),
         'kernel': k['rx'], 'kernel_tx': k['tx'], 'packets': k['rx_packets'], 'per_zone': k['per_zone_rx'],
         'tun': (k1['tun']['tx'] - k0['tun']['tx']) if 'tun' in k1 else None,
         'meter_total': m.get('xz', 0), 'meter_payload': m.get('xz:payload', 0),
         'meter_cats': {k[3:]: int(v) for k, v in sorted(m.items()) if k.startswith('xz:')},
         'paths': {k[5:]: int(v) for k, v in sorted(m.items()) if k.startswith('path:')},
         'record_bytes': m.get('record_bytes', 0),
         'lat_local': (percentile(local, 0.5), percentile(local, 0.9)),
         'lat_remote': (percentile(remote, 0.5), percentile(remote, 0.9))}
    report(f)
    return f


def report(f):
    mb = 1e6
    print('%s: payload produced %d B (%.1f MB: %d zones x %d x %d B; %.1f MB to leaders in other zones) in %.2f s '
          '(%.1f MB/s); proxies counted %d record bytes, produce partitions by path %s'
          % (f['mode'], f['payload'], f['payload'] / mb, len(ZONES), COUNT, SIZE, f['remote_payload'] / mb,
             f['secs'], f['payload'] / mb / f['secs'], f['record_bytes'], f['paths']))
    print('%s: kernel: %d B crossed between zones (%d packets into the router; %d B out of it) = %.3f%% of the '
          'payload, %.0f B/s; per source zone %s%s'
          % (f['mode'], f['kernel'], f['packets'], f['kernel_tx'], pct(f['kernel'], f['payload']),
             f['kernel'] / f['secs'], f['per_zone'],
             '; forwarded through the delay line %d B' % f['tun'] if f['tun'] is not None else ''))
    print('%s: proxies\' meter: %d B across zones, all categories (%.1f%% of the kernel\'s figure; the rest, %d B, '
          'is KRaft, TCP/IP headers and ACKs, the bed\'s admin client); by category %s; "payload" is %.1f%% of '
          'the kernel\'s figure'
          % (f['mode'], f['meter_total'], pct(f['meter_total'], f['kernel']), f['kernel'] - f['meter_total'],
             f['meter_cats'], pct(f['meter_payload'], f['kernel'])))
    print('%s: produce latency, one acks=all message at a time (%d per leader zone and producer): leader in the '
          'producer\'s zone p50 %.1f ms p90 %.1f ms; leader in another zone p50 %.1f ms p90 %.1f ms'
          % ((f['mode'], PROBES) + f['lat_local'] + f['lat_remote']))


def main():
    if COUNT % PARTITIONS:
        raise HarnessError('KZ_XZ_MESSAGES must be a multiple of %d' % PARTITIONS)
    NetZones.check_available()  # SkipTest without root or ip netns
    workdir = tempfile.mkdtemp(prefix='kz-xzone-')
    t_start = time.monotonic()
    failed = True
    try:
        with NetZones(ZONES, delay_ms=DELAY_MS) as nz:
            print('zones in network namespaces %s behind router %s; delay %d ms each way between zones (%s%s); '
                  'TCP connect between zones %.1f-%.1f ms'
                  % (', '.join(nz.ns[z] for z in ZONES), nz.router, DELAY_MS, nz.delay_mode,
                     ': netem unavailable: %s' % nz.netem_error if nz.netem_error else '',
                     min(nz.connect_ms), max(nz.connect_ms)))
            # Internal topics with one replica too: no replication between zones at all.
            rf1 = {'offsets.topic.replication.factor': 1, 'transaction.state.log.replication.factor': 1,
                   'share.coordinator.state.topic.replication.factor': 1, 'default.replication.factor': 1}
            bed = KafkaBed(zones=ZONES, topics={}, workdir=os.path.join(workdir, 'kafka'), server_props=rf1,
                           hosts=nz.addr, exec_prefix={z: nz.exec_prefix(z) for z in ZONES},
                           admin_exec_prefix=nz.exec_prefix('r'))
            with bed:
                t_bed = time.monotonic()
                zone_of_broker = {b.id: b.rack for b in bed.brokers}
                leader, others = check_kraft(nz, bed)
                print('Kafka: brokers %s; KRaft active controller node %d (zone %s), reached from zones %s across '
                      'the router; the admin client (router namespace) reaches every broker; bed ready in %.1f s'
                      % (', '.join('%d@%s:%d' % (b.id, b.host, b.port) for b in bed.brokers), leader.id,
                         leader.rack, ', '.join(n.rack for n in others), t_bed - t_start))
                figures = {}
                for mode in ('wal', 'direct'):
                    topic = 'xz-' + mode
                    bed.create_topic(topic, PARTITIONS, rf=1)
                    leader_zone = check_layout(bed, topic, zone_of_broker)
                    figures[mode] = run_mode(mode, nz, bed, leader_zone, workdir)
        wal, direct = figures['wal'], figures['direct']
        # The runs are what they claim to be (the proxies' own path counters).
        if not wal['paths'].get('wal') or wal['paths'].get('cross_zone'):
            raise HarnessError('WAL run: produce partitions by path %s (want wal > 0, cross_zone 0)' % wal['paths'])
        if not direct['paths'].get('cross_zone') or direct['paths'].get('wal'):
            raise HarnessError('direct run: produce partitions by path %s (want cross_zone > 0, wal 0)'
                               % direct['paths'])
        # The kernel is the judge. WAL path: under 1% of the payload crossed.
        if wal['kernel'] >= 0.01 * wal['payload']:
            raise HarnessError('WAL path: %d B crossed between zones = %.3f%% of %d B payload (want < 1%%)'
                               % (wal['kernel'], pct(wal['kernel'], wal['payload']), wal['payload']))
        # Direct: at least what went to leaders in other zones crossed.
        if direct['kernel'] < direct['remote_payload']:
            raise HarnessError('direct: only %d B crossed between zones, less than the %d B produced to leaders '
                               'in other zones: the kernel\'s meter misses traffic' % (direct['kernel'],
                                                                                     direct['remote_payload']))
        # The proxies' own meter never claims more than the kernel saw (which
        # also counts TCP/IP headers and the brokers' KRaft traffic).
        for f in (wal, direct):
            if f['meter_total'] > f['kernel']:
                raise HarnessError('%s: the proxies counted %d B across zones, more than the kernel\'s %d B'
                                   % (f['mode'], f['meter_total'], f['kernel']))
        # Not asserted yet: the "payload" category (meter_payload) is being
        # made to count real record bytes; it is only reported above.
        print('summary: bytes between zones by the kernel: WAL path %d B (%.3f%% of payload), direct %d B (%.1f%%): '
              '%.0fx less; proxies\' meter / kernel: WAL %.1f%%, direct %.1f%%; produce latency to a leader in '
              'another zone p50: WAL %.1f ms, direct %.1f ms; total %.0f s'
              % (wal['kernel'], pct(wal['kernel'], wal['payload']), direct['kernel'],
                 pct(direct['kernel'], direct['payload']), direct['kernel'] / max(1, wal['kernel']),
                 pct(wal['meter_total'], wal['kernel']), pct(direct['meter_total'], direct['kernel']),
                 wal['lat_remote'][0], direct['lat_remote'][0], time.monotonic() - t_start))
        failed = False
    finally:
        if failed or os.environ.get('KZ_TEST_KEEP'):
            sys.stderr.write('test_xzone_netns: work directory kept: %s\n' % workdir)
        else:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    if sys.argv[1:2] == ['producer']:
        a = sys.argv[2:]
        sys.exit(producer_main(a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5])))
    kz.run_test(main, timeout=300)
