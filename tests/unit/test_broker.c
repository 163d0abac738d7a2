/* test_broker.c - the broker's queue semantics with an injected clock:
 * time moves by assignment, nothing sleeps. A recording journal keeps the
 * mutations in a small key-value map so a test can "restart" by replaying
 * it into a fresh broker, exactly as recovery does from RocksDB. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker.h"
#include "records.h"

#include "rec_journal.h"

/* ---- fixture ---- */

typedef struct served {
  waiter_t *w;
  gbx_err_t err;
  uint32_t n;
  uint64_t seq0;
} served_t;

typedef struct fx {
  rec_t rec;
  ids_t *ids;
  broker_t *b;
  served_t served[16];
  int nserved;
  int fetches;
} fx_t;

static void serve_cb(void *ctx, waiter_t *w, gbx_err_t err, delivery_t *d, uint32_t n) {
  fx_t *f = ctx;
  served_t *s = &f->served[f->nserved++];
  s->w = w;
  s->err = err;
  s->n = n;
  s->seq0 = n ? d[0].seq : 0;
  for (uint32_t i = 0; i < n; i++)
    blob_unref(d[i].blob);
}

static void fetch_cb(void *ctx, uint32_t qid, uint64_t seq, uint64_t body_id) {
  fx_t *f = ctx;
  f->fetches++;
}

#define T0 1000000u /* mono ms at start */
static const int64_t WALL_OFF = 1700000000000LL;

static broker_t *mk_broker(fx_t *f, uint64_t cache) {
  journal_t j = rec_journal(&f->rec);
  broker_cbs_t cbs = {.ctx = f, .serve = serve_cb, .fetch = fetch_cb};
  broker_cfg_t cfg = {.body_cache_bytes = cache, .max_bytes = 0, .wall_offset = WALL_OFF};
  return broker_new(&cfg, &j, f->ids, &cbs);
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  uint8_t key[IDS_KEY_BYTES];
  memset(key, 7, sizeof(key));
  f->ids = ids_new(key);
  f->b = mk_broker(f, 1u << 30);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  broker_free(f->b);
  ids_free(f->ids);
  rec_free(&f->rec);
  free(f);
  return 0;
}

static queue_t *mkq(fx_t *f, const char *name, void (*tweak)(qattrs_t *)) {
  qattrs_t a;
  int created;
  gbx_errbuf_t eb;
  qattrs_defaults(&a);
  if (tweak)
    tweak(&a);
  assert_int_equal(broker_queue_create(f->b, name, &a, NULL, 0, T0, &created, &eb), GBX_E_OK);
  qattrs_free(&a);
  return broker_queue(f->b, name, strlen(name));
}

static blob_t *body(const char *s) {
  uint32_t n = (uint32_t)strlen(s);
  blob_t *b = blob_new(BLOB_HDR + n);
  b->data[0] = BLOB_VERSION;
  be32_put(b->data + 1, n);
  memcpy(b->data + BLOB_HDR, s, n);
  return b;
}

static uint64_t qsend(fx_t *f, queue_t *q, const char *s, int32_t delay, uint64_t now) {
  uint64_t idn;
  assert_int_equal(broker_send(f->b, q, body(s), (uint32_t)strlen(s), delay, now, &idn), GBX_E_OK);
  return idn;
}

static uint32_t qrecv(fx_t *f, queue_t *q, uint32_t max, int32_t vis, uint64_t now, delivery_t *d) {
  uint32_t n;
  assert_int_equal(broker_receive(f->b, q, max, vis, now, d, &n), GBX_E_OK);
  return n;
}

static void release(delivery_t *d, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    blob_unref(d[i].blob);
}

static void rh_of(fx_t *f, const delivery_t *d, char out[IDS_RECEIPT_LEN]) {
  receipt_t r = {d->qid, d->seq, d->rc};
  ids_receipt_make(f->ids, &r, out);
}

struct find_idn {
  uint64_t idn;
  msg_t *m;
};

static int find_idn_cb(void *ctx, const msg_t *m) {
  struct find_idn *fi = ctx;
  if (m->idn != fi->idn)
    return 0;
  fi->m = (msg_t *)m;
  return 1;
}

/* ---- tests ---- */

static void test_visibility_expiry(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL);
  delivery_t d[4];
  qsend(f, q, "hello", -1, T0);
  assert_int_equal(qrecv(f, q, 10, 30, T0, d), 1);
  assert_int_equal(d[0].rc, 1);
  release(d, 1);
  assert_int_equal(q->ninflight, 1);
  assert_int_equal(qrecv(f, q, 10, -1, T0 + 29999, d), 0);
  broker_tick(f->b, T0 + 29999);
  assert_int_equal(q->nvisible, 0);
  broker_tick(f->b, T0 + 30000);
  assert_int_equal(q->nvisible, 1);
  assert_int_equal(qrecv(f, q, 10, -1, T0 + 30000, d), 1);
  assert_int_equal(d[0].rc, 2);
  release(d, 1);
}

static void test_delay(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL);
  delivery_t d[4];
  qsend(f, q, "later", 60, T0);
  assert_int_equal(q->ndelayed, 1);
  assert_int_equal(qrecv(f, q, 1, -1, T0, d), 0);
  assert_int_equal(broker_next_deadline(f->b), T0 + 60000);
  broker_tick(f->b, T0 + 60000);
  assert_int_equal(q->ndelayed, 0);
  assert_int_equal(qrecv(f, q, 1, -1, T0 + 60000, d), 1);
  release(d, 1);
}

static void dlq_attrs(qattrs_t *a) {
  strcpy(a->dlq, "dlq");
  a->max_receives = 2;
}

static void test_max_receives_to_dlq(void **state) {
  fx_t *f = *state;
  queue_t *dlq = mkq(f, "dlq", NULL);
  queue_t *q = mkq(f, "src", dlq_attrs);
  delivery_t d[4];
  uint64_t idn = qsend(f, q, "poison", -1, T0);
  uint64_t now = T0;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(qrecv(f, q, 1, 1, now, d), 1);
    release(d, 1);
    now += 1000;
    broker_tick(f->b, now);
  }
  /* third receive would exceed MaxReceiveCount 2: moved, not delivered */
  assert_int_equal(qrecv(f, q, 1, 1, now, d), 0);
  assert_int_equal(q->count, 0);
  assert_int_equal(dlq->nvisible, 1);
  assert_int_equal(qrecv(f, dlq, 1, 30, now, d), 1);
  assert_int_equal(d[0].idn, idn); /* same id */
  assert_int_equal(d[0].rc, 3);    /* count kept, plus this receive */
  assert_int_equal(d[0].src_qid, q->rec.qid);
  assert_int_equal(d[0].sent_ms, (int64_t)T0 + WALL_OFF); /* retention from the original send */
  release(d, 1);
}

