/*
 * kc_peer: the peer RPC messages and their MAC (see kc_peer.h and
 * docs/PEER_RPC.md for the wire layout).
 */
#include "config.h"

#include "codec/kc_peer.h"

#include <event2/buffer.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

int kc_peer_api(int16_t key)
{
    return key == KC_API_KZ_HELLO || key == KC_API_KZ_WAL_APPEND;
}

void kc_peer_auth_write(kc_wr *w, kc_peer_auth *a)
{
    if (RAND_bytes(a->nonce, sizeof(a->nonce)) != 1) {
        /* No entropy: refuse to send rather than send a predictable nonce. */
        w->err = 1;
        return;
    }
    kc_wr_i32(w, a->sender);
    kc_wr_i64(w, a->ts_ms);
    kc_wr_raw(w, a->nonce, sizeof(a->nonce));
}

/* ---- MAC ---- */

typedef struct kc_mac {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
} kc_mac;

/* HMAC's implementation, fetched once for the process: a fetch per message
 * was about 150,000 instructions (callgrind, make bench's instr scenario).
 * Fetched methods are reference counted and safe to share across threads. */
static EVP_MAC *kc_mac_hmac_cached;

static EVP_MAC *kc_mac_hmac(void)
{
    EVP_MAC *m = __atomic_load_n(&kc_mac_hmac_cached, __ATOMIC_ACQUIRE);
    if (m != NULL)
        return m;
    m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (m == NULL)
        return NULL;
    EVP_MAC *seen = NULL;
    if (!__atomic_compare_exchange_n(&kc_mac_hmac_cached, &seen, m, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        EVP_MAC_free(m); /* another thread's is in place */
        return seen;
    }
    return m;
}

static int kc_mac_begin(kc_mac *m, const void *secret, size_t secret_len, int16_t api_key,
                        int16_t version, int32_t receiver, const uint8_t *req_nonce)
{
    m->mac = kc_mac_hmac();
    m->ctx = m->mac ? EVP_MAC_CTX_new(m->mac) : NULL;
    if (m->ctx == NULL)
        return -1;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (EVP_MAC_init(m->ctx, secret, secret_len, params) != 1)
        return -1;
    /* Domain separation: "Q" request, "R" response (bound to the request's nonce). */
    uint8_t pre[5] = {req_nonce ? 'R' : 'Q', (uint8_t)((uint16_t)api_key >> 8), (uint8_t)api_key,
                      (uint8_t)((uint16_t)version >> 8), (uint8_t)version};
    if (EVP_MAC_update(m->ctx, pre, sizeof(pre)) != 1)
        return -1;
    if (req_nonce && EVP_MAC_update(m->ctx, req_nonce, KC_PEER_NONCE_LEN) != 1)
        return -1;
    /* A request names its receiver, so it does not verify at another proxy
     * that shares the secret (and the WAL store). */
    uint32_t r = (uint32_t)receiver;
    uint8_t rcv[4] = {(uint8_t)(r >> 24), (uint8_t)(r >> 16), (uint8_t)(r >> 8), (uint8_t)r};
    if (req_nonce == NULL && EVP_MAC_update(m->ctx, rcv, sizeof(rcv)) != 1)
        return -1;
    return 0;
}

static int kc_mac_final(kc_mac *m, uint8_t out[KC_PEER_MAC_LEN])
{
    size_t n = 0;
    return EVP_MAC_final(m->ctx, out, &n, KC_PEER_MAC_LEN) == 1 && n == KC_PEER_MAC_LEN ? 0 : -1;
}

static void kc_mac_end(kc_mac *m)
{
    EVP_MAC_CTX_free(m->ctx); /* m->mac is the process's, kept */
}

int kc_peer_seal(struct evbuffer *body, const void *secret, size_t secret_len, int16_t api_key,
                 int16_t version, int32_t receiver, const uint8_t *req_nonce)
{
    kc_mac m = {0};
    uint8_t tag[KC_PEER_MAC_LEN];
    int rc = kc_mac_begin(&m, secret, secret_len, api_key, version, receiver, req_nonce);
    /* Every chain at once: evbuffer_peek with len -1 stops at n_vec, so a
     * fixed-size window would miss the chains past it. */
    int n = evbuffer_peek(body, -1, NULL, NULL, 0);
    struct evbuffer_iovec *v = n > 0 ? calloc((size_t)n, sizeof(*v)) : NULL;
    if (n > 0 && v == NULL)
        rc = -1;
    if (rc == 0 && n > 0) {
        n = evbuffer_peek(body, -1, NULL, v, n);
        for (int i = 0; i < n && rc == 0; i++)
            if (EVP_MAC_update(m.ctx, v[i].iov_base, v[i].iov_len) != 1)
                rc = -1;
    }
    free(v);
    if (rc == 0)
        rc = kc_mac_final(&m, tag);
    kc_mac_end(&m);
    if (rc == 0)
        rc = evbuffer_add(body, tag, sizeof(tag));
    return rc;
}

int kc_peer_verify(const uint8_t *p, size_t len, const void *secret, size_t secret_len,
                   int16_t api_key, int16_t version, int32_t receiver, const uint8_t *req_nonce,
                   size_t *payload_len)
{
    if (len < KC_PEER_MAC_LEN)
        return -1;
    size_t n = len - KC_PEER_MAC_LEN;
    kc_mac m = {0};
    uint8_t tag[KC_PEER_MAC_LEN];
    int rc = kc_mac_begin(&m, secret, secret_len, api_key, version, receiver, req_nonce);
    if (rc == 0 && EVP_MAC_update(m.ctx, p, n) != 1)
        rc = -1;
    if (rc == 0)
        rc = kc_mac_final(&m, tag);
    kc_mac_end(&m);
    if (rc != 0 || CRYPTO_memcmp(tag, p + n, KC_PEER_MAC_LEN) != 0)
        return -1;
    *payload_len = n;
    return 0;
}

/* ---- KzHello ---- */

int kc_peer_hello_decode(kc_rd *rd, kc_peer_hello *out)
{
    *out = (kc_peer_hello){0};
    out->node_id = kc_rd_i32(rd);
    out->zone = kc_rd_string(rd, 1);
    out->host = kc_rd_string(rd, 1);
    out->port = kc_rd_i32(rd);
    out->started_ms = kc_rd_i64(rd);
    /* Optional trailing tagged fields (absent from older proxies): tag 0 is
     * a 4-byte flags word; other tags are skipped. */
    if (rd->err == NULL && kc_rd_remain(rd) > 0) {
        uint32_t ntags = kc_rd_uvarint(rd);
        if (rd->err == NULL && ntags > kc_rd_remain(rd))
            return kc_rd_fail(rd, "tag count larger than the message");
        for (uint32_t i = 0; i < ntags && rd->err == NULL; i++) {
            uint32_t tag = kc_rd_uvarint(rd), size = kc_rd_uvarint(rd);
            if (rd->err == NULL && size > kc_rd_remain(rd))
                return kc_rd_fail(rd, "tagged field longer than the message");
            if (rd->err == NULL && tag == 0 && size == 4)
                out->flags = kc_rd_u32(rd);
            else
                kc_rd_skip(rd, size);
        }
    }
    if (rd->err == NULL && (out->port <= 0 || out->port > 65535))
        return kc_rd_fail(rd, "port out of range");
    if (rd->err == NULL && (out->zone.len == 0 || out->host.len == 0))
        return kc_rd_fail(rd, "empty zone or host");
    return kc_rd_finish(rd);
}

void kc_peer_hello_encode(kc_wr *w, const kc_peer_hello *in)
{
    kc_wr_i32(w, in->node_id);
    kc_wr_string(w, in->zone, 1);
    kc_wr_string(w, in->host, 1);
    kc_wr_i32(w, in->port);
    kc_wr_i64(w, in->started_ms);
    if (in->flags != 0) { /* only then: older proxies reject trailing bytes */
        kc_wr_uvarint(w, 1);
        kc_wr_uvarint(w, 0);
        kc_wr_uvarint(w, 4);
        kc_wr_u32(w, in->flags);
    }
}

/* ---- KzWalAppend request ---- */

static size_t kc_uvarint_size(uint32_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void kc_wal_part_decode(kc_rd *rd, kc_wal_part *p)
{
    p->topic = kc_rd_string(rd, 1);
    p->partition = kc_rd_i32(rd);
    p->off = kc_rd_i64(rd);
    p->len = kc_rd_i32(rd);
    p->crc32c = kc_rd_u32(rd);
    if (rd->err == NULL && (p->topic.len == 0 || p->partition < 0 || p->off < 0 || p->len <= 0))
        kc_rd_fail(rd, "invalid slice (empty topic, negative partition, offset or length)");
}

static void kc_wal_broker_decode(kc_rd *rd, kc_arena *a, kc_wal_broker *b, int32_t *budget)
{
    b->broker_id = kc_rd_i32(rd);
    /* topic (1) + partition 4 + off 8 + len 4 + crc 4 */
    int32_t n = kc_rd_arraylen(rd, 1, 0, 21);
    if (rd->err)
        return;
    if (n > *budget) {
        kc_rd_fail(rd, "too many partitions");
        return;
    }
    *budget -= n;
    b->parts = kc_arena_calloc(a, (size_t)n, sizeof(*b->parts));
    if (b->parts == NULL && n > 0) {
        kc_rd_fail(rd, "out of memory");
        return;
    }
    b->nparts = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_wal_part_decode(rd, &b->parts[i]);
}

static void kc_wal_group_decode(kc_rd *rd, kc_arena *a, kc_wal_group *g, int32_t *budget)
{
    g->produce_version = kc_rd_i16(rd);
    g->acks = kc_rd_i16(rd);
    g->timeout_ms = kc_rd_i32(rd);
    g->transactional_id = kc_rd_nstring(rd, 1);
    g->client_id = kc_rd_nstring(rd, 1);
    int32_t n = kc_rd_arraylen(rd, 1, 0, 5); /* broker id + parts count */
    if (rd->err)
        return;
    if (g->acks != 0 && g->acks != 1 && g->acks != -1) {
        kc_rd_fail(rd, "invalid acks");
        return;
    }
    g->brokers = kc_arena_calloc(a, (size_t)n, sizeof(*g->brokers));
    if (g->brokers == NULL && n > 0) {
        kc_rd_fail(rd, "out of memory");
        return;
    }
    g->nbrokers = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++)
        kc_wal_broker_decode(rd, a, &g->brokers[i], budget);
}

/* Tag 0: one nullable principal per group. */
static void kc_wal_principals_decode(kc_rd *rd, kc_wal_append_req *out)
{
    int32_t n = kc_rd_arraylen(rd, 1, 0, 1);
    if (rd->err == NULL && n != out->ngroups) {
        kc_rd_fail(rd, "principals do not match the groups");
        return;
    }
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_str s = kc_rd_nstring(rd, 1);
        /* The ACL check takes a C string: a NUL inside would cut it short
         * and turn one principal into another. */
        if (rd->err == NULL && s.len > 0 && memchr(s.p, '\0', (size_t)s.len) != NULL) {
            kc_rd_fail(rd, "principal contains a NUL byte");
            return;
        }
        out->groups[i].principal = s;
    }
    kc_rd_finish(rd);
}

