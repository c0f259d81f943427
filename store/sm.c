/* Stream-management state and queues in Redis (store/sm.h): one Lua script
 * per multi-step change, so a stanza is numbered, queued and published at
 * once and a resumption takes the session over atomically. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/error.h"
#include "store/keys.h"
#include "store/reply.h"
#include "store/sm.h"
#include "store/store_int.h"

#define KEY_SM_PREFIX   "roost:sm:{"
#define KEY_SMQ_PREFIX  "roost:smq:{"
#define KEY_NODESESS_PREFIX "roost:nodesess:"

/* Owner fields of a session value (store/record.h): epoch, conn, node. */
#define HDR_PATTERN "'^[01],%-?%d+,(%d+),(%d+),([^\\n]+)\\n'"

/* An ended state stays a while as a tombstone, so that a late resumption
 * gets <failed/> with the h it had (XEP-0198 §5). */
#define GONE_TTL_S "600"
#define GONE(K) \
    "redis.call('HSET', " K ", 'gone', 1, 'det', 0)\n" \
    "redis.call('EXPIRE', " K ", " GONE_TTL_S ")\n"

/* KEYS sm, smq, lease, smdeadline; ARGV id, node, epoch, conn, tmo, member. */
static roost_lua_t lua_enable = {
    "local lease = redis.call('GET', KEYS[3])\n"
    "if not lease or string.match(lease, '^epoch=(%d+)') ~= ARGV[3] then return -2 end\n"
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "redis.call('HSET', KEYS[1], 'id', ARGV[1], 'node', ARGV[2], 'epoch', ARGV[3],\n"
    "           'conn', ARGV[4], 'hin', 0, 'seq', 0, 'tmo', ARGV[5], 'det', 0, 'dl', 0)\n"
    "redis.call('ZREM', KEYS[4], ARGV[6])\n"
    "return 1\n",
    ""
};

/* KEYS sm, smq; ARGV stanza, envelope, cap, channel prefix. -1 no state,
 * -3 full, else {seq, receivers}. The varint appended to the envelope is
 * field ROOST_SM_SEQ_FIELD (12), wire type 0: tag byte 96. */
static roost_lua_t lua_push = {
    "local f = redis.call('HMGET', KEYS[1], 'node', 'det', 'gone')\n"
    "if not f[1] or f[3] == '1' then return -1 end\n"
    "if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return -3 end\n"
    "local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)\n"
    "redis.call('ZADD', KEYS[2], seq, seq .. ' ' .. ARGV[1])\n"
    "local n = 0\n"
    "if f[2] == '0' and ARGV[2] ~= '' then\n"
    "  local v, s = seq, ''\n"
    "  while v >= 128 do\n"
    "    s = s .. string.char(v % 128 + 128)\n"
    "    v = math.floor(v / 128)\n"
    "  end\n"
    "  s = s .. string.char(v)\n"
    "  n = redis.call('PUBLISH', ARGV[4] .. f[1], ARGV[2] .. '\\096' .. s)\n"
    "end\n"
    "return {seq, n}\n",
    ""
};

/* KEYS sm, smq, smdeadline, sess, lease; ARGV node, epoch, conn, grace ms,
 * now, member, resource, new session value. 1, 0 (not that conn's record),
 * -2 (lease). */
static roost_lua_t lua_grace = {
    "local lease = redis.call('GET', KEYS[5])\n"
    "if not lease or string.match(lease, '^epoch=(%d+)') ~= ARGV[2] then return -2 end\n"
    "local cur = redis.call('HGET', KEYS[4], ARGV[7])\n"
    "if not cur then return 0 end\n"
    "local _, conn, node = string.match(cur, " HDR_PATTERN ")\n"
    "if node ~= ARGV[1] or conn ~= ARGV[3] then return 0 end\n"
    "local dl = tonumber(ARGV[5]) + tonumber(ARGV[4])\n"
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "redis.call('HSET', KEYS[1], 'id', '', 'node', ARGV[1], 'epoch', ARGV[2], 'conn', ARGV[3],\n"
    "           'hin', 0, 'seq', 0, 'tmo', ARGV[4], 'det', 1, 'dl', dl)\n"
    "redis.call('ZADD', KEYS[3], dl, ARGV[6])\n"
    "redis.call('HSET', KEYS[4], ARGV[7], ARGV[8])\n"
    "return 1\n",
    ""
};

