/* test_messages.c - integration tests of messages against the real gearboxd:
 * send (binary bodies, typed attributes, sizes, delays), batches, receive,
 * receipts (delete, stale, forged, foreign), visibility changes, dead-letter
 * queues and redrive, stats, backup, store limit and message ids. Each test
 * starts its own server. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "gbx_codec.h"
#include "testutil.h"

/* Slack allowed between the test's wall clock and the server's stamps:
 * the same machine, but milliseconds are rounded on either side. */
#define CLOCK_SLACK_MS 1000
/* How long a redrive of a few messages may take at the default rate (500/s)
 * before the test calls it stuck. */
#define REDRIVE_DEADLINE_MS 15000
/* How long past a 1 s visibility or delay a test waits before it expects
 * the message back: the server's timer fires on time, this is room for a
 * loaded machine or a sanitizer build to get there. */
#define EXPIRY_SLACK_MS 600
/* Message ids checked for uniqueness: enough to catch a counter that
 * repeats or a permutation that collides, quick to send in batches. */
#define UNIQUE_IDS 10000
/* The id of every hand-built request here, checked in its reply. */
#define RAW_ID 77

static gbx_error_t e; /* the last call's error, for failure messages */

static void send_str(gbx_client_t *c, const char *q, const char *body, char *mid) {
  CHECK_OK(gbx_queue_send(c, q, body, strlen(body), NULL, 0, -1, mid, &e));
}

static void counters(gbx_client_t *c, const char *q, uint64_t vis, uint64_t inflight,
                     uint64_t delayed) {
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, q, &info, &e));
  if (info.visible != vis || info.not_visible != inflight || info.delayed != delayed)
    fail_msg("%s: visible %llu in flight %llu delayed %llu, want %llu %llu %llu", q,
             (unsigned long long)info.visible, (unsigned long long)info.not_visible,
             (unsigned long long)info.delayed, (unsigned long long)vis,
             (unsigned long long)inflight, (unsigned long long)delayed);
  gbx_queue_info_free(&info);
}

/* ---- raw requests (what libgearbox refuses to send) ------------------------- */

/* Sends the request packed in r (freed here) on a new raw connection and
 * returns the reply's err. */
static int raw_call(gbx_testserver_t *ts, tu_raw_t *r) {
  tu_reply_t rep = tu_raw_call(ts, &r->b);
  gbx_buf_free(&r->b);
  assert_int_equal(rep.id, RAW_ID);
  return rep.err;
}

/* Starts a hand-built send of body "x" to queue "attrs" whose attrs map
 * holds n attributes, which the caller packs. */
static msgpack_packer *raw_send_attrs(tu_raw_t *r, uint32_t n) {
  msgpack_packer *pk = tu_raw_request(r, GBX_OP_SEND, RAW_ID, 3);
  gbx_pack_kv_cstr(pk, "q", "attrs");
  gbx_pack_kv_bin(pk, "body", "x", 1);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, n);
  return pk;
}

/* Starts a hand-built batch request of op on queue "b" holding an array of
 * n entries, which the caller packs. */
static msgpack_packer *raw_batch(tu_raw_t *r, uint64_t op, uint32_t n) {
  msgpack_packer *pk = tu_raw_request(r, op, RAW_ID, 2);
  gbx_pack_kv_cstr(pk, "q", "b");
  gbx_pack_cstr(pk, "entries");
  msgpack_pack_array(pk, n);
  return pk;
}

/* ---- send and receive ---------------------------------------------------------- */

static void test_send_binary_body_and_attributes(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "bin", NULL);
  uint8_t body[512];
  for (size_t i = 0; i < sizeof body; i++)
    body[i] = (uint8_t)(i * 7); /* NULs included */
  body[0] = 0;
  body[511] = 0;
  const uint8_t bval[] = {0, 1, 0, 255, 0};
  gbx_msg_attr_t at[] = {
      {"greeting", "String", "h\xc3\xa9llo", 6}, {"pi", "Number.float", "3.14159", 7},
      {"exp", "Number", "-12.5e3", 7},           {"raw", "Binary", bval, sizeof bval},
      {"trace.id", "String.uuid", "abc", 3},
  };
  char mid[GBX_MID_BUFSZ];
  uint64_t t0 = tu_wall_ms();
  CHECK_OK(gbx_queue_send(f->c, "bin", body, sizeof body, at, 5, -1, mid, &e));
  uint64_t t1 = tu_wall_ms();
  assert_true(tu_is_uuid(mid));

  gbx_message_t *m = tu_recv_n(f->c, "bin", 10, 30, 1);
  uint64_t t2 = tu_wall_ms();
  assert_string_equal(m[0].mid, mid);
  assert_int_equal(m[0].body_len, sizeof body);
  assert_memory_equal(m[0].body, body, sizeof body);
  assert_int_equal(m[0].nattrs, 5);
  for (size_t i = 0; i < 5; i++) {
    const gbx_msg_attr_t *a = tu_msg_attr(&m[0], at[i].name);
    if (!a)
      fail_msg("attribute %s lost", at[i].name);
    assert_string_equal(a->type, at[i].type); /* custom labels verbatim */
    assert_int_equal(a->value_len, at[i].value_len);
    assert_memory_equal(a->value, at[i].value, at[i].value_len);
  }
  assert_int_equal(m[0].receive_count, 1);
  assert_in_range(m[0].sent_ms, t0 - CLOCK_SLACK_MS, t1 + CLOCK_SLACK_MS);
  assert_in_range(m[0].first_receive_ms, m[0].sent_ms, t2 + CLOCK_SLACK_MS);
  assert_null(m[0].source_queue);
  assert_non_null(m[0].receipt);
  assert_true(strlen(m[0].receipt) > 0 && strlen(m[0].receipt) <= GBX_MAX_RECEIPT);
  gbx_messages_free(m);

  /* an empty body is a message too */
  CHECK_OK(gbx_queue_send(f->c, "bin", "", 0, NULL, 0, -1, NULL, &e));
  m = tu_recv_n(f->c, "bin", 1, 30, 1);
  assert_int_equal(m[0].body_len, 0);
  assert_int_equal(m[0].nattrs, 0);
  gbx_messages_free(m);

  char buf[GBX_MID_BUFSZ];
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_send(f->c, "nope", "x", 1, NULL, 0, -1, buf, &e));
  tu_assert_alive(f->ts);
}

