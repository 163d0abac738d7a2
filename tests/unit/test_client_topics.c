/* test_client_topics.c - libgearbox's topic and subscription calls without a
 * server: each test connects a client to one end of a socketpair, writes the
 * reply frames by hand on the other end (well-formed, or broken in one way
 * each) and reads back the request the client wrote to check its fields.
 *
 * Needs gearbox_static on the link line (tests/CMakeLists.txt links every
 * test_client* test with it). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client_fake.h"
#include "gbx_codec.h"
#include "gearbox.h"

#define SUB1 "16fd2706-8baf-433b-82eb-8c7fada847da"
#define SUB2 "886313e1-3b8a-4372-9b90-0c9aee199e5d"

/* ---- topics ---------------------------------------------------------------------------- */

static void test_topic_create_fields(void **state) {
  fixture_t *f = *state;
  gbx_topic_attrs_t ta = {GBX_TA_DISPLAY_NAME | GBX_TA_POLICY, "Orders", "{\"Version\":1}"};
  gbx_tag_t tags[2] = {{"team", "billing"}, {"env", "prod"}};
  gbx_error_t err;
  int created = -1;
  fb_t fb;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_kv_bool(pk, "created", 1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_create(f->c, "orders", &ta, tags, 2, &created, &err), GBX_E_OK);
  assert_int_equal(created, 1);
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_TOPIC_CREATE, 3);
  assert_field_str(m, "t", "orders");
  const msgpack_object *attrs = gbx_map_get(m, "attrs");
  assert_non_null(attrs);
  assert_int_equal(attrs->via.map.size, 2);
  assert_field_str(attrs, "DisplayName", "Orders");
  assert_field_str(attrs, "Policy", "{\"Version\":1}");
  const msgpack_object *tg = gbx_map_get(m, "tags");
  assert_non_null(tg);
  assert_int_equal(tg->via.map.size, 2);
  assert_field_str(tg, "env", "prod");

  /* Only the flagged attribute goes out; "" is sent as a value (clears). */
  ta = (gbx_topic_attrs_t){GBX_TA_DISPLAY_NAME, "", "ignored"};
  pk = fb_begin(&fb, 2, 0, NULL, 1);
  gbx_pack_kv_bool(pk, "created", 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_create(f->c, "orders", &ta, NULL, 0, &created, &err), GBX_E_OK);
  assert_int_equal(created, 0);
  m = read_request(f);
  assert_request(m, GBX_OP_TOPIC_CREATE, 2);
  attrs = gbx_map_get(m, "attrs");
  assert_int_equal(attrs->via.map.size, 1);
  assert_field_str(attrs, "DisplayName", "");
  assert_null(gbx_map_get(m, "tags"));
}

static void test_topic_create_defaults_and_error(void **state) {
  fixture_t *f = *state;
  gbx_error_t err;
  gbx_topic_attrs_t none = {0};
  fb_t fb;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_kv_bool(pk, "created", 1);
  fb_send(&fb, f->peer);
  /* created may be NULL; attrs with no flag set send no attrs map. */
  assert_int_equal(gbx_topic_create(f->c, "t1", &none, NULL, 3, NULL, NULL), GBX_E_OK);
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_TOPIC_CREATE, 1);
  assert_null(gbx_map_get(m, "attrs"));

  fb_begin(&fb, 2, GBX_E_TOPIC_EXISTS, "topic 't1' exists with another DisplayName", 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_create(f->c, "t1", NULL, NULL, 0, NULL, &err), GBX_E_TOPIC_EXISTS);
  assert_string_equal(err.message, "topic 't1' exists with another DisplayName");

  /* A reply without "created" is malformed; the connection stays open. */
  send_ok(f->peer, 3);
  assert_int_equal(gbx_topic_create(f->c, "t1", NULL, NULL, 0, NULL, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "created"));
  assert_true(gbx_is_open(f->c));
}

static void test_topic_delete_and_set_attrs(void **state) {
  fixture_t *f = *state;
  gbx_error_t err;
  gbx_topic_attrs_t ta = {GBX_TA_POLICY, NULL, NULL};
  fb_t fb;

  send_ok(f->peer, 1);
  assert_int_equal(gbx_topic_delete(f->c, "orders", &err), GBX_E_OK);
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_TOPIC_DELETE, 1);
  assert_field_str(m, "t", "orders");

  send_ok(f->peer, 2);
  assert_int_equal(gbx_topic_set_attrs(f->c, "orders", &ta, &err), GBX_E_OK);
  m = read_request(f);
  assert_request(m, GBX_OP_TOPIC_SET_ATTRS, 2);
  assert_field_str(m, "t", "orders");
  assert_field_str(gbx_map_get(m, "attrs"), "Policy", ""); /* NULL is sent as "" */

  fb_begin(&fb, 3, GBX_E_TOPIC_NOT_FOUND, "topic 'nope' does not exist", 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_delete(f->c, "nope", &err), GBX_E_TOPIC_NOT_FOUND);
  assert_string_equal(err.message, "topic 'nope' does not exist");
}

