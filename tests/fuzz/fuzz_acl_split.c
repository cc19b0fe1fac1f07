/*
 * Fuzz target for the per-topic and per-resource ACL decisions on the
 * requests kzproxy splits (proxy/px_acl_split.c: CreateTopics, DeleteTopics,
 * CreatePartitions, OffsetCommit, OffsetFetch, TxnOffsetCommit, OffsetDelete,
 * with the backend's response
 * merged) and the answers it builds for the ACL APIs and config requests
 * (px_acl_pass_eval, px_acl_config_code).
 *
 * Input: byte 0 picks the ApiKey from the table below, bytes 1-2 the
 * version (big-endian, folded into the API's range), byte 3 which checks
 * deny (bit n: kz_acl_res n, so bit 0 topics, 1 groups, 3 the cluster), bytes 4-5 the request
 * body's length n (big-endian, cut to what is there), then n bytes of
 * request body and the rest as the backend's response body. fuzz_main.c
 * replays tests/fuzz/corpus/fuzz_acl_split without libFuzzer.
 */
#include "config.h"

#include "codec/kc_proto.h"
#include "proxy/px_acl.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    int16_t key, maxv;
} kz_apis[] = {
    {KC_API_CREATETOPICS, 7}, {KC_API_DELETETOPICS, 6}, {KC_API_CREATEPARTITIONS, 3},
    {KC_API_OFFSETCOMMIT, 9}, {KC_API_OFFSETFETCH, 7},  {29, 3}, /* DescribeAcls */
    {30, 3},                  {31, 3},                  {KC_API_DESCRIBECONFIGS, 4},
    {33, 2},                  {44, 1},                  {KC_API_TXNOFFSETCOMMIT, 4},
    {47, 0}, /* OffsetDelete */
};

static int kz_deny_mask;

static int kz_check(void *arg, kz_acl_op op, kz_acl_res res, kc_str name)
{
    (void)arg;
    (void)op;
    if (name.len > 0 && name.p == NULL)
        abort();
    return !(kz_deny_mask & (1 << res));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6)
        return 0;
    size_t n = sizeof(kz_apis) / sizeof(kz_apis[0]);
    int16_t key = kz_apis[data[0] % n].key;
    int16_t version = (int16_t)(((data[1] << 8) | data[2]) % (kz_apis[data[0] % n].maxv + 1));
    kz_deny_mask = data[3];
    size_t req_len = (size_t)((data[4] << 8) | data[5]);
    const uint8_t *req = data + 6;
    if (req_len > size - 6)
        req_len = size - 6;
    const uint8_t *resp = req + req_len;
    size_t resp_len = size - 6 - req_len;
    px_acl_pass_ctx ctx = {kz_check, kz_check, NULL};
    struct evbuffer *out = evbuffer_new();
    if (out == NULL)
        return 0;
    const char *why = NULL;
    size_t err_off = 0;
    if (!px_acl_split_applies(key)) {
        px_acl_verdict v = px_acl_pass_eval(&ctx, key, version, req, req_len, out, &why, &err_off);
        if ((v == PX_ACL_ANSWER) != (evbuffer_get_length(out) != 0))
            abort();
        if (v == PX_ACL_MALFORMED && (why == NULL || err_off > req_len))
            abort();
        if (req_len > 0)
            (void)px_acl_config_code(&ctx, key, (int8_t)req[0], kc_str_c(NULL));
        evbuffer_free(out);
        return 0;
    }
    px_acl_split s;
    if (px_acl_split_parse(&s, &ctx, key, version, req, req_len, &why, &err_off) != 0) {
        if (why == NULL || err_off > req_len || s.e != NULL)
            abort();
        evbuffer_free(out);
        return 0;
    }
    if (s.ndenied > s.n || s.tail_off > req_len || s.arr_off > s.tail_off)
        abort();
    if (px_acl_split_request(&s, req, req_len, out) != 0)
        abort();
    /* Nothing denied: the same bytes (px_pass.c then forwards the original
     * frame); a count sent as an over-long varint is re-encoded shorter. */
    if (s.ndenied == 0 && !s.all_topics && evbuffer_get_length(out) > req_len)
        abort();
    evbuffer_drain(out, evbuffer_get_length(out));
    if (px_acl_split_response(&s, &ctx, req, NULL, 0, out, &why) != 0)
        abort(); /* kzproxy's own answer always encodes */
    evbuffer_drain(out, evbuffer_get_length(out));
    if (px_acl_split_response(&s, &ctx, req, resp, resp_len, out, &why) != 0 && why == NULL)
        abort();
    px_acl_split_free(&s);
    evbuffer_free(out);
    return 0;
}
