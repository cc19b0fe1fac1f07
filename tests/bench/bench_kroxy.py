#!/usr/bin/python3
"""bench_kroxy: Kroxylicious, the Java Kafka proxy, as the benchmark's peer.

A pass-through virtual cluster (no filters) in front of the same backend
kzproxy is measured against, so a table can show each proxy's added latency
and CPU per GB side by side:

    from bench_kroxy import Kroxylicious
    with Kroxylicious(tb.bootstrap, workdir) as k:
        run kz_bench against k.bootstrap; CPU from /proc/<k.pid>/stat

Kroxylicious runs from tests/kroxylicious: a Maven module that resolves
io.kroxylicious:kroxylicious-runtime (KROXY_VERSION) from Maven Central and
a launcher of ours (io.kzproxy.tests.KroxyLauncher; Maven Central has no
kroxylicious-app). ensure_built() builds it when target/ is missing or older
than its sources: offline first (`mvn -q -B -o package`), then online once.
scripts/deps.sh builds it too. KZ_KROXY_HOME names a prebuilt target/
instead (then nothing is built).

The gateway is portIdentifiesNode: the bootstrap port and one port per
broker (node ids from the backend's Metadata, unless given), consecutive as
Kroxylicious requires, all on 127.0.0.1 and chosen by the kernel (bound to
port 0 and probed; a start that loses a port to another process is retried
on new ports). No management endpoint. Log4j at WARN; the JVM's stdout and
stderr go to the log file (.log).

Runs under /usr/bin/python3 (Debian's confluent_kafka does the Metadata
round trips; kcat -L -J when it is missing). Nothing here sleeps to
synchronise: readiness is polled against a deadline.

    /usr/bin/python3 tests/bench/bench_kroxy.py --build
    /usr/bin/python3 tests/bench/bench_kroxy.py --bootstrap HOST:PORT[,...] [--workdir DIR]
        (prints the proxy's bootstrap, serves until Ctrl-C)
"""

import argparse
import fcntl
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.join(HERE, '..', 'integration') not in sys.path:
    sys.path.insert(0, os.path.join(HERE, '..', 'integration'))

from kzproc import (HarnessError, SkipTest, _die_with_parent, _listen_socket,  # noqa: E402
                    _terminate, top_srcdir)

__all__ = ['Kroxylicious', 'KROXY_VERSION', 'ensure_built', 'kroxy_classpath', 'kroxy_home',
           'metadata_brokers', 'unavailable']

KROXY_VERSION = '0.12.0'
"""The Kroxylicious release tests/kroxylicious/pom.xml pins."""

MAIN = 'io.kzproxy.tests.KroxyLauncher'
JAR = 'kz-kroxylicious-1.jar'
BUILD_TIMEOUT_S = 900


# ---------------------------------------------------------------- the build

def module_dir():
    """tests/kroxylicious in the source tree (pom.xml, src/)."""
    return os.path.join(top_srcdir(), 'tests', 'kroxylicious')


def kroxy_home():
    """The built module: $KZ_KROXY_HOME, else tests/kroxylicious/target
    (the launcher's jar, lib/ and classpath.txt)."""
    return os.environ.get('KZ_KROXY_HOME') or os.path.join(module_dir(), 'target')


def _build_command(offline):
    argv = ['mvn', '-q', '-B'] + (['-o'] if offline else [])
    return argv + ['-f', os.path.join(module_dir(), 'pom.xml'), 'package']


def _stale(home):
    """Why home needs a build (a sentence), or None when it is up to date."""
    jar = os.path.join(home, JAR)
    for path in (jar, os.path.join(home, 'classpath.txt'), os.path.join(home, 'lib')):
        if not os.path.exists(path):
            return '%s is missing' % path
    if os.environ.get('KZ_KROXY_HOME'):
        return None
    built = os.path.getmtime(jar)
    mod = module_dir()
    paths = [os.path.join(mod, 'pom.xml')]
    for root, _, files in os.walk(os.path.join(mod, 'src')):
        paths += [os.path.join(root, f) for f in files]
    newer = [p for p in paths if os.path.getmtime(p) > built]
    return ('%s is newer than the build' % newer[0]) if newer else None


