/* Session records as stored in roost:sess:{u@d}: a plain-text header the Lua
 * scripts can read, then the protobuf SessionRecord. Pure codec. */
#ifndef ROOST_RECORD_H
#define ROOST_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define ROOST_SESS_F_AVAILABLE  0x1u  /* sent available presence */
#define ROOST_SESS_F_INTERESTED 0x2u  /* fetched the roster */
#define ROOST_SESS_F_CARBONS    0x4u
#define ROOST_SESS_F_CSI_IDLE   0x8u
/* Stanzas for this resource go through its queue in Redis (store/sm.h):
 * stream management with resumption, or a drain's grace window. */
#define ROOST_SESS_F_SM         0x10u

#define ROOST_NODE_ID_MAX 64

/* Bounds enforced by encode and decode (a stored value is peer data). */
#define ROOST_SESS_VALUE_MAX    (256u * 1024u) /* whole stored value */
#define ROOST_SESS_DIRECTED_MAX 1000u          /* directed-presence JIDs */
#define ROOST_SESS_JID_MAX      3071u          /* bytes of one full JID */

/* A decoded session record. Strings and buffers are owned by the struct and
 * freed by roost_session_clear(). */
typedef struct {
    char *resource;            /* the hash field; not part of the value */
    char node_id[ROOST_NODE_ID_MAX + 1];
    uint64_t node_epoch;
    uint64_t conn_id;
    int32_t priority;
    uint32_t flags;            /* ROOST_SESS_F_* */
    uint8_t *presence;         /* serialized last available presence or NULL */
    size_t presence_len;
    char **directed;           /* full JIDs that received directed presence */
    size_t n_directed;
    char *sm_id;               /* NULL when no stream management */
    uint64_t bind_time;        /* unix ms */
    /* Unknown protobuf fields from a newer writer, kept verbatim so a
     * read-modify-write does not drop them. Opaque to callers. */
    void *unknown;
} roost_session_t;

/* Value layout: "<avail>,<priority>,<epoch>,<conn_id>,<node_id>\n" + protobuf.
 * avail is 0/1, priority a signed decimal. Encodes *s into a malloc'd buffer
 * (*out, *out_len). 0 or ROOST_ENOMEM/ROOST_EINVAL. */
int roost_session_encode(const roost_session_t *s, uint8_t **out, size_t *out_len);

/* Decodes a stored value; s->resource is set from resource (may be NULL).
 * ROOST_EINVAL on a malformed value. */
int roost_session_decode(roost_session_t *s, const char *resource,
                         const uint8_t *val, size_t len);

/* Deep copy (including unknown fields). */
int roost_session_copy(roost_session_t *dst, const roost_session_t *src);

void roost_session_clear(roost_session_t *s);

/* 1 when id is a usable node id: 1..ROOST_NODE_ID_MAX printable ASCII bytes,
 * no space and no ',' (the header separator); else 0. */
int roost_session_node_id_valid(const char *id);

#endif
