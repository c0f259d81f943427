/* One client-to-server session: the XMPP stream state machine on top of a
 * connection (stream header, features, SASL, bind, established), limits and
 * stream errors. Stanzas of an established session go to the router. */
#ifndef ROOST_C2S_H
#define ROOST_C2S_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node/server.h"
#include "node/xml.h"
#include "store/jid.h"

/* Accepts one pending connection on listener and starts its session. */
void roost_c2s_accept(roost_server_t *srv, uv_stream_t *listener);
/* The same on a direct TLS listener (XEP-0368): TLS starts at accept. */
void roost_c2s_accept_tls(roost_server_t *srv, uv_stream_t *listener);

/* Sends a stanza (serialized in the jabber:client default namespace) or
 * already-serialized stanza bytes. 0 or negative (session closing). */
int roost_c2s_send(roost_c2s_t *s, const roost_xml_t *stanza);
int roost_c2s_send_bytes(roost_c2s_t *s, const char *bytes, size_t len);

/* Ends the stream with a stream error and closes the connection. */
void roost_c2s_stream_error(roost_c2s_t *s, const char *condition, const char *text);

/* The bound full JID (NULL before bind). */
const roost_jid_t *roost_c2s_jid(const roost_c2s_t *s);
uint64_t roost_c2s_conn_id(const roost_c2s_t *s);
/* The session's own record as last written (resource, priority, flags). */
roost_session_t *roost_c2s_record(roost_c2s_t *s);
/* 1 once the session is closing: async continuations must not touch it
 * beyond roost_c2s_done/unref. */
int roost_c2s_gone(const roost_c2s_t *s);

/* Keeps s allocated across an async call; every ref has one unref. */
void roost_c2s_ref(roost_c2s_t *s);
void roost_c2s_unref(roost_c2s_t *s);

/* Ends an asynchronous stanza step begun by a handler that returned
 * ROOST_EAGAIN: drops that step's reference and resumes reading. */
void roost_c2s_done(roost_c2s_t *s);

/* Ends every session with condition (e.g. "system-shutdown"); resumable
 * stream-management sessions just lose their connection (node/sm.h). */
void roost_c2s_close_all(roost_server_t *srv, const char *condition);

/* A session's state as operators see it (roost_connections{state=...}). */
typedef enum {
    ROOST_C2S_PHASE_STREAM,       /* no stream header yet (or a restart pending) */
    ROOST_C2S_PHASE_AUTH,         /* SASL (and TLS) negotiation */
    ROOST_C2S_PHASE_BIND,         /* authenticated, no resource yet */
    ROOST_C2S_PHASE_ESTABLISHED,  /* resource bound */
    ROOST_C2S_PHASE_CLOSING,      /* ending; the socket is not closed yet */
    ROOST_C2S_PHASES
} roost_c2s_phase_t;

/* Adds the number of live sessions in each phase to counts (a walk over
 * every connection: for metrics rendering, not for hot paths). */
void roost_c2s_count_phases(const roost_server_t *srv, size_t counts[ROOST_C2S_PHASES]);

#endif
