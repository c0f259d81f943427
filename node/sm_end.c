/* The end of stream-managed and drained sessions (node/sm.h): detach or
 * end on a lost connection, a new bind taking a queue over, stanzas for
 * vanished sessions, the drain's release, and the node-wide timer that
 * fills publish gaps and expires detached sessions. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/c2s_int.h"
#include "node/log.h"
#include "node/sm_int.h"
#include "store/error.h"
#include "node/deliver.h"
#include "node/limit.h"
#include "node/presence.h"
#include "node/xmlstream.h"
#include "store/record.h"

#define TICK_MS 250
#define EXPIRE_EVERY_MS 1000
#define EXPIRE_BATCH 100

static uv_timer_t tick;
static int tick_on;
static uint64_t last_expire;
static int expiring;

static double count_sm(void *data)
{
    size_t n = 0;
    for (roost_sm_t *sm = roost_sm_all; sm != NULL; sm = sm->next)
        n += sm->resumable;
    return (double)n;
}

/* ---- the end of a connection ---------------------------------------------- */

typedef struct {
    roost_server_t *srv;
    char *bare;
} end_req_t;

static void on_ended(int status, const roost_sm_entry_t *e, size_t n, void *data)
{
    end_req_t *q = data;
    if (status == 0)
        roost_sm_undeliverable(q->srv, q->bare, e, n);
    else if (status != ROOST_ESTALE)
        ROOST_WARN(0, "sm: ending a session failed: %s", roost_strerror(status));
    q->srv->pending_ops--;
    roost_server_check_idle(q->srv);
    free(q->bare);
    free(q);
}

void roost_sm_on_detached(int status, void *data)
{
    roost_server_t *srv = data;
    if (status != 0 && status != ROOST_ESTALE)
        ROOST_WARN(0, "sm: detaching a session failed: %s", roost_strerror(status));
    srv->pending_ops--;
    roost_server_check_idle(srv);
}

/* Deletes s's state (owned by s's connection), its queue going the
 * undeliverable way. 0, or negative when it could not be asked. */
int roost_sm_end_async(roost_c2s_t *s)
{
    roost_server_t *srv = s->srv;
    end_req_t *q = calloc(1, sizeof(*q));
    if (q != NULL && (q->bare = strdup(s->jid.bare)) != NULL) {
        q->srv = srv;
        if (roost_store_sm_end(srv->store, s->jid.bare, s->jid.resource, s->id, on_ended,
                               q) == 0) {
            srv->pending_ops++;
            return 0;
        }
        free(q->bare);
    }
    free(q);
    return ROOST_ENOMEM;
}

int roost_sm_on_close(roost_c2s_t *s)
{
    roost_sm_t *sm = s->sm;
    roost_server_t *srv = s->srv;
    if (s->keep_session)
        return 1;
    if (sm == NULL || !sm->resumable || sm->resuming)
        return 0;
    if (sm->ended)
        return 0;
    if (s->replaced)
        return 1;
    if (s->clean_close) {
        /* The client ended the stream: the session ends, and what it
         * never acknowledged is handled as undeliverable (XEP-0198 §5). */
        roost_sm_end_async(s);
        return 0;
    }
    if (roost_store_sm_detach(srv->store, s->jid.bare, s->jid.resource, s->id, sm->h_in,
                              roost_sm_on_detached, srv) == 0)
        srv->pending_ops++;
    roost_metric_inc(roost_sm_m.detached);
    ROOST_INFO(s->id, "sm detached jid=%s h=%" PRIu64 " sent=%" PRIu64, s->jid.full, sm->h_in,
               sm->sent);
    return 1;
}

typedef struct {
    roost_c2s_t *s;
} takeover_req_t;

static void on_bind_takeover(int status, const roost_sm_entry_t *e, size_t n, void *data)
{
    roost_c2s_t *s = data;
    if (status != 0) {
        ROOST_WARN(s->id, "sm: taking over a queue failed: %s", roost_strerror(status));
    } else if (n > 0) {
        ROOST_INFO(s->id, "delivering %zu stanzas queued for jid=%s", n,
                   s->jid.full != NULL ? s->jid.full : "");
        for (size_t i = 0; i < n; i++) {
            if (s->gone) {
                /* Gone again: they must not be lost now. */
                roost_sm_undeliverable(s->srv, s->jid.bare, e + i, n - i);
                break;
            }
            roost_c2s_send_bytes(s, (const char *)e[i].bytes, e[i].len);
        }
    }
    roost_c2s_unref(s);
}

void roost_sm_bind_takeover(roost_c2s_t *s)
{
    if (roost_store_sm_end(s->srv->store, s->jid.bare, s->jid.resource, 0, on_bind_takeover,
                           s) == 0)
        roost_c2s_ref(s);
}

/* ---- drain ---------------------------------------------------------------- */

