/* queue.c - see queue.h. */
#include "queue.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

blob_t *blob_new(uint32_t len) {
  blob_t *b = malloc(sizeof(*b) + len);
  if (!b)
    return NULL;
  b->refs = 1;
  b->len = len;
  return b;
}

void blob_unref(blob_t *b) {
  if (b && --b->refs == 0)
    free(b);
}

queue_t *queue_new(const char *name) {
  queue_t *q = calloc(1, sizeof(*q));
  if (!q)
    return NULL;
  strncpy(q->name, name, GBX_MAX_NAME);
  heap_node_init(&q->retention_hn, 0);
  heap_node_init(&q->dlq_more_hn, 0);
  return q;
}

void queue_free(queue_t *q) {
  if (!q)
    return;
  for (msg_t *m = q->age_head, *n; m; m = n) {
    n = m->anext;
    blob_unref(m->blob);
    free(m);
  }
  for (uint32_t i = 0; i < q->late.len; i++) {
    msg_t *m = msg_of_ahn(q->late.a[i]);
    blob_unref(m->blob);
    free(m);
  }
  heap_free(&q->late);
  free(q->slots);
  qrec_free(&q->rec);
  free(q);
}

static inline uint32_t slot_of(uint64_t seq, uint32_t nslots) {
  return (uint32_t)((seq * 0x9E3779B97F4A7C15ull) >> 32) & (nslots - 1);
}

static int grow(queue_t *q) {
  uint32_t n = q->nslots ? q->nslots * 2 : 16;
  msg_t **s = calloc(n, sizeof(*s));
  if (!s)
    return -1;
  for (uint32_t i = 0; i < q->nslots; i++) {
    msg_t *m = q->slots[i];
    if (!m)
      continue;
    uint32_t j = slot_of(m->seq, n);
    while (s[j])
      j = (j + 1) & (n - 1);
    s[j] = m;
  }
  free(q->slots);
  q->slots = s;
  q->nslots = n;
  return 0;
}

msg_t *queue_find(const queue_t *q, uint64_t seq) {
  if (!q->nslots)
    return NULL;
  for (uint32_t j = slot_of(seq, q->nslots);; j = (j + 1) & (q->nslots - 1)) {
    msg_t *m = q->slots[j];
    if (!m)
      return NULL;
    if (m->seq == seq)
      return m;
  }
}

static void table_del(queue_t *q, msg_t *m) {
  uint32_t mask = q->nslots - 1, i = slot_of(m->seq, q->nslots);
  while (q->slots[i] != m)
    i = (i + 1) & mask;
  /* backward-shift deletion keeps probe chains intact without tombstones */
  uint32_t j = i;
  for (;;) {
    q->slots[i] = NULL;
    for (;;) {
      j = (j + 1) & mask;
      if (!q->slots[j])
        return;
      uint32_t k = slot_of(q->slots[j]->seq, q->nslots);
      /* move slots[j] into the hole at i unless its home k lies cyclically in (i, j] */
      if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j)))
        break;
    }
    q->slots[i] = q->slots[j];
    i = j;
  }
}

static void vis_push(queue_t *q, msg_t *m) {
  m->next = NULL;
  m->prev = q->vis_tail;
  if (q->vis_tail)
    q->vis_tail->next = m;
  else
    q->vis_head = m;
  q->vis_tail = m;
}

static void vis_unlink(queue_t *q, msg_t *m) {
  if (m->prev)
    m->prev->next = m->next;
  else
    q->vis_head = m->next;
  if (m->next)
    m->next->prev = m->prev;
  else
    q->vis_tail = m->prev;
  m->next = m->prev = NULL;
}

static void count_state(queue_t *q, uint8_t st, int d) {
  switch (st) {
  case MSG_VISIBLE:
    q->nvisible += (uint32_t)d;
    break;
  case MSG_DELAYED:
    q->ndelayed += (uint32_t)d;
    break;
  default:
    q->ninflight += (uint32_t)d;
    break;
  }
}

