"""bench_report: the report of the benchmark driver run_bench.py: the
machine, each figure as a ratio to direct in the same run, the issue's
targets met or missed, and the printed table."""

import math
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))

from kzharness import top_srcdir  # noqa: E402
from bench_const import (IDEM_DEFAULT_QUEUE_KIB, IDEM_DEFAULT_RATE_MBPS, MSG_SIZE, NA_WAL,  # noqa: E402
                         PIPE_BATCH_RECORDS, PIPE_IN_FLIGHT)
from bench_measure import ratio  # noqa: E402


def machine_info():
    info = {'nproc': os.cpu_count(), 'kernel': platform.release(), 'python': platform.python_version()}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    info['cpu_model'] = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open('/proc/meminfo') as f:
            info['mem_total_kib'] = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        from confluent_kafka import libversion
        info['librdkafka'] = libversion()[0]
    except ImportError:
        pass
    try:
        info['git'] = subprocess.run(['git', '-C', top_srcdir(), 'describe', '--always', '--dirty'],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10,
                                     text=True).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def fmt(v, spec='%.2f', na='-'):
    return na if v is None else spec % v


def sig3(v):
    """v with three significant digits, trailing zeros kept: 1.10, 0.264, 812."""
    if v is None:
        return '-'
    if v <= 0:
        return '%g' % v
    return '%.*f' % (max(0, 2 - math.floor(math.log10(v))), v)


def instr_line(e):
    """'same-zone: 0.264 instructions/payload byte (proxy a)'."""
    z = e['instructions_per_payload_byte_by_zone']
    who = ('proxy %s' % e['zones'][0] if len(z) == 1 else
           ', '.join('%s %s' % (k, sig3(z[k])) for k in e['zones']))
    return '%s: %s instructions/payload byte (%s)' % (e['label'], sig3(e['instructions_per_payload_byte']), who)


def fmt_ratio(v):
    """A ratio with two significant digits below 0.1 (0.0012), else two decimals."""
    return '-' if v is None else ('%.2g' % v if v < 0.1 else '%.2f' % v)


def direct_of(results, load):
    for e in results['produce']:
        if e['path'] == 'direct' and e['load'] == load and 'client' in e:
            return e
    return None


def add_ratios(results):
    for e in results['produce']:
        d = direct_of(results, e['load'])
        if d is None or 'client' not in e or e.get('available') is False or e.get('client_kind') == 'java':
            continue
        c, dc = e['client'], d['client']
        e['throughput_ratio_to_direct'] = ratio(c.get('mbps'), dc.get('mbps'))
        for q in ('p50', 'p99', 'p999'):
            a, b = c.get('lat_us', {}).get(q), dc.get('lat_us', {}).get(q)
            e['%s_added_ms' % q] = (a - b) / 1e3 if a is not None and b is not None and a >= 0 and b >= 0 else None
    dcons = next((e for e in results['consume'] if e['path'] == 'direct'), None)
    for e in results['consume']:
        if dcons is not None:
            e['throughput_ratio_to_direct'] = ratio(e['client'].get('mbps'), dcons['client'].get('mbps'))
            e['proxy_cpu_ratio_to_direct_broker'] = ratio(e.get('proxy_cpu_s_per_gb'),
                                                          dcons.get('broker_cpu_s_per_gb'))
    # The Java rows have no reference (no Java run straight to the brokers):
    # librdkafka's direct run is another client.
    add_relative(results['produce'], lambda e: None if e.get('client_kind') == 'java' else direct_of(results, e['load']))
    add_relative(results['idem_default'],
                 lambda e: next((d for d in results['idem_default'] if d['path'] == 'direct'
                                 and d['load'] == e['load'] and 'client' in d), None))
    add_relative(results['idempotent'], lambda e: single_direct_of(results, e))


def produce_row(results, path, load):
    """The produce row of path at load that ran (None if none or n/a)."""
    for e in results['produce']:
        if e['path'] == path and e['load'] == load:
            return e if e.get('available') is not False and 'client' in e else None
    return None


