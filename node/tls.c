/* TLS engine over memory BIOs: the connection layer feeds it the peer's
 * ciphertext and sends what it produces; this file never touches a socket.
 * Contexts are loaded from PEM files and shared, reference-counted, by the
 * connections made from them (OpenSSL's own SSL_CTX count). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "node/tls.h"
#include "store/error.h"

#define PLAIN_CHUNK 16384   /* one TLS record's worth of plaintext */

struct roost_tls_s {
    SSL *ssl;
    BIO *rbio;      /* ciphertext from the peer, owned by ssl */
    BIO *wbio;      /* ciphertext for the peer, owned by ssl */
    int established;
    int peer_closed;    /* close_notify received */
    char err[200];
};

static void last_error(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, len, "no OpenSSL error recorded");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

SSL_CTX *roost_tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
    char why[200];
    SSL_CTX *ctx;

    if (cert == NULL || cert[0] == '\0') {
        snprintf(err, errlen, "tls.cert: no certificate file configured");
        return NULL;
    }
    if (key == NULL || key[0] == '\0')
        key = cert;
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        last_error(why, sizeof(why));
        snprintf(err, errlen, "tls: cannot create a context: %s", why);
        return NULL;
    }
    /* TLS 1.3 is preferred simply by being the highest version both sides
     * speak; 1.2 stays for older clients, nothing below it. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        goto fail_ctx;
    /* Compression leaks secrets (CRIME); renegotiation is an old source of
     * CPU exhaustion and confusion attacks. Session resumption is not
     * offered: no ticket keys or cache to manage per node. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    /* An idle connection gives its 16 KiB record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        last_error(why, sizeof(why));
        snprintf(err, errlen, "tls.cert: cannot load %s: %s", cert, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        last_error(why, sizeof(why));
        snprintf(err, errlen, "tls.key: cannot load %s (or it does not match tls.cert): %s",
                 key, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;

fail_ctx:
    last_error(why, sizeof(why));
    snprintf(err, errlen, "tls: cannot configure the context: %s", why);
    SSL_CTX_free(ctx);
    return NULL;
}

roost_tls_t *roost_tls_new(SSL_CTX *ctx)
{
    roost_tls_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ssl = SSL_new(ctx);
    if (t->ssl == NULL)
        goto fail_t;
    t->rbio = BIO_new(BIO_s_mem());
    if (t->rbio == NULL)
        goto fail_ssl;
    t->wbio = BIO_new(BIO_s_mem());
    if (t->wbio == NULL)
        goto fail_rbio;
    /* An empty input BIO means "wait for more", not end of file. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    return t;

fail_rbio:
    BIO_free(t->rbio);
fail_ssl:
    SSL_free(t->ssl);
fail_t:
    free(t);
    ERR_clear_error();
    return NULL;
}

void roost_tls_free(roost_tls_t *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);    /* frees both BIOs and drops the context reference */
    free(t);
}

/* 0 when the operation only waits for more input, else ROOST_EIO with the
 * reason kept for roost_tls_error. */
static int check(roost_tls_t *t, int r)
{
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(t->err, sizeof(t->err), "peer sent close_notify");
        t->peer_closed = 1;
        ERR_clear_error();
    } else {
        last_error(t->err, sizeof(t->err));
    }
    return ROOST_EIO;
}

int roost_tls_feed(roost_tls_t *t, const char *in, size_t len, roost_tls_plain_cb plain,
                   void *arg)
{
    char buf[PLAIN_CHUNK];
    int r;

    ERR_clear_error();
    if (len > INT_MAX || (len > 0 && BIO_write(t->rbio, in, (int)len) != (int)len)) {
        snprintf(t->err, sizeof(t->err), "cannot buffer %zu input bytes", len);
        return ROOST_EIO;
    }
    if (!t->established) {
        r = SSL_do_handshake(t->ssl);
        if (r != 1)
            return check(t, r);
        t->established = 1;
    }
    for (;;) {
        r = SSL_read(t->ssl, buf, sizeof(buf));
        if (r <= 0)
            return check(t, r);
        if (plain(arg, buf, (size_t)r) != 0)
            return 0;
    }
}

