/* test_longpoll.c - integration tests of long-poll receives against the real
 * gearboxd: a waiting receive is answered as soon as a message becomes
 * visible (a send, a delay ending, a visibility expiring), waiters are served
 * first come first served, a closed connection's waiters vanish, the per-
 * connection waiter limit, and the wait timing out empty. Each test starts
 * its own server.
 *
 * Waits use the pipelined API: gbx_submit_receive + gbx_flush put a receive
 * on the wire without blocking, gbx_collect picks its reply up later. The
 * "returned before the wait ended" checks compare against the requested wait
 * (5 s) with seconds of margin: they check that a waiter is woken at all, not
 * how fast. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

/* The long-poll wait of the wake-up tests: long enough that a waiter that
 * was not woken is told apart from one that was by whole seconds. */
#define LONG_WAIT_S 5
/* A woken waiter must be answered this long before its wait would end. */
#define WOKEN_BEFORE_MS 3000
/* Time for a request written on one connection to be registered by the
 * server before another connection acts: a local round trip is well under a
 * millisecond, this leaves two orders of magnitude for a loaded sanitizer
 * build. */
#define SETTLE_MS 150
/* Default --max-waiters. */
#define MAX_WAITERS 64

static gbx_error_t e;

/* Puts a receive of one message waiting up to wait_s on the wire. */
static uint64_t start_wait(gbx_client_t *c, const char *q, int vis, int wait_s) {
  uint64_t id = gbx_submit_receive(c, q, 1, vis, wait_s, &e);
  if (!id)
    fail_msg("gbx_submit_receive: %s", e.message);
  CHECK_OK(gbx_flush(c, &e));
  return id;
}

/* Collects the reply to request id on c and returns its messages (*n of
 * them; NULL when none). */
static gbx_message_t *finish_wait(gbx_client_t *c, uint64_t id, size_t *n) {
  gbx_reply_t *r;
  gbx_message_t *m;
  CHECK_OK(gbx_collect(c, &r, &e));
  assert_int_equal(gbx_reply_id(r), id);
  assert_int_equal(gbx_reply_op(r), GBX_OP_RECEIVE);
  CHECK_OK(gbx_reply_error(r, &e));
  CHECK_OK(gbx_reply_messages(r, &m, n, &e));
  gbx_reply_free(r);
  return m;
}

/* ---- wake-ups ---------------------------------------------------------------- */

static void test_send_wakes_waiter(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "lp", NULL);
  gbx_client_t *w = tu_connect(f->ts);
  int64_t t0 = tu_mono_ms();
  uint64_t id = start_wait(w, "lp", 60, LONG_WAIT_S);
  tu_sleep_ms(SETTLE_MS);
  char mid[GBX_MID_BUFSZ];
  CHECK_OK(gbx_queue_send(f->c, "lp", "wake up", 7, NULL, 0, -1, mid, &e));
  size_t n;
  gbx_message_t *m = finish_wait(w, id, &n);
  int64_t took = tu_mono_ms() - t0;
  assert_int_equal(n, 1);
  assert_string_equal(m[0].mid, mid);
  assert_memory_equal(m[0].body, "wake up", 7);
  assert_int_equal(m[0].receive_count, 1);
  if (took >= WOKEN_BEFORE_MS)
    fail_msg("waiter answered after %lld ms of its %d s wait", (long long)took, LONG_WAIT_S);
  /* the message is in flight for the waiter's visibility */
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(f->c, "lp", &info, &e));
  assert_int_equal(info.visible, 0);
  assert_int_equal(info.not_visible, 1);
  gbx_queue_info_free(&info);
  CHECK_OK(gbx_message_delete(w, "lp", m[0].receipt, &e));
  gbx_messages_free(m);
  gbx_close(w);
  tu_assert_alive(f->ts);
}

