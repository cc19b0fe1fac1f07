#!/usr/bin/python3
"""KZ_PROXY_WRAPPER for tests/tsan/run.sh: adds "workers": 2 to the config a
test wrote (in place, so a reload re-reads it) unless it names workers, then
runs the ThreadSanitizer build ($KZ_TSAN_PROXY) with the test's arguments."""
import json
import os
import sys

args = sys.argv[2:]  # sys.argv[1]: the kzproxy the harness would have run
if '--config' in args:
    path = args[args.index('--config') + 1]
    with open(path) as f:
        cfg = json.load(f)
    if 'workers' not in cfg:
        cfg['workers'] = 2
        with open(path, 'w') as f:
            json.dump(cfg, f, indent=1)
proxy = os.environ['KZ_TSAN_PROXY']
os.execv(proxy, [proxy] + args)
