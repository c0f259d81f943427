/* libroost-store against a real redis-server (tests/with-redis.sh): every
 * async call's callback is counted and must run exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/roost.pb-c.h"
#include "store/admin.h"
#include "store/error.h"
#include "store/keys.h"
#include "store/store.h"
#include "tests/integration/testutil.h"

/* ---- harness ------------------------------------------------------------ */

typedef struct {
    int n;              /* how many times the callback ran */
    int status;
    long long value;
    int found;          /* a record/cred/replaced was passed */
    roost_session_t rec;
    size_t nrecs;
    roost_scram_cred_t cred;
    uint8_t msg[256];
    size_t msg_len;
} ctr_t;

static void status_cb(int status, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
}

static void reply_cb(int status, void *reply, void *data)
{
    ctr_t *c = data;
    redisReply *r = reply;
    c->n++;
    c->status = status;
    if (status == 0 && r->type == REDIS_REPLY_INTEGER)
        c->value = r->integer;
}

static void bind_cb(int status, const roost_session_t *replaced, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->found = replaced != NULL;
    if (replaced) {
        roost_session_clear(&c->rec);
        ck_assert_int_eq(roost_session_copy(&c->rec, replaced), 0);
    }
}

static void session_cb(int status, const roost_session_t *rec, void *data)
{
    bind_cb(status, rec, data);
}

static void sessions_cb(int status, const roost_session_t *recs, size_t n, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->nrecs = n;
    if (n) {
        roost_session_clear(&c->rec);
        ck_assert_int_eq(roost_session_copy(&c->rec, &recs[0]), 0);
    }
}

static void cred_cb(int status, const roost_scram_cred_t *cred, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->found = cred != NULL;
    if (cred)
        c->cred = *cred;
}

static void publish_cb(int status, long long receivers, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->value = receivers;
}

static void message_cb(const uint8_t *msg, size_t len, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->msg_len = len;
    if (len <= sizeof(c->msg))
        memcpy(c->msg, msg, len);
}

static void mkrec(roost_session_t *r, const char *node, uint64_t epoch, uint64_t conn,
                  const char *resource)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->node_id, sizeof(r->node_id), "%s", node);
    r->node_epoch = epoch;
    r->conn_id = conn;
    r->resource = (char *)resource;
    r->priority = 5;
    r->flags = ROOST_SESS_F_AVAILABLE;
}