def peer_side_by_side(results):
    """kzproxy's same-zone path and the Kroxylicious peer, figure by figure,
    from the rows of this run: {figure: (kzproxy, kroxylicious)}; None
    when the peer did not run."""
    kx = results.get('kroxylicious') or {}
    if not kx.get('available'):
        return None

    def prod(path, load, key):
        e = produce_row(results, path, load)
        if e is None:
            return None
        return e['client'].get('mbps') if key == 'mbps' else e.get(key)

    def cons(path):
        e = next((e for e in results['consume'] if e['path'] == path), None)
        return e.get('proxy_cpu_s_per_gb') if e else None

    def pairs(key):
        lp = results.get(key) or {}
        return (lp.get('median') or {}).get('p99_added_ms')

    return {
        'p99_added_ms_median_of_pairs': (pairs('latency_pairs'), pairs('latency_pairs_kroxylicious')),
        'p99_added_ms_fixed': (prod('same_zone', 'fixed', 'p99_added_ms'),
                               prod('kroxylicious', 'fixed', 'p99_added_ms')),
        'proxy_cpu_s_per_gb_fixed': (prod('same_zone', 'fixed', 'proxy_cpu_s_per_gb'),
                                     prod('kroxylicious', 'fixed', 'proxy_cpu_s_per_gb')),
        'proxy_cpu_s_per_gb_saturation': (prod('same_zone', 'saturation', 'proxy_cpu_s_per_gb'),
                                          prod('kroxylicious', 'saturation', 'proxy_cpu_s_per_gb')),
        'saturation_mbps': (prod('same_zone', 'saturation', 'mbps'), prod('kroxylicious', 'saturation', 'mbps')),
        'saturation_ratio_to_direct': (prod('same_zone', 'saturation', 'throughput_ratio_to_direct'),
                                       prod('kroxylicious', 'saturation', 'throughput_ratio_to_direct')),
        'consume_proxy_cpu_s_per_gb': (cons('same_zone'), cons('kroxylicious')),
    }


def single_direct_of(results, e):
    """The direct one-partition row an idempotent row compares with: same
    client, same idempotence, pipelined or not (txn id rows: the plain
    pipelined one)."""
    if e['path'].startswith('direct'):
        return None
    want = 'direct_pipelined' if e.get('pipelined') else ('direct' if e.get('idempotent') else 'direct_plain')
    return next((d for d in results['idempotent'] if d['path'] == want and 'client' in d), None)


def add_relative(rows, ref_of):
    """Each figure of each row as a ratio to its direct reference measured in
    the same run (issue 17 item 4: machines differ by 3x from run to run, a
    ratio does not): throughput and latencies as multiples of direct's, the
    proxies' CPU per GB as a multiple of the brokers' CPU per GB in the direct
    run (the mock broker: one thread doing the same work in every run)."""
    for e in rows:
        d = ref_of(e)
        if d is None or d is e or 'client' not in e or e.get('available') is False:
            continue
        c, dc = e['client'], d['client']
        both_mbps = c.get('mbps') is not None and dc.get('mbps') is not None
        rel = {'throughput': ratio(c.get('mbps'), dc.get('mbps')) if both_mbps
               else ratio(c.get('msgs_per_s'), dc.get('msgs_per_s'))}
        for q in ('p50', 'p99'):
            a, b = c.get('lat_us', {}).get(q), dc.get('lat_us', {}).get(q)
            rel[q] = ratio(a, b) if a is not None and b and a >= 0 and b > 0 else None
        rel['proxy_cpu_to_direct_broker_cpu'] = ratio(e.get('proxy_cpu_s_per_gb'), d.get('broker_cpu_s_per_gb'))
        rel['broker_cpu'] = ratio(e.get('broker_cpu_s_per_gb'), d.get('broker_cpu_s_per_gb'))
        rel['requests_per_s'] = ratio(e.get('requests_per_s'), d.get('requests_per_s'))
        e['relative_to_direct'] = rel
        if 'throughput_ratio_to_direct' not in e:
            e['throughput_ratio_to_direct'] = rel['throughput']


