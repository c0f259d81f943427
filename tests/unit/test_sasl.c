/* Unit tests for node/sasl.c: the RFC 5802 / RFC 7677 SCRAM exchanges byte
 * for byte, exchanges against a small test client, PLAIN, and every failure
 * condition the state machine can report. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "node/sasl.h"
#include "node/sasl_test.h"
#include "store/cred.h"
#include "store/error.h"

#define DOMAIN "example.com"

/* A few rotating static buffers keep the tests free of frees. */
static char *scratch(void)
{
    static char bufs[8][12000];
    static int next;

    next = (next + 1) % 8;
    return bufs[next];
}

static const char *enc(const void *p, size_t n)
{
    char *out = scratch();

    ck_assert_uint_lt(n, 8000);
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

static const char *encs(const char *s)
{
    return enc(s, strlen(s));
}

static const char *dec(const char *b64)
{
    char *out = scratch();
    size_t n = strlen(b64), pad = 0;
    int got;

    while (pad < n && b64[n - 1 - pad] == '=')
        pad++;
    got = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)b64, (int)n);
    ck_assert_int_ge(got, 0);
    out[got - (int)pad] = '\0';
    return out;
}

static void cred_from(roost_hash_t hash, const char *password, const char *salt_b64,
                      uint32_t iter, roost_scram_cred_t *cred)
{
    uint8_t salt[64], salted[32];
    size_t n = strlen(salt_b64), pad = 0;
    int got;

    while (pad < n && salt_b64[n - 1 - pad] == '=')
        pad++;
    got = EVP_DecodeBlock(salt, (const unsigned char *)salt_b64, (int)n);
    ck_assert_int_gt(got, 0);
    ck_assert_int_eq(roost_cred_salted_password(hash, password, strlen(password), salt,
                                                (size_t)got - pad, iter, salted), 0);
    roost_cred_from_salted(hash, salted, salt, (size_t)got - pad, iter, cred);
}

static void expect_fail(roost_sasl_t *s, roost_sasl_result_t r, const char *cond)
{
    ck_assert_int_eq(r, ROOST_SASL_FAILURE);
    ck_assert_str_eq(roost_sasl_condition(s), cond);
}

/* ---- RFC exchanges ------------------------------------------------------ */

static void rfc_exchange(roost_sasl_mech_t mech, const char *snonce,
                         const char *client_first, const char *server_first,
                         const char *client_final, const char *server_final,
                         const roost_scram_cred_t *cred)
{
    roost_sasl_t *s = roost_sasl_new(mech, DOMAIN);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(roost_sasl_test_set_nonce(s, snonce), 0);
    ck_assert_int_eq(roost_sasl_start(s, encs(client_first)), ROOST_SASL_NEED_CRED);
    ck_assert_str_eq(roost_sasl_username(s), "user");
    ck_assert_int_eq(roost_sasl_cred_hash(s), cred->hash);
    ck_assert_int_eq(roost_sasl_set_cred(s, cred), ROOST_SASL_CHALLENGE);
    ck_assert_str_eq(dec(roost_sasl_out(s)), server_first);
    ck_assert_int_eq(roost_sasl_step(s, encs(client_final)), ROOST_SASL_SUCCESS);
    ck_assert_str_eq(dec(roost_sasl_out(s)), server_final);
    /* Nothing is accepted after success. */
    expect_fail(s, roost_sasl_step(s, encs(client_final)), "malformed-request");
    roost_sasl_free(s);
}

START_TEST(rfc5802_sha1)
{
    roost_scram_cred_t cred;

    cred_from(ROOST_HASH_SHA1, "pencil", "QSXCR+Q6sek8bf92", 4096, &cred);
    rfc_exchange(ROOST_SASL_SCRAM_SHA1, "3rfcNHYJY1ZVvWVs7j",
                 "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
                 "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                 "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                 "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", &cred);
}
END_TEST