/* Connected store for node; registered so it has an epoch. */
static roost_store_t *ready_store(uv_loop_t *loop, const char *node, state_t *s)
{
    roost_store_t *st = store_up(loop, node, s);
    ctr_t c = { 0 };
    ck_assert_int_eq(roost_store_node_register(st, status_cb, &c), 0);
    ck_assert(wait_for(loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_gt(roost_store_node_epoch(st), 0);
    return st;
}

static void bind_ok(uv_loop_t *loop, roost_store_t *st, const char *bare,
                    const roost_session_t *rec, unsigned max, ctr_t *c)
{
    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(roost_store_session_bind(st, bare, rec, max, bind_cb, c), 0);
    ck_assert(wait_for(loop, &c->n, 1));
}

/* ---- tests ---------------------------------------------------------------- */

START_TEST(connect_and_state)
{
    uv_loop_t loop;
    state_t s = { 0 };
    uv_loop_init(&loop);
    roost_store_t *st = store_open(&loop, "n1", 2000, &s);
    ck_assert_int_eq(roost_store_connected(st), 0);
    ck_assert_str_eq(roost_store_node_id(st), "n1");
    ck_assert(wait_for(&loop, &s.ups, 1));
    ck_assert_int_eq(roost_store_connected(st), 1);
    ck_assert_int_eq(s.downs, 0);

    ctr_t a = { 0 }, b = { 0 };
    ck_assert_int_eq(roost_store_node_register(st, status_cb, &a), 0);
    ck_assert_int_eq(a.n, 0);   /* never on the caller's stack */
    ck_assert(wait_for(&loop, &a.n, 1));
    uint64_t e1 = roost_store_node_epoch(st);
    ck_assert_int_eq(roost_store_node_register(st, status_cb, &b), 0);
    ck_assert(wait_for(&loop, &b.n, 1));
    ck_assert_uint_gt(roost_store_node_epoch(st), e1);

    redisContext *c = sync_conn();
    ck_assert_int_eq(sync_int(c, "EXISTS roost:node:n1"), 1);
    ck_assert_int_eq(sync_int(c, "ZCARD roost:nodes"), 1);
    redisFree(c);
    close_all(&loop, st);
    ck_assert_int_eq(s.ups, 1);
    ck_assert_int_eq(a.n, 1);
    ck_assert_int_eq(b.n, 1);
}
END_TEST

START_TEST(not_connected_fails_fast)
{
    uv_loop_t loop;
    state_t s = { 0 };
    roost_store_opts_t o = { 0 };
    ctr_t c = { 0 };

    uv_loop_init(&loop);
    o.port = 1;   /* nothing listens */
    o.node_id = "n1";
    o.reconnect_min_ms = 10;
    o.reconnect_max_ms = 40;
    roost_store_t *st = roost_store_new(&loop, &o, state_cb, &s);
    ck_assert_ptr_nonnull(st);
    const char *argv[] = { "PING" };
    ck_assert_int_eq(roost_store_command(st, 1, argv, NULL, reply_cb, &c), ROOST_ENOTCONN);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_ONCE);   /* a few failed reconnects */
    ck_assert_int_eq(roost_store_command(st, 1, argv, NULL, reply_cb, &c), ROOST_ENOTCONN);
    close_all(&loop, st);
    ck_assert_int_eq(c.n, 0);
    ck_assert_int_eq(s.ups, 0);
    roost_store_free(NULL);
}
END_TEST

START_TEST(cred_via_admin)
{
    uv_loop_t loop;
    state_t s = { 0 };
    roost_redis_url_t u;
    roost_admin_t *a;
    roost_jid_t jid;
    char url[64], err[256];
    ctr_t c1 = { 0 }, c256 = { 0 }, none = { 0 }, bad = { 0 };

    flushall();
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_port);
    ck_assert_int_eq(roost_admin_url_parse(url, &u), 0);
    ck_assert_int_eq(roost_admin_connect(&u, 2000, &a, err, sizeof(err)), 0);
    roost_admin_url_clear(&u);
    ck_assert_int_eq(roost_jid_parse(&jid, "alice@localhost", 15), 0);
    ck_assert_int_eq(roost_admin_user_add(a, &jid, "secret", 6), 0);
    ck_assert_int_eq(roost_admin_user_add(a, &jid, "other", 5), ROOST_ECONFLICT);

    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);
    ck_assert_int_eq(roost_store_cred_get(st, "alice@localhost", ROOST_HASH_SHA1, cred_cb, &c1), 0);
    ck_assert_int_eq(roost_store_cred_get(st, "alice@localhost", ROOST_HASH_SHA256, cred_cb, &c256), 0);
    ck_assert_int_eq(roost_store_cred_get(st, "nobody@localhost", ROOST_HASH_SHA256, cred_cb, &none), 0);
    ck_assert(wait_for(&loop, &none.n, 1));
    ck_assert_int_eq(c1.n, 1);
    ck_assert_int_eq(c256.n, 1);
    ck_assert_int_eq(c1.status, 0);
    ck_assert(c1.found && c256.found);
    ck_assert_int_eq(c1.cred.hash, ROOST_HASH_SHA1);
    ck_assert_int_eq(c256.cred.hash, ROOST_HASH_SHA256);
    ck_assert_uint_ge(c256.cred.iterations, ROOST_CRED_ITER_MIN);
    ck_assert_int_eq(roost_cred_check_password(&c1.cred, "secret", 6), 1);
    ck_assert_int_eq(roost_cred_check_password(&c256.cred, "secret", 6), 1);
    ck_assert_int_eq(roost_cred_check_password(&c256.cred, "Secret", 6), 0);
    ck_assert_int_eq(none.status, 0);
    ck_assert(!none.found);

    /* passwd replaces the keys; a corrupt stored value is refused. */
    ck_assert_int_eq(roost_admin_user_passwd(a, &jid, "better", 6), 0);
    memset(&c256, 0, sizeof(c256));
    ck_assert_int_eq(roost_store_cred_get(st, "alice@localhost", ROOST_HASH_SHA256, cred_cb, &c256), 0);
    ck_assert(wait_for(&loop, &c256.n, 1));
    ck_assert_int_eq(roost_cred_check_password(&c256.cred, "better", 6), 1);
    redisContext *c = sync_conn();
    sync_cmd(c, "HSET roost:acct:{alice@localhost} sha1 garbage");
    redisFree(c);
    ck_assert_int_eq(roost_store_cred_get(st, "alice@localhost", ROOST_HASH_SHA1, cred_cb, &bad), 0);
    ck_assert(wait_for(&loop, &bad.n, 1));
    ck_assert_int_eq(bad.status, ROOST_EINVAL);
    ck_assert(!bad.found);

    char **v;
    size_t n;
    ck_assert_int_eq(roost_admin_user_list(a, NULL, &v, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0], "alice@localhost");
    roost_admin_strv_free(v, n);
    ck_assert_int_eq(roost_admin_user_del(a, &jid), 0);
    ck_assert_int_eq(roost_admin_user_del(a, &jid), ROOST_ENOTFOUND);
    ck_assert_int_eq(roost_admin_user_passwd(a, &jid, "x", 1), ROOST_ENOTFOUND);
    roost_jid_clear(&jid);
    roost_admin_free(a);
    close_all(&loop, st);
}
END_TEST

