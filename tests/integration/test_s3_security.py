#!/usr/bin/python3
"""objwal's S3 client security (issue 14, item 6), against faults3 (our own
S3 on 127.0.0.1, port 0), through ow_s3_tool:

  - sse AES256 and sse aws:kms with a key id: every PUT carries
    x-amz-server-side-encryption (and -aws-kms-key-id), and the SigV4
    Authorization header lists them in SignedHeaders (so they cannot be
    stripped in transit); GETs carry neither;
  - the secret key never appears in anything sent but the signature's
    derivation (not in any header);
  - HTTPS: an endpoint whose certificate a test CA signed is accepted with
    ca_file naming that CA, and refused with a clear certificate error with
    another CA's file, and with the system's trust store (no ca_file).
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from objwal_env import check, finish, run_tool  # noqa: E402
import faults3  # noqa: E402
import kzbed  # noqa: E402

BUCKET = 'kz-wal'
SECRET = 'kz-test-secret-key-0123456789'
KMS_KEY = 'arn:aws:kms:us-east-1:111122223333:key/kz-test-key'


def signed_headers(auth):
    for part in auth.split(','):
        part = part.strip()
        if 'SignedHeaders=' in part:
            return part.split('SignedHeaders=', 1)[1].split(';')
    return []


def store_args(s3, extra=()):
    return ['--endpoint', s3.endpoint, '--bucket', BUCKET, '--access-key', 'AKIDTEST', '--secret-key', SECRET,
            '--deadline-ms', '4000', '--attempt-ms', '2000', '--backoff-ms', '50'] + list(extra)


def main():
    work = tempfile.mkdtemp(prefix='kz-s3sec-')
    try:
        with faults3.FaultS3() as s3:
            for sse, extra in (('AES256', ['--sse', 'AES256']),
                               ('aws:kms', ['--sse', 'aws:kms', '--sse-kms-key-id', KMS_KEY])):
                before = len(s3.requests())
                rc, out = run_tool(['put'] + store_args(s3, extra) + ['--expect', 'ok'])
                check(rc == 0, 'sse %s: put and read back' % sse)
                seen = s3.requests()[before:]
                puts = [r for r in seen if r['op'] == 'PUT']
                gets = [r for r in seen if r['op'] == 'GET']
                check(len(puts) >= 1 and len(gets) >= 1, 'sse %s: %d PUTs and %d GETs seen' % (sse, len(puts),
                                                                                           len(gets)))
                for r in puts:
                    h = r['headers']
                    signed = signed_headers(h.get('authorization', ''))
                    check(h.get('x-amz-server-side-encryption') == sse,
                          'sse %s: PUT %s carries x-amz-server-side-encryption: %s'
                          % (sse, r['key'], h.get('x-amz-server-side-encryption')))
                    check('x-amz-server-side-encryption' in signed,
                          'sse %s: x-amz-server-side-encryption is signed (SignedHeaders %s)' % (sse, signed))
                    if sse == 'aws:kms':
                        check(h.get('x-amz-server-side-encryption-aws-kms-key-id') == KMS_KEY,
                              'sse aws:kms: PUT carries the KMS key id')
                        check('x-amz-server-side-encryption-aws-kms-key-id' in signed,
                              'sse aws:kms: the KMS key id header is signed')
                    else:
                        check('x-amz-server-side-encryption-aws-kms-key-id' not in h,
                              'sse AES256: no KMS key id header')
                    check(not any(SECRET in v for v in h.values()), 'sse %s: the secret key is in no header' % sse)
                for r in gets:
                    check('x-amz-server-side-encryption' not in r['headers'],
                          'sse %s: GET %s carries no SSE header' % (sse, r['key']))
            before = len(s3.requests())
            rc, out = run_tool(['put'] + store_args(s3) + ['--expect', 'ok'])
            plain = [r for r in s3.requests()[before:] if r['op'] == 'PUT']
            check(rc == 0 and plain and all('x-amz-server-side-encryption' not in r['headers'] for r in plain),
                  'no sse: PUTs carry no SSE header (the bucket default applies)')

        pki = kzbed.make_test_pki(os.path.join(work, 'pki'))
        other = kzbed.make_test_pki(os.path.join(work, 'other'))
        with faults3.FaultS3(tls=(pki['server'], pki['server_key'])) as s3:
            check(s3.endpoint.startswith('https://'), 'faults3 serves %s' % s3.endpoint)
            rc, out = run_tool(['put'] + store_args(s3, ['--ca-file', pki['ca'], '--sse', 'AES256']) +
                               ['--expect', 'ok'])
            check(rc == 0, 'https with ca_file naming the endpoint\'s CA: put and read back')
            for label, extra in (('another CA\'s ca_file', ['--ca-file', other['ca']]),
                                 ('the system trust store', [])):
                rc, out = run_tool(['put'] + store_args(s3, extra) + ['--expect', 'ok'])
                low = out.lower()
                check(rc != 0 and 'certificate' in low and ('verify' in low or 'issuer' in low),
                      'https with %s: refused with a certificate error' % label)
                check(SECRET not in out, 'https with %s: the secret key is not in the output' % label)
    finally:
        if not os.environ.get('KZ_TEST_KEEP'):
            shutil.rmtree(work, ignore_errors=True)
    finish('s3 security')


if __name__ == '__main__':
    main()
