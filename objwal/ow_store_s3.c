/*
 * S3 backend: libcurl's multi interface driven by the libevent loop
 * (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION), SigV4 on every attempt,
 * retries with jittered exponential backoff within the operation's deadline.
 */
#include "config.h"

#include "objwal/ow_format.h"
#include "objwal/ow_sigv4.h"
#include "objwal/ow_store_int.h"

#include "codec/kc_buf.h"
#include "common/kz_log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define OW_S3_ERRBODY_MAX (64 * 1024)
#define OW_S3_LIST_MAX (16 * 1024 * 1024)

typedef struct ow_s3 {
    ow_store *st;
    CURLM *multi;
    struct event *timer;
    char *bucket;
    char *scheme;     /* "http" or "https" */
    char *hostport;   /* endpoint host[:port] */
    char *host_hdr;   /* Host header: hostport, or bucket.hostport */
    char *url_base;   /* up to the key: "http://h:p/bucket" or "https://bucket.h" */
    char *uri_base;   /* canonical URI prefix: "/bucket" or "" */
    char *region, *access_key, *secret_key, *token;
    int unsigned_payload;
    uint32_t deadline_ms, attempt_timeout_ms, connect_timeout_ms, backoff_base_ms, backoff_max_ms;
    uint64_t rng;
} ow_s3;

typedef struct ow_s3_sock {
    struct event *ev;
} ow_s3_sock;

typedef struct ow_s3_req {
    ow_req base;
    CURL *easy;
    int in_multi;
    struct curl_slist *hdrs;
    struct event *retry_ev;
    struct evbuffer *resp;
    uint64_t resp_cap;
    /* A ranged GET's 206 body goes straight into a frame of the range's
     * size, which resp then references (no second copy, ow_result.frame). */
    uint64_t frame_cap;  /* the range's length; 0: everything into resp */
    kc_frame *frame;
    size_t frame_used;
    int frame_in_resp;   /* resp references the frame's bytes */
    struct evbuffer_ptr upos;
    char payload_hash[65];
    uint64_t deadline_us;
    unsigned attempt;
    uint64_t object_size;
    int ranged;
    char errbuf[CURL_ERROR_SIZE];
    char lastmsg[768];
} ow_s3_req;

static uint64_t ow_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t ow_s3_rand(ow_s3 *s3)
{
    /* xorshift64*: jitter only, not security. */
    uint64_t x = s3->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s3->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void ow_s3_check_done(ow_s3 *s3);

/* ---- libevent <-> curl multi glue ---- */

static void ow_s3_event_cb(evutil_socket_t fd, short what, void *arg)
{
    ow_s3 *s3 = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(s3->multi, fd, flags, &running);
    ow_s3_check_done(s3);
}

static void ow_s3_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    ow_s3 *s3 = arg;
    int running;
    curl_multi_socket_action(s3->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    ow_s3_check_done(s3);
}

static int ow_s3_sock_fn(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    ow_s3 *s3 = userp;
    ow_s3_sock *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL) {
            event_free(sk->ev);
            free(sk);
            curl_multi_assign(s3->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) |
                         EV_PERSIST);
    if (sk == NULL) {
        sk = calloc(1, sizeof(*sk));
        if (sk == NULL)
            return -1;
        curl_multi_assign(s3->multi, s, sk);
    } else {
        event_free(sk->ev);
    }
    sk->ev = event_new(s3->st->base, s, kind, ow_s3_event_cb, s3);
    if (sk->ev == NULL)
        return -1;
    event_add(sk->ev, NULL);
    return 0;
}

