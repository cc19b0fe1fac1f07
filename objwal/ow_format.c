#include "config.h"

#include "objwal/ow_format.h"

#include "codec/kc_crc32c.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ow_err_names[OW_ERR__COUNT] = {
    [OW_OK] = "ok",
    [OW_EAGAIN] = "again",
    [OW_EINVAL] = "invalid",
    [OW_ENOMEM] = "nomem",
    [OW_ETOOBIG] = "too_big",
    [OW_ECORRUPT] = "corrupt",
    [OW_ETRUNCATED] = "truncated",
    [OW_ENOTFOUND] = "not_found",
    [OW_EEXISTS] = "exists",
    [OW_EAUTH] = "auth",
    [OW_ECLIENT] = "client",
    [OW_ESERVER] = "server",
    [OW_ETIMEOUT] = "timeout",
    [OW_EIO] = "io",
    [OW_ECANCELED] = "canceled",
};

const char *ow_err_name(int err)
{
    if (err < 0 || err >= OW_ERR__COUNT || ow_err_names[err] == NULL)
        return "unknown";
    return ow_err_names[err];
}

static int ow_fail(int err, char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ow_fail(int err, char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr != NULL && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

static uint32_t ow_be32(const uint8_t *q)
{
    return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
}

static uint64_t ow_be64(const uint8_t *q)
{
    return (uint64_t)ow_be32(q) << 32 | ow_be32(q + 4);
}

static void ow_put16(uint8_t *q, uint16_t v)
{
    q[0] = (uint8_t)(v >> 8);
    q[1] = (uint8_t)v;
}

static void ow_put32(uint8_t *q, uint32_t v)
{
    q[0] = (uint8_t)(v >> 24);
    q[1] = (uint8_t)(v >> 16);
    q[2] = (uint8_t)(v >> 8);
    q[3] = (uint8_t)v;
}

static void ow_put64(uint8_t *q, uint64_t v)
{
    ow_put32(q, (uint32_t)(v >> 32));
    ow_put32(q + 4, (uint32_t)v);
}

/* ---- decoding ---- */

int ow_trailer_decode(const uint8_t *p, size_t len, uint64_t object_size, ow_trailer *t,
                      char *errstr, size_t errstr_size)
{
    if (len != OW_TRAILER_SIZE)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "trailer is %zu bytes, not %d", len,
                       OW_TRAILER_SIZE);
    if (memcmp(p + 28, OW_TRAILER_MAGIC, 4) != 0)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "trailer magic is missing");
    uint32_t crc = ow_be32(p + 24);
    if (kc_crc32c(0, p, 24) != crc)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "trailer CRC32C mismatch");
    t->index_off = ow_be64(p);
    t->index_len = ow_be32(p + 8);
    t->index_crc = ow_be32(p + 12);
    t->nchunks = ow_be32(p + 16);
    t->header_len = ow_be32(p + 20);
    if (t->header_len < OW_HEADER_MIN || t->header_len > OW_HEADER_MIN + 2 * OW_MAX_NAME)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "trailer: header length %" PRIu32
                       " out of range", t->header_len);
    if (t->nchunks > OW_MAX_CHUNKS)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "trailer: %" PRIu32 " chunks (max %d)",
                       t->nchunks, OW_MAX_CHUNKS);
    if (t->index_len < 4 || (uint64_t)t->nchunks * OW_INDEX_ENTRY_MIN + 4 > t->index_len)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size,
                       "trailer: index of %" PRIu32 " bytes cannot hold %" PRIu32 " chunks",
                       t->index_len, t->nchunks);
    if (t->index_off < t->header_len || t->index_off > OW_MAX_OBJECT)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "trailer: index offset %" PRIu64
                       " out of range", t->index_off);
    if (object_size != 0 && t->index_off + t->index_len + OW_TRAILER_SIZE != object_size)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size,
                       "trailer: index at %" PRIu64 "+%" PRIu32 " does not end at the trailer",
                       t->index_off, t->index_len);
    return OW_OK;
}

static kc_str ow_rd_name(kc_rd *rd)
{
    kc_str s = {NULL, 0};
    uint16_t n = (uint16_t)kc_rd_i16(rd);
    if (n > OW_MAX_NAME) {
        kc_rd_fail(rd, "name longer than 255 bytes");
        return s;
    }
    if (kc_rd_remain(rd) < n) {
        kc_rd_fail(rd, "truncated name");
        return s;
    }
    s.p = (const char *)rd->p + rd->off;
    s.len = n;
    kc_rd_skip(rd, n);
    return s;
}