/* KEYS smq; ARGV h. */
static roost_lua_t lua_ack = {
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])\n"
    "return 1\n",
    ""
};

/* KEYS sm; ARGV node, conn, hin. */
static roost_lua_t lua_save_h = {
    "local f = redis.call('HMGET', KEYS[1], 'node', 'conn')\n"
    "if f[1] == ARGV[1] and f[2] == ARGV[2] then redis.call('HSET', KEYS[1], 'hin', ARGV[3]) end\n"
    "return 1\n",
    ""
};

/* KEYS sm, smdeadline; ARGV node, conn, hin, now, member. */
static roost_lua_t lua_detach = {
    "local f = redis.call('HMGET', KEYS[1], 'node', 'conn', 'det', 'tmo', 'gone')\n"
    "if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] or f[3] ~= '0' or f[5] == '1' then return 0 end\n"
    "local dl = tonumber(ARGV[4]) + tonumber(f[4])\n"
    "redis.call('HSET', KEYS[1], 'det', 1, 'dl', dl, 'hin', ARGV[3])\n"
    "redis.call('ZADD', KEYS[2], dl, ARGV[5])\n"
    "return 1\n",
    ""
};

/* KEYS sm, smq, smdeadline; ARGV member, node ('' = any owner), conn.
 * -1 when not that owner's, else the queue. */
static roost_lua_t lua_end = {
    "local f = redis.call('HMGET', KEYS[1], 'node', 'conn', 'gone')\n"
    "if not f[1] or f[3] == '1' then return {} end\n"
    "if ARGV[2] ~= '' and (f[1] ~= ARGV[2] or f[2] ~= ARGV[3]) then return -1 end\n"
    "local q = redis.call('ZRANGE', KEYS[2], 0, -1)\n"
    "redis.call('DEL', KEYS[2])\n"
    GONE("KEYS[1]")
    "redis.call('ZREM', KEYS[3], ARGV[1])\n"
    "return q\n",
    ""
};

/* KEYS sm, sess; ARGV resource. {HGETALL sm, session value or false}. */
static roost_lua_t lua_get = {
    "return {redis.call('HGETALL', KEYS[1]), redis.call('HGET', KEYS[2], ARGV[1])}\n",
    ""
};

/* KEYS sm, smq, sess, lease, nodesess, smdeadline;
 * ARGV id, resource, old value, new value, node, epoch, conn, h, full jid.
 * -1 no such id, -2 lease, -4 value changed; else
 * {hin, old node, old conn, seq, {queue}}. */
static roost_lua_t lua_takeover = {
    "local lease = redis.call('GET', KEYS[4])\n"
    "if not lease or string.match(lease, '^epoch=(%d+)') ~= ARGV[6] then return -2 end\n"
    "local f = redis.call('HMGET', KEYS[1], 'id', 'node', 'conn', 'hin', 'seq', 'gone')\n"
    "if not f[1] or f[1] == '' or f[1] ~= ARGV[1] or f[6] == '1' then return -1 end\n"
    "local cur = redis.call('HGET', KEYS[3], ARGV[2])\n"
    "if not cur then return -1 end\n"
    "if cur ~= ARGV[3] then return -4 end\n"
    "redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])\n"
    "redis.call('SADD', KEYS[5], ARGV[9])\n"
    "redis.call('HSET', KEYS[1], 'node', ARGV[5], 'epoch', ARGV[6], 'conn', ARGV[7],\n"
    "           'det', 0, 'dl', 0)\n"
    "redis.call('ZREM', KEYS[6], ARGV[9])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[8])\n"
    "return {f[4], f[2], f[3], f[5], redis.call('ZRANGE', KEYS[2], 0, -1)}\n",
    ""
};

/* KEYS smdeadline; ARGV now, max, sm prefix, smq prefix, sess prefix,
 * nodesess prefix. {member, session value or '', {queue}, ...}. */
