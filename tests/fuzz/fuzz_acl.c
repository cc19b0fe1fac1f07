/*
 * Fuzz target for the ACL decision on forwarded requests
 * (proxy/px_acl_pass.c: px_acl_pass_eval), which reads the group ids,
 * transactional ids and topics of group, transactional and admin request
 * bodies straight off the wire and builds error answers from them.
 *
 * Input: byte 0 picks the ApiKey from the table below, bytes 1-2 the
 * version (big-endian, folded into the API's range), byte 3 which checks
 * deny (bit n: kz_acl_res n, so bit 0 topics, 1 groups, 2 transactional
 * ids, 3 the cluster), then
 * the body. fuzz_main.c replays tests/fuzz/corpus/fuzz_acl without
 * libFuzzer.
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
    {KC_API_OFFSETCOMMIT, 9},       {KC_API_OFFSETFETCH, 7},          {KC_API_JOINGROUP, 9},
    {KC_API_HEARTBEAT, 4},          {KC_API_LEAVEGROUP, 5},           {KC_API_SYNCGROUP, 5},
    {KC_API_DESCRIBEGROUPS, 5},     {KC_API_DELETEGROUPS, 2},         {KC_API_TXNOFFSETCOMMIT, 4},
    {47, 0},                        {KC_API_CONSUMERGROUPHEARTBEAT, 1}, {KC_API_CONSUMERGROUPDESCRIBE, 1},
    {KC_API_INITPRODUCERID, 5},     {KC_API_ADDPARTITIONSTOTXN, 3},   {KC_API_ADDOFFSETSTOTXN, 4},
    {KC_API_ENDTXN, 4},             {KC_API_CREATETOPICS, 7},         {KC_API_DESCRIBECONFIGS, 4},
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
    if (size < 4)
        return 0;
    size_t n = sizeof(kz_apis) / sizeof(kz_apis[0]);
    int16_t key = kz_apis[data[0] % n].key;
    int16_t version = (int16_t)(((data[1] << 8) | data[2]) % (kz_apis[data[0] % n].maxv + 1));
    kz_deny_mask = data[3];
    px_acl_pass_ctx ctx = {kz_check, kz_check, NULL};
    struct evbuffer *out = evbuffer_new();
    if (out == NULL)
        return 0;
    const char *why = NULL;
    size_t err_off = 0;
    px_acl_verdict v = px_acl_pass_eval(&ctx, key, version, data + 4, size - 4, out, &why, &err_off);
    if (v != PX_ACL_ANSWER && evbuffer_get_length(out) != 0)
        abort(); /* only an answer leaves bytes */
    if (v == PX_ACL_ANSWER && evbuffer_get_length(out) == 0)
        abort();
    if (v == PX_ACL_MALFORMED && (why == NULL || err_off > size - 4))
        abort();
    if (v == PX_ACL_FORWARD && kz_deny_mask == 0 && why != NULL)
        abort();
    evbuffer_free(out);
    return 0;
}
