/* test_store.c - the RocksDB store module: persistence, batch operations,
 * scans, column family isolation, checkpoints, errors and file modes. Each
 * test works in its own temp dir, removed afterwards. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"

typedef struct fixture {
  char tmp[64]; /* the test's temp dir */
  char db[128]; /* tmp/db */
  store_t *s;
} fixture_t;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (!f)
    return -1;
  strcpy(f->tmp, "/tmp/gbx-store-XXXXXX");
  if (!mkdtemp(f->tmp))
    return -1;
  snprintf(f->db, sizeof f->db, "%s/db", f->tmp);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  store_close(f->s);
  nftw(f->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static store_t *open_ok(const char *dir, int create) {
  store_opts_t o = {.create_if_missing = create};
  store_t *s = NULL;
  char *err = NULL;
  int rc = store_open(&s, dir, &o, &err);
  if (rc != 0)
    fail_msg("store_open(%s): %s", dir, err ? err : "?");
  assert_null(err);
  assert_non_null(s);
  return s;
}

static void write_ok(store_t *s, store_batch_t *b, int sync) {
  char *err = NULL;
  if (store_write(s, b, sync, &err) != 0)
    fail_msg("store_write: %s", err ? err : "?");
  store_batch_clear(b);
}

static void put_str(store_batch_t *b, store_cf_t cf, const char *k, const char *v) {
  store_batch_put(b, cf, k, strlen(k), v, strlen(v));
}

/* Asserts that k in cf holds v (v NULL: absent). */
static void expect(store_t *s, store_cf_t cf, const char *k, const char *v) {
  char *val = (char *)0x1, *err = NULL;
  size_t vl = 99;
  int rc = store_get(s, cf, k, strlen(k), &val, &vl, &err);
  assert_null(err);
  if (!v) {
    assert_int_equal(rc, 0);
    assert_null(val);
    assert_int_equal(vl, 0);
    return;
  }
  if (rc != 1)
    fail_msg("key %s: expected %s, got rc %d", k, v, rc);
  assert_int_equal(vl, strlen(v));
  assert_memory_equal(val, v, vl);
  assert_int_equal(val[vl], '\0');
  free(val);
}

static void test_reopen_persists(void **state) {
  fixture_t *f = *state;
  f->s = open_ok(f->db, 1);
  store_batch_t *b = store_batch_new(f->s);
  put_str(b, STORE_CF_META, "queue/a", "record-a");
  put_str(b, STORE_CF_BODY, "m1", "hello");
  write_ok(f->s, b, 1);
  put_str(b, STORE_CF_IDX, "m1", "state");
  write_ok(f->s, b, 0);
  store_batch_free(b);
  store_close(f->s);

  f->s = open_ok(f->db, 0);
  expect(f->s, STORE_CF_META, "queue/a", "record-a");
  expect(f->s, STORE_CF_BODY, "m1", "hello");
  expect(f->s, STORE_CF_IDX, "m1", "state");
  expect(f->s, STORE_CF_IDX, "m2", NULL);
}

static void test_open_missing_without_create(void **state) {
  fixture_t *f = *state;
  store_opts_t o = {.create_if_missing = 0};
  char *err = NULL;
  store_t *s = (store_t *)0x1;
  assert_int_equal(store_open(&s, f->db, &o, &err), -1);
  assert_null(s);
  assert_non_null(err);
  char want[200];
  snprintf(want, sizeof want, "cannot open store in %s: ", f->db);
  if (strncmp(err, want, strlen(want)) != 0)
    fail_msg("unexpected message: %s", err);
  free(err);
  struct stat st;
  assert_int_equal(stat(f->db, &st), -1); /* nothing was created */
}

/* Creates a store in dir holding one synced write (in its WAL only) and
 * closes it; returns the write's sequence. */
static uint64_t one_write_store(const char *dir) {
  store_t *s = open_ok(dir, 1);
  store_batch_t *b = store_batch_new(s);
  put_str(b, STORE_CF_META, "k", "v");
  write_ok(s, b, 1);
  store_batch_free(b);
  uint64_t last = store_latest_seq(s);
  store_close(s);
  return last;
}

/* A store whose CURRENT is gone is damaged, not new: it is refused with a
 * message that says so, and nothing is created. (RocksDB itself refuses to
 * create a store over a leftover WAL file, with a message about creating a
 * new store; gearboxd's check also covers tables without a WAL.) */
static void test_missing_current_refused(void **state) {
  fixture_t *f = *state;
  store_t *s;
  one_write_store(f->db);
  char cur[200];
  snprintf(cur, sizeof cur, "%s/CURRENT", f->db);
  assert_int_equal(unlink(cur), 0);
  store_opts_t o = {.create_if_missing = 1};
  char *err = NULL;
  s = NULL;
  assert_int_equal(store_open(&s, f->db, &o, &err), -1);
  assert_null(s);
  assert_non_null(err);
  if (!strstr(err, "no CURRENT"))
    fail_msg("unexpected message: %s", err);
  free(err);
  struct stat st;
  assert_int_equal(stat(cur, &st), -1);
  /* files of the operator's with those suffixes do not count: a new store
   * is still made beside them */
  char dir2[200], stray[260];
  snprintf(dir2, sizeof dir2, "%s/fresh", f->tmp);
  assert_int_equal(mkdir(dir2, 0700), 0);
  snprintf(stray, sizeof stray, "%s/gearboxd.log", dir2);
  FILE *fp = fopen(stray, "w");
  assert_non_null(fp);
  fclose(fp);
  snprintf(stray, sizeof stray, "%s/notes.sst", dir2);
  fp = fopen(stray, "w");
  assert_non_null(fp);
  fclose(fp);
  store_close(open_ok(dir2, 1));
}

/* Tables (*.sst) in dir. */
static int count_tables(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    n += l > 4 && !strcmp(e->d_name + l - 4, ".sst");
  }
  if (d)
    closedir(d);
  return n;
}

