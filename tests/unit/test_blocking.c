/* XEP-0191 block list matching (pure), the candidate strings the Redis
 * check sends, request recognition and the <blocked/> error reply. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "node/blocking.h"
#include "node/buf.h"
#include "node/xml.h"
#include "node/xmpp_error.h"
#include "store/blockcheck.h"
#include "store/jid.h"

/* 1 when s, parsed, matches list[0..n). */
static int m(const char *const *list, size_t n, const char *s)
{
    roost_jid_t j;
    ck_assert_int_eq(roost_jid_parse(&j, s, strlen(s)), 0);
    int r = roost_blocking_match(list, n, &j);
    roost_jid_clear(&j);
    return r;
}

START_TEST(full_item_exact_only)
{
    const char *l[] = { "bob@example.org/home" };
    ck_assert_int_eq(m(l, 1, "bob@example.org/home"), 1);
    ck_assert_int_eq(m(l, 1, "bob@example.org/work"), 0);
    ck_assert_int_eq(m(l, 1, "bob@example.org"), 0);
    ck_assert_int_eq(m(l, 1, "example.org"), 0);
    ck_assert_int_eq(m(l, 1, "rob@example.org/home"), 0);
}
END_TEST

START_TEST(bare_item_any_resource)
{
    const char *l[] = { "bob@example.org" };
    ck_assert_int_eq(m(l, 1, "bob@example.org"), 1);
    ck_assert_int_eq(m(l, 1, "bob@example.org/home"), 1);
    ck_assert_int_eq(m(l, 1, "bob@example.org/x/y"), 1);
    ck_assert_int_eq(m(l, 1, "bob@example.net"), 0);
    ck_assert_int_eq(m(l, 1, "bobby@example.org"), 0);
    ck_assert_int_eq(m(l, 1, "example.org"), 0);
    /* Preparation: the JID is casefolded before matching. */
    ck_assert_int_eq(m(l, 1, "BOB@Example.ORG/Home"), 1);
}
END_TEST

START_TEST(domain_item_whole_domain)
{
    const char *l[] = { "example.org" };
    ck_assert_int_eq(m(l, 1, "example.org"), 1);
    ck_assert_int_eq(m(l, 1, "example.org/res"), 1);
    ck_assert_int_eq(m(l, 1, "bob@example.org"), 1);
    ck_assert_int_eq(m(l, 1, "bob@example.org/home"), 1);
    /* Another domain, including a subdomain or a suffix, is not it. */
    ck_assert_int_eq(m(l, 1, "example.net"), 0);
    ck_assert_int_eq(m(l, 1, "bob@sub.example.org"), 0);
    ck_assert_int_eq(m(l, 1, "bob@notexample.org"), 0);
    ck_assert_int_eq(m(l, 1, "example.org@other.net"), 0);
}
END_TEST

START_TEST(domain_resource_item)
{
    const char *l[] = { "example.org/bot" };
    ck_assert_int_eq(m(l, 1, "example.org/bot"), 1);
    ck_assert_int_eq(m(l, 1, "bob@example.org/bot"), 1);
    ck_assert_int_eq(m(l, 1, "example.org"), 0);
    ck_assert_int_eq(m(l, 1, "example.org/other"), 0);
    ck_assert_int_eq(m(l, 1, "bob@example.org"), 0);
    ck_assert_int_eq(m(l, 1, "bob@example.org/other"), 0);
    ck_assert_int_eq(m(l, 1, "bob@example.net/bot"), 0);
}
END_TEST

START_TEST(lists_and_empty)
{
    const char *l[] = { "a@x.org", "y.org", "c@z.org/r" };
    ck_assert_int_eq(m(l, 3, "a@x.org/q"), 1);
    ck_assert_int_eq(m(l, 3, "anyone@y.org"), 1);
    ck_assert_int_eq(m(l, 3, "c@z.org/r"), 1);
    ck_assert_int_eq(m(l, 3, "c@z.org"), 0);
    ck_assert_int_eq(m(l, 3, "b@x.org"), 0);
    ck_assert_int_eq(m(l, 0, "a@x.org"), 0);
    ck_assert_int_eq(m(NULL, 0, "a@x.org"), 0);
}
END_TEST

static int has(const roost_blockcheck_cand_t *c, const char *s)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->s[i], s) == 0)
            return 1;
    return 0;
}

