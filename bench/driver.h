/* driver.h - what a workload needs from a broker, one implementation per
 * system measured (Gearbox, beanstalkd, Redis streams).
 *
 * The interface is pipelined: submit_* queue one logical request and return
 * at once; collect() writes what is queued and returns the next completion,
 * waiting for it. One logical request may be several wire commands for a
 * system without the operation (beanstalkd has no batch put: a send of n
 * messages is n pipelined puts, completed together), so every system runs
 * the same workload code with the same number of messages outstanding.
 *
 * A connection is used by one thread. Errors are returned as -1 with a
 * message in the connection (drv_errmsg) and leave it unusable.
 */
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/* A receipt handle, job id or stream entry id: Gearbox's receipts are the
 * longest (GBX_MAX_RECEIPT, 128). */
#define DRV_HANDLE_MAX 136
/* Leading body bytes kept per received message: the 8-byte timestamp the
 * producers write, and a sequence number. */
#define DRV_HEAD 16

typedef struct endpoint {
  char host[64];
  uint16_t port;
} endpoint_t;

/* A queue as a workload names it. sub_of is NULL for a plain queue; for a
 * queue subscribed to a topic it names the topic (Redis models that queue as
 * a consumer group on the topic's stream). */
typedef struct drv_queue {
  const char *name;
  const char *sub_of;
} drv_queue_t;

/* A topic and the queues subscribed to it (W4). */
typedef struct drv_topic {
  const char *name;
  const char *const *queues;
  size_t nq;
} drv_topic_t;

typedef struct drv_msg {
  char handle[DRV_HANDLE_MAX];
  uint8_t head[DRV_HEAD]; /* the body's first bytes (zero-padded) */
  size_t len;             /* the whole body's length */
} drv_msg_t;

enum { DRV_SENT = 1, DRV_RECEIVED, DRV_DELETED };
/* create_fanout's return when the server lacks the operation. */
#define DRV_UNSUPPORTED (-2)

/* One completed logical request. */
typedef struct drv_done {
  int kind;        /* DRV_SENT (send or publish), DRV_RECEIVED, DRV_DELETED */
  uint64_t tag;    /* as given to submit_* */
  size_t n;        /* messages sent, received or deleted */
  drv_msg_t *msgs; /* DRV_RECEIVED: n messages, owned by the connection,
                      valid until its next collect */
} drv_done_t;

typedef struct drv_conn drv_conn_t;

/* The server's own view of its commits, where it reports one (Gearbox's
 * stats operation): since the server started. */
typedef struct drv_server_stats {
  double commits;       /* group commits (batches written) */
  double per_commit;    /* requests acknowledged per commit */
  double commit_p50_us; /* write+sync latency of one commit */
  double commit_p99_us;
} drv_server_stats_t;

typedef struct driver {
  const char *name;
  /* Largest number of messages one send (or delete) request may carry;
   * the workloads never submit more in one call. */
  size_t max_batch;
  /* Connects; NULL with err filled on failure. */
  drv_conn_t *(*connect)(const endpoint_t *ep, char *err, size_t errcap);
  void (*close)(drv_conn_t *c);
  /* Makes a queue ready to send to and receive from (blocking). */
  int (*create_queue)(drv_conn_t *c, const char *name);
  /* Creates the topic with its queues subscribed (blocking): 0, -1, or
   * DRV_UNSUPPORTED when the server turns the operation down as unknown.
   * NULL when the client cannot fan out; fanout_missing then says why. */
  int (*create_fanout)(drv_conn_t *c, const drv_topic_t *t);
  const char *fanout_missing;
  /* Queues n messages (bodies[i], len bytes each) as one logical send. */
  int (*submit_send)(drv_conn_t *c, const drv_queue_t *q, uint8_t *const *bodies, size_t len,
                     size_t n, uint64_t tag);
  /* Queues n publishes to a topic made by create_fanout; completes as
   * DRV_SENT with n publishes (each delivered to every queue of t). */
  int (*submit_publish)(drv_conn_t *c, const drv_topic_t *t, uint8_t *const *bodies, size_t len,
                        size_t n, uint64_t tag);
  /* Queues a receive of up to max messages, waiting up to wait_ms (0: no
   * wait) for the first. A completion may carry fewer than max, or none. */
  int (*submit_receive)(drv_conn_t *c, const drv_queue_t *q, size_t max, unsigned wait_ms,
                        uint64_t tag);
  /* Queues the deletion (acknowledgement) of n received messages. */
  int (*submit_delete)(drv_conn_t *c, const drv_queue_t *q, const drv_msg_t *msgs, size_t n,
                       uint64_t tag);
  /* Writes what is queued and waits for the next completion. */
  int (*collect)(drv_conn_t *c, drv_done_t *out);
  /* Fills the server's commit statistics (blocking); NULL when the system
   * reports none. */
  int (*server_stats)(drv_conn_t *c, drv_server_stats_t *out);
  /* The last error's message. */
  const char *(*errmsg)(const drv_conn_t *c);
} driver_t;

extern const driver_t drv_gearbox;
extern const driver_t drv_beanstalk;
extern const driver_t drv_redis;

#endif
