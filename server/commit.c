/* commit.c - see commit.h. Group commit with a write thread and a sync
 * thread.
 *
 * Two batches take turns: the loop thread fills the open one while the write
 * thread writes the other (in flight) to RocksDB, WAL unsynced. When it is
 * written the thread posts the result and wakes the loop with a uv_async_t;
 * the loop empties it and kicks again, so the mutations gathered meanwhile
 * leave at once as one batch. Nothing that touches the disk runs on the loop
 * thread.
 *
 * Under COMMIT_ALWAYS durability comes from the sync thread: whenever a
 * batch has been written since its last sync, it notes the highest written
 * batch number, syncs the WAL (RocksDB's SyncWAL: an fdatasync of the WAL
 * files that does not block writes) and posts that number as durable. A sync
 * covers every write that returned before it began, and a batch's number is
 * published to the sync thread only after its write returned, so a number the
 * sync thread takes before its sync is covered by it. So batch N+1 is written
 * while batch N is synced, and N+1's sync starts as soon as N's ends; several
 * batches written during one sync share the next. When no sync runs and the
 * loop has nothing waiting to be written (backlog_hint), the write thread
 * syncs its own batch instead and posts both with one wake-up: a lone
 * request then costs one thread hop each way, not three. Either way one sync
 * runs at a time (`syncing`). Under COMMIT_INTERVAL the sync thread syncs
 * when the timer asks; COMMIT_NONE never syncs.
 *
 * Locking: `mu` guards the job and result fields (the hand-offs between the
 * threads) and the latency histogram; everything else is the loop thread's
 * alone. The in-flight batch belongs to the write thread from the hand-off
 * until its result is collected; the mutex orders both transfers.
 *
 * Failure is final: once a write or a sync fails, the failure is reported
 * through the done callback, no later batch is written or synced, and nothing
 * not yet durable is acknowledged. Retrying would acknowledge data that may
 * sit on a disk that just lost some.
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
#define HIST_SUB      (1u << HIST_SUB_BITS)
/* Highest bit of a recorded value: 2^40 us is ~12.7 days, longer is clamped
 * (a write that slow has long been reported by other means). */
#define HIST_MAX_MSB 39
#define HIST_MAX_US  (((uint64_t)1 << (HIST_MAX_MSB + 1)) - 1)
#define HIST_BUCKETS ((HIST_MAX_MSB - HIST_SUB_BITS) * HIST_SUB + 2 * HIST_SUB)

typedef struct hist {
  uint64_t n[HIST_BUCKETS];
  uint64_t count;
  uint64_t max;
} hist_t;

/* A write's outcome, posted by the write thread under mu. */
typedef struct wresult {
  int ready;
  int status;
  char *err;   /* malloc'd, or NULL (then "out of memory") */
  uint64_t us; /* write latency */
} wresult_t;

/* The syncs' outcome since the loop last collected, posted by the sync
 * thread under mu. Several syncs may finish before the loop runs; they merge
 * (the covered number only grows, and a failure stays). */
typedef struct sresult {
  int ready;
  int status;
  char *err;        /* of the first failure; malloc'd, or NULL */
  uint64_t covered; /* COMMIT_ALWAYS: batches up to this one are synced */
  uint64_t syncs;   /* successful syncs merged in */
} sresult_t;

struct commit {
  uv_loop_t *loop;
  store_t *store;
  commit_policy_t policy;
  unsigned interval_ms;
  commit_done_cb cb;
  int manual_kick; /* 1: the owner kicks (after a done callback too) */
  void *ctx;

  /* ---- loop thread only ---- */
  store_batch_t *open;   /* where mutations go */
  store_batch_t *flight; /* owned by the write thread while in_flight */
  uint64_t open_no;      /* number open will get */
  uint64_t flight_no;
  uint64_t written_no; /* highest batch written (collected) */
  uint64_t durable_no;
  uint64_t open_requests, flight_requests;
  int in_flight;          /* a write job is out */
  int sync_in_flight;     /* COMMIT_INTERVAL: a sync job is out */
  int written_since_sync; /* COMMIT_INTERVAL: a batch went out unsynced */
  int tick_missed;        /* COMMIT_INTERVAL: a tick found the last sync still out */
  int failed;             /* sticky: no batch is written after this */
  /* Set by the loop when a kick found the pipeline busy with mutations
   * waiting, cleared when it hands a batch off; read by the write thread to
   * choose between syncing inline and handing the sync off. */
  int backlog_hint;
  int closed;       /* commit_stop closed the handles */
  int handles_open; /* close callbacks still to come */
  uv_async_t async;
  uv_timer_t timer;
  commit_stats_t stats; /* counters only; percentiles come from hist */

