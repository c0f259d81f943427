/* The node's own metrics (names in ops/RUNBOOK.md): handles registered
 * once at start, bumped from the hot paths without any lookup by name. */
#ifndef ROOST_STATS_H
#define ROOST_STATS_H

#include <stddef.h>

#include "node/server.h"

/* Registers every family so that it renders (at 0) before the first
 * event, and the build info series for version (copied). srv is kept for
 * the gauges computed at render time (sessions). 0 or ROOST_ENOMEM; on
 * failure the bump functions below still work (they do nothing). */
int roost_stats_init(roost_server_t *srv, const char *version);

/* A stanza from a client (routed) / to a client, by element name:
 * "message", "presence", "iq"; anything else is not counted. */
void roost_stats_stanza_in(const char *name);
void roost_stats_stanza_out(const char *name);
/* The same for serialized stanza bytes ("<message ...", "<iq ..."). */
void roost_stats_stanza_out_bytes(const char *bytes, size_t len);

/* A SASL exchange ended: ok, or failed with the RFC 6120 §6.5 condition
 * (e.g. "not-authorized"; unknown conditions count as "other"). */
void roost_stats_login(int ok, const char *condition);

/* n deliveries to local sessions (remote 0) or into envelopes for other
 * nodes (remote 1). */
void roost_stats_routed(int remote, size_t n);

/* Pub/sub: an envelope was published / one reached no node (PUBLISH
 * answered 0) / one arrived on this node's channel. */
void roost_stats_published(void);
void roost_stats_unrouted(void);
void roost_stats_received(void);

/* A roost_store_observer_cb: Redis command latency and failures. */
void roost_stats_redis_observe(double seconds, int status, void *data);

/* Recomputes the gauges that need a walk over the connections (by state);
 * call right before rendering. */
void roost_stats_collect(roost_server_t *srv);

#endif
