/* roost-bench's simulated XMPP client: connect from a 127.0.0.x source,
 * SCRAM-SHA-256 login with a cached salted password, bind, initial presence,
 * then chat messages with sequence numbers and send timestamps. */
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tests/bench/bench.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* A write the kernel did not take at once; owns the rest of the bytes. */
typedef struct {
    uv_write_t req;
    char data[];
} wreq_t;

/* One shared read buffer: libuv hands it to on_read before the next alloc. */
static char read_buf[64 * 1024];

static void note_failure(const char *why)
{
    for (unsigned i = 0; i < 8; i++) {
        if (ph.why[i] == NULL)
            ph.why[i] = why;
        if (ph.why[i] == why || strcmp(ph.why[i], why) == 0) {
            ph.why_n[i]++;
            return;
        }
    }
}

static void login_done(bench_client_t *c, int ok, const char *why)
{
    if (c->counted)
        return;
    c->counted = 1;
    ph.active--;
    if (ok) {
        uint64_t now = uv_hrtime();
        ph.lat[ph.ok++] = now - c->t_start;
        ph.t_last = now;
    } else {
        ph.failed++;
        note_failure(why);
    }
    bench_pump();
}

static void on_closed(uv_handle_t *h)
{
    bench_client_t *c = h->data;
    if (c->xp != NULL)
        XML_ParserFree(c->xp);
    c->xp = NULL;
    free(c->seen);
    c->seen = NULL;
    c->state = ST_CLOSED;
    ph.open--;
}

void bench_client_close(bench_client_t *c)
{
    if (c->state >= ST_CLOSING || c->state == ST_NEW)
        return;
    c->state = ST_CLOSING;
    if (c->in_parse && c->xp != NULL)
        XML_StopParser(c->xp, XML_FALSE);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void bench_client_fail(bench_client_t *c, const char *why)
{
    if (c->state >= ST_CLOSING)
        return;
    if (c->state == ST_ONLINE) {
        ph.dropped++;
        note_failure(why);
    }
    bench_client_close(c);
    login_done(c, 0, why);
}

static void on_written(uv_write_t *req, int status)
{
    bench_client_t *c = req->handle->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED)
        bench_client_fail(c, "write error");
}

