/* Process-wide metrics registry and its Prometheus text rendering. Families
 * (one per name) keep registration order; so do the series inside each. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/metrics.h"
#include "store/error.h"

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

typedef struct family_s family_t;

struct roost_metric_s {
    family_t *fam;
    char *labels;
    double value;                /* counter, gauge */
    double (*fn)(void *);        /* computed gauge */
    void *fn_data;
    uint64_t *buckets;           /* histogram: per bound (not cumulative) + +Inf */
    double sum;
    uint64_t count;
    roost_metric_t *next;
};

struct family_s {
    char *name;
    char *help;
    kind_t kind;
    double *bounds;
    size_t n_bounds;
    roost_metric_t *first, *last;
    family_t *next;
};

static family_t *families, *families_last;

static family_t *family_get(const char *name, const char *help, kind_t kind)
{
    family_t *f;
    for (f = families; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f->kind == kind ? f : NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    if (f->name == NULL || f->help == NULL) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->kind = kind;
    if (families_last != NULL)
        families_last->next = f;
    else
        families = f;
    families_last = f;
    return f;
}

static roost_metric_t *series_get(family_t *f, const char *labels)
{
    roost_metric_t *m;
    if (labels == NULL)
        labels = "";
    for (m = f->first; m != NULL; m = m->next)
        if (strcmp(m->labels, labels) == 0)
            return m;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->fam = f;
    m->labels = strdup(labels);
    if (m->labels == NULL)
        goto fail;
    if (f->kind == KIND_HISTOGRAM) {
        m->buckets = calloc(f->n_bounds + 1, sizeof(*m->buckets));
        if (m->buckets == NULL)
            goto fail;
    }
    if (f->last != NULL)
        f->last->next = m;
    else
        f->first = m;
    f->last = m;
    return m;
fail:
    free(m->labels);
    free(m);
    return NULL;
}

roost_metric_t *roost_metric_counter(const char *name, const char *labels, const char *help)
{
    family_t *f = family_get(name, help, KIND_COUNTER);
    return f != NULL ? series_get(f, labels) : NULL;
}

roost_metric_t *roost_metric_gauge(const char *name, const char *labels, const char *help)
{
    family_t *f = family_get(name, help, KIND_GAUGE);
    return f != NULL ? series_get(f, labels) : NULL;
}

roost_metric_t *roost_metric_histogram(const char *name, const char *labels, const char *help,
                                       const double *bounds, size_t n)
{
    family_t *f = family_get(name, help, KIND_HISTOGRAM);
    if (f == NULL)
        return NULL;
    if (f->bounds == NULL && n > 0) {
        f->bounds = malloc(n * sizeof(*bounds));
        if (f->bounds == NULL)
            return NULL;
        memcpy(f->bounds, bounds, n * sizeof(*bounds));
        f->n_bounds = n;
    }
    return series_get(f, labels);
}

void roost_metric_inc(roost_metric_t *m)
{
    if (m != NULL)
        m->value += 1;
}

void roost_metric_add(roost_metric_t *m, double v)
{
    if (m != NULL && m->fam->kind != KIND_HISTOGRAM)
        m->value += v;
}

void roost_metric_set(roost_metric_t *m, double v)
{
    if (m != NULL && m->fam->kind == KIND_GAUGE)
        m->value = v;
}

void roost_metric_observe(roost_metric_t *m, double v)
{
    size_t i;
    if (m == NULL || m->fam->kind != KIND_HISTOGRAM)
        return;
    for (i = 0; i < m->fam->n_bounds && v > m->fam->bounds[i]; i++)
        ;
    m->buckets[i]++;
    m->sum += v;
    m->count++;
}

double roost_metric_value(const roost_metric_t *m)
{
    if (m == NULL)
        return 0;
    return m->fn != NULL ? m->fn(m->fn_data) : m->value;
}

void roost_metrics_count(const char *name, const char *labels, const char *help)
{
    roost_metric_inc(roost_metric_counter(name, labels, help));
}

int roost_metric_gauge_fn(const char *name, const char *labels, const char *help,
                          double (*fn)(void *data), void *data)
{
    roost_metric_t *m = roost_metric_gauge(name, labels, help);
    if (m == NULL)
        return ROOST_ENOMEM;
    m->fn = fn;
    m->fn_data = data;
    return 0;
}

/* Integral values print without a fraction; others with 9 significant
 * digits, enough for latencies and rates. */
static int put_value(roost_buf_t *b, double v)
{
    if (isinf(v))
        return roost_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    if (isnan(v))
        return roost_buf_puts(b, "NaN");
    if (v == (double)(int64_t)v && v > -9e15 && v < 9e15)
        return roost_buf_printf(b, "%lld", (long long)v);
    return roost_buf_printf(b, "%.9g", v);
}

static int put_series(roost_buf_t *b, const char *name, const char *suffix, const char *labels,
                      const char *extra, double v)
{
    int rc = roost_buf_printf(b, "%s%s", name, suffix);
    int has = labels[0] != '\0', ex = extra != NULL && extra[0] != '\0';
    if (rc == 0 && (has || ex))
        rc = roost_buf_printf(b, "{%s%s%s}", labels, has && ex ? "," : "", ex ? extra : "");
    if (rc == 0)
        rc = roost_buf_puts(b, " ");
    if (rc == 0)
        rc = put_value(b, v);
    if (rc == 0)
        rc = roost_buf_puts(b, "\n");
    return rc;
}

static int render_histogram(roost_buf_t *b, const family_t *f, const roost_metric_t *m)
{
    char le[64];
    uint64_t cum = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i <= f->n_bounds; i++) {
        cum += m->buckets[i];
        if (i < f->n_bounds)
            snprintf(le, sizeof(le), "le=\"%.9g\"", f->bounds[i]);
        else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        rc = put_series(b, f->name, "_bucket", m->labels, le, (double)cum);
    }
    if (rc == 0)
        rc = put_series(b, f->name, "_sum", m->labels, NULL, m->sum);
    if (rc == 0)
        rc = put_series(b, f->name, "_count", m->labels, NULL, (double)m->count);
    return rc;
}

int roost_metrics_render(roost_buf_t *b)
{
    static const char *const kinds[] = { "counter", "gauge", "histogram" };
    int rc = 0;
    for (const family_t *f = families; rc == 0 && f != NULL; f = f->next) {
        rc = roost_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                              kinds[f->kind]);
        for (const roost_metric_t *m = f->first; rc == 0 && m != NULL; m = m->next) {
            if (f->kind == KIND_HISTOGRAM)
                rc = render_histogram(b, f, m);
            else
                rc = put_series(b, f->name, "", m->labels, NULL, roost_metric_value(m));
        }
    }
    return rc;
}

void roost_metrics_reset(void)
{
    family_t *f = families, *fn;
    while (f != NULL) {
        roost_metric_t *m = f->first, *mn;
        while (m != NULL) {
            mn = m->next;
            free(m->labels);
            free(m->buckets);
            free(m);
            m = mn;
        }
        fn = f->next;
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
        f = fn;
    }
    families = families_last = NULL;
}