static void short_retention(qattrs_t *a) {
  a->retention = 60;
}

static void test_retention(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", short_retention);
  delivery_t d[4];
  qsend(f, q, "a", -1, T0);
  qsend(f, q, "b", -1, T0 + 30000);
  assert_int_equal(qrecv(f, q, 1, 600, T0 + 30000, d), 1); /* in flight: still expires */
  release(d, 1);
  broker_tick(f->b, T0 + 59999);
  assert_int_equal(q->count, 2);
  broker_tick(f->b, T0 + 60000);
  assert_int_equal(q->count, 1);
  broker_tick(f->b, T0 + 90000);
  assert_int_equal(q->count, 0);
  /* both gone from the store too */
  for (size_t i = 0; i < f->rec.n; i++)
    assert_int_not_equal(f->rec.a[i].cf, STORE_CF_IDX);
  for (size_t i = 0; i < f->rec.n; i++)
    assert_int_not_equal(f->rec.a[i].cf, STORE_CF_BODY);
}

/* A message dead-lettered after 40 newer ones keeps its older send time
 * (SQS), so it expires from the DLQ first and sets its oldest age, although
 * it arrived last and far out of order (queue.h: the age heap). */
static void test_dlq_retention_out_of_order(void **state) {
  fx_t *f = *state;
  queue_t *dlq = mkq(f, "dlq", short_retention);
  queue_t *q = mkq(f, "src", dlq_attrs);
  delivery_t d[40];
  uint64_t old = qsend(f, q, "old", -1, T0);
  for (int i = 0; i < 40; i++)
    qsend(f, q, "new", -1, T0 + 10000);
  uint64_t now = T0 + 10000;
  assert_int_equal(qrecv(f, q, 1, 20, now, d), 1); /* old: in flight for 20 s */
  assert_int_equal(d[0].idn, old);
  release(d, 1);
  for (int i = 0; i < 2; i++) { /* the new ones use up MaxReceiveCount 2 */
    assert_int_equal(qrecv(f, q, 40, 1, now, d), 40);
    release(d, 40);
    now += 1000;
    broker_tick(f->b, now);
  }
  assert_int_equal(qrecv(f, q, 40, 1, now, d), 0); /* moved */
  assert_int_equal(dlq->count, 40);
  now = T0 + 30000;
  broker_tick(f->b, now);
  assert_int_equal(qrecv(f, q, 1, 1, now, d), 1);
  release(d, 1);
  broker_tick(f->b, now += 1000);
  assert_int_equal(qrecv(f, q, 1, 1, now, d), 0); /* old moved, after the 40 */
  assert_int_equal(dlq->count, 41);
  assert_int_equal(broker_oldest_age(f->b, dlq, now), (now - T0) / 1000);
  broker_tick(f->b, T0 + 59999);
  assert_int_equal(dlq->count, 41);
  broker_tick(f->b, T0 + 60000); /* 60 s after its original send */
  assert_int_equal(dlq->count, 40);
  assert_int_equal(broker_oldest_age(f->b, dlq, T0 + 60000), 50);
  broker_tick(f->b, T0 + 70000);
  assert_int_equal(dlq->count, 0);
}

/* A redrive policy set on a queue that already holds messages over its
 * MaxReceiveCount: the broker moves at most 1,000 of them per millisecond,
 * whatever the number of receives; a receive past that budget steps over the
 * rest to deliver what is behind them, and a deadline a millisecond on goes
 * on with the moves and wakes the long polls. */
static void test_dead_letter_moves_bounded(void **state) {
  fx_t *f = *state;
  queue_t *dlq = mkq(f, "dlq", NULL);
  queue_t *q = mkq(f, "src", dlq_attrs);
  delivery_t d[GBX_MAX_RECEIVE];
  enum { POISON = 2500 };
  for (int i = 0; i < POISON; i++)
    qsend(f, q, "poison", -1, T0);
  uint64_t now = T0;
  for (int round = 0; round < 2; round++) { /* MaxReceiveCount 2 used up */
    for (int got = 0; got < POISON; got += GBX_MAX_RECEIVE) {
      assert_int_equal(qrecv(f, q, GBX_MAX_RECEIVE, 1, now, d), GBX_MAX_RECEIVE);
      release(d, GBX_MAX_RECEIVE);
    }
    now += 1000;
    broker_tick(f->b, now);
  }
  uint64_t good = qsend(f, q, "good", -1, now);
  assert_int_equal(q->nvisible, POISON + 1);
  assert_int_equal(qrecv(f, q, 1, 30, now, d), 1); /* behind 1,500 left over the limit */
  assert_int_equal(d[0].idn, good);
  release(d, 1);
  assert_int_equal(dlq->count, 1000);
  assert_int_equal(qrecv(f, q, 10, 30, now, d), 0); /* the budget is per millisecond */
  assert_int_equal(dlq->count, 1000);
  waiter_t w = {0};
  w.max = 1;
  w.vis = 30;
  assert_int_equal(broker_wait(f->b, q, &w, now + 20000), 0);
  broker_serve_ready(f->b, now);
  assert_int_equal(dlq->count, 1000);
  broker_tick(f->b, now + 1); /* the next turn goes on */
  broker_serve_ready(f->b, now + 1);
  assert_int_equal(dlq->count, 2000);
  broker_tick(f->b, now + 2);
  broker_serve_ready(f->b, now + 2);
  assert_int_equal(dlq->count, POISON);
  assert_int_equal(q->nvisible, 0);
  assert_int_equal(f->nserved, 0);
  uint64_t good2 = qsend(f, q, "good2", -1, now + 2);
  broker_serve_ready(f->b, now + 2);
  assert_int_equal(f->nserved, 1);
  assert_ptr_equal(f->served[0].w, &w);
  assert_int_equal(f->served[0].n, 1);
  assert_int_equal(q->ninflight, 2);
  assert_int_equal(qrecv(f, dlq, 1, 30, now + 2, d), 1);
  assert_int_not_equal(d[0].idn, good);
  assert_int_not_equal(d[0].idn, good2);
  release(d, 1);
}