static void test_topic_list(void **state) {
  fixture_t *f = *state;
  gbx_topic_list_t l;
  gbx_error_t err;
  fb_t fb;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 2);
  gbx_pack_cstr(pk, "topics");
  msgpack_pack_array(pk, 2);
  gbx_pack_cstr(pk, "news");
  gbx_pack_cstr(pk, "news-eu");
  gbx_pack_kv_cstr(pk, "next", "news-eu");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_list(f->c, "news", 2, "a", &l, &err), GBX_E_OK);
  assert_int_equal(l.count, 2);
  assert_string_equal(l.names[0], "news");
  assert_string_equal(l.names[1], "news-eu");
  assert_string_equal(l.next, "news-eu");
  gbx_queue_list_free(&l);
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_TOPIC_LIST, 3);
  assert_field_str(m, "prefix", "news");
  assert_int_equal(field_u64(m, "max"), 2);
  assert_field_str(m, "next", "a");

  /* The last page has no token; no arguments send no fields. */
  pk = fb_begin(&fb, 2, 0, NULL, 1);
  gbx_pack_cstr(pk, "topics");
  msgpack_pack_array(pk, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_list(f->c, NULL, 0, NULL, &l, &err), GBX_E_OK);
  assert_int_equal(l.count, 0);
  assert_null(l.next);
  gbx_queue_list_free(&l);
  assert_request(read_request(f), GBX_OP_TOPIC_LIST, 0);

  /* A name that is not a topic name, or a queue list's key: malformed. */
  pk = fb_begin(&fb, 3, 0, NULL, 1);
  gbx_pack_cstr(pk, "topics");
  msgpack_pack_array(pk, 1);
  gbx_pack_cstr(pk, "bad name!");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_list(f->c, NULL, 0, NULL, &l, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "topics[0]"));
  assert_null(l.names);
  pk = fb_begin(&fb, 4, 0, NULL, 1);
  gbx_pack_cstr(pk, "queues");
  msgpack_pack_array(pk, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_list(f->c, NULL, 0, NULL, &l, &err), GBX_E_PROTOCOL);
  assert_true(gbx_is_open(f->c));
}

static void test_topic_get_attrs(void **state) {
  fixture_t *f = *state;
  gbx_topic_info_t info;
  gbx_error_t err;
  fb_t fb;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 2);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 6);
  gbx_pack_kv_cstr(pk, "DisplayName", "Orders");
  gbx_pack_kv_cstr(pk, "Policy", "");
  gbx_pack_kv_u64(pk, "SubscriptionsConfirmed", 3);
  gbx_pack_kv_u64(pk, "SubscriptionsPending", 0);
  gbx_pack_kv_u64(pk, "SubscriptionsDeleted", 0);
  gbx_pack_kv_u64(pk, "CreatedTimestamp", 1700000000);
  gbx_pack_cstr(pk, "tags");
  msgpack_pack_map(pk, 1);
  gbx_pack_kv_cstr(pk, "env", "prod");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_get_attrs(f->c, "orders", &info, &err), GBX_E_OK);
  assert_string_equal(info.display_name, "Orders");
  assert_string_equal(info.policy, "");
  assert_int_equal(info.subscriptions, 3);
  assert_int_equal(info.created_s, 1700000000);
  assert_int_equal(info.nall, 6);
  assert_string_equal(info.all[3].name, "SubscriptionsPending");
  assert_null(info.all[3].str);
  assert_int_equal(info.ntags, 1);
  assert_string_equal(info.tags[0].key, "env");
  assert_string_equal(info.tags[0].value, "prod");
  gbx_topic_info_free(&info);
  gbx_topic_info_free(&info); /* idempotent */
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_TOPIC_GET_ATTRS, 1);
  assert_field_str(m, "t", "orders");

  /* Absent attributes read as "" and 0. */
  pk = fb_begin(&fb, 2, 0, NULL, 2);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 0);
  gbx_pack_cstr(pk, "tags");
  msgpack_pack_map(pk, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_get_attrs(f->c, "orders", &info, &err), GBX_E_OK);
  assert_string_equal(info.display_name, "");
  assert_string_equal(info.policy, "");
  assert_int_equal(info.subscriptions, 0);
  gbx_topic_info_free(&info);

  /* A known attribute of the wrong type, in both directions. */
  pk = fb_begin(&fb, 3, 0, NULL, 2);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 1);
  gbx_pack_kv_u64(pk, "DisplayName", 7);
  gbx_pack_cstr(pk, "tags");
  msgpack_pack_map(pk, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_get_attrs(f->c, "orders", &info, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "DisplayName"));
  assert_null(info.all);
  pk = fb_begin(&fb, 4, 0, NULL, 2);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 1);
  gbx_pack_kv_cstr(pk, "SubscriptionsConfirmed", "3");
  gbx_pack_cstr(pk, "tags");
  msgpack_pack_map(pk, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_get_attrs(f->c, "orders", &info, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "SubscriptionsConfirmed"));
  /* Tags are required. */
  pk = fb_begin(&fb, 5, 0, NULL, 1);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_topic_get_attrs(f->c, "orders", &info, &err), GBX_E_PROTOCOL);
  assert_true(gbx_is_open(f->c));
}