START_TEST(rfc7677_sha256)
{
    roost_scram_cred_t cred;

    cred_from(ROOST_HASH_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096, &cred);
    rfc_exchange(ROOST_SASL_SCRAM_SHA256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                 "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                 "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                 "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                 "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                 "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                 "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", &cred);
}
END_TEST

/* ---- a small SCRAM client ----------------------------------------------- */

typedef enum {
    TWEAK_NONE,
    TWEAK_NONCE,        /* r= differs from the server's nonce */
    TWEAK_CBIND,        /* c= encodes a different gs2 header */
    TWEAK_CBIND_B64,    /* c= is not base64 */
    TWEAK_PROOF,        /* one proof bit flipped */
    TWEAK_PROOF_LEN,    /* proof one byte short */
} tweak_t;

typedef struct {
    roost_sasl_t *s;
    roost_sasl_result_t r;      /* result of the final step */
    char server_first[512];
    char expect_v[128];         /* the v= a correct server sends */
} run_t;

/* Channel binding for the next scram_run: the server side's offer (type
 * NULL: none) and the data the client appends to the gs2 header in c=
 * (NULL: nothing). Reset by each test that sets it. */
static struct {
    const char *type;
    const uint8_t *server, *client;
    size_t slen, clen;
} run_cb;

/* XEP-0474 offer for the next scram_run (mechs NULL: none). */
static struct {
    const char *const *mechs, *const *cbs;
    size_t n_mechs, n_cbs;
} run_adv;

/* Plays a SCRAM client with password pw against a fresh server holding
 * cred (NULL: unknown user). gs2 and bare form the client-first message;
 * bare's nonce is read back from the server-first. The caller frees r->s. */
static void scram_run(run_t *r, roost_sasl_mech_t mech, const char *gs2, const char *bare,
                      const char *pw, const roost_scram_cred_t *cred, tweak_t tweak)
{
    roost_hash_t hash = mech == ROOST_SASL_SCRAM_SHA1 || mech == ROOST_SASL_SCRAM_SHA1_PLUS
                            ? ROOST_HASH_SHA1 : ROOST_HASH_SHA256;
    const EVP_MD *md = hash == ROOST_HASH_SHA1 ? EVP_sha1() : EVP_sha256();
    size_t i, hlen = roost_hash_len(hash);
    char first[512], nonce[512], salt64[128], final[1024], am[4096], cb[400];
    uint8_t salt[64], salted[32], ckey[32], skey[32], svkey[32], csig[32], proof[32], ssig[32];
    unsigned int n;
    unsigned iter;
    int got;
    const char *sf;

    snprintf(first, sizeof(first), "%s%s", gs2, bare);
    r->s = roost_sasl_new(mech, DOMAIN);
    ck_assert_ptr_nonnull(r->s);
    if (run_cb.type != NULL)
        ck_assert_int_eq(roost_sasl_set_channel_binding(r->s, run_cb.type, run_cb.server,
                                                        run_cb.slen), 0);
    if (run_adv.mechs != NULL)
        ck_assert_int_eq(roost_sasl_set_advertised(r->s, run_adv.mechs, run_adv.n_mechs,
                                                   run_adv.cbs, run_adv.n_cbs), 0);
    ck_assert_int_eq(roost_sasl_start(r->s, encs(first)), ROOST_SASL_NEED_CRED);
    ck_assert_int_eq(roost_sasl_set_cred(r->s, cred), ROOST_SASL_CHALLENGE);
    sf = dec(roost_sasl_out(r->s));
    snprintf(r->server_first, sizeof(r->server_first), "%s", sf);
    ck_assert_int_eq(sscanf(sf, "r=%511[^,],s=%127[^,],i=%u", nonce, salt64, &iter), 3);

    got = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
    ck_assert_int_gt(got, 0);
    got -= (int)(strlen(salt64) - strcspn(salt64, "="));
    ck_assert_int_eq(roost_cred_salted_password(hash, pw, strlen(pw), salt, (size_t)got,
                                                iter, salted), 0);
    HMAC(md, salted, (int)hlen, (const uint8_t *)"Client Key", 10, ckey, &n);
    HMAC(md, salted, (int)hlen, (const uint8_t *)"Server Key", 10, svkey, &n);
    EVP_Digest(ckey, hlen, skey, &n, md, NULL);

    if (tweak == TWEAK_NONCE)
        nonce[strlen(nonce) - 1] ^= 1;
    if (tweak == TWEAK_CBIND)
        snprintf(cb, sizeof(cb), "%s", encs("y,,"));
    else if (tweak == TWEAK_CBIND_B64)
        snprintf(cb, sizeof(cb), "biw");
    else if (run_cb.client != NULL) {
        uint8_t in[256];

        ck_assert_uint_lt(strlen(gs2) + run_cb.clen, sizeof(in));
        memcpy(in, gs2, strlen(gs2));
        memcpy(in + strlen(gs2), run_cb.client, run_cb.clen);
        snprintf(cb, sizeof(cb), "%s", enc(in, strlen(gs2) + run_cb.clen));
    } else
        snprintf(cb, sizeof(cb), "%s", encs(gs2));
    snprintf(final, sizeof(final), "c=%s,r=%s", cb, nonce);
    snprintf(am, sizeof(am), "%s,%s,%s", bare, sf, final);
    HMAC(md, skey, (int)hlen, (const uint8_t *)am, strlen(am), csig, &n);
    for (i = 0; i < hlen; i++)
        proof[i] = ckey[i] ^ csig[i];
    if (tweak == TWEAK_PROOF)
        proof[3] ^= 0x10;
    HMAC(md, svkey, (int)hlen, (const uint8_t *)am, strlen(am), ssig, &n);
    snprintf(r->expect_v, sizeof(r->expect_v), "v=%s", enc(ssig, hlen));
    snprintf(final + strlen(final), sizeof(final) - strlen(final), ",p=%s",
             enc(proof, tweak == TWEAK_PROOF_LEN ? hlen - 1 : hlen));
    r->r = roost_sasl_step(r->s, encs(final));
}

START_TEST(scram_roundtrip)
{
    static const roost_sasl_mech_t mechs[] = { ROOST_SASL_SCRAM_SHA1, ROOST_SASL_SCRAM_SHA256 };
    roost_sasl_mech_t mech = mechs[_i];
    roost_hash_t hash = mech == ROOST_SASL_SCRAM_SHA1 ? ROOST_HASH_SHA1 : ROOST_HASH_SHA256;
    roost_scram_cred_t cred;
    run_t r, r2;
    const char *cn = "Ab0+/xyz~!";

    ck_assert_int_eq(roost_cred_new(hash, "s3cr\xC3\xA9t", 7, 4096, &cred), 0);
    scram_run(&r, mech, "n,,", "n=Juliet,r=Ab0+/xyz~!", "s3cr\xC3\xA9t", &cred, TWEAK_NONE);
    ck_assert_int_eq(r.r, ROOST_SASL_SUCCESS);
    ck_assert_str_eq(dec(roost_sasl_out(r.s)), r.expect_v);
    ck_assert_str_eq(roost_sasl_username(r.s), "juliet");
    /* Server nonce = client nonce + 24 random bytes in base64. */
    ck_assert_int_eq(strncmp(r.server_first + 2, cn, strlen(cn)), 0);
    ck_assert_uint_eq(strcspn(r.server_first + 2, ","), strlen(cn) + 32);

    /* "y,," is fine while we advertise no -PLUS mechanism; nonces differ. */
    scram_run(&r2, mech, "y,,", "n=juliet,r=Ab0+/xyz~!", "s3cr\xC3\xA9t", &cred, TWEAK_NONE);
    ck_assert_int_eq(r2.r, ROOST_SASL_SUCCESS);
    ck_assert_str_ne(r.server_first, r2.server_first);
    roost_sasl_free(r.s);
    roost_sasl_free(r2.s);
}
END_TEST

START_TEST(scram_failures)
{
    static const struct {
        tweak_t tweak;
        const char *pw;
        const char *cond;
    } cases[] = {
        { TWEAK_NONE, "wrong", "not-authorized" },
        { TWEAK_PROOF, "pencil", "not-authorized" },
        { TWEAK_NONCE, "pencil", "not-authorized" },
        { TWEAK_CBIND, "pencil", "not-authorized" },
        { TWEAK_CBIND_B64, "pencil", "malformed-request" },
        { TWEAK_PROOF_LEN, "pencil", "malformed-request" },
    };
    roost_scram_cred_t cred;
    run_t r;
    size_t i;

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4096, &cred), 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        scram_run(&r, ROOST_SASL_SCRAM_SHA256, "n,,", "n=user,r=abcdef", cases[i].pw, &cred,
                  cases[i].tweak);
        expect_fail(r.s, r.r, cases[i].cond);
        /* Failure is final. */
        expect_fail(r.s, roost_sasl_step(r.s, encs("c=biws")), "malformed-request");
        roost_sasl_free(r.s);
    }
}
END_TEST