static int ow_s3_timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    ow_s3 *s3 = userp;
    if (timeout_ms < 0) {
        evtimer_del(s3->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(s3->timer, &tv);
    return 0;
}

/* ---- curl easy callbacks ---- */

/* Hand the frame's bytes to resp by reference (once per attempt). */
static int ow_s3_frame_to_resp(ow_s3_req *r)
{
    if (r->frame == NULL || r->frame_in_resp)
        return 0;
    r->frame->len = r->frame_used;
    r->frame_in_resp = 1;
    if (r->frame_used == 0)
        return 0;
    return kc_frame_add_ref(r->resp, r->frame, r->frame->data, r->frame_used);
}

static void ow_s3_frame_drop(ow_s3_req *r)
{
    kc_frame_release(r->frame);
    r->frame = NULL;
    r->frame_used = 0;
    r->frame_in_resp = 0;
}

static size_t ow_s3_write_fn(char *p, size_t size, size_t nmemb, void *arg)
{
    ow_s3_req *r = arg;
    size_t n = size * nmemb;
    if (r->frame_cap > 0 && r->frame == NULL && evbuffer_get_length(r->resp) == 0) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status == 206)
            r->frame = kc_frame_new((size_t)r->frame_cap); /* NULL: into resp after all */
        if (r->frame == NULL)
            r->frame_cap = 0;
    }
    if (r->frame != NULL && !r->frame_in_resp) {
        if (n <= r->frame_cap - r->frame_used) {
            memcpy(r->frame->data + r->frame_used, p, n);
            r->frame_used += n;
            return n;
        }
        /* More than the range: the rest goes after it in resp, capped below. */
        if (ow_s3_frame_to_resp(r) != 0)
            return 0;
        ow_s3_frame_drop(r);
        r->frame_cap = 0;
    }
    if (evbuffer_get_length(r->resp) + n > r->resp_cap)
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    if (evbuffer_add(r->resp, p, n) != 0)
        return 0;
    return n;
}

static size_t ow_s3_read_fn(char *p, size_t size, size_t nmemb, void *arg)
{
    ow_s3_req *r = arg;
    size_t want = size * nmemb;
    ev_ssize_t got = evbuffer_copyout_from(r->base.body, &r->upos, p, want);
    if (got < 0)
        return CURL_READFUNC_ABORT;
    if (got > 0)
        evbuffer_ptr_set(r->base.body, &r->upos, (size_t)got, EVBUFFER_PTR_ADD);
    return (size_t)got;
}

static int ow_s3_seek_fn(void *arg, curl_off_t off, int origin)
{
    ow_s3_req *r = arg;
    if (origin != SEEK_SET || off < 0 || (size_t)off > evbuffer_get_length(r->base.body))
        return CURL_SEEKFUNC_CANTSEEK;
    evbuffer_ptr_set(r->base.body, &r->upos, (size_t)off, EVBUFFER_PTR_SET);
    return CURL_SEEKFUNC_OK;
}

static size_t ow_s3_header_fn(char *p, size_t size, size_t nmemb, void *arg)
{
    ow_s3_req *r = arg;
    size_t n = size * nmemb;
    static const char cr[] = "content-range:";
    if (n > sizeof(cr) && n < 256 && strncasecmp(p, cr, sizeof(cr) - 1) == 0) {
        char line[256];
        memcpy(line, p, n);
        line[n] = '\0';
        const char *slash = strchr(line, '/');
        if (slash != NULL && slash[1] >= '0' && slash[1] <= '9') {
            unsigned long long total = strtoull(slash + 1, NULL, 10);
            if (total <= OW_MAX_OBJECT)
                r->object_size = total;
        }
    }
    return n;
}

/* ---- requests ---- */

