/* test_badframes.c - hostile and odd frames on raw sockets against the real
 * gearboxd, one bad thing per frame: broken framing (length 0, over the
 * limit) closes the connection after an id-0 error reply; bad msgpack (not
 * msgpack, truncated, huge declared sizes, deep nesting, trailing bytes,
 * 0xc1, non-map root, duplicate keys) gets an id-0 error and the connection
 * stays usable; bad requests (missing id/op, unknown op, wrong types, bad
 * numbers, bad names) get an error echoing the id. Frames split byte by byte
 * and many frames in one write work; a client that never reads is cut off
 * while others are served. After each test a fresh client can still ping. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "gbx_codec.h"
#include "testutil.h"

/* How long a reply or a close may take: far above a local round trip. */
#define WAIT_MS 10000
/* How long a connection that should stay open is watched for a close. */
#define STAYS_OPEN_MS 200
/* The smallest --max-outbuf gearboxd accepts (two maximal frames). */
#define MIN_OUTBUF (2u * GBX_HARD_MAX_FRAME)
/* Slow consumer: messages of this size, two per receive reply (the 2 MiB
 * reply budget), by this many pipelined receives: ~40 MB of replies, well
 * over MIN_OUTBUF plus what the kernel's socket buffers can absorb. */
#define SLOW_BODY     (1000 * 1000)
#define SLOW_RECEIVES 20
#define SLOW_MESSAGES (2 * SLOW_RECEIVES)

static gbx_error_t e;

/* Creates queue q through a connection of its own. */
static void create_queue(gbx_testserver_t *ts, const char *q) {
  gbx_client_t *c = ts_connect(ts);
  tu_create_queue(c, q, NULL);
  gbx_close(c);
}

/* ---- building frames ------------------------------------------------------------ */

/* Appends raw bytes to a payload being built. */
static void pk_raw(tu_raw_t *k, const void *p, size_t n) {
  assert_int_equal(gbx_buf_append(&k->b, p, n), 0);
}

/* Appends a whole frame (header + payload) for payload[0..n) to out. */
static void frame_append(gbx_buf_t *out, const void *payload, size_t n) {
  uint8_t hdr[GBX_FRAME_HDR];
  gbx_frame_put_len(hdr, (uint32_t)n);
  assert_int_equal(gbx_buf_append(out, hdr, sizeof hdr), 0);
  assert_int_equal(gbx_buf_append(out, payload, n), 0);
}

/* A ping request {"op": 1, "id": id}. */
static void ping_payload(tu_raw_t *k, uint64_t id) {
  tu_raw_request(k, GBX_OP_PING, id, 0);
}

/* ---- reading replies ------------------------------------------------------------- */

/* Reads one reply frame from fd (fails the test on EOF or timeout). */
static tu_reply_t read_reply(int fd) {
  tu_reply_t r = tu_raw_read_reply(fd);
  if (r.err && !r.has_msg)
    fail_msg("error reply %s without a message", gbx_errname(r.err));
  return r;
}

static void expect_reply(int fd, uint64_t id, int err, const char *what) {
  tu_reply_t r = read_reply(fd);
  if (r.id != id || r.err != err)
    fail_msg("%s: reply id %llu err %s (%s), want id %llu err %s", what, (unsigned long long)r.id,
             gbx_errname(r.err), r.msg, (unsigned long long)id, gbx_errname(err));
}

/* The connection is open and in sync: a ping on it is answered. */
static void expect_usable(int fd, uint64_t id) {
  tu_raw_t k;
  ping_payload(&k, id);
  assert_int_equal(ts_raw_send_frame(fd, k.b.data, (uint32_t)k.b.len), 0);
  gbx_buf_free(&k.b);
  expect_reply(fd, id, GBX_E_OK, "ping after the bad frame");
}

/* Sends payload as one frame on a new connection; expects an id-0 reply
 * with err and a connection that stays usable. */
static void bad_payload(gbx_testserver_t *ts, const void *payload, size_t n, int err,
                        const char *what) {
  int fd = ts_raw_connect(ts);
  assert_int_equal(ts_raw_send_frame(fd, payload, (uint32_t)n), 0);
  expect_reply(fd, 0, err, what);
  expect_usable(fd, 4242);
  close(fd);
}

/* Sends the request in k (freed here) on a new connection; expects a reply
 * with id and err, and a connection that stays usable. */
static void bad_request(gbx_testserver_t *ts, tu_raw_t *k, uint64_t id, int err, const char *what) {
  int fd = ts_raw_connect(ts);
  assert_int_equal(ts_raw_send_frame(fd, k->b.data, (uint32_t)k->b.len), 0);
  gbx_buf_free(&k->b);
  expect_reply(fd, id, err, what);
  expect_usable(fd, 4243);
  close(fd);
}

/* ---- broken framing: the connection is closed --------------------------------------- */

static void test_zero_length(void **state) {
  tu_fx_t *f = *state;
  int bystander = ts_raw_connect(f->ts);
  int fd = ts_raw_connect(f->ts);
  static const uint8_t zero[4] = {0, 0, 0, 0};
  assert_int_equal(ts_raw_send(fd, zero, sizeof zero), 0);
  tu_reply_t r = read_reply(fd);
  assert_int_equal(r.id, 0);
  assert_true(r.err == GBX_E_BAD_FRAME || r.err == GBX_E_FRAME_TOO_LARGE);
  assert_int_equal(ts_raw_wait_eof(fd, WAIT_MS), 1);
  close(fd);
  expect_usable(bystander, 1);
  close(bystander);
  tu_assert_alive(f->ts);
}

