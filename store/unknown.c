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
    for (; u->n < n; u->n++) {
        ProtobufCMessageUnknownField *d = &u->f[u->n];
        *d = f[u->n];
        /* malloc(0) may answer NULL, which would read as out of memory. */
        if (!(d->data = malloc(f[u->n].len ? f[u->n].len : 1)))
            goto fail_u;
        memcpy(d->data, f[u->n].data, f[u->n].len);
    }
    *out = u;
    return 0;
fail_u:
    roost_unknown_free(u);
    return ROOST_ENOMEM;
}
