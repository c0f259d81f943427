/* The node-local read cache (store/cache.h) against a real redis-server:
 * a session hash or block list read by one store is cached, and a write
 * by another store (another node) invalidates it through pub/sub, so the
 * next lookup misses and reads the new value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/blockcheck.h"
#include "store/blocklist.h"
#include "store/error.h"
#include "store/jid.h"
#include "store/keys.h"
#include "store/store.h"
#include "tests/integration/testutil.h"

typedef struct {
    int n;
    int status;
    size_t nrecs;
    char node[80];     /* node of the first record */
} ctr_t;

static void status_cb(int status, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
}

static void bind_cb(int status, const roost_session_t *replaced, void *data)
{
    (void)replaced;
    status_cb(status, data);
}

static void sessions_cb(int status, const roost_session_t *recs, size_t n, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->nrecs = n;
    if (n)
        snprintf(c->node, sizeof(c->node), "%s", recs[0].node_id);
}

static void message_cb(const uint8_t *msg, size_t len, void *data)
{
    (void)msg;
    (void)len;
    (void)data;
}

/* A registered store (it has an epoch and a lease) subscribed to its
 * channel, once its caches are live. */
static roost_store_t *node_store(uv_loop_t *loop, const char *node, state_t *s)
{
    roost_store_t *st = store_up(loop, node, s);
    ctr_t c = { 0 };
    int live = 0;

    ck_assert_int_eq(roost_store_node_register(st, status_cb, &c), 0);
    ck_assert(wait_for(loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    ck_assert_int_eq(roost_store_subscribe(st, message_cb, NULL), 0);
    for (int i = 0; i < 500 && !live; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        live = roost_store_cache_live(st);
        if (!live)
            uv_sleep(10);
    }
    ck_assert(live);
    return st;
}

static void mkrec(roost_session_t *r, roost_store_t *st, uint64_t conn, const char *res)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->node_id, sizeof(r->node_id), "%s", roost_store_node_id(st));
    r->node_epoch = roost_store_node_epoch(st);
    r->conn_id = conn;
    r->resource = (char *)res;
    r->flags = ROOST_SESS_F_AVAILABLE;
}

static void list(uv_loop_t *loop, roost_store_t *st, const char *bare, ctr_t *c)
{
    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(roost_store_session_list(st, bare, sessions_cb, c), 0);
    ck_assert(wait_for(loop, &c->n, 1));
    ck_assert_int_eq(c->status, 0);
}

/* Lists bare until the answer is cached: a read taken before an
 * invalidation still in flight is (rightly) not stored. */
static void list_cached(uv_loop_t *loop, roost_store_t *st, const char *bare, ctr_t *c)
{
    const roost_session_t *recs;
    size_t n;

    for (int i = 0; i < 100; i++) {
        list(loop, st, bare, c);
        if (roost_store_sessions_cached(st, bare, &recs, &n))
            return;
        uv_sleep(5);
    }
    ck_abort_msg("%s never got cached", bare);
}

/* Runs the loop until bare is no longer cached in st (GUARD_MS at most);
 * returns 1 when it was dropped. */
static int wait_dropped(uv_loop_t *loop, roost_store_t *st, const char *bare)
{
    const roost_session_t *recs;
    size_t n;

    for (int i = 0; i < GUARD_MS / 5; i++) {
        if (!roost_store_sessions_cached(st, bare, &recs, &n))
            return 1;
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(5);
    }
    return 0;
}

