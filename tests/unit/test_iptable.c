/* Unit tests for node/iptable.c: connections per address, the token bucket,
 * the tarpit's doubling delays and forgetting, IPv6 /64 grouping, and the
 * bound on entries of addresses without connections. */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "node/iptable.h"
#include "store/error.h"

static roost_ipkey_t v4(const char *s)
{
    uint8_t a[4];
    roost_ipkey_t k;
    ck_assert_int_eq(inet_pton(AF_INET, s, a), 1);
    roost_ipkey_make(&k, AF_INET, a);
    return k;
}

static roost_ipkey_t v6(const char *s)
{
    uint8_t a[16];
    roost_ipkey_t k;
    ck_assert_int_eq(inet_pton(AF_INET6, s, a), 1);
    roost_ipkey_make(&k, AF_INET6, a);
    return k;
}

static roost_ipkey_t nth(unsigned i)
{
    char s[32];
    snprintf(s, sizeof(s), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    return v4(s);
}

static const roost_iptable_opts_t base = {
    .max_conns = 0, .rate = 0, .tarpit_after = 2, .tarpit_delay_ms = 100,
    .tarpit_max_ms = 1000, .tarpit_forget_s = 10, .max_idle = 1000,
};

START_TEST(conns_per_address)
{
    roost_iptable_opts_t o = base;
    o.max_conns = 2;
    roost_iptable_t *t = roost_iptable_new(&o);
    roost_ipkey_t a = v4("192.0.2.1"), b = v4("192.0.2.2");

    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 0), ROOST_IPTABLE_OK);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 0), ROOST_IPTABLE_OK);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 0), ROOST_IPTABLE_TOO_MANY);
    ck_assert_uint_eq(roost_iptable_conns(t, &a), 2);
    /* Another address is not affected. */
    ck_assert_int_eq(roost_iptable_conn_open(t, &b, 0), ROOST_IPTABLE_OK);
    roost_iptable_conn_closed(t, &a, 1);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 2), ROOST_IPTABLE_OK);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 2), ROOST_IPTABLE_TOO_MANY);
    /* A refused connection is not counted: closing the two lets two in. */
    roost_iptable_conn_closed(t, &a, 3);
    roost_iptable_conn_closed(t, &a, 3);
    ck_assert_uint_eq(roost_iptable_conns(t, &a), 0);
    /* An extra close (a bug elsewhere) does not go below zero. */
    roost_iptable_conn_closed(t, &a, 3);
    ck_assert_uint_eq(roost_iptable_conns(t, &a), 0);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 4), ROOST_IPTABLE_OK);
    roost_iptable_free(t);
}
END_TEST

START_TEST(token_bucket)
{
    roost_iptable_opts_t o = base;
    o.rate = 3;
    roost_iptable_t *t = roost_iptable_new(&o);
    roost_ipkey_t a = v4("192.0.2.1");
    int i;

    /* A burst of 3, then nothing until a token has refilled (333.3 ms). */
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(roost_iptable_conn_open(t, &a, 1000), ROOST_IPTABLE_OK);
        roost_iptable_conn_closed(t, &a, 1000);
    }
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 1000), ROOST_IPTABLE_TOO_FAST);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 1333), ROOST_IPTABLE_TOO_FAST);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 1334), ROOST_IPTABLE_OK);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 1334), ROOST_IPTABLE_TOO_FAST);
    /* Refills cap at the burst, however long the pause. */
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(roost_iptable_conn_open(t, &a, 100000), ROOST_IPTABLE_OK);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 100000), ROOST_IPTABLE_TOO_FAST);
    /* The rate is checked before the connection cap. */
    o.max_conns = 1;
    roost_iptable_set_opts(t, &o);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 100000), ROOST_IPTABLE_TOO_FAST);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 200000), ROOST_IPTABLE_TOO_MANY);
    roost_iptable_free(t);
}
END_TEST

START_TEST(tarpit_doubles_and_forgets)
{
    roost_iptable_t *t = roost_iptable_new(&base);
    roost_ipkey_t a = v4("192.0.2.1"), b = v4("192.0.2.9");
    static const unsigned want[] = { 0, 0, 100, 200, 400, 800, 1000, 1000 };
    unsigned i;

    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_uint_eq(roost_iptable_auth_failed(t, &a, 1000 + i), want[i]);
    /* Per address. */
    ck_assert_uint_eq(roost_iptable_auth_failed(t, &b, 2000), 0);
    /* Still remembered just before the window ends... */
    ck_assert_uint_eq(roost_iptable_auth_failed(t, &a, 1007 + 9999), 1000);
    /* ... and forgotten after a quiet window. */
    ck_assert_uint_eq(roost_iptable_auth_failed(t, &a, 1007 + 9999 + 10000), 0);
    ck_assert_uint_eq(roost_iptable_auth_failed(t, &a, 30000), 0);
    ck_assert_uint_eq(roost_iptable_auth_failed(t, &a, 30001), 100);
    /* Huge failure counts do not overflow the shift. */
    for (i = 0; i < 100; i++)
        roost_iptable_auth_failed(t, &a, 30002);
    ck_assert_uint_eq(roost_iptable_auth_failed(t, &a, 30002), 1000);
    /* Delay 0 switches the tarpit off. */
    roost_iptable_opts_t o = base;
    o.tarpit_delay_ms = 0;
    roost_iptable_set_opts(t, &o);
    ck_assert_uint_eq(roost_iptable_auth_failed(t, &a, 30003), 0);
    roost_iptable_free(t);
}
END_TEST

