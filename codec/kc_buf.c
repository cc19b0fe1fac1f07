#include "config.h"

#include "codec/kc_buf.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

kc_str kc_str_c(const char *s)
{
    kc_str r = {s, s ? (int32_t)strlen(s) : -1};
    return r;
}

int kc_str_eq(kc_str a, const char *b)
{
    if (a.len < 0 || b == NULL)
        return a.len < 0 && b == NULL;
    size_t n = strlen(b);
    return (size_t)a.len == n && memcmp(a.p, b, n) == 0;
}

char *kc_str_dup(kc_str s)
{
    if (s.len < 0)
        return NULL;
    char *r = malloc((size_t)s.len + 1);
    if (r == NULL)
        return NULL;
    if (s.len > 0)
        memcpy(r, s.p, (size_t)s.len);
    r[s.len] = '\0';
    return r;
}

/* ---- reader ---- */

void kc_rd_init(kc_rd *rd, const void *p, size_t len)
{
    rd->p = p;
    rd->len = len;
    rd->off = 0;
    rd->err = NULL;
    rd->err_off = 0;
}

int kc_rd_fail(kc_rd *rd, const char *why)
{
    if (rd->err == NULL) {
        rd->err = why;
        rd->err_off = rd->off;
    }
    return -1;
}

/* Returns a pointer to n readable bytes and advances, or NULL on failure. */
static const uint8_t *kc_rd_take(kc_rd *rd, size_t n)
{
    if (rd->err != NULL)
        return NULL;
    if (kc_rd_remain(rd) < n) {
        kc_rd_fail(rd, "truncated field");
        return NULL;
    }
    const uint8_t *q = rd->p + rd->off;
    rd->off += n;
    return q;
}

static uint64_t kc_be(const uint8_t *q, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | q[i];
    return v;
}

int8_t kc_rd_i8(kc_rd *rd)
{
    const uint8_t *q = kc_rd_take(rd, 1);
    return q ? (int8_t)q[0] : 0;
}

int16_t kc_rd_i16(kc_rd *rd)
{
    const uint8_t *q = kc_rd_take(rd, 2);
    return q ? (int16_t)(uint16_t)kc_be(q, 2) : 0;
}

int32_t kc_rd_i32(kc_rd *rd)
{
    const uint8_t *q = kc_rd_take(rd, 4);
    return q ? (int32_t)(uint32_t)kc_be(q, 4) : 0;
}

uint32_t kc_rd_u32(kc_rd *rd)
{
    const uint8_t *q = kc_rd_take(rd, 4);
    return q ? (uint32_t)kc_be(q, 4) : 0;
}

int64_t kc_rd_i64(kc_rd *rd)
{
    const uint8_t *q = kc_rd_take(rd, 8);
    return q ? (int64_t)kc_be(q, 8) : 0;
}

