/* Roster, pending subscriptions, multi-user sessions, offline messages and
 * block lists against a real redis-server (tests/with-redis.sh). Every
 * callback is counted and must run exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/roost.pb-c.h"
#include "store/blocklist.h"
#include "store/error.h"
#include "store/offline.h"
#include "store/roster.h"
#include "store/store.h"
#include "tests/integration/testutil.h"

#define SLOTS 8

/* ---- harness ------------------------------------------------------------ */

typedef struct {
    int n;                      /* how many times the callback ran */
    int status;
    uint64_t ver;
    long long count;
    int found;
    roost_roster_item_t items[SLOTS];
    size_t nitems;
    char *strs[SLOTS];          /* jids / contacts */
    uint8_t *blobs[SLOTS];      /* stanzas */
    size_t lens[SLOTS];
    uint64_t stamps[SLOTS];
    size_t nstrs;
    /* sessions_multi */
    size_t users;
    size_t offs[SLOTS], counts[SLOTS];
    char *res[SLOTS];
    size_t nres;
} ctr_t;

static void ctr_clear(ctr_t *c)
{
    for (size_t i = 0; i < SLOTS; i++) {
        roost_roster_item_clear(&c->items[i]);
        free(c->strs[i]);
        free(c->blobs[i]);
        free(c->res[i]);
    }
    memset(c, 0, sizeof(*c));
}

/* ---- callbacks ---------------------------------------------------------- */

static void status_cb(int status, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
}

static void roster_cb(int status, const roost_roster_item_t *items, size_t n, uint64_t ver,
                      void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->ver = ver;
    c->nitems = n;
    for (size_t i = 0; i < n && i < SLOTS; i++)
        ck_assert_int_eq(roost_roster_item_copy(&c->items[i], &items[i]), 0);
}

static void item_cb(int status, const roost_roster_item_t *item, uint64_t ver, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->ver = ver;
    c->found = item != NULL;
    if (item)
        ck_assert_int_eq(roost_roster_item_copy(&c->items[0], item), 0);
}

static void subin_cb(int status, const char *const *contacts, const uint8_t *const *stanzas,
                     const size_t *lens, size_t n, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->nstrs = n;
    for (size_t i = 0; i < n && i < SLOTS; i++) {
        c->strs[i] = strdup(contacts[i]);
        c->blobs[i] = malloc(lens[i]);
        memcpy(c->blobs[i], stanzas[i], lens[i]);
        c->lens[i] = lens[i];
    }
}

static void multi_cb(int status, const roost_session_t *recs, const size_t *offs,
                     const size_t *counts, size_t n, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->users = n;
    for (size_t i = 0; i < n && i < SLOTS; i++) {
        c->offs[i] = offs[i];
        c->counts[i] = counts[i];
    }
    c->nres = n ? offs[n - 1] + counts[n - 1] : 0;
    for (size_t i = 0; i < c->nres && i < SLOTS; i++)
        c->res[i] = strdup(recs[i].resource);
}

static void offline_cb(int status, const uint8_t *const *stanzas, const size_t *lens,
                       const uint64_t *stamps, size_t n, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->nstrs = n;
    for (size_t i = 0; i < n && i < SLOTS; i++) {
        c->blobs[i] = malloc(lens[i]);
        memcpy(c->blobs[i], stanzas[i], lens[i]);
        c->lens[i] = lens[i];
        c->stamps[i] = stamps[i];
    }
}

static void count_cb(int status, long long count, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->count = count;
}

static void block_cb(int status, const char *const *jids, size_t n, void *data)
{
    ctr_t *c = data;
    c->n++;
    c->status = status;
    c->nstrs = n;
    for (size_t i = 0; i < n && i < SLOTS; i++)
        c->strs[i] = strdup(jids[i]);
}

/* ---- helpers ------------------------------------------------------------ */

