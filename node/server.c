/* Shared node context helpers. */
#include "node/server.h"

void roost_server_check_idle(roost_server_t *srv)
{
    if (srv->on_idle != NULL && srv->n_conns == 0 && srv->pending_ops == 0)
        srv->on_idle(srv);
}
