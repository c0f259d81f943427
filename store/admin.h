/* Synchronous Redis helpers for roostctl: accounts and sessions, blocking
 * with a timeout. Not for use inside a node's event loop. */
#ifndef ROOST_ADMIN_H
#define ROOST_ADMIN_H

#include <stddef.h>

#include "store/cluster.h"
#include "store/jid.h"
#include "store/record.h"

typedef struct roost_admin_s roost_admin_t;

/* A parsed redis://[[user]:password@]host[:port][/db] URL. */
typedef struct {
    char *host;
    int port;          /* default 6379 */
    char *user;        /* ACL user or NULL */
    char *password;    /* NULL when absent; %XX-decoded */
    int db;            /* default 0 */
} roost_redis_url_t;

/* Parses url into *out (roost_admin_url_clear frees it). ROOST_EINVAL on a
 * malformed URL, ROOST_ENOMEM. */
int roost_admin_url_parse(const char *url, roost_redis_url_t *out);
void roost_admin_url_clear(roost_redis_url_t *u);

/* Connects (AUTH, SELECT) with a connect and per-command timeout. On
 * failure returns ROOST_EIO/ROOST_EAUTH/ROOST_EREDIS/ROOST_ENOMEM and, when
 * errbuf is non-NULL, a one-line reason in errbuf. */
int roost_admin_connect(const roost_redis_url_t *u, unsigned timeout_ms,
                        roost_admin_t **out, char *errbuf, size_t errlen);
void roost_admin_free(roost_admin_t *a);

/* The reason for the last failed call on a (static until the next call). */
const char *roost_admin_error(const roost_admin_t *a);

/* Creates the account jid->bare (needs a localpart) with SHA-1 and SHA-256
 * SCRAM credentials. ROOST_ECONFLICT when it exists. */
int roost_admin_user_add(roost_admin_t *a, const roost_jid_t *jid,
                         const char *password, size_t plen);

/* Replaces the credentials; ROOST_ENOTFOUND when there is no account. */
int roost_admin_user_passwd(roost_admin_t *a, const roost_jid_t *jid,
                            const char *password, size_t plen);

/* Kicks every session of the account (stream error not-authorized), then
 * deletes the account and its per-user data. ROOST_ENOTFOUND when absent. */
int roost_admin_user_del(roost_admin_t *a, const roost_jid_t *jid);

/* Sorted bare JIDs of domain's accounts, or of every domain when domain is
 * NULL. *out is a malloc'd vector (roost_admin_strv_free). */
int roost_admin_user_list(roost_admin_t *a, const char *domain, char ***out, size_t *n);
void roost_admin_strv_free(char **v, size_t n);

typedef struct {
    char *bare;
    roost_session_t rec;   /* rec.resource is set */
} roost_admin_session_t;

/* Sessions of one bare JID, or of everyone when bare is NULL (SCAN: admin
 * only). Sorted by full JID; malformed records are skipped. */
int roost_admin_session_list(roost_admin_t *a, const char *bare,
                             roost_admin_session_t **out, size_t *n);
void roost_admin_sessions_free(roost_admin_session_t *s, size_t n);

/* Sends a KICK envelope (stream error condition) to the node holding
 * bare/resource. When no node listens (it is gone), removes the stale record
 * itself. ROOST_ENOTFOUND when there is no such session. */
int roost_admin_session_kick(roost_admin_t *a, const char *bare, const char *resource,
                             const char *condition);

/* One member of roost:nodes. */
typedef struct {
    char node_id[ROOST_NODE_ID_MAX + 1];
    int alive;                   /* the lease key exists */
    roost_cluster_lease_t lease; /* parsed lease; when gone only .epoch (last issued) */
    long long ttl_ms;            /* PTTL of the lease (< 0: gone) */
    uint64_t heartbeat_ms;       /* unix ms of the last renewal (roost:nodes score) */
    long long sessions;          /* SCARD roost:nodesess:<id> */
} roost_admin_node_t;

/* The cluster's nodes (at most ROOST_CLUSTER_LIST_MAX), ordered by id.
 * *out is malloc'd (free()). */
int roost_admin_node_list(roost_admin_t *a, roost_admin_node_t **out, size_t *n);

/* PUBLISHes a DRAIN envelope to roost:route:<node_id>; *receivers is
 * PUBLISH's answer (0: no node listens on that channel). ROOST_EINVAL for
 * a malformed node id. */
int roost_admin_node_drain(roost_admin_t *a, const char *node_id, long long *receivers);

/* A name with a count. */
typedef struct {
    char *name;
    long long count;
} roost_admin_count_t;

/* Accounts per domain (SCARD of roost:users:<domain> for each domain in
 * roost:domains: no SCAN). *out is malloc'd (roost_admin_counts_free). */
int roost_admin_account_counts(roost_admin_t *a, roost_admin_count_t **out, size_t *n);
void roost_admin_counts_free(roost_admin_count_t *v, size_t n);

#endif
