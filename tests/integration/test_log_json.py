#!/usr/bin/python3
"""log_format "json" (issue 16, item 5): a proxy pair on the mock with
log_format json and log_level debug serves a producer whose client.id names
an unknown zone and holds quotes, backslashes and a tab (the proxy logs that
client id), then stops on SIGTERM. Every line either proxy wrote on stderr
must be one JSON object with string ts, level and msg (and nothing else),
level one of error/warn/info/debug, ts in UTC with milliseconds; the client
id must come back intact from the JSON. Prints the line counts."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402

CLIENT_ID = 'odd "quoted" \\back\\slash\ttab,kz_az=nowhere'
TS = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')


def main():
    with kz.TestBed(zones=('a', 'b'), brokers=2, topics={'logj': 2}) as tb:
        pc = kz.ProxyCluster(tb, zones=('a', 'b'), log_level='debug', extra_config={'log_format': 'json'})
        with pc:
            a = pc.proxy_in('a')
            kz.produce(a.kafka, 'logj', [(b'k%d' % i, b'v%d' % i) for i in range(10)],
                       config={'client.id': CLIENT_ID}, timeout=60)
            kz.wait_until(lambda: pc.metrics(a).sum('kzproxy_clients_unknown_zone_total', 0) > 0, 10,
                          'the unknown-zone client to be counted')
            for p in pc.proxies:
                rc = pc.stop_proxy(p)
                if rc != 0:
                    raise HarnessError('kzproxy %d exited %d on SIGTERM' % (p.node_id, rc))
            logs = {}
            for p in pc.proxies:  # read before the cluster's work directory goes
                with open(p.log, 'rb') as f:
                    logs[p.node_id] = f.read()
        total, levels, found = 0, {}, False
        for p in pc.proxies:
            raw = logs[p.node_id]
            lines = raw.split(b'\n')
            if lines[-1] != b'':
                raise HarnessError('kzproxy %d: stderr does not end with a newline' % p.node_id)
            for n, line in enumerate(lines[:-1], 1):
                try:
                    o = json.loads(line.decode('utf-8'))
                except (UnicodeDecodeError, ValueError) as e:
                    raise HarnessError('kzproxy %d stderr line %d is not a JSON object: %r (%s)'
                                       % (p.node_id, n, line[:200], e))
                if not isinstance(o, dict) or sorted(o) != ['level', 'msg', 'ts'] or \
                        not all(isinstance(o[k], str) for k in o):
                    raise HarnessError('kzproxy %d line %d: want exactly string ts, level, msg: %r'
                                       % (p.node_id, n, o))
                if o['level'] not in ('error', 'warn', 'info', 'debug') or not TS.match(o['ts']):
                    raise HarnessError('kzproxy %d line %d: bad level or ts: %r' % (p.node_id, n, o))
                levels[o['level']] = levels.get(o['level'], 0) + 1
                found = found or CLIENT_ID in o['msg']
                total += 1
        if total < 4 or 'debug' not in levels:
            raise HarnessError('only %d lines (%s): want several, debug among them' % (total, levels))
        if not found:
            raise HarnessError('no log line holds the client id %r intact' % CLIENT_ID)
        print('log_format json: %d stderr lines from %d proxies, all JSON objects (%s); the client id with '
              'quotes, backslashes and a tab came back intact'
              % (total, len(pc.proxies), ', '.join('%s %d' % kv for kv in sorted(levels.items()))))


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