static void test_bad_attributes(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "attrs", NULL);
  char longname[258];
  memset(longname, 'n', 256);
  longname[256] = 0; /* 256: the longest legal name */
  gbx_msg_attr_t ok = {longname, "String", "v", 1};
  CHECK_OK(gbx_queue_send(f->c, "attrs", "x", 1, &ok, 1, -1, NULL, &e));
  uint64_t purged;
  CHECK_OK(gbx_queue_purge(f->c, "attrs", &purged, &e));

  static const gbx_msg_attr_t bad[] = {
      {"AWS.thing", "String", "v", 1}, {"aws.thing", "String", "v", 1},
      {"Amazon.x", "String", "v", 1},  {"AMAZON.x", "String", "v", 1},
      {".lead", "String", "v", 1},     {"trail.", "String", "v", 1},
      {"a..b", "String", "v", 1},      {"sp ace", "String", "v", 1},
      {"", "String", "v", 1},          {"k", "Text", "v", 1},
      {"k", "string", "v", 1},         {"k", "", "v", 1},
      {"k", "Number", "abc", 3},       {"k", "Number", "1.2.3", 5},
      {"k", "Number", "", 0},          {"k", "String", "", 0},
      {"k", "Binary", "", 0},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = gbx_queue_send(f->c, "attrs", "x", 1, &bad[i], 1, -1, NULL, &e);
    if (rc != GBX_E_BAD_ATTRIBUTE)
      fail_msg("attribute {'%s', '%s', '%.*s'}: got %s, want bad_attribute", bad[i].name,
               bad[i].type, (int)bad[i].value_len, (const char *)bad[i].value, gbx_errname(rc));
  }
  /* the same name twice (libgearbox packs a map with a repeated key) */
  gbx_msg_attr_t dup[] = {{"k", "String", "a", 1}, {"k", "String", "b", 1}};
  int rc = gbx_queue_send(f->c, "attrs", "x", 1, dup, 2, -1, NULL, &e);
  assert_true(rc == GBX_E_BAD_ATTRIBUTE || rc == GBX_E_DUPLICATE_FIELD || rc == GBX_E_BAD_FRAME);
  CHECK_OK(gbx_ping(f->c, &e));

  /* what libgearbox itself refuses: a 257-character name, 11 attributes */
  tu_raw_t r;
  msgpack_packer *pk;
  longname[256] = 'n';
  longname[257] = 0;
  pk = raw_send_attrs(&r, 1);
  gbx_pack_cstr(pk, longname);
  msgpack_pack_map(pk, 2);
  gbx_pack_kv_cstr(pk, "t", "String");
  gbx_pack_kv_cstr(pk, "v", "v");
  assert_int_equal(raw_call(f->ts, &r), GBX_E_BAD_ATTRIBUTE);
  /* an attribute that is not a {t, v} map */
  pk = raw_send_attrs(&r, 1);
  gbx_pack_kv_cstr(pk, "k", "just a string");
  assert_int_equal(raw_call(f->ts, &r), GBX_E_BAD_ATTRIBUTE);

  counters(f->c, "attrs", 0, 0, 0);
  /* 11 attributes: an attribute error like the others, not a generic one */
  pk = raw_send_attrs(&r, 11);
  for (int i = 0; i < 11; i++) {
    char name[8];
    snprintf(name, sizeof name, "a%d", i);
    gbx_pack_cstr(pk, name);
    msgpack_pack_map(pk, 2);
    gbx_pack_kv_cstr(pk, "t", "String");
    gbx_pack_kv_cstr(pk, "v", "v");
  }
  assert_int_equal(raw_call(f->ts, &r), GBX_E_BAD_ATTRIBUTE);
  /* none of the refused messages was stored */
  counters(f->c, "attrs", 0, 0, 0);
  tu_assert_alive(f->ts);
}

static void test_message_too_long(void **state) {
  tu_fx_t *f = *state;
  gbx_queue_attrs_t small = {.set = GBX_QA_MAX_SIZE, .max_message_size = 1024};
  tu_create_queue(f->c, "small", &small);
  tu_create_queue(f->c, "big", NULL);
  size_t cap = GBX_MAX_MESSAGE_SIZE + 1;
  uint8_t *body = malloc(cap);
  assert_non_null(body);
  memset(body, 'b', cap);

  CHECK_OK(gbx_queue_send(f->c, "small", body, 1024, NULL, 0, -1, NULL, &e));
  CHECK_ERR(GBX_E_MESSAGE_TOO_LONG,
            gbx_queue_send(f->c, "small", body, 1025, NULL, 0, -1, NULL, &e));
  /* attributes count: 1000 + 4 ("name") + 6 ("String") + 14 = 1024 fits, one more byte not */
  gbx_msg_attr_t a = {"name", "String", "0123456789abcd", 14};
  CHECK_OK(gbx_queue_send(f->c, "small", body, 1000, &a, 1, -1, NULL, &e));
  a.value_len = 15;
  a.value = "0123456789abcde";
  CHECK_ERR(GBX_E_MESSAGE_TOO_LONG, gbx_queue_send(f->c, "small", body, 1000, &a, 1, -1, NULL, &e));
  counters(f->c, "small", 2, 0, 0);

  /* the default limit: 1 MiB exactly */
  CHECK_OK(gbx_queue_send(f->c, "big", body, GBX_MAX_MESSAGE_SIZE, NULL, 0, -1, NULL, &e));
  gbx_message_t *m = tu_recv_n(f->c, "big", 1, 30, 1);
  assert_int_equal(m[0].body_len, GBX_MAX_MESSAGE_SIZE);
  assert_memory_equal(m[0].body, body, GBX_MAX_MESSAGE_SIZE);
  gbx_messages_free(m);

  /* lowering the limit applies to later sends */
  CHECK_OK(gbx_queue_set_attrs(f->c, "big", &small, &e));
  CHECK_ERR(GBX_E_MESSAGE_TOO_LONG, gbx_queue_send(f->c, "big", body, 1025, NULL, 0, -1, NULL, &e));
  /* over the 1 MiB cap of any queue: still message_too_long */
  tu_create_queue(f->c, "default", NULL);
  CHECK_ERR(GBX_E_MESSAGE_TOO_LONG,
            gbx_queue_send(f->c, "default", body, GBX_MAX_MESSAGE_SIZE + 1, NULL, 0, -1, NULL, &e));
  gbx_msg_attr_t big_attr = {"a", "String", "xx", 2};
  CHECK_ERR(GBX_E_MESSAGE_TOO_LONG, gbx_queue_send(f->c, "default", body, GBX_MAX_MESSAGE_SIZE,
                                                   &big_attr, 1, -1, NULL, &e));
  free(body);
  tu_assert_alive(f->ts);
}

static void test_receive_reply_budget(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "huge", NULL);
  uint8_t *body = malloc(GBX_MAX_MESSAGE_SIZE);
  assert_non_null(body);
  for (int i = 0; i < 3; i++) {
    memset(body, 'A' + i, GBX_MAX_MESSAGE_SIZE);
    CHECK_OK(gbx_queue_send(f->c, "huge", body, GBX_MAX_MESSAGE_SIZE, NULL, 0, -1, NULL, &e));
  }
  free(body);
  /* a reply stops once it carries 2 MiB of bodies */
  gbx_message_t *m = tu_recv_n(f->c, "huge", 10, 60, 2);
  assert_int_equal(m[0].body[0], 'A');
  assert_int_equal(m[1].body[GBX_MAX_MESSAGE_SIZE - 1], 'B');
  gbx_messages_free(m);
  m = tu_recv_n(f->c, "huge", 10, 60, 1);
  assert_int_equal(m[0].body[12345], 'C');
  gbx_messages_free(m);
  tu_assert_alive(f->ts);
}

