/* roostctl: the operator's command line for roost accounts, sessions, nodes
 * and cluster figures, talking to Redis directly through store/admin. Every
 * command prints lines for people, or one JSON document with --json. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>

#include "store/admin.h"
#include "store/error.h"
#include "store/jid.h"

#define DEFAULT_URL "redis://127.0.0.1:6379"
#define TIMEOUT_MS 5000
#define PASSWORD_MAX 1024

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: roostctl [--redis URL] [--json] COMMAND\n"
    "\n"
    "  user add JID [--password-stdin]     create an account\n"
    "  user passwd JID [--password-stdin]  set a new password\n"
    "  user del JID                        delete an account, ending its sessions\n"
    "  user list [DOMAIN]                  list accounts\n"
    "  session list [JID]                  list sessions: JID node epoch priority available\n"
    "  session kick JID                    end the session of a full JID\n"
    "  node list                           list cluster nodes: id, state, epoch, address,\n"
    "                                      version, sessions, lease TTL, last renewal age\n"
    "  node drain ID                       ask node ID to drain (exit 1 if no node got it)\n"
    "  stats                               nodes, sessions (per node) and accounts\n"
    "\n"
    "--json prints one JSON object on standard output instead of text lines;\n"
    "errors still go to standard error with a nonzero exit status.\n"
    "URL is redis://[:password@]host[:port][/db]; default $ROOST_REDIS_URL or\n"
    DEFAULT_URL ". Without --password-stdin the password is asked twice on a\n"
    "terminal, or read as one line from standard input.\n";

static int json_out;   /* --json */

/* Writes s as a JSON string: quotes, backslashes and control bytes
 * escaped (stored names are UTF-8 already: JIDs are prepared). */
static void jstr(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* {"key":"value"} and {"key":"value","flag":true}: the answers of the
 * single-subject commands. */
static void jdone(const char *key, const char *value, const char *flag)
{
    fputs("{", stdout);
    jstr(key);
    putchar(':');
    jstr(value);
    if (flag)
        printf(",\"%s\":true", flag);
    fputs("}\n", stdout);
}

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static int usage(void)
{
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static void wipe(char *s)
{
    if (s) {
        volatile char *p = s;
        while (*p)
            *p++ = '\0';
    }
}

/* One line from f without its line ending, malloc'd; NULL at EOF/error. */
static char *read_line(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);

    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static char *prompt_noecho(const char *prompt)
{
    struct termios old, quiet;
    char *line;

    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &old) < 0)
        return read_line(stdin);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    line = read_line(stdin);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    return line;
}

/* Gets the new password per the rules in usage_text; prints the reason and
 * returns NULL on failure. */
static char *get_password(const char *what, int from_stdin)
{
    char *pw, *again;

    if (from_stdin || !isatty(STDIN_FILENO)) {
        pw = read_line(stdin);
    } else {
        pw = prompt_noecho("Password: ");
        if (!pw)
            goto fail;
        again = prompt_noecho("Retype password: ");
        if (!again || strcmp(pw, again) != 0) {
            wipe(again);
            free(again);
            wipe(pw);
            free(pw);
            fprintf(stderr, "roostctl: %s: passwords do not match\n", what);
            return NULL;
        }
        wipe(again);
        free(again);
    }
    if (!pw)
        goto fail;
    if (!pw[0] || strlen(pw) > PASSWORD_MAX) {
        fprintf(stderr, "roostctl: %s: password must be 1..%d bytes\n", what, PASSWORD_MAX);
        free(pw);
        return NULL;
    }
    return pw;
fail:
    fprintf(stderr, "roostctl: %s: no password given\n", what);
    return NULL;
}

/* Parses an account JID: localpart@domain, no resource. */
static int account_jid(const char *what, const char *s, roost_jid_t *jid)
{
    if (roost_jid_parse(jid, s, strlen(s)) < 0) {
        fprintf(stderr, "roostctl: %s: invalid JID '%.80s'\n", what, s);
        return -1;
    }
    if (!jid->local || jid->resource) {
        fprintf(stderr, "roostctl: %s: '%.80s' is not an account JID (need user@domain)\n", what, s);
        roost_jid_clear(jid);
        return -1;
    }
    return 0;
}

static int fail(const char *what, const char *subject, roost_admin_t *a, int rc)
{
    const char *msg = roost_admin_error(a);
    if (rc == ROOST_ECONFLICT || rc == ROOST_ENOTFOUND || !msg[0])
        fprintf(stderr, "roostctl: %s: %s: %s\n", what, subject,
                rc == ROOST_ECONFLICT   ? "already exists"
                : rc == ROOST_ENOTFOUND ? "does not exist"
                                        : roost_strerror(rc));
    else
        fprintf(stderr, "roostctl: %s: %s: %s\n", what, subject, msg);
    return EXIT_FAIL;
}

