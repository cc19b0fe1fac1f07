#!/usr/bin/python3
"""Smoke test of the benchmark (make check): run_bench.py --quick runs every
scenario for a fraction of a second; this checks only that it produced
well-formed numbers, never how fast anything was (performance is reported
by `make bench`, not asserted here)."""
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))
from kzharness import run_test, top_builddir  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def number(v, what):
    assert isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), \
        '%s: expected a number, got %r' % (what, v)
    return v


def check_produce(e):
    what = 'produce %s %s' % (e['path'], e['load'])
    if e.get('available') is False:
        assert e['path'].startswith('wal'), '%s: only the WAL path may be unavailable' % what
        assert e.get('reason'), '%s: unavailable without a reason' % what
        return
    c = e['client']
    assert 'error' not in c, '%s: %s' % (what, c.get('error'))
    assert number(c['delivered'], what + ' delivered') > 0, what + ': nothing delivered'
    assert number(c['mbps'], what + ' MB/s') > 0
    assert number(c['msgs_per_s'], what + ' msgs/s') > 0
    for q in ('p50', 'p99', 'p999'):
        number(c['lat_us'][q], '%s %s' % (what, q))
    assert c['lat_us']['p50'] <= c['lat_us']['p99'] <= c['lat_us']['p999'] <= c['lat_us']['max']
    if e['path'] != 'direct':
        number(e['throughput_ratio_to_direct'], what + ' ratio')
        number(e['proxy_cpu_s_per_gb'], what + ' CPU/GB')
        assert e['proxy_peak_rss_kib_max'] > 0


def main():
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
    assert [e['path'] for e in r['consume']] == ['direct', 'same_zone']
    for e in r['consume']:
        assert 'error' not in e['client'], e['client'].get('error')
        number(e['client']['mbps'], 'consume MB/s')
        number(e['throughput_ratio_to_direct'], 'consume ratio')
    idle = r['idle_connections']
    assert len(idle) == 1 and 'error' not in idle[0], idle
    number(idle[0]['kib_per_connection'], 'KiB per idle connection')
    for e in r['idempotent']:
        if e.get('available') is False:
            continue
        assert 'error' not in e['client'], e['client'].get('error')
        number(e['requests_per_s'], 'idempotent requests/s')
        number(e['client']['lat_us']['p99'], 'idempotent p99')
    for t in r['targets']:
        assert t['status'] in ('met', 'MISSED', 'n/a'), t
    for k in ('nproc', 'kernel'):
        assert r['machine'].get(k), 'machine info lacks %s' % k
    print('test_bench_quick: the quick benchmark produced well-formed numbers')


run_test(main, timeout=300)