int ow_index_decode(const uint8_t *p, size_t len, const ow_trailer *t, ow_index_entry **entries,
                    char *errstr, size_t errstr_size)
{
    *entries = NULL;
    if (len != t->index_len)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "index is %zu bytes, trailer says %" PRIu32,
                       len, t->index_len);
    if (kc_crc32c(0, p, len) != t->index_crc)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "index CRC32C mismatch");
    kc_rd rd;
    kc_rd_init(&rd, p, len);
    uint32_t n = kc_rd_u32(&rd);
    if (n != t->nchunks)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size,
                       "index has %" PRIu32 " chunks, trailer says %" PRIu32, n, t->nchunks);
    ow_index_entry *e = calloc(n ? n : 1, sizeof(*e));
    if (e == NULL)
        return ow_fail(OW_ENOMEM, errstr, errstr_size, "out of memory decoding index");
    uint64_t next = t->header_len;
    for (uint32_t i = 0; i < n && rd.err == NULL; i++) {
        e[i].dest = ow_rd_name(&rd);
        e[i].topic = ow_rd_name(&rd);
        e[i].partition = kc_rd_i32(&rd);
        e[i].range.off = (uint64_t)kc_rd_i64(&rd);
        e[i].range.len = kc_rd_u32(&rd);
        e[i].range.crc32c = kc_rd_u32(&rd);
        if (rd.err != NULL)
            break;
        if (e[i].range.off != next || e[i].range.len == 0 ||
            e[i].range.off + e[i].range.len > t->index_off) {
            uint64_t bad_off = e[i].range.off;
            uint32_t bad_len = e[i].range.len;
            free(e);
            return ow_fail(OW_ECORRUPT, errstr, errstr_size,
                           "index entry %" PRIu32 " (offset %" PRIu64 ", %" PRIu32
                           " bytes) does not follow the previous chunk",
                           i, bad_off, bad_len);
        }
        next += e[i].range.len;
    }
    if (rd.err == NULL && kc_rd_remain(&rd) != 0)
        kc_rd_fail(&rd, "bytes after the last entry");
    if (rd.err != NULL) {
        free(e);
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "index: %s at index byte %zu", rd.err,
                       rd.err_off);
    }
    if (next != t->index_off) {
        free(e);
        return ow_fail(OW_ECORRUPT, errstr, errstr_size,
                       "chunks end at %" PRIu64 " but the index starts at %" PRIu64, next,
                       t->index_off);
    }
    *entries = e;
    return OW_OK;
}

int ow_range_verify(const ow_range *r, const uint8_t *p, size_t got_len, char *errstr,
                    size_t errstr_size)
{
    if (got_len < r->len)
        return ow_range_check(r, got_len, 0, errstr, errstr_size);
    return ow_range_check(r, got_len, kc_crc32c(0, p, r->len), errstr, errstr_size);
}

int ow_range_check(const ow_range *r, size_t got_len, uint32_t crc, char *errstr,
                   size_t errstr_size)
{
    if (got_len < r->len)
        return ow_fail(OW_ETRUNCATED, errstr, errstr_size,
                       "range at %" PRIu64 " is truncated: %zu of %" PRIu32 " bytes", r->off,
                       got_len, r->len);
    if (crc != r->crc32c)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size,
                       "range at %" PRIu64 " (%" PRIu32 " bytes): CRC32C is %08" PRIx32
                       ", expected %08" PRIx32, r->off, r->len, crc, r->crc32c);
    return OW_OK;
}

