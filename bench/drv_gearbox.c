/* drv_gearbox.c - the benchmark driver for Gearbox, over libgearbox's
 * pipelined API (gbx_submit_* / gbx_collect). A send of n > 1 messages is
 * one send_batch request, a delete of n > 1 one delete_batch.
 *
 * Fan-out (W4) needs topics: built in when this libgearbox declares
 * gbx_submit_publish (CMake defines GBX_BENCH_HAVE_TOPICS), and used when
 * the server knows the topic operations (else W4 reports it skipped). A
 * topic's queues subscribe with raw delivery, so they get the body as
 * published, as the peers' consumers do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "gearbox.h"

/* Requests outstanding per connection: a power of two above anything a
 * workload keeps in flight (64 messages, or W5's fill window of a few
 * batches), so the ring indexed by request id never wraps onto a live one. */
#define PEND_CAP 1024u
/* Visibility timeout of bench queues: longer than any phase, so a message
 * is never delivered twice while a slow consumer still holds it. */
#define BENCH_VIS_S 300u

typedef struct pend {
  uint64_t id; /* 0: free */
  int kind;
  uint64_t tag;
  size_t n;
  size_t fan; /* a publish: copies each message must have made, else 0 */
} pend_t;

struct drv_conn {
  gbx_client_t *c;
  pend_t pend[PEND_CAP];
  gbx_send_entry_t entries[GBX_MAX_BATCH];
  gbx_receipt_entry_t receipts[GBX_MAX_BATCH];
  gbx_batch_result_t results[GBX_MAX_BATCH];
  drv_msg_t msgs[GBX_MAX_RECEIVE];
#ifdef GBX_BENCH_HAVE_TOPICS
  gbx_publish_entry_t pubs[GBX_MAX_PUBLISH_BATCH];
  gbx_publish_result_t pub_results[GBX_MAX_PUBLISH_BATCH];
#endif
  char err[384];
};

static int fail(drv_conn_t *d, const char *what, const gbx_error_t *e) {
  snprintf(d->err, sizeof(d->err), "%s: %s: %s", what, gbx_errname(e->code),
           e->message[0] ? e->message : gbx_strerror(e->code));
  return -1;
}