typedef struct hook_seen {
  const char *dir;
  int calls, tables;
  uint64_t seq;
} hook_seen_t;

static int recovered_hook(void *ud, uint64_t seq, char **err) {
  hook_seen_t *h = ud;
  (void)err;
  h->calls++;
  h->seq = seq;
  h->tables = count_tables(h->dir);
  return 0;
}

/* The recovered hook (the clean-stop check) runs before anything of the
 * recovered WAL is flushed: a flush drops writes that cancel out and lowers
 * the sequence a later open reports, so a crash after it made the next
 * start refuse. After the hook the store flushes what it recovered. */
static void test_recovered_hook_before_flush(void **state) {
  fixture_t *f = *state;
  store_t *s;
  uint64_t last = one_write_store(f->db);
  assert_int_equal(count_tables(f->db), 0); /* all of it is in the WAL */
  hook_seen_t h = {.dir = f->db};
  store_opts_t o = {.recovered = recovered_hook, .recovered_ud = &h};
  char *err = NULL;
  s = NULL;
  assert_int_equal(store_open(&s, f->db, &o, &err), 0);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.tables, 0);
  assert_true(h.seq >= last);
  assert_true(count_tables(f->db) > 0); /* flushed after the hook */
  store_close(s);
}

static void test_unusable_dir(void **state) {
  fixture_t *f = *state;
  char file[160], dir[200];
  snprintf(file, sizeof file, "%s/plainfile", f->tmp);
  int fd = open(file, O_CREAT | O_WRONLY, 0600);
  assert_true(fd >= 0);
  close(fd);
  snprintf(dir, sizeof dir, "%s/db", file);
  store_opts_t o = {.create_if_missing = 1};
  char *err = NULL;
  store_t *s = NULL;
  assert_int_equal(store_open(&s, dir, &o, &err), -1);
  assert_null(s);
  assert_non_null(err);
  char want[260];
  snprintf(want, sizeof want, "cannot open store in %s: ", dir);
  if (strncmp(err, want, strlen(want)) != 0)
    fail_msg("unexpected message: %s", err);
  /* The RocksDB reason follows the prefix. */
  assert_true(strlen(err) > strlen(want));
  free(err);

  /* An empty name is refused without touching the disk. */
  err = NULL;
  assert_int_equal(store_open(&s, "", &o, &err), -1);
  assert_non_null(err);
  free(err);
}

