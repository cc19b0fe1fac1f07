"""Shared helpers of the objwal integration tests: paths, the driver program
(tests/integration/ow_s3_tool), and starting the npm S3 emulators on
127.0.0.1 with a port picked by the kernel, read back from their output."""
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

TOP_SRCDIR = os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..", ".."))
TOP_BUILDDIR = os.environ.get("top_builddir", TOP_SRCDIR)
TOOL = os.path.join(TOP_BUILDDIR, "tests", "integration", "ow_s3_tool")
S3DIR = os.path.join(TOP_SRCDIR, "tests", "s3")

FAILED = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILED.append(what)


def finish(name):
    n = len(FAILED)
    print(f"{name}: {'all passed' if n == 0 else f'{n} failed: ' + '; '.join(FAILED)}", flush=True)
    sys.exit(1 if n else 0)


def run_tool(args, timeout=120):
    """Run ow_s3_tool; returns (exit code, combined output)."""
    t0 = time.monotonic()
    p = subprocess.run([TOOL] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, text=True)
    print(f"$ ow_s3_tool {' '.join(args)}  ({time.monotonic() - t0:.2f}s, exit {p.returncode})")
    print("  " + p.stdout.strip().replace("\n", "\n  "), flush=True)
    return p.returncode, p.stdout


class S3rver:
    """An s3rver process ('s3rver' 3.7.1 or '20minutes') with one bucket."""

    def __init__(self, variant, bucket):
        if not os.path.isdir(os.path.join(S3DIR, "node_modules")):
            print(f"objwal: {S3DIR}/node_modules is missing: run scripts/deps.sh "
                  "(npm ci --prefix tests/s3)", flush=True)
            sys.exit(1)
        self.dir = tempfile.mkdtemp(prefix="ow_s3rver_")
        cmd = ["node"]
        if variant == "s3rver":
            cmd.append("--openssl-legacy-provider")
        cmd += [os.path.join(S3DIR, "s3server.js"), variant, self.dir, bucket]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=S3DIR)
        # Bounded readiness wait: the server prints its port once listening.
        deadline = time.monotonic() + 30
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                err = self.proc.stderr.read1(4096) if self.proc.poll() is not None else b""
                self.stop()
                raise RuntimeError(f"{variant} did not start: {err.decode(errors='replace')}")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    continue
                line += ch
        self.port = json.loads(line)["port"]
        self.variant = variant
        print(f"{variant} listening on 127.0.0.1:{self.port}", flush=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