static void test_delays(void **state) {
  tu_fx_t *f = *state;
  gbx_queue_attrs_t d = {.set = GBX_QA_DELAY, .delay_seconds = 1};
  tu_create_queue(f->c, "slow", &d);
  send_str(f->c, "slow", "queue-delayed", NULL);                              /* 1 s */
  CHECK_OK(gbx_queue_send(f->c, "slow", "now", 3, NULL, 0, 0, NULL, &e));     /* 0 s */
  CHECK_OK(gbx_queue_send(f->c, "slow", "later", 5, NULL, 0, 600, NULL, &e)); /* 600 s */
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_send(f->c, "slow", "x", 1, NULL, 0, 901, NULL, &e));
  counters(f->c, "slow", 1, 0, 2);
  gbx_message_t *m = tu_recv_n(f->c, "slow", 10, 60, 1);
  assert_memory_equal(m[0].body, "now", 3);
  gbx_messages_free(m);
  tu_sleep_ms(1000 + EXPIRY_SLACK_MS);
  counters(f->c, "slow", 1, 1, 1);
  m = tu_recv_n(f->c, "slow", 10, 60, 1);
  assert_memory_equal(m[0].body, "queue-delayed", 13);
  gbx_messages_free(m);
  counters(f->c, "slow", 0, 2, 1);

  /* a batch entry carries its own delay as well */
  gbx_send_entry_t en[] = {{"a", "late", 4, NULL, 0, 600}, {"b", "soon", 4, NULL, 0, 0}};
  gbx_batch_result_t res[2];
  CHECK_OK(gbx_queue_send_batch(f->c, "slow", en, 2, res, &e));
  assert_int_equal(res[0].code, 0);
  assert_int_equal(res[1].code, 0);
  counters(f->c, "slow", 1, 2, 2);
  tu_assert_alive(f->ts);
}

/* ---- batches ------------------------------------------------------------------ */

static void test_send_batch_entry_errors(void **state) {
  tu_fx_t *f = *state;
  gbx_queue_attrs_t small = {.set = GBX_QA_MAX_SIZE, .max_message_size = 1024};
  tu_create_queue(f->c, "b", &small);
  static uint8_t big[2000];
  memset(big, 'x', sizeof big);
  gbx_msg_attr_t bad = {"AWS.reserved", "String", "v", 1};
  gbx_msg_attr_t good = {"color", "String", "red", 3};
  gbx_send_entry_t en[] = {
      {"first", "one", 3, &good, 1, -1},       {"second", "two", 3, &bad, 1, -1},
      {"third", big, sizeof big, NULL, 0, -1}, {"fourth", "four", 4, NULL, 0, 901},
      {NULL, "five", 4, NULL, 0, -1},
  };
  gbx_batch_result_t res[5];
  CHECK_OK(gbx_queue_send_batch(f->c, "b", en, 5, res, &e));
  assert_int_equal(res[0].code, GBX_E_OK);
  assert_true(tu_is_uuid(res[0].mid));
  assert_int_equal(res[1].code, GBX_E_BAD_ATTRIBUTE);
  assert_true(res[1].message[0] != 0);
  assert_int_equal(res[2].code, GBX_E_MESSAGE_TOO_LONG);
  assert_int_equal(res[3].code, GBX_E_OUT_OF_RANGE);
  assert_int_equal(res[4].code, GBX_E_OK);
  assert_true(tu_is_uuid(res[4].mid));
  assert_string_not_equal(res[0].mid, res[4].mid);

  /* exactly the good entries were stored, in order */
  gbx_message_t *m = tu_recv_n(f->c, "b", 10, 60, 2);
  assert_string_equal(m[0].mid, res[0].mid);
  assert_memory_equal(m[0].body, "one", 3);
  assert_int_equal(m[0].nattrs, 1);
  assert_string_equal(m[0].attrs[0].name, "color");
  assert_string_equal(m[1].mid, res[4].mid);
  gbx_messages_free(m);
  tu_assert_alive(f->ts);
}

static void test_send_batch_request_errors(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "b", NULL);
  gbx_batch_result_t res[100];

  /* duplicate entry ids fail the whole request */
  gbx_send_entry_t dup[] = {{"same", "a", 1, NULL, 0, -1}, {"same", "b", 1, NULL, 0, -1}};
  CHECK_ERR(GBX_E_DUPLICATE_ENTRY_ID, gbx_queue_send_batch(f->c, "b", dup, 2, res, &e));
  /* more than 1 MiB of bodies in all, though each fits */
  static uint8_t half[600 * 1024];
  memset(half, 'h', sizeof half);
  gbx_send_entry_t two[] = {{"x", half, sizeof half, NULL, 0, -1},
                            {"y", half, sizeof half, NULL, 0, -1}};
  CHECK_ERR(GBX_E_BATCH_TOO_LARGE, gbx_queue_send_batch(f->c, "b", two, 2, res, &e));
  two[1].body_len = 1024 * 1024 - sizeof half; /* exactly 1 MiB in all */
  CHECK_OK(gbx_queue_send_batch(f->c, "b", two, 2, res, &e));
  assert_int_equal(res[0].code, 0);
  assert_int_equal(res[1].code, 0);
  uint64_t purged = 0;
  CHECK_OK(gbx_queue_purge(f->c, "b", &purged, &e));
  assert_int_equal(purged, 2);
  /* a missing queue */
  gbx_send_entry_t one[] = {{"x", "a", 1, NULL, 0, -1}};
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_send_batch(f->c, "nope", one, 1, res, &e));
  /* a bad entry id */
  gbx_send_entry_t badid[] = {{"bad.id", "a", 1, NULL, 0, -1}};
  int rc = gbx_queue_send_batch(f->c, "b", badid, 1, res, &e);
  assert_true(rc == GBX_E_BAD_NAME || (rc == GBX_E_OK && res[0].code == GBX_E_BAD_NAME));

  /* what libgearbox refuses to send: an empty batch and 101 entries */
  tu_raw_t r;
  raw_batch(&r, GBX_OP_SEND_BATCH, 0);
  assert_int_equal(raw_call(f->ts, &r), GBX_E_EMPTY_BATCH);
  msgpack_packer *pk = raw_batch(&r, GBX_OP_SEND_BATCH, 101);
  for (int i = 0; i < 101; i++) {
    char eid[8];
    snprintf(eid, sizeof eid, "e%d", i);
    msgpack_pack_map(pk, 2);
    gbx_pack_kv_cstr(pk, "eid", eid);
    gbx_pack_kv_bin(pk, "body", "z", 1);
  }
  assert_int_equal(raw_call(f->ts, &r), GBX_E_TOO_MANY_ENTRIES);
  /* the same for delete_batch and change_vis_batch */
  raw_batch(&r, GBX_OP_DELETE_BATCH, 0);
  assert_int_equal(raw_call(f->ts, &r), GBX_E_EMPTY_BATCH);
  pk = raw_batch(&r, GBX_OP_CHANGE_VIS_BATCH, 101);
  for (int i = 0; i < 101; i++) {
    msgpack_pack_map(pk, 2);
    gbx_pack_kv_cstr(pk, "rh", "x");
    gbx_pack_kv_u64(pk, "vis", 1);
  }
  assert_int_equal(raw_call(f->ts, &r), GBX_E_TOO_MANY_ENTRIES);

  /* 100 entries is the limit, not over it */
  gbx_send_entry_t full[100];
  char eids[100][8];
  for (int i = 0; i < 100; i++) {
    snprintf(eids[i], sizeof eids[i], "e%d", i);
    full[i] = (gbx_send_entry_t){eids[i], "m", 1, NULL, 0, -1};
  }
  CHECK_OK(gbx_queue_send_batch(f->c, "b", full, 100, res, &e));
  for (int i = 0; i < 100; i++)
    assert_int_equal(res[i].code, 0);
  counters(f->c, "b", 100, 0, 0);
  tu_assert_alive(f->ts);
}