static roost_roster_item_t mkitem(const char *jid, const char *name, roost_sub_t sub)
{
    roost_roster_item_t it;
    memset(&it, 0, sizeof(it));
    it.jid = (char *)jid;
    it.name = (char *)name;
    it.sub = sub;
    return it;
}

/* One CAS; the callback must have run exactly once. */
static void cas(uv_loop_t *loop, roost_store_t *st, const char *contact,
                const roost_roster_item_t *exp, const roost_roster_item_t *next, unsigned max,
                ctr_t *c)
{
    ctr_clear(c);
    ck_assert_int_eq(roost_store_roster_cas(st, "alice@localhost", contact, exp, next, max,
                                            item_cb, c),
                     0);
    ck_assert_int_eq(c->n, 0);   /* never on the caller's stack */
    ck_assert(wait_for(loop, &c->n, 1));
    ck_assert_int_eq(c->n, 1);
}

static void item_get(uv_loop_t *loop, roost_store_t *st, const char *contact, ctr_t *c)
{
    ctr_clear(c);
    ck_assert_int_eq(roost_store_roster_item_get(st, "alice@localhost", contact, item_cb, c), 0);
    ck_assert(wait_for(loop, &c->n, 1));
}

static void roster_get(uv_loop_t *loop, roost_store_t *st, ctr_t *c)
{
    ctr_clear(c);
    ck_assert_int_eq(roost_store_roster_get(st, "alice@localhost", roster_cb, c), 0);
    ck_assert_int_eq(c->n, 0);
    ck_assert(wait_for(loop, &c->n, 1));
}

static void wait_status(uv_loop_t *loop, ctr_t *c, int rc)
{
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(c->n, 0);
    ck_assert(wait_for(loop, &c->n, 1));
    ck_assert_int_eq(c->n, 1);
}

/* ---- roster ------------------------------------------------------------- */

