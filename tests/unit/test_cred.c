/* Unit tests for store/cred.c: the RFC 5802 and RFC 7677 SCRAM vectors
 * (keys and a client/server exchange computed from them), SASLprep, password
 * checks and fresh salts. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "store/cred.h"
#include "store/error.h"

static void to_hex(const uint8_t *p, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = '\0';
}

static size_t unb64(const char *in, uint8_t *out)
{
    size_t n = strlen(in), pad = 0;
    int got;

    while (pad < n && in[n - 1 - pad] == '=')
        pad++;
    got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    ck_assert_int_ge(got, 0);
    return (size_t)got - pad;
}

static void b64(const uint8_t *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

typedef struct {
    roost_hash_t hash;
    const char *salt_b64;
    const char *salted_hex;
    const char *stored_hex;
    const char *server_hex;
    const char *auth_message;
    const char *proof_b64;      /* the client's p= */
    const char *server_sig_b64; /* the server's v= */
} vector_t;

/* RFC 5802 §5 */
static const vector_t rfc5802 = {
    ROOST_HASH_SHA1, "QSXCR+Q6sek8bf92",
    "1d96ee3a529b5a5f9e47c01f229a2cb8a6e15f7d",
    "e9d94660c39d65c38fbad91c358f14da0eef2bd6",
    "0fe09258b3ac852ba502cc62ba903eaacdbf7d31",
    "n=user,r=fyko+d2lbbFgONRv9qkxdawL,"
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,"
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

/* RFC 7677 §3 */
static const vector_t rfc7677 = {
    ROOST_HASH_SHA256, "W22ZaJ0SNY7soEsUEjb6gQ==",
    "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d",
    "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6",
    "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5",
    "n=user,r=rOprNGfwEbeRWgbNEkqO,"
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

/* Derives the keys from "pencil" and plays both sides of the RFC exchange:
 * the client's proof and the server's signature must come out as in the
 * RFC, and the server-side check (H(proof XOR ClientSignature) ==
 * StoredKey) must hold. */
static void check_vector(const vector_t *v)
{
    const EVP_MD *md = v->hash == ROOST_HASH_SHA1 ? EVP_sha1() : EVP_sha256();
    size_t i, hlen = roost_hash_len(v->hash);
    uint8_t salt[64], salted[32], ckey[32], csig[32], proof[32], h[32], ssig[32];
    char hex[65], text[64];
    roost_scram_cred_t cred;
    unsigned int n;
    size_t salt_len = unb64(v->salt_b64, salt);
    const uint8_t *am = (const uint8_t *)v->auth_message;
    size_t amlen = strlen(v->auth_message);

    ck_assert_int_eq(roost_cred_salted_password(v->hash, "pencil", 6, salt, salt_len,
                                                4096, salted), 0);
    to_hex(salted, hlen, hex);
    ck_assert_str_eq(hex, v->salted_hex);

    roost_cred_from_salted(v->hash, salted, salt, salt_len, 4096, &cred);
    ck_assert_int_eq(cred.hash, v->hash);
    ck_assert_uint_eq(cred.iterations, 4096);
    ck_assert_uint_eq(cred.salt_len, salt_len);
    ck_assert_mem_eq(cred.salt, salt, salt_len);
    to_hex(cred.stored_key, hlen, hex);
    ck_assert_str_eq(hex, v->stored_hex);
    to_hex(cred.server_key, hlen, hex);
    ck_assert_str_eq(hex, v->server_hex);

    /* Client side. */
    ck_assert_ptr_nonnull(HMAC(md, salted, (int)hlen, (const uint8_t *)"Client Key", 10, ckey, &n));
    ck_assert_ptr_nonnull(HMAC(md, cred.stored_key, (int)hlen, am, amlen, csig, &n));
    for (i = 0; i < hlen; i++)
        proof[i] = ckey[i] ^ csig[i];
    b64(proof, hlen, text);
    ck_assert_str_eq(text, v->proof_b64);

    /* Server side, from the stored keys only. */
    for (i = 0; i < hlen; i++)
        ckey[i] = proof[i] ^ csig[i];
    ck_assert_int_eq(EVP_Digest(ckey, hlen, h, &n, md, NULL), 1);
    ck_assert(roost_cred_ct_equal(h, cred.stored_key, hlen));
    ck_assert_ptr_nonnull(HMAC(md, cred.server_key, (int)hlen, am, amlen, ssig, &n));
    b64(ssig, hlen, text);
    ck_assert_str_eq(text, v->server_sig_b64);

    ck_assert_int_eq(roost_cred_check_password(&cred, "pencil", 6), 1);
    ck_assert_int_eq(roost_cred_check_password(&cred, "pencil ", 7), 0);
}

START_TEST(rfc5802_sha1)
{
    check_vector(&rfc5802);
}
END_TEST

START_TEST(rfc7677_sha256)
{
    check_vector(&rfc7677);
}
END_TEST

START_TEST(hash_len)
{
    ck_assert_uint_eq(roost_hash_len(ROOST_HASH_SHA1), 20);
    ck_assert_uint_eq(roost_hash_len(ROOST_HASH_SHA256), 32);
    ck_assert_uint_eq(roost_hash_len((roost_hash_t)5), 0);
}
END_TEST

static void prep_ok(const char *in, size_t len, const char *want)
{
    char *out = NULL;

    ck_assert_int_eq(roost_cred_saslprep(in, len, &out), 0);
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, want);
    free(out);
}

static void prep_bad(const char *in, size_t len)
{
    char *out = (char *)"x";

    ck_assert_int_eq(roost_cred_saslprep(in, len, &out), ROOST_EINVAL);
    ck_assert_ptr_null(out);
}

/* RFC 4013 §3 examples plus our own bounds. */
START_TEST(saslprep)
{
    prep_ok("I\xC2\xADX", 4, "IX");               /* SOFT HYPHEN mapped to nothing */
    prep_ok("user", 4, "user");
    prep_ok("USER", 4, "USER");                   /* case preserved */
    prep_ok("\xC2\xAA", 2, "a");                  /* NFKC */
    prep_ok("\xE2\x85\xA8", 3, "IX");             /* ROMAN NUMERAL NINE */
    prep_ok("a\xC2\xA0" "b", 4, "a b");           /* non-ASCII space to SPACE */
    prep_ok("", 0, "");
    prep_ok("pencilXYZ", 6, "pencil");            /* only len bytes are read */
    prep_bad("\x07", 1);                          /* control character */
    prep_bad("\xD8\xA7" "1", 3);                  /* RFC 4013: bidi rule */
    prep_bad("\xff\xfe", 2);                      /* not UTF-8 */
    prep_bad("ab\0cd", 5);                        /* embedded NUL */
}
END_TEST

START_TEST(saslprep_bounds)
{
    char big[1100], *out = NULL;

    memset(big, 'a', sizeof(big));
    ck_assert_int_eq(roost_cred_saslprep(big, 1024, &out), 0);
    ck_assert_uint_eq(strlen(out), 1024);
    free(out);
    prep_bad(big, 1025);
}
END_TEST

START_TEST(check_password)
{
    roost_scram_cred_t cred;

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4096, &cred), 0);
    ck_assert_int_eq(cred.hash, ROOST_HASH_SHA256);
    ck_assert_uint_eq(cred.iterations, 4096);
    ck_assert_uint_eq(cred.salt_len, ROOST_CRED_SALT_LEN);
    ck_assert_int_eq(roost_cred_check_password(&cred, "pencil", 6), 1);
    ck_assert_int_eq(roost_cred_check_password(&cred, "Pencil", 6), 0);
    ck_assert_int_eq(roost_cred_check_password(&cred, "pencil2", 7), 0);
    ck_assert_int_eq(roost_cred_check_password(&cred, "", 0), 0);
    /* SASLprep makes these the same password. */
    ck_assert_int_eq(roost_cred_check_password(&cred, "pen\xC2\xAD" "cil", 8), 1);
    /* A prohibited character never matches. */
    ck_assert_int_eq(roost_cred_check_password(&cred, "pencil\x07", 7), 0);
    /* A damaged record never matches. */
    cred.salt_len = ROOST_CRED_SALT_MAX + 1;
    ck_assert_int_eq(roost_cred_check_password(&cred, "pencil", 6), 0);
}
END_TEST

