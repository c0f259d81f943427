/* jabber:iq:roster (RFC 6121 §2, XEP-0237): get marks the session
 * interested and answers with the roster or, when the client's version is
 * current, an empty result; set/remove validate, compare-and-set the item
 * in Redis and push it to every interested resource. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/roster.h"
#include "node/c2s.h"
#include "node/limit.h"
#include "node/log.h"
#include "node/presence.h"
#include "node/router.h"
#include "node/subscription.h"
#include "node/xmpp_error.h"
#include "store/error.h"
#include "store/jid.h"

/* Compare-and-set attempts before a set gives up (another node kept
 * changing the same item). */
#define CAS_TRIES 5

typedef struct {
    roost_server_t *srv;
    roost_c2s_t *from;
    roost_xml_t *iq;
    char *bare;                 /* the user's account (copied: the c2s may go) */
    char *contact;              /* set: the item's bare JID */
    int remove;
    char *name;                 /* set: NULL when none */
    char **groups;
    size_t n_groups;
    roost_roster_item_t cur;    /* set: what we believe is stored */
    int have_cur;
    roost_roster_item_t next;   /* set: what we store */
    int tries;
} roster_req_t;

/* ---- helpers ----------------------------------------------------------- */

static void req_free(roster_req_t *req)
{
    if (req == NULL)
        return;
    for (size_t i = 0; i < req->n_groups; i++)
        free(req->groups[i]);
    free(req->groups);
    free(req->name);
    free(req->contact);
    free(req->bare);
    roost_roster_item_clear(&req->cur);
    roost_roster_item_clear(&req->next);
    roost_xml_free(req->iq);
    free(req);
}

/* Frees req and ends the asynchronous step of its session. */
static void req_finish(roster_req_t *req)
{
    roost_c2s_t *from = req->from;
    req_free(req);
    roost_c2s_done(from);
}

static void send_error(roost_c2s_t *from, const roost_xml_t *iq, const char *type,
                       const char *cond, const char *text)
{
    roost_xmpp_error_t err = { type, cond, text };
    roost_xml_t *r = roost_xmpp_error_reply(iq, NULL, &err);
    if (r != NULL) {
        roost_c2s_send(from, r);
        roost_xml_free(r);
    }
}

/* An empty result to iq (or a result carrying query, taken over). */
static void send_result(roost_c2s_t *from, const roost_xml_t *iq, roost_xml_t *query)
{
    roost_xml_t *r = roost_xml_new("iq", ROOST_NS_CLIENT);
    if (r == NULL) {
        roost_xml_free(query);
        return;
    }
    roost_xml_set_attr(r, "type", "result");
    roost_xml_set_attr(r, "id", roost_xml_attr(iq, "id"));
    /* Addressed to the account: the answer comes from it when it was
     * named, from nobody (the server for the account) otherwise. */
    if (roost_xml_attr(iq, "to") != NULL)
        roost_xml_set_attr(r, "from", roost_xml_attr(iq, "to"));
    if (roost_xml_attr(iq, "from") != NULL)
        roost_xml_set_attr(r, "to", roost_xml_attr(iq, "from"));
    if (query != NULL)
        roost_xml_append(r, query);
    roost_c2s_send(from, r);
    roost_xml_free(r);
}