static void test_receipts(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL), *other = mkq(f, "other", NULL);
  delivery_t d[2];
  char rh1[IDS_RECEIPT_LEN], rh2[IDS_RECEIPT_LEN];
  qsend(f, q, "m", -1, T0);
  qrecv(f, q, 1, 1, T0, d);
  rh_of(f, &d[0], rh1);
  release(d, 1);
  broker_tick(f->b, T0 + 1000);
  /* expired but not yet received again: the handle still works for visibility? no: not in flight */
  assert_int_equal(broker_change_vis(f->b, q, rh1, sizeof(rh1), 10, T0 + 1000),
                   GBX_E_NOT_IN_FLIGHT);
  qrecv(f, q, 1, 30, T0 + 1000, d);
  rh_of(f, &d[0], rh2);
  release(d, 1);
  /* the earlier handle is stale now; nothing is deleted */
  assert_int_equal(broker_delete(f->b, q, rh1, sizeof(rh1), T0 + 1000), GBX_E_RECEIPT_STALE);
  assert_int_equal(q->count, 1);
  /* forged and foreign handles */
  char bad[IDS_RECEIPT_LEN];
  memcpy(bad, rh2, sizeof(bad));
  bad[5] = bad[5] == 'A' ? 'B' : 'A';
  assert_int_equal(broker_delete(f->b, q, bad, sizeof(bad), T0), GBX_E_RECEIPT_INVALID);
  assert_int_equal(broker_delete(f->b, other, rh2, sizeof(rh2), T0), GBX_E_RECEIPT_INVALID);
  assert_int_equal(broker_delete(f->b, q, "short", 5, T0), GBX_E_RECEIPT_INVALID);
  /* characters outside base64url, anywhere, including bytes above 0x7f */
  static const char not_digits[] = {'+', '/', '=', '.', ' ', '\0', (char)0x80, (char)0xff};
  for (size_t i = 0; i < sizeof(not_digits); i++) {
    for (size_t at = 0; at < sizeof(bad); at += sizeof(bad) - 1) {
      memcpy(bad, rh2, sizeof(bad));
      bad[at] = not_digits[i];
      assert_int_equal(broker_delete(f->b, q, bad, sizeof(bad), T0), GBX_E_RECEIPT_INVALID);
    }
  }
  /* the latest handle deletes, and repeating it succeeds */
  assert_int_equal(broker_delete(f->b, q, rh2, sizeof(rh2), T0 + 1000), GBX_E_OK);
  assert_int_equal(q->count, 0);
  assert_int_equal(broker_delete(f->b, q, rh2, sizeof(rh2), T0 + 1000), GBX_E_OK);
}

static void test_change_vis(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL);
  delivery_t d[2];
  char rh[IDS_RECEIPT_LEN];
  qsend(f, q, "m", -1, T0);
  qrecv(f, q, 1, 30, T0, d);
  rh_of(f, &d[0], rh);
  release(d, 1);
  /* capped at 12 h after the receive */
  assert_int_equal(broker_change_vis(f->b, q, rh, sizeof(rh), 43200, T0 + 1000),
                   GBX_E_OUT_OF_RANGE);
  assert_int_equal(broker_change_vis(f->b, q, rh, sizeof(rh), 43200, T0), GBX_E_OK);
  assert_int_equal(broker_change_vis(f->b, q, rh, sizeof(rh), 100, T0 + 10), GBX_E_OK);
  broker_tick(f->b, T0 + 100009);
  assert_int_equal(q->nvisible, 0);
  broker_tick(f->b, T0 + 100010);
  assert_int_equal(q->nvisible, 1);
  qrecv(f, q, 1, 30, T0 + 100010, d);
  rh_of(f, &d[0], rh);
  release(d, 1);
  assert_int_equal(broker_change_vis(f->b, q, rh, sizeof(rh), 0, T0 + 100011), GBX_E_OK);
  assert_int_equal(q->nvisible, 1); /* 0 = visible now */
}

static void test_waiters_fifo(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL);
  waiter_t w1 = {0}, w2 = {0}, w3 = {0};
  w1.max = w2.max = w3.max = 1;
  w1.vis = w2.vis = w3.vis = -1;
  assert_int_equal(broker_wait(f->b, q, &w1, T0 + 20000), 0);
  assert_int_equal(broker_wait(f->b, q, &w2, T0 + 20000), 0);
  assert_int_equal(broker_wait(f->b, q, &w3, T0 + 5000), 0);
  broker_serve_ready(f->b, T0);
  assert_int_equal(f->nserved, 0);
  qsend(f, q, "one", -1, T0 + 1);
  broker_serve_ready(f->b, T0 + 1);
  /* one message wakes one waiter: the first */
  assert_int_equal(f->nserved, 1);
  assert_ptr_equal(f->served[0].w, &w1);
  assert_int_equal(f->served[0].n, 1);
  /* a timeout answers with nothing */
  broker_tick(f->b, T0 + 5000);
  assert_int_equal(f->nserved, 2);
  assert_ptr_equal(f->served[1].w, &w3);
  assert_int_equal(f->served[1].n, 0);
  /* a delay ending wakes the remaining waiter */
  qsend(f, q, "two", 2, T0 + 5000);
  broker_serve_ready(f->b, T0 + 5000);
  assert_int_equal(f->nserved, 2);
  broker_tick(f->b, T0 + 7000);
  broker_serve_ready(f->b, T0 + 7000);
  assert_int_equal(f->nserved, 3);
  assert_ptr_equal(f->served[2].w, &w2);
  assert_int_equal(f->served[2].n, 1);
  /* a cancelled waiter (disconnect) is never served */
  waiter_t w4 = {0};
  w4.max = 1;
  w4.vis = -1;
  broker_wait(f->b, q, &w4, T0 + 20000);
  broker_waiter_cancel(f->b, &w4);
  qsend(f, q, "three", -1, T0 + 7001);
  broker_serve_ready(f->b, T0 + 7001);
  broker_tick(f->b, T0 + 30000);
  assert_int_equal(f->nserved, 3);
}

