/* roost-node: loads the configuration, connects to Redis, joins the cluster
 * (node/cluster.c), listens for clients while it holds its lease, and shuts
 * down cleanly on SIGINT/SIGTERM. SIGHUP reloads the TLS certificate and
 * the log settings. The admin HTTP listener (node/admin.c) runs beside. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <signal.h>
#include <openssl/rand.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "node/admin.h"
#include "node/c2s.h"
#include "node/cluster.h"
#include "node/config.h"
#include "node/drain.h"
#include "node/iptable.h"
#include "node/log.h"
#include "node/presence.h"
#include "node/router.h"
#include "node/server.h"
#include "node/sm.h"
#include "node/stats.h"
#include "node/tls.h"
#include "store/error.h"
#include "store/store.h"

#define SHUTDOWN_DEADLINE_MS 5000
#ifndef ROOST_VERSION
#define ROOST_VERSION "0.1.0"
#endif

typedef struct {
    roost_server_t srv;
    roost_config_t cfg;
    uv_tcp_t listeners[ROOST_CONFIG_MAX_BIND];
    size_t n_listeners;
    uv_tcp_t tls_listeners[ROOST_CONFIG_MAX_BIND];   /* direct TLS (XEP-0368) */
    size_t n_tls_listeners;
    int tls_port;
    int port;              /* c2s port; the kernel's pick is kept for re-listening */
    roost_cluster_t *cluster;
    int subscribed;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t deadline;
    uv_timer_t trim;       /* hands freed heap back to the kernel */
    int listening;
    int cleaning;
    int exit_code;
    roost_admin_http_t *admin;
    const char *config_path;   /* -c, re-read on SIGHUP for log.* */
    int log_pinned;            /* --set log.*: the command line wins over reloads */
} node_t;

static node_t node;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: roost-node [-c FILE] [--domain DOMAIN]... [--set KEY=VALUE]... [--check-config]\n"
        "  -c, --config FILE   YAML configuration (see ops/roost.example.yaml)\n"
        "  -d, --domain D      serve domain D (repeatable; replaces configured domains)\n"
        "  -s, --set K=V       set one option by its YAML path, e.g. redis.port=6380\n"
        "      --check-config  validate the configuration and exit (0 ok, 2 bad)\n"
        "  -h, --help          this text\n"
        "Environment overrides: ROOST_DOMAINS, ROOST_C2S_BIND, ROOST_C2S_PORT,\n"
        "ROOST_REDIS_HOST, ROOST_REDIS_PORT, ROOST_NODE_ID, ROOST_LOG_LEVEL,\n"
        "ROOST_LOG_FORMAT, ROOST_ADMIN_PORT, ... (ops/roost.example.yaml)\n");
}

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_finish(uv_timer_t *t)
{
    /* Everything is closed or given up on. The store closes its own
     * handles; once ours are closed too the loop runs dry and exits.
     * The admin first: it reads the store and the cluster. */
    roost_sm_stop();
    roost_drain_stop();
    roost_admin_http_free(node.admin);
    node.admin = NULL;
    roost_store_free(node.srv.store);
    node.srv.store = NULL;
    /* After the store: its canceled callbacks may still touch the cluster. */
    roost_cluster_free(node.cluster);
    node.cluster = NULL;
    close_if_open((uv_handle_t *)&node.sigint);
    close_if_open((uv_handle_t *)&node.sigterm);
    close_if_open((uv_handle_t *)&node.sighup);
    close_if_open((uv_handle_t *)&node.deadline);
    close_if_open((uv_handle_t *)&node.trim);
    close_if_open((uv_handle_t *)t);
}

/* Memory per idle connection is measured as RSS (DESIGN §8): a login or
 * logout storm leaves freed heap that malloc keeps mapped; give it back
 * now and then (glibc also releases free pages inside the heap). */
#define TRIM_MS 10000

