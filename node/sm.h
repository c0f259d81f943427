/* XEP-0198 stream management for c2s sessions: enable, acks, and resumption
 * on any node. A resumable session's outbound stanzas are numbered and
 * queued in Redis before they are written (store/sm.h), so a client resumes
 * with nothing lost even after its node died. Also: the expiry of detached
 * sessions and of drained sessions' grace windows. */
#ifndef ROOST_SM_H
#define ROOST_SM_H

#include <stddef.h>
#include <stdint.h>

#include "node/server.h"
#include "node/xml.h"
#include "store/sm.h"

#define ROOST_NS_SM "urn:xmpp:sm:3"

typedef struct roost_sm_s roost_sm_t;

/* Handles one top-level element of ROOST_NS_SM from s (borrowed): enable,
 * resume, r, a. 0 when finished, or ROOST_EAGAIN: it continues
 * asynchronously and calls roost_c2s_done(s) exactly once. */
int roost_sm_handle(roost_c2s_t *s, roost_xml_t *el);

/* A serialized stanza is about to go to s. 1: stream management took it
 * (queued in Redis; it is written when its number comes back); 0: the
 * caller writes it now, then calls roost_sm_written(). */
int roost_sm_outbound(roost_c2s_t *s, const char *bytes, size_t len);
void roost_sm_written(roost_c2s_t *s);

/* One stanza arrived from the client (counts toward h). */
void roost_sm_inbound(roost_c2s_t *s);

/* 1 when s has resumable stream management. */
int roost_sm_resumable(const roost_c2s_t *s);

/* A RouteEnvelope for full carried stanza number seq (borrowed bytes). */
void roost_sm_on_envelope(roost_server_t *srv, const char *full, uint64_t seq,
                          const uint8_t *bytes, size_t len);

/* The connection of bound session s is closing. 1: the session lives on
 * (detached, or taken over): the caller neither unbinds it nor sends
 * unavailable presence. 0: it ends as usual. */
int roost_sm_on_close(roost_c2s_t *s);

/* A bind of s replaced a record that had a queue (a detached or graced
 * session of the same full JID): take the queue over and deliver it. */
void roost_sm_bind_takeover(roost_c2s_t *s);

/* Drain: lets s go. Resumable sessions lose their TCP connection without
 * a stream end, so the client resumes elsewhere; other bound sessions enter
 * the grace window (their record and a queue are kept) and get
 * <system-shutdown/>; unbound ones just get <system-shutdown/>. */
void roost_sm_release(roost_c2s_t *s);

/* Stanzas that can no longer reach bare's resource: messages go to offline
 * storage, iq requests are answered with an error, the rest is dropped. */
void roost_sm_undeliverable(roost_server_t *srv, const char *bare, const roost_sm_entry_t *e,
                            size_t n);

void roost_sm_free(roost_sm_t *sm);

/* The node-wide timer: gap checks for queued stanzas whose publish was
 * lost, and the expiry of detached sessions (any node may take them).
 * roost_sm_stop before the loop ends. */
int roost_sm_start(roost_server_t *srv);
void roost_sm_stop(void);

#endif
