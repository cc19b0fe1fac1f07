#!/usr/bin/python3
"""Order and loss on the WAL path under faults (issue 13).

Three zones, two kzproxy daemons per zone, all sharing one S3: faults3's
fault-injecting endpoint in a child process (tests/integration/faults3.py),
with a short store deadline (wal.store_deadline_ms 1500) so a failed PUT
reaches the client within a second or two. A 12-partition topic led in all
three zones (partition p by broker p % 3 + 1), so every proxy sends two
thirds of its partitions through WAL objects and peers of the other zones.

Producers write through their zone's two proxies for WINDOW seconds at a
steady rate, message values "<producer>:<seq>", partition seq % 12 chosen
explicitly:
  idem-a, idem-b, idem-c  confluent_kafka, enable.idempotence, acks=all,
                          max.in.flight 5, one per zone
  plain-<zone>            kafka-python, not idempotent, acks=all,
                          max_in_flight_requests_per_connection 1, retries
                          on (its zone drawn from the seed)
The non-idempotent producer is kafka-python because librdkafka 2.0.2 does
not keep order there itself: with max.in.flight=1 it still builds the next
ProduceRequest of a partition while one is in flight (one request may wait
in the send queue, queue.buffering.backpressure.threshold >= 1), so when
the request in flight fails with a retriable error the queued later batch
is sent before the retry (seen in its msg debug log: 358 acked after 370,
with no broker or proxy involved in the swap). kafka-python mutes a
partition while its batch is in flight and retries from the head.

A lost message shows how librdkafka reported it: "acked without an offset"
is its implicit ack (a batch whose outcome it did not know, or that failed,
is reported delivered once a later batch of the partition succeeds, as a
broker checking sequences would have refused the later one otherwise); on
the mock, which does not check sequences, that means the proxy appended a
later batch while an earlier one of the same partition failed.
KZ_ORDER_DEBUG=msg,eos,topic writes each producer's client debug log
(librdkafka contexts; kafka-python's retries) into the work directory.
Meanwhile a schedule drawn from a seed (printed first; KZ_SEED=N replays it)
injects, one after another on a monotonic clock: every PUT failing (500 or
503) for a window, PUTs stalling past the deadline for a window (the stalled
objects land late), the next few PUTs failing (retried inside the deadline),
GETs failing for a window, a proxy killed with SIGKILL and restarted, three
partitions' leaders moved to other zones and back, and on the mock backend a
broker down and up again.

Afterwards every partition is read straight from the backend brokers (not
through a proxy) and, per producer, the test prints: produced, acknowledged,
failed deliveries, lost (acknowledged, not in the log), reordered (in a
partition, an acknowledged seq whose first copy comes after a higher
acknowledged seq's first copy), duplicated (extra copies of a seq), fatal
producer errors (error_cb with fatal()), the longest gap between
consecutive deliveries, then totals and the faults as applied.

It fails on any loss, any reordering, any fatal producer error, and, on real
Kafka, any duplicate from an idempotent producer. On the mock cluster
duplicates are printed, not failed: librdkafka's mock does not check
producer sequences of non-transactional producers, so a client's own retry
of a batch that did land (connection lost to a killed proxy, a request
timed out) is appended again just like a duplicate the proxy would make, and
the log cannot tell the two apart.
"""
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults3  # noqa: E402
import kzharness as kz  # noqa: E402
import walpath  # noqa: E402
from kzharness import HarnessError  # noqa: E402

TOPIC = 'order12'
PARTITIONS = 12
WINDOW = 36.0            # seconds of producing, faults inside it
IDEM_RATE = 300          # messages/s per idempotent producer
PLAIN_RATE = 100         # messages/s of the max.in.flight=1 producer
MESSAGE_TIMEOUT_MS = 30000
STORE_DEADLINE_MS = 1500
TIMEOUT = 240            # the watchdog: the test stops by itself


