/* test_client.c - libgearbox without a server: each test connects a client
 * to one end of a socketpair and plays the server on the other end by hand,
 * writing reply frames built here (well-formed or broken in one way each)
 * and reading back the requests the client wrote. Also covers the CLI's
 * argument helpers (client/cli_args.h).
 *
 * Needs gearbox_static and gearbox_cli_args on the link line. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
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

#include "cli_args.h"
#include "client_fake.h"
#include "gbx_codec.h"
#include "gearbox.h"

/* ---- round trips ----------------------------------------------------------------- */

static void test_ping_writes_request_and_reads_reply(void **state) {
  fixture_t *f = *state;
  gbx_error_t err;
  uint8_t buf[256];
  gbx_doc_t d;

  send_ok(f->peer, 1); /* ids start at 1 */
  assert_int_equal(gbx_ping(f->c, &err), GBX_E_OK);
  read_frame(f->peer, buf, sizeof buf, &d);
  assert_int_equal(field_u64(&d.root, "op"), GBX_OP_PING);
  assert_int_equal(field_u64(&d.root, "id"), 1);
  gbx_doc_free(&d);
  assert_int_equal(gbx_pending(f->c), 0);
}

static void test_send_request_fields_and_mid(void **state) {
  fixture_t *f = *state;
  gbx_error_t err;
  uint8_t buf[1024];
  gbx_doc_t d;
  char mid[GBX_MID_BUFSZ];
  gbx_msg_attr_t attrs[2] = {{"color", "String", "red", 3}, {"raw", "Binary", "\0\1", 2}};
  fb_t fb;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_kv_cstr(pk, "mid", MID1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_send(f->c, "orders", "hello", 5, attrs, 2, 7, mid, &err), GBX_E_OK);
  assert_string_equal(mid, MID1);

  read_frame(f->peer, buf, sizeof buf, &d);
  assert_int_equal(field_u64(&d.root, "op"), GBX_OP_SEND);
  assert_field_str(&d.root, "q", "orders");
  assert_field_str(&d.root, "body", "hello");
  assert_int_equal(field_u64(&d.root, "delay"), 7);
  gbx_attr_t a[GBX_MAX_ATTRS];
  uint32_t na = 0;
  assert_int_equal(gbx_attrs_decode(gbx_map_get(&d.root, "attrs"), a, &na, NULL), GBX_E_OK);
  assert_int_equal(na, 2);
  assert_int_equal(a[1].value_len, 2);
  assert_memory_equal(a[1].value, "\0\1", 2);
  gbx_doc_free(&d);
}

static void test_send_default_delay_omits_field(void **state) {
  fixture_t *f = *state;
  uint8_t buf[256];
  gbx_doc_t d;
  fb_t fb;
  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_kv_cstr(pk, "mid", MID1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_send(f->c, "q", "", 0, NULL, 0, -1, NULL, NULL), GBX_E_OK);
  read_frame(f->peer, buf, sizeof buf, &d);
  assert_null(gbx_map_get(&d.root, "delay"));
  assert_null(gbx_map_get(&d.root, "attrs"));
  assert_field_str(&d.root, "body", "");
  gbx_doc_free(&d);
}

static void test_server_error_keeps_connection(void **state) {
  fixture_t *f = *state;
  gbx_error_t err;
  fb_t fb;
  fb_begin(&fb, 1, GBX_E_QUEUE_NOT_FOUND, "queue 'nope' does not exist", 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_purge(f->c, "nope", NULL, &err), GBX_E_QUEUE_NOT_FOUND);
  assert_int_equal(err.code, GBX_E_QUEUE_NOT_FOUND);
  assert_string_equal(err.message, "queue 'nope' does not exist");
  assert_true(gbx_is_open(f->c));
  /* Without msg the table's message stands in. */
  fb_begin(&fb, 2, GBX_E_QUEUE_EXISTS, NULL, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_create(f->c, "x", NULL, NULL, 0, NULL, &err), GBX_E_QUEUE_EXISTS);
  assert_string_equal(err.message, gbx_strerror(GBX_E_QUEUE_EXISTS));
  send_ok(f->peer, 3);
  assert_int_equal(gbx_ping(f->c, NULL), GBX_E_OK);
}

static void test_create_with_attrs_and_tags(void **state) {
  fixture_t *f = *state;
  uint8_t buf[1024];
  gbx_doc_t d;
  int created = -1;
  fb_t fb;
  gbx_queue_attrs_t qa = {0};
  gbx_tag_t tags[1] = {{"team", "billing"}};
  qa.set = GBX_QA_VISIBILITY | GBX_QA_DLQ | GBX_QA_MAX_RECEIVES;
  qa.visibility_timeout = 60;
  qa.dead_letter_queue = "orders-dlq";
  qa.max_receive_count = 5;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_kv_bool(pk, "created", 1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_create(f->c, "orders", &qa, tags, 1, &created, NULL), GBX_E_OK);
  assert_int_equal(created, 1);
  read_frame(f->peer, buf, sizeof buf, &d);
  const msgpack_object *attrs = gbx_map_get(&d.root, "attrs");
  assert_non_null(attrs);
  assert_int_equal(attrs->via.map.size, 3);
  uint64_t v;
  assert_int_equal(gbx_get_u64(attrs, "VisibilityTimeout", 1, 0, 99, &v, NULL, NULL), 0);
  assert_int_equal(v, 60);
  assert_int_equal(gbx_get_u64(attrs, "MaxReceiveCount", 1, 0, 99, &v, NULL, NULL), 0);
  assert_int_equal(v, 5);
  const msgpack_object *tg = gbx_map_get(&d.root, "tags");
  assert_non_null(tg);
  assert_int_equal(tg->via.map.size, 1);
  gbx_doc_free(&d);
}

