/* journal.h - where the broker's pure state logic records its mutations.
 * The server points it at the open group-commit batch (commit_batch());
 * unit tests point it at a recorder. The broker never does I/O itself. */
#ifndef GBX_JOURNAL_H
#define GBX_JOURNAL_H

#include <stddef.h>

#include "store.h"

typedef struct journal {
  void *ctx;
  void (*put)(void *ctx, store_cf_t cf, const void *k, size_t kl, const void *v, size_t vl);
  void (*del)(void *ctx, store_cf_t cf, const void *k, size_t kl);
  void (*sdel)(void *ctx, store_cf_t cf, const void *k, size_t kl);
  void (*delrange)(void *ctx, store_cf_t cf, const void *s, size_t sl, const void *e, size_t el);
} journal_t;

#endif
