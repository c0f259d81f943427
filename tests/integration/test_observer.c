/* The store's metrics hooks against a real redis-server: the observer sees
 * every completed call once (replies and timeouts, not cancellations), and
 * roost_store_subscribed follows the pub/sub link. */
#include <check.h>
#include <string.h>

#include "store/error.h"
#include "store/store.h"
#include "tests/integration/testutil.h"

typedef struct {
    int n, ok, timeouts, other;
    double max_s;
} seen_t;

static void observe(double s, int status, void *data)
{
    seen_t *o = data;
    o->n++;
    if (status == 0)
        o->ok++;
    else if (status == ROOST_ETIMEDOUT)
        o->timeouts++;
    else
        o->other++;
    if (s > o->max_s)
        o->max_s = s;
}

typedef struct {
    int n, status;
} done_t;

static void reply_cb(int status, void *reply, void *data)
{
    done_t *d = data;
    d->n++;
    d->status = status;
}

static void message_cb(const uint8_t *msg, size_t len, void *data)
{
}

START_TEST(observer_sees_each_call)
{
    uv_loop_t loop;
    state_t s = { 0 };
    seen_t o = { 0 };
    done_t a = { 0 }, b = { 0 }, t = { 0 }, c = { 0 };
    const char *ping[] = { "PING" };
    const char *get[] = { "GET", "roost:nothing" };

    uv_loop_init(&loop);
    roost_store_t *st = store_open(&loop, "obs1", 300, &s);
    ck_assert(wait_for(&loop, &s.ups, 1));
    roost_store_set_observer(st, observe, &o);
    ck_assert_int_eq(roost_store_command(st, 1, ping, NULL, reply_cb, &a), 0);
    ck_assert_int_eq(roost_store_command(st, 2, get, NULL, reply_cb, &b), 0);
    ck_assert(wait_for(&loop, &b.n, 1));
    ck_assert_int_eq(o.n, 2);
    ck_assert_int_eq(o.ok, 2);
    ck_assert(o.max_s >= 0 && o.max_s < 0.3);

    redisContext *sc = sync_conn();
    sync_cmd(sc, "CLIENT PAUSE 800 ALL");
    ck_assert_int_eq(roost_store_command(st, 2, get, NULL, reply_cb, &t), 0);
    ck_assert(wait_for(&loop, &t.n, 1));
    ck_assert_int_eq(t.status, ROOST_ETIMEDOUT);
    ck_assert_int_eq(o.timeouts, 1);
    /* Timed out at the deadline, not before. */
    ck_assert(o.max_s >= 0.29);
    sync_cmd(sc, "CLIENT UNPAUSE");
    redisFree(sc);

    /* A call cancelled by roost_store_free is not a Redis latency. */
    ck_assert_int_eq(roost_store_command(st, 1, ping, NULL, reply_cb, &c), 0);
    int before = o.n;
    close_all(&loop, st);
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_eq(c.status, ROOST_ECANCELED);
    ck_assert_int_eq(o.n, before);
}
END_TEST

START_TEST(subscribed_follows_the_link)
{
    uv_loop_t loop;
    state_t s = { 0 };

    uv_loop_init(&loop);
    roost_store_t *st = store_open(&loop, "obs2", 2000, &s);
    ck_assert(wait_for(&loop, &s.ups, 1));
    ck_assert_int_eq(roost_store_subscribed(st), 0);
    ck_assert_int_eq(roost_store_subscribe(st, message_cb, NULL), 0);
    int up = 0;
    for (int i = 0; i < 500 && !(up = roost_store_subscribed(st)); i++)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_int_eq(up, 1);
    ck_assert_int_eq(roost_store_subscribed(NULL), 0);
    close_all(&loop, st);
}
END_TEST

int main(void)
{
    if (redis_port_init() < 0)
        return 77;
    Suite *s = suite_create("observer");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, observer_sees_each_call);
    tcase_add_test(tc, subscribed_follows_the_link);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
