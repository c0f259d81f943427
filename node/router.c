/* Stanza routing (RFC 6120 §10, RFC 6121 §8.5): validation of what a
 * client sent, server-handled iq, delivery to full and bare JIDs through
 * the session records in Redis, to local connections directly and to other
 * nodes as RouteEnvelopes over pub/sub (batched per node). */
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "node/router.h"
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

static void on_published(int status, long long receivers, void *data)
{
    if (status != 0)
        ROOST_WARN(0, "publish failed: %s", roost_strerror(status));
    else if (receivers == 0)
        ROOST_WARN(0, "publish reached no node (target node gone)");
}

typedef struct retry_s retry_t;
static void on_published_retry(int status, long long receivers, void *data);
static void retry_free(retry_t *r);

/* Publishes env to node_id. retry (owned, may be NULL) is what to do when
 * no node listens on that channel. */
static int publish_envelope(roost_server_t *srv, const char *node_id, Roost__RouteEnvelope *env,
                            retry_t *retry)
{
    size_t len = roost__route_envelope__get_packed_size(env);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        retry_free(retry);
        return ROOST_ENOMEM;
    }
    roost__route_envelope__pack(env, buf);
    int rc = retry != NULL
        ? roost_store_publish(srv->store, node_id, buf, len, on_published_retry, retry)
        : roost_store_publish(srv->store, node_id, buf, len, on_published, NULL);
    free(buf);
    if (rc != 0)
        retry_free(retry);
    if (rc != 0)
        ROOST_WARN(0, "publish to node=%s failed: %s", node_id, roost_strerror(rc));
    return rc;
}

/* One delivery target: a bound resource, local or on another node. */
typedef struct {
    char *full;                 /* owned */
    const char *node_id;        /* borrowed from the record */
    uint64_t epoch;
    uint64_t conn_id;
} target_t;

static roost_buf_t stamp_buf;

/* Writes bytes to c; with jid, the copy gets to='jid' inserted into the
 * top-level start tag (the bytes were serialized without a 'to'). */
static void send_to_c2s(roost_c2s_t *c, const char *bytes, size_t len, const char *jid)
{
    if (jid == NULL) {
        roost_c2s_send_bytes(c, bytes, len);
        return;
    }
    size_t i = 1;
    while (i < len && bytes[i] != ' ' && bytes[i] != '>' && bytes[i] != '/')
        i++;
    roost_buf_reset(&stamp_buf);
    if (roost_buf_append(&stamp_buf, bytes, i) == 0 &&
        roost_buf_puts(&stamp_buf, " to='") == 0 &&
        roost_buf_escape(&stamp_buf, jid, strlen(jid)) == 0 &&
        roost_buf_puts(&stamp_buf, "'") == 0 &&
        roost_buf_append(&stamp_buf, bytes + i, len - i) == 0)
        roost_c2s_send_bytes(c, stamp_buf.data, stamp_buf.len);
}

static void deliver_local(roost_server_t *srv, const target_t *t, const char *bytes, size_t len,
                          int stamp_to)
{
    roost_c2s_t *c = roost_map_get(srv->sessions, t->full);
    if (c != NULL && !roost_c2s_gone(c) && (t->conn_id == 0 || roost_c2s_conn_id(c) == t->conn_id))
        send_to_c2s(c, bytes, len, stamp_to ? t->full : NULL);
}

/* Hands bytes to every target: local ones directly, the others in one
 * envelope per destination node (one PUBLISH carries every target there). */
static retry_t *retry_new(roost_server_t *srv, const char *node, const target_t *t, size_t n,
                          const char *bytes, size_t len, int stamp_to, const roost_xml_t *orig,
                          unsigned hops);

