/* test_topic.c - topics, subscriptions and fan-out as pure logic: one body
 * stored per publish, one copy per matching queue, all in the same batch,
 * the body deleted with its last copy, and everything back after a replay
 * of the journal (recovery). */
#include "rec_journal.h"

#include "broker.h"
#include "records.h"
#include "topic.h"

#define T0 5000000u

typedef struct fx {
  rec_t rec;
  ids_t *ids;
  broker_t *b;
  topics_t *t;
} fx_t;

static void mk(fx_t *f) {
  journal_t j = rec_journal(&f->rec);
  broker_cbs_t cbs = {0};
  broker_cfg_t cfg = {.body_cache_bytes = 1u << 30, .wall_offset = 1700000000000LL};
  f->b = broker_new(&cfg, &j, f->ids, &cbs);
  f->t = topics_new(f->b, &j);
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  uint8_t key[IDS_KEY_BYTES];
  memset(key, 9, sizeof(key));
  f->ids = ids_new(key);
  mk(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  topics_free(f->t);
  broker_free(f->b);
  ids_free(f->ids);
  rec_free(&f->rec);
  free(f);
  return 0;
}

static queue_t *mkq(fx_t *f, const char *name) {
  qattrs_t a;
  int created;
  gbx_errbuf_t eb;
  qattrs_defaults(&a);
  assert_int_equal(broker_queue_create(f->b, name, &a, NULL, 0, T0, &created, &eb), GBX_E_OK);
  return broker_queue(f->b, name, strlen(name));
}

static topic_t *mkt(fx_t *f, const char *name) {
  int created;
  gbx_errbuf_t eb;
  assert_int_equal(topics_create(f->t, name, NULL, NULL, NULL, 0, T0, &created, &eb), GBX_E_OK);
  return topics_find(f->t, name, strlen(name));
}

static sub_t *subq(fx_t *f, topic_t *tp, const char *q, const char *filter, int raw) {
  sub_attrs_t a = {0};
  sub_t *s = NULL;
  gbx_errbuf_t eb = {0};
  if (filter) {
    a.set |= SA_FILTER;
    a.filter = filter;
    a.filter_len = strlen(filter);
  }
  a.set |= SA_RAW;
  a.raw = raw;
  assert_int_equal(topics_subscribe(f->t, tp, q, &a, &s, &eb), GBX_E_OK);
  return s;
}

static size_t count_cf(fx_t *f, int cf) {
  size_t n = 0;
  for (size_t i = 0; i < f->rec.n; i++) n += f->rec.a[i].cf == cf;
  return n;
}

static uint32_t publish(fx_t *f, topic_t *tp, const char *body, const gbx_attr_t *a, uint32_t na) {
  uint64_t pub;
  uint32_t delivered = 99;
  gbx_errbuf_t eb = {0};
  assert_int_equal(topics_publish(f->t, tp, (const uint8_t *)body, (uint32_t)strlen(body), a, na,
                                  "subj", 4, T0, &pub, &delivered, &eb),
                   GBX_E_OK);
  return delivered;
}

static void test_fanout_shares_one_body(void **state) {
  fx_t *f = *state;
  queue_t *q[3] = {mkq(f, "a"), mkq(f, "b"), mkq(f, "c")};
  topic_t *tp = mkt(f, "orders");
  subq(f, tp, "a", NULL, 1);
  subq(f, tp, "b", NULL, 0);
  subq(f, tp, "c", NULL, 0);
  size_t puts = f->rec.puts;
  assert_int_equal(publish(f, tp, "{\"x\":1}", NULL, 0), 3);
  /* one body, three index records (plus possibly a counter reservation) */
  assert_int_equal(count_cf(f, STORE_CF_BODY), 1);
  assert_int_equal(count_cf(f, STORE_CF_IDX), 3);
  assert_true(f->rec.puts - puts <= 5);
  delivery_t d[3];
  uint64_t ids[3];
  for (int i = 0; i < 3; i++) {
    uint32_t n;
    assert_int_equal(broker_receive(f->b, q[i], 1, 30, T0, &d[i], &n), GBX_E_OK);
    assert_int_equal(n, 1);
    assert_int_equal(d[i].envelope, i != 0); /* a is raw */
    ids[i] = d[i].idn;
  }
  assert_int_not_equal(ids[0], ids[1]); /* every copy has its own id */
  assert_int_not_equal(ids[1], ids[2]);
  assert_int_equal(d[0].body_id, d[2].body_id);
  /* the body goes with its last copy */
  for (int i = 0; i < 3; i++) {
    char rh[IDS_RECEIPT_LEN];
    receipt_t r = {d[i].qid, d[i].seq, d[i].rc};
    ids_receipt_make(f->ids, &r, rh);
    blob_unref(d[i].blob);
    assert_int_equal(broker_delete(f->b, q[i], rh, sizeof(rh), T0), GBX_E_OK);
    assert_int_equal(count_cf(f, STORE_CF_BODY), i < 2 ? 1 : 0);
  }
}

static void test_filters_and_missing_queues(void **state) {
  fx_t *f = *state;
  mkq(f, "cheap");
  mkq(f, "dear");
  topic_t *tp = mkt(f, "prices");
  subq(f, tp, "cheap", "{\"price\":[{\"numeric\":[\"<\",100]}]}", 1);
  subq(f, tp, "dear", "{\"price\":[{\"numeric\":[\">=\",100]}]}", 1);
  subq(f, tp, "gone", NULL, 1); /* the queue does not exist (yet) */
  gbx_attr_t a = {"price", 5, "Number", 6, "250", 3};
  assert_int_equal(publish(f, tp, "x", &a, 1), 1);
  assert_int_equal(broker_queue(f->b, "dear", 4)->nvisible, 1);
  assert_int_equal(broker_queue(f->b, "cheap", 5)->nvisible, 0);
  /* creating the queue later restores its fan-out */
  mkq(f, "gone");
  assert_int_equal(publish(f, tp, "x", &a, 1), 2);
  assert_int_equal(broker_queue(f->b, "gone", 4)->nvisible, 1);
  /* no match anywhere: nothing stored, still a success */
  gbx_attr_t none = {"other", 5, "String", 6, "y", 1};
  size_t bodies = count_cf(f, STORE_CF_BODY);
  queue_t *g = broker_queue(f->b, "gone", 4);
  assert_int_equal(broker_queue_delete(f->b, g, T0), GBX_E_OK);
  subq(f, tp, "cheap", "{\"price\":[{\"numeric\":[\"<\",100]}]}", 1);
  assert_int_equal(publish(f, tp, "x", &none, 1), 0);
  /* gone's copy went with its queue; the body stays for dear's copy */
  assert_int_equal(count_cf(f, STORE_CF_BODY), bodies);
}

static void test_subscribe_idempotent(void **state) {
  fx_t *f = *state;
  topic_t *tp = mkt(f, "t");
  sub_t *s1 = subq(f, tp, "q", "{\"a\":[\"b\"]}", 0);
  sub_t *s2 = subq(f, tp, "q", "{\"a\":[\"b\"]}", 0);
  assert_ptr_equal(s1, s2);
  sub_attrs_t a = {.set = SA_RAW, .raw = 1};
  sub_t *s3 = NULL;
  gbx_errbuf_t eb = {0};
  assert_int_equal(topics_subscribe(f->t, tp, "q", &a, &s3, &eb), GBX_E_SUBSCRIPTION_EXISTS);
  char id[GBX_MSGID_LEN];
  topics_sub_id(f->t, s1, id);
  assert_ptr_equal(topics_sub_find(f->t, id, sizeof(id)), s1);
  id[3] = id[3] == 'a' ? 'b' : 'a';
  assert_null(topics_sub_find(f->t, id, sizeof(id)));
  /* a bad policy names the problem and changes nothing */
  sub_attrs_t bad = {.set = SA_FILTER, .filter = "{\"a\": 5}", .filter_len = 8};
  assert_int_equal(topics_sub_set_attrs(f->t, s1, &bad, &eb), GBX_E_BAD_FILTER_POLICY);
  assert_string_equal(s1->filter_json, "{\"a\":[\"b\"]}");
}

static void test_delete_topic_keeps_messages(void **state) {
  fx_t *f = *state;
  queue_t *q = mkq(f, "q");
  topic_t *tp = mkt(f, "t");
  subq(f, tp, "q", NULL, 1);
  assert_int_equal(publish(f, tp, "hi", NULL, 0), 1);
  assert_int_equal(topics_delete(f->t, tp), GBX_E_OK);
  assert_null(topics_find(f->t, "t", 1));
  assert_int_equal(q->nvisible, 1);
  for (size_t i = 0; i < f->rec.n; i++)
    if (f->rec.a[i].cf == STORE_CF_META) {
      assert_int_not_equal(f->rec.a[i].k[0], 'T');
      assert_int_not_equal(f->rec.a[i].k[0], 'U');
    }
}

/* Replays the recorded store into a fresh broker + topics, as recovery does. */
static void replay(fx_t *f) {
  topics_free(f->t);
  broker_free(f->b);
  mk(f);
  gbx_errbuf_t eb;
  for (int pass = 0; pass < 4; pass++) {
    for (size_t i = 0; i < f->rec.n; i++) {
      kv_t *e = &f->rec.a[i];
      char name[GBX_MAX_NAME + 1];
      if (pass == 0 && e->cf == STORE_CF_META && e->k[0] == 'Q') {
        qrec_t r;
        snprintf(name, sizeof(name), "%.*s", (int)e->kl - 1, e->k + 1);
        assert_int_equal(qrec_decode(e->v, e->vl, &r, &eb), 0);
        assert_int_equal(broker_restore_queue(f->b, name, &r), GBX_E_OK);
      } else if (pass == 1 && e->cf == STORE_CF_META && e->k[0] == 'T') {
        snprintf(name, sizeof(name), "%.*s", (int)e->kl - 1, e->k + 1);
        assert_int_equal(topics_restore_topic(f->t, name, e->v, e->vl, &eb), 0);
      } else if (pass == 2 && e->cf == STORE_CF_META && e->k[0] == 'U') {
        assert_int_equal(topics_restore_sub(f->t, be64_get(e->k + 1), e->v, e->vl, &eb), 0);
      } else if (pass == 3 && e->cf == STORE_CF_IDX) {
        uint32_t qid;
        uint64_t seq;
        idxrec_t r;
        assert_int_equal(idx_key_decode(e->k, e->kl, &qid, &seq), 0);
        assert_int_equal(idx_decode(e->v, e->vl, &r), 0);
        assert_int_equal(broker_restore_msg(f->b, qid, seq, &r, T0), 0);
      }
    }
  }
  broker_restore_done(f->b, T0);
}

static void test_restart_restores_everything(void **state) {
  fx_t *f = *state;
  mkq(f, "a");
  mkq(f, "b");
  topic_t *tp = mkt(f, "t");
  subq(f, tp, "a", "{\"k\":[\"v\"]}", 0);
  subq(f, tp, "b", NULL, 1);
  gbx_attr_t a = {"k", 1, "String", 6, "v", 1};
  assert_int_equal(publish(f, tp, "m", &a, 1), 2);
  replay(f);
  tp = topics_find(f->t, "t", 1);
  assert_non_null(tp);
  assert_int_equal(tp->nsubs, 2);
  /* the filter was recompiled */
  gbx_attr_t other = {"k", 1, "String", 6, "w", 1};
  assert_int_equal(publish(f, tp, "m", &other, 1), 1);
  /* the shared body's count was rebuilt: deleting both first copies drops it */
  queue_t *qa = broker_queue(f->b, "a", 1), *qb = broker_queue(f->b, "b", 1);
  uint32_t n;
  delivery_t d;
  assert_int_equal(broker_receive(f->b, qa, 1, 30, T0, &d, &n), GBX_E_OK);
  assert_int_equal(n, 1);
  assert_true(d.envelope);
  uint64_t body = d.body_id;
  char rh[IDS_RECEIPT_LEN];
  receipt_t r = {d.qid, d.seq, d.rc};
  ids_receipt_make(f->ids, &r, rh);
  blob_unref(d.blob);
  assert_int_equal(broker_delete(f->b, qa, rh, sizeof(rh), T0), GBX_E_OK);
  uint8_t k[BODY_KEY_LEN];
  body_key(k, body);
  assert_non_null(find(&f->rec, STORE_CF_BODY, k, sizeof(k)));
  assert_int_equal(broker_receive(f->b, qb, 1, 30, T0, &d, &n), GBX_E_OK);
  assert_int_equal(d.body_id, body);
  r = (receipt_t){d.qid, d.seq, d.rc};
  ids_receipt_make(f->ids, &r, rh);
  blob_unref(d.blob);
  assert_int_equal(broker_delete(f->b, qb, rh, sizeof(rh), T0), GBX_E_OK);
  assert_null(find(&f->rec, STORE_CF_BODY, k, sizeof(k)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fanout_shares_one_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_filters_and_missing_queues, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subscribe_idempotent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete_topic_keeps_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_restores_everything, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
