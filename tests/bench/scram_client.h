/* Client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) for roost-bench, with the
 * salted password cached per account the way real clients keep it. Pure; OpenSSL. */
#ifndef ROOST_BENCH_SCRAM_CLIENT_H
#define ROOST_BENCH_SCRAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#define ROOST_BENCH_SCRAM_SALT_MAX 64
#define ROOST_BENCH_SCRAM_ITER_MAX 1000000u   /* refuse absurd server requests */

/* What a client remembers about one account between logins: the salt and
 * iteration count the server announced and Hi(password, salt, i). */
typedef struct {
    uint8_t salt[ROOST_BENCH_SCRAM_SALT_MAX];
    size_t salt_len;
    uint32_t iterations;
    uint8_t salted[32];
    int valid;
} roost_bench_scram_cache_t;

/* One exchange in progress. */
typedef struct {
    char first_bare[160];      /* n=user,r=cnonce */
    size_t first_bare_len;
    uint8_t server_sig[32];    /* expected v= of server-final */
} roost_bench_scram_t;

/* Writes the client-first-message (gs2 header + bare, not base64) for user
 * into out; returns its length, or 0 when it does not fit or user needs
 * escaping (bench users never do). */
size_t roost_bench_scram_first(roost_bench_scram_t *s, const char *user,
                               char *out, size_t cap);

/* Answers server-first (raw, len bytes) with client-final (raw) in out.
 * Uses cache when its salt and iterations match, else derives and fills it
 * (*derived set to 1). Returns the length, or 0 on a malformed server-first,
 * a nonce that does not extend ours, or no room. */
size_t roost_bench_scram_final(roost_bench_scram_t *s, const char *password,
                               const char *server_first, size_t len,
                               roost_bench_scram_cache_t *cache, int *derived,
                               char *out, size_t cap);

/* 0 when server-final (raw) carries the server signature we expect, else -1. */
int roost_bench_scram_verify(const roost_bench_scram_t *s, const char *server_final, size_t len);

/* Standard base64 without newlines; returns the output length (NUL-terminated),
 * or 0 when cap is too small. */
size_t roost_bench_b64_encode(const void *in, size_t len, char *out, size_t cap);

/* Decodes base64 (whitespace not allowed); returns the length or -1. */
long roost_bench_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
