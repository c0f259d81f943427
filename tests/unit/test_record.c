/* Session record codec: round trips, strict header parsing, unknown-field
 * preservation and bounds. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto/roost.pb-c.h"
#include "store/error.h"
#include "store/record.h"

static void sample(roost_session_t *s)
{
    static char d0[] = "bob@example.org/a", d1[] = "carol@example.org";
    static char *dir[] = { d0, d1 };
    static uint8_t pres[] = "<presence><show>away</show></presence>";

    memset(s, 0, sizeof(*s));
    strcpy(s->node_id, "node-1");
    s->node_epoch = 42;
    s->conn_id = 18446744073709551615ull;
    s->priority = -5;
    s->flags = ROOST_SESS_F_AVAILABLE | ROOST_SESS_F_CARBONS;
    s->presence = pres;
    s->presence_len = sizeof(pres) - 1;
    s->directed = dir;
    s->n_directed = 2;
    s->sm_id = (char *)"sm-abc";
    s->bind_time = 1700000000123ull;
}

START_TEST(round_trip)
{
    roost_session_t s, d;
    uint8_t *v;
    size_t n;

    sample(&s);
    ck_assert_int_eq(roost_session_encode(&s, &v, &n), 0);
    const char hdr[] = "1,-5,42,18446744073709551615,node-1\n";
    ck_assert_uint_gt(n, sizeof(hdr) - 1);
    ck_assert_int_eq(memcmp(v, hdr, sizeof(hdr) - 1), 0);
    ck_assert_int_eq(roost_session_decode(&d, "phone", v, n), 0);
    ck_assert_str_eq(d.resource, "phone");
    ck_assert_str_eq(d.node_id, "node-1");
    ck_assert_uint_eq(d.node_epoch, 42);
    ck_assert(d.conn_id == s.conn_id);
    ck_assert_int_eq(d.priority, -5);
    ck_assert_uint_eq(d.flags, s.flags);
    ck_assert_uint_eq(d.presence_len, s.presence_len);
    ck_assert_int_eq(memcmp(d.presence, s.presence, s.presence_len), 0);
    ck_assert_uint_eq(d.n_directed, 2);
    ck_assert_str_eq(d.directed[1], "carol@example.org");
    ck_assert_str_eq(d.sm_id, "sm-abc");
    ck_assert(d.bind_time == s.bind_time);
    ck_assert_ptr_null(d.unknown);

    roost_session_t c;
    ck_assert_int_eq(roost_session_copy(&c, &d), 0);
    ck_assert_str_eq(c.directed[0], "bob@example.org/a");
    ck_assert_ptr_ne(c.directed[0], d.directed[0]);
    ck_assert_str_eq(c.resource, "phone");
    roost_session_clear(&c);
    roost_session_clear(&d);
    ck_assert_ptr_null(d.resource);
    roost_session_clear(&d);   /* clearing twice is harmless */
    free(v);
}
END_TEST

START_TEST(minimal_record)
{
    roost_session_t s = { 0 }, d;
    uint8_t *v;
    size_t n;

    strcpy(s.node_id, "n");
    ck_assert_int_eq(roost_session_encode(&s, &v, &n), 0);
    ck_assert_int_eq(memcmp(v, "0,0,0,0,n\n", 10), 0);
    ck_assert_int_eq(roost_session_decode(&d, NULL, v, n), 0);
    ck_assert_ptr_null(d.resource);
    ck_assert_ptr_null(d.sm_id);
    ck_assert_ptr_null(d.presence);
    ck_assert_uint_eq(d.n_directed, 0);
    roost_session_clear(&d);
    free(v);
}
END_TEST

/* Packs a record whose header says what hdr says. */
static size_t with_header(const char *hdr, uint8_t *out, size_t cap)
{
    Roost__SessionRecord m = ROOST__SESSION_RECORD__INIT;
    m.node_id = (char *)"node-1";
    m.node_epoch = 7;
    m.conn_id = 9;
    m.priority = -1;
    m.flags = 1;
    size_t hl = strlen(hdr), pl = roost__session_record__get_packed_size(&m);
    ck_assert_uint_le(hl + pl, cap);
    memcpy(out, hdr, hl);
    roost__session_record__pack(&m, out + hl);
    return hl + pl;
}

