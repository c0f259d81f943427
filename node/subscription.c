/* The presence subscription state machine (RFC 6121 §3, Appendix A): what
 * each of the eight outbound and inbound events does to one (user,
 * contact) pair. Pure: the caller applies the decision to Redis. */
#include <string.h>

#include "node/subscription.h"
#include "store/error.h"

int roost_subev_parse(const char *type, roost_subev_t *ev)
{
    static const char *const names[] = { "subscribe", "subscribed", "unsubscribe",
                                         "unsubscribed" };
    if (type == NULL)
        return ROOST_EINVAL;
    for (int i = 0; i < 4; i++) {
        if (strcmp(type, names[i]) == 0) {
            *ev = (roost_subev_t)i;
            return 0;
        }
    }
    return ROOST_EINVAL;
}

const char *roost_subev_name(roost_subev_t ev)
{
    switch (ev) {
    case ROOST_SUBEV_SUBSCRIBE: return "subscribe";
    case ROOST_SUBEV_SUBSCRIBED: return "subscribed";
    case ROOST_SUBEV_UNSUBSCRIBE: return "unsubscribe";
    case ROOST_SUBEV_UNSUBSCRIBED: return "unsubscribed";
    }
    return "?";
}

const char *roost_sub_name(roost_sub_t sub)
{
    switch (sub) {
    case ROOST_SUB_TO: return "to";
    case ROOST_SUB_FROM: return "from";
    case ROOST_SUB_BOTH: return "both";
    case ROOST_SUB_NONE: break;
    }
    return "none";
}

void roost_substate_from_item(roost_substate_t *st, const roost_roster_item_t *item,
                              int pending_in)
{
    memset(st, 0, sizeof(*st));
    st->pending_in = pending_in ? 1 : 0;
    if (item == NULL)
        return;
    st->exists = 1;
    st->sub = item->sub & ROOST_SUB_BOTH;
    st->ask = item->ask ? 1 : 0;
    st->approved = item->approved ? 1 : 0;
}

static int has_to(const roost_substate_t *s) { return (s->sub & ROOST_SUB_TO) != 0; }
static int has_from(const roost_substate_t *s) { return (s->sub & ROOST_SUB_FROM) != 0; }

/* Item fields (not pending-in, which is kept elsewhere) differ, or the item
 * is new. */
static int item_differs(const roost_substate_t *a, const roost_substate_t *b)
{
    return a->exists != b->exists || a->sub != b->sub || a->ask != b->ask ||
           a->approved != b->approved;
}

static void begin(const roost_substate_t *cur, roost_subdecision_t *d)
{
    memset(d, 0, sizeof(*d));
    d->next = *cur;
    if (!d->next.exists) {
        /* Normalize: no item means nothing but pending-in. */
        d->next.sub = ROOST_SUB_NONE;
        d->next.ask = 0;
        d->next.approved = 0;
    }
}

/* The item changes: it now exists (a change on a missing item creates it). */
static void touch(roost_subdecision_t *d)
{
    d->next.exists = 1;
}

