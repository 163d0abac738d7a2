/* store.h - the one module that owns RocksDB (the only file that includes
 * rocksdb/c.h). Everything else sees opaque handles and byte keys.
 *
 * Column families (see docs/ARCHITECTURE.md for the key layout):
 *   STORE_CF_META  queue records, id keys, counters, markers
 *   STORE_CF_IDX   one small record per queued message (state, never the body)
 *   STORE_CF_BODY  bodies + attributes, written once, removed with SingleDelete
 * Start-up reads META and IDX only.
 */
#ifndef GBX_STORE_H
#define GBX_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;
typedef struct store_batch store_batch_t;

typedef enum store_cf {
  STORE_CF_META = 0,
  STORE_CF_IDX = 1,
  STORE_CF_BODY = 2,
  STORE_CF_COUNT
} store_cf_t;

typedef struct store_opts {
  size_t block_cache_bytes; /* 0: a sensible default (64 MiB) */
  int create_if_missing;    /* 1: create an empty store */
  /* Called once, right after RocksDB recovered the store and before
   * anything is flushed, with the latest sequence it recovered (what the
   * clean-stop check compares). Non-zero (with *err malloc'd) fails the
   * open. NULL: none. */
  int (*recovered)(void *ud, uint64_t seq, char **err);
  void *recovered_ud;
} store_opts_t;

/* Opens (creating if asked) the store in dir with the three column families,
 * WAL recovery mode kTolerateCorruptedTailRecords (corruption in the middle of
 * the WAL refuses to open), files owner-only (the directory is made 0700; file
 * modes come from the process umask, 077 in gearboxd). opts NULL: defaults,
 * no creation. Returns 0, or -1 with *err set to a malloc'd message the
 * caller frees ("cannot open store in DIR: <reason>"). */
int store_open(store_t **out, const char *dir, const store_opts_t *opts, char **err);
/* Closes. Flushes nothing (RocksDB's Close leaves the memtables to the WAL):
 * a clean stop calls store_flush first. */
void store_close(store_t *s);

/* ---- write batches (owned by the caller; not thread-safe per batch) ---- */
/* A new empty batch bound to s (RocksDB needs the column family handles when
 * an operation is added); it must be written to s only and freed before
 * store_close(s). Returns NULL when out of memory. */
store_batch_t *store_batch_new(store_t *s);
/* Frees b (NULL is allowed). */
void store_batch_free(store_batch_t *b);
/* Empties b for reuse, keeping its allocation. */
void store_batch_clear(store_batch_t *b);
/* Number of operations in the batch and the bytes of its representation. */
size_t store_batch_count(const store_batch_t *b);
size_t store_batch_bytes(const store_batch_t *b);
/* Adds a put of k=v to cf; the bytes are copied into the batch. */
void store_batch_put(store_batch_t *b, store_cf_t cf, const void *k, size_t kl, const void *v,
                     size_t vl);
/* Adds a delete of k from cf (a no-op at write time when k is absent). */
void store_batch_delete(store_batch_t *b, store_cf_t cf, const void *k, size_t kl);
/* For keys written exactly once (bodies): cheaper tombstones. */
void store_batch_single_delete(store_batch_t *b, store_cf_t cf, const void *k, size_t kl);
/* Deletes [start, end) in one range tombstone (purge, queue deletion). Not
 * on STORE_CF_BODY (its memtable insert hints, see store.c): that is a
 * caller's bug and aborts. */
void store_batch_delete_range(store_batch_t *b, store_cf_t cf, const void *start, size_t sl,
                              const void *end, size_t el);

/* Writes the batch atomically; sync=1 syncs the WAL before returning. Safe to
 * call from one commit thread while other threads call store_get. Returns 0 or
 * -1 with *err (malloc'd). */
int store_write(store_t *s, store_batch_t *b, int sync, char **err);
/* Syncs the WAL files (fdatasync, and the directory for a new one): every
 * write that returned before this call began is durable when it returns 0.
 * Safe on one thread while another calls store_write (RocksDB's SyncWAL
 * syncs what was already handed to the OS and does not block writers).
 * Returns 0 or -1 with *err. */
int store_sync_wal(store_t *s, char **err);

/* Flushes every column family's memtable to a table file and waits: the
 * WAL behind them becomes obsolete (a clean stop, so the next start replays
 * nothing). A flush drops writes that cancel out (a put and its
 * SingleDelete), so the sequence a later open recovers may then be lower
 * than store_latest_seq: write something after it. Returns 0 or -1 with
 * *err. */
int store_flush(store_t *s, char **err);

/* Point read (thread-safe). Returns 1 and a malloc'd *val (caller frees; one
 * NUL byte past *vl for convenience) when found, 0 when absent (*val NULL),
 * -1 with *err on error. */
int store_get(store_t *s, store_cf_t cf, const void *k, size_t kl, char **val, size_t *vl,
              char **err);

/* Iterates keys in [lo, hi) of cf in order (hi may be NULL: to the end),
 * calling cb for each; cb returns 0 to continue, non-zero to stop (that value
 * is returned). Returns 0 when done, or -1 with *err on a read error. The
 * key/value pointers are valid only during the callback. */
typedef int (*store_scan_cb)(void *ctx, const char *k, size_t kl, const char *v, size_t vl);
int store_scan(store_t *s, store_cf_t cf, const void *lo, size_t ll, const void *hi, size_t hl,
               store_scan_cb cb, void *ctx, char **err);

/* Creates a RocksDB checkpoint (a consistent copy, hard-linked where
 * possible) in dir, which must not exist. Safe while serving. */
int store_checkpoint(store_t *s, const char *dir, char **err);
/* RocksDB's latest sequence number (each written operation takes one). */
uint64_t store_latest_seq(store_t *s);
/* The latest sequence number the open recovered from the WAL, before
 * anything was written: what a clean stop's sequence is checked against. */
uint64_t store_recovered_seq(const store_t *s);
/* Approximate bytes on disk: all SST files of the three column families plus
 * the WAL (*.log) files. For stats; does a directory scan, not per request. */
uint64_t store_disk_bytes(store_t *s);

#endif
