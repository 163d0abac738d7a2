/* broker.h - the broker's state: queues, messages, deadlines, long-poll
 * waiters, dead-letter moves, retention and redrive. Pure logic with an
 * injected clock: every function takes `now` (monotonic ms) and records its
 * mutations in the journal; none does I/O, so unit tests move time freely.
 *
 * Wall-clock times (persisted, reported) are now + wall_offset, where the
 * offset is fixed when the broker is created: a wall-clock jump while
 * running moves no deadline.
 *
 * Single-threaded: the loop thread owns the broker. */
#ifndef GBX_BROKER_H
#define GBX_BROKER_H

#include <stdint.h>

#include "gbx_error.h"
#include "heap.h"
#include "ids.h"
#include "journal.h"
#include "queue.h"
#include "records.h"

typedef struct broker broker_t;

/* Heap node kinds. */
enum { HK_MSG = 1, HK_RETENTION = 2, HK_WAITER = 3, HK_REDRIVE = 4, HK_DLQ_MORE = 5 };

struct delivery;

/* A long-poll receive waiting on a queue. Allocated and owned by the caller
 * (the protocol layer); linked into the broker by broker_wait(). */
struct waiter {
  heap_node_t hn;        /* timeout */
  waiter_t *next, *prev; /* queue's waiters */
  queue_t *q;
  uint32_t max;
  int32_t vis; /* -1: queue default */
  void *owner; /* the protocol layer's */
  uint64_t req_id;
  waiter_t *onext, *oprev; /* the owner's list */
  /* Called when the waiter is done, instead of broker_cbs_t.serve when set
   * (lets another front end, e.g. the HTTP face, own waiters too). */
  void (*serve)(void *ctx, waiter_t *w, gbx_err_t err, struct delivery *d, uint32_t n);
  void *serve_ctx;
  const struct auth_id *who; /* the caller, when authenticated (revocation ends the wait) */
};

/* One message handed out by a receive: everything a reply needs. blob is a
 * counted reference (NULL when the body is on disk only and must be
 * fetched by body_id); release it with blob_unref. */
typedef struct delivery {
  uint8_t envelope; /* render the body as an SNS envelope */
  uint32_t qid, src_qid, rc;
  uint64_t seq, idn, body_id;
  int64_t sent_ms, first_ms;
  blob_t *blob;
} delivery_t;

typedef struct broker_cbs {
  void *ctx;
  /* A waiter is done: n messages (n may be 0: it timed out), or err (the
   * queue was deleted). The waiter is unlinked; the callee owns it again. */
  void (*serve)(void *ctx, waiter_t *w, gbx_err_t err, struct delivery *d, uint32_t n);
  /* Please fetch this body into the cache (prefetch ahead of a queue head);
   * answer with broker_attach_blob(). */
  void (*fetch)(void *ctx, uint32_t qid, uint64_t seq, uint64_t body_id);
} broker_cbs_t;

typedef struct broker_cfg {
  uint64_t body_cache_bytes; /* bodies kept in memory up to this many bytes */
  uint64_t max_bytes;        /* stored bytes limit for sends, 0 = none */
  int64_t wall_offset;       /* wall ms = mono ms + wall_offset */
} broker_cfg_t;

/* Attribute update: which fields are set. */
enum {
  QA_VIS = 1 << 0,
  QA_DELAY = 1 << 1,
  QA_RETENTION = 1 << 2,
  QA_MAX_SIZE = 1 << 3,
  QA_WAIT = 1 << 4,
  QA_DLQ = 1 << 5,
  QA_MAX_RECEIVES = 1 << 6,
  QA_POLICY = 1 << 7,
  QA_REDRIVE_ALLOW = 1 << 8
};

typedef struct broker_stats {
  uint64_t messages, bytes, queues, cached_bytes, index_bytes;
  uint64_t sends, receives, deletes, dead_lettered, expired;
} broker_stats_t;

broker_t *broker_new(const broker_cfg_t *cfg, const journal_t *j, ids_t *ids,
                     const broker_cbs_t *cbs);
