/* topic.h - SNS-style topics and their subscriptions: pure logic with an
 * injected clock, like the broker it delivers through. A publish matches
 * every subscription's compiled filter against the message (parsed once
 * per publish) and hands the matching queues to broker_fanout(), which
 * stores the body once and every copy in the same commit batch.
 *
 *   META "T" + name          -> topic record (msgpack map)
 *   META "U" + sub number(8) -> subscription record (msgpack map)
 */
#ifndef GBX_TOPIC_H
#define GBX_TOPIC_H

#include <stdint.h>

#include "broker.h"
#include "envelope.h"
#include "filter.h"
#include "gbx_codec.h"

#define TOPIC_MAX_DISPLAY 100u
#define TOPIC_MAX_SUBJECT 100u
/* SNS's message size limit (body + attributes). */
#define TOPIC_MAX_MESSAGE (256u * 1024u)
/* SNS allows 10 entries per PublishBatch. */
#define TOPIC_MAX_BATCH 10u

typedef struct topics topics_t;
typedef struct topic topic_t;

typedef struct sub {
  uint64_t num;                 /* subscription number; its id is ids_msgid(num) */
  topic_t *topic;
  char queue[GBX_MAX_NAME + 1]; /* by name: survives queue deletion and re-creation */
  char *filter_json;            /* NULL: no policy */
  filter_t *filter;             /* compiled once when set */
  int scope;                    /* FILTER_SCOPE_* */
  int raw;                      /* raw message delivery */
  struct sub *next;             /* topic's list */
} sub_t;

struct topic {
  char name[GBX_MAX_NAME + 1];
  int64_t created_ms;
  char *display;  /* NULL or text */
  char *policy;   /* NULL or JSON text */
  qtag_t *tags;
  uint32_t ntags;
  sub_t *subs;
  uint32_t nsubs;
};

/* Subscription settings as a request carries them. */
enum { SA_FILTER = 1, SA_SCOPE = 2, SA_RAW = 4 };
typedef struct sub_attrs {
  unsigned set;
  const char *filter; size_t filter_len; /* "" clears */
  int scope;
  int raw;
} sub_attrs_t;

topics_t *topics_new(broker_t *b, const journal_t *j);
/* How envelopes are rendered (their length is what an enveloped copy
 * counts against a queue's MaximumMessageSize and a receive's budget).
 * ctx must outlive t. */
void topics_set_envelope(topics_t *t, const envelope_ctx_t *ctx);
void topics_free(topics_t *t);

/* ---- recovery ---- */
/* Returns 0, or -1 with a message in eb for a record that does not decode. */
int topics_restore_topic(topics_t *t, const char *name, const void *v, size_t vl, gbx_errbuf_t *eb);
/* A subscription record under number num (1..RECORDS_COUNTER_MAX-1, else
 * refused); the broker's counter then resumes above num. Returns 0, or -1
 * with a message in eb. */
int topics_restore_sub(topics_t *t, uint64_t num, const void *v, size_t vl, gbx_errbuf_t *eb);

/* ---- topics ---- */
topic_t *topics_find(const topics_t *t, const char *name, size_t len);
gbx_err_t topics_create(topics_t *t, const char *name, const char *display, const char *policy,
                        const qtag_t *tags, uint32_t ntags, uint64_t now, int *created,
                        gbx_errbuf_t *eb);
gbx_err_t topics_delete(topics_t *t, topic_t *tp);
/* display/policy: NULL leaves as is, "" clears. */
gbx_err_t topics_set_attrs(topics_t *t, topic_t *tp, const char *display, const char *policy);
uint32_t topics_list(topics_t *t, const char *prefix, size_t plen, const char *after, size_t alen,
                     uint32_t max, void (*cb)(void *, const topic_t *), void *ctx, int *more);

/* ---- subscriptions ---- */
gbx_err_t topics_subscribe(topics_t *t, topic_t *tp, const char *queue, const sub_attrs_t *a,
                           sub_t **out, gbx_errbuf_t *eb);
/* Finds a subscription by its id string. */
sub_t *topics_sub_find(const topics_t *t, const char *id, size_t len);
gbx_err_t topics_unsubscribe(topics_t *t, sub_t *s);
gbx_err_t topics_sub_set_attrs(topics_t *t, sub_t *s, const sub_attrs_t *a, gbx_errbuf_t *eb);
/* Subscriptions in id order, filtered by topic and/or queue (NULL: any),
 * after subscription number `after`; at most max; *more when more remain. */
uint32_t topics_sub_list(topics_t *t, const topic_t *tp, const char *queue, uint64_t after,
                         uint32_t max, void (*cb)(void *, const sub_t *), void *ctx, int *more);
/* The subscription of topic `topic` delivering to queue `queue`, or NULL. */
const sub_t *topics_sub_for(const topics_t *t, const char *topic, size_t tl, const char *queue);
/* The 36-character id of s (no NUL). */
void topics_sub_id(const topics_t *t, const sub_t *s, char out[GBX_MSGID_LEN]);

/* ---- publish ---- */
/* Publishes: matches attrs/body against every subscription, and delivers one
 * copy to each matching existing queue. subject may be NULL. Sets the publish
 * id counter and how many queues got a copy. */
gbx_err_t topics_publish(topics_t *t, topic_t *tp, const uint8_t *body, uint32_t body_len,
                         const gbx_attr_t *attrs, uint32_t nattrs, const char *subject,
                         size_t subject_len, uint64_t now, uint64_t *pub_idn,
                         uint32_t *delivered, gbx_errbuf_t *eb);

#endif
