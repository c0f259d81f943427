/* Unit tests for the XML stream parser: events, chunking and split points,
 * pause/resume, reset, restricted XML and the size/depth/attribute bounds. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/buf.h"
#include "node/xml.h"
#include "node/xmlstream.h"
#include "store/error.h"

/* Records every callback as one line of a log so runs can be compared. */
typedef struct {
    roost_xmlstream_t *s;
    roost_buf_t log;
    int opens, stanzas, closes, errors;
    int after_error;         /* callbacks seen after on_error */
    int pause_at;            /* pause in on_stanza number pause_at (1-based), 0 never */
    int pause_every;         /* pause in every on_stanza */
    int pause_on_open;
    char cond[64];
    char lang[32];           /* xml:lang of the last header */
    char to[64];
} rec_t;

static void ev_open(void *data, const roost_xml_t *hdr)
{
    rec_t *r = data;
    const char *v;
    const roost_xml_attr_t *a;

    if (r->errors)
        r->after_error++;
    r->opens++;
    roost_buf_printf(&r->log, "open {%s}%s", hdr->ns, hdr->name);
    for (a = hdr->attrs; a; a = a->next)
        roost_buf_printf(&r->log, " {%s}%s=%s", a->ns ? a->ns : "", a->name, a->value);
    roost_buf_puts(&r->log, "\n");
    ck_assert_ptr_null(hdr->children);
    v = roost_xml_attr_ns(hdr, ROOST_NS_XML, "lang");
    snprintf(r->lang, sizeof(r->lang), "%s", v ? v : "");
    v = roost_xml_attr(hdr, "to");
    snprintf(r->to, sizeof(r->to), "%s", v ? v : "");
    if (r->pause_on_open)
        roost_xmlstream_pause(r->s);
}

static void ev_stanza(void *data, roost_xml_t *st)
{
    rec_t *r = data;

    if (r->errors)
        r->after_error++;
    r->stanzas++;
    ck_assert_ptr_null(st->parent);
    roost_buf_puts(&r->log, "stanza ");
    ck_assert_int_eq(roost_xml_serialize(st, ROOST_NS_CLIENT, &r->log), 0);
    roost_buf_puts(&r->log, "\n");
    roost_xml_free(st);     /* we own it and do not keep it */
    if (r->pause_every || r->stanzas == r->pause_at)
        roost_xmlstream_pause(r->s);
}

static void ev_close(void *data)
{
    rec_t *r = data;

    if (r->errors)
        r->after_error++;
    r->closes++;
    roost_buf_puts(&r->log, "close\n");
}

static void ev_error(void *data, const char *cond, const char *text)
{
    rec_t *r = data;

    if (r->errors)
        r->after_error++;
    r->errors++;
    snprintf(r->cond, sizeof(r->cond), "%s", cond);
    roost_buf_printf(&r->log, "error %s\n", cond);
    (void)text;
}

static const roost_xmlstream_cb_t cbs = { ev_open, ev_stanza, ev_close, ev_error };

static void rec_init(rec_t *r, const roost_xmlstream_limits_t *lim)
{
    memset(r, 0, sizeof(*r));
    r->s = roost_xmlstream_new(lim, &cbs, r);
    ck_assert_ptr_nonnull(r->s);
}

static void rec_done(rec_t *r)
{
    roost_xmlstream_free(r->s);
    roost_buf_free(&r->log);
}

static const char *rec_log(rec_t *r)
{
    return r->log.data ? r->log.data : "";
}

/* Feeds, then resumes until the stream no longer pauses. */
static int feed_all(rec_t *r, const char *buf, size_t len)
{
    int rc = roost_xmlstream_feed(r->s, buf, len);

    while (rc == ROOST_EAGAIN)
        rc = roost_xmlstream_resume(r->s);
    return rc;
}

#define HEADER \
    "<?xml version='1.0' encoding='UTF-8'?>" \
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'" \
    " to='example.com' version='1.0' xml:lang='en'>"

/* A document that exercises what a split can break: multi-byte UTF-8,
 * entity and character references, CDATA, attribute namespaces, nested
 * foreign namespaces, whitespace keepalives and empty elements. */
static const char doc[] =
    HEADER
    "\n  "
    "<message to='juliet@example.com/balcony' type='chat' id='m1' xml:lang='fr'>"
    "<body>Wherefore art thou, Rom\xc3\xa9o? &amp; &lt;3 &#x263A; <![CDATA[<raw>]]></body>"
    "</message>"
    " \r\n\t "
    "<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver='v1'>"
    "<item jid='a@b' name='A &apos;B&apos;'><group>G1</group></item>"
    "</query></iq>"
    "<presence xmlns:x='urn:x' x:attr='1'/>"
    "   "
    "</stream:stream>";