void broker_free(broker_t *b);
int64_t broker_wall(const broker_t *b, uint64_t now);

/* ---- recovery: feed what the store holds, then broker_restore_done ---- */
/* The stored counter reservation ("C") and next queue id ("N"); each only
 * raises the broker's. Returns 0, or -1 (nothing changed) when next is above
 * RECORDS_COUNTER_MAX or next_qid above RECORDS_QID_MAX + 1: a damaged store. */
int broker_restore_counter(broker_t *b, uint64_t next, uint32_t next_qid);
/* Takes ownership of r's contents on success. */
gbx_err_t broker_restore_queue(broker_t *b, const char *name, qrec_t *r);
/* A deleted dead-letter source's id (META "G" + name), after the queues:
 * GBX_E_INTERNAL when it clashes with a queue, another grave or the id
 * counter (a damaged store). */
gbx_err_t broker_restore_grave(broker_t *b, const char *name, uint32_t qid);
/* After recovery, once the journal can be written: forgets (and deletes)
 * the graves no restored message came from, so they do not pile up. */
void broker_prune_graves(broker_t *b);
/* A dead-letter queue's last redrive task (META "M" + qid), after the
 * queues: a running one goes on. GBX_E_INTERNAL for an unknown queue, a
 * second task or a destination id never issued (a damaged store). */
gbx_err_t broker_restore_redrive(broker_t *b, uint32_t qid, const redrive_rec_t *r, uint64_t now);
/* A message record; unknown queue ids are reported (-1) for the caller to
 * log (a queue deleted with its DeleteRange not yet compacted cannot occur:
 * the range delete and the queue record delete share one batch). */
int broker_restore_msg(broker_t *b, uint32_t qid, uint64_t seq, const idxrec_t *r, uint64_t now);
/* Arms deadlines and prefetches queue heads. */
void broker_restore_done(broker_t *b, uint64_t now);

/* ---- queues ---- */
queue_t *broker_queue(const broker_t *b, const char *name, size_t len);
queue_t *broker_queue_by_id(const broker_t *b, uint32_t qid);
/* Creates name with attrs (copied) and tags, or checks idempotence. */
gbx_err_t broker_queue_create(broker_t *b, const char *name, const qattrs_t *a, const qtag_t *tags,
                              uint32_t ntags, uint64_t now, int *created, gbx_errbuf_t *eb);
gbx_err_t broker_queue_delete(broker_t *b, queue_t *q, uint64_t now);
/* Applies the fields named by mask (QA_*) from a. */
gbx_err_t broker_queue_set_attrs(broker_t *b, queue_t *q, const qattrs_t *a, unsigned mask,
                                 uint64_t now, gbx_errbuf_t *eb);
gbx_err_t broker_queue_purge(broker_t *b, queue_t *q, uint64_t now, uint64_t *purged);
gbx_err_t broker_queue_tag(broker_t *b, queue_t *q, const qtag_t *tags, uint32_t n, uint64_t now);
gbx_err_t broker_queue_untag(broker_t *b, queue_t *q, const char *const *keys, const uint32_t *lens,
                             uint32_t n, uint64_t now);
/* Calls cb for queue names >= after (exclusive) with prefix, sorted, at most
 * max; returns how many; *more = 1 when more remain. */
uint32_t broker_queue_list(broker_t *b, const char *prefix, size_t plen, const char *after,
                           size_t alen, uint32_t max, void (*cb)(void *, const queue_t *),
                           void *ctx, int *more);
/* Queues whose dead-letter queue is q. */
uint32_t broker_dlq_sources(broker_t *b, const queue_t *q, void (*cb)(void *, const queue_t *),
                            void *ctx);

/* ---- messages ---- */
/* Sends one message: blob (stored layout, reference taken over by the
 * broker), size as SQS counts it, delay in seconds (-1: queue default).
 * Sets *idn (for the message id). */
