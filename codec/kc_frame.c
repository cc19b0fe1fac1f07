/* Frames (kc_buf.h): refcounted buffers of whole Kafka messages, the
 * per-thread pool that reuses them, and receiving a frame from a socket. */
#include "config.h"

#include "codec/kc_buf.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <event2/buffer.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ---- frames ---- */

/* The frame pool: per thread, one free list per power-of-two size class
 * from KC_FRAME_POOL_MIN to KC_FRAME_POOL_MAX, at most KC_FRAME_POOL_BYTES
 * in all. Off under AddressSanitizer, so that it still sees a use after
 * release. */
#define KC_POOL_MIN_SHIFT 17 /* KC_FRAME_POOL_MIN */
#define KC_POOL_CLASSES 8    /* up to 1 << 24, KC_FRAME_POOL_MAX */
#if defined(__SANITIZE_ADDRESS__)
#define KC_POOL_ON 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KC_POOL_ON 0
#endif
#endif
#ifndef KC_POOL_ON
#define KC_POOL_ON 1
#endif

typedef struct kc_pool_free {
    struct kc_pool_free *next;
} kc_pool_free;

static _Thread_local kc_pool_free *kc_pool_head[KC_POOL_CLASSES];
static _Thread_local size_t kc_pool_held;
/* One released frame above the classes (KC_FRAME_POOL_MAX up to
 * KC_FRAME_BIG_KEEP bytes), the largest seen, kept for the next big frame,
 * on a thread that has allocated big frames itself (a worker receiving
 * Fetch answers; not the main thread (the WAL path) that drops a large Produce). */
static _Thread_local kc_frame *kc_big_free;
static _Thread_local int kc_big_used;
/* Decay (kc_frame_pool_decay): per class, the frames pooled now and the
 * fewest pooled at any moment since the last period began; whether the big
 * frame was taken in it. */
static _Thread_local uint32_t kc_pool_n[KC_POOL_CLASSES];
static _Thread_local uint32_t kc_pool_low[KC_POOL_CLASSES];
static _Thread_local int kc_big_taken;
static _Thread_local int64_t kc_decay_at;
static _Thread_local int kc_decay_started;

/* The class of a frame of total bytes, or -1 for one outside the pool. */
static int kc_pool_class(size_t total)
{
    if (!KC_POOL_ON || total < KC_FRAME_POOL_MIN / 2 + 1 || total > KC_FRAME_POOL_MAX)
        return -1;
    int c = 0;
    while (((size_t)1 << (KC_POOL_MIN_SHIFT + c)) < total)
        c++;
    return c;
}

size_t kc_frame_pool_bytes(void)
{
    return kc_pool_held;
}

size_t kc_frame_big_bytes(void)
{
    return kc_big_free != NULL ? sizeof(kc_frame) + kc_big_free->cap : 0;
}

size_t kc_frame_kept_bytes(void)
{
    return kc_frame_pool_bytes() + kc_frame_big_bytes();
}

/* A frame too big for the classes that the big slot can hold. */
static int kc_big_keepable(size_t total)
{
    return KC_POOL_ON && total > KC_FRAME_POOL_MAX && total <= KC_FRAME_BIG_KEEP;
}

void kc_frame_pool_trim(void)
{
    for (int c = 0; c < KC_POOL_CLASSES; c++) {
        while (kc_pool_head[c] != NULL) {
            kc_pool_free *p = kc_pool_head[c];
            kc_pool_head[c] = p->next;
            free(p);
        }
    }
    kc_pool_held = 0;
    memset(kc_pool_n, 0, sizeof(kc_pool_n));
    memset(kc_pool_low, 0, sizeof(kc_pool_low));
    free(kc_big_free);
    kc_big_free = NULL;
}

