/* Stanza routing (RFC 6120 §10, RFC 6121 §8.5): validation of what a
 * client sent, server-handled iq, delivery to full and bare JIDs through
 * the session records in Redis, to local connections directly and to other
 * nodes as RouteEnvelopes over pub/sub (batched per node). */
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "node/router.h"
#include "node/c2s.h"
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

static int publish_envelope(roost_server_t *srv, const char *node_id, Roost__RouteEnvelope *env)
{
    size_t len = roost__route_envelope__get_packed_size(env);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return ROOST_ENOMEM;
    roost__route_envelope__pack(env, buf);
    int rc = roost_store_publish(srv->store, node_id, buf, len, on_published, NULL);
    free(buf);
    if (rc != 0)
        ROOST_WARN(0, "publish to node=%s failed: %s", node_id, roost_strerror(rc));
    return rc;
}

/* Delivers serialized stanza bytes to the chosen records: local sessions
 * directly, others in one envelope per destination node. */
static void deliver(roost_server_t *srv, const char *bare, const roost_session_t *recs,
                    const size_t *idx, size_t n, const char *bytes, size_t len,
                    const char *from, const char *to)
{
    size_t done_mask_n = n;
    char *done = calloc(done_mask_n ? done_mask_n : 1, 1);
    if (done == NULL)
        return;
    for (size_t k = 0; k < n; k++) {
        const roost_session_t *r = &recs[idx[k]];
        if (!is_local(srv, r))
            continue;
        done[k] = 1;
        char full[3200];
        snprintf(full, sizeof(full), "%s/%s", bare, r->resource);
        roost_c2s_t *c = roost_map_get(srv->sessions, full);
        if (c != NULL && roost_c2s_conn_id(c) == r->conn_id)
            roost_c2s_send_bytes(c, bytes, len);
    }
    /* Remote: batch by node. */
    for (size_t k = 0; k < n; k++) {
        if (done[k])
            continue;
        const char *node = recs[idx[k]].node_id;
        Roost__RouteEnvelope env = ROOST__ROUTE_ENVELOPE__INIT;
        Roost__RouteEnvelope__Target *tg = calloc(n, sizeof(*tg));
        Roost__RouteEnvelope__Target **tp = calloc(n, sizeof(*tp));
        char **fulls = calloc(n, sizeof(*fulls));
        size_t nt = 0;
        if (tg == NULL || tp == NULL || fulls == NULL) {
            free(tg); free(tp); free(fulls);
            break;
        }
        for (size_t j = k; j < n; j++) {
            const roost_session_t *r = &recs[idx[j]];
            if (done[j] || strcmp(r->node_id, node) != 0)
                continue;
            done[j] = 1;
            size_t fl = strlen(bare) + strlen(r->resource) + 2;
            fulls[nt] = malloc(fl);
            if (fulls[nt] == NULL)
                continue;
            snprintf(fulls[nt], fl, "%s/%s", bare, r->resource);
            roost__route_envelope__target__init(&tg[nt]);
            tg[nt].jid = fulls[nt];
            tg[nt].conn_id = r->conn_id;
            tp[nt] = &tg[nt];
            nt++;
        }
        env.version = 1;
        env.kind = ROOST__ROUTE_ENVELOPE__KIND__STANZA;
        env.from = (char *)from;
        env.to = (char *)to;
        env.n_targets = nt;
        env.targets = tp;
        env.stanza.data = (uint8_t *)bytes;
        env.stanza.len = len;
        env.origin_node = srv->node_id;
        env.hops = 1;
        publish_envelope(srv, node, &env);
        for (size_t j = 0; j < nt; j++)
            free(fulls[j]);
        free(fulls);
        free(tp);
        free(tg);
    }
    free(done);
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

static void bare_undeliverable(route_req_t *req)
{
    const roost_xml_t *st = req->stanza;
    const char *type = roost_xml_attr(st, "type");
    if (strcmp(st->name, "message") == 0) {
        roost_msg_type_t mt = roost_route_msg_type(type);
        /* No offline storage yet: tell the sender rather than lose it. */
        if (mt == ROOST_MSG_NORMAL || mt == ROOST_MSG_CHAT || mt == ROOST_MSG_GROUPCHAT)
            reply_error(req->from, st, req->to.bare, "service-unavailable", NULL);
    } else if (strcmp(st->name, "iq") == 0) {
        if (type != NULL && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0))
            reply_error(req->from, st, req->to.bare, "service-unavailable", NULL);
    }
}