  /* ---- one thread each ---- */
  uv_thread_t writer, syncer;

  /* ---- guarded by mu ---- */
  uv_mutex_t mu;
  uv_cond_t cv_write; /* the write thread waits for a job or stop */
  uv_cond_t cv_sync;  /* the sync thread waits for a write, a job or stop */
  uv_cond_t cv_done;  /* commit_stop waits for a result */
  int job_write, job_sync, stop;
  int broken;  /* a write or sync failed: refuse everything after */
  int syncing; /* COMMIT_ALWAYS: a WAL sync is running (either thread) */
  store_batch_t *job_batch;
  uint64_t job_no;
  uint64_t written_t;   /* COMMIT_ALWAYS: highest batch written, for the syncer */
  uint64_t synced_t;    /* COMMIT_ALWAYS: highest batch synced */
  uint64_t unsynced_t0; /* uv_hrtime when the oldest unsynced write began */
  uint64_t fault_at, sync_fault_at, syncs_tried;
  wresult_t res_write;
  sresult_t res_sync;
  hist_t hist; /* per-commit latency, see commit_stats_t */
};

/* ---- histogram ---- */

static unsigned hist_bucket(uint64_t v) {
  if (v > HIST_MAX_US)
    v = HIST_MAX_US;
  if (v < 2 * HIST_SUB)
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - HIST_SUB_BITS;
  return shift * HIST_SUB + (unsigned)(v >> shift);
}

/* The highest value that falls in bucket b. */
static uint64_t hist_top(unsigned b) {
  if (b < 2 * HIST_SUB)
    return b;
  unsigned shift = b / HIST_SUB - 1;
  uint64_t mant = b - shift * HIST_SUB;
  return ((mant + 1) << shift) - 1;
}

static void hist_add(hist_t *h, uint64_t v) {
  h->n[hist_bucket(v)]++;
  h->count++;
  if (v > h->max)
    h->max = v;
}

/* Value at quantile q (0..1], reported as the top of its bucket but never
 * above the exact maximum. */
static uint64_t hist_quantile(const hist_t *h, double q) {
  if (!h->count)
    return 0;
  uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > h->count)
    rank = h->count;
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

/* ---- the threads ---- */

/* A malloc'd "<what> at batch <no>", or NULL without memory. */
static char *thread_err(const char *what, uint64_t no) {
  char *e = NULL;
  if (asprintf(&e, "%s at batch %" PRIu64, what, no) < 0)
    e = NULL;
  return e;
}

/* Writes batch no with mu unlocked. Under COMMIT_ALWAYS the WAL is not
 * synced here: the sync thread does that, overlapping the next write. */
static wresult_t run_write(commit_t *c, store_batch_t *b, uint64_t no, int refused, int fault) {
  wresult_t r = {1, 0, NULL, 0};
  uint64_t t0 = uv_hrtime();
  if (refused) {
    r.status = -1;
    r.err = thread_err("write refused after an earlier commit failure", no);
  } else if (fault) {
    r.status = -1;
    r.err = thread_err("store write failed: injected fault", no);
  } else {
    r.status = store_write(c->store, b, 0, &r.err);
  }
  r.us = (uv_hrtime() - t0) / 1000;
  return r;
}

/* Syncs the WAL with mu unlocked: 0, or -1 with *err. */
static int run_sync(commit_t *c, int fault, char **err) {
  if (fault) {
    *err = strdup("store WAL sync failed: injected fault");
    return -1;
  }
#ifdef GBX_BROKEN_SKIP_SYNC
  /* deliberately broken build (tests/reliability): never syncs */
  (void)c;
  return 0;
#else
  return store_sync_wal(c->store, err);
#endif
}

