/* Unit tests for node/proxy.c: PROXY protocol v1 and v2 headers, complete,
 * split at every byte, truncated, malformed and over-long. */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "node/proxy.h"
#include "store/error.h"

static const uint8_t SIG[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55,
                                 0x49, 0x54, 0x0a };

/* A v2 header: signature, ver/cmd, fam/proto, then body (n bytes). */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t n)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(n >> 8);
    out[15] = (uint8_t)n;
    if (n > 0)
        memcpy(out + 16, body, n);
    return 16 + n;
}

/* Every proper prefix asks for more; the whole gives want (and the same
 * address each time). */
static void split_everywhere(const void *buf, size_t len, int want)
{
    roost_proxy_addr_t a, b;
    size_t i;

    ck_assert_int_eq(roost_proxy_parse(buf, len, &a), want);
    for (i = 0; i < len; i++)
        ck_assert_msg(roost_proxy_parse(buf, i, &b) == 0, "prefix %zu of %zu", i, len);
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(roost_proxy_parse(buf, len, &b), want);
    if (want > 0)
        ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);
}

START_TEST(v1_tcp4)
{
    const char *h = "PROXY TCP4 203.0.113.7 192.0.2.1 56324 5222\r\n";
    char buf[256];
    roost_proxy_addr_t a;
    uint8_t ip[4];

    snprintf(buf, sizeof(buf), "%s<stream:stream>", h);
    ck_assert_int_eq(roost_proxy_parse(buf, strlen(buf), &a), (int)strlen(h));
    ck_assert_int_eq(a.version, 1);
    ck_assert_int_eq(a.proxied, 1);
    ck_assert_int_eq(a.family, AF_INET);
    inet_pton(AF_INET, "203.0.113.7", ip);
    ck_assert_int_eq(memcmp(a.src, ip, 4), 0);
    inet_pton(AF_INET, "192.0.2.1", ip);
    ck_assert_int_eq(memcmp(a.dst, ip, 4), 0);
    ck_assert_uint_eq(a.src_port, 56324);
    ck_assert_uint_eq(a.dst_port, 5222);
    split_everywhere(h, strlen(h), (int)strlen(h));
}
END_TEST

START_TEST(v1_tcp6)
{
    const char *h = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
    roost_proxy_addr_t a;
    uint8_t ip[16];

    ck_assert_int_eq(roost_proxy_parse(h, strlen(h), &a), (int)strlen(h));
    ck_assert_int_eq(a.family, AF_INET6);
    inet_pton(AF_INET6, "2001:db8::7", ip);
    ck_assert_int_eq(memcmp(a.src, ip, 16), 0);
    ck_assert_uint_eq(a.src_port, 65535);
    ck_assert_uint_eq(a.dst_port, 0);
    split_everywhere(h, strlen(h), (int)strlen(h));
}
END_TEST

START_TEST(v1_unknown)
{
    const char *h1 = "PROXY UNKNOWN\r\n";
    const char *h2 = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
    roost_proxy_addr_t a;

    ck_assert_int_eq(roost_proxy_parse(h1, strlen(h1), &a), (int)strlen(h1));
    ck_assert_int_eq(a.proxied, 0);
    ck_assert_int_eq(roost_proxy_parse(h2, strlen(h2), &a), (int)strlen(h2));
    ck_assert_int_eq(a.proxied, 0);
    split_everywhere(h2, strlen(h2), (int)strlen(h2));
}
END_TEST

START_TEST(v1_longest_and_too_long)
{
    /* The longest legal line (107 bytes with CRLF) and one byte more. */
    char line[256], more[256];
    roost_proxy_addr_t a;
    const char *full = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";

    ck_assert_int_eq(roost_proxy_parse(full, strlen(full), &a), (int)strlen(full));
    snprintf(line, sizeof(line), "PROXY UNKNOWN %091d\r\n", 0);
    ck_assert_uint_eq(strlen(line), ROOST_PROXY_V1_MAX);
    ck_assert_int_eq(roost_proxy_parse(line, strlen(line), &a), ROOST_PROXY_V1_MAX);
    snprintf(more, sizeof(more), "PROXY UNKNOWN %092d\r\n", 0);
    ck_assert_int_eq(roost_proxy_parse(more, strlen(more), &a), ROOST_ELIMIT);
    /* No CRLF ever: refused once 106 bytes are in, not buffered on. */
    memset(more, 'A', sizeof(more));
    memcpy(more, "PROXY UNKNOWN ", 14);
    ck_assert_int_eq(roost_proxy_parse(more, 105, &a), 0);
    ck_assert_int_eq(roost_proxy_parse(more, 106, &a), ROOST_ELIMIT);
    ck_assert_int_eq(roost_proxy_parse(more, sizeof(more), &a), ROOST_ELIMIT);
}
END_TEST

