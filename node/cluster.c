/* Cluster membership of this node: register with a fresh epoch, renew the
 * lease, stop serving when it is lost, and reap the sessions of dead nodes.
 *
 * Lease loss. The lease is ours until renew_sent + lease_ms (measured from
 * when a successful renewal was sent, so our view ends no later than the
 * key's TTL in Redis). When that passes without a renewal (Redis unreachable
 * or slow, or the process was stopped) or a renewal is refused (the key was
 * re-taken by a newer epoch, or the node was reaped), the node stops being a
 * member at once: it closes its listeners and ends every client stream with
 * <system-shutdown/>, then closes the TCP connection. Clients reconnect — to
 * another node through the load balancer, since this one refuses
 * connections — and bind again; the session scripts refuse any write by the
 * old epoch meanwhile, so nothing this node still does can overwrite records
 * another node wrote. We close rather than keep clients across a Redis
 * outage because a node that cannot prove its lease cannot tell whether its
 * sessions were already reaped and rebound elsewhere; serving them would
 * deliver to stale routes. (Stream-management clients lose their stream on
 * the stream error; a "drop without </stream:stream>" close in c2s would let
 * them resume instead.)
 *
 * Coming back. Once every client is closed (or lease_ms after the loss,
 * whatever comes first) and Redis answers, the node registers again with a
 * NEW epoch — it never re-takes a lost lease under the old one — removes the
 * records its older epochs left behind (reported through
 * srv->on_session_reaped like a dead node's), and reopens its listeners.
 * A short Redis blip inside the lease costs nothing: the next renewal (sent
 * at once on reconnect) re-asserts the lease under the same epoch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cluster.h"
#include "node/log.h"
#include "store/cluster.h"
#include "store/error.h"

#define DEAD_MAX 16   /* dead nodes handled per reaper run */

typedef enum {
    C_IDLE,         /* no epoch yet (or registration failed): register */
    C_REGISTERING,
    C_HELD,         /* lease held (serving once the self-reap is done) */
    C_LOST,         /* lease lost: clients closing, then register again */
    C_LEAVING,      /* shutdown: no more renewals */
} cstate_t;

struct roost_cluster_s {
    roost_server_t *srv;
    roost_cluster_opts_t o;
    char version[ROOST_CLUSTER_VERSION_MAX + 1];
    char addr[ROOST_CLUSTER_ADDR_MAX + 1];
    cstate_t state;
    cstate_t before_register;  /* where a failed registration returns */
    unsigned gen;              /* bumped at every loss: late replies are ignored */
    int serving;
    int draining;
    int closed;                /* roost_cluster_free ran */
    int open_handles;
    uint64_t start_ms;         /* unix ms, for the lease value */
    uint64_t deadline;         /* loop ms until which the lease is ours */
    uint64_t lost_at;
    uint64_t register_sent;
    int renewing;
    uint64_t renew_sent;
    unsigned renew_gen;
    /* reaper run */
    int reaping;
    unsigned reap_gen;
    char dead[DEAD_MAX][ROOST_NODE_ID_MAX + 1];
    size_t ndead, idead;
    char cursor[24];
    size_t reaped;             /* records removed for the current target */
    uv_timer_t tick, reap;
    void (*leave_cb)(int status, void *data);
    void *leave_data;
};

static uint64_t now(roost_cluster_t *c)
{
    uv_update_time(c->srv->loop);
    return uv_now(c->srv->loop);
}

static int alive(const roost_cluster_t *c)
{
    return !c->closed && c->state != C_LEAVING;
}

static void lose(roost_cluster_t *c, const char *why)
{
    ROOST_WARN(0, "cluster: lease lost (%s); node=%s epoch=%llu stops serving", why,
               c->srv->node_id, (unsigned long long)roost_store_node_epoch(c->srv->store));
    c->state = C_LOST;
    c->gen++;
    c->serving = 0;
    c->lost_at = now(c);
    if (c->o.lost)
        c->o.lost(c->srv, c->o.data);
}

/* ---- renewal ------------------------------------------------------------ */