int ow_obj_parse(const uint8_t *p, size_t len, int verify_chunks, ow_obj_view *v, char *errstr,
                 size_t errstr_size)
{
    memset(v, 0, sizeof(*v));
    size_t m = len < 4 ? len : 4;
    if (memcmp(p, OW_HEADER_MAGIC, m) != 0)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "not a WAL object (bad magic)");
    if (len < OW_HEADER_MIN)
        return ow_fail(OW_ETRUNCATED, errstr, errstr_size,
                       "object truncated to %zu bytes, inside its header", len);
    kc_rd rd;
    kc_rd_init(&rd, p, len);
    kc_rd_skip(&rd, 4);
    v->version = (uint16_t)kc_rd_i16(&rd);
    uint16_t flags = (uint16_t)kc_rd_i16(&rd);
    uint32_t header_len = kc_rd_u32(&rd);
    v->object_size = (uint64_t)kc_rd_i64(&rd);
    v->created_ms = kc_rd_i64(&rd);
    if (v->version != OW_FORMAT_VERSION)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "unsupported format version %u",
                       v->version);
    if (flags != 0)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "unknown header flags 0x%04x", flags);
    if (header_len < OW_HEADER_MIN || header_len > OW_HEADER_MIN + 2 * OW_MAX_NAME)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "header length %" PRIu32 " out of range",
                       header_len);
    /* Before calling a short object truncated, check the header length
     * against the name lengths that are present: a corrupt length field
     * must not pass for a truncation. */
    uint32_t pl = (uint32_t)p[28] << 8 | p[29];
    if (pl > OW_MAX_NAME)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "header: proxy id longer than 255 bytes");
    if (32 + (size_t)pl <= len) {
        uint32_t zl = (uint32_t)p[30 + pl] << 8 | p[31 + pl];
        if (OW_HEADER_MIN + pl + zl != header_len)
            return ow_fail(OW_ECORRUPT, errstr, errstr_size,
                           "header length %" PRIu32 " does not match its fields", header_len);
    } else if (OW_HEADER_MIN + pl > header_len) {
        return ow_fail(OW_ECORRUPT, errstr, errstr_size,
                       "header length %" PRIu32 " does not match its fields", header_len);
    }
    if (len < header_len)
        return ow_fail(OW_ETRUNCATED, errstr, errstr_size,
                       "object truncated to %zu bytes, inside its %" PRIu32 "-byte header", len,
                       header_len);
    kc_rd_init(&rd, p, header_len - 4);
    kc_rd_skip(&rd, 28);
    v->proxy_id = ow_rd_name(&rd);
    v->zone = ow_rd_name(&rd);
    if (rd.err != NULL || kc_rd_remain(&rd) != 0)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "header fields do not fill its length");
    if (kc_crc32c(0, p, header_len - 4) != ow_be32(p + header_len - 4))
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "header CRC32C mismatch");
    if (v->object_size < (uint64_t)header_len + 4 + OW_TRAILER_SIZE ||
        v->object_size > OW_MAX_OBJECT)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size, "header: object size %" PRIu64
                       " out of range", v->object_size);
    if (len < v->object_size)
        return ow_fail(OW_ETRUNCATED, errstr, errstr_size,
                       "object truncated: %zu of %" PRIu64 " bytes", len, v->object_size);
    if (len > v->object_size)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size,
                       "%zu bytes after the end of the %" PRIu64 "-byte object",
                       len - (size_t)v->object_size, v->object_size);
    int rc = ow_trailer_decode(p + len - OW_TRAILER_SIZE, OW_TRAILER_SIZE, len, &v->trailer,
                               errstr, errstr_size);
    if (rc != OW_OK)
        return rc;
    if (v->trailer.header_len != header_len)
        return ow_fail(OW_ECORRUPT, errstr, errstr_size,
                       "trailer names a %" PRIu32 "-byte header, the header is %" PRIu32,
                       v->trailer.header_len, header_len);
    rc = ow_index_decode(p + v->trailer.index_off, v->trailer.index_len, &v->trailer, &v->entries,
                         errstr, errstr_size);
    if (rc != OW_OK)
        return rc;
    v->nentries = v->trailer.nchunks;
    if (verify_chunks) {
        for (uint32_t i = 0; i < v->nentries; i++) {
            const ow_range *r = &v->entries[i].range;
            rc = ow_range_verify(r, p + r->off, r->len, errstr, errstr_size);
            if (rc != OW_OK) {
                ow_obj_view_clear(v);
                return rc;
            }
        }
    }
    return OW_OK;
}

void ow_obj_view_clear(ow_obj_view *v)
{
    free(v->entries);
    v->entries = NULL;
    v->nentries = 0;
}

/* ---- building ---- */

typedef struct ow_bgroup {
    char *dest;
    struct evbuffer *data;
    uint64_t bytes;
} ow_bgroup;

typedef struct ow_bchunk {
    uint32_t group;
    char *topic;
    int32_t partition;
    uint64_t group_off; /* offset inside its group's data */
    uint32_t len;
    uint32_t crc;
} ow_bchunk;

