/* Fan-out for feature modules (presence, roster, carbons): one store round
 * trip resolves the sessions of many users, then one delivery pass. */
#include <stdlib.h>
#include <string.h>

#include "node/fanout.h"
#include "node/c2s.h"
#include "node/deliver.h"
#include "store/error.h"
#include "store/jid.h"
#include "store/roster.h"

typedef struct {
    roost_server_t *srv;
    roost_fanout_t kind;
    char *except;
    char *bytes;
    size_t len;
    int stamp_to;
    size_t pending;             /* session reads still out */
    size_t reached;
    int status;
    roost_deliver_target_t *t;  /* collected targets, delivered at the end */
    size_t nt, capt;
    /* The targets' node ids, owned here: the records they came from (a
     * store reply, the node cache) are gone by the time the last read
     * completes and the targets are delivered. */
    char **nodes;
    size_t nnodes, capnodes;
    roost_router_done_cb done;
    void *data;
    uv_timer_t defer;           /* completes from the loop when nothing went out */
} fanout_t;

#define FANOUT_CHUNK 1024         /* users per multi-session read */

typedef struct {
    fanout_t *f;
    char **bares;
    size_t n;
} fanout_chunk_t;

/* Process-wide: one loop per process (DESIGN §8). */
static size_t async_held;

void roost_router_async_hold(void)
{
    async_held++;
}

void roost_router_async_release(void)
{
    if (async_held > 0)
        async_held--;
}

int roost_router_async_pending(void)
{
    return async_held > 0;
}

static int selected(const roost_session_t *r, roost_fanout_t kind)
{
    switch (kind) {
    case ROOST_FANOUT_AVAILABLE: return (r->flags & ROOST_SESS_F_AVAILABLE) != 0;
    case ROOST_FANOUT_INTERESTED: return (r->flags & ROOST_SESS_F_INTERESTED) != 0;
    case ROOST_FANOUT_CARBONS: return (r->flags & ROOST_SESS_F_CARBONS) != 0;
    case ROOST_FANOUT_ALL: return 1;
    }
    return 0;
}

static void fanout_finish(fanout_t *f)
{
    /* Every user's records are in: one delivery pass, so targets on the
     * same node share one envelope whatever user they belong to. */
    roost_deliver_targets(f->srv, f->t, f->nt, f->bytes, f->len, f->stamp_to, NULL, NULL);
    f->reached = f->nt;
    if (f->done != NULL)
        f->done(f->status, f->reached, f->data);
    roost_server_t *srv = f->srv;
    roost_router_async_release();
    roost_deliver_targets_free(f->t, f->nt);
    for (size_t i = 0; i < f->nnodes; i++)
        free(f->nodes[i]);
    free(f->nodes);
    free(f->except);
    free(f->bytes);
    free(f);
    srv->pending_ops--;
    roost_server_check_idle(srv);
}

static void on_fanout_deferred_closed(uv_handle_t *h)
{
    fanout_finish(h->data);
}

static void on_fanout_deferred(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, on_fanout_deferred_closed);
}

static void chunk_free(fanout_chunk_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->bares[i]);
    free(c->bares);
    free(c);
}

/* Collects bare's selected records r[0..cnt) as targets. */
static void add_user(fanout_t *f, const char *bare, const roost_session_t *r, size_t cnt)
{
    size_t *idx = calloc(cnt ? cnt : 1, sizeof(*idx));
    size_t k = 0;
    if (idx == NULL)
        return;
    for (size_t i = 0; i < cnt; i++)
        if (selected(&r[i], f->kind))
            idx[k++] = i;
    if (f->nt + k > f->capt) {
        size_t cap = (f->nt + k) * 2;
        roost_deliver_target_t *nt = realloc(f->t, cap * sizeof(*nt));
        if (nt != NULL) {
            f->t = nt;
            f->capt = cap;
        }
    }
    if (f->nt + k <= f->capt) {
        size_t from = f->nt;
        f->nt = roost_deliver_add_targets(f->t, f->nt, bare, r, idx, k, f->except);
        for (size_t i = from; i < f->nt; i++) {
            char *copy = NULL;
            if (f->nnodes == f->capnodes) {
                size_t cap = f->capnodes ? f->capnodes * 2 : 8;
                char **nn = realloc(f->nodes, cap * sizeof(*nn));
                if (nn != NULL) {
                    f->nodes = nn;
                    f->capnodes = cap;
                }
            }
            if (f->nnodes < f->capnodes && (copy = strdup(f->t[i].node_id)) != NULL)
                f->nodes[f->nnodes++] = copy;
            /* Without a copy the target cannot outlive r: drop it. */
            if (copy == NULL) {
                free(f->t[i].full);
                f->t[i].full = NULL;
                f->t[i].node_id = "";
            } else {
                f->t[i].node_id = copy;
            }
        }
    }
    free(idx);
}

