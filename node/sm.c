/* XEP-0198 on c2s sessions (node/sm.h). A resumable session never writes a
 * stanza straight to its socket: every stanza is first numbered and queued
 * in Redis by one script that also publishes it to the owner node, which
 * writes stanzas in number order. Stanza n of the queue is therefore the
 * n-th the client counts, on whatever node it resumes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "node/c2s_int.h"
#include "node/deliver.h"
#include "node/limit.h"
#include "node/log.h"
#include "node/sm_int.h"
#include "node/stats.h"
#include "proto/roost.pb-c.h"
#include "store/error.h"
#include "store/record.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define REQUEST_EVERY 5          /* ask for an ack after this many unacked stanzas */


roost_sm_t *roost_sm_all;

roost_sm_metrics_t roost_sm_m;

void roost_sm_metrics_init(void)
{
    if (roost_sm_m.enabled != NULL)
        return;
    roost_sm_m.enabled = roost_metric_counter("roost_sm_enabled_total", "",
                                     "Stream management enabled (XEP-0198)");
    roost_sm_m.resumed_ok = roost_metric_counter("roost_sm_resumptions_total", "result=\"ok\"",
                                        "Stream resumptions by result");
    roost_sm_m.resumed_failed = roost_metric_counter("roost_sm_resumptions_total", "result=\"failed\"",
                                            "Stream resumptions by result");
    roost_sm_m.detached = roost_metric_counter("roost_sm_detached_total", "",
                                      "Sessions detached (connection lost, resumable)");
    roost_sm_m.expired = roost_metric_counter("roost_sm_expired_total", "",
                                     "Detached or graced sessions that expired");
}

/* ---- lifecycle ---------------------------------------------------------- */

roost_sm_t *roost_sm_new(roost_c2s_t *s, int resumable, const char *id)
{
    roost_sm_t *sm = calloc(1, sizeof(*sm));
    if (sm == NULL)
        return NULL;
    if (id != NULL && (sm->id = strdup(id)) == NULL) {
        free(sm);
        return NULL;
    }
    sm->s = s;
    sm->resumable = resumable;
    sm->next = roost_sm_all;
    if (roost_sm_all != NULL)
        roost_sm_all->prev = sm;
    roost_sm_all = sm;
    return sm;
}

void roost_sm_free(roost_sm_t *sm)
{
    if (sm == NULL)
        return;
    if (sm->prev != NULL)
        sm->prev->next = sm->next;
    else
        roost_sm_all = sm->next;
    if (sm->next != NULL)
        sm->next->prev = sm->prev;
    while (sm->held != NULL) {
        held_t *x = sm->held;
        sm->held = x->next;
        free(x);
    }
    free(sm->id);
    free(sm);
}

int roost_sm_resumable(const roost_c2s_t *s)
{
    return s->sm != NULL && s->sm->resumable && !s->sm->ended;
}

/* ---- output ------------------------------------------------------------- */

static void request_ack(roost_sm_t *sm)
{
    static const char r[] = "<r xmlns='" ROOST_NS_SM "'/>";
    if (sm->r_pending || sm->sent - sm->acked < REQUEST_EVERY)
        return;
    sm->r_pending = 1;
    roost_c2s_write_raw(sm->s, r, sizeof(r) - 1);
}

void roost_sm_written(roost_c2s_t *s)
{
    if (s->sm == NULL)
        return;
    s->sm->sent++;
    request_ack(s->sm);
}

/* Writes queued stanza seq if it is the next one; 1 written, 0 a
 * duplicate, -1 out of order (a gap before it). */
int roost_sm_write_seq(roost_sm_t *sm, uint64_t seq, const uint8_t *bytes, size_t len)
{
    if (seq <= sm->sent)
        return 0;
    if (seq != sm->sent + 1)
        return -1;
    sm->sent = seq;
    if (!sm->s->gone) {
        roost_stats_stanza_out_bytes((const char *)bytes, len);
        roost_c2s_write_raw(sm->s, (const char *)bytes, len);
    }
    request_ack(sm);
    return 1;
}


