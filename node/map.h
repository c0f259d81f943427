/* A string-keyed hash map (chained, power-of-two buckets) for the node's
 * local tables: full JID -> session. Keys are copied; values are borrowed. */
#ifndef ROOST_MAP_H
#define ROOST_MAP_H

#include <stddef.h>

typedef struct roost_map_s roost_map_t;

roost_map_t *roost_map_new(void);
void roost_map_free(roost_map_t *m);        /* values are not freed */

void *roost_map_get(const roost_map_t *m, const char *key);
/* Inserts or replaces; 0 or ROOST_ENOMEM. */
int roost_map_put(roost_map_t *m, const char *key, void *value);
/* Removes key only when it maps to value (value NULL: whatever it maps to).
 * Returns 1 when removed. */
int roost_map_del(roost_map_t *m, const char *key, const void *value);
size_t roost_map_size(const roost_map_t *m);

/* Calls fn for every entry; fn must not change the map. */
void roost_map_each(const roost_map_t *m, void (*fn)(const char *key, void *value, void *data),
                    void *data);

#endif
