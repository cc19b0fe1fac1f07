#!/usr/bin/python3
"""workers: several event-loop threads per kzproxy (px_worker.c).

1. Direct path, one proxy with workers 2 (no WAL: each worker routes its
   own clients' Produce and Fetch with its own broker connections): 48 raw
   connections each send one ApiVersions; /metrics counts exactly 48 more
   connections and ApiVersions requests, and both workers accepted some
   (kzproxy_worker_connections_accepted_total). Then 6 producers, each its
   own connections, write to a 12-partition topic; every message is read
   back once and in order per (producer, partition), and the proxy's
   record-byte counters add up across workers.
2. WAL path, three zones (walpath.py's layout), the same load once with
   workers 1 and once with workers 2: every message once and in order, and
   the S3 PUTs per GB with workers 2 are not above workers 1 (one ow_writer
   per destination zone per process, fed by every worker).
"""
import os
import socket
import struct
import sys
import tempfile
import shutil
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402
import walpath  # noqa: E402

DIRECT_TOPIC = 'wk12'
DIRECT_PARTS = 12
RAW_CONNS = 48


def api_versions_raw(addr, corr):
    """One ApiVersions v0 on a fresh connection; returns the open socket."""
    host, port = addr.rsplit(':', 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    cid = b'kz-test-workers-raw'
    body = struct.pack('>hhih', 18, 0, corr, len(cid)) + cid
    s.sendall(struct.pack('>i', len(body)) + body)
    need, got = 4, b''
    while len(got) < need:
        chunk = s.recv(65536)
        if not chunk:
            raise HarnessError('raw connection %d: closed before the ApiVersions answer' % corr)
        got += chunk
        if len(got) >= 4:
            need = 4 + struct.unpack('>i', got[:4])[0]
    if struct.unpack('>i', got[4:8])[0] != corr:
        raise HarnessError('raw connection %d: answer with another correlation id' % corr)
    return s


def worker_counts(m):
    return {ls['worker']: v for n, ls, v in m.series if n == 'kzproxy_worker_connections_accepted_total'}


def produce_many(bootstrap, labels, per_producer, partitions, topic, size=200, config=None):
    """One confluent_kafka Producer per label (its own connections), in
    threads; values "<label>:<seq>:" padded to size, seq to partition
    seq % partitions. Returns {label: count acknowledged}."""
    from confluent_kafka import Producer
    errors, acked = [], {lb: 0 for lb in labels}

    def run(label):
        conf = {'bootstrap.servers': bootstrap, 'client.id': 'kz-test-workers-%s' % label, 'linger.ms': 5,
                'acks': 'all', 'message.timeout.ms': 60000}
        conf.update(config or {})
        p = Producer(conf)
        pad = b'x' * size

        def dr(err, msg):
            if err is not None:
                errors.append('%s: %s' % (label, err))
            else:
                acked[label] += 1

        for i in range(per_producer):
            head = b'%s:%d:' % (label.encode(), i)
            while True:
                try:
                    p.produce(topic, value=head + pad[:size - len(head)], partition=i % partitions, on_delivery=dr)
                    break
                except BufferError:
                    p.poll(0.05)
            if i % 200 == 0:
                p.poll(0)
        left = p.flush(90)
        if left:
            errors.append('%s: %d undelivered' % (label, left))

    threads = [threading.Thread(target=run, args=(lb,), daemon=True) for lb in labels]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        if t.is_alive():
            raise HarnessError('a producer did not finish in 120 s')
    if errors:
        raise HarnessError('%d delivery errors, first: %s' % (len(errors), errors[0]))
    return acked


def check_once_in_order(rows, labels, per_producer, partitions):
    seen, last = set(), {}
    for part, _off, _k, v in rows:
        if v.startswith(walpath.WARMUP):
            continue
        label, seq, _ = v.split(b':', 2)
        label, seq = label.decode(), int(seq)
        if seq % partitions != part:
            raise HarnessError('%s:%d read from partition %d' % (label, seq, part))
        if (label, seq) in seen:
            raise HarnessError('%s:%d consumed twice' % (label, seq))
        seen.add((label, seq))
        if last.get((label, part), -1) >= seq:
            raise HarnessError('partition %d: %s:%d after %s:%d: order not kept' % (part, label, seq, label,
                                                                                  last[(label, part)]))
        last[(label, part)] = seq
    want = len(labels) * per_producer
    if len(seen) != want:
        raise HarnessError('%d of %d messages consumed' % (len(seen), want))


def direct_phase():
    with kz.TestBed(topics={DIRECT_TOPIC: DIRECT_PARTS}) as tb, \
            kz.ProxyCluster(tb, zones=('a',), extra_config={'workers': 2}) as pc:
        p = pc.proxies[0]
        m0 = pc.metrics(p)
        if m0.sum('kzproxy_workers') != 2:
            raise HarnessError('kzproxy_workers is %s, want 2' % m0.sum('kzproxy_workers'))
        acc0 = m0.sum('kzproxy_connections_accepted_total')
        av0 = m0.sum('kzproxy_requests_total', 0, api='ApiVersions')
        socks = []
        try:
            for i in range(RAW_CONNS):
                socks.append(api_versions_raw(p.kafka, 1000 + i))

            def settled():
                m = pc.metrics(p)
                w = worker_counts(m)
                ok = (m.sum('kzproxy_connections_accepted_total') - acc0 == RAW_CONNS and
                      m.sum('kzproxy_requests_total', 0, api='ApiVersions') - av0 == RAW_CONNS and
                      sum(w.values()) == m.sum('kzproxy_connections_accepted_total'))
                return m if ok else None
            m1 = kz.wait_until(settled, 10, '/metrics to count %d more connections and ApiVersions' % RAW_CONNS)
        finally:
            for s in socks:
                s.close()
        per_worker = worker_counts(m1)
        if len(per_worker) != 2 or min(per_worker.values()) == 0:
            raise HarnessError('connections not spread over the workers: accepted per worker %s' % per_worker)
        print('direct: %d raw connections counted exactly; accepted per worker %s'
              % (RAW_CONNS, {k: int(v) for k, v in sorted(per_worker.items())}))

        labels = ['p%d' % i for i in range(6)]
        per = 1500
        before = pc.metrics(p)
        t0 = time.monotonic()
        produce_many(p.kafka, labels, per, DIRECT_PARTS, DIRECT_TOPIC)
        secs = time.monotonic() - t0
        rows = kz.consume_all(p.kafka, DIRECT_TOPIC, config={'client.id': 'kz-test-workers-reader'}, timeout=90)
        check_once_in_order(rows, labels, per, DIRECT_PARTS)

        def counted():
            m = pc.metrics(p)
            parts = m.sum('kzproxy_produce_partitions_total') - before.sum('kzproxy_produce_partitions_total')
            direct = (m.sum('kzproxy_produce_path_partitions_total', 0) -
                      before.sum('kzproxy_produce_path_partitions_total', 0))
            w = worker_counts(m)
            return m if (parts > 0 and parts == direct and
                         sum(w.values()) == m.sum('kzproxy_connections_accepted_total')) else None
        m2 = kz.wait_until(counted, 10, 'produce partition counters to add up across workers')
        rec = m2.sum('kzproxy_produce_record_bytes_total') - before.sum('kzproxy_produce_record_bytes_total')
        if rec < len(labels) * per * 200:
            raise HarnessError('%d record bytes counted for %d messages of 200 bytes' % (rec, len(labels) * per))
        print('direct: %d messages from %d producers in %.2fs, consumed once and in order; %d record bytes '
              'counted; accepted per worker %s' % (len(labels) * per, len(labels), secs, rec,
                                                    {k: int(v) for k, v in sorted(worker_counts(m2).items())}))


def wal_phase(workers, messages):
    """The walpath load (3 zones, 36 partitions) with workers; returns
    (record bytes, PUTs)."""
    zones = ('a', 'b', 'c')
    workdir = tempfile.mkdtemp(prefix='kz-wk-')
    try:
        # Objects sealed by size (256 KiB) rather than by age, so the PUT
        # count depends on the bytes, not on timing.
        extra = {'peer_secret': walpath.SECRET, 'workers': workers,
                 'wal': {'store': walpath.store_config('local', workdir), 'flush_ms': 2000,
                         'flush_bytes': 262144, 'max_inflight_uploads': 8}}
        with kz.TestBed(topics={walpath.TOPIC: walpath.PARTITIONS}) as tb, \
                kz.ProxyCluster(tb, extra_config=extra, workdir=workdir) as pc:
            walpath.warm_partitions(tb, walpath.TOPIC, walpath.PARTITIONS)
            before = walpath.proxy_figures(pc)
            labels = {z: ['%s%d' % (z, i) for i in range(3)] for z in zones}
            per = messages // (len(zones) * 3)
            threads, results, errs = [], {}, []

            def zone_run(z):
                try:
                    results[z] = produce_many(pc.proxy_in(z).kafka, labels[z], per, walpath.PARTITIONS,
                                              walpath.TOPIC, size=1024,
                                              config={'linger.ms': 20, 'batch.num.messages': 1000})
                except HarnessError as e:
                    errs.append(str(e))
            t0 = time.monotonic()
            for z in zones:
                threads.append(threading.Thread(target=zone_run, args=(z,), daemon=True))
                threads[-1].start()
            for t in threads:
                t.join(150)
            secs = time.monotonic() - t0
            if errs:
                raise HarnessError('workers %d: %s' % (workers, errs[0]))
            rows = kz.consume_all(pc.proxy_in('b').kafka, walpath.TOPIC,
                                  config={'client.id': 'kz-test-workers-reader'}, timeout=120)
            check_once_in_order(rows, [lb for z in zones for lb in labels[z]], per, walpath.PARTITIONS)

            def settled():
                a = walpath.proxy_figures(pc)
                return a if walpath.delta(a, before, 'puts') > 0 else None
            after = kz.wait_until(settled, 10, 'PUTs counted')
            produced = walpath.delta(after, before, 'produced')
            puts = walpath.delta(after, before, 'puts')
            wal_parts = walpath.delta(after, before, 'wal_parts')
            if wal_parts == 0:
                raise HarnessError('workers %d: no partition took the WAL path' % workers)
            accepted = {}
            for px in pc.proxies:
                accepted[px.node_id] = {k: int(v) for k, v in sorted(worker_counts(pc.metrics(px)).items())}
            print('wal, workers %d: %d messages of 1 KiB from 9 producers in %.2fs, consumed once and in order; '
                  '%d record bytes, %d WAL partitions, %d PUTs (%.1f per GB); accepted per worker %s'
                  % (workers, 9 * per, secs, produced, wal_parts, puts, puts / (produced / 1e9), accepted))
            return produced, puts
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)


