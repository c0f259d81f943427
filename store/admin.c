/* roostctl's synchronous side of the store: account and session
 * administration with blocking hiredis calls, each under a timeout. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "proto/roost.pb-c.h"
#include "store/admin.h"
#include "store/cred.h"
#include "store/error.h"
#include "store/keys.h"
#include "store/scripts.h"

#define LIST_MAX 1000000   /* entries we are willing to hold for a listing */

struct roost_admin_s {
    redisContext *c;
    char err[256];
};

/* ---- URL --------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies s[0..n) decoding %XX; NULL on a bad escape, %00 or no memory. */
static char *pct_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1), *p = o;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *p++ = s[i];
            continue;
        }
        int h, l;
        if (i + 2 >= n || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0
            || (h == 0 && l == 0))
            goto fail_o;
        *p++ = (char)(h * 16 + l);
        i += 2;
    }
    *p = '\0';
    return o;
fail_o:
    free(o);
    return NULL;
}

static int parse_uint(const char *s, size_t n, long max, long *out)
{
    long v = 0;
    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int roost_admin_url_parse(const char *url, roost_redis_url_t *out)
{
    static const char scheme[] = "redis://";
    const char *p, *end, *at, *slash, *hs, *he, *colon = NULL;
    long v;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!url || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return ROOST_EINVAL;
    p = url + sizeof(scheme) - 1;
    end = p + strlen(p);
    slash = strchr(p, '/');
    if (!slash)
        slash = end;
    at = memrchr(p, '@', (size_t)(slash - p));
    if (at) {
        const char *c = memchr(p, ':', (size_t)(at - p));
        if (!c)
            goto fail_out;   /* "user@" without a password is meaningless */
        if (c > p && !(out->user = pct_decode(p, (size_t)(c - p))))
            goto fail_out;
        if (!(out->password = pct_decode(c + 1, (size_t)(at - c - 1))))
            goto fail_out;
        p = at + 1;
    }
    hs = p;
    if (*hs == '[') {
        he = memchr(hs, ']', (size_t)(slash - hs));
        if (!he)
            goto fail_out;
        hs++;
        if (he + 1 < slash) {
            if (he[1] != ':')
                goto fail_out;
            colon = he + 1;
        }
    } else {
        colon = memchr(hs, ':', (size_t)(slash - hs));
        he = colon ? colon : slash;
    }
    if (he == hs)
        goto fail_out;
    if (!(out->host = strndup(hs, (size_t)(he - hs))))
        goto fail_out;
    if (colon) {
        if (parse_uint(colon + 1, (size_t)(slash - colon - 1), 65535, &v) < 0 || v == 0)
            goto fail_out;
        out->port = (int)v;
    }
    if (slash < end && slash + 1 < end) {
        if (parse_uint(slash + 1, (size_t)(end - slash - 1), 1000000, &v) < 0)
            goto fail_out;
        out->db = (int)v;
    }
    return 0;
fail_out:
    roost_admin_url_clear(out);
    return ROOST_EINVAL;
}

void roost_admin_url_clear(roost_redis_url_t *u)
{
    if (!u)
        return;
    free(u->host);
    free(u->user);
    if (u->password) {
        memset(u->password, 0, strlen(u->password));
        free(u->password);
    }
    memset(u, 0, sizeof(*u));
    u->port = 6379;
}

/* ---- connection and commands ------------------------------------------ */

static void set_err(roost_admin_t *a, const char *fmt, const char *detail)
{
    snprintf(a->err, sizeof(a->err), fmt, detail ? detail : "");
}

/* Runs one command; returns the reply or NULL (a->err set) on I/O failure
 * or an error reply. */
static redisReply *cmd(roost_admin_t *a, int argc, const char **argv, const size_t *lens)
{
    redisReply *r = redisCommandArgv(a->c, argc, argv, lens);
    if (!r) {
        set_err(a, "redis: %s", a->c->errstr[0] ? a->c->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        set_err(a, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

int roost_admin_connect(const roost_redis_url_t *u, unsigned timeout_ms,
                        roost_admin_t **out, char *errbuf, size_t errlen)
{
    struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000 };
    roost_admin_t *a;
    redisReply *r;
    int rc = ROOST_ENOMEM;

    *out = NULL;
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (!(a = calloc(1, sizeof(*a))))
        goto fail;
    a->c = redisConnectWithTimeout(u->host, u->port, tv);
    rc = ROOST_EIO;
    if (!a->c || a->c->err) {
        if (errbuf)
            snprintf(errbuf, errlen, "cannot connect to redis at %s:%d: %s", u->host, u->port,
                     a->c ? a->c->errstr : "out of memory");
        goto fail_a;
    }
    redisSetTimeout(a->c, tv);
    if (u->password) {
        const char *argv[3] = { "AUTH", u->user ? u->user : u->password, u->password };
        r = cmd(a, u->user ? 3 : 2, argv, NULL);
        if (!r) {
            rc = ROOST_EAUTH;
            goto fail_msg;
        }
        freeReplyObject(r);
    }
    if (u->db > 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", u->db);
        const char *argv[2] = { "SELECT", db };
        if (!(r = cmd(a, 2, argv, NULL))) {
            rc = ROOST_EREDIS;
            goto fail_msg;
        }
        freeReplyObject(r);
    }
    *out = a;
    return 0;
fail_msg:
    if (errbuf)
        snprintf(errbuf, errlen, "%s", a->err);
fail_a:
    roost_admin_free(a);
fail:
    return rc;
}

void roost_admin_free(roost_admin_t *a)
{
    if (!a)
        return;
    if (a->c)
        redisFree(a->c);
    free(a);
}

const char *roost_admin_error(const roost_admin_t *a)
{
    return a->err;
}

/* EVAL of one of our scripts; args given as NUL-free strings or with lens. */
static redisReply *eval(roost_admin_t *a, roost_script_id_t id, int nkeys, int n,
                        const char **args, const size_t *lens)
{
    const char *argv[16];
    size_t al[16];
    char nk[8];

    if (n + 3 > 16)
        return NULL;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVAL";
    argv[1] = roost_script_text(id);
    argv[2] = nk;
    for (int i = 0; i < 3; i++)
        al[i] = strlen(argv[i]);
    for (int i = 0; i < n; i++) {
        argv[3 + i] = args[i];
        al[3 + i] = lens ? lens[i] : strlen(args[i]);
    }
    return cmd(a, n + 3, argv, al);
}

/* ---- accounts -------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* Packs a fresh SCRAM credential for hash into *out (malloc'd). */
static int pack_cred(roost_hash_t hash, const char *pw, size_t plen, uint8_t **out, size_t *olen)
{
    Roost__ScramCred m = ROOST__SCRAM_CRED__INIT;
    roost_scram_cred_t cred;
    size_t kl = roost_hash_len(hash);
    int rc = roost_cred_new(hash, pw, plen, ROOST_CRED_ITER_DEFAULT, &cred);

    if (rc < 0)
        return rc;
    m.hash = (uint32_t)hash;
    m.salt.data = cred.salt;
    m.salt.len = cred.salt_len;
    m.iterations = cred.iterations;
    m.stored_key.data = cred.stored_key;
    m.stored_key.len = kl;
    m.server_key.data = cred.server_key;
    m.server_key.len = kl;
    *olen = roost__scram_cred__get_packed_size(&m);
    rc = ROOST_ENOMEM;
    if ((*out = malloc(*olen))) {
        roost__scram_cred__pack(&m, *out);
        rc = 0;
    }
    memset(&cred, 0, sizeof(cred));
    return rc;
}

/* Shared by add and passwd: both credentials, packed. */
static int make_creds(roost_admin_t *a, const char *pw, size_t plen,
                      uint8_t **c1, size_t *l1, uint8_t **c256, size_t *l256)
{
    int rc = pack_cred(ROOST_HASH_SHA1, pw, plen, c1, l1);
    if (rc == 0 && (rc = pack_cred(ROOST_HASH_SHA256, pw, plen, c256, l256)) < 0)
        free(*c1);
    if (rc < 0)
        set_err(a, "%s", rc == ROOST_EINVAL ? "password not acceptable (SASLprep)"
                                            : roost_strerror(rc));
    return rc;
}

int roost_admin_user_add(roost_admin_t *a, const roost_jid_t *jid,
                         const char *password, size_t plen)
{
    Roost__Account acct = ROOST__ACCOUNT__INIT;
    uint8_t *c1, *c256, *meta;
    size_t l1, l256, lm;
    redisReply *r;
    int rc;

    if (!jid || !jid->local || jid->resource) {
        set_err(a, "%s", "an account needs a bare JID with a localpart");
        return ROOST_EINVAL;
    }
    if ((rc = make_creds(a, password, plen, &c1, &l1, &c256, &l256)) < 0)
        return rc;
    rc = ROOST_ENOMEM;
    acct.version = 1;
    acct.created = now_ms();
    lm = roost__account__get_packed_size(&acct);
    if (!(meta = malloc(lm ? lm : 1)))
        goto fail_creds;
    roost__account__pack(&acct, meta);
    char *ak = roost_key_acct(jid->bare);
    char *uk = roost_key_users(jid->domain);
    if (!ak || !uk)
        goto fail_keys;
    const char *args[] = { ak, uk, ROOST_KEY_DOMAINS, (const char *)meta, (const char *)c1,
                           (const char *)c256, jid->local, jid->domain };
    size_t lens[] = { strlen(ak), strlen(uk), strlen(ROOST_KEY_DOMAINS), lm, l1, l256,
                      strlen(jid->local), strlen(jid->domain) };
    rc = ROOST_EREDIS;
    if (!(r = eval(a, ROOST_SCRIPT_USER_ADD, 3, 8, args, lens)))
        goto fail_keys;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        rc = 0;
    } else {
        rc = ROOST_ECONFLICT;
        set_err(a, "%s already exists", jid->bare);
    }
    freeReplyObject(r);
fail_keys:
    free(ak);
    free(uk);
    free(meta);
fail_creds:
    free(c1);
    free(c256);
    return rc;
}

int roost_admin_user_passwd(roost_admin_t *a, const roost_jid_t *jid,
                            const char *password, size_t plen)
{
    uint8_t *c1, *c256;
    size_t l1, l256;
    redisReply *r;
    int rc;

    if (!jid || !jid->local || jid->resource) {
        set_err(a, "%s", "an account needs a bare JID with a localpart");
        return ROOST_EINVAL;
    }
    if ((rc = make_creds(a, password, plen, &c1, &l1, &c256, &l256)) < 0)
        return rc;
    rc = ROOST_ENOMEM;
    char *ak = roost_key_acct(jid->bare);
    if (!ak)
        goto fail_creds;
    const char *args[] = { ak, (const char *)c1, (const char *)c256 };
    size_t lens[] = { strlen(ak), l1, l256 };
    rc = ROOST_EREDIS;
    if ((r = eval(a, ROOST_SCRIPT_USER_PASSWD, 1, 3, args, lens))) {
        rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 0 : ROOST_ENOTFOUND;
        if (rc < 0)
            set_err(a, "%s does not exist", jid->bare);
        freeReplyObject(r);
    }
    free(ak);
fail_creds:
    free(c1);
    free(c256);
    return rc;
}

/* ---- sessions -------------------------------------------------------- */

/* PUBLISHes a KICK for rec (of bare) to its node; *receivers from PUBLISH. */
static int publish_kick(roost_admin_t *a, const char *bare, const roost_session_t *rec,
                        const char *condition, long long *receivers)
{
    Roost__RouteEnvelope env = ROOST__ROUTE_ENVELOPE__INIT;
    Roost__RouteEnvelope__Target t = ROOST__ROUTE_ENVELOPE__TARGET__INIT;
    Roost__RouteEnvelope__Target *tp = &t;
    redisReply *r;
    int rc = ROOST_ENOMEM;
    size_t lb = strlen(bare), lr = strlen(rec->resource);
    char *fj = malloc(lb + lr + 2);

    if (!fj)
        return rc;
    memcpy(fj, bare, lb);
    fj[lb] = '/';
    memcpy(fj + lb + 1, rec->resource, lr + 1);
    t.jid = fj;
    t.conn_id = rec->conn_id;
    env.version = 1;
    env.kind = ROOST__ROUTE_ENVELOPE__KIND__KICK;
    env.to = fj;
    env.targets = &tp;
    env.n_targets = 1;
    env.origin_node = (char *)"roostctl";
    env.condition = (char *)condition;
    size_t len = roost__route_envelope__get_packed_size(&env);
    uint8_t *buf = malloc(len ? len : 1);
    char *ch = roost_key_route(rec->node_id);
    if (!buf || !ch)
        goto fail_buf;
    roost__route_envelope__pack(&env, buf);
    const char *argv[] = { "PUBLISH", ch, (const char *)buf };
    size_t al[] = { 7, strlen(ch), len };
    rc = ROOST_EREDIS;
    if ((r = cmd(a, 3, argv, al))) {
        *receivers = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        freeReplyObject(r);
        rc = 0;
    }
fail_buf:
    free(ch);
    free(buf);
    free(fj);
    return rc;
}

/* Removes rec if it still has the same owner (the unbind script, on behalf
 * of the owner node). */
static int unbind_owned(roost_admin_t *a, const char *bare, const roost_session_t *rec)
{
    char ep[24], conn[24];
    redisReply *r;
    int rc = ROOST_ENOMEM;
    char *sk = roost_key_sess(bare), *nk = roost_key_nodesess(rec->node_id);
    size_t lb = strlen(bare), lr = strlen(rec->resource);
    char *fj = malloc(lb + lr + 2);

    if (!sk || !nk || !fj)
        goto fail_keys;
    memcpy(fj, bare, lb);
    fj[lb] = '/';
    memcpy(fj + lb + 1, rec->resource, lr + 1);
    snprintf(ep, sizeof(ep), "%" PRIu64, rec->node_epoch);
    snprintf(conn, sizeof(conn), "%" PRIu64, rec->conn_id);
    const char *args[] = { sk, nk, rec->resource, rec->node_id, ep, conn, fj };
    rc = ROOST_EREDIS;
    if ((r = eval(a, ROOST_SCRIPT_UNBIND, 2, 7, args, NULL))) {
        freeReplyObject(r);
        rc = 0;
    }
fail_keys:
    free(fj);
    free(nk);
    free(sk);
    return rc;
}

/* HGETALL of one user's sessions, decoded; appended to *v. */
static int load_sessions(roost_admin_t *a, const char *bare, roost_admin_session_t **v,
                         size_t *n, size_t *cap)
{
    char *sk = roost_key_sess(bare);
    redisReply *r;
    int rc = ROOST_ENOMEM;

    if (!sk)
        return rc;
    const char *argv[] = { "HGETALL", sk };
    rc = ROOST_EREDIS;
    if (!(r = cmd(a, 2, argv, NULL)))
        goto fail_sk;
    rc = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *val = r->element[i + 1];
        roost_admin_session_t s;
        if (f->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING
            || strlen(f->str) != f->len)
            continue;
        if (roost_session_decode(&s.rec, f->str, (const uint8_t *)val->str, val->len) < 0)
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 8;
            roost_admin_session_t *nv = nc <= LIST_MAX ? realloc(*v, nc * sizeof(**v)) : NULL;
            if (!nv) {
                roost_session_clear(&s.rec);
                rc = ROOST_ENOMEM;
                break;
            }
            *v = nv;
            *cap = nc;
        }
        if (!(s.bare = strdup(bare))) {
            roost_session_clear(&s.rec);
            rc = ROOST_ENOMEM;
            break;
        }
        (*v)[(*n)++] = s;
    }
    freeReplyObject(r);
fail_sk:
    free(sk);
    return rc;
}

/* Escapes glob metacharacters so a bare JID matches itself in SCAN MATCH. */
static char *glob_escape(const char *s)
{
    char *o = malloc(2 * strlen(s) + 1), *p = o;
    if (!o)
        return NULL;
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            *p++ = '\\';
        *p++ = *s;
    }
    *p = '\0';
    return o;
}

