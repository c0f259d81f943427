/* XEP-0280 Message Carbons. The flag lives in the session record so any
 * node can decide who gets a copy. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "node/carbons.h"
#include "node/c2s.h"
#include "node/log.h"
#include "node/map.h"
#include "node/router.h"
#include "node/xmpp_error.h"
#include "store/error.h"
#include "store/store.h"

#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_HINTS "urn:xmpp:hints"

int roost_carbons_is_request(const roost_xml_t *iq)
{
    const char *type = roost_xml_attr(iq, "type");
    return type != NULL && strcmp(type, "set") == 0 &&
           (roost_xml_child(iq, "enable", ROOST_NS_CARBONS) != NULL ||
            roost_xml_child(iq, "disable", ROOST_NS_CARBONS) != NULL);
}

typedef struct {
    roost_c2s_t *s;
    roost_xml_t *iq;
} req_t;

static void on_saved(int status, void *data)
{
    req_t *q = data;
    if (!roost_c2s_gone(q->s)) {
        roost_xml_t *r;
        if (status == 0) {
            r = roost_xml_new("iq", ROOST_NS_CLIENT);
            if (r != NULL) {
                roost_xml_set_attr(r, "type", "result");
                roost_xml_set_attr(r, "id", roost_xml_attr(q->iq, "id"));
                roost_xml_set_attr(r, "to", roost_xml_attr(q->iq, "from"));
            }
        } else {
            roost_xmpp_error_t err = { "wait", "internal-server-error", NULL };
            r = roost_xmpp_error_reply(q->iq, NULL, &err);
        }
        if (r != NULL) {
            roost_c2s_send(q->s, r);
            roost_xml_free(r);
        }
    }
    roost_c2s_t *s = q->s;
    roost_xml_free(q->iq);
    free(q);
    roost_c2s_done(s);
}

int roost_carbons_handle_iq(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *iq)
{
    roost_session_t *rec = roost_c2s_record(from);
    const roost_jid_t *me = roost_c2s_jid(from);
    if (roost_xml_child(iq, "enable", ROOST_NS_CARBONS) != NULL)
        rec->flags |= ROOST_SESS_F_CARBONS;
    else
        rec->flags &= ~ROOST_SESS_F_CARBONS;
    req_t *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        roost_xml_free(iq);
        return 0;
    }
    q->s = from;
    q->iq = iq;
    if (roost_store_session_update(srv->store, me->bare, rec, on_saved, q) != 0) {
        roost_xmpp_error_t err = { "wait", "internal-server-error", NULL };
        roost_xml_t *r = roost_xmpp_error_reply(iq, NULL, &err);
        if (r != NULL) {
            roost_c2s_send(from, r);
            roost_xml_free(r);
        }
        roost_xml_free(iq);
        free(q);
        return 0;
    }
    return ROOST_EAGAIN;
}

int roost_carbons_eligible(const roost_xml_t *msg)
{
    const char *type = roost_xml_attr(msg, "type");
    int chat = type != NULL && strcmp(type, "chat") == 0;
    int normal_body = (type == NULL || strcmp(type, "normal") == 0) &&
                      roost_xml_child(msg, "body", ROOST_NS_CLIENT) != NULL;
    if (!chat && !normal_body)
        return 0;
    if (roost_xml_child(msg, "private", ROOST_NS_CARBONS) != NULL ||
        roost_xml_child(msg, "no-copy", NS_HINTS) != NULL ||
        roost_xml_child(msg, "sent", ROOST_NS_CARBONS) != NULL ||
        roost_xml_child(msg, "received", ROOST_NS_CARBONS) != NULL)
        return 0;
    return 1;
}

roost_xml_t *roost_carbons_wrap(const roost_xml_t *msg, const char *bare, int sent)
{
    roost_xml_t *w = roost_xml_new("message", ROOST_NS_CLIENT);
    roost_xml_t *inner = roost_xml_copy(msg);
    if (w == NULL || inner == NULL)
        goto fail;
    const char *type = roost_xml_attr(msg, "type");
    if (roost_xml_set_attr(w, "from", bare) != 0 ||
        roost_xml_set_attr(w, "type", type != NULL ? type : "normal") != 0)
        goto fail;
    roost_xml_t *c = roost_xml_add(w, sent ? "sent" : "received", ROOST_NS_CARBONS);
    roost_xml_t *f = c != NULL ? roost_xml_add(c, "forwarded", NS_FORWARD) : NULL;
    if (f == NULL)
        goto fail;
    roost_xml_append(f, inner);
    return w;
fail:
    roost_xml_free(inner);
    roost_xml_free(w);
    return NULL;
}

/* Copies of msg to bare's resources in recs that enabled carbons, except
 * except_full; wrapped (and so copied) only when one exists. */