START_TEST(roster_cas_cycle)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);

    roster_get(&loop, st, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.nitems, 0);
    ck_assert_uint_eq(c.ver, 0);

    /* add */
    roost_roster_item_t a = mkitem("bob@localhost", "Bob", ROOST_SUB_NONE);
    a.ask = 1;
    cas(&loop, st, "bob@localhost", NULL, &a, 10, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.ver, 1);
    ck_assert(!c.found);
    item_get(&loop, st, "bob@localhost", &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert(c.found);
    ck_assert_str_eq(c.items[0].name, "Bob");
    ck_assert_int_eq(c.items[0].ask, 1);
    ck_assert_uint_eq(c.ver, 1);

    /* update */
    roost_roster_item_t b = mkitem("bob@localhost", "Bobby", ROOST_SUB_TO);
    cas(&loop, st, "bob@localhost", &a, &b, 10, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.ver, 2);

    /* stale expected: conflict with what is stored now */
    roost_roster_item_t x = mkitem("bob@localhost", "X", ROOST_SUB_BOTH);
    cas(&loop, st, "bob@localhost", &a, &x, 10, &c);
    ck_assert_int_eq(c.status, ROOST_ECONFLICT);
    ck_assert(c.found);
    ck_assert_str_eq(c.items[0].name, "Bobby");
    ck_assert_int_eq(c.items[0].sub, ROOST_SUB_TO);
    ck_assert_uint_eq(c.ver, 2);

    /* expected absent, but it is there */
    cas(&loop, st, "bob@localhost", NULL, &x, 10, &c);
    ck_assert_int_eq(c.status, ROOST_ECONFLICT);
    ck_assert(c.found);
    ck_assert_str_eq(c.items[0].name, "Bobby");

    /* expected present, but absent */
    roost_roster_item_t z = mkitem("zed@localhost", NULL, ROOST_SUB_NONE);
    cas(&loop, st, "zed@localhost", &z, NULL, 10, &c);
    ck_assert_int_eq(c.status, ROOST_ECONFLICT);
    ck_assert(!c.found);
    ck_assert_uint_eq(c.ver, 2);

    roster_get(&loop, st, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.nitems, 1);
    ck_assert_str_eq(c.items[0].jid, "bob@localhost");
    ck_assert_uint_eq(c.ver, 2);

    /* delete */
    cas(&loop, st, "bob@localhost", &b, NULL, 10, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.ver, 3);
    item_get(&loop, st, "bob@localhost", &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert(!c.found);
    ck_assert_uint_eq(c.ver, 3);
    /* deleting what is absent changes nothing, not even the version */
    cas(&loop, st, "bob@localhost", NULL, NULL, 10, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.ver, 3);

    /* an item filed under another contact is refused up front */
    ctr_clear(&c);
    ck_assert_int_eq(roost_store_roster_cas(st, "alice@localhost", "eve@localhost", NULL, &a, 10,
                                            item_cb, &c),
                     ROOST_EINVAL);
    redisContext *rc = sync_conn();
    ck_assert_int_eq(sync_int(rc, "HLEN roost:roster:{alice@localhost}"), 0);
    redisFree(rc);
    close_all(&loop, st);
    ck_assert_int_eq(c.n, 0);
    ctr_clear(&c);
}
END_TEST

START_TEST(roster_limit)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);
    roost_roster_item_t a = mkitem("a@localhost", NULL, ROOST_SUB_NONE);
    roost_roster_item_t b = mkitem("b@localhost", NULL, ROOST_SUB_NONE);
    roost_roster_item_t cc = mkitem("c@localhost", NULL, ROOST_SUB_NONE);
    cas(&loop, st, "a@localhost", NULL, &a, 2, &c);
    ck_assert_int_eq(c.status, 0);
    cas(&loop, st, "b@localhost", NULL, &b, 2, &c);
    ck_assert_int_eq(c.status, 0);
    cas(&loop, st, "c@localhost", NULL, &cc, 2, &c);
    ck_assert_int_eq(c.status, ROOST_ELIMIT);
    /* a full roster still allows changes to existing items */
    roost_roster_item_t a2 = mkitem("a@localhost", "A", ROOST_SUB_BOTH);
    cas(&loop, st, "a@localhost", &a, &a2, 2, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.ver, 3);
    roster_get(&loop, st, &c);
    ck_assert_uint_eq(c.nitems, 2);
    ck_assert_uint_eq(c.ver, 3);
    close_all(&loop, st);
    ctr_clear(&c);
}
END_TEST

START_TEST(roster_unknown_fields_and_corrupt)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };
    uint8_t *v;
    size_t n;

    flushall();
    /* A newer writer stored bob with field 20 we do not know. */
    roost_roster_item_t a = mkitem("bob@localhost", "Bob", ROOST_SUB_FROM);
    ck_assert_int_eq(roost_roster_item_encode(&a, &v, &n), 0);
    uint8_t *nv = malloc(n + 3);
    ck_assert_ptr_nonnull(nv);
    memcpy(nv, v, n);
    memcpy(nv + n, "\xa0\x01\x2a", 3);
    free(v);
    redisContext *rc = sync_conn();
    redisReply *r = redisCommand(rc, "HSET roost:roster:{alice@localhost} bob@localhost %b",
                                 nv, n + 3);
    freeReplyObject(r);
    sync_cmd(rc, "HSET roost:roster:{alice@localhost} junk@localhost garbage");
    sync_cmd(rc, "SET roost:rosterver:{alice@localhost} 41");

    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);
    roster_get(&loop, st, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.nitems, 1);   /* the corrupt one is skipped */
    ck_assert_uint_eq(c.ver, 41);
    ck_assert_ptr_nonnull(c.items[0].unknown);

    /* read-modify-write through the CAS keeps field 20 */
    roost_roster_item_t cur, next;
    ck_assert_int_eq(roost_roster_item_copy(&cur, &c.items[0]), 0);
    ck_assert_int_eq(roost_roster_item_copy(&next, &cur), 0);
    next.sub = ROOST_SUB_BOTH;
    cas(&loop, st, "bob@localhost", &cur, &next, 10, &c);
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.ver, 42);
    r = redisCommand(rc, "HGET roost:roster:{alice@localhost} bob@localhost");
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    Roost__RosterItem *m = roost__roster_item__unpack(NULL, r->len, (const uint8_t *)r->str);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->subscription, 3);
    ck_assert_uint_eq(m->base.n_unknown_fields, 1);
    ck_assert_uint_eq(m->base.unknown_fields[0].tag, 20);
    roost__roster_item__free_unpacked(m, NULL);
    freeReplyObject(r);

    /* a corrupt stored item is not a conflict the caller could resolve */
    roost_roster_item_t j = mkitem("junk@localhost", NULL, ROOST_SUB_NONE);
    cas(&loop, st, "junk@localhost", NULL, &j, 10, &c);
    ck_assert_int_eq(c.status, ROOST_EINVAL);
    ck_assert(!c.found);

    roost_roster_item_clear(&cur);
    roost_roster_item_clear(&next);
    redisFree(rc);
    free(nv);
    close_all(&loop, st);
    ctr_clear(&c);
}
END_TEST

