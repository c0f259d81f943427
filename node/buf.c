/* A growable byte buffer: stanza serialization and reply building append
 * here, and the result is handed to the write queue with roost_buf_steal. */
#include "node/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/error.h"

/* Makes room for n more bytes plus a terminating NUL. Grows geometrically
 * so a serializer appending many small pieces stays linear. */
static int reserve(roost_buf_t *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (n > SIZE_MAX - 1 - b->len)
        return ROOST_ENOMEM;
    need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL)
        return ROOST_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int roost_buf_append(roost_buf_t *b, const void *p, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    rc = reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int roost_buf_puts(roost_buf_t *b, const char *s)
{
    return roost_buf_append(b, s, strlen(s));
}

int roost_buf_printf(roost_buf_t *b, const char *fmt, ...)
{
    va_list ap, ap2;
    int n, rc;

    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return ROOST_EINVAL;
    }
    rc = reserve(b, (size_t)n);
    if (rc < 0) {
        va_end(ap2);
        return rc;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

/* Escapes all five special characters so the result is safe both as text
 * and inside a single- or double-quoted attribute value. Runs of plain
 * bytes are copied in one append. On failure the buffer is rolled back so
 * the "unchanged on failure" rule holds for this call too. */
int roost_buf_escape(roost_buf_t *b, const char *s, size_t n)
{
    size_t start = b->len, i, run = 0;
    const char *rep;
    int rc;

    for (i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default: continue;
        }
        rc = roost_buf_append(b, s + run, i - run);
        if (rc == 0)
            rc = roost_buf_puts(b, rep);
        if (rc < 0)
            goto fail_rollback;
        run = i + 1;
    }
    rc = roost_buf_append(b, s + run, n - run);
    if (rc < 0)
        goto fail_rollback;
    return 0;

fail_rollback:
    b->len = start;
    if (b->data)
        b->data[b->len] = '\0';
    return rc;
}

char *roost_buf_steal(roost_buf_t *b, size_t *len)
{
    char *p = b->data;

    /* Callers treat NULL as ENOMEM, so an empty buffer yields "". */
    if (p == NULL) {
        p = malloc(1);
        if (p == NULL)
            return NULL;
        p[0] = '\0';
    }
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void roost_buf_reset(roost_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void roost_buf_free(roost_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