/* The optional tagged fields after the groups (see kc_peer.h). */
static void kc_wal_append_tags_decode(kc_rd *rd, kc_wal_append_req *out)
{
    uint32_t count = kc_rd_uvarint(rd);
    if (rd->err == NULL && count > kc_rd_remain(rd) / 2) {
        kc_rd_fail(rd, "tagged field count exceeds frame");
        return;
    }
    int seen = 0;
    for (uint32_t i = 0; i < count && rd->err == NULL; i++) {
        uint32_t tag = kc_rd_uvarint(rd);
        uint32_t size = kc_rd_uvarint(rd);
        if (rd->err)
            return;
        if (size > kc_rd_remain(rd)) {
            kc_rd_fail(rd, "tagged field longer than the frame");
            return;
        }
        if (tag == KC_WAL_TAG_PRINCIPALS) {
            if (seen++) {
                kc_rd_fail(rd, "principals tag given twice");
                return;
            }
            kc_rd sub;
            kc_rd_init(&sub, rd->p + rd->off, size);
            kc_wal_principals_decode(&sub, out);
            if (sub.err) {
                rd->err = sub.err;
                rd->err_off = rd->off + sub.err_off;
                return;
            }
        }
        kc_rd_skip(rd, size); /* unknown tags: skipped, as Kafka does */
    }
}

