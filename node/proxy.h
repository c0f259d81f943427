/* PROXY protocol header parser, versions 1 (text) and 2 (binary), as a load
 * balancer such as HAProxy sends it before the client's first byte. Pure:
 * fed the bytes received so far, it asks for more, reports where the header
 * ends and which client address it carries, or refuses the input. */
#ifndef ROOST_PROXY_H
#define ROOST_PROXY_H

#include <stddef.h>
#include <stdint.h>

/* A v1 line is at most 107 bytes with its CRLF (the specification's own
 * bound); a v2 header is 16 bytes plus its length field, which we accept
 * up to ROOST_PROXY_MAX in all (addresses plus TLVs, which are skipped). */
#define ROOST_PROXY_V1_MAX 107
#define ROOST_PROXY_MAX 4096

typedef struct {
    int version;          /* 1 or 2 */
    /* 1: src/dst below are the client's connection as the proxy saw it.
     * 0: v2 LOCAL (the proxy's own health check), v1 UNKNOWN, or an
     * address family without IP addresses: use the socket's endpoints. */
    int proxied;
    int family;           /* AF_INET or AF_INET6 when proxied */
    uint8_t src[16];      /* network order; IPv4 uses the first 4 bytes */
    uint8_t dst[16];
    uint16_t src_port;    /* host order */
    uint16_t dst_port;
} roost_proxy_addr_t;

/* Parses the start of a connection, buf[0..len) being everything received
 * so far. Returns 0 when the bytes are a proper prefix of a header (feed
 * more: a complete header needs fewer than ROOST_PROXY_MAX bytes, so the
 * caller's buffer stays bounded), the header length (> 0) once one is
 * complete, with *out filled (the bytes after it belong to the client), or
 * ROOST_EPROTO (not a PROXY header, or a malformed one) or ROOST_ELIMIT (a
 * v1 line without its CRLF within 107 bytes, a v2 length past
 * ROOST_PROXY_MAX). Garbage is refused as early as its first wrong byte. */
int roost_proxy_parse(const void *buf, size_t len, roost_proxy_addr_t *out);

#endif
