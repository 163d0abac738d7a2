/* test_topics.c - integration tests of topics against the real gearboxd,
 * through libgearbox (and, at the end, the gearbox CLI): topic lifecycle,
 * subscriptions (idempotent subscribe, subscription_exists, lists, attributes),
 * fan-out (one copy per queue, each with its own id; raw copies verbatim;
 * other copies an SNS JSON envelope, checked field by field with cJSON),
 * filter policies on attributes and on JSON bodies (a table of cases per
 * operator, each publish's `delivered` count and the queue's contents
 * checked), invalid policies, queue and topic deletion, publish batches,
 * pipelined publishes, size limits, and restarts (clean and kill -9).
 * Each test starts its own server.
 *
 * Links cJSON (the envelope is JSON) besides the harness and libgearbox. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "gbx_codec.h"
#include "testutil.h"

/* Slack allowed between the test's wall clock and the server's stamps:
 * the same machine, but each side rounds to its own unit. */
#define CLOCK_SLACK_MS 2000
/* The server's publish size limit (SNS's): body plus attributes. */
#define PUBLISH_MAX (256 * 1024)
/* The large-publish test: a 64 KiB body to this many queues. */
#define LARGE_BODY   (64 * 1024)
#define LARGE_QUEUES 5
/* Subscriptions for the paging test: more than one sub_list page (100). */
#define MANY_SUBS 120
/* Pipelined publishes in flight at once. */
#define PIPELINED 200
/* Receives take at most this many messages (the protocol's maximum). */
#define RECV_MAX 100
/* The kill -9 stream test: publishes numbered 0..STREAM_MAX-1 (more than
 * can be made before the kill), STREAM_WINDOW in flight at once, and the
 * kill once STREAM_KILL_AFTER are acknowledged: enough that the crash lands
 * amid a full window of publishes, in any commit batch. */
#define STREAM_MAX        20000
#define STREAM_WINDOW     32
#define STREAM_KILL_AFTER 300
/* How long the stream may take to reach STREAM_KILL_AFTER acknowledgements. */
#define STREAM_DEADLINE_MS 30000

static gbx_error_t e; /* the last call's error, for failure messages */

/* ---- helpers ------------------------------------------------------------------------ */

static void mk_topic(gbx_client_t *c, const char *t) {
  CHECK_OK(gbx_topic_create(c, t, NULL, NULL, 0, NULL, &e));
}

/* Subscribes q to t with the given settings; returns the id (gbx_free). */
static char *sub(gbx_client_t *c, const char *t, const char *q, const char *policy, int scope,
                 int raw) {
  gbx_sub_attrs_t a = {0};
  char *id = NULL;
  if (policy) {
    a.set |= GBX_SA_FILTER_POLICY | GBX_SA_FILTER_SCOPE;
    a.filter_policy = policy;
    a.filter_scope = scope;
  }
  if (raw) {
    a.set |= GBX_SA_RAW;
    a.raw = 1;
  }
  CHECK_OK(gbx_subscribe(c, t, q, &a, &id, &e));
  assert_non_null(id);
  return id;
}

/* Message attributes written "name=Type:value;name=Type:value" (values
 * without ';'), parsed into a caller-provided set. */
typedef struct attrset {
  gbx_msg_attr_t a[GBX_MAX_ATTRS];
  char buf[1024];
  size_t n;
} attrset_t;

static void attrs_parse(const char *spec, attrset_t *as) {
  as->n = 0;
  if (!spec || !*spec)
    return;
  assert_true(strlen(spec) < sizeof as->buf);
  strcpy(as->buf, spec);
  for (char *save = NULL, *tok = strtok_r(as->buf, ";", &save); tok;
       tok = strtok_r(NULL, ";", &save)) {
    char *eq = strchr(tok, '='), *colon = eq ? strchr(eq, ':') : NULL;
    assert_non_null(colon);
    assert_true(as->n < GBX_MAX_ATTRS);
    *eq = *colon = '\0';
    as->a[as->n++] = (gbx_msg_attr_t){tok, eq + 1, colon + 1, strlen(colon + 1)};
  }
}

/* Publishes a text body; returns how many queues got a copy. */
static uint32_t pub(gbx_client_t *c, const char *t, const char *body, const char *attrs,
                    const char *subject, char *mid) {
  attrset_t as;
  uint32_t delivered = UINT32_MAX;
  char tmp[GBX_MID_BUFSZ];
  attrs_parse(attrs, &as);
  CHECK_OK(
      gbx_publish(c, t, body, strlen(body), as.a, as.n, subject, mid ? mid : tmp, &delivered, &e));
  assert_true(delivered != UINT32_MAX);
  return delivered;
}

/* Receives everything visible on q (up to RECV_MAX); *n gets the count. */
static gbx_message_t *recv_all(gbx_client_t *c, const char *q, size_t *n) {
  gbx_message_t *m = NULL;
  CHECK_OK(gbx_queue_receive(c, q, RECV_MAX, 300, 0, &m, n, &e));
  return m;
}

/* Receives and returns exactly want messages from q (fails otherwise). */
static gbx_message_t *recv_n(gbx_client_t *c, const char *q, size_t want) {
  return tu_recv_n(c, q, RECV_MAX, 300, want);
}

/* Number of messages (visible + in flight) on q. */
static uint64_t depth(gbx_client_t *c, const char *q) {
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, q, &info, &e));
  uint64_t d = info.visible + info.not_visible + info.delayed;
  gbx_queue_info_free(&info);
  return d;
}

static void b64(const uint8_t *p, size_t n, char *out) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    out[o++] = tab[v >> 18 & 63];
    out[o++] = tab[v >> 12 & 63];
    out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? tab[v & 63] : '=';
  }
  out[o] = '\0';
}

/* ---- the SNS envelope ------------------------------------------------------------------- */

static cJSON *envelope_parse(const gbx_message_t *m) {
  cJSON *j = cJSON_ParseWithLength((const char *)m->body, m->body_len);
  if (!j || !cJSON_IsObject(j))
    fail_msg("message %s: body is not a JSON object: %.*s", m->mid, (int)m->body_len,
             (const char *)m->body);
  return j;
}

static const char *jstr(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsString(v))
    fail_msg("envelope field '%s' is missing or not a string", key);
  return v->valuestring;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Parses "YYYY-MM-DDTHH:MM:SS.mmmZ" into epoch ms; fails on another form. */
static uint64_t iso_ms(const char *s) {
  struct tm tm = {0};
  int ms = -1, used = 0;
  if (strlen(s) != 24 ||
      sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec, &ms, &used) != 7 ||
      used != 24)
    fail_msg("Timestamp '%s' is not YYYY-MM-DDTHH:MM:SS.mmmZ", s);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (uint64_t)timegm(&tm) * 1000u + (uint64_t)ms;
}

/* Checks a non-raw copy: an SNS Notification envelope of the publish mid on
 * topic, with Message == body, Subject (NULL: absent) and, when attrs is
 * not NULL, exactly those attributes as {"Type","Value"}. The copy carries
 * no attributes of its own. Returns the envelope's Timestamp in ms. */
static uint64_t check_envelope(const gbx_message_t *m, const char *mid, const char *topic,
                               const char *body, const char *subject, const attrset_t *attrs) {
  char suffix[GBX_MAX_NAME + 2];
  cJSON *j = envelope_parse(m);
  if (m->nattrs != 0)
    fail_msg("enveloped copy %s carries %zu attributes of its own", m->mid, m->nattrs);
  assert_string_equal(jstr(j, "Type"), "Notification");
  assert_string_equal(jstr(j, "MessageId"), mid);
  snprintf(suffix, sizeof suffix, ":%s", topic);
  const char *arn = jstr(j, "TopicArn");
  if (!ends_with(arn, suffix) || strncmp(arn, "arn:", 4) != 0)
    fail_msg("TopicArn '%s' is not an ARN ending in '%s'", arn, suffix);
  assert_string_equal(jstr(j, "Message"), body);
  if (subject)
    assert_string_equal(jstr(j, "Subject"), subject);
  else if (cJSON_GetObjectItemCaseSensitive(j, "Subject"))
    fail_msg("envelope of a publish without subject has a Subject");
  uint64_t ts = iso_ms(jstr(j, "Timestamp"));
  jstr(j, "SignatureVersion");
  jstr(j, "Signature");
  jstr(j, "SigningCertURL");
  jstr(j, "UnsubscribeURL");
  const cJSON *ma = cJSON_GetObjectItemCaseSensitive(j, "MessageAttributes");
  if (attrs && attrs->n) {
    if (!cJSON_IsObject(ma) || (size_t)cJSON_GetArraySize(ma) != attrs->n)
      fail_msg("MessageAttributes has %d entries, want %zu", ma ? cJSON_GetArraySize(ma) : -1,
               attrs->n);
    for (size_t i = 0; i < attrs->n; i++) {
      const gbx_msg_attr_t *a = &attrs->a[i];
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(ma, a->name);
      if (!cJSON_IsObject(v))
        fail_msg("MessageAttributes lacks '%s'", a->name);
      assert_string_equal(jstr(v, "Type"), a->type);
      if (strncmp(a->type, "Binary", 6) == 0) {
        char enc[256];
        assert_true(a->value_len < 180);
        b64(a->value, a->value_len, enc);
        assert_string_equal(jstr(v, "Value"), enc);
      } else {
        assert_int_equal(strlen(jstr(v, "Value")), a->value_len);
        assert_memory_equal(jstr(v, "Value"), a->value, a->value_len);
      }
    }
  } else if (attrs && ma && cJSON_GetArraySize(ma) != 0) {
    fail_msg("MessageAttributes of a publish without attributes has %d entries",
             cJSON_GetArraySize(ma));
  }
  cJSON_Delete(j);
  return ts;
}

/* The Message of an enveloped copy, copied out (free). */
static char *envelope_message(const gbx_message_t *m) {
  cJSON *j = envelope_parse(m);
  char *s = strdup(jstr(j, "Message"));
  cJSON_Delete(j);
  assert_non_null(s);
  return s;
}

/* ---- topics ------------------------------------------------------------------------------ */

