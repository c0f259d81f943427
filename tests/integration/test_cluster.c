/* store/cluster against a real redis-server (tests/with-redis.sh): fenced
 * lease renewal, zombie writes refused, reaping a dead node's sessions only,
 * and the reap lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cluster.h"
#include "store/error.h"
#include "store/store.h"
#include "tests/integration/testutil.h"

typedef struct {
    int n;
    int status;
    int done;
    char cursor[24];
    char got[8][128];    /* full JIDs reported by a reap or node ids */
    size_t ngot;
} ctr_t;

static void status_cb(int status, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
}

static void bind_cb(int status, const roost_session_t *replaced, void *data)
{
    status_cb(status, data);
}

static void nodes_cb(int status, char *const *ids, size_t n, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    for (size_t i = 0; i < n && c->ngot < 8; i++)
        snprintf(c->got[c->ngot++], sizeof(c->got[0]), "%s", ids[i]);
}

static void reap_cb(int status, const roost_cluster_reaped_t *recs, size_t n, int done,
                    const char *cursor, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->done = done;
    if (cursor)
        snprintf(c->cursor, sizeof(c->cursor), "%s", cursor);
    for (size_t i = 0; i < n && c->ngot < 8; i++) {
        ck_assert_ptr_nonnull(strchr(recs[i].full, '/'));
        ck_assert(strncmp(recs[i].full, recs[i].bare, strlen(recs[i].bare)) == 0);
        snprintf(c->got[c->ngot++], sizeof(c->got[0]), "%s", recs[i].full);
    }
}

/* The owner node id in the header of a stored session value. */
static void owner_of(redisContext *c, const char *key, const char *field, char *out, size_t n)
{
    redisReply *r = redisCommand(c, "HGET %s %s", key, field);
    ck_assert_ptr_nonnull(r);
    out[0] = '\0';
    if (r->type == REDIS_REPLY_STRING) {
        const char *nl = memchr(r->str, '\n', r->len), *p = r->str;
        for (int commas = 0; p < nl && commas < 4; p++)
            commas += *p == ',';
        snprintf(out, n, "%.*s", (int)(nl - p), p);
    }
    freeReplyObject(r);
}

