/*
 * Fuzz targets for what a broker sends back during the proxy's own SASL
 * login: the SaslHandshake and SaslAuthenticate responses, and the SCRAM
 * server-first and server-final messages inside the latter. Built once per
 * target with -DKZ_FUZZ_TARGET=<name>, like fuzz_codec.c; fuzz_main.c
 * replays tests/fuzz/corpus/fuzz_<name> without libFuzzer.
 *
 * Message inputs: 2 bytes big-endian version (folded into the message's
 * range), then the body. SCRAM inputs: the whole message.
 */
#include "config.h"

#include "tests/fuzz/fuzz_msg.h"

#include "codec/kc_msg.h"
#include "meta-client/mc_sasl.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KZ_T_saslhandshake_resp 1
#define KZ_T_saslauthenticate_resp 2
#define KZ_T_scram_server_first 3
#define KZ_T_scram_server_final 4


#define KZ_FUZZ_SASL_MSG(fn, type, maxv) KZ_FUZZ_ROUNDTRIP(fn, type, 0, maxv)

#if KZ_TARGET == KZ_T_saslhandshake_resp
KZ_FUZZ_SASL_MSG(kc_saslhandshake_resp, kc_saslhandshake_resp, KC_SASLHANDSHAKE_MAX_VERSION)
#elif KZ_TARGET == KZ_T_saslauthenticate_resp
KZ_FUZZ_SASL_MSG(kc_saslauthenticate_resp, kc_saslauthenticate_resp, KC_SASLAUTHENTICATE_MAX_VERSION)
#elif KZ_TARGET == KZ_T_scram_server_first
static int kz_fuzz_one(const uint8_t *data, size_t size)
{
    mc_scram_server_first f;
    char err[256];
    if (mc_scram_parse_server_first(data, size, &f, err, sizeof(err)) == 0) {
        /* What parses lies inside the input and within the bounds. */
        if (f.nonce < (const char *)data || f.nonce + f.nonce_len > (const char *)data + size ||
            f.nonce_len == 0 || f.nonce_len > MC_SCRAM_NONCE_MAX || f.salt_len == 0 ||
            f.salt_len > MC_SCRAM_SALT_MAX || f.iterations < MC_SCRAM_ITER_MIN ||
            f.iterations > MC_SCRAM_ITER_MAX)
            abort();
    }
    return 0;
}
#elif KZ_TARGET == KZ_T_scram_server_final
static int kz_fuzz_one(const uint8_t *data, size_t size)
{
    mc_scram_server_final f;
    char err[256];
    if (mc_scram_parse_server_final(data, size, &f, err, sizeof(err)) == 0) {
        if (f.is_error ? strlen(f.error) >= sizeof(f.error) : (f.verifier_len == 0 || f.verifier_len > 64))
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
