/* The Lua scripts of the store (atomic multi-key steps, DESIGN §2) and their
 * SHA-1 names for EVALSHA. Texts are constants; SHAs are computed locally so
 * a call can be formed before SCRIPT LOAD has answered. */
#ifndef ROOST_SCRIPTS_H
#define ROOST_SCRIPTS_H

typedef enum {
    /* KEYS sess, nodesess, roost:node:<owner>; ARGV resource, value,
     * max_resources (0: no limit), full_jid, owner epoch. Returns the
     * previous value, nil, -1 (limit) or -2 (owner's lease not held). */
    ROOST_SCRIPT_BIND,
    /* KEYS sess, roost:node:<node_id>; ARGV resource, node_id, epoch,
     * conn_id, value. 1 replaced, 0 not owned (stale), -2 lease not held. */
    ROOST_SCRIPT_UPDATE,
    /* KEYS sess, nodesess; ARGV resource, node_id, epoch, conn_id, full_jid.
     * 1 deleted, 0 not owned or absent. */
    ROOST_SCRIPT_UNBIND,
    /* KEYS nodesess; ARGV node_id, epoch, sess key prefix, sess key suffix.
     * Returns how many records were removed. */
    ROOST_SCRIPT_CLEANUP,
    /* KEYS roost:epoch, roost:nodes, roost:node:<id>, roost:nodeepochs;
     * ARGV node_id, now_ms, lease_ms. Returns the new epoch. */
    ROOST_SCRIPT_REGISTER,
    /* Admin. KEYS acct, users:<domain>, roost:domains; ARGV meta, sha1,
     * sha256, localpart, domain. 1 created, 0 exists. */
    ROOST_SCRIPT_USER_ADD,
    /* Admin. KEYS acct; ARGV sha1, sha256. 1 updated, 0 no such account. */
    ROOST_SCRIPT_USER_PASSWD,
    ROOST_SCRIPT_COUNT
} roost_script_id_t;

#define ROOST_SCRIPT_SHA_LEN 40

/* The Lua source of script id (static storage), or NULL for a bad id. */
const char *roost_script_text(roost_script_id_t id);

/* Writes the lowercase hex SHA-1 of the script (what SCRIPT LOAD returns)
 * and a NUL into out. 0, or ROOST_EINVAL for a bad id. */
int roost_script_sha(roost_script_id_t id, char out[ROOST_SCRIPT_SHA_LEN + 1]);

#endif
