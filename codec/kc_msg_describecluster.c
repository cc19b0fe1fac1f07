/*
 * DescribeCluster (ApiKey 60), v0-v1, flexible in every version
 * (DescribeClusterRequest.json, DescribeClusterResponse.json). v1 adds
 * EndpointType (KIP-919) to both directions.
 *
 * The proxy answers it itself from the virtual cluster; the response
 * decoder exists for tests and the fuzz target.
 */
#include "config.h"

#include "codec/kc_msg.h"

static kc_str kc_dc_nonnull(kc_str s)
{
    static const kc_str empty = {"", 0};
    return s.len >= 0 ? s : empty;
}

int kc_describecluster_req_decode(kc_rd *rd, int16_t version, kc_arena *a, kc_describecluster_req *out)
{
    (void)a;
    *out = (kc_describecluster_req){0};
    out->include_cluster_authorized_operations = kc_rd_bool(rd);
    out->endpoint_type = version >= 1 ? kc_rd_i8(rd) : 1;
    kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_describecluster_req_encode(kc_wr *w, int16_t version, const kc_describecluster_req *in)
{
    kc_wr_bool(w, in->include_cluster_authorized_operations);
    if (version >= 1)
        kc_wr_i8(w, in->endpoint_type);
    kc_wr_tags(w, &in->tags);
}

int kc_describecluster_resp_decode(kc_rd *rd, int16_t version, kc_arena *a,
                                   kc_describecluster_resp *out)
{
    *out = (kc_describecluster_resp){0};
    out->throttle_time_ms = kc_rd_i32(rd);
    out->error_code = kc_rd_i16(rd);
    out->error_message = kc_rd_nstring(rd, 1);
    out->endpoint_type = version >= 1 ? kc_rd_i8(rd) : 1;
    out->cluster_id = kc_rd_string(rd, 1);
    out->controller_id = kc_rd_i32(rd);
    /* BrokerId, Host, Port, Rack, tags: 4+1+4+1+1 */
    int32_t n = kc_rd_arraylen(rd, 1, 0, 11);
    if (rd->err)
        return -1;
    out->brokers = kc_arena_calloc(a, (size_t)n, sizeof(*out->brokers));
    if (out->brokers == NULL)
        return kc_rd_fail(rd, "out of memory");
    out->nbrokers = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_describecluster_broker *b = &out->brokers[i];
        b->broker_id = kc_rd_i32(rd);
        b->host = kc_rd_string(rd, 1);
        b->port = kc_rd_i32(rd);
        b->rack = kc_rd_nstring(rd, 1);
        kc_rd_tags(rd, &b->tags);
    }
    out->cluster_authorized_operations = kc_rd_i32(rd);
    kc_rd_tags(rd, &out->tags);
    return kc_rd_finish(rd);
}

void kc_describecluster_resp_encode(kc_wr *w, int16_t version, const kc_describecluster_resp *in)
{
    kc_wr_i32(w, in->throttle_time_ms);
    kc_wr_i16(w, in->error_code);
    kc_wr_string(w, in->error_message, 1);
    if (version >= 1)
        kc_wr_i8(w, in->endpoint_type);
    kc_wr_string(w, kc_dc_nonnull(in->cluster_id), 1);
    kc_wr_i32(w, in->controller_id);
    int32_t n = in->nbrokers < 0 ? 0 : in->nbrokers;
    kc_wr_arraylen(w, n, 1);
    for (int32_t i = 0; i < n; i++) {
        const kc_describecluster_broker *b = &in->brokers[i];
        kc_wr_i32(w, b->broker_id);
        kc_wr_string(w, kc_dc_nonnull(b->host), 1);
        kc_wr_i32(w, b->port);
        kc_wr_string(w, b->rack, 1);
        kc_wr_tags(w, &b->tags);
    }
    kc_wr_i32(w, in->cluster_authorized_operations);
    kc_wr_tags(w, &in->tags);
}
