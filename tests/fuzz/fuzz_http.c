/* Fuzz target for the admin request reader (node/http.h) and the answer
 * built from it: any input, fed whole or in two pieces, ends in "more",
 * a request with a bounded path, or a refusal with an HTTP error status,
 * and both feedings agree. */
#include <string.h>

#include "node/admin.h"
#include "node/http.h"
#include "tests/fuzz/fuzz.h"

#define REQ_MAX 8192

static int run(const uint8_t *data, size_t size, size_t split, int *status, char *path)
{
    roost_http_req_t *r = roost_http_req_new(REQ_MAX);
    FUZZ_CHECK(r != NULL);
    int rc = roost_http_req_feed(r, (const char *)data, split);
    if (rc == 0)
        rc = roost_http_req_feed(r, (const char *)data + split, size - split);
    *status = roost_http_req_error_status(r);
    path[0] = '\0';
    if (rc == 1) {
        const char *p = roost_http_req_path(r);
        FUZZ_CHECK(strlen(p) <= ROOST_HTTP_PATH_MAX);
        strcpy(path, p);
        roost_admin_http_health_t h = { 1, 1, 1, 0, 0 };
        roost_buf_t b = ROOST_BUF_INIT;
        FUZZ_CHECK(roost_admin_http_respond(roost_http_req_method(r), p, &h, &b) == 0);
        FUZZ_CHECK(b.len > 12 && memcmp(b.data, "HTTP/1.1 ", 9) == 0);
        roost_buf_free(&b);
    } else if (rc < 0) {
        FUZZ_CHECK(*status >= 400 && *status <= 505);
    } else {
        FUZZ_CHECK(rc == 0 && *status == 0);
    }
    roost_http_req_free(r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char p1[ROOST_HTTP_PATH_MAX + 1], p2[ROOST_HTTP_PATH_MAX + 1];
    int s1, s2;
    int a = run(data, size, size, &s1, p1);
    int b = run(data, size, size / 2, &s2, p2);
    FUZZ_CHECK(a == b && s1 == s2 && strcmp(p1, p2) == 0);
    return 0;
}
