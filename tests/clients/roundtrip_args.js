// The command line every JavaScript round trip of tests/integration/test_clients.py takes:
//   --produce H:P --consume H:P --topic T [--messages 10000] [--keys 100]
//   [--group G] [--timeout-ms 60000] [--chunk 500]
// groupPrefix names the default group (<prefix>-<pid>-<ms>). Throws on a bad line.
'use strict';

function parseArgs(argv, groupPrefix) {
  const o = { messages: 10000, keys: 100, group: groupPrefix + '-' + process.pid + '-' + Date.now(),
              timeoutMs: 60000, chunk: 500 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i], v = argv[i + 1];
    if (v === undefined) throw new Error('option ' + k + ' needs a value');
    switch (k) {
      case '--produce': o.produce = v; break;
      case '--consume': o.consume = v; break;
      case '--topic': o.topic = v; break;
      case '--messages': o.messages = parseInt(v, 10); break;
      case '--keys': o.keys = parseInt(v, 10); break;
      case '--group': o.group = v; break;
      case '--timeout-ms': o.timeoutMs = parseInt(v, 10); break;
      case '--chunk': o.chunk = parseInt(v, 10); break;
      default: throw new Error('unknown option ' + k);
    }
  }
  for (const k of ['produce', 'consume', 'topic'])
    if (!o[k]) throw new Error('--' + k + ' is required');
  return o;
}

module.exports = { parseArgs };