/* Calls fn for every key matching pattern (SCAN; duplicates possible). */
static int scan_keys(roost_admin_t *a, const char *pattern,
                     int (*fn)(roost_admin_t *, const char *, size_t, void *), void *arg)
{
    char cursor[32] = "0";
    do {
        const char *argv[] = { "SCAN", cursor, "MATCH", pattern, "COUNT", "1000" };
        redisReply *r = cmd(a, 6, argv, NULL);
        if (!r)
            return ROOST_EREDIS;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
            || r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor)
            || r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            set_err(a, "%s", "redis: unexpected SCAN reply");
            return ROOST_EREDIS;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const redisReply *k = r->element[1]->element[i];
            int rc = k->type == REDIS_REPLY_STRING ? fn(a, k->str, k->len, arg) : 0;
            if (rc < 0) {
                freeReplyObject(r);
                return rc;
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int del_key(roost_admin_t *a, const char *key, size_t len, void *arg)
{
    const char *argv[] = { "DEL", key };
    size_t al[] = { 3, len };
    redisReply *r = cmd(a, 2, argv, al);
    if (!r)
        return ROOST_EREDIS;
    freeReplyObject(r);
    return 0;
}

int roost_admin_user_del(roost_admin_t *a, const roost_jid_t *jid)
{
    roost_admin_session_t *v = NULL;
    size_t n = 0, cap = 0;
    redisReply *r;
    char *keys[5] = { 0 };
    int rc;

    if (!jid || !jid->local || jid->resource) {
        set_err(a, "%s", "an account needs a bare JID with a localpart");
        return ROOST_EINVAL;
    }
    rc = ROOST_ENOMEM;
    keys[0] = roost_key_acct(jid->bare);
    keys[1] = roost_key_sess(jid->bare);
    keys[2] = roost_key_roster(jid->bare);
    keys[3] = roost_key_rosterver(jid->bare);
    keys[4] = roost_key_offline(jid->bare);
    char *uk = roost_key_users(jid->domain);
    for (int i = 0; i < 5; i++)
        if (!keys[i])
            goto fail_keys;
    if (!uk)
        goto fail_keys;
    const char *ex[] = { "EXISTS", keys[0] };
    rc = ROOST_EREDIS;
    if (!(r = cmd(a, 2, ex, NULL)))
        goto fail_keys;
    int exists = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    if (!exists) {
        rc = ROOST_ENOTFOUND;
        set_err(a, "%s does not exist", jid->bare);
        goto fail_keys;
    }
    /* Delete the account first so nobody authenticates again, then end the
     * live sessions. */
    const char *del[] = { "DEL", keys[0], keys[2], keys[3], keys[4] };
    if (!(r = cmd(a, 5, del, NULL)))
        goto fail_keys;
    freeReplyObject(r);
    if ((rc = load_sessions(a, jid->bare, &v, &n, &cap)) < 0)
        goto fail_v;
    for (size_t i = 0; i < n; i++) {
        long long recv = 0;
        if ((rc = publish_kick(a, jid->bare, &v[i].rec, "not-authorized", &recv)) < 0
            || (rc = unbind_owned(a, jid->bare, &v[i].rec)) < 0)
            goto fail_v;
    }
    rc = ROOST_ENOMEM;
    char *pat_bare = glob_escape(jid->bare);
    if (!pat_bare)
        goto fail_v;
    size_t pl = strlen(pat_bare) + 16;
    char *pat = malloc(pl);
    if (pat) {
        snprintf(pat, pl, "roost:sm:{%s}:*", pat_bare);
        rc = scan_keys(a, pat, del_key, NULL);
        free(pat);
    }
    free(pat_bare);
    if (rc < 0)
        goto fail_v;
    rc = ROOST_EREDIS;
    const char *rest[] = { "DEL", keys[1] };   /* leftovers we could not decode */
    const char *srem[] = { "SREM", uk, jid->local };
    const char *scard[] = { "SCARD", uk };
    if (!(r = cmd(a, 2, rest, NULL)))
        goto fail_v;
    freeReplyObject(r);
    /* Nodes caching this user's sessions drop them (store/cache.h). */
    const char *inval[] = { "PUBLISH", ROOST_KEY_INVAL, keys[1] };
    if (!(r = cmd(a, 3, inval, NULL)))
        goto fail_v;
    freeReplyObject(r);
    if (!(r = cmd(a, 3, srem, NULL)))
        goto fail_v;
    freeReplyObject(r);
    if (!(r = cmd(a, 2, scard, NULL)))
        goto fail_v;
    int empty = r->type == REDIS_REPLY_INTEGER && r->integer == 0;
    freeReplyObject(r);
    if (empty) {
        const char *sd[] = { "SREM", ROOST_KEY_DOMAINS, jid->domain };
        if (!(r = cmd(a, 3, sd, NULL)))
            goto fail_v;
        freeReplyObject(r);
    }
    rc = 0;
fail_v:
    roost_admin_sessions_free(v, n);
fail_keys:
    free(uk);
    for (int i = 0; i < 5; i++)
        free(keys[i]);
    return rc;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* SMEMBERS of key as a sorted malloc'd vector. */
static int members(roost_admin_t *a, const char *key, char ***out, size_t *n)
{
    const char *argv[] = { "SMEMBERS", key };
    redisReply *r = cmd(a, 2, argv, NULL);
    char **v = NULL;

    *out = NULL;
    *n = 0;
    if (!r)
        return ROOST_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY || r->elements > LIST_MAX) {
        freeReplyObject(r);
        set_err(a, "%s", "redis: unexpected SMEMBERS reply");
        return ROOST_EREDIS;
    }
    if (r->elements && !(v = calloc(r->elements, sizeof(char *)))) {
        freeReplyObject(r);
        return ROOST_ENOMEM;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || strlen(e->str) != e->len)
            continue;
        if (!(v[*n] = strdup(e->str))) {
            freeReplyObject(r);
            roost_admin_strv_free(v, *n);
            *n = 0;
            return ROOST_ENOMEM;
        }
        (*n)++;
    }
    freeReplyObject(r);
    qsort(v, *n, sizeof(char *), cmp_str);
    *out = v;
    return 0;
}

int roost_admin_user_list(roost_admin_t *a, const char *domain, char ***out, size_t *n)
{
    char **doms = NULL, **res = NULL;
    size_t nd = 0, nr = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (domain) {
        doms = malloc(sizeof(char *));
        if (!doms || !(doms[0] = strdup(domain))) {
            free(doms);
            return ROOST_ENOMEM;
        }
        nd = 1;
    } else if ((rc = members(a, ROOST_KEY_DOMAINS, &doms, &nd)) < 0) {
        return rc;
    }
    rc = 0;
    for (size_t d = 0; d < nd && rc == 0; d++) {
        char **locals;
        size_t nl;
        char *uk = roost_key_users(doms[d]);
        if (!uk) {
            rc = ROOST_ENOMEM;
            break;
        }
        rc = members(a, uk, &locals, &nl);
        free(uk);
        for (size_t i = 0; i < nl && rc == 0; i++) {
            if (nr == cap) {
                size_t nc = cap ? cap * 2 : 16;
                char **nv = nc <= LIST_MAX ? realloc(res, nc * sizeof(char *)) : NULL;
                if (!nv) {
                    rc = ROOST_ENOMEM;
                    break;
                }
                res = nv;
                cap = nc;
            }
            size_t l = strlen(locals[i]) + strlen(doms[d]) + 2;
            if (!(res[nr] = malloc(l))) {
                rc = ROOST_ENOMEM;
                break;
            }
            snprintf(res[nr++], l, "%s@%s", locals[i], doms[d]);
        }
        roost_admin_strv_free(locals, nl);
    }
    roost_admin_strv_free(doms, nd);
    if (rc < 0) {
        roost_admin_strv_free(res, nr);
        return rc;
    }
    qsort(res, nr, sizeof(char *), cmp_str);
    *out = res;
    *n = nr;
    return 0;
}

void roost_admin_strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

typedef struct {
    char **bares;
    size_t n, cap;
} bare_set_t;

/* SCAN callback: remembers the bare JID inside roost:sess:{...}. */
static int collect_bare(roost_admin_t *a, const char *key, size_t len, void *arg)
{
    bare_set_t *b = arg;
    size_t pl = strlen(ROOST_KEY_SESS_PREFIX);

    if (len < pl + 2 || key[len - 1] != '}' || strlen(key) != len)
        return 0;
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 16;
        char **nv = nc <= LIST_MAX ? realloc(b->bares, nc * sizeof(char *)) : NULL;
        if (!nv)
            return ROOST_ENOMEM;
        b->bares = nv;
        b->cap = nc;
    }
    if (!(b->bares[b->n] = strndup(key + pl, len - pl - 1)))
        return ROOST_ENOMEM;
    b->n++;
    return 0;
}

