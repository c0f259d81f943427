/* XEP-0191 Blocking Command: the blocklist get/block/unblock iqs with
 * pushes to the user's interested resources, the unavailable presence a
 * newly blocked contact gets, and the block checks the router asks for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/blocking.h"
#include "node/c2s.h"
#include "node/limit.h"
#include "node/log.h"
#include "node/router.h"
#include "node/xmpp_error.h"
#include "store/blockcheck.h"
#include "store/blocklist.h"
#include "store/error.h"
#include "store/roster.h"
#include "store/store.h"

typedef enum { OP_NONE = -1, OP_GET, OP_BLOCK, OP_UNBLOCK } op_t;

/* ---- requests -------------------------------------------------------- */

static op_t request_op(const roost_xml_t *iq, const roost_xml_t **payload)
{
    const char *type = roost_xml_attr(iq, "type");
    const roost_xml_t *p;
    if (type == NULL)
        return OP_NONE;
    if (strcmp(type, "get") == 0 &&
        (p = roost_xml_child(iq, "blocklist", ROOST_NS_BLOCKING)) != NULL) {
        *payload = p;
        return OP_GET;
    }
    if (strcmp(type, "set") != 0)
        return OP_NONE;
    if ((p = roost_xml_child(iq, "block", ROOST_NS_BLOCKING)) != NULL) {
        *payload = p;
        return OP_BLOCK;
    }
    if ((p = roost_xml_child(iq, "unblock", ROOST_NS_BLOCKING)) != NULL) {
        *payload = p;
        return OP_UNBLOCK;
    }
    return OP_NONE;
}

int roost_blocking_is_request(const roost_xml_t *iq)
{
    const roost_xml_t *p;
    return iq != NULL && strcmp(iq->name, "iq") == 0 && request_op(iq, &p) != OP_NONE;
}

typedef struct {
    roost_server_t *srv;
    roost_c2s_t *s;
    roost_xml_t *iq;
    op_t op;
    char *bare;           /* the user's bare JID, kept past the c2s */
    roost_jid_t *items;   /* prepared, sorted, unique */
    size_t n;
    roost_jid_t *prev;    /* unblock-all: the list before it was cleared */
    size_t nprev;
} req_t;

static void req_free(req_t *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->n; i++)
        roost_jid_clear(&q->items[i]);
    free(q->items);
    for (size_t i = 0; i < q->nprev; i++)
        roost_jid_clear(&q->prev[i]);
    free(q->prev);
    free(q->bare);
    roost_xml_free(q->iq);
    free(q);
}

static void send_error(roost_c2s_t *s, const roost_xml_t *iq, const char *type,
                       const char *cond, const char *text)
{
    roost_xmpp_error_t err = { type, cond, text };
    roost_xml_t *r = roost_xmpp_error_reply(iq, NULL, &err);
    if (r != NULL) {
        roost_c2s_send(s, r);
        roost_xml_free(r);
    }
}

static roost_xml_t *result_for(const roost_xml_t *iq)
{
    roost_xml_t *r = roost_xml_new("iq", ROOST_NS_CLIENT);
    if (r == NULL)
        return NULL;
    if (roost_xml_set_attr(r, "type", "result") != 0 ||
        roost_xml_set_attr(r, "id", roost_xml_attr(iq, "id")) != 0 ||
        roost_xml_set_attr(r, "to", roost_xml_attr(iq, "from")) != 0 ||
        roost_xml_set_attr(r, "from", roost_xml_attr(iq, "to")) != 0) {
        roost_xml_free(r);
        return NULL;
    }
    return r;
}

/* Appends <item jid='...'/> to parent for each string. */
static int add_items(roost_xml_t *parent, const char *const *jids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        roost_xml_t *it = roost_xml_add(parent, "item", NULL);
        if (it == NULL || roost_xml_set_attr(it, "jid", jids[i]) != 0)
            return ROOST_ENOMEM;
    }
    return 0;
}

static int cmp_jid(const void *a, const void *b)
{
    return strcmp(((const roost_jid_t *)a)->full, ((const roost_jid_t *)b)->full);
}

/* Parses the <item jid/> children of payload into q->items. Returns NULL
 * or the stanza error condition to answer with. */
