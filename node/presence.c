/* Presence (RFC 6121 §4) between hosted users: broadcast of initial,
 * updated and unavailable presence, probes answered from the session
 * records, and directed presence; subscriptions are in presence_sub.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/presence.h"
#include "node/presence_int.h"
#include "store/blockcheck.h"
#include "node/c2s.h"
#include "node/log.h"
#include "node/offline.h"
#include "node/roster.h"
#include "node/router.h"
#include "node/subscription.h"
#include "node/xmpp_error.h"
#include "store/error.h"
#include "store/roster.h"

/* Users per roost_store_sessions_multi call (its documented bound). */
#define MULTI_MAX 1024

/* ---- helpers ------------------------------------------------------------ */

void roost_presence_reply_error(roost_c2s_t *c, const roost_xml_t *st, const char *from_default,
                                const char *cond, const char *text)
{
    roost_xmpp_error_t err = { NULL, cond, text };
    roost_xml_t *r = roost_xmpp_error_reply(st, from_default, &err);
    if (r != NULL) {
        roost_c2s_send(c, r);
        roost_xml_free(r);
    }
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void roost_presence_log_rc(int rc, const char *what)
{
    if (rc != 0)
        ROOST_WARN(0, "%s failed: %s", what, roost_strerror(rc));
}
/* Sends st to jid: exactly that resource for a full JID, every available
 * resource for a bare one ('to' left as in st). */
static void send_to_jid(roost_server_t *srv, const char *jid, const roost_xml_t *st,
                        const char *except)
{
    int rc;
    if (strchr(jid, '/') != NULL)
        rc = roost_router_to_full(srv, jid, st, NULL, NULL);
    else
        rc = roost_router_fanout(srv, &jid, 1, ROOST_FANOUT_AVAILABLE, except, st, 0, NULL, NULL);
    roost_presence_log_rc(rc, "presence delivery");
}

/* <presence type=type from=from to=to/> */
roost_xml_t *roost_presence_mk_presence(const char *type, const char *from, const char *to)
{
    roost_xml_t *p = roost_xml_new("presence", ROOST_NS_CLIENT);
    if (p == NULL)
        return NULL;
    if ((type != NULL && roost_xml_set_attr(p, "type", type) != 0) ||
        roost_xml_set_attr(p, "from", from) != 0 ||
        (to != NULL && roost_xml_set_attr(p, "to", to) != 0)) {
        roost_xml_free(p);
        return NULL;
    }
    return p;
}


/* ---- broadcast ------------------------------------------------------------ */

/* Presence from one resource to its contacts with from/both, the user's
 * available resources and (unavailable) its directed-presence recipients;
 * for initial presence also the probes' answers, pending requests and
 * offline messages for the new resource. */
typedef struct {
    roost_server_t *srv;
    roost_c2s_t *from;          /* resumed at the end; NULL: fire-and-forget */
    roost_xml_t *st;            /* from = the resource's full JID */
    char *bare;
    char *full;
    int initial;
    int offline;
    int unavailable;
    char **directed;
    size_t n_directed;
    char **probe;               /* to/both contacts and the user itself */
    size_t n_probe;
    size_t probe_off;
} bcast_t;

static void bcast_free(bcast_t *b)
{
    if (b == NULL)
        return;
    roost_xml_free(b->st);
    free(b->bare);
    free(b->full);
    free_strv(b->directed, b->n_directed);
    free_strv(b->probe, b->n_probe);
    roost_server_t *srv = b->srv;
    free(b);
    /* Shutdown waits for broadcasts in flight (see bcast_new). */
    srv->pending_ops--;
    roost_server_check_idle(srv);
}

static void bcast_end(bcast_t *b)
{
    roost_c2s_t *from = b->from;
    bcast_free(b);
    if (from != NULL)
        roost_c2s_done(from);
}

static bcast_t *bcast_new(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *st,
                          const char *bare, const char *full)
{
    bcast_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    /* An unavailable broadcast must not be cut off by a node shutdown:
     * it holds a pending op until its last step was handed off. */
    srv->pending_ops++;
    b->srv = srv;
    b->from = from;
    b->bare = strdup(bare);
    b->full = strdup(full);
    if (b->bare == NULL || b->full == NULL) {
        b->st = NULL;
        bcast_free(b);
        return NULL;
    }
    b->st = st;
    return b;
}

static void on_offline_ready(bcast_t *b)
{
    if (b->offline && b->from != NULL && !roost_c2s_gone(b->from))
        roost_offline_deliver(b->srv, b->from);
    bcast_end(b);
}

static void on_subin(int status, const char *const *contacts, const uint8_t *const *stanzas,
                     const size_t *lens, size_t n, void *data)
{
    bcast_t *b = data;
    (void)contacts;
    if (status != 0)
        ROOST_WARN(0, "pending subscription read for %s failed: %s", b->bare,
                   roost_strerror(status));
    for (size_t i = 0; status == 0 && i < n && !roost_c2s_gone(b->from); i++)
        roost_c2s_send_bytes(b->from, (const char *)stanzas[i], lens[i]);
    on_offline_ready(b);
}

static void probe_next(bcast_t *b);

/* The new resource gets the last presence of every available resource of
 * its to/both contacts and of its own account (a probe answered from the
 * records instead of a probe stanza per contact). */
static void on_probe(int status, const roost_session_t *recs, const size_t *offs,
                     const size_t *counts, size_t n, void *data)
{
    bcast_t *b = data;
    const char *own_res = b->full + strlen(b->bare) + 1;
    if (status != 0)
        ROOST_WARN(0, "probe read for %s failed: %s", b->bare, roost_strerror(status));
    for (size_t i = 0; status == 0 && i < n && !roost_c2s_gone(b->from); i++) {
        const char *who = b->probe[b->probe_off + i];
        int own = strcmp(who, b->bare) == 0;
        for (size_t j = 0; j < counts[i]; j++) {
            const roost_session_t *r = &recs[offs[i] + j];
            if (!(r->flags & ROOST_SESS_F_AVAILABLE) || r->presence == NULL)
                continue;
            if (own && r->resource != NULL && strcmp(r->resource, own_res) == 0)
                continue;
            roost_c2s_send_bytes(b->from, (const char *)r->presence, r->presence_len);
        }
    }
    b->probe_off += n;
    if (status != 0 || n == 0)
        b->probe_off = b->n_probe;
    probe_next(b);
}

static void probe_next(bcast_t *b)
{
    roost_store_t *store = b->srv->store;
    if (roost_c2s_gone(b->from)) {
        bcast_end(b);
        return;
    }
    if (b->probe_off < b->n_probe) {
        size_t k = b->n_probe - b->probe_off;
        if (k > MULTI_MAX)
            k = MULTI_MAX;
        if (roost_store_sessions_multi(store, (const char *const *)b->probe + b->probe_off, k,
                                       on_probe, b) == 0)
            return;
        b->probe_off = b->n_probe;
    }
    /* §3.1.3: requests that waited for this login. */
    if (roost_store_subin_list(store, b->bare, on_subin, b) != 0)
        on_offline_ready(b);
}

/* Directed-presence recipients that are not already told as contacts. */
static void tell_directed(bcast_t *b, roost_map_t *told)
{
    for (size_t i = 0; i < b->n_directed; i++) {
        const char *d = b->directed[i];
        char bare[ROOST_SESS_JID_MAX + 1];
        size_t bl = strcspn(d, "/");
        if (bl > ROOST_SESS_JID_MAX)
            continue;
        memcpy(bare, d, bl);
        bare[bl] = '\0';
        if (told != NULL && roost_map_get(told, bare) != NULL)
            continue;
        roost_xml_t *p = roost_xml_copy(b->st);
        if (p == NULL)
            continue;
        if (roost_xml_set_attr(p, "to", d) == 0)
            send_to_jid(b->srv, d, p, NULL);
        roost_xml_free(p);
    }
}

/* A contact of the broadcasting user: the roster item's JID and state. */
typedef struct {
    char *jid;
    roost_sub_t sub;
} contact_t;

typedef struct {
    bcast_t *b;
    contact_t *c;
    size_t n;
} filter_req_t;

static void filter_req_free(filter_req_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->c[i].jid);
    free(f->c);
    free(f);
}

