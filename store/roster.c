/* Rosters in Redis: the roost.RosterItem codec, roster reads and the
 * compare-and-set script (roost:roster:{u@d} + roost:rosterver:{u@d}), pending
 * inbound subscriptions (roost:subin:{u@d}) and the multi-user session read. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/roost.pb-c.h"
#include "store/error.h"
#include "store/keys.h"
#include "store/reply.h"
#include "store/roster.h"
#include "store/store_int.h"
#include "store/unknown.h"

#define ITEM_VALUE_MAX (256u * 1024u)  /* one packed item, unknown fields included */
#define ROSTER_READ_MAX 100000u        /* items one roster read accepts */
#define SUBIN_READ_MAX 100000u         /* pending requests one list accepts */
#define SUBIN_STANZA_MAX (1024u * 1024u) /* one stored subscribe stanza */
#define MULTI_MAX 1024u                /* users of one sessions_multi */

/* ---- codec -------------------------------------------------------------- */

static int jid_ok(const char *jid)
{
    size_t n = jid ? strlen(jid) : 0;
    return n > 0 && n <= ROOST_SESS_JID_MAX;
}

/* The bounds encode and decode share. */
static int item_valid(const char *jid, const char *name, char *const *groups, size_t n_groups,
                      unsigned sub)
{
    if (!jid_ok(jid) || sub > ROOST_SUB_BOTH)
        return 0;
    if (name && strlen(name) > ROOST_ROSTER_NAME_MAX)
        return 0;
    if (n_groups > ROOST_ROSTER_GROUPS_MAX || (n_groups && !groups))
        return 0;
    for (size_t i = 0; i < n_groups; i++)
        if (!groups[i] || strlen(groups[i]) > ROOST_ROSTER_GROUP_MAX)
            return 0;
    return 1;
}

int roost_roster_item_encode(const roost_roster_item_t *it, uint8_t **out, size_t *len)
{
    Roost__RosterItem m = ROOST__ROSTER_ITEM__INIT;
    const roost_unknown_t *u;

    if (!out || !len)
        return ROOST_EINVAL;
    *out = NULL;
    *len = 0;
    if (!it || !item_valid(it->jid, it->name, it->groups, it->n_groups, (unsigned)it->sub))
        return ROOST_EINVAL;
    u = it->unknown;
    m.jid = it->jid;
    m.name = it->name ? it->name : (char *)"";
    m.groups = it->groups;
    m.n_groups = it->n_groups;
    m.subscription = (uint32_t)it->sub;
    m.ask = it->ask != 0;
    m.approved = it->approved != 0;
    if (u) {
        m.base.n_unknown_fields = (unsigned)u->n;
        m.base.unknown_fields = u->f;
    }
    size_t pl = roost__roster_item__get_packed_size(&m);
    if (pl > ITEM_VALUE_MAX)
        return ROOST_EINVAL;
    uint8_t *buf = malloc(pl ? pl : 1);
    if (!buf)
        return ROOST_ENOMEM;
    roost__roster_item__pack(&m, buf);
    *out = buf;
    *len = pl;
    return 0;
}

int roost_roster_item_decode(roost_roster_item_t *it, const uint8_t *buf, size_t len)
{
    Roost__RosterItem *m;
    int rc = ROOST_EINVAL;

    if (!it)
        return ROOST_EINVAL;
    memset(it, 0, sizeof(*it));
    /* The size is checked before protobuf-c allocates anything for it. */
    if (!buf || len == 0 || len > ITEM_VALUE_MAX)
        return ROOST_EINVAL;
    if (!(m = roost__roster_item__unpack(NULL, len, buf)))
        return ROOST_EINVAL;
    if (!item_valid(m->jid, m->name, m->groups, m->n_groups, m->subscription))
        goto fail_m;

    rc = ROOST_ENOMEM;
    it->sub = (roost_sub_t)m->subscription;
    it->ask = m->ask ? 1 : 0;
    it->approved = m->approved ? 1 : 0;
    if (!(it->jid = strdup(m->jid)))
        goto fail_it;
    if (m->name && m->name[0] && !(it->name = strdup(m->name)))
        goto fail_it;
    if (m->n_groups) {
        if (!(it->groups = calloc(m->n_groups, sizeof(char *))))
            goto fail_it;
        for (; it->n_groups < m->n_groups; it->n_groups++)
            if (!(it->groups[it->n_groups] = strdup(m->groups[it->n_groups])))
                goto fail_it;
    }
    if (roost_unknown_dup((roost_unknown_t **)&it->unknown, m->base.unknown_fields,
                          m->base.n_unknown_fields) < 0)
        goto fail_it;
    roost__roster_item__free_unpacked(m, NULL);
    return 0;

fail_it:
    roost_roster_item_clear(it);
fail_m:
    roost__roster_item__free_unpacked(m, NULL);
    return rc;
}

