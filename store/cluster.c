/* Cluster membership in Redis: the fenced lease renewal, the dead-node
 * scan, reap locks and the reap of a dead node's sessions (store/cluster.h).
 * Every multi-step change is one Lua script so it is atomic. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cluster.h"
#include "store/error.h"
#include "store/keys.h"
#include "store/reply.h"
#include "store/sm.h"
#include "store/store_int.h"

/* Owner fields of a session value (store/record.h): epoch, conn and node. */
#define HDR_PATTERN "'^[01],%-?%d+,(%d+),(%d+),([^\\n]+)\\n'"

/* KEYS lease, nodes, nodeepochs, reaplock, epoch counter;
 * ARGV id, epoch, value, lease_ms, now_ms. 1 renewed, 0 refused. */
static roost_lua_t renew_lua = {
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then\n"
    "  if string.match(cur, '^epoch=(%d+)') ~= ARGV[2] then return 0 end\n"
    /* Gone, and Redis still has its data: take it back only if nobody
     * could have acted on its absence yet. */
    "elseif redis.call('EXISTS', KEYS[5]) == 1 then\n"
    "  if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end\n"
    "  if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end\n"
    "  if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end\n"
    "end\n"
    /* After a data loss the counter restarts: never issue our epoch again. */
    "if tonumber(redis.call('GET', KEYS[5]) or '0') < tonumber(ARGV[2]) then\n"
    "  redis.call('SET', KEYS[5], ARGV[2])\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])\n"
    "redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])\n"
    "redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])\n"
    "return 1\n",
    ""
};

/* KEYS nodes; ARGV self id, max, lease key prefix. Ids without a lease. */
static roost_lua_t dead_lua = {
    "local out = {}\n"
    "for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)) do\n"
    "  if id ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. id) == 0 then\n"
    "    out[#out + 1] = id\n"
    "  end\n"
    "end\n"
    "return out\n",
    ""
};

/* KEYS lock; ARGV owner. */
static roost_lua_t unlock_lua = {
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "return 1\n",
    ""
};

/* KEYS nodesess, lease, nodes, nodeepochs, smdeadline; ARGV id, max_epoch
 * (0: dead), cursor, count, sess key prefix, suffix, sm key prefix, now.
 * -1 when the lease forbids it, else {next cursor, full jid, value, ...}.
 * A session with stream-management (or grace) state owned by the same
 * connection is not removed but detached until its deadline (store/sm.h):
 * its client may resume it on another node. */
static roost_lua_t reap_lua = {
    "local lease = redis.call('GET', KEYS[2])\n"
    "local maxep = tonumber(ARGV[2])\n"
    "local dead = maxep == 0\n"
    "if dead then\n"
    "  if lease then return -1 end\n"
    /* The id's last epoch; unknown after a data loss, when any record of
     * this id is from a dead incarnation (a live one holds the lease). */
    "  maxep = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '') or math.huge\n"
    "elseif lease then\n"
    "  if tonumber(string.match(lease, '^epoch=(%d+)') or '0') <= maxep then return -1 end\n"
    "end\n"
    "local res = redis.call('SSCAN', KEYS[1], ARGV[3], 'COUNT', ARGV[4])\n"
    "local out = {res[1]}\n"
    "for _, fj in ipairs(res[2]) do\n"
    "  local keep = false\n"
    "  local bare, r = string.match(fj, '^([^/]+)/(.+)$')\n"
    "  if bare then\n"
    "    local k = ARGV[5] .. bare .. ARGV[6]\n"
    "    local cur = redis.call('HGET', k, r)\n"
    "    if cur then\n"
    "      local ep, conn, node = string.match(cur, " HDR_PATTERN ")\n"
    "      if node == ARGV[1] and ep then\n"
    "        if tonumber(ep) <= maxep then\n"
    "          local smk = ARGV[7] .. bare .. '}:' .. r\n"
    "          local f = redis.call('HMGET', smk, 'node', 'conn', 'det', 'tmo', 'gone')\n"
    "          if f[1] == ARGV[1] and f[2] == conn and f[5] ~= '1' then\n"
    "            if f[3] == '0' then\n"
    "              local dl = tonumber(ARGV[8]) + tonumber(f[4] or '0')\n"
    "              redis.call('HSET', smk, 'det', 1, 'dl', dl)\n"
    "              redis.call('ZADD', KEYS[5], dl, fj)\n"
    "            end\n"
    "          else\n"
    "            redis.call('HDEL', k, r)\n"
    /* Read caches (store/cache.h) drop this user's records. */
    "            redis.call('PUBLISH', 'roost:inval', k)\n"
    "            out[#out + 1] = fj\n"
    "            out[#out + 1] = cur\n"
    "          end\n"
    "        else\n"
    "          keep = true\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if not keep then redis.call('SREM', KEYS[1], fj) end\n"
    "end\n"
    "if dead and res[1] == '0' and redis.call('SCARD', KEYS[1]) == 0 then\n"
    "  redis.call('ZREM', KEYS[3], ARGV[1])\n"
    "  redis.call('HDEL', KEYS[4], ARGV[1])\n"
    "end\n"
    "return out\n",
    ""
};