static roost_lua_t lua_expire = {
    "local out = {}\n"
    "local now = tonumber(ARGV[1])\n"
    "for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0,\n"
    "                              tonumber(ARGV[2]))) do\n"
    "  redis.call('ZREM', KEYS[1], m)\n"
    "  local bare, res = string.match(m, '^([^/]+)/(.+)$')\n"
    "  if bare then\n"
    "    local smk = ARGV[3] .. bare .. '}:' .. res\n"
    "    local f = redis.call('HMGET', smk, 'det', 'dl', 'conn', 'node', 'gone')\n"
    "    if f[1] == '1' and f[5] ~= '1' and tonumber(f[2] or '0') <= now then\n"
    "      local qk = ARGV[4] .. bare .. '}:' .. res\n"
    "      local q = redis.call('ZRANGE', qk, 0, -1)\n"
    "      redis.call('DEL', qk)\n"
    GONE("smk")
    "      local sk = ARGV[5] .. bare .. '}'\n"
    "      local cur = redis.call('HGET', sk, res)\n"
    "      local rec = ''\n"
    "      if cur then\n"
    "        local _, conn, node = string.match(cur, " HDR_PATTERN ")\n"
    "        if conn == f[3] and node == f[4] then\n"
    "          redis.call('HDEL', sk, res)\n"
    /* Read caches (store/cache.h) drop this user's records. */
    "          redis.call('PUBLISH', 'roost:inval', sk)\n"
    "          redis.call('SREM', ARGV[6] .. node, m)\n"
    "          rec = cur\n"
    "        end\n"
    "      end\n"
    "      out[#out + 1] = m\n"
    "      out[#out + 1] = rec\n"
    "      out[#out + 1] = q\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n",
    ""
};

char *roost_key_smq(const char *bare, const char *resource)
{
    if (!bare || !resource)
        return NULL;
    size_t n = strlen(KEY_SMQ_PREFIX) + strlen(bare) + 2 + strlen(resource) + 1;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, KEY_SMQ_PREFIX "%s}:%s", bare, resource);
    return k;
}

static char *member(const char *bare, const char *resource)
{
    size_t n = strlen(bare) + strlen(resource) + 2;
    char *m = malloc(n);
    if (m)
        snprintf(m, n, "%s/%s", bare, resource);
    return m;
}

/* The keys and names most calls need, built together. */
typedef struct {
    char *sm, *smq, *member;
} keys_t;

static int keys_make(keys_t *k, const char *bare, const char *resource)
{
    memset(k, 0, sizeof(*k));
    if (!bare || !resource)
        return ROOST_EINVAL;
    k->sm = roost_key_sm(bare, resource);
    k->smq = roost_key_smq(bare, resource);
    k->member = member(bare, resource);
    if (!k->sm || !k->smq || !k->member) {
        free(k->sm);
        free(k->smq);
        free(k->member);
        return ROOST_ENOMEM;
    }
    return 0;
}

static void keys_free(keys_t *k)
{
    free(k->sm);
    free(k->smq);
    free(k->member);
}

typedef struct {
    union {
        roost_store_status_cb status;
        roost_store_sm_push_cb push;
        roost_store_sm_entries_cb entries;
        roost_store_sm_get_cb get;
        roost_store_sm_takeover_cb takeover;
        roost_store_sm_expired_cb expired;
    } cb;
    int stale_on_zero;          /* status: an integer 0 answer means ESTALE */
    void *data;
} ctx_t;

static ctx_t *ctx_new(void *data)
{
    ctx_t *x = calloc(1, sizeof(*x));
    if (x)
        x->data = data;
    return x;
}

static uint64_t u64(const redisReply *e)
{
    if (!e)
        return 0;
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer > 0 ? (uint64_t)e->integer : 0;
    if (e->type == REDIS_REPLY_STRING && e->len < 24) {
        char b[24];
        memcpy(b, e->str, e->len);
        b[e->len] = '\0';
        return strtoull(b, NULL, 10);
    }
    return 0;
}

/* Decodes queue members "<seq> <bytes>" of array q into *out (calloc'd,
 * NULL when empty); malformed members are skipped. */