static int cmd_user_pw(roost_admin_t *a, int add, int argc, char **argv)
{
    const char *what = add ? "user add" : "user passwd";
    const char *jid_s = NULL;
    int from_stdin = 0, rc;
    roost_jid_t jid;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--password-stdin") == 0)
            from_stdin = 1;
        else if (!jid_s && argv[i][0] != '-')
            jid_s = argv[i];
        else
            return usage();
    }
    if (!jid_s)
        return usage();
    if (account_jid(what, jid_s, &jid) < 0)
        return EXIT_FAIL;
    char *pw = get_password(what, from_stdin);
    if (!pw) {
        roost_jid_clear(&jid);
        return EXIT_FAIL;
    }
    rc = add ? roost_admin_user_add(a, &jid, pw, strlen(pw))
             : roost_admin_user_passwd(a, &jid, pw, strlen(pw));
    wipe(pw);
    free(pw);
    if (rc < 0) {
        rc = fail(what, jid.bare, a, rc);
    } else {
        if (json_out)
            jdone("jid", jid.bare, add ? "created" : "password_changed");
        else
            printf("%s %s\n", jid.bare, add ? "created" : "password changed");
        rc = EXIT_OK;
    }
    roost_jid_clear(&jid);
    return rc;
}

static int cmd_user_del(roost_admin_t *a, int argc, char **argv)
{
    roost_jid_t jid;
    int rc;

    if (argc != 1)
        return usage();
    if (account_jid("user del", argv[0], &jid) < 0)
        return EXIT_FAIL;
    rc = roost_admin_user_del(a, &jid);
    if (rc < 0) {
        rc = fail("user del", jid.bare, a, rc);
    } else {
        if (json_out)
            jdone("jid", jid.bare, "deleted");
        else
            printf("%s deleted\n", jid.bare);
        rc = EXIT_OK;
    }
    roost_jid_clear(&jid);
    return rc;
}

static int cmd_user_list(roost_admin_t *a, int argc, char **argv)
{
    char *domain = NULL, **v;
    size_t n;
    int rc;

    if (argc > 1)
        return usage();
    if (argc == 1 && roost_jid_nameprep(argv[0], strlen(argv[0]), &domain) < 0) {
        fprintf(stderr, "roostctl: user list: invalid domain '%.80s'\n", argv[0]);
        return EXIT_FAIL;
    }
    rc = roost_admin_user_list(a, domain, &v, &n);
    if (rc < 0) {
        rc = fail("user list", domain ? domain : "all domains", a, rc);
    } else {
        if (json_out)
            fputs("{\"users\":[", stdout);
        for (size_t i = 0; i < n; i++) {
            if (json_out) {
                if (i)
                    putchar(',');
                jstr(v[i]);
            } else {
                printf("%s\n", v[i]);
            }
        }
        if (json_out)
            fputs("]}\n", stdout);
        roost_admin_strv_free(v, n);
        rc = EXIT_OK;
    }
    free(domain);
    return rc;
}

static int cmd_session_list(roost_admin_t *a, int argc, char **argv)
{
    roost_admin_session_t *v;
    roost_jid_t jid = { 0 };
    size_t n;
    int rc;

    if (argc > 1)
        return usage();
    if (argc == 1 && roost_jid_parse(&jid, argv[0], strlen(argv[0])) < 0) {
        fprintf(stderr, "roostctl: session list: invalid JID '%.80s'\n", argv[0]);
        return EXIT_FAIL;
    }
    rc = roost_admin_session_list(a, argc ? jid.bare : NULL, &v, &n);
    if (rc < 0) {
        rc = fail("session list", argc ? jid.bare : "all", a, rc);
        roost_jid_clear(&jid);
        return rc;
    }
    int first = 1;
    if (json_out)
        fputs("{\"sessions\":[", stdout);
    for (size_t i = 0; i < n; i++) {
        const roost_session_t *s = &v[i].rec;
        int avail = (s->flags & ROOST_SESS_F_AVAILABLE) != 0;
        if (jid.resource && strcmp(jid.resource, s->resource) != 0)
            continue;
        if (!json_out) {
            printf("%s/%s %s %" PRIu64 " %" PRId32 " %s\n", v[i].bare, s->resource, s->node_id,
                   s->node_epoch, s->priority, avail ? "yes" : "no");
            continue;
        }
        printf("%s{\"jid\":", first ? "" : ",");
        first = 0;
        jstr(v[i].bare);
        fputs(",\"resource\":", stdout);
        jstr(s->resource);
        fputs(",\"node\":", stdout);
        jstr(s->node_id);
        printf(",\"epoch\":%" PRIu64 ",\"priority\":%" PRId32 ",\"available\":%s}",
               s->node_epoch, s->priority, avail ? "true" : "false");
    }
    if (json_out)
        fputs("]}\n", stdout);
    roost_admin_sessions_free(v, n);
    roost_jid_clear(&jid);
    return EXIT_OK;
}