/* KEYS lease, nodes, nodeepochs; ARGV id, epoch. */
static roost_lua_t leave_lua = {
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and string.match(cur, '^epoch=(%d+)') == ARGV[2] then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "  redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "  return 1\n"
    "end\n"
    "return 0\n",
    ""
};

/* ---- lease value ------------------------------------------------------- */

static int word_ok(const char *s)
{
    return s && !strpbrk(s, " \r\n");
}

int roost_cluster_lease_format(const roost_cluster_lease_t *l, char *out, size_t n)
{
    if (!l || !out || !word_ok(l->addr) || !word_ok(l->version))
        return ROOST_EINVAL;
    int w = snprintf(out, n, "epoch=%" PRIu64 " addr=%s version=%s start=%" PRIu64, l->epoch,
                     l->addr[0] ? l->addr : "-", l->version[0] ? l->version : "-",
                     l->start_ms);
    return w < 0 || (size_t)w >= n ? ROOST_EINVAL : 0;
}

/* Strict decimal of at most 19 digits. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19)
        return ROOST_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return ROOST_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int copy_word(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return ROOST_EINVAL;
    if (n == 1 && s[0] == '-')
        n = 0;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

int roost_cluster_lease_parse(const char *v, size_t len, roost_cluster_lease_t *out)
{
    int have_epoch = 0;
    size_t i = 0;

    if (!v || !out)
        return ROOST_EINVAL;
    memset(out, 0, sizeof(*out));
    while (i < len) {
        size_t j = i;
        while (j < len && v[j] != ' ')
            j++;
        const char *w = v + i, *eq = memchr(w, '=', j - i);
        if (eq) {
            size_t kl = (size_t)(eq - w), vl = j - i - kl - 1;
            const char *val = eq + 1;
            int rc = 0;
            if (kl == 5 && memcmp(w, "epoch", 5) == 0) {
                rc = parse_u64(val, vl, &out->epoch);
                have_epoch = rc == 0;
            } else if (kl == 5 && memcmp(w, "start", 5) == 0) {
                rc = parse_u64(val, vl, &out->start_ms);
            } else if (kl == 4 && memcmp(w, "addr", 4) == 0) {
                rc = copy_word(out->addr, sizeof(out->addr), val, vl);
            } else if (kl == 7 && memcmp(w, "version", 7) == 0) {
                rc = copy_word(out->version, sizeof(out->version), val, vl);
            }
            if (rc < 0)
                return rc;
        }
        i = j + 1;
    }
    return have_epoch ? 0 : ROOST_EINVAL;
}

/* ---- calls -------------------------------------------------------------- */

/* What one call needs in its reply handler. */
typedef struct {
    union {
        roost_store_status_cb status;
        roost_store_nodes_cb nodes;
        roost_store_reap_cb reap;
    } cb;
    void *data;
    char node_id[ROOST_NODE_ID_MAX + 1];   /* reap */
} ctx_t;