static void ow_s3_release_easy(ow_s3 *s3, ow_s3_req *r)
{
    if (r->easy != NULL) {
        if (r->in_multi)
            curl_multi_remove_handle(s3->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        r->in_multi = 0;
    }
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
}

static void ow_s3_cancel(ow_store *st, ow_req *req)
{
    ow_s3 *s3 = st->impl;
    ow_s3_req *r = (ow_s3_req *)req;
    ow_s3_release_easy(s3, r);
    if (r->retry_ev != NULL) {
        event_free(r->retry_ev);
        r->retry_ev = NULL;
    }
    if (r->resp != NULL) {
        evbuffer_free(r->resp);
        r->resp = NULL;
    }
    ow_s3_frame_drop(r);
}

static void ow_s3_describe(ow_s3 *s3, ow_s3_req *r, char *out, size_t n)
{
    snprintf(out, n, "%s s3://%s/%s", ow_op_names[r->base.op], s3->bucket, r->base.key);
}

static struct curl_slist *ow_s3_hdr(struct curl_slist *l, int *err, const char *name,
                                    const char *value)
{
    char line[2048];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    struct curl_slist *nl = curl_slist_append(l, line);
    if (nl == NULL) {
        *err = 1;
        return l;
    }
    return nl;
}

/* Start one attempt. Returns OW_OK or an ow_err (the attempt did not start). */
static int ow_s3_attempt(ow_s3 *s3, ow_s3_req *r)
{
    ow_req *req = &r->base;
    char enc_key[3 * 1024 + 1];
    char uri[4096], url[8192], query[4096] = "";
    if (req->op == OW_OP_LIST) {
        char enc_prefix[3 * 1024 + 1], enc_tok[3 * 1024 + 1] = "";
        ow_uri_encode(req->key, strlen(req->key), 0, enc_prefix, sizeof(enc_prefix));
        if (req->token != NULL &&
            ow_uri_encode(req->token, strlen(req->token), 0, enc_tok, sizeof(enc_tok)) ==
                (size_t)-1)
            return OW_EINVAL;
        snprintf(query, sizeof(query), "%s%s%slist-type=2&max-keys=%u&prefix=%s",
                 enc_tok[0] ? "continuation-token=" : "", enc_tok, enc_tok[0] ? "&" : "",
                 req->max_keys, enc_prefix);
        snprintf(uri, sizeof(uri), "%s%s", s3->uri_base, s3->uri_base[0] ? "" : "/");
        snprintf(url, sizeof(url), "%s%s?%s", s3->url_base, s3->uri_base[0] ? "" : "/", query);
    } else {
        ow_uri_encode(req->key, strlen(req->key), 1, enc_key, sizeof(enc_key));
        snprintf(uri, sizeof(uri), "%s/%s", s3->uri_base, enc_key);
        snprintf(url, sizeof(url), "%s/%s", s3->url_base, enc_key);
    }

    char amz_date[17];
    ow_amz_date(time(NULL), amz_date);
    char range[96] = "";
    if (req->op == OW_OP_GET) {
        if (req->off < 0)
            snprintf(range, sizeof(range), "bytes=-%" PRIu64, (uint64_t)(-req->off));
        else if (req->len == 0)
            snprintf(range, sizeof(range), "bytes=%" PRId64 "-", req->off);
        else
            snprintf(range, sizeof(range), "bytes=%" PRId64 "-%" PRIu64, req->off,
                     (uint64_t)req->off + req->len - 1);
    }
    ow_sigv4_header sh[8];
    size_t nh = 0;
    sh[nh++] = (ow_sigv4_header){"host", s3->host_hdr};
    sh[nh++] = (ow_sigv4_header){"x-amz-content-sha256", r->payload_hash};
    sh[nh++] = (ow_sigv4_header){"x-amz-date", amz_date};
    if (range[0])
        sh[nh++] = (ow_sigv4_header){"range", range};
    if (req->op == OW_OP_PUT)
        sh[nh++] = (ow_sigv4_header){"if-none-match", "*"};
    if (s3->token != NULL)
        sh[nh++] = (ow_sigv4_header){"x-amz-security-token", s3->token};
    ow_sigv4_request sr = {
        .method = req->op == OW_OP_LIST ? "GET" : ow_op_names[req->op],
        .canonical_uri = uri,
        .query = query,
        .headers = sh,
        .nheaders = nh,
        .payload_hash = r->payload_hash,
        .amz_date = amz_date,
        .region = s3->region,
        .service = "s3",
        .access_key = s3->access_key,
        .secret_key = s3->secret_key,
    };
    char auth[1024];
    if (ow_sigv4_authorization(&sr, auth, sizeof(auth), NULL) != 0)
        return OW_EINVAL;

    int herr = 0;
    struct curl_slist *hl = NULL;
    for (size_t i = 0; i < nh; i++)
        hl = ow_s3_hdr(hl, &herr, sh[i].name, sh[i].value);
    hl = ow_s3_hdr(hl, &herr, "Authorization", auth);
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    if (herr || hl == NULL) {
        curl_slist_free_all(hl);
        return OW_ENOMEM;
    }

    CURL *e = curl_easy_init();
    if (e == NULL) {
        curl_slist_free_all(hl);
        return OW_ENOMEM;
    }
    evbuffer_drain(r->resp, evbuffer_get_length(r->resp));
    ow_s3_frame_drop(r);
    r->frame_cap = 0;
    r->object_size = 0;
    r->errbuf[0] = '\0';
    uint64_t now = ow_now_us();
    uint64_t left_ms = r->deadline_us > now ? (r->deadline_us - now) / 1000 : 1;
    long tmo = (long)(left_ms < s3->attempt_timeout_ms ? left_ms : s3->attempt_timeout_ms);
    if (tmo < 1)
        tmo = 1;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, tmo);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(s3->connect_timeout_ms < (uint32_t)tmo ? s3->connect_timeout_ms : tmo));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ow_s3_write_fn);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, ow_s3_header_fn);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    switch (req->op) {
    case OW_OP_PUT:
        evbuffer_ptr_set(req->body, &r->upos, 0, EVBUFFER_PTR_SET);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, ow_s3_read_fn);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, ow_s3_seek_fn);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)evbuffer_get_length(req->body));
        r->resp_cap = OW_S3_ERRBODY_MAX;
        s3->st->metrics.put_requests++;
        break;
    case OW_OP_GET:
        r->resp_cap = req->off >= 0 && req->len > 0 ? req->len + OW_S3_ERRBODY_MAX : OW_MAX_OBJECT;
        r->frame_cap = req->off >= 0 ? req->len : 0;
        r->ranged = 1;
        s3->st->metrics.get_requests++;
        break;
    case OW_OP_DELETE:
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        r->resp_cap = OW_S3_ERRBODY_MAX;
        s3->st->metrics.delete_requests++;
        break;
    case OW_OP_LIST:
        r->resp_cap = OW_S3_LIST_MAX;
        s3->st->metrics.list_requests++;
        break;
    }
    if (curl_multi_add_handle(s3->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        curl_slist_free_all(hl);
        return OW_ENOMEM;
    }
    r->easy = e;
    r->hdrs = hl;
    r->in_multi = 1;
    r->attempt++;
    return OW_OK;
}