/* ---- pending subscriptions ---------------------------------------------- */

static void subin_put(uv_loop_t *loop, roost_store_t *st, const char *contact, const char *xml,
                      size_t max, ctr_t *c)
{
    ctr_clear(c);
    wait_status(loop, c, roost_store_subin_put(st, "alice@localhost", contact,
                                               (const uint8_t *)xml, strlen(xml), max,
                                               status_cb, c));
}

static void subin_list(uv_loop_t *loop, roost_store_t *st, ctr_t *c)
{
    ctr_clear(c);
    wait_status(loop, c, roost_store_subin_list(st, "alice@localhost", subin_cb, c));
    ck_assert_int_eq(c->status, 0);
}

/* Index of contact in c->strs or -1. */
static int find_str(const ctr_t *c, const char *s)
{
    for (size_t i = 0; i < c->nstrs && i < SLOTS; i++)
        if (strcmp(c->strs[i], s) == 0)
            return (int)i;
    return -1;
}

START_TEST(subin_put_del_list)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);
    subin_list(&loop, st, &c);
    ck_assert_uint_eq(c.nstrs, 0);

    subin_put(&loop, st, "bob@localhost", "<presence type='subscribe' id='1'/>", 2, &c);
    ck_assert_int_eq(c.status, 0);
    subin_put(&loop, st, "carol@localhost", "<presence type='subscribe'/>", 2, &c);
    ck_assert_int_eq(c.status, 0);
    /* full, but a newer request from a known contact replaces the old one */
    subin_put(&loop, st, "bob@localhost", "<presence type='subscribe' id='2'/>", 2, &c);
    ck_assert_int_eq(c.status, 0);
    subin_put(&loop, st, "dave@localhost", "<presence type='subscribe'/>", 2, &c);
    ck_assert_int_eq(c.status, ROOST_ELIMIT);

    subin_list(&loop, st, &c);
    ck_assert_uint_eq(c.nstrs, 2);
    int i = find_str(&c, "bob@localhost");
    ck_assert_int_ge(i, 0);
    const char *want = "<presence type='subscribe' id='2'/>";
    ck_assert_uint_eq(c.lens[i], strlen(want));
    ck_assert_int_eq(memcmp(c.blobs[i], want, strlen(want)), 0);
    ck_assert_int_ge(find_str(&c, "carol@localhost"), 0);

    ctr_clear(&c);
    wait_status(&loop, &c, roost_store_subin_del(st, "alice@localhost", "bob@localhost",
                                                 status_cb, &c));
    ck_assert_int_eq(c.status, 0);
    ctr_clear(&c);
    wait_status(&loop, &c, roost_store_subin_del(st, "alice@localhost", "nobody@localhost",
                                                 status_cb, &c));
    ck_assert_int_eq(c.status, 0);
    subin_list(&loop, st, &c);
    ck_assert_uint_eq(c.nstrs, 1);
    ck_assert_str_eq(c.strs[0], "carol@localhost");
    subin_put(&loop, st, "dave@localhost", "<presence type='subscribe'/>", 2, &c);
    ck_assert_int_eq(c.status, 0);

    ctr_clear(&c);
    ck_assert_int_eq(roost_store_subin_put(st, "alice@localhost", "x@localhost",
                                           (const uint8_t *)"", 0, 2, status_cb, &c),
                     ROOST_EINVAL);
    close_all(&loop, st);
    ck_assert_int_eq(c.n, 0);
    ctr_clear(&c);
}
END_TEST

