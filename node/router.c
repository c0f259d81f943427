/* Stanza routing (RFC 6120 §10, RFC 6121 §8.5): validation of what a
 * client sent, server-handled iq, delivery to full and bare JIDs through
 * the session records in Redis; envelopes from other nodes and kicks. */
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "node/router.h"
#include "node/sm.h"
#include "node/stats.h"
#include "node/deliver.h"
#include "node/c2s.h"
#include "node/blocking.h"
#include "node/presence.h"
#include "node/roster.h"
#include "node/carbons.h"
#include "node/offline.h"
#include "store/roster.h"
#include "node/iq_server.h"
#include "node/log.h"
#include "node/route.h"
#include "node/xmpp_error.h"
#include "proto/roost.pb-c.h"
#include "store/blockcheck.h"
#include "store/error.h"
#include "store/jid.h"

#define MAX_HOPS 4

typedef struct {
    roost_server_t *srv;
    roost_c2s_t *from;
    roost_xml_t *stanza;
    roost_jid_t to;
} route_req_t;

/* ---- helpers ------------------------------------------------------------ */

static void reply_error(roost_c2s_t *from, const roost_xml_t *stanza, const char *from_default,
                        const char *cond, const char *text)
{
    roost_xmpp_error_t err = { NULL, cond, text };
    roost_xml_t *r = roost_xmpp_error_reply(stanza, from_default, &err);
    if (r != NULL) {
        roost_c2s_send(from, r);
        roost_xml_free(r);
    }
}

static int is_local(const roost_server_t *srv, const roost_session_t *rec)
{
    return strcmp(rec->node_id, srv->node_id) == 0 &&
           rec->node_epoch == roost_store_node_epoch(srv->store);
}

static void deliver(roost_server_t *srv, const char *bare, const roost_session_t *recs,
                    const size_t *idx, size_t n, const char *bytes, size_t len,
                    const roost_xml_t *orig)
{
    roost_deliver_target_t *t = calloc(n ? n : 1, sizeof(*t));
    if (t == NULL)
        return;
    size_t nt = roost_deliver_add_targets(t, 0, bare, recs, idx, n, NULL);
    roost_deliver_targets_ex(srv, t, nt, bytes, len, 0, roost_xml_attr(orig, "from"),
                       roost_xml_attr(orig, "to"), orig, 1);
    roost_deliver_targets_free(t, nt);
}

static void req_finish(route_req_t *req)
{
    roost_c2s_t *from = req->from;
    roost_xml_free(req->stanza);
    roost_jid_clear(&req->to);
    free(req);
    roost_c2s_done(from);
}

static route_req_t *req_new(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *stanza,
                            roost_jid_t *to)
{
    route_req_t *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    req->srv = srv;
    req->from = from;
    req->stanza = stanza;
    req->to = *to;             /* takes over the parts */
    memset(to, 0, sizeof(*to));
    return req;
}

/* ---- bare JID ----------------------------------------------------------- */

/* No resource may receive it (RFC 6121 §8.5.2.2): chat and normal go to
 * offline storage (which bounces when the account does not exist or is
 * full), groupchat and iq get service-unavailable, the rest is dropped. */
static void bare_undeliverable(route_req_t *req)
{
    const roost_xml_t *st = req->stanza;
    const char *type = roost_xml_attr(st, "type");
    int sender_here = !roost_c2s_gone(req->from);
    if (strcmp(st->name, "message") == 0) {
        roost_msg_type_t mt = roost_route_msg_type(type);
        if (mt == ROOST_MSG_NORMAL || mt == ROOST_MSG_CHAT)
            roost_offline_store(req->srv, req->to.bare, st);
        else if (mt == ROOST_MSG_GROUPCHAT && sender_here)
            reply_error(req->from, st, req->to.bare, "service-unavailable", NULL);
    } else if (strcmp(st->name, "iq") == 0 && sender_here) {
        if (type != NULL && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0))
            reply_error(req->from, st, req->to.bare, "service-unavailable", NULL);
    }
}

