#!/usr/bin/python3
"""Smoke test of the benchmark (make check): run_bench.py --quick runs every
scenario for a fraction of a second; this checks that it produced
well-formed numbers, never how fast anything was (performance is reported
by `make bench`, not asserted here), and that every WAL-path run did take
the WAL path: it delivered messages and its proxies stored objects (objwal
PUTs, local store or s3rver alike). A WAL row reported n/a fails the test,
except the s3rver rows when s3rver is not installed (tests/s3/node_modules,
scripts/deps.sh), a missing tool. Also: every row has its ratios to direct;
the zone-b consumer of the topic with a zone-b follower fetched from it
(no fetch payload across zones) and the one of the topic without read
across zones; the fan-out's groups each read the whole topic and the fetch
cache answered some of their fetches; librdkafka's default-settings
idempotent producer delivered on direct and each WAL path; the Kroxylicious
peer (tests/bench/bench_peer.py) ran with figures beside kzproxy's, unless
java is missing or it is neither built nor buildable; the instr
scenario gave a number of instructions per payload byte (and positive
instruction counts per run) for each
proxy on the same-zone and the WAL local path (not its size: a quick run's
few hundred messages say little), unless valgrind is not installed or
kzproxy is built with AddressSanitizer (valgrind does not support it, and the
count would be of the instrumented code)."""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))
from kzharness import kzproxy_has_asan, run_test, top_builddir, top_srcdir  # noqa: E402
from bench_kroxy import ensure_built, unavailable  # noqa: E402  (beside this file)

HERE = os.path.dirname(os.path.abspath(__file__))
S3RVER_MODULES = os.path.join(top_srcdir(), 'tests', 's3', 'node_modules')


def number(v, what):
    assert isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), \
        '%s: expected a number, got %r' % (what, v)
    return v


def unavailable_ok(e, what):
    """True when row e is n/a for the one accepted reason: a wal_s3 row and
    s3rver not installed. Any other n/a row (the proxy rejected the WAL
    config, s3rver installed but not starting, or a run that stored no
    object) fails here."""
    if e.get('available') is not False:
        return False
    assert e['path'].startswith('wal_s3') and not os.path.isdir(S3RVER_MODULES), \
        '%s: reported n/a (%s); only the s3rver runs may be n/a, and only when %s is missing' \
        % (what, e.get('reason') or 'no reason given', S3RVER_MODULES)
    assert e.get('reason'), '%s: unavailable without a reason' % what
    print('%s: n/a, s3rver is not installed (%s)' % (what, e['reason']))
    return True


def check_wal_objects(e, what):
    """A WAL-path run delivered messages and its proxies stored objects."""
    if not e['path'].startswith('wal'):
        return
    delivered = e['client'].get('delivered')
    assert isinstance(delivered, int) and delivered > 0, \
        '%s: %r messages delivered through the WAL path' % (what, delivered)
    puts = e['metrics'].get('s3_put')
    assert puts, ('%s: %d messages delivered but the proxies stored %r objects (objwal PUTs) during the run: '
                  'the produce did not take the WAL path' % (what, delivered, puts))


def check_produce(e):
    what = 'produce %s %s' % (e['path'], e['load'])
    if unavailable_ok(e, what):
        return
    c = e['client']
    assert 'error' not in c, '%s: %s' % (what, c.get('error'))
    assert number(c['delivered'], what + ' delivered') > 0, what + ': nothing delivered'
    check_wal_objects(e, what)
    assert number(c['mbps'], what + ' MB/s') > 0
    assert number(c['msgs_per_s'], what + ' msgs/s') > 0
    for q in ('p50', 'p99', 'p999'):
        number(c['lat_us'][q], '%s %s' % (what, q))
    assert c['lat_us']['p50'] <= c['lat_us']['p99'] <= c['lat_us']['p999'] <= c['lat_us']['max']
    if e['path'] != 'direct':
        number(e['throughput_ratio_to_direct'], what + ' ratio')
        number(e['relative_to_direct']['p99'], what + ' p99 ratio')
        number(e['relative_to_direct']['proxy_cpu_to_direct_broker_cpu'], what + ' CPU ratio')
        number(e['proxy_cpu_s_per_gb'], what + ' CPU/GB')
        assert e['proxy_peak_rss_kib_max'] > 0


