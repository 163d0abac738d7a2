/* test_commit.c - the group-commit pipeline on a real libuv loop and a real
 * store: ordering, batching, the three sync policies, the fault seam and the
 * final flush at commit_stop. Each test has its own temp dir. */
#define _GNU_SOURCE
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "commit.h"
#include "store.h"

#define MAX_CALLS 4096

typedef struct fixture {
  char tmp[64];
  char db[128];
  store_t *s;
  uv_loop_t loop;
  commit_t *c;
  /* done callback log */
  uint64_t durable[MAX_CALLS];
  int status[MAX_CALLS];
  char err[256];
  int calls;
  /* optional: on this durable number, the callback adds a key */
  uint64_t add_on;
} fixture_t;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void put_key(store_batch_t *b, const char *k, const char *v) {
  store_batch_put(b, STORE_CF_META, k, strlen(k), v, strlen(v));
}

static void done_cb(void *ctx, uint64_t durable, int status, const char *err) {
  fixture_t *f = ctx;
  assert_true(f->calls < MAX_CALLS);
  f->durable[f->calls] = durable;
  f->status[f->calls] = status;
  if (status) {
    assert_non_null(err);
    snprintf(f->err, sizeof f->err, "%s", err);
  } else {
    assert_null(err);
  }
  f->calls++;
  if (f->add_on && durable == f->add_on)
    put_key(commit_batch(f->c), "from-cb", "yes");
}

static store_t *open_store(const char *dir, int create) {
  store_opts_t o = {.create_if_missing = create};
  store_t *s = NULL;
  char *err = NULL;
  if (store_open(&s, dir, &o, &err) != 0)
    fail_msg("store_open: %s", err);
  return s;
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (!f)
    return -1;
  strcpy(f->tmp, "/tmp/gbx-commit-XXXXXX");
  if (!mkdtemp(f->tmp))
    return -1;
  snprintf(f->db, sizeof f->db, "%s/db", f->tmp);
  f->s = open_store(f->db, 1);
  if (uv_loop_init(&f->loop) != 0)
    return -1;
  *state = f;
  return 0;
}

/* Stops the pipeline if a test left it running, checks that every handle
 * was closed (uv_loop_close fails otherwise), removes the dir. */
static int teardown(void **state) {
  fixture_t *f = *state;
  if (f->c) {
    commit_stop(f->c);
    f->c = NULL;
  }
  uv_run(&f->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&f->loop);
  store_close(f->s);
  nftw(f->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return rc == 0 ? 0 : -1;
}

static void start(fixture_t *f, commit_policy_t p, unsigned interval_ms) {
  char *err = NULL;
  f->c = commit_start(&f->loop, f->s, p, interval_ms, done_cb, f, &err);
  if (!f->c)
    fail_msg("commit_start: %s", err);
}

/* Stops the pipeline and lets its close callbacks run. */
static int stop(fixture_t *f) {
  int rc = commit_stop(f->c);
  f->c = NULL;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  return rc;
}

static void expect(store_t *s, const char *k, const char *v) {
  char *val = NULL, *err = NULL;
  size_t vl = 0;
  int rc = store_get(s, STORE_CF_META, k, strlen(k), &val, &vl, &err);
  if (!v) {
    if (rc != 0)
      fail_msg("%s: expected absent, rc %d", k, rc);
    return;
  }
  if (rc != 1)
    fail_msg("%s: expected %s, rc %d", k, v, rc);
  assert_int_equal(vl, strlen(v));
  assert_memory_equal(val, v, vl);
  free(val);
}

static void test_many_in_order(void **state) {
  fixture_t *f = *state;
  start(f, COMMIT_ALWAYS, 0);
  const int rounds = 50, per = 20;
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < per; i++) {
      char k[32], v[32];
      snprintf(k, sizeof k, "k%03d-%02d", r, i);
      snprintf(v, sizeof v, "v%d", r * per + i);
      put_key(commit_batch(f->c), k, v);
    }
    /* Rewritten every round: only the last round's value may survive. */
    char last[16];
    snprintf(last, sizeof last, "%d", r);
    put_key(commit_batch(f->c), "last", last);
    commit_note_request(f->c);
    commit_kick(f->c);
    uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  /* Returns once nothing is in flight and nothing is left open. */
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_false(commit_dirty(f->c));
  assert_int_equal(commit_durable_no(f->c), commit_open_no(f->c) - 1);
  assert_true(f->calls >= 1);
  /* One call per sync, in order; a sync may cover several batches written
   * while the one before it ran. */
  for (int i = 0; i < f->calls; i++) {
    assert_int_equal(f->status[i], 0);
    if (i > 0)
      assert_true(f->durable[i] > f->durable[i - 1]);
  }
  assert_int_equal(f->durable[f->calls - 1], commit_durable_no(f->c));

  commit_stats_t st;
  commit_get_stats(f->c, &st);
  assert_int_equal(st.batches, commit_durable_no(f->c));
  assert_true(st.batches <= (uint64_t)rounds);
  assert_int_equal(st.ops, (uint64_t)rounds * (per + 1));
  assert_int_equal(st.requests, (uint64_t)rounds);
  /* a call reports at least one sync; two syncs that end before the loop
   * wakes are reported by one call (the wake-up coalesces) */
  assert_true(st.wal_syncs >= (uint64_t)f->calls);
  assert_int_equal(st.commits, st.wal_syncs);
  assert_true(st.wal_syncs <= st.batches);
  assert_true(st.p50_us <= st.p99_us);
  assert_true(st.p99_us <= st.max_us);
  assert_true(st.max_us > 0); /* a synced RocksDB write takes microseconds */

  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < per; i++) {
      char k[32], v[32];
      snprintf(k, sizeof k, "k%03d-%02d", r, i);
      snprintf(v, sizeof v, "v%d", r * per + i);
      expect(f->s, k, v);
    }
  expect(f->s, "last", "49");
  assert_int_equal(stop(f), 0);
}