START_TEST(bind_list_get)
{
    uv_loop_t loop;
    state_t s = { 0 };
    roost_session_t r;
    ctr_t b, l = { 0 }, g = { 0 }, miss = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = ready_store(&loop, "n1", &s);
    uint64_t ep = roost_store_node_epoch(st);
    mkrec(&r, "n1", ep, 7, "phone");
    r.priority = -3;
    bind_ok(&loop, st, "alice@localhost", &r, 10, &b);
    ck_assert_int_eq(b.status, 0);
    ck_assert(!b.found);

    ck_assert_int_eq(roost_store_session_list(st, "alice@localhost", sessions_cb, &l), 0);
    ck_assert_int_eq(roost_store_session_get(st, "alice@localhost", "phone", session_cb, &g), 0);
    ck_assert_int_eq(roost_store_session_get(st, "alice@localhost", "pad", session_cb, &miss), 0);
    ck_assert(wait_for(&loop, &miss.n, 1));
    ck_assert_int_eq(l.n, 1);
    ck_assert_uint_eq(l.nrecs, 1);
    ck_assert_str_eq(l.rec.resource, "phone");
    ck_assert_int_eq(l.rec.priority, -3);
    ck_assert(l.rec.conn_id == 7);
    ck_assert_int_eq(g.n, 1);
    ck_assert(g.found);
    ck_assert_str_eq(g.rec.node_id, "n1");
    ck_assert(g.rec.node_epoch == ep);
    ck_assert_int_eq(miss.status, 0);
    ck_assert(!miss.found);

    redisContext *c = sync_conn();
    ck_assert_int_eq(sync_int(c, "SISMEMBER roost:nodesess:n1 alice@localhost/phone"), 1);
    redisFree(c);

    /* roostctl's view of the same session. */
    roost_redis_url_t u;
    roost_admin_t *a;
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
    ck_assert_int_eq(roost_admin_url_parse(url, &u), 0);
    ck_assert_int_eq(roost_admin_connect(&u, 2000, &a, NULL, 0), 0);
    roost_admin_url_clear(&u);
    roost_admin_session_t *v;
    size_t n;
    ck_assert_int_eq(roost_admin_session_list(a, NULL, &v, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0].bare, "alice@localhost");
    ck_assert_str_eq(v[0].rec.resource, "phone");
    roost_admin_sessions_free(v, n);

    /* Kick: our node is subscribed to nobody, so the record is stale and goes. */
    ck_assert_int_eq(roost_admin_session_kick(a, "alice@localhost", "phone", "policy-violation"), 0);
    ck_assert_int_eq(roost_admin_session_kick(a, "alice@localhost", "phone", "policy-violation"),
                     ROOST_ENOTFOUND);
    roost_admin_free(a);

    roost_session_clear(&b.rec);
    roost_session_clear(&l.rec);
    roost_session_clear(&g.rec);
    close_all(&loop, st);
}
END_TEST