static const char expect_log[] =
    "open {http://etherx.jabber.org/streams}stream {}to=example.com {}version=1.0"
    " {http://www.w3.org/XML/1998/namespace}lang=en\n"
    "stanza <message to=\"juliet@example.com/balcony\" type=\"chat\" id=\"m1\" xml:lang=\"fr\">"
    "<body>Wherefore art thou, Rom\xc3\xa9o? &amp; &lt;3 \xe2\x98\xba &lt;raw&gt;</body></message>\n"
    "stanza <iq type=\"get\" id=\"r1\"><query xmlns=\"jabber:iq:roster\" ver=\"v1\">"
    "<item jid=\"a@b\" name=\"A &apos;B&apos;\"><group>G1</group></item></query></iq>\n"
    "stanza <presence xmlns:ns1=\"urn:x\" ns1:attr=\"1\"/>\n"
    "close\n";

START_TEST(test_normal_stream)
{
    rec_t r;

    rec_init(&r, NULL);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, doc, strlen(doc)), 0);
    ck_assert_str_eq(rec_log(&r), expect_log);
    ck_assert_int_eq(r.opens, 1);
    ck_assert_int_eq(r.stanzas, 3);
    ck_assert_int_eq(r.closes, 1);
    ck_assert_int_eq(r.errors, 0);
    ck_assert_str_eq(r.lang, "en");
    ck_assert_str_eq(r.to, "example.com");
    /* Bytes after the close are ignored, not reported. */
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "<junk", 5), 0);
    ck_assert_int_eq(r.errors, 0);
    rec_done(&r);
}
END_TEST

/* Inspects the tree itself, not only its serialization. */
static roost_xml_t *kept;

static void keep_stanza(void *data, roost_xml_t *st)
{
    (void)data;
    if (kept == NULL)
        kept = st;
    else
        roost_xml_free(st);
}

START_TEST(test_tree_shape)
{
    roost_xmlstream_cb_t cb = { NULL, keep_stanza, NULL, NULL };
    roost_xmlstream_t *s = roost_xmlstream_new(NULL, &cb, NULL);
    const char in[] = HEADER
        "<iq type='set' id='x'><query xmlns='jabber:iq:roster'><item jid='a@b'>"
        "<group>one</group></item></query></iq>";
    roost_xml_t *q, *item, *g;
    char *t;

    ck_assert_ptr_nonnull(s);
    kept = NULL;
    ck_assert_int_eq(roost_xmlstream_feed(s, in, strlen(in)), 0);
    ck_assert_ptr_nonnull(kept);
    ck_assert_str_eq(kept->name, "iq");
    ck_assert_str_eq(kept->ns, ROOST_NS_CLIENT);
    ck_assert_str_eq(roost_xml_attr(kept, "type"), "set");
    q = roost_xml_child(kept, "query", "jabber:iq:roster");
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_eq(q->parent, kept);
    item = roost_xml_child(q, "item", "jabber:iq:roster");
    ck_assert_ptr_nonnull(item);
    ck_assert_str_eq(roost_xml_attr(item, "jid"), "a@b");
    ck_assert_ptr_null(item->attrs->ns);
    g = roost_xml_child(item, "group", NULL);
    ck_assert_ptr_nonnull(g);
    t = roost_xml_text(g);
    ck_assert_str_eq(t, "one");
    free(t);
    roost_xml_free(kept);
    kept = NULL;
    roost_xmlstream_free(s);
}
END_TEST

START_TEST(test_every_split_point)
{
    size_t len = strlen(doc), i;
    roost_xmlstream_limits_t lim = { 0, 0, 0, 0 };
    size_t chunks[] = { 0, 7, 1 };
    size_t c;

    for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        lim.chunk = chunks[c];
        for (i = 0; i <= len; i++) {
            rec_t r;

            rec_init(&r, &lim);
            ck_assert_int_eq(roost_xmlstream_feed(r.s, doc, i), 0);
            ck_assert_int_eq(roost_xmlstream_feed(r.s, doc + i, len - i), 0);
            if (strcmp(rec_log(&r), expect_log) != 0)
                ck_abort_msg("split at %zu (chunk %zu):\n%s", i, chunks[c], rec_log(&r));
            rec_done(&r);
        }
    }
}
END_TEST

/* The parser is released between stanzas and re-primed with the stream's
 * own start tag: prefixes declared there (also for the stream element
 * itself) keep their meaning, and the end tag still matches. */