static int cmp_session(const void *x, const void *y)
{
    const roost_admin_session_t *p = x, *q = y;
    int c = strcmp(p->bare, q->bare);
    return c ? c : strcmp(p->rec.resource, q->rec.resource);
}

int roost_admin_session_list(roost_admin_t *a, const char *bare,
                             roost_admin_session_t **out, size_t *n)
{
    roost_admin_session_t *v = NULL;
    size_t nv = 0, cap = 0;
    bare_set_t b = { 0 };
    int rc = 0;

    *out = NULL;
    *n = 0;
    if (bare) {
        rc = load_sessions(a, bare, &v, &nv, &cap);
    } else {
        rc = scan_keys(a, ROOST_KEY_SESS_PREFIX "*", collect_bare, &b);
        if (rc == 0) {
            qsort(b.bares, b.n, sizeof(char *), cmp_str);
            for (size_t i = 0; i < b.n && rc == 0; i++)
                if (i == 0 || strcmp(b.bares[i], b.bares[i - 1]) != 0)   /* SCAN repeats */
                    rc = load_sessions(a, b.bares[i], &v, &nv, &cap);
        }
        roost_admin_strv_free(b.bares, b.n);
    }
    if (rc < 0) {
        roost_admin_sessions_free(v, nv);
        return rc;
    }
    if (nv)
        qsort(v, nv, sizeof(*v), cmp_session);
    *out = v;
    *n = nv;
    return 0;
}

