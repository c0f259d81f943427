/* Node configuration: built-in defaults, then a YAML file read with libcyaml,
 * then ROOST_* environment variables, then command-line options. Every value
 * from every source goes through roost_config_set, so one parser checks it
 * and every error message names the dotted key. */
#include "node/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/log.h"
#include "store/error.h"
#include "store/jid.h"

/* A config file is a page of YAML; anything bigger is a mistake. */
#define FILE_MAX (1024 * 1024)
/* Longest scalar accepted from the file (a domain part may be 1023 bytes). */
#define SCALAR_MAX 1023
#define NODE_ID_MAX 64
#define HOST_MAX 255
#define PASSWORD_MAX 1023
#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)

/* ---- the option table ---------------------------------------------------- */

typedef enum {
    OPT_NODE_ID,
    OPT_DOMAINS,
    OPT_BIND,
    OPT_HOST,
    OPT_SECRET,
    OPT_PATH,
    OPT_BOOL,
    OPT_INT,
    OPT_UINT,
    OPT_SIZE,
    OPT_LOG_LEVEL,
    OPT_LOG_FORMAT,
    OPT_IP,
} opt_type_t;

typedef struct {
    const char *key;     /* dotted YAML name */
    const char *env;     /* environment variable */
    opt_type_t type;
    size_t off;          /* field in roost_config_t */
    unsigned long long min, max;   /* numbers only */
} opt_t;

#define F(m) offsetof(roost_config_t, m)

static const opt_t opts[] = {
    { "node.id", "ROOST_NODE_ID", OPT_NODE_ID, F(node_id), 0, 0 },
    { "domains", "ROOST_DOMAINS", OPT_DOMAINS, 0, 0, 0 },
    { "c2s.bind", "ROOST_C2S_BIND", OPT_BIND, 0, 0, 0 },
    /* 0 lets the kernel pick, which tests use to avoid port clashes. */
    { "c2s.port", "ROOST_C2S_PORT", OPT_INT, F(c2s_port), 0, 65535 },
    { "c2s.allow_plaintext_auth", "ROOST_ALLOW_PLAINTEXT_AUTH", OPT_BOOL,
      F(allow_plaintext_auth), 0, 0 },
    { "c2s.require_encryption", "ROOST_C2S_REQUIRE_ENCRYPTION", OPT_BOOL,
      F(require_encryption), 0, 0 },
    /* 0 disables the direct TLS listener (unlike c2s.port). */
    { "c2s.tls_port", "ROOST_C2S_TLS_PORT", OPT_INT, F(c2s_tls_port), 0, 65535 },
    { "c2s.proxy_protocol", "ROOST_C2S_PROXY_PROTOCOL", OPT_BOOL, F(proxy_protocol), 0, 0 },
    { "c2s.proxy_timeout_ms", "ROOST_C2S_PROXY_TIMEOUT_MS", OPT_UINT, F(proxy_timeout_ms),
      100, 60000 },
    { "tls.cert", "ROOST_TLS_CERT", OPT_PATH, F(tls_cert), 0, 0 },
    { "tls.key", "ROOST_TLS_KEY", OPT_PATH, F(tls_key), 0, 0 },
    { "redis.host", "ROOST_REDIS_HOST", OPT_HOST, F(redis_host), 0, 0 },
    { "redis.port", "ROOST_REDIS_PORT", OPT_INT, F(redis_port), 1, 65535 },
    { "redis.password", "ROOST_REDIS_PASSWORD", OPT_SECRET, F(redis_password), 0, 0 },
    { "redis.db", "ROOST_REDIS_DB", OPT_INT, F(redis_db), 0, INT_MAX },
    { "redis.timeout_ms", "ROOST_REDIS_TIMEOUT_MS", OPT_UINT, F(redis_timeout_ms),
      1, 3600000 },
    { "limits.max_stanza_size", "ROOST_LIMITS_MAX_STANZA_SIZE", OPT_SIZE,
      F(max_stanza_size), 1024, 16 * MIB },
    { "limits.max_stanza_size_preauth", "ROOST_LIMITS_MAX_STANZA_SIZE_PREAUTH", OPT_SIZE,
      F(max_stanza_size_preauth), 1024, 16 * MIB },
    { "limits.max_depth", "ROOST_LIMITS_MAX_DEPTH", OPT_UINT, F(max_depth), 4, 256 },
    { "limits.max_attrs", "ROOST_LIMITS_MAX_ATTRS", OPT_UINT, F(max_attrs), 1, 1024 },
    { "limits.auth_timeout_s", "ROOST_LIMITS_AUTH_TIMEOUT_S", OPT_UINT,
      F(auth_timeout_s), 1, 3600 },
    { "limits.ping_interval_s", "ROOST_LIMITS_PING_INTERVAL_S", OPT_UINT,
      F(ping_interval_s), 0, 86400 },
    { "limits.ping_timeout_s", "ROOST_LIMITS_PING_TIMEOUT_S", OPT_UINT,
      F(ping_timeout_s), 1, 3600 },
    { "limits.max_roster_items", "ROOST_LIMITS_MAX_ROSTER_ITEMS", OPT_UINT,
      F(max_roster_items), 1, 100000 },
    { "limits.max_offline", "ROOST_LIMITS_MAX_OFFLINE", OPT_UINT,
      F(max_offline), 0, 100000 },
    { "limits.max_blocklist", "ROOST_LIMITS_MAX_BLOCKLIST", OPT_UINT,
      F(max_blocklist), 1, 100000 },
    { "limits.max_pending_subscriptions", "ROOST_LIMITS_MAX_PENDING_SUBSCRIPTIONS", OPT_UINT,
      F(max_pending_subscriptions), 1, 100000 },
    { "limits.max_resources", "ROOST_LIMITS_MAX_RESOURCES", OPT_UINT,
      F(max_resources), 1, 1000 },
    { "limits.write_high_watermark", "ROOST_LIMITS_WRITE_HIGH_WATERMARK", OPT_SIZE,
      F(write_high_watermark), 1, GIB },
    { "limits.write_low_watermark", "ROOST_LIMITS_WRITE_LOW_WATERMARK", OPT_SIZE,
      F(write_low_watermark), 0, GIB },
    { "limits.write_max", "ROOST_LIMITS_WRITE_MAX", OPT_SIZE, F(write_max), 1, GIB },
    /* Per client address (issue 5); 0 switches a limit off. */
    { "limits.max_conns_per_ip", "ROOST_LIMITS_MAX_CONNS_PER_IP", OPT_UINT,
      F(max_conns_per_ip), 0, 10000000 },
    { "limits.max_new_conns_per_ip_per_s", "ROOST_LIMITS_MAX_NEW_CONNS_PER_IP_PER_S", OPT_UINT,
      F(max_new_conns_per_ip_per_s), 0, 1000000 },
    { "limits.max_tracked_ips", "ROOST_LIMITS_MAX_TRACKED_IPS", OPT_UINT,
      F(max_tracked_ips), 16, 10000000 },
    { "limits.auth_tarpit_after", "ROOST_LIMITS_AUTH_TARPIT_AFTER", OPT_UINT,
      F(auth_tarpit_after), 0, 1000000 },
    { "limits.auth_tarpit_delay_ms", "ROOST_LIMITS_AUTH_TARPIT_DELAY_MS", OPT_UINT,
      F(auth_tarpit_delay_ms), 0, 60000 },
    { "limits.auth_tarpit_max_ms", "ROOST_LIMITS_AUTH_TARPIT_MAX_MS", OPT_UINT,
      F(auth_tarpit_max_ms), 0, 300000 },
    { "limits.auth_tarpit_forget_s", "ROOST_LIMITS_AUTH_TARPIT_FORGET_S", OPT_UINT,
      F(auth_tarpit_forget_s), 1, 86400 },
    { "cluster.lease_ms", "ROOST_CLUSTER_LEASE_MS", OPT_UINT, F(lease_ms), 500, 600000 },
    { "cluster.renew_ms", "ROOST_CLUSTER_RENEW_MS", OPT_UINT, F(renew_ms), 100, 600000 },
    { "cluster.reap_interval_ms", "ROOST_CLUSTER_REAP_INTERVAL_MS", OPT_UINT,
      F(reap_interval_ms), 100, 600000 },
    /* log.*: level and format are re-read on SIGHUP (node/main.c). */
    { "log.level", "ROOST_LOG_LEVEL", OPT_LOG_LEVEL, F(log_level), 0, 0 },
    /* Stream management (XEP-0198) and drain (issue 6). */
    { "sm.resume_timeout_s", "ROOST_SM_RESUME_TIMEOUT_S", OPT_UINT, F(sm_resume_timeout_s),
      1, 86400 },
    { "sm.max_queue", "ROOST_SM_MAX_QUEUE", OPT_UINT, F(sm_max_queue), 10, 100000 },
    { "drain.rate", "ROOST_DRAIN_RATE", OPT_UINT, F(drain_rate), 1, 1000000 },
    { "drain.grace_s", "ROOST_DRAIN_GRACE_S", OPT_UINT, F(drain_grace_s), 0, 3600 },
    { "drain.deadline_s", "ROOST_DRAIN_DEADLINE_S", OPT_UINT, F(drain_deadline_s), 1, 86400 },
    { "log.format", "ROOST_LOG_FORMAT", OPT_LOG_FORMAT, F(log_json), 0, 0 },
    /* admin.*: the HTTP listener for probes and metrics (node/admin.h). */
    { "admin.enabled", "ROOST_ADMIN_ENABLED", OPT_BOOL, F(admin_enabled), 0, 0 },
    { "admin.bind", "ROOST_ADMIN_BIND", OPT_IP, F(admin_bind), 0, 0 },
    { "admin.port", "ROOST_ADMIN_PORT", OPT_INT, F(admin_port), 0, 65535 },
    { "admin.timeout_ms", "ROOST_ADMIN_TIMEOUT_MS", OPT_UINT, F(admin_timeout_ms),
      100, 600000 },
    { "admin.max_connections", "ROOST_ADMIN_MAX_CONNECTIONS", OPT_UINT,
      F(admin_max_connections), 1, 10000 },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const opt_t *find_opt(const char *key)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        if (strcmp(opts[i].key, key) == 0)
            return &opts[i];
    }
    return NULL;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return ROOST_EINVAL;
}