static void bcast_continue(bcast_t *b, int status, const contact_t *items, size_t n,
                           const unsigned char *blocked)
{
    roost_server_t *srv = b->srv;
    roost_map_t *told = NULL;
    if (status != 0) {
        /* Still tell the own resources and directed recipients. */
        ROOST_WARN(0, "roster read for %s failed: %s", b->bare, roost_strerror(status));
        n = 0;
    }
    const char **to = calloc(n + 1, sizeof(*to));
    if (to == NULL) {
        bcast_end(b);
        return;
    }
    size_t k = 0;
    if (b->n_directed > 0)
        told = roost_map_new();
    for (size_t i = 0; i < n; i++) {
        if (!(items[i].sub & ROOST_SUB_FROM) || items[i].jid == NULL ||
            strcmp(items[i].jid, b->bare) == 0 || (blocked != NULL && blocked[i]))
            continue;
        to[k++] = items[i].jid;
        if (told != NULL)
            roost_map_put(told, items[i].jid, (void *)1);
    }
    to[k++] = b->bare;
    /* Available presence also goes back to the resource that sent it
     * (§4.2.2, §4.4.2); unavailable not, that resource is leaving. */
    roost_presence_log_rc(roost_router_fanout(srv, to, k, ROOST_FANOUT_AVAILABLE,
                                              b->unavailable ? b->full : NULL, b->st, 1,
                                              NULL, NULL),
                          "presence broadcast");
    free(to);
    if (b->unavailable)
        tell_directed(b, told);
    roost_map_free(told);

    if (!b->initial || b->from == NULL) {
        if (b->from != NULL) {
            on_offline_ready(b);
            return;
        }
        bcast_end(b);
        return;
    }
    /* Initial presence: whose presence the new resource wants now. */
    b->probe = calloc(n + 1, sizeof(char *));
    if (b->probe == NULL) {
        on_offline_ready(b);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(items[i].sub & ROOST_SUB_TO) || items[i].jid == NULL ||
            strcmp(items[i].jid, b->bare) == 0 || (blocked != NULL && blocked[i]))
            continue;
        if ((b->probe[b->n_probe] = strdup(items[i].jid)) != NULL)
            b->n_probe++;
    }
    if ((b->probe[b->n_probe] = strdup(b->bare)) != NULL)
        b->n_probe++;
    probe_next(b);
}

