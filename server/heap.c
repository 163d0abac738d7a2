/* heap.c - see heap.h. A plain array heap; each node knows its index so
 * removal and re-keying are O(log n). */
#include "heap.h"

#include <stdlib.h>

void heap_init(heap_t *h) { h->a = NULL; h->len = h->cap = 0; }

void heap_free(heap_t *h) {
  free(h->a);
  heap_init(h);
}

static void place(heap_t *h, uint32_t i, heap_node_t *n) {
  h->a[i] = n;
  n->idx = i;
}

static void sift_up(heap_t *h, uint32_t i) {
  heap_node_t *n = h->a[i];
  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (h->a[p]->key <= n->key) break;
    place(h, i, h->a[p]);
    i = p;
  }
  place(h, i, n);
}

static void sift_down(heap_t *h, uint32_t i) {
  heap_node_t *n = h->a[i];
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    uint64_t mk = n->key;
    if (l < h->len && h->a[l]->key < mk) { m = l; mk = h->a[l]->key; }
    if (r < h->len && h->a[r]->key < mk) m = r;
    if (m == i) break;
    place(h, i, h->a[m]);
    i = m;
  }
  place(h, i, n);
}

int heap_insert(heap_t *h, heap_node_t *n, uint64_t key) {
  if (h->len == h->cap) {
    uint32_t cap = h->cap ? h->cap * 2 : 64;
    heap_node_t **a = realloc(h->a, (size_t)cap * sizeof(*a));
    if (!a) return -1;
    h->a = a;
    h->cap = cap;
  }
  n->key = key;
  place(h, h->len++, n);
  sift_up(h, n->idx);
  return 0;
}

void heap_remove(heap_t *h, heap_node_t *n) {
  if (n->idx == HEAP_NONE) return;
  uint32_t i = n->idx;
  n->idx = HEAP_NONE;
  h->len--;
  if (i == h->len) return;
  heap_node_t *last = h->a[h->len];
  place(h, i, last);
  if (i > 0 && h->a[(i - 1) / 2]->key > last->key)
    sift_up(h, i);
  else
    sift_down(h, i);
}

int heap_set(heap_t *h, heap_node_t *n, uint64_t key) {
  if (n->idx == HEAP_NONE) return heap_insert(h, n, key);
  uint64_t old = n->key;
  n->key = key;
  if (key < old)
    sift_up(h, n->idx);
  else if (key > old)
    sift_down(h, n->idx);
  return 0;
}