static void test_frame_over_limit(void **state) {
  tu_fx_t *f = *state;
  int bystander = ts_raw_connect(f->ts);
  static const uint32_t lens[] = {GBX_DEFAULT_MAX_FRAME + 1, GBX_HARD_MAX_FRAME + 1, 0xffffffffu};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    int fd = ts_raw_connect(f->ts);
    uint8_t hdr[4];
    gbx_frame_put_len(hdr, lens[i]);
    /* only the header: the server must not wait for (or allocate) the payload */
    assert_int_equal(ts_raw_send(fd, hdr, sizeof hdr), 0);
    expect_reply(fd, 0, GBX_E_FRAME_TOO_LARGE, "oversized frame header");
    assert_int_equal(ts_raw_wait_eof(fd, WAIT_MS), 1);
    close(fd);
    expect_usable(bystander, 10 + i);
  }
  close(bystander);
  tu_assert_alive(f->ts);
}

static void test_frame_at_limit(void **state) {
  tu_fx_t *f = *state;
  create_queue(f->ts, "q");
  /* a send whose payload is exactly --max-frame (2 MiB) bytes: the frame is
   * accepted and the request answered (its body is over the message limit) */
  tu_raw_t k;
  msgpack_packer *p = tu_raw_request(&k, GBX_OP_SEND, 5, 2);
  gbx_pack_kv_cstr(p, "q", "q");
  gbx_pack_cstr(p, "body");
  size_t body = GBX_DEFAULT_MAX_FRAME - k.b.len - 5; /* 5: bin32 header */
  msgpack_pack_bin(p, body);
  uint8_t *zeros = calloc(1, body);
  assert_non_null(zeros);
  pk_raw(&k, zeros, body);
  free(zeros);
  assert_int_equal(k.b.len, GBX_DEFAULT_MAX_FRAME);
  int fd = ts_raw_connect(f->ts);
  assert_int_equal(ts_raw_send_frame(fd, k.b.data, (uint32_t)k.b.len), 0);
  gbx_buf_free(&k.b);
  tu_reply_t r = read_reply(fd);
  assert_int_equal(r.id, 5);
  assert_int_not_equal(r.err, GBX_E_OK);
  assert_int_not_equal(r.err, GBX_E_FRAME_TOO_LARGE);
  expect_usable(fd, 6);
  close(fd);
  tu_assert_alive(f->ts);
}

/* ---- bad msgpack: an id-0 error, the connection stays usable ------------------------- */

static void test_not_msgpack(void **state) {
  tu_fx_t *f = *state;
  static const char text[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  bad_payload(f->ts, text, sizeof text - 1, GBX_E_BAD_FRAME, "HTTP text");
  static const uint8_t junk[] = {0xff, 0xfe, 0xfd, 0x00, 0x01};
  bad_payload(f->ts, junk, sizeof junk, GBX_E_BAD_FRAME, "junk bytes");
  tu_assert_alive(f->ts);
}

static void test_truncated_msgpack(void **state) {
  tu_fx_t *f = *state;
  /* a map of 2 pairs holding 1 */
  static const uint8_t short_map[] = {0x82, 0xa2, 'o', 'p', 0x01};
  bad_payload(f->ts, short_map, sizeof short_map, GBX_E_BAD_FRAME, "map missing a pair");
  /* a str8 of 10 bytes holding 3 */
  static const uint8_t short_str[] = {0x81, 0xa1, 'q', 0xd9, 10, 'a', 'b', 'c'};
  bad_payload(f->ts, short_str, sizeof short_str, GBX_E_BAD_FRAME, "short str8");
  /* a uint64 cut after 3 of its 8 bytes */
  static const uint8_t short_int[] = {0x81, 0xa2, 'i', 'd', 0xcf, 0, 0, 0};
  bad_payload(f->ts, short_int, sizeof short_int, GBX_E_BAD_FRAME, "short uint64");
  /* a key with no value */
  static const uint8_t no_value[] = {0x81, 0xa2, 'o', 'p'};
  bad_payload(f->ts, no_value, sizeof no_value, GBX_E_BAD_FRAME, "key without value");
  tu_assert_alive(f->ts);
}

static void test_huge_declared_sizes(void **state) {
  tu_fx_t *f = *state;
  static const uint8_t heads[][5] = {
      {0xdd, 0xff, 0xff, 0xff, 0xff}, /* array32 */
      {0xdf, 0xff, 0xff, 0xff, 0xff}, /* map32 */
      {0xdb, 0xff, 0xff, 0xff, 0xff}, /* str32 */
      {0xc6, 0xff, 0xff, 0xff, 0xff}, /* bin32 */
      {0xc9, 0xff, 0xff, 0xff, 0xff}, /* ext32 (one more type byte would follow) */
      {0xdd, 0x00, 0x10, 0x00, 0x00}, /* array32 of 1 Mi with no elements */
  };
  for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
    /* at the root */
    bad_payload(f->ts, heads[i], sizeof heads[i], GBX_E_BAD_FRAME, "huge size at the root");
    /* as a field value after a valid op and id */
    tu_raw_t k;
    msgpack_packer *p = tu_raw_request(&k, GBX_OP_PING, 9, 1);
    gbx_pack_cstr(p, "x");
    pk_raw(&k, heads[i], sizeof heads[i]);
    bad_payload(f->ts, k.b.data, k.b.len, GBX_E_BAD_FRAME, "huge size in a field");
    gbx_buf_free(&k.b);
  }
  /* map16 of 0xffff pairs at the root with a handful of bytes */
  static const uint8_t map16[] = {0xde, 0xff, 0xff, 0xa1, 'a', 0x01};
  bad_payload(f->ts, map16, sizeof map16, GBX_E_BAD_FRAME, "map16 of 65535 pairs");
  tu_assert_alive(f->ts);
}

