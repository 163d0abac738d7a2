/* flow.h - the two loops every workload is made of: a producer keeping a
 * window of messages in flight, and a consumer receiving and deleting with
 * a window of its own, each on one connection, any system. Workloads
 * (workload.c) only choose their parameters and run them on threads.
 *
 * Bodies are random bytes (so compression gains nothing) whose first 8
 * bytes are a timestamp (clock.h; the intended send time when paced) and
 * next 8 a sequence number; consumers read the timestamp for end-to-end
 * latency.
 */
#ifndef BENCH_FLOW_H
#define BENCH_FLOW_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "hist.h"

/* Requests one flow may have outstanding: the tag ring's size. */
#define FLOW_MAX_REQS 1024u
/* Bytes the body stamp takes (timestamp + sequence). */
#define FLOW_STAMP 16u

typedef struct flow_prod {
  /* in */
  const driver_t *drv;
  drv_conn_t *conn;
  const drv_queue_t *q;     /* send to this queue... */
  const drv_topic_t *topic; /* ...or publish to this topic when not NULL */
  uint64_t count;           /* messages; UINT64_MAX: until the deadline */
  size_t size;              /* body bytes (at least FLOW_STAMP) */
  size_t batch;             /* messages per request */
  size_t depth;             /* messages outstanding at most */
  size_t max_reqs;          /* requests outstanding at most (0: only depth bounds) */
  uint64_t deadline;        /* ns (clock.h); 0: none */
  double rate;              /* msgs/s this producer offers; 0: as fast as it can */
  uint64_t start;           /* ns: when message 0 is due (paced) */
  hist_t *lat;              /* per request, ack time minus submit time (minus the
                               intended time when paced); may be NULL */
  /* out */
  uint64_t sent;           /* messages acknowledged */
  uint64_t t_begin, t_end; /* ns: first submit, last acknowledgement */
  char err[512];
} flow_prod_t;

typedef struct flow_cons {
  /* in */
  const driver_t *drv;
  drv_conn_t *conn;
  const drv_queue_t *q;
  uint64_t count;              /* stop after deleting this many; UINT64_MAX: until the deadline */
  size_t fetch;                /* messages per receive at most */
  size_t depth;                /* messages outstanding (asked for or being deleted) at most */
  size_t max_reqs;             /* requests outstanding at most (0: only depth bounds) */
  unsigned wait_ms;            /* long-poll wait of a receive that may find nothing */
  int backlog;                 /* the messages are queued already: receive without waiting
                        until a receive comes back empty */
  uint64_t deadline;           /* ns; 0: none. Receives stop then; later arrivals are
                        deleted but not counted */
  hist_t *e2e;                 /* receive time minus the body's timestamp; may be NULL */
  hist_t *lat;                 /* per receive request latency; may be NULL */
  atomic_uint_fast64_t *tally; /* if not NULL, counted messages are added here */
  /* out */
  uint64_t received; /* counted messages (received before the deadline) */
  uint64_t deleted;
  uint64_t t_begin, t_end; /* ns: first submit, last counted deletion */
  char err[512];
} flow_cons_t;

/* Fills the shared random body pool; call once before any flow. */
void flow_init(void);
/* Runs a producer to completion. 0, or -1 with p->err filled. */
int flow_produce(flow_prod_t *p);
/* Runs a consumer to completion. 0, or -1 with c->err filled. */
int flow_consume(flow_cons_t *c);
/* Runs np producers and nc consumers, each on its own thread, and waits for
 * all. 0, or -1 with the first failure's message in err. */
int flow_run(flow_prod_t *ps, size_t np, flow_cons_t *cs, size_t nc, char *err, size_t cap);
/* The timestamp stamped into a body (from its first bytes). */
uint64_t flow_stamp_of(const uint8_t *head);

#endif