START_TEST(test_release_keeps_namespace_context)
{
    static const char hdr[] =
        "<?xml version='1.0'?><s:stream xmlns:s='http://etherx.jabber.org/streams'"
        " xmlns='jabber:client' xmlns:x='urn:x' to='example.com' version='1.0'>";
    rec_t r;

    roost_xmlstream_set_park_max(0);       /* release at once */
    rec_init(&r, NULL);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, hdr, strlen(hdr)), 0);
    ck_assert_int_eq(r.opens, 1);
    ck_assert_int_eq(roost_xmlstream_released(r.s), 1);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "<message id='a'><x:y x:z='1'/></message>", 40), 0);
    ck_assert_int_eq(roost_xmlstream_released(r.s), 1);
    /* Half a stanza keeps the parser. */
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "<iq type='get' id='b'><x:q", 26), 0);
    ck_assert_int_eq(roost_xmlstream_released(r.s), 0);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "/></iq> ", 8), 0);
    ck_assert_int_eq(roost_xmlstream_released(r.s), 1);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "</s:stream>", 11), 0);
    ck_assert_str_eq(rec_log(&r),
        "open {http://etherx.jabber.org/streams}stream {}to=example.com {}version=1.0\n"
        "stanza <message id=\"a\"><y xmlns=\"urn:x\" xmlns:ns1=\"urn:x\" ns1:z=\"1\"/></message>\n"
        "stanza <iq type=\"get\" id=\"b\"><q xmlns=\"urn:x\"/></iq>\n"
        "close\n");
    ck_assert_int_eq(r.opens, 1);
    ck_assert_int_eq(r.errors, 0);
    rec_done(&r);
}
END_TEST

/* A re-primed parser still refuses what the first one refused: an unbound
 * prefix, a second stream header, a comment, a mismatched end tag. */
START_TEST(test_release_errors)
{
    static const char *const bad[] = {
        "<message><q:y/></message>",
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
        "<message><!-- x --></message>",
        "</stream:streamx>",
    };
    static const char *const cond[] = {
        "not-well-formed", "unsupported-stanza-type", "restricted-xml", "not-well-formed",
    };
    size_t i;

    roost_xmlstream_set_park_max(0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rec_t r;

        rec_init(&r, NULL);
        ck_assert_int_eq(roost_xmlstream_feed(r.s, HEADER, strlen(HEADER)), 0);
        ck_assert_int_eq(roost_xmlstream_feed(r.s, "<presence/>", 11), 0);
        ck_assert_int_eq(roost_xmlstream_released(r.s), 1);
        ck_assert_int_eq(roost_xmlstream_feed(r.s, bad[i], strlen(bad[i])), ROOST_EPROTO);
        ck_assert_str_eq(r.cond, cond[i]);
        rec_done(&r);
    }
}
END_TEST

/* Pairs of split points (every first one, every seventh second one and
 * its neighbour): three feeds, with a release wherever a feed ends between
 * stanzas, give the same events as one feed. */
START_TEST(test_every_double_split_point)
{
    size_t len = strlen(doc), i, j;
    int released = 0;

    roost_xmlstream_set_park_max(0);
    for (i = 0; i <= len; i++) {
        for (j = i; j <= len; j += (j - i) % 7 == 0 ? 1 : 6) {
            rec_t r;

            rec_init(&r, NULL);
            ck_assert_int_eq(roost_xmlstream_feed(r.s, doc, i), 0);
            released += roost_xmlstream_released(r.s);
            ck_assert_int_eq(roost_xmlstream_feed(r.s, doc + i, j - i), 0);
            released += roost_xmlstream_released(r.s);
            ck_assert_int_eq(roost_xmlstream_feed(r.s, doc + j, len - j), 0);
            if (strcmp(rec_log(&r), expect_log) != 0)
                ck_abort_msg("split at %zu and %zu:\n%s", i, j, rec_log(&r));
            rec_done(&r);
        }
    }
    ck_assert_int_gt(released, 0);
}
END_TEST

/* Idle streams keep their parser up to the park limit; the ones idle
 * longest lose it first, and a busy stream moves to the back. */
START_TEST(test_park_lru)
{
    rec_t r[3];
    int i;

    roost_xmlstream_set_park_max(2);
    for (i = 0; i < 3; i++) {
        rec_init(&r[i], NULL);
        ck_assert_int_eq(roost_xmlstream_feed(r[i].s, HEADER, strlen(HEADER)), 0);
    }
    ck_assert_int_eq(roost_xmlstream_released(r[0].s), 1);
    ck_assert_int_eq(roost_xmlstream_released(r[1].s), 0);
    ck_assert_int_eq(roost_xmlstream_released(r[2].s), 0);
    /* r[1] is busy again, then idle: r[2] is now the oldest. */
    ck_assert_int_eq(roost_xmlstream_feed(r[1].s, "<presence/>", 11), 0);
    ck_assert_int_eq(roost_xmlstream_feed(r[0].s, "<presence/>", 11), 0);
    ck_assert_int_eq(roost_xmlstream_released(r[2].s), 1);
    ck_assert_int_eq(roost_xmlstream_released(r[1].s), 0);
    ck_assert_int_eq(roost_xmlstream_released(r[0].s), 0);
    /* Freeing a parked stream takes it off the list. */
    rec_done(&r[1]);
    roost_xmlstream_set_park_max(0);
    ck_assert_int_eq(roost_xmlstream_released(r[0].s), 1);
    ck_assert_int_eq(r[0].stanzas, 1);
    rec_done(&r[0]);
    rec_done(&r[2]);
}
END_TEST