static void on_trim(uv_timer_t *t)
{
    (void)t;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void finish(void)
{
    /* Often called from inside a store callback: free the store from a
     * fresh loop turn, never from its own stack. */
    static uv_timer_t t;
    static int started;
    if (started)
        return;
    started = 1;
    uv_timer_init(node.srv.loop, &t);
    uv_timer_start(&t, on_finish, 0, 0);
}

static void on_left(int status, void *data)
{
    finish();
}

/* The node's records are gone: give up the lease and the registry entry
 * so that nobody waits for this node to expire. */
static void leave_cluster(void)
{
    if (roost_cluster_leave(node.cluster, on_left, NULL) != 0)
        finish();
}

static void on_cleaned(int status, void *data)
{
    if (status != 0)
        ROOST_WARN(0, "node cleanup failed: %s", roost_strerror(status));
    leave_cluster();
}

static void on_idle(roost_server_t *srv)
{
    if (!srv->shutting_down || node.cleaning)
        return;
    node.cleaning = 1;
    ROOST_INFO(0, "all sessions closed; removing node records");
    if (roost_store_node_epoch(srv->store) == 0 ||
        roost_store_node_cleanup(srv->store, on_cleaned, NULL) != 0)
        leave_cluster();
}

static void on_deadline(uv_timer_t *t)
{
    ROOST_WARN(0, "shutdown deadline passed with %zu connections, %zu store calls pending",
               node.srv.n_conns, node.srv.pending_ops);
    node.exit_code = 1;
    finish();
}

static void close_listeners(void)
{
    for (size_t i = 0; i < node.n_listeners; i++)
        uv_close((uv_handle_t *)&node.listeners[i], NULL);
    node.n_listeners = 0;
    for (size_t i = 0; i < node.n_tls_listeners; i++)
        uv_close((uv_handle_t *)&node.tls_listeners[i], NULL);
    node.n_tls_listeners = 0;
    node.listening = 0;
}

static void shutdown_node(void)
{
    roost_server_t *srv = &node.srv;
    if (srv->shutting_down)
        return;
    srv->shutting_down = 1;
    ROOST_INFO(0, "shutting down connections=%zu", srv->n_conns);
    close_listeners();
    roost_cluster_drain(node.cluster);
    /* The signal watchers stay: a second SIGTERM during the drain must not
     * fall back to the default action and kill the process. */
    uv_timer_start(&node.deadline, on_deadline, SHUTDOWN_DEADLINE_MS, 0);
    roost_c2s_close_all(srv, "system-shutdown");
    roost_server_check_idle(srv);
}

static void on_drained(roost_server_t *srv)
{
    shutdown_node();
}

/* SIGTERM or `roostctl node drain`: not ready any more, no new clients,
 * the clients let go in paced batches (node/drain.c); then the shutdown. */
static void start_drain(roost_server_t *srv)
{
    if (srv->draining || srv->shutting_down)
        return;
    srv->draining = 1;
    close_listeners();
    roost_drain_start(srv, on_drained);
}

/* SIGTERM drains; SIGINT, or a second signal, shuts down at once. */
static void on_signal(uv_signal_t *h, int signum)
{
    ROOST_INFO(0, "signal %d", signum);
    if (signum == SIGTERM && !node.srv.draining)
        start_drain(&node.srv);
    else
        shutdown_node();
}

/* SIGHUP, log part: log.level and log.format from the file (-c) and the
 * environment again; a bad file keeps the current settings. */
static void reload_log(void)
{
    roost_config_t fresh;
    char err[512];
    if (node.log_pinned) {
        ROOST_INFO(0, "SIGHUP: log settings come from --set; not reloaded");
        return;
    }
    if (roost_config_load_unvalidated(&fresh, node.config_path, err, sizeof(err)) != 0) {
        ROOST_ERROR(0, "SIGHUP: keeping the log settings: %s", err);
        return;
    }
    int level = roost_log_level_parse(fresh.log_level);
    roost_log_set_format(fresh.log_json ? ROOST_LOG_JSON : ROOST_LOG_LOGFMT);
    if (level >= 0)
        roost_log_set_level((roost_log_level_t)level);
    ROOST_WARN(0, "SIGHUP: log.level=%s log.format=%s", fresh.log_level,
               fresh.log_json ? "json" : "logfmt");
    roost_config_free(&fresh);
}

/* SIGHUP: new connections get the reloaded certificate; the old context
 * lives on, reference-counted by OpenSSL, until its last connection ends. */
static void on_sighup(uv_signal_t *h, int signum)
{
    char err[512];
    reload_log();
    if (node.cfg.tls_cert == NULL) {
        ROOST_INFO(0, "SIGHUP: no tls.cert configured, nothing to reload");
        return;
    }
    SSL_CTX *ctx = roost_tls_ctx_new(node.cfg.tls_cert, node.cfg.tls_key, err, sizeof(err));
    if (ctx == NULL) {
        ROOST_ERROR(0, "SIGHUP: keeping the current certificate: %s", err);
        return;
    }
    SSL_CTX_free(node.srv.tls_ctx);
    node.srv.tls_ctx = ctx;
    ROOST_INFO(0, "SIGHUP: reloaded tls.cert=%s", node.cfg.tls_cert);
}

static void on_connection(uv_stream_t *listener, int status)
{
    if (status < 0) {
        ROOST_WARN(0, "accept error: %s", uv_strerror(status));
        return;
    }
    if (listener->data == &node.tls_listeners)
        roost_c2s_accept_tls(&node.srv, listener);
    else
        roost_c2s_accept(&node.srv, listener);
}

/* Direct TLS listeners on every c2s.bind address; failures are warnings,
 * STARTTLS on the main port still works. */
static void start_tls_listeners(void)
{
    roost_config_t *cfg = &node.cfg;
    if (node.tls_port == 0 || node.srv.tls_ctx == NULL)
        return;
    for (size_t i = 0; i < cfg->n_c2s_bind; i++) {
        const char *addr = cfg->c2s_bind[i];
        struct sockaddr_storage ss;
        unsigned flags = 0;
        if (uv_ip4_addr(addr, node.tls_port, (struct sockaddr_in *)&ss) != 0) {
            if (uv_ip6_addr(addr, node.tls_port, (struct sockaddr_in6 *)&ss) != 0)
                continue;
            flags = UV_TCP_IPV6ONLY;
        }
        uv_tcp_t *l = &node.tls_listeners[node.n_tls_listeners];
        uv_tcp_init(node.srv.loop, l);
        l->data = &node.tls_listeners;
        int rc = uv_tcp_bind(l, (struct sockaddr *)&ss, flags);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)l, 511, on_connection);
        if (rc != 0) {
            ROOST_WARN(0, "cannot listen (direct TLS) on %s port %d: %s", addr, node.tls_port,
                       uv_strerror(rc));
            uv_close((uv_handle_t *)l, NULL);
            continue;
        }
        ROOST_INFO(0, "listening tls addr=%s port=%d", addr, node.tls_port);
        node.n_tls_listeners++;
    }
}