struct ow_obj_builder {
    char *proxy_id;
    char *zone;
    int64_t created_ms;
    ow_bgroup *groups;
    uint32_t ngroups, groups_cap;
    ow_bchunk *chunks;
    uint32_t nchunks, chunks_cap;
    uint64_t data_bytes;
    uint64_t index_bytes; /* the index as it would be encoded now */
    size_t names_bytes;   /* dest+topic strings of all chunk infos, NUL included */
};

static uint32_t ow_header_len(const ow_obj_builder *b)
{
    return (uint32_t)(OW_HEADER_MIN + strlen(b->proxy_id) + strlen(b->zone));
}

ow_obj_builder *ow_obj_builder_new(const char *proxy_id, const char *zone, int64_t created_ms)
{
    if (proxy_id == NULL)
        proxy_id = "";
    if (zone == NULL)
        zone = "";
    if (strlen(proxy_id) > OW_MAX_NAME || strlen(zone) > OW_MAX_NAME)
        return NULL;
    ow_obj_builder *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->proxy_id = strdup(proxy_id);
    b->zone = strdup(zone);
    if (b->proxy_id == NULL || b->zone == NULL) {
        ow_obj_builder_free(b);
        return NULL;
    }
    b->created_ms = created_ms;
    b->index_bytes = 4;
    return b;
}

static void ow_builder_reset(ow_obj_builder *b)
{
    for (uint32_t i = 0; i < b->ngroups; i++) {
        free(b->groups[i].dest);
        if (b->groups[i].data != NULL)
            evbuffer_free(b->groups[i].data);
    }
    for (uint32_t i = 0; i < b->nchunks; i++)
        free(b->chunks[i].topic);
    b->ngroups = b->nchunks = 0;
    b->data_bytes = 0;
    b->index_bytes = 4;
    b->names_bytes = 0;
}

void ow_obj_builder_free(ow_obj_builder *b)
{
    if (b == NULL)
        return;
    ow_builder_reset(b);
    free(b->groups);
    free(b->chunks);
    free(b->proxy_id);
    free(b->zone);
    free(b);
}

uint32_t ow_obj_builder_nchunks(const ow_obj_builder *b)
{
    return b->nchunks;
}

uint64_t ow_obj_builder_data_bytes(const ow_obj_builder *b)
{
    return b->data_bytes;
}

uint64_t ow_obj_builder_size(const ow_obj_builder *b)
{
    return ow_header_len(b) + b->data_bytes + b->index_bytes + OW_TRAILER_SIZE;
}

/* Find or add the group of dest; -1 on allocation failure. */
static int64_t ow_builder_group(ow_obj_builder *b, const char *dest)
{
    for (uint32_t i = 0; i < b->ngroups; i++)
        if (strcmp(b->groups[i].dest, dest) == 0)
            return i;
    if (b->ngroups == b->groups_cap) {
        uint32_t cap = b->groups_cap ? b->groups_cap * 2 : 8;
        ow_bgroup *ng = realloc(b->groups, cap * sizeof(*ng));
        if (ng == NULL)
            return -1;
        b->groups = ng;
        b->groups_cap = cap;
    }
    ow_bgroup *g = &b->groups[b->ngroups];
    g->dest = strdup(dest);
    g->data = evbuffer_new();
    g->bytes = 0;
    if (g->dest == NULL || g->data == NULL) {
        free(g->dest);
        if (g->data != NULL)
            evbuffer_free(g->data);
        return -1;
    }
    return b->ngroups++;
}

/* Checks and bookkeeping shared by both add calls; the caller moves the
 * bytes into the group once this returned OW_OK. */
static int ow_builder_prepare(ow_obj_builder *b, const char *dest, const char *topic, size_t len,
                              ow_bchunk **out)
{
    if (dest == NULL || topic == NULL || len == 0 || len > UINT32_MAX)
        return OW_EINVAL;
    size_t dl = strlen(dest), tl = strlen(topic);
    if (dl > OW_MAX_NAME || tl > OW_MAX_NAME)
        return OW_EINVAL;
    if (b->nchunks >= OW_MAX_CHUNKS ||
        ow_obj_builder_size(b) + len + OW_INDEX_ENTRY_MIN + dl + tl > OW_MAX_OBJECT)
        return OW_ETOOBIG;
    if (b->nchunks == b->chunks_cap) {
        uint32_t cap = b->chunks_cap ? b->chunks_cap * 2 : 64;
        ow_bchunk *nc = realloc(b->chunks, cap * sizeof(*nc));
        if (nc == NULL)
            return OW_ENOMEM;
        b->chunks = nc;
        b->chunks_cap = cap;
    }
    int64_t g = ow_builder_group(b, dest);
    if (g < 0)
        return OW_ENOMEM;
    ow_bchunk *c = &b->chunks[b->nchunks];
    c->topic = strdup(topic);
    if (c->topic == NULL)
        return OW_ENOMEM;
    c->group = (uint32_t)g;
    c->len = (uint32_t)len;
    c->group_off = b->groups[g].bytes;
    *out = c;
    return OW_OK;
}

