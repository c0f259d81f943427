/* A node-local read cache for small per-user Redis values (a user's session
 * hash, a block list), kept correct by invalidation: every writer publishes
 * the key it changed on ROOST_KEY_INVAL, and a value read before an
 * invalidation of its key arrived is never stored (tickets). Entries also
 * expire after a TTL, a bound for any writer that does not publish. Pure:
 * no I/O, time is passed in. */
#ifndef ROOST_CACHE_H
#define ROOST_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct roost_cache_s roost_cache_t;

/* Frees one stored value. */
typedef void (*roost_cache_free_fn)(void *value);

/* At most max_entries keys (the oldest goes first), each for ttl_ms. NULL
 * on ENOMEM. */
roost_cache_t *roost_cache_new(size_t max_entries, uint64_t ttl_ms, roost_cache_free_fn free_fn);
void roost_cache_free(roost_cache_t *c);

/* The value for key while fresh at now_ms, else NULL. Borrowed: valid until
 * the next put, invalidate or clear on this cache. */
void *roost_cache_get(roost_cache_t *c, const char *key, uint64_t now_ms);

/* Taken before the read whose result may be put: a put with a ticket older
 * than an invalidation of that key (or a clear) is refused. */
uint64_t roost_cache_ticket(const roost_cache_t *c, const char *key);

/* Stores value (ownership passes to the cache in every case: a refused or
 * failed put frees it). Returns 1 when stored. */
int roost_cache_put(roost_cache_t *c, const char *key, uint64_t ticket, uint64_t now_ms,
                    void *value);

/* Drops key (also makes older tickets for it stale). */
void roost_cache_invalidate(roost_cache_t *c, const char *key);
/* Drops everything and makes every older ticket stale. */
void roost_cache_clear(roost_cache_t *c);

size_t roost_cache_size(const roost_cache_t *c);

#endif
