/* The integration tests' shared harness (testutil.h): every helper fails
 * the running Check test itself, so callers need not look at errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/integration/testutil.h"

int redis_port;

int redis_port_init(void)
{
    const char *p = getenv("ROOST_TEST_REDIS_PORT");
    if (!p) {
        fprintf(stderr, "ROOST_TEST_REDIS_PORT not set (run under tests/with-redis.sh)\n");
        return -1;
    }
    redis_port = atoi(p);
    return 0;
}

int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

static void on_expire(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

int wait_for(uv_loop_t *loop, const int *v, int want)
{
    uv_timer_t guard;
    int expired = 0;

    uv_timer_init(loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, on_expire, GUARD_MS, 0);
    while (*v < want && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *v >= want;
}

void state_cb(int connected, void *data)
{
    state_t *s = data;
    s->last = connected;
    if (connected)
        s->ups++;
    else
        s->downs++;
}

roost_store_t *store_open(uv_loop_t *loop, const char *node, unsigned timeout_ms, state_t *s)
{
    roost_store_opts_t o = { 0 };
    o.host = "127.0.0.1";
    o.port = redis_port;
    o.node_id = node;
    o.timeout_ms = timeout_ms;
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    roost_store_t *st = roost_store_new(loop, &o, state_cb, s);
    ck_assert_ptr_nonnull(st);
    return st;
}

roost_store_t *store_up(uv_loop_t *loop, const char *node, state_t *s)
{
    roost_store_t *st = store_open(loop, node, 2000, s);
    ck_assert(wait_for(loop, &s->ups, 1));
    return st;
}

void close_all(uv_loop_t *loop, roost_store_t *st)
{
    roost_store_free(st);
    uv_run(loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(loop), 0);
}

redisContext *sync_conn(void)
{
    redisContext *c = redisConnect("127.0.0.1", redis_port);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->err, 0);
    return c;
}

void sync_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR, "%s: %s", fmt, r->str);
    freeReplyObject(r);
}

long long sync_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

void flushall(void)
{
    redisContext *c = sync_conn();
    sync_cmd(c, "FLUSHALL");
    redisFree(c);
}

void fake_lease(const char *node, unsigned long long epoch)
{
    redisContext *c = sync_conn();
    sync_cmd(c, "SET roost:node:%s epoch=%llu PX 60000", node, epoch);
    redisFree(c);
}
