/*
 * S3 backend, XML: the few elements kzproxy reads from S3's answers (an
 * error's Code and Message, a ListObjectsV2 page), found by tag; every
 * length is bounded before a copy.
 */
#include "config.h"

#include "objwal/ow_s3_int.h"

#include "common/kz_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
void ow_s3_error_text(struct evbuffer *body, char *out, size_t n)
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


void ow_s3_list_free(ow_s3_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((char *)l->e[i].key);
    free(l->e);
    free(l->next);
}

/* Parse a ListObjectsV2 result. Returns OW_OK or OW_ECORRUPT/OW_ENOMEM. */
int ow_s3_parse_list(struct evbuffer *body, unsigned max_keys, ow_s3_list *l)
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
