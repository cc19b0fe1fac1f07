#!/usr/bin/python3
"""Peer discovery through DNS and peer health checks (issue 5, deliverable 6).

Part 1, discovery: a tiny DNS server written here (UDP on 127.0.0.1, a
kernel-chosen port) answers A queries for kz-peers.test with the loopback
addresses of every proxy (each proxy listens on its own 127.0.0.x, all on one
port). Zones a and b, two proxies each (101-102 a, 103-104 b). The zone-a
proxies have no static peers: only discovery (nameservers = our server). The
zone-b proxies have the usual static peers. Checks, on proxy 101:
  - a zone-b client (client.id "kz_az=b") sees exactly the zone-b proxies
    103 and 104 in Metadata, and a zone-a client sees 101 and 102 (101 found
    102 and ignored its own address);
  - /metrics has kzproxy_peer_up{source="dns"} 1 for 102, 103, 104;
  - proxy 104 stopped: it leaves Metadata once its health checks fail, and
    /metrics shows kzproxy_peer_up 0 for it and counts the failures;
  - its address removed from DNS: 104 is forgotten (no series any more);
  - 104 restarted and back in DNS: discovered again, back in Metadata;
  - the peer RPC to zone b is counted as cross-zone "rpc" bytes, and no
    record payload crossed zones.

Part 2, health with static peers (127.0.0.1, no DNS): zone-a proxy 101 also
lists a fake peer 999 in zone b, a Python server that answers every request
with garbage: 999 is marked down, the proxy keeps running and logs it once.
Proxy 104 killed (SIGKILL): marked down, gone from Metadata; restarted: up
and back.

Part 3: a nameserver that never answers; the proxy stops cleanly (exit 0)
with its DNS queries in flight.
"""
import os
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402

NAME = 'kz-peers.test'
SECRET = 'discovery-test-secret-0123456789'
BOUND = 20  # seconds any state change may take


# ---------------------------------------------------------------- DNS server

class DnsServer:
    """A UDP DNS server on 127.0.0.1 (kernel-chosen port) answering A queries
    from self.records {name: [ipv4, ...]}; AAAA gets an empty answer (NODATA),
    an unknown name NXDOMAIN. The question is echoed byte for byte (evdns
    randomises the case of names and checks it)."""

    def __init__(self, records):
        self.records = {k.lower(): list(v) for k, v in records.items()}
        self.lock = threading.Lock()
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name='dns', daemon=True)

    def set(self, name, ips):
        with self.lock:
            self.records[name.lower()] = list(ips)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()
        return False

    def _run(self):
        while not self.stopping:
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            resp = self._answer(data)
            if resp is not None:
                try:
                    self.sock.sendto(resp, addr)
                except OSError:
                    pass

    def _answer(self, data):
        if len(data) < 12:
            return None
        tid, flags, qdcount = struct.unpack('>HHH', data[:6])
        if flags & 0x8000 or qdcount != 1:
            return None
        i, labels = 12, []
        while i < len(data) and data[i] != 0:
            n = data[i]
            labels.append(data[i + 1:i + 1 + n])
            i += 1 + n
        i += 1
        if i + 4 > len(data):
            return None
        qtype, _ = struct.unpack('>HH', data[i:i + 4])
        question = data[12:i + 4]
        name = b'.'.join(labels).decode('ascii', 'replace').lower()
        with self.lock:
            self.queries += 1
            ips = self.records.get(name)
            ips = list(ips) if ips is not None else None
        rcode, answers = 0, []
        if ips is None:
            rcode = 3
        elif qtype == 1:
            for ip in ips:
                answers.append(struct.pack('>HHHIH', 0xC00C, 1, 1, 1, 4) + socket.inet_aton(ip))
        rflags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
        return struct.pack('>HHHHHH', tid, rflags, 1, len(answers), 0, 0) + question + b''.join(answers)


# ---------------------------------------------------------------- a peer that answers garbage

