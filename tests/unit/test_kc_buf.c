/* Reader/writer primitives: varints, compact forms, bounds, tags. */
#include "config.h"

#include "codec/kc_arena.h"
#include "codec/kc_buf.h"
#include "codec/kc_crc32c.h"
#include "codec/kc_proto.h"
#include "tests/unit/kz_test.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

START_TEST(test_uvarint_roundtrip)
{
    const uint32_t vals[] = {0, 1, 127, 128, 300, 16383, 16384, 0x7fffffff, 0xffffffffu};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        struct evbuffer *eb = evbuffer_new();
        kc_wr w;
        kc_wr_init(&w, eb, NULL);
        kc_wr_uvarint(&w, vals[i]);
        kc_rd rd;
        size_t n = evbuffer_get_length(eb);
        kc_rd_init(&rd, evbuffer_pullup(eb, -1), n);
        ck_assert_uint_eq(kc_rd_uvarint(&rd), vals[i]);
        ck_assert_ptr_null(rd.err);
        ck_assert_uint_eq(rd.off, n);
        evbuffer_free(eb);
    }
    /* 300 is 0xac 0x02 (protobuf's own example). */
    const uint8_t b300[] = {0xac, 0x02};
    kc_rd rd;
    kc_rd_init(&rd, b300, 2);
    ck_assert_uint_eq(kc_rd_uvarint(&rd), 300);
}
END_TEST

START_TEST(test_varint_zigzag)
{
    const int64_t vals[] = {0, -1, 1, -64, 63, INT32_MIN, INT32_MAX, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        struct evbuffer *eb = evbuffer_new();
        kc_wr w;
        kc_wr_init(&w, eb, NULL);
        kc_wr_varlong(&w, vals[i]);
        kc_rd rd;
        kc_rd_init(&rd, evbuffer_pullup(eb, -1), evbuffer_get_length(eb));
        ck_assert(kc_rd_varlong(&rd) == vals[i]);
        evbuffer_free(eb);
    }
    const uint8_t minus1[] = {0x01};
    kc_rd rd;
    kc_rd_init(&rd, minus1, 1);
    ck_assert_int_eq(kc_rd_varint(&rd), -1);
}
END_TEST

