/* The metrics registry and its Prometheus text rendering. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "node/metrics.h"

static char *render(void)
{
    roost_buf_t b = ROOST_BUF_INIT;
    ck_assert_int_eq(roost_metrics_render(&b), 0);
    char *s = roost_buf_steal(&b, NULL);
    return s != NULL ? s : strdup("");
}

START_TEST(test_counter_labels)
{
    roost_metric_t *a = roost_metric_counter("roost_x_total", "kind=\"a\"", "X things");
    roost_metric_t *b = roost_metric_counter("roost_x_total", "kind=\"b\"", "ignored");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_eq(roost_metric_counter("roost_x_total", "kind=\"a\"", NULL), a);
    roost_metric_inc(a);
    roost_metric_add(a, 2);
    roost_metric_inc(b);
    roost_metrics_count("roost_x_total", "kind=\"b\"", NULL);
    ck_assert(roost_metric_value(a) == 3);
    char *s = render();
    ck_assert_ptr_nonnull(strstr(s, "# HELP roost_x_total X things\n# TYPE roost_x_total counter\n"
                                    "roost_x_total{kind=\"a\"} 3\nroost_x_total{kind=\"b\"} 2\n"));
    free(s);
    /* one name, one kind */
    ck_assert_ptr_null(roost_metric_gauge("roost_x_total", "", NULL));
    roost_metric_inc(NULL);
    roost_metrics_reset();
}
END_TEST

static double seven(void *d) { return *(int *)d; }

START_TEST(test_gauge_and_fn)
{
    int v = 7;
    roost_metric_t *g = roost_metric_gauge("roost_g", "", "a gauge");
    roost_metric_set(g, 1.5);
    ck_assert_int_eq(roost_metric_gauge_fn("roost_f", "n=\"1\"", "computed", seven, &v), 0);
    char *s = render();
    ck_assert_ptr_nonnull(strstr(s, "# TYPE roost_g gauge\nroost_g 1.5\n"));
    ck_assert_ptr_nonnull(strstr(s, "roost_f{n=\"1\"} 7\n"));
    free(s);
    v = 9;
    s = render();
    ck_assert_ptr_nonnull(strstr(s, "roost_f{n=\"1\"} 9\n"));
    free(s);
    roost_metrics_reset();
}
END_TEST

START_TEST(test_histogram)
{
    static const double bounds[] = { 0.001, 0.01, 0.1 };
    roost_metric_t *h = roost_metric_histogram("roost_lat_seconds", "cmd=\"get\"", "lat", bounds, 3);
    roost_metric_observe(h, 0.0005);
    roost_metric_observe(h, 0.001);
    roost_metric_observe(h, 0.05);
    roost_metric_observe(h, 3);
    char *s = render();
    ck_assert_ptr_nonnull(strstr(s, "# TYPE roost_lat_seconds histogram\n"
        "roost_lat_seconds_bucket{cmd=\"get\",le=\"0.001\"} 2\n"
        "roost_lat_seconds_bucket{cmd=\"get\",le=\"0.01\"} 2\n"
        "roost_lat_seconds_bucket{cmd=\"get\",le=\"0.1\"} 3\n"
        "roost_lat_seconds_bucket{cmd=\"get\",le=\"+Inf\"} 4\n"
        "roost_lat_seconds_sum{cmd=\"get\"} 3.0515\n"
        "roost_lat_seconds_count{cmd=\"get\"} 4\n"));
    free(s);
    roost_metrics_reset();
    s = render();
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_counter_labels);
    tcase_add_test(tc, test_gauge_and_fn);
    tcase_add_test(tc, test_histogram);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