static void test_topic_create_idempotent_list_delete(void **state) {
  tu_fx_t *f = *state;
  gbx_topic_attrs_t ta = {GBX_TA_DISPLAY_NAME, "Order events", NULL};
  gbx_tag_t tags[1] = {{"team", "billing"}};
  gbx_topic_list_t l;
  gbx_topic_info_t info;
  int created = -1;

  uint64_t t0 = tu_wall_ms();
  CHECK_OK(gbx_topic_create(f->c, "orders", &ta, tags, 1, &created, &e));
  assert_int_equal(created, 1);
  CHECK_OK(gbx_topic_create(f->c, "orders", &ta, NULL, 0, &created, &e));
  assert_int_equal(created, 0);
  ta.display_name = "Something else";
  CHECK_ERR(GBX_E_TOPIC_EXISTS, gbx_topic_create(f->c, "orders", &ta, NULL, 0, &created, &e));
  CHECK_ERR(GBX_E_BAD_NAME, gbx_topic_create(f->c, "bad name", NULL, NULL, 0, NULL, &e));
  CHECK_ERR(GBX_E_BAD_NAME, gbx_topic_create(f->c, "", NULL, NULL, 0, NULL, &e));
  char longname[GBX_MAX_NAME + 2];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  CHECK_ERR(GBX_E_BAD_NAME, gbx_topic_create(f->c, longname, NULL, NULL, 0, NULL, &e));
  longname[GBX_MAX_NAME] = '\0'; /* exactly 80 is fine */
  CHECK_OK(gbx_topic_create(f->c, longname, NULL, NULL, 0, &created, &e));
  assert_int_equal(created, 1);
  char display[102];
  memset(display, 'd', sizeof display - 1);
  display[101] = '\0';
  ta.display_name = display;
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_topic_create(f->c, "toolong", &ta, NULL, 0, NULL, &e));

  CHECK_OK(gbx_topic_get_attrs(f->c, "orders", &info, &e));
  assert_string_equal(info.display_name, "Order events");
  assert_string_equal(info.policy, "");
  assert_int_equal(info.subscriptions, 0);
  if (info.created_s * 1000 + CLOCK_SLACK_MS < t0 ||
      info.created_s * 1000 > tu_wall_ms() + CLOCK_SLACK_MS)
    fail_msg("CreatedTimestamp %llu s is not now (%llu ms)", (unsigned long long)info.created_s,
             (unsigned long long)t0);
  assert_int_equal(info.ntags, 1);
  assert_string_equal(info.tags[0].key, "team");
  assert_string_equal(info.tags[0].value, "billing");
  gbx_topic_info_free(&info);

  /* Settable attributes change; the topic keeps them. */
  gbx_topic_attrs_t set = {GBX_TA_DISPLAY_NAME | GBX_TA_POLICY, "Orders",
                           "{\"Version\":\"2012-10-17\"}"};
  CHECK_OK(gbx_topic_set_attrs(f->c, "orders", &set, &e));
  CHECK_OK(gbx_topic_get_attrs(f->c, "orders", &info, &e));
  assert_string_equal(info.display_name, "Orders");
  assert_string_equal(info.policy, "{\"Version\":\"2012-10-17\"}");
  gbx_topic_info_free(&info);
  CHECK_ERR(GBX_E_TOPIC_NOT_FOUND, gbx_topic_set_attrs(f->c, "nope", &set, &e));

  /* Lists: sorted, by prefix, in pages. */
  mk_topic(f->c, "orders-eu");
  mk_topic(f->c, "orders-us");
  mk_topic(f->c, "audit");
  CHECK_OK(gbx_topic_list(f->c, "orders", 0, NULL, &l, &e));
  assert_int_equal(l.count, 3);
  assert_string_equal(l.names[0], "orders");
  assert_string_equal(l.names[1], "orders-eu");
  assert_string_equal(l.names[2], "orders-us");
  assert_null(l.next);
  gbx_queue_list_free(&l);
  CHECK_OK(gbx_topic_list(f->c, NULL, 2, NULL, &l, &e));
  assert_int_equal(l.count, 2);
  assert_string_equal(l.names[0], "audit");
  assert_non_null(l.next);
  char *next = strdup(l.next);
  gbx_queue_list_free(&l);
  CHECK_OK(gbx_topic_list(f->c, NULL, 2, next, &l, &e));
  free(next);
  assert_int_equal(l.count, 2);
  assert_string_equal(l.names[0], "orders");
  assert_string_equal(l.names[1], "orders-eu");
  next = l.next ? strdup(l.next) : NULL;
  gbx_queue_list_free(&l);
  assert_non_null(next);
  CHECK_OK(gbx_topic_list(f->c, NULL, 2, next, &l, &e));
  free(next);
  assert_int_equal(l.count, 1);
  assert_string_equal(l.names[0], "orders-us");
  assert_null(l.next);
  gbx_queue_list_free(&l);
  /* Topics are not queues. */
  gbx_queue_list_t ql;
  CHECK_OK(gbx_queue_list(f->c, NULL, 0, NULL, &ql, &e));
  assert_int_equal(ql.count, 0);
  gbx_queue_list_free(&ql);

  CHECK_OK(gbx_topic_delete(f->c, "orders", &e));
  CHECK_ERR(GBX_E_TOPIC_NOT_FOUND, gbx_topic_delete(f->c, "orders", &e));
  CHECK_ERR(GBX_E_TOPIC_NOT_FOUND, gbx_topic_get_attrs(f->c, "orders", &info, &e));
  CHECK_OK(gbx_topic_list(f->c, "orders", 0, NULL, &l, &e));
  assert_int_equal(l.count, 2);
  assert_string_equal(l.names[0], "orders-eu");
  gbx_queue_list_free(&l);
  /* A deleted name can be created again, as new. */
  CHECK_OK(gbx_topic_create(f->c, "orders", NULL, NULL, 0, &created, &e));
  assert_int_equal(created, 1);
}

/* ---- subscriptions ------------------------------------------------------------------------ */

