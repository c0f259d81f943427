/* The async store: two hiredis links on the libuv loop (commands, pub/sub),
 * per-call deadlines (hiredis 0.14 has none), reconnect with backoff, and
 * the session/account/node operations on top of them. */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/time.h>

#include "proto/roost.pb-c.h"
#include "store/cache.h"
#include "store/cluster.h"
#include "store/error.h"
#include "store/keys.h"
#include "store/reply.h"
#include "store/scripts.h"
#include "store/store.h"
#include "store/store_int.h"
#include <openssl/sha.h>

#define LEASE_MS 10000     /* default first lease of roost:node:<id>; node/cluster.c renews */
#define SCRIPT_ARGS_MAX 1100 /* keys + args of one script call (sessions_multi: 1024 keys) */
#define ITER_MAX 10000000u /* refuse absurd stored SCRAM iteration counts */
#define CACHE_MAX 65536    /* users whose session hash / block list a node caches */
#define CACHE_TTL_MS 5000  /* bound on staleness from a writer that does not publish */

typedef struct call_s call_t;
typedef void (*call_fn)(call_t *c, int status, redisReply *r);

/* One pending user call. It is on the store's FIFO (ordered by deadline,
 * since every call gets the same timeout) until completed; hiredis keeps a
 * reference until it runs our reply wrapper, which frees it. */
struct call_s {
    call_t *prev, *next;
    roost_store_t *st;
    uint64_t deadline;
    uint64_t sent_ns;  /* uv_hrtime() when sent, for the observer */
    int done;          /* the user callback ran */
    int retried;       /* already re-sent as EVAL after NOSCRIPT */
    roost_script_id_t script;
    const char *script_text;     /* module script (roost_store_eval) or NULL */
    int argc;          /* > 0 for script calls: argv kept for the EVAL retry */
    const char **argv;
    size_t *argvlen;
    call_fn fn;
    union {
        roost_store_reply_cb reply;
        roost_store_status_cb status;
        roost_store_cred_cb cred;
        roost_store_bind_cb bind;
        roost_store_sessions_cb sessions;
        roost_store_session_cb session;
        roost_store_publish_cb publish;
    } cb;
    void *data;
    roost_hash_t hash;           /* cred_get */
    uint64_t conn_id;            /* bind: the binding connection */
    uint64_t epoch;              /* bind */
    char node_id[ROOST_NODE_ID_MAX + 1];
    char *resource;              /* bind, get */
    char *cache_key;             /* list: the key whose reply may fill the cache;
                                  * a write: the key whose invalidation it awaits */
    uint64_t ticket;
    int wait_inval;              /* a write: answer only once our sub link saw its
                                  * invalidation (see park_reply) */
    uint64_t inval_seq;          /* ... identified by this node's sequence number */
    redisReply *saved;           /* parked: a copy of the reply */
    uint64_t park_deadline;
};

/* One Redis connection. timer is the reconnect timer while ac is NULL and
 * the setup watchdog while ac is set but not ready. */
typedef struct {
    roost_store_t *st;
    redisAsyncContext *ac;
    int is_sub;
    int ready;
    int init_left;
    unsigned backoff;
    uv_timer_t timer;
} link_t;

struct roost_store_s {
    uv_loop_t *loop;
    char *host;
    int port;
    char *password;
    int db;
    unsigned timeout_ms, rmin, rmax;
    unsigned lease_ms;
    char node_id[ROOST_NODE_ID_MAX + 1];
    uint64_t epoch;
    roost_store_state_cb state_cb;
    void *state_data;
    roost_store_message_cb msg_cb;
    void *msg_data;
    char *channel;     /* roost:route:<node_id> once subscribed */
    int up;            /* last state reported to state_cb */
    int closing;
    int open_handles;
    link_t cmd, sub;
    uv_timer_t deadline;
    call_t *head, *tail;
    char sha[ROOST_SCRIPT_COUNT][ROOST_SCRIPT_SHA_LEN + 1];
    roost_store_observer_cb observer;
    void *observer_data;
    /* Read caches, live only while the sub link is subscribed to
     * ROOST_KEY_INVAL: without it an invalidation could be missed. */
    roost_cache_t *sess_cache;   /* roost:sess:{bare} -> sess_value_t */
    roost_cache_t *block_cache;  /* roost:block:{bare} -> roost_store_blocklist_t */
    int cache_live;
    int in_sub;                  /* inside the sub link's reply processing */
    int draining;                /* cache_sync is reading the sub link */
    /* Route messages read by cache_sync, delivered from the loop in order. */
    struct deferred_s *dq_head, *dq_tail;
    uv_timer_t dq_timer;
    /* Writes whose reply came before their invalidation (prev/next). */
    call_t *park_head, *park_tail;
    uv_timer_t park_timer;
    uint64_t inval_next;         /* last sequence number given to a write */
    uint64_t inval_seen;         /* highest own sequence number seen on the sub link */
};

typedef struct deferred_s {
    struct deferred_s *next;
    size_t len;
    uint8_t bytes[];
} deferred_t;

typedef struct {
    roost_session_t *recs;
    size_t n;
} sess_value_t;

static void sess_value_free(void *v)
{
    sess_value_t *sv = v;
    if (sv == NULL)
        return;
    for (size_t i = 0; i < sv->n; i++)
        roost_session_clear(&sv->recs[i]);
    free(sv->recs);
    free(sv);
}

static void block_value_free(void *v)
{
    roost_store_blocklist_t *b = v;
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i]);
    free(b->items);
    free(b);
}

static void park_release(roost_store_t *st, uint64_t seq);
static void inval_seen(roost_store_t *st, const char *payload);

static void cache_off(roost_store_t *st)
{
    st->cache_live = 0;
    roost_cache_clear(st->sess_cache);
    roost_cache_clear(st->block_cache);
    park_release(st, UINT64_MAX);
}

/* A message on ROOST_KEY_INVAL: the name of a changed key, or "*". */
static void cache_invalidate(roost_store_t *st, const char *key, size_t len)
{
    char buf[ROOST_STORE_INVAL_MAX + 1];
    static const char sp[] = "roost:sess:", bp[] = "roost:block:";

    if (len > ROOST_STORE_INVAL_MAX || (len == 1 && key[0] == '*')) {
        roost_cache_clear(st->sess_cache);
        roost_cache_clear(st->block_cache);
        park_release(st, UINT64_MAX);
        return;
    }
    memcpy(buf, key, len);
    buf[len] = '\0';
    /* "key|node:seq": the writer's token after the key (write_inval). */
    char *bar = strchr(buf, '|');
    if (bar != NULL) {
        inval_seen(st, buf);
        *bar = '\0';
        len = (size_t)(bar - buf);
    }
    if (len > sizeof(sp) - 1 && memcmp(buf, sp, sizeof(sp) - 1) == 0)
        roost_cache_invalidate(st->sess_cache, buf);
    else if (len > sizeof(bp) - 1 && memcmp(buf, bp, sizeof(bp) - 1) == 0)
        roost_cache_invalidate(st->block_cache, buf);
    else {
        /* A key we do not know: whatever it was, be safe. */
        roost_cache_clear(st->sess_cache);
        roost_cache_clear(st->block_cache);
    }
}

static void link_connect(link_t *l);

/* ---- pending calls and deadlines ------------------------------------- */

static void reply_free(redisReply *r)
{
    if (r != NULL) {
        free(r->str);
        free(r);
    }
}

