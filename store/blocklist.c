/* Blocking command lists in roost:block:{u@d}: a Redis set of JIDs. Reads
 * come back sorted so callers and tests see one order; adds are one script
 * so the size check and the insert cannot race. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/blocklist.h"
#include "store/error.h"
#include "store/keys.h"
#include "store/record.h"
#include "store/reply.h"
#include "store/store_int.h"

#define READ_MAX 100000u    /* members one get accepts */
#define REMOVE_MAX 100000u  /* jids one remove takes */

typedef struct {
    union {
        roost_store_status_cb status;
        roost_store_blocklist_cb list;
    } cb;
    void *data;
} ctx_t;

static ctx_t *ctx_new(void *data)
{
    ctx_t *x = calloc(1, sizeof(*x));
    if (x)
        x->data = data;
    return x;
}

static int jids_ok(const char *const *jids, size_t n)
{
    if (n && !jids)
        return 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = jids[i] ? strlen(jids[i]) : 0;
        if (l == 0 || l > ROOST_SESS_JID_MAX)
            return 0;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void on_get(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    const char **jids = NULL;
    size_t n = 0;
    int rc = roost_reply_rc(status, r);

    /* Not a JID we could have written: skip rather than fail the list. */
    if (rc == 0)
        rc = roost_reply_strs(r, READ_MAX, roost_reply_jid, &jids, &n);
    if (n > 1)
        qsort(jids, n, sizeof(*jids), cmp_str);
    x->cb.list(rc, rc == 0 ? jids : NULL, rc == 0 ? n : 0, x->data);
    free(jids);
    free(x);
}

int roost_store_blocklist_get(roost_store_t *st, const char *bare,
                              roost_store_blocklist_cb cb, void *data)
{
    int rc = ROOST_ENOMEM;

    if (!st || !bare || !cb)
        return ROOST_EINVAL;
    char *key = roost_key_block(bare);
    if (!key)
        return rc;
    ctx_t *x = ctx_new(data);
    if (!x)
        goto fail_key;
    x->cb.list = cb;
    const char *argv[] = { "SMEMBERS", key };
    rc = roost_store_command(st, 2, argv, NULL, on_get, x);
    if (rc < 0)
        free(x);
fail_key:
    free(key);
    return rc;
}

/* KEYS block; ARGV max, jid... Only members not yet present count toward
 * max, each once even when repeated in the request. */
static roost_lua_t lua_add = {
    "local seen, new = {}, 0\n"
    "for i = 2, #ARGV do\n"
    "  local j = ARGV[i]\n"
    "  if not seen[j] then\n"
    "    seen[j] = true\n"
    "    if redis.call('SISMEMBER', KEYS[1], j) == 0 then new = new + 1 end\n"
    "  end\n"
    "end\n"
    "if redis.call('SCARD', KEYS[1]) + new > tonumber(ARGV[1]) then return -1 end\n"
    "for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end\n"
    "return new\n",
    ""
};

static void on_status(int status, void *reply, void *data)
{
    ctx_t *x = data;

    x->cb.status(roost_reply_limit(status, reply), x->data);
    free(x);
}

/* argv for key, then an optional leading arg, then jids. */
static int build_argv(const char *cmd, const char *key, const char *extra,
                      const char *const *jids, size_t n, const char ***argv, size_t **lens,
                      int *argc)
{
    size_t total = n + 1 + (cmd ? 1 : 0) + (extra ? 1 : 0), k = 0;
    const char **a = calloc(total, sizeof(*a));
    size_t *l = calloc(total, sizeof(*l));

    if (!a || !l) {
        free(a);
        free(l);
        return ROOST_ENOMEM;
    }
    if (cmd)
        a[k++] = cmd;
    a[k++] = key;
    if (extra)
        a[k++] = extra;
    for (size_t i = 0; i < n; i++)
        a[k++] = jids[i];
    for (size_t i = 0; i < total; i++)
        l[i] = strlen(a[i]);
    *argv = a;
    *lens = l;
    *argc = (int)total;
    return 0;
}

int roost_store_blocklist_add(roost_store_t *st, const char *bare, const char *const *jids,
                              size_t n, size_t max, roost_store_status_cb cb, void *data)
{
    const char **a;
    size_t *al;
    char maxs[24];
    int argc, rc;

    if (!st || !bare || n == 0 || n > ROOST_BLOCKLIST_ADD_MAX || !jids_ok(jids, n) || !cb)
        return ROOST_EINVAL;
    char *key = roost_key_block(bare);
    if (!key)
        return ROOST_ENOMEM;
    snprintf(maxs, sizeof(maxs), "%zu", max);
    if ((rc = build_argv(NULL, key, maxs, jids, n, &a, &al, &argc)) < 0)
        goto fail_key;
    ctx_t *x = ctx_new(data);
    if (!x) {
        rc = ROOST_ENOMEM;
        goto fail_argv;
    }
    x->cb.status = cb;
    rc = roost_store_eval_inval(st, &lua_add, 1, argc, a, al, key, on_status, x);
    if (rc < 0)
        free(x);
fail_argv:
    free(a);
    free(al);
fail_key:
    free(key);
    return rc;
}

int roost_store_blocklist_remove(roost_store_t *st, const char *bare, const char *const *jids,
                                 size_t n, roost_store_status_cb cb, void *data)
{
    const char **a;
    size_t *al;
    int argc, rc;

    if (!st || !bare || n > REMOVE_MAX || !jids_ok(jids, n) || !cb)
        return ROOST_EINVAL;
    char *key = roost_key_block(bare);
    if (!key)
        return ROOST_ENOMEM;
    if ((rc = build_argv(n ? "SREM" : "DEL", key, NULL, jids, n, &a, &al, &argc)) < 0)
        goto fail_key;
    ctx_t *x = ctx_new(data);
    if (!x) {
        rc = ROOST_ENOMEM;
        goto fail_argv;
    }
    x->cb.status = cb;
    rc = roost_store_command_inval(st, argc, a, al, key, on_status, x);
    if (rc < 0)
        free(x);
fail_argv:
    free(a);
    free(al);
fail_key:
    free(key);
    return rc;
}