def targets(results, opts):
    """The issue's targets, each with the measured figure and met/missed."""
    out = []

    def add(name, value, ok, unit=''):
        out.append({'target': name, 'measured': value, 'unit': unit,
                    'status': 'n/a' if ok is None else ('met' if ok else 'MISSED')})

    def prod(path, load):
        return produce_row(results, path, load)

    sz = prod('same_zone', 'fixed')
    if sz:
        mbps = sz['client'].get('mbps')
        add('same-zone carries the whole fixed load (%s MB/s)' % opts.rate_mbps, mbps,
            mbps is not None and mbps >= 0.97 * opts.rate_mbps and not sz['client'].get('failed')
            and not sz['client'].get('undelivered'), 'MB/s')
        lp = results.get('latency_pairs')
        if lp and lp['median']['p99_added_ms'] is not None:
            v = lp['median']['p99_added_ms']
            add('same-zone p99 added over direct <= 0.2 ms (median of %d pairs)' % lp['pairs'], v,
                v <= 0.2, 'ms')
        else:
            add('same-zone p99 added over direct <= 0.2 ms', sz.get('p99_added_ms'),
                None if sz.get('p99_added_ms') is None else sz['p99_added_ms'] <= 0.2, 'ms')
        add('same-zone proxy CPU <= 1 core-s/GB', sz.get('proxy_cpu_s_per_gb'),
            None if sz.get('proxy_cpu_s_per_gb') is None else sz['proxy_cpu_s_per_gb'] <= 1.0, 's/GB')
    for load in ('fixed', 'saturation'):
        sz, tls = prod('same_zone', load), prod('same_zone_tls', load)
        if sz and tls and sz.get('proxy_cpu_s_per_gb') is not None and tls.get('proxy_cpu_s_per_gb') is not None:
            d = round(tls['proxy_cpu_s_per_gb'] - sz['proxy_cpu_s_per_gb'], 3)
            add('same-zone TLS proxy CPU <= plaintext + 0.5 core-s/GB (%s load)' % load, d, d <= 0.5, 's/GB more')
    cons = {e['path']: e for e in results['consume']}
    sz, tls = cons.get('same_zone'), cons.get('same_zone_tls')
    if sz and tls and sz.get('proxy_cpu_s_per_gb') is not None and tls.get('proxy_cpu_s_per_gb') is not None:
        d = round(tls['proxy_cpu_s_per_gb'] - sz['proxy_cpu_s_per_gb'], 3)
        add('same-zone TLS consume proxy CPU <= plaintext + 0.5 core-s/GB', d, d <= 0.5, 's/GB more')
    for load in ('fixed', 'saturation'):
        sz, tls = prod('same_zone_java', load), prod('same_zone_tls_java', load)
        if sz and tls and sz.get('proxy_cpu_s_per_gb') is not None and tls.get('proxy_cpu_s_per_gb') is not None:
            d = round(tls['proxy_cpu_s_per_gb'] - sz['proxy_cpu_s_per_gb'], 3)
            add('same-zone TLS proxy CPU <= plaintext + 0.5 core-s/GB (Java client, %s load)' % load, d, d <= 0.5,
                's/GB more')
    for path in ('wal_local', 'wal_s3'):
        w = prod(path, 'fixed')
        add('%s proxy CPU <= 2 core-s/GB (both proxies)' % path, w and w.get('proxy_cpu_s_per_gb'),
            None if not w or w.get('proxy_cpu_s_per_gb') is None else w['proxy_cpu_s_per_gb'] <= 2.0, 's/GB')
    w = prod('wal_local', 'fixed')
    p99 = w['client'].get('lat_us', {}).get('p99') / 1e3 if w else None
    flush_ms = opts.flush_ms
    add('WAL local p99 <= flush interval + 25 ms (%d ms)' % (flush_ms + 25), p99,
        None if p99 is None else p99 <= flush_ms + 25, 'ms')
    idem = next((e for e in results['idempotent'] if e['path'] == 'wal_local'
                 and e.get('available') is not False), None)
    plain = next((e for e in results['idempotent'] if e['path'] == 'wal_local_plain'), None)
    prps = plain.get('requests_per_s') if plain else None
    add('one producer (not idempotent) on the WAL path >= 20 requests/s', prps,
        None if prps is None else prps >= 20, 'req/s')
    rps = idem.get('requests_per_s') if idem else None
    add('one idempotent producer on the WAL path >= 20 requests/s (librdkafka)', rps,
        None if rps is None else rps >= 20, 'req/s')
    pipe = next((e for e in results['idempotent'] if e['path'] == 'wal_local_pipelined'
                 and e.get('available') is not False), None)
    pps = pipe.get('requests_per_s') if pipe else None
    add('one idempotent producer on the WAL path >= 20 requests/s (pipelined)', pps,
        None if pps is None else pps >= 20, 'req/s')
    pipes = [e for e in results['idempotent'] if e.get('pipelined')]
    bad = [e for e in pipes if not e.get('in_order')]
    add('pipelined producer: every batch in order, on every path', len(bad) if pipes else None,
        None if not pipes else not bad, 'runs out of order')
    idle = next((e for e in results['idle_connections'] if 'kib_per_connection' in e), None)
    kib = idle['kib_per_connection'] if idle else None
    add('<= 16 KiB per idle client connection', kib, None if kib is None else kib <= 16, 'KiB')
    ins = next((e for e in (results.get('instr') or {}).get('paths', [])
                if e.get('path') == 'wal_local' and e.get('instructions_per_payload_byte') is not None), None)
    ipb = None if ins is None or opts.quick else ins['instructions_per_payload_byte']
    add('WAL local instructions per payload byte <= 0.55 (half of 1.10, b53b116)', ipb,
        None if ipb is None else ipb <= 0.55, 'instr/B')
    return out


