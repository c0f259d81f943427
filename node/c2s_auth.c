/* The negotiation part of a c2s session (RFC 6120 §5-§6): stream
 * features before and after authentication, STARTTLS, and SASL with
 * channel binding (XEP-0440), downgrade protection (XEP-0474) and the
 * per-address tarpit for failed logins. Called by node/c2s.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/c2s_int.h"
#include "node/iptable.h"
#include "node/limit.h"
#include "node/log.h"
#include "node/sasl.h"
#include "node/sm.h"
#include "node/stats.h"
#include "node/tls.h"
#include "node/xmlstream.h"
#include "store/error.h"

#define NS_SASL    "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_TLS     "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL_CB "urn:xmpp:sasl-cb:0"
#define MAX_AUTH_FAILURES 5

static int c2s_puts(roost_c2s_t *s, const char *str)
{
    return roost_c2s_write_raw(s, str, strlen(str));
}

/* ---- stream header and features ---------------------------------------- */

/* 1 while encryption is required and this stream is not yet encrypted:
 * then neither SASL nor any stanza is accepted (issue 5). */
int roost_c2s_tls_missing(const roost_c2s_t *s)
{
    return s->srv->cfg->require_encryption && !roost_conn_tls(s->conn);
}

/* Whether SASL may run on this stream. Under TLS always. Without it only
 * when encryption is explicitly not required (c2s.require_encryption:
 * false), and then only on loopback, or anywhere with
 * c2s.allow_plaintext_auth: the development and test setups. */
static int sasl_ok(const roost_c2s_t *s)
{
    if (roost_conn_tls(s->conn))
        return 1;
    if (s->srv->cfg->require_encryption)
        return 0;
    return roost_conn_is_loopback(s->conn) || s->srv->cfg->allow_plaintext_auth;
}

/* PLAIN sends the password itself: never offered without TLS unless both
 * options above say so (require_encryption: false and
 * allow_plaintext_auth: true). Unencrypted loopback streams otherwise get
 * only SCRAM, which never shows the password. */
static int plain_ok(const roost_c2s_t *s)
{
    if (roost_conn_tls(s->conn))
        return 1;
    return sasl_ok(s) && s->srv->cfg->allow_plaintext_auth;
}

/* Channel-binding types (RFC 5056 names) we offer, strongest first:
 * tls-exporter binds to the TLS 1.3 session itself, tls-server-end-point
 * only to our certificate (XEP-0440 makes it mandatory to offer). */
static const char *const cb_types[] = {"tls-exporter", "tls-server-end-point"};
#define CB_TYPES (sizeof(cb_types) / sizeof(cb_types[0]))

/* Bit i set when cb_types[i] is available on this connection (none
 * without TLS, tls-exporter only on TLS 1.3). */
static unsigned cb_available(const roost_c2s_t *s)
{
    unsigned char buf[ROOST_TLS_CB_MAX];
    unsigned mask = 0;
    size_t i;

    for (i = 0; i < CB_TYPES; i++)
        if (roost_conn_channel_binding(s->conn, cb_types[i], buf, sizeof(buf)) > 0)
            mask |= 1u << i;
    return mask;
}

/* Hands every available binding to the exchange, whatever the mechanism:
 * even a non-PLUS exchange needs to know that we could bind, to refuse a
 * client's "y" flag as a downgrade. 0 or a negative ROOST_E*. */
