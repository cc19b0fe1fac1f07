"""kzharness: start a zoned mock Kafka cluster and kzproxy daemons for tests.

Runs under /usr/bin/python3 (Debian's confluent_kafka and kafka-python). Every
wait here is bounded and fails with a HarnessError saying what did not happen;
nothing sleeps to synchronise: readiness comes from lines read off pipes with
select(), and listening sockets are bound by the harness before any daemon
starts, so every address is known up front.

    with TestBed(topics={'t12': 12}) as tb, ProxyCluster(tb) as pc:
        a = pc.proxy_in('a')
        kcat('-P', '-b', a.kafka, '-t', 't12', input=b'hello\\n')

A test's main goes through run_test(), which maps SkipTest to exit 77, a
failure to exit 1 and arms a watchdog so the test always stops by itself.

Environment: top_builddir (default: the current directory, where automake runs
tests), KZ_TEST_KEEP=1 keeps the work directory (configs, proxy logs),
KZ_PROXY_WRAPPER prefixes the daemon's command line (e.g. "valgrind -q").
"""

import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from dataclasses import dataclass, field

__all__ = [
    'HarnessError', 'SkipTest', 'TestBed', 'MockBed', 'KafkaBed', 'backend_name', 'Broker', 'ProxyCluster', 'Proxy',
    'Metrics', 'parse_prometheus', 'metrics', 'rss_kib', 'log_tail', 'kcat',
    'require_kcat', 'produce', 'consume_all', 'wait_until', 'run_test',
    'clients_dir', 'node_package', 'scram_credentials_file',
    'top_builddir', 'top_srcdir', 'testbed_binary', 'kzproxy_binary',
]


from kzproc import (HarnessError, SkipTest, _LineReader, _die_with_parent, _listen_socket,  # noqa: F401
                    _require_binary, _terminate, kzproxy_binary, kzproxy_has_asan, testbed_binary,
                    top_builddir, top_srcdir)
from kzbed import Broker, KafkaBed, MockBed, TestBed, backend_name  # noqa: F401


# ---------------------------------------------------------------- proxies

@dataclass
class Proxy:
    zone: str
    node_id: int
    kafka_port: int
    admin_port: int
    log: str              # stderr of the daemon
    stdout_log: str       # what it printed on stdout after "kzproxy ready"
    config_path: str
    config: dict = field(default_factory=dict)
    proc: object = None
    stopped: bool = False  # stopped on purpose by the test (not an early exit)
    host: str = '127.0.0.1'  # its Kafka listener's address (see ProxyCluster distinct_ips)
    netns: str = None        # the network namespace it runs in (see ProxyCluster netns)

    @property
    def kafka(self):
        return '%s:%d' % (self.host, self.kafka_port)

    @property
    def admin(self):
        return '127.0.0.1:%d' % self.admin_port

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        with open(self.log, 'rb') as f:
            return f.read().decode('utf-8', 'replace')


def log_tail(proxy, lines=40):
    try:
        text = proxy.log_text()
    except OSError as e:
        return '(no log: %s)' % e
    return '\n'.join(text.splitlines()[-lines:])


def _same_port_sockets(hosts, attempts=20):
    """Listening sockets on each of hosts, all on one kernel-chosen port:
    the first host picks it, the others bind it; a port taken on another
    host makes a bounded number of fresh attempts."""
    last = None
    for _ in range(attempts):
        socks = [_listen_socket(0, hosts[0])]
        port = socks[0].getsockname()[1]
        try:
            for h in hosts[1:]:
                socks.append(_listen_socket(port, h))
            return socks
        except HarnessError as e:
            last = e
            for s in socks:
                s.close()
    raise HarnessError('no port free on all of %s after %d attempts: %s' % (', '.join(hosts), attempts, last))


def _merge(base, extra):
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


