/* Pure routing decisions (RFC 6121 §8.5): which resources of an account
 * receive a stanza. No I/O; fed session records, returns indices. */
#ifndef ROOST_ROUTE_H
#define ROOST_ROUTE_H

#include <stddef.h>
#include "store/record.h"

typedef enum {
    ROOST_MSG_NORMAL,
    ROOST_MSG_CHAT,
    ROOST_MSG_HEADLINE,
    ROOST_MSG_GROUPCHAT,
    ROOST_MSG_ERROR,
} roost_msg_type_t;

/* Message type from its 'type' attribute; absent or unknown is normal
 * (RFC 6121 §5.2.2). */
roost_msg_type_t roost_route_msg_type(const char *type);

/* For a message of type to a bare JID with sessions recs[0..n): fills idx
 * with the chosen records and returns how many. normal/chat: every available
 * resource sharing the highest non-negative priority; headline: every
 * available resource with non-negative priority; groupchat/error: none.
 * idx must hold n entries. */
size_t roost_route_bare_message(const roost_session_t *recs, size_t n,
                                roost_msg_type_t type, size_t *idx);

/* Available resources (any priority), e.g. for directed presence to a bare
 * JID. */
size_t roost_route_available(const roost_session_t *recs, size_t n, size_t *idx);

#endif