START_TEST(bind_conflict_and_limit)
{
    uv_loop_t loop;
    state_t s = { 0 };
    roost_session_t r;
    ctr_t b;

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = ready_store(&loop, "n1", &s);
    uint64_t ep = roost_store_node_epoch(st);

    mkrec(&r, "n1", ep, 1, "res");
    bind_ok(&loop, st, "bob@localhost", &r, 2, &b);
    ck_assert(!b.found);
    bind_ok(&loop, st, "bob@localhost", &r, 2, &b);   /* same connection again */
    ck_assert_int_eq(b.status, 0);
    ck_assert(!b.found);

    fake_lease("n2", 9);
    mkrec(&r, "n2", 9, 2, "res");                    /* new session wins */
    bind_ok(&loop, st, "bob@localhost", &r, 2, &b);
    ck_assert_int_eq(b.status, 0);
    ck_assert(b.found);
    ck_assert(b.rec.conn_id == 1);
    ck_assert_str_eq(b.rec.node_id, "n1");
    ck_assert_str_eq(b.rec.resource, "res");
    roost_session_clear(&b.rec);

    mkrec(&r, "n1", ep, 3, "other");
    bind_ok(&loop, st, "bob@localhost", &r, 2, &b);
    ck_assert_int_eq(b.status, 0);
    mkrec(&r, "n1", ep, 4, "third");
    bind_ok(&loop, st, "bob@localhost", &r, 2, &b);
    ck_assert_int_eq(b.status, ROOST_ELIMIT);
    ck_assert_int_eq(b.n, 1);
    mkrec(&r, "n1", ep, 5, "other");                 /* replacing is not a new resource */
    bind_ok(&loop, st, "bob@localhost", &r, 2, &b);
    ck_assert_int_eq(b.status, 0);
    ck_assert(b.found);
    roost_session_clear(&b.rec);

    redisContext *c = sync_conn();
    ck_assert_int_eq(sync_int(c, "HLEN roost:sess:{bob@localhost}"), 2);
    redisFree(c);
    close_all(&loop, st);
}
END_TEST

START_TEST(update_and_unbind_ownership)
{
    uv_loop_t loop;
    state_t s = { 0 };
    roost_session_t r;
    ctr_t b, u1 = { 0 }, u2 = { 0 }, u3 = { 0 }, d1 = { 0 }, d2 = { 0 }, g = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = ready_store(&loop, "n1", &s);
    uint64_t ep = roost_store_node_epoch(st);
    mkrec(&r, "n1", ep, 10, "desk");
    bind_ok(&loop, st, "carol@localhost", &r, 5, &b);

    r.priority = 42;
    ck_assert_int_eq(roost_store_session_update(st, "carol@localhost", &r, status_cb, &u1), 0);
    roost_session_t other = r;
    other.conn_id = 11;
    ck_assert_int_eq(roost_store_session_update(st, "carol@localhost", &other, status_cb, &u2), 0);
    other.resource = (char *)"nothere";
    ck_assert_int_eq(roost_store_session_update(st, "carol@localhost", &other, status_cb, &u3), 0);
    ck_assert(wait_for(&loop, &u3.n, 1));
    ck_assert_int_eq(u1.n, 1);
    ck_assert_int_eq(u1.status, 0);
    ck_assert_int_eq(u2.status, ROOST_ESTALE);
    ck_assert_int_eq(u3.status, ROOST_ESTALE);

    /* A different connection's unbind leaves the record alone. */
    ck_assert_int_eq(roost_store_session_unbind(st, "carol@localhost", "desk", 11, status_cb, &d1), 0);
    ck_assert_int_eq(roost_store_session_get(st, "carol@localhost", "desk", session_cb, &g), 0);
    ck_assert(wait_for(&loop, &g.n, 1));
    ck_assert_int_eq(d1.n, 1);
    ck_assert_int_eq(d1.status, 0);
    ck_assert(g.found);
    ck_assert_int_eq(g.rec.priority, 42);
    roost_session_clear(&g.rec);
    redisContext *c = sync_conn();
    ck_assert_int_eq(sync_int(c, "SISMEMBER roost:nodesess:n1 carol@localhost/desk"), 1);

    ck_assert_int_eq(roost_store_session_unbind(st, "carol@localhost", "desk", 10, status_cb, &d2), 0);
    ck_assert(wait_for(&loop, &d2.n, 1));
    ck_assert_int_eq(d2.status, 0);
    ck_assert_int_eq(sync_int(c, "HEXISTS roost:sess:{carol@localhost} desk"), 0);
    ck_assert_int_eq(sync_int(c, "SISMEMBER roost:nodesess:n1 carol@localhost/desk"), 0);
    redisFree(c);
    close_all(&loop, st);
}
END_TEST

