/* The presence subscription handshake (RFC 6121 §3) between hosted users:
 * each step applies the pure state machine of node/subscription.c to one
 * roster (both live in the same Redis), with compare-and-set retries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/presence_int.h"
#include "node/c2s.h"
#include "node/limit.h"
#include "node/log.h"
#include "node/roster.h"
#include "node/router.h"
#include "node/subscription.h"
#include "node/xmlstream.h"
#include "store/error.h"
#include "store/roster.h"

/* Compare-and-set attempts per roster item before a step gives up. */
#define CAS_TRIES 5

static void on_store_done(int status, void *data)
{
    const char *what = data;
    if (status == ROOST_ELIMIT)
        roost_limit_hit(0, "pending_subscriptions", what);
    else if (status != 0)
        ROOST_WARN(0, "%s failed: %s", what, roost_strerror(status));
}


/* "bare/resource" of a record into a malloc'd string. */
static char *full_of(const char *bare, const roost_session_t *r)
{
    size_t n = strlen(bare) + strlen(r->resource) + 2;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s/%s", bare, r->resource);
    return s;
}

/* ---- sending a user's presence to one contact ----------------------------- */

/* After a subscription change: each available resource of owner sends its
 * current presence (or unavailable) to peer. Fire-and-forget. */
typedef struct {
    roost_server_t *srv;
    char *owner;
    char *peer;
    int unavailable;
} tell_t;

static void tell_free(tell_t *t)
{
    free(t->owner);
    free(t->peer);
    free(t);
}

static void on_tell_sessions(int status, const roost_session_t *recs, size_t n, void *data)
{
    tell_t *t = data;
    const char *peer = t->peer;
    if (status != 0) {
        ROOST_WARN(0, "session list for %s failed: %s", t->owner, roost_strerror(status));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const roost_session_t *r = &recs[i];
        if (!(r->flags & ROOST_SESS_F_AVAILABLE))
            continue;
        roost_xml_t *p = NULL;
        if (t->unavailable) {
            char *full = full_of(t->owner, r);
            if (full != NULL)
                p = roost_presence_mk_presence("unavailable", full, peer);
            free(full);
        } else if (r->presence != NULL) {
            p = roost_xmlstream_parse_one(r->presence, r->presence_len);
        }
        if (p == NULL)
            continue;
        roost_presence_log_rc(roost_router_fanout(t->srv, &peer, 1, ROOST_FANOUT_AVAILABLE,
                                                  NULL, p, 1, NULL, NULL),
                              "presence to new subscriber");
        roost_xml_free(p);
    }
out:
    tell_free(t);
}

static void tell_contact(roost_server_t *srv, const char *owner, const char *peer, int unavailable)
{
    tell_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return;
    t->srv = srv;
    t->unavailable = unavailable;
    t->owner = strdup(owner);
    t->peer = strdup(peer);
    if (t->owner == NULL || t->peer == NULL ||
        roost_store_session_list(srv->store, owner, on_tell_sessions, t) != 0)
        tell_free(t);
}

/* ---- subscription handshake --------------------------------------------- */

/* One application of the state machine to one roster: the owner's item
 * for the peer. Outbound steps run on the sender's roster, inbound steps on
 * the recipient's. */
typedef struct {
    int inbound;
    int owner_is_user;      /* owner = job->user (else job->contact) */
    int verify;             /* inbound subscribe: check the account exists first */
    roost_subev_t ev;
    roost_xml_t *st;        /* the stanza, from = sender bare, to = recipient bare */
} sub_step_t;

#define MAX_STEPS 4

/* A chain of steps for one subscription stanza: the sender's outbound
 * step, the recipient's inbound step, and the inbound step of an automatic
 * answer. Runs one step at a time. */
typedef struct {
    roost_server_t *srv;
    roost_c2s_t *from;          /* resumed at the end; NULL: fire-and-forget */
    roost_xml_t *orig;          /* the client's stanza (error replies), or NULL */
    char *user;                 /* the client's account */
    char *contact;              /* the other party */
    sub_step_t steps[MAX_STEPS];
    size_t head, tail;
    /* current step */
    roost_roster_item_t cur;
    int have_cur;
    int pending_in;
    roost_roster_item_t next;
    roost_subdecision_t d;
    int tries;
    /* Presence owed after a change, sent when the chain ends so that it
     * follows the subscription stanzas (§3.1.5, §3.2.1). */
    struct {
        int owner_is_user;
        int unavailable;
    } tells[MAX_STEPS];
    size_t n_tells;
} sub_job_t;

static void step_begin(sub_job_t *job);

static const char *owner_of(const sub_job_t *job, const sub_step_t *s)
{
    return s->owner_is_user ? job->user : job->contact;
}

static const char *peer_of(const sub_job_t *job, const sub_step_t *s)
{
    return s->owner_is_user ? job->contact : job->user;
}

