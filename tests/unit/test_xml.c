/* Unit tests for node/buf.c and node/xml.c: tree building, lookup, copy,
 * detach, and a serializer whose output expat parses back to the same tree. */
#include <check.h>
#include <expat.h>
#include <stdlib.h>
#include <string.h>

#include "node/buf.h"
#include "node/xml.h"
#include "store/error.h"

/* ---- an expat-based reader used to check serializer output ---- */

typedef struct {
    roost_xml_t *root;
    roost_xml_t *cur;
    int failed;
} reader_t;

/* Splits expat's "ns\nname" (separator '\n') into ns and name. */
static void split(const char *qn, char **ns, char **name)
{
    const char *sep = strchr(qn, '\n');

    if (sep) {
        *ns = strndup(qn, (size_t)(sep - qn));
        *name = strdup(sep + 1);
    } else {
        *ns = NULL;
        *name = strdup(qn);
    }
}

static void on_start(void *ud, const XML_Char *qn, const XML_Char **atts)
{
    reader_t *r = ud;
    char *ns, *name;
    roost_xml_t *el;
    int i;

    split(qn, &ns, &name);
    el = roost_xml_new(name, ns);
    free(ns);
    free(name);
    if (el == NULL) {
        r->failed = 1;
        return;
    }
    for (i = 0; atts[i]; i += 2) {
        split(atts[i], &ns, &name);
        if (roost_xml_set_attr_ns(el, ns, name, atts[i + 1]) < 0)
            r->failed = 1;
        free(ns);
        free(name);
    }
    if (r->cur)
        roost_xml_append(r->cur, el);
    else
        r->root = el;
    r->cur = el;
}

static void on_end(void *ud, const XML_Char *qn)
{
    reader_t *r = ud;

    (void)qn;
    r->cur = r->cur->parent;
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    reader_t *r = ud;

    if (r->cur && roost_xml_add_text(r->cur, s, (size_t)len) < 0)
        r->failed = 1;
}

/* Parses doc (NULL on malformed XML). parent_ns, when given, wraps the
 * document in a root declaring it as default, like a c2s stream does. */
static roost_xml_t *parse(const char *doc, const char *parent_ns)
{
    XML_Parser p = XML_ParserCreateNS(NULL, '\n');
    reader_t r = { NULL, NULL, 0 };
    roost_buf_t b = ROOST_BUF_INIT;
    roost_xml_t *el = NULL;
    int ok;

    ck_assert_ptr_nonnull(p);
    if (parent_ns) {
        roost_buf_puts(&b, "<wrap xmlns=\"");
        roost_buf_escape(&b, parent_ns, strlen(parent_ns));
        roost_buf_puts(&b, "\">");
    }
    roost_buf_puts(&b, doc);
    if (parent_ns)
        roost_buf_puts(&b, "</wrap>");
    XML_SetUserData(p, &r);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    ok = XML_Parse(p, b.data, (int)b.len, 1) == XML_STATUS_OK && !r.failed;
    XML_ParserFree(p);
    roost_buf_free(&b);
    if (!ok) {
        roost_xml_free(r.root);
        return NULL;
    }
    if (parent_ns) {
        el = r.root->children;
        if (el) {
            roost_xml_detach(el);
        }
        roost_xml_free(r.root);
        return el;
    }
    return r.root;
}

/* Structural equality, attributes compared order-insensitively. */
static int tree_equal(const roost_xml_t *a, const roost_xml_t *b)
{
    const roost_xml_attr_t *x;
    const roost_xml_t *ca, *cb;

    if ((a->name == NULL) != (b->name == NULL))
        return 0;
    if (a->name == NULL)
        return a->text_len == b->text_len && memcmp(a->text, b->text, a->text_len) == 0;
    if (strcmp(a->name, b->name) != 0 || strcmp(a->ns, b->ns) != 0)
        return 0;
    if (roost_xml_attr_count(a) != roost_xml_attr_count(b))
        return 0;
    for (x = a->attrs; x; x = x->next) {
        const char *v = roost_xml_attr_ns(b, x->ns, x->name);
        if (v == NULL || strcmp(v, x->value) != 0)
            return 0;
    }
    for (ca = a->children, cb = b->children; ca && cb; ca = ca->next, cb = cb->next)
        if (!tree_equal(ca, cb))
            return 0;
    return ca == NULL && cb == NULL;
}