static void on_renewed(int status, void *data)
{
    roost_cluster_t *c = data;

    c->renewing = 0;
    if (!alive(c) || c->state != C_HELD || c->renew_gen != c->gen)
        return;
    if (status == 0) {
        c->deadline = c->renew_sent + c->o.lease_ms;
    } else if (status == ROOST_ESTALE) {
        lose(c, "renewal refused: a newer epoch holds it or the node was reaped");
    } else {
        ROOST_WARN(0, "cluster: lease renewal failed: %s", roost_strerror(status));
    }
}

static void renew(roost_cluster_t *c)
{
    if (c->renewing || !roost_store_connected(c->srv->store))
        return;
    c->renew_sent = now(c);
    c->renew_gen = c->gen;
    if (roost_store_cluster_renew(c->srv->store, c->addr, c->version, c->start_ms,
                                  c->o.lease_ms, on_renewed, c) == 0)
        c->renewing = 1;
}

/* ---- own older epochs --------------------------------------------------- */

static void report(roost_cluster_t *c, const roost_cluster_reaped_t *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ROOST_DEBUG(0, "cluster: reaped %s of node=%s epoch=%llu", recs[i].full,
                    recs[i].rec->node_id, (unsigned long long)recs[i].rec->node_epoch);
        if (c->srv->on_session_reaped)
            c->srv->on_session_reaped(c->srv, recs[i].bare, recs[i].full, recs[i].rec);
    }
}

static void start_serving(roost_cluster_t *c)
{
    c->serving = 1;
    ROOST_INFO(0, "cluster: serving node=%s epoch=%llu", c->srv->node_id,
               (unsigned long long)roost_store_node_epoch(c->srv->store));
    if (c->o.serving)
        c->o.serving(c->srv, c->o.data);
}

static void self_reap_next(roost_cluster_t *c);

static void on_self_reaped(int status, const roost_cluster_reaped_t *recs, size_t n, int done,
                           const char *cursor, void *data)
{
    roost_cluster_t *c = data;

    if (!alive(c) || c->state != C_HELD || c->reap_gen != c->gen)
        return;
    report(c, recs, n);
    c->reaped += n;
    if (status == 0 && !done) {
        snprintf(c->cursor, sizeof(c->cursor), "%s", cursor);
        self_reap_next(c);
        return;
    }
    if (status < 0)
        ROOST_WARN(0, "cluster: cleanup of earlier epochs failed: %s", roost_strerror(status));
    else if (c->reaped)
        ROOST_INFO(0, "cluster: removed %zu records of earlier epochs of node=%s", c->reaped,
                   c->srv->node_id);
    start_serving(c);
}

static void self_reap_next(roost_cluster_t *c)
{
    uint64_t ep = roost_store_node_epoch(c->srv->store);
    int rc = roost_store_cluster_reap(c->srv->store, c->srv->node_id, ep - 1, c->cursor,
                                      on_self_reaped, c);
    if (rc < 0) {
        ROOST_WARN(0, "cluster: cleanup of earlier epochs: %s", roost_strerror(rc));
        start_serving(c);
    }
}

/* ---- registration -------------------------------------------------------- */

static void on_registered(int status, void *data)
{
    roost_cluster_t *c = data;

    if (!alive(c) || c->state != C_REGISTERING)
        return;
    if (status != 0) {
        ROOST_WARN(0, "cluster: registration failed: %s; retrying", roost_strerror(status));
        c->state = c->before_register;
        return;
    }
    c->state = C_HELD;
    c->deadline = c->register_sent + c->o.lease_ms;
    ROOST_INFO(0, "cluster: registered node=%s epoch=%llu", c->srv->node_id,
               (unsigned long long)roost_store_node_epoch(c->srv->store));
    renew(c);     /* writes addr/version into the lease */
    /* Records of this id's earlier epochs (a crash, a restart under the
     * same id, clients that could not unbind while Redis was away) have no
     * other owner to clean them up: nobody reaps a node that holds a lease. */
    c->reap_gen = c->gen;
    c->reaped = 0;
    strcpy(c->cursor, "0");
    if (roost_store_node_epoch(c->srv->store) > 1)
        self_reap_next(c);
    else
        start_serving(c);
}