static void test_subscribe_idempotent_and_exists(void **state) {
  tu_fx_t *f = *state;
  gbx_sub_info_t si;
  gbx_sub_list_t l;
  gbx_topic_info_t ti;
  const char *pol = "{\"color\":[\"red\"]}";
  mk_topic(f->c, "t");
  mk_topic(f->c, "t2");
  tu_create_queue(f->c, "q1", NULL);

  char *a = sub(f->c, "t", "q1", pol, GBX_FILTER_SCOPE_ATTRIBUTES, 1);
  char *b = sub(f->c, "t", "q1", pol, GBX_FILTER_SCOPE_ATTRIBUTES, 1);
  assert_true(tu_is_uuid(a));
  assert_string_equal(a, b);
  gbx_free(b);
  /* Different settings for the same pair: subscription_exists, each way. */
  gbx_sub_attrs_t other = {GBX_SA_FILTER_POLICY, "{\"color\":[\"blue\"]}", 0, 0};
  char *id = NULL;
  CHECK_ERR(GBX_E_SUBSCRIPTION_EXISTS, gbx_subscribe(f->c, "t", "q1", &other, &id, &e));
  assert_null(id);
  other = (gbx_sub_attrs_t){GBX_SA_FILTER_POLICY | GBX_SA_RAW, pol, 0, 0};
  CHECK_ERR(GBX_E_SUBSCRIPTION_EXISTS, gbx_subscribe(f->c, "t", "q1", &other, &id, &e));
  other = (gbx_sub_attrs_t){GBX_SA_FILTER_POLICY | GBX_SA_FILTER_SCOPE | GBX_SA_RAW, pol,
                            GBX_FILTER_SCOPE_BODY, 1};
  CHECK_ERR(GBX_E_SUBSCRIPTION_EXISTS, gbx_subscribe(f->c, "t", "q1", &other, &id, &e));
  CHECK_ERR(GBX_E_SUBSCRIPTION_EXISTS, gbx_subscribe(f->c, "t", "q1", NULL, &id, &e));

  /* The queue need not exist; the same queue on another topic is another
   * subscription. */
  char *c2 = sub(f->c, "t", "later", NULL, 0, 0);
  char *d2 = sub(f->c, "t2", "q1", NULL, 0, 0);
  assert_string_not_equal(c2, a);
  assert_string_not_equal(d2, a);
  char *again = sub(f->c, "t", "later", NULL, 0, 0);
  assert_string_equal(again, c2);
  gbx_free(again);
  CHECK_ERR(GBX_E_TOPIC_NOT_FOUND, gbx_subscribe(f->c, "nope", "q1", NULL, &id, &e));
  CHECK_ERR(GBX_E_BAD_NAME, gbx_subscribe(f->c, "t", "bad queue", NULL, &id, &e));

  CHECK_OK(gbx_topic_get_attrs(f->c, "t", &ti, &e));
  assert_int_equal(ti.subscriptions, 2);
  gbx_topic_info_free(&ti);

  CHECK_OK(gbx_sub_get_attrs(f->c, a, &si, &e));
  assert_string_equal(si.topic, "t");
  assert_string_equal(si.queue, "q1");
  assert_string_equal(si.attrs.filter_policy, pol);
  assert_int_equal(si.attrs.filter_scope, GBX_FILTER_SCOPE_ATTRIBUTES);
  assert_int_equal(si.attrs.raw, 1);
  gbx_sub_info_free(&si);
  CHECK_OK(gbx_sub_get_attrs(f->c, c2, &si, &e));
  assert_string_equal(si.queue, "later");
  assert_string_equal(si.attrs.filter_policy, "");
  assert_int_equal(si.attrs.raw, 0);
  gbx_sub_info_free(&si);

  /* Lists: all, by topic, by queue, by both. */
  CHECK_OK(gbx_sub_list(f->c, NULL, NULL, NULL, &l, &e));
  assert_int_equal(l.count, 3);
  assert_null(l.next);
  gbx_sub_list_free(&l);
  CHECK_OK(gbx_sub_list(f->c, "t", NULL, NULL, &l, &e));
  assert_int_equal(l.count, 2);
  for (size_t i = 0; i < l.count; i++)
    assert_string_equal(l.subs[i].topic, "t");
  gbx_sub_list_free(&l);
  CHECK_OK(gbx_sub_list(f->c, NULL, "q1", NULL, &l, &e));
  assert_int_equal(l.count, 2);
  for (size_t i = 0; i < l.count; i++) {
    assert_string_equal(l.subs[i].queue, "q1");
    assert_true(strcmp(l.subs[i].id, a) == 0 || strcmp(l.subs[i].id, d2) == 0);
  }
  gbx_sub_list_free(&l);
  CHECK_OK(gbx_sub_list(f->c, "t2", "q1", NULL, &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.subs[0].id, d2);
  gbx_sub_list_free(&l);
  CHECK_ERR(GBX_E_TOPIC_NOT_FOUND, gbx_sub_list(f->c, "nope", NULL, NULL, &l, &e));

  /* Changing attributes: the new ones are reported, and now subscribing
   * with them returns the same id. */
  gbx_sub_attrs_t body = {GBX_SA_FILTER_POLICY | GBX_SA_FILTER_SCOPE | GBX_SA_RAW,
                          "{\"kind\":[\"x\"]}", GBX_FILTER_SCOPE_BODY, 0};
  CHECK_OK(gbx_sub_set_attrs(f->c, a, &body, &e));
  CHECK_OK(gbx_sub_get_attrs(f->c, a, &si, &e));
  assert_string_equal(si.attrs.filter_policy, "{\"kind\":[\"x\"]}");
  assert_int_equal(si.attrs.filter_scope, GBX_FILTER_SCOPE_BODY);
  assert_int_equal(si.attrs.raw, 0);
  gbx_sub_info_free(&si);
  CHECK_OK(gbx_subscribe(f->c, "t", "q1", &body, &id, &e));
  assert_string_equal(id, a);
  gbx_free(id);
  /* "" clears the policy. */
  gbx_sub_attrs_t clear = {GBX_SA_FILTER_POLICY, "", 0, 0};
  CHECK_OK(gbx_sub_set_attrs(f->c, a, &clear, &e));
  CHECK_OK(gbx_sub_get_attrs(f->c, a, &si, &e));
  assert_string_equal(si.attrs.filter_policy, "");
  gbx_sub_info_free(&si);

  CHECK_OK(gbx_unsubscribe(f->c, a, &e));
  CHECK_ERR(GBX_E_SUBSCRIPTION_NOT_FOUND, gbx_unsubscribe(f->c, a, &e));
  CHECK_ERR(GBX_E_SUBSCRIPTION_NOT_FOUND, gbx_sub_get_attrs(f->c, a, &si, &e));
  CHECK_ERR(GBX_E_SUBSCRIPTION_NOT_FOUND, gbx_sub_set_attrs(f->c, a, &clear, &e));
  CHECK_ERR(GBX_E_SUBSCRIPTION_NOT_FOUND, gbx_unsubscribe(f->c, "not-an-id", &e));
  CHECK_OK(gbx_sub_list(f->c, NULL, "q1", NULL, &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.subs[0].id, d2);
  gbx_sub_list_free(&l);
  /* Subscribing again after unsubscribe works, with any settings. */
  char *fresh = sub(f->c, "t", "q1", NULL, 0, 0);
  gbx_free(fresh);
  gbx_free(a);
  gbx_free(c2);
  gbx_free(d2);
}

static void test_sub_list_pages(void **state) {
  tu_fx_t *f = *state;
  char q[32];
  int seen[MANY_SUBS] = {0};
  size_t total = 0, pages = 0;
  char *next = NULL;
  mk_topic(f->c, "many");
  for (int i = 0; i < MANY_SUBS; i++) {
    snprintf(q, sizeof q, "q%03d", i);
    gbx_free(sub(f->c, "many", q, NULL, 0, 0));
  }
  do {
    gbx_sub_list_t l;
    CHECK_OK(gbx_sub_list(f->c, "many", NULL, next, &l, &e));
    free(next);
    next = l.next ? strdup(l.next) : NULL;
    pages++;
    for (size_t i = 0; i < l.count; i++) {
      int k = atoi(l.subs[i].queue + 1);
      assert_true(k >= 0 && k < MANY_SUBS);
      seen[k]++;
    }
    total += l.count;
    gbx_sub_list_free(&l);
    assert_true(pages < 10);
  } while (next);
  assert_int_equal(total, MANY_SUBS);
  assert_true(pages >= 2);
  for (int i = 0; i < MANY_SUBS; i++)
    assert_int_equal(seen[i], 1);
}

/* ---- fan-out ------------------------------------------------------------------------------ */

static void test_publish_fanout_raw_and_envelope(void **state) {
  tu_fx_t *f = *state;
  const char *body = "{\"order\": 42, \"note\": \"he said \\\"hi\\\"\\n\"} \xc3\xbc\n\ttab";
  const uint8_t bin[] = {0, 1, 2, 255, 0};
  attrset_t as;
  char mid[GBX_MID_BUFSZ];
  uint32_t delivered = 0;
  mk_topic(f->c, "news");
  tu_create_queue(f->c, "raw", NULL);
  tu_create_queue(f->c, "env1", NULL);
  tu_create_queue(f->c, "env2", NULL);
  char *s_raw = sub(f->c, "news", "raw", NULL, 0, 1);
  char *s_e1 = sub(f->c, "news", "env1", NULL, 0, 0);
  char *s_e2 = sub(f->c, "news", "env2", NULL, 0, 0);

  attrs_parse("color=String:red;price=Number.float:12.50;trace=String.uuid:abc:def", &as);
  as.a[as.n++] = (gbx_msg_attr_t){"blob", "Binary", bin, sizeof bin};
  uint64_t t0 = tu_wall_ms();
  CHECK_OK(
      gbx_publish(f->c, "news", body, strlen(body), as.a, as.n, "Greetings", mid, &delivered, &e));
  uint64_t t1 = tu_wall_ms();
  assert_true(tu_is_uuid(mid));
  assert_int_equal(delivered, 3);

  gbx_message_t *r = recv_n(f->c, "raw", 1);
  gbx_message_t *m1 = recv_n(f->c, "env1", 1);
  gbx_message_t *m2 = recv_n(f->c, "env2", 1);
  /* Three copies, each with its own id, none the publish's. */
  assert_true(tu_is_uuid(r->mid) && tu_is_uuid(m1->mid) && tu_is_uuid(m2->mid));
  assert_string_not_equal(r->mid, m1->mid);
  assert_string_not_equal(r->mid, m2->mid);
  assert_string_not_equal(m1->mid, m2->mid);
  assert_string_not_equal(r->mid, mid);
  assert_string_not_equal(m1->mid, mid);
  assert_int_equal(r->receive_count, 1);

  /* Raw: the body and attributes exactly as published. */
  assert_int_equal(r->body_len, strlen(body));
  assert_memory_equal(r->body, body, r->body_len);
  assert_int_equal(r->nattrs, as.n);
  for (size_t i = 0; i < as.n; i++) {
    const gbx_msg_attr_t *got = tu_msg_attr(r, as.a[i].name);
    if (!got)
      fail_msg("raw copy lacks attribute '%s'", as.a[i].name);
    assert_string_equal(got->type, as.a[i].type);
    assert_int_equal(got->value_len, as.a[i].value_len);
    assert_memory_equal(got->value, as.a[i].value, got->value_len);
  }
  if (r->sent_ms + CLOCK_SLACK_MS < t0 || r->sent_ms > t1 + CLOCK_SLACK_MS)
    fail_msg("raw copy sent at %llu, publish between %llu and %llu", (unsigned long long)r->sent_ms,
             (unsigned long long)t0, (unsigned long long)t1);

  /* Enveloped: the SNS notification of this publish. */
  uint64_t ts1 = check_envelope(m1, mid, "news", body, "Greetings", &as);
  uint64_t ts2 = check_envelope(m2, mid, "news", body, "Greetings", &as);
  assert_int_equal(ts1, ts2);
  if (ts1 + CLOCK_SLACK_MS < t0 || ts1 > t1 + CLOCK_SLACK_MS)
    fail_msg("envelope Timestamp %llu is not the publish time (%llu..%llu)",
             (unsigned long long)ts1, (unsigned long long)t0, (unsigned long long)t1);
  /* Each envelope names its own subscription in UnsubscribeURL. */
  cJSON *j1 = envelope_parse(m1), *j2 = envelope_parse(m2);
  assert_non_null(strstr(jstr(j1, "UnsubscribeURL"), s_e1));
  assert_non_null(strstr(jstr(j2, "UnsubscribeURL"), s_e2));
  cJSON_Delete(j1);
  cJSON_Delete(j2);

  /* A second receive renders the same envelope again. */
  CHECK_OK(gbx_message_change_vis(f->c, "env1", m1->receipt, 0, &e));
  gbx_message_t *again = recv_n(f->c, "env1", 1);
  assert_string_equal(again->mid, m1->mid);
  assert_int_equal(again->receive_count, 2);
  check_envelope(again, mid, "news", body, "Greetings", &as);

  /* Deleting one copy leaves the others. */
  CHECK_OK(gbx_message_delete(f->c, "env1", again->receipt, &e));
  gbx_messages_free(again);
  assert_int_equal(depth(f->c, "env1"), 0);
  assert_int_equal(depth(f->c, "env2"), 1);
  assert_int_equal(depth(f->c, "raw"), 1);
  gbx_messages_free(r);
  gbx_messages_free(m1);
  gbx_messages_free(m2);

  /* Without subject and attributes: no Subject, no MessageAttributes. */
  attrset_t none = {.n = 0};
  assert_int_equal(pub(f->c, "news", "plain", NULL, NULL, mid), 3);
  gbx_message_t *p = recv_n(f->c, "env2", 1); /* the first copy is still in flight */
  check_envelope(p, mid, "news", "plain", NULL, &none);
  gbx_messages_free(p);
  p = recv_n(f->c, "raw", 1); /* the first raw copy is still in flight */
  assert_int_equal(p->nattrs, 0);
  assert_string_equal((const char *)p->body, "plain");
  gbx_messages_free(p);

  /* A topic without subscriptions (or only unmatched ones): delivered 0. */
  mk_topic(f->c, "empty");
  assert_int_equal(pub(f->c, "empty", "nobody", NULL, NULL, mid), 0);
  assert_true(tu_is_uuid(mid));
  gbx_free(s_raw);
  gbx_free(s_e1);
  gbx_free(s_e2);
}

static void test_publish_errors(void **state) {
  tu_fx_t *f = *state;
  char mid[GBX_MID_BUFSZ];
  uint32_t d = 0;
  gbx_msg_attr_t bad = {"n", "Number", "abc", 3};
  gbx_publish_entry_t one = {NULL, "x", 1, NULL, 0, NULL};
  gbx_publish_result_t res[1];
  mk_topic(f->c, "t");
  tu_create_queue(f->c, "q", NULL);
  gbx_free(sub(f->c, "t", "q", NULL, 0, 1));

  CHECK_ERR(GBX_E_TOPIC_NOT_FOUND, gbx_publish(f->c, "nope", "x", 1, NULL, 0, NULL, mid, &d, &e));
  assert_non_null(strstr(e.message, "nope"));
  CHECK_ERR(GBX_E_TOPIC_NOT_FOUND, gbx_publish_batch(f->c, "nope", &one, 1, res, &e));
  CHECK_ERR(GBX_E_BAD_NAME, gbx_publish(f->c, "no pe", "x", 1, NULL, 0, NULL, mid, &d, &e));
  CHECK_ERR(GBX_E_BAD_ATTRIBUTE, gbx_publish(f->c, "t", "x", 1, &bad, 1, NULL, mid, &d, &e));
  /* Subject: 1-100 characters. */
  char subj[102];
  memset(subj, 's', sizeof subj - 1);
  subj[101] = '\0';
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_publish(f->c, "t", "x", 1, NULL, 0, subj, mid, &d, &e));
  CHECK_ERR(GBX_E_OUT_OF_RANGE, gbx_publish(f->c, "t", "x", 1, NULL, 0, "", mid, &d, &e));
  subj[100] = '\0';
  CHECK_OK(gbx_publish(f->c, "t", "x", 1, NULL, 0, subj, mid, &d, &e));
  assert_int_equal(d, 1);

  /* Size: body plus attributes at most 256 KiB, as SNS. */
  char *big = malloc(PUBLISH_MAX + 1);
  assert_non_null(big);
  memset(big, 'b', PUBLISH_MAX + 1);
  CHECK_OK(gbx_publish(f->c, "t", big, PUBLISH_MAX, NULL, 0, NULL, mid, &d, &e));
  assert_int_equal(d, 1);
  CHECK_ERR(GBX_E_MESSAGE_TOO_LONG,
            gbx_publish(f->c, "t", big, PUBLISH_MAX + 1, NULL, 0, NULL, mid, &d, &e));
  gbx_msg_attr_t small = {"a", "String", "v", 1}; /* 8 bytes more */
  CHECK_ERR(GBX_E_MESSAGE_TOO_LONG,
            gbx_publish(f->c, "t", big, PUBLISH_MAX - 7, &small, 1, NULL, mid, &d, &e));
  CHECK_OK(gbx_publish(f->c, "t", big, PUBLISH_MAX - 8, &small, 1, NULL, mid, &d, &e));
  free(big);
  /* Only the accepted publishes reached the queue. */
  assert_int_equal(depth(f->c, "q"), 3);
  assert_true(gbx_is_open(f->c));
}

/* ---- filter policies ----------------------------------------------------------------------- */

typedef struct fmsg {
  const char *body;
  const char *attrs; /* attrs_parse syntax, NULL for none */
  int match;
} fmsg_t;

typedef struct fcase {
  const char *what;
  const char *policy;
  int scope;
  fmsg_t msgs[8]; /* terminated by body NULL */
} fcase_t;

#define ATTR GBX_FILTER_SCOPE_ATTRIBUTES
#define BODY GBX_FILTER_SCOPE_BODY

static const fcase_t ATTR_CASES[] = {
    {"exact string",
     "{\"color\":[\"red\",\"green\"]}",
     ATTR,
     {{"red", "color=String:red", 1},
      {"green", "color=String:green", 1},
      {"blue", "color=String:blue", 0},
      {"case", "color=String:Red", 0},
      {"missing", "size=String:red", 0},
      {"none", NULL, 0}}},
    {"exact number",
     "{\"price\":[100]}",
     ATTR,
     {{"100", "price=Number:100", 1},
      {"100.0", "price=Number:100.0", 1},
      {"1e2", "price=Number:1e2", 1},
      {"101", "price=Number:101", 0},
      {"none", NULL, 0}}},
    {"numeric range",
     "{\"price\":[{\"numeric\":[\">=\",10,\"<\",20]}]}",
     ATTR,
     {{"10", "price=Number:10", 1},
      {"19.99", "price=Number:19.99", 1},
      {"20", "price=Number:20", 0},
      {"9.5", "price=Number:9.5", 0},
      {"none", NULL, 0}}},
    {"numeric comparisons",
     "{\"a\":[{\"numeric\":[\">\",0]}],\"b\":[{\"numeric\":[\"<=\",5]}],"
     "\"c\":[{\"numeric\":[\"=\",7.5]}]}",
     ATTR,
     {{"all", "a=Number:1;b=Number:5;c=Number:7.5", 1},
      {"a zero", "a=Number:0;b=Number:5;c=Number:7.5", 0},
      {"b over", "a=Number:1;b=Number:5.01;c=Number:7.5", 0},
      {"c other", "a=Number:1;b=Number:-3;c=Number:7.49", 0},
      {"c missing", "a=Number:1;b=Number:5", 0}}},
    {"anything-but values",
     "{\"color\":[{\"anything-but\":[\"red\",\"blue\"]}]}",
     ATTR,
     {{"green", "color=String:green", 1},
      {"red", "color=String:red", 0},
      {"blue", "color=String:blue", 0},
      {"missing", NULL, 0}}},
    {"anything-but prefix",
     "{\"color\":[{\"anything-but\":{\"prefix\":\"re\"}}]}",
     ATTR,
     {{"blue", "color=String:blue", 1},
      {"red", "color=String:red", 0},
      {"reed", "color=String:reed", 0},
      {"missing", NULL, 0}}},
    {"prefix",
     "{\"region\":[{\"prefix\":\"eu-\"}]}",
     ATTR,
     {{"eu-west-1", "region=String:eu-west-1", 1},
      {"eu-", "region=String:eu-", 1},
      {"us-east-1", "region=String:us-east-1", 0},
      {"xeu-", "region=String:xeu-", 0},
      {"none", NULL, 0}}},
    {"suffix",
     "{\"file\":[{\"suffix\":\".png\"}]}",
     ATTR,
     {{"a.png", "file=String:a.png", 1},
      {"a.png.jpg", "file=String:a.png.jpg", 0},
      {"none", NULL, 0}}},
    {"equals-ignore-case",
     "{\"color\":[{\"equals-ignore-case\":\"RED\"}]}",
     ATTR,
     {{"red", "color=String:red", 1},
      {"Red", "color=String:Red", 1},
      {"reds", "color=String:reds", 0},
      {"none", NULL, 0}}},
    {"exists false",
     "{\"debug\":[{\"exists\":false}]}",
     ATTR,
     {{"absent", "color=String:red", 1}, {"none", NULL, 0}, {"present", "debug=String:yes", 0}}},
    {"exists true",
     "{\"debug\":[{\"exists\":true}]}",
     ATTR,
     {{"present", "debug=String:yes", 1},
      {"present number", "debug=Number:0", 1},
      {"absent", "color=String:red", 0},
      {"none", NULL, 0}}},
    {"cidr",
     "{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}",
     ATTR,
     {{"in", "ip=String:10.0.0.255", 1},
      {"out", "ip=String:10.0.1.1", 0},
      {"not an ip", "ip=String:hello", 0}}},
    {"several keys: all must match",
     "{\"color\":[\"red\"],\"size\":[\"L\"]}",
     ATTR,
     {{"both", "color=String:red;size=String:L", 1},
      {"color only", "color=String:red", 0},
      {"size wrong", "color=String:red;size=String:M", 0}}},
    {"$or",
     "{\"$or\":[{\"color\":[\"red\"]},{\"size\":[\"L\"]}]}",
     ATTR,
     {{"color", "color=String:red", 1},
      {"size", "size=String:L", 1},
      {"both", "color=String:red;size=String:L", 1},
      {"neither", "color=String:blue;size=String:M", 0}}},
};

static const fcase_t BODY_CASES[] = {
    {"nested exact",
     "{\"order\":{\"status\":[\"paid\"]}}",
     BODY,
     {{"{\"order\":{\"status\":\"paid\",\"id\":1}}", NULL, 1},
      {"{\"order\":{\"status\":\"new\"}}", NULL, 0},
      {"{\"status\":\"paid\"}", NULL, 0},
      {"not json at all", NULL, 0},
      {"{\"order\":{\"status\":\"paid\"}", NULL, 0}, /* truncated JSON */
      {"{\"other\":1}", "status=String:paid", 0}}},  /* attributes are not looked at */
    {"arrays",
     "{\"tags\":[\"b\"]}",
     BODY,
     {{"{\"tags\":[\"a\",\"b\"]}", NULL, 1},
      {"{\"tags\":[\"c\"]}", NULL, 0},
      {"{\"tags\":\"b\"}", NULL, 1},
      {"[\"b\"]", NULL, 0}}},
    {"numeric in body",
     "{\"order\":{\"amount\":[{\"numeric\":[\">\",100]}]}}",
     BODY,
     {{"{\"order\":{\"amount\":150}}", NULL, 1},
      {"{\"order\":{\"amount\":100}}", NULL, 0},
      {"{\"order\":{\"amount\":\"150\"}}", NULL, 0},
      {"{\"order\":{}}", NULL, 0}}},
    {"exists false in body",
     "{\"order\":{\"coupon\":[{\"exists\":false}]}}",
     BODY,
     {{"{\"order\":{\"id\":1}}", NULL, 1}, {"{\"order\":{\"coupon\":\"X\"}}", NULL, 0}}},
    {"prefix and anything-but in body",
     "{\"region\":[{\"prefix\":\"eu-\"}],\"env\":[{\"anything-but\":[\"test\"]}]}",
     BODY,
     {{"{\"region\":\"eu-west-1\",\"env\":\"prod\"}", NULL, 1},
      {"{\"region\":\"eu-west-1\",\"env\":\"test\"}", NULL, 0},
      {"{\"region\":\"us-east-1\",\"env\":\"prod\"}", NULL, 0}}},
};

/* Runs a table: each case gets its own topic and queue, subscribed (raw)
 * with the case's policy; each message's publish must report 1 or 0
 * deliveries as expected, and the queue must then hold exactly the
 * matching bodies, in any order. */
static void run_cases(gbx_client_t *c, const char *prefix, const fcase_t *cases, size_t ncases) {
  for (size_t i = 0; i < ncases; i++) {
    const fcase_t *k = &cases[i];
    char t[64], q[64];
    size_t want = 0;
    snprintf(t, sizeof t, "%s-t%zu", prefix, i);
    snprintf(q, sizeof q, "%s-q%zu", prefix, i);
    mk_topic(c, t);
    tu_create_queue(c, q, NULL);
    gbx_free(sub(c, t, q, k->policy, k->scope, 1));
    for (const fmsg_t *m = k->msgs; m->body; m++) {
      uint32_t d = pub(c, t, m->body, m->attrs, NULL, NULL);
      if (d != (uint32_t)m->match)
        fail_msg("%s (%s): message '%s' [%s] was delivered to %u queues, want %d", k->what,
                 k->policy, m->body, m->attrs ? m->attrs : "", d, m->match);
      want += (size_t)m->match;
    }
    size_t n = 0;
    gbx_message_t *got = recv_all(c, q, &n);
    if (n != want)
      fail_msg("%s: queue holds %zu messages, want %zu", k->what, n, want);
    for (size_t g = 0; g < n; g++) {
      int found = 0;
      for (const fmsg_t *m = k->msgs; m->body && !found; m++)
        found = m->match && strlen(m->body) == got[g].body_len &&
                memcmp(m->body, got[g].body, got[g].body_len) == 0;
      if (!found)
        fail_msg("%s: queue holds unexpected body '%s'", k->what, (const char *)got[g].body);
    }
    gbx_messages_free(got);
  }
}

static void test_filter_attributes(void **state) {
  tu_fx_t *f = *state;
  run_cases(f->c, "fa", ATTR_CASES, sizeof ATTR_CASES / sizeof ATTR_CASES[0]);
}

static void test_filter_body(void **state) {
  tu_fx_t *f = *state;
  run_cases(f->c, "fb", BODY_CASES, sizeof BODY_CASES / sizeof BODY_CASES[0]);
}

/* One publish to a topic whose subscriptions have different filters is
 * matched against each: only the matching queues get a copy. */
static void test_filter_mixed_subscriptions(void **state) {
  tu_fx_t *f = *state;
  mk_topic(f->c, "mix");
  const char *qs[4] = {"all", "red", "blue", "bodyred"};
  for (int i = 0; i < 4; i++)
    tu_create_queue(f->c, qs[i], NULL);
  gbx_free(sub(f->c, "mix", "all", NULL, 0, 1));
  gbx_free(sub(f->c, "mix", "red", "{\"color\":[\"red\"]}", ATTR, 1));
  gbx_free(sub(f->c, "mix", "blue", "{\"color\":[\"blue\"]}", ATTR, 1));
  gbx_free(sub(f->c, "mix", "bodyred", "{\"color\":[\"red\"]}", BODY, 1));
  assert_int_equal(pub(f->c, "mix", "{\"color\":\"blue\"}", "color=String:red", NULL, NULL), 2);
  assert_int_equal(pub(f->c, "mix", "{\"color\":\"red\"}", "color=String:blue", NULL, NULL), 3);
  assert_int_equal(pub(f->c, "mix", "x", NULL, NULL, NULL), 1);
  assert_int_equal(depth(f->c, "all"), 3);
  assert_int_equal(depth(f->c, "red"), 1);
  assert_int_equal(depth(f->c, "blue"), 1);
  assert_int_equal(depth(f->c, "bodyred"), 1);
  gbx_message_t *m = recv_n(f->c, "bodyred", 1);
  assert_string_equal((const char *)m->body, "{\"color\":\"red\"}");
  gbx_messages_free(m);
}

static void test_bad_filter_policy(void **state) {
  tu_fx_t *f = *state;
  static const char *const bad[] = {
      "not json",
      "[1,2]",
      "{\"color\":\"red\"}",
      "{\"color\":[{\"bogus\":1}]}",
      "{\"price\":[{\"numeric\":[\">\"]}]}",
      "{\"price\":[{\"numeric\":[\">\",\"ten\"]}]}",
      "{\"color\":[{\"prefix\":5}]}",
      "{\"debug\":[{\"exists\":\"yes\"}]}",
      "{\"ip\":[{\"cidr\":\"10.0.0.0/99\"}]}",
      "{\"color\":[\"red\"]",
  };
  gbx_sub_attrs_t a = {GBX_SA_FILTER_POLICY, NULL, 0, 0};
  gbx_sub_info_t si;
  char *id = NULL;
  mk_topic(f->c, "t");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    a.filter_policy = bad[i];
    CHECK_ERR(GBX_E_BAD_FILTER_POLICY, gbx_subscribe(f->c, "t", "q", &a, &id, &e));
    if (!e.message[0] || strcmp(e.message, gbx_strerror(GBX_E_BAD_FILTER_POLICY)) == 0)
      fail_msg("policy '%s': the error does not name the problem ('%s')", bad[i], e.message);
    assert_null(id);
  }
  /* SNS's limit of 150 combinations: 13 x 13 values in two keys is 169. */
  char big[2048];
  size_t o = (size_t)snprintf(big, sizeof big, "{\"a\":[");
  for (int i = 0; i < 13; i++)
    o += (size_t)snprintf(big + o, sizeof big - o, "%s\"v%d\"", i ? "," : "", i);
  o += (size_t)snprintf(big + o, sizeof big - o, "],\"b\":[");
  for (int i = 0; i < 13; i++)
    o += (size_t)snprintf(big + o, sizeof big - o, "%s\"w%d\"", i ? "," : "", i);
  snprintf(big + o, sizeof big - o, "]}");
  a.filter_policy = big;
  CHECK_ERR(GBX_E_BAD_FILTER_POLICY, gbx_subscribe(f->c, "t", "q", &a, &id, &e));
  /* 12 x 12 = 144 is within the limit. */
  for (char *p = big; (p = strstr(p, ",\"v12\""));)
    memmove(p, p + 6, strlen(p + 6) + 1);
  for (char *p = big; (p = strstr(p, ",\"w12\""));)
    memmove(p, p + 6, strlen(p + 6) + 1);
  id = sub(f->c, "t", "q", big, ATTR, 0);

  /* Nothing was subscribed by the failures; a failed change keeps the old
   * policy. */
  gbx_sub_list_t l;
  CHECK_OK(gbx_sub_list(f->c, "t", NULL, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  gbx_sub_list_free(&l);
  a.filter_policy = "{\"color\":\"red\"}";
  CHECK_ERR(GBX_E_BAD_FILTER_POLICY, gbx_sub_set_attrs(f->c, id, &a, &e));
  CHECK_OK(gbx_sub_get_attrs(f->c, id, &si, &e));
  assert_string_equal(si.attrs.filter_policy, big);
  gbx_sub_info_free(&si);
  gbx_free(id);
}

/* ---- deletion --------------------------------------------------------------------------------- */

static void test_queue_delete_keeps_subscription(void **state) {
  tu_fx_t *f = *state;
  gbx_sub_list_t l;
  mk_topic(f->c, "t");
  tu_create_queue(f->c, "a", NULL);
  tu_create_queue(f->c, "b", NULL);
  tu_create_queue(f->c, "c", NULL);
  gbx_free(sub(f->c, "t", "a", NULL, 0, 1));
  char *sb = sub(f->c, "t", "b", "{\"k\":[\"v\"]}", ATTR, 1);
  gbx_free(sub(f->c, "t", "c", NULL, 0, 1));
  assert_int_equal(pub(f->c, "t", "one", "k=String:v", NULL, NULL), 3);

  CHECK_OK(gbx_queue_delete(f->c, "b", &e));
  /* The subscription stays, with its settings; publishes skip the queue. */
  CHECK_OK(gbx_sub_list(f->c, NULL, "b", NULL, &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.subs[0].id, sb);
  gbx_sub_list_free(&l);
  assert_int_equal(pub(f->c, "t", "two", "k=String:v", NULL, NULL), 2);
  gbx_sub_info_t si;
  CHECK_OK(gbx_sub_get_attrs(f->c, sb, &si, &e));
  assert_string_equal(si.attrs.filter_policy, "{\"k\":[\"v\"]}");
  gbx_sub_info_free(&si);

  /* Recreated, the queue gets later publishes only (not what it missed,
   * not what it held before). */
  tu_create_queue(f->c, "b", NULL);
  assert_int_equal(depth(f->c, "b"), 0);
  assert_int_equal(pub(f->c, "t", "three", "k=String:v", NULL, NULL), 3);
  assert_int_equal(pub(f->c, "t", "four", "k=String:other", NULL, NULL), 2); /* filter still on */
  gbx_message_t *m = recv_n(f->c, "b", 1);
  assert_string_equal((const char *)m->body, "three");
  gbx_messages_free(m);
  assert_int_equal(depth(f->c, "a"), 4);
  assert_int_equal(depth(f->c, "c"), 4);
  gbx_free(sb);
}

static void test_topic_delete_drops_subscriptions(void **state) {
  tu_fx_t *f = *state;
  gbx_sub_list_t l;
  gbx_sub_info_t si;
  char mid[GBX_MID_BUFSZ];
  mk_topic(f->c, "t");
  mk_topic(f->c, "keep");
  tu_create_queue(f->c, "env", NULL);
  tu_create_queue(f->c, "raw", NULL);
  char *s1 = sub(f->c, "t", "env", NULL, 0, 0);
  char *s2 = sub(f->c, "t", "raw", NULL, 0, 1);
  char *s3 = sub(f->c, "keep", "raw", NULL, 0, 1);
  assert_int_equal(pub(f->c, "t", "before", NULL, "S", mid), 2);

  CHECK_OK(gbx_topic_delete(f->c, "t", &e));
  CHECK_ERR(GBX_E_SUBSCRIPTION_NOT_FOUND, gbx_sub_get_attrs(f->c, s1, &si, &e));
  CHECK_ERR(GBX_E_SUBSCRIPTION_NOT_FOUND, gbx_unsubscribe(f->c, s2, &e));
  CHECK_OK(gbx_sub_list(f->c, NULL, NULL, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.subs[0].id, s3);
  gbx_sub_list_free(&l);
  CHECK_ERR(GBX_E_TOPIC_NOT_FOUND, gbx_publish(f->c, "t", "x", 1, NULL, 0, NULL, mid, NULL, &e));

  /* Delivered copies stay, and the envelope still renders. */
  gbx_message_t *m = recv_n(f->c, "env", 1);
  attrset_t none = {.n = 0};
  check_envelope(m, mid, "t", "before", "S", &none);
  gbx_messages_free(m);
  m = recv_n(f->c, "raw", 1);
  assert_string_equal((const char *)m->body, "before");
  gbx_messages_free(m);

  /* The name is free again, without the old subscriptions. */
  mk_topic(f->c, "t");
  assert_int_equal(pub(f->c, "t", "after", NULL, NULL, NULL), 0);
  assert_int_equal(depth(f->c, "env"), 1);
  gbx_free(s1);
  gbx_free(s2);
  gbx_free(s3);
}

/* ---- batches and pipelining ------------------------------------------------------------------- */

static void test_publish_batch(void **state) {
  tu_fx_t *f = *state;
  gbx_msg_attr_t red = {"color", "String", "red", 3}, bad = {"n", "Number", "x1", 2};
  gbx_publish_entry_t ent[4] = {
      {"e0", "first", 5, &red, 1, "S0"},
      {"e1", "second", 6, NULL, 0, NULL},
      {"e2", "third", 5, &bad, 1, NULL},
      {NULL, "fourth", 6, &red, 1, NULL},
  };
  gbx_publish_result_t res[GBX_MAX_PUBLISH_BATCH];
  mk_topic(f->c, "t");
  tu_create_queue(f->c, "all", NULL);
  tu_create_queue(f->c, "red", NULL);
  tu_create_queue(f->c, "env", NULL);
  gbx_free(sub(f->c, "t", "all", NULL, 0, 1));
  gbx_free(sub(f->c, "t", "red", "{\"color\":[\"red\"]}", ATTR, 1));
  gbx_free(sub(f->c, "t", "env", "{\"color\":[\"red\"]}", ATTR, 0));

  CHECK_OK(gbx_publish_batch(f->c, "t", ent, 4, res, &e));
  assert_int_equal(res[0].code, GBX_E_OK);
  assert_int_equal(res[0].delivered, 3);
  assert_int_equal(res[1].code, GBX_E_OK);
  assert_int_equal(res[1].delivered, 1);
  assert_int_equal(res[2].code, GBX_E_BAD_ATTRIBUTE);
  assert_true(res[2].message[0] != '\0');
  assert_int_equal(res[3].code, GBX_E_OK);
  assert_int_equal(res[3].delivered, 3);
  assert_true(tu_is_uuid(res[0].mid) && tu_is_uuid(res[1].mid) && tu_is_uuid(res[3].mid));
  assert_string_not_equal(res[0].mid, res[1].mid);
  assert_string_not_equal(res[0].mid, res[3].mid);
  assert_int_equal(depth(f->c, "all"), 3);
  assert_int_equal(depth(f->c, "red"), 2);

  /* The enveloped copies carry their own entry's id and subject. */
  gbx_message_t *m = recv_n(f->c, "env", 2);
  attrset_t as;
  attrs_parse("color=String:red", &as);
  for (int i = 0; i < 2; i++) {
    char *msg = envelope_message(&m[i]);
    if (strcmp(msg, "first") == 0)
      check_envelope(&m[i], res[0].mid, "t", "first", "S0", &as);
    else
      check_envelope(&m[i], res[3].mid, "t", "fourth", NULL, &as);
    free(msg);
  }
  gbx_messages_free(m);

  /* Request-level errors: duplicate entry ids, a bad entry id, more than
   * 10 entries (refused by libgearbox itself; the server's own check is
   * test_publish_batch_limit_raw). */
  gbx_publish_entry_t dup[2] = {{"x", "a", 1, NULL, 0, NULL}, {"x", "b", 1, NULL, 0, NULL}};
  CHECK_ERR(GBX_E_DUPLICATE_ENTRY_ID, gbx_publish_batch(f->c, "t", dup, 2, res, &e));
  gbx_publish_entry_t badid = {"bad id", "a", 1, NULL, 0, NULL};
  CHECK_ERR(GBX_E_BAD_NAME, gbx_publish_batch(f->c, "t", &badid, 1, res, &e));
  gbx_publish_entry_t ten[GBX_MAX_PUBLISH_BATCH + 1];
  for (size_t i = 0; i < GBX_MAX_PUBLISH_BATCH + 1; i++)
    ten[i] = (gbx_publish_entry_t){NULL, "z", 1, NULL, 0, NULL};
  CHECK_ERR(GBX_E_TOO_MANY_ENTRIES,
            gbx_publish_batch(f->c, "t", ten, GBX_MAX_PUBLISH_BATCH + 1, res, &e));
  CHECK_OK(gbx_publish_batch(f->c, "t", ten, GBX_MAX_PUBLISH_BATCH, res, &e));
  for (size_t i = 0; i < GBX_MAX_PUBLISH_BATCH; i++) {
    assert_int_equal(res[i].code, GBX_E_OK);
    assert_int_equal(res[i].delivered, 1);
  }
  assert_int_equal(depth(f->c, "all"), 3 + GBX_MAX_PUBLISH_BATCH);
}

/* Packs by hand a publish_batch of n entries of body "x" on topic "t"
 * (nattrs 0), or a publish of body "x" with nattrs attributes (n 0), sends
 * it on a raw connection and returns the reply's err. */
static int raw_publish(gbx_testserver_t *ts, int op, uint32_t n, uint32_t nattrs) {
  tu_raw_t r;
  gbx_attr_t a[GBX_MAX_ATTRS + 2];
  char names[GBX_MAX_ATTRS + 2][8];
  msgpack_packer *pk = tu_raw_request(&r, (uint64_t)op, 1, op == GBX_OP_PUBLISH ? 3 : 2);
  gbx_pack_kv_cstr(pk, "t", "t");
  if (op == GBX_OP_PUBLISH) {
    assert_true(nattrs <= GBX_MAX_ATTRS + 2);
    for (uint32_t i = 0; i < nattrs; i++) {
      snprintf(names[i], sizeof names[i], "a%u", i);
      a[i] = (gbx_attr_t){names[i], (uint32_t)strlen(names[i]), "String", 6, "v", 1};
    }
    gbx_pack_kv_bin(pk, "body", "x", 1);
    gbx_pack_cstr(pk, "attrs");
    gbx_attrs_pack(pk, a, nattrs);
  } else {
    gbx_pack_cstr(pk, "entries");
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
      msgpack_pack_map(pk, 1);
      gbx_pack_kv_bin(pk, "body", "x", 1);
    }
  }
  int err = tu_raw_call(ts, &r.b).err;
  gbx_buf_free(&r.b);
  return err;
}

static void test_publish_limits_raw(void **state) {
  tu_fx_t *f = *state;
  mk_topic(f->c, "t");
  tu_create_queue(f->c, "q", NULL);
  gbx_free(sub(f->c, "t", "q", NULL, 0, 1));
  assert_int_equal(raw_publish(f->ts, GBX_OP_PUBLISH_BATCH, GBX_MAX_PUBLISH_BATCH + 1, 0),
                   GBX_E_TOO_MANY_ENTRIES);
  assert_int_equal(raw_publish(f->ts, GBX_OP_PUBLISH_BATCH, 0, 0), GBX_E_EMPTY_BATCH);
  assert_int_equal(raw_publish(f->ts, GBX_OP_PUBLISH_BATCH, GBX_MAX_PUBLISH_BATCH, 0), GBX_E_OK);
  assert_int_equal(raw_publish(f->ts, GBX_OP_PUBLISH, 0, GBX_MAX_ATTRS + 1), GBX_E_BAD_ATTRIBUTE);
  assert_int_equal(raw_publish(f->ts, GBX_OP_PUBLISH, 0, GBX_MAX_ATTRS), GBX_E_OK);
  /* Only the accepted requests delivered. */
  assert_int_equal(depth(f->c, "q"), GBX_MAX_PUBLISH_BATCH + 1);
}

static void test_pipelined_publishes(void **state) {
  tu_fx_t *f = *state;
  char body[32];
  static char mids[PIPELINED][GBX_MID_BUFSZ];
  mk_topic(f->c, "t");
  tu_create_queue(f->c, "a", NULL);
  tu_create_queue(f->c, "b", NULL);
  gbx_free(sub(f->c, "t", "a", NULL, 0, 1));
  gbx_free(sub(f->c, "t", "b", "{\"even\":[\"yes\"]}", ATTR, 1));
  gbx_msg_attr_t even = {"even", "String", "yes", 3};
  uint64_t prev = 0;
  for (int i = 0; i < PIPELINED; i++) {
    snprintf(body, sizeof body, "m%d", i);
    uint64_t id =
        gbx_submit_publish(f->c, "t", body, strlen(body), &even, i % 2 == 0 ? 1 : 0, NULL, &e);
    if (id == 0)
      fail_msg("submit %d: %s", i, e.message);
    assert_true(prev == 0 || id == prev + 1);
    prev = id;
  }
  for (int i = 0; i < PIPELINED; i++) {
    gbx_reply_t *r;
    uint32_t d = 0;
    char mid[GBX_MID_BUFSZ];
    CHECK_OK(gbx_collect(f->c, &r, &e));
    assert_int_equal(gbx_reply_op(r), GBX_OP_PUBLISH);
    CHECK_OK(gbx_reply_publish(r, mid, &d, &e));
    gbx_reply_free(r);
    assert_true(d == 1 || d == 2);
    for (int k = 0; k < i; k++)
      if (strcmp(mids[k], mid) == 0)
        fail_msg("publish id %s returned twice", mid);
    memcpy(mids[i], mid, sizeof mid);
  }
  assert_int_equal(gbx_pending(f->c), 0);
  assert_int_equal(depth(f->c, "a"), PIPELINED);
  assert_int_equal(depth(f->c, "b"), PIPELINED / 2);
}

/* ---- large bodies ------------------------------------------------------------------------------ */

static void test_large_publish_identical_copies(void **state) {
  tu_fx_t *f = *state;
  static uint8_t body[LARGE_BODY];
  static char text[LARGE_BODY + 1];
  char q[16], mid[GBX_MID_BUFSZ];
  uint32_t d = 0;
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof body; i++) {
    x = x * 1103515245u + 12345u;
    body[i] = (uint8_t)(' ' + (x >> 16) % 95); /* SNS messages are text */
  }
  mk_topic(f->c, "big");
  for (int i = 0; i < LARGE_QUEUES; i++) {
    snprintf(q, sizeof q, "big%d", i);
    tu_create_queue(f->c, q, NULL);
    gbx_free(sub(f->c, "big", q, NULL, 0, 1));
  }
  /* a body that is not UTF-8 text is refused, as SNS refuses it */
  static const uint8_t binary[] = {'o', 'k', 0xff, 0xfe, 0, 'x'};
  assert_int_equal(gbx_publish(f->c, "big", binary, sizeof binary, NULL, 0, NULL, mid, &d, &e),
                   GBX_E_INVALID_MESSAGE);
  CHECK_OK(gbx_publish(f->c, "big", body, sizeof body, NULL, 0, NULL, mid, &d, &e));
  assert_int_equal(d, LARGE_QUEUES);
  char first[GBX_MID_BUFSZ] = "";
  for (int i = 0; i < LARGE_QUEUES; i++) {
    snprintf(q, sizeof q, "big%d", i);
    gbx_message_t *m = recv_n(f->c, q, 1);
    assert_int_equal(m->body_len, sizeof body);
    assert_memory_equal(m->body, body, sizeof body);
    assert_string_not_equal(m->mid, first);
    snprintf(first, sizeof first, "%s", m->mid);
    gbx_messages_free(m);
  }

  /* A 64 KiB text body in an envelope: Message is the whole body. */
  for (size_t i = 0; i < LARGE_BODY; i++)
    text[i] = (char)('a' + i % 26);
  text[LARGE_BODY] = '\0';
  tu_create_queue(f->c, "bigenv", NULL);
  gbx_free(sub(f->c, "big", "bigenv", NULL, 0, 0));
  assert_int_equal(pub(f->c, "big", text, NULL, NULL, mid), LARGE_QUEUES + 1);
  gbx_message_t *m = recv_n(f->c, "bigenv", 1);
  attrset_t none = {.n = 0};
  check_envelope(m, mid, "big", text, NULL, &none);
  gbx_messages_free(m);
}

/* ---- restarts ----------------------------------------------------------------------------------- */

/* Topics, subscriptions with their filters and delivered copies, before a
 * restart. */
typedef struct world {
  char *s_env, *s_raw, *s_body;
  char mid_env[GBX_MID_BUFSZ];
} world_t;

static void world_build(gbx_client_t *c, world_t *w) {
  gbx_topic_attrs_t ta = {GBX_TA_DISPLAY_NAME, "Persistent", NULL};
  gbx_tag_t tag = {"k", "v"};
  CHECK_OK(gbx_topic_create(c, "t", &ta, &tag, 1, NULL, &e));
  mk_topic(c, "t2");
  tu_create_queue(c, "env", NULL);
  tu_create_queue(c, "raw", NULL);
  tu_create_queue(c, "body", NULL);
  w->s_env = sub(c, "t", "env", "{\"color\":[\"red\"]}", ATTR, 0);
  w->s_raw = sub(c, "t", "raw", NULL, 0, 1);
  w->s_body = sub(c, "t", "body", "{\"order\":{\"paid\":[true]}}", BODY, 1);
  gbx_free(sub(c, "t2", "raw", NULL, 0, 1));
  assert_int_equal(pub(c, "t", "{\"order\":{\"paid\":true}}", "color=String:red", "S", w->mid_env),
                   3);
  assert_int_equal(pub(c, "t", "{\"order\":{\"paid\":false}}", "color=String:blue", NULL, NULL), 1);
}

static void world_check(gbx_client_t *c, const world_t *w) {
  gbx_topic_list_t tl;
  gbx_topic_info_t ti;
  gbx_sub_info_t si;
  gbx_sub_list_t l;
  CHECK_OK(gbx_topic_list(c, NULL, 0, NULL, &tl, &e));
  assert_int_equal(tl.count, 2);
  assert_string_equal(tl.names[0], "t");
  assert_string_equal(tl.names[1], "t2");
  gbx_queue_list_free(&tl);
  CHECK_OK(gbx_topic_get_attrs(c, "t", &ti, &e));
  assert_string_equal(ti.display_name, "Persistent");
  assert_int_equal(ti.subscriptions, 3);
  assert_int_equal(ti.ntags, 1);
  gbx_topic_info_free(&ti);
  CHECK_OK(gbx_sub_list(c, NULL, NULL, NULL, &l, &e));
  assert_int_equal(l.count, 4);
  gbx_sub_list_free(&l);
  CHECK_OK(gbx_sub_get_attrs(c, w->s_env, &si, &e));
  assert_string_equal(si.queue, "env");
  assert_string_equal(si.attrs.filter_policy, "{\"color\":[\"red\"]}");
  assert_int_equal(si.attrs.raw, 0);
  gbx_sub_info_free(&si);
  CHECK_OK(gbx_sub_get_attrs(c, w->s_body, &si, &e));
  assert_int_equal(si.attrs.filter_scope, GBX_FILTER_SCOPE_BODY);
  assert_int_equal(si.attrs.raw, 1);
  gbx_sub_info_free(&si);
  /* Subscribing again still returns the same ids. */
  char *again = sub(c, "t", "body", "{\"order\":{\"paid\":[true]}}", BODY, 1);
  assert_string_equal(again, w->s_body);
  gbx_free(again);

  /* The copies delivered before are there; the envelope renders the same. */
  attrset_t as;
  attrs_parse("color=String:red", &as);
  gbx_message_t *m = recv_n(c, "env", 1);
  check_envelope(m, w->mid_env, "t", "{\"order\":{\"paid\":true}}", "S", &as);
  gbx_messages_free(m);
  m = recv_n(c, "raw", 2);
  gbx_messages_free(m);
  m = recv_n(c, "body", 1);
  assert_string_equal((const char *)m->body, "{\"order\":{\"paid\":true}}");
  gbx_messages_free(m);

  /* The compiled filters work after recovery. */
  assert_int_equal(pub(c, "t", "{\"order\":{\"paid\":true}}", "color=String:blue", NULL, NULL), 2);
  assert_int_equal(pub(c, "t", "x", "color=String:red", NULL, NULL), 2);
  assert_int_equal(pub(c, "t2", "y", NULL, NULL, NULL), 1);
}

/* ---- kill -9 amid a stream of publishes -------------------------------------------------- */

typedef struct streamer {
  gbx_client_t *c;
  atomic_int acked_n;
  uint8_t acked[STREAM_MAX];
  int err;           /* the error that stopped it */
  int bad_delivered; /* 1 + the first publish whose delivered count was wrong, or 0 */
} streamer_t;

/* Publishes "<k>" with attribute parity=even|odd to topic "stream", keeping
 * STREAM_WINDOW in flight, until STREAM_MAX or the first error. Request
 * ids grow by one per request of a client, so a reply's id names its k. */
static void *stream_main(void *arg) {
  streamer_t *s = arg;
  gbx_msg_attr_t even = {"parity", "String", "even", 4}, odd = {"parity", "String", "odd", 3};
  gbx_error_t err;
  uint64_t first = 0;
  int next = 0, outstanding = 0;
  for (;;) {
    while (outstanding < STREAM_WINDOW && next < STREAM_MAX) {
      char body[16];
      snprintf(body, sizeof body, "%d", next);
      uint64_t id = gbx_submit_publish(s->c, "stream", body, strlen(body), next % 2 ? &odd : &even,
                                       1, NULL, &err);
      if (!id) {
        s->err = err.code;
        return NULL;
      }
      if (next == 0)
        first = id;
      next++;
      outstanding++;
    }
    if (!outstanding)
      return NULL;
    gbx_reply_t *r;
    uint32_t d = 0;
    if (gbx_collect(s->c, &r, &err)) {
      s->err = err.code;
      return NULL;
    }
    uint64_t k = gbx_reply_id(r) - first;
    int rc = gbx_reply_publish(r, NULL, &d, &err);
    gbx_reply_free(r);
    if (rc) {
      s->err = rc;
      return NULL;
    }
    if (d != (k % 2 ? 2u : 3u) && !s->bad_delivered)
      s->bad_delivered = (int)k + 1;
    s->acked[k] = 1;
    atomic_fetch_add(&s->acked_n, 1);
    outstanding--;
  }
}

/* Marks in have[] (counting) the numbered bodies queue q holds. */
static void stream_collect(gbx_client_t *c, const char *q, uint8_t *have) {
  for (;;) {
    gbx_message_t *m;
    size_t n;
    CHECK_OK(gbx_queue_receive(c, q, RECV_MAX, 600, 0, &m, &n, &e));
    if (!n)
      return;
    for (size_t i = 0; i < n; i++) {
      char *end;
      long k = strtol((const char *)m[i].body, &end, 10);
      if (*end || k < 0 || k >= STREAM_MAX)
        fail_msg("queue %s holds an unexpected body '%s'", q, (const char *)m[i].body);
      if (++have[k] > 1)
        fail_msg("queue %s holds publish %ld twice", q, k);
    }
    gbx_messages_free(m);
  }
}

/* kill -9 while publishes to three subscribers (one filtered) are in
 * flight: after the restart every acknowledged publish is in every queue
 * it matched, and every publish is in all of its matching queues or in
 * none (fan-out is atomic). */
static void test_kill9_during_publish_stream(void **state) {
  tu_fx_t *f = *state;
  static streamer_t s;
  static uint8_t qa[STREAM_MAX], qb[STREAM_MAX], qc[STREAM_MAX];
  pthread_t th;
  memset(&s, 0, sizeof s);
  mk_topic(f->c, "stream");
  tu_create_queue(f->c, "sa", NULL);
  tu_create_queue(f->c, "sb", NULL);
  tu_create_queue(f->c, "sc", NULL);
  gbx_free(sub(f->c, "stream", "sa", NULL, 0, 1));
  gbx_free(sub(f->c, "stream", "sb", NULL, 0, 1));
  gbx_free(sub(f->c, "stream", "sc", "{\"parity\":[\"even\"]}", ATTR, 1));
  s.c = tu_connect(f->ts);
  assert_int_equal(pthread_create(&th, NULL, stream_main, &s), 0);
  uint64_t deadline = tu_wall_ms() + STREAM_DEADLINE_MS;
  while (atomic_load(&s.acked_n) < STREAM_KILL_AFTER && tu_wall_ms() < deadline && !s.err) {
    struct timespec t = {0, 1000000L};
    nanosleep(&t, NULL);
  }
  ts_kill9(f->ts);
  pthread_join(th, NULL);
  gbx_close(s.c);
  int acked = atomic_load(&s.acked_n);
  if (acked < STREAM_KILL_AFTER)
    fail_msg("only %d publishes acknowledged before the kill (error %s)", acked,
             gbx_errname(s.err));
  if (s.bad_delivered)
    fail_msg("publish %d reported a wrong delivered count", s.bad_delivered - 1);
  if (acked == STREAM_MAX)
    fail_msg("the stream ended before the kill; raise STREAM_MAX");

  ts_start_again(f->ts);
  gbx_client_t *c = tu_reconnect(f);
  memset(qa, 0, sizeof qa);
  memset(qb, 0, sizeof qb);
  memset(qc, 0, sizeof qc);
  stream_collect(c, "sa", qa);
  stream_collect(c, "sb", qb);
  stream_collect(c, "sc", qc);
  int present = 0;
  for (int k = 0; k < STREAM_MAX; k++) {
    int even = k % 2 == 0;
    if (s.acked[k] && (!qa[k] || !qb[k] || qc[k] != even))
      fail_msg("acknowledged publish %d: in sa %d, sb %d, sc %d (even %d)", k, qa[k], qb[k], qc[k],
               even);
    if (qa[k] != qb[k] || qc[k] != (qa[k] && even))
      fail_msg("publish %d is in some of its queues only: sa %d, sb %d, sc %d (even %d)", k, qa[k],
               qb[k], qc[k], even);
    present += qa[k];
  }
  /* Unacknowledged ones may have made it, at most a window's worth. */
  assert_in_range(present, acked, acked + STREAM_WINDOW);
}

static void world_free(world_t *w) {
  gbx_free(w->s_env);
  gbx_free(w->s_raw);
  gbx_free(w->s_body);
}

static void test_restart_clean(void **state) {
  tu_fx_t *f = *state;
  world_t w;
  world_build(f->c, &w);
  gbx_close(f->c);
  f->c = NULL;
  ts_restart(f->ts);
  world_check(tu_reconnect(f), &w);
  world_free(&w);
}

static void test_restart_kill9(void **state) {
  tu_fx_t *f = *state;
  world_t w;
  world_build(f->c, &w);
  ts_kill9(f->ts);
  ts_start_again(f->ts);
  world_check(tu_reconnect(f), &w);
  /* And once more, after the publishes made since. */
  ts_kill9(f->ts);
  ts_start_again(f->ts);
  gbx_client_t *c = tu_reconnect(f);
  assert_int_equal(depth(c, "raw"), 2 + 2 + 1);
  assert_int_equal(depth(c, "env"), 1 + 1);
  world_free(&w);
}

/* A queue deleted before a restart keeps its subscription across it. */
static void test_restart_keeps_subscription_of_deleted_queue(void **state) {
  tu_fx_t *f = *state;
  mk_topic(f->c, "t");
  tu_create_queue(f->c, "gone", NULL);
  char *s = sub(f->c, "t", "gone", "{\"a\":[\"b\"]}", ATTR, 1);
  CHECK_OK(gbx_queue_delete(f->c, "gone", &e));
  ts_kill9(f->ts);
  ts_start_again(f->ts);
  gbx_client_t *c = tu_reconnect(f);
  gbx_sub_list_t l;
  CHECK_OK(gbx_sub_list(c, NULL, "gone", NULL, &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.subs[0].id, s);
  gbx_sub_list_free(&l);
  assert_int_equal(pub(c, "t", "skip", "a=String:b", NULL, NULL), 0);
  tu_create_queue(c, "gone", NULL);
  assert_int_equal(pub(c, "t", "back", "a=String:b", NULL, NULL), 1);
  assert_int_equal(pub(c, "t", "filtered", "a=String:c", NULL, NULL), 0);
  gbx_free(s);
}

/* ---- the CLI ------------------------------------------------------------------------------------ */

static cJSON *cli_json(gbx_testserver_t *ts, const char *args) {
  static char out[64 * 1024];
  int rc = ts_cli(ts, args, out, sizeof out);
  if (rc != 0)
    fail_msg("gearbox %s: exit %d", args, rc);
  cJSON *j = cJSON_Parse(out);
  if (!j)
    fail_msg("gearbox %s: output is not JSON: %s", args, out);
  return j;
}

static void test_cli_topics(void **state) {
  tu_fx_t *f = *state;
  char out[4096];
  cJSON *j;
  tu_create_queue(f->c, "cq", NULL);
  tu_create_queue(f->c, "cr", NULL);

  j = cli_json(f->ts, "topic create ct --display-name 'CLI topic' --json");
  assert_string_equal(jstr(j, "topic"), "ct");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "created")));
  cJSON_Delete(j);
  assert_int_equal(ts_cli(f->ts, "topic create ct --display-name 'CLI topic'", out, sizeof out), 0);
  assert_non_null(strstr(out, "already exists"));
  assert_int_equal(ts_cli(f->ts, "topic create ct --display-name other", out, sizeof out), 1);
  assert_int_equal(ts_cli(f->ts, "topic create", out, sizeof out), 2);

  j = cli_json(f->ts, "topic list --json");
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "topics");
  assert_int_equal(cJSON_GetArraySize(arr), 1);
  assert_string_equal(cJSON_GetArrayItem(arr, 0)->valuestring, "ct");
  cJSON_Delete(j);
  assert_int_equal(ts_cli(f->ts, "topic list c", out, sizeof out), 0);
  assert_string_equal(out, "ct\n");

  /* subscribe prints the id, the same id twice. */
  char id[64], id2[64];
  assert_int_equal(ts_cli(f->ts, "subscribe ct cq", id, sizeof id), 0);
  assert_int_equal(strlen(id), 37);
  assert_int_equal(ts_cli(f->ts, "subscribe ct cq", id2, sizeof id2), 0);
  assert_string_equal(id, id2);
  id[36] = '\0';
  assert_true(tu_is_uuid(id));
  j = cli_json(f->ts, "subscribe ct cr --raw --filter '{\"c\":[\"x\"]}' --filter-scope attributes "
                      "--json");
  char rid[64];
  snprintf(rid, sizeof rid, "%s", jstr(j, "subscription"));
  cJSON_Delete(j);
  assert_int_equal(ts_cli(f->ts, "subscribe ct cr --filter '{\"c\":[\"y\"]}'", out, sizeof out), 1);
  assert_int_equal(ts_cli(f->ts, "subscribe ct cq --filter-scope everything", out, sizeof out), 2);
  assert_int_equal(ts_cli(f->ts, "subscribe ct cx --filter 'nope'", out, sizeof out), 1);

  gbx_sub_info_t si;
  CHECK_OK(gbx_sub_get_attrs(f->c, rid, &si, &e));
  assert_string_equal(si.queue, "cr");
  assert_string_equal(si.attrs.filter_policy, "{\"c\":[\"x\"]}");
  assert_int_equal(si.attrs.raw, 1);
  gbx_sub_info_free(&si);

  j = cli_json(f->ts, "subscriptions --topic ct --json");
  arr = cJSON_GetObjectItemCaseSensitive(j, "subscriptions");
  assert_int_equal(cJSON_GetArraySize(arr), 2);
  cJSON_Delete(j);
  assert_int_equal(ts_cli(f->ts, "subscriptions --queue cr", out, sizeof out), 0);
  assert_non_null(strstr(out, rid));
  assert_non_null(strstr(out, "ct -> cr"));
  assert_null(strstr(out, "cq"));

  /* publish: the id on stdout; --json adds delivered. */
  assert_int_equal(ts_cli(f->ts, "publish ct 'hello cli' --subject Hi", out, sizeof out), 0);
  out[36] = '\0';
  assert_true(tu_is_uuid(out));
  j = cli_json(f->ts, "publish ct body2 --attr c=String:x --attr n=Number:5 --json");
  assert_true(tu_is_uuid(jstr(j, "mid")));
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "delivered")->valueint, 2);
  char mid2[GBX_MID_BUFSZ];
  snprintf(mid2, sizeof mid2, "%s", jstr(j, "mid"));
  cJSON_Delete(j);
  assert_int_equal(ts_cli(f->ts, "publish nope x", out, sizeof out), 1);
  assert_int_equal(ts_cli(f->ts, "publish ct x --attr bad", out, sizeof out), 2);
  gbx_message_t *m = recv_n(f->c, "cq", 2);
  gbx_messages_free(m);
  m = recv_n(f->c, "cr", 1);
  assert_string_equal((const char *)m->body, "body2");
  assert_int_equal(m->nattrs, 2);
  gbx_messages_free(m);

  j = cli_json(f->ts, "topic stats ct --json");
  const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(j, "attributes");
  assert_string_equal(jstr(attrs, "DisplayName"), "CLI topic");
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(attrs, "SubscriptionsConfirmed")->valueint, 2);
  cJSON_Delete(j);
  assert_int_equal(ts_cli(f->ts, "topic stats ct", out, sizeof out), 0);
  assert_non_null(strstr(out, "DisplayName"));
  assert_non_null(strstr(out, "CLI topic"));

  char args[128];
  snprintf(args, sizeof args, "unsubscribe %s --json", rid);
  j = cli_json(f->ts, args);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "unsubscribed")));
  cJSON_Delete(j);
  snprintf(args, sizeof args, "unsubscribe %s", rid);
  assert_int_equal(ts_cli(f->ts, args, out, sizeof out), 1);
  assert_int_equal(ts_cli(f->ts, "topic delete ct", out, sizeof out), 0);
  assert_string_equal(out, "deleted topic ct\n");
  assert_int_equal(ts_cli(f->ts, "topic delete ct", out, sizeof out), 1);
  j = cli_json(f->ts, "subscriptions --json");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "subscriptions")), 0);
  cJSON_Delete(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup, tu_teardown)
      T(test_topic_create_idempotent_list_delete),
      T(test_subscribe_idempotent_and_exists),
      T(test_sub_list_pages),
      T(test_publish_fanout_raw_and_envelope),
      T(test_publish_errors),
      T(test_filter_attributes),
      T(test_filter_body),
      T(test_filter_mixed_subscriptions),
      T(test_bad_filter_policy),
      T(test_queue_delete_keeps_subscription),
      T(test_topic_delete_drops_subscriptions),
      T(test_publish_batch),
      T(test_publish_limits_raw),
      T(test_pipelined_publishes),
      T(test_large_publish_identical_copies),
      T(test_restart_clean),
      T(test_restart_kill9),
      T(test_restart_keeps_subscription_of_deleted_queue),
      T(test_kill9_during_publish_stream),
      T(test_cli_topics),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
