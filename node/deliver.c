/* Delivery of serialized stanzas to resolved targets: local sessions
 * directly, other nodes as one RouteEnvelope per node over pub/sub, and the
 * re-route / fall-back when a PUBLISH reached no node (DESIGN §5). */
#include <stdlib.h>
#include <string.h>

#include "node/deliver.h"
#include "node/c2s.h"
#include "node/log.h"
#include "node/offline.h"
#include "node/route.h"
#include "node/router.h"
#include "node/stats.h"
#include "node/xmlstream.h"
#include "node/xmpp_error.h"
#include "store/sm.h"
#include "store/error.h"

static void on_published(int status, long long receivers, void *data)
{
    if (status != 0) {
        ROOST_WARN(0, "publish failed: %s", roost_strerror(status));
    } else if (receivers == 0) {
        roost_stats_unrouted();
        ROOST_WARN(0, "publish reached no node (target node gone)");
    }
}

typedef roost_deliver_retry_t retry_t;
static void on_published_retry(int status, long long receivers, void *data);
static retry_t *retry_new(roost_server_t *srv, const char *node, const roost_deliver_target_t *t,
                          size_t n, const char *bytes, size_t len, int stamp_to,
                          const roost_xml_t *orig, unsigned hops);
static void retry_free(retry_t *r);

/* Publishes env to node_id. retry (owned, may be NULL) is what to do when
 * no node listens on that channel. */
int roost_deliver_publish_envelope(roost_server_t *srv, const char *node_id,
                                   Roost__RouteEnvelope *env, retry_t *retry)
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
    if (rc == 0)
        roost_stats_published();
    if (rc != 0)
        retry_free(retry);
    if (rc != 0)
        ROOST_WARN(0, "publish to node=%s failed: %s", node_id, roost_strerror(rc));
    return rc;
}

static roost_buf_t stamp_buf;

/* bytes with to='jid' inserted into the top-level start tag (the bytes
 * were serialized without a 'to'), in stamp_buf; 0 or ROOST_ENOMEM. */
static int stamp(const char *bytes, size_t len, const char *jid)
{
    size_t i = 1;
    while (i < len && bytes[i] != ' ' && bytes[i] != '>' && bytes[i] != '/')
        i++;
    roost_buf_reset(&stamp_buf);
    if (roost_buf_append(&stamp_buf, bytes, i) == 0 &&
        roost_buf_puts(&stamp_buf, " to='") == 0 &&
        roost_buf_escape(&stamp_buf, jid, strlen(jid)) == 0 &&
        roost_buf_puts(&stamp_buf, "'") == 0 &&
        roost_buf_append(&stamp_buf, bytes + i, len - i) == 0)
        return 0;
    return ROOST_ENOMEM;
}

/* Writes bytes to c; with jid, the copy gets to='jid' (see stamp). */
void roost_deliver_send_to_c2s(roost_c2s_t *c, const char *bytes, size_t len, const char *jid)
{
    if (jid == NULL)
        roost_c2s_send_bytes(c, bytes, len);
    else if (stamp(bytes, len, jid) == 0)
        roost_c2s_send_bytes(c, stamp_buf.data, stamp_buf.len);
}

uint8_t *roost_deliver_pack_one(roost_server_t *srv, const char *full, uint64_t conn_id,
                                const char *bytes, size_t len, unsigned hops, size_t *out_len)
{
    Roost__RouteEnvelope env = ROOST__ROUTE_ENVELOPE__INIT;
    Roost__RouteEnvelope__Target tg = ROOST__ROUTE_ENVELOPE__TARGET__INIT;
    Roost__RouteEnvelope__Target *tp = &tg;
    tg.jid = (char *)full;
    tg.conn_id = conn_id;
    env.version = 1;
    env.kind = ROOST__ROUTE_ENVELOPE__KIND__STANZA;
    env.targets = &tp;
    env.n_targets = 1;
    env.stanza.data = (uint8_t *)bytes;
    env.stanza.len = len;
    env.origin_node = srv->node_id;
    env.hops = hops;
    *out_len = roost__route_envelope__get_packed_size(&env);
    uint8_t *buf = malloc(*out_len ? *out_len : 1);
    if (buf != NULL)
        roost__route_envelope__pack(&env, buf);
    return buf;
}

/* ---- targets with a queue (stream management, drain grace) -------------- */

