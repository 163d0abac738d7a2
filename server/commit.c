/* commit.c - see commit.h. Group commit with one commit thread.
 *
 * Two batches take turns: the loop thread fills the open one while the
 * commit thread writes the other (in flight). When the in-flight batch is
 * written the thread posts the result and wakes the loop with a uv_async_t;
 * the loop marks it durable, reports it, empties it and kicks again, so the
 * mutations gathered meanwhile leave at once as one batch. Nothing that
 * touches the disk runs on the loop thread.
 *
 * Locking: `mu` guards the job and result fields (the hand-off between the
 * two threads); everything else is the loop thread's alone. The in-flight
 * batch belongs to the commit thread from the hand-off until its result is
 * collected; the mutex orders both transfers.
 *
 * Failure is final: once a write or a sync fails, the failure is reported
 * through the done callback and no later batch is written or acknowledged.
 * Retrying would acknowledge data that may sit on a disk that just lost some.
 */
#define _GNU_SOURCE
#include "commit.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latency histogram, HDR style: values below 2*HIST_SUB microseconds have a
 * bucket each; above, each power of two is split into HIST_SUB buckets, so a
 * reported percentile is at most 1/64 (~1.6%) above the true value. */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
/* Highest bit of a recorded value: 2^40 us is ~12.7 days, longer is clamped
 * (a write that slow has long been reported by other means). */
#define HIST_MAX_MSB 39
#define HIST_MAX_US (((uint64_t)1 << (HIST_MAX_MSB + 1)) - 1)
#define HIST_BUCKETS ((HIST_MAX_MSB - HIST_SUB_BITS) * HIST_SUB + 2 * HIST_SUB)

typedef struct hist {
  uint64_t n[HIST_BUCKETS];
  uint64_t count;
  uint64_t max;
} hist_t;

/* One job's outcome, posted by the commit thread under mu. */
typedef struct result {
  int ready;
  int status;
  char *err;       /* malloc'd, or NULL (then "out of memory") */
  uint64_t us;     /* write latency, writes only */
} result_t;

struct commit {
  uv_loop_t *loop;
  store_t *store;
  commit_policy_t policy;
  unsigned interval_ms;
  commit_done_cb cb;
  int manual_kick; /* 1: the owner kicks (after a done callback too) */
  void *ctx;

  /* ---- loop thread only ---- */
  store_batch_t *open;       /* where mutations go */
  store_batch_t *flight;     /* owned by the thread while in_flight */
  uint64_t open_no;          /* number open will get */
  uint64_t flight_no;
  uint64_t durable_no;
  uint64_t open_requests, flight_requests;
  int in_flight;             /* a write job is out */
  int sync_in_flight;        /* a sync job is out */
  int written_since_sync;    /* COMMIT_INTERVAL: a batch went out unsynced */
  int failed;                /* sticky: no batch is written after this */
  int closed;                /* commit_stop closed the handles */
  int handles_open;          /* close callbacks still to come */
  uv_async_t async;
  uv_timer_t timer;
  commit_stats_t stats;      /* counters only; percentiles come from hist */
  hist_t hist;

  /* ---- commit thread only ---- */
  uv_thread_t thread;
  int thread_failed;

  /* ---- guarded by mu ---- */
  uv_mutex_t mu;
  uv_cond_t cv_work;         /* the thread waits for a job or stop */
  uv_cond_t cv_done;         /* commit_stop waits for a result */
  int job_write, job_sync, stop;
  store_batch_t *job_batch;
  uint64_t job_no;
  uint64_t fault_at;
  result_t res_write, res_sync;
};

/* ---- histogram ---- */

static unsigned hist_bucket(uint64_t v) {
  if (v > HIST_MAX_US) v = HIST_MAX_US;
  if (v < 2 * HIST_SUB) return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - HIST_SUB_BITS;
  return shift * HIST_SUB + (unsigned)(v >> shift);
}

/* The highest value that falls in bucket b. */
static uint64_t hist_top(unsigned b) {
  if (b < 2 * HIST_SUB) return b;
  unsigned shift = b / HIST_SUB - 1;
  uint64_t mant = b - shift * HIST_SUB;
  return ((mant + 1) << shift) - 1;
}

