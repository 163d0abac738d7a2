/* store.c - see store.h. The only file that includes rocksdb/c.h: it turns
 * RocksDB's handles, options and error strings into the small store_* API.
 *
 * Tuning is for a queue workload on a small machine: every message is written
 * once (body), updated a few times (idx) and deleted soon after, so the idx
 * column family churns through tombstones and gets a compact-on-deletion
 * collector, while the body column family is read by point lookups and gets
 * bloom filters. One LRU block cache is shared by all column families.
 */
#define _GNU_SOURCE
#include "store.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "fdlimit.h"

/* Block cache when the caller gives none: holds the hot index blocks, filters
 * and recently read bodies without crowding out the page cache. */
#define STORE_DEFAULT_CACHE_BYTES ((size_t)64 << 20)
/* Memtable size for idx and body: large enough that a burst of sends and
 * deletes meets (and cancels) in memory before reaching L0. */
#define STORE_MEMTABLE_BYTES ((size_t)64 << 20)
/* Sealed idx memtables waiting for (or in) their flush before RocksDB stops
 * writes. A vector memtable is sorted by its flush, so a flush takes longer
 * than a skip list's: with RocksDB's default of 2, a fan-out burst stopped
 * writes until it ended (its LOG: "Stopping writes because we have 2
 * immutable memtables"). */
#define STORE_IDX_MEMTABLES 3
/* META holds queue records and counters: small, rarely written. */
#define STORE_META_MEMTABLE_BYTES ((size_t)8 << 20)
/* Flushes and compactions share two background jobs: the machine has 2 cores
 * and the loop thread plus the commit thread need them too. */
#define STORE_BACKGROUND_JOBS 2
/* The WAL is kept until every column family has flushed the data it holds;
 * past this size RocksDB flushes the laggards (META, mostly: a counter
 * reservation now and then, and its 8 MiB memtable never fills), bounding
 * both disk use and the replay after a crash. One memtable's worth: at 256
 * MiB a steady churn of an empty queue kept ~256 MiB of WAL on disk (three
 * times its use at minute 2) and a start after a crash replayed it in ~4 s. */
#define STORE_MAX_TOTAL_WAL_BYTES ((uint64_t)64 << 20)
/* Old info LOG files kept: enough to read back the last few restarts. */
#define STORE_KEEP_LOG_FILES 5
/* Bloom filter precision for body point lookups: ~1% false positives. */
#define STORE_BLOOM_BITS_PER_KEY 10.0
/* Compact-on-deletion for idx: a file whose any 10,000-entry window holds
 * 5,000 tombstones is compacted, so scans at start-up do not wade through
 * dead records. */
#define STORE_DEL_WINDOW  10000
#define STORE_DEL_TRIGGER 5000
/* Sync SST writes every 1 MiB so a flush does not end in one huge fsync. */
#define STORE_BYTES_PER_SYNC ((uint64_t)1 << 20)
/* rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords: a torn last
 * record (crash mid-write) is dropped; corruption before it refuses to open. */
#define STORE_WAL_RECOVERY_TOLERATE_TAIL 0
/* rocksdb::InfoLogLevel::WARN_LEVEL. */
#define STORE_INFO_LOG_WARN 2

static const char *const cf_names[STORE_CF_COUNT] = {"default", "idx", "body"};

struct store {
  uint64_t recovered_seq; /* latest sequence right after the WAL recovery */
  rocksdb_t *db;
  rocksdb_column_family_handle_t *cf[STORE_CF_COUNT];
  rocksdb_cache_t *cache;
  rocksdb_writeoptions_t *wo_sync;
  rocksdb_writeoptions_t *wo_nosync;
  rocksdb_readoptions_t *ro_get; /* shared by store_get callers: never mutated after open */
  char *dir;
};

struct store_batch {
  store_t *s;
  rocksdb_writebatch_t *wb;
  size_t count;
};

/* A malloc'd message "<what>: <detail>" for *err; frees detail (a RocksDB
 * error string, may be NULL). Without memory for the whole message it falls
 * back to <what> alone, and to NULL only when even that cannot be had. */
