/* The one-round-trip blocking check script (store/blockcheck.c) against a
 * real redis-server (tests/with-redis.sh): verdicts in both directions,
 * absent lists, full/bare/domain/domain-resource items. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/blockcheck.h"
#include "store/error.h"
#include "store/jid.h"
#include "store/keys.h"
#include "store/store.h"
#include "tests/integration/testutil.h"

typedef struct {
    int n;
    int status;
    int verdict;
} ctr_t;

/* Sets bare's list to the given items (NULL-terminated), or deletes it. */
static void set_list(const char *bare, const char *const *items)
{
    redisContext *c = sync_conn();
    char *key = roost_key_block(bare);
    ck_assert_ptr_nonnull(key);
    sync_int(c, "DEL %s", key);
    for (size_t i = 0; items && items[i]; i++)
        sync_int(c, "SADD %s %s", key, items[i]);
    free(key);
    redisFree(c);
}

static void check_cb(int status, int verdict, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->verdict = verdict;
}

/* The verdict for sender -> recipient; asserts the callback ran once and
 * not on the caller's stack. */
static int verdict(uv_loop_t *loop, roost_store_t *st, const char *from, const char *to)
{
    roost_jid_t s, r;
    ctr_t c = { 0 };
    ck_assert_int_eq(roost_jid_parse(&s, from, strlen(from)), 0);
    ck_assert_int_eq(roost_jid_parse(&r, to, strlen(to)), 0);
    ck_assert_int_eq(roost_store_blockcheck(st, &s, &r, check_cb, &c), 0);
    roost_jid_clear(&s);
    roost_jid_clear(&r);
    ck_assert_int_eq(c.n, 0);
    ck_assert(wait_for(loop, &c.n, 1));
    uv_run(loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_eq(c.status, 0);
    return c.verdict;
}

START_TEST(absent_lists)
{
    uv_loop_t loop;
    state_t s = { 0 };
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "blk", &s);
    set_list("a1@d.org", NULL);
    set_list("b1@d.org", NULL);
    ck_assert_int_eq(verdict(&loop, st, "a1@d.org/r", "b1@d.org"), ROOST_BLOCKCHECK_NONE);
    ck_assert_int_eq(verdict(&loop, st, "a1@d.org/r", "b1@d.org/x"), ROOST_BLOCKCHECK_NONE);
    /* A list holding other JIDs blocks nothing here. */
    const char *other[] = { "c1@d.org", "e.org", NULL };
    set_list("a1@d.org", other);
    set_list("b1@d.org", other);
    ck_assert_int_eq(verdict(&loop, st, "a1@d.org/r", "b1@d.org"), ROOST_BLOCKCHECK_NONE);
    close_all(&loop, st);
}
END_TEST

START_TEST(sender_blocked_recipient)
{
    uv_loop_t loop;
    state_t s = { 0 };
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "blk", &s);
    set_list("b2@d.org", NULL);

    const char *bare[] = { "b2@d.org", NULL };
    set_list("a2@d.org", bare);
    ck_assert_int_eq(verdict(&loop, st, "a2@d.org/r", "b2@d.org"), ROOST_BLOCKCHECK_BY_SENDER);
    ck_assert_int_eq(verdict(&loop, st, "a2@d.org/r", "b2@d.org/x"), ROOST_BLOCKCHECK_BY_SENDER);
    /* The other direction: bob's list is empty, alice's blocks bob. */
    ck_assert_int_eq(verdict(&loop, st, "b2@d.org/x", "a2@d.org"),
                     ROOST_BLOCKCHECK_BY_RECIPIENT);

    const char *full[] = { "b2@d.org/x", NULL };
    set_list("a2@d.org", full);
    ck_assert_int_eq(verdict(&loop, st, "a2@d.org/r", "b2@d.org/x"), ROOST_BLOCKCHECK_BY_SENDER);
    ck_assert_int_eq(verdict(&loop, st, "a2@d.org/r", "b2@d.org/y"), ROOST_BLOCKCHECK_NONE);
    ck_assert_int_eq(verdict(&loop, st, "a2@d.org/r", "b2@d.org"), ROOST_BLOCKCHECK_NONE);

    const char *dom[] = { "d.org", NULL };
    set_list("a2@d.org", dom);
    ck_assert_int_eq(verdict(&loop, st, "a2@d.org/r", "b2@d.org"), ROOST_BLOCKCHECK_BY_SENDER);
    ck_assert_int_eq(verdict(&loop, st, "a2@d.org/r", "b2@e.org"), ROOST_BLOCKCHECK_NONE);

    const char *domres[] = { "d.org/x", NULL };
    set_list("a2@d.org", domres);
    ck_assert_int_eq(verdict(&loop, st, "a2@d.org/r", "b2@d.org/x"), ROOST_BLOCKCHECK_BY_SENDER);
    ck_assert_int_eq(verdict(&loop, st, "a2@d.org/r", "b2@d.org"), ROOST_BLOCKCHECK_NONE);
    set_list("a2@d.org", NULL);
    close_all(&loop, st);
}
END_TEST