/* An unknown user gets a plausible challenge (stable fake salt, default
 * iterations) and fails only at the proof. */
START_TEST(scram_unknown_user)
{
    run_t a, b, c;
    char sa[128], sb[128], sc[128];

    scram_run(&a, ROOST_SASL_SCRAM_SHA1, "n,,", "n=ghost,r=n1", "pencil", NULL, TWEAK_NONE);
    expect_fail(a.s, a.r, "not-authorized");
    scram_run(&b, ROOST_SASL_SCRAM_SHA1, "n,,", "n=ghost,r=n2", "x", NULL, TWEAK_NONE);
    scram_run(&c, ROOST_SASL_SCRAM_SHA1, "n,,", "n=phantom,r=n3", "x", NULL, TWEAK_NONE);
    expect_fail(c.s, c.r, "not-authorized");
    ck_assert_int_eq(sscanf(strstr(a.server_first, ",s="), ",s=%127s", sa), 1);
    ck_assert_int_eq(sscanf(strstr(b.server_first, ",s="), ",s=%127s", sb), 1);
    ck_assert_int_eq(sscanf(strstr(c.server_first, ",s="), ",s=%127s", sc), 1);
    ck_assert_str_eq(sa, sb);
    ck_assert_str_ne(sa, sc);
    ck_assert_ptr_nonnull(strstr(a.server_first, ",i=4096"));
    roost_sasl_free(a.s);
    roost_sasl_free(b.s);
    roost_sasl_free(c.s);
}
END_TEST

START_TEST(scram_authzid)
{
    roost_scram_cred_t cred;
    roost_sasl_t *s;
    run_t r;

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA1, "pencil", 6, 4096, &cred), 0);
    /* The account's own bare JID, also after preparation, is accepted. */
    scram_run(&r, ROOST_SASL_SCRAM_SHA1, "n,a=user@example.com,", "n=user,r=abc", "pencil",
              &cred, TWEAK_NONE);
    ck_assert_int_eq(r.r, ROOST_SASL_SUCCESS);
    roost_sasl_free(r.s);
    scram_run(&r, ROOST_SASL_SCRAM_SHA1, "n,a=USER@Example.COM,", "n=user,r=abc", "pencil",
              &cred, TWEAK_NONE);
    ck_assert_int_eq(r.r, ROOST_SASL_SUCCESS);
    roost_sasl_free(r.s);

    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA1, DOMAIN);
    expect_fail(s, roost_sasl_start(s, encs("n,a=other@example.com,n=user,r=abc")),
                "invalid-authzid");
    roost_sasl_free(s);
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA1, DOMAIN);
    expect_fail(s, roost_sasl_start(s, encs("n,a=user@example.com/res,n=user,r=abc")),
                "invalid-authzid");
    roost_sasl_free(s);
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA1, DOMAIN);
    expect_fail(s, roost_sasl_start(s, encs("n,a=user@other.org,n=user,r=abc")),
                "invalid-authzid");
    roost_sasl_free(s);
    /* "=2C" decodes to ',', which makes it a different JID. */
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA1, DOMAIN);
    expect_fail(s, roost_sasl_start(s, encs("n,a=user=2C@example.com,n=user,r=abc")),
                "invalid-authzid");
    roost_sasl_free(s);
}
END_TEST

/* client-first messages the parser must refuse. */
START_TEST(scram_bad_first)
{
    static const struct {
        const char *msg;
        const char *cond;
    } cases[] = {
        { "p=tls-unique,,n=user,r=abc", "not-authorized" },
        { "x,,n=user,r=abc", "malformed-request" },
        { "n,n=user,r=abc", "malformed-request" },
        { "n,,m=ext,n=user,r=abc", "malformed-request" },
        { "n,,n=user", "malformed-request" },
        { "n,,n=user,", "malformed-request" },
        { "n,,n=user,r=", "malformed-request" },
        { "n,,r=abc,n=user", "malformed-request" },
        { "n,,n=,r=abc", "malformed-request" },
        { "n,,n=us=2Xer,r=abc", "malformed-request" },
        { "n,,n=us=er,r=abc", "malformed-request" },
        { "n,,n=user=,r=abc", "malformed-request" },
        { "n,,n=user=2,r=abc", "malformed-request" },
        { "n,,n=user,r=ab\x01" "c", "malformed-request" },
        { "n,,n=user,r=ab c", "malformed-request" },
        { "n,,n=user,r=abc,", "malformed-request" },
        { "n,,n=user,r=abc,1=x", "malformed-request" },
        { "n,a=user@example.com", "malformed-request" },
        { "n,,n=us@er,r=abc", "not-authorized" },       /* cannot be a localpart */
        { "n,,n=\xff,r=abc", "not-authorized" },
    };
    roost_sasl_t *s;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s = roost_sasl_new(ROOST_SASL_SCRAM_SHA256, DOMAIN);
        ck_assert_msg(roost_sasl_start(s, encs(cases[i].msg)) == ROOST_SASL_FAILURE,
                      "accepted %s", cases[i].msg);
        ck_assert_msg(strcmp(roost_sasl_condition(s), cases[i].cond) == 0, "%s: %s",
                      cases[i].msg, roost_sasl_condition(s));
        roost_sasl_free(s);
    }
    /* An embedded NUL is never part of a SCRAM message. */
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA256, DOMAIN);
    expect_fail(s, roost_sasl_start(s, enc("n,,n=user,r=a\0b", 15)), "malformed-request");
    roost_sasl_free(s);
}
END_TEST

START_TEST(scram_saslname_escapes)
{
    roost_sasl_t *s;

    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA256, DOMAIN);
    ck_assert_int_eq(roost_sasl_start(s, encs("n,,n=a=2Cb=3Dc,r=abc,x=ext")),
                     ROOST_SASL_NEED_CRED);
    ck_assert_str_eq(roost_sasl_username(s), "a,b=c");
    roost_sasl_free(s);
}
END_TEST

START_TEST(scram_wrong_hash_cred)
{
    roost_scram_cred_t cred;
    roost_sasl_t *s = roost_sasl_new(ROOST_SASL_SCRAM_SHA256, DOMAIN);

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA1, "pencil", 6, 4096, &cred), 0);
    ck_assert_int_eq(roost_sasl_start(s, encs("n,,n=user,r=abc")), ROOST_SASL_NEED_CRED);
    ck_assert_int_eq(roost_sasl_cred_hash(s), ROOST_HASH_SHA256);
    expect_fail(s, roost_sasl_set_cred(s, &cred), "temporary-auth-failure");
    roost_sasl_free(s);
}
END_TEST