class ProxyCluster:
    """kzproxy daemons, per_zone of them in each zone, against a TestBed.

    Node ids are 101, 102, ... in zone order. For each proxy the harness binds
    the Kafka and admin listeners itself (127.0.0.1, port 0) and passes them
    with pass_fds, named "fd:N" in the config, so all ports are known before
    the first daemon starts. Waits for "kzproxy ready" on each daemon's stdout.
    extra_config: dict deep-merged into every config, or callable(proxy) -> dict.
    distinct_ips: each proxy's Kafka listener on its own loopback address
    (127.0.0.2, 127.0.0.3, ... in node id order), all on one kernel-chosen
    port (kafka_port), as DNS discovery wants (one port for every address);
    admin listeners stay on 127.0.0.1.
    netns: {zone: (namespace, address)}: the proxies of a zone run in that
    network namespace (under "ip netns exec"), their Kafka listeners made
    inside it (setns(2)) on address; the admin listeners stay on 127.0.0.1
    of the test's namespace (a descriptor works wherever its process runs),
    so /metrics is read without touching the namespace's links.
    """

    READY_LINE = 'kzproxy ready'

    def __init__(self, testbed, zones=('a', 'b', 'c'), per_zone=1, extra_config=None,
                 ready_timeout=30, stop_timeout=15, log_level='info', workdir=None, distinct_ips=False,
                 netns=None):
        self.testbed = testbed
        self.zones = tuple(zones)
        self.per_zone = per_zone
        self.extra_config = extra_config
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.log_level = log_level
        self.workdir = workdir
        self.distinct_ips = distinct_ips
        self.netns = dict(netns or {})
        if self.netns and distinct_ips:
            raise HarnessError('ProxyCluster: distinct_ips and netns do not go together')
        self._own_workdir = workdir is None
        self.proxies = []
        self._socks = {}        # node_id -> (kafka sock, admin sock) until handed over
        self._threads = []

    # -- setup
    def _plan(self):
        node_id = 101
        count = len(self.zones) * self.per_zone
        if self.distinct_ips:
            hosts = ['127.0.0.%d' % (2 + i) for i in range(count)]
            kafka_socks = _same_port_sockets(hosts)
        else:
            hosts = ['127.0.0.1'] * count
            kafka_socks = [None] * count
        for zone in self.zones:
            for _ in range(self.per_zone):
                i = node_id - 101
                ns, host = self.netns.get(zone, (None, hosts[i]))
                ks = kafka_socks[i] or self._kafka_socket(ns, 0, host)
                ads = _listen_socket()
                base = os.path.join(self.workdir, 'kzproxy-%d' % node_id)
                p = Proxy(zone=zone, node_id=node_id, kafka_port=ks.getsockname()[1],
                          admin_port=ads.getsockname()[1], log=base + '.log',
                          stdout_log=base + '.stdout.log', config_path=base + '.json', host=host, netns=ns)
                self._socks[node_id] = (ks, ads)
                self.proxies.append(p)
                node_id += 1
        for p in self.proxies:
            ks, ads = self._socks[p.node_id]
            cfg = {
                'node_id': p.node_id,
                'zone': p.zone,
                'listen': 'fd:%d' % ks.fileno(),
                'advertised': p.kafka,
                'admin_listen': 'fd:%d' % ads.fileno(),
                'bootstrap_servers': self.testbed.bootstrap_list,
                'peers': [{'node_id': q.node_id, 'zone': q.zone, 'advertised': q.kafka,
                           'admin': q.admin} for q in self.proxies if q is not p],
                'log_level': self.log_level,
            }
            extra = self.extra_config(p) if callable(self.extra_config) else self.extra_config
            if extra:
                _merge(cfg, json.loads(json.dumps(extra)))
            p.config = cfg
            with open(p.config_path, 'w') as f:
                json.dump(cfg, f, indent=2)
                f.write('\n')

    @staticmethod
    def _kafka_socket(ns, port, host):
        if ns is None:
            return _listen_socket(port, host)
        from netzones import in_netns
        with in_netns(ns):
            return _listen_socket(port, host)

    def _spawn(self, p):
        ks, ads = self._socks.pop(p.node_id)
        cfg = dict(p.config, listen='fd:%d' % ks.fileno(), admin_listen='fd:%d' % ads.fileno())
        if cfg != p.config:  # a restart got other descriptor numbers
            p.config = cfg
            with open(p.config_path, 'w') as f:
                json.dump(cfg, f, indent=2)
                f.write('\n')
        argv = shlex.split(os.environ.get('KZ_PROXY_WRAPPER', '')) + [kzproxy_binary(), '--config',
                                                                      p.config_path]
        if p.netns:
            argv = ['ip', 'netns', 'exec', p.netns] + argv
        with open(p.log, 'ab') as err:
            try:
                p.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=err, pass_fds=(ks.fileno(), ads.fileno()),
                                          cwd=self.workdir, preexec_fn=_die_with_parent)
            finally:
                # The daemon owns the listeners now; our copies would keep
                # accepting into a backlog after it dies and hide the failure.
                ks.close()
                ads.close()
        p.stopped = False

    def _wait_ready(self, proxies):
        """Wait for READY_LINE from each of proxies, all in one bounded select loop."""
        readers = {p.proc.stdout.fileno(): (p, _LineReader(p.proc.stdout, 'kzproxy %d' % p.node_id))
                   for p in proxies}
        early = {p.node_id: open(p.stdout_log, 'ab') for p in proxies}  # lines before ready
        try:
            self._wait_ready_loop(readers, early)
        finally:
            for f in early.values():
                f.close()

    def _wait_ready_loop(self, readers, early):
        deadline = time.monotonic() + self.ready_timeout
        while readers:
            for fd, (p, rd) in list(readers.items()):
                while True:
                    nl = rd.buf.find(b'\n')
                    if nl < 0:
                        break
                    raw = rd.buf[:nl + 1]
                    line = raw.decode('utf-8', 'replace').strip()
                    rd.buf = rd.buf[nl + 1:]
                    early[p.node_id].write(raw)
                    if line == self.READY_LINE:
                        del readers[fd]
                        early[p.node_id].close()
                        self._drain(p, rd.buf)
                        break
                if fd in readers and rd.eof:
                    rc = p.proc.wait(timeout=10)
                    p.stopped = True  # reported here, not again by the teardown
                    raise HarnessError('kzproxy %d (zone %s) exited with code %s before "%s"; '
                                       'log %s ends:\n%s' % (p.node_id, p.zone, rc, self.READY_LINE,
                                                             p.log, log_tail(p)))
            if not readers:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError('no "%s" within %.0fs from: %s' % (
                    self.READY_LINE, self.ready_timeout,
                    '; '.join('kzproxy %d (zone %s), log %s ends:\n%s' % (p.node_id, p.zone, p.log, log_tail(p))
                              for p, _ in readers.values())))
            r, _, _ = select.select(list(readers), [], [], left)
            for fd in r:
                readers[fd][1].feed()

    def _drain(self, p, pending):
        """Copy the rest of the daemon's stdout to p.stdout_log so it never blocks on a full pipe."""
        out = open(p.stdout_log, 'ab')
        out.write(pending)
        out.flush()
        pipe = p.proc.stdout

        def run():
            try:
                while True:
                    data = os.read(pipe.fileno(), 65536)
                    if not data:
                        break
                    out.write(data)
                    out.flush()
            except (OSError, ValueError):
                pass
            finally:
                out.close()
                pipe.close()

        t = threading.Thread(target=run, name='kzproxy-%d-stdout' % p.node_id, daemon=True)
        t.start()
        self._threads.append(t)

    def start(self):
        _require_binary(kzproxy_binary(), 'kzproxy')
        if self.testbed.bootstrap is None:
            raise HarnessError('ProxyCluster needs a started TestBed')
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix='kzproxy-test-')
        try:
            self._plan()
            for p in self.proxies:
                self._spawn(p)
            self._wait_ready(self.proxies)
        except BaseException:
            self._teardown(failed=True)
            raise
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        problems = self._teardown(failed=exc_type is not None)
        if problems and exc_type is None:
            raise HarnessError('\n'.join(problems))
        return False

    def _teardown(self, failed):
        """Stop every daemon; returns the problems seen (early exits, bad exit codes)."""
        problems = []
        for p in self.proxies:
            if p.proc is not None and not p.stopped and p.proc.poll() is not None:
                problems.append('kzproxy %d (zone %s) exited early with code %s; log %s ends:\n%s'
                                % (p.node_id, p.zone, p.proc.returncode, p.log, log_tail(p)))
                p.stopped = True
        for p in self.proxies:
            if p.proc is not None and p.proc.poll() is None:
                try:
                    p.proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + self.stop_timeout  # one budget for all: they stop in parallel
        for p in self.proxies:
            if p.proc is None or p.stopped:
                continue
            rc, killed = _terminate(p.proc, max(0.1, deadline - time.monotonic()),
                                    'kzproxy %d' % p.node_id, send=False)
            p.stopped = True
            if killed or rc not in (0, -signal.SIGTERM):
                problems.append('kzproxy %d (zone %s) %s on SIGTERM; log %s ends:\n%s'
                                % (p.node_id, p.zone,
                                   'did not stop' if killed else 'exited with code %s' % rc,
                                   p.log, log_tail(p)))
        for t in self._threads:
            t.join(timeout=5)
        self._threads = [t for t in self._threads if t.is_alive()]
        for p in self.proxies:
            if p.proc is not None and p.proc.stdout is not None and not any(
                    t.name == 'kzproxy-%d-stdout' % p.node_id for t in self._threads):
                p.proc.stdout.close()
        for ks, ads in self._socks.values():
            ks.close()
            ads.close()
        self._socks.clear()
        if problems and failed:
            sys.stderr.write('kzharness: %s\n' % '\n'.join(problems))
        if self._own_workdir and self.workdir and os.path.isdir(self.workdir):
            if failed or problems or os.environ.get('KZ_TEST_KEEP'):
                sys.stderr.write('kzharness: configs and proxy logs kept in %s\n' % self.workdir)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    # -- lookups and per-proxy control
    def proxy_in(self, zone, index=0):
        ps = [p for p in self.proxies if p.zone == zone]
        if index >= len(ps):
            raise KeyError('no proxy #%d in zone %r' % (index, zone))
        return ps[index]

    def proxies_in(self, zone):
        return [p for p in self.proxies if p.zone == zone]

    def by_node_id(self, node_id):
        for p in self.proxies:
            if p.node_id == node_id:
                return p
        raise KeyError('no proxy with node id %r' % (node_id,))

    def stop_proxy(self, p, sig=signal.SIGTERM, timeout=None):
        """Stop one daemon on purpose (sig SIGKILL simulates a crash); returns its exit code."""
        p.stopped = True
        if p.proc.poll() is None:
            p.proc.send_signal(sig)
        try:
            return p.proc.wait(timeout=timeout or self.stop_timeout)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait(timeout=10)
            raise HarnessError('kzproxy %d did not exit within %.0fs of signal %d'
                               % (p.node_id, timeout or self.stop_timeout, sig))

    def restart_proxy(self, p):
        """Start a stopped daemon again on the same ports and wait for it to be ready."""
        if p.running:
            raise HarnessError('kzproxy %d is still running' % p.node_id)
        self._socks[p.node_id] = (self._kafka_socket(p.netns, p.kafka_port, p.host), _listen_socket(p.admin_port))
        self._spawn(p)
        self._wait_ready([p])

    def metrics(self, p, timeout=5):
        return metrics(p, timeout)

    def rss_kib(self, p):
        return rss_kib(p)