class ProducerRun:
    """One producer (confluent_kafka) in its own thread: paced produce for the
    window, then a bounded flush."""

    client = 'librdkafka'

    def __init__(self, name, zone, bootstrap, rate, config):
        self.name, self.zone, self.rate = name, zone, rate
        self.idempotent = bool(config.get('enable.idempotence'))
        self.bootstrap = bootstrap
        self.config = config
        self.produced = 0
        self.acked = {}        # seq -> (partition, offset)
        self.acked_at = {}     # seq -> delivery time, relative to t0
        self.failed = {}       # seq -> error name
        self.deliveries = []   # monotonic times of successful deliveries
        self.fatal = []        # fatal error_cb errors
        self.errors = {}       # other error_cb errors: name -> count
        self.left = None       # messages still undelivered after the flush
        self.exc = None
        self.t0 = None
        self.debug_log = None
        self.thread = threading.Thread(target=self._run, name='producer-' + name, daemon=True)

    def _dr(self, err, msg):
        seq = int(msg.value().split(b':', 1)[1])
        if err is not None:
            self.failed[seq] = err.name()
        else:
            self.acked[seq] = (msg.partition(), msg.offset())
            now = time.monotonic()
            self.acked_at[seq] = now - self.t0
            self.deliveries.append(now)

    def _error(self, err):
        if err.fatal():
            if str(err) not in self.fatal:
                self.fatal.append(str(err))
        else:
            self.errors[err.name()] = self.errors.get(err.name(), 0) + 1

    def start(self, t0, t_end):
        self.t0, self.t_end = t0, t_end
        self.thread.start()

    def _run(self):
        from confluent_kafka import KafkaError, KafkaException, Producer
        try:
            conf = {'bootstrap.servers': self.bootstrap, 'client.id': 'kz-order-%s' % self.name,
                    'acks': 'all', 'linger.ms': 5, 'batch.num.messages': 200,
                    'message.timeout.ms': MESSAGE_TIMEOUT_MS, 'request.timeout.ms': 10000,
                    'error_cb': self._error}
            conf.update(self.config)
            if self.debug_log:
                # KZ_ORDER_DEBUG=contexts: librdkafka's debug log of this producer into the work directory.
                import logging
                log = logging.getLogger('rdkafka.' + self.name)
                h = logging.FileHandler(self.debug_log)
                h.setFormatter(logging.Formatter('%(created).3f %(message)s'))
                log.addHandler(h)
                log.setLevel(logging.DEBUG)
                log.propagate = False
                conf.update({'debug': os.environ['KZ_ORDER_DEBUG'], 'logger': log})
            p = Producer(conf)
            name = self.name.encode()

            def fatal(e):
                err = e.args[0] if e.args else None
                if not isinstance(err, KafkaError) or not err.fatal():
                    return False
                if str(err) not in self.fatal:
                    self.fatal.append(str(err))
                return True

            while not self.fatal:
                now = time.monotonic()
                if now >= self.t_end:
                    break
                due = min(int((now - self.t0) * self.rate), int((self.t_end - self.t0) * self.rate))
                try:
                    while self.produced < due:
                        seq = self.produced
                        try:
                            p.produce(TOPIC, value=b'%s:%d' % (name, seq), partition=seq % PARTITIONS,
                                      on_delivery=self._dr)
                        except BufferError:
                            break
                        self.produced += 1
                    p.poll(0.005)
                except KafkaException as e:  # a fatal error, raised before error_cb saw it
                    if not fatal(e):
                        raise
            # After a fatal error librdkafka fails what is left; flush returns once it has.
            deadline = time.monotonic() + MESSAGE_TIMEOUT_MS / 1000.0 + 10
            while True:
                try:
                    self.left = p.flush(max(0.0, deadline - time.monotonic()))
                    break
                except KafkaException as e:
                    if not fatal(e) or time.monotonic() >= deadline:
                        self.left = len(p)
                        break
        except Exception as e:  # noqa: BLE001 -- reported by the main thread
            self.exc = e

    def longest_stall(self):
        """(gap seconds, its start relative to t0) between consecutive deliveries,
        from the start of producing to the last delivery."""
        times = [self.t0] + sorted(self.deliveries)
        best = (0.0, 0.0)
        for a, b in zip(times, times[1:]):
            if b - a > best[0]:
                best = (b - a, a - self.t0)
        return best


