/*
 * Fuzz targets for what a client sends the proxy during its SASL login
 * (client_sasl, proxy/px_sasl.c): the SaslHandshake and SaslAuthenticate
 * requests, and the SCRAM client-first and client-final messages inside the
 * latter. Built once per target with -DKZ_FUZZ_TARGET=<name>, like
 * fuzz_sasl.c; fuzz_main.c replays tests/fuzz/corpus/fuzz_<name> without
 * libFuzzer.
 *
 * Message inputs: 2 bytes big-endian version (folded into the message's
 * range), then the body. SCRAM inputs: the whole message.
 */
#include "config.h"

#include "tests/fuzz/fuzz_msg.h"

#include "codec/kc_msg.h"
#include "proxy/px_sasl.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KZ_T_saslhandshake_req 1
#define KZ_T_saslauthenticate_req 2
#define KZ_T_scram_client_first 3
#define KZ_T_scram_client_final 4


#define KZ_FUZZ_SASL_MSG(fn, type, maxv) KZ_FUZZ_ROUNDTRIP(fn, type, 0, maxv)

/* The pointer [p, p + n) lies inside [data, data + size). */
#define KZ_INSIDE(p, n) ((const uint8_t *)(p) >= data && (const uint8_t *)(p) + (n) <= data + size)

#if KZ_TARGET == KZ_T_saslhandshake_req
KZ_FUZZ_SASL_MSG(kc_saslhandshake_req, kc_saslhandshake_req, KC_SASLHANDSHAKE_MAX_VERSION)
#elif KZ_TARGET == KZ_T_saslauthenticate_req
KZ_FUZZ_SASL_MSG(kc_saslauthenticate_req, kc_saslauthenticate_req, KC_SASLAUTHENTICATE_MAX_VERSION)
#elif KZ_TARGET == KZ_T_scram_client_first
static int kz_fuzz_one(const uint8_t *data, size_t size)
{
    px_scram_client_first f;
    char why[256];
    if (px_scram_parse_client_first(data, size, &f, why, sizeof(why)) == 0) {
        /* What parses lies inside the input and within the bounds. */
        size_t ul = strnlen(f.user, sizeof(f.user));
        if (ul == 0 || ul > PX_SASL_USER_MAX || f.nonce_len == 0 || f.nonce_len > PX_SCRAM_NONCE_MAX ||
            !KZ_INSIDE(f.nonce, f.nonce_len) || !KZ_INSIDE(f.bare, f.bare_len) ||
            f.bare != (const char *)data + 3 || memchr(f.nonce, ',', f.nonce_len) != NULL)
            abort();
    }
    return 0;
}
#elif KZ_TARGET == KZ_T_scram_client_final
static int kz_fuzz_one(const uint8_t *data, size_t size)
{
    px_scram_client_final f;
    char why[256];
    if (px_scram_parse_client_final(data, size, &f, why, sizeof(why)) == 0) {
        if (f.nonce_len == 0 || f.nonce_len > 2 * PX_SCRAM_NONCE_MAX || !KZ_INSIDE(f.nonce, f.nonce_len) ||
            f.proof_len == 0 || f.proof_len > sizeof(f.proof) || f.without_proof_len + 3 >= size ||
            memcmp(data + f.without_proof_len, ",p=", 3) != 0)
            abort();
    }
    return 0;
}
#else
#error "unknown KZ_FUZZ_TARGET"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return kz_fuzz_one(data, size);
}
