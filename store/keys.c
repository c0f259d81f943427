/* Builds roost's Redis key and channel names; the single place that knows
 * their spelling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/keys.h"

static char *join3(const char *a, const char *b, const char *c)
{
    if (!b)
        return NULL;
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

char *roost_key_acct(const char *bare) { return join3("roost:acct:{", bare, "}"); }
char *roost_key_sess(const char *bare)
{
    return join3(ROOST_KEY_SESS_PREFIX, bare, ROOST_KEY_SESS_SUFFIX);
}
char *roost_key_roster(const char *bare) { return join3("roost:roster:{", bare, "}"); }
char *roost_key_rosterver(const char *bare) { return join3("roost:rosterver:{", bare, "}"); }
char *roost_key_offline(const char *bare) { return join3("roost:offline:{", bare, "}"); }
char *roost_key_subin(const char *bare) { return join3("roost:subin:{", bare, "}"); }
char *roost_key_block(const char *bare) { return join3("roost:block:{", bare, "}"); }
char *roost_key_users(const char *domain) { return join3("roost:users:", domain, ""); }
char *roost_key_nodesess(const char *node_id) { return join3("roost:nodesess:", node_id, ""); }
char *roost_key_node(const char *node_id) { return join3("roost:node:", node_id, ""); }
char *roost_key_route(const char *node_id) { return join3("roost:route:", node_id, ""); }

char *roost_key_sm(const char *bare, const char *resource)
{
    if (!bare || !resource)
        return NULL;
    char *head = join3("roost:sm:{", bare, "}:");
    if (!head)
        return NULL;
    char *s = join3(head, resource, "");
    free(head);
    return s;
}