static void nested(tu_raw_t *k, int depth) {
  msgpack_packer *p = tu_raw_request(k, GBX_OP_PING, 3, 1);
  gbx_pack_cstr(p, "deep");
  for (int i = 0; i < depth; i++)
    msgpack_pack_array(p, 1);
  msgpack_pack_nil(p);
}

static void test_deep_nesting(void **state) {
  tu_fx_t *f = *state;
  static const int depths[] = {10, 100, 100000};
  for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
    tu_raw_t k;
    nested(&k, depths[i]);
    bad_payload(f->ts, k.b.data, k.b.len, GBX_E_BAD_FRAME, "deep nesting");
    gbx_buf_free(&k.b);
  }
  /* maps nest too */
  tu_raw_t k;
  msgpack_packer *p = tu_raw_begin(&k);
  for (int i = 0; i < 50; i++) {
    msgpack_pack_map(p, 1);
    gbx_pack_cstr(p, "k");
  }
  msgpack_pack_nil(p);
  bad_payload(f->ts, k.b.data, k.b.len, GBX_E_BAD_FRAME, "nested maps");
  gbx_buf_free(&k.b);
  /* a legal unknown field of modest depth is ignored */
  nested(&k, 3);
  int fd = ts_raw_connect(f->ts);
  assert_int_equal(ts_raw_send_frame(fd, k.b.data, (uint32_t)k.b.len), 0);
  gbx_buf_free(&k.b);
  expect_reply(fd, 3, GBX_E_OK, "ping with a nested unknown field");
  close(fd);
  tu_assert_alive(f->ts);
}

static void test_trailing_bytes(void **state) {
  tu_fx_t *f = *state;
  tu_raw_t k;
  ping_payload(&k, 8);
  static const uint8_t extra[] = {0x00};
  pk_raw(&k, extra, 1);
  /* not answered as a ping: the whole frame is refused */
  bad_payload(f->ts, k.b.data, k.b.len, GBX_E_BAD_FRAME, "ping plus one byte");
  gbx_buf_free(&k.b);
  /* two whole maps in one frame */
  tu_raw_t a, b;
  ping_payload(&a, 1);
  ping_payload(&b, 2);
  pk_raw(&a, b.b.data, b.b.len);
  bad_payload(f->ts, a.b.data, a.b.len, GBX_E_BAD_FRAME, "two maps in one frame");
  gbx_buf_free(&a.b);
  gbx_buf_free(&b.b);
  tu_assert_alive(f->ts);
}

static void test_reserved_byte(void **state) {
  tu_fx_t *f = *state;
  static const uint8_t root[] = {0xc1};
  bad_payload(f->ts, root, sizeof root, GBX_E_BAD_FRAME, "0xc1 at the root");
  static const uint8_t value[] = {0x83, 0xa2, 'o',  'p',  0x01, 0xa2,
                                  'i',  'd',  0x02, 0xa1, 'x',  0xc1};
  bad_payload(f->ts, value, sizeof value, GBX_E_BAD_FRAME, "0xc1 as a value");
  static const uint8_t key[] = {0x81, 0xc1, 0x01};
  bad_payload(f->ts, key, sizeof key, GBX_E_BAD_FRAME, "0xc1 as a key");
  tu_assert_alive(f->ts);
}

static void test_root_not_a_map(void **state) {
  tu_fx_t *f = *state;
  static const uint8_t arr[] = {0x92, 0x01, 0x02};
  static const uint8_t str[] = {0xa4, 'p', 'i', 'n', 'g'};
  static const uint8_t num[] = {0x05};
  static const uint8_t nil[] = {0xc0};
  static const uint8_t empty_arr[] = {0x90};
  bad_payload(f->ts, arr, sizeof arr, GBX_E_BAD_FRAME, "array root");
  bad_payload(f->ts, str, sizeof str, GBX_E_BAD_FRAME, "str root");
  bad_payload(f->ts, num, sizeof num, GBX_E_BAD_FRAME, "int root");
  bad_payload(f->ts, nil, sizeof nil, GBX_E_BAD_FRAME, "nil root");
  bad_payload(f->ts, empty_arr, sizeof empty_arr, GBX_E_BAD_FRAME, "empty array root");
  /* a map whose key is not a string */
  static const uint8_t intkey[] = {0x82, 0x01, 0x01, 0xa2, 'i', 'd', 0x01};
  bad_payload(f->ts, intkey, sizeof intkey, GBX_E_BAD_FRAME, "integer key");
  tu_assert_alive(f->ts);
}

