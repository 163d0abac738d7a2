/* test_restart.c - integration tests of durability against the real gearboxd:
 * after a clean stop (SIGTERM, exit 0) and after kill -9, every queue,
 * attribute, tag, message (body, attributes, receive count, timestamps) and
 * in-flight deadline is back, receipt handles still work, delayed messages
 * are still delayed and the counters match; and every message acknowledged to
 * concurrent senders survives a kill -9. Each test starts its own server. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "records.h"
#include "store.h"
#include "testutil.h"

/* Concurrent senders and what each sends: 4 connections x 250 = 1000. */
#define SENDERS    4
#define PER_SENDER 250
/* Visibility of the short in-flight message: it must come back on its own
 * after a restart, so its deadline has to survive it. */
#define SHORT_VIS_S 2

static gbx_error_t e;

/* ---- the scenario --------------------------------------------------------------- */

static const char *const queues[] = {"dlq", "main", "delayq", "short", "src2"};
#define NQUEUES (sizeof queues / sizeof queues[0])

static const uint8_t bin_value[] = {0, 1, 2, 0, 255};
static const gbx_msg_attr_t visible_attrs[] = {
    {"label", "String", "durable \xe2\x9c\x93", 11},
    {"ratio", "Number.float", "0.125", 5},
    {"blob", "Binary.raw", bin_value, sizeof bin_value},
};
static const uint8_t visible_body[] = {'v', 0, 'i', 0, 's'};

/* What the scenario did, to be found again after the restart. */
typedef struct snap {
  gbx_queue_info_t info[NQUEUES];
  char mid_visible[GBX_MID_BUFSZ], mid_twice[GBX_MID_BUFSZ];
  char mid_inflight_a[GBX_MID_BUFSZ], mid_inflight_b[GBX_MID_BUFSZ];
  char mid_short[GBX_MID_BUFSZ], mid_dead[GBX_MID_BUFSZ];
  char rh_inflight_a[GBX_MAX_RECEIPT + 1], rh_inflight_b[GBX_MAX_RECEIPT + 1];
  char rh_twice[GBX_MAX_RECEIPT + 1];
  uint64_t twice_sent, twice_first, inflight_b_first;
  int64_t short_received_at; /* monotonic ms */
} snap_t;

static void copy_rh(char *dst, const char *rh) {
  assert_true(strlen(rh) <= GBX_MAX_RECEIPT);
  strcpy(dst, rh);
}