static const char *parse_items(req_t *q, const roost_xml_t *payload, size_t max,
                               const char **text)
{
    size_t count = 0;
    for (const roost_xml_t *c = roost_xml_child(payload, "item", ROOST_NS_BLOCKING); c != NULL;
         c = roost_xml_next(c, "item", ROOST_NS_BLOCKING))
        count++;
    if (count == 0)
        return NULL;
    /* A fixed policy limit, not a momentary shortage: not-acceptable
     * (modify) rather than resource-constraint (wait), which would invite
     * the client to retry the same request. */
    if (count > max) {
        *text = "too many items";
        return "not-acceptable";
    }
    q->items = calloc(count, sizeof(*q->items));
    if (q->items == NULL)
        return "internal-server-error";
    for (const roost_xml_t *c = roost_xml_child(payload, "item", ROOST_NS_BLOCKING); c != NULL;
         c = roost_xml_next(c, "item", ROOST_NS_BLOCKING)) {
        const char *j = roost_xml_attr(c, "jid");
        if (j == NULL) {
            *text = "item without jid";
            return "bad-request";
        }
        if (roost_jid_parse(&q->items[q->n], j, strlen(j)) != 0)
            return "jid-malformed";
        q->n++;
    }
    qsort(q->items, q->n, sizeof(*q->items), cmp_jid);
    size_t k = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (k > 0 && strcmp(q->items[k - 1].full, q->items[i].full) == 0) {
            roost_jid_clear(&q->items[i]);
            continue;
        }
        if (k != i) {
            q->items[k] = q->items[i];
            memset(&q->items[i], 0, sizeof(q->items[i]));
        }
        k++;
    }
    q->n = k;
    return NULL;
}

/* ---- pushes and presence to blocked contacts ------------------------ */

static void push(roost_server_t *srv, const char *bare, op_t op, const roost_jid_t *items,
                 size_t n)
{
    static unsigned long long seq;
    char id[48];
    roost_xml_t *iq = roost_xml_new("iq", ROOST_NS_CLIENT);
    roost_xml_t *p = iq != NULL ? roost_xml_add(iq, op == OP_BLOCK ? "block" : "unblock",
                                                ROOST_NS_BLOCKING)
                                : NULL;
    snprintf(id, sizeof(id), "block-push-%llu", ++seq);
    if (p == NULL || roost_xml_set_attr(iq, "type", "set") != 0 ||
        roost_xml_set_attr(iq, "id", id) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        roost_xml_t *it = roost_xml_add(p, "item", NULL);
        if (it == NULL || roost_xml_set_attr(it, "jid", items[i].full) != 0)
            goto out;
    }
    const char *bares[1] = { bare };
    /* XEP-0191 §3.3: every resource that asked for the list, the
     * requester included; "asked" is tracked as roster interest. */
    roost_router_fanout(srv, bares, 1, ROOST_FANOUT_INTERESTED, NULL, iq, 1, NULL, NULL);
out:
    roost_xml_free(iq);
}

/* The presence step after a block (XEP-0191 §3.3: unavailable) or an
 * unblock (§3.4: current presence): owns a copy of the items and the
 * user's available records while it waits for the roster. */
typedef struct {
    roost_server_t *srv;
    char *bare;
    roost_jid_t *items;
    size_t n;
    roost_session_t *recs;
    size_t nrecs;
    int unblock;            /* send current presence instead (§3.4) */
} unavail_t;

static void unavail_free(unavail_t *u)
{
    for (size_t i = 0; i < u->n; i++)
        roost_jid_clear(&u->items[i]);
    free(u->items);
    for (size_t i = 0; i < u->nrecs; i++)
        roost_session_clear(&u->recs[i]);
    free(u->recs);
    free(u->bare);
    free(u);
}

static int subscribed_from(const roost_roster_item_t *ros, size_t nros, const char *bare)
{
    for (size_t i = 0; i < nros; i++)
        if (strcmp(ros[i].jid, bare) == 0)
            return ros[i].sub == ROOST_SUB_FROM || ros[i].sub == ROOST_SUB_BOTH;
    return 0;
}

/* 1 when rec sent directed presence to item (a bare item covers every
 * resource of that user). */
static int directed_to(const roost_session_t *rec, const roost_jid_t *item)
{
    size_t lb = strlen(item->bare);
    for (size_t i = 0; i < rec->n_directed; i++) {
        const char *d = rec->directed[i];
        if (item->resource != NULL ? strcmp(d, item->full) == 0
                                   : strncmp(d, item->bare, lb) == 0 &&
                                         (d[lb] == '\0' || d[lb] == '/'))
            return 1;
    }
    return 0;
}