START_TEST(recipient_blocked_sender)
{
    uv_loop_t loop;
    state_t s = { 0 };
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "blk", &s);
    set_list("a3@d.org", NULL);

    const char *bare[] = { "a3@d.org", NULL };
    set_list("b3@d.org", bare);
    ck_assert_int_eq(verdict(&loop, st, "a3@d.org/r", "b3@d.org"),
                     ROOST_BLOCKCHECK_BY_RECIPIENT);
    ck_assert_int_eq(verdict(&loop, st, "a3@d.org/r", "b3@d.org/x"),
                     ROOST_BLOCKCHECK_BY_RECIPIENT);

    const char *full[] = { "a3@d.org/r", NULL };
    set_list("b3@d.org", full);
    ck_assert_int_eq(verdict(&loop, st, "a3@d.org/r", "b3@d.org"),
                     ROOST_BLOCKCHECK_BY_RECIPIENT);
    ck_assert_int_eq(verdict(&loop, st, "a3@d.org/other", "b3@d.org"), ROOST_BLOCKCHECK_NONE);

    const char *dom[] = { "d.org", NULL };
    set_list("b3@d.org", dom);
    ck_assert_int_eq(verdict(&loop, st, "a3@d.org/r", "b3@d.org"),
                     ROOST_BLOCKCHECK_BY_RECIPIENT);
    const char *dom2[] = { "other.org", NULL };
    set_list("b3@d.org", dom2);
    ck_assert_int_eq(verdict(&loop, st, "a3@d.org/r", "b3@d.org"), ROOST_BLOCKCHECK_NONE);

    /* Both lists hold the other: the sender's own block wins. */
    const char *b3[] = { "b3@d.org", NULL };
    set_list("b3@d.org", bare);
    set_list("a3@d.org", b3);
    ck_assert_int_eq(verdict(&loop, st, "a3@d.org/r", "b3@d.org"), ROOST_BLOCKCHECK_BY_SENDER);
    set_list("a3@d.org", NULL);
    set_list("b3@d.org", NULL);
    close_all(&loop, st);
}
END_TEST

START_TEST(bad_args_no_callback)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };
    roost_jid_t a, dom;
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "blk", &s);
    ck_assert_int_eq(roost_jid_parse(&a, "a@d.org", 7), 0);
    ck_assert_int_eq(roost_jid_parse(&dom, "d.org", 5), 0);
    ck_assert_int_eq(roost_store_blockcheck(st, &a, &dom, check_cb, &c), ROOST_EINVAL);
    ck_assert_int_eq(roost_store_blockcheck(st, &dom, &a, check_cb, &c), ROOST_EINVAL);
    ck_assert_int_eq(roost_store_blockcheck(st, &a, &a, NULL, &c), ROOST_EINVAL);
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(c.n, 0);
    roost_jid_clear(&a);
    roost_jid_clear(&dom);
    close_all(&loop, st);
}
END_TEST

/* Shutting the store down with a check in flight still runs cb once. */
START_TEST(cancel_runs_once)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };
    roost_jid_t a, b;
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "blk", &s);
    ck_assert_int_eq(roost_jid_parse(&a, "a5@d.org/r", 10), 0);
    ck_assert_int_eq(roost_jid_parse(&b, "b5@d.org", 8), 0);
    ck_assert_int_eq(roost_store_blockcheck(st, &a, &b, check_cb, &c), 0);
    roost_jid_clear(&a);
    roost_jid_clear(&b);
    close_all(&loop, st);
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_lt(c.status, 0);
    ck_assert_int_eq(c.verdict, ROOST_BLOCKCHECK_NONE);
}
END_TEST

int main(void)
{
    if (redis_port_init() < 0)
        return 77;

    Suite *s = suite_create("blockcheck");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, absent_lists);
    tcase_add_test(tc, sender_blocked_recipient);
    tcase_add_test(tc, recipient_blocked_sender);
    tcase_add_test(tc, bad_args_no_callback);
    tcase_add_test(tc, cancel_runs_once);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