static void test_waiters_first_come_first_served(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "fifo", NULL);
  gbx_client_t *w[3];
  uint64_t id[3];
  for (int i = 0; i < 3; i++) {
    w[i] = tu_connect(f->ts);
    id[i] = start_wait(w[i], "fifo", 60, LONG_WAIT_S);
    tu_sleep_ms(SETTLE_MS); /* so the server sees them in this order */
  }
  int64_t t0 = tu_mono_ms();
  /* one message per step: it goes to the longest-waiting receive, and only
   * that one (the others keep waiting, else the later steps would find them
   * answered already) */
  for (int i = 0; i < 3; i++) {
    char body[8], mid[GBX_MID_BUFSZ];
    snprintf(body, sizeof body, "m%d", i);
    CHECK_OK(gbx_queue_send(f->c, "fifo", body, strlen(body), NULL, 0, -1, mid, &e));
    size_t n;
    gbx_message_t *m = finish_wait(w[i], id[i], &n);
    if (n != 1)
      fail_msg("waiter %d got %zu messages, want message %s", i, n, body);
    assert_string_equal(m[0].mid, mid);
    gbx_messages_free(m);
  }
  if (tu_mono_ms() - t0 >= WOKEN_BEFORE_MS)
    fail_msg("waiters were not woken by the sends");
  for (int i = 0; i < 3; i++)
    gbx_close(w[i]);
  tu_assert_alive(f->ts);
}

static void test_batch_wakes_one_waiter_per_message(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "many", NULL);
  gbx_client_t *w[3];
  uint64_t id[3];
  for (int i = 0; i < 3; i++) {
    w[i] = tu_connect(f->ts);
    id[i] = start_wait(w[i], "many", 60, 2);
    tu_sleep_ms(SETTLE_MS);
  }
  gbx_send_entry_t en[] = {{"a", "first", 5, NULL, 0, -1}, {"b", "second", 6, NULL, 0, -1}};
  gbx_batch_result_t res[2];
  CHECK_OK(gbx_queue_send_batch(f->c, "many", en, 2, res, &e));
  size_t n0, n1, n2;
  gbx_message_t *m0 = finish_wait(w[0], id[0], &n0);
  gbx_message_t *m1 = finish_wait(w[1], id[1], &n1);
  gbx_message_t *m2 = finish_wait(w[2], id[2], &n2); /* times out empty */
  assert_int_equal(n0, 1);
  assert_int_equal(n1, 1);
  assert_int_equal(n2, 0);
  assert_string_not_equal(m0[0].mid, m1[0].mid);
  gbx_messages_free(m0);
  gbx_messages_free(m1);
  gbx_messages_free(m2);
  for (int i = 0; i < 3; i++)
    gbx_close(w[i]);
  tu_assert_alive(f->ts);
}

static void test_delay_end_wakes_waiter(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "later", NULL);
  gbx_client_t *w = tu_connect(f->ts);
  uint64_t id = start_wait(w, "later", 60, LONG_WAIT_S);
  tu_sleep_ms(SETTLE_MS);
  int64_t t0 = tu_mono_ms();
  CHECK_OK(gbx_queue_send(f->c, "later", "delayed", 7, NULL, 0, 1, NULL, &e));
  size_t n;
  gbx_message_t *m = finish_wait(w, id, &n);
  int64_t took = tu_mono_ms() - t0;
  assert_int_equal(n, 1);
  assert_memory_equal(m[0].body, "delayed", 7);
  /* not before its delay, and long before the wait would have ended */
  if (took < 900)
    fail_msg("a message delayed 1 s was delivered after %lld ms", (long long)took);
  if (took >= WOKEN_BEFORE_MS + 1000)
    fail_msg("the delay's end did not wake the waiter (%lld ms)", (long long)took);
  gbx_messages_free(m);
  gbx_close(w);
  tu_assert_alive(f->ts);
}

static void test_visibility_expiry_wakes_waiter(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "vis", NULL);
  CHECK_OK(gbx_queue_send(f->c, "vis", "again", 5, NULL, 0, -1, NULL, &e));
  gbx_message_t *first;
  size_t n;
  CHECK_OK(gbx_queue_receive(f->c, "vis", 1, 1, 0, &first, &n, &e)); /* invisible for 1 s */
  assert_int_equal(n, 1);
  int64_t t0 = tu_mono_ms();
  gbx_client_t *w = tu_connect(f->ts);
  uint64_t id = start_wait(w, "vis", 60, LONG_WAIT_S);
  gbx_message_t *m = finish_wait(w, id, &n);
  int64_t took = tu_mono_ms() - t0;
  assert_int_equal(n, 1);
  assert_string_equal(m[0].mid, first[0].mid);
  assert_int_equal(m[0].receive_count, 2);
  if (took >= WOKEN_BEFORE_MS + 1000)
    fail_msg("the visibility expiry did not wake the waiter (%lld ms)", (long long)took);
  /* the first receive's handle is stale now */
  assert_int_equal(gbx_message_delete(f->c, "vis", first[0].receipt, &e), GBX_E_RECEIPT_STALE);
  CHECK_OK(gbx_message_delete(w, "vis", m[0].receipt, &e));
  gbx_messages_free(first);
  gbx_messages_free(m);
  gbx_close(w);
  tu_assert_alive(f->ts);
}

