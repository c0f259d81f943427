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
#include "node/metrics.h"
#include "node/offline.h"
#include "node/presence.h"
#include "node/router.h"
#include "node/sm.h"
#include "node/stats.h"
#include "node/xmlstream.h"
#include "proto/roost.pb-c.h"
#include "store/error.h"
#include "store/record.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define REQUEST_EVERY 5          /* ask for an ack after this many unacked stanzas */
#define GAP_WAIT_MS 500          /* a queued stanza not back by then is fetched */
#define TICK_MS 250
#define EXPIRE_EVERY_MS 1000
#define EXPIRE_BATCH 100

struct roost_sm_s {
    roost_c2s_t *s;
    int resumable;
    char *id;                    /* resumable: the SM id */
    uint64_t h_in;               /* stanzas handled from the client */
    uint64_t sent;               /* stanzas written (resumable: last number) */
    uint64_t acked;              /* the client's last h */
    uint64_t max_pushed;         /* highest number our own pushes got */
    uint64_t max_seen;           /* highest number published to us */
    uint64_t check_at;           /* loop ms of the next gap check; 0 none */
    unsigned filling : 1;        /* a range read is in flight */
    unsigned resuming : 1;       /* takeover in flight: hold envelopes */
    unsigned r_pending : 1;      /* we asked for an ack */
    unsigned ended : 1;          /* state deleted: write directly */
    /* Stanzas not yet handed to Redis (it was unreachable), oldest first:
     * a resumable session never writes an unnumbered stanza. */
    struct held_s *held, *held_tail;
    size_t n_held;
    roost_sm_t *prev, *next;     /* every live sm of this node */
};

typedef struct held_s {
    struct held_s *next;
    size_t len;
    char bytes[];
} held_t;

static roost_sm_t *all;
static roost_server_t *tick_srv;
static uv_timer_t tick;
static int tick_on;
static uint64_t last_expire;
static int expiring;

static roost_metric_t *m_enabled, *m_resumed_ok, *m_resumed_failed, *m_detached, *m_expired;

static void metrics_init(void)
{
    if (m_enabled != NULL)
        return;
    m_enabled = roost_metric_counter("roost_sm_enabled_total", "",
                                     "Stream management enabled (XEP-0198)");
    m_resumed_ok = roost_metric_counter("roost_sm_resumptions_total", "result=\"ok\"",
                                        "Stream resumptions by result");
    m_resumed_failed = roost_metric_counter("roost_sm_resumptions_total", "result=\"failed\"",
                                            "Stream resumptions by result");
    m_detached = roost_metric_counter("roost_sm_detached_total", "",
                                      "Sessions detached (connection lost, resumable)");
    m_expired = roost_metric_counter("roost_sm_expired_total", "",
                                     "Detached or graced sessions that expired");
}

static double count_sm(void *data)
{
    size_t n = 0;
    for (roost_sm_t *sm = all; sm != NULL; sm = sm->next)
        n += sm->resumable;
    return (double)n;
}

/* ---- lifecycle ---------------------------------------------------------- */

static roost_sm_t *sm_new(roost_c2s_t *s, int resumable, const char *id)
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
    sm->next = all;
    if (all != NULL)
        all->prev = sm;
    all = sm;
    return sm;
}

void roost_sm_free(roost_sm_t *sm)
{
    if (sm == NULL)
        return;
    if (sm->prev != NULL)
        sm->prev->next = sm->next;
    else
        all = sm->next;
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
static int write_seq(roost_sm_t *sm, uint64_t seq, const uint8_t *bytes, size_t len)
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

static void fill_gap(roost_sm_t *sm);

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
        sm->check_at = uv_now(s->srv->loop) + GAP_WAIT_MS;
    }
    for (size_t i = 0; i < n; i++) {
        if (write_seq(sm, e[i].seq, e[i].bytes, e[i].len) < 0) {
            /* Only acked stanzas leave the queue, so a hole means the
             * numbering moved on without us: skip to what is there. */
            ROOST_WARN(s->id, "sm: queue skips from %" PRIu64 " to %" PRIu64, sm->sent + 1,
                       e[i].seq);
            sm->sent = e[i].seq - 1;
            write_seq(sm, e[i].seq, e[i].bytes, e[i].len);
        }
    }
    if (sm->max_seen > sm->sent)
        fill_gap(sm);
    roost_c2s_unref(s);
}