static void test_put_get_delete(void **state) {
  fixture_t *f = *state;
  f->s = open_ok(f->db, 1);
  store_batch_t *b = store_batch_new(f->s);
  assert_int_equal(store_batch_count(b), 0);
  size_t empty_bytes = store_batch_bytes(b);
  put_str(b, STORE_CF_IDX, "a", "1");
  put_str(b, STORE_CF_IDX, "b", "2");
  put_str(b, STORE_CF_IDX, "c", "3");
  put_str(b, STORE_CF_IDX, "d", "4");
  put_str(b, STORE_CF_IDX, "e", "5");
  store_batch_put(b, STORE_CF_IDX, "empty", 5, "", 0);
  assert_int_equal(store_batch_count(b), 6);
  assert_true(store_batch_bytes(b) > empty_bytes);
  write_ok(f->s, b, 1);
  assert_int_equal(store_batch_count(b), 0);
  assert_int_equal(store_batch_bytes(b), empty_bytes);
  expect(f->s, STORE_CF_IDX, "a", "1");
  expect(f->s, STORE_CF_IDX, "empty", ""); /* present and empty, not absent */

  /* Binary keys with NUL bytes work. */
  const char bk[] = {'x', 0, 'y'};
  store_batch_put(b, STORE_CF_IDX, bk, sizeof bk, "bin", 3);
  write_ok(f->s, b, 0);
  char *val = NULL, *err = NULL;
  size_t vl = 0;
  assert_int_equal(store_get(f->s, STORE_CF_IDX, bk, sizeof bk, &val, &vl, &err), 1);
  assert_int_equal(vl, 3);
  free(val);
  assert_int_equal(store_get(f->s, STORE_CF_IDX, "x", 1, &val, &vl, &err), 0);

  store_batch_delete(b, STORE_CF_IDX, "a", 1);
  store_batch_single_delete(b, STORE_CF_IDX, "b", 1);
  store_batch_delete_range(b, STORE_CF_IDX, "c", 1, "e", 1); /* c and d, not e */
  store_batch_delete(b, STORE_CF_IDX, "never", 5);           /* absent: no-op */
  assert_int_equal(store_batch_count(b), 4);
  write_ok(f->s, b, 1);
  expect(f->s, STORE_CF_IDX, "a", NULL);
  expect(f->s, STORE_CF_IDX, "b", NULL);
  expect(f->s, STORE_CF_IDX, "c", NULL);
  expect(f->s, STORE_CF_IDX, "d", NULL);
  expect(f->s, STORE_CF_IDX, "e", "5");

  /* An overwrite in the same batch: the later put wins. */
  put_str(b, STORE_CF_IDX, "e", "6");
  put_str(b, STORE_CF_IDX, "e", "7");
  write_ok(f->s, b, 0);
  expect(f->s, STORE_CF_IDX, "e", "7");

  /* A cleared batch writes nothing. */
  put_str(b, STORE_CF_IDX, "f", "8");
  store_batch_clear(b);
  write_ok(f->s, b, 0);
  expect(f->s, STORE_CF_IDX, "f", NULL);
  assert_int_equal(store_sync_wal(f->s, &err), 0);
  assert_null(err);
  store_batch_free(b);
  store_batch_free(NULL);

  /* Deletions survive a restart too. */
  store_close(f->s);
  f->s = open_ok(f->db, 0);
  expect(f->s, STORE_CF_IDX, "a", NULL);
  expect(f->s, STORE_CF_IDX, "c", NULL);
  expect(f->s, STORE_CF_IDX, "e", "7");
}

typedef struct scan_log {
  char keys[64][16];
  int n;
  int stop_after; /* return 7 after this many keys; 0: never */
} scan_log_t;

