#!/usr/bin/env node
// KafkaJS round trip for tests/integration/test_clients.py.
//
//   node kafkajs_roundtrip.js --produce H:P --consume H:P --topic T
//        [--messages 10000] [--keys 100] [--group G] [--timeout-ms 60000]
//
// Produces --messages keyed messages through the --produce address (message
// i: key "k<i % keys>", value "k<i % keys>.<i / keys>", acks=all, sent in
// chunks), then reads the topic's end offsets and consumes everything back
// with a consumer group (fromBeginning) through the --consume address until
// every partition reaches its end offset. Prints one JSON line on stdout:
//   {"produce_ms":..,"consume_ms":..,"ends":{"0":n,..},"records":[[p,off,key,value],..]}
// KafkaJS's own log goes to stderr (WARN and above). Exits 1 with a message
// on stderr on any error or when --timeout-ms passes.
//
// Security, all optional (without them: plaintext, no SASL), from the
// environment so that no password shows on a command line:
//   KZJS_SSL_CA=pem-file          TLS, the server certificate checked against it
//   KZJS_SSL_CERT, KZJS_SSL_KEY   a client certificate and its key (mTLS; with KZJS_SSL_CA)
//   KZJS_SASL_MECHANISM=plain|scram-sha-256|scram-sha-512,
//   KZJS_SASL_USERNAME, KZJS_SASL_PASSWORD   SASL login (over TLS when KZJS_SSL_CA is set)
// A failed SASL login exits 1 with KafkaJS's error (KafkaJSSASLAuthenticationError ...) on stderr.
'use strict';

const fs = require('fs');
const path = require('path');

const { parseArgs } = require('./roundtrip_args.js');

function logCreator(level) {
  return ({ namespace, level: lvl, label, log }) => {
    const { message, ...extra } = log;
    process.stderr.write('kafkajs ' + label + ' [' + namespace + '] ' + message + ' ' +
                         JSON.stringify(extra) + '\n');
  };
}

// {ssl, sasl} for the Kafka constructor from the KZJS_* variables; {} without them.
function securityFromEnv(env) {
  const sec = {};
  if (env.KZJS_SSL_CA) {
    sec.ssl = { ca: [fs.readFileSync(env.KZJS_SSL_CA, 'utf8')] };
    if (env.KZJS_SSL_CERT || env.KZJS_SSL_KEY) {
      if (!env.KZJS_SSL_CERT || !env.KZJS_SSL_KEY) throw new Error('KZJS_SSL_CERT and KZJS_SSL_KEY go together');
      sec.ssl.cert = fs.readFileSync(env.KZJS_SSL_CERT, 'utf8');
      sec.ssl.key = fs.readFileSync(env.KZJS_SSL_KEY, 'utf8');
    }
  } else if (env.KZJS_SSL_CERT || env.KZJS_SSL_KEY) {
    throw new Error('KZJS_SSL_CERT/KZJS_SSL_KEY need KZJS_SSL_CA');
  }
  if (env.KZJS_SASL_MECHANISM) {
    sec.sasl = { mechanism: env.KZJS_SASL_MECHANISM, username: env.KZJS_SASL_USERNAME || '',
                 password: env.KZJS_SASL_PASSWORD || '' };
  }
  return sec;
}

async function main() {
  const o = parseArgs(process.argv, 'kzjs');
  let kafkajs;
  try {
    kafkajs = require(path.join(__dirname, 'node_modules', 'kafkajs'));
  } catch (e) {
    process.stderr.write('kafkajs is not installed: run scripts/deps.sh (npm ci --prefix tests/clients)\n');
    process.exit(77);
  }
  const { Kafka, logLevel, Partitioners } = kafkajs;
  const deadline = Date.now() + o.timeoutMs;
  const common = { logLevel: logLevel.WARN, logCreator, connectionTimeout: 5000,
                   requestTimeout: 15000, retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
                   ...securityFromEnv(process.env) };
  const kp = new Kafka({ clientId: 'kzjs-producer', brokers: [o.produce], ...common });
  const kc = new Kafka({ clientId: 'kzjs-consumer', brokers: [o.consume], ...common });

  // ---- produce
  const t0 = Date.now();
  const producer = kp.producer({ createPartitioner: Partitioners.DefaultPartitioner,
                                 allowAutoTopicCreation: false });
  await producer.connect();
  for (let start = 0; start < o.messages; start += o.chunk) {
    if (Date.now() > deadline) throw new Error('produce: timed out at message ' + start);
    const messages = [];
    for (let i = start; i < Math.min(o.messages, start + o.chunk); i++) {
      const k = i % o.keys, seq = Math.floor(i / o.keys);
      messages.push({ key: 'k' + k, value: 'k' + k + '.' + seq });
    }
    const res = await producer.send({ topic: o.topic, acks: -1, messages });
    for (const r of res)
      if (r.errorCode !== 0) throw new Error('produce: partition ' + r.partition + ' error ' + r.errorCode);
  }
  await producer.disconnect();
  const produceMs = Date.now() - t0;

  // ---- end offsets through the consume-side proxy
  const t1 = Date.now();
  const admin = kc.admin();
  await admin.connect();
  const offs = await admin.fetchTopicOffsets(o.topic);
  await admin.disconnect();
  const ends = {};
  for (const p of offs) ends[p.partition] = parseInt(p.high, 10);

  // ---- consume with a group from the beginning until every partition is at its end
  const consumer = kc.consumer({ groupId: o.group, sessionTimeout: 10000, heartbeatInterval: 1000,
                                 rebalanceTimeout: 10000, maxWaitTimeInMs: 250,
                                 allowAutoTopicCreation: false });
  const records = [];
  const next = {};     // partition -> next offset wanted
  for (const p of Object.keys(ends)) next[p] = 0;
  const pending = new Set(Object.keys(ends).filter((p) => ends[p] > 0));
  let resolveDone;
  const done = new Promise((res) => { resolveDone = res; });
  if (pending.size === 0) resolveDone();
  let rejectCrash;
  const crashed = new Promise((_, rej) => { rejectCrash = rej; });
  // A consumer that crashes in this happy-path round trip is a failure: stop at once
  // rather than wait out the deadline while KafkaJS restarts it.
  consumer.on(consumer.events.CRASH, (e) => {
    rejectCrash(new Error('consume: the consumer crashed: ' + (e.payload && e.payload.error ? e.payload.error.stack || e.payload.error : JSON.stringify(e.payload))));
  });
  await consumer.connect();
  await consumer.subscribe({ topic: o.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const off = parseInt(message.offset, 10);
      records.push([partition, off, message.key === null ? null : message.key.toString(),
                    message.value === null ? null : message.value.toString()]);
      next[partition] = off + 1;
      if (pending.has(String(partition)) && off + 1 >= ends[partition]) {
        pending.delete(String(partition));
        if (pending.size === 0) resolveDone();
      }
    },
  });
  let timer;
  const timeout = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error('consume: partitions ' + [...pending].join(',') +
                                           ' not at their end offsets before the deadline (' +
                                           records.length + ' records read)')),
                       Math.max(0, deadline - Date.now()));
  });
  try {
    await Promise.race([done, timeout, crashed]);
  } finally {
    clearTimeout(timer);
  }
  await consumer.disconnect();
  const consumeMs = Date.now() - t1;
  // stdout is a pipe: exit only once the result has been written out.
  await new Promise((res) => process.stdout.write(
    JSON.stringify({ produce_ms: produceMs, consume_ms: consumeMs, ends, records }) + '\n', res));
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write('kafkajs_roundtrip: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