START_TEST(test_varint_too_long)
{
    const uint8_t b[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    kc_rd rd;
    kc_rd_init(&rd, b, sizeof(b));
    (void)kc_rd_uvarint(&rd);
    ck_assert_ptr_nonnull(rd.err);
}
END_TEST

START_TEST(test_strings)
{
    const uint8_t classic[] = {I16(3), 'a', 'b', 'c', I16(-1)};
    kc_rd rd;
    kc_rd_init(&rd, classic, sizeof(classic));
    ck_assert(kc_str_eq(kc_rd_string(&rd, 0), "abc"));
    ck_assert_int_eq(kc_rd_nstring(&rd, 0).len, -1);
    ck_assert_ptr_null(rd.err);

    const uint8_t compact[] = {UV(4), 'a', 'b', 'c', UV(0)};
    kc_rd_init(&rd, compact, sizeof(compact));
    ck_assert(kc_str_eq(kc_rd_string(&rd, 1), "abc"));
    (void)kc_rd_string(&rd, 1);
    ck_assert_str_eq(rd.err, "null in non-nullable string");

    const uint8_t toolong[] = {I16(100), 'a'};
    kc_rd_init(&rd, toolong, sizeof(toolong));
    (void)kc_rd_string(&rd, 0);
    ck_assert_str_eq(rd.err, "length exceeds frame");
}
END_TEST

START_TEST(test_array_bounds)
{
    /* A claimed count of 2^31-1 in a 10-byte frame fails before allocation. */
    const uint8_t huge[] = {I32(0x7fffffff), 0, 0, 0, 0, 0, 0};
    kc_rd rd;
    kc_rd_init(&rd, huge, sizeof(huge));
    (void)kc_rd_arraylen(&rd, 0, 0, 4);
    ck_assert_str_eq(rd.err, "array count exceeds frame");

    const uint8_t null_arr[] = {I32(-1)};
    kc_rd_init(&rd, null_arr, sizeof(null_arr));
    ck_assert_int_eq(kc_rd_arraylen(&rd, 0, 1, 4), -1);
    ck_assert_ptr_null(rd.err);
    kc_rd_init(&rd, null_arr, sizeof(null_arr));
    (void)kc_rd_arraylen(&rd, 0, 0, 4);
    ck_assert_str_eq(rd.err, "null in non-nullable array");
}
END_TEST

START_TEST(test_tags_passthrough)
{
    /* Two tagged fields: tag 0 size 2 {0xaa,0xbb}, tag 5 size 0. */
    const uint8_t t[] = {UV(2), UV(0), UV(2), 0xaa, 0xbb, UV(5), UV(0)};
    kc_rd rd;
    kc_tags tags;
    kc_rd_init(&rd, t, sizeof(t));
    kc_rd_tags(&rd, &tags);
    ck_assert_ptr_null(rd.err);
    ck_assert_uint_eq(tags.count, 2);
    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    kc_wr_tags(&w, &tags);
    kz_expect_bytes("tags", evbuffer_pullup(eb, -1), evbuffer_get_length(eb), t, sizeof(t));
    evbuffer_free(eb);
}
END_TEST

START_TEST(test_sticky_error)
{
    const uint8_t b[] = {1};
    kc_rd rd;
    kc_rd_init(&rd, b, 1);
    ck_assert_int_eq(kc_rd_i32(&rd), 0);
    ck_assert_str_eq(rd.err, "truncated field");
    ck_assert_int_eq(kc_rd_i8(&rd), 0); /* does not read after an error */
    ck_assert_uint_eq(rd.off, 0);
}
END_TEST

START_TEST(test_bytes_by_reference)
{
    kc_frame *f = kc_frame_new(2048);
    memset(f->data, 'x', f->len);
    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, f);
    kc_bytes b = {f->data + 10, 1000};
    kc_wr_bytes(&w, b, 0);
    ck_assert_int_eq(f->refcnt, 2); /* the evbuffer holds a reference */
    ck_assert_uint_eq(evbuffer_get_length(eb), 1004);
    evbuffer_free(eb);
    ck_assert_int_eq(f->refcnt, 1);
    kc_frame_release(f);
}
END_TEST

START_TEST(test_crc32c_vectors)
{
    /* RFC 3720 appendix B.4 check values. */
    uint8_t zeros[32] = {0}, ones[32], inc[32];
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    ck_assert_uint_eq(kc_crc32c(0, zeros, 32), 0x8a9136aa);
    ck_assert_uint_eq(kc_crc32c(0, ones, 32), 0x62a8ab43);
    ck_assert_uint_eq(kc_crc32c(0, inc, 32), 0x46dd794e);
    ck_assert_uint_eq(kc_crc32c(0, "123456789", 9), 0xe3069283);
    /* Incremental equals one-shot. */
    ck_assert_uint_eq(kc_crc32c(kc_crc32c(0, inc, 5), inc + 5, 27), 0x46dd794e);
}
END_TEST

START_TEST(test_arena)
{
    kc_arena a;
    kc_arena_init(&a);
    for (int i = 0; i < 1000; i++) {
        int *p = kc_arena_calloc(&a, 10, sizeof(int));
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(p[9], 0);
    }
    ck_assert_ptr_null(kc_arena_calloc(&a, SIZE_MAX / 2, 4));
    kc_arena_destroy(&a);
}
END_TEST

/* A frame body partly in the input buffer, partly on the socket, arriving in
 * pieces; then a peer that closes mid-frame. */
