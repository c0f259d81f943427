/* Blocking Command (XEP-0191): block list management iqs with pushes to
 * interested resources, and the checks the router makes before delivering
 * a stanza between two users. The list lives in Redis (store/blocklist.h). */
#ifndef ROOST_BLOCKING_H
#define ROOST_BLOCKING_H

#include <stddef.h>

#include "node/server.h"
#include "node/xml.h"
#include "store/jid.h"

#define ROOST_NS_BLOCKING "urn:xmpp:blocking"
#define ROOST_NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"

/* 1 when iq is a blocklist get, block or unblock request. */
int roost_blocking_is_request(const roost_xml_t *iq);

/* Handles it for the bound local client (takes ownership of iq); 0 or
 * ROOST_EAGAIN (then roost_c2s_done(from) runs exactly once). */
int roost_blocking_handle_iq(roost_server_t *srv, roost_c2s_t *from, roost_xml_t *iq);

/* Pure: 1 when jid matches one of list[0..n) by the XEP-0191 / RFC 6121
 * §2 (privacy) JID matching rules: item full JID = exact; bare = that bare
 * JID or any of its full JIDs; domain = the domain or any JID in it;
 * domain/resource = exactly that. */
int roost_blocking_match(const char *const *list, size_t n, const roost_jid_t *jid);

typedef enum {
    ROOST_BLOCK_NONE = 0,
    ROOST_BLOCK_BY_SENDER,     /* the sender blocked the recipient */
    ROOST_BLOCK_BY_RECIPIENT,  /* the recipient blocked the sender */
} roost_block_verdict_t;

/* One Redis round trip: does sender's list block recipient, or
 * recipient's list block sender? Both are full or bare JIDs of users on
 * hosted domains. cb runs exactly once, never on the caller's stack;
 * status < 0 on store errors (the router then delivers: a broken store
 * must not make messages vanish). */
typedef void (*roost_blocking_check_cb)(int status, roost_block_verdict_t verdict, void *data);
/* Returns 0, or a negative ROOST_E* (bad argument, e.g. a JID without a
 * local part; store not connected), and then cb never runs. */
int roost_blocking_check(roost_server_t *srv, const roost_jid_t *sender,
                         const roost_jid_t *recipient, roost_blocking_check_cb cb, void *data);

/* The error a sender gets for a message or iq get/set to a JID on its own
 * block list (XEP-0191 §3.5): not-acceptable (cancel) with <blocked
 * xmlns='urn:xmpp:blocking:errors'/> in <error/>. New tree (caller frees)
 * or NULL when stanza is an error itself or on ENOMEM. */
roost_xml_t *roost_blocking_error_reply(const roost_xml_t *stanza);

#endif
