/* Unit tests for store/jid.c: RFC 7622 §3.5 examples, part limits, domain
 * forms, bad input, equality, copy and make. */
#include <check.h>
#include <stringprep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/error.h"
#include "store/jid.h"

static int parse_s(roost_jid_t *j, const char *s)
{
    return roost_jid_parse(j, s, strlen(s));
}

static int zeroed(const roost_jid_t *j)
{
    return !j->local && !j->domain && !j->resource && !j->bare && !j->full;
}

/* Parses s, checks each part (NULL = absent) and the full form. */
static void expect_ok(const char *s, const char *local, const char *domain,
                      const char *resource, const char *full)
{
    roost_jid_t j;
    int rc = parse_s(&j, s);

    ck_assert_msg(rc == 0, "'%s' rejected (%d)", s, rc);
    if (local)
        ck_assert_str_eq(j.local, local);
    else
        ck_assert_ptr_null(j.local);
    ck_assert_str_eq(j.domain, domain);
    if (resource)
        ck_assert_str_eq(j.resource, resource);
    else
        ck_assert_ptr_null(j.resource);
    ck_assert_str_eq(j.full, full);
    roost_jid_clear(&j);
    ck_assert(zeroed(&j));
}

static void expect_bad_n(const char *s, size_t len)
{
    roost_jid_t j;

    memset(&j, 0x5a, sizeof(j));    /* must come back zeroed */
    ck_assert_msg(roost_jid_parse(&j, s, len) == ROOST_EINVAL, "'%.*s' accepted", (int)len, s);
    ck_assert(zeroed(&j));
    roost_jid_clear(&j);
}

static void expect_bad(const char *s)
{
    expect_bad_n(s, strlen(s));
}

START_TEST(rfc7622_valid)
{
    expect_ok("juliet@example.com", "juliet", "example.com", NULL, "juliet@example.com");
    expect_ok("juliet@example.com/foo", "juliet", "example.com", "foo", "juliet@example.com/foo");
    expect_ok("juliet@example.com/foo bar", "juliet", "example.com", "foo bar",
              "juliet@example.com/foo bar");
    expect_ok("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar",
              "juliet@example.com/foo@bar");
    expect_ok("foo\\20bar@example.com", "foo\\20bar", "example.com", NULL,
              "foo\\20bar@example.com");
    expect_ok("fussball@example.com", "fussball", "example.com", NULL, "fussball@example.com");
    expect_ok("\xcf\x80@example.com", "\xcf\x80", "example.com", NULL, "\xcf\x80@example.com");
    /* Σ folds to σ. */
    expect_ok("\xce\xa3@example.com", "\xcf\x83", "example.com", NULL, "\xcf\x83@example.com");
    expect_ok("\xcf\x83@example.com", "\xcf\x83", "example.com", NULL, "\xcf\x83@example.com");
    /* ♚ is fine in a resource. */
    expect_ok("king@example.com/\xe2\x99\x9a", "king", "example.com", "\xe2\x99\x9a",
              "king@example.com/\xe2\x99\x9a");
    expect_ok("example.com", NULL, "example.com", NULL, "example.com");
    expect_ok("example.com/foobar", NULL, "example.com", "foobar", "example.com/foobar");
    expect_ok("a.example.com/b@example.net", NULL, "a.example.com", "b@example.net",
              "a.example.com/b@example.net");
}
END_TEST

START_TEST(rfc7622_invalid)
{
    expect_bad("\"juliet\"@example.com");
    expect_bad("foo bar@example.com");
    expect_bad("juliet@example.com/ foo");
    expect_bad("@example.com/");
    expect_bad("henry\xe2\x85\xa3@example.com");     /* U+2163 ROMAN NUMERAL FOUR */
    expect_bad("\xe2\x99\x9a@example.com");          /* U+265A BLACK CHESS KING */
    expect_bad("juliet@");
    expect_bad("/foobar");
}
END_TEST

