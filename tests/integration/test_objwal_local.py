#!/usr/bin/python3
"""objwal against the embedded local-directory store: the batching writer,
ranged and index reads verified, listing, GC deletion (ow_s3_tool roundtrip),
and one write read back (ow_s3_tool put)."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from objwal_env import check, finish, run_tool  # noqa: E402

d = tempfile.mkdtemp(prefix="ow_local_")
try:
    rc, out = run_tool(["roundtrip", "--local", d])
    check(rc == 0 and "objects deleted by GC" in out, "local roundtrip")
    check("ranged GET body in a frame: yes" in out, "a ranged GET's body comes in a frame (no copy)")
    rc, out = run_tool(["put", "--local", d, "--expect", "ok"])
    check(rc == 0 and "result err=ok" in out, "local put + read back")
    # Nothing but the temp directory left behind by the writer.
    left = [f for _, _, fs in os.walk(d) for f in fs]
    check(len(left) == 1, f"only the put's object remains ({len(left)} files)")
finally:
    shutil.rmtree(d, ignore_errors=True)
finish("test_objwal_local")
