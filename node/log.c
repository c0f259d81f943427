/* Levelled logging to stderr, as logfmt or JSON lines. Each event is
 * formatted into one stack buffer and written with a single write(), so
 * concurrent processes sharing stderr (SO_REUSEPORT siblings, the test
 * runner) never interleave lines. */
#include "node/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* PIPE_BUF on Linux: a write of at most this size to a pipe is atomic. */
#define LINE_MAX_BYTES 4096
/* Room kept at the end of the line for `..."` plus the newline. */
#define TAIL_RESERVE 6

static roost_log_level_t current_level = ROOST_LOG_INFO;
static roost_log_format_t current_format = ROOST_LOG_LOGFMT;

static const char *const level_names[] = {
    [ROOST_LOG_DEBUG] = "debug",
    [ROOST_LOG_INFO] = "info",
    [ROOST_LOG_WARN] = "warn",
    [ROOST_LOG_ERROR] = "error",
};

void roost_log_set_level(roost_log_level_t level)
{
    if (level < ROOST_LOG_DEBUG || level > ROOST_LOG_ERROR)
        return;
    current_level = level;
}

roost_log_level_t roost_log_get_level(void)
{
    return current_level;
}

void roost_log_set_format(roost_log_format_t format)
{
    if (format == ROOST_LOG_LOGFMT || format == ROOST_LOG_JSON)
        current_format = format;
}

roost_log_format_t roost_log_get_format(void)
{
    return current_format;
}

int roost_log_level_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0)
            return (int)i;
    }
    /* Operators coming from syslog or Prosody write "warning". */
    if (strcasecmp(name, "warning") == 0)
        return ROOST_LOG_WARN;
    return -1;
}

/* Appends the escaped form of msg to line[*pos..cap). Quotes, backslashes
 * and control bytes are escaped so that one event stays one line whatever
 * a peer managed to put into the message. Returns 1 if msg was cut short. */
static int append_escaped(char *line, size_t *pos, size_t cap, const char *msg)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos;

    for (const unsigned char *s = (const unsigned char *)msg; *s; s++) {
        char esc[4];
        size_t n = 0;

        switch (*s) {
        case '"':  esc[0] = '\\'; esc[1] = '"'; n = 2; break;
        case '\\': esc[0] = '\\'; esc[1] = '\\'; n = 2; break;
        case '\n': esc[0] = '\\'; esc[1] = 'n'; n = 2; break;
        case '\r': esc[0] = '\\'; esc[1] = 'r'; n = 2; break;
        case '\t': esc[0] = '\\'; esc[1] = 't'; n = 2; break;
        default:
            if (*s < 0x20 || *s == 0x7f) {
                esc[0] = '\\'; esc[1] = 'x';
                esc[2] = hex[*s >> 4]; esc[3] = hex[*s & 0xf];
                n = 4;
            } else {
                esc[0] = (char)*s;
                n = 1;
            }
        }
        if (p + n > cap) {
            *pos = p;
            return 1;
        }
        memcpy(line + p, esc, n);
        p += n;
    }
    *pos = p;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when the
 * bytes there are not one (bad lead, bad continuation, overlong, a
 * surrogate, beyond U+10FFFF). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min, cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2; min = 0x80; cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3; min = 0x800; cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4; min = 0x10000; cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)   /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Appends msg as the inside of a JSON string. A JSON line must stay valid
 * whatever a peer put into the message, so control bytes become \u00XX
 * and bytes that are not UTF-8 become U+FFFD. Returns 1 if cut short. */
static int append_json(char *line, size_t *pos, size_t cap, const char *msg)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos;

    for (const unsigned char *s = (const unsigned char *)msg; *s;) {
        char esc[8];
        const char *src = esc;
        size_t n = 0, adv = 1;

        switch (*s) {
        case '"':  memcpy(esc, "\\\"", 2); n = 2; break;
        case '\\': memcpy(esc, "\\\\", 2); n = 2; break;
        case '\n': memcpy(esc, "\\n", 2); n = 2; break;
        case '\r': memcpy(esc, "\\r", 2); n = 2; break;
        case '\t': memcpy(esc, "\\t", 2); n = 2; break;
        default:
            if (*s < 0x20 || *s == 0x7f) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[*s >> 4];
                esc[5] = hex[*s & 0xf];
                n = 6;
            } else if ((adv = utf8_len(s)) == 0) {
                memcpy(esc, "\\ufffd", 6);
                n = 6;
                adv = 1;
            } else {
                src = (const char *)s;
                n = adv;
            }
        }
        if (p + n > cap) {
            *pos = p;
            return 1;
        }
        memcpy(line + p, src, n);
        p += n;
        s += adv;
    }
    *pos = p;
    return 0;
}

void roost_log(roost_log_level_t level, uint64_t conn_id, const char *fmt, ...)
{
    char line[LINE_MAX_BYTES];
    char msg[LINE_MAX_BYTES];
    struct timespec ts;
    struct tm tm;
    size_t pos;
    int n, truncated;
    int saved_errno = errno;   /* callers often log and then inspect errno */
    va_list ap;

    if (level < current_level || level > ROOST_LOG_ERROR)
        return;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        msg[0] = '\0';
        n = 0;
    }
    truncated = (size_t)n >= sizeof(msg);

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (current_format == ROOST_LOG_JSON) {
        char conn[40] = "";
        if (conn_id != 0)
            snprintf(conn, sizeof(conn), ",\"conn\":%" PRIu64, conn_id);
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\"%s,"
                     "\"msg\":\"", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], conn);
        if (n < 0 || (size_t)n >= sizeof(line) - TAIL_RESERVE)
            goto out;
        pos = (size_t)n;
        if (append_json(line, &pos, sizeof(line) - TAIL_RESERVE, msg))
            truncated = 1;
        if (truncated) {
            memcpy(line + pos, "...", 3);
            pos += 3;
        }
        memcpy(line + pos, "\"}\n", 3);
        pos += 3;
        goto emit;
    }
    if (conn_id != 0)
        n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s conn=%" PRIu64 " msg=\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     level_names[level], conn_id);
    else
        n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     level_names[level]);
    if (n < 0 || (size_t)n >= sizeof(line) - TAIL_RESERVE)
        goto out;
    pos = (size_t)n;

    if (append_escaped(line, &pos, sizeof(line) - TAIL_RESERVE, msg))
        truncated = 1;
    if (truncated) {
        memcpy(line + pos, "...", 3);
        pos += 3;
    }
    line[pos++] = '"';
    line[pos++] = '\n';
emit:

    /* Logging must never fail the caller; a short write to a full pipe is
     * dropped rather than retried in pieces that could interleave. */
    while (write(STDERR_FILENO, line, pos) < 0 && errno == EINTR)
        ;
out:
    errno = saved_errno;
}
