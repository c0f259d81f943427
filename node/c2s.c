/* The client-to-server session state machine (RFC 6120 §4-§7): stream
 * header checks, features, SASL, resource binding, then hand-off of
 * stanzas to the router. Reading pauses while a stanza waits for Redis, so
 * a session's stanzas are handled strictly in order. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>

#include "node/c2s.h"
#include "node/c2s_int.h"
#include "node/iptable.h"
#include "node/limit.h"
#include "node/log.h"
#include "node/presence.h"
#include "node/router.h"
#include "node/sasl.h"
#include "node/stats.h"
#include "node/tls.h"
#include "node/xmlstream.h"
#include "node/xmpp_error.h"
#include "store/error.h"

#define NS_SASL    "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_TLS     "urn:ietf:params:xml:ns:xmpp-tls"

static roost_buf_t scratch;      /* single-threaded serialization buffer */

static void accept_conn(roost_server_t *srv, uv_stream_t *listener, int direct_tls);

static void random_hex(char *out, size_t nbytes)
{
    unsigned char b[32];
    static const char hex[] = "0123456789abcdef";
    if (nbytes > sizeof(b))
        nbytes = sizeof(b);
    if (RAND_bytes(b, (int)nbytes) != 1)
        memset(b, 0, sizeof(b));   /* ids only need uniqueness; conn id follows */
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- output ----------------------------------------------------------- */

static int send_str(roost_c2s_t *s, const char *str)
{
    if (s->gone)
        return ROOST_EIO;
    return roost_conn_write(s->conn, str, strlen(str));
}

int roost_c2s_write_raw(roost_c2s_t *s, const char *str, size_t len)
{
    if (s->gone)
        return ROOST_EIO;
    return roost_conn_write(s->conn, str, len);
}

/* Every stanza to the client passes here: with stream management it is
 * counted, or for a resumable session queued in Redis first (node/sm.c),
 * also while the connection is closing. */
int roost_c2s_send_bytes(roost_c2s_t *s, const char *bytes, size_t len)
{
    if (roost_sm_outbound(s, bytes, len))
        return 0;
    if (s->gone)
        return ROOST_EIO;
    roost_stats_stanza_out_bytes(bytes, len);
    int rc = roost_conn_write(s->conn, bytes, len);
    if (rc == 0)
        roost_sm_written(s);
    return rc;
}

int roost_c2s_send(roost_c2s_t *s, const roost_xml_t *stanza)
{
    if (s->gone && !roost_sm_resumable(s))
        return ROOST_EIO;
    roost_buf_reset(&scratch);
    int rc = roost_xml_serialize(stanza, ROOST_NS_CLIENT, &scratch);
    if (rc != 0)
        return rc;
    return roost_c2s_send_bytes(s, scratch.data, scratch.len);
}

static void send_header(roost_c2s_t *s)
{
    roost_buf_t b = ROOST_BUF_INIT;
    const char *from = s->domain != NULL ? s->domain
                       : s->srv->cfg->n_domains > 0 ? s->srv->cfg->domains[0] : "localhost";
    random_hex(s->stream_id, 16);
    roost_buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                       "xmlns:stream='http://etherx.jabber.org/streams' id='");
    roost_buf_puts(&b, s->stream_id);
    roost_buf_puts(&b, "' from='");
    roost_buf_escape(&b, from, strlen(from));
    roost_buf_puts(&b, "' version='1.0' xml:lang='en'>");
    if (b.data != NULL)
        roost_conn_write(s->conn, b.data, b.len);
    roost_buf_free(&b);
    s->header_sent = 1;
}

void roost_c2s_stream_error(roost_c2s_t *s, const char *condition, const char *text)
{
    if (s->gone)
        return;
    if (strcmp(condition, "conflict") == 0)
        s->replaced = 1;
    ROOST_INFO(s->id, "stream error condition=%s%s%s", condition,
               text != NULL ? " text=" : "", text != NULL ? text : "");
    if (!s->header_sent)
        send_header(s);
    roost_buf_t b = ROOST_BUF_INIT;
    roost_xmpp_stream_error(&b, condition, text);
    roost_buf_puts(&b, "</stream:stream>");
    if (b.data != NULL)
        roost_conn_write(s->conn, b.data, b.len);
    roost_buf_free(&b);
    s->gone = 1;
    if (s->in_feed)
        roost_xmlstream_pause(s->xs);
    /* Before authentication the client may well still be sending (its
     * stream header crossing our refusal); nothing in Redis waits for this
     * connection's end, so let the error reach it intact. */
    if (!s->bound)
        roost_conn_linger(s->conn);
    roost_conn_close(s->conn);
}

