/*
 * SaslHandshake (ApiKey 17), v0-v1, never flexible, and SaslAuthenticate
 * (ApiKey 36), v0-v2, flexible from v2 (SaslHandshakeRequest.json,
 * SaslHandshakeResponse.json, SaslAuthenticateRequest.json,
 * SaslAuthenticateResponse.json).
 */
#include "config.h"

#include "codec/kc_msg.h"

#define KC_SASLAUTH_FLEX 2

static kc_str kc_sasl_nonnull(kc_str s)
{
    static const kc_str empty = {"", 0};
    return s.len >= 0 ? s : empty;
}

static kc_bytes kc_sasl_bytes_nonnull(kc_bytes b)
{
    static const uint8_t none[1];
    return b.len >= 0 ? b : (kc_bytes){none, 0};
}

/* ---------------- SaslHandshake ---------------- */

int kc_saslhandshake_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_saslhandshake_req *out)
{
    (void)version;
    (void)a;
    out->mechanism = kc_rd_string(rd, 0);
    return kc_rd_finish(rd);
}

void kc_saslhandshake_req_encode(kc_wr *w, int16_t version, const kc_saslhandshake_req *in)
{
    (void)version;
    kc_wr_string(w, kc_sasl_nonnull(in->mechanism), 0);
}

int kc_saslhandshake_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_saslhandshake_resp *out)
{
    (void)version;
    *out = (kc_saslhandshake_resp){0};
    out->error_code = kc_rd_i16(rd);
    /* Each mechanism is at least its 2-byte length. */
    int32_t n = kc_rd_arraylen(rd, 0, 0, 2);
    if (rd->err)
        return -1;
    out->mechanisms = kc_arena_calloc(a, (size_t)n, sizeof(*out->mechanisms));
    if (out->mechanisms == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->nmechanisms = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        out->mechanisms[i] = kc_rd_string(rd, 0);
    return kc_rd_finish(rd);
}

void kc_saslhandshake_resp_encode(kc_wr *w, int16_t version, const kc_saslhandshake_resp *in)
{
    (void)version;
    kc_wr_i16(w, in->error_code);
    int32_t n = in->nmechanisms < 0 ? 0 : in->nmechanisms;
    kc_wr_arraylen(w, n, 0);
    for (int32_t i = 0; i < n; i++)
        kc_wr_string(w, kc_sasl_nonnull(in->mechanisms[i]), 0);
}

/* ---------------- SaslAuthenticate ---------------- */

int kc_saslauthenticate_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_saslauthenticate_req *out)
{
    const int flex = version >= KC_SASLAUTH_FLEX;
    (void)a;
    *out = (kc_saslauthenticate_req){0};
    out->auth_bytes = kc_rd_bytes(rd, flex);
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_saslauthenticate_req_encode(kc_wr *w, int16_t version, const kc_saslauthenticate_req *in)
{
    const int flex = version >= KC_SASLAUTH_FLEX;
    kc_wr_bytes(w, kc_sasl_bytes_nonnull(in->auth_bytes), flex);
    if (flex)
        kc_wr_tags(w, &in->tags);
}

int kc_saslauthenticate_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_saslauthenticate_resp *out)
{
    const int flex = version >= KC_SASLAUTH_FLEX;
    (void)a;
    *out = (kc_saslauthenticate_resp){0};
    out->error_code = kc_rd_i16(rd);
    out->error_message = kc_rd_nstring(rd, flex);
    out->auth_bytes = kc_rd_bytes(rd, flex);
    if (version >= 1)
        out->session_lifetime_ms = kc_rd_i64(rd);
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_saslauthenticate_resp_encode(kc_wr *w, int16_t version, const kc_saslauthenticate_resp *in)
{
    const int flex = version >= KC_SASLAUTH_FLEX;
    kc_wr_i16(w, in->error_code);
    kc_wr_string(w, in->error_message, flex);
    kc_wr_bytes(w, kc_sasl_bytes_nonnull(in->auth_bytes), flex);
    if (version >= 1)
        kc_wr_i64(w, in->session_lifetime_ms);
    if (flex)
        kc_wr_tags(w, &in->tags);
}
