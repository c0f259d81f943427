/* For store modules only (the store/ .c files): decoding the replies and
 * building the argument vectors that several of them share, so each bound
 * and each "skip what we could not have written" rule lives in one place. */
#ifndef ROOST_STORE_REPLY_H
#define ROOST_STORE_REPLY_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "store/record.h"

/* A call's status from the store's status and reply: status when negative,
 * ROOST_EREDIS for a missing or error reply, else 0. */
int roost_reply_rc(int status, const redisReply *r);

/* roost_reply_rc for a script that answers an integer, negative when the
 * set it guards is full: ROOST_ELIMIT for that, ROOST_EREDIS for anything
 * but an integer. */
int roost_reply_limit(int status, const redisReply *r);

/* 1 when e is a bulk string with no embedded NUL, so e->str is the whole
 * value as a C string. */
int roost_reply_cstr(const redisReply *e);

/* 1 when e could be a JID we wrote: a non-empty C string of at most
 * ROOST_SESS_JID_MAX bytes. */
int roost_reply_jid(const redisReply *e);

/* The elements of array reply r that pass ok, in order, into a calloc'd
 * *out (NULL when r is empty) of *n; the strings are borrowed from r. Errors:
 * ROOST_EREDIS (not an array), ROOST_ELIMIT (more than max elements),
 * ROOST_ENOMEM; *out is NULL and *n 0 then. */
int roost_reply_strs(const redisReply *r, size_t max, int (*ok)(const redisReply *e),
                     const char ***out, size_t *n);

/* Decodes the field/value pairs of an HGETALL of roost:sess:{bare} (resource
 * -> record) into recs, which has room for h->elements / 2; a pair that is
 * malformed is skipped, not fatal, so the other sessions still route.
 * Returns how many were decoded; the caller clears them. */
size_t roost_reply_sessions(const redisReply *h, roost_session_t *recs);

/* al[i] = strlen(a[i]) for the n arguments of a command or script. */
void roost_reply_arglens(const char *const *a, size_t *al, int n);

#endif
