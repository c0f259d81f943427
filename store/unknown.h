/* For store modules only (the store/ .c files): the private deep copy of
 * protobuf-c unknown fields that the session and roster item codecs keep
 * behind their `void *unknown`, so a newer writer's fields survive. */
#ifndef ROOST_STORE_UNKNOWN_H
#define ROOST_STORE_UNKNOWN_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct {
    size_t n;
    ProtobufCMessageUnknownField *f;
} roost_unknown_t;

/* *out = a deep copy of f[0..n) without fields numbered 0 (invalid), or
 * NULL when n is 0. 0 or ROOST_ENOMEM. */
int roost_unknown_dup(roost_unknown_t **out, const ProtobufCMessageUnknownField *f, size_t n);

/* Frees u and its copies; NULL is a no-op. */
void roost_unknown_free(roost_unknown_t *u);

#endif