/* ---- sessions of many users --------------------------------------------- */

static void bind_cb(int status, const roost_session_t *replaced, void *data)
{
    ctr_t *c = data;
    (void)replaced;
    c->n++;
    c->status = status;
}

static void bind_ok(uv_loop_t *loop, roost_store_t *st, const char *bare, const char *res)
{
    roost_session_t r;
    ctr_t c = { 0 };

    fake_lease("n1", 1);

    memset(&r, 0, sizeof(r));
    strcpy(r.node_id, "n1");
    r.node_epoch = 1;
    r.conn_id = 9;
    r.resource = (char *)res;
    r.flags = ROOST_SESS_F_AVAILABLE;
    ck_assert_int_eq(roost_store_session_bind(st, bare, &r, 10, bind_cb, &c), 0);
    ck_assert(wait_for(loop, &c.n, 1));
    ck_assert_int_eq(c.status, 0);
}

START_TEST(sessions_multi_users)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);
    bind_ok(&loop, st, "alice@localhost", "phone");
    bind_ok(&loop, st, "alice@localhost", "pc");
    bind_ok(&loop, st, "carol@localhost", "tab");
    redisContext *rc = sync_conn();
    sync_cmd(rc, "HSET roost:sess:{carol@localhost} broken garbage");

    const char *users[] = { "alice@localhost", "bob@localhost", "carol@localhost" };
    wait_status(&loop, &c, roost_store_sessions_multi(st, users, 3, multi_cb, &c));
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.users, 3);
    ck_assert_uint_eq(c.offs[0], 0);
    ck_assert_uint_eq(c.counts[0], 2);
    ck_assert_uint_eq(c.offs[1], 2);
    ck_assert_uint_eq(c.counts[1], 0);
    ck_assert_uint_eq(c.offs[2], 2);
    ck_assert_uint_eq(c.counts[2], 1);   /* the broken record is skipped */
    ck_assert_uint_eq(c.nres, 3);
    ck_assert((strcmp(c.res[0], "phone") == 0 && strcmp(c.res[1], "pc") == 0)
              || (strcmp(c.res[0], "pc") == 0 && strcmp(c.res[1], "phone") == 0));
    ck_assert_str_eq(c.res[2], "tab");

    /* no users: still one async answer */
    ctr_clear(&c);
    wait_status(&loop, &c, roost_store_sessions_multi(st, NULL, 0, multi_cb, &c));
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.users, 0);

    /* the full 1024 fit one call; 1025 do not */
    const char **many = calloc(1025, sizeof(*many));
    ck_assert_ptr_nonnull(many);
    for (size_t i = 0; i < 1025; i++)
        many[i] = i == 1000 ? "carol@localhost" : "nobody@localhost";
    ctr_clear(&c);
    ck_assert_int_eq(roost_store_sessions_multi(st, many, 1025, multi_cb, &c), ROOST_EINVAL);
    wait_status(&loop, &c, roost_store_sessions_multi(st, many, 1024, multi_cb, &c));
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.users, 1024);
    ck_assert_uint_eq(c.nres, 1);
    ck_assert_str_eq(c.res[0], "tab");
    ck_assert_uint_eq(c.offs[7], 0);   /* users before carol hold nothing */
    free(many);
    redisFree(rc);
    close_all(&loop, st);
    ck_assert_int_eq(c.n, 1);
    ctr_clear(&c);
}
END_TEST

