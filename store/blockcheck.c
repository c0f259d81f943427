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
 * then the sender's candidates. Most users block nobody: one EXISTS over
 * both keys answers that case alone; otherwise one SMISMEMBER per list
 * (all zeros on an absent key), not one SISMEMBER per candidate. */
static roost_lua_t lua_check = {
    "if redis.call('EXISTS', KEYS[1], KEYS[2]) == 0 then return 0 end\n"
    "local nr = tonumber(ARGV[1])\n"
    "local m = redis.call('SMISMEMBER', KEYS[1], unpack(ARGV, 2, nr + 1))\n"
    "for i = 1, #m do\n"
    "  if m[i] == 1 then return 1 end\n"
    "end\n"
    "m = redis.call('SMISMEMBER', KEYS[2], unpack(ARGV, nr + 2, #ARGV))\n"
    "for i = 1, #m do\n"
    "  if m[i] == 1 then return 2 end\n"
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

static int list_has(const roost_store_blocklist_t *b, const roost_blockcheck_cand_t *c)
{
    for (size_t i = 0; i < b->n; i++)
        for (size_t j = 0; j < c->n; j++)
            if (strcmp(b->items[i], c->s[j]) == 0)
                return 1;
    return 0;
}

int roost_store_blockcheck_cached(roost_store_t *st, const roost_jid_t *sender,
                                  const roost_jid_t *recipient, int *verdict)
{
    roost_blockcheck_cand_t rc_cand, sd_cand;
    int hit = 0;

    if (!st || !sender || !recipient || !sender->local || !recipient->local || !verdict)
        return 0;
    char *ks = roost_key_block(sender->bare), *kr = roost_key_block(recipient->bare);
    if (!ks || !kr)
        goto out;
    const roost_store_blocklist_t *bs = roost_store_block_cached(st, ks);
    const roost_store_blocklist_t *br = roost_store_block_cached(st, kr);
    /* A miss starts a read for next time; this stanza takes the script. */
    if (bs == NULL)
        roost_store_block_fill(st, ks);
    if (br == NULL)
        roost_store_block_fill(st, kr);
    if (bs == NULL || br == NULL || bs->big || br->big)
        goto out;
    if (roost_store_blockcheck_candidates(recipient, &rc_cand) < 0)
        goto out;
    if (roost_store_blockcheck_candidates(sender, &sd_cand) < 0) {
        roost_store_blockcheck_cand_clear(&rc_cand);
        goto out;
    }
    *verdict = list_has(bs, &rc_cand) ? ROOST_BLOCKCHECK_BY_SENDER
             : list_has(br, &sd_cand) ? ROOST_BLOCKCHECK_BY_RECIPIENT
                                      : ROOST_BLOCKCHECK_NONE;
    hit = 1;
    roost_store_blockcheck_cand_clear(&sd_cand);
    roost_store_blockcheck_cand_clear(&rc_cand);
out:
    free(ks);
    free(kr);
    return hit;
}

/* ---- presence fan-out filter ---------------------------------------------- */

#define FILTER_CHUNK 256
#define FILTER_MAX 4096

/* KEYS[1] the user's list, KEYS[2..] the contacts' lists. ARGV[1] = number
 * of user candidates u, ARGV[2..1+u] the candidates, then per contact its
 * bare JID and its domain. Returns one 0/1 per contact. */
static roost_lua_t lua_filter = {
    "local u = tonumber(ARGV[1])\n"
    "local out = {}\n"
    "local own = redis.call('EXISTS', KEYS[1]) == 1\n"
    "for i = 2, #KEYS do\n"
    "  local b = 0\n"
    "  local base = 1 + u + (i - 2) * 2\n"
    "  if own and (redis.call('SISMEMBER', KEYS[1], ARGV[base + 1]) == 1 or\n"
    "              redis.call('SISMEMBER', KEYS[1], ARGV[base + 2]) == 1) then\n"
    "    b = 1\n"
    "  elseif redis.call('EXISTS', KEYS[i]) == 1 then\n"
    "    for j = 2, 1 + u do\n"
    "      if redis.call('SISMEMBER', KEYS[i], ARGV[j]) == 1 then b = 1 break end\n"
    "    end\n"
    "  end\n"
    "  out[#out + 1] = b\n"
    "end\n"
    "return out\n",
    ""
};

typedef struct {
    roost_store_block_filter_cb cb;
    void *data;
    unsigned char *blocked;
    size_t n;
    size_t pending;
    int status;
} filter_t;

typedef struct {
    filter_t *f;
    size_t off, n;
} filter_chunk_t;

static void filter_done(filter_t *f)
{
    f->cb(f->status, f->blocked, f->n, f->data);
    free(f->blocked);
    free(f);
}

static void on_filter(int status, void *reply, void *data)
{
    filter_chunk_t *c = data;
    filter_t *f = c->f;
    const redisReply *r = reply;
    if (status != 0) {
        f->status = status;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != c->n) {
        f->status = ROOST_EREDIS;
    } else {
        for (size_t i = 0; i < c->n; i++)
            f->blocked[c->off + i] = r->element[i]->type == REDIS_REPLY_INTEGER &&
                                     r->element[i]->integer == 1;
    }
    free(c);
    if (--f->pending == 0)
        filter_done(f);
}

static char *domain_of(const char *bare)
{
    const char *at = strchr(bare, '@');
    return strdup(at != NULL ? at + 1 : bare);
}

int roost_store_block_filter(roost_store_t *st, const roost_jid_t *user,
                             const char *const *bares, size_t n,
                             roost_store_block_filter_cb cb, void *data)
{
    roost_blockcheck_cand_t cand;
    int rc;
    if (user == NULL || cb == NULL || n == 0 || n > FILTER_MAX)
        return ROOST_EINVAL;
    if ((rc = roost_store_blockcheck_candidates(user, &cand)) != 0)
        return rc;
    filter_t *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->blocked = calloc(n, 1)) == NULL) {
        free(f);
        roost_store_blockcheck_cand_clear(&cand);
        return ROOST_ENOMEM;
    }
    f->cb = cb;
    f->data = data;
    f->n = n;
    f->pending = 1;
    for (size_t off = 0; off < n; off += FILTER_CHUNK) {
        size_t m = n - off < FILTER_CHUNK ? n - off : FILTER_CHUNK;
        size_t na = 1 + m + 1 + cand.n + 2 * m;
        const char **a = calloc(na, sizeof(*a));
        size_t *al = calloc(na, sizeof(*al));
        char **owned = calloc(2 * m + 2, sizeof(*owned));
        filter_chunk_t *c = calloc(1, sizeof(*c));
        size_t k = 0, no = 0;
        char ucount[16];
        int ok = a != NULL && al != NULL && owned != NULL && c != NULL;
        if (ok) {
            owned[no] = roost_key_block(user->bare);
            ok = owned[no] != NULL;
            a[k++] = owned[no++];
        }
        for (size_t i = 0; ok && i < m; i++) {
            owned[no] = roost_key_block(bares[off + i]);
            ok = owned[no] != NULL;
            a[k++] = owned[no++];
        }
        if (ok) {
            snprintf(ucount, sizeof(ucount), "%zu", cand.n);
            a[k++] = ucount;
            for (size_t j = 0; j < cand.n; j++)
                a[k++] = cand.s[j];
        }
        /* Domains are built into one block so they are freed together. */
        char **doms = ok ? calloc(m, sizeof(*doms)) : NULL;
        ok = ok && doms != NULL;
        for (size_t i = 0; ok && i < m; i++) {
            doms[i] = domain_of(bares[off + i]);
            ok = doms[i] != NULL;
            a[k++] = bares[off + i];
            a[k++] = doms[i];
        }
        if (ok) {
            for (size_t i = 0; i < k; i++)
                al[i] = strlen(a[i]);
            c->f = f;
            c->off = off;
            c->n = m;
            rc = roost_store_eval(st, &lua_filter, (int)(1 + m), (int)k, a, al, on_filter, c);
            if (rc == 0) {
                f->pending++;
                c = NULL;
            } else {
                f->status = rc;
            }
        } else {
            f->status = ROOST_ENOMEM;
        }
        for (size_t i = 0; doms != NULL && i < m; i++)
            free(doms[i]);
        free(doms);
        for (size_t i = 0; i < no; i++)
            free(owned[i]);
        free(owned);
        free(a);
        free(al);
        free(c);
    }
    roost_store_blockcheck_cand_clear(&cand);
    if (--f->pending == 0) {
        /* Nothing was sent: report through the return value instead, the
         * callback must not run on the caller's stack. */
        rc = f->status != 0 ? f->status : ROOST_EREDIS;
        free(f->blocked);
        free(f);
        return rc;
    }
    return 0;
}