START_TEST(header_strict)
{
    static const char *bad[] = {
        "2,-1,7,9,node-1\n",         /* avail not 0/1 */
        "1,-1,7,9\n",                /* too few fields */
        "1,+1,7,9,node-1\n",         /* explicit plus */
        "1,-0,7,9,node-1\n",         /* negative zero */
        "1,01,7,9,node-1\n",         /* leading zero */
        "1,-1,07,9,node-1\n",
        "1,-1,7,9,\n",               /* empty node */
        "1,-1,7,9,node 1\n",         /* space in node */
        "1,-1,7,9,node,1\n",         /* comma in node */
        "1,-1,,9,node-1\n",          /* empty epoch */
        "1,-1,7,99999999999999999999,node-1\n", /* > UINT64_MAX */
        "1,-2147483649,7,9,node-1\n", /* < INT32_MIN */
        "1,-1,7,9,node-1",           /* no newline */
        "1,-1,7,x,node-1\n",
        " 1,-1,7,9,node-1\n",
        "1,-1,7,9,node-2\n",         /* disagrees with the protobuf */
        "0,-1,7,9,node-1\n",         /* avail disagrees with flags */
        "1,-2,7,9,node-1\n",         /* priority disagrees */
        "1,-1,8,9,node-1\n",         /* epoch disagrees */
        "1,-1,7,9,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
    };
    uint8_t buf[512];
    roost_session_t d;

    size_t n = with_header("1,-1,7,9,node-1\n", buf, sizeof(buf));
    ck_assert_int_eq(roost_session_decode(&d, "r", buf, n), 0);
    ck_assert_int_eq(d.priority, -1);
    roost_session_clear(&d);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = with_header(bad[i], buf, sizeof(buf));
        ck_assert_msg(roost_session_decode(&d, "r", buf, n) == ROOST_EINVAL, "accepted %s", bad[i]);
        ck_assert_ptr_null(d.resource);
    }
    /* The header with an embedded NUL in the node id. */
    n = with_header("1,-1,7,9,node-1\n", buf, sizeof(buf));
    buf[12] = '\0';
    ck_assert_int_eq(roost_session_decode(&d, "r", buf, n), ROOST_EINVAL);
    /* A valid header in front of garbage protobuf. */
    memcpy(buf, "1,-1,7,9,node-1\n\xff\xff\xff", 19);
    ck_assert_int_eq(roost_session_decode(&d, "r", buf, 19), ROOST_EINVAL);
    ck_assert_int_eq(roost_session_decode(&d, "r", (const uint8_t *)"", 0), ROOST_EINVAL);
    ck_assert_int_eq(roost_session_decode(&d, "r", NULL, 0), ROOST_EINVAL);
}
END_TEST

START_TEST(priority_extremes)
{
    roost_session_t s = { 0 }, d;
    uint8_t *v;
    size_t n;
    int32_t p[] = { INT32_MIN, INT32_MAX, -128, 127, 0 };

    strcpy(s.node_id, "n1");
    for (size_t i = 0; i < 5; i++) {
        s.priority = p[i];
        ck_assert_int_eq(roost_session_encode(&s, &v, &n), 0);
        ck_assert_int_eq(roost_session_decode(&d, "r", v, n), 0);
        ck_assert_int_eq(d.priority, p[i]);
        roost_session_clear(&d);
        free(v);
    }
}
END_TEST

START_TEST(unknown_fields_survive)
{
    roost_session_t s, d, c;
    uint8_t *v, *v2;
    size_t n, n2;
    /* Field 100 varint 42, field 101 bytes "abc": what a newer writer adds. */
    static const uint8_t extra[] = { 0xA0, 0x06, 0x2A, 0xAA, 0x06, 0x03, 'a', 'b', 'c' };

    sample(&s);
    ck_assert_int_eq(roost_session_encode(&s, &v, &n), 0);
    uint8_t *w = malloc(n + sizeof(extra));
    memcpy(w, v, n);
    memcpy(w + n, extra, sizeof(extra));
    ck_assert_int_eq(roost_session_decode(&d, "r", w, n + sizeof(extra)), 0);
    ck_assert_ptr_nonnull(d.unknown);

    /* Read-modify-write, through a copy too. */
    d.priority = 3;
    ck_assert_int_eq(roost_session_copy(&c, &d), 0);
    roost_session_clear(&d);
    ck_assert_int_eq(roost_session_encode(&c, &v2, &n2), 0);
    ck_assert_ptr_nonnull(memmem(v2, n2, extra, 3));
    ck_assert_ptr_nonnull(memmem(v2, n2, extra + 3, 6));

    const uint8_t *nl = memchr(v2, '\n', n2);
    ck_assert_ptr_nonnull(nl);
    size_t hl = (size_t)(nl - v2) + 1;
    Roost__SessionRecord *m = roost__session_record__unpack(NULL, n2 - hl, v2 + hl);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->base.n_unknown_fields, 2);
    ck_assert_int_eq(m->priority, 3);
    roost__session_record__free_unpacked(m, NULL);

    roost_session_clear(&c);
    free(v);
    free(v2);
    free(w);
}
END_TEST