static void on_sm_pushed(int status, uint64_t seq, long long receivers, void *data)
{
    retry_t *r = data;
    if (status == ROOST_ENOTFOUND || status == ROOST_ELIMIT) {
        /* No queue any more (the session ended or was bound again), or
         * it is full: re-read the session, as for a PUBLISH nobody got. */
        if (status == ROOST_ELIMIT)
            ROOST_WARN(0, "sm queue full; treating the stanza as undeliverable");
        if (r != NULL)
            on_published_retry(0, 0, r);
        return;
    }
    if (status != 0) {
        /* Redis did not answer: it may not be queued. Undeliverable as far
         * as we know (a duplicate is better than a loss). */
        ROOST_WARN(0, "sm push failed: %s", roost_strerror(status));
        if (r != NULL)
            on_published_retry(0, 0, r);
        return;
    }
    /* Queued: delivered by the owner node or on resumption. */
    if (r != NULL)
        on_published_retry(0, 1, r);
}

/* Numbers and queues bytes for t in its queue, publishing to its owner in
 * the same script (store/sm.h). */
static void deliver_queued(roost_server_t *srv, const roost_deliver_target_t *t,
                           const char *bytes, size_t len, int stamp_to, const roost_xml_t *orig,
                           unsigned hops)
{
    const char *slash = strchr(t->full, '/');
    char *bare = slash != NULL ? strndup(t->full, (size_t)(slash - t->full)) : NULL;
    if (bare == NULL)
        return;
    if (stamp_to) {
        if (stamp(bytes, len, t->full) != 0) {
            free(bare);
            return;
        }
        bytes = stamp_buf.data;
        len = stamp_buf.len;
    }
    size_t el;
    uint8_t *eb = roost_deliver_pack_one(srv, t->full, t->conn_id, bytes, len, hops, &el);
    retry_t *rt = NULL;
    if (eb == NULL) {
        free(bare);
        return;
    }
    if (orig != NULL && strcmp(orig->name, "presence") != 0)
        rt = retry_new(srv, t->node_id, t, 1, bytes, len, 0, orig, hops);
    if (roost_store_sm_push(srv->store, bare, slash + 1, (const uint8_t *)bytes, len, eb, el,
                            srv->cfg->sm_max_queue, on_sm_pushed, rt) != 0) {
        ROOST_WARN(0, "sm push to %s failed", t->full);
        if (rt != NULL)
            on_published_retry(0, 0, rt);
    }
    free(eb);
    free(bare);
}

static void deliver_local(roost_server_t *srv, const roost_deliver_target_t *t, const char *bytes,
                          size_t len, int stamp_to)
{
    roost_c2s_t *c = roost_map_get(srv->sessions, t->full);
    if (c != NULL && !roost_c2s_gone(c) && (t->conn_id == 0 || roost_c2s_conn_id(c) == t->conn_id))
        roost_deliver_send_to_c2s(c, bytes, len, stamp_to ? t->full : NULL);
}

/* Hands bytes to every target: those with a queue (stream management,
 * drain grace) through it, local ones directly, the others in one envelope
 * per destination node (one PUBLISH carries every target there). */