/* Runs the scenario on c, recording in *s (cleared first) what it did. */
static void populate(gbx_client_t *c, snap_t *s) {
  gbx_tag_t tags[] = {{"env", "prod"}, {"team", "core"}};
  memset(s, 0, sizeof *s);
  CHECK_OK(gbx_queue_create(c, "dlq", NULL, NULL, 0, NULL, &e));
  gbx_queue_attrs_t a = {.set = GBX_QA_VISIBILITY | GBX_QA_RETENTION | GBX_QA_MAX_SIZE |
                                GBX_QA_DLQ | GBX_QA_MAX_RECEIVES | GBX_QA_POLICY,
                         .visibility_timeout = 45,
                         .retention_period = 7200,
                         .max_message_size = 4096,
                         .dead_letter_queue = "dlq",
                         .max_receive_count = 5,
                         .policy = "{\"Statement\":[]}"};
  CHECK_OK(gbx_queue_create(c, "main", &a, tags, 2, NULL, &e));
  gbx_queue_attrs_t d = {
      .set = GBX_QA_DELAY | GBX_QA_WAIT, .delay_seconds = 900, .receive_wait = 3};
  CHECK_OK(gbx_queue_create(c, "delayq", &d, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_create(c, "short", NULL, NULL, 0, NULL, &e));
  gbx_queue_attrs_t s2 = {
      .set = GBX_QA_DLQ | GBX_QA_MAX_RECEIVES, .dead_letter_queue = "dlq", .max_receive_count = 1};
  CHECK_OK(gbx_queue_create(c, "src2", &s2, NULL, 0, NULL, &e));

  /* main: two in flight for an hour, one received twice (visible), one
   * visible with attributes, one delayed by the sender */
  gbx_message_t *m;
  CHECK_OK(gbx_queue_send(c, "main", "in flight a", 11, NULL, 0, -1, s->mid_inflight_a, &e));
  CHECK_OK(gbx_queue_send(c, "main", "in flight b", 11, NULL, 0, -1, s->mid_inflight_b, &e));
  m = tu_recv_n(c, "main", GBX_MAX_RECEIVE, 3600, 2);
  assert_string_equal(m[0].mid, s->mid_inflight_a);
  copy_rh(s->rh_inflight_a, m[0].receipt);
  copy_rh(s->rh_inflight_b, m[1].receipt);
  s->inflight_b_first = m[1].first_receive_ms;
  gbx_messages_free(m);
  CHECK_OK(gbx_queue_send(c, "main", "twice", 5, NULL, 0, -1, s->mid_twice, &e));
  for (int i = 0; i < 2; i++) {
    m = tu_recv_n(c, "main", GBX_MAX_RECEIVE, 0, 1);
    s->twice_sent = m[0].sent_ms;
    if (i == 0)
      s->twice_first = m[0].first_receive_ms;
    copy_rh(s->rh_twice, m[0].receipt);
    gbx_messages_free(m);
  }
  CHECK_OK(gbx_queue_send(c, "main", visible_body, sizeof visible_body, visible_attrs, 3, -1,
                          s->mid_visible, &e));
  CHECK_OK(gbx_queue_send(c, "main", "held back", 9, NULL, 0, 900, NULL, &e));
  /* delayq: delayed by the queue's DelaySeconds */
  CHECK_OK(gbx_queue_send(c, "delayq", "queue delay", 11, NULL, 0, -1, NULL, &e));
  /* short: in flight for SHORT_VIS_S only */
  CHECK_OK(gbx_queue_send(c, "short", "comes back", 10, NULL, 0, -1, s->mid_short, &e));
  m = tu_recv_n(c, "short", GBX_MAX_RECEIVE, SHORT_VIS_S, 1);
  s->short_received_at = tu_mono_ms();
  gbx_messages_free(m);
  /* src2 -> dlq after one receive */
  CHECK_OK(gbx_queue_send(c, "src2", "dead", 4, NULL, 0, -1, s->mid_dead, &e));
  gbx_messages_free(tu_recv_n(c, "src2", GBX_MAX_RECEIVE, 0, 1));
  gbx_messages_free(tu_recv_n(c, "src2", GBX_MAX_RECEIVE, 0, 0));

  for (size_t i = 0; i < NQUEUES; i++)
    CHECK_OK(gbx_queue_get_attrs(c, queues[i], &s->info[i], &e));
  assert_int_equal(s->info[1].visible, 2);
  assert_int_equal(s->info[1].not_visible, 2);
  assert_int_equal(s->info[1].delayed, 1);
  assert_int_equal(s->info[0].visible, 1);
}

static void assert_same_queue(const gbx_queue_info_t *a, const gbx_queue_info_t *b, const char *q) {
  assert_int_equal(a->nall, b->nall);
  for (size_t i = 0; i < a->nall; i++) {
    const gbx_queue_attr_t *x = &a->all[i], *y = tu_find_attr(b, x->name);
    if (!y)
      fail_msg("%s: attribute %s is gone after the restart", q, x->name);
    if (strcmp(x->name, "ApproximateAgeOfOldestMessage") == 0)
      continue; /* time moves */
    if (strcmp(x->name, "ApproximateNumberOfMessages") == 0 && strcmp(q, "short") == 0)
      continue; /* its message may have come back by now */
    if (strcmp(x->name, "ApproximateNumberOfMessagesNotVisible") == 0 && strcmp(q, "short") == 0)
      continue;
    if (x->str) {
      if (!y->str || strcmp(x->str, y->str) != 0)
        fail_msg("%s: %s was '%s', is '%s' after the restart", q, x->name, x->str,
                 y->str ? y->str : "(a number)");
    } else if (y->str || x->num != y->num) {
      fail_msg("%s: %s was %llu, is %llu after the restart", q, x->name, (unsigned long long)x->num,
               (unsigned long long)y->num);
    }
  }
  assert_int_equal(a->ntags, b->ntags);
  for (size_t i = 0; i < a->ntags; i++) {
    int found = 0;
    for (size_t j = 0; j < b->ntags; j++)
      found |= strcmp(a->tags[i].key, b->tags[j].key) == 0 &&
               strcmp(a->tags[i].value, b->tags[j].value) == 0;
    if (!found)
      fail_msg("%s: tag %s=%s is gone", q, a->tags[i].key, a->tags[i].value);
  }
}

static void verify(gbx_client_t *c, snap_t *s) {
  /* queues, attributes, tags and counters */
  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, NQUEUES);
  gbx_queue_list_free(&l);
  for (size_t i = 0; i < NQUEUES; i++) {
    gbx_queue_info_t now;
    CHECK_OK(gbx_queue_get_attrs(c, queues[i], &now, &e));
    assert_same_queue(&s->info[i], &now, queues[i]);
    gbx_queue_info_free(&now);
  }
  gbx_queue_list_t src;
  CHECK_OK(gbx_queue_dlq_sources(c, "dlq", &src, &e));
  assert_int_equal(src.count, 2);
  gbx_queue_list_free(&src);

  /* main: only the two visible ones come out; the in-flight and delayed stay hidden */
  gbx_message_t *m = tu_recv_n(c, "main", GBX_MAX_RECEIVE, 600, 2);
  assert_string_equal(m[0].mid, s->mid_twice);
  assert_int_equal(m[0].receive_count, 3);
  assert_int_equal(m[0].sent_ms, s->twice_sent);
  assert_int_equal(m[0].first_receive_ms, s->twice_first);
  assert_string_equal(m[1].mid, s->mid_visible);
  assert_int_equal(m[1].receive_count, 1);
  assert_int_equal(m[1].body_len, sizeof visible_body);
  assert_memory_equal(m[1].body, visible_body, sizeof visible_body);
  assert_int_equal(m[1].nattrs, 3);
  for (size_t i = 0; i < 3; i++) {
    const gbx_msg_attr_t *want = &visible_attrs[i], *got = NULL;
    for (size_t j = 0; j < m[1].nattrs; j++)
      if (strcmp(m[1].attrs[j].name, want->name) == 0)
        got = &m[1].attrs[j];
    if (!got)
      fail_msg("attribute %s lost in the restart", want->name);
    assert_string_equal(got->type, want->type);
    assert_int_equal(got->value_len, want->value_len);
    assert_memory_equal(got->value, want->value, want->value_len);
  }
  /* the pre-restart handle of the twice-received message is stale now */
  assert_int_equal(gbx_message_delete(c, "main", s->rh_twice, &e), GBX_E_RECEIPT_STALE);
  gbx_messages_free(m);

  /* in flight a: its old handle deletes it */
  CHECK_OK(gbx_message_delete(c, "main", s->rh_inflight_a, &e));
  /* in flight b: its old handle makes it visible; its receive count was kept */
  CHECK_OK(gbx_message_change_vis(c, "main", s->rh_inflight_b, 0, &e));
  m = tu_recv_n(c, "main", GBX_MAX_RECEIVE, 600, 1);
  assert_string_equal(m[0].mid, s->mid_inflight_b);
  assert_int_equal(m[0].receive_count, 2);
  assert_int_equal(m[0].first_receive_ms, s->inflight_b_first);
  assert_memory_equal(m[0].body, "in flight b", 11);
  gbx_messages_free(m);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, "main", &info, &e));
  assert_int_equal(info.visible, 0);
  assert_int_equal(info.not_visible, 3);
  assert_int_equal(info.delayed, 1);
  gbx_queue_info_free(&info);

  /* delayq: still delayed */
  gbx_message_t *none;
  size_t n;
  CHECK_OK(gbx_queue_receive(c, "delayq", 10, 30, 0, &none, &n, &e));
  assert_int_equal(n, 0);

  /* dlq: the dead letter with its source */
  m = tu_recv_n(c, "dlq", GBX_MAX_RECEIVE, 600, 1);
  assert_string_equal(m[0].mid, s->mid_dead);
  assert_non_null(m[0].source_queue);
  assert_string_equal(m[0].source_queue, "src2");
  assert_int_equal(m[0].receive_count, 2);
  gbx_messages_free(m);

  /* short: its deadline survived and it comes back on its own */
  int64_t due = s->short_received_at + SHORT_VIS_S * 1000 + 600;
  if (tu_mono_ms() < due)
    tu_sleep_ms((unsigned)(due - tu_mono_ms()));
  m = tu_recv_n(c, "short", GBX_MAX_RECEIVE, 600, 1);
  assert_string_equal(m[0].mid, s->mid_short);
  assert_int_equal(m[0].receive_count, 2);
  gbx_messages_free(m);

  /* new sends get new ids */
  char mid[GBX_MID_BUFSZ];
  CHECK_OK(gbx_queue_send(c, "main", "new", 3, NULL, 0, -1, mid, &e));
  assert_string_not_equal(mid, s->mid_visible);
  assert_string_not_equal(mid, s->mid_dead);
  assert_string_not_equal(mid, s->mid_short);

  for (size_t i = 0; i < NQUEUES; i++)
    gbx_queue_info_free(&s->info[i]);
}