static void on_bare_sessions(int status, const roost_session_t *recs, size_t n, void *data)
{
    route_req_t *req = data;
    roost_server_t *srv = req->srv;
    const roost_xml_t *st = req->stanza;
    if (status != 0) {
        ROOST_WARN(roost_c2s_conn_id(req->from), "session lookup failed: %s", roost_strerror(status));
        if (!roost_c2s_gone(req->from))
            reply_error(req->from, st, req->to.bare, "internal-server-error", NULL);
        goto out;
    }
    size_t *idx = calloc(n ? n : 1, sizeof(*idx));
    if (idx == NULL)
        goto out;
    size_t k;
    if (strcmp(st->name, "message") == 0)
        k = roost_route_bare_message(recs, n, roost_route_msg_type(roost_xml_attr(st, "type")), idx);
    else
        k = roost_route_available(recs, n, idx);
    if (k == 0) {
        bare_undeliverable(req);
    } else {
        roost_buf_t b = ROOST_BUF_INIT;
        if (roost_deliver_serialize(st, &b) == 0)
            deliver(srv, req->to.bare, recs, idx, k, b.data, b.len, st);
        roost_buf_free(&b);
        if (strcmp(st->name, "message") == 0 && roost_carbons_eligible(st))
            roost_carbons_received_bare(srv, req->to.bare, recs, n, idx, k, st);
    }
    free(idx);
out:
    req_finish(req);
}

static int route_bare(route_req_t *req)
{
    int rc = roost_store_session_list(req->srv->store, req->to.bare, on_bare_sessions, req);
    if (rc != 0) {
        reply_error(req->from, req->stanza, req->to.bare, "internal-server-error", NULL);
        roost_xml_free(req->stanza);
        roost_jid_clear(&req->to);
        free(req);
        return 0;
    }
    return ROOST_EAGAIN;
}

/* ---- full JID ----------------------------------------------------------- */

static void on_full_session(int status, const roost_session_t *rec, void *data)
{
    route_req_t *req = data;
    roost_server_t *srv = req->srv;
    const roost_xml_t *st = req->stanza;
    if (status != 0) {
        if (!roost_c2s_gone(req->from))
            reply_error(req->from, st, req->to.full, "internal-server-error", NULL);
        goto out;
    }
    /* Elsewhere, or here but detached with a queue (stream management,
     * drain grace): the queue or the other node takes it. */
    if (rec != NULL && (!is_local(srv, rec) || (rec->flags & ROOST_SESS_F_SM))) {
        roost_buf_t b = ROOST_BUF_INIT;
        size_t zero = 0;
        if (roost_deliver_serialize(st, &b) == 0)
            deliver(srv, req->to.bare, rec, &zero, 1, b.data, b.len, st);
        roost_buf_free(&b);
        if (strcmp(st->name, "message") == 0 && roost_carbons_eligible(st))
            roost_carbons_received_full(srv, req->to.bare, req->to.full, st);
        goto out;
    }
    /* No such resource (RFC 6121 §8.5.3.2.1). */
    if (strcmp(st->name, "message") == 0) {
        roost_msg_type_t mt = roost_route_msg_type(roost_xml_attr(st, "type"));
        if (mt == ROOST_MSG_NORMAL || mt == ROOST_MSG_CHAT) {
            /* Treat as addressed to the bare JID; the request continues. */
            int rc = roost_store_session_list(srv->store, req->to.bare, on_bare_sessions, req);
            if (rc == 0)
                return;
            if (!roost_c2s_gone(req->from))
                reply_error(req->from, st, req->to.full, "internal-server-error", NULL);
        } else if (mt == ROOST_MSG_GROUPCHAT && !roost_c2s_gone(req->from)) {
            reply_error(req->from, st, req->to.full, "service-unavailable", NULL);
        }
    } else if (strcmp(st->name, "iq") == 0 && !roost_c2s_gone(req->from)) {
        bare_undeliverable(req);
    }
out:
    req_finish(req);
}