static drv_conn_t *g_connect(const endpoint_t *ep, char *err, size_t errcap) {
  gbx_error_t e;
  drv_conn_t *d = calloc(1, sizeof(*d));
  if (!d) {
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  d->c = gbx_connect(ep->host, ep->port, &e);
  if (!d->c) {
    snprintf(err, errcap, "connect %s:%u: %s", ep->host, ep->port, e.message);
    free(d);
    return NULL;
  }
  return d;
}

static void g_close(drv_conn_t *d) {
  if (!d)
    return;
  gbx_close(d->c);
  free(d);
}

static int g_create_queue(drv_conn_t *d, const char *name) {
  gbx_error_t e;
  gbx_queue_attrs_t a = {0};
  a.set = GBX_QA_VISIBILITY;
  a.visibility_timeout = BENCH_VIS_S;
  if (gbx_queue_create(d->c, name, &a, NULL, 0, NULL, &e) != GBX_E_OK)
    return fail(d, "queue_create", &e);
  return 0;
}

/* Remembers what request `id` was, for collect. */
static int pend_add(drv_conn_t *d, uint64_t id, int kind, uint64_t tag, size_t n) {
  pend_t *p = &d->pend[id % PEND_CAP];
  if (p->id) {
    snprintf(d->err, sizeof(d->err), "more than %u requests outstanding", PEND_CAP);
    return -1;
  }
  *p = (pend_t){id, kind, tag, n, 0};
  return 0;
}

static int g_submit_send(drv_conn_t *d, const drv_queue_t *q, uint8_t *const *bodies, size_t len,
                         size_t n, uint64_t tag) {
  gbx_error_t e;
  uint64_t id;
  if (n == 0 || n > GBX_MAX_BATCH) {
    snprintf(d->err, sizeof(d->err), "send of %zu messages", n);
    return -1;
  }
  if (n == 1) {
    id = gbx_submit_send(d->c, q->name, bodies[0], len, NULL, 0, -1, &e);
  } else {
    for (size_t i = 0; i < n; i++)
      d->entries[i] = (gbx_send_entry_t){NULL, bodies[i], len, NULL, 0, -1};
    id = gbx_submit_send_batch(d->c, q->name, d->entries, n, &e);
  }
  if (!id)
    return fail(d, "submit send", &e);
  return pend_add(d, id, DRV_SENT, tag, n);
}

static int g_submit_receive(drv_conn_t *d, const drv_queue_t *q, size_t max, unsigned wait_ms,
                            uint64_t tag) {
  gbx_error_t e;
  if (max == 0 || max > GBX_MAX_RECEIVE)
    max = max ? GBX_MAX_RECEIVE : 1;
  int wait_s = (int)((wait_ms + 999) / 1000); /* the protocol waits in whole seconds */
  uint64_t id = gbx_submit_receive(d->c, q->name, (uint32_t)max, -1, wait_s, &e);
  if (!id)
    return fail(d, "submit receive", &e);
  return pend_add(d, id, DRV_RECEIVED, tag, max);
}

static int g_submit_delete(drv_conn_t *d, const drv_queue_t *q, const drv_msg_t *msgs, size_t n,
                           uint64_t tag) {
  gbx_error_t e;
  uint64_t id;
  if (n == 0 || n > GBX_MAX_BATCH) {
    snprintf(d->err, sizeof(d->err), "delete of %zu messages", n);
    return -1;
  }
  if (n == 1) {
    id = gbx_submit_delete(d->c, q->name, msgs[0].handle, &e);
  } else {
    for (size_t i = 0; i < n; i++)
      d->receipts[i] = (gbx_receipt_entry_t){NULL, msgs[i].handle, 0};
    id = gbx_submit_delete_batch(d->c, q->name, d->receipts, n, &e);
  }
  if (!id)
    return fail(d, "submit delete", &e);
  return pend_add(d, id, DRV_DELETED, tag, n);
}

/* Fails on the first failed entry of a batch reply. */
static int check_batch(drv_conn_t *d, const gbx_reply_t *r, size_t n, const char *what) {
  gbx_error_t e;
  if (gbx_reply_batch_results(r, d->results, n, &e) != GBX_E_OK)
    return fail(d, what, &e);
  for (size_t i = 0; i < n; i++) {
    if (d->results[i].code != GBX_E_OK) {
      snprintf(d->err, sizeof(d->err), "%s entry %zu: %s: %s", what, i,
               gbx_errname(d->results[i].code), d->results[i].message);
      return -1;
    }
  }
  return 0;
}

/* Copies the received messages of r into d->msgs; returns their number or -1. */
static long take_messages(drv_conn_t *d, const gbx_reply_t *r) {
  gbx_error_t e;
  gbx_message_t *m = NULL;
  size_t n = 0;
  if (gbx_reply_messages(r, &m, &n, &e) != GBX_E_OK)
    return fail(d, "receive", &e);
  if (n > GBX_MAX_RECEIVE) {
    gbx_messages_free(m);
    snprintf(d->err, sizeof(d->err), "receive returned %zu messages", n);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    drv_msg_t *o = &d->msgs[i];
    size_t hl = strlen(m[i].receipt);
    if (hl >= sizeof(o->handle)) {
      gbx_messages_free(m);
      snprintf(d->err, sizeof(d->err), "receipt handle of %zu bytes", hl);
      return -1;
    }
    memcpy(o->handle, m[i].receipt, hl + 1);
    memset(o->head, 0, sizeof(o->head));
    memcpy(o->head, m[i].body, m[i].body_len < DRV_HEAD ? m[i].body_len : DRV_HEAD);
    o->len = m[i].body_len;
  }
  gbx_messages_free(m);
  return (long)n;
}

#ifdef GBX_BENCH_HAVE_TOPICS
static int g_create_fanout(drv_conn_t *d, const drv_topic_t *t) {
  gbx_error_t e;
  gbx_sub_attrs_t raw = {0};
  raw.set = GBX_SA_RAW;
  raw.raw = 1;
  if (gbx_topic_create(d->c, t->name, NULL, NULL, 0, NULL, &e) != GBX_E_OK) {
    fail(d, "topic_create", &e);
    return e.code == GBX_E_UNKNOWN_OP ? DRV_UNSUPPORTED : -1;
  }
  for (size_t i = 0; i < t->nq; i++)
    if (gbx_subscribe(d->c, t->name, t->queues[i], &raw, NULL, &e) != GBX_E_OK)
      return fail(d, "subscribe", &e);
  return 0;
}

static int g_submit_publish(drv_conn_t *d, const drv_topic_t *t, uint8_t *const *bodies, size_t len,
                            size_t n, uint64_t tag) {
  gbx_error_t e;
  uint64_t id;
  if (n == 0 || n > GBX_MAX_PUBLISH_BATCH) {
    snprintf(d->err, sizeof(d->err), "publish of %zu messages", n);
    return -1;
  }
  if (n == 1) {
    id = gbx_submit_publish(d->c, t->name, bodies[0], len, NULL, 0, NULL, &e);
  } else {
    for (size_t i = 0; i < n; i++)
      d->pubs[i] = (gbx_publish_entry_t){NULL, bodies[i], len, NULL, 0, NULL};
    id = gbx_submit_publish_batch(d->c, t->name, d->pubs, n, &e);
  }
  if (!id)
    return fail(d, "submit publish", &e);
  if (pend_add(d, id, DRV_SENT, tag, n))
    return -1;
  d->pend[id % PEND_CAP].fan = t->nq;
  return 0;
}

/* Every message of a publish reply must have reached all its queues. */
static int check_publish(drv_conn_t *d, const gbx_reply_t *r, const pend_t *req) {
  gbx_error_t e;
  uint32_t delivered = 0;
  if (req->n == 1) {
    if (gbx_reply_publish(r, NULL, &delivered, &e) != GBX_E_OK)
      return fail(d, "publish", &e);
  } else {
    if (gbx_reply_publish_results(r, d->pub_results, req->n, &e) != GBX_E_OK)
      return fail(d, "publish_batch", &e);
    delivered = (uint32_t)req->fan;
    for (size_t i = 0; i < req->n; i++) {
      if (d->pub_results[i].code != GBX_E_OK) {
        snprintf(d->err, sizeof(d->err), "publish_batch entry %zu: %s: %s", i,
                 gbx_errname(d->pub_results[i].code), d->pub_results[i].message);
        return -1;
      }
      if (d->pub_results[i].delivered < delivered)
        delivered = d->pub_results[i].delivered;
    }
  }
  if (delivered != req->fan) {
    snprintf(d->err, sizeof(d->err), "a publish reached %u of %zu queues", delivered, req->fan);
    return -1;
  }
  return 0;
}
#else
static int check_publish(drv_conn_t *d, const gbx_reply_t *r, const pend_t *req) {
  snprintf(d->err, sizeof(d->err), "built without topics");
  return -1;
}
#endif

static int g_collect(drv_conn_t *d, drv_done_t *out) {
  gbx_error_t e;
  gbx_reply_t *r = NULL;
  int rc = -1;
  if (gbx_collect(d->c, &r, &e) != GBX_E_OK)
    return fail(d, "collect", &e);
  uint64_t id = gbx_reply_id(r);
  pend_t *p = &d->pend[id % PEND_CAP];
  if (p->id != id) {
    snprintf(d->err, sizeof(d->err), "reply to unknown request %llu", (unsigned long long)id);
    goto fail;
  }
  pend_t req = *p;
  p->id = 0;
  if (gbx_reply_error(r, &e) != GBX_E_OK) {
    fail(d, req.kind == DRV_SENT ? "send" : req.kind == DRV_RECEIVED ? "receive" : "delete", &e);
    goto fail;
  }
  *out = (drv_done_t){req.kind, req.tag, req.n, NULL};
  if (req.fan) {
    if (check_publish(d, r, &req))
      goto fail;
  } else if (req.kind == DRV_RECEIVED) {
    long n = take_messages(d, r);
    if (n < 0)
      goto fail;
    out->n = (size_t)n;
    out->msgs = d->msgs;
  } else if (req.n > 1 &&
             check_batch(d, r, req.n, req.kind == DRV_SENT ? "send_batch" : "delete_batch")) {
    goto fail;
  }
  rc = 0;
fail:
  gbx_reply_free(r);
  return rc;
}

static int g_server_stats(drv_conn_t *d, drv_server_stats_t *out) {
  gbx_error_t e;
  gbx_stats_t st;
  if (gbx_stats(d->c, NULL, &st, &e) != GBX_E_OK)
    return fail(d, "stats", &e);
  out->commits = (double)st.broker.batches;
  out->per_commit = st.broker.msgs_per_sync;
  out->commit_p50_us = (double)st.broker.commit_p50_us;
  out->commit_p99_us = (double)st.broker.commit_p99_us;
  gbx_stats_free(&st);
  return 0;
}

static const char *g_errmsg(const drv_conn_t *d) {
  return d->err;
}

const driver_t drv_gearbox = {
    .name = "gearbox",
    .max_batch = GBX_MAX_BATCH,
    .connect = g_connect,
    .close = g_close,
    .create_queue = g_create_queue,
#ifdef GBX_BENCH_HAVE_TOPICS
    .create_fanout = g_create_fanout,
    .fanout_missing = NULL,
    .submit_publish = g_submit_publish,
#else
    .create_fanout = NULL,
    .fanout_missing = "topics not implemented (libgearbox has no gbx_submit_publish)",
    .submit_publish = NULL,
#endif
    .submit_send = g_submit_send,
    .submit_receive = g_submit_receive,
    .submit_delete = g_submit_delete,
    .collect = g_collect,
    .server_stats = g_server_stats,
    .errmsg = g_errmsg,
};