static void test_clean_restart(void **state) {
  tu_fx_t *f = *state;
  snap_t s;
  populate(f->c, &s);
  ts_restart(f->ts); /* SIGTERM, asserts exit status 0, starts again */
  verify(tu_reconnect(f), &s);
}

static void test_kill9_restart(void **state) {
  tu_fx_t *f = *state;
  snap_t s;
  populate(f->c, &s);
  ts_kill9(f->ts);
  ts_start_again(f->ts);
  verify(tu_reconnect(f), &s);
}

static void test_two_restarts(void **state) {
  tu_fx_t *f = *state;
  snap_t s;
  populate(f->c, &s);
  ts_kill9(f->ts);
  ts_start_again(f->ts);
  ts_restart(f->ts); /* recovering twice changes nothing either */
  verify(tu_reconnect(f), &s);
}

/* ---- concurrent senders and kill -9 ------------------------------------------------ */

typedef struct sender {
  gbx_client_t *c;
  int idx;
  int count;         /* messages to send; stops at the first error */
  int acked;         /* acknowledged sends */
  int last_err;      /* the error that stopped it, 0 if none */
  atomic_int *total; /* acknowledged sends of all senders */
  char mids[PER_SENDER][GBX_MID_BUFSZ];
} sender_t;

static void *sender_main(void *arg) {
  sender_t *s = arg;
  gbx_error_t err;
  for (int i = 0; i < s->count; i++) {
    char body[32];
    snprintf(body, sizeof body, "t%d-%d", s->idx, i);
    int rc = gbx_queue_send(s->c, "burst", body, strlen(body), NULL, 0, -1, s->mids[i], &err);
    if (rc) {
      s->last_err = rc;
      break;
    }
    s->acked++;
    atomic_fetch_add(s->total, 1);
  }
  return NULL;
}

