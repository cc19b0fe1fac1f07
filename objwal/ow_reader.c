#include "config.h"

#include "objwal/ow_reader.h"

#include "codec/kc_crc32c.h"
#include "codec/kc_msg.h"
#include "objwal/ow_format.h"
#include "objwal/ow_store_int.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OW_RD_TRAILER, OW_RD_INDEX, OW_RD_DATA } ow_rd_step;

struct ow_read {
    ow_store *st;
    char *key;
    char *dest;           /* ow_read_dest only */
    ow_read_cb cb;
    void *arg;
    ow_req *req;
    ow_rd_step step;
    ow_range *ranges;
    size_t n;
    ow_chunk_info *chunks; /* ow_read_dest: one per range */
    char *names;
    uint64_t object_size;
    int retried_tail;
    ow_trailer tr;
    /* Each range's CRC32C computed as the data GET's bytes land (the store's
     * tap), so that the check needs no second pass over cold bytes. Only for
     * ranges in ascending order without overlap; NULL otherwise. */
    uint32_t *tap_crc;
    uint64_t tap_lo;   /* object offset of the GET's first byte */
    uint64_t tap_next; /* body bytes seen in order; UINT64_MAX: out of order */
    size_t tap_cur;    /* ranges before it are complete */
    int slice_errors;  /* OW_READ_SLICE_ERRORS */
    int batch_crc;     /* OW_READ_BATCH_CRC */
    int just_written;  /* OW_READ_JUST_WRITTEN */
    int lag_tries;     /* data GETs repeated so far */
    struct event *lag_ev; /* the wait before the next one */
};

static void ow_read_free(ow_read *rd)
{
    if (rd->lag_ev != NULL)
        event_free(rd->lag_ev);
    free(rd->key);
    free(rd->dest);
    free(rd->ranges);
    free(rd->chunks);
    free(rd->names);
    free(rd->tap_crc);
    free(rd);
}

static void ow_read_fail(ow_read *rd, int err, const char *detail)
{
    char msg[1536];
    snprintf(msg, sizeof(msg), "read of %s: %s", rd->key, detail);
    ow_read_result r = {.err = err, .errmsg = msg};
    rd->cb(&r, rd->arg);
    ow_read_free(rd);
}

static int ow_read_get_span(ow_read *rd);

static void ow_read_lag_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ow_read *rd = arg;
    rd->st->metrics.read_lag_retries++;
    if (ow_read_get_span(rd) != OW_OK)
        ow_read_fail(rd, OW_ENOMEM, "out of memory starting the GET again (the object had been missing or short)");
}

/* A just-written object read back missing (err OW_ENOTFOUND) or short
 * (OW_ETRUNCATED): 1 when the GET will be repeated after a wait, 0 when the
 * read is to fail now. The last failure's text gains how long it waited.
 * from_store: err was the store's outcome, which ow_req_complete counted in
 * errors[]: the read goes on, so it is not a final outcome yet. */
static int ow_read_lag_retry(ow_read *rd, int err, int from_store, char *why, size_t why_size)
{
    if (!rd->just_written || (err != OW_ENOTFOUND && err != OW_ETRUNCATED))
        return 0;
    if (rd->lag_tries >= OW_READ_LAG_TRIES) {
        size_t used = strlen(why);
        if (used < why_size)
            snprintf(why + used, why_size - used, " (still, after %d more reads over %d ms: %s)", rd->lag_tries,
                     OW_READ_LAG_FIRST_MS * ((1 << OW_READ_LAG_TRIES) - 1),
                     err == OW_ENOTFOUND ? "the object is not in the store"
                                         : "the object in the store is shorter than the range");
        return 0;
    }
    if (rd->lag_ev == NULL && (rd->lag_ev = evtimer_new(rd->st->base, ow_read_lag_cb, rd)) == NULL)
        return 0;
    int ms = OW_READ_LAG_FIRST_MS << rd->lag_tries;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (evtimer_add(rd->lag_ev, &tv) != 0)
        return 0;
    rd->lag_tries++;
    if (from_store && rd->st->metrics.errors[err] > 0)
        rd->st->metrics.errors[err]--;
    return 1;
}