/* ---- subscriptions ------------------------------------------------------------------------ */

static void test_subscribe_fields(void **state) {
  fixture_t *f = *state;
  gbx_sub_attrs_t sa = {GBX_SA_FILTER_POLICY | GBX_SA_FILTER_SCOPE | GBX_SA_RAW,
                        "{\"color\":[\"red\"]}", GBX_FILTER_SCOPE_BODY, 1};
  gbx_error_t err;
  char *id = NULL;
  fb_t fb;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_kv_cstr(pk, "sub", SUB1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_subscribe(f->c, "orders", "billing", &sa, &id, &err), GBX_E_OK);
  assert_string_equal(id, SUB1);
  gbx_free(id);
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_SUBSCRIBE, 3);
  assert_field_str(m, "t", "orders");
  assert_field_str(m, "q", "billing");
  const msgpack_object *attrs = gbx_map_get(m, "attrs");
  assert_int_equal(attrs->via.map.size, 3);
  assert_field_str(attrs, "FilterPolicy", "{\"color\":[\"red\"]}");
  assert_field_str(attrs, "FilterPolicyScope", "MessageBody");
  assert_int_equal(field_bool(attrs, "RawMessageDelivery"), 1);

  /* Defaults: no attrs map at all; the id may be discarded. */
  pk = fb_begin(&fb, 2, 0, NULL, 1);
  gbx_pack_kv_cstr(pk, "sub", SUB2);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_subscribe(f->c, "orders", "audit", NULL, NULL, &err), GBX_E_OK);
  assert_request(read_request(f), GBX_OP_SUBSCRIBE, 2);

  /* The attribute scope and raw off are sent as such when flagged. */
  sa = (gbx_sub_attrs_t){GBX_SA_FILTER_SCOPE | GBX_SA_RAW, NULL, GBX_FILTER_SCOPE_ATTRIBUTES, 0};
  pk = fb_begin(&fb, 3, 0, NULL, 1);
  gbx_pack_kv_cstr(pk, "sub", SUB2);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_subscribe(f->c, "orders", "audit", &sa, NULL, &err), GBX_E_OK);
  attrs = gbx_map_get(read_request(f), "attrs");
  assert_int_equal(attrs->via.map.size, 2);
  assert_field_str(attrs, "FilterPolicyScope", "MessageAttributes");
  assert_int_equal(field_bool(attrs, "RawMessageDelivery"), 0);
}

static void test_subscribe_errors(void **state) {
  fixture_t *f = *state;
  gbx_sub_attrs_t bad = {GBX_SA_FILTER_SCOPE, NULL, 7, 0};
  gbx_error_t err;
  char *id = (char *)1;
  fb_t fb;

  /* A scope outside the enum is refused before anything is sent. */
  assert_int_equal(gbx_subscribe(f->c, "t", "q", &bad, &id, &err), GBX_E_OUT_OF_RANGE);
  assert_null(id);
  assert_int_equal(gbx_sub_set_attrs(f->c, SUB1, &bad, &err), GBX_E_OUT_OF_RANGE);
  assert_int_equal(gbx_pending(f->c), 0);
  assert_int_equal(gbx_flush(f->c, NULL), GBX_E_OK);
  assert_false(readable(f->peer));

  /* Server errors come back with their message; ids were not consumed. */
  fb_begin(&fb, 1, GBX_E_SUBSCRIPTION_EXISTS, "queue 'q' is subscribed with another FilterPolicy",
           0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_subscribe(f->c, "t", "q", NULL, &id, &err), GBX_E_SUBSCRIPTION_EXISTS);
  assert_string_equal(err.message, "queue 'q' is subscribed with another FilterPolicy");
  assert_null(id);
  fb_begin(&fb, 2, GBX_E_BAD_FILTER_POLICY, "FilterPolicy: key 'a' needs an array", 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_subscribe(f->c, "t", "q", NULL, &id, &err), GBX_E_BAD_FILTER_POLICY);
  assert_int_equal(err.code, GBX_E_BAD_FILTER_POLICY);

  /* Malformed ids: missing, empty, not a str, too long. */
  send_ok(f->peer, 3);
  assert_int_equal(gbx_subscribe(f->c, "t", "q", NULL, &id, &err), GBX_E_PROTOCOL);
  assert_null(id);
  msgpack_packer *pk = fb_begin(&fb, 4, 0, NULL, 1);
  gbx_pack_kv_cstr(pk, "sub", "");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_subscribe(f->c, "t", "q", NULL, &id, &err), GBX_E_PROTOCOL);
  assert_null(id);
  pk = fb_begin(&fb, 5, 0, NULL, 1);
  gbx_pack_kv_u64(pk, "sub", 5);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_subscribe(f->c, "t", "q", NULL, &id, &err), GBX_E_PROTOCOL);
  static char longid[300];
  memset(longid, 'a', sizeof longid - 1);
  pk = fb_begin(&fb, 6, 0, NULL, 1);
  gbx_pack_kv_cstr(pk, "sub", longid);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_subscribe(f->c, "t", "q", NULL, &id, &err), GBX_E_PROTOCOL);
  assert_true(gbx_is_open(f->c));
}