START_TEST(test_byte_at_a_time)
{
    size_t len = strlen(doc), i;
    rec_t r;

    rec_init(&r, NULL);
    for (i = 0; i < len; i++)
        ck_assert_int_eq(roost_xmlstream_feed(r.s, doc + i, 1), 0);
    ck_assert_str_eq(rec_log(&r), expect_log);
    rec_done(&r);
}
END_TEST

static const char three[] = HEADER
    "<message id='1'><body>one</body></message>"
    "<message id='2'><body>two</body></message>"
    "<message id='3'><body>three</body></message>";

static const char three_log[] =
    "stanza <message id=\"1\"><body>one</body></message>\n"
    "stanza <message id=\"2\"><body>two</body></message>\n"
    "stanza <message id=\"3\"><body>three</body></message>\n";

START_TEST(test_pause_resume)
{
    rec_t r;
    const char *l;

    rec_init(&r, NULL);
    r.pause_at = 1;
    ck_assert_int_eq(roost_xmlstream_feed(r.s, three, strlen(three)), ROOST_EAGAIN);
    ck_assert_int_eq(roost_xmlstream_paused(r.s), 1);
    ck_assert_int_eq(r.stanzas, 1);
    /* Feeding while paused is refused rather than reordered. */
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "<a/>", 4), ROOST_EINVAL);
    ck_assert_int_eq(roost_xmlstream_resume(r.s), 0);
    ck_assert_int_eq(roost_xmlstream_paused(r.s), 0);
    ck_assert_int_eq(r.stanzas, 3);
    l = strchr(rec_log(&r), '\n') + 1;
    ck_assert_str_eq(l, three_log);
    /* More input after the resume continues normally. */
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "</stream:stream>", 16), 0);
    ck_assert_int_eq(r.closes, 1);
    ck_assert_int_eq(roost_xmlstream_resume(r.s), 0);
    rec_done(&r);
}
END_TEST

/* Pausing on every stanza with small chunks: input is kept partly by expat
 * (rest of the chunk) and partly by us (rest of the feed). */
START_TEST(test_pause_every_stanza_chunked)
{
    roost_xmlstream_limits_t lim = { 0, 0, 0, 0 };
    size_t chunks[] = { 1, 5, 13, 64, 4096 };
    size_t c;

    for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        rec_t r, ref;
        int pauses = 0, rc;

        lim.chunk = chunks[c];
        rec_init(&ref, &lim);
        ck_assert_int_eq(roost_xmlstream_feed(ref.s, doc, strlen(doc)), 0);
        rec_init(&r, &lim);
        r.pause_every = 1;
        r.pause_on_open = 1;
        rc = roost_xmlstream_feed(r.s, doc, strlen(doc));
        while (rc == ROOST_EAGAIN) {
            pauses++;
            ck_assert_int_eq(roost_xmlstream_paused(r.s), 1);
            rc = roost_xmlstream_resume(r.s);
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(pauses, 4);
        ck_assert_str_eq(rec_log(&r), rec_log(&ref));
        ck_assert_str_eq(rec_log(&r), expect_log);
        rec_done(&r);
        rec_done(&ref);
    }
}
END_TEST

/* Random feed sizes, chunk sizes and pauses together (fixed seed): the
 * events must match an unpaused single feed every time. */
static int rnd_pause_mask;

static void ev_stanza_rnd(void *data, roost_xml_t *st)
{
    rec_t *r = data;

    ev_stanza(data, st);
    if (rnd_pause_mask & (1 << r->stanzas))
        roost_xmlstream_pause(r->s);
}

START_TEST(test_random_feeds_and_pauses)
{
    roost_xmlstream_cb_t cb = { ev_open, ev_stanza_rnd, ev_close, ev_error };
    size_t len = strlen(doc);
    unsigned seed = 12345;
    int iter;

    for (iter = 0; iter < 2000; iter++) {
        roost_xmlstream_limits_t lim = { 0, 0, 0, 0 };
        size_t off = 0, n;
        rec_t r;
        int rc;

        lim.chunk = 1 + rand_r(&seed) % 40;
        rnd_pause_mask = rand_r(&seed) & 0xe;
        memset(&r, 0, sizeof(r));
        r.s = roost_xmlstream_new(&lim, &cb, &r);
        ck_assert_ptr_nonnull(r.s);
        while (off < len) {
            n = 1 + rand_r(&seed) % 60;
            if (n > len - off)
                n = len - off;
            rc = roost_xmlstream_feed(r.s, doc + off, n);
            while (rc == ROOST_EAGAIN)
                rc = roost_xmlstream_resume(r.s);
            ck_assert_int_eq(rc, 0);
            off += n;
        }
        if (strcmp(rec_log(&r), expect_log) != 0)
            ck_abort_msg("iteration %d:\n%s", iter, rec_log(&r));
        rec_done(&r);
    }
}
END_TEST