static void test_batching(void **state) {
  fixture_t *f = *state;
  start(f, COMMIT_ALWAYS, 0);
  assert_int_equal(commit_open_no(f->c), 1);
  assert_int_equal(commit_durable_no(f->c), 0);
  assert_false(commit_dirty(f->c));
  commit_kick(f->c); /* empty: nothing happens */
  assert_int_equal(commit_open_no(f->c), 1);

  put_key(commit_batch(f->c), "a", "1");
  assert_true(commit_dirty(f->c));
  commit_kick(f->c);
  assert_int_equal(commit_open_no(f->c), 2);
  assert_false(commit_dirty(f->c));

  /* Batch 1 is in flight until the loop collects it: these three wait in
   * the open batch, and a kick does not send them. */
  put_key(commit_batch(f->c), "b", "2");
  commit_kick(f->c);
  put_key(commit_batch(f->c), "c", "3");
  put_key(commit_batch(f->c), "d", "4");
  commit_kick(f->c);
  assert_int_equal(commit_open_no(f->c), 2);
  assert_true(commit_dirty(f->c));
  assert_int_equal(commit_durable_no(f->c), 0);

  uv_run(&f->loop, UV_RUN_DEFAULT);
  /* The done path sent them on as one batch; its sync may have covered
   * batch 1 too (one call) or followed batch 1's (two). */
  assert_true(f->calls == 1 || f->calls == 2);
  if (f->calls == 2)
    assert_int_equal(f->durable[0], 1);
  assert_int_equal(f->durable[f->calls - 1], 2);
  assert_int_equal(commit_durable_no(f->c), 2);
  assert_int_equal(commit_open_no(f->c), 3);
  commit_stats_t st;
  commit_get_stats(f->c, &st);
  assert_int_equal(st.batches, 2);
  assert_int_equal(st.ops, 4);
  expect(f->s, "a", "1");
  expect(f->s, "d", "4");
  assert_int_equal(stop(f), 0);
}

/* A mutation the done callback makes goes out right after it, without
 * another kick from outside. */
static void test_callback_mutation_goes_out(void **state) {
  fixture_t *f = *state;
  start(f, COMMIT_NONE, 0);
  f->add_on = 1;
  put_key(commit_batch(f->c), "x", "1");
  commit_kick(f->c);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->calls, 2);
  assert_int_equal(f->durable[1], 2);
  expect(f->s, "from-cb", "yes");
  assert_int_equal(stop(f), 0);
}

static void on_wait(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, NULL);
}

/* Writes a few batches under policy p, then keeps the loop running for
 * several intervals. Returns the stats. */