static void ow_builder_commit(ow_obj_builder *b, ow_bchunk *c, int32_t partition, uint32_t *chunk)
{
    c->partition = partition;
    b->groups[c->group].bytes += c->len;
    b->data_bytes += c->len;
    size_t dl = strlen(b->groups[c->group].dest), tl = strlen(c->topic);
    b->index_bytes += OW_INDEX_ENTRY_MIN + dl + tl;
    b->names_bytes += dl + tl + 2;
    if (chunk != NULL)
        *chunk = b->nchunks;
    b->nchunks++;
}

int ow_obj_builder_add(ow_obj_builder *b, const char *dest, const char *topic, int32_t partition,
                       const void *p, size_t len, uint32_t *chunk)
{
    ow_bchunk *c;
    int rc = ow_builder_prepare(b, dest, topic, len, &c);
    if (rc != OW_OK)
        return rc;
    if (evbuffer_add(b->groups[c->group].data, p, len) != 0) {
        free(c->topic);
        return OW_ENOMEM;
    }
    c->crc = kc_crc32c(0, p, len);
    ow_builder_commit(b, c, partition, chunk);
    return OW_OK;
}

static uint32_t ow_evbuffer_crc(struct evbuffer *eb)
{
    int n = evbuffer_peek(eb, -1, NULL, NULL, 0);
    uint32_t crc = 0;
    if (n <= 0)
        return crc;
    struct evbuffer_iovec stackv[16];
    struct evbuffer_iovec *v = n <= 16 ? stackv : malloc((size_t)n * sizeof(*v));
    if (v == NULL) {
        /* Rare: walk the chains one at a time instead. */
        struct evbuffer_ptr pos;
        evbuffer_ptr_set(eb, &pos, 0, EVBUFFER_PTR_SET);
        struct evbuffer_iovec one;
        while (evbuffer_peek(eb, -1, &pos, &one, 1) > 0 && one.iov_len > 0) {
            crc = kc_crc32c(crc, one.iov_base, one.iov_len);
            if (evbuffer_ptr_set(eb, &pos, one.iov_len, EVBUFFER_PTR_ADD) != 0)
                break;
        }
        return crc;
    }
    n = evbuffer_peek(eb, -1, NULL, v, n);
    for (int i = 0; i < n; i++)
        crc = kc_crc32c(crc, v[i].iov_base, v[i].iov_len);
    if (v != stackv)
        free(v);
    return crc;
}

int ow_obj_builder_add_evbuffer(ow_obj_builder *b, const char *dest, const char *topic,
                                int32_t partition, struct evbuffer *eb, const uint32_t *crc,
                                uint32_t *chunk)
{
    ow_bchunk *c;
    size_t len = evbuffer_get_length(eb);
    int rc = ow_builder_prepare(b, dest, topic, len, &c);
    if (rc != OW_OK)
        return rc;
    uint32_t sum = crc != NULL ? *crc : ow_evbuffer_crc(eb);
    if (evbuffer_add_buffer(b->groups[c->group].data, eb) != 0) {
        free(c->topic);
        return OW_ENOMEM;
    }
    c->crc = sum;
    ow_builder_commit(b, c, partition, chunk);
    return OW_OK;
}

struct evbuffer *ow_obj_builder_finish(ow_obj_builder *b, ow_chunk_info **chunks, char **names)
{
    *chunks = NULL;
    *names = NULL;
    uint32_t hl = ow_header_len(b);
    uint64_t index_off = hl + b->data_bytes;
    uint64_t size = ow_obj_builder_size(b);
    struct evbuffer *out = evbuffer_new();
    uint8_t *hdr = malloc(hl);
    uint8_t *idx = malloc(b->index_bytes);
    uint64_t *group_base = malloc((b->ngroups ? b->ngroups : 1) * sizeof(*group_base));
    ow_chunk_info *ci = malloc((b->nchunks ? b->nchunks : 1) * sizeof(*ci));
    char *nm = malloc(b->names_bytes ? b->names_bytes : 1);
    if (out == NULL || hdr == NULL || idx == NULL || group_base == NULL || ci == NULL ||
        nm == NULL)
        goto fail;