/* The data GET finished: check every range and hand the slices on. */
static void ow_read_data_done(ow_read *rd, const ow_result *res)
{
    if (res->err != OW_OK) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", res->errmsg ? res->errmsg : ow_err_name(res->err));
        if (!ow_read_lag_retry(rd, res->err, 1, msg, sizeof(msg)))
            ow_read_fail(rd, res->err, msg);
        return;
    }
    uint64_t lo = rd->ranges[0].off, hi = 0;
    for (size_t i = 0; i < rd->n; i++) {
        if (rd->ranges[i].off < lo)
            lo = rd->ranges[i].off;
        if (rd->ranges[i].off + rd->ranges[i].len > hi)
            hi = rd->ranges[i].off + rd->ranges[i].len;
    }
    size_t got = evbuffer_get_length(res->body);
    if (got > hi - lo) {
        ow_read_fail(rd, OW_ECORRUPT, "the store returned more bytes than asked");
        return;
    }
    /* The store may have read the bytes into a frame already (res->frame):
     * keep it rather than copy them once more. */
    kc_frame *f = res->frame != NULL && res->frame->len == got ? kc_frame_keep(res->frame)
                                                                : kc_frame_new(got ? got : 1);
    ow_slice *sl = calloc(rd->n, sizeof(*sl));
    if (f == NULL || sl == NULL) {
        if (f != NULL)
            kc_frame_release(f);
        free(sl);
        ow_read_fail(rd, OW_ENOMEM, "out of memory");
        return;
    }
    if (f != res->frame) {
        f->len = got;
        evbuffer_remove(res->body, f->data, got);
    }
    /* The tap saw exactly the bytes of this frame, in order: its CRCs hold. */
    int tapped = rd->tap_crc != NULL && f == res->frame && rd->tap_next == got && lo == rd->tap_lo;
    char why[512];
    for (size_t i = 0; i < rd->n; i++) {
        const ow_range *r = &rd->ranges[i];
        uint64_t at = r->off - lo;
        size_t have = at < got ? got - (size_t)at : 0;
        uint32_t derived;
        int rc = tapped ? ow_range_check(r, have, rd->tap_crc[i], why, sizeof(why))
                 : rd->batch_crc && have >= r->len && kc_record_batches_crc32c(f->data + at, r->len, &derived) == 0
                     ? ow_range_check(r, have, derived, why, sizeof(why))
                     : ow_range_verify(r, f->data + (at < got ? at : 0), have, why, sizeof(why));
        if (rc == OW_ECORRUPT && have >= r->len && rd->slice_errors) {
            sl[i].err = rc; /* no bytes to use by mistake; the caller names what it was */
            continue;
        }
        if (rc != OW_OK) {
            kc_frame_release(f);
            free(sl);
            if (!ow_read_lag_retry(rd, rc, 0, why, sizeof(why)))
                ow_read_fail(rd, rc, why);
            return;
        }
        sl[i].p = f->data + at;
        sl[i].len = r->len;
    }
    ow_read_result out = {.err = OW_OK, .errmsg = "", .frame = f, .slices = sl,
                          .chunks = rd->chunks, .nslices = rd->n};
    rd->cb(&out, rd->arg);
    kc_frame_release(f);
    free(sl);
    ow_read_free(rd);
}

static void ow_read_store_cb(const ow_result *res, void *arg);

/* The store's tap: bytes [at, at+n) of the data GET's body. */
static void ow_read_tap(void *arg, uint64_t at, const uint8_t *p, size_t n)
{
    ow_read *rd = arg;
    if (at == 0) { /* the first bytes, or a retry's */
        memset(rd->tap_crc, 0, rd->n * sizeof(*rd->tap_crc));
        rd->tap_next = 0;
        rd->tap_cur = 0;
    }
    if (at != rd->tap_next) {
        rd->tap_next = UINT64_MAX; /* not in order: the check reads the frame */
        return;
    }
    rd->tap_next += n;
    uint64_t a = rd->tap_lo + at, b = a + n;
    for (size_t i = rd->tap_cur; i < rd->n; i++) {
        const ow_range *r = &rd->ranges[i];
        uint64_t rs = r->off, re = r->off + r->len;
        if (re <= a) {
            rd->tap_cur = i + 1; /* ascending without overlap: all before are done */
            continue;
        }
        if (rs >= b)
            break;
        uint64_t from = rs > a ? rs : a, to = re < b ? re : b;
        rd->tap_crc[i] = kc_crc32c(rd->tap_crc[i], p + (from - a), (size_t)(to - from));
    }
}