static void test_duplicate_keys(void **state) {
  tu_fx_t *f = *state;
  tu_raw_t k;
  msgpack_packer *p = tu_raw_request(&k, GBX_OP_PING, 5, 1);
  gbx_pack_kv_u64(p, "id", 6);
  bad_payload(f->ts, k.b.data, k.b.len, GBX_E_DUPLICATE_FIELD, "id twice");
  gbx_buf_free(&k.b);
  p = tu_raw_begin(&k);
  msgpack_pack_map(p, 3);
  gbx_pack_kv_u64(p, "op", GBX_OP_PING);
  gbx_pack_kv_u64(p, "op", GBX_OP_QUEUE_PURGE);
  gbx_pack_kv_u64(p, "id", 5);
  bad_payload(f->ts, k.b.data, k.b.len, GBX_E_DUPLICATE_FIELD, "op twice");
  gbx_buf_free(&k.b);
  /* a repeated request field below the root */
  create_queue(f->ts, "q");
  p = tu_raw_request(&k, GBX_OP_QUEUE_CREATE, 7, 2);
  gbx_pack_kv_cstr(p, "q", "dupattrs");
  gbx_pack_cstr(p, "attrs");
  msgpack_pack_map(p, 2);
  gbx_pack_kv_u64(p, "DelaySeconds", 1);
  gbx_pack_kv_u64(p, "DelaySeconds", 2);
  bad_request(f->ts, &k, 7, GBX_E_DUPLICATE_FIELD, "attribute twice");
  tu_assert_alive(f->ts);
}

/* ---- bad requests: an error echoing the id ------------------------------------------ */

static void test_missing_id_or_op(void **state) {
  tu_fx_t *f = *state;
  create_queue(f->ts, "q");
  tu_raw_t k;
  msgpack_packer *p = tu_raw_begin(&k);
  msgpack_pack_map(p, 1);
  gbx_pack_kv_u64(p, "op", GBX_OP_PING);
  bad_request(f->ts, &k, 0, GBX_E_MISSING_FIELD, "no id");
  p = tu_raw_begin(&k);
  msgpack_pack_map(p, 1);
  gbx_pack_kv_u64(p, "id", 7);
  bad_request(f->ts, &k, 7, GBX_E_MISSING_FIELD, "no op");
  p = tu_raw_begin(&k);
  msgpack_pack_map(p, 0);
  bad_request(f->ts, &k, 0, GBX_E_MISSING_FIELD, "empty map");
  /* a required request field */
  p = tu_raw_request(&k, GBX_OP_SEND, 8, 1);
  gbx_pack_kv_cstr(p, "q", "q");
  bad_request(f->ts, &k, 8, GBX_E_MISSING_FIELD, "send without body");
  p = tu_raw_request(&k, GBX_OP_QUEUE_CREATE, 9, 0);
  bad_request(f->ts, &k, 9, GBX_E_MISSING_FIELD, "create without q");
  tu_assert_alive(f->ts);
}

static void test_unknown_op(void **state) {
  tu_fx_t *f = *state;
  static const uint64_t ops[] = {0, 4, 19, 99, 65535, UINT64_MAX};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    tu_raw_t k;
    tu_raw_request(&k, ops[i], 42 + i, 0);
    bad_request(f->ts, &k, 42 + i, GBX_E_UNKNOWN_OP, "unknown op");
  }
  /* a large request id is echoed exactly */
  tu_raw_t k;
  tu_raw_request(&k, 200, UINT64_MAX, 0);
  bad_request(f->ts, &k, UINT64_MAX, GBX_E_UNKNOWN_OP, "unknown op, id 2^64-1");
  tu_assert_alive(f->ts);
}

static void test_wrong_field_types(void **state) {
  tu_fx_t *f = *state;
  create_queue(f->ts, "q");
  tu_raw_t k;
  msgpack_packer *p;

  p = tu_raw_begin(&k); /* op as a string */
  msgpack_pack_map(p, 2);
  gbx_pack_kv_cstr(p, "op", "ping");
  gbx_pack_kv_u64(p, "id", 11);
  bad_request(f->ts, &k, 11, GBX_E_BAD_TYPE, "op as str");
  p = tu_raw_begin(&k); /* id as a string: it cannot be echoed */
  msgpack_pack_map(p, 2);
  gbx_pack_kv_u64(p, "op", GBX_OP_PING);
  gbx_pack_kv_cstr(p, "id", "12");
  bad_request(f->ts, &k, 0, GBX_E_BAD_TYPE, "id as str");
  p = tu_raw_begin(&k); /* id as a float */
  msgpack_pack_map(p, 2);
  gbx_pack_kv_u64(p, "op", GBX_OP_PING);
  gbx_pack_cstr(p, "id");
  msgpack_pack_double(p, 12.0);
  bad_request(f->ts, &k, 0, GBX_E_BAD_TYPE, "id as float");
  p = tu_raw_request(&k, GBX_OP_SEND, 13, 2); /* queue name as an integer */
  gbx_pack_kv_u64(p, "q", 5);
  gbx_pack_kv_bin(p, "body", "x", 1);
  bad_request(f->ts, &k, 13, GBX_E_BAD_TYPE, "q as int");
  p = tu_raw_request(&k, GBX_OP_SEND, 14, 2); /* queue name as bin */
  gbx_pack_kv_bin(p, "q", "q", 1);
  gbx_pack_kv_bin(p, "body", "x", 1);
  bad_request(f->ts, &k, 14, GBX_E_BAD_TYPE, "q as bin");
  p = tu_raw_request(&k, GBX_OP_SEND, 15, 2); /* body as an integer */
  gbx_pack_kv_cstr(p, "q", "q");
  gbx_pack_kv_u64(p, "body", 5);
  bad_request(f->ts, &k, 15, GBX_E_BAD_TYPE, "body as int");
  p = tu_raw_request(&k, GBX_OP_RECEIVE, 16, 2); /* max as a string, a bool, a float */
  gbx_pack_kv_cstr(p, "q", "q");
  gbx_pack_kv_cstr(p, "max", "10");
  bad_request(f->ts, &k, 16, GBX_E_BAD_TYPE, "max as str");
  p = tu_raw_request(&k, GBX_OP_RECEIVE, 17, 2);
  gbx_pack_kv_cstr(p, "q", "q");
  gbx_pack_kv_bool(p, "max", 1);
  bad_request(f->ts, &k, 17, GBX_E_BAD_TYPE, "max as bool");
  p = tu_raw_request(&k, GBX_OP_RECEIVE, 18, 2);
  gbx_pack_kv_cstr(p, "q", "q");
  gbx_pack_cstr(p, "max");
  msgpack_pack_double(p, 1.5);
  bad_request(f->ts, &k, 18, GBX_E_BAD_TYPE, "max as float");
  p = tu_raw_request(&k, GBX_OP_SEND_BATCH, 19, 2); /* entries as a map */
  gbx_pack_kv_cstr(p, "q", "q");
  gbx_pack_cstr(p, "entries");
  msgpack_pack_map(p, 0);
  bad_request(f->ts, &k, 19, GBX_E_BAD_TYPE, "entries as map");
  p = tu_raw_request(&k, GBX_OP_QUEUE_CREATE, 20, 2); /* attrs as an array */
  gbx_pack_kv_cstr(p, "q", "typed");
  gbx_pack_cstr(p, "attrs");
  msgpack_pack_array(p, 0);
  bad_request(f->ts, &k, 20, GBX_E_BAD_TYPE, "attrs as array");
  p = tu_raw_request(&k, GBX_OP_DELETE, 21, 2); /* receipt handle as an integer */
  gbx_pack_kv_cstr(p, "q", "q");
  gbx_pack_kv_u64(p, "rh", 1);
  bad_request(f->ts, &k, 21, GBX_E_BAD_TYPE, "rh as int");
  /* nothing was created or sent */
  gbx_client_t *c = ts_connect(f->ts);
  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  gbx_queue_list_free(&l);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, "q", &info, &e));
  assert_int_equal(info.visible, 0);
  gbx_queue_info_free(&info);
  gbx_close(c);
  tu_assert_alive(f->ts);
}

