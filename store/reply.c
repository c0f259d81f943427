/* Shared reply decoding and argument helpers of the store modules
 * (store/reply.h). */
#include <stdlib.h>
#include <string.h>

#include "store/error.h"
#include "store/reply.h"

int roost_reply_rc(int status, const redisReply *r)
{
    if (status < 0)
        return status;
    if (!r || r->type == REDIS_REPLY_ERROR)
        return ROOST_EREDIS;
    return 0;
}

int roost_reply_limit(int status, const redisReply *r)
{
    int rc = roost_reply_rc(status, r);

    if (rc == 0 && r->type != REDIS_REPLY_INTEGER)
        rc = ROOST_EREDIS;
    if (rc == 0 && r->integer < 0)
        rc = ROOST_ELIMIT;
    return rc;
}

int roost_reply_cstr(const redisReply *e)
{
    return e->type == REDIS_REPLY_STRING && strlen(e->str) == e->len;
}

int roost_reply_jid(const redisReply *e)
{
    return e->type == REDIS_REPLY_STRING && e->len > 0 && e->len <= ROOST_SESS_JID_MAX
           && strlen(e->str) == e->len;
}

int roost_reply_strs(const redisReply *r, size_t max, int (*ok)(const redisReply *e),
                     const char ***out, size_t *n)
{
    const char **v = NULL;
    size_t k = 0;

    *out = NULL;
    *n = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        return ROOST_EREDIS;
    if (r->elements > max)
        return ROOST_ELIMIT;
    if (r->elements && !(v = calloc(r->elements, sizeof(*v))))
        return ROOST_ENOMEM;
    for (size_t i = 0; i < r->elements; i++)
        if (ok(r->element[i]))
            v[k++] = r->element[i]->str;
    *out = v;
    *n = k;
    return 0;
}

size_t roost_reply_sessions(const redisReply *h, roost_session_t *recs)
{
    size_t n = 0;

    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (!roost_reply_cstr(f) || v->type != REDIS_REPLY_STRING)
            continue;
        if (roost_session_decode(&recs[n], f->str, (const uint8_t *)v->str, v->len) == 0)
            n++;
    }
    return n;
}

void roost_reply_arglens(const char *const *a, size_t *al, int n)
{
    for (int i = 0; i < n; i++)
        al[i] = strlen(a[i]);
}
