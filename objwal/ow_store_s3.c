/*
 * S3 backend: requests (URL, headers, SigV4 on every attempt, one curl easy
 * handle per attempt) and setup from the config. The HTTP plumbing, the
 * retries and the XML are in ow_s3_http.c, ow_s3_retry.c and ow_s3_xml.c
 * (ow_s3_int.h).
 */
#include "config.h"

#include "objwal/ow_format.h"
#include "objwal/ow_s3_int.h"
#include "objwal/ow_sigv4.h"

#include "common/kz_log.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- requests ---- */

/* Free a request's header list, wiping each line first: one holds the
 * session token. (libcurl's own copy of the request it built is its own.) */
static void ow_s3_hdrs_free(struct curl_slist *l)
{
    for (struct curl_slist *h = l; h != NULL; h = h->next)
        if (h->data != NULL)
            OPENSSL_cleanse(h->data, strlen(h->data));
    curl_slist_free_all(l);
}

void ow_s3_release_easy(ow_s3 *s3, ow_s3_req *r)
{
    if (r->easy != NULL) {
        if (r->in_multi)
            curl_multi_remove_handle(s3->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        r->in_multi = 0;
    }
    ow_s3_hdrs_free(r->hdrs);
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

void ow_s3_describe(ow_s3 *s3, ow_s3_req *r, char *out, size_t n)
{
    snprintf(out, n, "%s s3://%s/%s", ow_op_names[r->base.op], s3->bucket, r->base.key);
}

static struct curl_slist *ow_s3_hdr(struct curl_slist *l, int *err, const char *name,
                                    const char *value)
{
    char line[OW_S3_MAX_TOKEN + 128];
    int n = snprintf(line, sizeof(line), "%s: %s", name, value);
    /* Never sent cut short (ow_s3_init refuses a token that would not fit). */
    struct curl_slist *nl = n > 0 && (size_t)n < sizeof(line) ? curl_slist_append(l, line) : NULL;
    OPENSSL_cleanse(line, sizeof(line)); /* it may be the session token's line */
    if (nl == NULL) {
        *err = 1;
        return l;
    }
    return nl;
}

/* Start one attempt. Returns OW_OK or an ow_err (the attempt did not start). */
int ow_s3_attempt(ow_s3 *s3, ow_s3_req *r)
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
    ow_sigv4_header sh[10];
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
    /* Signed like every x-amz-* header, so nobody on the way can drop them
     * and have the object stored unencrypted. */
    if (req->op == OW_OP_PUT && s3->sse != NULL) {
        sh[nh++] = (ow_sigv4_header){"x-amz-server-side-encryption", s3->sse};
        if (s3->sse_kms_key_id != NULL)
            sh[nh++] = (ow_sigv4_header){"x-amz-server-side-encryption-aws-kms-key-id", s3->sse_kms_key_id};
    }
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
        ow_s3_hdrs_free(hl);
        return OW_ENOMEM;
    }

    CURL *e = curl_easy_init();
    if (e == NULL) {
        ow_s3_hdrs_free(hl);
        return OW_ENOMEM;
    }
    evbuffer_drain(r->resp, evbuffer_get_length(r->resp));
    ow_s3_frame_drop(r);
    r->frame_cap = 0;
    r->object_size = 0;
    r->errbuf[0] = '\0';
    uint64_t now = ow_s3_now_us();
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
    /* https: the endpoint's certificate and name are always verified. */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s3->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, s3->ca_file);
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
        /* Fewer, larger sends of a multi-MiB body (curl's default: 64 KiB). */
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, OW_S3_UPLOAD_BUFFER);
        r->resp_cap = OW_S3_ERRBODY_MAX;
        s3->st->metrics.put_requests++;
        break;
    case OW_OP_GET:
        r->resp_cap = req->off >= 0 && req->len > 0 ? req->len + OW_S3_ERRBODY_MAX : OW_MAX_OBJECT;
        r->frame_cap = req->off >= 0 ? req->len : 0;
        r->ranged = 1;
        /* Fewer, larger reads and write callbacks (curl's default: 16 KiB);
         * each piece is copied and, with a tap, checked while in the cache. */
        if (req->len >= OW_S3_GET_BUFFER)
            curl_easy_setopt(e, CURLOPT_BUFFERSIZE, OW_S3_GET_BUFFER);
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
        ow_s3_hdrs_free(hl);
        return OW_ENOMEM;
    }
    r->easy = e;
    r->hdrs = hl;
    r->in_multi = 1;
    r->attempt++;
    return OW_OK;
}