/* XEP-0191: presence neither goes to contacts the user blocked nor to
 * contacts who blocked the user, and their presence does not come back
 * (probes skip them). On a store error the filter is skipped. */
static void on_bcast_filtered(int status, const unsigned char *blocked, size_t n, void *data)
{
    filter_req_t *f = data;
    if (status != 0)
        ROOST_WARN(0, "block filter for %s failed: %s", f->b->bare, roost_strerror(status));
    bcast_continue(f->b, 0, f->c, f->n, status == 0 && n == f->n ? blocked : NULL);
    filter_req_free(f);
}

static void on_bcast_roster(int status, const roost_roster_item_t *items, size_t n,
                            uint64_t ver, void *data)
{
    bcast_t *b = data;
    roost_jid_t me = { 0 };
    (void)ver;
    if (status != 0) {
        bcast_continue(b, status, NULL, 0, NULL);
        return;
    }
    filter_req_t *f = calloc(1, sizeof(*f));
    const char **jids = calloc(n ? n : 1, sizeof(*jids));
    if (f == NULL || jids == NULL || (f->c = calloc(n ? n : 1, sizeof(*f->c))) == NULL) {
        free(f);
        free(jids);
        bcast_continue(b, ROOST_ENOMEM, NULL, 0, NULL);
        return;
    }
    f->b = b;
    for (size_t i = 0; i < n; i++) {
        if (items[i].jid == NULL || items[i].sub == ROOST_SUB_NONE ||
            strcmp(items[i].jid, b->bare) == 0)
            continue;
        if ((f->c[f->n].jid = strdup(items[i].jid)) == NULL)
            continue;
        f->c[f->n].sub = items[i].sub;
        jids[f->n] = f->c[f->n].jid;
        f->n++;
    }
    int rc = ROOST_EINVAL;
    if (f->n > 0 && roost_jid_parse(&me, b->full, strlen(b->full)) == 0)
        rc = roost_store_block_filter(b->srv->store, &me, jids, f->n, on_bcast_filtered, f);
    roost_jid_clear(&me);
    free(jids);
    if (rc != 0) {
        bcast_continue(b, 0, f->c, f->n, NULL);
        filter_req_free(f);
    }
}