/* Appends <item/> for it under query. 0 or ROOST_ENOMEM. */
static int add_item(roost_xml_t *query, const roost_roster_item_t *it, int removed)
{
    roost_xml_t *x = roost_xml_add(query, "item", NULL);
    if (x == NULL || roost_xml_set_attr(x, "jid", it->jid) != 0)
        return ROOST_ENOMEM;
    if (removed)
        return roost_xml_set_attr(x, "subscription", "remove") != 0 ? ROOST_ENOMEM : 0;
    if (it->name != NULL && it->name[0] != '\0' && roost_xml_set_attr(x, "name", it->name) != 0)
        return ROOST_ENOMEM;
    if (roost_xml_set_attr(x, "subscription", roost_sub_name(it->sub)) != 0)
        return ROOST_ENOMEM;
    if (it->ask && roost_xml_set_attr(x, "ask", "subscribe") != 0)
        return ROOST_ENOMEM;
    if (it->approved && roost_xml_set_attr(x, "approved", "true") != 0)
        return ROOST_ENOMEM;
    for (size_t i = 0; i < it->n_groups; i++) {
        if (it->groups[i] == NULL)
            continue;
        roost_xml_t *g = roost_xml_add(x, "group", NULL);
        if (g == NULL || roost_xml_add_text(g, it->groups[i], strlen(it->groups[i])) != 0)
            return ROOST_ENOMEM;
    }
    return 0;
}

static roost_xml_t *new_query(uint64_t ver)
{
    char v[32];
    roost_xml_t *q = roost_xml_new("query", ROOST_NS_ROSTER);
    if (q == NULL)
        return NULL;
    snprintf(v, sizeof(v), "%" PRIu64, ver);
    if (roost_xml_set_attr(q, "ver", v) != 0) {
        roost_xml_free(q);
        return NULL;
    }
    return q;
}

/* ---- push -------------------------------------------------------------- */

void roost_roster_push(roost_server_t *srv, const char *bare, const roost_roster_item_t *item,
                       int removed, uint64_t ver)
{
    static uint64_t seq;
    char id[48];
    roost_xml_t *iq = roost_xml_new("iq", ROOST_NS_CLIENT);
    if (iq == NULL)
        return;
    roost_xml_t *q = new_query(ver);
    if (q == NULL)
        goto out;
    roost_xml_append(iq, q);
    if (add_item(q, item, removed) != 0)
        goto out;
    snprintf(id, sizeof(id), "push%" PRIu64, ++seq);
    roost_xml_set_attr(iq, "type", "set");
    roost_xml_set_attr(iq, "id", id);
    int rc = roost_router_fanout(srv, &bare, 1, ROOST_FANOUT_INTERESTED, NULL, iq, 1, NULL, NULL);
    if (rc != 0)
        ROOST_WARN(0, "roster push for %s failed: %s", bare, roost_strerror(rc));
out:
    roost_xml_free(iq);
}

/* ---- get --------------------------------------------------------------- */

static void on_roster(int status, const roost_roster_item_t *items, size_t n, uint64_t ver,
                      void *data)
{
    roster_req_t *req = data;
    if (roost_c2s_gone(req->from))
        goto out;
    if (status != 0) {
        ROOST_WARN(roost_c2s_conn_id(req->from), "roster get failed: %s", roost_strerror(status));
        send_error(req->from, req->iq, NULL, "internal-server-error", NULL);
        goto out;
    }
    /* XEP-0237: a client that already has this version gets an empty
     * result and then only pushes. */
    const roost_xml_t *rq = roost_xml_child(req->iq, "query", ROOST_NS_ROSTER);
    const char *have = rq != NULL ? roost_xml_attr(rq, "ver") : NULL;
    char v[32];
    snprintf(v, sizeof(v), "%" PRIu64, ver);
    if (have != NULL && strcmp(have, v) == 0) {
        send_result(req->from, req->iq, NULL);
        goto out;
    }
    roost_xml_t *q = new_query(ver);
    if (q == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (add_item(q, &items[i], 0) != 0) {
            roost_xml_free(q);
            goto fail;
        }
    }
    send_result(req->from, req->iq, q);
    goto out;
fail:
    send_error(req->from, req->iq, NULL, "internal-server-error", NULL);
out:
    req_finish(req);
}

static void start_get(roster_req_t *req)
{
    int rc = roost_store_roster_get(req->srv->store, req->bare, on_roster, req);
    if (rc != 0) {
        if (!roost_c2s_gone(req->from))
            send_error(req->from, req->iq, NULL, "internal-server-error", NULL);
        req_finish(req);
    }
}

