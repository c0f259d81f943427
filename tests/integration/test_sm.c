/* Stream-management state in a real redis-server (store/sm.h): numbering
 * and publishing in one script, the queue cap, acks, fencing of detach and
 * h, takeover with compare-and-set, tombstones, expiry taken exactly once,
 * grace sessions, and the reaper detaching instead of removing. Every
 * callback is counted and must run exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cluster.h"
#include "store/error.h"
#include "store/sm.h"
#include "store/store.h"
#include "tests/integration/testutil.h"

#define BARE "alice@example.test"
#define RES "phone"
#define FULL BARE "/" RES

typedef struct {
    int n;
    int status;
    uint64_t seq;
    long long receivers;
    size_t nent;
    uint64_t seqs[16];
    char first[64];
    roost_sm_state_t st;
    int have_st;
    uint64_t h_in;
    char old_node[ROOST_NODE_ID_MAX + 1];
    uint64_t old_conn;
    size_t nexp;
    int exp_rec;
} ctr_t;

static void status_cb(int status, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
}

static void push_cb(int status, uint64_t seq, long long receivers, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->seq = seq;
    c->receivers = receivers;
}

static void entries_cb(int status, const roost_sm_entry_t *e, size_t n, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->nent = n;
    for (size_t i = 0; i < n && i < 16; i++)
        c->seqs[i] = e[i].seq;
    if (n > 0)
        snprintf(c->first, sizeof(c->first), "%.*s", (int)e[0].len, (const char *)e[0].bytes);
}

static void get_cb(int status, const roost_sm_state_t *st, const uint8_t *rec, size_t len,
                   void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->have_st = st != NULL;
    if (st)
        c->st = *st;
}

static void takeover_cb(int status, const roost_sm_takeover_t *t, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    if (t) {
        c->h_in = t->h_in;
        snprintf(c->old_node, sizeof(c->old_node), "%s", t->old_node);
        c->old_conn = t->old_conn;
        c->seq = t->seq;
        c->nent = t->n;
        for (size_t i = 0; i < t->n && i < 16; i++)
            c->seqs[i] = t->e[i].seq;
    }
}

static void expired_cb(int status, const roost_sm_expired_t *x, size_t n, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->nexp = n;
    if (n) {
        c->exp_rec = x[0].rec != NULL;
        c->nent = x[0].n;
    }
}

static roost_store_t *registered(uv_loop_t *loop, const char *node, state_t *s)
{
    ctr_t c = { 0 };
    roost_store_t *st = store_up(loop, node, s);
    ck_assert_int_eq(roost_store_node_register(st, status_cb, &c), 0);
    ck_assert(wait_for(loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    return st;
}

static void push(uv_loop_t *loop, roost_store_t *st, const char *body, unsigned cap, ctr_t *c)
{
    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(roost_store_sm_push(st, BARE, RES, (const uint8_t *)body, strlen(body),
                                         (const uint8_t *)"ENV", 3, cap, push_cb, c), 0);
    ck_assert(wait_for(loop, &c->n, 1));
}

static void enable(uv_loop_t *loop, roost_store_t *st, const char *id, uint64_t conn,
                   unsigned tmo)
{
    ctr_t c = { 0 };
    ck_assert_int_eq(roost_store_sm_enable(st, BARE, RES, id, conn, tmo, status_cb, &c), 0);
    ck_assert(wait_for(loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
}

/* A session record owned by node/epoch/conn, written straight into Redis. */
static void put_record(const char *node, uint64_t epoch, uint64_t conn)
{
    roost_session_t r;
    uint8_t *v;
    size_t n;
    memset(&r, 0, sizeof(r));
    snprintf(r.node_id, sizeof(r.node_id), "%s", node);
    r.node_epoch = epoch;
    r.conn_id = conn;
    r.flags = ROOST_SESS_F_AVAILABLE | ROOST_SESS_F_SM;
    ck_assert_int_eq(roost_session_encode(&r, &v, &n), 0);
    redisContext *rc = sync_conn();
    redisReply *rep = redisCommand(rc, "HSET roost:sess:{" BARE "} " RES " %b", v, n);
    freeReplyObject(rep);
    rep = redisCommand(rc, "SADD roost:nodesess:%s " FULL, node);
    freeReplyObject(rep);
    redisFree(rc);
    free(v);
}

