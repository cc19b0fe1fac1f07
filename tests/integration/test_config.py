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
    ('workers out of range', variant(workers=257), 'workers: 257 is out of range'),
    ('workers not an integer', variant(workers='all'), 'workers: expected an integer'),
    ('bad log_format', variant(log_format='xml'), 'log_format: expected "text" or "json"'),
    ('bad admin_reload', variant(admin_reload='everyone'), 'admin_reload: expected "local", "any" or "off"'),
    ('limit out of range', variant(limits={'max_frame_bytes': 10}), 'limits.max_frame_bytes: 10 is out of range'),
    ('unknown limit', variant(limits={'max_frames': 10}), 'limits.max_frames: unknown key'),
    ('frame pool idle below 0', variant(limits={'frame_pool_idle_ms': -1}),
     'limits.frame_pool_idle_ms: -1 is out of range'),
    ('frame pool idle above a day', variant(limits={'frame_pool_idle_ms': 86400001}),
     'limits.frame_pool_idle_ms: 86400001 is out of range'),
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
    ('cross_zone_policy unknown', variant(cross_zone_policy='cheap'),
     'cross_zone_policy: expected "wal", "direct" or "auto"'),
    ('cross_zone_auto thresholds crossed', variant(cross_zone_auto={'wal_above_bytes_per_s': 1000,
                                                                    'direct_below_bytes_per_s': 2000}),
     'cross_zone_auto: direct_below_bytes_per_s (2000) must be below wal_above_bytes_per_s (1000)'),
    ('fetch_cache_bytes negative', variant(fetch_cache_bytes=-1), 'fetch_cache_bytes: -1 is out of range'),
    ('fetch_from_follower unknown', variant(fetch_from_follower='leader'),
     'fetch_from_follower: expected "broker", "metadata" or "off"'),
    ('discovery without port', variant(discovery={'dns_name': 'kz.local'}), 'discovery.port: missing'),
    ('price negative', variant(prices={'cross_zone_per_gb': -1}), 'prices.cross_zone_per_gb: -1 is out of range'),
    ('discovery without peer_secret', variant(discovery={'dns_name': 'kz.internal', 'port': 9092}),
     'discovery: needs peer_secret'),
    ('not JSON', '{"node_id": 1,', 'line 1'),
    ('top level not an object', '[1, 2]', 'the top level must be a JSON object'),
]


