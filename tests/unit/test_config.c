/* Unit tests for node/config (defaults, YAML file, environment, set,
 * validation) and the logfmt output of node/log. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/config.h"
#include "node/log.h"
#include "store/error.h"

static const char *const env_vars[] = {
    "ROOST_NODE_ID", "ROOST_DOMAINS", "ROOST_C2S_BIND", "ROOST_C2S_PORT",
    "ROOST_ALLOW_PLAINTEXT_AUTH", "ROOST_REDIS_HOST", "ROOST_REDIS_PORT",
    "ROOST_REDIS_PASSWORD", "ROOST_REDIS_DB", "ROOST_REDIS_TIMEOUT_MS", "ROOST_LOG_LEVEL",
    "ROOST_LIMITS_MAX_STANZA_SIZE", "ROOST_LIMITS_MAX_STANZA_SIZE_PREAUTH",
    "ROOST_LIMITS_MAX_DEPTH", "ROOST_LIMITS_MAX_ATTRS", "ROOST_LIMITS_AUTH_TIMEOUT_S",
    "ROOST_LIMITS_MAX_RESOURCES", "ROOST_LIMITS_WRITE_HIGH_WATERMARK",
    "ROOST_LIMITS_WRITE_LOW_WATERMARK", "ROOST_LIMITS_WRITE_MAX",
    "ROOST_C2S_REQUIRE_ENCRYPTION", "ROOST_C2S_TLS_PORT", "ROOST_TLS_CERT", "ROOST_TLS_KEY",
    "ROOST_C2S_PROXY_PROTOCOL", "ROOST_C2S_PROXY_TIMEOUT_MS", "ROOST_LIMITS_MAX_CONNS_PER_IP",
    "ROOST_LIMITS_MAX_NEW_CONNS_PER_IP_PER_S", "ROOST_LIMITS_MAX_TRACKED_IPS",
    "ROOST_LIMITS_AUTH_TARPIT_AFTER", "ROOST_LIMITS_AUTH_TARPIT_DELAY_MS",
    "ROOST_LIMITS_AUTH_TARPIT_MAX_MS", "ROOST_LIMITS_AUTH_TARPIT_FORGET_S",
};

/* The developer's shell or CI may export ROOST_* variables; tests start clean. */
static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
}

static char tmp_path[64];

