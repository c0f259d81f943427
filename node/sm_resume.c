/* XEP-0198 resumption (node/sm.h): the client's previd names its state in
 * Redis; one script takes the session over for this node, whoever owned it
 * (a live node, a drained one, a dead one), and the stanzas the client has
 * not acknowledged are written again before anything new. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/c2s_int.h"
#include "node/log.h"
#include "node/sm_int.h"
#include "store/error.h"
#include "node/router.h"
#include "store/record.h"

typedef struct {
    roost_c2s_t *s;
    char *id;
    char *resource;
    uint64_t h;
    int tries;
    uint8_t *new_rec;
    size_t new_len;
    roost_session_t rec;
} resume_req_t;

static void resume_free(resume_req_t *q)
{
    free(q->id);
    free(q->resource);
    free(q->new_rec);
    roost_session_clear(&q->rec);
    free(q);
}

/* Answers <failed/> and undoes the registration. sync: still inside the
 * handler (no roost_c2s_done then). */
static void resume_fail_ex(resume_req_t *q, const char *cond, const uint64_t *h, int sync)
{
    roost_c2s_t *s = q->s;
    roost_metric_inc(roost_sm_m.resumed_failed);
    if (s->sm != NULL) {
        roost_sm_free(s->sm);
        s->sm = NULL;
    }
    if (s->jid.full != NULL) {
        roost_map_del(s->srv->sessions, s->jid.full, s);
        roost_jid_clear(&s->jid);
    }
    if (!s->gone) {
        roost_sm_write_failed(s, cond, h);
        ROOST_INFO(s->id, "sm resume failed condition=%s", cond);
    }
    resume_free(q);
    if (!sync)
        roost_c2s_done(s);
}

static void resume_fail(resume_req_t *q, const char *cond, const uint64_t *h)
{
    resume_fail_ex(q, cond, h, 0);
}

static int resume_get(resume_req_t *q);

static void on_takeover(int status, const roost_sm_takeover_t *t, void *data)
{
    resume_req_t *q = data;
    roost_c2s_t *s = q->s;
    roost_server_t *srv = s->srv;
    char buf[128];

    if (status == ROOST_ECONFLICT && q->tries < 3 && !s->gone) {
        /* The record changed between our read and the takeover. */
        if (resume_get(q) == 0)
            return;
        resume_fail(q, "internal-server-error", NULL);
        return;
    }
    if (status != 0) {
        resume_fail(q, status == ROOST_ENOTFOUND ? "item-not-found" : "internal-server-error",
                    NULL);
        return;
    }
    roost_sm_t *sm = s->sm;
    if (s->gone) {
        /* Ours now, but the client already left again: detach it at
         * once so that it waits for a resumption and then expires. */
        roost_metric_inc(roost_sm_m.resumed_ok);
        if (roost_store_sm_detach(srv->store, s->jid.bare, s->jid.resource, s->id, t->h_in,
                                  roost_sm_on_detached, srv) == 0)
            srv->pending_ops++;
        sm->ended = 1;
        resume_free(q);
        roost_c2s_done(s);
        return;
    }
    roost_session_clear(&s->rec);
    s->rec = q->rec;
    memset(&q->rec, 0, sizeof(q->rec));
    s->bound = 1;
    s->state = C2S_ESTABLISHED;
    sm->h_in = t->h_in;
    sm->acked = q->h;
    sm->sent = q->h;
    sm->resuming = 0;
    roost_metric_inc(roost_sm_m.resumed_ok);
    if (t->old_node != NULL && t->old_node[0] != '\0' && t->old_conn != 0 &&
        !(strcmp(t->old_node, srv->node_id) == 0 && t->old_conn == s->id))
        roost_router_kick(srv, t->old_node, s->jid.full, t->old_conn, "conflict",
                          "the session was resumed on another connection");
    snprintf(buf, sizeof(buf), "<resumed xmlns='" ROOST_NS_SM "' h='%" PRIu64 "' previd='",
             sm->h_in % 4294967296u);
    if (!s->gone) {
        roost_c2s_write_raw(s, buf, strlen(buf));
        roost_buf_t b = ROOST_BUF_INIT;
        roost_buf_escape(&b, q->id, strlen(q->id));
        roost_buf_puts(&b, "'/>");
        if (b.data != NULL)
            roost_c2s_write_raw(s, b.data, b.len);
        roost_buf_free(&b);
    }
    /* Numbering goes on where the client's h says it stopped. */
    if (t->n > 0 && t->e[0].seq > sm->sent + 1)
        sm->sent = t->e[0].seq - 1;
    for (size_t i = 0; i < t->n; i++)
        if (roost_sm_write_seq(sm, t->e[i].seq, t->e[i].bytes, t->e[i].len) < 0) {
            sm->sent = t->e[i].seq - 1;
            roost_sm_write_seq(sm, t->e[i].seq, t->e[i].bytes, t->e[i].len);
        }
    if (t->n == 0 && t->seq > sm->sent)
        sm->sent = t->seq;
    if (t->seq > sm->max_seen)
        sm->max_seen = t->seq;
    if (sm->max_seen > sm->sent)
        roost_sm_fill_gap(sm);
    ROOST_INFO(s->id, "sm resumed jid=%s h=%" PRIu64 " replayed=%zu", s->jid.full, q->h, t->n);
    if (!s->gone)
        roost_c2s_resumed(s);
    resume_free(q);
    roost_c2s_done(s);
}