static void test_other_queue_does_not_wake(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "quiet", NULL);
  tu_create_queue(f->c, "busy", NULL);
  gbx_client_t *w = tu_connect(f->ts);
  int64_t t0 = tu_mono_ms();
  uint64_t id = start_wait(w, "quiet", 60, 1);
  tu_sleep_ms(SETTLE_MS);
  CHECK_OK(gbx_queue_send(f->c, "busy", "not for you", 11, NULL, 0, -1, NULL, &e));
  size_t n;
  gbx_message_t *m = finish_wait(w, id, &n);
  assert_int_equal(n, 0);
  assert_null(m);
  assert_true(tu_mono_ms() - t0 >= 900);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(f->c, "busy", &info, &e));
  assert_int_equal(info.visible, 1);
  gbx_queue_info_free(&info);
  gbx_close(w);
  tu_assert_alive(f->ts);
}

/* ---- closed connections, limits, timeouts ------------------------------------------ */

static void test_closed_waiter_does_not_swallow(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "gone", NULL);
  /* a waiter whose connection closes, with nobody else waiting */
  gbx_client_t *x = tu_connect(f->ts);
  start_wait(x, "gone", 60, LONG_WAIT_S);
  tu_sleep_ms(SETTLE_MS);
  gbx_close(x);
  tu_sleep_ms(SETTLE_MS);
  CHECK_OK(gbx_queue_send(f->c, "gone", "one", 3, NULL, 0, -1, NULL, &e));
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(f->c, "gone", &info, &e));
  assert_int_equal(info.visible, 1);
  assert_int_equal(info.not_visible, 0);
  gbx_queue_info_free(&info);
  gbx_message_t *m;
  size_t n;
  CHECK_OK(gbx_queue_receive(f->c, "gone", 1, 60, 0, &m, &n, &e));
  assert_int_equal(n, 1);
  assert_int_equal(m[0].receive_count, 1);
  gbx_messages_free(m);

  /* a closed waiter ahead of a live one: the live one gets the message */
  x = tu_connect(f->ts);
  start_wait(x, "gone", 60, LONG_WAIT_S);
  tu_sleep_ms(SETTLE_MS);
  gbx_client_t *y = tu_connect(f->ts);
  uint64_t id = start_wait(y, "gone", 60, LONG_WAIT_S);
  tu_sleep_ms(SETTLE_MS);
  gbx_close(x);
  tu_sleep_ms(SETTLE_MS);
  int64_t t0 = tu_mono_ms();
  CHECK_OK(gbx_queue_send(f->c, "gone", "two", 3, NULL, 0, -1, NULL, &e));
  m = finish_wait(y, id, &n);
  assert_int_equal(n, 1);
  assert_memory_equal(m[0].body, "two", 3);
  assert_true(tu_mono_ms() - t0 < WOKEN_BEFORE_MS);
  gbx_messages_free(m);
  gbx_close(y);
  tu_assert_alive(f->ts);
}

static void test_too_many_waiters(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "crowd", NULL);
  gbx_client_t *w = tu_connect(f->ts);
  uint64_t ids[MAX_WAITERS + 1];
  for (int i = 0; i <= MAX_WAITERS; i++) {
    ids[i] = gbx_submit_receive(w, "crowd", 1, 60, 1, &e);
    assert_true(ids[i] > 0);
  }
  CHECK_OK(gbx_flush(w, &e));
  /* the limit is per connection: another one can still wait */
  gbx_client_t *other = tu_connect(f->ts);
  uint64_t oid = start_wait(other, "crowd", 60, 1);

  int refused = 0, empty = 0;
  for (int i = 0; i <= MAX_WAITERS; i++) {
    gbx_reply_t *r;
    CHECK_OK(gbx_collect(w, &r, &e));
    int rc = gbx_reply_error(r, &e);
    if (rc == GBX_E_TOO_MANY_WAITERS) {
      refused++;
      assert_int_equal(gbx_reply_id(r), ids[MAX_WAITERS]); /* the 65th */
    } else {
      assert_int_equal(rc, GBX_E_OK);
      gbx_message_t *m;
      size_t n;
      CHECK_OK(gbx_reply_messages(r, &m, &n, &e));
      assert_int_equal(n, 0);
      empty++;
    }
    gbx_reply_free(r);
  }
  assert_int_equal(refused, 1);
  assert_int_equal(empty, MAX_WAITERS);
  size_t n;
  gbx_message_t *m = finish_wait(other, oid, &n);
  assert_int_equal(n, 0);
  assert_null(m);
  /* the connection stays usable, and its waiter slots are free again */
  assert_true(gbx_is_open(w));
  uint64_t again = start_wait(w, "crowd", 60, 1);
  CHECK_OK(gbx_queue_send(f->c, "crowd", "x", 1, NULL, 0, -1, NULL, &e));
  m = finish_wait(w, again, &n);
  assert_int_equal(n, 1);
  gbx_messages_free(m);
  gbx_close(other);
  gbx_close(w);
  tu_assert_alive(f->ts);
}