static void test_unsubscribe_and_set_attrs(void **state) {
  fixture_t *f = *state;
  gbx_sub_attrs_t sa = {GBX_SA_FILTER_POLICY, "", 0, 0};
  gbx_error_t err;
  fb_t fb;

  send_ok(f->peer, 1);
  assert_int_equal(gbx_unsubscribe(f->c, SUB1, &err), GBX_E_OK);
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_UNSUBSCRIBE, 1);
  assert_field_str(m, "sub", SUB1);

  send_ok(f->peer, 2);
  assert_int_equal(gbx_sub_set_attrs(f->c, SUB1, &sa, &err), GBX_E_OK);
  m = read_request(f);
  assert_request(m, GBX_OP_SUB_SET_ATTRS, 2);
  assert_field_str(m, "sub", SUB1);
  const msgpack_object *attrs = gbx_map_get(m, "attrs");
  assert_int_equal(attrs->via.map.size, 1);
  assert_field_str(attrs, "FilterPolicy", "");

  fb_begin(&fb, 3, GBX_E_SUBSCRIPTION_NOT_FOUND, NULL, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_unsubscribe(f->c, "nope", &err), GBX_E_SUBSCRIPTION_NOT_FOUND);
  assert_string_equal(err.message, gbx_strerror(GBX_E_SUBSCRIPTION_NOT_FOUND));
}

/* Packs one element of a sub_list reply. */
static void pack_sub(msgpack_packer *pk, const char *id, const char *t, const char *q) {
  msgpack_pack_map(pk, 3);
  gbx_pack_kv_cstr(pk, "sub", id);
  gbx_pack_kv_cstr(pk, "t", t);
  gbx_pack_kv_cstr(pk, "q", q);
}

static void test_sub_list(void **state) {
  fixture_t *f = *state;
  gbx_sub_list_t l;
  gbx_error_t err;
  fb_t fb;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 2);
  gbx_pack_cstr(pk, "subs");
  msgpack_pack_array(pk, 2);
  pack_sub(pk, SUB1, "orders", "billing");
  pack_sub(pk, SUB2, "orders", "audit");
  gbx_pack_kv_cstr(pk, "next", "tok-1");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_list(f->c, "orders", NULL, NULL, &l, &err), GBX_E_OK);
  assert_int_equal(l.count, 2);
  assert_string_equal(l.subs[0].id, SUB1);
  assert_string_equal(l.subs[0].topic, "orders");
  assert_string_equal(l.subs[0].queue, "billing");
  assert_string_equal(l.subs[1].id, SUB2);
  assert_string_equal(l.subs[1].queue, "audit");
  assert_string_equal(l.next, "tok-1");
  gbx_sub_list_free(&l);
  gbx_sub_list_free(&l); /* idempotent */
  gbx_sub_list_free(NULL);
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_SUB_LIST, 1);
  assert_field_str(m, "t", "orders");

  pk = fb_begin(&fb, 2, 0, NULL, 1);
  gbx_pack_cstr(pk, "subs");
  msgpack_pack_array(pk, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_list(f->c, NULL, "billing", "tok-1", &l, &err), GBX_E_OK);
  assert_int_equal(l.count, 0);
  assert_null(l.next);
  gbx_sub_list_free(&l);
  m = read_request(f);
  assert_request(m, GBX_OP_SUB_LIST, 2);
  assert_field_str(m, "q", "billing");
  assert_field_str(m, "next", "tok-1");

  pk = fb_begin(&fb, 3, 0, NULL, 1);
  gbx_pack_cstr(pk, "subs");
  msgpack_pack_array(pk, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_list(f->c, NULL, NULL, NULL, &l, &err), GBX_E_OK);
  gbx_sub_list_free(&l);
  assert_request(read_request(f), GBX_OP_SUB_LIST, 0);
}

static void test_sub_list_malformed(void **state) {
  fixture_t *f = *state;
  gbx_sub_list_t l;
  gbx_error_t err;
  fb_t fb;
  msgpack_packer *pk;

  pk = fb_begin(&fb, 1, 0, NULL, 1); /* an element without its queue */
  gbx_pack_cstr(pk, "subs");
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 2);
  gbx_pack_kv_cstr(pk, "sub", SUB1);
  gbx_pack_kv_cstr(pk, "t", "orders");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_list(f->c, NULL, NULL, NULL, &l, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "'q'"));
  assert_null(l.subs);

  pk = fb_begin(&fb, 2, 0, NULL, 1); /* a queue that is not a name */
  gbx_pack_cstr(pk, "subs");
  msgpack_pack_array(pk, 2);
  pack_sub(pk, SUB1, "orders", "billing");
  pack_sub(pk, SUB2, "orders", "no/slashes");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_list(f->c, NULL, NULL, NULL, &l, &err), GBX_E_PROTOCOL);

  pk = fb_begin(&fb, 3, 0, NULL, 1); /* an element that is not a map */
  gbx_pack_cstr(pk, "subs");
  msgpack_pack_array(pk, 1);
  gbx_pack_cstr(pk, SUB1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_list(f->c, NULL, NULL, NULL, &l, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "subs[0]"));

  pk = fb_begin(&fb, 4, 0, NULL, 1); /* no array */
  gbx_pack_kv_u64(pk, "subs", 1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_list(f->c, NULL, NULL, NULL, &l, &err), GBX_E_PROTOCOL);

  pk = fb_begin(&fb, 5, 0, NULL, 2); /* an empty paging token */
  gbx_pack_cstr(pk, "subs");
  msgpack_pack_array(pk, 0);
  gbx_pack_kv_cstr(pk, "next", "");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_list(f->c, NULL, NULL, NULL, &l, &err), GBX_E_PROTOCOL);
  assert_true(gbx_is_open(f->c));
}