def unavailable():
    """Why Kroxylicious cannot run here (a sentence), or None. Cheap: no
    build; a missing build with java and mvn present counts as available
    (ensure_built() makes it)."""
    if shutil.which('java') is None:
        return 'java is not installed (scripts/deps.sh installs OpenJDK 17 and Maven)'
    # start()'s Metadata round trips: confluent_kafka, else kcat.
    if importlib.util.find_spec('confluent_kafka') is None and shutil.which('kcat') is None:
        return 'neither confluent_kafka nor kcat is installed (scripts/deps.sh installs both)'
    why = _stale(kroxy_home())
    if why is not None and os.environ.get('KZ_KROXY_HOME'):
        return 'KZ_KROXY_HOME=%s is not a built tests/kroxylicious: %s' % (kroxy_home(), why)
    if why is not None and shutil.which('mvn') is None:
        return ('Kroxylicious is not built (%s) and mvn is not installed: scripts/deps.sh installs '
                'Maven and builds tests/kroxylicious' % why)
    return None


def ensure_built(quiet=False):
    """Build tests/kroxylicious unless it is up to date; return its classpath.

    Offline first (a machine that keeps ~/.m2 needs no network), then
    online. SkipTest when java or mvn is missing, HarnessError when Maven
    fails (with what it printed and the command to run by hand). Builds by
    concurrent callers are serialised by a lock file in target/."""
    home = kroxy_home()
    why = _stale(home)
    if why is None:
        return kroxy_classpath()
    if os.environ.get('KZ_KROXY_HOME'):
        raise HarnessError('KZ_KROXY_HOME=%s is not a built tests/kroxylicious: %s' % (home, why))
    for tool in ('java', 'mvn'):
        if shutil.which(tool) is None:
            raise SkipTest('%s is not installed: Kroxylicious (tests/kroxylicious) needs a JDK 17 and Maven '
                           '(scripts/deps.sh installs them: apt-get install openjdk-17-jdk-headless maven)' % tool)
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, '.kz-build.lock'), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        why = _stale(home)  # another process may have built it meanwhile
        if why is None:
            return kroxy_classpath()
        if not quiet:
            sys.stderr.write('bench_kroxy: building tests/kroxylicious (%s); a first build downloads '
                             'Kroxylicious %s and its dependencies from Maven Central\n' % (why, KROXY_VERSION))
        t0 = time.monotonic()
        out = ''
        for offline in (True, False):
            argv = _build_command(offline)
            try:
                cp = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S,
                                    preexec_fn=_die_with_parent)
            except subprocess.TimeoutExpired as e:
                out = (e.stdout or b'').decode('utf-8', 'replace') + '\n(timed out after %ds)' % BUILD_TIMEOUT_S
                continue
            out = re.sub(r'\x1b\[[0-9;]*m', '', cp.stdout.decode('utf-8', 'replace'))  # Maven's colours
            if cp.returncode == 0 and all(os.path.exists(os.path.join(home, p))
                                          for p in (JAR, 'classpath.txt', 'lib')):
                os.utime(os.path.join(home, JAR))  # built now, whether or not Maven rewrote the jar
                if not quiet:
                    sys.stderr.write('bench_kroxy: built tests/kroxylicious in %.1f s (%s)\n'
                                     % (time.monotonic() - t0, 'offline' if offline else 'online'))
                return kroxy_classpath()
        raise HarnessError(
            'Maven could not build tests/kroxylicious (Kroxylicious %s from Maven Central); run once with '
            'network access: mvn -B -f %s package   (or scripts/deps.sh). Maven printed:\n%s'
            % (KROXY_VERSION, os.path.join(module_dir(), 'pom.xml'), out[-3000:]))


