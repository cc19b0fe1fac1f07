#!/usr/bin/python3
"""Zone-aware produce through the WAL path with s3rver as the object store:
100,000 messages of 1 KiB from producers in 3 zones (see walpath.py), with
wal.store.unsigned_payload: the proxies sign their PUTs with UNSIGNED-PAYLOAD
instead of each object's SHA-256, and s3rver 3.7.1 takes them. (The signed
default goes through the proxies to s3rver in the benchmark's smoke test,
tests/bench/test_bench_quick.py, and against a SigV4-checking server in
test_objwal_s3rver.py.)"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402


def unsigned_in_use(pc):
    """Each proxy's store says so in its start-up line, and PUT objects."""
    for p in pc.proxies:
        text = p.log_text()
        if 'unsigned payload' not in text:
            raise kz.HarnessError('kzproxy %d: no "unsigned payload" in its log:\n%s'
                                  % (p.node_id, kz.log_tail(p)))
    puts = sum(pc.metrics(p).sum('kzproxy_objwal_requests_total', 0, op='put') for p in pc.proxies)
    if puts == 0:
        raise kz.HarnessError('no PUT counted by any proxy')
    print('wal.store.unsigned_payload: %d PUTs signed with UNSIGNED-PAYLOAD, all taken by s3rver' % puts)


def main():
    walpath.run('s3rver', messages=int(os.environ.get('KZ_WAL_MESSAGES', '100000')),
                store_options={'unsigned_payload': True}, check_proxies=unsigned_in_use)


if __name__ == '__main__':
    kz.run_test(main, timeout=600)