static void test_wait_timeout(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "empty", NULL);
  gbx_message_t *m = NULL;
  size_t n = 99;
  int64_t t0 = tu_mono_ms();
  CHECK_OK(gbx_queue_receive(f->c, "empty", 10, 30, 1, &m, &n, &e));
  int64_t took = tu_mono_ms() - t0;
  assert_int_equal(n, 0);
  assert_null(m);
  if (took < 900 || took > 5000)
    fail_msg("a 1 s wait took %lld ms", (long long)took);

  /* the queue's ReceiveMessageWaitTimeSeconds is the default wait */
  gbx_queue_attrs_t a = {.set = GBX_QA_WAIT, .receive_wait = 1};
  tu_create_queue(f->c, "patient", &a);
  t0 = tu_mono_ms();
  CHECK_OK(gbx_queue_receive(f->c, "patient", 1, 30, -1, &m, &n, &e));
  took = tu_mono_ms() - t0;
  assert_int_equal(n, 0);
  if (took < 900 || took > 5000)
    fail_msg("a queue-default 1 s wait took %lld ms", (long long)took);
  /* and an explicit 0 does not wait */
  CHECK_OK(gbx_queue_receive(f->c, "patient", 1, 30, 0, &m, &n, &e));
  assert_int_equal(n, 0);
  /* a message already there is returned at once, whatever the wait */
  CHECK_OK(gbx_queue_send(f->c, "patient", "here", 4, NULL, 0, -1, NULL, &e));
  t0 = tu_mono_ms();
  CHECK_OK(gbx_queue_receive(f->c, "patient", 1, 30, 20, &m, &n, &e));
  assert_int_equal(n, 1);
  assert_true(tu_mono_ms() - t0 < WOKEN_BEFORE_MS);
  gbx_messages_free(m);
  tu_assert_alive(f->ts);
}

static void test_queue_deleted_while_waiting(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "vanish", NULL);
  gbx_client_t *w = tu_connect(f->ts);
  uint64_t id = start_wait(w, "vanish", 60, 2);
  tu_sleep_ms(SETTLE_MS);
  CHECK_OK(gbx_queue_delete(f->c, "vanish", &e));
  /* the waiter gets an answer (empty or queue_not_found), never a message
   * of a later queue of the same name, and the server stays up */
  CHECK_OK(gbx_queue_create(f->c, "vanish", NULL, NULL, 0, NULL, &e));
  gbx_reply_t *r;
  CHECK_OK(gbx_collect(w, &r, &e));
  assert_int_equal(gbx_reply_id(r), id);
  int rc = gbx_reply_error(r, &e);
  assert_true(rc == GBX_E_OK || rc == GBX_E_QUEUE_NOT_FOUND);
  if (rc == GBX_E_OK) {
    gbx_message_t *m;
    size_t n;
    CHECK_OK(gbx_reply_messages(r, &m, &n, &e));
    assert_int_equal(n, 0);
  }
  gbx_reply_free(r);
  gbx_close(w);
  tu_assert_alive(f->ts);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup, tu_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_send_wakes_waiter),
      T(test_waiters_first_come_first_served),
      T(test_batch_wakes_one_waiter_per_message),
      T(test_delay_end_wakes_waiter),
      T(test_visibility_expiry_wakes_waiter),
      T(test_other_queue_does_not_wake),
      T(test_closed_waiter_does_not_swallow),
      T(test_too_many_waiters),
      T(test_wait_timeout),
      T(test_queue_deleted_while_waiting),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
