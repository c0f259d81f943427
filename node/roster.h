/* Roster management (RFC 6121 §2, XEP-0237): jabber:iq:roster get (marks
 * the session interested), set and remove with pushes to every interested
 * resource, versioning, validation and limits. */
#ifndef ROOST_ROSTER_H
#define ROOST_ROSTER_H

#include "node/server.h"
#include "node/xml.h"
#include "store/roster.h"

#define ROOST_NS_ROSTER "jabber:iq:roster"

/* A jabber:iq:roster iq from the bound local client `from` addressed to its
 * own account. Takes ownership of iq; 0 or ROOST_EAGAIN (then
 * roost_c2s_done(from) is called exactly once). */
int roost_roster_handle_iq(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *iq);

/* Pushes item (removed: subscription='remove') at version ver to every
 * interested resource of bare. Fire-and-forget. */
void roost_roster_push(roost_server_t *srv, const char *bare, const roost_roster_item_t *item,
                       int removed, uint64_t ver);

#endif