def kroxy_classpath():
    """The launcher's jar and its dependencies in Maven's order
    (target/classpath.txt, relative to target/). HarnessError if not built."""
    home = kroxy_home()
    why = _stale(home)
    if why is not None:
        raise HarnessError('Kroxylicious is not built: %s (ensure_built() or scripts/deps.sh builds it: '
                           'mvn -q -f tests/kroxylicious/pom.xml package)' % why)
    with open(os.path.join(home, 'classpath.txt')) as f:
        deps = [p for p in f.read().strip().split(':') if p]
    return ':'.join([os.path.join(home, JAR)] + [os.path.join(home, p) for p in deps])


# ---------------------------------------------------------------- Kafka metadata

def metadata_brokers(bootstrap, timeout=5):
    """{node id: 'host:port'} from one Metadata round trip to bootstrap
    (librdkafka: confluent_kafka if importable, else kcat -L -J).
    HarnessError when there is no answer within timeout seconds."""
    timeout = max(0.5, timeout)
    try:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient
    except ImportError:
        return _kcat_metadata_brokers(bootstrap, timeout)
    admin = AdminClient({'bootstrap.servers': bootstrap, 'log_level': 0,
                         'socket.timeout.ms': int(timeout * 1000)})
    try:
        md = admin.list_topics(timeout=timeout)
    except KafkaException as e:
        raise HarnessError('no Metadata from %s within %.1fs: %s' % (bootstrap, timeout, e))
    return {b.id: '%s:%d' % (b.host, b.port) for b in md.brokers.values()}


def _kcat_metadata_brokers(bootstrap, timeout):
    kcat = shutil.which('kcat')
    if kcat is None:
        raise SkipTest('neither confluent_kafka nor kcat is installed (scripts/deps.sh installs both)')
    argv = [kcat, '-L', '-J', '-b', bootstrap, '-m', str(max(1, int(timeout)))]
    try:
        cp = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        raise HarnessError('kcat -L: no Metadata from %s within %.1fs' % (bootstrap, timeout))
    if cp.returncode != 0:
        raise HarnessError('kcat -L -b %s failed (%d): %s' % (bootstrap, cp.returncode,
                                                               cp.stderr.decode('utf-8', 'replace')[-500:]))
    return {b['id']: b['name'] for b in json.loads(cp.stdout)['brokers']}


# ---------------------------------------------------------------- the proxy

class _PortTaken(Exception):
    """Kroxylicious could not bind a port the helper had probed free."""


def _probe_ports(nodes):
    """(open probe sockets, bootstrap port, first of `nodes` consecutive
    node ports). The probes stay open until the caller closes them, so the
    kernel hands out no port twice."""
    socks = []
    try:
        socks.append(_listen_socket())
        boot = socks[-1].getsockname()[1]
        for _ in range(64):
            socks.append(_listen_socket())
            start = socks[-1].getsockname()[1]
            if start + nodes - 1 > 65535:
                continue
            run = []
            for port in range(start + 1, start + nodes):
                try:
                    run.append(_listen_socket(port))
                except HarnessError:
                    break
            socks += run
            if len(run) == nodes - 1:
                return socks, boot, start
        raise HarnessError('found no %d consecutive free ports on 127.0.0.1 in 64 tries' % nodes)
    except BaseException:
        for s in socks:
            s.close()
        raise


def _ranges(ids):
    """Consecutive runs of sorted node ids: [(start, end)], end inclusive."""
    runs = []
    for i in sorted(ids):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return [tuple(r) for r in runs]


