/*
 * kc_arena: bump allocator for decoded messages.
 *
 * A decoder puts every array it builds into one arena; freeing the arena frees
 * the message. Decoders only ask for counts already checked against the bytes
 * left in the frame, so an arena never grows past a small multiple of the
 * frame that fed it, whatever the frame claims.
 */
#ifndef KC_ARENA_H
#define KC_ARENA_H

#include <stddef.h>

typedef struct kc_arena_chunk kc_arena_chunk;

typedef struct kc_arena {
    kc_arena_chunk *head; /* newest chunk first */
    size_t total;         /* bytes handed out */
} kc_arena;

void kc_arena_init(kc_arena *a);
/* Zeroed memory for n elements of size bytes, 16-byte aligned; NULL when n*size
 * overflows or memory runs out. n == 0 returns a valid non-NULL pointer. */
void *kc_arena_calloc(kc_arena *a, size_t n, size_t size);
/* Free every chunk; the arena can be used again afterwards. */
void kc_arena_destroy(kc_arena *a);

#endif
