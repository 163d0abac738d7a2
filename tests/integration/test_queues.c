/* test_queues.c - integration tests of queue management against the real
 * gearboxd: create (defaults, idempotence, attribute ranges, names), list
 * with prefix and paging, attributes and counters, tags, dead-letter sources,
 * redrive-policy checks, purge and delete. Each test starts its own server. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "gbx_codec.h"
#include "testutil.h"

static gbx_error_t e; /* the last call's error, for failure messages */

static const char *find_tag(const gbx_queue_info_t *info, const char *key) {
  for (size_t i = 0; i < info->ntags; i++)
    if (strcmp(info->tags[i].key, key) == 0)
      return info->tags[i].value;
  return NULL;
}

static void get_info(gbx_client_t *c, const char *q, gbx_queue_info_t *info) {
  CHECK_OK(gbx_queue_get_attrs(c, q, info, &e));
}

/* ---- raw requests (what libgearbox cannot send) ----------------------------- */

/* Sends the request packed in r (freed here) on a new raw connection, reads
 * its reply and returns the reply's err; msg gets the server's message. */
static int raw_call(gbx_testserver_t *ts, tu_raw_t *r, char *msg, size_t cap) {
  tu_reply_t rep = tu_raw_call(ts, &r->b);
  gbx_buf_free(&r->b);
  if (msg && cap)
    snprintf(msg, cap, "%s", rep.msg);
  return rep.err;
}

/* Starts a hand-built request op (id id) on queue "strange" whose attrs map
 * holds n attributes, which the caller packs. */
static msgpack_packer *raw_attrs(tu_raw_t *r, uint64_t op, uint64_t id, uint32_t n) {
  msgpack_packer *pk = tu_raw_request(r, op, id, 2);
  gbx_pack_kv_cstr(pk, "q", "strange");
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, n);
  return pk;
}

/* ---- create ---------------------------------------------------------------- */

static void test_create_defaults(void **state) {
  tu_fx_t *f = *state;
  int created = -1;
  time_t before = time(NULL);
  CHECK_OK(gbx_queue_create(f->c, "orders", NULL, NULL, 0, &created, &e));
  time_t after = time(NULL);
  assert_int_equal(created, 1);

  gbx_queue_info_t info;
  get_info(f->c, "orders", &info);
  /* every settable attribute is reported, with its documented default */
  unsigned all = GBX_QA_VISIBILITY | GBX_QA_DELAY | GBX_QA_RETENTION | GBX_QA_MAX_SIZE |
                 GBX_QA_WAIT | GBX_QA_DLQ | GBX_QA_MAX_RECEIVES | GBX_QA_POLICY |
                 GBX_QA_REDRIVE_ALLOW;
  assert_int_equal(info.attrs.set & all, all);
  assert_int_equal(info.attrs.visibility_timeout, 30);
  assert_int_equal(info.attrs.delay_seconds, 0);
  assert_int_equal(info.attrs.retention_period, 345600);
  assert_int_equal(info.attrs.max_message_size, 1048576);
  assert_int_equal(info.attrs.receive_wait, 0);
  assert_string_equal(info.attrs.dead_letter_queue, "");
  assert_int_equal(info.attrs.max_receive_count, 10);
  assert_string_equal(info.attrs.policy, "");
  assert_string_equal(info.attrs.redrive_allow_policy, "");
  /* the read-only attributes are there too, and sane for a new queue */
  static const char *const ro[] = {"ApproximateNumberOfMessages",
                                   "ApproximateNumberOfMessagesNotVisible",
                                   "ApproximateNumberOfMessagesDelayed",
                                   "ApproximateAgeOfOldestMessage",
                                   "CreatedTimestamp",
                                   "LastModifiedTimestamp",
                                   "QueueBytes"};
  for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
    const gbx_queue_attr_t *a = tu_find_attr(&info, ro[i]);
    if (!a)
      fail_msg("queue_get_attrs does not report %s", ro[i]);
    assert_null(a->str);
  }
  assert_int_equal(info.visible, 0);
  assert_int_equal(info.not_visible, 0);
  assert_int_equal(info.delayed, 0);
  assert_int_equal(info.oldest_age_s, 0);
  assert_int_equal(info.bytes, 0);
  assert_in_range(info.created_s, (uint64_t)before - 1, (uint64_t)after + 1);
  assert_true(info.modified_s >= info.created_s);
  assert_int_equal(info.ntags, 0);
  gbx_queue_info_free(&info);

  /* an omitted attribute map equals every default spelled out */
  gbx_queue_attrs_t d = {.set = all,
                         .visibility_timeout = 30,
                         .delay_seconds = 0,
                         .retention_period = 345600,
                         .max_message_size = 1048576,
                         .receive_wait = 0,
                         .dead_letter_queue = "",
                         .max_receive_count = 10,
                         .policy = "",
                         .redrive_allow_policy = ""};
  created = -1;
  CHECK_OK(gbx_queue_create(f->c, "orders", &d, NULL, 0, &created, &e));
  assert_int_equal(created, 0);
  tu_assert_alive(f->ts);
}

