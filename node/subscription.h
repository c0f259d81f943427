/* The presence subscription state machine of RFC 6121 §3 and Appendix A,
 * with pre-approval (§3.4) and the ask flag: pure functions from the state
 * of one (user, contact) pair and an event to a decision. No I/O. */
#ifndef ROOST_SUBSCRIPTION_H
#define ROOST_SUBSCRIPTION_H

#include "store/roster.h"

typedef enum {
    ROOST_SUBEV_SUBSCRIBE = 0,
    ROOST_SUBEV_SUBSCRIBED,
    ROOST_SUBEV_UNSUBSCRIBE,
    ROOST_SUBEV_UNSUBSCRIBED,
} roost_subev_t;

/* The user's side of one (user, contact) pair. pending_in lives outside
 * the roster item (roost:subin), so a pair can be "None + Pending In"
 * without an item. */
typedef struct {
    int exists;          /* the user has a roster item for the contact */
    roost_sub_t sub;     /* ROOST_SUB_* (NONE when !exists) */
    int ask;             /* pending-out */
    int approved;        /* pre-approved (§3.4) */
    int pending_in;      /* the contact's request waits for an answer */
} roost_substate_t;

/* What to do for one event on the user's side. */
typedef struct {
    roost_substate_t next;   /* the state afterwards (== current when unchanged) */
    int item_changed;        /* store next as the roster item (creating it when the
                                current state had none) and push it */
    int forward;             /* outbound: route the stanza to the contact, whose
                                server runs the inbound processing */
    int deliver;             /* inbound: deliver the stanza to the user's available
                                resources (subscribe: and keep it as pending-in) */
    int auto_reply;          /* inbound subscribe: answer 'subscribed' on the user's
                                behalf instead of delivering */
    int send_presence;       /* the contact just gained 'from': send it the user's
                                current available presence */
    int send_unavailable;    /* the contact lost 'from': send it unavailable from
                                the user's available resources */
} roost_subdecision_t;

/* Event from a presence 'type' ("subscribe", ...); ROOST_EINVAL for any
 * other type (including NULL). */
int roost_subev_parse(const char *type, roost_subev_t *ev);
const char *roost_subev_name(roost_subev_t ev);

/* "none", "to", "from", "both". */
const char *roost_sub_name(roost_sub_t sub);

/* Fills *st from a roster item (NULL: none) and the pending-in flag. */
void roost_substate_from_item(roost_substate_t *st, const roost_roster_item_t *item,
                              int pending_in);

/* The user sent ev to the contact (RFC 6121 Appendix A.2). */
void roost_subscription_outbound(const roost_substate_t *cur, roost_subev_t ev,
                                 roost_subdecision_t *d);

/* The contact sent ev to the user (RFC 6121 Appendix A.3). */
void roost_subscription_inbound(const roost_substate_t *cur, roost_subev_t ev,
                                roost_subdecision_t *d);

/* The user removes the contact from the roster (§2.5.3): which stanzas go
 * to the contact on the user's behalf. unsubscribe when the user was
 * subscribed to the contact or asked to be; unsubscribed when the contact
 * was subscribed to the user or had a request pending. */
void roost_subscription_remove(const roost_substate_t *cur, int *unsubscribe,
                               int *unsubscribed);

#endif