int roost_tls_write(roost_tls_t *t, const void *buf, size_t len)
{
    if (!t->established)
        return ROOST_EAGAIN;
    if (len == 0)
        return 0;
    if (len > INT_MAX) {
        snprintf(t->err, sizeof(t->err), "write of %zu bytes", len);
        return ROOST_EIO;
    }
    ERR_clear_error();
    /* A memory BIO never refuses output, so SSL_write takes it all. */
    int r = SSL_write(t->ssl, buf, (int)len);
    if (r == (int)len)
        return 0;
    if (r > 0 || check(t, r) == 0)
        snprintf(t->err, sizeof(t->err), "short write");
    return ROOST_EIO;
}

void roost_tls_shutdown(roost_tls_t *t)
{
    if (!t->established)
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
}

size_t roost_tls_out_pending(const roost_tls_t *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t roost_tls_out_take(roost_tls_t *t, char *buf, size_t cap)
{
    if (cap > INT_MAX)
        cap = INT_MAX;
    int n = BIO_read(t->wbio, buf, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

int roost_tls_established(const roost_tls_t *t) { return t->established; }
int roost_tls_peer_closed(const roost_tls_t *t) { return t->peer_closed; }

int roost_tls_in_pending(const roost_tls_t *t)
{
    return SSL_has_pending(t->ssl) || BIO_ctrl_pending(t->rbio) > 0;
}

const char *roost_tls_version(const roost_tls_t *t)
{
    return SSL_get_version(t->ssl);
}

/* RFC 5929 §4.1: the certificate's own signature hash, except that MD5 and
 * SHA-1 are replaced by SHA-256; with no single hash (Ed25519, say) the
 * binding is undefined, so it is not offered. */
static int server_end_point(const roost_tls_t *t, unsigned char *buf, size_t cap)
{
    X509 *x = SSL_get_certificate(t->ssl);
    const EVP_MD *md;
    unsigned int n = 0;
    int mdnid = NID_undef;

    if (x == NULL || X509_get_signature_info(x, &mdnid, NULL, NULL, NULL) != 1)
        return ROOST_EINVAL;
    if (mdnid == NID_md5 || mdnid == NID_sha1)
        mdnid = NID_sha256;
    md = mdnid != NID_undef ? EVP_get_digestbynid(mdnid) : NULL;
    if (md == NULL)
        return ROOST_EINVAL;
    if (cap < (size_t)EVP_MD_get_size(md))
        return ROOST_ELIMIT;
    if (X509_digest(x, md, buf, &n) != 1)
        return ROOST_EINVAL;
    return (int)n;
}

int roost_tls_channel_binding(const roost_tls_t *t, const char *type, unsigned char *buf,
                              size_t cap)
{
    static const char label[] = "EXPORTER-Channel-Binding";
    int rc;

    if (!t->established || type == NULL)
        return ROOST_EINVAL;
    ERR_clear_error();
    if (strcmp(type, "tls-server-end-point") == 0) {
        rc = server_end_point(t, buf, cap);
    } else if (strcmp(type, "tls-exporter") == 0) {
        /* Under TLS 1.2 the exporter is only safe with the extended master
         * secret (RFC 9266 §3); simpler to keep it to TLS 1.3. */
        if (SSL_version(t->ssl) < TLS1_3_VERSION)
            return ROOST_EINVAL;
        if (cap < 32)
            return ROOST_ELIMIT;
        rc = SSL_export_keying_material(t->ssl, buf, 32, label, sizeof(label) - 1,
                                        (const unsigned char *)"", 0, 1) == 1 ? 32 : ROOST_EINVAL;
    } else {
        rc = ROOST_EINVAL;
    }
    ERR_clear_error();
    return rc;
}

const char *roost_tls_error(const roost_tls_t *t)
{
    return t->err[0] != '\0' ? t->err : "unknown";
}