static char *errmsg(char *detail, const char *fmt, ...) {
  char head[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(head, sizeof head, fmt, ap);
  va_end(ap);
  char *out = NULL;
  if (detail) {
    if (asprintf(&out, "%s: %s", head, detail) < 0)
      out = NULL;
  }
  if (!out)
    out = strdup(head);
  free(detail);
  return out;
}

static void set_err(char **err, char *msg) {
  if (err)
    *err = msg;
  else
    free(msg);
}

static rocksdb_options_t *db_options(const store_opts_t *opts) {
  rocksdb_options_t *o = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(o, opts->create_if_missing ? 1 : 0);
  rocksdb_options_set_create_missing_column_families(o, opts->create_if_missing ? 1 : 0);
  rocksdb_options_set_wal_recovery_mode(o, STORE_WAL_RECOVERY_TOLERATE_TAIL);
  rocksdb_options_set_paranoid_checks(o, 1);
  rocksdb_options_set_max_background_jobs(o, STORE_BACKGROUND_JOBS);
  /* idx's vector memtable takes one writer at a time (cf_options); there is
   * one writing thread anyway (commit.c). */
  rocksdb_options_set_allow_concurrent_memtable_write(o, 0);
  rocksdb_options_set_max_total_wal_size(o, STORE_MAX_TOTAL_WAL_BYTES);
  rocksdb_options_set_keep_log_file_num(o, STORE_KEEP_LOG_FILES);
  rocksdb_options_set_info_log_level(o, STORE_INFO_LOG_WARN);
  rocksdb_options_set_bytes_per_sync(o, STORE_BYTES_PER_SYNC);
  /* RocksDB's default keeps every SST open (max_open_files -1), so a large
   * store would take the descriptors the connection cap keeps in reserve
   * and fail a flush with EMFILE, stopping the server. Half the reserve
   * (fdlimit.h) for the table cache; the other half covers the WAL,
   * MANIFEST, LOG, compaction outputs and the rest of the process. */
  fdlimit_t fl;
  fdlimit_get(&fl);
  rocksdb_options_set_max_open_files(o, fl.store_files);
  /* Keep the WAL through recovery instead of flushing it inside Open: a
   * flush drops writes that cancel out (a body put + SingleDelete), after
   * which RocksDB reports a lower latest sequence, so a crash right after an
   * open would make the next start's clean-stop check (opts->recovered)
   * refuse a healthy store. store_open flushes once that check has run. No
   * setter in the C API: the option-string parser. */
  rocksdb_options_t *n = rocksdb_options_create();
  char *rerr = NULL;
  rocksdb_get_options_from_string(o, "avoid_flush_during_recovery=true", n, &rerr);
  rocksdb_options_destroy(o);
  if (rerr) { /* RocksDB has had the option since 5.x: refuse rather than run without */
    rocksdb_free(rerr);
    rocksdb_options_destroy(n);
    return NULL;
  }
  return n;
}

/* Memtable layout. idx is written far more than anything else (a send, a
 * receive and a delete each write one idx record; a fan-out to 10 queues
 * writes 10) and is read only by the scan at start-up (which reads files:
 * store_open flushes first), never by a point lookup. Its memtable is
 * therefore RocksDB's vector: an insert appends a pointer, and the sort
 * happens once, in the flush, on a background thread. In a skip list
 * every insert searched for its place: ~35% of the write thread's time
 * under W4 even with insert hints, and the write thread was what bound
 * fan-out (bench/RESULTS.md, "Seventh session"). A vector memtable keeps no
 * insert hints, so idx range tombstones may have any bounds.
 *
 * body stays a skip list: it is read by point lookups (fetch.c), which a
 * vector memtable would answer by sorting a copy of itself. Its inserts are
 * nearly in key order (body ids grow) and get insert hints: RocksDB keeps a
 * skip-list position per key prefix (a body id's first byte), so an insert
 * walks up from there instead of searching from the top. RocksDB 7.8 shares
 * one hint map between a family's memtable and its range-tombstone
 * memtable, so a range tombstone on body would follow a hint into the wrong
 * skip list and corrupt it: body never gets one (store_batch_delete_range
 * enforces it). The C API has no setter: the option-string parser. */
static const char *const cf_hint_opts[STORE_CF_COUNT] = {
    NULL,
    NULL,
    "memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.1",
};

/* Returns o with the family's insert hints set (a new options object; o is
 * destroyed), or o unchanged if RocksDB refuses the string. */
static rocksdb_options_t *with_insert_hints(rocksdb_options_t *o, store_cf_t cf) {
  if (!cf_hint_opts[cf])
    return o;
  rocksdb_options_t *n = rocksdb_options_create();
  char *rerr = NULL;
  rocksdb_get_options_from_string(o, cf_hint_opts[cf], n, &rerr);
  if (rerr) { /* only a speed-up: run without it */
    rocksdb_free(rerr);
    rocksdb_options_destroy(n);
    return o;
  }
  rocksdb_options_destroy(o);
  return n;
}

/* Flushes every column family's memtable and waits; NULL, or RocksDB's
 * error string. */
static char *flush_all(store_t *s) {
  char *rerr = NULL;
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, 1);
  for (int i = 0; i < STORE_CF_COUNT && !rerr; i++)
    rocksdb_flush_cf(s->db, fo, s->cf[i], &rerr);
  rocksdb_flushoptions_destroy(fo);
  return rerr;
}