/* Posts one sync's outcome (mu held); takes err. Batches up to target are
 * durable when st is 0; t0 is when the oldest write it covers began. */
static void post_sync(commit_t *c, int st, char *err, uint64_t target, uint64_t t0, uint64_t t1) {
  sresult_t *r = &c->res_sync;
  c->syncing = 0;
  r->ready = 1;
  if (st) {
    c->broken = 1;
    if (!r->status) {
      r->status = -1;
      r->err = err;
      err = NULL;
    }
  } else {
    r->syncs++;
    if (c->policy == COMMIT_ALWAYS) {
      c->synced_t = target;
      if (target > r->covered)
        r->covered = target;
      if (t0)
        hist_add(&c->hist, (t1 - t0) / 1000);
    }
  }
  free(err);
}

/* Wakes whoever waits for a posted result (and the sync thread for a
 * written batch) with mu unlocked: a thread woken while mu is held would
 * block on it at once and need a second wake-up when it is released. The
 * state the woken thread checks was changed under mu, so no wake-up is lost. */
static void wake(commit_t *c, int sync) {
  if (sync)
    uv_cond_signal(&c->cv_sync);
  uv_cond_signal(&c->cv_done);
  uv_async_send(&c->async);
}

static void writer_main(void *arg) {
  commit_t *c = arg;
  uv_mutex_lock(&c->mu);
  for (;;) {
    while (!c->job_write && !c->stop)
      uv_cond_wait(&c->cv_write, &c->mu);
    if (!c->job_write)
      break; /* stop, and no job left */
    store_batch_t *b = c->job_batch;
    uint64_t no = c->job_no;
    int refused = c->broken;
    int fault = c->fault_at != 0 && c->fault_at == no;
    uv_mutex_unlock(&c->mu);
    uint64_t t0 = uv_hrtime();
    wresult_t r = run_write(c, b, no, refused, fault);
    int wake_sync = 0;
    uv_mutex_lock(&c->mu);
    if (r.status) {
      c->broken = 1;
    } else if (c->policy == COMMIT_ALWAYS) {
      /* Published only now that the write returned: a sync that takes this
       * number begins after the write and so covers it. */
      c->written_t = no;
      if (!c->unsynced_t0)
        c->unsynced_t0 = t0;
      if (!c->syncing && !c->broken && !c->job_sync && !c->stop &&
          !__atomic_load_n(&c->backlog_hint, __ATOMIC_RELAXED)) {
        /* Nothing waits to be written and no sync runs: sync here, and
         * post the write and the sync with one wake-up. A hand-off to the
         * sync thread would only add a thread hop to this batch's latency;
         * under load (a backlog) the hand-off lets the next write overlap
         * this sync instead. */
        uint64_t ut0 = c->unsynced_t0;
        int fault = c->sync_fault_at != 0 && ++c->syncs_tried == c->sync_fault_at;
        c->syncing = 1;
        c->unsynced_t0 = 0;
        uv_mutex_unlock(&c->mu);
        char *err = NULL;
        int st = run_sync(c, fault, &err);
        uint64_t t1 = uv_hrtime();
        uv_mutex_lock(&c->mu);
        post_sync(c, st, err, no, ut0, t1);
      } else {
        wake_sync = 1;
      }
    }
    c->job_write = 0;
    c->res_write = r;
    uv_mutex_unlock(&c->mu);
    wake(c, wake_sync);
    uv_mutex_lock(&c->mu);
  }
  uv_mutex_unlock(&c->mu);
}

/* Whether the sync thread has a sync to do now (mu held). */
static int sync_due(const commit_t *c) {
  if (c->job_sync)
    return 1; /* answered even when broken: with a refusal */
  if (c->broken || c->syncing)
    return 0;
  return c->policy == COMMIT_ALWAYS && c->written_t > c->synced_t;
}

