/* roostctl: the operator's command line for roost accounts, sessions and nodes,
 * talking to Redis directly through store/admin. */
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
    "usage: roostctl [--redis URL] COMMAND\n"
    "\n"
    "  user add JID [--password-stdin]     create an account\n"
    "  user passwd JID [--password-stdin]  set a new password\n"
    "  user del JID                        delete an account, ending its sessions\n"
    "  user list [DOMAIN]                  list accounts\n"
    "  session list [JID]                  list sessions: JID node epoch priority available\n"
    "  session kick JID                    end the session of a full JID\n"
    "  node list                           list cluster nodes: id, state, epoch, address,\n"
    "                                      version, sessions, lease TTL, last renewal age\n"
    "\n"
    "URL is redis://[:password@]host[:port][/db]; default $ROOST_REDIS_URL or\n"
    DEFAULT_URL ". Without --password-stdin the password is asked twice on a\n"
    "terminal, or read as one line from standard input.\n";

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
        for (size_t i = 0; i < n; i++)
            printf("%s\n", v[i]);
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
    for (size_t i = 0; i < n; i++) {
        const roost_session_t *s = &v[i].rec;
        if (jid.resource && strcmp(jid.resource, s->resource) != 0)
            continue;
        printf("%s/%s %s %" PRIu64 " %" PRId32 " %s\n", v[i].bare, s->resource, s->node_id,
               s->node_epoch, s->priority, (s->flags & ROOST_SESS_F_AVAILABLE) ? "yes" : "no");
    }
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
    for (size_t i = 0; i < n; i++) {
        const roost_admin_node_t *d = &v[i];
        long long age = d->heartbeat_ms && now >= d->heartbeat_ms
                            ? (long long)(now - d->heartbeat_ms) : -1;
        printf("%s %s epoch=%" PRIu64 " addr=%s version=%s sessions=%lld lease_ttl_ms=%lld "
               "renewed_ms_ago=%lld\n", d->node_id, d->alive ? "alive" : "dead",
               d->lease.epoch, d->lease.addr[0] ? d->lease.addr : "-",
               d->lease.version[0] ? d->lease.version : "-", d->sessions,
               d->alive ? d->ttl_ms : -1, age);
    }
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
        printf("%s kicked\n", jid.full);
        rc = EXIT_OK;
    }
    roost_jid_clear(&jid);
    return rc;
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
    if (argc - i < 2)
        return usage();
    const char *group = argv[i], *verb = argv[i + 1];
    int n = argc - i - 2;
    char **rest = argv + i + 2;
    int known = (strcmp(group, "user") == 0
                 && (strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0
                     || strcmp(verb, "del") == 0 || strcmp(verb, "list") == 0))
                || (strcmp(group, "session") == 0
                    && (strcmp(verb, "list") == 0 || strcmp(verb, "kick") == 0))
                || (strcmp(group, "node") == 0 && strcmp(verb, "list") == 0);
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
        rc = cmd_node_list(a, n, rest);
    } else {
        if (strcmp(verb, "list") == 0)
            rc = cmd_session_list(a, n, rest);
        else
            rc = cmd_session_kick(a, n, rest);
    }
    roost_admin_free(a);
    return rc;
}