START_TEST(case_and_separators)
{
    roost_jid_t j;

    /* Local and domain fold; the resource keeps its case. */
    expect_ok("JuLiEt@ExAmPlE.CoM/BaLcOnY", "juliet", "example.com", "BaLcOnY",
              "juliet@example.com/BaLcOnY");
    ck_assert_int_eq(parse_s(&j, "Romeo@Example.NET/Orchard/Tree"), 0);
    ck_assert_str_eq(j.bare, "romeo@example.net");
    ck_assert_str_eq(j.resource, "Orchard/Tree");
    roost_jid_clear(&j);
    /* The '@' after the first '/' belongs to the resource. */
    expect_ok("example.com/a@b/c", NULL, "example.com", "a@b/c", "example.com/a@b/c");
    /* Empty parts where a separator is present. */
    expect_bad("");
    expect_bad("@example.com");
    expect_bad("juliet@example.com/");
    expect_bad("juliet@/foo");
    expect_bad("@");
    expect_bad("/");
    /* A second '@' before the '/' lands in the domain, which refuses it. */
    expect_bad("a@b@example.com");
    /* Characters nodeprep prohibits. */
    expect_bad("jul<iet@example.com");
    expect_bad("jul'iet@example.com");
    expect_bad("jul:iet@example.com");
    expect_bad("jul&iet@example.com");
}
END_TEST

START_TEST(domains)
{
    expect_ok("juliet@Example.COM./r", "juliet", "example.com", "r", "juliet@example.com/r");
    expect_ok("EXAMPLE.com.", NULL, "example.com", NULL, "example.com");
    expect_ok("juliet@192.168.1.10", "juliet", "192.168.1.10", NULL, "juliet@192.168.1.10");
    expect_ok("juliet@[::1]/r", "juliet", "[::1]", "r", "juliet@[::1]/r");
    expect_ok("[2001:DB8:0:0::1]", NULL, "[2001:db8::1]", NULL, "[2001:db8::1]");
    expect_ok("localhost", NULL, "localhost", NULL, "localhost");
    expect_ok("xn--bcher-kva.example", NULL, "xn--bcher-kva.example", NULL,
              "xn--bcher-kva.example");
    /* A Unicode domain is nameprepped (case folded). */
    expect_ok("B\xc3\x9c" "CHER.example", NULL, "b\xc3\xbc" "cher.example", NULL,
              "b\xc3\xbc" "cher.example");
    expect_bad("juliet@example..com");
    expect_bad("juliet@.example.com");
    expect_bad("juliet@example.com..");
    expect_bad(".");
    expect_bad("exa mple.com");
    expect_bad("foo_bar.example");
    expect_bad("-foo.example");
    expect_bad("foo-.example");
    expect_bad("[::1");
    expect_bad("[zz::1]");
    expect_bad("[]");
    expect_bad("[192.168.1.1]x");
    expect_bad("snow\xe2\x98\x83.example");        /* symbol in a domain */
}
END_TEST

START_TEST(bad_bytes)
{
    expect_bad_n("jul\0iet@example.com", 19);
    expect_bad_n("juliet@example.com\0", 19);
    expect_bad_n("juliet@example.com/a\0b", 22);
    expect_bad("jul\xc3@example.com");              /* truncated sequence */
    expect_bad("juliet@example.com/\xc0\xaf");      /* overlong '/' */
    expect_bad("juliet@example.com/\xed\xa0\x80");  /* surrogate */
    expect_bad("juliet@example.com/\xf4\x90\x80\x80"); /* past U+10FFFF */
    expect_bad("juliet@example.com/\xff");
    expect_bad("juliet@example.com/\xe2\x99");      /* truncated at the end */
    /* Control characters are prohibited by the profiles. */
    expect_bad("juliet@example.com/a\x01");
    expect_bad("jul\tiet@example.com");
}
END_TEST

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* A hostname of exactly n bytes (labels of at most 63). */
static char *long_domain(size_t n)
{
    char *s = repeat('a', n);
    size_t i;

    for (i = 63; i < n - 1; i += 64)
        s[i] = '.';
    return s;
}