static void test_receive_decodes_messages(void **state) {
  fixture_t *f = *state;
  gbx_error_t err;
  gbx_message_t *msgs = NULL;
  size_t n = 0;
  fb_t fb;

  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_cstr(pk, "msgs");
  msgpack_pack_array(pk, 2);
  msgpack_pack_map(pk, 7);
  gbx_pack_kv_cstr(pk, "mid", MID1);
  gbx_pack_kv_cstr(pk, "rh", "AAAA-bbbb");
  gbx_pack_kv_bin(pk, "body", "bin\0ary", 7);
  gbx_pack_kv_u64(pk, "rc", 1);
  gbx_pack_kv_u64(pk, "sent", 1700000000000ull);
  gbx_pack_kv_u64(pk, "first", 1700000000500ull);
  gbx_pack_cstr(pk, "attrs");
  gbx_attr_t a[2] = {{"n", 1, "Number", 6, "-12.5e3", 7}, {"s", 1, "String.x", 8, "v", 1}};
  gbx_attrs_pack(pk, a, 2);
  msgpack_pack_map(pk, 7);
  gbx_pack_kv_cstr(pk, "mid", MID2);
  gbx_pack_kv_cstr(pk, "rh", "CCCC");
  gbx_pack_kv_str(pk, "body", "text", 4); /* bytes may come as str */
  gbx_pack_kv_u64(pk, "rc", 4);
  gbx_pack_kv_u64(pk, "sent", 1);
  gbx_pack_kv_u64(pk, "first", 2);
  gbx_pack_kv_cstr(pk, "src", "orders");
  fb_send(&fb, f->peer);

  assert_int_equal(gbx_queue_receive(f->c, "orders-dlq", 10, 30, 0, &msgs, &n, &err), GBX_E_OK);
  assert_int_equal(n, 2);
  assert_string_equal(msgs[0].mid, MID1);
  assert_string_equal(msgs[0].receipt, "AAAA-bbbb");
  assert_int_equal(msgs[0].body_len, 7);
  assert_memory_equal(msgs[0].body, "bin\0ary", 7);
  assert_int_equal(msgs[0].body[7], 0);
  assert_int_equal(msgs[0].receive_count, 1);
  assert_int_equal(msgs[0].sent_ms, 1700000000000ull);
  assert_int_equal(msgs[0].first_receive_ms, 1700000000500ull);
  assert_null(msgs[0].source_queue);
  assert_int_equal(msgs[0].nattrs, 2);
  assert_string_equal(msgs[0].attrs[0].name, "n");
  assert_string_equal(msgs[0].attrs[0].type, "Number");
  assert_string_equal(msgs[0].attrs[0].value, "-12.5e3");
  assert_string_equal(msgs[0].attrs[1].type, "String.x");
  assert_string_equal(msgs[1].mid, MID2);
  assert_string_equal((const char *)msgs[1].body, "text");
  assert_int_equal(msgs[1].nattrs, 0);
  assert_string_equal(msgs[1].source_queue, "orders");
  gbx_messages_free(msgs);
}

static void test_receive_empty(void **state) {
  fixture_t *f = *state;
  gbx_message_t *msgs = (gbx_message_t *)1;
  size_t n = 99;
  fb_t fb;
  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_cstr(pk, "msgs");
  msgpack_pack_array(pk, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_receive(f->c, "q", 0, -1, -1, &msgs, &n, NULL), GBX_E_OK);
  assert_null(msgs);
  assert_int_equal(n, 0);
}

static void test_get_attrs_decodes_everything(void **state) {
  fixture_t *f = *state;
  gbx_queue_info_t info;
  fb_t fb;
  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 2);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 6);
  gbx_pack_kv_u64(pk, "VisibilityTimeout", 45);
  gbx_pack_kv_cstr(pk, "DeadLetterQueue", "dlq");
  gbx_pack_kv_cstr(pk, "Policy", "");
  gbx_pack_kv_u64(pk, "ApproximateNumberOfMessages", 12);
  gbx_pack_kv_u64(pk, "QueueBytes", 3400);
  gbx_pack_kv_u64(pk, "SomethingNew", 9); /* a newer server's attribute */
  gbx_pack_cstr(pk, "tags");
  msgpack_pack_map(pk, 1);
  gbx_pack_kv_cstr(pk, "env", "prod");
  fb_send(&fb, f->peer);

  assert_int_equal(gbx_queue_get_attrs(f->c, "orders", &info, NULL), GBX_E_OK);
  assert_int_equal(info.attrs.set, GBX_QA_VISIBILITY | GBX_QA_DLQ | GBX_QA_POLICY);
  assert_int_equal(info.attrs.visibility_timeout, 45);
  assert_string_equal(info.attrs.dead_letter_queue, "dlq");
  assert_string_equal(info.attrs.policy, "");
  assert_int_equal(info.visible, 12);
  assert_int_equal(info.bytes, 3400);
  assert_int_equal(info.nall, 6);
  assert_string_equal(info.all[5].name, "SomethingNew");
  assert_null(info.all[5].str);
  assert_int_equal(info.all[5].num, 9);
  assert_int_equal(info.ntags, 1);
  assert_string_equal(info.tags[0].key, "env");
  assert_string_equal(info.tags[0].value, "prod");
  gbx_queue_info_free(&info);
  gbx_queue_info_free(&info); /* idempotent */
}