static void on_range(int status, const roost_sm_entry_t *e, size_t n, void *data)
{
    roost_c2s_t *s = data;
    roost_sm_t *sm = s->sm;
    if (sm == NULL || s->gone) {
        roost_c2s_unref(s);
        return;
    }
    sm->filling = 0;
    if (status != 0) {
        ROOST_WARN(s->id, "sm: reading queued stanzas failed: %s", roost_strerror(status));
        sm->check_at = uv_now(s->srv->loop) + ROOST_SM_GAP_WAIT_MS;
    }
    for (size_t i = 0; i < n; i++) {
        if (roost_sm_write_seq(sm, e[i].seq, e[i].bytes, e[i].len) < 0) {
            /* Only acked stanzas leave the queue, so a hole means the
             * numbering moved on without us: skip to what is there. */
            ROOST_WARN(s->id, "sm: queue skips from %" PRIu64 " to %" PRIu64, sm->sent + 1,
                       e[i].seq);
            sm->sent = e[i].seq - 1;
            roost_sm_write_seq(sm, e[i].seq, e[i].bytes, e[i].len);
        }
    }
    if (sm->max_seen > sm->sent)
        roost_sm_fill_gap(sm);
    roost_c2s_unref(s);
}

/* Reads every queued stanza after the last written one. */
void roost_sm_fill_gap(roost_sm_t *sm)
{
    roost_c2s_t *s = sm->s;
    if (sm->filling || sm->resuming || sm->ended || s->gone)
        return;
    if (roost_store_sm_range(s->srv->store, s->jid.bare, s->jid.resource, sm->sent + 1,
                             on_range, s) != 0) {
        sm->check_at = uv_now(s->srv->loop) + ROOST_SM_GAP_WAIT_MS;
        return;
    }
    sm->filling = 1;
    sm->check_at = 0;
    roost_c2s_ref(s);
}

void roost_sm_on_envelope(roost_server_t *srv, const char *full, uint64_t seq,
                          const uint8_t *bytes, size_t len)
{
    roost_c2s_t *s = roost_map_get(srv->sessions, full);
    roost_sm_t *sm = s != NULL ? s->sm : NULL;
    /* No such session here: the stanza waits in the queue for whoever
     * resumes it. */
    if (sm == NULL || !sm->resumable || sm->ended)
        return;
    if (seq > sm->max_seen)
        sm->max_seen = seq;
    if (sm->resuming || sm->filling)
        return;
    if (roost_sm_write_seq(sm, seq, bytes, len) < 0)
        roost_sm_fill_gap(sm);
}

static void hold(roost_sm_t *sm, const char *bytes, size_t len);

typedef struct {
    roost_c2s_t *s;
    char *bytes;                 /* a copy, for the fall-back write */
    size_t len;
} own_push_t;

static void on_own_push(int status, uint64_t seq, long long receivers, void *data)
{
    own_push_t *p = data;
    roost_c2s_t *s = p->s;
    roost_sm_t *sm = s->sm;
    if (status == 0 && sm != NULL) {
        if (seq > sm->max_pushed)
            sm->max_pushed = seq;
        if (seq > sm->sent && sm->check_at == 0)
            sm->check_at = uv_now(s->srv->loop) + ROOST_SM_GAP_WAIT_MS;
    } else if (status == ROOST_ELIMIT) {
        roost_limit_hit(s->id, "sm_queue", "unacknowledged stanzas in Redis");
        roost_c2s_stream_error(s, "resource-constraint",
                               "too many unacknowledged stanzas");
    } else if (status == ROOST_ENOTFOUND && sm != NULL) {
        /* The state is gone (the session was taken over or ended). */
        sm->ended = 1;
        if (!s->gone && roost_c2s_write_raw(s, p->bytes, p->len) == 0)
            roost_sm_written(s);
    } else if (status != 0 && sm != NULL) {
        /* Redis went away with it: it may or may not be queued. Queue it
         * again when Redis is back (a duplicate beats a loss). */
        ROOST_WARN(s->id, "sm: queueing a stanza failed: %s", roost_strerror(status));
        hold(sm, p->bytes, p->len);
    }
    free(p->bytes);
    free(p);
    roost_c2s_unref(s);
}