double kc_rd_f64(kc_rd *rd)
{
    const uint8_t *q = kc_rd_take(rd, 8);
    if (q == NULL)
        return 0;
    uint64_t u = kc_be(q, 8);
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

int kc_rd_bool(kc_rd *rd)
{
    return kc_rd_i8(rd) != 0;
}

static uint64_t kc_rd_uvarlong_max(kc_rd *rd, int maxbytes)
{
    uint64_t v = 0;
    for (int i = 0; i < maxbytes; i++) {
        const uint8_t *q = kc_rd_take(rd, 1);
        if (q == NULL)
            return 0;
        v |= (uint64_t)(q[0] & 0x7f) << (7 * i);
        if ((q[0] & 0x80) == 0)
            return v;
    }
    kc_rd_fail(rd, "varint too long");
    return 0;
}

uint32_t kc_rd_uvarint(kc_rd *rd)
{
    uint64_t v = kc_rd_uvarlong_max(rd, 5);
    if (v > UINT32_MAX) {
        kc_rd_fail(rd, "varint out of range");
        return 0;
    }
    return (uint32_t)v;
}

int32_t kc_rd_varint(kc_rd *rd)
{
    uint32_t u = kc_rd_uvarint(rd);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

int64_t kc_rd_varlong(kc_rd *rd)
{
    uint64_t u = kc_rd_uvarlong_max(rd, 10);
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

kc_uuid kc_rd_uuid(kc_rd *rd)
{
    kc_uuid u;
    const uint8_t *q = kc_rd_take(rd, 16);
    if (q)
        memcpy(u.b, q, 16);
    else
        memset(u.b, 0, 16);
    return u;
}

void kc_rd_skip(kc_rd *rd, size_t n)
{
    (void)kc_rd_take(rd, n);
}

/* Length of a string/bytes field: -1 for null, -2 on error. */
static int64_t kc_rd_len(kc_rd *rd, int flexible, int wide)
{
    int64_t n;
    if (flexible)
        n = (int64_t)kc_rd_uvarint(rd) - 1;
    else
        n = wide ? kc_rd_i32(rd) : kc_rd_i16(rd);
    if (rd->err)
        return -2;
    if (n < -1) {
        kc_rd_fail(rd, "negative length");
        return -2;
    }
    if (n >= 0 && (uint64_t)n > kc_rd_remain(rd)) {
        kc_rd_fail(rd, "length exceeds frame");
        return -2;
    }
    return n;
}

kc_str kc_rd_nstring(kc_rd *rd, int flexible)
{
    kc_str s = {NULL, -1};
    int64_t n = kc_rd_len(rd, flexible, 0);
    if (n < 0)
        return s;
    s.p = (const char *)kc_rd_take(rd, (size_t)n);
    s.len = (int32_t)n;
    return s;
}

kc_str kc_rd_string(kc_rd *rd, int flexible)
{
    kc_str s = kc_rd_nstring(rd, flexible);
    if (s.len < 0 && rd->err == NULL)
        kc_rd_fail(rd, "null in non-nullable string");
    return s;
}

kc_bytes kc_rd_nbytes(kc_rd *rd, int flexible)
{
    kc_bytes b = {NULL, -1};
    int64_t n = kc_rd_len(rd, flexible, 1);
    if (n < 0)
        return b;
    b.p = kc_rd_take(rd, (size_t)n);
    b.len = (int32_t)n;
    return b;
}

kc_bytes kc_rd_bytes(kc_rd *rd, int flexible)
{
    kc_bytes b = kc_rd_nbytes(rd, flexible);
    if (b.len < 0 && rd->err == NULL)
        kc_rd_fail(rd, "null in non-nullable bytes");
    return b;
}

int32_t kc_rd_arraylen(kc_rd *rd, int flexible, int nullable, size_t min_elem_size)
{
    int64_t n;
    if (flexible)
        n = (int64_t)kc_rd_uvarint(rd) - 1;
    else
        n = kc_rd_i32(rd);
    if (rd->err)
        return 0;
    if (n == -1) {
        if (!nullable) {
            kc_rd_fail(rd, "null in non-nullable array");
            return 0;
        }
        return -1;
    }
    if (n < -1) {
        kc_rd_fail(rd, "negative array count");
        return 0;
    }
    if (min_elem_size == 0)
        min_elem_size = 1;
    if ((uint64_t)n > kc_rd_remain(rd) / min_elem_size) {
        kc_rd_fail(rd, "array count exceeds frame");
        return 0;
    }
    return (int32_t)n;
}

void kc_rd_tags(kc_rd *rd, kc_tags *tags)
{
    uint32_t count = kc_rd_uvarint(rd);
    size_t start = rd->off;
    if (rd->err == NULL && count > kc_rd_remain(rd) / 2)
        kc_rd_fail(rd, "tagged field count exceeds frame");
    for (uint32_t i = 0; i < count && rd->err == NULL; i++) {
        (void)kc_rd_uvarint(rd); /* tag */
        uint32_t size = kc_rd_uvarint(rd);
        kc_rd_skip(rd, size);
    }
    if (tags) {
        tags->count = rd->err ? 0 : count;
        tags->raw.p = rd->p + start;
        tags->raw.len = rd->err ? 0 : (int32_t)(rd->off - start);
    }
}

/* ---- writer ---- */

static const char kc_wr_oom[] = "out of memory";

void kc_wr_init(kc_wr *w, struct evbuffer *eb, kc_frame *ref)
{
    w->eb = eb;
    w->ref = ref;
    w->refs = NULL;
    w->nrefs = 0;
    w->err = 0;
    w->why = NULL;
}

int kc_wr_fail(kc_wr *w, const char *why)
{
    if (!w->err) {
        w->err = 1;
        w->why = why;
    }
    return -1;
}

const char *kc_wr_why(const kc_wr *w)
{
    if (!w->err)
        return NULL;
    return w->why ? w->why : kc_wr_oom;
}

int kc_wr_unencodable(const kc_wr *w)
{
    return w->err && w->why != NULL && w->why != kc_wr_oom;
}

void kc_wr_set_refs(kc_wr *w, kc_frame *const *refs, int nrefs)
{
    w->refs = refs;
    w->nrefs = nrefs;
}

/* The frame among the writer's references that holds [p, p+n), or NULL. */
static kc_frame *kc_wr_owner(const kc_wr *w, const uint8_t *p, size_t n)
{
    if (w->ref && p >= w->ref->data && p + n <= w->ref->data + w->ref->len)
        return w->ref;
    for (int i = 0; i < w->nrefs; i++) {
        kc_frame *f = w->refs[i];
        if (f && p >= f->data && p + n <= f->data + f->len)
            return f;
    }
    return NULL;
}

void kc_wr_raw(kc_wr *w, const void *p, size_t n)
{
    if (w->err || n == 0)
        return;
    if (evbuffer_add(w->eb, p, n) != 0)
        kc_wr_fail(w, kc_wr_oom);
}

static void kc_wr_be(kc_wr *w, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = n - 1; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
    kc_wr_raw(w, b, (size_t)n);
}

void kc_wr_i8(kc_wr *w, int8_t v) { kc_wr_be(w, (uint8_t)v, 1); }
void kc_wr_i16(kc_wr *w, int16_t v) { kc_wr_be(w, (uint16_t)v, 2); }
void kc_wr_i32(kc_wr *w, int32_t v) { kc_wr_be(w, (uint32_t)v, 4); }
void kc_wr_u32(kc_wr *w, uint32_t v) { kc_wr_be(w, v, 4); }
void kc_wr_i64(kc_wr *w, int64_t v) { kc_wr_be(w, (uint64_t)v, 8); }
void kc_wr_bool(kc_wr *w, int v) { kc_wr_i8(w, v ? 1 : 0); }

void kc_wr_f64(kc_wr *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    kc_wr_be(w, u, 8);
}

static void kc_wr_uvarlong(kc_wr *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    kc_wr_raw(w, b, n);
}

void kc_wr_uvarint(kc_wr *w, uint32_t v) { kc_wr_uvarlong(w, v); }

void kc_wr_varint(kc_wr *w, int32_t v)
{
    kc_wr_uvarlong(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

void kc_wr_varlong(kc_wr *w, int64_t v)
{
    kc_wr_uvarlong(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void kc_wr_uuid(kc_wr *w, kc_uuid v) { kc_wr_raw(w, v.b, 16); }

/* The compact (uvarint length + 1) form of a length; -1 (null) is 0. */
static uint32_t kc_wr_compact_len(int32_t n)
{
    return n < 0 ? 0 : (uint32_t)n + 1u;
}

void kc_wr_string(kc_wr *w, kc_str s, int flexible)
{
    int32_t n = s.len < 0 ? -1 : s.len;
    if (flexible) {
        kc_wr_uvarint(w, kc_wr_compact_len(n));
    } else if (n > KC_STR_MAX_NONFLEX) {
        /* An int16 length would wrap (40000 reads back as -25536): refuse
         * rather than write a frame that the receiver misparses. */
        kc_wr_fail(w, "string longer than 32767 bytes in a non-flexible version");
        return;
    } else {
        kc_wr_i16(w, (int16_t)n);
    }
    if (n > 0)
        kc_wr_raw(w, s.p, (size_t)n);
}

void kc_wr_bytes(kc_wr *w, kc_bytes b, int flexible)
{
    int32_t n = b.len < 0 ? -1 : b.len;
    if (flexible)
        kc_wr_uvarint(w, kc_wr_compact_len(n));
    else
        kc_wr_i32(w, n);
    if (n <= 0 || w->err)
        return;
    kc_frame *f = n >= KC_WR_REF_MIN ? kc_wr_owner(w, b.p, (size_t)n) : NULL;
    if (f != NULL) {
        if (kc_frame_add_ref(w->eb, f, b.p, (size_t)n) != 0)
            kc_wr_fail(w, kc_wr_oom);
        return;
    }
    kc_wr_raw(w, b.p, (size_t)n);
}

void kc_wr_arraylen(kc_wr *w, int32_t n, int flexible)
{
    if (n < -1)
        n = -1;
    if (flexible)
        kc_wr_uvarint(w, kc_wr_compact_len(n));
    else
        kc_wr_i32(w, n);
}

void kc_wr_tags(kc_wr *w, const kc_tags *tags)
{
    if (tags == NULL || tags->count == 0) {
        kc_wr_uvarint(w, 0);
        return;
    }
    kc_wr_uvarint(w, tags->count);
    kc_wr_raw(w, tags->raw.p, (size_t)tags->raw.len);
}

int kc_wr_frame_size(struct evbuffer *eb)
{
    size_t n = evbuffer_get_length(eb);
    if (n > INT32_MAX)
        return -1;
    uint8_t b[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    return evbuffer_prepend(eb, b, 4) == 0 ? 0 : -1;
}
