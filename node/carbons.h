/* Message Carbons (XEP-0280): enable/disable per session (a flag in the
 * session record), and copies of a user's sent and received chat messages
 * to the user's other carbons-enabled resources, on any node. */
#ifndef ROOST_CARBONS_H
#define ROOST_CARBONS_H

#include <stddef.h>

#include "node/server.h"
#include "node/xml.h"
#include "store/record.h"

#define ROOST_NS_CARBONS "urn:xmpp:carbons:2"

/* 1 when iq is a carbons enable/disable request. */
int roost_carbons_is_request(const roost_xml_t *iq);

/* Handles an enable/disable iq from the bound local client (takes
 * ownership); 0 or ROOST_EAGAIN (then roost_c2s_done(from) runs once). */
int roost_carbons_handle_iq(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *iq);

/* 1 when msg may be carbon-copied (chat, or normal with a body; not
 * private, no-copy, or itself a carbon). */
int roost_carbons_eligible(const roost_xml_t *msg);

/* Wraps msg as <sent/> or <received/> addressed from bare; NULL on ENOMEM. */
roost_xml_t *roost_carbons_wrap(const roost_xml_t *msg, const char *bare, int sent);

/* The sender's copy: to every carbons-enabled resource of the sender's
 * account except the sending one (from = its full JID). */
void roost_carbons_sent(roost_server_t *srv, const char *sender_full, const char *sender_bare,
                        const roost_xml_t *msg);

/* The recipient's copies after delivery to a full JID: every other
 * carbons-enabled resource of bare. */
void roost_carbons_received_full(roost_server_t *srv, const char *bare, const char *delivered_full,
                                 const roost_xml_t *msg);

/* After a bare-JID delivery to recs[idx[0..n)]: the carbons-enabled
 * resources among recs that did not get the message. */
void roost_carbons_received_bare(roost_server_t *srv, const char *bare,
                                 const roost_session_t *recs, size_t nrecs,
                                 const size_t *idx, size_t n, const roost_xml_t *msg);

#endif