START_TEST(node_cleanup_own_only)
{
    uv_loop_t loop;
    state_t s = { 0 };
    roost_session_t r;
    ctr_t b, cl = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = ready_store(&loop, "n1", &s);
    uint64_t ep = roost_store_node_epoch(st);
    mkrec(&r, "n1", ep, 1, "a");
    bind_ok(&loop, st, "dave@localhost", &r, 0, &b);
    mkrec(&r, "n1", ep, 2, "b/with/slash");
    bind_ok(&loop, st, "erin@localhost", &r, 0, &b);
    mkrec(&r, "n1", ep, 3, "moved");
    bind_ok(&loop, st, "dave@localhost", &r, 0, &b);
    fake_lease("n2", 5);
    mkrec(&r, "n2", 5, 4, "moved");                  /* taken over by node n2 */
    bind_ok(&loop, st, "dave@localhost", &r, 0, &b);
    ck_assert(b.found);
    roost_session_clear(&b.rec);
    mkrec(&r, "n2", 5, 5, "elsewhere");
    bind_ok(&loop, st, "erin@localhost", &r, 0, &b);

    ck_assert_int_eq(roost_store_node_cleanup(st, status_cb, &cl), 0);
    ck_assert(wait_for(&loop, &cl.n, 1));
    ck_assert_int_eq(cl.status, 0);
    redisContext *c = sync_conn();
    ck_assert_int_eq(sync_int(c, "HEXISTS roost:sess:{dave@localhost} a"), 0);
    ck_assert_int_eq(sync_int(c, "HEXISTS roost:sess:{erin@localhost} b/with/slash"), 0);
    ck_assert_int_eq(sync_int(c, "HEXISTS roost:sess:{dave@localhost} moved"), 1);
    ck_assert_int_eq(sync_int(c, "HEXISTS roost:sess:{erin@localhost} elsewhere"), 1);
    ck_assert_int_eq(sync_int(c, "EXISTS roost:nodesess:n1"), 0);
    ck_assert_int_eq(sync_int(c, "SCARD roost:nodesess:n2"), 2);
    redisFree(c);
    close_all(&loop, st);
}
END_TEST

START_TEST(pubsub_binary)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t m = { 0 }, p = { 0 }, p2 = { 0 };
    static const uint8_t payload[] = { 0x00, 'r', 0xff, '\n', 0x00, '*', '3', '\r', '\n' };

    uv_loop_init(&loop);
    roost_store_t *st = store_open(&loop, "n1", 2000, &s);
    ck_assert_int_eq(roost_store_subscribe(st, message_cb, &m), 0);
    ck_assert_int_eq(roost_store_subscribe(st, message_cb, &m), ROOST_EINVAL);
    ck_assert(wait_for(&loop, &s.ups, 1));
    ck_assert_int_eq(roost_store_publish(st, "n1", payload, sizeof(payload), publish_cb, &p), 0);
    ck_assert(wait_for(&loop, &m.n, 1));
    ck_assert(wait_for(&loop, &p.n, 1));
    ck_assert_int_eq(p.status, 0);
    ck_assert_int_eq(p.value, 1);
    ck_assert_uint_eq(m.msg_len, sizeof(payload));
    ck_assert_int_eq(memcmp(m.msg, payload, sizeof(payload)), 0);

    ck_assert_int_eq(roost_store_publish(st, "gone", payload, 3, publish_cb, &p2), 0);
    ck_assert(wait_for(&loop, &p2.n, 1));
    ck_assert_int_eq(p2.value, 0);
    ck_assert_int_eq(m.n, 1);
    close_all(&loop, st);
}
END_TEST