static void test_visibility_expiry_wakes_waiter(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL);
  delivery_t d[2];
  qsend(f, q, "m", -1, T0);
  qrecv(f, q, 1, 2, T0, d);
  release(d, 1);
  waiter_t w = {0};
  w.max = 5;
  w.vis = -1;
  broker_wait(f->b, q, &w, T0 + 20000);
  broker_tick(f->b, T0 + 2000);
  broker_serve_ready(f->b, T0 + 2000);
  assert_int_equal(f->nserved, 1);
  assert_int_equal(f->served[0].n, 1);
}

/* A long poll parked while the queue was at its in-flight limit is served
 * as soon as a delete makes room (it waited for its timeout, up to 20 s,
 * while plain receives got the messages). */
static void test_waiter_served_when_room_frees(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL);
  delivery_t d[10];
  char rh[IDS_RECEIPT_LEN];
  f->rec.off = 1; /* bulk: the recording journal's lookups are linear */
  for (uint32_t i = 0; i < GBX_MAX_INFLIGHT; i++)
    qsend(f, q, "x", -1, T0);
  uint32_t got = 0, n;
  while ((n = qrecv(f, q, 10, 600, T0, d)) > 0) {
    if (!got)
      rh_of(f, &d[0], rh);
    got += n;
    release(d, n);
  }
  assert_int_equal(got, GBX_MAX_INFLIGHT);
  waiter_t w = {0};
  w.max = 1;
  w.vis = -1;
  broker_wait(f->b, q, &w, T0 + 20000);
  qsend(f, q, "late", -1, T0 + 1);
  broker_serve_ready(f->b, T0 + 1); /* at the limit: it stays parked */
  assert_int_equal(f->nserved, 0);
  assert_int_equal(broker_delete(f->b, q, rh, sizeof(rh), T0 + 2), GBX_E_OK);
  broker_serve_ready(f->b, T0 + 2);
  assert_int_equal(f->nserved, 1);
  assert_int_equal(f->served[0].n, 1);
}

static void test_create_idempotent_and_cycles(void **state) {
  fx_t *f = *state;
  qattrs_t a;
  int created;
  gbx_errbuf_t eb;
  qattrs_defaults(&a);
  assert_int_equal(broker_queue_create(f->b, "a", &a, NULL, 0, T0, &created, &eb), GBX_E_OK);
  assert_int_equal(created, 1);
  assert_int_equal(broker_queue_create(f->b, "a", &a, NULL, 0, T0, &created, &eb), GBX_E_OK);
  assert_int_equal(created, 0);
  a.vis = 31;
  assert_int_equal(broker_queue_create(f->b, "a", &a, NULL, 0, T0, &created, &eb),
                   GBX_E_QUEUE_EXISTS);
  /* b -> a, then a -> b would be a cycle */
  qattrs_defaults(&a);
  strcpy(a.dlq, "a");
  assert_int_equal(broker_queue_create(f->b, "b", &a, NULL, 0, T0, &created, &eb), GBX_E_OK);
  qattrs_t upd;
  qattrs_defaults(&upd);
  strcpy(upd.dlq, "b");
  queue_t *qa = broker_queue(f->b, "a", 1);
  assert_int_equal(broker_queue_set_attrs(f->b, qa, &upd, QA_DLQ, T0, &eb), GBX_E_REDRIVE_CYCLE);
  strcpy(upd.dlq, "a");
  assert_int_equal(broker_queue_set_attrs(f->b, qa, &upd, QA_DLQ, T0, &eb), GBX_E_REDRIVE_CYCLE);
  strcpy(upd.dlq, "nope");
  assert_int_equal(broker_queue_set_attrs(f->b, qa, &upd, QA_DLQ, T0, &eb), GBX_E_DLQ_NOT_FOUND);
}

/* Sends n messages to q (made with dlq_attrs) and receives them with a 1 s
 * visibility until its dead-letter queue holds them all. */
static void dead_letter_all(fx_t *f, queue_t *q, int n, uint64_t *now) {
  delivery_t d[8];
  for (int i = 0; i < n; i++)
    qsend(f, q, "x", -1, *now);
  for (int round = 0; round < 3; round++) {
    for (uint32_t got; (got = qrecv(f, q, 8, 1, *now, d)) > 0;)
      release(d, got);
    *now += 1000;
    broker_tick(f->b, *now);
  }
}

static void test_redrive(void **state) {
  fx_t *f = *state;
  queue_t *dlq = mkq(f, "dlq", NULL);
  queue_t *q = mkq(f, "src", dlq_attrs);
  delivery_t d[4];
  gbx_errbuf_t eb;
  uint64_t now = T0;
  dead_letter_all(f, q, 25, &now);
  assert_int_equal(dlq->nvisible, 25);
  assert_int_equal(broker_redrive_start(f->b, dlq, NULL, 100, now, &eb), GBX_E_OK);
  assert_int_equal(broker_redrive_start(f->b, dlq, NULL, 100, now, &eb), GBX_E_REDRIVE_RUNNING);
  /* 100/s = 10 per 100 ms step */
  broker_tick(f->b, now);
  assert_int_equal(q->nvisible, 10);
  redrive_status_t st;
  broker_redrive_status(f->b, dlq, &st);
  assert_string_equal(st.state, "running");
  assert_int_equal(st.moved, 10);
  assert_int_equal(st.total, 25);
  broker_tick(f->b, now + 100);
  broker_tick(f->b, now + 200);
  broker_redrive_status(f->b, dlq, &st);
  assert_string_equal(st.state, "completed");
  assert_int_equal(q->nvisible, 25);
  assert_int_equal(dlq->count, 0);
  /* redriven messages start their receive count over */
  assert_int_equal(qrecv(f, q, 1, 30, now + 200, d), 1);
  assert_int_equal(d[0].rc, 1);
  release(d, 1);
}

static void dlq_short_retention(qattrs_t *a) {
  dlq_attrs(a);
  a->retention = 60;
}

/* SQS: a redriven message gets a new enqueue time, so its retention starts
 * over. Kept, a message dead-lettered longer ago than the source's retention
 * expired at the first tick after the move (the task said "moved"). A
 * destination equal to the dead-letter queue itself is refused. */