static int scan_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  scan_log_t *l = ctx;
  assert_true(kl < sizeof l->keys[0] && l->n < 64);
  /* Values are the key with a "v" prefix. */
  assert_int_equal(vl, kl + 1);
  assert_int_equal(v[0], 'v');
  assert_memory_equal(v + 1, k, kl);
  memcpy(l->keys[l->n], k, kl);
  l->keys[l->n][kl] = '\0';
  l->n++;
  return l->stop_after && l->n == l->stop_after ? 7 : 0;
}

static void fill_keys(store_t *s, store_cf_t cf, const char *prefix, int n) {
  store_batch_t *b = store_batch_new(s);
  for (int i = 0; i < n; i++) {
    char k[16], v[17];
    snprintf(k, sizeof k, "%s%02d", prefix, i);
    snprintf(v, sizeof v, "v%s", k);
    put_str(b, cf, k, v);
  }
  write_ok(s, b, 0);
  store_batch_free(b);
}

static void test_scan_bounds(void **state) {
  fixture_t *f = *state;
  f->s = open_ok(f->db, 1);
  /* The first keys are flushed to an SST file (a checkpoint flushes the
   * memtables), the rest stay in the memtable: the scan merges both. */
  fill_keys(f->s, STORE_CF_BODY, "k", 10);
  char cp[160], *err = NULL;
  snprintf(cp, sizeof cp, "%s/cp", f->tmp);
  assert_int_equal(store_checkpoint(f->s, cp, &err), 0);
  fill_keys(f->s, STORE_CF_BODY, "k1", 5); /* k100..k104 sort between k10.. */
  fill_keys(f->s, STORE_CF_BODY, "z", 3);

  scan_log_t l = {0};
  assert_int_equal(store_scan(f->s, STORE_CF_BODY, "k05", 3, "k08", 3, scan_cb, &l, &err), 0);
  assert_null(err);
  assert_int_equal(l.n, 3);
  assert_string_equal(l.keys[0], "k05");
  assert_string_equal(l.keys[1], "k06");
  assert_string_equal(l.keys[2], "k07"); /* upper bound is exclusive */

  /* Everything, in key order. */
  memset(&l, 0, sizeof l);
  assert_int_equal(store_scan(f->s, STORE_CF_BODY, NULL, 0, NULL, 0, scan_cb, &l, &err), 0);
  assert_int_equal(l.n, 18);
  for (int i = 1; i < l.n; i++)
    assert_true(strcmp(l.keys[i - 1], l.keys[i]) < 0);
  assert_string_equal(l.keys[0], "k00");
  assert_string_equal(l.keys[17], "z02");

  /* A prefix as [lo, hi): "k1" up to "k2" takes k100..k104 only. */
  memset(&l, 0, sizeof l);
  assert_int_equal(store_scan(f->s, STORE_CF_BODY, "k1", 2, "k2", 2, scan_cb, &l, &err), 0);
  assert_int_equal(l.n, 5);
  assert_string_equal(l.keys[0], "k100");

  /* Lower bound only: to the end. */
  memset(&l, 0, sizeof l);
  assert_int_equal(store_scan(f->s, STORE_CF_BODY, "x", 1, NULL, 0, scan_cb, &l, &err), 0);
  assert_int_equal(l.n, 3);
  assert_string_equal(l.keys[0], "z00");

  /* Early stop returns the callback's value and visits no more keys. */
  memset(&l, 0, sizeof l);
  l.stop_after = 4;
  assert_int_equal(store_scan(f->s, STORE_CF_BODY, "k", 1, NULL, 0, scan_cb, &l, &err), 7);
  assert_int_equal(l.n, 4);
  assert_string_equal(l.keys[3], "k03");

  /* An empty range visits nothing. */
  memset(&l, 0, sizeof l);
  assert_int_equal(store_scan(f->s, STORE_CF_BODY, "m", 1, "n", 1, scan_cb, &l, &err), 0);
  assert_int_equal(l.n, 0);
}

