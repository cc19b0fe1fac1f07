"""kzbed: the Kafka backends a test runs kzproxy against, behind one interface.

    MockBed   librdkafka's mock cluster (tests/testbed/kz-testbed): starts in
              milliseconds, injects request errors, RTTs and coordinators.
    KafkaBed  real Apache Kafka (KRaft, one combined broker+controller JVM per
              node, racks = zones), from tests/kafka (built by scripts/deps.sh).

TestBed(...) makes the one the test asks for (backend='mock' or 'kafka'), else
the one KZ_BACKEND names (default mock), so every test runs against either;
a test that needs the mock's fault injection passes backend='mock'.

Both have: start/stop (context manager), bootstrap, bootstrap_list, brokers
[Broker], topics {name: partitions}, broker(id), brokers_in(zone),
create_topic(name, n), set_leader(topic, p, broker), broker_down(id),
broker_up(id). Broker i (ids from 1) is in zone zones[(i-1) % len(zones)] and
partition p of a topic the bed creates is led by broker (p % brokers) + 1.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass

from kzproc import (HarnessError, SkipTest, _LineReader, _die_with_parent, _listen_socket,
                    _require_binary, _terminate, testbed_binary, top_srcdir)


def backend_name(backend=None):
    """The backend a test runs against: backend if given, else $KZ_BACKEND, else mock."""
    name = backend or os.environ.get('KZ_BACKEND') or 'mock'
    if name not in ('mock', 'kafka'):
        raise HarnessError('unknown backend %r (KZ_BACKEND is mock or kafka)' % name)
    return name


def TestBed(*args, backend=None, **kwargs):  # noqa: N802 -- stands for the class it makes
    """A MockBed or a KafkaBed (see backend_name), with the same arguments."""
    if backend_name(backend) == 'kafka':
        kwargs.pop('extra_args', None)
        kwargs.pop('verbose', None)
        return KafkaBed(*args, **kwargs)
    return MockBed(*args, **kwargs)


def broker_metadata_leaders(host, port, topic, timeout=5):
    """{partition: leader id} for topic, from a Metadata v1 request sent to
    that one broker (its own view; a partition without a leader is -1)."""
    import socket
    import struct
    name = topic.encode()
    client = b'kzbed'
    body = struct.pack('>hhih', 3, 1, 1, len(client)) + client + struct.pack('>ih', 1, len(name)) + name
    with socket.create_connection((host, port), timeout=timeout) as sk:
        sk.sendall(struct.pack('>i', len(body)) + body)

        def read(n):
            buf = b''
            while len(buf) < n:
                chunk = sk.recv(n - len(buf))
                if not chunk:
                    raise OSError('broker %s:%d closed the connection' % (host, port))
                buf += chunk
            return buf
        size, = struct.unpack('>i', read(4))
        if not 0 < size < (64 << 20):
            raise OSError('broker %s:%d: a Metadata response of %d bytes' % (host, port, size))
        data = read(size)
    pos = [4]  # after the correlation id

    def take(fmt):
        v = struct.unpack_from(fmt, data, pos[0])
        pos[0] += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string():
        n = take('>h')
        if n < 0:
            return None
        v = data[pos[0]:pos[0] + n]
        pos[0] += n
        return v.decode()
    for _ in range(take('>i')):  # brokers
        take('>i')
        string()
        take('>i')
        string()
    take('>i')  # controller
    leaders = {}
    for _ in range(take('>i')):  # topics
        err = take('>h')
        tname = string()
        take('>b')
        for _ in range(take('>i')):
            perr, part, leader = take('>hii')
            for _ in range(2):  # replicas, then the ISR
                for _ in range(take('>i')):
                    take('>i')
            if tname == topic and err == 0:
                leaders[part] = leader if perr in (0, 9) else -1  # 9: a replica not available, still led
    return leaders


@dataclass
class Broker:
    id: int
    host: str
    port: int
    rack: str

    @property
    def address(self):
        return '%s:%d' % (self.host, self.port)


class _Bed:
    """What both backends share: context management and broker lookups
    (self.brokers: [Broker])."""

    def __enter__(self):
        return self.start()

    def broker(self, broker_id):
        for b in self.brokers:
            if b.id == broker_id:
                return b
        raise KeyError('no broker %r in the test bed' % (broker_id,))

    def brokers_in(self, zone):
        return [b for b in self.brokers if b.rack == zone]

    @property
    def bootstrap_list(self):
        return [b.address for b in self.brokers]


class MockBed(_Bed):
    """A kz-testbed process: a librdkafka mock cluster with brokers in zones.

    Broker i (ids from 1) gets rack zones[(i-1) % len(zones)]; partition p of
    each topic is led by broker (p % brokers) + 1. Attributes once started:
    bootstrap ("h:p,h:p,..."), brokers [Broker], topics {name: partitions}.
    Failure-injection methods talk to the test bed over its stdin.
    """

    __test__ = False  # not a pytest class
    backend = 'mock'

    def __init__(self, zones=('a', 'b', 'c'), brokers=3, topics=None, ready_timeout=30,
                 extra_args=(), verbose=False):
        self.zones = tuple(zones)
        self.broker_cnt = brokers
        self.topic_spec = dict({'t12': 12} if topics is None else topics)
        self.ready_timeout = ready_timeout
        self.extra_args = list(extra_args)
        self.verbose = verbose
        self.proc = None
        self.bootstrap = None
        self.brokers = []
        self.topics = {}
        self._out = None
        self._lock = threading.Lock()

    # -- lifecycle
    def start(self):
        binary = testbed_binary()
        _require_binary(binary, 'kz-testbed')
        argv = [binary, '--stdin-eof', '--brokers', str(self.broker_cnt), '--zones', ','.join(self.zones)]
        for name, parts in self.topic_spec.items():
            argv += ['--topic', '%s:%d' % (name, parts)]
        if self.verbose:
            argv.append('--verbose')
        argv += self.extra_args
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     close_fds=True)
        self._out = _LineReader(self.proc.stdout, 'kz-testbed')
        try:
            line = self._out.readline(self.ready_timeout)
            if line is None:
                rc = self.proc.wait(timeout=10)
                raise HarnessError('kz-testbed exited (code %s) before it was ready: %s'
                                   % (rc, ' '.join(argv)))
            try:
                info = json.loads(line)
            except ValueError:
                raise HarnessError('kz-testbed printed %r, expected its JSON ready line' % line)
            self.bootstrap = info['bootstrap']
            self.brokers = [Broker(b['id'], b['host'], b['port'], b['rack']) for b in info['brokers']]
            self.topics = {t['name']: t['partitions'] for t in info['topics']}
        except BaseException:
            self.stop(check=False)
            raise
        return self

    def stop(self, check=True):
        """Stop the test bed; with check, a non-zero exit raises HarnessError."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            proc.stdin.close()
        except OSError:
            pass
        rc, killed = _terminate(proc, 15, 'kz-testbed')
        proc.stdout.close()
        if check and (rc != 0 or killed):
            raise HarnessError('kz-testbed exited with code %s%s' % (rc, ' (killed)' if killed else ''))

    def __exit__(self, exc_type, exc, tb):
        self.stop(check=exc_type is None)
        return False

    # -- lookups: _Bed
    @property
    def pids(self):
        """The mock cluster's process id, in a list (for CPU accounting)."""
        return [self.proc.pid] if self.proc is not None else []

    # -- control channel
    def control(self, command, timeout=10):
        """Send one command line; return on "ok", HarnessError on anything else."""
        if self.proc is None or self.proc.poll() is not None:
            raise HarnessError('kz-testbed is not running (command %r)' % command)
        with self._lock:
            try:
                self.proc.stdin.write(command.encode() + b'\n')
                self.proc.stdin.flush()
            except BrokenPipeError:
                raise HarnessError('kz-testbed closed its stdin (command %r)' % command)
            reply = self._out.readline(timeout)
        if reply is None:
            raise HarnessError('kz-testbed exited while running %r' % command)
        if reply != 'ok':
            raise HarnessError('kz-testbed: %r answered %r' % (command, reply))

    def set_leader(self, topic, partition, broker_id):
        self.control('leader %s %d %d' % (topic, partition, broker_id))

    def set_follower(self, topic, partition, broker_id):
        self.control('follower %s %d %d' % (topic, partition, broker_id))

    def broker_down(self, broker_id):
        self.control('down %d' % broker_id)

    def broker_up(self, broker_id):
        self.control('up %d' % broker_id)

    def set_rtt(self, broker_id, ms):
        self.control('rtt %d %d' % (broker_id, ms))

    def set_coordinator(self, key_type, key, broker_id):
        self.control('coordinator %s %s %d' % (key_type, key, broker_id))

    def create_topic(self, name, partitions):
        self.control('topic %s %d' % (name, partitions))
        self.topics[name] = partitions

    def push_errors(self, api_key, error_code, count=1):
        self.control('error %d %d %d' % (api_key, error_code, count))