static int cmd_node_list(roost_admin_t *a, int argc, char **argv)
{
    roost_admin_node_t *v;
    size_t n;
    int rc;

    if (argc > 0)
        return usage();
    if ((rc = roost_admin_node_list(a, &v, &n)) < 0)
        return fail("node list", "all", a, rc);
    uint64_t now = wall_ms();
    if (json_out)
        fputs("{\"nodes\":[", stdout);
    for (size_t i = 0; i < n; i++) {
        const roost_admin_node_t *d = &v[i];
        long long age = d->heartbeat_ms && now >= d->heartbeat_ms
                            ? (long long)(now - d->heartbeat_ms) : -1;
        if (!json_out) {
            printf("%s %s epoch=%" PRIu64 " addr=%s version=%s sessions=%lld lease_ttl_ms=%lld "
                   "renewed_ms_ago=%lld\n", d->node_id, d->alive ? "alive" : "dead",
                   d->lease.epoch, d->lease.addr[0] ? d->lease.addr : "-",
                   d->lease.version[0] ? d->lease.version : "-", d->sessions,
                   d->alive ? d->ttl_ms : -1, age);
            continue;
        }
        printf("%s{\"id\":", i ? "," : "");
        jstr(d->node_id);
        printf(",\"alive\":%s,\"epoch\":%" PRIu64 ",\"addr\":", d->alive ? "true" : "false",
               d->lease.epoch);
        jstr(d->lease.addr);
        fputs(",\"version\":", stdout);
        jstr(d->lease.version);
        printf(",\"sessions\":%lld,\"lease_ttl_ms\":%lld,\"renewed_ms_ago\":%lld}",
               d->sessions, d->alive ? d->ttl_ms : -1, age);
    }
    if (json_out)
        fputs("]}\n", stdout);
    free(v);
    return EXIT_OK;
}

static int cmd_session_kick(roost_admin_t *a, int argc, char **argv)
{
    roost_jid_t jid;
    int rc;

    if (argc != 1)
        return usage();
    if (roost_jid_parse(&jid, argv[0], strlen(argv[0])) < 0 || !jid.resource) {
        if (jid.bare)
            roost_jid_clear(&jid);
        fprintf(stderr, "roostctl: session kick: '%.80s' is not a full JID\n", argv[0]);
        return EXIT_FAIL;
    }
    rc = roost_admin_session_kick(a, jid.bare, jid.resource, "policy-violation");
    if (rc < 0) {
        rc = fail("session kick", jid.full, a, rc);
    } else {
        if (json_out)
            jdone("jid", jid.full, "kicked");
        else
            printf("%s kicked\n", jid.full);
        rc = EXIT_OK;
    }
    roost_jid_clear(&jid);
    return rc;
}

/* The node's own handling of DRAIN (stop taking clients, let them go in
 * batches, readiness false) is the node's business; roostctl only says
 * whether a node was listening on that channel. */
static int cmd_node_drain(roost_admin_t *a, int argc, char **argv)
{
    long long receivers;
    int rc;

    if (argc != 1)
        return usage();
    rc = roost_admin_node_drain(a, argv[0], &receivers);
    if (rc == ROOST_EINVAL) {
        fprintf(stderr, "roostctl: node drain: invalid node id '%.80s'\n", argv[0]);
        return EXIT_FAIL;
    }
    if (rc < 0)
        return fail("node drain", argv[0], a, rc);
    if (json_out) {
        fputs("{\"node\":", stdout);
        jstr(argv[0]);
        printf(",\"received\":%s,\"receivers\":%lld}\n", receivers > 0 ? "true" : "false",
               receivers);
    } else if (receivers > 0) {
        printf("drain sent to node %s (received by %lld subscriber%s)\n", argv[0], receivers,
               receivers == 1 ? "" : "s");
    } else {
        printf("node %s did not receive the drain: no node listens on its channel\n", argv[0]);
    }
    return receivers > 0 ? EXIT_OK : EXIT_FAIL;
}

/* Cluster figures from the node registry and the account sets; cheap at
 * any size (one ZRANGE, a few commands per node and per domain, no SCAN). */
