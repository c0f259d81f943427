/* The XML stream parser: drives expat in namespace mode over a byte stream,
 * turns depth-2 elements into stanza trees, and enforces RFC 6120's
 * restricted XML and our size/depth/attribute bounds. Between stanzas the
 * expat parser (about 10 KiB once used) is parked; the least recently used
 * parked parsers beyond a small process-wide number are freed, and such a
 * stream's next bytes get a fresh parser, first fed the stream's own start
 * tag again so that the namespace context of the header (prefixes, default
 * namespace) is the same. Idle connections so cost no parser, and busy ones
 * do not pay a parser per stanza. */
#include "node/xmlstream.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/buf.h"
#include "store/error.h"

/* Expat joins namespace URI and local name with this byte. A control
 * character cannot occur in an XML 1.0 name or URI (not even as &#1;), so
 * the split below is unambiguous. */
#define NS_SEP '\x01'

/* Bytes a peer may send before its stream header is complete. */
#define HEADER_MAX 4096

#define DEF_MAX_STANZA 262144
#define DEF_MAX_DEPTH 32
#define DEF_MAX_ATTRS 32
#define DEF_CHUNK 4096

struct roost_xmlstream_s {
    XML_Parser p;            /* NULL while released between stanzas */
    roost_xmlstream_limits_t lim;
    roost_xmlstream_cb_t cb;
    void *data;

    unsigned depth;          /* open elements, the stream root included */
    roost_xml_t *stanza;     /* depth-2 element under construction */
    roost_xml_t *cur;        /* innermost open element of stanza */
    roost_buf_t text;        /* character data not yet added to cur */

    /* Byte accounting, in offsets of the peer's stream since the last
     * reset: fed is everything handed to expat, mark the end of the last
     * event we saw, stanza_start where the current stanza's start tag
     * began. expat's own byte index plus base is such an offset (a re-primed
     * parser saw the replayed header first, so base can differ from 0). */
    unsigned long long fed;
    unsigned long long mark;
    unsigned long long stanza_start;
    long long base;

    char *hdr;               /* the stream's start tag as received, for re-priming */
    size_t hdr_len;

    char *keep;              /* input not yet given to expat while paused */
    size_t keep_len;

    unsigned in_parse : 1;   /* inside XML_Parse/XML_ResumeParser */
    unsigned stopping : 1;   /* pause requested during this parse call */
    unsigned paused : 1;
    unsigned failed : 1;     /* on_error ran */
    unsigned closed : 1;     /* on_close ran */
    const char *limit;       /* the limit behind the error, if one was */
    unsigned priming : 1;    /* replaying hdr into a fresh parser: no callbacks */
    unsigned parked : 1;     /* idle with a parser, on the park list */
    roost_xmlstream_t *park_prev, *park_next;
};

/* Idle streams still holding a parser, oldest first. Process-wide: a node
 * is one single-threaded loop (DESIGN §8). */
static roost_xmlstream_t *park_head, *park_tail;
static size_t park_n, park_max = ROOST_XMLSTREAM_PARK_DEFAULT;

static void unpark(roost_xmlstream_t *s)
{
    if (!s->parked)
        return;
    if (s->park_prev)
        s->park_prev->park_next = s->park_next;
    else
        park_head = s->park_next;
    if (s->park_next)
        s->park_next->park_prev = s->park_prev;
    else
        park_tail = s->park_prev;
    s->park_prev = s->park_next = NULL;
    s->parked = 0;
    park_n--;
}

/* expat's byte index of the current event as a stream offset, or -1. */
static long long cur_index(const roost_xmlstream_t *s)
{
    XML_Index idx = XML_GetCurrentByteIndex(s->p);

    return idx < 0 ? -1 : (long long)idx + s->base;
}

static void fail(roost_xmlstream_t *s, const char *cond, const char *text)
{
    if (s->failed)
        return;
    s->failed = 1;
    /* Aborting (not suspending) makes expat unwind without more events
     * worth reporting; the handlers also check failed for the few that
     * still arrive. */
    if (s->in_parse)
        XML_StopParser(s->p, XML_FALSE);
    if (s->cb.on_error)
        s->cb.on_error(s->data, cond, text);
}

