/* iq requests the server answers itself: XEP-0030 disco#info/#items on the
 * domain and on accounts, XEP-0199 ping, XEP-0092 software version. */
#ifndef ROOST_IQ_SERVER_H
#define ROOST_IQ_SERVER_H

#include "node/xml.h"

#define ROOST_NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define ROOST_NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define ROOST_NS_PING        "urn:xmpp:ping"
#define ROOST_NS_VERSION     "jabber:iq:version"

typedef enum {
    ROOST_IQ_TO_DOMAIN,     /* to = a hosted domain */
    ROOST_IQ_TO_ACCOUNT,    /* no 'to', or the sender's own bare JID */
} roost_iq_target_t;

/* Answers a get/set iq (already validated: id, type, one payload child)
 * addressed to the server. Returns a result, or an error reply
 * (service-unavailable for an unknown payload, bad-request for a set where
 * only get is defined), with to/from set from the request ("from" of the
 * reply = the request's 'to', or nothing when it had none). NULL on ENOMEM. */
roost_xml_t *roost_iq_server_handle(const roost_xml_t *iq, roost_iq_target_t target);

#endif
