#!/usr/bin/python3
"""kzproxy's command line: --help, --version, and --check-config naming the
first invalid key of a table of bad configurations."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402

GOOD = {
    'node_id': 1, 'zone': 'a', 'listen': '127.0.0.1:9092', 'admin_listen': '127.0.0.1:9644',
    'bootstrap_servers': ['127.0.0.1:19092'],
    'peers': [{'node_id': 2, 'zone': 'b', 'advertised': '10.0.0.2:9092'}],
    'log_level': 'info', 'metadata_refresh_ms': 5000,
    'limits': {'max_frame_bytes': 1048576, 'max_inflight_requests': 16},
}


def variant(**changes):
    cfg = json.loads(json.dumps(GOOD))
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    return cfg


# (name, config or raw text, text the error must contain)
BAD = [
    ('unknown top-level key', variant(zonee='a'), 'zonee: unknown key'),
    ('missing zone', variant(zone=None), 'zone: missing'),
    ('node_id of the wrong type', variant(node_id='one'), 'node_id: expected an integer'),
    ('negative node_id', variant(node_id=-4), 'node_id: -4 is out of range'),
    ('listen not host:port', variant(listen='localhost'), 'listen: "localhost" is not host:port'),
    ('listen fd not a number', variant(listen='fd:x'), 'listen: "fd:x" is not fd:N'),
    ('empty bootstrap list', variant(bootstrap_servers=[]), 'bootstrap_servers: expected a non-empty array'),
    ('bootstrap entry without port', variant(bootstrap_servers=['k1:9092', 'k2']), 'bootstrap_servers[1]'),
    ('peer without advertised', variant(peers=[{'node_id': 2, 'zone': 'b'}]), 'peers[0].advertised: missing'),
    ('peer with own node id', variant(peers=[{'node_id': 1, 'zone': 'b', 'advertised': 'h:1'}]),
     "peers[0].node_id: 1 is this proxy's own node_id"),
    ('peer key typo', variant(peers=[{'node_id': 2, 'zone': 'b', 'advertized': 'h:1'}]),
     'peers[0].advertized: unknown key'),
    ('bad log level', variant(log_level='loud'), 'log_level: "loud" is not one of'),
    ('limit out of range', variant(limits={'max_frame_bytes': 10}), 'limits.max_frame_bytes: 10 is out of range'),
    ('unknown limit', variant(limits={'max_frames': 10}), 'limits.max_frames: unknown key'),
    ('fd listen without advertised', variant(listen='fd:3'), 'advertised: missing'),
    ('wal without peer_secret', variant(wal={'store': {'backend': 'local', 'root': '/tmp/x'}}),
     'peer_secret: missing (required with wal'),
    ('wal store backend unknown', variant(peer_secret='s' * 20, wal={'store': {'backend': 'gcs'}}),
     'wal.store.backend: "gcs" is not "local" or "s3"'),
    ('wal s3 without bucket', variant(peer_secret='s' * 20, wal={'store': {'backend': 's3'}}),
     'wal.store.bucket: missing'),
    ('wal s3 unsigned_payload not a bool',
     variant(peer_secret='s' * 20, wal={'store': {'backend': 's3', 'bucket': 'b', 'unsigned_payload': 'yes'}}),
     'wal.store.unsigned_payload: expected true or false'),
    ('wal flush_ms out of range', variant(peer_secret='s' * 20,
                                          wal={'store': {'backend': 'local', 'root': '/tmp/x'}, 'flush_ms': 0}),
     'wal.flush_ms: 0 is out of range'),
    ('peer_secret too short', variant(peer_secret='short'), 'peer_secret: too short'),
    ('cross_zone_policy unknown', variant(cross_zone_policy='cheap'), 'cross_zone_policy: expected "wal" or "direct"'),
    ('fetch_from_follower unknown', variant(fetch_from_follower='leader'),
     'fetch_from_follower: expected "broker", "metadata" or "off"'),
    ('discovery without port', variant(discovery={'dns_name': 'kz.local'}), 'discovery.port: missing'),
    ('price negative', variant(prices={'cross_zone_per_gb': -1}), 'prices.cross_zone_per_gb: -1 is out of range'),
    ('discovery without peer_secret', variant(discovery={'dns_name': 'kz.internal', 'port': 9092}),
     'discovery: needs peer_secret'),
    ('not JSON', '{"node_id": 1,', 'line 1'),
    ('top level not an object', '[1, 2]', 'the top level must be a JSON object'),
]


def run(*args):
    return subprocess.run([kz.kzproxy_binary()] + list(args), capture_output=True, text=True, timeout=20)


def main():
    r = run('--help')
    assert r.returncode == 0 and '--check-config' in r.stdout, r
    r = run('--version')
    assert r.returncode == 0 and r.stdout.startswith('kzproxy '), r
    r = run('--no-such-flag')
    assert r.returncode == 2, r
    r = run()
    assert r.returncode == 2 and 'no configuration' in r.stderr, r

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'good.json')
        with open(path, 'w') as f:
            json.dump(GOOD, f)
        r = run('--check-config', path)
        assert r.returncode == 0 and 'valid' in r.stdout, r
        with open(path, 'w') as f:
            json.dump(variant(peer_secret='s' * 20,
                              wal={'store': {'backend': 's3', 'bucket': 'b', 'unsigned_payload': True}}), f)
        r = run('--check-config', path)
        assert r.returncode == 0 and 'valid' in r.stdout, ('wal.store.unsigned_payload: true', r)
        for name, cfg, words in BAD:
            with open(path, 'w') as f:
                f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
            r = run('--check-config', path)
            assert r.returncode == 1, '%s: exit code %d' % (name, r.returncode)
            assert words in r.stderr, '%s: %r lacks %r' % (name, r.stderr, words)
            print('ok  %-32s %s' % (name, r.stderr.strip().split('invalid: ', 1)[-1]))
        r = run('--check-config', os.path.join(d, 'missing.json'))
        assert r.returncode == 1 and 'missing.json' in r.stderr, r
    print('%d invalid configurations named, --help/--version work' % len(BAD))


if __name__ == '__main__':
    kz.run_test(main, timeout=60)