static int bcast_start(bcast_t *b)
{
    return roost_store_roster_get(b->srv->store, b->bare, on_bcast_roster, b);
}

static void on_own_saved(int status, void *data)
{
    bcast_t *b = data;
    if (status != 0) {
        ROOST_WARN(roost_c2s_conn_id(b->from), "presence update failed: %s",
                   roost_strerror(status));
        /* Available presence that is not stored is not announced either;
         * unavailable is announced anyway, the user is leaving. */
        if (!b->unavailable) {
            bcast_end(b);
            return;
        }
    }
    /* A session that closed meanwhile had its unavailable sent by
     * roost_presence_session_ended; an available broadcast now would
     * contradict it. */
    if (!b->unavailable && roost_c2s_gone(b->from)) {
        bcast_end(b);
        return;
    }
    if (bcast_start(b) != 0)
        bcast_end(b);
}

/* Parses <priority/>: 0 when fine (*prio set), else -1. */
static int parse_priority(const roost_xml_t *st, int32_t *prio)
{
    roost_xml_t *p = roost_xml_child(st, "priority", ROOST_NS_CLIENT);
    *prio = 0;
    if (p == NULL)
        return 0;
    char *t = roost_xml_text(p);
    char *end = NULL;
    if (t == NULL)
        return -1;
    errno = 0;
    long v = strtol(t, &end, 10);
    int bad = end == t || *end != '\0' || errno != 0 || v < -128 || v > 127;
    free(t);
    if (bad)
        return -1;
    *prio = (int32_t)v;
    return 0;
}

static int own_presence(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *st, int available)
{
    const roost_jid_t *me = roost_c2s_jid(from);
    roost_session_t *rec = roost_c2s_record(from);
    int was = (rec->flags & ROOST_SESS_F_AVAILABLE) != 0;
    int32_t prio = 0;
    int old_prio = rec->priority;

    if (available && parse_priority(st, &prio) != 0) {
        roost_presence_reply_error(from, st, NULL, "bad-request",
                                   "priority must be -128..127");
        roost_xml_free(st);
        return 0;
    }
    if (!available && !was && rec->n_directed == 0) {
        /* Nobody saw this resource: nothing to retract. */
        roost_xml_free(st);
        return 0;
    }
    bcast_t *b = bcast_new(srv, from, st, me->bare, me->full);
    if (b == NULL) {
        roost_xml_free(st);
        return 0;
    }
    if (available) {
        roost_buf_t buf = ROOST_BUF_INIT;
        if (roost_xml_serialize(st, ROOST_NS_CLIENT, &buf) != 0) {
            roost_buf_free(&buf);
            bcast_free(b);
            return 0;
        }
        size_t len;
        free(rec->presence);
        rec->presence = (uint8_t *)roost_buf_steal(&buf, &len);
        rec->presence_len = len;
        rec->priority = prio;
        rec->flags |= ROOST_SESS_F_AVAILABLE;
        b->initial = !was;
        /* XEP-0160: stored messages wait for a resource that can take
         * them: initial presence, or a priority that became non-negative. */
        b->offline = prio >= 0 && (!was || old_prio < 0);
    } else {
        free(rec->presence);
        rec->presence = NULL;
        rec->presence_len = 0;
        rec->flags &= ~ROOST_SESS_F_AVAILABLE;
        /* §4.6.3: the directed recipients get the unavailable too. */
        b->directed = rec->directed;
        b->n_directed = rec->n_directed;
        rec->directed = NULL;
        rec->n_directed = 0;
        b->unavailable = 1;
    }
    int rc = roost_store_session_update(srv->store, me->bare, rec, on_own_saved, b);
    if (rc != 0) {
        ROOST_WARN(roost_c2s_conn_id(from), "presence update failed: %s", roost_strerror(rc));
        bcast_free(b);
        return 0;
    }
    return ROOST_EAGAIN;
}

