#!/usr/bin/python3
"""Cut-through of large Produce requests (proxy/px_cut.c).

Raw Produce v7 requests of about 1 MB, each one record batch on one
partition, go through one proxy to a mock cluster of two brokers in zone a:

1. Six clients at once, three requests each, every request to one broker: all
   answered without error, and each was streamed (the proxy's
   kzproxy_produce_cut_through_total rose by one per request).
2. A client sends a request's first 300 KB in slices, waits until the proxy
   shows it streaming, and closes its connection mid-frame while the other
   clients keep producing to the same broker: their requests all succeed (or
   fail retriably), kzproxy_produce_cut_through_aborted_total is 1, and the
   broker's log holds exactly the records of the answered requests: nothing
   of the half frame was appended.
3. A request whose two partitions have leaders on different brokers is not
   streamed (split as before) and answered without error on both; a request
   below the cut-through size is not streamed either.
4. A request that trickles in small slices (its partition list arrives over
   many reads) is streamed and answered.
5. With limits.max_inflight_bytes (64 KiB) below a request's size, three
   pipelined 1 MB requests are all answered, cut-through on and off: a
   frame being received alone never waits for bytes to drain.
"""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402

PRODUCE = 0
VERSION = 7
TOPIC = 'ct'
RETRIABLE = {6, 7, 5, 3, 13, 56}  # NOT_LEADER, REQUEST_TIMED_OUT, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC, NETWORK_EXCEPTION, KAFKA_STORAGE


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_T = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = CRC_T
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def record_batch(nrecords, value_size):
    """A record batch v2 of nrecords values of value_size bytes, CRC32C set."""
    recs = bytearray()
    for i in range(nrecords):
        value = bytes([(i * 7 + j) & 0xFF for j in range(251)]) * (value_size // 251 + 1)
        value = value[:value_size]
        body = b'\0' + varint(0) + varint(i) + varint(-1) + varint(len(value)) + value + varint(0)
        recs += varint(len(body)) + body
    now = int(time.time() * 1000)
    after_crc = struct.pack('>hiqqqhii', 0, nrecords - 1, now, now, -1, -1, -1, nrecords) + bytes(recs)
    head = struct.pack('>ib', 0, 2)  # partition leader epoch, magic
    crc = crc32c(after_crc)
    rest = head + struct.pack('>I', crc) + after_crc
    return struct.pack('>qi', 0, len(rest)) + rest


def string(s):
    b = s.encode()
    return struct.pack('>h', len(b)) + b


def produce_request(corr, parts, client_id='cut-through-test', topic=None):
    """parts: [(partition, batch bytes)] of topic (default: the module's
    TOPIC as it is at the call, which test_wal_corrupt_batch sets); v7, acks=-1."""
    topic = topic or TOPIC
    body = struct.pack('>h', -1) + struct.pack('>hi', -1, 30000) + struct.pack('>i', 1) + string(topic)
    body += struct.pack('>i', len(parts))
    for p, batch in parts:
        body += struct.pack('>ii', p, len(batch)) + batch
    hdr = struct.pack('>hhi', PRODUCE, VERSION, corr) + string(client_id)
    frame = hdr + body
    return struct.pack('>i', len(frame)) + frame


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError('closed after %d of %d bytes' % (len(buf), n))
        buf += chunk
    return bytes(buf)


def read_produce_response(s):
    """{partition: (error, base offset)}, and the correlation id."""
    size = struct.unpack('>i', recv_exact(s, 4))[0]
    r = recv_exact(s, size)
    corr, ntopics = struct.unpack('>ii', r[:8])
    off, out = 8, {}
    for _ in range(ntopics):
        nlen = struct.unpack('>h', r[off:off + 2])[0]
        off += 2 + nlen
        nparts = struct.unpack('>i', r[off:off + 4])[0]
        off += 4
        for _ in range(nparts):
            p, err, base, _ts, _lso = struct.unpack('>ihqqq', r[off:off + 30])
            off += 30
            out[p] = (err, base)
    return corr, out


def metric(p, name):
    return kz.metrics(p).sum(name, default=0)


def high_watermarks(bootstrap, partitions):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({'bootstrap.servers': bootstrap, 'group.id': 'cut-hw-%d' % os.getpid()})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in partitions}
    finally:
        c.close()


def leaders(bootstrap):
    from confluent_kafka.admin import AdminClient
    md = AdminClient({'bootstrap.servers': bootstrap}).list_topics(TOPIC, timeout=10)
    return {p: pm.leader for p, pm in md.topics[TOPIC].partitions.items()}