static void test_list_stats_redrive_batch(void **state) {
  fixture_t *f = *state;
  gbx_queue_list_t l;
  gbx_stats_t st;
  gbx_redrive_status_t rs;
  gbx_batch_result_t res[2];
  gbx_send_entry_t e[2] = {{"a", "x", 1, NULL, 0, -1}, {"b", "y", 1, NULL, 0, 3}};
  fb_t fb;
  msgpack_packer *pk;

  pk = fb_begin(&fb, 1, 0, NULL, 2);
  gbx_pack_cstr(pk, "queues");
  msgpack_pack_array(pk, 2);
  gbx_pack_cstr(pk, "a1");
  gbx_pack_cstr(pk, "a2");
  gbx_pack_kv_cstr(pk, "next", "a2");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_list(f->c, "a", 2, NULL, &l, NULL), GBX_E_OK);
  assert_int_equal(l.count, 2);
  assert_string_equal(l.names[1], "a2");
  assert_string_equal(l.next, "a2");
  gbx_queue_list_free(&l);

  pk = fb_begin(&fb, 2, 0, NULL, 2);
  gbx_pack_cstr(pk, "queues");
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 6);
  gbx_pack_kv_cstr(pk, "q", "a1");
  gbx_pack_kv_u64(pk, "visible", 5);
  gbx_pack_kv_u64(pk, "inflight", 2);
  gbx_pack_kv_u64(pk, "delayed", 1);
  gbx_pack_kv_u64(pk, "oldest_age", 30);
  gbx_pack_kv_u64(pk, "bytes", 99);
  gbx_pack_cstr(pk, "broker");
  msgpack_pack_map(pk, 3);
  gbx_pack_kv_u64(pk, "messages", 8);
  gbx_pack_cstr(pk, "msgs_per_sync");
  msgpack_pack_double(pk, 12.5);
  gbx_pack_kv_u64(pk, "commit_p99_us", 800);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_stats(f->c, NULL, &st, NULL), GBX_E_OK);
  assert_int_equal(st.nqueues, 1);
  assert_string_equal(st.queues[0].name, "a1");
  assert_int_equal(st.queues[0].inflight, 2);
  assert_int_equal(st.queues[0].oldest_age_s, 30);
  assert_int_equal(st.broker.messages, 8);
  assert_true(st.broker.msgs_per_sync > 12.4 && st.broker.msgs_per_sync < 12.6);
  assert_int_equal(st.broker.commit_p99_us, 800);
  assert_int_equal(st.broker.uptime_s, 0); /* not reported */
  gbx_stats_free(&st);

  pk = fb_begin(&fb, 3, 0, NULL, 4);
  gbx_pack_kv_cstr(pk, "state", "running");
  gbx_pack_kv_u64(pk, "moved", 3);
  gbx_pack_kv_u64(pk, "total", 10);
  gbx_pack_kv_cstr(pk, "dst", "orders");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_redrive_status(f->c, "dlq", &rs, NULL), GBX_E_OK);
  assert_string_equal(rs.state, "running");
  assert_int_equal(rs.moved, 3);
  assert_int_equal(rs.total, 10);
  assert_string_equal(rs.dst, "orders");
  assert_string_equal(rs.message, "");

  pk = fb_begin(&fb, 4, 0, NULL, 1);
  gbx_pack_cstr(pk, "results");
  msgpack_pack_array(pk, 2);
  msgpack_pack_map(pk, 3);
  gbx_pack_kv_cstr(pk, "eid", "a");
  gbx_pack_kv_u64(pk, "err", 0);
  gbx_pack_kv_cstr(pk, "mid", MID1);
  msgpack_pack_map(pk, 3);
  gbx_pack_kv_cstr(pk, "eid", "b");
  gbx_pack_kv_u64(pk, "err", GBX_E_MESSAGE_TOO_LONG);
  gbx_pack_kv_cstr(pk, "msg", "too long");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_send_batch(f->c, "q", e, 2, res, NULL), GBX_E_OK);
  assert_int_equal(res[0].code, 0);
  assert_string_equal(res[0].mid, MID1);
  assert_int_equal(res[1].code, GBX_E_MESSAGE_TOO_LONG);
  assert_string_equal(res[1].message, "too long");
}

/* ---- malformed replies ------------------------------------------------------------ */

/* Each case: a reply broken in one way, the code the call must return and
 * whether the connection must survive (framing intact). */
static void expect_ping_fails(fixture_t *f, int code, int stays_open) {
  gbx_error_t err;
  assert_int_equal(gbx_ping(f->c, &err), code);
  assert_int_equal(err.code, code);
  assert_true(err.message[0] != '\0');
  assert_int_equal(gbx_is_open(f->c), stays_open);
  if (!stays_open) {
    assert_int_equal(gbx_ping(f->c, &err), GBX_E_CLOSED);
    assert_non_null(strstr(err.message, gbx_errname(code)));
  }
}

/* Answers the next ping with payload p[0..n) in a correctly sized frame:
 * a reply broken inside, which must fail the ping with GBX_E_PROTOCOL and
 * close the connection. */
