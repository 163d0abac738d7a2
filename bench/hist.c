/* hist.c - log-linear latency histograms (see hist.h). */
#include "hist.h"

#include <string.h>

void hist_init(hist_t *h) {
  memset(h, 0, sizeof(*h));
  h->min = UINT64_MAX;
}

unsigned hist_index(uint64_t v) {
  if (v < 2 * HIST_SUB)
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  if (msb > HIST_MAX_BITS)
    return HIST_BUCKETS - 1;
  /* Keep the top HIST_SUB_BITS+1 bits: (v >> shift) is in [SUB, 2*SUB). */
  unsigned shift = msb - HIST_SUB_BITS;
  return (shift + 1) * HIST_SUB + (unsigned)(v >> shift) - HIST_SUB;
}

uint64_t hist_bucket_low(unsigned idx) {
  if (idx < 2 * HIST_SUB)
    return idx;
  unsigned shift = idx / HIST_SUB - 1;
  return (uint64_t)(idx % HIST_SUB + HIST_SUB) << shift;
}

/* Width of a bucket: 1 in the exact range, 2^shift above. */
static uint64_t bucket_width(unsigned idx) {
  if (idx < 2 * HIST_SUB)
    return 1;
  return (uint64_t)1 << (idx / HIST_SUB - 1);
}

void hist_record(hist_t *h, uint64_t v) {
  h->buckets[hist_index(v)]++;
  h->count++;
  h->sum += (double)v;
  if (v < h->min)
    h->min = v;
  if (v > h->max)
    h->max = v;
}

void hist_merge(hist_t *dst, const hist_t *src) {
  if (!src->count)
    return;
  for (unsigned i = 0; i < HIST_BUCKETS; i++)
    dst->buckets[i] += src->buckets[i];
  dst->count += src->count;
  dst->sum += src->sum;
  if (src->min < dst->min)
    dst->min = src->min;
  if (src->max > dst->max)
    dst->max = src->max;
}

uint64_t hist_quantile(const hist_t *h, double q) {
  if (!h->count)
    return 0;
  if (q <= 0)
    return h->min;
  if (q >= 1)
    return h->max;
  uint64_t rank = (uint64_t)(q * (double)h->count);
  if ((double)rank < q * (double)h->count)
    rank++; /* ceil */
  if (rank < 1)
    rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      uint64_t v = hist_bucket_low(i) + bucket_width(i) / 2;
      if (v < h->min)
        v = h->min;
      if (v > h->max)
        v = h->max;
      return v;
    }
  }
  return h->max;
}

double hist_mean(const hist_t *h) {
  return h->count ? h->sum / (double)h->count : 0;
}