int roost_roster_item_copy(roost_roster_item_t *dst, const roost_roster_item_t *src)
{
    const roost_unknown_t *u;

    if (!dst || !src)
        return ROOST_EINVAL;
    memset(dst, 0, sizeof(*dst));
    u = src->unknown;
    dst->sub = src->sub;
    dst->ask = src->ask;
    dst->approved = src->approved;
    if (src->jid && !(dst->jid = strdup(src->jid)))
        goto fail_dst;
    if (src->name && !(dst->name = strdup(src->name)))
        goto fail_dst;
    if (src->n_groups) {
        if (!(dst->groups = calloc(src->n_groups, sizeof(char *))))
            goto fail_dst;
        for (; dst->n_groups < src->n_groups; dst->n_groups++)
            if (src->groups[dst->n_groups]
                && !(dst->groups[dst->n_groups] = strdup(src->groups[dst->n_groups])))
                goto fail_dst;
    }
    if (u && roost_unknown_dup((roost_unknown_t **)&dst->unknown, u->f, u->n) < 0)
        goto fail_dst;
    return 0;
fail_dst:
    roost_roster_item_clear(dst);
    return ROOST_ENOMEM;
}

void roost_roster_item_clear(roost_roster_item_t *it)
{
    if (!it)
        return;
    free(it->jid);
    free(it->name);
    for (size_t i = 0; i < it->n_groups; i++)
        free(it->groups[i]);
    free(it->groups);
    roost_unknown_free(it->unknown);
    memset(it, 0, sizeof(*it));
}

/* ---- reply helpers ------------------------------------------------------ */

/* One pending call of this file: the user's callback and what decoding the
 * reply needs. Freed in the reply callback, which runs exactly once. */
typedef struct {
    union {
        roost_store_roster_cb roster;
        roost_store_roster_item_cb item;
        roost_store_roster_cas_cb cas;
        roost_store_status_cb status;
        roost_store_subin_cb subin;
        roost_store_sessions_multi_cb multi;
    } cb;
    void *data;
    size_t n;          /* sessions_multi: users asked for */
} ctx_t;

static ctx_t *ctx_new(void *data)
{
    ctx_t *x = calloc(1, sizeof(*x));
    if (x)
        x->data = data;
    return x;
}

/* A version as Redis hands it back: nil (never changed), an integer, or the
 * decimal string of roost:rosterver. Anything else is corrupt. */
static int parse_ver(const redisReply *r, uint64_t *ver)
{
    uint64_t v = 0;

    *ver = 0;
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER) {
        if (r->integer < 0)
            return ROOST_EREDIS;
        *ver = (uint64_t)r->integer;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
        return ROOST_EREDIS;
    for (size_t i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return ROOST_EREDIS;
        unsigned d = (unsigned)(r->str[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return ROOST_EREDIS;
        v = v * 10 + d;
    }
    *ver = v;
    return 0;
}

/* ---- reads -------------------------------------------------------------- */

/* HGETALL plus the version in one script, so both come from one moment;
 * an oversized roster answers -1 instead of a huge reply. */
static roost_lua_t lua_roster_get = {
    "if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[1]) then return -1 end\n"
    "return {redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[2])}\n",
    ""
};

static void on_roster_get(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    roost_roster_item_t *items = NULL;
    size_t n = 0;
    uint64_t ver = 0;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && r->type == REDIS_REPLY_INTEGER)
        rc = r->integer == -1 ? ROOST_ELIMIT : ROOST_EREDIS;
    else if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2
                         || r->element[0]->type != REDIS_REPLY_ARRAY
                         || r->element[0]->elements % 2
                         || r->element[0]->elements / 2 > ROSTER_READ_MAX))
        rc = ROOST_EREDIS;
    if (rc == 0)
        rc = parse_ver(r->element[1], &ver);
    const redisReply *h = rc == 0 ? r->element[0] : NULL;
    if (rc == 0 && h->elements && !(items = calloc(h->elements / 2, sizeof(*items))))
        rc = ROOST_ENOMEM;
    for (size_t i = 0; rc == 0 && i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (!roost_reply_jid(f) || v->type != REDIS_REPLY_STRING)
            continue;
        /* A corrupt item is skipped so the rest of the roster still works;
         * an item filed under another contact is corrupt too. */
        if (roost_roster_item_decode(&items[n], (const uint8_t *)v->str, v->len) < 0)
            continue;
        if (strcmp(items[n].jid, f->str) != 0) {
            roost_roster_item_clear(&items[n]);
            continue;
        }
        n++;
    }
    x->cb.roster(rc, rc == 0 ? items : NULL, rc == 0 ? n : 0, rc == 0 ? ver : 0, x->data);
    for (size_t i = 0; i < n; i++)
        roost_roster_item_clear(&items[i]);
    free(items);
    free(x);
}

