#!/usr/bin/python3
"""Zero-downtime upgrade (issue 16 item 3 acceptance).

One proxy. An idempotent producer writes continuously through it while a
second thread opens a new connection every few milliseconds and asks
ApiVersions. SIGUSR2 makes the proxy start its own binary again with the
listening sockets (LISTEN_FDS); once the new process is ready the old one
drains and exits 0. Then: no connection was refused or went unanswered, no
delivery failed, every acknowledged message is in the topic, and the new
process serves /healthz and the producer.
"""
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402

TOPIC = 'up3'


def api_versions(port, corr):
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        body = struct.pack('>hhih', 18, 0, corr, 4) + b'kzup'
        s.sendall(struct.pack('>i', len(body)) + body)
        buf = b''
        while len(buf) < 4 or len(buf) < 4 + struct.unpack('>i', buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError('closed without an answer')
            buf += chunk
        if struct.unpack('>i', buf[4:8])[0] != corr:
            raise OSError('wrong correlation id')


class Prober(threading.Thread):
    def __init__(self, port):
        super().__init__(name='prober', daemon=True)
        self.port, self.ok, self.refused, self.failed = port, 0, 0, []
        self.stop = threading.Event()

    def run(self):
        corr = 0
        while not self.stop.is_set():
            corr += 1
            try:
                api_versions(self.port, corr)
                self.ok += 1
            except ConnectionRefusedError:
                self.refused += 1
            except OSError as e:
                self.failed.append(str(e))
            time.sleep(0.005)  # pacing, not synchronisation


def gone(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            return re.search(r'^State:\s+Z', f.read(), re.M) is not None
    except FileNotFoundError:
        return True


def main():
    from confluent_kafka import Producer
    new_pid = None
    with kz.TestBed(topics={TOPIC: 3}) as tb, \
            kz.ProxyCluster(tb, zones=('a',), extra_config={'drain_timeout_ms': 10000}) as pc:
        p = pc.proxy_in('a')
        try:
            acked, failed, errors = {}, [], []

            def dr(err, msg):
                if err is not None:
                    failed.append('%s: %s' % (msg.value(), err))
                else:
                    acked[msg.value()] = msg.offset()

            prod = Producer({'bootstrap.servers': p.kafka, 'client.id': 'kz-test-upgrade', 'enable.idempotence': True,
                             'acks': 'all', 'linger.ms': 5, 'message.timeout.ms': 60000,
                             'error_cb': lambda e: errors.append(str(e))})
            prober = Prober(p.kafka_port)
            prober.start()
            n = [0]

            def pump(until, what, timeout=30):
                deadline = time.monotonic() + timeout
                while not until():
                    if time.monotonic() > deadline:
                        raise HarnessError('timed out waiting for %s (acked %d, failed %d)' % (what, len(acked),
                                                                                            len(failed)))
                    for _ in range(5):
                        prod.produce(TOPIC, value=b'%d' % n[0], on_delivery=dr)
                        n[0] += 1
                    prod.poll(0.01)

            pump(lambda: len(acked) >= 500, '500 acknowledgements before the upgrade')
            old_pid = p.pid
            t_sig = time.monotonic()
            p.proc.send_signal(signal.SIGUSR2)
            pat = re.compile(r'upgrade \(SIGUSR2\): started .* as process (\d+)')
            m = [None]

            def started():
                m[0] = pat.search(p.log_text())
                return m[0] is not None
            pump(started, 'the new process to start')
            new_pid = int(m[0].group(1))
            pump(lambda: p.proc.poll() is not None, 'the old process to drain and exit')
            p.stopped = True  # on purpose: the harness must not report it
            handover = time.monotonic() - t_sig
            if p.proc.returncode != 0:
                raise HarnessError('the old process exited with %s; log ends:\n%s' % (p.proc.returncode,
                                                                                      kz.log_tail(p)))
            after = len(acked)
            pump(lambda: len(acked) >= after + 500, '500 acknowledgements from the new process')
            with urllib.request.urlopen('http://%s/healthz' % p.admin, timeout=10) as r:
                if r.status != 200:
                    raise HarnessError('/healthz of the new process answered %d' % r.status)
            prod.flush(30)
            prober.stop.set()
            prober.join(10)
            if failed:
                raise HarnessError('%d deliveries failed, first %s' % (len(failed), failed[0]))
            if prober.refused or prober.failed:
                raise HarnessError('%d connections refused, %d failed (e.g. %s) during the upgrade'
                                   % (prober.refused, len(prober.failed), prober.failed[:1]))
            rows = kz.consume_all(tb.bootstrap, TOPIC, timeout=60)
            seen = {v for _p, _o, _k, v in rows}
            lost = [v for v in acked if v not in seen]
            if lost:
                raise HarnessError('%d acknowledged messages lost, e.g. %s' % (len(lost), lost[:5]))
            print('upgrade: process %d handed its sockets to %d and exited 0 after %.2fs; %d messages '
                  'acknowledged and read back; %d probe connections, none refused or unanswered; transient '
                  'client errors %d' % (old_pid, new_pid, handover, len(acked), prober.ok, len(errors)))
        finally:
            if new_pid is not None and not gone(new_pid):
                os.kill(new_pid, signal.SIGTERM)
                kz.wait_until(lambda: gone(new_pid), 20, 'the new process to exit on SIGTERM')


if __name__ == '__main__':
    kz.run_test(main, timeout=120)