def print_table(results, opts, out=sys.stdout):
    w = out.write
    m = results['machine']
    w('\nkzproxy benchmark  (%s; %s CPUs: %s; kernel %s; librdkafka %s)\n' % (
        m.get('git'), m.get('nproc'), m.get('cpu_model'), m.get('kernel'), m.get('librdkafka')))
    w('%d-byte messages, acks=all, linger.ms=5; runs of %ss after %ss warm-up; fixed load %s MB/s '
      '(MB = 10^6 bytes); flush %d ms.\n' % (MSG_SIZE, opts.duration, opts.warmup, opts.rate_mbps, opts.flush_ms))
    w('Client, brokers (%s) and proxies share the same CPUs. WAL s3rver: PUTs\n'
      'signed UNSIGNED-PAYLOAD, the default over https (s3rver itself is plain http).\n\n'
      % ('Apache Kafka: one JVM per broker' if opts.backend == 'kafka' else 'one mock-cluster thread'))
    hdr = ('%-20s %-6s %8s %9s %6s %8s %8s %8s %8s %9s %9s %8s %7s %7s %9s %9s\n' % (
        'produce', 'load', 'MB/s', 'msgs/s', 'ratio', 'p50 ms', 'p99 ms', 'p999 ms', '+p99 ms',
        'pxCPU/GB', 'brkCPU/GB', 'xzone/B', 'PUT/GB', 'GET/GB', 'obj KiB', 'peakRSS'))
    w(hdr)
    w('-' * (len(hdr) - 1) + '\n')
    for e in results['produce']:
        load = 'fixed' if e['load'] == 'fixed' else 'sat'
        if e.get('available') is False:
            w('%-20s %-6s %s: %s\n' % (e['label'], load, e.get('na', NA_WAL), e.get('reason', '')[:90]))
            continue
        c = e['client']
        lat = c.get('lat_us', {})
        w('%-20s %-6s %8s %9s %6s %8s %8s %8s %8s %9s %9s %8s %7s %7s %9s %9s%s\n' % (
            e['label'], load, fmt(c.get('mbps'), '%.1f'), fmt(c.get('msgs_per_s'), '%.0f'),
            fmt(e.get('throughput_ratio_to_direct'), '%.2f'),
            fmt(lat.get('p50') / 1e3 if 'p50' in lat else None), fmt(lat.get('p99') / 1e3 if 'p99' in lat else None),
            fmt(lat.get('p999') / 1e3 if 'p999' in lat else None),
            fmt(e.get('p99_added_ms')) if e['path'] != 'direct' else '',
            fmt(e.get('proxy_cpu_s_per_gb')) if e['path'] != 'direct' else '',
            fmt(e.get('broker_cpu_s_per_gb')),
            fmt(e.get('xzone_bytes_per_payload_byte'), '%.4f') if e['path'] != 'direct' else '',
            fmt(e.get('s3_puts_per_gb'), '%.0f') if e['path'].startswith('wal') else '',
            fmt(e.get('s3_gets_per_gb'), '%.0f') if e['path'].startswith('wal') else '',
            fmt(e['mean_object_bytes'] / 1024 if e.get('mean_object_bytes') else None, '%.0f')
            if e['path'].startswith('wal') else '',
            ('%d KiB' % e['proxy_peak_rss_kib_max']) if e.get('proxy_peak_rss_kib_max') else '',
            ('  ERROR: ' + c['error']) if 'error' in c else ''))
    if any(e.get('client_kind') == 'java' and e.get('available') is not False for e in results['produce']):
        w('(Java rows: Apache Kafka\'s ProducerPerformance through proxy a, acks=all, linger.ms=5, the Java\n'
          ' client\'s other defaults; MB/s from the topic\'s end offsets after the warm-up; p50/p99/p999 are\n'
          ' ProducerPerformance\'s own over every record, none when a flat-out run is stopped by time.)\n')
    elif results.get('java_skipped'):
        w('(Java rows: %s)\n' % results['java_skipped'])
    wal = [e for e in results['produce'] if e['path'].startswith('wal') and e.get('available') is not False
           and e.get('proxy_cpu_s_per_gb_by_zone')]
    if wal:
        w('\nWAL path, core-s per GB by process: proxy a (writes the objects), proxy b (reads them,\n'
          'produces to the leader), the store (s3rver, a node process: not the proxies\' CPU)\n')
        for e in wal:
            z = e['proxy_cpu_s_per_gb_by_zone']
            w('  %-20s %-6s a %s  b %s  both %s  s3rver %s\n' % (
                e['label'], 'fixed' if e['load'] == 'fixed' else 'sat', fmt(z.get('a')), fmt(z.get('b')),
                fmt(e.get('proxy_cpu_s_per_gb')),
                fmt(e.get('s3rver_cpu_s_per_gb')) if e['path'] == 'wal_s3' else '-'))
    rel = [e for e in results['produce'] if e.get('relative_to_direct')]
    if rel:
        w('\nratios to direct in the same run, same load: throughput, p50 and p99 latency as multiples of\n'
          'direct\'s; the proxies\' CPU per GB over the brokers\' CPU per GB in the direct run (pxCPU/brk)\n')
        w('  %-22s %-6s %8s %7s %7s %10s %9s\n' % ('', 'load', 'through', 'p50 x', 'p99 x', 'pxCPU/brk',
                                                   'brkCPU x'))
        for e in rel:
            r = e['relative_to_direct']
            w('  %-22s %-6s %8s %7s %7s %10s %9s\n' % (
                e['label'], 'fixed' if e['load'] == 'fixed' else 'sat', fmt(r['throughput']), fmt(r['p50'], '%.1f'),
                fmt(r['p99'], '%.1f'), fmt(r['proxy_cpu_to_direct_broker_cpu']), fmt(r['broker_cpu'])))
    if results.get('idem_default'):
        w('\nlibrdkafka idempotent producer, default settings (enable.idempotence=true only: linger.ms 5,\n'
          'batch.size 1 MB, max.in.flight 5), 12 partitions; fixed = %d MB/s offered, sat = flat out with a\n'
          '%d MiB client queue. ratio: to direct\'s same load; pxCPU a/b: core-s per GB of each proxy\n'
          % (IDEM_DEFAULT_RATE_MBPS, IDEM_DEFAULT_QUEUE_KIB // 1024))
        w('  %-34s %-5s %7s %6s %8s %8s %6s %7s %8s %8s %10s\n' % (
            '', 'load', 'MB/s', 'ratio', 'p50 ms', 'p99 ms', 'p99 x', 'req/s', 'pxCPU a', 'pxCPU b', 'pxCPU/brk'))
        for e in results['idem_default']:
            load = 'fixed' if e['load'] == 'fixed' else 'sat'
            if e.get('available') is False:
                w('  %-34s %-5s %s: %s\n' % (e['label'], load, NA_WAL, e.get('reason', '')[:80]))
                continue
            c, r = e['client'], e.get('relative_to_direct') or {}
            lat, z = c.get('lat_us', {}), e.get('proxy_cpu_s_per_gb_by_zone') or {}
            w('  %-34s %-5s %7s %6s %8s %8s %6s %7s %8s %8s %10s%s\n' % (
                e['label'], load, fmt(c.get('mbps'), '%.1f'), fmt(r.get('throughput')),
                fmt(lat.get('p50') / 1e3 if 'p50' in lat else None),
                fmt(lat.get('p99') / 1e3 if 'p99' in lat else None), fmt(r.get('p99'), '%.1f'),
                fmt(e.get('requests_per_s'), '%.1f'), fmt(z.get('a')), fmt(z.get('b')),
                fmt(r.get('proxy_cpu_to_direct_broker_cpu')), ('  ERROR: ' + c['error']) if 'error' in c else ''))
    lp = results.get('latency_pairs')
    if lp and lp['runs']:
        w('\nfixed load, direct and same-zone alternately, %d pairs of %ss: median of the pairs\n' % (
            lp['pairs'], lp['duration_s']))
        w('  +p50 %s ms   +p99 %s ms   +p999 %s ms   same-zone proxy %s core-s/GB\n' % (
            fmt(lp['median']['p50_added_ms']), fmt(lp['median']['p99_added_ms']),
            fmt(lp['median']['p999_added_ms']), fmt(lp['median_same_zone_cpu_s_per_gb'])))
    sbs = peer_side_by_side(results)
    if sbs is not None:
        kx = results['kroxylicious']
        w('\npeer, same run and machine: kzproxy same-zone and Kroxylicious %s (pass-through virtual cluster,\n'
          ' no filters; %ss of unmeasured produce first, for its JIT)\n' % (kx['version'], kx.get('warmup_s')))
        w('  %-46s %10s %13s\n' % ('', 'kzproxy', 'Kroxylicious'))
        for key, what, spec in (
                ('p99_added_ms_median_of_pairs', '+p99 over direct, ms (median of the pairs)', '%.2f'),
                ('p99_added_ms_fixed', '+p99 over direct, ms (fixed-load run)', '%.2f'),
                ('proxy_cpu_s_per_gb_fixed', 'proxy CPU, core-s/GB, fixed load', '%.2f'),
                ('proxy_cpu_s_per_gb_saturation', 'proxy CPU, core-s/GB, flat out', '%.2f'),
                ('saturation_mbps', 'flat out, MB/s', '%.1f'),
                ('saturation_ratio_to_direct', 'flat out, ratio to direct', '%.2f'),
                ('consume_proxy_cpu_s_per_gb', 'consume, proxy CPU, core-s/GB', '%.2f')):
            a, b = sbs[key]
            w('  %-46s %10s %13s\n' % (what, fmt(a, spec), fmt(b, spec)))
    elif results.get('kroxylicious'):
        w('\npeer: Kroxylicious n/a: %s\n' % results['kroxylicious'].get('reason'))
    w('\n%-24s %8s %9s %6s %9s %10s %9s %8s %9s %7s\n' % (
        'consume', 'MB/s', 'msgs/s', 'ratio', 'pxCPU/GB', 'pxCPU/brk', 'brkCPU/GB', 'xzone/B', 'followerP', 'passes'))
    for e in results['consume']:
        c, m = e['client'], e.get('metrics') or {}
        px = e['path'] != 'direct'
        w('%-24s %8s %9s %6s %9s %10s %9s %8s %9s %7s%s\n' % (
            e['label'], fmt(c.get('mbps'), '%.1f'), fmt(c.get('msgs_per_s'), '%.0f'),
            fmt(e.get('throughput_ratio_to_direct')),
            fmt(e.get('proxy_cpu_s_per_gb')) if px else '',
            fmt(e.get('proxy_cpu_ratio_to_direct_broker')) if px else '', fmt(e.get('broker_cpu_s_per_gb')),
            fmt(e.get('xzone_payload_bytes_per_payload_byte'), '%.4f') if px else '',
            fmt(m.get('follower_partitions'), '%d') if px else '', c.get('passes', '-'),
            ('  ERROR: ' + c['error']) if 'error' in c else ''))
    if any(e['path'].startswith('zone_b') for e in results['consume']):
        w('(kzproxy b: a consumer in zone b through the zone-b proxy; follower: topic led in zone a with its\n'
          ' follower in zone b, fetch_from_follower default; xzone leader: led in zone a, no follower. xzone/B:\n'
          ' fetch payload the proxies took from brokers of another zone per byte read; followerP: partition\n'
          ' fetches sent to a follower.)\n')
    for e in results.get('consume_fanout', []):
        w('consume fan-out, %d groups in zone b, no replica there, fetch cache %-3s: fetch payload across zones '
          '%s MB = %s x one group\'s records (%s MB)\n' % (
              len(e['groups']), e['cache'], fmt(e['xzone_payload_bytes'] / 1e6, '%.1f'),
              fmt(e.get('xzone_per_group_bytes')),
              fmt(e['one_group_record_bytes'] / 1e6 if e.get('one_group_record_bytes') else None, '%.1f')))
    w('\n%-38s %-10s %8s %8s %8s %9s %6s  %s\n' % ('1 producer, 1 partition, 5 in flight', 'client', 'req/s',
                                                     'p50 ms', 'p99 ms', 'msgs/s', 'ratio', 'order'))
    for e in results['idempotent']:
        if e.get('available') is False:
            w('%-38s %s: %s\n' % (e['label'], NA_WAL, e.get('reason', '')[:90]))
            continue
        c = e['client']
        lat = c.get('lat_us', {})
        order = ''
        if e.get('pipelined'):
            order = ('ok: offsets, sequences' if e.get('sequences_checked_by_broker') else 'ok: offsets') \
                if e.get('in_order') else 'FAILED'
        w('%-38s %-10s %8s %8s %8s %9s %6s  %s%s\n' % (
            e['label'], e.get('client_kind', ''), fmt(e.get('requests_per_s'), '%.1f'),
            fmt(lat.get('p50') / 1e3 if 'p50' in lat else None), fmt(lat.get('p99') / 1e3 if 'p99' in lat else None),
            fmt(c.get('msgs_per_s'), '%.0f'), fmt_ratio((e.get('relative_to_direct') or {}).get('throughput')),
            order, ('  ERROR: ' + c['error']) if 'error' in c else ''))
    if any(e.get('pipelined') for e in results['idempotent']):
        w('(pipelined: kz_bench\'s own idempotent producer, %d requests of one %d-record batch in flight, as the\n'
          ' Java client keeps them; librdkafka keeps one. order: the base offsets followed each other; with a\n'
          ' txn id the %s.)\n'
          % (PIPE_IN_FLIGHT, PIPE_BATCH_RECORDS,
             'brokers checked every sequence (Kafka checks them for every idempotent producer)'
             if opts.backend == 'kafka' else
             'mock broker also checked every sequence, which it does only for a transactional id'))
    for e in results['sequence_controls']:
        w('sequence check control, %s: a deliberate sequence gap was %s\n' % (
            e['path'], 'answered %s' % e['client'].get('error') if e['detected'] else 'NOT CAUGHT'))
    for e in results['idle_connections']:
        w('\nidle connections: %d on proxy %s: RSS %s -> %s KiB (%s KiB per connection), peak %s KiB%s\n' % (
            e['connections'], e['proxy_zone'], e.get('rss_before_kib'), e.get('rss_idle_kib'),
            fmt(e.get('kib_per_connection')), e.get('peak_rss_kib'),
            ('  ERROR: ' + e['error']) if 'error' in e else ''))
    if results.get('workers'):
        w('\nsame-zone saturation by workers (2 producers at once; client, mock broker and proxy share the '
          'machine\'s CPUs):\n')
        for e in results['workers']:
            w('  %-32s %8s MB/s  ratio %-6s  proxy %s core-s/GB (%s core-s)\n' % (
                'workers %d%s' % (e['workers'], ', wal section' if e.get('wal_section') else '')
                if e['workers'] else 'direct', fmt(e['mbps'], '%.1f'),
                fmt_ratio(e['ratio_to_direct']), fmt(e['proxy_cpu_s_per_gb']), fmt(e['proxy_cpu_s'])))
    ins = results.get('instr')
    if ins:
        w('\ninstr: the proxies\' user-space instructions per payload byte (callgrind Ir; kernel copies not\n'
          'counted): a run of %d messages minus a run of %d, each on fresh proxies, over their payload\n'
          'difference; one producer, one partition, %d messages of %d bytes per Produce request, %s MB/s%s\n' % (
              ins['messages'][1], ins['messages'][0], ins['batch_msgs'], ins['msg_size'], ins['rate_mbps'],
              '; WAL objects of %d MiB, flush_ms %d' % (ins['wal_flush_bytes'] >> 20, ins['wal_flush_ms'])
              if ins.get('wal_flush_ms') else ''))
        if ins.get('skipped'):
            w('  figure skipped: %s\n' % ins['skipped'])
        for e in ins['paths']:
            if e.get('error'):
                w('  %s: ERROR %s\n' % (e['label'], e['error'].splitlines()[0]))
            elif e.get('instructions_per_payload_byte') is not None:
                w('  %s\n' % instr_line(e))
    w('\ntargets (reported, not asserted):\n')
    for t in results['targets']:
        v = t['measured']
        w('  %-7s %-62s %s %s\n' % (t['status'], t['target'], fmt(v, '%.4g', 'n/a'), t['unit'] if v is not None else ''))
    if results['failures']:
        w('\nfailures:\n')
        for f in results['failures']:
            w('  %s: %s\n' % (f['scenario'], f['error']))
            for who, lines in (f.get('proxy_logs') or {}).items():
                w('    proxy %s log ends:\n%s\n' % (who, '\n'.join('      ' + ln for ln in lines.splitlines())))
    out.flush()