static void carbons_to(roost_server_t *srv, const char *bare, const roost_session_t *recs,
                       size_t n, const char *except_full, const roost_xml_t *msg, int sent)
{
    const char *except_res = except_full != NULL ? strchr(except_full, '/') : NULL;
    size_t *idx, k = 0;

    if (except_res != NULL)
        except_res++;
    idx = calloc(n ? n : 1, sizeof(*idx));
    if (idx == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        if ((recs[i].flags & ROOST_SESS_F_CARBONS) && recs[i].resource != NULL &&
            (except_res == NULL || strcmp(recs[i].resource, except_res) != 0))
            idx[k++] = i;
    if (k > 0) {
        roost_xml_t *w = roost_carbons_wrap(msg, bare, sent);
        if (w != NULL)
            roost_router_to_records(srv, bare, recs, idx, k, w, 1);
        roost_xml_free(w);
    }
    free(idx);
}

typedef struct {
    roost_server_t *srv;
    char *bare;
    char *except;
    roost_xml_t *msg;
    int sent;
} fan_t;

/* Users with carbon copies waiting for a session read: their next copies
 * take the read path too, behind those (in order), instead of the cache.
 * bare -> count. Process-wide: one loop per process. */
static roost_map_t *held;

static int is_held(const char *bare)
{
    return held != NULL && roost_map_get(held, bare) != NULL;
}

static int hold(const char *bare)
{
    uintptr_t n;

    if (held == NULL && (held = roost_map_new()) == NULL)
        return ROOST_ENOMEM;
    n = (uintptr_t)roost_map_get(held, bare);
    return roost_map_put(held, bare, (void *)(n + 1));
}

static void release(const char *bare)
{
    uintptr_t n = held != NULL ? (uintptr_t)roost_map_get(held, bare) : 0;

    if (n > 1)
        roost_map_put(held, bare, (void *)(n - 1));
    else if (n == 1)
        roost_map_del(held, bare, (void *)n);
}

static void fan_free(fan_t *q)
{
    roost_xml_free(q->msg);
    free(q->bare);
    free(q->except);
    free(q);
}

static void on_fan_sessions(int status, const roost_session_t *recs, size_t n, void *data)
{
    fan_t *q = data;
    roost_server_t *srv = q->srv;
    if (status == 0)
        carbons_to(srv, q->bare, recs, n, q->except, q->msg, q->sent);
    else
        ROOST_WARN(0, "carbons: session read for %s failed: %s", q->bare, roost_strerror(status));
    release(q->bare);
    fan_free(q);
    srv->pending_ops--;
    roost_server_check_idle(srv);
}

/* bare's sessions from the node's cache, else one read of the session
 * hash (which also fills the cache, so a busy sender pays it once). */
static void carbons_fan(roost_server_t *srv, const char *bare, const char *except_full,
                        const roost_xml_t *msg, int sent)
{
    const roost_session_t *recs;
    size_t n;
    fan_t *q;

    if (!roost_router_async_pending() && !is_held(bare) &&
        roost_store_sessions_cached(srv->store, bare, &recs, &n)) {
        carbons_to(srv, bare, recs, n, except_full, msg, sent);
        return;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL || (q->bare = strdup(bare)) == NULL ||
        (except_full != NULL && (q->except = strdup(except_full)) == NULL) ||
        (q->msg = roost_xml_copy(msg)) == NULL) {
        if (q != NULL)
            fan_free(q);
        return;
    }
    q->srv = srv;
    q->sent = sent;
    if (hold(bare) < 0) {
        fan_free(q);
        return;
    }
    if (roost_store_session_list(srv->store, bare, on_fan_sessions, q) != 0) {
        release(bare);
        fan_free(q);
        return;
    }
    srv->pending_ops++;          /* released in on_fan_sessions */
}

void roost_carbons_sent(roost_server_t *srv, const char *sender_full, const char *sender_bare,
                        const roost_xml_t *msg)
{
    carbons_fan(srv, sender_bare, sender_full, msg, 1);
}

void roost_carbons_received_full(roost_server_t *srv, const char *bare, const char *delivered_full,
                                 const roost_xml_t *msg)
{
    carbons_fan(srv, bare, delivered_full, msg, 0);
}

void roost_carbons_received_bare(roost_server_t *srv, const char *bare,
                                 const roost_session_t *recs, size_t nrecs,
                                 const size_t *idx, size_t n, const roost_xml_t *msg)
{
    size_t *cidx = calloc(nrecs ? nrecs : 1, sizeof(*cidx));
    size_t k = 0;
    if (cidx == NULL)
        return;
    for (size_t i = 0; i < nrecs; i++) {
        if (!(recs[i].flags & ROOST_SESS_F_CARBONS))
            continue;
        int got = 0;
        for (size_t j = 0; j < n; j++)
            if (idx[j] == i)
                got = 1;
        if (!got)
            cidx[k++] = i;
    }
    if (k > 0) {
        roost_xml_t *w = roost_carbons_wrap(msg, bare, 0);
        if (w != NULL)
            roost_router_to_records(srv, bare, recs, cidx, k, w, 1);
        roost_xml_free(w);
    }
    free(cidx);
}