START_TEST(timeout_fires_once)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t t = { 0 }, ping = { 0 };
    const char *argv[] = { "GET", "roost:nothing" };
    const char *pargv[] = { "PING" };

    uv_loop_init(&loop);
    roost_store_t *st = store_open(&loop, "n1", 200, &s);
    ck_assert(wait_for(&loop, &s.ups, 1));
    redisContext *c = sync_conn();
    sync_cmd(c, "CLIENT PAUSE 1000 ALL");
    ck_assert_int_eq(roost_store_command(st, 2, argv, NULL, reply_cb, &t), 0);
    ck_assert(wait_for(&loop, &t.n, 1));
    ck_assert_int_eq(t.status, ROOST_ETIMEDOUT);
    /* Blocks until the pause ends: the pausing client is paused too. */
    sync_cmd(c, "CLIENT UNPAUSE");
    redisFree(c);
    /* Replies come in order: once PING answers, the late GET reply has been
     * consumed too, and it must not have reached our callback again. */
    ck_assert_int_eq(roost_store_command(st, 1, pargv, NULL, reply_cb, &ping), 0);
    ck_assert(wait_for(&loop, &ping.n, 1));
    ck_assert_int_eq(ping.status, 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_int_eq(roost_store_connected(st), 1);
    close_all(&loop, st);
    ck_assert_int_eq(t.n, 1);
    ck_assert_int_eq(ping.n, 1);
}
END_TEST

START_TEST(free_cancels_pending)
{
    uv_loop_t loop;
    state_t s = { 0 };
    roost_session_t r;
    ctr_t a = { 0 }, b = { 0 }, p = { 0 }, w = { 0 };
    const char *argv[] = { "GET", "x" };

    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);
    mkrec(&r, "n1", 1, 1, "r");
    ck_assert_int_eq(roost_store_command(st, 2, argv, NULL, reply_cb, &a), 0);
    ck_assert_int_eq(roost_store_session_bind(st, "f@localhost", &r, 3, bind_cb, &b), 0);
    ck_assert_int_eq(roost_store_publish(st, "n1", (const uint8_t *)"x", 1, publish_cb, &p), 0);
    /* One more that is already on the wire, with Redis paused. */
    redisContext *c = sync_conn();
    sync_cmd(c, "CLIENT PAUSE 500 ALL");
    ck_assert_int_eq(roost_store_command(st, 2, argv, NULL, reply_cb, &w), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    roost_store_free(st);
    ck_assert_int_eq(a.n, 1);
    ck_assert_int_eq(b.n, 1);
    ck_assert_int_eq(p.n, 1);
    ck_assert_int_eq(w.n, 1);
    ck_assert_int_eq(a.status, ROOST_ECANCELED);
    ck_assert_int_eq(b.status, ROOST_ECANCELED);
    ck_assert_int_eq(p.status, ROOST_ECANCELED);
    ck_assert_int_eq(w.status, ROOST_ECANCELED);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_int_eq(a.n + b.n + p.n + w.n, 4);
    sync_cmd(c, "CLIENT UNPAUSE");
    redisFree(c);
}
END_TEST