/* ---- lifecycle -------------------------------------------------------- */

void roost_c2s_ref(roost_c2s_t *s)
{
    s->refs++;
}

void roost_c2s_unref(roost_c2s_t *s)
{
    if (--s->refs > 0)
        return;
    roost_sasl_free(s->sasl);
    roost_sm_free(s->sm);
    roost_xmlstream_free(s->xs);
    roost_jid_clear(&s->jid);
    roost_session_clear(&s->rec);
    free(s->domain);
    free(s->username);
    free(s);
}

int roost_c2s_gone(const roost_c2s_t *s) { return s->gone; }
const roost_jid_t *roost_c2s_jid(const roost_c2s_t *s) { return s->bound ? &s->jid : NULL; }
uint64_t roost_c2s_conn_id(const roost_c2s_t *s) { return s->id; }
roost_session_t *roost_c2s_record(roost_c2s_t *s) { return &s->rec; }

static void on_unbound(int status, void *data)
{
    roost_server_t *srv = data;
    if (status != 0)
        ROOST_WARN(0, "session unbind failed: %s", roost_strerror(status));
    srv->pending_ops--;
    roost_server_check_idle(srv);
}

static void on_timer_closed(uv_handle_t *h)
{
    roost_c2s_unref(h->data);
}

static void on_conn_close(roost_conn_t *conn)
{
    roost_c2s_t *s = roost_conn_data(conn);
    roost_server_t *srv = s->srv;
    s->gone = 1;
    s->conn = NULL;
    if (s->bound) {
        roost_map_del(srv->sessions, s->jid.full, s);
        /* A detached session (stream management, drain grace) lives on
         * in Redis: no unbind, and contacts see no unavailable. */
        int keep = roost_sm_on_close(s);
        /* A replaced session's full JID lives on in the new session:
         * contacts must not see it go unavailable. */
        if (!s->replaced && !keep)
            roost_presence_session_ended(srv, s->jid.bare, s->jid.full, &s->rec);
        if (!keep && roost_store_session_unbind(srv->store, s->jid.bare, s->jid.resource,
                                                s->id, on_unbound, srv) == 0)
            srv->pending_ops++;
        s->bound = 0;
    } else if (s->sm != NULL && s->jid.full != NULL) {
        /* A resumption still in flight. */
        roost_map_del(srv->sessions, s->jid.full, s);
    }
    ROOST_INFO(s->id, "closed%s%s", s->jid.full != NULL ? " jid=" : "",
               s->jid.full != NULL ? s->jid.full : "");
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        srv->conns = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    srv->n_conns--;
    if (s->ip_counted && srv->ips != NULL)
        roost_iptable_conn_closed(srv->ips, &s->ipkey, uv_now(srv->loop));
    s->ip_counted = 0;
    if (s->tarpitted) {
        /* Nobody is left to answer: end the step the tarpit held. */
        uv_timer_stop(&s->tarpit);
        s->tarpitted = 0;
        roost_c2s_done(s);
    }
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    uv_close((uv_handle_t *)&s->tarpit, on_timer_closed);
    roost_server_check_idle(srv);
}

static void on_auth_timeout(uv_timer_t *t)
{
    roost_c2s_t *s = t->data;
    char detail[96];
    if (s->state != C2S_ESTABLISHED && !s->gone) {
        snprintf(detail, sizeof(detail), "auth_timeout_s=%u peer=%s",
                 s->srv->cfg->auth_timeout_s, roost_conn_peer(s->conn));
        roost_limit_hit(s->id, "auth_timeout", detail);
        roost_c2s_stream_error(s, "connection-timeout", "authentication took too long");
    }
}

/* XEP-0199 keepalive: after ping_interval_s without input, ping the
 * client; without any input for ping_timeout_s after that, drop it. */