static int entries_decode(const redisReply *q, roost_sm_entry_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!q || q->type != REDIS_REPLY_ARRAY)
        return ROOST_EREDIS;
    if (q->elements > ROOST_SM_QUEUE_MAX)
        return ROOST_ELIMIT;
    if (q->elements == 0)
        return 0;
    roost_sm_entry_t *e = calloc(q->elements, sizeof(*e));
    if (!e)
        return ROOST_ENOMEM;
    for (size_t i = 0; i < q->elements; i++) {
        const redisReply *m = q->element[i];
        if (m->type != REDIS_REPLY_STRING)
            continue;
        const char *sp = memchr(m->str, ' ', m->len < 24 ? m->len : 24);
        if (!sp || sp == m->str)
            continue;
        size_t off = (size_t)(sp - m->str) + 1;
        if (m->len - off == 0 || m->len - off > ROOST_SM_STANZA_MAX)
            continue;
        uint64_t seq = 0;
        int ok = 1;
        for (const char *p = m->str; p < sp; p++) {
            if (*p < '0' || *p > '9') {
                ok = 0;
                break;
            }
            seq = seq * 10 + (uint64_t)(*p - '0');
        }
        if (!ok)
            continue;
        e[*n].seq = seq;
        e[*n].bytes = (const uint8_t *)m->str + off;
        e[*n].len = m->len - off;
        (*n)++;
    }
    *out = e;
    return 0;
}

static void on_status(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    int rc = roost_reply_rc(status, r);
    if (rc == 0 && r->type == REDIS_REPLY_INTEGER) {
        if (r->integer == -2 || (x->stale_on_zero && r->integer == 0))
            rc = ROOST_ESTALE;
    }
    x->cb.status(rc, x->data);
    free(x);
}

static int eval(roost_store_t *st, roost_lua_t *lua, int nkeys, int n, const char **a,
                const size_t *al, roost_store_reply_cb fn, ctx_t *x)
{
    int rc = roost_store_eval(st, lua, nkeys, n, a, al, fn, x);
    if (rc < 0)
        free(x);
    return rc;
}

/* eval for a script that may write the session hash sess: read caches on
 * every node drop it (store/cache.h) before the caller hears back. */
static int eval_sess(roost_store_t *st, roost_lua_t *lua, int nkeys, int n, const char **a,
                     const size_t *al, const char *sess, roost_store_reply_cb fn, ctx_t *x)
{
    int rc = roost_store_eval_inval(st, lua, nkeys, n, a, al, sess, fn, x);
    if (rc < 0)
        free(x);
    return rc;
}

int roost_store_sm_enable(roost_store_t *st, const char *bare, const char *resource,
                          const char *id, uint64_t conn_id, unsigned timeout_ms,
                          roost_store_status_cb cb, void *data)
{
    char ep[24], conn[24], tmo[16];
    keys_t k;
    int rc;

    if (!st || !cb || !id || strlen(id) > ROOST_SM_ID_MAX || roost_store_node_epoch(st) == 0)
        return ROOST_EINVAL;
    if ((rc = keys_make(&k, bare, resource)) < 0)
        return rc;
    char *lease = roost_key_node(roost_store_node_id(st));
    ctx_t *x = lease ? ctx_new(data) : NULL;
    rc = ROOST_ENOMEM;
    if (x) {
        x->cb.status = cb;
        snprintf(ep, sizeof(ep), "%" PRIu64, roost_store_node_epoch(st));
        snprintf(conn, sizeof(conn), "%" PRIu64, conn_id);
        snprintf(tmo, sizeof(tmo), "%u", timeout_ms);
        const char *a[] = { k.sm, k.smq, lease, ROOST_KEY_SMDEADLINE, id,
                            roost_store_node_id(st), ep, conn, tmo, k.member };
        size_t al[10];
        roost_reply_arglens(a, al, 10);
        rc = eval(st, &lua_enable, 4, 10, a, al, on_status, x);
    }
    free(lease);
    keys_free(&k);
    return rc;
}

