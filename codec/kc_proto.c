#include "config.h"

#include "codec/kc_proto.h"

#include <stddef.h>

/* Every ApiKey kzproxy knows, with the versions its own decoder handles and
 * the first flexible version (from the Kafka message schemas). This is the one
 * place the supported ranges are stated. */
static const kc_api_info kc_api_table[KC_API_MAX + 1] = {
    [0] = {0, "Produce", 3, 9, 9},
    [1] = {1, "Fetch", 4, 13, 12},
    [2] = {2, "ListOffsets", 0, 7, 6},
    [3] = {3, "Metadata", 0, 12, 9},
    [4] = {4, "LeaderAndIsr", 0, -1, 4},
    [5] = {5, "StopReplica", 0, -1, 2},
    [6] = {6, "UpdateMetadata", 0, -1, 6},
    [7] = {7, "ControlledShutdown", 0, -1, 3},
    [8] = {8, "OffsetCommit", 0, -1, 8},
    [9] = {9, "OffsetFetch", 0, -1, 6},
    [10] = {10, "FindCoordinator", 0, 4, 3},
    [11] = {11, "JoinGroup", 0, -1, 6},
    [12] = {12, "Heartbeat", 0, -1, 4},
    [13] = {13, "LeaveGroup", 0, -1, 4},
    [14] = {14, "SyncGroup", 0, -1, 4},
    [15] = {15, "DescribeGroups", 0, -1, 5},
    [16] = {16, "ListGroups", 0, 4, 3},
    [17] = {17, "SaslHandshake", 0, -1, -1},
    [18] = {18, "ApiVersions", 0, 3, 3},
    [19] = {19, "CreateTopics", 0, -1, 5},
    [20] = {20, "DeleteTopics", 0, -1, 4},
    [21] = {21, "DeleteRecords", 0, 2, 2},
    [22] = {22, "InitProducerId", 0, -1, 2},
    [23] = {23, "OffsetForLeaderEpoch", 0, 4, 4},
    [24] = {24, "AddPartitionsToTxn", 0, -1, 3},
    [25] = {25, "AddOffsetsToTxn", 0, -1, 3},
    [26] = {26, "EndTxn", 0, -1, 3},
    [27] = {27, "WriteTxnMarkers", 0, -1, 1},
    [28] = {28, "TxnOffsetCommit", 0, -1, 3},
    [29] = {29, "DescribeAcls", 0, -1, 2},
    [30] = {30, "CreateAcls", 0, -1, 2},
    [31] = {31, "DeleteAcls", 0, -1, 2},
    [32] = {32, "DescribeConfigs", 0, -1, 4},
    [33] = {33, "AlterConfigs", 0, -1, 2},
    [34] = {34, "AlterReplicaLogDirs", 0, -1, 2},
    [35] = {35, "DescribeLogDirs", 0, -1, 2},
    [36] = {36, "SaslAuthenticate", 0, -1, 2},
    [37] = {37, "CreatePartitions", 0, -1, 2},
    [38] = {38, "CreateDelegationToken", 0, -1, 2},
    [39] = {39, "RenewDelegationToken", 0, -1, 2},
    [40] = {40, "ExpireDelegationToken", 0, -1, 2},
    [41] = {41, "DescribeDelegationToken", 0, -1, 2},
    [42] = {42, "DeleteGroups", 0, -1, 2},
    [43] = {43, "ElectLeaders", 0, -1, 2},
    [44] = {44, "IncrementalAlterConfigs", 0, -1, 1},
    [45] = {45, "AlterPartitionReassignments", 0, -1, 0},
    [46] = {46, "ListPartitionReassignments", 0, -1, 0},
    [47] = {47, "OffsetDelete", 0, -1, -1},
    [48] = {48, "DescribeClientQuotas", 0, -1, 1},
    [49] = {49, "AlterClientQuotas", 0, -1, 1},
    [50] = {50, "DescribeUserScramCredentials", 0, -1, 0},
    [51] = {51, "AlterUserScramCredentials", 0, -1, 0},
    [52] = {52, "Vote", 0, -1, 0},
    [53] = {53, "BeginQuorumEpoch", 0, -1, 1},
    [54] = {54, "EndQuorumEpoch", 0, -1, 1},
    [55] = {55, "DescribeQuorum", 0, -1, 0},
    [56] = {56, "AlterPartition", 0, -1, 0},
    [57] = {57, "UpdateFeatures", 0, -1, 0},
    [58] = {58, "Envelope", 0, -1, 0},
    [59] = {59, "FetchSnapshot", 0, -1, 0},
    [60] = {60, "DescribeCluster", 0, 1, 0},
    [61] = {61, "DescribeProducers", 0, -1, 0},
    [62] = {62, "BrokerRegistration", 0, -1, 0},
    [63] = {63, "BrokerHeartbeat", 0, -1, 0},
    [64] = {64, "UnregisterBroker", 0, -1, 0},
    [65] = {65, "DescribeTransactions", 0, -1, 0},
    [66] = {66, "ListTransactions", 0, -1, 0},
    [67] = {67, "AllocateProducerIds", 0, -1, 0},
    [68] = {68, "ConsumerGroupHeartbeat", 0, -1, 0},
    [69] = {69, "ConsumerGroupDescribe", 0, -1, 0},
    [70] = {70, "ControllerRegistration", 0, -1, 0},
    [71] = {71, "GetTelemetrySubscriptions", 0, -1, 0},
    [72] = {72, "PushTelemetry", 0, -1, 0},
    [73] = {73, "AssignReplicasToDirs", 0, -1, 0},
    [74] = {74, "ListClientMetricsResources", 0, -1, 0},
};