# ---------------------------------------------------------------- real Kafka

def kafka_home():
    """tests/kafka/target: the bed's jar and its lib/ (Kafka and its dependencies)."""
    return os.environ.get('KZ_KAFKA_HOME') or os.path.join(top_srcdir(), 'tests', 'kafka', 'target')


def kafka_classpath():
    home = kafka_home()
    jar = os.path.join(home, 'kz-kafka-testbed-1.jar')
    lib = os.path.join(home, 'lib')
    if not os.path.isfile(jar) or not os.path.isdir(lib):
        raise HarnessError('the real-Kafka test bed is not built: %s missing (scripts/deps.sh builds it: '
                           'mvn -q -f tests/kafka/pom.xml package)' % jar)
    if shutil.which('java') is None:
        raise HarnessError('java is not installed (OpenJDK 17 runs the real-Kafka test bed)')
    return jar + ':' + os.path.join(lib, '*')


def java_argv(main, heap='384m', log_file=None):
    """A java command line for one of the bed's programs (main: a class name)."""
    argv = ['java', '-Xms64m', '-Xmx' + heap, '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1'
            if main == 'io.kzproxy.tests.KzAdmin' else '-XX:+UseSerialGC',
            '-Djava.awt.headless=true', '-Dlog4j2.configurationFile=classpath:log4j2.properties']
    if log_file:
        argv.append('-Dkz.log.file=' + log_file)
    return argv + ['-cp', kafka_classpath(), main]