void roost_admin_sessions_free(roost_admin_session_t *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++) {
        free(s[i].bare);
        roost_session_clear(&s[i].rec);
    }
    free(s);
}

int roost_admin_session_kick(roost_admin_t *a, const char *bare, const char *resource,
                             const char *condition)
{
    roost_session_t rec;
    redisReply *r;
    long long recv = 0;
    int rc;
    char *sk = roost_key_sess(bare);

    if (!sk)
        return ROOST_ENOMEM;
    const char *argv[] = { "HGET", sk, resource };
    r = cmd(a, 3, argv, NULL);
    free(sk);
    if (!r)
        return ROOST_EREDIS;
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        set_err(a, "no session %s", resource);
        return ROOST_ENOTFOUND;
    }
    rc = roost_session_decode(&rec, resource, (const uint8_t *)r->str, r->len);
    freeReplyObject(r);
    if (rc < 0) {
        set_err(a, "%s", "malformed session record");
        return rc;
    }
    rc = publish_kick(a, bare, &rec, condition, &recv);
    /* Nobody listens on that node: it is gone, so the record is stale. */
    if (rc == 0 && recv == 0)
        rc = unbind_owned(a, bare, &rec);
    roost_session_clear(&rec);
    return rc;
}

/* ---- nodes ------------------------------------------------------------- */

