/* libroost-store: the async Redis data layer on libuv + hiredis. Knows keys,
 * records and Lua scripts; never sockets of clients or stanza XML.
 *
 * Every async call takes (..., cb, data). The callback runs exactly once:
 * with the result, with ROOST_ETIMEDOUT when the per-call deadline passes,
 * with ROOST_EREDIS/ROOST_ENOTCONN when the link is down or breaks, or with
 * ROOST_ECANCELED from roost_store_free(). It never runs before the call
 * returns (no re-entrancy on the caller's stack). A call that returns an
 * error (negative) does not invoke its callback. Arguments passed to a
 * callback are borrowed for the duration of the callback only. */
#ifndef ROOST_STORE_H
#define ROOST_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/cred.h"
#include "store/record.h"

typedef struct roost_store_s roost_store_t;

typedef struct {
    const char *host;          /* default "127.0.0.1" */
    int port;                  /* default 6379 */
    const char *password;      /* AUTH when non-NULL/non-empty */
    int db;                    /* SELECT when > 0 */
    unsigned timeout_ms;       /* per-call deadline; default 2000 */
    unsigned reconnect_min_ms; /* backoff start; default 100 */
    unsigned reconnect_max_ms; /* backoff cap; default 5000 */
    const char *node_id;       /* this node (owner field of records) */
    unsigned lease_ms;         /* TTL of the lease set at registration; default 10000 */
} roost_store_opts_t;

/* Connection state changes (connected=1 after connect+AUTH+scripts loaded
 * and re-subscribed; 0 on loss). Optional. */
typedef void (*roost_store_state_cb)(int connected, void *data);

/* Creates the store and starts connecting (non-blocking); reconnects with
 * exponential backoff forever. Returns NULL on allocation failure. */
roost_store_t *roost_store_new(uv_loop_t *loop, const roost_store_opts_t *opts,
                               roost_store_state_cb state_cb, void *data);

/* Cancels every pending call (callbacks get ROOST_ECANCELED, synchronously,
 * inside this call), closes the links; the memory is released once libuv
 * closes the handles (run the loop). roost_store_free(NULL) is a no-op. */
void roost_store_free(roost_store_t *st);

/* 1 while the command link is up. */
int roost_store_connected(const roost_store_t *st);

/* 1 while the pub/sub link is subscribed to this node's channel (Redis
 * confirmed the SUBSCRIBE); 0 before roost_store_subscribe and while that
 * link is down. For readiness. */
int roost_store_subscribed(const roost_store_t *st);

/* Called once per completed call (reply, error or timeout; not for the
 * cancellations of roost_store_free) with the seconds between sending the
 * command and its completion and the call's status, before the call's own
 * callback. For latency metrics: the store stays free of node/ code.
 * cb NULL removes the observer. */
typedef void (*roost_store_observer_cb)(double seconds, int status, void *data);
void roost_store_set_observer(roost_store_t *st, roost_store_observer_cb cb, void *data);

/* This node's identity for ownership/fencing in records. epoch comes from
 * roost_store_node_register(). */
const char *roost_store_node_id(const roost_store_t *st);
uint64_t roost_store_node_epoch(const roost_store_t *st);

/* ---- generic -------------------------------------------------------- */

/* status 0 with a reply (redisReply *, may be an error reply) or negative. */
typedef void (*roost_store_reply_cb)(int status, void *reply, void *data);

/* Runs one command given as argv (binary safe). */
int roost_store_command(roost_store_t *st, int argc, const char **argv,
                        const size_t *argvlen, roost_store_reply_cb cb, void *data);

typedef void (*roost_store_status_cb)(int status, void *data);

/* ---- node ------------------------------------------------------------ */

/* INCR roost:epoch, records the node in roost:nodes and roost:nodeepochs
 * and sets its lease roost:node:<id> (opts.lease_ms); cb status 0 once
 * roost_store_node_epoch() is valid. Calling it again takes a new epoch
 * (after a lost lease); renewal is store/cluster.h. */
int roost_store_node_register(roost_store_t *st, roost_store_status_cb cb, void *data);

/* Removes every session record this node (id+epoch) owns, using
 * roost:nodesess:<id>; used at shutdown. */
int roost_store_node_cleanup(roost_store_t *st, roost_store_status_cb cb, void *data);

/* ---- accounts -------------------------------------------------------- */

/* cred is NULL (status 0) when the account or that hash does not exist. */
typedef void (*roost_store_cred_cb)(int status, const roost_scram_cred_t *cred, void *data);