static void syncer_main(void *arg) {
  commit_t *c = arg;
  uv_mutex_lock(&c->mu);
  for (;;) {
    while (!sync_due(c) && !c->stop)
      uv_cond_wait(&c->cv_sync, &c->mu);
    if (!sync_due(c))
      break; /* stop, and nothing left to sync */
    /* Everything written up to now is what this sync covers. */
    uint64_t target = c->written_t, t0 = c->unsynced_t0;
    int refused = c->broken;
    c->syncing = c->policy == COMMIT_ALWAYS;
    c->unsynced_t0 = 0;
    c->job_sync = 0;
    int fault = c->sync_fault_at != 0 && ++c->syncs_tried == c->sync_fault_at;
    uv_mutex_unlock(&c->mu);
    char *err = NULL;
    int st;
    if (refused) {
      st = -1;
      err = strdup("WAL sync refused: an earlier commit failed");
    } else {
      st = run_sync(c, fault, &err);
    }
    uint64_t t1 = uv_hrtime();
    uv_mutex_lock(&c->mu);
    post_sync(c, st, err, target, t0, t1);
    uv_mutex_unlock(&c->mu);
    wake(c, 0);
    uv_mutex_lock(&c->mu);
  }
  uv_mutex_unlock(&c->mu);
}

/* ---- loop thread ---- */

/* Whether anything handed off is not yet reported back. */
static int busy(const commit_t *c) {
  if (c->in_flight || c->sync_in_flight)
    return 1;
  return c->policy == COMMIT_ALWAYS && !c->failed && c->written_no > c->durable_no;
}

/* The pipeline keeps the loop alive exactly while a job is out. */
static void update_ref(commit_t *c) {
  if (c->closed)
    return;
  if (busy(c))
    uv_ref((uv_handle_t *)&c->async);
  else
    uv_unref((uv_handle_t *)&c->async);
}

/* Reports the first failure; later ones are consequences of it. */
static void fail(commit_t *c, const char *err) {
  if (c->failed)
    return;
  c->failed = 1;
  c->cb(c->ctx, c->durable_no, -1, err ? err : "commit failed: out of memory");
}

/* Batches up to no are durable: report them. */
static void make_durable(commit_t *c, uint64_t no) {
  if (c->failed || no <= c->durable_no)
    return;
  c->durable_no = no;
  update_ref(c);
  c->cb(c->ctx, c->durable_no, 0, NULL);
}

static void queue_sync(commit_t *c);

static void collect(commit_t *c) {
  wresult_t w;
  sresult_t s;
  uv_mutex_lock(&c->mu);
  w = c->res_write;
  s = c->res_sync;
  memset(&c->res_write, 0, sizeof c->res_write);
  memset(&c->res_sync, 0, sizeof c->res_sync);
  uv_mutex_unlock(&c->mu);

  /* The write first: a sync result never covers a write not yet posted
   * (the write thread posts under the same lock it publishes the number). */
  if (w.ready) {
    assert(c->in_flight);
    c->in_flight = 0;
    int ok = w.status == 0 && !c->failed;
    int ignored = 0;
#ifdef GBX_BROKEN_IGNORE_SYNC_ERROR
    /* deliberately broken build (tests/reliability): the first failed write
     * or sync is reported durable, so the replies held on it are sent; the
     * threads refuse the next batch, whose failure then stops the server */
    static int ignored_write;
    if (w.status != 0 && !c->failed && !ignored_write)
      ok = ignored = ignored_write = 1;
#endif
    if (ok) {
      c->written_no = c->flight_no;
      c->stats.batches++;
      c->stats.ops += store_batch_count(c->flight);
      c->stats.requests += c->flight_requests;
      store_batch_clear(c->flight);
      c->flight_requests = 0;
      if (c->policy != COMMIT_ALWAYS || ignored) {
        if (c->policy == COMMIT_INTERVAL)
          c->written_since_sync = 1;
        uv_mutex_lock(&c->mu);
        if (c->policy != COMMIT_ALWAYS)
          hist_add(&c->hist, w.us);
        uv_mutex_unlock(&c->mu);
        c->stats.commits++;
        make_durable(c, c->written_no);
      }
      update_ref(c);
    } else {
      store_batch_clear(c->flight);
      c->flight_requests = 0;
      fail(c, w.err);
      update_ref(c);
    }
  }
  if (s.ready) {
    if (c->policy != COMMIT_ALWAYS && c->sync_in_flight)
      c->sync_in_flight = 0;
    int ok = s.status == 0;
#ifdef GBX_BROKEN_IGNORE_SYNC_ERROR
    static int ignored_sync; /* deliberately broken build: see the write above */
    if (!ok && !ignored_sync) {
      ok = ignored_sync = 1;
      if (c->policy == COMMIT_ALWAYS)
        s.covered = c->written_no;
    }
#endif
    c->stats.wal_syncs += s.syncs;
    if (c->policy == COMMIT_ALWAYS)
      c->stats.commits += s.syncs;
    /* Successful syncs merged with a later failure still covered what they
     * covered: those batches are durable, and reported before the failure. */
    if (c->policy == COMMIT_ALWAYS)
      make_durable(c, s.covered);
    if (!ok)
      fail(c, s.err);
    /* a sync slower than the interval made a tick skip: what was written
     * since it began is synced now, not a whole interval later */
    if (c->policy == COMMIT_INTERVAL && c->tick_missed && !c->failed && c->written_since_sync)
      queue_sync(c);
    c->tick_missed = 0;
    update_ref(c);
  }
  free(w.err);
  free(s.err);
}

