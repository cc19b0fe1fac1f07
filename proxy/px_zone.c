/*
 * The client's zone: a key in client.id (kz_az=, and the peers' automq_az=,
 * warpstream_az=, diskless_az=, zone=), else the server-side CIDR map, else
 * the zone of the proxy it connected to.
 */
#include "config.h"

#include "proxy/px_proxy.h"

#include "common/kz_log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

static const char *const px_zone_keys[] = {"kz_az", "automq_az", "warpstream_az", "diskless_az",
                                           "zone", NULL};

static int px_zone_sep(char c)
{
    return c == ',' || c == '&' || c == '|' || c == ';';
}

int px_zone_from_client_id(kc_str cid, char *out, size_t outsz)
{
    if (cid.len <= 0 || outsz == 0)
        return -1;
    const char *p = cid.p, *end = cid.p + cid.len;
    while (p < end) {
        const char *q = p;
        while (q < end && !px_zone_sep(*q))
            q++;
        /* one item [p, q): key=value */
        const char *eq = memchr(p, '=', (size_t)(q - p));
        if (eq != NULL) {
            size_t klen = (size_t)(eq - p);
            while (klen > 0 && (p[0] == ' ')) {
                p++;
                klen--;
            }
            for (const char *const *k = px_zone_keys; *k; k++) {
                if (strlen(*k) == klen && memcmp(p, *k, klen) == 0) {
                    size_t vlen = (size_t)(q - eq - 1);
                    while (vlen > 0 && eq[vlen] == ' ')
                        vlen--;
                    if (vlen == 0 || vlen >= outsz)
                        return -1;
                    memcpy(out, eq + 1, vlen);
                    out[vlen] = '\0';
                    return 0;
                }
            }
        }
        p = q + 1;
    }
    return -1;
}

const char *px_zone_from_addr(const px_config *cfg, const struct sockaddr *sa)
{
    for (int i = 0; i < cfg->nclient_zones; i++) {
        const px_cidr_zone *cz = &cfg->client_zones[i];
        const uint8_t *a;
        int bits;
        if (sa->sa_family == AF_INET && cz->family == AF_INET) {
            a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
            bits = 32;
        } else if (sa->sa_family == AF_INET6 && cz->family == AF_INET6) {
            a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
            bits = 128;
        } else {
            continue;
        }
        int pl = cz->prefix < bits ? cz->prefix : bits;
        int full = pl / 8, rem = pl % 8;
        if (memcmp(a, cz->addr, (size_t)full) != 0)
            continue;
        if (rem && ((a[full] ^ cz->addr[full]) & (uint8_t)(0xff << (8 - rem))) != 0)
            continue;
        return cz->zone;
    }
    return NULL;
}
