"""netzones: availability zones as Linux network namespaces, for tests that
want the kernel, not the proxy, to say what crossed between zones.

    with NetZones(('a', 'b', 'c'), delay_ms=2) as nz:
        nz.addr['a']              # 10.77.1.2: everything of zone a listens here
        nz.exec_prefix('a')       # ['ip', 'netns', 'exec', 'kzxz<pid>a']
        with nz.inside('a'): ...  # sockets made here live in zone a
        nz.link_bytes()           # {zone: {'rx': .., 'tx': ..}} of the router's links

Layout: one namespace per zone and one router namespace, all created by
the test and named after its pid (kzxz<pid>r, kzxz<pid>a, ...). Zone z (the
i-th, from 1) has 10.77.i.0/24: its end of a veth pair is 10.77.i.2 with a
default route via the router's end, 10.77.i.1. The router forwards
(ip_forward=1), so every byte from one zone to another enters the router on
the source zone's veth and leaves on the destination's; the counters of
those router-side veths are the cross-zone meter. Loopback is up everywhere
(the Kafka JVMs need it).

Delay between zones: "tc qdisc ... root netem delay Nms" on the router-side
veths when the kernel has netem. Without it (CONFIG_NET_SCH_NETEM unset, as
on some VM kernels) a delay line does the same job: policy routing sends
every packet arriving from a zone to a tun device in the router namespace,
a small process (this file, "delayline" mode) holds each packet delay_ms and
writes it back, and the kernel forwards it on to the destination zone. Each
zone-to-zone packet is delayed once either way, so a round trip between two
zones takes 2 * delay_ms more. Byte counters are unchanged by it: the tun is
inside the router, not on a link.

Needs root and iproute2 (ip netns); NetZones.start raises SkipTest otherwise.
Everything is removed on stop (deleting a namespace deletes its veths and
the tun), also after a failed start; namespaces a killed earlier run left
behind (kzxz<pid> with no such process) are removed on start.
"""

import collections
import contextlib
import ctypes
import errno
import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kzproc import HarnessError, SkipTest, _LineReader, _die_with_parent, _terminate  # noqa: E402

CLONE_NEWNET = 0x40000000
NETNS_DIR = '/var/run/netns'
PREFIX = 'kzxz'
_NAME_RE = re.compile(r'^%s(\d+)[a-z]$' % PREFIX)

