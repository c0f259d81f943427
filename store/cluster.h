/* Cluster membership in Redis (DESIGN §6): lease renewal fenced by epoch,
 * the list of dead nodes, the per-dead-node reap lock, and the reap of a
 * dead node's session records. The node side (timers, what to do when the
 * lease is lost) is node/cluster.c.
 *
 * Keys:
 *   roost:node:<id>     string with TTL (the lease):
 *                       "epoch=<E> addr=<host:port> version=<V> start=<unix ms>"
 *                       (registration writes only "epoch=<E> start=<ms>"; the
 *                       first renewal adds the rest). Scripts read only the
 *                       leading "epoch=<E>".
 *   roost:nodes         zset id -> unix ms of the last successful renewal
 *   roost:nodeepochs    hash id -> latest epoch issued to that id
 *   roost:nodesess:<id> set of full JIDs bound on that node
 *   roost:reap:<id>     reap lock (SET NX PX), value "<reaper id>:<epoch>"
 * Like the session cleanup, the reap script touches undeclared per-user keys:
 * single Redis (or one primary), not Redis Cluster. */
#ifndef ROOST_STORE_CLUSTER_H
#define ROOST_STORE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "store/record.h"
#include "store/store.h"

#define ROOST_KEY_NODEEPOCHS "roost:nodeepochs"
#define ROOST_KEY_REAP_PREFIX "roost:reap:"

#define ROOST_CLUSTER_ADDR_MAX 300      /* "host:port" in a lease value */
#define ROOST_CLUSTER_VERSION_MAX 64
#define ROOST_CLUSTER_LIST_MAX 1000     /* nodes looked at per dead-node scan */
#define ROOST_CLUSTER_REAP_BATCH 200    /* nodesess entries per reap call */

/* A parsed lease value. */
typedef struct {
    uint64_t epoch;
    uint64_t start_ms;                        /* 0 when absent */
    char addr[ROOST_CLUSTER_ADDR_MAX + 1];    /* "" when absent */
    char version[ROOST_CLUSTER_VERSION_MAX + 1];
} roost_cluster_lease_t;

/* Formats the lease value into out (size n). ROOST_EINVAL when a field
 * contains a space/newline or it does not fit. Pure. */
int roost_cluster_lease_format(const roost_cluster_lease_t *l, char *out, size_t n);

/* Parses a lease value (not NUL-terminated, len bytes). Unknown "k=v"
 * words are ignored (a newer writer may add some); epoch is required.
 * ROOST_EINVAL on a malformed value. Pure. */
int roost_cluster_lease_parse(const char *v, size_t len, roost_cluster_lease_t *out);

/* Renews this node's lease (id and epoch of the store) for lease_ms with
 * the value formatted from addr/version/start_ms, and its roost:nodes
 * heartbeat. Fenced: it succeeds only while the key holds our epoch, or
 * when the key is gone but nothing happened since — our epoch is still the
 * id's latest, the node is still in roost:nodes and no reap lock exists —
 * or when Redis lost every key (a restart without persistence; then the
 * epoch counter is raised to ours so it is never issued again). status 0
 * renewed, ROOST_ESTALE refused (the lease is lost), or a store error. */
int roost_store_cluster_renew(roost_store_t *st, const char *addr, const char *version,
                              uint64_t start_ms, unsigned lease_ms,
                              roost_store_status_cb cb, void *data);

/* Nodes of roost:nodes (at most ROOST_CLUSTER_LIST_MAX) whose lease key is
 * gone, except this node. ids borrowed for the callback. */
typedef void (*roost_store_nodes_cb)(int status, char *const *ids, size_t n, void *data);
int roost_store_cluster_dead(roost_store_t *st, roost_store_nodes_cb cb, void *data);

/* Takes roost:reap:<node_id> for ttl_ms (SET NX PX). status 0 taken,
 * ROOST_ECONFLICT held by someone else. */
int roost_store_cluster_lock(roost_store_t *st, const char *node_id, unsigned ttl_ms,
                             roost_store_status_cb cb, void *data);

/* Releases the lock if this node (id:epoch) still holds it; status 0. */
int roost_store_cluster_unlock(roost_store_t *st, const char *node_id,
                               roost_store_status_cb cb, void *data);

/* One removed session: bare and full JID and the decoded record. */
typedef struct {
    const char *bare;
    const char *full;
    const roost_session_t *rec;
} roost_cluster_reaped_t;

/* status 0: recs[0..n) were removed (borrowed for the callback); done is 1
 * once the whole set was walked (for a dead node: the node was removed
 * from roost:nodes and its nodesess set is gone), else call again with
 * cursor (borrowed; copy it). ROOST_ESTALE: the node holds its lease (it
 * is alive, or came back): nothing was touched. */
typedef void (*roost_store_reap_cb)(int status, const roost_cluster_reaped_t *recs, size_t n,
                                    int done, const char *cursor, void *data);

/* One batch (ROOST_CLUSTER_REAP_BATCH entries) of the reap of node_id's
 * sessions, starting at cursor ("0" first). Atomically per batch, removes
 * every record still owned by node_id with an epoch <= max_epoch, and drops
 * nodesess entries that no longer name such a record.
 * max_epoch 0: node_id is dead — refused while its lease exists, and
 * max_epoch is every epoch issued so far. max_epoch > 0 (a node cleaning up
 * its own earlier incarnations): refused while a lease with an epoch <=
 * max_epoch exists; records of newer epochs stay. */
int roost_store_cluster_reap(roost_store_t *st, const char *node_id, uint64_t max_epoch,
                             const char *cursor, roost_store_reap_cb cb, void *data);

/* Leaving the cluster (clean shutdown, after roost_store_node_cleanup): if
 * the lease still holds our epoch, deletes it, removes the node from
 * roost:nodes and roost:nodeepochs. status 0 (also when nothing was ours). */
int roost_store_cluster_leave(roost_store_t *st, roost_store_status_cb cb, void *data);

#endif
