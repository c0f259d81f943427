/* The stanza tree and its serializer. Everything that leaves the server is
 * written from this tree, so escaping and namespace declarations are done
 * here and only here. */
#include "node/xml.h"

#include <stdlib.h>
#include <string.h>

#include "store/error.h"

#define NS_XMLNS "http://www.w3.org/2000/xmlns/"

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *dup(const char *s)
{
    return dupn(s, strlen(s));
}

/* An attribute namespace of NULL or "" both mean "unqualified". */
static int ns_is_none(const char *ns)
{
    return ns == NULL || ns[0] == '\0';
}

static int ns_same(const char *a, const char *b)
{
    if (ns_is_none(a) || ns_is_none(b))
        return ns_is_none(a) && ns_is_none(b);
    return strcmp(a, b) == 0;
}

static void attr_free(roost_xml_attr_t *a)
{
    free(a->ns);
    free(a->name);
    free(a->value);
    free(a);
}

roost_xml_t *roost_xml_new(const char *name, const char *ns)
{
    roost_xml_t *el = calloc(1, sizeof(*el));

    if (el == NULL)
        return NULL;
    el->name = dup(name);
    el->ns = dup(ns ? ns : "");
    if (el->name == NULL || el->ns == NULL)
        goto fail_el;
    return el;

fail_el:
    free(el->name);
    free(el->ns);
    free(el);
    return NULL;
}

void roost_xml_free(roost_xml_t *el)
{
    roost_xml_t *c, *cn;
    roost_xml_attr_t *a, *an;

    if (el == NULL)
        return;
    for (c = el->children; c; c = cn) {
        cn = c->next;
        roost_xml_free(c);
    }
    for (a = el->attrs; a; a = an) {
        an = a->next;
        attr_free(a);
    }
    free(el->ns);
    free(el->name);
    free(el->text);
    free(el);
}

static roost_xml_t *text_new(const char *text, size_t n)
{
    roost_xml_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->text = dupn(text, n);
    if (t->text == NULL) {
        free(t);
        return NULL;
    }
    t->text_len = n;
    return t;
}

roost_xml_t *roost_xml_copy(const roost_xml_t *el)
{
    roost_xml_t *cp, *cc;
    const roost_xml_t *c;
    const roost_xml_attr_t *a;

    if (el->name == NULL)
        return text_new(el->text ? el->text : "", el->text_len);
    cp = roost_xml_new(el->name, el->ns);
    if (cp == NULL)
        return NULL;
    for (a = el->attrs; a; a = a->next)
        if (roost_xml_set_attr_ns(cp, a->ns, a->name, a->value) < 0)
            goto fail_cp;
    for (c = el->children; c; c = c->next) {
        cc = roost_xml_copy(c);
        if (cc == NULL)
            goto fail_cp;
        roost_xml_append(cp, cc);
    }
    return cp;

fail_cp:
    roost_xml_free(cp);
    return NULL;
}

static roost_xml_attr_t *attr_find(const roost_xml_t *el, const char *ns, const char *name)
{
    roost_xml_attr_t *a;

    if (el == NULL || name == NULL)
        return NULL;
    for (a = el->attrs; a; a = a->next)
        if (strcmp(a->name, name) == 0 && ns_same(a->ns, ns))
            return a;
    return NULL;
}

const char *roost_xml_attr(const roost_xml_t *el, const char *name)
{
    roost_xml_attr_t *a = attr_find(el, NULL, name);

    return a ? a->value : NULL;
}

const char *roost_xml_attr_ns(const roost_xml_t *el, const char *ns, const char *name)
{
    roost_xml_attr_t *a = attr_find(el, ns, name);

    return a ? a->value : NULL;
}

int roost_xml_set_attr(roost_xml_t *el, const char *name, const char *value)
{
    return roost_xml_set_attr_ns(el, NULL, name, value);
}