_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def in_netns(name):
    """Run the body with this thread in network namespace name (setns(2)),
    then back in the one it was in. Sockets made inside stay in name."""
    own = os.open('/proc/thread-self/ns/net', os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise HarnessError('network namespace %s: %s' % (name, e))
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise HarnessError('setns(%s): %s' % (name, os.strerror(e)))
        finally:
            os.close(target)
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                # Every later socket of this thread would be in the wrong place.
                os.write(2, b'netzones: cannot return to the original network namespace\n')
                os._exit(70)
    finally:
        os.close(own)


def _ip(*args, check=True, timeout=20):
    cp = subprocess.run(['ip'] + [str(a) for a in args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=timeout)
    if check and cp.returncode != 0:
        raise HarnessError('ip %s: %s' % (' '.join(map(str, args)), cp.stderr.decode('utf-8', 'replace').strip()))
    return cp


def netns_names():
    cp = _ip('netns', 'list', check=False)
    return [line.split()[0] for line in cp.stdout.decode().splitlines() if line.strip()]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class NetZones:
    """Zones as network namespaces behind a router namespace (see the module doc)."""

    def __init__(self, zones=('a', 'b', 'c'), delay_ms=2, subnet='10.77'):
        self.zones = tuple(zones)
        self.delay_ms = delay_ms
        tag = '%s%d' % (PREFIX, os.getpid())
        self.router = tag + 'r'
        self.ns = {z: tag + z for z in self.zones}
        self.addr = {z: '%s.%d.2' % (subnet, i + 1) for i, z in enumerate(self.zones)}
        self.gateway = {z: '%s.%d.1' % (subnet, i + 1) for i, z in enumerate(self.zones)}
        self.cidr = {z: '%s.%d.0/24' % (subnet, i + 1) for i, z in enumerate(self.zones)}
        self.router_link = {z: tag + 'r' + z for z in self.zones}   # in the router namespace
        self.zone_link = {z: tag + z + 'r' for z in self.zones}     # in zone z's namespace
        self.tun = tag + 'd'
        self.delay_mode = None       # 'netem', 'delayline' or None (delay_ms 0)
        self.netem_error = None      # why netem could not be used
        self.connect_ms = []         # TCP handshake times between zones (start's check)
        self._delayline = None
        self._created = []

    # -- lifecycle
    @staticmethod
    def check_available():
        """SkipTest unless this process may create network namespaces."""
        if os.geteuid() != 0:
            raise SkipTest('network namespaces need root (euid %d)' % os.geteuid())
        if shutil.which('ip') is None:
            raise SkipTest('iproute2 (ip) is not installed')
        probe = '%s%dx' % (PREFIX, os.getpid())
        cp = _ip('netns', 'add', probe, check=False)
        if cp.returncode != 0:
            raise SkipTest('ip netns add failed: %s' % cp.stderr.decode('utf-8', 'replace').strip())
        _ip('netns', 'del', probe, check=False)

    def start(self):
        self.check_available()
        self.sweep_stale()
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def sweep_stale(self):
        """Remove namespaces of this scheme whose test process is gone."""
        for name in netns_names():
            m = _NAME_RE.match(name)
            if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                _ip('netns', 'del', name, check=False)
                sys.stderr.write('netzones: removed %s, left by a run that is gone\n' % name)

    def _add_ns(self, name):
        if name in netns_names():
            _ip('netns', 'del', name, check=False)
        _ip('netns', 'add', name)
        self._created.append(name)
        _ip('-n', name, 'link', 'set', 'lo', 'up')

    def _sysctl(self, ns, key, value):
        cp = subprocess.run(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', '%s=%s' % (key, value)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        if cp.returncode != 0:
            raise HarnessError('sysctl %s=%s in %s: %s' % (key, value, ns, cp.stderr.decode().strip()))

    def _build(self):
        self._add_ns(self.router)
        self._sysctl(self.router, 'net.ipv4.ip_forward', 1)
        for z in self.zones:
            self._add_ns(self.ns[z])
            # Created straight in the two namespaces: nothing touches the root namespace.
            _ip('link', 'add', 'name', self.router_link[z], 'netns', self.router, 'type', 'veth',
                'peer', 'name', self.zone_link[z], 'netns', self.ns[z])
            _ip('-n', self.router, 'addr', 'add', self.gateway[z] + '/24', 'dev', self.router_link[z])
            _ip('-n', self.ns[z], 'addr', 'add', self.addr[z] + '/24', 'dev', self.zone_link[z])
            _ip('-n', self.router, 'link', 'set', self.router_link[z], 'up')
            _ip('-n', self.ns[z], 'link', 'set', self.zone_link[z], 'up')
            _ip('-n', self.ns[z], 'route', 'add', 'default', 'via', self.gateway[z])
        if self.delay_ms:
            self._add_delay()
        self._check_reachable()

    def _add_delay(self):
        ok = True
        for z in self.zones:
            cp = subprocess.run(['ip', 'netns', 'exec', self.router, 'tc', 'qdisc', 'add', 'dev',
                                 self.router_link[z], 'root', 'netem', 'delay', '%gms' % self.delay_ms],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                timeout=20)
            if cp.returncode != 0:
                ok = False
                break
        if ok:
            self.delay_mode = 'netem'
            return
        for z in self.zones:  # a partial netem setup would delay some zones twice
            subprocess.run(['ip', 'netns', 'exec', self.router, 'tc', 'qdisc', 'del', 'dev', self.router_link[z],
                            'root'], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=20)
        self.netem_error = cp.stderr.decode('utf-8', 'replace').strip()
        self._start_delayline()
        self.delay_mode = 'delayline'

    def _start_delayline(self):
        argv = ['ip', 'netns', 'exec', self.router, sys.executable, os.path.abspath(__file__), 'delayline',
                self.tun, str(self.delay_ms)]
        self._delayline = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=None, preexec_fn=_die_with_parent)
        self._dl_out = _LineReader(self._delayline.stdout, 'delay line')
        line = self._dl_out.readline(20)
        if line != 'ready':
            raise HarnessError('the delay line did not start (printed %r)' % line)
        r = self.router
        _ip('-n', r, 'link', 'set', self.tun, 'txqueuelen', 10000, 'up')
        _ip('-n', r, 'route', 'add', 'default', 'dev', self.tun, 'table', 77)
        for z in self.zones:
            # Local destinations (the router's own addresses) win in the local
            # table before this rule; everything to be forwarded goes through
            # the tun, comes back from it (iif tun) and takes the main table.
            _ip('-n', r, 'rule', 'add', 'iif', self.router_link[z], 'lookup', 77, 'priority', 1000)
        for key in ('all', 'default', self.tun):
            self._sysctl(r, 'net.ipv4.conf.%s.rp_filter' % key, 0)

    def _check_reachable(self, timeout=10):
        """Every zone reaches every other zone's address (TCP connect through
        the router, polled): routes, forwarding and the delay line work."""
        import socket
        from kzproc import _listen_socket
        listeners = {}
        try:
            for z in self.zones:
                with self.inside(z):
                    listeners[z] = _listen_socket(0, self.addr[z])
            for src in self.zones:
                for dst in self.zones:
                    if src == dst:
                        continue
                    deadline = time.monotonic() + timeout
                    while True:
                        with self.inside(src):
                            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        s.settimeout(max(0.1, min(2.0, deadline - time.monotonic())))
                        try:
                            t0 = time.monotonic()
                            s.connect((self.addr[dst], listeners[dst].getsockname()[1]))
                            rtt = time.monotonic() - t0
                            break
                        except OSError as e:
                            if time.monotonic() >= deadline:
                                raise HarnessError('zone %s cannot reach zone %s (%s) through the router: %s'
                                                   % (src, dst, self.addr[dst], e))
                            time.sleep(0.05)
                        finally:
                            s.close()
                    conn, _ = listeners[dst].accept()
                    conn.close()
                    self.connect_ms.append(rtt * 1000)
        finally:
            for s in listeners.values():
                s.close()

    def stop(self):
        """Remove what start made (namespaces, and with them veths and the tun);
        never raises. Call after every process in the namespaces has stopped."""
        if self._delayline is not None:
            dl, self._delayline = self._delayline, None
            try:
                dl.stdin.close()
            except OSError:
                pass
            _terminate(dl, 5, 'delay line')
            dl.stdout.close()
        for name in reversed(self._created):
            cp = _ip('netns', 'del', name, check=False)
            if cp.returncode != 0:
                sys.stderr.write('netzones: ip netns del %s: %s\n' % (name, cp.stderr.decode().strip()))
        self._created = []

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        return False

    # -- use
    def exec_prefix(self, zone):
        """argv prefix running a command in zone's namespace ('r': the router's)."""
        return ['ip', 'netns', 'exec', self.router if zone == 'r' else self.ns[zone]]

    def inside(self, zone):
        """Context: this thread in zone's namespace ('r': the router's)."""
        return in_netns(self.router if zone == 'r' else self.ns[zone])

    def link_bytes(self):
        """{zone: {'rx', 'tx', 'rx_packets', 'tx_packets'}} of the router's veth
        to each zone: rx is what the zone sent into the router (towards other
        zones), tx what the router sent into the zone. Plus 'tun' (bytes the
        delay line forwarded) when it runs."""
        cp = _ip('-n', self.router, '-s', '-j', 'link', 'show')
        links = {li['ifname']: li for li in json.loads(cp.stdout.decode())}
        out = {}
        for z in self.zones:
            st = links[self.router_link[z]]['stats64']
            out[z] = {'rx': st['rx']['bytes'], 'tx': st['tx']['bytes'],
                      'rx_packets': st['rx']['packets'], 'tx_packets': st['tx']['packets']}
        if self.tun in links:
            st = links[self.tun]['stats64']
            out['tun'] = {'rx': st['rx']['bytes'], 'tx': st['tx']['bytes'],
                          'rx_packets': st['rx']['packets'], 'tx_packets': st['tx']['packets']}
        return out


def link_delta(after, before, zones):
    """Summed over zones: rx and tx bytes and packets between two link_bytes()."""
    d = {k: sum(after[z][k] - before[z][k] for z in zones) for k in ('rx', 'tx', 'rx_packets', 'tx_packets')}
    d['per_zone_rx'] = {z: after[z]['rx'] - before[z]['rx'] for z in zones}
    return d


# ---------------------------------------------------------------- the delay line

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def delayline_main(dev, delay_ms):
    """Create tun dev (in the current namespace), print "ready", then hold
    every packet read from it delay_ms (poll(2) wakes on whole milliseconds,
    so up to one more) and write it back, in order, until stdin closes."""
    delay = float(delay_ms) / 1000.0
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', dev.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    q = collections.deque()
    stdin = sys.stdin.fileno()
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    poll.register(stdin, select.POLLIN | select.POLLHUP)
    mono = time.monotonic
    while True:
        if q:
            wait = q[0][0] - mono()
            timeout = 0 if wait <= 0 else max(1, int(wait * 1000 + 0.999))  # ms; never early
        else:
            timeout = None
        for rfd, ev in poll.poll(timeout):
            if rfd == stdin:
                if not os.read(stdin, 4096):
                    return 0
            elif rfd == fd:
                now = mono()
                while True:
                    try:
                        pkt = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    q.append((now + delay, pkt))
        now = mono()
        while q and q[0][0] <= now:
            try:
                os.write(fd, q.popleft()[1])
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EIO, errno.ENOBUFS):
                    raise


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == 'delayline':
        sys.exit(delayline_main(sys.argv[2], sys.argv[3]))
    sys.stderr.write('usage: netzones.py delayline DEV DELAY_MS\n')
    sys.exit(2)
