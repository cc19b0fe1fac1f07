"""Shared body of the zone-aware produce tests (issue 5 acceptance).

Three zones, brokers 1/2/3 in zones a/b/c leading partitions p % 3 + 1 of a
36-partition topic, one kzproxy per zone (two in zone b when a peer is to be
killed), all sharing one WAL store (a local directory or s3rver). One
producer per zone writes through its zone's proxy; message values are
"<zone>:<seq>:" padded to the message size, message seq goes to partition
seq % 36. Afterwards:
  - every message is acknowledged, and consumed exactly once through the
    zone-b proxy, in per-partition order (each producer's seqs increase);
  - by the proxies' own counters, record payload bytes across zones are 0
    and all cross-zone bytes are at most 1% of the payload produced; the
    ratio is printed;
  - the WAL path carried the payload for remote leaders (partition counters).
"""
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402

TOPIC = 'wal36'
# The mock keeps at most 5 MiB per partition (older batches are dropped):
# 100 MB over 36 partitions stays under that.
PARTITIONS = 36
SECRET = 'kz-test-peer-secret-0123456789abcdef'


def store_config(backend, workdir, s3=None, options=None):
    if backend == 'local':
        cfg = {'backend': 'local', 'root': os.path.join(workdir, 'wal-store'), 'no_fsync': True}
    else:
        cfg = {'backend': 's3', 'bucket': 'kzwal', 'endpoint': 'http://127.0.0.1:%d' % s3.port,
               'region': 'us-east-1', 'path_style': True, 'access_key': 'S3RVER', 'secret_key': 'S3RVER'}
    cfg.update(options or {})
    return cfg


def xzone(metrics):
    """(payload bytes, all bytes) across zones for one proxy's metrics."""
    payload = metrics.sum('kzproxy_xzone_bytes_total', 0, category='payload')
    total = metrics.sum('kzproxy_xzone_bytes_total', 0)
    return payload, total


CLIENT_STATS = {}  # zone -> the producer's last statistics: retries, request timeouts, errors


def produce_zone(bootstrap, zone, count, size, config, acked, errors, progress):
    from confluent_kafka import Producer
    conf = {'bootstrap.servers': bootstrap, 'client.id': 'kz-test-wal-%s' % zone, 'linger.ms': 20,
            'batch.num.messages': 1000, 'message.timeout.ms': 60000, 'acks': 'all',
            'queue.buffering.max.messages': 200000, 'queue.buffering.max.kbytes': 1048576}
    conf.update(config or {})

    def stats(js):  # the client's own count of retries and timeouts, for a failure's message
        try:
            st = json.loads(js)
        except ValueError:
            return
        CLIENT_STATS[zone] = {
            'retries': sum(b.get('txretries', 0) for b in st.get('brokers', {}).values()),
            'req_timeouts': sum(b.get('req_timeouts', 0) for b in st.get('brokers', {}).values()),
            'tx_errors': sum(b.get('txerrs', 0) for b in st.get('brokers', {}).values()),
        }
    conf.update({'statistics.interval.ms': 500, 'stats_cb': stats})
    p = Producer(conf)
    pad = b'x' * size
    mine = acked[zone]

    def dr(err, msg):
        if err is not None:
            errors.append('%s: %s' % (msg.value()[:24], err))
        else:
            mine.append((msg.partition(), msg.offset(), msg.value()[:24]))

    deadline = time.monotonic() + 120
    for i in range(count):
        head = b'%s:%d:' % (zone.encode(), i)
        value = head + pad[:size - len(head)]
        while True:
            try:
                p.produce(TOPIC, value=value, partition=i % PARTITIONS, on_delivery=dr)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    errors.append('%s: queue full' % zone)
                    return
                p.poll(0.05)
        progress[zone] = i + 1
        if i % 500 == 0:
            p.poll(0)
    left = p.flush(max(1.0, deadline - time.monotonic()))
    p.poll(0.6)  # one more statistics callback, after the last delivery
    if left:
        errors.append('%s: %d messages undelivered' % (zone, left))


WARMUP = b'warmup:'


