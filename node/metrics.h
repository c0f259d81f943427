/* Process-wide metrics in the Prometheus text format: counters, gauges and
 * histograms registered once by name and label set, bumped through a handle
 * on hot paths, rendered by the admin HTTP listener. Single-threaded. */
#ifndef ROOST_METRICS_H
#define ROOST_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "node/buf.h"

typedef struct roost_metric_s roost_metric_t;

/* Return the metric named name with the label set labels ("" or
 * 'k="v",k2="v2"', already escaped), creating it on first use. help is
 * kept from the first registration of a name. A name is of one kind only:
 * asking for it as another kind returns NULL. NULL on allocation failure
 * too; every bump function accepts NULL and does nothing. Metrics live
 * until roost_metrics_reset(). */
roost_metric_t *roost_metric_counter(const char *name, const char *labels, const char *help);
roost_metric_t *roost_metric_gauge(const char *name, const char *labels, const char *help);
/* bounds: n ascending upper bounds (copied); +Inf is implicit. */
roost_metric_t *roost_metric_histogram(const char *name, const char *labels, const char *help,
                                       const double *bounds, size_t n);

void roost_metric_inc(roost_metric_t *m);
void roost_metric_add(roost_metric_t *m, double v);      /* counter or gauge */
void roost_metric_set(roost_metric_t *m, double v);      /* gauge */
void roost_metric_observe(roost_metric_t *m, double v);  /* histogram */
double roost_metric_value(const roost_metric_t *m);      /* counter/gauge; 0 for NULL */

/* One-off counter bump by name, looked up each time: for rare events
 * (limit hits, failures), not per stanza. */
void roost_metrics_count(const char *name, const char *labels, const char *help);

/* A gauge computed at render time: fn(data) is called once per render. */
int roost_metric_gauge_fn(const char *name, const char *labels, const char *help,
                          double (*fn)(void *data), void *data);

/* Appends every metric in the Prometheus text exposition format 0.0.4
 * (one HELP/TYPE pair per name). 0 or ROOST_ENOMEM. */
int roost_metrics_render(roost_buf_t *b);

/* Frees every metric; handles become invalid. For tests and exit. */
void roost_metrics_reset(void);

#endif