/* A policy-violation for a configured limit (roost_xmlstream_limit). */
static void fail_limit(roost_xmlstream_t *s, const char *limit, const char *text)
{
    if (!s->failed)
        s->limit = limit;
    fail(s, "policy-violation", text);
}

static int dead(const roost_xmlstream_t *s)
{
    return s->failed || s->closed;
}

/* Records that expat has reported everything up to the end of the current
 * event; what lies beyond is buffered inside expat and bounded separately. */
static void note_event(roost_xmlstream_t *s)
{
    long long idx = cur_index(s);
    int n = XML_GetCurrentByteCount(s->p);
    unsigned long long end;

    if (idx < 0)
        return;
    end = (unsigned long long)idx + (n > 0 ? (unsigned long long)n : 0);
    if (end > s->mark)
        s->mark = end;
}

/* Splits expat's "uri<sep>local" into a malloc'd ns ("" when unqualified)
 * and a pointer to the local part inside full. NULL on ENOMEM. */
static char *split_name(const char *full, const char **local)
{
    const char *sep = strchr(full, NS_SEP);
    char *ns;
    size_t n;

    if (sep == NULL) {
        *local = full;
        return strdup("");
    }
    n = (size_t)(sep - full);
    ns = malloc(n + 1);
    if (ns == NULL)
        return NULL;
    memcpy(ns, full, n);
    ns[n] = '\0';
    *local = sep + 1;
    return ns;
}

/* Builds an element with its attributes; attributes without a namespace
 * get ns NULL as roost_xml_attr_t expects. NULL on ENOMEM. */
static roost_xml_t *build_element(const char *name, const char **atts)
{
    const char *local;
    char *ns = split_name(name, &local);
    roost_xml_t *el;
    size_t i;

    if (ns == NULL)
        return NULL;
    el = roost_xml_new(local, ns);
    free(ns);
    if (el == NULL)
        return NULL;
    for (i = 0; atts[i]; i += 2) {
        char *ans = split_name(atts[i], &local);
        int rc;

        if (ans == NULL)
            goto fail_el;
        rc = roost_xml_set_attr_ns(el, *ans ? ans : NULL, local, atts[i + 1]);
        free(ans);
        if (rc < 0)
            goto fail_el;
    }
    return el;

fail_el:
    roost_xml_free(el);
    return NULL;
}

static int flush_text(roost_xmlstream_t *s)
{
    int rc = 0;

    if (s->text.len > 0 && s->cur)
        rc = roost_xml_add_text(s->cur, s->text.data, s->text.len);
    roost_buf_reset(&s->text);
    return rc;
}

static void drop_stanza(roost_xmlstream_t *s)
{
    roost_xml_free(s->stanza);
    s->stanza = s->cur = NULL;
    roost_buf_free(&s->text);
}

/* Copies the raw start tag of the stream root out of expat's buffer (the
 * whole token is there while its handler runs). Without context bytes in
 * this expat build the copy is skipped, and the parser is then never
 * released. */
static void save_header(roost_xmlstream_t *s)
{
    int off = 0, size = 0, n = XML_GetCurrentByteCount(s->p);
    const char *ctx = XML_GetInputContext(s->p, &off, &size);

    free(s->hdr);
    s->hdr = NULL;
    s->hdr_len = 0;
    if (ctx == NULL || n <= 0 || off < 0 || off + n > size || n > HEADER_MAX)
        return;
    s->hdr = malloc((size_t)n);
    if (s->hdr == NULL)
        return;
    memcpy(s->hdr, ctx + off, (size_t)n);
    s->hdr_len = (size_t)n;
}

