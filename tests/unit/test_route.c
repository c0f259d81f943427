/* Routing decisions of RFC 6121 §8.5.2.1 for bare-JID messages, and the
 * local session map. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/map.h"
#include "node/route.h"

static roost_session_t mk(int avail, int prio)
{
    roost_session_t s;
    memset(&s, 0, sizeof(s));
    s.flags = avail ? ROOST_SESS_F_AVAILABLE : 0;
    s.priority = prio;
    return s;
}

START_TEST(test_msg_type)
{
    ck_assert_int_eq(roost_route_msg_type(NULL), ROOST_MSG_NORMAL);
    ck_assert_int_eq(roost_route_msg_type("chat"), ROOST_MSG_CHAT);
    ck_assert_int_eq(roost_route_msg_type("headline"), ROOST_MSG_HEADLINE);
    ck_assert_int_eq(roost_route_msg_type("groupchat"), ROOST_MSG_GROUPCHAT);
    ck_assert_int_eq(roost_route_msg_type("error"), ROOST_MSG_ERROR);
    ck_assert_int_eq(roost_route_msg_type("bogus"), ROOST_MSG_NORMAL);
}
END_TEST

START_TEST(test_highest_priority_wins)
{
    roost_session_t r[3] = { mk(1, 1), mk(1, 5), mk(1, 3) };
    size_t idx[3];
    size_t n = roost_route_bare_message(r, 3, ROOST_MSG_CHAT, idx);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(idx[0], 1);
}
END_TEST

START_TEST(test_equal_priority_all)
{
    roost_session_t r[4] = { mk(1, 2), mk(1, 2), mk(1, 1), mk(0, 9) };
    size_t idx[4];
    size_t n = roost_route_bare_message(r, 4, ROOST_MSG_NORMAL, idx);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(idx[0], 0);
    ck_assert_uint_eq(idx[1], 1);
}
END_TEST

START_TEST(test_negative_priority_never)
{
    roost_session_t r[2] = { mk(1, -1), mk(1, -5) };
    size_t idx[2];
    ck_assert_uint_eq(roost_route_bare_message(r, 2, ROOST_MSG_CHAT, idx), 0);
    ck_assert_uint_eq(roost_route_bare_message(r, 2, ROOST_MSG_HEADLINE, idx), 0);
    /* but they are available for directed presence */
    ck_assert_uint_eq(roost_route_available(r, 2, idx), 2);
}
END_TEST

START_TEST(test_unavailable_skipped)
{
    roost_session_t r[2] = { mk(0, 0), mk(0, 3) };
    size_t idx[2];
    ck_assert_uint_eq(roost_route_bare_message(r, 2, ROOST_MSG_CHAT, idx), 0);
    ck_assert_uint_eq(roost_route_available(r, 2, idx), 0);
}
END_TEST

START_TEST(test_headline_all_nonnegative)
{
    roost_session_t r[4] = { mk(1, 0), mk(1, 5), mk(1, -1), mk(0, 5) };
    size_t idx[4];
    size_t n = roost_route_bare_message(r, 4, ROOST_MSG_HEADLINE, idx);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(idx[0], 0);
    ck_assert_uint_eq(idx[1], 1);
}
END_TEST

START_TEST(test_groupchat_error_none)
{
    roost_session_t r[1] = { mk(1, 5) };
    size_t idx[1];
    ck_assert_uint_eq(roost_route_bare_message(r, 1, ROOST_MSG_GROUPCHAT, idx), 0);
    ck_assert_uint_eq(roost_route_bare_message(r, 1, ROOST_MSG_ERROR, idx), 0);
}
END_TEST

START_TEST(test_zero_priority_beats_negative)
{
    roost_session_t r[2] = { mk(1, -3), mk(1, 0) };
    size_t idx[2];
    size_t n = roost_route_bare_message(r, 2, ROOST_MSG_CHAT, idx);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(idx[0], 1);
}
END_TEST

START_TEST(test_map)
{
    roost_map_t *m = roost_map_new();
    int a, b;
    char key[32];
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "u%d@d/r", i);
        ck_assert_int_eq(roost_map_put(m, key, (i & 1) ? &a : &b), 0);
    }
    ck_assert_uint_eq(roost_map_size(m), 1000);
    ck_assert_ptr_eq(roost_map_get(m, "u1@d/r"), &a);
    ck_assert_ptr_eq(roost_map_get(m, "u2@d/r"), &b);
    ck_assert_ptr_null(roost_map_get(m, "nope"));
    /* delete only when the value matches */
    ck_assert_int_eq(roost_map_del(m, "u1@d/r", &b), 0);
    ck_assert_ptr_eq(roost_map_get(m, "u1@d/r"), &a);
    ck_assert_int_eq(roost_map_del(m, "u1@d/r", &a), 1);
    ck_assert_ptr_null(roost_map_get(m, "u1@d/r"));
    ck_assert_uint_eq(roost_map_size(m), 999);
    /* replace */
    ck_assert_int_eq(roost_map_put(m, "u2@d/r", &a), 0);
    ck_assert_ptr_eq(roost_map_get(m, "u2@d/r"), &a);
    ck_assert_uint_eq(roost_map_size(m), 999);
    roost_map_free(m);
    roost_map_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_msg_type);
    tcase_add_test(tc, test_highest_priority_wins);
    tcase_add_test(tc, test_equal_priority_all);
    tcase_add_test(tc, test_negative_priority_never);
    tcase_add_test(tc, test_unavailable_skipped);
    tcase_add_test(tc, test_headline_all_nonnegative);
    tcase_add_test(tc, test_groupchat_error_none);
    tcase_add_test(tc, test_zero_priority_beats_negative);
    tcase_add_test(tc, test_map);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