/* A request {op, id 30, q: "q", key: v} with an integer v (signed when neg). */
static void int_field(gbx_testserver_t *ts, uint64_t op, const char *key, uint64_t v, int neg,
                      int err, const char *what) {
  tu_raw_t k;
  int with_rh = op == GBX_OP_CHANGE_VIS;
  int with_body = op == GBX_OP_SEND;
  msgpack_packer *p = tu_raw_request(&k, op, 30, 2 + with_rh + with_body);
  gbx_pack_kv_cstr(p, "q", "q");
  if (with_rh)
    gbx_pack_kv_cstr(p, "rh", "whatever");
  if (with_body)
    gbx_pack_kv_bin(p, "body", "x", 1);
  if (neg)
    gbx_pack_kv_i64(p, key, -(int64_t)v);
  else
    gbx_pack_kv_u64(p, key, v);
  bad_request(ts, &k, 30, err, what);
}

static void test_negative_and_overflowing_numbers(void **state) {
  tu_fx_t *f = *state;
  create_queue(f->ts, "q");
  /* negative counts and durations */
  int_field(f->ts, GBX_OP_RECEIVE, "max", 1, 1, GBX_E_OUT_OF_RANGE, "max -1");
  int_field(f->ts, GBX_OP_RECEIVE, "vis", 1, 1, GBX_E_OUT_OF_RANGE, "vis -1");
  int_field(f->ts, GBX_OP_RECEIVE, "wait", 1, 1, GBX_E_OUT_OF_RANGE, "wait -1");
  int_field(f->ts, GBX_OP_SEND, "delay", 1, 1, GBX_E_OUT_OF_RANGE, "delay -1");
  int_field(f->ts, GBX_OP_SEND, "delay", (uint64_t)INT64_MAX, 1, GBX_E_OUT_OF_RANGE, "delay -2^63");
  /* values that would wrap if narrowed to 32 bits (2^32 + small) */
  int_field(f->ts, GBX_OP_RECEIVE, "max", (1ull << 32) + 1, 0, GBX_E_OUT_OF_RANGE, "max 2^32+1");
  int_field(f->ts, GBX_OP_RECEIVE, "vis", (1ull << 32) + 5, 0, GBX_E_OUT_OF_RANGE, "vis 2^32+5");
  int_field(f->ts, GBX_OP_RECEIVE, "wait", (1ull << 32), 0, GBX_E_OUT_OF_RANGE, "wait 2^32");
  int_field(f->ts, GBX_OP_SEND, "delay", (1ull << 32), 0, GBX_E_OUT_OF_RANGE, "delay 2^32");
  int_field(f->ts, GBX_OP_CHANGE_VIS, "vis", (1ull << 32), 0, GBX_E_OUT_OF_RANGE,
            "change_vis 2^32");
  int_field(f->ts, GBX_OP_RECEIVE, "max", UINT64_MAX, 0, GBX_E_OUT_OF_RANGE, "max 2^64-1");
  /* a negative request id cannot be echoed */
  tu_raw_t k;
  msgpack_packer *p = tu_raw_begin(&k);
  msgpack_pack_map(p, 2);
  gbx_pack_kv_u64(p, "op", GBX_OP_PING);
  gbx_pack_kv_i64(p, "id", -1);
  int fd = ts_raw_connect(f->ts);
  assert_int_equal(ts_raw_send_frame(fd, k.b.data, (uint32_t)k.b.len), 0);
  gbx_buf_free(&k.b);
  tu_reply_t r = read_reply(fd);
  assert_int_equal(r.id, 0);
  assert_true(r.err == GBX_E_OUT_OF_RANGE || r.err == GBX_E_BAD_TYPE);
  expect_usable(fd, 31);
  close(fd);
  /* the queue saw none of it: the message sent with a bad delay is not there */
  gbx_client_t *c = ts_connect(f->ts);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, "q", &info, &e));
  assert_int_equal(info.visible + info.delayed + info.not_visible, 0);
  gbx_queue_info_free(&info);
  gbx_close(c);
  tu_assert_alive(f->ts);
}

