/* Lua script texts of the store and their EVALSHA names. Scripts read the
 * plain header in front of each session value (store/record.h), never the
 * protobuf behind it. */
#include <openssl/sha.h>
#include <string.h>

#include "store/error.h"
#include "store/scripts.h"

/* Owner fields of a session value: avail, priority, epoch, conn_id, node. */
#define HDR_PATTERN "'^([01]),(%-?%d+),(%d+),(%d+),([^\\n]+)\\n'"

/* Epoch fencing (DESIGN §6): a writer may touch session records only while
 * its lease roost:node:<id> exists and names its epoch ("epoch=<E> ...",
 * store/cluster.h). A zombie whose lease expired or was re-taken by a newer
 * incarnation gets -2 (ROOST_ESTALE). KEY_I/ARG_I index the lease key and
 * the caller's epoch. */
#define FENCE(KEY_I, ARG_I) \
    "local lease = redis.call('GET', KEYS[" KEY_I "])\n" \
    "if not lease or string.match(lease, '^epoch=(%d+)') ~= ARGV[" ARG_I "] then\n" \
    "  return -2\n" \
    "end\n"

/* The session writes below are followed by a PUBLISH on roost:inval from
 * the writer (store.c, write_inval), which read caches on every node
 * (store/cache.h) use to drop the key. */

static const char bind_lua[] =
    FENCE("3", "5")
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local max = tonumber(ARGV[3])\n"
    "if not cur and max > 0 and redis.call('HLEN', KEYS[1]) >= max then\n"
    "  return -1\n"
    "end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    /* The previous owner's roost:nodesess entry (when on another node) is not
     * removed here: its key is not declared. That node drops the entry when
     * it unbinds the kicked session, and node cleanup checks ownership. */
    "redis.call('SADD', KEYS[2], ARGV[4])\n"
    "return cur\n";

static const char update_lua[] =
    FENCE("2", "3")
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not cur then return 0 end\n"
    "local _, _, ep, conn, node = string.match(cur, " HDR_PATTERN ")\n"
    "if node ~= ARGV[2] or ep ~= ARGV[3] or conn ~= ARGV[4] then return 0 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])\n"
    "return 1\n";

static const char unbind_lua[] =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if cur then\n"
    "  local _, _, ep, conn, node = string.match(cur, " HDR_PATTERN ")\n"
    "  if node == ARGV[2] and ep == ARGV[3] and conn == ARGV[4] then\n"
    "    redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "    redis.call('SREM', KEYS[2], ARGV[5])\n"
    "    return 1\n"
    "  end\n"
    /* A newer session of this node holds the same full JID: keep its
     * nodesess entry, or node cleanup would miss it. */
    "  if node ~= ARGV[2] then redis.call('SREM', KEYS[2], ARGV[5]) end\n"
    "  return 0\n"
    "end\n"
    "redis.call('SREM', KEYS[2], ARGV[5])\n"
    "return 0\n";

/* Touches session keys it does not declare (one per user of the node), so
 * this only works on a single Redis, not Redis Cluster; a cluster needs one
 * call per user slot. It runs once per node shutdown, bounded by the node's
 * own session count. */
static const char cleanup_lua[] =
    "local n = 0\n"
    "local maxep = tonumber(ARGV[2])\n"
    "for _, fj in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local bare, res = string.match(fj, '^([^/]+)/(.+)$')\n"
    "  if bare then\n"
    "    local k = ARGV[3] .. bare .. ARGV[4]\n"
    "    local cur = redis.call('HGET', k, res)\n"
    "    if cur then\n"
    "      local _, _, ep, conn, node = string.match(cur, " HDR_PATTERN ")\n"
    /* A detached session (stream management, drain grace) outlives the
     * node: its state in roost:sm names the same connection. */
    "      local f = redis.call('HMGET', ARGV[5] .. bare .. '}:' .. res, 'conn', 'det')\n"
    "      local detached = f[1] == conn and f[2] == '1'\n"
    "      if node == ARGV[1] and tonumber(ep) <= maxep and not detached then\n"
    "        redis.call('HDEL', k, res)\n"
    "        n = n + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "if n > 0 then redis.call('PUBLISH', 'roost:inval', '*') end\n"
    "return n\n";

/* The lease written here is minimal; node/cluster.c renews it at once with
 * the full "epoch= addr= version= start=" value. KEYS[4] (id -> latest
 * epoch) lets a renewal tell "my lease merely expired" from "a newer
 * incarnation of my id exists". */
static const char register_lua[] =
    "local ep = redis.call('INCR', KEYS[1])\n"
    "redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])\n"
    "redis.call('SET', KEYS[3], 'epoch=' .. ep .. ' start=' .. ARGV[2], 'PX', ARGV[3])\n"
    "redis.call('HSET', KEYS[4], ARGV[1], ep)\n"
    "return ep\n";

/* roost:users:<domain> and roost:domains are not tagged like the account
 * key: admin-only, single Redis (a cluster needs separate calls). */
static const char user_add_lua[] =
    "if redis.call('HEXISTS', KEYS[1], 'meta') == 1 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'sha1', ARGV[2], 'sha256', ARGV[3])\n"
    "redis.call('SADD', KEYS[2], ARGV[4])\n"
    "redis.call('SADD', KEYS[3], ARGV[5])\n"
    "return 1\n";

static const char user_passwd_lua[] =
    "if redis.call('HEXISTS', KEYS[1], 'meta') == 0 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'sha1', ARGV[1], 'sha256', ARGV[2])\n"
    "return 1\n";

static const char *const texts[ROOST_SCRIPT_COUNT] = {
    [ROOST_SCRIPT_BIND] = bind_lua,
    [ROOST_SCRIPT_UPDATE] = update_lua,
    [ROOST_SCRIPT_UNBIND] = unbind_lua,
    [ROOST_SCRIPT_CLEANUP] = cleanup_lua,
    [ROOST_SCRIPT_REGISTER] = register_lua,
    [ROOST_SCRIPT_USER_ADD] = user_add_lua,
    [ROOST_SCRIPT_USER_PASSWD] = user_passwd_lua,
};

const char *roost_script_text(roost_script_id_t id)
{
    if ((unsigned)id >= ROOST_SCRIPT_COUNT)
        return NULL;
    return texts[id];
}

int roost_script_sha(roost_script_id_t id, char out[ROOST_SCRIPT_SHA_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA_DIGEST_LENGTH];
    const char *t = roost_script_text(id);

    if (!t)
        return ROOST_EINVAL;
    SHA1((const unsigned char *)t, strlen(t), md);
    for (size_t i = 0; i < SHA_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[ROOST_SCRIPT_SHA_LEN] = '\0';
    return 0;
}
