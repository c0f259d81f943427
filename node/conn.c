/* Client TCP transport on libuv. One read buffer is shared by all
 * connections of the loop (reads are consumed synchronously), so an idle
 * connection holds no input buffer. Writes are copied into requests that
 * own their bytes until the write callback. With TLS on (node/tls.c), bytes
 * are decrypted before on_data and encrypted in roost_conn_write. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "node/conn.h"
#include "node/limit.h"
#include "node/log.h"
#include "node/metrics.h"
#include "node/proxy.h"
#include "node/tls.h"
#include "store/error.h"

#define READ_BUF_SIZE 16384
#define CLOSE_FLUSH_MS 2000

struct roost_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;          /* bounds the flush before close */
    uv_shutdown_t shutdown;
    uint64_t id;
    roost_conn_cb_t cb;
    void *data;
    roost_conn_limits_t limits;
    size_t queued;
    unsigned want_read : 1;
    unsigned reading : 1;
    unsigned closing : 1;
    unsigned shutting : 1;
    unsigned loopback : 1;
    unsigned backlogged : 1;   /* above high watermark, not yet below low */
    unsigned in_tls_read : 1;  /* decrypted bytes are being delivered */
    unsigned proxy_wait : 1;   /* a PROXY header must come first */
    unsigned linger : 1;       /* read and drop input after our FIN */
    int handles;               /* open uv handles; free when 0 */
    roost_tls_t *tls;          /* NULL: plaintext */
    char *proxy_buf;           /* a PROXY header split over reads (< ROOST_PROXY_MAX) */
    size_t proxy_len;
    int peer_family;           /* AF_INET, AF_INET6, or 0 when unknown */
    uint8_t peer_ip[16];
    char peer[64];
};

typedef struct {
    uv_write_t req;
    roost_conn_t *conn;
    size_t len;
    char bytes[];
} wreq_t;

static char read_buf[READ_BUF_SIZE];
static int read_buf_busy;
/* Ciphertext on its way from the TLS engine to the socket; consumed (sent
 * or copied into a write request) before the next use. */
static char tls_out[READ_BUF_SIZE];

static void update_reading(roost_conn_t *c);
static void on_flush_timeout(uv_timer_t *t);
static void on_shutdown(uv_shutdown_t *req, int status);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* Single-threaded: the buffer is consumed inside on_read before the
     * next alloc. A nested read cannot happen. */
    buf->base = read_buf_busy ? NULL : read_buf;
    buf->len = read_buf_busy ? 0 : sizeof(read_buf);
}

static void on_handle_closed(uv_handle_t *h)
{
    roost_conn_t *c = h->data;
    if (--c->handles == 0) {
        if (c->cb.on_close != NULL)
            c->cb.on_close(c);
        roost_tls_free(c->tls);
        free(c->proxy_buf);
        free(c);
    }
}

static void close_now(roost_conn_t *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static int raw_write(roost_conn_t *c, const void *buf, size_t len);

/* Sends whatever the TLS engine produced (handshake, records, alerts). */
static int flush_tls(roost_conn_t *c)
{
    while (!c->closing && roost_tls_out_pending(c->tls) > 0) {
        size_t n = roost_tls_out_take(c->tls, tls_out, sizeof(tls_out));
        if (n == 0)
            break;
        int rc = raw_write(c, tls_out, n);
        if (rc != 0)
            return rc;
    }
    return c->closing ? ROOST_EIO : 0;
}

/* Whether the protocol layer takes bytes now. One TCP read can hold many
 * TLS records; once the layer pauses, the rest waits inside the engine, as
 * unread bytes wait in the kernel without TLS. */
static int accepts_data(const roost_conn_t *c)
{
    return !c->closing && !c->shutting && c->want_read && !c->backlogged;
}

static int deliver_plain(void *arg, const char *buf, size_t len)
{
    roost_conn_t *c = arg;
    c->cb.on_data(c, buf, len);
    return !accepts_data(c);
}

static void begin_shutdown(roost_conn_t *c)
{
    c->shutting = 1;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        close_now(c);
        return;
    }
    /* The timer may hold a pending drain (on_drain); the flush deadline
     * replaces it. */
    uv_timer_start(&c->timer, on_flush_timeout, CLOSE_FLUSH_MS, 0);
}

