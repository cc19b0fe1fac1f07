/* The fetch cache: see px_fcache.h. */
#include "config.h"

#include "proxy/px_fcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define PX_FC_BUCKETS 1024
/* Segments kept per partition at most (older ones go first). */
#define PX_FC_SEGS_MAX 64

struct px_fc_part;

typedef struct px_fc_seg {
    TAILQ_ENTRY(px_fc_seg) lru;  /* the cache's, least recently used first */
    TAILQ_ENTRY(px_fc_seg) link; /* the partition's */
    struct px_fc_part *part;
    kc_frame *frame;     /* owned reference */
    const uint8_t *p;    /* the whole batches, inside frame */
    size_t len;
    int64_t first, end;  /* offsets [first base offset, last offset + 1) */
    int64_t hwm, lso, log_start;
    int64_t born_ms;     /* when it was fetched (monotonic): served until + max_age_ms */
    int8_t isolation;
    int32_t nbatches;
    int64_t *last;       /* per batch: its last offset */
    uint32_t *pos;       /* per batch: where it starts in p */
} px_fc_seg;

typedef struct px_fc_part {
    struct px_fc_part *next; /* bucket chain */
    char *topic;
    size_t topic_len;
    int32_t partition;
    int32_t epoch;
    kc_uuid topic_id;
    int nsegs;
    TAILQ_HEAD(, px_fc_seg) segs;
} px_fc_part;

struct px_fcache {
    pthread_mutex_t mu; /* every entry point holds it: the event-loop threads share one cache */
    size_t cap;
    int64_t max_age_ms;
    px_fcache_stats st;
    TAILQ_HEAD(, px_fc_seg) lru;
    px_fc_part *buckets[PX_FC_BUCKETS];
};

static uint32_t px_fc_hash(kc_str topic, int32_t partition)
{
    uint32_t h = 2166136261u;
    for (int32_t i = 0; i < topic.len; i++)
        h = (h ^ (uint8_t)topic.p[i]) * 16777619u;
    h = (h ^ (uint32_t)partition) * 16777619u;
    return h % PX_FC_BUCKETS;
}

px_fcache *px_fcache_new(size_t cap, int64_t max_age_ms)
{
    if (max_age_ms <= 0)
        return NULL;
    px_fcache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->cap = cap;
    c->max_age_ms = max_age_ms;
    TAILQ_INIT(&c->lru);
    return c;
}

static void px_fc_seg_free(px_fcache *c, px_fc_seg *s)
{
    px_fc_part *pt = s->part;
    TAILQ_REMOVE(&c->lru, s, lru);
    TAILQ_REMOVE(&pt->segs, s, link);
    pt->nsegs--;
    c->st.bytes -= s->len;
    kc_frame_release(s->frame);
    free(s->last);
    free(s->pos);
    free(s);
}

/* Unlink and free a partition and its segments. */
static void px_fc_part_free(px_fcache *c, px_fc_part *pt)
{
    px_fc_seg *s;
    while ((s = TAILQ_FIRST(&pt->segs)) != NULL)
        px_fc_seg_free(c, s);
    px_fc_part **pp = &c->buckets[px_fc_hash((kc_str){pt->topic, (int32_t)pt->topic_len}, pt->partition)];
    while (*pp && *pp != pt)
        pp = &(*pp)->next;
    if (*pp)
        *pp = pt->next;
    free(pt->topic);
    free(pt);
}