START_TEST(test_frame_rx)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
    enum { LEN = 100000, BUFFERED = 1000, FIRST = 30000 };
    uint8_t *want = malloc(LEN);
    ck_assert_ptr_nonnull(want);
    for (size_t i = 0; i < LEN; i++)
        want[i] = (uint8_t)(i * 7 + (i >> 11));
    struct evbuffer *in = evbuffer_new();
    evbuffer_add(in, want, BUFFERED);
    kc_frame_rx rx;
    kc_frame_rx_start(&rx, kc_frame_new(LEN));
    ck_assert_ptr_nonnull(rx.f);
    ck_assert_int_eq(kc_frame_rx_fill(&rx, in, sv[0]), 0); /* nothing on the socket yet */
    ck_assert_uint_eq(rx.got, BUFFERED);
    ck_assert_uint_eq(evbuffer_get_length(in), 0);
    ck_assert_int_eq(write(sv[1], want + BUFFERED, FIRST), FIRST);
    ck_assert_int_eq(kc_frame_rx_fill(&rx, in, sv[0]), 0);
    ck_assert_uint_eq(rx.got, BUFFERED + FIRST);
    /* The rest, followed by the start of the next frame, which must stay. */
    size_t rest = LEN - BUFFERED - FIRST;
    ck_assert_int_eq(write(sv[1], want + BUFFERED + FIRST, rest), (ssize_t)rest);
    ck_assert_int_eq(write(sv[1], "next", 4), 4);
    ck_assert_int_eq(kc_frame_rx_fill(&rx, in, sv[0]), 1);
    ck_assert_uint_eq(rx.got, LEN);
    ck_assert_int_eq(memcmp(rx.f->data, want, LEN), 0);
    kc_frame_release(rx.f);
    char next[8];
    ck_assert_int_eq(read(sv[0], next, sizeof(next)), 4);
    ck_assert_int_eq(memcmp(next, "next", 4), 0);

    /* Closed after 10 bytes of a 20-byte frame. */
    kc_frame_rx rx2;
    kc_frame_rx_start(&rx2, kc_frame_new(20));
    ck_assert_int_eq(write(sv[1], want, 10), 10);
    close(sv[1]);
    ck_assert_int_eq(kc_frame_rx_fill(&rx2, in, sv[0]), -1);
    ck_assert_int_eq(errno, 0);
    ck_assert_uint_eq(rx2.got, 10);
    kc_frame_release(rx2.f);
    close(sv[0]);
    evbuffer_free(in);
    free(want);
}
END_TEST

/* Write the next chunk of want (at most chunk bytes from *sent) into the
 * socket pair and fill rx from it; *before: the frame's len before. */
static int rx_step(kc_frame_rx *rx, struct evbuffer *in, const int sv[2], const uint8_t *want, size_t len,
                   size_t *sent, size_t chunk, size_t *before)
{
    size_t n = len - *sent < chunk ? len - *sent : chunk;
    if (n > 0) {
        ck_assert_int_eq(write(sv[1], want + *sent, n), (ssize_t)n);
        *sent += n;
    }
    *before = rx->f->len;
    int r = kc_frame_rx_fill(rx, in, sv[0]);
    ck_assert_int_ge(r, 0);
    return r;
}

/* A frame's size prefix is a claim: kc_frame_rx_begin reserves at most
 * KC_RX_RESERVE (or what has arrived) and the frame grows as its bytes come,
 * never to more than twice what arrived; the bytes still go straight from
 * the socket into the frame. */
