/* Unit tests for the invalidated read cache (store/cache.h): hits and
 * misses, expiry, tickets refusing a value read before an invalidation,
 * clear, eviction of the oldest entry, and that every value is freed. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cache.h"

static int freed;

static void free_value(void *v)
{
    freed++;
    free(v);
}

static void *val(int x)
{
    int *p = malloc(sizeof(*p));
    ck_assert_ptr_nonnull(p);
    *p = x;
    return p;
}

static int get(roost_cache_t *c, const char *k, uint64_t now)
{
    int *p = roost_cache_get(c, k, now);
    return p ? *p : -1;
}

START_TEST(hit_miss_expiry)
{
    roost_cache_t *c = roost_cache_new(8, 100, free_value);
    freed = 0;
    ck_assert_int_eq(get(c, "a", 0), -1);
    ck_assert_int_eq(roost_cache_put(c, "a", roost_cache_ticket(c, "a"), 0, val(1)), 1);
    ck_assert_int_eq(get(c, "a", 99), 1);
    ck_assert_int_eq(get(c, "a", 100), -1);          /* expired and dropped */
    ck_assert_int_eq(freed, 1);
    ck_assert_uint_eq(roost_cache_size(c), 0);
    /* A second put of the same key replaces (and frees) the first. */
    roost_cache_put(c, "b", roost_cache_ticket(c, "b"), 0, val(2));
    roost_cache_put(c, "b", roost_cache_ticket(c, "b"), 0, val(3));
    ck_assert_int_eq(get(c, "b", 1), 3);
    ck_assert_int_eq(freed, 2);
    roost_cache_free(c);
    ck_assert_int_eq(freed, 3);
}
END_TEST

START_TEST(ticket_refuses_stale_reads)
{
    roost_cache_t *c = roost_cache_new(8, 1000, free_value);
    freed = 0;
    /* Read of "a" starts, "a" is invalidated meanwhile: the value read
     * before the change must not be stored. */
    uint64_t t = roost_cache_ticket(c, "a");
    roost_cache_invalidate(c, "a");
    ck_assert_int_eq(roost_cache_put(c, "a", t, 0, val(1)), 0);
    ck_assert_int_eq(get(c, "a", 1), -1);
    ck_assert_int_eq(freed, 1);
    /* A read started after the invalidation is fine. */
    t = roost_cache_ticket(c, "a");
    ck_assert_int_eq(roost_cache_put(c, "a", t, 0, val(2)), 1);
    ck_assert_int_eq(get(c, "a", 1), 2);
    /* clear makes every older ticket stale. */
    t = roost_cache_ticket(c, "z");
    roost_cache_clear(c);
    ck_assert_int_eq(get(c, "a", 1), -1);
    ck_assert_int_eq(roost_cache_put(c, "z", t, 0, val(3)), 0);
    /* An invalidation of an uncached key still counts. */
    t = roost_cache_ticket(c, "q");
    roost_cache_invalidate(c, "q");
    ck_assert_int_eq(roost_cache_put(c, "q", t, 0, val(4)), 0);
    roost_cache_free(c);
    ck_assert_int_eq(freed, 4);
}
END_TEST

START_TEST(evicts_oldest)
{
    char k[16];
    roost_cache_t *c = roost_cache_new(3, 1000, free_value);
    freed = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        roost_cache_put(c, k, roost_cache_ticket(c, k), 0, val(i));
    }
    ck_assert_uint_eq(roost_cache_size(c), 3);
    ck_assert_int_eq(get(c, "k0", 1), -1);
    ck_assert_int_eq(get(c, "k1", 1), -1);
    ck_assert_int_eq(get(c, "k2", 1), 2);
    ck_assert_int_eq(get(c, "k4", 1), 4);
    ck_assert_int_eq(freed, 2);
    roost_cache_invalidate(c, "k3");
    ck_assert_int_eq(get(c, "k3", 1), -1);
    ck_assert_uint_eq(roost_cache_size(c), 2);
    roost_cache_free(c);
    ck_assert_int_eq(freed, 5);
    roost_cache_free(NULL);
    ck_assert_ptr_null(roost_cache_get(NULL, "x", 0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hit_miss_expiry);
    tcase_add_test(tc, ticket_refuses_stale_reads);
    tcase_add_test(tc, evicts_oldest);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
