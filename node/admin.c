/* The admin HTTP listener: one request per connection (answered with
 * Connection: close), read through node/http.c within a size cap and a
 * deadline, on the node's loop. After the answer the socket is shut down
 * and drained briefly before it closes, so a client that sent more than
 * was read (an oversized request) still gets the answer instead of a RST. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/admin.h"
#include "node/http.h"
#include "node/log.h"
#include "node/metrics.h"
#include "node/stats.h"
#include "store/error.h"
#include "store/store.h"

#define REQUEST_MAX 8192        /* request line + headers + body */
#define READ_CHUNK 2048
#define LINGER_MS 1000          /* drain after the answer, at most */
#define LINGER_BYTES 65536      /* read and dropped after the answer, at most */

typedef struct aconn_s aconn_t;

struct roost_admin_http_s {
    roost_server_t *srv;
    roost_cluster_t *cluster;
    uv_tcp_t listener;
    int port;
    unsigned timeout_ms;
    size_t max_conns, n_conns;
    aconn_t *conns;
    int closing;
    int handles;                /* listener + live connections */
};

struct aconn_s {
    roost_admin_http_t *a;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_shutdown_t sd;
    roost_http_req_t *req;
    roost_buf_t out;
    size_t dropped;             /* bytes read after the answer */
    int answered;
    int closing;
    int handles;
    aconn_t *prev, *next;
};

/* Reads are consumed synchronously, so every connection shares one buffer. */
static char read_buf[READ_CHUNK];

/* The admin whose state the readiness gauges show (one per process). */
static roost_admin_http_t *live;

/* ---- the pure part --------------------------------------------------------- */

void roost_admin_http_health(const roost_server_t *srv, const roost_cluster_t *cluster,
                        roost_admin_http_health_t *out)
{
    memset(out, 0, sizeof(*out));
    if (srv == NULL)
        return;
    out->redis = roost_store_connected(srv->store);
    out->subscribed = roost_store_subscribed(srv->store);
    out->lease = roost_cluster_serving(cluster);
    out->draining = srv->draining != 0;
    out->shutting_down = srv->shutting_down != 0;
}

static int ready(const roost_admin_http_health_t *h)
{
    return h->redis && h->subscribed && h->lease && !h->draining && !h->shutting_down;
}

/* "not ready: redis unreachable, lease not held\n": every failed check. */
static int readiness_text(const roost_admin_http_health_t *h, roost_buf_t *b)
{
    const struct {
        int bad;
        const char *what;
    } checks[] = {
        { !h->redis, "redis unreachable" },
        { !h->subscribed, "not subscribed to its route channel" },
        { !h->lease, "cluster lease not held" },
        { h->draining, "draining" },
        { h->shutting_down, "shutting down" },
    };
    int rc = 0, first = 1;
    if (ready(h))
        return roost_buf_puts(b, "ready\n");
    rc = roost_buf_puts(b, "not ready: ");
    for (size_t i = 0; rc == 0 && i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (!checks[i].bad)
            continue;
        rc = roost_buf_printf(b, "%s%s", first ? "" : ", ", checks[i].what);
        first = 0;
    }
    if (rc == 0)
        rc = roost_buf_puts(b, "\n");
    return rc;
}

