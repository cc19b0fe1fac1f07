/*
 * Fuzz targets for the codec's decoders. This file is built once per decoder
 * with -DKZ_FUZZ_TARGET=<name>; tests/fuzz/fuzz_main.c replays a corpus
 * without libFuzzer so `make check` runs every committed input.
 *
 * Input layout for message decoders: 2 bytes big-endian version, then the
 * body. The version is folded into the decoder's supported range so that
 * every input exercises some version.
 */
#include "config.h"

#include "codec/kc_crc32c.h"
#include "codec/kc_msg.h"
#include "codec/kc_peer.h"
#include "codec/kc_proto.h"
#include "router/rt_router.h"
#include "tests/fuzz/fuzz_msg.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KZ_FUZZ_MSG(fn, type, apikey)                                                              \
    KZ_FUZZ_ROUNDTRIP(fn, type, kc_api_lookup(apikey)->min_version, kc_api_lookup(apikey)->max_version)

#include <event2/buffer.h>

#define KZ_T_req_header 1
#define KZ_T_apiversions_req 2
#define KZ_T_apiversions_resp 3
#define KZ_T_metadata_req 4
#define KZ_T_metadata_resp 5
#define KZ_T_produce_req 6
#define KZ_T_produce_resp 7
#define KZ_T_fetch_req 8
#define KZ_T_fetch_resp 9
#define KZ_T_listoffsets_req 10
#define KZ_T_listoffsets_resp 11
#define KZ_T_findcoordinator_req 12
#define KZ_T_findcoordinator_resp 13
#define KZ_T_record_batch 14
#define KZ_T_listgroups_req 15
#define KZ_T_listgroups_resp 16
#define KZ_T_deleterecords_req 17
#define KZ_T_deleterecords_resp 18
#define KZ_T_offsetforleaderepoch_req 19
#define KZ_T_offsetforleaderepoch_resp 20
#define KZ_T_describecluster_req 21
#define KZ_T_describecluster_resp 22
#define KZ_T_peer_hello 23
#define KZ_T_wal_append_req 24
#define KZ_T_wal_append_resp 25


#if KZ_TARGET == KZ_T_req_header
static int kz_fuzz_one(const uint8_t *data, size_t size)
{
    kc_rd rd;
    kc_req_hdr h;
    kc_rd_init(&rd, data, size);
    (void)kc_req_hdr_decode(&rd, &h);
    return 0;
}
#elif KZ_TARGET == KZ_T_record_batch
static int kz_fuzz_one(const uint8_t *data, size_t size)
{
    kc_rd rd;
    size_t tail = 0;
    kc_bytes b = {data, (int32_t)(size > INT32_MAX ? INT32_MAX : size)};
    kc_rd_init(&rd, data, size);
    int n = kc_record_batches_validate(&b, size & 1, &rd, &tail);
    /* The CRC derived from the headers: whole batches whose CRCs all held
     * give the CRC of their bytes; anything else is refused or differs. */
    uint32_t derived;
    if (kc_record_batches_crc32c(data, size, &derived) == 0 && n >= 0 && tail == 0 &&
        derived != kc_crc32c(0, data, size))
        abort();
    return 0;
}
#elif KZ_TARGET == KZ_T_peer_hello
/* The peer RPC bodies have one version and no arena: the whole input is the
 * body (after the MAC has been checked, which the fuzzer cannot forge). */
static int kz_fuzz_one(const uint8_t *data, size_t size)
{
    kc_rd rd;
    kc_peer_hello h;
    kc_rd_init(&rd, data, size);
    if (kc_peer_hello_decode(&rd, &h) == 0) {
        struct evbuffer *eb = evbuffer_new();
        kc_wr w;
        kc_wr_init(&w, eb, NULL);
        kc_peer_hello_encode(&w, &h);
        evbuffer_free(eb);
    }
    return 0;
}
#elif KZ_TARGET == KZ_T_wal_append_req || KZ_TARGET == KZ_T_wal_append_resp
#if KZ_TARGET == KZ_T_wal_append_req
#define KZ_WAL_FN(x) kc_wal_append_req_##x
typedef kc_wal_append_req kz_wal_msg;
#else
#define KZ_WAL_FN(x) kc_wal_append_resp_##x
typedef kc_wal_append_resp kz_wal_msg;
#endif
static int kz_fuzz_one(const uint8_t *data, size_t size)
{
    kc_rd rd;
    kc_arena a;
    kz_wal_msg msg;
    kc_rd_init(&rd, data, size);
    kc_arena_init(&a);
    if (KZ_WAL_FN(decode)(&rd, &a, &msg) == 0) {
#if KZ_TARGET == KZ_T_wal_append_req
        /* router-in's key check takes any decoded key (NULs, any length). */
        char why[200];
        (void)rt_in_key_check("wal/", msg.key, why, sizeof(why));
#endif
        /* What decodes encodes, and that encoding decodes and encodes to
         * itself (the input may use non-minimal varints, its encoding not). */
        struct evbuffer *eb = evbuffer_new(), *eb2 = evbuffer_new();
        kc_wr w;
        kc_wr_init(&w, eb, NULL);
        KZ_WAL_FN(encode)(&w, &msg);
        size_t n = evbuffer_get_length(eb);
        const uint8_t *enc = evbuffer_pullup(eb, -1);
        kz_wal_msg again;
        kc_rd_init(&rd, enc, n);
        if (!w.err && KZ_WAL_FN(decode)(&rd, &a, &again) != 0)
            abort();
        kc_wr_init(&w, eb2, NULL);
        KZ_WAL_FN(encode)(&w, &again);
        if (!w.err && (evbuffer_get_length(eb2) != n || memcmp(evbuffer_pullup(eb2, -1), enc, n) != 0))
            abort();
        evbuffer_free(eb2);
        evbuffer_free(eb);
    }
    kc_arena_destroy(&a);
    return 0;
}
#elif KZ_TARGET == KZ_T_apiversions_req
KZ_FUZZ_MSG(kc_apiversions_req, kc_apiversions_req, KC_API_APIVERSIONS)
#elif KZ_TARGET == KZ_T_apiversions_resp
KZ_FUZZ_MSG(kc_apiversions_resp, kc_apiversions_resp, KC_API_APIVERSIONS)
#elif KZ_TARGET == KZ_T_metadata_req
KZ_FUZZ_MSG(kc_metadata_req, kc_metadata_req, KC_API_METADATA)
#elif KZ_TARGET == KZ_T_metadata_resp
KZ_FUZZ_MSG(kc_metadata_resp, kc_metadata_resp, KC_API_METADATA)
#elif KZ_TARGET == KZ_T_produce_req
KZ_FUZZ_MSG(kc_produce_req, kc_produce_req, KC_API_PRODUCE)
#elif KZ_TARGET == KZ_T_produce_resp
KZ_FUZZ_MSG(kc_produce_resp, kc_produce_resp, KC_API_PRODUCE)
#elif KZ_TARGET == KZ_T_fetch_req
KZ_FUZZ_MSG(kc_fetch_req, kc_fetch_req, KC_API_FETCH)
#elif KZ_TARGET == KZ_T_fetch_resp
/* Besides the message, every partition's tag section goes through the
 * KIP-951 parser and is rebuilt, as the proxy does when it rewrites the
 * CurrentLeader. */