static void test_redrive_resets_retention(void **state) {
  fx_t *f = *state;
  queue_t *dlq = mkq(f, "dlq", NULL); /* 4 days */
  queue_t *q = mkq(f, "src", dlq_short_retention);
  delivery_t d[2];
  gbx_errbuf_t eb;
  qsend(f, q, "x", -1, T0);
  release(d, qrecv(f, q, 1, 1, T0, d));
  broker_tick(f->b, T0 + 1000);
  release(d, qrecv(f, q, 1, 1, T0 + 1000, d));
  broker_tick(f->b, T0 + 2000);
  assert_int_equal(qrecv(f, q, 1, 1, T0 + 2000, d), 0); /* moved to the DLQ */
  assert_int_equal(dlq->nvisible, 1);
  uint64_t now = T0 + 100000; /* past the source's 60 s retention of the original send */
  assert_int_equal(broker_redrive_start(f->b, dlq, dlq, 100, now, &eb), GBX_E_OUT_OF_RANGE);
  assert_int_equal(broker_redrive_start(f->b, dlq, NULL, 100, now, &eb), GBX_E_OK);
  broker_tick(f->b, now);
  broker_tick(f->b, now + 1000);
  assert_int_equal(q->nvisible, 1);
  assert_int_equal(qrecv(f, q, 1, 30, now + 1000, d), 1);
  assert_int_equal(d[0].sent_ms, (int64_t)now + WALL_OFF);
  release(d, 1);
  broker_tick(f->b, now + 59999); /* its retention counts from the redrive */
  assert_int_equal(q->count, 1);
  broker_tick(f->b, now + 60000);
  assert_int_equal(q->count, 0);
}

static void test_purge_and_delete_queue(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL);
  uint64_t n;
  for (int i = 0; i < 5; i++)
    qsend(f, q, "x", -1, T0);
  assert_int_equal(broker_queue_purge(f->b, q, T0, &n), GBX_E_OK);
  assert_int_equal(n, 5);
  assert_int_equal(q->count, 0);
  for (size_t i = 0; i < f->rec.n; i++)
    assert_int_not_equal(f->rec.a[i].cf, STORE_CF_BODY);
  waiter_t w = {0};
  w.max = 1;
  w.vis = -1;
  broker_wait(f->b, q, &w, T0 + 20000);
  qsend(f, q, "y", 5, T0);
  assert_int_equal(broker_queue_delete(f->b, q, T0), GBX_E_OK);
  assert_int_equal(f->nserved, 1);
  assert_int_equal(f->served[0].err, GBX_E_QUEUE_NOT_FOUND);
  assert_null(broker_queue(f->b, "q", 1));
  /* nothing of the queue is left in the store: no record, index or body */
  for (size_t i = 0; i < f->rec.n; i++) {
    assert_int_equal(f->rec.a[i].cf, STORE_CF_META);
    assert_int_not_equal(f->rec.a[i].k[0], 'Q');
  }
  broker_tick(f->b, T0 + 60000); /* the delayed message's deadline went with it */
}

/* Replays the journal into a fresh broker, as recovery does. */
static broker_t *replay(fx_t *f, uint64_t now) {
  broker_t *b = mk_broker(f, 1u << 30);
  uint64_t next = 1;
  uint32_t nq = 1;
  for (size_t i = 0; i < f->rec.n; i++) {
    kv_t *e = &f->rec.a[i];
    if (e->cf == STORE_CF_META && e->k[0] == 'C')
      next = be64_get(e->v);
    if (e->cf == STORE_CF_META && e->k[0] == 'N')
      nq = be32_get(e->v);
  }
  broker_restore_counter(b, next, nq);
  for (size_t i = 0; i < f->rec.n; i++) {
    kv_t *e = &f->rec.a[i];
    if (e->cf != STORE_CF_META || e->k[0] != 'Q')
      continue;
    qrec_t r;
    gbx_errbuf_t eb;
    char name[GBX_MAX_NAME + 1];
    memcpy(name, e->k + 1, e->kl - 1);
    name[e->kl - 1] = 0;
    assert_int_equal(qrec_decode(e->v, e->vl, &r, &eb), 0);
    assert_int_equal(broker_restore_queue(b, name, &r), GBX_E_OK);
  }
  for (size_t i = 0; i < f->rec.n; i++) {
    kv_t *e = &f->rec.a[i];
    redrive_rec_t rr;
    if (e->cf != STORE_CF_META || e->k[0] != 'M')
      continue;
    assert_int_equal(e->kl, REDRIVE_KEY_LEN);
    assert_int_equal(redrive_decode(e->v, e->vl, &rr), 0);
    assert_int_equal(broker_restore_redrive(b, be32_get(e->k + 1), &rr, now), GBX_E_OK);
  }
  for (size_t i = 0; i < f->rec.n; i++) {
    kv_t *e = &f->rec.a[i];
    char name[GBX_MAX_NAME + 1];
    if (e->cf != STORE_CF_META || e->k[0] != 'G')
      continue;
    memcpy(name, e->k + 1, e->kl - 1);
    name[e->kl - 1] = 0;
    assert_int_equal(e->vl, 4);
    assert_int_equal(broker_restore_grave(b, name, be32_get(e->v)), GBX_E_OK);
  }
  for (size_t i = 0; i < f->rec.n; i++) {
    kv_t *e = &f->rec.a[i];
    uint32_t qid;
    uint64_t seq;
    idxrec_t r;
    if (e->cf != STORE_CF_IDX)
      continue;
    assert_int_equal(idx_key_decode(e->k, e->kl, &qid, &seq), 0);
    assert_int_equal(idx_decode(e->v, e->vl, &r), 0);
    assert_int_equal(broker_restore_msg(b, qid, seq, &r, now), 0);
  }
  broker_restore_done(b, now);
  return b;
}

static size_t count_graves(fx_t *f) {
  size_t n = 0;
  for (size_t i = 0; i < f->rec.n; i++)
    n += f->rec.a[i].cf == STORE_CF_META && f->rec.a[i].k[0] == 'G';
  return n;
}

/* A grave outlives the dead letters that name it only until the next start:
 * recovery keeps those that restored messages came from and drops the rest. */