static void expect_broken_reply(fixture_t *f, const uint8_t *p, size_t n) {
  send_raw_frame(f->peer, (uint32_t)n, p, n);
  expect_ping_fails(f, GBX_E_PROTOCOL, 0);
}

static void test_bad_id_type(void **state) {
  static const uint8_t p[] = {0x82, 0xa2, 'i', 'd', 0xa1, '1', 0xa3, 'e', 'r', 'r', 0x00};
  expect_broken_reply(*state, p, sizeof p);
}

static void test_missing_err(void **state) {
  static const uint8_t p[] = {0x81, 0xa2, 'i', 'd', 0x01};
  expect_broken_reply(*state, p, sizeof p);
}

static void test_truncated_msgpack(void **state) {
  /* A str declaring 200 bytes with 3 present, inside a correctly sized frame. */
  static const uint8_t p[] = {0x82, 0xa2, 'i',  'd', 0x01, 0xa3, 'e',
                              'r',  'r',  0xd9, 200, 'a',  'b',  'c'};
  expect_broken_reply(*state, p, sizeof p);
}

static void test_not_a_map_and_reserved_byte(void **state) {
  static const uint8_t p[] = {0x92, 0x01, 0x02};
  expect_broken_reply(*state, p, sizeof p);
}

static void test_reserved_byte(void **state) {
  static const uint8_t p[] = {0x81, 0xa2, 'i', 'd', 0xc1};
  expect_broken_reply(*state, p, sizeof p);
}

static void test_huge_frame_header(void **state) {
  fixture_t *f = *state;
  /* Only the header is sent: the client must refuse it before allocating or
   * waiting for 2 GiB that will never come. */
  send_raw_frame(f->peer, 0x7fffffffu, NULL, 0);
  expect_ping_fails(f, GBX_E_PROTOCOL, 0);
}

static void test_zero_length_frame(void **state) {
  fixture_t *f = *state;
  send_raw_frame(f->peer, 0, NULL, 0);
  expect_ping_fails(f, GBX_E_PROTOCOL, 0);
}

static void test_huge_array_count(void **state) {
  fixture_t *f = *state;
  /* msgs declares 2^32-1 elements in a tiny frame. */
  static const uint8_t p[] = {0x83, 0xa2, 'i', 'd', 0x01, 0xa3, 'e',  'r',  'r',  0x00,
                              0xa4, 'm',  's', 'g', 's',  0xdd, 0xff, 0xff, 0xff, 0xff};
  send_raw_frame(f->peer, sizeof p, p, sizeof p);
  gbx_message_t *m;
  size_t n;
  assert_int_equal(gbx_queue_receive(f->c, "q", 1, -1, 0, &m, &n, NULL), GBX_E_PROTOCOL);
  assert_false(gbx_is_open(f->c));
}

static void test_unknown_reply_id(void **state) {
  fixture_t *f = *state;
  send_ok(f->peer, 42);
  expect_ping_fails(f, GBX_E_PROTOCOL, 0);
}

static void test_id0_error_closes_with_server_code(void **state) {
  fixture_t *f = *state;
  fb_t fb;
  fb_begin(&fb, 0, GBX_E_FRAME_TOO_LARGE, "frame of 9000000 bytes", 0);
  fb_send(&fb, f->peer);
  expect_ping_fails(f, GBX_E_FRAME_TOO_LARGE, 0);
}

static void test_peer_closes(void **state) {
  fixture_t *f = *state;
  close(f->peer);
  f->peer = -1;
  expect_ping_fails(f, GBX_E_IO, 0);
}

static void test_timeout(void **state) {
  fixture_t *f = *state;
  gbx_set_timeout(f->c, 50);
  expect_ping_fails(f, GBX_E_TIMEOUT, 0);
}

/* Well framed but with a field of the wrong type: reported, and the
 * connection stays usable. */
