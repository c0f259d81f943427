/* roost error codes: 0 is success, failures are small negative integers. */
#ifndef ROOST_ERROR_H
#define ROOST_ERROR_H

enum {
    ROOST_OK = 0,
    ROOST_ENOMEM = -1,     /* allocation failed */
    ROOST_EINVAL = -2,     /* bad argument or malformed input */
    ROOST_ETIMEDOUT = -3,  /* a Redis call or peer exceeded its deadline */
    ROOST_EREDIS = -4,     /* Redis returned an error or the link broke */
    ROOST_ECANCELED = -5,  /* shut down before completion */
    ROOST_ENOTFOUND = -6,  /* no such user, session, key */
    ROOST_ECONFLICT = -7,  /* already exists */
    ROOST_ELIMIT = -8,     /* a configured limit was hit */
    ROOST_EPROTO = -9,     /* protocol violation by the peer */
    ROOST_EIO = -10,       /* socket or file error */
    ROOST_EAUTH = -11,     /* authentication failed */
    ROOST_ESTALE = -12,    /* record owned by someone else / newer epoch */
    ROOST_EAGAIN = -13,    /* paused; call again later */
    ROOST_ENOTCONN = -14,  /* Redis not connected */
};

/* A static, human-readable description of err (never NULL). */
const char *roost_strerror(int err);

#endif