static void deliver_targets_ex(roost_server_t *srv, target_t *t, size_t n, const char *bytes,
                               size_t len, int stamp_to, const char *from, const char *to,
                               const roost_xml_t *orig, unsigned hops)
{
    uint64_t epoch = roost_store_node_epoch(srv->store);
    char *done = calloc(n ? n : 1, 1);
    Roost__RouteEnvelope__Target *tg = calloc(n ? n : 1, sizeof(*tg));
    Roost__RouteEnvelope__Target **tp = calloc(n ? n : 1, sizeof(*tp));
    if (done == NULL || tg == NULL || tp == NULL)
        goto out;
    for (size_t k = 0; k < n; k++) {
        if (strcmp(t[k].node_id, srv->node_id) == 0 && t[k].epoch == epoch) {
            done[k] = 1;
            deliver_local(srv, &t[k], bytes, len, stamp_to);
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (done[k])
            continue;
        const char *node = t[k].node_id;
        size_t nt = 0;
        for (size_t j = k; j < n; j++) {
            if (done[j] || strcmp(t[j].node_id, node) != 0)
                continue;
            done[j] = 1;
            roost__route_envelope__target__init(&tg[nt]);
            tg[nt].jid = t[j].full;
            tg[nt].conn_id = t[j].conn_id;
            tp[nt] = &tg[nt];
            nt++;
        }
        Roost__RouteEnvelope env = ROOST__ROUTE_ENVELOPE__INIT;
        env.version = 1;
        env.kind = ROOST__ROUTE_ENVELOPE__KIND__STANZA;
        env.from = (char *)(from != NULL ? from : "");
        env.to = (char *)(to != NULL ? to : "");
        env.n_targets = nt;
        env.targets = tp;
        env.stanza.data = (uint8_t *)bytes;
        env.stanza.len = len;
        env.origin_node = srv->node_id;
        env.hops = hops;
        env.stamp_to = stamp_to ? 1 : 0;
        /* Messages and iqs must not vanish if that node died: keep what
         * is needed to re-route them. Presence is best-effort. */
        retry_t *rt = NULL;
        if (orig != NULL && strcmp(orig->name, "presence") != 0) {
            target_t *sub = calloc(nt, sizeof(*sub));
            if (sub != NULL) {
                for (size_t j = 0; j < nt; j++) {
                    sub[j].full = tg[j].jid;
                    sub[j].node_id = node;
                    sub[j].conn_id = tg[j].conn_id;
                }
                rt = retry_new(srv, node, sub, nt, bytes, len, stamp_to, orig, hops);
                free(sub);
            }
        }
        publish_envelope(srv, node, &env, rt);
    }
out:
    free(tp);
    free(tg);
    free(done);
}

static void deliver_targets(roost_server_t *srv, target_t *t, size_t n, const char *bytes,
                            size_t len, int stamp_to, const char *from, const char *to)
{
    deliver_targets_ex(srv, t, n, bytes, len, stamp_to, from, to, NULL, 1);
}


/* ---- undeliverable: PUBLISH reached no node (DESIGN §5) -------------------- */

#define MAX_ROUTE_HOPS 2          /* the first try plus one re-route */

struct retry_s {
    roost_server_t *srv;
    char *node;                   /* the channel nobody listened on */
    char **fulls;
    size_t n;
    char *bytes;
    size_t len;
    int stamp_to;
    roost_xml_t *orig;
    unsigned hops;
    size_t pending;
    int fell_back;                /* offline store / bounce done once */
};

static void retry_free(retry_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->fulls[i]);
    free(r->fulls);
    free(r->node);
    free(r->bytes);
    roost_xml_free(r->orig);
    free(r);
}

