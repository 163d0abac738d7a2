/* test_queue.c - one queue's in-memory structure (queue.c): the age order
 * that retention and ApproximateAgeOfOldestMessage read, checked against a
 * plain reference under random arrivals, and its cost when messages arrive
 * far out of send-time order (dead-lettered messages keep their send time;
 * a wall clock set back between runs makes new sends older than the
 * backlog). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue.h"

static msg_t *mk(uint64_t seq, int64_t sent_ms, uint8_t state) {
  msg_t *m = calloc(1, sizeof(*m));
  assert_non_null(m);
  heap_node_init(&m->hn, 0);
  m->seq = m->idn = seq;
  m->sent_ms = sent_ms;
  m->size = 10;
  m->state = state;
  return m;
}

static int older(const msg_t *a, const msg_t *b) {
  return a->sent_ms < b->sent_ms || (a->sent_ms == b->sent_ms && a->seq < b->seq);
}

static int count_one(void *ctx, const msg_t *m) {
  (void)m;
  ++*(uint32_t *)ctx;
  return 0;
}

/* xorshift: reproducible without the C library's rand state */
static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Random sends (mostly in time order, some far older, some equal times) and
 * random removals: after every step the oldest is the reference's oldest,
 * every message is found by seq, and queue_each visits each once. */
static void test_oldest_matches_reference(void **state) {
  (void)state;
  queue_t *q = queue_new("q");
  msg_t *live[4096];
  uint32_t n = 0;
  uint64_t s = 88172645463325252ull, seq = 1;
  int64_t clock = 1000000;
  for (int step = 0; step < 40000; step++) {
    uint64_t r = rnd(&s);
    if (n < 4096 && (n == 0 || r % 3 != 0)) {
      clock += (int64_t)(r >> 8) % 3; /* equal times happen */
      int64_t sent = clock;
      if ((r >> 16) % 5 == 0)
        sent -= (int64_t)((r >> 20) % 500000); /* dead-lettered or clock set back */
      msg_t *m = mk(seq++, sent, (r >> 40) % 2 ? MSG_VISIBLE : MSG_INFLIGHT);
      assert_int_equal(queue_add(q, m), 0);
      live[n++] = m;
    } else {
      uint32_t i = (uint32_t)((r >> 24) % n);
      queue_remove(q, live[i]);
      free(live[i]);
      live[i] = live[--n];
    }
    assert_int_equal(q->count, n);
    const msg_t *want = NULL; /* equal send times may come out in any order */
    for (uint32_t i = 0; i < n; i++)
      if (!want || older(live[i], want))
        want = live[i];
    const msg_t *got = queue_oldest(q);
    assert_non_null(got);
    assert_int_equal(got->sent_ms, want->sent_ms);
    assert_ptr_equal(queue_find(q, got->seq), got);
    if (step % 997 == 0) {
      uint32_t seen = 0;
      queue_each(q, count_one, &seen);
      assert_int_equal(seen, n);
      for (uint32_t i = 0; i < n; i++)
        assert_ptr_equal(queue_find(q, live[i]->seq), live[i]);
    }
  }
  assert_true(q->late.len > 0); /* the age heap was exercised */
  /* draining oldest first yields send-time order */
  int64_t prev_ms = INT64_MIN;
  for (msg_t *m; (m = queue_oldest(q));) {
    assert_true(m->sent_ms >= prev_ms);
    prev_ms = m->sent_ms;
    queue_remove(q, m);
    free(m);
  }
  assert_int_equal(q->count, 0);
  assert_int_equal(q->nvisible + q->ninflight + q->ndelayed, 0);
  queue_free(q);
}

/* 300,000 messages arriving newest first: each is older than everything
 * queued. A sorted list walked from its tail made this 4.5e10 steps (hours
 * on the loop thread); the age heap makes each insert O(log n). */
static void test_reverse_arrivals_stay_cheap(void **state) {
  (void)state;
  enum { N = 300000 };
  queue_t *q = queue_new("dlq");
  for (uint32_t i = 0; i < N; i++)
    assert_int_equal(queue_add(q, mk(i + 1, 5000000 - (int64_t)i, MSG_VISIBLE)), 0);
  assert_int_equal(q->count, N);
  assert_int_equal(q->nvisible, N);
  assert_int_equal(queue_oldest(q)->seq, N); /* the last to arrive is the oldest */
  for (uint32_t i = 0; i < N / 2; i++) {     /* expire the older half, oldest first */
    msg_t *m = queue_oldest(q);
    assert_int_equal(m->seq, N - i);
    queue_remove(q, m);
    free(m);
  }
  assert_int_equal(queue_oldest(q)->seq, N / 2);
  queue_free(q); /* frees what is left in both structures */
}

/* A message moved out of the heap and back in (dead-lettered, then
 * redriven) carries no stale heap flag. */
static void test_readd_after_remove(void **state) {
  (void)state;
  queue_t *a = queue_new("a"), *b = queue_new("b");
  for (uint32_t i = 0; i < 40; i++)
    assert_int_equal(queue_add(a, mk(i + 1, 2000 + i, MSG_VISIBLE)), 0);
  msg_t *m = mk(100, 1000, MSG_VISIBLE);
  assert_int_equal(queue_add(a, m), 0);
  assert_true(m->state & MSG_LATE);
  assert_ptr_equal(queue_oldest(a), m);
  queue_remove(a, m);
  assert_false(m->state & MSG_LATE);
  assert_int_equal(queue_oldest(a)->seq, 1);
  assert_int_equal(queue_add(b, m), 0); /* an empty queue: the list */
  assert_false(m->state & MSG_LATE);
  assert_ptr_equal(queue_oldest(b), m);
  queue_free(a);
  queue_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_oldest_matches_reference),
      cmocka_unit_test(test_reverse_arrivals_stay_cheap),
      cmocka_unit_test(test_readd_after_remove),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