/* The text of <tag>...</tag> in [p, end), or NULL. */
static const char *ow_xml_tag(const char *p, const char *end, const char *tag, size_t *len)
{
    char open[64], close[64];
    int ol = snprintf(open, sizeof(open), "<%s>", tag);
    int cl = snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = memmem(p, (size_t)(end - p), open, (size_t)ol);
    if (a == NULL)
        return NULL;
    a += ol;
    const char *b = memmem(a, (size_t)(end - a), close, (size_t)cl);
    if (b == NULL)
        return NULL;
    *len = (size_t)(b - a);
    return a;
}

/* Copy XML text to a NUL-terminated string, decoding the five named
 * entities. NULL when out of memory or longer than max. */
static char *ow_xml_text(const char *p, size_t n, size_t max)
{
    if (n > max)
        return NULL;
    char *s = malloc(n + 1), *o = s;
    if (s == NULL)
        return NULL;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < n;) {
        int done = 0;
        if (p[i] == '&') {
            for (size_t k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
                size_t el = strlen(ents[k].ent);
                if (i + el <= n && memcmp(p + i, ents[k].ent, el) == 0) {
                    *o++ = ents[k].c;
                    i += el;
                    done = 1;
                    break;
                }
            }
        }
        if (!done)
            *o++ = p[i++];
    }
    *o = '\0';
    return s;
}

/* "Code: Message" of an S3 error body, into out ("" if none). */
static void ow_s3_error_text(struct evbuffer *body, char *out, size_t n)
{
    out[0] = '\0';
    size_t bl = evbuffer_get_length(body);
    if (bl == 0)
        return;
    const char *p = (const char *)evbuffer_pullup(body, -1);
    if (p == NULL)
        return;
    size_t cl = 0, ml = 0;
    const char *code = ow_xml_tag(p, p + bl, "Code", &cl);
    const char *msg = ow_xml_tag(p, p + bl, "Message", &ml);
    if (code == NULL)
        return;
    if (cl > 128)
        cl = 128;
    if (ml > 300)
        ml = 300;
    snprintf(out, n, "%.*s%s%.*s", (int)cl, code, msg ? ": " : "", msg ? (int)ml : 0,
             msg ? msg : "");
}

static int64_t ow_parse_iso8601_ms(const char *s)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, se;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se) != 6)
        return 0;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    return (int64_t)timegm(&tm) * 1000;
}

typedef struct ow_s3_list {
    ow_list_entry *e;
    size_t n;
    char *next;
} ow_s3_list;

static void ow_s3_list_free(ow_s3_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((char *)l->e[i].key);
    free(l->e);
    free(l->next);
}

