/* fetch.h - body reads off the loop thread. A job lists bodies by id; a
 * libuv threadpool worker reads them from the store and the done callback
 * runs on the loop thread with each item's blob (NULL: gone or failed). */
#ifndef GBX_FETCH_H
#define GBX_FETCH_H

#include <stdint.h>
#include <uv.h>

#include "queue.h"
#include "store.h"

typedef struct fetch_item {
  uint32_t qid;
  uint64_t seq, body_id;
  blob_t *blob; /* result: a reference owned by the job's done callback */
} fetch_item_t;

typedef struct fetch_job fetch_job_t;
typedef void (*fetch_done_cb)(fetch_job_t *job);

struct fetch_job {
  uv_work_t work;
  store_t *store;
  fetch_item_t *items;
  uint32_t n, cap;
  uint32_t failed;  /* items that could not be read (error, not absence) */
  uint64_t gate;    /* server use: submit once this batch is durable */
  struct fetch_job *next; /* server use: deferred jobs */
  fetch_done_cb done;
  void *ud;
};

/* Allocates a job with room for cap items. NULL on OOM. */
fetch_job_t *fetch_job_new(store_t *store, uint32_t cap, fetch_done_cb done, void *ud);
/* Adds an item; returns 0 or -1 when full. */
int fetch_job_add(fetch_job_t *j, uint32_t qid, uint64_t seq, uint64_t body_id);
/* Queues the job on the threadpool. Returns 0 or a libuv error. */
int fetch_submit(uv_loop_t *loop, fetch_job_t *j);
/* Frees the job and drops any blob references still in it. */
void fetch_job_free(fetch_job_t *j);

#endif