static void call_free(call_t *c)
{
    free(c->argv);   /* argvlen and the copied bytes live in the same block */
    free(c->resource);
    free(c->cache_key);
    reply_free(c->saved);
    free(c);
}

static void unlink_call(call_t *c)
{
    roost_store_t *st = c->st;
    if (c->prev)
        c->prev->next = c->next;
    else
        st->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        st->tail = c->prev;
    c->prev = c->next = NULL;
}

/* Runs the user callback once; the struct stays until hiredis lets go. */
static void complete(call_t *c, int status, redisReply *r)
{
    if (c->done)
        return;
    c->done = 1;
    unlink_call(c);
    /* Cancellations at shutdown say nothing about Redis: not observed. */
    if (c->st->observer && status != ROOST_ECANCELED)
        c->st->observer((double)(uv_hrtime() - c->sent_ns) / 1e9, status,
                        c->st->observer_data);
    c->fn(c, status, r);
}

static void on_deadline(uv_timer_t *t)
{
    roost_store_t *st = t->data;
    uint64_t now = uv_now(st->loop);

    while (st->head && st->head->deadline <= now)
        complete(st->head, ROOST_ETIMEDOUT, NULL);
    if (st->head && !st->closing)
        uv_timer_start(&st->deadline, on_deadline, st->head->deadline - now, 0);
}

static int is_noscript(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0;
}

/* ---- writes answered after their invalidation ------------------------ *
 * Redis hands a script's reply to the writer before (often well before)
 * the invalidation it published reaches the subscribers. Were the writer
 * to answer its client at once, that client could make another node read
 * its cache before the invalidation arrived there (e.g. a message right
 * after "carbons disabled"). So a write's callback waits until this node's
 * own sub link has the invalidation: Redis wrote it to every subscriber in
 * the same pass, so the other nodes have it too. At most PARK_MS. */

#define PARK_MS 50

static int usable(const roost_store_t *st);
static call_t *call_new(roost_store_t *st, call_fn fn, void *data);
static int call_send(roost_store_t *st, call_t *c, int argc, const char **argv,
                     const size_t *argvlen);

/* A copy of a scalar reply (our writes answer nil, integers or strings). */
static redisReply *reply_copy(const redisReply *r)
{
    redisReply *c;

    if (r->type == REDIS_REPLY_ARRAY)
        return NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    c->type = r->type;
    c->integer = r->integer;
    if (r->str != NULL) {
        if ((c->str = malloc(r->len + 1)) == NULL) {
            free(c);
            return NULL;
        }
        memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        c->len = r->len;
    }
    return c;
}

static void park_unlink(roost_store_t *st, call_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        st->park_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        st->park_tail = c->prev;
    c->prev = c->next = NULL;
}

static void park_finish(roost_store_t *st, call_t *c)
{
    park_unlink(st, c);
    c->done = 1;
    c->fn(c, 0, c->saved);
    call_free(c);
}

/* Answers the parked writes whose invalidation is out: those numbered up
 * to seq (UINT64_MAX: all). Our invalidations are published in the order
 * of the writes, on one link, and arrive on the sub link in that order; so
 * seeing number S means every write up to S has its invalidation out, and
 * the park list (replies arrive in write order) is answered from its head. */
static void park_release(roost_store_t *st, uint64_t seq)
{
    int was = st->in_sub;

    st->in_sub = 1;     /* callbacks may look at the cache: no sub-link read */
    while (st->park_head != NULL && st->park_head->inval_seq <= seq)
        park_finish(st, st->park_head);
    st->in_sub = was;
}

static void on_park_timer(uv_timer_t *t)
{
    roost_store_t *st = t->data;
    uint64_t now = uv_now(st->loop);

    while (st->park_head != NULL && st->park_head->park_deadline <= now)
        park_finish(st, st->park_head);
    if (st->park_head != NULL && !st->closing)
        uv_timer_start(&st->park_timer, on_park_timer, st->park_head->park_deadline - now, 0);
}

/* 1 when c was parked (its reply copied; c leaves the deadline FIFO). */
static int park_reply(call_t *c, const redisReply *r)
{
    roost_store_t *st = c->st;
    redisReply *copy;

    if (!c->wait_inval || c->inval_seq <= st->inval_seen || c->done || st->closing ||
        !st->cache_live || c->cache_key == NULL || (copy = reply_copy(r)) == NULL)
        return 0;
    unlink_call(c);
    c->saved = copy;
    c->park_deadline = uv_now(st->loop) + PARK_MS;
    c->prev = st->park_tail;
    c->next = NULL;
    if (st->park_tail)
        st->park_tail->next = c;
    else
        st->park_head = c;
    st->park_tail = c;
    if (!uv_is_active((uv_handle_t *)&st->park_timer))
        uv_timer_start(&st->park_timer, on_park_timer, PARK_MS, 0);
    return 1;
}

/* An invalidation "key|node:seq" arrived: when it is one of ours, the
 * writes up to seq have theirs out. */
static void inval_seen(roost_store_t *st, const char *payload)
{
    const char *bar = strchr(payload, '|');
    size_t nl = strlen(st->node_id);
    char *end;

    if (bar == NULL || strncmp(bar + 1, st->node_id, nl) != 0 || bar[1 + nl] != ':')
        return;             /* another node's write */
    unsigned long long seq = strtoull(bar + 2 + nl, &end, 10);
    if (*end != '\0' || seq <= st->inval_seen)
        return;
    st->inval_seen = seq;
    park_release(st, seq);
}

/* Marks c as a write of key whose answer waits for its invalidation; the
 * token makes that invalidation this write's own. */
static void await_inval(roost_store_t *st, call_t *c, const char *key)
{
    size_t kl;

    if (key == NULL)
        return;
    kl = strlen(key);
    free(c->cache_key);
    if ((c->cache_key = malloc(kl + 1 + ROOST_NODE_ID_MAX + 1 + 21 + 1)) == NULL)
        return;
    c->inval_seq = ++st->inval_next;
    snprintf(c->cache_key, kl + 1 + ROOST_NODE_ID_MAX + 1 + 21 + 1, "%s|%s:%" PRIu64, key,
             st->node_id, c->inval_seq);
    c->wait_inval = st->cache_live;
}

static void on_inval_published(call_t *c, int status, redisReply *r)
{
    (void)c;
    (void)status;
    (void)r;
}

/* After a write of c's key went out on the command link: its
 * invalidation, on the same link so it executes after the write. Every
 * node's cache drops the key; this node also answers c when it sees it. */
static void write_inval(roost_store_t *st, call_t *c)
{
    if (c->cache_key == NULL || usable(st) != 0)
        return;
    call_t *p = call_new(st, on_inval_published, NULL);
    if (p == NULL)
        return;
    const char *argv[] = { "PUBLISH", ROOST_KEY_INVAL, c->cache_key };
    call_send(st, p, 3, argv, NULL);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    call_t *c = priv;
    redisReply *r = reply;

    if (c->done) {          /* timed out or canceled earlier: just let go */
        call_free(c);
        return;
    }
    if (!r) {               /* the link broke (or is being freed) */
        link_t *l = ac->data;
        if (l)
            l->ready = 0;   /* no new calls on a dying context */
        complete(c, ROOST_EREDIS, NULL);
        call_free(c);
        return;
    }
    /* A Redis restart flushes the script cache: send the source once. */
    if (c->argc && !c->retried && is_noscript(r)) {
        c->retried = 1;
        c->argv[0] = "EVAL";
        c->argvlen[0] = 4;
        c->argv[1] = c->script_text ? c->script_text : roost_script_text(c->script);
        c->argvlen[1] = strlen(c->argv[1]);
        if (redisAsyncCommandArgv(ac, on_reply, c, c->argc, c->argv, c->argvlen) == REDIS_OK)
            return;
        complete(c, ROOST_EREDIS, NULL);
        call_free(c);
        return;
    }
    if (r->type != REDIS_REPLY_ERROR && park_reply(c, r))
        return;             /* answered by park_release or the park timer */
    complete(c, 0, r);
    call_free(c);
}