static roost_store_t *registered(uv_loop_t *loop, const char *node, state_t *s)
{
    roost_store_opts_t o = { 0 };
    ctr_t c = { 0 };

    o.port = redis_port;
    o.node_id = node;
    o.lease_ms = 10000;
    roost_store_t *st = roost_store_new(loop, &o, state_cb, s);
    ck_assert_ptr_nonnull(st);
    int want = s->ups + 1;
    ck_assert(wait_for(loop, &s->ups, want));
    ck_assert_int_eq(roost_store_node_register(st, status_cb, &c), 0);
    ck_assert(wait_for(loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    return st;
}

static int renew(uv_loop_t *loop, roost_store_t *st)
{
    ctr_t c = { 0 };
    ck_assert_int_eq(roost_store_cluster_renew(st, "127.0.0.1:5222", "t1", 1, 10000,
                                               status_cb, &c), 0);
    ck_assert(wait_for(loop, &c.n, 1));
    ck_assert_int_eq(c.n, 1);
    return c.status;
}

static int do_bind(uv_loop_t *loop, roost_store_t *st, const char *bare, const char *res,
                uint64_t conn)
{
    roost_session_t r;
    ctr_t c = { 0 };

    memset(&r, 0, sizeof(r));
    snprintf(r.node_id, sizeof(r.node_id), "%s", roost_store_node_id(st));
    r.node_epoch = roost_store_node_epoch(st);
    r.conn_id = conn;
    r.resource = (char *)res;
    ck_assert_int_eq(roost_store_session_bind(st, bare, &r, 0, bind_cb, &c), 0);
    ck_assert(wait_for(loop, &c.n, 1));
    return c.status;
}

static void close_both(uv_loop_t *loop, roost_store_t *a, roost_store_t *b)
{
    roost_store_free(a);
    close_all(loop, b);
}

START_TEST(lease_format_parse)
{
    roost_cluster_lease_t l = { 0 }, p;
    char buf[512];

    l.epoch = 42;
    l.start_ms = 1700000000000ull;
    strcpy(l.addr, "[::1]:5222");
    strcpy(l.version, "0.1.0");
    ck_assert_int_eq(roost_cluster_lease_format(&l, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "epoch=42 addr=[::1]:5222 version=0.1.0 start=1700000000000");
    ck_assert_int_eq(roost_cluster_lease_parse(buf, strlen(buf), &p), 0);
    ck_assert(p.epoch == 42 && p.start_ms == l.start_ms);
    ck_assert_str_eq(p.addr, l.addr);
    ck_assert_str_eq(p.version, "0.1.0");
    /* What registration writes, and a newer writer's extra word. */
    ck_assert_int_eq(roost_cluster_lease_parse("epoch=7 start=9 zone=b", 22, &p), 0);
    ck_assert(p.epoch == 7 && p.addr[0] == '\0');
    ck_assert_int_eq(roost_cluster_lease_parse("start=9", 7, &p), ROOST_EINVAL);
    ck_assert_int_eq(roost_cluster_lease_parse("epoch=x1", 8, &p), ROOST_EINVAL);
    strcpy(l.addr, "a b");
    ck_assert_int_eq(roost_cluster_lease_format(&l, buf, sizeof(buf)), ROOST_EINVAL);
}
END_TEST

START_TEST(renew_fenced)
{
    uv_loop_t loop;
    state_t s = { 0 };
    char q[128];

    flushall();
    uv_loop_init(&loop);
    roost_store_t *a = registered(&loop, "c1", &s);
    ck_assert_int_eq(renew(&loop, a), 0);
    redisContext *c = sync_conn();
    redisReply *r = redisCommand(c, "GET roost:node:c1");
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_ptr_nonnull(strstr(r->str, "addr=127.0.0.1:5222 version=t1"));
    freeReplyObject(r);

    /* Expired, nothing happened since: the same epoch may put it back. */
    sync_cmd(c, "DEL roost:node:c1");
    ck_assert_int_eq(renew(&loop, a), 0);
    /* Expired and a reaper took the lock: refused. */
    sync_cmd(c, "DEL roost:node:c1");
    sync_cmd(c, "SET roost:reap:c1 other:1 PX 60000");
    ck_assert_int_eq(renew(&loop, a), ROOST_ESTALE);
    ck_assert_int_eq(sync_int(c, "EXISTS roost:node:c1"), 0);
    sync_cmd(c, "DEL roost:reap:c1");

    /* A newer incarnation of the same id holds it: refused, and its lease
     * is left alone. */
    roost_store_t *b = registered(&loop, "c1", &s);
    ck_assert_uint_gt(roost_store_node_epoch(b), roost_store_node_epoch(a));
    ck_assert_int_eq(renew(&loop, a), ROOST_ESTALE);
    ck_assert_int_eq(renew(&loop, b), 0);
    snprintf(q, sizeof(q), "epoch=%llu ", (unsigned long long)roost_store_node_epoch(b));
    r = redisCommand(c, "GET roost:node:c1");
    ck_assert(strncmp(r->str, q, strlen(q)) == 0);
    freeReplyObject(r);
    /* ... also once that one's key expired: a newer epoch exists. */
    sync_cmd(c, "DEL roost:node:c1");
    ck_assert_int_eq(renew(&loop, a), ROOST_ESTALE);

    /* Redis lost everything: re-assert, and the counter moves past us. */
    sync_cmd(c, "FLUSHALL");
    ck_assert_int_eq(renew(&loop, b), 0);
    ck_assert_int_ge(sync_int(c, "INCR roost:epoch"), (long long)roost_store_node_epoch(b) + 1);
    redisFree(c);
    close_both(&loop, a, b);
}
END_TEST

START_TEST(zombie_write_refused)
{
    uv_loop_t loop;
    state_t s = { 0 };
    char owner[80];

    flushall();
    uv_loop_init(&loop);
    roost_store_t *a = registered(&loop, "z1", &s);
    ck_assert_int_eq(do_bind(&loop, a, "zed@localhost", "r", 1), 0);
    roost_store_t *b = registered(&loop, "z1", &s);    /* a's lease replaced */
    ck_assert_int_eq(do_bind(&loop, a, "zed@localhost", "r", 2), ROOST_ESTALE);
    ck_assert_int_eq(do_bind(&loop, a, "zed@localhost", "new", 3), ROOST_ESTALE);

    roost_session_t r;
    ctr_t u = { 0 };
    memset(&r, 0, sizeof(r));
    strcpy(r.node_id, "z1");
    r.node_epoch = roost_store_node_epoch(a);
    r.conn_id = 1;
    r.resource = (char *)"r";
    r.priority = 9;
    ck_assert_int_eq(roost_store_session_update(a, "zed@localhost", &r, status_cb, &u), 0);
    ck_assert(wait_for(&loop, &u.n, 1));
    ck_assert_int_eq(u.status, ROOST_ESTALE);

    redisContext *c = sync_conn();
    ck_assert_int_eq(sync_int(c, "HEXISTS roost:sess:{zed@localhost} new"), 0);
    ck_assert_int_eq(do_bind(&loop, b, "zed@localhost", "r", 7), 0);
    owner_of(c, "roost:sess:{zed@localhost}", "r", owner, sizeof(owner));
    ck_assert_str_eq(owner, "z1");
    /* Lease gone entirely: nobody writes under that id. */
    sync_cmd(c, "DEL roost:node:z1");
    ck_assert_int_eq(do_bind(&loop, b, "zed@localhost", "r", 8), ROOST_ESTALE);
    redisFree(c);
    close_both(&loop, a, b);
}
END_TEST

static int has(const ctr_t *c, const char *s)
{
    for (size_t i = 0; i < c->ngot; i++)
        if (strcmp(c->got[i], s) == 0)
            return 1;
    return 0;
}

START_TEST(reap_dead_node_only)
{
    uv_loop_t loop;
    state_t s = { 0 };
    char owner[80];

    flushall();
    uv_loop_init(&loop);
    roost_store_t *dead = registered(&loop, "dA", &s);
    roost_store_t *live = registered(&loop, "dB", &s);
    ck_assert_int_eq(do_bind(&loop, dead, "u1@localhost", "a", 1), 0);
    ck_assert_int_eq(do_bind(&loop, dead, "u2@localhost", "b", 2), 0);
    ck_assert_int_eq(do_bind(&loop, dead, "u2@localhost", "c/with/slash", 3), 0);
    ck_assert_int_eq(do_bind(&loop, live, "u3@localhost", "c", 4), 0);
    ck_assert_int_eq(do_bind(&loop, live, "u1@localhost", "a", 5), 0);   /* moved to dB */

    redisContext *c = sync_conn();
    ctr_t d = { 0 };
    ck_assert_int_eq(roost_store_cluster_dead(live, nodes_cb, &d), 0);
    ck_assert(wait_for(&loop, &d.n, 1));
    ck_assert_int_eq(d.status, 0);
    ck_assert_uint_eq(d.ngot, 0);                    /* everyone holds a lease */

    sync_cmd(c, "DEL roost:node:dA");                 /* dA dies */
    memset(&d, 0, sizeof(d));
    ck_assert_int_eq(roost_store_cluster_dead(live, nodes_cb, &d), 0);
    ck_assert(wait_for(&loop, &d.n, 1));
    ck_assert_uint_eq(d.ngot, 1);
    ck_assert_str_eq(d.got[0], "dA");

    /* A live node is never reaped. */
    ctr_t x = { 0 };
    ck_assert_int_eq(roost_store_cluster_reap(live, "dB", 0, "0", reap_cb, &x), 0);
    ck_assert(wait_for(&loop, &x.n, 1));
    ck_assert_int_eq(x.status, ROOST_ESTALE);

    ctr_t l1 = { 0 }, l2 = { 0 };
    ck_assert_int_eq(roost_store_cluster_lock(live, "dA", 30000, status_cb, &l1), 0);
    ck_assert_int_eq(roost_store_cluster_lock(dead, "dA", 30000, status_cb, &l2), 0);
    ck_assert(wait_for(&loop, &l2.n, 1));
    ck_assert_int_eq(l1.status, 0);
    ck_assert_int_eq(l2.status, ROOST_ECONFLICT);     /* no double reap */

    ctr_t rp = { 0 };
    strcpy(rp.cursor, "0");
    for (int i = 0; i < 100 && !rp.done; i++) {
        int before = rp.n;
        char cur[24];
        strcpy(cur, rp.cursor);
        ck_assert_int_eq(roost_store_cluster_reap(live, "dA", 0, cur, reap_cb, &rp), 0);
        ck_assert(wait_for(&loop, &rp.n, before + 1));
        ck_assert_int_eq(rp.status, 0);
    }
    ck_assert(rp.done);
    ck_assert_uint_eq(rp.ngot, 2);
    ck_assert(has(&rp, "u2@localhost/b"));
    ck_assert(has(&rp, "u2@localhost/c/with/slash"));
    ck_assert_int_eq(sync_int(c, "EXISTS roost:sess:{u2@localhost}"), 0);
    owner_of(c, "roost:sess:{u1@localhost}", "a", owner, sizeof(owner));
    ck_assert_str_eq(owner, "dB");
    ck_assert_int_eq(sync_int(c, "HEXISTS roost:sess:{u3@localhost} c"), 1);
    ck_assert_int_eq(sync_int(c, "EXISTS roost:nodesess:dA"), 0);
    ck_assert_int_eq(sync_int(c, "SCARD roost:nodesess:dB"), 2);
    ck_assert_int_eq(sync_int(c, "ZRANK roost:nodes dB"), 0);
    redisReply *r = redisCommand(c, "ZSCORE roost:nodes dA");
    ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);

    /* The lock is released only by its holder. */
    ctr_t u1 = { 0 }, u2 = { 0 };
    ck_assert_int_eq(roost_store_cluster_unlock(dead, "dA", status_cb, &u1), 0);
    ck_assert(wait_for(&loop, &u1.n, 1));
    ck_assert_int_eq(sync_int(c, "EXISTS roost:reap:dA"), 1);
    ck_assert_int_eq(roost_store_cluster_unlock(live, "dA", status_cb, &u2), 0);
    ck_assert(wait_for(&loop, &u2.n, 1));
    ck_assert_int_eq(sync_int(c, "EXISTS roost:reap:dA"), 0);

    /* The reaped node cannot take its lease back under the old epoch. */
    ck_assert_int_eq(renew(&loop, dead), ROOST_ESTALE);
    redisFree(c);
    close_both(&loop, dead, live);
}
END_TEST

START_TEST(self_reap_earlier_epochs)
{
    uv_loop_t loop;
    state_t s = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *old = registered(&loop, "s1", &s);
    ck_assert_int_eq(do_bind(&loop, old, "v@localhost", "old", 1), 0);
    roost_store_t *cur = registered(&loop, "s1", &s);
    ck_assert_int_eq(do_bind(&loop, cur, "v@localhost", "new", 2), 0);
    uint64_t ep = roost_store_node_epoch(cur);

    /* A dead-node reap is refused: s1 holds a lease. */
    ctr_t x = { 0 };
    ck_assert_int_eq(roost_store_cluster_reap(cur, "s1", 0, "0", reap_cb, &x), 0);
    ck_assert(wait_for(&loop, &x.n, 1));
    ck_assert_int_eq(x.status, ROOST_ESTALE);
    /* Nor may anyone reap epochs up to the lease holder's own. */
    memset(&x, 0, sizeof(x));
    ck_assert_int_eq(roost_store_cluster_reap(cur, "s1", ep, "0", reap_cb, &x), 0);
    ck_assert(wait_for(&loop, &x.n, 1));
    ck_assert_int_eq(x.status, ROOST_ESTALE);

    ctr_t rp = { 0 };
    ck_assert_int_eq(roost_store_cluster_reap(cur, "s1", ep - 1, "0", reap_cb, &rp), 0);
    ck_assert(wait_for(&loop, &rp.n, 1));
    ck_assert_int_eq(rp.status, 0);
    ck_assert(rp.done);
    ck_assert_uint_eq(rp.ngot, 1);
    ck_assert_str_eq(rp.got[0], "v@localhost/old");
    redisContext *c = sync_conn();
    ck_assert_int_eq(sync_int(c, "HEXISTS roost:sess:{v@localhost} new"), 1);
    ck_assert_int_eq(sync_int(c, "SISMEMBER roost:nodesess:s1 v@localhost/new"), 1);
    ck_assert_int_eq(sync_int(c, "SISMEMBER roost:nodesess:s1 v@localhost/old"), 0);

    /* Leaving removes the lease and the registry entry. */
    ctr_t lv = { 0 };
    ck_assert_int_eq(roost_store_cluster_leave(cur, status_cb, &lv), 0);
    ck_assert(wait_for(&loop, &lv.n, 1));
    ck_assert_int_eq(lv.status, 0);
    ck_assert_int_eq(sync_int(c, "EXISTS roost:node:s1"), 0);
    ck_assert_int_eq(sync_int(c, "HEXISTS roost:nodeepochs s1"), 0);
    redisReply *r = redisCommand(c, "ZSCORE roost:nodes s1");
    ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    redisFree(c);
    close_both(&loop, old, cur);
}
END_TEST

int main(void)
{
    if (redis_port_init() < 0)
        return 77;
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, lease_format_parse);
    tcase_add_test(tc, renew_fenced);
    tcase_add_test(tc, zombie_write_refused);
    tcase_add_test(tc, reap_dead_node_only);
    tcase_add_test(tc, self_reap_earlier_epochs);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