static void tls_read(roost_conn_t *c, const char *buf, size_t len)
{
    int was_established = roost_tls_established(c->tls);
    c->in_tls_read = 1;
    int rc = roost_tls_feed(c->tls, buf, len, deliver_plain, c);
    c->in_tls_read = 0;
    if (!was_established && roost_tls_established(c->tls))
        ROOST_DEBUG(c->id, "tls established version=%s", roost_tls_version(c->tls));
    /* Also after a failure: the alert tells the peer why. */
    flush_tls(c);
    if (rc != 0 && !c->closing) {
        if (roost_tls_peer_closed(c->tls))
            ROOST_DEBUG(c->id, "tls close_notify from the peer");
        else
            ROOST_INFO(c->id, "tls %s failed: %s",
                       roost_tls_established(c->tls) ? "session" : "handshake",
                       roost_tls_error(c->tls));
        /* The queued alert goes out before the close; nothing more is read. */
        begin_shutdown(c);
    }
}

/* Delivers what the engine kept when the reader paused; from a fresh loop
 * turn, never inside the protocol layer's own call stack. */
static void on_drain(uv_timer_t *t)
{
    roost_conn_t *c = t->data;
    if (c->tls != NULL && accepts_data(c))
        tls_read(c, NULL, 0);
}

static void proxy_read(roost_conn_t *c, const char *buf, size_t len);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    roost_conn_t *c = s->data;
    if (nread < 0) {
        /* EOF or error: nothing more will come; drop what is queued too,
         * the peer is gone. */
        close_now(c);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    read_buf_busy = 1;
    if (c->proxy_wait)
        proxy_read(c, buf->base, (size_t)nread);
    else if (c->tls != NULL)
        tls_read(c, buf->base, (size_t)nread);
    else
        c->cb.on_data(c, buf->base, (size_t)nread);
    read_buf_busy = 0;
}

static int is_loopback(int family, const void *addr)
{
    const uint8_t *b = addr;

    if (family == AF_INET)
        return b[0] == 127;
    return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)addr) ||
           (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr) && b[12] == 127);
}

static void update_reading(roost_conn_t *c)
{
    /* Once shutting down, reading belongs to the lingering close. */
    if (c->closing || c->shutting)
        return;
    if (c->queued >= c->limits.high)
        c->backlogged = 1;
    else if (c->queued <= c->limits.low)
        c->backlogged = 0;
    int should = c->want_read && !c->backlogged;
    if (should && c->tls != NULL && !c->in_tls_read && !c->shutting &&
        roost_tls_in_pending(c->tls))
        uv_timer_start(&c->timer, on_drain, 0, 0);
    if (should && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    } else if (!should && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

roost_conn_t *roost_conn_accept(uv_stream_t *server, uint64_t id,
                                const roost_conn_limits_t *limits,
                                const roost_conn_cb_t *cb, void *data)
{
    roost_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        /* Accept into a throwaway handle so the kernel queue drains. */
        return NULL;
    }
    c->id = id;
    c->cb = *cb;
    c->data = data;
    c->limits = *limits;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->cb.on_close = NULL;
        close_now(c);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);

    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            uv_ip4_name(sin, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, ntohs(sin->sin_port));
            c->peer_family = AF_INET;
            memcpy(c->peer_ip, &sin->sin_addr, 4);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(sin6, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "[%s]:%d", ip, ntohs(sin6->sin6_port));
            c->peer_family = AF_INET6;
            memcpy(c->peer_ip, &sin6->sin6_addr, 16);
        }
    }
    len = sizeof(ss);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            c->loopback = is_loopback(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr);
        else if (ss.ss_family == AF_INET6)
            c->loopback = is_loopback(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr);
    }
    c->want_read = 1;
    update_reading(c);
    return c;
}

/* ---- PROXY protocol (node/proxy.h) --------------------------------------- */

static void proxy_error(roost_conn_t *c, const char *reason, const char *detail)
{
    char labels[48];

    ROOST_INFO(c->id, "proxy header refused reason=%s%s%s via=%s", reason,
               detail != NULL ? " " : "", detail != NULL ? detail : "", c->peer);
    snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
    roost_metrics_count("roost_proxy_header_errors_total", labels,
                        "Connections dropped for a missing or bad PROXY protocol header");
    close_now(c);
}

