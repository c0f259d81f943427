/* SASL server side of PLAIN (RFC 4616) and SCRAM-SHA-1/-SHA-256 (RFC 5802,
 * RFC 7677) with their -PLUS channel-binding variants, as a pure state
 * machine over the base64 text of <auth/> and <response/>: parsing, bounds,
 * proofs. The caller fetches credentials and the channel-binding data. */
#include "node/sasl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "node/sasl_test.h"
#include "store/error.h"
#include "store/jid.h"

/* No legitimate SASL message comes near this; it bounds every allocation
 * below before anything is decoded. */
#define DECODED_MAX 4096
#define B64_MAX (4 * ((DECODED_MAX + 2) / 3))
/* Client nonces are typically 24-32 characters. */
#define CNONCE_MAX 256
/* RFC 5802 only asks for a fresh nonce; 24 random bytes is 192 bits. */
#define SNONCE_RAW 24

typedef enum {
    ST_START,     /* nothing received */
    ST_INITIAL,   /* empty challenge sent; the next response is the initial one */
    ST_CRED,      /* NEED_CRED returned; waiting for roost_sasl_set_cred */
    ST_FINAL,     /* SCRAM server-first sent; waiting for client-final */
    ST_DONE,      /* success or failure reported; nothing more is accepted */
} state_t;

struct roost_sasl_s {
    roost_sasl_mech_t mech;
    state_t state;
    char *domain;
    char *username;          /* nodeprep'd authcid */
    char *out;               /* base64 payload; NULL reads as "" */
    const char *cond;        /* static failure condition */

    /* PLAIN: the password, held only between NEED_CRED and set_cred. */
    char *password;
    size_t plen;

    /* SCRAM */
    char *gs2;               /* gs2-header bytes, which c= must echo */
    size_t gs2_len;
    char *client_first_bare;
    char *server_first;
    char *nonce;             /* client nonce, then the full nonce */
    char *test_snonce;       /* test hook only: fixed server nonce part */
    roost_scram_cred_t cred; /* stored (or fake) keys for the proof */
    int known_user;

    /* Channel bindings the connection offers, and the one the client chose
     * (-1: none, so c= carries only the gs2 header). */
    struct {
        char name[ROOST_SASL_CB_NAME_MAX + 1];
        uint8_t data[ROOST_SASL_CB_DATA_MAX];
        size_t len;
    } cb[ROOST_SASL_CB_TYPES];
    int ncb;
    int cb_used;

    /* XEP-0474 value for the server-first-message; "" when not set. */
    char ssdp[64];
};

/* ---- helpers -------------------------------------------------------- */

static roost_sasl_result_t fail(roost_sasl_t *s, const char *cond)
{
    s->state = ST_DONE;
    s->cond = cond;
    free(s->out);
    s->out = NULL;
    if (s->password) {
        OPENSSL_cleanse(s->password, s->plen);
        free(s->password);
        s->password = NULL;
        s->plen = 0;
    }
    return ROOST_SASL_FAILURE;
}

static roost_hash_t mech_hash(roost_sasl_mech_t mech)
{
    return mech == ROOST_SASL_SCRAM_SHA1 || mech == ROOST_SASL_SCRAM_SHA1_PLUS
               ? ROOST_HASH_SHA1 : ROOST_HASH_SHA256;
}

static int mech_plus(roost_sasl_mech_t mech)
{
    return mech == ROOST_SASL_SCRAM_SHA1_PLUS || mech == ROOST_SASL_SCRAM_SHA256_PLUS;
}

/* The mechanism without -PLUS: both share the stored credentials, so an
 * unknown user's fake salt must not differ between them either. */
static roost_sasl_mech_t mech_base(roost_sasl_mech_t mech)
{
    if (mech == ROOST_SASL_SCRAM_SHA1_PLUS)
        return ROOST_SASL_SCRAM_SHA1;
    if (mech == ROOST_SASL_SCRAM_SHA256_PLUS)
        return ROOST_SASL_SCRAM_SHA256;
    return mech;
}

/* cb-name = 1*(ALPHA / DIGIT / "." / "-") (RFC 5802 §7). */
static int cb_name_ok(const char *p, size_t n)
{
    size_t i;

    if (n == 0 || n > ROOST_SASL_CB_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
              (p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == '-'))
            return 0;
    return 1;
}

static int cb_find(const roost_sasl_t *s, const char *name, size_t n)
{
    int i;

    for (i = 0; i < s->ncb; i++)
        if (strlen(s->cb[i].name) == n && memcmp(s->cb[i].name, name, n) == 0)
            return i;
    return -1;
}