static void send_unavailable(unavail_t *u, const roost_roster_item_t *ros, size_t nros)
{
    const char **bares = calloc(u->n ? u->n : 1, sizeof(*bares));
    if (bares == NULL)
        return;
    for (size_t r = 0; r < u->nrecs; r++) {
        const roost_session_t *rec = &u->recs[r];
        size_t nb = 0;
        size_t lb = strlen(u->bare), lr = strlen(rec->resource);
        char *from = malloc(lb + 1 + lr + 1);
        roost_xml_t *pres = roost_xml_new("presence", ROOST_NS_CLIENT);
        if (from == NULL || pres == NULL)
            goto next;
        memcpy(from, u->bare, lb);
        from[lb] = '/';
        memcpy(from + lb + 1, rec->resource, lr + 1);
        if (roost_xml_set_attr(pres, "type", "unavailable") != 0 ||
            roost_xml_set_attr(pres, "from", from) != 0)
            goto next;
        for (size_t i = 0; i < u->n; i++) {
            const roost_jid_t *it = &u->items[i];
            /* Only contacts that could have seen this resource's presence:
             * a presence subscription or directed presence. */
            if (!subscribed_from(ros, nros, it->bare) && !directed_to(rec, it))
                continue;
            if (it->resource != NULL) {
                if (roost_xml_set_attr(pres, "to", it->full) == 0)
                    roost_router_to_full(u->srv, it->full, pres, NULL, NULL);
                roost_xml_set_attr(pres, "to", NULL);
            } else {
                bares[nb++] = it->bare;
            }
        }
        if (nb > 0)
            roost_router_fanout(u->srv, bares, nb, ROOST_FANOUT_AVAILABLE, NULL, pres, 1, NULL,
                                NULL);
next:
        roost_xml_free(pres);
        free(from);
    }
    free(bares);
}

/* XEP-0191 §3.4: after an unblock, contacts subscribed to the user's
 * presence get the current presence of each available resource. */
static void send_current(unavail_t *u, const roost_roster_item_t *ros, size_t nros)
{
    const char **bares = calloc(u->n ? u->n : 1, sizeof(*bares));
    size_t nb = 0;
    if (bares == NULL)
        return;
    for (size_t i = 0; i < u->n; i++)
        if (subscribed_from(ros, nros, u->items[i].bare))
            bares[nb++] = u->items[i].bare;
    for (size_t r = 0; nb > 0 && r < u->nrecs; r++) {
        const roost_session_t *rec = &u->recs[r];
        if (rec->presence != NULL && rec->presence_len > 0)
            roost_router_fanout_raw(u->srv, bares, nb, ROOST_FANOUT_AVAILABLE, NULL,
                                    (const char *)rec->presence, rec->presence_len, 1,
                                    NULL, NULL);
    }
    free(bares);
}

static void on_unavail_roster(int status, const roost_roster_item_t *items, size_t n,
                              uint64_t ver, void *data)
{
    unavail_t *u = data;
    (void)ver;
    /* Without the roster, directed presence is all we can vouch for. */
    if (status == ROOST_ECANCELED)
        ROOST_DEBUG(0, "blocking: shutdown before presence step");
    else if (u->unblock)
        send_current(u, status == 0 ? items : NULL, status == 0 ? n : 0);
    else
        send_unavailable(u, status == 0 ? items : NULL, status == 0 ? n : 0);
    unavail_free(u);
}

static void on_unavail_sessions(int status, const roost_session_t *recs, size_t n, void *data)
{
    unavail_t *u = data;
    size_t navail = 0;

    if (status < 0)
        goto done;
    for (size_t i = 0; i < n; i++)
        if ((recs[i].flags & ROOST_SESS_F_AVAILABLE) && recs[i].resource != NULL)
            navail++;
    if (navail == 0)
        goto done;
    u->recs = calloc(navail, sizeof(*u->recs));
    if (u->recs == NULL)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (!(recs[i].flags & ROOST_SESS_F_AVAILABLE) || recs[i].resource == NULL)
            continue;
        if (roost_session_copy(&u->recs[u->nrecs], &recs[i]) != 0)
            goto done;
        u->nrecs++;
    }
    if (roost_store_roster_get(u->srv->store, u->bare, on_unavail_roster, u) == 0)
        return;
done:
    unavail_free(u);
}

/* Takes the items of q (only those naming users of hosted domains: a
 * domain item has nobody to enumerate, remote JIDs have no s2s yet). */