# ---------------------------------------------------------------- admin endpoint

class Metrics(dict):
    """Prometheus samples: {'name{k="v",...}': value} (labels sorted), plus .series."""

    def __init__(self):
        super().__init__()
        self.series = []  # (name, {label: value}, float)

    def sum(self, name, default=None, **labels):
        """Sum of the series called name whose labels include labels."""
        vals = [v for n, ls, v in self.series
                if n == name and all(ls.get(k) == str(x) for k, x in labels.items())]
        if not vals:
            if default is None:
                raise KeyError('no metric %s%s' % (name, labels or ''))
            return default
        return sum(vals)


_NAME_RE = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*')


def _escape_label(v):
    return v.replace('\\', '\\\\').replace('\n', '\\n').replace('"', '\\"')


def parse_prometheus(text):
    """Parse the Prometheus text format into Metrics; ValueError on a bad line."""
    m = Metrics()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        mo = _NAME_RE.match(line)
        if not mo:
            raise ValueError('metrics line %d: %r' % (lineno, raw))
        name, i, labels = mo.group(0), mo.end(), {}
        if i < len(line) and line[i] == '{':
            i += 1
            while True:
                while i < len(line) and line[i] in ' ,':
                    i += 1
                if i < len(line) and line[i] == '}':
                    i += 1
                    break
                lm = _NAME_RE.match(line, i)
                if not lm or line[lm.end():lm.end() + 2] != '="':
                    raise ValueError('metrics line %d: bad labels: %r' % (lineno, raw))
                i = lm.end() + 2
                val = []
                while i < len(line) and line[i] != '"':
                    if line[i] == '\\' and i + 1 < len(line):
                        val.append({'n': '\n'}.get(line[i + 1], line[i + 1]))
                        i += 2
                    else:
                        val.append(line[i])
                        i += 1
                if i >= len(line):
                    raise ValueError('metrics line %d: unterminated label: %r' % (lineno, raw))
                i += 1
                labels[lm.group(0)] = ''.join(val)
        parts = line[i:].split()
        if not parts:
            raise ValueError('metrics line %d: no value: %r' % (lineno, raw))
        try:
            value = float(parts[0])
        except ValueError:
            raise ValueError('metrics line %d: bad value: %r' % (lineno, raw))
        key = name
        if labels:
            key += '{' + ','.join('%s="%s"' % (k, _escape_label(labels[k])) for k in sorted(labels)) + '}'
        m[key] = value
        m.series.append((name, labels, value))
    return m