size_t kc_frame_pool_decay(int64_t now_ms, int64_t period_ms)
{
    if (period_ms <= 0)
        return 0;
    if (!kc_decay_started) { /* the first period starts with what is pooled now */
        kc_decay_started = 1;
        kc_decay_at = now_ms;
        memcpy(kc_pool_low, kc_pool_n, sizeof(kc_pool_low));
        kc_big_taken = 0;
        return 0;
    }
    if (now_ms - kc_decay_at < period_ms)
        return 0;
    kc_decay_at = now_ms;
    size_t freed = 0;
    for (int c = 0; c < KC_POOL_CLASSES; c++) {
        size_t csize = (size_t)1 << (KC_POOL_MIN_SHIFT + c);
        for (uint32_t i = 0; i < kc_pool_low[c] && kc_pool_head[c] != NULL; i++) {
            kc_pool_free *p = kc_pool_head[c];
            kc_pool_head[c] = p->next;
            free(p);
            kc_pool_n[c]--;
            kc_pool_held -= csize;
            freed += csize;
        }
        kc_pool_low[c] = kc_pool_n[c];
    }
    if (kc_big_free != NULL && !kc_big_taken) {
        freed += sizeof(kc_frame) + kc_big_free->cap;
        free(kc_big_free);
        kc_big_free = NULL;
    }
    kc_big_taken = 0;
#ifdef __GLIBC__
    /* glibc raises its mmap threshold as mapped blocks are freed, so frames
     * of up to 32 MiB soon come from its heaps, and free() keeps them there:
     * hand the free pages back to the kernel too (at most once a period). */
    if (freed > 0)
        (void)malloc_trim(0);
#endif
    return freed;
}

kc_frame *kc_frame_new(size_t len)
{
    if (len > SIZE_MAX - sizeof(kc_frame))
        return NULL;
    size_t total = sizeof(kc_frame) + len;
    int c = kc_pool_class(total);
    kc_frame *f;
    if (c >= 0) {
        size_t csize = (size_t)1 << (KC_POOL_MIN_SHIFT + c);
        if (kc_pool_head[c] != NULL) {
            kc_pool_free *p = kc_pool_head[c];
            kc_pool_head[c] = p->next;
            kc_pool_held -= csize;
            if (--kc_pool_n[c] < kc_pool_low[c])
                kc_pool_low[c] = kc_pool_n[c];
            f = (kc_frame *)(void *)p;
        } else {
            f = malloc(csize);
        }
        if (f == NULL)
            return NULL;
        f->cap = csize - sizeof(kc_frame);
    } else if (kc_big_free != NULL && kc_big_keepable(total)) {
        /* The big slot's frame, grown if need be: realloc of an mmapped
         * block remaps its pages (faulted already) rather than copying
         * them; a block glibc placed in its heap is copied. */
        f = kc_big_free;
        kc_big_free = NULL;
        kc_big_taken = 1;
        if (f->cap < len) {
            kc_frame *nf = realloc(f, total);
            if (nf == NULL) {
                free(f);
                return NULL;
            }
            f = nf;
            f->cap = len;
        }
    } else {
        f = malloc(total);
        if (f == NULL)
            return NULL;
        f->cap = len;
        if (kc_big_keepable(total))
            kc_big_used = kc_big_taken = 1;
    }
    f->refcnt = 1;
    f->pool_class = c;
    f->len = len;
    return f;
}

/* The count is atomic: with workers (px_worker.c) a frame is shared by a
 * worker's connection and the main thread (the WAL path), and released by either. */
kc_frame *kc_frame_keep(kc_frame *f)
{
    __atomic_add_fetch(&f->refcnt, 1, __ATOMIC_RELAXED);
    return f;
}

