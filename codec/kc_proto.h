/*
 * kc_proto: Kafka API keys, the table of versions kzproxy decodes, error
 * codes, and the request/response headers.
 */
#ifndef KC_PROTO_H
#define KC_PROTO_H

#include "codec/kc_buf.h"

#include <stdint.h>

enum {
    KC_API_PRODUCE = 0,
    KC_API_FETCH = 1,
    KC_API_LISTOFFSETS = 2,
    KC_API_METADATA = 3,
    KC_API_OFFSETCOMMIT = 8,
    KC_API_OFFSETFETCH = 9,
    KC_API_FINDCOORDINATOR = 10,
    KC_API_JOINGROUP = 11,
    KC_API_HEARTBEAT = 12,
    KC_API_LEAVEGROUP = 13,
    KC_API_SYNCGROUP = 14,
    KC_API_DESCRIBEGROUPS = 15,
    KC_API_LISTGROUPS = 16,
    KC_API_SASLHANDSHAKE = 17,
    KC_API_APIVERSIONS = 18,
    KC_API_CREATETOPICS = 19,
    KC_API_DELETETOPICS = 20,
    KC_API_DELETERECORDS = 21,
    KC_API_INITPRODUCERID = 22,
    KC_API_OFFSETFORLEADEREPOCH = 23,
    KC_API_ADDPARTITIONSTOTXN = 24,
    KC_API_ADDOFFSETSTOTXN = 25,
    KC_API_ENDTXN = 26,
    KC_API_TXNOFFSETCOMMIT = 28,
    KC_API_DESCRIBECONFIGS = 32,
    KC_API_SASLAUTHENTICATE = 36,
    KC_API_CREATEPARTITIONS = 37,
    KC_API_DELETEGROUPS = 42,
    KC_API_DESCRIBECLUSTER = 60,
    KC_API_CONSUMERGROUPHEARTBEAT = 68,
    KC_API_CONSUMERGROUPDESCRIBE = 69,
    KC_API_MAX = 74 /* highest ApiKey kzproxy knows the name of */
};

/* Error codes kzproxy produces or inspects. */
enum {
    KC_ERR_UNKNOWN_SERVER_ERROR = -1,
    KC_ERR_NONE = 0,
    KC_ERR_OFFSET_OUT_OF_RANGE = 1,
    KC_ERR_CORRUPT_MESSAGE = 2,
    KC_ERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    KC_ERR_LEADER_NOT_AVAILABLE = 5,
    KC_ERR_NOT_LEADER_OR_FOLLOWER = 6,
    KC_ERR_REQUEST_TIMED_OUT = 7,
    KC_ERR_NETWORK_EXCEPTION = 13,
    KC_ERR_COORDINATOR_NOT_AVAILABLE = 15,
    KC_ERR_NOT_COORDINATOR = 16,
    KC_ERR_TOPIC_AUTHORIZATION_FAILED = 29,
    KC_ERR_GROUP_AUTHORIZATION_FAILED = 30,
    KC_ERR_CLUSTER_AUTHORIZATION_FAILED = 31,
    KC_ERR_UNSUPPORTED_SASL_MECHANISM = 33,
    KC_ERR_ILLEGAL_SASL_STATE = 34,
    KC_ERR_UNSUPPORTED_VERSION = 35,
    KC_ERR_INVALID_REQUEST = 42,
    KC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    KC_ERR_KAFKA_STORAGE_ERROR = 56,
    KC_ERR_SASL_AUTHENTICATION_FAILED = 58,
    KC_ERR_FENCED_LEADER_EPOCH = 74,
    KC_ERR_UNKNOWN_LEADER_EPOCH = 75,
    KC_ERR_UNKNOWN_TOPIC_ID = 100,
    KC_ERR_MISMATCHED_ENDPOINT_TYPE = 114,
    KC_ERR_UNSUPPORTED_ENDPOINT_TYPE = 115,
};

/*
 * One row of the API table. min/max_version: what kzproxy decodes and
 * re-encodes itself (0/-1 when it decodes none of it); first_flexible: the
 * first version using compact fields and tagged headers (-1: never).
 */
typedef struct kc_api_info {
    int16_t key;
    const char *name;
    int16_t min_version;
    int16_t max_version;
    int16_t first_flexible;
} kc_api_info;

/* The row for key, or NULL when kzproxy does not know that ApiKey. */
const kc_api_info *kc_api_lookup(int16_t key);
/* The name of an ApiKey, "Unknown" when not known. */
const char *kc_api_name(int16_t key);
/* Whether kzproxy's own decoder handles key at version. */
int kc_api_decodes(int16_t key, int16_t version);
/* Whether key at version uses the flexible (compact, tagged) encoding. */
int kc_api_flexible(int16_t key, int16_t version);
/* Human name of an error code, for logs. */
const char *kc_err_name(int16_t code);

/* Request header v0-v2 (v1 adds client id, v2 adds tagged fields). */
typedef struct kc_req_hdr {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    kc_str client_id; /* null in v0 */
    kc_tags tags;
    int16_t hdr_version; /* 0, 1 or 2 */
} kc_req_hdr;

/* The request header version for key at version (2 when flexible, except
 * ControlledShutdown v0 which uses v0). Unknown keys are taken as v1. */
int kc_req_hdr_version(int16_t key, int16_t version);
/* The response header version: 1 when flexible, except ApiVersions, whose
 * response header is always v0 so a client can read an error from it. */
int kc_resp_hdr_version(int16_t key, int16_t version);

/*
 * Decode a request header from the start of a frame. The header version is
 * taken from the API table; the reader is left at the body. Returns 0, or -1
 * with rd->err set.
 */
int kc_req_hdr_decode(kc_rd *rd, kc_req_hdr *h);
void kc_req_hdr_encode(kc_wr *w, const kc_req_hdr *h);
/* Response header: correlation id, plus an empty tag section for v1. */
void kc_resp_hdr_encode(kc_wr *w, int32_t correlation_id, int hdr_version);
int32_t kc_resp_hdr_decode(kc_rd *rd, int hdr_version);

#endif