int roost_admin_http_respond(const char *method, const char *path, const roost_admin_http_health_t *h,
                        roost_buf_t *out)
{
    static const char text[] = "text/plain; charset=utf-8";
    enum { P_HEALTH, P_READY, P_METRICS, P_NONE } p = P_NONE;
    roost_buf_t body = ROOST_BUF_INIT;
    const char *ctype = text;
    int status = 200, rc = 0;
    int head = strcmp(method, "HEAD") == 0;

    if (strcmp(path, "/healthz") == 0)
        p = P_HEALTH;
    else if (strcmp(path, "/readyz") == 0)
        p = P_READY;
    else if (strcmp(path, "/metrics") == 0)
        p = P_METRICS;

    if (p == P_NONE) {
        status = 404;
        rc = roost_buf_puts(&body, "not found; try /healthz, /readyz or /metrics\n");
    } else if (!head && strcmp(method, "GET") != 0) {
        rc = roost_buf_puts(&body, "method not allowed\n");
        if (rc == 0)
            rc = roost_http_response(out, 405, text, "Allow: GET, HEAD\r\n", body.data,
                                     body.len, 0);
        roost_buf_free(&body);
        return rc;
    } else if (p == P_HEALTH) {
        rc = roost_buf_puts(&body, "ok\n");
    } else if (p == P_READY) {
        status = ready(h) ? 200 : 503;
        rc = readiness_text(h, &body);
    } else {
        ctype = "text/plain; version=0.0.4; charset=utf-8";
        rc = roost_metrics_render(&body);
    }
    if (rc == 0)
        rc = roost_http_response(out, status, ctype, NULL, body.data, body.len, head);
    roost_buf_free(&body);
    return rc;
}

/* ---- readiness gauges ------------------------------------------------------ */

static double gauge_health(void *data)
{
    roost_admin_http_health_t h;
    if (live == NULL)
        return 0;
    roost_admin_http_health(live->srv, live->cluster, &h);
    switch ((int)(intptr_t)data) {
    case 0: return ready(&h);
    case 1: return h.redis;
    case 2: return h.subscribed;
    case 3: return h.lease;
    default: return h.draining || h.shutting_down;
    }
}

static int register_gauges(void)
{
    static const struct {
        const char *name, *help;
    } g[] = {
        { "roost_ready", "1 while /readyz answers 200" },
        { "roost_redis_up", "1 while the command link to Redis is up" },
        { "roost_pubsub_subscribed", "1 while the node's route channel is subscribed" },
        { "roost_lease_held", "1 while the node holds its cluster lease and serves" },
        { "roost_draining", "1 once a drain or shutdown started" },
    };
    for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
        if (roost_metric_gauge_fn(g[i].name, "", g[i].help, gauge_health, (void *)(intptr_t)i)
            != 0)
            return ROOST_ENOMEM;
    }
    return 0;
}

/* ---- connections ------------------------------------------------------------- */

static void admin_release(roost_admin_http_t *a)
{
    if (--a->handles == 0 && a->closing)
        free(a);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    aconn_t *c = h->data;
    if (--c->handles > 0)
        return;
    roost_admin_http_t *a = c->a;
    roost_http_req_free(c->req);
    roost_buf_free(&c->out);
    free(c);
    admin_release(a);
}

static void conn_close(aconn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    roost_admin_http_t *a = c->a;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    a->n_conns--;
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    aconn_t *c = req->data;
    /* The answer is out and FIN sent; keep reading until the peer closes
     * (or the linger timer fires) so that unread input causes no RST. */
    if (status != 0)
        conn_close(c);
}