/* Parse a ListObjectsV2 result. Returns OW_OK or OW_ECORRUPT/OW_ENOMEM. */
static int ow_s3_parse_list(struct evbuffer *body, unsigned max_keys, ow_s3_list *l)
{
    memset(l, 0, sizeof(*l));
    size_t bl = evbuffer_get_length(body);
    const char *p = bl ? (const char *)evbuffer_pullup(body, -1) : "";
    if (p == NULL)
        return OW_ENOMEM;
    const char *end = p + bl;
    if (memmem(p, bl, "<ListBucketResult", 17) == NULL)
        return OW_ECORRUPT;
    size_t cap = 0;
    const char *cur = p;
    for (;;) {
        size_t cl;
        const char *c = ow_xml_tag(cur, end, "Contents", &cl);
        if (c == NULL)
            break;
        cur = c + cl;
        if (l->n >= max_keys || l->n >= 1000)
            return OW_ECORRUPT; /* more keys than asked for */
        if (l->n == cap) {
            cap = cap ? cap * 2 : 64;
            ow_list_entry *ne = realloc(l->e, cap * sizeof(*ne));
            if (ne == NULL)
                return OW_ENOMEM;
            l->e = ne;
        }
        size_t kl = 0, sl = 0, ml = 0;
        const char *k = ow_xml_tag(c, c + cl, "Key", &kl);
        const char *sz = ow_xml_tag(c, c + cl, "Size", &sl);
        const char *mt = ow_xml_tag(c, c + cl, "LastModified", &ml);
        if (k == NULL)
            return OW_ECORRUPT;
        char *key = ow_xml_text(k, kl, 1024);
        if (key == NULL)
            return OW_ECORRUPT;
        ow_list_entry *e = &l->e[l->n++];
        e->key = key;
        char num[32] = "", date[40] = "";
        if (sz != NULL && sl < sizeof(num))
            memcpy(num, sz, sl), num[sl] = '\0';
        if (mt != NULL && ml < sizeof(date))
            memcpy(date, mt, ml), date[ml] = '\0';
        e->size = strtoull(num, NULL, 10);
        e->mtime_ms = ow_parse_iso8601_ms(date);
    }
    size_t tl = 0, nl = 0;
    const char *tr = ow_xml_tag(p, end, "IsTruncated", &tl);
    const char *nt = ow_xml_tag(p, end, "NextContinuationToken", &nl);
    if (tr != NULL && tl == 4 && memcmp(tr, "true", 4) == 0) {
        if (nt == NULL || (l->next = ow_xml_text(nt, nl, 1024)) == NULL)
            return OW_ECORRUPT;
    }
    return OW_OK;
}

/* Finish req with the outcome of its last attempt. */
static void ow_s3_finish(ow_s3 *s3, ow_s3_req *r, int err, long status, const char *msg)
{
    ow_req *req = &r->base;
    ow_result res = {.err = err, .errmsg = msg, .http_status = (int)status,
                     .attempts = r->attempt};
    ow_s3_list l = {0};
    struct evbuffer *body = r->resp;
    r->resp = NULL;
    ow_s3_release_easy(s3, r);
    char pmsg[512];
    if (err == OW_OK && req->op == OW_OP_GET) {
        res.body = body;
        res.object_size = r->object_size;
        if (r->frame != NULL && r->frame_in_resp && r->frame->len == evbuffer_get_length(body))
            res.frame = r->frame; /* 206: the body is the frame's bytes */
        s3->st->metrics.bytes_down += evbuffer_get_length(body);
        if (status == 200 && r->ranged) {
            /* The server ignored Range: cut the range out of the whole object. */
            uint64_t size = evbuffer_get_length(body), from, n;
            res.object_size = size;
            if (req->off < 0) {
                uint64_t want = (uint64_t)(-req->off);
                from = want > size ? 0 : size - want;
                n = size - from;
            } else {
                from = (uint64_t)req->off < size ? (uint64_t)req->off : size;
                n = size - from;
                if (req->len && req->len < n)
                    n = req->len;
            }
            evbuffer_drain(body, from);
            size_t have = evbuffer_get_length(body);
            if (have > n) {
                struct evbuffer *cut = evbuffer_new();
                if (cut != NULL) {
                    evbuffer_remove_buffer(body, cut, n);
                    evbuffer_free(body);
                    body = cut;
                    res.body = body;
                }
            }
        }
    } else if (err == OW_OK && req->op == OW_OP_LIST) {
        int rc = ow_s3_parse_list(body, req->max_keys, &l);
        if (rc != OW_OK) {
            res.err = rc;
            char d[1200];
            ow_s3_describe(s3, r, d, sizeof(d));
            snprintf(pmsg, sizeof(pmsg), "%.400s: unreadable ListObjectsV2 response", d);
            res.errmsg = pmsg;
        } else {
            res.entries = l.e;
            res.nentries = l.n;
            res.next_token = l.next;
        }
    } else if (err == OW_OK && req->op == OW_OP_PUT) {
        s3->st->metrics.bytes_up += evbuffer_get_length(req->body);
    }
    if (res.err != OW_OK)
        kz_dbg("objwal: %s", res.errmsg);
    kc_frame *frame = r->frame;
    r->frame = NULL;
    ow_req_complete(req, &res);
    ow_s3_list_free(&l);
    if (body != NULL)
        evbuffer_free(body);
    kc_frame_release(frame);
}