static void test_cf_isolation(void **state) {
  fixture_t *f = *state;
  f->s = open_ok(f->db, 1);
  store_batch_t *b = store_batch_new(f->s);
  put_str(b, STORE_CF_META, "k", "meta");
  put_str(b, STORE_CF_IDX, "k", "idx");
  put_str(b, STORE_CF_BODY, "k", "body");
  write_ok(f->s, b, 1);
  expect(f->s, STORE_CF_META, "k", "meta");
  expect(f->s, STORE_CF_IDX, "k", "idx");
  expect(f->s, STORE_CF_BODY, "k", "body");

  store_batch_delete_range(b, STORE_CF_IDX, "a", 1, "z", 1);
  store_batch_single_delete(b, STORE_CF_BODY, "k", 1);
  write_ok(f->s, b, 1);
  expect(f->s, STORE_CF_META, "k", "meta");
  expect(f->s, STORE_CF_IDX, "k", NULL);
  expect(f->s, STORE_CF_BODY, "k", NULL);
  store_batch_free(b);
}

static int count_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  (void)k;
  (void)kl;
  (void)v;
  (void)vl;
  (*(int *)ctx)++;
  return 0;
}

static void test_cf_scan_isolation(void **state) {
  fixture_t *f = *state;
  f->s = open_ok(f->db, 1);
  fill_keys(f->s, STORE_CF_META, "m", 2);
  fill_keys(f->s, STORE_CF_IDX, "i", 4);
  fill_keys(f->s, STORE_CF_BODY, "b", 8);
  char *err = NULL;
  int n[STORE_CF_COUNT] = {0};
  for (int cf = 0; cf < STORE_CF_COUNT; cf++)
    assert_int_equal(store_scan(f->s, (store_cf_t)cf, NULL, 0, NULL, 0, count_cb, &n[cf], &err), 0);
  assert_int_equal(n[STORE_CF_META], 2);
  assert_int_equal(n[STORE_CF_IDX], 4);
  assert_int_equal(n[STORE_CF_BODY], 8);
}

static void test_checkpoint(void **state) {
  fixture_t *f = *state;
  char cp[160];
  snprintf(cp, sizeof cp, "%s/cp", f->tmp);
  f->s = open_ok(f->db, 1);
  store_batch_t *b = store_batch_new(f->s);
  put_str(b, STORE_CF_META, "q", "queue");
  put_str(b, STORE_CF_IDX, "m", "idx");
  put_str(b, STORE_CF_BODY, "m", "body");
  write_ok(f->s, b, 1);
  char *err = NULL;
  if (store_checkpoint(f->s, cp, &err) != 0)
    fail_msg("checkpoint: %s", err);
  /* Written after the checkpoint: not in it. */
  put_str(b, STORE_CF_BODY, "later", "x");
  write_ok(f->s, b, 1);
  store_batch_free(b);

  /* The target must not exist. */
  assert_int_equal(store_checkpoint(f->s, cp, &err), -1);
  assert_non_null(err);
  free(err);
  err = NULL;

  store_t *c = open_ok(cp, 0);
  expect(c, STORE_CF_META, "q", "queue");
  expect(c, STORE_CF_IDX, "m", "idx");
  expect(c, STORE_CF_BODY, "m", "body");
  expect(c, STORE_CF_BODY, "later", NULL);
  store_close(c);
  /* The original is untouched by the checkpoint. */
  expect(f->s, STORE_CF_BODY, "later", "x");
  expect(f->s, STORE_CF_BODY, "m", "body");
}

static int check_mode(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)ftw;
  if ((st->st_mode & 077) != 0)
    fail_msg("%s has mode %o", path, (unsigned)(st->st_mode & 0777));
  if (flag == FTW_D)
    assert_int_equal(st->st_mode & 0777, 0700);
  return 0;
}