static void async_cb(uv_async_t *h) {
  commit_t *c = h->data;
  collect(c);
  if (!c->manual_kick)
    commit_kick(c);
}

void commit_set_manual_kick(commit_t *c, int on) {
  c->manual_kick = on != 0;
}

/* COMMIT_INTERVAL: asks the sync thread for one WAL sync. */
static void queue_sync(commit_t *c) {
  c->written_since_sync = 0;
  c->sync_in_flight = 1;
  uv_mutex_lock(&c->mu);
  c->job_sync = 1;
  uv_mutex_unlock(&c->mu);
  uv_cond_signal(&c->cv_sync); /* unlocked: see wake() */
  update_ref(c);
}

static void timer_cb(uv_timer_t *h) {
  commit_t *c = h->data;
  if (c->sync_in_flight)
    c->tick_missed = 1;
  else if (!c->failed && c->written_since_sync)
    queue_sync(c);
}

static void destroy_sync(commit_t *c) {
  uv_cond_destroy(&c->cv_done);
  uv_cond_destroy(&c->cv_sync);
  uv_cond_destroy(&c->cv_write);
  uv_mutex_destroy(&c->mu);
}

static void close_cb(uv_handle_t *h) {
  commit_t *c = h->data;
  if (--c->handles_open > 0)
    return;
  destroy_sync(c);
  store_batch_free(c->open);
  store_batch_free(c->flight);
  free(c->res_write.err);
  free(c->res_sync.err);
  free(c);
}

/* Tells the threads to finish their jobs and exit, and waits for them. */
static void stop_threads(commit_t *c, int writer, int syncer) {
  uv_mutex_lock(&c->mu);
  c->stop = 1;
  uv_cond_signal(&c->cv_write);
  uv_cond_signal(&c->cv_sync);
  uv_mutex_unlock(&c->mu);
  if (writer)
    uv_thread_join(&c->writer);
  if (syncer)
    uv_thread_join(&c->syncer);
}