static void start_presence_step(req_t *q, const roost_jid_t *items, size_t n, int unblock)
{
    unavail_t *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return;
    u->unblock = unblock;
    u->srv = q->srv;
    u->bare = strdup(q->bare);
    u->items = calloc(n ? n : 1, sizeof(*u->items));
    if (u->bare == NULL || u->items == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const roost_jid_t *it = &items[i];
        if (it->local == NULL || !roost_config_hosts(q->srv->cfg, it->domain) ||
            strcmp(it->bare, q->bare) == 0)
            continue;
        if (roost_jid_copy(&u->items[u->n], it) != 0)
            goto fail;
        u->n++;
    }
    if (u->n > 0 &&
        roost_store_session_list(q->srv->store, u->bare, on_unavail_sessions, u) == 0)
        return;
fail:
    unavail_free(u);
}

/* ---- iq handlers ---------------------------------------------------- */

static void finish(req_t *q)
{
    roost_c2s_t *s = q->s;
    req_free(q);
    roost_c2s_done(s);
}

static void on_list(int status, const char *const *jids, size_t n, void *data)
{
    req_t *q = data;
    if (!roost_c2s_gone(q->s)) {
        if (status < 0) {
            send_error(q->s, q->iq, "wait", "internal-server-error", NULL);
        } else {
            roost_xml_t *r = result_for(q->iq);
            roost_xml_t *bl = r != NULL ? roost_xml_add(r, "blocklist", ROOST_NS_BLOCKING)
                                        : NULL;
            if (bl != NULL && add_items(bl, jids, n) == 0)
                roost_c2s_send(q->s, r);
            else
                send_error(q->s, q->iq, "wait", "internal-server-error", NULL);
            roost_xml_free(r);
        }
    }
    finish(q);
}

static void on_changed(int status, void *data)
{
    req_t *q = data;
    if (status < 0) {
        if (!roost_c2s_gone(q->s)) {
            if (status == ROOST_ELIMIT) {
                roost_limit_hit(roost_c2s_conn_id(q->s), "blocklist_size", NULL);
                send_error(q->s, q->iq, "modify", "not-acceptable", "block list is full");
            }
            else
                send_error(q->s, q->iq, "wait", "internal-server-error", NULL);
        }
        finish(q);
        return;
    }
    if (!roost_c2s_gone(q->s)) {
        roost_xml_t *r = result_for(q->iq);
        if (r != NULL)
            roost_c2s_send(q->s, r);
        roost_xml_free(r);
    }
    /* The change is stored: the user's other resources and the blocked
     * contacts hear of it even when the requester is gone. */
    push(q->srv, q->bare, q->op, q->items, q->n);
    if (q->op == OP_BLOCK)
        start_presence_step(q, q->items, q->n, 0);
    else if (q->op == OP_UNBLOCK && q->n > 0)
        start_presence_step(q, q->items, q->n, 1);
    else if (q->op == OP_UNBLOCK)
        start_presence_step(q, q->prev, q->nprev, 1);
    finish(q);
}

/* Unblock-all: the list is read first, so the contacts it held can be sent
 * the user's presence once it is cleared (§3.4); the push stays empty. */
static void on_unblock_all_list(int status, const char *const *jids, size_t n, void *data)
{
    req_t *q = data;
    if (status == 0 && n > 0 && (q->prev = calloc(n, sizeof(*q->prev))) != NULL) {
        for (size_t i = 0; i < n; i++)
            if (roost_jid_parse(&q->prev[q->nprev], jids[i], strlen(jids[i])) == 0)
                q->nprev++;
    }
    if (roost_store_blocklist_remove(q->srv->store, q->bare, NULL, 0, on_changed, q) != 0) {
        if (!roost_c2s_gone(q->s))
            send_error(q->s, q->iq, "wait", "internal-server-error", NULL);
        finish(q);
    }
}

