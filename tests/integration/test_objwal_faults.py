#!/usr/bin/python3
"""objwal's S3 client against a misbehaving endpoint (a small S3 written
here on http.server, 127.0.0.1, port 0): it answers 500 or 503 SlowDown for
a while, or stalls without answering. Writes must retry and succeed, or fail
once the configured deadline passes with a clear error: never a silent loss,
never an endless wait. Also a store whose reads lag its writes (s3rver
answers a PUT before its file is written): the read back of a just-written
object (OW_READ_JUST_WRITTEN, as router-in reads a peer's slice) that finds
it missing or short asks again, a bounded number of times."""
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from objwal_env import check, finish, run_tool  # noqa: E402

BUCKET = "kz-wal"


class FaultS3(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.objects = {}
        self.set_fault(None, 0)
        self.set_lag(None, 0)

    def set_lag(self, kind, count):
        """The next count GETs see the object as not yet written ('missing':
        404 NoSuchKey) or half written ('short': its first half only)."""
        with self.lock:
            self.lag, self.lag_left = kind, count

    def take_lag(self):
        with self.lock:
            if self.lag and self.lag_left > 0:
                self.lag_left -= 1
                return self.lag
            return None

    def set_fault(self, kind, count, stall_s=3.0):
        with self.lock:
            self.fault, self.left, self.stall_s = kind, count, stall_s
            self.requests = 0

    def take_fault(self):
        with self.lock:
            self.requests += 1
            if self.fault and self.left > 0:
                self.left -= 1
                return self.fault, self.stall_s
            return None, 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, code, s3code, msg):
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{s3code}</Code>'
                f"<Message>{msg}</Message></Error>").encode()
        self.reply(code, body, [("Content-Type", "application/xml")])

    def faulted(self):
        kind, stall = self.server.take_fault()
        if kind == 500:
            self.error(500, "InternalError", "We encountered an internal error. Please try again.")
        elif kind == 503:
            self.error(503, "SlowDown", "Please reduce your request rate.")
        elif kind == "stall":
            time.sleep(stall)  # the fault under test: no answer in time
            self.close_connection = True
        return kind is not None

    def key(self):
        path = self.path.split("?", 1)[0]
        prefix = f"/{BUCKET}/"
        return path[len(prefix):] if path.startswith(prefix) else None

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.faulted():
            return
        if self.headers.get("x-amz-content-sha256") is None:
            return self.error(400, "InvalidRequest", "missing x-amz-content-sha256")
        k = self.key()
        with self.server.lock:
            if self.headers.get("If-None-Match") == "*" and k in self.server.objects:
                return self.error(412, "PreconditionFailed", "At least one of the pre-conditions "
                                  "you specified did not hold")
            self.server.objects[k] = body
        self.reply(200, b"", [("ETag", '"x"')])

    def do_GET(self):
        if self.faulted():
            return
        k = self.key()
        with self.server.lock:
            data = self.server.objects.get(k)
        lag = self.server.take_lag()
        if lag == "missing":
            data = None
        elif lag == "short" and data is not None:
            data = data[:len(data) // 2]
        if data is None:
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        m = re.match(r"bytes=(\d*)-(\d*)$", self.headers.get("Range", ""))
        if not m:
            return self.reply(200, data)
        a, b = m.groups()
        if a == "":
            start, end = max(0, len(data) - int(b)), len(data) - 1
        else:
            start, end = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
        if start >= len(data):
            return self.error(416, "InvalidRange", "The requested range is not satisfiable")
        self.reply(206, data[start:end + 1],
                   [("Content-Range", f"bytes {start}-{end}/{len(data)}")])

    def do_DELETE(self):
        if self.faulted():
            return
        with self.server.lock:
            self.server.objects.pop(self.key(), None)
        self.reply(204)


srv = FaultS3()
threading.Thread(target=srv.serve_forever, daemon=True).start()
EP = f"http://127.0.0.1:{srv.server_address[1]}"
BASE = ["put", "--endpoint", EP, "--bucket", BUCKET, "--access-key", "AK", "--secret-key", "SK",
        "--backoff-ms", "20"]


def retries(out):
    m = re.search(r"retries=(\d+)", out)
    return int(m.group(1)) if m else -1


def lag_retries(out):
    m = re.search(r"read_lag_retries=(\d+)", out)
    return int(m.group(1)) if m else -1


def elapsed(out):
    m = re.search(r" ms=(\d+)", out)
    return int(m.group(1)) if m else -1


try:
    srv.set_fault(500, 3)
    rc, out = run_tool(BASE + ["--deadline-ms", "10000", "--expect", "ok"])
    check(rc == 0 and retries(out) >= 3, "three 500s, then the write succeeds after retries")

    srv.set_fault(503, 4)
    rc, out = run_tool(BASE + ["--deadline-ms", "10000", "--expect", "ok"])
    check(rc == 0 and retries(out) >= 4, "four 503 SlowDown, then the write succeeds")

    srv.set_fault("stall", 2, stall_s=3.0)
    rc, out = run_tool(BASE + ["--deadline-ms", "10000", "--attempt-ms", "300", "--expect", "ok"])
    check(rc == 0 and retries(out) >= 2, "two stalled attempts time out and are retried")

    srv.set_fault(503, 10 ** 6)
    rc, out = run_tool(BASE + ["--deadline-ms", "1500", "--expect", "timeout"])
    check(rc == 0, "503 without end: the write fails with a timeout")
    check("deadline" in out and "HTTP 503 SlowDown" in out,
          "the error names the deadline and the last S3 error")
    check(1000 <= elapsed(out) < 4000, f"it fails near the 1500 ms deadline ({elapsed(out)} ms)")

    srv.set_fault("stall", 10 ** 6, stall_s=2.0)
    rc, out = run_tool(BASE + ["--deadline-ms", "1200", "--attempt-ms", "300",
                               "--expect", "timeout"])
    check(rc == 0 and elapsed(out) < 4000, "a stalled endpoint: failure at the deadline")
    check("Operation timed out" in out or "timed out" in out, "the error says it timed out")

    srv.set_fault(None, 0)
    rc, out = run_tool(BASE + ["--deadline-ms", "5000", "--expect", "ok"])
    check(rc == 0, "the endpoint recovered: writes succeed again")
    check(lag_retries(out) == 0, f"a store that keeps up: no read asked twice ({lag_retries(out)})")

    srv.set_lag("missing", 2)
    rc, out = run_tool(BASE + ["--deadline-ms", "5000", "--expect", "ok"])
    check(rc == 0 and lag_retries(out) == 2,
          f"read back missing twice, then found: two more GETs ({lag_retries(out)})")

    srv.set_lag("short", 3)
    rc, out = run_tool(BASE + ["--deadline-ms", "5000", "--expect", "ok"])
    check(rc == 0 and lag_retries(out) == 3,
          f"read back half written three times, then whole ({lag_retries(out)})")

    srv.set_lag("missing", 10 ** 6)
    rc, out = run_tool(BASE + ["--deadline-ms", "5000", "--expect", "not_found"])
    check(rc == 0 and lag_retries(out) == 5, f"never there: five more GETs, then not_found ({lag_retries(out)})")
    check("not in the store" in out and "NoSuchKey" in out,
          "the error says the object stayed missing and what the store answered")
    srv.set_lag(None, 0)
finally:
    srv.shutdown()
finish("test_objwal_faults")