/* <auth/> without initial response: empty challenge, then the response is
 * treated as the initial message. */
START_TEST(scram_no_initial_response)
{
    roost_scram_cred_t cred;
    roost_sasl_t *s = roost_sasl_new(ROOST_SASL_SCRAM_SHA1, DOMAIN);

    cred_from(ROOST_HASH_SHA1, "pencil", "QSXCR+Q6sek8bf92", 4096, &cred);
    ck_assert_int_eq(roost_sasl_test_set_nonce(s, "3rfcNHYJY1ZVvWVs7j"), 0);
    ck_assert_int_eq(roost_sasl_start(s, NULL), ROOST_SASL_CHALLENGE);
    ck_assert_str_eq(roost_sasl_out(s), "");
    ck_assert_int_eq(roost_sasl_step(s, encs("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")),
                     ROOST_SASL_NEED_CRED);
    ck_assert_int_eq(roost_sasl_set_cred(s, &cred), ROOST_SASL_CHALLENGE);
    ck_assert_int_eq(roost_sasl_step(s, encs("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                                             "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")),
                     ROOST_SASL_SUCCESS);
    ck_assert_str_eq(dec(roost_sasl_out(s)), "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    roost_sasl_free(s);
}
END_TEST

START_TEST(out_of_order)
{
    roost_scram_cred_t cred;
    roost_sasl_t *s;

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4096, &cred), 0);
    /* step() before start() */
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA256, DOMAIN);
    expect_fail(s, roost_sasl_step(s, encs("n,,n=user,r=abc")), "malformed-request");
    roost_sasl_free(s);
    /* step() while waiting for credentials */
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA256, DOMAIN);
    ck_assert_int_eq(roost_sasl_start(s, encs("n,,n=user,r=abc")), ROOST_SASL_NEED_CRED);
    expect_fail(s, roost_sasl_step(s, encs("c=biws")), "malformed-request");
    roost_sasl_free(s);
    /* set_cred() twice */
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA256, DOMAIN);
    ck_assert_int_eq(roost_sasl_start(s, encs("n,,n=user,r=abc")), ROOST_SASL_NEED_CRED);
    ck_assert_int_eq(roost_sasl_set_cred(s, &cred), ROOST_SASL_CHALLENGE);
    ck_assert_int_eq(roost_sasl_set_cred(s, &cred), ROOST_SASL_FAILURE);
    roost_sasl_free(s);
    /* start() twice */
    s = roost_sasl_new(ROOST_SASL_PLAIN, DOMAIN);
    ck_assert_int_eq(roost_sasl_start(s, NULL), ROOST_SASL_CHALLENGE);
    expect_fail(s, roost_sasl_start(s, NULL), "malformed-request");
    roost_sasl_free(s);
}
END_TEST

/* ---- PLAIN -------------------------------------------------------------- */

/* Runs PLAIN with message m[0..n) against cred; returns the last result. */
static roost_sasl_result_t plain(roost_sasl_t **sp, const char *m, size_t n,
                                 const roost_scram_cred_t *cred)
{
    roost_sasl_t *s = roost_sasl_new(ROOST_SASL_PLAIN, DOMAIN);
    roost_sasl_result_t r;

    ck_assert_ptr_nonnull(s);
    *sp = s;
    r = roost_sasl_start(s, enc(m, n));
    if (r != ROOST_SASL_NEED_CRED)
        return r;
    ck_assert_int_eq(roost_sasl_cred_hash(s), ROOST_HASH_SHA256);
    return roost_sasl_set_cred(s, cred);
}

/* PLAIN with m[0..n) against cred must fail with cond. */
static void plain_fail(const char *m, size_t n, const roost_scram_cred_t *cred,
                       const char *cond)
{
    roost_sasl_t *s = NULL;
    roost_sasl_result_t r = plain(&s, m, n, cred);

    expect_fail(s, r, cond);
    roost_sasl_free(s);
}

#define PLAIN_MSG(lit) (lit), sizeof(lit) - 1

START_TEST(plain_password)
{
    roost_scram_cred_t cred;
    roost_sasl_t *s;

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4096, &cred), 0);
    ck_assert_int_eq(plain(&s, PLAIN_MSG("\0user\0pencil"), &cred), ROOST_SASL_SUCCESS);
    ck_assert_str_eq(roost_sasl_out(s), "");
    ck_assert_str_eq(roost_sasl_username(s), "user");
    expect_fail(s, roost_sasl_step(s, "="), "malformed-request");
    roost_sasl_free(s);
    /* Username is nodeprep'd; password goes through SASLprep. */
    ck_assert_int_eq(plain(&s, PLAIN_MSG("\0USER\0pen\xC2\xAD" "cil"), &cred),
                     ROOST_SASL_SUCCESS);
    ck_assert_str_eq(roost_sasl_username(s), "user");
    roost_sasl_free(s);
    plain_fail(PLAIN_MSG("\0user\0pencil2"), &cred, "not-authorized");
    plain_fail(PLAIN_MSG("\0user\0Pencil"), &cred, "not-authorized");
    /* Unknown user. */
    plain_fail(PLAIN_MSG("\0ghost\0pencil"), NULL, "not-authorized");
}
END_TEST

START_TEST(plain_authzid)
{
    roost_scram_cred_t cred;
    roost_sasl_t *s;

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4096, &cred), 0);
    ck_assert_int_eq(plain(&s, PLAIN_MSG("user@example.com\0user\0pencil"), &cred),
                     ROOST_SASL_SUCCESS);
    roost_sasl_free(s);
    ck_assert_int_eq(plain(&s, PLAIN_MSG("User@EXAMPLE.com\0user\0pencil"), &cred),
                     ROOST_SASL_SUCCESS);
    roost_sasl_free(s);
    plain_fail(PLAIN_MSG("admin@example.com\0user\0pencil"), &cred, "invalid-authzid");
    plain_fail(PLAIN_MSG("user@example.com/r\0user\0pencil"), &cred, "invalid-authzid");
    plain_fail(PLAIN_MSG("user\0user\0pencil"), &cred, "invalid-authzid");
    plain_fail(PLAIN_MSG("@@\0user\0pencil"), &cred, "invalid-authzid");
}
END_TEST