void px_fcache_free(px_fcache *c)
{
    if (c == NULL)
        return;
    for (int b = 0; b < PX_FC_BUCKETS; b++)
        while (c->buckets[b])
            px_fc_part_free(c, c->buckets[b]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static px_fc_part *px_fc_find(px_fcache *c, kc_str topic, int32_t partition, int create)
{
    uint32_t b = px_fc_hash(topic, partition);
    for (px_fc_part *pt = c->buckets[b]; pt; pt = pt->next)
        if (pt->partition == partition && pt->topic_len == (size_t)topic.len &&
            memcmp(pt->topic, topic.p, (size_t)topic.len) == 0)
            return pt;
    if (!create || topic.len < 0)
        return NULL;
    px_fc_part *pt = calloc(1, sizeof(*pt));
    if (pt == NULL || (pt->topic = malloc((size_t)topic.len + 1)) == NULL) {
        free(pt);
        return NULL;
    }
    memcpy(pt->topic, topic.p, (size_t)topic.len);
    pt->topic[topic.len] = '\0';
    pt->topic_len = (size_t)topic.len;
    pt->partition = partition;
    TAILQ_INIT(&pt->segs);
    pt->next = c->buckets[b];
    c->buckets[b] = pt;
    return pt;
}

static void px_fc_drop(px_fcache *c, kc_str topic, int32_t partition)
{
    px_fc_part *pt = px_fc_find(c, topic, partition, 0);
    if (pt) {
        c->st.invalidations++;
        px_fc_part_free(c, pt);
    }
}

void px_fcache_drop(px_fcache *c, kc_str topic, int32_t partition)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    px_fc_drop(c, topic, partition);
    pthread_mutex_unlock(&c->mu);
}

/* The whole, CRC-checked batches at the start of records: their count, last
 * offsets and positions (allocated), and the bytes they span. */
static size_t px_fc_batches(const kc_bytes *records, int64_t **last, uint32_t **pos, int32_t *n)
{
    size_t len = (size_t)records->len, done = 0;
    int32_t cap = 0;
    *last = NULL;
    *pos = NULL;
    *n = 0;
    kc_rd rd;
    kc_rd_init(&rd, records->p, len);
    while (kc_rd_remain(&rd) > 0 && rd.off <= UINT32_MAX) {
        size_t start = rd.off;
        kc_record_batch b;
        if (kc_record_batch_decode(&rd, &b) != 0 || b.last_offset_delta < 0)
            break; /* a partial tail (or a bad batch): keep what came before */
        if (*n == cap) {
            int32_t ncap = cap ? cap * 2 : 16;
            int64_t *nl = realloc(*last, (size_t)ncap * sizeof(**last));
            if (nl)
                *last = nl;
            uint32_t *np = nl ? realloc(*pos, (size_t)ncap * sizeof(**pos)) : NULL;
            if (np == NULL)
                break;
            *pos = np;
            cap = ncap;
        }
        (*last)[*n] = b.base_offset + b.last_offset_delta;
        (*pos)[*n] = (uint32_t)start;
        if (*n > 0 && b.base_offset <= (*last)[*n - 1])
            break; /* not increasing: not a log the cache understands */
        (*n)++;
        done = rd.off;
    }
    return done;
}

/* The base offset of batch i (big-endian, checked whole by px_fc_batches). */
static int64_t px_fc_base(const px_fc_seg *s, int32_t i)
{
    uint64_t u = 0;
    for (uint32_t k = 0; k < 8; k++)
        u = (u << 8) | s->p[s->pos[i] + k];
    return (int64_t)u;
}

static void px_fc_evict(px_fcache *c)
{
    px_fc_seg *s;
    while (c->st.bytes > c->cap && (s = TAILQ_FIRST(&c->lru)) != NULL) {
        px_fc_part *pt = s->part;
        px_fc_seg_free(c, s);
        c->st.evictions++;
        if (pt->nsegs == 0)
            px_fc_part_free(c, pt);
    }
}

/* The partition of k when its data is still what k names: a different
 * epoch or topic id (deleted and created again) drops it, NULL then. */
static px_fc_part *px_fc_find_key(px_fcache *c, const px_fc_key *k)
{
    px_fc_part *pt = px_fc_find(c, k->topic, k->partition, 0);
    if (pt && (pt->epoch != k->epoch || memcmp(&pt->topic_id, &k->topic_id, sizeof(k->topic_id)) != 0)) {
        c->st.invalidations++;
        px_fc_part_free(c, pt);
        return NULL;
    }
    return pt;
}

/* Free pt's segments fetched more than max_age_ms before now_ms; 1 when pt
 * went with its last one. */
static int px_fc_expire(px_fcache *c, px_fc_part *pt, int64_t now_ms)
{
    px_fc_seg *o, *tmp;
    for (o = TAILQ_FIRST(&pt->segs); o; o = tmp) {
        tmp = TAILQ_NEXT(o, link);
        /* now_ms may be a little behind born_ms: threads read the clock
         * before they take the lock. */
        if (now_ms - o->born_ms > c->max_age_ms) {
            px_fc_seg_free(c, o);
            c->st.expirations++;
        }
    }
    if (pt->nsegs == 0) {
        px_fc_part_free(c, pt);
        return 1;
    }
    return 0;
}

static void px_fc_seg_discard(px_fc_seg *s)
{
    if (s == NULL)
        return;
    kc_frame_release(s->frame);
    free(s->last);
    free(s->pos);
    free(s);
}

/* The segment rp's records would make, built without the cache's lock (the
 * batches' CRC pass and a copy can take a while): NULL when nothing of rp
 * is to be kept. cap is immutable. */
static px_fc_seg *px_fc_seg_make(size_t cap, int8_t isolation, int64_t now_ms, kc_frame *f,
                                 const kc_fetch_resp_partition *rp)
{
    if (rp->error_code != 0 || rp->records.len <= 0 || rp->records.p == NULL || rp->high_watermark < 0)
        return NULL;
    if (rp->naborted_transactions > 0)
        return NULL; /* the abort list would have to be cut to the range served: not kept */
    if (f == NULL || rp->records.p < f->data || rp->records.p + rp->records.len > f->data + f->len)
        return NULL;
    px_fc_seg *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->len = px_fc_batches(&rp->records, &s->last, &s->pos, &s->nbatches);
    if (s->len == 0 || s->len > cap) {
        px_fc_seg_discard(s);
        return NULL;
    }
    s->p = rp->records.p;
    s->end = s->last[s->nbatches - 1] + 1;
    s->hwm = rp->high_watermark;
    s->lso = rp->last_stable_offset;
    s->log_start = rp->log_start_offset;
    s->born_ms = now_ms;
    s->isolation = isolation;
    if (s->end > s->hwm || (isolation == 1 && (s->lso < 0 || s->end > s->lso))) {
        px_fc_seg_discard(s); /* past what the broker says is readable: not kept */
        return NULL;
    }
    if (s->len * 2 >= f->len) {
        s->frame = kc_frame_keep(f);
    } else if ((s->frame = kc_frame_new(s->len)) != NULL) {
        memcpy(s->frame->data, s->p, s->len);
        s->p = s->frame->data;
    }
    if (s->frame == NULL) {
        px_fc_seg_discard(s);
        return NULL;
    }
    s->first = px_fc_base(s, 0);
    return s;
}

/* Under the lock: what rp says about the partition's log, then s (from
 * px_fc_seg_make, may be NULL) kept or discarded. */
static void px_fc_put(px_fcache *c, const px_fc_key *k, int64_t now_ms, const kc_fetch_resp_partition *rp,
                      px_fc_seg *s)
{
    kc_str topic = k->topic;
    int32_t partition = k->partition;
    px_fc_part *pt = px_fc_find_key(c, k);
    if (rp->error_code != 0) {
        px_fc_drop(c, topic, partition); /* the log may have changed under us */
        px_fc_seg_discard(s);
        return;
    }
    if (pt && px_fc_expire(c, pt, now_ms))
        pt = NULL;
    if (pt) {
        px_fc_seg *o;
        TAILQ_FOREACH(o, &pt->segs, link) {
            if ((rp->high_watermark >= 0 && rp->high_watermark < o->end) || rp->log_start_offset > o->first) {
                /* truncated below what we hold, or records deleted from its start */
                px_fc_drop(c, topic, partition);
                px_fc_seg_discard(s);
                return;
            }
        }
    }
    if (s == NULL)
        return;
    if (pt == NULL && (pt = px_fc_find(c, topic, partition, 1)) == NULL) {
        px_fc_seg_discard(s);
        return;
    }
    pt->epoch = k->epoch;
    pt->topic_id = k->topic_id;
    /* Segments overlapping the new one go: the newest answer wins. */
    px_fc_seg *o, *tmp;
    for (o = TAILQ_FIRST(&pt->segs); o; o = tmp) {
        tmp = TAILQ_NEXT(o, link);
        if (o->first < s->end && s->first < o->end)
            px_fc_seg_free(c, o);
    }
    while (pt->nsegs >= PX_FC_SEGS_MAX)
        px_fc_seg_free(c, TAILQ_FIRST(&pt->segs));
    s->part = pt;
    TAILQ_INSERT_TAIL(&pt->segs, s, link);
    TAILQ_INSERT_TAIL(&c->lru, s, lru);
    pt->nsegs++;
    c->st.bytes += s->len;
    c->st.misses++;
    px_fc_evict(c); /* never evicts s alone past the cap: s->len <= cap */
}

void px_fcache_put(px_fcache *c, const px_fc_key *k, int8_t isolation, int64_t now_ms, kc_frame *f,
                   const kc_fetch_resp_partition *rp)
{
    if (c == NULL || c->cap == 0)
        return;
    px_fc_seg *s = px_fc_seg_make(c->cap, isolation, now_ms, f, rp);
    pthread_mutex_lock(&c->mu);
    px_fc_put(c, k, now_ms, rp, s);
    pthread_mutex_unlock(&c->mu);
}

static int px_fc_get(px_fcache *c, const px_fc_key *k, int8_t isolation, int64_t offset, int32_t max_bytes,
                     int64_t now_ms, kc_fetch_resp_partition *out, kc_frame **frame)
{
    int32_t partition = k->partition;
    px_fc_part *pt = px_fc_find_key(c, k);
    if (pt == NULL || px_fc_expire(c, pt, now_ms))
        return 0;
    px_fc_seg *s;
    TAILQ_FOREACH(s, &pt->segs, link) {
        if (offset < s->first || offset >= s->end || offset < s->log_start)
            continue;
        if (isolation == 1 && s->isolation != 1)
            continue;
        int32_t i = 0;
        while (i < s->nbatches && s->last[i] < offset)
            i++;
        if (i == s->nbatches)
            continue;
        size_t from = s->pos[i], to = i + 1 < s->nbatches ? s->pos[i + 1] : s->len;
        for (int32_t j = i + 1; j < s->nbatches; j++) {
            size_t next = j + 1 < s->nbatches ? s->pos[j + 1] : s->len;
            if (max_bytes >= 0 && next - from > (size_t)max_bytes)
                break;
            to = next;
        }
        *out = (kc_fetch_resp_partition){0};
        out->partition_index = partition;
        out->high_watermark = s->hwm;
        out->last_stable_offset = s->lso;
        out->log_start_offset = s->log_start;
        out->naborted_transactions = isolation == 1 ? 0 : -1;
        out->preferred_read_replica = -1;
        out->records.p = s->p + from;
        out->records.len = (int32_t)(to - from);
        *frame = kc_frame_keep(s->frame);
        TAILQ_REMOVE(&c->lru, s, lru);
        TAILQ_INSERT_TAIL(&c->lru, s, lru);
        c->st.hits++;
        c->st.bytes_saved += to - from;
        return 1;
    }
    return 0;
}

int px_fcache_get(px_fcache *c, const px_fc_key *k, int8_t isolation, int64_t offset, int32_t max_bytes,
                  int64_t now_ms, kc_fetch_resp_partition *out, kc_frame **frame)
{
    if (c == NULL || c->cap == 0)
        return 0;
    pthread_mutex_lock(&c->mu);
    int hit = px_fc_get(c, k, isolation, offset, max_bytes, now_ms, out, frame);
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void px_fcache_stats_get(px_fcache *c, px_fcache_stats *out)
{
    if (c == NULL) {
        *out = (px_fcache_stats){0};
        return;
    }
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}