class GarbagePeer:
    """Listens on 127.0.0.1 (kernel-chosen port); answers every request frame
    with its correlation id, an empty tag byte and 48 bytes of noise (no
    valid MAC)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.stopping = False
        self.threads = [threading.Thread(target=self._accept, name='garbage', daemon=True)]

    def __enter__(self):
        self.threads[0].start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        for t in self.threads:
            t.join(timeout=5)
        self.sock.close()
        return False

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, c):
        c.settimeout(0.2)
        buf = b''
        with c:
            while not self.stopping:
                try:
                    chunk = c.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 4:
                    size = struct.unpack('>i', buf[:4])[0]
                    if len(buf) < 4 + size:
                        break
                    frame, buf = buf[4:4 + size], buf[4 + size:]
                    corr = frame[4:8]
                    self.requests += 1
                    body = corr + b'\x00' + os.urandom(48)
                    try:
                        c.sendall(struct.pack('>i', len(body)) + body)
                    except OSError:
                        return


# ---------------------------------------------------------------- raw Metadata

def _recv_exact(s, n, deadline, what):
    buf = b''
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise HarnessError('%s: no complete response in time' % what)
        s.settimeout(left)
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise HarnessError('%s: connection closed' % what)
        buf += chunk
    return buf


def metadata_brokers(addr, client_id, timeout=10):
    """{node_id: "host:port"} from a Metadata v1 request for no topics."""
    host, port = addr.rsplit(':', 1)
    cid = client_id.encode()
    body = struct.pack('>hhih', 3, 1, 7, len(cid)) + cid + struct.pack('>i', 0)
    what = 'Metadata (client.id %r) to %s' % (client_id, addr)
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.sendall(struct.pack('>i', len(body)) + body)
            size = struct.unpack('>i', _recv_exact(s, 4, deadline, what))[0]
            r = _recv_exact(s, size, deadline, what)
    except OSError as e:
        raise HarnessError('%s: %s' % (what, e))
    off = 4  # correlation id
    n = struct.unpack_from('>i', r, off)[0]
    off += 4
    brokers = {}
    for _ in range(n):
        node, hl = struct.unpack_from('>ih', r, off)
        off += 6
        h = r[off:off + hl].decode()
        off += hl
        p, rl = struct.unpack_from('>ih', r, off)
        off += 6 + max(rl, 0)
        brokers[node] = '%s:%d' % (h, p)
    return brokers


def peer_up(m, node_id):
    """kzproxy_peer_up of node_id in metrics m, None when there is no series."""
    for name, labels, v in m.series:
        if name == 'kzproxy_peer_up' and labels.get('node_id') == str(node_id):
            return v
    return None


# ---------------------------------------------------------------- part 1

def part_discovery():
    with DnsServer({}) as dns, kz.TestBed(zones=('a', 'b'), brokers=2, topics={'t4': 4}) as tb:
        def extra(p):
            cfg = {'peer_secret': SECRET, 'health_check_ms': 200}
            if p.zone == 'a':
                cfg.update({'peers': [], 'discovery': {
                    'dns_name': NAME, 'port': p.kafka_port, 'interval_ms': 300,
                    'nameservers': ['127.0.0.1:%d' % dns.port]}})
            return cfg

        pc = kz.ProxyCluster(tb, zones=('a', 'b'), per_zone=2, distinct_ips=True, extra_config=extra)
        with pc:
            p101, p102 = pc.proxies_in('a')
            p103, p104 = pc.proxies_in('b')
            all_ips = [p.host for p in pc.proxies]
            # The name does not exist yet (NXDOMAIN): counted, logged once.
            kz.wait_until(lambda: kz.metrics(p101).sum('kzproxy_discovery_failures_total') >= 3, BOUND,
                          'failed resolutions of a name that does not exist')
            assert metadata_brokers(p101.kafka, 'kz_az=a') == {101: p101.kafka}
            lines = [l for l in p101.log_text().splitlines() if 'resolving %s failed' % NAME in l]
            assert len(lines) == 1, 'expected one line about the failed resolution, got %s' % lines
            print('before the name exists: %s' % lines[0].split('  ', 1)[-1])
            dns.set(NAME, all_ips)
            print('DNS server 127.0.0.1:%d: %s -> %s (port %d)' % (dns.port, NAME, ', '.join(all_ips),
                                                                  p101.kafka_port))
            want_b = {103: p103.kafka, 104: p104.kafka}
            want_a = {101: p101.kafka, 102: p102.kafka}
            for p in (p101, p102):
                got = kz.wait_until(lambda: (lambda b: b if b == want_b else None)(
                    metadata_brokers(p.kafka, 'kz_az=b')), BOUND,
                    'proxy %d to name the discovered zone-b proxies %s' % (p.node_id, want_b))
                print('proxy %d, zone-b client: Metadata brokers %s' % (p.node_id, got))
                got = kz.wait_until(lambda: (lambda b: b if b == want_a else None)(
                    metadata_brokers(p.kafka, 'kz_az=a')), BOUND,
                    'proxy %d to name the zone-a proxies %s' % (p.node_id, want_a))
                print('proxy %d, zone-a client: Metadata brokers %s' % (p.node_id, got))
            m = kz.metrics(p101)
            for node in (102, 103, 104):
                assert m.sum('kzproxy_peer_up', node_id=node, source='dns') == 1, (node, m)
            assert peer_up(m, 101) is None, 'proxy 101 lists itself as a peer'
            assert m.sum('kzproxy_discovery_peers_found_total') == 3, m.sum('kzproxy_discovery_peers_found_total')
            print('proxy 101: %d resolutions, %d peers found, %d DNS queries served'
                  % (m.sum('kzproxy_discovery_resolutions_total'), m.sum('kzproxy_discovery_peers_found_total'),
                     dns.queries))

            # A discovered proxy goes away: health checks take it out.
            pc.stop_proxy(p104)
            got = kz.wait_until(lambda: (lambda b: b if b == {103: p103.kafka} else None)(
                metadata_brokers(p101.kafka, 'kz_az=b')), BOUND, 'proxy 104 to leave proxy 101\'s Metadata')
            print('proxy 104 stopped: zone-b client sees %s' % got)
            m = kz.wait_until(lambda: (lambda m: m if peer_up(m, 104) == 0 else None)(kz.metrics(p101)), BOUND,
                              'kzproxy_peer_up 0 for 104')
            fails = m.sum('kzproxy_peer_health_failures_total')
            assert fails >= 1, fails
            print('proxy 101: peer 104 down, %d health check failures of %d checks'
                  % (fails, m.sum('kzproxy_peer_health_checks_total')))

            # Gone from DNS too: forgotten.
            dns.set(NAME, [ip for ip in all_ips if ip != p104.host])
            kz.wait_until(lambda: peer_up(kz.metrics(p101), 104) is None, BOUND, 'peer 104 to be forgotten')
            print('proxy 104 removed from DNS: forgotten by proxy 101')

            # Back: restarted and in DNS again.
            pc.restart_proxy(p104)
            dns.set(NAME, all_ips)
            got = kz.wait_until(lambda: (lambda b: b if b == want_b else None)(
                metadata_brokers(p101.kafka, 'kz_az=b')), BOUND, 'proxy 104 to be rediscovered')
            print('proxy 104 restarted: zone-b client sees %s' % got)
            m = kz.metrics(p101)
            assert m.sum('kzproxy_discovery_peers_found_total') == 4, m.sum('kzproxy_discovery_peers_found_total')
            rpc_out = m.sum('kzproxy_xzone_bytes_total', direction='out', peer='peer', category='rpc')
            rpc_in = m.sum('kzproxy_xzone_bytes_total', direction='in', peer='peer', category='rpc')
            payload = m.sum('kzproxy_xzone_bytes_total', category='payload')
            assert rpc_out > 0 and rpc_in > 0, (rpc_out, rpc_in)
            assert payload == 0, payload
            print('proxy 101: cross-zone peer RPC bytes out %d in %d, payload %d' % (rpc_out, rpc_in, payload))
            log = p101.log_text()
            assert 'is this proxy' in log, 'proxy 101 did not recognise its own address'
            assert 'resolving %s works again' % NAME in log, 'no line saying the name resolves again'


# ---------------------------------------------------------------- part 2

def part_health():
    with GarbagePeer() as bad, kz.TestBed(zones=('a', 'b'), brokers=2, topics={'t4': 4}) as tb:
        def extra(p):
            # Called once every proxy's address is known (pc.proxies).
            cfg = {'peer_secret': SECRET, 'health_check_ms': 200}
            if p.node_id == 101:
                cfg['peers'] = [{'node_id': q.node_id, 'zone': q.zone, 'advertised': q.kafka}
                                for q in pc.proxies if q is not p]
                cfg['peers'].append({'node_id': 999, 'zone': 'b', 'advertised': '127.0.0.1:%d' % bad.port})
            return cfg

        pc = kz.ProxyCluster(tb, zones=('a', 'b'), per_zone=2, extra_config=extra)
        with pc:
            p101 = pc.by_node_id(101)
            p103, p104 = pc.proxies_in('b')
            both = {103: p103.kafka, 104: p104.kafka}
            kz.wait_until(lambda: peer_up(kz.metrics(p101), 999) == 0, BOUND, 'the garbage peer 999 to be down')
            got = kz.wait_until(lambda: (lambda b: b if b == both else None)(
                metadata_brokers(p101.kafka, 'kz_az=b')), BOUND, 'zone-b Metadata without 999')
            print('garbage peer 999 (%d requests answered with noise): down; zone-b client sees %s'
                  % (bad.requests, got))
            kz.wait_until(lambda: kz.metrics(p101).sum('kzproxy_peer_health_failures_total') >= 5, BOUND,
                          'more failed checks of 999')
            assert p101.running, 'proxy 101 died'
            lines = [l for l in p101.log_text().splitlines() if 'peer 999' in l and 'is down' in l]
            assert len(lines) == 1, 'expected one "peer 999 ... is down" line, got %d: %s' % (len(lines), lines)
            assert 'authentication' in lines[0], lines[0]
            print('proxy 101 logged once: %s' % lines[0].split(': ', 1)[-1])

            pc.stop_proxy(p104, sig=signal.SIGKILL)
            got = kz.wait_until(lambda: (lambda b: b if b == {103: p103.kafka} else None)(
                metadata_brokers(p101.kafka, 'kz_az=b')), BOUND, 'killed proxy 104 to leave Metadata')
            assert peer_up(kz.metrics(p101), 104) == 0
            print('proxy 104 killed: marked down, zone-b client sees %s' % got)
            pc.restart_proxy(p104)
            got = kz.wait_until(lambda: (lambda b: b if b == both else None)(
                metadata_brokers(p101.kafka, 'kz_az=b')), BOUND, 'restarted proxy 104 to be back')
            assert peer_up(kz.metrics(p101), 104) == 1
            print('proxy 104 restarted: up, zone-b client sees %s' % got)


# ---------------------------------------------------------------- part 3

def part_silent_nameserver():
    """A nameserver that never answers: queries stay in flight, and the proxy
    still stops cleanly (exit 0; under the sanitizers, nothing leaked)."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(('127.0.0.1', 0))
    try:
        with kz.TestBed(zones=('a',), brokers=1, topics={'t': 1}) as tb:
            pc = kz.ProxyCluster(tb, zones=('a',), per_zone=1, extra_config={
                'peer_secret': SECRET, 'discovery': {
                    'dns_name': NAME, 'port': 9, 'interval_ms': 100,
                    'nameservers': ['127.0.0.1:%d' % silent.getsockname()[1]]}})
            with pc:
                p = pc.proxies[0]
                kz.wait_until(lambda: kz.metrics(p).sum('kzproxy_discovery_resolutions_total') >= 1, BOUND,
                              'a resolution to start')
                rc = pc.stop_proxy(p)
                assert rc == 0, 'proxy stopped with %s while a DNS query was in flight:\n%s' % (rc, kz.log_tail(p))
                print('silent nameserver: proxy stopped cleanly with queries in flight')
    finally:
        silent.close()


def main():
    part_discovery()
    part_health()
    part_silent_nameserver()


if __name__ == '__main__':
    kz.run_test(main, timeout=240)