START_TEST(plain_malformed)
{
    static const struct {
        const char *m;
        size_t n;
    } cases[] = {
        { PLAIN_MSG("userpencil") },
        { PLAIN_MSG("user\0pencil") },
        { PLAIN_MSG("\0user\0pencil\0") },
        { PLAIN_MSG("\0\0user\0pencil") },
        { PLAIN_MSG("\0\0pencil") },
        { PLAIN_MSG("\0user\0") },
        { PLAIN_MSG("\0") },
    };
    roost_sasl_t *s;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        plain_fail(cases[i].m, cases[i].n, NULL, "malformed-request");
    }
    /* "=" is an empty initial response, which PLAIN cannot use. */
    s = roost_sasl_new(ROOST_SASL_PLAIN, DOMAIN);
    expect_fail(s, roost_sasl_start(s, "="), "malformed-request");
    roost_sasl_free(s);
    /* An authcid that cannot be a localpart. */
    plain_fail(PLAIN_MSG("\0a/b\0pencil"), NULL, "not-authorized");
}
END_TEST

START_TEST(plain_no_initial_response)
{
    roost_scram_cred_t cred;
    roost_sasl_t *s = roost_sasl_new(ROOST_SASL_PLAIN, DOMAIN);

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4096, &cred), 0);
    ck_assert_int_eq(roost_sasl_start(s, ""), ROOST_SASL_CHALLENGE);
    ck_assert_str_eq(roost_sasl_out(s), "");
    ck_assert_int_eq(roost_sasl_step(s, enc("\0user\0pencil", 12)), ROOST_SASL_NEED_CRED);
    ck_assert_int_eq(roost_sasl_set_cred(s, &cred), ROOST_SASL_SUCCESS);
    roost_sasl_free(s);
}
END_TEST

/* ---- encoding and size limits -------------------------------------------- */

START_TEST(bad_base64)
{
    static const char *const cases[] = {
        "abc", "ab!d", "a===", "ab=c", "bixu LHVzZXI=", "bixuLHVzZXI=\n", "====",
        "bix=LHVz",
    };
    roost_sasl_mech_t mech;
    roost_sasl_t *s;
    size_t i;

    for (mech = ROOST_SASL_PLAIN; mech <= ROOST_SASL_SCRAM_SHA256; mech++) {
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            s = roost_sasl_new(mech, DOMAIN);
            ck_assert_msg(roost_sasl_start(s, cases[i]) == ROOST_SASL_FAILURE, "%s", cases[i]);
            ck_assert_str_eq(roost_sasl_condition(s), "incorrect-encoding");
            roost_sasl_free(s);
        }
    }
    /* Also in a later response. */
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA1, DOMAIN);
    ck_assert_int_eq(roost_sasl_start(s, encs("n,,n=user,r=abc")), ROOST_SASL_NEED_CRED);
    ck_assert_int_eq(roost_sasl_set_cred(s, NULL), ROOST_SASL_CHALLENGE);
    expect_fail(s, roost_sasl_step(s, "Yz1iaXdz*"), "incorrect-encoding");
    roost_sasl_free(s);
}
END_TEST

START_TEST(oversize)
{
    static char big[9000], msg[6000];
    roost_sasl_t *s;

    /* Too long to be a valid encoding of 4 KiB: refused before decoding. */
    memset(big, 'A', sizeof(big) - 1);
    s = roost_sasl_new(ROOST_SASL_PLAIN, DOMAIN);
    expect_fail(s, roost_sasl_start(s, big), "malformed-request");
    roost_sasl_free(s);
    /* Well-formed base64 of 4097 bytes. */
    memset(msg, 'a', sizeof(msg));
    memcpy(msg, "n,,n=user,r=", 12);
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA1, DOMAIN);
    expect_fail(s, roost_sasl_start(s, enc(msg, 4097)), "malformed-request");
    roost_sasl_free(s);
    /* A 4096-byte message passes the size check (and fails on its long nonce). */
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA1, DOMAIN);
    expect_fail(s, roost_sasl_start(s, enc(msg, 4096)), "malformed-request");
    roost_sasl_free(s);
    /* A long PLAIN password within bounds is merely wrong. */
    memset(msg, 'p', sizeof(msg));
    memcpy(msg, "\0user\0", 6);
    plain_fail(msg, 4096, NULL, "not-authorized");
}
END_TEST

START_TEST(names)
{
    ck_assert_int_eq(roost_sasl_mech_by_name("PLAIN"), ROOST_SASL_PLAIN);
    ck_assert_int_eq(roost_sasl_mech_by_name("SCRAM-SHA-1"), ROOST_SASL_SCRAM_SHA1);
    ck_assert_int_eq(roost_sasl_mech_by_name("SCRAM-SHA-256"), ROOST_SASL_SCRAM_SHA256);
    ck_assert_int_eq(roost_sasl_mech_by_name("scram-sha-1"), 0);
    ck_assert_int_eq(roost_sasl_mech_by_name("SCRAM-SHA-1-PLUS"), ROOST_SASL_SCRAM_SHA1_PLUS);
    ck_assert_int_eq(roost_sasl_mech_by_name("SCRAM-SHA-256-PLUS"), ROOST_SASL_SCRAM_SHA256_PLUS);
    ck_assert_int_eq(roost_sasl_mech_by_name("scram-sha-256-plus"), 0);
    ck_assert_str_eq(roost_sasl_mech_name(ROOST_SASL_SCRAM_SHA1_PLUS), "SCRAM-SHA-1-PLUS");
    ck_assert_int_eq(roost_sasl_mech_by_name("DIGEST-MD5"), 0);
    ck_assert_int_eq(roost_sasl_mech_by_name(NULL), 0);
    ck_assert_str_eq(roost_sasl_mech_name(ROOST_SASL_SCRAM_SHA256), "SCRAM-SHA-256");
    ck_assert_ptr_null(roost_sasl_mech_name(0));
    ck_assert_ptr_null(roost_sasl_new(0, DOMAIN));
    roost_sasl_free(NULL);
}
END_TEST

START_TEST(test_nonce_hook)
{
    roost_sasl_t *s = roost_sasl_new(ROOST_SASL_SCRAM_SHA1, DOMAIN);

    ck_assert_int_eq(roost_sasl_test_set_nonce(s, "a,b"), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_test_set_nonce(s, ""), ROOST_EINVAL);
    roost_sasl_free(s);
}
END_TEST

