/* test_checker.c - the history checker on hand-made histories: a clean one
 * passes, and each violation class fires on a history that has exactly that
 * violation (and not on the in-doubt or overlapping variants that are
 * allowed). A checker that cannot fail would make the whole suite prove
 * nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "checker.h"
#include "history.h"

typedef struct fx {
  hist_t *h;
  hist_log_t *log;
  int q0, d0, q1, d1;
} fx_t;

static int setup(void **state) {
  static fx_t f;
  f.h = hist_new();
  assert_non_null(f.h);
  f.q0 = hist_add_queue(f.h, "q0", -1);
  f.d0 = hist_add_queue(f.h, "q0-dlq", f.q0);
  f.q1 = hist_add_queue(f.h, "q1", -1);
  f.d1 = hist_add_queue(f.h, "q1-dlq", f.q1);
  f.log = hist_log_new(f.h, 1);
  assert_non_null(f.log);
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  hist_free(f->h);
  return 0;
}

/* Times in the histories below are in seconds, as microseconds. */
#define S(x) ((int64_t)((x)*1000000))

static hist_event_t *ev(fx_t *f, int kind, int outcome, uint64_t seq, int q, double t_req,
                        double t_rep) {
  hist_event_t *e = hist_add(f->log);
  assert_non_null(e);
  e->kind = (uint8_t)kind;
  e->outcome = (uint8_t)outcome;
  e->key = hist_key('p', 1, seq);
  e->queue = (int16_t)q;
  e->t_req = S(t_req);
  e->t_rep = S(t_rep);
  if (kind == H_SEND)
    e->targets = UINT64_C(1) << q;
  return e;
}

static hist_event_t *send_(fx_t *f, int outcome, uint64_t seq, int q) {
  return ev(f, H_SEND, outcome, seq, q, 0, 0.01);
}

static hist_event_t *recv_(fx_t *f, uint64_t seq, int q, uint64_t rc, double a, double b) {
  hist_event_t *e = ev(f, H_RECEIVE, H_OK, seq, q, a, b);
  e->rc = rc;
  return e;
}

static hist_event_t *drain_(fx_t *f, uint64_t seq, int q, uint64_t rc, double t) {
  hist_event_t *e = recv_(f, seq, q, rc, t, t + 0.01);
  e->drain = 1;
  return e;
}

static hist_event_t *del_(fx_t *f, int outcome, uint64_t seq, int q, uint64_t rc, double a,
                          double b) {
  hist_event_t *e = ev(f, H_DELETE, outcome, seq, q, a, b);
  e->rc = rc;
  return e;
}

/* Runs the checker; returns the report (violations printed for failures). */
static check_report_t check(fx_t *f) {
  check_report_t r;
  long v = check_run(f->h, &r, stderr, 3);
  assert_true(v >= 0);
  return r;
}

static void assert_only(const check_report_t *r, check_class_t c, uint64_t n) {
  for (int i = 0; i < V_COUNT; i++) {
    uint64_t want = i == (int)c ? n : 0;
    if (r->violations[i] != want)
      fail_msg("class %s: %llu violations, want %llu", check_class_name(i),
               (unsigned long long)r->violations[i], (unsigned long long)want);
  }
}

static void test_clean_history(void **state) {
  fx_t *f = *state;
  send_(f, H_OK, 1, f->q0); /* received, deleted */
  recv_(f, 1, f->q0, 1, 1, 1.1);
  del_(f, H_OK, 1, f->q0, 1, 1.2, 1.3);
  send_(f, H_OK, 2, f->q0); /* expired twice, then drained */
  recv_(f, 2, f->q0, 1, 1, 1.1);
  recv_(f, 2, f->q0, 2, 5, 5.1);
  drain_(f, 2, f->q0, 3, 20);
  send_(f, H_OK, 3, f->q1); /* dead-lettered, drained from the DLQ */
  recv_(f, 3, f->q1, 1, 1, 1.1);
  drain_(f, 3, f->d1, 2, 21)->src = (int16_t)f->q1;
  send_(f, H_UNKNOWN, 4, f->q0); /* in doubt, never seen: fine */
  send_(f, H_UNKNOWN, 5, f->q0); /* in doubt, seen: fine */
  drain_(f, 5, f->q0, 1, 20);
  send_(f, H_FAIL, 6, f->q0); /* refused, never seen */
  send_(f, H_OK, 7, f->q0);   /* its delete in doubt: may be gone */
  recv_(f, 7, f->q0, 1, 1, 1.1);
  del_(f, H_UNKNOWN, 7, f->q0, 1, 1.2, 1.3);
  check_report_t r = check(f);
  assert_only(&r, V_LOST, 0);
  assert_int_equal(r.messages, 7);
  assert_int_equal(r.sends[H_OK], 4);
  assert_int_equal(r.sends[H_UNKNOWN], 2);
  assert_int_equal(r.sends[H_FAIL], 1);
  assert_int_equal(r.drained, 3);
}

