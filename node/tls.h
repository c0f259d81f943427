/* TLS for client connections: OpenSSL server contexts loaded from PEM files,
 * and a per-connection engine driven through memory BIOs, so that it does no
 * I/O itself: fed ciphertext, it yields plaintext and ciphertext to send. */
#ifndef ROOST_TLS_H
#define ROOST_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

typedef struct roost_tls_s roost_tls_t;

/* A server context from a PEM certificate chain (cert) and a PEM private key
 * (key; NULL: the key is in cert). TLS 1.2 minimum, no compression, no
 * renegotiation. NULL on failure, with a message naming tls.cert or tls.key
 * in err. The caller frees it with SSL_CTX_free; every connection made from
 * it holds its own reference (SSL_new), so a reload may free the old
 * context while its connections live on. */
SSL_CTX *roost_tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen);

/* A server-side engine on ctx (which it references). NULL on ENOMEM. */
roost_tls_t *roost_tls_new(SSL_CTX *ctx);
void roost_tls_free(roost_tls_t *t);

/* Receives plaintext; returns nonzero to stop (the connection is closing or
 * its reader paused): the rest stays buffered for a later feed. */
typedef int (*roost_tls_plain_cb)(void *arg, const char *buf, size_t len);

/* Feeds ciphertext from the peer; runs the handshake and hands decrypted
 * bytes to plain (borrowed for the call). Afterwards roost_tls_out_pending
 * may hold bytes to send. 0, or ROOST_EIO on a fatal TLS error (a failed
 * handshake, a bad record, a protocol version below 1.2) or once the peer
 * sent close_notify. */
int roost_tls_feed(roost_tls_t *t, const char *in, size_t len, roost_tls_plain_cb plain,
                   void *arg);

/* Encrypts plaintext for the peer. ROOST_EAGAIN before the handshake is
 * complete (nothing is queued), ROOST_EIO on a fatal error. */
int roost_tls_write(roost_tls_t *t, const void *buf, size_t len);

/* Queues a close_notify alert. */
void roost_tls_shutdown(roost_tls_t *t);

/* Ciphertext waiting to be sent, and taking up to cap bytes of it. */
size_t roost_tls_out_pending(const roost_tls_t *t);
size_t roost_tls_out_take(roost_tls_t *t, char *buf, size_t cap);

/* 1 once the handshake completed. */
int roost_tls_established(const roost_tls_t *t);
/* 1 while input is buffered that a feed (even of 0 bytes) would process:
 * the plain callback stopped it early. */
int roost_tls_in_pending(const roost_tls_t *t);
/* 1 once the peer sent close_notify (an orderly end, not an error). */
int roost_tls_peer_closed(const roost_tls_t *t);
/* "TLSv1.3" etc. after the handshake. */
const char *roost_tls_version(const roost_tls_t *t);
/* Largest channel-binding value roost_tls_channel_binding produces. */
#define ROOST_TLS_CB_MAX 64

/* Channel-binding data of the established session into buf (cap bytes):
 * "tls-exporter" (RFC 9266: 32 bytes exported with the label
 * "EXPORTER-Channel-Binding" and an empty context; offered on TLS 1.3
 * only, where the exporter is bound to the full handshake) or
 * "tls-server-end-point" (RFC 5929 §4.1: a hash of our certificate).
 * Returns the length, or ROOST_EINVAL when the type is unknown or not
 * available on this session (no handshake yet, TLS 1.2 for tls-exporter,
 * a certificate whose signature uses no single hash), ROOST_ELIMIT when
 * cap is too small. */
int roost_tls_channel_binding(const roost_tls_t *t, const char *type, unsigned char *buf,
                              size_t cap);

/* The last OpenSSL error as text, for log lines (static storage). */
const char *roost_tls_error(const roost_tls_t *t);

#endif
