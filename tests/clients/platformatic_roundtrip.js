#!/usr/bin/env node
// @platformatic/kafka round trip for tests/integration/test_clients.py.
//
//   node platformatic_roundtrip.js --produce H:P --consume H:P --topic T
//        [--messages 10000] [--keys 100] [--group G] [--timeout-ms 60000] [--chunk 500]
//
// Produces --messages keyed messages through the --produce address with its
// Producer (message i: key "k<i % keys>", value "k<i % keys>.<i / keys>",
// acks=all, the library's default key partitioner, sent in chunks), then
// reads the topic's end offsets (Consumer.listOffsets) and consumes
// everything back with a Consumer with a groupId (classic group protocol,
// consume() mode earliest, no commits) through the --consume address until
// every partition reaches its end offset. Prints one JSON line on stdout:
//   {"produce_ms":..,"consume_ms":..,"ends":{"0":n,..},"records":[[p,off,key,value],..]}
// Exits 77 with a message on stderr when the library is not installed or this
// Node.js is too old for it, 1 with a message on any error or when
// --timeout-ms passes.
'use strict';

const path = require('path');
const { pathToFileURL } = require('url');

const { parseArgs } = require('./roundtrip_args.js');

function skip(msg) {
  process.stderr.write(msg + '\n');
  process.exit(77);
}

// Rejects when ms passes; cancel() stops the timer.
function deadlineTimer(ms, what) {
  let timer;
  const p = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(what())), Math.max(0, ms));
  });
  return { promise: p, cancel: () => clearTimeout(timer) };
}

async function withDeadline(promise, deadline, what) {
  const t = deadlineTimer(deadline - Date.now(), () => what + ': timed out');
  try {
    return await Promise.race([promise, t.promise]);
  } finally {
    t.cancel();
  }
}

function errText(e, depth = 0) {
  if (!e || typeof e !== 'object') return String(e);
  let s = depth ? (e.name || 'Error') + ': ' + e.message : (e.stack || String(e));
  if (e.code) s += ' [' + e.code + ']';
  if (depth > 4) return s;
  // The library's MultipleErrors (an AggregateError) and wrapped errors keep the real cause inside.
  const pad = '\n' + '  '.repeat(depth + 1);
  if (Array.isArray(e.errors))
    for (const x of e.errors) s += pad + '- ' + errText(x, depth + 1);
  if (e.cause) s += pad + 'cause: ' + errText(e.cause, depth + 1);
  if (e.response && e.response.errorCode) s += pad + 'response: ' + JSON.stringify(e.response, (k, v) => typeof v === 'bigint' ? String(v) : v).slice(0, 300);
  return s;
}

