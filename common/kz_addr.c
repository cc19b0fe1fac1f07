#include "config.h"

#include "common/kz_addr.h"

#include <stdlib.h>
#include <string.h>

int kz_split_hostport(const char *s, char *host, size_t hostsz, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[') {
        if (hl < 2 || h[hl - 1] != ']')
            return -1;
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl) != NULL) {
        return -1; /* bare IPv6 needs brackets */
    }
    if (hl == 0 || hl >= hostsz)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}
