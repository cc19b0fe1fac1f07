/*
 * Private to proxy/px_sasl.c (mechanisms, credentials, sessions) and
 * proxy/px_sasl_gate.c (SaslHandshake / SaslAuthenticate on a client
 * connection): the loaded users and a login in progress.
 */
#ifndef PX_SASL_INT_H
#define PX_SASL_INT_H

#include "proxy/px_sasl.h"

#include "common/kz_scram.h"

#include <stddef.h>
#include <stdint.h>

#define PX_PLAIN_HASH_LEN 64 /* PBKDF2-HMAC-SHA-512 */
#define PX_SALT_MAX 128

typedef struct px_sasl_cred {
    int present;
    uint8_t salt[PX_SALT_MAX];
    size_t salt_len;
    int iterations;
    uint8_t stored_key[KZ_SHA_MAX]; /* SCRAM; PLAIN: the PBKDF2 hash */
    uint8_t server_key[KZ_SHA_MAX];
} px_sasl_cred;

typedef struct px_sasl_user {
    char *name;
    px_sasl_cred cred[PX_MECH_N];
} px_sasl_user;

/* px_sasl_cache.c: verified PLAIN logins, bounded; no password kept. */
typedef struct px_plain_cache px_plain_cache;
px_plain_cache *px_plain_cache_new(void);
void px_plain_cache_free(px_plain_cache *pc);
/* 1 when user's password pw was verified against hash (the credential's
 * PLAIN hash) before: the login passes without PBKDF2. */
int px_plain_cache_hit(px_plain_cache *pc, const char *user, size_t ul, const char *pw, size_t pl,
                       const uint8_t *hash);
/* Remember a verified login. */
void px_plain_cache_put(px_plain_cache *pc, const char *user, size_t ul, const char *pw, size_t pl,
                        const uint8_t *hash);
void px_plain_cache_stats(const px_plain_cache *pc, uint64_t *hits, uint64_t *misses);

struct px_sasl {
    int enabled[PX_MECH_N];
    px_sasl_user *users;
    int nusers;
    uint8_t fake_key[32]; /* salts for unknown users: the same user gets the same salt */
    int fake_iter[PX_MECH_N]; /* unknown users' iteration counts: the file's first, as real users have */
    px_plain_cache *plain_cache; /* NULL: out of memory at load, every PLAIN login runs PBKDF2 */
};

enum { PX_SS_FIRST = 0, PX_SS_FINAL, PX_SS_DONE };

struct px_sasl_sess {
    const px_sasl *s;
    int mech;
    int state;
    char user[PX_SASL_USER_MAX + 1];
    const px_sasl_cred *cred; /* NULL: unknown user (the login goes on, then fails) */
    px_sasl_cred fake;
    char *server_nonce;  /* tests: set; else random */
    char *first_bare;    /* client-first-message-bare */
    char *server_first;
    char *nonce;         /* the combined nonce */
};

#endif