async function main() {
  const o = parseArgs(process.argv, 'kzplt');
  const entry = path.join(__dirname, 'node_modules', '@platformatic', 'kafka');
  let pkg;
  try {
    pkg = require(path.join(entry, 'package.json'));
  } catch (e) {
    skip('@platformatic/kafka is not installed: run scripts/deps.sh (npm ci --prefix tests/clients)');
  }
  const want = (pkg.engines && pkg.engines.node) || '';
  const [maj, min] = process.versions.node.split('.').map(Number);
  // 1.x says ">= 20.19.4 || >= 22.18.0 || >= 24.6.0": it is an ES module (require(esm) and
  // a current node:diagnostics_channel); older Node.js cannot load it.
  if (maj < 20 || (maj === 20 && min < 19))
    skip('@platformatic/kafka ' + pkg.version + ' needs Node.js ' + want + ', this is ' + process.version);
  let kafka;
  try {
    kafka = await import(pathToFileURL(path.join(entry, pkg.exports && typeof pkg.exports === 'string'
      ? pkg.exports : 'dist/index.js')).href);
  } catch (e) {
    skip('@platformatic/kafka ' + pkg.version + ' does not load under Node.js ' + process.version + ': ' + e.message);
  }
  const { Producer, Consumer, ProduceAcks, MessagesStreamModes, MessagesStreamFallbackModes,
          stringSerializers, stringDeserializers } = kafka;
  const deadline = Date.now() + o.timeoutMs;
  const common = { connectTimeout: 5000, timeout: 15000, retries: 8, retryDelay: 250 };

  // ---- produce
  const t0 = Date.now();
  const producer = new Producer({ clientId: 'kzplt-producer', bootstrapBrokers: [o.produce],
                                  serializers: stringSerializers, acks: ProduceAcks.ALL,
                                  autocreateTopics: false, ...common });
  try {
    for (let start = 0; start < o.messages; start += o.chunk) {
      if (Date.now() > deadline) throw new Error('produce: timed out at message ' + start);
      const messages = [];
      for (let i = start; i < Math.min(o.messages, start + o.chunk); i++) {
        const k = i % o.keys, seq = Math.floor(i / o.keys);
        messages.push({ topic: o.topic, key: 'k' + k, value: 'k' + k + '.' + seq });
      }
      const res = await withDeadline(producer.send({ messages, acks: ProduceAcks.ALL }), deadline,
                                     'produce at message ' + start);
      if (!res || !Array.isArray(res.offsets) || res.offsets.length === 0)
        throw new Error('produce: no offsets acknowledged for messages from ' + start + ': ' + JSON.stringify(res));
    }
  } finally {
    await producer.close().catch(() => {});
  }
  const produceMs = Date.now() - t0;

  // ---- end offsets and a group consumer through the consume-side address
  const t1 = Date.now();
  const consumer = new Consumer({ clientId: 'kzplt-consumer', bootstrapBrokers: [o.consume],
                                  groupId: o.group, deserializers: stringDeserializers,
                                  sessionTimeout: 10000, heartbeatInterval: 1000, rebalanceTimeout: 10000,
                                  maxWaitTime: 250, autocommit: false, ...common });
  const records = [];
  const ends = {};
  let pending;
  let stream;
  try {
    const offs = await withDeadline(consumer.listOffsets({ topics: [o.topic] }), deadline, 'end offsets');
    const arr = offs.get(o.topic);
    if (!arr || arr.length === 0) throw new Error('end offsets: no partitions for ' + o.topic);
    arr.forEach((off, p) => { ends[p] = Number(off); });
    pending = new Set(Object.keys(ends).filter((p) => ends[p] > 0));

    let resolveDone, rejectFailed;
    const done = new Promise((res, rej) => { resolveDone = res; rejectFailed = rej; });
    if (pending.size === 0) resolveDone();
    stream = await withDeadline(consumer.consume({
      topics: [o.topic], mode: MessagesStreamModes.EARLIEST, fallbackMode: MessagesStreamFallbackModes.EARLIEST,
      autocommit: false, maxWaitTime: 250,
    }), deadline, 'consume: joining group ' + o.group);
    stream.on('data', (m) => {
      const off = Number(m.offset);
      records.push([m.partition, off, m.key === undefined ? null : m.key, m.value === undefined ? null : m.value]);
      if (pending.has(String(m.partition)) && off + 1 >= ends[m.partition]) {
        pending.delete(String(m.partition));
        if (pending.size === 0) resolveDone();
      }
    });
    stream.on('error', (e) => rejectFailed(new Error('consume: the stream failed: ' + errText(e))));
    const t = deadlineTimer(deadline - Date.now(), () => 'consume: partitions ' + [...pending].join(',') +
                            ' not at their end offsets before the deadline (' + records.length + ' records read)');
    try {
      await Promise.race([done, t.promise]);
    } finally {
      t.cancel();
    }
  } finally {
    if (stream) await stream.close().catch(() => {});
    await withDeadline(consumer.close(), Date.now() + 10000, 'consumer close').catch((e) =>
      process.stderr.write('platformatic consumer close: ' + errText(e) + '\n'));
  }
  const consumeMs = Date.now() - t1;
  // stdout is a pipe: exit only once the result has been written out.
  await new Promise((res) => process.stdout.write(
    JSON.stringify({ produce_ms: produceMs, consume_ms: consumeMs, ends, records }) + '\n', res));
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write('platformatic_roundtrip: ' + errText(e) + '\n');
  process.exit(1);
});