def check_peer(r, why):
    """The Kroxylicious peer (bench_peer): it ran whenever bench_kroxy says
    it can (why None: java, and Maven or a build), with produce rows at
    both loads (checked as every row is, by check_produce), its pairs, a
    consume row and the side-by-side figures; otherwise it says why it did
    not."""
    kx = r.get('kroxylicious')
    assert kx is not None, 'no kroxylicious entry'
    if why is not None:
        assert kx['available'] is False and kx.get('reason'), kx
        print('kroxylicious: n/a, %s' % why)
        return None
    assert kx['available'] is True, 'Kroxylicious could run here but did not: %s' % kx.get('reason')
    rows = {e['load'] for e in r['produce'] if e['path'] == 'kroxylicious' and 'client' in e}
    assert rows == {'fixed', 'saturation'}, rows
    lp = r['latency_pairs_kroxylicious']
    assert lp['pairs'] == len(lp['runs']) >= 1, lp
    number(lp['median']['p99_added_ms'], 'kroxylicious pairs +p99')
    sbs = kx['side_by_side']
    for k in ('p99_added_ms_median_of_pairs', 'proxy_cpu_s_per_gb_fixed', 'proxy_cpu_s_per_gb_saturation',
              'saturation_mbps', 'consume_proxy_cpu_s_per_gb'):
        number(sbs[k][0], 'side by side %s, kzproxy' % k)
        number(sbs[k][1], 'side by side %s, Kroxylicious' % k)
    return kx


def check_pipelined(r):
    """kz_bench's pipelined idempotent producer: a row on each path, with
    numbers, and its batches in order: no sequence error, no base offset out
    of place; the control run's sequence gap was caught (else the broker
    checks nothing and zero sequence errors prove nothing)."""
    rows = {e['path']: e for e in r['idempotent']}
    for p in ('same_zone', 'wal_local', 'wal_s3'):
        for suffix in ('_pipelined', '_pipelined_txn'):
            e = rows.get(p + suffix)
            assert e is not None, 'no %s%s row' % (p, suffix)
            what = 'pipelined ' + e['path']
            if unavailable_ok(e, what):
                continue
            c = e['client']
            assert c.get('mode') == 'idem', '%s: not kz_bench idem: %r' % (what, c)
            errors = c.get('errors')
            assert c.get('sequence_errors') == 0 and not errors, \
                '%s: sequence errors, the path reordered or repeated pipelined batches: %r' % (what, errors)
            assert c.get('offsets_backwards') == 0 and c.get('offset_gaps') == 0, \
                '%s: base offsets out of order: %r' % (what, c)
            assert 'error' not in c, '%s: %s' % (what, c['error'])
            assert e['in_order'] is True, what
            assert number(c['requests'], what + ' requests') > 0
            assert number(e['requests_per_s'], what + ' requests/s') > 0
            assert number(c['msgs_per_s'], what + ' msgs/s') > 0
            assert number(c['mbps'], what + ' MB/s') > 0
            assert 1 <= c['max_in_flight_seen'] <= 5, what
            lat = c['lat_us']
            assert 0 <= number(lat['p50'], what + ' p50') <= number(lat['p99'], what + ' p99') <= lat['max']
            assert e['sequences_checked_by_broker'] == (suffix == '_pipelined_txn'), what
    controls = {e['path']: e for e in r['sequence_controls']}
    for p in ('same_zone', 'wal_local', 'wal_s3'):
        if rows[p + '_pipelined'].get('available') is False:
            continue
        e = controls.get(p)
        assert e is not None, 'no sequence check control on %s' % p
        assert e['detected'] and e['client']['errors']['45']['count'] >= 1, \
            'the sequence gap of the control run on %s was not caught: %r' % (p, e['client'])


def check_followers(r):
    """The zone-b consumer of the topic with a follower in zone b read it
    from the follower (no fetch payload across zones); the one of the topic
    with no follower read it across zones."""
    rows = {e['path']: e for e in r['consume']}
    f, x = rows['zone_b_follower'], rows['zone_b_leader']
    assert f['metrics'].get('follower_partitions'), \
        'zone_b_follower: no partition fetched from a follower: %r' % f['metrics']
    assert f['xzone_payload_bytes_per_payload_byte'] <= 0.01, \
        'zone_b_follower: %r fetch payload bytes across zones per byte read' % f['xzone_payload_bytes_per_payload_byte']
    assert x['xzone_payload_bytes_per_payload_byte'] >= 0.5, \
        'zone_b_leader: %r fetch payload bytes across zones per byte read, want about 1' \
        % x['xzone_payload_bytes_per_payload_byte']


