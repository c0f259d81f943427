/* Offline messages (XEP-0160): store a message for a user with no
 * available resource, and deliver the stored ones, stamped with an
 * XEP-0203 <delay/>, when a resource sends initial presence with a
 * non-negative priority. */
#ifndef ROOST_OFFLINE_H
#define ROOST_OFFLINE_H

#include "node/server.h"
#include "node/xml.h"

/* Stores msg (borrowed) for bare. When storage is full or disabled, the
 * sender gets service-unavailable (bounced through the router to the
 * stanza's 'from'). Fire-and-forget. */
void roost_offline_store(roost_server_t *srv, const char *bare, const roost_xml_t *msg);

/* Takes every stored message of s's account and sends them to s, oldest
 * first. Fire-and-forget; safe if s closes meanwhile. */
void roost_offline_deliver(roost_server_t *srv, roost_c2s_t *s);

#endif
