/*
 * kc_buf: bounded reader and writer for the Kafka wire primitives.
 *
 * The reader walks a byte range it does not own. Every read checks the
 * remaining length first; the first failure is sticky (rd->err names it and
 * rd->err_off says where) and every later read returns zero without moving,
 * so a decoder can read a whole structure and test rd->err once at the end.
 * Strings and byte fields come back as pointer+length into the range, never
 * copied: they live as long as the range does.
 *
 * The writer appends to a libevent evbuffer. Byte fields that point into a
 * reference-counted frame (kc_frame) and are large enough are added by
 * reference (evbuffer_add_reference) rather than copied, keeping record data
 * zero-copy on the way through the proxy.
 */
#ifndef KC_BUF_H
#define KC_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct evbuffer;

/* A string on the wire: len == -1 is a null string. Not NUL-terminated. */
typedef struct kc_str {
    const char *p;
    int32_t len;
} kc_str;

/* Bytes (or records) on the wire: len == -1 is null. */
typedef struct kc_bytes {
    const uint8_t *p;
    int32_t len;
} kc_bytes;

/* Raw tagged-field section of a flexible structure, kept verbatim so that an
 * encoder can pass unknown tags through unchanged. raw excludes the count. */
typedef struct kc_tags {
    uint32_t count;
    kc_bytes raw;
} kc_tags;

typedef struct kc_uuid {
    uint8_t b[16];
} kc_uuid;

/* Make a kc_str from a NUL-terminated C string (NULL gives a null string). */
kc_str kc_str_c(const char *s);
/* 1 if a equals the NUL-terminated string b. */
int kc_str_eq(kc_str a, const char *b);
/* Copy into a new NUL-terminated heap string (caller frees); NULL for null. */
char *kc_str_dup(kc_str s);

/* ---- reader ---- */

typedef struct kc_rd {
    const uint8_t *p;  /* start of the range */
    size_t len;        /* bytes in the range */
    size_t off;        /* next byte to read */
    const char *err;   /* first error (static string), NULL while all is well */
    size_t err_off;    /* offset of the first error */
} kc_rd;

void kc_rd_init(kc_rd *rd, const void *p, size_t len);
static inline size_t kc_rd_remain(const kc_rd *rd) { return rd->len - rd->off; }
/* Record a failure (keeps the first one). Always returns -1. */
int kc_rd_fail(kc_rd *rd, const char *why);

int8_t kc_rd_i8(kc_rd *rd);
int16_t kc_rd_i16(kc_rd *rd);
int32_t kc_rd_i32(kc_rd *rd);
int64_t kc_rd_i64(kc_rd *rd);
uint32_t kc_rd_u32(kc_rd *rd);
double kc_rd_f64(kc_rd *rd);
int kc_rd_bool(kc_rd *rd);
uint32_t kc_rd_uvarint(kc_rd *rd);
int32_t kc_rd_varint(kc_rd *rd);    /* zig-zag */
int64_t kc_rd_varlong(kc_rd *rd);   /* zig-zag */
kc_uuid kc_rd_uuid(kc_rd *rd);
/* Skip n bytes. */
void kc_rd_skip(kc_rd *rd, size_t n);

/* Strings: flexible selects the compact (uvarint length+1) form.
 * kc_rd_string rejects null; kc_rd_nstring accepts it. */
kc_str kc_rd_string(kc_rd *rd, int flexible);
kc_str kc_rd_nstring(kc_rd *rd, int flexible);
kc_bytes kc_rd_bytes(kc_rd *rd, int flexible);
kc_bytes kc_rd_nbytes(kc_rd *rd, int flexible);

/*
 * Array length. Returns the element count, or -1 for a null array (only when
 * nullable is set; otherwise null is an error). The count is checked against
 * the bytes left: each element takes at least min_elem_size bytes, so a count
 * that cannot fit fails here, before anything is allocated for it.
 */
int32_t kc_rd_arraylen(kc_rd *rd, int flexible, int nullable, size_t min_elem_size);

/* Tagged fields: read the section and keep it raw in *tags (may be NULL). */
void kc_rd_tags(kc_rd *rd, kc_tags *tags);

/* ---- reference-counted frames ---- */

/* One received frame (without its 4-byte size prefix). */
typedef struct kc_frame {
    int refcnt;      /* owners; freed when it drops to 0 */
    int pool_class;  /* private: the frame pool's size class, -1 for none */
    size_t len;      /* bytes in data */
    size_t cap;      /* private: bytes data can hold (len may shrink) */
    uint8_t data[];  /* the frame */
} kc_frame;

/* Allocate a frame of len bytes with one reference; NULL on allocation failure.
 * Frames of KC_FRAME_POOL_MIN..KC_FRAME_POOL_MAX bytes (header included) are
 * rounded up to a power of two and, once released, kept for the next frame
 * of that size, up to KC_FRAME_POOL_BYTES per thread: a WAL object's 8 MiB
 * and the client requests it references are then not page-faulted (and
 * zeroed by the kernel) anew each time. */