static void hold(roost_sm_t *sm, const char *bytes, size_t len)
{
    roost_c2s_t *s = sm->s;
    held_t *x;
    if (sm->n_held >= s->srv->cfg->sm_max_queue || (x = malloc(sizeof(*x) + len)) == NULL) {
        roost_limit_hit(s->id, "sm_queue", "stanzas held while Redis is away");
        roost_c2s_stream_error(s, "resource-constraint", "too many unacknowledged stanzas");
        return;
    }
    x->next = NULL;
    x->len = len;
    memcpy(x->bytes, bytes, len);
    if (sm->held_tail != NULL)
        sm->held_tail->next = x;
    else
        sm->held = x;
    sm->held_tail = x;
    sm->n_held++;
}

/* Hands one stanza to the push script; 0, or negative when Redis cannot
 * take it now. */
static int push_own(roost_c2s_t *s, const char *bytes, size_t len)
{
    size_t env_len;
    own_push_t *p = calloc(1, sizeof(*p));
    uint8_t *env = roost_deliver_pack_one(s->srv, s->jid.full, s->id, bytes, len, 1, &env_len);
    if (p == NULL || env == NULL || (p->bytes = malloc(len)) == NULL) {
        free(env);
        free(p);
        return ROOST_ENOMEM;
    }
    memcpy(p->bytes, bytes, len);
    p->len = len;
    p->s = s;
    int rc = roost_store_sm_push(s->srv->store, s->jid.bare, s->jid.resource,
                                 (const uint8_t *)bytes, len, env, env_len,
                                 s->srv->cfg->sm_max_queue, on_own_push, p);
    free(env);
    if (rc != 0) {
        free(p->bytes);
        free(p);
        return rc;
    }
    roost_c2s_ref(s);
    return 0;
}

/* Pushes held stanzas, in order, while Redis takes them. */
void roost_sm_flush_held(roost_sm_t *sm)
{
    while (sm->held != NULL && !sm->ended) {
        held_t *x = sm->held;
        if (push_own(sm->s, x->bytes, x->len) != 0)
            return;
        sm->held = x->next;
        if (sm->held == NULL)
            sm->held_tail = NULL;
        sm->n_held--;
        free(x);
    }
}

int roost_sm_outbound(roost_c2s_t *s, const char *bytes, size_t len)
{
    roost_sm_t *sm = s->sm;
    if (sm == NULL || !sm->resumable || sm->ended || s->jid.full == NULL)
        return 0;
    /* Order: nothing overtakes what is held. */
    if (sm->held != NULL || push_own(s, bytes, len) != 0)
        hold(sm, bytes, len);
    return 1;
}

void roost_sm_inbound(roost_c2s_t *s)
{
    if (s->sm != NULL)
        s->sm->h_in++;
}

/* ---- enable ------------------------------------------------------------- */

void roost_sm_write_failed(roost_c2s_t *s, const char *cond, const uint64_t *h)
{
    char buf[256];
    if (h != NULL)
        snprintf(buf, sizeof(buf), "<failed xmlns='" ROOST_NS_SM "' h='%" PRIu64 "'><%s xmlns='"
                 NS_STANZAS "'/></failed>", *h, cond);
    else
        snprintf(buf, sizeof(buf), "<failed xmlns='" ROOST_NS_SM "'><%s xmlns='" NS_STANZAS
                 "'/></failed>", cond);
    roost_c2s_write_raw(s, buf, strlen(buf));
}

static void write_enabled(roost_c2s_t *s, const char *id, unsigned max_s)
{
    roost_buf_t b = ROOST_BUF_INIT;
    roost_buf_puts(&b, "<enabled xmlns='" ROOST_NS_SM "'");
    if (id != NULL) {
        roost_buf_puts(&b, " id='");
        roost_buf_escape(&b, id, strlen(id));
        roost_buf_printf(&b, "' resume='true' max='%u'", max_s);
    }
    roost_buf_puts(&b, "/>");
    if (b.data != NULL)
        roost_c2s_write_raw(s, b.data, b.len);
    roost_buf_free(&b);
}

/* "<32 hex random>-<hex of the resource>": resumption finds the state
 * from the id alone, under the authenticated user's keys, so an id is
 * useless to anyone else. */