START_TEST(part_limits)
{
    char *l1023 = repeat('l', 1023), *l1024 = repeat('l', 1024);
    char *r1023 = repeat('R', 1023), *r1024 = repeat('R', 1024);
    char *d1023 = long_domain(1023), *d1024 = long_domain(1024);
    char buf[4 * 1024 + 16];
    roost_jid_t j;

    ck_assert_uint_eq(strlen(d1023), 1023);
    snprintf(buf, sizeof(buf), "%s@example.com", l1023);
    ck_assert_int_eq(parse_s(&j, buf), 0);
    ck_assert_uint_eq(strlen(j.local), 1023);
    roost_jid_clear(&j);
    snprintf(buf, sizeof(buf), "%s@example.com", l1024);
    expect_bad(buf);

    snprintf(buf, sizeof(buf), "u@example.com/%s", r1023);
    ck_assert_int_eq(parse_s(&j, buf), 0);
    ck_assert_uint_eq(strlen(j.resource), 1023);
    roost_jid_clear(&j);
    snprintf(buf, sizeof(buf), "u@example.com/%s", r1024);
    expect_bad(buf);

    snprintf(buf, sizeof(buf), "u@%s", d1023);
    ck_assert_int_eq(parse_s(&j, buf), 0);
    ck_assert_uint_eq(strlen(j.domain), 1023);
    roost_jid_clear(&j);
    snprintf(buf, sizeof(buf), "u@%s", d1024);
    expect_bad(buf);

    /* All three at their limit (3071 bytes), also with the trailing dot. */
    snprintf(buf, sizeof(buf), "%s@%s/%s", l1023, d1023, r1023);
    ck_assert_uint_eq(strlen(buf), 3071);
    ck_assert_int_eq(parse_s(&j, buf), 0);
    ck_assert_uint_eq(strlen(j.full), 3071);
    roost_jid_clear(&j);
    snprintf(buf, sizeof(buf), "%s@%s./%s", l1023, d1023, r1023);
    ck_assert_int_eq(parse_s(&j, buf), 0);
    roost_jid_clear(&j);
    /* Longer input is refused before preparation. */
    snprintf(buf, sizeof(buf), "%s@%s/%sRR", l1023, d1023, r1023);
    expect_bad(buf);

    /* ASCII label over 63 bytes. */
    snprintf(buf, sizeof(buf), "%s.example", l1023 + 1023 - 64);
    expect_bad(buf);

    free(l1023); free(l1024); free(r1023); free(r1024); free(d1023); free(d1024);
}
END_TEST

START_TEST(expansion)
{
    /* U+FDFA expands to 18 code points under NFKC: the limit applies to the
     * prepared form, and a large expansion must not overflow anything. */
    const char lig[] = "\xef\xb7\xba";
    char buf[2048];
    roost_jid_t j;
    size_t i;

    snprintf(buf, sizeof(buf), "u@example.com/%s", lig);
    ck_assert_int_eq(parse_s(&j, buf), 0);
    ck_assert_uint_gt(strlen(j.resource), 3);
    roost_jid_clear(&j);

    strcpy(buf, "u@example.com/");
    for (i = 0; i < 300; i++)
        strcat(buf, lig);     /* 900 bytes in, ~10 KB out */
    expect_bad(buf);

    /* Only characters that map to nothing: empty after preparation. */
    expect_bad("\xc2\xad@example.com");              /* U+00AD SOFT HYPHEN */
}
END_TEST

START_TEST(prep_functions)
{
    char *out;

    ck_assert_int_eq(roost_jid_nodeprep("JuLiet", 6, &out), 0);
    ck_assert_str_eq(out, "juliet");
    free(out);
    ck_assert_int_eq(roost_jid_nodeprep("a b", 3, &out), ROOST_EINVAL);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(roost_jid_nodeprep("", 0, &out), ROOST_EINVAL);
    ck_assert_int_eq(roost_jid_nameprep("Example.COM.", 12, &out), 0);
    ck_assert_str_eq(out, "example.com");
    free(out);
    ck_assert_int_eq(roost_jid_nameprep("Example.COMxyz", 11, &out), 0); /* honours len */
    ck_assert_str_eq(out, "example.com");
    free(out);
    ck_assert_int_eq(roost_jid_resourceprep("Foo Bar", 7, &out), 0);
    ck_assert_str_eq(out, "Foo Bar");
    free(out);
    ck_assert_int_eq(roost_jid_resourceprep(" x", 2, &out), ROOST_EINVAL);
    ck_assert_ptr_null(out);
    /* Fullwidth letters are mapped, not refused. */
    ck_assert_int_eq(roost_jid_nodeprep("\xef\xbc\xa1" "b", 4, &out), 0);
    ck_assert_str_eq(out, "ab");
    free(out);
    /* e + combining acute composes to é and is accepted. */
    ck_assert_int_eq(roost_jid_nodeprep("e\xcc\x81", 3, &out), 0);
    ck_assert_str_eq(out, "\xc3\xa9");
    free(out);
}
END_TEST