static void on_interested(int status, void *data)
{
    roster_req_t *req = data;
    if (status != 0)
        ROOST_WARN(roost_c2s_conn_id(req->from), "marking session interested failed: %s",
                   roost_strerror(status));
    /* The flag was written before the roster is read, so no push that
     * follows the read can miss this resource. */
    start_get(req);
}

static int handle_get(roster_req_t *req)
{
    roost_session_t *rec = roost_c2s_record(req->from);
    if (!(rec->flags & ROOST_SESS_F_INTERESTED)) {
        rec->flags |= ROOST_SESS_F_INTERESTED;
        int rc = roost_store_session_update(req->srv->store, req->bare, rec, on_interested, req);
        if (rc == 0)
            return ROOST_EAGAIN;
        ROOST_WARN(roost_c2s_conn_id(req->from), "marking session interested failed: %s",
                   roost_strerror(rc));
    }
    int rc = roost_store_roster_get(req->srv->store, req->bare, on_roster, req);
    if (rc != 0) {
        send_error(req->from, req->iq, NULL, "internal-server-error", NULL);
        req_free(req);
        return 0;
    }
    return ROOST_EAGAIN;
}

/* ---- set --------------------------------------------------------------- */

static void on_cas(int status, const roost_roster_item_t *current, uint64_t ver, void *data);

/* Builds req->next from req->cur (or a fresh item): the client sets name
 * and groups only; subscription, ask and approved stay as stored. */
static int make_next(roster_req_t *req)
{
    roost_roster_item_clear(&req->next);
    if (req->have_cur) {
        if (roost_roster_item_copy(&req->next, &req->cur) != 0)
            return ROOST_ENOMEM;
        free(req->next.name);
        req->next.name = NULL;
        for (size_t i = 0; i < req->next.n_groups; i++)
            free(req->next.groups[i]);
        free(req->next.groups);
        req->next.groups = NULL;
        req->next.n_groups = 0;
    } else {
        req->next.jid = strdup(req->contact);
        if (req->next.jid == NULL)
            return ROOST_ENOMEM;
        req->next.sub = ROOST_SUB_NONE;
    }
    if (req->name != NULL && (req->next.name = strdup(req->name)) == NULL)
        return ROOST_ENOMEM;
    if (req->n_groups > 0) {
        req->next.groups = calloc(req->n_groups, sizeof(char *));
        if (req->next.groups == NULL)
            return ROOST_ENOMEM;
        for (; req->next.n_groups < req->n_groups; req->next.n_groups++) {
            req->next.groups[req->next.n_groups] = strdup(req->groups[req->next.n_groups]);
            if (req->next.groups[req->next.n_groups] == NULL)
                return ROOST_ENOMEM;
        }
    }
    return 0;
}

/* Issues the compare-and-set for the current belief. 0 or negative (then
 * the request was answered with an error and finished). */
static void try_cas(roster_req_t *req)
{
    roost_server_t *srv = req->srv;
    if (req->remove && !req->have_cur) {
        /* §2.5.3: removing an item that is not there. */
        if (!roost_c2s_gone(req->from))
            send_error(req->from, req->iq, NULL, "item-not-found", NULL);
        req_finish(req);
        return;
    }
    if (!req->remove && make_next(req) != 0) {
        if (!roost_c2s_gone(req->from))
            send_error(req->from, req->iq, NULL, "internal-server-error", NULL);
        req_finish(req);
        return;
    }
    int rc = roost_store_roster_cas(srv->store, req->bare, req->contact,
                                    req->have_cur ? &req->cur : NULL,
                                    req->remove ? NULL : &req->next,
                                    srv->cfg->max_roster_items, on_cas, req);
    if (rc != 0) {
        if (!roost_c2s_gone(req->from))
            send_error(req->from, req->iq, NULL, "internal-server-error", NULL);
        req_finish(req);
    }
}