START_TEST(sessions_invalidated_by_other_node)
{
    uv_loop_t loop;
    state_t sa = { 0 }, sb = { 0 };
    roost_session_t r;
    ctr_t c;
    const roost_session_t *recs;
    size_t n;
    const char *bare = "mover@localhost";

    flushall();
    uv_loop_init(&loop);
    roost_store_t *a = node_store(&loop, "ca", &sa);
    roost_store_t *b = node_store(&loop, "cb", &sb);

    /* The user is on node ca; cb reads and caches that. */
    mkrec(&r, a, 1, "phone");
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_session_bind(a, bare, &r, 10, bind_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    list_cached(&loop, b, bare, &c);
    ck_assert_uint_eq(c.nrecs, 1);
    ck_assert_int_eq(roost_store_sessions_cached(b, bare, &recs, &n), 1);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(recs[0].node_id, "ca");

    /* The same resource rebinds on node cb: cb's cache must not keep
     * pointing at ca. */
    mkrec(&r, b, 2, "phone");
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_session_bind(b, bare, &r, 10, bind_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    ck_assert(wait_dropped(&loop, b, bare));
    list_cached(&loop, b, bare, &c);
    ck_assert_uint_eq(c.nrecs, 1);
    ck_assert_str_eq(c.node, "cb");
    ck_assert_int_eq(roost_store_sessions_cached(b, bare, &recs, &n), 1);
    ck_assert_str_eq(recs[0].node_id, "cb");

    /* Node ca caches it, then cb unbinds: ca sees no session. */
    list_cached(&loop, a, bare, &c);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_session_unbind(b, bare, "phone", 2, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert(wait_dropped(&loop, a, bare));
    list_cached(&loop, a, bare, &c);
    ck_assert_uint_eq(c.nrecs, 0);

    /* An admin write the scripts do not make: "*" clears everything. */
    redisContext *sc = sync_conn();
    sync_int(sc, "PUBLISH %s %s", ROOST_KEY_INVAL, ROOST_INVAL_ALL);
    redisFree(sc);
    ck_assert(wait_dropped(&loop, a, bare));

    roost_store_free(b);
    close_all(&loop, a);
    flushall();      /* the next test binary expects an empty server */
}
END_TEST

START_TEST(lost_subscription_turns_cache_off)
{
    uv_loop_t loop;
    state_t sa = { 0 };
    ctr_t c;
    const roost_session_t *recs;
    size_t n;

    flushall();
    uv_loop_init(&loop);
    roost_store_t *a = node_store(&loop, "cl", &sa);
    list_cached(&loop, a, "nobody@localhost", &c);
    ck_assert_int_eq(roost_store_sessions_cached(a, "nobody@localhost", &recs, &n), 1);
    ck_assert_uint_eq(n, 0);
    /* Kill every pub/sub client: invalidations could be missed now. */
    redisContext *sc = sync_conn();
    sync_cmd(sc, "CLIENT KILL TYPE pubsub");
    redisFree(sc);
    ck_assert(wait_dropped(&loop, a, "nobody@localhost"));
    close_all(&loop, a);
    flushall();
}
END_TEST

static void verdict_cb(int status, int verdict, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->nrecs = (size_t)verdict;
}

/* Asks until both lists are cached (the first asks start the reads). */
static int cached_verdict(uv_loop_t *loop, roost_store_t *st, const roost_jid_t *s,
                          const roost_jid_t *r)
{
    int v = -1;
    for (int i = 0; i < GUARD_MS / 5; i++) {
        if (roost_store_blockcheck_cached(st, s, r, &v))
            return v;
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(5);
    }
    return -1;
}

START_TEST(block_list_invalidated)
{
    uv_loop_t loop;
    state_t sa = { 0 }, sb = { 0 };
    roost_jid_t alice, bob;
    ctr_t c;
    const char *blk[] = { "bob@localhost" };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *a = node_store(&loop, "ba", &sa);
    roost_store_t *b = node_store(&loop, "bb", &sb);
    ck_assert_int_eq(roost_jid_parse(&alice, "alice@localhost/x", 17), 0);
    ck_assert_int_eq(roost_jid_parse(&bob, "bob@localhost/y", 15), 0);

    ck_assert_int_eq(cached_verdict(&loop, a, &bob, &alice), ROOST_BLOCKCHECK_NONE);
    /* alice blocks bob through the other node's store. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_blocklist_add(b, "alice@localhost", blk, 1, 100, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    int v = ROOST_BLOCKCHECK_NONE;
    for (int i = 0; i < GUARD_MS / 5 && v != ROOST_BLOCKCHECK_BY_RECIPIENT; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);      /* the invalidation arrives here */
        uv_sleep(5);
        v = cached_verdict(&loop, a, &bob, &alice);
    }
    ck_assert_int_eq(v, ROOST_BLOCKCHECK_BY_RECIPIENT);
    /* The script agrees. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_blockcheck(a, &bob, &alice, verdict_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_uint_eq(c.nrecs, ROOST_BLOCKCHECK_BY_RECIPIENT);
    /* And unblocking is seen too. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_blocklist_remove(b, "alice@localhost", blk, 1, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    for (int i = 0; i < GUARD_MS / 5 && v != ROOST_BLOCKCHECK_NONE; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_sleep(5);
        v = cached_verdict(&loop, a, &bob, &alice);
    }
    ck_assert_int_eq(v, ROOST_BLOCKCHECK_NONE);

    roost_jid_clear(&alice);
    roost_jid_clear(&bob);
    roost_store_free(b);
    close_all(&loop, a);
    flushall();      /* the next test binary expects an empty server */
}
END_TEST

int main(void)
{
    if (redis_port_init() < 0)
        return 77;

    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, sessions_invalidated_by_other_node);
    tcase_add_test(tc, lost_subscription_turns_cache_off);
    tcase_add_test(tc, block_list_invalidated);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