static void test_receive_max_vis_and_order(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "r", NULL);
  char mids[5][GBX_MID_BUFSZ];
  for (int i = 0; i < 5; i++) {
    char b[8];
    snprintf(b, sizeof b, "m%d", i);
    send_str(f->c, "r", b, mids[i]);
  }
  gbx_message_t *m = tu_recv_n(f->c, "r", 3, 1, 3);
  for (int i = 0; i < 3; i++) {
    assert_string_equal(m[i].mid, mids[i]); /* oldest first */
    assert_int_equal(m[i].receive_count, 1);
  }
  gbx_messages_free(m);
  m = tu_recv_n(f->c, "r", 100, 1, 2);
  assert_string_equal(m[0].mid, mids[3]);
  assert_string_equal(m[1].mid, mids[4]);
  gbx_messages_free(m);
  m = tu_recv_n(f->c, "r", 100, 1, 0);
  counters(f->c, "r", 0, 5, 0);
  /* vis 1: all five are back after a second, each received twice now */
  tu_sleep_ms(1000 + EXPIRY_SLACK_MS);
  counters(f->c, "r", 5, 0, 0);
  m = tu_recv_n(f->c, "r", 0, -1, 1); /* default max 1, queue's visibility (30 s) */
  assert_string_equal(m[0].mid, mids[0]);
  assert_int_equal(m[0].receive_count, 2);
  gbx_messages_free(m);
  counters(f->c, "r", 4, 1, 0);

  /* ranges */
  gbx_message_t *x;
  size_t n;
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_receive(f->c, "r", 101, 1, 0, &x, &n, &e));
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_receive(f->c, "r", 1, 43201, 0, &x, &n, &e));
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_receive(f->c, "r", 1, 1, 21, &x, &n, &e));
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_receive(f->c, "nope", 1, 1, 0, &x, &n, &e));
  tu_raw_t r;
  msgpack_packer *pk = tu_raw_request(&r, GBX_OP_RECEIVE, RAW_ID, 2);
  gbx_pack_kv_cstr(pk, "q", "r");
  gbx_pack_kv_u64(pk, "max", 0);
  assert_int_equal(raw_call(f->ts, &r), GBX_E_OUT_OF_RANGE);
  counters(f->c, "r", 4, 1, 0);
  tu_assert_alive(f->ts);
}

static void test_receive_count_and_timestamps(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "rc", NULL);
  char mid[GBX_MID_BUFSZ];
  uint64_t t0 = tu_wall_ms();
  send_str(f->c, "rc", "again and again", mid);
  uint64_t sent = 0, first = 0;
  for (uint64_t i = 1; i <= 4; i++) {
    tu_sleep_ms(20);
    gbx_message_t *m = tu_recv_n(f->c, "rc", 1, 0, 1); /* vis 0: visible again at once */
    assert_string_equal(m[0].mid, mid);
    assert_int_equal(m[0].receive_count, i);
    if (i == 1) {
      sent = m[0].sent_ms;
      first = m[0].first_receive_ms;
      assert_in_range(sent, t0 - CLOCK_SLACK_MS, tu_wall_ms() + CLOCK_SLACK_MS);
      assert_true(first >= sent);
    } else {
      assert_int_equal(m[0].sent_ms, sent);           /* never changes */
      assert_int_equal(m[0].first_receive_ms, first); /* the first receive's time */
    }
    gbx_messages_free(m);
  }
  tu_assert_alive(f->ts);
}

/* vis 0 makes a received message visible again at once, also to a receive
 * that arrives in the same write as the first (pipelined). */
static void test_receive_vis0_pipelined(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "z", NULL);
  char mid[GBX_MID_BUFSZ];
  send_str(f->c, "z", "again", mid);
  uint64_t ids[3];
  for (int i = 0; i < 3; i++) {
    ids[i] = gbx_submit_receive(f->c, "z", 1, 0, 0, &e);
    assert_true(ids[i] > 0);
  }
  CHECK_OK(gbx_flush(f->c, &e));
  uint64_t counts = 0;
  for (int i = 0; i < 3; i++) {
    gbx_reply_t *r;
    gbx_message_t *m;
    size_t n;
    CHECK_OK(gbx_collect(f->c, &r, &e));
    CHECK_OK(gbx_reply_error(r, &e));
    CHECK_OK(gbx_reply_messages(r, &m, &n, &e));
    uint64_t rid = gbx_reply_id(r);
    gbx_reply_free(r);
    int same = n == 1 && strcmp(m[0].mid, mid) == 0;
    if (same)
      counts |= 1u << m[0].receive_count;
    gbx_messages_free(m);
    if (!same)
      fail_msg("pipelined receive %llu with vis 0 got %zu messages, want the visible one",
               (unsigned long long)rid, n);
  }
  assert_int_equal(counts, (1u << 1) | (1u << 2) | (1u << 3));
  tu_assert_alive(f->ts);
}

/* A receive that finds GBX_MAX_INFLIGHT messages in flight on the queue is
 * refused with over_limit until one of them is settled. */