static call_t *call_new(roost_store_t *st, call_fn fn, void *data)
{
    call_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->st = st;
    c->fn = fn;
    c->data = data;
    return c;
}

/* Common entry checks of every public call. */
static int usable(const roost_store_t *st)
{
    if (!st)
        return ROOST_EINVAL;
    if (st->closing)
        return ROOST_ECANCELED;
    if (!st->cmd.ready || !st->cmd.ac)
        return ROOST_ENOTCONN;
    return 0;
}

/* Sends c on the command link and queues it for its deadline. On error c
 * is freed and its callback will not run. */
/* RESP for argv, built here rather than by hiredis' argv formatter (its
 * sdscatfmt per argument cost more than the rest of a small call). One
 * buffer for the process: hiredis copies the bytes before we return. */
static char *resp_buf;
static size_t resp_cap;

static char *put_dec(char *p, size_t v)
{
    char d[24];
    size_t i = sizeof(d);

    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    memcpy(p, d + i, sizeof(d) - i);
    return p + (sizeof(d) - i);
}

static int resp_format(int argc, const char **argv, const size_t *argvlen, size_t *out)
{
    size_t need = 1 + 20 + 2;
    char *p;

    for (int i = 0; i < argc; i++) {
        size_t l = argvlen ? argvlen[i] : strlen(argv[i]);
        if (l > SIZE_MAX / 2 - need - 64)
            return ROOST_EINVAL;
        need += 1 + 20 + 2 + l + 2;
    }
    if (need > resp_cap) {
        size_t cap = resp_cap ? resp_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *nb = realloc(resp_buf, cap);
        if (nb == NULL)
            return ROOST_ENOMEM;
        resp_buf = nb;
        resp_cap = cap;
    }
    p = resp_buf;
    *p++ = '*';
    p = put_dec(p, (size_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        size_t l = argvlen ? argvlen[i] : strlen(argv[i]);
        *p++ = '$';
        p = put_dec(p, l);
        *p++ = '\r';
        *p++ = '\n';
        if (l)
            memcpy(p, argv[i], l);
        p += l;
        *p++ = '\r';
        *p++ = '\n';
    }
    *out = (size_t)(p - resp_buf);
    return 0;
}

static int call_send(roost_store_t *st, call_t *c, int argc, const char **argv,
                     const size_t *argvlen)
{
    size_t len;

    if (resp_format(argc, argv, argvlen, &len) < 0 ||
        redisAsyncFormattedCommand(st->cmd.ac, on_reply, c, resp_buf, len) != REDIS_OK) {
        call_free(c);
        return ROOST_EREDIS;
    }
    /* The loop's cached time may be stale if the caller ran long since the
     * loop last polled; a stale base would expire calls early. */
    uv_update_time(st->loop);
    c->deadline = uv_now(st->loop) + st->timeout_ms;
    c->sent_ns = uv_hrtime();
    c->prev = st->tail;
    if (st->tail)
        st->tail->next = c;
    else
        st->head = c;
    st->tail = c;
    if (!uv_is_active((uv_handle_t *)&st->deadline))
        uv_timer_start(&st->deadline, on_deadline, st->timeout_ms, 0);
    return 0;
}

/* EVALSHA id with keys+args a[0..n) (the first nkeys are keys). The argv is
 * copied into the call so a NOSCRIPT reply can be answered with EVAL. */
static int script_send_sha(roost_store_t *st, call_t *c, const char *sha, int nkeys,
                           int n, const char **a, const size_t *al)
{
    char nk[16];
    size_t total = 0;
    int argc = n + 3;

    if (n > SCRIPT_ARGS_MAX || n < 0) {
        call_free(c);
        return ROOST_EINVAL;
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    for (int i = 0; i < n; i++)
        total += al[i];
    total += strlen(nk);
    char *blk = malloc((size_t)argc * (sizeof(char *) + sizeof(size_t)) + total + 1);
    if (!blk) {
        call_free(c);
        return ROOST_ENOMEM;
    }
    c->argv = (const char **)(void *)blk;
    c->argvlen = (size_t *)(void *)(blk + (size_t)argc * sizeof(char *));
    char *p = blk + (size_t)argc * (sizeof(char *) + sizeof(size_t));
    c->argc = argc;
    c->argv[0] = "EVALSHA";
    c->argvlen[0] = 7;
    c->argv[1] = sha;
    c->argvlen[1] = strlen(sha);
    memcpy(p, nk, strlen(nk));
    c->argv[2] = p;
    c->argvlen[2] = strlen(nk);
    p += strlen(nk);
    for (int i = 0; i < n; i++) {
        if (al[i])
            memcpy(p, a[i], al[i]);
        c->argv[3 + i] = p;
        c->argvlen[3 + i] = al[i];
        p += al[i];
    }
    return call_send(st, c, argc, c->argv, c->argvlen);
}

/* EVALSHA id with keys+args a[0..n) (the first nkeys are keys). The argv is
 * copied into the call so a NOSCRIPT reply can be answered with EVAL. */
static int script_send(roost_store_t *st, call_t *c, roost_script_id_t id, int nkeys,
                       int n, const char **a, const size_t *al)
{
    c->script = id;
    return script_send_sha(st, c, st->sha[id], nkeys, n, a, al);
}

/* ---- links: connect, setup, loss, reconnect ------------------------- */

static void report_state(roost_store_t *st)
{
    int want = st->cmd.ready && (!st->channel || st->sub.ready);

    if (st->closing)
        return;
    if (st->up && (!st->cmd.ready || (st->channel && !st->sub.ready))) {
        st->up = 0;
        if (st->state_cb)
            st->state_cb(0, st->state_data);
    } else if (!st->up && want) {
        st->up = 1;
        if (st->state_cb)
            st->state_cb(1, st->state_data);
    }
}

static void on_link_timer(uv_timer_t *t);

/* The link is gone (ac already released or being released by hiredis):
 * schedule a reconnect and tell the user. */
static void link_lost(link_t *l)
{
    roost_store_t *st = l->st;

    l->ready = 0;
    if (l->is_sub)
        cache_off(st);     /* invalidations published from now on are missed */
    if (st->closing)
        return;
    uv_timer_start(&l->timer, on_link_timer, l->backoff, 0);
    l->backoff = l->backoff * 2 > st->rmax ? st->rmax : l->backoff * 2;
    report_state(st);
}

/* Tears our side down now (setup failed or timed out). hiredis calls the
 * pending callbacks with NULL; they see ac->data NULL and ignore it. */
static void link_drop(link_t *l)
{
    redisAsyncContext *ac = l->ac;

    l->ac = NULL;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    link_lost(l);
}

static void link_ready(link_t *l)
{
    l->ready = 1;
    l->backoff = l->st->rmin;
    uv_timer_stop(&l->timer);
    report_state(l->st);
}

static void on_link_timer(uv_timer_t *t)
{
    roost_store_t *st = t->data;
    link_t *l = t == &st->cmd.timer ? &st->cmd : &st->sub;

    if (st->closing)
        return;
    if (!l->ac)
        link_connect(l);
    else if (!l->ready)
        link_drop(l);     /* setup watchdog: connect or init hung */
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    link_t *l = ac->data;

    if (!l || status == REDIS_OK)
        return;
    /* hiredis frees ac after this returns and calls no disconnect callback. */
    ac->data = NULL;
    l->ac = NULL;
    link_lost(l);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    link_t *l = ac->data;

    if (!l)
        return;
    ac->data = NULL;
    l->ac = NULL;
    link_lost(l);
}

/* Replies of AUTH, SELECT and SCRIPT LOAD; tag > 0 is 1 + script id. */
static void on_init_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    link_t *l = ac->data;
    redisReply *r = reply;
    intptr_t tag = (intptr_t)priv;

    if (!l || !r)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        link_drop(l);
        return;
    }
    if (tag > 0 && r->type == REDIS_REPLY_STRING && r->len == ROOST_SCRIPT_SHA_LEN)
        memcpy(l->st->sha[tag - 1], r->str, ROOST_SCRIPT_SHA_LEN);
    if (--l->init_left == 0 && !l->is_sub)
        link_ready(l);
}

