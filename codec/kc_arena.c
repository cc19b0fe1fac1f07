#include "config.h"

#include "codec/kc_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KC_ARENA_CHUNK 4096

struct kc_arena_chunk {
    kc_arena_chunk *next;
    size_t used;
    size_t cap;
    _Alignas(16) unsigned char data[];
};

void kc_arena_init(kc_arena *a)
{
    a->head = NULL;
    a->total = 0;
}

void *kc_arena_calloc(kc_arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    size_t want = n * size;
    if (want > SIZE_MAX - 15)
        return NULL;
    want = (want + 15) & ~(size_t)15;
    if (want == 0)
        want = 16;

    kc_arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < want) {
        size_t cap = want > KC_ARENA_CHUNK ? want : KC_ARENA_CHUNK;
        if (cap > SIZE_MAX - sizeof(*c))
            return NULL;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += want;
    a->total += want;
    memset(p, 0, want);
    return p;
}

void kc_arena_destroy(kc_arena *a)
{
    kc_arena_chunk *c = a->head;
    while (c != NULL) {
        kc_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}