/* Options of one column family; the table options are copied into the
 * factory, the cache and filter policy are reference-counted by RocksDB. */
static rocksdb_options_t *cf_options(store_cf_t cf, rocksdb_cache_t *cache) {
  rocksdb_options_t *o = rocksdb_options_create();
  rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
  rocksdb_block_based_options_set_block_cache(t, cache);
  rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
  rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
  rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
  switch (cf) {
  case STORE_CF_META:
    rocksdb_options_set_write_buffer_size(o, STORE_META_MEMTABLE_BYTES);
    break;
  case STORE_CF_IDX:
    rocksdb_options_set_write_buffer_size(o, STORE_MEMTABLE_BYTES);
    rocksdb_options_set_memtable_vector_rep(o);
    rocksdb_options_set_max_write_buffer_number(o, STORE_IDX_MEMTABLES);
    rocksdb_options_add_compact_on_deletion_collector_factory(o, STORE_DEL_WINDOW,
                                                              STORE_DEL_TRIGGER);
    break;
  case STORE_CF_BODY:
    rocksdb_options_set_write_buffer_size(o, STORE_MEMTABLE_BYTES);
    /* Takes ownership of the policy. */
    rocksdb_block_based_options_set_filter_policy(
        t, rocksdb_filterpolicy_create_bloom_full(STORE_BLOOM_BITS_PER_KEY));
    break;
  default:
    assert(!"bad column family");
  }
  rocksdb_options_set_block_based_table_factory(o, t);
  rocksdb_block_based_options_destroy(t);
  return with_insert_hints(o, cf);
}

/* A file beside the store that builds which gave idx insert hints (up to
 * 71982c4) kept; nothing reads it now. Removed, so that such a build, if
 * run on the store again, recovers it as one it did not open last. */
#define OLD_HINTS_MARKER "IDX_HINTS"

static int has_current(const char *dir) {
  char p[PATH_MAX];
  struct stat st;
  return snprintf(p, sizeof p, "%s/CURRENT", dir) < (int)sizeof p && stat(p, &st) == 0;
}

/* 1 if dir holds files only a store that was opened has (tables, WAL
 * files): then a missing CURRENT is damage, not a new store. A MANIFEST
 * alone is not enough: a first start killed while RocksDB created the
 * store leaves one before CURRENT. */