/* Delivers req to its resource on another node when recs (the
 * recipient's whole session hash) has it there, with the carbon copies of
 * the recipient's other resources taken from the same records; frees the
 * request (not roost_c2s_done) and returns 1. 0: not handled (no such
 * resource, or a local record), req untouched. */
static int full_from_records(route_req_t *req, const roost_session_t *recs, size_t n)
{
    roost_server_t *srv = req->srv;
    const roost_xml_t *st = req->stanza;
    const roost_session_t *rec = NULL;
    size_t at = 0;

    for (size_t i = 0; i < n && rec == NULL; i++)
        if (recs[i].resource != NULL && strcmp(recs[i].resource, req->to.resource) == 0) {
            rec = &recs[i];
            at = i;
        }
    /* A local record without a live session is handled by the caller,
     * unless it has a queue (detached, graced): then the queue takes it. */
    if (rec == NULL || (is_local(srv, rec) && !(rec->flags & ROOST_SESS_F_SM)))
        return 0;
    roost_buf_t b = ROOST_BUF_INIT;
    if (roost_deliver_serialize(st, &b) == 0)
        deliver(srv, req->to.bare, recs, &at, 1, b.data, b.len, st);
    roost_buf_free(&b);
    if (strcmp(st->name, "message") == 0 && roost_carbons_eligible(st))
        roost_carbons_received_bare(srv, req->to.bare, recs, n, &at, 1, st);
    roost_xml_free(req->stanza);
    roost_jid_clear(&req->to);
    free(req);
    return 1;
}

/* The recipient's whole session hash rather than its one field: the same
 * reply gives the other resources that want a carbon copy, which would
 * otherwise cost a second read (DESIGN §4, XEP-0280 §6). */
static void on_full_sessions(int status, const roost_session_t *recs, size_t n, void *data)
{
    route_req_t *req = data;
    roost_c2s_t *from = req->from;
    const roost_session_t *rec = NULL;

    if (status != 0) {
        on_full_session(status, NULL, req);
        return;
    }
    if (full_from_records(req, recs, n)) {
        roost_c2s_done(from);
        return;
    }
    for (size_t i = 0; i < n && rec == NULL; i++)
        if (recs[i].resource != NULL && strcmp(recs[i].resource, req->to.resource) == 0)
            rec = &recs[i];
    /* No such resource (or a stale local record): the general path. */
    on_full_session(0, rec, req);
}

static int route_full(route_req_t *req)
{
    roost_server_t *srv = req->srv;
    roost_c2s_t *c = roost_map_get(srv->sessions, req->to.full);
    if (c != NULL && !roost_c2s_gone(c)) {
        roost_c2s_send(c, req->stanza);
        roost_stats_routed(0, 1);
        if (strcmp(req->stanza->name, "message") == 0 && roost_carbons_eligible(req->stanza))
            roost_carbons_received_full(srv, req->to.bare, req->to.full, req->stanza);
        roost_xml_free(req->stanza);
        roost_jid_clear(&req->to);
        free(req);
        return 0;
    }
    /* The node's cache of the recipient's session hash: a hit delivers
     * now, without a round trip (store.h explains how it stays correct). */
    const roost_session_t *recs;
    size_t n;
    if (!roost_router_async_pending() &&
        roost_store_sessions_cached(srv->store, req->to.bare, &recs, &n) &&
        full_from_records(req, recs, n))
        return 0;
    int rc = roost_store_session_list(srv->store, req->to.bare, on_full_sessions, req);
    if (rc != 0) {
        reply_error(req->from, req->stanza, req->to.full, "internal-server-error", NULL);
        roost_xml_free(req->stanza);
        roost_jid_clear(&req->to);
        free(req);
        return 0;
    }
    return ROOST_EAGAIN;
}