int roost_store_sm_grace(roost_store_t *st, const char *bare, const char *resource,
                         uint64_t conn_id, unsigned grace_ms, const uint8_t *new_rec,
                         size_t new_len, roost_store_status_cb cb, void *data)
{
    char ep[24], conn[24], grace[16], now[24];
    keys_t k;
    int rc;

    if (!st || !cb || !new_rec || roost_store_node_epoch(st) == 0)
        return ROOST_EINVAL;
    if ((rc = keys_make(&k, bare, resource)) < 0)
        return rc;
    char *sess = roost_key_sess(bare);
    char *lease = roost_key_node(roost_store_node_id(st));
    ctx_t *x = sess && lease ? ctx_new(data) : NULL;
    rc = ROOST_ENOMEM;
    if (x) {
        x->cb.status = cb;
        x->stale_on_zero = 1;
        snprintf(ep, sizeof(ep), "%" PRIu64, roost_store_node_epoch(st));
        snprintf(conn, sizeof(conn), "%" PRIu64, conn_id);
        snprintf(grace, sizeof(grace), "%u", grace_ms);
        snprintf(now, sizeof(now), "%" PRIu64, roost_store_now_ms());
        const char *a[] = { k.sm, k.smq, ROOST_KEY_SMDEADLINE, sess, lease,
                            roost_store_node_id(st), ep, conn, grace, now, k.member, resource,
                            (const char *)new_rec };
        size_t al[13];
        roost_reply_arglens(a, al, 12);
        al[12] = new_len;
        rc = eval_sess(st, &lua_grace, 5, 13, a, al, sess, on_status, x);
    }
    free(lease);
    free(sess);
    keys_free(&k);
    return rc;
}

static void on_push(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    int rc = roost_reply_rc(status, r);
    uint64_t seq = 0;
    long long n = 0;

    if (rc == 0 && r->type == REDIS_REPLY_INTEGER)
        rc = r->integer == -1 ? ROOST_ENOTFOUND : r->integer == -3 ? ROOST_ELIMIT : ROOST_EREDIS;
    else if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2))
        rc = ROOST_EREDIS;
    if (rc == 0) {
        seq = u64(r->element[0]);
        n = (long long)u64(r->element[1]);
        if (seq == 0)
            rc = ROOST_EREDIS;
    }
    x->cb.push(rc, seq, n, x->data);
    free(x);
}

int roost_store_sm_push(roost_store_t *st, const char *bare, const char *resource,
                        const uint8_t *stanza, size_t len, const uint8_t *env, size_t env_len,
                        unsigned cap, roost_store_sm_push_cb cb, void *data)
{
    char caps[16];
    keys_t k;
    int rc;

    if (!st || !cb || !stanza || len == 0 || len > ROOST_SM_STANZA_MAX || (!env && env_len))
        return ROOST_EINVAL;
    if ((rc = keys_make(&k, bare, resource)) < 0)
        return rc;
    ctx_t *x = ctx_new(data);
    rc = ROOST_ENOMEM;
    if (x) {
        x->cb.push = cb;
        snprintf(caps, sizeof(caps), "%u", cap ? cap : 1);
        const char *a[] = { k.sm, k.smq, (const char *)stanza, env ? (const char *)env : "",
                            caps, "roost:route:" };
        size_t al[] = { strlen(k.sm), strlen(k.smq), len, env_len, strlen(caps), 12 };
        rc = eval(st, &lua_push, 2, 6, a, al, on_push, x);
    }
    keys_free(&k);
    return rc;
}

int roost_store_sm_ack(roost_store_t *st, const char *bare, const char *resource, uint64_t h,
                       roost_store_status_cb cb, void *data)
{
    char hs[24];
    int rc = ROOST_ENOMEM;

    if (!st || !cb || !bare || !resource)
        return ROOST_EINVAL;
    char *q = roost_key_smq(bare, resource);
    ctx_t *x = q ? ctx_new(data) : NULL;
    if (x) {
        x->cb.status = cb;
        snprintf(hs, sizeof(hs), "%" PRIu64, h);
        const char *a[] = { q, hs };
        size_t al[2];
        roost_reply_arglens(a, al, 2);
        rc = eval(st, &lua_ack, 1, 2, a, al, on_status, x);
    }
    free(q);
    return rc;
}