/* ---- offline ------------------------------------------------------------ */

static void push(uv_loop_t *loop, roost_store_t *st, const char *xml, uint64_t stamp, size_t max,
                 ctr_t *c)
{
    ctr_clear(c);
    wait_status(loop, c, roost_store_offline_push(st, "alice@localhost", (const uint8_t *)xml,
                                                  strlen(xml), stamp, max, status_cb, c));
}

static long long offline_count(uv_loop_t *loop, roost_store_t *st)
{
    ctr_t c = { 0 };
    wait_status(loop, &c, roost_store_offline_count(st, "alice@localhost", count_cb, &c));
    ck_assert_int_eq(c.status, 0);
    return c.count;
}

START_TEST(offline_push_take)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };
    const char *msgs[] = { "<message>1</message>", "<message>two</message>", "<m>3</m>" };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);
    ck_assert_int_eq(offline_count(&loop, st), 0);
    for (int i = 0; i < 3; i++) {
        push(&loop, st, msgs[i], 1700000000000ull + (uint64_t)i, 3, &c);
        ck_assert_int_eq(c.status, 0);
    }
    push(&loop, st, "<m>overflow</m>", 1, 3, &c);
    ck_assert_int_eq(c.status, ROOST_ELIMIT);
    ck_assert_int_eq(offline_count(&loop, st), 3);
    /* storage disabled */
    push(&loop, st, "<m/>", 1, 0, &c);
    ck_assert_int_eq(c.status, ROOST_ELIMIT);

    ctr_clear(&c);
    wait_status(&loop, &c, roost_store_offline_take(st, "alice@localhost", offline_cb, &c));
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.nstrs, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(c.lens[i], strlen(msgs[i]));
        ck_assert_int_eq(memcmp(c.blobs[i], msgs[i], c.lens[i]), 0);
        ck_assert(c.stamps[i] == 1700000000000ull + (uint64_t)i);
    }
    ck_assert_int_eq(offline_count(&loop, st), 0);
    redisContext *rc = sync_conn();
    ck_assert_int_eq(sync_int(rc, "EXISTS roost:offline:{alice@localhost}"), 0);

    ctr_clear(&c);
    wait_status(&loop, &c, roost_store_offline_take(st, "alice@localhost", offline_cb, &c));
    ck_assert_int_eq(c.status, 0);
    ck_assert_uint_eq(c.nstrs, 0);

    /* a stored entry too short to hold a stamp is skipped */
    push(&loop, st, "<m>ok</m>", 5, 3, &c);
    sync_cmd(rc, "RPUSH roost:offline:{alice@localhost} short");
    ctr_clear(&c);
    wait_status(&loop, &c, roost_store_offline_take(st, "alice@localhost", offline_cb, &c));
    ck_assert_uint_eq(c.nstrs, 1);
    ck_assert(c.stamps[0] == 5);
    ck_assert_int_eq(sync_int(rc, "EXISTS roost:offline:{alice@localhost}"), 0);

    ctr_clear(&c);
    ck_assert_int_eq(roost_store_offline_push(st, "alice@localhost", (const uint8_t *)"", 0, 1, 5,
                                              status_cb, &c),
                     ROOST_EINVAL);
    redisFree(rc);
    close_all(&loop, st);
    ck_assert_int_eq(c.n, 0);
    ctr_clear(&c);
}
END_TEST

/* ---- block list --------------------------------------------------------- */

static void block_get(uv_loop_t *loop, roost_store_t *st, ctr_t *c)
{
    ctr_clear(c);
    wait_status(loop, c, roost_store_blocklist_get(st, "alice@localhost", block_cb, c));
    ck_assert_int_eq(c->status, 0);
}