static void on_written(uv_write_t *req, int status)
{
    aconn_t *c = req->data;
    if (c->closing)
        return;
    if (status != 0 || uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

static void answer(aconn_t *c, int status_if_error)
{
    roost_admin_http_t *a = c->a;
    int rc;

    c->answered = 1;
    if (status_if_error != 0) {
        char body[64];
        int n = snprintf(body, sizeof(body), "%d %s\n", status_if_error,
                         roost_http_reason(status_if_error));
        rc = roost_http_response(&c->out, status_if_error, NULL, NULL, body, (size_t)n, 0);
    } else {
        roost_admin_http_health_t h;
        roost_admin_http_health(a->srv, a->cluster, &h);
        const char *path = roost_http_req_path(c->req);
        if (strcmp(path, "/metrics") == 0)
            roost_stats_collect(a->srv);
        rc = roost_admin_http_respond(roost_http_req_method(c->req), path, &h, &c->out);
    }
    if (rc != 0) {
        conn_close(c);
        return;
    }
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
    uv_buf_t buf = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->wr.data = c;
    c->sd.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
        conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = read_buf;
    buf->len = sizeof(read_buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    aconn_t *c = s->data;

    if (c->closing)
        return;
    if (n < 0) {            /* EOF or error: nothing more to answer */
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    if (c->answered) {
        c->dropped += (size_t)n;
        if (c->dropped > LINGER_BYTES)
            conn_close(c);
        return;
    }
    int rc = roost_http_req_feed(c->req, buf->base, (size_t)n);
    if (rc == 0)
        return;
    if (rc < 0)
        ROOST_DEBUG(0, "admin: refused a request: %d", roost_http_req_error_status(c->req));
    answer(c, rc < 0 ? roost_http_req_error_status(c->req) : 0);
}

static void on_connection(uv_stream_t *l, int status)
{
    roost_admin_http_t *a = l->data;
    if (status < 0 || a->closing)
        return;
    aconn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->a = a;
    uv_tcp_init(l->loop, &c->tcp);
    uv_timer_init(l->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    a->handles++;
    c->next = a->conns;
    if (a->conns != NULL)
        a->conns->prev = c;
    a->conns = c;
    a->n_conns++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    /* Over the cap the newest is dropped at once: probes retry, and a
     * flood of admin connections must not cost the node memory. */
    if (a->n_conns > a->max_conns || (c->req = roost_http_req_new(REQUEST_MAX)) == NULL) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, a->timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* ---- lifecycle ----------------------------------------------------------------- */

static void on_listener_closed(uv_handle_t *h)
{
    admin_release(h->data);
}

int roost_admin_http_start(roost_server_t *srv, roost_cluster_t *cluster, roost_admin_http_t **out)
{
    const roost_config_t *cfg = srv->cfg;
    struct sockaddr_storage ss;
    roost_admin_http_t *a;
    int rc;

    *out = NULL;
    if (!cfg->admin_enabled)
        return 0;
    if (uv_ip4_addr(cfg->admin_bind, cfg->admin_port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(cfg->admin_bind, cfg->admin_port, (struct sockaddr_in6 *)&ss) != 0) {
        ROOST_ERROR(0, "admin.bind: not an IP address: %s", cfg->admin_bind);
        return ROOST_EINVAL;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return ROOST_ENOMEM;
    a->srv = srv;
    a->cluster = cluster;
    a->timeout_ms = cfg->admin_timeout_ms;
    a->max_conns = cfg->admin_max_connections;
    uv_tcp_init(srv->loop, &a->listener);
    a->listener.data = a;
    a->handles = 1;
    rc = uv_tcp_bind(&a->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->listener, 64, on_connection);
    if (rc != 0) {
        ROOST_ERROR(0, "admin: cannot listen on %s port %d: %s", cfg->admin_bind,
                    cfg->admin_port, uv_strerror(rc));
        a->closing = 1;
        uv_close((uv_handle_t *)&a->listener, on_listener_closed);
        return ROOST_EIO;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    a->port = cfg->admin_port;
    if (uv_tcp_getsockname(&a->listener, (struct sockaddr *)&bound, &blen) == 0)
        a->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);   /* same offset in v6 */
    live = a;
    if (register_gauges() != 0)
        ROOST_WARN(0, "admin: readiness gauges not registered (out of memory)");
    ROOST_INFO(0, "admin listening addr=%s port=%d", cfg->admin_bind, a->port);
    *out = a;
    return 0;
}

int roost_admin_http_port(const roost_admin_http_t *a)
{
    return a != NULL ? a->port : 0;
}

void roost_admin_http_free(roost_admin_http_t *a)
{
    if (a == NULL || a->closing)
        return;
    a->closing = 1;
    if (live == a)
        live = NULL;
    while (a->conns != NULL)
        conn_close(a->conns);
    uv_close((uv_handle_t *)&a->listener, on_listener_closed);
}