static void job_free(sub_job_t *job)
{
    for (size_t i = job->head; i < job->tail; i++)
        roost_xml_free(job->steps[i].st);
    roost_roster_item_clear(&job->cur);
    roost_roster_item_clear(&job->next);
    roost_xml_free(job->orig);
    free(job->user);
    free(job->contact);
    free(job);
}

static void job_end(sub_job_t *job)
{
    roost_c2s_t *from = job->from;
    for (size_t i = 0; i < job->n_tells; i++) {
        int u = job->tells[i].owner_is_user;
        tell_contact(job->srv, u ? job->user : job->contact, u ? job->contact : job->user,
                     job->tells[i].unavailable);
    }
    job_free(job);
    if (from != NULL)
        roost_c2s_done(from);
}

static sub_job_t *job_new(roost_server_t *srv, roost_c2s_t *from, const char *user,
                          const char *contact)
{
    sub_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return NULL;
    job->srv = srv;
    job->from = from;
    job->user = strdup(user);
    job->contact = strdup(contact);
    if (job->user == NULL || job->contact == NULL) {
        job_free(job);
        return NULL;
    }
    return job;
}

/* Queues a step; takes ownership of st (freed on failure). */
static int job_push(sub_job_t *job, int inbound, int owner_is_user, roost_subev_t ev,
                    roost_xml_t *st)
{
    if (st == NULL)
        return ROOST_ENOMEM;
    if (job->tail == MAX_STEPS) {
        roost_xml_free(st);
        return ROOST_ELIMIT;
    }
    sub_step_t *s = &job->steps[job->tail++];
    memset(s, 0, sizeof(*s));
    s->inbound = inbound;
    s->owner_is_user = owner_is_user;
    s->ev = ev;
    s->st = st;
    s->verify = inbound && ev == ROOST_SUBEV_SUBSCRIBE;
    return 0;
}

static void job_tell(sub_job_t *job, int owner_is_user, int unavailable)
{
    if (job->n_tells == MAX_STEPS)
        return;
    job->tells[job->n_tells].owner_is_user = owner_is_user;
    job->tells[job->n_tells].unavailable = unavailable;
    job->n_tells++;
}

/* Ends the current step and starts the next one (or ends the job). */
static void step_next(sub_job_t *job)
{
    roost_xml_free(job->steps[job->head].st);
    job->steps[job->head].st = NULL;
    job->head++;
    roost_roster_item_clear(&job->cur);
    roost_roster_item_clear(&job->next);
    job->have_cur = 0;
    job->pending_in = 0;
    job->tries = 0;
    step_begin(job);
}

/* The decision is final (and stored when the item changed): act on it. */
static void step_effects(sub_job_t *job)
{
    roost_server_t *srv = job->srv;
    sub_step_t *s = &job->steps[job->head];
    const char *owner = owner_of(job, s);
    const char *peer = peer_of(job, s);
    const roost_subdecision_t *d = &job->d;

    if (job->pending_in && !d->next.pending_in)
        roost_presence_log_rc(roost_store_subin_del(srv->store, owner, peer, on_store_done,
                                                    "clearing a pending subscription request"),
                              "clearing a pending subscription request");
    if (!s->inbound) {
        if (d->forward) {
            /* The recipient's inbound processing: same stanza. */
            roost_xml_t *st = s->st;
            s->st = NULL;
            roost_presence_log_rc(job_push(job, 1, !s->owner_is_user, s->ev, st),
                                  "subscription step");
        }
    } else {
        if (s->ev == ROOST_SUBEV_SUBSCRIBE && d->deliver) {
            /* Kept until answered and redelivered at every login (§3.1.3);
             * also delivered now to the available resources. */
            roost_buf_t b = ROOST_BUF_INIT;
            if (roost_xml_serialize(s->st, ROOST_NS_CLIENT, &b) == 0)
                roost_presence_log_rc(
                    roost_store_subin_put(srv->store, owner, peer, (const uint8_t *)b.data, b.len,
                                          srv->cfg->max_pending_subscriptions, on_store_done,
                                          "storing a subscription request"),
                    "storing a subscription request");
            roost_buf_free(&b);
        }
        if (d->deliver)
            roost_presence_log_rc(roost_router_fanout(srv, &owner, 1, ROOST_FANOUT_AVAILABLE,
                                                      NULL, s->st, 0, NULL, NULL),
                                  "subscription delivery");
        if (d->auto_reply) {
            /* Answered on the owner's behalf: the requester's roster sees
             * an inbound 'subscribed'. */
            roost_presence_log_rc(job_push(job, 1, !s->owner_is_user, ROOST_SUBEV_SUBSCRIBED,
                                           roost_presence_mk_presence("subscribed", owner, peer)),
                                  "subscription auto-reply");
            /* Also when the subscription already existed: the requester
             * may have lost track and wants the presence again. */
            if (!d->send_presence)
                job_tell(job, s->owner_is_user, 0);
        }
    }
    if (d->send_presence)
        job_tell(job, s->owner_is_user, 0);
    if (d->send_unavailable)
        job_tell(job, s->owner_is_user, 1);
    step_next(job);
}