static void ow_s3_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    ow_s3_req *r = arg;
    ow_s3 *s3 = r->base.st->impl;
    event_free(r->retry_ev);
    r->retry_ev = NULL;
    int rc = ow_s3_attempt(s3, r);
    if (rc != OW_OK)
        ow_s3_finish(s3, r, rc, 0, "could not start a retry (out of memory)");
}

static int ow_curl_retryable(CURLcode c)
{
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

static void ow_s3_attempt_done(ow_s3 *s3, ow_s3_req *r, CURLcode code)
{
    ow_req *req = &r->base;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(s3->multi, r->easy);
    r->in_multi = 0;
    if (ow_s3_frame_to_resp(r) != 0 && code == CURLE_OK)
        code = CURLE_OUT_OF_MEMORY;

    char what[1200];
    ow_s3_describe(s3, r, what, sizeof(what));
    int err = OW_OK, retry = 0;
    char cause[512] = "";
    if (code != CURLE_OK) {
        retry = ow_curl_retryable(code);
        err = code == CURLE_OPERATION_TIMEDOUT ? OW_ETIMEOUT : OW_EIO;
        if (code == CURLE_WRITE_ERROR)
            snprintf(cause, sizeof(cause), "response larger than the %" PRIu64 " bytes expected",
                     r->resp_cap);
        else
            snprintf(cause, sizeof(cause), "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
    } else if (status >= 200 && status < 300) {
        err = OW_OK;
    } else {
        char s3err[512];
        ow_s3_error_text(r->resp, s3err, sizeof(s3err));
        snprintf(cause, sizeof(cause), "HTTP %ld%s%s", status, s3err[0] ? " " : "", s3err);
        if (status == 404)
            err = req->op == OW_OP_DELETE ? OW_OK : OW_ENOTFOUND;
        else if (status == 412)
            /* Our own earlier attempt may have landed before its answer was
             * lost: keys carry a random part, nobody else writes them. */
            err = req->op == OW_OP_PUT && r->attempt > 1 ? OW_OK : OW_EEXISTS;
        else if (status == 416)
            err = OW_ETRUNCATED;
        else if (status == 401 || status == 403)
            err = OW_EAUTH;
        else if (status >= 500 || status == 429 || status == 408)
            err = OW_ESERVER, retry = 1;
        else
            err = OW_ECLIENT;
    }
    if (err == OW_OK) {
        ow_s3_finish(s3, r, OW_OK, status, "");
        return;
    }
    snprintf(r->lastmsg, sizeof(r->lastmsg), "%.400s: %s", what, cause);
    if (retry) {
        uint64_t now = ow_now_us();
        uint32_t shift = r->attempt < 16 ? r->attempt - 1 : 15;
        uint64_t cap = (uint64_t)s3->backoff_base_ms << shift;
        if (cap > s3->backoff_max_ms)
            cap = s3->backoff_max_ms;
        /* Equal jitter: half fixed, half random, so waits still grow. */
        uint64_t wait_ms = cap / 2 + (cap ? ow_s3_rand(s3) % (cap / 2 + 1) : 0);
        /* Retry only if the attempt after the wait still has a useful time to
         * run: one started with a millisecond left can only time out, and
         * its timeout would replace the real cause in the final error. */
        uint64_t min_attempt_ms = s3->attempt_timeout_ms < 50 ? s3->attempt_timeout_ms : 50;
        if (now + (wait_ms + min_attempt_ms) * 1000 < r->deadline_us) {
            s3->st->metrics.retries++;
            kz_dbg("objwal: %s; retry %u in %" PRIu64 " ms", r->lastmsg, r->attempt, wait_ms);
            curl_easy_cleanup(r->easy);
            r->easy = NULL;
            curl_slist_free_all(r->hdrs);
            r->hdrs = NULL;
            r->retry_ev = evtimer_new(s3->st->base, ow_s3_retry_cb, r);
            if (r->retry_ev != NULL) {
                struct timeval tv = {(time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000};
                evtimer_add(r->retry_ev, &tv);
                return;
            }
        }
        char msg[1200];
        snprintf(msg, sizeof(msg), "%.400s: gave up after %u attempts as the %" PRIu32
                 " ms deadline passed; last error: %s", what, r->attempt, s3->deadline_ms, cause);
        ow_s3_finish(s3, r, OW_ETIMEOUT, status, msg);
        return;
    }
    ow_s3_finish(s3, r, err, status, r->lastmsg);
}

static void ow_s3_check_done(ow_s3 *s3)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s3->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        ow_s3_req *r = NULL;
        CURLcode code = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r != NULL)
            ow_s3_attempt_done(s3, r, code);
    }
}