START_TEST(bounds)
{
    roost_session_t s = { 0 }, d;
    uint8_t *v;
    size_t n;

    /* Encode refuses what decode would refuse. */
    ck_assert_int_eq(roost_session_encode(&s, &v, &n), ROOST_EINVAL);   /* no node id */
    strcpy(s.node_id, "bad,node");
    ck_assert_int_eq(roost_session_encode(&s, &v, &n), ROOST_EINVAL);
    strcpy(s.node_id, "n");
    size_t many = ROOST_SESS_DIRECTED_MAX + 1;
    char **dir = calloc(many, sizeof(char *));
    for (size_t i = 0; i < many; i++)
        dir[i] = (char *)"x@y/z";
    s.directed = dir;
    s.n_directed = many;
    ck_assert_int_eq(roost_session_encode(&s, &v, &n), ROOST_EINVAL);
    s.n_directed = ROOST_SESS_DIRECTED_MAX;
    ck_assert_int_eq(roost_session_encode(&s, &v, &n), 0);
    ck_assert_int_eq(roost_session_decode(&d, "r", v, n), 0);
    ck_assert_uint_eq(d.n_directed, ROOST_SESS_DIRECTED_MAX);
    roost_session_clear(&d);
    free(v);

    /* A hand-made value with too many directed JIDs is refused on decode. */
    Roost__SessionRecord m = ROOST__SESSION_RECORD__INIT;
    m.node_id = (char *)"n";
    m.directed = dir;
    m.n_directed = many;
    size_t pl = roost__session_record__get_packed_size(&m);
    uint8_t *w = malloc(pl + 10);
    memcpy(w, "0,0,0,0,n\n", 10);
    roost__session_record__pack(&m, w + 10);
    ck_assert_int_eq(roost_session_decode(&d, "r", w, pl + 10), ROOST_EINVAL);
    free(w);
    free(dir);

    /* Oversized values and JIDs. */
    s.directed = NULL;
    s.n_directed = 0;
    s.presence_len = ROOST_SESS_VALUE_MAX;
    s.presence = calloc(1, s.presence_len);
    ck_assert_int_eq(roost_session_encode(&s, &v, &n), ROOST_EINVAL);
    free(s.presence);
    s.presence = NULL;
    s.presence_len = 0;
    char *longjid = malloc(ROOST_SESS_JID_MAX + 2);
    memset(longjid, 'a', ROOST_SESS_JID_MAX + 1);
    longjid[ROOST_SESS_JID_MAX + 1] = '\0';
    s.directed = &longjid;
    s.n_directed = 1;
    ck_assert_int_eq(roost_session_encode(&s, &v, &n), ROOST_EINVAL);
    free(longjid);

    uint8_t *big = calloc(1, ROOST_SESS_VALUE_MAX + 1);
    memcpy(big, "0,0,0,0,n\n", 10);
    ck_assert_int_eq(roost_session_decode(&d, "r", big, ROOST_SESS_VALUE_MAX + 1), ROOST_EINVAL);
    free(big);

    ck_assert(roost_session_node_id_valid("node-1.example:7"));
    ck_assert(!roost_session_node_id_valid(""));
    ck_assert(!roost_session_node_id_valid(NULL));
    ck_assert(!roost_session_node_id_valid("a\tb"));
    char id[ROOST_NODE_ID_MAX + 2];
    memset(id, 'n', sizeof(id) - 1);
    id[ROOST_NODE_ID_MAX + 1] = '\0';
    ck_assert(!roost_session_node_id_valid(id));
    id[ROOST_NODE_ID_MAX] = '\0';
    ck_assert(roost_session_node_id_valid(id));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, minimal_record);
    tcase_add_test(tc, header_strict);
    tcase_add_test(tc, priority_extremes);
    tcase_add_test(tc, unknown_fields_survive);
    tcase_add_test(tc, bounds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