static void test_inflight_limit(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "flood", NULL);
  gbx_send_entry_t en[GBX_MAX_BATCH];
  for (size_t i = 0; i < GBX_MAX_BATCH; i++)
    en[i] = (gbx_send_entry_t){NULL, "f", 1, NULL, 0, -1};
  size_t batches = GBX_MAX_INFLIGHT / GBX_MAX_BATCH;
  /* pipelined, a window of 64 requests in flight */
  size_t sent = 0, done = 0;
  while (done < batches) {
    while (sent < batches && sent - done < 64) {
      assert_true(gbx_submit_send_batch(f->c, "flood", en, GBX_MAX_BATCH, &e) > 0);
      sent++;
    }
    gbx_reply_t *r;
    CHECK_OK(gbx_collect(f->c, &r, &e));
    CHECK_OK(gbx_reply_error(r, &e));
    gbx_reply_free(r);
    done++;
  }
  char last[GBX_MID_BUFSZ];
  send_str(f->c, "flood", "one more", last);
  size_t recv_reqs = GBX_MAX_INFLIGHT / GBX_MAX_RECEIVE;
  size_t got = 0;
  sent = done = 0;
  gbx_message_t *keep = NULL;
  while (done < recv_reqs) {
    while (sent < recv_reqs && sent - done < 64) {
      assert_true(gbx_submit_receive(f->c, "flood", GBX_MAX_RECEIVE, 3600, 0, &e) > 0);
      sent++;
    }
    gbx_reply_t *r;
    gbx_message_t *m;
    size_t n;
    CHECK_OK(gbx_collect(f->c, &r, &e));
    CHECK_OK(gbx_reply_error(r, &e));
    CHECK_OK(gbx_reply_messages(r, &m, &n, &e));
    got += n;
    if (!keep)
      keep = m;
    else
      gbx_messages_free(m);
    gbx_reply_free(r);
    done++;
  }
  assert_int_equal(got, GBX_MAX_INFLIGHT);
  counters(f->c, "flood", 1, GBX_MAX_INFLIGHT, 0);
  gbx_message_t *x;
  size_t n;
  CHECK_ERR(GBX_E_OVER_LIMIT, gbx_queue_receive(f->c, "flood", 1, 30, 0, &x, &n, &e));
  /* settling one in-flight message makes room for one more */
  CHECK_OK(gbx_message_delete(f->c, "flood", keep[0].receipt, &e));
  gbx_messages_free(keep);
  x = tu_recv_n(f->c, "flood", 10, 30, 1);
  assert_string_equal(x[0].mid, last);
  gbx_messages_free(x);
  uint64_t purged;
  CHECK_OK(gbx_queue_purge(f->c, "flood", &purged, &e));
  assert_int_equal(purged, GBX_MAX_INFLIGHT);
  tu_assert_alive(f->ts);
}

/* ---- receipts ------------------------------------------------------------------- */

static void test_delete_and_delete_batch(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "d", NULL);
  for (int i = 0; i < 5; i++)
    send_str(f->c, "d", "x", NULL);
  gbx_message_t *m = tu_recv_n(f->c, "d", 5, 60, 5);
  CHECK_OK(gbx_message_delete(f->c, "d", m[0].receipt, &e));
  counters(f->c, "d", 0, 4, 0);
  /* a retried delete with the latest handle is safe */
  CHECK_OK(gbx_message_delete(f->c, "d", m[0].receipt, &e));
  counters(f->c, "d", 0, 4, 0);

  gbx_receipt_entry_t en[] = {{"a", m[1].receipt, 0},
                              {"b", "not-a-receipt", 0},
                              {"c", m[2].receipt, 0},
                              {"d", m[0].receipt, 0}};
  gbx_batch_result_t res[4];
  CHECK_OK(gbx_message_delete_batch(f->c, "d", en, 4, res, &e));
  assert_int_equal(res[0].code, GBX_E_OK);
  assert_int_equal(res[1].code, GBX_E_RECEIPT_INVALID);
  assert_int_equal(res[2].code, GBX_E_OK);
  assert_int_equal(res[3].code, GBX_E_OK);
  counters(f->c, "d", 0, 2, 0);
  /* duplicate entry ids fail the whole batch */
  gbx_receipt_entry_t dup[] = {{"a", m[3].receipt, 0}, {"a", m[4].receipt, 0}};
  CHECK_ERR(GBX_E_DUPLICATE_ENTRY_ID, gbx_message_delete_batch(f->c, "d", dup, 2, res, &e));
  counters(f->c, "d", 0, 2, 0);
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_message_delete(f->c, "nope", m[3].receipt, &e));
  gbx_messages_free(m);
  tu_assert_alive(f->ts);
}

static void test_stale_receipt(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "s", NULL);
  send_str(f->c, "s", "payload", NULL);
  gbx_message_t *m1 = tu_recv_n(f->c, "s", 1, 60, 1);
  CHECK_OK(gbx_message_change_vis(f->c, "s", m1[0].receipt, 0, &e)); /* visible now */
  gbx_message_t *m2 = tu_recv_n(f->c, "s", 1, 60, 1);
  assert_string_equal(m1[0].mid, m2[0].mid);
  assert_string_not_equal(m1[0].receipt, m2[0].receipt);
  assert_int_equal(m2[0].receive_count, 2);
  /* the first handle is stale: nothing changes */
  CHECK_ERR(GBX_E_RECEIPT_STALE, gbx_message_delete(f->c, "s", m1[0].receipt, &e));
  CHECK_ERR(GBX_E_RECEIPT_STALE, gbx_message_change_vis(f->c, "s", m1[0].receipt, 0, &e));
  counters(f->c, "s", 0, 1, 0);
  /* also after the visibility expired, until the next receive */
  CHECK_OK(gbx_message_change_vis(f->c, "s", m2[0].receipt, 1, &e));
  tu_sleep_ms(1000 + EXPIRY_SLACK_MS);
  counters(f->c, "s", 1, 0, 0);
  CHECK_ERR(GBX_E_RECEIPT_STALE, gbx_message_delete(f->c, "s", m1[0].receipt, &e));
  counters(f->c, "s", 1, 0, 0);
  /* the latest handle still works after its visibility ran out */
  CHECK_OK(gbx_message_delete(f->c, "s", m2[0].receipt, &e));
  counters(f->c, "s", 0, 0, 0);
  CHECK_OK(gbx_message_delete(f->c, "s", m2[0].receipt, &e));
  gbx_messages_free(m1);
  gbx_messages_free(m2);
  tu_assert_alive(f->ts);
}

static void test_forged_and_foreign_receipts(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "mine", NULL);
  tu_create_queue(f->c, "yours", NULL);
  send_str(f->c, "mine", "a", NULL);
  send_str(f->c, "yours", "b", NULL);
  gbx_message_t *m = tu_recv_n(f->c, "mine", 1, 60, 1);
  gbx_message_t *y = tu_recv_n(f->c, "yours", 1, 60, 1);
  const char *rh = m[0].receipt;
  size_t len = strlen(rh);

  /* one character changed anywhere: the authentication tag fails */
  char *forged = strdup(rh);
  assert_non_null(forged);
  for (size_t pos = 0; pos < len; pos += len / 4 + 1) {
    strcpy(forged, rh);
    forged[pos] = forged[pos] == 'A' ? 'B' : 'A';
    CHECK_ERR(GBX_E_RECEIPT_INVALID, gbx_message_delete(f->c, "mine", forged, &e));
    CHECK_ERR(GBX_E_RECEIPT_INVALID, gbx_message_change_vis(f->c, "mine", forged, 0, &e));
  }
  forged[len - 1] = 0; /* truncated */
  CHECK_ERR(GBX_E_RECEIPT_INVALID, gbx_message_delete(f->c, "mine", forged, &e));
  free(forged);
  static const char *const junk[] = {"x", "!!!!not base64!!!!",
                                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
    CHECK_ERR(GBX_E_RECEIPT_INVALID, gbx_message_delete(f->c, "mine", junk[i], &e));
  char longrh[300];
  memset(longrh, 'A', sizeof longrh - 1);
  longrh[sizeof longrh - 1] = 0;
  int rc = gbx_message_delete(f->c, "mine", longrh, &e);
  assert_true(rc == GBX_E_RECEIPT_INVALID || rc == GBX_E_OUT_OF_RANGE);

  /* a genuine handle of another queue */
  CHECK_ERR(GBX_E_RECEIPT_INVALID, gbx_message_delete(f->c, "mine", y[0].receipt, &e));
  CHECK_ERR(GBX_E_RECEIPT_INVALID, gbx_message_change_vis(f->c, "mine", y[0].receipt, 0, &e));
  CHECK_ERR(GBX_E_RECEIPT_INVALID, gbx_message_delete(f->c, "yours", rh, &e));
  counters(f->c, "mine", 0, 1, 0);
  counters(f->c, "yours", 0, 1, 0);
  /* the genuine handles still work where they belong */
  CHECK_OK(gbx_message_delete(f->c, "mine", rh, &e));
  CHECK_OK(gbx_message_delete(f->c, "yours", y[0].receipt, &e));
  counters(f->c, "mine", 0, 0, 0);
  counters(f->c, "yours", 0, 0, 0);
  gbx_messages_free(m);
  gbx_messages_free(y);
  tu_assert_alive(f->ts);
}