/* ---- keeping the cache in step with the client sockets ---------------- *
 * A writer publishes the invalidation inside its script, so Redis has sent
 * it before anyone learns of the write; but this node may read a client's
 * stanza (caused by that write, e.g. "carbons disabled" answered) before
 * the sub link's bytes in the same loop turn. So a lookup first reads
 * whatever already waits on the sub link. Route messages read that way are
 * not delivered on the lookup's call stack but queued for the loop. */

static void dq_flush(roost_store_t *st)
{
    while (st->dq_head != NULL) {
        deferred_t *d = st->dq_head;
        st->dq_head = d->next;
        if (st->dq_head == NULL)
            st->dq_tail = NULL;
        if (!st->closing && st->msg_cb) {
            st->in_sub = 1;
            st->msg_cb(d->bytes, d->len, st->msg_data);
            st->in_sub = 0;
        }
        free(d);
    }
}

static void on_dq_timer(uv_timer_t *t)
{
    dq_flush(t->data);
}

static void defer_message(roost_store_t *st, const char *msg, size_t len)
{
    deferred_t *d = malloc(sizeof(*d) + (len ? len : 1));
    if (d == NULL)
        return;    /* as if pub/sub had lost it: the fast path is at-most-once */
    d->next = NULL;
    d->len = len;
    memcpy(d->bytes, msg, len);
    if (st->dq_tail)
        st->dq_tail->next = d;
    else
        st->dq_head = d;
    st->dq_tail = d;
    uv_timer_start(&st->dq_timer, on_dq_timer, 0, 0);
}

/* 1 when the cache may answer now: live, and nothing unread waits on the
 * sub link (read here if it does, a few times at most). Inside the sub
 * link's own callbacks (where a client's parked stanzas may resume) the
 * link cannot be read, so the cache does not answer there. */
static int cache_sync(roost_store_t *st)
{
    redisAsyncContext *ac;
    int fd;

    if (!st->cache_live || st->draining || st->in_sub)
        return 0;
    for (int i = 0; i < 4; i++) {
        ac = st->sub.ac;
        if (ac == NULL || !st->cache_live)
            return 0;
        fd = ac->c.fd;
        struct pollfd p = { fd, POLLIN, 0 };
        if (fd < 0 || poll(&p, 1, 0) < 0)
            return 0;
        if (!(p.revents & (POLLIN | POLLERR | POLLHUP)))
            return st->cache_live;
        st->draining = 1;
        redisAsyncHandleRead(ac);
        st->draining = 0;
    }
    return 0;
}