/* Base64 of in[0..n) into a new NUL-terminated string, or NULL. */
static char *b64_encode(const void *in, size_t n)
{
    char *out;

    if (n > DECODED_MAX * 2)
        return NULL;
    out = malloc(4 * ((n + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return out;
}

static int b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Strict RFC 4648 §4 decoding of in[0..n): no whitespace, padding only at
 * the end and only as needed for a multiple of four. EVP_DecodeBlock would
 * skip whitespace and counts padding as output, so validate first and
 * subtract the padding after. *out gets n*3/4+1 bytes, NUL-terminated.
 * ROOST_EINVAL on bad encoding, ROOST_ELIMIT past DECODED_MAX. */
static int b64_decode(const char *in, size_t n, uint8_t **out, size_t *outlen)
{
    size_t i, pad = 0;
    uint8_t *buf;
    int got;

    *out = NULL;
    *outlen = 0;
    if (n > B64_MAX)
        return ROOST_ELIMIT;
    if (n % 4 != 0)
        return ROOST_EINVAL;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c == '=') {
            if (i < n - 2)
                return ROOST_EINVAL;
            pad++;
        } else if (!b64_char(c) || pad > 0) {
            return ROOST_EINVAL;
        }
    }
    buf = malloc(n / 4 * 3 + 1);
    if (buf == NULL)
        return ROOST_ENOMEM;
    got = n ? EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n) : 0;
    if (got < 0 || (size_t)got < pad) {
        free(buf);
        return ROOST_EINVAL;
    }
    *outlen = (size_t)got - pad;
    buf[*outlen] = '\0';
    if (*outlen > DECODED_MAX) {
        OPENSSL_cleanse(buf, *outlen);
        free(buf);
        *outlen = 0;
        return ROOST_ELIMIT;
    }
    *out = buf;
    return 0;
}

static char *mem_dup(const char *p, size_t n)
{
    char *d = malloc(n + 1);

    if (d == NULL)
        return NULL;
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

/* Nodeprep of the authcid into s->username; a name that cannot be a
 * localpart cannot be an account, so that is a plain not-authorized. */
static const char *set_username(roost_sasl_t *s, const char *u, size_t n)
{
    int rc;

    if (n == 0)
        return "malformed-request";
    free(s->username);
    s->username = NULL;
    rc = roost_jid_nodeprep(u, n, &s->username);
    if (rc == ROOST_ENOMEM)
        return "temporary-auth-failure";
    if (rc < 0)
        return "not-authorized";
    return NULL;
}

/* The authorization identity may only name the authenticated account
 * itself (we offer no proxy authorization): its bare JID, compared after
 * preparation. NULL when acceptable, else a condition. */
static const char *check_authzid(const roost_sasl_t *s, const char *z, size_t n)
{
    roost_jid_t want, got;
    const char *cond = NULL;
    int rc;

    if (n == 0)
        return NULL;
    rc = roost_jid_make(&want, s->username, s->domain, NULL);
    if (rc < 0)
        return rc == ROOST_ENOMEM ? "temporary-auth-failure" : "invalid-authzid";
    rc = roost_jid_parse(&got, z, n);
    if (rc == ROOST_ENOMEM)
        cond = "temporary-auth-failure";
    else if (rc < 0 || !roost_jid_equal(&got, &want))
        cond = "invalid-authzid";
    roost_jid_clear(&got);
    roost_jid_clear(&want);
    return cond;
}

/* A per-process secret, so that the fake salt of an unknown user is stable
 * across attempts (a changing salt would reveal that the user is fake) yet
 * unpredictable. Nodes are single-threaded, so lazy init needs no lock.
 * Different nodes give different fake salts; a cluster-wide secret would
 * close that gap. */
static int fake_secret(const uint8_t **key)
{
    static uint8_t secret[32];
    static int ready;

    if (!ready) {
        if (RAND_bytes(secret, sizeof(secret)) != 1)
            return ROOST_ENOMEM;
        ready = 1;
    }
    *key = secret;
    return 0;
}

/* Credentials that look like a real account's but match no password. */
static int fake_cred(roost_hash_t hash, const char *mech, const char *user,
                     roost_scram_cred_t *out)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    const uint8_t *key;
    char *msg;
    size_t ml = strlen(mech), ul = strlen(user);
    int rc;

    memset(out, 0, sizeof(*out));
    rc = fake_secret(&key);
    if (rc < 0)
        return rc;
    /* Mechanism name in the input: real accounts salt each hash apart. */
    msg = malloc(ml + 1 + ul);
    if (msg == NULL)
        return ROOST_ENOMEM;
    memcpy(msg, mech, ml);
    msg[ml] = '\0';
    memcpy(msg + ml + 1, user, ul);
    if (HMAC(EVP_sha256(), key, 32, (uint8_t *)msg, ml + 1 + ul, mac, &maclen) == NULL) {
        free(msg);
        return ROOST_ENOMEM;
    }
    free(msg);
    out->hash = hash;
    memcpy(out->salt, mac, ROOST_CRED_SALT_LEN);
    out->salt_len = ROOST_CRED_SALT_LEN;
    out->iterations = ROOST_CRED_ITER_DEFAULT;
    /* stored_key/server_key stay zero; known_user = 0 fails the proof. */
    return 0;
}

