/* RosterItem codec: round trips, bounds on both sides, and unknown fields
 * kept verbatim through decode -> encode and copy. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto/roost.pb-c.h"
#include "store/error.h"
#include "store/roster.h"

static char g0[] = "Friends", g1[] = "Work";
static char *groups2[] = { g0, g1 };

static void sample(roost_roster_item_t *it)
{
    memset(it, 0, sizeof(*it));
    it->jid = (char *)"bob@example.org";
    it->name = (char *)"Bob";
    it->groups = groups2;
    it->n_groups = 2;
    it->sub = ROOST_SUB_FROM;
    it->ask = 1;
    it->approved = 0;
}

/* A string of n copies of c (caller frees). */
static char *filled(size_t n, char c)
{
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* Packs m directly with protobuf-c, bypassing our encoder's checks. */
static uint8_t *raw_pack(const Roost__RosterItem *m, size_t *len)
{
    *len = roost__roster_item__get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    ck_assert_ptr_nonnull(b);
    roost__roster_item__pack(m, b);
    return b;
}

START_TEST(round_trip)
{
    roost_roster_item_t s, d, c;
    uint8_t *v;
    size_t n;

    sample(&s);
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), 0);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(roost_roster_item_decode(&d, v, n), 0);
    ck_assert_str_eq(d.jid, "bob@example.org");
    ck_assert_str_eq(d.name, "Bob");
    ck_assert_uint_eq(d.n_groups, 2);
    ck_assert_str_eq(d.groups[0], "Friends");
    ck_assert_str_eq(d.groups[1], "Work");
    ck_assert_int_eq(d.sub, ROOST_SUB_FROM);
    ck_assert_int_eq(d.ask, 1);
    ck_assert_int_eq(d.approved, 0);
    ck_assert_ptr_null(d.unknown);

    /* Encoding is canonical: the CAS compares packed bytes. */
    uint8_t *v2;
    size_t n2;
    ck_assert_int_eq(roost_roster_item_copy(&c, &d), 0);
    ck_assert_ptr_ne(c.groups[1], d.groups[1]);
    ck_assert_int_eq(roost_roster_item_encode(&c, &v2, &n2), 0);
    ck_assert_uint_eq(n2, n);
    ck_assert_int_eq(memcmp(v, v2, n), 0);
    free(v2);
    roost_roster_item_clear(&c);
    roost_roster_item_clear(&d);
    ck_assert_ptr_null(d.jid);
    roost_roster_item_clear(&d);   /* twice is harmless */
    roost_roster_item_clear(NULL);
    free(v);

    /* Minimal item: no name (NULL back, not ""), no groups. */
    memset(&s, 0, sizeof(s));
    s.jid = (char *)"carol@example.org";
    s.sub = ROOST_SUB_BOTH;
    s.approved = 1;
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), 0);
    ck_assert_int_eq(roost_roster_item_decode(&d, v, n), 0);
    ck_assert_ptr_null(d.name);
    ck_assert_uint_eq(d.n_groups, 0);
    ck_assert_ptr_null(d.groups);
    ck_assert_int_eq(d.sub, ROOST_SUB_BOTH);
    ck_assert_int_eq(d.approved, 1);
    ck_assert_int_eq(d.ask, 0);
    roost_roster_item_clear(&d);
    free(v);
}
END_TEST

START_TEST(encode_bounds)
{
    roost_roster_item_t s;
    uint8_t *v = (uint8_t *)1;
    size_t n = 1;
    char *big_name = filled(ROOST_ROSTER_NAME_MAX + 1, 'n');
    char *ok_name = filled(ROOST_ROSTER_NAME_MAX, 'n');
    char *big_group = filled(ROOST_ROSTER_GROUP_MAX + 1, 'g');
    char *many[ROOST_ROSTER_GROUPS_MAX + 1];

    for (size_t i = 0; i <= ROOST_ROSTER_GROUPS_MAX; i++)
        many[i] = g0;

    sample(&s);
    s.name = big_name;
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), ROOST_EINVAL);
    ck_assert_ptr_null(v);
    ck_assert_uint_eq(n, 0);
    s.name = ok_name;
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), 0);
    free(v);

    sample(&s);
    s.groups = many;
    s.n_groups = ROOST_ROSTER_GROUPS_MAX + 1;
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), ROOST_EINVAL);
    s.n_groups = ROOST_ROSTER_GROUPS_MAX;
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), 0);
    free(v);

    sample(&s);
    char *one[] = { big_group };
    s.groups = one;
    s.n_groups = 1;
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), ROOST_EINVAL);

    sample(&s);
    s.sub = (roost_sub_t)4;
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), ROOST_EINVAL);
    sample(&s);
    s.jid = NULL;
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), ROOST_EINVAL);
    s.jid = (char *)"";
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), ROOST_EINVAL);
    sample(&s);
    s.groups = NULL;   /* n_groups 2 without an array */
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), ROOST_EINVAL);

    free(big_name);
    free(ok_name);
    free(big_group);
}
END_TEST