static void on_cas(int status, const roost_roster_item_t *current, uint64_t ver, void *data)
{
    roster_req_t *req = data;
    roost_server_t *srv = req->srv;
    if (status == ROOST_ECONFLICT && ++req->tries < CAS_TRIES) {
        /* Someone else changed the item meanwhile: start over from what is
         * stored now. */
        roost_roster_item_clear(&req->cur);
        req->have_cur = 0;
        if (current != NULL) {
            if (roost_roster_item_copy(&req->cur, current) != 0)
                goto fail;
            req->have_cur = 1;
        }
        try_cas(req);
        return;
    }
    if (status == ROOST_ELIMIT) {
        roost_limit_hit(roost_c2s_conn_id(req->from), "roster_size", NULL);
        /* RFC 6121 does not name a condition for a full roster;
         * resource-constraint (as Prosody and ejabberd answer) with type
         * cancel, since retrying later will not help. */
        if (!roost_c2s_gone(req->from))
            send_error(req->from, req->iq, "cancel", "resource-constraint",
                       "roster item limit reached");
        req_finish(req);
        return;
    }
    if (status != 0)
        goto fail;
    if (!roost_c2s_gone(req->from))
        send_result(req->from, req->iq, NULL);
    /* The push follows the result (RFC 6121 §2.3.2) and reaches every
     * interested resource, the sender included. */
    if (req->remove) {
        roost_roster_push(srv, req->bare, &req->cur, 1, ver);
        roost_presence_item_removed(srv, req->bare, &req->cur);
    } else {
        roost_roster_push(srv, req->bare, &req->next, 0, ver);
    }
    req_finish(req);
    return;
fail:
    ROOST_WARN(0, "roster set for %s failed: %s", req->bare, roost_strerror(status));
    if (!roost_c2s_gone(req->from))
        send_error(req->from, req->iq, NULL, "internal-server-error", NULL);
    req_finish(req);
}

static void on_item(int status, const roost_roster_item_t *item, uint64_t ver, void *data)
{
    roster_req_t *req = data;
    (void)ver;
    if (status != 0) {
        ROOST_WARN(0, "roster item read for %s failed: %s", req->bare, roost_strerror(status));
        if (!roost_c2s_gone(req->from))
            send_error(req->from, req->iq, NULL, "internal-server-error", NULL);
        req_finish(req);
        return;
    }
    if (item != NULL) {
        if (roost_roster_item_copy(&req->cur, item) != 0) {
            if (!roost_c2s_gone(req->from))
                send_error(req->from, req->iq, NULL, "internal-server-error", NULL);
            req_finish(req);
            return;
        }
        req->have_cur = 1;
    }
    try_cas(req);
}

/* Collects the <group/> names of item into req, ignoring duplicates.
 * NULL when fine, else the reason (see the caller for the condition). */
static const char *parse_groups(roster_req_t *req, const roost_xml_t *item)
{
    for (roost_xml_t *g = roost_xml_child(item, "group", ROOST_NS_ROSTER); g != NULL;
         g = roost_xml_next(g, "group", ROOST_NS_ROSTER)) {
        char *t = roost_xml_text(g);
        if (t == NULL)
            return "out of memory";
        size_t len = strlen(t);
        if (len == 0 || len > ROOST_ROSTER_GROUP_MAX) {
            free(t);
            return len == 0 ? "empty group name" : "group name too long";
        }
        int dup = 0;
        for (size_t i = 0; i < req->n_groups && !dup; i++)
            dup = strcmp(req->groups[i], t) == 0;
        if (dup) {
            /* RFC 6121 §2.3.3: a group listed twice is a bad request. */
            free(t);
            return "duplicate group";
        }
        /* Checked as unique names accumulate, so a stanza full of
         * duplicates costs at most GROUPS_MAX comparisons per group. */
        if (req->n_groups == ROOST_ROSTER_GROUPS_MAX) {
            free(t);
            return "too many groups";
        }
        if (req->groups == NULL) {
            req->groups = calloc(ROOST_ROSTER_GROUPS_MAX, sizeof(char *));
            if (req->groups == NULL) {
                free(t);
                return "out of memory";
            }
        }
        req->groups[req->n_groups++] = t;
    }
    return NULL;
}