static int ow_s3_start(ow_store *st, ow_req *req)
{
    ow_s3 *s3 = st->impl;
    ow_s3_req *r = (ow_s3_req *)req;
    r->resp = evbuffer_new();
    if (r->resp == NULL)
        return OW_ENOMEM;
    r->deadline_us = ow_now_us() + (uint64_t)s3->deadline_ms * 1000;
    if (req->op == OW_OP_PUT && !s3->unsigned_payload) {
        if (ow_sha256_hex_evbuffer(req->body, r->payload_hash) != 0) {
            evbuffer_free(r->resp);
            return OW_ENOMEM;
        }
    } else if (req->op == OW_OP_PUT) {
        snprintf(r->payload_hash, sizeof(r->payload_hash), "UNSIGNED-PAYLOAD");
    } else {
        snprintf(r->payload_hash, sizeof(r->payload_hash), "%s", OW_SHA256_EMPTY);
    }
    int rc = ow_s3_attempt(s3, r);
    if (rc != OW_OK) {
        evbuffer_free(r->resp);
        r->resp = NULL;
    }
    return rc;
}

static void ow_s3_destroy(ow_store *st)
{
    ow_s3 *s3 = st->impl;
    if (s3 == NULL)
        return;
    if (s3->multi != NULL)
        curl_multi_cleanup(s3->multi);
    if (s3->timer != NULL)
        event_free(s3->timer);
    free(s3->bucket);
    free(s3->scheme);
    free(s3->hostport);
    free(s3->host_hdr);
    free(s3->url_base);
    free(s3->uri_base);
    free(s3->region);
    free(s3->access_key);
    if (s3->secret_key != NULL) {
        memset(s3->secret_key, 0, strlen(s3->secret_key));
        free(s3->secret_key);
    }
    free(s3->token);
    free(s3);
    st->impl = NULL;
}

static const ow_store_ops ow_s3_ops = {
    .req_size = sizeof(ow_s3_req),
    .start = ow_s3_start,
    .cancel = ow_s3_cancel,
    .destroy = ow_s3_destroy,
};

static char *ow_strdup_or(const char *a, const char *env1, const char *env2)
{
    const char *v = a;
    if (v == NULL && env1 != NULL)
        v = getenv(env1);
    if ((v == NULL || !*v) && env2 != NULL)
        v = getenv(env2);
    return v != NULL && *v ? strdup(v) : NULL;
}

static char *ow_aprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *ow_aprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

