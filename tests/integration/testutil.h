/* What the integration tests share: the redis-server tests/with-redis.sh
 * started, a guarded loop wait, synchronous hiredis checks, and opening and
 * closing a store. Linked into every tests/integration binary. */
#ifndef ROOST_TESTS_INTEGRATION_TESTUTIL_H
#define ROOST_TESTS_INTEGRATION_TESTUTIL_H

#include <check.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "store/store.h"

#define GUARD_MS 5000   /* a wait that takes longer than this has failed */

/* The test redis-server's port, set by redis_port_init. */
extern int redis_port;

/* Reads ROOST_TEST_REDIS_PORT into redis_port: 0, or -1 (after saying so
 * on stderr) when the test is not run under tests/with-redis.sh. */
int redis_port_init(void);

/* Runs every test of s and frees it; the process exit status. */
int run_suite(Suite *s);

/* Runs loop until *v >= want or GUARD_MS pass; returns *v >= want. */
int wait_for(uv_loop_t *loop, const int *v, int want);

/* What a store's state callback reported. */
typedef struct {
    int ups, downs, last;
} state_t;

/* The state callback: counts into the state_t at data. */
void state_cb(int connected, void *data);

/* A store for node on the test server with reply timeout timeout_ms and
 * fast reconnects, reporting into s; not yet connected. */
roost_store_t *store_open(uv_loop_t *loop, const char *node, unsigned timeout_ms, state_t *s);

/* store_open with a 2 s timeout, once it has connected. */
roost_store_t *store_up(uv_loop_t *loop, const char *node, state_t *s);

/* Frees st, lets libuv close everything, and checks no handle leaked
 * (uv_loop_close fails with EBUSY otherwise). */
void close_all(uv_loop_t *loop, roost_store_t *st);

/* A blocking connection to the test server; redisFree it. */
redisContext *sync_conn(void);

/* A hiredis-formatted command that must not answer an error. */
void sync_cmd(redisContext *c, const char *fmt, ...);

/* A hiredis-formatted command that must answer an integer; returns it. */
long long sync_int(redisContext *c, const char *fmt, ...);

/* Empties the test server. */
void flushall(void);

/* Binds are fenced by the owner's lease (store/cluster.h): a test that
 * writes records of a node it did not register gives that node a lease. */
void fake_lease(const char *node, unsigned long long epoch);

#endif
