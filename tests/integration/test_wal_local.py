#!/usr/bin/python3
"""Zone-aware produce through the WAL path on the local store: 100,000
messages of 1 KiB from producers in 3 zones (see walpath.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402


def main():
    walpath.run('local', messages=int(os.environ.get('KZ_WAL_MESSAGES', '100000')))


if __name__ == '__main__':
    kz.run_test(main, timeout=600)