static void on_proxy_timeout(uv_timer_t *t)
{
    roost_conn_t *c = t->data;
    if (c->proxy_wait)
        proxy_error(c, "timeout", NULL);
}

/* The header named the client: from now on it is the peer. */
static void proxy_apply(roost_conn_t *c, const roost_proxy_addr_t *a)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    char via[sizeof(c->peer)];

    memcpy(via, c->peer, sizeof(via));
    if (a->proxied) {
        c->peer_family = a->family;
        memcpy(c->peer_ip, a->src, a->family == AF_INET ? 4 : 16);
        inet_ntop(a->family, a->src, ip, sizeof(ip));
        snprintf(c->peer, sizeof(c->peer), a->family == AF_INET ? "%s:%u" : "[%s]:%u", ip,
                 (unsigned)a->src_port);
        /* Loopback means the client reached us on a loopback address. */
        c->loopback = is_loopback(a->family, a->dst);
    }
    ROOST_INFO(c->id, "proxy header v%d peer=%s via=%s%s", a->version, c->peer, via,
               a->proxied ? "" : " (local: the proxy's own connection)");
}

/* Reads the PROXY header before anything else (also before a TLS
 * ClientHello). Bytes after it in the same read go on as usual. */
static void proxy_read(roost_conn_t *c, const char *buf, size_t len)
{
    roost_proxy_addr_t a;
    const char *in = buf, *rest;
    size_t avail = len, old = c->proxy_len, rest_len;
    int rc;

    if (old > 0) {
        size_t take = len < ROOST_PROXY_MAX - old ? len : ROOST_PROXY_MAX - old;
        memcpy(c->proxy_buf + old, buf, take);
        in = c->proxy_buf;
        avail = old + take;
    }
    rc = roost_proxy_parse(in, avail, &a);
    if (rc == 0) {
        /* A proper prefix is shorter than ROOST_PROXY_MAX (proxy.h). */
        if (c->proxy_buf == NULL && (c->proxy_buf = malloc(ROOST_PROXY_MAX)) == NULL) {
            close_now(c);
            return;
        }
        if (old == 0)
            memcpy(c->proxy_buf, buf, len);
        c->proxy_len = avail;
        return;
    }
    if (rc < 0) {
        proxy_error(c, rc == ROOST_ELIMIT ? "too_long" : "invalid", NULL);
        return;
    }
    rest = buf + ((size_t)rc - old);
    rest_len = len - ((size_t)rc - old);
    c->proxy_wait = 0;
    free(c->proxy_buf);
    c->proxy_buf = NULL;
    c->proxy_len = 0;
    uv_timer_stop(&c->timer);
    proxy_apply(c, &a);
    if (c->cb.on_peer != NULL)
        c->cb.on_peer(c);
    if (c->closing || c->shutting || rest_len == 0)
        return;
    if (c->tls != NULL)
        tls_read(c, rest, rest_len);
    else
        c->cb.on_data(c, rest, rest_len);
}

int roost_conn_expect_proxy(roost_conn_t *c, unsigned timeout_ms)
{
    if (c->closing || c->proxy_wait)
        return ROOST_EINVAL;
    c->proxy_wait = 1;
    uv_timer_start(&c->timer, on_proxy_timeout, timeout_ms, 0);
    return 0;
}

int roost_conn_proxy_pending(const roost_conn_t *c)
{
    return c->proxy_wait;
}

uint64_t roost_conn_id(const roost_conn_t *c) { return c->id; }
void *roost_conn_data(const roost_conn_t *c) { return c->data; }
const char *roost_conn_peer(const roost_conn_t *c) { return c->peer; }

int roost_conn_peer_ip(const roost_conn_t *c, uint8_t ip[16])
{
    if (c->peer_family != 0)
        memcpy(ip, c->peer_ip, c->peer_family == AF_INET ? 4 : 16);
    return c->peer_family;
}
int roost_conn_is_loopback(const roost_conn_t *c) { return c->loopback; }
size_t roost_conn_queued(const roost_conn_t *c) { return c->queued; }
int roost_conn_closing(const roost_conn_t *c) { return c->closing; }

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    roost_conn_t *c = w->conn;
    c->queued -= w->len;
    free(w);
    if (status < 0 && !c->closing) {
        close_now(c);
        return;
    }
    update_reading(c);
}