void roost_deliver_targets_ex(roost_server_t *srv, roost_deliver_target_t *t, size_t n,
                              const char *bytes, size_t len, int stamp_to, const char *from,
                              const char *to, const roost_xml_t *orig, unsigned hops)
{
    uint64_t epoch = roost_store_node_epoch(srv->store);
    char *done = calloc(n ? n : 1, 1);
    Roost__RouteEnvelope__Target *tg = calloc(n ? n : 1, sizeof(*tg));
    Roost__RouteEnvelope__Target **tp = calloc(n ? n : 1, sizeof(*tp));
    if (done == NULL || tg == NULL || tp == NULL)
        goto out;
    for (size_t k = 0; k < n; k++) {
        if (t[k].flags & ROOST_SESS_F_SM) {
            done[k] = 1;
            deliver_queued(srv, &t[k], bytes, len, stamp_to, orig, hops);
        } else if (strcmp(t[k].node_id, srv->node_id) == 0 && t[k].epoch == epoch) {
            done[k] = 1;
            deliver_local(srv, &t[k], bytes, len, stamp_to);
            roost_stats_routed(0, 1);
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
        roost_stats_routed(1, nt);
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
            roost_deliver_target_t *sub = calloc(nt, sizeof(*sub));
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
        roost_deliver_publish_envelope(srv, node, &env, rt);
    }
out:
    free(tp);
    free(tg);
    free(done);
}

void roost_deliver_targets(roost_server_t *srv, roost_deliver_target_t *t, size_t n,
                           const char *bytes, size_t len, int stamp_to, const char *from,
                           const char *to)
{
    roost_deliver_targets_ex(srv, t, n, bytes, len, stamp_to, from, to, NULL, 1);
}


/* ---- undeliverable: PUBLISH reached no node (DESIGN §5) -------------------- */

#define MAX_ROUTE_HOPS 2          /* the first try plus one re-route */

struct roost_deliver_retry_s {
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

/* The stanza as a tree, parsed from its bytes the first time it is needed
 * (NULL if that fails). */
static const roost_xml_t *orig_of(retry_t *r)
{
    if (r->orig == NULL)
        r->orig = roost_xmlstream_parse_one((const uint8_t *)r->bytes, r->len);
    return r->orig;
}

static retry_t *retry_new(roost_server_t *srv, const char *node, const roost_deliver_target_t *t,
                          size_t n, const char *bytes, size_t len, int stamp_to,
                          const roost_xml_t *orig, unsigned hops)
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
    /* No copy of the tree: the bytes are the stanza (with its 'to'; retries
     * are made for first-hop messages and iqs only), parsed back on the
     * rare path that needs it (orig_of). */
    (void)orig;
    if (r->node == NULL || r->bytes == NULL || r->fulls == NULL) {
        retry_free(r);
        return NULL;
    }
    memcpy(r->bytes, bytes, len);
    for (; r->n < n; r->n++)
        if ((r->fulls[r->n] = strdup(t[r->n].full)) == NULL)
            break;
    return r;
}

void roost_deliver_fall_back(roost_server_t *srv, const char *bare, const roost_xml_t *st)
{
    const char *type = roost_xml_attr(st, "type");
    if (strcmp(st->name, "message") == 0) {
        roost_msg_type_t mt = roost_route_msg_type(type);
        if (mt == ROOST_MSG_NORMAL || mt == ROOST_MSG_CHAT)
            roost_offline_store(srv, bare, st);
    } else if (strcmp(st->name, "iq") == 0 && type != NULL &&
               (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)) {
        const char *from = roost_xml_attr(st, "from");
        roost_xmpp_error_t err = { NULL, "service-unavailable", NULL };
        roost_xml_t *e = roost_xmpp_error_reply(st, NULL, &err);
        if (e != NULL && from != NULL && strchr(from, '/') != NULL)
            roost_router_to_full(srv, from, e, NULL, NULL);
        roost_xml_free(e);
    }
}

/* Once per stanza, however many of its targets failed. */
static void fall_back(retry_t *r, const char *bare)
{
    if (r->fell_back)
        return;
    r->fell_back = 1;
    if (orig_of(r) != NULL)
        roost_deliver_fall_back(r->srv, bare, r->orig);
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
    if (status == 0 && rec != NULL && r->hops < MAX_ROUTE_HOPS &&
        (strcmp(rec->node_id, r->node) != 0 || (rec->flags & ROOST_SESS_F_SM))) {
        /* The session moved (rebound elsewhere): one more try there. */
        roost_deliver_target_t t = { q->full, rec->node_id, rec->node_epoch, rec->conn_id,
                                     rec->flags };
        roost_deliver_targets_ex(r->srv, &t, 1, r->bytes, r->len, r->stamp_to, NULL, NULL,
                           orig_of(r), r->hops + 1);
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
    if (status == 0 && receivers > 0) {
        retry_free(r);
        return;
    }
    /* A failed PUBLISH may or may not have reached the node: handled like
     * one that reached nobody (a duplicate is better than a loss). */
    if (status != 0)
        ROOST_WARN(0, "publish to node=%s failed: %s", r->node, roost_strerror(status));
    roost_stats_unrouted();
    ROOST_WARN(0, "node=%s did not receive a %s; re-reading %zu session(s)", r->node,
               r->len > 1 && r->bytes[1] == 'i' ? "iq" : "message", r->n);
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

void roost_deliver_targets_free(roost_deliver_target_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].full);
    free(t);
}

/* Appends the targets for recs[idx[0..n)] of bare, skipping except. */
size_t roost_deliver_add_targets(roost_deliver_target_t *t, size_t at, const char *bare,
                                 const roost_session_t *recs, const size_t *idx, size_t n,
                                 const char *except)
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
        t[at].flags = r->flags;
        at++;
    }
    return at;
}

int roost_deliver_serialize(const roost_xml_t *st, roost_buf_t *b)
{
    return roost_xml_serialize(st, ROOST_NS_CLIENT, b);
}