static void on_idle_tick(uv_timer_t *t)
{
    roost_c2s_t *s = t->data;
    const roost_config_t *cfg = s->srv->cfg;
    uint64_t now = uv_now(s->srv->loop);
    uint64_t interval = (uint64_t)cfg->ping_interval_s * 1000u;
    if (s->gone)
        return;
    if (s->ping_sent) {
        roost_limit_hit(s->id, "ping_timeout", s->jid.full);
        roost_c2s_stream_error(s, "connection-timeout", "no answer to ping");
        return;
    }
    if (now - s->last_in < interval) {
        uv_timer_start(&s->timer, on_idle_tick, interval - (now - s->last_in), 0);
        return;
    }
    char buf[512];
    snprintf(buf, sizeof(buf), "<iq type='get' id='roost-ping-%u'><ping xmlns='urn:xmpp:ping'/></iq>",
             ++s->ping_seq);
    /* A stanza: counted (and queued) by stream management like any other. */
    roost_c2s_send_bytes(s, buf, strlen(buf));
    s->ping_sent = 1;
    uv_timer_start(&s->timer, on_idle_tick, (uint64_t)cfg->ping_timeout_s * 1000u, 0);
}

static void start_idle_timer(roost_c2s_t *s)
{
    roost_server_t *srv = s->srv;
    uv_timer_stop(&s->timer);
    s->last_in = uv_now(srv->loop);
    if (srv->cfg->ping_interval_s > 0)
        uv_timer_start(&s->timer, on_idle_tick, (uint64_t)srv->cfg->ping_interval_s * 1000u, 0);
}

void roost_c2s_resumed(roost_c2s_t *s)
{
    start_idle_timer(s);
}

/* ---- parser driving --------------------------------------------------- */

static void after_feed(roost_c2s_t *s, int rc)
{
    while (!s->gone && rc == ROOST_EAGAIN && !s->async) {
        if (s->want_reset) {
            /* Stream restart: whatever the client pipelined after the
             * SASL exchange belongs to the old stream and is discarded. */
            s->want_reset = 0;
            roost_xmlstream_reset(s->xs);
            /* A new stream: an error before the client's next header is
             * still preceded by our opening tag (RFC 6120 §4.9.1.1). */
            s->header_sent = 0;
            rc = 0;
            break;
        }
        s->in_feed = 1;
        rc = roost_xmlstream_resume(s->xs);
        s->in_feed = 0;
    }
    if (s->gone)
        return;
    roost_conn_want_read(s->conn, rc == 0);
}

static void on_data(roost_conn_t *conn, const char *buf, size_t len)
{
    roost_c2s_t *s = roost_conn_data(conn);
    if (s->gone)
        return;
    /* Any bytes, a pong or not, show the client is alive. */
    s->last_in = uv_now(s->srv->loop);
    s->ping_sent = 0;
    s->in_feed = 1;
    int rc = roost_xmlstream_feed(s->xs, buf, len);
    s->in_feed = 0;
    after_feed(s, rc);
}

void roost_c2s_done(roost_c2s_t *s)
{
    s->async = 0;
    if (s->inbound_pending) {
        s->inbound_pending = 0;
        roost_sm_inbound(s);
    }
    if (!s->gone)
        after_feed(s, roost_xmlstream_paused(s->xs) ? ROOST_EAGAIN : 0);
    roost_c2s_unref(s);
}

/* ---- parser callbacks ------------------------------------------------- */

static void on_open(void *data, const roost_xml_t *hdr)
{
    roost_c2s_t *s = data;
    if (s->gone)
        return;
    const char *to = roost_xml_attr(hdr, "to");
    const char *version = roost_xml_attr(hdr, "version");
    char *domain = NULL;
    if (to == NULL || roost_jid_nameprep(to, strlen(to), &domain) != 0 ||
        !roost_config_hosts(s->srv->cfg, domain)) {
        free(domain);
        roost_c2s_stream_error(s, "host-unknown", "this server does not serve that domain");
        return;
    }
    if (s->domain != NULL && strcmp(s->domain, domain) != 0) {
        free(domain);
        roost_c2s_stream_error(s, "host-unknown", "the domain changed on stream restart");
        return;
    }
    free(s->domain);
    s->domain = domain;
    send_header(s);
    /* RFC 6120 §4.7.5: no version or a major version other than 1. */
    if (version == NULL || strncmp(version, "1.", 2) != 0 ||
        strspn(version + 2, "0123456789") != strlen(version + 2) || version[2] == '\0') {
        roost_c2s_stream_error(s, "unsupported-version", "XMPP 1.0 is required");
        return;
    }
    roost_c2s_send_features(s);
}