static void on_fanout_chunk(int status, const roost_session_t *recs, const size_t *offs,
                            const size_t *counts, size_t n, void *data)
{
    fanout_chunk_t *c = data;
    fanout_t *f = c->f;
    if (status != 0) {
        f->status = status;
        n = 0;
    }
    for (size_t u = 0; u < n && u < c->n; u++)
        add_user(f, c->bares[u], recs + offs[u], counts[u]);
    chunk_free(c);
    if (--f->pending == 0)
        fanout_finish(f);
}

/* The common part: takes ownership of bytes (malloc'd). */
static int fanout_bytes(roost_server_t *srv, const char *const *bares, size_t n,
                        roost_fanout_t kind, const char *except, char *bytes, size_t len,
                        int stamp_to, roost_router_done_cb done, void *data)
{
    fanout_t *f = calloc(1, sizeof(*f));
    if (f == NULL || (except != NULL && (f->except = strdup(except)) == NULL)) {
        free(f);
        free(bytes);
        return ROOST_ENOMEM;
    }
    f->bytes = bytes;
    f->len = len;
    f->srv = srv;
    srv->pending_ops++;          /* released in fanout_finish */
    /* Cached records only when nothing else is in flight, so this
     * fan-out cannot overtake an earlier one (roost_router_async_hold). */
    int use_cache = !roost_router_async_pending();
    roost_router_async_hold();
    f->kind = kind;
    f->stamp_to = stamp_to;
    f->done = done;
    f->data = data;
    f->pending = 1;               /* held until every read was issued */
    for (size_t i = 0; i < n; i += FANOUT_CHUNK) {
        size_t m = n - i < FANOUT_CHUNK ? n - i : FANOUT_CHUNK;
        fanout_chunk_t *c = calloc(1, sizeof(*c));
        if (c == NULL || (c->bares = calloc(m, sizeof(*c->bares))) == NULL) {
            free(c);
            f->status = ROOST_ENOMEM;
            continue;
        }
        c->f = f;
        size_t want = 0;
        for (size_t j = 0; j < m; j++) {
            const roost_session_t *recs;
            size_t cnt;
            /* Users whose records the node has cached need no read. */
            if (use_cache && roost_store_sessions_cached(srv->store, bares[i + j], &recs, &cnt)) {
                add_user(f, bares[i + j], recs, cnt);
                continue;
            }
            want++;
            if ((c->bares[c->n] = strdup(bares[i + j])) == NULL)
                break;
            c->n++;
        }
        if (c->n == 0 && want == 0) {
            chunk_free(c);
            continue;
        }
        if (c->n != want || roost_store_sessions_multi(srv->store, (const char *const *)c->bares,
                                                       c->n, on_fanout_chunk, c) != 0) {
            chunk_free(c);
            f->status = ROOST_EREDIS;
            continue;
        }
        f->pending++;
    }
    if (--f->pending == 0) {
        /* Nothing went out (no users, or the store is down): finish from
         * the loop so done never runs on the caller's stack. */
        f->defer.data = f;
        uv_timer_init(srv->loop, &f->defer);
        uv_timer_start(&f->defer, on_fanout_deferred, 0, 0);
    }
    return 0;
}

int roost_router_fanout(roost_server_t *srv, const char *const *bares, size_t n,
                        roost_fanout_t kind, const char *except, const roost_xml_t *stanza,
                        int stamp_to, roost_router_done_cb done, void *data)
{
    roost_buf_t b = ROOST_BUF_INIT;
    roost_xml_t *copy = NULL;
    size_t len;
    if (stamp_to) {
        /* Serialized without 'to'; each copy is addressed on delivery. */
        if ((copy = roost_xml_copy(stanza)) == NULL)
            return ROOST_ENOMEM;
        roost_xml_set_attr(copy, "to", NULL);
        stanza = copy;
    }
    int rc = roost_deliver_serialize(stanza, &b);
    roost_xml_free(copy);
    if (rc != 0) {
        roost_buf_free(&b);
        return ROOST_ENOMEM;
    }
    char *bytes = roost_buf_steal(&b, &len);
    if (bytes == NULL)
        return ROOST_ENOMEM;
    return fanout_bytes(srv, bares, n, kind, except, bytes, len, stamp_to, done, data);
}

