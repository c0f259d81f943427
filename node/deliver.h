/* Internal to the router: delivery of serialized stanzas to resolved
 * targets, locally or as RouteEnvelopes to other nodes, with the re-route
 * when a PUBLISH reached no node. Not for feature modules. */
#ifndef ROOST_DELIVER_H
#define ROOST_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "node/buf.h"
#include "node/server.h"
#include "node/xml.h"
#include "proto/roost.pb-c.h"

/* One delivery target: a bound resource, local or on another node. */
typedef struct {
    char *full;                 /* owned */
    const char *node_id;        /* borrowed from the record */
    uint64_t epoch;
    uint64_t conn_id;
    uint32_t flags;             /* the record's ROOST_SESS_F_* (SM: queue it) */
} roost_deliver_target_t;

/* What to do when a PUBLISH reached no node (opaque; made by deliver.c). */
typedef struct roost_deliver_retry_s roost_deliver_retry_t;

/* Publishes env to node_id. retry (owned, may be NULL) is what to do when
 * no node listens on that channel. 0 or a negative ROOST_E*. */
int roost_deliver_publish_envelope(roost_server_t *srv, const char *node_id,
                                   Roost__RouteEnvelope *env, roost_deliver_retry_t *retry);

/* A packed STANZA envelope carrying bytes to full (one target), malloc'd
 * (*out_len bytes), or NULL on ENOMEM. */
uint8_t *roost_deliver_pack_one(roost_server_t *srv, const char *full, uint64_t conn_id,
                                const char *bytes, size_t len, unsigned hops, size_t *out_len);

/* Writes bytes to c; with jid, the copy gets to='jid' inserted into the
 * top-level start tag (the bytes were serialized without a 'to'). */
void roost_deliver_send_to_c2s(roost_c2s_t *c, const char *bytes, size_t len, const char *jid);

/* Hands bytes to every target of t[0..n) (borrowed): local ones directly,
 * the others in one envelope per destination node. With orig (borrowed,
 * may be NULL) a message or iq that reaches no node is re-routed once or
 * falls back (offline storage, service-unavailable). */
void roost_deliver_targets_ex(roost_server_t *srv, roost_deliver_target_t *t, size_t n,
                              const char *bytes, size_t len, int stamp_to, const char *from,
                              const char *to, const roost_xml_t *orig, unsigned hops);

/* roost_deliver_targets_ex without re-route (first hop). */
void roost_deliver_targets(roost_server_t *srv, roost_deliver_target_t *t, size_t n,
                           const char *bytes, size_t len, int stamp_to, const char *from,
                           const char *to);

/* Frees the n targets' full JIDs and the array t. */
void roost_deliver_targets_free(roost_deliver_target_t *t, size_t n);

/* Appends the targets for recs[idx[0..n)] of bare at t[at], skipping the
 * full JID except (may be NULL); returns the new count. */
size_t roost_deliver_add_targets(roost_deliver_target_t *t, size_t at, const char *bare,
                                 const roost_session_t *recs, const size_t *idx, size_t n,
                                 const char *except);

/* Nowhere to deliver st (borrowed) for bare: a chat or normal message goes
 * to offline storage, an iq request is answered service-unavailable,
 * anything else is dropped. */
void roost_deliver_fall_back(roost_server_t *srv, const char *bare, const roost_xml_t *st);

/* Serializes st in the jabber:client namespace into b; 0 or ROOST_ENOMEM. */
int roost_deliver_serialize(const roost_xml_t *st, roost_buf_t *b);

#endif