def check_fanout(r):
    """Fan-out: each consumer read the whole topic, cache on and off; with
    the cache the groups after the first cost (nearly) nothing across zones."""
    fo = {e['cache']: e for e in r['consume_fanout']}
    assert set(fo) == {'on', 'off'}, fo.keys()
    for cache, e in fo.items():
        assert len(e['groups']) == 3, e
        for g in e['groups']:
            assert not g['error'] and g['msgs'] == e['groups'][0]['msgs'] > 0, \
                'fan-out, cache %s: a group did not read what the first read: %r' % (cache, e['groups'])
        number(e['xzone_per_group_bytes'], 'fan-out %s ratio' % cache)
    assert fo['on']['xzone_per_group_bytes'] < fo['off']['xzone_per_group_bytes'], fo
    assert sum(g['cache_hits'] or 0 for g in fo['on']['groups']) > 0, 'fan-out: no fetch cache hit'


def check_idem_default(r):
    """librdkafka's idempotent producer at default settings: a row on direct
    and each WAL path, delivering, each with a ratio to direct."""
    rows = {(e['path'], e['load']): e for e in r['idem_default']}
    for p in ('direct', 'wal_local', 'wal_s3'):
        e = rows.get((p, 'fixed'))
        assert e is not None, 'no idem default row for %s' % p
        what = 'idem default ' + p
        if unavailable_ok(e, what):
            continue
        c = e['client']
        assert 'error' not in c, '%s: %s' % (what, c['error'])
        assert number(c['delivered'], what + ' delivered') > 0
        for q in ('p50', 'p99'):
            number(c['lat_us'][q], '%s %s' % (what, q))
        if p != 'direct':
            check_wal_objects(e, what)
            number(e['relative_to_direct']['throughput'], what + ' ratio')
            for z in ('a', 'b'):
                number(e['proxy_cpu_s_per_gb_by_zone'][z], '%s CPU/GB proxy %s' % (what, z))


def check_instr(r):
    """instr: each path's instructions per payload byte, both proxies' on the
    WAL path, are positive numbers, and the WAL runs stored objects; or the
    scenario was skipped for one of its two reasons, and said so."""
    ins = r.get('instr')
    assert ins is not None, 'no instr result'
    if ins.get('skipped'):
        assert shutil.which('valgrind') is None or kzproxy_has_asan(), \
            'instr skipped although valgrind is installed and kzproxy is not built with ASan: %s' % ins['skipped']
        print('instr: figure skipped (%s)' % ins['skipped'])
        return None
    paths = {e['path']: e for e in ins['paths']}
    assert sorted(paths) == ['same_zone', 'wal_local'], list(paths)
    assert paths['same_zone']['zones'] == ['a'] and paths['wal_local']['zones'] == ['a', 'b'], paths
    for p, e in paths.items():
        assert not e.get('error'), 'instr %s: %s' % (p, e['error'])
        assert len(e['runs']) == 2 and e['runs'][1]['messages'] == 2 * e['runs'][0]['messages'], e['runs']
        # Quick runs differ by 0.5 MB of payload, about 0.5 million
        # instructions, while the proxies' time-driven work (health checks,
        # timers under callgrind) moves by millions between two runs: the
        # figure's sign is noise here (one CI run: -6.9). Its form is
        # checked, and every run's count; the figure itself wants the full run.
        number(e['instructions_per_payload_byte'], 'instr %s' % p)
        for z in e['zones']:
            number(e['instructions_per_payload_byte_by_zone'][z], 'instr %s proxy %s' % (p, z))
            for run in e['runs']:
                assert number(run['instructions'][z], 'instr %s proxy %s run' % (p, z)) > 0, run
    for run in paths['wal_local']['runs']:
        assert run['metrics_by_zone']['a']['objects_stored'], \
            'instr wal_local: proxy a stored no object in its run of %d messages' % run['messages']
    return paths


