/* Fuzz target for JID parsing (store/jid.h): any input either fails cleanly
 * or parses to a JID whose full string parses again to an equal JID with
 * the same strings (preparation is idempotent). */
#include <string.h>

#include "store/jid.h"
#include "tests/fuzz/fuzz.h"

static void check_shape(const roost_jid_t *j)
{
    FUZZ_CHECK(j->domain != NULL && j->domain[0] != '\0');
    FUZZ_CHECK(j->bare != NULL && j->full != NULL);
    FUZZ_CHECK(strlen(j->domain) <= ROOST_JID_PART_MAX);
    FUZZ_CHECK(j->local == NULL || (j->local[0] && strlen(j->local) <= ROOST_JID_PART_MAX));
    FUZZ_CHECK(j->resource == NULL ||
               (j->resource[0] && strlen(j->resource) <= ROOST_JID_PART_MAX));
    FUZZ_CHECK(j->local == NULL || strpbrk(j->local, "@/\"&'/:<>") == NULL);
    FUZZ_CHECK(strchr(j->domain, '@') == NULL && strchr(j->domain, '/') == NULL);
    /* full starts with bare; the resource follows a '/'. */
    FUZZ_CHECK(strncmp(j->full, j->bare, strlen(j->bare)) == 0);
    if (j->resource != NULL)
        FUZZ_CHECK(j->full[strlen(j->bare)] == '/' &&
                   strcmp(j->full + strlen(j->bare) + 1, j->resource) == 0);
    else
        FUZZ_CHECK(strcmp(j->full, j->bare) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    roost_jid_t a, b, c, m;

    if (roost_jid_parse(&a, (const char *)data, size) != 0) {
        FUZZ_CHECK(a.domain == NULL && a.full == NULL);
        return 0;
    }
    check_shape(&a);

    FUZZ_CHECK(roost_jid_parse(&b, a.full, strlen(a.full)) == 0);
    check_shape(&b);
    FUZZ_CHECK(roost_jid_equal(&a, &b) && roost_jid_bare_equal(&a, &b));
    FUZZ_CHECK(strcmp(a.full, b.full) == 0 && strcmp(a.bare, b.bare) == 0);

    /* The bare string is a JID of its own with the same bare part. */
    FUZZ_CHECK(roost_jid_parse(&c, a.bare, strlen(a.bare)) == 0);
    FUZZ_CHECK(roost_jid_bare_equal(&a, &c) && c.resource == NULL);

    /* Building from the prepared parts gives the same JID. */
    FUZZ_CHECK(roost_jid_make(&m, a.local, a.domain, a.resource) == 0);
    FUZZ_CHECK(roost_jid_equal(&a, &m) && strcmp(a.full, m.full) == 0);

    roost_jid_clear(&m);
    FUZZ_CHECK(roost_jid_copy(&m, &a) == 0 && roost_jid_equal(&a, &m));

    roost_jid_clear(&m);
    roost_jid_clear(&c);
    roost_jid_clear(&b);
    roost_jid_clear(&a);
    return 0;
}
