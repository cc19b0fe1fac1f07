/* kz_addr: "host:port" strings, shared by the config and the backend client. */
#ifndef KZ_ADDR_H
#define KZ_ADDR_H

#include <stddef.h>

/* Split "host:port" (an IPv6 host in brackets, "[::1]:9092") into host and
 * port (0-65535). Returns 0, or -1 when s is not of that form or the host
 * does not fit in hostsz. */
int kz_split_hostport(const char *s, char *host, size_t hostsz, int *port);

#endif
