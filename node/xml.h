/* The stanza tree: elements with namespace, attributes, children and text,
 * and a safe serializer. The server always re-serializes from this tree;
 * raw client bytes are never forwarded. */
#ifndef ROOST_XML_H
#define ROOST_XML_H

#include <stddef.h>
#include "node/buf.h"

#define ROOST_NS_XML      "http://www.w3.org/XML/1998/namespace"
#define ROOST_NS_STREAMS  "http://etherx.jabber.org/streams"
#define ROOST_NS_CLIENT   "jabber:client"

typedef struct roost_xml_s roost_xml_t;
typedef struct roost_xml_attr_s roost_xml_attr_t;

/* An attribute: ns is NULL for unqualified attributes (the usual case;
 * "xml:lang" has ns ROOST_NS_XML, name "lang"). */
struct roost_xml_attr_s {
    char *ns;
    char *name;
    char *value;
    roost_xml_attr_t *next;
};

/* A node is an element (name != NULL) or a text node (name == NULL, text
 * holds the unescaped character data). Read the fields freely; change a
 * tree only through the functions below. */
struct roost_xml_s {
    char *ns;                 /* element namespace URI ("" for none) */
    char *name;               /* local name; NULL for a text node */
    char *text;               /* text node content */
    size_t text_len;
    roost_xml_attr_t *attrs;
    roost_xml_t *parent;
    roost_xml_t *children;    /* first child */
    roost_xml_t *last;        /* last child */
    roost_xml_t *next;        /* next sibling */
};

/* New element (copies name and ns; ns may be NULL meaning ""). NULL on ENOMEM. */
roost_xml_t *roost_xml_new(const char *name, const char *ns);
/* Frees el and its subtree; detach it first if it has a parent. NULL ok. */
void roost_xml_free(roost_xml_t *el);
/* Deep copy, NULL on ENOMEM. */
roost_xml_t *roost_xml_copy(const roost_xml_t *el);

/* Unqualified attribute value or NULL. */
const char *roost_xml_attr(const roost_xml_t *el, const char *name);
/* Namespaced attribute value or NULL (ns NULL = unqualified). */
const char *roost_xml_attr_ns(const roost_xml_t *el, const char *ns, const char *name);
/* Sets (replaces) an unqualified attribute; value NULL removes it. 0/ENOMEM. */
int roost_xml_set_attr(roost_xml_t *el, const char *name, const char *value);
int roost_xml_set_attr_ns(roost_xml_t *el, const char *ns, const char *name, const char *value);
/* Number of attributes. */
size_t roost_xml_attr_count(const roost_xml_t *el);

/* Appends child (takes ownership; child must be detached). */
void roost_xml_append(roost_xml_t *parent, roost_xml_t *child);
/* New child element appended to parent and returned (NULL on ENOMEM). ns
 * NULL inherits the parent's namespace. */
roost_xml_t *roost_xml_add(roost_xml_t *parent, const char *name, const char *ns);
/* Appends a text node (copies n bytes). 0/ENOMEM. */
int roost_xml_add_text(roost_xml_t *parent, const char *text, size_t n);
/* Unlinks el from its parent (el keeps its subtree). */
void roost_xml_detach(roost_xml_t *el);

/* First child element with that name and namespace (either may be NULL =
 * any), or NULL. */
roost_xml_t *roost_xml_child(const roost_xml_t *el, const char *name, const char *ns);
/* Next sibling element after child matching name/ns (NULL = any). */
roost_xml_t *roost_xml_next(const roost_xml_t *child, const char *name, const char *ns);
/* Number of child elements. */
size_t roost_xml_child_count(const roost_xml_t *el);
/* Concatenated direct text content into a malloc'd string (may be ""), NULL
 * on ENOMEM. */
char *roost_xml_text(const roost_xml_t *el);

/* Serializes el (and subtree) into b. parent_ns is the default namespace in
 * scope where el is written ("jabber:client" inside a c2s stream): xmlns is
 * written only when el's namespace differs. Attributes in other namespaces
 * get a generated prefix (xml: for ROOST_NS_XML). All text and attribute
 * values are escaped. 0/ENOMEM. */
int roost_xml_serialize(const roost_xml_t *el, const char *parent_ns, roost_buf_t *b);

#endif