static void test_graves_pruned_at_start(void **state) {
  fx_t *f = *state;
  queue_t *dlq = mkq(f, "dlq", NULL);
  queue_t *a = mkq(f, "a", dlq_attrs), *b = mkq(f, "b", dlq_attrs);
  uint64_t now = T0, purged;
  uint32_t b_qid = b->rec.qid;
  dead_letter_all(f, a, 3, &now);
  dead_letter_all(f, b, 2, &now);
  assert_int_equal(dlq->nvisible, 5);
  assert_int_equal(broker_queue_delete(f->b, a, now), GBX_E_OK);
  assert_int_equal(broker_queue_delete(f->b, b, now), GBX_E_OK);
  assert_int_equal(count_graves(f), 2);
  /* b's dead letters are deleted */
  delivery_t d[8];
  uint32_t n = qrecv(f, dlq, 8, 30, now, d);
  assert_int_equal(n, 5);
  for (uint32_t i = 0; i < n; i++) {
    char rh[IDS_RECEIPT_LEN];
    rh_of(f, &d[i], rh);
    if (d[i].src_qid == b_qid)
      assert_int_equal(broker_delete(f->b, dlq, rh, sizeof(rh), now), GBX_E_OK);
  }
  release(d, n);
  broker_t *b2 = replay(f, now);
  broker_free(f->b);
  f->b = b2;
  broker_prune_graves(f->b);
  assert_int_equal(count_graves(f), 1);
  /* and with the dead-letter queue purged, none is left */
  assert_int_equal(broker_queue_purge(f->b, broker_queue(f->b, "dlq", 3), now, &purged), GBX_E_OK);
  b2 = replay(f, now);
  broker_free(f->b);
  f->b = b2;
  broker_prune_graves(f->b);
  assert_int_equal(count_graves(f), 0);
  /* a name whose grave went takes a new id */
  assert_true(mkq(f, "b", NULL)->rec.qid > b_qid);
}

/* A message move task is acknowledged: a restart in the middle (a crash
 * included, the journal being what was committed) goes on from where it
 * was, and a finished, cancelled or failed task still lists afterwards. */
static void test_redrive_survives_restart(void **state) {
  fx_t *f = *state;
  queue_t *dlq = mkq(f, "dlq", NULL);
  queue_t *q = mkq(f, "src", dlq_attrs);
  gbx_errbuf_t eb;
  uint64_t now = T0;
  dead_letter_all(f, q, 30, &now);
  assert_int_equal(dlq->nvisible, 30);
  assert_int_equal(broker_redrive_start(f->b, dlq, NULL, 100, now, &eb), GBX_E_OK);
  broker_tick(f->b, now); /* 10 moved */
  redrive_status_t st;
  broker_redrive_status(f->b, dlq, &st);
  assert_int_equal(st.moved, 10);
  int64_t started = st.started_ms;
  assert_true(started > 0);
  /* a task started in the same millisecond as the one before it still
   * starts later (its handle is its own) */
  uint64_t moved;
  assert_int_equal(broker_redrive_cancel(f->b, dlq, &moved), GBX_E_OK);
  assert_int_equal(broker_redrive_start(f->b, dlq, NULL, 100, now, &eb), GBX_E_OK);
  broker_redrive_status(f->b, dlq, &st);
  assert_int_equal(st.started_ms, started + 1);
  started = st.started_ms;
  broker_tick(f->b, now); /* the new task's first step: 10 more */
  broker_t *b2 = replay(f, now + 50);
  broker_free(f->b);
  f->b = b2;
  dlq = broker_queue(f->b, "dlq", 3);
  q = broker_queue(f->b, "src", 3);
  broker_redrive_status(f->b, dlq, &st);
  assert_string_equal(st.state, "running");
  assert_int_equal(st.moved, 10);
  assert_int_equal(st.total, 20); /* what the second task found */
  assert_int_equal(st.rate, 100);
  assert_int_equal(st.started_ms, started);
  assert_int_equal(broker_redrive_start(f->b, dlq, NULL, 100, now, &eb), GBX_E_REDRIVE_RUNNING);
  for (int i = 0; i < 3; i++)
    broker_tick(f->b, now + 50 + 100 * (uint64_t)i);
  broker_redrive_status(f->b, dlq, &st);
  assert_string_equal(st.state, "completed");
  assert_int_equal(st.moved, 20);
  assert_int_equal(q->nvisible, 30);
  assert_int_equal(dlq->count, 0);
  /* the finished task still lists after another restart */
  b2 = replay(f, now + 1000);
  broker_free(f->b);
  f->b = b2;
  broker_redrive_status(f->b, broker_queue(f->b, "dlq", 3), &st);
  assert_string_equal(st.state, "completed");
  assert_int_equal(st.moved, 20);
  /* deleting the dead-letter queue deletes its task record */
  assert_int_equal(broker_queue_delete(f->b, broker_queue(f->b, "dlq", 3), now + 1000), GBX_E_OK);
  for (size_t i = 0; i < f->rec.n; i++)
    assert_false(f->rec.a[i].cf == STORE_CF_META && f->rec.a[i].k[0] == 'M');
}

static void name_of_origin(void *ctx, const char *name) {
  snprintf(ctx, GBX_MAX_NAME + 1, "%s", name);
}

/* SQS finds a dead-lettered message's source by its ARN, that is, by name:
 * a source deleted and created again (a stack replacing its queue) gets its
 * messages back from a redrive, also across a restart. A deleted queue
 * nothing was dead-lettered from leaves nothing behind. */