def security_matrix(d):
    """Bad combinations of the security keys, each with the words its
    --check-config error must contain. Built on a test PKI, since some of
    them are only found by loading the files (a key that does not match its
    certificate, an unreadable file)."""
    import kzbed
    pki = kzbed.make_test_pki(os.path.join(d, 'pki'))
    missing = os.path.join(d, 'no-such-file.pem')
    creds = os.path.join(d, 'users.json')
    with open(creds, 'w') as f:
        json.dump({}, f)
    tls = {'cert_file': pki['server'], 'key_file': pki['server_key']}
    wal_local = {'store': {'backend': 'local', 'root': os.path.join(d, 'wal')}}
    secret = 's' * 20

    def s3(**store):
        return {'store': dict({'backend': 's3', 'bucket': 'b', 'endpoint': 'https://s3.example:443',
                               'access_key': 'AK', 'secret_key': 'SK'}, **store)}
    return [
        ('client_tls key not its certificate', variant(client_tls={'cert_file': pki['server'],
                                                                   'key_file': pki['client_key']}),
         'client_tls.key_file %s does not match cert_file %s' % (pki['client_key'], pki['server'])),
        ('client_tls certificate unreadable', variant(client_tls={'cert_file': missing, 'key_file': pki['server_key']}),
         'client_tls.cert_file %s' % missing),
        ('client_tls client_auth without CA', variant(client_tls=dict(tls, client_auth='required')),
         'client_tls.ca_file: missing (required with client_auth "required"'),
        ('client_sasl without credentials', variant(client_sasl={'mechanisms': ['SCRAM-SHA-512']}),
         'client_sasl.credentials_file: missing'),
        ('client_sasl PLAIN without credentials', variant(client_sasl={'mechanisms': ['PLAIN']}),
         'client_sasl.credentials_file: missing'),
        ('client_sasl credentials unreadable', variant(client_sasl={'credentials_file': missing}),
         'client_sasl.credentials_file %s' % missing),
        ('peer_tls without a CA', variant(peer_secret=secret, client_tls=tls, peer_tls={}),
         'peer_tls.ca_file: missing'),
        ('peer_tls CA unreadable', variant(peer_secret=secret, client_tls=tls, peer_tls={'ca_file': missing}),
         'peer_tls.ca_file %s' % missing),
        ('peer_tls key not its certificate',
         variant(peer_secret=secret, client_tls=tls,
                 peer_tls={'ca_file': pki['ca'], 'cert_file': pki['client'], 'key_file': pki['server_key']}),
         'peer_tls.key_file %s does not match cert_file %s' % (pki['server_key'], pki['client'])),
        ('backend.tls key not its certificate',
         variant(backend={'tls': {'ca_file': pki['ca'], 'cert_file': pki['client'], 'key_file': pki['server_key']}}),
         'backend.tls.key_file %s does not match cert_file %s' % (pki['server_key'], pki['client'])),
        ('backend.tls CA unreadable', variant(backend={'tls': {'ca_file': missing}}),
         'backend.tls.ca_file %s' % missing),
        ('backend.sasl SCRAM without password', variant(backend={'sasl': {'mechanism': 'SCRAM-SHA-512',
                                                                          'username': 'kz'}}),
         'backend.sasl: SCRAM-SHA-512 needs exactly one of password and password_file'),
        ('backend.sasl password file unreadable',
         variant(backend={'sasl': {'mechanism': 'PLAIN', 'username': 'kz', 'password_file': missing}}),
         'backend.sasl.password_file: cannot read %s' % missing),
        ('peer_secret of 15 bytes', variant(peer_secret='x' * 15), 'peer_secret: too short'),
        ('sse aws:kms without key id', variant(peer_secret=secret, wal=s3(sse='aws:kms')),
         'wal.store.sse_kms_key_id: missing (required with sse "aws:kms"'),
        ('sse unknown', variant(peer_secret=secret, wal=s3(sse='aes')),
         'wal.store.sse: "aes" is not "AES256" (SSE-S3) or "aws:kms" (SSE-KMS)'),
        ('sse_kms_key_id with AES256', variant(peer_secret=secret, wal=s3(sse='AES256', sse_kms_key_id='k')),
         'wal.store.sse_kms_key_id: only with sse "aws:kms"'),
        ('s3 access_key without secret_key', variant(peer_secret=secret, wal=s3(secret_key=None)),
         'wal.store: access_key and secret_key go together'),
        ('s3 session_token without keys',
         variant(peer_secret=secret, wal={'store': {'backend': 's3', 'bucket': 'b', 'session_token': 't'}}),
         'wal.store.session_token: needs access_key and secret_key'),
        ('s3 ca_file on http', variant(peer_secret=secret, wal=s3(endpoint='http://127.0.0.1:9000', ca_file=pki['ca'])),
         'wal.store.ca_file: the endpoint http://127.0.0.1:9000 is not https://'),
        ('s3 ca_file unreadable', variant(peer_secret=secret, wal=s3(ca_file=missing)),
         'wal.store.ca_file: cannot read %s' % missing),
        ('s3 ca_file not a certificate', variant(peer_secret=secret, wal=s3(ca_file=creds)),
         'wal.store.ca_file: %s holds no PEM certificate' % creds),
        ('wal.key_prefix with ..', variant(peer_secret=secret, wal=dict(wal_local, key_prefix='../wal/')),
         'wal.key_prefix: "../wal/" must be a plain key ending in \'/\''),
        ('wal.key_prefix without /', variant(peer_secret=secret, wal=dict(wal_local, key_prefix='wal')),
         'wal.key_prefix: "wal" must be a plain key'),
        ('wal.read_check unknown', variant(peer_secret=secret, wal=dict(wal_local, read_check='none')),
         'wal.read_check: "none" is not "headers"'),
        ('peer_replay_window_ms too small', variant(peer_replay_window_ms=10),
         'peer_replay_window_ms: 10 is out of range'),
    ]


def strip_none(cfg):
    """Drop keys set to None inside nested dicts (variant() does so at the top level only)."""
    if isinstance(cfg, dict):
        return {k: strip_none(v) for k, v in cfg.items() if v is not None}
    return cfg


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

    sec = []
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
        sec = security_matrix(d)
        for name, cfg, words in sec:
            with open(path, 'w') as f:
                json.dump(strip_none(cfg), f)
            r = run('--check-config', path)
            assert r.returncode == 1, '%s: exit code %d (%s)' % (name, r.returncode, r.stdout + r.stderr)
            assert words in r.stderr, '%s: %r lacks %r' % (name, r.stderr, words)
            print('ok  %-40s %s' % (name, r.stderr.strip().split('invalid: ', 1)[-1]))
        # The same keys, well combined, pass (files loaded as the daemon would).
        pki = os.path.join(d, 'pki')
        good = variant(peer_secret='s' * 20,
                       client_tls={'cert_file': os.path.join(pki, 'server.pem'),
                                   'key_file': os.path.join(pki, 'server_key.pem')},
                       peer_tls={'ca_file': os.path.join(pki, 'ca.pem')},
                       wal={'store': {'backend': 's3', 'bucket': 'b', 'endpoint': 'https://127.0.0.1:9000',
                                      'access_key': 'AK', 'secret_key': 'SK', 'sse': 'aws:kms',
                                      'sse_kms_key_id': 'arn:aws:kms:eu-west-1:1:key/k',
                                      'ca_file': os.path.join(pki, 'ca.pem')}})
        with open(path, 'w') as f:
            json.dump(good, f)
        r = run('--check-config', path)
        assert r.returncode == 0 and 'valid' in r.stdout, ('good security config', r)
        assert 'SK' not in r.stdout + r.stderr, r
        r = run('--check-config', os.path.join(d, 'missing.json'))
        assert r.returncode == 1 and 'missing.json' in r.stderr, r
    print('%d invalid configurations named (%d of them security combinations), --help/--version work'
          % (len(BAD) + len(sec), len(sec)))


if __name__ == '__main__':
    kz.run_test(main, timeout=60)