static void block_add(uv_loop_t *loop, roost_store_t *st, const char *const *jids, size_t n,
                      size_t max, ctr_t *c)
{
    ctr_clear(c);
    wait_status(loop, c, roost_store_blocklist_add(st, "alice@localhost", jids, n, max,
                                                   status_cb, c));
}

START_TEST(blocklist_cycle)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t c = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);
    block_get(&loop, st, &c);
    ck_assert_uint_eq(c.nstrs, 0);

    const char *first[] = { "zed@localhost", "evil.example" };
    block_add(&loop, st, first, 2, 3, &c);
    ck_assert_int_eq(c.status, 0);
    block_get(&loop, st, &c);
    ck_assert_uint_eq(c.nstrs, 2);
    ck_assert_str_eq(c.strs[0], "evil.example");   /* sorted */
    ck_assert_str_eq(c.strs[1], "zed@localhost");

    /* one already there, one repeated: only one new member counts */
    const char *second[] = { "zed@localhost", "bob@localhost/pc", "bob@localhost/pc" };
    block_add(&loop, st, second, 3, 3, &c);
    ck_assert_int_eq(c.status, 0);
    const char *third[] = { "mallory@localhost" };
    block_add(&loop, st, third, 1, 3, &c);
    ck_assert_int_eq(c.status, ROOST_ELIMIT);
    block_add(&loop, st, first, 2, 3, &c);   /* nothing new: fits */
    ck_assert_int_eq(c.status, 0);
    block_get(&loop, st, &c);
    ck_assert_uint_eq(c.nstrs, 3);
    ck_assert_str_eq(c.strs[0], "bob@localhost/pc");

    const char *rm[] = { "evil.example", "nobody@localhost" };
    ctr_clear(&c);
    wait_status(&loop, &c, roost_store_blocklist_remove(st, "alice@localhost", rm, 2, status_cb,
                                                        &c));
    ck_assert_int_eq(c.status, 0);
    block_get(&loop, st, &c);
    ck_assert_uint_eq(c.nstrs, 2);
    ck_assert_str_eq(c.strs[0], "bob@localhost/pc");
    ck_assert_str_eq(c.strs[1], "zed@localhost");

    ctr_clear(&c);
    wait_status(&loop, &c, roost_store_blocklist_remove(st, "alice@localhost", NULL, 0, status_cb,
                                                        &c));
    ck_assert_int_eq(c.status, 0);
    block_get(&loop, st, &c);
    ck_assert_uint_eq(c.nstrs, 0);
    redisContext *rc = sync_conn();
    ck_assert_int_eq(sync_int(rc, "EXISTS roost:block:{alice@localhost}"), 0);
    redisFree(rc);

    ctr_clear(&c);
    ck_assert_int_eq(roost_store_blocklist_add(st, "alice@localhost", first, 0, 3, status_cb, &c),
                     ROOST_EINVAL);
    const char *empty[] = { "" };
    ck_assert_int_eq(roost_store_blocklist_add(st, "alice@localhost", empty, 1, 3, status_cb, &c),
                     ROOST_EINVAL);
    close_all(&loop, st);
    ck_assert_int_eq(c.n, 0);
    ctr_clear(&c);
}
END_TEST

/* ---- script cache flushed ----------------------------------------------- */