/* Reads every message of "burst" and checks each acknowledged send is there
 * with its body; returns how many messages the queue holds. */
static size_t check_burst(gbx_client_t *c, sender_t *snd) {
  size_t cap = SENDERS * PER_SENDER + 16, have = 0;
  char(*mids)[GBX_MID_BUFSZ] = calloc(cap, GBX_MID_BUFSZ);
  char(*bodies)[32] = calloc(cap, 32);
  assert_non_null(mids);
  assert_non_null(bodies);
  for (;;) {
    gbx_message_t *m;
    size_t n;
    CHECK_OK(gbx_queue_receive(c, "burst", 100, 600, 0, &m, &n, &e));
    if (!n)
      break;
    for (size_t i = 0; i < n; i++) {
      assert_true(have < cap);
      assert_true(m[i].body_len < 32);
      strcpy(mids[have], m[i].mid);
      memcpy(bodies[have], m[i].body, m[i].body_len);
      bodies[have][m[i].body_len] = 0;
      have++;
    }
    gbx_messages_free(m);
  }
  for (int t = 0; t < SENDERS; t++)
    for (int i = 0; i < snd[t].acked; i++) {
      char body[32];
      snprintf(body, sizeof body, "t%d-%d", t, i);
      size_t j;
      for (j = 0; j < have; j++)
        if (strcmp(mids[j], snd[t].mids[i]) == 0)
          break;
      if (j == have)
        fail_msg("acknowledged message %s (%s) is lost", snd[t].mids[i], body);
      assert_string_equal(bodies[j], body);
    }
  free(mids);
  free(bodies);
  return have;
}

