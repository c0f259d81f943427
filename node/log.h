/* Levelled logging: one logfmt or JSON line per event on stderr, with the
 * connection id when there is one. Never log a password. */
#ifndef ROOST_LOG_H
#define ROOST_LOG_H

#include <stdint.h>

typedef enum {
    ROOST_LOG_DEBUG = 0,
    ROOST_LOG_INFO,
    ROOST_LOG_WARN,
    ROOST_LOG_ERROR,
} roost_log_level_t;

typedef enum {
    ROOST_LOG_LOGFMT = 0,   /* ts=... level=... conn=... msg="..." */
    ROOST_LOG_JSON,         /* {"ts":"...","level":"...","conn":N,"msg":"..."} */
} roost_log_format_t;

void roost_log_set_format(roost_log_format_t format);
roost_log_format_t roost_log_get_format(void);

void roost_log_set_level(roost_log_level_t level);
roost_log_level_t roost_log_get_level(void);
/* "debug", "info", "warn", "error" -> level; -1 when unknown. */
int roost_log_level_parse(const char *name);

/* Writes: ts=... level=... conn=<id when nonzero> msg="<formatted>", or
 * the same fields as one JSON object per line. */
void roost_log(roost_log_level_t level, uint64_t conn_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ROOST_DEBUG(c, ...) do { if (roost_log_get_level() <= ROOST_LOG_DEBUG) roost_log(ROOST_LOG_DEBUG, (c), __VA_ARGS__); } while (0)
#define ROOST_INFO(c, ...)  roost_log(ROOST_LOG_INFO, (c), __VA_ARGS__)
#define ROOST_WARN(c, ...)  roost_log(ROOST_LOG_WARN, (c), __VA_ARGS__)
#define ROOST_ERROR(c, ...) roost_log(ROOST_LOG_ERROR, (c), __VA_ARGS__)

#endif
