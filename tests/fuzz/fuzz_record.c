/* Fuzz target for the stored-record decoders: session records
 * (store/record.h), roster items (store/roster.h) and the RouteEnvelope
 * that nodes publish to each other (unpacked as node/router.c does). The
 * first byte picks the decoder. Whatever decodes must encode again, and
 * decode -> encode -> decode -> encode must give equal records and
 * identical bytes. */
#include <string.h>

#include "proto/roost.pb-c.h"
#include "store/record.h"
#include "store/roster.h"
#include "tests/fuzz/fuzz.h"

static int str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static int session_eq(const roost_session_t *a, const roost_session_t *b)
{
    if (!str_eq(a->resource, b->resource) || strcmp(a->node_id, b->node_id) != 0
        || a->node_epoch != b->node_epoch || a->conn_id != b->conn_id
        || a->priority != b->priority || a->flags != b->flags
        || a->presence_len != b->presence_len || a->n_directed != b->n_directed
        || !str_eq(a->sm_id, b->sm_id) || a->bind_time != b->bind_time)
        return 0;
    if (a->presence_len && memcmp(a->presence, b->presence, a->presence_len) != 0)
        return 0;
    for (size_t i = 0; i < a->n_directed; i++)
        if (!str_eq(a->directed[i], b->directed[i]))
            return 0;
    return 1;
}

static void fuzz_session(const uint8_t *data, size_t size)
{
    roost_session_t a, b, c;
    uint8_t *e1, *e2;
    size_t n1, n2;

    if (roost_session_decode(&a, "res", data, size) != 0) {
        FUZZ_CHECK(a.resource == NULL && a.presence == NULL && a.directed == NULL);
        return;
    }
    FUZZ_CHECK(roost_session_node_id_valid(a.node_id));
    FUZZ_CHECK(a.n_directed <= ROOST_SESS_DIRECTED_MAX);
    FUZZ_CHECK(roost_session_encode(&a, &e1, &n1) == 0);
    FUZZ_CHECK(n1 <= ROOST_SESS_VALUE_MAX + 64);
    FUZZ_CHECK(roost_session_decode(&b, "res", e1, n1) == 0);
    FUZZ_CHECK(session_eq(&a, &b));
    FUZZ_CHECK(roost_session_encode(&b, &e2, &n2) == 0);
    FUZZ_CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
    FUZZ_CHECK(roost_session_copy(&c, &b) == 0 && session_eq(&b, &c));
    free(e2);
    FUZZ_CHECK(roost_session_encode(&c, &e2, &n2) == 0);
    FUZZ_CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
    free(e2);
    free(e1);
    roost_session_clear(&c);
    roost_session_clear(&b);
    roost_session_clear(&a);
    roost_session_clear(&a);    /* clearing a cleared record is harmless */
}

static int item_eq(const roost_roster_item_t *a, const roost_roster_item_t *b)
{
    if (!str_eq(a->jid, b->jid) || !str_eq(a->name, b->name) || a->n_groups != b->n_groups
        || a->sub != b->sub || a->ask != b->ask || a->approved != b->approved)
        return 0;
    for (size_t i = 0; i < a->n_groups; i++)
        if (!str_eq(a->groups[i], b->groups[i]))
            return 0;
    return 1;
}

static void fuzz_roster_item(const uint8_t *data, size_t size)
{
    roost_roster_item_t a, b, c;
    uint8_t *e1, *e2;
    size_t n1, n2;

    memset(&a, 0, sizeof(a));
    if (roost_roster_item_decode(&a, data, size) != 0) {
        roost_roster_item_clear(&a);
        return;
    }
    FUZZ_CHECK(a.jid != NULL);
    FUZZ_CHECK(a.sub >= ROOST_SUB_NONE && a.sub <= ROOST_SUB_BOTH);
    FUZZ_CHECK(a.n_groups <= ROOST_ROSTER_GROUPS_MAX);
    FUZZ_CHECK(roost_roster_item_encode(&a, &e1, &n1) == 0);
    memset(&b, 0, sizeof(b));
    FUZZ_CHECK(roost_roster_item_decode(&b, e1, n1) == 0);
    FUZZ_CHECK(item_eq(&a, &b));
    FUZZ_CHECK(roost_roster_item_encode(&b, &e2, &n2) == 0);
    FUZZ_CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
    free(e2);
    memset(&c, 0, sizeof(c));
    FUZZ_CHECK(roost_roster_item_copy(&c, &b) == 0 && item_eq(&b, &c));
    FUZZ_CHECK(roost_roster_item_encode(&c, &e2, &n2) == 0);
    FUZZ_CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
    free(e2);
    free(e1);
    roost_roster_item_clear(&c);
    roost_roster_item_clear(&b);
    roost_roster_item_clear(&a);
}

/* protobuf-c reads a multi-byte tag of field number 0 (invalid) as an
 * unknown field but cannot read it back once packed; the node never packs
 * an envelope it received, so only then is the re-pack allowed to differ. */
static int has_field0(const ProtobufCMessage *m)
{
    for (size_t i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return 1;
    return 0;
}

/* As roost_router_on_envelope: unpack, read every field it reads, free. */
static void fuzz_envelope(const uint8_t *data, size_t size)
{
    Roost__RouteEnvelope *env = roost__route_envelope__unpack(NULL, size, data);
    Roost__RouteEnvelope *again;
    uint8_t *p1, *p2;
    size_t n1, n2;
    size_t sum = 0;

    if (env == NULL)
        return;
    FUZZ_CHECK(env->origin_node != NULL && env->condition != NULL && env->text != NULL);
    for (size_t i = 0; i < env->n_targets; i++) {
        FUZZ_CHECK(env->targets[i] != NULL && env->targets[i]->jid != NULL);
        sum += strlen(env->targets[i]->jid) + (size_t)env->targets[i]->conn_id;
    }
    FUZZ_CHECK(env->stanza.len == 0 || env->stanza.data != NULL);
    for (size_t i = 0; i < env->stanza.len; i++)
        sum += env->stanza.data[i];
    sum += strlen(env->condition) + strlen(env->text) + env->hops;
    (void)sum;

    n1 = roost__route_envelope__get_packed_size(env);
    p1 = malloc(n1 ? n1 : 1);
    FUZZ_CHECK(p1 != NULL);
    FUZZ_CHECK(roost__route_envelope__pack(env, p1) == n1);
    again = roost__route_envelope__unpack(NULL, n1, p1);
    int field0 = has_field0(&env->base);
    for (size_t i = 0; i < env->n_targets; i++)
        field0 |= has_field0(&env->targets[i]->base);
    if (again == NULL && field0) {
        free(p1);
        roost__route_envelope__free_unpacked(env, NULL);
        return;
    }
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(again->n_targets == env->n_targets && again->hops == env->hops
               && again->kind == env->kind && again->stanza.len == env->stanza.len);
    n2 = roost__route_envelope__get_packed_size(again);
    FUZZ_CHECK(n2 == n1);
    p2 = malloc(n2 ? n2 : 1);
    FUZZ_CHECK(p2 != NULL);
    FUZZ_CHECK(roost__route_envelope__pack(again, p2) == n2 && memcmp(p1, p2, n1) == 0);
    free(p2);
    free(p1);
    roost__route_envelope__free_unpacked(again, NULL);
    roost__route_envelope__free_unpacked(env, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0: fuzz_session(data + 1, size - 1); break;
    case 1: fuzz_roster_item(data + 1, size - 1); break;
    default: fuzz_envelope(data + 1, size - 1); break;
    }
    return 0;
}
