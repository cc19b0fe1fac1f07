/*
 * mc_sasl: the proxy's own SASL login to brokers (PLAIN, SCRAM-SHA-256,
 * SCRAM-SHA-512, OAUTHBEARER), as the mechanism side of a SaslAuthenticate
 * exchange. No I/O here except reading secret files: mc_conn carries the
 * bytes in SaslHandshake / SaslAuthenticate requests and feeds the broker's
 * answers back in.
 *
 * Secrets (passwords, tokens, SCRAM keys) never reach a log line or an error
 * string; they are wiped (OPENSSL_cleanse) when freed. Text the broker sends
 * back (its error message, a SCRAM "e=" value) is cut to printable ASCII
 * before it is shown.
 */
#ifndef MC_SASL_H
#define MC_SASL_H

#include <stddef.h>
#include <stdint.h>

enum {
    MC_SASL_NONE = 0,
    MC_SASL_PLAIN,
    MC_SASL_SCRAM_SHA_256,
    MC_SASL_SCRAM_SHA_512,
    MC_SASL_OAUTHBEARER,
};

/* The mechanism for a Kafka mechanism name ("SCRAM-SHA-512"), or -1. */
int mc_sasl_mech_parse(const char *name);
/* The Kafka name of a mechanism ("PLAIN", ...). */
const char *mc_sasl_mech_name(int mech);

/* What the configuration says. Strings are borrowed for mc_sasl_new's call. */
typedef struct mc_sasl_config {
    int mechanism;             /* MC_SASL_* */
    const char *username;      /* PLAIN, SCRAM */
    const char *password;      /* PLAIN, SCRAM: the password, or NULL with password_file */
    const char *password_file; /* read once, by mc_sasl_new (trailing newlines dropped) */
    const char *token;         /* OAUTHBEARER: a static token, or NULL with token_file */
    const char *token_file;    /* OAUTHBEARER: re-read on every new connection (rotation) */
} mc_sasl_config;

/* Loaded credentials, shared read-only by every broker connection. */
typedef struct mc_sasl mc_sasl;

/* Copy the config and read password_file (a token_file is only checked to be
 * readable now). NULL with errstr naming the file or key on failure. */
mc_sasl *mc_sasl_new(const mc_sasl_config *cfg, char *errstr, size_t errstr_size);
void mc_sasl_free(mc_sasl *s);
int mc_sasl_mechanism(const mc_sasl *s);

/*
 * One authentication on one connection. mc_sasl_session_step is called
 * first with no input (in NULL), then once with the auth_bytes of each
 * successful SaslAuthenticate response. Returns 1 with *out (malloc'd, the
 * caller frees it with mc_sasl_wipe_free) to send next; 0 when the
 * mechanism is complete (the broker is authenticated where the mechanism
 * can tell: SCRAM's server signature); -1 with errstr on failure.
 */
typedef struct mc_sasl_session mc_sasl_session;
/* NULL with errstr (an unreadable token_file, out of memory). */
mc_sasl_session *mc_sasl_session_new(const mc_sasl *s, char *errstr, size_t errstr_size);
int mc_sasl_session_step(mc_sasl_session *ss, const uint8_t *in, size_t in_len, uint8_t **out,
                         size_t *out_len, char *errstr, size_t errstr_size);
void mc_sasl_session_free(mc_sasl_session *ss);
/* Tests only: use this SCRAM client nonce instead of a random one (copied;
 * call before the first step). */
int mc_sasl_session_set_nonce(mc_sasl_session *ss, const char *nonce);
/* Wipe and free a message from mc_sasl_session_step. */
void mc_sasl_wipe_free(uint8_t *p, size_t n);

/* Copy at most len bytes of untrusted text into dst (size n > 0) as printable
 * ASCII ('?' for the rest, "..." when cut). Returns dst. */
char *mc_sasl_printable(char *dst, size_t n, const void *src, size_t len);

/* ---- SCRAM message parsers (RFC 5802 section 7), exposed for the fuzzer ---- */

#define MC_SCRAM_NONCE_MAX 512   /* characters of a nonce accepted */
#define MC_SCRAM_SALT_MAX 384    /* bytes of a decoded salt accepted */
#define MC_SCRAM_ITER_MIN 4096   /* Kafka's own minimum */
#define MC_SCRAM_ITER_MAX 65536  /* a broker cannot make the proxy burn more */
#define MC_SCRAM_MSG_MAX 2048    /* bytes of a server message accepted */

typedef struct mc_scram_server_first {
    const char *nonce; /* into the message */
    size_t nonce_len;
    uint8_t salt[MC_SCRAM_SALT_MAX];
    size_t salt_len;
    int iterations;
} mc_scram_server_first;

/* "r=<nonce>,s=<base64 salt>,i=<count>[,ext...]". 0, or -1 with errstr. */
int mc_scram_parse_server_first(const uint8_t *p, size_t n, mc_scram_server_first *out, char *errstr,
                                size_t errstr_size);

typedef struct mc_scram_server_final {
    int is_error;          /* "e=": error holds the broker's reason (printable) */
    char error[96];
    uint8_t verifier[64];  /* "v=": the decoded server signature */
    size_t verifier_len;
} mc_scram_server_final;

/* "v=<base64>[,ext...]" or "e=<error>[,ext...]". 0, or -1 with errstr. */
int mc_scram_parse_server_final(const uint8_t *p, size_t n, mc_scram_server_final *out, char *errstr,
                                size_t errstr_size);

#endif