static void open_stream(roost_xmlstream_t *s, const char *name, const char **atts)
{
    roost_xml_t *hdr;

    if (s->priming)
        return;              /* the replayed header; reported the first time */
    if (s->mark > HEADER_MAX) {
        fail_limit(s, "stanza_size", "stream header too large");
        return;
    }
    hdr = build_element(name, atts);
    if (hdr == NULL) {
        fail(s, "internal-server-error", "out of memory");
        return;
    }
    if (strcmp(hdr->ns, ROOST_NS_STREAMS) != 0)
        fail(s, "invalid-namespace", "stream element not in the streams namespace");
    else if (strcmp(hdr->name, "stream") != 0)
        fail(s, "bad-format", "root element is not <stream:stream>");
    else {
        save_header(s);
        if (s->cb.on_open)
            s->cb.on_open(s->data, hdr);
    }
    /* Borrowed by on_open only; an idle connection need not keep it. */
    roost_xml_free(hdr);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    roost_xmlstream_t *s = ud;
    roost_xml_t *el;
    unsigned nattrs = 0;

    if (dead(s))
        return;
    note_event(s);
    while (atts[2 * nattrs])
        nattrs++;
    if (nattrs > s->lim.max_attrs) {
        fail_limit(s, "attrs", "too many attributes");
        return;
    }
    s->depth++;
    if (s->depth == 1) {
        open_stream(s, name, atts);
        return;
    }
    if (s->depth - 1 > s->lim.max_depth) {
        fail_limit(s, "depth", "stanza nested too deeply");
        return;
    }
    if (s->depth == 2)
        s->stanza_start = (unsigned long long)cur_index(s);
    else if (flush_text(s) < 0)
        goto fail_mem;
    el = build_element(name, atts);
    if (el == NULL)
        goto fail_mem;
    if (s->depth == 2) {
        /* Top-level elements must carry a namespace: jabber:client from the
         * stream's default, or an explicit one (sasl, tls, sm, ...). */
        if (el->ns[0] == '\0') {
            roost_xml_free(el);
            fail(s, "invalid-namespace", "top-level element without namespace");
            return;
        }
        /* A second stream open inside the stream would otherwise be
         * buffered as a stanza that never ends: refuse it at once. */
        if (strcmp(el->name, "stream") == 0 && strcmp(el->ns, ROOST_NS_STREAMS) == 0) {
            roost_xml_free(el);
            fail(s, "unsupported-stanza-type", "a stream is already open");
            return;
        }
        s->stanza = s->cur = el;
    } else {
        roost_xml_append(s->cur, el);
        s->cur = el;
    }
    return;

fail_mem:
    fail(s, "internal-server-error", "out of memory");
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    roost_xmlstream_t *s = ud;
    roost_xml_t *st;

    (void)name;
    if (dead(s))
        return;
    note_event(s);
    if (s->depth == 1) {
        s->depth = 0;
        s->closed = 1;
        /* Nothing may follow </stream:stream>; stop instead of reporting
         * trailing bytes as errors after the stream already ended. */
        XML_StopParser(s->p, XML_FALSE);
        if (s->cb.on_close)
            s->cb.on_close(s->data);
        return;
    }
    if (flush_text(s) < 0) {
        fail(s, "internal-server-error", "out of memory");
        return;
    }
    s->depth--;
    if (s->depth > 1) {
        s->cur = s->cur->parent;
        return;
    }
    /* The periodic check in feed() sees a stanza only between chunks; one
     * that starts and ends inside a chunk is measured here. mark rather
     * than this event's end: for <x .../> expat reports the end event with
     * no bytes, and the start tag already moved mark past it. */
    if (s->mark - s->stanza_start > s->lim.max_stanza) {
        fail_limit(s, "stanza_size", "stanza too large");
        return;
    }
    st = s->stanza;
    s->stanza = s->cur = NULL;
    roost_buf_free(&s->text);
    if (s->cb.on_stanza)
        s->cb.on_stanza(s->data, st);
    else
        roost_xml_free(st);
}

