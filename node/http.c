/* Bounded HTTP/1.x request reading with http-parser (libhttp-parser-dev)
 * and response formatting for the admin listener. The parser does the
 * grammar; this file adds the caps (total size, target length, version)
 * and keeps only what the admin endpoints need: method and path. */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

#include "node/http.h"
#include "store/error.h"

struct roost_http_req_s {
    http_parser p;
    size_t max, total;
    char url[ROOST_HTTP_PATH_MAX + 1];
    size_t url_len;
    char path[ROOST_HTTP_PATH_MAX + 1];
    int headers_done;
    int done;          /* 1 complete, negative error */
    int status;        /* HTTP status to answer an error with */
};

static int on_url(http_parser *p, const char *at, size_t len)
{
    roost_http_req_t *r = p->data;
    if (len > ROOST_HTTP_PATH_MAX - r->url_len) {
        r->status = 414;
        return 1;          /* stops the parser with HPE_CB_url */
    }
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = '\0';
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    roost_http_req_t *r = p->data;
    if (p->http_major != 1) {
        r->status = 505;
        return -1;         /* 1 and 2 mean "no body follows"; others stop */
    }
    r->headers_done = 1;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    roost_http_req_t *r = p->data;
    r->done = 1;
    /* Whatever follows (a pipelined request) is not read: we answer one
     * request per connection and close it. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

roost_http_req_t *roost_http_req_new(size_t max_bytes)
{
    roost_http_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    http_parser_init(&r->p, HTTP_REQUEST);
    r->p.data = r;
    r->max = max_bytes;
    return r;
}

void roost_http_req_free(roost_http_req_t *r)
{
    free(r);
}

/* The path part of the request target: origin form ("/metrics?x") and
 * absolute form ("http://host/metrics") both give "/metrics". */
static int split_path(roost_http_req_t *r)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (r->url_len == 0 ||
        http_parser_parse_url(r->url, r->url_len, r->p.method == HTTP_CONNECT, &u) != 0)
        return ROOST_EPROTO;
    if (u.field_set & (1 << UF_PATH)) {
        size_t off = u.field_data[UF_PATH].off, len = u.field_data[UF_PATH].len;
        memcpy(r->path, r->url + off, len);
        r->path[len] = '\0';
    } else {
        r->path[0] = '\0';
    }
    return 0;
}

static int finish(roost_http_req_t *r, int rc, int status)
{
    r->done = rc;
    if (rc < 0)
        r->status = status;
    return rc;
}

int roost_http_req_feed(roost_http_req_t *r, const char *data, size_t len)
{
    if (r == NULL)
        return ROOST_EINVAL;
    if (r->done != 0)
        return r->done;
    if (len == 0)
        return 0;
    size_t room = r->max - r->total;
    size_t take = len < room ? len : room;
    size_t n = http_parser_execute(&r->p, &settings, data, take);
    r->total += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->p);

    if (r->done == 1 || (r->p.upgrade && r->headers_done)) {
        /* Upgrade requests (and CONNECT) end at their headers here. */
        if (split_path(r) < 0)
            return finish(r, ROOST_EPROTO, 400);
        return finish(r, 1, 0);
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
        int status = r->status != 0 ? r->status : 400;
        if (e == HPE_HEADER_OVERFLOW)
            status = 431;
        return finish(r, ROOST_EPROTO, status);
    }
    if (take < len || r->total >= r->max)
        return finish(r, ROOST_ELIMIT, 431);
    return 0;
}

int roost_http_req_error_status(const roost_http_req_t *r)
{
    return r != NULL && r->done < 0 ? r->status : 0;
}

const char *roost_http_req_method(const roost_http_req_t *r)
{
    return r != NULL && r->done == 1 ? http_method_str((enum http_method)r->p.method) : "";
}

const char *roost_http_req_path(const roost_http_req_t *r)
{
    return r != NULL && r->done == 1 ? r->path : "";
}

const char *roost_http_reason(int status)
{
    return http_status_str((enum http_status)status);
}

int roost_http_response(roost_buf_t *b, int status, const char *content_type,
                        const char *extra_headers, const char *body, size_t len,
                        int head_only)
{
    size_t mark = b->len;
    int rc = roost_buf_printf(b,
                              "HTTP/1.1 %d %s\r\n"
                              "Content-Type: %s\r\n"
                              "Content-Length: %zu\r\n"
                              "Cache-Control: no-store\r\n"
                              "Connection: close\r\n"
                              "%s\r\n",
                              status, roost_http_reason(status),
                              content_type != NULL ? content_type : "text/plain; charset=utf-8",
                              len, extra_headers != NULL ? extra_headers : "");
    if (rc == 0 && !head_only && len > 0)
        rc = roost_buf_append(b, body, len);
    if (rc != 0)
        b->len = mark;     /* no half response */
    return rc;
}