static void test_create_idempotent_and_conflict(void **state) {
  tu_fx_t *f = *state;
  gbx_queue_attrs_t a = {
      .set = GBX_QA_VISIBILITY | GBX_QA_DELAY, .visibility_timeout = 60, .delay_seconds = 5};
  gbx_tag_t t1[] = {{"team", "blue"}};
  gbx_tag_t t2[] = {{"owner", "alice"}};
  int created = -1;
  CHECK_OK(gbx_queue_create(f->c, "jobs", &a, t1, 1, &created, &e));
  assert_int_equal(created, 1);
  /* same attributes: not created again; tags given now are ignored */
  created = -1;
  CHECK_OK(gbx_queue_create(f->c, "jobs", &a, t2, 1, &created, &e));
  assert_int_equal(created, 0);
  /* one attribute different */
  gbx_queue_attrs_t b = a;
  b.visibility_timeout = 61;
  CHECK_ERR(GBX_E_QUEUE_EXISTS, gbx_queue_create(f->c, "jobs", &b, NULL, 0, &created, &e));
  /* omitted attributes count as their defaults, which differ here */
  CHECK_ERR(GBX_E_QUEUE_EXISTS, gbx_queue_create(f->c, "jobs", NULL, NULL, 0, &created, &e));
  gbx_queue_attrs_t only_vis = {.set = GBX_QA_VISIBILITY, .visibility_timeout = 60};
  CHECK_ERR(GBX_E_QUEUE_EXISTS, gbx_queue_create(f->c, "jobs", &only_vis, NULL, 0, NULL, &e));

  /* the queue kept its first attributes and tags */
  gbx_queue_info_t info;
  get_info(f->c, "jobs", &info);
  assert_int_equal(info.attrs.visibility_timeout, 60);
  assert_int_equal(info.attrs.delay_seconds, 5);
  assert_int_equal(info.ntags, 1);
  assert_string_equal(find_tag(&info, "team"), "blue");
  assert_null(find_tag(&info, "owner"));
  gbx_queue_info_free(&info);

  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(f->c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  gbx_queue_list_free(&l);
  tu_assert_alive(f->ts);
}

/* One numeric attribute, its wire name and its documented range. */
typedef struct range {
  unsigned flag;
  const char *name;
  uint32_t lo, hi;
} range_t;

static const range_t ranges[] = {
    {GBX_QA_VISIBILITY, "VisibilityTimeout", 0, 43200},
    {GBX_QA_DELAY, "DelaySeconds", 0, 900},
    {GBX_QA_RETENTION, "MessageRetentionPeriod", 60, 1209600},
    {GBX_QA_MAX_SIZE, "MaximumMessageSize", 1024, 1048576},
    {GBX_QA_WAIT, "ReceiveMessageWaitTimeSeconds", 0, 20},
    {GBX_QA_MAX_RECEIVES, "MaxReceiveCount", 1, 1000},
};

static gbx_queue_attrs_t one_attr(unsigned flag, uint32_t v) {
  gbx_queue_attrs_t a = {.set = flag};
  switch (flag) {
  case GBX_QA_VISIBILITY:
    a.visibility_timeout = v;
    break;
  case GBX_QA_DELAY:
    a.delay_seconds = v;
    break;
  case GBX_QA_RETENTION:
    a.retention_period = v;
    break;
  case GBX_QA_MAX_SIZE:
    a.max_message_size = v;
    break;
  case GBX_QA_WAIT:
    a.receive_wait = v;
    break;
  case GBX_QA_MAX_RECEIVES:
    a.max_receive_count = v;
    break;
  default:
    fail_msg("no such numeric attribute flag %u", flag);
  }
  return a;
}

static uint32_t attr_value(const gbx_queue_info_t *info, unsigned flag) {
  switch (flag) {
  case GBX_QA_VISIBILITY:
    return info->attrs.visibility_timeout;
  case GBX_QA_DELAY:
    return info->attrs.delay_seconds;
  case GBX_QA_RETENTION:
    return info->attrs.retention_period;
  case GBX_QA_MAX_SIZE:
    return info->attrs.max_message_size;
  case GBX_QA_WAIT:
    return info->attrs.receive_wait;
  case GBX_QA_MAX_RECEIVES:
    return info->attrs.max_receive_count;
  }
  fail_msg("no such numeric attribute flag %u", flag);
  return 0;
}

static void test_attribute_ranges(void **state) {
  tu_fx_t *f = *state;
  for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
    const range_t *r = &ranges[i];
    char q[32];
    snprintf(q, sizeof q, "range-%zu", i);
    /* both ends of the range are accepted, on create and on set */
    gbx_queue_attrs_t a = one_attr(r->flag, r->lo);
    CHECK_OK(gbx_queue_create(f->c, q, &a, NULL, 0, NULL, &e));
    gbx_queue_info_t info;
    get_info(f->c, q, &info);
    assert_int_equal(attr_value(&info, r->flag), r->lo);
    gbx_queue_info_free(&info);
    a = one_attr(r->flag, r->hi);
    CHECK_OK(gbx_queue_set_attrs(f->c, q, &a, &e));
    /* one past either end is out_of_range, the message names the attribute */
    a = one_attr(r->flag, r->hi + 1);
    CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_set_attrs(f->c, q, &a, &e));
    if (!strstr(e.message, r->name))
      fail_msg("message '%s' does not name %s", e.message, r->name);
    CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_create(f->c, "never", &a, NULL, 0, NULL, &e));
    if (r->lo > 0) {
      a = one_attr(r->flag, r->lo - 1);
      CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_set_attrs(f->c, q, &a, &e));
      CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_create(f->c, "never", &a, NULL, 0, NULL, &e));
    }
    /* a refused set changed nothing */
    get_info(f->c, q, &info);
    assert_int_equal(attr_value(&info, r->flag), r->hi);
    gbx_queue_info_free(&info);
  }
  /* a refused create made no queue */
  gbx_queue_info_t info;
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_get_attrs(f->c, "never", &info, &e));

  /* policies: at most 20 KiB, stored verbatim */
  size_t cap = 20 * 1024 + 2;
  char *pol = malloc(cap);
  assert_non_null(pol);
  memset(pol, 'x', cap);
  memcpy(pol, "{\"a\":\"", 6);
  memcpy(pol + 20 * 1024 - 2, "\"}", 2);
  pol[20 * 1024] = 0; /* exactly 20480 bytes of JSON */
  gbx_queue_attrs_t p = {.set = GBX_QA_POLICY | GBX_QA_REDRIVE_ALLOW,
                         .policy = pol,
                         .redrive_allow_policy = "{\"redrivePermission\":\"allowAll\"}"};
  CHECK_OK(gbx_queue_set_attrs(f->c, "range-0", &p, &e));
  get_info(f->c, "range-0", &info);
  assert_string_equal(info.attrs.policy, pol);
  assert_string_equal(info.attrs.redrive_allow_policy, "{\"redrivePermission\":\"allowAll\"}");
  gbx_queue_info_free(&info);
  memcpy(pol + 20 * 1024 - 2, "x\"}", 4); /* 20481 bytes */
  p.set = GBX_QA_POLICY;
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_set_attrs(f->c, "range-0", &p, &e));
  p.set = GBX_QA_REDRIVE_ALLOW;
  p.redrive_allow_policy = pol;
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_set_attrs(f->c, "range-0", &p, &e));
  free(pol);
  tu_assert_alive(f->ts);
}