class _PortTaken(Exception):
    """A broker could not bind a port the harness had probed free."""


SCRAM_USERS = {'kzproxy': 'kzproxy-secret', 'alice': 'alice-secret'}
"""SCRAM-SHA-256/512 and PLAIN users every KafkaBed creates at startup."""


class _PortPicker:
    """Distinct free ports for one bed: each probe socket stays open until
    close(), so the kernel cannot hand the same port out twice (a closed
    probe's port can come back at the next probe: a node once got the same
    port for two listeners and would not start)."""

    def __init__(self):
        self.socks = []

    def __call__(self):
        s = _listen_socket()
        self.socks.append(s)
        return s.getsockname()[1]

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


@dataclass
class _Node:
    id: int
    rack: str
    port: int          # PLAINTEXT
    sasl_port: int     # SASL_PLAINTEXT: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    ctl_port: int      # CONTROLLER
    dir: str
    ssl_port: int = 0       # SSL (tls=True): client certificates requested, not required
    sasl_ssl_port: int = 0  # SASL_SSL (tls=True)
    proc: object = None
    log: str = ''
    host: str = '127.0.0.1'  # every listener's address (KafkaBed hosts)
    prefix: tuple = ()       # argv prefix of its JVMs (KafkaBed exec_prefix)


def _openssl(args, what):
    cp = subprocess.run(['openssl'] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=60)
    if cp.returncode != 0:
        raise HarnessError('openssl: %s failed: %s' % (what, cp.stderr.decode('utf-8', 'replace')[-1000:]))