static void on_bare_sessions(int status, const roost_session_t *recs, size_t n, void *data)
{
    route_req_t *req = data;
    roost_server_t *srv = req->srv;
    const roost_xml_t *st = req->stanza;
    if (roost_c2s_gone(req->from) && status == 0 && n == 0)
        goto out;
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
        if (!roost_c2s_gone(req->from))
            bare_undeliverable(req);
    } else {
        roost_buf_t b = ROOST_BUF_INIT;
        if (serialize(st, &b) == 0)
            deliver(srv, req->to.bare, recs, idx, k, b.data, b.len,
                    roost_xml_attr(st, "from"), roost_xml_attr(st, "to"));
        roost_buf_free(&b);
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
            deliver(srv, req->to.bare, rec, &zero, 1, b.data, b.len,
                    roost_xml_attr(st, "from"), roost_xml_attr(st, "to"));
        roost_buf_free(&b);
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

/* ---- own presence --------------------------------------------------------- */

static void on_presence_saved(int status, void *data)
{
    roost_c2s_t *from = data;
    if (status != 0)
        ROOST_WARN(roost_c2s_conn_id(from), "presence update failed: %s", roost_strerror(status));
    roost_c2s_done(from);
}

static int self_presence(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *st)
{
    const char *type = roost_xml_attr(st, "type");
    roost_session_t *rec = roost_c2s_record(from);
    if (type != NULL && strcmp(type, "unavailable") != 0) {
        /* Subscription management without a 'to' is meaningless. */
        roost_xml_free(st);
        return 0;
    }
    if (type == NULL) {
        long prio = 0;
        roost_xml_t *p = roost_xml_child(st, "priority", ROOST_NS_CLIENT);
        if (p != NULL) {
            char *t = roost_xml_text(p);
            char *end = NULL;
            errno = 0;
            prio = t != NULL ? strtol(t, &end, 10) : 0;
            int bad = t == NULL || end == t || *end != '\0' || errno != 0 ||
                      prio < -128 || prio > 127;
            free(t);
            if (bad) {
                reply_error(from, st, NULL, "bad-request", "priority must be -128..127");
                roost_xml_free(st);
                return 0;
            }
        }
        roost_buf_t b = ROOST_BUF_INIT;
        if (serialize(st, &b) != 0) {
            roost_buf_free(&b);
            roost_xml_free(st);
            return 0;
        }
        free(rec->presence);
        size_t len;
        rec->presence = (uint8_t *)roost_buf_steal(&b, &len);
        rec->presence_len = len;
        rec->priority = (int32_t)prio;
        rec->flags |= ROOST_SESS_F_AVAILABLE;
    } else {
        free(rec->presence);
        rec->presence = NULL;
        rec->presence_len = 0;
        rec->flags &= ~ROOST_SESS_F_AVAILABLE;
    }
    const roost_jid_t *me = roost_c2s_jid(from);
    roost_xml_free(st);
    if (roost_store_session_update(srv->store, me->bare, rec, on_presence_saved, from) != 0)
        return 0;
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
            return self_presence(srv, from, st);
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
    if (req->to.resource != NULL)
        return route_full(req);
    if (is_iq) {
        /* iq to another account's bare JID: the server answers for it. */
        if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)
            reply_error(from, st, req->to.full, "service-unavailable", NULL);
        roost_xml_free(st);
        roost_jid_clear(&req->to);
        free(req);
        return 0;
    }
    if (strcmp(name, "presence") == 0 && type != NULL && strcmp(type, "unavailable") != 0) {
        /* Subscriptions and probes need the roster: not handled yet. */
        roost_xml_free(st);
        roost_jid_clear(&req->to);
        free(req);
        return 0;
    }
    return route_bare(req);

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
            roost_c2s_send_bytes(c, (const char *)env->stanza.data, env->stanza.len);
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
    publish_envelope(srv, node_id, &env);
}