static void hist_add(hist_t *h, uint64_t v) {
  h->n[hist_bucket(v)]++;
  h->count++;
  if (v > h->max) h->max = v;
}

/* Value at quantile q (0..1], reported as the top of its bucket but never
 * above the exact maximum. */
static uint64_t hist_quantile(const hist_t *h, double q) {
  if (!h->count) return 0;
  uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > h->count) rank = h->count;
  uint64_t seen = 0;
  for (unsigned b = 0; b < HIST_BUCKETS; b++) {
    seen += h->n[b];
    if (seen >= rank) {
      uint64_t top = hist_top(b);
      return top < h->max ? top : h->max;
    }
  }
  return h->max;
}

/* ---- commit thread ---- */

/* A malloc'd "<what> at batch <no>", or NULL without memory. */
static char *thread_err(const char *what, uint64_t no) {
  char *e = NULL;
  if (asprintf(&e, "%s at batch %" PRIu64, what, no) < 0) e = NULL;
  return e;
}

/* Runs one job with mu unlocked; returns its result. */
static result_t run_write(commit_t *c, store_batch_t *b, uint64_t no, int fault) {
  result_t r = {1, 0, NULL, 0};
  uint64_t t0 = uv_hrtime();
  if (c->thread_failed) {
    r.status = -1;
    r.err = thread_err("write refused after an earlier commit failure", no);
  } else if (fault) {
    r.status = -1;
    r.err = thread_err("store write failed: injected fault", no);
  } else {
#ifdef GBX_BROKEN_SKIP_SYNC
    /* deliberately broken build (tests/reliability): never syncs */
    r.status = store_write(c->store, b, 0, &r.err);
#else
    r.status = store_write(c->store, b, c->policy == COMMIT_ALWAYS, &r.err);
#endif
  }
  r.us = (uv_hrtime() - t0) / 1000;
  if (r.status) c->thread_failed = 1;
  return r;
}

static result_t run_sync(commit_t *c) {
  result_t r = {1, 0, NULL, 0};
  if (c->thread_failed) {
    r.status = -1;
    r.err = strdup("WAL sync refused: an earlier commit failed");
  } else {
    r.status = store_sync_wal(c->store, &r.err);
  }
  if (r.status) c->thread_failed = 1;
  return r;
}

static void thread_main(void *arg) {
  commit_t *c = arg;
  uv_mutex_lock(&c->mu);
  for (;;) {
    while (!c->job_write && !c->job_sync && !c->stop) uv_cond_wait(&c->cv_work, &c->mu);
    /* Writes before syncs: a sync queued behind a batch then covers it. */
    if (c->job_write) {
      store_batch_t *b = c->job_batch;
      uint64_t no = c->job_no;
      int fault = c->fault_at != 0 && c->fault_at == no;
      uv_mutex_unlock(&c->mu);
      result_t r = run_write(c, b, no, fault);
      uv_mutex_lock(&c->mu);
      c->job_write = 0;
      c->res_write = r;
    } else if (c->job_sync) {
      uv_mutex_unlock(&c->mu);
      result_t r = run_sync(c);
      uv_mutex_lock(&c->mu);
      c->job_sync = 0;
      c->res_sync = r;
    } else {
      break; /* stop, and no job left */
    }
    uv_cond_signal(&c->cv_done);
    uv_async_send(&c->async);
  }
  uv_mutex_unlock(&c->mu);
}

/* ---- loop thread ---- */

/* The pipeline keeps the loop alive exactly while a job is out. */
static void update_ref(commit_t *c) {
  if (c->closed) return;
  if (c->in_flight || c->sync_in_flight) uv_ref((uv_handle_t *)&c->async);
  else uv_unref((uv_handle_t *)&c->async);
}

/* Reports the first failure; later ones are consequences of it. */
static void fail(commit_t *c, const char *err) {
  if (c->failed) return;
  c->failed = 1;
  c->cb(c->ctx, c->durable_no, -1, err ? err : "commit failed: out of memory");
}