commit_t *commit_start(uv_loop_t *loop, store_t *store, commit_policy_t policy,
                       unsigned interval_ms, commit_done_cb cb, void *ctx, char **err) {
  commit_t *c = NULL;
  int have_sync = 0, have_writer = 0, have_syncer = 0;
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
  if (!c)
    goto fail;
  c->loop = loop;
  c->store = store;
  c->policy = policy;
  c->interval_ms = interval_ms;
  c->cb = cb;
  c->ctx = ctx;
  c->open_no = 1;
  c->open = store_batch_new(store);
  c->flight = store_batch_new(store);
  if (!c->open || !c->flight)
    goto fail;
  why = "cannot create the commit threads' mutex and condition variables";
  if (uv_mutex_init(&c->mu) != 0)
    goto fail;
  if (uv_cond_init(&c->cv_write) != 0) {
    uv_mutex_destroy(&c->mu);
    goto fail;
  }
  if (uv_cond_init(&c->cv_sync) != 0) {
    uv_cond_destroy(&c->cv_write);
    uv_mutex_destroy(&c->mu);
    goto fail;
  }
  if (uv_cond_init(&c->cv_done) != 0) {
    uv_cond_destroy(&c->cv_sync);
    uv_cond_destroy(&c->cv_write);
    uv_mutex_destroy(&c->mu);
    goto fail;
  }
  have_sync = 1;
  /* The threads first: they touch the async handle only once they have a
   * job, and a thread can be stopped here, while a handle registered with
   * the loop could only be closed through a later loop run. */
  why = "cannot start the commit threads";
  if (uv_thread_create(&c->writer, writer_main, c) != 0)
    goto fail;
  have_writer = 1;
  if (policy != COMMIT_NONE) {
    if (uv_thread_create(&c->syncer, syncer_main, c) != 0)
      goto fail;
    have_syncer = 1;
  }
  why = "cannot create the commit threads' wake-up handle";
  c->async.data = c;
  if (uv_async_init(loop, &c->async, async_cb) != 0)
    goto fail;
  uv_unref((uv_handle_t *)&c->async);
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->handles_open = 2;
  if (policy == COMMIT_INTERVAL)
    uv_timer_start(&c->timer, timer_cb, interval_ms, interval_ms);
  /* A periodic sync must not keep an otherwise idle loop running. */
  uv_unref((uv_handle_t *)&c->timer);
  return c;

fail:
  if (c) {
    if (have_writer || have_syncer)
      stop_threads(c, have_writer, have_syncer);
    if (have_sync)
      destroy_sync(c);
    store_batch_free(c->open);
    store_batch_free(c->flight);
    free(c);
  }
  if (err)
    *err = strdup(why);
  return NULL;
}

store_batch_t *commit_batch(commit_t *c) {
  return c->open;
}

uint64_t commit_open_no(const commit_t *c) {
  return c->open_no;
}

uint64_t commit_durable_no(const commit_t *c) {
  return c->durable_no;
}

int commit_dirty(const commit_t *c) {
  return store_batch_count(c->open) != 0;
}

void commit_note_request(commit_t *c) {
  c->open_requests++;
}

void commit_kick(commit_t *c) {
  assert(!c->closed);
  if (c->failed || store_batch_count(c->open) == 0)
    return;
  if (c->in_flight) {
    __atomic_store_n(&c->backlog_hint, 1, __ATOMIC_RELAXED);
    return;
  }
  __atomic_store_n(&c->backlog_hint, 0, __ATOMIC_RELAXED);
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
  uv_mutex_unlock(&c->mu);
  uv_cond_signal(&c->cv_write); /* unlocked: see wake() */
  update_ref(c);
}

int commit_stop(commit_t *c) {
  assert(!c->closed);
  commit_kick(c);
  for (;;) {
    if (!busy(c)) {
      if (c->failed)
        break;
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
    while (!c->res_write.ready && !c->res_sync.ready)
      uv_cond_wait(&c->cv_done, &c->mu);
    uv_mutex_unlock(&c->mu);
    collect(c);
    if (!c->failed)
      commit_kick(c);
  }
  stop_threads(c, 1, c->policy != COMMIT_NONE);
  int rc = c->failed ? -1 : 0;
  c->closed = 1;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, close_cb);
  uv_close((uv_handle_t *)&c->async, close_cb);
  return rc;
}

void commit_get_stats(const commit_t *c, commit_stats_t *out) {
  *out = c->stats;
  uv_mutex_lock((uv_mutex_t *)&c->mu);
  out->p50_us = hist_quantile(&c->hist, 0.50);
  out->p99_us = hist_quantile(&c->hist, 0.99);
  out->max_us = c->hist.max;
  uv_mutex_unlock((uv_mutex_t *)&c->mu);
}

void commit_set_fault(commit_t *c, uint64_t fail_at_batch) {
  uv_mutex_lock(&c->mu);
  c->fault_at = fail_at_batch;
  uv_mutex_unlock(&c->mu);
}

void commit_set_sync_fault(commit_t *c, uint64_t fail_at_sync) {
  uv_mutex_lock(&c->mu);
  c->sync_fault_at = fail_at_sync;
  c->syncs_tried = 0;
  uv_mutex_unlock(&c->mu);
}