static int oom(char *err, size_t errlen, const char *what)
{
    fail(err, errlen, "%s: out of memory", what);
    return ROOST_ENOMEM;
}

#define FIELD(cfg, o, type) ((type *)(void *)((char *)(cfg) + (o)->off))

/* ---- defaults and freeing ------------------------------------------------ */

static void free_list(char **list, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        free(list[i]);
        list[i] = NULL;
    }
    *n = 0;
}

void roost_config_free(roost_config_t *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->node_id);
    free_list(cfg->domains, &cfg->n_domains);
    free_list(cfg->c2s_bind, &cfg->n_c2s_bind);
    free(cfg->redis_host);
    free(cfg->redis_password);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->log_level);
    free(cfg->admin_bind);
    memset(cfg, 0, sizeof(*cfg));
}

int roost_config_defaults(roost_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->c2s_bind[0] = strdup("0.0.0.0");
    cfg->c2s_bind[1] = strdup("::");
    cfg->n_c2s_bind = 2;
    cfg->c2s_port = 5222;
    cfg->allow_plaintext_auth = 0;
    /* Secure by default: TLS before SASL and stanzas; plaintext only when
     * configured (require_encryption: false). */
    cfg->require_encryption = 1;
    cfg->c2s_tls_port = 5223;
    cfg->proxy_protocol = 0;
    cfg->proxy_timeout_ms = 5000;
    cfg->redis_host = strdup("127.0.0.1");
    cfg->redis_port = 6379;
    cfg->redis_db = 0;
    cfg->redis_timeout_ms = 2000;
    cfg->max_stanza_size = 262144;
    cfg->max_stanza_size_preauth = 16384;
    cfg->max_depth = 32;
    cfg->max_attrs = 32;
    cfg->auth_timeout_s = 30;
    cfg->ping_interval_s = 300;
    cfg->ping_timeout_s = 60;
    cfg->max_roster_items = 1000;
    cfg->max_offline = 100;
    cfg->max_blocklist = 1000;
    cfg->max_pending_subscriptions = 1000;
    cfg->max_resources = 10;
    cfg->write_high_watermark = 262144;
    cfg->sm_resume_timeout_s = 300;
    cfg->sm_max_queue = 1000;
    cfg->drain_rate = 200;
    cfg->drain_grace_s = 30;
    cfg->drain_deadline_s = 60;
    cfg->write_low_watermark = 65536;
    cfg->write_max = 4194304;
    cfg->max_conns_per_ip = 100;
    cfg->max_new_conns_per_ip_per_s = 50;
    cfg->max_tracked_ips = 65536;
    cfg->auth_tarpit_after = 3;
    cfg->auth_tarpit_delay_ms = 1000;
    cfg->auth_tarpit_max_ms = 10000;
    cfg->auth_tarpit_forget_s = 300;
    cfg->lease_ms = 10000;
    cfg->renew_ms = 2000;
    cfg->reap_interval_ms = 2000;
    cfg->log_level = strdup("info");
    cfg->log_json = 0;
    cfg->admin_enabled = 1;
    cfg->admin_bind = strdup("127.0.0.1");
    cfg->admin_port = 5280;
    cfg->admin_timeout_ms = 5000;
    cfg->admin_max_connections = 64;
    if (cfg->c2s_bind[0] == NULL || cfg->c2s_bind[1] == NULL || cfg->redis_host == NULL ||
        cfg->log_level == NULL || cfg->admin_bind == NULL) {
        roost_config_free(cfg);
        return ROOST_ENOMEM;
    }
    return 0;
}

