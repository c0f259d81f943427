/* The admin HTTP layer without sockets: request reading (node/http.c) and
 * the endpoint answers (roost_admin_http_respond). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "node/admin.h"
#include "node/http.h"
#include "node/metrics.h"
#include "store/error.h"

static roost_http_req_t *fed(const char *text, size_t max, int *rc)
{
    roost_http_req_t *r = roost_http_req_new(max);
    ck_assert_ptr_nonnull(r);
    *rc = roost_http_req_feed(r, text, strlen(text));
    return r;
}

START_TEST(test_simple_get)
{
    int rc;
    roost_http_req_t *r = fed("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 8192, &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(roost_http_req_method(r), "GET");
    ck_assert_str_eq(roost_http_req_path(r), "/metrics");
    /* Done stays done; what follows is ignored. */
    ck_assert_int_eq(roost_http_req_feed(r, "GET / HTTP/1.1\r\n\r\n", 18), 1);
    roost_http_req_free(r);
    roost_http_req_free(NULL);
}
END_TEST

START_TEST(test_byte_by_byte_and_absolute_form)
{
    const char *text = "HEAD http://node:5280/readyz HTTP/1.0\r\n\r\n";
    roost_http_req_t *r = roost_http_req_new(8192);
    int rc = 0;
    for (size_t i = 0; text[i] != '\0'; i++) {
        ck_assert_int_eq(rc, 0);
        rc = roost_http_req_feed(r, text + i, 1);
    }
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(roost_http_req_method(r), "HEAD");
    ck_assert_str_eq(roost_http_req_path(r), "/readyz");
    roost_http_req_free(r);
}
END_TEST

START_TEST(test_body_is_read_within_the_cap)
{
    int rc;
    roost_http_req_t *r = fed("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 8192, &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(roost_http_req_method(r), "POST");
    roost_http_req_free(r);
    /* A declared body beyond the cap never completes. */
    r = fed("POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 128, &rc);
    ck_assert_int_eq(rc, 0);
    char pad[200];
    memset(pad, 'x', sizeof(pad));
    ck_assert_int_lt(roost_http_req_feed(r, pad, sizeof(pad)), 0);
    ck_assert_int_eq(roost_http_req_error_status(r), 431);
    roost_http_req_free(r);
}
END_TEST

START_TEST(test_refusals)
{
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        { "\x01\x02 nonsense\r\n\r\n", 400 },
        { "GET /healthz HTTP/9.9\r\n\r\n", 505 },
        { "GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n", 400 },
        { "GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        roost_http_req_t *r = fed(cases[i].text, 8192, &rc);
        ck_assert_msg(rc < 0, "case %zu accepted", i);
        ck_assert_int_eq(roost_http_req_error_status(r), cases[i].status);
        ck_assert_str_eq(roost_http_req_method(r), "");
        roost_http_req_free(r);
    }
    /* Target longer than ROOST_HTTP_PATH_MAX. */
    char *big = malloc(ROOST_HTTP_PATH_MAX + 64);
    strcpy(big, "GET /");
    memset(big + 5, 'a', ROOST_HTTP_PATH_MAX);
    strcpy(big + 5 + ROOST_HTTP_PATH_MAX, " HTTP/1.1\r\n\r\n");
    int rc;
    roost_http_req_t *r = fed(big, 65536, &rc);
    ck_assert_int_lt(rc, 0);
    ck_assert_int_eq(roost_http_req_error_status(r), 414);
    roost_http_req_free(r);
    free(big);
    /* Headers past the total cap. */
    r = fed("GET / HTTP/1.1\r\nX-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 48, &rc);
    ck_assert_int_lt(rc, 0);
    ck_assert_int_eq(roost_http_req_error_status(r), 431);
    roost_http_req_free(r);
}
END_TEST

static char *respond(const char *method, const char *path, const roost_admin_http_health_t *h)
{
    roost_buf_t b = ROOST_BUF_INIT;
    ck_assert_int_eq(roost_admin_http_respond(method, path, h, &b), 0);
    char *s = roost_buf_steal(&b, NULL);
    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(test_endpoints)
{
    roost_admin_http_health_t up = { 1, 1, 1, 0, 0 };
    char *s = respond("GET", "/healthz", &up);
    ck_assert_ptr_nonnull(strstr(s, "HTTP/1.1 200 OK\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "Content-Length: 3\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\n\r\nok\n"));
    free(s);
    s = respond("GET", "/readyz", &up);
    ck_assert_ptr_nonnull(strstr(s, "HTTP/1.1 200 OK\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\n\r\nready\n"));
    free(s);
    s = respond("GET", "/nope", &up);
    ck_assert_ptr_nonnull(strstr(s, "HTTP/1.1 404 Not Found\r\n"));
    free(s);
    s = respond("PUT", "/healthz", &up);
    ck_assert_ptr_nonnull(strstr(s, "HTTP/1.1 405 Method Not Allowed\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "Allow: GET, HEAD\r\n"));
    free(s);

    roost_metric_inc(roost_metric_counter("roost_test_total", "", "t"));
    s = respond("GET", "/metrics", &up);
    ck_assert_ptr_nonnull(strstr(s, "Content-Type: text/plain; version=0.0.4"));
    ck_assert_ptr_nonnull(strstr(s, "\r\n\r\n# HELP roost_test_total t\n"));
    ck_assert_ptr_nonnull(strstr(s, "roost_test_total 1\n"));
    free(s);
    s = respond("HEAD", "/metrics", &up);
    ck_assert_ptr_null(strstr(s, "roost_test_total"));
    ck_assert_ptr_null(strstr(s, "Content-Length: 0\r\n"));
    free(s);
    roost_metrics_reset();
}
END_TEST

START_TEST(test_readiness_names_what_failed)
{
    static const struct {
        roost_admin_http_health_t h;
        const char *text;
    } cases[] = {
        { { 0, 0, 1, 0, 0 }, "not ready: redis unreachable, not subscribed to its route channel\n" },
        { { 1, 1, 0, 0, 0 }, "not ready: cluster lease not held\n" },
        { { 1, 1, 1, 1, 0 }, "not ready: draining\n" },
        { { 1, 1, 1, 0, 1 }, "not ready: shutting down\n" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = respond("GET", "/readyz", &cases[i].h);
        ck_assert_ptr_nonnull(strstr(s, "HTTP/1.1 503 Service Unavailable\r\n"));
        ck_assert_str_eq(strstr(s, "\r\n\r\n") + 4, cases[i].text);
        free(s);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_simple_get);
    tcase_add_test(tc, test_byte_by_byte_and_absolute_form);
    tcase_add_test(tc, test_body_is_read_within_the_cap);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_endpoints);
    tcase_add_test(tc, test_readiness_names_what_failed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