/* Runs script with keys k[0..nk) followed by string args s[0..ns). */
static int eval_strs(roost_store_t *st, roost_lua_t *script, const char *const *k, int nk,
                     const char *const *s, const size_t *sl, int ns, roost_store_reply_cb cb,
                     void *data)
{
    const char *a[16];
    size_t al[16];
    int n = 0;

    if (nk + ns > 16)
        return ROOST_EINVAL;
    for (int i = 0; i < nk; i++, n++) {
        a[n] = k[i];
        al[n] = strlen(k[i]);
    }
    for (int i = 0; i < ns; i++, n++) {
        a[n] = s[i];
        al[n] = sl ? sl[i] : strlen(s[i]);
    }
    return roost_store_eval(st, script, nk, n, a, al, cb, data);
}

/* Builds the roster and version keys of bare. */
static int roster_keys(const char *bare, char **roster, char **ver)
{
    *roster = roost_key_roster(bare);
    *ver = roost_key_rosterver(bare);
    if (!*roster || !*ver) {
        free(*roster);
        free(*ver);
        return ROOST_ENOMEM;
    }
    return 0;
}

int roost_store_roster_get(roost_store_t *st, const char *bare,
                           roost_store_roster_cb cb, void *data)
{
    char *keys[2], maxs[16];
    int rc;

    if (!st || !bare || !cb)
        return ROOST_EINVAL;
    if ((rc = roster_keys(bare, &keys[0], &keys[1])) < 0)
        return rc;
    ctx_t *x = ctx_new(data);
    if (!x) {
        rc = ROOST_ENOMEM;
        goto fail_keys;
    }
    x->cb.roster = cb;
    snprintf(maxs, sizeof(maxs), "%u", ROSTER_READ_MAX);
    const char *s[] = { maxs };
    rc = eval_strs(st, &lua_roster_get, (const char *const *)keys, 2, s, NULL, 1,
                   on_roster_get, x);
    if (rc < 0)
        free(x);
fail_keys:
    free(keys[0]);
    free(keys[1]);
    return rc;
}

static roost_lua_t lua_item_get = {
    "return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('GET', KEYS[2])}\n",
    ""
};

/* Decodes one stored item (nil: absent) into *it; *found says which. An
 * item that does not decode or belongs to another contact is corrupt. */
static int stored_item(const redisReply *v, const char *contact, roost_roster_item_t *it,
                       int *found)
{
    *found = 0;
    if (v->type == REDIS_REPLY_NIL)
        return 0;
    if (v->type != REDIS_REPLY_STRING)
        return ROOST_EREDIS;
    int rc = roost_roster_item_decode(it, (const uint8_t *)v->str, v->len);
    if (rc < 0)
        return rc;
    if (contact && strcmp(it->jid, contact) != 0) {
        roost_roster_item_clear(it);
        return ROOST_EINVAL;
    }
    *found = 1;
    return 0;
}

typedef struct {
    ctx_t x;
    char contact[];
} item_ctx_t;

static void on_item_get(int status, void *reply, void *data)
{
    item_ctx_t *x = data;
    redisReply *r = reply;
    roost_roster_item_t it;
    uint64_t ver = 0;
    int found = 0;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2))
        rc = ROOST_EREDIS;
    if (rc == 0)
        rc = parse_ver(r->element[1], &ver);
    if (rc == 0)
        rc = stored_item(r->element[0], x->contact, &it, &found);
    x->x.cb.item(rc, found ? &it : NULL, rc == 0 ? ver : 0, x->x.data);
    if (found)
        roost_roster_item_clear(&it);
    free(x);
}

