/* Offline messages (XEP-0160) in roost:offline:{u@d}: a capped list of
 * serialized message stanzas, each with the unix ms it was stored. */
#ifndef ROOST_STORE_OFFLINE_H
#define ROOST_STORE_OFFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Appends one stanza. When the list already holds max messages, nothing is
 * stored and status is ROOST_ELIMIT (the caller bounces the message: the
 * documented overflow policy is "refuse new", never drop old silently). */
int roost_store_offline_push(roost_store_t *st, const char *bare, const uint8_t *stanza,
                             size_t len, uint64_t stamp_ms, size_t max,
                             roost_store_status_cb cb, void *data);

/* Atomically takes (reads and deletes) every stored message, oldest first. */
typedef void (*roost_store_offline_cb)(int status, const uint8_t *const *stanzas,
                                       const size_t *lens, const uint64_t *stamps,
                                       size_t n, void *data);
int roost_store_offline_take(roost_store_t *st, const char *bare,
                             roost_store_offline_cb cb, void *data);

/* How many are stored. */
typedef void (*roost_store_count_cb)(int status, long long count, void *data);
int roost_store_offline_count(roost_store_t *st, const char *bare,
                              roost_store_count_cb cb, void *data);

#endif