kc_frame *kc_frame_new(size_t len);
#define KC_FRAME_POOL_MIN ((size_t)128 * 1024)
#define KC_FRAME_POOL_MAX ((size_t)16 * 1024 * 1024)
#define KC_FRAME_POOL_BYTES ((size_t)32 * 1024 * 1024)
/* Above the classes, one released frame of up to KC_FRAME_BIG_KEEP bytes is
 * kept per thread (the largest), and a big frame takes it, grown in place if
 * need be: Fetch answers run to a consumer's fetch.max.bytes (50 MB by
 * default), and page-faulting fresh memory for each cost a quarter of the
 * proxy's CPU on the consume path. */
#define KC_FRAME_BIG_KEEP ((size_t)64 * 1024 * 1024)
/* Bytes held by the calling thread's pool (released frames kept for reuse). */
size_t kc_frame_pool_bytes(void);
/* Bytes of the calling thread's kept big frame (0 if none). */
size_t kc_frame_big_bytes(void);
/* All the calling thread keeps for reuse: its pool and its big frame (what
 * the kzproxy_frame_pool_bytes metric sums over threads). */
size_t kc_frame_kept_bytes(void);
/* Free every frame the calling thread's pool holds, the big one too. */
void kc_frame_pool_trim(void);
/* Give back what the calling thread kept and did not need: call it now and
 * then (now_ms: a monotonic clock); once per period_ms it frees, per size
 * class, as many pooled frames as stayed unused through the whole period
 * (the fewest the pool held at any moment of it), and the big frame unless
 * it was taken in the period. A thread in steady use keeps what it reuses;
 * one left idle after a burst gives everything back within two periods
 * (to the kernel too: with glibc, malloc_trim after a period that freed
 * any). period_ms <= 0: nothing. Returns the bytes freed. */
size_t kc_frame_pool_decay(int64_t now_ms, int64_t period_ms);
kc_frame *kc_frame_keep(kc_frame *f);
void kc_frame_release(kc_frame *f);
/* Append n bytes at p, which lie inside f, to eb by reference: eb takes its
 * own reference to f and drops it once the bytes are sent. 0, or -1. */
int kc_frame_add_ref(struct evbuffer *eb, kc_frame *f, const void *p, size_t n);

/* A frame being received whose size prefix has been read and checked.
 * libevent's socket bufferevent reads at most 4 KiB per event-loop turn, so
 * a 500 KB Produce request would take 125 turns and be copied once more out
 * of the input buffer. Instead the body goes straight into the frame: first
 * what the input buffer already holds, then the rest read from the socket
 * itself in as few calls as the kernel allows. */
typedef struct kc_frame_rx {
    kc_frame *f;  /* NULL when no frame is being received */
    size_t got;   /* bytes of f->data filled */
    size_t want;  /* the frame's size; f->len, what is allocated so far, may
                   * be less while the frame grows (kc_frame_rx_begin) */
    size_t turn_max; /* bytes one kc_frame_rx_fill reads from the socket at most;
                      * 0: KC_RX_TURN_MAX (cut-through reads smaller steps) */
    size_t whole_after; /* once this many bytes arrived, a growing frame is
                         * allocated whole instead of doubling (0: never);
                         * for a peer that sends what it announces */
} kc_frame_rx;

/* Bytes one kc_frame_rx_fill call reads from the socket at most. */
#define KC_RX_TURN_MAX (1u << 20)

/* What kc_frame_rx_begin reserves at most before any byte of the body has
 * arrived. A size prefix is only a claim: a peer that announces 400 MiB and
 * stalls costs this much, not 400 MiB. */
#define KC_RX_RESERVE (1u << 20)

/* Fill rx->f from in, then from the non-blocking socket fd (at most
 * KC_RX_TURN_MAX bytes of it), until the frame is complete, the socket has
 * nothing more, or the turn's bytes are read. A growing frame is enlarged
 * (doubling, at most to its size) only when the bytes received so far fill
 * it, so what it holds stays within twice what arrived (or KC_RX_RESERVE);
 * with rx->whole_after set, once that many bytes arrived it is allocated at
 * its size (a broker's answer: up to limits.max_response_bytes).
 * The socket is read only for a plain socket bufferevent (the bytes would
 * bypass any filter or TLS layer): over TLS pass fd -1, and the frame fills
 * from in alone, as the bufferevent decrypts into it. 1: complete (the caller takes rx->f, whose len is the frame's
 * size, and clears rx); 0: more to come; -1: the peer closed (errno 0), the
 * read failed (errno set) or growing the frame ran out of memory (ENOMEM). */
int kc_frame_rx_fill(kc_frame_rx *rx, struct evbuffer *in, int fd);
/* A source of a frame's bytes other than a socket: as recv() on a
 * non-blocking socket (>0 bytes, 0 the peer closed, -1 with errno, EAGAIN
 * when nothing more is there now). */
typedef ssize_t (*kc_rx_read_fn)(void *arg, void *buf, size_t len);
/* kc_frame_rx_fill reading from rd(arg) instead of a socket (NULL: from in
 * alone); TLS decrypts straight into the frame so. */
