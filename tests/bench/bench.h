/* roost-bench internals shared by its files: options, the current phase's
 * state and the simulated clients (bench_client.c). */
#ifndef ROOST_BENCH_H
#define ROOST_BENCH_H

#include <expat.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tests/bench/scram_client.h"

#define MAX_PORTS 8
#define MAX_PIDS 8
#define MAX_SCEN 16
#define TEXT_MAX 512
#define SEEN_MAX (1u << 24)     /* sequence numbers tracked per receiver */
#define LAT_MAX (8u << 20)      /* latency samples kept per phase */

typedef enum { SC_LOGIN, SC_IDLE, SC_WINDOW, SC_RATE } scen_kind_t;

typedef struct {
    scen_kind_t kind;
    unsigned n;          /* users / connections */
    unsigned param;      /* window size or total msgs/s */
    unsigned secs;       /* send duration, or idle hold */
    unsigned ports;      /* idle: connect to the first this many ports only (0 = all) */
} scen_t;

typedef struct {
    const char *redis_url;
    const char *host;
    const char *domain;
    const char *password;
    const char *prefix;
    int ports[MAX_PORTS];
    unsigned n_ports;
    unsigned use_ports;  /* ports the current phase spreads clients over */
    int node_pids[MAX_PIDS];
    unsigned n_node_pids;
    int redis_pid;
    unsigned sources;
    unsigned inflight;
    unsigned phase_timeout_s;
    unsigned setup_workers;
    int presence;
    int setup;
    scen_t scen[MAX_SCEN];
    unsigned n_scen;
} bench_opts_t;

extern bench_opts_t opt;

/* A client's progress through login, then ONLINE until closed. */
typedef enum {
    ST_NEW, ST_CONNECTING, ST_FEAT1, ST_CHALLENGE, ST_SUCCESS, ST_FEAT2, ST_BIND,
    ST_AVAIL, ST_ONLINE, ST_CLOSING, ST_CLOSED,
} state_t;

typedef enum { EL_OTHER, EL_FEATURES, EL_CHALLENGE, EL_SUCCESS, EL_FAILURE, EL_IQ,
               EL_MESSAGE, EL_PRESENCE, EL_ERROR } el_t;

typedef enum { CAP_NONE, CAP_SASL, CAP_JID, CAP_BODY } cap_t;

typedef struct client_s {
    uv_tcp_t tcp;
    uv_connect_t creq;
    XML_Parser xp;
    unsigned slot;           /* index in the phase's client array = user index */
    state_t state;
    unsigned level;
    el_t el;
    cap_t cap;
    int in_parse;
    int want_reset;
    int counted;             /* the login outcome was recorded */
    char id[24];
    char type[12];
    size_t tlen;
    char text[TEXT_MAX];
    char jid[96];
    roost_bench_scram_t scram;
    uint64_t t_start;
    /* messaging */
    struct client_s *partner;
    uint32_t next_seq;
    uint32_t inflight;
    uint8_t *seen;
    size_t seen_bytes;
} bench_client_t;

/* The current phase. */
typedef struct {
    bench_client_t *c;
    unsigned n;
    unsigned next;           /* next client to start */
    unsigned active;         /* logins in flight */
    unsigned ok, failed, open;
    unsigned derived;
    int pumping;
    uint64_t *lat;           /* login latencies (ns) */
    uint64_t t_last;
    const char *why[8];      /* failure reasons (first few kinds) */
    unsigned why_n[8];
    unsigned dropped;        /* online clients the server disconnected */
    /* messages */
    int sending;
    int window;
    uint64_t sent, recvd, dup, errors, unknown;
    uint64_t *mlat;
    size_t mlat_n, mlat_cap;
    uint64_t t_recv_last;
} bench_phase_t;

extern bench_phase_t ph;
extern uv_loop_t *loop;
extern roost_bench_scram_cache_t *cache;   /* one per user, kept across phases */

/* Starts logins while fewer than opt.inflight are under way. */
void bench_pump(void);
/* Closes c (idempotent); its memory stays in ph.c, the handle closes async. */
void bench_client_close(bench_client_t *c);
/* Counts a failure (login or drop) for why and closes c. */
void bench_client_fail(bench_client_t *c, const char *why);
/* Queues bytes on c's socket (copied when the kernel does not take them all). */
void bench_send_raw(bench_client_t *c, const char *s, size_t n);
/* The localpart of bench user i (prefix + 5 digits). */
void bench_user_name(unsigned i, char *out, size_t cap);
/* Sends c's next sequence-numbered, timestamped chat message to its partner. */
void bench_send_msg(bench_client_t *c);

#endif