static void on_step_cas(int status, const roost_roster_item_t *current, uint64_t ver,
                        void *data);

/* Computes the decision for the current belief and stores the item when it
 * changes. */
static void step_decide(sub_job_t *job)
{
    roost_server_t *srv = job->srv;
    sub_step_t *s = &job->steps[job->head];
    roost_substate_t cur;
    roost_substate_from_item(&cur, job->have_cur ? &job->cur : NULL, job->pending_in);
    if (s->inbound)
        roost_subscription_inbound(&cur, s->ev, &job->d);
    else
        roost_subscription_outbound(&cur, s->ev, &job->d);
    if (!job->d.item_changed) {
        step_effects(job);
        return;
    }
    roost_roster_item_clear(&job->next);
    if (job->have_cur) {
        if (roost_roster_item_copy(&job->next, &job->cur) != 0)
            goto fail;
    } else {
        job->next.jid = strdup(peer_of(job, s));
        if (job->next.jid == NULL)
            goto fail;
    }
    job->next.sub = job->d.next.sub;
    job->next.ask = job->d.next.ask;
    job->next.approved = job->d.next.approved;
    int rc = roost_store_roster_cas(srv->store, owner_of(job, s), peer_of(job, s),
                                    job->have_cur ? &job->cur : NULL, &job->next,
                                    srv->cfg->max_roster_items, on_step_cas, job);
    if (rc == 0)
        return;
fail:
    ROOST_WARN(0, "subscription change %s -> %s failed", owner_of(job, s), peer_of(job, s));
    job_end(job);
}

static void on_step_cas(int status, const roost_roster_item_t *current, uint64_t ver,
                        void *data)
{
    sub_job_t *job = data;
    sub_step_t *s = &job->steps[job->head];
    if (status == ROOST_ECONFLICT && ++job->tries < CAS_TRIES) {
        roost_roster_item_clear(&job->cur);
        job->have_cur = 0;
        if (current != NULL) {
            if (roost_roster_item_copy(&job->cur, current) != 0) {
                job_end(job);
                return;
            }
            job->have_cur = 1;
        }
        step_decide(job);
        return;
    }
    if (status != 0) {
        ROOST_WARN(0, "roster change %s -> %s failed: %s", owner_of(job, s), peer_of(job, s),
                   roost_strerror(status));
        /* Only the sender's own step can create an item and hit the
         * roster limit; tell the client. */
        if (status == ROOST_ELIMIT)
            roost_limit_hit(0, "roster_size", owner_of(job, s));
        if (!s->inbound && job->from != NULL && job->orig != NULL && !roost_c2s_gone(job->from))
            roost_presence_reply_error(job->from, job->orig, NULL,
                                       status == ROOST_ELIMIT ? "resource-constraint"
                                                              : "internal-server-error",
                                       NULL);
        job_end(job);
        return;
    }
    roost_roster_push(job->srv, owner_of(job, s), &job->next, 0, ver);
    step_effects(job);
}

static void on_step_subin(int status, const char *const *contacts, const uint8_t *const *stanzas,
                          const size_t *lens, size_t n, void *data)
{
    sub_job_t *job = data;
    sub_step_t *s = &job->steps[job->head];
    const char *peer = peer_of(job, s);
    (void)stanzas;
    (void)lens;
    if (status != 0) {
        ROOST_WARN(0, "pending subscription read failed: %s", roost_strerror(status));
        job_end(job);
        return;
    }
    for (size_t i = 0; i < n && !job->pending_in; i++)
        job->pending_in = strcmp(contacts[i], peer) == 0;
    step_decide(job);
}

static void on_step_item(int status, const roost_roster_item_t *item, uint64_t ver, void *data)
{
    sub_job_t *job = data;
    sub_step_t *s = &job->steps[job->head];
    (void)ver;
    if (status != 0) {
        ROOST_WARN(0, "roster item read failed: %s", roost_strerror(status));
        job_end(job);
        return;
    }
    if (item != NULL) {
        if (roost_roster_item_copy(&job->cur, item) != 0) {
            job_end(job);
            return;
        }
        job->have_cur = 1;
    }
    /* Pending-in decides approvals, denials and withdrawals. */
    int need_pending = s->inbound ? (s->ev == ROOST_SUBEV_SUBSCRIBE ||
                                     s->ev == ROOST_SUBEV_UNSUBSCRIBE)
                                  : (s->ev == ROOST_SUBEV_SUBSCRIBED ||
                                     s->ev == ROOST_SUBEV_UNSUBSCRIBED);
    if (need_pending) {
        if (roost_store_subin_list(job->srv->store, owner_of(job, s), on_step_subin, job) != 0)
            job_end(job);
        return;
    }
    step_decide(job);
}

