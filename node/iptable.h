/* Per-client-address accounting for the connection limits: live
 * connections, a token bucket of new connections, and failed
 * authentications for the tarpit. Pure (time is passed in) and bounded:
 * entries of addresses without a live connection are kept at most
 * max_idle, oldest dropped first, and forgotten once they carry no state. */
#ifndef ROOST_IPTABLE_H
#define ROOST_IPTABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct roost_iptable_s roost_iptable_t;

typedef struct {
    unsigned max_conns;       /* live connections per address; 0 = no limit */
    unsigned rate;            /* new connections per second per address, with a
                                 burst of as many; 0 = no limit */
    unsigned tarpit_after;    /* failed authentications answered at once */
    unsigned tarpit_delay_ms; /* delay of the next failure, doubling with each
                                 further one; 0 = no tarpit */
    unsigned tarpit_max_ms;   /* the delay's cap */
    unsigned tarpit_forget_s; /* no failure for this long: the count restarts */
    size_t max_idle;          /* entries kept for addresses with no connection */
} roost_iptable_opts_t;

/* The address a limit counts: an IPv4 address, or the /64 prefix of an IPv6
 * one (a single host or subscriber usually holds a whole /64, so counting
 * single IPv6 addresses would not limit anybody). */
typedef struct {
    uint8_t b[16];
} roost_ipkey_t;

/* family AF_INET (addr: 4 bytes) or AF_INET6 (16 bytes; IPv4-mapped
 * addresses count as IPv4). */
void roost_ipkey_make(roost_ipkey_t *k, int family, const uint8_t *addr);

enum {
    ROOST_IPTABLE_OK = 0,
    ROOST_IPTABLE_TOO_MANY = 1,   /* max_conns live connections already */
    ROOST_IPTABLE_TOO_FAST = 2,   /* the bucket is empty */
};

/* opts copied. NULL on ENOMEM. */
roost_iptable_t *roost_iptable_new(const roost_iptable_opts_t *opts);
void roost_iptable_free(roost_iptable_t *t);
/* Replaces the limits (entries are kept). */
void roost_iptable_set_opts(roost_iptable_t *t, const roost_iptable_opts_t *opts);

/* A new connection from k at now_ms. ROOST_IPTABLE_OK: it is counted and
 * roost_iptable_conn_closed must follow exactly once. TOO_FAST (checked
 * first: every attempt spends a token) or TOO_MANY: refused, not counted.
 * ROOST_ENOMEM: no entry could be made; not counted either, and the caller
 * decides (roost lets the connection in rather than fail everyone). */
int roost_iptable_conn_open(roost_iptable_t *t, const roost_ipkey_t *k, uint64_t now_ms);
void roost_iptable_conn_closed(roost_iptable_t *t, const roost_ipkey_t *k, uint64_t now_ms);

/* Records a failed authentication from k; returns how many milliseconds to
 * hold back the answer (0: answer now). */
unsigned roost_iptable_auth_failed(roost_iptable_t *t, const roost_ipkey_t *k, uint64_t now_ms);

/* Entries held (live and idle), and live connections of k. */
size_t roost_iptable_size(const roost_iptable_t *t);
unsigned roost_iptable_conns(const roost_iptable_t *t, const roost_ipkey_t *k);

#endif
