/* Sequence holds of idempotent producers across failures: see rt_seq.h. */
#include "config.h"

#include "router/rt_seq.h"

#include "codec/kc_proto.h"

/* Producer id, epoch and base sequence of a record batch v2 (Kafka's fixed
 * 61-byte header: producerId at 43, producerEpoch at 51, baseSequence at
 * 53, magic at 16); 0 when it is not an idempotent producer's batch. */
static int rt_batch_seq(kc_bytes rec, int64_t *pid, int16_t *epoch, int32_t *seq)
{
    if (rec.p == NULL || rec.len < 61 || rec.p[16] != 2)
        return 0;
    const uint8_t *b = (const uint8_t *)rec.p;
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = id << 8 | b[43 + i];
    *pid = (int64_t)id;
    *epoch = (int16_t)((uint16_t)b[51] << 8 | b[52]);
    *seq = (int32_t)((uint32_t)b[53] << 24 | (uint32_t)b[54] << 16 | (uint32_t)b[55] << 8 | b[56]);
    return *pid >= 0 && *seq >= 0;
}

static int rt_code_retriable(int16_t code)
{
    switch (code) {
    case KC_ERR_NOT_LEADER_OR_FOLLOWER:
    case KC_ERR_LEADER_NOT_AVAILABLE:
    case KC_ERR_REQUEST_TIMED_OUT:
    case KC_ERR_NETWORK_EXCEPTION:
    case KC_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case 19: /* NOT_ENOUGH_REPLICAS */
    case 20: /* NOT_ENOUGH_REPLICAS_AFTER_APPEND */
    case 56: /* KAFKA_STORAGE_ERROR */
    case 74: /* FENCED_LEADER_EPOCH */
    case 75: /* UNKNOWN_LEADER_EPOCH */
        return 1;
    default:
        return 0;
    }
}

int rt_seq_markable(kc_bytes records, int16_t code)
{
    int64_t pid;
    int16_t epoch;
    int32_t seq;
    return rt_code_retriable(code) && rt_batch_seq(records, &pid, &epoch, &seq);
}

void rt_seq_failed(rt_seqmark *m, kc_bytes records, int64_t now_ms)
{
    int64_t pid;
    int16_t epoch;
    int32_t seq;
    if (!rt_batch_seq(records, &pid, &epoch, &seq))
        return;
    m->until_ms = now_ms + RT_SEQ_HOLD_MS;
    if (m->set && m->pid == pid && m->epoch == epoch && m->seq <= seq)
        return; /* the earliest failed sequence is the one to wait for */
    m->set = 1;
    m->pid = pid;
    m->epoch = epoch;
    m->seq = seq;
}

int rt_seq_hold(rt_seqmark *m, kc_bytes records, int64_t now_ms)
{
    int64_t pid;
    int16_t epoch;
    int32_t seq;
    if (!m->set || !rt_batch_seq(records, &pid, &epoch, &seq))
        return 0;
    if (now_ms > m->until_ms || pid != m->pid || epoch != m->epoch || seq <= m->seq) {
        m->set = 0; /* expired, another producer session, or the retry itself */
        return 0;
    }
    return 1;
}
