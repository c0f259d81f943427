/* Internal to node/sm*.c: the per-session stream-management state and
 * the helpers its three files share. Not for other modules. */
#ifndef ROOST_SM_INT_H
#define ROOST_SM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "node/c2s_int.h"
#include "node/metrics.h"
#include "node/sm.h"

#define ROOST_SM_GAP_WAIT_MS 500   /* a queued stanza not back by then is fetched */

struct roost_sm_s {
    roost_c2s_t *s;
    int resumable;
    char *id;                    /* resumable: the SM id */
    uint64_t h_in;               /* stanzas handled from the client */
    uint64_t sent;               /* stanzas written (resumable: last number) */
    uint64_t acked;              /* the client's last h */
    uint64_t max_pushed;         /* highest number our own pushes got */
    uint64_t max_seen;           /* highest number published to us */
    uint64_t check_at;           /* loop ms of the next gap check; 0 none */
    unsigned filling : 1;        /* a range read is in flight */
    unsigned resuming : 1;       /* takeover in flight: hold envelopes */
    unsigned r_pending : 1;      /* we asked for an ack */
    unsigned ended : 1;          /* state deleted: write directly */
    /* Stanzas not yet handed to Redis (it was unreachable), oldest first:
     * a resumable session never writes an unnumbered stanza. */
    struct held_s *held, *held_tail;
    size_t n_held;
    roost_sm_t *prev, *next;     /* every live sm of this node */
};

typedef struct held_s {
    struct held_s *next;
    size_t len;
    char bytes[];
} held_t;

/* Every live sm of this node (the timer walks them). */
extern roost_sm_t *roost_sm_all;

typedef struct {
    roost_metric_t *enabled, *resumed_ok, *resumed_failed, *detached, *expired;
} roost_sm_metrics_t;
extern roost_sm_metrics_t roost_sm_m;
void roost_sm_metrics_init(void);

/* A new state for s, in roost_sm_all; NULL on ENOMEM. */
roost_sm_t *roost_sm_new(roost_c2s_t *s, int resumable, const char *id);

/* Writes queued stanza seq if it is the next one: 1 written, 0 a
 * duplicate, -1 out of order (a gap before it). */
int roost_sm_write_seq(roost_sm_t *sm, uint64_t seq, const uint8_t *bytes, size_t len);
/* Reads every queued stanza after the last written one (async). */
void roost_sm_fill_gap(roost_sm_t *sm);
/* Pushes stanzas held while Redis was away, in order. */
void roost_sm_flush_held(roost_sm_t *sm);

/* <failed/> with a stanza error condition, and h when known. */
void roost_sm_write_failed(roost_c2s_t *s, const char *cond, const uint64_t *h);
/* An h attribute (0..2^32-1); 0 or -1. */
int roost_sm_parse_h(const char *v, uint64_t *h);
/* The resource inside an SM id, malloc'd, or NULL. */
char *roost_sm_id_resource(const char *id);

/* Deletes s's state (owned by its connection); the queue goes the
 * undeliverable way. 0, or negative when it could not be asked. */
int roost_sm_end_async(roost_c2s_t *s);
/* Store callback of a detach; data is the server (pending_ops). */
void roost_sm_on_detached(int status, void *data);

/* <resume/> (node/sm_resume.c). */
int roost_sm_handle_resume(roost_c2s_t *s, const roost_xml_t *el);

#endif