static void test_wrong_field_types_keep_connection(void **state) {
  fixture_t *f = *state;
  gbx_error_t err;
  char mid[GBX_MID_BUFSZ];
  gbx_message_t *m;
  size_t n;
  gbx_queue_info_t info;
  fb_t fb;
  msgpack_packer *pk;

  pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_kv_u64(pk, "mid", 5);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_send(f->c, "q", "b", 1, NULL, 0, -1, mid, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "mid"));

  pk = fb_begin(&fb, 2, 0, NULL, 1); /* mid longer than a message id */
  gbx_pack_kv_cstr(pk, "mid", MID1 "-and-more");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_send(f->c, "q", "b", 1, NULL, 0, -1, mid, &err), GBX_E_PROTOCOL);

  pk = fb_begin(&fb, 3, 0, NULL, 1); /* a message without its receipt handle */
  gbx_pack_cstr(pk, "msgs");
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 5);
  gbx_pack_kv_cstr(pk, "mid", MID1);
  gbx_pack_kv_bin(pk, "body", "x", 1);
  gbx_pack_kv_u64(pk, "rc", 1);
  gbx_pack_kv_u64(pk, "sent", 1);
  gbx_pack_kv_u64(pk, "first", 1);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_receive(f->c, "q", 1, -1, 0, &m, &n, &err), GBX_E_PROTOCOL);
  assert_non_null(strstr(err.message, "rh"));
  assert_null(m);

  pk = fb_begin(&fb, 4, 0, NULL, 1); /* an attribute with an invalid type */
  gbx_pack_cstr(pk, "msgs");
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 7);
  gbx_pack_kv_cstr(pk, "mid", MID1);
  gbx_pack_kv_cstr(pk, "rh", "r");
  gbx_pack_kv_bin(pk, "body", "x", 1);
  gbx_pack_kv_u64(pk, "rc", 1);
  gbx_pack_kv_u64(pk, "sent", 1);
  gbx_pack_kv_u64(pk, "first", 1);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 1);
  gbx_pack_cstr(pk, "a");
  msgpack_pack_map(pk, 2);
  gbx_pack_kv_cstr(pk, "t", "Integer");
  gbx_pack_kv_cstr(pk, "v", "1");
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_receive(f->c, "q", 1, -1, 0, &m, &n, &err), GBX_E_PROTOCOL);

  pk = fb_begin(&fb, 5, 0, NULL, 2); /* a settable number sent as text */
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 1);
  gbx_pack_kv_cstr(pk, "VisibilityTimeout", "30");
  gbx_pack_cstr(pk, "tags");
  msgpack_pack_map(pk, 0);
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_queue_get_attrs(f->c, "q", &info, &err), GBX_E_PROTOCOL);
  assert_null(info.all);

  pk = fb_begin(&fb, 6, 0, NULL, 1); /* batch results that do not match the entries */
  gbx_pack_cstr(pk, "results");
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 1);
  gbx_pack_kv_u64(pk, "err", 0);
  fb_send(&fb, f->peer);
  gbx_receipt_entry_t re[2] = {{NULL, "r1", 0}, {NULL, "r2", 0}};
  gbx_batch_result_t res[2];
  assert_int_equal(gbx_message_delete_batch(f->c, "q", re, 2, res, &err), GBX_E_PROTOCOL);

  assert_true(gbx_is_open(f->c));
  send_ok(f->peer, 7);
  assert_int_equal(gbx_ping(f->c, NULL), GBX_E_OK);
}

static void test_local_validation_sends_nothing(void **state) {
  fixture_t *f = *state;
  gbx_error_t err;
  gbx_msg_attr_t attrs[GBX_MAX_ATTRS + 1];
  gbx_send_entry_t one = {NULL, "x", 1, NULL, 0, -1};
  gbx_batch_result_t res[1];
  for (size_t i = 0; i < GBX_MAX_ATTRS + 1; i++)
    attrs[i] = (gbx_msg_attr_t){"a", "String", "v", 1};

  assert_int_equal(gbx_queue_send(f->c, "q", "x", 1, attrs, GBX_MAX_ATTRS + 1, -1, NULL, &err),
                   GBX_E_BAD_ATTRIBUTE);
  assert_int_equal(gbx_queue_send(f->c, "q", NULL, 5, NULL, 0, -1, NULL, &err), GBX_E_BAD_TYPE);
  assert_int_equal(
      gbx_queue_send(f->c, "q", "x", (size_t)GBX_HARD_MAX_FRAME + 1, NULL, 0, -1, NULL, &err),
      GBX_E_FRAME_TOO_LARGE);
  assert_int_equal(gbx_queue_send_batch(f->c, "q", &one, 0, res, &err), GBX_E_EMPTY_BATCH);
  assert_int_equal(gbx_queue_send_batch(f->c, "q", &one, GBX_MAX_BATCH + 1, res, &err),
                   GBX_E_TOO_MANY_ENTRIES);
  assert_int_equal(gbx_submit_send(f->c, "q", NULL, 1, NULL, 0, -1, &err), 0);
  assert_int_equal(err.code, GBX_E_BAD_TYPE);
  assert_true(gbx_is_open(f->c));
  assert_int_equal(gbx_pending(f->c), 0);
  assert_int_equal(gbx_flush(f->c, NULL), GBX_E_OK);
  assert_false(readable(f->peer));
  /* Ids were not consumed: the next request is still id 1. */
  send_ok(f->peer, 1);
  assert_int_equal(gbx_ping(f->c, NULL), GBX_E_OK);
}

/* ---- pipelining ------------------------------------------------------------------- */

/* Small sends stay buffered until the buffer passes the flush threshold;
 * replies in reverse order are matched by id. */
static void test_pipeline_buffers_and_matches(void **state) {
  fixture_t *f = *state;
  enum { N = 200 };
  uint64_t ids[N];
  static uint8_t buf[4096];
  gbx_doc_t d;
  gbx_reply_t *r;
  int seen[N] = {0};

  for (int i = 0; i < N; i++) {
    ids[i] = gbx_submit_send(f->c, "q", "payload", 7, NULL, 0, -1, NULL);
    assert_int_equal(ids[i], (uint64_t)i + 1);
  }
  assert_false(readable(f->peer)); /* 200 small requests are far below 64 KiB */
  assert_int_equal(gbx_pending(f->c), N);
  assert_int_equal(gbx_flush(f->c, NULL), GBX_E_OK);
  for (int i = 0; i < N; i++) {
    read_frame(f->peer, buf, sizeof buf, &d);
    assert_int_equal(field_u64(&d.root, "id"), ids[i]);
    assert_int_equal(field_u64(&d.root, "op"), GBX_OP_SEND);
    gbx_doc_free(&d);
  }
  for (int i = N - 1; i >= 0; i--) {
    fb_t fb;
    msgpack_packer *pk = fb_begin(&fb, ids[i], 0, NULL, 1);
    gbx_pack_kv_cstr(pk, "mid", i % 2 ? MID1 : MID2);
    fb_send(&fb, f->peer);
  }
  for (int k = 0; k < N; k++) {
    char mid[GBX_MID_BUFSZ];
    assert_int_equal(gbx_collect(f->c, &r, NULL), GBX_E_OK);
    uint64_t id = gbx_reply_id(r);
    assert_true(id >= 1 && id <= N);
    assert_int_equal(id, (uint64_t)(N - k)); /* arrival order */
    assert_int_equal(gbx_reply_op(r), GBX_OP_SEND);
    assert_int_equal(gbx_reply_error(r, NULL), 0);
    assert_int_equal(gbx_reply_mid(r, mid, NULL), GBX_E_OK);
    assert_string_equal(mid, (id - 1) % 2 ? MID1 : MID2);
    seen[id - 1]++;
    gbx_reply_free(r);
  }
  for (int i = 0; i < N; i++)
    assert_int_equal(seen[i], 1);
  assert_int_equal(gbx_pending(f->c), 0);
  gbx_error_t err;
  assert_int_equal(gbx_collect(f->c, &r, &err), GBX_E_CLOSED);
  assert_null(r);
}