def limit_phase(limit=3, extra=4):
    """limits.max_connections is the process's with workers 2: `limit`
    connections are served, the `extra` next ones (dealt to both threads in
    turn) are all refused while they stay open, and one is served again once
    one of them closed."""
    with kz.TestBed(topics={DIRECT_TOPIC: 1}) as tb, \
            kz.ProxyCluster(tb, zones=('a',), extra_config={'workers': 2,
                                                            'limits': {'max_connections': limit}}) as pc:
        p = pc.proxies[0]
        rej0 = pc.metrics(p).sum('kzproxy_connections_rejected_total', 0)
        socks = [api_versions_raw(p.kafka, 2000 + i) for i in range(limit)]
        try:
            served = 0
            for i in range(extra):
                try:
                    socks.append(api_versions_raw(p.kafka, 3000 + i))
                    served += 1
                except (HarnessError, OSError):
                    pass
            if served:
                raise HarnessError('%d of %d connections over limits.max_connections=%d were served (workers 2)'
                                   % (served, extra, limit))
            kz.wait_until(lambda: pc.metrics(p).sum('kzproxy_connections_rejected_total', 0) - rej0 == extra, 10,
                          '%d connections counted as rejected' % extra)
            w = worker_counts(pc.metrics(p))
            socks.pop().close()
            kz.wait_until(lambda: pc.metrics(p).sum('kzproxy_connections_active', 0) == limit - 1, 10,
                          'the closed connection given back')
            socks.append(api_versions_raw(p.kafka, 4000))
        finally:
            for s in socks:
                s.close()
    print('limit: %d connections served over %d threads (accepted per thread %r), %d more refused, one served '
          'again after a close' % (limit, len(w), w, extra))


def main():
    limit_phase()
    direct_phase()
    messages = int(os.environ.get('KZ_WORKERS_MESSAGES', '18000'))
    b1, p1 = wal_phase(1, messages)
    b2, p2 = wal_phase(2, messages)
    g1, g2 = p1 / (b1 / 1e9), p2 / (b2 / 1e9)
    # Objects that are not full are timing, not workers: the first batch
    # after a quiet spell and the last of each of the 6 writers (3 proxies x
    # 2 other zones). CI on d8ac0a1: 58 PUTs with 1 worker and 60 with 2,
    # for the same bytes, failed the +2 allowed before. Writers per worker,
    # the regression this guards against, would add at least one partial
    # object per writer (6) and more with each flush_ms: +4 still catches it.
    if p2 > p1 * b2 / b1 + 4:
        raise HarnessError('PUTs per GB rose with workers: %.1f (workers 2) against %.1f (workers 1)' % (g2, g1))
    print('PUTs per GB: workers 1 %.1f, workers 2 %.1f' % (g1, g2))


if __name__ == '__main__':
    kz.run_test(main, timeout=500)