static item_ctx_t *item_ctx_new(const char *contact, void *data)
{
    size_t cl = strlen(contact);
    item_ctx_t *x = calloc(1, sizeof(*x) + cl + 1);
    if (!x)
        return NULL;
    x->x.data = data;
    memcpy(x->contact, contact, cl + 1);
    return x;
}

int roost_store_roster_item_get(roost_store_t *st, const char *bare, const char *contact,
                                roost_store_roster_item_cb cb, void *data)
{
    char *keys[2];
    int rc;

    if (!st || !bare || !jid_ok(contact) || !cb)
        return ROOST_EINVAL;
    if ((rc = roster_keys(bare, &keys[0], &keys[1])) < 0)
        return rc;
    item_ctx_t *x = item_ctx_new(contact, data);
    if (!x) {
        rc = ROOST_ENOMEM;
        goto fail_keys;
    }
    x->x.cb.item = cb;
    const char *s[] = { contact };
    rc = eval_strs(st, &lua_item_get, (const char *const *)keys, 2, s, NULL, 1, on_item_get, x);
    if (rc < 0)
        free(x);
fail_keys:
    free(keys[0]);
    free(keys[1]);
    return rc;
}

/* ---- compare-and-set ---------------------------------------------------- */

/* KEYS roster, rosterver; ARGV contact, expected-present ("1"/"0"),
 * expected bytes, next-present ("1": set, "0": delete), next bytes,
 * max_items. Presence is its own flag so "absent" never hides behind a
 * byte value. Deleting an absent item changes nothing and keeps the
 * version. */
static roost_lua_t lua_cas = {
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if ARGV[2] == '1' then\n"
    "  if cur ~= ARGV[3] then return {0, cur, redis.call('GET', KEYS[2])} end\n"
    "elseif cur then\n"
    "  return {0, cur, redis.call('GET', KEYS[2])}\n"
    "end\n"
    "if ARGV[4] == '1' then\n"
    "  if not cur and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then return {-1} end\n"
    "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])\n"
    "elseif cur then\n"
    "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "else\n"
    "  return {1, redis.call('GET', KEYS[2])}\n"
    "end\n"
    "return {1, redis.call('INCR', KEYS[2])}\n",
    ""
};

static void on_cas(int status, void *reply, void *data)
{
    item_ctx_t *x = data;
    redisReply *r = reply;
    roost_roster_item_t it;
    uint64_t ver = 0;
    int found = 0;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements < 1
                    || r->element[0]->type != REDIS_REPLY_INTEGER))
        rc = ROOST_EREDIS;
    if (rc == 0) {
        long long tag = r->element[0]->integer;
        if (tag == -1)
            rc = ROOST_ELIMIT;
        else if (tag == 1 && r->elements == 2)
            rc = parse_ver(r->element[1], &ver);
        else if (tag == 0 && r->elements == 3) {
            rc = parse_ver(r->element[2], &ver);
            if (rc == 0)
                rc = stored_item(r->element[1], x->contact, &it, &found);
            if (rc == 0)
                rc = ROOST_ECONFLICT;
        } else
            rc = ROOST_EREDIS;
    }
    x->x.cb.cas(rc, found ? &it : NULL, rc == 0 || rc == ROOST_ECONFLICT ? ver : 0, x->x.data);
    if (found)
        roost_roster_item_clear(&it);
    free(x);
}

int roost_store_roster_cas(roost_store_t *st, const char *bare, const char *contact,
                           const roost_roster_item_t *expected, const roost_roster_item_t *next,
                           unsigned max_items, roost_store_roster_cas_cb cb, void *data)
{
    uint8_t *eb = NULL, *nb = NULL;
    size_t el = 0, nl = 0;
    char *keys[2], maxs[16];
    int rc;

    if (!st || !bare || !jid_ok(contact) || !cb)
        return ROOST_EINVAL;
    /* An item is filed under its own JID; anything else would corrupt it. */
    if ((expected && (!expected->jid || strcmp(expected->jid, contact) != 0))
        || (next && (!next->jid || strcmp(next->jid, contact) != 0)))
        return ROOST_EINVAL;
    if (expected && (rc = roost_roster_item_encode(expected, &eb, &el)) < 0)
        return rc;
    if (next && (rc = roost_roster_item_encode(next, &nb, &nl)) < 0)
        goto fail_eb;
    if ((rc = roster_keys(bare, &keys[0], &keys[1])) < 0)
        goto fail_nb;
    item_ctx_t *x = item_ctx_new(contact, data);
    if (!x) {
        rc = ROOST_ENOMEM;
        goto fail_keys;
    }
    x->x.cb.cas = cb;
    snprintf(maxs, sizeof(maxs), "%u", max_items);
    const char *s[] = { contact, expected ? "1" : "0", eb ? (const char *)eb : "",
                        next ? "1" : "0", nb ? (const char *)nb : "", maxs };
    size_t sl[] = { strlen(contact), 1, el, 1, nl, strlen(maxs) };
    rc = eval_strs(st, &lua_cas, (const char *const *)keys, 2, s, sl, 6, on_cas, x);
    if (rc < 0)
        free(x);
fail_keys:
    free(keys[0]);
    free(keys[1]);
fail_nb:
    free(nb);
fail_eb:
    free(eb);
    return rc;
}