static void test_pipeline_flushes_at_threshold(void **state) {
  fixture_t *f = *state;
  static char body[1000];
  size_t n = 0;
  memset(body, 'b', sizeof body);
  while (!readable(f->peer)) {
    assert_true(gbx_submit_send(f->c, "q", body, sizeof body, NULL, 0, -1, NULL) > 0);
    n++;
    assert_true(n < 200);
  }
  /* Nothing left before the buffer held GBX_PIPELINE_FLUSH_BYTES: each
   * request is the body plus under 64 bytes of header and fields. */
  assert_true(n >= GBX_PIPELINE_FLUSH_BYTES / (sizeof body + 64));
  assert_true(n <= GBX_PIPELINE_FLUSH_BYTES / sizeof body + 1);
}

/* A blocking call issued while pipelined requests are outstanding keeps
 * their replies, whichever order they come in, for gbx_collect. */
static void test_blocking_call_amid_pipeline(void **state) {
  fixture_t *f = *state;
  gbx_reply_t *r;
  fb_t fb;
  uint64_t a = gbx_submit_ping(f->c, NULL);
  uint64_t b = gbx_submit_receive(f->c, "q", 1, -1, 0, NULL);
  assert_int_equal(a, 1);
  assert_int_equal(b, 2);
  send_ok(f->peer, a);
  send_ok(f->peer, 3); /* the blocking ping below */
  msgpack_packer *pk = fb_begin(&fb, b, GBX_E_QUEUE_NOT_FOUND, "no q", 0);
  (void)pk;
  fb_send(&fb, f->peer);
  assert_int_equal(gbx_ping(f->c, NULL), GBX_E_OK);
  assert_int_equal(gbx_pending(f->c), 2);
  assert_int_equal(gbx_collect(f->c, &r, NULL), GBX_E_OK);
  assert_int_equal(gbx_reply_id(r), a);
  assert_int_equal(gbx_reply_op(r), GBX_OP_PING);
  gbx_reply_free(r);
  assert_int_equal(gbx_collect(f->c, &r, NULL), GBX_E_OK);
  assert_int_equal(gbx_reply_id(r), b);
  gbx_error_t err;
  gbx_message_t *m;
  size_t n;
  assert_int_equal(gbx_reply_error(r, &err), GBX_E_QUEUE_NOT_FOUND);
  assert_string_equal(err.message, "no q");
  assert_int_equal(gbx_reply_messages(r, &m, &n, &err), GBX_E_QUEUE_NOT_FOUND);
  char mid[GBX_MID_BUFSZ];
  gbx_reply_free(r);
  /* An accessor of the wrong kind is refused. */
  a = gbx_submit_ping(f->c, NULL);
  send_ok(f->peer, a);
  assert_int_equal(gbx_collect(f->c, &r, NULL), GBX_E_OK);
  assert_int_equal(gbx_reply_mid(r, mid, &err), GBX_E_PROTOCOL);
  gbx_reply_free(r);
}

/* A thread plays a server that answers every request as it reads it. The
 * client submits far more than both socket buffers hold before collecting
 * anything: flushing must absorb replies or both sides would block. */
static void *echo_server(void *arg) {
  int fd = *(int *)arg;
  static uint8_t buf[4096];
  for (;;) {
    uint8_t hdr[4];
    uint32_t len;
    size_t got = 0;
    while (got < 4) {
      ssize_t k = read(fd, hdr + got, 4 - got);
      if (k <= 0)
        return NULL;
      got += (size_t)k;
    }
    gbx_frame_peek(hdr, 4, &len);
    if (len > sizeof buf)
      return NULL;
    for (got = 0; got < len;) {
      ssize_t k = read(fd, buf + got, len - got);
      if (k <= 0)
        return NULL;
      got += (size_t)k;
    }
    gbx_doc_t d;
    uint64_t id = 0;
    if (gbx_doc_parse(&d, buf, len, NULL))
      return NULL;
    gbx_get_u64(&d.root, "id", 1, 0, UINT64_MAX, &id, NULL, NULL);
    gbx_doc_free(&d);
    fb_t fb;
    msgpack_packer *pk = fb_begin(&fb, id, 0, NULL, 1);
    gbx_pack_kv_cstr(pk, "mid", MID1);
    fb_send(&fb, fd);
  }
}