class Kroxylicious:
    """One Kroxylicious JVM: a pass-through virtual cluster in front of
    `backend` (the brokers' bootstrap, "h:p[,h:p...]").

    Arguments:
      backend        the target cluster's bootstrap servers
      workdir        where the config (NAME.yaml) and log (NAME.log) go;
                     None: a new temporary directory (kept)
      node_ids       the backend's broker ids; None: from its Metadata
      heap           -Xmx (default 1g; -Xms64m)
      cpus           -XX:ActiveProcessorCount (Kroxylicious runs one Netty
                     worker per processor it sees); None: the machine's
      jvm_args       more JVM options, after ours (a later -XX wins)
      ready_timeout  seconds for the JVM to serve Metadata (per attempt)
      name           file names in workdir and the virtual cluster's name

    Once started (start() or `with`): bootstrap ('127.0.0.1:PORT'), port,
    node_ports {node id: port}, pid (the JVM, for /proc CPU accounting),
    proc, log (path), config_path, argv, start_s (seconds from spawn to a
    Metadata round trip through it). Methods: start(), stop(),
    log_tail(n). start() raises SkipTest when java or Maven is
    missing, HarnessError when it does not come up (with the log's tail).
    """

    __test__ = False

    def __init__(self, backend, workdir=None, node_ids=None, heap='1g', cpus=None, jvm_args=(),
                 ready_timeout=60, name='kroxylicious'):
        self.backend = backend
        self.workdir = workdir
        self.node_ids = sorted(set(node_ids)) if node_ids is not None else None
        self.heap = heap
        self.cpus = cpus
        self.jvm_args = list(jvm_args)
        self.ready_timeout = ready_timeout
        self.name = name
        self.host = '127.0.0.1'
        self.proc = None
        self.port = None
        self.bootstrap = None
        self.node_ports = {}
        self.argv = None
        self.start_s = None
        self.log = None
        self.config_path = None

    # -- lifecycle
    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop(check=exc_type is None)
        return False

    def start(self):
        cp = ensure_built()
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix='kzkroxy-')
        os.makedirs(self.workdir, exist_ok=True)
        self.log = os.path.join(self.workdir, self.name + '.log')
        self.config_path = os.path.join(self.workdir, self.name + '.yaml')
        if self.node_ids is None:
            self.node_ids = sorted(metadata_brokers(self.backend, timeout=min(10, self.ready_timeout)))
            if not self.node_ids:
                raise HarnessError('the backend %s named no brokers in its Metadata' % self.backend)
        for attempt in range(3):
            try:
                return self._start_once(cp)
            except _PortTaken as e:
                sys.stderr.write('bench_kroxy: %s; starting again on new ports\n' % e)
        raise HarnessError('Kroxylicious: a port was taken before it could bind it, 3 times in a row (see %s)'
                           % self.log)

    def _start_once(self, cp):
        socks, boot, first = _probe_ports(len(self.node_ids))
        try:
            self.port = boot
            self.bootstrap = '%s:%d' % (self.host, boot)
            self.node_ports = {nid: first + i for i, nid in enumerate(self.node_ids)}
            with open(self.config_path, 'w') as f:
                f.write(self.config_yaml(first))
            self.argv = self.java_argv(cp)
        finally:
            for s in socks:
                s.close()
        with open(self.log, 'ab') as out:
            shown = [('$(%s)' % os.path.join(kroxy_home(), 'classpath.txt')) if a == cp else a for a in self.argv]
            out.write(('--- bench_kroxy: %s\n' % ' '.join(shown)).encode())
            out.flush()
            t0 = time.monotonic()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.workdir, preexec_fn=_die_with_parent)
        try:
            self._wait_ready()
        except BaseException:
            self.stop(check=False)
            raise
        self.start_s = round(time.monotonic() - t0, 2)
        return self

    def config_yaml(self, node_start_port):
        """The proxy's configuration: one virtual cluster, one plain gateway."""
        lines = [
            '# written by tests/bench/bench_kroxy.py: a pass-through, no filters, no management endpoint',
            'virtualClusters:',
            '  - name: %s' % json.dumps(self.name),
            '    targetCluster:',
            '      bootstrapServers: %s' % json.dumps(self.backend),
            '    gateways:',
            '      - name: g',
            '        portIdentifiesNode:',
            '          bootstrapAddress: %s' % json.dumps(self.bootstrap),
            '          nodeStartPort: %d' % node_start_port,
            '          nodeIdRanges:',
        ]
        for start, end in _ranges(self.node_ids):
            lines += ['            - name: nodes%d' % start,
                      '              start: %d' % start,
                      '              end: %d' % end]
        return '\n'.join(lines) + '\n'

    def java_argv(self, cp):
        argv = ['java', '-Xms64m', '-Xmx' + self.heap, '-XX:+ExitOnOutOfMemoryError',
                '-Djava.awt.headless=true', '-Dlog4j2.configurationFile=classpath:log4j2.properties']
        if self.cpus:
            argv.append('-XX:ActiveProcessorCount=%d' % self.cpus)
        return argv + self.jvm_args + ['-cp', cp, MAIN, self.config_path]

    def _wait_ready(self):
        """Until the bootstrap port accepts and a Metadata round trip through
        it names every broker at its gateway port. _PortTaken when the JVM
        died on a taken port, HarnessError on any other exit or the deadline."""
        want = {nid: '%s:%d' % (self.host, p) for nid, p in self.node_ports.items()}
        deadline = time.monotonic() + self.ready_timeout
        last = 'not tried'
        while True:
            if self.proc.poll() is not None:
                tail = self.log_tail(40)
                if 'Address already in use' in tail or 'BindException' in tail:
                    raise _PortTaken('Kroxylicious could not bind one of its ports (taken meanwhile)')
                raise HarnessError('Kroxylicious exited with code %s while starting; %s ends:\n%s'
                                   % (self.proc.returncode, self.log, tail))
            left = deadline - time.monotonic()
            try:
                with socket.create_connection((self.host, self.port), timeout=max(0.1, min(1, left))):
                    pass
                got = metadata_brokers(self.bootstrap, timeout=max(0.5, min(5, left)))
                if got == want:
                    return
                last = 'its Metadata names brokers %s, expected %s' % (got, want)
            except (OSError, HarnessError) as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise HarnessError('Kroxylicious on %s did not serve Metadata within %ds (last: %s); %s ends:\n%s'
                                   % (self.bootstrap, self.ready_timeout, last, self.log, self.log_tail(40)))
            try:
                self.proc.wait(timeout=0.1)  # the poll interval; returns at once if the JVM exits
            except subprocess.TimeoutExpired:
                pass

    def stop(self, check=True):
        """SIGTERM (the launcher shuts the proxy down), SIGKILL after 30 s
        (Netty's own shutdown may take its default 15 s).
        Returns the exit code; with check, HarnessError unless it exited by
        that SIGTERM (143) or cleanly. Idempotent."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        rc, killed = _terminate(proc, 30, 'Kroxylicious')
        if check and (killed or rc not in (0, 128 + signal.SIGTERM, -signal.SIGTERM)):
            raise HarnessError('Kroxylicious exited with code %s%s; %s ends:\n%s'
                               % (rc, ' (killed)' if killed else '', self.log, self.log_tail(20)))
        return rc

    # -- accounting
    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def log_tail(self, n=20):
        """The last n lines of the log file ('' if none)."""
        try:
            with open(self.log, 'rb') as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 65536))
                data = f.read().decode('utf-8', 'replace')
        except (OSError, TypeError):
            return ''
        return '\n'.join(data.splitlines()[-n:])


def main(argv=None):
    ap = argparse.ArgumentParser(description='Kroxylicious as the benchmark peer: build it, or run one '
                                             'pass-through proxy in front of a Kafka cluster until Ctrl-C.')
    ap.add_argument('--build', action='store_true', help='build tests/kroxylicious if needed, then exit')
    ap.add_argument('--bootstrap', help='the backend\'s bootstrap servers')
    ap.add_argument('--workdir')
    ap.add_argument('--cpus', type=int)
    o = ap.parse_args(argv)
    try:
        if o.build or not o.bootstrap:
            ensure_built()
            print(kroxy_home())
            return 0
        with Kroxylicious(o.bootstrap, o.workdir, cpus=o.cpus) as k:
            print(json.dumps({'bootstrap': k.bootstrap, 'pid': k.pid, 'log': k.log, 'start_s': k.start_s,
                              'node_ports': k.node_ports}), flush=True)
            # Blocked only now: the JVM must not inherit a mask without SIGTERM.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except (HarnessError, SkipTest) as e:
        sys.stderr.write('bench_kroxy: %s\n' % e)
        return 77 if isinstance(e, SkipTest) else 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