static void test_unknown_and_mistyped_attribute(void **state) {
  tu_fx_t *f = *state;
  char msg[256];
  tu_raw_t r;
  msgpack_packer *pk = raw_attrs(&r, GBX_OP_QUEUE_CREATE, 1, 1);
  gbx_pack_kv_u64(pk, "FifoQueue", 1);
  assert_int_equal(raw_call(f->ts, &r, msg, sizeof msg), GBX_E_UNKNOWN_ATTRIBUTE);
  assert_non_null(strstr(msg, "FifoQueue"));

  CHECK_OK(gbx_queue_create(f->c, "strange", NULL, NULL, 0, NULL, &e));
  pk = raw_attrs(&r, GBX_OP_QUEUE_SET_ATTRS, 2, 2);
  gbx_pack_kv_u64(pk, "VisibilityTimeout", 99);
  gbx_pack_kv_cstr(pk, "visibilitytimeout", "5"); /* names are case-sensitive */
  assert_int_equal(raw_call(f->ts, &r, msg, sizeof msg), GBX_E_UNKNOWN_ATTRIBUTE);

  /* a number given as a string */
  pk = raw_attrs(&r, GBX_OP_QUEUE_SET_ATTRS, 3, 1);
  gbx_pack_kv_cstr(pk, "VisibilityTimeout", "99");
  assert_int_equal(raw_call(f->ts, &r, msg, sizeof msg), GBX_E_BAD_TYPE);

  /* a negative number is out of range */
  pk = raw_attrs(&r, GBX_OP_QUEUE_SET_ATTRS, 4, 1);
  gbx_pack_kv_i64(pk, "DelaySeconds", -1);
  assert_int_equal(raw_call(f->ts, &r, msg, sizeof msg), GBX_E_OUT_OF_RANGE);

  /* nothing of the refused requests stuck */
  gbx_queue_info_t info;
  get_info(f->c, "strange", &info);
  assert_int_equal(info.attrs.visibility_timeout, 30);
  assert_int_equal(info.attrs.delay_seconds, 0);
  assert_null(tu_find_attr(&info, "FifoQueue"));
  gbx_queue_info_free(&info);
  tu_assert_alive(f->ts);
}

