/*
 * The PLAIN login cache (px_sasl.c). Verifying a PLAIN password costs one
 * PBKDF2-HMAC-SHA-512 of the credential's iteration count (about 8-10 ms of
 * CPU at the default 8192 on a 2020s x86 core), on the event loop; clients
 * that reconnect often (or open many connections) with the same password
 * would stall every other connection of the proxy for that long each time.
 *
 * So a successful PLAIN login is remembered: not the password, but a key
 * derived from the user name and password with HMAC-SHA-256 under a random
 * per-process secret (never written anywhere), together with the
 * credential's hash it was verified against. A later login whose derived key
 * and current credential hash both match (constant-time compares) is
 * accepted without PBKDF2. Failed logins are never cached, so a wrong
 * password always costs the full PBKDF2 (and failure_delay_ms). The table is
 * bounded: PX_PLAIN_CACHE_SLOTS entries, a user's slot chosen by a keyed
 * hash of its name, a newer login replacing the slot's entry. A changed
 * credential (file reloaded) no longer matches its entries; the cache goes
 * with its px_sasl (a reload makes a new one).
 */
#include "config.h"

#include "proxy/px_sasl_int.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define PX_PLAIN_CACHE_SLOTS 1024
#define PX_PLAIN_DK_LEN 32

typedef struct px_plain_entry {
    int used;
    uint8_t dk[PX_PLAIN_DK_LEN];       /* HMAC-SHA-256(secret, len(user) user password) */
    uint8_t hash[PX_PLAIN_HASH_LEN];   /* the credential verified against */
} px_plain_entry;

struct px_plain_cache {
    uint8_t secret[32];
    px_plain_entry slot[PX_PLAIN_CACHE_SLOTS];
    uint64_t hits, misses;
};

px_plain_cache *px_plain_cache_new(void)
{
    px_plain_cache *pc = calloc(1, sizeof(*pc));
    if (pc != NULL && RAND_bytes(pc->secret, sizeof(pc->secret)) != 1) {
        free(pc);
        return NULL;
    }
    return pc;
}

void px_plain_cache_free(px_plain_cache *pc)
{
    if (pc == NULL)
        return;
    OPENSSL_cleanse(pc, sizeof(*pc));
    free(pc);
}

/* The slot of user and the derived key of (user, password); -1 when the
 * user name or password is too long (never cached). */
static int px_plain_key(const px_plain_cache *pc, const char *user, size_t ul, const char *pw, size_t pl,
                        uint8_t dk[PX_PLAIN_DK_LEN])
{
    uint8_t buf[1 + PX_SASL_USER_MAX + 1024], h[32];
    if (ul > PX_SASL_USER_MAX || pl > 1024)
        return -1;
    buf[0] = (uint8_t)ul;
    memcpy(buf + 1, user, ul);
    if (kz_hmac(256, pc->secret, sizeof(pc->secret), buf, 1 + ul, h) != 0)
        return -1;
    int slot = (int)(((uint32_t)h[0] << 8 | h[1]) % PX_PLAIN_CACHE_SLOTS);
    memcpy(buf + 1 + ul, pw, pl);
    int rc = kz_hmac(256, pc->secret, sizeof(pc->secret), buf, 1 + ul + pl, dk);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc == 0 ? slot : -1;
}

int px_plain_cache_hit(px_plain_cache *pc, const char *user, size_t ul, const char *pw, size_t pl,
                       const uint8_t *hash)
{
    uint8_t dk[PX_PLAIN_DK_LEN];
    int slot = pc ? px_plain_key(pc, user, ul, pw, pl, dk) : -1;
    int hit = 0;
    if (slot >= 0) {
        const px_plain_entry *e = &pc->slot[slot];
        hit = e->used && CRYPTO_memcmp(e->dk, dk, sizeof(dk)) == 0 &&
              CRYPTO_memcmp(e->hash, hash, PX_PLAIN_HASH_LEN) == 0;
        if (hit)
            pc->hits++;
        else
            pc->misses++;
    }
    OPENSSL_cleanse(dk, sizeof(dk));
    return hit;
}

void px_plain_cache_put(px_plain_cache *pc, const char *user, size_t ul, const char *pw, size_t pl,
                        const uint8_t *hash)
{
    uint8_t dk[PX_PLAIN_DK_LEN];
    int slot = pc ? px_plain_key(pc, user, ul, pw, pl, dk) : -1;
    if (slot >= 0) {
        px_plain_entry *e = &pc->slot[slot];
        e->used = 1;
        memcpy(e->dk, dk, sizeof(dk));
        memcpy(e->hash, hash, PX_PLAIN_HASH_LEN);
    }
    OPENSSL_cleanse(dk, sizeof(dk));
}

void px_plain_cache_stats(const px_plain_cache *pc, uint64_t *hits, uint64_t *misses)
{
    *hits = pc ? pc->hits : 0;
    *misses = pc ? pc->misses : 0;
}