def make_test_pki(d):
    """A CA and, signed by it, a server certificate for 127.0.0.1/localhost and
    a client certificate (CN=kz-client), all PEM, in directory d. Returns the
    paths {ca, ca_key, server, server_key, server_pem (key + chain), client, client_key}."""
    os.makedirs(d, exist_ok=True)
    f = {k: os.path.join(d, k + '.pem') for k in ('ca', 'ca_key', 'server', 'server_key', 'server_bundle',
                                                  'client', 'client_key')}
    _openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f['ca_key'], '-out', f['ca'],
              '-days', '2', '-subj', '/CN=kzproxy test CA'], 'CA')
    ext = os.path.join(d, 'san.cnf')
    with open(ext, 'w') as fp:
        fp.write('subjectAltName=IP:127.0.0.1,DNS:localhost\n')
    for who, cn, extra in (('server', 'localhost', ['-extfile', ext]), ('client', 'kz-client', [])):
        csr = os.path.join(d, who + '.csr')
        _openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f[who + '_key'], '-out', csr,
                  '-subj', '/CN=' + cn], who + ' key')
        _openssl(['x509', '-req', '-in', csr, '-CA', f['ca'], '-CAkey', f['ca_key'], '-CAcreateserial',
                  '-out', f[who], '-days', '2'] + extra, who + ' certificate')
    with open(f['server_bundle'], 'w') as out:
        for part in ('server_key', 'server', 'ca'):
            with open(f[part]) as fp:
                out.write(fp.read())
    return f