static void test_file_modes(void **state) {
  fixture_t *f = *state;
  mode_t old = umask(077); /* gearboxd sets this at start-up */
  f->s = open_ok(f->db, 1);
  store_batch_t *b = store_batch_new(f->s);
  put_str(b, STORE_CF_BODY, "m", "secret");
  write_ok(f->s, b, 1);
  store_batch_free(b);
  char cp[160], *err = NULL;
  snprintf(cp, sizeof cp, "%s/db/../cp", f->tmp);
  assert_int_equal(store_checkpoint(f->s, cp, &err), 0);
  store_close(f->s);
  f->s = NULL;
  umask(old);
  struct stat st;
  assert_int_equal(stat(f->db, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(nftw(f->db, check_mode, 16, FTW_PHYS), 0);
  assert_int_equal(nftw(cp, check_mode, 16, FTW_PHYS), 0);
}

static void test_disk_bytes(void **state) {
  fixture_t *f = *state;
  f->s = open_ok(f->db, 1);
  uint64_t before = store_disk_bytes(f->s);
  store_batch_t *b = store_batch_new(f->s);
  /* Incompressible, so the SST files are as large as the data. */
  static char big[64 * 1024];
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < sizeof big; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    big[i] = (char)x;
  }
  for (int i = 0; i < 32; i++) {
    char k[16];
    snprintf(k, sizeof k, "b%02d", i);
    store_batch_put(b, STORE_CF_BODY, k, strlen(k), big, sizeof big);
  }
  write_ok(f->s, b, 1);
  store_batch_free(b);
  /* 2 MiB went to the WAL. */
  uint64_t after = store_disk_bytes(f->s);
  assert_true(after >= before + 32 * sizeof big);
  /* After a checkpoint (which flushes the memtables and lets RocksDB drop
   * the old WAL) the data is counted in SST files. */
  char cp[160], *err = NULL;
  snprintf(cp, sizeof cp, "%s/cp", f->tmp);
  assert_int_equal(store_checkpoint(f->s, cp, &err), 0);
  assert_true(store_disk_bytes(f->s) >= 32 * sizeof big);
}

/* The newest WAL file (highest number) in dir, into out. */
static void newest_wal(const char *dir, char *out, size_t cap) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  unsigned long best = 0;
  int found = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    unsigned long n;
    char tail[8];
    if (sscanf(e->d_name, "%lu.%7s", &n, tail) == 2 && strcmp(tail, "log") == 0 &&
        (!found || n > best)) {
      best = n;
      found = 1;
    }
  }
  closedir(d);
  assert_true(found);
  snprintf(out, cap, "%s/%06lu.log", dir, best);
}

/* Three synced batches of one 1000-byte value each, then a clean close:
 * the data lives in the WAL only. Returns the WAL's path in wal. */
static void three_batches_in_wal(fixture_t *f, char *wal, size_t cap) {
  f->s = open_ok(f->db, 1);
  store_batch_t *b = store_batch_new(f->s);
  char v[1000];
  memset(v, 'w', sizeof v);
  for (int i = 1; i <= 3; i++) {
    char k[8];
    snprintf(k, sizeof k, "k%d", i);
    store_batch_put(b, STORE_CF_IDX, k, strlen(k), v, sizeof v);
    write_ok(f->s, b, 1);
  }
  store_batch_free(b);
  store_close(f->s);
  f->s = NULL;
  newest_wal(f->db, wal, cap);
  struct stat st;
  assert_int_equal(stat(wal, &st), 0);
  assert_true(st.st_size > 3000);
}

/* ---- the idx memtable and range tombstones ---- */

/* A 12-byte idx key: queue id and seq, big-endian (records.c's layout). */
static void qkey(uint8_t k[12], uint32_t qid, uint64_t seq) {
  for (int i = 0; i < 4; i++)
    k[i] = (uint8_t)(qid >> (24 - 8 * i));
  for (int i = 0; i < 8; i++)
    k[4 + i] = (uint8_t)(seq >> (56 - 8 * i));
}

static void qput(store_batch_t *b, uint32_t qid, uint64_t seq, const char *v) {
  uint8_t k[12];
  qkey(k, qid, seq);
  store_batch_put(b, STORE_CF_IDX, k, sizeof k, v, strlen(v));
}

typedef struct qscan {
  int n;
  uint32_t qid[64];
  uint64_t seq[64];
} qscan_t;

