/* test_hist.c - the log-linear histogram against exact answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "hist.h"

/* Every value maps into a bucket whose range holds it, buckets are
 * contiguous and increasing, and the relative width stays under 1/SUB. */
static void test_buckets_cover_values(void **state) {
  unsigned prev = 0;
  for (uint64_t v = 0; v < 200000; v++) {
    unsigned i = hist_index(v);
    assert_true(i >= prev);
    assert_true(i <= prev + 1);
    assert_true(hist_bucket_low(i) <= v);
    assert_true(i + 1 >= HIST_BUCKETS || hist_bucket_low(i + 1) > v);
    prev = i;
  }
  for (unsigned b = 2 * HIST_SUB; b + 1 < HIST_BUCKETS; b++) {
    uint64_t lo = hist_bucket_low(b), hi = hist_bucket_low(b + 1);
    assert_true(hi > lo);
    assert_true((hi - lo) * HIST_SUB <= lo);
    assert_int_equal(hist_index(lo), b);
    assert_int_equal(hist_index(hi - 1), b);
  }
}

/* Values beyond the tracked range land in the last bucket; max stays exact. */
static void test_huge_values(void **state) {
  hist_t *h = malloc(sizeof(*h));
  assert_non_null(h);
  hist_init(h);
  assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
  hist_record(h, UINT64_MAX);
  hist_record(h, 5);
  assert_int_equal(h->max, UINT64_MAX);
  assert_int_equal(h->min, 5);
  assert_int_equal(hist_quantile(h, 1.0), UINT64_MAX);
  assert_int_equal(hist_quantile(h, 0.5), 5);
  free(h);
}

/* Quantiles of 1..100000 are within 1% of the exact ones. */
static void test_quantiles_close(void **state) {
  hist_t *h = malloc(sizeof(*h));
  assert_non_null(h);
  hist_init(h);
  for (uint64_t v = 1; v <= 100000; v++)
    hist_record(h, v);
  static const double qs[] = {0.5, 0.9, 0.99, 0.999};
  for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
    double exact = qs[i] * 100000, got = (double)hist_quantile(h, qs[i]);
    assert_true(got >= exact * 0.99 && got <= exact * 1.01);
  }
  assert_int_equal(hist_quantile(h, 0), 1);
  assert_int_equal(hist_quantile(h, 1), 100000);
  assert_true(hist_mean(h) > 50000.4 && hist_mean(h) < 50000.6);
  free(h);
}

/* Small values are exact; a merge equals recording everything in one. */
static void test_exact_small_and_merge(void **state) {
  hist_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b)), *all = malloc(sizeof(*all));
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(all);
  hist_init(a);
  hist_init(b);
  hist_init(all);
  for (uint64_t v = 0; v < 200; v++) {
    hist_record(v % 2 ? a : b, v);
    hist_record(all, v);
  }
  hist_merge(a, b);
  assert_int_equal(a->count, 200);
  assert_int_equal(a->min, 0);
  assert_int_equal(a->max, 199);
  assert_int_equal(hist_quantile(a, 0.5), 99);
  assert_int_equal(hist_quantile(a, 0.99), 197);
  for (unsigned i = 0; i < HIST_BUCKETS; i++)
    assert_int_equal(a->buckets[i], all->buckets[i]);
  hist_t empty;
  hist_init(&empty);
  assert_int_equal(hist_quantile(&empty, 0.5), 0);
  assert_true(hist_mean(&empty) == 0);
  free(a);
  free(b);
  free(all);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buckets_cover_values),
      cmocka_unit_test(test_huge_values),
      cmocka_unit_test(test_quantiles_close),
      cmocka_unit_test(test_exact_small_and_merge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