static void on_close(void *data)
{
    roost_c2s_t *s = data;
    if (s->gone)
        return;
    s->clean_close = 1;
    send_str(s, "</stream:stream>");
    s->gone = 1;
    if (s->in_feed)
        roost_xmlstream_pause(s->xs);
    roost_conn_close(s->conn);
}

static void on_error(void *data, const char *condition, const char *text)
{
    roost_c2s_t *s = data;
    const char *limit = roost_xmlstream_limit(s->xs);
    if (limit != NULL && !s->gone)
        roost_limit_hit(s->id, limit, text);
    roost_c2s_stream_error(s, condition, text);
}

/* ---- bind ------------------------------------------------------------- */

static void iq_error(roost_c2s_t *s, const roost_xml_t *iq, const char *cond, const char *type)
{
    roost_xmpp_error_t err = { type, cond, NULL };
    roost_xml_t *r = roost_xmpp_error_reply(iq, NULL, &err);
    if (r != NULL) {
        roost_xml_set_attr(r, "to", NULL);   /* to the unbound client itself */
        roost_xml_set_attr(r, "from", NULL);
        roost_c2s_send(s, r);
        roost_xml_free(r);
    }
}

typedef struct {
    roost_c2s_t *s;
    char *id;
} bind_req_t;

static void on_bound(int status, const roost_session_t *replaced, void *data)
{
    bind_req_t *req = data;
    roost_c2s_t *s = req->s;
    roost_server_t *srv = s->srv;
    if (s->gone) {
        /* The client left while binding: the record is ours, remove it. */
        if (status == 0 && roost_store_session_unbind(srv->store, s->jid.bare, s->jid.resource,
                                                      s->id, on_unbound, srv) == 0)
            srv->pending_ops++;
        goto out;
    }
    roost_xml_t *iq = roost_xml_new("iq", ROOST_NS_CLIENT);
    if (iq == NULL) {
        roost_c2s_stream_error(s, "internal-server-error", NULL);
        goto out;
    }
    roost_xml_set_attr(iq, "id", req->id);
    if (status != 0) {
        ROOST_WARN(s->id, "bind failed: %s", roost_strerror(status));
        roost_xml_t *q = roost_xml_new("iq", ROOST_NS_CLIENT);
        if (q != NULL) {
            roost_xml_set_attr(q, "id", req->id);
            roost_xml_set_attr(q, "type", "set");
            if (status == ROOST_ELIMIT) {
                char detail[96];
                snprintf(detail, sizeof(detail), "jid=%.64s max_resources=%u", s->jid.bare,
                         srv->cfg->max_resources);
                roost_limit_hit(s->id, "resources", detail);
                iq_error(s, q, "resource-constraint", "wait");
            }
            else
                iq_error(s, q, "internal-server-error", "wait");
            roost_xml_free(q);
        }
        roost_jid_clear(&s->jid);
        roost_xml_free(iq);
        goto out;
    }
    if (replaced != NULL && !(strcmp(replaced->node_id, srv->node_id) == 0 &&
                              replaced->conn_id == s->id))
        roost_router_kick(srv, replaced->node_id, s->jid.full, replaced->conn_id,
                          "conflict", "replaced by a new session");
    roost_map_put(srv->sessions, s->jid.full, s);
    s->bound = 1;
    s->state = C2S_ESTABLISHED;
    start_idle_timer(s);
    roost_xml_set_attr(iq, "type", "result");
    roost_xml_t *b = roost_xml_add(iq, "bind", NS_BIND);
    roost_xml_t *j = b != NULL ? roost_xml_add(b, "jid", NULL) : NULL;
    if (j != NULL)
        roost_xml_add_text(j, s->jid.full, strlen(s->jid.full));
    roost_c2s_send(s, iq);
    roost_xml_free(iq);
    ROOST_INFO(s->id, "bound jid=%s", s->jid.full);
    /* The same full JID was detached or in a drain's grace window: what
     * was queued for it meanwhile is delivered now. */
    if (replaced != NULL && (replaced->flags & ROOST_SESS_F_SM))
        roost_sm_bind_takeover(s);
out:
    free(req->id);
    free(req);
    roost_c2s_done(s);
}