static int offer_channel_binding(roost_c2s_t *s)
{
    unsigned char buf[ROOST_TLS_CB_MAX];
    size_t i;
    int n, rc;

    for (i = 0; i < CB_TYPES; i++) {
        n = roost_conn_channel_binding(s->conn, cb_types[i], buf, sizeof(buf));
        if (n <= 0)
            continue;
        rc = roost_sasl_set_channel_binding(s->sasl, cb_types[i], buf, (size_t)n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The mechanisms offered on this stream, strongest first (clients take the
 * first they know: -PLUS first); XEP-0474's hash covers exactly these. */
#define MAX_MECHS 5
static size_t offered_mechs(const roost_c2s_t *s, const char *out[MAX_MECHS])
{
    size_t n = 0;

    if (!sasl_ok(s))
        return 0;
    if (cb_available(s) != 0) {
        out[n++] = "SCRAM-SHA-256-PLUS";
        out[n++] = "SCRAM-SHA-1-PLUS";
    }
    out[n++] = "SCRAM-SHA-256";
    out[n++] = "SCRAM-SHA-1";
    if (plain_ok(s))
        out[n++] = "PLAIN";
    return n;
}

/* The channel-binding types listed in the XEP-0440 feature. */
static size_t offered_cbs(const roost_c2s_t *s, const char *out[CB_TYPES])
{
    unsigned cb = cb_available(s);
    size_t i, n = 0;

    for (i = 0; i < CB_TYPES; i++)
        if (cb & (1u << i))
            out[n++] = cb_types[i];
    return n;
}

void roost_c2s_send_features(roost_c2s_t *s)
{
    if (s->state == C2S_STREAM_WAIT) {
        int offer_tls = !roost_conn_tls(s->conn) && s->srv->tls_ctx != NULL;
        /* One write: some clients (openssl s_client -starttls xmpp) expect
         * the whole features element in one read. */
        roost_buf_t b = ROOST_BUF_INIT;
        roost_buf_puts(&b, "<stream:features>");
        if (offer_tls)
            roost_buf_puts(&b, roost_c2s_tls_missing(s) ? "<starttls xmlns='" NS_TLS "'><required/></starttls>"
                                              : "<starttls xmlns='" NS_TLS "'/>");
        /* RFC 6120 §5.3.1: with TLS mandatory, the other features wait
         * for the restart after the handshake. */
        const char *mechs[MAX_MECHS], *cbs[CB_TYPES];
        size_t n_mechs = offered_mechs(s, mechs), n_cbs = offered_cbs(s, cbs), i;
        if (n_mechs > 0) {
            roost_buf_puts(&b, "<mechanisms xmlns='" NS_SASL "'>");
            for (i = 0; i < n_mechs; i++) {
                roost_buf_puts(&b, "<mechanism>");
                roost_buf_puts(&b, mechs[i]);
                roost_buf_puts(&b, "</mechanism>");
            }
            roost_buf_puts(&b, "</mechanisms>");
            /* XEP-0440: which bindings the -PLUS mechanisms accept. */
            if (n_cbs > 0) {
                roost_buf_puts(&b, "<sasl-channel-binding xmlns='" NS_SASL_CB "'>");
                for (i = 0; i < n_cbs; i++) {
                    roost_buf_puts(&b, "<channel-binding type='");
                    roost_buf_puts(&b, cbs[i]);
                    roost_buf_puts(&b, "'/>");
                }
                roost_buf_puts(&b, "</sasl-channel-binding>");
            }
        }
        roost_buf_puts(&b, "</stream:features>");
        if (b.data != NULL)
            roost_c2s_send_bytes(s, b.data, b.len);
        else
            roost_c2s_stream_error(s, "internal-server-error", NULL);
        roost_buf_free(&b);
        s->state = C2S_SASL;
    } else {
        c2s_puts(s, "<stream:features><bind xmlns='" NS_BIND "'/>"
                    "<session xmlns='" NS_SESSION "'><optional/></session>"
                    "<ver xmlns='urn:xmpp:features:rosterver'/>"
                    "<sm xmlns='" ROOST_NS_SM "'/>"
                    "<sub xmlns='urn:xmpp:features:pre-approval'/></stream:features>");
        s->state = C2S_BIND;
    }
}




/* ---- SASL ------------------------------------------------------------- */

static void send_failure(roost_c2s_t *s, const char *condition)
{
    roost_buf_t b = ROOST_BUF_INIT;
    /* Logged before the answer leaves, so the log never lags the peer. */
    ROOST_INFO(s->id, "auth failed condition=%s peer=%s", condition, roost_conn_peer(s->conn));
    roost_buf_puts(&b, "<failure xmlns='" NS_SASL "'><");
    roost_buf_puts(&b, condition);
    roost_buf_puts(&b, "/></failure>");
    if (b.data != NULL)
        c2s_puts(s, b.data);
    roost_buf_free(&b);
    if (strcmp(condition, "aborted") != 0 && ++s->auth_failures >= MAX_AUTH_FAILURES) {
        roost_limit_hit(s->id, "auth_failures", roost_conn_peer(s->conn));
        roost_c2s_stream_error(s, "policy-violation", "too many failed authentication attempts");
    }
}

static void on_tarpit(uv_timer_t *t)
{
    roost_c2s_t *s = t->data;
    s->tarpitted = 0;
    if (!s->gone)
        send_failure(s, s->tarpit_cond);
    roost_c2s_done(s);
}

/* Ends a SASL exchange with <failure/>. A wrong password or unknown user
 * (not-authorized: what guessing produces) counts against the client's
 * address; past limits.auth_tarpit_after of them the answer is held back,
 * longer with each further failure, and the stream reads nothing
 * meanwhile, so guesses from one address slow down whatever the number of
 * connections it uses. Returns ROOST_EAGAIN when held back: the caller
 * treats it as an async step, which on_tarpit ends with roost_c2s_done. */
static int sasl_failure(roost_c2s_t *s, const char *condition)
{
    roost_server_t *srv = s->srv;
    unsigned delay = 0;
    char detail[128];

    roost_sasl_free(s->sasl);
    s->sasl = NULL;
    s->state = C2S_SASL;
    roost_stats_login(0, condition);
    if (strcmp(condition, "not-authorized") == 0 && s->ip_known && srv->ips != NULL)
        delay = roost_iptable_auth_failed(srv->ips, &s->ipkey, uv_now(srv->loop));
    if (delay == 0 || s->gone) {
        send_failure(s, condition);
        return 0;
    }
    snprintf(detail, sizeof(detail), "delay_ms=%u peer=%s", delay, roost_conn_peer(s->conn));
    roost_limit_hit(s->id, "auth_tarpit", detail);
    s->tarpit_cond = condition;     /* static strings only */
    s->tarpitted = 1;
    uv_timer_start(&s->tarpit, on_tarpit, delay, 0);
    return ROOST_EAGAIN;
}

/* 0, or ROOST_EAGAIN when a held-back failure now owns the async step. */
static int sasl_result(roost_c2s_t *s, roost_sasl_result_t r)
{
    const char *out = roost_sasl_out(s->sasl);
    switch (r) {
    case ROOST_SASL_CHALLENGE:
        c2s_puts(s, "<challenge xmlns='" NS_SASL "'>");
        c2s_puts(s, out);
        c2s_puts(s, "</challenge>");
        s->state = C2S_SASL_STEP;
        break;
    case ROOST_SASL_SUCCESS:
        c2s_puts(s, "<success xmlns='" NS_SASL "'>");
        c2s_puts(s, out);
        c2s_puts(s, "</success>");
        free(s->username);
        s->username = strdup(roost_sasl_username(s->sasl));
        roost_sasl_free(s->sasl);
        s->sasl = NULL;
        if (s->username == NULL) {
            roost_c2s_stream_error(s, "internal-server-error", NULL);
            return 0;
        }
        ROOST_INFO(s->id, "authenticated user=%s@%s", s->username, s->domain);
        roost_stats_login(1, NULL);
        s->state = C2S_AUTHED_WAIT;
        s->want_reset = 1;
        roost_xmlstream_limits_t lim = {
            .max_stanza = s->srv->cfg->max_stanza_size,
            .max_depth = s->srv->cfg->max_depth,
            .max_attrs = s->srv->cfg->max_attrs,
            .chunk = 4096,
        };
        roost_xmlstream_set_limits(s->xs, &lim);
        if (s->in_feed)
            roost_xmlstream_pause(s->xs);
        break;
    case ROOST_SASL_FAILURE:
        return sasl_failure(s, roost_sasl_condition(s->sasl));
    case ROOST_SASL_NEED_CRED:
        return sasl_failure(s, "temporary-auth-failure");
    }
    return 0;
}

static void on_cred(int status, const roost_scram_cred_t *cred, void *data)
{
    roost_c2s_t *s = data;
    int rc = 0;
    if (!s->gone && s->sasl != NULL) {
        if (status != 0) {
            ROOST_WARN(s->id, "credential lookup failed: %s", roost_strerror(status));
            rc = sasl_failure(s, "temporary-auth-failure");
        } else {
            rc = sasl_result(s, roost_sasl_set_cred(s->sasl, cred));
        }
    }
    /* A held-back failure carries this async step on (on_tarpit ends it). */
    if (rc == ROOST_EAGAIN)
        return;
    /* A restart wanted by a success here happens in done(): the parser is
     * still paused from this async step, and after_feed resets it. */
    roost_c2s_done(s);
}

static int sasl_need_cred(roost_c2s_t *s)
{
    char *bare = NULL;
    const char *user = roost_sasl_username(s->sasl);
    size_t n = strlen(user) + strlen(s->domain) + 2;
    bare = malloc(n);
    if (bare == NULL)
        return sasl_failure(s, "temporary-auth-failure");
    snprintf(bare, n, "%s@%s", user, s->domain);
    int rc = roost_store_cred_get(s->srv->store, bare, roost_sasl_cred_hash(s->sasl), on_cred, s);
    free(bare);
    if (rc != 0)
        return sasl_failure(s, "temporary-auth-failure");
    return ROOST_EAGAIN;
}

int roost_c2s_handle_sasl(roost_c2s_t *s, roost_xml_t *el)
{
    char *text = roost_xml_text(el);
    int rc = 0;
    if (text == NULL) {
        roost_c2s_stream_error(s, "internal-server-error", NULL);
        return 0;
    }
    if (strcmp(el->name, "abort") == 0) {
        rc = sasl_failure(s, "aborted");
    } else if (strcmp(el->name, "auth") == 0) {
        if (s->state != C2S_SASL) {
            rc = sasl_failure(s, "malformed-request");
        } else if (!sasl_ok(s)) {
            rc = sasl_failure(s, "encryption-required");
        } else {
            const char *mech_name = roost_xml_attr(el, "mechanism");
            roost_sasl_mech_t mech = mech_name != NULL ? roost_sasl_mech_by_name(mech_name) : 0;
            const char *mechs[MAX_MECHS], *cbs[CB_TYPES];
            size_t n_mechs = offered_mechs(s, mechs), n_cbs = offered_cbs(s, cbs), i;
            int offered = 0;
            for (i = 0; i < n_mechs; i++)
                offered |= mech != 0 && strcmp(mechs[i], mech_name) == 0;
            /* Only what was offered: -PLUS needs something to bind to,
             * PLAIN needs TLS (RFC 6120 §6.5.5: encryption-required). */
            if (!offered && mech == ROOST_SASL_PLAIN) {
                rc = sasl_failure(s, "encryption-required");
            } else if (!offered) {
                rc = sasl_failure(s, "invalid-mechanism");
            } else if ((s->sasl = roost_sasl_new(mech, s->domain)) == NULL ||
                       offer_channel_binding(s) < 0 ||
                       roost_sasl_set_advertised(s->sasl, mechs, n_mechs, cbs, n_cbs) < 0) {
                rc = sasl_failure(s, "temporary-auth-failure");
            } else {
                roost_sasl_result_t r = roost_sasl_start(s->sasl, text);
                if (r == ROOST_SASL_NEED_CRED)
                    rc = sasl_need_cred(s);
                else
                    rc = sasl_result(s, r);
            }
        }
    } else if (strcmp(el->name, "response") == 0) {
        if (s->state != C2S_SASL_STEP || s->sasl == NULL) {
            rc = sasl_failure(s, "malformed-request");
        } else {
            roost_sasl_result_t r = roost_sasl_step(s->sasl, text);
            if (r == ROOST_SASL_NEED_CRED)
                rc = sasl_need_cred(s);
            else
                rc = sasl_result(s, r);
        }
    } else {
        rc = sasl_failure(s, "malformed-request");
    }
    free(text);
    return rc;
}

/* ---- STARTTLS (RFC 6120 §5) ------------------------------------------- */

void roost_c2s_start_tls(roost_c2s_t *s)
{
    if (s->state != C2S_SASL || s->sasl != NULL || roost_conn_tls(s->conn) ||
        s->srv->tls_ctx == NULL) {
        /* §5.4.2.2: <failure/>, then the stream is closed. */
        c2s_puts(s, "<failure xmlns='" NS_TLS "'/>");
        roost_c2s_stream_error(s, "undefined-condition", "TLS is not available on this stream");
        return;
    }
    c2s_puts(s, "<proceed xmlns='" NS_TLS "'/>");
    if (s->gone || roost_conn_start_tls(s->conn, s->srv->tls_ctx) != 0) {
        roost_c2s_stream_error(s, "internal-server-error", NULL);
        return;
    }
    /* §5.4.3.3: after the handshake the client opens a new stream. Bytes
     * already read past <starttls/> came in the clear and are dropped by
     * the parser reset, never decrypted or parsed. */
    s->state = C2S_STREAM_WAIT;
    s->header_sent = 0;
    s->want_reset = 1;
    if (s->in_feed)
        roost_xmlstream_pause(s->xs);
}
