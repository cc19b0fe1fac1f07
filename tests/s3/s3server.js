// Start an S3 emulator for the objwal integration tests.
//   node [--openssl-legacy-provider] s3server.js <s3rver|20minutes> <directory> <bucket>...
// Listens on 127.0.0.1, port 0 (the kernel picks one), and prints one line
// of JSON {"port": N} on stdout once it accepts connections. It exits when
// its standard input closes or on SIGTERM, so a test that dies cannot leave
// it behind. 's3rver' (3.7.1) does not check signatures; '20minutes'
// (@20minutes/s3rver) verifies SigV4 against the S3RVER/S3RVER key pair.
'use strict';

const [variant, directory, ...buckets] = process.argv.slice(2);
const S3rver = require(variant === '20minutes' ? '@20minutes/s3rver' : 's3rver');

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  serviceEndpoint: 'localhost',
  configureBuckets: buckets.map((name) => ({ name })),
  allowMismatchedSignatures: false,
});

server.run((err, addr) => {
  if (err) {
    console.error(`s3server: ${err.stack || err}`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ port: addr.port }) + '\n');
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