static int ow_read_get_span(ow_read *rd)
{
    uint64_t lo = rd->ranges[0].off, hi = 0;
    int ascending = 1;
    for (size_t i = 0; i < rd->n; i++) {
        if (rd->ranges[i].off < lo)
            lo = rd->ranges[i].off;
        if (rd->ranges[i].off + rd->ranges[i].len > hi)
            hi = rd->ranges[i].off + rd->ranges[i].len;
        if (i > 0 && rd->ranges[i].off < rd->ranges[i - 1].off + rd->ranges[i - 1].len)
            ascending = 0;
    }
    rd->step = OW_RD_DATA;
    free(rd->tap_crc);
    rd->tap_crc = ascending && !rd->batch_crc ? calloc(rd->n, sizeof(*rd->tap_crc)) : NULL;
    rd->tap_lo = lo;
    rd->tap_next = 0;
    rd->tap_cur = 0;
    /* Without the array (out of memory, ranges out of order, or checks
     * derived from batch headers) the check looks at the bytes once they
     * are in. */
    rd->req = ow_store_get_tap(rd->st, rd->key, (int64_t)lo, hi - lo,
                               rd->tap_crc != NULL ? ow_read_tap : NULL, rd, ow_read_store_cb, rd);
    return rd->req != NULL ? OW_OK : OW_ENOMEM;
}