static redisReply *get_value(void)
{
    redisContext *rc = sync_conn();
    redisReply *r = redisCommand(rc, "HGET roost:sess:{" BARE "} " RES);
    redisFree(rc);
    return r;
}

START_TEST(push_numbers_publishes_and_caps)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c;
    uv_loop_init(&loop);
    flushall();
    roost_store_t *st = registered(&loop, "n1", &s);

    /* No state: nothing queued, the caller must deliver some other way. */
    push(&loop, st, "<message>0</message>", 10, &c);
    ck_assert_int_eq(c.status, ROOST_ENOTFOUND);

    enable(&loop, st, "id1", 7, 60000);
    push(&loop, st, "<message>1</message>", 3, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.seq, 1);
    ck_assert_int_eq(c.receivers, 0);      /* nobody subscribed to roost:route:n1 */
    push(&loop, st, "<message>2</message>", 3, &c);
    push(&loop, st, "<message>3</message>", 3, &c);
    ck_assert_uint_eq(c.seq, 3);
    push(&loop, st, "<message>4</message>", 3, &c);
    ck_assert_int_eq(c.status, ROOST_ELIMIT);

    /* Acks trim; a range read returns the rest in order. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_ack(st, BARE, RES, 1, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_range(st, BARE, RES, 0, entries_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_uint_eq(c.nent, 2);
    ck_assert_uint_eq(c.seqs[0], 2);
    ck_assert_uint_eq(c.seqs[1], 3);
    ck_assert_str_eq(c.first, "<message>2</message>");
    close_all(&loop, st);
}
END_TEST

START_TEST(detach_and_h_are_fenced_by_connection)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };
    uv_loop_init(&loop);
    flushall();
    roost_store_t *st = registered(&loop, "n1", &s);
    enable(&loop, st, "id1", 7, 60000);

    ck_assert_int_eq(roost_store_sm_detach(st, BARE, RES, 8, 5, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, ROOST_ESTALE);          /* another connection's */

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_save_h(st, BARE, RES, 7, 4, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_detach(st, BARE, RES, 7, 5, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_detach(st, BARE, RES, 7, 6, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, ROOST_ESTALE);          /* already detached */

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_get(st, BARE, RES, get_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert(c.have_st);
    ck_assert(c.st.detached);
    ck_assert_uint_eq(c.st.h_in, 5);
    ck_assert_str_eq(c.st.id, "id1");

    /* A detached session still takes stanzas, without publishing. */
    push(&loop, st, "<message>late</message>", 10, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_int_eq(c.receivers, 0);
    redisContext *rc = sync_conn();
    ck_assert_int_eq(sync_int(rc, "ZCARD roost:smdeadline"), 1);
    redisFree(rc);
    close_all(&loop, st);
}
END_TEST

START_TEST(takeover_on_another_node)
{
    uv_loop_t loop;
    state_t s1 = { 0 }, s2 = { 0 };
    ctr_t c;
    uv_loop_init(&loop);
    flushall();
    roost_store_t *a = registered(&loop, "n1", &s1);
    roost_store_t *b = registered(&loop, "n2", &s2);
    put_record("n1", roost_store_node_epoch(a), 7);
    enable(&loop, a, "id1", 7, 60000);
    for (int i = 1; i <= 4; i++)
        push(&loop, a, "<message/>", 100, &c);

    redisReply *old = get_value();
    ck_assert_int_eq(old->type, REDIS_REPLY_STRING);
    /* A wrong id is not found; a stale expected value is a conflict. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_takeover(b, BARE, RES, "other", 0, (uint8_t *)old->str,
                                             old->len, (uint8_t *)"x", 1, 9, takeover_cb, &c),
                     0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, ROOST_ENOTFOUND);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_takeover(b, BARE, RES, "id1", 0, (uint8_t *)"stale", 5,
                                             (uint8_t *)"x", 1, 9, takeover_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, ROOST_ECONFLICT);

    /* The client had 2: stanzas 3 and 4 come back; n2 owns it now. */
    roost_session_t nr;
    uint8_t *nv;
    size_t nn;
    ck_assert_int_eq(roost_session_decode(&nr, RES, (uint8_t *)old->str, old->len), 0);
    snprintf(nr.node_id, sizeof(nr.node_id), "n2");
    nr.node_epoch = roost_store_node_epoch(b);
    nr.conn_id = 9;
    ck_assert_int_eq(roost_session_encode(&nr, &nv, &nn), 0);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_takeover(b, BARE, RES, "id1", 2, (uint8_t *)old->str,
                                             old->len, nv, nn, 9, takeover_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    ck_assert_str_eq(c.old_node, "n1");
    ck_assert_uint_eq(c.old_conn, 7);
    ck_assert_uint_eq(c.seq, 4);
    ck_assert_uint_eq(c.nent, 2);
    ck_assert_uint_eq(c.seqs[0], 3);
    ck_assert_uint_eq(c.seqs[1], 4);
    freeReplyObject(old);
    free(nv);
    roost_session_clear(&nr);

    /* The old owner can no longer detach or end it. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_detach(a, BARE, RES, 7, 0, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, ROOST_ESTALE);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_end(a, BARE, RES, 7, entries_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, ROOST_ESTALE);

    /* Numbering goes on for the new owner. */
    push(&loop, a, "<message/>", 100, &c);
    ck_assert_uint_eq(c.seq, 5);
    roost_store_free(a);
    close_all(&loop, b);
}
END_TEST

START_TEST(end_leaves_a_tombstone_with_h)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c;
    uv_loop_init(&loop);
    flushall();
    roost_store_t *st = registered(&loop, "n1", &s);
    enable(&loop, st, "id1", 7, 60000);
    push(&loop, st, "<message>q</message>", 10, &c);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_save_h(st, BARE, RES, 7, 3, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_end(st, BARE, RES, 7, entries_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.nent, 1);                       /* handed back once */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_end(st, BARE, RES, 0, entries_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_uint_eq(c.nent, 0);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_get(st, BARE, RES, get_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert(c.have_st && c.st.gone);
    ck_assert_uint_eq(c.st.h_in, 3);
    push(&loop, st, "<message/>", 10, &c);
    ck_assert_int_eq(c.status, ROOST_ENOTFOUND);
    redisContext *rc = sync_conn();
    long long ttl = sync_int(rc, "TTL roost:sm:{" BARE "}:" RES);
    ck_assert(ttl > 0 && ttl <= 600);
    redisFree(rc);
    close_all(&loop, st);
}
END_TEST

START_TEST(expiry_is_taken_once)
{
    uv_loop_t loop;
    state_t s1 = { 0 }, s2 = { 0 };
    ctr_t c = { 0 }, d = { 0 };
    uv_loop_init(&loop);
    flushall();
    roost_store_t *a = registered(&loop, "n1", &s1);
    roost_store_t *b = registered(&loop, "n2", &s2);
    put_record("n1", roost_store_node_epoch(a), 7);
    enable(&loop, a, "id1", 7, 1);                      /* 1 ms */
    push(&loop, a, "<message>x</message>", 10, &c);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_detach(a, BARE, RES, 7, 0, status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    /* Both nodes sweep at once: exactly one gets it, with record and queue. */
    memset(&c, 0, sizeof(c));
    uv_sleep(5);
    ck_assert_int_eq(roost_store_sm_expire(a, 10, expired_cb, &c), 0);
    ck_assert_int_eq(roost_store_sm_expire(b, 10, expired_cb, &d), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert(wait_for(&loop, &d.n, 1));
    ck_assert_uint_eq(c.nexp + d.nexp, 1);
    ck_assert_int_eq(c.nexp ? c.exp_rec : d.exp_rec, 1);
    ck_assert_uint_eq(c.nexp ? c.nent : d.nent, 1);
    redisReply *v = get_value();
    ck_assert_int_eq(v->type, REDIS_REPLY_NIL);         /* the record went too */
    freeReplyObject(v);
    roost_store_free(a);
    close_all(&loop, b);
}
END_TEST

static void reap_cb(int status, const roost_cluster_reaped_t *recs, size_t n, int done,
                    const char *cursor, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->nexp = n;
}

START_TEST(reaper_detaches_instead_of_removing)
{
    uv_loop_t loop;
    state_t s1 = { 0 }, s2 = { 0 };
    ctr_t c;
    uv_loop_init(&loop);
    flushall();
    roost_store_t *a = registered(&loop, "n1", &s1);
    roost_store_t *b = registered(&loop, "n2", &s2);
    put_record("n1", roost_store_node_epoch(a), 7);
    enable(&loop, a, "id1", 7, 60000);
    /* n1 dies: its lease is gone. */
    redisContext *rc = sync_conn();
    sync_cmd(rc, "DEL roost:node:n1");
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_cluster_reap(b, "n1", 0, "0", reap_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.nexp, 0);                       /* nothing reported removed */
    redisReply *v = get_value();
    ck_assert_int_eq(v->type, REDIS_REPLY_STRING);      /* the record stays */
    freeReplyObject(v);
    ck_assert_int_eq(sync_int(rc, "ZCARD roost:smdeadline"), 1);
    ck_assert_int_eq(sync_int(rc, "SCARD roost:nodesess:n1"), 0);
    redisFree(rc);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_get(b, BARE, RES, get_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert(c.have_st && c.st.detached);
    roost_store_free(a);
    close_all(&loop, b);
}
END_TEST

START_TEST(grace_keeps_the_record_with_a_queue)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };
    uv_loop_init(&loop);
    flushall();
    roost_store_t *st = registered(&loop, "n1", &s);
    put_record("n1", roost_store_node_epoch(st), 7);
    redisReply *old = get_value();
    /* Another connection's record: refused. */
    ck_assert_int_eq(roost_store_sm_grace(st, BARE, RES, 8, 30000, (uint8_t *)old->str, old->len,
                                          status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, ROOST_ESTALE);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_grace(st, BARE, RES, 7, 30000, (uint8_t *)old->str, old->len,
                                          status_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
    freeReplyObject(old);
    push(&loop, st, "<message>meanwhile</message>", 10, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_int_eq(c.receivers, 0);
    /* Not resumable: no id to take it over with. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_takeover(st, BARE, RES, "", 0, (uint8_t *)"a", 1,
                                             (uint8_t *)"b", 1, 9, takeover_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_int_eq(c.status, ROOST_ENOTFOUND);
    /* A new bind takes the queue over. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(roost_store_sm_end(st, BARE, RES, 0, entries_cb, &c), 0);
    ck_assert(wait_for(&loop, &c.n, 1));
    ck_assert_uint_eq(c.nent, 1);
    ck_assert_str_eq(c.first, "<message>meanwhile</message>");
    close_all(&loop, st);
}
END_TEST

int main(void)
{
    if (redis_port_init() != 0)
        return 1;
    Suite *s = suite_create("sm");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, push_numbers_publishes_and_caps);
    tcase_add_test(tc, detach_and_h_are_fenced_by_connection);
    tcase_add_test(tc, takeover_on_another_node);
    tcase_add_test(tc, end_leaves_a_tombstone_with_h);
    tcase_add_test(tc, expiry_is_taken_once);
    tcase_add_test(tc, reaper_detaches_instead_of_removing);
    tcase_add_test(tc, grace_keeps_the_record_with_a_queue);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
