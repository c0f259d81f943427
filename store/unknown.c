/* Deep copies of protobuf-c unknown fields (store/unknown.h). */
#include <stdlib.h>
#include <string.h>

#include "store/error.h"
#include "store/unknown.h"

void roost_unknown_free(roost_unknown_t *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++)
        free(u->f[i].data);
    free(u->f);
    free(u);
}

int roost_unknown_dup(roost_unknown_t **out, const ProtobufCMessageUnknownField *f, size_t n)
{
    *out = NULL;
    if (n == 0)
        return 0;
    roost_unknown_t *u = calloc(1, sizeof(*u));
    if (!u)
        return ROOST_ENOMEM;
    if (!(u->f = calloc(n, sizeof(*u->f))))
        goto fail_u;
    for (size_t i = 0; i < n; i++) {
        /* Field number 0 is invalid. protobuf-c accepts it in a multi-byte
         * tag but then packs a one-byte tag it refuses to unpack, so
         * keeping it would turn a readable record unreadable on rewrite. */
        if (f[i].tag == 0)
            continue;
        ProtobufCMessageUnknownField *d = &u->f[u->n];
        *d = f[i];
        /* malloc(0) may answer NULL, which would read as out of memory. */
        if (!(d->data = malloc(f[i].len ? f[i].len : 1)))
            goto fail_u;
        memcpy(d->data, f[i].data, f[i].len);
        u->n++;
    }
    *out = u;
    return 0;
fail_u:
    roost_unknown_free(u);
    return ROOST_ENOMEM;
}
