/* Client TCP transport on libuv. One read buffer is shared by all
 * connections of the loop (reads are consumed synchronously), so an idle
 * connection holds no input buffer. Writes are copied into requests that
 * own their bytes until the write callback. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "node/conn.h"
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
    int handles;               /* open uv handles; free when 0 */
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

static void update_reading(roost_conn_t *c);

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
    c->cb.on_data(c, buf->base, (size_t)nread);
    read_buf_busy = 0;
}

static void update_reading(roost_conn_t *c)
{
    if (c->closing)
        return;
    if (c->queued >= c->limits.high)
        c->backlogged = 1;
    else if (c->queued <= c->limits.low)
        c->backlogged = 0;
    int should = c->want_read && !c->backlogged;
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
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(sin6, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "[%s]:%d", ip, ntohs(sin6->sin6_port));
        }
    }
    len = sizeof(ss);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            c->loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            c->loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
                          (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
                           sin6->sin6_addr.s6_addr[12] == 127);
        }
    }
    c->want_read = 1;
    update_reading(c);
    return c;
}

uint64_t roost_conn_id(const roost_conn_t *c) { return c->id; }
void *roost_conn_data(const roost_conn_t *c) { return c->data; }
const char *roost_conn_peer(const roost_conn_t *c) { return c->peer; }
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
    if (c->queued + len > c->limits.max) {
        /* A reader this slow would make us buffer without bound. */
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

static void on_shutdown(uv_shutdown_t *req, int status)
{
    close_now(req->data);
}

void roost_conn_close(roost_conn_t *c)
{
    if (c->closing || c->shutting)
        return;
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
    uv_timer_start(&c->timer, on_flush_timeout, CLOSE_FLUSH_MS, 0);
}

void roost_conn_abort(roost_conn_t *c)
{
    close_now(c);
}