static void test_redrive_to_recreated_source(void **state) {
  fx_t *f = *state;
  queue_t *dlq = mkq(f, "dlq", NULL);
  queue_t *q = mkq(f, "src", dlq_attrs);
  queue_t *other = mkq(f, "other", NULL);
  delivery_t d[8];
  gbx_errbuf_t eb;
  uint64_t now = T0;
  uint32_t old_qid = q->rec.qid, other_qid = other->rec.qid;
  dead_letter_all(f, q, 5, &now);
  assert_int_equal(dlq->nvisible, 5);
  assert_int_equal(broker_queue_delete(f->b, q, now), GBX_E_OK);
  assert_int_equal(broker_queue_delete(f->b, other, now), GBX_E_OK);
  size_t graves = 0;
  for (size_t i = 0; i < f->rec.n; i++)
    graves += f->rec.a[i].cf == STORE_CF_META && f->rec.a[i].k[0] == 'G';
  assert_int_equal(graves, 1); /* "src" only */
  /* the deleted source is still an origin (permission checks of a redrive) */
  char origin[GBX_MAX_NAME + 1] = "";
  broker_dlq_origins(f->b, dlq, name_of_origin, origin);
  assert_string_equal(origin, "src");
  /* with the source gone, a redrive to it fails */
  assert_int_equal(broker_redrive_start(f->b, dlq, NULL, 100, now, &eb), GBX_E_OK);
  broker_tick(f->b, now);
  redrive_status_t st;
  broker_redrive_status(f->b, dlq, &st);
  assert_string_equal(st.state, "failed");
  /* a restart keeps the deleted source's id for its name */
  broker_t *b2 = replay(f, now);
  broker_free(f->b);
  f->b = b2;
  dlq = broker_queue(f->b, "dlq", 3);
  q = mkq(f, "src", NULL);
  assert_int_equal(q->rec.qid, old_qid);
  queue_t *o2 = mkq(f, "other", NULL);
  assert_int_not_equal(o2->rec.qid, other_qid);
  for (size_t i = 0; i < f->rec.n; i++)
    assert_false(f->rec.a[i].cf == STORE_CF_META && f->rec.a[i].k[0] == 'G');
  assert_int_equal(broker_redrive_start(f->b, dlq, NULL, 100, now, &eb), GBX_E_OK);
  broker_tick(f->b, now);
  broker_redrive_status(f->b, dlq, &st);
  assert_string_equal(st.state, "completed");
  assert_int_equal(q->nvisible, 5);
  assert_int_equal(dlq->count, 0);
  /* and the recreated queue starts empty of anything of the old one */
  assert_int_equal(qrecv(f, q, 8, 30, now, d), 5);
  release(d, 5);
}

/* A damaged index record holding the largest id (or sequence, or body id)
 * must be refused by the decoders recovery uses: restoring it used to set
 * the counter to id + 1 = 0, so ids were issued again after the restart. */
static void test_restore_refuses_wrapping_ids(void **state) {
  fx_t *f = *state;
  uint8_t k[IDX_KEY_LEN], v[IDX_REC_LEN];
  uint32_t qid;
  uint64_t seq;
  idxrec_t r = {.idn = 5, .body_id = 5, .sent_ms = WALL_OFF, .size = 1};
  idxrec_t back;
  /* the key: sequence and queue id out of range */
  idx_key(k, 1, UINT64_MAX);
  assert_int_equal(idx_key_decode(k, sizeof k, &qid, &seq), -1);
  idx_key(k, 1, RECORDS_COUNTER_MAX);
  assert_int_equal(idx_key_decode(k, sizeof k, &qid, &seq), -1);
  idx_key(k, 1, 0);
  assert_int_equal(idx_key_decode(k, sizeof k, &qid, &seq), -1);
  idx_key(k, UINT32_MAX, 5);
  assert_int_equal(idx_key_decode(k, sizeof k, &qid, &seq), -1);
  idx_key(k, 0, 5);
  assert_int_equal(idx_key_decode(k, sizeof k, &qid, &seq), -1);
  /* the record: id number, body id and source queue out of range */
  r.idn = UINT64_MAX;
  idx_encode(v, &r);
  assert_int_equal(idx_decode(v, sizeof v, &back), -1);
  r.idn = 5;
  r.body_id = UINT64_MAX;
  idx_encode(v, &r);
  assert_int_equal(idx_decode(v, sizeof v, &back), -1);
  r.body_id = 0;
  idx_encode(v, &r);
  assert_int_equal(idx_decode(v, sizeof v, &back), -1);
  r.body_id = 5;
  r.src_qid = UINT32_MAX;
  idx_encode(v, &r);
  assert_int_equal(idx_decode(v, sizeof v, &back), -1);
  r.src_qid = 0;

  /* the largest valid values restore, and the counter resumes above them */
  queue_t *q = mkq(f, "q", NULL);
  uint32_t q1 = q->rec.qid;
  seq = RECORDS_COUNTER_MAX - 1;
  r.idn = RECORDS_COUNTER_MAX - 1;
  r.body_id = RECORDS_COUNTER_MAX - 1;
  idx_key(k, q1, seq);
  idx_encode(v, &r);
  assert_int_equal(idx_key_decode(k, sizeof k, &qid, &seq), 0);
  assert_int_equal(idx_decode(v, sizeof v, &back), 0);
  assert_int_equal(broker_restore_msg(f->b, qid, seq, &back, T0), 0);
  uint64_t next = broker_counter(f->b);
  assert_true(next > RECORDS_COUNTER_MAX - 1);
  assert_true(next <= RECORDS_COUNTER_MAX);

  /* a damaged counter reservation or queue id counter is refused */
  assert_int_equal(broker_restore_counter(f->b, UINT64_MAX, 1), -1);
  assert_int_equal(broker_restore_counter(f->b, RECORDS_COUNTER_MAX + 1, 1), -1);
  assert_int_equal(broker_restore_counter(f->b, 1, 0), 0);
  assert_int_equal(broker_counter(f->b), next + 1); /* unchanged by the refusals */

  /* queue ids: UINT32_MAX is refused in a queue record; the largest valid
   * one restores, and the next CreateQueue fails instead of wrapping to 0 */
  gbx_buf_t b;
  qrec_t rec = {0}, got;
  gbx_errbuf_t eb = {0};
  qattrs_defaults(&rec.a);
  rec.qid = UINT32_MAX;
  gbx_buf_init(&b);
  assert_int_equal(qrec_encode(&b, &rec), 0);
  assert_int_equal(qrec_decode(b.data, b.len, &got, &eb), -1);
  rec.qid = RECORDS_QID_MAX;
  b.len = 0;
  assert_int_equal(qrec_encode(&b, &rec), 0);
  assert_int_equal(qrec_decode(b.data, b.len, &got, &eb), 0);
  gbx_buf_free(&b);
  qattrs_free(&rec.a);
  assert_int_equal(broker_restore_queue(f->b, "last", &got), GBX_E_OK);
  assert_int_equal(broker_queue(f->b, "last", 4)->rec.qid, RECORDS_QID_MAX);
  qattrs_t a;
  int created = 0;
  qattrs_defaults(&a);
  assert_int_equal(broker_queue_create(f->b, "after", &a, NULL, 0, T0, &created, &eb),
                   GBX_E_INTERNAL);
  assert_int_equal(created, 0);
  assert_null(broker_queue(f->b, "after", 5));
  qattrs_free(&a);
  assert_int_equal(broker_restore_counter(f->b, 1, UINT32_MAX), 0);
}