static int start_listeners(void)
{
    roost_config_t *cfg = &node.cfg;
    start_tls_listeners();
    for (size_t i = 0; i < cfg->n_c2s_bind; i++) {
        const char *addr = cfg->c2s_bind[i];
        struct sockaddr_storage ss;
        unsigned flags = 0;
        if (uv_ip4_addr(addr, node.port, (struct sockaddr_in *)&ss) != 0) {
            if (uv_ip6_addr(addr, node.port, (struct sockaddr_in6 *)&ss) != 0) {
                ROOST_ERROR(0, "c2s.bind: not an IP address: %s", addr);
                continue;
            }
            flags = UV_TCP_IPV6ONLY;
        }
        uv_tcp_t *l = &node.listeners[node.n_listeners];
        uv_tcp_init(node.srv.loop, l);
        int rc = uv_tcp_bind(l, (struct sockaddr *)&ss, flags);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)l, 511, on_connection);
        if (rc != 0) {
            ROOST_WARN(0, "cannot listen on %s port %d: %s", addr, node.port, uv_strerror(rc));
            uv_close((uv_handle_t *)l, NULL);
            continue;
        }
        struct sockaddr_storage bound;
        int blen = sizeof(bound);
        int port = node.port;
        if (uv_tcp_getsockname(l, (struct sockaddr *)&bound, &blen) == 0)
            port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        ROOST_INFO(0, "listening addr=%s port=%d", addr, port);
        if (node.n_listeners == 0) {
            char adv[INET6_ADDRSTRLEN + 16];
            snprintf(adv, sizeof(adv), flags ? "[%s]:%d" : "%s:%d", addr, port);
            roost_cluster_set_addr(node.cluster, adv);
            if (node.port == 0)
                node.port = port;   /* listen again on the same port after a lease loss */
        }
        node.n_listeners++;
    }
    return node.n_listeners > 0 ? 0 : -1;
}

static void on_envelope(const uint8_t *msg, size_t len, void *data)
{
    roost_stats_received();
    roost_router_on_envelope(data, msg, len);
}

/* The lease is held (first start, or again after a loss): accept clients. */
static void on_serving(roost_server_t *srv, void *data)
{
    if (srv->shutting_down)
        return;
    if (!node.subscribed) {
        if (roost_store_subscribe(srv->store, on_envelope, srv) != 0)
            ROOST_WARN(0, "subscribe failed");
        node.subscribed = 1;
    }
    if (!node.listening && !srv->draining) {
        if (start_listeners() != 0) {
            ROOST_ERROR(0, "no c2s listener could be opened");
            node.exit_code = 1;
            shutdown_node();
            return;
        }
        node.listening = 1;
    }
}

/* The lease is lost: this node may no longer act for its sessions (another
 * node may reap and rebind them), so it stops taking clients and ends the
 * ones it has; they reconnect elsewhere. See node/cluster.c. */
