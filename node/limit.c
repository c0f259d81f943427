/* Limit hits: logged at info level (a hit is the client's doing, not a
 * fault of the node) and counted per limit for alerting. */
#include "node/limit.h"

#include <stdio.h>

#include "node/log.h"
#include "node/metrics.h"

void roost_limit_hit(uint64_t conn_id, const char *limit, const char *detail)
{
    char labels[96];

    ROOST_INFO(conn_id, "limit hit limit=%s%s%s", limit, detail != NULL ? " " : "",
               detail != NULL ? detail : "");
    snprintf(labels, sizeof(labels), "limit=\"%s\"", limit);
    roost_metrics_count("roost_limit_hits_total", labels,
                        "Times a configured limit refused or cut off a client, by limit");
}