/* ---- entry -------------------------------------------------------------- */

static int valid_iq(const roost_xml_t *st)
{
    const char *id = roost_xml_attr(st, "id");
    const char *type = roost_xml_attr(st, "type");
    if (id == NULL || type == NULL)
        return 0;
    if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)
        return roost_xml_child_count(st) == 1;
    return strcmp(type, "result") == 0 || strcmp(type, "error") == 0;
}

/* disco#info on another account's bare JID (RFC 6120 §10.5.3.1): answered
 * for the account only when the requester is subscribed to its presence,
 * as Prosody does, so neither presence nor account existence leaks. */
static void on_disco_contact(int status, const roost_roster_item_t *item, uint64_t ver,
                             void *data)
{
    route_req_t *req = data;
    (void)ver;
    if (!roost_c2s_gone(req->from)) {
        if (status == 0 && item != NULL && (item->sub & ROOST_SUB_FROM)) {
            roost_xml_t *r = roost_iq_server_handle(req->stanza, ROOST_IQ_TO_ACCOUNT);
            if (r != NULL) {
                roost_c2s_send(req->from, r);
                roost_xml_free(r);
            }
        } else {
            reply_error(req->from, req->stanza, req->to.full, "service-unavailable", NULL);
        }
    }
    req_finish(req);
}

/* A stanza from a local client to a user of a hosted domain, after the
 * block check. Takes req; 0 or ROOST_EAGAIN as roost_router_from_client. */
static int route_user(route_req_t *req)
{
    roost_server_t *srv = req->srv;
    roost_xml_t *st = req->stanza;
    const roost_jid_t *me = roost_c2s_jid(req->from);
    const char *type = roost_xml_attr(st, "type");
    int is_iq = strcmp(st->name, "iq") == 0;

    if (strcmp(st->name, "presence") == 0) {
        /* Presence to another user, after the block check. */
        roost_c2s_t *from = req->from;
        int prc = roost_presence_from_client(srv, from, st, &req->to);
        roost_jid_clear(&req->to);
        free(req);
        return prc;
    }
    if (strcmp(st->name, "message") == 0 && me != NULL && strcmp(req->to.bare, me->bare) != 0 &&
        roost_carbons_eligible(st))
        roost_carbons_sent(srv, me->full, me->bare, st);
    if (req->to.resource != NULL)
        return route_full(req);
    if (is_iq) {
        /* iq to another account's bare JID: the server answers for it. */
        const roost_xml_t *q = roost_xml_child(st, "query", ROOST_NS_DISCO_INFO);
        if (strcmp(type, "get") == 0 && q != NULL && roost_xml_attr(q, "node") == NULL &&
            me != NULL && roost_store_roster_item_get(srv->store, req->to.bare, me->bare,
                                                      on_disco_contact, req) == 0)
            return ROOST_EAGAIN;
        if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)
            reply_error(req->from, st, req->to.full, "service-unavailable", NULL);
        roost_xml_free(st);
        roost_jid_clear(&req->to);
        free(req);
        return 0;
    }
    return route_bare(req);
}

/* What follows the block check, whether its verdict came from Redis or
 * from the node's cache. Takes req; 0 or ROOST_EAGAIN as route_user (on 0
 * the caller still owes roost_c2s_done when it was itself async). */
