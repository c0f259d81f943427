/* The admin HTTP listener of a node (DESIGN §7): /healthz (the loop turns),
 * /readyz (Redis reachable, subscribed, lease held, not draining) and
 * /metrics (Prometheus text), on its own port, loopback by default.
 * Symbols are roost_admin_http_*: roost_admin_* is store/admin.h (roostctl),
 * and both land in the same test binaries. */
#ifndef ROOST_ADMIN_NODE_H
#define ROOST_ADMIN_NODE_H

#include "node/buf.h"
#include "node/cluster.h"
#include "node/server.h"

typedef struct roost_admin_http_s roost_admin_http_t;

/* What readiness is made of; 1 = good for every field but the last two. */
typedef struct {
    int redis;          /* the command link to Redis is up */
    int subscribed;     /* the node's route channel is subscribed */
    int lease;          /* the cluster lease is held and the node serves */
    int draining;       /* a drain was started (srv->draining) */
    int shutting_down;  /* SIGTERM/SIGINT: the node is on its way out */
} roost_admin_http_health_t;

/* Reads the readiness inputs of srv and cluster (cluster may be NULL:
 * then the lease counts as not held). */
void roost_admin_http_health(const roost_server_t *srv, const roost_cluster_t *cluster,
                        roost_admin_http_health_t *out);

/* The answer to one request, pure apart from reading the metrics
 * registry: appends a complete HTTP response for method and path to out.
 * GET and HEAD of /healthz, /readyz, /metrics; 405 for other methods on
 * those paths, 404 for other paths. 0 or ROOST_ENOMEM. */
int roost_admin_http_respond(const char *method, const char *path, const roost_admin_http_health_t *h,
                        roost_buf_t *out);

/* Starts the listener from srv->cfg (admin.*) on srv->loop. 0 with *out
 * set; 0 with *out NULL when admin.enabled is false; negative when it
 * could not listen (logged). cluster is borrowed: free the admin first. */
int roost_admin_http_start(roost_server_t *srv, roost_cluster_t *cluster, roost_admin_http_t **out);

/* The bound port (the kernel's pick when admin.port is 0); 0 for NULL. */
int roost_admin_http_port(const roost_admin_http_t *a);

/* Closes the listener and every admin connection; the memory goes once
 * libuv closed the handles (run the loop). NULL: no-op. */
void roost_admin_http_free(roost_admin_http_t *a);

#endif
