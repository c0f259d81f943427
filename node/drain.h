/* Drain (DESIGN §7): the node stops being ready, lets its clients go in
 * paced batches (node/sm.c decides how each one goes), and finishes when
 * none is left or at the drain deadline. */
#ifndef ROOST_DRAIN_H
#define ROOST_DRAIN_H

#include "node/server.h"

/* Starts draining srv (srv->draining must already be set and the listeners
 * closed by the caller): releases drain.rate clients per second; done(srv)
 * runs exactly once, when no client is left or drain.deadline_s passed. */
void roost_drain_start(roost_server_t *srv, void (*done)(roost_server_t *srv));

/* Stops the drain timers (shutdown); done does not run afterwards. */
void roost_drain_stop(void);

#endif