static void collect(commit_t *c) {
  result_t w, s;
  uv_mutex_lock(&c->mu);
  w = c->res_write;
  s = c->res_sync;
  memset(&c->res_write, 0, sizeof c->res_write);
  memset(&c->res_sync, 0, sizeof c->res_sync);
  uv_mutex_unlock(&c->mu);

  /* A successful write was done before any failure (the thread refuses
   * everything after one), so handling the write first keeps the order. */
  if (w.ready) {
    assert(c->in_flight);
    c->in_flight = 0;
    int ok = w.status == 0 && !c->failed;
#ifdef GBX_BROKEN_IGNORE_SYNC_ERROR
    /* deliberately broken build (tests/reliability): the first failed write
     * or sync is reported durable, so the replies held on it are sent; the
     * thread refuses the next batch, whose failure then stops the server */
    static int ignored;
    if (w.status != 0 && !c->failed && !ignored) ok = ignored = 1;
#endif
    if (ok) {
      c->durable_no = c->flight_no;
      c->stats.batches++;
      c->stats.ops += store_batch_count(c->flight);
      c->stats.requests += c->flight_requests;
      hist_add(&c->hist, w.us);
      c->written_since_sync = 1;
      store_batch_clear(c->flight);
      c->flight_requests = 0;
      update_ref(c);
      c->cb(c->ctx, c->durable_no, 0, NULL);
    } else {
      store_batch_clear(c->flight);
      c->flight_requests = 0;
      update_ref(c);
      fail(c, w.err);
    }
  }
  if (s.ready) {
    assert(c->sync_in_flight);
    c->sync_in_flight = 0;
    update_ref(c);
    int ok = s.status == 0;
#ifdef GBX_BROKEN_IGNORE_SYNC_ERROR
    static int ignored_sync; /* deliberately broken build: see the write above */
    if (!ok && !ignored_sync) ok = ignored_sync = 1;
#endif
    if (ok) c->stats.wal_syncs++;
    else fail(c, s.err);
  }
  free(w.err);
  free(s.err);
}

static void async_cb(uv_async_t *h) {
  commit_t *c = h->data;
  collect(c);
  if (!c->manual_kick) commit_kick(c);
}

void commit_set_manual_kick(commit_t *c, int on) { c->manual_kick = on != 0; }

static void queue_sync(commit_t *c) {
  c->written_since_sync = 0;
  c->sync_in_flight = 1;
  uv_mutex_lock(&c->mu);
  c->job_sync = 1;
  uv_cond_signal(&c->cv_work);
  uv_mutex_unlock(&c->mu);
  update_ref(c);
}

static void timer_cb(uv_timer_t *h) {
  commit_t *c = h->data;
  if (!c->failed && c->written_since_sync && !c->sync_in_flight) queue_sync(c);
}

static void close_cb(uv_handle_t *h) {
  commit_t *c = h->data;
  if (--c->handles_open > 0) return;
  uv_cond_destroy(&c->cv_done);
  uv_cond_destroy(&c->cv_work);
  uv_mutex_destroy(&c->mu);
  store_batch_free(c->open);
  store_batch_free(c->flight);
  free(c->res_write.err);
  free(c->res_sync.err);
  free(c);
}

/* Tells the thread to finish its jobs and exit, and waits for it. */
static void stop_thread(commit_t *c) {
  uv_mutex_lock(&c->mu);
  c->stop = 1;
  uv_cond_signal(&c->cv_work);
  uv_mutex_unlock(&c->mu);
  uv_thread_join(&c->thread);
}