void roost_presence_session_ended(roost_server_t *srv, const char *bare, const char *full,
                                  const roost_session_t *rec)
{
    if (rec == NULL || (!(rec->flags & ROOST_SESS_F_AVAILABLE) && rec->n_directed == 0))
        return;
    roost_xml_t *st = roost_presence_mk_presence("unavailable", full, NULL);
    if (st == NULL)
        return;
    bcast_t *b = bcast_new(srv, NULL, st, bare, full);
    if (b == NULL) {
        roost_xml_free(st);
        return;
    }
    b->unavailable = 1;
    if (rec->n_directed > 0) {
        b->directed = calloc(rec->n_directed, sizeof(char *));
        for (size_t i = 0; b->directed != NULL && i < rec->n_directed; i++)
            if ((b->directed[b->n_directed] = strdup(rec->directed[i])) != NULL)
                b->n_directed++;
    }
    if (bcast_start(b) != 0)
        bcast_free(b);
}

/* ---- directed presence ---------------------------------------------------- */

typedef struct {
    roost_server_t *srv;
    roost_c2s_t *from;
    char *bare;
    char *target;
} directed_t;

static void directed_end(directed_t *d)
{
    roost_c2s_t *from = d->from;
    free(d->bare);
    free(d->target);
    free(d);
    roost_c2s_done(from);
}

static void on_directed_saved(int status, void *data)
{
    directed_t *d = data;
    if (status != 0)
        ROOST_WARN(roost_c2s_conn_id(d->from), "directed presence record failed: %s",
                   roost_strerror(status));
    directed_end(d);
}

static ssize_t directed_find(const roost_session_t *rec, const char *jid)
{
    for (size_t i = 0; i < rec->n_directed; i++)
        if (strcmp(rec->directed[i], jid) == 0)
            return (ssize_t)i;
    return -1;
}

static void on_directed_item(int status, const roost_roster_item_t *item, uint64_t ver,
                             void *data)
{
    directed_t *d = data;
    (void)ver;
    if (status != 0 || roost_c2s_gone(d->from))
        goto end;
    /* Contacts with from/both get the broadcast anyway (§4.6.2). */
    if (item != NULL && (item->sub & ROOST_SUB_FROM))
        goto end;
    roost_session_t *rec = roost_c2s_record(d->from);
    if (!(rec->flags & ROOST_SESS_F_AVAILABLE) || directed_find(rec, d->target) >= 0 ||
        rec->n_directed >= ROOST_SESS_DIRECTED_MAX)
        goto end;
    char **v = realloc(rec->directed, (rec->n_directed + 1) * sizeof(char *));
    if (v == NULL)
        goto end;
    rec->directed = v;
    v[rec->n_directed] = d->target;
    d->target = NULL;
    rec->n_directed++;
    if (roost_store_session_update(d->srv->store, d->bare, rec, on_directed_saved, d) == 0)
        return;
end:
    directed_end(d);
}

static int directed_presence(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *st,
                             const roost_jid_t *to, int available)
{
    const roost_jid_t *me = roost_c2s_jid(from);
    roost_session_t *rec = roost_c2s_record(from);
    if (to->local == NULL || !roost_config_hosts(srv->cfg, to->domain)) {
        /* Neither the server itself nor other servers take presence. */
        roost_xml_free(st);
        return 0;
    }
    int own = strcmp(to->bare, me->bare) == 0;
    send_to_jid(srv, to->full, st, own ? me->full : NULL);
    roost_xml_free(st);
    if (own)
        return 0;
    ssize_t at = directed_find(rec, to->full);
    if (!available) {
        if (at < 0)
            return 0;
        free(rec->directed[at]);
        rec->directed[at] = rec->directed[rec->n_directed - 1];
        rec->n_directed--;
    } else if (!(rec->flags & ROOST_SESS_F_AVAILABLE) || at >= 0 ||
               rec->n_directed >= ROOST_SESS_DIRECTED_MAX) {
        /* Only an available resource owes a later unavailable; the set
         * is bounded like the stored record. */
        return 0;
    }
    directed_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return 0;
    d->srv = srv;
    d->from = from;
    d->bare = strdup(me->bare);
    d->target = strdup(to->full);
    int rc = ROOST_ENOMEM;
    if (d->bare != NULL && d->target != NULL) {
        if (available)
            rc = roost_store_roster_item_get(srv->store, me->bare, to->bare, on_directed_item, d);
        else
            rc = roost_store_session_update(srv->store, me->bare, rec, on_directed_saved, d);
    }
    if (rc != 0) {
        free(d->bare);
        free(d->target);
        free(d);
        return 0;
    }
    return ROOST_EAGAIN;
}