/* ---- pending inbound subscription requests ------------------------------ */

/* KEYS subin; ARGV contact, stanza, max. A newer request from a contact
 * replaces the older one; a new contact needs room. */
static roost_lua_t lua_subin_put = {
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0\n"
    "   and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "return 1\n",
    ""
};

static void on_status(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && r->type == REDIS_REPLY_INTEGER && r->integer == -1)
        rc = ROOST_ELIMIT;
    x->cb.status(rc, x->data);
    free(x);
}

int roost_store_subin_put(roost_store_t *st, const char *bare, const char *contact,
                          const uint8_t *stanza, size_t len, size_t max_entries,
                          roost_store_status_cb cb, void *data)
{
    char maxs[24];
    int rc;

    if (!st || !bare || !jid_ok(contact) || !stanza || len == 0 || len > SUBIN_STANZA_MAX
        || !cb)
        return ROOST_EINVAL;
    char *key = roost_key_subin(bare);
    if (!key)
        return ROOST_ENOMEM;
    ctx_t *x = ctx_new(data);
    if (!x) {
        rc = ROOST_ENOMEM;
        goto fail_key;
    }
    x->cb.status = cb;
    snprintf(maxs, sizeof(maxs), "%zu", max_entries);
    const char *s[] = { contact, (const char *)stanza, maxs };
    size_t sl[] = { strlen(contact), len, strlen(maxs) };
    const char *k[] = { key };
    rc = eval_strs(st, &lua_subin_put, k, 1, s, sl, 3, on_status, x);
    if (rc < 0)
        free(x);
fail_key:
    free(key);
    return rc;
}

int roost_store_subin_del(roost_store_t *st, const char *bare, const char *contact,
                          roost_store_status_cb cb, void *data)
{
    int rc;

    if (!st || !bare || !jid_ok(contact) || !cb)
        return ROOST_EINVAL;
    char *key = roost_key_subin(bare);
    if (!key)
        return ROOST_ENOMEM;
    ctx_t *x = ctx_new(data);
    if (!x) {
        rc = ROOST_ENOMEM;
        goto fail_key;
    }
    x->cb.status = cb;
    const char *argv[] = { "HDEL", key, contact };
    rc = roost_store_command(st, 3, argv, NULL, on_status, x);
    if (rc < 0)
        free(x);
fail_key:
    free(key);
    return rc;
}

static void on_subin_list(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    const char **contacts = NULL;
    const uint8_t **stanzas = NULL;
    size_t *lens = NULL, n = 0;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements % 2))
        rc = ROOST_EREDIS;
    if (rc == 0 && r->elements / 2 > SUBIN_READ_MAX)
        rc = ROOST_ELIMIT;
    if (rc == 0 && r->elements) {
        size_t m = r->elements / 2;
        contacts = calloc(m, sizeof(*contacts));
        stanzas = calloc(m, sizeof(*stanzas));
        lens = calloc(m, sizeof(*lens));
        if (!contacts || !stanzas || !lens)
            rc = ROOST_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (!roost_reply_jid(f) || v->type != REDIS_REPLY_STRING || v->len == 0
            || v->len > SUBIN_STANZA_MAX)
            continue;
        contacts[n] = f->str;
        stanzas[n] = (const uint8_t *)v->str;
        lens[n] = v->len;
        n++;
    }
    x->cb.subin(rc, rc == 0 ? contacts : NULL, rc == 0 ? stanzas : NULL, rc == 0 ? lens : NULL,
                rc == 0 ? n : 0, x->data);
    free(contacts);
    free(stanzas);
    free(lens);
    free(x);
}

