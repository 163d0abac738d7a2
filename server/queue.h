/* queue.h - one queue's messages in memory: pure data structure, no I/O,
 * no clock. The broker (broker.c) drives it; it owns the deadline heap, the
 * journal and the clock.
 *
 * Each message is in exactly one state:
 *   VISIBLE   on the queue's visible list (FIFO, best effort)
 *   DELAYED   not yet visible; its heap node holds the delay deadline
 *   INFLIGHT  received; its heap node holds the visibility deadline
 * and always in the queue's age order (original send time), which retention
 * takes from its oldest end, and in the queue's seq -> message table.
 *
 * Age order is two structures: a list sorted by send time, which takes a
 * message whose time is at most a short walk back from its tail (every send,
 * fan-out copy and redrive: their time is the clock's), and a min-heap for
 * the rest, so no insert walks far: dead-lettered messages keep their
 * original, older time (SQS), and after a restart with the wall clock set
 * back new sends are older than the messages already queued. Walking a long
 * list for each of those would make n of them cost O(n^2) on the loop
 * thread. The oldest message is the older of the list's head and the heap's
 * top (queue_oldest).
 *
 * Memory per message: sizeof(msg_t) (112 bytes on x86-64: times are kept as
 * 32-bit millisecond offsets from the send, which retention bounds to 14 days) plus one table slot
 * (8 bytes at load <= 0.75, so ~11 on average), and 8 more for a message in the
 * age heap; bodies are separate (blob_t). */
#ifndef GBX_QUEUE_H
#define GBX_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "heap.h"
#include "records.h"

enum { MSG_VISIBLE = 0, MSG_DELAYED = 1, MSG_INFLIGHT = 2 };
#define MSG_FETCHING 0x10 /* flag: a body fetch for it is under way */
#define MSG_ENVELOPE 0x20 /* flag: from a topic, delivered as an SNS envelope */
#define MSG_SHARED   0x40 /* flag: its body is shared with other copies (fan-out) */
#define MSG_LATE     0x80 /* flag: in the age heap, not the age list (queue.c only) */
/* (the flag, not heap_node_linked: ahn shares its bytes with the list links) */

/* A reference-counted body+attributes blob in the stored layout (records.h).
 * Shared by whoever holds it: cached messages and replies being built. */
typedef struct blob {
  uint32_t refs;
  uint32_t len;
  uint8_t data[];
} blob_t;

blob_t *blob_new(uint32_t len); /* refs = 1; NULL on OOM */
static inline blob_t *blob_ref(blob_t *b) {
  if (b)
    b->refs++;
  return b;
}
void blob_unref(blob_t *b);

typedef struct msg {
  heap_node_t hn;          /* delay or visibility deadline (mono ms) */
  struct msg *next, *prev; /* visible list */
  union {
    struct {
      struct msg *anext, *aprev; /* age list */
    };
    heap_node_t ahn; /* age heap node, keyed on sent_ms (MSG_LATE) */
  };
  uint64_t seq;       /* key within the queue (IDX key) */
  uint64_t idn;       /* counter its message id derives from */
  uint64_t body_id;   /* BODY key */
  blob_t *blob;       /* cached body, or NULL (on disk only) */
  int64_t sent_ms;    /* original send, wall ms */
  uint32_t first_d;   /* first receive, ms after sent_ms (valid when rc > 0) */
  uint32_t recv_d;    /* latest receive, ms after sent_ms (valid when rc > 0) */
  uint32_t rc;        /* receive count */
  uint32_t size : 24; /* body + attributes, bytes (<= 1 MiB) */
  uint32_t state : 8; /* MSG_* | flags */
  uint32_t src_qid;   /* dead-lettered from, 0 = none */
  uint32_t qid;       /* the queue it is on */
} msg_t;

typedef struct waiter waiter_t;

typedef struct queue {
  char name[GBX_MAX_NAME + 1];
  qrec_t rec;               /* persisted attributes, tags, times */
  heap_node_t retention_hn; /* oldest message's retention deadline */
  heap_node_t dlq_more_hn;  /* due now: a receive left dead-letter moves to do */
  /* message table: open addressing on seq, linear probing */
  msg_t **slots;
  uint32_t nslots, count;
  msg_t *vis_head, *vis_tail; /* visible list */
  msg_t *age_head, *age_tail; /* age list, sorted by sent_ms */
  heap_t late;                /* age heap: the late arrivals, on sent_ms */
  uint32_t nvisible, ndelayed, ninflight;
  uint64_t bytes;            /* sum of sizes */
  waiter_t *w_head, *w_tail; /* long polls, first come first served */
  struct queue *ready_next;  /* broker's list of queues with waiters to serve */
  uint8_t on_ready;
  uint8_t deleted;
  uint8_t dl_source; /* messages were dead-lettered from it (a DLQ may hold some) */
  void *redrive;     /* redrive task, owned by the broker */
} queue_t;

/* Allocates an empty queue named name. NULL on OOM. */
queue_t *queue_new(const char *name);
/* Frees the queue and every message (dropping their blob references). */
void queue_free(queue_t *q);
/* Adds m (state already set) to the table and age order; VISIBLE messages
 * also go to the visible list tail. Returns 0 or -1 (OOM). */
int queue_add(queue_t *q, msg_t *m);
/* Finds a message by seq, or NULL. */
msg_t *queue_find(const queue_t *q, uint64_t seq);
/* Removes m from every list and the table (not from the heap: the caller
 * owns that) and adjusts counters; does not free m. */
void queue_remove(queue_t *q, msg_t *m);
/* Moves m to a new state (VISIBLE appends to the visible list tail). */
void queue_set_state(queue_t *q, msg_t *m, uint8_t state);
/* The first visible message, or NULL. */
static inline msg_t *queue_first_visible(const queue_t *q) {
  return q->vis_head;
}
static inline uint8_t msg_state(const msg_t *m) {
  return m->state & 0x0f;
}
/* The message an age heap node belongs to. */
static inline msg_t *msg_of_ahn(heap_node_t *n) {
  return (msg_t *)((char *)n - offsetof(msg_t, ahn));
}
/* The message with the oldest send time, or NULL. */
static inline msg_t *queue_oldest(const queue_t *q) {
  msg_t *l = q->age_head, *h = q->late.len ? msg_of_ahn(q->late.a[0]) : NULL;
  if (!l || !h)
    return l ? l : h;
  return (h->sent_ms < l->sent_ms || (h->sent_ms == l->sent_ms && h->seq < l->seq)) ? h : l;
}
/* Any message, taken from the newest end of the age list or the end of the
 * heap's array: removing it is O(1) (emptying a queue). NULL when empty. */
static inline msg_t *queue_any(const queue_t *q) {
  if (q->age_tail)
    return q->age_tail;
  return q->late.len ? msg_of_ahn(q->late.a[q->late.len - 1]) : NULL;
}
/* Calls fn on each message until fn returns nonzero: the age list from its
 * oldest, then the age heap in no particular order. fn must not change q. */
void queue_each(const queue_t *q, int (*fn)(void *ctx, const msg_t *m), void *ctx);
/* Bytes of index memory this queue uses beyond its messages (table, age heap). */
size_t queue_index_bytes(const queue_t *q);

#endif