static void test_sub_get_attrs(void **state) {
  fixture_t *f = *state;
  gbx_sub_info_t info;
  gbx_error_t err;
  fb_t fb;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 5);
  gbx_pack_kv_cstr(pk, "TopicName", "orders");
  gbx_pack_kv_cstr(pk, "QueueName", "billing");
  gbx_pack_kv_cstr(pk, "FilterPolicy", "{\"a\":[1]}");
  gbx_pack_kv_cstr(pk, "FilterPolicyScope", "MessageBody");
  gbx_pack_kv_bool(pk, "RawMessageDelivery", 1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_get_attrs(f->c, SUB1, &info, &err), GBX_E_OK);
  assert_string_equal(info.topic, "orders");
  assert_string_equal(info.queue, "billing");
  assert_int_equal(info.attrs.set, GBX_SA_FILTER_POLICY | GBX_SA_FILTER_SCOPE | GBX_SA_RAW);
  assert_string_equal(info.attrs.filter_policy, "{\"a\":[1]}");
  assert_int_equal(info.attrs.filter_scope, GBX_FILTER_SCOPE_BODY);
  assert_int_equal(info.attrs.raw, 1);
  gbx_sub_info_free(&info);
  gbx_sub_info_free(&info);
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_SUB_GET_ATTRS, 1);
  assert_field_str(m, "sub", SUB1);

  /* Only the names: the rest reads as defaults with no flag set. */
  pk = fb_begin(&fb, 2, 0, NULL, 1);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 3);
  gbx_pack_kv_cstr(pk, "TopicName", "orders");
  gbx_pack_kv_cstr(pk, "QueueName", "audit");
  gbx_pack_kv_cstr(pk, "FilterPolicyScope", "MessageAttributes");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_get_attrs(f->c, SUB2, &info, &err), GBX_E_OK);
  assert_int_equal(info.attrs.set, GBX_SA_FILTER_SCOPE);
  assert_string_equal(info.attrs.filter_policy, "");
  assert_int_equal(info.attrs.filter_scope, GBX_FILTER_SCOPE_ATTRIBUTES);
  assert_int_equal(info.attrs.raw, 0);
  gbx_sub_info_free(&info);

  /* An unknown scope, a missing queue name, raw delivery as text. */
  pk = fb_begin(&fb, 3, 0, NULL, 1);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 3);
  gbx_pack_kv_cstr(pk, "TopicName", "orders");
  gbx_pack_kv_cstr(pk, "QueueName", "audit");
  gbx_pack_kv_cstr(pk, "FilterPolicyScope", "Everything");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_get_attrs(f->c, SUB2, &info, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "Everything"));
  pk = fb_begin(&fb, 4, 0, NULL, 1);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 1);
  gbx_pack_kv_cstr(pk, "TopicName", "orders");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_get_attrs(f->c, SUB2, &info, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "QueueName"));
  pk = fb_begin(&fb, 5, 0, NULL, 1);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 3);
  gbx_pack_kv_cstr(pk, "TopicName", "orders");
  gbx_pack_kv_cstr(pk, "QueueName", "audit");
  gbx_pack_kv_cstr(pk, "RawMessageDelivery", "true");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_sub_get_attrs(f->c, SUB2, &info, &err), GBX_E_PROTOCOL);
  assert_null(info.block_);
  assert_true(gbx_is_open(f->c));
}

/* ---- publish ------------------------------------------------------------------------------ */

