/* Presence (RFC 6121 §3, §4): subscriptions between hosted users, initial
 * and updated presence broadcast to contacts and the user's own resources,
 * probes and their answers, directed presence, unavailable at logoff and on
 * a lost connection. Uses the router and the store API only. */
#ifndef ROOST_PRESENCE_H
#define ROOST_PRESENCE_H

#include "node/server.h"
#include "node/xml.h"
#include "store/jid.h"
#include "store/record.h"
#include "store/roster.h"

/* A presence stanza from the bound local client `from` ('from' already
 * stamped, 'to' parsed into *to, or to == NULL when absent). Takes
 * ownership of st. 0 when finished; ROOST_EAGAIN when it continues
 * asynchronously and will call roost_c2s_done(from) exactly once. */
int roost_presence_from_client(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *st,
                               const roost_jid_t *to);

/* A session ended (connection lost, closed, kicked) or was reaped on a dead
 * node's behalf: if rec was available, unavailable presence goes to every
 * contact with from/both, the user's other available resources and the
 * directed-presence recipients in rec. full is "bare/resource". Works from
 * the record alone (no c2s needed). Fire-and-forget. */
void roost_presence_session_ended(roost_server_t *srv, const char *bare, const char *full,
                                  const roost_session_t *rec);

/* The user bare removed old (the item as it was) from the roster (RFC 6121
 * §2.5.3): the contact's roster processes unsubscribe and unsubscribed from
 * the user, the contact's pending request (if any) is dropped, and the
 * contact gets unavailable from the user's resources when it was
 * subscribed to them. old is borrowed. Fire-and-forget. */
void roost_presence_item_removed(roost_server_t *srv, const char *bare,
                                 const roost_roster_item_t *old);

#endif