static void name_request(gbx_testserver_t *ts, uint64_t op, const char *name, size_t len,
                         const char *what) {
  tu_raw_t k;
  msgpack_packer *p = tu_raw_request(&k, op, 50, 1);
  gbx_pack_kv_str(p, "q", name, len);
  bad_request(ts, &k, 50, GBX_E_BAD_NAME, what);
}

static void test_bad_utf8_and_nul_names(void **state) {
  tu_fx_t *f = *state;
  create_queue(f->ts, "ab");
  static const struct {
    const char *s;
    size_t n;
    const char *what;
  } names[] = {
      {"\xff\xfe", 2, "invalid UTF-8"}, {"a\xc3", 2, "truncated UTF-8"},
      {"a\0b", 3, "NUL inside"},        {"ab\0", 3, "NUL after a real queue's name"},
      {"\0", 1, "only a NUL"},          {"\xc3\xa9t\xc3\xa9", 6, "valid UTF-8 outside the pattern"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    name_request(f->ts, GBX_OP_QUEUE_CREATE, names[i].s, names[i].n, names[i].what);
    name_request(f->ts, GBX_OP_QUEUE_GET_ATTRS, names[i].s, names[i].n, names[i].what);
    name_request(f->ts, GBX_OP_QUEUE_PURGE, names[i].s, names[i].n, names[i].what);
    name_request(f->ts, GBX_OP_QUEUE_DELETE, names[i].s, names[i].n, names[i].what);
  }
  /* the real queue "ab" is untouched (not purged or deleted through "ab\0") */
  gbx_client_t *c = ts_connect(f->ts);
  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.names[0], "ab");
  gbx_queue_list_free(&l);
  gbx_close(c);
  tu_assert_alive(f->ts);
}

/* A tags map {key: value} (lengths given, so they may hold a NUL) for a
 * queue_create (of "tagged") or a queue_tag (of "q"). */
static void tag_request(gbx_testserver_t *ts, uint64_t op, const char *key, size_t kl,
                        const char *val, size_t vl, const char *what) {
  tu_raw_t k;
  msgpack_packer *p = tu_raw_request(&k, op, 60, 2);
  gbx_pack_kv_cstr(p, "q", op == GBX_OP_QUEUE_CREATE ? "tagged" : "q");
  gbx_pack_cstr(p, "tags");
  msgpack_pack_map(p, 1);
  gbx_pack_strn(p, key, kl);
  gbx_pack_strn(p, val, vl);
  bad_request(ts, &k, 60, GBX_E_BAD_TYPE, what);
}

/* Tags are kept as C strings: a NUL in a key or value is refused. Stored, a
 * key starting with NUL became "", and the queue record was then refused at
 * the next start; so the server must still start after the attempts. */
static void test_nul_in_tags(void **state) {
  tu_fx_t *f = *state;
  create_queue(f->ts, "q");
  static const struct {
    const char *k, *v;
    size_t kl, vl;
    const char *what;
  } tags[] = {
      {"\0", "v", 1, 1, "key only a NUL"},       {"\0rm", "v", 3, 1, "key starting with NUL"},
      {"a\0b", "v", 3, 1, "NUL inside the key"}, {"k", "a\0b", 1, 3, "NUL inside the value"},
      {"k", "\0", 1, 1, "value only a NUL"},
  };
  for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
    tag_request(f->ts, GBX_OP_QUEUE_CREATE, tags[i].k, tags[i].kl, tags[i].v, tags[i].vl,
                tags[i].what);
    tag_request(f->ts, GBX_OP_QUEUE_TAG, tags[i].k, tags[i].kl, tags[i].v, tags[i].vl,
                tags[i].what);
  }
  /* nothing was created, and the store still opens */
  ts_restart(f->ts);
  gbx_client_t *c = ts_connect(f->ts);
  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  assert_string_equal(l.names[0], "q");
  gbx_queue_list_free(&l);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, "q", &info, &e));
  assert_int_equal(info.ntags, 0);
  gbx_queue_info_free(&info);
  gbx_close(c);
  tu_assert_alive(f->ts);
}

/* A request {op, id 70, name_key: name, attrs: {attr: val[0..vl)}}, plus
 * q: "q" for a subscribe; expects err. */
static void attr_request(gbx_testserver_t *ts, uint64_t op, const char *name_key, const char *name,
                         const char *attr, const char *val, size_t vl, int err, const char *what) {
  tu_raw_t k;
  int sub = op == GBX_OP_SUBSCRIBE;
  msgpack_packer *p = tu_raw_request(&k, op, 70, 2 + sub);
  gbx_pack_kv_cstr(p, name_key, name);
  if (sub)
    gbx_pack_kv_cstr(p, "q", "q");
  gbx_pack_cstr(p, "attrs");
  msgpack_pack_map(p, 1);
  gbx_pack_kv_str(p, attr, val, vl);
  bad_request(ts, &k, 70, err, what);
}

