#!/usr/bin/python3
"""Live reload (issue 16 item 2).

Two proxies (zones a and b), with a peer_secret so peers are health-checked.
Proxy a starts without proxy b in its peers list. One raw client socket to
proxy a stays open the whole test and must keep answering (the same socket
before and after every reload).

1. SIGHUP with a file that adds proxy b as a peer, sets limits.max_connections
   to 1 and log_level to debug: kzproxy_peer_up{node_id="102"} appears and
   turns 1, a new client connection is refused (kzproxy_connections_rejected_total
   grows) while the raw socket still answers, and debug lines appear in the log.
2. SIGHUP with a broken file: kzproxy_config_reload_failures_total is 1, the
   log names the error, nothing changed (the limit still refuses, the raw
   socket still answers).
3. A file changing "listen" (and limits back): the log names listen as needing
   a restart; the limit change applies. POST /reload on the admin listener works too.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402
from kzharness import HarnessError  # noqa: E402


def api_versions(sock, corr):
    """ApiVersions v0 on sock; returns the correlation id of the answer."""
    client_id = b'kz-test-reload'
    body = struct.pack('>hhih', 18, 0, corr, len(client_id)) + client_id
    sock.sendall(struct.pack('>i', len(body)) + body)
    head = _recv_exact(sock, 4)
    (size,) = struct.unpack('>i', head)
    resp = _recv_exact(sock, size)
    return struct.unpack('>i', resp[:4])[0]


def _recv_exact(sock, n):
    buf = b''
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise HarnessError('connection closed after %d of %d bytes' % (len(buf), n))
        buf += chunk
    return buf


def write_config(p, cfg):
    with open(p.config_path, 'w') as f:
        json.dump(cfg, f, indent=2)


def log_has(p, text):
    return text in p.log_text()


def post_reload(url):
    """POST url; (status, body)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b'', method='POST'), timeout=10) as r:
            return r.status, r.read().decode('utf-8', 'replace')
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode('utf-8', 'replace')