void kc_frame_release(kc_frame *f)
{
    if (f == NULL || __atomic_sub_fetch(&f->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    int c = f->pool_class;
    if (c >= 0) {
        size_t csize = (size_t)1 << (KC_POOL_MIN_SHIFT + c);
        if (kc_pool_held + csize <= KC_FRAME_POOL_BYTES) {
            kc_pool_free *p = (kc_pool_free *)(void *)f;
            p->next = kc_pool_head[c];
            kc_pool_head[c] = p;
            kc_pool_held += csize;
            kc_pool_n[c]++;
            return;
        }
    } else if (kc_big_used && kc_big_keepable(sizeof(*f) + f->cap)) {
        if (kc_big_free == NULL || kc_big_free->cap < f->cap) { /* keep the larger */
            kc_frame *old = kc_big_free;
            kc_big_free = f;
            f = old;
        }
    }
    free(f);
}

/* Make room in a growing frame for at least need bytes (got + need <= want):
 * double what it holds, at least to what is needed, at most to the frame's
 * size. The frame has one owner while it is received, so it may move. */
static int kc_frame_rx_grow(kc_frame_rx *rx, size_t need)
{
    kc_frame *f = rx->f;
    size_t cap = f->len, want = rx->want;
    if (rx->got + need <= cap)
        return 0;
    size_t ncap = cap < want / 2 ? cap * 2 : want;
    if (rx->whole_after > 0 && rx->got >= rx->whole_after)
        ncap = want; /* each doubling would copy what arrived again */
    if (ncap < rx->got + need)
        ncap = rx->got + need;
    if (ncap > want)
        ncap = want;
    if (ncap <= f->cap) { /* a pooled frame's size class has the room already */
        f->len = ncap;
        return 0;
    }
    kc_frame *nf;
    if (f->pool_class < 0 && kc_pool_class(sizeof(*nf) + ncap) < 0) {
        nf = realloc(f, sizeof(*nf) + ncap);
        if (nf != NULL)
            nf->cap = ncap;
    } else {
        nf = kc_frame_new(ncap);
        if (nf != NULL) {
            memcpy(nf->data, f->data, rx->got);
            kc_frame_release(f);
        }
    }
    if (nf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    nf->len = ncap;
    rx->f = nf;
    return 0;
}

static ssize_t kc_rx_recv(void *arg, void *buf, size_t len)
{
    return recv(*(const int *)arg, buf, len, 0);
}

int kc_frame_rx_fill(kc_frame_rx *rx, struct evbuffer *in, int fd)
{
    return kc_frame_rx_fill_fn(rx, in, fd < 0 ? NULL : kc_rx_recv, &fd);
}

int kc_frame_rx_fill_fn(kc_frame_rx *rx, struct evbuffer *in, kc_rx_read_fn rd, void *arg)
{
    size_t buffered = in != NULL ? evbuffer_get_length(in) : 0;
    if (rx->got < rx->want && buffered > 0) {
        /* These bytes have arrived: room for all of them that belong to the frame. */
        size_t take = rx->want - rx->got < buffered ? rx->want - rx->got : buffered;
        if (kc_frame_rx_grow(rx, take) != 0)
            return -1;
        int n = evbuffer_remove(in, rx->f->data + rx->got, take);
        if (n > 0)
            rx->got += (size_t)n;
    }
    /* Each pass either adds bytes or returns. At most KC_RX_TURN_MAX per
     * call, so one fast sender does not hold the event loop: what is left
     * on the socket makes it readable again (level-triggered). */
    size_t turn = 0, turn_max = rx->turn_max ? rx->turn_max : KC_RX_TURN_MAX;
    if (rd == NULL)
        return rx->got == rx->want ? 1 : 0; /* the input buffer is the only source */
    while (rx->got < rx->want) {
        if (turn >= turn_max)
            return 0;
        /* A growing frame grows only once what arrived has filled it. */
        if (rx->got == rx->f->len && kc_frame_rx_grow(rx, 1) != 0)
            return -1;
        size_t room = rx->f->len - rx->got;
        if (room > turn_max - turn)
            room = turn_max - turn;
        ssize_t n = rd(arg, rx->f->data + rx->got, room);
        if (n > 0) {
            rx->got += (size_t)n;
            turn += (size_t)n;
        } else if (n == 0) {
            errno = 0;
            return -1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return 1;
}

void kc_frame_rx_start(kc_frame_rx *rx, kc_frame *f)
{
    rx->f = f;
    rx->got = 0;
    rx->want = f->len;
    rx->turn_max = 0;
    rx->whole_after = 0;
}

int kc_frame_rx_begin(kc_frame_rx *rx, size_t len, size_t have)
{
    size_t first = have > KC_RX_RESERVE ? have : KC_RX_RESERVE;
    kc_frame *f = kc_frame_new(first < len ? first : len);
    if (f == NULL)
        return -1;
    rx->f = f;
    rx->got = 0;
    rx->want = len;
    rx->turn_max = 0;
    rx->whole_after = 0;
    return 0;
}

kc_frame *kc_frame_rx_take(kc_frame_rx *rx)
{
    kc_frame *f = rx->f;
    rx->f = NULL;
    rx->got = 0;
    rx->want = 0;
    return f;
}

void kc_frame_rx_drop(kc_frame_rx *rx)
{
    kc_frame_release(kc_frame_rx_take(rx));
}

static void kc_frame_unref_cb(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    kc_frame_release(arg);
}

int kc_frame_add_ref(struct evbuffer *eb, kc_frame *f, const void *p, size_t n)
{
    kc_frame_keep(f);
    if (evbuffer_add_reference(eb, p, n, kc_frame_unref_cb, f) != 0) {
        kc_frame_release(f);
        return -1;
    }
    return 0;
}
