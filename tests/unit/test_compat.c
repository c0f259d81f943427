/* Mixed versions in one cluster (issue 6): the current record codec and
 * envelope against an older encoder (no stream management fields) and a
 * newer one (fields we do not know), both generated from tests/compat/. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto/roost.pb-c.h"
#include "store/record.h"
#include "tests/compat/roost_new.pb-c.h"
#include "tests/compat/roost_old.pb-c.h"

/* A stored value: the plain header the scripts read, then protobuf. */
static uint8_t *with_header(const char *hdr, const uint8_t *pb, size_t n, size_t *out)
{
    size_t hl = strlen(hdr);
    uint8_t *v = malloc(hl + n);
    ck_assert_ptr_nonnull(v);
    memcpy(v, hdr, hl);
    memcpy(v + hl, pb, n);
    *out = hl + n;
    return v;
}

static const uint8_t *body_of(const uint8_t *v, size_t n, size_t *bn)
{
    const uint8_t *nl = memchr(v, '\n', n);
    ck_assert_ptr_nonnull(nl);
    *bn = n - (size_t)(nl + 1 - v);
    return nl + 1;
}

START_TEST(old_record_reads_and_writes)
{
    Roostold__SessionRecord o = ROOSTOLD__SESSION_RECORD__INIT;
    o.version = 1;
    o.node_id = "n-old";
    o.node_epoch = 7;
    o.conn_id = 9;
    o.priority = 5;
    o.flags = ROOST_SESS_F_AVAILABLE;
    o.sm_id = "";
    size_t pn = roostold__session_record__get_packed_size(&o), vn;
    uint8_t *pb = malloc(pn);
    roostold__session_record__pack(&o, pb);
    uint8_t *v = with_header("1,5,7,9,n-old\n", pb, pn, &vn);

    roost_session_t s;
    ck_assert_int_eq(roost_session_decode(&s, "r", v, vn), 0);
    ck_assert_str_eq(s.node_id, "n-old");
    ck_assert_int_eq(s.priority, 5);
    ck_assert_ptr_null(s.unknown);

    /* What we write now (with the SM flag) an old reader still decodes. */
    s.flags |= ROOST_SESS_F_SM;
    uint8_t *w;
    size_t wn, bn;
    ck_assert_int_eq(roost_session_encode(&s, &w, &wn), 0);
    const uint8_t *b = body_of(w, wn, &bn);
    Roostold__SessionRecord *back = roostold__session_record__unpack(NULL, bn, b);
    ck_assert_ptr_nonnull(back);
    ck_assert_str_eq(back->node_id, "n-old");
    ck_assert_uint_eq(back->flags, ROOST_SESS_F_AVAILABLE | ROOST_SESS_F_SM);
    roostold__session_record__free_unpacked(back, NULL);
    roost_session_clear(&s);
    free(w);
    free(v);
    free(pb);
}
END_TEST

START_TEST(new_record_survives_our_read_modify_write)
{
    Roostnew__SessionRecord n = ROOSTNEW__SESSION_RECORD__INIT;
    char *feats[] = { "carbons", "csi" };
    n.version = 2;
    n.node_id = "n-new";
    n.node_epoch = 3;
    n.conn_id = 4;
    n.priority = -1;
    n.sm_id = "";
    n.client_software = "Future 9";
    n.features = feats;
    n.n_features = 2;
    size_t pn = roostnew__session_record__get_packed_size(&n), vn;
    uint8_t *pb = malloc(pn);
    roostnew__session_record__pack(&n, pb);
    uint8_t *v = with_header("0,-1,3,4,n-new\n", pb, pn, &vn);

    roost_session_t s;
    ck_assert_int_eq(roost_session_decode(&s, "r", v, vn), 0);
    ck_assert_ptr_nonnull(s.unknown);
    s.priority = 8;                     /* our modification */
    uint8_t *w;
    size_t wn, bn;
    ck_assert_int_eq(roost_session_encode(&s, &w, &wn), 0);
    const uint8_t *b = body_of(w, wn, &bn);
    Roostnew__SessionRecord *back = roostnew__session_record__unpack(NULL, bn, b);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(back->priority, 8);
    ck_assert_str_eq(back->client_software, "Future 9");
    ck_assert_uint_eq(back->n_features, 2);
    ck_assert_str_eq(back->features[1], "csi");
    roostnew__session_record__free_unpacked(back, NULL);
    roost_session_clear(&s);
    free(w);
    free(v);
    free(pb);
}
END_TEST

