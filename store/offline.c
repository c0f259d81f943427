/* Offline messages in roost:offline:{u@d}. Each list entry is the unix ms it
 * was stored as 8 bytes big-endian, then the serialized stanza verbatim; a
 * fixed header needs no codec and lets a script read the stamp if it must. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/error.h"
#include "store/keys.h"
#include "store/offline.h"
#include "store/reply.h"
#include "store/store_int.h"

#define STAMP_LEN 8
#define STANZA_MAX (1024u * 1024u) /* one stored stanza */
#define TAKE_MAX 100000u           /* entries one take returns; the rest stay */

typedef struct {
    union {
        roost_store_status_cb status;
        roost_store_offline_cb take;
        roost_store_count_cb count;
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

/* KEYS offline; ARGV entry, max. Full means refuse the new one: old
 * messages are never dropped to make room. */
static roost_lua_t lua_push = {
    "if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end\n"
    "return redis.call('RPUSH', KEYS[1], ARGV[1])\n",
    ""
};

static void on_push(int status, void *reply, void *data)
{
    ctx_t *x = data;

    x->cb.status(roost_reply_limit(status, reply), x->data);
    free(x);
}

int roost_store_offline_push(roost_store_t *st, const char *bare, const uint8_t *stanza,
                             size_t len, uint64_t stamp_ms, size_t max,
                             roost_store_status_cb cb, void *data)
{
    char maxs[24];
    int rc = ROOST_ENOMEM;

    if (!st || !bare || !stanza || len == 0 || len > STANZA_MAX || !cb)
        return ROOST_EINVAL;
    char *key = roost_key_offline(bare);
    if (!key)
        return rc;
    uint8_t *entry = malloc(STAMP_LEN + len);
    if (!entry)
        goto fail_key;
    for (int i = 0; i < STAMP_LEN; i++)
        entry[i] = (uint8_t)(stamp_ms >> (8 * (STAMP_LEN - 1 - i)));
    memcpy(entry + STAMP_LEN, stanza, len);
    ctx_t *x = ctx_new(data);
    if (!x)
        goto fail_entry;
    x->cb.status = cb;
    snprintf(maxs, sizeof(maxs), "%zu", max);
    const char *a[] = { key, (const char *)entry, maxs };
    size_t al[] = { strlen(key), STAMP_LEN + len, strlen(maxs) };
    rc = roost_store_eval(st, &lua_push, 1, 3, a, al, on_push, x);
    if (rc < 0)
        free(x);
fail_entry:
    free(entry);
fail_key:
    free(key);
    return rc;
}

/* KEYS offline; ARGV cap. Reads the oldest entries and removes exactly
 * those (LTRIM deletes the key once it is empty). */
static roost_lua_t lua_take = {
    "local r = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)\n"
    "if #r > 0 then redis.call('LTRIM', KEYS[1], #r, -1) end\n"
    "return r\n",
    ""
};

static void on_take(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    const uint8_t **stanzas = NULL;
    size_t *lens = NULL, n = 0;
    uint64_t *stamps = NULL;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements > TAKE_MAX))
        rc = ROOST_EREDIS;
    if (rc == 0 && r->elements) {
        stanzas = calloc(r->elements, sizeof(*stanzas));
        lens = calloc(r->elements, sizeof(*lens));
        stamps = calloc(r->elements, sizeof(*stamps));
        if (!stanzas || !lens || !stamps)
            rc = ROOST_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        /* An entry without a stamp and a stanza is corrupt: skip it. */
        if (e->type != REDIS_REPLY_STRING || e->len <= STAMP_LEN
            || e->len > STAMP_LEN + STANZA_MAX)
            continue;
        uint64_t s = 0;
        for (int b = 0; b < STAMP_LEN; b++)
            s = (s << 8) | (uint8_t)e->str[b];
        stamps[n] = s;
        stanzas[n] = (const uint8_t *)e->str + STAMP_LEN;
        lens[n] = e->len - STAMP_LEN;
        n++;
    }
    x->cb.take(rc, rc == 0 ? stanzas : NULL, rc == 0 ? lens : NULL, rc == 0 ? stamps : NULL,
               rc == 0 ? n : 0, x->data);
    free(stanzas);
    free(lens);
    free(stamps);
    free(x);
}

int roost_store_offline_take(roost_store_t *st, const char *bare,
                             roost_store_offline_cb cb, void *data)
{
    char caps[16];
    int rc = ROOST_ENOMEM;

    if (!st || !bare || !cb)
        return ROOST_EINVAL;
    char *key = roost_key_offline(bare);
    if (!key)
        return rc;
    ctx_t *x = ctx_new(data);
    if (!x)
        goto fail_key;
    x->cb.take = cb;
    snprintf(caps, sizeof(caps), "%u", TAKE_MAX);
    const char *a[] = { key, caps };
    size_t al[] = { strlen(key), strlen(caps) };
    rc = roost_store_eval(st, &lua_take, 1, 2, a, al, on_take, x);
    if (rc < 0)
        free(x);
fail_key:
    free(key);
    return rc;
}

static void on_count(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && (r->type != REDIS_REPLY_INTEGER || r->integer < 0))
        rc = ROOST_EREDIS;
    x->cb.count(rc, rc == 0 ? r->integer : 0, x->data);
    free(x);
}

int roost_store_offline_count(roost_store_t *st, const char *bare,
                              roost_store_count_cb cb, void *data)
{
    int rc = ROOST_ENOMEM;

    if (!st || !bare || !cb)
        return ROOST_EINVAL;
    char *key = roost_key_offline(bare);
    if (!key)
        return rc;
    ctx_t *x = ctx_new(data);
    if (!x)
        goto fail_key;
    x->cb.count = cb;
    const char *argv[] = { "LLEN", key };
    rc = roost_store_command(st, 2, argv, NULL, on_count, x);
    if (rc < 0)
        free(x);
fail_key:
    free(key);
    return rc;
}
