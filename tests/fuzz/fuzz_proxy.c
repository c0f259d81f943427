/* Fuzz target for the PROXY protocol parser (node/proxy.h): any input is
 * refused, needs more, or yields a header length within the input and the
 * bound, and the answer for every shorter prefix is consistent with it (a
 * header is complete at exactly one length). */
#include <string.h>
#include <sys/socket.h>

#include "node/proxy.h"
#include "store/error.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    roost_proxy_addr_t a, b;
    int rc, prc;
    size_t i;

    memset(&a, 0, sizeof(a));
    rc = roost_proxy_parse(data, size, &a);
    FUZZ_CHECK(rc == 0 || rc == ROOST_EPROTO || rc == ROOST_ELIMIT || rc > 0);
    /* "Need more" only while a header could still fit the bound. */
    if (rc == 0)
        FUZZ_CHECK(size < ROOST_PROXY_MAX);
    if (rc > 0) {
        FUZZ_CHECK((size_t)rc <= size && rc <= ROOST_PROXY_MAX);
        FUZZ_CHECK(a.version == 1 || a.version == 2);
        FUZZ_CHECK(a.version != 1 || rc <= ROOST_PROXY_V1_MAX);
        FUZZ_CHECK(!a.proxied || a.family == AF_INET || a.family == AF_INET6);
        /* The header alone parses to the same result, and the bytes after
         * it never change it. */
        memset(&b, 0, sizeof(b));
        FUZZ_CHECK(roost_proxy_parse(data, (size_t)rc, &b) == rc);
        FUZZ_CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    }
    /* Prefixes: before the end of a complete header, only "need more";
     * of refused input, never a header. A sample of prefixes only, to keep
     * the target fast. */
    for (i = 0; i < size && i < 128; i += 1 + i / 8) {
        prc = roost_proxy_parse(data, i, &b);
        if (rc > 0 && i < (size_t)rc)
            FUZZ_CHECK(prc == 0);
        if (rc <= 0)
            FUZZ_CHECK(prc <= 0);
        if (rc == 0)
            FUZZ_CHECK(prc == 0);
        /* A refusal is final: more bytes never make it a header. */
        if (prc < 0)
            FUZZ_CHECK(rc < 0);
    }
    return 0;
}