static int cmd_stats(roost_admin_t *a, int argc, char **argv)
{
    roost_admin_node_t *nodes;
    roost_admin_count_t *acc;
    size_t nn, na;
    int rc;

    if (argc > 0)
        return usage();
    if ((rc = roost_admin_node_list(a, &nodes, &nn)) < 0)
        return fail("stats", "nodes", a, rc);
    if ((rc = roost_admin_account_counts(a, &acc, &na)) < 0) {
        free(nodes);
        return fail("stats", "accounts", a, rc);
    }
    long long alive = 0, sessions = 0, accounts = 0;
    for (size_t i = 0; i < nn; i++) {
        alive += nodes[i].alive;
        sessions += nodes[i].sessions;
    }
    for (size_t i = 0; i < na; i++)
        accounts += acc[i].count;
    if (json_out) {
        printf("{\"nodes\":{\"total\":%zu,\"alive\":%lld,\"dead\":%lld},\"sessions\":%lld,"
               "\"accounts\":{\"total\":%lld,\"domains\":{", nn, alive, (long long)nn - alive,
               sessions, accounts);
        for (size_t i = 0; i < na; i++) {
            if (i)
                putchar(',');
            jstr(acc[i].name);
            printf(":%lld", acc[i].count);
        }
        fputs("}},\"per_node\":[", stdout);
        for (size_t i = 0; i < nn; i++) {
            printf("%s{\"id\":", i ? "," : "");
            jstr(nodes[i].node_id);
            printf(",\"alive\":%s,\"sessions\":%lld}", nodes[i].alive ? "true" : "false",
                   nodes[i].sessions);
        }
        fputs("]}\n", stdout);
    } else {
        printf("nodes: %zu (%lld alive, %lld dead)\n", nn, alive, (long long)nn - alive);
        printf("sessions: %lld\n", sessions);
        printf("accounts: %lld\n", accounts);
        for (size_t i = 0; i < na; i++)
            printf("  domain %s: %lld accounts\n", acc[i].name, acc[i].count);
        for (size_t i = 0; i < nn; i++)
            printf("  node %s: %s, %lld sessions\n", nodes[i].node_id,
                   nodes[i].alive ? "alive" : "dead", nodes[i].sessions);
    }
    free(nodes);
    roost_admin_counts_free(acc, na);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    const char *url = getenv("ROOST_REDIS_URL");
    roost_redis_url_t u;
    roost_admin_t *a;
    char err[512];
    int i = 1, rc;

    if (!url || !url[0])
        url = DEFAULT_URL;
    /* --json may come anywhere; it is taken out before the rest is read. */
    int w = 1;
    for (int r = 1; r < argc; r++) {
        if (strcmp(argv[r], "--json") == 0)
            json_out = 1;
        else
            argv[w++] = argv[r];
    }
    argc = w;
    argv[argc] = NULL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            url = argv[++i];
        } else if (strncmp(argv[i], "--redis=", 8) == 0) {
            url = argv[i] + 8;
        } else {
            return usage();
        }
    }
    if (argc - i < 1 || (argc - i < 2 && strcmp(argv[i], "stats") != 0))
        return usage();
    const char *group = argv[i], *verb = argc - i >= 2 ? argv[i + 1] : "";
    int n = argc - i - 2;
    char **rest = argv + i + 2;
    if (strcmp(group, "stats") == 0) {
        /* One word: its arguments start right after it. */
        verb = "";
        n = argc - i - 1;
        rest = argv + i + 1;
    }
    int known = (strcmp(group, "user") == 0
                 && (strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0
                     || strcmp(verb, "del") == 0 || strcmp(verb, "list") == 0))
                || (strcmp(group, "session") == 0
                    && (strcmp(verb, "list") == 0 || strcmp(verb, "kick") == 0))
                || (strcmp(group, "node") == 0
                    && (strcmp(verb, "list") == 0 || strcmp(verb, "drain") == 0))
                || strcmp(group, "stats") == 0;
    if (!known)
        return usage();
    for (int k = 0; k < n; k++)
        if (strcmp(rest[k], "--help") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }

    if (roost_admin_url_parse(url, &u) < 0) {
        fprintf(stderr, "roostctl: invalid redis URL (want redis://[:password@]host:port[/db])\n");
        return EXIT_USAGE;
    }
    rc = roost_admin_connect(&u, TIMEOUT_MS, &a, err, sizeof(err));
    roost_admin_url_clear(&u);
    if (rc < 0) {
        fprintf(stderr, "roostctl: %s\n", err[0] ? err : roost_strerror(rc));
        return EXIT_FAIL;
    }
    if (strcmp(group, "user") == 0) {
        if (strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0)
            rc = cmd_user_pw(a, verb[0] == 'a', n, rest);
        else if (strcmp(verb, "del") == 0)
            rc = cmd_user_del(a, n, rest);
        else
            rc = cmd_user_list(a, n, rest);
    } else if (strcmp(group, "node") == 0) {
        rc = verb[0] == 'l' ? cmd_node_list(a, n, rest) : cmd_node_drain(a, n, rest);
    } else if (strcmp(group, "stats") == 0) {
        rc = cmd_stats(a, n, rest);
    } else {
        if (strcmp(verb, "list") == 0)
            rc = cmd_session_list(a, n, rest);
        else
            rc = cmd_session_kick(a, n, rest);
    }
    roost_admin_free(a);
    return rc;
}