START_TEST(test_frame_rx_grow)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
    struct evbuffer *in = evbuffer_new();

    /* 400 MiB announced, 5 bytes sent, then nothing: 1 MiB reserved. */
    kc_frame_rx rx;
    ck_assert_int_eq(kc_frame_rx_begin(&rx, (size_t)400 << 20, 0), 0);
    ck_assert_uint_eq(rx.want, (size_t)400 << 20);
    ck_assert_uint_eq(rx.f->len, KC_RX_RESERVE);
    ck_assert_int_eq(write(sv[1], "hello", 5), 5);
    ck_assert_int_eq(kc_frame_rx_fill(&rx, in, sv[0]), 0);
    ck_assert_uint_eq(rx.got, 5);
    ck_assert_uint_eq(rx.f->len, KC_RX_RESERVE);
    kc_frame_rx_drop(&rx);
    ck_assert_ptr_null(rx.f);

    /* A small frame is allocated at its size. */
    ck_assert_int_eq(kc_frame_rx_begin(&rx, 100, 0), 0);
    ck_assert_uint_eq(rx.f->len, 100);
    kc_frame_rx_drop(&rx);

    /* 3 MiB and a bit, the first 1000 bytes already in the input buffer, the
     * rest arriving 64 KiB at a time: it grows only as the bytes come. */
    enum { LEN = (3 << 20) + 123, BUFFERED = 1000, CHUNK = 64 << 10 };
    uint8_t *want = malloc(LEN);
    ck_assert_ptr_nonnull(want);
    for (size_t i = 0; i < LEN; i++)
        want[i] = (uint8_t)(i * 13 + (i >> 9));
    evbuffer_add(in, want, BUFFERED);
    ck_assert_int_eq(kc_frame_rx_begin(&rx, LEN, evbuffer_get_length(in)), 0);
    ck_assert_uint_eq(rx.f->len, KC_RX_RESERVE);
    size_t sent = BUFFERED;
    int r = 0, grew = 0;
    while (r == 0) {
        size_t before;
        r = rx_step(&rx, in, sv, want, LEN, &sent, CHUNK, &before);
        if (r == 0) {
            grew += rx.f->len != before;
            ck_assert_uint_eq(rx.got, sent);
            ck_assert_msg(rx.f->len <= KC_RX_RESERVE || rx.f->len <= 2 * rx.got,
                          "%zu bytes held for %zu received", rx.f->len, rx.got);
        }
    }
    ck_assert_int_eq(r, 1);
    ck_assert_int_ge(grew, 1);
    ck_assert_uint_eq(rx.got, LEN);
    kc_frame *f = kc_frame_rx_take(&rx);
    ck_assert_ptr_null(rx.f);
    ck_assert_uint_eq(f->len, LEN); /* whole, at its size */
    ck_assert_int_eq(f->refcnt, 1);
    ck_assert_int_eq(memcmp(f->data, want, LEN), 0);
    kc_frame_release(f);

    /* whole_after (broker responses): the same 3 MiB grows once, to its
     * size, as soon as that many bytes arrived, and arrives intact. */
    ck_assert_int_eq(kc_frame_rx_begin(&rx, LEN, 0), 0);
    rx.whole_after = KC_RX_RESERVE;
    sent = 0;
    r = 0;
    grew = 0;
    while (r == 0) {
        size_t before;
        r = rx_step(&rx, in, sv, want, LEN, &sent, CHUNK, &before);
        if (r == 0 && rx.f->len != before) {
            grew++;
            ck_assert_uint_eq(rx.f->len, LEN);
            ck_assert_uint_ge(rx.got, KC_RX_RESERVE);
        }
    }
    ck_assert_int_eq(r, 1);
    ck_assert_int_eq(grew, 1);
    f = kc_frame_rx_take(&rx);
    ck_assert_uint_eq(f->len, LEN);
    ck_assert_int_eq(memcmp(f->data, want, LEN), 0);
    kc_frame_release(f);

    /* More already buffered than the reserve: room for all of it at once. */
    evbuffer_add(in, want, (size_t)3 << 19);
    ck_assert_int_eq(kc_frame_rx_begin(&rx, LEN, evbuffer_get_length(in)), 0);
    ck_assert_uint_eq(rx.f->len, (size_t)3 << 19);
    ck_assert_int_eq(kc_frame_rx_fill(&rx, in, sv[0]), 0);
    ck_assert_uint_eq(rx.got, (size_t)3 << 19);
    ck_assert_uint_eq(evbuffer_get_length(in), 0);
    ck_assert_int_eq(memcmp(rx.f->data, want, (size_t)3 << 19), 0);
    kc_frame_rx_drop(&rx);

    close(sv[0]);
    close(sv[1]);
    evbuffer_free(in);
    free(want);
}
END_TEST

/* A string over 32767 bytes cannot be written in a non-flexible version (its
 * length is an int16; 40000 would read back as -25536): the writer fails,
 * sticky, and writes nothing more. In a flexible version it is fine. */