int kc_wal_append_req_decode(kc_rd *rd, kc_arena *a, kc_wal_append_req *out)
{
    *out = (kc_wal_append_req){0};
    out->key = kc_rd_string(rd, 1);
    /* version 2, acks 2, timeout 4, two null strings 1+1, brokers count 1 */
    int32_t n = kc_rd_arraylen(rd, 1, 0, 11);
    if (rd->err)
        return -1;
    if (out->key.len <= 0)
        return kc_rd_fail(rd, "empty object key");
    if (n > KC_WAL_MAX_GROUPS)
        return kc_rd_fail(rd, "too many groups");
    out->groups = kc_arena_calloc(a, (size_t)n, sizeof(*out->groups));
    if (out->groups == NULL && n > 0)
        return kc_rd_fail(rd, "out of memory");
    out->ngroups = n;
    int32_t budget = KC_WAL_MAX_PARTS;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_wal_group_decode(rd, a, &out->groups[i], &budget);
        out->groups[i].principal = (kc_str){NULL, -1};
    }
    if (rd->err == NULL && kc_rd_remain(rd) > 0)
        kc_wal_append_tags_decode(rd, out);
    return kc_rd_finish(rd);
}

void kc_wal_append_req_encode(kc_wr *w, const kc_wal_append_req *in)
{
    kc_wr_string(w, in->key, 1);
    kc_wr_arraylen(w, in->ngroups, 1);
    for (int32_t i = 0; i < in->ngroups; i++) {
        const kc_wal_group *g = &in->groups[i];
        kc_wr_i16(w, g->produce_version);
        kc_wr_i16(w, g->acks);
        kc_wr_i32(w, g->timeout_ms);
        kc_wr_string(w, g->transactional_id, 1);
        kc_wr_string(w, g->client_id, 1);
        kc_wr_arraylen(w, g->nbrokers, 1);
        for (int32_t j = 0; j < g->nbrokers; j++) {
            const kc_wal_broker *b = &g->brokers[j];
            kc_wr_i32(w, b->broker_id);
            kc_wr_arraylen(w, b->nparts, 1);
            for (int32_t k = 0; k < b->nparts; k++) {
                const kc_wal_part *p = &b->parts[k];
                kc_wr_string(w, p->topic, 1);
                kc_wr_i32(w, p->partition);
                kc_wr_i64(w, p->off);
                kc_wr_i32(w, p->len);
                kc_wr_u32(w, p->crc32c);
            }
        }
    }
    int any = 0;
    for (int32_t i = 0; i < in->ngroups; i++)
        any |= in->groups[i].principal.p != NULL && in->groups[i].principal.len >= 0;
    if (!any)
        return; /* the original encoding: an old peer reads it */
    /* Tag 0's body, sized first: uvarint count, then one compact nullable
     * string per group. */
    size_t size = kc_uvarint_size((uint32_t)in->ngroups + 1);
    for (int32_t i = 0; i < in->ngroups; i++) {
        kc_str s = in->groups[i].principal;
        int32_t len = s.p == NULL || s.len < 0 ? -1 : s.len;
        size += kc_uvarint_size((uint32_t)(len + 1)) + (len > 0 ? (size_t)len : 0);
    }
    if (size > UINT32_MAX) {
        kc_wr_fail(w, "principals too long");
        return;
    }
    kc_wr_uvarint(w, 1);
    kc_wr_uvarint(w, KC_WAL_TAG_PRINCIPALS);
    kc_wr_uvarint(w, (uint32_t)size);
    kc_wr_arraylen(w, in->ngroups, 1);
    for (int32_t i = 0; i < in->ngroups; i++) {
        kc_str s = in->groups[i].principal;
        if (s.p == NULL)
            s.len = -1;
        kc_wr_string(w, s, 1);
    }
}