static char *make_id(const char *resource)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    size_t rl = strlen(resource);
    char *id = malloc(33 + 2 * rl + 1);
    if (id == NULL || RAND_bytes(r, sizeof(r)) != 1) {
        free(id);
        return NULL;
    }
    char *p = id;
    for (size_t i = 0; i < sizeof(r); i++) {
        *p++ = hex[r[i] >> 4];
        *p++ = hex[r[i] & 15];
    }
    *p++ = '-';
    for (size_t i = 0; i < rl; i++) {
        *p++ = hex[(unsigned char)resource[i] >> 4];
        *p++ = hex[(unsigned char)resource[i] & 15];
    }
    *p = '\0';
    return id;
}

/* The resource inside an id made by make_id, or NULL. */
char *roost_sm_id_resource(const char *id)
{
    size_t n = strlen(id);
    if (n < 34 || n > ROOST_SM_ID_MAX || id[32] != '-' || (n - 33) % 2 != 0)
        return NULL;
    if (strspn(id, "0123456789abcdef") != 32)
        return NULL;
    size_t rl = (n - 33) / 2;
    char *res = malloc(rl + 1);
    if (res == NULL)
        return NULL;
    for (size_t i = 0; i < rl; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = id[33 + 2 * i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) {
                free(res);
                return NULL;
            }
            v = v * 16 + d;
        }
        res[i] = (char)v;
    }
    res[rl] = '\0';
    if (rl == 0 || strlen(res) != rl) {
        free(res);
        return NULL;
    }
    return res;
}

typedef struct {
    roost_c2s_t *s;
    char *id;
    unsigned max_s;
} enable_req_t;


static void on_record_updated(int status, void *data)
{
    if (status != 0)
        ROOST_WARN(0, "sm: session record update failed: %s", roost_strerror(status));
}

static void on_enabled(int status, void *data)
{
    enable_req_t *q = data;
    roost_c2s_t *s = q->s;
    if (s->gone && status == 0 && s->jid.full != NULL) {
        /* The client left before the state was made: no one will ever
         * detach it, so it must not stay (it would swallow stanzas). */
        roost_sm_end_async(s);
    }
    if (!s->gone) {
        if (status != 0) {
            ROOST_WARN(s->id, "sm: enable failed: %s", roost_strerror(status));
            roost_sm_write_failed(s, "internal-server-error", NULL);
        } else if ((s->sm = roost_sm_new(s, 1, q->id)) == NULL) {
            roost_sm_write_failed(s, "internal-server-error", NULL);
        } else {
            write_enabled(s, q->id, q->max_s);
            roost_metric_inc(roost_sm_m.enabled);
            /* From now on senders queue for us instead of publishing to
             * this node; until then what they send is queued on arrival. */
            s->rec.flags |= ROOST_SESS_F_SM;
            roost_store_session_update(s->srv->store, s->jid.bare, &s->rec, on_record_updated,
                                       NULL);
            ROOST_INFO(s->id, "sm enabled resumable max=%u", q->max_s);
        }
    }
    free(q->id);
    free(q);
    roost_c2s_done(s);
}

static int handle_enable(roost_c2s_t *s, const roost_xml_t *el)
{
    const char *resume = roost_xml_attr(el, "resume");
    const char *max = roost_xml_attr(el, "max");
    unsigned max_s = s->srv->cfg->sm_resume_timeout_s;
    if (s->state != C2S_ESTABLISHED || s->sm != NULL) {
        roost_sm_write_failed(s, "unexpected-request", NULL);
        return 0;
    }
    roost_sm_metrics_init();
    if (resume == NULL || (strcmp(resume, "true") != 0 && strcmp(resume, "1") != 0)) {
        if ((s->sm = roost_sm_new(s, 0, NULL)) == NULL) {
            roost_sm_write_failed(s, "internal-server-error", NULL);
            return 0;
        }
        write_enabled(s, NULL, 0);
        roost_metric_inc(roost_sm_m.enabled);
        return 0;
    }
    /* The client may ask for a shorter wait than ours (XEP-0198 §5). */
    if (max != NULL) {
        char *end;
        unsigned long v = strtoul(max, &end, 10);
        if (*end == '\0' && v > 0 && v < max_s)
            max_s = (unsigned)v;
    }
    enable_req_t *q = calloc(1, sizeof(*q));
    if (q == NULL || (q->id = make_id(s->jid.resource)) == NULL) {
        free(q);
        roost_sm_write_failed(s, "internal-server-error", NULL);
        return 0;
    }
    q->s = s;
    q->max_s = max_s;
    if (roost_store_sm_enable(s->srv->store, s->jid.bare, s->jid.resource, q->id, s->id,
                              max_s * 1000u, on_enabled, q) != 0) {
        free(q->id);
        free(q);
        roost_sm_write_failed(s, "internal-server-error", NULL);
        return 0;
    }
    return ROOST_EAGAIN;
}