static void start_senders(tu_fx_t *f, sender_t *snd, pthread_t *th, atomic_int *total) {
  for (int t = 0; t < SENDERS; t++) {
    memset(&snd[t], 0, sizeof snd[t]);
    snd[t].c = tu_connect(f->ts);
    snd[t].idx = t;
    snd[t].count = PER_SENDER;
    snd[t].total = total;
  }
  for (int t = 0; t < SENDERS; t++)
    assert_int_equal(pthread_create(&th[t], NULL, sender_main, &snd[t]), 0);
}

static void test_concurrent_senders_kill9(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "burst", NULL, NULL, 0, NULL, &e));
  static sender_t snd[SENDERS];
  pthread_t th[SENDERS];
  atomic_int total = 0;
  start_senders(f, snd, th, &total);
  for (int t = 0; t < SENDERS; t++)
    pthread_join(th[t], NULL);
  for (int t = 0; t < SENDERS; t++) {
    if (snd[t].last_err)
      fail_msg("sender %d: %s", t, gbx_errname(snd[t].last_err));
    assert_int_equal(snd[t].acked, PER_SENDER);
    gbx_close(snd[t].c);
  }
  ts_kill9(f->ts);
  ts_start_again(f->ts);
  size_t have = check_burst(tu_reconnect(f), snd);
  assert_int_equal(have, SENDERS * PER_SENDER);
}

static void test_kill9_during_sends(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "burst", NULL, NULL, 0, NULL, &e));
  static sender_t snd[SENDERS];
  pthread_t th[SENDERS];
  atomic_int total = 0;
  start_senders(f, snd, th, &total);
  /* kill while the senders are still going */
  int64_t deadline = tu_mono_ms() + 30000;
  while (atomic_load(&total) < SENDERS * PER_SENDER / 3 && tu_mono_ms() < deadline)
    tu_sleep_ms(1);
  ts_kill9(f->ts);
  for (int t = 0; t < SENDERS; t++)
    pthread_join(th[t], NULL);
  int acked = 0;
  for (int t = 0; t < SENDERS; t++) {
    acked += snd[t].acked;
    gbx_close(snd[t].c);
  }
  assert_true(acked >= SENDERS * PER_SENDER / 3);
  ts_start_again(f->ts);
  size_t have = check_burst(tu_reconnect(f), snd);
  /* every acknowledged send is there; at most one unacknowledged per sender */
  assert_in_range(have, (uint64_t)acked, (uint64_t)acked + SENDERS);
}