static void test_queue_names(void **state) {
  tu_fx_t *f = *state;
  char name[100];
  memset(name, 'n', sizeof name);
  name[80] = 0;
  int created = 0;
  CHECK_OK(gbx_queue_create(f->c, name, NULL, NULL, 0, &created, &e));
  assert_int_equal(created, 1);
  name[80] = 'n';
  name[81] = 0;
  CHECK_ERR(GBX_E_BAD_NAME, gbx_queue_create(f->c, name, NULL, NULL, 0, NULL, &e));
  static const char *const bad[] = {"a.b", "with space", "slash/name", "star*", "caf\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_ERR(GBX_E_BAD_NAME, gbx_queue_create(f->c, bad[i], NULL, NULL, 0, NULL, &e));
    gbx_queue_info_t info;
    CHECK_ERR(GBX_E_BAD_NAME, gbx_queue_get_attrs(f->c, bad[i], &info, &e));
    CHECK_ERR(GBX_E_BAD_NAME, gbx_queue_send(f->c, bad[i], "x", 1, NULL, 0, -1, NULL, &e));
  }
  /* every legal character */
  CHECK_OK(gbx_queue_create(f->c, "AZaz09_-", NULL, NULL, 0, &created, &e));
  /* a dead-letter queue name is checked too */
  gbx_queue_attrs_t a = {.set = GBX_QA_DLQ, .dead_letter_queue = "a.b"};
  CHECK_ERR(GBX_E_BAD_NAME, gbx_queue_set_attrs(f->c, "AZaz09_-", &a, &e));

  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(f->c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 2);
  assert_string_equal(l.names[0], "AZaz09_-");
  assert_int_equal(strlen(l.names[1]), 80);
  gbx_queue_list_free(&l);
  tu_assert_alive(f->ts);
}

/* An empty name and one far over the limit are bad names like any other
 * (PROTOCOL.md: names are 1-80 characters, else bad_name), on every op. */
static void test_queue_name_empty_or_huge(void **state) {
  tu_fx_t *f = *state;
  char *huge = malloc(2001);
  assert_non_null(huge);
  memset(huge, 'h', 2000);
  huge[2000] = 0;
  const char *const bad[] = {"", huge};
  CHECK_OK(gbx_queue_create(f->c, "real", NULL, NULL, 0, NULL, &e));
  for (size_t i = 0; i < 2; i++) {
    gbx_queue_info_t info;
    CHECK_ERR(GBX_E_BAD_NAME, gbx_queue_create(f->c, bad[i], NULL, NULL, 0, NULL, &e));
    CHECK_ERR(GBX_E_BAD_NAME, gbx_queue_get_attrs(f->c, bad[i], &info, &e));
    CHECK_ERR(GBX_E_BAD_NAME, gbx_queue_send(f->c, bad[i], "x", 1, NULL, 0, -1, NULL, &e));
    gbx_queue_attrs_t a = {.set = GBX_QA_DLQ, .dead_letter_queue = bad[i]};
    if (bad[i][0]) /* "" is how a DLQ is cleared */
      CHECK_ERR(GBX_E_BAD_NAME, gbx_queue_set_attrs(f->c, "real", &a, &e));
  }
  free(huge);
  tu_assert_alive(f->ts);
}

/* ---- list ------------------------------------------------------------------ */