START_TEST(test_wr_long_string)
{
    enum { N = 40000 };
    char *big = malloc(N);
    ck_assert_ptr_nonnull(big);
    memset(big, 's', N);
    kc_str s = {big, N};

    struct evbuffer *eb = evbuffer_new();
    kc_wr w;
    kc_wr_init(&w, eb, NULL);
    ck_assert_ptr_null(kc_wr_why(&w));
    kc_wr_i8(&w, 7);
    kc_wr_string(&w, s, 0);
    ck_assert_int_ne(w.err, 0);
    ck_assert(kc_wr_unencodable(&w));
    ck_assert_ptr_nonnull(strstr(kc_wr_why(&w), "32767"));
    ck_assert_uint_eq(evbuffer_get_length(eb), 1); /* no length, no bytes */
    kc_wr_i32(&w, 1);
    kc_wr_string(&w, kc_str_c("x"), 0);
    ck_assert_uint_eq(evbuffer_get_length(eb), 1); /* sticky: nothing after it */
    evbuffer_free(eb);

    /* Flexible: uvarint 40001 (0xc1 0xb8 0x02), the bytes, and it reads back. */
    eb = evbuffer_new();
    kc_wr_init(&w, eb, NULL);
    kc_wr_string(&w, s, 1);
    ck_assert_int_eq(w.err, 0);
    ck_assert_uint_eq(evbuffer_get_length(eb), 3 + N);
    const uint8_t *b = evbuffer_pullup(eb, -1);
    ck_assert_uint_eq(b[0], 0xc1);
    ck_assert_uint_eq(b[1], 0xb8);
    ck_assert_uint_eq(b[2], 0x02);
    kc_rd rd;
    kc_rd_init(&rd, b, 3 + N);
    kc_str back = kc_rd_string(&rd, 1);
    ck_assert_ptr_null(rd.err);
    ck_assert_int_eq(back.len, N);
    ck_assert_int_eq(memcmp(back.p, big, N), 0);
    evbuffer_free(eb);

    /* The limit itself: 32767 is fine, 32768 is not; null is always fine. */
    eb = evbuffer_new();
    kc_wr_init(&w, eb, NULL);
    kc_wr_string(&w, (kc_str){big, 32767}, 0);
    kc_wr_string(&w, kc_str_c(NULL), 0);
    ck_assert_int_eq(w.err, 0);
    ck_assert_uint_eq(evbuffer_get_length(eb), 2 + 32767 + 2);
    kc_rd_init(&rd, evbuffer_pullup(eb, -1), evbuffer_get_length(eb));
    ck_assert_int_eq(kc_rd_string(&rd, 0).len, 32767);
    ck_assert_int_eq(kc_rd_nstring(&rd, 0).len, -1);
    ck_assert_ptr_null(rd.err);
    kc_wr_string(&w, (kc_str){big, 32768}, 0);
    ck_assert(kc_wr_unencodable(&w));
    evbuffer_free(eb);

    /* A request header's client id is always an int16 string. */
    eb = evbuffer_new();
    kc_wr_init(&w, eb, NULL);
    kc_req_hdr h = {.api_key = 3, .api_version = 12, .correlation_id = 1, .client_id = s};
    kc_req_hdr_encode(&w, &h);
    ck_assert(kc_wr_unencodable(&w));
    evbuffer_free(eb);

    /* An error set by hand (an encoder's own allocation) reads as memory. */
    kc_wr_init(&w, NULL, NULL);
    w.err = 1;
    ck_assert_str_eq(kc_wr_why(&w), "out of memory");
    ck_assert(!kc_wr_unencodable(&w));
    free(big);
}
END_TEST


/* One frame above the classes is kept (the largest), handed to the next
 * big frame and grown in place for a larger one; one over
 * KC_FRAME_BIG_KEEP is never kept. */