/* kzproxy's private peer RPC keys (codec/kc_peer.h): never advertised to
 * clients, served only to peers that prove the shared secret. */
static const kc_api_info kc_api_peer_table[] = {
    {0x4b5a, "KzHello", 0, 0, 0},
    {0x4b5b, "KzWalAppend", 0, 0, 0},
};

const kc_api_info *kc_api_lookup(int16_t key)
{
    for (size_t i = 0; i < sizeof(kc_api_peer_table) / sizeof(kc_api_peer_table[0]); i++)
        if (kc_api_peer_table[i].key == key)
            return &kc_api_peer_table[i];
    if (key < 0 || key > KC_API_MAX || kc_api_table[key].name == NULL)
        return NULL;
    return &kc_api_table[key];
}

const char *kc_api_name(int16_t key)
{
    const kc_api_info *ai = kc_api_lookup(key);
    return ai ? ai->name : "Unknown";
}

int kc_api_decodes(int16_t key, int16_t version)
{
    const kc_api_info *ai = kc_api_lookup(key);
    return ai && version >= ai->min_version && version <= ai->max_version;
}

int kc_api_flexible(int16_t key, int16_t version)
{
    const kc_api_info *ai = kc_api_lookup(key);
    return ai && ai->first_flexible >= 0 && version >= ai->first_flexible;
}