void roost_subscription_outbound(const roost_substate_t *cur, roost_subev_t ev,
                                 roost_subdecision_t *d)
{
    begin(cur, d);
    roost_substate_t *n = &d->next;
    switch (ev) {
    case ROOST_SUBEV_SUBSCRIBE:
        /* A.2.1: None/From gain pending-out; To/Both and an existing ask stay.
         * The request is routed in every state: the contact's server answers
         * it (auto-reply when it already granted the subscription). */
        if (!has_to(n) && !n->ask) {
            touch(d);
            n->ask = 1;
        }
        d->forward = 1;
        break;
    case ROOST_SUBEV_UNSUBSCRIBE:
        /* A.2.2: drop 'to' and pending-out. Routed in every state so the
         * contact's roster converges even if the two sides had drifted;
         * the contact's server ignores it when nothing changes there. */
        if (has_to(n) || n->ask) {
            n->sub &= ~ROOST_SUB_TO;
            n->ask = 0;
        }
        d->forward = 1;
        break;
    case ROOST_SUBEV_SUBSCRIBED:
        if (has_from(n)) {
            /* A.2.3: already granted: no state change, not routed. */
            n->pending_in = 0;
            break;
        }
        if (n->pending_in) {
            /* A.2.3: None+In -> From, None+Out+In -> From+Out, To+In -> Both. */
            touch(d);
            n->sub |= ROOST_SUB_FROM;
            n->approved = 0;
            n->pending_in = 0;
            d->forward = 1;
            d->send_presence = 1;
        } else if (!n->approved) {
            /* §3.4: no request yet: remember the pre-approval; the
             * contact is not told. */
            touch(d);
            n->approved = 1;
        }
        break;
    case ROOST_SUBEV_UNSUBSCRIBED:
        /* A.2.4: cancel 'from' or deny the pending request; it also
         * cancels a pre-approval (§3.4). */
        if (has_from(n)) {
            n->sub &= ~ROOST_SUB_FROM;
            d->send_unavailable = 1;
        }
        n->pending_in = 0;
        n->approved = 0;
        /* Routed in every state, like unsubscribe. */
        d->forward = 1;
        break;
    }
    d->item_changed = n->exists && item_differs(cur, n);
}

void roost_subscription_inbound(const roost_substate_t *cur, roost_subev_t ev,
                                roost_subdecision_t *d)
{
    begin(cur, d);
    roost_substate_t *n = &d->next;
    switch (ev) {
    case ROOST_SUBEV_SUBSCRIBE:
        if (has_from(n)) {
            /* §3.1.3: already subscribed: answer for the user. */
            n->pending_in = 0;
            d->auto_reply = 1;
        } else if (n->approved) {
            /* §3.4: pre-approved: None(+Out) -> From(+Out), To -> Both,
             * answered for the user and not delivered. */
            n->sub |= ROOST_SUB_FROM;
            n->approved = 0;
            n->pending_in = 0;
            d->auto_reply = 1;
            d->send_presence = 1;
        } else if (cur->pending_in) {
            /* A.3.1: a repeated request while one is pending (None+In,
             * None+Out+In, To+In): no state change, not delivered again. */
        } else {
            /* A.3.1: None -> None+In, None+Out -> None+Out+In, To -> To+In. */
            n->pending_in = 1;
            d->deliver = 1;
        }
        break;
    case ROOST_SUBEV_SUBSCRIBED:
        /* A.3.3: only an outstanding ask turns into 'to'; otherwise the
         * stanza is ignored. */
        if (n->ask && !has_to(n)) {
            n->ask = 0;
            n->sub |= ROOST_SUB_TO;
            d->deliver = 1;
        } else if (n->ask) {
            n->ask = 0;
        }
        break;
    case ROOST_SUBEV_UNSUBSCRIBE:
        /* A.3.2: the contact drops its subscription to the user or
         * withdraws its request; ignored when neither exists. */
        if (has_from(n)) {
            n->sub &= ~ROOST_SUB_FROM;
            d->deliver = 1;
            d->send_unavailable = 1;
        }
        if (n->pending_in) {
            n->pending_in = 0;
            d->deliver = 1;
        }
        break;
    case ROOST_SUBEV_UNSUBSCRIBED:
        /* A.3.4: the contact cancels or denies the user's subscription. */
        if (has_to(n) || n->ask) {
            n->sub &= ~ROOST_SUB_TO;
            n->ask = 0;
            d->deliver = 1;
        }
        break;
    }
    d->item_changed = n->exists && item_differs(cur, n);
}

void roost_subscription_remove(const roost_substate_t *cur, int *unsubscribe,
                               int *unsubscribed)
{
    int exists = cur->exists;
    *unsubscribe = exists && ((cur->sub & ROOST_SUB_TO) || cur->ask);
    *unsubscribed = (exists && (cur->sub & ROOST_SUB_FROM)) || cur->pending_in;
}