int roost_router_fanout_raw(roost_server_t *srv, const char *const *bares, size_t n,
                            roost_fanout_t kind, const char *except, const char *bytes,
                            size_t len, int stamp_to, roost_router_done_cb done, void *data)
{
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return ROOST_ENOMEM;
    memcpy(copy, bytes, len);
    return fanout_bytes(srv, bares, n, kind, except, copy, len, stamp_to, done, data);
}

typedef struct {
    roost_server_t *srv;
    char *bytes;
    size_t len;
    roost_router_done_cb done;
    void *data;
    uv_timer_t defer;
    size_t reached;
} to_full_t;

static void to_full_finish(to_full_t *q)
{
    roost_server_t *srv = q->srv;
    if (q->done != NULL)
        q->done(0, q->reached, q->data);
    roost_router_async_release();
    free(q->bytes);
    free(q);
    srv->pending_ops--;
    roost_server_check_idle(srv);
}

static void on_to_full_closed(uv_handle_t *h)
{
    to_full_finish(h->data);
}

static void on_to_full_deferred(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, on_to_full_closed);
}

static void on_to_full_session(int status, const roost_session_t *rec, void *data)
{
    to_full_t *q = data;
    if (status == 0 && rec != NULL) {
        /* rec->resource is set; rebuild the full JID from the request. */
        roost_deliver_target_t t = { 0 };
        t.full = q->bytes + q->len + 1;   /* stored after the stanza bytes */
        t.node_id = rec->node_id;
        t.epoch = rec->node_epoch;
        t.conn_id = rec->conn_id;
        t.flags = rec->flags;
        roost_deliver_targets(q->srv, &t, 1, q->bytes, q->len, 0, NULL, NULL);
        q->reached = 1;
    }
    to_full_finish(q);
}

int roost_router_to_full(roost_server_t *srv, const char *full, const roost_xml_t *stanza,
                         roost_router_done_cb done, void *data)
{
    roost_jid_t j = { 0 };
    roost_buf_t b = ROOST_BUF_INIT;
    if (roost_jid_parse(&j, full, strlen(full)) != 0 || j.resource == NULL) {
        roost_jid_clear(&j);
        return ROOST_EINVAL;
    }
    to_full_t *q = calloc(1, sizeof(*q));
    if (q == NULL || roost_deliver_serialize(stanza, &b) != 0 ||
        roost_buf_append(&b, "", 1) != 0 || roost_buf_puts(&b, j.full) != 0 ||
        roost_buf_append(&b, "", 1) != 0) {
        free(q);
        roost_buf_free(&b);
        roost_jid_clear(&j);
        return ROOST_ENOMEM;
    }
    size_t total;
    q->srv = srv;
    srv->pending_ops++;          /* released in to_full_finish */
    roost_router_async_hold();
    q->done = done;
    q->data = data;
    q->len = strlen(b.data);          /* serialized XML has no NUL */
    q->bytes = roost_buf_steal(&b, &total);
    roost_c2s_t *c = roost_map_get(srv->sessions, j.full);
    if (c != NULL && !roost_c2s_gone(c)) {
        roost_c2s_send_bytes(c, q->bytes, q->len);
        q->reached = 1;
    } else if (roost_store_session_get(srv->store, j.bare, j.resource, on_to_full_session, q) == 0) {
        roost_jid_clear(&j);
        return 0;
    }
    roost_jid_clear(&j);
    q->defer.data = q;
    uv_timer_init(srv->loop, &q->defer);
    uv_timer_start(&q->defer, on_to_full_deferred, 0, 0);
    return 0;
}

void roost_router_to_records(roost_server_t *srv, const char *bare, const roost_session_t *recs,
                             const size_t *idx, size_t n, const roost_xml_t *stanza, int stamp_to)
{
    roost_buf_t b = ROOST_BUF_INIT;
    roost_xml_t *copy = NULL;
    roost_deliver_target_t *t = calloc(n ? n : 1, sizeof(*t));
    if (t == NULL)
        return;
    if (stamp_to) {
        if ((copy = roost_xml_copy(stanza)) == NULL)
            goto out;
        roost_xml_set_attr(copy, "to", NULL);
        stanza = copy;
    }
    if (roost_deliver_serialize(stanza, &b) == 0) {
        size_t nt = roost_deliver_add_targets(t, 0, bare, recs, idx, n, NULL);
        roost_deliver_targets(srv, t, nt, b.data, b.len, stamp_to, NULL, NULL);
        for (size_t i = 0; i < nt; i++)
            free(t[i].full);
    }
out:
    free(t);
    roost_xml_free(copy);
    roost_buf_free(&b);
}
