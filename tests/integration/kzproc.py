"""kzproc: the process plumbing under kzharness and kzbed.

Errors a test reports (HarnessError, SkipTest), where the build put things,
lines read off pipes with a deadline, bounded termination, and daemons that
die with the test (PR_SET_PDEATHSIG). No waits here sleep to synchronise.
"""

import ctypes
import os
import select
import signal
import socket
import subprocess
import sys
import time


class HarnessError(Exception):
    """Something the test depends on did not happen (in time)."""


class SkipTest(Exception):
    """The test cannot run here (missing tool); run_test() exits 77."""


# ---------------------------------------------------------------- paths

def top_builddir():
    return os.path.abspath(os.environ.get('top_builddir') or os.getcwd())


def top_srcdir():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(os.environ.get('top_srcdir') or os.path.join(here, '..', '..'))


def testbed_binary():
    return os.path.join(top_builddir(), 'tests', 'testbed', 'kz-testbed')


def kzproxy_binary():
    return os.path.join(top_builddir(), 'kzproxy')


def kzproxy_has_asan():
    """Whether kzproxy is built with AddressSanitizer (--enable-sanitizers):
    valgrind cannot run it, and it keeps no frame pool. OSError if unreadable."""
    with open(kzproxy_binary(), 'rb') as f:
        return b'__asan_init' in f.read()


def _require_binary(path, what):
    if not os.access(path, os.X_OK):
        raise SkipTest('%s not built: %s (set top_builddir or run make)' % (what, path))


# ---------------------------------------------------------------- pipes

class _LineReader:
    """Reads lines from a pipe with a deadline (select + os.read, no stdio)."""

    def __init__(self, fileobj, what):
        self.f = fileobj
        self.fd = fileobj.fileno()
        self.what = what
        self.buf = b''
        self.eof = False

    def readline(self, timeout):
        """The next line without its newline, or None at EOF. HarnessError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            nl = self.buf.find(b'\n')
            if nl >= 0:
                line, self.buf = self.buf[:nl], self.buf[nl + 1:]
                return line.decode('utf-8', 'replace')
            if self.eof:
                if self.buf:
                    line, self.buf = self.buf, b''
                    return line.decode('utf-8', 'replace')
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError('%s: no line within %.1fs' % (self.what, timeout))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                self.feed()

    def feed(self):
        """Read what is available (call only when select says readable)."""
        data = os.read(self.fd, 65536)
        if data:
            self.buf += data
        else:
            self.eof = True


def _terminate(proc, timeout, what, send=True):
    """SIGTERM (unless already sent), bounded wait, SIGKILL as last resort.
    Returns (returncode, killed)."""
    if proc.poll() is not None:
        return proc.returncode, False
    if send:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        return proc.wait(timeout=timeout), False
    except subprocess.TimeoutExpired:
        sys.stderr.write('kzharness: %s did not stop %.1fs after SIGTERM: SIGKILL\n' % (what, timeout))
        proc.kill()
        return proc.wait(timeout=10), True


_libc = None


def _die_with_parent():
    """preexec_fn: PR_SET_PDEATHSIG(SIGKILL), so a daemon never outlives a killed test."""
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl  # noqa: B018 -- resolve now, not in the forked child
except (OSError, AttributeError):
    _libc = None



def _listen_socket(port=0, host='127.0.0.1'):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Always, also for port 0: accepted connections inherit it, so the
        # TIME_WAIT they leave when the daemon dies (SIGKILL) does not keep
        # restart_proxy from binding the port again.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(128)
    except OSError as e:
        s.close()
        raise HarnessError('cannot listen on %s:%d: %s' % (host, port, e))
    return s