void bench_send_raw(bench_client_t *c, const char *s, size_t n)
{
    if (c->state >= ST_CLOSING || c->state < ST_FEAT1)
        return;
    uv_buf_t b = uv_buf_init((char *)s, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (w == (int)n)
        return;
    if (w < 0 && w != UV_EAGAIN) {
        bench_client_fail(c, "write error");
        return;
    }
    if (w < 0)
        w = 0;
    wreq_t *r = malloc(sizeof(*r) + n - (size_t)w);
    if (r == NULL) {
        bench_client_fail(c, "out of memory");
        return;
    }
    memcpy(r->data, s + w, n - (size_t)w);
    b = uv_buf_init(r->data, (unsigned)(n - (size_t)w));
    if (uv_write(&r->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        free(r);
        bench_client_fail(c, "write error");
    }
}

static void sendf(bench_client_t *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(buf))
        bench_send_raw(c, buf, (size_t)n);
}

static void send_header(bench_client_t *c)
{
    sendf(c, "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
             "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", opt.domain);
}

void bench_user_name(unsigned i, char *out, size_t cap)
{
    snprintf(out, cap, "%s%05u", opt.prefix, i);
}

/* ---- messages ------------------------------------------------------------ */

void bench_send_msg(bench_client_t *c)
{
    bench_client_t *p = c->partner;
    if (p == NULL || c->state != ST_ONLINE)
        return;
    uint32_t seq = c->next_seq++;
    c->inflight++;
    ph.sent++;
    sendf(c, "<message to='%s' type='chat' id='m%" PRIu32 "'><body>%u.%" PRIu32 ".%" PRIu64
             "</body></message>", p->jid, seq, c->slot, seq, uv_hrtime());
}

static void lat_push(uint64_t v)
{
    if (ph.mlat_n == ph.mlat_cap) {
        if (ph.mlat_cap >= LAT_MAX)
            return;
        size_t nc = ph.mlat_cap ? ph.mlat_cap * 2 : 65536;
        uint64_t *m = realloc(ph.mlat, nc * sizeof(*m));
        if (m == NULL)
            return;
        ph.mlat = m;
        ph.mlat_cap = nc;
    }
    ph.mlat[ph.mlat_n++] = v;
}

/* Marks seq as seen by c; 1 when it was seen before. */
static int seen_mark(bench_client_t *c, uint32_t seq)
{
    if (seq >= SEEN_MAX)
        return 0;
    size_t byte = seq / 8;
    if (byte >= c->seen_bytes) {
        size_t nb = c->seen_bytes ? c->seen_bytes : 64;
        while (nb <= byte)
            nb *= 2;
        uint8_t *s = realloc(c->seen, nb);
        if (s == NULL)
            return 0;
        memset(s + c->seen_bytes, 0, nb - c->seen_bytes);
        c->seen = s;
        c->seen_bytes = nb;
    }
    uint8_t bit = (uint8_t)(1u << (seq % 8));
    int was = (c->seen[byte] & bit) != 0;
    c->seen[byte] |= bit;
    return was;
}

static void on_message(bench_client_t *c)
{
    unsigned slot;
    uint32_t seq;
    uint64_t ts;
    uint64_t now = uv_hrtime();

    c->text[c->tlen] = '\0';
    if (strcmp(c->type, "error") == 0) {
        ph.errors++;
        return;
    }
    if (sscanf(c->text, "%u.%" SCNu32 ".%" SCNu64, &slot, &seq, &ts) != 3 || slot >= ph.n ||
        ph.c[slot].partner != c) {
        ph.unknown++;
        return;
    }
    if (seen_mark(c, seq)) {
        ph.dup++;
        return;
    }
    ph.recvd++;
    ph.t_recv_last = now;
    lat_push(now - ts);
    bench_client_t *s = &ph.c[slot];
    if (s->inflight > 0)
        s->inflight--;
    if (ph.window && ph.sending)
        bench_send_msg(s);
}

/* ---- XML ----------------------------------------------------------------- */

static const char *local_name(const char *n)
{
    const char *sp = strrchr(n, ' ');
    return sp ? sp + 1 : n;
}

static void copy_attr(const char **atts, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    for (; atts[0] != NULL; atts += 2)
        if (strcmp(atts[0], name) == 0) {
            snprintf(out, cap, "%s", atts[1]);
            return;
        }
}

static void on_start(void *data, const char *name, const char **atts)
{
    bench_client_t *c = data;
    unsigned lvl = c->level++;
    const char *ln = local_name(name);

    if (lvl == 1) {
        c->cap = CAP_NONE;
        c->tlen = 0;
        c->id[0] = c->type[0] = '\0';
        if (strcmp(ln, "features") == 0)
            c->el = EL_FEATURES;
        else if (strcmp(ln, "challenge") == 0 || strcmp(ln, "success") == 0) {
            c->el = ln[0] == 'c' ? EL_CHALLENGE : EL_SUCCESS;
            c->cap = CAP_SASL;
        } else if (strcmp(ln, "failure") == 0)
            c->el = EL_FAILURE;
        else if (strcmp(ln, "error") == 0)
            c->el = EL_ERROR;
        else if (strcmp(ln, "iq") == 0 || strcmp(ln, "message") == 0) {
            c->el = ln[0] == 'i' ? EL_IQ : EL_MESSAGE;
            copy_attr(atts, "id", c->id, sizeof(c->id));
            copy_attr(atts, "type", c->type, sizeof(c->type));
        } else if (strcmp(ln, "presence") == 0)
            c->el = EL_PRESENCE;
        else
            c->el = EL_OTHER;
    } else if (lvl == 2 && c->el == EL_MESSAGE && strcmp(ln, "body") == 0) {
        c->cap = CAP_BODY;
        c->tlen = 0;
    } else if (lvl == 3 && c->el == EL_IQ && strcmp(ln, "jid") == 0) {
        c->cap = CAP_JID;
        c->tlen = 0;
    }
}

static void on_text(void *data, const char *s, int len)
{
    bench_client_t *c = data;
    if (c->cap == CAP_NONE || len <= 0)
        return;
    size_t n = (size_t)len;
    if (n > sizeof(c->text) - 1 - c->tlen)
        n = sizeof(c->text) - 1 - c->tlen;
    memcpy(c->text + c->tlen, s, n);
    c->tlen += n;
}

static void on_sasl(bench_client_t *c)
{
    uint8_t raw[400];
    char out[400], b64[600];
    long rl = roost_bench_b64_decode(c->text, c->tlen, raw, sizeof(raw) - 1);
    if (rl < 0) {
        bench_client_fail(c, "bad base64 from server");
        return;
    }
    if (c->el == EL_CHALLENGE && c->state == ST_CHALLENGE) {
        int derived = 0;
        size_t n = roost_bench_scram_final(&c->scram, opt.password, (const char *)raw,
                                           (size_t)rl, &cache[c->slot], &derived,
                                           out, sizeof(out));
        if (n == 0) {
            bench_client_fail(c, "bad server-first");
            return;
        }
        ph.derived += (unsigned)derived;
        roost_bench_b64_encode(out, n, b64, sizeof(b64));
        sendf(c, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>", b64);
        c->state = ST_SUCCESS;
    } else if (c->el == EL_SUCCESS && c->state == ST_SUCCESS) {
        if (roost_bench_scram_verify(&c->scram, (const char *)raw, (size_t)rl) != 0) {
            bench_client_fail(c, "bad server signature");
            return;
        }
        /* The stream restarts: a fresh parser once this chunk is done. */
        c->want_reset = 1;
        c->state = ST_FEAT2;
        XML_StopParser(c->xp, XML_FALSE);
    } else {
        bench_client_fail(c, "unexpected SASL element");
    }
}

static void on_stanza(bench_client_t *c)
{
    switch (c->el) {
    case EL_FEATURES:
        if (c->state == ST_FEAT1) {
            char user[64], first[256], b64[400];
            bench_user_name(c->slot, user, sizeof(user));
            size_t n = roost_bench_scram_first(&c->scram, user, first, sizeof(first));
            if (n == 0) {
                bench_client_fail(c, "client-first");
                return;
            }
            roost_bench_b64_encode(first, n, b64, sizeof(b64));
            sendf(c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"
                     "%s</auth>", b64);
            c->state = ST_CHALLENGE;
        } else if (c->state == ST_FEAT2) {
            sendf(c, "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                     "<resource>r</resource></bind></iq>");
            c->state = ST_BIND;
        }
        break;
    case EL_CHALLENGE:
    case EL_SUCCESS:
        on_sasl(c);
        break;
    case EL_FAILURE:
        bench_client_fail(c, "SASL failure");
        break;
    case EL_ERROR:
        bench_client_fail(c, "stream error");
        break;
    case EL_IQ:
        if (c->state == ST_BIND && strcmp(c->id, "bind") == 0) {
            if (strcmp(c->type, "result") != 0 || c->jid[0] == '\0') {
                bench_client_fail(c, "bind refused");
                return;
            }
            if (opt.presence) {
                bench_send_raw(c, "<presence/>", 11);
                c->state = ST_AVAIL;
            } else {
                c->state = ST_ONLINE;
                login_done(c, 1, NULL);
            }
        } else if (strcmp(c->type, "get") == 0 || strcmp(c->type, "set") == 0) {
            /* Pings and whatever else: an empty result keeps the server content. */
            sendf(c, "<iq type='result' id='%s' to='%s'/>", c->id, opt.domain);
        }
        break;
    case EL_PRESENCE:
        if (c->state == ST_AVAIL) {
            c->state = ST_ONLINE;
            login_done(c, 1, NULL);
        }
        break;
    case EL_MESSAGE:
        on_message(c);
        break;
    case EL_OTHER:
        break;
    }
}

static void on_end(void *data, const char *name)
{
    bench_client_t *c = data;
    (void)name;
    unsigned lvl = --c->level;

    if (c->state >= ST_CLOSING)
        return;
    if (lvl == 0) {
        bench_client_fail(c, "stream closed by server");
    } else if (lvl == 1) {
        on_stanza(c);
        c->cap = CAP_NONE;
    } else if (lvl == 3 && c->cap == CAP_JID) {
        size_t n = c->tlen < sizeof(c->jid) - 1 ? c->tlen : sizeof(c->jid) - 1;
        memcpy(c->jid, c->text, n);
        c->jid[n] = '\0';
        c->cap = CAP_NONE;
    } else if (lvl == 2 && c->cap == CAP_BODY) {
        c->cap = CAP_NONE;     /* keep the text for the end of the message */
        c->el = EL_MESSAGE;
    }
}

static int parser_new(bench_client_t *c)
{
    if (c->xp != NULL)
        XML_ParserFree(c->xp);
    c->xp = XML_ParserCreateNS(NULL, ' ');
    if (c->xp == NULL)
        return -1;
    XML_SetUserData(c->xp, c);
    XML_SetElementHandler(c->xp, on_start, on_end);
    XML_SetCharacterDataHandler(c->xp, on_text);
    c->level = 0;
    c->cap = CAP_NONE;
    return 0;
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    bench_client_t *c = s->data;
    if (n == 0 || c->state >= ST_CLOSING)
        return;
    if (n < 0) {
        bench_client_fail(c, n == UV_EOF ? "connection closed by server" : "read error");
        return;
    }
    c->in_parse = 1;
    enum XML_Status st = XML_Parse(c->xp, buf->base, (int)n, 0);
    c->in_parse = 0;
    if (c->state >= ST_CLOSING)
        return;
    if (c->want_reset) {
        c->want_reset = 0;
        if (parser_new(c) < 0) {
            bench_client_fail(c, "out of memory");
            return;
        }
        send_header(c);
        return;
    }
    if (st != XML_STATUS_OK)
        bench_client_fail(c, "XML error from server");
}

static void on_connect(uv_connect_t *req, int status)
{
    bench_client_t *c = req->data;
    if (c->state != ST_CONNECTING)
        return;
    if (status < 0) {
        bench_client_fail(c, "connect failed");
        return;
    }
    if (parser_new(c) < 0 || uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read) < 0) {
        bench_client_fail(c, "connect setup");
        return;
    }
    c->state = ST_FEAT1;
    send_header(c);
}

static void client_start(bench_client_t *c)
{
    struct sockaddr_in src, dst;
    uv_os_fd_t fd;
    int one = 1;

    c->t_start = uv_hrtime();
    if (uv_tcp_init_ex(loop, &c->tcp, AF_INET) < 0) {
        note_failure("socket");
        ph.failed++;
        ph.active--;
        c->counted = 1;
        return;
    }
    c->tcp.data = c;
    c->creq.data = c;
    c->state = ST_CONNECTING;
    ph.open++;
    /* The kernel picks the port at connect time, per destination, so many
     * sources do not share one ephemeral range. */
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    uv_tcp_nodelay(&c->tcp, 1);
    char ip[32];
    snprintf(ip, sizeof(ip), "127.0.0.%u", 1 + c->slot % opt.sources);
    uv_ip4_addr(ip, 0, &src);
    uv_ip4_addr(opt.host, opt.ports[c->slot % (opt.use_ports ? opt.use_ports : opt.n_ports)], &dst);
    if (uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0) < 0) {
        bench_client_fail(c, "bind source address");
        return;
    }
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&dst, on_connect) < 0)
        bench_client_fail(c, "connect failed");
}

/* Starts logins while fewer than opt.inflight are under way. Guarded, as a
 * synchronous failure inside client_start lands back here. */
void bench_pump(void)
{
    if (ph.pumping)
        return;
    ph.pumping = 1;
    while (ph.active < opt.inflight && ph.next < ph.n) {
        bench_client_t *c = &ph.c[ph.next++];
        ph.active++;
        client_start(c);
    }
    ph.pumping = 0;
}

