/* The node's own metrics: every handle is looked up once in
 * roost_stats_init and kept in a static table, so a stanza costs a switch
 * on its first letter and an add, never a lookup by name. */
#include <stdio.h>
#include <string.h>

#include "node/c2s.h"
#include "node/metrics.h"
#include "node/stats.h"
#include "store/error.h"

enum { K_MESSAGE, K_PRESENCE, K_IQ, K_COUNT };

static const char *const kind_names[K_COUNT] = { "message", "presence", "iq" };

/* RFC 6120 §6.5 SASL failure conditions, plus a bucket for anything else
 * so that a label value never comes from a peer. */
static const char *const sasl_conditions[] = {
    "aborted", "account-disabled", "credentials-expired", "encryption-required",
    "incorrect-encoding", "invalid-authzid", "invalid-mechanism", "malformed-request",
    "mechanism-too-weak", "not-authorized", "temporary-auth-failure", "other",
};
#define N_SASL (sizeof(sasl_conditions) / sizeof(sasl_conditions[0]))

static const char *const phase_names[ROOST_C2S_PHASES] = {
    [ROOST_C2S_PHASE_STREAM] = "stream",
    [ROOST_C2S_PHASE_AUTH] = "auth",
    [ROOST_C2S_PHASE_BIND] = "bind",
    [ROOST_C2S_PHASE_ESTABLISHED] = "established",
    [ROOST_C2S_PHASE_CLOSING] = "closing",
};

static struct {
    roost_metric_t *in[K_COUNT], *out[K_COUNT];
    roost_metric_t *login_ok, *login_fail[N_SASL];
    roost_metric_t *routed_local, *routed_remote;
    roost_metric_t *published, *unrouted, *received;
    roost_metric_t *redis_latency, *redis_timeouts, *redis_errors;
    roost_metric_t *conns[ROOST_C2S_PHASES];
} m;

/* Powers of about 2.5 from 100 µs to 2.5 s: a local Redis answers in the
 * first buckets, a struggling one in the last; redis.timeout_ms caps it. */
static const double latency_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
};

static double sessions_now(void *data)
{
    const roost_server_t *srv = data;
    return srv->sessions != NULL ? (double)roost_map_size(srv->sessions) : 0;
}

static int kind_of(const char *name)
{
    if (name == NULL)
        return -1;
    switch (name[0]) {
    case 'm': return strcmp(name, "message") == 0 ? K_MESSAGE : -1;
    case 'p': return strcmp(name, "presence") == 0 ? K_PRESENCE : -1;
    case 'i': return name[1] == 'q' && name[2] == '\0' ? K_IQ : -1;
    default: return -1;
    }
}

int roost_stats_init(roost_server_t *srv, const char *version)
{
    char labels[128];
    int ok = 1;

    for (int k = 0; k < K_COUNT; k++) {
        snprintf(labels, sizeof(labels), "kind=\"%s\"", kind_names[k]);
        m.in[k] = roost_metric_counter("roost_stanzas_in_total", labels,
                                       "Stanzas received from clients and routed, by kind");
        m.out[k] = roost_metric_counter("roost_stanzas_out_total", labels,
                                        "Stanzas written to clients, by kind");
        ok &= m.in[k] != NULL && m.out[k] != NULL;
    }
    m.login_ok = roost_metric_counter("roost_logins_total", "result=\"ok\"",
                                      "SASL authentications, by result and failure condition");
    ok &= m.login_ok != NULL;
    for (size_t i = 0; i < N_SASL; i++) {
        snprintf(labels, sizeof(labels), "result=\"failure\",reason=\"%s\"", sasl_conditions[i]);
        m.login_fail[i] = roost_metric_counter("roost_logins_total", labels, NULL);
        ok &= m.login_fail[i] != NULL;
    }
    m.routed_local = roost_metric_counter("roost_routed_total", "path=\"local\"",
                                          "Stanza deliveries to a local session or into an "
                                          "envelope for another node");
    m.routed_remote = roost_metric_counter("roost_routed_total", "path=\"remote\"", NULL);
    m.published = roost_metric_counter("roost_pubsub_published_total", "",
                                       "Route envelopes published to other nodes");
    m.unrouted = roost_metric_counter("roost_pubsub_unrouted_total", "",
                                      "Publishes that reached no node (PUBLISH answered 0)");
    m.received = roost_metric_counter("roost_pubsub_received_total", "",
                                      "Route envelopes received on this node's channel");
    m.redis_latency = roost_metric_histogram("roost_redis_latency_seconds", "",
                                             "Redis command latency, send to reply",
                                             latency_bounds,
                                             sizeof(latency_bounds) / sizeof(latency_bounds[0]));
    m.redis_timeouts = roost_metric_counter("roost_redis_failures_total", "reason=\"timeout\"",
                                            "Redis calls that failed, by reason");
    m.redis_errors = roost_metric_counter("roost_redis_failures_total", "reason=\"error\"", NULL);
    for (int p = 0; p < ROOST_C2S_PHASES; p++) {
        snprintf(labels, sizeof(labels), "state=\"%s\"", phase_names[p]);
        m.conns[p] = roost_metric_gauge("roost_connections", labels,
                                        "Client connections, by session state");
        ok &= m.conns[p] != NULL;
    }
    ok &= m.routed_local != NULL && m.routed_remote != NULL && m.published != NULL &&
          m.unrouted != NULL && m.received != NULL && m.redis_latency != NULL &&
          m.redis_timeouts != NULL && m.redis_errors != NULL;
    ok &= roost_metric_gauge_fn("roost_sessions", "", "Resources bound on this node",
                                sessions_now, srv) == 0;
    /* The version goes into a label value: keep it to safe characters. */
    char v[65];
    size_t n = 0;
    for (const char *p = version != NULL ? version : ""; *p != '\0' && n < sizeof(v) - 1; p++)
        v[n++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) ? '_' : *p;
    v[n] = '\0';
    snprintf(labels, sizeof(labels), "version=\"%s\"", v);
    roost_metric_t *bi = roost_metric_gauge("roost_build_info", labels,
                                            "Always 1; the label carries the node's version");
    roost_metric_set(bi, 1);
    ok &= bi != NULL;
    return ok ? 0 : ROOST_ENOMEM;
}