START_TEST(noscript_fallback)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t g = { 0 }, k = { 0 }, p = { 0 }, b = { 0 }, m = { 0 }, t = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);
    /* Load every script once, then make Redis forget them. */
    roster_get(&loop, st, &g);
    roost_roster_item_t a = mkitem("bob@localhost", NULL, ROOST_SUB_NONE);
    cas(&loop, st, "bob@localhost", NULL, &a, 10, &k);
    ck_assert_int_eq(k.status, 0);
    redisContext *rc = sync_conn();
    sync_cmd(rc, "SCRIPT FLUSH");

    for (int round = 0; round < 2; round++) {
        const char *jids[] = { "x@localhost" };
        const char *users[] = { "alice@localhost" };
        ctr_clear(&g);
        ctr_clear(&k);
        ctr_clear(&p);
        ctr_clear(&b);
        ctr_clear(&m);
        ctr_clear(&t);
        ck_assert_int_eq(roost_store_roster_get(st, "alice@localhost", roster_cb, &g), 0);
        ck_assert_int_eq(roost_store_roster_cas(st, "alice@localhost", "bob@localhost", &a, &a,
                                                10, item_cb, &k),
                         0);
        ck_assert_int_eq(roost_store_offline_push(st, "alice@localhost", (const uint8_t *)"<m/>",
                                                  4, 1, 10, status_cb, &p),
                         0);
        ck_assert_int_eq(roost_store_blocklist_add(st, "alice@localhost", jids, 1, 10, status_cb,
                                                   &b),
                         0);
        ck_assert_int_eq(roost_store_sessions_multi(st, users, 1, multi_cb, &m), 0);
        ck_assert_int_eq(roost_store_offline_take(st, "alice@localhost", offline_cb, &t), 0);
        ck_assert(wait_for(&loop, &t.n, 1));
        ck_assert(wait_for(&loop, &m.n, 1));
        ck_assert_int_eq(g.n, 1);
        ck_assert_int_eq(g.status, 0);
        ck_assert_uint_eq(g.nitems, 1);
        ck_assert_int_eq(k.n, 1);
        ck_assert_int_eq(k.status, 0);
        ck_assert_int_eq(p.n, 1);
        ck_assert_int_eq(p.status, 0);
        ck_assert_int_eq(b.n, 1);
        ck_assert_int_eq(b.status, 0);
        ck_assert_int_eq(m.status, 0);
        ck_assert_uint_eq(m.users, 1);
        ck_assert_int_eq(t.status, 0);
        ck_assert_uint_eq(t.nstrs, 1);
    }
    redisFree(rc);
    close_all(&loop, st);
    ck_assert_int_eq(g.n + k.n + p.n + b.n + m.n + t.n, 6);
    ctr_clear(&g);
    ctr_clear(&k);
    ctr_clear(&p);
    ctr_clear(&b);
    ctr_clear(&m);
    ctr_clear(&t);
}
END_TEST

/* ---- cancel on free ------------------------------------------------------ */

START_TEST(free_cancels_once)
{
    uv_loop_t loop;
    state_t s = { 0 };
    ctr_t g = { 0 }, p = { 0 }, b = { 0 };

    flushall();
    uv_loop_init(&loop);
    roost_store_t *st = store_up(&loop, "n1", &s);
    ck_assert_int_eq(roost_store_roster_get(st, "alice@localhost", roster_cb, &g), 0);
    ck_assert_int_eq(roost_store_offline_count(st, "alice@localhost", count_cb, &p), 0);
    ck_assert_int_eq(roost_store_blocklist_get(st, "alice@localhost", block_cb, &b), 0);
    close_all(&loop, st);
    ck_assert_int_eq(g.n, 1);
    ck_assert_int_eq(g.status, ROOST_ECANCELED);
    ck_assert_int_eq(p.n, 1);
    ck_assert_int_eq(p.status, ROOST_ECANCELED);
    ck_assert_int_eq(b.n, 1);
    ck_assert_int_eq(b.status, ROOST_ECANCELED);
    ctr_clear(&g);
    ctr_clear(&p);
    ctr_clear(&b);
}
END_TEST

int main(void)
{
    if (redis_port_init() < 0)
        return 77;

    Suite *s = suite_create("store_im");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, roster_cas_cycle);
    tcase_add_test(tc, roster_limit);
    tcase_add_test(tc, roster_unknown_fields_and_corrupt);
    tcase_add_test(tc, subin_put_del_list);
    tcase_add_test(tc, sessions_multi_users);
    tcase_add_test(tc, offline_push_take);
    tcase_add_test(tc, blocklist_cycle);
    tcase_add_test(tc, noscript_fallback);
    tcase_add_test(tc, free_cancels_once);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
