/* String-keyed chained hash map (FNV-1a), grown at load factor 1. */
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include "node/map.h"
#include "store/error.h"

typedef struct entry_s {
    struct entry_s *next;
    void *value;
    uint32_t hash;
    char key[];
} entry_t;

struct roost_map_s {
    entry_t **buckets;
    size_t nbuckets;     /* power of two */
    size_t size;
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

roost_map_t *roost_map_new(void)
{
    roost_map_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->nbuckets = 64;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    if (m->buckets == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void roost_map_free(roost_map_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        entry_t *e = m->buckets[i];
        while (e != NULL) {
            entry_t *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    free(m);
}

static entry_t **find(const roost_map_t *m, const char *key, uint32_t h)
{
    entry_t **pp = &m->buckets[h & (m->nbuckets - 1)];
    for (; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
            return pp;
    return pp;
}

void *roost_map_get(const roost_map_t *m, const char *key)
{
    entry_t **pp = find(m, key, hash_str(key));
    return *pp != NULL ? (*pp)->value : NULL;
}

static void grow(roost_map_t *m)
{
    size_t n = m->nbuckets * 2;
    entry_t **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return;               /* stay at the old size; still correct */
    for (size_t i = 0; i < m->nbuckets; i++) {
        entry_t *e = m->buckets[i];
        while (e != NULL) {
            entry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

int roost_map_put(roost_map_t *m, const char *key, void *value)
{
    uint32_t h = hash_str(key);
    entry_t **pp = find(m, key, h);
    if (*pp != NULL) {
        (*pp)->value = value;
        return 0;
    }
    size_t klen = strlen(key);
    entry_t *e = malloc(sizeof(*e) + klen + 1);
    if (e == NULL)
        return ROOST_ENOMEM;
    memcpy(e->key, key, klen + 1);
    e->hash = h;
    e->value = value;
    e->next = NULL;
    *pp = e;
    if (++m->size > m->nbuckets)
        grow(m);
    return 0;
}

int roost_map_del(roost_map_t *m, const char *key, const void *value)
{
    entry_t **pp = find(m, key, hash_str(key));
    entry_t *e = *pp;
    if (e == NULL || (value != NULL && e->value != value))
        return 0;
    *pp = e->next;
    free(e);
    m->size--;
    return 1;
}

size_t roost_map_size(const roost_map_t *m)
{
    return m->size;
}

void roost_map_each(const roost_map_t *m, void (*fn)(const char *, void *, void *), void *data)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (entry_t *e = m->buckets[i]; e != NULL; e = e->next)
            fn(e->key, e->value, data);
}
