/* Bare-JID message delivery rules of RFC 6121 §8.5.2.1. */
#include <string.h>

#include "node/route.h"

roost_msg_type_t roost_route_msg_type(const char *type)
{
    if (type == NULL)
        return ROOST_MSG_NORMAL;
    if (strcmp(type, "chat") == 0)
        return ROOST_MSG_CHAT;
    if (strcmp(type, "headline") == 0)
        return ROOST_MSG_HEADLINE;
    if (strcmp(type, "groupchat") == 0)
        return ROOST_MSG_GROUPCHAT;
    if (strcmp(type, "error") == 0)
        return ROOST_MSG_ERROR;
    return ROOST_MSG_NORMAL;
}

static int available(const roost_session_t *r)
{
    return (r->flags & ROOST_SESS_F_AVAILABLE) != 0;
}

size_t roost_route_bare_message(const roost_session_t *recs, size_t n,
                                roost_msg_type_t type, size_t *idx)
{
    size_t k = 0;
    if (type == ROOST_MSG_GROUPCHAT || type == ROOST_MSG_ERROR)
        return 0;
    if (type == ROOST_MSG_HEADLINE) {
        for (size_t i = 0; i < n; i++)
            if (available(&recs[i]) && recs[i].priority >= 0)
                idx[k++] = i;
        return k;
    }
    int32_t best = -1;
    for (size_t i = 0; i < n; i++)
        if (available(&recs[i]) && recs[i].priority > best)
            best = recs[i].priority;
    if (best < 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (available(&recs[i]) && recs[i].priority == best)
            idx[k++] = i;
    return k;
}

size_t roost_route_available(const roost_session_t *recs, size_t n, size_t *idx)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (available(&recs[i]))
            idx[k++] = i;
    return k;
}