static void test_list_prefix_and_paging(void **state) {
  tu_fx_t *f = *state;
  char q[32];
  /* created out of order: the list comes back sorted */
  for (int i = 24; i >= 0; i--) {
    snprintf(q, sizeof q, "app-%02d", i);
    CHECK_OK(gbx_queue_create(f->c, q, NULL, NULL, 0, NULL, &e));
  }
  CHECK_OK(gbx_queue_create(f->c, "b-2", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_create(f->c, "ap", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_create(f->c, "b-1", NULL, NULL, 0, NULL, &e));

  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(f->c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 28);
  assert_null(l.next);
  for (size_t i = 1; i < l.count; i++)
    assert_true(strcmp(l.names[i - 1], l.names[i]) < 0);
  gbx_queue_list_free(&l);

  /* pages of 10 of the "app-" queues, following next to the end */
  int seen = 0, pages = 0;
  char next[GBX_MAX_NAME + 1] = "";
  do {
    CHECK_OK(gbx_queue_list(f->c, "app-", 10, pages ? next : NULL, &l, &e));
    pages++;
    assert_true(l.count <= 10);
    for (size_t i = 0; i < l.count; i++) {
      snprintf(q, sizeof q, "app-%02d", seen++);
      assert_string_equal(l.names[i], q);
    }
    if (l.next) {
      assert_int_equal(l.count, 10);
      snprintf(next, sizeof next, "%s", l.next);
    }
    int more = l.next != NULL;
    gbx_queue_list_free(&l);
    if (!more)
      break;
  } while (pages < 10);
  assert_int_equal(seen, 25);
  assert_int_equal(pages, 3);

  /* a prefix matching nothing, and one matching exactly one queue */
  CHECK_OK(gbx_queue_list(f->c, "zzz", 0, NULL, &l, &e));
  assert_int_equal(l.count, 0);
  assert_null(l.next);
  gbx_queue_list_free(&l);
  CHECK_OK(gbx_queue_list(f->c, "b-", 1, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.names[0], "b-1");
  assert_non_null(l.next);
  snprintf(next, sizeof next, "%s", l.next);
  gbx_queue_list_free(&l);
  CHECK_OK(gbx_queue_list(f->c, "b-", 1, next, &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.names[0], "b-2");
  gbx_queue_list_free(&l);

  /* max outside 1-1000 */
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_list(f->c, NULL, 1001, NULL, &l, &e));
  tu_raw_t r;
  msgpack_packer *pk = tu_raw_request(&r, GBX_OP_QUEUE_LIST, 9, 1);
  gbx_pack_kv_u64(pk, "max", 0);
  assert_int_equal(raw_call(f->ts, &r, NULL, 0), GBX_E_OUT_OF_RANGE);
  tu_assert_alive(f->ts);
}

/* ---- attributes and counters -------------------------------------------------- */

static void test_set_and_get_attrs(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "dead", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_create(f->c, "work", NULL, NULL, 0, NULL, &e));
  gbx_queue_attrs_t a = {.set = GBX_QA_VISIBILITY | GBX_QA_DELAY | GBX_QA_RETENTION |
                                GBX_QA_MAX_SIZE | GBX_QA_WAIT | GBX_QA_DLQ | GBX_QA_MAX_RECEIVES |
                                GBX_QA_POLICY | GBX_QA_REDRIVE_ALLOW,
                         .visibility_timeout = 45,
                         .delay_seconds = 3,
                         .retention_period = 86400,
                         .max_message_size = 2048,
                         .receive_wait = 7,
                         .dead_letter_queue = "dead",
                         .max_receive_count = 4,
                         .policy = "{\"Version\":\"2012-10-17\",\"Statement\":[]}",
                         .redrive_allow_policy = "{\"redrivePermission\":\"denyAll\"}"};
  CHECK_OK(gbx_queue_set_attrs(f->c, "work", &a, &e));
  gbx_queue_info_t info;
  get_info(f->c, "work", &info);
  assert_int_equal(info.attrs.visibility_timeout, 45);
  assert_int_equal(info.attrs.delay_seconds, 3);
  assert_int_equal(info.attrs.retention_period, 86400);
  assert_int_equal(info.attrs.max_message_size, 2048);
  assert_int_equal(info.attrs.receive_wait, 7);
  assert_string_equal(info.attrs.dead_letter_queue, "dead");
  assert_int_equal(info.attrs.max_receive_count, 4);
  assert_string_equal(info.attrs.policy, a.policy);
  assert_string_equal(info.attrs.redrive_allow_policy, a.redrive_allow_policy);
  assert_true(info.modified_s >= info.created_s);
  gbx_queue_info_free(&info);

  /* setting one attribute leaves the others alone; "" clears the DLQ */
  gbx_queue_attrs_t b = {
      .set = GBX_QA_DLQ | GBX_QA_DELAY, .dead_letter_queue = "", .delay_seconds = 0};
  CHECK_OK(gbx_queue_set_attrs(f->c, "work", &b, &e));
  get_info(f->c, "work", &info);
  assert_string_equal(info.attrs.dead_letter_queue, "");
  assert_int_equal(info.attrs.delay_seconds, 0);
  assert_int_equal(info.attrs.visibility_timeout, 45);
  assert_int_equal(info.attrs.max_receive_count, 4);
  gbx_queue_info_free(&info);

  /* counters: 3 visible, 1 in flight, 2 delayed, bytes = bodies + attributes */
  gbx_msg_attr_t at = {"k", "String", "vv", 2}; /* 1 + 6 + 2 = 9 bytes */
  for (int i = 0; i < 4; i++)
    CHECK_OK(gbx_queue_send(f->c, "work", "0123456789", 10, &at, 1, -1, NULL, &e));
  CHECK_OK(gbx_queue_send(f->c, "work", "delayed", 7, NULL, 0, 60, NULL, &e));
  CHECK_OK(gbx_queue_send(f->c, "work", "delayed", 7, NULL, 0, 900, NULL, &e));
  gbx_message_t *m;
  size_t n;
  CHECK_OK(gbx_queue_receive(f->c, "work", 1, 600, 0, &m, &n, &e));
  assert_int_equal(n, 1);
  gbx_messages_free(m);
  get_info(f->c, "work", &info);
  assert_int_equal(info.visible, 3);
  assert_int_equal(info.not_visible, 1);
  assert_int_equal(info.delayed, 2);
  assert_int_equal(info.bytes, 4 * 19 + 2 * 7);
  assert_true(info.oldest_age_s < 60);
  assert_int_equal(tu_find_attr(&info, "ApproximateNumberOfMessages")->num, 3);
  assert_int_equal(tu_find_attr(&info, "QueueBytes")->num, 4 * 19 + 2 * 7);
  gbx_queue_info_free(&info);

  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_get_attrs(f->c, "nope", &info, &e));
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_set_attrs(f->c, "nope", &b, &e));
  tu_assert_alive(f->ts);
}