static char *ser(const roost_xml_t *el, const char *parent_ns)
{
    roost_buf_t b = ROOST_BUF_INIT;

    ck_assert_int_eq(roost_xml_serialize(el, parent_ns, &b), 0);
    return roost_buf_steal(&b, NULL);
}

/* ---- buf ---- */

START_TEST(buf_basic)
{
    roost_buf_t b = ROOST_BUF_INIT;
    char *s;
    size_t len;
    int i;

    ck_assert_int_eq(roost_buf_puts(&b, "ab"), 0);
    ck_assert_int_eq(roost_buf_append(&b, "c\0d", 3), 0);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_int_eq(memcmp(b.data, "abc\0d", 6), 0);
    roost_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    ck_assert_int_eq(roost_buf_printf(&b, "%d-%s", 42, "x"), 0);
    ck_assert_str_eq(b.data, "42-x");
    for (i = 0; i < 1000; i++)
        ck_assert_int_eq(roost_buf_printf(&b, "%04d", i), 0);
    ck_assert_uint_eq(b.len, 4 + 4000);
    ck_assert_int_eq(memcmp(b.data + 4 + 4 * 999, "0999", 4), 0);
    ck_assert_uint_eq(b.data[b.len], '\0');
    s = roost_buf_steal(&b, &len);
    ck_assert_uint_eq(len, 4004);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    free(s);
    s = roost_buf_steal(&b, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "");
    ck_assert_uint_eq(len, 0);
    free(s);
    roost_buf_free(&b);
    roost_buf_free(&b);
}
END_TEST

START_TEST(buf_escape)
{
    roost_buf_t b = ROOST_BUF_INIT;
    const char in[] = "a&b<c>d\"e'f";

    ck_assert_int_eq(roost_buf_escape(&b, in, strlen(in)), 0);
    ck_assert_str_eq(b.data, "a&amp;b&lt;c&gt;d&quot;e&apos;f");
    roost_buf_reset(&b);
    ck_assert_int_eq(roost_buf_escape(&b, "&<>\"'", 5), 0);
    ck_assert_str_eq(b.data, "&amp;&lt;&gt;&quot;&apos;");
    roost_buf_reset(&b);
    ck_assert_int_eq(roost_buf_escape(&b, "plain", 5), 0);
    ck_assert_str_eq(b.data, "plain");
    roost_buf_reset(&b);
    ck_assert_int_eq(roost_buf_escape(&b, "x<y", 1), 0);    /* honours n */
    ck_assert_str_eq(b.data, "x");
    roost_buf_free(&b);
}
END_TEST

/* ---- tree ---- */

START_TEST(build_and_serialize)
{
    roost_xml_t *m = roost_xml_new("message", ROOST_NS_CLIENT);
    roost_xml_t *body;
    char *s;

    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(roost_xml_set_attr(m, "to", "juliet@example.com"), 0);
    ck_assert_int_eq(roost_xml_set_attr(m, "type", "chat"), 0);
    body = roost_xml_add(m, "body", NULL);
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body->ns, ROOST_NS_CLIENT);
    ck_assert_ptr_eq(body->parent, m);
    ck_assert_int_eq(roost_xml_add_text(body, "hi", 2), 0);
    ck_assert_ptr_nonnull(roost_xml_add(m, "active", "http://jabber.org/protocol/chatstates"));

    s = ser(m, ROOST_NS_CLIENT);
    ck_assert_str_eq(s, "<message to=\"juliet@example.com\" type=\"chat\"><body>hi</body>"
                        "<active xmlns=\"http://jabber.org/protocol/chatstates\"/></message>");
    free(s);

    /* Outside a jabber:client scope the root declares its namespace. */
    s = ser(m, NULL);
    ck_assert_str_eq(s, "<message xmlns=\"jabber:client\" to=\"juliet@example.com\" type=\"chat\">"
                        "<body>hi</body>"
                        "<active xmlns=\"http://jabber.org/protocol/chatstates\"/></message>");
    free(s);
    roost_xml_free(m);
}
END_TEST