static commit_stats_t run_policy(fixture_t *f, commit_policy_t p) {
  const unsigned interval = 5;
  start(f, p, interval);
  for (int i = 0; i < 3; i++) {
    char k[16];
    snprintf(k, sizeof k, "p%d", i);
    put_key(commit_batch(f->c), k, "v");
    commit_kick(f->c);
    uv_run(&f->loop, UV_RUN_DEFAULT);
  }
  assert_int_equal(commit_durable_no(f->c), 3);
  /* The pipeline's own timer is due first (after one interval) and keeps the
   * loop alive until the sync it queues is done, so by the time this run
   * returns a sync has happened under COMMIT_INTERVAL. */
  uv_timer_t wait;
  uv_timer_init(&f->loop, &wait);
  uv_timer_start(&wait, on_wait, 4 * interval, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  commit_stats_t st;
  commit_get_stats(f->c, &st);
  assert_int_equal(st.batches, 3);
  expect(f->s, "p0", "v");
  expect(f->s, "p2", "v");
  assert_int_equal(f->calls, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(f->status[i], 0);
  return st;
}

static void test_policy_always(void **state) {
  fixture_t *f = *state;
  commit_stats_t st = run_policy(f, COMMIT_ALWAYS);
  /* Each batch was durable before the next was made: a sync apiece. */
  assert_int_equal(st.wal_syncs, 3);
  assert_int_equal(st.commits, 3);
  assert_int_equal(stop(f), 0);
}

static void test_policy_interval(void **state) {
  fixture_t *f = *state;
  commit_stats_t st = run_policy(f, COMMIT_INTERVAL);
  assert_true(st.wal_syncs >= 1);
  /* Nothing written since: further intervals sync nothing. */
  uint64_t syncs = st.wal_syncs;
  uv_timer_t wait;
  uv_timer_init(&f->loop, &wait);
  uv_timer_start(&wait, on_wait, 20, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  commit_get_stats(f->c, &st);
  assert_int_equal(st.wal_syncs, syncs);
  assert_int_equal(stop(f), 0);
}

static void test_policy_none(void **state) {
  fixture_t *f = *state;
  commit_stats_t st = run_policy(f, COMMIT_NONE);
  assert_int_equal(st.wal_syncs, 0);
  assert_int_equal(stop(f), 0);
}

static void test_fault(void **state) {
  fixture_t *f = *state;
  start(f, COMMIT_ALWAYS, 0);
  commit_set_fault(f->c, 2);
  put_key(commit_batch(f->c), "one", "1");
  commit_kick(f->c);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->calls, 1);
  assert_int_equal(commit_durable_no(f->c), 1);

  put_key(commit_batch(f->c), "two", "2");
  commit_kick(f->c);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->calls, 2);
  assert_int_equal(f->status[1], -1);
  assert_int_equal(f->durable[1], 1); /* nothing more became durable */
  assert_non_null(strstr(f->err, "injected fault"));
  assert_int_equal(commit_durable_no(f->c), 1);

  /* Refused from now on: a kick sends nothing, no callback comes. */
  uint64_t open_no = commit_open_no(f->c);
  put_key(commit_batch(f->c), "three", "3");
  commit_kick(f->c);
  assert_int_equal(commit_open_no(f->c), open_no); /* not taken */
  assert_true(commit_dirty(f->c));
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->calls, 2);
  assert_int_equal(commit_durable_no(f->c), 1);
  commit_stats_t st;
  commit_get_stats(f->c, &st);
  assert_int_equal(st.batches, 1);

  assert_int_equal(stop(f), -1);
  assert_int_equal(f->calls, 2);
  store_close(f->s);
  f->s = open_store(f->db, 0);
  expect(f->s, "one", "1");
  expect(f->s, "two", NULL);
  expect(f->s, "three", NULL);
}

/* Under COMMIT_INTERVAL a failure also stops the periodic syncs: nothing
 * more is done on a store that failed. */
static void test_fault_interval_stops_syncing(void **state) {
  fixture_t *f = *state;
  start(f, COMMIT_INTERVAL, 2);
  commit_set_fault(f->c, 1);
  put_key(commit_batch(f->c), "one", "1");
  commit_kick(f->c);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->calls, 1);
  assert_int_equal(f->status[0], -1);
  uv_timer_t wait;
  uv_timer_init(&f->loop, &wait);
  uv_timer_start(&wait, on_wait, 10, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  commit_stats_t st;
  commit_get_stats(f->c, &st);
  assert_int_equal(st.wal_syncs, 0);
  assert_int_equal(st.batches, 0);
  assert_int_equal(stop(f), -1);
}

static void test_stop_flushes(void **state) {
  fixture_t *f = *state;
  start(f, COMMIT_INTERVAL, 1000);
  /* One batch in flight and one open when stop is called, loop not run. */
  put_key(commit_batch(f->c), "first", "1");
  commit_kick(f->c);
  for (int i = 0; i < 100; i++) {
    char k[16];
    snprintf(k, sizeof k, "s%03d", i);
    put_key(commit_batch(f->c), k, k);
  }
  assert_int_equal(stop(f), 0);
  assert_int_equal(f->calls, 2);
  assert_int_equal(f->durable[0], 1);
  assert_int_equal(f->durable[1], 2);
  assert_int_equal(f->status[1], 0);

  store_close(f->s);
  f->s = open_store(f->db, 0);
  expect(f->s, "first", "1");
  expect(f->s, "s000", "s000");
  expect(f->s, "s099", "s099");
}