START_TEST(equality)
{
    roost_jid_t a, b, c, d, e;

    ck_assert_int_eq(parse_s(&a, "Juliet@Example.com/Balcony"), 0);
    ck_assert_int_eq(parse_s(&b, "juliet@EXAMPLE.COM./Balcony"), 0);
    ck_assert_int_eq(parse_s(&c, "juliet@example.com/balcony"), 0);
    ck_assert_int_eq(parse_s(&d, "juliet@example.com"), 0);
    ck_assert_int_eq(parse_s(&e, "example.com/Balcony"), 0);

    ck_assert(roost_jid_equal(&a, &b));
    ck_assert(roost_jid_bare_equal(&a, &b));
    ck_assert(!roost_jid_equal(&a, &c));      /* resource is case-sensitive */
    ck_assert(roost_jid_bare_equal(&a, &c));
    ck_assert(!roost_jid_equal(&a, &d));      /* absent vs present resource */
    ck_assert(!roost_jid_equal(&d, &a));
    ck_assert(roost_jid_bare_equal(&a, &d));
    ck_assert(!roost_jid_bare_equal(&a, &e)); /* absent vs present local */
    ck_assert(!roost_jid_bare_equal(&e, &a));
    ck_assert(roost_jid_equal(&d, &d));
    ck_assert_str_eq(a.full, b.full);
    ck_assert_str_eq(a.bare, "juliet@example.com");
    ck_assert_str_eq(e.bare, "example.com");
    ck_assert_str_eq(e.full, "example.com/Balcony");

    roost_jid_clear(&a);
    roost_jid_clear(&b);
    roost_jid_clear(&c);
    roost_jid_clear(&d);
    roost_jid_clear(&e);
    roost_jid_clear(&e);      /* clearing a cleared JID is fine */
    roost_jid_clear(NULL);
}
END_TEST

START_TEST(copy)
{
    roost_jid_t a, b;

    ck_assert_int_eq(parse_s(&a, "romeo@example.net/orchard"), 0);
    ck_assert_int_eq(roost_jid_copy(&b, &a), 0);
    ck_assert(roost_jid_equal(&a, &b));
    ck_assert_ptr_ne(a.local, b.local);
    ck_assert_ptr_ne(a.full, b.full);
    ck_assert_str_eq(b.bare, "romeo@example.net");
    ck_assert_str_eq(b.full, "romeo@example.net/orchard");
    roost_jid_clear(&a);
    ck_assert_str_eq(b.full, "romeo@example.net/orchard");    /* independent */
    roost_jid_clear(&b);

    ck_assert_int_eq(parse_s(&a, "example.net"), 0);
    ck_assert_int_eq(roost_jid_copy(&b, &a), 0);
    ck_assert_ptr_null(b.local);
    ck_assert_ptr_null(b.resource);
    ck_assert_str_eq(b.full, "example.net");
    ck_assert(roost_jid_equal(&a, &b));
    roost_jid_clear(&a);
    roost_jid_clear(&b);
}
END_TEST