START_TEST(empty_element)
{
    roost_xml_t *e = roost_xml_new("ping", "urn:xmpp:ping");
    char *s;

    s = ser(e, "urn:xmpp:ping");
    ck_assert_str_eq(s, "<ping/>");
    free(s);
    s = ser(e, ROOST_NS_CLIENT);
    ck_assert_str_eq(s, "<ping xmlns=\"urn:xmpp:ping\"/>");
    free(s);
    roost_xml_free(e);

    /* No namespace under a default namespace must undeclare it. */
    e = roost_xml_new("x", NULL);
    ck_assert_str_eq(e->ns, "");
    s = ser(e, ROOST_NS_CLIENT);
    ck_assert_str_eq(s, "<x xmlns=\"\"/>");
    free(s);
    s = ser(e, NULL);
    ck_assert_str_eq(s, "<x/>");
    free(s);
    roost_xml_free(e);
}
END_TEST

START_TEST(escape_text_and_attrs)
{
    roost_xml_t *m = roost_xml_new("message", ROOST_NS_CLIENT), *body, *back;
    const char nasty[] = "</body></message><iq type='set'>&amp; \"q\" 'a' <![CDATA[x]]>";
    char *s, *t;

    ck_assert_int_eq(roost_xml_set_attr(m, "id", nasty), 0);
    ck_assert_int_eq(roost_xml_set_attr(m, "to", "a\"b'c<d>e&f"), 0);
    body = roost_xml_add(m, "body", NULL);
    ck_assert_int_eq(roost_xml_add_text(body, nasty, strlen(nasty)), 0);
    s = ser(m, ROOST_NS_CLIENT);
    ck_assert_str_eq(s,
        "<message id=\"&lt;/body&gt;&lt;/message&gt;&lt;iq type=&apos;set&apos;&gt;&amp;amp; "
        "&quot;q&quot; &apos;a&apos; &lt;![CDATA[x]]&gt;\" to=\"a&quot;b&apos;c&lt;d&gt;e&amp;f\">"
        "<body>&lt;/body&gt;&lt;/message&gt;&lt;iq type=&apos;set&apos;&gt;&amp;amp; "
        "&quot;q&quot; &apos;a&apos; &lt;![CDATA[x]]&gt;</body></message>");
    /* No raw markup character survives inside values. */
    ck_assert_ptr_null(strstr(s, "<iq"));
    ck_assert_ptr_null(strstr(s, "'"));

    back = parse(s, ROOST_NS_CLIENT);
    ck_assert_ptr_nonnull(back);
    ck_assert(tree_equal(m, back));
    ck_assert_str_eq(roost_xml_attr(back, "id"), nasty);
    t = roost_xml_text(roost_xml_child(back, "body", NULL));
    ck_assert_str_eq(t, nasty);
    free(t);
    roost_xml_free(back);
    free(s);
    roost_xml_free(m);
}
END_TEST

START_TEST(escape_every_char)
{
    const char specials[] = "&<>\"'";
    int i;

    for (i = 0; specials[i]; i++) {
        roost_xml_t *e = roost_xml_new("e", NULL), *back;
        char v[4] = { 'x', specials[i], 'y', '\0' };
        char *s, *t;

        ck_assert_int_eq(roost_xml_set_attr(e, "a", v), 0);
        ck_assert_int_eq(roost_xml_add_text(e, v, 3), 0);
        s = ser(e, NULL);
        /* The special char appears raw only as markup: < > " of the tags. */
        ck_assert_ptr_null(strstr(s, v));
        back = parse(s, NULL);
        ck_assert_ptr_nonnull(back);
        ck_assert_str_eq(roost_xml_attr(back, "a"), v);
        t = roost_xml_text(back);
        ck_assert_str_eq(t, v);
        free(t);
        roost_xml_free(back);
        free(s);
        roost_xml_free(e);
    }
}
END_TEST

START_TEST(namespaces)
{
    roost_xml_t *iq = roost_xml_new("iq", ROOST_NS_CLIENT), *q, *item, *back;
    char *s;

    q = roost_xml_add(iq, "query", "jabber:iq:roster");
    item = roost_xml_add(q, "item", NULL);
    ck_assert_str_eq(item->ns, "jabber:iq:roster");
    ck_assert_int_eq(roost_xml_set_attr(item, "jid", "romeo@example.net"), 0);
    roost_xml_add(item, "group", NULL);
    /* Back to jabber:client inside a foreign namespace needs a declaration. */
    roost_xml_add(q, "thing", ROOST_NS_CLIENT);
    ck_assert_int_eq(roost_xml_set_attr_ns(iq, ROOST_NS_XML, "lang", "en"), 0);
    ck_assert_str_eq(roost_xml_attr_ns(iq, ROOST_NS_XML, "lang"), "en");
    ck_assert_ptr_null(roost_xml_attr(iq, "lang"));

    s = ser(iq, ROOST_NS_CLIENT);
    ck_assert_str_eq(s, "<iq xml:lang=\"en\"><query xmlns=\"jabber:iq:roster\">"
                        "<item jid=\"romeo@example.net\"><group/></item>"
                        "<thing xmlns=\"jabber:client\"/></query></iq>");
    back = parse(s, ROOST_NS_CLIENT);
    ck_assert_ptr_nonnull(back);
    ck_assert(tree_equal(iq, back));
    roost_xml_free(back);
    free(s);
    roost_xml_free(iq);
}
END_TEST

