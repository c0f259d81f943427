/* The invalidated read cache (store/cache.h): a chained hash of keys with an
 * insertion-ordered list for eviction, and generation counters per hash
 * slot for tickets. */
#include "store/cache.h"

#include <stdlib.h>
#include <string.h>

#define GEN_SLOTS 16384u    /* ticket granularity: keys sharing a slot share staleness */

typedef struct entry_s {
    struct entry_s *chain;           /* bucket */
    struct entry_s *older, *newer;   /* insertion order */
    uint32_t hash;
    uint64_t expires;
    void *value;
    char key[];
} entry_t;

struct roost_cache_s {
    entry_t **buckets;
    size_t nbuckets;                 /* power of two */
    size_t size, max;
    uint64_t ttl;
    roost_cache_free_fn free_fn;
    entry_t *oldest, *newest;
    uint64_t counter;                /* last generation handed out */
    uint64_t cleared;                /* generation of the last clear */
    uint64_t gen[GEN_SLOTS];         /* generation of the last invalidation per slot */
};

static uint32_t hash_key(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

roost_cache_t *roost_cache_new(size_t max_entries, uint64_t ttl_ms, roost_cache_free_fn free_fn)
{
    roost_cache_t *c;
    size_t nb = 64;

    if (max_entries == 0 || free_fn == NULL)
        return NULL;
    while (nb < max_entries && nb < ((size_t)1 << 24))
        nb *= 2;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->buckets = calloc(nb, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    c->nbuckets = nb;
    c->max = max_entries;
    c->ttl = ttl_ms;
    c->free_fn = free_fn;
    return c;
}

static entry_t **find_slot(roost_cache_t *c, const char *key, uint32_t h)
{
    entry_t **pp = &c->buckets[h & (c->nbuckets - 1)];

    while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->chain;
    return pp;
}

static void list_unlink(roost_cache_t *c, entry_t *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    e->older = e->newer = NULL;
}

static void list_append(roost_cache_t *c, entry_t *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
}

/* Removes the entry *pp points at. */
static void drop_at(roost_cache_t *c, entry_t **pp)
{
    entry_t *e = *pp;

    *pp = e->chain;
    list_unlink(c, e);
    c->free_fn(e->value);
    free(e);
    c->size--;
}

void roost_cache_free(roost_cache_t *c)
{
    if (c == NULL)
        return;
    roost_cache_clear(c);
    free(c->buckets);
    free(c);
}

void *roost_cache_get(roost_cache_t *c, const char *key, uint64_t now_ms)
{
    uint32_t h;
    entry_t **pp;

    if (c == NULL || key == NULL)
        return NULL;
    h = hash_key(key);
    pp = find_slot(c, key, h);
    if (*pp == NULL)
        return NULL;
    if (now_ms >= (*pp)->expires) {
        drop_at(c, pp);
        return NULL;
    }
    return (*pp)->value;
}

uint64_t roost_cache_ticket(const roost_cache_t *c, const char *key)
{
    (void)key;
    return c != NULL ? c->counter : 0;
}

int roost_cache_put(roost_cache_t *c, const char *key, uint64_t ticket, uint64_t now_ms,
                    void *value)
{
    uint32_t h;
    entry_t **pp, *e;
    size_t kl;

    if (c == NULL || key == NULL)
        return 0;
    h = hash_key(key);
    /* Something about this key (or everything) changed after the read. */
    if (c->cleared > ticket || c->gen[h % GEN_SLOTS] > ticket) {
        c->free_fn(value);
        return 0;
    }
    pp = find_slot(c, key, h);
    if (*pp != NULL)
        drop_at(c, pp);
    kl = strlen(key);
    e = malloc(sizeof(*e) + kl + 1);
    if (e == NULL) {
        c->free_fn(value);
        return 0;
    }
    memcpy(e->key, key, kl + 1);
    e->hash = h;
    e->expires = now_ms + c->ttl;
    e->value = value;
    pp = &c->buckets[h & (c->nbuckets - 1)];
    e->chain = *pp;
    *pp = e;
    list_append(c, e);
    c->size++;
    while (c->size > c->max && c->oldest != NULL) {
        entry_t *old = c->oldest;
        drop_at(c, find_slot(c, old->key, old->hash));
    }
    return 1;
}

void roost_cache_invalidate(roost_cache_t *c, const char *key)
{
    uint32_t h;
    entry_t **pp;

    if (c == NULL || key == NULL)
        return;
    h = hash_key(key);
    c->gen[h % GEN_SLOTS] = ++c->counter;
    pp = find_slot(c, key, h);
    if (*pp != NULL)
        drop_at(c, pp);
}

void roost_cache_clear(roost_cache_t *c)
{
    if (c == NULL)
        return;
    c->cleared = ++c->counter;
    while (c->oldest != NULL) {
        entry_t *e = c->oldest;
        drop_at(c, find_slot(c, e->key, e->hash));
    }
}

size_t roost_cache_size(const roost_cache_t *c)
{
    return c != NULL ? c->size : 0;
}