static int cmp_node(const void *x, const void *y)
{
    return strcmp(((const roost_admin_node_t *)x)->node_id,
                  ((const roost_admin_node_t *)y)->node_id);
}

/* GET/PTTL of the lease, SCARD of nodesess and the last epoch of one node. */
static int node_details(roost_admin_t *a, roost_admin_node_t *nd)
{
    char *lk = roost_key_node(nd->node_id), *nk = roost_key_nodesess(nd->node_id);
    redisReply *r;
    int rc = ROOST_ENOMEM;

    if (!lk || !nk)
        goto fail_keys;
    rc = ROOST_EREDIS;
    const char *get[] = { "GET", lk };
    if (!(r = cmd(a, 2, get, NULL)))
        goto fail_keys;
    nd->alive = r->type == REDIS_REPLY_STRING &&
                roost_cluster_lease_parse(r->str, r->len, &nd->lease) == 0;
    freeReplyObject(r);
    const char *pttl[] = { "PTTL", lk };
    if (!(r = cmd(a, 2, pttl, NULL)))
        goto fail_keys;
    nd->ttl_ms = r->type == REDIS_REPLY_INTEGER ? r->integer : -2;
    freeReplyObject(r);
    const char *scard[] = { "SCARD", nk };
    if (!(r = cmd(a, 2, scard, NULL)))
        goto fail_keys;
    nd->sessions = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    if (!nd->alive) {
        const char *hget[] = { "HGET", ROOST_KEY_NODEEPOCHS, nd->node_id };
        if (!(r = cmd(a, 3, hget, NULL)))
            goto fail_keys;
        if (r->type == REDIS_REPLY_STRING)
            nd->lease.epoch = strtoull(r->str, NULL, 10);
        freeReplyObject(r);
    }
    rc = 0;
fail_keys:
    free(nk);
    free(lk);
    return rc;
}