/* ---- tags -------------------------------------------------------------------- */

static void test_tags(void **state) {
  tu_fx_t *f = *state;
  gbx_tag_t t0[] = {{"env", "prod"}, {"team", "core"}};
  CHECK_OK(gbx_queue_create(f->c, "tagged", NULL, t0, 2, NULL, &e));
  gbx_tag_t t1[] = {{"team", "edge"}, {"cost-center", "42"}, {"empty", ""}};
  CHECK_OK(gbx_queue_tag(f->c, "tagged", t1, 3, &e));
  gbx_queue_info_t info;
  get_info(f->c, "tagged", &info);
  assert_int_equal(info.ntags, 4);
  assert_string_equal(find_tag(&info, "env"), "prod");
  assert_string_equal(find_tag(&info, "team"), "edge");
  assert_string_equal(find_tag(&info, "cost-center"), "42");
  assert_string_equal(find_tag(&info, "empty"), "");
  gbx_queue_info_free(&info);

  const char *keys[] = {"env", "not-there"};
  CHECK_OK(gbx_queue_untag(f->c, "tagged", keys, 2, &e));
  get_info(f->c, "tagged", &info);
  assert_int_equal(info.ntags, 3);
  assert_null(find_tag(&info, "env"));
  assert_string_equal(find_tag(&info, "team"), "edge");
  gbx_queue_info_free(&info);

  /* at most 50 tags on a queue: filling up is fine, one more is refused */
  gbx_tag_t many[47];
  char kbuf[47][16];
  for (int i = 0; i < 47; i++) {
    snprintf(kbuf[i], sizeof kbuf[i], "k%02d", i);
    many[i] = (gbx_tag_t){kbuf[i], "v"};
  }
  CHECK_OK(gbx_queue_tag(f->c, "tagged", many, 47, &e));
  gbx_tag_t extra[] = {{"one-too-many", "x"}};
  CHECK_ERR(GBX_E_TOO_MANY_ENTRIES, gbx_queue_tag(f->c, "tagged", extra, 1, &e));
  gbx_tag_t replace[] = {{"team", "replaced"}};
  CHECK_OK(gbx_queue_tag(f->c, "tagged", replace, 1, &e));
  get_info(f->c, "tagged", &info);
  assert_int_equal(info.ntags, 50);
  assert_null(find_tag(&info, "one-too-many"));
  assert_string_equal(find_tag(&info, "team"), "replaced");
  gbx_queue_info_free(&info);

  /* a key of 129 characters is refused */
  char longkey[130];
  memset(longkey, 'k', 129);
  longkey[129] = 0;
  gbx_tag_t lk[] = {{longkey, "v"}};
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_queue_tag(f->c, "tagged", lk, 1, &e));

  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_tag(f->c, "nope", t0, 1, &e));
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_untag(f->c, "nope", keys, 1, &e));
  tu_assert_alive(f->ts);
}

/* ---- dead-letter queues ---------------------------------------------------------- */

static void set_dlq(gbx_client_t *c, const char *q, const char *dlq, int want) {
  gbx_queue_attrs_t a = {.set = GBX_QA_DLQ, .dead_letter_queue = dlq};
  CHECK_ERR(want, gbx_queue_set_attrs(c, q, &a, &e));
}