static void test_publish_fields(void **state) {
  fixture_t *f = *state;
  gbx_msg_attr_t attrs[2] = {{"color", "String", "red", 3}, {"blob", "Binary", "\0\1", 2}};
  char mid[GBX_MID_BUFSZ];
  uint32_t delivered = 99;
  gbx_error_t err;
  fb_t fb;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 2);
  gbx_pack_kv_cstr(pk, "mid", MID1);
  gbx_pack_kv_u64(pk, "delivered", 3);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_publish(f->c, "orders", "hel\0lo", 6, attrs, 2, "Hi", mid, &delivered, &err),
                   GBX_E_OK);
  assert_string_equal(mid, MID1);
  assert_int_equal(delivered, 3);
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_PUBLISH, 4);
  assert_field_str(m, "t", "orders");
  assert_field_str(m, "subject", "Hi");
  const msgpack_object *body = gbx_map_get(m, "body");
  assert_int_equal(body->type, MSGPACK_OBJECT_BIN);
  assert_int_equal(body->via.bin.size, 6);
  assert_memory_equal(body->via.bin.ptr, "hel\0lo", 6);
  gbx_attr_t a[GBX_MAX_ATTRS];
  uint32_t na = 0;
  assert_int_equal(gbx_attrs_decode(gbx_map_get(m, "attrs"), a, &na, NULL), GBX_E_OK);
  assert_int_equal(na, 2);
  assert_int_equal(a[1].value_len, 2);
  assert_memory_equal(a[1].value, "\0\1", 2);

  /* No subject, no attributes, outputs not wanted; 0 deliveries is success. */
  pk = fb_begin(&fb, 2, 0, NULL, 2);
  gbx_pack_kv_cstr(pk, "mid", MID2);
  gbx_pack_kv_u64(pk, "delivered", 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_publish(f->c, "orders", "", 0, NULL, 0, NULL, NULL, NULL, &err), GBX_E_OK);
  m = read_request(f);
  assert_request(m, GBX_OP_PUBLISH, 2);
  assert_null(gbx_map_get(m, "subject"));
  assert_null(gbx_map_get(m, "attrs"));
}

static void test_publish_errors(void **state) {
  fixture_t *f = *state;
  gbx_msg_attr_t attrs[GBX_MAX_ATTRS + 1];
  char mid[GBX_MID_BUFSZ];
  uint32_t delivered = 0;
  gbx_error_t err;
  fb_t fb;
  msgpack_packer *pk;
  for (size_t i = 0; i < GBX_MAX_ATTRS + 1; i++)
    attrs[i] = (gbx_msg_attr_t){"a", "String", "v", 1};

  /* Refused locally, nothing sent. */
  assert_int_equal(gbx_publish(f->c, "t", "x", 1, attrs, GBX_MAX_ATTRS + 1, NULL, mid, NULL, &err),
                   GBX_E_BAD_ATTRIBUTE);
  assert_int_equal(gbx_publish(f->c, "t", NULL, 3, NULL, 0, NULL, mid, NULL, &err), GBX_E_BAD_TYPE);
  assert_int_equal(
      gbx_publish(f->c, "t", "x", (size_t)GBX_HARD_MAX_FRAME + 1, NULL, 0, NULL, mid, NULL, &err),
      GBX_E_FRAME_TOO_LARGE);
  assert_int_equal(gbx_pending(f->c), 0);
  assert_int_equal(gbx_flush(f->c, NULL), GBX_E_OK);
  assert_false(readable(f->peer));

  fb_begin(&fb, 1, GBX_E_TOPIC_NOT_FOUND, "topic 'nope' does not exist", 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_publish(f->c, "nope", "x", 1, NULL, 0, NULL, mid, &delivered, &err),
                   GBX_E_TOPIC_NOT_FOUND);
  assert_string_equal(err.message, "topic 'nope' does not exist");

  pk = fb_begin(&fb, 2, 0, NULL, 1); /* delivered missing */
  gbx_pack_kv_cstr(pk, "mid", MID1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_publish(f->c, "t", "x", 1, NULL, 0, NULL, mid, &delivered, &err),
                   GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "delivered"));
  pk = fb_begin(&fb, 3, 0, NULL, 2); /* delivered beyond 32 bits */
  gbx_pack_kv_cstr(pk, "mid", MID1);
  gbx_pack_kv_u64(pk, "delivered", (uint64_t)UINT32_MAX + 1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_publish(f->c, "t", "x", 1, NULL, 0, NULL, mid, &delivered, &err),
                   GBX_E_PROTOCOL);
  pk = fb_begin(&fb, 4, 0, NULL, 2); /* mid missing */
  gbx_pack_kv_u64(pk, "delivered", 1);
  gbx_pack_kv_u64(pk, "x", 1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_publish(f->c, "t", "x", 1, NULL, 0, NULL, mid, &delivered, &err),
                   GBX_E_PROTOCOL);
  assert_true(gbx_is_open(f->c));
  send_ok(f->peer, 5);
  assert_int_equal(gbx_ping(f->c, NULL), GBX_E_OK);
}

/* Packs a publish batch reply: entry 0 ok (MID1, 2 queues), entry 1 failed,
 * entry 2 ok (MID2, 0 queues). */
static void send_batch_reply(int fd, uint64_t id) {
  fb_t fb;
  msgpack_packer *pk = fb_begin(&fb, id, 0, NULL, 1);
  gbx_pack_cstr(pk, "results");
  msgpack_pack_array(pk, 3);
  msgpack_pack_map(pk, 4);
  gbx_pack_kv_cstr(pk, "eid", "a");
  gbx_pack_kv_u64(pk, "err", 0);
  gbx_pack_kv_cstr(pk, "mid", MID1);
  gbx_pack_kv_u64(pk, "delivered", 2);
  msgpack_pack_map(pk, 3);
  gbx_pack_kv_cstr(pk, "eid", "b");
  gbx_pack_kv_u64(pk, "err", GBX_E_BAD_ATTRIBUTE);
  gbx_pack_kv_cstr(pk, "msg", "attribute 'n': not a number");
  msgpack_pack_map(pk, 3);
  gbx_pack_kv_u64(pk, "err", 0);
  gbx_pack_kv_cstr(pk, "mid", MID2);
  gbx_pack_kv_u64(pk, "delivered", 0);
  fb_send(&fb, fd);
}

