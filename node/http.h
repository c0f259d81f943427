/* A bounded HTTP/1.x request reader on top of Debian's http-parser, and the
 * response formatter, for the admin listener. Pure: fed bytes, no I/O. */
#ifndef ROOST_HTTP_H
#define ROOST_HTTP_H

#include <stddef.h>

#include "node/buf.h"

#define ROOST_HTTP_PATH_MAX 1024     /* request target bytes kept */

typedef struct roost_http_req_s roost_http_req_t;

/* A reader for one request of at most max_bytes (request line, headers and
 * any body together). NULL on allocation failure. */
roost_http_req_t *roost_http_req_new(size_t max_bytes);
void roost_http_req_free(roost_http_req_t *r);   /* NULL: no-op */

/* Feeds the next bytes of the request. Returns 0 when more are needed, 1
 * once a whole request was read (bytes after it are ignored: the answer
 * closes the connection), or a negative ROOST_E* after which
 * roost_http_req_error_status() says what to answer: 400 malformed, 414
 * target too long, 431 request larger than max_bytes, 505 not HTTP/1.x.
 * Once it returned nonzero, further calls return the same. */
int roost_http_req_feed(roost_http_req_t *r, const char *data, size_t len);
int roost_http_req_error_status(const roost_http_req_t *r);

/* The method ("GET", "HEAD", ...) and the decoded-free path of the target
 * without query or fragment ("/metrics"); valid once feed returned 1. */
const char *roost_http_req_method(const roost_http_req_t *r);
const char *roost_http_req_path(const roost_http_req_t *r);

/* The reason phrase of a status code ("OK", "Not Found", ...). */
const char *roost_http_reason(int status);

/* Appends a complete HTTP/1.1 response with Connection: close to b:
 * status line, Content-Type, Content-Length, extra_headers (CRLF-ended
 * lines or NULL) and, unless head_only, body[0..len). 0 or ROOST_ENOMEM. */
int roost_http_response(roost_buf_t *b, int status, const char *content_type,
                        const char *extra_headers, const char *body, size_t len,
                        int head_only);

#endif