static retry_t *retry_new(roost_server_t *srv, const char *node, const target_t *t, size_t n,
                          const char *bytes, size_t len, int stamp_to, const roost_xml_t *orig,
                          unsigned hops)
{
    retry_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->srv = srv;
    r->stamp_to = stamp_to;
    r->hops = hops;
    r->len = len;
    r->node = strdup(node);
    r->bytes = malloc(len ? len : 1);
    r->fulls = calloc(n ? n : 1, sizeof(*r->fulls));
    r->orig = roost_xml_copy(orig);
    if (r->node == NULL || r->bytes == NULL || r->fulls == NULL || r->orig == NULL) {
        retry_free(r);
        return NULL;
    }
    memcpy(r->bytes, bytes, len);
    for (; r->n < n; r->n++)
        if ((r->fulls[r->n] = strdup(t[r->n].full)) == NULL)
            break;
    return r;
}

/* Nowhere to deliver: a message goes to offline storage, an iq request is
 * answered service-unavailable, anything else is dropped. Once per
 * stanza, however many of its targets failed. */
static void fall_back(retry_t *r, const char *bare)
{
    const roost_xml_t *st = r->orig;
    const char *type = roost_xml_attr(st, "type");
    if (r->fell_back)
        return;
    r->fell_back = 1;
    if (strcmp(st->name, "message") == 0) {
        roost_msg_type_t mt = roost_route_msg_type(type);
        if (mt == ROOST_MSG_NORMAL || mt == ROOST_MSG_CHAT)
            roost_offline_store(r->srv, bare, st);
    } else if (strcmp(st->name, "iq") == 0 && type != NULL &&
               (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)) {
        const char *from = roost_xml_attr(st, "from");
        roost_xmpp_error_t err = { NULL, "service-unavailable", NULL };
        roost_xml_t *e = roost_xmpp_error_reply(st, NULL, &err);
        if (e != NULL && from != NULL && strchr(from, '/') != NULL)
            roost_router_to_full(r->srv, from, e, NULL, NULL);
        roost_xml_free(e);
    }
}

typedef struct {
    retry_t *r;
    char *full;
    char *bare;
} reread_t;

static void on_reread(int status, const roost_session_t *rec, void *data)
{
    reread_t *q = data;
    retry_t *r = q->r;
    if (status == 0 && rec != NULL && strcmp(rec->node_id, r->node) != 0 &&
        r->hops < MAX_ROUTE_HOPS) {
        /* The session moved (rebound elsewhere): one more try there. */
        target_t t = { q->full, rec->node_id, rec->node_epoch, rec->conn_id };
        deliver_targets_ex(r->srv, &t, 1, r->bytes, r->len, r->stamp_to, NULL, NULL,
                           r->orig, r->hops + 1);
    } else {
        fall_back(r, q->bare);
    }
    free(q->full);
    free(q->bare);
    free(q);
    if (--r->pending == 0)
        retry_free(r);
}

static void on_published_retry(int status, long long receivers, void *data)
{
    retry_t *r = data;
    if (status != 0 || receivers > 0) {
        if (status != 0)
            ROOST_WARN(0, "publish to node=%s failed: %s", r->node, roost_strerror(status));
        retry_free(r);
        return;
    }
    ROOST_WARN(0, "node=%s did not receive a %s; re-reading %zu session(s)", r->node,
               r->orig->name, r->n);
    r->pending = 1;
    for (size_t i = 0; i < r->n; i++) {
        reread_t *q = calloc(1, sizeof(*q));
        char *slash = strchr(r->fulls[i], '/');
        if (q == NULL || slash == NULL || (q->full = strdup(r->fulls[i])) == NULL ||
            (q->bare = strndup(r->fulls[i], (size_t)(slash - r->fulls[i]))) == NULL) {
            if (q != NULL) {
                free(q->full);
                free(q);
            }
            continue;
        }
        q->r = r;
        if (roost_store_session_get(r->srv->store, q->bare, slash + 1, on_reread, q) != 0) {
            fall_back(r, q->bare);
            free(q->full);
            free(q->bare);
            free(q);
            continue;
        }
        r->pending++;
    }
    if (--r->pending == 0)
        retry_free(r);
}

static void targets_free(target_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].full);
    free(t);
}