def remote_refused():
    """admin_reload's default, "local": a POST /reload from another host is
    refused (403, counted), one from this host is taken. The other host is a
    network namespace of this test's own behind a veth pair (10.199.0.2 to
    10.199.0.1); the proxy has no backend (it need not be ready) and its
    admin socket, bound here to 0.0.0.0 port 0, is passed to it. Needs root
    and ip netns: skipped (and said) without them."""
    from netzones import NetZones
    try:
        NetZones.check_available()
    except kz.SkipTest as e:
        print('reload: admin_reload local from another host: skipped (%s)' % e)
        return
    tag = 'kzar%d' % os.getpid()
    ns, hif, nif = tag, tag + 'h', tag + 'n'
    work = tempfile.mkdtemp(prefix='kz-reload-')

    def ip(*args):
        subprocess.run(['ip'] + list(args), check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=20)
    adm = socket.socket()
    adm.bind(('0.0.0.0', 0))
    adm.listen(16)
    lis = socket.socket()
    lis.bind(('127.0.0.1', 0))
    lis.listen(16)
    port = adm.getsockname()[1]
    path = os.path.join(work, 'kzproxy.json')
    with open(path, 'w') as f:
        json.dump({'node_id': 9, 'zone': 'a', 'listen': 'fd:%d' % lis.fileno(),
                   'advertised': '127.0.0.1:%d' % lis.getsockname()[1], 'admin_listen': 'fd:%d' % adm.fileno(),
                   'bootstrap_servers': ['127.0.0.1:1']}, f)
    log = open(os.path.join(work, 'kzproxy.log'), 'wb')
    proc = subprocess.Popen([kz.kzproxy_binary(), '--config', path], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, pass_fds=(adm.fileno(), lis.fileno()),
                            preexec_fn=kz._die_with_parent)
    try:
        ip('netns', 'add', ns)
        ip('link', 'add', hif, 'type', 'veth', 'peer', 'name', nif)
        ip('link', 'set', nif, 'netns', ns)
        ip('addr', 'add', '10.199.0.1/30', 'dev', hif)
        ip('link', 'set', hif, 'up')
        ip('netns', 'exec', ns, 'ip', 'addr', 'add', '10.199.0.2/30', 'dev', nif)
        ip('netns', 'exec', ns, 'ip', 'link', 'set', nif, 'up')
        local = 'http://127.0.0.1:%d' % port
        kz.wait_until(lambda: post_reload(local + '/reload')[0] == 200, 20, 'POST /reload from 127.0.0.1')
        # This file's post_reload, run inside the namespace (see the end).
        cp = subprocess.run(['ip', 'netns', 'exec', ns, '/usr/bin/python3', os.path.abspath(__file__), '--post',
                             'http://10.199.0.1:%d/reload' % port], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        out = cp.stdout.decode('utf-8', 'replace').strip()
        if not out.startswith('403 ') or 'admin_reload: local' not in out:
            raise HarnessError('POST /reload from 10.199.0.2 answered %r %s' % (out, cp.stderr.decode()[-300:]))
        refused = kz.metrics('127.0.0.1:%d' % port).sum('kzproxy_admin_reloads_refused_total', 0)
        if refused != 1:
            raise HarnessError('kzproxy_admin_reloads_refused_total is %s after one refusal' % refused)
        print('reload: admin_reload local: POST /reload from 127.0.0.1 taken, from 10.199.0.2 (a namespace '
              'of its own) refused: %s' % out[:60])
    finally:
        kz._terminate(proc, 10, 'kzproxy')
        log.close()
        adm.close()
        lis.close()
        subprocess.run(['ip', 'link', 'del', hif], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(['ip', 'netns', 'del', ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def main():
    remote_refused()
    extra = {'peer_secret': walpath.SECRET, 'health_check_ms': 200}
    with kz.TestBed(topics={'rl': 3}) as tb, kz.ProxyCluster(tb, zones=('a', 'b'), extra_config=extra) as pc:
        a, b = pc.proxy_in('a'), pc.proxy_in('b')
        base = json.loads(json.dumps(a.config))
        full_peers = base['peers']
        # Restart proxy a without proxy b in its peers list.
        pc.stop_proxy(a)
        base['peers'] = []
        a.config = base
        write_config(a, base)
        pc.restart_proxy(a)
        base = json.loads(json.dumps(a.config))  # the descriptors of this start
        m = pc.metrics(a)
        if m.sum('kzproxy_peer_up', -1, node_id='102') != -1:
            raise HarnessError('proxy a knows peer 102 before the reload')
        sock = socket.create_connection(('127.0.0.1', a.kafka_port), timeout=10)
        corr = 1
        if api_versions(sock, corr) != corr:
            raise HarnessError('bad ApiVersions answer before the reload')
        local = sock.getsockname()

        # 1. add a peer, change a limit and the log level
        cfg1 = dict(base, peers=full_peers, log_level='debug', limits={'max_connections': 1})
        write_config(a, cfg1)
        a.proc.send_signal(signal.SIGHUP)
        kz.wait_until(lambda: pc.metrics(a).sum('kzproxy_config_reloads_total', 0) >= 1, 10, 'the first reload')
        kz.wait_until(lambda: pc.metrics(a).sum('kzproxy_peer_up', 0, node_id='102') == 1, 10,
                      'peer 102 up after the reload')
        corr += 1
        if api_versions(sock, corr) != corr:
            raise HarnessError('the old connection does not answer after the reload')
        kz.wait_until(lambda: log_has(a, 'ApiVersions v0 correlation id %d' % corr), 10,
                      'a debug line for the request after the reload')
        if log_has(a, 'ApiVersions v0 correlation id 1,'):
            raise HarnessError('debug lines before the reload: the log level was not info')
        rejected0 = pc.metrics(a).sum('kzproxy_connections_rejected_total', 0)
        s2 = socket.create_connection(('127.0.0.1', a.kafka_port), timeout=10)
        try:
            api_versions(s2, 99)
            raise HarnessError('a new connection was served over limits.max_connections=1')
        except (HarnessError, OSError) as e:
            if 'was served' in str(e):
                raise
        finally:
            s2.close()
        kz.wait_until(lambda: pc.metrics(a).sum('kzproxy_connections_rejected_total', 0) > rejected0, 10,
                      'the new connection counted as rejected')

        # 2. a broken file changes nothing
        with open(a.config_path, 'w') as f:
            f.write('{"node_id": 101, "zone": ')
        a.proc.send_signal(signal.SIGHUP)
        kz.wait_until(lambda: pc.metrics(a).sum('kzproxy_config_reload_failures_total', 0) == 1, 10,
                      'the reload failure counted')
        if pc.metrics(a).sum('kzproxy_config_reloads_total', 0) != 1:
            raise HarnessError('the broken file counted as a reload')
        kz.wait_until(lambda: log_has(a, 'is invalid, keeping the running configuration'), 10, 'the error logged')
        corr += 1
        if api_versions(sock, corr) != corr:
            raise HarnessError('the old connection does not answer after the failed reload')
        if pc.metrics(a).sum('kzproxy_peer_up', -1, node_id='102') == -1:
            raise HarnessError('the failed reload dropped peer 102')

        # 3. listen needs a restart; the limit goes back; POST /reload
        cfg3 = dict(cfg1, listen='127.0.0.1:1', limits={'max_connections': 100})
        write_config(a, cfg3)
        req = urllib.request.Request('http://%s/reload' % a.admin, data=b'', method='POST')
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status != 200:
                raise HarnessError('POST /reload answered %d' % r.status)
        kz.wait_until(lambda: log_has(a, 'need a restart (ignored until then): listen\n'), 10,
                      'listen (alone) reported as needing a restart')
        if 'need a restart' in a.log_text().split('reload (SIGHUP)', 1)[1].split('is invalid')[0]:
            raise HarnessError('the first reload reported keys needing a restart')
        s3 = socket.create_connection(('127.0.0.1', a.kafka_port), timeout=10)
        try:
            if api_versions(s3, 7) != 7:
                raise HarnessError('a new connection is not served after raising max_connections')
        finally:
            s3.close()
        corr += 1
        if api_versions(sock, corr) != corr or sock.getsockname() != local:
            raise HarnessError('the old connection changed')
        sock.close()
        peer_up = pc.metrics(a).sum('kzproxy_peer_up', 0, node_id='102')

        # 4. admin_reload: "off" (applied by this reload, from this host):
        # the next POST /reload is refused with 403 and counted; SIGHUP
        # still reloads. (The default, "local", took the POSTs above from
        # 127.0.0.1.)
        write_config(a, dict(cfg3, admin_reload='off'))
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status != 200:
                raise HarnessError('POST /reload answered %d' % r.status)
        try:
            urllib.request.urlopen(urllib.request.Request('http://%s/reload' % a.admin, data=b'', method='POST'),
                                   timeout=10)
            raise HarnessError('POST /reload was taken with admin_reload: off')
        except urllib.error.HTTPError as e:
            body = e.read().decode('utf-8', 'replace')
            if e.code != 403 or 'admin_reload: off' not in body or 'SIGHUP' not in body:
                raise HarnessError('POST /reload with admin_reload off: %d %r' % (e.code, body))
        if pc.metrics(a).sum('kzproxy_admin_reloads_refused_total', 0) != 1:
            raise HarnessError('the refused POST /reload was not counted')
        print('reload: admin_reload off: POST /reload answered 403 (%s)' % body.strip()[:60])
        write_config(a, base)  # the harness restarts nothing, but keep the file valid
        os.kill(a.pid, signal.SIGHUP)
        kz.wait_until(lambda: pc.metrics(a).sum('kzproxy_config_reloads_total', 0) >= 4, 10,
                      'the SIGHUP reload taken with admin_reload off')
        m = pc.metrics(a)
        print('reload: %d reloads applied, 1 refused; peer 102 added live (up=%d), max_connections and log '
              'level applied, listen reported as needing a restart; one client socket (%s:%d) answered %d '
              'requests across all of them'
              % (m.sum('kzproxy_config_reloads_total', 0), peer_up, local[0], local[1], corr))
        if b.running is False:
            raise HarnessError('proxy b stopped')


if __name__ == '__main__':
    if sys.argv[1:2] == ['--post']:  # remote_refused, from its namespace
        print(*post_reload(sys.argv[2]))
        sys.exit(0)
    kz.run_test(main, timeout=120)