/* ---- value parsers ------------------------------------------------------- */

/* Strict decimal: digits only, so "-1", " 5", "5x", "0x10" and "" are all
 * rejected instead of being half-read by strtoull. */
static int parse_number(const opt_t *o, const char *v, unsigned long long *out,
                        char *err, size_t errlen)
{
    char *end;
    unsigned long long n;

    if (!isdigit((unsigned char)v[0]))
        return fail(err, errlen, "%s: not a number: '%.64s'", o->key, v);
    errno = 0;
    n = strtoull(v, &end, 10);
    if (*end != '\0')
        return fail(err, errlen, "%s: not a number: '%.64s'", o->key, v);
    if (errno == ERANGE || n < o->min || n > o->max)
        return fail(err, errlen, "%s: out of range %llu..%llu: '%.64s'", o->key, o->min,
                    o->max, v);
    *out = n;
    return 0;
}

static int parse_bool(const opt_t *o, const char *v, int *out, char *err, size_t errlen)
{
    static const char *const yes[] = { "true", "1", "yes" };
    static const char *const no[] = { "false", "0", "no" };

    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return fail(err, errlen, "%s: not a boolean (true/false/yes/no/1/0): '%.64s'", o->key, v);
}

/* The node id ends up in Redis key names and pub/sub channels, so it is
 * kept to a conservative character set. */
static int check_node_id(const opt_t *o, const char *v, char *err, size_t errlen)
{
    size_t len = strlen(v);

    if (len > NODE_ID_MAX)
        return fail(err, errlen, "%s: longer than %d characters", o->key, NODE_ID_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.')
            return fail(err, errlen, "%s: only letters, digits, '-', '_' and '.' allowed: '%.64s'",
                        o->key, v);
    }
    return 0;
}

static int check_host(const opt_t *o, const char *v, char *err, size_t errlen)
{
    size_t len = strlen(v);

    if (len == 0)
        return fail(err, errlen, "%s: must not be empty", o->key);
    if (len > HOST_MAX)
        return fail(err, errlen, "%s: longer than %d characters", o->key, HOST_MAX);
    for (size_t i = 0; i < len; i++) {
        if (isspace((unsigned char)v[i]) || iscntrl((unsigned char)v[i]))
            return fail(err, errlen, "%s: contains whitespace: '%.64s'", o->key, v);
    }
    return 0;
}

/* Prepares one hosted domain: lowercase, one trailing dot dropped (RFC 7622
 * 3.2), then nameprep, so roost_config_hosts can compare prepared domains
 * with strcmp. *out is malloc'd. */
static int prepare_domain(const opt_t *o, const char *v, char **out, char *err, size_t errlen)
{
    size_t len = strlen(v);
    char *lower;
    int rc;

    if (len > 0 && v[len - 1] == '.')
        len--;
    if (len == 0)
        return fail(err, errlen, "%s: empty domain", o->key);
    if (len > ROOST_JID_PART_MAX)
        return fail(err, errlen, "%s: domain longer than %d bytes", o->key, ROOST_JID_PART_MAX);
    if (memchr(v, '@', len) != NULL || memchr(v, '/', len) != NULL)
        return fail(err, errlen, "%s: not a domain name: '%.64s'", o->key, v);
    lower = malloc(len + 1);
    if (lower == NULL)
        return oom(err, errlen, o->key);
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)tolower((unsigned char)v[i]);
    lower[len] = '\0';
    rc = roost_jid_nameprep(lower, len, out);
    free(lower);
    if (rc == ROOST_ENOMEM)
        return oom(err, errlen, o->key);
    if (rc < 0)
        return fail(err, errlen, "%s: not a valid domain name: '%.64s'", o->key, v);
    return 0;
}

/* The listener takes IP literals (uv_ip4_addr/uv_ip6_addr), so a host name
 * here is an error now rather than a failed bind later. */
static int prepare_bind(const opt_t *o, const char *v, char **out, char *err, size_t errlen)
{
    unsigned char addr[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1)
        return fail(err, errlen, "%s: not an IPv4 or IPv6 address: '%.64s'", o->key, v);
    *out = strdup(v);
    if (*out == NULL)
        return oom(err, errlen, o->key);
    return 0;
}

/* Replaces a whole list option with items[0..n). Every item is prepared
 * first and the old list is only released once all succeeded, so a bad
 * value leaves the configuration as it was. */
static int set_list(roost_config_t *cfg, const opt_t *o, char *const *items, size_t n,
                    char *err, size_t errlen)
{
    char *fresh[ROOST_CONFIG_MAX_DOMAINS] = { 0 };
    size_t max = o->type == OPT_DOMAINS ? ROOST_CONFIG_MAX_DOMAINS : ROOST_CONFIG_MAX_BIND;
    char **dst = o->type == OPT_DOMAINS ? cfg->domains : cfg->c2s_bind;
    size_t *dst_n = o->type == OPT_DOMAINS ? &cfg->n_domains : &cfg->n_c2s_bind;
    size_t i, done = 0;
    int rc;

    if (n > max)
        return fail(err, errlen, "%s: more than %zu entries", o->key, max);
    for (i = 0; i < n; i++) {
        if (o->type == OPT_DOMAINS)
            rc = prepare_domain(o, items[i], &fresh[i], err, errlen);
        else
            rc = prepare_bind(o, items[i], &fresh[i], err, errlen);
        if (rc < 0)
            goto fail_items;
        done++;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(fresh[j], fresh[i]) == 0) {
                rc = fail(err, errlen, "%s: '%.64s' listed twice", o->key, fresh[i]);
                goto fail_items;
            }
        }
    }
    free_list(dst, dst_n);
    memcpy(dst, fresh, n * sizeof(fresh[0]));
    *dst_n = n;
    return 0;