int roost_blocking_handle_iq(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *iq)
{
    const roost_jid_t *me = roost_c2s_jid(from);
    const roost_xml_t *payload = NULL;
    const char *cond = NULL, *text = NULL, *etype = NULL;
    const char **jids = NULL;
    int rc;

    op_t op = request_op(iq, &payload);
    if (op == OP_NONE || me == NULL) {
        send_error(from, iq, NULL, "bad-request", NULL);
        roost_xml_free(iq);
        return 0;
    }
    req_t *q = calloc(1, sizeof(*q));
    if (q == NULL || (q->bare = strdup(me->bare)) == NULL) {
        free(q);
        send_error(from, iq, "wait", "internal-server-error", NULL);
        roost_xml_free(iq);
        return 0;
    }
    q->srv = srv;
    q->s = from;
    q->iq = iq;
    q->op = op;

    if (op == OP_GET) {
        if (roost_store_blocklist_get(srv->store, q->bare, on_list, q) == 0)
            return ROOST_EAGAIN;
        cond = "internal-server-error";
        etype = "wait";
        goto fail;
    }
    size_t max = ROOST_BLOCKLIST_ADD_MAX;
    if (op == OP_BLOCK && srv->cfg->max_blocklist < max)
        max = srv->cfg->max_blocklist;
    else if (op == OP_UNBLOCK && srv->cfg->max_blocklist > max)
        max = srv->cfg->max_blocklist;
    cond = parse_items(q, payload, max, &text);
    if (cond == NULL && op == OP_BLOCK && q->n == 0) {
        cond = "bad-request";
        text = "block needs at least one item";
    }
    if (cond != NULL) {
        if (strcmp(cond, "internal-server-error") == 0)
            etype = "wait";
        goto fail;
    }
    if (q->n > 0 && (jids = calloc(q->n, sizeof(*jids))) == NULL) {
        cond = "internal-server-error";
        etype = "wait";
        goto fail;
    }
    for (size_t i = 0; i < q->n; i++)
        jids[i] = q->items[i].full;
    if (op == OP_BLOCK)
        rc = roost_store_blocklist_add(srv->store, q->bare, jids, q->n, srv->cfg->max_blocklist,
                                       on_changed, q);
    else if (q->n == 0)
        rc = roost_store_blocklist_get(srv->store, q->bare, on_unblock_all_list, q);
    else
        rc = roost_store_blocklist_remove(srv->store, q->bare, jids, q->n, on_changed, q);
    free(jids);
    if (rc == 0)
        return ROOST_EAGAIN;
    cond = "internal-server-error";
    etype = "wait";
fail:
    send_error(from, iq, etype, cond, text);
    req_free(q);
    return 0;
}

/* ---- checks --------------------------------------------------------- */

int roost_blocking_match(const char *const *list, size_t n, const roost_jid_t *jid)
{
    roost_blockcheck_cand_t c;
    int hit = 0;
    if (list == NULL || n == 0 || roost_store_blockcheck_candidates(jid, &c) != 0)
        return 0;
    for (size_t i = 0; i < n && !hit; i++)
        for (size_t k = 0; k < c.n && !hit; k++)
            hit = list[i] != NULL && strcmp(list[i], c.s[k]) == 0;
    roost_store_blockcheck_cand_clear(&c);
    return hit;
}

typedef struct {
    roost_blocking_check_cb cb;
    void *data;
} check_t;

static void on_check(int status, int verdict, void *data)
{
    check_t *k = data;
    roost_block_verdict_t v = ROOST_BLOCK_NONE;
    if (status == 0 && verdict == ROOST_BLOCKCHECK_BY_SENDER)
        v = ROOST_BLOCK_BY_SENDER;
    else if (status == 0 && verdict == ROOST_BLOCKCHECK_BY_RECIPIENT)
        v = ROOST_BLOCK_BY_RECIPIENT;
    k->cb(status, v, k->data);
    free(k);
}

int roost_blocking_check(roost_server_t *srv, const roost_jid_t *sender,
                         const roost_jid_t *recipient, roost_blocking_check_cb cb, void *data)
{
    if (srv == NULL || cb == NULL)
        return ROOST_EINVAL;
    check_t *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return ROOST_ENOMEM;
    k->cb = cb;
    k->data = data;
    int rc = roost_store_blockcheck(srv->store, sender, recipient, on_check, k);
    if (rc < 0)
        free(k);
    return rc;
}

roost_xml_t *roost_blocking_error_reply(const roost_xml_t *stanza)
{
    roost_xmpp_error_t err = { "cancel", "not-acceptable", NULL };
    roost_xml_t *r = roost_xmpp_error_reply(stanza, NULL, &err);
    /* roost_xmpp_error_reply appends <error/> last. */
    if (r != NULL && (r->last == NULL || r->last->name == NULL ||
                      strcmp(r->last->name, "error") != 0 ||
                      roost_xml_add(r->last, "blocked", ROOST_NS_BLOCKING_ERRORS) == NULL)) {
        roost_xml_free(r);
        return NULL;
    }
    return r;
}