const char *kc_err_name(int16_t code)
{
    switch (code) {
    case KC_ERR_UNKNOWN_SERVER_ERROR: return "UNKNOWN_SERVER_ERROR";
    case KC_ERR_NONE: return "NONE";
    case KC_ERR_OFFSET_OUT_OF_RANGE: return "OFFSET_OUT_OF_RANGE";
    case KC_ERR_CORRUPT_MESSAGE: return "CORRUPT_MESSAGE";
    case KC_ERR_UNKNOWN_TOPIC_OR_PARTITION: return "UNKNOWN_TOPIC_OR_PARTITION";
    case KC_ERR_LEADER_NOT_AVAILABLE: return "LEADER_NOT_AVAILABLE";
    case KC_ERR_NOT_LEADER_OR_FOLLOWER: return "NOT_LEADER_OR_FOLLOWER";
    case KC_ERR_REQUEST_TIMED_OUT: return "REQUEST_TIMED_OUT";
    case KC_ERR_NETWORK_EXCEPTION: return "NETWORK_EXCEPTION";
    case KC_ERR_COORDINATOR_NOT_AVAILABLE: return "COORDINATOR_NOT_AVAILABLE";
    case KC_ERR_NOT_COORDINATOR: return "NOT_COORDINATOR";
    case KC_ERR_TOPIC_AUTHORIZATION_FAILED: return "TOPIC_AUTHORIZATION_FAILED";
    case KC_ERR_GROUP_AUTHORIZATION_FAILED: return "GROUP_AUTHORIZATION_FAILED";
    case KC_ERR_CLUSTER_AUTHORIZATION_FAILED: return "CLUSTER_AUTHORIZATION_FAILED";
    case KC_ERR_UNSUPPORTED_VERSION: return "UNSUPPORTED_VERSION";
    case KC_ERR_INVALID_REQUEST: return "INVALID_REQUEST";
    case KC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED: return "TRANSACTIONAL_ID_AUTHORIZATION_FAILED";
    case KC_ERR_KAFKA_STORAGE_ERROR: return "KAFKA_STORAGE_ERROR";
    case KC_ERR_FENCED_LEADER_EPOCH: return "FENCED_LEADER_EPOCH";
    case KC_ERR_UNKNOWN_LEADER_EPOCH: return "UNKNOWN_LEADER_EPOCH";
    case KC_ERR_UNKNOWN_TOPIC_ID: return "UNKNOWN_TOPIC_ID";
    case KC_ERR_MISMATCHED_ENDPOINT_TYPE: return "MISMATCHED_ENDPOINT_TYPE";
    case KC_ERR_UNSUPPORTED_ENDPOINT_TYPE: return "UNSUPPORTED_ENDPOINT_TYPE";
    default: return "ERROR";
    }
}

int kc_req_hdr_version(int16_t key, int16_t version)
{
    if (key == 7 && version == 0)
        return 0; /* ControlledShutdown v0 predates client ids */
    return kc_api_flexible(key, version) ? 2 : 1;
}

int kc_resp_hdr_version(int16_t key, int16_t version)
{
    if (key == KC_API_APIVERSIONS)
        return 0;
    return kc_api_flexible(key, version) ? 1 : 0;
}

int kc_req_hdr_decode(kc_rd *rd, kc_req_hdr *h)
{
    h->api_key = kc_rd_i16(rd);
    h->api_version = kc_rd_i16(rd);
    h->correlation_id = kc_rd_i32(rd);
    h->client_id.p = NULL;
    h->client_id.len = -1;
    h->tags.count = 0;
    h->tags.raw.p = NULL;
    h->tags.raw.len = 0;
    if (rd->err)
        return -1;
    h->hdr_version = (int16_t)kc_req_hdr_version(h->api_key, h->api_version);
    if (h->hdr_version >= 1)
        h->client_id = kc_rd_nstring(rd, 0); /* never compact, even in v2 */
    if (h->hdr_version >= 2)
        kc_rd_tags(rd, &h->tags);
    return rd->err ? -1 : 0;
}

void kc_req_hdr_encode(kc_wr *w, const kc_req_hdr *h)
{
    kc_wr_i16(w, h->api_key);
    kc_wr_i16(w, h->api_version);
    kc_wr_i32(w, h->correlation_id);
    int v = kc_req_hdr_version(h->api_key, h->api_version);
    if (v >= 1)
        kc_wr_string(w, h->client_id, 0);
    if (v >= 2)
        kc_wr_tags(w, &h->tags);
}

void kc_resp_hdr_encode(kc_wr *w, int32_t correlation_id, int hdr_version)
{
    kc_wr_i32(w, correlation_id);
    if (hdr_version >= 1)
        kc_wr_uvarint(w, 0);
}

int32_t kc_resp_hdr_decode(kc_rd *rd, int hdr_version)
{
    int32_t c = kc_rd_i32(rd);
    if (hdr_version >= 1)
        kc_rd_tags(rd, NULL);
    return c;
}