class KafkaPythonRun(ProducerRun):
    """The non-idempotent producer: kafka-python with max_in_flight_requests_per_connection=1,
    which mutes a partition while its batch is in flight and puts a failed batch back
    at the head of the partition's queue, so its own retries keep the order."""

    client = 'kafka-python'

    def _run(self):
        import logging
        from kafka import KafkaProducer
        # Its retry warnings: into the work directory with KZ_ORDER_DEBUG, else nowhere.
        log = logging.getLogger('kafka')
        log.propagate = False
        if self.debug_log:
            h = logging.FileHandler(self.debug_log)
            h.setFormatter(logging.Formatter('%(created).3f %(name)s %(levelname)s %(message)s'))
            log.addHandler(h)
            log.setLevel(logging.DEBUG if 'all' in os.environ['KZ_ORDER_DEBUG'] else logging.INFO)
        else:
            log.addHandler(logging.NullHandler())
        try:
            conf = {'bootstrap_servers': self.bootstrap.split(','), 'client_id': 'kz-order-%s' % self.name,
                    'acks': 'all', 'linger_ms': 5, 'request_timeout_ms': 10000, 'retries': 1000000,
                    'retry_backoff_ms': 100, 'max_in_flight_requests_per_connection': 1,
                    'api_version_auto_timeout_ms': 10000, 'max_block_ms': 10000}
            conf.update(self.config)
            p = KafkaProducer(**conf)
            name = self.name.encode()
            tick = threading.Event()  # never set: wait() paces the loop

            def ok(seq):
                def cb(md):
                    now = time.monotonic()
                    self.acked[seq] = (md.partition, md.offset)
                    self.acked_at[seq] = now - self.t0
                    self.deliveries.append(now)
                return cb

            def bad(seq):
                def cb(e):
                    self.failed[seq] = type(e).__name__
                return cb

            while True:
                now = time.monotonic()
                if now >= self.t_end:
                    break
                due = min(int((now - self.t0) * self.rate), int((self.t_end - self.t0) * self.rate))
                while self.produced < due:
                    seq = self.produced
                    f = p.send(TOPIC, value=b'%s:%d' % (name, seq), partition=seq % PARTITIONS)
                    f.add_callback(ok(seq))
                    f.add_errback(bad(seq))
                    self.produced += 1
                tick.wait(0.005)
            try:
                p.flush(timeout=MESSAGE_TIMEOUT_MS / 1000.0 + 10)
            except Exception:  # noqa: BLE001 -- KafkaTimeoutError: counted as undelivered below
                pass
            self.left = self.produced - len(self.acked) - len(self.failed)
            p.close(timeout=5)
        except Exception as e:  # noqa: BLE001 -- reported by the main thread
            self.exc = e


def make_schedule(rng, backend, tb, proxies):
    """[(t offset in s, description, action)] in time order, all drawn from rng."""
    ev = []
    t = rng.uniform(3.0, 5.0)
    dur, code = rng.uniform(1.5, 3.0), rng.choice((500, 503))
    ev.append((t, 'every PUT answers %d for %.1fs' % (code, dur), lambda s3, d=dur, c=code: s3.fail_puts_for(d, c)))
    t = rng.uniform(8.0, 10.0)
    dur, stall = rng.uniform(1.0, 2.0), rng.uniform(2.0, 3.0)
    ev.append((t, 'every PUT stalls %.1fs (then lands) for %.1fs' % (stall, dur),
               lambda s3, d=dur, st=stall: s3.stall_puts_for(d, st)))
    t = rng.uniform(12.0, 13.0)
    n = rng.randint(2, 6)
    ev.append((t, 'the next %d PUTs answer 500' % n, lambda s3, n=n: s3.fail_puts(n, 500)))
    t = rng.uniform(14.0, 15.0)
    dur = rng.uniform(1.0, 2.5)
    ev.append((t, 'every GET answers 500 for %.1fs' % dur, lambda s3, d=dur: s3.fail_gets_for(d, 500)))
    t = rng.uniform(17.0, 19.0)
    victim, down = rng.choice(proxies), rng.uniform(0.5, 1.5)
    ev.append((t, 'SIGKILL proxy %d (zone %s)' % (victim.node_id, victim.zone), ('kill', victim)))
    ev.append((t + down, 'restart proxy %d (zone %s)' % (victim.node_id, victim.zone), ('restart', victim)))
    t = rng.uniform(22.0, 24.0)
    moves = []
    for part in sorted(rng.sample(range(PARTITIONS), 3)):
        home = part % len(tb.brokers) + 1
        to = rng.choice([b.id for b in tb.brokers if b.rack != tb.broker(home).rack])
        moves.append((part, home, to))
    ev.append((t, 'leaders moved: %s' % ', '.join('p%d %d->%d' % m for m in moves), ('move', moves, False)))
    ev.append((t + rng.uniform(4.0, 5.0), 'leaders moved back: %s' % ', '.join('p%d %d->%d' % (p, to, home)
                                                                              for p, home, to in moves),
               ('move', moves, True)))
    if backend == 'mock':
        t = rng.uniform(31.0, 32.5)
        broker = rng.choice([b.id for b in tb.brokers])
        ev.append((t, 'broker %d (zone %s) down' % (broker, tb.broker(broker).rack), ('down', broker)))
        ev.append((t + rng.uniform(1.5, 2.5), 'broker %d up' % broker, ('up', broker)))
    return sorted(ev, key=lambda e: e[0])