int roost_store_sm_save_h(roost_store_t *st, const char *bare, const char *resource,
                          uint64_t conn_id, uint64_t h_in, roost_store_status_cb cb, void *data)
{
    char conn[24], hs[24];
    int rc = ROOST_ENOMEM;

    if (!st || !cb || !bare || !resource)
        return ROOST_EINVAL;
    char *sm = roost_key_sm(bare, resource);
    ctx_t *x = sm ? ctx_new(data) : NULL;
    if (x) {
        x->cb.status = cb;
        snprintf(conn, sizeof(conn), "%" PRIu64, conn_id);
        snprintf(hs, sizeof(hs), "%" PRIu64, h_in);
        const char *a[] = { sm, roost_store_node_id(st), conn, hs };
        size_t al[4];
        roost_reply_arglens(a, al, 4);
        rc = eval(st, &lua_save_h, 1, 4, a, al, on_status, x);
    }
    free(sm);
    return rc;
}

int roost_store_sm_detach(roost_store_t *st, const char *bare, const char *resource,
                          uint64_t conn_id, uint64_t h_in, roost_store_status_cb cb, void *data)
{
    char conn[24], hs[24], now[24];
    keys_t k;
    int rc;

    if (!st || !cb)
        return ROOST_EINVAL;
    if ((rc = keys_make(&k, bare, resource)) < 0)
        return rc;
    ctx_t *x = ctx_new(data);
    rc = ROOST_ENOMEM;
    if (x) {
        x->cb.status = cb;
        x->stale_on_zero = 1;
        snprintf(conn, sizeof(conn), "%" PRIu64, conn_id);
        snprintf(hs, sizeof(hs), "%" PRIu64, h_in);
        snprintf(now, sizeof(now), "%" PRIu64, roost_store_now_ms());
        const char *a[] = { k.sm, ROOST_KEY_SMDEADLINE, roost_store_node_id(st), conn, hs, now,
                            k.member };
        size_t al[7];
        roost_reply_arglens(a, al, 7);
        rc = eval(st, &lua_detach, 2, 7, a, al, on_status, x);
    }
    keys_free(&k);
    return rc;
}

static void on_entries(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    roost_sm_entry_t *e = NULL;
    size_t n = 0;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && r->type == REDIS_REPLY_INTEGER)
        rc = ROOST_ESTALE;
    if (rc == 0)
        rc = entries_decode(r, &e, &n);
    x->cb.entries(rc, e, n, x->data);
    free(e);
    free(x);
}

int roost_store_sm_end(roost_store_t *st, const char *bare, const char *resource,
                       uint64_t conn_id, roost_store_sm_entries_cb cb, void *data)
{
    char conn[24];
    keys_t k;
    int rc;

    if (!st || !cb)
        return ROOST_EINVAL;
    if ((rc = keys_make(&k, bare, resource)) < 0)
        return rc;
    ctx_t *x = ctx_new(data);
    rc = ROOST_ENOMEM;
    if (x) {
        x->cb.entries = cb;
        snprintf(conn, sizeof(conn), "%" PRIu64, conn_id);
        const char *a[] = { k.sm, k.smq, ROOST_KEY_SMDEADLINE, k.member,
                            conn_id ? roost_store_node_id(st) : "", conn };
        size_t al[6];
        roost_reply_arglens(a, al, 6);
        rc = eval(st, &lua_end, 3, 6, a, al, on_entries, x);
    }
    keys_free(&k);
    return rc;
}

int roost_store_sm_range(roost_store_t *st, const char *bare, const char *resource,
                         uint64_t from, roost_store_sm_entries_cb cb, void *data)
{
    char lo[24], cap[16];
    int rc = ROOST_ENOMEM;

    if (!st || !cb || !bare || !resource)
        return ROOST_EINVAL;
    char *q = roost_key_smq(bare, resource);
    ctx_t *x = q ? ctx_new(data) : NULL;
    if (x) {
        x->cb.entries = cb;
        snprintf(lo, sizeof(lo), "%" PRIu64, from);
        snprintf(cap, sizeof(cap), "%u", ROOST_SM_QUEUE_MAX);
        const char *argv[] = { "ZRANGEBYSCORE", q, lo, "+inf", "LIMIT", "0", cap };
        rc = roost_store_command(st, 7, argv, NULL, on_entries, x);
        if (rc < 0)
            free(x);
    }
    free(q);
    return rc;
}