START_TEST(v1_malformed)
{
    static const char *const bad[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",           /* LF without CR */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",          /* CR without LF */
        "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",        /* double space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",        /* trailing space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",           /* missing port */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",       /* extra field */
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",       /* bad address */
        "PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n",     /* v6 under TCP4 */
        "PROXY TCP6 1.2.3.4 2001:db8::1 1 2\r\n",     /* v4 under TCP6 */
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",     /* port range */
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",        /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",        /* sign */
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",         /* protocol */
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",         /* case */
        "PROXY \r\n",
        "PROXY\r\n",
        "PROXX TCP4",
        "PROXY TCP4 1.2.3.4\x01",                      /* control byte */
        "PROXY TCP4 1.2.3.4 \xc3\xa9",                 /* non-ASCII */
        "GET / HTTP/1.1\r\n",
        "<?xml version='1.0'?>",
    };
    roost_proxy_addr_t a;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(roost_proxy_parse(bad[i], strlen(bad[i]), &a) == ROOST_EPROTO, "%s",
                      bad[i]);
}
END_TEST

START_TEST(v2_proxy_ipv4)
{
    uint8_t body[12] = { 203, 0, 113, 7, 192, 0, 2, 1, 0xdc, 0x04, 0x14, 0x66 };
    uint8_t buf[64];
    size_t n = v2(buf, 0x21, 0x11, body, sizeof(body));
    roost_proxy_addr_t a;

    ck_assert_int_eq(roost_proxy_parse(buf, n, &a), (int)n);
    ck_assert_int_eq(a.version, 2);
    ck_assert_int_eq(a.proxied, 1);
    ck_assert_int_eq(a.family, AF_INET);
    ck_assert_int_eq(memcmp(a.src, body, 4), 0);
    ck_assert_int_eq(memcmp(a.dst, body + 4, 4), 0);
    ck_assert_uint_eq(a.src_port, 0xdc04);
    ck_assert_uint_eq(a.dst_port, 5222);
    split_everywhere(buf, n, (int)n);
}
END_TEST

START_TEST(v2_proxy_ipv6)
{
    uint8_t body[36] = { 0 };
    uint8_t buf[64];
    size_t n;
    roost_proxy_addr_t a;

    inet_pton(AF_INET6, "2001:db8::7", body);
    inet_pton(AF_INET6, "2001:db8::1", body + 16);
    body[32] = 0x12;
    body[33] = 0x34;
    body[35] = 0x01;
    n = v2(buf, 0x21, 0x21, body, sizeof(body));
    ck_assert_int_eq(roost_proxy_parse(buf, n, &a), (int)n);
    ck_assert_int_eq(a.family, AF_INET6);
    ck_assert_int_eq(memcmp(a.src, body, 16), 0);
    ck_assert_int_eq(memcmp(a.dst, body + 16, 16), 0);
    ck_assert_uint_eq(a.src_port, 0x1234);
    ck_assert_uint_eq(a.dst_port, 1);
    split_everywhere(buf, n, (int)n);
}
END_TEST

START_TEST(v2_local)
{
    uint8_t buf[64], body[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2 };
    roost_proxy_addr_t a;
    size_t n = v2(buf, 0x20, 0x00, NULL, 0);

    ck_assert_int_eq(roost_proxy_parse(buf, n, &a), 16);
    ck_assert_int_eq(a.proxied, 0);
    /* LOCAL with an address block: the block is skipped, not used. */
    n = v2(buf, 0x20, 0x11, body, sizeof(body));
    ck_assert_int_eq(roost_proxy_parse(buf, n, &a), (int)n);
    ck_assert_int_eq(a.proxied, 0);
    split_everywhere(buf, n, (int)n);
    /* PROXY over AF_UNSPEC or AF_UNIX: nothing to take either. */
    n = v2(buf, 0x21, 0x00, NULL, 0);
    ck_assert_int_eq(roost_proxy_parse(buf, n, &a), 16);
    ck_assert_int_eq(a.proxied, 0);
}
END_TEST

START_TEST(v2_tlvs_skipped)
{
    /* IPv4 block, then an ALPN TLV, a NOOP and an SSL TLV with a
     * sub-TLV: the header length covers them all. */
    uint8_t body[64] = { 10, 1, 2, 3, 10, 0, 0, 1, 0x30, 0x39, 0x14, 0x66,
                         0x01, 0x00, 0x02, 'h', '2',
                         0x04, 0x00, 0x00,
                         0x20, 0x00, 0x0a, 0x01, 0, 0, 0, 0, 0x21, 0x00, 0x02, '1', '3' };
    size_t blen = 33;
    uint8_t buf[128];
    size_t n = v2(buf, 0x21, 0x11, body, blen);
    roost_proxy_addr_t a;

    memcpy(buf + n, "\x16\x03\x01", 3);   /* a ClientHello follows */
    ck_assert_int_eq(roost_proxy_parse(buf, n + 3, &a), (int)n);
    ck_assert_int_eq(a.proxied, 1);
    ck_assert_uint_eq(a.src_port, 12345);
    ck_assert_int_eq(a.src[0], 10);
    ck_assert_int_eq(a.src[3], 3);
    split_everywhere(buf, n, (int)n);
}
END_TEST

