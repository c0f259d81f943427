/* Node configuration: defaults, then a YAML file (libcyaml), then ROOST_*
 * environment variables, then command-line options. */
#ifndef ROOST_CONFIG_H
#define ROOST_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define ROOST_CONFIG_MAX_DOMAINS 64
#define ROOST_CONFIG_MAX_BIND 8

typedef struct {
    /* node */
    char *node_id;                 /* NULL: random at start */
    char *domains[ROOST_CONFIG_MAX_DOMAINS];
    size_t n_domains;
    /* c2s listener */
    char *c2s_bind[ROOST_CONFIG_MAX_BIND];   /* default "0.0.0.0", "::" */
    size_t n_c2s_bind;
    int c2s_port;                  /* default 5222 */
    int allow_plaintext_auth;      /* default 0; only while require_encryption is
                                      off: 1 = SASL without TLS from any address,
                                      PLAIN included (else SCRAM on loopback only) */
    int require_encryption;        /* default 1: no SASL or stanza before TLS */
    int c2s_tls_port;              /* default 5223: direct TLS (XEP-0368); 0 off */
    int proxy_protocol;            /* default 0: 1 = every c2s connection starts with a
                                      PROXY v1/v2 header (node/proxy.h) */
    unsigned proxy_timeout_ms;     /* default 5000: deadline for that header */
    /* tls */
    char *tls_cert;                /* PEM chain path; NULL: none (no TLS) */
    char *tls_key;                 /* PEM key path; NULL: the key is in tls_cert */
    /* redis */
    char *redis_host;              /* default "127.0.0.1" */
    int redis_port;                /* default 6379 */
    char *redis_password;          /* default NULL */
    int redis_db;                  /* default 0 */
    unsigned redis_timeout_ms;     /* default 2000 */
    /* limits */
    size_t max_stanza_size;        /* default 262144 */
    size_t max_stanza_size_preauth;/* default 16384 */
    unsigned max_depth;            /* default 32 */
    unsigned max_attrs;            /* default 32 */
    unsigned auth_timeout_s;       /* default 30 */
    unsigned ping_interval_s;      /* default 300: XEP-0199 ping after this idle time; 0 off */
    unsigned ping_timeout_s;       /* default 60: no answer -> connection-timeout */
    unsigned max_roster_items;     /* default 1000 */
    unsigned max_offline;          /* default 100; full: new messages bounced */
    unsigned max_blocklist;        /* default 1000 */
    unsigned max_pending_subscriptions; /* default 1000 */
    unsigned max_resources;        /* default 10 */
    size_t write_high_watermark;   /* default 262144: stop reading */
    size_t write_low_watermark;    /* default 65536: read again */
    size_t write_max;              /* default 4194304: disconnect */
    /* limits per client address (node/iptable.h; IPv6 per /64) */
    unsigned max_conns_per_ip;     /* default 100; 0 off */
    unsigned max_new_conns_per_ip_per_s; /* default 50 (token bucket, burst as many); 0 off */
    unsigned max_tracked_ips;      /* default 65536: addresses remembered without a connection */
    unsigned auth_tarpit_after;    /* default 3: failed logins per address answered at once */
    unsigned auth_tarpit_delay_ms; /* default 1000: then delayed, doubling per failure; 0 off */
    unsigned auth_tarpit_max_ms;   /* default 10000: the delay's cap */
    unsigned auth_tarpit_forget_s; /* default 300: quiet time after which failures are forgotten */
    /* cluster membership (node/cluster.h) */
    unsigned lease_ms;             /* default 10000: TTL of roost:node:<id> */
    unsigned renew_ms;             /* default 2000: lease renewal period (< lease_ms) */
    unsigned reap_interval_ms;     /* default 2000: dead-node scan period */
    /* log */
    char *log_level;               /* default "info" */

    unsigned sm_resume_timeout_s;  /* default 300: how long a detached SM session waits */
    unsigned sm_max_queue;         /* default 1000: unacked stanzas per SM session */
    unsigned drain_rate;           /* default 200: clients released per second */
    unsigned drain_grace_s;        /* default 30: a drained non-SM session's record is kept */
    unsigned drain_deadline_s;     /* default 60: the drain ends (exit) by then */
    int log_json;                  /* log.format: 0 logfmt (default), 1 JSON lines */
    /* admin HTTP listener (node/admin.h) */
    int admin_enabled;             /* default 1 */
    char *admin_bind;              /* default "127.0.0.1": one IP literal */
    int admin_port;                /* default 5280; 0 = the kernel picks (logged) */
    unsigned admin_timeout_ms;     /* default 5000: a request must arrive within this */
    unsigned admin_max_connections;/* default 64: more at once are dropped */
} roost_config_t;

/* Fills *cfg with defaults. 0/ENOMEM. */
int roost_config_defaults(roost_config_t *cfg);

/* Loads path (may be NULL: defaults only), then applies environment
 * overrides (ROOST_NODE_ID, ROOST_DOMAINS=a,b, ROOST_C2S_BIND=a,b,
 * ROOST_C2S_PORT, ROOST_ALLOW_PLAINTEXT_AUTH, ROOST_C2S_REQUIRE_ENCRYPTION,
 * ROOST_C2S_TLS_PORT, ROOST_C2S_PROXY_PROTOCOL, ROOST_C2S_PROXY_TIMEOUT_MS, ROOST_TLS_CERT, ROOST_TLS_KEY, ROOST_REDIS_HOST,
 * ROOST_REDIS_PORT, ROOST_REDIS_PASSWORD, ROOST_REDIS_DB,
 * ROOST_REDIS_TIMEOUT_MS, ROOST_LOG_LEVEL, ROOST_LOG_FORMAT, ROOST_ADMIN_ENABLED,
 * ROOST_ADMIN_BIND, ROOST_ADMIN_PORT, ROOST_ADMIN_TIMEOUT_MS,
 * ROOST_ADMIN_MAX_CONNECTIONS, ROOST_LIMITS_<KEY>,
 * ROOST_CLUSTER_LEASE_MS, ROOST_CLUSTER_RENEW_MS,
 * ROOST_CLUSTER_REAP_INTERVAL_MS), and
 * validates. On error returns ROOST_EINVAL and writes a message naming the
 * offending key into err (size errlen); *cfg is then left freed (zeroed). */
int roost_config_load(roost_config_t *cfg, const char *path, char *err, size_t errlen);

/* The same without the final roost_config_validate, so that command-line
 * options (roost_config_set) can still go on top of file and environment
 * before the caller validates. */
int roost_config_load_unvalidated(roost_config_t *cfg, const char *path, char *err,
                                  size_t errlen);

/* Sets one option by its dotted YAML name ("redis.port", "c2s.bind",
 * "domains", "limits.max_stanza_size", ...) from a string, as the command
 * line does. ROOST_EINVAL with a message in err on a bad key or value. */
int roost_config_set(roost_config_t *cfg, const char *key, const char *value,
                     char *err, size_t errlen);

/* Checks cross-field rules (at least one domain, watermarks ordered, ...). */
int roost_config_validate(const roost_config_t *cfg, char *err, size_t errlen);

/* 1 when domain (prepared, lowercase) is hosted. */
int roost_config_hosts(const roost_config_t *cfg, const char *domain);

void roost_config_free(roost_config_t *cfg);

#endif
