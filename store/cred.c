/* SCRAM credentials (RFC 5802, RFC 7677): SASLprep of passwords, Hi()
 * (PBKDF2-HMAC), StoredKey/ServerKey derivation and password checks. */
#include "store/cred.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stringprep.h>

#include "store/error.h"

/* A password longer than this is refused before SASLprep: libidn converts
 * to UCS-4 and allocates several times the input, and no human password
 * needs more. */
#define PASSWORD_MAX 1024

/* Hi() runs on the event loop; a corrupt or hostile stored record must not
 * stall a node for minutes. */
#define ITER_MAX 1000000u

static const EVP_MD *hash_md(roost_hash_t hash)
{
    switch (hash) {
    case ROOST_HASH_SHA1:
        return EVP_sha1();
    case ROOST_HASH_SHA256:
        return EVP_sha256();
    }
    return NULL;
}

size_t roost_hash_len(roost_hash_t hash)
{
    switch (hash) {
    case ROOST_HASH_SHA1:
        return 20;
    case ROOST_HASH_SHA256:
        return 32;
    }
    return 0;
}

int roost_cred_saslprep(const char *in, size_t len, char **out)
{
    char *tmp, *res = NULL;
    int rc;

    *out = NULL;
    if (len > PASSWORD_MAX || memchr(in, '\0', len) != NULL)
        return ROOST_EINVAL;
    /* libidn wants a NUL-terminated string. */
    tmp = malloc(len + 1);
    if (tmp == NULL)
        return ROOST_ENOMEM;
    memcpy(tmp, in, len);
    tmp[len] = '\0';
    rc = stringprep_profile(tmp, &res, "SASLprep", 0);
    OPENSSL_cleanse(tmp, len);
    free(tmp);
    if (rc == STRINGPREP_MALLOC_ERROR)
        return ROOST_ENOMEM;
    if (rc != STRINGPREP_OK) {
        free(res);
        return ROOST_EINVAL;
    }
    *out = res;
    return 0;
}

int roost_cred_salted_password(roost_hash_t hash, const char *password, size_t plen,
                               const uint8_t *salt, size_t salt_len,
                               uint32_t iterations, uint8_t *out)
{
    const EVP_MD *md = hash_md(hash);
    char *norm;
    int rc;

    if (md == NULL || salt_len == 0 || salt_len > ROOST_CRED_SALT_MAX ||
        iterations == 0 || iterations > ITER_MAX)
        return ROOST_EINVAL;
    rc = roost_cred_saslprep(password, plen, &norm);
    if (rc < 0)
        return rc;
    /* Hi(str, salt, i) is PBKDF2 with HMAC-H and dkLen = hLen (RFC 5802 §2.2). */
    rc = PKCS5_PBKDF2_HMAC(norm, (int)strlen(norm), salt, (int)salt_len,
                           (int)iterations, md, (int)roost_hash_len(hash), out);
    OPENSSL_cleanse(norm, strlen(norm));
    free(norm);
    return rc == 1 ? 0 : ROOST_EINVAL;
}

void roost_cred_from_salted(roost_hash_t hash, const uint8_t *salted,
                            const uint8_t *salt, size_t salt_len,
                            uint32_t iterations, roost_scram_cred_t *out)
{
    const EVP_MD *md = hash_md(hash);
    size_t hlen = roost_hash_len(hash);
    uint8_t client_key[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    memset(out, 0, sizeof(*out));
    out->hash = hash;
    out->iterations = iterations;
    if (salt_len > ROOST_CRED_SALT_MAX)
        salt_len = ROOST_CRED_SALT_MAX;
    memcpy(out->salt, salt, salt_len);
    out->salt_len = salt_len;
    if (md == NULL)
        return;
    /* On an OpenSSL failure the keys stay zero, which no password matches
     * (H(ClientKey) is never all zeros in practice). */
    if (HMAC(md, salted, (int)hlen, (const unsigned char *)"Client Key", 10,
             client_key, &n) == NULL)
        return;
    if (EVP_Digest(client_key, hlen, out->stored_key, &n, md, NULL) != 1)
        memset(out->stored_key, 0, sizeof(out->stored_key));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    if (HMAC(md, salted, (int)hlen, (const unsigned char *)"Server Key", 10,
             out->server_key, &n) == NULL)
        memset(out->server_key, 0, sizeof(out->server_key));
}

int roost_cred_new(roost_hash_t hash, const char *password, size_t plen,
                   uint32_t iterations, roost_scram_cred_t *out)
{
    uint8_t salt[ROOST_CRED_SALT_LEN];
    uint8_t salted[EVP_MAX_MD_SIZE];
    int rc;

    memset(out, 0, sizeof(*out));
    if (hash_md(hash) == NULL || iterations < ROOST_CRED_ITER_MIN ||
        iterations > ITER_MAX)
        return ROOST_EINVAL;
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return ROOST_ENOMEM;
    rc = roost_cred_salted_password(hash, password, plen, salt, sizeof(salt),
                                    iterations, salted);
    if (rc < 0)
        return rc;
    roost_cred_from_salted(hash, salted, salt, sizeof(salt), iterations, out);
    OPENSSL_cleanse(salted, sizeof(salted));
    return 0;
}

int roost_cred_check_password(const roost_scram_cred_t *cred,
                              const char *password, size_t plen)
{
    uint8_t salted[EVP_MAX_MD_SIZE];
    roost_scram_cred_t got;
    size_t hlen = roost_hash_len(cred->hash);
    int ok;

    if (hlen == 0 || cred->salt_len > ROOST_CRED_SALT_MAX)
        return 0;
    if (roost_cred_salted_password(cred->hash, password, plen, cred->salt,
                                   cred->salt_len, cred->iterations, salted) < 0)
        return 0;
    roost_cred_from_salted(cred->hash, salted, cred->salt, cred->salt_len,
                           cred->iterations, &got);
    OPENSSL_cleanse(salted, sizeof(salted));
    ok = roost_cred_ct_equal(got.stored_key, cred->stored_key, hlen);
    OPENSSL_cleanse(&got, sizeof(got));
    return ok;
}

int roost_cred_ct_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}