/* Rewrites the data dir's clean-stop marker with sequence 0 and these
 * counts: what a start leaves once it has checked the sequence at open. */
static void put_marker(tu_fx_t *f, unsigned msgs, unsigned queues) {
  char path[4200];
  snprintf(path, sizeof path, "%s/CLEAN_STOP", ts_data_dir(f->ts));
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fprintf(fp, "gearbox-clean-stop 1 seq=0 messages=%u queues=%u\n", msgs, queues);
  fclose(fp);
}

/* A start that dies after opening a cleanly stopped store, while it scans
 * (emulated: killed once serving, with the marker put back as that start
 * leaves it: sequence checked at open, 0, counts still to check), must
 * not make the next start refuse; a count that does not match still
 * refuses, naming the counts only. The last writes before the stop cancel
 * out (messages sent, then deleted): a flush used to drop them, after which
 * RocksDB reported a lower sequence than the marker's (test_store
 * test_recovered_hook_before_flush checks the order that prevents it). */
static void test_crash_while_starting_after_clean_stop(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "cs", NULL);
  for (int i = 0; i < 3; i++)
    CHECK_OK(gbx_queue_send(f->c, "cs", "gone", 4, NULL, 0, 0, NULL, &e));
  gbx_message_t *m = NULL;
  size_t n = 0;
  CHECK_OK(gbx_queue_receive(f->c, "cs", 10, 30, 0, &m, &n, &e));
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++)
    CHECK_OK(gbx_message_delete(f->c, "cs", m[i].receipt, &e));
  gbx_messages_free(m); /* the deletes are the last writes: they cancel the sends */
  gbx_close(f->c);
  f->c = NULL;
  assert_int_equal(ts_stop(f->ts), 0);
  ts_start_again(f->ts);
  ts_kill9(f->ts);
  put_marker(f, 0, 1);
  ts_start_again(f->ts);
  gbx_client_t *c = tu_reconnect(f);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, "cs", &info, &e));
  assert_int_equal(info.visible + info.not_visible, 0);
  gbx_queue_info_free(&info);
  gbx_close(c);
  f->c = NULL;
  ts_kill9(f->ts);
  put_marker(f, 5, 1);
  char err[4096];
  char args[4200];
  snprintf(args, sizeof args, "--data %s", ts_data_dir(f->ts));
  gbx_testserver_t *t2 = ts_try_start(args, err, sizeof err);
  assert_null(t2);
  if (!strstr(err, "recovered 0 messages in 1 queues, but was cleanly stopped with 5 messages"))
    fail_msg("unexpected refusal: %s", err);
  put_marker(f, 0, 1);
  ts_start_again(f->ts);
  tu_reconnect(f);
}

/* Bytes of the data dir's WAL files (*.log). */
static long long wal_bytes(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  long long total = 0;
  for (struct dirent *de; (de = readdir(d));) {
    size_t l = strlen(de->d_name);
    if (l > 4 && !strcmp(de->d_name + l - 4, ".log")) {
      char p[4400];
      struct stat st;
      snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
      if (stat(p, &st) == 0)
        total += st.st_size;
    }
  }
  closedir(d);
  return total;
}

/* A clean stop leaves no WAL to replay: the store flushes its memtables
 * (churn of an empty queue kept up to 256 MiB of WAL, 2.6 s of replay at
 * the next start), then writes one record that stays in the fresh WAL so
 * the next start recovers exactly the sequence the marker holds, although
 * the last writes (sends, then deletes) cancel out in the flush. */