static void test_dlq_sources(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "dlq", NULL, NULL, 0, NULL, &e));
  gbx_queue_attrs_t a = {
      .set = GBX_QA_DLQ | GBX_QA_MAX_RECEIVES, .dead_letter_queue = "dlq", .max_receive_count = 3};
  CHECK_OK(gbx_queue_create(f->c, "src-b", &a, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_create(f->c, "other", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_create(f->c, "src-a", NULL, NULL, 0, NULL, &e));
  set_dlq(f->c, "src-a", "dlq", GBX_E_OK);

  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_dlq_sources(f->c, "dlq", &l, &e));
  assert_int_equal(l.count, 2);
  assert_string_equal(l.names[0], "src-a");
  assert_string_equal(l.names[1], "src-b");
  gbx_queue_list_free(&l);
  CHECK_OK(gbx_queue_dlq_sources(f->c, "other", &l, &e));
  assert_int_equal(l.count, 0);
  gbx_queue_list_free(&l);

  /* a source that drops its DLQ leaves the list */
  set_dlq(f->c, "src-b", "", GBX_E_OK);
  CHECK_OK(gbx_queue_dlq_sources(f->c, "dlq", &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.names[0], "src-a");
  gbx_queue_list_free(&l);

  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_dlq_sources(f->c, "nope", &l, &e));
  tu_assert_alive(f->ts);
}

static void test_redrive_cycle_and_missing_dlq(void **state) {
  tu_fx_t *f = *state;
  /* a DLQ that does not exist */
  gbx_queue_attrs_t a = {.set = GBX_QA_DLQ, .dead_letter_queue = "ghost"};
  CHECK_ERR(GBX_E_DLQ_NOT_FOUND, gbx_queue_create(f->c, "a", &a, NULL, 0, NULL, &e));
  gbx_queue_info_t info;
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_get_attrs(f->c, "a", &info, &e));
  CHECK_OK(gbx_queue_create(f->c, "a", NULL, NULL, 0, NULL, &e));
  set_dlq(f->c, "a", "ghost", GBX_E_DLQ_NOT_FOUND);

  /* a -> b -> c; then c -> a, b -> a and a -> a would each close a loop */
  CHECK_OK(gbx_queue_create(f->c, "b", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_create(f->c, "c", NULL, NULL, 0, NULL, &e));
  set_dlq(f->c, "a", "b", GBX_E_OK);
  set_dlq(f->c, "b", "c", GBX_E_OK);
  set_dlq(f->c, "c", "a", GBX_E_REDRIVE_CYCLE);
  set_dlq(f->c, "b", "a", GBX_E_REDRIVE_CYCLE);
  set_dlq(f->c, "a", "a", GBX_E_REDRIVE_CYCLE);
  CHECK_OK(gbx_queue_create(f->c, "d", NULL, NULL, 0, NULL, &e));
  set_dlq(f->c, "c", "d", GBX_E_OK);
  /* a new queue naming itself as its DLQ: that queue does not exist yet */
  a.dead_letter_queue = "e";
  CHECK_ERR(GBX_E_DLQ_NOT_FOUND, gbx_queue_create(f->c, "e", &a, NULL, 0, NULL, &e));

  /* the refused changes changed nothing */
  get_info(f->c, "c", &info);
  assert_string_equal(info.attrs.dead_letter_queue, "d");
  gbx_queue_info_free(&info);
  get_info(f->c, "b", &info);
  assert_string_equal(info.attrs.dead_letter_queue, "c");
  gbx_queue_info_free(&info);
  get_info(f->c, "a", &info);
  assert_string_equal(info.attrs.dead_letter_queue, "b");
  gbx_queue_info_free(&info);

  /* breaking the chain makes the former cycle legal */
  set_dlq(f->c, "b", "", GBX_E_OK);
  set_dlq(f->c, "c", "a", GBX_E_OK);
  tu_assert_alive(f->ts);
}

/* ---- purge and delete ---------------------------------------------------------- */

static void test_purge(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "p", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_create(f->c, "keep", NULL, NULL, 0, NULL, &e));
  for (int i = 0; i < 5; i++)
    CHECK_OK(gbx_queue_send(f->c, "p", "m", 1, NULL, 0, -1, NULL, &e));
  CHECK_OK(gbx_queue_send(f->c, "p", "late", 4, NULL, 0, 600, NULL, &e));
  CHECK_OK(gbx_queue_send(f->c, "keep", "k", 1, NULL, 0, -1, NULL, &e));
  gbx_message_t *m;
  size_t n;
  CHECK_OK(gbx_queue_receive(f->c, "p", 2, 600, 0, &m, &n, &e));
  assert_int_equal(n, 2);

  uint64_t purged = 0;
  CHECK_OK(gbx_queue_purge(f->c, "p", &purged, &e));
  assert_int_equal(purged, 6); /* visible, in flight and delayed alike */
  gbx_queue_info_t info;
  get_info(f->c, "p", &info);
  assert_int_equal(info.visible + info.not_visible + info.delayed, 0);
  assert_int_equal(info.bytes, 0);
  gbx_queue_info_free(&info);
  gbx_message_t *m2;
  CHECK_OK(gbx_queue_receive(f->c, "p", 10, 0, 0, &m2, &n, &e));
  assert_int_equal(n, 0);
  /* deleting a purged message with its latest receipt is a harmless no-op */
  CHECK_OK(gbx_message_delete(f->c, "p", m[0].receipt, &e));
  gbx_messages_free(m);
  get_info(f->c, "p", &info);
  assert_int_equal(info.visible + info.not_visible + info.delayed, 0);
  gbx_queue_info_free(&info);
  /* the queue itself and its neighbours are untouched */
  CHECK_OK(gbx_queue_send(f->c, "p", "again", 5, NULL, 0, -1, NULL, &e));
  get_info(f->c, "keep", &info);
  assert_int_equal(info.visible, 1);
  gbx_queue_info_free(&info);
  purged = 99;
  CHECK_OK(gbx_queue_purge(f->c, "keep", &purged, &e));
  assert_int_equal(purged, 1);
  CHECK_OK(gbx_queue_purge(f->c, "keep", &purged, &e));
  assert_int_equal(purged, 0);
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_purge(f->c, "nope", &purged, &e));
  tu_assert_alive(f->ts);
}

