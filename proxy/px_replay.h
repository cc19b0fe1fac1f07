/*
 * px_replay: replay protection for the peer RPC (docs/PEER_RPC.md).
 *
 * A request's auth prefix (sender, ts_ms, nonce) is covered by its MAC, so a
 * replay carries the same three values. The receiver accepts a request only
 * when ts_ms is within window_ms of its own clock and (sender, nonce) was not
 * seen while that could be true: a seen pair is kept until ts_ms + window_ms
 * has passed, after which the clock check alone refuses the replay.
 *
 * The set is bounded (max_entries, allocated up front). When it is full of
 * pairs still inside the window it refuses the new request
 * (PX_REPLAY_FULL) rather than forget a pair that could still be replayed.
 *
 * The set lives as long as the process, so two more checks cover what it
 * cannot remember:
 *   - a request stamped before the process started (not_before_ms) is
 *     refused when the caller asks (KzWalAppend): an earlier process may
 *     have accepted it (a restart empties the set);
 *   - the lower bound of the window and the sweep use the highest clock
 *     reading seen (hw), not the current one: when the wall clock steps
 *     back, a pair swept at the old time would otherwise fall inside the
 *     window again, unremembered. Once swept (ts_ms + window_ms < hw), a
 *     pair stays outside [hw - window_ms, ...] for good.
 */
#ifndef PX_REPLAY_H
#define PX_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "codec/kc_peer.h"

typedef struct px_replay px_replay;

typedef enum px_replay_res {
    PX_REPLAY_OK = 0,   /* accepted, and now remembered */
    PX_REPLAY_SKEW,     /* ts_ms is more than window_ms from now */
    PX_REPLAY_SEEN,     /* (sender, nonce) already accepted: a replay */
    PX_REPLAY_FULL,     /* the set is full of live pairs: refused, not remembered */
    PX_REPLAY_BEFORE_START, /* ts_ms is earlier than not_before_ms (this process's start) */
} px_replay_res;

#define PX_REPLAY_NRES (PX_REPLAY_BEFORE_START + 1)

/* NULL when out of memory. window_ms > 0, max_entries >= 1; not_before_ms:
 * the process's start (wall clock), requests stamped earlier are refused. */
px_replay *px_replay_new(int64_t window_ms, size_t max_entries, int64_t not_before_ms);
void px_replay_free(px_replay *r);

/* Check (and on PX_REPLAY_OK remember) one request's auth prefix at now_ms
 * (the wall clock; may go back). The window is [hw - window_ms, now_ms +
 * window_ms], hw the highest now_ms seen; then, when since_start is set,
 * ts_ms >= not_before_ms. */
px_replay_res px_replay_check(px_replay *r, int64_t now_ms, int32_t sender, int64_t ts_ms,
                              const uint8_t nonce[KC_PEER_NONCE_LEN], int since_start);

/* Pairs held now (live or expired but not yet swept). */
size_t px_replay_size(const px_replay *r);

/* The metric label of a refusal: "clock_skew", "replay", "nonce_cache_full",
 * "before_start". */
const char *px_replay_reason(px_replay_res res);

#endif