/* bare is "local@domain" (prepared). */
int roost_store_cred_get(roost_store_t *st, const char *bare, roost_hash_t hash,
                         roost_store_cred_cb cb, void *data);

/* ---- sessions -------------------------------------------------------- */

/* On success (status 0) replaced is the record that held this resource
 * before (the caller kicks it) or NULL. status ROOST_ELIMIT when the account
 * already has max_resources other resources. */
typedef void (*roost_store_bind_cb)(int status, const roost_session_t *replaced, void *data);

/* Atomically (Lua): checks the resource count, replaces any record for that
 * resource with rec (owner = rec->node_id/epoch/conn_id), adds the full JID
 * to roost:nodesess:<node>. Fenced: status ROOST_ESTALE (nothing written)
 * unless roost:node:<rec->node_id> holds rec->node_epoch. */
int roost_store_session_bind(roost_store_t *st, const char *bare, const roost_session_t *rec,
                             unsigned max_resources, roost_store_bind_cb cb, void *data);

/* Replaces the record only if it is still owned by (node_id, epoch, conn_id)
 * of rec and that node's lease holds that epoch; otherwise ROOST_ESTALE. */
int roost_store_session_update(roost_store_t *st, const char *bare, const roost_session_t *rec,
                               roost_store_status_cb cb, void *data);

/* Deletes the record only if owned by (this node, epoch, conn_id); status 0
 * also when it was already gone or owned by someone else (nothing done). */
int roost_store_session_unbind(roost_store_t *st, const char *bare, const char *resource,
                               uint64_t conn_id, roost_store_status_cb cb, void *data);

/* All records of a bare JID (n may be 0). */
typedef void (*roost_store_sessions_cb)(int status, const roost_session_t *recs, size_t n, void *data);
int roost_store_session_list(roost_store_t *st, const char *bare,
                             roost_store_sessions_cb cb, void *data);

/* ---- node-local read cache (store/cache.h) -----------------------------
 * Session hashes read with roost_store_session_list, and block lists, are
 * kept while the pub/sub link is subscribed to ROOST_KEY_INVAL; every
 * writer of those keys publishes the key there (the session scripts and
 * block-list writes of this store do), so an entry is dropped as soon as
 * the change is known, and after CACHE_TTL_MS whatever happens. A cached
 * answer can still be a few hundred microseconds old: callers that route
 * with it must handle a target that is no longer where the entry says
 * (the receiving node re-reads and forwards, node/router.c). */

#define ROOST_STORE_BARE_MAX 2047u       /* longest bare JID (two parts and '@') */
#define ROOST_STORE_INVAL_MAX 4096u      /* longer invalidation messages clear everything */

/* 1 and bare's records (n may be 0) when cached, else 0. Borrowed until
 * control returns to the loop. */
int roost_store_sessions_cached(roost_store_t *st, const char *bare, const roost_session_t **recs,
                                size_t *n);
/* 1 while the caches are in use (subscribed to ROOST_KEY_INVAL). */
int roost_store_cache_live(const roost_store_t *st);
/* Drops bare's cached records (NULL: everyone's), e.g. after a delivery
 * they pointed to failed. */
void roost_store_cache_forget(roost_store_t *st, const char *bare);

/* A block list (XEP-0191 items as stored). */
typedef struct {
    char **items;
    size_t n;
    int big;          /* too long to cache: items empty, ask Redis */
} roost_store_blocklist_t;

/* One record; rec NULL (status 0) when absent. */
typedef void (*roost_store_session_cb)(int status, const roost_session_t *rec, void *data);
int roost_store_session_get(roost_store_t *st, const char *bare, const char *resource,
                            roost_store_session_cb cb, void *data);

/* ---- pub/sub --------------------------------------------------------- */

/* Called for every message on the subscribed channel; msg borrowed. */
typedef void (*roost_store_message_cb)(const uint8_t *msg, size_t len, void *data);

/* Subscribes (on a dedicated link) to roost:route:<node_id>; re-subscribes
 * after every reconnect. One subscription per store. */
int roost_store_subscribe(roost_store_t *st, roost_store_message_cb cb, void *data);

/* receivers = PUBLISH's answer (0: nobody listened). */
typedef void (*roost_store_publish_cb)(int status, long long receivers, void *data);
int roost_store_publish(roost_store_t *st, const char *node_id, const uint8_t *msg, size_t len,
                        roost_store_publish_cb cb, void *data);

#endif
