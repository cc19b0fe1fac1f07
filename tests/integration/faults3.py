#!/usr/bin/python3
"""faults3: a small in-memory S3 endpoint that injects faults on command.

It serves what objwal's S3 client (objwal/ow_store_s3.c) sends, path-style
(http://127.0.0.1:PORT/BUCKET/KEY), any bucket name, signatures not checked:
  PUT     the object; needs x-amz-content-sha256, and checks the body against
          it unless it is UNSIGNED-PAYLOAD; If-None-Match: * on an existing
          key answers 412 PreconditionFailed (objwal's conditional PUT)
  GET     whole object, or Range bytes=A-B, bytes=A-, bytes=-N (206 with
          Content-Range; 416 InvalidRange past the end)
  HEAD    size and ETag
  DELETE  204 whether or not the key exists
  GET /BUCKET?list-type=2&prefix=&max-keys=&continuation-token=  ListObjectsV2
Errors carry S3's XML body (<Code>, <Message>), as objwal reads it.

Faults are rules, checked in the order added; the first that matches a
request's operation and is still live (count left, time window open) acts:
  status 500 / 503 / any code  answer that error (503 is SlowDown)
  'stall'                      hold the request stall_s seconds (longer than
                               the client's attempt timeout: it gives up), then
                               serve it normally (the object lands late, as a
                               slow S3 would store it) unless drop=True
  'drop'                       close the connection without an answer

Two ways to run it, with the same control methods:
  FaultS3()         in this process (ThreadingHTTPServer, its own threads)
  FaultS3Process()  `python3 faults3.py --serve` in a child process, so a busy
                    S3 does not compete with the test's Python threads for the
                    interpreter lock; controlled over its stdin, one JSON line
                    per command, answered "ok <json>" on its stdout.
Both: .port, .endpoint, fail_puts(n, status), fail_puts_for(seconds, status),
stall_puts(n, stall_s), stall_puts_for(seconds, stall_s), fail_gets(n, status),
fail_gets_for(seconds, status), add_rule(...), clear(), stats(), stop()
(and context manager use), and requests(op=None): the last 256 requests'
operation, key and headers (names lower-cased), oldest first, so a test can
check what the client sent (e.g. the SSE headers, and that SigV4 signed them).

tls=(cert_file, key_file) serves HTTPS with that certificate instead
(.endpoint is then https://127.0.0.1:PORT).
"""
import hashlib
import json
import os
import re
import select
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPS = ('PUT', 'GET', 'HEAD', 'DELETE', 'LIST')
S3_CODES = {400: 'InvalidRequest', 403: 'AccessDenied', 404: 'NoSuchKey', 408: 'RequestTimeout',
            409: 'OperationAborted', 429: 'SlowDown', 500: 'InternalError', 503: 'SlowDown'}
UNSIGNED = ('UNSIGNED-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')


