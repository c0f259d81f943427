/* A client TCP connection: the libuv handle, a shared read buffer, a write
 * queue with high/low watermarks that pauses reading, and graceful close.
 * Knows bytes, not XML. The protocol layer above (c2s) owns the conn. */
#ifndef ROOST_CONN_H
#define ROOST_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <openssl/ssl.h>

typedef struct roost_conn_s roost_conn_t;

typedef struct {
    /* Bytes arrived (borrowed for the call). */
    void (*on_data)(roost_conn_t *c, const char *buf, size_t len);
    /* The peer closed, an error occurred, or roost_conn_close finished:
     * the conn is about to be freed; called exactly once. */
    void (*on_close)(roost_conn_t *c);
    /* After roost_conn_expect_proxy: the PROXY header was read, so
     * roost_conn_peer and roost_conn_peer_ip now name the client. Runs
     * before any on_data; may close the conn. NULL: not wanted. */
    void (*on_peer)(roost_conn_t *c);
} roost_conn_cb_t;

typedef struct {
    size_t high;    /* queued output bytes at which reading pauses */
    size_t low;     /* ... and resumes */
    size_t max;     /* beyond this the conn is dropped (slow reader) */
} roost_conn_limits_t;

/* Accepts a pending connection on server. NULL on failure (the pending
 * connection is dropped). Reading starts at once. */
roost_conn_t *roost_conn_accept(uv_stream_t *server, uint64_t id,
                                const roost_conn_limits_t *limits,
                                const roost_conn_cb_t *cb, void *data);

uint64_t roost_conn_id(const roost_conn_t *c);
void *roost_conn_data(const roost_conn_t *c);
/* "ip:port" of the peer (static storage inside the conn): the client's as
 * its PROXY header names it, once read, else the socket's. */
const char *roost_conn_peer(const roost_conn_t *c);
/* The peer's address as for roost_conn_peer: AF_INET (4 bytes into ip) or
 * AF_INET6 (16 bytes), or 0 when unknown (ip untouched). */
int roost_conn_peer_ip(const roost_conn_t *c, uint8_t ip[16]);
/* 1 when the local address is a loopback address (with a PROXY header: the
 * address the client connected to). */
int roost_conn_is_loopback(const roost_conn_t *c);

/* The connection starts with a PROXY protocol v1 or v2 header (a load
 * balancer in front): it is read before any other byte, TLS included, and
 * must arrive within timeout_ms. A missing, malformed or late header drops
 * the connection (logged, counted in roost_proxy_header_errors_total);
 * on_peer runs once it is read. Call right after accept. 0 or
 * ROOST_EINVAL. */
int roost_conn_expect_proxy(roost_conn_t *c, unsigned timeout_ms);
/* 1 while that header is still awaited. */
int roost_conn_proxy_pending(const roost_conn_t *c);

/* Queues a copy of buf. ROOST_ELIMIT (and the conn starts closing) when the
 * queue would exceed limits.max; ROOST_EIO once closing. */
int roost_conn_write(roost_conn_t *c, const void *buf, size_t len);
size_t roost_conn_queued(const roost_conn_t *c);

/* The protocol layer's wish to (not) read; reading happens only when it
 * wants to and the write queue is below the watermark. */
void roost_conn_want_read(roost_conn_t *c, int want);

/* Flushes queued output (bounded by a short deadline), then closes. on_close
 * runs later, from the loop. Idempotent. */
void roost_conn_close(roost_conn_t *c);
/* Makes roost_conn_close wait, after its output and FIN went out, until
 * the peer closes too (at most the same short deadline), reading and
 * dropping what it still sends: else that unread input makes the kernel
 * answer our close with a reset that can destroy our last words (a stream
 * error) before the peer read them. on_close runs only then, so this is
 * for connections that hold nothing else, e.g. refused ones. */
void roost_conn_linger(roost_conn_t *c);
/* Closes at once, dropping queued output. */
void roost_conn_abort(roost_conn_t *c);
int roost_conn_closing(const roost_conn_t *c);

/* From now on bytes are TLS (server side, context ctx, referenced by the
 * conn): on_data sees decrypted bytes and roost_conn_write encrypts. Called
 * at accept (direct TLS) or right after writing <proceed/> (STARTTLS): what
 * was written before still goes out in the clear. A failed handshake closes
 * the conn. ROOST_EINVAL if TLS is already on or the conn is closing. */
int roost_conn_start_tls(roost_conn_t *c, SSL_CTX *ctx);
/* 1 once the TLS handshake completed. */
int roost_conn_tls(const roost_conn_t *c);
/* "TLSv1.3" etc., or NULL without an established TLS session. */
const char *roost_conn_tls_version(const roost_conn_t *c);
/* Channel-binding data of the TLS session (see roost_tls_channel_binding);
 * ROOST_EINVAL without an established TLS session. */
int roost_conn_channel_binding(const roost_conn_t *c, const char *type, unsigned char *buf,
                               size_t cap);

#endif