int ow_s3_init(ow_store *st, const ow_s3_config *cfg, char *errstr, size_t errstr_size)
{
    static int curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = 1;
    }
    if (cfg->bucket == NULL || !*cfg->bucket) {
        snprintf(errstr, errstr_size, "S3 object store: no bucket configured");
        return OW_EINVAL;
    }
    for (const char *c = cfg->bucket; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.')) {
            snprintf(errstr, errstr_size, "S3 object store: bucket name \"%s\" is not valid",
                     cfg->bucket);
            return OW_EINVAL;
        }
    ow_s3 *s3 = calloc(1, sizeof(*s3));
    if (s3 == NULL) {
        snprintf(errstr, errstr_size, "S3 object store: out of memory");
        return OW_ENOMEM;
    }
    st->impl = s3;
    s3->st = st;
    s3->bucket = strdup(cfg->bucket);
    s3->region = ow_strdup_or(cfg->region, "AWS_REGION", "AWS_DEFAULT_REGION");
    if (s3->region == NULL)
        s3->region = strdup("us-east-1");
    s3->access_key = ow_strdup_or(cfg->access_key, "AWS_ACCESS_KEY_ID", NULL);
    s3->secret_key = ow_strdup_or(cfg->secret_key, "AWS_SECRET_ACCESS_KEY", NULL);
    s3->token = ow_strdup_or(cfg->session_token, cfg->access_key ? NULL : "AWS_SESSION_TOKEN", NULL);
    if (s3->access_key == NULL || s3->secret_key == NULL) {
        snprintf(errstr, errstr_size,
                 "S3 object store: no credentials (set the access and secret keys in the "
                 "config, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
        ow_s3_destroy(st);
        return OW_EINVAL;
    }
    char *endpoint = cfg->endpoint ? strdup(cfg->endpoint)
                                   : ow_aprintf("https://s3.%s.amazonaws.com", s3->region);
    if (endpoint == NULL || s3->bucket == NULL || s3->region == NULL) {
        free(endpoint);
        snprintf(errstr, errstr_size, "S3 object store: out of memory");
        ow_s3_destroy(st);
        return OW_ENOMEM;
    }
    const char *sep = strstr(endpoint, "://");
    if (sep == NULL || (strncmp(endpoint, "http", 4) != 0)) {
        snprintf(errstr, errstr_size,
                 "S3 object store: endpoint \"%s\" must look like http(s)://host[:port]", endpoint);
        free(endpoint);
        ow_s3_destroy(st);
        return OW_EINVAL;
    }
    s3->scheme = strndup(endpoint, (size_t)(sep - endpoint));
    const char *hp = sep + 3;
    size_t hl = strcspn(hp, "/?#");
    s3->hostport = strndup(hp, hl);
    free(endpoint);
    if (s3->hostport == NULL || s3->scheme == NULL || !*s3->hostport ||
        (strcmp(s3->scheme, "http") != 0 && strcmp(s3->scheme, "https") != 0)) {
        snprintf(errstr, errstr_size, "S3 object store: endpoint has no host or an unknown scheme");
        ow_s3_destroy(st);
        return OW_EINVAL;
    }
    if (cfg->path_style) {
        s3->host_hdr = strdup(s3->hostport);
        s3->url_base = ow_aprintf("%s://%s/%s", s3->scheme, s3->hostport, s3->bucket);
        s3->uri_base = ow_aprintf("/%s", s3->bucket);
    } else {
        s3->host_hdr = ow_aprintf("%s.%s", s3->bucket, s3->hostport);
        s3->url_base = ow_aprintf("%s://%s.%s", s3->scheme, s3->bucket, s3->hostport);
        s3->uri_base = strdup("");
    }
    s3->unsigned_payload = cfg->unsigned_payload;
    s3->deadline_ms = cfg->deadline_ms ? cfg->deadline_ms : 30000;
    s3->attempt_timeout_ms = cfg->attempt_timeout_ms ? cfg->attempt_timeout_ms : 10000;
    s3->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 3000;
    s3->backoff_base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms : 100;
    s3->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 5000;
    s3->rng = ow_now_us() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)s3;
    if (s3->rng == 0)
        s3->rng = 1;
    s3->multi = curl_multi_init();
    s3->timer = evtimer_new(st->base, ow_s3_timer_cb, s3);
    if (s3->host_hdr == NULL || s3->url_base == NULL || s3->uri_base == NULL ||
        s3->multi == NULL || s3->timer == NULL) {
        snprintf(errstr, errstr_size, "S3 object store: out of memory");
        ow_s3_destroy(st);
        return OW_ENOMEM;
    }
    curl_multi_setopt(s3->multi, CURLMOPT_SOCKETFUNCTION, ow_s3_sock_fn);
    curl_multi_setopt(s3->multi, CURLMOPT_SOCKETDATA, s3);
    curl_multi_setopt(s3->multi, CURLMOPT_TIMERFUNCTION, ow_s3_timer_fn);
    curl_multi_setopt(s3->multi, CURLMOPT_TIMERDATA, s3);
    curl_multi_setopt(s3->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      (long)(cfg->max_connections ? cfg->max_connections : 32));
    st->ops = &ow_s3_ops;
    snprintf(st->desc, sizeof(st->desc), "s3://%s (%s://%s, %s, %s%s)", s3->bucket, s3->scheme,
             s3->hostport, s3->region, cfg->path_style ? "path-style" : "virtual-host",
             s3->unsigned_payload ? ", unsigned payload" : "");
    return OW_OK;
}