static int holds_store_files(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int found = 0;
  while (d && !found && (e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    size_t digits = strspn(e->d_name, "0123456789"); /* RocksDB names them 000123.log */
    found = n > 4 && digits == n - 4 && digits > 0 &&
            (!strcmp(e->d_name + n - 4, ".sst") || !strcmp(e->d_name + n - 4, ".log"));
  }
  if (d)
    closedir(d);
  return found;
}

int store_open(store_t **out, const char *dir, const store_opts_t *opts, char **err) {
  static const store_opts_t defaults = {0};
  rocksdb_options_t *dbo = NULL;
  rocksdb_options_t *cfo[STORE_CF_COUNT] = {NULL};
  char *rerr = NULL;
  store_t *s = NULL;
  struct stat st;

  *out = NULL;
  if (!opts)
    opts = &defaults;
  if (!dir || !*dir) {
    set_err(err, errmsg(NULL, "cannot open store: empty directory name"));
    return -1;
  }
  s = calloc(1, sizeof *s);
  if (!s || !(s->dir = strdup(dir))) {
    set_err(err, errmsg(NULL, "cannot open store in %s: out of memory", dir));
    goto fail;
  }
  /* Owner-only directory. Only the last component is created; a failure
   * here (parent missing, not a directory, permissions) is left for RocksDB
   * to report, so the message names the real cause once. Without
   * create_if_missing a missing directory is refused here: RocksDB would
   * create it (and a LOG file in it) before noticing there is no store. */
  if (opts->create_if_missing) {
    (void)mkdir(dir, 0700);
    if (!has_current(dir) && holds_store_files(dir)) {
      set_err(err, errmsg(NULL,
                          "cannot open store in %s: it holds store files but no CURRENT, so it "
                          "is damaged, not new (creating an empty store there would serve "
                          "nothing of it); restore a backup",
                          dir));
      goto fail;
    }
  } else if (stat(dir, &st) != 0) {
    set_err(err, errmsg(NULL, "cannot open store in %s: %s", dir, strerror(errno)));
    goto fail;
  } else if (!S_ISDIR(st.st_mode)) {
    set_err(err, errmsg(NULL, "cannot open store in %s: not a directory", dir));
    goto fail;
  }
  s->cache = rocksdb_cache_create_lru(opts->block_cache_bytes ? opts->block_cache_bytes
                                                              : STORE_DEFAULT_CACHE_BYTES);
  if (!(dbo = db_options(opts))) {
    set_err(err, errmsg(NULL,
                        "cannot open store in %s: RocksDB refused the option "
                        "avoid_flush_during_recovery",
                        dir));
    goto fail;
  }
  for (int i = 0; i < STORE_CF_COUNT; i++)
    cfo[i] = cf_options((store_cf_t)i, s->cache);
  s->db = rocksdb_open_column_families(dbo, dir, STORE_CF_COUNT, cf_names,
                                       (const rocksdb_options_t *const *)cfo, s->cf, &rerr);
  if (rerr || !s->db) {
    set_err(err, errmsg(rerr, "cannot open store in %s", dir));
    rerr = NULL;
    s->db = NULL;
    goto fail;
  }
  /* What the WAL recovery found, checked before anything flushes: see
   * store_opts_t.recovered. */
  s->recovered_seq = rocksdb_get_latest_sequence_number(s->db);
  if (opts->recovered && opts->recovered(opts->recovered_ud, s->recovered_seq, err) != 0)
    goto fail;
  /* Now that the recovered sequence was checked, flush what the recovery
   * kept in memory, as RocksDB would have at open: the kept WAL would
   * otherwise be replayed again at every start after a crash. */
  if ((rerr = flush_all(s)) != NULL) {
    set_err(err, errmsg(rerr, "cannot open store in %s: flushing the recovered WAL", dir));
    rerr = NULL;
    goto fail;
  }
  char old_marker[PATH_MAX];
  if (snprintf(old_marker, sizeof old_marker, "%s/%s", dir, OLD_HINTS_MARKER) <
      (int)sizeof old_marker)
    (void)unlink(old_marker);
  s->wo_sync = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(s->wo_sync, 1);
  s->wo_nosync = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(s->wo_nosync, 0);
  s->ro_get = rocksdb_readoptions_create();
  rocksdb_readoptions_set_verify_checksums(s->ro_get, 1);

  rocksdb_options_destroy(dbo);
  for (int i = 0; i < STORE_CF_COUNT; i++)
    rocksdb_options_destroy(cfo[i]);
  *out = s;
  return 0;

fail:
  if (dbo)
    rocksdb_options_destroy(dbo);
  for (int i = 0; i < STORE_CF_COUNT; i++)
    if (cfo[i])
      rocksdb_options_destroy(cfo[i]);
  store_close(s);
  return -1;
}

void store_close(store_t *s) {
  if (!s)
    return;
  if (s->db) {
    for (int i = 0; i < STORE_CF_COUNT; i++)
      if (s->cf[i])
        rocksdb_column_family_handle_destroy(s->cf[i]);
    rocksdb_close(s->db);
  }
  if (s->wo_sync)
    rocksdb_writeoptions_destroy(s->wo_sync);
  if (s->wo_nosync)
    rocksdb_writeoptions_destroy(s->wo_nosync);
  if (s->ro_get)
    rocksdb_readoptions_destroy(s->ro_get);
  if (s->cache)
    rocksdb_cache_destroy(s->cache);
  free(s->dir);
  free(s);
}

/* ---- batches ---- */

static rocksdb_column_family_handle_t *cf_handle(const store_batch_t *b, store_cf_t cf) {
  assert(b && b->s && (unsigned)cf < STORE_CF_COUNT);
  return b->s->cf[cf];
}

store_batch_t *store_batch_new(store_t *s) {
  assert(s);
  store_batch_t *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->s = s;
  b->wb = rocksdb_writebatch_create();
  return b;
}

void store_batch_free(store_batch_t *b) {
  if (!b)
    return;
  rocksdb_writebatch_destroy(b->wb);
  free(b);
}

void store_batch_clear(store_batch_t *b) {
  rocksdb_writebatch_clear(b->wb);
  b->count = 0;
}

size_t store_batch_count(const store_batch_t *b) {
  return b->count;
}

size_t store_batch_bytes(const store_batch_t *b) {
  size_t n = 0;
  /* rocksdb_writebatch_data only reads; the C API just lacks the const. */
  rocksdb_writebatch_data(b->wb, &n);
  return n;
}

void store_batch_put(store_batch_t *b, store_cf_t cf, const void *k, size_t kl, const void *v,
                     size_t vl) {
  rocksdb_writebatch_put_cf(b->wb, cf_handle(b, cf), k, kl, v, vl);
  b->count++;
}

void store_batch_delete(store_batch_t *b, store_cf_t cf, const void *k, size_t kl) {
  rocksdb_writebatch_delete_cf(b->wb, cf_handle(b, cf), k, kl);
  b->count++;
}

void store_batch_single_delete(store_batch_t *b, store_cf_t cf, const void *k, size_t kl) {
  rocksdb_writebatch_singledelete_cf(b->wb, cf_handle(b, cf), k, kl);
  b->count++;
}

void store_batch_delete_range(store_batch_t *b, store_cf_t cf, const void *start, size_t sl,
                              const void *end, size_t el) {
  /* A range tombstone on body would corrupt its hinted memtable (see
   * cf_hint_opts): a caller's bug, refused before it reaches RocksDB. */
  if (cf == STORE_CF_BODY) {
    fprintf(stderr, "store: range tombstone refused on column family %d\n", (int)cf);
    abort();
  }
  rocksdb_writebatch_delete_range_cf(b->wb, cf_handle(b, cf), start, sl, end, el);
  b->count++;
}

/* ---- writes ---- */

int store_write(store_t *s, store_batch_t *b, int sync, char **err) {
  char *rerr = NULL;
  assert(b->s == s);
  rocksdb_write(s->db, sync ? s->wo_sync : s->wo_nosync, b->wb, &rerr);
  if (rerr) {
    set_err(err, errmsg(rerr, "store write failed"));
    return -1;
  }
  return 0;
}

int store_sync_wal(store_t *s, char **err) {
  char *rerr = NULL;
  /* Without manual_wal_flush every write has already handed its WAL record
   * to the OS, and FlushWAL(sync) is SyncWAL: it notes the WAL files and
   * their flushed size under the DB mutex, then fdatasyncs them outside it
   * (SyncWithoutFlush), so concurrent writes go on and are simply not
   * covered. */
  rocksdb_flush_wal(s->db, 1, &rerr);
  if (rerr) {
    set_err(err, errmsg(rerr, "store WAL sync failed"));
    return -1;
  }
  return 0;
}

int store_flush(store_t *s, char **err) {
  char *rerr = flush_all(s);
  if (rerr) {
    set_err(err, errmsg(rerr, "store flush failed"));
    return -1;
  }
  return 0;
}

/* ---- reads ---- */

int store_get(store_t *s, store_cf_t cf, const void *k, size_t kl, char **val, size_t *vl,
              char **err) {
  char *rerr = NULL;
  assert((unsigned)cf < STORE_CF_COUNT);
  *val = NULL;
  *vl = 0;
  /* The pinned variant tells "absent" (NULL) from "empty value" cleanly and
   * lets us add a NUL terminator for callers that read text. */
  rocksdb_pinnableslice_t *p = rocksdb_get_pinned_cf(s->db, s->ro_get, s->cf[cf], k, kl, &rerr);
  if (rerr) {
    set_err(err, errmsg(rerr, "store read failed"));
    return -1;
  }
  if (!p)
    return 0;
  size_t n = 0;
  const char *data = rocksdb_pinnableslice_value(p, &n);
  char *copy = malloc(n + 1);
  if (!copy) {
    rocksdb_pinnableslice_destroy(p);
    set_err(err, errmsg(NULL, "store read: out of memory for %zu bytes", n));
    return -1;
  }
  if (n)
    memcpy(copy, data, n);
  copy[n] = '\0';
  rocksdb_pinnableslice_destroy(p);
  *val = copy;
  *vl = n;
  return 1;
}

int store_scan(store_t *s, store_cf_t cf, const void *lo, size_t ll, const void *hi, size_t hl,
               store_scan_cb cb, void *ctx, char **err) {
  char *rerr = NULL;
  int rc = 0;
  assert((unsigned)cf < STORE_CF_COUNT);
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_verify_checksums(ro, 1);
  /* A start-up scan touches every record once: keep it out of the cache. */
  rocksdb_readoptions_set_fill_cache(ro, 0);
  /* The C API copies the bound keys into the options object. */
  if (lo && ll)
    rocksdb_readoptions_set_iterate_lower_bound(ro, lo, ll);
  if (hi)
    rocksdb_readoptions_set_iterate_upper_bound(ro, hi, hl);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
  if (lo && ll)
    rocksdb_iter_seek(it, lo, ll);
  else
    rocksdb_iter_seek_to_first(it);
  for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl = 0, vl = 0;
    const char *k = rocksdb_iter_key(it, &kl);
    const char *v = rocksdb_iter_value(it, &vl);
    rc = cb(ctx, k, kl, v, vl);
    if (rc != 0)
      break;
  }
  if (rc == 0) {
    /* The loop also ends on a read error: only the status tells. */
    rocksdb_iter_get_error(it, &rerr);
    if (rerr) {
      set_err(err, errmsg(rerr, "store scan failed"));
      rc = -1;
    }
  }
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  return rc;
}

