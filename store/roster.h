/* Rosters in Redis (RFC 6121 §2, XEP-0237 versioning): items as packed
 * roost.RosterItem under roost:roster:{u@d}, a version counter, pending
 * inbound subscription requests, and a multi-user session read for
 * presence fan-out. Item changes are compare-and-set so the subscription
 * state machine (pure C, node/) can run on any node without locks. */
#ifndef ROOST_STORE_ROSTER_H
#define ROOST_STORE_ROSTER_H

#include <stddef.h>
#include <stdint.h>

#include "store/record.h"
#include "store/store.h"

#define ROOST_ROSTER_NAME_MAX 1024     /* bytes of an item name */
#define ROOST_ROSTER_GROUPS_MAX 64     /* groups per item */
#define ROOST_ROSTER_GROUP_MAX 1024    /* bytes of a group name */

typedef enum {
    ROOST_SUB_NONE = 0,
    ROOST_SUB_TO = 1,
    ROOST_SUB_FROM = 2,
    ROOST_SUB_BOTH = 3,
} roost_sub_t;

/* A decoded roster item; strings owned, freed by roost_roster_item_clear. */
typedef struct {
    char *jid;            /* contact bare JID (prepared) */
    char *name;           /* NULL when none */
    char **groups;
    size_t n_groups;
    roost_sub_t sub;
    int ask;              /* pending-out: we asked for their presence */
    int approved;         /* pre-approved their request (RFC 6121 §3.4) */
    void *unknown;        /* unknown protobuf fields, kept verbatim */
} roost_roster_item_t;

/* Pack/unpack a roost.RosterItem (malloc'd *out). */
int roost_roster_item_encode(const roost_roster_item_t *it, uint8_t **out, size_t *len);
int roost_roster_item_decode(roost_roster_item_t *it, const uint8_t *buf, size_t len);
int roost_roster_item_copy(roost_roster_item_t *dst, const roost_roster_item_t *src);
void roost_roster_item_clear(roost_roster_item_t *it);

/* ---- reads ---- */

/* Every item and the current version (0 when the roster never changed). */
typedef void (*roost_store_roster_cb)(int status, const roost_roster_item_t *items, size_t n,
                                      uint64_t ver, void *data);
int roost_store_roster_get(roost_store_t *st, const char *bare,
                           roost_store_roster_cb cb, void *data);

/* One item (NULL when absent) and the version. */
typedef void (*roost_store_roster_item_cb)(int status, const roost_roster_item_t *item,
                                           uint64_t ver, void *data);
int roost_store_roster_item_get(roost_store_t *st, const char *bare, const char *contact,
                                roost_store_roster_item_cb cb, void *data);

/* ---- compare-and-set ---- */

/* Replaces the item for contact with next (NULL: delete it), but only if the
 * stored item is still exactly `expected` (NULL: absent), compared as packed
 * bytes. On success the version is incremented: status 0 and ver = the new
 * version. When the stored item differs: status ROOST_ECONFLICT and current
 * = what is stored now (NULL if absent), so the caller can recompute and
 * retry. Adding a new item when the roster already has max_items items:
 * ROOST_ELIMIT. */
typedef void (*roost_store_roster_cas_cb)(int status, const roost_roster_item_t *current,
                                          uint64_t ver, void *data);
int roost_store_roster_cas(roost_store_t *st, const char *bare, const char *contact,
                           const roost_roster_item_t *expected, const roost_roster_item_t *next,
                           unsigned max_items, roost_store_roster_cas_cb cb, void *data);

/* ---- pending inbound subscription requests (roost:subin:{u@d}) ---- */

/* Keeps the original <presence type='subscribe'/> (serialized) from contact
 * until answered; replaces an older one from the same contact. */
int roost_store_subin_put(roost_store_t *st, const char *bare, const char *contact,
                          const uint8_t *stanza, size_t len, size_t max_entries,
                          roost_store_status_cb cb, void *data);
int roost_store_subin_del(roost_store_t *st, const char *bare, const char *contact,
                          roost_store_status_cb cb, void *data);
/* All pending requests: contacts[i] sent stanzas[i] (lens[i] bytes). */
typedef void (*roost_store_subin_cb)(int status, const char *const *contacts,
                                     const uint8_t *const *stanzas, const size_t *lens,
                                     size_t n, void *data);
int roost_store_subin_list(roost_store_t *st, const char *bare,
                           roost_store_subin_cb cb, void *data);

/* ---- sessions of many users at once (presence fan-out, probes) ---- */

/* One round trip for the sessions of n users (n <= 1024). For user i,
 * recs + offs[i] holds counts[i] records. */
typedef void (*roost_store_sessions_multi_cb)(int status, const roost_session_t *recs,
                                              const size_t *offs, const size_t *counts,
                                              size_t n, void *data);
int roost_store_sessions_multi(roost_store_t *st, const char *const *bares, size_t n,
                               roost_store_sessions_multi_cb cb, void *data);

#endif
