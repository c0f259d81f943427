/* Per-address table behind the connection limits and the tarpit. Peers pick
 * the keys, so the hash is SipHash-2-4 under a random key (no precomputed
 * collisions), and memory is bounded: an entry with live connections is
 * bounded by the connections themselves; the others sit on an LRU list
 * capped at max_idle and are dropped as soon as they hold nothing that
 * would change the next answer. */
#include "node/iptable.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <openssl/rand.h>

#include "store/error.h"

/* Expired entries looked at per call: amortized cleanup, bounded work. */
#define SWEEP_PER_CALL 4
#define MIN_BUCKETS 64

typedef struct entry_s {
    roost_ipkey_t key;
    struct entry_s *hnext;
    struct entry_s *prev, *next;   /* idle LRU list (conns == 0 only) */
    uint32_t conns;
    uint32_t failures;
    uint64_t tokens;               /* thousandths of a connection */
    uint64_t fill_ms;              /* when tokens was last brought up to date */
    uint64_t fail_ms;              /* last failed authentication */
} entry_t;

struct roost_iptable_s {
    roost_iptable_opts_t o;
    uint64_t k0, k1;
    entry_t **buckets;
    size_t n_buckets;              /* power of two */
    size_t n_entries;
    size_t n_idle;
    entry_t *idle_head, *idle_tail;   /* head = least recently used */
};

/* ---- SipHash-2-4 of a 16-byte key --------------------------------------- */

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                        \
    do {                                                                \
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);       \
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                          \
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                          \
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);       \
    } while (0)

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t siphash16(uint64_t k0, uint64_t k1, const uint8_t *in)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    uint64_t m, b = (uint64_t)16 << 56;

    for (int i = 0; i < 2; i++) {
        m = le64(in + 8 * i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- keys ---------------------------------------------------------------- */

void roost_ipkey_make(roost_ipkey_t *k, int family, const uint8_t *addr)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    memset(k, 0, sizeof(*k));
    if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
        family = AF_INET;
        addr += 12;
    }
    if (family == AF_INET) {
        memcpy(k->b, mapped, 12);
        memcpy(k->b + 12, addr, 4);
    } else {
        memcpy(k->b, addr, 8);
    }
}

/* ---- table --------------------------------------------------------------- */

roost_iptable_t *roost_iptable_new(const roost_iptable_opts_t *opts)
{
    roost_iptable_t *t = calloc(1, sizeof(*t));
    uint8_t key[16];

    if (t == NULL)
        return NULL;
    t->o = *opts;
    t->n_buckets = MIN_BUCKETS;
    t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
    if (t->buckets == NULL || RAND_bytes(key, sizeof(key)) != 1) {
        free(t->buckets);
        free(t);
        return NULL;
    }
    t->k0 = le64(key);
    t->k1 = le64(key + 8);
    return t;
}

void roost_iptable_free(roost_iptable_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        entry_t *e = t->buckets[i], *n;
        for (; e != NULL; e = n) {
            n = e->hnext;
            free(e);
        }
    }
    free(t->buckets);
    free(t);
}

void roost_iptable_set_opts(roost_iptable_t *t, const roost_iptable_opts_t *opts)
{
    t->o = *opts;
}

size_t roost_iptable_size(const roost_iptable_t *t)
{
    return t->n_entries;
}

static size_t slot(const roost_iptable_t *t, const roost_ipkey_t *k)
{
    return (size_t)siphash16(t->k0, t->k1, k->b) & (t->n_buckets - 1);
}

static entry_t *find(const roost_iptable_t *t, const roost_ipkey_t *k)
{
    for (entry_t *e = t->buckets[slot(t, k)]; e != NULL; e = e->hnext)
        if (memcmp(e->key.b, k->b, sizeof(k->b)) == 0)
            return e;
    return NULL;
}

static void idle_unlink(roost_iptable_t *t, entry_t *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        t->idle_head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        t->idle_tail = e->prev;
    e->prev = e->next = NULL;
    t->n_idle--;
}

static void idle_append(roost_iptable_t *t, entry_t *e)
{
    e->prev = t->idle_tail;
    e->next = NULL;
    if (t->idle_tail != NULL)
        t->idle_tail->next = e;
    else
        t->idle_head = e;
    t->idle_tail = e;
    t->n_idle++;
}

static void drop(roost_iptable_t *t, entry_t *e)
{
    entry_t **pp = &t->buckets[slot(t, &e->key)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->conns == 0)
        idle_unlink(t, e);
    t->n_entries--;
    free(e);
}

/* An idle entry says nothing anymore once its bucket would be full again
 * (the burst equals one second's rate, so one second after the last
 * connection) and its failures are forgotten. */
static int expired(const roost_iptable_t *t, const entry_t *e, uint64_t now)
{
    if (e->conns != 0)
        return 0;
    if (now < e->fill_ms + 1000)
        return 0;
    if (e->failures > 0 && now < e->fail_ms + (uint64_t)t->o.tarpit_forget_s * 1000u)
        return 0;
    return 1;
}

