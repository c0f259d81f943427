/* roost-bench: a libuv load tool for roost. Logs many SCRAM clients in across
 * node ports and 127.0.0.x source addresses, drives cross-node chat traffic,
 * and prints throughput, latency, server CPU per operation and RSS per idle
 * connection. It reports figures only; it asserts nothing about time. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/admin.h"
#include "store/error.h"
#include "store/jid.h"
#include "tests/bench/bench.h"

#define MAX_ROWS 32
#define MAX_CMDS 48             /* distinct Redis commands tracked per sample */
#define MAX_USERS 100000
#define MAX_SOURCES 250
#define DRAIN_MS 10000          /* wait for in-flight messages after sending stops */
#define SETTLE_MS 1000
#define CLOSE_WAIT_MS 30000     /* for the nodes to drop every session */
#define QUIET_MS 500            /* no Redis: the window a quiet server is judged over */

/* ---- options ------------------------------------------------------------ */

bench_opts_t opt = {
    .host = "127.0.0.1",
    .domain = "localhost",
    .password = "bench-password",
    .prefix = "bench",
    .sources = 8,
    .inflight = 200,
    .phase_timeout_s = 60,
    .setup_workers = 2,
    .presence = 1,
    .setup = 1,
};

bench_phase_t ph;
uv_loop_t *loop;
roost_bench_scram_cache_t *cache;
static roost_admin_t *admin;

/* ---- process figures from /proc ------------------------------------------ */

typedef struct {
    uint64_t node_ticks;
    uint64_t redis_ticks;
    uint64_t self_us;
    long long redis_calls;     /* commands executed, -1 unknown */
    unsigned n_cmd;            /* per-command counts (cmdstat_<name>) */
    char cmd[MAX_CMDS][32];
    long long cmd_calls[MAX_CMDS];
} cpu_t;

static uint64_t proc_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm may hold spaces; fields restart after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return 0;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return ut + st;
}

static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static long long redis_calls(cpu_t *c);

/* CPU so far of the nodes, redis and this tool, and Redis' command count. */
static cpu_t cpu_sample(void)
{
    cpu_t c;
    struct rusage ru;
    memset(&c, 0, sizeof(c));
    c.redis_calls = redis_calls(&c);
    for (unsigned i = 0; i < opt.n_node_pids; i++)
        c.node_ticks += proc_ticks(opt.node_pids[i]);
    if (opt.redis_pid > 0)
        c.redis_ticks = proc_ticks(opt.redis_pid);
    getrusage(RUSAGE_SELF, &ru);
    c.self_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
                (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
    return c;
}

static long rss_start_kb[MAX_PIDS];   /* each node's RSS before the first phase */

static long nodes_rss_kb(void)
{
    long sum = 0;
    for (unsigned i = 0; i < opt.n_node_pids; i++) {
        long kb = proc_rss_kb(opt.node_pids[i]);
        if (kb < 0)
            return -1;
        sum += kb;
    }
    return sum;
}

static double ticks_us(uint64_t t)
{
    static long hz;
    if (hz == 0)
        hz = sysconf(_SC_CLK_TCK);
    return (double)t * 1e6 / (double)(hz > 0 ? hz : 100);
}

/* ---- results table ------------------------------------------------------- */

typedef struct {
    char name[48];
    uint64_t ok, bad, dup;     /* logins ok/failed, or msgs delivered/lost/duplicated */
    double wall_s, rate;
    double p50, p90, p99, pmax;  /* ms */
    double srv_us, node_us, redis_us, cli_us;   /* CPU per op */
    double rcmds;              /* Redis commands per op, -1 unknown */
    char note[96];
} row_t;

static row_t rows[MAX_ROWS];
static unsigned n_rows;
static char rss_lines[4][400];
static unsigned n_rss;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)((double)n * p / 100.0);
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1e6;
}

