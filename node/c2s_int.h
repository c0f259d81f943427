/* Internal to the session layer (c2s.c and sm.c): the session struct and
 * its states. Feature modules use node/c2s.h only. */
#ifndef ROOST_C2S_INT_H
#define ROOST_C2S_INT_H

#include <stdint.h>
#include <uv.h>

#include "node/c2s.h"
#include "node/conn.h"
#include "node/iptable.h"
#include "node/sasl.h"
#include "node/sm.h"
#include "node/xmlstream.h"
#include "store/jid.h"
#include "store/record.h"

typedef enum {
    C2S_STREAM_WAIT,   /* waiting for the initial stream header */
    C2S_SASL,          /* features sent; awaiting <auth/> */
    C2S_SASL_STEP,     /* mid-exchange; awaiting <response/> */
    C2S_AUTHED_WAIT,   /* SASL succeeded; awaiting the restart header */
    C2S_BIND,          /* authenticated features sent; awaiting bind */
    C2S_ESTABLISHED,   /* resource bound */
} c2s_state_t;

struct roost_c2s_s {
    roost_server_t *srv;
    roost_conn_t *conn;
    roost_xmlstream_t *xs;
    uv_timer_t timer;            /* auth deadline, then idle keepalive */
    uv_timer_t tarpit;           /* holds back a failed login's answer */
    const char *tarpit_cond;     /* the SASL condition it will answer with */
    c2s_state_t state;
    uint64_t id;
    int refs;
    unsigned gone : 1;           /* closing: no more protocol work */
    unsigned header_sent : 1;
    unsigned want_reset : 1;     /* restart the parser after this feed */
    unsigned async : 1;          /* a stanza step is waiting for Redis */
    unsigned in_feed : 1;
    unsigned bound : 1;          /* record in Redis and in srv->sessions */
    unsigned replaced : 1;       /* kicked by a newer session of the same JID */
    unsigned ping_sent : 1;      /* a keepalive ping awaits any sign of life */
    unsigned direct_tls : 1;     /* accepted on the direct TLS port */
    unsigned ip_counted : 1;     /* counted in srv->ips: uncount at close */
    unsigned ip_known : 1;       /* ipkey holds the client's address */
    unsigned tarpitted : 1;      /* the tarpit timer runs (an async step) */
    uint64_t last_in;            /* loop time of the last bytes received */
    unsigned ping_seq;
    char *domain;
    char stream_id[33];
    roost_sasl_t *sasl;
    unsigned auth_failures;
    roost_ipkey_t ipkey;
    char *username;
    roost_jid_t jid;
    roost_session_t rec;
    roost_sm_t *sm;              /* stream management, once enabled */
    unsigned clean_close : 1;    /* the client ended the stream */
    unsigned keep_session : 1;   /* closing, but the session lives on (detached) */
    unsigned released : 1;       /* let go by a drain */
    unsigned inbound_pending : 1; /* a stanza of the client is being routed */
    roost_c2s_t *prev, *next;
};


/* Writes str as is (a nonza, or a stanza already counted). */
int roost_c2s_write_raw(roost_c2s_t *s, const char *str, size_t len);

/* node/c2s_auth.c: the negotiation. */
int roost_c2s_tls_missing(const roost_c2s_t *s);    /* TLS required, not yet on */
void roost_c2s_send_features(roost_c2s_t *s);       /* for the current state */
void roost_c2s_start_tls(roost_c2s_t *s);           /* <starttls/> */
/* A SASL element; takes nothing. 0, or ROOST_EAGAIN (an async step that
 * ends with roost_c2s_done). */
int roost_c2s_handle_sasl(roost_c2s_t *s, roost_xml_t *el);

/* A resumption made s a bound, established session: timers restart. */
void roost_c2s_resumed(roost_c2s_t *s);

#endif