static void on_sub_message(redisAsyncContext *ac, void *reply, void *priv)
{
    link_t *l = ac->data;
    redisReply *r = reply;

    if (!l || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    redisReply *kind = r->element[0], *payload = r->element[2];
    if (kind->type != REDIS_REPLY_STRING)
        return;
    redisReply *chan = r->element[1];
    int inval = chan->type == REDIS_REPLY_STRING && chan->len == sizeof(ROOST_KEY_INVAL) - 1 &&
                memcmp(chan->str, ROOST_KEY_INVAL, chan->len) == 0;
    if (kind->len == 9 && memcmp(kind->str, "subscribe", 9) == 0) {
        if (inval) {
            /* Whatever was cached before may have missed invalidations. */
            cache_off(l->st);
            l->st->cache_live = 1;
        } else if (!l->ready) {
            link_ready(l);
        }
    } else if (kind->len == 7 && memcmp(kind->str, "message", 7) == 0
               && payload->type == REDIS_REPLY_STRING) {
        roost_store_t *st = l->st;
        if (inval) {
            int was = st->in_sub;
            st->in_sub = 1;
            cache_invalidate(st, payload->str, payload->len);
            st->in_sub = was;
        } else if (st->draining) {
            defer_message(st, payload->str, payload->len);
        } else if (st->msg_cb) {
            dq_flush(st);          /* what cache_sync read comes first */
            st->in_sub = 1;
            st->msg_cb((const uint8_t *)payload->str, payload->len, st->msg_data);
            st->in_sub = 0;
        }
    }
}

/* hiredis event hooks on a uv_poll_t. Our own instead of hiredis 0.14's
 * adapters/libuv.h: that one drops libuv's error status (POLLERR, e.g. a
 * refused connect), after which libuv has stopped the poll and hiredis never
 * learns the socket failed. Here an error status retries the I/O hiredis
 * asked for, which surfaces the socket error through hiredis's own paths. */
typedef struct {
    redisAsyncContext *ac;   /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;
} uvev_t;

static void ev_poll(uv_poll_t *h, int status, int events)
{
    uvev_t *e = h->data;
    int ev = status < 0 ? e->events : events;

    if (e->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(e->ac);
    if (e->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(e->ac);
}

static void ev_update(uvev_t *e, int add, int del)
{
    e->events = (e->events | add) & ~del;
    if (e->events)
        uv_poll_start(&e->poll, e->events, ev_poll);
    else
        uv_poll_stop(&e->poll);
}

static void ev_add_read(void *p) { ev_update(p, UV_READABLE, 0); }
static void ev_del_read(void *p) { ev_update(p, 0, UV_READABLE); }
static void ev_add_write(void *p) { ev_update(p, UV_WRITABLE, 0); }
static void ev_del_write(void *p) { ev_update(p, 0, UV_WRITABLE); }

static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *p)
{
    uvev_t *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    uvev_t *e = calloc(1, sizeof(*e));

    if (!e)
        return ROOST_ENOMEM;
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return ROOST_EIO;
    }
    e->ac = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

static void link_connect(link_t *l)
{
    roost_store_t *st = l->st;
    redisAsyncContext *ac = redisAsyncConnect(st->host, st->port);

    if (!ac)
        goto fail;
    if (ac->err || ev_attach(ac, st->loop) < 0) {
        redisAsyncFree(ac);
        goto fail;
    }
    ac->data = l;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    l->ready = 0;
    l->init_left = 0;
    /* hiredis queues these until the socket connects. */
    if (st->password && st->password[0]) {
        redisAsyncCommand(ac, on_init_reply, (void *)0, "AUTH %s", st->password);
        l->init_left++;
    }
    if (l->is_sub) {
        const char *argv[3] = { "SUBSCRIBE", st->channel, ROOST_KEY_INVAL };
        redisAsyncCommandArgv(ac, on_sub_message, NULL, 3, argv, NULL);
    } else {
        if (st->db > 0) {
            redisAsyncCommand(ac, on_init_reply, (void *)0, "SELECT %d", st->db);
            l->init_left++;
        }
        for (int i = 0; i < ROOST_SCRIPT_COUNT; i++) {
            redisAsyncCommand(ac, on_init_reply, (void *)(intptr_t)(i + 1), "SCRIPT LOAD %s",
                              roost_script_text((roost_script_id_t)i));
            l->init_left++;
        }
    }
    /* Setup watchdog: hiredis 0.14 has no connect timeout either. */
    uv_timer_start(&l->timer, on_link_timer, 2 * (uint64_t)st->timeout_ms, 0);
    return;
fail:
    link_lost(l);
}

/* ---- lifecycle ------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    roost_store_t *st = h->data;

    if (--st->open_handles > 0)
        return;
    free(st->host);
    free(st->password);
    free(st->channel);
    roost_cache_free(st->sess_cache);
    roost_cache_free(st->block_cache);
    while (st->dq_head != NULL) {
        deferred_t *d = st->dq_head;
        st->dq_head = d->next;
        free(d);
    }
    free(st);
}

roost_store_t *roost_store_new(uv_loop_t *loop, const roost_store_opts_t *opts,
                               roost_store_state_cb state_cb, void *data)
{
    roost_store_t *st;

    if (!loop || !opts)
        return NULL;
    if (opts->node_id && !roost_session_node_id_valid(opts->node_id))
        return NULL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->loop = loop;
    st->host = strdup(opts->host ? opts->host : "127.0.0.1");
    if (!st->host)
        goto fail_st;
    if (opts->password && opts->password[0] && !(st->password = strdup(opts->password)))
        goto fail_host;
    st->port = opts->port > 0 ? opts->port : 6379;
    st->db = opts->db;
    st->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 2000;
    st->rmin = opts->reconnect_min_ms ? opts->reconnect_min_ms : 100;
    st->rmax = opts->reconnect_max_ms ? opts->reconnect_max_ms : 5000;
    if (st->rmax < st->rmin)
        st->rmax = st->rmin;
    st->lease_ms = opts->lease_ms ? opts->lease_ms : LEASE_MS;
    if (opts->node_id)
        strcpy(st->node_id, opts->node_id);
    st->state_cb = state_cb;
    st->state_data = data;
    /* Without memory for them the caches stay NULL: every lookup misses. */
    st->sess_cache = roost_cache_new(CACHE_MAX, CACHE_TTL_MS, sess_value_free);
    st->block_cache = roost_cache_new(CACHE_MAX, CACHE_TTL_MS, block_value_free);
    for (int i = 0; i < ROOST_SCRIPT_COUNT; i++)
        roost_script_sha((roost_script_id_t)i, st->sha[i]);

    uv_timer_init(loop, &st->deadline);
    st->deadline.data = st;
    uv_timer_init(loop, &st->dq_timer);
    st->dq_timer.data = st;
    uv_timer_init(loop, &st->park_timer);
    st->park_timer.data = st;
    link_t *links[2] = { &st->cmd, &st->sub };
    for (int i = 0; i < 2; i++) {
        links[i]->st = st;
        links[i]->is_sub = i == 1;
        links[i]->backoff = st->rmin;
        uv_timer_init(loop, &links[i]->timer);
        links[i]->timer.data = st;
    }
    st->open_handles = 5;
    link_connect(&st->cmd);
    return st;

fail_host:
    free(st->host);
fail_st:
    free(st);
    return NULL;
}

static void link_close(link_t *l)
{
    redisAsyncContext *ac = l->ac;

    l->ac = NULL;
    l->ready = 0;
    if (ac) {
        ac->data = NULL;   /* our hiredis callbacks now ignore this context */
        redisAsyncFree(ac);
    }
    uv_close((uv_handle_t *)&l->timer, on_handle_closed);
}

void roost_store_free(roost_store_t *st)
{
    if (!st || st->closing)
        return;
    st->closing = 1;
    while (st->head)
        complete(st->head, ROOST_ECANCELED, NULL);
    /* Parked writes were done in Redis: they get their real answer. */
    while (st->park_head)
        park_finish(st, st->park_head);
    link_close(&st->cmd);
    link_close(&st->sub);
    uv_close((uv_handle_t *)&st->deadline, on_handle_closed);
    uv_close((uv_handle_t *)&st->dq_timer, on_handle_closed);
    uv_close((uv_handle_t *)&st->park_timer, on_handle_closed);
}

int roost_store_connected(const roost_store_t *st)
{
    return st && !st->closing && st->cmd.ready;
}

int roost_store_subscribed(const roost_store_t *st)
{
    return st && !st->closing && st->channel && st->sub.ready;
}

void roost_store_set_observer(roost_store_t *st, roost_store_observer_cb cb, void *data)
{
    if (st) {
        st->observer = cb;
        st->observer_data = data;
    }
}

const char *roost_store_node_id(const roost_store_t *st)
{
    return st->node_id;
}

uint64_t roost_store_node_epoch(const roost_store_t *st)
{
    return st->epoch;
}

/* ---- generic --------------------------------------------------------- */

static void h_command(call_t *c, int status, redisReply *r)
{
    c->cb.reply(status, r, c->data);
}

int roost_store_command_inval(roost_store_t *st, int argc, const char **argv,
                              const size_t *argvlen, const char *inval_key,
                              roost_store_reply_cb cb, void *data)
{
    int rc = usable(st);
    if (rc < 0)
        return rc;
    if (argc <= 0 || !argv || !cb)
        return ROOST_EINVAL;
    call_t *c = call_new(st, h_command, data);
    if (!c)
        return ROOST_ENOMEM;
    c->cb.reply = cb;
    await_inval(st, c, inval_key);
    rc = call_send(st, c, argc, argv, argvlen);
    if (rc == 0 && inval_key != NULL)
        write_inval(st, c);
    return rc;
}

int roost_store_command(roost_store_t *st, int argc, const char **argv,
                        const size_t *argvlen, roost_store_reply_cb cb, void *data)
{
    return roost_store_command_inval(st, argc, argv, argvlen, NULL, cb, data);
}

int roost_store_eval(roost_store_t *st, roost_lua_t *script, int nkeys, int n,
                     const char **a, const size_t *al, roost_store_reply_cb cb, void *data)
{
    return roost_store_eval_inval(st, script, nkeys, n, a, al, NULL, cb, data);
}

int roost_store_eval_inval(roost_store_t *st, roost_lua_t *script, int nkeys, int n,
                           const char **a, const size_t *al, const char *inval_key,
                           roost_store_reply_cb cb, void *data)
{
    int rc = usable(st);
    if (rc < 0)
        return rc;
    if (!script || !script->text || !cb || nkeys < 0 || nkeys > n)
        return ROOST_EINVAL;
    if (!script->sha[0]) {
        /* EVALSHA names a script by the SHA-1 of its source; the first
         * call that finds it missing sends the source with EVAL. */
        unsigned char d[SHA_DIGEST_LENGTH];
        static const char hex[] = "0123456789abcdef";
        SHA1((const unsigned char *)script->text, strlen(script->text), d);
        for (int i = 0; i < SHA_DIGEST_LENGTH; i++) {
            script->sha[2 * i] = hex[d[i] >> 4];
            script->sha[2 * i + 1] = hex[d[i] & 15];
        }
        script->sha[2 * SHA_DIGEST_LENGTH] = '\0';
    }
    call_t *c = call_new(st, h_command, data);
    if (!c)
        return ROOST_ENOMEM;
    c->cb.reply = cb;
    c->script_text = script->text;
    await_inval(st, c, inval_key);
    rc = script_send_sha(st, c, script->sha, nkeys, n, a, al);
    if (rc == 0 && inval_key != NULL)
        write_inval(st, c);
    return rc;
}

/* ---- block-list cache (store_int.h) ---------------------------------- */

#define BLOCK_CACHE_ITEMS 64    /* longer lists are not cached: the script checks them */

const roost_store_blocklist_t *roost_store_block_cached(roost_store_t *st, const char *key)
{
    if (st == NULL || !cache_sync(st))
        return NULL;
    return roost_cache_get(st->block_cache, key, uv_now(st->loop));
}

typedef struct {
    roost_store_t *st;
    uint64_t ticket;
    char key[];
} block_fill_t;

static void on_block_fill(int status, void *reply, void *data)
{
    block_fill_t *f = data;
    redisReply *r = reply;
    roost_store_t *st = f->st;
    roost_store_blocklist_t *b = NULL;

    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY || !st->cache_live)
        goto out;
    if ((b = calloc(1, sizeof(*b))) == NULL)
        goto out;
    if (r->elements > BLOCK_CACHE_ITEMS) {
        b->big = 1;               /* remembered as "ask the script" */
    } else if (r->elements > 0) {
        if ((b->items = calloc(r->elements, sizeof(*b->items))) == NULL)
            goto fail_b;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_STRING || strlen(e->str) != e->len ||
                (b->items[b->n] = strdup(e->str)) == NULL)
                goto fail_b;
            b->n++;
        }
    }
    roost_cache_put(st->block_cache, f->key, f->ticket, uv_now(st->loop), b);
    goto out;