static int handle_bind(roost_c2s_t *s, roost_xml_t *iq, roost_xml_t *bind)
{
    roost_server_t *srv = s->srv;
    if (s->state != C2S_BIND) {
        iq_error(s, iq, "not-allowed", NULL);
        return 0;
    }
    roost_xml_t *res_el = roost_xml_child(bind, "resource", NS_BIND);
    char *res_text = res_el != NULL ? roost_xml_text(res_el) : NULL;
    char generated[33];
    const char *res = res_text;
    if (res == NULL || res[0] == '\0') {
        random_hex(generated, 8);
        res = generated;
    }
    roost_jid_clear(&s->jid);
    int rc = roost_jid_make(&s->jid, s->username, s->domain, res);
    free(res_text);
    if (rc != 0) {
        iq_error(s, iq, "bad-request", NULL);
        return 0;
    }
    roost_session_clear(&s->rec);
    memset(&s->rec, 0, sizeof(s->rec));
    s->rec.resource = strdup(s->jid.resource);
    snprintf(s->rec.node_id, sizeof(s->rec.node_id), "%s", srv->node_id);
    s->rec.node_epoch = roost_store_node_epoch(srv->store);
    s->rec.conn_id = s->id;
    s->rec.bind_time = now_ms();
    bind_req_t *req = calloc(1, sizeof(*req));
    const char *id = roost_xml_attr(iq, "id");
    if (s->rec.resource == NULL || req == NULL || (req->id = strdup(id != NULL ? id : "")) == NULL) {
        free(req);
        iq_error(s, iq, "internal-server-error", "wait");
        return 0;
    }
    req->s = s;
    rc = roost_store_session_bind(srv->store, s->jid.bare, &s->rec, srv->cfg->max_resources,
                                  on_bound, req);
    if (rc != 0) {
        free(req->id);
        free(req);
        iq_error(s, iq, "internal-server-error", "wait");
        return 0;
    }
    return ROOST_EAGAIN;
}

/* ---- stanzas ---------------------------------------------------------- */

static int is_stanza(const roost_xml_t *el)
{
    return strcmp(el->ns, ROOST_NS_CLIENT) == 0 &&
           (strcmp(el->name, "message") == 0 || strcmp(el->name, "presence") == 0 ||
            strcmp(el->name, "iq") == 0);
}

/* Handles one top-level element; takes ownership. ROOST_EAGAIN: an async
 * step is running and will call roost_c2s_done(). */
