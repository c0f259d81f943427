/* Blocking command (XEP-0191) lists in roost:block:{u@d}: a set of JIDs
 * (bare, full or domain, as the user gave them, prepared). */
#ifndef ROOST_STORE_BLOCKLIST_H
#define ROOST_STORE_BLOCKLIST_H

#include <stddef.h>

#include "store/store.h"

typedef void (*roost_store_blocklist_cb)(int status, const char *const *jids, size_t n,
                                         void *data);
int roost_store_blocklist_get(roost_store_t *st, const char *bare,
                              roost_store_blocklist_cb cb, void *data);

/* Most jids one add takes (one script call); more: ROOST_EINVAL. */
#define ROOST_BLOCKLIST_ADD_MAX 1024

/* Adds jids (n >= 1); ROOST_ELIMIT when the list would exceed max. */
int roost_store_blocklist_add(roost_store_t *st, const char *bare, const char *const *jids,
                              size_t n, size_t max, roost_store_status_cb cb, void *data);

/* Removes jids; n == 0 clears the whole list. */
int roost_store_blocklist_remove(roost_store_t *st, const char *bare, const char *const *jids,
                                 size_t n, roost_store_status_cb cb, void *data);

#endif
