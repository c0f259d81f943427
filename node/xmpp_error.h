/* XMPP errors as (type, condition, text) values, turned into XML in one
 * place: stanza errors (RFC 6120 §8.3) and stream errors (§4.9). */
#ifndef ROOST_XMPP_ERROR_H
#define ROOST_XMPP_ERROR_H

#include "node/xml.h"
#include "node/buf.h"

#define ROOST_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define ROOST_NS_STREAM_ERR "urn:ietf:params:xml:ns:xmpp-streams"

typedef struct {
    const char *type;       /* "cancel", "modify", "auth", "wait", "continue";
                               NULL: the condition's usual type */
    const char *condition;  /* "service-unavailable", "bad-request", ... */
    const char *text;       /* optional human-readable text */
} roost_xmpp_error_t;

/* The usual error type of a defined stanza condition ("cancel" when
 * unknown). */
const char *roost_xmpp_error_default_type(const char *condition);

/* Builds the error reply to stanza: same element name, to/from swapped
 * (to = the original from, from = the original to or from_default when the
 * original had no to), the same id, type="error", the original children
 * kept for iq-less types dropped for iq, and an <error/> child. Returns NULL
 * when stanza is itself an error (never answer an error with an error) or on
 * ENOMEM. */
roost_xml_t *roost_xmpp_error_reply(const roost_xml_t *stanza, const char *from_default,
                                    const roost_xmpp_error_t *err);

/* Appends <stream:error><condition xmlns=.../>[<text>]</stream:error>. */
int roost_xmpp_stream_error(roost_buf_t *b, const char *condition, const char *text);

#endif