static int handle(roost_c2s_t *s, roost_xml_t *el)
{
    int rc = 0;
    switch (s->state) {
    case C2S_SASL:
    case C2S_SASL_STEP:
        if (strcmp(el->ns, NS_SASL) == 0) {
            rc = roost_c2s_handle_sasl(s, el);
        } else if (strcmp(el->ns, NS_TLS) == 0 && strcmp(el->name, "starttls") == 0) {
            roost_c2s_start_tls(s);
        } else if (is_stanza(el) && roost_c2s_tls_missing(s)) {
            /* RFC 6120 §5.3.1: TLS is mandatory-to-negotiate here, so a
             * stanza before it is not processed; the stream ends with
             * <policy-violation/>. */
            roost_c2s_stream_error(s, "policy-violation", "use STARTTLS first");
        } else if (is_stanza(el)) {
            roost_c2s_stream_error(s, "not-authorized", "authenticate first");
        } else {
            roost_c2s_stream_error(s, "unsupported-stanza-type", NULL);
        }
        break;
    case C2S_BIND:
    case C2S_ESTABLISHED:
        if (strcmp(el->ns, ROOST_NS_SM) == 0) {
            rc = roost_sm_handle(s, el);
            break;
        }
        if (!is_stanza(el)) {
            roost_c2s_stream_error(s, "unsupported-stanza-type", NULL);
            break;
        }
        if (strcmp(el->name, "iq") == 0) {
            const char *type = roost_xml_attr(el, "type");
            roost_xml_t *bind = roost_xml_child(el, "bind", NS_BIND);
            roost_xml_t *sess = roost_xml_child(el, "session", NS_SESSION);
            if (type != NULL && strcmp(type, "set") == 0 && bind != NULL) {
                rc = handle_bind(s, el, bind);
                break;
            }
            if (type != NULL && strcmp(type, "set") == 0 && sess != NULL &&
                roost_xml_attr(el, "to") == NULL) {
                roost_xml_t *r = roost_xml_new("iq", ROOST_NS_CLIENT);
                if (r != NULL) {
                    roost_xml_set_attr(r, "type", "result");
                    roost_xml_set_attr(r, "id", roost_xml_attr(el, "id"));
                    roost_c2s_send(s, r);
                    roost_xml_free(r);
                }
                break;
            }
        }
        if (s->state != C2S_ESTABLISHED) {
            roost_c2s_stream_error(s, "not-authorized", "bind a resource first");
            break;
        }
        /* The server stamps 'from' on everything a client sends. */
        roost_xml_set_attr(el, "from", s->jid.full);
        roost_stats_stanza_in(el->name);
        rc = roost_router_from_client(s->srv, s, el);
        /* XEP-0198 h counts a stanza once the router is done with it, so
         * an ack (or a detach) never covers one still in flight: the
         * client sends that one again after resuming. */
        if (rc == ROOST_EAGAIN)
            s->inbound_pending = 1;
        else
            roost_sm_inbound(s);
        return rc;          /* the router owns el */
    default:
        roost_c2s_stream_error(s, "bad-format", "unexpected element");
        break;
    }
    roost_xml_free(el);
    return rc;
}

static void on_stanza(void *data, roost_xml_t *el)
{
    roost_c2s_t *s = data;
    if (s->gone) {
        roost_xml_free(el);
        return;
    }
    if (handle(s, el) == ROOST_EAGAIN) {
        s->async = 1;
        roost_c2s_ref(s);
        roost_xmlstream_pause(s->xs);
    }
}

/* ---- accept / close all ------------------------------------------------- */

void roost_c2s_accept(roost_server_t *srv, uv_stream_t *listener)
{
    accept_conn(srv, listener, 0);
}

void roost_c2s_accept_tls(roost_server_t *srv, uv_stream_t *listener)
{
    accept_conn(srv, listener, 1);
}

/* Per-address limits (node/iptable.h), once the client's address is known:
 * at accept, or after its PROXY header. A refused client on the STARTTLS
 * port gets our stream header and a <policy-violation/> stream error with
 * a text, in the clear, as ejabberd's and Prosody's address bans answer;
 * on the direct TLS port nothing readable can be sent before a handshake,
 * and a refused connection must not cost one, so it is just closed. */
static void admit(roost_c2s_t *s)
{
    roost_server_t *srv = s->srv;
    uint8_t ip[16];
    char detail[96];
    int family = roost_conn_peer_ip(s->conn, ip), rc;

    if (family == 0 || srv->ips == NULL || s->gone)
        return;
    roost_ipkey_make(&s->ipkey, family, ip);
    s->ip_known = 1;
    rc = roost_iptable_conn_open(srv->ips, &s->ipkey, uv_now(srv->loop));
    if (rc == ROOST_IPTABLE_OK) {
        s->ip_counted = 1;
        return;
    }
    if (rc < 0) {
        /* Out of memory for one entry: let it in rather than refuse all. */
        ROOST_WARN(s->id, "per-address table: %s", roost_strerror(rc));
        return;
    }
    snprintf(detail, sizeof(detail), "peer=%s", roost_conn_peer(s->conn));
    roost_limit_hit(s->id, rc == ROOST_IPTABLE_TOO_MANY ? "conn_per_ip" : "conn_rate_per_ip",
                    detail);
    if (s->direct_tls) {
        s->gone = 1;
        roost_conn_abort(s->conn);
        return;
    }
    roost_c2s_stream_error(s, "policy-violation",
                           rc == ROOST_IPTABLE_TOO_MANY
                               ? "too many connections from your address"
                               : "too many new connections from your address; slow down");
}