class Rule:
    """One fault: what (status code, 'stall' or 'drop'), on which operations,
    for how many requests (count, None: no limit) and/or until when
    (a time.monotonic() value, None: no limit)."""

    def __init__(self, ops, kind, count=None, until=None, stall_s=3.0, drop=False, label=None):
        ops = [ops] if isinstance(ops, str) else list(ops)
        for op in ops:
            if op not in OPS:
                raise ValueError('faults3: unknown operation %r (one of %s)' % (op, ', '.join(OPS)))
        if kind not in ('stall', 'drop') and not (isinstance(kind, int) and 300 <= kind <= 599):
            raise ValueError('faults3: fault kind %r is not an HTTP error code, "stall" or "drop"' % (kind,))
        self.ops, self.kind, self.count, self.until = set(ops), kind, count, until
        self.stall_s, self.drop = float(stall_s), bool(drop)
        self.label = label or '%s %s' % ('/'.join(sorted(self.ops)), kind)
        self.hits = 0

    def live(self, now):
        return (self.count is None or self.count > 0) and (self.until is None or now < self.until)

    def describe(self):
        return {'label': self.label, 'ops': sorted(self.ops), 'kind': self.kind, 'hits': self.hits,
                'count_left': self.count,
                'window_left_s': None if self.until is None else round(max(0.0, self.until - time.monotonic()), 3)}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class FaultS3:
    """The endpoint in this process. start() binds 127.0.0.1 on a port the
    kernel picks and serves from a daemon thread."""

    def __init__(self, host='127.0.0.1', port=0, tls=None):
        self.lock = threading.Lock()
        self.seen = []         # the last 256 requests: {'op', 'key', 'headers'}
        self.objects = {}      # (bucket, key) -> (bytes, etag, wall-clock mtime)
        self.rules = []        # live and spent rules, in order added
        self.counts = {op: 0 for op in OPS}     # requests seen
        self.faulted = {op: 0 for op in OPS}    # requests a rule acted on
        self.errors = {}       # other error answers: "OP code" -> n
        self.bytes_in = self.bytes_out = 0
        self.http = _Server((host, port), _Handler)
        self.http.s3 = self
        self.port = self.http.server_address[1]
        self.endpoint = 'http://%s:%d' % (host, self.port)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            self.http.socket = ctx.wrap_socket(self.http.socket, server_side=True)
            self.endpoint = 'https://%s:%d' % (host, self.port)
        self._thread = None

    # -- life cycle
    def start(self):
        self._thread = threading.Thread(target=self.http.serve_forever, name='faults3', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self.http.shutdown()
            self._thread.join(10)
            self._thread = None
        self.http.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- controls
    def add_rule(self, ops, kind, count=None, seconds=None, stall_s=3.0, drop=False, label=None):
        """Add a fault rule; seconds opens a window from now. Returns its index."""
        until = None if seconds is None else time.monotonic() + float(seconds)
        r = Rule(ops, kind, count=count, until=until, stall_s=stall_s, drop=drop, label=label)
        with self.lock:
            self.rules.append(r)
            return len(self.rules) - 1

    def fail_puts(self, n, status=500):
        return self.add_rule('PUT', int(status), count=int(n), label='next %d PUTs %d' % (n, status))

    def fail_puts_for(self, seconds, status=503):
        return self.add_rule('PUT', int(status), seconds=seconds, label='PUTs %d for %.2fs' % (status, seconds))

    def stall_puts(self, n, stall_s=3.0, drop=False):
        return self.add_rule('PUT', 'stall', count=int(n), stall_s=stall_s, drop=drop,
                             label='next %d PUTs stalled %.2fs' % (n, stall_s))

    def stall_puts_for(self, seconds, stall_s=3.0, drop=False):
        return self.add_rule('PUT', 'stall', seconds=seconds, stall_s=stall_s, drop=drop,
                             label='PUTs stalled %.2fs for %.2fs' % (stall_s, seconds))

    def fail_gets(self, n, status=500):
        return self.add_rule('GET', int(status), count=int(n), label='next %d GETs %d' % (n, status))

    def fail_gets_for(self, seconds, status=500):
        return self.add_rule('GET', int(status), seconds=seconds, label='GETs %d for %.2fs' % (status, seconds))

    def clear(self):
        """Retire every rule (their hit counts stay in stats())."""
        with self.lock:
            for r in self.rules:
                r.count = 0

    def stats(self):
        with self.lock:
            return {'requests': dict(self.counts), 'faulted': dict(self.faulted), 'errors': dict(self.errors),
                    'objects': len(self.objects), 'bytes_in': self.bytes_in, 'bytes_out': self.bytes_out,
                    'rules': [r.describe() for r in self.rules]}

    def object_keys(self, bucket=None):
        with self.lock:
            return sorted(k for b, k in self.objects if bucket is None or b == bucket)

    def requests(self, op=None):
        """The last 256 requests (of operation op), oldest first."""
        with self.lock:
            return [dict(r) for r in self.seen if op is None or r['op'] == op]

    def record(self, op, key, headers):
        with self.lock:
            self.seen.append({'op': op, 'key': key, 'headers': {k.lower(): v for k, v in headers.items()}})
            del self.seen[:-256]

    # -- used by the handler
    def take(self, op):
        """Count a request; the rule that acts on it, or None."""
        now = time.monotonic()
        with self.lock:
            self.counts[op] += 1
            for r in self.rules:
                if op in r.ops and r.live(now):
                    if r.count is not None:
                        r.count -= 1
                    r.hits += 1
                    self.faulted[op] += 1
                    return r
        return None

    def count_error(self, op, code):
        with self.lock:
            k = '%s %d' % (op, code)
            self.errors[k] = self.errors.get(k, 0) + 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'faults3'

    def log_message(self, *args):
        pass

    # -- plumbing
    @property
    def s3(self):
        return self.server.s3

    def reply(self, code, body=b'', headers=(), head_only=False, length=None):
        try:
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header('Content-Length', str(len(body) if length is None else length))
            self.end_headers()
            if body and not head_only:
                self.wfile.write(body)
                with self.s3.lock:
                    self.s3.bytes_out += len(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def error(self, op, code, s3code=None, msg=''):
        s3code = s3code or S3_CODES.get(code, 'Error')
        self.s3.count_error(op, code)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
                '<Resource>%s</Resource></Error>' % (s3code, _xml(msg), _xml(self.path))).encode()
        self.reply(code, body, [('Content-Type', 'application/xml')], head_only=self.command == 'HEAD')

    def read_body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b';', 1)[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    break
                out += self.rfile.read(size)
                self.rfile.readline()
            body = bytes(out)
        else:
            body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        with self.s3.lock:
            self.s3.bytes_in += len(body)
        return body

    def target(self):
        """(bucket, key or None, query dict) of a path-style request."""
        path, _, query = self.path.partition('?')
        parts = path.lstrip('/').split('/', 1)
        bucket = urllib.parse.unquote(parts[0])
        key = urllib.parse.unquote(parts[1]) if len(parts) > 1 and parts[1] else None
        return bucket, key, dict(urllib.parse.parse_qsl(query, keep_blank_values=True))

    def fault(self, op):
        """Apply the rule for this request if one acts; True when it answered."""
        self.s3.record(op, self.target()[1], self.headers)
        r = self.s3.take(op)
        if r is None:
            return False
        if r.kind == 'drop':
            self.close_connection = True
            return True
        if r.kind == 'stall':
            time.sleep(r.stall_s)  # the fault: no answer within the client's attempt timeout
            if r.drop:
                self.close_connection = True
                return True
            return False           # then served: it lands late, the client has likely given up
        self.error(op, r.kind, None, 'injected fault (%s)' % r.label)
        return True

    # -- operations
    def do_PUT(self):
        body = self.read_body()
        if self.fault('PUT'):
            return
        bucket, key, _ = self.target()
        if key is None:
            return self.reply(200)  # CreateBucket: buckets exist on first use anyway
        sha = self.headers.get('x-amz-content-sha256')
        if sha is None:
            return self.error('PUT', 400, 'InvalidRequest', 'missing x-amz-content-sha256')
        if sha not in UNSIGNED and sha != hashlib.sha256(body).hexdigest():
            return self.error('PUT', 400, 'XAmzContentSHA256Mismatch',
                              'The provided x-amz-content-sha256 header does not match what was computed.')
        etag = '"%s"' % hashlib.md5(body).hexdigest()
        with self.s3.lock:
            exists = (bucket, key) in self.s3.objects
            if not (exists and self.headers.get('If-None-Match') == '*'):
                self.s3.objects[(bucket, key)] = (body, etag, time.time())
        if exists and self.headers.get('If-None-Match') == '*':
            return self.error('PUT', 412, 'PreconditionFailed',
                              'At least one of the pre-conditions you specified did not hold')
        self.reply(200, b'', [('ETag', etag)])

    def do_HEAD(self):
        self.get(head=True)

    def do_GET(self):
        self.get(head=False)

    def get(self, head):
        bucket, key, q = self.target()
        if key is None:
            if self.fault('LIST'):
                return
            return self.list(bucket, q)
        op = 'HEAD' if head else 'GET'
        if self.fault(op):
            return
        with self.s3.lock:
            obj = self.s3.objects.get((bucket, key))
        if obj is None:
            return self.error(op, 404, 'NoSuchKey', 'The specified key does not exist.')
        data, etag, mtime = obj
        hdrs = [('ETag', etag), ('Last-Modified', formatdate(mtime, usegmt=True)),
                ('Content-Type', 'application/octet-stream'), ('Accept-Ranges', 'bytes')]
        rng = self.headers.get('Range')
        if not rng:
            return self.reply(200, data, hdrs, head_only=head, length=len(data))
        m = re.match(r'bytes=(\d*)-(\d*)$', rng.strip())
        if not m or (m.group(1) == '' and m.group(2) == ''):
            return self.reply(200, data, hdrs, head_only=head, length=len(data))  # S3 ignores a bad Range
        a, b = m.groups()
        if a == '':
            n = int(b)
            if n == 0:
                return self.error(op, 416, 'InvalidRange', 'The requested range is not satisfiable')
            start, end = max(0, len(data) - n), len(data) - 1
        else:
            start = int(a)
            end = min(int(b), len(data) - 1) if b else len(data) - 1
            if start >= len(data) or (b and int(b) < start):
                return self.error(op, 416, 'InvalidRange', 'The requested range is not satisfiable')
        part = data[start:end + 1]
        self.reply(206, part, hdrs + [('Content-Range', 'bytes %d-%d/%d' % (start, end, len(data)))],
                   head_only=head, length=len(part))

    def list(self, bucket, q):
        if q.get('list-type') != '2':
            return self.error('LIST', 400, 'InvalidArgument', 'only ListObjectsV2 (list-type=2) is served')
        prefix = q.get('prefix', '')
        max_keys = max(0, min(1000, int(q.get('max-keys') or 1000)))
        after = q.get('continuation-token') or q.get('start-after') or ''
        with self.s3.lock:
            keys = sorted((k, v) for (b, k), v in self.s3.objects.items()
                          if b == bucket and k.startswith(prefix) and k > after)
        page, more = keys[:max_keys], len(keys) > max_keys
        items = ''.join('<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>%s</ETag><Size>%d</Size>'
                        '<StorageClass>STANDARD</StorageClass></Contents>'
                        % (_xml(k), time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(v[2])), _xml(v[1]),
                           len(v[0])) for k, v in page)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
                '2006-03-01/"><Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>'
                '<IsTruncated>%s</IsTruncated>%s%s</ListBucketResult>'
                % (_xml(bucket), _xml(prefix), len(page), max_keys, 'true' if more else 'false',
                   '<NextContinuationToken>%s</NextContinuationToken>' % _xml(page[-1][0]) if more else '',
                   items)).encode()
        self.reply(200, body, [('Content-Type', 'application/xml')])

    def do_DELETE(self):
        if self.fault('DELETE'):
            return
        bucket, key, _ = self.target()
        with self.s3.lock:
            self.s3.objects.pop((bucket, key), None)
        self.reply(204)