gbx_err_t broker_send(broker_t *b, queue_t *q, blob_t *blob, uint32_t size, int32_t delay,
                      uint64_t now, uint64_t *idn);
/* Delivers copies of one body to n queues (a topic publish): the blob is
 * stored once and every copy gets its own id and index record, all in the
 * current batch. envelope[i]: copy i is delivered as an SNS envelope; sizes[i]
 * is what copy i counts (the envelope's length for enveloped copies). Takes
 * the blob reference. idns[i] gets copy i's id counter. */
gbx_err_t broker_fanout(broker_t *b, queue_t *const *qs, const uint8_t *envelope, uint32_t n,
                        blob_t *blob, const uint32_t *sizes, uint64_t now, uint64_t *idns);
/* Takes the next value of the broker's unique counter. */
uint64_t broker_counter(broker_t *b);
/* Receives up to max visible messages into out[max]; vis -1: queue default. */
gbx_err_t broker_receive(broker_t *b, queue_t *q, uint32_t max, int32_t vis, uint64_t now,
                         delivery_t *out, uint32_t *n);
gbx_err_t broker_delete(broker_t *b, queue_t *q, const char *rh, size_t rhl, uint64_t now);
gbx_err_t broker_change_vis(broker_t *b, queue_t *q, const char *rh, size_t rhl, uint32_t vis,
                            uint64_t now);
/* Links w (fields max/vis/owner set by the caller) as a waiter on q until
 * deadline. Returns 0 or -1 (OOM). */
int broker_wait(broker_t *b, queue_t *q, waiter_t *w, uint64_t deadline);
/* Unlinks w (connection closed). */
void broker_waiter_cancel(broker_t *b, waiter_t *w);
/* Answers every waiter with no messages (shutdown). */
void broker_end_waits(broker_t *b);
/* Calls cb once with the name of each queue that messages now in dlq came
 * from (where a redrive without a destination moves them): existing ones,
 * and deleted ones a queue created under the name would take over.
 * O(messages in dlq). */
void broker_dlq_origins(broker_t *b, const queue_t *dlq, void (*cb)(void *, const char *),
                        void *ctx);
/* Ends each waiter for which verdict returns an error, answering it with that
 * error (a revoked credential, a policy that no longer allows the receive). */
void broker_end_waits_if(broker_t *b, gbx_err_t (*verdict)(void *ctx, const waiter_t *w),
                         void *ctx);
/* Serves waiters of queues that gained visible messages. */
void broker_serve_ready(broker_t *b, uint64_t now);
/* Handles every deadline <= now. Returns the next deadline, or UINT64_MAX. */
uint64_t broker_tick(broker_t *b, uint64_t now);
/* The earliest deadline in the heap, or UINT64_MAX. */
uint64_t broker_next_deadline(const broker_t *b);
/* A fetched body for (qid, seq); takes a reference if the message still
 * wants it. blob may be NULL (fetch failed or body gone): clears the flag. */
void broker_attach_blob(broker_t *b, uint32_t qid, uint64_t seq, uint64_t body_id, blob_t *blob);

/* ---- redrive ---- */
gbx_err_t broker_redrive_start(broker_t *b, queue_t *dlq, queue_t *dst, uint32_t rate, uint64_t now,
                               gbx_errbuf_t *eb);
typedef struct redrive_status {
  const char *state; /* "none", "running", "completed", "cancelled", "failed" */
  uint64_t moved, total;
  uint32_t rate;
  int64_t started_ms;
  char dst[GBX_MAX_NAME + 1];
  char msg[96];
} redrive_status_t;
void broker_redrive_status(broker_t *b, const queue_t *dlq, redrive_status_t *st);
gbx_err_t broker_redrive_cancel(broker_t *b, queue_t *dlq, uint64_t *moved);

void broker_get_stats(const broker_t *b, broker_stats_t *st);
ids_t *broker_ids(broker_t *b);
/* Age in seconds of the oldest message of q. */
uint64_t broker_oldest_age(const broker_t *b, const queue_t *q, uint64_t now);

#endif