START_TEST(make)
{
    roost_jid_t j, p;

    ck_assert_int_eq(roost_jid_make(&j, "Juliet", "Example.com", "Balcony"), 0);
    ck_assert_str_eq(j.full, "juliet@example.com/Balcony");
    ck_assert_str_eq(j.bare, "juliet@example.com");
    ck_assert_int_eq(parse_s(&p, "juliet@example.com/Balcony"), 0);
    ck_assert(roost_jid_equal(&j, &p));
    roost_jid_clear(&p);
    roost_jid_clear(&j);

    ck_assert_int_eq(roost_jid_make(&j, NULL, "example.com", NULL), 0);
    ck_assert_str_eq(j.full, "example.com");
    ck_assert_ptr_null(j.local);
    roost_jid_clear(&j);

    /* Separators in a resource are just characters there. */
    ck_assert_int_eq(roost_jid_make(&j, "a", "b.example", "x/y@z"), 0);
    ck_assert_str_eq(j.full, "a@b.example/x/y@z");
    roost_jid_clear(&j);

    ck_assert_int_eq(roost_jid_make(&j, "a@b", "example.com", NULL), ROOST_EINVAL);
    ck_assert(zeroed(&j));
    ck_assert_int_eq(roost_jid_make(&j, "a/b", "example.com", NULL), ROOST_EINVAL);
    ck_assert_int_eq(roost_jid_make(&j, "", "example.com", NULL), ROOST_EINVAL);
    ck_assert_int_eq(roost_jid_make(&j, "a", "", NULL), ROOST_EINVAL);
    ck_assert_int_eq(roost_jid_make(&j, "a", NULL, NULL), ROOST_EINVAL);
    ck_assert_int_eq(roost_jid_make(&j, "a", "example.com/x", NULL), ROOST_EINVAL);
    ck_assert_int_eq(roost_jid_make(&j, "a", "example.com", ""), ROOST_EINVAL);
    ck_assert_int_eq(roost_jid_make(&j, "\xe2\x99\x9a", "example.com", NULL), ROOST_EINVAL);
    ck_assert(zeroed(&j));
}
END_TEST

/* The ASCII fast path agrees with libidn: every 1- and 2-byte printable
 * string and a few longer ones, through each profile. libidn's result is
 * taken before roost's own checks (identifier_ok, leading space), so a
 * string either side refuses may only be refused by roost, never accepted
 * differently. */
static void same_as_libidn(const char *in)
{
    char a[ROOST_JID_PART_MAX + 1], *got;
    int (*ours[3])(const char *, size_t, char **) = {
        roost_jid_nodeprep, roost_jid_nameprep, roost_jid_resourceprep
    };

    for (int p = 0; p < 3; p++) {
        int lrc;

        snprintf(a, sizeof(a), "%s", in);
        lrc = p == 0 ? stringprep_xmpp_nodeprep(a, sizeof(a))
            : p == 1 ? stringprep_nameprep(a, sizeof(a))
                     : stringprep_xmpp_resourceprep(a, sizeof(a));
        if (ours[p](in, strlen(in), &got) == 0) {
            ck_assert_msg(lrc == STRINGPREP_OK, "profile %d accepted '%s' that libidn refuses", p, in);
            /* nameprep strips one trailing dot first */
            if (!(p == 1 && in[strlen(in) - 1] == '.'))
                ck_assert_msg(strcmp(got, a) == 0, "profile %d: '%s' -> '%s', libidn '%s'", p,
                              in, got, a);
            free(got);
        }
    }
}

START_TEST(ascii_fast_path)
{
    char s[4];
    static const char *const longer[] = {
        "Bench00001", "localhost", "EXAMPLE.com", "a-b_c.d", "r", "Resource With Space",
        "res/with/slash", "x@y", "~!$()*+,;=?[]^`{|}#%", "TAB\there", "del\x7f",
    };

    for (int c1 = 1; c1 < 128; c1++) {
        s[0] = (char)c1;
        s[1] = '\0';
        same_as_libidn(s);
        for (int c2 = 1; c2 < 128; c2++) {
            s[1] = (char)c2;
            s[2] = '\0';
            same_as_libidn(s);
        }
    }
    for (size_t i = 0; i < sizeof(longer) / sizeof(longer[0]); i++)
        same_as_libidn(longer[i]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jid");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, rfc7622_valid);
    tcase_add_test(tc, rfc7622_invalid);
    tcase_add_test(tc, case_and_separators);
    tcase_add_test(tc, domains);
    tcase_add_test(tc, bad_bytes);
    tcase_add_test(tc, part_limits);
    tcase_add_test(tc, expansion);
    tcase_add_test(tc, prep_functions);
    tcase_add_test(tc, equality);
    tcase_add_test(tc, copy);
    tcase_add_test(tc, make);
    tcase_add_test(tc, ascii_fast_path);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