static void test_clean_stop_leaves_no_wal(void **state) {
  tu_fx_t *f = *state;
  static char body[4096];
  memset(body, 'w', sizeof body);
  tu_create_queue(f->c, "churn", NULL);
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 50; i++)
      CHECK_OK(gbx_queue_send(f->c, "churn", body, sizeof body, NULL, 0, 0, NULL, &e));
    for (int got = 0; got < 50;) {
      gbx_message_t *m = NULL;
      size_t n = 0;
      CHECK_OK(gbx_queue_receive(f->c, "churn", 10, 30, 0, &m, &n, &e));
      for (size_t i = 0; i < n; i++)
        CHECK_OK(gbx_message_delete(f->c, "churn", m[i].receipt, &e));
      gbx_messages_free(m);
      got += (int)n;
    }
  }
  assert_true(wal_bytes(ts_data_dir(f->ts)) > 4 << 20); /* 1,000 x 4 KiB went through */
  gbx_close(f->c);
  f->c = NULL;
  assert_int_equal(ts_stop(f->ts), 0);
  assert_true(wal_bytes(ts_data_dir(f->ts)) < 4096);
  ts_start_again(f->ts); /* the clean-stop check passes */
  gbx_client_t *c = tu_reconnect(f);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, "churn", &info, &e));
  assert_int_equal(info.visible + info.not_visible, 0);
  gbx_queue_info_free(&info);
  CHECK_OK(gbx_queue_send(c, "churn", "after", 5, NULL, 0, 0, NULL, &e));
}

/* Opens the stopped server's store, reads its format version and, when
 * ver > 0, writes ver instead; then drops the clean-stop marker (the write
 * came after it). Returns the version found. */
static uint32_t store_version(tu_fx_t *f, uint32_t ver) {
  store_t *st = NULL;
  store_opts_t o = {0};
  char *err = NULL, *v = NULL, path[600];
  size_t vl = 0;
  if (store_open(&st, ts_data_dir(f->ts), &o, &err) != 0)
    fail_msg("store_open: %s", err);
  assert_int_equal(store_get(st, STORE_CF_META, "V", 1, &v, &vl, &err), 1);
  assert_int_equal(vl, 4);
  uint32_t found = be32_get((const uint8_t *)v);
  free(v);
  if (ver) {
    uint8_t b4[4];
    be32_put(b4, ver);
    store_batch_t *b = store_batch_new(st);
    store_batch_put(b, STORE_CF_META, "V", 1, b4, 4);
    assert_int_equal(store_write(st, b, 1, &err), 0);
    store_batch_free(b);
  }
  store_close(st);
  snprintf(path, sizeof path, "%s/CLEAN_STOP", ts_data_dir(f->ts));
  if (ver && unlink(path) != 0 && errno != ENOENT)
    fail_msg("unlink %s: %s", path, strerror(errno));
  return found;
}

/* A store of the previous format (1: before blob v3) starts, keeps its
 * messages and is marked with the current format, which an older build
 * refuses; a format from the future is refused by name. */
static void test_format_versions(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "fmt", NULL);
  CHECK_OK(gbx_queue_send(f->c, "fmt", "kept", 4, NULL, 0, 0, NULL, &e));
  gbx_close(f->c);
  f->c = NULL;
  assert_int_equal(ts_stop(f->ts), 0);
  assert_int_equal(store_version(f, RECORDS_FORMAT_MIN), RECORDS_FORMAT);
  ts_start_again(f->ts);
  gbx_client_t *c = tu_reconnect(f);
  gbx_message_t *m = NULL;
  size_t n = 0;
  CHECK_OK(gbx_queue_receive(c, "fmt", 10, 30, 0, &m, &n, &e));
  assert_int_equal(n, 1);
  assert_memory_equal(m[0].body, "kept", 4);
  gbx_messages_free(m);
  gbx_close(c);
  f->c = NULL;
  ts_kill9(f->ts); /* not the clean stop, which writes the version too */
  assert_int_equal(store_version(f, 0), RECORDS_FORMAT);
  assert_int_equal(store_version(f, RECORDS_FORMAT + 1), RECORDS_FORMAT);
  char err[4096], args[700];
  snprintf(args, sizeof args, "--data %s", ts_data_dir(f->ts));
  gbx_testserver_t *t2 = ts_try_start(args, err, sizeof err);
  assert_null(t2);
  if (!strstr(err, "store format is version 3, this gearboxd reads versions 1 to 2"))
    fail_msg("unexpected refusal: %s", err);
  store_version(f, RECORDS_FORMAT);
  ts_start_again(f->ts);
  tu_reconnect(f);
}