static ctx_t *ctx_new(void *data)
{
    ctx_t *c = calloc(1, sizeof(*c));
    if (c)
        c->data = data;
    return c;
}

/* The lease key of this store's node, or NULL (no id / no memory). */
static char *own_lease_key(roost_store_t *st)
{
    const char *id = roost_store_node_id(st);
    return id && id[0] ? roost_key_node(id) : NULL;
}

/* roost:reap:<node_id> (malloc'd) or NULL. */
static char *lock_key(const char *node_id)
{
    size_t n = strlen(node_id);
    char *k = malloc(sizeof(ROOST_KEY_REAP_PREFIX) + n);
    if (k) {
        memcpy(k, ROOST_KEY_REAP_PREFIX, sizeof(ROOST_KEY_REAP_PREFIX) - 1);
        memcpy(k + sizeof(ROOST_KEY_REAP_PREFIX) - 1, node_id, n + 1);
    }
    return k;
}

/* 1/0 integer answers: 1 is success, 0 refusal (ESTALE). */
static void on_fenced(int status, void *reply, void *data)
{
    ctx_t *c = data;
    redisReply *r = reply;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && r->type != REDIS_REPLY_INTEGER)
        rc = ROOST_EREDIS;
    if (rc == 0 && r->integer != 1)
        rc = ROOST_ESTALE;
    c->cb.status(rc, c->data);
    free(c);
}

int roost_store_cluster_renew(roost_store_t *st, const char *addr, const char *version,
                              uint64_t start_ms, unsigned lease_ms,
                              roost_store_status_cb cb, void *data)
{
    roost_cluster_lease_t l = { 0 };
    char val[512], ep[24], lease[16], now[24];
    int rc = ROOST_EINVAL;

    if (!st || !cb || lease_ms == 0 || roost_store_node_epoch(st) == 0)
        return ROOST_EINVAL;
    l.epoch = roost_store_node_epoch(st);
    l.start_ms = start_ms;
    if (snprintf(l.addr, sizeof(l.addr), "%s", addr ? addr : "") >= (int)sizeof(l.addr) ||
        snprintf(l.version, sizeof(l.version), "%s", version ? version : "")
            >= (int)sizeof(l.version))
        return ROOST_EINVAL;
    if (roost_cluster_lease_format(&l, val, sizeof(val)) < 0)
        return ROOST_EINVAL;
    char *key = own_lease_key(st), *lock = NULL;
    if (!key)
        return ROOST_ENOMEM;
    rc = ROOST_ENOMEM;
    if (!(lock = lock_key(roost_store_node_id(st))))
        goto fail_key;
    ctx_t *c = ctx_new(data);
    if (!c)
        goto fail_lock;
    c->cb.status = cb;
    snprintf(ep, sizeof(ep), "%" PRIu64, l.epoch);
    snprintf(lease, sizeof(lease), "%u", lease_ms);
    snprintf(now, sizeof(now), "%" PRIu64, roost_store_now_ms());
    const char *a[] = { key, ROOST_KEY_NODES, ROOST_KEY_NODEEPOCHS, lock, ROOST_KEY_EPOCH,
                        roost_store_node_id(st), ep, val, lease, now };
    size_t al[10];
    roost_reply_arglens(a, al, 10);
    if ((rc = roost_store_eval(st, &renew_lua, 5, 10, a, al, on_fenced, c)) < 0)
        free(c);
fail_lock:
    free(lock);
fail_key:
    free(key);
    return rc;
}

static int node_ok(const redisReply *e)
{
    return roost_reply_cstr(e) && roost_session_node_id_valid(e->str);
}

static void on_dead(int status, void *reply, void *data)
{
    ctx_t *c = data;
    redisReply *r = reply;
    const char **ids = NULL;
    size_t n = 0;
    int rc = roost_reply_rc(status, r);

    /* The script caps the list; a name we could not have written is
     * skipped, never trusted. */
    if (rc == 0)
        rc = roost_reply_strs(r, SIZE_MAX, node_ok, &ids, &n);
    c->cb.nodes(rc, rc == 0 ? (char *const *)ids : NULL, rc == 0 ? n : 0, c->data);
    free(ids);
    free(c);
}