def metrics(proxy, timeout=5):
    """GET http://<admin>/metrics and parse it (proxy: a Proxy or "host:port")."""
    admin = proxy if isinstance(proxy, str) else proxy.admin
    url = 'http://%s/metrics' % admin
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            if r.status != 200:
                raise HarnessError('GET %s: HTTP %d' % (url, r.status))
            return parse_prometheus(r.read().decode('utf-8', 'replace'))
    except OSError as e:
        raise HarnessError('GET %s: %s' % (url, e))


def rss_kib(proxy):
    """Resident set size in KiB from /proc/PID/status (proxy: a Proxy or a pid)."""
    pid = proxy if isinstance(proxy, int) else proxy.pid
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError as e:
        raise HarnessError('cannot read the RSS of pid %s: %s' % (pid, e))
    raise HarnessError('no VmRSS for pid %s (a zombie?)' % pid)


# ---------------------------------------------------------------- clients

def require_kcat():
    path = shutil.which('kcat')
    if path is None:
        raise SkipTest('kcat is not installed (apt-get install kcat)')
    return path


def clients_dir():
    """tests/clients in the source tree: the client round-trip programs, their
    node_modules and pyvenv (installed by scripts/deps.sh)."""
    return os.path.join(top_srcdir(), 'tests', 'clients')