def main():
    # Kroxylicious' launcher is built here when scripts/deps.sh has not
    # (a Maven run can take minutes), outside run_bench's time limit.
    kroxy_why = unavailable()
    if kroxy_why is None:
        ensure_built()
    with tempfile.TemporaryDirectory(prefix='kz-bench-smoke-') as d:
        out = os.path.join(d, 'bench.json')
        cp = subprocess.run(['/usr/bin/python3', os.path.join(HERE, 'run_bench.py'), '--quick',
                             '--json', out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=240, env=dict(os.environ, top_builddir=top_builddir()))
        sys.stdout.write(cp.stdout.decode('utf-8', 'replace'))
        assert cp.returncode == 0, 'run_bench.py --quick exited %d' % cp.returncode
        with open(out) as f:
            r = json.load(f)
    paths = {(e['path'], e['load']) for e in r['produce']}
    for p in ('direct', 'same_zone', 'wal_local', 'wal_s3'):
        for load in ('fixed', 'saturation'):
            assert (p, load) in paths, 'no %s %s produce result' % (p, load)
    for e in r['produce']:
        check_produce(e)
    lp = r['latency_pairs']
    assert lp['pairs'] == len(lp['runs']) >= 1, lp
    for k in ('p50_added_ms', 'p99_added_ms', 'p999_added_ms'):
        number(lp['median'][k], 'latency pairs median ' + k)
    # same_zone_tls: the TLS scenario consumes over TLS after its produce
    # runs; the Kroxylicious peer consumes last.
    kx = check_peer(r, kroxy_why)
    assert [e['path'] for e in r['consume']] == ['direct', 'same_zone', 'zone_b_follower', 'zone_b_leader',
                                                 'same_zone_tls'] + (['kroxylicious'] if kx else []), \
        [e['path'] for e in r['consume']]
    for e in r['consume']:
        assert 'error' not in e['client'], e['client'].get('error')
        number(e['client']['mbps'], 'consume MB/s')
        number(e['throughput_ratio_to_direct'], 'consume ratio')
        if e['path'] != 'direct':
            number(e['proxy_cpu_ratio_to_direct_broker'], 'consume %s CPU ratio' % e['path'])
            if e['path'] != 'kroxylicious':  # (no /metrics)
                number(e['xzone_payload_bytes_per_payload_byte'], 'consume %s xzone/B' % e['path'])
    check_followers(r)
    check_fanout(r)
    check_idem_default(r)
    instr = check_instr(r)
    idle = r['idle_connections']
    assert len(idle) == 1 and 'error' not in idle[0], idle
    number(idle[0]['kib_per_connection'], 'KiB per idle connection')
    for e in r['idempotent']:
        what = 'idempotent ' + e['path']
        if unavailable_ok(e, what):
            continue
        assert 'error' not in e['client'], e['client'].get('error')
        check_wal_objects(e, what)
        if not (e['path'].startswith('direct') and e['client_kind'] == 'librdkafka'):
            # (librdkafka's request count is known only through a proxy)
            number(e['requests_per_s'], 'idempotent requests/s')
        if not e['path'].startswith('direct') and not e['path'].endswith('_plain'):
            # (--quick runs no direct reference for the not-idempotent producer)
            number(e['relative_to_direct']['throughput'], what + ' ratio to direct')
        number(e['client']['lat_us']['p99'], 'idempotent p99')
    check_pipelined(r)
    for t in r['targets']:
        assert t['status'] in ('met', 'MISSED', 'n/a'), t
    for k in ('nproc', 'kernel'):
        assert r['machine'].get(k), 'machine info lacks %s' % k
    wal = [e for e in r['produce'] + r['idempotent'] if e['path'].startswith('wal') and 'metrics' in e
           and e.get('available') is not False]
    print('test_bench_quick: the quick benchmark produced well-formed numbers; %d WAL-path runs each '
          'delivered messages and stored objects (%d to %d objwal PUTs a run)'
          % (len(wal), min(e['metrics']['s3_put'] for e in wal), max(e['metrics']['s3_put'] for e in wal)))
    if kx:
        sbs = kx['side_by_side']
        print('test_bench_quick: Kroxylicious %s ran beside kzproxy: proxy CPU at the fixed load %.2f '
              '(kzproxy %.2f) core-s/GB' % (kx['version'], sbs['proxy_cpu_s_per_gb_fixed'][1],
                                            sbs['proxy_cpu_s_per_gb_fixed'][0]))
    if instr:
        print('test_bench_quick: instr (quick, %d and %d messages): same-zone %.3g, WAL local %.3g '
              'instructions/payload byte' % (instr['same_zone']['runs'][0]['messages'],
                                             instr['same_zone']['runs'][1]['messages'],
                                             instr['same_zone']['instructions_per_payload_byte'],
                                             instr['wal_local']['instructions_per_payload_byte']))


run_test(main, timeout=300)