/* ---- maintenance ---- */

int store_checkpoint(store_t *s, const char *dir, char **err) {
  char *rerr = NULL;
  rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(s->db, &rerr);
  if (rerr) {
    set_err(err, errmsg(rerr, "cannot create checkpoint in %s", dir));
    return -1;
  }
  /* log_size_for_flush 0: flush the memtables first, so the checkpoint is
   * SST files only and opens without replaying a WAL. */
  rocksdb_checkpoint_create(cp, dir, 0, &rerr);
  rocksdb_checkpoint_object_destroy(cp);
  if (rerr) {
    set_err(err, errmsg(rerr, "cannot create checkpoint in %s", dir));
    return -1;
  }
  return 0;
}

/* Bytes of the WAL files (*.log) in the store directory. RocksDB's C API has
 * no WAL listing, and this is called for stats, not per request. */
static uint64_t wal_bytes(const char *dir) {
  uint64_t total = 0;
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int fd = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 4, ".log") != 0)
      continue;
    struct stat st;
    if (fstatat(fd, e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
      total += (uint64_t)st.st_size;
  }
  closedir(d);
  return total;
}

/* "rocksdb.total-sst-files-size" counts every SST file still on disk
 * (including ones only an old version or a checkpoint in progress holds),
 * which is what the disk sees; "live" would undercount during compactions. */
uint64_t store_disk_bytes(store_t *s) {
  uint64_t total = 0;
  for (int i = 0; i < STORE_CF_COUNT; i++) {
    uint64_t v = 0;
    if (rocksdb_property_int_cf(s->db, s->cf[i], "rocksdb.total-sst-files-size", &v) == 0)
      total += v;
  }
  return total + wal_bytes(s->dir);
}

uint64_t store_latest_seq(store_t *s) {
  return rocksdb_get_latest_sequence_number(s->db);
}

uint64_t store_recovered_seq(const store_t *s) {
  return s->recovered_seq;
}