START_TEST(foreign_attr_prefixes)
{
    roost_xml_t *e = roost_xml_new("e", "urn:a"), *c, *back;
    char *s;

    ck_assert_int_eq(roost_xml_set_attr_ns(e, "urn:x", "one", "1"), 0);
    ck_assert_int_eq(roost_xml_set_attr(e, "plain", "p"), 0);
    ck_assert_int_eq(roost_xml_set_attr_ns(e, "urn:y", "two", "2"), 0);
    ck_assert_int_eq(roost_xml_set_attr_ns(e, "urn:x", "three", "3\""), 0);
    ck_assert_int_eq(roost_xml_set_attr_ns(e, ROOST_NS_XML, "lang", "de"), 0);
    /* Same local name in two namespaces are distinct attributes. */
    ck_assert_int_eq(roost_xml_set_attr_ns(e, "urn:y", "plain", "q"), 0);
    ck_assert_uint_eq(roost_xml_attr_count(e), 6);
    c = roost_xml_add(e, "c", NULL);
    ck_assert_int_eq(roost_xml_set_attr_ns(c, "urn:y", "z", "zz"), 0);

    s = ser(e, "urn:a");
    ck_assert_str_eq(s, "<e xmlns:ns1=\"urn:x\" xmlns:ns2=\"urn:y\" ns1:one=\"1\" plain=\"p\" "
                        "ns2:two=\"2\" ns1:three=\"3&quot;\" xml:lang=\"de\" ns2:plain=\"q\">"
                        "<c xmlns:ns1=\"urn:y\" ns1:z=\"zz\"/></e>");
    back = parse(s, "urn:a");
    ck_assert_ptr_nonnull(back);
    ck_assert(tree_equal(e, back));
    ck_assert_str_eq(roost_xml_attr_ns(back, "urn:y", "plain"), "q");
    ck_assert_str_eq(roost_xml_attr(back, "plain"), "p");
    roost_xml_free(back);
    free(s);
    roost_xml_free(e);
}
END_TEST

START_TEST(refuse_unwritable_names)
{
    roost_buf_t b = ROOST_BUF_INIT;
    roost_xml_t *e = roost_xml_new("e", NULL), *bad;

    ck_assert_int_eq(roost_buf_puts(&b, "keep"), 0);
    /* An attribute name that would inject markup. */
    ck_assert_int_eq(roost_xml_set_attr(e, "a><evil", "v"), 0);
    ck_assert_int_eq(roost_xml_serialize(e, NULL, &b), ROOST_EINVAL);
    ck_assert_str_eq(b.data, "keep");    /* nothing half-written */
    ck_assert_int_eq(roost_xml_set_attr(e, "a><evil", NULL), 0);
    /* An unqualified xmlns attribute would rebind the default namespace. */
    ck_assert_int_eq(roost_xml_set_attr(e, "xmlns", "jabber:server"), 0);
    ck_assert_int_eq(roost_xml_serialize(e, NULL, &b), ROOST_EINVAL);
    ck_assert_int_eq(roost_xml_set_attr(e, "xmlns", NULL), 0);
    ck_assert_int_eq(roost_xml_set_attr_ns(e, "http://www.w3.org/2000/xmlns/", "p", "u"), 0);
    ck_assert_int_eq(roost_xml_serialize(e, NULL, &b), ROOST_EINVAL);
    ck_assert_int_eq(roost_xml_set_attr_ns(e, "http://www.w3.org/2000/xmlns/", "p", NULL), 0);
    /* An element name deep in the tree. */
    bad = roost_xml_add(e, "x y", NULL);
    ck_assert_ptr_nonnull(bad);
    ck_assert_int_eq(roost_xml_serialize(e, NULL, &b), ROOST_EINVAL);
    ck_assert_str_eq(b.data, "keep");
    roost_xml_detach(bad);
    roost_xml_free(bad);
    ck_assert_int_eq(roost_xml_serialize(e, NULL, &b), 0);
    ck_assert_str_eq(b.data, "keep<e/>");
    roost_buf_free(&b);
    roost_xml_free(e);
}
END_TEST