static int is_space(const char *d, int len)
{
    int i;

    for (i = 0; i < len; i++)
        if (d[i] != ' ' && d[i] != '\t' && d[i] != '\r' && d[i] != '\n')
            return 0;
    return 1;
}

static void XMLCALL on_text(void *ud, const XML_Char *d, int len)
{
    roost_xmlstream_t *s = ud;

    if (dead(s))
        return;
    note_event(s);
    if (s->depth < 2) {
        /* Whitespace between stanzas is a keepalive (RFC 6120 §4.6.1). */
        if (!is_space(d, len))
            fail(s, "bad-format", "text outside a stanza");
        return;
    }
    /* Buffered rather than added per call: expat splits character data at
     * arbitrary points, and one text node per run keeps trees identical
     * however the input was chunked. */
    if (roost_buf_append(&s->text, d, (size_t)len) < 0)
        fail(s, "internal-server-error", "out of memory");
}

static void XMLCALL on_ns_decl(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
    roost_xmlstream_t *s = ud;

    if (dead(s))
        return;
    /* Declarations are reported before their element's start: depth 0
     * means they belong to the stream root, whose default namespace is the
     * content namespace of the whole stream. */
    if (s->depth == 0 && prefix == NULL &&
        (uri == NULL || strcmp(uri, ROOST_NS_CLIENT) != 0))
        fail(s, "invalid-namespace", "stream default namespace is not jabber:client");
}

static void XMLCALL on_xml_decl(void *ud, const XML_Char *version,
                                const XML_Char *encoding, int standalone)
{
    roost_xmlstream_t *s = ud;

    (void)version;
    (void)standalone;
    if (dead(s))
        return;
    if (encoding && strcasecmp(encoding, "UTF-8") != 0)
        fail(s, "unsupported-encoding", "only UTF-8 is supported");
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    fail(ud, "restricted-xml", "DTDs are not allowed");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param,
                              const XML_Char *value, int value_len, const XML_Char *base,
                              const XML_Char *sysid, const XML_Char *pubid,
                              const XML_Char *notation)
{
    (void)name;
    (void)is_param;
    (void)value;
    (void)value_len;
    (void)base;
    (void)sysid;
    (void)pubid;
    (void)notation;
    fail(ud, "restricted-xml", "entity declarations are not allowed");
}

static void XMLCALL on_comment(void *ud, const XML_Char *d)
{
    (void)d;
    fail(ud, "restricted-xml", "comments are not allowed");
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *d)
{
    (void)target;
    (void)d;
    fail(ud, "restricted-xml", "processing instructions are not allowed");
}

static void XMLCALL on_skipped(void *ud, const XML_Char *name, int is_param)
{
    (void)name;
    (void)is_param;
    fail(ud, "restricted-xml", "entity references are not allowed");
}

static XML_Parser parser_new(roost_xmlstream_t *s)
{
    /* Forcing UTF-8 makes expat ignore other encodings a peer declares; the
     * declaration handler turns such declarations into a stream error. */
    XML_Parser p = XML_ParserCreateNS("UTF-8", NS_SEP);

    if (p == NULL)
        return NULL;
    XML_SetUserData(p, s);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    XML_SetStartNamespaceDeclHandler(p, on_ns_decl);
    XML_SetXmlDeclHandler(p, on_xml_decl);
    XML_SetStartDoctypeDeclHandler(p, on_doctype);
    XML_SetEntityDeclHandler(p, on_entity);
    XML_SetCommentHandler(p, on_comment);
    XML_SetProcessingInstructionHandler(p, on_pi);
    XML_SetSkippedEntityHandler(p, on_skipped);
    XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
    /* Reparse deferral (expat 2.6, backported by Debian) may hold back a
     * complete stanza until more bytes arrive; a client waiting for our
     * answer would never send them. Older builds have no deferral. */
#ifdef ROOST_HAVE_REPARSE_DEFERRAL
    XML_SetReparseDeferralEnabled(p, XML_FALSE);
#endif
    return p;
}