def main():
    with kz.TestBed(zones=('a',), brokers=2, topics={TOPIC: 2}, backend='mock') as tb, \
            kz.ProxyCluster(tb, zones=('a',)) as pc:
        px = pc.proxy_in('a')
        addr = ('127.0.0.1', px.kafka_port)
        lead = leaders(tb.bootstrap)
        assert len(set(lead.values())) == 2, 'want the two partitions on two brokers: %r' % lead
        big = record_batch(4, 256 * 1024)  # about 1 MB
        nrec_big = 4
        small = record_batch(2, 1000)
        answered = {0: 0, 1: 0}  # records the proxy said were appended, per partition
        lock = threading.Lock()
        # Warm up: the proxy learns the topic (an unknown topic is refused, not streamed).
        s = socket.create_connection(addr)
        kz.wait_until(lambda: (s.sendall(produce_request(1, [(0, small)])),
                               read_produce_response(s)[1][0][0] == 0)[1], 20, 'a first produce through the proxy')
        s.close()
        with lock:
            answered[0] += 2

        # 1. Six clients, three 1 MB requests each, partition 0 and 1 in turn.
        cut0 = metric(px, 'kzproxy_produce_cut_through_total')
        errors = []

        def client(k, nreq, out_errors, retriable_ok=False):
            try:
                s = socket.create_connection(addr)
                for i in range(nreq):
                    p = (k + i) % 2
                    s.sendall(produce_request(100 + i, [(p, big)]))
                    corr, res = read_produce_response(s)
                    assert corr == 100 + i, 'correlation id %d, sent %d' % (corr, 100 + i)
                    err = res[p][0]
                    if err == 0:
                        with lock:
                            answered[p] += nrec_big
                    elif not (retriable_ok and err in RETRIABLE):
                        out_errors.append('client %d request %d: error %d' % (k, i, err))
                s.close()
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                out_errors.append('client %d: %r' % (k, e))

        threads = [threading.Thread(target=client, args=(k, 3, errors)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        cut1 = metric(px, 'kzproxy_produce_cut_through_total')
        assert cut1 - cut0 == 18, 'streamed %d of 18 one-broker requests' % (cut1 - cut0)
        print('ok  18 requests of %d bytes from 6 clients, all streamed and answered' % len(big))

        # 2. A client closes mid-frame while others produce to the same broker.
        errors = []
        others = [threading.Thread(target=client, args=(k, 4, errors, True)) for k in range(4)]
        for t in others:
            t.start()
        quitter = socket.create_connection(addr)
        req = produce_request(7, [(0, big)])
        before = metric(px, 'kzproxy_produce_cut_through_total')
        for off in range(0, 300 * 1024, 16 * 1024):
            quitter.sendall(req[off:off + 16 * 1024])
        kz.wait_until(lambda: metric(px, 'kzproxy_produce_cut_through_total') > before, 20,
                      'the half-sent request to be streamed')
        quitter.close()
        kz.wait_until(lambda: metric(px, 'kzproxy_produce_cut_through_aborted_total') == 1, 20,
                      'the proxy to count the aborted stream')
        for t in others:
            t.join(120)
        assert not errors, errors
        assert px.running, 'the proxy died'
        print('ok  a client closed mid-frame after %d KB; 16 requests of 4 other clients answered' % 300)

        # 3. Not streamed: partitions on two brokers, and a small request.
        cut2 = metric(px, 'kzproxy_produce_cut_through_total')
        s = socket.create_connection(addr)
        s.sendall(produce_request(200, [(0, big), (1, big)]))
        _, res = read_produce_response(s)
        assert res[0][0] == 0 and res[1][0] == 0, 'split request answered %r' % res
        answered[0] += nrec_big
        answered[1] += nrec_big
        s.sendall(produce_request(201, [(1, small)]))
        _, res = read_produce_response(s)
        assert res[1][0] == 0, 'small request answered %r' % res
        answered[1] += 2
        assert metric(px, 'kzproxy_produce_cut_through_total') == cut2, 'a split or small request was streamed'
        print('ok  a request over two brokers and a small one went the usual way')

        # 4. A request trickling in: its partition list over many reads.
        req = produce_request(300, [(1, big)])
        for off in range(0, 200, 7):
            s.sendall(req[off:off + 7])
            time.sleep(0.002)  # pacing only: separate segments, separate reads
        s.sendall(req[200:])
        _, res = read_produce_response(s)
        assert res[1][0] == 0, 'trickled request answered %r' % res
        answered[1] += nrec_big
        assert metric(px, 'kzproxy_produce_cut_through_total') == cut2 + 1, 'the trickled request was not streamed'
        s.close()
        print('ok  a request sent 7 bytes at a time at first was streamed')

        # Nothing of the half frame reached the broker: its log holds exactly
        # the records of the answered requests.
        hw = high_watermarks(tb.bootstrap, [0, 1])
        assert hw == answered, 'broker logs hold %r records, answered %r' % (hw, answered)
        m = kz.metrics(px)
        print('broker records %r = answered; cut-through %d, aborted %d' % (
            hw, m.sum('kzproxy_produce_cut_through_total', default=0),
            m.sum('kzproxy_produce_cut_through_aborted_total', default=0)))

        # 5. limits.max_inflight_bytes below a request's size: a 1 MB request
        # alone must still be read to its end (streamed or not), and three
        # pipelined ones wait for each other, never for good.
        for cut in (65536, 0):
            lim = {'limits': {'max_inflight_bytes': 65536, 'cut_through_min_bytes': cut}}
            with kz.ProxyCluster(tb, zones=('a',), extra_config=lim) as pc2:
                s = socket.create_connection(('127.0.0.1', pc2.proxy_in('a').kafka_port), timeout=20)
                kz.wait_until(lambda: (s.sendall(produce_request(1, [(0, small)])),
                                       read_produce_response(s)[1][0][0] == 0)[1], 20, 'a first produce')
                s.sendall(b''.join(produce_request(10 + i, [(0, big)]) for i in range(3)))
                for i in range(3):
                    try:
                        corr, res = read_produce_response(s)
                    except socket.timeout:
                        raise kz.HarnessError('max_inflight_bytes 65536, cut-through %s: request %d of 3 '
                                              'not answered in 20 s' % ('on' if cut else 'off', i))
                    assert corr == 10 + i and res[0][0] == 0, (corr, res)
                s.close()
            print('ok  max_inflight_bytes 65536, cut-through %s: three pipelined 1 MB requests answered'
                  % ('on' if cut else 'off'))


if __name__ == '__main__':
    kz.run_test(main, timeout=240)