START_TEST(reconnect_restores_subscription)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t m = { 0 }, p = { 0 };

    uv_loop_init(&loop);
    roost_store_t *st = store_open(&loop, "n7", 2000, &s);
    ck_assert_int_eq(roost_store_subscribe(st, message_cb, &m), 0);
    ck_assert(wait_for(&loop, &s.ups, 1));
    redisContext *c = sync_conn();
    ck_assert_int_ge(sync_int(c, "CLIENT KILL TYPE normal"), 1);
    ck_assert_int_ge(sync_int(c, "CLIENT KILL TYPE pubsub"), 1);
    redisFree(c);
    ck_assert(wait_for(&loop, &s.downs, 1));
    ck_assert(wait_for(&loop, &s.ups, 2));
    ck_assert_int_eq(s.last, 1);
    ck_assert_int_eq(s.downs, 1);
    ck_assert_int_eq(roost_store_publish(st, "n7", (const uint8_t *)"hi", 2, publish_cb, &p), 0);
    ck_assert(wait_for(&loop, &m.n, 1));
    ck_assert(wait_for(&loop, &p.n, 1));
    ck_assert_int_eq(p.value, 1);
    ck_assert_uint_eq(m.msg_len, 2);
    close_all(&loop, st);
    ck_assert_int_eq(s.downs, 1);   /* free reports nothing */
}
END_TEST

START_TEST(noscript_fallback)
{
    uv_loop_t loop;
    state_t s = { 0 };
    roost_session_t r;
    ctr_t b;

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = ready_store(&loop, "n1", &s);
    redisContext *c = sync_conn();
    sync_cmd(c, "SCRIPT FLUSH");
    mkrec(&r, "n1", roost_store_node_epoch(st), 1, "x");
    bind_ok(&loop, st, "gina@localhost", &r, 3, &b);
    ck_assert_int_eq(b.status, 0);
    ck_assert_int_eq(b.n, 1);
    ck_assert_int_eq(sync_int(c, "HEXISTS roost:sess:{gina@localhost} x"), 1);
    /* The EVAL fallback loaded it again: the next call is a plain EVALSHA. */
    bind_ok(&loop, st, "gina@localhost", &r, 3, &b);
    ck_assert_int_eq(b.status, 0);
    redisFree(c);
    close_all(&loop, st);
}
END_TEST

START_TEST(user_del_kicks_sessions)
{
    uv_loop_t loop;
    state_t s = { 0 };
    roost_session_t r;
    roost_redis_url_t u;
    roost_admin_t *a;
    roost_jid_t jid;
    char url[64];
    ctr_t b, m = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = store_open(&loop, "n3", 2000, &s);
    ck_assert_int_eq(roost_store_subscribe(st, message_cb, &m), 0);
    ck_assert(wait_for(&loop, &s.ups, 1));
    fake_lease("n3", 0);
    mkrec(&r, "n3", 0, 77, "laptop");
    bind_ok(&loop, st, "hank@localhost", &r, 3, &b);

    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_port);
    ck_assert_int_eq(roost_admin_url_parse(url, &u), 0);
    ck_assert_int_eq(roost_admin_connect(&u, 2000, &a, NULL, 0), 0);
    roost_admin_url_clear(&u);
    ck_assert_int_eq(roost_jid_parse(&jid, "hank@localhost", 14), 0);
    ck_assert_int_eq(roost_admin_user_add(a, &jid, "pw", 2), 0);
    ck_assert_int_eq(roost_admin_user_del(a, &jid), 0);
    ck_assert(wait_for(&loop, &m.n, 1));
    ck_assert_uint_le(m.msg_len, sizeof(m.msg));
    Roost__RouteEnvelope *env = roost__route_envelope__unpack(NULL, m.msg_len, m.msg);
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(env->kind, ROOST__ROUTE_ENVELOPE__KIND__KICK);
    ck_assert_str_eq(env->condition, "not-authorized");
    ck_assert_uint_eq(env->n_targets, 1);
    ck_assert_str_eq(env->targets[0]->jid, "hank@localhost/laptop");
    ck_assert(env->targets[0]->conn_id == 77);
    roost__route_envelope__free_unpacked(env, NULL);

    redisContext *c = sync_conn();
    ck_assert_int_eq(sync_int(c, "EXISTS roost:sess:{hank@localhost}"), 0);
    ck_assert_int_eq(sync_int(c, "EXISTS roost:acct:{hank@localhost}"), 0);
    ck_assert_int_eq(sync_int(c, "SISMEMBER roost:nodesess:n3 hank@localhost/laptop"), 0);
    ck_assert_int_eq(sync_int(c, "SISMEMBER roost:domains localhost"), 0);
    redisFree(c);
    roost_jid_clear(&jid);
    roost_admin_free(a);
    close_all(&loop, st);
}
END_TEST

