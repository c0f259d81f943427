/* Cluster membership of this node (DESIGN §6): registration with a fresh
 * epoch, lease renewal, what happens when the lease is lost, and the reaper
 * that cleans up after dead nodes. The Redis side is store/cluster.h. */
#ifndef ROOST_CLUSTER_H
#define ROOST_CLUSTER_H

#include <stdint.h>

#include "node/server.h"

typedef struct roost_cluster_s roost_cluster_t;

typedef void (*roost_cluster_hook)(roost_server_t *srv, void *data);

typedef struct {
    unsigned lease_ms;          /* lease TTL (cluster.lease_ms) */
    unsigned renew_ms;          /* renewal period, <= lease_ms / 2 */
    unsigned reap_interval_ms;  /* dead-node scan period */
    const char *version;        /* written into the lease; copied */
    /* The lease is held with a new epoch and this node's older records are
     * gone: accept clients. Runs after every (re)registration. */
    roost_cluster_hook serving;
    /* The lease is lost (not renewed for lease_ms, or renewal refused):
     * stop accepting and close every client. */
    roost_cluster_hook lost;
    void *data;                 /* passed to the hooks */
} roost_cluster_opts_t;

/* Creates the membership for srv (srv->store must exist) and starts its
 * timers; registration starts once the store reports connected through
 * roost_cluster_store_state(). NULL on allocation failure. */
roost_cluster_t *roost_cluster_new(roost_server_t *srv, const roost_cluster_opts_t *opts);

/* The c2s address ("host:port") advertised in the lease; copied. Renews
 * at once when it changed (or at the next tick if a renewal is running). */
void roost_cluster_set_addr(roost_cluster_t *c, const char *addr);

/* Feed the store's connection state here (roost_store_state_cb). */
void roost_cluster_store_state(roost_cluster_t *c, int connected);

/* 1 while the lease is held and the node serves (readiness). */
int roost_cluster_serving(const roost_cluster_t *c);

/* Stops the reaper (shutdown started); renewals go on during the drain. */
void roost_cluster_drain(roost_cluster_t *c);

/* Leaves the cluster after the node's own records were cleaned up: stops
 * the timers and deletes the lease if it is still ours. 0: cb runs exactly
 * once later (also with the store's ECANCELED); negative: there was nothing
 * to delete (no lease held, or no store) and cb will not run. */
int roost_cluster_leave(roost_cluster_t *c, void (*cb)(int status, void *data), void *data);

/* Closes the timers; memory goes in their close callbacks. Call after
 * roost_store_free() so that no store callback can still arrive.
 * roost_cluster_free(NULL) is a no-op. */
void roost_cluster_free(roost_cluster_t *c);

#endif
