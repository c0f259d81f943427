/* Unit tests for node/tls: context loading from PEM files and the memory-BIO
 * engine against an in-process OpenSSL client (TLS 1.3 and 1.2, data both
 * ways, TLS 1.1 refused, writes before the handshake, close_notify), and
 * channel-binding data as the client computes it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "node/buf.h"
#include "node/tls.h"
#include "store/error.h"

static char dir[64];
static char cert_path[128], key_path[128], key2_path[128];

static EVP_PKEY *write_key(const char *path)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(k);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    return k;
}

/* A self-signed certificate for localhost and two keys, one not matching. */
static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/roost-test-tls.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
    snprintf(key2_path, sizeof(key2_path), "%s/key2.pem", dir);
    EVP_PKEY *k = write_key(key_path);
    EVP_PKEY_free(write_key(key2_path));
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
    FILE *f = fopen(cert_path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, x), 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void teardown(void)
{
    unlink(cert_path);
    unlink(key_path);
    unlink(key2_path);
    rmdir(dir);
}

/* ---- a client in the same process ----------------------------------------- */

typedef struct {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
} client_t;

static void client_init(client_t *c, int max_version)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(c->ctx);
    if (max_version != 0) {
        /* Old versions need the lowest security level to be offered. */
        SSL_CTX_set_security_level(c->ctx, 0);
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(c->ctx, max_version);
    }
    c->ssl = SSL_new(c->ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_connect_state(c->ssl);
}

static void client_free(client_t *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
}

static roost_buf_t got;

static int on_plain(void *arg, const char *buf, size_t len)
{
    roost_buf_append(&got, buf, len);
    return 0;
}

/* Moves bytes both ways until neither side has anything to say. Returns
 * the last roost_tls_feed status. */
static int pump(client_t *c, roost_tls_t *t)
{
    char buf[32768];
    int rc = 0;
    for (int round = 0; round < 20; round++) {
        int moved = 0;
        if (!SSL_is_init_finished(c->ssl))
            SSL_do_handshake(c->ssl);
        int n;
        while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0) {
            rc = roost_tls_feed(t, buf, (size_t)n, on_plain, NULL);
            moved = 1;
        }
        size_t m;
        while ((m = roost_tls_out_take(t, buf, sizeof(buf))) > 0) {
            BIO_write(c->rbio, buf, (int)m);
            moved = 1;
        }
        if (!moved)
            break;
    }
    return rc;
}

START_TEST(test_ctx_errors)
{
    char err[512] = "";
    ck_assert_ptr_null(roost_tls_ctx_new(NULL, NULL, err, sizeof(err)));
    ck_assert_msg(strncmp(err, "tls.cert:", 9) == 0, "%s", err);
    ck_assert_ptr_null(roost_tls_ctx_new("/nonexistent/c.pem", NULL, err, sizeof(err)));
    ck_assert_msg(strncmp(err, "tls.cert:", 9) == 0 && strstr(err, "/nonexistent/c.pem"),
                  "%s", err);
    /* The key is not in the cert file. */
    ck_assert_ptr_null(roost_tls_ctx_new(cert_path, NULL, err, sizeof(err)));
    ck_assert_msg(strncmp(err, "tls.key:", 8) == 0, "%s", err);
    /* A key that does not belong to the certificate. */
    ck_assert_ptr_null(roost_tls_ctx_new(cert_path, key2_path, err, sizeof(err)));
    ck_assert_msg(strncmp(err, "tls.key:", 8) == 0, "%s", err);
    SSL_CTX *ctx = roost_tls_ctx_new(cert_path, key_path, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_NO_COMPRESSION);
    ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_free(ctx);
}
END_TEST