def warm_partitions(tb, topic, partitions, timeout=60):
    """One record to each partition straight to the backend (not through a
    proxy), retried until every one is acknowledged. A real broker answers
    NOT_LEADER_OR_FOLLOWER for a moment after a topic is created (its
    metadata names the leader before the partition is ready for writes on
    it), and a non-idempotent producer's retry of such a batch lands after
    its later ones: Kafka's own order contract, which the tests below would
    count as the proxies' fault. check_consumed skips these records."""
    from confluent_kafka import Producer
    p = Producer({'bootstrap.servers': ','.join(tb.bootstrap_list), 'client.id': 'kz-test-warmup', 'acks': 'all',
                  'enable.idempotence': True, 'message.timeout.ms': int(timeout * 1000)})
    failed = []
    for part in range(partitions):
        p.produce(topic, value=WARMUP + b'%d' % part, partition=part,
                  on_delivery=lambda err, msg: err is not None and failed.append(str(err)))
    left = p.flush(timeout)
    if left or failed:
        raise HarnessError('warming up %s: %d records not delivered, errors %s' % (topic, left, failed[:3]))


def check_consumed(rows, zones, per_zone):
    """rows: (partition, offset, key, value) from consume_all."""
    seen = {}
    last = {}
    for part, off, _k, v in rows:
        if v.startswith(WARMUP):
            continue
        zone, seq, _ = v.split(b':', 2)
        zone, seq = zone.decode(), int(seq)
        if seq % PARTITIONS != part:
            raise HarnessError('message %s:%d read from partition %d' % (zone, seq, part))
        if (zone, seq) in seen:
            raise HarnessError('message %s:%d consumed twice (offsets %d and %d)' % (zone, seq, seen[(zone, seq)], off))
        seen[(zone, seq)] = off
        k = (zone, part)
        if k in last and last[k] >= seq:
            raise HarnessError('partition %d: %s:%d after %s:%d: order not kept' % (part, zone, seq, zone, last[k]))
        last[k] = seq
    want = len(zones) * per_zone
    if len(seen) != want:
        missing = [(z, i) for z in zones for i in range(per_zone) if (z, i) not in seen][:5]
        raise HarnessError('%d of %d messages consumed; missing e.g. %s' % (len(seen), want, missing))


def proxy_figures(pc):
    out = {}
    for p in pc.proxies:
        if p.stopped:
            continue
        m = pc.metrics(p)
        payload, total = xzone(m)
        out[p.node_id] = {
            'payload': payload, 'total': total,
            'produced': m.sum('kzproxy_produce_record_bytes_total', 0),
            'wal_parts': m.sum('kzproxy_produce_path_partitions_total', 0, path='wal'),
            'direct_parts': m.sum('kzproxy_produce_path_partitions_total', 0, path='direct'),
            'cross_parts': m.sum('kzproxy_produce_path_partitions_total', 0, path='cross_zone'),
            'puts': m.sum('kzproxy_objwal_requests_total', 0, op='put'),
            'gets': m.sum('kzproxy_objwal_requests_total', 0, op='get'),
            'rpcs': m.sum('kzproxy_wal_rpcs_sent_total', 0),
            'rpc_fail': m.sum('kzproxy_wal_rpcs_failed_total', 0),
            'wal_errors': m.sum('kzproxy_wal_partition_errors_total', 0),
            'xzone': {'%s/%s/%s' % (ls['direction'], ls['peer'], ls['category']): v
                      for n, ls, v in m.series if n == 'kzproxy_xzone_bytes_total' and v},
        }
    return out


def route_notes(pc, per_proxy=8):
    """The first warnings and routing notes (router-in/-out) of each proxy:
    why a partition failed, for a failure's message."""
    out = []
    for p in pc.proxies:
        lines = [ln for ln in p.log_text().splitlines()
                 if ' warn ' in ln or 'router-in' in ln or 'router-out' in ln]
        out += ['  kzproxy %d: %s' % (p.node_id, ln) for ln in lines[:per_proxy]]
    return '\n'.join(out) or '  (nothing)'


def delta(after, before, key):
    return sum(a[key] - before.get(n, {}).get(key, 0) for n, a in after.items())