static int qscan_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  qscan_t *q = ctx;
  (void)v;
  (void)vl;
  assert_int_equal(kl, 12);
  assert_true(q->n < 64);
  const uint8_t *u = (const uint8_t *)k;
  uint32_t qid = 0;
  uint64_t seq = 0;
  for (int i = 0; i < 4; i++)
    qid = qid << 8 | u[i];
  for (int i = 4; i < 12; i++)
    seq = seq << 8 | u[i];
  q->qid[q->n] = qid;
  q->seq[q->n++] = seq;
  return 0;
}

/* Asserts the idx family holds exactly queue 1's seqs [lo1, hi1) and queue
 * 2's [1, 6), in order. */
static void expect_idx(store_t *s, uint64_t lo1, uint64_t hi1) {
  qscan_t q = {0};
  char *err = NULL;
  assert_int_equal(store_scan(s, STORE_CF_IDX, NULL, 0, NULL, 0, qscan_cb, &q, &err), 0);
  assert_null(err);
  assert_int_equal(q.n, (int)(hi1 - lo1) + 5);
  int i = 0;
  for (uint64_t x = lo1; x < hi1; x++, i++) {
    assert_int_equal(q.qid[i], 1);
    assert_int_equal(q.seq[i], x);
  }
  for (uint64_t x = 1; x < 6; x++, i++) {
    assert_int_equal(q.qid[i], 2);
    assert_int_equal(q.seq[i], x);
  }
}

/* The memtable_factory line of column family cf in the newest OPTIONS file
 * RocksDB wrote in dir, into out. */
static void memtable_factory(const char *dir, const char *cf, char *out, size_t cap) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  unsigned long best = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    unsigned long n;
    if (sscanf(e->d_name, "OPTIONS-%lu", &n) == 1 && n > best)
      best = n;
  }
  closedir(d);
  assert_true(best > 0);
  char path[512], line[512], section[128];
  snprintf(path, sizeof path, "%s/OPTIONS-%06lu", dir, best);
  snprintf(section, sizeof section, "[CFOptions \"%s\"]", cf);
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  int in = 0;
  out[0] = 0;
  while (fgets(line, sizeof line, fp)) {
    if (line[0] == '[')
      in = strncmp(line, section, strlen(section)) == 0;
    const char *v = strstr(line, "memtable_factory=");
    if (in && v)
      snprintf(out, cap, "%s", v + strlen("memtable_factory="));
  }
  fclose(fp);
}

/* idx's memtable is RocksDB's vector, sorted only when read (store.c), and
 * body's a skip list. A scan must see each key's last write, with rewrites
 * of the same keys and range tombstones (12-byte bounds, as stores before
 * 4-byte ones wrote, and 4-byte) interleaved in one batch: from the live
 * memtable, after a replay of the WAL (then flushed by the open) and from
 * the files. The old insert-hints marker is removed at open. */