static void check_batch_results(const gbx_publish_result_t *res) {
  assert_int_equal(res[0].code, GBX_E_OK);
  assert_string_equal(res[0].mid, MID1);
  assert_int_equal(res[0].delivered, 2);
  assert_int_equal(res[1].code, GBX_E_BAD_ATTRIBUTE);
  assert_string_equal(res[1].message, "attribute 'n': not a number");
  assert_int_equal(res[1].delivered, 0);
  assert_int_equal(res[2].code, GBX_E_OK);
  assert_string_equal(res[2].mid, MID2);
  assert_int_equal(res[2].delivered, 0);
}

static void test_publish_batch(void **state) {
  fixture_t *f = *state;
  gbx_msg_attr_t na = {"n", "Number", "x", 1};
  gbx_publish_entry_t e[3] = {{"a", "one", 3, NULL, 0, "S1"},
                              {"b", "two", 3, &na, 1, NULL},
                              {NULL, "three", 5, NULL, 0, NULL}};
  gbx_publish_result_t res[GBX_MAX_PUBLISH_BATCH + 1];
  gbx_error_t err;

  send_batch_reply(f->peer, 1);
  assert_int_equal(gbx_publish_batch(f->c, "orders", e, 3, res, &err), GBX_E_OK);
  check_batch_results(res);
  const msgpack_object *m = read_request(f);
  assert_request(m, GBX_OP_PUBLISH_BATCH, 2);
  assert_field_str(m, "t", "orders");
  const msgpack_object *ents = gbx_map_get(m, "entries");
  assert_int_equal(ents->type, MSGPACK_OBJECT_ARRAY);
  assert_int_equal(ents->via.array.size, 3);
  const msgpack_object *e0 = &ents->via.array.ptr[0], *e1 = &ents->via.array.ptr[1],
                       *e2 = &ents->via.array.ptr[2];
  assert_int_equal(e0->via.map.size, 3);
  assert_field_str(e0, "eid", "a");
  assert_field_str(e0, "body", "one");
  assert_field_str(e0, "subject", "S1");
  assert_int_equal(e1->via.map.size, 3);
  assert_non_null(gbx_map_get(e1, "attrs"));
  assert_null(gbx_map_get(e1, "subject"));
  assert_int_equal(e2->via.map.size, 1);
  assert_field_str(e2, "body", "three");

  /* Entry counts are checked locally: 0, and one past SNS's 10. */
  gbx_publish_entry_t many[GBX_MAX_PUBLISH_BATCH + 1];
  for (size_t i = 0; i < GBX_MAX_PUBLISH_BATCH + 1; i++)
    many[i] = (gbx_publish_entry_t){NULL, "x", 1, NULL, 0, NULL};
  assert_int_equal(gbx_publish_batch(f->c, "orders", many, 0, res, &err), GBX_E_EMPTY_BATCH);
  assert_int_equal(gbx_publish_batch(f->c, "orders", NULL, 3, res, &err), GBX_E_EMPTY_BATCH);
  assert_int_equal(gbx_publish_batch(f->c, "orders", many, GBX_MAX_PUBLISH_BATCH + 1, res, &err),
                   GBX_E_TOO_MANY_ENTRIES);
  many[4].nattrs = GBX_MAX_ATTRS + 1;
  many[4].attrs = &na;
  assert_int_equal(gbx_publish_batch(f->c, "orders", many, 5, res, &err), GBX_E_BAD_ATTRIBUTE);
  assert_int_equal(gbx_pending(f->c), 0);
  assert_int_equal(gbx_flush(f->c, NULL), GBX_E_OK);
  assert_false(readable(f->peer));

  /* A successful entry without its count, and too few results: malformed. */
  fb_t fb;
  msgpack_packer *pk = fb_begin(&fb, 2, 0, NULL, 1);
  gbx_pack_cstr(pk, "results");
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 2);
  gbx_pack_kv_u64(pk, "err", 0);
  gbx_pack_kv_cstr(pk, "mid", MID1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_publish_batch(f->c, "orders", e, 1, res, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "delivered"));
  send_batch_reply(f->peer, 3);
  assert_int_equal(gbx_publish_batch(f->c, "orders", e, 2, res, &err), GBX_E_PROTOCOL);
  assert_true(gbx_is_open(f->c));
}

/* ---- pipelined publish ---------------------------------------------------------------------- */