static void test_delete(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "doomed", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_create(f->c, "stays", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_send(f->c, "doomed", "old", 3, NULL, 0, -1, NULL, &e));
  gbx_message_t *m;
  size_t n;
  CHECK_OK(gbx_queue_receive(f->c, "doomed", 1, 600, 0, &m, &n, &e));
  assert_int_equal(n, 1);
  CHECK_OK(gbx_queue_send(f->c, "doomed", "old2", 4, NULL, 0, -1, NULL, &e));
  CHECK_OK(gbx_queue_delete(f->c, "doomed", &e));

  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(f->c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.names[0], "stays");
  gbx_queue_list_free(&l);
  gbx_queue_info_t info;
  gbx_message_t *m2;
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_get_attrs(f->c, "doomed", &info, &e));
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_send(f->c, "doomed", "x", 1, NULL, 0, -1, NULL, &e));
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_receive(f->c, "doomed", 1, -1, 0, &m2, &n, &e));
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_message_delete(f->c, "doomed", m[0].receipt, &e));
  CHECK_ERR(GBX_E_QUEUE_NOT_FOUND, gbx_queue_delete(f->c, "doomed", &e));

  /* a new queue of the same name starts empty */
  CHECK_OK(gbx_queue_create(f->c, "doomed", NULL, NULL, 0, NULL, &e));
  get_info(f->c, "doomed", &info);
  assert_int_equal(info.visible + info.not_visible + info.delayed, 0);
  gbx_queue_info_free(&info);
  CHECK_OK(gbx_queue_receive(f->c, "doomed", 10, 0, 0, &m2, &n, &e));
  assert_int_equal(n, 0);
  gbx_messages_free(m);
  tu_assert_alive(f->ts);
}

static void test_delete_dlq_in_use(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "dlq", NULL, NULL, 0, NULL, &e));
  gbx_queue_attrs_t a = {
      .set = GBX_QA_DLQ | GBX_QA_MAX_RECEIVES, .dead_letter_queue = "dlq", .max_receive_count = 1};
  CHECK_OK(gbx_queue_create(f->c, "src", &a, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_send(f->c, "src", "body", 4, NULL, 0, -1, NULL, &e));
  /* the DLQ of another queue can be deleted (as SQS) */
  CHECK_OK(gbx_queue_delete(f->c, "dlq", &e));
  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(f->c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  gbx_queue_list_free(&l);
  /* receives past MaxReceiveCount then keep delivering instead of dead-lettering */
  gbx_message_t *m;
  size_t n;
  for (uint64_t want = 1; want <= 3; want++) {
    CHECK_OK(gbx_queue_receive(f->c, "src", 1, 0, 0, &m, &n, &e));
    assert_int_equal(n, 1);
    assert_int_equal(m[0].receive_count, want);
    gbx_messages_free(m);
  }
  /* once the DLQ exists again, the next receive dead-letters the message */
  CHECK_OK(gbx_queue_create(f->c, "dlq", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_receive(f->c, "src", 1, 0, 0, &m, &n, &e));
  assert_int_equal(n, 0);
  CHECK_OK(gbx_queue_receive(f->c, "dlq", 1, 600, 0, &m, &n, &e));
  assert_int_equal(n, 1);
  assert_memory_equal(m[0].body, "body", 4);
  assert_non_null(m[0].source_queue);
  assert_string_equal(m[0].source_queue, "src");
  gbx_messages_free(m);
  tu_assert_alive(f->ts);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup, tu_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_create_defaults),
      T(test_create_idempotent_and_conflict),
      T(test_attribute_ranges),
      T(test_unknown_and_mistyped_attribute),
      T(test_queue_names),
      T(test_queue_name_empty_or_huge),
      T(test_list_prefix_and_paging),
      T(test_set_and_get_attrs),
      T(test_tags),
      T(test_dlq_sources),
      T(test_redrive_cycle_and_missing_dlq),
      T(test_purge),
      T(test_delete),
      T(test_delete_dlq_in_use),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