static void test_idx_memtable_and_range_tombstones(void **state) {
  fixture_t *f = *state;
  f->s = open_ok(f->db, 1);
  char factory[256];
  memtable_factory(f->db, "idx", factory, sizeof factory);
  assert_non_null(strstr(factory, "VectorRepFactory"));
  memtable_factory(f->db, "body", factory, sizeof factory);
  assert_non_null(strstr(factory, "SkipListFactory"));
  store_batch_t *b = store_batch_new(f->s);
  for (uint64_t x = 200; x >= 1; x--) /* out of key order */
    qput(b, 1, x, "sent");
  write_ok(f->s, b, 1);
  for (uint64_t x = 1; x <= 50; x++)
    qput(b, 1, x, "received");
  uint8_t lo[12], hi[12];
  qkey(lo, 1, 0);
  qkey(hi, 2, 0);
  store_batch_delete_range(b, STORE_CF_IDX, lo, sizeof lo, hi, sizeof hi);
  for (uint64_t x = 309; x >= 300; x--)
    qput(b, 1, x, "sent");
  for (uint64_t x = 1; x < 6; x++)
    qput(b, 2, x, "sent");
  write_ok(f->s, b, 1);
  expect_idx(f->s, 300, 310);
  store_batch_free(b);
  store_close(f->s); /* the WAL keeps all of it: nothing was flushed */

  char marker[512];
  snprintf(marker, sizeof marker, "%s/IDX_HINTS", f->db);
  FILE *mf = fopen(marker, "w");
  assert_non_null(mf);
  fputs("MANIFEST-000001\n", mf);
  fclose(mf);
  f->s = open_ok(f->db, 0);
  expect_idx(f->s, 300, 310);
  struct stat st;
  assert_int_equal(stat(marker, &st), -1);

  b = store_batch_new(f->s);
  for (int round = 0; round < 3; round++)
    for (uint64_t x = 300; x < 310; x++)
      qput(b, 1, x, "received");
  for (uint64_t x = 1; x < 6; x++)
    qput(b, 2, x, "received");
  uint8_t s4[4] = {0, 0, 0, 1}, e4[4] = {0, 0, 0, 2};
  store_batch_delete_range(b, STORE_CF_IDX, s4, sizeof s4, e4, sizeof e4);
  for (uint64_t x = 400; x < 406; x++)
    qput(b, 1, x, "sent");
  write_ok(f->s, b, 1);
  for (uint64_t x = 400; x < 406; x++)
    qput(b, 1, x, "received");
  uint8_t k2[12];
  qkey(k2, 1, 403);
  store_batch_delete(b, STORE_CF_IDX, k2, sizeof k2);
  qput(b, 1, 403, "received again");
  write_ok(f->s, b, 1);
  expect_idx(f->s, 400, 406);
  uint8_t bk[8] = {0, 0, 0, 0, 0, 0, 0, 9};
  store_batch_put(b, STORE_CF_BODY, bk, sizeof bk, "body", 4);
  write_ok(f->s, b, 1);
  store_batch_single_delete(b, STORE_CF_BODY, bk, sizeof bk);
  write_ok(f->s, b, 1);
  store_batch_free(b);
  uint64_t last = store_latest_seq(f->s);
  store_close(f->s);

  f->s = open_ok(f->db, 0);
  assert_true(store_recovered_seq(f->s) >= last);
  expect_idx(f->s, 400, 406);
  store_close(f->s);
  f->s = open_ok(f->db, 0); /* from the flushed files this time */
  expect_idx(f->s, 400, 406);
}

/* A crash mid-write tears the last WAL record: the store opens without it. */
static void test_wal_torn_tail_tolerated(void **state) {
  fixture_t *f = *state;
  char wal[256];
  three_batches_in_wal(f, wal, sizeof wal);
  struct stat st;
  assert_int_equal(stat(wal, &st), 0);
  assert_int_equal(truncate(wal, st.st_size - 10), 0);
  f->s = open_ok(f->db, 0);
  char *val = NULL, *err = NULL;
  size_t vl = 0;
  assert_int_equal(store_get(f->s, STORE_CF_IDX, "k1", 2, &val, &vl, &err), 1);
  free(val);
  assert_int_equal(store_get(f->s, STORE_CF_IDX, "k2", 2, &val, &vl, &err), 1);
  free(val);
  assert_int_equal(store_get(f->s, STORE_CF_IDX, "k3", 2, &val, &vl, &err), 0);
}

/* Corruption before the tail is not a torn write: the store refuses to open
 * rather than silently dropping acknowledged batches after it. */
static void test_wal_middle_corruption_refused(void **state) {
  fixture_t *f = *state;
  char wal[256];
  three_batches_in_wal(f, wal, sizeof wal);
  int fd = open(wal, O_RDWR);
  assert_true(fd >= 0);
  /* Inside the first record's value (7-byte header, then the batch). */
  assert_int_equal(pwrite(fd, "X", 1, 500), 1);
  close(fd);
  store_opts_t o = {.create_if_missing = 0};
  store_t *s = NULL;
  char *err = NULL;
  assert_int_equal(store_open(&s, f->db, &o, &err), -1);
  assert_null(s);
  assert_non_null(err);
  assert_non_null(strstr(err, "cannot open store in"));
  free(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_missing_without_create, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_current_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recovered_hook_before_flush, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unusable_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scan_bounds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cf_isolation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cf_scan_isolation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_modes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_disk_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wal_torn_tail_tolerated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wal_middle_corruption_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idx_memtable_and_range_tombstones, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