START_TEST(test_reset)
{
    rec_t r;
    const char starttls[] = HEADER
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
        "<message id='injected'/>";
    const char again[] = "<stream:stream xmlns='jabber:client'"
        " xmlns:stream='http://etherx.jabber.org/streams' to='other.example' version='1.0'>"
        "<presence/>";

    rec_init(&r, NULL);
    r.pause_at = 1;
    ck_assert_int_eq(roost_xmlstream_feed(r.s, starttls, strlen(starttls)), ROOST_EAGAIN);
    ck_assert_int_eq(r.stanzas, 1);
    ck_assert_int_eq(roost_xmlstream_reset(r.s), 0);
    ck_assert_int_eq(roost_xmlstream_paused(r.s), 0);
    r.pause_at = 0;
    ck_assert_int_eq(roost_xmlstream_feed(r.s, again, strlen(again)), 0);
    ck_assert_int_eq(r.opens, 2);
    ck_assert_str_eq(r.to, "other.example");
    ck_assert_int_eq(r.stanzas, 2);
    ck_assert_ptr_null(strstr(rec_log(&r), "injected"));
    ck_assert_ptr_nonnull(strstr(rec_log(&r), "stanza <presence/>\n"));

    /* Reset also clears a failed stream and a partial stanza. */
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "<message><body>par", 18), 0);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "<!-- x -->", 10), ROOST_EPROTO);
    ck_assert_int_eq(roost_xmlstream_reset(r.s), 0);
    r.errors = 0;
    ck_assert_int_eq(roost_xmlstream_feed(r.s, again, strlen(again)), 0);
    ck_assert_int_eq(r.opens, 3);
    ck_assert_int_eq(r.stanzas, 3);
    rec_done(&r);
}
END_TEST

/* Each case: input after a valid header (or a whole document when it has
 * its own prolog) and the expected condition. */
typedef struct {
    const char *in;
    size_t len;              /* 0 = strlen */
    int whole;               /* in replaces the header */
    const char *cond;
} err_case_t;

static const err_case_t err_cases[] = {
    { "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
      "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
      "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
      "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
      "<message><body>&lol3;</body></message>", 0, 1, "restricted-xml" },
    { "<!DOCTYPE stream:stream SYSTEM 'http://evil/x.dtd'><stream:stream/>", 0, 1,
      "restricted-xml" },
    { "<!-- hello --><stream:stream/>", 0, 1, "restricted-xml" },
    { "<!-- keepalive? -->", 0, 0, "restricted-xml" },
    { "<message><!-- c --></message>", 0, 0, "restricted-xml" },
    { "<?php echo 1; ?>", 0, 0, "restricted-xml" },
    { "<message><?pi x?></message>", 0, 0, "restricted-xml" },
    { "<message><body>\xc3\x28</body></message>", 0, 0, "not-well-formed" },
    { "<message><body>\xff</body></message>", 0, 0, "not-well-formed" },
    { "<message><body>a\0b</body></message>", 28, 0, "not-well-formed" },
    { "<message><body>hi</message>", 0, 0, "not-well-formed" },
    { "<message><body>&foo;</body></message>", 0, 0, "not-well-formed" },
    { "<message><x:y/></message>", 0, 0, "not-well-formed" },
    { "<message a='1' a='2'/>", 0, 0, "not-well-formed" },
    /* The namespace separator cannot be smuggled into a URI. */
    { "<message xmlns:x='urn:a&#1;b'><x:y/></message>", 0, 0, "not-well-formed" },
    { "<message xmlns='urn:a\x01" "b'/>", 0, 0, "not-well-formed" },
    { "<stream:stream xmlns='jabber:client' xmlns:stream='http://wrong/streams'>", 0, 1,
      "invalid-namespace" },
    { "<stream xmlns='jabber:client'>", 0, 1, "invalid-namespace" },
    { "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
      0, 1, "invalid-namespace" },
    { "<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
      0, 1, "bad-format" },
    /* No default namespace: a bare stanza has none. */
    { "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><message/>", 0, 1,
      "invalid-namespace" },
    { "<message xmlns=''/>", 0, 0, "invalid-namespace" },
    { "hello", 0, 0, "bad-format" },
    { "  &amp;  ", 0, 0, "bad-format" },
    { "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream xmlns='jabber:client'"
      " xmlns:stream='http://etherx.jabber.org/streams'>", 0, 1, "unsupported-encoding" },
};

