/* JIDs (RFC 7622): parsing, stringprep (nodeprep/nameprep/resourceprep via
 * libidn), comparison. Pure; no I/O. */
#ifndef ROOST_JID_H
#define ROOST_JID_H

#include <stddef.h>

#define ROOST_JID_PART_MAX 1023   /* bytes per part after preparation */

/* A prepared JID. All strings are NUL-terminated, owned by the struct and
 * freed by roost_jid_clear(). local and resource are NULL when absent.
 * bare is "local@domain" (or "domain"); full adds "/resource" when present. */
typedef struct {
    char *local;
    char *domain;
    char *resource;
    char *bare;
    char *full;
} roost_jid_t;

/* Parses and prepares s[0..len). On success fills *out (caller must
 * roost_jid_clear it) and returns 0; on any invalid input (empty part, a
 * part over 1023 bytes, prohibited code points, bad UTF-8, embedded NUL)
 * returns ROOST_EINVAL and leaves *out zeroed. */
int roost_jid_parse(roost_jid_t *out, const char *s, size_t len);

/* Builds a JID from already-separate parts (local/resource may be NULL),
 * applying the same preparation and limits as roost_jid_parse. */
int roost_jid_make(roost_jid_t *out, const char *local, const char *domain,
                   const char *resource);

/* Deep copy; 0 or ROOST_ENOMEM. */
int roost_jid_copy(roost_jid_t *dst, const roost_jid_t *src);

/* Frees the parts and zeroes *jid; a zeroed struct is fine to clear. */
void roost_jid_clear(roost_jid_t *jid);

/* Prepares one part into a newly malloc'd string (*out); ROOST_EINVAL on a
 * part that fails its profile or exceeds ROOST_JID_PART_MAX. */
int roost_jid_nodeprep(const char *in, size_t len, char **out);
int roost_jid_nameprep(const char *in, size_t len, char **out);
int roost_jid_resourceprep(const char *in, size_t len, char **out);

/* 1 when equal after preparation (all parts / bare part only), else 0. */
int roost_jid_equal(const roost_jid_t *a, const roost_jid_t *b);
int roost_jid_bare_equal(const roost_jid_t *a, const roost_jid_t *b);

#endif