int roost_conn_write(roost_conn_t *c, const void *buf, size_t len)
{
    if (c->closing || c->shutting)
        return ROOST_EIO;
    if (len == 0)
        return 0;
    if (c->tls != NULL) {
        int rc = roost_tls_write(c->tls, buf, len);
        if (rc == ROOST_EAGAIN) {
            /* Mid-handshake the peer has not spoken XMPP on this layer
             * yet, so there is nothing it could be owed; what the session
             * says now (a timeout or shutdown error) is dropped. */
            return 0;
        }
        if (rc != 0) {
            ROOST_INFO(c->id, "tls write failed: %s", roost_tls_error(c->tls));
            close_now(c);
            return rc;
        }
        return flush_tls(c);
    }
    return raw_write(c, buf, len);
}

/* Queues bytes as they go on the wire. */
static int raw_write(roost_conn_t *c, const void *buf, size_t len)
{
    if (c->closing)
        return ROOST_EIO;
    if (c->queued + len > c->limits.max) {
        /* A reader this slow would make us buffer without bound. Nothing
         * can tell it why: it does not read. */
        char detail[160];
        snprintf(detail, sizeof(detail), "queued=%zu write_max=%zu peer=%s", c->queued,
                 c->limits.max, c->peer);
        roost_limit_hit(c->id, "write_queue", detail);
        close_now(c);
        return ROOST_ELIMIT;
    }
    /* Try to send directly first: most writes complete at once and need no
     * copy at all. */
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    if (c->queued == 0) {
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == (int)len)
            return 0;
        if (n > 0) {
            buf = (const char *)buf + n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            close_now(c);
            return ROOST_EIO;
        }
    }
    wreq_t *w = malloc(sizeof(*w) + len);
    if (w == NULL) {
        close_now(c);
        return ROOST_ENOMEM;
    }
    memcpy(w->bytes, buf, len);
    w->conn = c;
    w->len = len;
    b = uv_buf_init(w->bytes, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(w);
        close_now(c);
        return ROOST_EIO;
    }
    c->queued += len;
    update_reading(c);
    return 0;
}

void roost_conn_want_read(roost_conn_t *c, int want)
{
    c->want_read = want ? 1 : 0;
    update_reading(c);
}

static void on_flush_timeout(uv_timer_t *t)
{
    close_now(t->data);
}

static void on_linger_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0)
        close_now(s->data);
}

/* Our FIN is out. Closing now would turn whatever the peer still sends
 * (say, the stream header it wrote before reading our stream error) into
 * unread input, and the kernel answers a close with unread input by a
 * reset, which can destroy our last words in the peer's receive buffer.
 * With linger set, input is read and dropped until the peer closes too, or
 * the flush deadline started in begin_shutdown passes. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    roost_conn_t *c = req->data;
    if (status != 0 || c->closing || !c->linger ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_linger_read) != 0)
        close_now(c);
}

void roost_conn_linger(roost_conn_t *c)
{
    c->linger = 1;
}

void roost_conn_close(roost_conn_t *c)
{
    if (c->closing || c->shutting)
        return;
    if (c->tls != NULL) {
        roost_tls_shutdown(c->tls);
        flush_tls(c);
        if (c->closing)
            return;
    }
    begin_shutdown(c);
}

void roost_conn_abort(roost_conn_t *c)
{
    close_now(c);
}

int roost_conn_start_tls(roost_conn_t *c, SSL_CTX *ctx)
{
    if (c->tls != NULL || c->closing || c->shutting)
        return ROOST_EINVAL;
    c->tls = roost_tls_new(ctx);
    return c->tls != NULL ? 0 : ROOST_ENOMEM;
}

int roost_conn_tls(const roost_conn_t *c)
{
    return c->tls != NULL && roost_tls_established(c->tls);
}

const char *roost_conn_tls_version(const roost_conn_t *c)
{
    return c->tls != NULL && roost_tls_established(c->tls) ? roost_tls_version(c->tls) : NULL;
}

int roost_conn_channel_binding(const roost_conn_t *c, const char *type, unsigned char *buf,
                               size_t cap)
{
    if (c->tls == NULL)
        return ROOST_EINVAL;
    return roost_tls_channel_binding(c->tls, type, buf, cap);
}