static void test_change_visibility(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "v", NULL);
  send_str(f->c, "v", "one", NULL);
  send_str(f->c, "v", "two", NULL);
  gbx_message_t *m = tu_recv_n(f->c, "v", 2, 600, 2);
  /* 0: visible now */
  CHECK_OK(gbx_message_change_vis(f->c, "v", m[0].receipt, 0, &e));
  counters(f->c, "v", 1, 1, 0);
  /* that handle's message is no longer in flight */
  CHECK_ERR(GBX_E_NOT_IN_FLIGHT, gbx_message_change_vis(f->c, "v", m[0].receipt, 10, &e));
  /* over 12 hours from the receive */
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_message_change_vis(f->c, "v", m[1].receipt, 43201, &e));
  CHECK_OK(gbx_message_change_vis(f->c, "v", m[1].receipt, 3600, &e));
  /* a short visibility that then expires */
  CHECK_OK(gbx_message_change_vis(f->c, "v", m[1].receipt, 1, &e));
  counters(f->c, "v", 1, 1, 0);
  tu_sleep_ms(1000 + EXPIRY_SLACK_MS);
  counters(f->c, "v", 2, 0, 0);
  gbx_message_t *again = tu_recv_n(f->c, "v", 10, 600, 2);
  assert_int_equal(again[0].receive_count, 2);
  assert_int_equal(again[1].receive_count, 2);

  /* batch: one made visible, one extended, one forged, one stale */
  gbx_receipt_entry_t en[] = {{"now", again[0].receipt, 0},
                              {"later", again[1].receipt, 900},
                              {"forged", "garbage", 0},
                              {"stale", m[1].receipt, 0}};
  gbx_batch_result_t res[4];
  CHECK_OK(gbx_message_change_vis_batch(f->c, "v", en, 4, res, &e));
  assert_int_equal(res[0].code, GBX_E_OK);
  assert_int_equal(res[1].code, GBX_E_OK);
  assert_int_equal(res[2].code, GBX_E_RECEIPT_INVALID);
  assert_int_equal(res[3].code, GBX_E_RECEIPT_STALE);
  counters(f->c, "v", 1, 1, 0);
  gbx_message_t *last = tu_recv_n(f->c, "v", 10, 600, 1);
  assert_string_equal(last[0].mid, again[0].mid);
  assert_int_equal(last[0].receive_count, 3);
  gbx_messages_free(last);
  gbx_messages_free(again);
  gbx_messages_free(m);
  tu_assert_alive(f->ts);
}

/* ---- dead letters and redrive ---------------------------------------------------- */

/* Makes queue "src" dead-letter into "dlq" after `maxrc` receives and moves
 * n messages there; their ids go to mids. */
static void fill_dlq(gbx_client_t *c, int n, char mids[][GBX_MID_BUFSZ]) {
  tu_create_queue(c, "dlq", NULL);
  gbx_queue_attrs_t a = {
      .set = GBX_QA_DLQ | GBX_QA_MAX_RECEIVES, .dead_letter_queue = "dlq", .max_receive_count = 2};
  tu_create_queue(c, "src", &a);
  gbx_msg_attr_t at = {"kind", "String.custom", "poison", 6};
  for (int i = 0; i < n; i++) {
    char b[16];
    snprintf(b, sizeof b, "poison-%d", i);
    CHECK_OK(gbx_queue_send(c, "src", b, strlen(b), &at, 1, -1, mids[i], &e));
  }
  for (int r = 1; r <= 2; r++) {
    gbx_message_t *m = tu_recv_n(c, "src", 100, 0, (size_t)n);
    for (int i = 0; i < n; i++)
      assert_int_equal(m[i].receive_count, (uint64_t)r);
    gbx_messages_free(m);
  }
  /* the third receive would pass MaxReceiveCount: the messages move instead */
  gbx_messages_free(tu_recv_n(c, "src", 100, 0, 0));
  counters(c, "src", 0, 0, 0);
  counters(c, "dlq", (uint64_t)n, 0, 0);
}

static void test_dead_letter(void **state) {
  tu_fx_t *f = *state;
  char mids[3][GBX_MID_BUFSZ];
  uint64_t t0 = tu_wall_ms();
  fill_dlq(f->c, 3, mids);
  gbx_message_t *m = tu_recv_n(f->c, "dlq", 10, 60, 3);
  for (int i = 0; i < 3; i++) {
    char b[16];
    snprintf(b, sizeof b, "poison-%d", i);
    assert_string_equal(m[i].mid, mids[i]);
    assert_int_equal(m[i].body_len, strlen(b));
    assert_memory_equal(m[i].body, b, strlen(b));
    assert_non_null(m[i].source_queue);
    assert_string_equal(m[i].source_queue, "src");
    assert_int_equal(m[i].nattrs, 1);
    assert_string_equal(m[i].attrs[0].type, "String.custom");
    assert_memory_equal(m[i].attrs[0].value, "poison", 6);
    assert_int_equal(m[i].receive_count, 3); /* its two receives, plus this one */
    assert_in_range(m[i].sent_ms, t0 - CLOCK_SLACK_MS, tu_wall_ms() + CLOCK_SLACK_MS);
  }
  gbx_messages_free(m);
  tu_assert_alive(f->ts);
}

static void wait_redrive(gbx_client_t *c, const char *dlq, const char *state,
                         gbx_redrive_status_t *st) {
  uint64_t deadline = tu_wall_ms() + REDRIVE_DEADLINE_MS;
  for (;;) {
    CHECK_OK(gbx_redrive_status(c, dlq, st, &e));
    if (strcmp(st->state, state) == 0)
      return;
    if (strcmp(st->state, "running") != 0 || tu_wall_ms() > deadline)
      fail_msg("redrive of %s: state %s (moved %llu of %llu, %s), want %s", dlq, st->state,
               (unsigned long long)st->moved, (unsigned long long)st->total, st->message, state);
    tu_sleep_ms(20);
  }
}

