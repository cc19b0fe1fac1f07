/*
 * Order keys and the WAL-path error log.
 *
 * An order key is (client stream, topic, partition) while WAL parts of it
 * are live (their batch submitted, its done not run yet). It says where the
 * parts went (a later part for another zone, or for another path, must not
 * overtake them) and whether one of them failed (later parts already in
 * flight are failed instead of sent: they would overtake the client's retry
 * of the failed one). Keys live only while parts do, so a closed client's
 * keys go when its last batch completes, bounded by the RPC timeouts.
 */
#include "config.h"

#include "router/rt_int.h"

#include "codec/kc_proto.h"
#include "common/kz_log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rt_okey_hash(const void *stream, kc_str topic, int32_t partition)
{
    /* FNV-1a over the pointer, the topic and the partition. */
    uint32_t h = 2166136261u;
    uintptr_t s = (uintptr_t)stream;
    for (size_t i = 0; i < sizeof(s); i++, s >>= 8) {
        h ^= (uint8_t)s;
        h *= 16777619u;
    }
    for (int32_t i = 0; i < topic.len; i++) {
        h ^= (uint8_t)topic.p[i];
        h *= 16777619u;
    }
    uint32_t p = (uint32_t)partition;
    for (int i = 0; i < 4; i++, p >>= 8) {
        h ^= (uint8_t)p;
        h *= 16777619u;
    }
    return h;
}

rt_okey *rt_okey_get(rt_router *rt, const void *stream, kc_str topic, int32_t partition, int create)
{
    if (topic.len < 0)
        topic.len = 0;
    uint32_t h = rt_okey_hash(stream, topic, partition);
    rt_okey **bucket = &rt->okeys[h % RT_OKEY_BUCKETS];
    for (rt_okey *k = *bucket; k; k = k->next)
        if (k->hash == h && k->stream == stream && k->partition == partition && k->tlen == topic.len &&
            memcmp(k->topic, topic.p, (size_t)topic.len) == 0)
            return k;
    if (!create)
        return NULL;
    rt_okey *k = calloc(1, sizeof(*k));
    if (k == NULL || (k->topic = malloc((size_t)topic.len + 1)) == NULL) {
        free(k);
        return NULL;
    }
    if (topic.len > 0)
        memcpy(k->topic, topic.p, (size_t)topic.len);
    k->topic[topic.len] = '\0';
    k->tlen = topic.len;
    k->stream = stream;
    k->partition = partition;
    k->hash = h;
    k->next = *bucket;
    *bucket = k;
    return k;
}

static void rt_okey_free(rt_okey *k)
{
    free(k->topic);
    free(k);
}

void rt_okey_unref(rt_router *rt, rt_okey *k)
{
    if (--k->refs > 0)
        return;
    for (rt_okey **pp = &rt->okeys[k->hash % RT_OKEY_BUCKETS]; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    rt_okey_free(k);
}

void rt_okey_free_all(rt_router *rt)
{
    for (int i = 0; i < RT_OKEY_BUCKETS; i++) {
        while (rt->okeys[i]) {
            rt_okey *k = rt->okeys[i];
            rt->okeys[i] = k->next;
            rt_okey_free(k);
        }
    }
}

rt_okey *rt_out_direct_begin(rt_router *rt, const void *stream, kc_str topic, int32_t partition)
{
    if (rt == NULL)
        return NULL;
    rt_okey *k = rt_okey_get(rt, stream, topic, partition, 1);
    if (k) {
        k->refs++;
        k->direct++;
    }
    return k;
}

void rt_out_direct_end(rt_router *rt, rt_okey *k)
{
    if (rt == NULL || k == NULL)
        return;
    k->direct--;
    rt_okey_unref(rt, k);
}

int rt_out_inflight(rt_router *rt, const void *stream, kc_str topic, int32_t partition)
{
    if (rt == NULL)
        return 0;
    rt_okey *k = rt_okey_get(rt, stream, topic, partition, 0);
    if (k == NULL || k->refs - k->direct - k->retry.set <= 0)
        return 0;
    rt->st.order_holds++;
    rt_note(rt, "router-out", "held: WAL parts of this partition from this client are in flight, a direct "
                              "append would overtake them", KC_ERR_NOT_LEADER_OR_FOLLOWER, -1, topic, partition);
    return 1;
}

void rt_out_seq_failed(rt_router *rt, const void *stream, kc_str topic, int32_t partition, kc_bytes records,
                       int16_t code)
{
    if (rt == NULL || !rt_seq_markable(records, code))
        return;
    rt_okey *k = rt_okey_get(rt, stream, topic, partition, 1);
    if (k == NULL)
        return;
    if (!k->retry.set)
        k->refs++; /* the mark holds the key */
    rt_seq_failed(&k->retry, records, rt_wall_ms());
}

int rt_out_seq_hold(rt_router *rt, const void *stream, kc_str topic, int32_t partition, kc_bytes records)
{
    if (rt == NULL)
        return 0;
    rt_okey *k = rt_okey_get(rt, stream, topic, partition, 0);
    if (k == NULL || !k->retry.set)
        return 0;
    if (!rt_seq_hold(&k->retry, records, rt_wall_ms())) {
        if (!k->retry.set)
            rt_okey_unref(rt, k); /* the mark went: may free k */
        return 0;
    }
    rt->st.order_holds++;
    rt_note(rt, "router-out", "held: an earlier batch of this producer for this partition failed and its "
                              "retry has not come yet", KC_ERR_NOT_LEADER_OR_FOLLOWER, -1, topic, partition);
    return 1;
}

void rt_note(rt_router *rt, const char *side, const char *cause, int16_t code, int32_t peer, kc_str topic,
             int32_t partition)
{
    int64_t now = rt_wall_ms();
    rt_logslot *s = NULL, *oldest = &rt->logs[0];
    for (int i = 0; i < RT_LOG_SLOTS; i++) {
        rt_logslot *l = &rt->logs[i];
        if (l->cause == cause && l->code == code && l->peer == peer) {
            s = l;
            break;
        }
        if (l->cause == NULL || (oldest->cause != NULL && l->first_ms < oldest->first_ms))
            oldest = l;
    }
    if (s != NULL && now - s->first_ms < RT_LOG_WINDOW_MS && now >= s->first_ms) {
        s->suppressed++;
        return;
    }
    uint64_t before = 0;
    if (s == NULL) {
        s = oldest; /* a new cause takes a free slot or the oldest one's */
        s->cause = cause;
        s->code = code;
        s->peer = peer;
    } else {
        before = s->suppressed;
    }
    s->first_ms = now;
    s->suppressed = 0;
    char peerbuf[32] = "";
    if (peer >= 0)
        snprintf(peerbuf, sizeof(peerbuf), ", peer %d", (int)peer);
    char more[96] = "";
    if (before > 0)
        snprintf(more, sizeof(more), " (%llu more like it since the last such line, not logged)",
                 (unsigned long long)before);
    kz_info("%s: %.*s-%d: %s (%d): %s%s%s", side, (int)(topic.len > 0 ? topic.len : 0), topic.p ? topic.p : "",
            (int)partition, kc_err_name(code), (int)code, cause, peerbuf, more);
}