int roost_store_subin_list(roost_store_t *st, const char *bare,
                           roost_store_subin_cb cb, void *data)
{
    int rc;

    if (!st || !bare || !cb)
        return ROOST_EINVAL;
    char *key = roost_key_subin(bare);
    if (!key)
        return ROOST_ENOMEM;
    ctx_t *x = ctx_new(data);
    if (!x) {
        rc = ROOST_ENOMEM;
        goto fail_key;
    }
    x->cb.subin = cb;
    const char *argv[] = { "HGETALL", key };
    rc = roost_store_command(st, 2, argv, NULL, on_subin_list, x);
    if (rc < 0)
        free(x);
fail_key:
    free(key);
    return rc;
}

/* ---- sessions of many users --------------------------------------------- */

/* KEYS: the users' roost:sess:{bare}; answers one HGETALL array per key. */
static roost_lua_t lua_multi = {
    "local r = {}\n"
    "for i = 1, #KEYS do r[i] = redis.call('HGETALL', KEYS[i]) end\n"
    "return r\n",
    ""
};

static void on_multi(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    roost_session_t *recs = NULL;
    size_t *offs = NULL, *counts = NULL, total = 0, k = 0;
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != x->n))
        rc = ROOST_EREDIS;
    for (size_t i = 0; rc == 0 && i < x->n; i++) {
        const redisReply *h = r->element[i];
        if (h->type != REDIS_REPLY_ARRAY || h->elements % 2)
            rc = ROOST_EREDIS;
        else
            total += h->elements / 2;
    }
    if (rc == 0 && x->n) {
        offs = calloc(x->n, sizeof(*offs));
        counts = calloc(x->n, sizeof(*counts));
        if (!offs || !counts || (total && !(recs = calloc(total, sizeof(*recs)))))
            rc = ROOST_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < x->n; i++) {
        offs[i] = k;
        /* recs is NULL when no user has a session at all. */
        counts[i] = recs ? roost_reply_sessions(r->element[i], recs + k) : 0;
        k += counts[i];
    }
    x->cb.multi(rc, rc == 0 ? recs : NULL, rc == 0 ? offs : NULL, rc == 0 ? counts : NULL,
                rc == 0 ? x->n : 0, x->data);
    for (size_t i = 0; i < k; i++)
        roost_session_clear(&recs[i]);
    free(recs);
    free(offs);
    free(counts);
    free(x);
}

/* One user: a plain HGETALL (no script to run) through
 * roost_store_session_list, whose answer also fills the node cache. */
static void on_single(int status, const roost_session_t *recs, size_t n, void *data)
{
    ctx_t *x = data;
    size_t off = 0, count = n;

    x->cb.multi(status, status == 0 ? recs : NULL, status == 0 ? &off : NULL,
                status == 0 ? &count : NULL, status == 0 ? 1 : 0, x->data);
    free(x);
}

int roost_store_sessions_multi(roost_store_t *st, const char *const *bares, size_t n,
                               roost_store_sessions_multi_cb cb, void *data)
{
    char **keys;
    const char **a;
    size_t *al;
    int rc = ROOST_ENOMEM;

    if (!st || (n && !bares) || n > MULTI_MAX || !cb)
        return ROOST_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!bares[i])
            return ROOST_EINVAL;
    if (n == 1) {
        ctx_t *x = ctx_new(data);
        if (!x)
            return ROOST_ENOMEM;
        x->cb.multi = cb;
        x->n = 1;
        rc = roost_store_session_list(st, bares[0], on_single, x);
        if (rc < 0)
            free(x);
        return rc;
    }
    if (!(keys = calloc(n ? n : 1, sizeof(*keys))))
        return ROOST_ENOMEM;
    if (!(a = calloc(n ? n : 1, sizeof(*a))))
        goto fail_keys;
    if (!(al = calloc(n ? n : 1, sizeof(*al))))
        goto fail_a;
    for (size_t i = 0; i < n; i++) {
        if (!(keys[i] = roost_key_sess(bares[i])))
            goto fail_al;
        a[i] = keys[i];
        al[i] = strlen(keys[i]);
    }
    ctx_t *x = ctx_new(data);
    if (!x)
        goto fail_al;
    x->cb.multi = cb;
    x->n = n;
    rc = roost_store_eval(st, &lua_multi, (int)n, (int)n, a, al, on_multi, x);
    if (rc < 0)
        free(x);
fail_al:
    free(al);
fail_a:
    free(a);
fail_keys:
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    return rc;
}