static void test_redrive(void **state) {
  tu_fx_t *f = *state;
  char mids[3][GBX_MID_BUFSZ];
  fill_dlq(f->c, 3, mids);
  gbx_redrive_status_t st;
  CHECK_OK(gbx_redrive_status(f->c, "dlq", &st, &e));
  assert_string_equal(st.state, "none");
  uint64_t moved;
  CHECK_ERR(GBX_E_NO_REDRIVE_TASK, gbx_redrive_cancel(f->c, "dlq", &moved, &e));
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_redrive_start(f->c, "nope", NULL, 0, NULL, &e));

  char *task = NULL;
  CHECK_OK(gbx_redrive_start(f->c, "dlq", NULL, 0, &task, &e));
  assert_non_null(task);
  assert_true(strlen(task) > 0);
  gbx_free(task);
  wait_redrive(f->c, "dlq", "completed", &st);
  assert_int_equal(st.moved, 3);
  assert_int_equal(st.total, 3);
  counters(f->c, "dlq", 0, 0, 0);
  /* back in their source queue as new messages: same id and body, count reset */
  gbx_message_t *m = tu_recv_n(f->c, "src", 10, 60, 3);
  for (int i = 0; i < 3; i++) {
    int found = 0;
    for (int j = 0; j < 3; j++)
      found |= strcmp(m[i].mid, mids[j]) == 0;
    assert_true(found);
    assert_int_equal(m[i].receive_count, 1);
    assert_null(m[i].source_queue);
    assert_int_equal(m[i].nattrs, 1);
  }
  gbx_messages_free(m);

  /* to an explicit destination */
  uint64_t purged;
  CHECK_OK(gbx_queue_purge(f->c, "src", &purged, &e));
  tu_create_queue(f->c, "elsewhere", NULL);
  send_str(f->c, "dlq", "direct", NULL);
  CHECK_OK(gbx_redrive_start(f->c, "dlq", "elsewhere", 0, NULL, &e));
  wait_redrive(f->c, "dlq", "completed", &st);
  assert_int_equal(st.moved, 1);
  counters(f->c, "elsewhere", 1, 0, 0);
  counters(f->c, "src", 0, 0, 0);
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_redrive_start(f->c, "dlq", "ghost", 0, NULL, &e));
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_redrive_start(f->c, "dlq", NULL, 501, NULL, &e));
  tu_assert_alive(f->ts);
}

static void test_redrive_cancel(void **state) {
  tu_fx_t *f = *state;
  char mids[6][GBX_MID_BUFSZ];
  fill_dlq(f->c, 6, mids);
  CHECK_OK(gbx_redrive_start(f->c, "dlq", NULL, 1, NULL, &e)); /* 1 message per second */
  CHECK_ERR(GBX_E_REDRIVE_RUNNING, gbx_redrive_start(f->c, "dlq", NULL, 1, NULL, &e));
  gbx_redrive_status_t st;
  CHECK_OK(gbx_redrive_status(f->c, "dlq", &st, &e));
  assert_string_equal(st.state, "running");
  assert_int_equal(st.total, 6);
  uint64_t moved = 99;
  CHECK_OK(gbx_redrive_cancel(f->c, "dlq", &moved, &e));
  assert_true(moved < 6);
  CHECK_OK(gbx_redrive_status(f->c, "dlq", &st, &e));
  assert_string_equal(st.state, "cancelled");
  assert_int_equal(st.moved, moved);
  /* nothing moves after the cancel; every message is in exactly one queue */
  tu_sleep_ms(1000 + EXPIRY_SLACK_MS);
  counters(f->c, "src", moved, 0, 0);
  counters(f->c, "dlq", 6 - moved, 0, 0);
  /* a new task can start once the old one ended */
  CHECK_OK(gbx_redrive_start(f->c, "dlq", NULL, 0, NULL, &e));
  wait_redrive(f->c, "dlq", "completed", &st);
  counters(f->c, "src", 6, 0, 0);
  tu_assert_alive(f->ts);
}

/* ---- broker -------------------------------------------------------------------- */

static void test_stats(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "s1", NULL);
  tu_create_queue(f->c, "s2", NULL);
  for (int i = 0; i < 3; i++)
    send_str(f->c, "s1", "12345", NULL);
  CHECK_OK(gbx_queue_send(f->c, "s1", "later", 5, NULL, 0, 600, NULL, &e));
  send_str(f->c, "s2", "abc", NULL);
  gbx_message_t *m = tu_recv_n(f->c, "s1", 1, 600, 1);
  gbx_messages_free(m);
  gbx_client_t *other = ts_connect(f->ts);

  gbx_stats_t st;
  CHECK_OK(gbx_stats(f->c, NULL, &st, &e));
  assert_int_equal(st.nqueues, 2);
  const gbx_queue_stats_t *q1 =
      strcmp(st.queues[0].name, "s1") == 0 ? &st.queues[0] : &st.queues[1];
  assert_string_equal(q1->name, "s1");
  assert_int_equal(q1->visible, 2);
  assert_int_equal(q1->inflight, 1);
  assert_int_equal(q1->delayed, 1);
  assert_int_equal(q1->bytes, 20);
  assert_int_equal(st.broker.queues, 2);
  assert_int_equal(st.broker.messages, 5);
  assert_int_equal(st.broker.bytes, 23);
  assert_true(st.broker.connections >= 2);
  assert_true(st.broker.batches >= 1);
  assert_true(st.broker.synced_mutations >= 1);
  double per_sync = st.broker.msgs_per_sync;
  assert_true(st.broker.commit_p50_us <= st.broker.commit_p99_us);
  assert_true(st.broker.index_bytes_per_msg > 0);
  assert_true(st.broker.uptime_s < 3600);
  gbx_stats_free(&st);

  CHECK_OK(gbx_stats(f->c, "s2", &st, &e));
  assert_int_equal(st.nqueues, 1);
  assert_string_equal(st.queues[0].name, "s2");
  assert_int_equal(st.queues[0].visible, 1);
  assert_int_equal(st.queues[0].bytes, 3);
  gbx_stats_free(&st);
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_stats(f->c, "nope", &st, &e));
  gbx_close(other);
  /* every commit acknowledged at least one request (creates, sends, a
   * receive); and as each request here waited for its reply before the next
   * was sent, no commit acknowledged two: the average is exactly 1 */
  if (per_sync < 1.0 || per_sync > 1.0)
    fail_msg("msgs_per_sync is %g after sequential requests, want 1", per_sync);
  tu_assert_alive(f->ts);
}