static int after_block_check(route_req_t *req, int status, roost_block_verdict_t verdict)
{
    roost_c2s_t *from = req->from;
    roost_xml_t *st = req->stanza;
    const char *type = roost_xml_attr(st, "type");
    int request = strcmp(st->name, "message") == 0 ||
                  (strcmp(st->name, "iq") == 0 && type != NULL &&
                   (strcmp(type, "get") == 0 || strcmp(type, "set") == 0));
    if (status == 0 && verdict != ROOST_BLOCK_NONE) {
        /* XEP-0191 §3.5: the sender learns it blocked the recipient; a
         * blocked sender sees the recipient as unavailable. Presence is
         * dropped either way. */
        if (request && !roost_c2s_gone(from)) {
            if (verdict == ROOST_BLOCK_BY_SENDER) {
                roost_xml_t *r = roost_blocking_error_reply(st);
                if (r != NULL) {
                    roost_c2s_send(from, r);
                    roost_xml_free(r);
                }
            } else {
                reply_error(from, st, req->to.full, "service-unavailable", NULL);
            }
        }
        roost_xml_free(req->stanza);
        roost_jid_clear(&req->to);
        free(req);
        return 0;
    }
    if (roost_c2s_gone(from) && strcmp(st->name, "iq") == 0) {
        roost_xml_free(req->stanza);
        roost_jid_clear(&req->to);
        free(req);
        return 0;
    }
    return route_user(req);
}

static void on_block_checked(int status, roost_block_verdict_t verdict, void *data)
{
    route_req_t *req = data;
    roost_c2s_t *from = req->from;
    /* route_user either finishes now (then this step ends here) or calls
     * roost_c2s_done itself later. */
    roost_c2s_ref(from);
    if (after_block_check(req, status, verdict) != ROOST_EAGAIN)
        roost_c2s_done(from);
    roost_c2s_unref(from);
}

/* DESIGN §4: elements only a server may add are stripped from what a
 * client sends: carbon wrappers (XEP-0280 §11) and a <delay/> claiming one
 * of our domains (XEP-0203, e.g. a fake offline-storage stamp). */
static void strip_server_only(const roost_server_t *srv, roost_xml_t *st)
{
    roost_xml_t *c = st->children;
    while (c != NULL) {
        roost_xml_t *next = c->next;
        int drop = 0;
        if (c->name != NULL && strcmp(c->ns, ROOST_NS_CARBONS) == 0)
            drop = strcmp(c->name, "sent") == 0 || strcmp(c->name, "received") == 0;
        else if (c->name != NULL && strcmp(c->ns, "urn:xmpp:delay") == 0 &&
                 strcmp(c->name, "delay") == 0) {
            const char *by = roost_xml_attr(c, "from");
            drop = by == NULL || roost_config_hosts(srv->cfg, by);
        }
        if (drop) {
            roost_xml_detach(c);
            roost_xml_free(c);
        }
        c = next;
    }
}