static void test_restart_keeps_state(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL);
  delivery_t d[4];
  char rh[IDS_RECEIPT_LEN];
  qsend(f, q, "inflight", -1, T0);
  qsend(f, q, "visible", -1, T0);
  qsend(f, q, "delayed", 600, T0);
  assert_int_equal(qrecv(f, q, 1, 3600, T0, d), 1); /* one hour */
  rh_of(f, &d[0], rh);
  uint64_t idn = d[0].idn;
  release(d, 1);
  /* "restart" ten minutes later */
  uint64_t later = T0 + 600000 - 1;
  broker_t *b2 = replay(f, later);
  broker_free(f->b);
  f->b = b2;
  q = broker_queue(f->b, "q", 1);
  assert_non_null(q);
  assert_int_equal(q->ninflight, 1);
  assert_int_equal(q->nvisible, 1);
  assert_int_equal(q->ndelayed, 1);
  /* the in-flight message stays invisible; its handle still deletes it */
  assert_int_equal(qrecv(f, q, 10, 30, later, d), 1);
  assert_int_not_equal(d[0].idn, idn);
  release(d, 1);
  struct find_idn fi = {idn, NULL};
  queue_each(q, find_idn_cb, &fi);
  msg_t *m = fi.m;
  assert_non_null(m);
  assert_int_equal(m->rc, 1);
  assert_int_equal(broker_delete(f->b, q, rh, sizeof(rh), later), GBX_E_OK);
  /* new ids never repeat old ones after the restart */
  uint64_t n2 = qsend(f, q, "new", -1, later);
  assert_true(n2 > idn);
  f->fetches = 0;
  /* bodies are not loaded at recovery: the head is prefetched */
  broker_t *b3 = replay(f, later);
  assert_true(f->fetches > 0);
  broker_free(b3);
}

/* A deadline restored from a store written while the wall clock was ahead
 * (or read now that it was set back) hides a message no longer than any
 * visibility timeout (12 h) or delay (15 min) could; it used to stay hidden
 * for the whole difference (from a clock stuck in 1970: decades). */
static void test_restore_caps_deadlines(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL);
  delivery_t d[2];
  qsend(f, q, "inflight", -1, T0);
  qsend(f, q, "delayed", 10, T0);
  assert_int_equal(qrecv(f, q, 1, 30, T0, d), 1);
  release(d, 1);
  const int64_t ten_days = 10LL * 86400 * 1000;
  for (size_t i = 0; i < f->rec.n; i++) {
    kv_t *e = &f->rec.a[i];
    idxrec_t r;
    if (e->cf != STORE_CF_IDX || idx_decode(e->v, e->vl, &r) != 0 || !r.deadline_ms)
      continue;
    r.deadline_ms += ten_days;
    idx_encode((uint8_t *)e->v, &r);
  }
  broker_t *b2 = replay(f, T0);
  broker_free(f->b);
  f->b = b2;
  q = broker_queue(f->b, "q", 1);
  assert_int_equal(q->ninflight, 1);
  assert_int_equal(q->ndelayed, 1);
  broker_tick(f->b, T0 + 1000ull * GBX_DELAY_MAX);
  assert_int_equal(q->ndelayed, 0);
  assert_int_equal(q->ninflight, 1);
  broker_tick(f->b, T0 + 1000ull * GBX_VIS_MAX);
  assert_int_equal(q->ninflight, 0);
  assert_int_equal(q->nvisible, 2);
}

static void test_body_cache_budget(void **state) {
  fx_t *f = *state;
  broker_free(f->b);
  f->b = mk_broker(f, 3 * (BLOB_HDR + 4));
  queue_t *q = mkq(f, "q", NULL);
  delivery_t d[8];
  for (int i = 0; i < 5; i++)
    qsend(f, q, "abcd", -1, T0);
  broker_stats_t st;
  broker_get_stats(f->b, &st);
  assert_int_equal(st.cached_bytes, 3 * (BLOB_HDR + 4));
  f->fetches = 0;
  uint32_t n = qrecv(f, q, 8, 30, T0, d);
  assert_int_equal(n, 5);
  int missing = 0;
  for (uint32_t i = 0; i < n; i++)
    missing += d[i].blob == NULL;
  assert_int_equal(missing, 2); /* those are read from disk by the caller */
  release(d, n);
}

static void test_index_memory_per_message(void **state) {
  fx_t *f = *state;
  broker_free(f->b);
  f->b = mk_broker(f, 0); /* bodies on disk only: count the index alone */
  queue_t *q = mkq(f, "q", NULL);
  f->rec.off = 1;
  broker_stats_t st;
  for (int i = 0; i < 100000; i++)
    qsend(f, q, "x", i % 2 ? 5 : -1, T0);
  broker_get_stats(f->b, &st);
  assert_int_equal(st.messages, 100000);
  assert_int_equal(st.cached_bytes, 0);
  assert_int_equal(sizeof(msg_t), 112);
  /* message + its share of the seq table and the deadline heap */
  print_message("index bytes per message: %llu\n",
                (unsigned long long)(st.index_bytes / st.messages));
  assert_true(st.index_bytes / st.messages <= 140);
}

static void test_inflight_limit_and_max_size(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q", NULL);
  uint64_t idn;
  q->rec.a.max_size = 1024;
  char big[1100];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  assert_int_equal(broker_send(f->b, q, body(big), sizeof(big) - 1, -1, T0, &idn),
                   GBX_E_MESSAGE_TOO_LONG);
  assert_int_equal(q->count, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_visibility_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_receives_to_dlq, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
      cmocka_unit_test_setup_teardown(test_receipts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_change_vis, setup, teardown),
      cmocka_unit_test_setup_teardown(test_waiters_fifo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_visibility_expiry_wakes_waiter, setup, teardown),
      cmocka_unit_test_setup_teardown(test_create_idempotent_and_cycles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redrive, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redrive_resets_retention, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redrive_to_recreated_source, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redrive_survives_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_graves_pruned_at_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dlq_retention_out_of_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dead_letter_moves_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_waiter_served_when_room_frees, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_caps_deadlines, setup, teardown),
      cmocka_unit_test_setup_teardown(test_purge_and_delete_queue, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_keeps_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_refuses_wrapping_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_body_cache_budget, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inflight_limit_and_max_size, setup, teardown),
      cmocka_unit_test_setup_teardown(test_index_memory_per_message, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