    /* header */
    size_t pl = strlen(b->proxy_id), zl = strlen(b->zone);
    memcpy(hdr, OW_HEADER_MAGIC, 4);
    ow_put16(hdr + 4, OW_FORMAT_VERSION);
    ow_put16(hdr + 6, 0);
    ow_put32(hdr + 8, hl);
    ow_put64(hdr + 12, size);
    ow_put64(hdr + 20, (uint64_t)b->created_ms);
    ow_put16(hdr + 28, (uint16_t)pl);
    memcpy(hdr + 30, b->proxy_id, pl);
    ow_put16(hdr + 30 + pl, (uint16_t)zl);
    memcpy(hdr + 32 + pl, b->zone, zl);
    ow_put32(hdr + hl - 4, kc_crc32c(0, hdr, hl - 4));

    /* chunk offsets: groups in order of first appearance */
    uint64_t off = hl;
    for (uint32_t g = 0; g < b->ngroups; g++) {
        group_base[g] = off;
        off += b->groups[g].bytes;
    }
    char *np = nm;
    for (uint32_t i = 0; i < b->nchunks; i++) {
        const ow_bchunk *c = &b->chunks[i];
        size_t dl = strlen(b->groups[c->group].dest) + 1, tl = strlen(c->topic) + 1;
        memcpy(np, b->groups[c->group].dest, dl);
        ci[i].dest = np;
        np += dl;
        memcpy(np, c->topic, tl);
        ci[i].topic = np;
        np += tl;
        ci[i].partition = c->partition;
        ci[i].range.off = group_base[c->group] + c->group_off;
        ci[i].range.len = c->len;
        ci[i].range.crc32c = c->crc;
    }

    /* index, in object order */
    uint8_t *q = idx;
    ow_put32(q, b->nchunks);
    q += 4;
    for (uint32_t g = 0; g < b->ngroups; g++) {
        for (uint32_t i = 0; i < b->nchunks; i++) {
            const ow_bchunk *c = &b->chunks[i];
            if (c->group != g)
                continue;
            size_t dl = strlen(b->groups[g].dest), tl = strlen(c->topic);
            ow_put16(q, (uint16_t)dl);
            memcpy(q + 2, b->groups[g].dest, dl);
            q += 2 + dl;
            ow_put16(q, (uint16_t)tl);
            memcpy(q + 2, c->topic, tl);
            q += 2 + tl;
            ow_put32(q, (uint32_t)c->partition);
            ow_put64(q + 4, ci[i].range.off);
            ow_put32(q + 12, c->len);
            ow_put32(q + 16, c->crc);
            q += 20;
        }
    }

    uint8_t tr[OW_TRAILER_SIZE];
    ow_put64(tr, index_off);
    ow_put32(tr + 8, (uint32_t)b->index_bytes);
    ow_put32(tr + 12, kc_crc32c(0, idx, b->index_bytes));
    ow_put32(tr + 16, b->nchunks);
    ow_put32(tr + 20, hl);
    ow_put32(tr + 24, kc_crc32c(0, tr, 24));
    memcpy(tr + 28, OW_TRAILER_MAGIC, 4);

    if (evbuffer_add(out, hdr, hl) != 0)
        goto fail;
    for (uint32_t g = 0; g < b->ngroups; g++)
        if (evbuffer_add_buffer(out, b->groups[g].data) != 0)
            goto fail;
    if (evbuffer_add(out, idx, b->index_bytes) != 0 || evbuffer_add(out, tr, sizeof(tr)) != 0)
        goto fail;
    free(hdr);
    free(idx);
    free(group_base);
    ow_builder_reset(b);
    *chunks = ci;
    *names = nm;
    return out;
fail:
    /* Bytes already moved into out are lost with it: the builder is unusable
     * after a failed finish, as documented for allocation failure. */
    if (out != NULL)
        evbuffer_free(out);
    free(hdr);
    free(idx);
    free(group_base);
    free(ci);
    free(nm);
    return NULL;
}