START_TEST(v2_malformed)
{
    uint8_t buf[ROOST_PROXY_MAX + 64], body[36] = { 0 };
    roost_proxy_addr_t a;
    size_t n;

    /* Bad signature, at its first wrong byte. */
    n = v2(buf, 0x21, 0x11, body, 12);
    buf[5] = 'X';
    ck_assert_int_eq(roost_proxy_parse(buf, 6, &a), ROOST_EPROTO);
    ck_assert_int_eq(roost_proxy_parse(buf, n, &a), ROOST_EPROTO);
    /* Version 1 in the binary format, unknown commands. */
    n = v2(buf, 0x11, 0x11, body, 12);
    ck_assert_int_eq(roost_proxy_parse(buf, 13, &a), ROOST_EPROTO);
    n = v2(buf, 0x22, 0x11, body, 12);
    ck_assert_int_eq(roost_proxy_parse(buf, n, &a), ROOST_EPROTO);
    /* Unknown family or protocol; datagrams. */
    n = v2(buf, 0x21, 0x41, body, 12);
    ck_assert_int_eq(roost_proxy_parse(buf, 14, &a), ROOST_EPROTO);
    n = v2(buf, 0x21, 0x13, body, 12);
    ck_assert_int_eq(roost_proxy_parse(buf, n, &a), ROOST_EPROTO);
    n = v2(buf, 0x21, 0x12, body, 12);
    ck_assert_int_eq(roost_proxy_parse(buf, n, &a), ROOST_EPROTO);
    /* A length too short for the addresses: refused before waiting. */
    n = v2(buf, 0x21, 0x11, body, 11);
    ck_assert_int_eq(roost_proxy_parse(buf, 16, &a), ROOST_EPROTO);
    n = v2(buf, 0x21, 0x21, body, 35);
    ck_assert_int_eq(roost_proxy_parse(buf, 16, &a), ROOST_EPROTO);
    n = v2(buf, 0x21, 0x31, body, 20);
    ck_assert_int_eq(roost_proxy_parse(buf, 16, &a), ROOST_EPROTO);
    /* A length past the bound: refused from the fixed part alone. */
    memset(buf, 0, sizeof(buf));
    v2(buf, 0x21, 0x11, NULL, 0);
    buf[14] = (uint8_t)((ROOST_PROXY_MAX - 16 + 1) >> 8);
    buf[15] = (uint8_t)(ROOST_PROXY_MAX - 16 + 1);
    ck_assert_int_eq(roost_proxy_parse(buf, 16, &a), ROOST_ELIMIT);
    buf[14] = 0xff;
    buf[15] = 0xff;
    ck_assert_int_eq(roost_proxy_parse(buf, 16, &a), ROOST_ELIMIT);
    /* Exactly the bound is fine. */
    buf[14] = (uint8_t)((ROOST_PROXY_MAX - 16) >> 8);
    buf[15] = (uint8_t)(ROOST_PROXY_MAX - 16);
    ck_assert_int_eq(roost_proxy_parse(buf, ROOST_PROXY_MAX - 1, &a), 0);
    ck_assert_int_eq(roost_proxy_parse(buf, ROOST_PROXY_MAX, &a), ROOST_PROXY_MAX);
}
END_TEST

START_TEST(truncated)
{
    uint8_t buf[64], body[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2 };
    roost_proxy_addr_t a;
    size_t n = v2(buf, 0x21, 0x11, body, sizeof(body));

    /* A connection that stops mid-header never yields an address. */
    ck_assert_int_eq(roost_proxy_parse(buf, n - 1, &a), 0);
    ck_assert_int_eq(roost_proxy_parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", 31, &a), 0);
    ck_assert_int_eq(roost_proxy_parse("", 0, &a), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, v1_tcp4);
    tcase_add_test(tc, v1_tcp6);
    tcase_add_test(tc, v1_unknown);
    tcase_add_test(tc, v1_longest_and_too_long);
    tcase_add_test(tc, v1_malformed);
    tcase_add_test(tc, v2_proxy_ipv4);
    tcase_add_test(tc, v2_proxy_ipv6);
    tcase_add_test(tc, v2_local);
    tcase_add_test(tc, v2_tlvs_skipped);
    tcase_add_test(tc, v2_malformed);
    tcase_add_test(tc, truncated);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