static row_t *row_add(const char *name, uint64_t *lat, size_t n_lat, uint64_t ops,
                      const cpu_t *c0, const cpu_t *c1)
{
    if (n_rows >= MAX_ROWS)
        return NULL;
    row_t *r = &rows[n_rows++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    qsort(lat, n_lat, sizeof(*lat), cmp_u64);
    r->p50 = pct_ms(lat, n_lat, 50);
    r->p90 = pct_ms(lat, n_lat, 90);
    r->p99 = pct_ms(lat, n_lat, 99);
    r->pmax = n_lat ? (double)lat[n_lat - 1] / 1e6 : 0;
    if (ops > 0) {
        r->node_us = ticks_us(c1->node_ticks - c0->node_ticks) / (double)ops;
        r->redis_us = ticks_us(c1->redis_ticks - c0->redis_ticks) / (double)ops;
        r->srv_us = r->node_us + r->redis_us;
        r->cli_us = (double)(c1->self_us - c0->self_us) / (double)ops;
    }
    r->rcmds = -1;
    /* -1 for the INFO call of the second sample itself, which is not counted
     * (cmdstat_info is skipped) but the first sample's link is a HELLO-less
     * connect: nothing else to correct. */
    if (ops > 0 && c0->redis_calls >= 0 && c1->redis_calls >= c0->redis_calls)
        r->rcmds = (double)(c1->redis_calls - c0->redis_calls) / (double)ops;
    /* Which commands (scripts' inner calls included): on stderr, for the
     * capacity model. */
    if (ops > 0 && c1->n_cmd > 0) {
        fprintf(stderr, "redis commands per op, %s:", name);
        for (unsigned i = 0; i < c1->n_cmd; i++) {
            long long before = 0;
            for (unsigned j = 0; j < c0->n_cmd; j++)
                if (strcmp(c0->cmd[j], c1->cmd[i]) == 0)
                    before = c0->cmd_calls[j];
            if (c1->cmd_calls[i] > before)
                fprintf(stderr, " %s %.2f", c1->cmd[i],
                        (double)(c1->cmd_calls[i] - before) / (double)ops);
        }
        fprintf(stderr, "\n");
    }
    return r;
}

static void row_print(FILE *f, const row_t *r)
{
    fprintf(f, "%-30s %8" PRIu64 " %6" PRIu64 " %4" PRIu64 " %7.2f %9.0f %8.2f %8.2f %8.2f %8.2f"
               " %9.1f %8.1f %8.1f %9.1f %6.2f  %s\n",
            r->name, r->ok, r->bad, r->dup, r->wall_s, r->rate, r->p50, r->p90, r->p99, r->pmax,
            r->srv_us, r->node_us, r->redis_us, r->cli_us, r->rcmds, r->note);
}

static void table_print(void)
{
    printf("\nroost-bench: %u node(s), ports", opt.n_node_pids);
    for (unsigned i = 0; i < opt.n_ports; i++)
        printf(" %d", opt.ports[i]);
    printf(", %u source addresses, %u logins in flight, SCRAM-SHA-256 (cached salted password)%s\n",
           opt.sources, opt.inflight, opt.presence ? ", login = bind + initial presence echo" : "");
    printf("latencies in ms; CPU in us per operation (srv = nodes + redis, from /proc; cli = this "
           "tool); rcmds = Redis commands per operation (INFO commandstats)%s\n"
           "ok/fail: logins, or messages delivered/lost; dup: duplicated messages\n\n",
           opt.redis_url ? "" : "; no Redis: nodes = the server process(es) given by --node-pid");
    printf("%-30s %8s %6s %4s %7s %9s %8s %8s %8s %8s %9s %8s %8s %9s %6s  %s\n",
           "scenario", "ok", "fail", "dup", "wall_s", "ops/s", "p50", "p90", "p99", "max",
           "srvCPU", "nodes", "redis", "cliCPU", "rcmds", "notes");
    for (unsigned i = 0; i < n_rows; i++)
        row_print(stdout, &rows[i]);
    for (unsigned i = 0; i < n_rss; i++)
        printf("%s\n", rss_lines[i]);
    fflush(stdout);
}

/* ---- running the loop with bounds ----------------------------------------- */

static int (*run_cond)(void);
static uint64_t run_deadline;

static void on_check(uv_timer_t *t)
{
    if ((run_cond != NULL && run_cond()) || uv_now(loop) >= run_deadline)
        uv_stop(t->loop);
}

/* Runs the loop until cond() holds or ms pass; returns 1 when cond held. */
static int run_until(int (*cond)(void), uint64_t ms)
{
    uv_timer_t t;
    uv_update_time(loop);
    run_cond = cond;
    run_deadline = uv_now(loop) + ms;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_check, 5, 5);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return cond != NULL && cond();
}

