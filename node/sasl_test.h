/* TEST-ONLY hooks into node/sasl.c, so unit tests can replay the RFC 5802
 * and RFC 7677 example exchanges. Never include this outside tests/. */
#ifndef ROOST_SASL_TEST_H
#define ROOST_SASL_TEST_H

#include "node/sasl.h"

/* Makes the next SCRAM server-first message use server_part (copied) as the
 * server's half of the nonce instead of 24 random bytes. Call before the
 * server-first message is built (i.e. before roost_sasl_set_cred). Only
 * printable ASCII without ','; 0, ROOST_EINVAL or ROOST_ENOMEM. */
int roost_sasl_test_set_nonce(roost_sasl_t *s, const char *server_part);

#endif