/* A redrive acknowledged by redrive_start is not lost to a crash: the
 * restarted server goes on with it and every message reaches the source. */
static void test_redrive_goes_on_after_kill9(void **state) {
  tu_fx_t *f = *state;
  gbx_queue_attrs_t a = {0};
  tu_create_queue(f->c, "rd-dlq", NULL);
  a.set = GBX_QA_DLQ | GBX_QA_MAX_RECEIVES;
  a.dead_letter_queue = "rd-dlq";
  a.max_receive_count = 1;
  tu_create_queue(f->c, "rd-src", &a);
  for (int i = 0; i < 40; i++)
    CHECK_OK(gbx_queue_send(f->c, "rd-src", "m", 1, NULL, 0, 0, NULL, &e));
  /* visibility 0: a message's second receive dead-letters it */
  gbx_queue_info_t info;
  for (int i = 0; i < 100; i++) {
    gbx_message_t *m = NULL;
    size_t n = 0;
    CHECK_OK(gbx_queue_receive(f->c, "rd-src", 10, 0, 0, &m, &n, &e));
    gbx_messages_free(m);
    CHECK_OK(gbx_queue_get_attrs(f->c, "rd-dlq", &info, &e));
    uint64_t in_dlq = info.visible;
    gbx_queue_info_free(&info);
    if (in_dlq == 40)
      break;
  }
  CHECK_OK(gbx_queue_get_attrs(f->c, "rd-dlq", &info, &e));
  assert_int_equal(info.visible, 40);
  gbx_queue_info_free(&info);
  /* 1 message a second: the task is still running when the server dies */
  CHECK_OK(gbx_redrive_start(f->c, "rd-dlq", NULL, 1, NULL, &e));
  gbx_close(f->c);
  f->c = NULL;
  ts_kill9(f->ts);
  ts_start_again(f->ts);
  gbx_client_t *c = tu_reconnect(f);
  gbx_redrive_status_t st;
  CHECK_OK(gbx_redrive_status(c, "rd-dlq", &st, &e));
  assert_string_equal(st.state, "running");
  assert_int_equal(st.total, 40);
  assert_true(st.moved < 40);
  /* a task at the highest rate replaces it once cancelled, and finishes */
  CHECK_OK(gbx_redrive_cancel(c, "rd-dlq", NULL, &e));
  CHECK_OK(gbx_redrive_start(c, "rd-dlq", NULL, 500, NULL, &e));
  for (int i = 0; i < 100; i++) {
    CHECK_OK(gbx_redrive_status(c, "rd-dlq", &st, &e));
    if (strcmp(st.state, "running") != 0)
      break;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_string_equal(st.state, "completed");
  ts_kill9(f->ts);
  ts_start_again(f->ts);
  c = tu_reconnect(f);
  CHECK_OK(gbx_redrive_status(c, "rd-dlq", &st, &e));
  assert_string_equal(st.state, "completed");
  CHECK_OK(gbx_queue_get_attrs(c, "rd-src", &info, &e));
  assert_int_equal(info.visible, 40);
  gbx_queue_info_free(&info);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup, tu_teardown)

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      T(test_clean_restart),
      T(test_kill9_restart),
      T(test_two_restarts),
      T(test_concurrent_senders_kill9),
      T(test_kill9_during_sends),
      T(test_crash_while_starting_after_clean_stop),
      T(test_clean_stop_leaves_no_wal),
      T(test_format_versions),
      T(test_redrive_goes_on_after_kill9),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
