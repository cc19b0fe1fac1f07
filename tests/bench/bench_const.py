"""bench_const: the constants of the benchmark driver run_bench.py and its
modules (message size, the scenarios' loads and durations, the instr and
Java scenarios' settings); each defined here only."""

import re

NA_WAL = 'n/a (WAL path not available)'
MSG_SIZE = 1024
PEER_SECRET = 'kz-bench-peer-secret-0123456789abcdef'
FLUSH_MS = 250
FLUSH_IDLE_MS = 5         # wal.flush_idle_ms of the second idempotent run
IDEM_RATE_MBPS = 20       # offered to the one idempotent producer
IDEM_QUEUE_KIB = 4096     # its client queue
# kz_bench's pipelined idempotent producer: one batch of 15 1 KiB values per
# ProduceRequest (what fits the Java client's default batch.size, 16384),
# at most 5 requests in flight.
PIPE_BATCH_RECORDS = 15
PIPE_IN_FLIGHT = 5
# librdkafka's idempotent producer at its default settings (issue 17 item 4)
# on a 12-partition topic: offered IDEM_DEFAULT_RATE_MBPS (what the WAL path
# carries with one request in flight per partition), then flat out with the
# client queue bounded to IDEM_DEFAULT_QUEUE_KIB (the default, 1 GiB, would
# make a flat-out run drain for minutes at the WAL path's rate).
IDEM_DEFAULT_RATE_MBPS = 20
IDEM_DEFAULT_QUEUE_KIB = 65536
# Fan-out (issue 15): this many consumers (each its own group.id) in zone b
# read, one after the other, a topic with no replica in zone b.
FANOUT_GROUPS = 3
# instr (issue 17): user-space instructions per payload byte, counted by
# callgrind. Each path runs twice on fresh proxies, INSTR_MSGS and twice as
# many messages; the difference of the counts over the difference of the
# payload bytes leaves out start-up and shutdown. One producer, one
# partition, INSTR_BATCH_MSGS messages per Produce request (batch.num.messages
# with a linger that never expires first: every request is alike, whatever
# the machine's speed), paced at INSTR_RATE_MBPS, which the proxies keep up
# with under callgrind's slowdown.
INSTR_MSGS = 20000
INSTR_MSGS_QUICK = 500
INSTR_BATCH_MSGS = 100
INSTR_RATE_MBPS = 10
INSTR_LINGER_MS = 1000
# The WAL runs' flush interval: at INSTR_RATE_MBPS an object fills its 8 MiB
# (flush_bytes, as at the fixed load's 100 MB/s) in 0.84 s, so every object
# but a run's last is full, and each run stores the same number whatever the
# timing (sealed by age at 250 ms, the count moves by one or two from run to
# run, and each object costs a peer RPC: 2 % of proxy b's figure).
INSTR_FLUSH_MS = 2000
# The cache and branch simulators off (callgrind's defaults, made explicit):
# only Ir, instructions executed, is counted.
CALLGRIND_ARGS = ('--tool=callgrind', '--dump-instr=no', '--collect-jumps=no', '--cache-sim=no',
                  '--branch-sim=no')
# same_zone_tls_java: Apache Kafka's producer benchmark. Flat out it is told
# to send what JAVA_CEILING_MSGS_S records/s (about 1 GB/s, above any
# flat-out figure measured here) would in the run's time, and stopped by
# time; ProducerPerformance has no time limit of its own.
JAVA_PERF_MAIN = 'org.apache.kafka.tools.ProducerPerformance'
JAVA_CEILING_MSGS_S = 1000000
JAVA_START_S = 60.0       # JVM start, metadata, TLS handshake: time to the first record
JAVA_OFFSETS_EVERY_S = 0.1  # how often the topic's end offsets are read during a run
JAVA_SUMMARY = re.compile(r'^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, '
                          r'([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th')