/* Reads every queued stanza after the last written one. */
static void fill_gap(roost_sm_t *sm)
{
    roost_c2s_t *s = sm->s;
    if (sm->filling || sm->resuming || sm->ended || s->gone)
        return;
    if (roost_store_sm_range(s->srv->store, s->jid.bare, s->jid.resource, sm->sent + 1,
                             on_range, s) != 0) {
        sm->check_at = uv_now(s->srv->loop) + GAP_WAIT_MS;
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
    if (write_seq(sm, seq, bytes, len) < 0)
        fill_gap(sm);
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
            sm->check_at = uv_now(s->srv->loop) + GAP_WAIT_MS;
    } else if (status == ROOST_ELIMIT) {
        roost_limit_hit(s->id, "sm_queue", "unacknowledged stanzas in Redis");
        roost_c2s_stream_error(s, "resource-constraint",
                               "too many unacknowledged stanzas");
    } else if (status == ROOST_ENOTFOUND && sm != NULL) {
        /* The state is gone (the session was taken over or ended). */
        sm->ended = 1;
        if (!s->gone)
            roost_c2s_write_raw(s, p->bytes, p->len);
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

/* Packs an envelope that carries bytes to full (one target). */
static uint8_t *pack_envelope(roost_server_t *srv, const char *full, uint64_t conn_id,
                              const char *bytes, size_t len, size_t *out_len)
{
    Roost__RouteEnvelope env = ROOST__ROUTE_ENVELOPE__INIT;
    Roost__RouteEnvelope__Target tg = ROOST__ROUTE_ENVELOPE__TARGET__INIT;
    Roost__RouteEnvelope__Target *tp = &tg;
    tg.jid = (char *)full;
    tg.conn_id = conn_id;
    env.version = 1;
    env.kind = ROOST__ROUTE_ENVELOPE__KIND__STANZA;
    env.targets = &tp;
    env.n_targets = 1;
    env.stanza.data = (uint8_t *)bytes;
    env.stanza.len = len;
    env.origin_node = srv->node_id;
    env.hops = 1;
    *out_len = roost__route_envelope__get_packed_size(&env);
    uint8_t *buf = malloc(*out_len ? *out_len : 1);
    if (buf != NULL)
        roost__route_envelope__pack(&env, buf);
    return buf;
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
    uint8_t *env = pack_envelope(s->srv, s->jid.full, s->id, bytes, len, &env_len);
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
static void flush_held(roost_sm_t *sm)
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

static void write_failed(roost_c2s_t *s, const char *cond, const uint64_t *h)
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
static char *id_resource(const char *id)
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

static int sm_end_async(roost_c2s_t *s);

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
        sm_end_async(s);
    }
    if (!s->gone) {
        if (status != 0) {
            ROOST_WARN(s->id, "sm: enable failed: %s", roost_strerror(status));
            write_failed(s, "internal-server-error", NULL);
        } else if ((s->sm = sm_new(s, 1, q->id)) == NULL) {
            write_failed(s, "internal-server-error", NULL);
        } else {
            write_enabled(s, q->id, q->max_s);
            roost_metric_inc(m_enabled);
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
        write_failed(s, "unexpected-request", NULL);
        return 0;
    }
    metrics_init();
    if (resume == NULL || (strcmp(resume, "true") != 0 && strcmp(resume, "1") != 0)) {
        if ((s->sm = sm_new(s, 0, NULL)) == NULL) {
            write_failed(s, "internal-server-error", NULL);
            return 0;
        }
        write_enabled(s, NULL, 0);
        roost_metric_inc(m_enabled);
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
        write_failed(s, "internal-server-error", NULL);
        return 0;
    }
    q->s = s;
    q->max_s = max_s;
    if (roost_store_sm_enable(s->srv->store, s->jid.bare, s->jid.resource, q->id, s->id,
                              max_s * 1000u, on_enabled, q) != 0) {
        free(q->id);
        free(q);
        write_failed(s, "internal-server-error", NULL);
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

static int parse_h(const char *v, uint64_t *h)
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
    if (parse_h(roost_xml_attr(el, "h"), &h) != 0) {
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

/* ---- resumption ---------------------------------------------------------- */

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
    roost_metric_inc(m_resumed_failed);
    if (s->sm != NULL) {
        roost_sm_free(s->sm);
        s->sm = NULL;
    }
    if (s->jid.full != NULL) {
        roost_map_del(s->srv->sessions, s->jid.full, s);
        roost_jid_clear(&s->jid);
    }
    if (!s->gone) {
        write_failed(s, cond, h);
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
static void on_detached(int status, void *data);

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
        roost_metric_inc(m_resumed_ok);
        if (roost_store_sm_detach(srv->store, s->jid.bare, s->jid.resource, s->id, t->h_in,
                                  on_detached, srv) == 0)
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
    roost_metric_inc(m_resumed_ok);
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
        if (write_seq(sm, t->e[i].seq, t->e[i].bytes, t->e[i].len) < 0) {
            sm->sent = t->e[i].seq - 1;
            write_seq(sm, t->e[i].seq, t->e[i].bytes, t->e[i].len);
        }
    if (t->n == 0 && t->seq > sm->sent)
        sm->sent = t->seq;
    if (t->seq > sm->max_seen)
        sm->max_seen = t->seq;
    if (sm->max_seen > sm->sent)
        fill_gap(sm);
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

static int handle_resume(roost_c2s_t *s, const roost_xml_t *el)
{
    const char *previd = roost_xml_attr(el, "previd");
    uint64_t h;
    metrics_init();
    if (s->state != C2S_BIND || s->sm != NULL) {
        write_failed(s, "unexpected-request", NULL);
        return 0;
    }
    if (previd == NULL || parse_h(roost_xml_attr(el, "h"), &h) != 0) {
        write_failed(s, "bad-request", NULL);
        return 0;
    }
    resume_req_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        goto fail;
    q->s = s;
    q->h = h;
    if ((q->resource = id_resource(previd)) == NULL) {
        free(q);
        roost_metric_inc(m_resumed_failed);
        write_failed(s, "item-not-found", NULL);
        return 0;
    }
    roost_jid_clear(&s->jid);
    if ((q->id = strdup(previd)) == NULL ||
        roost_jid_make(&s->jid, s->username, s->domain, q->resource) != 0) {
        roost_jid_clear(&s->jid);
        resume_free(q);
        roost_metric_inc(m_resumed_failed);
        write_failed(s, "item-not-found", NULL);
        return 0;
    }
    /* Registered at once so that stanzas published to us while the
     * takeover runs are seen (and then read back from the queue). */
    if ((s->sm = sm_new(s, 1, previd)) == NULL)
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
    write_failed(s, "internal-server-error", NULL);
    return 0;
}

int roost_sm_handle(roost_c2s_t *s, roost_xml_t *el)
{
    if (strcmp(el->name, "enable") == 0)
        return handle_enable(s, el);
    if (strcmp(el->name, "resume") == 0)
        return handle_resume(s, el);
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

static void on_detached(int status, void *data)
{
    roost_server_t *srv = data;
    if (status != 0 && status != ROOST_ESTALE)
        ROOST_WARN(0, "sm: detaching a session failed: %s", roost_strerror(status));
    srv->pending_ops--;
    roost_server_check_idle(srv);
}

/* Deletes s's state (owned by s's connection), its queue going the
 * undeliverable way. 0, or negative when it could not be asked. */
static int sm_end_async(roost_c2s_t *s)
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
        sm_end_async(s);
        return 0;
    }
    if (roost_store_sm_detach(srv->store, s->jid.bare, s->jid.resource, s->id, sm->h_in,
                              on_detached, srv) == 0)
        srv->pending_ops++;
    roost_metric_inc(m_detached);
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

/* ---- redirect of stanzas for vanished local sessions ------------------------ */

static void on_redirected(int status, uint64_t seq, long long receivers, void *data)
{
    if (status != 0 && status != ROOST_ENOTFOUND)
        ROOST_WARN(0, "sm: queueing a stanza for a gone session failed: %s",
                   roost_strerror(status));
}

void roost_sm_redirect(roost_server_t *srv, const char *full, const uint8_t *stanza,
                       size_t len, const uint8_t *env, size_t env_len)
{
    const char *slash = strchr(full, '/');
    if (slash == NULL || len == 0)
        return;
    char *bare = strndup(full, (size_t)(slash - full));
    if (bare == NULL)
        return;
    roost_store_sm_push(srv->store, bare, slash + 1, stanza, len, env, env_len,
                        srv->cfg->sm_max_queue, on_redirected, NULL);
    free(bare);
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
        roost_metric_inc(m_expired);
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
    for (roost_sm_t *sm = all; sm != NULL; sm = sm->next) {
        if (sm->held != NULL && roost_store_connected(srv->store))
            flush_held(sm);
        if (sm->check_at != 0 && now >= sm->check_at) {
            sm->check_at = 0;
            if (sm->max_pushed > sm->sent || sm->max_seen > sm->sent)
                fill_gap(sm);
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
    metrics_init();
    roost_metric_gauge_fn("roost_sm_enabled_sessions", "",
                          "Local sessions with resumable stream management", count_sm, NULL);
    tick_srv = srv;
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
