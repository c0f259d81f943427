/* Redis key and channel names of roost (DESIGN §2). All per-user keys carry
 * the hash tag {local@domain} so one user's keys share a cluster slot. */
#ifndef ROOST_KEYS_H
#define ROOST_KEYS_H

#define ROOST_KEY_EPOCH   "roost:epoch"    /* string counter: node epochs */
#define ROOST_KEY_NODES   "roost:nodes"    /* zset node id -> ms heartbeat */
#define ROOST_KEY_DOMAINS "roost:domains"  /* set of domains with accounts */
/* Channel every node subscribes to: a writer of a cached key (a session
 * hash, a block list) publishes the key's name there after the write
 * ("key" or "key|node:seq", the writer's token), or ROOST_INVAL_ALL when it
 * changed many (store/cache.h). */
#define ROOST_KEY_INVAL   "roost:inval"
#define ROOST_INVAL_ALL   "*"

/* Each builder returns a malloc'd NUL-terminated name (caller frees) or NULL
 * when out of memory or an argument is NULL. bare is a prepared
 * "local@domain"; node_id a node identifier. */
char *roost_key_acct(const char *bare);          /* roost:acct:{bare} */
char *roost_key_sess(const char *bare);          /* roost:sess:{bare} */
char *roost_key_roster(const char *bare);        /* roost:roster:{bare} */
char *roost_key_rosterver(const char *bare);     /* roost:rosterver:{bare} */
char *roost_key_offline(const char *bare);       /* roost:offline:{bare} */
char *roost_key_subin(const char *bare);         /* roost:subin:{bare} */
char *roost_key_block(const char *bare);         /* roost:block:{bare} */
char *roost_key_sm(const char *bare, const char *resource); /* roost:sm:{bare}:res */
char *roost_key_users(const char *domain);       /* roost:users:<domain> */
char *roost_key_nodesess(const char *node_id);   /* roost:nodesess:<id> */
char *roost_key_node(const char *node_id);       /* roost:node:<id> */
char *roost_key_route(const char *node_id);      /* channel roost:route:<id> */

/* The literal pieces around the bare JID in roost:sess:{bare}; the cleanup
 * script rebuilds session keys from full JIDs with them. */
#define ROOST_KEY_SESS_PREFIX "roost:sess:{"
#define ROOST_KEY_SESS_SUFFIX "}"

/* Hash fields of roost:acct:{bare}. */
#define ROOST_ACCT_F_META   "meta"    /* packed roost.Account */
#define ROOST_ACCT_F_SHA1   "sha1"    /* packed roost.ScramCred */
#define ROOST_ACCT_F_SHA256 "sha256"

#endif