START_TEST(envelopes_across_versions)
{
    /* Current -> old: a stream-management envelope is still a STANZA to
     * an old node, the number an unknown field it keeps on re-packing. */
    Roost__RouteEnvelope e = ROOST__ROUTE_ENVELOPE__INIT;
    Roost__RouteEnvelope__Target t = ROOST__ROUTE_ENVELOPE__TARGET__INIT;
    Roost__RouteEnvelope__Target *tp = &t;
    t.jid = "a@b/c";
    e.kind = ROOST__ROUTE_ENVELOPE__KIND__STANZA;
    e.targets = &tp;
    e.n_targets = 1;
    e.stanza.data = (uint8_t *)"<message/>";
    e.stanza.len = 10;
    e.sm_seq = 300;
    size_t n = roost__route_envelope__get_packed_size(&e);
    uint8_t *buf = malloc(n);
    roost__route_envelope__pack(&e, buf);
    Roostold__RouteEnvelope *o = roostold__route_envelope__unpack(NULL, n, buf);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->kind, ROOSTOLD__ROUTE_ENVELOPE__KIND__STANZA);
    ck_assert_str_eq(o->targets[0]->jid, "a@b/c");
    ck_assert_uint_eq(o->base.n_unknown_fields, 1);
    size_t on = roostold__route_envelope__get_packed_size(o);
    uint8_t *obuf = malloc(on);
    roostold__route_envelope__pack(o, obuf);
    Roost__RouteEnvelope *again = roost__route_envelope__unpack(NULL, on, obuf);
    ck_assert_ptr_nonnull(again);
    ck_assert_uint_eq(again->sm_seq, 300);
    roost__route_envelope__free_unpacked(again, NULL);
    roostold__route_envelope__free_unpacked(o, NULL);
    free(obuf);
    free(buf);

    /* New -> current: unknown fields and an unknown kind decode. */
    Roostnew__RouteEnvelope ne = ROOSTNEW__ROUTE_ENVELOPE__INIT;
    ne.kind = ROOSTNEW__ROUTE_ENVELOPE__KIND__MIGRATE;
    ne.trace_id = 77;
    ne.hops = 1;
    n = roostnew__route_envelope__get_packed_size(&ne);
    buf = malloc(n);
    roostnew__route_envelope__pack(&ne, buf);
    Roost__RouteEnvelope *cur = roost__route_envelope__unpack(NULL, n, buf);
    ck_assert_ptr_nonnull(cur);
    ck_assert_uint_eq(cur->hops, 1);
    /* Not a kind we act on: our router neither delivers nor kicks. */
    ck_assert_int_ne(cur->kind, ROOST__ROUTE_ENVELOPE__KIND__STANZA);
    ck_assert_int_ne(cur->kind, ROOST__ROUTE_ENVELOPE__KIND__KICK);
    ck_assert_int_ne(cur->kind, ROOST__ROUTE_ENVELOPE__KIND__DRAIN);
    roost__route_envelope__free_unpacked(cur, NULL);
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("compat");
    TCase *tc = tcase_create("versions");
    tcase_add_test(tc, old_record_reads_and_writes);
    tcase_add_test(tc, new_record_survives_our_read_modify_write);
    tcase_add_test(tc, envelopes_across_versions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