START_TEST(check_password_sha1)
{
    roost_scram_cred_t cred;

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA1, "s3cr\xC3\xA9t", 7, 5000, &cred), 0);
    ck_assert_uint_eq(cred.iterations, 5000);
    ck_assert_int_eq(roost_cred_check_password(&cred, "s3cr\xC3\xA9t", 7), 1);
    ck_assert_int_eq(roost_cred_check_password(&cred, "s3cret", 6), 0);
}
END_TEST

START_TEST(new_salts_differ)
{
    roost_scram_cred_t a, b;

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4096, &a), 0);
    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4096, &b), 0);
    ck_assert_uint_eq(a.salt_len, b.salt_len);
    ck_assert(memcmp(a.salt, b.salt, a.salt_len) != 0);
    ck_assert(memcmp(a.stored_key, b.stored_key, 32) != 0);
    ck_assert(memcmp(a.server_key, b.server_key, 32) != 0);
    /* Each still checks its own password. */
    ck_assert_int_eq(roost_cred_check_password(&b, "pencil", 6), 1);
}
END_TEST

START_TEST(new_rejects)
{
    roost_scram_cred_t c;
    uint8_t salt[4] = { 1, 2, 3, 4 }, out[32];

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4095, &c), ROOST_EINVAL);
    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 0, &c), ROOST_EINVAL);
    ck_assert_int_eq(roost_cred_new((roost_hash_t)7, "pencil", 6, 4096, &c), ROOST_EINVAL);
    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA1, "bad\x07", 4, 4096, &c), ROOST_EINVAL);
    /* Lower-level: small counts are fine (test vectors), zero is not. */
    ck_assert_int_eq(roost_cred_salted_password(ROOST_HASH_SHA1, "p", 1, salt, 4, 1, out), 0);
    ck_assert_int_eq(roost_cred_salted_password(ROOST_HASH_SHA1, "p", 1, salt, 4, 0, out),
                     ROOST_EINVAL);
    ck_assert_int_eq(roost_cred_salted_password(ROOST_HASH_SHA1, "p", 1, salt, 0, 1, out),
                     ROOST_EINVAL);
}
END_TEST