START_TEST(candidates)
{
    roost_jid_t j;
    roost_blockcheck_cand_t c;

    ck_assert_int_eq(roost_jid_parse(&j, "u@d.org/r", 9), 0);
    ck_assert_int_eq(roost_store_blockcheck_candidates(&j, &c), 0);
    ck_assert_uint_eq(c.n, 4);
    ck_assert(has(&c, "u@d.org/r") && has(&c, "u@d.org") && has(&c, "d.org") &&
              has(&c, "d.org/r"));
    roost_store_blockcheck_cand_clear(&c);
    roost_jid_clear(&j);

    ck_assert_int_eq(roost_jid_parse(&j, "u@d.org", 7), 0);
    ck_assert_int_eq(roost_store_blockcheck_candidates(&j, &c), 0);
    ck_assert_uint_eq(c.n, 2);
    ck_assert(has(&c, "u@d.org") && has(&c, "d.org"));
    roost_store_blockcheck_cand_clear(&c);
    roost_jid_clear(&j);

    ck_assert_int_eq(roost_jid_parse(&j, "d.org/r", 7), 0);
    ck_assert_int_eq(roost_store_blockcheck_candidates(&j, &c), 0);
    ck_assert_uint_eq(c.n, 2);
    ck_assert(has(&c, "d.org/r") && has(&c, "d.org"));
    roost_store_blockcheck_cand_clear(&c);
    roost_jid_clear(&j);

    roost_jid_t empty = { 0 };
    ck_assert_int_lt(roost_store_blockcheck_candidates(&empty, &c), 0);
    ck_assert_uint_eq(c.n, 0);
    roost_store_blockcheck_cand_clear(&c);
    roost_store_blockcheck_cand_clear(NULL);
}
END_TEST

static roost_xml_t *iq(const char *type, const char *child)
{
    roost_xml_t *x = roost_xml_new("iq", ROOST_NS_CLIENT);
    ck_assert_ptr_nonnull(x);
    roost_xml_set_attr(x, "type", type);
    roost_xml_set_attr(x, "id", "q1");
    if (child)
        ck_assert_ptr_nonnull(roost_xml_add(x, child, ROOST_NS_BLOCKING));
    return x;
}

START_TEST(is_request)
{
    struct {
        const char *type, *child;
        int want;
    } cases[] = {
        { "get", "blocklist", 1 }, { "set", "block", 1 }, { "set", "unblock", 1 },
        { "set", "blocklist", 0 }, { "get", "block", 0 }, { "get", "unblock", 0 },
        { "result", "blocklist", 0 }, { "get", NULL, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        roost_xml_t *x = iq(cases[i].type, cases[i].child);
        ck_assert_int_eq(roost_blocking_is_request(x), cases[i].want);
        roost_xml_free(x);
    }
    /* Right name, wrong namespace. */
    roost_xml_t *x = iq("get", NULL);
    roost_xml_add(x, "blocklist", "urn:xmpp:blocking:0");
    ck_assert_int_eq(roost_blocking_is_request(x), 0);
    roost_xml_free(x);
}
END_TEST

START_TEST(error_reply)
{
    roost_xml_t *msg = roost_xml_new("message", ROOST_NS_CLIENT);
    roost_xml_set_attr(msg, "from", "alice@d.org/r");
    roost_xml_set_attr(msg, "to", "bob@d.org");
    roost_xml_set_attr(msg, "type", "chat");
    roost_xml_add_text(roost_xml_add(msg, "body", NULL), "hi", 2);

    roost_xml_t *r = roost_blocking_error_reply(msg);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(roost_xml_attr(r, "type"), "error");
    ck_assert_str_eq(roost_xml_attr(r, "to"), "alice@d.org/r");
    ck_assert_str_eq(roost_xml_attr(r, "from"), "bob@d.org");
    roost_xml_t *e = roost_xml_child(r, "error", ROOST_NS_CLIENT);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(roost_xml_attr(e, "type"), "cancel");
    ck_assert_ptr_nonnull(roost_xml_child(e, "not-acceptable", ROOST_NS_STANZAS));
    ck_assert_ptr_nonnull(roost_xml_child(e, "blocked", ROOST_NS_BLOCKING_ERRORS));

    /* Never an error for an error. */
    ck_assert_ptr_null(roost_blocking_error_reply(r));
    roost_xml_free(r);
    roost_xml_free(msg);

    roost_xml_t *q = iq("get", NULL);
    roost_xml_add(q, "query", "jabber:iq:version");
    r = roost_blocking_error_reply(q);
    ck_assert_ptr_nonnull(r);
    e = roost_xml_child(r, "error", NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(roost_xml_child(e, "blocked", ROOST_NS_BLOCKING_ERRORS));
    roost_xml_free(r);
    roost_xml_free(q);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("blocking");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, full_item_exact_only);
    tcase_add_test(tc, bare_item_any_resource);
    tcase_add_test(tc, domain_item_whole_domain);
    tcase_add_test(tc, domain_resource_item);
    tcase_add_test(tc, lists_and_empty);
    tcase_add_test(tc, candidates);
    tcase_add_test(tc, is_request);
    tcase_add_test(tc, error_reply);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
