/* The XEP-0191 blocking check: one Lua script tests both users' block
 * lists against every string that would match the other JID, so the router
 * pays a single round trip per stanza between two users. */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "store/blockcheck.h"
#include "store/error.h"
#include "store/keys.h"
#include "store/store_int.h"

static void cand_add(roost_blockcheck_cand_t *c, const char *s)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->s[i], s) == 0)
            return;
    c->s[c->n++] = s;
}

int roost_store_blockcheck_candidates(const roost_jid_t *jid, roost_blockcheck_cand_t *c)
{
    memset(c, 0, sizeof(*c));
    if (!jid || !jid->domain || !jid->bare || !jid->full)
        return ROOST_EINVAL;
    cand_add(c, jid->full);
    cand_add(c, jid->bare);
    cand_add(c, jid->domain);
    /* A "domain/resource" item matches that resource of any user of the
     * domain (as ejabberd reads XEP-0016); without a local part the full
     * JID already is that string. */
    if (jid->resource && jid->local) {
        size_t ld = strlen(jid->domain), lr = strlen(jid->resource);
        c->owned = malloc(ld + 1 + lr + 1);
        if (!c->owned) {
            memset(c, 0, sizeof(*c));
            return ROOST_ENOMEM;
        }
        memcpy(c->owned, jid->domain, ld);
        c->owned[ld] = '/';
        memcpy(c->owned + ld + 1, jid->resource, lr + 1);
        cand_add(c, c->owned);
    }
    return 0;
}

void roost_store_blockcheck_cand_clear(roost_blockcheck_cand_t *c)
{
    if (!c)
        return;
    free(c->owned);
    memset(c, 0, sizeof(*c));
}

/* KEYS sender's list, recipient's list; ARGV nr, nr recipient candidates,
 * then the sender's candidates. SISMEMBER on an absent key is 0. */
static roost_lua_t lua_check = {
    "local nr = tonumber(ARGV[1])\n"
    "for i = 2, nr + 1 do\n"
    "  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 1 then return 1 end\n"
    "end\n"
    "for i = nr + 2, #ARGV do\n"
    "  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 1 then return 2 end\n"
    "end\n"
    "return 0\n",
    ""
};

typedef struct {
    roost_store_blockcheck_cb cb;
    void *data;
} ctx_t;

static void on_check(int status, void *reply, void *data)
{
    ctx_t *x = data;
    redisReply *r = reply;
    int rc = status, verdict = ROOST_BLOCKCHECK_NONE;

    if (rc == 0 && (!r || r->type != REDIS_REPLY_INTEGER))
        rc = ROOST_EREDIS;
    if (rc == 0 && (r->integer == ROOST_BLOCKCHECK_BY_SENDER ||
                    r->integer == ROOST_BLOCKCHECK_BY_RECIPIENT))
        verdict = (int)r->integer;
    x->cb(rc, verdict, x->data);
    free(x);
}

int roost_store_blockcheck(roost_store_t *st, const roost_jid_t *sender,
                           const roost_jid_t *recipient, roost_store_blockcheck_cb cb,
                           void *data)
{
    roost_blockcheck_cand_t rc_cand, sd_cand;
    /* 2 keys, the count, and up to 4 candidates per JID. */
    const char *a[3 + 2 * ROOST_BLOCKCHECK_CAND_MAX];
    size_t al[3 + 2 * ROOST_BLOCKCHECK_CAND_MAX];
    char nr[2];
    int n = 0, rc;

    if (!st || !sender || !recipient || !sender->local || !recipient->local || !cb)
        return ROOST_EINVAL;
    if ((rc = roost_store_blockcheck_candidates(recipient, &rc_cand)) < 0)
        return rc;
    if ((rc = roost_store_blockcheck_candidates(sender, &sd_cand)) < 0)
        goto fail_rc;
    rc = ROOST_ENOMEM;
    char *ks = roost_key_block(sender->bare);
    if (!ks)
        goto fail_sd;
    char *kr = roost_key_block(recipient->bare);
    if (!kr)
        goto fail_ks;
    ctx_t *x = calloc(1, sizeof(*x));
    if (!x)
        goto fail_kr;
    x->cb = cb;
    x->data = data;
    nr[0] = (char)('0' + rc_cand.n);
    nr[1] = '\0';
    a[n++] = ks;
    a[n++] = kr;
    a[n++] = nr;
    for (size_t i = 0; i < rc_cand.n; i++)
        a[n++] = rc_cand.s[i];
    for (size_t i = 0; i < sd_cand.n; i++)
        a[n++] = sd_cand.s[i];
    for (int i = 0; i < n; i++)
        al[i] = strlen(a[i]);
    rc = roost_store_eval(st, &lua_check, 2, n, a, al, on_check, x);
    if (rc < 0)
        free(x);
fail_kr:
    free(kr);
fail_ks:
    free(ks);
fail_sd:
    roost_store_blockcheck_cand_clear(&sd_cand);
fail_rc:
    roost_store_blockcheck_cand_clear(&rc_cand);
    return rc;
}
