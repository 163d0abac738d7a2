/* rec_journal.h - a recording journal for unit tests: an in-memory map per
 * column family that applies puts, deletes, single deletes and range
 * deletes exactly as RocksDB would, so a test can "restart" by replaying it
 * into a fresh broker. Header-only (static functions) for test files. */
#ifndef GBX_TEST_REC_JOURNAL_H
#define GBX_TEST_REC_JOURNAL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "journal.h"


typedef struct kv {
  int cf;
  uint8_t k[128];
  size_t kl;
  uint8_t *v;
  size_t vl;
} kv_t;

typedef struct rec {
  kv_t *a;
  size_t n, cap;
  size_t puts, dels, sdels, ranges;
  int off; /* count nothing, keep nothing (bulk tests) */
} rec_t;

static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  return c ? c : (al < bl ? -1 : al > bl);
}

static kv_t *find(rec_t *r, int cf, const void *k, size_t kl) {
  for (size_t i = 0; i < r->n; i++)
    if (r->a[i].cf == cf && r->a[i].kl == kl && memcmp(r->a[i].k, k, kl) == 0) return &r->a[i];
  return NULL;
}

static void drop(rec_t *r, kv_t *e) {
  free(e->v);
  *e = r->a[--r->n];
}

static void r_put(void *ctx, store_cf_t cf, const void *k, size_t kl, const void *v, size_t vl) {
  rec_t *r = ctx;
  if (r->off) return;
  kv_t *e = find(r, cf, k, kl);
  assert_true(kl <= 128);
  if (!e) {
    if (r->n == r->cap) {
      r->cap = r->cap ? r->cap * 2 : 64;
      r->a = realloc(r->a, r->cap * sizeof(*r->a));
    }
    e = &r->a[r->n++];
    e->cf = cf;
    memcpy(e->k, k, kl);
    e->kl = kl;
  } else {
    /* bodies are written exactly once (SingleDelete relies on it) */
    assert_int_not_equal(cf, STORE_CF_BODY);
    free(e->v);
  }
  e->v = malloc(vl ? vl : 1);
  memcpy(e->v, v, vl);
  e->vl = vl;
  r->puts++;
}
static void r_del(void *ctx, store_cf_t cf, const void *k, size_t kl) {
  rec_t *r = ctx;
  if (r->off) return;
  kv_t *e = find(r, cf, k, kl);
  if (e) drop(r, e);
  r->dels++;
}
static void r_sdel(void *ctx, store_cf_t cf, const void *k, size_t kl) {
  rec_t *r = ctx;
  if (r->off) return;
  kv_t *e = find(r, cf, k, kl);
  assert_non_null(e); /* a single delete always follows its one put */
  drop(r, e);
  r->sdels++;
}
static void r_range(void *ctx, store_cf_t cf, const void *s, size_t sl, const void *e, size_t el) {
  rec_t *r = ctx;
  if (r->off) return;
  for (size_t i = 0; i < r->n;) {
    kv_t *x = &r->a[i];
    if (x->cf == (int)cf && kcmp(x->k, x->kl, s, sl) >= 0 && kcmp(x->k, x->kl, e, el) < 0)
      drop(r, x);
    else
      i++;
  }
  r->ranges++;
}

static void rec_free(rec_t *r) {
  for (size_t i = 0; i < r->n; i++) free(r->a[i].v);
  free(r->a);
  memset(r, 0, sizeof(*r));
}

static journal_t rec_journal(rec_t *r) {
  journal_t j = {.ctx = r, .put = r_put, .del = r_del, .sdel = r_sdel, .delrange = r_range};
  return j;
}

#endif