/* Writes text into a fresh temporary file; returns its path (static). */
static const char *write_tmp(const char *text)
{
    int fd;
    size_t len = strlen(text);

    snprintf(tmp_path, sizeof(tmp_path), "/tmp/roost-test-config-XXXXXX");
    fd = mkstemp(tmp_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return tmp_path;
}

static int load_text(roost_config_t *cfg, const char *text, char *err, size_t errlen)
{
    const char *path = write_tmp(text);
    int rc = roost_config_load(cfg, path, err, errlen);

    unlink(path);
    return rc;
}

static int zeroed(const roost_config_t *cfg)
{
    static const roost_config_t zero;
    return memcmp(cfg, &zero, sizeof(zero)) == 0;
}

static void assert_default_values(const roost_config_t *cfg)
{
    ck_assert_ptr_null(cfg->node_id);
    ck_assert_uint_eq(cfg->n_c2s_bind, 2);
    ck_assert_str_eq(cfg->c2s_bind[0], "0.0.0.0");
    ck_assert_str_eq(cfg->c2s_bind[1], "::");
    ck_assert_int_eq(cfg->c2s_port, 5222);
    ck_assert_int_eq(cfg->allow_plaintext_auth, 0);
    ck_assert_int_eq(cfg->require_encryption, 1);
    ck_assert_int_eq(cfg->c2s_tls_port, 5223);
    ck_assert_int_eq(cfg->proxy_protocol, 0);
    ck_assert_uint_eq(cfg->proxy_timeout_ms, 5000);
    ck_assert_uint_eq(cfg->max_conns_per_ip, 100);
    ck_assert_uint_eq(cfg->max_new_conns_per_ip_per_s, 50);
    ck_assert_uint_eq(cfg->max_tracked_ips, 65536);
    ck_assert_uint_eq(cfg->auth_tarpit_after, 3);
    ck_assert_uint_eq(cfg->auth_tarpit_delay_ms, 1000);
    ck_assert_uint_eq(cfg->auth_tarpit_max_ms, 10000);
    ck_assert_uint_eq(cfg->auth_tarpit_forget_s, 300);
    ck_assert_ptr_null(cfg->tls_cert);
    ck_assert_ptr_null(cfg->tls_key);
    ck_assert_str_eq(cfg->redis_host, "127.0.0.1");
    ck_assert_int_eq(cfg->redis_port, 6379);
    ck_assert_ptr_null(cfg->redis_password);
    ck_assert_int_eq(cfg->redis_db, 0);
    ck_assert_uint_eq(cfg->redis_timeout_ms, 2000);
    ck_assert_uint_eq(cfg->max_stanza_size, 262144);
    ck_assert_uint_eq(cfg->max_stanza_size_preauth, 16384);
    ck_assert_uint_eq(cfg->max_depth, 32);
    ck_assert_uint_eq(cfg->max_attrs, 32);
    ck_assert_uint_eq(cfg->auth_timeout_s, 30);
    ck_assert_uint_eq(cfg->max_resources, 10);
    ck_assert_uint_eq(cfg->write_high_watermark, 262144);
    ck_assert_uint_eq(cfg->write_low_watermark, 65536);
    ck_assert_uint_eq(cfg->write_max, 4194304);
    ck_assert_str_eq(cfg->log_level, "info");
}

START_TEST(test_defaults)
{
    roost_config_t cfg;
    char err[256] = "";

    ck_assert_int_eq(roost_config_defaults(&cfg), 0);
    assert_default_values(&cfg);
    ck_assert_uint_eq(cfg.n_domains, 0);
    /* No hosted domain by default: refusing to start beats serving nothing. */
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), ROOST_EINVAL);
    ck_assert_str_eq(err, "domains: at least one hosted domain is required");
    roost_config_free(&cfg);
    ck_assert(zeroed(&cfg));
    roost_config_free(&cfg);   /* twice is fine */
    roost_config_free(NULL);
}
END_TEST

START_TEST(test_load_no_path)
{
    roost_config_t cfg;
    char err[256] = "";

    clear_env();
    ck_assert_int_eq(roost_config_load(&cfg, NULL, err, sizeof(err)), ROOST_EINVAL);
    ck_assert_str_eq(err, "domains: at least one hosted domain is required");
    ck_assert(zeroed(&cfg));

    ck_assert_int_eq(roost_config_load_unvalidated(&cfg, NULL, err, sizeof(err)), 0);
    assert_default_values(&cfg);
    ck_assert_int_eq(roost_config_set(&cfg, "domains", "example.org", err, sizeof(err)), 0);
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), 0);
    roost_config_free(&cfg);
}
END_TEST

START_TEST(test_load_example)
{
    roost_config_t cfg;
    char err[512] = "";
    char path[1024];
    const char *srcdir = getenv("ROOST_SRCDIR");

    clear_env();
    snprintf(path, sizeof(path), "%s/ops/roost.example.yaml", srcdir ? srcdir : ".");
    ck_assert_msg(roost_config_load(&cfg, path, err, sizeof(err)) == 0, "%s", err);
    assert_default_values(&cfg);
    ck_assert_uint_eq(cfg.n_domains, 1);
    ck_assert_str_eq(cfg.domains[0], "localhost");
    roost_config_free(&cfg);
}
END_TEST