/* The age heap is the broker's heap structure (heap.c) keyed on the send
 * time, mapped order-preserving from int64 to uint64; equal times come out
 * in any order. */
static inline uint64_t age_key(int64_t sent_ms) {
  return (uint64_t)sent_ms ^ (1ull << 63);
}

static inline int older(const msg_t *a, const msg_t *b) {
  return a->sent_ms < b->sent_ms || (a->sent_ms == b->sent_ms && a->seq < b->seq);
}

/* How far back from the age list's tail an insert may walk before the
 * message goes to the age heap instead: far enough for near-sorted arrivals
 * (dead-lettering a batch, restoring a queue in key order), short enough to
 * keep every insert O(1) or O(log n). */
#define AGE_WALK_MAX 32

static int age_add(queue_t *q, msg_t *m) {
  msg_t *a = q->age_tail;
  for (int steps = 0; a && older(m, a); a = a->aprev) {
    if (++steps > AGE_WALK_MAX) {
      heap_node_init(&m->ahn, 0);
      if (heap_insert(&q->late, &m->ahn, age_key(m->sent_ms)) != 0)
        return -1;
      m->state |= MSG_LATE;
      return 0;
    }
  }
  m->state &= (uint8_t)~MSG_LATE;
  m->aprev = a;
  m->anext = a ? a->anext : q->age_head;
  if (m->anext)
    m->anext->aprev = m;
  else
    q->age_tail = m;
  if (a)
    a->anext = m;
  else
    q->age_head = m;
  return 0;
}

static void age_remove(queue_t *q, msg_t *m) {
  if (m->state & MSG_LATE) {
    heap_remove(&q->late, &m->ahn);
    m->state &= (uint8_t)~MSG_LATE;
    return;
  }
  if (m->aprev)
    m->aprev->anext = m->anext;
  else
    q->age_head = m->anext;
  if (m->anext)
    m->anext->aprev = m->aprev;
  else
    q->age_tail = m->aprev;
  m->anext = m->aprev = NULL;
}

void queue_each(const queue_t *q, int (*fn)(void *ctx, const msg_t *m), void *ctx) {
  for (const msg_t *m = q->age_head; m; m = m->anext)
    if (fn(ctx, m))
      return;
  for (uint32_t i = 0; i < q->late.len; i++)
    if (fn(ctx, msg_of_ahn(q->late.a[i])))
      return;
}

int queue_add(queue_t *q, msg_t *m) {
  if ((q->count + 1) * 4 > q->nslots * 3 && grow(q) != 0)
    return -1;
  if (age_add(q, m) != 0)
    return -1;
  uint32_t j = slot_of(m->seq, q->nslots);
  while (q->slots[j])
    j = (j + 1) & (q->nslots - 1);
  q->slots[j] = m;
  q->count++;
  count_state(q, msg_state(m), 1);
  q->bytes += m->size;
  if (msg_state(m) == MSG_VISIBLE)
    vis_push(q, m);
  return 0;
}

void queue_remove(queue_t *q, msg_t *m) {
  table_del(q, m);
  q->count--;
  age_remove(q, m);
  if (msg_state(m) == MSG_VISIBLE)
    vis_unlink(q, m);
  count_state(q, msg_state(m), -1);
  q->bytes -= m->size;
}

void queue_set_state(queue_t *q, msg_t *m, uint8_t state) {
  uint8_t old = msg_state(m);
  if (old == state)
    return;
  if (old == MSG_VISIBLE)
    vis_unlink(q, m);
  count_state(q, old, -1);
  m->state = (uint8_t)((m->state & 0xf0) | state);
  count_state(q, state, 1);
  if (state == MSG_VISIBLE)
    vis_push(q, m);
}

size_t queue_index_bytes(const queue_t *q) {
  return ((size_t)q->nslots + q->late.cap) * sizeof(msg_t *);
}
