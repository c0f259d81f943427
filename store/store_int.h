/* For store modules only (the store/ .c files): the generic script call on the
 * store's command link, with the same deadline and exactly-once callback
 * rules as every public call. Not for node/. */
#ifndef ROOST_STORE_INT_H
#define ROOST_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* A module's Lua script: static source; sha is filled on first use. Define
 * one as `static roost_lua_t s = { "return 1", "" };`. */
typedef struct {
    const char *text;
    char sha[41];
} roost_lua_t;

/* EVALSHA (EVAL after NOSCRIPT) of script with a[0..n) where the first
 * nkeys are keys; n <= 1100. cb gets (status, redisReply *, data). */
int roost_store_eval(roost_store_t *st, roost_lua_t *script, int nkeys, int n,
                     const char **a, const size_t *al, roost_store_reply_cb cb, void *data);

/* The cached block list stored under key (roost:block:{bare}), or NULL
 * when not cached or the cache is not live. Borrowed until control returns
 * to the loop. */
const roost_store_blocklist_t *roost_store_block_cached(roost_store_t *st, const char *key);
/* Reads key's list in the background into the cache (nothing on failure). */
void roost_store_block_fill(roost_store_t *st, const char *key);

/* roost_store_eval / roost_store_command for a write that publishes
 * inval_key on ROOST_KEY_INVAL: cb runs once this node has seen that
 * invalidation (or shortly after, at most), see store.c. */
int roost_store_eval_inval(roost_store_t *st, roost_lua_t *script, int nkeys, int n,
                           const char **a, const size_t *al, const char *inval_key,
                           roost_store_reply_cb cb, void *data);
int roost_store_command_inval(roost_store_t *st, int argc, const char **argv,
                              const size_t *argvlen, const char *inval_key,
                              roost_store_reply_cb cb, void *data);

/* Wall-clock unix milliseconds. */
uint64_t roost_store_now_ms(void);

#endif