static void on_peer(roost_conn_t *conn)
{
    admit(roost_conn_data(conn));
}

static void accept_conn(roost_server_t *srv, uv_stream_t *listener, int direct_tls)
{
    static const roost_conn_cb_t conn_cb = { on_data, on_conn_close, on_peer };
    static const roost_xmlstream_cb_t xs_cb = { on_open, on_stanza, on_close, on_error };
    roost_c2s_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto fail_drop;
    s->srv = srv;
    s->id = ++srv->next_conn_id;
    s->refs = 2;                 /* one per timer, dropped as each closes */
    s->direct_tls = direct_tls ? 1 : 0;
    roost_xmlstream_limits_t lim = {
        .max_stanza = srv->cfg->max_stanza_size_preauth,
        .max_depth = srv->cfg->max_depth,
        .max_attrs = srv->cfg->max_attrs,
        .chunk = 4096,
    };
    s->xs = roost_xmlstream_new(&lim, &xs_cb, s);
    if (s->xs == NULL)
        goto fail_free;
    s->conn = roost_conn_accept(listener, s->id, &srv->conn_limits, &conn_cb, s);
    if (s->conn == NULL)
        goto fail_xs;
    /* XEP-0368: on the direct TLS port the handshake comes first. Without
     * a context (cannot happen: that listener is only opened with one) the
     * conn would speak plaintext, so drop it. */
    if (direct_tls && (srv->tls_ctx == NULL || roost_conn_start_tls(s->conn, srv->tls_ctx) != 0))
        roost_conn_abort(s->conn);
    uv_timer_init(srv->loop, &s->timer);
    s->timer.data = s;
    uv_timer_init(srv->loop, &s->tarpit);
    s->tarpit.data = s;
    uv_timer_start(&s->timer, on_auth_timeout, (uint64_t)srv->cfg->auth_timeout_s * 1000u, 0);
    s->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = s;
    srv->conns = s;
    srv->n_conns++;
    ROOST_DEBUG(s->id, "accepted peer=%s%s", roost_conn_peer(s->conn),
                srv->cfg->proxy_protocol ? " (awaiting a PROXY header)" : "");
    if (srv->shutting_down) {
        roost_c2s_stream_error(s, "system-shutdown", NULL);
        return;
    }
    /* Behind a load balancer the socket's peer is the balancer: the
     * limits wait for the client's address in the PROXY header. */
    if (srv->cfg->proxy_protocol) {
        if (roost_conn_expect_proxy(s->conn, srv->cfg->proxy_timeout_ms) != 0)
            roost_conn_abort(s->conn);
    } else {
        admit(s);
    }
    return;

fail_xs:
    roost_xmlstream_free(s->xs);
fail_free:
    free(s);
fail_drop:
    ROOST_WARN(0, "could not accept a connection");
}

void roost_c2s_close_all(roost_server_t *srv, const char *condition)
{
    for (roost_c2s_t *s = srv->conns; s != NULL; s = s->next) {
        /* A resumable session only loses its connection (no stream end,
         * which clients take as the end of the session): it is detached
         * and resumes on another node (DESIGN §7). */
        if (s->bound && roost_sm_resumable(s))
            roost_sm_release(s);
        else
            roost_c2s_stream_error(s, condition, NULL);
    }
}

void roost_c2s_count_phases(const roost_server_t *srv, size_t counts[ROOST_C2S_PHASES])
{
    for (const roost_c2s_t *s = srv->conns; s != NULL; s = s->next) {
        roost_c2s_phase_t p;
        if (s->gone)
            p = ROOST_C2S_PHASE_CLOSING;
        else if (s->state == C2S_STREAM_WAIT)
            p = ROOST_C2S_PHASE_STREAM;
        else if (s->state == C2S_BIND)
            p = ROOST_C2S_PHASE_BIND;
        else if (s->state == C2S_ESTABLISHED)
            p = ROOST_C2S_PHASE_ESTABLISHED;
        else
            p = ROOST_C2S_PHASE_AUTH;
        counts[p]++;
    }
}