START_TEST(test_load_overrides)
{
    roost_config_t cfg;
    char err[512] = "";
    int rc;

    clear_env();
    rc = load_text(&cfg,
                   "# a comment\n"
                   "node:\n"
                   "  id: node-1.a_b\n"
                   "domains:\n"
                   "  - Example.ORG\n"
                   "  - chat.example.net.\n"
                   "c2s:\n"
                   "  bind: [127.0.0.1]\n"
                   "  port: 0\n"
                   "  allow_plaintext_auth: yes\n"
                   "  require_encryption: no\n"
                   "  tls_port: 0\n"
                   "  proxy_protocol: true\n"
                   "  proxy_timeout_ms: 250\n"
                   "tls:\n"
                   "  cert: /etc/roost/chain.pem\n"
                   "  key: /etc/roost/key.pem\n"
                   "redis:\n"
                   "  host: redis.internal\n"
                   "  port: 6380\n"
                   "  password: \"s3cret\"\n"
                   "  db: 3\n"
                   "  timeout_ms: 500\n"
                   "limits:\n"
                   "  max_stanza_size: 65536\n"
                   "  max_stanza_size_preauth: 4096\n"
                   "  max_depth: 16\n"
                   "  max_attrs: 8\n"
                   "  auth_timeout_s: 10\n"
                   "  max_resources: 3\n"
                   "  write_high_watermark: 1000\n"
                   "  write_low_watermark: 100\n"
                   "  write_max: 5000\n"
                   "  max_conns_per_ip: 0\n"
                   "  max_new_conns_per_ip_per_s: 7\n"
                   "  max_tracked_ips: 16\n"
                   "  auth_tarpit_after: 0\n"
                   "  auth_tarpit_delay_ms: 0\n"
                   "  auth_tarpit_max_ms: 0\n"
                   "  auth_tarpit_forget_s: 1\n"
                   "log:\n"
                   "  level: WARNING\n",
                   err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(cfg.node_id, "node-1.a_b");
    ck_assert_uint_eq(cfg.n_domains, 2);
    ck_assert_str_eq(cfg.domains[0], "example.org");
    ck_assert_str_eq(cfg.domains[1], "chat.example.net");
    ck_assert_uint_eq(cfg.n_c2s_bind, 1);
    ck_assert_str_eq(cfg.c2s_bind[0], "127.0.0.1");
    ck_assert_int_eq(cfg.c2s_port, 0);
    ck_assert_int_eq(cfg.allow_plaintext_auth, 1);
    ck_assert_int_eq(cfg.require_encryption, 0);
    ck_assert_int_eq(cfg.c2s_tls_port, 0);
    ck_assert_int_eq(cfg.proxy_protocol, 1);
    ck_assert_uint_eq(cfg.proxy_timeout_ms, 250);
    ck_assert_uint_eq(cfg.max_conns_per_ip, 0);
    ck_assert_uint_eq(cfg.max_new_conns_per_ip_per_s, 7);
    ck_assert_uint_eq(cfg.max_tracked_ips, 16);
    ck_assert_uint_eq(cfg.auth_tarpit_after, 0);
    ck_assert_uint_eq(cfg.auth_tarpit_delay_ms, 0);
    ck_assert_uint_eq(cfg.auth_tarpit_max_ms, 0);
    ck_assert_uint_eq(cfg.auth_tarpit_forget_s, 1);
    ck_assert_str_eq(cfg.tls_cert, "/etc/roost/chain.pem");
    ck_assert_str_eq(cfg.tls_key, "/etc/roost/key.pem");
    ck_assert_str_eq(cfg.redis_host, "redis.internal");
    ck_assert_int_eq(cfg.redis_port, 6380);
    ck_assert_str_eq(cfg.redis_password, "s3cret");
    ck_assert_int_eq(cfg.redis_db, 3);
    ck_assert_uint_eq(cfg.redis_timeout_ms, 500);
    ck_assert_uint_eq(cfg.max_stanza_size, 65536);
    ck_assert_uint_eq(cfg.max_stanza_size_preauth, 4096);
    ck_assert_uint_eq(cfg.max_depth, 16);
    ck_assert_uint_eq(cfg.max_attrs, 8);
    ck_assert_uint_eq(cfg.auth_timeout_s, 10);
    ck_assert_uint_eq(cfg.max_resources, 3);
    ck_assert_uint_eq(cfg.write_high_watermark, 1000);
    ck_assert_uint_eq(cfg.write_low_watermark, 100);
    ck_assert_uint_eq(cfg.write_max, 5000);
    ck_assert_str_eq(cfg.log_level, "warn");
    roost_config_free(&cfg);

    /* Partial file: untouched keys keep their defaults; empty sections and
     * explicit nulls are the same as leaving the key out. */
    rc = load_text(&cfg, "domains: [localhost]\nredis:\n  port: 7000\n  password: ~\nlog:\n",
                   err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(cfg.redis_port, 7000);
    ck_assert_str_eq(cfg.redis_host, "127.0.0.1");
    ck_assert_ptr_null(cfg.redis_password);
    ck_assert_str_eq(cfg.log_level, "info");
    roost_config_free(&cfg);
}
END_TEST

START_TEST(test_load_unknown_key)
{
    roost_config_t cfg;
    char err[512] = "";

    clear_env();
    ck_assert_int_eq(load_text(&cfg, "domains: [localhost]\nredis:\n  hots: example\n", err,
                               sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "redis.hots: unknown key") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "near line 3") != NULL, "%s", err);
    ck_assert(zeroed(&cfg));

    ck_assert_int_eq(load_text(&cfg, "domains: [localhost]\nfrobnicate: 1\n", err,
                               sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "frobnicate: unknown key") != NULL, "%s", err);
    ck_assert_msg(strncmp(err, "config /tmp/", 12) == 0, "%s", err);

    ck_assert_int_eq(load_text(&cfg, "domains: [localhost]\nredis:\n  port: 1\n  port: 2\n",
                               err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "redis.port") != NULL, "%s", err);

    ck_assert_int_eq(load_text(&cfg, "domains: localhost\n", err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "domains: expected a list") != NULL, "%s", err);

    ck_assert_int_eq(load_text(&cfg, "c2s:\n  port: [1, 2]\n", err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "c2s.port: expected a single value") != NULL, "%s", err);

    /* Broken YAML syntax still gets a location. */
    ck_assert_int_eq(load_text(&cfg, "domains: [localhost\n", err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "line") != NULL, "%s", err);
}
END_TEST

START_TEST(test_load_bad_values)
{
    roost_config_t cfg;
    char err[512] = "";

    clear_env();
    ck_assert_int_eq(load_text(&cfg, "domains: [localhost]\nredis:\n  port: abc\n", err,
                               sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "redis.port: not a number: 'abc'") != NULL, "%s", err);
    ck_assert(zeroed(&cfg));

    ck_assert_int_eq(load_text(&cfg, "domains: [localhost]\nlimits:\n  max_depth: 1000\n", err,
                               sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "limits.max_depth: out of range 4..256") != NULL, "%s", err);

    ck_assert_int_eq(load_text(&cfg, "domains: [localhost]\nc2s:\n  allow_plaintext_auth: maybe\n",
                               err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "c2s.allow_plaintext_auth: not a boolean") != NULL, "%s", err);

    ck_assert_int_eq(load_text(&cfg, "domains: [localhost]\nlog:\n  level: loud\n", err,
                               sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "log.level") != NULL, "%s", err);

    ck_assert_int_eq(roost_config_load(&cfg, "/nonexistent/roost.yaml", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_msg(strstr(err, "/nonexistent/roost.yaml") != NULL, "%s", err);
}
END_TEST

START_TEST(test_env_overrides)
{
    roost_config_t cfg;
    char err[512] = "";
    const char *path;
    int rc;

    clear_env();
    setenv("ROOST_DOMAINS", "A.example, b.example", 1);
    setenv("ROOST_C2S_BIND", "::1,127.0.0.1", 1);
    setenv("ROOST_C2S_PORT", "15222", 1);
    setenv("ROOST_ALLOW_PLAINTEXT_AUTH", "1", 1);
    setenv("ROOST_REDIS_PORT", "7001", 1);
    setenv("ROOST_REDIS_PASSWORD", "pw", 1);
    setenv("ROOST_LIMITS_MAX_STANZA_SIZE", "100000", 1);
    setenv("ROOST_LIMITS_WRITE_MAX", "8000000", 1);
    setenv("ROOST_LOG_LEVEL", "debug", 1);
    setenv("ROOST_NODE_ID", "n7", 1);
    /* The environment wins over the file. */
    path = write_tmp("domains: [file.example]\nredis:\n  port: 6390\n  host: 10.0.0.1\n");
    rc = roost_config_load(&cfg, path, err, sizeof(err));
    unlink(path);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_uint_eq(cfg.n_domains, 2);
    ck_assert_str_eq(cfg.domains[0], "a.example");
    ck_assert_str_eq(cfg.domains[1], "b.example");
    ck_assert_uint_eq(cfg.n_c2s_bind, 2);
    ck_assert_str_eq(cfg.c2s_bind[0], "::1");
    ck_assert_int_eq(cfg.c2s_port, 15222);
    ck_assert_int_eq(cfg.allow_plaintext_auth, 1);
    ck_assert_int_eq(cfg.redis_port, 7001);
    ck_assert_str_eq(cfg.redis_host, "10.0.0.1");   /* from the file */
    ck_assert_str_eq(cfg.redis_password, "pw");
    ck_assert_uint_eq(cfg.max_stanza_size, 100000);
    ck_assert_uint_eq(cfg.write_max, 8000000);
    ck_assert_str_eq(cfg.log_level, "debug");
    ck_assert_str_eq(cfg.node_id, "n7");
    roost_config_free(&cfg);

    setenv("ROOST_LIMITS_MAX_ATTRS", "12x", 1);
    ck_assert_int_eq(roost_config_load(&cfg, NULL, err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strstr(err, "ROOST_LIMITS_MAX_ATTRS") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "limits.max_attrs: not a number: '12x'") != NULL, "%s", err);
    ck_assert(zeroed(&cfg));
    clear_env();
}
END_TEST

START_TEST(test_set)
{
    roost_config_t cfg;
    char err[512] = "";

    ck_assert_int_eq(roost_config_defaults(&cfg), 0);

    /* strings */
    ck_assert_int_eq(roost_config_set(&cfg, "redis.host", "cache.local", err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.redis_host, "cache.local");
    ck_assert_int_eq(roost_config_set(&cfg, "redis.host", "", err, sizeof(err)), ROOST_EINVAL);
    ck_assert_str_eq(cfg.redis_host, "cache.local");
    ck_assert_int_eq(roost_config_set(&cfg, "redis.password", "hunter2", err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.redis_password, "hunter2");
    ck_assert_int_eq(roost_config_set(&cfg, "redis.password", "", err, sizeof(err)), 0);
    ck_assert_ptr_null(cfg.redis_password);
    ck_assert_int_eq(roost_config_set(&cfg, "node.id", "edge-3", err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.node_id, "edge-3");
    ck_assert_int_eq(roost_config_set(&cfg, "node.id", "a b", err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strncmp(err, "node.id:", 8) == 0, "%s", err);
    ck_assert_int_eq(roost_config_set(&cfg, "node.id", "", err, sizeof(err)), 0);
    ck_assert_ptr_null(cfg.node_id);

    /* lists */
    ck_assert_int_eq(roost_config_set(&cfg, "domains", "One.Example,two.example", err,
                                      sizeof(err)), 0);
    ck_assert_uint_eq(cfg.n_domains, 2);
    ck_assert_str_eq(cfg.domains[0], "one.example");
    ck_assert_int_eq(roost_config_set(&cfg, "domains", "x.example,,y.example", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_msg(strstr(err, "domains: empty entry") != NULL, "%s", err);
    ck_assert_int_eq(roost_config_set(&cfg, "domains", "x.example,X.example", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_msg(strstr(err, "twice") != NULL, "%s", err);
    ck_assert_int_eq(roost_config_set(&cfg, "domains", "user@x.example", err, sizeof(err)),
                     ROOST_EINVAL);
    /* A failed set leaves the previous list alone. */
    ck_assert_uint_eq(cfg.n_domains, 2);
    ck_assert_str_eq(cfg.domains[1], "two.example");
    ck_assert_int_eq(roost_config_set(&cfg, "c2s.bind", "127.0.0.1, ::1", err, sizeof(err)), 0);
    ck_assert_uint_eq(cfg.n_c2s_bind, 2);
    ck_assert_str_eq(cfg.c2s_bind[1], "::1");
    ck_assert_int_eq(roost_config_set(&cfg, "c2s.bind", "localhost", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_msg(strncmp(err, "c2s.bind:", 9) == 0, "%s", err);
    ck_assert_int_eq(roost_config_set(&cfg, "c2s.bind",
                                      "::1,::2,::3,::4,::5,::6,::7,::8,::9", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_uint_eq(cfg.n_c2s_bind, 2);

    /* booleans */
    ck_assert_int_eq(roost_config_set(&cfg, "c2s.allow_plaintext_auth", "TRUE", err,
                                      sizeof(err)), 0);
    ck_assert_int_eq(cfg.allow_plaintext_auth, 1);
    ck_assert_int_eq(roost_config_set(&cfg, "c2s.allow_plaintext_auth", "no", err, sizeof(err)),
                     0);
    ck_assert_int_eq(cfg.allow_plaintext_auth, 0);
    ck_assert_int_eq(roost_config_set(&cfg, "c2s.allow_plaintext_auth", "2", err, sizeof(err)),
                     ROOST_EINVAL);

    /* numbers: strict and ranged */
    ck_assert_int_eq(roost_config_set(&cfg, "redis.port", "6400", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.redis_port, 6400);
    ck_assert_int_eq(roost_config_set(&cfg, "redis.port", "abc", err, sizeof(err)), ROOST_EINVAL);
    ck_assert_str_eq(err, "redis.port: not a number: 'abc'");
    ck_assert_int_eq(roost_config_set(&cfg, "redis.port", "-1", err, sizeof(err)), ROOST_EINVAL);
    ck_assert_int_eq(roost_config_set(&cfg, "redis.port", " 1", err, sizeof(err)), ROOST_EINVAL);
    ck_assert_int_eq(roost_config_set(&cfg, "redis.port", "0", err, sizeof(err)), ROOST_EINVAL);
    ck_assert_int_eq(roost_config_set(&cfg, "redis.port", "65536", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_msg(strstr(err, "out of range") != NULL, "%s", err);
    ck_assert_int_eq(roost_config_set(&cfg, "redis.port", "99999999999999999999999", err,
                                      sizeof(err)), ROOST_EINVAL);
    ck_assert_int_eq(cfg.redis_port, 6400);
    ck_assert_int_eq(roost_config_set(&cfg, "c2s.port", "0", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.c2s_port, 0);
    ck_assert_int_eq(roost_config_set(&cfg, "redis.db", "15", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.redis_db, 15);
    ck_assert_int_eq(roost_config_set(&cfg, "redis.timeout_ms", "250", err, sizeof(err)), 0);
    ck_assert_uint_eq(cfg.redis_timeout_ms, 250);
    ck_assert_int_eq(roost_config_set(&cfg, "limits.max_stanza_size", "16777216", err,
                                      sizeof(err)), 0);
    ck_assert_uint_eq(cfg.max_stanza_size, 16777216);
    ck_assert_int_eq(roost_config_set(&cfg, "limits.max_stanza_size", "16777217", err,
                                      sizeof(err)), ROOST_EINVAL);
    ck_assert_int_eq(roost_config_set(&cfg, "limits.max_stanza_size", "1023", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_int_eq(roost_config_set(&cfg, "limits.max_depth", "3", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_int_eq(roost_config_set(&cfg, "limits.max_attrs", "0", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_int_eq(roost_config_set(&cfg, "limits.auth_timeout_s", "3601", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_int_eq(roost_config_set(&cfg, "limits.max_resources", "1000", err, sizeof(err)),
                     0);
    ck_assert_uint_eq(cfg.max_resources, 1000);
    ck_assert_int_eq(roost_config_set(&cfg, "limits.write_low_watermark", "0", err, sizeof(err)),
                     0);
    ck_assert_uint_eq(cfg.write_low_watermark, 0);

    /* log level */
    ck_assert_int_eq(roost_config_set(&cfg, "log.level", "Error", err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.log_level, "error");
    ck_assert_int_eq(roost_config_set(&cfg, "log.level", "verbose", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_str_eq(cfg.log_level, "error");

    /* bad keys */
    ck_assert_int_eq(roost_config_set(&cfg, "redis.prot", "1", err, sizeof(err)), ROOST_EINVAL);
    ck_assert_str_eq(err, "redis.prot: unknown option");
    ck_assert_int_eq(roost_config_set(&cfg, "redis.port", NULL, err, sizeof(err)), ROOST_EINVAL);
    /* err may be omitted */
    ck_assert_int_eq(roost_config_set(&cfg, "redis.port", "x", NULL, 0), ROOST_EINVAL);

    roost_config_free(&cfg);
}
END_TEST

START_TEST(test_validate)
{
    roost_config_t cfg;
    char err[512] = "";

    ck_assert_int_eq(roost_config_defaults(&cfg), 0);
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strncmp(err, "domains:", 8) == 0, "%s", err);
    ck_assert_int_eq(roost_config_set(&cfg, "domains", "localhost", err, sizeof(err)), 0);
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), 0);

    cfg.write_low_watermark = 300000;
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strncmp(err, "limits.write_low_watermark:", 27) == 0, "%s", err);
    cfg.write_low_watermark = cfg.write_high_watermark;
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), ROOST_EINVAL);
    cfg.write_low_watermark = 65536;

    cfg.write_high_watermark = cfg.write_max + 1;
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strncmp(err, "limits.write_high_watermark:", 28) == 0, "%s", err);
    cfg.write_high_watermark = 262144;

    cfg.max_stanza_size_preauth = cfg.max_stanza_size + 1;
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strncmp(err, "limits.max_stanza_size_preauth:", 31) == 0, "%s", err);
    cfg.max_stanza_size_preauth = 16384;

    /* Ranges are rechecked for structs filled by hand. */
    cfg.max_depth = 1;
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strncmp(err, "limits.max_depth:", 17) == 0, "%s", err);
    cfg.max_depth = 32;

    /* The tarpit's cap cannot be below its first delay. */
    ck_assert_int_eq(roost_config_set(&cfg, "limits.auth_tarpit_max_ms", "500", err,
                                      sizeof(err)), 0);
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strncmp(err, "limits.auth_tarpit_max_ms:", 26) == 0, "%s", err);
    ck_assert_int_eq(roost_config_set(&cfg, "limits.auth_tarpit_delay_ms", "0", err,
                                      sizeof(err)), 0);
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(roost_config_set(&cfg, "limits.max_tracked_ips", "15", err, sizeof(err)),
                     ROOST_EINVAL);
    ck_assert_msg(strstr(err, "limits.max_tracked_ips: out of range") != NULL, "%s", err);
    ck_assert_int_eq(roost_config_set(&cfg, "c2s.proxy_protocol", "maybe", err, sizeof(err)),
                     ROOST_EINVAL);

    ck_assert_int_eq(roost_config_set(&cfg, "c2s.bind", "", err, sizeof(err)), 0);
    ck_assert_int_eq(roost_config_validate(&cfg, err, sizeof(err)), ROOST_EINVAL);
    ck_assert_msg(strncmp(err, "c2s.bind:", 9) == 0, "%s", err);

    roost_config_free(&cfg);
}
END_TEST

START_TEST(test_hosts)
{
    roost_config_t cfg;
    char err[256] = "";

    ck_assert_int_eq(roost_config_defaults(&cfg), 0);
    ck_assert_int_eq(roost_config_hosts(&cfg, "localhost"), 0);
    ck_assert_int_eq(roost_config_set(&cfg, "domains", "Example.com,localhost", err,
                                      sizeof(err)), 0);
    ck_assert_int_eq(roost_config_hosts(&cfg, "example.com"), 1);
    ck_assert_int_eq(roost_config_hosts(&cfg, "localhost"), 1);
    ck_assert_int_eq(roost_config_hosts(&cfg, "example.org"), 0);
    ck_assert_int_eq(roost_config_hosts(&cfg, "sub.example.com"), 0);
    ck_assert_int_eq(roost_config_hosts(&cfg, "example.co"), 0);
    ck_assert_int_eq(roost_config_hosts(&cfg, ""), 0);
    ck_assert_int_eq(roost_config_hosts(&cfg, NULL), 0);
    ck_assert_int_eq(roost_config_hosts(NULL, "localhost"), 0);
    roost_config_free(&cfg);
}
END_TEST

START_TEST(test_log_level_parse)
{
    ck_assert_int_eq(roost_log_level_parse("debug"), ROOST_LOG_DEBUG);
    ck_assert_int_eq(roost_log_level_parse("info"), ROOST_LOG_INFO);
    ck_assert_int_eq(roost_log_level_parse("warn"), ROOST_LOG_WARN);
    ck_assert_int_eq(roost_log_level_parse("WARNING"), ROOST_LOG_WARN);
    ck_assert_int_eq(roost_log_level_parse("error"), ROOST_LOG_ERROR);
    ck_assert_int_eq(roost_log_level_parse("trace"), -1);
    ck_assert_int_eq(roost_log_level_parse(""), -1);
    ck_assert_int_eq(roost_log_level_parse(NULL), -1);
    ck_assert_int_eq(roost_log_get_level(), ROOST_LOG_INFO);
    roost_log_set_level(ROOST_LOG_ERROR);
    ck_assert_int_eq(roost_log_get_level(), ROOST_LOG_ERROR);
    roost_log_set_level((roost_log_level_t)42);   /* ignored */
    ck_assert_int_eq(roost_log_get_level(), ROOST_LOG_ERROR);
    roost_log_set_level(ROOST_LOG_INFO);
}
END_TEST

/* Runs fn with stderr redirected into a pipe and returns what it wrote. */
static char captured[8192];

static const char *capture_stderr(void (*fn)(void))
{
    int fds[2], saved;
    ssize_t n;

    ck_assert_int_eq(pipe(fds), 0);
    saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fds[1], STDERR_FILENO), 0);
    close(fds[1]);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = read(fds[0], captured, sizeof(captured) - 1);
    close(fds[0]);
    captured[n > 0 ? n : 0] = '\0';
    return captured;
}

static void log_plain(void)
{
    roost_log(ROOST_LOG_INFO, 0, "node %s up", "n1");
}

static void log_conn_escaped(void)
{
    roost_log(ROOST_LOG_WARN, 42, "bad \"x\"\\\nnext\x01");
}

static void log_filtered(void)
{
    roost_log_set_level(ROOST_LOG_WARN);
    ROOST_INFO(0, "hidden");
    ROOST_DEBUG(0, "hidden");
    ROOST_ERROR(7, "shown");
    roost_log_set_level(ROOST_LOG_INFO);
}

static void log_long(void)
{
    static char big[10000];

    memset(big, 'a', sizeof(big) - 1);
    ROOST_INFO(1, "%s", big);
}

START_TEST(test_log_format)
{
    const char *out;
    const char *msg;

    out = capture_stderr(log_plain);
    ck_assert_msg(strncmp(out, "ts=", 3) == 0, "%s", out);
    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
    ck_assert_int_eq(out[13], 'T');
    ck_assert_int_eq(out[26], 'Z');
    ck_assert_int_eq(out[22], '.');
    ck_assert_msg(strcmp(out + 27, " level=info msg=\"node n1 up\"\n") == 0, "%s", out);

    out = capture_stderr(log_conn_escaped);
    msg = strstr(out, " level=");
    ck_assert_ptr_nonnull(msg);
    ck_assert_str_eq(msg, " level=warn conn=42 msg=\"bad \\\"x\\\"\\\\\\nnext\\x01\"\n");

    out = capture_stderr(log_filtered);
    ck_assert_ptr_null(strstr(out, "hidden"));
    ck_assert_ptr_nonnull(strstr(out, "level=error conn=7 msg=\"shown\"\n"));
    ck_assert_ptr_null(strchr(strchr(out, '\n') + 1, '\n'));   /* one line */

    out = capture_stderr(log_long);
    ck_assert_uint_le(strlen(out), 4096);
    ck_assert_ptr_nonnull(strstr(out, "aaa...\"\n"));
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_load_no_path);
    tcase_add_test(tc, test_load_example);
    tcase_add_test(tc, test_load_overrides);
    tcase_add_test(tc, test_load_unknown_key);
    tcase_add_test(tc, test_load_bad_values);
    tcase_add_test(tc, test_env_overrides);
    tcase_add_test(tc, test_set);
    tcase_add_test(tc, test_validate);
    tcase_add_test(tc, test_hosts);
    tcase_add_test(tc, test_log_level_parse);
    tcase_add_test(tc, test_log_format);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