int roost_admin_node_list(roost_admin_t *a, roost_admin_node_t **out, size_t *n)
{
    char last[16];
    roost_admin_node_t *v = NULL;
    size_t k = 0;
    redisReply *r;
    int rc = ROOST_EREDIS;

    *out = NULL;
    *n = 0;
    snprintf(last, sizeof(last), "%d", ROOST_CLUSTER_LIST_MAX - 1);
    const char *argv[] = { "ZRANGE", ROOST_KEY_NODES, "0", last, "WITHSCORES" };
    if (!(r = cmd(a, 5, argv, NULL)))
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2)
        goto fail_r;
    rc = ROOST_ENOMEM;
    if (r->elements && !(v = calloc(r->elements / 2, sizeof(*v))))
        goto fail_r;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *id = r->element[i], *sc = r->element[i + 1];
        if (id->type != REDIS_REPLY_STRING || strlen(id->str) != id->len ||
            !roost_session_node_id_valid(id->str))
            continue;
        snprintf(v[k].node_id, sizeof(v[k].node_id), "%s", id->str);
        v[k].heartbeat_ms = sc->type == REDIS_REPLY_STRING ? strtoull(sc->str, NULL, 10) : 0;
        if ((rc = node_details(a, &v[k])) < 0)
            goto fail_v;
        k++;
    }
    qsort(v, k, sizeof(*v), cmp_node);
    freeReplyObject(r);
    *out = v;
    *n = k;
    return 0;