def apply(action, s3, tb, pc):
    if callable(action):
        action(s3)
    elif action[0] == 'kill':
        pc.stop_proxy(action[1], sig=signal.SIGKILL)
    elif action[0] == 'restart':
        pc.restart_proxy(action[1])
    elif action[0] == 'move':
        for part, home, to in action[1]:
            tb.set_leader(TOPIC, part, home if action[2] else to)
    elif action[0] == 'down':
        tb.broker_down(action[1])
    elif action[0] == 'up':
        tb.broker_up(action[1])


def _where(seq, acked_at, at):
    part, off = acked_at
    if off is None or off < 0:
        # librdkafka's implicit ack: a batch whose outcome it did not know is
        # reported delivered (no offset) once a later batch of the partition
        # is acknowledged, as a broker checking sequences would have refused
        # the later one had the earlier not been written.
        return '%d (acked without an offset: implicitly, by a later batch of p%d)' % (seq, part)
    return '%d (acked at p%d@%d, where the log has %s)' % (seq, part, off, at.get((part, off), b'nothing').decode())


def analyse(prods, rows):
    """Per producer figures from the log rows (partition, offset, key, value)."""
    by = {pr.name: pr for pr in prods}
    occ = {pr.name: {} for pr in prods}       # seq -> [(partition, offset)]
    first = {}  # (name, partition) -> (highest acked seq whose first copy was seen, its offset)
    fig = {pr.name: {'reordered': 0, 'reorder_eg': [], 'wrong_partition': 0, 'stray': 0} for pr in prods}
    at = {}                                   # (partition, offset) -> value
    for part, off, _k, v in rows:
        at[(part, off)] = v
        try:
            name, seq = v.decode().split(':')
            seq = int(seq)
        except (ValueError, UnicodeDecodeError, AttributeError):
            continue
        if name not in by:
            continue
        f = fig[name]
        if seq % PARTITIONS != part:
            f['wrong_partition'] += 1
        o = occ[name].setdefault(seq, [])
        o.append((part, off))
        if len(o) > 1 or seq not in by[name].acked:
            continue
        k = (name, part)
        if k in first and first[k][0] > seq:
            f['reordered'] += 1
            if len(f['reorder_eg']) < 3:
                hi, hi_off = first[k]
                f['reorder_eg'].append('p%d: %d at offset %d (acked at %.2fs) after %d at offset %d (acked at %.2fs)'
                                       % (part, seq, off, by[name].acked_at.get(seq, -1), hi, hi_off,
                                          by[name].acked_at.get(hi, -1)))
        if k not in first or seq > first[k][0]:
            first[k] = (seq, off)
    for pr in prods:
        f, o = fig[pr.name], occ[pr.name]
        lost = sorted(s for s in pr.acked if s not in o)
        f['lost'] = len(lost)
        f['lost_eg'] = [_where(s, pr.acked[s], at) for s in lost[:4]]
        f['no_offset'] = sum(1 for _p, off in pr.acked.values() if off is None or off < 0)
        f['duplicated'] = sum(len(x) - 1 for x in o.values())
        f['dup_eg'] = ['%d at %s' % (s, ','.join('p%d@%d' % x for x in xs)) for s, xs in sorted(o.items())
                       if len(xs) > 1][:3]
        f['offset_mismatch'] = sum(1 for s, (p, off) in pr.acked.items()
                                   if o.get(s) and off is not None and off >= 0 and (p, off) not in o[s])
        f['in_log_unacked'] = sum(1 for s in o if s not in pr.acked)
    return fig