fail_b:
    block_value_free(b);
out:
    free(f);
}

void roost_store_block_fill(roost_store_t *st, const char *key)
{
    size_t kl = key != NULL ? strlen(key) : 0;
    block_fill_t *f;

    if (st == NULL || !st->cache_live || kl == 0 || kl > ROOST_STORE_INVAL_MAX)
        return;
    if ((f = malloc(sizeof(*f) + kl + 1)) == NULL)
        return;
    f->st = st;
    f->ticket = roost_cache_ticket(st->block_cache, key);
    memcpy(f->key, key, kl + 1);
    const char *argv[] = { "SMEMBERS", key };
    if (roost_store_command(st, 2, argv, NULL, on_block_fill, f) < 0)
        free(f);
}

uint64_t roost_store_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static void h_status(call_t *c, int status, redisReply *r)
{
    c->cb.status(roost_reply_rc(status, r), c->data);
}

static void h_status_owned(call_t *c, int status, redisReply *r)
{
    int rc = roost_reply_rc(status, r);
    if (rc == 0 && (r->type != REDIS_REPLY_INTEGER || r->integer != 1))
        rc = r->type == REDIS_REPLY_INTEGER ? ROOST_ESTALE : ROOST_EREDIS;
    c->cb.status(rc, c->data);
}

/* ---- node ------------------------------------------------------------ */

static void h_register(call_t *c, int status, redisReply *r)
{
    int rc = roost_reply_rc(status, r);
    if (rc == 0 && (r->type != REDIS_REPLY_INTEGER || r->integer <= 0))
        rc = ROOST_EREDIS;
    if (rc == 0)
        c->st->epoch = (uint64_t)r->integer;
    c->cb.status(rc, c->data);
}

int roost_store_node_register(roost_store_t *st, roost_store_status_cb cb, void *data)
{
    char now[24], lease[24];
    int rc = usable(st);

    if (rc < 0)
        return rc;
    if (!cb || !st->node_id[0])
        return ROOST_EINVAL;
    char *node = roost_key_node(st->node_id);
    if (!node)
        return ROOST_ENOMEM;
    call_t *c = call_new(st, h_register, data);
    if (!c) {
        free(node);
        return ROOST_ENOMEM;
    }
    c->cb.status = cb;
    snprintf(now, sizeof(now), "%" PRIu64, roost_store_now_ms());
    snprintf(lease, sizeof(lease), "%u", st->lease_ms);
    const char *a[] = { ROOST_KEY_EPOCH, ROOST_KEY_NODES, node, ROOST_KEY_NODEEPOCHS,
                        st->node_id, now, lease };
    size_t al[7];
    roost_reply_arglens(a, al, 7);
    rc = script_send(st, c, ROOST_SCRIPT_REGISTER, 4, 7, a, al);
    free(node);
    return rc;
}

int roost_store_node_cleanup(roost_store_t *st, roost_store_status_cb cb, void *data)
{
    char ep[24];
    int rc = usable(st);

    if (rc < 0)
        return rc;
    if (!cb || !st->node_id[0])
        return ROOST_EINVAL;
    char *ns = roost_key_nodesess(st->node_id);
    if (!ns)
        return ROOST_ENOMEM;
    call_t *c = call_new(st, h_status, data);
    if (!c) {
        free(ns);
        return ROOST_ENOMEM;
    }
    c->cb.status = cb;
    snprintf(ep, sizeof(ep), "%" PRIu64, st->epoch);
    const char *a[] = { ns, st->node_id, ep, ROOST_KEY_SESS_PREFIX, ROOST_KEY_SESS_SUFFIX,
                        "roost:sm:{" };
    size_t al[6];
    roost_reply_arglens(a, al, 6);
    rc = script_send(st, c, ROOST_SCRIPT_CLEANUP, 1, 6, a, al);
    free(ns);
    return rc;
}

/* ---- accounts -------------------------------------------------------- */

/* Fills *out from a stored ScramCred, checking every length against what
 * the hash needs: the value is data we did not write in this process. */
static int cred_decode(const redisReply *r, roost_hash_t hash, roost_scram_cred_t *out)
{
    Roost__ScramCred *m;
    size_t kl = roost_hash_len(hash);
    int rc = ROOST_EINVAL;

    if (r->len > 1024)
        return ROOST_EINVAL;
    m = roost__scram_cred__unpack(NULL, r->len, (const uint8_t *)r->str);
    if (!m)
        return ROOST_EINVAL;
    if (m->hash != (uint32_t)hash || m->salt.len == 0 || m->salt.len > ROOST_CRED_SALT_MAX
        || m->iterations < ROOST_CRED_ITER_MIN || m->iterations > ITER_MAX
        || kl == 0 || kl > ROOST_CRED_KEY_MAX
        || m->stored_key.len != kl || m->server_key.len != kl)
        goto fail_m;
    memset(out, 0, sizeof(*out));
    out->hash = hash;
    memcpy(out->salt, m->salt.data, m->salt.len);
    out->salt_len = m->salt.len;
    out->iterations = m->iterations;
    memcpy(out->stored_key, m->stored_key.data, kl);
    memcpy(out->server_key, m->server_key.data, kl);
    rc = 0;
fail_m:
    roost__scram_cred__free_unpacked(m, NULL);
    return rc;
}