static void on_get(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    roost_sm_state_t sm;
    int rc = roost_reply_rc(status, r), have = 0;
    const uint8_t *rec = NULL;
    size_t rec_len = 0;

    memset(&sm, 0, sizeof(sm));
    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                    r->element[0]->type != REDIS_REPLY_ARRAY))
        rc = ROOST_EREDIS;
    if (rc == 0) {
        const redisReply *h = r->element[0];
        for (size_t i = 0; i + 1 < h->elements; i += 2) {
            const redisReply *f = h->element[i], *v = h->element[i + 1];
            if (!roost_reply_cstr(f) || !roost_reply_cstr(v))
                continue;
            have = 1;
            if (strcmp(f->str, "id") == 0 && v->len <= ROOST_SM_ID_MAX)
                memcpy(sm.id, v->str, v->len + 1);
            else if (strcmp(f->str, "node") == 0 && v->len <= ROOST_NODE_ID_MAX)
                memcpy(sm.node, v->str, v->len + 1);
            else if (strcmp(f->str, "conn") == 0)
                sm.conn_id = u64(v);
            else if (strcmp(f->str, "hin") == 0)
                sm.h_in = u64(v);
            else if (strcmp(f->str, "seq") == 0)
                sm.seq = u64(v);
            else if (strcmp(f->str, "det") == 0)
                sm.detached = strcmp(v->str, "1") == 0;
            else if (strcmp(f->str, "gone") == 0)
                sm.gone = strcmp(v->str, "1") == 0;
        }
        if (r->element[1]->type == REDIS_REPLY_STRING) {
            rec = (const uint8_t *)r->element[1]->str;
            rec_len = r->element[1]->len;
        }
    }
    x->cb.get(rc, rc == 0 && have ? &sm : NULL, rec, rec_len, x->data);
    free(x);
}

int roost_store_sm_get(roost_store_t *st, const char *bare, const char *resource,
                       roost_store_sm_get_cb cb, void *data)
{
    keys_t k;
    int rc;

    if (!st || !cb)
        return ROOST_EINVAL;
    if ((rc = keys_make(&k, bare, resource)) < 0)
        return rc;
    char *sess = roost_key_sess(bare);
    ctx_t *x = sess ? ctx_new(data) : NULL;
    rc = ROOST_ENOMEM;
    if (x) {
        x->cb.get = cb;
        const char *a[] = { k.sm, sess, resource };
        size_t al[3];
        roost_reply_arglens(a, al, 3);
        rc = eval(st, &lua_get, 2, 3, a, al, on_get, x);
    }
    free(sess);
    keys_free(&k);
    return rc;
}

static void on_takeover(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    roost_sm_takeover_t t;
    roost_sm_entry_t *e = NULL;
    char old_node[ROOST_NODE_ID_MAX + 1] = "";
    int rc = roost_reply_rc(status, r);

    memset(&t, 0, sizeof(t));
    if (rc == 0 && r->type == REDIS_REPLY_INTEGER)
        rc = r->integer == -1 ? ROOST_ENOTFOUND : r->integer == -2 ? ROOST_ESTALE
           : r->integer == -4 ? ROOST_ECONFLICT : ROOST_EREDIS;
    else if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 5))
        rc = ROOST_EREDIS;
    if (rc == 0) {
        t.h_in = u64(r->element[0]);
        if (roost_reply_cstr(r->element[1]) && r->element[1]->len <= ROOST_NODE_ID_MAX)
            memcpy(old_node, r->element[1]->str, r->element[1]->len + 1);
        t.old_node = old_node;
        t.old_conn = u64(r->element[2]);
        t.seq = u64(r->element[3]);
        rc = entries_decode(r->element[4], &e, &t.n);
        t.e = e;
    }
    x->cb.takeover(rc, rc == 0 ? &t : NULL, x->data);
    free(e);
    free(x);
}