int roost_store_cluster_dead(roost_store_t *st, roost_store_nodes_cb cb, void *data)
{
    char max[16];

    if (!st || !cb)
        return ROOST_EINVAL;
    ctx_t *c = ctx_new(data);
    if (!c)
        return ROOST_ENOMEM;
    c->cb.nodes = cb;
    snprintf(max, sizeof(max), "%d", ROOST_CLUSTER_LIST_MAX);
    const char *a[] = { ROOST_KEY_NODES, roost_store_node_id(st), max, "roost:node:" };
    size_t al[4];
    roost_reply_arglens(a, al, 4);
    int rc = roost_store_eval(st, &dead_lua, 1, 4, a, al, on_dead, c);
    if (rc < 0)
        free(c);
    return rc;
}

static void lock_owner(roost_store_t *st, char *out, size_t n)
{
    snprintf(out, n, "%s:%" PRIu64, roost_store_node_id(st), roost_store_node_epoch(st));
}

static void on_lock(int status, void *reply, void *data)
{
    ctx_t *c = data;
    redisReply *r = reply;
    int rc = roost_reply_rc(status, r);

    if (rc == 0)
        rc = r->type == REDIS_REPLY_STATUS ? 0
             : r->type == REDIS_REPLY_NIL  ? ROOST_ECONFLICT : ROOST_EREDIS;
    c->cb.status(rc, c->data);
    free(c);
}

int roost_store_cluster_lock(roost_store_t *st, const char *node_id, unsigned ttl_ms,
                             roost_store_status_cb cb, void *data)
{
    char owner[ROOST_NODE_ID_MAX + 32], ttl[16];

    if (!st || !cb || !node_id || !roost_session_node_id_valid(node_id) || ttl_ms == 0)
        return ROOST_EINVAL;
    char *k = lock_key(node_id);
    ctx_t *c = k ? ctx_new(data) : NULL;
    if (!c) {
        free(k);
        return ROOST_ENOMEM;
    }
    c->cb.status = cb;
    lock_owner(st, owner, sizeof(owner));
    snprintf(ttl, sizeof(ttl), "%u", ttl_ms);
    const char *argv[] = { "SET", k, owner, "NX", "PX", ttl };
    int rc = roost_store_command(st, 6, argv, NULL, on_lock, c);
    if (rc < 0)
        free(c);
    free(k);
    return rc;
}

static void on_done(int status, void *reply, void *data)
{
    ctx_t *c = data;
    c->cb.status(roost_reply_rc(status, reply), c->data);
    free(c);
}

int roost_store_cluster_unlock(roost_store_t *st, const char *node_id,
                               roost_store_status_cb cb, void *data)
{
    char owner[ROOST_NODE_ID_MAX + 32];

    if (!st || !cb || !node_id || !roost_session_node_id_valid(node_id))
        return ROOST_EINVAL;
    char *k = lock_key(node_id);
    ctx_t *c = k ? ctx_new(data) : NULL;
    if (!c) {
        free(k);
        return ROOST_ENOMEM;
    }
    c->cb.status = cb;
    lock_owner(st, owner, sizeof(owner));
    const char *a[] = { k, owner };
    size_t al[2];
    roost_reply_arglens(a, al, 2);
    int rc = roost_store_eval(st, &unlock_lua, 1, 2, a, al, on_done, c);
    if (rc < 0)
        free(c);
    free(k);
    return rc;
}

/* Decodes the removed records of a reap reply into recs/out; entries that
 * do not decode were still removed but cannot be reported. */