static void on_lease_lost(roost_server_t *srv, void *data)
{
    if (srv->shutting_down)
        return;
    close_listeners();
    ROOST_WARN(0, "closing %zu client connections (lease lost)", srv->n_conns);
    roost_c2s_close_all(srv, "system-shutdown");
}

static void on_store_state(int connected, void *data)
{
    ROOST_INFO(0, "redis %s", connected ? "connected" : "disconnected");
    if (!node.srv.shutting_down)
        roost_cluster_store_state(node.cluster, connected);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "domain", required_argument, NULL, 'd' },
        { "set", required_argument, NULL, 's' },
        { "check-config", no_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL;
    int check_only = 0;
    char err[512];
    char **sets = calloc((size_t)argc + 1, sizeof(*sets));
    char **domains = calloc((size_t)argc + 1, sizeof(*domains));
    size_t n_sets = 0, n_domains = 0;
    int c, code = 2;
    roost_config_t *cfg = &node.cfg;
    if (sets == NULL || domains == NULL) {
        code = 1;
        goto out_args;
    }
    while ((c = getopt_long(argc, argv, "c:d:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'd': domains[n_domains++] = optarg; break;
        case 's': sets[n_sets++] = optarg; break;
        case 'C': check_only = 1; break;
        case 'h': usage(stdout); code = 0; goto out_args;
        default: usage(stderr); goto out_args;
        }
    }
    if (optind < argc) {
        usage(stderr);
        goto out_args;
    }
    signal(SIGPIPE, SIG_IGN);

    if (roost_config_load_unvalidated(cfg, config_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "roost-node: %s\n", err);
        goto out_args;     /* the loader frees what it had on failure */
    }
    if (n_domains > 0) {
        /* --domain replaces; join to one comma list for the setter. */
        size_t len = 1;
        for (size_t i = 0; i < n_domains; i++)
            len += strlen(domains[i]) + 1;
        char *joined = calloc(1, len);
        if (joined == NULL) {
            code = 1;
            goto out_cfg;
        }
        for (size_t i = 0; i < n_domains; i++) {
            if (i > 0)
                strcat(joined, ",");
            strcat(joined, domains[i]);
        }
        int rc = roost_config_set(cfg, "domains", joined, err, sizeof(err));
        free(joined);
        if (rc != 0) {
            fprintf(stderr, "roost-node: %s\n", err);
            goto out_cfg;
        }
    }
    for (size_t i = 0; i < n_sets; i++) {
        char *eq = strchr(sets[i], '=');
        if (eq == NULL) {
            fprintf(stderr, "roost-node: --set %s: expected KEY=VALUE\n", sets[i]);
            goto out_cfg;
        }
        *eq = '\0';
        if (strncmp(sets[i], "log.", 4) == 0)
            node.log_pinned = 1;
        if (roost_config_set(cfg, sets[i], eq + 1, err, sizeof(err)) != 0) {
            fprintf(stderr, "roost-node: %s\n", err);
            goto out_cfg;
        }
    }
    free(sets);
    free(domains);
    sets = domains = NULL;
    if (roost_config_validate(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "roost-node: %s\n", err);
        goto out_cfg;
    }
    /* Secure by default: without a certificate the only way to serve
     * clients is to turn the requirement off explicitly. */
    if (cfg->require_encryption && cfg->tls_cert == NULL) {
        fprintf(stderr, "roost-node: tls.cert: a certificate is required while "
                        "c2s.require_encryption is true (set tls.cert and tls.key, "
                        "or c2s.require_encryption: false)\n");
        goto out_cfg;
    }
    if (cfg->require_encryption && cfg->allow_plaintext_auth)
        fprintf(stderr, "roost-node: c2s.allow_plaintext_auth has no effect while "
                        "c2s.require_encryption is true\n");
    SSL_CTX *tls_ctx = NULL;
    if (cfg->tls_cert != NULL &&
        (tls_ctx = roost_tls_ctx_new(cfg->tls_cert, cfg->tls_key, err, sizeof(err))) == NULL) {
        fprintf(stderr, "roost-node: %s\n", err);
        goto out_cfg;
    }
    if (check_only) {
        SSL_CTX_free(tls_ctx);
        printf("configuration ok\n");
        code = 0;
        goto out_cfg;
    }
    int level = roost_log_level_parse(cfg->log_level);
    roost_log_set_level(level >= 0 ? (roost_log_level_t)level : ROOST_LOG_INFO);
    roost_log_set_format(cfg->log_json ? ROOST_LOG_JSON : ROOST_LOG_LOGFMT);
    node.config_path = config_path;

    roost_server_t *srv = &node.srv;
    srv->loop = uv_default_loop();
    srv->cfg = cfg;
    srv->tls_ctx = tls_ctx;
    srv->on_idle = on_idle;
    srv->on_drain = start_drain;
    /* A reaped session (dead node, or our own older epoch) goes
     * unavailable to its contacts on its behalf. */
    srv->on_session_reaped = roost_presence_session_ended;
    srv->conn_limits.high = cfg->write_high_watermark;
    srv->conn_limits.low = cfg->write_low_watermark;
    srv->conn_limits.max = cfg->write_max;
    roost_iptable_opts_t ipo = {
        .max_conns = cfg->max_conns_per_ip,
        .rate = cfg->max_new_conns_per_ip_per_s,
        .tarpit_after = cfg->auth_tarpit_after,
        .tarpit_delay_ms = cfg->auth_tarpit_delay_ms,
        .tarpit_max_ms = cfg->auth_tarpit_max_ms,
        .tarpit_forget_s = cfg->auth_tarpit_forget_s,
        .max_idle = cfg->max_tracked_ips,
    };
    srv->ips = roost_iptable_new(&ipo);
    if (srv->ips == NULL)
        return 1;
    if (cfg->node_id != NULL) {
        snprintf(srv->node_id, sizeof(srv->node_id), "%s", cfg->node_id);
    } else {
        unsigned char r[6];
        if (RAND_bytes(r, sizeof(r)) != 1)
            return 1;
        snprintf(srv->node_id, sizeof(srv->node_id), "node-%02x%02x%02x%02x%02x%02x",
                 r[0], r[1], r[2], r[3], r[4], r[5]);
    }
    srv->sessions = roost_map_new();
    if (srv->sessions == NULL)
        return 1;
    roost_store_opts_t so = {
        .host = cfg->redis_host,
        .port = cfg->redis_port,
        .password = cfg->redis_password,
        .db = cfg->redis_db,
        .timeout_ms = cfg->redis_timeout_ms,
        .node_id = srv->node_id,
        .lease_ms = cfg->lease_ms,
    };
    uv_signal_init(srv->loop, &node.sigint);
    uv_signal_init(srv->loop, &node.sigterm);
    uv_signal_start(&node.sigint, on_signal, SIGINT);
    uv_signal_start(&node.sigterm, on_signal, SIGTERM);
    uv_signal_init(srv->loop, &node.sighup);
    uv_signal_start(&node.sighup, on_sighup, SIGHUP);
    uv_timer_init(srv->loop, &node.deadline);
    uv_unref((uv_handle_t *)&node.deadline);
    uv_timer_init(srv->loop, &node.trim);
    uv_timer_start(&node.trim, on_trim, TRIM_MS, TRIM_MS);
    uv_unref((uv_handle_t *)&node.trim);

    ROOST_INFO(0, "starting node=%s redis=%s:%d domains=%zu", srv->node_id,
               cfg->redis_host, cfg->redis_port, cfg->n_domains);
    node.port = cfg->c2s_port;
    node.tls_port = cfg->c2s_tls_port;
    srv->store = roost_store_new(srv->loop, &so, on_store_state, srv);
    if (srv->store == NULL) {
        ROOST_ERROR(0, "cannot create the store");
        return 1;
    }
    roost_sm_start(srv);
    roost_cluster_opts_t co = {
        .lease_ms = cfg->lease_ms,
        .renew_ms = cfg->renew_ms,
        .reap_interval_ms = cfg->reap_interval_ms,
        .version = ROOST_VERSION,
        .serving = on_serving,
        .lost = on_lease_lost,
    };
    node.cluster = roost_cluster_new(srv, &co);
    if (node.cluster == NULL) {
        ROOST_ERROR(0, "cannot create the cluster membership");
        return 1;
    }
    /* Metrics and the admin listener; a port in use is logged, and the
     * node serves clients without it (its probes then fail). */
    if (roost_stats_init(srv, ROOST_VERSION) != 0)
        ROOST_WARN(0, "metrics: out of memory; some metrics are missing");
    roost_store_set_observer(srv->store, roost_stats_redis_observe, NULL);
    roost_admin_http_start(srv, node.cluster, &node.admin);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    /* Drain close callbacks. */
    uv_run(srv->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(srv->loop);
    if (rc != 0)
        ROOST_WARN(0, "loop close: %s", uv_strerror(rc));
    roost_map_free(srv->sessions);
    roost_iptable_free(srv->ips);
    SSL_CTX_free(srv->tls_ctx);
    ROOST_INFO(0, "stopped");
    roost_config_free(cfg);
    return node.exit_code;

out_cfg:
    roost_config_free(cfg);
out_args:
    free(sets);
    free(domains);
    return code;
}
