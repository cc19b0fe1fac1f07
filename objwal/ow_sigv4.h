/*
 * ow_sigv4: AWS Signature Version 4 for S3 requests (Authorization header
 * form), with OpenSSL's SHA-256 and HMAC. Pure functions: no I/O, no clock;
 * the caller passes the time, so the AWS documentation's worked examples are
 * reproducible byte for byte (tests/unit/test_ow_sigv4.c).
 */
#ifndef OW_SIGV4_H
#define OW_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct evbuffer;

/* SHA-256 of the empty string, the payload hash of bodiless requests. */
#define OW_SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A header to sign: name in any case (it is lower-cased), value trimmed. */
typedef struct ow_sigv4_header {
    const char *name;
    const char *value;
} ow_sigv4_header;

typedef struct ow_sigv4_request {
    const char *method;          /* "GET", "PUT"... */
    const char *canonical_uri;   /* the path as sent, already URI-encoded ("/test%24file.text") */
    const char *query;           /* the query as sent, without '?': "" or "a=1&b=" (sorted here) */
    const ow_sigv4_header *headers; /* every header to sign, host and x-amz-date included */
    size_t nheaders;             /* at most 16 */
    const char *payload_hash;    /* lower-case hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;        /* "20130524T000000Z", the x-amz-date value */
    const char *region;          /* "us-east-1" */
    const char *service;         /* "s3" */
    const char *access_key;
    const char *secret_key;
} ow_sigv4_request;

/*
 * Compute the Authorization header value
 * ("AWS4-HMAC-SHA256 Credential=...,SignedHeaders=...,Signature=...") into
 * out. If signature is not NULL it also gets the 64 hex digits (65 bytes).
 * Returns 0, or -1 when out is too small or an argument is invalid.
 */
int ow_sigv4_authorization(const ow_sigv4_request *r, char *out, size_t out_size,
                           char *signature);

/* Lower-case hex SHA-256 of p/n, or of an evbuffer's whole contents. */
void ow_sha256_hex(const void *p, size_t n, char out[65]);
int ow_sha256_hex_evbuffer(struct evbuffer *eb, char out[65]);

/* "20130524T000000Z" for t (UTC). */
void ow_amz_date(time_t t, char out[17]);

/*
 * URI-encode n bytes of s as SigV4 wants (unreserved A-Z a-z 0-9 - . _ ~ kept,
 * everything else %XX upper-case; '/' kept when keep_slash). Writes a
 * NUL-terminated string; returns its length, or (size_t)-1 if out is too small.
 */
size_t ow_uri_encode(const char *s, size_t n, int keep_slash, char *out, size_t out_size);

#endif