static void set_limits(roost_xmlstream_t *s, const roost_xmlstream_limits_t *l)
{
    s->lim.max_stanza = l && l->max_stanza ? l->max_stanza : DEF_MAX_STANZA;
    s->lim.max_depth = l && l->max_depth ? l->max_depth : DEF_MAX_DEPTH;
    s->lim.max_attrs = l && l->max_attrs ? l->max_attrs : DEF_MAX_ATTRS;
    s->lim.chunk = l && l->chunk ? l->chunk : DEF_CHUNK;
    /* Expat takes an int length. */
    if (s->lim.chunk > 1u << 20)
        s->lim.chunk = 1u << 20;
}

roost_xmlstream_t *roost_xmlstream_new(const roost_xmlstream_limits_t *limits,
                                       const roost_xmlstream_cb_t *cb, void *data)
{
    roost_xmlstream_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    set_limits(s, limits);
    if (cb)
        s->cb = *cb;
    s->data = data;
    s->p = parser_new(s);
    if (s->p == NULL)
        goto fail_s;
    return s;

fail_s:
    free(s);
    return NULL;
}

void roost_xmlstream_free(roost_xmlstream_t *s)
{
    if (s == NULL)
        return;
    unpark(s);
    if (s->p != NULL)
        XML_ParserFree(s->p);
    drop_stanza(s);
    free(s->keep);
    free(s->hdr);
    free(s);
}

const char *roost_xmlstream_limit(const roost_xmlstream_t *s)
{
    return s->limit;
}

static void release(roost_xmlstream_t *s)
{
    unpark(s);
    XML_ParserFree(s->p);
    s->p = NULL;
    roost_buf_free(&s->text);
}

/* Between stanzas, with every byte fed so far reported by an event (so
 * expat holds no partial token) and nothing kept or paused, the parser
 * carries no state but the header's namespace context: park it, and free
 * the parsers of the streams idle longest beyond park_max. */
static void maybe_release(roost_xmlstream_t *s)
{
    if (s->p == NULL || s->hdr == NULL || s->in_parse || s->paused || dead(s) ||
        s->depth != 1 || s->stanza != NULL || s->keep != NULL || s->mark != s->fed)
        return;
    if (!s->parked) {
        s->parked = 1;
        s->park_prev = park_tail;
        s->park_next = NULL;
        if (park_tail)
            park_tail->park_next = s;
        else
            park_head = s;
        park_tail = s;
        park_n++;
    }
    while (park_n > park_max && park_head != NULL)
        release(park_head);
}

void roost_xmlstream_set_park_max(size_t n)
{
    park_max = n;
    while (park_n > park_max && park_head != NULL)
        release(park_head);
}

/* A fresh parser in the state the released one had: the stream's start tag
 * replayed (without callbacks), so prefixes and the default namespace
 * resolve as before, and offsets continue where they were. */
static int reprime(roost_xmlstream_t *s)
{
    enum XML_Status st;
    XML_Parser p = parser_new(s);

    if (p == NULL)
        return ROOST_ENOMEM;
    s->p = p;
    s->depth = 0;
    s->base = (long long)s->fed - (long long)s->hdr_len;
    s->priming = 1;
    s->in_parse = 1;
    st = XML_Parse(p, s->hdr, (int)s->hdr_len, XML_FALSE);
    s->in_parse = 0;
    s->priming = 0;
    if (st != XML_STATUS_OK || s->depth != 1 || s->failed)
        return ROOST_EPROTO;
    return 0;
}

int roost_xmlstream_released(const roost_xmlstream_t *s)
{
    return s->p == NULL;
}

void roost_xmlstream_set_limits(roost_xmlstream_t *s, const roost_xmlstream_limits_t *limits)
{
    set_limits(s, limits);
}

/* Bounds what expat holds without having reported it: a start tag is only
 * reported once complete, so a huge attribute would otherwise be buffered
 * whole before any handler could refuse it. */