START_TEST(decode_bounds)
{
    Roost__RosterItem m = ROOST__ROSTER_ITEM__INIT;
    roost_roster_item_t d;
    uint8_t *v;
    size_t n;
    char *big = filled(ROOST_ROSTER_NAME_MAX + 1, 'x');
    char *many[ROOST_ROSTER_GROUPS_MAX + 1];

    for (size_t i = 0; i <= ROOST_ROSTER_GROUPS_MAX; i++)
        many[i] = g1;

    m.jid = (char *)"bob@example.org";
    m.name = big;
    v = raw_pack(&m, &n);
    ck_assert_int_eq(roost_roster_item_decode(&d, v, n), ROOST_EINVAL);
    ck_assert_ptr_null(d.jid);
    free(v);

    m.name = (char *)"";
    m.groups = many;
    m.n_groups = ROOST_ROSTER_GROUPS_MAX + 1;
    v = raw_pack(&m, &n);
    ck_assert_int_eq(roost_roster_item_decode(&d, v, n), ROOST_EINVAL);
    free(v);

    m.n_groups = 1;
    char *bg[] = { big };   /* 1025 bytes > ROOST_ROSTER_GROUP_MAX */
    m.groups = bg;
    v = raw_pack(&m, &n);
    ck_assert_int_eq(roost_roster_item_decode(&d, v, n), ROOST_EINVAL);
    free(v);

    m.n_groups = 0;
    m.subscription = 7;
    v = raw_pack(&m, &n);
    ck_assert_int_eq(roost_roster_item_decode(&d, v, n), ROOST_EINVAL);
    free(v);

    m.subscription = 3;
    m.jid = (char *)"";   /* an item without a contact */
    v = raw_pack(&m, &n);
    ck_assert_int_eq(roost_roster_item_decode(&d, v, n), ROOST_EINVAL);
    free(v);

    static const uint8_t junk[] = { 0x0a, 0xff, 0xff, 0xff, 0x0f, 'a' };
    ck_assert_int_eq(roost_roster_item_decode(&d, junk, sizeof(junk)), ROOST_EINVAL);
    ck_assert_int_eq(roost_roster_item_decode(&d, junk, 0), ROOST_EINVAL);
    ck_assert_int_eq(roost_roster_item_decode(&d, NULL, 5), ROOST_EINVAL);

    /* Oversized input is refused before it is parsed. */
    size_t huge = 300u * 1024u;
    uint8_t *h = calloc(1, huge);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(roost_roster_item_decode(&d, h, huge), ROOST_EINVAL);
    free(h);
    free(big);
}
END_TEST

START_TEST(unknown_fields_survive)
{
    roost_roster_item_t s, d, c;
    uint8_t *v, *v2, *v3;
    size_t n, n2, n3;

    sample(&s);
    ck_assert_int_eq(roost_roster_item_encode(&s, &v, &n), 0);
    /* A newer writer's fields 20 (varint 42) and 21 (bytes "hi"). */
    static const uint8_t extra[] = { 0xa0, 0x01, 0x2a, 0xaa, 0x01, 0x02, 'h', 'i' };
    uint8_t *nv = malloc(n + sizeof(extra));
    ck_assert_ptr_nonnull(nv);
    memcpy(nv, v, n);
    memcpy(nv + n, extra, sizeof(extra));
    size_t nn = n + sizeof(extra);

    ck_assert_int_eq(roost_roster_item_decode(&d, nv, nn), 0);
    ck_assert_ptr_nonnull(d.unknown);
    ck_assert_str_eq(d.jid, "bob@example.org");
    ck_assert_int_eq(roost_roster_item_encode(&d, &v2, &n2), 0);
    ck_assert_uint_eq(n2, nn);
    ck_assert_int_eq(memcmp(v2, nv, nn), 0);

    /* A read-modify-write keeps them too. */
    ck_assert_int_eq(roost_roster_item_copy(&c, &d), 0);
    ck_assert_ptr_nonnull(c.unknown);
    ck_assert_ptr_ne(c.unknown, d.unknown);
    c.sub = ROOST_SUB_BOTH;
    ck_assert_int_eq(roost_roster_item_encode(&c, &v3, &n3), 0);
    Roost__RosterItem *m = roost__roster_item__unpack(NULL, n3, v3);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->subscription, 3);
    ck_assert_uint_eq(m->base.n_unknown_fields, 2);
    ck_assert_uint_eq(m->base.unknown_fields[0].tag, 20);
    ck_assert_uint_eq(m->base.unknown_fields[1].tag, 21);
    /* protobuf-c keeps a length-delimited field's length prefix. */
    ck_assert_uint_eq(m->base.unknown_fields[1].len, 3);
    ck_assert_int_eq(memcmp(m->base.unknown_fields[1].data, "\x02hi", 3), 0);
    roost__roster_item__free_unpacked(m, NULL);

    roost_roster_item_clear(&c);
    roost_roster_item_clear(&d);
    free(v);
    free(v2);
    free(v3);
    free(nv);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("roster_item");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, encode_bounds);
    tcase_add_test(tc, decode_bounds);
    tcase_add_test(tc, unknown_fields_survive);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