/* ---- channel binding (-PLUS) ------------------------------------------- */

static const uint8_t cb_exporter[32] = "0123456789abcdef0123456789ABCDEF";
static const uint8_t cb_endpoint[32] = "end-point hash of the cert......";

/* Offers both types the way c2s does under TLS 1.3. */
static roost_sasl_t *plus_server(roost_sasl_mech_t mech)
{
    roost_sasl_t *s = roost_sasl_new(mech, DOMAIN);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "tls-exporter", cb_exporter, 32), 0);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "tls-server-end-point", cb_endpoint,
                                                    32), 0);
    return s;
}

/* Each -PLUS mechanism with each type: c= = base64(gs2 header + data). */
START_TEST(plus_roundtrip)
{
    static const roost_sasl_mech_t mechs[] = { ROOST_SASL_SCRAM_SHA1_PLUS,
                                               ROOST_SASL_SCRAM_SHA256_PLUS };
    roost_sasl_mech_t mech = mechs[_i / 2];
    int exporter = _i % 2 == 0;
    roost_hash_t hash = mech == ROOST_SASL_SCRAM_SHA1_PLUS ? ROOST_HASH_SHA1 : ROOST_HASH_SHA256;
    roost_scram_cred_t cred;
    run_t r;

    ck_assert_int_eq(roost_cred_new(hash, "pencil", 6, 4096, &cred), 0);
    run_cb.type = exporter ? "tls-exporter" : "tls-server-end-point";
    run_cb.server = run_cb.client = exporter ? cb_exporter : cb_endpoint;
    run_cb.slen = run_cb.clen = 32;
    scram_run(&r, mech, exporter ? "p=tls-exporter,," : "p=tls-server-end-point,,",
              "n=user,r=fyko+d2lbbFgONRv9qkxdawL", "pencil", &cred, TWEAK_NONE);
    ck_assert_int_eq(r.r, ROOST_SASL_SUCCESS);
    ck_assert_str_eq(dec(roost_sasl_out(r.s)), r.expect_v);
    roost_sasl_free(r.s);

    /* With an authzid in the gs2 header too. */
    scram_run(&r, mech, exporter ? "p=tls-exporter,a=user@example.com,"
                                 : "p=tls-server-end-point,a=user@example.com,",
              "n=user,r=abc", "pencil", &cred, TWEAK_NONE);
    ck_assert_int_eq(r.r, ROOST_SASL_SUCCESS);
    roost_sasl_free(r.s);
    memset(&run_cb, 0, sizeof(run_cb));
}
END_TEST

/* The client's c= carries other data (a man in the middle terminating
 * TLS), the other type's data, or no data at all. */
START_TEST(plus_mismatch)
{
    static const uint8_t other[32] = "a different TLS session........";
    roost_scram_cred_t cred;
    run_t r;

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4096, &cred), 0);
    run_cb.type = "tls-exporter";
    run_cb.server = cb_exporter;
    run_cb.slen = 32;

    run_cb.client = other;
    run_cb.clen = 32;
    scram_run(&r, ROOST_SASL_SCRAM_SHA256_PLUS, "p=tls-exporter,,", "n=user,r=abc", "pencil",
              &cred, TWEAK_NONE);
    expect_fail(r.s, r.r, "not-authorized");
    roost_sasl_free(r.s);

    run_cb.client = cb_exporter;
    run_cb.clen = 31;
    scram_run(&r, ROOST_SASL_SCRAM_SHA256_PLUS, "p=tls-exporter,,", "n=user,r=abc", "pencil",
              &cred, TWEAK_NONE);
    expect_fail(r.s, r.r, "not-authorized");
    roost_sasl_free(r.s);

    run_cb.client = NULL;
    run_cb.clen = 0;
    scram_run(&r, ROOST_SASL_SCRAM_SHA256_PLUS, "p=tls-exporter,,", "n=user,r=abc", "pencil",
              &cred, TWEAK_NONE);
    expect_fail(r.s, r.r, "not-authorized");
    roost_sasl_free(r.s);

    /* c= claiming "n" while p= was sent. */
    run_cb.client = cb_exporter;
    run_cb.clen = 32;
    scram_run(&r, ROOST_SASL_SCRAM_SHA256_PLUS, "p=tls-exporter,,", "n=user,r=abc", "pencil",
              &cred, TWEAK_CBIND);
    expect_fail(r.s, r.r, "not-authorized");
    roost_sasl_free(r.s);
    memset(&run_cb, 0, sizeof(run_cb));
}
END_TEST

/* gs2 headers refused at the first message. */
START_TEST(plus_first_refused)
{
    static const struct {
        roost_sasl_mech_t mech;
        int offer;          /* server offers channel binding */
        const char *first;
        const char *cond;
    } cases[] = {
        /* A type we do not offer (tls-unique is undefined for TLS 1.3). */
        { ROOST_SASL_SCRAM_SHA256_PLUS, 1, "p=tls-unique,,n=user,r=abc", "not-authorized" },
        { ROOST_SASL_SCRAM_SHA256_PLUS, 1, "p=,,n=user,r=abc", "not-authorized" },
        { ROOST_SASL_SCRAM_SHA256_PLUS, 1, "p=tls exporter,,n=user,r=abc", "not-authorized" },
        { ROOST_SASL_SCRAM_SHA256_PLUS, 1, "p=tls-exporter", "malformed-request" },
        /* p= without TLS: nothing to bind to. */
        { ROOST_SASL_SCRAM_SHA256_PLUS, 0, "p=tls-exporter,,n=user,r=abc", "not-authorized" },
        { ROOST_SASL_SCRAM_SHA1_PLUS, 0, "p=tls-server-end-point,,n=user,r=abc",
          "not-authorized" },
        /* p= with a mechanism that does not bind. */
        { ROOST_SASL_SCRAM_SHA256, 1, "p=tls-exporter,,n=user,r=abc", "not-authorized" },
        /* A -PLUS mechanism that does not bind. */
        { ROOST_SASL_SCRAM_SHA256_PLUS, 1, "n,,n=user,r=abc", "malformed-request" },
        { ROOST_SASL_SCRAM_SHA1_PLUS, 1, "y,,n=user,r=abc", "malformed-request" },
        /* Downgrade: "y" while we offer channel binding (RFC 5802 §6). */
        { ROOST_SASL_SCRAM_SHA256, 1, "y,,n=user,r=abc", "not-authorized" },
        { ROOST_SASL_SCRAM_SHA1, 1, "y,a=user@example.com,n=user,r=abc", "not-authorized" },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        roost_sasl_t *s = cases[i].offer ? plus_server(cases[i].mech)
                                         : roost_sasl_new(cases[i].mech, DOMAIN);

        ck_assert_ptr_nonnull(s);
        expect_fail(s, roost_sasl_start(s, encs(cases[i].first)), cases[i].cond);
        roost_sasl_free(s);
    }
}
END_TEST

