/* SASL server mechanisms PLAIN, SCRAM-SHA-1 and SCRAM-SHA-256 and their
 * channel-binding -PLUS variants (RFC 4616, RFC 5802, RFC 7677, RFC 5929,
 * RFC 9266) as a pure state machine: fed the base64 text of
 * <auth/> and <response/>, it asks for the user's stored credentials once,
 * and answers with a challenge, success (with additional data) or a
 * <failure/> condition. No I/O, no Redis. */
#ifndef ROOST_SASL_H
#define ROOST_SASL_H

#include <stddef.h>
#include "store/cred.h"

typedef enum {
    ROOST_SASL_PLAIN = 1,
    ROOST_SASL_SCRAM_SHA1,
    ROOST_SASL_SCRAM_SHA256,
    ROOST_SASL_SCRAM_SHA1_PLUS,
    ROOST_SASL_SCRAM_SHA256_PLUS,
} roost_sasl_mech_t;

/* Bounds for roost_sasl_set_channel_binding. */
#define ROOST_SASL_CB_TYPES 4
#define ROOST_SASL_CB_NAME_MAX 32
#define ROOST_SASL_CB_DATA_MAX 64

typedef enum {
    ROOST_SASL_NEED_CRED,   /* call roost_sasl_set_cred(username, hash) */
    ROOST_SASL_CHALLENGE,   /* send <challenge>out</challenge>, await response */
    ROOST_SASL_SUCCESS,     /* send <success>out</success> (out may be "") */
    ROOST_SASL_FAILURE,     /* send <failure><condition/></failure> */
} roost_sasl_result_t;

typedef struct roost_sasl_s roost_sasl_t;

/* Mechanism by its SASL name ("PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256",
 * "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"); 0 when unknown. */
roost_sasl_mech_t roost_sasl_mech_by_name(const char *name);
const char *roost_sasl_mech_name(roost_sasl_mech_t mech);

/* domain: the stream's domain, for the authzid check. NULL on ENOMEM. */
roost_sasl_t *roost_sasl_new(roost_sasl_mech_t mech, const char *domain);
void roost_sasl_free(roost_sasl_t *s);

/* Makes channel-binding type (an RFC 5056 name such as "tls-exporter" or
 * "tls-server-end-point") with its data (copied; at most
 * ROOST_SASL_CB_DATA_MAX bytes) available to this exchange. Call before
 * roost_sasl_start, once per type the connection offers. A -PLUS mechanism
 * succeeds only with one of these types, and c= must carry its data. Once
 * any type is set the server counts as supporting channel binding, so a
 * client's "y" flag (it could bind but believes we cannot) means the -PLUS
 * offer was stripped, and fails the exchange (RFC 5802 §6). 0, or
 * ROOST_EINVAL (bad name or size, too many types, after start). */
int roost_sasl_set_channel_binding(roost_sasl_t *s, const char *type, const void *data,
                                   size_t len);

/* XEP-0474 (SASL SCRAM Downgrade Protection): the mechanisms this stream
 * advertised, and the channel-binding types its XEP-0440 feature listed
 * (cbs NULL or n_cbs 0: no such feature). A SCRAM exchange then adds
 * "h=" with roost_sasl_ssdp_hash of them to its server-first-message, so
 * a client can tell whether someone stripped entries from what it saw;
 * the attribute is covered by the SCRAM proof. Call before
 * roost_sasl_start; copied. 0, or ROOST_EINVAL (more than
 * ROOST_SASL_SSDP_MAX names, a name longer than ROOST_SASL_CB_NAME_MAX,
 * after start). Ignored for PLAIN. */
#define ROOST_SASL_SSDP_MAX 16
int roost_sasl_set_advertised(roost_sasl_t *s, const char *const *mechs, size_t n_mechs,
                              const char *const *cbs, size_t n_cbs);

/* The XEP-0474 hash: the names of mechs sorted by octet and joined by
 * 0x1E; if cbs is given (n_cbs > 0), 0x1F and the sorted cbs joined by
 * 0x1E; hashed with hash, base64-encoded into out (cap bytes, NUL added).
 * Returns the length, or ROOST_EINVAL (bounds as above, or cap too
 * small). */
int roost_sasl_ssdp_hash(roost_hash_t hash, const char *const *mechs, size_t n_mechs,
                         const char *const *cbs, size_t n_cbs, char *out, size_t cap);

/* Starts with the base64 initial response from <auth/> (b64 may be NULL or
 * "" when absent; "=" means an empty response). Returns NEED_CRED on a
 * well-formed message, CHALLENGE (PLAIN/SCRAM without initial response:
 * empty challenge) or FAILURE. */
roost_sasl_result_t roost_sasl_start(roost_sasl_t *s, const char *b64);

/* Continues after NEED_CRED with the user's credentials for
 * roost_sasl_cred_hash(s); cred NULL when the user does not exist (the
 * exchange then still proceeds for SCRAM with a fake salt, to avoid user
 * enumeration, and fails at the proof). Returns CHALLENGE, SUCCESS or
 * FAILURE. */
roost_sasl_result_t roost_sasl_set_cred(roost_sasl_t *s, const roost_scram_cred_t *cred);

/* Feeds the base64 text of a <response/>. */
roost_sasl_result_t roost_sasl_step(roost_sasl_t *s, const char *b64);

/* The prepared localpart (nodeprep'd authcid) once NEED_CRED was returned. */
const char *roost_sasl_username(const roost_sasl_t *s);
/* Which stored hash the mechanism needs (PLAIN: SHA-256). */
roost_hash_t roost_sasl_cred_hash(const roost_sasl_t *s);
/* Base64 payload for CHALLENGE/SUCCESS (NUL-terminated, maybe ""). */
const char *roost_sasl_out(const roost_sasl_t *s);
/* RFC 6120 §6.5 condition for FAILURE: "not-authorized",
 * "malformed-request", "incorrect-encoding", "invalid-authzid",
 * "invalid-mechanism", "aborted", "temporary-auth-failure", ... */
const char *roost_sasl_condition(const roost_sasl_t *s);

#endif
