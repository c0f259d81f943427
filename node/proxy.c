/* PROXY protocol v1/v2 header parsing (HAProxy's proxy-protocol.txt). The
 * parser is stateless over the bytes received so far, so a header split at
 * any byte boundary gives the same answer as one read in a single piece. */
#include "node/proxy.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "store/error.h"

static const uint8_t v2_sig[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};
#define V2_HDR 16
#define V1_PREFIX "PROXY "

/* ---- v1: "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" ----------------------- */

/* Next space-separated token of line[*pos..end); exactly one space between
 * tokens. 0 or ROOST_EPROTO. */
static int token(const char *line, size_t end, size_t *pos, const char **tok, size_t *n)
{
    size_t i = *pos;

    if (i >= end || line[i] == ' ')
        return ROOST_EPROTO;
    *tok = line + i;
    while (i < end && line[i] != ' ')
        i++;
    *n = (size_t)(line + i - *tok);
    /* Skip the separator; a trailing one is an error for the caller. */
    *pos = i < end ? i + 1 : i;
    return 0;
}

/* Decimal 0..65535 without sign, blanks or leading zeros. */
static int port(const char *p, size_t n, uint16_t *out)
{
    unsigned v = 0;
    size_t i;

    if (n == 0 || n > 5 || (n > 1 && p[0] == '0'))
        return ROOST_EPROTO;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return ROOST_EPROTO;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > 65535)
        return ROOST_EPROTO;
    *out = (uint16_t)v;
    return 0;
}

static int addr(int family, const char *p, size_t n, uint8_t *out)
{
    char tmp[INET6_ADDRSTRLEN];

    if (n == 0 || n >= sizeof(tmp))
        return ROOST_EPROTO;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    return inet_pton(family, tmp, out) == 1 ? 0 : ROOST_EPROTO;
}

static int parse_v1(const char *b, size_t len, roost_proxy_addr_t *out)
{
    size_t plen = sizeof(V1_PREFIX) - 1, i, end, pos;
    const char *tok;
    size_t n;
    int family;

    if (memcmp(b, V1_PREFIX, len < plen ? len : plen) != 0)
        return ROOST_EPROTO;
    /* The line ends at the first CR, which must be followed by LF. Only
     * printable ASCII comes before it. */
    for (i = 0; i < len && i < ROOST_PROXY_V1_MAX - 1; i++) {
        unsigned char c = (unsigned char)b[i];
        if (c == '\r')
            break;
        if (c < 0x20 || c > 0x7e)
            return ROOST_EPROTO;
    }
    if (i == ROOST_PROXY_V1_MAX - 1)
        return ROOST_ELIMIT;     /* no room left for the CRLF */
    if (i == len || i + 1 == len)
        return 0;
    if (b[i + 1] != '\n')
        return ROOST_EPROTO;
    if (i < plen)
        return ROOST_EPROTO;
    end = i;
    pos = plen;
    memset(out, 0, sizeof(*out));
    out->version = 1;
    if (token(b, end, &pos, &tok, &n) < 0)
        return ROOST_EPROTO;
    if (n == 7 && memcmp(tok, "UNKNOWN", 7) == 0) {
        /* Whatever follows is to be ignored: the proxy could not tell. */
        out->proxied = 0;
        return (int)(end + 2);
    }
    if (n == 4 && memcmp(tok, "TCP4", 4) == 0)
        family = AF_INET;
    else if (n == 4 && memcmp(tok, "TCP6", 4) == 0)
        family = AF_INET6;
    else
        return ROOST_EPROTO;
    if (token(b, end, &pos, &tok, &n) < 0 || addr(family, tok, n, out->src) < 0)
        return ROOST_EPROTO;
    if (token(b, end, &pos, &tok, &n) < 0 || addr(family, tok, n, out->dst) < 0)
        return ROOST_EPROTO;
    if (token(b, end, &pos, &tok, &n) < 0 || port(tok, n, &out->src_port) < 0)
        return ROOST_EPROTO;
    if (token(b, end, &pos, &tok, &n) < 0 || port(tok, n, &out->dst_port) < 0)
        return ROOST_EPROTO;
    /* Nothing, not even a space, after the destination port. */
    if (pos != end || tok + n != b + end)
        return ROOST_EPROTO;
    out->proxied = 1;
    out->family = family;
    return (int)(end + 2);
}

/* ---- v2: 12-byte signature, ver/cmd, fam/proto, length, addresses, TLVs -- */

static int parse_v2(const uint8_t *b, size_t len, roost_proxy_addr_t *out)
{
    size_t total;
    unsigned ver, cmd, fam, proto, alen;

    if (memcmp(b, v2_sig, len < sizeof(v2_sig) ? len : sizeof(v2_sig)) != 0)
        return ROOST_EPROTO;
    if (len < 13)
        return 0;
    ver = b[12] >> 4;
    cmd = b[12] & 0x0f;
    if (ver != 2 || cmd > 1)
        return ROOST_EPROTO;
    if (len < 14)
        return 0;
    fam = b[13] >> 4;
    proto = b[13] & 0x0f;
    if (fam > 3 || proto > 2)
        return ROOST_EPROTO;
    if (len < V2_HDR)
        return 0;
    alen = ((unsigned)b[14] << 8) | b[15];
    total = V2_HDR + alen;
    if (total > ROOST_PROXY_MAX)
        return ROOST_ELIMIT;
    /* The address block must fit in the announced length; checked before
     * waiting for the rest so a lying length is refused at once. */
    if (cmd == 1 && proto == 1 &&
        ((fam == 1 && alen < 12) || (fam == 2 && alen < 36) || (fam == 3 && alen < 216)))
        return ROOST_EPROTO;
    /* A datagram connection cannot be what reached a stream listener. */
    if (cmd == 1 && proto == 2)
        return ROOST_EPROTO;
    if (len < total)
        return 0;
    memset(out, 0, sizeof(*out));
    out->version = 2;
    /* LOCAL: the proxy speaks for itself (a health check); PROXY over an
     * unspecified or UNIX family: no IP address to take. Either way the
     * socket's own endpoints stand, and the block is skipped. */
    if (cmd == 0 || proto == 0 || fam == 0 || fam == 3)
        return (int)total;
    if (fam == 1) {
        memcpy(out->src, b + V2_HDR, 4);
        memcpy(out->dst, b + V2_HDR + 4, 4);
        out->src_port = (uint16_t)((b[V2_HDR + 8] << 8) | b[V2_HDR + 9]);
        out->dst_port = (uint16_t)((b[V2_HDR + 10] << 8) | b[V2_HDR + 11]);
        out->family = AF_INET;
    } else {
        memcpy(out->src, b + V2_HDR, 16);
        memcpy(out->dst, b + V2_HDR + 16, 16);
        out->src_port = (uint16_t)((b[V2_HDR + 32] << 8) | b[V2_HDR + 33]);
        out->dst_port = (uint16_t)((b[V2_HDR + 34] << 8) | b[V2_HDR + 35]);
        out->family = AF_INET6;
    }
    /* TLVs (ALPN, authority, SSL details, ...) follow up to total; nothing
     * here needs them. */
    out->proxied = 1;
    return (int)total;
}

int roost_proxy_parse(const void *buf, size_t len, roost_proxy_addr_t *out)
{
    const uint8_t *b = buf;

    if (len == 0)
        return 0;
    if (b[0] == 'P')
        return parse_v1(buf, len, out);
    if (b[0] == v2_sig[0])
        return parse_v2(b, len, out);
    return ROOST_EPROTO;
}