static int ow_s3_start(ow_store *st, ow_req *req)
{
    ow_s3 *s3 = st->impl;
    ow_s3_req *r = (ow_s3_req *)req;
    r->resp = evbuffer_new();
    if (r->resp == NULL)
        return OW_ENOMEM;
    r->deadline_us = ow_s3_now_us() + (uint64_t)s3->deadline_ms * 1000;
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
        OPENSSL_cleanse(s3->secret_key, strlen(s3->secret_key));
        free(s3->secret_key);
    }
    if (s3->token != NULL) {
        OPENSSL_cleanse(s3->token, strlen(s3->token));
        free(s3->token);
    }
    free(s3->sse);
    free(s3->sse_kms_key_id);
    free(s3->ca_file);
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
    if (s3->token != NULL && strlen(s3->token) > OW_S3_MAX_TOKEN) {
        snprintf(errstr, errstr_size,
                 "S3 object store: the session token (%s) is %zu bytes, more than the %d this proxy sends: "
                 "check that it is the token alone (no line breaks, quotes or other fields)",
                 cfg->session_token ? "wal.store.session_token" : "AWS_SESSION_TOKEN", strlen(s3->token),
                 OW_S3_MAX_TOKEN);
        ow_s3_destroy(st);
        return OW_EINVAL;
    }
    if (strlen(s3->secret_key) > 200) {
        snprintf(errstr, errstr_size, "S3 object store: the secret key is %zu bytes (AWS keys are 40): check it",
                 strlen(s3->secret_key));
        ow_s3_destroy(st);
        return OW_EINVAL;
    }
    if (cfg->sse != NULL && strcmp(cfg->sse, "AES256") != 0 && strcmp(cfg->sse, "aws:kms") != 0) {
        snprintf(errstr, errstr_size, "S3 object store: sse \"%s\" is not \"AES256\" or \"aws:kms\"", cfg->sse);
        ow_s3_destroy(st);
        return OW_EINVAL;
    }
    if (cfg->sse != NULL && strcmp(cfg->sse, "aws:kms") == 0 && (cfg->sse_kms_key_id == NULL || !*cfg->sse_kms_key_id)) {
        snprintf(errstr, errstr_size, "S3 object store: sse \"aws:kms\" needs sse_kms_key_id (the KMS key id or ARN)");
        ow_s3_destroy(st);
        return OW_EINVAL;
    }
    if (cfg->sse != NULL && ((s3->sse = strdup(cfg->sse)) == NULL ||
                             (cfg->sse_kms_key_id && (s3->sse_kms_key_id = strdup(cfg->sse_kms_key_id)) == NULL))) {
        snprintf(errstr, errstr_size, "S3 object store: out of memory");
        ow_s3_destroy(st);
        return OW_ENOMEM;
    }
    if (cfg->ca_file != NULL && (s3->ca_file = strdup(cfg->ca_file)) == NULL) {
        snprintf(errstr, errstr_size, "S3 object store: out of memory");
        ow_s3_destroy(st);
        return OW_ENOMEM;
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
    s3->rng = ow_s3_now_us() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)s3;
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
    snprintf(st->desc, sizeof(st->desc), "s3://%s (%s://%s, %s, %s%s%s%s)", s3->bucket, s3->scheme,
             s3->hostport, s3->region, cfg->path_style ? "path-style" : "virtual-host",
             s3->unsigned_payload ? ", unsigned payload" : "", s3->sse ? ", SSE " : "", s3->sse ? s3->sse : "");
    return OW_OK;
}
