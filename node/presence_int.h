/* Internal to the presence module: what node/presence.c (own, broadcast,
 * directed presence, probes) and node/presence_sub.c (the subscription
 * handshake) share. Not for other modules. */
#ifndef ROOST_PRESENCE_INT_H
#define ROOST_PRESENCE_INT_H

#include "node/presence.h"
#include "node/subscription.h"

/* Answers st (borrowed) to c with an error of condition cond (text may be
 * NULL); from_default is the 'from' when st has no 'to'. */
void roost_presence_reply_error(roost_c2s_t *c, const roost_xml_t *st, const char *from_default,
                                const char *cond, const char *text);

/* Logs a warning naming what when rc is not 0. */
void roost_presence_log_rc(int rc, const char *what);

/* <presence type=type from=from to=to/> (type and to may be NULL); NULL
 * when out of memory. The caller frees it. */
roost_xml_t *roost_presence_mk_presence(const char *type, const char *from, const char *to);

/* A subscription stanza (event ev) from the bound local client from to *to
 * (RFC 6121 §3). Takes ownership of st. 0 when finished; ROOST_EAGAIN when
 * it continues and will call roost_c2s_done(from) exactly once. */
int roost_presence_subscription_from_client(roost_server_t *srv, roost_c2s_t *from,
                                            roost_xml_t *st, const roost_jid_t *to,
                                            roost_subev_t ev);

#endif
