/* The node's shared context: loop, config, store, the table of locally
 * bound sessions, and this node's identity. One per process. */
#ifndef ROOST_SERVER_H
#define ROOST_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "node/config.h"
#include "node/conn.h"
#include "node/map.h"
#include "store/record.h"
#include "store/store.h"

typedef struct roost_c2s_s roost_c2s_t;

typedef struct roost_server_s {
    uv_loop_t *loop;
    roost_config_t *cfg;
    roost_store_t *store;
    roost_map_t *sessions;          /* full JID -> bound local roost_c2s_t */
    char node_id[ROOST_NODE_ID_MAX + 1];
    uint64_t next_conn_id;
    roost_c2s_t *conns;             /* every live c2s, for shutdown */
    size_t n_conns;
    size_t pending_ops;             /* store calls that must finish before exit */
    int shutting_down;
    int draining;                   /* drain started: not ready, no new clients */
    roost_conn_limits_t conn_limits;
    /* Per-client-address limits and tarpit (node/iptable.h); NULL: none. */
    struct roost_iptable_s *ips;
    /* TLS context for new connections (NULL: no certificate configured).
     * Replaced on SIGHUP; connections keep a reference to their own. */
    struct ssl_ctx_st *tls_ctx;
    void (*on_idle)(struct roost_server_s *srv);  /* shutdown progress hook */
    void (*on_drain)(struct roost_server_s *srv); /* a DRAIN envelope arrived */
    /* A dead node's session (or an earlier epoch's of this node) was reaped
     * from Redis (node/cluster.c); NULL: nothing more to do. Arguments are
     * borrowed for the call. */
    void (*on_session_reaped)(struct roost_server_s *srv, const char *bare, const char *full,
                              const roost_session_t *rec);
} roost_server_t;

/* Called when n_conns or pending_ops drops, to let shutdown proceed. */
void roost_server_check_idle(roost_server_t *srv);

#endif
