/* history.h - what the load clients attempted and what they were told.
 *
 * Every operation a load thread attempts becomes one event, filled in when
 * its reply (or the failure that makes it in doubt) arrives: a send or a
 * publish (one event per message), one event per message a receive
 * returned, one event per delete. checker.h reads the whole history after
 * the run and the final drain.
 *
 * Message identity: every body starts with a unique tag, "p<producer>-<seq>"
 * for a send and "t<producer>-<seq>" for a publish, optionally followed by
 * "|" and padding. hist_key() packs the tag into 64 bits.
 *
 * Threads: the queue table is set up before the load starts and read-only
 * afterwards. Each thread appends to its own hist_log_t (no locking);
 * registering a log takes a mutex. Events live in fixed chunks, so a pointer
 * returned by hist_add() stays valid until hist_free().
 */
#ifndef GBX_REL_HISTORY_H
#define GBX_REL_HISTORY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Queues a history can name: a 64-bit target mask holds a publish's fan-out. */
#define HIST_MAX_QUEUES 64
/* Producer ids fit 20 bits and sequence numbers 40 bits of the key. */
#define HIST_MAX_PRODUCER ((1u << 20) - 1)
#define HIST_MAX_SEQ      ((UINT64_C(1) << 40) - 1)
/* The key of a body that carries no valid tag. */
#define HIST_KEY_BAD UINT64_MAX
/* Longest tag: "p" + 7 digits + "-" + 13 digits. */
#define HIST_TAG_MAX 32
/* Queue names as the protocol allows them (GBX_MAX_NAME). */
#define HIST_NAME_MAX 80

typedef enum hist_kind {
  H_SEND = 1,    /* one message sent to one queue */
  H_PUBLISH = 2, /* one message published to the queues in `targets` */
  H_RECEIVE = 3, /* one message returned by a receive */
  H_DELETE = 4,  /* one delete of a message (by receipt handle) */
} hist_kind_t;

typedef enum hist_outcome {
  H_OK = 0,      /* acknowledged: the reply said success */
  H_FAIL = 1,    /* refused: the reply carried an error; nothing happened */
  H_UNKNOWN = 2, /* in doubt: no reply (connection lost, timeout) */
} hist_outcome_t;

typedef struct hist_event {
  uint64_t key;     /* hist_key() of the message, HIST_KEY_BAD if unparsable */
  int64_t t_req;    /* monotonic us when the request was issued */
  int64_t t_rep;    /* monotonic us when the reply (or the failure) was seen */
  uint64_t rc;      /* receive: its receive count; delete: that of the handle's receive */
  uint64_t targets; /* send/publish: bit i = the message goes to queue i */
  int err;          /* H_FAIL: the error code */
  uint32_t actor;   /* thread id, for reports */
  int16_t queue;    /* queue index the request addressed */
  int16_t src;      /* receive: index of the source queue a DLQ message came from, else -1 */
  uint8_t kind;     /* hist_kind_t */
  uint8_t outcome;  /* hist_outcome_t */
  uint8_t drain;    /* 1 if issued by the final drain */
} hist_event_t;

typedef struct hist_queue {
  char name[HIST_NAME_MAX + 1];
  int dlq;    /* index of this queue's dead-letter queue, or -1 */
  int source; /* index of the queue this one is the dead-letter queue of, or -1 */
} hist_queue_t;

typedef struct hist_log hist_log_t;

typedef struct hist {
  hist_queue_t queues[HIST_MAX_QUEUES];
  int nqueues;
  pthread_mutex_t mu; /* guards logs */
  hist_log_t *logs;
} hist_t;

/* An empty history. Returns NULL on allocation failure. */
hist_t *hist_new(void);
/* Frees the history, its logs and their events. NULL is a no-op. */
void hist_free(hist_t *h);
/* Adds a queue; dlq_of is the index of the queue whose dead-letter queue it
 * is, or -1. Returns its index, or -1 if the table is full or the name too
 * long. Call before the load starts. */
int hist_add_queue(hist_t *h, const char *name, int dlq_of);
/* Index of the queue called name (n bytes), or -1. */
int hist_queue_index(const hist_t *h, const char *name, size_t n);

/* A new log for one thread, registered in h (freed by hist_free). NULL on
 * allocation failure. */
hist_log_t *hist_log_new(hist_t *h, uint32_t actor);
/* Appends a zeroed event (src -1) to the log; the pointer stays valid until
 * hist_free. NULL on allocation failure. */
hist_event_t *hist_add(hist_log_t *l);
/* Calls fn on every event of every log (in no particular order). */
void hist_each(const hist_t *h, void (*fn)(const hist_event_t *ev, void *ctx), void *ctx);
/* Number of events in all logs. */
size_t hist_count(const hist_t *h);

/* The key of tag (kind 'p' or 't', producer, seq). */
uint64_t hist_key(char kind, uint32_t producer, uint64_t seq);
/* Writes the tag "<kind><producer>-<seq>" and, when pad > 0, "|" and pad
 * filler bytes into buf (cap bytes, NUL-terminated). Returns the body length,
 * or -1 if it does not fit. */
int hist_body(char *buf, size_t cap, char kind, uint32_t producer, uint64_t seq, size_t pad);
/* The key of a received body, or HIST_KEY_BAD when it does not start with a
 * well-formed tag (followed by the end of the body or "|"). */
uint64_t hist_parse_body(const void *body, size_t len);
/* Writes the tag of key into buf (at least HIST_TAG_MAX bytes). */
const char *hist_key_str(uint64_t key, char *buf);

#endif