/* Appends the targets for recs[idx[0..n)] of bare, skipping except. */
static size_t add_targets(target_t *t, size_t at, const char *bare, const roost_session_t *recs,
                          const size_t *idx, size_t n, const char *except)
{
    for (size_t k = 0; k < n; k++) {
        const roost_session_t *r = &recs[idx[k]];
        size_t fl = strlen(bare) + strlen(r->resource) + 2;
        char *full = malloc(fl);
        if (full == NULL)
            continue;
        snprintf(full, fl, "%s/%s", bare, r->resource);
        if (except != NULL && strcmp(full, except) == 0) {
            free(full);
            continue;
        }
        t[at].full = full;
        t[at].node_id = r->node_id;
        t[at].epoch = r->node_epoch;
        t[at].conn_id = r->conn_id;
        at++;
    }
    return at;
}

static void deliver(roost_server_t *srv, const char *bare, const roost_session_t *recs,
                    const size_t *idx, size_t n, const char *bytes, size_t len,
                    const roost_xml_t *orig)
{
    target_t *t = calloc(n ? n : 1, sizeof(*t));
    if (t == NULL)
        return;
    size_t nt = add_targets(t, 0, bare, recs, idx, n, NULL);
    deliver_targets_ex(srv, t, nt, bytes, len, 0, roost_xml_attr(orig, "from"),
                       roost_xml_attr(orig, "to"), orig, 1);
    targets_free(t, nt);
}