fail_items:
    free_list(fresh, &done);
    return rc;
}

static int set_list_csv(roost_config_t *cfg, const opt_t *o, const char *value,
                        char *err, size_t errlen)
{
    char *items[ROOST_CONFIG_MAX_DOMAINS + 1];
    size_t max = o->type == OPT_DOMAINS ? ROOST_CONFIG_MAX_DOMAINS : ROOST_CONFIG_MAX_BIND;
    size_t n = 0;
    char *copy, *p;
    int rc;

    copy = strdup(value);
    if (copy == NULL)
        return oom(err, errlen, o->key);
    /* "" is the empty list (an error later for domains and c2s.bind, but a
     * deliberate one); otherwise split on commas and trim blanks. */
    p = copy;
    while (*p != '\0') {
        char *comma = strchr(p, ',');
        char *end;

        if (comma != NULL)
            *comma = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        end = p + strlen(p);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*p == '\0') {
            rc = fail(err, errlen, "%s: empty entry in '%.64s'", o->key, value);
            goto fail_copy;
        }
        if (n == max) {
            rc = fail(err, errlen, "%s: more than %zu entries", o->key, max);
            goto fail_copy;
        }
        items[n++] = p;
        if (comma == NULL)
            break;
        p = comma + 1;
        if (*p == '\0') {
            rc = fail(err, errlen, "%s: empty entry in '%.64s'", o->key, value);
            goto fail_copy;
        }
    }
    rc = set_list(cfg, o, items, n, err, errlen);
fail_copy:
    free(copy);
    return rc;
}

/* Replaces a string field with a copy of v (NULL clears it). */
static int set_string(char **field, const char *v)
{
    char *copy = NULL;

    if (v != NULL && (copy = strdup(v)) == NULL)
        return ROOST_ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

int roost_config_set(roost_config_t *cfg, const char *key, const char *value,
                     char *err, size_t errlen)
{
    const opt_t *o;
    unsigned long long n = 0;
    int b = 0, rc;

    if (cfg == NULL || key == NULL)
        return fail(err, errlen, "config: no option given");
    o = find_opt(key);
    if (o == NULL)
        return fail(err, errlen, "%.64s: unknown option", key);
    if (value == NULL)
        return fail(err, errlen, "%s: a value is required", o->key);

    switch (o->type) {
    case OPT_NODE_ID:
        /* Empty means "pick a random id at start", like leaving it null. */
        if (value[0] != '\0' && (rc = check_node_id(o, value, err, errlen)) < 0)
            return rc;
        rc = set_string(FIELD(cfg, o, char *), value[0] != '\0' ? value : NULL);
        break;
    case OPT_DOMAINS:
    case OPT_BIND:
        return set_list_csv(cfg, o, value, err, errlen);
    case OPT_HOST:
        if ((rc = check_host(o, value, err, errlen)) < 0)
            return rc;
        rc = set_string(FIELD(cfg, o, char *), value);
        break;
    case OPT_SECRET:
        /* Never echo the value: it is a password. */
        if (strlen(value) > PASSWORD_MAX)
            return fail(err, errlen, "%s: longer than %d bytes", o->key, PASSWORD_MAX);
        rc = set_string(FIELD(cfg, o, char *), value[0] != '\0' ? value : NULL);
        break;
    case OPT_PATH:
        /* Checked when loaded (node/tls.c), which names the key on error. */
        if (strlen(value) > PATH_MAX)
            return fail(err, errlen, "%s: longer than %d bytes", o->key, PATH_MAX);
        rc = set_string(FIELD(cfg, o, char *), value[0] != '\0' ? value : NULL);
        break;
    case OPT_BOOL:
        if ((rc = parse_bool(o, value, &b, err, errlen)) < 0)
            return rc;
        *FIELD(cfg, o, int) = b;
        return 0;
    case OPT_INT:
    case OPT_UINT:
    case OPT_SIZE:
        if ((rc = parse_number(o, value, &n, err, errlen)) < 0)
            return rc;
        /* The table's max keeps n within each field's type. */
        if (o->type == OPT_INT)
            *FIELD(cfg, o, int) = (int)n;
        else if (o->type == OPT_UINT)
            *FIELD(cfg, o, unsigned) = (unsigned)n;
        else
            *FIELD(cfg, o, size_t) = (size_t)n;
        return 0;
    case OPT_LOG_LEVEL:
        b = roost_log_level_parse(value);
        if (b < 0)
            return fail(err, errlen, "%s: not one of debug, info, warn, error: '%.64s'",
                        o->key, value);
        /* Stored canonical, so "WARNING" in a file reads back as "warn". */
        {
            static const char *const names[] = { "debug", "info", "warn", "error" };
            rc = set_string(FIELD(cfg, o, char *), names[b]);
        }
        break;
    case OPT_LOG_FORMAT:
        if (strcasecmp(value, "logfmt") == 0)
            *FIELD(cfg, o, int) = 0;
        else if (strcasecmp(value, "json") == 0)
            *FIELD(cfg, o, int) = 1;
        else
            return fail(err, errlen, "%s: not one of logfmt, json: '%.64s'", o->key, value);
        return 0;
    case OPT_IP: {
        char *ip = NULL;
        if ((rc = prepare_bind(o, value, &ip, err, errlen)) < 0)
            return rc;
        free(*FIELD(cfg, o, char *));
        *FIELD(cfg, o, char *) = ip;
        return 0;
    }
    default:
        return fail(err, errlen, "%s: unsupported option type", o->key);
    }
    if (rc == ROOST_ENOMEM)
        return oom(err, errlen, o->key);
    return rc;
}

/* ---- validation ---------------------------------------------------------- */

int roost_config_validate(const roost_config_t *cfg, char *err, size_t errlen)
{
    if (cfg == NULL)
        return fail(err, errlen, "config: missing");
    if (cfg->n_domains == 0)
        return fail(err, errlen, "domains: at least one hosted domain is required");
    if (cfg->n_domains > ROOST_CONFIG_MAX_DOMAINS)
        return fail(err, errlen, "domains: more than %d entries", ROOST_CONFIG_MAX_DOMAINS);
    if (cfg->n_c2s_bind == 0)
        return fail(err, errlen, "c2s.bind: at least one listen address is required");
    if (cfg->n_c2s_bind > ROOST_CONFIG_MAX_BIND)
        return fail(err, errlen, "c2s.bind: more than %d entries", ROOST_CONFIG_MAX_BIND);
    for (size_t i = 0; i < cfg->n_domains; i++) {
        if (cfg->domains[i] == NULL || cfg->domains[i][0] == '\0')
            return fail(err, errlen, "domains: empty domain");
    }
    for (size_t i = 0; i < cfg->n_c2s_bind; i++) {
        if (cfg->c2s_bind[i] == NULL || cfg->c2s_bind[i][0] == '\0')
            return fail(err, errlen, "c2s.bind: empty address");
    }
    if (cfg->redis_host == NULL || cfg->redis_host[0] == '\0')
        return fail(err, errlen, "redis.host: must not be empty");
    if (roost_log_level_parse(cfg->log_level) < 0)
        return fail(err, errlen, "log.level: not one of debug, info, warn, error");
    if (cfg->admin_bind == NULL || cfg->admin_bind[0] == '\0')
        return fail(err, errlen, "admin.bind: must not be empty");

    /* Ranges again: the struct may have been filled by hand, not by _set. */
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_t *o = &opts[i];
        long long v;

        if (o->type == OPT_INT)
            v = *FIELD(cfg, o, const int);
        else if (o->type == OPT_UINT)
            v = *FIELD(cfg, o, const unsigned);
        else if (o->type == OPT_SIZE)
            v = (long long)*FIELD(cfg, o, const size_t);
        else
            continue;
        if (v < 0 || (unsigned long long)v < o->min || (unsigned long long)v > o->max)
            return fail(err, errlen, "%s: out of range %llu..%llu: %lld", o->key, o->min,
                        o->max, v);
    }

    if (cfg->max_stanza_size_preauth > cfg->max_stanza_size)
        return fail(err, errlen,
                    "limits.max_stanza_size_preauth: must not exceed limits.max_stanza_size "
                    "(%zu > %zu)", cfg->max_stanza_size_preauth, cfg->max_stanza_size);
    if (cfg->write_low_watermark >= cfg->write_high_watermark)
        return fail(err, errlen,
                    "limits.write_low_watermark: must be below limits.write_high_watermark "
                    "(%zu >= %zu)", cfg->write_low_watermark, cfg->write_high_watermark);
    if (cfg->write_high_watermark > cfg->write_max)
        return fail(err, errlen,
                    "limits.write_high_watermark: must not exceed limits.write_max "
                    "(%zu > %zu)", cfg->write_high_watermark, cfg->write_max);
    if (cfg->auth_tarpit_max_ms < cfg->auth_tarpit_delay_ms)
        return fail(err, errlen,
                    "limits.auth_tarpit_max_ms: must not be below limits.auth_tarpit_delay_ms "
                    "(%u < %u)", cfg->auth_tarpit_max_ms, cfg->auth_tarpit_delay_ms);
    /* At least two renewals must fit in one lease, or a single slow reply
     * costs the node its lease. */
    if (cfg->renew_ms * 2 > cfg->lease_ms)
        return fail(err, errlen,
                    "cluster.renew_ms: must be at most half of cluster.lease_ms (%u, %u)",
                    cfg->renew_ms, cfg->lease_ms);
    return 0;
}