static void test_pipeline_no_deadlock(void **state) {
  fixture_t *f = *state;
  enum { N = 20000 };
  static char body[200];
  pthread_t t;
  gbx_reply_t *r;
  memset(body, 'x', sizeof body);
  assert_int_equal(pthread_create(&t, NULL, echo_server, &f->peer), 0);
  for (int i = 0; i < N; i++)
    assert_true(gbx_submit_send(f->c, "q", body, sizeof body, NULL, 0, -1, NULL) > 0);
  uint64_t sum = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(gbx_collect(f->c, &r, NULL), GBX_E_OK);
    sum += gbx_reply_id(r);
    gbx_reply_free(r);
  }
  assert_int_equal(sum, (uint64_t)N * (N + 1) / 2);
  shutdown(f->peer, SHUT_RDWR);
  pthread_join(t, NULL);
}

/* A receive reply far larger than the initial read buffer, arriving in
 * pieces, is reassembled. */
typedef struct big_arg {
  int fd;
  size_t body_len;
} big_arg_t;

static void *big_reply_writer(void *arg) {
  big_arg_t *a = arg;
  char *body = malloc(a->body_len);
  fb_t fb;
  for (size_t i = 0; i < a->body_len; i++)
    body[i] = (char)(i * 7);
  msgpack_packer *pk = fb_begin(&fb, 1, 0, NULL, 1);
  gbx_pack_cstr(pk, "msgs");
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 6);
  gbx_pack_kv_cstr(pk, "mid", MID1);
  gbx_pack_kv_cstr(pk, "rh", "r");
  gbx_pack_kv_bin(pk, "body", body, a->body_len);
  gbx_pack_kv_u64(pk, "rc", 1);
  gbx_pack_kv_u64(pk, "sent", 1);
  gbx_pack_kv_u64(pk, "first", 1);
  fb_send(&fb, a->fd);
  free(body);
  return NULL;
}

static void test_large_reply(void **state) {
  fixture_t *f = *state;
  big_arg_t a = {f->peer, 3u * 1024u * 1024u};
  pthread_t t;
  gbx_message_t *m;
  size_t n;
  assert_int_equal(pthread_create(&t, NULL, big_reply_writer, &a), 0);
  assert_int_equal(gbx_queue_receive(f->c, "q", 1, -1, 0, &m, &n, NULL), GBX_E_OK);
  pthread_join(t, NULL);
  assert_int_equal(n, 1);
  assert_int_equal(m[0].body_len, a.body_len);
  for (size_t i = 0; i < a.body_len; i += 4099)
    assert_int_equal((char)m[0].body[i], (char)(i * 7));
  gbx_messages_free(m);
}

static void test_connect_refused(void **state) {
  (void)state;
  gbx_error_t err;
  /* Port 1 on loopback: nothing listens there in a test environment. */
  assert_null(gbx_connect("127.0.0.1", 1, &err));
  assert_int_equal(err.code, GBX_E_IO);
  assert_null(gbx_connect("no-such-host.invalid", 7411, &err));
  assert_int_equal(err.code, GBX_E_IO);
}

/* ---- CLI argument helpers ------------------------------------------------------------ */

static void test_cli_parse_u32(void **state) {
  (void)state;
  uint32_t v;
  assert_int_equal(cli_parse_u32("30", 0, 43200, &v), 0);
  assert_int_equal(v, 30);
  assert_int_equal(cli_parse_u32("0", 0, 10, &v), 0);
  assert_int_equal(v, 0);
  assert_int_not_equal(cli_parse_u32("", 0, 10, &v), 0);
  assert_int_not_equal(cli_parse_u32("-1", 0, 10, &v), 0);
  assert_int_not_equal(cli_parse_u32("11", 0, 10, &v), 0);
  assert_int_not_equal(cli_parse_u32("5s", 0, 10, &v), 0);
  assert_int_not_equal(cli_parse_u32("99999999999999999999", 0, UINT32_MAX, &v), 0);
  assert_int_not_equal(cli_parse_u32(" 5", 0, 10, &v), 0);
}

static void test_cli_parse_kv(void **state) {
  (void)state;
  char k[64];
  const char *v;
  assert_int_equal(cli_parse_kv("team=billing", k, sizeof k, &v), 0);
  assert_string_equal(k, "team");
  assert_string_equal(v, "billing");
  assert_int_equal(cli_parse_kv("a=b=c", k, sizeof k, &v), 0);
  assert_string_equal(k, "a");
  assert_string_equal(v, "b=c");
  assert_int_equal(cli_parse_kv("empty=", k, sizeof k, &v), 0);
  assert_string_equal(v, "");
  assert_int_not_equal(cli_parse_kv("novalue", k, sizeof k, &v), 0);
  assert_int_not_equal(cli_parse_kv("=x", k, sizeof k, &v), 0);
}

