/* The XML stream parser: expat in namespace mode, fed bytes, no I/O. Emits
 * the stream header, each complete top-level stanza as a tree, the stream
 * end, and at most one stream error. Refuses DTDs, entity declarations,
 * comments and processing instructions (restricted-xml), bounds stanza size,
 * depth and attribute count (policy-violation), feeds expat in bounded
 * chunks, and can pause between stanzas so the caller can finish async work
 * before the next stanza is handled. */
#ifndef ROOST_XMLSTREAM_H
#define ROOST_XMLSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include "node/xml.h"

typedef struct roost_xmlstream_s roost_xmlstream_t;

typedef struct {
    size_t max_stanza;     /* bytes of one top-level stanza (default 262144) */
    unsigned max_depth;    /* element depth inside a stanza (default 32) */
    unsigned max_attrs;    /* attributes per element (default 32) */
    size_t chunk;          /* bytes given to expat per call (default 4096) */
} roost_xmlstream_limits_t;

typedef struct {
    /* <stream:stream> opened; header is the element with its attributes and
     * no children (borrowed). Called once per (re)start. */
    void (*on_open)(void *data, const roost_xml_t *header);
    /* A complete top-level element; ownership passes to the callee. */
    void (*on_stanza)(void *data, roost_xml_t *stanza);
    /* </stream:stream> seen. */
    void (*on_close)(void *data);
    /* A stream error condition ("not-well-formed", "restricted-xml",
     * "policy-violation", "invalid-namespace", "bad-format", ...) with an
     * optional text. After it no further callback runs until reset. */
    void (*on_error)(void *data, const char *condition, const char *text);
} roost_xmlstream_cb_t;

/* limits may be NULL for defaults. NULL on ENOMEM. */
roost_xmlstream_t *roost_xmlstream_new(const roost_xmlstream_limits_t *limits,
                                       const roost_xmlstream_cb_t *cb, void *data);
void roost_xmlstream_free(roost_xmlstream_t *s);

/* Feeds len bytes. Returns 0 when all were consumed; ROOST_EAGAIN when a
 * callback paused the stream (the unconsumed rest is kept internally and
 * handled by roost_xmlstream_resume; do not feed until then); ROOST_EPROTO
 * once a stream error was reported. Callbacks run inside this call. */
int roost_xmlstream_feed(roost_xmlstream_t *s, const char *buf, size_t len);

/* From inside on_stanza/on_open: stop after the current callback returns. */
void roost_xmlstream_pause(roost_xmlstream_t *s);
/* Continues a paused stream with the kept input; same returns as feed. Not
 * to be called from inside a callback of the same stream. */
int roost_xmlstream_resume(roost_xmlstream_t *s);
/* 1 while paused. */
int roost_xmlstream_paused(const roost_xmlstream_t *s);

/* Stream restart (after SASL success/STARTTLS): a fresh parser expecting a
 * new stream header; kept input is discarded. Not from inside a callback:
 * call roost_xmlstream_pause there, then reset after feed returns. */
int roost_xmlstream_reset(roost_xmlstream_t *s);

/* After on_error: which limit caused it ("stanza_size", "depth", "attrs"),
 * or NULL when the error was not a limit. Cleared by reset. */
const char *roost_xmlstream_limit(const roost_xmlstream_t *s);

/* 1 while the expat parser is released (idle between stanzas); the next
 * feed creates a new one. For tests and memory accounting. */
int roost_xmlstream_released(const roost_xmlstream_t *s);

/* How many idle streams of the process may keep their parser (the most
 * recently active ones); the others are released. 0 releases at once. */
#define ROOST_XMLSTREAM_PARK_DEFAULT 256
void roost_xmlstream_set_park_max(size_t n);

/* Changes the limits (e.g. larger stanzas once authenticated). */
void roost_xmlstream_set_limits(roost_xmlstream_t *s, const roost_xmlstream_limits_t *limits);

/* Parses one serialized stanza (as the router or a record stores it, in
 * the jabber:client default namespace) back into a tree; NULL when it is
 * not exactly well-formed. The caller frees the tree. */
roost_xml_t *roost_xmlstream_parse_one(const uint8_t *bytes, size_t len);

#endif
