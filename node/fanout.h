/* Fan-out for feature modules (presence, roster, carbons): one stanza to
 * selected resources of many users, wherever they are bound. Declared here,
 * included by node/router.h; the functions keep their roost_router_ names. */
#ifndef ROOST_FANOUT_H
#define ROOST_FANOUT_H

#include <stddef.h>

#include "node/server.h"
#include "node/xml.h"

typedef enum {
    ROOST_FANOUT_AVAILABLE,     /* resources that sent available presence */
    ROOST_FANOUT_INTERESTED,    /* resources that fetched the roster */
    ROOST_FANOUT_ALL,           /* every bound resource */
    ROOST_FANOUT_CARBONS,       /* resources with carbons enabled */
} roost_fanout_t;

/* Sends stanza (borrowed; serialized once) to the resources selected by
 * kind of every user in bares[0..n), on whatever node they are, skipping the
 * full JID except (may be NULL). With stamp_to, each copy is addressed
 * to='<that resource's full JID>' (roster pushes); otherwise 'to' stays as
 * in stanza. Fire-and-forget: one store round trip for all users, one
 * publish per destination node. done (may be NULL) runs exactly once after
 * the deliveries were handed off, with the number of resources reached. */
typedef void (*roost_router_done_cb)(int status, size_t reached, void *data);
int roost_router_fanout(roost_server_t *srv, const char *const *bares, size_t n,
                        roost_fanout_t kind, const char *except, const roost_xml_t *stanza,
                        int stamp_to, roost_router_done_cb done, void *data);

/* Like roost_router_fanout, for a stanza that is already serialized in the
 * jabber:client namespace (bytes[0..len), copied). With stamp_to the bytes
 * must carry no 'to' (e.g. a stored last presence). */
int roost_router_fanout_raw(roost_server_t *srv, const char *const *bares, size_t n,
                            roost_fanout_t kind, const char *except, const char *bytes,
                            size_t len, int stamp_to, roost_router_done_cb done, void *data);

/* Deliveries handed off but not yet done (fan-outs and to_full waiting
 * for their session reads; carbons keep their own per-user count). While any is in
 * flight, a stanza must not be delivered from the node's session cache
 * ahead of it: the store's FIFO is what keeps a client's stanzas in order
 * (RFC 6120 §10.1), so the router then takes the store path too. */
void roost_router_async_hold(void);
void roost_router_async_release(void);
int roost_router_async_pending(void);

/* Delivers stanza to exactly the full JID, wherever it is bound; dropped
 * when it is not bound. done as above (reached 0 or 1). */
int roost_router_to_full(roost_server_t *srv, const char *full, const roost_xml_t *stanza,
                         roost_router_done_cb done, void *data);

/* Delivers to already-read records recs[idx[0..n)] of bare (see
 * roost_router_fanout for stamp_to). Synchronous hand-off. */
void roost_router_to_records(roost_server_t *srv, const char *bare, const roost_session_t *recs,
                             const size_t *idx, size_t n, const roost_xml_t *stanza, int stamp_to);

#endif
