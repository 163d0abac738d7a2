/* hist.h - latency histograms with log-linear buckets (HDR style).
 *
 * Values (nanoseconds) below 2*HIST_SUB are counted exactly; above that,
 * each power-of-two range is split into HIST_SUB equal buckets, so a
 * reported value is within 1/HIST_SUB (0.8%) of the true one at any
 * magnitude. Recording is one shift, one count and one increment: no sorting
 * and no allocation. One histogram per thread; merge them at the end.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

/* Sub-buckets per power of two: 2^7 = 128 keeps the relative error under
 * 1%, finer than run-to-run noise of any benchmark here. */
#define HIST_SUB_BITS 7
#define HIST_SUB      (1u << HIST_SUB_BITS)
/* Largest value kept apart: 2^40 ns is 18 minutes, longer than any
 * benchmark runs; larger values land in the last bucket (max stays exact). */
#define HIST_MAX_BITS 40
#define HIST_BUCKETS  ((HIST_MAX_BITS - HIST_SUB_BITS + 2) * HIST_SUB)

typedef struct hist {
  uint64_t count;
  uint64_t min, max; /* exact; min is UINT64_MAX while empty */
  double sum;        /* for the mean */
  uint64_t buckets[HIST_BUCKETS];
} hist_t;

/* Empties h. */
void hist_init(hist_t *h);
/* Counts one value (ns). */
void hist_record(hist_t *h, uint64_t v);
/* Adds every value of src into dst. */
void hist_merge(hist_t *dst, const hist_t *src);
/* The value at quantile q (0..1): the midpoint of the bucket holding the
 * ceil(q*count)-th smallest value, clamped to [min, max]. 0 when empty. */
uint64_t hist_quantile(const hist_t *h, double q);
/* Mean of the recorded values; 0 when empty. */
double hist_mean(const hist_t *h);

/* Bucket index of a value, and the lowest value of a bucket (for tests). */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_low(unsigned idx);

#endif