static void h_cred(call_t *c, int status, redisReply *r)
{
    roost_scram_cred_t cred;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && r->type == REDIS_REPLY_NIL) {
        c->cb.cred(0, NULL, c->data);
        return;
    }
    if (rc == 0)
        rc = r->type == REDIS_REPLY_STRING ? cred_decode(r, c->hash, &cred) : ROOST_EREDIS;
    c->cb.cred(rc, rc == 0 ? &cred : NULL, c->data);
    if (rc == 0)
        memset(&cred, 0, sizeof(cred));
}

int roost_store_cred_get(roost_store_t *st, const char *bare, roost_hash_t hash,
                         roost_store_cred_cb cb, void *data)
{
    int rc = usable(st);

    if (rc < 0)
        return rc;
    if (!bare || !cb || (hash != ROOST_HASH_SHA1 && hash != ROOST_HASH_SHA256))
        return ROOST_EINVAL;
    char *key = roost_key_acct(bare);
    if (!key)
        return ROOST_ENOMEM;
    call_t *c = call_new(st, h_cred, data);
    if (!c) {
        free(key);
        return ROOST_ENOMEM;
    }
    c->cb.cred = cb;
    c->hash = hash;
    const char *argv[] = { "HGET", key,
                           hash == ROOST_HASH_SHA1 ? ROOST_ACCT_F_SHA1 : ROOST_ACCT_F_SHA256 };
    rc = call_send(st, c, 3, argv, NULL);
    free(key);
    return rc;
}

/* ---- sessions -------------------------------------------------------- */

static void h_bind(call_t *c, int status, redisReply *r)
{
    roost_session_t old;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && r->type == REDIS_REPLY_INTEGER)
        rc = r->integer == -1 ? ROOST_ELIMIT : r->integer == -2 ? ROOST_ESTALE : ROOST_EREDIS;
    if (rc < 0 || r->type == REDIS_REPLY_NIL) {
        c->cb.bind(rc, NULL, c->data);
        return;
    }
    if (r->type != REDIS_REPLY_STRING) {
        c->cb.bind(ROOST_EREDIS, NULL, c->data);
        return;
    }
    /* The bind happened; an undecodable old value has nobody to kick. A
     * rebind by the same connection is no conflict either. */
    if (roost_session_decode(&old, c->resource, (const uint8_t *)r->str, r->len) < 0) {
        c->cb.bind(0, NULL, c->data);
        return;
    }
    int same = old.conn_id == c->conn_id && old.node_epoch == c->epoch
               && strcmp(old.node_id, c->node_id) == 0;
    c->cb.bind(0, same ? NULL : &old, c->data);
    roost_session_clear(&old);
}

/* Builds "bare/resource". */
static char *full_jid(const char *bare, const char *res)
{
    size_t lb = strlen(bare), lr = strlen(res);
    char *s = malloc(lb + lr + 2);
    if (!s)
        return NULL;
    memcpy(s, bare, lb);
    s[lb] = '/';
    memcpy(s + lb + 1, res, lr + 1);
    return s;
}

int roost_store_session_bind(roost_store_t *st, const char *bare, const roost_session_t *rec,
                             unsigned max_resources, roost_store_bind_cb cb, void *data)
{
    char maxs[16], ep[24];
    uint8_t *val;
    size_t vlen;
    int rc = usable(st);

    if (rc < 0)
        return rc;
    if (!bare || !rec || !rec->resource || !cb)
        return ROOST_EINVAL;
    if ((rc = roost_session_encode(rec, &val, &vlen)) < 0)
        return rc;
    rc = ROOST_ENOMEM;
    char *sess = roost_key_sess(bare);
    if (!sess)
        goto fail_val;
    char *ns = roost_key_nodesess(rec->node_id);
    if (!ns)
        goto fail_sess;
    char *fj = full_jid(bare, rec->resource);
    if (!fj)
        goto fail_ns;
    char *lease = roost_key_node(rec->node_id);
    if (!lease)
        goto fail_fj;
    call_t *c = call_new(st, h_bind, data);
    if (!c)
        goto fail_lease;
    c->cb.bind = cb;
    c->conn_id = rec->conn_id;
    c->epoch = rec->node_epoch;
    strcpy(c->node_id, rec->node_id);
    if (!(c->resource = strdup(rec->resource))) {
        call_free(c);
        goto fail_lease;
    }
    snprintf(maxs, sizeof(maxs), "%u", max_resources);
    snprintf(ep, sizeof(ep), "%" PRIu64, rec->node_epoch);
    const char *a[] = { sess, ns, lease, rec->resource, (const char *)val, maxs, fj, ep };
    size_t al[] = { strlen(sess), strlen(ns), strlen(lease), strlen(rec->resource), vlen,
                    strlen(maxs), strlen(fj), strlen(ep) };
    await_inval(st, c, sess);
    rc = script_send(st, c, ROOST_SCRIPT_BIND, 3, 8, a, al);
    if (rc == 0)
        write_inval(st, c);
fail_lease:
    free(lease);
fail_fj:
    free(fj);
fail_ns:
    free(ns);
fail_sess:
    free(sess);
fail_val:
    free(val);
    return rc;
}

int roost_store_session_update(roost_store_t *st, const char *bare, const roost_session_t *rec,
                               roost_store_status_cb cb, void *data)
{
    char ep[24], conn[24];
    uint8_t *val;
    size_t vlen;
    int rc = usable(st);

    if (rc < 0)
        return rc;
    if (!bare || !rec || !rec->resource || !cb)
        return ROOST_EINVAL;
    if ((rc = roost_session_encode(rec, &val, &vlen)) < 0)
        return rc;
    rc = ROOST_ENOMEM;
    char *sess = roost_key_sess(bare);
    if (!sess)
        goto fail_val;
    char *lease = roost_key_node(rec->node_id);
    if (!lease)
        goto fail_sess;
    call_t *c = call_new(st, h_status_owned, data);
    if (!c)
        goto fail_lease;
    c->cb.status = cb;
    snprintf(ep, sizeof(ep), "%" PRIu64, rec->node_epoch);
    snprintf(conn, sizeof(conn), "%" PRIu64, rec->conn_id);
    const char *a[] = { sess, lease, rec->resource, rec->node_id, ep, conn, (const char *)val };
    size_t al[] = { strlen(sess), strlen(lease), strlen(rec->resource), strlen(rec->node_id),
                    strlen(ep), strlen(conn), vlen };
    await_inval(st, c, sess);
    rc = script_send(st, c, ROOST_SCRIPT_UPDATE, 2, 7, a, al);
    if (rc == 0)
        write_inval(st, c);
fail_lease:
    free(lease);
fail_sess:
    free(sess);
fail_val:
    free(val);
    return rc;
}

int roost_store_session_unbind(roost_store_t *st, const char *bare, const char *resource,
                               uint64_t conn_id, roost_store_status_cb cb, void *data)
{
    char ep[24], conn[24];
    int rc = usable(st);

    if (rc < 0)
        return rc;
    if (!bare || !resource || !cb || !st->node_id[0])
        return ROOST_EINVAL;
    rc = ROOST_ENOMEM;
    char *sess = roost_key_sess(bare);
    if (!sess)
        return rc;
    char *ns = roost_key_nodesess(st->node_id);
    if (!ns)
        goto fail_sess;
    char *fj = full_jid(bare, resource);
    if (!fj)
        goto fail_ns;
    call_t *c = call_new(st, h_status, data);
    if (!c)
        goto fail_fj;
    c->cb.status = cb;
    snprintf(ep, sizeof(ep), "%" PRIu64, st->epoch);
    snprintf(conn, sizeof(conn), "%" PRIu64, conn_id);
    const char *a[] = { sess, ns, resource, st->node_id, ep, conn, fj };
    size_t al[7];
    roost_reply_arglens(a, al, 7);
    await_inval(st, c, sess);
    rc = script_send(st, c, ROOST_SCRIPT_UNBIND, 2, 7, a, al);
    if (rc == 0)
        write_inval(st, c);
fail_fj:
    free(fj);
fail_ns:
    free(ns);
fail_sess:
    free(sess);
    return rc;
}

