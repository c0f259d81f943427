/* One place that records a configured limit being hit: a log line naming
 * the limit and the counter roost_limit_hits_total{limit="<name>"}. The
 * caller still answers the peer (stream or stanza error, or a close). */
#ifndef ROOST_LIMIT_H
#define ROOST_LIMIT_H

#include <stdint.h>

/* limit: a fixed lowercase identifier ("stanza_size", "conn_per_ip", ...),
 * never peer data (it becomes a metric label). detail: free text for the
 * log line, or NULL. conn_id 0 when no connection is concerned. */
void roost_limit_hit(uint64_t conn_id, const char *limit, const char *detail);

#endif
