/* Stream-management state in Redis (XEP-0198, DESIGN §5): the counters and
 * the unacked outbound queue of a resumable session, so that a client can
 * resume on any node, also after its node died. Also used for the drain's
 * grace window: a session with a queue but no resumption id.
 *
 * Keys (all with the user's hash tag):
 *   roost:sm:{u@d}:<res>   hash: id (empty for a grace session), node,
 *                          epoch, conn (owner), hin (stanzas handled from
 *                          the client), seq (last stanza number queued to
 *                          it), tmo (resumption timeout ms), det (1 while
 *                          detached: no connection), dl (deadline, ms)
 *   roost:smq:{u@d}:<res>  zset: score seq, member "<seq> <stanza bytes>":
 *                          every stanza for the session not yet acked
 *                          gone (1: ended; the hash is a tombstone with a
 *                          TTL, kept so a late resumption learns h)
 *   roost:smdeadline       zset: "u@d/res" -> deadline ms of each detached
 *                          session (global: single Redis, like the reaper)
 * Every stanza for a session with this state is numbered and queued here
 * *before* it is published to the owner node, in one script: the owner
 * writes stanzas to the socket in that order, so stanza n of the queue is
 * the n-th the client counts. */
#ifndef ROOST_STORE_SM_H
#define ROOST_STORE_SM_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define ROOST_KEY_SMDEADLINE "roost:smdeadline"
#define ROOST_SM_ID_MAX 2200        /* bytes of an SM id (it carries the resource) */
#define ROOST_SM_QUEUE_MAX 100000u  /* hard bound on entries one reply returns */
#define ROOST_SM_STANZA_MAX (1024u * 1024u)

/* Protobuf field number of RouteEnvelope.sm_seq: the push script appends
 * it to the envelope it publishes (a varint field appended to a message
 * overrides any earlier value). */
#define ROOST_SM_SEQ_FIELD 12

/* One queued stanza; bytes borrowed from the reply. */
typedef struct {
    uint64_t seq;
    const uint8_t *bytes;
    size_t len;
} roost_sm_entry_t;

/* Creates (or replaces) the state of bare/resource, owned by this node and
 * conn_id, with resumption timeout timeout_ms, and empties its queue. id
 * "" makes a grace session (not resumable). Fenced by this node's lease:
 * ROOST_ESTALE. */
int roost_store_sm_enable(roost_store_t *st, const char *bare, const char *resource,
                          const char *id, uint64_t conn_id, unsigned timeout_ms,
                          roost_store_status_cb cb, void *data);

/* Drain (DESIGN §7): the session of conn_id, not resumable, is kept for
 * grace_ms as a detached state with a queue, and its session value is
 * replaced by new_rec (which carries ROOST_SESS_F_SM, so senders queue).
 * If the same full JID binds again in time it gets the queue. status 0,
 * ROOST_ESTALE (not that conn's record, or the lease does not hold). */
int roost_store_sm_grace(roost_store_t *st, const char *bare, const char *resource,
                         uint64_t conn_id, unsigned grace_ms, const uint8_t *new_rec,
                         size_t new_len, roost_store_status_cb cb, void *data);

/* seq: the number the stanza got; receivers: PUBLISH's answer (0 when the
 * session is detached: nothing was published). status ROOST_ENOTFOUND: no
 * such state (nothing queued: deliver some other way); ROOST_ELIMIT: the
 * queue already holds cap stanzas (nothing queued). */
typedef void (*roost_store_sm_push_cb)(int status, uint64_t seq, long long receivers, void *data);

/* Queues stanza (the bytes exactly as the client must get them) and, while
 * the session is attached, publishes env (a packed RouteEnvelope; the
 * script appends sm_seq) to the owner node's channel. */
int roost_store_sm_push(roost_store_t *st, const char *bare, const char *resource,
                        const uint8_t *stanza, size_t len, const uint8_t *env, size_t env_len,
                        unsigned cap, roost_store_sm_push_cb cb, void *data);

/* The client acknowledged every stanza up to h: drops them from the queue. */
int roost_store_sm_ack(roost_store_t *st, const char *bare, const char *resource, uint64_t h,
                       roost_store_status_cb cb, void *data);

/* Records h_in (stanzas handled from the client) if (this node, conn_id)
 * still owns the state; status 0 either way. */