int roost_router_from_client(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *st)
{
    const roost_jid_t *me = roost_c2s_jid(from);
    const char *name = st->name;
    const char *type = roost_xml_attr(st, "type");
    const char *to_s = roost_xml_attr(st, "to");
    int is_iq = strcmp(name, "iq") == 0;
    int rc = 0;
    roost_jid_t to = { 0 };

    if (is_iq && !valid_iq(st)) {
        reply_error(from, st, me->domain, "bad-request", NULL);
        goto done;
    }
    if (strcmp(name, "message") == 0)
        strip_server_only(srv, st);
    if (to_s != NULL && roost_jid_parse(&to, to_s, strlen(to_s)) != 0) {
        reply_error(from, st, me->domain, "jid-malformed", NULL);
        goto done;
    }
    /* The canonical form goes on the wire. */
    if (to_s != NULL)
        roost_xml_set_attr(st, "to", to.full);

    if (to_s == NULL || (to.resource == NULL && strcmp(to.bare, me->bare) == 0)) {
        if (is_iq) {
            if (roost_xml_child(st, "query", ROOST_NS_ROSTER) != NULL) {
                roost_jid_clear(&to);
                return roost_roster_handle_iq(srv, from, st);
            }
            if (roost_carbons_is_request(st)) {
                roost_jid_clear(&to);
                return roost_carbons_handle_iq(srv, from, st);
            }
            if (roost_blocking_is_request(st)) {
                roost_jid_clear(&to);
                return roost_blocking_handle_iq(srv, from, st);
            }
            if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) {
                roost_xml_t *r = roost_iq_server_handle(st, ROOST_IQ_TO_ACCOUNT);
                if (r != NULL) {
                    if (to_s == NULL)
                        roost_xml_set_attr(r, "from", NULL);
                    roost_c2s_send(from, r);
                    roost_xml_free(r);
                }
            }
            goto done;
        }
        if (strcmp(name, "presence") == 0 && to_s == NULL) {
            roost_jid_clear(&to);
            return roost_presence_from_client(srv, from, st, NULL);
        }
        if (to_s == NULL) {
            /* RFC 6120 §10.3.1: a message with no 'to' is for the
             * sender's own bare JID. */
            roost_jid_clear(&to);
            if (roost_jid_copy(&to, me) != 0)
                goto done;
            free(to.resource);
            to.resource = NULL;
            free(to.full);
            to.full = strdup(to.bare);
            if (to.full == NULL)
                goto done;
        }
    }

    if (strcmp(name, "presence") == 0 &&
        (to.local == NULL || !roost_config_hosts(srv->cfg, to.domain) ||
         strcmp(to.bare, me->bare) == 0)) {
        /* Presence to the server, to a remote domain or to oneself: the
         * presence module decides (remote-server-not-found, drop...). */
        int prc = roost_presence_from_client(srv, from, st, &to);
        roost_jid_clear(&to);
        return prc;
    }
    if (!roost_config_hosts(srv->cfg, to.domain)) {
        /* No server-to-server yet. */
        reply_error(from, st, to.full, "remote-server-not-found", NULL);
        goto done;
    }
    if (to.local == NULL) {
        if (is_iq && to.resource == NULL) {
            if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) {
                roost_xml_t *r = roost_iq_server_handle(st, ROOST_IQ_TO_DOMAIN);
                if (r != NULL) {
                    roost_c2s_send(from, r);
                    roost_xml_free(r);
                }
            }
        } else if (is_iq && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)) {
            reply_error(from, st, to.full, "service-unavailable", NULL);
        }
        /* Messages and presence to the server itself are not handled yet. */
        goto done;
    }

    route_req_t *req = req_new(srv, from, st, &to);
    if (req == NULL) {
        reply_error(from, st, to.full, "internal-server-error", NULL);
        goto done;
    }
    if (strcmp(req->to.bare, me->bare) != 0) {
        int verdict;
        /* Both block lists in the node's cache: decided here and now. */
        if (!roost_router_async_pending() &&
            roost_store_blockcheck_cached(srv->store, me, &req->to, &verdict))
            return after_block_check(req, 0, verdict == ROOST_BLOCKCHECK_BY_SENDER
                                                 ? ROOST_BLOCK_BY_SENDER
                                             : verdict == ROOST_BLOCKCHECK_BY_RECIPIENT
                                                 ? ROOST_BLOCK_BY_RECIPIENT
                                                 : ROOST_BLOCK_NONE);
        if (roost_blocking_check(srv, me, &req->to, on_block_checked, req) == 0)
            return ROOST_EAGAIN;
    }
    /* Own account, or the store cannot check: route as usual (a broken
     * store must not make messages vanish). */
    return route_user(req);

done:
    roost_jid_clear(&to);
    roost_xml_free(st);
    return rc;
}

/* ---- envelopes ------------------------------------------------------------ */

/* A stanza for a session this node does not have (any more): the sender
 * routed with a record, possibly from its cache, that was already stale,
 * e.g. the resource rebound on another node a moment ago. The record in
 * Redis decides: forward once more to where the session is now, or drop as
 * before when there is none (DESIGN §5: pub/sub is the fast path). */
typedef struct {
    roost_server_t *srv;
    char *full, *from, *to;
    uint8_t *bytes;
    size_t len;
    uint64_t conn_id;        /* the connection the sender aimed at */
    unsigned hops;
    int stamp_to;
} missed_t;

