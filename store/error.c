/* Human-readable names for ROOST_E* codes. */
#include "store/error.h"

const char *roost_strerror(int err)
{
    switch (err) {
    case ROOST_OK: return "success";
    case ROOST_ENOMEM: return "out of memory";
    case ROOST_EINVAL: return "invalid argument";
    case ROOST_ETIMEDOUT: return "timed out";
    case ROOST_EREDIS: return "redis error";
    case ROOST_ECANCELED: return "canceled";
    case ROOST_ENOTFOUND: return "not found";
    case ROOST_ECONFLICT: return "already exists";
    case ROOST_ELIMIT: return "limit reached";
    case ROOST_EPROTO: return "protocol error";
    case ROOST_EIO: return "i/o error";
    case ROOST_EAUTH: return "authentication failed";
    case ROOST_ESTALE: return "stale owner";
    case ROOST_EAGAIN: return "try again";
    case ROOST_ENOTCONN: return "not connected";
    }
    return "unknown error";
}
