/* Routing of stanzas (RFC 6120 §10, RFC 6121 §8): from a local client to
 * the server, to local sessions, or over pub/sub to the node holding the
 * target; and envelopes arriving from other nodes. */
#ifndef ROOST_ROUTER_H
#define ROOST_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "node/fanout.h"
#include "node/server.h"
#include "node/xml.h"

/* Routes a stanza sent by the bound local session from (whose full JID
 * was already stamped as 'from'). Takes ownership of stanza. Returns 0
 * when finished, or ROOST_EAGAIN when it continues asynchronously: then
 * roost_c2s_done(from) is called exactly once when it is finished. */
int roost_router_from_client(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *stanza);

/* Handles one RouteEnvelope received on this node's channel. */
void roost_router_on_envelope(roost_server_t *srv, const uint8_t *msg, size_t len);

/* Tells the session that owns (full_jid, conn_id) — here or on another node —
 * to end its stream with condition. */
void roost_router_kick(roost_server_t *srv, const char *node_id, const char *full_jid,
                       uint64_t conn_id, const char *condition, const char *text);

#endif