int roost_xml_set_attr_ns(roost_xml_t *el, const char *ns, const char *name, const char *value)
{
    roost_xml_attr_t *a, **pp;
    char *v;

    if (value == NULL) {
        for (pp = &el->attrs; *pp; pp = &(*pp)->next) {
            if (strcmp((*pp)->name, name) == 0 && ns_same((*pp)->ns, ns)) {
                a = *pp;
                *pp = a->next;
                attr_free(a);
                return 0;
            }
        }
        return 0;
    }
    a = attr_find(el, ns, name);
    if (a) {
        /* Replace in place so attribute order stays stable. */
        v = dup(value);
        if (v == NULL)
            return ROOST_ENOMEM;
        free(a->value);
        a->value = v;
        return 0;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return ROOST_ENOMEM;
    a->name = dup(name);
    a->value = dup(value);
    if (!ns_is_none(ns))
        a->ns = dup(ns);
    if (a->name == NULL || a->value == NULL || (!ns_is_none(ns) && a->ns == NULL)) {
        attr_free(a);
        return ROOST_ENOMEM;
    }
    for (pp = &el->attrs; *pp; pp = &(*pp)->next)
        ;
    *pp = a;
    return 0;
}

size_t roost_xml_attr_count(const roost_xml_t *el)
{
    const roost_xml_attr_t *a;
    size_t n = 0;

    for (a = el->attrs; a; a = a->next)
        n++;
    return n;
}

void roost_xml_append(roost_xml_t *parent, roost_xml_t *child)
{
    child->parent = parent;
    child->next = NULL;
    if (parent->last)
        parent->last->next = child;
    else
        parent->children = child;
    parent->last = child;
}

roost_xml_t *roost_xml_add(roost_xml_t *parent, const char *name, const char *ns)
{
    roost_xml_t *c = roost_xml_new(name, ns ? ns : parent->ns);

    if (c == NULL)
        return NULL;
    roost_xml_append(parent, c);
    return c;
}

/* Expat hands character data over in arbitrary chunks; merging adjacent
 * text keeps one node per run instead of one per chunk. */
int roost_xml_add_text(roost_xml_t *parent, const char *text, size_t n)
{
    roost_xml_t *last = parent->last, *t;
    char *p;

    if (n == 0)
        return 0;   /* an empty text node would only cost memory */
    if (last && last->name == NULL) {
        if (n > (size_t)-1 - 1 - last->text_len)
            return ROOST_ENOMEM;
        p = realloc(last->text, last->text_len + n + 1);
        if (p == NULL)
            return ROOST_ENOMEM;
        memcpy(p + last->text_len, text, n);
        last->text = p;
        last->text_len += n;
        p[last->text_len] = '\0';
        return 0;
    }
    t = text_new(text, n);
    if (t == NULL)
        return ROOST_ENOMEM;
    roost_xml_append(parent, t);
    return 0;
}

void roost_xml_detach(roost_xml_t *el)
{
    roost_xml_t *p = el->parent, *prev = NULL, *c;

    if (p == NULL)
        return;
    for (c = p->children; c && c != el; c = c->next)
        prev = c;
    if (c == el) {
        if (prev)
            prev->next = el->next;
        else
            p->children = el->next;
        if (p->last == el)
            p->last = prev;
    }
    el->parent = NULL;
    el->next = NULL;
}

static int matches(const roost_xml_t *c, const char *name, const char *ns)
{
    if (c->name == NULL)
        return 0;
    if (name && strcmp(c->name, name) != 0)
        return 0;
    if (ns && strcmp(c->ns, ns) != 0)
        return 0;
    return 1;
}

roost_xml_t *roost_xml_child(const roost_xml_t *el, const char *name, const char *ns)
{
    roost_xml_t *c;

    for (c = el->children; c; c = c->next)
        if (matches(c, name, ns))
            return c;
    return NULL;
}

roost_xml_t *roost_xml_next(const roost_xml_t *child, const char *name, const char *ns)
{
    roost_xml_t *c;

    for (c = child->next; c; c = c->next)
        if (matches(c, name, ns))
            return c;
    return NULL;
}

size_t roost_xml_child_count(const roost_xml_t *el)
{
    const roost_xml_t *c;
    size_t n = 0;

    for (c = el->children; c; c = c->next)
        if (c->name)
            n++;
    return n;
}

char *roost_xml_text(const roost_xml_t *el)
{
    roost_buf_t b = ROOST_BUF_INIT;
    const roost_xml_t *c;

    for (c = el->children; c; c = c->next) {
        if (c->name == NULL && roost_buf_append(&b, c->text, c->text_len) < 0) {
            roost_buf_free(&b);
            return NULL;
        }
    }
    return roost_buf_steal(&b, NULL);
}

/* Names cannot be escaped, so a name that could end the tag, start an
 * attribute, or smuggle a prefix is refused rather than written. Expat
 * never produces such names; this guards trees built from other input. */
static int name_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (p == NULL || *p == '\0')
        return 0;
    if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '.')
        return 0;
    for (; *p; p++) {
        if (*p <= ' ' || *p == 0x7f)
            return 0;
        switch (*p) {
        case '<': case '>': case '&': case '"': case '\'': case '=':
        case '/': case '?': case '!': case ':': case '`':
            return 0;
        }
    }
    return 1;
}

static int attr_foreign(const roost_xml_attr_t *a)
{
    return !ns_is_none(a->ns) && strcmp(a->ns, ROOST_NS_XML) != 0;
}

/* 1 when a is the first attribute of el in a's foreign namespace. */
static int first_use(const roost_xml_t *el, const roost_xml_attr_t *a)
{
    const roost_xml_attr_t *y;

    for (y = el->attrs; y != a; y = y->next)
        if (attr_foreign(y) && strcmp(y->ns, a->ns) == 0)
            return 0;
    return 1;
}

/* 1-based number of the generated prefix for a's namespace: the count of
 * distinct foreign namespaces up to and including its first use. */
static unsigned prefix_index(const roost_xml_t *el, const roost_xml_attr_t *a)
{
    const roost_xml_attr_t *x;
    unsigned n = 0;

    for (x = el->attrs; x; x = x->next) {
        if (!attr_foreign(x))
            continue;
        if (!first_use(el, x))
            continue;
        n++;
        if (strcmp(x->ns, a->ns) == 0)
            return n;
    }
    return n;
}