/* Policies, display names and filter policies are kept as C strings and
 * shown as XML and JSON on the AWS face: NUL (raw, or a JSON \u0000 that
 * cJSON would end the string at), control characters and malformed UTF-8
 * are refused where they are set. A filter policy with a NUL was stored cut
 * ("{\"k\":") and refused at the next start; so the server must still
 * start after the attempts. */
static void test_text_attributes(void **state) {
  tu_fx_t *f = *state;
  create_queue(f->ts, "q");
  gbx_client_t *c = ts_connect(f->ts);
  CHECK_OK(gbx_topic_create(c, "tp", NULL, NULL, 0, NULL, &e));
  static const struct {
    const char *v;
    size_t n;
    const char *what;
  } bad[] = {
      {"{\"k\":\0[\"v\"]}", 12, "raw NUL between tokens"},
      {"{\"k\":[\"v\0w\"]}", 13, "raw NUL in a string"},
      {"{\"k\":[\"v\\u0000w\"]}", 18, "escaped NUL"},
      {"{\"k\":[\"v\x01w\"]}", 13, "control character"},
      {"{\"k\":[\"v\xffw\"]}", 13, "malformed UTF-8"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    attr_request(f->ts, GBX_OP_SUBSCRIBE, "t", "tp", "FilterPolicy", bad[i].v, bad[i].n,
                 GBX_E_BAD_FILTER_POLICY, bad[i].what);
    attr_request(f->ts, GBX_OP_QUEUE_CREATE, "q", "pq", "Policy", bad[i].v, bad[i].n,
                 GBX_E_BAD_TYPE, bad[i].what);
    attr_request(f->ts, GBX_OP_TOPIC_CREATE, "t", "pt", "Policy", bad[i].v, bad[i].n,
                 GBX_E_BAD_TYPE, bad[i].what);
  }
  attr_request(f->ts, GBX_OP_TOPIC_CREATE, "t", "pt", "DisplayName", "a\0b", 3, GBX_E_BAD_TYPE,
               "NUL in a display name");
  attr_request(f->ts, GBX_OP_QUEUE_CREATE, "q", "pq", "RedriveAllowPolicy", "{}\0", 3,
               GBX_E_BAD_TYPE, "NUL after a redrive-allow policy");
  /* a queue name with a NUL lists nobody's subscriptions */
  CHECK_OK(gbx_subscribe(c, "tp", "q", NULL, NULL, &e));
  tu_raw_t k;
  msgpack_packer *p = tu_raw_request(&k, GBX_OP_SUB_LIST, 71, 1);
  gbx_pack_kv_str(p, "q", "q\0x", 3);
  bad_request(f->ts, &k, 71, GBX_E_BAD_NAME, "sub_list of q\\0x");
  /* nothing else was made, and the store still opens */
  gbx_close(c);
  ts_restart(f->ts);
  c = ts_connect(f->ts);
  gbx_sub_list_t sl;
  CHECK_OK(gbx_sub_list(c, "tp", NULL, NULL, &sl, &e));
  assert_int_equal(sl.count, 1);
  gbx_sub_list_free(&sl);
  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  gbx_queue_list_free(&l);
  gbx_close(c);
  tu_assert_alive(f->ts);
}

/* ---- odd but legal writes ------------------------------------------------------------- */

static void test_byte_by_byte(void **state) {
  tu_fx_t *f = *state;
  create_queue(f->ts, "q");
  gbx_buf_t out;
  gbx_buf_init(&out);
  tu_raw_t k;
  ping_payload(&k, 61);
  frame_append(&out, k.b.data, k.b.len);
  gbx_buf_free(&k.b);
  msgpack_packer *p = tu_raw_request(&k, GBX_OP_SEND, 62, 2);
  gbx_pack_kv_cstr(p, "q", "q");
  gbx_pack_kv_bin(p, "body", "split", 5);
  frame_append(&out, k.b.data, k.b.len);
  gbx_buf_free(&k.b);

  int fd = ts_raw_connect(f->ts);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (size_t i = 0; i < out.len; i++) {
    assert_int_equal(ts_raw_send(fd, out.data + i, 1), 0);
    tu_sleep_ms(1);
  }
  gbx_buf_free(&out);
  expect_reply(fd, 61, GBX_E_OK, "ping sent byte by byte");
  expect_reply(fd, 62, GBX_E_OK, "send sent byte by byte");
  close(fd);
  gbx_client_t *c = ts_connect(f->ts);
  gbx_message_t *m;
  size_t n;
  CHECK_OK(gbx_queue_receive(c, "q", 10, 30, 0, &m, &n, &e));
  assert_int_equal(n, 1);
  assert_memory_equal(m[0].body, "split", 5);
  gbx_messages_free(m);
  gbx_close(c);
  tu_assert_alive(f->ts);
}

static void test_many_requests_one_write(void **state) {
  tu_fx_t *f = *state;
  create_queue(f->ts, "q");
  enum { N = 1000 };
  gbx_buf_t out;
  gbx_buf_init(&out);
  for (uint64_t id = 1; id <= N; id++) {
    tu_raw_t k;
    if (id % 2) {
      ping_payload(&k, id);
    } else {
      msgpack_packer *p = tu_raw_request(&k, GBX_OP_SEND, id, 2);
      gbx_pack_kv_cstr(p, "q", "q");
      gbx_pack_kv_bin(p, "body", &id, sizeof id);
    }
    frame_append(&out, k.b.data, k.b.len);
    gbx_buf_free(&k.b);
  }
  /* a bad frame in the middle does not disturb its neighbours */
  static const uint8_t bad[] = {0xc1};
  frame_append(&out, bad, sizeof bad);
  tu_raw_t last;
  ping_payload(&last, N + 1);
  frame_append(&out, last.b.data, last.b.len);
  gbx_buf_free(&last.b);

  int fd = ts_raw_connect(f->ts);
  assert_int_equal(ts_raw_send(fd, out.data, out.len), 0);
  gbx_buf_free(&out);
  static uint8_t seen[N + 2];
  memset(seen, 0, sizeof seen);
  int bad_replies = 0;
  for (int i = 0; i < N + 2; i++) {
    tu_reply_t r = read_reply(fd);
    if (r.id == 0) {
      assert_int_equal(r.err, GBX_E_BAD_FRAME);
      bad_replies++;
      continue;
    }
    assert_true(r.id <= N + 1);
    if (r.err)
      fail_msg("request %llu failed: %s (%s)", (unsigned long long)r.id, gbx_errname(r.err), r.msg);
    if (seen[r.id]++)
      fail_msg("request %llu answered twice", (unsigned long long)r.id);
  }
  assert_int_equal(bad_replies, 1);
  for (int id = 1; id <= N + 1; id++)
    assert_int_equal(seen[id], 1);
  close(fd);
  gbx_client_t *c = ts_connect(f->ts);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, "q", &info, &e));
  assert_int_equal(info.visible, N / 2);
  gbx_queue_info_free(&info);
  gbx_close(c);
  tu_assert_alive(f->ts);
}