START_TEST(test_errors)
{
    const err_case_t *c = &err_cases[_i];
    size_t len = c->len ? c->len : strlen(c->in);
    const char after[] = "<message><body>after</body></message></stream:stream>";
    rec_t r;
    int rc = 0;

    rec_init(&r, NULL);
    if (!c->whole)
        ck_assert_int_eq(roost_xmlstream_feed(r.s, HEADER, strlen(HEADER)), 0);
    rc = roost_xmlstream_feed(r.s, c->in, len);
    ck_assert_msg(rc == ROOST_EPROTO, "case %d: rc %d log %s", _i, rc, rec_log(&r));
    ck_assert_int_eq(r.errors, 1);
    ck_assert_str_eq(r.cond, c->cond);
    ck_assert_int_eq(r.stanzas, 0);
    /* Nothing more is reported, whatever follows. */
    ck_assert_int_eq(roost_xmlstream_feed(r.s, after, strlen(after)), ROOST_EPROTO);
    ck_assert_int_eq(roost_xmlstream_resume(r.s), ROOST_EPROTO);
    ck_assert_int_eq(r.errors, 1);
    ck_assert_int_eq(r.after_error, 0);
    ck_assert_int_eq(r.stanzas, 0);
    ck_assert_int_eq(r.closes, 0);
    rec_done(&r);
}
END_TEST

/* Same cases byte at a time: detection must not depend on chunking. */
START_TEST(test_errors_bytewise)
{
    const err_case_t *c = &err_cases[_i];
    size_t len = c->len ? c->len : strlen(c->in), i;
    rec_t r;
    int rc = 0;

    rec_init(&r, NULL);
    if (!c->whole)
        ck_assert_int_eq(feed_all(&r, HEADER, strlen(HEADER)), 0);
    for (i = 0; i < len && rc == 0; i++)
        rc = roost_xmlstream_feed(r.s, c->in + i, 1);
    ck_assert_int_eq(rc, ROOST_EPROTO);
    ck_assert_int_eq(r.errors, 1);
    ck_assert_str_eq(r.cond, c->cond);
    ck_assert_int_eq(r.after_error, 0);
    rec_done(&r);
}
END_TEST

/* Feeds prefix, then filler in pieces of piece bytes, until an error; the
 * error must come before the buffered stanza grows much past the limit. */
static void huge(const char *prefix, char fill, size_t piece, const char *cond)
{
    roost_xmlstream_limits_t lim = { 1024, 0, 0, 64 };
    char buf[100];
    size_t fed = 0;
    rec_t r;
    int rc;

    ck_assert_uint_le(piece, sizeof(buf));
    memset(buf, fill, sizeof(buf));
    rec_init(&r, &lim);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, HEADER, strlen(HEADER)), 0);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, prefix, strlen(prefix)), 0);
    fed = strlen(prefix);
    do {
        rc = roost_xmlstream_feed(r.s, buf, piece);
        fed += piece;
    } while (rc == 0 && fed < 1000000);
    ck_assert_int_eq(rc, ROOST_EPROTO);
    ck_assert_str_eq(r.cond, cond);
    ck_assert_uint_le(fed, 1024 + 64 + piece);
    ck_assert_int_eq(r.stanzas, 0);
    rec_done(&r);
}

START_TEST(test_huge_attribute)
{
    huge("<message to='", 'a', 100, "policy-violation");
    huge("<message to='", 'a', 1, "policy-violation");
    /* Inside a stanza, in a child's start tag. */
    huge("<message><body xml:lang='", 'b', 37, "policy-violation");
}
END_TEST

START_TEST(test_huge_text)
{
    huge("<message><body>", 'x', 100, "policy-violation");
    huge("<message><body>", 'x', 1, "policy-violation");
}
END_TEST

START_TEST(test_huge_whitespace_ok)
{
    rec_t r;
    char sp[1000];
    int i;

    memset(sp, ' ', sizeof(sp));
    rec_init(&r, &(roost_xmlstream_limits_t){ 1024, 0, 0, 64 });
    ck_assert_int_eq(roost_xmlstream_feed(r.s, HEADER, strlen(HEADER)), 0);
    /* Keepalives between stanzas do not accumulate toward any limit. */
    for (i = 0; i < 100; i++) {
        ck_assert_int_eq(roost_xmlstream_feed(r.s, sp, sizeof(sp)), 0);
        ck_assert_int_eq(roost_xmlstream_feed(r.s, sp, sizeof(sp)), 0);
        ck_assert_int_eq(roost_xmlstream_feed(r.s, sp, sizeof(sp)), 0);
        ck_assert_int_eq(roost_xmlstream_feed(r.s, "<presence/>", 11), 0);
        ck_assert_int_eq(roost_xmlstream_feed(r.s, "\n", 1), 0);
    }
    ck_assert_int_eq(r.stanzas, 100);
    ck_assert_int_eq(r.errors, 0);
    rec_done(&r);
}
END_TEST