/* ---- probes from a client --------------------------------------------------- */

typedef struct {
    roost_server_t *srv;
    roost_c2s_t *from;
    char *bare;             /* the prober */
    char *own_full;
    char *target;           /* bare JID probed */
    char *resource;         /* only this resource, or NULL */
} probe_t;

static void probe_end(probe_t *p)
{
    roost_c2s_t *from = p->from;
    free(p->bare);
    free(p->own_full);
    free(p->target);
    free(p->resource);
    free(p);
    roost_c2s_done(from);
}

static void on_probe_sessions(int status, const roost_session_t *recs, size_t n, void *data)
{
    probe_t *p = data;
    for (size_t i = 0; status == 0 && i < n && !roost_c2s_gone(p->from); i++) {
        const roost_session_t *r = &recs[i];
        if (!(r->flags & ROOST_SESS_F_AVAILABLE) || r->presence == NULL || r->resource == NULL)
            continue;
        if (p->resource != NULL && strcmp(r->resource, p->resource) != 0)
            continue;
        roost_c2s_send_bytes(p->from, (const char *)r->presence, r->presence_len);
    }
    probe_end(p);
}

static void on_probe_item(int status, const roost_roster_item_t *item, uint64_t ver, void *data)
{
    probe_t *p = data;
    (void)ver;
    /* Only a subscriber may see the presence (§4.3.2). */
    if (status != 0 || item == NULL || !(item->sub & ROOST_SUB_TO) || roost_c2s_gone(p->from) ||
        roost_store_session_list(p->srv->store, p->target, on_probe_sessions, p) != 0)
        probe_end(p);
}

static int probe_from_client(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *st,
                             const roost_jid_t *to)
{
    const roost_jid_t *me = roost_c2s_jid(from);
    int hosted = to->local != NULL && roost_config_hosts(srv->cfg, to->domain);
    roost_xml_free(st);
    if (!hosted)
        return 0;
    probe_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return 0;
    p->srv = srv;
    p->from = from;
    p->bare = strdup(me->bare);
    p->target = strdup(to->bare);
    p->resource = to->resource != NULL ? strdup(to->resource) : NULL;
    int rc = ROOST_ENOMEM;
    if (p->bare != NULL && p->target != NULL && (to->resource == NULL || p->resource != NULL)) {
        if (strcmp(to->bare, me->bare) == 0)
            rc = roost_store_session_list(srv->store, p->target, on_probe_sessions, p);
        else
            rc = roost_store_roster_item_get(srv->store, me->bare, to->bare, on_probe_item, p);
    }
    if (rc != 0) {
        free(p->bare);
        free(p->target);
        free(p->resource);
        free(p);
        return 0;
    }
    return ROOST_EAGAIN;
}

/* ---- entry ---------------------------------------------------------------- */

int roost_presence_from_client(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *st,
                               const roost_jid_t *to)
{
    const char *type = roost_xml_attr(st, "type");
    roost_subev_t ev;
    if (roost_c2s_jid(from) == NULL) {
        roost_xml_free(st);
        return 0;
    }
    if (type != NULL && strcmp(type, "error") == 0) {
        /* Delivered, never answered. */
        if (to != NULL && to->local != NULL && roost_config_hosts(srv->cfg, to->domain))
            send_to_jid(srv, to->full, st, NULL);
        roost_xml_free(st);
        return 0;
    }
    int available = type == NULL;
    int unavailable = type != NULL && strcmp(type, "unavailable") == 0;
    if (available || unavailable) {
        if (to == NULL)
            return own_presence(srv, from, st, available);
        return directed_presence(srv, from, st, to, available);
    }
    if (roost_subev_parse(type, &ev) == 0) {
        if (to == NULL) {
            /* Subscription management needs a contact. */
            roost_xml_free(st);
            return 0;
        }
        return roost_presence_subscription_from_client(srv, from, st, to, ev);
    }
    if (strcmp(type, "probe") == 0) {
        if (to == NULL) {
            roost_xml_free(st);
            return 0;
        }
        return probe_from_client(srv, from, st, to);
    }
    roost_presence_reply_error(from, st, NULL, "bad-request", "unknown presence type");
    roost_xml_free(st);
    return 0;
}
