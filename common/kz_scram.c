#include "config.h"

#include "common/kz_scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

static const EVP_MD *kz_md(int sha)
{
    return sha == 512 ? EVP_sha512() : sha == 256 ? EVP_sha256() : NULL;
}

size_t kz_sha_len(int sha)
{
    return sha == 512 ? 64 : sha == 256 ? 32 : 0;
}

char *kz_b64_encode(const uint8_t *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

static int kz_b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long kz_b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else {
                if (pad)
                    return -1; /* data after padding */
                if ((v[k] = kz_b64_val(s[i + k])) < 0)
                    return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t take = 3 - (size_t)pad;
        if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0))
            return -1; /* non-canonical: bits set past the data */
        if (o + take > cap)
            return -1;
        out[o++] = (uint8_t)(w >> 16);
        if (take > 1)
            out[o++] = (uint8_t)(w >> 8);
        if (take > 2)
            out[o++] = (uint8_t)w;
    }
    return (long)o;
}

int kz_hmac(int sha, const uint8_t *key, size_t kl, const void *d, size_t dl, uint8_t *out)
{
    unsigned int ol = 0;
    const EVP_MD *md = kz_md(sha);
    return md == NULL || HMAC(md, key, (int)kl, d, dl, out, &ol) == NULL ? -1 : 0;
}

int kz_hash(int sha, const void *d, size_t dl, uint8_t *out)
{
    unsigned int ol = 0;
    const EVP_MD *md = kz_md(sha);
    return md == NULL || EVP_Digest(d, dl, out, &ol, md, NULL) != 1 ? -1 : 0;
}

int kz_pbkdf2(int sha, const char *pw, size_t pwl, const uint8_t *salt, size_t sl, int iter, uint8_t *out,
              size_t outlen)
{
    const EVP_MD *md = kz_md(sha);
    return md == NULL || PKCS5_PBKDF2_HMAC(pw, (int)pwl, salt, (int)sl, iter, md, (int)outlen, out) != 1 ? -1 : 0;
}

int kz_scram_keys(int sha, const char *pw, size_t pwl, const uint8_t *salt, size_t sl, int iter,
                  uint8_t *client_key, uint8_t *stored_key, uint8_t *server_key)
{
    size_t hl = kz_sha_len(sha);
    uint8_t salted[KZ_SHA_MAX], ck[KZ_SHA_MAX];
    int rc = -1;
    if (hl == 0 || kz_pbkdf2(sha, pw, pwl, salt, sl, iter, salted, hl) != 0 ||
        kz_hmac(sha, salted, hl, "Client Key", 10, ck) != 0)
        goto out;
    if (stored_key && kz_hash(sha, ck, hl, stored_key) != 0)
        goto out;
    if (server_key && kz_hmac(sha, salted, hl, "Server Key", 10, server_key) != 0)
        goto out;
    if (client_key)
        memcpy(client_key, ck, hl);
    rc = 0;
out:
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(ck, sizeof(ck));
    return rc;
}

int kz_scram_attr(const char **p, const char *end, char *key, const char **val, size_t *vlen)
{
    const char *s = *p;
    if (end - s < 2 || s[1] != '=' || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return -1;
    *key = s[0];
    const char *v = s + 2;
    const char *c = memchr(v, ',', (size_t)(end - v));
    if (c != NULL && c + 1 == end)
        return -1; /* a trailing comma: an empty attribute */
    *val = v;
    *vlen = (size_t)((c ? c : end) - v);
    *p = c ? c + 1 : end;
    return 0;
}