/* ---- acks --------------------------------------------------------------- */

static void write_ack(roost_c2s_t *s)
{
    char buf[96];
    snprintf(buf, sizeof(buf), "<a xmlns='" ROOST_NS_SM "' h='%" PRIu64 "'/>",
             s->sm->h_in % 4294967296u);
    roost_c2s_write_raw(s, buf, strlen(buf));
}

static void on_h_saved(int status, void *data)
{
    roost_c2s_t *s = data;
    if (status != 0)
        ROOST_WARN(s->id, "sm: saving h failed: %s", roost_strerror(status));
    if (!s->gone && s->sm != NULL)
        write_ack(s);
    roost_c2s_done(s);
}

static void on_acked(int status, void *data)
{
    if (status != 0)
        ROOST_WARN(0, "sm: trimming the queue failed: %s", roost_strerror(status));
}

int roost_sm_parse_h(const char *v, uint64_t *h)
{
    char *end;
    if (v == NULL || *v == '\0' || strspn(v, "0123456789") != strlen(v) || strlen(v) > 10)
        return -1;
    unsigned long long x = strtoull(v, &end, 10);
    if (x > 4294967295ull)
        return -1;
    *h = x;
    return 0;
}

static int handle_r(roost_c2s_t *s)
{
    if (!roost_sm_resumable(s)) {
        write_ack(s);
        return 0;
    }
    /* h must be in Redis before we acknowledge: a resumption elsewhere
     * answers with what Redis has. */
    if (roost_store_sm_save_h(s->srv->store, s->jid.bare, s->jid.resource, s->id,
                              s->sm->h_in, on_h_saved, s) != 0) {
        write_ack(s);
        return 0;
    }
    return ROOST_EAGAIN;
}

static void handle_a(roost_c2s_t *s, const roost_xml_t *el)
{
    roost_sm_t *sm = s->sm;
    uint64_t h;
    if (roost_sm_parse_h(roost_xml_attr(el, "h"), &h) != 0) {
        roost_c2s_stream_error(s, "bad-format", "the h attribute of <a/> is not a number");
        return;
    }
    sm->r_pending = 0;
    if (h > sm->sent) {
        /* XEP-0198 §4: an ack for stanzas never sent. */
        roost_c2s_stream_error(s, "undefined-condition", "handled-count-too-high");
        return;
    }
    if (h <= sm->acked)
        return;
    sm->acked = h;
    if (sm->resumable && !sm->ended)
        roost_store_sm_ack(s->srv->store, s->jid.bare, s->jid.resource, h, on_acked, NULL);
}

int roost_sm_handle(roost_c2s_t *s, roost_xml_t *el)
{
    if (strcmp(el->name, "enable") == 0)
        return handle_enable(s, el);
    if (strcmp(el->name, "resume") == 0)
        return roost_sm_handle_resume(s, el);
    if (s->sm == NULL) {
        /* <r/> or <a/> before <enable/>: XEP-0198 §3 makes it an error. */
        roost_c2s_stream_error(s, "unsupported-stanza-type", "stream management is not enabled");
        return 0;
    }
    if (strcmp(el->name, "r") == 0)
        return handle_r(s);
    if (strcmp(el->name, "a") == 0) {
        handle_a(s, el);
        return 0;
    }
    roost_c2s_stream_error(s, "unsupported-stanza-type", NULL);
    return 0;
}