static void on_graced(int status, void *data)
{
    roost_c2s_t *s = data;
    if (status != 0) {
        ROOST_WARN(s->id, "drain: keeping the session failed (%s); it ends",
                   roost_strerror(status));
    } else {
        s->keep_session = 1;
        ROOST_INFO(s->id, "drain: session kept for %us jid=%s", s->srv->cfg->drain_grace_s,
                   s->jid.full);
    }
    roost_c2s_stream_error(s, "system-shutdown", NULL);
    roost_c2s_unref(s);
}

void roost_sm_release(roost_c2s_t *s)
{
    roost_server_t *srv = s->srv;
    if (s->gone)
        return;
    if (roost_sm_resumable(s) && s->bound) {
        /* No stream end: the client resumes on another node. */
        ROOST_INFO(s->id, "drain: releasing resumable session jid=%s", s->jid.full);
        s->gone = 1;
        if (s->in_feed)
            roost_xmlstream_pause(s->xs);
        roost_conn_close(s->conn);
        return;
    }
    if (s->bound && srv->cfg->drain_grace_s > 0) {
        roost_session_t r;
        uint8_t *val = NULL;
        size_t vlen = 0;
        if (roost_session_copy(&r, &s->rec) == 0) {
            r.flags |= ROOST_SESS_F_SM;
            int rc = roost_session_encode(&r, &val, &vlen);
            roost_session_clear(&r);
            if (rc == 0 && roost_store_sm_grace(srv->store, s->jid.bare, s->jid.resource, s->id,
                                                srv->cfg->drain_grace_s * 1000u, val, vlen,
                                                on_graced, s) == 0) {
                free(val);
                roost_c2s_ref(s);
                /* Nothing more from this client until it is let go. */
                roost_conn_want_read(s->conn, 0);
                return;
            }
            free(val);
        }
    }
    roost_c2s_stream_error(s, "system-shutdown", NULL);
}

/* ---- undeliverable ----------------------------------------------------------- */

void roost_sm_undeliverable(roost_server_t *srv, const char *bare, const roost_sm_entry_t *e,
                            size_t n)
{
    for (size_t i = 0; i < n; i++) {
        roost_xml_t *st = roost_xmlstream_parse_one(e[i].bytes, e[i].len);
        if (st == NULL)
            continue;
        roost_deliver_fall_back(srv, bare, st);
        roost_xml_free(st);
    }
}

/* ---- the node-wide timer ------------------------------------------------------ */

static void on_expired(int status, const roost_sm_expired_t *x, size_t n, void *data)
{
    roost_server_t *srv = data;
    expiring = 0;
    if (status != 0) {
        if (status != ROOST_ECANCELED)
            ROOST_WARN(0, "sm: expiry sweep failed: %s", roost_strerror(status));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        roost_metric_inc(roost_sm_m.expired);
        ROOST_INFO(0, "sm: session expired jid=%s queued=%zu", x[i].full, x[i].n);
        if (x[i].rec != NULL) {
            roost_session_t rec;
            const char *res = strchr(x[i].full, '/');
            if (res != NULL &&
                roost_session_decode(&rec, res + 1, x[i].rec, x[i].rec_len) == 0) {
                roost_presence_session_ended(srv, x[i].bare, x[i].full, &rec);
                roost_session_clear(&rec);
            }
        }
        roost_sm_undeliverable(srv, x[i].bare, x[i].e, x[i].n);
    }
}

static void on_tick(uv_timer_t *t)
{
    roost_server_t *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    for (roost_sm_t *sm = roost_sm_all; sm != NULL; sm = sm->next) {
        if (sm->held != NULL && roost_store_connected(srv->store))
            roost_sm_flush_held(sm);
        if (sm->check_at != 0 && now >= sm->check_at) {
            sm->check_at = 0;
            if (sm->max_pushed > sm->sent || sm->max_seen > sm->sent)
                roost_sm_fill_gap(sm);
        }
    }
    if (!expiring && now - last_expire >= EXPIRE_EVERY_MS && roost_store_connected(srv->store) &&
        roost_store_node_epoch(srv->store) != 0 && !srv->shutting_down) {
        last_expire = now;
        if (roost_store_sm_expire(srv->store, EXPIRE_BATCH, on_expired, srv) == 0)
            expiring = 1;
    }
}

int roost_sm_start(roost_server_t *srv)
{
    roost_sm_metrics_init();
    roost_metric_gauge_fn("roost_sm_enabled_sessions", "",
                          "Local sessions with resumable stream management", count_sm, NULL);
    uv_timer_init(srv->loop, &tick);
    tick.data = srv;
    uv_unref((uv_handle_t *)&tick);
    tick_on = 1;
    return uv_timer_start(&tick, on_tick, TICK_MS, TICK_MS);
}

void roost_sm_stop(void)
{
    if (!tick_on)
        return;
    tick_on = 0;
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
}