static void test_lost(void **state) {
  fx_t *f = *state;
  send_(f, H_OK, 1, f->q0);
  recv_(f, 1, f->q0, 1, 1, 1.1);
  del_(f, H_FAIL, 1, f->q0, 1, 1.2, 1.3); /* a refused delete changes nothing */
  send_(f, H_OK, 2, f->q1);               /* never seen at all */
  check_report_t r = check(f);
  assert_only(&r, V_LOST, 2);
}

static void test_unexpected(void **state) {
  fx_t *f = *state;
  recv_(f, 1, f->q0, 1, 1, 1.1); /* never sent */
  send_(f, H_FAIL, 2, f->q0);    /* refused, yet delivered */
  drain_(f, 2, f->q0, 1, 20);
  send_(f, H_OK, 3, f->q0); /* sent to q0, delivered from q1 */
  drain_(f, 3, f->q0, 1, 20);
  recv_(f, 3, f->q1, 1, 1, 1.1);
  recv_(f, 4, f->q0, 1, 1, 1.1)->key = HIST_KEY_BAD; /* no tag */
  check_report_t r = check(f);
  assert_only(&r, V_UNEXPECTED, 4);
}

static void test_after_delete(void **state) {
  fx_t *f = *state;
  send_(f, H_OK, 1, f->q0);
  recv_(f, 1, f->q0, 1, 1, 1.1);
  del_(f, H_OK, 1, f->q0, 1, 1.2, 1.3);
  recv_(f, 1, f->q0, 2, 6, 6.1); /* back after an acknowledged delete */
  send_(f, H_OK, 2, f->q0);      /* a receive overlapping the delete: allowed */
  recv_(f, 2, f->q0, 1, 1, 1.1);
  del_(f, H_OK, 2, f->q0, 1, 1.2, 1.5);
  recv_(f, 2, f->q0, 2, 1.4, 1.45);
  send_(f, H_OK, 3, f->q0); /* the delete in doubt: allowed */
  recv_(f, 3, f->q0, 1, 1, 1.1);
  del_(f, H_UNKNOWN, 3, f->q0, 1, 1.2, 1.3);
  recv_(f, 3, f->q0, 2, 6, 6.1);
  drain_(f, 3, f->q0, 3, 20);
  send_(f, H_OK, 4, f->q0); /* found by the drain after its delete */
  recv_(f, 4, f->q0, 1, 1, 1.1);
  del_(f, H_OK, 4, f->q0, 1, 1.2, 1.3);
  drain_(f, 4, f->q0, 2, 20);
  check_report_t r = check(f);
  assert_only(&r, V_AFTER_DELETE, 2); /* seq 1, and the drain of seq 4 */
}

static void test_rc_regression(void **state) {
  fx_t *f = *state;
  send_(f, H_OK, 1, f->q0); /* same count twice */
  recv_(f, 1, f->q0, 2, 1, 1.1);
  recv_(f, 1, f->q0, 2, 5, 5.1);
  drain_(f, 1, f->q0, 3, 20);
  send_(f, H_OK, 2, f->q0); /* lower count later */
  recv_(f, 2, f->q0, 3, 1, 1.1);
  drain_(f, 2, f->q0, 1, 20);
  send_(f, H_OK, 3, f->q0); /* overlapping receives: no order, no violation */
  recv_(f, 3, f->q0, 2, 1, 5);
  recv_(f, 3, f->q0, 1, 2, 3);
  drain_(f, 3, f->q0, 3, 20);
  send_(f, H_OK, 4, f->q0); /* jumps are fine (a receive in doubt happened) */
  recv_(f, 4, f->q0, 1, 1, 1.1);
  recv_(f, 4, f->q0, 4, 5, 5.1);
  drain_(f, 4, f->q0, 5, 20);
  check_report_t r = check(f);
  assert_only(&r, V_RC_REGRESSION, 2);
}