/* ---- a client that never reads ----------------------------------------------------- */

static void test_slow_consumer_cut_off(void **state) {
  (void)state;
  char args[64];
  snprintf(args, sizeof args, "--max-outbuf %u", MIN_OUTBUF);
  gbx_testserver_t *ts = ts_start(args);
  gbx_client_t *c = tu_connect(ts);
  CHECK_OK(gbx_queue_create(c, "big", NULL, NULL, 0, NULL, &e));
  uint8_t *body = malloc(SLOW_BODY);
  assert_non_null(body);
  memset(body, 'z', SLOW_BODY);
  for (int i = 0; i < SLOW_MESSAGES; i++)
    assert_true(gbx_submit_send(c, "big", body, SLOW_BODY, NULL, 0, -1, &e) > 0);
  for (int i = 0; i < SLOW_MESSAGES; i++) {
    gbx_reply_t *r;
    CHECK_OK(gbx_collect(c, &r, &e));
    CHECK_OK(gbx_reply_error(r, &e));
    gbx_reply_free(r);
  }
  free(body);

  /* the hog asks for ~2 MB per reply and never reads */
  int hog = ts_raw_connect(ts);
  int small = 4096;
  setsockopt(hog, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  gbx_buf_t out;
  gbx_buf_init(&out);
  for (int i = 0; i < SLOW_RECEIVES; i++) {
    tu_raw_t k;
    msgpack_packer *p = tu_raw_request(&k, GBX_OP_RECEIVE, (uint64_t)i + 1, 3);
    gbx_pack_kv_cstr(p, "q", "big");
    gbx_pack_kv_u64(p, "max", 10);
    gbx_pack_kv_u64(p, "vis", 600);
    frame_append(&out, k.b.data, k.b.len);
    gbx_buf_free(&k.b);
  }
  assert_int_equal(ts_raw_send(hog, out.data, out.len), 0);
  gbx_buf_free(&out);

  /* meanwhile other clients are served */
  for (int i = 0; i < 5; i++) {
    CHECK_OK(gbx_ping(c, &e));
    CHECK_OK(gbx_queue_send(c, "big", "small", 5, NULL, 0, 10, NULL, &e));
    tu_sleep_ms(50);
  }
  gbx_client_t *fresh = ts_connect(ts);
  CHECK_OK(gbx_ping(fresh, &e));
  gbx_close(fresh);

  /* the hog was cut off: reading now drains what was buffered, then EOF,
   * well short of the ~40 MB its requests asked for */
  assert_int_equal(ts_raw_wait_eof(hog, WAIT_MS), 1);
  close(hog);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, "big", &info, &e));
  assert_int_equal(info.visible + info.not_visible, SLOW_MESSAGES);
  assert_int_equal(info.delayed, 5);
  gbx_queue_info_free(&info);
  gbx_close(c);
  ts_free(ts);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_server, tu_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_zero_length),
      T(test_frame_over_limit),
      T(test_frame_at_limit),
      T(test_not_msgpack),
      T(test_truncated_msgpack),
      T(test_huge_declared_sizes),
      T(test_deep_nesting),
      T(test_trailing_bytes),
      T(test_reserved_byte),
      T(test_root_not_a_map),
      T(test_duplicate_keys),
      T(test_missing_id_or_op),
      T(test_unknown_op),
      T(test_wrong_field_types),
      T(test_negative_and_overflowing_numbers),
      T(test_bad_utf8_and_nul_names),
      T(test_nul_in_tags),
      T(test_text_attributes),
      T(test_byte_by_byte),
      T(test_many_requests_one_write),
      cmocka_unit_test(test_slow_consumer_cut_off),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