static void check_limits(roost_xmlstream_t *s)
{
    if (dead(s))
        return;
    if (s->depth == 0) {
        if (s->fed > HEADER_MAX)
            fail_limit(s, "stanza_size", "stream header too large");
    } else if (s->depth == 1) {
        if (s->fed - s->mark > s->lim.max_stanza)
            fail_limit(s, "stanza_size", "stanza too large");
    } else if (s->fed - s->stanza_start > s->lim.max_stanza) {
        fail_limit(s, "stanza_size", "stanza too large");
    }
}

/* Maps the outcome of one XML_Parse/XML_ResumeParser call. */
static int parse_status(roost_xmlstream_t *s, enum XML_Status st)
{
    enum XML_Error code;

    if (st == XML_STATUS_SUSPENDED) {
        s->paused = 1;
        s->stopping = 0;
        return ROOST_EAGAIN;
    }
    if (st == XML_STATUS_OK) {
        check_limits(s);
        return s->failed ? ROOST_EPROTO : 0;
    }
    if (s->failed)
        return ROOST_EPROTO;
    if (s->closed)
        return 0;
    code = XML_GetErrorCode(s->p);
    if (code == XML_ERROR_NO_MEMORY)
        fail(s, "internal-server-error", "out of memory");
    else if (code == XML_ERROR_UNKNOWN_ENCODING || code == XML_ERROR_INCORRECT_ENCODING)
        fail(s, "unsupported-encoding", XML_ErrorString(code));
    else
        fail(s, "not-well-formed", XML_ErrorString(code));
    return ROOST_EPROTO;
}

/* Keeps the part of the caller's input expat has not seen yet; base is the
 * buffer rest lies in, which is our own keep buffer during a resume. */
static int keep_rest(roost_xmlstream_t *s, const char *base, const char *rest, size_t n)
{
    char *k;

    if (s->keep && base == s->keep) {
        memmove(s->keep, rest, n);
        s->keep_len = n;
        return 0;
    }
    free(s->keep);
    s->keep = NULL;
    s->keep_len = 0;
    if (n == 0)
        return 0;
    k = malloc(n);
    if (k == NULL)
        return ROOST_ENOMEM;
    memcpy(k, rest, n);
    s->keep = k;
    s->keep_len = n;
    return 0;
}

/* Expat lets a UTF-16 byte order mark (or "<" followed by a NUL) override
 * the UTF-8 we force, and such a document would then parse. Every UTF-16
 * or UTF-32 stream has a NUL or a BOM byte among its first two bytes, and
 * no UTF-8 stream does. */
static int head_ok(const roost_xmlstream_t *s, const char *buf, size_t n)
{
    unsigned long long pos;
    unsigned char c;
    size_t k;

    for (k = 0, pos = s->fed; pos < 2 && k < n; k++, pos++) {
        c = (unsigned char)buf[k];
        if (c == 0 || (pos == 0 && (c == 0xfe || c == 0xff)))
            return 0;
    }
    return 1;
}

/* Gives buf to expat in bounded chunks until it is used up, the stream
 * pauses, fails or ends. */
static int run(roost_xmlstream_t *s, const char *buf, size_t len)
{
    size_t off = 0, n;
    enum XML_Status st;
    int rc;

    unpark(s);               /* busy again: its parser is no longer idle */
    if (s->p == NULL && len > 0 && (rc = reprime(s)) < 0) {
        fail(s, "internal-server-error", rc == ROOST_ENOMEM ? "out of memory"
                                                            : "stream state lost");
        return ROOST_EPROTO;
    }
    while (off < len) {
        n = len - off;
        if (n > s->lim.chunk)
            n = s->lim.chunk;
        if (!head_ok(s, buf + off, n)) {
            fail(s, "unsupported-encoding", "only UTF-8 is supported");
            return ROOST_EPROTO;
        }
        s->in_parse = 1;
        st = XML_Parse(s->p, buf + off, (int)n, XML_FALSE);
        s->in_parse = 0;
        s->fed += n;
        off += n;
        rc = parse_status(s, st);
        if (rc == ROOST_EAGAIN) {
            /* Expat keeps the unparsed rest of this chunk itself and
             * continues with it in XML_ResumeParser; we keep the rest. */
            if (keep_rest(s, buf, buf + off, len - off) < 0) {
                fail(s, "internal-server-error", "out of memory");
                return ROOST_EPROTO;
            }
            return ROOST_EAGAIN;
        }
        if (rc < 0)
            return rc;
        if (s->closed)
            return 0;
    }
    return 0;
}