def produce_all(pc, zones, per_zone, size, config):
    acked = {z: [] for z in zones}
    errors, progress = [], {}
    threads = [threading.Thread(target=produce_zone, daemon=True,
                                args=(pc.proxy_in(z).kafka, z, per_zone, size, config, acked, errors, progress))
               for z in zones]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
        if t.is_alive():
            raise HarnessError('a producer did not finish in 180s (progress %s)' % progress)
    if errors:
        raise HarnessError('%d delivery errors, first: %s' % (len(errors), errors[0]))
    return acked, time.monotonic() - t0


def run(backend, messages=100000, size=1024, flush_ms=50, producer_config=None, label='wal path',
        store_options=None, check_proxies=None):
    """store_options: more wal.store keys; check_proxies(pc): called once the
    messages are produced, while the proxies still run."""
    zones = ('a', 'b', 'c')
    per_zone = messages // len(zones)
    workdir = tempfile.mkdtemp(prefix='kz-wal-')
    s3 = None
    try:
        if backend == 's3rver':
            import objwal_env
            s3 = objwal_env.S3rver('s3rver', 'kzwal')
        extra = {'peer_secret': SECRET,
                 'wal': {'store': store_config(backend, workdir, s3, store_options), 'flush_ms': flush_ms,
                         'max_inflight_uploads': 8}}
        with kz.TestBed(topics={TOPIC: PARTITIONS}) as tb, \
                kz.ProxyCluster(tb, extra_config=extra, workdir=workdir) as pc:
            warm_partitions(tb, TOPIC, PARTITIONS)
            before = proxy_figures(pc)
            acked, secs = produce_all(pc, zones, per_zone, size, producer_config)
            after = proxy_figures(pc)
            produced = delta(after, before, 'produced')
            payload = delta(after, before, 'payload')
            total = delta(after, before, 'total')
            wal_parts = delta(after, before, 'wal_parts')
            direct_parts = delta(after, before, 'direct_parts')
            cross_parts = delta(after, before, 'cross_parts')
            puts, gets = delta(after, before, 'puts'), delta(after, before, 'gets')
            if produced < messages * size * 0.9:
                raise HarnessError('proxies counted %d record bytes produced for %d messages of %d bytes'
                                   % (produced, messages, size))
            if payload != 0:
                raise HarnessError('%d record payload bytes crossed zones (want 0); per proxy %s' % (payload, after))
            ratio = total / produced
            if ratio > 0.01:
                raise HarnessError('cross-zone bytes are %.3f%% of payload (want <= 1%%): %d of %d; per proxy %s'
                                   % (ratio * 100, total, produced,
                                      {n: f['xzone'] for n, f in after.items()}))
            if wal_parts == 0 or cross_parts != 0:
                raise HarnessError('partitions by path: direct %d, wal %d, cross-zone %d (want wal > 0, cross 0)'
                                   % (direct_parts, wal_parts, cross_parts))
            rows = kz.consume_all(pc.proxy_in('b').kafka, TOPIC, config={'client.id': 'kz-test-wal-reader'},
                                  timeout=120)
            try:
                check_consumed(rows, zones, per_zone)
            except HarnessError as e:
                raise HarnessError('%s; WAL partition errors %d, failed RPCs %d (per proxy %s); the producers '
                                   'saw %s; the proxies said:\n%s'
                                   % (e, delta(after, before, 'wal_errors'), delta(after, before, 'rpc_fail'),
                                      {n: (f['wal_errors'], f['rpc_fail']) for n, f in after.items()},
                                      CLIENT_STATS, route_notes(pc)))
            if check_proxies:
                check_proxies(pc)
            mb = produced / 1e6
            print('%s (%s): %d messages of %d bytes from 3 zones in %.2fs (%.1f MB/s); consumed exactly once, in '
                  'order per partition; partitions by path: direct %d, wal %d, cross-zone %d; payload bytes across '
                  'zones %d; all cross-zone bytes %d = %.4f%% of %d payload bytes; S3 PUTs %d (%.1f per GB), '
                  'GETs %d' % (label, backend, messages, size, secs, mb / secs, direct_parts, wal_parts,
                               cross_parts, payload, total, ratio * 100, produced, puts, puts / (produced / 1e9),
                               gets))
            print('%s (%s): producer retries %s' % (label, backend, {z: CLIENT_STATS.get(z) for z in zones}))
            return pc, acked
    finally:
        if s3:
            s3.stop()
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)