static int handle_set(roster_req_t *req, const roost_xml_t *query)
{
    roost_server_t *srv = req->srv;
    const roost_xml_t *item = roost_xml_child(query, "item", ROOST_NS_ROSTER);
    /* §2.3.3: exactly one item. */
    if (item == NULL || roost_xml_child_count(query) != 1) {
        send_error(req->from, req->iq, NULL, "bad-request", "exactly one <item/> is required");
        goto done;
    }
    const char *jid_s = roost_xml_attr(item, "jid");
    roost_jid_t jid = { 0 };
    if (jid_s == NULL || roost_jid_parse(&jid, jid_s, strlen(jid_s)) != 0 ||
        jid.resource != NULL) {
        roost_jid_clear(&jid);
        send_error(req->from, req->iq, NULL, "bad-request", "the item needs a valid bare JID");
        goto done;
    }
    req->contact = strdup(jid.bare);
    roost_jid_clear(&jid);
    if (req->contact == NULL)
        goto oom;
    /* The client may not set subscription or ask: every value but
     * 'remove' is ignored (§2.1.2.5). */
    const char *sub = roost_xml_attr(item, "subscription");
    req->remove = sub != NULL && strcmp(sub, "remove") == 0;
    if (!req->remove) {
        const char *name = roost_xml_attr(item, "name");
        if (name != NULL && strlen(name) > ROOST_ROSTER_NAME_MAX) {
            send_error(req->from, req->iq, NULL, "not-acceptable", "item name too long");
            goto done;
        }
        /* An empty name is the same as none. */
        if (name != NULL && name[0] != '\0' && (req->name = strdup(name)) == NULL)
            goto oom;
        const char *why = parse_groups(req, item);
        if (why != NULL) {
            /* §2.3.3: duplicates are bad-request; oversize or empty names
             * and too many groups are not-acceptable. */
            send_error(req->from, req->iq, NULL,
                       strcmp(why, "duplicate group") == 0 ? "bad-request" : "not-acceptable",
                       why);
            goto done;
        }
    }
    int rc = roost_store_roster_item_get(srv->store, req->bare, req->contact, on_item, req);
    if (rc == 0)
        return ROOST_EAGAIN;
oom:
    send_error(req->from, req->iq, NULL, "internal-server-error", NULL);
done:
    req_free(req);
    return 0;
}

/* ---- entry ------------------------------------------------------------- */

int roost_roster_handle_iq(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *iq)
{
    const roost_jid_t *me = roost_c2s_jid(from);
    const char *type = roost_xml_attr(iq, "type");
    const roost_xml_t *query = roost_xml_child(iq, "query", ROOST_NS_ROSTER);
    if (me == NULL || type == NULL || query == NULL) {
        roost_xml_free(iq);
        return 0;
    }
    if (strcmp(type, "get") != 0 && strcmp(type, "set") != 0) {
        /* Answers to our pushes: nothing to do. */
        roost_xml_free(iq);
        return 0;
    }
    roster_req_t *req = calloc(1, sizeof(*req));
    if (req == NULL || (req->bare = strdup(me->bare)) == NULL) {
        free(req);
        send_error(from, iq, NULL, "internal-server-error", NULL);
        roost_xml_free(iq);
        return 0;
    }
    req->srv = srv;
    req->from = from;
    req->iq = iq;
    if (strcmp(type, "get") == 0)
        return handle_get(req);
    return handle_set(req, query);
}