def main():
    try:
        import confluent_kafka  # noqa: F401
        import kafka  # noqa: F401
    except ImportError as e:
        raise kz.SkipTest('%s: apt-get install python3-confluent-kafka python3-kafka' % e)
    backend = kz.backend_name()
    seed = int(os.environ.get('KZ_SEED') or random.SystemRandom().randrange(1, 10 ** 6))
    print('test_wal_order_faults: seed %d (KZ_SEED=%d replays this schedule), backend %s' % (seed, seed, backend),
          flush=True)
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp(prefix='kz-wal-order-')
    s3 = faults3.FaultS3Process()
    ok = False
    try:
        extra = {'peer_secret': walpath.SECRET, 'health_check_ms': 200, 'rpc_timeout_ms': 3000,
                 'wal': {'store': walpath.store_config('s3', workdir, s3), 'flush_ms': 100,
                         'max_inflight_uploads': 8, 'store_deadline_ms': STORE_DEADLINE_MS}}
        with kz.TestBed(topics={TOPIC: PARTITIONS}) as tb, \
                kz.ProxyCluster(tb, per_zone=2, extra_config=extra, workdir=workdir) as pc:
            zones = pc.zones
            plain_zone = rng.choice(zones)
            prods = [ProducerRun('idem-%s' % z, z, ','.join(p.kafka for p in pc.proxies_in(z)), IDEM_RATE,
                                 {'enable.idempotence': True, 'max.in.flight.requests.per.connection': 5})
                     for z in zones]
            prods.append(KafkaPythonRun('plain-%s' % plain_zone, plain_zone,
                                        ','.join(p.kafka for p in pc.proxies_in(plain_zone)), PLAIN_RATE, {}))
            if os.environ.get('KZ_ORDER_DEBUG'):
                for pr in prods:
                    pr.debug_log = os.path.join(workdir, '%s-%s.log' % (pr.client, pr.name))
            schedule = make_schedule(rng, backend, tb, pc.proxies)
            before = walpath.proxy_figures(pc)
            t0 = time.monotonic()
            for pr in prods:
                pr.start(t0, t0 + WINDOW)
            applied = []
            for at, what, action in schedule:
                while time.monotonic() < t0 + at:  # the schedule's clock, not a synchronisation
                    time.sleep(min(0.05, max(0.0, t0 + at - time.monotonic())))
                start = time.monotonic() - t0
                try:
                    apply(action, s3, tb, pc)
                    applied.append('%6.2fs %s (%.2fs)' % (start, what, time.monotonic() - t0 - start))
                except HarnessError as e:
                    applied.append('%6.2fs %s: FAILED: %s' % (start, what, e))
                print('  fault %s' % applied[-1], flush=True)
            for pr in prods:
                pr.thread.join(WINDOW + MESSAGE_TIMEOUT_MS / 1000.0 + 30)
                if pr.thread.is_alive():
                    raise HarnessError('producer %s did not finish (produced %d, acked %d)'
                                       % (pr.name, pr.produced, len(pr.acked)))

            secs = time.monotonic() - t0
            after = walpath.proxy_figures(pc)
            order_m = [pc.metrics(q) for q in pc.proxies if not q.stopped]
            order_failed = sum(m.sum('kzproxy_wal_order_failures_total', 0) for m in order_m)
            order_holds = sum(m.sum('kzproxy_wal_order_holds_total', 0) for m in order_m)
            s3stats = s3.stats()
            rows = kz.consume_all(tb.bootstrap, TOPIC, config={'client.id': 'kz-order-reader'}, timeout=60)
            fig = analyse(prods, rows)

            print('producers ran %.1fs (window %.0fs); log: %d records in %d partitions, read from the brokers'
                  % (secs, WINDOW, len(rows), PARTITIONS))
            tot = {k: 0 for k in ('produced', 'acked', 'failed', 'undelivered', 'lost', 'reordered', 'duplicated',
                                  'fatal')}
            failures = []
            for pr in prods:
                f = fig[pr.name]
                gap, gap_at = pr.longest_stall()
                fails = {}
                for e in pr.failed.values():
                    fails[e] = fails.get(e, 0) + 1
                line = ('%-8s %-12s %s produced %6d acked %6d failed %4d%s undelivered %d lost %d reordered %d '
                        'duplicated %d fatal %d longest stall %.2fs (at %.1fs); in log unacked %d, ack offset '
                        'mismatches %d, acked without offset %d, wrong partition %d; client errors %s'
                        % (pr.name, pr.client, 'idempotent   ' if pr.idempotent else 'max.in.flight=1', pr.produced,
                           len(pr.acked), len(pr.failed), ' %s' % fails if fails else '', pr.left or 0,
                           f['lost'], f['reordered'], f['duplicated'], len(pr.fatal), gap, gap_at,
                           f['in_log_unacked'], f['offset_mismatch'], f['no_offset'], f['wrong_partition'],
                           pr.errors or '{}'))
                print(line)
                for k, egs in (('lost', f['lost_eg']), ('reordered', f['reorder_eg']), ('duplicated', f['dup_eg']),
                               ('fatal', pr.fatal[:2])):
                    if egs:
                        print('         %s e.g. %s' % (k, '; '.join(str(x) for x in egs)))
                for k, v in (('produced', pr.produced), ('acked', len(pr.acked)), ('failed', len(pr.failed)),
                             ('undelivered', pr.left or 0), ('lost', f['lost']), ('reordered', f['reordered']),
                             ('duplicated', f['duplicated']), ('fatal', len(pr.fatal))):
                    tot[k] += v
                if f['lost']:
                    failures.append('%s lost %d acknowledged messages' % (pr.name, f['lost']))
                if f['reordered']:
                    failures.append('%s: %d acknowledged messages out of order' % (pr.name, f['reordered']))
                if pr.fatal:
                    failures.append('%s: fatal producer error %s' % (pr.name, pr.fatal[0]))
                if pr.idempotent and f['duplicated'] and backend == 'kafka':
                    failures.append('%s (idempotent) duplicated %d messages' % (pr.name, f['duplicated']))
                if f['wrong_partition']:
                    failures.append('%s: %d messages in the wrong partition' % (pr.name, f['wrong_partition']))
                if not pr.acked:
                    failures.append('%s: nothing acknowledged' % pr.name)
                if pr.exc:
                    failures.append('%s stopped on %r' % (pr.name, pr.exc))
            print('totals   produced %d acked %d failed %d undelivered %d lost %d reordered %d duplicated %d '
                  'fatal %d' % tuple(tot[k] for k in ('produced', 'acked', 'failed', 'undelivered', 'lost',
                                                       'reordered', 'duplicated', 'fatal')))
            if backend == 'mock':
                print('(mock backend: duplicates are printed, not failed: the mock does not check the sequences '
                      'of non-transactional producers, so a client retry of a batch that landed is appended '
                      'again, like a duplicate the proxy made, and the two cannot be told apart)')
            print('faults applied (seed %d):' % seed)
            for a in applied:
                print('  ' + a)
            print('S3 requests %s; answered by a fault %s; error answers %s; rules: %s'
                  % (s3stats['requests'], s3stats['faulted'], s3stats['errors'],
                     '; '.join('%s: %d hits' % (r['label'], r['hits']) for r in s3stats['rules'])))
            print('proxies: WAL partitions %d, direct %d, cross-zone %d; KzWalAppend sent %d, failed %d; WAL '
                  'partition errors %d; later in-flight partitions failed to keep order %d, held (NOT_LEADER) %d; '
                  'S3 PUTs %d, GETs %d (counters of the proxies running at the end, since their start)'
                  % (walpath.delta(after, before, 'wal_parts'), walpath.delta(after, before, 'direct_parts'),
                     walpath.delta(after, before, 'cross_parts'), walpath.delta(after, before, 'rpcs'),
                     walpath.delta(after, before, 'rpc_fail'), walpath.delta(after, before, 'wal_errors'),
                     order_failed, order_holds, walpath.delta(after, before, 'puts'),
                     walpath.delta(after, before, 'gets')), flush=True)
            put_rule = s3stats['rules'][0] if s3stats['rules'] else None
            if not put_rule or put_rule['hits'] == 0:
                failures.append('the PUT failure window failed no PUT: the WAL path carried nothing then')
            if walpath.delta(after, before, 'wal_parts') == 0:
                failures.append('no partition went through the WAL path')
            if any('FAILED' in a for a in applied):
                failures.append('a fault could not be applied')
            if failures:
                raise HarnessError('; '.join(failures) + ' (seed %d)' % seed)
            print('test_wal_order_faults (%s): no loss, no reordering, no fatal error%s (seed %d)'
                  % (backend, ', no idempotent duplicate' if backend == 'kafka' else '', seed))
            ok = True
    finally:
        s3.stop()
        if ok and not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            sys.stderr.write('test_wal_order_faults: configs and proxy logs kept in %s\n' % workdir)


if __name__ == '__main__':
    kz.run_test(main, timeout=TIMEOUT)