/* RFC 6070 test case 1: PBKDF2-HMAC-SHA1("password", "salt", 1). */
START_TEST(hi_one_iteration)
{
    uint8_t out[20];
    char hex[41];

    ck_assert_int_eq(roost_cred_salted_password(ROOST_HASH_SHA1, "password", 8,
                                                (const uint8_t *)"salt", 4, 1, out), 0);
    to_hex(out, 20, hex);
    ck_assert_str_eq(hex, "0c60c80f961f0e71f3a9b524af6012062fe037a6");
}
END_TEST

START_TEST(ct_equal)
{
    uint8_t a[4] = { 1, 2, 3, 4 }, b[4] = { 1, 2, 3, 4 }, c[4] = { 1, 2, 3, 5 };

    ck_assert_int_eq(roost_cred_ct_equal(a, b, 4), 1);
    ck_assert_int_eq(roost_cred_ct_equal(a, c, 4), 0);
    ck_assert_int_eq(roost_cred_ct_equal(a, c, 3), 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cred");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, rfc5802_sha1);
    tcase_add_test(tc, rfc7677_sha256);
    tcase_add_test(tc, hash_len);
    tcase_add_test(tc, saslprep);
    tcase_add_test(tc, saslprep_bounds);
    tcase_add_test(tc, check_password);
    tcase_add_test(tc, check_password_sha1);
    tcase_add_test(tc, new_salts_differ);
    tcase_add_test(tc, new_rejects);
    tcase_add_test(tc, hi_one_iteration);
    tcase_add_test(tc, ct_equal);
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
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