static void sweep(roost_iptable_t *t, uint64_t now)
{
    for (int i = 0; i < SWEEP_PER_CALL && t->idle_head != NULL; i++) {
        if (!expired(t, t->idle_head, now))
            break;
        drop(t, t->idle_head);
    }
    /* The cap, whatever the entries still hold: the oldest go first. */
    while (t->n_idle > t->o.max_idle && t->idle_head != NULL)
        drop(t, t->idle_head);
}

static void grow(roost_iptable_t *t)
{
    size_t n = t->n_buckets * 2;
    entry_t **b = calloc(n, sizeof(*b));

    /* Without memory the chains just get longer. */
    if (b == NULL)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        entry_t *e = t->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->hnext;
            size_t s = (size_t)siphash16(t->k0, t->k1, e->key.b) & (n - 1);
            e->hnext = b[s];
            b[s] = e;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = n;
}

/* The entry for k, made (idle, with a full bucket) if absent. */
static entry_t *get(roost_iptable_t *t, const roost_ipkey_t *k, uint64_t now)
{
    entry_t *e;
    size_t s;

    sweep(t, now);
    e = find(t, k);
    if (e != NULL)
        return e;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->key = *k;
    e->tokens = (uint64_t)t->o.rate * 1000u;
    e->fill_ms = now;
    if (t->n_entries >= t->n_buckets)
        grow(t);
    s = slot(t, k);
    e->hnext = t->buckets[s];
    t->buckets[s] = e;
    t->n_entries++;
    idle_append(t, e);
    return e;
}

/* Moves e to the most recently used end of the idle list (or keeps it off
 * the list while it has connections), then applies the idle cap. */
static void touch(roost_iptable_t *t, entry_t *e)
{
    if (e->conns != 0)
        return;
    idle_unlink(t, e);
    idle_append(t, e);
    while (t->n_idle > t->o.max_idle && t->idle_head != NULL && t->idle_head != e)
        drop(t, t->idle_head);
    if (t->n_idle > t->o.max_idle)
        drop(t, e);
}

int roost_iptable_conn_open(roost_iptable_t *t, const roost_ipkey_t *k, uint64_t now_ms)
{
    entry_t *e = get(t, k, now_ms);
    uint64_t cap = (uint64_t)t->o.rate * 1000u;
    int rc = ROOST_IPTABLE_OK;

    if (e == NULL)
        return ROOST_ENOMEM;
    if (t->o.rate > 0) {
        /* rate tokens a second is rate thousandths a millisecond. */
        if (now_ms > e->fill_ms) {
            uint64_t add = (now_ms - e->fill_ms) * t->o.rate;
            e->tokens = add >= cap || e->tokens + add >= cap ? cap : e->tokens + add;
        }
        e->fill_ms = now_ms;
        if (e->tokens < 1000)
            rc = ROOST_IPTABLE_TOO_FAST;
        else
            e->tokens -= 1000;
    }
    if (rc == ROOST_IPTABLE_OK && t->o.max_conns > 0 && e->conns >= t->o.max_conns)
        rc = ROOST_IPTABLE_TOO_MANY;
    if (rc != ROOST_IPTABLE_OK) {
        touch(t, e);
        return rc;
    }
    if (e->conns++ == 0)
        idle_unlink(t, e);
    return ROOST_IPTABLE_OK;
}

void roost_iptable_conn_closed(roost_iptable_t *t, const roost_ipkey_t *k, uint64_t now_ms)
{
    entry_t *e = find(t, k);

    if (e == NULL || e->conns == 0)
        return;
    if (--e->conns == 0) {
        idle_append(t, e);
        touch(t, e);
    }
    sweep(t, now_ms);
}

unsigned roost_iptable_auth_failed(roost_iptable_t *t, const roost_ipkey_t *k, uint64_t now_ms)
{
    entry_t *e;
    unsigned n;
    uint64_t d;

    if (t->o.tarpit_delay_ms == 0)
        return 0;
    e = get(t, k, now_ms);
    if (e == NULL)
        return 0;
    if (e->failures > 0 && now_ms >= e->fail_ms + (uint64_t)t->o.tarpit_forget_s * 1000u)
        e->failures = 0;
    if (e->failures < UINT32_MAX)
        e->failures++;
    e->fail_ms = now_ms;
    n = e->failures;
    touch(t, e);
    if (n <= t->o.tarpit_after)
        return 0;
    n -= t->o.tarpit_after + 1;
    d = n >= 32 ? t->o.tarpit_max_ms : (uint64_t)t->o.tarpit_delay_ms << n;
    return d > t->o.tarpit_max_ms ? t->o.tarpit_max_ms : (unsigned)d;
}

unsigned roost_iptable_conns(const roost_iptable_t *t, const roost_ipkey_t *k)
{
    const entry_t *e = find(t, k);
    return e != NULL ? e->conns : 0;
}
