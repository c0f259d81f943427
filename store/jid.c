/* JID parsing and preparation: RFC 7622 splitting and limits, with libidn's
 * stringprep profiles (nodeprep, nameprep, resourceprep) doing the Unicode
 * work, tightened where RFC 7622's PRECIS profiles are stricter. */
#include "store/jid.h"

#include <arpa/inet.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>
#include <wctype.h>

#include "store/error.h"

/* local@domain/resource at their limits; anything longer cannot be valid
 * whatever preparation does, so it is refused before any work is done. One
 * extra byte allows the trailing dot of a fully qualified domain. */
#define JID_INPUT_MAX (3 * ROOST_JID_PART_MAX + 2 + 1)

enum { PROFILE_NODE, PROFILE_NAME, PROFILE_RESOURCE };

/* Decodes one code point of strict UTF-8 (no overlongs, surrogates or
 * values past U+10FFFF) at s[*i], advancing *i; -1 when malformed. */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c = s[*i];
    uint32_t cp, min;
    size_t n, k;

    if (c < 0x80) {
        (*i)++;
        return c;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 1; cp = c & 0x1f; min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2; cp = c & 0x0f; min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3; cp = c & 0x07; min = 0x10000;
    } else {
        return -1;
    }
    if (len - *i <= n)
        return -1;
    for (k = 1; k <= n; k++) {
        if ((s[*i + k] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[*i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *i += n + 1;
    return (int32_t)cp;
}

static int utf8_valid(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len)
        if (utf8_next((const unsigned char *)s, len, &i) < 0)
            return 0;
    return 1;
}

/* glibc's C.UTF-8 carries Unicode letter/digit classes; a private locale
 * object avoids touching the process locale. NULL if unavailable, in which
 * case the symbol check below is skipped and stringprep alone decides. */
static locale_t utf8_locale(void)
{
    static int tried;
    static locale_t loc;

    if (!tried) {
        tried = 1;
        loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    return loc;
}

/* Combining marks that glibc does not class as alphanumeric but that
 * identifiers may carry after a base letter. */
static int is_generic_mark(uint32_t cp)
{
    return (cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x1ab0 && cp <= 0x1aff)
        || (cp >= 0x1dc0 && cp <= 0x1dff) || (cp >= 0x20d0 && cp <= 0x20ff)
        || (cp >= 0xfe20 && cp <= 0xfe2f);
}

/* RFC 7622 builds the localpart on the PRECIS IdentifierClass, which,
 * unlike nodeprep, refuses non-ASCII symbols and punctuation ("♚") and
 * characters with compatibility decompositions ("Ⅳ"); fullwidth and
 * halfwidth forms are exempt since the profile maps them instead. The
 * compatibility test runs on the raw input, the class test on the
 * prepared output (where e + U+0301 has become é). */
static int identifier_ok(const char *raw, size_t rawlen, const char *prep)
{
    const unsigned char *s = (const unsigned char *)raw;
    locale_t loc = utf8_locale();
    size_t i = 0, plen = strlen(prep);
    int32_t cp;

    while (i < rawlen) {
        uint32_t one[2];
        uint32_t *norm;
        int same;

        cp = utf8_next(s, rawlen, &i);
        if (cp < 0)
            return 0;
        if (cp < 0x80 || (cp >= 0xff00 && cp <= 0xffef))
            continue;
        one[0] = (uint32_t)cp;
        one[1] = 0;
        norm = stringprep_ucs4_nfkc_normalize(one, 1);
        if (norm == NULL)
            return 0;
        same = norm[0] == (uint32_t)cp && norm[1] == 0;
        free(norm);
        if (!same)
            return 0;
    }
    if (loc == (locale_t)0)
        return 1;
    s = (const unsigned char *)prep;
    i = 0;
    while (i < plen) {
        cp = utf8_next(s, plen, &i);
        if (cp < 0)
            return 0;
        if (cp < 0x80 || is_generic_mark((uint32_t)cp))
            continue;
        if (!iswalnum_l((wint_t)cp, loc))
            return 0;
    }
    return 1;
}

/* The domain in preferred name syntax: ASCII restricted to letters, digits
 * and hyphens, no empty labels, no label starting or ending with a hyphen,
 * ASCII labels at most 63 bytes; non-ASCII must be letters, digits or
 * marks (IDNA2008 U-labels never hold symbols). */
static int hostname_ok(const char *d)
{
    const unsigned char *s = (const unsigned char *)d;
    size_t len = strlen(d), i = 0, label = 0, start;
    locale_t loc = utf8_locale();
    int ascii = 1;
    int32_t cp;

    while (i <= len) {
        start = i;
        if (i == len || s[i] == '.') {
            if (label == 0)
                return 0;
            if (s[i - 1] == '-' || (ascii && label > 63))
                return 0;
            if (i == len)
                break;
            i++;
            label = 0;
            ascii = 1;
            continue;
        }
        cp = utf8_next(s, len, &i);
        if (cp < 0)
            return 0;
        if (cp < 0x80) {
            if (!((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')
                  || (cp >= '0' && cp <= '9') || cp == '-'))
                return 0;
            if (cp == '-' && label == 0)
                return 0;
        } else {
            ascii = 0;
            if (loc != (locale_t)0 && !is_generic_mark((uint32_t)cp)
                && !iswalnum_l((wint_t)cp, loc))
                return 0;
        }
        label += i - start;
    }
    return 1;
}

/* Runs one stringprep profile over in[0..len) into a new string. The
 * buffer holds the input (stringprep works in place) and at least
 * ROOST_JID_PART_MAX + 1 bytes: libidn reports a too-small buffer only
 * when the final output does not fit, and any output that long is over
 * the part limit anyway, so no retry with a bigger buffer is needed. */
/* For plain ASCII the three profiles are simple: no mapping table but
 * case folding (nodeprep, nameprep) has an ASCII entry, NFKC leaves ASCII
 * alone, and only space and controls (plus nodeprep's eight extra
 * characters) are prohibited. So letters, digits and "-._" (and, for a
 * resource, any printable ASCII but space) give the same result as libidn
 * without its UCS-4 round trip; everything else goes the slow way. Returns
 * 1 and sets *out, 0 to use libidn, or ROOST_ENOMEM. */
static int prep_ascii(int profile, const char *in, size_t len, char **out)
{
    char *buf;

    if (len > ROOST_JID_PART_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int ok = profile == PROFILE_RESOURCE
                     ? c > 0x20 && c < 0x7f
                     : (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
        if (!ok)
            return 0;
    }
    buf = malloc(len + 1);
    if (buf == NULL)
        return ROOST_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        buf[i] = profile != PROFILE_RESOURCE && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    buf[len] = '\0';
    *out = buf;
    return 1;
}

static int prep(int profile, const char *in, size_t len, char **out)
{
    size_t cap = (len > ROOST_JID_PART_MAX ? len : ROOST_JID_PART_MAX) + 1;
    char *buf;
    int rc;

    *out = NULL;
    if (len == 0 || len > JID_INPUT_MAX || memchr(in, '\0', len) || !utf8_valid(in, len))
        return ROOST_EINVAL;
    rc = prep_ascii(profile, in, len, out);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    buf = malloc(cap);
    if (buf == NULL)
        return ROOST_ENOMEM;
    memcpy(buf, in, len);
    buf[len] = '\0';
    switch (profile) {
    case PROFILE_NODE: rc = stringprep_xmpp_nodeprep(buf, cap); break;
    case PROFILE_NAME: rc = stringprep_nameprep(buf, cap); break;
    default: rc = stringprep_xmpp_resourceprep(buf, cap); break;
    }
    if (rc == STRINGPREP_MALLOC_ERROR) {
        rc = ROOST_ENOMEM;
        goto fail_buf;
    }
    /* Mapping can remove every character (e.g. only soft hyphens). */
    if (rc != STRINGPREP_OK || buf[0] == '\0' || strlen(buf) > ROOST_JID_PART_MAX) {
        rc = ROOST_EINVAL;
        goto fail_buf;
    }
    /* The work buffer is ROOST_JID_PART_MAX + 1 bytes; a session keeps
     * several prepared parts for its lifetime, so hand back a copy of the
     * size it needs (a failed shrink keeps the big one). */
    {
        size_t n = strlen(buf) + 1;
        char *small = n < cap ? malloc(n) : NULL;

        if (small != NULL) {
            memcpy(small, buf, n);
            free(buf);
            buf = small;
        }
    }
    *out = buf;
    return 0;

fail_buf:
    free(buf);
    return rc;
}

int roost_jid_nodeprep(const char *in, size_t len, char **out)
{
    int rc = prep(PROFILE_NODE, in, len, out);

    if (rc == 0 && !identifier_ok(in, len, *out)) {
        free(*out);
        *out = NULL;
        rc = ROOST_EINVAL;
    }
    return rc;
}

int roost_jid_resourceprep(const char *in, size_t len, char **out)
{
    /* RFC 7622 §3.5 lists "juliet@example.com/ foo" as invalid. Checked
     * on the prepared form: mapping can remove what preceded the space
     * (U+034F, U+00AD, ...), and a prepared resource must parse again. */
    int rc = prep(PROFILE_RESOURCE, in, len, out);

    if (rc == 0 && (*out)[0] == ' ') {
        free(*out);
        *out = NULL;
        rc = ROOST_EINVAL;
    }
    return rc;
}

/* An [IPv6] literal, written back in canonical lower-case form so equal
 * addresses compare equal as strings. */
static int ipv6_literal(const char *in, size_t len, char **out)
{
    char addr[64], text[INET6_ADDRSTRLEN];
    unsigned char bin[16];

    *out = NULL;
    if (len < 3 || in[len - 1] != ']' || len - 2 >= sizeof(addr))
        return ROOST_EINVAL;
    memcpy(addr, in + 1, len - 2);
    addr[len - 2] = '\0';
    if (inet_pton(AF_INET6, addr, bin) != 1 || !inet_ntop(AF_INET6, bin, text, sizeof(text)))
        return ROOST_EINVAL;
    *out = malloc(strlen(text) + 3);
    if (*out == NULL)
        return ROOST_ENOMEM;
    (*out)[0] = '[';
    strcpy(*out + 1, text);
    strcat(*out, "]");
    return 0;
}

int roost_jid_nameprep(const char *in, size_t len, char **out)
{
    int rc;

    *out = NULL;
    /* A fully qualified "example.com." names the same host. */
    if (len > 1 && in[len - 1] == '.')
        len--;
    if (len > 0 && in[0] == '[')
        return ipv6_literal(in, len, out);
    rc = prep(PROFILE_NAME, in, len, out);
    if (rc < 0)
        return rc;
    /* Nameprep case-folds; IPv4 literals are plain digits and dots and so
     * pass the hostname rule unchanged. */
    if (!hostname_ok(*out)) {
        free(*out);
        *out = NULL;
        return ROOST_EINVAL;
    }
    return 0;
}

/* Fills bare and full from the prepared parts. */
static int compose(roost_jid_t *j)
{
    size_t ll = j->local ? strlen(j->local) : 0, dl = strlen(j->domain);
    size_t rl = j->resource ? strlen(j->resource) : 0;
    char *p;

    j->bare = malloc(ll + 1 + dl + 1);
    j->full = malloc(ll + 1 + dl + 1 + rl + 1);
    if (j->bare == NULL || j->full == NULL)
        return ROOST_ENOMEM;
    p = j->bare;
    if (j->local) {
        memcpy(p, j->local, ll);
        p += ll;
        *p++ = '@';
    }
    memcpy(p, j->domain, dl + 1);
    p = j->full;
    memcpy(p, j->bare, strlen(j->bare));
    p += strlen(j->bare);
    if (j->resource) {
        *p++ = '/';
        memcpy(p, j->resource, rl);
        p += rl;
    }
    *p = '\0';
    return 0;
}

/* Prepares the three raw parts (local/resource NULL when absent). */
static int build(roost_jid_t *out, const char *l, size_t ll, const char *d, size_t dl,
                 const char *r, size_t rl)
{
    roost_jid_t j = { NULL, NULL, NULL, NULL, NULL };
    int rc;

    rc = l ? roost_jid_nodeprep(l, ll, &j.local) : 0;
    if (rc == 0)
        rc = roost_jid_nameprep(d, dl, &j.domain);
    if (rc == 0 && r)
        rc = roost_jid_resourceprep(r, rl, &j.resource);
    if (rc == 0)
        rc = compose(&j);
    if (rc < 0) {
        roost_jid_clear(&j);
        return rc;
    }
    *out = j;
    return 0;
}

int roost_jid_parse(roost_jid_t *out, const char *s, size_t len)
{
    const char *slash, *at, *end = s + len;

    memset(out, 0, sizeof(*out));
    if (s == NULL || len == 0 || len > JID_INPUT_MAX)
        return ROOST_EINVAL;
    if (memchr(s, '\0', len) || !utf8_valid(s, len))
        return ROOST_EINVAL;
    /* The first '/' starts the resource, which may hold '@' and '/'; the
     * localpart ends at the first '@' before it. */
    slash = memchr(s, '/', len);
    at = memchr(s, '@', (size_t)((slash ? slash : end) - s));
    return build(out,
                 at ? s : NULL, at ? (size_t)(at - s) : 0,
                 at ? at + 1 : s, (size_t)((slash ? slash : end) - (at ? at + 1 : s)),
                 slash ? slash + 1 : NULL, slash ? (size_t)(end - slash - 1) : 0);
}

int roost_jid_make(roost_jid_t *out, const char *local, const char *domain,
                   const char *resource)
{
    memset(out, 0, sizeof(*out));
    if (domain == NULL)
        return ROOST_EINVAL;
    return build(out, local, local ? strlen(local) : 0, domain, strlen(domain),
                 resource, resource ? strlen(resource) : 0);
}

static int dup_opt(char **dst, const char *src)
{
    if (src == NULL) {
        *dst = NULL;
        return 0;
    }
    *dst = strdup(src);
    return *dst ? 0 : ROOST_ENOMEM;
}

int roost_jid_copy(roost_jid_t *dst, const roost_jid_t *src)
{
    roost_jid_t j;

    if (dup_opt(&j.local, src->local) < 0)
        goto fail_local;
    if (dup_opt(&j.domain, src->domain) < 0)
        goto fail_domain;
    if (dup_opt(&j.resource, src->resource) < 0)
        goto fail_resource;
    if (dup_opt(&j.bare, src->bare) < 0)
        goto fail_bare;
    if (dup_opt(&j.full, src->full) < 0)
        goto fail_full;
    *dst = j;
    return 0;

fail_full:
    free(j.bare);
fail_bare:
    free(j.resource);
fail_resource:
    free(j.domain);
fail_domain:
    free(j.local);
fail_local:
    memset(dst, 0, sizeof(*dst));
    return ROOST_ENOMEM;
}

void roost_jid_clear(roost_jid_t *jid)
{
    if (jid == NULL)
        return;
    free(jid->local);
    free(jid->domain);
    free(jid->resource);
    free(jid->bare);
    free(jid->full);
    memset(jid, 0, sizeof(*jid));
}

static int str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

int roost_jid_equal(const roost_jid_t *a, const roost_jid_t *b)
{
    return str_eq(a->local, b->local) && str_eq(a->domain, b->domain)
        && str_eq(a->resource, b->resource);
}

int roost_jid_bare_equal(const roost_jid_t *a, const roost_jid_t *b)
{
    return str_eq(a->local, b->local) && str_eq(a->domain, b->domain);
}