/* ---- KzWalAppend response ---- */

static void kc_wal_result_decode(kc_rd *rd, kc_arena *a, kc_produce_resp_partition *p)
{
    p->index = kc_rd_i32(rd);
    p->error_code = kc_rd_i16(rd);
    p->base_offset = kc_rd_i64(rd);
    p->log_append_time_ms = kc_rd_i64(rd);
    p->log_start_offset = kc_rd_i64(rd);
    int32_t n = kc_rd_arraylen(rd, 1, 0, 5); /* batch index 4 + message 1 */
    if (rd->err)
        return;
    p->record_errors = kc_arena_calloc(a, (size_t)n, sizeof(*p->record_errors));
    if (p->record_errors == NULL && n > 0) {
        kc_rd_fail(rd, "out of memory");
        return;
    }
    p->nrecord_errors = n;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        p->record_errors[i].batch_index = kc_rd_i32(rd);
        p->record_errors[i].batch_index_error_message = kc_rd_nstring(rd, 1);
    }
    p->error_message = kc_rd_nstring(rd, 1);
}

int kc_wal_append_resp_decode(kc_rd *rd, kc_arena *a, kc_wal_append_resp *out)
{
    *out = (kc_wal_append_resp){0};
    int32_t n = kc_rd_arraylen(rd, 1, 0, 5); /* throttle 4 + parts count 1 */
    if (rd->err)
        return -1;
    if (n > KC_WAL_MAX_GROUPS)
        return kc_rd_fail(rd, "too many groups");
    out->groups = kc_arena_calloc(a, (size_t)n, sizeof(*out->groups));
    if (out->groups == NULL && n > 0)
        return kc_rd_fail(rd, "out of memory");
    out->ngroups = n;
    int32_t budget = KC_WAL_MAX_PARTS;
    for (int32_t i = 0; i < n && rd->err == NULL; i++) {
        kc_wal_group_result *g = &out->groups[i];
        g->throttle_time_ms = kc_rd_i32(rd);
        /* index 4, error 2, three int64 24, errors count 1, message 1 */
        int32_t np = kc_rd_arraylen(rd, 1, 0, 32);
        if (rd->err)
            break;
        if (np > budget)
            return kc_rd_fail(rd, "too many partitions");
        budget -= np;
        g->parts = kc_arena_calloc(a, (size_t)np, sizeof(*g->parts));
        if (g->parts == NULL && np > 0)
            return kc_rd_fail(rd, "out of memory");
        g->nparts = np;
        for (int32_t j = 0; j < np && rd->err == NULL; j++)
            kc_wal_result_decode(rd, a, &g->parts[j]);
    }
    return kc_rd_finish(rd);
}

void kc_wal_append_resp_encode(kc_wr *w, const kc_wal_append_resp *in)
{
    kc_wr_arraylen(w, in->ngroups, 1);
    for (int32_t i = 0; i < in->ngroups; i++) {
        const kc_wal_group_result *g = &in->groups[i];
        kc_wr_i32(w, g->throttle_time_ms);
        kc_wr_arraylen(w, g->nparts, 1);
        for (int32_t j = 0; j < g->nparts; j++) {
            const kc_produce_resp_partition *p = &g->parts[j];
            kc_wr_i32(w, p->index);
            kc_wr_i16(w, p->error_code);
            kc_wr_i64(w, p->base_offset);
            kc_wr_i64(w, p->log_append_time_ms);
            kc_wr_i64(w, p->log_start_offset);
            kc_wr_arraylen(w, p->nrecord_errors, 1);
            for (int32_t k = 0; k < p->nrecord_errors; k++) {
                kc_wr_i32(w, p->record_errors[k].batch_index);
                kc_wr_string(w, p->record_errors[k].batch_index_error_message, 1);
            }
            kc_wr_string(w, p->error_message, 1);
        }
    }
}