/* Under TLS a client without channel binding ("n") still logs in with the
 * plain mechanisms; "y" only passes when we offer no binding (no TLS). */
START_TEST(plus_n_flag_under_tls)
{
    roost_scram_cred_t cred;
    run_t r;

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pencil", 6, 4096, &cred), 0);
    run_cb.type = "tls-exporter";
    run_cb.server = cb_exporter;
    run_cb.slen = 32;
    scram_run(&r, ROOST_SASL_SCRAM_SHA256, "n,,", "n=user,r=abc", "pencil", &cred, TWEAK_NONE);
    ck_assert_int_eq(r.r, ROOST_SASL_SUCCESS);
    roost_sasl_free(r.s);
    memset(&run_cb, 0, sizeof(run_cb));
    scram_run(&r, ROOST_SASL_SCRAM_SHA256, "y,,", "n=user,r=abc", "pencil", &cred, TWEAK_NONE);
    ck_assert_int_eq(r.r, ROOST_SASL_SUCCESS);
    roost_sasl_free(r.s);
}
END_TEST

/* An unknown user's fake salt is the same with and without -PLUS, as a real
 * account's is: the mechanisms share the stored credentials. */
START_TEST(plus_unknown_user_salt)
{
    roost_sasl_t *a = roost_sasl_new(ROOST_SASL_SCRAM_SHA256, DOMAIN);
    roost_sasl_t *b = plus_server(ROOST_SASL_SCRAM_SHA256_PLUS);
    char sa[256], sb[256];

    ck_assert_int_eq(roost_sasl_start(a, encs("n,,n=nobody,r=abc")), ROOST_SASL_NEED_CRED);
    ck_assert_int_eq(roost_sasl_start(b, encs("p=tls-exporter,,n=nobody,r=abc")),
                     ROOST_SASL_NEED_CRED);
    ck_assert_int_eq(roost_sasl_set_cred(a, NULL), ROOST_SASL_CHALLENGE);
    ck_assert_int_eq(roost_sasl_set_cred(b, NULL), ROOST_SASL_CHALLENGE);
    ck_assert_int_eq(sscanf(dec(roost_sasl_out(a)), "r=%*[^,],%255s", sa), 1);
    ck_assert_int_eq(sscanf(dec(roost_sasl_out(b)), "r=%*[^,],%255s", sb), 1);
    ck_assert_str_eq(sa, sb);
    roost_sasl_free(a);
    roost_sasl_free(b);
}
END_TEST

START_TEST(plus_set_channel_binding_errors)
{
    static const uint8_t big[ROOST_SASL_CB_DATA_MAX + 1];
    roost_sasl_t *s = roost_sasl_new(ROOST_SASL_SCRAM_SHA256_PLUS, DOMAIN);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, NULL, big, 32), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "", big, 32), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "tls,exporter", big, 32), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "tls-exporter", NULL, 32), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "tls-exporter", big, 0), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "tls-exporter", big, sizeof(big)),
                     ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_set_channel_binding(
                         s, "a-name-longer-than-thirty-two-characters", big, 32), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "a", big, 32), 0);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "a", big, 32), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "b", big, 32), 0);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "c", big, 32), 0);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "d", big, 32), 0);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "e", big, 32), ROOST_EINVAL);
    roost_sasl_free(s);
    /* Too late once the exchange started. */
    s = roost_sasl_new(ROOST_SASL_SCRAM_SHA256_PLUS, DOMAIN);
    ck_assert_int_eq(roost_sasl_start(s, NULL), ROOST_SASL_CHALLENGE);
    ck_assert_int_eq(roost_sasl_set_channel_binding(s, "tls-exporter", big, 32), ROOST_EINVAL);
    roost_sasl_free(s);
}
END_TEST

/* ---- XEP-0474 downgrade protection ------------------------------------- */

START_TEST(ssdp_xep_example)
{
    /* XEP-0474 §6.3: SHA-1 of "SCRAM-SHA-1 0x1E SCRAM-SHA-1-PLUS 0x1F
     * tls-exporter 0x1E tls-server-end-point"; given unsorted here. */
    static const char *const mechs[] = { "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1" };
    static const char *const cbs[] = { "tls-server-end-point", "tls-exporter" };
    char out[64];

    ck_assert_int_eq(roost_sasl_ssdp_hash(ROOST_HASH_SHA1, mechs, 2, cbs, 2, out, sizeof(out)),
                     28);
    ck_assert_str_eq(out, "G6k/rBLDqgOhRRaCuuatSDFkJ08=");
}
END_TEST

START_TEST(ssdp_without_channel_binding)
{
    /* No XEP-0440 feature: no 0x1F, just the sorted mechanisms. */
    static const char *const mechs[] = { "SCRAM-SHA-256", "PLAIN", "SCRAM-SHA-1" };
    static const char s_want[] = "PLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-256";
    uint8_t md[32];
    unsigned int n;
    char out[64], want[64];

    EVP_Digest(s_want, strlen(s_want), md, &n, EVP_sha256(), NULL);
    EVP_EncodeBlock((unsigned char *)want, md, (int)n);
    ck_assert_int_eq(roost_sasl_ssdp_hash(ROOST_HASH_SHA256, mechs, 3, NULL, 0, out,
                                          sizeof(out)), 44);
    ck_assert_str_eq(out, want);
    /* A list with one mechanism stripped hashes differently. */
    ck_assert_int_eq(roost_sasl_ssdp_hash(ROOST_HASH_SHA256, mechs, 2, NULL, 0, out,
                                          sizeof(out)), 44);
    ck_assert_str_ne(out, want);
}
END_TEST