class KafkaBed(_Bed):
    """Apache Kafka (KRaft) on 127.0.0.1: one JVM per node, each both broker
    and controller, broker.rack = its zone, RackAwareReplicaSelector, topics
    with replication factor min(3, brokers). A KzAdmin process (Java Admin
    client) carries the control commands. Faults are real: broker_down is
    kill -9 of the node's JVM, broker_up starts it again on the same ports and
    data, set_leader reorders the replicas and elects the preferred leader.

    Listeners: PLAINTEXT (bootstrap, brokers[i].port) and SASL_PLAINTEXT
    (sasl_bootstrap) with PLAIN and SCRAM-SHA-256/512 users SCRAM_USERS; with
    tls=True also SSL (ssl_bootstrap; client certificates requested) and
    SASL_SSL (sasl_ssl_bootstrap), certificates from a test CA (pki: paths
    of ca, server, client and their keys, see make_test_pki).
    Logs and data stay in workdir (kept on failure or with KZ_TEST_KEEP=1).

    Zones elsewhere (e.g. network namespaces, see netzones.py): hosts
    {zone: address} puts every listener of a zone's nodes (and the KRaft
    voters) on that address instead of 127.0.0.1; exec_prefix {zone: argv}
    prefixes their JVMs' command lines (e.g. ["ip", "netns", "exec", ns]);
    admin_exec_prefix does the same for KzAdmin, which must reach every node.
    """

    __test__ = False
    backend = 'kafka'

    def __init__(self, zones=('a', 'b', 'c'), brokers=3, topics=None, ready_timeout=150,
                 workdir=None, server_props=None, tls=False, hosts=None, exec_prefix=None,
                 admin_exec_prefix=None):
        self.zones = tuple(zones)
        self.hosts = dict(hosts or {})
        self.exec_prefix = {z: tuple(v) for z, v in (exec_prefix or {}).items()}
        self.admin_exec_prefix = list(admin_exec_prefix or [])
        self.broker_cnt = brokers
        self.topic_spec = dict({'t12': 12} if topics is None else topics)
        self.ready_timeout = ready_timeout
        self.server_props = dict(server_props or {})
        self.tls = tls
        self.pki = None
        self.ssl_bootstrap = None
        self.sasl_ssl_bootstrap = None
        self.workdir = workdir
        self._own_workdir = workdir is None
        self.nodes = []
        self.brokers = []
        self.topics = {}
        self.bootstrap = None
        self.sasl_bootstrap = None
        self.admin = None
        self._out = None
        self._lock = threading.Lock()
        self._failed = False

    # -- lifecycle
    def start(self):
        cp = kafka_classpath()
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix='kzkafka-')
        for attempt in range(3):
            try:
                return self._start_once(cp)
            except _PortTaken as e:
                # The ports are the kernel's choice (bind to port 0), probed
                # and closed before the JVMs bind them: another process can
                # take one in between. Start again on new ones.
                sys.stderr.write('kzbed: %s; starting the cluster again on new ports\n' % e)
                self._reset()
        raise HarnessError('Kafka test bed: a port was taken before its broker could bind it, 3 times in a row')

    def _reset(self):
        """Kill what a failed start left and forget its nodes and data."""
        if self.admin is not None:
            admin, self.admin = self.admin, None
            admin.kill()
            admin.wait(timeout=30)
            admin.stdout.close()
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.kill()
            if n.proc is not None:
                n.proc.wait(timeout=30)
            shutil.rmtree(n.dir, ignore_errors=True)
        self.nodes = []

    def _wait_registered(self):
        """Until every broker is registered; a node that died on a taken port
        raises _PortTaken, any other early exit HarnessError with its log."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            for n in self.nodes:
                if n.proc.poll() is None:
                    continue
                tail = ''
                for name in ('stdout.log', 'server.log'):
                    try:
                        with open(os.path.join(n.dir, name), 'rb') as f:
                            tail += f.read()[-20000:].decode('utf-8', 'replace')
                    except OSError:
                        pass
                if 'Address already in use' in tail:
                    raise _PortTaken('Kafka node %d could not bind one of its ports (taken meanwhile)' % n.id)
                raise HarnessError('Kafka node %d exited with code %s while starting; %s ends:\n%s'
                                   % (n.id, n.proc.returncode, n.log, tail[-3000:]))
            try:
                self.control('brokers %d 5' % self.broker_cnt, timeout=20)
                return
            except HarnessError:
                if time.monotonic() > deadline:
                    raise

    def _start_once(self, cp):
        try:
            self._plan()
            self._format(cp)
            for n in self.nodes:
                self._spawn(n)
            self.bootstrap = ','.join('%s:%d' % (n.host, n.port) for n in self.nodes)
            self.sasl_bootstrap = ','.join('%s:%d' % (n.host, n.sasl_port) for n in self.nodes)
            if self.tls:
                self.ssl_bootstrap = ','.join('%s:%d' % (n.host, n.ssl_port) for n in self.nodes)
                self.sasl_ssl_bootstrap = ','.join('%s:%d' % (n.host, n.sasl_ssl_port) for n in self.nodes)
            self.brokers = [Broker(n.id, n.host, n.port, n.rack) for n in self.nodes]
            self._start_admin()
            self._wait_registered()
            # Group and transaction coordinators ready before the test starts,
            # as on a cluster that has run a while (not COORDINATOR_NOT_AVAILABLE
            # while the internal topics are created).
            self.control('coordinators 60', timeout=70)
            for name, parts in self.topic_spec.items():
                self.create_topic(name, parts)
        except _PortTaken:
            raise
        except BaseException:
            self._failed = True
            self.stop(check=False)
            raise
        return self

    def _plan(self):
        free_port = _PortPicker()
        try:
            self._plan_nodes(free_port)
        finally:
            free_port.close()

    def _plan_nodes(self, free_port):
        for i in range(1, self.broker_cnt + 1):
            d = os.path.join(self.workdir, 'kafka-%d' % i)
            os.makedirs(d, exist_ok=True)
            rack = self.zones[(i - 1) % len(self.zones)]
            self.nodes.append(_Node(id=i, rack=rack, port=free_port(),
                                    sasl_port=free_port(), ctl_port=free_port(), dir=d,
                                    log=os.path.join(d, 'server.log'), host=self.hosts.get(rack, '127.0.0.1'),
                                    prefix=self.exec_prefix.get(rack, ())))
        if self.tls:
            self.pki = make_test_pki(os.path.join(self.workdir, 'pki'))
            for n in self.nodes:
                n.ssl_port, n.sasl_ssl_port = free_port(), free_port()
        voters = ','.join('%d@%s:%d' % (n.id, n.host, n.ctl_port) for n in self.nodes)
        rf = min(3, self.broker_cnt)
        plain_users = ' '.join('user_%s="%s"' % kv for kv in sorted(SCRAM_USERS.items()))
        for n in self.nodes:
            props = {
                'process.roles': 'broker,controller',
                'node.id': n.id,
                'controller.quorum.voters': voters,
                'controller.listener.names': 'CONTROLLER',
                'inter.broker.listener.name': 'PLAINTEXT',
                'listeners': 'PLAINTEXT://%s:%d,SASL_PLAINTEXT://%s:%d,CONTROLLER://%s:%d'
                             % (n.host, n.port, n.host, n.sasl_port, n.host, n.ctl_port),
                'advertised.listeners': 'PLAINTEXT://%s:%d,SASL_PLAINTEXT://%s:%d'
                                        % (n.host, n.port, n.host, n.sasl_port),
                'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,'
                                                  'CONTROLLER:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL',
                'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
                'listener.name.sasl_plaintext.plain.sasl.jaas.config':
                    'org.apache.kafka.common.security.plain.PlainLoginModule required %s;' % plain_users,
                'listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config':
                    'org.apache.kafka.common.security.scram.ScramLoginModule required;',
                'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config':
                    'org.apache.kafka.common.security.scram.ScramLoginModule required;',
                'broker.rack': n.rack,
                'replica.selector.class': 'org.apache.kafka.common.replica.RackAwareReplicaSelector',
                'log.dirs': os.path.join(n.dir, 'data'),
                'num.partitions': 4,
                'default.replication.factor': rf,
                'min.insync.replicas': 1,
                'offsets.topic.replication.factor': rf,
                'offsets.topic.num.partitions': 6,
                'transaction.state.log.replication.factor': rf,
                'transaction.state.log.min.isr': 1,
                'transaction.state.log.num.partitions': 6,
                'share.coordinator.state.topic.replication.factor': rf,
                'share.coordinator.state.topic.min.isr': 1,
                'group.initial.rebalance.delay.ms': 0,
                # The tests use short sessions (the mock's habit); Kafka's floor is 6 s.
                'group.min.session.timeout.ms': 500,
                'auto.create.topics.enable': 'true',
                'num.network.threads': 2,
                'num.io.threads': 4,
                'num.recovery.threads.per.data.dir': 1,
                'background.threads': 2,
                'log.segment.bytes': 64 * 1024 * 1024,
                # Fence a killed node in about 3 s rather than 9.
                'broker.heartbeat.interval.ms': 500,
                'broker.session.timeout.ms': 3000,
                'controller.quorum.election.timeout.ms': 1000,
                'controller.quorum.fetch.timeout.ms': 2000,
                'replica.lag.time.max.ms': 10000,
            }
            if self.tls:
                tls_listeners = ',SSL://%s:%d,SASL_SSL://%s:%d' % (n.host, n.ssl_port, n.host, n.sasl_ssl_port)
                props['listeners'] += tls_listeners
                props['advertised.listeners'] += tls_listeners
                props.update({
                    'ssl.keystore.type': 'PEM',
                    'ssl.keystore.location': self.pki['server_bundle'],
                    'ssl.truststore.type': 'PEM',
                    'ssl.truststore.location': self.pki['ca'],
                    'ssl.enabled.protocols': 'TLSv1.2,TLSv1.3',
                    'listener.name.ssl.ssl.client.auth': 'requested',
                })
                for mech, module in (('plain', 'plain.PlainLoginModule required %s;' % plain_users),
                                     ('scram-sha-256', 'scram.ScramLoginModule required;'),
                                     ('scram-sha-512', 'scram.ScramLoginModule required;')):
                    props['listener.name.sasl_ssl.%s.sasl.jaas.config' % mech] = \
                        'org.apache.kafka.common.security.' + module
            props.update(self.server_props)
            n.props_path = os.path.join(n.dir, 'server.properties')
            with open(n.props_path, 'w') as f:
                for k, v in props.items():
                    f.write('%s=%s\n' % (k, v))

    def _format(self, cp):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b'=').decode()
        scram = []
        for user, password in sorted(SCRAM_USERS.items()):
            for mech in ('SCRAM-SHA-256', 'SCRAM-SHA-512'):
                scram += ['--add-scram', '%s=[name=%s,password=%s]' % (mech, user, password)]
        procs = []
        for n in self.nodes:
            argv = list(n.prefix) + java_argv('kafka.tools.StorageTool', heap='128m') + [
                'format', '--cluster-id=' + cluster_id, '-c', n.props_path, '--ignore-formatted'] + scram
            out = open(os.path.join(n.dir, 'format.log'), 'wb')
            procs.append((n, out, subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                                   stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)))
        for n, out, p in procs:
            try:
                rc = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = 'timeout'
            out.close()
            if rc != 0:
                with open(os.path.join(n.dir, 'format.log'), 'rb') as f:
                    tail = f.read()[-2000:].decode('utf-8', 'replace')
                raise HarnessError('formatting the storage of Kafka node %d failed (%s):\n%s' % (n.id, rc, tail))

    def _spawn(self, n):
        argv = list(n.prefix) + java_argv('kafka.Kafka', heap='512m', log_file=n.log) + [n.props_path]
        with open(os.path.join(n.dir, 'stdout.log'), 'ab') as out:
            n.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                      cwd=n.dir, preexec_fn=_die_with_parent)

    def _start_admin(self):
        argv = self.admin_exec_prefix + java_argv('io.kzproxy.tests.KzAdmin', heap='128m',
                                                  log_file=os.path.join(self.workdir, 'admin.log')) + [
            '--bootstrap', self.bootstrap]
        self.admin = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=open(os.path.join(self.workdir, 'admin.stderr'), 'ab'),
                                      preexec_fn=_die_with_parent)
        self._out = _LineReader(self.admin.stdout, 'KzAdmin')
        line = self._out.readline(60)
        if line != 'ready':
            raise HarnessError('KzAdmin did not start (printed %r); see %s/admin.stderr' % (line, self.workdir))

    def stop(self, check=True):
        """Stop every JVM; nothing is left running. SIGKILL: the data is thrown
        away, and a controlled shutdown of a whole quorum takes many seconds."""
        if self.admin is not None:
            admin, self.admin = self.admin, None
            try:
                admin.stdin.close()
            except OSError:
                pass
            _terminate(admin, 10, 'KzAdmin')
            admin.stdout.close()
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.kill()
        for n in self.nodes:
            if n.proc is not None:
                n.proc.wait(timeout=30)
        for n in self.nodes:
            n.proc = None
        if self._own_workdir and self.workdir and os.path.isdir(self.workdir):
            if self._failed or os.environ.get('KZ_TEST_KEEP') or not check:
                sys.stderr.write('kzbed: Kafka logs and data kept in %s\n' % self.workdir)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._failed = True
        self.stop(check=exc_type is None)
        return False

    # -- lookups: _Bed
    @property
    def pids(self):
        """The broker JVMs' process ids (for CPU accounting)."""
        return [n.proc.pid for n in self.nodes if n.proc is not None]

    def node(self, broker_id):
        for n in self.nodes:
            if n.id == broker_id:
                return n
        raise KeyError('no Kafka node %r' % (broker_id,))

    # -- control channel
    def control(self, command, timeout=60):
        """Send one command to KzAdmin; returns what followed "ok" (HarnessError otherwise)."""
        if self.admin is None or self.admin.poll() is not None:
            raise HarnessError('KzAdmin is not running (command %r); see %s' % (command, self.workdir))
        with self._lock:
            try:
                self.admin.stdin.write(command.encode() + b'\n')
                self.admin.stdin.flush()
            except BrokenPipeError:
                raise HarnessError('KzAdmin closed its stdin (command %r)' % command)
            reply = self._out.readline(timeout)
        if reply is None:
            raise HarnessError('KzAdmin exited while running %r' % command)
        if reply != 'ok' and not reply.startswith('ok '):
            raise HarnessError('Kafka test bed: %r answered %r' % (command, reply))
        return reply[3:]

    def create_topic(self, name, partitions, rf=None):
        """Partition p led by broker (p % brokers) + 1; rf replicas (default
        min(3, brokers)) on the next brokers in id order."""
        self.control('topic %s %d %d' % (name, partitions, rf or min(3, self.broker_cnt)))
        self.topics[name] = partitions
        self._wait_brokers_agree(name, {p: p % self.broker_cnt + 1 for p in range(partitions)})

    def set_leader(self, topic, partition, broker_id):
        self.control('leader %s %d %d' % (topic, partition, broker_id))
        self._wait_brokers_agree(topic, {partition: broker_id})

    def set_replicas(self, topic, partition, broker_ids):
        """Exactly these replicas for topic-partition, the first one leading
        (a reassignment: the data moves; returns once the old replicas are gone)."""
        self.control('replicas %s %d %s' % (topic, partition, ','.join(str(b) for b in broker_ids)))
        self._wait_brokers_agree(topic, {partition: broker_ids[0]})

    def _wait_brokers_agree(self, topic, leaders, timeout=30):
        """Wait until every broker's own metadata names the wanted leader of
        each partition: KzAdmin's answer comes from one broker, and a broker
        that applies the change later answers NOT_LEADER_OR_FOLLOWER for a
        moment (a non-idempotent producer's retry then lands after its later
        batches). Brokers in network namespaces the test process may not
        reach are not asked."""
        if self.admin_exec_prefix:
            return
        deadline = time.monotonic() + timeout
        pending = list(self.brokers)
        last = {}
        while pending:
            b = pending[0]
            try:
                got = broker_metadata_leaders(b.host, b.port, topic)
            except OSError as e:
                got = {'error': str(e)}
            if all(got.get(p) == want for p, want in leaders.items()):
                pending.pop(0)
                continue
            last[b.id] = {p: got.get(p) for p in list(leaders)[:4]} if 'error' not in got else got
            if time.monotonic() > deadline:
                raise HarnessError('Kafka test bed: broker %d does not name the wanted leaders of %s after %d s '
                                   '(want e.g. %s, it says %s)' % (b.id, topic, timeout,
                                                                    dict(list(leaders.items())[:4]), last[b.id]))
            time.sleep(0.05)

    def describe(self, topic):
        """[{partition, leader, replicas, isr}] as the controller sees them."""
        return json.loads(self.control('describe %s' % topic))

    def wait_in_sync(self, timeout=60):
        """Every partition of every topic has a leader and its whole replica set in sync."""
        self.control('isr %d' % timeout, timeout=timeout + 10)

    def broker_down(self, broker_id):
        """kill -9 the node's JVM (a crash: no controlled shutdown); returns once
        the controller has fenced it (its partitions have other leaders)."""
        n = self.node(broker_id)
        if n.proc is None or n.proc.poll() is not None:
            raise HarnessError('Kafka node %d is not running' % broker_id)
        n.proc.kill()
        n.proc.wait(timeout=30)
        self.control('node %d down 30' % broker_id, timeout=40)

    def broker_up(self, broker_id, timeout=90):
        """Start a killed node again on its ports and data; returns once it is registered."""
        n = self.node(broker_id)
        if n.proc is not None and n.proc.poll() is None:
            raise HarnessError('Kafka node %d is still running' % broker_id)
        self._spawn(n)
        self.control('node %d up %d' % (broker_id, timeout), timeout=timeout + 10)

    def _mock_only(self, what):
        raise HarnessError('%s is a fault of the mock cluster; run this test with backend="mock"' % what)

    def set_follower(self, topic, partition, broker_id):
        self._mock_only('set_follower')

    def set_rtt(self, broker_id, ms):
        self._mock_only('set_rtt')

    def set_coordinator(self, key_type, key, broker_id):
        self._mock_only('set_coordinator')

    def push_errors(self, api_key, error_code, count=1):
        self._mock_only('push_errors')
