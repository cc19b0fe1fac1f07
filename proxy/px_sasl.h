/*
 * px_sasl: SASL termination for clients (issue 14, item 2). The proxy is the
 * SASL server: SaslHandshake v1 then SaslAuthenticate v0-v2 carrying PLAIN
 * (RFC 4616) or SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677) tokens.
 * Broker connections keep the proxy's own identity (backend.sasl).
 *
 * Users come from a JSON credentials file holding only derived secrets:
 *   {"users": [{"name": "alice",
 *               "SCRAM-SHA-512": {"salt": B64, "iterations": N, "stored_key": B64, "server_key": B64},
 *               "SCRAM-SHA-256": {...same...},
 *               "PLAIN": {"salt": B64, "iterations": N, "hash": B64}}]}
 * where PLAIN's hash is PBKDF2-HMAC-SHA-512(password, salt, iterations), 64
 * bytes. `kzproxy --scram-credential USER` prints one such entry.
 *
 * Nothing here logs or returns a password, proof or key; the "why" strings
 * of failures name the user and the reason for the proxy's log only; the
 * client always gets the same message.
 */
#ifndef PX_SASL_H
#define PX_SASL_H

#include "proxy/px_config.h"

#include <stddef.h>
#include <stdint.h>

struct px_req;
struct px_client;
struct event;

enum { PX_MECH_PLAIN = 0, PX_MECH_SCRAM_SHA_256, PX_MECH_SCRAM_SHA_512, PX_MECH_N };

#define PX_SASL_USER_MAX 255      /* bytes of a user name */
#define PX_SCRAM_NONCE_MAX 512    /* characters of a client nonce */
#define PX_SCRAM_CLIENT_MSG_MAX 2048
#define PX_SASL_ITER_MIN 4096
#define PX_SASL_ITER_MAX 1000000
/* Kafka's message for every failed login (it does not say why). */
#define PX_SASL_FAILED_MSG "Authentication failed during authentication due to invalid credentials with SASL mechanism %s"

/* The server's configuration and users, shared read-only by connections. */
typedef struct px_sasl px_sasl;

/* Load cfg's credentials file. NULL with errstr naming the file, the user
 * and the key at fault. */
px_sasl *px_sasl_new(const px_client_sasl *cfg, char *errstr, size_t errstr_size);
/* Same with the users file's text (tests). */
px_sasl *px_sasl_new_text(const px_client_sasl *cfg, const char *json, char *errstr, size_t errstr_size);
void px_sasl_free(px_sasl *s);
/* The mechanism for a Kafka name when it is enabled, else -1. */
int px_sasl_mech_enabled(const px_sasl *s, const char *name, size_t len);
const char *px_sasl_mech_name(int mech);
int px_sasl_nusers(const px_sasl *s);

/*
 * One login on one connection. px_sasl_sess_step takes each client token in
 * turn. Returns 1 with *out (malloc'd, caller frees) to send back and more to
 * come; 0 when the client is authenticated (*out: the last server message,
 * possibly empty); -1 when the login failed, with why (for the log only).
 * The user name (for the log and, once authenticated, the principal) is
 * px_sasl_sess_user's, "" before the client named one.
 */
typedef struct px_sasl_sess px_sasl_sess;
px_sasl_sess *px_sasl_sess_new(const px_sasl *s, int mech);
int px_sasl_sess_step(px_sasl_sess *ss, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
                      char *why, size_t why_size);
const char *px_sasl_sess_user(const px_sasl_sess *ss);
/* Tests only: the server's part of the nonce instead of a random one. */
int px_sasl_sess_set_nonce(px_sasl_sess *ss, const char *server_nonce);
void px_sasl_sess_free(px_sasl_sess *ss);

/* ---- SCRAM client message parsers (RFC 5802 section 7), exposed for the fuzzer ---- */

typedef struct px_scram_client_first {
    char user[PX_SASL_USER_MAX + 1]; /* saslname decoded (=2C, =3D) */
    const char *nonce;               /* into the message */
    size_t nonce_len;
    const char *bare;                /* client-first-message-bare, into the message */
    size_t bare_len;
} px_scram_client_first;

/* "n,,n=<user>,r=<nonce>[,ext]": gs2 "n,," only (no channel binding, no
 * authzid), no mandatory extension, no delegation token. 0, or -1 with why. */
int px_scram_parse_client_first(const uint8_t *p, size_t n, px_scram_client_first *out, char *why,
                                size_t why_size);

typedef struct px_scram_client_final {
    const char *nonce;           /* into the message */
    size_t nonce_len;
    size_t without_proof_len;    /* client-final-message-without-proof: the first bytes */
    uint8_t proof[64];
    size_t proof_len;
} px_scram_client_final;

/* "c=biws,r=<nonce>[,ext],p=<proof>". 0, or -1 with why. */
int px_scram_parse_client_final(const uint8_t *p, size_t n, px_scram_client_final *out, char *why,
                                size_t why_size);

/* A credentials-file entry for user and password: one line of JSON with
 * SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN entries, fresh random salts,
 * iterations rounds. malloc'd, or NULL with errstr. */
char *px_sasl_credential_entry(const char *user, const char *password, size_t password_len, int iterations,
                               char *errstr, size_t errstr_size);

/* ---- per-connection state (a field of px_client) and the dispatch gate ---- */

enum { PX_AUTH_START = 0, PX_AUTH_HANDSHAKEN, PX_AUTH_OK, PX_AUTH_FAILED };

typedef struct px_client_auth {
    int state;               /* PX_AUTH_* */
    int reauth;              /* a KIP-368 re-authentication is running */
    int handshake_version;
    px_sasl_sess *sess;
    int64_t expires_ms;      /* session end (monotonic ms), 0: none */
    int close_after_flush;   /* close once the queued responses are written */
    struct event *delay;     /* holds a failed login's answer for failure_delay_ms */
    struct px_req *delayed;
    struct evbuffer *delayed_body;
} px_client_auth;

/* Called by px_dispatch for every request when client SASL is on: serves
 * SaslHandshake and SaslAuthenticate, lets through ApiVersions, the peer
 * RPC and (once authenticated) the rest. Returns 1 when it took the request
 * (answered, held or the connection closed), 0 to dispatch it as usual. */
int px_sasl_gate(struct px_req *rq, px_client_auth *auth);
/* After a SaslHandshake v0 the client sends bare SASL tokens ([size][token],
 * no Kafka header) and gets bare tokens back: one token in. 1 with *out to
 * send back and more to come; 0 authenticated (*out, possibly empty, to
 * send); -1 failed (logged, counted: close the connection, Kafka sends
 * nothing). *out malloc'd. */
int px_sasl_raw_token(struct px_client *cl, px_client_auth *auth, const uint8_t *in, size_t n, uint8_t **out,
                      size_t *out_len);
/* Free what auth holds (connection teardown). */
void px_client_auth_free(px_client_auth *auth);

#endif
