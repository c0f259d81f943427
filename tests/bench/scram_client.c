/* Client side of SCRAM-SHA-256 for roost-bench: client-first, client-final
 * from a cached or freshly derived salted password, server-final check. */
#include "tests/bench/scram_client.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

size_t roost_bench_b64_encode(const void *in, size_t len, char *out, size_t cap)
{
    if (cap < 4 * ((len + 2) / 3) + 1)
        return 0;
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

long roost_bench_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len % 4 != 0 || len / 4 * 3 > cap)
        return -1;
    if (len == 0)
        return 0;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0)
        return -1;
    /* EVP_DecodeBlock counts the bytes the padding stands for. */
    if (in[len - 1] == '=')
        n--;
    if (in[len - 2] == '=')
        n--;
    return n;
}

size_t roost_bench_scram_first(roost_bench_scram_t *s, const char *user,
                               char *out, size_t cap)
{
    uint8_t raw[18];
    char nonce[32];

    if (strpbrk(user, ",=") != NULL)
        return 0;
    /* The nonce only has to be unique; a CSPRNG is cheap at this size. */
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return 0;
    roost_bench_b64_encode(raw, sizeof(raw), nonce, sizeof(nonce));
    int n = snprintf(s->first_bare, sizeof(s->first_bare), "n=%s,r=%s", user, nonce);
    if (n < 0 || (size_t)n >= sizeof(s->first_bare))
        return 0;
    s->first_bare_len = (size_t)n;
    n = snprintf(out, cap, "n,,%s", s->first_bare);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}

/* Value of attribute "k=" at p (which must start with it), up to ',' or end. */
static const char *attr(const char *p, const char *end, char k, size_t *vlen)
{
    if (end - p < 2 || p[0] != k || p[1] != '=')
        return NULL;
    const char *v = p + 2, *c = memchr(v, ',', (size_t)(end - v));
    *vlen = (size_t)((c ? c : end) - v);
    return v;
}

static void hmac(const uint8_t *key, size_t klen, const void *msg, size_t mlen, uint8_t *out)
{
    unsigned int ol = 32;
    HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &ol);
}

size_t roost_bench_scram_final(roost_bench_scram_t *s, const char *password,
                               const char *sf, size_t len,
                               roost_bench_scram_cache_t *cache, int *derived,
                               char *out, size_t cap)
{
    const char *end = sf + len, *r, *salt64, *it;
    size_t rl, sl, il;
    uint8_t salt[ROOST_BENCH_SCRAM_SALT_MAX];
    char num[16];
    const char *cnonce = s->first_bare + s->first_bare_len;

    *derived = 0;
    if (!(r = attr(sf, end, 'r', &rl)) || r + rl >= end)
        return 0;
    if (!(salt64 = attr(r + rl + 1, end, 's', &sl)) || salt64 + sl >= end)
        return 0;
    if (!(it = attr(salt64 + sl + 1, end, 'i', &il)) || il == 0 || il >= sizeof(num))
        return 0;
    /* Our nonce is what follows ",r=" in first_bare; the server's must extend it. */
    const char *our = strstr(s->first_bare, ",r=");
    if (our == NULL)
        return 0;
    our += 3;
    size_t ourlen = (size_t)(cnonce - our);
    if (rl <= ourlen || memcmp(r, our, ourlen) != 0)
        return 0;
    long saltlen = roost_bench_b64_decode(salt64, sl, salt, sizeof(salt));
    if (saltlen <= 0)
        return 0;
    memcpy(num, it, il);
    num[il] = '\0';
    char *e;
    unsigned long iter = strtoul(num, &e, 10);
    if (*e != '\0' || iter == 0 || iter > ROOST_BENCH_SCRAM_ITER_MAX)
        return 0;

    if (!cache->valid || cache->iterations != iter || cache->salt_len != (size_t)saltlen ||
        memcmp(cache->salt, salt, (size_t)saltlen) != 0) {
        if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)saltlen, (int)iter,
                              EVP_sha256(), 32, cache->salted) != 1)
            return 0;
        memcpy(cache->salt, salt, (size_t)saltlen);
        cache->salt_len = (size_t)saltlen;
        cache->iterations = (uint32_t)iter;
        cache->valid = 1;
        *derived = 1;
    }

    /* client-final-without-proof, then AuthMessage beside it in out's tail. */
    char wp[200];
    int wl = snprintf(wp, sizeof(wp), "c=biws,r=%.*s", (int)rl, r);
    if (wl < 0 || (size_t)wl >= sizeof(wp))
        return 0;
    char am[600];
    int al = snprintf(am, sizeof(am), "%s,%.*s,%s", s->first_bare, (int)len, sf, wp);
    if (al < 0 || (size_t)al >= sizeof(am))
        return 0;

    uint8_t ckey[32], skey[32], stored[32], csig[32], proof[32];
    unsigned int dl = 32;
    hmac(cache->salted, 32, "Client Key", 10, ckey);
    EVP_Digest(ckey, 32, stored, &dl, EVP_sha256(), NULL);
    hmac(stored, 32, am, (size_t)al, csig);
    for (int i = 0; i < 32; i++)
        proof[i] = ckey[i] ^ csig[i];
    hmac(cache->salted, 32, "Server Key", 10, skey);
    hmac(skey, 32, am, (size_t)al, s->server_sig);

    char p64[48];
    roost_bench_b64_encode(proof, 32, p64, sizeof(p64));
    int n = snprintf(out, cap, "%s,p=%s", wp, p64);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}

int roost_bench_scram_verify(const roost_bench_scram_t *s, const char *sfin, size_t len)
{
    size_t vl;
    uint8_t sig[48];
    const char *v = attr(sfin, sfin + len, 'v', &vl);

    if (v == NULL || roost_bench_b64_decode(v, vl, sig, sizeof(sig)) != 32)
        return -1;
    return memcmp(sig, s->server_sig, 32) == 0 ? 0 : -1;
}
