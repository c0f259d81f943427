/* A growable byte buffer for serializing stanzas and building replies. */
#ifndef ROOST_BUF_H
#define ROOST_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data;     /* NUL-terminated when len < cap; may be NULL when empty */
    size_t len;
    size_t cap;
} roost_buf_t;

#define ROOST_BUF_INIT { NULL, 0, 0 }

/* Appends; 0 or ROOST_ENOMEM (the buffer is unchanged on failure). */
int roost_buf_append(roost_buf_t *b, const void *p, size_t n);
int roost_buf_puts(roost_buf_t *b, const char *s);
int roost_buf_printf(roost_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s with XML escaping of & < > " ' (text and attribute safe). */
int roost_buf_escape(roost_buf_t *b, const char *s, size_t n);
/* Takes the buffer's memory (caller frees) and resets b. */
char *roost_buf_steal(roost_buf_t *b, size_t *len);
void roost_buf_reset(roost_buf_t *b);   /* len = 0, keeps memory */
void roost_buf_free(roost_buf_t *b);    /* frees memory, zeroes */

#endif
