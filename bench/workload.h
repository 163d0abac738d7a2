/* workload.h - the workloads of issue 3 (W1-W6), each run against one
 * started system and reported as a result_t. */
#ifndef BENCH_WORKLOAD_H
#define BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"
#include "systems.h"

typedef struct wl_cfg {
  size_t size;         /* body bytes */
  uint64_t count;      /* messages for W1, W2, W4, W5; 0: each one's default */
  double duration_s;   /* W3, W3R, and W5's drain; 0: default */
  unsigned conns;      /* producers (and as many consumers) of W3, W3R, W6 */
  size_t batch;        /* W2 messages per send request; 0: the system's best */
  size_t depth;        /* W2 messages outstanding per connection */
  double rate;         /* W3R msgs/s offered in total */
  unsigned rate_conns; /* W3R producers (each one request in flight) */
  double churn_min;    /* W6 minutes */
  unsigned fanout;     /* W4 subscribed queues (1-W4_QUEUES); 0: W4_QUEUES */
  int quick;           /* tiny defaults for the smoke test */
  unsigned run;        /* 1-based run number (queue names) */
} wl_cfg_t;

/* Every workload name, in the order they run. */
extern const char *const wl_names[];
extern const size_t wl_count;

/* 1 if name is a workload. */
int wl_known(const char *name);
/* 1 if the workload runs against peers under --compare (W1-W4). */
int wl_compared(const char *name);
/* Runs workload name on the started system; fills res (status, metrics,
 * note). Returns 0, or -1 when it failed (res->status RES_FAILED). */
int wl_run(const char *name, sysrun_t *sys, const wl_cfg_t *cfg, result_t *res);
/* The W2 send batch used for a system when cfg->batch is 0. */
size_t wl_auto_batch(const sysrun_t *sys);

#endif