static void ow_read_trailer_done(ow_read *rd, const ow_result *res)
{
    if (res->err != OW_OK) {
        ow_read_fail(rd, res->err, res->errmsg);
        return;
    }
    uint8_t t[OW_TRAILER_SIZE];
    size_t got = evbuffer_get_length(res->body);
    if (got < OW_TRAILER_SIZE) {
        ow_read_fail(rd, OW_ETRUNCATED, "object shorter than its trailer");
        return;
    }
    if (got != OW_TRAILER_SIZE && !rd->retried_tail && res->object_size >= OW_TRAILER_SIZE) {
        /* Some S3 emulators (s3rver) read "bytes=-32" as "bytes=0-32". The
         * answer still told the object's size: ask for the tail by offset. */
        rd->retried_tail = 1;
        rd->req = ow_store_get(rd->st, rd->key, (int64_t)(res->object_size - OW_TRAILER_SIZE),
                               OW_TRAILER_SIZE, ow_read_store_cb, rd);
        if (rd->req == NULL)
            ow_read_fail(rd, OW_ENOMEM, "out of memory");
        return;
    }
    struct evbuffer_ptr at;
    evbuffer_ptr_set(res->body, &at, got - OW_TRAILER_SIZE, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(res->body, &at, t, sizeof(t));
    char why[512];
    rd->object_size = res->object_size;
    int rc = ow_trailer_decode(t, sizeof(t), rd->object_size, &rd->tr, why, sizeof(why));
    if (rc != OW_OK) {
        ow_read_fail(rd, rc, why);
        return;
    }
    rd->step = OW_RD_INDEX;
    rd->req = ow_store_get(rd->st, rd->key, (int64_t)rd->tr.index_off, rd->tr.index_len,
                           ow_read_store_cb, rd);
    if (rd->req == NULL)
        ow_read_fail(rd, OW_ENOMEM, "out of memory");
}

static void ow_read_index_done(ow_read *rd, const ow_result *res)
{
    if (res->err != OW_OK) {
        ow_read_fail(rd, res->err, res->errmsg);
        return;
    }
    size_t got = evbuffer_get_length(res->body);
    if (got < rd->tr.index_len) {
        ow_read_fail(rd, OW_ETRUNCATED, "index truncated");
        return;
    }
    const uint8_t *p = evbuffer_pullup(res->body, -1);
    ow_index_entry *e = NULL;
    char why[512];
    int rc = p ? ow_index_decode(p, got, &rd->tr, &e, why, sizeof(why)) : OW_ENOMEM;
    if (rc != OW_OK) {
        ow_read_fail(rd, rc, p ? why : "out of memory");
        return;
    }
    size_t n = 0, names = 0;
    for (uint32_t i = 0; i < rd->tr.nchunks; i++)
        if (kc_str_eq(e[i].dest, rd->dest)) {
            n++;
            names += (size_t)e[i].dest.len + (size_t)e[i].topic.len + 2;
        }
    if (n == 0) {
        free(e);
        char why2[320];
        snprintf(why2, sizeof(why2), "no chunks for destination %s", rd->dest);
        ow_read_fail(rd, OW_ENOTFOUND, why2);
        return;
    }
    rd->ranges = calloc(n, sizeof(*rd->ranges));
    rd->chunks = calloc(n, sizeof(*rd->chunks));
    rd->names = malloc(names);
    if (rd->ranges == NULL || rd->chunks == NULL || rd->names == NULL) {
        free(e);
        ow_read_fail(rd, OW_ENOMEM, "out of memory");
        return;
    }
    char *np = rd->names;
    size_t k = 0;
    for (uint32_t i = 0; i < rd->tr.nchunks; i++) {
        if (!kc_str_eq(e[i].dest, rd->dest))
            continue;
        memcpy(np, e[i].dest.p, (size_t)e[i].dest.len);
        np[e[i].dest.len] = '\0';
        rd->chunks[k].dest = np;
        np += e[i].dest.len + 1;
        memcpy(np, e[i].topic.p, (size_t)e[i].topic.len);
        np[e[i].topic.len] = '\0';
        rd->chunks[k].topic = np;
        np += e[i].topic.len + 1;
        rd->chunks[k].partition = e[i].partition;
        rd->chunks[k].range = e[i].range;
        rd->ranges[k] = e[i].range;
        k++;
    }
    rd->n = n;
    free(e);
    if (ow_read_get_span(rd) != OW_OK)
        ow_read_fail(rd, OW_ENOMEM, "out of memory");
}

static void ow_read_store_cb(const ow_result *res, void *arg)
{
    ow_read *rd = arg;
    rd->req = NULL;
    switch (rd->step) {
    case OW_RD_TRAILER:
        ow_read_trailer_done(rd, res);
        break;
    case OW_RD_INDEX:
        ow_read_index_done(rd, res);
        break;
    case OW_RD_DATA:
        ow_read_data_done(rd, res);
        break;
    }
}

static ow_read *ow_read_alloc(ow_store *st, const char *key, ow_read_cb cb, void *arg)
{
    if (st == NULL || cb == NULL || !ow_key_valid(key))
        return NULL;
    ow_read *rd = calloc(1, sizeof(*rd));
    if (rd == NULL)
        return NULL;
    rd->st = st;
    rd->cb = cb;
    rd->arg = arg;
    if ((rd->key = strdup(key)) == NULL) {
        free(rd);
        return NULL;
    }
    return rd;
}

ow_read *ow_read_ranges(ow_store *st, const char *key, const ow_range *ranges, size_t n,
                        ow_read_cb cb, void *arg)
{
    return ow_read_ranges_opt(st, key, ranges, n, 0, cb, arg);
}

ow_read *ow_read_ranges_opt(ow_store *st, const char *key, const ow_range *ranges, size_t n,
                            int flags, ow_read_cb cb, void *arg)
{
    if (ranges == NULL || n == 0 || n > OW_MAX_CHUNKS)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (ranges[i].len == 0 || ranges[i].off > OW_MAX_OBJECT ||
            ranges[i].off + ranges[i].len > OW_MAX_OBJECT)
            return NULL;
    ow_read *rd = ow_read_alloc(st, key, cb, arg);
    if (rd == NULL)
        return NULL;
    rd->ranges = malloc(n * sizeof(*ranges));
    if (rd->ranges == NULL) {
        ow_read_free(rd);
        return NULL;
    }
    memcpy(rd->ranges, ranges, n * sizeof(*ranges));
    rd->n = n;
    rd->slice_errors = (flags & OW_READ_SLICE_ERRORS) != 0;
    rd->batch_crc = (flags & OW_READ_BATCH_CRC) != 0;
    rd->just_written = (flags & OW_READ_JUST_WRITTEN) != 0;
    if (ow_read_get_span(rd) != OW_OK) {
        ow_read_free(rd);
        return NULL;
    }
    return rd;
}

ow_read *ow_read_dest(ow_store *st, const char *key, const char *dest, ow_read_cb cb, void *arg)
{
    if (dest == NULL || strlen(dest) > OW_MAX_NAME)
        return NULL;
    ow_read *rd = ow_read_alloc(st, key, cb, arg);
    if (rd == NULL)
        return NULL;
    if ((rd->dest = strdup(dest)) == NULL) {
        ow_read_free(rd);
        return NULL;
    }
    rd->step = OW_RD_TRAILER;
    rd->req = ow_store_get(st, key, -OW_TRAILER_SIZE, 0, ow_read_store_cb, rd);
    if (rd->req == NULL) {
        ow_read_free(rd);
        return NULL;
    }
    return rd;
}

void ow_read_cancel(ow_read *rd)
{
    if (rd == NULL)
        return;
    if (rd->req != NULL)
        ow_req_cancel(rd->req);
    ow_read_free(rd);
}
