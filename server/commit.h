/* commit.h - the group-commit pipeline. A write thread with one batch in
 * flight and, for the sync policies, a sync thread: mutations made on the
 * loop thread gather into the open batch while the previous batch is written;
 * under COMMIT_ALWAYS the WAL sync of written batches overlaps the write of
 * the next. Batches reach the disk in order. The loop thread never waits on a
 * disk.
 *
 * Loop-thread API except where noted. Batch numbers start at 1 and increase;
 * "durable N" means batches 1..N are written (and synced, per policy).
 */
#ifndef GBX_COMMIT_H
#define GBX_COMMIT_H

#include <stdint.h>
#include <uv.h>

#include "store.h"

typedef enum commit_policy {
  COMMIT_ALWAYS = 0,   /* write, then a WAL sync begun after the write returned,
                         before a batch counts as durable */
  COMMIT_INTERVAL = 1, /* write before durable; sync the WAL every interval_ms */
  COMMIT_NONE = 2      /* write before durable; never sync (the OS decides) */
} commit_policy_t;

typedef struct commit commit_t;

/* Called on the loop thread after batch `durable` (and all before it) is
 * durable. status != 0: the write or sync failed; err describes it (valid
 * during the call); the server must stop acknowledging. */
typedef void (*commit_done_cb)(void *ctx, uint64_t durable, int status, const char *err);

typedef struct commit_stats {
  uint64_t batches;  /* batches written */
  uint64_t ops;      /* store operations written */
  uint64_t requests; /* requests acknowledged through commits (commit_note_request) */
  /* Commit latency. COMMIT_ALWAYS: one sample per WAL sync, from the start
   * of the write of the oldest batch it covers to the end of the sync (what
   * the earliest reply it releases waited for in the pipeline); other
   * policies: the write of a batch. */
  uint64_t p50_us, p99_us, max_us;
  uint64_t wal_syncs; /* WAL syncs done (COMMIT_ALWAYS and COMMIT_INTERVAL) */
  uint64_t commits;   /* durability points: WAL syncs under COMMIT_ALWAYS
                              (one may cover several batches), batches otherwise */
} commit_stats_t;

/* Starts the commit thread writing to store (which must outlive the
 * pipeline). interval_ms is used by COMMIT_INTERVAL only and must be > 0
 * there. cb runs on the loop thread; it may add mutations and call
 * commit_kick, but not commit_stop. Returns NULL with *err (malloc'd) on
 * failure. While a batch or a sync is in flight the pipeline holds the loop
 * alive; when idle it does not (its handles are unreferenced). */
commit_t *commit_start(uv_loop_t *loop, store_t *store, commit_policy_t policy,
                       unsigned interval_ms, commit_done_cb cb, void *ctx, char **err);
/* The open batch, where mutations go. Valid until the next commit_kick(). */
store_batch_t *commit_batch(commit_t *c);
/* Number the open batch will have when it commits. */
uint64_t commit_open_no(const commit_t *c);
/* Highest durable batch number (0 before the first). */
uint64_t commit_durable_no(const commit_t *c);
/* 1 if the open batch holds mutations. */
int commit_dirty(const commit_t *c);
/* Counts one acknowledged request riding in the open batch (for stats). */
void commit_note_request(commit_t *c);
/* Hands the open batch to the write thread if it is non-empty and no write
 * is in flight (a sync may be); otherwise does nothing (the done handler
 * kicks again). Call once per
 * loop iteration (from a uv_prepare_t) and from the done path. */
void commit_kick(commit_t *c);
/* With on = 1, a finished batch does not hand the next one off by itself:
 * the owner calls commit_kick (gearboxd does, once per loop iteration, so it
 * can linger for concurrent writers). Default 0. */
void commit_set_manual_kick(commit_t *c, int on);
/* Commits whatever is open (and, under COMMIT_INTERVAL, syncs the WAL),
 * waits for the thread to finish (blocking the loop thread: only at
 * shutdown, after the loop stopped taking work), stops it and closes its
 * handles; done callbacks for those last batches run inside this call.
 * Returns 0, or -1 if any write or sync of this pipeline failed. The caller
 * must then run the loop once more (uv_run with UV_RUN_DEFAULT or NOWAIT) so
 * the close callbacks fire; they free c, which must not be used after this. */
int commit_stop(commit_t *c);
/* Counters and batch latency percentiles (log-linear histogram, ~1.6%
 * precision) since commit_start. */
void commit_get_stats(const commit_t *c, commit_stats_t *out);
/* Fault seam for tests: the write of batch number fail_at_batch fails as if
 * RocksDB returned an error (nothing of it is written); 0 disarms. */
void commit_set_fault(commit_t *c, uint64_t fail_at_batch);
/* Fault seam for tests: the fail_at_sync-th WAL sync from now (1-based)
 * fails as if RocksDB returned an error; 0 disarms. */
void commit_set_sync_fault(commit_t *c, uint64_t fail_at_sync);

#endif
