/* load.h - the reliability load: producers, consumers and the final drain,
 * every attempt and every reply recorded in a history (history.h).
 *
 * Producers pipeline sends (single and batched) of unique bodies
 * "p<id>-<seq>|padding" to the main queues. Consumers receive with a short
 * random visibility, delete some of what they get (singly or in batches)
 * and let the rest expire, so messages are redelivered and, past
 * MaxReceiveCount, move to each queue's dead-letter queue, which its own
 * consumers drain partly. When the server dies, every request without a
 * reply is recorded in doubt, the thread reconnects to the server's current
 * port (srv_port_now) and carries on; deletes not yet acknowledged are
 * retried on the new connection while their visibility lasts (receipt
 * handles survive restarts).
 *
 * Threads: load_start runs the workers; everything else is called from the
 * driver thread. Errors are returned as -1 with a message in err.
 */
#ifndef GBX_REL_LOAD_H
#define GBX_REL_LOAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "srvproc.h"

/* Main queues a load may use; each also has a dead-letter queue. */
#define LOAD_MAX_QUEUES 8

typedef struct load_cfg {
  const char *prefix;    /* queue names: <prefix><i> and <prefix><i>-dlq */
  int producers;         /* producer threads */
  int consumers;         /* consumer threads on the main queues */
  int dlq_consumers;     /* consumer threads on the dead-letter queues */
  int nqueues;           /* main queues, 1-LOAD_MAX_QUEUES */
  unsigned window;       /* pipelined send requests in flight per producer */
  unsigned pad_max;      /* body padding, 0-pad_max bytes after the tag */
  unsigned vis_min_s;    /* consumers' visibility timeout, drawn from */
  unsigned vis_max_s;    /*   [vis_min_s, vis_max_s] per receive */
  unsigned max_receives; /* MaxReceiveCount of the main queues */
  unsigned delete_pct;   /* share of received messages consumers delete */
  uint64_t max_messages; /* producers stop after this many sends in all (0: no limit) */
  uint64_t max_backlog;  /* producers pause while acknowledged sends exceed
                             acknowledged deletes by this many (0: no limit) */
  uint64_t seed;         /* seeds every thread's random choices */
} load_cfg_t;

typedef struct load load_t;

/* Live counters, readable from any thread while the load runs. */
typedef struct load_counters {
  _Atomic uint64_t send_acks;   /* sends acknowledged */
  _Atomic uint64_t receives;    /* messages delivered */
  _Atomic uint64_t delete_acks; /* deletes acknowledged */
  _Atomic uint64_t reconnects;  /* connections re-established after a failure */
  _Atomic uint64_t in_doubt;    /* requests left in doubt */
} load_counters_t;

/* A load over the server srv, recording into h (whose queue table it fills
 * with the queues it creates, in load_create_queues). NULL on allocation
 * failure or a bad cfg. */
load_t *load_new(const load_cfg_t *cfg, hist_t *h, srv_t *srv);
/* Stops the workers if running and frees the load. NULL is a no-op. */
void load_free(load_t *l);
/* Creates the queues (each main queue with its dead-letter queue and
 * MaxReceiveCount) on the running server and adds them to the history. */
int load_create_queues(load_t *l, char *err, size_t cap);
/* Starts the worker threads. */
int load_start(load_t *l, char *err, size_t cap);
/* Asks the workers to stop and joins them; what is in flight ends in
 * doubt or acknowledged. */
void load_stop(load_t *l);
/* The live counters. */
load_counters_t *load_counters(load_t *l);
/* Waits up to timeout_ms for the next acknowledged send. Returns 1 if one
 * arrived, 0 on timeout. For killing "right after an acknowledgement". */
int load_wait_ack(load_t *l, int timeout_ms);
/* The final drain, on a running server with the workers stopped: receives
 * everything from every main queue, then every dead-letter queue (long
 * visibility, recorded as drain events) and deletes it, until each queue's
 * counters read zero. Fails if a queue does not empty within timeout_s
 * (a message stuck in flight is a lost redelivery). */
int load_drain(load_t *l, unsigned timeout_s, char *err, size_t cap);

#endif