def _xml(s):
    return (str(s).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace('"', '&quot;').replace("'", '&apos;'))


# ---------------------------------------------------------------- child process

class FaultS3Process:
    """FaultS3 in a child process (`faults3.py --serve`), same controls.
    Readiness and every answer are lines read with bounded waits."""

    def __init__(self, ready_timeout=15, python=sys.executable or '/usr/bin/python3', tls=None):
        self.proc = subprocess.Popen([python, os.path.abspath(__file__), '--serve'] + (list(tls) if tls else []),
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=None, close_fds=True)
        self._buf = b''
        self._lock = threading.Lock()
        try:
            line = self._readline(ready_timeout)
            info = json.loads(line)
        except Exception:
            self.stop()
            raise
        self.port = info['port']
        self.endpoint = info['endpoint']

    def _readline(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b'\n' not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError('faults3: no answer from the child within %.0fs' % timeout)
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError('faults3: the child exited (code %s)' % self.proc.poll())
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b'\n')
        return line.decode()

    def call(self, cmd, timeout=10, **args):
        with self._lock:
            if self.proc.poll() is not None:
                raise RuntimeError('faults3: the child is not running (code %s)' % self.proc.returncode)
            self.proc.stdin.write((json.dumps(dict(args, cmd=cmd)) + '\n').encode())
            self.proc.stdin.flush()
            line = self._readline(timeout)
        if not line.startswith('ok'):
            raise RuntimeError('faults3: %s answered %r' % (cmd, line))
        return json.loads(line[2:].strip() or 'null')

    def add_rule(self, ops, kind, count=None, seconds=None, stall_s=3.0, drop=False, label=None):
        return self.call('add_rule', ops=ops, kind=kind, count=count, seconds=seconds, stall_s=stall_s, drop=drop,
                         label=label)

    def fail_puts(self, n, status=500):
        return self.call('fail_puts', n=n, status=status)

    def fail_puts_for(self, seconds, status=503):
        return self.call('fail_puts_for', seconds=seconds, status=status)

    def stall_puts(self, n, stall_s=3.0, drop=False):
        return self.call('stall_puts', n=n, stall_s=stall_s, drop=drop)

    def stall_puts_for(self, seconds, stall_s=3.0, drop=False):
        return self.call('stall_puts_for', seconds=seconds, stall_s=stall_s, drop=drop)

    def fail_gets(self, n, status=500):
        return self.call('fail_gets', n=n, status=status)

    def fail_gets_for(self, seconds, status=500):
        return self.call('fail_gets_for', seconds=seconds, status=status)

    def clear(self):
        return self.call('clear')

    def stats(self):
        return self.call('stats')

    def object_keys(self, bucket=None):
        return self.call('object_keys', bucket=bucket)

    def requests(self, op=None):
        return self.call('requests', op=op)

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            proc.stdin.close()  # the child serves until its stdin closes
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