static int kz_fuzz_one(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const kc_api_info *ai = kc_api_lookup(KC_API_FETCH);
    int span = ai->max_version - ai->min_version + 1;
    int16_t version = (int16_t)(ai->min_version + ((data[0] << 8 | data[1]) % span));
    kc_rd rd;
    kc_arena a;
    kc_fetch_resp msg;
    kc_rd_init(&rd, data + 2, size - 2);
    kc_arena_init(&a);
    if (kc_fetch_resp_decode(&rd, version, &a, &msg) == 0) {
        for (int32_t t = 0; t < msg.nresponses; t++) {
            for (int32_t p = 0; p < msg.responses[t].npartitions; p++) {
                kc_fetch_resp_partition *fp = &msg.responses[t].partitions[p];
                kc_fetch_partition_tags pt;
                if (kc_fetch_partition_tags_parse(&fp->tags, &pt) == 0) {
                    pt.leader_id = 1;
                    (void)kc_fetch_partition_tags_build(&a, &pt, &fp->tags);
                }
            }
        }
        struct evbuffer *eb = evbuffer_new();
        kc_wr w;
        kc_wr_init(&w, eb, NULL);
        kc_fetch_resp_encode(&w, version, &msg);
        evbuffer_free(eb);
    }
    kc_arena_destroy(&a);
    return 0;
}
#elif KZ_TARGET == KZ_T_listoffsets_req
KZ_FUZZ_MSG(kc_listoffsets_req, kc_listoffsets_req, KC_API_LISTOFFSETS)
#elif KZ_TARGET == KZ_T_listoffsets_resp
KZ_FUZZ_MSG(kc_listoffsets_resp, kc_listoffsets_resp, KC_API_LISTOFFSETS)
#elif KZ_TARGET == KZ_T_findcoordinator_req
KZ_FUZZ_MSG(kc_findcoordinator_req, kc_findcoordinator_req, KC_API_FINDCOORDINATOR)
#elif KZ_TARGET == KZ_T_findcoordinator_resp
KZ_FUZZ_MSG(kc_findcoordinator_resp, kc_findcoordinator_resp, KC_API_FINDCOORDINATOR)
#elif KZ_TARGET == KZ_T_listgroups_req
KZ_FUZZ_MSG(kc_listgroups_req, kc_listgroups_req, KC_API_LISTGROUPS)
#elif KZ_TARGET == KZ_T_listgroups_resp
KZ_FUZZ_MSG(kc_listgroups_resp, kc_listgroups_resp, KC_API_LISTGROUPS)
#elif KZ_TARGET == KZ_T_deleterecords_req
KZ_FUZZ_MSG(kc_deleterecords_req, kc_deleterecords_req, KC_API_DELETERECORDS)
#elif KZ_TARGET == KZ_T_deleterecords_resp
KZ_FUZZ_MSG(kc_deleterecords_resp, kc_deleterecords_resp, KC_API_DELETERECORDS)
#elif KZ_TARGET == KZ_T_offsetforleaderepoch_req
KZ_FUZZ_MSG(kc_offsetforleaderepoch_req, kc_offsetforleaderepoch_req, KC_API_OFFSETFORLEADEREPOCH)
#elif KZ_TARGET == KZ_T_offsetforleaderepoch_resp
KZ_FUZZ_MSG(kc_offsetforleaderepoch_resp, kc_offsetforleaderepoch_resp, KC_API_OFFSETFORLEADEREPOCH)
#elif KZ_TARGET == KZ_T_describecluster_req
KZ_FUZZ_MSG(kc_describecluster_req, kc_describecluster_req, KC_API_DESCRIBECLUSTER)
#elif KZ_TARGET == KZ_T_describecluster_resp
KZ_FUZZ_MSG(kc_describecluster_resp, kc_describecluster_resp, KC_API_DESCRIBECLUSTER)
#else
#error "KZ_FUZZ_TARGET names no known decoder"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return kz_fuzz_one(data, size);
}
