/* SCRAM credentials (RFC 5802, RFC 7677): derivation from a password and
 * verification of a PLAIN password against stored keys. Pure; OpenSSL. */
#ifndef ROOST_CRED_H
#define ROOST_CRED_H

#include <stddef.h>
#include <stdint.h>

#define ROOST_CRED_ITER_MIN 4096
#define ROOST_CRED_ITER_DEFAULT 4096
#define ROOST_CRED_SALT_LEN 16
#define ROOST_CRED_SALT_MAX 64
#define ROOST_CRED_KEY_MAX 32     /* SHA-256 digest size */

typedef enum {
    ROOST_HASH_SHA1 = 1,
    ROOST_HASH_SHA256 = 256,
} roost_hash_t;

/* Salted SCRAM keys for one hash; never a password. */
typedef struct {
    roost_hash_t hash;
    uint8_t salt[ROOST_CRED_SALT_MAX];
    size_t salt_len;
    uint32_t iterations;
    uint8_t stored_key[ROOST_CRED_KEY_MAX];
    uint8_t server_key[ROOST_CRED_KEY_MAX];
} roost_scram_cred_t;

/* Digest size of hash (20 or 32). */
size_t roost_hash_len(roost_hash_t hash);

/* SASLprep (RFC 4013) of a password into a malloc'd string; ROOST_EINVAL when
 * the password holds prohibited characters. */
int roost_cred_saslprep(const char *in, size_t len, char **out);

/* SaltedPassword := Hi(Normalize(password), salt, i), into out (hash size). */
int roost_cred_salted_password(roost_hash_t hash, const char *password, size_t plen,
                               const uint8_t *salt, size_t salt_len,
                               uint32_t iterations, uint8_t *out);

/* Fills *out from a salted password: StoredKey := H(HMAC(SP,"Client Key")),
 * ServerKey := HMAC(SP,"Server Key"). */
void roost_cred_from_salted(roost_hash_t hash, const uint8_t *salted,
                            const uint8_t *salt, size_t salt_len,
                            uint32_t iterations, roost_scram_cred_t *out);

/* Derives *out from a password with a fresh random salt (CSPRNG) and the
 * given iteration count (>= ROOST_CRED_ITER_MIN, else ROOST_EINVAL). */
int roost_cred_new(roost_hash_t hash, const char *password, size_t plen,
                   uint32_t iterations, roost_scram_cred_t *out);

/* 1 when password matches cred (constant-time key comparison), else 0. */
int roost_cred_check_password(const roost_scram_cred_t *cred,
                              const char *password, size_t plen);

/* Constant-time comparison; 1 when equal. */
int roost_cred_ct_equal(const uint8_t *a, const uint8_t *b, size_t len);

#endif