static int logins_done(void) { return ph.next >= ph.n && ph.active == 0; }
static int all_closed(void) { return ph.open == 0; }

/* Sessions the cluster holds (from its Redis), or -1 when unknown: no Redis
 * given (a peer server measured with --no-setup), or it did not answer. */
static long long server_sessions(void)
{
    roost_admin_node_t *nodes;
    size_t n;
    long long sum = 0;
    if (admin == NULL || roost_admin_node_list(admin, &nodes, &n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (nodes[i].alive)
            sum += nodes[i].sessions;
    free(nodes);
    return sum;
}

/* Runs INFO section on a short-lived link of our own (the admin API has no
 * raw command); returns the malloc'd text or NULL. */
static char *redis_info(const char *section)
{
    roost_redis_url_t u;
    char *out = NULL;
    if (opt.redis_url == NULL || roost_admin_url_parse(opt.redis_url, &u) < 0)
        return NULL;
    struct timeval tv = { 2, 0 };
    redisContext *rc = redisConnectWithTimeout(u.host, u.port, tv);
    if (rc != NULL && !rc->err) {
        redisSetTimeout(rc, tv);
        redisReply *r = NULL;
        if (u.password != NULL)
            r = u.user ? redisCommand(rc, "AUTH %s %s", u.user, u.password)
                       : redisCommand(rc, "AUTH %s", u.password);
        if (r != NULL)
            freeReplyObject(r);
        r = redisCommand(rc, "INFO %s", section);
        if (r != NULL && r->type == REDIS_REPLY_STRING)
            out = strdup(r->str);
        if (r != NULL)
            freeReplyObject(r);
    }
    if (rc != NULL)
        redisFree(rc);
    roost_admin_url_clear(&u);
    return out;
}

/* used_memory in bytes, or -1. */
static long long redis_used_memory(void)
{
    char *t = redis_info("memory");
    long long v = -1;
    const char *p = t ? strstr(t, "used_memory:") : NULL;
    if (p != NULL)
        v = strtoll(p + 12, NULL, 10);
    free(t);
    return v;
}

/* Commands Redis has executed (sum of commandstats calls, INFO and the
 * admin's own listing excluded), or -1. */
static long long redis_calls(cpu_t *out)
{
    char *t = redis_info("commandstats");
    long long sum = 0;
    if (t == NULL)
        return -1;
    for (char *line = strtok(t, "\r\n"); line != NULL; line = strtok(NULL, "\r\n")) {
        const char *c = strstr(line, ":calls=");
        if (strncmp(line, "cmdstat_", 8) != 0 || c == NULL || strncmp(line, "cmdstat_info:", 13) == 0)
            continue;
        long long v = strtoll(c + 7, NULL, 10);
        sum += v;
        size_t nl = (size_t)(c - line) - 8;
        if (out->n_cmd < MAX_CMDS && nl < sizeof(out->cmd[0])) {
            memcpy(out->cmd[out->n_cmd], line + 8, nl);
            out->cmd[out->n_cmd][nl] = '\0';
            out->cmd_calls[out->n_cmd++] = v;
        }
    }
    free(t);
    return sum;
}

/* Logs clients 0..n-1 in; returns the phase's figures through ph. */
static void phase_begin(unsigned n)
{
    free(ph.lat);
    free(ph.mlat);
    memset(&ph, 0, sizeof(ph));
    ph.c = calloc(n, sizeof(*ph.c));
    ph.lat = calloc(n ? n : 1, sizeof(*ph.lat));
    if (ph.c == NULL || ph.lat == NULL) {
        fprintf(stderr, "roost-bench: out of memory\n");
        exit(1);
    }
    ph.n = n;
    for (unsigned i = 0; i < n; i++)
        ph.c[i].slot = i;
}

static void logins_run(void)
{
    bench_pump();
    if (!run_until(logins_done, (uint64_t)opt.phase_timeout_s * 1000u)) {
        /* Hard deadline: whatever did not finish counts as failed, and
         * nothing new starts (bench_pump() sees no client left). */
        unsigned unstarted = ph.n - ph.next;
        ph.next = ph.n;
        for (unsigned i = 0; i < ph.n; i++)
            if (ph.c[i].state > ST_NEW && ph.c[i].state < ST_ONLINE)
                bench_client_fail(&ph.c[i], "phase deadline");
        ph.failed += unstarted;
    }
}

static void failure_note(char *out, size_t cap)
{
    size_t off = strlen(out);
    for (unsigned i = 0; i < 8 && ph.why[i] != NULL && off < cap; i++) {
        int k = snprintf(out + off, cap - off, "%s%s x%u", off ? "; " : "", ph.why[i], ph.why_n[i]);
        if (k < 0)
            break;
        off += (size_t)k;
    }
}

/* Without a session count (no Redis): waits until the server processes use
 * under 5% of a core over QUIET_MS, i.e. have finished the logouts, or
 * until end; 1 when they went quiet. */
static int nodes_quiet(uint64_t end)
{
    uint64_t prev = 0;
    int first = 1;
    for (;;) {
        uint64_t t = 0;
        for (unsigned i = 0; i < opt.n_node_pids; i++)
            t += proc_ticks(opt.node_pids[i]);
        if (!first && ticks_us(t - prev) <= QUIET_MS * 1000.0 * 0.05)
            return 1;
        first = 0;
        prev = t;
        uv_update_time(loop);
        if (uv_now(loop) >= end)
            return 0;
        usleep(QUIET_MS * 1000);
    }
}

/* Closes every connection and waits for the nodes to drop their sessions,
 * so the next phase starts from an empty cluster. */
static void phase_end(void)
{
    for (unsigned i = 0; i < ph.n; i++) {
        bench_client_t *c = &ph.c[i];
        if (c->state >= ST_FEAT1 && c->state < ST_CLOSING)
            bench_send_raw(c, "</stream:stream>", 16);
        bench_client_close(c);
    }
    run_until(all_closed, 10000);
    uv_update_time(loop);
    uint64_t end = uv_now(loop) + CLOSE_WAIT_MS;
    if (admin != NULL) {
        long long s;
        while ((s = server_sessions()) > 0 && uv_now(loop) < end) {
            usleep(100000);
            uv_update_time(loop);
        }
        if (s != 0)
            fprintf(stderr, "roost-bench: %lld sessions still bound after the phase\n", s);
    } else if (!nodes_quiet(end)) {
        fprintf(stderr, "roost-bench: the server was still busy %d s after the phase\n",
                CLOSE_WAIT_MS / 1000);
    }
    if (ph.open == 0) {
        free(ph.c);
        ph.c = NULL;
    } else {
        fprintf(stderr, "roost-bench: %u connections did not close; leaking them\n", ph.open);
    }
}

static void login_row(const char *name, const cpu_t *c0, const cpu_t *c1, uint64_t t0)
{
    row_t *r = row_add(name, ph.lat, ph.ok, ph.ok, c0, c1);
    if (r == NULL)
        return;
    r->ok = ph.ok;
    r->bad = ph.failed;
    r->wall_s = ph.t_last > t0 ? (double)(ph.t_last - t0) / 1e9 : 0;
    r->rate = r->wall_s > 0 ? (double)ph.ok / r->wall_s : 0;
    if (ph.derived > 0)
        snprintf(r->note, sizeof(r->note), "cold: %u PBKDF2 derivations", ph.derived);
    else
        snprintf(r->note, sizeof(r->note), "cached salted passwords");
    failure_note(r->note, sizeof(r->note));
    row_print(stderr, r);
}

/* Sum over the nodes of RSS now minus RSS before the first phase: freed
 * memory that a later phase reuses does not hide in a per-phase delta. */
static long nodes_rss_growth_kb(void)
{
    long sum = 0;
    for (unsigned i = 0; i < opt.n_node_pids; i++) {
        long kb = proc_rss_kb(opt.node_pids[i]);
        if (kb < 0 || rss_start_kb[i] < 0)
            return -1;
        sum += kb - rss_start_kb[i];
    }
    return sum;
}

static void scen_login(const scen_t *s)
{
    char name[48];
    opt.use_ports = s->kind == SC_IDLE && s->ports > 0 && s->ports < opt.n_ports ? s->ports : 0;
    phase_begin(s->n);
    long rss0 = nodes_rss_kb(), rrss0 = opt.redis_pid > 0 ? proc_rss_kb(opt.redis_pid) : -1;
    long long um0 = s->kind == SC_IDLE ? redis_used_memory() : -1;
    cpu_t c0 = cpu_sample();
    uint64_t t0 = uv_hrtime();
    logins_run();
    cpu_t c1 = cpu_sample();
    if (opt.use_ports)
        snprintf(name, sizeof(name), "login %u (%u in flight, %u node%s)", s->n, opt.inflight,
                 opt.use_ports, opt.use_ports > 1 ? "s" : "");
    else
        snprintf(name, sizeof(name), "login %u (%u in flight)", s->n, opt.inflight);
    login_row(name, &c0, &c1, t0);

    if (s->kind == SC_IDLE) {
        /* Let the loops settle (presence fan-out, allocator) before reading
         * RSS; the second half of the hold also gives the idle CPU cost. */
        run_until(NULL, (uint64_t)s->secs * 500u);
        cpu_t i0 = cpu_sample();
        uint64_t ti = uv_hrtime();
        run_until(NULL, (uint64_t)s->secs * 500u);
        cpu_t i1 = cpu_sample();
        double idle_s = (double)(uv_hrtime() - ti) / 1e9;
        long rss1 = nodes_rss_kb(), rrss1 = opt.redis_pid > 0 ? proc_rss_kb(opt.redis_pid) : -1;
        long grown = nodes_rss_growth_kb();
        long long um1 = redis_used_memory();
        long long sess = server_sessions();
        char sess_s[40] = "";
        if (sess >= 0)
            snprintf(sess_s, sizeof(sess_s), " (%lld sessions)", sess);
        char redis_s[120] = "";
        if (opt.redis_url != NULL)
            snprintf(redis_s, sizeof(redis_s), "redis RSS %ld -> %ld kB, used_memory %.2f kB per "
                     "session; ", rrss0, rrss1,
                     um0 >= 0 && um1 >= 0 ? (double)(um1 - um0) / 1024.0 / ph.ok : -1.0);
        if (n_rss < 4 && ph.ok > 0 && rss0 >= 0 && rss1 >= 0) {
            snprintf(rss_lines[n_rss++], sizeof(rss_lines[0]),
                     "idle: %u connections on %u node(s)%s: node RSS %ld -> %ld kB"
                     " = %.2f kB per connection (%.2f kB counting all growth since start); "
                     "%sserver CPU while idle %.1f ms/s",
                     ph.ok, opt.use_ports ? opt.use_ports : opt.n_ports, sess_s, rss0, rss1,
                     (double)(rss1 - rss0) / ph.ok,
                     grown >= 0 ? (double)grown / ph.ok : -1.0, redis_s,
                     idle_s > 0 ? (ticks_us(i1.node_ticks + i1.redis_ticks - i0.node_ticks -
                                            i0.redis_ticks) / 1000.0 / idle_s) : 0.0);
            fprintf(stderr, "%s\n", rss_lines[n_rss - 1]);
        }
    }
    phase_end();
}

static void on_rate_tick(uv_timer_t *t)
{
    static unsigned rr;
    uint64_t *ctx = t->data;      /* [0] t0 ns, [1] rate, [2] end ns */
    uint64_t now = uv_hrtime();
    if (!ph.sending)
        return;
    if (now >= ctx[2]) {
        ph.sending = 0;
        uv_timer_stop(t);
        return;
    }
    uint64_t due = (now - ctx[0]) * ctx[1] / 1000000000u;
    /* A bounded burst per tick keeps the loop reading while catching up. */
    for (unsigned k = 0; ph.sent < due && k < 4000; k++) {
        bench_client_t *c = &ph.c[rr++ % ph.n];
        if (c->state == ST_ONLINE)
            bench_send_msg(c);
    }
}

static void on_window_end(uv_timer_t *t)
{
    (void)t;
    ph.sending = 0;
}

static int drained(void) { return !ph.sending && ph.recvd + ph.errors >= ph.sent; }

static void scen_messages(const scen_t *s)
{
    char name[64];
    unsigned n = s->n & ~1u;
    opt.use_ports = 0;         /* partners i and i^1 sit on different nodes, if several */
    phase_begin(n);
    logins_run();
    if (ph.ok < n)
        fprintf(stderr, "roost-bench: only %u of %u senders logged in\n", ph.ok, n);
    for (unsigned i = 0; i < n; i++)
        ph.c[i].partner = &ph.c[i ^ 1u];
    run_until(NULL, SETTLE_MS);

    ph.window = s->kind == SC_WINDOW;
    cpu_t c0 = cpu_sample();
    uint64_t t0 = uv_hrtime();
    uint64_t ctx[3] = { t0, s->param, t0 + (uint64_t)s->secs * 1000000000u };
    uv_timer_t tm;
    uv_timer_init(loop, &tm);
    tm.data = ctx;
    ph.sending = 1;
    if (ph.window) {
        for (unsigned i = 0; i < n; i++)
            for (unsigned k = 0; k < s->param; k++)
                bench_send_msg(&ph.c[i]);
        uv_timer_start(&tm, on_window_end, (uint64_t)s->secs * 1000u, 0);
    } else {
        uv_timer_start(&tm, on_rate_tick, 1, 1);
    }
    /* Sending stops at its own timer; the drain gets a bounded extra while. */
    run_until(drained, (uint64_t)s->secs * 1000u + DRAIN_MS);
    ph.sending = 0;
    uv_timer_stop(&tm);
    uv_close((uv_handle_t *)&tm, NULL);
    cpu_t c1 = cpu_sample();

    if (ph.window)
        snprintf(name, sizeof(name), "msgs window %u x W%u %us", n, s->param, s->secs);
    else
        snprintf(name, sizeof(name), "msgs rate %u/s %u users %us", s->param, n, s->secs);
    row_t *r = row_add(name, ph.mlat, ph.mlat_n, ph.recvd, &c0, &c1);
    if (r != NULL) {
        r->ok = ph.recvd;
        r->bad = ph.sent > ph.recvd ? ph.sent - ph.recvd : 0;
        r->dup = ph.dup;
        r->wall_s = ph.t_recv_last > t0 ? (double)(ph.t_recv_last - t0) / 1e9 : 0;
        r->rate = r->wall_s > 0 ? (double)ph.recvd / r->wall_s : 0;
        /* Partners i and i^1 use ports i % n and (i^1) % n: the same one
         * only when there is a single port. */
        snprintf(r->note, sizeof(r->note), "sent %" PRIu64 ", %s%s", ph.sent,
                 opt.n_ports > 1 ? "cross-node" : "one node", ph.window ? "" : ", one-way latency");
        if (ph.errors || ph.unknown) {
            size_t off = strlen(r->note);
            snprintf(r->note + off, sizeof(r->note) - off, ", %" PRIu64 " error replies, %" PRIu64
                     " unparsed", ph.errors, ph.unknown);
        }
        if (ph.failed || ph.dropped)
            failure_note(r->note, sizeof(r->note));
        row_print(stderr, r);
    }
    phase_end();
}

/* ---- setup: accounts ---------------------------------------------------- */

static int setup_users(unsigned n)
{
    unsigned w = opt.setup_workers ? opt.setup_workers : 1;
    pid_t pids[16];
    if (w > 16)
        w = 16;
    fflush(stdout);
    fflush(stderr);
    for (unsigned k = 0; k < w; k++) {
        pid_t p = fork();
        if (p < 0)
            return -1;
        if (p > 0) {
            pids[k] = p;
            continue;
        }
        /* Worker k creates every w-th account on its own connection. */
        roost_redis_url_t u;
        roost_admin_t *a;
        char err[256], user[64];
        int bad = 0;
        if (roost_admin_url_parse(opt.redis_url, &u) < 0 ||
            roost_admin_connect(&u, 5000, &a, err, sizeof(err)) < 0)
            _exit(2);
        for (unsigned i = k; i < n; i += w) {
            roost_jid_t jid;
            bench_user_name(i, user, sizeof(user));
            if (roost_jid_make(&jid, user, opt.domain, NULL) < 0) {
                bad++;
                continue;
            }
            int rc = roost_admin_user_add(a, &jid, opt.password, strlen(opt.password));
            if (rc < 0 && rc != ROOST_ECONFLICT) {
                if (bad++ == 0)
                    fprintf(stderr, "roost-bench: user add %s: %s\n", user, roost_admin_error(a));
            }
            roost_jid_clear(&jid);
        }
        roost_admin_free(a);
        roost_admin_url_clear(&u);
        _exit(bad ? 1 : 0);
    }
    int ok = 1;
    for (unsigned k = 0; k < w; k++) {
        int st;
        if (waitpid(pids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            ok = 0;
    }
    return ok ? 0 : -1;
}

/* ---- command line -------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: roost-bench --redis URL --port P [--port P ...] [options] SCENARIO...\n"
        "       roost-bench --no-setup --port P [--port P ...] [options] SCENARIO...\n"
        "  --redis URL          the cluster's Redis (accounts are created there); optional\n"
        "                       with --no-setup, e.g. for another XMPP server: no Redis\n"
        "                       figures, and a phase ends when the server's CPU goes quiet\n"
        "  --host IP            node address (default 127.0.0.1)\n"
        "  --port P             a node's c2s port; client i uses port i %% count\n"
        "  --node-pid PID       a node process, for CPU and RSS (repeatable)\n"
        "  --redis-pid PID      the redis-server process, for CPU\n"
        "  --domain D           XMPP domain (default localhost)\n"
        "  --sources K          bind clients to 127.0.0.1..127.0.0.K (default 8)\n"
        "  --inflight N         logins under way at once (default 200)\n"
        "  --phase-timeout S    hard deadline of a login phase (default 60)\n"
        "  --no-presence        login ends at bind, without initial presence\n"
        "  --no-setup           accounts exist already (PREFIX00000.. with PASSWORD)\n"
        "  --prefix PREFIX      account localparts are PREFIX + 5 digits (default bench)\n"
        "  --password PASSWORD  every account's password (default bench-password)\n"
        "scenarios (run in order; salted passwords stay cached across them):\n"
        "  login:N              N logins, then all log out\n"
        "  idle:N[:S[:P]]       N logins held idle S s (default 3), on the first P ports\n"
        "                       only (default all): RSS per connection\n"
        "  window:N:W:S         N users paired across nodes, W messages in flight each, S s\n"
        "  rate:N:R:S           N users paired across nodes, R messages/s in total, S s\n");
}

static int parse_scen(const char *s, scen_t *out)
{
    unsigned a = 0, b = 0, c = 0;
    int k;
    memset(out, 0, sizeof(*out));
    if (sscanf(s, "login:%u%n", &a, &k) == 1 && s[k] == '\0') {
        out->kind = SC_LOGIN;
    } else if (strncmp(s, "idle:", 5) == 0 && sscanf(s, "idle:%u:%u:%u", &a, &c, &b) >= 1) {
        out->kind = SC_IDLE;
        if (c == 0)
            c = 3;
        if (b > MAX_PORTS)
            return -1;
        out->ports = b;
        b = 0;
    } else if (sscanf(s, "window:%u:%u:%u", &a, &b, &c) == 3) {
        out->kind = SC_WINDOW;
    } else if (sscanf(s, "rate:%u:%u:%u", &a, &b, &c) == 3) {
        out->kind = SC_RATE;
    } else {
        return -1;
    }
    if (a == 0 || a > MAX_USERS || c > 3600 || (out->kind >= SC_WINDOW && (a < 2 || b == 0)) ||
        (out->kind == SC_WINDOW && b > 1000) || (out->kind == SC_RATE && b > 10000000))
        return -1;
    out->n = a;
    out->param = b;
    out->secs = c;
    return 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *e;
    errno = 0;
    unsigned long v = strtoul(s, &e, 10);
    if (errno || *e != '\0' || e == s || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_args(int argc, char **argv)
{
    unsigned v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--no-presence") == 0) {
            opt.presence = 0;
        } else if (strcmp(a, "--no-setup") == 0) {
            opt.setup = 0;
        } else if (a[0] == '-' && a[1] == '-') {
            if (val == NULL)
                return -1;
            i++;
            if (strcmp(a, "--redis") == 0)
                opt.redis_url = val;
            else if (strcmp(a, "--host") == 0)
                opt.host = val;
            else if (strcmp(a, "--domain") == 0)
                opt.domain = val;
            else if (strcmp(a, "--prefix") == 0 && val[0] != '\0' && strlen(val) < 40 &&
                     strpbrk(val, ",=@/ ") == NULL)
                opt.prefix = val;
            else if (strcmp(a, "--password") == 0 && val[0] != '\0')
                opt.password = val;
            else if (strcmp(a, "--port") == 0 && opt.n_ports < MAX_PORTS &&
                     parse_uint(val, 1, 65535, &v) == 0)
                opt.ports[opt.n_ports++] = (int)v;
            else if (strcmp(a, "--node-pid") == 0 && opt.n_node_pids < MAX_PIDS &&
                     parse_uint(val, 1, 1u << 30, &v) == 0)
                opt.node_pids[opt.n_node_pids++] = (int)v;
            else if (strcmp(a, "--redis-pid") == 0 && parse_uint(val, 1, 1u << 30, &v) == 0)
                opt.redis_pid = (int)v;
            else if (strcmp(a, "--sources") == 0 && parse_uint(val, 1, MAX_SOURCES, &v) == 0)
                opt.sources = v;
            else if (strcmp(a, "--inflight") == 0 && parse_uint(val, 1, 100000, &v) == 0)
                opt.inflight = v;
            else if (strcmp(a, "--phase-timeout") == 0 && parse_uint(val, 1, 3600, &v) == 0)
                opt.phase_timeout_s = v;
            else
                return -1;
        } else if (opt.n_scen < MAX_SCEN && parse_scen(a, &opt.scen[opt.n_scen]) == 0) {
            opt.n_scen++;
        } else {
            return -1;
        }
    }
    return (opt.redis_url || !opt.setup) && opt.n_ports > 0 && opt.n_scen > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    roost_redis_url_t u;
    char err[256] = "bad URL";
    unsigned users = 0;

    if (parse_args(argc, argv) < 0) {
        usage(stderr);
        return 2;
    }
    for (unsigned i = 0; i < opt.n_scen; i++)
        if (opt.scen[i].n > users)
            users = opt.scen[i].n;
    if (opt.setup) {
        uint64_t t = uv_hrtime();
        if (setup_users(users) < 0) {
            fprintf(stderr, "roost-bench: creating %u accounts failed\n", users);
            return 1;
        }
        fprintf(stderr, "roost-bench: %u accounts ready in %.1f s\n", users,
                (double)(uv_hrtime() - t) / 1e9);
    }
    memset(&u, 0, sizeof(u));
    if (opt.redis_url != NULL && (roost_admin_url_parse(opt.redis_url, &u) < 0 ||
                                  roost_admin_connect(&u, 5000, &admin, err, sizeof(err)) < 0)) {
        fprintf(stderr, "roost-bench: redis: %s\n", err);
        return 1;
    }
    cache = calloc(users, sizeof(*cache));
    loop = uv_default_loop();
    if (cache == NULL || loop == NULL)
        return 1;

    for (unsigned i = 0; i < opt.n_node_pids; i++)
        rss_start_kb[i] = proc_rss_kb(opt.node_pids[i]);
    for (unsigned i = 0; i < opt.n_scen; i++) {
        const scen_t *s = &opt.scen[i];
        if (s->kind == SC_LOGIN || s->kind == SC_IDLE)
            scen_login(s);
        else
            scen_messages(s);
    }
    table_print();

    free(ph.lat);
    free(ph.mlat);
    free(cache);
    if (admin != NULL)
        roost_admin_free(admin);
    roost_admin_url_clear(&u);
    uv_loop_close(loop);
    return 0;
}