static void missed_free(missed_t *m)
{
    free(m->full);
    free(m->from);
    free(m->to);
    free(m->bytes);
    free(m);
}

static void on_missed_session(int status, const roost_session_t *rec, void *data)
{
    missed_t *m = data;
    roost_server_t *srv = m->srv;

    if (status != 0 || rec == NULL) {
        ROOST_DEBUG(0, "no session for %s; stanza dropped", m->full);
    } else if (rec->flags & ROOST_SESS_F_SM) {
        /* Detached or in a drain's grace window (or resumed elsewhere):
         * its queue in Redis takes the stanza (node/sm.h). */
        roost_deliver_target_t t = { m->full, rec->node_id, rec->node_epoch, rec->conn_id,
                                     rec->flags };
        roost_deliver_targets(srv, &t, 1, (const char *)m->bytes, m->len, m->stamp_to, NULL,
                              NULL);
    } else if (is_local(srv, rec)) {
        roost_c2s_t *c = roost_map_get(srv->sessions, m->full);
        if (c != NULL && !roost_c2s_gone(c) && roost_c2s_conn_id(c) == rec->conn_id &&
            rec->conn_id != m->conn_id)
            roost_deliver_send_to_c2s(c, (const char *)m->bytes, m->len,
                                      m->stamp_to ? m->full : NULL);
    } else {
        Roost__RouteEnvelope env = ROOST__ROUTE_ENVELOPE__INIT;
        Roost__RouteEnvelope__Target tg = ROOST__ROUTE_ENVELOPE__TARGET__INIT;
        Roost__RouteEnvelope__Target *tp = &tg;
        tg.jid = m->full;
        tg.conn_id = rec->conn_id;
        env.version = 1;
        env.kind = ROOST__ROUTE_ENVELOPE__KIND__STANZA;
        env.from = m->from;
        env.to = m->to;
        env.targets = &tp;
        env.n_targets = 1;
        env.stanza.data = m->bytes;
        env.stanza.len = m->len;
        env.origin_node = srv->node_id;
        env.hops = m->hops + 1;
        env.stamp_to = m->stamp_to ? 1 : 0;
        ROOST_DEBUG(0, "forwarding a stanza for %s to node=%s", m->full, rec->node_id);
        roost_deliver_publish_envelope(srv, rec->node_id, &env, NULL);
    }
    missed_free(m);
    srv->pending_ops--;
    roost_server_check_idle(srv);
}

static void forward_missed(roost_server_t *srv, const Roost__RouteEnvelope *env,
                           const Roost__RouteEnvelope__Target *t)
{
    const char *slash = strchr(t->jid, '/');
    missed_t *m = calloc(1, sizeof(*m));
    char *bare = NULL;

    if (m == NULL || slash == NULL || slash == t->jid ||
        (m->full = strdup(t->jid)) == NULL || (m->from = strdup(env->from)) == NULL ||
        (m->to = strdup(env->to)) == NULL ||
        (m->bytes = malloc(env->stanza.len ? env->stanza.len : 1)) == NULL ||
        (bare = strndup(t->jid, (size_t)(slash - t->jid))) == NULL) {
        if (m != NULL)
            missed_free(m);
        return;
    }
    memcpy(m->bytes, env->stanza.data, env->stanza.len);
    m->len = env->stanza.len;
    m->srv = srv;
    m->conn_id = t->conn_id;
    m->hops = env->hops;
    m->stamp_to = env->stamp_to;
    if (roost_store_session_get(srv->store, bare, slash + 1, on_missed_session, m) == 0)
        srv->pending_ops++;      /* released in on_missed_session */
    else
        missed_free(m);
    free(bare);
}

