/*
 * kz_scram: the crypto and text pieces SCRAM needs on both sides of a login
 * (meta-client's client to brokers, proxy's server for clients): strict
 * base64, HMAC, hashes, PBKDF2 and the RFC 5802 key derivation, and the
 * attribute splitter of SCRAM messages. OpenSSL underneath; no state.
 *
 * sha selects the hash: 256 (SHA-256) or 512 (SHA-512). Outputs are
 * kz_sha_len(sha) bytes; callers give buffers of KZ_SHA_MAX.
 */
#ifndef KZ_SCRAM_H
#define KZ_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#define KZ_SHA_MAX 64

/* Digest length of sha (32 or 64), or 0 for anything else. */
size_t kz_sha_len(int sha);

/* base64 of n bytes, NUL-terminated, malloc'd (caller frees); NULL when out of memory. */
char *kz_b64_encode(const uint8_t *p, size_t n);
/* Strict decode of n characters (canonical padding, no whitespace) into out
 * (room for cap bytes): the byte count, or -1 when not base64 or too long. */
long kz_b64_decode(const char *s, size_t n, uint8_t *out, size_t cap);

/* HMAC(key, data), H(data), PBKDF2-HMAC(pw, salt, iter) of outlen bytes. 0 or -1. */
int kz_hmac(int sha, const uint8_t *key, size_t kl, const void *data, size_t dl, uint8_t *out);
int kz_hash(int sha, const void *data, size_t dl, uint8_t *out);
int kz_pbkdf2(int sha, const char *pw, size_t pwl, const uint8_t *salt, size_t sl, int iter, uint8_t *out,
              size_t outlen);

/* RFC 5802 section 3: from a password, salt and iteration count, the
 * ClientKey, StoredKey = H(ClientKey) and ServerKey (any output may be NULL).
 * Intermediate secrets are wiped. 0 or -1. */
int kz_scram_keys(int sha, const char *pw, size_t pwl, const uint8_t *salt, size_t sl, int iter,
                  uint8_t *client_key, uint8_t *stored_key, uint8_t *server_key);

/* The next attribute "x=value" of a comma-separated SCRAM message starting
 * at *p: its one-letter *key, the value (into the message) and its length;
 * *p moves past the comma. 0, or -1 when malformed (a trailing comma too). */
int kz_scram_attr(const char **p, const char *end, char *key, const char **val, size_t *vlen);

#endif
