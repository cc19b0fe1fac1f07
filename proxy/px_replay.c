/*
 * px_replay: the bounded seen-nonce set of the peer RPC (see px_replay.h).
 * A chained hash table over a fixed pool of entries; expired entries are
 * swept only when the pool runs out, and only when one can have expired
 * (the earliest expiry is tracked), so a full pool of live entries costs a
 * comparison per refused request, not a sweep.
 */
#include "config.h"

#include "proxy/px_replay.h"

#include <stdlib.h>
#include <string.h>

#define PX_REPLAY_NONE UINT32_MAX

typedef struct px_replay_ent {
    int64_t exp_ms; /* forget after this: ts_ms + window */
    int32_t sender;
    uint32_t next;  /* in its bucket, or in the free list */
    uint8_t nonce[KC_PEER_NONCE_LEN];
} px_replay_ent;

struct px_replay {
    int64_t window_ms;
    size_t cap, used;
    uint32_t nbuckets; /* power of two */
    uint32_t *buckets;
    px_replay_ent *ents;
    uint32_t free_head;
    int64_t min_exp_ms; /* no entry expires before this (INT64_MAX: none held) */
    int64_t hw_ms;      /* the highest clock reading seen: never goes back */
    int64_t not_before_ms;
};

px_replay *px_replay_new(int64_t window_ms, size_t max_entries, int64_t not_before_ms)
{
    if (window_ms <= 0 || max_entries == 0 || max_entries >= PX_REPLAY_NONE / 2)
        return NULL;
    px_replay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->window_ms = window_ms;
    r->not_before_ms = not_before_ms;
    /* hw - window_ms must not overflow */
    r->hw_ms = not_before_ms > INT64_MIN + window_ms ? not_before_ms : INT64_MIN + window_ms;
    r->cap = max_entries;
    r->nbuckets = 16;
    while (r->nbuckets < max_entries)
        r->nbuckets <<= 1;
    r->buckets = malloc(r->nbuckets * sizeof(*r->buckets));
    r->ents = calloc(max_entries, sizeof(*r->ents));
    if (r->buckets == NULL || r->ents == NULL) {
        px_replay_free(r);
        return NULL;
    }
    for (uint32_t i = 0; i < r->nbuckets; i++)
        r->buckets[i] = PX_REPLAY_NONE;
    for (size_t i = 0; i < max_entries; i++)
        r->ents[i].next = i + 1 < max_entries ? (uint32_t)(i + 1) : PX_REPLAY_NONE;
    r->free_head = 0;
    r->min_exp_ms = INT64_MAX;
    return r;
}

void px_replay_free(px_replay *r)
{
    if (r == NULL)
        return;
    free(r->buckets);
    free(r->ents);
    free(r);
}

size_t px_replay_size(const px_replay *r) { return r->used; }

static uint32_t px_replay_hash(const px_replay *r, int32_t sender, const uint8_t *nonce)
{
    /* Nonces are random and MAC-covered: a plain mix of their bits is enough. */
    uint64_t h;
    memcpy(&h, nonce, sizeof(h));
    h ^= (uint64_t)(uint32_t)sender * 0x9e3779b97f4a7c15ULL;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (uint32_t)h & (r->nbuckets - 1);
}

/* Free every entry that has expired at now_ms; recompute min_exp_ms. */
static void px_replay_sweep(px_replay *r, int64_t now_ms)
{
    int64_t min_exp = INT64_MAX;
    for (uint32_t b = 0; b < r->nbuckets; b++) {
        uint32_t *pp = &r->buckets[b];
        while (*pp != PX_REPLAY_NONE) {
            px_replay_ent *e = &r->ents[*pp];
            if (e->exp_ms < now_ms) {
                uint32_t idx = *pp;
                *pp = e->next;
                e->next = r->free_head;
                r->free_head = idx;
                r->used--;
            } else {
                if (e->exp_ms < min_exp)
                    min_exp = e->exp_ms;
                pp = &e->next;
            }
        }
    }
    r->min_exp_ms = min_exp;
}

px_replay_res px_replay_check(px_replay *r, int64_t now_ms, int32_t sender, int64_t ts_ms,
                              const uint8_t nonce[KC_PEER_NONCE_LEN], int since_start)
{
    /* The lower bound and the sweep go by the highest clock seen, so a step
     * back of the wall clock cannot readmit a swept pair. Written so that no
     * subtraction can overflow on a hostile ts_ms (now_ms is a real clock). */
    if (now_ms > r->hw_ms)
        r->hw_ms = now_ms;
    int64_t hw = r->hw_ms;
    if (ts_ms < hw - r->window_ms || ts_ms > now_ms + r->window_ms)
        return PX_REPLAY_SKEW;
    /* An earlier process may have accepted it: its set is gone. */
    if (since_start && ts_ms < r->not_before_ms)
        return PX_REPLAY_BEFORE_START;
    uint32_t b = px_replay_hash(r, sender, nonce);
    for (uint32_t i = r->buckets[b]; i != PX_REPLAY_NONE; i = r->ents[i].next) {
        const px_replay_ent *e = &r->ents[i];
        if (e->sender == sender && memcmp(e->nonce, nonce, KC_PEER_NONCE_LEN) == 0)
            return PX_REPLAY_SEEN;
    }
    if (r->free_head == PX_REPLAY_NONE && r->min_exp_ms < hw)
        px_replay_sweep(r, hw);
    if (r->free_head == PX_REPLAY_NONE)
        return PX_REPLAY_FULL;
    uint32_t idx = r->free_head;
    px_replay_ent *e = &r->ents[idx];
    r->free_head = e->next;
    e->exp_ms = ts_ms + r->window_ms;
    e->sender = sender;
    memcpy(e->nonce, nonce, KC_PEER_NONCE_LEN);
    e->next = r->buckets[b];
    r->buckets[b] = idx;
    r->used++;
    if (e->exp_ms < r->min_exp_ms)
        r->min_exp_ms = e->exp_ms;
    return PX_REPLAY_OK;
}

const char *px_replay_reason(px_replay_res res)
{
    switch (res) {
    case PX_REPLAY_SKEW:
        return "clock_skew";
    case PX_REPLAY_SEEN:
        return "replay";
    case PX_REPLAY_FULL:
        return "nonce_cache_full";
    case PX_REPLAY_BEFORE_START:
        return "before_start";
    default:
        return "ok";
    }
}