START_TEST(test_frame_big_keep)
{
    kc_frame_pool_trim();
    kc_frame *a = kc_frame_new((size_t)40 << 20);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->pool_class, -1);
    memset(a->data, 1, a->len);
    kc_frame *b = kc_frame_new((size_t)20 << 20);
    ck_assert_ptr_nonnull(b);
    kc_frame_release(b);
    if (kc_frame_big_bytes() == 0) { /* built with AddressSanitizer: nothing kept */
        kc_frame_release(a);
        return;
    }
    ck_assert_uint_eq(kc_frame_big_bytes(), sizeof(kc_frame) + ((size_t)20 << 20));
    kc_frame_release(a); /* larger: kept instead of b */
    ck_assert_uint_eq(kc_frame_big_bytes(), sizeof(kc_frame) + ((size_t)40 << 20));
    ck_assert_uint_eq(kc_frame_kept_bytes(), kc_frame_pool_bytes() + kc_frame_big_bytes());
    kc_frame *c = kc_frame_new((size_t)30 << 20);
    ck_assert_ptr_eq(c, a);
    ck_assert_uint_eq(c->len, (size_t)30 << 20);
    ck_assert_int_eq(c->refcnt, 1);
    ck_assert_uint_eq(kc_frame_big_bytes(), 0);
    kc_frame_release(c);
    kc_frame *d = kc_frame_new((size_t)50 << 20); /* grown in place */
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->len, (size_t)50 << 20);
    ck_assert_uint_eq(d->data[0], 1);
    memset(d->data, 2, d->len);
    kc_frame_release(d);
    kc_frame *e = kc_frame_new(KC_FRAME_BIG_KEEP); /* header and all: too big */
    ck_assert_ptr_nonnull(e);
    kc_frame_release(e);
    ck_assert_uint_eq(kc_frame_big_bytes(), sizeof(kc_frame) + ((size_t)50 << 20));
    kc_frame_pool_trim();
    ck_assert_uint_eq(kc_frame_big_bytes(), 0);
}
END_TEST

START_TEST(test_frame_pool)
{
    kc_frame_pool_trim();
    ck_assert_uint_eq(kc_frame_pool_bytes(), 0);
    /* Small frames are not pooled. */
    kc_frame *s = kc_frame_new(1000);
    ck_assert_int_eq(s->pool_class, -1);
    kc_frame_release(s);
    ck_assert_uint_eq(kc_frame_pool_bytes(), 0);
    /* A 5 MiB frame is kept once released and handed out again, for a
     * frame of its size class only. */
    kc_frame *f = kc_frame_new((size_t)5 << 20);
    ck_assert_ptr_nonnull(f);
    memset(f->data, 7, f->len);
    if (f->pool_class < 0) { /* built with AddressSanitizer: no pool */
        kc_frame_release(f);
        return;
    }
    ck_assert_uint_ge(f->cap, (size_t)5 << 20);
    kc_frame *keep = f;
    kc_frame_keep(f);
    kc_frame_release(f);
    ck_assert_uint_eq(kc_frame_pool_bytes(), 0); /* still referenced */
    kc_frame_release(f);
    ck_assert_uint_eq(kc_frame_pool_bytes(), (size_t)8 << 20);
    kc_frame *small = kc_frame_new((size_t)300 << 10);
    ck_assert_ptr_ne(small, keep);
    kc_frame *g = kc_frame_new((size_t)6 << 20);
    ck_assert_ptr_eq(g, keep);
    ck_assert_uint_eq(g->len, (size_t)6 << 20);
    ck_assert_int_eq(g->refcnt, 1);
    ck_assert_uint_eq(kc_frame_pool_bytes(), 0);
    kc_frame_release(small);
    /* The pool holds at most KC_FRAME_POOL_BYTES: the rest is freed. */
    kc_frame *many[8];
    for (int i = 0; i < 8; i++)
        ck_assert_ptr_nonnull(many[i] = kc_frame_new((size_t)15 << 20));
    for (int i = 0; i < 8; i++)
        kc_frame_release(many[i]);
    kc_frame_release(g);
    ck_assert_uint_le(kc_frame_pool_bytes(), KC_FRAME_POOL_BYTES);
    kc_frame_pool_trim();
    ck_assert_uint_eq(kc_frame_pool_bytes(), 0);
}
END_TEST
/* kc_frame_pool_decay: per period, the pooled frames that stayed unused the
 * whole period are freed, those taken in it are kept; the big frame goes
 * once a period passes without it being taken. */
