/* The XEP-0191 blocking check in one Redis round trip: does the sender's
 * block list hold the recipient, or the recipient's list hold the sender?
 * Also the pure list of strings a block-list item must equal to match a JID. */
#ifndef ROOST_STORE_BLOCKCHECK_H
#define ROOST_STORE_BLOCKCHECK_H

#include <stddef.h>

#include "store/jid.h"
#include "store/store.h"

#define ROOST_BLOCKCHECK_CAND_MAX 4

/* The item strings that match a JID (XEP-0016 §2.1 JID rules, which
 * XEP-0191 uses): its full JID, its bare JID, its domain and
 * "domain/resource", without repeats. s[] points into the JID or into
 * owned; valid while both live. */
typedef struct {
    const char *s[ROOST_BLOCKCHECK_CAND_MAX];
    size_t n;
    char *owned;    /* "domain/resource" when built; freed by _clear */
} roost_blockcheck_cand_t;

/* Fills *c for jid (a prepared JID with at least domain, bare and full).
 * 0, ROOST_EINVAL or ROOST_ENOMEM (then *c is empty). */
int roost_store_blockcheck_candidates(const roost_jid_t *jid, roost_blockcheck_cand_t *c);
void roost_store_blockcheck_cand_clear(roost_blockcheck_cand_t *c);

/* verdict: 0 none, 1 the sender's list matches the recipient, 2 the
 * recipient's list matches the sender (1 wins when both hold). */
#define ROOST_BLOCKCHECK_NONE 0
#define ROOST_BLOCKCHECK_BY_SENDER 1
#define ROOST_BLOCKCHECK_BY_RECIPIENT 2
typedef void (*roost_store_blockcheck_cb)(int status, int verdict, void *data);

/* One script over roost:block:{sender bare} and roost:block:{recipient
 * bare}; absent lists block nothing. Both JIDs must have a local part. cb
 * runs exactly once, never before this returns (store rules).
 * Note: the two keys carry different hash tags, so under Redis Cluster
 * both users must map to one slot, else the call fails (status < 0). */
int roost_store_blockcheck(roost_store_t *st, const roost_jid_t *sender,
                           const roost_jid_t *recipient, roost_store_blockcheck_cb cb,
                           void *data);

/* The same verdict from the node's block-list cache (store/cache.h),
 * without Redis: 1 and *verdict when both lists are cached, else 0 (and a
 * background read of the missing lists starts, for the next stanza). */
int roost_store_blockcheck_cached(roost_store_t *st, const roost_jid_t *sender,
                                  const roost_jid_t *recipient, int *verdict);

/* Presence fan-out filter: for each contact bares[i] (n <= 4096), blocked[i]
 * = 1 when user's list matches the contact (its bare JID or domain) or the
 * contact's list matches user (any of user's candidates), else 0. Pipelined
 * scripts of at most 256 contacts each; cb runs once with every answer.
 * On a store error status < 0 (callers then send: a broken store must not
 * silence presence). */
typedef void (*roost_store_block_filter_cb)(int status, const unsigned char *blocked, size_t n,
                                            void *data);
int roost_store_block_filter(roost_store_t *st, const roost_jid_t *user,
                             const char *const *bares, size_t n,
                             roost_store_block_filter_cb cb, void *data);

#endif
