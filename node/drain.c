/* The drain's pacing: a timer releases a batch of clients per tick, and a
 * deadline ends the drain whatever is left. */
#include <stdlib.h>

#include "node/c2s_int.h"
#include "node/drain.h"
#include "node/log.h"
#include "node/metrics.h"
#include "node/sm.h"

#define TICK_MS 100

static struct {
    roost_server_t *srv;
    void (*done)(roost_server_t *srv);
    uv_timer_t tick;
    uint64_t start;
    int on;
    size_t released;
    roost_metric_t *m_released;
} drain;

static double remaining(void *data)
{
    roost_server_t *srv = data;
    return srv->draining ? (double)srv->n_conns : 0;
}

static void finish(void)
{
    void (*done)(roost_server_t *) = drain.done;
    roost_drain_stop();
    ROOST_INFO(0, "drain finished released=%zu left=%zu", drain.released, drain.srv->n_conns);
    if (done != NULL)
        done(drain.srv);
}

static void on_tick(uv_timer_t *t)
{
    roost_server_t *srv = drain.srv;
    const roost_config_t *cfg = srv->cfg;
    uint64_t now = uv_now(srv->loop);
    if (srv->n_conns == 0 || now - drain.start >= (uint64_t)cfg->drain_deadline_s * 1000u) {
        finish();
        return;
    }
    /* Per tick: rate/10, at least one. */
    size_t budget = cfg->drain_rate / (1000 / TICK_MS);
    if (budget == 0)
        budget = 1;
    for (roost_c2s_t *s = srv->conns; s != NULL && budget > 0; s = s->next) {
        if (s->gone || s->released)
            continue;
        s->released = 1;
        roost_sm_release(s);
        roost_metric_inc(drain.m_released);
        drain.released++;
        budget--;
    }
}

void roost_drain_start(roost_server_t *srv, void (*done)(roost_server_t *srv))
{
    if (drain.on)
        return;
    drain.srv = srv;
    drain.done = done;
    drain.start = uv_now(srv->loop);
    drain.on = 1;
    drain.m_released = roost_metric_counter("roost_drain_released_total", "",
                                            "Clients let go by a drain");
    roost_metric_gauge_fn("roost_drain_remaining_connections", "",
                          "Connections still open during a drain (0 when not draining)",
                          remaining, srv);
    ROOST_INFO(0, "draining connections=%zu rate=%u/s deadline=%us", srv->n_conns,
               srv->cfg->drain_rate, srv->cfg->drain_deadline_s);
    uv_timer_init(srv->loop, &drain.tick);
    uv_timer_start(&drain.tick, on_tick, 0, TICK_MS);
}

void roost_drain_stop(void)
{
    if (!drain.on)
        return;
    drain.on = 0;
    drain.done = NULL;
    uv_timer_stop(&drain.tick);
    uv_close((uv_handle_t *)&drain.tick, NULL);
}