int kc_frame_rx_fill_fn(kc_frame_rx *rx, struct evbuffer *in, kc_rx_read_fn rd, void *arg);
/* Start receiving f: its size prefix is consumed, none of its bytes yet;
 * f is allocated whole (the caller bounded its size). */
void kc_frame_rx_start(kc_frame_rx *rx, kc_frame *f);
/* Start receiving a frame of len bytes (its size prefix consumed) that is
 * allocated as its bytes arrive: at first min(len, max(KC_RX_RESERVE,
 * have)) bytes, have being what the caller already holds of it (the bytes
 * in its input buffer). 0, or -1 when out of memory (rx stays empty). The
 * caller may then set rx->whole_after. */
int kc_frame_rx_begin(kc_frame_rx *rx, size_t len, size_t have);
/* The frame kc_frame_rx_fill completed; rx is empty again. */
kc_frame *kc_frame_rx_take(kc_frame_rx *rx);
/* Drop a frame being received (the connection is closing). */
void kc_frame_rx_drop(kc_frame_rx *rx);

/* Bytes per writev on connections that carry whole frames (brokers,
 * clients); libevent's default is 16 KiB, 31 calls for a 500 KB request. */
#define KC_TX_WRITE_MAX (128 * 1024)

/* ---- writer ---- */

/* Byte fields at least this long are added by reference when they lie inside
 * the writer's frame. Smaller ones are cheaper to copy. */
#define KC_WR_REF_MIN 512

/*
 * The writer's first failure is sticky, like the reader's: w->err is set
 * (non-zero) and w->why says what (a static string), and every later write
 * appends nothing, so an encoder writes a whole message and the caller tests
 * w->err once and discards the buffer. Two kinds of failure: memory ran out
 * (why "out of memory"), or a value cannot be represented in the version
 * being written (a string over 32767 bytes in a non-flexible version, whose
 * length is an int16): the message must not be sent in that version.
 * Code that sets w->err itself (an encoder's own allocation failed) leaves
 * why NULL; kc_wr_why() then says "out of memory".
 */
typedef struct kc_wr {
    struct evbuffer *eb;       /* destination, not owned */
    kc_frame *ref;             /* optional: frame that byte fields may point into */
    kc_frame *const *refs;     /* optional: more such frames (a merged response) */
    int nrefs;                 /* entries in refs */
    int err;                   /* set at the first failure; nothing is appended after it */
    const char *why;           /* the first failure (static string), NULL while all is well */
} kc_wr;

/* Longest string a non-flexible version can carry (its length is an int16). */
#define KC_STR_MAX_NONFLEX 32767

void kc_wr_init(kc_wr *w, struct evbuffer *eb, kc_frame *ref);
/* Record a failure (keeps the first one). Always returns -1. */
int kc_wr_fail(kc_wr *w, const char *why);
/* What failed ("out of memory" when err was set without a reason); NULL while all is well. */
const char *kc_wr_why(const kc_wr *w);
/* 1 when the failure is a value the version cannot carry (not memory): the
 * request is wrong for that version, and retrying it will not help. */
int kc_wr_unencodable(const kc_wr *w);
/* Let byte fields also be referenced from any of these frames (not owned;
 * they must outlive the call that encodes, the evbuffer keeps its own refs). */
void kc_wr_set_refs(kc_wr *w, kc_frame *const *refs, int nrefs);
void kc_wr_raw(kc_wr *w, const void *p, size_t n);
void kc_wr_i8(kc_wr *w, int8_t v);
void kc_wr_i16(kc_wr *w, int16_t v);
void kc_wr_i32(kc_wr *w, int32_t v);
void kc_wr_i64(kc_wr *w, int64_t v);
void kc_wr_u32(kc_wr *w, uint32_t v);
void kc_wr_f64(kc_wr *w, double v);
void kc_wr_bool(kc_wr *w, int v);
void kc_wr_uvarint(kc_wr *w, uint32_t v);
void kc_wr_varint(kc_wr *w, int32_t v);
void kc_wr_varlong(kc_wr *w, int64_t v);
void kc_wr_uuid(kc_wr *w, kc_uuid v);
/* Strings and bytes; a null value (len -1) is written as null in either form.
 * A string longer than KC_STR_MAX_NONFLEX in a non-flexible version fails
 * the writer (kc_wr_unencodable) instead of wrapping its int16 length. */
void kc_wr_string(kc_wr *w, kc_str s, int flexible);
void kc_wr_bytes(kc_wr *w, kc_bytes b, int flexible);
/* Array length; n == -1 writes a null array. */
void kc_wr_arraylen(kc_wr *w, int32_t n, int flexible);
/* Tagged fields: writes the kept section, or an empty one when tags is NULL. */
void kc_wr_tags(kc_wr *w, const kc_tags *tags);

/*
 * Frame a message: prepend the 4-byte big-endian size of everything in eb.
 * Returns 0, or -1 if the buffer is too big for a Kafka frame or memory ran out.
 */
int kc_wr_frame_size(struct evbuffer *eb);

#endif