static void do_register(roost_cluster_t *c)
{
    if (!roost_store_connected(c->srv->store))
        return;
    c->before_register = c->state;
    c->state = C_REGISTERING;
    c->register_sent = now(c);
    if (roost_store_node_register(c->srv->store, on_registered, c) != 0)
        c->state = c->before_register;
}

/* ---- dead nodes ----------------------------------------------------------- */

static void reap_next_node(roost_cluster_t *c);
static void reap_batch(roost_cluster_t *c);

static int reaper_current(const roost_cluster_t *c)
{
    return alive(c) && !c->draining && c->state == C_HELD && c->reap_gen == c->gen;
}

static void on_unlocked(int status, void *data)
{
    roost_cluster_t *c = data;

    if (!reaper_current(c)) {
        c->reaping = 0;
        return;
    }
    c->idead++;
    reap_next_node(c);
}

static void unlock_and_next(roost_cluster_t *c)
{
    if (roost_store_cluster_unlock(c->srv->store, c->dead[c->idead], on_unlocked, c) < 0) {
        c->idead++;
        reap_next_node(c);
    }
}

static void on_dead_reaped(int status, const roost_cluster_reaped_t *recs, size_t n, int done,
                           const char *cursor, void *data)
{
    roost_cluster_t *c = data;

    if (!reaper_current(c)) {
        c->reaping = 0;
        return;
    }
    report(c, recs, n);
    c->reaped += n;
    if (status == 0 && !done) {
        snprintf(c->cursor, sizeof(c->cursor), "%s", cursor);
        reap_batch(c);
        return;
    }
    if (status == 0)
        ROOST_INFO(0, "cluster: reaped dead node=%s sessions=%zu", c->dead[c->idead], c->reaped);
    else if (status == ROOST_ESTALE)
        ROOST_INFO(0, "cluster: node=%s holds a lease again; not reaped", c->dead[c->idead]);
    else
        ROOST_WARN(0, "cluster: reap of node=%s failed: %s", c->dead[c->idead],
                   roost_strerror(status));
    unlock_and_next(c);
}

static void reap_batch(roost_cluster_t *c)
{
    if (roost_store_cluster_reap(c->srv->store, c->dead[c->idead], 0, c->cursor,
                                 on_dead_reaped, c) < 0)
        unlock_and_next(c);
}

static void on_locked(int status, void *data)
{
    roost_cluster_t *c = data;

    if (!reaper_current(c)) {
        c->reaping = 0;
        return;
    }
    if (status != 0) {          /* another node reaps it, or Redis trouble */
        c->idead++;
        reap_next_node(c);
        return;
    }
    strcpy(c->cursor, "0");
    c->reaped = 0;
    reap_batch(c);
}

static void reap_next_node(roost_cluster_t *c)
{
    /* The lock outlives a few slow batches, yet frees a dead reaper's claim
     * soon enough for another node to finish its job. */
    unsigned ttl = c->o.lease_ms * 3;

    while (c->idead < c->ndead) {
        if (roost_store_cluster_lock(c->srv->store, c->dead[c->idead], ttl, on_locked, c) == 0)
            return;
        c->idead++;
    }
    c->reaping = 0;
}

static void on_dead(int status, char *const *ids, size_t n, void *data)
{
    roost_cluster_t *c = data;

    if (!reaper_current(c) || status != 0) {
        c->reaping = 0;
        return;
    }
    c->ndead = 0;
    c->idead = 0;
    for (size_t i = 0; i < n && c->ndead < DEAD_MAX; i++)
        snprintf(c->dead[c->ndead++], sizeof(c->dead[0]), "%s", ids[i]);
    reap_next_node(c);
}

static void on_reap_timer(uv_timer_t *t)
{
    roost_cluster_t *c = t->data;

    if (c->reaping || !c->serving || c->draining || c->state != C_HELD ||
        !roost_store_connected(c->srv->store))
        return;
    c->reap_gen = c->gen;
    if (roost_store_cluster_dead(c->srv->store, on_dead, c) == 0)
        c->reaping = 1;
}