static void on_resume_get(int status, const roost_sm_state_t *st, const uint8_t *rec,
                          size_t rec_len, void *data)
{
    resume_req_t *q = data;
    roost_c2s_t *s = q->s;
    roost_server_t *srv = s->srv;

    if (s->gone) {
        resume_fail(q, "internal-server-error", NULL);
        return;
    }
    if (status != 0) {
        resume_fail(q, "internal-server-error", NULL);
        return;
    }
    if (st == NULL || strcmp(st->id, q->id) != 0) {
        resume_fail(q, "item-not-found", NULL);
        return;
    }
    if (st->gone || rec == NULL) {
        resume_fail(q, "item-not-found", &st->h_in);
        return;
    }
    roost_session_clear(&q->rec);
    if (roost_session_decode(&q->rec, q->resource, rec, rec_len) != 0) {
        resume_fail(q, "internal-server-error", NULL);
        return;
    }
    snprintf(q->rec.node_id, sizeof(q->rec.node_id), "%s", srv->node_id);
    q->rec.node_epoch = roost_store_node_epoch(srv->store);
    q->rec.conn_id = s->id;
    q->rec.flags |= ROOST_SESS_F_SM;
    free(q->new_rec);
    q->new_rec = NULL;
    if (roost_session_encode(&q->rec, &q->new_rec, &q->new_len) != 0 ||
        roost_store_sm_takeover(srv->store, s->jid.bare, q->resource, q->id, q->h, rec, rec_len,
                                q->new_rec, q->new_len, s->id, on_takeover, q) != 0) {
        resume_fail(q, "internal-server-error", NULL);
        return;
    }
}

static int resume_get(resume_req_t *q)
{
    q->tries++;
    return roost_store_sm_get(q->s->srv->store, q->s->jid.bare, q->resource, on_resume_get, q);
}

int roost_sm_handle_resume(roost_c2s_t *s, const roost_xml_t *el)
{
    const char *previd = roost_xml_attr(el, "previd");
    uint64_t h;
    roost_sm_metrics_init();
    if (s->state != C2S_BIND || s->sm != NULL) {
        roost_sm_write_failed(s, "unexpected-request", NULL);
        return 0;
    }
    if (previd == NULL || roost_sm_parse_h(roost_xml_attr(el, "h"), &h) != 0) {
        roost_sm_write_failed(s, "bad-request", NULL);
        return 0;
    }
    resume_req_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        goto fail;
    q->s = s;
    q->h = h;
    if ((q->resource = roost_sm_id_resource(previd)) == NULL) {
        free(q);
        roost_metric_inc(roost_sm_m.resumed_failed);
        roost_sm_write_failed(s, "item-not-found", NULL);
        return 0;
    }
    roost_jid_clear(&s->jid);
    if ((q->id = strdup(previd)) == NULL ||
        roost_jid_make(&s->jid, s->username, s->domain, q->resource) != 0) {
        roost_jid_clear(&s->jid);
        resume_free(q);
        roost_metric_inc(roost_sm_m.resumed_failed);
        roost_sm_write_failed(s, "item-not-found", NULL);
        return 0;
    }
    /* Registered at once so that stanzas published to us while the
     * takeover runs are seen (and then read back from the queue). */
    if ((s->sm = roost_sm_new(s, 1, previd)) == NULL)
        goto fail_q;
    s->sm->resuming = 1;
    roost_c2s_t *old = roost_map_get(s->srv->sessions, s->jid.full);
    if (old != NULL && old != s) {
        /* The same session on an older connection of this node: it goes
         * quietly (replaced: no unavailable, no detach). */
        roost_c2s_stream_error(old, "conflict", "the session was resumed on another connection");
    }
    roost_map_put(s->srv->sessions, s->jid.full, s);
    if (resume_get(q) != 0) {
        resume_fail_ex(q, "internal-server-error", NULL, 1);
        return 0;
    }
    return ROOST_EAGAIN;

fail_q:
    roost_jid_clear(&s->jid);
    resume_free(q);
fail:
    roost_sm_write_failed(s, "internal-server-error", NULL);
    return 0;
}