/* A stanza over the limit that arrives inside one chunk is caught at its
 * end; one under the limit passes. */
START_TEST(test_stanza_size_in_one_chunk)
{
    roost_xmlstream_limits_t lim = { 200, 0, 0, 0 };
    char big[400], ok[200];
    rec_t r;

    snprintf(big, sizeof(big), "<message><body>%0300d</body></message>", 0);
    snprintf(ok, sizeof(ok), "<message><body>%0150d</body></message>", 0);
    rec_init(&r, &lim);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, HEADER, strlen(HEADER)), 0);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, ok, strlen(ok)), 0);
    ck_assert_int_eq(r.stanzas, 1);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, big, strlen(big)), ROOST_EPROTO);
    ck_assert_str_eq(r.cond, "policy-violation");
    ck_assert_int_eq(r.stanzas, 1);
    rec_done(&r);

    /* The same for an empty element, whose end event carries no bytes. */
    snprintf(big, sizeof(big), "<presence id='%0300d'/>", 0);
    rec_init(&r, &lim);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, HEADER, strlen(HEADER)), 0);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, big, strlen(big)), ROOST_EPROTO);
    ck_assert_str_eq(r.cond, "policy-violation");
    ck_assert_int_eq(r.stanzas, 0);
    rec_done(&r);
}
END_TEST

START_TEST(test_header_too_large)
{
    rec_t r;
    char big[6000];
    int rc = 0;
    size_t i;

    snprintf(big, sizeof(big), "<stream:stream xmlns='jabber:client' "
             "xmlns:stream='http://etherx.jabber.org/streams' to='%05000d'>", 0);
    rec_init(&r, NULL);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, big, strlen(big)), ROOST_EPROTO);
    ck_assert_str_eq(r.cond, "policy-violation");
    ck_assert_int_eq(r.opens, 0);
    rec_done(&r);

    rec_init(&r, NULL);
    for (i = 0; i < strlen(big) && rc == 0; i++)
        rc = roost_xmlstream_feed(r.s, big + i, 1);
    ck_assert_int_eq(rc, ROOST_EPROTO);
    ck_assert_uint_le(i, 4097);
    ck_assert_str_eq(r.cond, "policy-violation");
    rec_done(&r);
}
END_TEST

START_TEST(test_depth_limit)
{
    roost_xmlstream_limits_t lim = { 0, 3, 0, 0 };
    rec_t r;

    rec_init(&r, &lim);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, HEADER, strlen(HEADER)), 0);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "<a xmlns='urn:a'><b><c/></b></a>", 32), 0);
    ck_assert_int_eq(r.stanzas, 1);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "<a xmlns='urn:a'><b><c><d/></c></b></a>", 39),
                     ROOST_EPROTO);
    ck_assert_str_eq(r.cond, "policy-violation");
    ck_assert_int_eq(r.stanzas, 1);
    ck_assert_int_eq(r.after_error, 0);
    rec_done(&r);
}
END_TEST

START_TEST(test_attr_limit)
{
    roost_xmlstream_limits_t lim = { 0, 0, 4, 0 };
    const char ok[] = "<message a='1' b='2' c='3' xml:lang='en'/>";
    const char bad[] = "<message a='1' b='2' c='3' d='4' e='5'/>";
    rec_t r;

    rec_init(&r, &lim);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, HEADER, strlen(HEADER)), 0);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, ok, strlen(ok)), 0);
    ck_assert_int_eq(r.stanzas, 1);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, bad, strlen(bad)), ROOST_EPROTO);
    ck_assert_str_eq(r.cond, "policy-violation");
    ck_assert_int_eq(r.stanzas, 1);
    ck_assert_int_eq(r.after_error, 0);
    rec_done(&r);
}
END_TEST

START_TEST(test_set_limits)
{
    roost_xmlstream_limits_t small = { 100, 0, 0, 0 }, large = { 10000, 0, 0, 0 };
    char st[600];
    rec_t r;

    snprintf(st, sizeof(st), "<message><body>%0500d</body></message>", 0);
    rec_init(&r, &small);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, HEADER, strlen(HEADER)), 0);
    roost_xmlstream_set_limits(r.s, &large);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, st, strlen(st)), 0);
    ck_assert_int_eq(r.stanzas, 1);
    roost_xmlstream_set_limits(r.s, &small);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, st, strlen(st)), ROOST_EPROTO);
    rec_done(&r);
}
END_TEST