START_TEST(copy_tree)
{
    roost_xml_t *m = roost_xml_new("message", ROOST_NS_CLIENT), *cp, *body;
    char *a, *b;

    roost_xml_set_attr(m, "id", "1");
    roost_xml_set_attr_ns(m, ROOST_NS_XML, "lang", "en");
    body = roost_xml_add(m, "body", NULL);
    roost_xml_add_text(body, "he", 2);
    roost_xml_add(body, "b", "urn:x");
    roost_xml_add_text(body, "llo", 3);

    cp = roost_xml_copy(m);
    ck_assert_ptr_nonnull(cp);
    ck_assert_ptr_ne(cp, m);
    ck_assert_ptr_null(cp->parent);
    ck_assert(tree_equal(m, cp));
    a = ser(m, ROOST_NS_CLIENT);
    b = ser(cp, ROOST_NS_CLIENT);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);

    /* The copy is independent. */
    roost_xml_set_attr(cp, "id", "2");
    ck_assert_str_eq(roost_xml_attr(m, "id"), "1");
    ck_assert_ptr_ne(roost_xml_child(cp, "body", NULL), body);
    ck_assert_ptr_eq(roost_xml_child(cp, "body", NULL)->parent, cp);
    roost_xml_free(m);
    a = ser(cp, ROOST_NS_CLIENT);
    ck_assert_str_eq(a, "<message id=\"2\" xml:lang=\"en\"><body>he<b xmlns=\"urn:x\"/>llo</body></message>");
    free(a);

    /* Copying a subtree. */
    body = roost_xml_copy(roost_xml_child(cp, "body", NULL));
    ck_assert_ptr_nonnull(body);
    ck_assert_ptr_null(body->parent);
    ck_assert_ptr_null(body->next);
    roost_xml_free(cp);
    a = ser(body, NULL);
    ck_assert_str_eq(a, "<body xmlns=\"jabber:client\">he<b xmlns=\"urn:x\"/>llo</body>");
    free(a);
    roost_xml_free(body);
}
END_TEST

START_TEST(detach)
{
    roost_xml_t *p = roost_xml_new("p", NULL), *a, *b, *c;
    char *s;

    a = roost_xml_add(p, "a", NULL);
    b = roost_xml_add(p, "b", NULL);
    c = roost_xml_add(p, "c", NULL);
    ck_assert_uint_eq(roost_xml_child_count(p), 3);

    roost_xml_detach(b);    /* middle */
    ck_assert_ptr_null(b->parent);
    ck_assert_ptr_null(b->next);
    ck_assert_ptr_eq(a->next, c);
    ck_assert_uint_eq(roost_xml_child_count(p), 2);

    roost_xml_detach(c);    /* last */
    ck_assert_ptr_eq(p->last, a);
    ck_assert_ptr_null(a->next);

    roost_xml_append(p, b); /* re-append after detaching the last */
    ck_assert_ptr_eq(a->next, b);
    ck_assert_ptr_eq(p->last, b);

    roost_xml_detach(a);    /* first */
    ck_assert_ptr_eq(p->children, b);
    s = ser(p, NULL);
    ck_assert_str_eq(s, "<p><b/></p>");
    free(s);

    roost_xml_detach(b);    /* only */
    ck_assert_ptr_null(p->children);
    ck_assert_ptr_null(p->last);
    s = ser(p, NULL);
    ck_assert_str_eq(s, "<p/>");
    free(s);

    roost_xml_detach(b);    /* already detached: no-op */
    roost_xml_free(a);
    roost_xml_free(b);
    roost_xml_free(c);
    roost_xml_free(p);
    roost_xml_free(NULL);
}
END_TEST