static void exchange(int max_version, const char *want_version)
{
    char err[512];
    SSL_CTX *ctx = roost_tls_ctx_new(cert_path, key_path, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
    roost_tls_t *t = roost_tls_new(ctx);
    ck_assert_ptr_nonnull(t);
    /* The engine holds its own reference: the context may go now, as it
     * does on a SIGHUP reload. */
    SSL_CTX_free(ctx);
    ck_assert_int_eq(roost_tls_write(t, "early", 5), ROOST_EAGAIN);
    ck_assert_uint_eq(roost_tls_out_pending(t), 0);

    client_t c;
    client_init(&c, max_version);
    roost_buf_reset(&got);
    ck_assert_int_eq(pump(&c, t), 0);
    ck_assert(SSL_is_init_finished(c.ssl));
    ck_assert(roost_tls_established(t));
    ck_assert_str_eq(roost_tls_version(t), want_version);
    ck_assert_str_eq(SSL_get_version(c.ssl), want_version);

    /* Client to server, larger than one record. */
    static char big[40000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    ck_assert_int_eq(SSL_write(c.ssl, big, sizeof(big)), (int)sizeof(big));
    ck_assert_int_eq(pump(&c, t), 0);
    ck_assert_uint_eq(got.len, sizeof(big));
    ck_assert(memcmp(got.data, big, sizeof(big)) == 0);

    /* Server to client. */
    ck_assert_int_eq(roost_tls_write(t, "<proceed/>", 10), 0);
    ck_assert_uint_gt(roost_tls_out_pending(t), 10);
    pump(&c, t);
    char rbuf[64];
    ck_assert_int_eq(SSL_read(c.ssl, rbuf, sizeof(rbuf)), 10);
    ck_assert(memcmp(rbuf, "<proceed/>", 10) == 0);

    /* close_notify from the client is an orderly end. */
    SSL_shutdown(c.ssl);
    ck_assert_int_eq(pump(&c, t), ROOST_EIO);
    ck_assert(roost_tls_peer_closed(t));
    roost_tls_shutdown(t);
    client_free(&c);
    roost_tls_free(t);
}

START_TEST(test_tls13)
{
    exchange(0, "TLSv1.3");
}
END_TEST

START_TEST(test_tls12)
{
    exchange(TLS1_2_VERSION, "TLSv1.2");
}
END_TEST

START_TEST(test_tls11_refused)
{
    char err[512];
    SSL_CTX *ctx = roost_tls_ctx_new(cert_path, key_path, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
    roost_tls_t *t = roost_tls_new(ctx);
    client_t c;
    client_init(&c, TLS1_1_VERSION);
    ck_assert_int_eq(pump(&c, t), ROOST_EIO);
    ck_assert(!roost_tls_established(t));
    ck_assert(!roost_tls_peer_closed(t));
    ck_assert(!SSL_is_init_finished(c.ssl));
    client_free(&c);
    roost_tls_free(t);
    SSL_CTX_free(ctx);
}
END_TEST

START_TEST(test_garbage_refused)
{
    char err[512];
    SSL_CTX *ctx = roost_tls_ctx_new(cert_path, key_path, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
    roost_tls_t *t = roost_tls_new(ctx);
    const char *xml = "<?xml version='1.0'?><stream:stream to='localhost'>";
    ck_assert_int_eq(roost_tls_feed(t, xml, strlen(xml), on_plain, NULL), ROOST_EIO);
    ck_assert(!roost_tls_established(t));
    ck_assert_ptr_nonnull(roost_tls_error(t));
    roost_tls_free(t);
    roost_tls_free(NULL);
    SSL_CTX_free(ctx);
}
END_TEST

/* Both channel bindings, checked against what the client side derives:
 * the exporter from its own keying material (RFC 9266), the end point from
 * the certificate it received (RFC 5929 §4.1; ours is signed with SHA-256). */
static void channel_binding(int max_version)
{
    char err[512];
    unsigned char sb[ROOST_TLS_CB_MAX], cbuf[ROOST_TLS_CB_MAX];
    unsigned int n = 0;
    static const char label[] = "EXPORTER-Channel-Binding";

    SSL_CTX *ctx = roost_tls_ctx_new(cert_path, key_path, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
    roost_tls_t *t = roost_tls_new(ctx);
    ck_assert_ptr_nonnull(t);
    SSL_CTX_free(ctx);
    /* Nothing to bind to before the handshake. */
    ck_assert_int_eq(roost_tls_channel_binding(t, "tls-server-end-point", sb, sizeof(sb)),
                     ROOST_EINVAL);
    ck_assert_int_eq(roost_tls_channel_binding(t, "tls-exporter", sb, sizeof(sb)),
                     ROOST_EINVAL);

    client_t c;
    client_init(&c, max_version);
    ck_assert_int_eq(pump(&c, t), 0);
    ck_assert(roost_tls_established(t));

    X509 *peer = SSL_get1_peer_certificate(c.ssl);
    ck_assert_ptr_nonnull(peer);
    ck_assert_int_eq(X509_digest(peer, EVP_sha256(), cbuf, &n), 1);
    X509_free(peer);
    ck_assert_int_eq(roost_tls_channel_binding(t, "tls-server-end-point", sb, sizeof(sb)), 32);
    ck_assert_uint_eq(n, 32);
    ck_assert(memcmp(sb, cbuf, 32) == 0);
    ck_assert_int_eq(roost_tls_channel_binding(t, "tls-server-end-point", sb, 31), ROOST_ELIMIT);

    int rc = roost_tls_channel_binding(t, "tls-exporter", sb, sizeof(sb));
    if (max_version == 0) {
        ck_assert_int_eq(rc, 32);
        ck_assert_int_eq(SSL_export_keying_material(c.ssl, cbuf, 32, label, sizeof(label) - 1,
                                                    (const unsigned char *)"", 0, 1), 1);
        ck_assert(memcmp(sb, cbuf, 32) == 0);
        /* Stable: the same session gives the same bytes again. */
        ck_assert_int_eq(roost_tls_channel_binding(t, "tls-exporter", cbuf, sizeof(cbuf)), 32);
        ck_assert(memcmp(sb, cbuf, 32) == 0);
        ck_assert_int_eq(roost_tls_channel_binding(t, "tls-exporter", sb, 16), ROOST_ELIMIT);
    } else {
        /* TLS 1.2: tls-exporter is not offered. */
        ck_assert_int_eq(rc, ROOST_EINVAL);
    }
    ck_assert_int_eq(roost_tls_channel_binding(t, "tls-unique", sb, sizeof(sb)), ROOST_EINVAL);
    ck_assert_int_eq(roost_tls_channel_binding(t, NULL, sb, sizeof(sb)), ROOST_EINVAL);
    client_free(&c);
    roost_tls_free(t);
}

START_TEST(test_cb_tls13)
{
    channel_binding(0);
}
END_TEST

START_TEST(test_cb_tls12)
{
    channel_binding(TLS1_2_VERSION);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_ctx_errors);
    tcase_add_test(tc, test_tls13);
    tcase_add_test(tc, test_tls12);
    tcase_add_test(tc, test_tls11_refused);
    tcase_add_test(tc, test_garbage_refused);
    tcase_add_test(tc, test_cb_tls13);
    tcase_add_test(tc, test_cb_tls12);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    roost_buf_free(&got);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