static void test_cli_parse_attr(void **state) {
  (void)state;
  cli_attr_t a;
  assert_int_equal(cli_parse_attr("color=String:red", &a), 0);
  assert_string_equal(a.name, "color");
  assert_string_equal(a.type, "String");
  assert_int_equal(a.value_len, 3);
  assert_memory_equal(a.value, "red", 3);
  cli_attr_free(&a);
  assert_int_equal(cli_parse_attr("t=Number.ms:12:30", &a), 0); /* value keeps its colons */
  assert_string_equal(a.type, "Number.ms");
  assert_memory_equal(a.value, "12:30", 5);
  cli_attr_free(&a);
  assert_int_equal(cli_parse_attr("b=Binary:AAEC/w==", &a), 0); /* Binary values are base64 */
  assert_int_equal(a.value_len, 4);
  assert_memory_equal(a.value, "\x00\x01\x02\xff", 4);
  cli_attr_free(&a);
  assert_int_not_equal(cli_parse_attr("b=Binary:!!", &a), 0);
  assert_int_not_equal(cli_parse_attr("noequals", &a), 0);
  assert_int_not_equal(cli_parse_attr("x=String", &a), 0);
  assert_int_not_equal(cli_parse_attr("x=:v", &a), 0);
}

static void test_cli_base64(void **state) {
  (void)state;
  char out[32];
  uint8_t bin[32];
  size_t n;
  assert_int_equal(cli_base64_encode((const uint8_t *)"", 0, out, sizeof out), 0);
  assert_string_equal(out, "");
  cli_base64_encode((const uint8_t *)"f", 1, out, sizeof out);
  assert_string_equal(out, "Zg==");
  cli_base64_encode((const uint8_t *)"foobar", 6, out, sizeof out);
  assert_string_equal(out, "Zm9vYmFy");
  assert_int_equal(cli_base64_decode("Zm9vYg==", bin, sizeof bin, &n), 0);
  assert_int_equal(n, 4);
  assert_memory_equal(bin, "foob", 4);
  assert_int_not_equal(cli_base64_decode("Zm9", bin, sizeof bin, &n), 0);
  assert_int_not_equal(cli_base64_decode("Zm=v", bin, sizeof bin, &n), 0);
  assert_int_not_equal(cli_base64_decode("Zm9vYmFy", bin, 3, &n), 0); /* does not fit */
}

static void test_cli_args_parse(void **state) {
  (void)state;
  static const cli_optspec_t specs[] = {
      {"max", 1, 0}, {"delete", 0, 0}, {"tag", 1, 1}, {NULL, 0, 0}};
  char *argv1[] = {"q1", "--max", "5", "--tag", "a=1", "--delete", "--tag=b=2", "extra", NULL};
  cli_args_t a;
  char why[128];
  assert_int_equal(cli_args_parse(8, argv1, specs, &a, why, sizeof why), 0);
  assert_int_equal(a.npos, 2);
  assert_string_equal(a.pos[0], "q1");
  assert_string_equal(a.pos[1], "extra");
  assert_string_equal(cli_args_get(&a, "max"), "5");
  assert_non_null(cli_args_get(&a, "delete"));
  assert_null(cli_args_get(&a, "nope"));
  const char *tags[4];
  assert_int_equal(cli_args_all(&a, "tag", tags, 4), 2);
  assert_string_equal(tags[0], "a=1");
  assert_string_equal(tags[1], "b=2");
  cli_args_free(&a);

  char *argv2[] = {"--max", NULL};
  assert_int_not_equal(cli_args_parse(1, argv2, specs, &a, why, sizeof why), 0);
  assert_non_null(strstr(why, "max"));
  char *argv3[] = {"--bogus", NULL};
  assert_int_not_equal(cli_args_parse(1, argv3, specs, &a, why, sizeof why), 0);
  assert_non_null(strstr(why, "bogus"));
  char *argv4[] = {"--max", "1", "--max", "2", NULL}; /* not repeatable */
  assert_int_not_equal(cli_args_parse(4, argv4, specs, &a, why, sizeof why), 0);
  char *argv5[] = {"--delete=yes", NULL};
  assert_int_not_equal(cli_args_parse(1, argv5, specs, &a, why, sizeof why), 0);
  char *argv6[] = {"--", "--max", "-", NULL}; /* after --, everything is positional */
  assert_int_equal(cli_args_parse(3, argv6, specs, &a, why, sizeof why), 0);
  assert_int_equal(a.npos, 2);
  assert_string_equal(a.pos[0], "--max");
  assert_string_equal(a.pos[1], "-");
  cli_args_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ping_writes_request_and_reads_reply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_send_request_fields_and_mid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_send_default_delay_omits_field, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_error_keeps_connection, setup, teardown),
      cmocka_unit_test_setup_teardown(test_create_with_attrs_and_tags, setup, teardown),
      cmocka_unit_test_setup_teardown(test_receive_decodes_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_receive_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(test_get_attrs_decodes_everything, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_stats_redrive_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_id_type, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_err, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncated_msgpack, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_a_map_and_reserved_byte, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reserved_byte, setup, teardown),
      cmocka_unit_test_setup_teardown(test_huge_frame_header, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zero_length_frame, setup, teardown),
      cmocka_unit_test_setup_teardown(test_huge_array_count, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_reply_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_id0_error_closes_with_server_code, setup, teardown),
      cmocka_unit_test_setup_teardown(test_peer_closes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_field_types_keep_connection, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_validation_sends_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipeline_buffers_and_matches, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipeline_flushes_at_threshold, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blocking_call_amid_pipeline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipeline_no_deadlock, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_reply, setup, teardown),
      cmocka_unit_test(test_connect_refused),
      cmocka_unit_test(test_cli_parse_u32),
      cmocka_unit_test(test_cli_parse_kv),
      cmocka_unit_test(test_cli_parse_attr),
      cmocka_unit_test(test_cli_base64),
      cmocka_unit_test(test_cli_args_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