fail_v:
    free(v);
fail_r:
    freeReplyObject(r);
    return rc;
}

int roost_admin_node_drain(roost_admin_t *a, const char *node_id, long long *receivers)
{
    Roost__RouteEnvelope env = ROOST__ROUTE_ENVELOPE__INIT;
    redisReply *r;
    int rc = ROOST_ENOMEM;

    *receivers = 0;
    if (!roost_session_node_id_valid(node_id))
        return ROOST_EINVAL;
    env.version = 1;
    env.kind = ROOST__ROUTE_ENVELOPE__KIND__DRAIN;
    env.origin_node = (char *)"roostctl";
    size_t len = roost__route_envelope__get_packed_size(&env);
    uint8_t *buf = malloc(len ? len : 1);
    char *ch = roost_key_route(node_id);
    if (!buf || !ch)
        goto fail_buf;
    roost__route_envelope__pack(&env, buf);
    const char *argv[] = { "PUBLISH", ch, (const char *)buf };
    size_t al[] = { 7, strlen(ch), len };
    rc = ROOST_EREDIS;
    if ((r = cmd(a, 3, argv, al))) {
        if (r->type == REDIS_REPLY_INTEGER) {
            *receivers = r->integer;
            rc = 0;
        } else {
            set_err(a, "%s", "redis: unexpected PUBLISH reply");
        }
        freeReplyObject(r);
    }
fail_buf:
    free(ch);
    free(buf);
    return rc;
}

int roost_admin_account_counts(roost_admin_t *a, roost_admin_count_t **out, size_t *n)
{
    char **doms;
    size_t nd;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = members(a, ROOST_KEY_DOMAINS, &doms, &nd)) < 0)
        return rc;
    roost_admin_count_t *v = nd ? calloc(nd, sizeof(*v)) : NULL;
    if (nd && !v) {
        roost_admin_strv_free(doms, nd);
        return ROOST_ENOMEM;
    }
    size_t k = 0;
    for (size_t d = 0; d < nd; d++) {
        char *uk = roost_key_users(doms[d]);
        if (!uk) {
            rc = ROOST_ENOMEM;
            break;
        }
        const char *argv[] = { "SCARD", uk };
        redisReply *r = cmd(a, 2, argv, NULL);
        free(uk);
        if (!r) {
            rc = ROOST_EREDIS;
            break;
        }
        if (r->type == REDIS_REPLY_INTEGER) {
            v[k].name = doms[d];
            doms[d] = NULL;
            v[k++].count = r->integer;
        }
        freeReplyObject(r);
    }
    roost_admin_strv_free(doms, nd);
    if (rc < 0) {
        roost_admin_counts_free(v, k);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

void roost_admin_counts_free(roost_admin_count_t *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}