commit_t *commit_start(uv_loop_t *loop, store_t *store, commit_policy_t policy,
                       unsigned interval_ms, commit_done_cb cb, void *ctx, char **err) {
  commit_t *c = NULL;
  int have_sync = 0, have_thread = 0;
  const char *why = "out of memory";

  if (policy != COMMIT_ALWAYS && policy != COMMIT_INTERVAL && policy != COMMIT_NONE) {
    why = "unknown commit policy";
    goto fail;
  }
  if (policy == COMMIT_INTERVAL && interval_ms == 0) {
    why = "commit interval must be at least 1 ms";
    goto fail;
  }
  c = calloc(1, sizeof *c);
  if (!c) goto fail;
  c->loop = loop;
  c->store = store;
  c->policy = policy;
  c->interval_ms = interval_ms;
  c->cb = cb;
  c->ctx = ctx;
  c->open_no = 1;
  c->open = store_batch_new(store);
  c->flight = store_batch_new(store);
  if (!c->open || !c->flight) goto fail;
  why = "cannot create the commit thread's mutex and condition variables";
  if (uv_mutex_init(&c->mu) != 0) goto fail;
  if (uv_cond_init(&c->cv_work) != 0) {
    uv_mutex_destroy(&c->mu);
    goto fail;
  }
  if (uv_cond_init(&c->cv_done) != 0) {
    uv_cond_destroy(&c->cv_work);
    uv_mutex_destroy(&c->mu);
    goto fail;
  }
  have_sync = 1;
  /* The thread first: it touches the async handle only once it has a job,
   * and a thread can be stopped here, while a handle registered with the
   * loop could only be closed through a later loop run. */
  why = "cannot start the commit thread";
  if (uv_thread_create(&c->thread, thread_main, c) != 0) goto fail;
  have_thread = 1;
  why = "cannot create the commit thread's wake-up handle";
  c->async.data = c;
  if (uv_async_init(loop, &c->async, async_cb) != 0) goto fail;
  uv_unref((uv_handle_t *)&c->async);
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->handles_open = 2;
  if (policy == COMMIT_INTERVAL) uv_timer_start(&c->timer, timer_cb, interval_ms, interval_ms);
  /* A periodic sync must not keep an otherwise idle loop running. */
  uv_unref((uv_handle_t *)&c->timer);
  return c;

fail:
  if (c) {
    if (have_thread) stop_thread(c);
    if (have_sync) {
      uv_cond_destroy(&c->cv_done);
      uv_cond_destroy(&c->cv_work);
      uv_mutex_destroy(&c->mu);
    }
    store_batch_free(c->open);
    store_batch_free(c->flight);
    free(c);
  }
  if (err) *err = strdup(why);
  return NULL;
}

store_batch_t *commit_batch(commit_t *c) { return c->open; }

uint64_t commit_open_no(const commit_t *c) { return c->open_no; }

uint64_t commit_durable_no(const commit_t *c) { return c->durable_no; }

int commit_dirty(const commit_t *c) { return store_batch_count(c->open) != 0; }

void commit_note_request(commit_t *c) { c->open_requests++; }

void commit_kick(commit_t *c) {
  assert(!c->closed);
  if (c->failed || c->in_flight || store_batch_count(c->open) == 0) return;
  store_batch_t *b = c->open;
  c->open = c->flight; /* empty: cleared when its result was collected */
  c->flight = b;
  c->flight_no = c->open_no++;
  c->flight_requests = c->open_requests;
  c->open_requests = 0;
  c->in_flight = 1;
  uv_mutex_lock(&c->mu);
  c->job_batch = b;
  c->job_no = c->flight_no;
  c->job_write = 1;
  uv_cond_signal(&c->cv_work);
  uv_mutex_unlock(&c->mu);
  update_ref(c);
}

int commit_stop(commit_t *c) {
  assert(!c->closed);
  commit_kick(c);
  for (;;) {
    if (!c->in_flight && !c->sync_in_flight) {
      if (c->failed) break;
      if (commit_dirty(c)) { /* a done callback added mutations */
        commit_kick(c);
        continue;
      }
      if (c->policy == COMMIT_INTERVAL && c->written_since_sync) {
        queue_sync(c);
        continue;
      }
      break;
    }
    /* The loop is not running the async callback now: wait here. */
    uv_mutex_lock(&c->mu);
    while (!c->res_write.ready && !c->res_sync.ready) uv_cond_wait(&c->cv_done, &c->mu);
    uv_mutex_unlock(&c->mu);
    collect(c);
    if (!c->failed) commit_kick(c);
  }
  stop_thread(c);
  int rc = c->failed ? -1 : 0;
  c->closed = 1;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, close_cb);
  uv_close((uv_handle_t *)&c->async, close_cb);
  return rc;
}

void commit_get_stats(const commit_t *c, commit_stats_t *out) {
  *out = c->stats;
  out->p50_us = hist_quantile(&c->hist, 0.50);
  out->p99_us = hist_quantile(&c->hist, 0.99);
  out->max_us = c->hist.max;
}

void commit_set_fault(commit_t *c, uint64_t fail_at_batch) {
  uv_mutex_lock(&c->mu);
  c->fault_at = fail_at_batch;
  uv_mutex_unlock(&c->mu);
}