static void on_reap(int status, void *reply, void *data)
{
    ctx_t *c = data;
    redisReply *r = reply;
    roost_session_t *recs = NULL;
    roost_cluster_reaped_t *out = NULL;
    char **bares = NULL;
    size_t n = 0, max = 0;
    int rc = roost_reply_rc(status, r), done = 0;
    const char *cursor = NULL;

    if (rc == 0 && r->type == REDIS_REPLY_INTEGER)
        rc = r->integer == -1 ? ROOST_ESTALE : ROOST_EREDIS;
    else if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                         r->element[0]->type != REDIS_REPLY_STRING))
        rc = ROOST_EREDIS;
    if (rc == 0) {
        cursor = r->element[0]->str;
        done = strcmp(cursor, "0") == 0;
        max = (r->elements - 1) / 2;
        if (max && (!(recs = calloc(max, sizeof(*recs))) || !(out = calloc(max, sizeof(*out)))
                    || !(bares = calloc(max, sizeof(*bares)))))
            rc = ROOST_ENOMEM;
    }
    for (size_t i = 1; rc == 0 && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (!roost_reply_cstr(f) || v->type != REDIS_REPLY_STRING)
            continue;
        const char *slash = strchr(f->str, '/');
        if (!slash || !(bares[n] = strndup(f->str, (size_t)(slash - f->str))))
            continue;
        if (roost_session_decode(&recs[n], slash + 1, (const uint8_t *)v->str, v->len) < 0) {
            free(bares[n]);
            bares[n] = NULL;
            continue;
        }
        out[n].bare = bares[n];
        out[n].full = f->str;
        out[n].rec = &recs[n];
        n++;
    }
    c->cb.reap(rc, rc == 0 ? out : NULL, rc == 0 ? n : 0, done, rc == 0 ? cursor : NULL,
               c->data);
    for (size_t i = 0; i < n; i++) {
        roost_session_clear(&recs[i]);
        free(bares[i]);
    }
    free(bares);
    free(out);
    free(recs);
    free(c);
}

int roost_store_cluster_reap(roost_store_t *st, const char *node_id, uint64_t max_epoch,
                             const char *cursor, roost_store_reap_cb cb, void *data)
{
    char ep[24], count[16], now[24];
    int rc = ROOST_ENOMEM;

    if (!st || !cb || !node_id || !roost_session_node_id_valid(node_id) || !cursor ||
        strlen(cursor) > 20)
        return ROOST_EINVAL;
    char *ns = roost_key_nodesess(node_id), *lease = roost_key_node(node_id);
    ctx_t *c = ns && lease ? ctx_new(data) : NULL;
    if (!c)
        goto fail_keys;
    c->cb.reap = cb;
    snprintf(ep, sizeof(ep), "%" PRIu64, max_epoch);
    snprintf(count, sizeof(count), "%d", ROOST_CLUSTER_REAP_BATCH);
    snprintf(now, sizeof(now), "%" PRIu64, roost_store_now_ms());
    const char *a[] = { ns, lease, ROOST_KEY_NODES, ROOST_KEY_NODEEPOCHS, ROOST_KEY_SMDEADLINE,
                        node_id, ep, cursor, count, ROOST_KEY_SESS_PREFIX,
                        ROOST_KEY_SESS_SUFFIX, "roost:sm:{", now };
    size_t al[13];
    roost_reply_arglens(a, al, 13);
    if ((rc = roost_store_eval(st, &reap_lua, 5, 13, a, al, on_reap, c)) < 0)
        free(c);
fail_keys:
    free(lease);
    free(ns);
    return rc;
}

int roost_store_cluster_leave(roost_store_t *st, roost_store_status_cb cb, void *data)
{
    char ep[24];

    if (!st || !cb || roost_store_node_epoch(st) == 0)
        return ROOST_EINVAL;
    char *key = own_lease_key(st);
    ctx_t *c = key ? ctx_new(data) : NULL;
    if (!c) {
        free(key);
        return ROOST_ENOMEM;
    }
    c->cb.status = cb;
    snprintf(ep, sizeof(ep), "%" PRIu64, roost_store_node_epoch(st));
    const char *a[] = { key, ROOST_KEY_NODES, ROOST_KEY_NODEEPOCHS, roost_store_node_id(st),
                        ep };
    size_t al[5];
    roost_reply_arglens(a, al, 5);
    int rc = roost_store_eval(st, &leave_lua, 3, 5, a, al, on_done, c);
    if (rc < 0)
        free(c);
    free(key);
    return rc;
}
