#!/usr/bin/python3
"""objwal's S3 client against the npm S3 emulators:
 - s3rver 3.7.1 (no signature check), path-style and virtual-host addressing;
 - @20minutes/s3rver (verifies SigV4): the round trip with the right key, also
   with UNSIGNED-PAYLOAD in place of the bodies' SHA-256 (unsigned_payload),
   and a wrong secret failing cleanly with the server's own error in the
   message."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from objwal_env import S3rver, check, finish, run_tool  # noqa: E402

BUCKET = "kz-wal"
CREDS = ["--access-key", "S3RVER", "--secret-key", "S3RVER"]

srv = S3rver("s3rver", BUCKET)
try:
    ep = f"http://127.0.0.1:{srv.port}"
    rc, out = run_tool(["roundtrip", "--endpoint", ep, "--bucket", BUCKET] + CREDS)
    check(rc == 0 and "objects deleted by GC" in out, "s3rver 3.7.1 path-style roundtrip")
    check("ranged GET body in a frame: yes" in out, "a ranged GET's body comes in a frame (no copy)")
    # Virtual-host style: <bucket>.s3.localhost resolves to the loopback.
    ep = f"http://s3.localhost:{srv.port}"
    rc, out = run_tool(["roundtrip", "--vhost", "--endpoint", ep, "--bucket", BUCKET] + CREDS)
    check(rc == 0 and "virtual-host" in out and "objects deleted by GC" in out,
          "s3rver 3.7.1 virtual-host roundtrip")
finally:
    srv.stop()

srv = S3rver("20minutes", BUCKET)
try:
    ep = f"http://127.0.0.1:{srv.port}"
    rc, out = run_tool(["roundtrip", "--endpoint", ep, "--bucket", BUCKET] + CREDS)
    check(rc == 0 and "objects deleted by GC" in out,
          "@20minutes/s3rver (SigV4 verified) roundtrip")
    rc, out = run_tool(["roundtrip", "--unsigned-payload", "--endpoint", ep, "--bucket", BUCKET]
                       + CREDS)
    check(rc == 0 and "unsigned payload" in out and "objects deleted by GC" in out,
          "@20minutes/s3rver (SigV4 verified) roundtrip with UNSIGNED-PAYLOAD")
    rc, out = run_tool(["put", "--endpoint", ep, "--bucket", BUCKET, "--access-key", "S3RVER",
                        "--secret-key", "not-the-secret", "--expect", "auth"])
    check(rc == 0, "wrong secret fails with an auth error")
    check("SignatureDoesNotMatch" in out and "HTTP 403" in out,
          "the server's error is in the message")
    check("retries=0" in out, "an auth failure is not retried")
finally:
    srv.stop()
finish("test_objwal_s3rver")
