/*
 * ow_writer: the batching writer. The router appends chunks (record data for
 * a destination, topic and partition); the writer packs them into one WAL
 * object, seals it at a size or an age, uploads it through an ow_store, and
 * reports each sealed object once, in seal order, with the key and every
 * chunk's range so the RPC to the destination can carry them.
 *
 * Pipelining: up to max_inflight uploads run at once; a sealed object that
 * finishes early waits until every object sealed before it has been
 * reported, so a producer's order survives.
 *
 * Backpressure: the bytes held (the open object plus sealed objects whose
 * upload has not finished) are capped at mem_cap. An append that would pass
 * the cap returns OW_EAGAIN and takes nothing; ow_writer_wait_room then asks
 * for a one-shot callback once bytes are released. Nothing is dropped and
 * nothing sleeps. A failed upload (deadline passed, auth...) is reported to
 * the sealed callback with its error: the caller must fail the requests whose
 * chunks it held (map to a retriable Kafka error), never acknowledge them.
 *
 * Everything runs on the event loop given at creation; callbacks are never
 * called from inside an ow_writer_* call.
 */
#ifndef OW_WRITER_H
#define OW_WRITER_H

#include "objwal/ow_store.h"
#include "objwal/ow_types.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;

typedef struct ow_writer ow_writer;
typedef struct ow_gc ow_gc;

typedef struct ow_writer_config {
    uint64_t seal_bytes;     /* seal when the object reaches this size (default 8 MiB) */
    uint32_t seal_age_ms;    /* objects not full are sealed this long after the previous seal,
                              * or in the next loop turn when that is past: no chunk waits
                              * longer, and objects not full come at most this often
                              * (default 250) */
    unsigned max_inflight;   /* uploads at once (default 4) */
    uint64_t mem_cap;        /* bytes held at most (default 64 MiB; at least seal_bytes) */
    const char *proxy_id;    /* written into every object header (required, copied) */
    const char *zone;        /* the writer's zone (required, copied) */
    const char *key_prefix;  /* keys are <prefix><hash>/<zone>/<proxy_id>/... (default "wal/") */
    ow_gc *gc;               /* optional: track every uploaded object for garbage collection */
} ow_writer_config;

/* Fill cfg with the defaults above (proxy_id and zone NULL). */
void ow_writer_config_init(ow_writer_config *cfg);

/* One sealed object's outcome. */
typedef struct ow_sealed {
    uint64_t seq;                /* seal order, from 1 (the tickets' seq) */
    int err;                     /* OW_OK: stored durably; else the object is lost */
    const char *errmsg;          /* why, "" when ok */
    const char *key;             /* the object key */
    uint64_t size;               /* object bytes */
    const ow_chunk_info *chunks; /* indexed by ticket.chunk (append order) */
    size_t nchunks;
    double flush_age_s;          /* first chunk to seal */
    double upload_s;             /* upload time, retries included */
} ow_sealed;

/* obj and all it points to live until the callback returns. */
typedef void (*ow_sealed_cb)(const ow_sealed *obj, void *arg);
typedef void (*ow_room_cb)(void *arg);

/*
 * Create a writer on base uploading to st (neither owned; both must outlive
 * the writer). sealed_cb is required. Returns NULL with a sentence in errstr
 * on a bad configuration.
 */
ow_writer *ow_writer_new(struct event_base *base, ow_store *st, const ow_writer_config *cfg,
                         ow_sealed_cb sealed_cb, void *arg, char *errstr, size_t errstr_size);

/*
 * Append a chunk of len bytes at p (copied) for dest/topic/partition.
 * On OW_OK *ticket (may be NULL) says which object and chunk it became.
 * Returns OW_OK; OW_EAGAIN when over the memory cap (nothing taken: call
 * ow_writer_wait_room and try again); OW_ETOOBIG when len alone exceeds the
 * cap or the object limits; OW_EINVAL for empty chunks or names over 255
 * bytes; OW_ENOMEM.
 */
int ow_writer_append(ow_writer *w, const char *dest, const char *topic, int32_t partition,
                     const void *p, size_t len, ow_ticket *ticket);

/* As ow_writer_append, but the bytes are moved out of eb without copying
 * (eb is drained on OW_OK, untouched otherwise). crc, when not NULL, is the
 * bytes' CRC32C as the caller knows it, and saves a pass over them. */
int ow_writer_append_evbuffer(ow_writer *w, const char *dest, const char *topic,
                              int32_t partition, struct evbuffer *eb, const uint32_t *crc,
                              ow_ticket *ticket);

/*
 * Ask for cb(arg) once, from the loop, when the writer next releases memory
 * (an upload finished). Waiters are called in the order they asked, while
 * the writer is under its cap. Returns OW_OK or OW_ENOMEM.
 */
int ow_writer_wait_room(ow_writer *w, ow_room_cb cb, void *arg);
/* Withdraw every waiter registered with this cb and arg. */
void ow_writer_cancel_room(ow_writer *w, ow_room_cb cb, void *arg);

/* Live reload: new seal thresholds (0: the defaults), from the next append
 * on; seal_bytes is capped by the memory cap fixed at creation. */
void ow_writer_set_seal(ow_writer *w, uint64_t seal_bytes, uint32_t seal_age_ms);

/* Seal the open object now (if it has chunks). */
void ow_writer_flush(ow_writer *w);

/* Bytes held now; objects sealed and not yet reported. */
uint64_t ow_writer_mem_used(const ow_writer *w);
size_t ow_writer_pending(const ow_writer *w);

/*
 * Free the writer. Uploads in flight are canceled and their objects are not
 * reported: call ow_writer_flush and wait until ow_writer_pending() is 0
 * first for a clean shutdown. Not from inside the writer's own callbacks.
 */
void ow_writer_free(ow_writer *w);

#endif