static void test_store_full(void **state) {
  (void)state;
  gbx_testserver_t *ts = ts_start("--max-bytes 4096");
  gbx_client_t *c = ts_connect(ts);
  tu_create_queue(c, "full", NULL);
  static uint8_t body[1000];
  memset(body, 'f', sizeof body);
  int sent = 0, rc;
  while ((rc = gbx_queue_send(c, "full", body, sizeof body, NULL, 0, -1, NULL, &e)) == 0 &&
         sent < 10)
    sent++;
  assert_int_equal(rc, GBX_E_STORE_FULL);
  assert_int_equal(sent, 4);
  assert_true(gbx_is_open(c));
  counters(c, "full", 4, 0, 0);
  /* deleting one makes room again */
  gbx_message_t *m = tu_recv_n(c, "full", 1, 60, 1);
  CHECK_OK(gbx_message_delete(c, "full", m[0].receipt, &e));
  gbx_messages_free(m);
  CHECK_OK(gbx_queue_send(c, "full", body, sizeof body, NULL, 0, -1, NULL, &e));
  CHECK_ERR(GBX_E_STORE_FULL, gbx_queue_send(c, "full", body, sizeof body, NULL, 0, -1, NULL, &e));
  gbx_close(c);
  ts_free(ts);
}

static void test_backup_and_restore(void **state) {
  tu_fx_t *f = *state;
  gbx_queue_attrs_t a = {.set = GBX_QA_VISIBILITY, .visibility_timeout = 77};
  tu_create_queue(f->c, "keep1", &a);
  tu_create_queue(f->c, "keep2", NULL);
  char mids[4][GBX_MID_BUFSZ];
  gbx_msg_attr_t at = {"n", "Number", "42", 2};
  CHECK_OK(gbx_queue_send(f->c, "keep1", "first\0x", 7, &at, 1, -1, mids[0], &e));
  send_str(f->c, "keep1", "second", mids[1]);
  send_str(f->c, "keep2", "third", mids[2]);

  char dir[4096], copy[4096], cmd[9000];
  snprintf(dir, sizeof dir, "%s/backup-1", ts_dir(f->ts));
  char *out = NULL;
  CHECK_OK(gbx_backup(f->c, dir, &out, &e));
  assert_non_null(out);
  assert_string_equal(out, dir);
  gbx_free(out);
  struct stat sb;
  assert_int_equal(stat(dir, &sb), 0);
  assert_true(S_ISDIR(sb.st_mode));
  /* the directory must not exist yet */
  int rc = gbx_backup(f->c, dir, NULL, &e);
  assert_true(rc == GBX_E_BACKUP_FAILED || rc == GBX_E_OUT_OF_RANGE || rc == GBX_E_BAD_NAME);
  /* later changes are not in the backup */
  send_str(f->c, "keep2", "after the backup", mids[3]);

  snprintf(copy, sizeof copy, "%s/restored", ts_dir(f->ts));
  snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", dir, copy);
  assert_int_equal(system(cmd), 0);
  char args[4200];
  snprintf(args, sizeof args, "--data %s", copy);
  gbx_testserver_t *ts2 = ts_start(args);
  gbx_client_t *c2 = tu_connect(ts2);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c2, "keep1", &info, &e));
  assert_int_equal(info.attrs.visibility_timeout, 77);
  gbx_queue_info_free(&info);
  gbx_message_t *m = tu_recv_n(c2, "keep1", 10, 60, 2);
  assert_string_equal(m[0].mid, mids[0]);
  assert_int_equal(m[0].body_len, 7);
  assert_memory_equal(m[0].body, "first\0x", 7);
  assert_int_equal(m[0].nattrs, 1);
  assert_string_equal(m[0].attrs[0].type, "Number");
  assert_string_equal(m[1].mid, mids[1]);
  gbx_messages_free(m);
  m = tu_recv_n(c2, "keep2", 10, 60, 1);
  assert_string_equal(m[0].mid, mids[2]);
  gbx_messages_free(m);
  /* the restored server takes new messages; the original kept its own */
  send_str(c2, "keep2", "on the copy", NULL);
  gbx_close(c2);
  ts_free(ts2);
  counters(f->c, "keep2", 2, 0, 0);
  tu_assert_alive(f->ts);
}

static int cmp_mid(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

static void test_message_ids_unique(void **state) {
  tu_fx_t *f = *state;
  tu_create_queue(f->c, "ids", NULL);
  char(*mids)[GBX_MID_BUFSZ] = calloc(UNIQUE_IDS, GBX_MID_BUFSZ);
  assert_non_null(mids);
  gbx_send_entry_t en[GBX_MAX_BATCH];
  gbx_batch_result_t res[GBX_MAX_BATCH];
  for (size_t i = 0; i < GBX_MAX_BATCH; i++)
    en[i] = (gbx_send_entry_t){NULL, "i", 1, NULL, 0, -1};
  size_t n = 0;
  /* half in batches, half as pipelined single sends */
  while (n < UNIQUE_IDS / 2) {
    CHECK_OK(gbx_queue_send_batch(f->c, "ids", en, GBX_MAX_BATCH, res, &e));
    for (size_t i = 0; i < GBX_MAX_BATCH; i++) {
      assert_int_equal(res[i].code, 0);
      memcpy(mids[n++], res[i].mid, GBX_MID_BUFSZ);
    }
  }
  while (n < UNIQUE_IDS) {
    size_t k;
    for (k = 0; k < 500 && n + k < UNIQUE_IDS; k++)
      assert_true(gbx_submit_send(f->c, "ids", "p", 1, NULL, 0, -1, &e) > 0);
    for (size_t i = 0; i < k; i++) {
      gbx_reply_t *r;
      CHECK_OK(gbx_collect(f->c, &r, &e));
      CHECK_OK(gbx_reply_mid(r, mids[n++], &e));
      gbx_reply_free(r);
    }
  }
  for (size_t i = 0; i < UNIQUE_IDS; i++)
    if (!tu_is_uuid(mids[i]))
      fail_msg("message id '%s' is not UUID-formatted", mids[i]);
  qsort(mids, UNIQUE_IDS, GBX_MID_BUFSZ, cmp_mid);
  for (size_t i = 1; i < UNIQUE_IDS; i++)
    if (strcmp(mids[i - 1], mids[i]) == 0)
      fail_msg("message id %s issued twice", mids[i]);
  free(mids);
  counters(f->c, "ids", UNIQUE_IDS, 0, 0);
  tu_assert_alive(f->ts);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup, tu_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_send_binary_body_and_attributes),
      T(test_bad_attributes),
      T(test_message_too_long),
      T(test_receive_reply_budget),
      T(test_delays),
      T(test_send_batch_entry_errors),
      T(test_send_batch_request_errors),
      T(test_receive_max_vis_and_order),
      T(test_receive_count_and_timestamps),
      T(test_receive_vis0_pipelined),
      T(test_inflight_limit),
      T(test_delete_and_delete_batch),
      T(test_stale_receipt),
      T(test_forged_and_foreign_receipts),
      T(test_change_visibility),
      T(test_dead_letter),
      T(test_redrive),
      T(test_redrive_cancel),
      T(test_stats),
      cmocka_unit_test(test_store_full),
      T(test_backup_and_restore),
      T(test_message_ids_unique),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