int roost_config_hosts(const roost_config_t *cfg, const char *domain)
{
    if (cfg == NULL || domain == NULL)
        return 0;
    for (size_t i = 0; i < cfg->n_domains; i++) {
        if (strcmp(cfg->domains[i], domain) == 0)
            return 1;
    }
    return 0;
}

/* ---- the YAML file ------------------------------------------------------- */

/* Every scalar is loaded as a string and handed to roost_config_set, so the
 * file gets the same strict parsing and key-naming messages as the
 * environment and the command line. A NULL member means "not in the file". */
typedef struct {
    char *id;
} y_node_t;

typedef struct {
    char **bind;
    unsigned bind_count;
    char *port;
    char *allow_plaintext_auth;
    char *require_encryption;
    char *tls_port;
    char *proxy_protocol;
    char *proxy_timeout_ms;
} y_c2s_t;

typedef struct {
    char *cert;
    char *key;
} y_tls_t;

typedef struct {
    char *host;
    char *port;
    char *password;
    char *db;
    char *timeout_ms;
} y_redis_t;

typedef struct {
    char *max_stanza_size;
    char *max_stanza_size_preauth;
    char *max_depth;
    char *max_attrs;
    char *auth_timeout_s;
    char *ping_interval_s;
    char *ping_timeout_s;
    char *max_roster_items;
    char *max_offline;
    char *max_blocklist;
    char *max_pending_subscriptions;
    char *max_resources;
    char *write_high_watermark;
    char *write_low_watermark;
    char *write_max;
    char *max_conns_per_ip;
    char *max_new_conns_per_ip_per_s;
    char *max_tracked_ips;
    char *auth_tarpit_after;
    char *auth_tarpit_delay_ms;
    char *auth_tarpit_max_ms;
    char *auth_tarpit_forget_s;
} y_limits_t;

typedef struct {
    char *lease_ms;
    char *renew_ms;
    char *reap_interval_ms;
} y_cluster_t;

typedef struct {
    char *level;
    char *format;
} y_log_t;

typedef struct {
    char *resume_timeout_s;
    char *max_queue;
} y_sm_t;

typedef struct {
    char *rate;
    char *grace_s;
    char *deadline_s;
} y_drain_t;

typedef struct {
    char *enabled;
    char *bind;
    char *port;
    char *timeout_ms;
    char *max_connections;
} y_admin_t;

typedef struct {
    y_node_t *node;
    char **domains;
    unsigned domains_count;
    y_c2s_t *c2s;
    y_tls_t *tls;
    y_redis_t *redis;
    y_limits_t *limits;
    y_cluster_t *cluster;
    y_log_t *log;
    y_sm_t *sm;
    y_drain_t *drain;
    y_admin_t *admin;
} y_root_t;

/* "null", "~" or an empty value reads as NULL, same as an absent key. */
#define Y_SCALAR(key, st, member) \
    CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_POINTER_NULL_STR | CYAML_FLAG_OPTIONAL, st, member, \
                           0, SCALAR_MAX)
/* An empty section ("log:" with everything commented out) is fine. */
#define Y_SECTION(key, member, fields) \
    CYAML_FIELD_MAPPING_PTR(key, CYAML_FLAG_POINTER_NULL | CYAML_FLAG_OPTIONAL, y_root_t, \
                            member, fields)

static const cyaml_schema_value_t y_string = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, SCALAR_MAX),
};