/* ---- PLAIN ------------------------------------------------------------ */

/* message = [authzid] NUL authcid NUL passwd (RFC 4616 §2). */
static roost_sasl_result_t plain_initial(roost_sasl_t *s, const uint8_t *m, size_t n)
{
    const char *msg = (const char *)m, *end = msg + n, *nul1, *nul2;
    const char *cond;

    nul1 = memchr(msg, '\0', n);
    if (nul1 == NULL)
        return fail(s, "malformed-request");
    nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1));
    if (nul2 == NULL || memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1)) != NULL)
        return fail(s, "malformed-request");
    if (nul2 == nul1 + 1 || nul2 + 1 == end)
        return fail(s, "malformed-request");
    cond = set_username(s, nul1 + 1, (size_t)(nul2 - nul1 - 1));
    if (cond == NULL)
        cond = check_authzid(s, msg, (size_t)(nul1 - msg));
    if (cond != NULL)
        return fail(s, cond);
    s->plen = (size_t)(end - nul2 - 1);
    s->password = mem_dup(nul2 + 1, s->plen);
    if (s->password == NULL)
        return fail(s, "temporary-auth-failure");
    s->state = ST_CRED;
    return ROOST_SASL_NEED_CRED;
}

static roost_sasl_result_t plain_cred(roost_sasl_t *s, const roost_scram_cred_t *cred)
{
    roost_scram_cred_t fake;
    int ok = 0;

    if (cred != NULL) {
        ok = roost_cred_check_password(cred, s->password, s->plen);
    } else if (fake_cred(ROOST_HASH_SHA256, "PLAIN", s->username, &fake) == 0) {
        /* Spend the same Hi() work as for a real account, so the reply
         * time does not tell whether the user exists. */
        (void)roost_cred_check_password(&fake, s->password, s->plen);
    }
    OPENSSL_cleanse(s->password, s->plen);
    free(s->password);
    s->password = NULL;
    s->plen = 0;
    if (!ok)
        return fail(s, "not-authorized");
    s->state = ST_DONE;
    return ROOST_SASL_SUCCESS;
}

/* ---- SCRAM ------------------------------------------------------------ */

/* End of the attribute starting at p: the next ',' or end. */
static const char *attr_end(const char *p, const char *end)
{
    const char *c = memchr(p, ',', (size_t)(end - p));

    return c ? c : end;
}

/* saslname: '=' only as "=2C" (',') or "=3D" ('='). */
static int saslname_decode(const char *v, size_t n, char **out, size_t *outlen)
{
    char *d = malloc(n + 1);
    size_t i, k = 0;

    *out = NULL;
    if (d == NULL)
        return ROOST_ENOMEM;
    for (i = 0; i < n; i++) {
        if (v[i] != '=') {
            d[k++] = v[i];
        } else if (n - i >= 3 && v[i + 1] == '2' && v[i + 2] == 'C') {
            d[k++] = ',';
            i += 2;
        } else if (n - i >= 3 && v[i + 1] == '3' && v[i + 2] == 'D') {
            d[k++] = '=';
            i += 2;
        } else {
            free(d);
            return ROOST_EINVAL;
        }
    }
    d[k] = '\0';
    *out = d;
    *outlen = k;
    return 0;
}