def node_package(package):
    """Whether node and the npm PACKAGE (in tests/clients/node_modules) are here.

    Returns (path of node, None), or (None, why not) for the caller to skip
    with: the reason names scripts/deps.sh, which installs both.
    """
    node = shutil.which('node')
    if node is None:
        return None, 'node is not installed (scripts/deps.sh installs it)'
    clients = clients_dir()
    if not os.path.isdir(os.path.join(clients, 'node_modules', package)):
        return None, ('%s is not installed in %s/node_modules: run scripts/deps.sh '
                      '(npm ci --prefix tests/clients)' % (package, clients))
    return node, None


def scram_credentials_file(path, users, iterations=4096):
    """Write a client_sasl credentials_file for users ({name: password}) to path.

    Each entry is made by `kzproxy --scram-credential NAME --iterations N`
    with the password on stdin, in the order of users; the file is
    {"users": [entry, ...]}, usable for PLAIN and both SCRAM mechanisms.
    HarnessError if an entry contains its password in clear; a failing or
    hanging (30 s) kzproxy raises CalledProcessError / TimeoutExpired.
    """
    entries = []
    for name, password in users.items():
        cp = subprocess.run([kzproxy_binary(), '--scram-credential', name, '--iterations', str(iterations)],
                            input=(password + '\n').encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            check=True, timeout=30)
        if password in cp.stdout.decode():
            raise HarnessError('the --scram-credential entry for %r contains the password' % name)
        entries.append(json.loads(cp.stdout))
    with open(path, 'w') as f:
        json.dump({'users': entries}, f)