void roost_stats_stanza_in(const char *name)
{
    int k = kind_of(name);
    if (k >= 0)
        roost_metric_inc(m.in[k]);
}

void roost_stats_stanza_out(const char *name)
{
    int k = kind_of(name);
    if (k >= 0)
        roost_metric_inc(m.out[k]);
}

void roost_stats_stanza_out_bytes(const char *bytes, size_t len)
{
    int k = -1;
    /* Serialized stanzas start with their element name, unprefixed. */
    if (len >= 4 && bytes[0] == '<') {
        if (len >= 9 && memcmp(bytes + 1, "message", 7) == 0 &&
            (bytes[8] == ' ' || bytes[8] == '>' || bytes[8] == '/'))
            k = K_MESSAGE;
        else if (len >= 10 && memcmp(bytes + 1, "presence", 8) == 0 &&
                 (bytes[9] == ' ' || bytes[9] == '>' || bytes[9] == '/'))
            k = K_PRESENCE;
        else if (bytes[1] == 'i' && bytes[2] == 'q' &&
                 (bytes[3] == ' ' || bytes[3] == '>' || bytes[3] == '/'))
            k = K_IQ;
    }
    if (k >= 0)
        roost_metric_inc(m.out[k]);
}

void roost_stats_login(int ok, const char *condition)
{
    if (ok) {
        roost_metric_inc(m.login_ok);
        return;
    }
    size_t i = 0;
    while (i < N_SASL - 1 && (condition == NULL || strcmp(condition, sasl_conditions[i]) != 0))
        i++;
    roost_metric_inc(m.login_fail[i]);
}

void roost_stats_routed(int remote, size_t n)
{
    if (n > 0)
        roost_metric_add(remote ? m.routed_remote : m.routed_local, (double)n);
}

void roost_stats_published(void)
{
    roost_metric_inc(m.published);
}

void roost_stats_unrouted(void)
{
    roost_metric_inc(m.unrouted);
}

void roost_stats_received(void)
{
    roost_metric_inc(m.received);
}

void roost_stats_redis_observe(double seconds, int status, void *data)
{
    roost_metric_observe(m.redis_latency, seconds);
    if (status == ROOST_ETIMEDOUT)
        roost_metric_inc(m.redis_timeouts);
    else if (status != 0)
        roost_metric_inc(m.redis_errors);
}

void roost_stats_collect(roost_server_t *srv)
{
    size_t counts[ROOST_C2S_PHASES] = { 0 };
    roost_c2s_count_phases(srv, counts);
    for (int p = 0; p < ROOST_C2S_PHASES; p++)
        roost_metric_set(m.conns[p], (double)counts[p]);
}
