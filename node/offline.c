/* Offline storage (XEP-0160) and delivery with XEP-0203 delay stamps. A
 * message is stored only for an existing account; when the account does
 * not exist or its store is full, the sender gets service-unavailable, so
 * nothing is lost silently. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>

#include "node/offline.h"
#include "node/c2s.h"
#include "node/limit.h"
#include "node/log.h"
#include "node/router.h"
#include "node/xmpp_error.h"
#include "store/error.h"
#include "store/keys.h"
#include "store/offline.h"
#include "store/store.h"

typedef struct {
    roost_server_t *srv;
    char *bare;
    roost_xml_t *msg;       /* kept to bounce it */
    char *bytes;
    size_t len;
} store_req_t;

static void store_req_free(store_req_t *q)
{
    free(q->bare);
    roost_xml_free(q->msg);
    free(q->bytes);
    free(q);
}

static void bounce(roost_server_t *srv, const roost_xml_t *msg, const char *bare, const char *text)
{
    const char *from = roost_xml_attr(msg, "from");
    roost_xmpp_error_t err = { "cancel", "service-unavailable", text };
    roost_xml_t *r = roost_xmpp_error_reply(msg, bare, &err);
    if (r == NULL || from == NULL) {
        roost_xml_free(r);
        return;
    }
    if (strchr(from, '/') != NULL)
        roost_router_to_full(srv, from, r, NULL, NULL);
    roost_xml_free(r);
}

static void on_pushed(int status, void *data)
{
    store_req_t *q = data;
    if (status == ROOST_ELIMIT) {
        roost_limit_hit(0, "offline_queue", q->bare);
        bounce(q->srv, q->msg, q->bare, "offline storage is full");
    }
    else if (status != 0)
        bounce(q->srv, q->msg, q->bare, NULL);
    else
        ROOST_DEBUG(0, "stored offline message for %s", q->bare);
    store_req_free(q);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_exists(int status, void *reply, void *data)
{
    store_req_t *q = data;
    const redisReply *r = reply;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_INTEGER) {
        bounce(q->srv, q->msg, q->bare, NULL);
        store_req_free(q);
        return;
    }
    if (r->integer == 0) {
        /* RFC 6121 §8.5.2.2.1: no such account. */
        bounce(q->srv, q->msg, q->bare, NULL);
        store_req_free(q);
        return;
    }
    if (roost_store_offline_push(q->srv->store, q->bare, (const uint8_t *)q->bytes, q->len,
                                 now_ms(), q->srv->cfg->max_offline, on_pushed, q) != 0) {
        bounce(q->srv, q->msg, q->bare, NULL);
        store_req_free(q);
    }
}

void roost_offline_store(roost_server_t *srv, const char *bare, const roost_xml_t *msg)
{
    store_req_t *q = calloc(1, sizeof(*q));
    roost_buf_t b = ROOST_BUF_INIT;
    if (q == NULL)
        return;
    q->srv = srv;
    q->bare = strdup(bare);
    q->msg = roost_xml_copy(msg);
    if (q->bare == NULL || q->msg == NULL || roost_xml_serialize(msg, ROOST_NS_CLIENT, &b) != 0) {
        roost_buf_free(&b);
        store_req_free(q);
        return;
    }
    q->bytes = roost_buf_steal(&b, &q->len);
    char *key = roost_key_acct(bare);
    const char *argv[] = { "EXISTS", key };
    size_t argvlen[] = { 6, key != NULL ? strlen(key) : 0 };
    int rc = key != NULL ? roost_store_command(srv->store, 2, argv, argvlen, on_exists, q)
                         : ROOST_ENOMEM;
    free(key);
    if (rc != 0) {
        bounce(srv, q->msg, q->bare, NULL);
        store_req_free(q);
    }
}

/* ---- delivery ---------------------------------------------------------- */

typedef struct {
    roost_server_t *srv;
    roost_c2s_t *s;
    char *bare;
} take_req_t;

static void on_requeued(int status, void *data)
{
    if (status != 0)
        ROOST_WARN(0, "could not put back an offline message for %s: %s",
                   (const char *)data, roost_strerror(status));
    free(data);
}

/* Writes the stored stanza with <delay/> inserted as its last child. The
 * bytes are our own serializer's output: they end in "</message>" or, for
 * an empty element, "/>". */
static void send_delayed(roost_c2s_t *s, const char *domain, const uint8_t *bytes, size_t len,
                         uint64_t stamp)
{
    static const char close_tag[] = "</message>";
    size_t cl = sizeof(close_tag) - 1;
    char ts[40];
    time_t secs = (time_t)(stamp / 1000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03uZ", (unsigned)(stamp % 1000u));

    roost_buf_t b = ROOST_BUF_INIT;
    size_t head;
    int empty = 0;
    if (len >= cl && memcmp(bytes + len - cl, close_tag, cl) == 0) {
        head = len - cl;
    } else if (len >= 2 && memcmp(bytes + len - 2, "/>", 2) == 0) {
        head = len - 2;
        empty = 1;
    } else {
        return;                       /* not something we wrote */
    }
    int rc = roost_buf_append(&b, bytes, head);
    if (empty)
        rc |= roost_buf_puts(&b, ">");
    rc |= roost_buf_puts(&b, "<delay xmlns='urn:xmpp:delay' from='");
    rc |= roost_buf_escape(&b, domain, strlen(domain));
    rc |= roost_buf_printf(&b, "' stamp='%s'>Offline storage</delay></message>", ts);
    if (rc == 0)
        roost_c2s_send_bytes(s, b.data, b.len);
    roost_buf_free(&b);
}

static void on_taken(int status, const uint8_t *const *stanzas, const size_t *lens,
                     const uint64_t *stamps, size_t n, void *data)
{
    take_req_t *q = data;
    const roost_jid_t *me = roost_c2s_jid(q->s);
    if (status != 0) {
        ROOST_WARN(roost_c2s_conn_id(q->s), "offline take failed: %s", roost_strerror(status));
    } else if (me == NULL || roost_c2s_gone(q->s)) {
        /* Taken but the client left: put them back rather than lose them. */
        for (size_t i = 0; i < n; i++) {
            char *b = strdup(q->bare);
            if (b != NULL && roost_store_offline_push(q->srv->store, q->bare, stanzas[i], lens[i],
                                                      stamps[i], (size_t)-1, on_requeued, b) != 0)
                free(b);
        }
    } else {
        for (size_t i = 0; i < n; i++)
            send_delayed(q->s, me->domain, stanzas[i], lens[i], stamps[i]);
        if (n > 0)
            ROOST_INFO(roost_c2s_conn_id(q->s), "delivered %zu offline messages", n);
    }
    roost_c2s_unref(q->s);
    free(q->bare);
    free(q);
}

void roost_offline_deliver(roost_server_t *srv, roost_c2s_t *s)
{
    const roost_jid_t *me = roost_c2s_jid(s);
    take_req_t *q = calloc(1, sizeof(*q));
    if (q == NULL || me == NULL) {
        free(q);
        return;
    }
    q->srv = srv;
    q->s = s;
    if ((q->bare = strdup(me->bare)) == NULL) {
        free(q);
        return;
    }
    roost_c2s_ref(s);
    if (roost_store_offline_take(srv->store, me->bare, on_taken, q) != 0) {
        roost_c2s_unref(s);
        free(q->bare);
        free(q);
    }
}