_COMMANDS = ('add_rule', 'fail_puts', 'fail_puts_for', 'stall_puts', 'stall_puts_for', 'fail_gets', 'fail_gets_for',
             'clear', 'stats', 'object_keys', 'requests')


def serve(tls=None):
    """The child's main: print {"port", "endpoint"}, then one answer per command line until stdin closes."""
    srv = FaultS3(tls=tls).start()
    out = sys.stdout
    out.write(json.dumps({'port': srv.port, 'endpoint': srv.endpoint}) + '\n')
    out.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            args = json.loads(line)
            cmd = args.pop('cmd')
            if cmd not in _COMMANDS:
                raise ValueError('unknown command %r' % cmd)
            res = getattr(srv, cmd)(**args)
            out.write('ok %s\n' % json.dumps(res))
        except Exception as e:  # noqa: BLE001 -- the answer names it
            out.write('error %s: %s\n' % (type(e).__name__, str(e).replace('\n', ' ')))
        out.flush()
    srv.stop()


if __name__ == '__main__':
    if sys.argv[1:] == ['--serve']:
        serve()
    elif sys.argv[1:2] == ['--serve'] and len(sys.argv) == 4:
        serve(tls=(sys.argv[2], sys.argv[3]))
    else:
        sys.stderr.write('usage: faults3.py --serve   (or import it: FaultS3, FaultS3Process)\n')
        sys.exit(2)