int roost_store_sm_takeover(roost_store_t *st, const char *bare, const char *resource,
                            const char *id, uint64_t h, const uint8_t *old_rec, size_t old_len,
                            const uint8_t *new_rec, size_t new_len, uint64_t conn_id,
                            roost_store_sm_takeover_cb cb, void *data)
{
    char ep[24], conn[24], hs[24];
    keys_t k;
    int rc;

    if (!st || !cb || !id || !old_rec || !new_rec || roost_store_node_epoch(st) == 0)
        return ROOST_EINVAL;
    if ((rc = keys_make(&k, bare, resource)) < 0)
        return rc;
    char *sess = roost_key_sess(bare);
    char *lease = roost_key_node(roost_store_node_id(st));
    char *ns = roost_key_nodesess(roost_store_node_id(st));
    ctx_t *x = sess && lease && ns ? ctx_new(data) : NULL;
    rc = ROOST_ENOMEM;
    if (x) {
        x->cb.takeover = cb;
        snprintf(ep, sizeof(ep), "%" PRIu64, roost_store_node_epoch(st));
        snprintf(conn, sizeof(conn), "%" PRIu64, conn_id);
        snprintf(hs, sizeof(hs), "%" PRIu64, h);
        const char *a[] = { k.sm, k.smq, sess, lease, ns, ROOST_KEY_SMDEADLINE,
                            id, resource, (const char *)old_rec, (const char *)new_rec,
                            roost_store_node_id(st), ep, conn, hs, k.member };
        size_t al[15];
        for (int i = 0; i < 15; i++)
            al[i] = i == 8 ? old_len : i == 9 ? new_len : strlen(a[i]);
        rc = eval_sess(st, &lua_takeover, 6, 15, a, al, sess, on_takeover, x);
    }
    free(ns);
    free(lease);
    free(sess);
    keys_free(&k);
    return rc;
}

static void on_expired(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    roost_sm_expired_t *out = NULL;
    roost_sm_entry_t **es = NULL;
    char **bares = NULL;
    size_t n = 0, max = 0;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && r->type != REDIS_REPLY_ARRAY)
        rc = ROOST_EREDIS;
    if (rc == 0 && (max = r->elements / 3) > 0 &&
        (!(out = calloc(max, sizeof(*out))) || !(es = calloc(max, sizeof(*es))) ||
         !(bares = calloc(max, sizeof(*bares)))))
        rc = ROOST_ENOMEM;
    for (size_t i = 0; rc == 0 && i + 2 < r->elements; i += 3) {
        const redisReply *m = r->element[i], *v = r->element[i + 1], *q = r->element[i + 2];
        const char *slash = roost_reply_jid(m) ? strchr(m->str, '/') : NULL;
        if (!slash || !(bares[n] = strndup(m->str, (size_t)(slash - m->str))))
            continue;
        out[n].bare = bares[n];
        out[n].full = m->str;
        if (v->type == REDIS_REPLY_STRING && v->len > 0) {
            out[n].rec = (const uint8_t *)v->str;
            out[n].rec_len = v->len;
        }
        if (entries_decode(q, &es[n], &out[n].n) < 0)
            out[n].n = 0;
        out[n].e = es[n];
        n++;
    }
    x->cb.expired(rc, rc == 0 ? out : NULL, rc == 0 ? n : 0, x->data);
    for (size_t i = 0; i < n; i++) {
        free(es[i]);
        free(bares[i]);
    }
    free(es);
    free(bares);
    free(out);
    free(x);
}

int roost_store_sm_expire(roost_store_t *st, unsigned max, roost_store_sm_expired_cb cb,
                          void *data)
{
    char now[24], maxs[16];

    if (!st || !cb || max == 0)
        return ROOST_EINVAL;
    ctx_t *x = ctx_new(data);
    if (!x)
        return ROOST_ENOMEM;
    x->cb.expired = cb;
    snprintf(now, sizeof(now), "%" PRIu64, roost_store_now_ms());
    snprintf(maxs, sizeof(maxs), "%u", max);
    const char *a[] = { ROOST_KEY_SMDEADLINE, now, maxs, KEY_SM_PREFIX, KEY_SMQ_PREFIX,
                        ROOST_KEY_SESS_PREFIX, KEY_NODESESS_PREFIX };
    size_t al[7];
    roost_reply_arglens(a, al, 7);
    return eval(st, &lua_expire, 1, 7, a, al, on_expired, x);
}