START_TEST(child_next_lookup)
{
    roost_xml_t *p = roost_xml_new("p", "urn:p"), *x1, *y, *x2, *x3, *c;

    roost_xml_add_text(p, "t", 1);
    x1 = roost_xml_add(p, "x", NULL);
    roost_xml_add_text(p, "u", 1);
    y = roost_xml_add(p, "y", NULL);
    x2 = roost_xml_add(p, "x", "urn:other");
    x3 = roost_xml_add(p, "x", NULL);

    ck_assert_uint_eq(roost_xml_child_count(p), 4);
    ck_assert_ptr_eq(roost_xml_child(p, NULL, NULL), x1);    /* skips text */
    ck_assert_ptr_eq(roost_xml_child(p, "y", NULL), y);
    ck_assert_ptr_eq(roost_xml_child(p, "x", "urn:other"), x2);
    ck_assert_ptr_eq(roost_xml_child(p, NULL, "urn:other"), x2);
    ck_assert_ptr_null(roost_xml_child(p, "z", NULL));
    ck_assert_ptr_null(roost_xml_child(p, "y", "urn:other"));

    ck_assert_ptr_eq(roost_xml_next(x1, "x", NULL), x2);
    ck_assert_ptr_eq(roost_xml_next(x1, "x", "urn:p"), x3);
    ck_assert_ptr_eq(roost_xml_next(x1, NULL, NULL), y);
    ck_assert_ptr_null(roost_xml_next(x3, NULL, NULL));

    /* Iterating all x in urn:p. */
    int n = 0;
    for (c = roost_xml_child(p, "x", "urn:p"); c; c = roost_xml_next(c, "x", "urn:p"))
        n++;
    ck_assert_int_eq(n, 2);
    roost_xml_free(p);
}
END_TEST

START_TEST(attrs)
{
    roost_xml_t *e = roost_xml_new("e", NULL);
    char *s;

    ck_assert_uint_eq(roost_xml_attr_count(e), 0);
    ck_assert_ptr_null(roost_xml_attr(e, "a"));
    ck_assert_int_eq(roost_xml_set_attr(e, "a", "1"), 0);
    ck_assert_int_eq(roost_xml_set_attr(e, "b", "2"), 0);
    ck_assert_int_eq(roost_xml_set_attr(e, "c", "3"), 0);
    ck_assert_int_eq(roost_xml_set_attr(e, "a", "one"), 0);    /* replace keeps place */
    ck_assert_uint_eq(roost_xml_attr_count(e), 3);
    ck_assert_str_eq(roost_xml_attr(e, "a"), "one");
    s = ser(e, NULL);
    ck_assert_str_eq(s, "<e a=\"one\" b=\"2\" c=\"3\"/>");
    free(s);

    ck_assert_int_eq(roost_xml_set_attr(e, "b", NULL), 0);     /* remove middle */
    ck_assert_int_eq(roost_xml_set_attr(e, "zz", NULL), 0);    /* remove absent */
    ck_assert_uint_eq(roost_xml_attr_count(e), 2);
    ck_assert_ptr_null(roost_xml_attr(e, "b"));
    ck_assert_int_eq(roost_xml_set_attr(e, "a", NULL), 0);     /* remove first */
    s = ser(e, NULL);
    ck_assert_str_eq(s, "<e c=\"3\"/>");
    free(s);

    /* "" and NULL namespace both mean unqualified. */
    ck_assert_int_eq(roost_xml_set_attr_ns(e, "", "c", "4"), 0);
    ck_assert_uint_eq(roost_xml_attr_count(e), 1);
    ck_assert_str_eq(roost_xml_attr_ns(e, NULL, "c"), "4");
    ck_assert_ptr_null(roost_xml_attr_ns(e, "urn:x", "c"));
    ck_assert_int_eq(roost_xml_set_attr_ns(e, "urn:x", "c", "5"), 0);
    ck_assert_uint_eq(roost_xml_attr_count(e), 2);
    ck_assert_str_eq(roost_xml_attr(e, "c"), "4");
    ck_assert_int_eq(roost_xml_set_attr_ns(e, "urn:x", "c", NULL), 0);
    ck_assert_str_eq(roost_xml_attr(e, "c"), "4");
    ck_assert_int_eq(roost_xml_set_attr(e, "empty", ""), 0);
    ck_assert_str_eq(roost_xml_attr(e, "empty"), "");
    s = ser(e, NULL);
    ck_assert_str_eq(s, "<e c=\"4\" empty=\"\"/>");
    free(s);
    roost_xml_free(e);
}
END_TEST