START_TEST(ssdp_in_server_first)
{
    static const char *const mechs[] = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS",
                                         "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN" };
    static const char *const cbs[] = { "tls-exporter", "tls-server-end-point" };
    static const uint8_t cbdata[32] = { 7, 7, 7 };
    roost_scram_cred_t cred;
    run_t r;
    char want[64], tail[80];

    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA256, "pw", 2, 4096, &cred), 0);
    ck_assert_int_eq(roost_sasl_ssdp_hash(ROOST_HASH_SHA256, mechs, 5, cbs, 2, want,
                                          sizeof(want)), 44);
    snprintf(tail, sizeof(tail), ",h=%s", want);
    run_adv.mechs = mechs;
    run_adv.n_mechs = 5;
    run_adv.cbs = cbs;
    run_adv.n_cbs = 2;
    run_cb.type = "tls-exporter";
    run_cb.server = run_cb.client = cbdata;
    run_cb.slen = run_cb.clen = sizeof(cbdata);
    scram_run(&r, ROOST_SASL_SCRAM_SHA256_PLUS, "p=tls-exporter,,", "n=juliet,r=abcdef", "pw",
              &cred, TWEAK_NONE);
    /* h= is the last attribute, and the proof over it verifies. */
    ck_assert_uint_gt(strlen(r.server_first), strlen(tail));
    ck_assert_str_eq(r.server_first + strlen(r.server_first) - strlen(tail), tail);
    ck_assert_int_eq(r.r, ROOST_SASL_SUCCESS);
    ck_assert_str_eq(dec(roost_sasl_out(r.s)), r.expect_v);
    roost_sasl_free(r.s);
    /* The same through SCRAM-SHA-1 hashes with SHA-1. */
    ck_assert_int_eq(roost_cred_new(ROOST_HASH_SHA1, "pw", 2, 4096, &cred), 0);
    ck_assert_int_eq(roost_sasl_ssdp_hash(ROOST_HASH_SHA1, mechs, 5, cbs, 2, want,
                                          sizeof(want)), 28);
    snprintf(tail, sizeof(tail), ",h=%s", want);
    memset(&run_cb, 0, sizeof(run_cb));
    run_cb.type = "tls-exporter";
    run_cb.server = cbdata;
    run_cb.slen = sizeof(cbdata);
    scram_run(&r, ROOST_SASL_SCRAM_SHA1, "n,,", "n=juliet,r=abcdef", "pw", &cred, TWEAK_NONE);
    ck_assert_str_eq(r.server_first + strlen(r.server_first) - strlen(tail), tail);
    ck_assert_int_eq(r.r, ROOST_SASL_SUCCESS);
    roost_sasl_free(r.s);
    /* A client whose server-first lost h= (tampering in transit) computes
     * another AuthMessage: its proof fails. Simulated by the tweak that
     * changes what the client signs. */
    scram_run(&r, ROOST_SASL_SCRAM_SHA1, "n,,", "n=juliet,r=abcdef", "pw", &cred, TWEAK_PROOF);
    expect_fail(r.s, r.r, "not-authorized");
    roost_sasl_free(r.s);
    memset(&run_cb, 0, sizeof(run_cb));
    memset(&run_adv, 0, sizeof(run_adv));
}
END_TEST

START_TEST(ssdp_errors)
{
    static const char *const many[ROOST_SASL_SSDP_MAX + 1] = {
        "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q" };
    static const char *const long_name[] = { "SCRAM-SHA-256-THIS-NAME-IS-WAY-TOO-LONG" };
    static const char *const empty[] = { "" };
    static const char *const ok[] = { "SCRAM-SHA-1" };
    roost_sasl_t *s = roost_sasl_new(ROOST_SASL_SCRAM_SHA1, DOMAIN);
    char out[64];

    ck_assert_int_eq(roost_sasl_ssdp_hash(ROOST_HASH_SHA1, many, ROOST_SASL_SSDP_MAX + 1, NULL,
                                          0, out, sizeof(out)), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_ssdp_hash(ROOST_HASH_SHA1, many, ROOST_SASL_SSDP_MAX, many,
                                          ROOST_SASL_SSDP_MAX, out, sizeof(out)), 28);
    ck_assert_int_eq(roost_sasl_ssdp_hash(ROOST_HASH_SHA1, long_name, 1, NULL, 0, out,
                                          sizeof(out)), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_ssdp_hash(ROOST_HASH_SHA1, empty, 1, NULL, 0, out, sizeof(out)),
                     ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_ssdp_hash(ROOST_HASH_SHA1, ok, 1, NULL, 0, out, 28),
                     ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_set_advertised(s, long_name, 1, NULL, 0), ROOST_EINVAL);
    ck_assert_int_eq(roost_sasl_set_advertised(s, ok, 1, NULL, 0), 0);
    ck_assert_int_eq(roost_sasl_start(s, encs("n,,n=user,r=abc")), ROOST_SASL_NEED_CRED);
    ck_assert_int_eq(roost_sasl_set_advertised(s, ok, 1, NULL, 0), ROOST_EINVAL);
    roost_sasl_free(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sasl");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rfc5802_sha1);
    tcase_add_test(tc, rfc7677_sha256);
    tcase_add_loop_test(tc, scram_roundtrip, 0, 2);
    tcase_add_test(tc, scram_failures);
    tcase_add_test(tc, scram_unknown_user);
    tcase_add_test(tc, scram_authzid);
    tcase_add_test(tc, scram_bad_first);
    tcase_add_test(tc, scram_saslname_escapes);
    tcase_add_test(tc, scram_wrong_hash_cred);
    tcase_add_test(tc, scram_no_initial_response);
    tcase_add_test(tc, out_of_order);
    tcase_add_test(tc, plain_password);
    tcase_add_test(tc, plain_authzid);
    tcase_add_test(tc, plain_malformed);
    tcase_add_test(tc, plain_no_initial_response);
    tcase_add_test(tc, bad_base64);
    tcase_add_test(tc, oversize);
    tcase_add_test(tc, names);
    tcase_add_test(tc, test_nonce_hook);
    tcase_add_loop_test(tc, plus_roundtrip, 0, 4);
    tcase_add_test(tc, plus_mismatch);
    tcase_add_test(tc, plus_first_refused);
    tcase_add_test(tc, plus_n_flag_under_tls);
    tcase_add_test(tc, plus_unknown_user_salt);
    tcase_add_test(tc, plus_set_channel_binding_errors);
    tcase_add_test(tc, ssdp_xep_example);
    tcase_add_test(tc, ssdp_without_channel_binding);
    tcase_add_test(tc, ssdp_in_server_first);
    tcase_add_test(tc, ssdp_errors);
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