/* Escapes like roost_buf_escape, and also writes the whitespace a parser
 * would normalize away as character references: CR anywhere (line-end
 * normalization), TAB and LF in attribute values (attribute-value
 * normalization). Without this a value would not survive a round trip. */
static int escape(roost_buf_t *b, const char *s, size_t n, int attr)
{
    size_t i, run = 0;
    const char *rep;
    int rc;

    for (i = 0; i < n; i++) {
        if (s[i] == '\r')
            rep = "&#xD;";
        else if (attr && s[i] == '\n')
            rep = "&#xA;";
        else if (attr && s[i] == '\t')
            rep = "&#x9;";
        else
            continue;
        rc = roost_buf_escape(b, s + run, i - run);
        if (rc == 0)
            rc = roost_buf_puts(b, rep);
        if (rc < 0)
            return rc;
        run = i + 1;
    }
    return roost_buf_escape(b, s + run, n - run);
}

/* Appends the decimal form of v (the serializer runs per stanza and
 * printf-style formatting was most of its cost). */
static int put_uint(roost_buf_t *b, unsigned v)
{
    char d[12];
    size_t i = sizeof(d);

    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return roost_buf_append(b, d + i, sizeof(d) - i);
}

static int put_attr(roost_buf_t *b, const char *qname_pfx, unsigned idx,
                    const char *name, const char *value)
{
    int rc = roost_buf_append(b, " ", 1);

    if (rc == 0 && qname_pfx) {
        rc = roost_buf_puts(b, qname_pfx);
        if (rc == 0 && idx)
            rc = put_uint(b, idx);
        if (rc == 0)
            rc = roost_buf_append(b, ":", 1);
    }
    if (rc == 0)
        rc = roost_buf_puts(b, name);
    if (rc == 0)
        rc = roost_buf_append(b, "=\"", 2);
    if (rc == 0)
        rc = escape(b, value, strlen(value), 1);
    if (rc == 0)
        rc = roost_buf_puts(b, "\"");
    return rc;
}

static int serialize(const roost_xml_t *el, const char *parent_ns, roost_buf_t *b)
{
    const roost_xml_attr_t *a;
    const roost_xml_t *c;
    int rc;

    if (el->name == NULL)
        return escape(b, el->text ? el->text : "", el->text_len, 0);
    if (!name_ok(el->name))
        return ROOST_EINVAL;
    rc = roost_buf_append(b, "<", 1);
    if (rc == 0)
        rc = roost_buf_puts(b, el->name);
    if (rc == 0 && strcmp(el->ns, parent_ns) != 0)
        rc = put_attr(b, NULL, 0, "xmlns", el->ns);
    /* Declare each foreign attribute namespace once, on this element. */
    for (a = el->attrs; rc == 0 && a; a = a->next) {
        if (!name_ok(a->name))
            return ROOST_EINVAL;
        if (ns_is_none(a->ns) && strcmp(a->name, "xmlns") == 0)
            return ROOST_EINVAL;    /* would rebind the default namespace */
        if (!attr_foreign(a))
            continue;
        if (strcmp(a->ns, NS_XMLNS) == 0)
            return ROOST_EINVAL;    /* declarations are ours to write */
        if (!first_use(el, a))
            continue;
        rc = roost_buf_puts(b, " xmlns:ns");
        if (rc == 0)
            rc = put_uint(b, prefix_index(el, a));
        if (rc == 0)
            rc = roost_buf_append(b, "=\"", 2);
        if (rc == 0)
            rc = escape(b, a->ns, strlen(a->ns), 1);
        if (rc == 0)
            rc = roost_buf_puts(b, "\"");
    }
    for (a = el->attrs; rc == 0 && a; a = a->next) {
        if (ns_is_none(a->ns))
            rc = put_attr(b, NULL, 0, a->name, a->value);
        else if (!attr_foreign(a))
            rc = put_attr(b, "xml", 0, a->name, a->value);
        else
            rc = put_attr(b, "ns", prefix_index(el, a), a->name, a->value);
    }
    if (rc < 0)
        return rc;
    if (el->children == NULL)
        return roost_buf_puts(b, "/>");
    rc = roost_buf_puts(b, ">");
    for (c = el->children; rc == 0 && c; c = c->next)
        rc = serialize(c, el->ns, b);
    if (rc == 0)
        rc = roost_buf_append(b, "</", 2);
    if (rc == 0)
        rc = roost_buf_puts(b, el->name);
    if (rc == 0)
        rc = roost_buf_append(b, ">", 1);
    return rc;
}

int roost_xml_serialize(const roost_xml_t *el, const char *parent_ns, roost_buf_t *b)
{
    size_t start = b->len;
    int rc = serialize(el, parent_ns ? parent_ns : "", b);

    /* Never leave half an element in the buffer. */
    if (rc < 0) {
        b->len = start;
        if (b->data)
            b->data[b->len] = '\0';
    }
    return rc;
}