START_TEST(text_concat)
{
    roost_xml_t *e = roost_xml_new("body", NULL), *back;
    char *t, *s;

    t = roost_xml_text(e);
    ck_assert_str_eq(t, "");
    free(t);
    ck_assert_int_eq(roost_xml_add_text(e, "Hel", 3), 0);
    ck_assert_int_eq(roost_xml_add_text(e, "lo", 2), 0);
    /* Adjacent text merges into one node. */
    ck_assert_ptr_eq(e->children, e->last);
    ck_assert_uint_eq(e->children->text_len, 5);
    ck_assert_str_eq(e->children->text, "Hello");
    roost_xml_add_text(roost_xml_add(e, "i", NULL), "inner", 5);
    ck_assert_int_eq(roost_xml_add_text(e, ", ", 2), 0);
    ck_assert_int_eq(roost_xml_add_text(e, "w\xc3\xb6rld", 6), 0);
    ck_assert_int_eq(roost_xml_add_text(e, "", 0), 0);
    ck_assert_uint_eq(roost_xml_child_count(e), 1);
    {
        roost_xml_t *empty = roost_xml_new("x", NULL);
        char *es;

        ck_assert_int_eq(roost_xml_add_text(empty, "", 0), 0);
        ck_assert_ptr_null(empty->children);
        es = ser(empty, NULL);
        ck_assert_str_eq(es, "<x/>");
        free(es);
        roost_xml_free(empty);
    }
    t = roost_xml_text(e);    /* direct text only */
    ck_assert_str_eq(t, "Hello, w\xc3\xb6rld");
    free(t);

    s = ser(e, NULL);
    ck_assert_str_eq(s, "<body>Hello<i>inner</i>, w\xc3\xb6rld</body>");
    back = parse(s, NULL);
    ck_assert_ptr_nonnull(back);
    ck_assert(tree_equal(e, back));
    roost_xml_free(back);
    free(s);
    roost_xml_free(e);
}
END_TEST

START_TEST(round_trip_parsed)
{
    const char *docs[] = {
        "<message xmlns='jabber:client' to='a@b/c' type='chat' xml:lang='en'>"
        "<body>x &amp; y &lt;z&gt; &quot;q&quot; &apos;</body>"
        "<html xmlns='http://jabber.org/protocol/xhtml-im'>"
        "<body xmlns='http://www.w3.org/1999/xhtml'><p style='a:b'>hi <em>there</em></p></body>"
        "</html></message>",
        "<iq xmlns='jabber:client' type='set' id='x'><query xmlns='jabber:iq:roster'>"
        "<item jid='n@d' name='&lt;&amp;&gt;' subscription='both'><group>G1</group></item>"
        "</query></iq>",
        "<presence xmlns='jabber:client'><x xmlns='urn:a' xmlns:p='urn:p' p:q='1'><y xmlns=''/></x></presence>",
        "<a xmlns='urn:a'><b xmlns='urn:b'><a xmlns='urn:a'>&#xD;&#x9;tab\n&#xD;\n</a></b></a>",
        "<a xmlns='urn:a' v='&#x9;t&#xA;n&#xD;r &#xD;&#xA;' xmlns:n='a&#x9;b' n:w='&#x9;'/>",
    };
    size_t i;

    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        roost_xml_t *t1 = parse(docs[i], NULL), *t2;
        char *s1, *s2;

        ck_assert_ptr_nonnull(t1);
        s1 = ser(t1, ROOST_NS_CLIENT);
        t2 = parse(s1, ROOST_NS_CLIENT);
        ck_assert_msg(t2 != NULL, "reparse failed: %s", s1);
        ck_assert_msg(tree_equal(t1, t2), "tree differs: %s", s1);
        s2 = ser(t2, ROOST_NS_CLIENT);
        ck_assert_str_eq(s1, s2);     /* serialization is a fixed point */
        free(s1);
        free(s2);
        roost_xml_free(t1);
        roost_xml_free(t2);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("xml");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, buf_basic);
    tcase_add_test(tc, buf_escape);
    tcase_add_test(tc, build_and_serialize);
    tcase_add_test(tc, empty_element);
    tcase_add_test(tc, escape_text_and_attrs);
    tcase_add_test(tc, escape_every_char);
    tcase_add_test(tc, namespaces);
    tcase_add_test(tc, foreign_attr_prefixes);
    tcase_add_test(tc, refuse_unwritable_names);
    tcase_add_test(tc, copy_tree);
    tcase_add_test(tc, detach);
    tcase_add_test(tc, child_next_lookup);
    tcase_add_test(tc, attrs);
    tcase_add_test(tc, text_concat);
    tcase_add_test(tc, round_trip_parsed);
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
