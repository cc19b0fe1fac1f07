#!/usr/bin/python3
"""franz-go round trip through kzproxy: test_clients.py with one client (see there)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_clients  # noqa: E402

if __name__ == '__main__':
    test_clients.run_main(['franz-go'])