int roost_xmlstream_feed(roost_xmlstream_t *s, const char *buf, size_t len)
{
    int rc;

    if (s->failed)
        return ROOST_EPROTO;
    if (s->paused)
        return ROOST_EINVAL;
    if (s->closed)
        return 0;
    rc = run(s, buf, len);
    if (rc == 0)
        maybe_release(s);
    return rc;
}

void roost_xmlstream_pause(roost_xmlstream_t *s)
{
    /* XML_StopParser outside a handler would corrupt expat's state. */
    if (!s->in_parse || s->stopping || dead(s))
        return;
    if (XML_StopParser(s->p, XML_TRUE) == XML_STATUS_OK)
        s->stopping = 1;
}

int roost_xmlstream_resume(roost_xmlstream_t *s)
{
    enum XML_Status st;
    int rc;

    if (s->failed)
        return ROOST_EPROTO;
    if (!s->paused)
        return 0;
    s->paused = 0;
    s->in_parse = 1;
    st = XML_ResumeParser(s->p);
    s->in_parse = 0;
    rc = parse_status(s, st);
    if (rc == 0 && s->keep && !s->closed)
        rc = run(s, s->keep, s->keep_len);
    if (rc != ROOST_EAGAIN) {
        free(s->keep);
        s->keep = NULL;
        s->keep_len = 0;
    }
    if (rc == 0)
        maybe_release(s);
    return rc;
}

int roost_xmlstream_paused(const roost_xmlstream_t *s)
{
    return s->paused;
}

int roost_xmlstream_reset(roost_xmlstream_t *s)
{
    /* A fresh parser rather than XML_ParserReset: it also drops expat's
     * input buffer, and bytes pipelined after STARTTLS must not survive. */
    XML_Parser p;

    if (s->in_parse)
        return ROOST_EINVAL;    /* expat is on the stack below us */
    p = parser_new(s);
    if (p == NULL)
        return ROOST_ENOMEM;
    unpark(s);
    if (s->p != NULL)
        XML_ParserFree(s->p);
    s->p = p;
    drop_stanza(s);
    free(s->keep);
    s->keep = NULL;
    s->keep_len = 0;
    free(s->hdr);
    s->hdr = NULL;
    s->hdr_len = 0;
    s->depth = 0;
    s->base = 0;
    s->fed = s->mark = s->stanza_start = 0;
    s->in_parse = s->stopping = s->paused = s->failed = s->closed = 0;
    s->limit = NULL;
    return 0;
}

/* Stored stanzas are parsed inside a synthetic stream header, which gives
 * them the namespace context they were serialized in. */
static void parsed_one(void *data, roost_xml_t *el)
{
    roost_xml_t **out = data;
    if (*out == NULL)
        *out = el;
    else
        roost_xml_free(el);
}

roost_xml_t *roost_xmlstream_parse_one(const uint8_t *bytes, size_t len)
{
    static const char hdr[] = "<stream:stream xmlns='jabber:client' "
                              "xmlns:stream='http://etherx.jabber.org/streams'>";
    static const roost_xmlstream_cb_t cb = { NULL, parsed_one, NULL, NULL };
    roost_xml_t *el = NULL;
    roost_xmlstream_t *xs = roost_xmlstream_new(NULL, &cb, &el);
    if (xs == NULL)
        return NULL;
    if (roost_xmlstream_feed(xs, hdr, sizeof(hdr) - 1) == 0)
        roost_xmlstream_feed(xs, (const char *)bytes, len);
    roost_xmlstream_free(xs);
    return el;
}