def kcat(*args, input=None, timeout=60, check=True):
    """Run kcat with args; returns CompletedProcess (stdout/stderr bytes).

    input: bytes or str for stdin. HarnessError on timeout (the process is
    killed) or, with check, on a non-zero exit; both carry kcat's stderr tail.
    """
    argv = [require_kcat()] + [str(a) for a in args]
    if isinstance(input, str):
        input = input.encode()
    try:
        cp = subprocess.run(argv, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        err = (e.stderr or b'').decode('utf-8', 'replace')
        raise HarnessError('kcat timed out after %.0fs: %s\n%s' % (timeout, ' '.join(argv), err[-2000:]))
    if check and cp.returncode != 0:
        raise HarnessError('kcat exited with %d: %s\n%s' % (cp.returncode, ' '.join(argv),
                                                            cp.stderr.decode('utf-8', 'replace')[-2000:]))
    return cp


def produce(bootstrap, topic, messages, config=None, timeout=60):
    """Produce (key, value) pairs with confluent_kafka; returns [(partition, offset)]
    in input order. HarnessError if any delivery fails or flush times out."""
    from confluent_kafka import Producer
    conf = {'bootstrap.servers': bootstrap, 'linger.ms': 5}
    conf.update(config or {})
    p = Producer(conf)
    results, errors = {}, []

    def cb(i):
        def dr(err, msg):
            if err is not None:
                errors.append('message %d: %s' % (i, err))
            else:
                results[i] = (msg.partition(), msg.offset())
        return dr

    deadline = time.monotonic() + timeout
    n = 0
    for i, (k, v) in enumerate(messages):
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=cb(i))
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise HarnessError('produce to %s: queue full for %.0fs' % (topic, timeout))
                p.poll(0.1)
        p.poll(0)
        n = i + 1
    left = p.flush(max(0.0, deadline - time.monotonic()))
    if left:
        raise HarnessError('produce to %s: %d of %d messages undelivered after %.0fs'
                           % (topic, left, n, timeout))
    if errors:
        raise HarnessError('produce to %s: %d failed deliveries, first: %s' % (topic, len(errors), errors[0]))
    return [results[i] for i in range(n)]


def consume_all(bootstrap, topic, partitions=None, config=None, timeout=60):
    """Read every partition of topic from the beginning to its end (no group
    commits); returns [(partition, offset, key, value)] in consumed order.

    The end is each partition's high watermark asked of its leader
    (ListOffsets) when the read starts, not the first end-of-partition event:
    a read served by a follower (KIP-392, kzproxy's default zone-local fetch)
    can report its end while the follower still lags the leader."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING
    conf = {'bootstrap.servers': bootstrap, 'group.id': 'kzharness-%d-%d' % (os.getpid(), time.monotonic_ns()),
            'enable.auto.commit': False, 'enable.partition.eof': True, 'session.timeout.ms': 6000}
    conf.update(config or {})
    c = Consumer(conf)
    try:
        if partitions is None:
            md = c.list_topics(topic, timeout=min(timeout, 10))
            t = md.topics.get(topic)
            if t is None or t.error is not None:
                raise HarnessError('consume %s: no metadata: %s' % (topic, t.error if t else 'missing'))
            partitions = sorted(t.partitions)
        deadline = time.monotonic() + timeout
        ends = {}
        for p in partitions:
            try:
                ends[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=max(1.0, min(10.0, timeout)))[1]
            except Exception as e:  # the client's own error type
                raise HarnessError('consume %s: end offset of partition %d: %s' % (topic, p, e))
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending, out = {p for p in partitions if ends[p] > 0}, []
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError('consume %s: partitions %s not at their end offsets %s after %.0fs '
                                   '(%d messages read)' % (topic, sorted(pending), {p: ends[p] for p in pending},
                                                           timeout, len(out)))
            msg = c.poll(min(left, 1.0))
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    if msg.offset() >= ends.get(msg.partition(), 0):
                        pending.discard(msg.partition())
                    continue
                raise HarnessError('consume %s: %s' % (topic, msg.error()))
            out.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                pending.discard(msg.partition())
        return out
    finally:
        c.close()


# ---------------------------------------------------------------- test running

def wait_until(predicate, timeout, what, interval=0.05):
    """Poll predicate() until truthy (returned) or timeout (HarnessError naming what)."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise HarnessError('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(interval)


class _Watchdog(BaseException):
    pass


def run_test(main, timeout=300):
    """Run main() and exit: 0 pass, 77 SkipTest, 1 failure (HarnessError,
    AssertionError, anything else, or main running past timeout seconds)."""
    name = os.path.basename(sys.argv[0])

    def alarm(signum, frame):
        raise _Watchdog()

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(timeout))
    try:
        main()
        code = 0
    except SkipTest as e:
        print('%s: SKIP: %s' % (name, e))
        code = 77
    except _Watchdog:
        print('%s: FAIL: did not finish within %ds' % (name, timeout))
        code = 1
    except (HarnessError, AssertionError) as e:
        print('%s: FAIL: %s' % (name, e))
        code = 1
    except BaseException:
        traceback.print_exc()
        print('%s: FAIL: unexpected exception' % name)
        code = 1
    finally:
        signal.alarm(0)
    sys.stdout.flush()
    sys.exit(code)