static const cyaml_schema_field_t y_node_fields[] = {
    Y_SCALAR("id", y_node_t, id),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t y_c2s_fields[] = {
    CYAML_FIELD_SEQUENCE("bind", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_c2s_t, bind,
                         &y_string, 1, ROOST_CONFIG_MAX_BIND),
    Y_SCALAR("port", y_c2s_t, port),
    Y_SCALAR("allow_plaintext_auth", y_c2s_t, allow_plaintext_auth),
    Y_SCALAR("require_encryption", y_c2s_t, require_encryption),
    Y_SCALAR("tls_port", y_c2s_t, tls_port),
    Y_SCALAR("proxy_protocol", y_c2s_t, proxy_protocol),
    Y_SCALAR("proxy_timeout_ms", y_c2s_t, proxy_timeout_ms),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t y_tls_fields[] = {
    Y_SCALAR("cert", y_tls_t, cert),
    Y_SCALAR("key", y_tls_t, key),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t y_redis_fields[] = {
    Y_SCALAR("host", y_redis_t, host),
    Y_SCALAR("port", y_redis_t, port),
    Y_SCALAR("password", y_redis_t, password),
    Y_SCALAR("db", y_redis_t, db),
    Y_SCALAR("timeout_ms", y_redis_t, timeout_ms),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t y_limits_fields[] = {
    Y_SCALAR("max_stanza_size", y_limits_t, max_stanza_size),
    Y_SCALAR("max_stanza_size_preauth", y_limits_t, max_stanza_size_preauth),
    Y_SCALAR("max_depth", y_limits_t, max_depth),
    Y_SCALAR("max_attrs", y_limits_t, max_attrs),
    Y_SCALAR("auth_timeout_s", y_limits_t, auth_timeout_s),
    Y_SCALAR("ping_interval_s", y_limits_t, ping_interval_s),
    Y_SCALAR("ping_timeout_s", y_limits_t, ping_timeout_s),
    Y_SCALAR("max_roster_items", y_limits_t, max_roster_items),
    Y_SCALAR("max_offline", y_limits_t, max_offline),
    Y_SCALAR("max_blocklist", y_limits_t, max_blocklist),
    Y_SCALAR("max_pending_subscriptions", y_limits_t, max_pending_subscriptions),
    Y_SCALAR("max_resources", y_limits_t, max_resources),
    Y_SCALAR("write_high_watermark", y_limits_t, write_high_watermark),
    Y_SCALAR("write_low_watermark", y_limits_t, write_low_watermark),
    Y_SCALAR("write_max", y_limits_t, write_max),
    Y_SCALAR("max_conns_per_ip", y_limits_t, max_conns_per_ip),
    Y_SCALAR("max_new_conns_per_ip_per_s", y_limits_t, max_new_conns_per_ip_per_s),
    Y_SCALAR("max_tracked_ips", y_limits_t, max_tracked_ips),
    Y_SCALAR("auth_tarpit_after", y_limits_t, auth_tarpit_after),
    Y_SCALAR("auth_tarpit_delay_ms", y_limits_t, auth_tarpit_delay_ms),
    Y_SCALAR("auth_tarpit_max_ms", y_limits_t, auth_tarpit_max_ms),
    Y_SCALAR("auth_tarpit_forget_s", y_limits_t, auth_tarpit_forget_s),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t y_cluster_fields[] = {
    Y_SCALAR("lease_ms", y_cluster_t, lease_ms),
    Y_SCALAR("renew_ms", y_cluster_t, renew_ms),
    Y_SCALAR("reap_interval_ms", y_cluster_t, reap_interval_ms),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t y_log_fields[] = {
    Y_SCALAR("level", y_log_t, level),
    Y_SCALAR("format", y_log_t, format),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t y_admin_fields[] = {
    Y_SCALAR("enabled", y_admin_t, enabled),
    Y_SCALAR("bind", y_admin_t, bind),
    Y_SCALAR("port", y_admin_t, port),
    Y_SCALAR("timeout_ms", y_admin_t, timeout_ms),
    Y_SCALAR("max_connections", y_admin_t, max_connections),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t y_sm_fields[] = {
    Y_SCALAR("resume_timeout_s", y_sm_t, resume_timeout_s),
    Y_SCALAR("max_queue", y_sm_t, max_queue),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t y_drain_fields[] = {
    Y_SCALAR("rate", y_drain_t, rate),
    Y_SCALAR("grace_s", y_drain_t, grace_s),
    Y_SCALAR("deadline_s", y_drain_t, deadline_s),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t y_root_fields[] = {
    Y_SECTION("node", node, y_node_fields),
    CYAML_FIELD_SEQUENCE("domains", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_root_t, domains,
                         &y_string, 1, ROOST_CONFIG_MAX_DOMAINS),
    Y_SECTION("c2s", c2s, y_c2s_fields),
    Y_SECTION("tls", tls, y_tls_fields),
    Y_SECTION("redis", redis, y_redis_fields),
    Y_SECTION("limits", limits, y_limits_fields),
    Y_SECTION("cluster", cluster, y_cluster_fields),
    Y_SECTION("log", log, y_log_fields),
    Y_SECTION("sm", sm, y_sm_fields),
    Y_SECTION("drain", drain, y_drain_fields),
    Y_SECTION("admin", admin, y_admin_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t y_root_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_root_t, y_root_fields),
};

/* What libcyaml said about a rejected file. It reports the cause and then a
 * backtrace, innermost frame first, one log call per line:
 *   Load: Unexpected key: x
 *   Load: Backtrace:
 *     in mapping (line: 3, column: 3)
 *     in mapping field 'redis' (line: 3, column: 3)
 * We keep the cause and the frames so the error string can name the dotted
 * key and the line, and still pass every line on to cyaml_log (stderr). */
#define DIAG_FRAMES 8

typedef struct {
    char cause[160];
    char frames[DIAG_FRAMES][80];   /* "redis", "[2]"; innermost first */
    int n_frames;
    int line, column;
    int in_backtrace;
} diag_t;

static void diag_line(diag_t *d, const char *text)
{
    char name[80];
    int line, column;

    if (strncmp(text, "Load: ", 6) == 0)
        text += 6;
    if (strcmp(text, "Backtrace:") == 0) {
        d->in_backtrace = 1;
        return;
    }
    if (!d->in_backtrace) {
        if (d->cause[0] == '\0')
            snprintf(d->cause, sizeof(d->cause), "%.159s", text);
        return;
    }
    line = column = 0;
    if (sscanf(text, " in mapping field '%79[^']' (line: %d, column: %d)", name, &line,
               &column) >= 1) {
        /* name as is */
    } else if (sscanf(text, " in sequence entry '%70[^']' (line: %d, column: %d)", name, &line,
                      &column) >= 1) {
        char idx[72];
        snprintf(idx, sizeof(idx), "%.70s", name);
        snprintf(name, sizeof(name), "[%.70s]", idx);
    } else {
        /* "in mapping (line: ...)" frames carry where cyaml had read up to,
         * not where the offending key is, so their position is not used. */
        return;
    }
    if (d->line == 0 && line > 0) {
        d->line = line;
        d->column = column;
    }
    if (d->n_frames < DIAG_FRAMES)
        snprintf(d->frames[d->n_frames++], sizeof(d->frames[0]), "%s", name);
}

static void capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    diag_t *d = ctx;
    char text[256];
    size_t len;
    va_list copy;

    va_copy(copy, args);
    cyaml_log(level, NULL, fmt, copy);
    va_end(copy);
    if (level < CYAML_LOG_ERROR)
        return;
    vsnprintf(text, sizeof(text), fmt, args);
    len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    diag_line(d, text);
}

/* Turns the captured diagnostics into "redis.x: unknown key (near line 3,
 * column 3)". Falls back to the generic message when cyaml said something we do not
 * recognise, since its wording is not an API. */
static int diag_fail(const diag_t *d, const char *path, cyaml_err_t e, char *err, size_t errlen)
{
    char key[256] = "";
    char where[48] = "";
    const char *cause = d->cause;
    int drop_index = 0;

    if (d->cause[0] == '\0')
        return fail(err, errlen, "config %s: invalid: %s (see message above)", path,
                    cyaml_strerror(e));

    if (strncmp(cause, "Unexpected key: ", 16) == 0) {
        cause = "unknown key";
    } else if (strncmp(cause, "Mapping field already seen: ", 28) == 0) {
        cause = "key given twice";
    } else if (strncmp(cause, "Expecting STRING", 16) == 0) {
        cause = "expected a single value";
    } else if (strncmp(cause, "Expecting MAPPING", 17) == 0) {
        cause = "expected a mapping of keys";
    } else if (strncmp(cause, "Expecting SEQUENCE", 18) == 0) {
        cause = "expected a list";
    } else if (strncmp(cause, "Excessive entries", 17) == 0) {
        cause = "too many entries";
        drop_index = 1;
    } else if (strncmp(cause, "Insufficient entries", 20) == 0) {
        cause = "must not be an empty list";
        drop_index = 1;
    } else if (strncmp(cause, "libyaml: ", 9) == 0) {
        cause += 9;
    }

    for (int i = d->n_frames - 1; i >= 0; i--) {
        const char *f = d->frames[i];
        size_t len = strlen(key);

        if (f[0] == '[') {
            if (drop_index && i == 0)
                continue;
            snprintf(key + len, sizeof(key) - len, "%s", f);
        } else {
            snprintf(key + len, sizeof(key) - len, "%s%s", len > 0 ? "." : "", f);
        }
    }
    if (strncmp(d->cause, "Unexpected key: ", 16) == 0) {
        size_t len = strlen(key);
        snprintf(key + len, sizeof(key) - len, "%s%s", len > 0 ? "." : "", d->cause + 16);
    }
    if (d->line > 0)
        snprintf(where, sizeof(where), " (near line %d, column %d)", d->line, d->column);
    if (key[0] != '\0')
        return fail(err, errlen, "config %s: %s: %s%s", path, key, cause, where);
    return fail(err, errlen, "config %s: %s%s", path, cause, where);
}

static int read_file(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
    FILE *f;
    char *buf;
    size_t len;
    int rc;

    f = fopen(path, "rb");
    if (f == NULL)
        return fail(err, errlen, "config %s: %s", path, strerror(errno));
    /* One byte more than the cap tells "too big" from "exactly the cap". */
    buf = malloc(FILE_MAX + 1);
    if (buf == NULL) {
        rc = oom(err, errlen, path);
        goto fail_file;
    }
    len = fread(buf, 1, FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = fail(err, errlen, "config %s: %s", path, strerror(errno));
        goto fail_buf;
    }
    if (len > FILE_MAX) {
        rc = fail(err, errlen, "config %s: larger than %d bytes", path, FILE_MAX);
        goto fail_buf;
    }
    fclose(f);
    *out = buf;
    *out_len = len;
    return 0;

fail_buf:
    free(buf);
fail_file:
    fclose(f);
    return rc;
}

/* Sets key from a file value, prefixing any error with the file name. */
static int apply(roost_config_t *cfg, const char *path, const char *key, const char *value,
                 char *err, size_t errlen)
{
    char msg[512];
    int rc;

    if (value == NULL)
        return 0;
    rc = roost_config_set(cfg, key, value, msg, sizeof(msg));
    if (rc < 0)
        fail(err, errlen, "config %s: %s", path, msg);
    return rc;
}

static int apply_list(roost_config_t *cfg, const char *path, const char *key, char **items,
                      unsigned n, char *err, size_t errlen)
{
    char msg[512];
    int rc;

    if (items == NULL)
        return 0;
    rc = set_list(cfg, find_opt(key), items, n, msg, sizeof(msg));
    if (rc < 0)
        fail(err, errlen, "config %s: %s", path, msg);
    return rc;
}

static int apply_yaml(roost_config_t *cfg, const char *path, const y_root_t *y, char *err,
                      size_t errlen)
{
    const y_node_t *node = y->node;
    const y_c2s_t *c2s = y->c2s;
    const y_tls_t *tls = y->tls;
    const y_redis_t *redis = y->redis;
    const y_limits_t *lim = y->limits;
    const y_cluster_t *cl = y->cluster;
    const y_log_t *lg = y->log;
    const y_sm_t *sm = y->sm;
    const y_drain_t *dr = y->drain;
    const y_admin_t *ad = y->admin;
    const struct {
        const char *key;
        const char *value;
    } kv[] = {
        { "node.id", node ? node->id : NULL },
        { "c2s.port", c2s ? c2s->port : NULL },
        { "c2s.allow_plaintext_auth", c2s ? c2s->allow_plaintext_auth : NULL },
        { "c2s.require_encryption", c2s ? c2s->require_encryption : NULL },
        { "c2s.tls_port", c2s ? c2s->tls_port : NULL },
        { "c2s.proxy_protocol", c2s ? c2s->proxy_protocol : NULL },
        { "c2s.proxy_timeout_ms", c2s ? c2s->proxy_timeout_ms : NULL },
        { "tls.cert", tls ? tls->cert : NULL },
        { "tls.key", tls ? tls->key : NULL },
        { "redis.host", redis ? redis->host : NULL },
        { "redis.port", redis ? redis->port : NULL },
        { "redis.password", redis ? redis->password : NULL },
        { "redis.db", redis ? redis->db : NULL },
        { "redis.timeout_ms", redis ? redis->timeout_ms : NULL },
        { "limits.max_stanza_size", lim ? lim->max_stanza_size : NULL },
        { "limits.max_stanza_size_preauth", lim ? lim->max_stanza_size_preauth : NULL },
        { "limits.max_depth", lim ? lim->max_depth : NULL },
        { "limits.max_attrs", lim ? lim->max_attrs : NULL },
        { "limits.auth_timeout_s", lim ? lim->auth_timeout_s : NULL },
        { "limits.ping_interval_s", lim ? lim->ping_interval_s : NULL },
        { "limits.ping_timeout_s", lim ? lim->ping_timeout_s : NULL },
        { "limits.max_roster_items", lim ? lim->max_roster_items : NULL },
        { "limits.max_offline", lim ? lim->max_offline : NULL },
        { "limits.max_blocklist", lim ? lim->max_blocklist : NULL },
        { "limits.max_pending_subscriptions", lim ? lim->max_pending_subscriptions : NULL },
        { "limits.max_resources", lim ? lim->max_resources : NULL },
        { "limits.write_high_watermark", lim ? lim->write_high_watermark : NULL },
        { "limits.write_low_watermark", lim ? lim->write_low_watermark : NULL },
        { "limits.write_max", lim ? lim->write_max : NULL },
        { "limits.max_conns_per_ip", lim ? lim->max_conns_per_ip : NULL },
        { "limits.max_new_conns_per_ip_per_s", lim ? lim->max_new_conns_per_ip_per_s : NULL },
        { "limits.max_tracked_ips", lim ? lim->max_tracked_ips : NULL },
        { "limits.auth_tarpit_after", lim ? lim->auth_tarpit_after : NULL },
        { "limits.auth_tarpit_delay_ms", lim ? lim->auth_tarpit_delay_ms : NULL },
        { "limits.auth_tarpit_max_ms", lim ? lim->auth_tarpit_max_ms : NULL },
        { "limits.auth_tarpit_forget_s", lim ? lim->auth_tarpit_forget_s : NULL },
        { "cluster.lease_ms", cl ? cl->lease_ms : NULL },
        { "cluster.renew_ms", cl ? cl->renew_ms : NULL },
        { "cluster.reap_interval_ms", cl ? cl->reap_interval_ms : NULL },
        { "log.level", lg ? lg->level : NULL },
        { "sm.resume_timeout_s", sm ? sm->resume_timeout_s : NULL },
        { "sm.max_queue", sm ? sm->max_queue : NULL },
        { "drain.rate", dr ? dr->rate : NULL },
        { "drain.grace_s", dr ? dr->grace_s : NULL },
        { "drain.deadline_s", dr ? dr->deadline_s : NULL },
        { "log.format", lg ? lg->format : NULL },
        { "admin.enabled", ad ? ad->enabled : NULL },
        { "admin.bind", ad ? ad->bind : NULL },
        { "admin.port", ad ? ad->port : NULL },
        { "admin.timeout_ms", ad ? ad->timeout_ms : NULL },
        { "admin.max_connections", ad ? ad->max_connections : NULL },
    };
    int rc;

    if ((rc = apply_list(cfg, path, "domains", y->domains, y->domains_count, err, errlen)) < 0)
        return rc;
    if (c2s != NULL &&
        (rc = apply_list(cfg, path, "c2s.bind", c2s->bind, c2s->bind_count, err, errlen)) < 0)
        return rc;
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
        if ((rc = apply(cfg, path, kv[i].key, kv[i].value, err, errlen)) < 0)
            return rc;
    }
    return 0;
}

static int load_file(roost_config_t *cfg, const char *path, char *err, size_t errlen)
{
    diag_t diag;
    cyaml_config_t ycfg = {
        .log_fn = capture_log,
        .log_ctx = &diag,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        /* Unknown keys stay errors (the default): a typo must not be
         * silently ignored. Anchors are refused: nothing here needs them
         * and they allow exponential expansion. */
        .flags = CYAML_CFG_NO_ALIAS,
    };
    y_root_t *y = NULL;
    char *text = NULL;
    size_t len = 0;
    cyaml_err_t e;
    int rc;

    if ((rc = read_file(path, &text, &len, err, errlen)) < 0)
        return rc;
    memset(&diag, 0, sizeof(diag));
    e = cyaml_load_data((const uint8_t *)text, len, &ycfg, &y_root_schema, (cyaml_data_t **)&y,
                        NULL);
    free(text);
    if (e == CYAML_ERR_OOM)
        return oom(err, errlen, path);
    if (e != CYAML_OK)
        return diag_fail(&diag, path, e, err, errlen);
    /* An empty document (or all keys commented out) loads as NULL. */
    if (y == NULL)
        return 0;
    rc = apply_yaml(cfg, path, y, err, errlen);
    cyaml_free(&ycfg, &y_root_schema, y, 0);
    return rc;
}

static int load_env(roost_config_t *cfg, char *err, size_t errlen)
{
    char msg[512];
    int rc;

    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(opts[i].env);

        if (v == NULL)
            continue;
        rc = roost_config_set(cfg, opts[i].key, v, msg, sizeof(msg));
        if (rc < 0) {
            fail(err, errlen, "environment %s: %s", opts[i].env, msg);
            return rc;
        }
    }
    return 0;
}

int roost_config_load_unvalidated(roost_config_t *cfg, const char *path, char *err,
                                  size_t errlen)
{
    int rc;

    if ((rc = roost_config_defaults(cfg)) < 0)
        return oom(err, errlen, "config");
    if (path != NULL && (rc = load_file(cfg, path, err, errlen)) < 0)
        goto fail_cfg;
    if ((rc = load_env(cfg, err, errlen)) < 0)
        goto fail_cfg;
    return 0;

fail_cfg:
    roost_config_free(cfg);
    return rc;
}

int roost_config_load(roost_config_t *cfg, const char *path, char *err, size_t errlen)
{
    int rc;

    if ((rc = roost_config_load_unvalidated(cfg, path, err, errlen)) < 0)
        return rc;
    if ((rc = roost_config_validate(cfg, err, errlen)) < 0) {
        roost_config_free(cfg);
        return rc;
    }
    return 0;
}