START_TEST(test_frame_pool_decay)
{
    kc_frame_pool_trim();
    kc_frame *f[3];
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(f[i] = kc_frame_new((size_t)200 << 10)); /* the 256 KiB class */
    if (f[0]->pool_class < 0) { /* built with AddressSanitizer: no pool */
        for (int i = 0; i < 3; i++)
            kc_frame_release(f[i]);
        return;
    }
    for (int i = 0; i < 3; i++)
        kc_frame_release(f[i]);
    const size_t c = (size_t)256 << 10;
    ck_assert_uint_eq(kc_frame_pool_bytes(), 3 * c);
    ck_assert_uint_eq(kc_frame_pool_decay(1000, 500), 0); /* the first call starts the clock */
    ck_assert_uint_eq(kc_frame_pool_decay(1400, 500), 0); /* inside the period */
    ck_assert_uint_eq(kc_frame_pool_decay(1500, 0), 0);   /* period 0: never, even past one */
    ck_assert_uint_eq(kc_frame_pool_bytes(), 3 * c);
    /* The pool never dropped below 3 in this period, but the period began
     * with the frames already pooled: the first boundary frees them all. */
    ck_assert_uint_eq(kc_frame_pool_decay(1500, 500), 3 * c);
    ck_assert_uint_eq(kc_frame_pool_bytes(), 0);
    /* Two pooled; one of them taken and given back in the next period: the
     * other one goes at its end, the reused one stays. */
    kc_frame *a = kc_frame_new((size_t)200 << 10), *b = kc_frame_new((size_t)200 << 10);
    kc_frame_release(a);
    kc_frame_release(b);
    ck_assert_uint_eq(kc_frame_pool_decay(2000, 500), 0); /* its low mark was 0: they came after */
    kc_frame *g = kc_frame_new((size_t)200 << 10);
    kc_frame_release(g);
    ck_assert_uint_eq(kc_frame_pool_decay(2500, 500), c);
    ck_assert_uint_eq(kc_frame_pool_bytes(), c);
    ck_assert_uint_eq(kc_frame_pool_decay(3000, 500), c); /* then unused a whole period */
    ck_assert_uint_eq(kc_frame_pool_bytes(), 0);
    /* The big frame: kept while taken each period, freed after one without. */
    kc_frame *big = kc_frame_new((size_t)20 << 20);
    kc_frame_release(big);
    size_t bb = kc_frame_big_bytes();
    ck_assert_uint_gt(bb, 0);
    ck_assert_uint_eq(kc_frame_pool_decay(3500, 500), 0); /* allocated in this period */
    big = kc_frame_new((size_t)20 << 20);
    kc_frame_release(big);
    ck_assert_uint_eq(kc_frame_pool_decay(4000, 500), 0); /* taken in this one */
    ck_assert_uint_eq(kc_frame_pool_decay(4500, 500), bb);
    ck_assert_uint_eq(kc_frame_big_bytes(), 0);
    kc_frame_pool_trim();
}
END_TEST

Suite *kc_buf_suite(void)
{
    Suite *s = suite_create("kc_buf");
    TCase *tc = tcase_create("primitives");
    tcase_add_test(tc, test_uvarint_roundtrip);
    tcase_add_test(tc, test_varint_zigzag);
    tcase_add_test(tc, test_varint_too_long);
    tcase_add_test(tc, test_strings);
    tcase_add_test(tc, test_array_bounds);
    tcase_add_test(tc, test_tags_passthrough);
    tcase_add_test(tc, test_sticky_error);
    tcase_add_test(tc, test_bytes_by_reference);
    tcase_add_test(tc, test_crc32c_vectors);
    tcase_add_test(tc, test_arena);
    tcase_add_test(tc, test_frame_rx);
    tcase_add_test(tc, test_frame_rx_grow);
    tcase_add_test(tc, test_frame_pool);
    tcase_add_test(tc, test_frame_big_keep);
    tcase_add_test(tc, test_frame_pool_decay);
    tcase_add_test(tc, test_wr_long_string);
    suite_add_tcase(s, tc);
    return s;
}