static roost_store_t *free_me;

static void free_in_cb(int status, void *reply, void *data)
{
    reply_cb(status, reply, data);
    roost_store_free(free_me);
    roost_store_free(free_me);   /* a second free while closing is a no-op */
}

START_TEST(free_inside_callback)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t a = { 0 }, b = { 0 }, c = { 0 };
    const char *argv[] = { "PING" };

    uv_loop_init(&loop);
    free_me = store_up(&loop, "n1", &s);
    ck_assert_int_eq(roost_store_command(free_me, 1, argv, NULL, free_in_cb, &a), 0);
    ck_assert_int_eq(roost_store_command(free_me, 1, argv, NULL, reply_cb, &b), 0);
    ck_assert_int_eq(roost_store_command(free_me, 1, argv, NULL, reply_cb, &c), 0);
    ck_assert(wait_for(&loop, &a.n, 1));
    ck_assert_int_eq(a.status, 0);
    /* The later calls were canceled by the free, once; their replies that
     * were already read must not reach the callbacks again. */
    ck_assert_int_eq(b.n, 1);
    ck_assert_int_eq(b.status, ROOST_ECANCELED);
    ck_assert_int_eq(c.n, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_int_eq(a.n + b.n + c.n, 3);
}
END_TEST

START_TEST(url_parse)
{
    roost_redis_url_t u;

    ck_assert_int_eq(roost_admin_url_parse("redis://:p%40ss@example.org:6380/3", &u), 0);
    ck_assert_str_eq(u.host, "example.org");
    ck_assert_int_eq(u.port, 6380);
    ck_assert_str_eq(u.password, "p@ss");
    ck_assert_ptr_null(u.user);
    ck_assert_int_eq(u.db, 3);
    roost_admin_url_clear(&u);
    ck_assert_int_eq(roost_admin_url_parse("redis://[::1]", &u), 0);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_int_eq(u.port, 6379);
    roost_admin_url_clear(&u);
    ck_assert_int_eq(roost_admin_url_parse("redis://u:pw@h", &u), 0);
    ck_assert_str_eq(u.user, "u");
    roost_admin_url_clear(&u);
    ck_assert_int_eq(roost_admin_url_parse("http://h", &u), ROOST_EINVAL);
    ck_assert_int_eq(roost_admin_url_parse("redis://h:0", &u), ROOST_EINVAL);
    ck_assert_int_eq(roost_admin_url_parse("redis://h:99999", &u), ROOST_EINVAL);
    ck_assert_int_eq(roost_admin_url_parse("redis://h/x", &u), ROOST_EINVAL);
    ck_assert_int_eq(roost_admin_url_parse("redis://", &u), ROOST_EINVAL);
    ck_assert_int_eq(roost_admin_url_parse("redis://:%zz@h", &u), ROOST_EINVAL);
}
END_TEST

int main(void)
{
    if (redis_port_init() < 0)
        return 77;

    Suite *s = suite_create("store");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, url_parse);
    tcase_add_test(tc, connect_and_state);
    tcase_add_test(tc, not_connected_fails_fast);
    tcase_add_test(tc, cred_via_admin);
    tcase_add_test(tc, bind_list_get);
    tcase_add_test(tc, bind_conflict_and_limit);
    tcase_add_test(tc, update_and_unbind_ownership);
    tcase_add_test(tc, node_cleanup_own_only);
    tcase_add_test(tc, pubsub_binary);
    tcase_add_test(tc, timeout_fires_once);
    tcase_add_test(tc, free_cancels_pending);
    tcase_add_test(tc, reconnect_restores_subscription);
    tcase_add_test(tc, noscript_fallback);
    tcase_add_test(tc, user_del_kicks_sessions);
    tcase_add_test(tc, free_inside_callback);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