START_TEST(test_keepalives_and_lang)
{
    rec_t r;
    const char in[] = HEADER " \n<message xml:lang='de'><body>x</body></message>\n\t "
        "<presence/>   \r\n";
    roost_xml_t *m;
    roost_xmlstream_cb_t cb = { NULL, keep_stanza, NULL, NULL };
    roost_xmlstream_t *s;

    rec_init(&r, NULL);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, in, strlen(in)), 0);
    ck_assert_int_eq(r.errors, 0);
    ck_assert_int_eq(r.stanzas, 2);
    ck_assert_str_eq(r.lang, "en");
    ck_assert_ptr_nonnull(strstr(rec_log(&r), "<message xml:lang=\"de\">"));
    rec_done(&r);

    s = roost_xmlstream_new(NULL, &cb, NULL);
    kept = NULL;
    ck_assert_int_eq(roost_xmlstream_feed(s, in, strlen(in)), 0);
    m = kept;
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(roost_xml_attr_ns(m, ROOST_NS_XML, "lang"), "de");
    ck_assert_ptr_null(roost_xml_attr(m, "lang"));
    roost_xml_free(m);
    kept = NULL;
    roost_xmlstream_free(s);
}
END_TEST

/* Expat would let UTF-16 (with or without a byte order mark) override the
 * UTF-8 the parser is created with, and parse it. */
START_TEST(test_utf16_refused)
{
    static const struct { const char *in; size_t len; } cases[] = {
        { "\xff\xfe<\0s\0", 6 },
        { "\xfe\xff\0<\0s", 6 },
        { "<\0s\0t\0", 6 },
        { "\0<\0s\0t", 6 },
    };
    size_t i, split;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (split = 0; split <= 2; split++) {
            rec_t r;
            int rc;

            rec_init(&r, NULL);
            rc = roost_xmlstream_feed(r.s, cases[i].in, split);
            if (rc == 0)
                rc = roost_xmlstream_feed(r.s, cases[i].in + split, cases[i].len - split);
            ck_assert_int_eq(rc, ROOST_EPROTO);
            ck_assert_int_eq(r.errors, 1);
            ck_assert_str_eq(r.cond, "unsupported-encoding");
            ck_assert_int_eq(r.opens, 0);
            rec_done(&r);
        }
    }
}
END_TEST

/* A UTF-8 byte order mark is fine. */
START_TEST(test_utf8_bom_ok)
{
    rec_t r;

    rec_init(&r, NULL);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, "\xef\xbb\xbf" HEADER, 3 + strlen(HEADER)), 0);
    ck_assert_int_eq(r.opens, 1);
    ck_assert_int_eq(r.errors, 0);
    rec_done(&r);
}
END_TEST

START_TEST(test_free_midstream)
{
    rec_t r;

    /* Partial stanza, kept input and a paused parser are all released. */
    rec_init(&r, &(roost_xmlstream_limits_t){ 0, 0, 0, 8 });
    r.pause_at = 1;
    ck_assert_int_eq(roost_xmlstream_feed(r.s, three, strlen(three)), ROOST_EAGAIN);
    rec_done(&r);
    rec_init(&r, NULL);
    ck_assert_int_eq(roost_xmlstream_feed(r.s, HEADER "<message><body>x", strlen(HEADER) + 16), 0);
    rec_done(&r);
    roost_xmlstream_free(NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("xmlstream");
    TCase *tc = tcase_create("core");
    int n = (int)(sizeof(err_cases) / sizeof(err_cases[0]));

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_normal_stream);
    tcase_add_test(tc, test_tree_shape);
    tcase_add_test(tc, test_every_split_point);
    tcase_add_test(tc, test_byte_at_a_time);
    tcase_add_test(tc, test_release_keeps_namespace_context);
    tcase_add_test(tc, test_release_errors);
    tcase_add_test(tc, test_every_double_split_point);
    tcase_add_test(tc, test_park_lru);
    tcase_add_test(tc, test_pause_resume);
    tcase_add_test(tc, test_pause_every_stanza_chunked);
    tcase_add_test(tc, test_random_feeds_and_pauses);
    tcase_add_test(tc, test_reset);
    tcase_add_loop_test(tc, test_errors, 0, n);
    tcase_add_loop_test(tc, test_errors_bytewise, 0, n);
    tcase_add_test(tc, test_huge_attribute);
    tcase_add_test(tc, test_huge_text);
    tcase_add_test(tc, test_huge_whitespace_ok);
    tcase_add_test(tc, test_stanza_size_in_one_chunk);
    tcase_add_test(tc, test_header_too_large);
    tcase_add_test(tc, test_depth_limit);
    tcase_add_test(tc, test_attr_limit);
    tcase_add_test(tc, test_set_limits);
    tcase_add_test(tc, test_keepalives_and_lang);
    tcase_add_test(tc, test_utf16_refused);
    tcase_add_test(tc, test_utf8_bom_ok);
    tcase_add_test(tc, test_free_midstream);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