START_TEST(ipv6_prefix_and_mapped)
{
    roost_iptable_opts_t o = base;
    o.max_conns = 1;
    roost_iptable_t *t = roost_iptable_new(&o);
    roost_ipkey_t a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9");
    roost_ipkey_t c = v6("2001:db8:1:3::1");
    roost_ipkey_t m = v6("::ffff:192.0.2.1"), p = v4("192.0.2.1");

    ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);
    ck_assert_int_ne(memcmp(&a, &c, sizeof(a)), 0);
    ck_assert_int_eq(memcmp(&m, &p, sizeof(m)), 0);
    ck_assert_int_eq(roost_iptable_conn_open(t, &a, 0), ROOST_IPTABLE_OK);
    ck_assert_int_eq(roost_iptable_conn_open(t, &b, 0), ROOST_IPTABLE_TOO_MANY);
    ck_assert_int_eq(roost_iptable_conn_open(t, &c, 0), ROOST_IPTABLE_OK);
    ck_assert_int_eq(roost_iptable_conn_open(t, &p, 0), ROOST_IPTABLE_OK);
    ck_assert_int_eq(roost_iptable_conn_open(t, &m, 0), ROOST_IPTABLE_TOO_MANY);
    roost_iptable_free(t);
}
END_TEST

START_TEST(bounded_idle_entries)
{
    roost_iptable_opts_t o = base;
    o.rate = 10;
    o.max_idle = 100;
    roost_iptable_t *t = roost_iptable_new(&o);
    roost_ipkey_t k;
    unsigned i;

    /* 50 addresses keep a connection; 20000 others come and go, or fail
     * to log in, all within the same second so nothing expires. */
    for (i = 0; i < 50; i++) {
        k = nth(i);
        ck_assert_int_eq(roost_iptable_conn_open(t, &k, 5), ROOST_IPTABLE_OK);
    }
    for (i = 50; i < 20050; i++) {
        k = nth(i);
        if (i % 2) {
            ck_assert_int_eq(roost_iptable_conn_open(t, &k, 5), ROOST_IPTABLE_OK);
            roost_iptable_conn_closed(t, &k, 5);
        } else {
            roost_iptable_auth_failed(t, &k, 5);
        }
        ck_assert_uint_le(roost_iptable_size(t), 150);
    }
    /* The live ones were never evicted. */
    for (i = 0; i < 50; i++) {
        k = nth(i);
        ck_assert_uint_eq(roost_iptable_conns(t, &k), 1);
    }
    /* The most recent idle entry is kept: its bucket is still drained. */
    k = nth(20049);
    for (i = 0; i < 9; i++)
        ck_assert_int_eq(roost_iptable_conn_open(t, &k, 5), ROOST_IPTABLE_OK);
    ck_assert_int_eq(roost_iptable_conn_open(t, &k, 5), ROOST_IPTABLE_TOO_FAST);
    roost_iptable_free(t);
}
END_TEST

START_TEST(idle_entries_expire)
{
    roost_iptable_opts_t o = base;
    o.rate = 5;
    roost_iptable_t *t = roost_iptable_new(&o);
    roost_ipkey_t k;
    unsigned i;

    for (i = 0; i < 8; i++) {
        k = nth(i);
        roost_iptable_conn_open(t, &k, 0);
        roost_iptable_conn_closed(t, &k, 0);
    }
    k = nth(100);
    roost_iptable_auth_failed(t, &k, 0);
    ck_assert_uint_eq(roost_iptable_size(t), 9);
    /* After a second the buckets are full again: those entries go, a few
     * per call; the one with a failure stays for the forget window. */
    for (i = 0; i < 4; i++) {
        k = nth(1000 + i);
        roost_iptable_conn_open(t, &k, 2000);
    }
    ck_assert_uint_eq(roost_iptable_size(t), 5);
    k = nth(100);
    ck_assert_uint_eq(roost_iptable_auth_failed(t, &k, 2000), 0);
    ck_assert_uint_eq(roost_iptable_auth_failed(t, &k, 2000), 100);
    roost_iptable_free(t);
}
END_TEST

START_TEST(many_live_entries)
{
    roost_iptable_t *t = roost_iptable_new(&base);
    roost_ipkey_t k;
    unsigned i;

    for (i = 0; i < 30000; i++) {
        k = nth(i);
        ck_assert_int_eq(roost_iptable_conn_open(t, &k, 0), ROOST_IPTABLE_OK);
    }
    ck_assert_uint_eq(roost_iptable_size(t), 30000);
    for (i = 0; i < 30000; i += 7) {
        k = nth(i);
        ck_assert_uint_eq(roost_iptable_conns(t, &k), 1);
    }
    roost_iptable_free(t);
    roost_iptable_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("iptable");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, conns_per_address);
    tcase_add_test(tc, token_bucket);
    tcase_add_test(tc, tarpit_doubles_and_forgets);
    tcase_add_test(tc, ipv6_prefix_and_mapped);
    tcase_add_test(tc, bounded_idle_entries);
    tcase_add_test(tc, idle_entries_expire);
    tcase_add_test(tc, many_live_entries);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