static int step_read(sub_job_t *job)
{
    sub_step_t *s = &job->steps[job->head];
    return roost_store_roster_item_get(job->srv->store, owner_of(job, s), peer_of(job, s),
                                       on_step_item, job);
}

static void on_step_account(int status, const roost_scram_cred_t *cred, void *data)
{
    sub_job_t *job = data;
    sub_step_t *s = &job->steps[job->head];
    if (status == 0 && cred == NULL) {
        /* §3.1.3: no such account: the requester gets 'unsubscribed' on
         * its behalf, which also clears its ask. */
        roost_xml_t *st = roost_presence_mk_presence("unsubscribed", owner_of(job, s),
                                                     peer_of(job, s));
        roost_presence_log_rc(job_push(job, 1, !s->owner_is_user, ROOST_SUBEV_UNSUBSCRIBED, st),
                              "subscription auto-reply");
        step_next(job);
        return;
    }
    if (step_read(job) != 0)
        job_end(job);
}

/* Starts the current step: 0, or negative when nothing was started. */
static int step_start(sub_job_t *job)
{
    sub_step_t *s = &job->steps[job->head];
    if (s->verify) {
        s->verify = 0;
        return roost_store_cred_get(job->srv->store, owner_of(job, s), ROOST_HASH_SHA256,
                                    on_step_account, job);
    }
    return step_read(job);
}

static void step_begin(sub_job_t *job)
{
    if (job->head == job->tail || step_start(job) != 0)
        job_end(job);
}

int roost_presence_subscription_from_client(roost_server_t *srv, roost_c2s_t *from,
                                            roost_xml_t *st, const roost_jid_t *to,
                                            roost_subev_t ev)
{
    const roost_jid_t *me = roost_c2s_jid(from);
    if (!roost_config_hosts(srv->cfg, to->domain)) {
        /* No server-to-server yet. */
        roost_presence_reply_error(from, st, to->bare, "remote-server-not-found", NULL);
        goto drop;
    }
    /* A subscription with oneself is implicit; one with a bare domain
     * has no account behind it. */
    if (to->local == NULL || strcmp(to->bare, me->bare) == 0)
        goto drop;
    sub_job_t *job = job_new(srv, from, me->bare, to->bare);
    if (job == NULL)
        goto drop;
    /* §3.1.2: the stanza travels from the bare JID to the bare JID. */
    roost_xml_t *out = roost_xml_copy(st);
    if (out == NULL || roost_xml_set_attr(out, "from", me->bare) != 0 ||
        roost_xml_set_attr(out, "to", to->bare) != 0) {
        roost_xml_free(out);
        job_free(job);
        goto drop;
    }
    job->orig = st;
    if (job_push(job, 0, 1, ev, out) != 0 || step_start(job) != 0) {
        job_free(job);
        return 0;
    }
    return ROOST_EAGAIN;
drop:
    roost_xml_free(st);
    return 0;
}

void roost_presence_item_removed(roost_server_t *srv, const char *bare,
                                 const roost_roster_item_t *old)
{
    roost_jid_t c = { 0 };
    if (old == NULL || old->jid == NULL || strcmp(old->jid, bare) == 0)
        return;
    if (roost_jid_parse(&c, old->jid, strlen(old->jid)) != 0)
        return;
    int hosted = c.local != NULL && roost_config_hosts(srv->cfg, c.domain);
    roost_jid_clear(&c);
    roost_presence_log_rc(roost_store_subin_del(srv->store, bare, old->jid, on_store_done,
                                                "clearing a pending subscription request"),
                          "clearing a pending subscription request");
    if (!hosted)
        return;
    roost_substate_t st;
    int unsub, unsubd;
    /* Whether a request from the contact was pending is not known here;
     * 'unsubscribed' is harmless when it was not (the contact's roster
     * then does not change and nothing is delivered). */
    roost_substate_from_item(&st, old, 1);
    roost_subscription_remove(&st, &unsub, &unsubd);
    if (old->sub & ROOST_SUB_FROM)
        tell_contact(srv, bare, old->jid, 1);
    sub_job_t *job = job_new(srv, NULL, bare, old->jid);
    if (job == NULL)
        return;
    if (unsub)
        job_push(job, 1, 0, ROOST_SUBEV_UNSUBSCRIBE,
                 roost_presence_mk_presence("unsubscribe", bare, old->jid));
    if (unsubd)
        job_push(job, 1, 0, ROOST_SUBEV_UNSUBSCRIBED,
                 roost_presence_mk_presence("unsubscribed", bare, old->jid));
    step_begin(job);
}