/* ---- the tick ------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    roost_cluster_t *c = t->data;
    uint64_t n = now(c);

    switch (c->state) {
    case C_IDLE:
        do_register(c);
        break;
    case C_HELD:
        if (n >= c->deadline)
            lose(c, "not renewed in time");
        else
            renew(c);
        break;
    case C_LOST:
        /* Unbinds of the closing clients still carry the old epoch; a new
         * epoch now would leave their records to the self-reap instead. */
        if (c->srv->n_conns == 0 || n - c->lost_at >= c->o.lease_ms)
            do_register(c);
        break;
    case C_REGISTERING:
        /* A registration reply that comes after the lease it set would have
         * expired is worthless: the loop catches up on the next state. */
        break;
    case C_LEAVING:
        break;
    }
}

/* ---- public -------------------------------------------------------------- */

roost_cluster_t *roost_cluster_new(roost_server_t *srv, const roost_cluster_opts_t *opts)
{
    roost_cluster_t *c;

    if (!srv || !opts || opts->lease_ms == 0 || opts->renew_ms == 0 ||
        opts->reap_interval_ms == 0)
        return NULL;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    c->srv = srv;
    c->o = *opts;
    snprintf(c->version, sizeof(c->version), "%s", opts->version ? opts->version : "");
    c->o.version = c->version;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->start_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    c->state = C_IDLE;
    uv_timer_init(srv->loop, &c->tick);
    uv_timer_init(srv->loop, &c->reap);
    c->tick.data = c->reap.data = c;
    c->open_handles = 2;
    uv_timer_start(&c->tick, on_tick, opts->renew_ms, opts->renew_ms);
    uv_timer_start(&c->reap, on_reap_timer, opts->reap_interval_ms, opts->reap_interval_ms);
    return c;
}

void roost_cluster_set_addr(roost_cluster_t *c, const char *addr)
{
    if (!c || !addr || strcmp(c->addr, addr) == 0)
        return;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    /* Operators look the address up at once (roostctl node list). */
    if (alive(c) && c->state == C_HELD)
        renew(c);
}

void roost_cluster_store_state(roost_cluster_t *c, int connected)
{
    if (!c || !alive(c) || !connected)
        return;
    if (c->state == C_HELD) {
        /* Back inside the lease: re-assert it under the same epoch now,
         * rather than waiting for the tick. */
        if (now(c) < c->deadline)
            renew(c);
    } else if (c->state == C_IDLE) {
        do_register(c);
    }
}

int roost_cluster_serving(const roost_cluster_t *c)
{
    return c && c->serving && c->state == C_HELD;
}

void roost_cluster_drain(roost_cluster_t *c)
{
    if (c) {
        c->draining = 1;
        uv_timer_stop(&c->reap);
    }
}

static void on_left(int status, void *data)
{
    roost_cluster_t *c = data;
    void (*cb)(int, void *) = c->leave_cb;

    c->leave_cb = NULL;
    if (status != 0 && status != ROOST_ECANCELED)
        ROOST_WARN(0, "cluster: leaving: %s", roost_strerror(status));
    if (cb)
        cb(status, c->leave_data);
}

int roost_cluster_leave(roost_cluster_t *c, void (*cb)(int status, void *data), void *data)
{
    if (!c || !cb || c->state == C_LEAVING)
        return ROOST_EINVAL;
    cstate_t was = c->state;
    c->state = C_LEAVING;
    c->serving = 0;
    uv_timer_stop(&c->tick);
    uv_timer_stop(&c->reap);
    if (was != C_HELD)
        return ROOST_ENOTFOUND;
    c->leave_cb = cb;
    c->leave_data = data;
    int rc = roost_store_cluster_leave(c->srv->store, on_left, c);
    if (rc < 0)
        c->leave_cb = NULL;
    return rc;
}

static void on_timer_closed(uv_handle_t *h)
{
    roost_cluster_t *c = h->data;
    if (--c->open_handles == 0)
        free(c);
}

void roost_cluster_free(roost_cluster_t *c)
{
    if (!c || c->closed)
        return;
    c->closed = 1;
    uv_close((uv_handle_t *)&c->tick, on_timer_closed);
    uv_close((uv_handle_t *)&c->reap, on_timer_closed);
}