/* Optional trailing extensions: each ",x=value" with an ASCII letter. */
static int extensions_ok(const char *p, const char *end)
{
    while (p < end) {
        if (*p != ',' || end - p < 3 ||
            !((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z')) ||
            p[2] != '=')
            return 0;
        p = attr_end(p + 3, end);
    }
    return 1;
}

static int nonce_ok(const char *p, size_t n)
{
    size_t i;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
            return 0;
    return 1;
}

/* client-first-message = gs2-header client-first-message-bare (RFC 5802 §7). */
static roost_sasl_result_t scram_first(roost_sasl_t *s, const uint8_t *m, size_t n)
{
    const char *msg = (const char *)m, *end = msg + n, *p = msg, *e;
    const char *z = NULL, *cond, *bare, *cn;
    char *authzid = NULL, *user = NULL;
    size_t zlen = 0, ulen = 0, cnlen;
    int rc;

    if (n == 0 || memchr(msg, '\0', n) != NULL)
        return fail(s, "malformed-request");
    if (n >= 2 && p[0] == 'p' && p[1] == '=') {
        const char *name = p + 2;
        int idx;

        e = attr_end(name, end);
        /* "p=" with a mechanism without -PLUS, or a type this connection
         * does not offer: RFC 5802 §5.1 has the server answer with
         * e=channel-binding-not-supported in its final message, which
         * never comes this early; RFC 6120 §6.5 has no closer condition
         * than not-authorized, and XEP-0440 lets the client know the
         * types up front. */
        if (!mech_plus(s->mech) || !cb_name_ok(name, (size_t)(e - name)))
            return fail(s, "not-authorized");
        idx = cb_find(s, name, (size_t)(e - name));
        if (idx < 0)
            return fail(s, "not-authorized");
        s->cb_used = idx;
        p = e;
    } else {
        /* "n": no channel binding; "y": the client could bind but thinks
         * we cannot. */
        if (n < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',')
            return fail(s, "malformed-request");
        /* A -PLUS mechanism is channel binding; without it the client
         * asked for something else than it named. */
        if (mech_plus(s->mech))
            return fail(s, "malformed-request");
        /* "y" while this connection offers channel binding (and so the
         * -PLUS mechanisms): someone removed them from the features the
         * client saw, the downgrade RFC 5802 §6 has us refuse. */
        if (p[0] == 'y' && s->ncb > 0)
            return fail(s, "not-authorized");
        p += 1;
    }
    /* p is at the ',' ending gs2-cbind-flag. */
    if (p >= end || *p != ',')
        return fail(s, "malformed-request");
    p++;
    if (p < end && p[0] == 'a' && p + 1 < end && p[1] == '=') {
        z = p + 2;
        p = attr_end(z, end);
        zlen = (size_t)(p - z);
    }
    if (p >= end || *p != ',')
        return fail(s, "malformed-request");
    p++;
    s->gs2_len = (size_t)(p - msg);
    s->gs2 = mem_dup(msg, s->gs2_len);
    if (s->gs2 == NULL)
        return fail(s, "temporary-auth-failure");

    bare = p;
    /* reserved-mext: a mandatory extension we cannot know (RFC 5802 §5.1). */
    if (end - p < 2 || p[0] != 'n' || p[1] != '=')
        return fail(s, "malformed-request");
    e = attr_end(p + 2, end);
    if (e >= end)
        return fail(s, "malformed-request");
    rc = saslname_decode(p + 2, (size_t)(e - p - 2), &user, &ulen);
    if (rc < 0)
        return fail(s, rc == ROOST_ENOMEM ? "temporary-auth-failure" : "malformed-request");
    p = e + 1;
    if (end - p < 2 || p[0] != 'r' || p[1] != '=') {
        free(user);
        return fail(s, "malformed-request");
    }
    cn = p + 2;
    e = attr_end(cn, end);
    cnlen = (size_t)(e - cn);
    if (cnlen > CNONCE_MAX || !nonce_ok(cn, cnlen) || !extensions_ok(e, end)) {
        free(user);
        return fail(s, "malformed-request");
    }

    cond = set_username(s, user, ulen);
    free(user);
    if (cond != NULL)
        return fail(s, cond);
    if (z != NULL) {
        rc = saslname_decode(z, zlen, &authzid, &zlen);
        if (rc < 0)
            return fail(s, rc == ROOST_ENOMEM ? "temporary-auth-failure" : "malformed-request");
        cond = check_authzid(s, authzid, zlen);
        free(authzid);
        if (cond != NULL)
            return fail(s, cond);
    }
    s->client_first_bare = mem_dup(bare, (size_t)(end - bare));
    s->nonce = mem_dup(cn, cnlen);
    if (s->client_first_bare == NULL || s->nonce == NULL)
        return fail(s, "temporary-auth-failure");
    s->state = ST_CRED;
    return ROOST_SASL_NEED_CRED;
}

/* server-first-message = "r=" nonce ",s=" salt ",i=" iteration-count. */
static roost_sasl_result_t scram_cred(roost_sasl_t *s, const roost_scram_cred_t *cred)
{
    roost_hash_t hash = mech_hash(s->mech);
    uint8_t raw[SNONCE_RAW];
    char *snonce, *salt64, *nonce;
    size_t len;

    if (cred != NULL) {
        /* A record of the wrong hash or with nonsense parameters is our
         * fault, not the client's. */
        if (cred->hash != hash || cred->salt_len == 0 ||
            cred->salt_len > ROOST_CRED_SALT_MAX || cred->iterations == 0)
            return fail(s, "temporary-auth-failure");
        s->cred = *cred;
        s->known_user = 1;
    } else {
        if (fake_cred(hash, roost_sasl_mech_name(mech_base(s->mech)), s->username,
                      &s->cred) < 0)
            return fail(s, "temporary-auth-failure");
        s->known_user = 0;
    }

    if (s->test_snonce != NULL) {
        snonce = strdup(s->test_snonce);
    } else {
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            return fail(s, "temporary-auth-failure");
        snonce = b64_encode(raw, sizeof(raw));
    }
    salt64 = b64_encode(s->cred.salt, s->cred.salt_len);
    if (snonce == NULL || salt64 == NULL)
        goto fail_alloc;
    len = strlen(s->nonce) + strlen(snonce) + 1;
    nonce = malloc(len);
    if (nonce == NULL)
        goto fail_alloc;
    snprintf(nonce, len, "%s%s", s->nonce, snonce);
    free(s->nonce);
    s->nonce = nonce;

    len = strlen(s->nonce) + strlen(salt64) + strlen(s->ssdp) + 40;
    s->server_first = malloc(len);
    if (s->server_first == NULL)
        goto fail_alloc;
    /* XEP-0474's h= goes with the other optional extensions at the end
     * (RFC 5802 §7), inside what the proofs sign. */
    snprintf(s->server_first, len, "r=%s,s=%s,i=%u%s%s", s->nonce, salt64,
             (unsigned)s->cred.iterations, s->ssdp[0] ? ",h=" : "", s->ssdp);
    free(s->out);
    s->out = b64_encode(s->server_first, strlen(s->server_first));
    if (s->out == NULL)
        goto fail_alloc;
    free(salt64);
    free(snonce);
    s->state = ST_FINAL;
    return ROOST_SASL_CHALLENGE;

fail_alloc:
    free(salt64);
    free(snonce);
    return fail(s, "temporary-auth-failure");
}

/* HMAC (RFC 2104) and H over one digest context and digests fetched once:
 * OpenSSL 3's one-shot HMAC() fetches and builds a MAC object per call,
 * several times the cost of the hashing for SCRAM's short inputs. Keys are
 * StoredKey/ServerKey, never longer than the 64-byte block of SHA-1 and
 * SHA-256. Returns 1 on success. */
#define HMAC_BLOCK 64

static EVP_MD_CTX *digest_ctx(roost_hash_t hash, const EVP_MD **md)
{
    static EVP_MD_CTX *ctx;
    static EVP_MD *sha1, *sha256;

    if (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL)
        return NULL;
    if (hash == ROOST_HASH_SHA1) {
        if (sha1 == NULL)
            sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
        *md = sha1;
    } else {
        if (sha256 == NULL)
            sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        *md = sha256;
    }
    return *md != NULL ? ctx : NULL;
}

static int digest2(roost_hash_t hash, const void *a, size_t al, const void *b, size_t bl,
                   uint8_t *out)
{
    const EVP_MD *md;
    EVP_MD_CTX *ctx = digest_ctx(hash, &md);
    unsigned int n = 0;

    return ctx != NULL && EVP_DigestInit_ex2(ctx, md, NULL) == 1 &&
           EVP_DigestUpdate(ctx, a, al) == 1 && (bl == 0 || EVP_DigestUpdate(ctx, b, bl) == 1) &&
           EVP_DigestFinal_ex(ctx, out, &n) == 1;
}

static int scram_hmac(roost_hash_t hash, const uint8_t *key, size_t klen, const void *msg,
                      size_t mlen, uint8_t *out)
{
    uint8_t pad[HMAC_BLOCK], inner[EVP_MAX_MD_SIZE];
    size_t hlen = roost_hash_len(hash);
    int ok;

    if (klen > HMAC_BLOCK)
        return 0;
    memset(pad, 0x36, sizeof(pad));
    for (size_t i = 0; i < klen; i++)
        pad[i] ^= key[i];
    ok = digest2(hash, pad, sizeof(pad), msg, mlen, inner);
    memset(pad, 0x5c, sizeof(pad));
    for (size_t i = 0; i < klen; i++)
        pad[i] ^= key[i];
    ok = ok && digest2(hash, pad, sizeof(pad), inner, hlen, out);
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
    return ok;
}

/* Verifies the proof: ClientKey := proof XOR HMAC(StoredKey, AuthMessage),
 * then H(ClientKey) must equal StoredKey. On success fills sig with
 * ServerSignature := HMAC(ServerKey, AuthMessage). Returns 1 on a match. */
static int scram_verify(const roost_sasl_t *s, const char *auth, size_t alen,
                        const uint8_t *proof, uint8_t *sig)
{
    roost_hash_t hash = mech_hash(s->mech);
    size_t i, hlen = roost_hash_len(hash);
    uint8_t csig[EVP_MAX_MD_SIZE], key[EVP_MAX_MD_SIZE], h[EVP_MAX_MD_SIZE];
    int ok = 0;

    if (!scram_hmac(hash, s->cred.stored_key, hlen, auth, alen, csig))
        return 0;
    for (i = 0; i < hlen; i++)
        key[i] = proof[i] ^ csig[i];
    if (digest2(hash, key, hlen, NULL, 0, h))
        ok = roost_cred_ct_equal(h, s->cred.stored_key, hlen);
    OPENSSL_cleanse(key, sizeof(key));
    if (!ok || !s->known_user)
        return 0;
    return scram_hmac(hash, s->cred.server_key, hlen, auth, alen, sig);
}

/* client-final-message = "c=" cbind ",r=" nonce [extensions] ",p=" proof. */
static roost_sasl_result_t scram_final(roost_sasl_t *s, const uint8_t *m, size_t n)
{
    const char *msg = (const char *)m, *end = msg + n, *p, *e, *last;
    size_t hlen = roost_hash_len(mech_hash(s->mech));
    uint8_t *cb = NULL, *proof = NULL, sig[EVP_MAX_MD_SIZE];
    size_t cblen, prooflen, alen, l1, l2;
    char *auth = NULL, *sig64 = NULL, *v = NULL;
    const char *cond = "malformed-request";
    int rc;

    if (n == 0 || memchr(msg, '\0', n) != NULL)
        return fail(s, "malformed-request");
    /* The proof is the last attribute, and base64 holds no ','. */
    last = memrchr(msg, ',', n);
    if (last == NULL || end - last < 3 || last[1] != 'p' || last[2] != '=')
        return fail(s, "malformed-request");
    if (n < 2 || msg[0] != 'c' || msg[1] != '=')
        return fail(s, "malformed-request");
    e = attr_end(msg + 2, last);
    rc = b64_decode(msg + 2, (size_t)(e - msg - 2), &cb, &cblen);
    if (rc < 0)
        return fail(s, rc == ROOST_ENOMEM ? "temporary-auth-failure" : "malformed-request");
    /* c= is the gs2 header byte for byte (so a "y"/"n" flag tampered with
     * in transit is noticed), then the chosen channel's binding data: a
     * man in the middle terminating TLS sees different data. */
    {
        const uint8_t *want = s->cb_used >= 0 ? s->cb[s->cb_used].data : NULL;
        size_t wlen = s->cb_used >= 0 ? s->cb[s->cb_used].len : 0;

        rc = cblen == s->gs2_len + wlen && memcmp(cb, s->gs2, s->gs2_len) == 0 &&
             (wlen == 0 || CRYPTO_memcmp(cb + s->gs2_len, want, wlen) == 0);
    }
    free(cb);
    if (!rc)
        return fail(s, "not-authorized");
    p = e;
    if (last - p < 3 || p[0] != ',' || p[1] != 'r' || p[2] != '=')
        return fail(s, "malformed-request");
    e = attr_end(p + 3, last);
    if ((size_t)(e - p - 3) != strlen(s->nonce) ||
        memcmp(p + 3, s->nonce, (size_t)(e - p - 3)) != 0)
        return fail(s, "not-authorized");
    if (!extensions_ok(e, last))
        return fail(s, "malformed-request");
    rc = b64_decode(last + 3, (size_t)(end - last - 3), &proof, &prooflen);
    if (rc < 0)
        return fail(s, rc == ROOST_ENOMEM ? "temporary-auth-failure" : "malformed-request");
    if (prooflen != hlen)
        goto fail_proof;

    /* AuthMessage := client-first-message-bare "," server-first-message ","
     *                client-final-message-without-proof */
    l1 = strlen(s->client_first_bare);
    l2 = strlen(s->server_first);
    alen = l1 + 1 + l2 + 1 + (size_t)(last - msg);
    cond = "temporary-auth-failure";
    auth = malloc(alen + 1);
    if (auth == NULL)
        goto fail_proof;
    memcpy(auth, s->client_first_bare, l1);
    auth[l1] = ',';
    memcpy(auth + l1 + 1, s->server_first, l2);
    auth[l1 + 1 + l2] = ',';
    memcpy(auth + l1 + 2 + l2, msg, (size_t)(last - msg));
    auth[alen] = '\0';

    cond = "not-authorized";
    if (!scram_verify(s, auth, alen, proof, sig))
        goto fail_auth;
    cond = "temporary-auth-failure";
    sig64 = b64_encode(sig, hlen);
    if (sig64 == NULL)
        goto fail_auth;
    v = malloc(strlen(sig64) + 3);
    if (v == NULL)
        goto fail_sig;
    memcpy(v, "v=", 2);
    strcpy(v + 2, sig64);
    free(s->out);
    s->out = b64_encode(v, strlen(v));
    if (s->out == NULL)
        goto fail_v;
    free(v);
    free(sig64);
    free(auth);
    free(proof);
    s->state = ST_DONE;
    return ROOST_SASL_SUCCESS;

fail_v:
    free(v);
fail_sig:
    free(sig64);
fail_auth:
    free(auth);
fail_proof:
    free(proof);
    return fail(s, cond);
}

/* ---- public API --------------------------------------------------------- */

roost_sasl_mech_t roost_sasl_mech_by_name(const char *name)
{
    /* SASL mechanism names are case-sensitive (RFC 4422 §3.1). */
    if (name == NULL)
        return 0;
    if (strcmp(name, "PLAIN") == 0)
        return ROOST_SASL_PLAIN;
    if (strcmp(name, "SCRAM-SHA-1") == 0)
        return ROOST_SASL_SCRAM_SHA1;
    if (strcmp(name, "SCRAM-SHA-256") == 0)
        return ROOST_SASL_SCRAM_SHA256;
    if (strcmp(name, "SCRAM-SHA-1-PLUS") == 0)
        return ROOST_SASL_SCRAM_SHA1_PLUS;
    if (strcmp(name, "SCRAM-SHA-256-PLUS") == 0)
        return ROOST_SASL_SCRAM_SHA256_PLUS;
    return 0;
}

const char *roost_sasl_mech_name(roost_sasl_mech_t mech)
{
    switch (mech) {
    case ROOST_SASL_PLAIN:
        return "PLAIN";
    case ROOST_SASL_SCRAM_SHA1:
        return "SCRAM-SHA-1";
    case ROOST_SASL_SCRAM_SHA256:
        return "SCRAM-SHA-256";
    case ROOST_SASL_SCRAM_SHA1_PLUS:
        return "SCRAM-SHA-1-PLUS";
    case ROOST_SASL_SCRAM_SHA256_PLUS:
        return "SCRAM-SHA-256-PLUS";
    }
    return NULL;
}

roost_sasl_t *roost_sasl_new(roost_sasl_mech_t mech, const char *domain)
{
    roost_sasl_t *s;

    if (roost_sasl_mech_name(mech) == NULL || domain == NULL)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->domain = strdup(domain);
    if (s->domain == NULL) {
        free(s);
        return NULL;
    }
    s->mech = mech;
    s->state = ST_START;
    s->cb_used = -1;
    return s;
}

int roost_sasl_set_channel_binding(roost_sasl_t *s, const char *type, const void *data,
                                   size_t len)
{
    size_t n = type ? strnlen(type, ROOST_SASL_CB_NAME_MAX + 1) : 0;

    if (s->state != ST_START || !cb_name_ok(type, n) || data == NULL || len == 0 ||
        len > ROOST_SASL_CB_DATA_MAX || s->ncb >= ROOST_SASL_CB_TYPES ||
        cb_find(s, type, n) >= 0)
        return ROOST_EINVAL;
    memcpy(s->cb[s->ncb].name, type, n);
    s->cb[s->ncb].name[n] = '\0';
    memcpy(s->cb[s->ncb].data, data, len);
    s->cb[s->ncb].len = len;
    s->ncb++;
    return 0;
}

/* i;octet collation (RFC 4790 §9.3): plain byte order, as strcmp. */
static int by_octet(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends the sorted names joined by 0x1E to buf at *at (cap bounded). */
static int join_sorted(const char *const *names, size_t n, char *buf, size_t cap, size_t *at)
{
    const char *sorted[ROOST_SASL_SSDP_MAX];
    size_t i, len;

    if (n > ROOST_SASL_SSDP_MAX)
        return ROOST_EINVAL;
    for (i = 0; i < n; i++) {
        if (names[i] == NULL)
            return ROOST_EINVAL;
        sorted[i] = names[i];
    }
    qsort(sorted, n, sizeof(sorted[0]), by_octet);
    for (i = 0; i < n; i++) {
        len = strnlen(sorted[i], ROOST_SASL_CB_NAME_MAX + 1);
        if (len == 0 || len > ROOST_SASL_CB_NAME_MAX || *at + len + 1 > cap)
            return ROOST_EINVAL;
        if (i > 0)
            buf[(*at)++] = 0x1e;
        memcpy(buf + *at, sorted[i], len);
        *at += len;
    }
    return 0;
}

int roost_sasl_ssdp_hash(roost_hash_t hash, const char *const *mechs, size_t n_mechs,
                         const char *const *cbs, size_t n_cbs, char *out, size_t cap)
{
    /* Every name is bounded, so S is too. */
    char buf[2 * ROOST_SASL_SSDP_MAX * (ROOST_SASL_CB_NAME_MAX + 1) + 2];
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t at = 0, need;

    if (join_sorted(mechs, n_mechs, buf, sizeof(buf), &at) < 0)
        return ROOST_EINVAL;
    if (cbs != NULL && n_cbs > 0) {
        buf[at++] = 0x1f;
        if (join_sorted(cbs, n_cbs, buf, sizeof(buf), &at) < 0)
            return ROOST_EINVAL;
    }
    const EVP_MD *alg;
    if (digest_ctx(hash, &alg) == NULL || EVP_Digest(buf, at, md, &mdlen, alg, NULL) != 1)
        return ROOST_EINVAL;
    need = 4 * ((mdlen + 2) / 3);
    if (cap < need + 1)
        return ROOST_EINVAL;
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    return (int)need;
}

int roost_sasl_set_advertised(roost_sasl_t *s, const char *const *mechs, size_t n_mechs,
                              const char *const *cbs, size_t n_cbs)
{
    int n;

    if (s->state != ST_START)
        return ROOST_EINVAL;
    n = roost_sasl_ssdp_hash(mech_hash(s->mech), mechs, n_mechs, cbs, n_cbs, s->ssdp,
                             sizeof(s->ssdp));
    if (n < 0) {
        s->ssdp[0] = '\0';
        return n;
    }
    return 0;
}

void roost_sasl_free(roost_sasl_t *s)
{
    if (s == NULL)
        return;
    if (s->password != NULL) {
        OPENSSL_cleanse(s->password, s->plen);
        free(s->password);
    }
    OPENSSL_cleanse(&s->cred, sizeof(s->cred));
    OPENSSL_cleanse(s->cb, sizeof(s->cb));
    free(s->domain);
    free(s->username);
    free(s->out);
    free(s->gs2);
    free(s->client_first_bare);
    free(s->server_first);
    free(s->nonce);
    free(s->test_snonce);
    free(s);
}

/* Decodes one message and hands it to the mechanism's step for the current
 * state. The decoded bytes may hold a password, so they are wiped. */
static roost_sasl_result_t feed(roost_sasl_t *s, const char *b64)
{
    roost_sasl_result_t r;
    uint8_t *msg = NULL;
    size_t n = 0, len;
    int rc;

    len = b64 ? strnlen(b64, B64_MAX + 1) : 0;
    if (len > B64_MAX)
        return fail(s, "malformed-request");
    /* "=" is how RFC 6120 §6.4.2 spells an empty response. */
    if (len == 1 && b64[0] == '=')
        len = 0;
    rc = b64_decode(b64 ? b64 : "", len, &msg, &n);
    if (rc == ROOST_ELIMIT)
        return fail(s, "malformed-request");
    if (rc == ROOST_ENOMEM)
        return fail(s, "temporary-auth-failure");
    if (rc < 0)
        return fail(s, "incorrect-encoding");
    if (s->state == ST_FINAL)
        r = scram_final(s, msg, n);
    else if (s->mech == ROOST_SASL_PLAIN)
        r = plain_initial(s, msg, n);
    else
        r = scram_first(s, msg, n);
    OPENSSL_cleanse(msg, n);
    free(msg);
    return r;
}

roost_sasl_result_t roost_sasl_start(roost_sasl_t *s, const char *b64)
{
    if (s->state != ST_START)
        return fail(s, "malformed-request");
    if (b64 == NULL || b64[0] == '\0') {
        /* No initial response: an empty challenge asks for it. */
        s->state = ST_INITIAL;
        free(s->out);
        s->out = NULL;
        return ROOST_SASL_CHALLENGE;
    }
    return feed(s, b64);
}

roost_sasl_result_t roost_sasl_set_cred(roost_sasl_t *s, const roost_scram_cred_t *cred)
{
    if (s->state != ST_CRED)
        return fail(s, "temporary-auth-failure");
    if (s->mech == ROOST_SASL_PLAIN)
        return plain_cred(s, cred);
    return scram_cred(s, cred);
}

roost_sasl_result_t roost_sasl_step(roost_sasl_t *s, const char *b64)
{
    /* Anything after success or failure, or while credentials are being
     * fetched, is a protocol violation. */
    if (s->state != ST_INITIAL && s->state != ST_FINAL)
        return fail(s, "malformed-request");
    return feed(s, b64);
}

const char *roost_sasl_username(const roost_sasl_t *s)
{
    return s->username;
}

roost_hash_t roost_sasl_cred_hash(const roost_sasl_t *s)
{
    return mech_hash(s->mech);
}

const char *roost_sasl_out(const roost_sasl_t *s)
{
    return s->out ? s->out : "";
}

const char *roost_sasl_condition(const roost_sasl_t *s)
{
    return s->cond ? s->cond : "";
}

int roost_sasl_test_set_nonce(roost_sasl_t *s, const char *server_part)
{
    char *d;

    if (server_part == NULL || strlen(server_part) > CNONCE_MAX ||
        !nonce_ok(server_part, strlen(server_part)))
        return ROOST_EINVAL;
    d = strdup(server_part);
    if (d == NULL)
        return ROOST_ENOMEM;
    free(s->test_snonce);
    s->test_snonce = d;
    return 0;
}
