#include "config.h"

#include "codec/kc_msg.h"
#include "codec/kc_proto.h"

int kc_rd_finish(kc_rd *rd)
{
    if (rd->err == NULL && kc_rd_remain(rd) != 0)
        kc_rd_fail(rd, "garbage after message");
    return rd->err ? -1 : 0;
}

int kc_apiversions_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_apiversions_req *out)
{
    (void)a;
    const int flex = version >= 3;
    out->client_software_name = kc_str_c(NULL);
    out->client_software_version = kc_str_c(NULL);
    out->tags = (kc_tags){0};
    if (version >= 3) {
        out->client_software_name = kc_rd_string(rd, flex);
        out->client_software_version = kc_rd_string(rd, flex);
        kc_rd_tags(rd, &out->tags);
    }
    return kc_rd_finish(rd);
}

void kc_apiversions_req_encode(kc_wr *w, int16_t version, const kc_apiversions_req *in)
{
    if (version >= 3) {
        kc_str empty = {"", 0};
        kc_wr_string(w, in->client_software_name.len >= 0 ? in->client_software_name : empty, 1);
        kc_wr_string(w, in->client_software_version.len >= 0 ? in->client_software_version : empty,
                     1);
        kc_wr_tags(w, &in->tags);
    }
}

int kc_apiversions_resp_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_apiversions_resp *out)
{
    const int flex = version >= 3;
    *out = (kc_apiversions_resp){0};
    out->error_code = kc_rd_i16(rd);
    int32_t n = kc_rd_arraylen(rd, flex, 0, flex ? 7 : 6);
    if (rd->err)
        return -1;
    out->api_keys = kc_arena_calloc(a, (size_t)n, sizeof(*out->api_keys));
    if (out->api_keys == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->napi_keys = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_apiversions_key *k = &out->api_keys[i];
        k->api_key = kc_rd_i16(rd);
        k->min_version = kc_rd_i16(rd);
        k->max_version = kc_rd_i16(rd);
        if (flex)
            kc_rd_tags(rd, &k->tags);
    }
    if (version >= 1)
        out->throttle_time_ms = kc_rd_i32(rd);
    if (flex)
        kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_apiversions_resp_encode(kc_wr *w, int16_t version, const kc_apiversions_resp *in)
{
    const int flex = version >= 3;
    kc_wr_i16(w, in->error_code);
    kc_wr_arraylen(w, in->napi_keys, flex);
    for (int32_t i = 0; i < in->napi_keys; i++) {
        const kc_apiversions_key *k = &in->api_keys[i];
        kc_wr_i16(w, k->api_key);
        kc_wr_i16(w, k->min_version);
        kc_wr_i16(w, k->max_version);
        if (flex)
            kc_wr_tags(w, &k->tags);
    }
    if (version >= 1)
        kc_wr_i32(w, in->throttle_time_ms);
    if (flex)
        kc_wr_tags(w, &in->tags);
}