int roost_store_sm_save_h(roost_store_t *st, const char *bare, const char *resource,
                          uint64_t conn_id, uint64_t h_in, roost_store_status_cb cb, void *data);

/* The connection conn_id of this node is gone: marks the state detached
 * until now + its timeout (stanzas keep being queued) and records h_in.
 * status 0 detached, ROOST_ESTALE: not ours (any more); nothing done. */
int roost_store_sm_detach(roost_store_t *st, const char *bare, const char *resource,
                          uint64_t conn_id, uint64_t h_in, roost_store_status_cb cb, void *data);

typedef void (*roost_store_sm_entries_cb)(int status, const roost_sm_entry_t *e, size_t n,
                                          void *data);

/* Deletes the state and its queue and returns what was still queued,
 * oldest first. With conn_id != 0 only if (this node, conn_id) owns it
 * (else ROOST_ESTALE, nothing done); conn_id 0: whoever owns it (a new
 * bind of the same full JID takes the queue over). No state: status 0, n 0. */
int roost_store_sm_end(roost_store_t *st, const char *bare, const char *resource,
                       uint64_t conn_id, roost_store_sm_entries_cb cb, void *data);

/* Queued stanzas with seq >= from (at most ROOST_SM_QUEUE_MAX), oldest
 * first: to fill a gap in the published sequence. */
int roost_store_sm_range(roost_store_t *st, const char *bare, const char *resource,
                         uint64_t from, roost_store_sm_entries_cb cb, void *data);

/* A state as read by roost_store_sm_get. */
typedef struct {
    char id[ROOST_SM_ID_MAX + 1];
    char node[ROOST_NODE_ID_MAX + 1];
    uint64_t conn_id;
    uint64_t h_in;
    uint64_t seq;
    int detached;
    int gone;                    /* ended: a tombstone that only keeps h_in */
} roost_sm_state_t;

/* sm NULL when there is no state; rec/rec_len the stored session value of
 * that resource (NULL when absent). Both borrowed for the callback. */
typedef void (*roost_store_sm_get_cb)(int status, const roost_sm_state_t *sm,
                                      const uint8_t *rec, size_t rec_len, void *data);
int roost_store_sm_get(roost_store_t *st, const char *bare, const char *resource,
                       roost_store_sm_get_cb cb, void *data);

/* What a resumption took over. */
typedef struct {
    uint64_t h_in;               /* stanzas of the client handled so far */
    const char *old_node;        /* previous owner (may be this node) */
    uint64_t old_conn;
    uint64_t seq;                /* last number queued */
    const roost_sm_entry_t *e;   /* still unacked after h, oldest first */
    size_t n;
} roost_sm_takeover_t;

/* status 0 with t (borrowed); ROOST_ENOTFOUND: no resumable state with id;
 * ROOST_ECONFLICT: the session value is no longer old_rec (read again);
 * ROOST_ESTALE: this node's lease does not hold. */
typedef void (*roost_store_sm_takeover_cb)(int status, const roost_sm_takeover_t *t, void *data);

/* Resumption (atomic): if the state of bare/resource has id id and the
 * stored session value is still old_rec, replaces it with new_rec (owned by
 * this node and conn_id), makes this node and conn_id the owner of the
 * state, attached, drops the stanzas up to h the client has and returns
 * the rest. */
int roost_store_sm_takeover(roost_store_t *st, const char *bare, const char *resource,
                            const char *id, uint64_t h, const uint8_t *old_rec, size_t old_len,
                            const uint8_t *new_rec, size_t new_len, uint64_t conn_id,
                            roost_store_sm_takeover_cb cb, void *data);

/* One expired session: its state, queue and (when still the state's)
 * session record were deleted. rec is the stored session value or NULL. */
typedef struct {
    const char *bare;
    const char *full;
    const uint8_t *rec;
    size_t rec_len;
    const roost_sm_entry_t *e;
    size_t n;
} roost_sm_expired_t;

typedef void (*roost_store_sm_expired_cb)(int status, const roost_sm_expired_t *x, size_t n,
                                          void *data);

/* Takes (atomically, so exactly one node handles each) at most max
 * detached sessions whose deadline passed. */
int roost_store_sm_expire(roost_store_t *st, unsigned max, roost_store_sm_expired_cb cb,
                          void *data);

/* Key of the queue, roost:smq:{bare}:res (malloc'd; NULL on ENOMEM). */
char *roost_key_smq(const char *bare, const char *resource);

#endif
