/* heap.h - intrusive binary min-heap of deadlines with removal.
 * The broker's one deadline structure: visibility, delay, long-poll and
 * retention deadlines all live here, and one uv_timer_t is armed for the
 * earliest. Nodes are embedded in their owners; the heap stores pointers. */
#ifndef GBX_HEAP_H
#define GBX_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_NONE UINT32_MAX

typedef struct heap_node {
  uint64_t key;  /* deadline, monotonic milliseconds */
  uint32_t idx;  /* position in the heap, HEAP_NONE when not in it */
  uint8_t kind;  /* owner kind, for the dispatcher (see broker.h) */
} heap_node_t;

typedef struct heap {
  heap_node_t **a;
  uint32_t len;
  uint32_t cap;
} heap_t;

void heap_init(heap_t *h);
void heap_free(heap_t *h);
static inline void heap_node_init(heap_node_t *n, uint8_t kind) { n->key = 0; n->idx = HEAP_NONE; n->kind = kind; }
static inline int heap_node_linked(const heap_node_t *n) { return n->idx != HEAP_NONE; }
/* Inserts n (not linked) with key. Returns 0, or -1 when out of memory. */
int heap_insert(heap_t *h, heap_node_t *n, uint64_t key);
/* Removes n if linked; no-op otherwise. */
void heap_remove(heap_t *h, heap_node_t *n);
/* Sets n's key, inserting or moving it. Returns 0 or -1 (out of memory). */
int heap_set(heap_t *h, heap_node_t *n, uint64_t key);
/* The node with the smallest key, or NULL. */
static inline heap_node_t *heap_min(const heap_t *h) { return h->len ? h->a[0] : NULL; }

#endif