static void test_pipelined_publish(void **state) {
  fixture_t *f = *state;
  gbx_publish_entry_t e[3] = {
      {"a", "1", 1, NULL, 0, NULL}, {"b", "2", 1, NULL, 0, NULL}, {NULL, "3", 1, NULL, 0, NULL}};
  gbx_publish_result_t res[3];
  char mid[GBX_MID_BUFSZ];
  uint32_t delivered = 0;
  gbx_reply_t *r[4];
  gbx_error_t err;
  fb_t fb;

  uint64_t a = gbx_submit_publish(f->c, "orders", "x", 1, NULL, 0, "S", &err);
  uint64_t b = gbx_submit_publish_batch(f->c, "orders", e, 3, &err);
  uint64_t c = gbx_submit_publish(f->c, "nope", "y", 1, NULL, 0, NULL, &err);
  uint64_t d = gbx_submit_ping(f->c, &err);
  assert_int_equal(a, 1);
  assert_int_equal(b, 2);
  assert_int_equal(c, 3);
  assert_int_equal(d, 4);
  assert_false(readable(f->peer)); /* small requests stay buffered */
  assert_int_equal(gbx_submit_publish_batch(f->c, "orders", e, 0, &err), 0);
  assert_int_equal(err.code, GBX_E_EMPTY_BATCH);
  assert_int_equal(gbx_flush(f->c, NULL), GBX_E_OK);
  assert_int_equal(field_u64(read_request(f), "op"), GBX_OP_PUBLISH);
  assert_int_equal(field_u64(read_request(f), "op"), GBX_OP_PUBLISH_BATCH);
  assert_int_equal(field_u64(read_request(f), "op"), GBX_OP_PUBLISH);
  assert_int_equal(field_u64(read_request(f), "op"), GBX_OP_PING);

  /* Replies in another order than the requests. */
  send_ok(f->peer, d);
  fb_begin(&fb, c, GBX_E_TOPIC_NOT_FOUND, "topic 'nope' does not exist", 0);
  fb_send(&fb, f->peer);
  send_batch_reply(f->peer, b);
  msgpack_packer *pk = fb_begin(&fb, a, 0, NULL, 2);
  gbx_pack_kv_cstr(pk, "mid", MID2);
  gbx_pack_kv_u64(pk, "delivered", 7);
  fb_send(&fb, f->peer);
  for (int i = 0; i < 4; i++)
    assert_int_equal(gbx_collect(f->c, &r[i], &err), GBX_E_OK);
  assert_int_equal(gbx_reply_id(r[0]), d);
  assert_int_equal(gbx_reply_id(r[3]), a);

  assert_int_equal(gbx_reply_op(r[3]), GBX_OP_PUBLISH);
  assert_int_equal(gbx_reply_publish(r[3], mid, &delivered, &err), GBX_E_OK);
  assert_string_equal(mid, MID2);
  assert_int_equal(delivered, 7);
  assert_int_equal(gbx_reply_publish(r[3], NULL, NULL, &err), GBX_E_OK);
  assert_int_equal(gbx_reply_op(r[2]), GBX_OP_PUBLISH_BATCH);
  assert_int_equal(gbx_reply_publish_results(r[2], res, 3, &err), GBX_E_OK);
  check_batch_results(res);
  /* The error reply gives its own error; the wrong accessor is refused. */
  assert_int_equal(gbx_reply_publish(r[1], mid, &delivered, &err), GBX_E_TOPIC_NOT_FOUND);
  assert_string_equal(err.message, "topic 'nope' does not exist");
  assert_int_equal(gbx_reply_publish(r[0], mid, &delivered, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "ping"));
  assert_int_equal(gbx_reply_publish_results(r[3], res, 1, &err), GBX_E_PROTOCOL);
  assert_int_equal(gbx_reply_publish(NULL, mid, &delivered, &err), GBX_E_PROTOCOL);
  for (int i = 0; i < 4; i++)
    gbx_reply_free(r[i]);
  assert_int_equal(gbx_pending(f->c), 0);
}

/* A publish of a large body in the pipeline goes out at once (the buffer
 * passed the flush threshold) and arrives intact. */
static void test_pipelined_publish_large_flushes(void **state) {
  fixture_t *f = *state;
  enum { BODY = 64 * 1024 };
  static char body[BODY];
  static uint8_t got[BODY];
  for (size_t i = 0; i < sizeof body; i++)
    body[i] = (char)(i * 7);
  assert_int_equal(gbx_submit_publish(f->c, "t", body, 1000, NULL, 0, NULL, NULL), 1);
  assert_false(readable(f->peer));
  assert_int_equal(gbx_submit_publish(f->c, "t", body, BODY, NULL, 0, NULL, NULL), 2);
  assert_true(readable(f->peer));
  read_request(f);
  const msgpack_object *m = read_request(f);
  const msgpack_object *b = gbx_map_get(m, "body");
  assert_int_equal(b->via.bin.size, BODY);
  memcpy(got, b->via.bin.ptr, BODY);
  assert_memory_equal(got, body, BODY);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_topic_create_fields),
      T(test_topic_create_defaults_and_error),
      T(test_topic_delete_and_set_attrs),
      T(test_topic_list),
      T(test_topic_get_attrs),
      T(test_subscribe_fields),
      T(test_subscribe_errors),
      T(test_unsubscribe_and_set_attrs),
      T(test_sub_list),
      T(test_sub_list_malformed),
      T(test_sub_get_attrs),
      T(test_publish_fields),
      T(test_publish_errors),
      T(test_publish_batch),
      T(test_pipelined_publish),
      T(test_pipelined_publish_large_flushes),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