/* Under COMMIT_ALWAYS a batch is written, then synced by the sync thread: a
 * failed sync reports nothing durable, and nothing after it is written. */
static void test_sync_fault(void **state) {
  fixture_t *f = *state;
  start(f, COMMIT_ALWAYS, 0);
  put_key(commit_batch(f->c), "one", "1");
  commit_kick(f->c);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->calls, 1);
  assert_int_equal(f->status[0], 0);
  assert_int_equal(commit_durable_no(f->c), 1);

  commit_set_sync_fault(f->c, 1); /* the next sync */
  put_key(commit_batch(f->c), "two", "2");
  commit_kick(f->c);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->calls, 2);
  assert_int_equal(f->status[1], -1);
  assert_int_equal(f->durable[1], 1); /* batch 2 was written, never synced */
  assert_non_null(strstr(f->err, "injected fault"));
  assert_int_equal(commit_durable_no(f->c), 1);

  uint64_t open_no = commit_open_no(f->c);
  put_key(commit_batch(f->c), "three", "3");
  commit_kick(f->c);
  assert_int_equal(commit_open_no(f->c), open_no); /* refused */
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->calls, 2);
  commit_stats_t st;
  commit_get_stats(f->c, &st);
  assert_int_equal(st.wal_syncs, 1);
  assert_int_equal(stop(f), -1);
  assert_int_equal(f->calls, 2);
}

/* Batches handed off back to back (writes overlapping syncs) with the write
 * of batch 6 failing: every success reported before the failure is below 6,
 * the failure comes once, and a reopened store holds exactly the batches
 * before 6. */
static void test_fault_while_pipelined(void **state) {
  fixture_t *f = *state;
  start(f, COMMIT_ALWAYS, 0);
  commit_set_fault(f->c, 6);
  int made = 0;
  /* Until batch 8 is taken (or the failure came): each round waits for one
   * result (a write's or a sync's), so a new batch is written while the
   * sync of the last one runs. */
  for (int i = 0; i < 9000 && commit_open_no(f->c) <= 8; i++) {
    char k[16];
    snprintf(k, sizeof k, "b%04d", i);
    put_key(commit_batch(f->c), k, "v");
    commit_kick(f->c);
    made++;
    uv_run(&f->loop, UV_RUN_ONCE);
    if (f->calls && f->status[f->calls - 1] != 0)
      break;
  }
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_true(f->calls >= 1);
  int failures = 0;
  for (int i = 0; i < f->calls; i++) {
    if (f->status[i] != 0) {
      failures++;
      assert_int_equal(i, f->calls - 1); /* the last call */
    } else {
      assert_true(f->durable[i] < 6);
    }
  }
  assert_int_equal(failures, 1);
  assert_true(commit_durable_no(f->c) < 6);
  assert_int_equal(stop(f), -1);
  store_close(f->s);
  f->s = open_store(f->db, 0);
  /* Keys were added one per kick; batch numbers follow the kicks that took
   * a batch, so count what the reopened store holds: a prefix of b0000.. */
  int present = 0;
  for (int i = 0; i < made; i++) {
    char k[16], *val = NULL, *err = NULL;
    size_t vl;
    snprintf(k, sizeof k, "b%04d", i);
    int rc = store_get(f->s, STORE_CF_META, k, strlen(k), &val, &vl, &err);
    assert_true(rc == 0 || rc == 1);
    free(val);
    if (rc == 1) {
      assert_int_equal(present, i); /* no gap */
      present++;
    }
  }
  assert_true(present >= 5); /* batches 1..5 were written */
  assert_true(present < made);
}

static void test_stop_idle(void **state) {
  fixture_t *f = *state;
  start(f, COMMIT_ALWAYS, 0);
  assert_int_equal(stop(f), 0);
  assert_int_equal(f->calls, 0);
}

static void test_start_rejects_bad_args(void **state) {
  fixture_t *f = *state;
  char *err = NULL;
  assert_null(commit_start(&f->loop, f->s, COMMIT_INTERVAL, 0, done_cb, f, &err));
  assert_non_null(err);
  free(err);
  err = NULL;
  assert_null(commit_start(&f->loop, f->s, (commit_policy_t)7, 10, done_cb, f, &err));
  assert_non_null(err);
  free(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_many_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batching, setup, teardown),
      cmocka_unit_test_setup_teardown(test_callback_mutation_goes_out, setup, teardown),
      cmocka_unit_test_setup_teardown(test_policy_always, setup, teardown),
      cmocka_unit_test_setup_teardown(test_policy_interval, setup, teardown),
      cmocka_unit_test_setup_teardown(test_policy_none, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fault, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fault_interval_stops_syncing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_fault, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fault_while_pipelined, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_flushes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_idle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_rejects_bad_args, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