/* Stores a copy of a user's records (n may be 0: no session is worth
 * caching too). */
static void cache_put_sessions(roost_store_t *st, const char *key, uint64_t ticket,
                               const roost_session_t *recs, size_t n)
{
    sess_value_t *sv = calloc(1, sizeof(*sv));
    if (sv == NULL)
        return;
    if (n > 0 && (sv->recs = calloc(n, sizeof(*sv->recs))) == NULL) {
        free(sv);
        return;
    }
    for (; sv->n < n; sv->n++)
        if (roost_session_copy(&sv->recs[sv->n], &recs[sv->n]) < 0) {
            sess_value_free(sv);
            return;
        }
    roost_cache_put(st->sess_cache, key, ticket, uv_now(st->loop), sv);
}

int roost_store_sessions_cached(roost_store_t *st, const char *bare, const roost_session_t **recs,
                                size_t *n)
{
    char key[sizeof(ROOST_KEY_SESS_PREFIX) + ROOST_STORE_BARE_MAX + sizeof(ROOST_KEY_SESS_SUFFIX)];
    size_t bl = bare != NULL ? strlen(bare) : 0;

    if (st == NULL || bl == 0 || bl > ROOST_STORE_BARE_MAX || !cache_sync(st))
        return 0;
    snprintf(key, sizeof(key), ROOST_KEY_SESS_PREFIX "%s" ROOST_KEY_SESS_SUFFIX, bare);
    sess_value_t *sv = roost_cache_get(st->sess_cache, key, uv_now(st->loop));
    if (sv == NULL)
        return 0;
    *recs = sv->recs;
    *n = sv->n;
    return 1;
}

int roost_store_cache_live(const roost_store_t *st)
{
    return st != NULL && st->cache_live;
}

void roost_store_cache_forget(roost_store_t *st, const char *bare)
{
    char *k = bare != NULL ? roost_key_sess(bare) : NULL;
    if (st == NULL)
        return;
    if (k != NULL)
        roost_cache_invalidate(st->sess_cache, k);
    else
        roost_cache_clear(st->sess_cache);
    free(k);
}

static void h_sessions(call_t *c, int status, redisReply *r)
{
    int rc = roost_reply_rc(status, r);
    roost_session_t *recs = NULL;
    size_t n = 0;

    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements % 2))
        rc = ROOST_EREDIS;
    if (rc == 0 && r->elements && !(recs = calloc(r->elements / 2, sizeof(*recs))))
        rc = ROOST_ENOMEM;
    if (rc == 0 && recs)
        n = roost_reply_sessions(r, recs);
    if (rc == 0 && c->cache_key != NULL && c->st->cache_live)
        cache_put_sessions(c->st, c->cache_key, c->ticket, recs, n);
    c->cb.sessions(rc, rc == 0 ? recs : NULL, rc == 0 ? n : 0, c->data);
    for (size_t i = 0; i < n; i++)
        roost_session_clear(&recs[i]);
    free(recs);
}

int roost_store_session_list(roost_store_t *st, const char *bare,
                             roost_store_sessions_cb cb, void *data)
{
    int rc = usable(st);

    if (rc < 0)
        return rc;
    if (!bare || !cb)
        return ROOST_EINVAL;
    char *sess = roost_key_sess(bare);
    if (!sess)
        return ROOST_ENOMEM;
    call_t *c = call_new(st, h_sessions, data);
    if (!c) {
        free(sess);
        return ROOST_ENOMEM;
    }
    c->cb.sessions = cb;
    if (st->cache_live) {
        c->ticket = roost_cache_ticket(st->sess_cache, sess);
        c->cache_key = strdup(sess);      /* no copy: simply not cached */
    }
    const char *argv[] = { "HGETALL", sess };
    rc = call_send(st, c, 2, argv, NULL);
    free(sess);
    return rc;
}

static void h_session(call_t *c, int status, redisReply *r)
{
    roost_session_t rec;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && r->type == REDIS_REPLY_NIL) {
        c->cb.session(0, NULL, c->data);
        return;
    }
    if (rc == 0)
        rc = r->type == REDIS_REPLY_STRING
                 ? roost_session_decode(&rec, c->resource, (const uint8_t *)r->str, r->len)
                 : ROOST_EREDIS;
    c->cb.session(rc, rc == 0 ? &rec : NULL, c->data);
    if (rc == 0)
        roost_session_clear(&rec);
}

int roost_store_session_get(roost_store_t *st, const char *bare, const char *resource,
                            roost_store_session_cb cb, void *data)
{
    int rc = usable(st);

    if (rc < 0)
        return rc;
    if (!bare || !resource || !cb)
        return ROOST_EINVAL;
    char *sess = roost_key_sess(bare);
    if (!sess)
        return ROOST_ENOMEM;
    call_t *c = call_new(st, h_session, data);
    if (!c || !(c->resource = strdup(resource))) {
        free(c);
        free(sess);
        return ROOST_ENOMEM;
    }
    c->cb.session = cb;
    const char *argv[] = { "HGET", sess, resource };
    rc = call_send(st, c, 3, argv, NULL);
    free(sess);
    return rc;
}

/* ---- pub/sub --------------------------------------------------------- */

int roost_store_subscribe(roost_store_t *st, roost_store_message_cb cb, void *data)
{
    if (!st || !cb || !st->node_id[0] || st->channel)
        return ROOST_EINVAL;
    if (st->closing)
        return ROOST_ECANCELED;
    if (!(st->channel = roost_key_route(st->node_id)))
        return ROOST_ENOMEM;
    st->msg_cb = cb;
    st->msg_data = data;
    link_connect(&st->sub);
    return 0;
}

static void h_publish(call_t *c, int status, redisReply *r)
{
    int rc = roost_reply_rc(status, r);
    if (rc == 0 && r->type != REDIS_REPLY_INTEGER)
        rc = ROOST_EREDIS;
    c->cb.publish(rc, rc == 0 ? r->integer : 0, c->data);
}

int roost_store_publish(roost_store_t *st, const char *node_id, const uint8_t *msg, size_t len,
                        roost_store_publish_cb cb, void *data)
{
    int rc = usable(st);

    if (rc < 0)
        return rc;
    if (!node_id || (!msg && len) || !cb)
        return ROOST_EINVAL;
    char *ch = roost_key_route(node_id);
    if (!ch)
        return ROOST_ENOMEM;
    call_t *c = call_new(st, h_publish, data);
    if (!c) {
        free(ch);
        return ROOST_ENOMEM;
    }
    c->cb.publish = cb;
    const char *argv[] = { "PUBLISH", ch, msg ? (const char *)msg : "" };
    size_t argvlen[] = { 7, strlen(ch), len };
    rc = call_send(st, c, 3, argv, argvlen);
    free(ch);
    return rc;
}