void roost_router_on_envelope(roost_server_t *srv, const uint8_t *msg, size_t len)
{
    Roost__RouteEnvelope *env = roost__route_envelope__unpack(NULL, len, msg);
    if (env == NULL) {
        ROOST_WARN(0, "dropping undecodable route envelope (%zu bytes)", len);
        return;
    }
    /* A kind from a newer node that we do not know: ignored, never
     * mistaken for a stanza (mixed versions during a rolling upgrade). */
    if (env->kind != ROOST__ROUTE_ENVELOPE__KIND__STANZA &&
        env->kind != ROOST__ROUTE_ENVELOPE__KIND__KICK &&
        env->kind != ROOST__ROUTE_ENVELOPE__KIND__DRAIN) {
        ROOST_WARN(0, "ignoring envelope of unknown kind %d from node=%s", (int)env->kind,
                   env->origin_node);
        goto out;
    }
    if (env->hops > MAX_HOPS) {
        ROOST_WARN(0, "dropping envelope from node=%s after %u hops", env->origin_node, env->hops);
        goto out;
    }
    if (env->kind == ROOST__ROUTE_ENVELOPE__KIND__DRAIN) {
        ROOST_INFO(0, "drain requested by %s", env->origin_node[0] ? env->origin_node : "?");
        if (srv->on_drain != NULL)
            srv->on_drain(srv);
        goto out;
    }
    for (size_t i = 0; i < env->n_targets; i++) {
        const Roost__RouteEnvelope__Target *t = env->targets[i];
        if (env->sm_seq != 0) {
            /* Numbered for a stream-management session (node/sm.c). */
            roost_sm_on_envelope(srv, t->jid, env->sm_seq, env->stanza.data, env->stanza.len);
            continue;
        }
        roost_c2s_t *c = roost_map_get(srv->sessions, t->jid);
        if (c == NULL || (t->conn_id != 0 && roost_c2s_conn_id(c) != t->conn_id)) {
            /* Presence is best-effort (DESIGN §5); messages and iqs are not. */
            if (env->kind == ROOST__ROUTE_ENVELOPE__KIND__STANZA && env->hops < MAX_HOPS &&
                !(env->stanza.len >= 9 && memcmp(env->stanza.data, "<presence", 9) == 0))
                forward_missed(srv, env, t);
            continue;
        }
        if (env->kind == ROOST__ROUTE_ENVELOPE__KIND__KICK)
            roost_c2s_stream_error(c, env->condition[0] ? env->condition : "conflict",
                                   env->text[0] ? env->text : NULL);
        else if (env->kind == ROOST__ROUTE_ENVELOPE__KIND__STANZA)
            roost_deliver_send_to_c2s(c, (const char *)env->stanza.data, env->stanza.len,
                        env->stamp_to ? t->jid : NULL);
    }
out:
    roost__route_envelope__free_unpacked(env, NULL);
}

void roost_router_kick(roost_server_t *srv, const char *node_id, const char *full_jid,
                       uint64_t conn_id, const char *condition, const char *text)
{
    if (strcmp(node_id, srv->node_id) == 0) {
        roost_c2s_t *c = roost_map_get(srv->sessions, full_jid);
        if (c != NULL && roost_c2s_conn_id(c) == conn_id)
            roost_c2s_stream_error(c, condition, text);
        return;
    }
    Roost__RouteEnvelope env = ROOST__ROUTE_ENVELOPE__INIT;
    Roost__RouteEnvelope__Target tg = ROOST__ROUTE_ENVELOPE__TARGET__INIT;
    Roost__RouteEnvelope__Target *tp = &tg;
    tg.jid = (char *)full_jid;
    tg.conn_id = conn_id;
    env.version = 1;
    env.kind = ROOST__ROUTE_ENVELOPE__KIND__KICK;
    env.targets = &tp;
    env.n_targets = 1;
    env.origin_node = srv->node_id;
    env.condition = (char *)condition;
    env.text = (char *)(text != NULL ? text : "");
    env.hops = 1;
    roost_deliver_publish_envelope(srv, node_id, &env, NULL);
}