static void test_queue_and_dlq(void **state) {
  fx_t *f = *state;
  send_(f, H_OK, 1, f->q0); /* both in the drain */
  drain_(f, 1, f->q0, 4, 20);
  drain_(f, 1, f->d0, 5, 21)->src = (int16_t)f->q0;
  send_(f, H_OK, 2, f->q0); /* back in the queue after a delivery from the DLQ */
  recv_(f, 2, f->d0, 4, 1, 1.1)->src = (int16_t)f->q0;
  drain_(f, 2, f->q0, 5, 20);
  check_report_t r = check(f);
  assert_only(&r, V_QUEUE_AND_DLQ, 2);
}

static void test_drain_duplicate(void **state) {
  fx_t *f = *state;
  send_(f, H_OK, 1, f->q0);
  drain_(f, 1, f->q0, 1, 20);
  drain_(f, 1, f->q0, 1, 20.5); /* also an rc regression */
  check_report_t r = check(f);
  assert_int_equal(r.violations[V_DRAIN_DUPLICATE], 1);
  assert_int_equal(r.violations[V_RC_REGRESSION], 1);
  assert_int_equal(r.violations[V_LOST], 0);
}

static void publish(fx_t *f, int outcome, uint64_t seq, uint64_t targets) {
  hist_event_t *e = ev(f, H_PUBLISH, outcome, seq, f->q0, 0, 0.01);
  e->key = hist_key('t', 1, seq);
  e->targets = targets;
}

static hist_event_t *tdrain(fx_t *f, uint64_t seq, int q) {
  hist_event_t *e = drain_(f, seq, q, 1, 20);
  e->key = hist_key('t', 1, seq);
  return e;
}

static void test_partial_fanout(void **state) {
  fx_t *f = *state;
  uint64_t both = UINT64_C(1) << f->q0 | UINT64_C(1) << f->q1;
  publish(f, H_UNKNOWN, 1, both); /* in doubt, in one of two: partial */
  tdrain(f, 1, f->q0);
  publish(f, H_UNKNOWN, 2, both); /* in doubt, in both: fine */
  tdrain(f, 2, f->q0);
  tdrain(f, 2, f->q1);
  publish(f, H_UNKNOWN, 3, both); /* in doubt, in none: fine */
  publish(f, H_OK, 4, both);      /* acknowledged, in one: lost in the other */
  tdrain(f, 4, f->q1);
  check_report_t r = check(f);
  assert_int_equal(r.violations[V_PARTIAL_FANOUT], 1);
  assert_int_equal(r.violations[V_LOST], 1);
  assert_int_equal(r.violations[V_UNEXPECTED], 0);
  assert_int_equal(r.publishes[H_UNKNOWN], 3);
}

static void test_bodies(void **state) {
  (void)state;
  char b[128];
  int n = hist_body(b, sizeof b, 'p', 42, 123456789, 17);
  assert_true(n > 0);
  assert_int_equal(hist_parse_body(b, (size_t)n), hist_key('p', 42, 123456789));
  n = hist_body(b, sizeof b, 't', 0, 0, 0);
  assert_string_equal(b, "t0-0");
  assert_int_equal(hist_parse_body(b, (size_t)n), hist_key('t', 0, 0));
  static const char *const bad[] = {"p01-1", "p1-",     "p-1",         "x1-1", "p1-1|",
                                    "p1-1x", "p1-1|zz", "p99999999-1", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (hist_parse_body(bad[i], strlen(bad[i])) != HIST_KEY_BAD)
      fail_msg("'%s' parsed as a valid tag", bad[i]);
  n = hist_body(b, sizeof b, 'p', 1, 1, 40);
  b[n - 1] ^= 1; /* a damaged body is not ours */
  assert_int_equal(hist_parse_body(b, (size_t)n), HIST_KEY_BAD);
  char tag[HIST_TAG_MAX];
  assert_string_equal(hist_key_str(hist_key('p', 3, 9), tag), "p3-9");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_clean_history, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unexpected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_after_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rc_regression, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_and_dlq, setup, teardown),
      cmocka_unit_test_setup_teardown(test_drain_duplicate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_partial_fanout, setup, teardown),
      cmocka_unit_test(test_bodies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