static int serialize(const roost_xml_t *st, roost_buf_t *b)
{
    return roost_xml_serialize(st, ROOST_NS_CLIENT, b);
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
        if (serialize(st, &b) == 0)
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
    if (rec != NULL && !is_local(srv, rec)) {
        roost_buf_t b = ROOST_BUF_INIT;
        size_t zero = 0;
        if (serialize(st, &b) == 0)
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

static int route_full(route_req_t *req)
{
    roost_server_t *srv = req->srv;
    roost_c2s_t *c = roost_map_get(srv->sessions, req->to.full);
    if (c != NULL && !roost_c2s_gone(c)) {
        roost_c2s_send(c, req->stanza);
        if (strcmp(req->stanza->name, "message") == 0 && roost_carbons_eligible(req->stanza))
            roost_carbons_received_full(srv, req->to.bare, req->to.full, req->stanza);
        roost_xml_free(req->stanza);
        roost_jid_clear(&req->to);
        free(req);
        return 0;
    }
    int rc = roost_store_session_get(srv->store, req->to.bare, req->to.resource,
                                     on_full_session, req);
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

static void on_block_checked(int status, roost_block_verdict_t verdict, void *data)
{
    route_req_t *req = data;
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
        req_finish(req);
        return;
    }
    if (roost_c2s_gone(from) && strcmp(st->name, "iq") == 0) {
        req_finish(req);
        return;
    }
    /* route_user either finishes now (then this step ends here) or calls
     * roost_c2s_done itself later. */
    roost_c2s_ref(from);
    if (route_user(req) != ROOST_EAGAIN)
        roost_c2s_done(from);
    roost_c2s_unref(from);
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
    if (strcmp(req->to.bare, me->bare) != 0 &&
        roost_blocking_check(srv, me, &req->to, on_block_checked, req) == 0)
        return ROOST_EAGAIN;
    /* Own account, or the store cannot check: route as usual (a broken
     * store must not make messages vanish). */
    return route_user(req);

done:
    roost_jid_clear(&to);
    roost_xml_free(st);
    return rc;
}

/* ---- envelopes ------------------------------------------------------------ */

void roost_router_on_envelope(roost_server_t *srv, const uint8_t *msg, size_t len)
{
    Roost__RouteEnvelope *env = roost__route_envelope__unpack(NULL, len, msg);
    if (env == NULL) {
        ROOST_WARN(0, "dropping undecodable route envelope (%zu bytes)", len);
        return;
    }
    if (env->hops > MAX_HOPS) {
        ROOST_WARN(0, "dropping envelope from node=%s after %u hops", env->origin_node, env->hops);
        goto out;
    }
    for (size_t i = 0; i < env->n_targets; i++) {
        const Roost__RouteEnvelope__Target *t = env->targets[i];
        roost_c2s_t *c = roost_map_get(srv->sessions, t->jid);
        if (c == NULL || (t->conn_id != 0 && roost_c2s_conn_id(c) != t->conn_id))
            continue;
        if (env->kind == ROOST__ROUTE_ENVELOPE__KIND__KICK)
            roost_c2s_stream_error(c, env->condition[0] ? env->condition : "conflict",
                                   env->text[0] ? env->text : NULL);
        else
            send_to_c2s(c, (const char *)env->stanza.data, env->stanza.len,
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
    publish_envelope(srv, node_id, &env, NULL);
}

/* ---- fan-out for feature modules ------------------------------------------ */

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
    target_t *t;                /* collected targets, delivered at the end */
    size_t nt, capt;
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
    deliver_targets(f->srv, f->t, f->nt, f->bytes, f->len, f->stamp_to, NULL, NULL);
    f->reached = f->nt;
    if (f->done != NULL)
        f->done(f->status, f->reached, f->data);
    roost_server_t *srv = f->srv;
    targets_free(f->t, f->nt);
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

static void on_fanout_chunk(int status, const roost_session_t *recs, const size_t *offs,
                            const size_t *counts, size_t n, void *data)
{
    fanout_chunk_t *c = data;
    fanout_t *f = c->f;
    if (status != 0) {
        f->status = status;
        n = 0;
    }
    for (size_t u = 0; u < n && u < c->n; u++) {
        const roost_session_t *r = recs + offs[u];
        size_t cnt = counts[u];
        size_t *idx = calloc(cnt ? cnt : 1, sizeof(*idx));
        size_t k = 0;
        if (idx == NULL)
            continue;
        for (size_t i = 0; i < cnt; i++)
            if (selected(&r[i], f->kind))
                idx[k++] = i;
        if (f->nt + k > f->capt) {
            size_t cap = (f->nt + k) * 2;
            target_t *nt = realloc(f->t, cap * sizeof(*nt));
            if (nt != NULL) {
                f->t = nt;
                f->capt = cap;
            }
        }
        if (f->nt + k <= f->capt)
            f->nt = add_targets(f->t, f->nt, c->bares[u], r, idx, k, f->except);
        free(idx);
    }
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
        for (size_t j = 0; j < m; j++) {
            if ((c->bares[j] = strdup(bares[i + j])) == NULL)
                break;
            c->n++;
        }
        if (c->n != m || roost_store_sessions_multi(srv->store, (const char *const *)c->bares,
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
    int rc = serialize(stanza, &b);
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
        target_t t = { 0 };
        t.full = q->bytes + q->len + 1;   /* stored after the stanza bytes */
        t.node_id = rec->node_id;
        t.epoch = rec->node_epoch;
        t.conn_id = rec->conn_id;
        deliver_targets(q->srv, &t, 1, q->bytes, q->len, 0, NULL, NULL);
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
    if (q == NULL || serialize(stanza, &b) != 0 ||
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
    target_t *t = calloc(n ? n : 1, sizeof(*t));
    if (t == NULL)
        return;
    if (stamp_to) {
        if ((copy = roost_xml_copy(stanza)) == NULL)
            goto out;
        roost_xml_set_attr(copy, "to", NULL);
        stanza = copy;
    }
    if (serialize(stanza, &b) == 0) {
        size_t nt = add_targets(t, 0, bare, recs, idx, n, NULL);
        deliver_targets(srv, t, nt, b.data, b.len, stamp_to, NULL, NULL);
        for (size_t i = 0; i < nt; i++)
            free(t[i].full);
    }
out:
    free(t);
    roost_xml_free(copy);
    roost_buf_free(&b);
}
