/* test_codec.c - unit tests of the wire codec (protocol/gbx_codec.c):
 * validator, document parsing, field accessors, names, message attributes,
 * framing, the growable buffer and the packing helpers.
 *
 * Hostile inputs are written as raw bytes, one bad thing each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <malloc.h>

#include "gbx_codec.h"

/* A failing realloc must come back as NULL, not abort, under ASan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "allocator_may_return_null=1";
}

/* ---- helpers ------------------------------------------------------------ */

/* A packer writing into a fresh buffer. */
typedef struct pk {
  gbx_buf_t b;
  msgpack_packer p;
} pk_t;

static void pk_init(pk_t *k) {
  gbx_buf_init(&k->b);
  msgpack_packer_init(&k->p, &k->b, gbx_buf_write_cb);
}

static gbx_err_t validate(const uint8_t *b, size_t n, gbx_errbuf_t *eb) {
  return gbx_mp_validate(b, n, GBX_MAX_DEPTH, eb);
}

#define RAW(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static void expect_bad(const uint8_t *b, size_t n, const char *needle) {
  gbx_errbuf_t eb = {0};
  assert_int_equal(validate(b, n, &eb), GBX_E_BAD_FRAME);
  assert_int_equal(eb.code, GBX_E_BAD_FRAME);
  if (needle && !strstr(eb.msg, needle))
    fail_msg("message '%s' lacks '%s'", eb.msg, needle);
}

static void expect_good(const uint8_t *b, size_t n) {
  gbx_errbuf_t eb = {0};
  gbx_err_t rc = validate(b, n, &eb);
  if (rc != GBX_E_OK)
    fail_msg("validate refused a good document: %s", eb.msg);
}

/* A send request with attributes, as a client would pack it. */
static void pack_send_request(pk_t *k) {
  msgpack_packer *p = &k->p;
  msgpack_pack_map(p, 5);
  gbx_pack_kv_u64(p, "op", 20);
  gbx_pack_kv_u64(p, "id", 7);
  gbx_pack_kv_cstr(p, "q", "orders");
  gbx_pack_kv_bin(p, "body", "hello", 5);
  gbx_pack_cstr(p, "attrs");
  msgpack_pack_map(p, 2);
  gbx_pack_cstr(p, "price");
  msgpack_pack_map(p, 2);
  gbx_pack_kv_cstr(p, "t", "Number.float");
  gbx_pack_kv_cstr(p, "v", "-12.5e3");
  gbx_pack_cstr(p, "blob");
  msgpack_pack_map(p, 2);
  gbx_pack_kv_cstr(p, "t", "Binary");
  gbx_pack_kv_bin(p, "v", "\x00\x01\x02", 3);
}

/* Parses a packed document, failing the test on error. */
static void parse_ok(gbx_doc_t *d, const pk_t *k) {
  gbx_errbuf_t eb = {0};
  gbx_err_t rc = gbx_doc_parse(d, k->b.data, k->b.len, &eb);
  if (rc != GBX_E_OK)
    fail_msg("parse failed: %s", eb.msg);
}

/* ---- validator: accepted documents -------------------------------------- */

static void test_validate_every_format(void **state) {
  (void)state;
  /* A map holding one value of every msgpack format, keyed by fixint. */
  static const uint8_t doc[] = {
      0xde, 0x00, 0x22,                                              /* map16 of 34 pairs */
      0x00, 0x7f,                                                    /* positive fixint */
      0x01, 0xe0,                                                    /* negative fixint */
      0x02, 0xc0,                                                    /* nil */
      0x03, 0xc2,                                                    /* false */
      0x04, 0xc3,                                                    /* true */
      0x05, 0xc4, 0x01, 0xaa,                                        /* bin8 */
      0x06, 0xc5, 0x00, 0x01, 0xaa,                                  /* bin16 */
      0x07, 0xc6, 0x00, 0x00, 0x00, 0x01, 0xaa,                      /* bin32 */
      0x08, 0xc7, 0x01, 0x05, 0xaa,                                  /* ext8 */
      0x09, 0xc8, 0x00, 0x00, 0x05,                                  /* ext16, empty data */
      0x0a, 0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0xaa,                /* ext32 */
      0x0b, 0xca, 0x3f, 0x80, 0x00, 0x00,                            /* float32 1.0 */
      0x0c, 0xcb, 0x3f, 0xf0, 0,    0,    0,    0,    0,    0,       /* float64 1.0 */
      0x0d, 0xcc, 0xff,                                              /* uint8 */
      0x0e, 0xcd, 0xff, 0xff,                                        /* uint16 */
      0x0f, 0xce, 0xff, 0xff, 0xff, 0xff,                            /* uint32 */
      0x10, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,    /* uint64 */
      0x11, 0xd0, 0x80,                                              /* int8 */
      0x12, 0xd1, 0x80, 0x00,                                        /* int16 */
      0x13, 0xd2, 0x80, 0,    0,    0,                               /* int32 */
      0x14, 0xd3, 0x80, 0,    0,    0,    0,    0,    0,    0,       /* int64 */
      0x15, 0xd4, 0x01, 0xaa,                                        /* fixext1 */
      0x16, 0xd5, 0x01, 0xaa, 0xbb,                                  /* fixext2 */
      0x17, 0xd6, 0x01, 1,    2,    3,    4,                         /* fixext4 */
      0x18, 0xd7, 0xff, 0,    0,    0,    0,    0,    0,    0,    0, /* fixext8 (timestamp) */
      0x19, 0xd8, 0x01, 1,    2,    3,    4,    5,    6,    7,    8,
      9,    10,   11,   12,   13,   14,   15,   16,   /* fixext16 */
      0x1a, 0xa3, 'a',  'b',  'c',                    /* fixstr */
      0x1b, 0xd9, 0x01, 'x',                          /* str8 */
      0x1c, 0xda, 0x00, 0x01, 'x',                    /* str16 */
      0x1d, 0xdb, 0x00, 0x00, 0x00, 0x01, 'x',        /* str32 */
      0x1e, 0x92, 0x01, 0x90,                         /* fixarray holding an empty fixarray */
      0x1f, 0xdc, 0x00, 0x01, 0x80,                   /* array16 holding an empty fixmap */
      0x20, 0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0,       /* array32 */
      0x21, 0x81, 0xa0, 0xdf, 0x00, 0x00, 0x00, 0x00, /* fixmap {"": map32 {}} */
  };
  expect_good(doc, sizeof doc);

  /* msgpack-c agrees on every value: it unpacks the whole document. */
  msgpack_zone z;
  msgpack_object o;
  size_t off = 0;
  assert_true(msgpack_zone_init(&z, 1024));
  assert_int_equal(msgpack_unpack((const char *)doc, sizeof doc, &off, &z, &o),
                   MSGPACK_UNPACK_SUCCESS);
  assert_int_equal(off, sizeof doc);
  assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
  assert_int_equal(o.via.map.size, 34);
  msgpack_zone_destroy(&z);
}

static void test_validate_scalars_at_root(void **state) {
  (void)state;
  expect_good(RAW(0x00));
  expect_good(RAW(0xc0));
  expect_good(RAW(0xa0));
  expect_good(RAW(0x90));
  expect_good(RAW(0x80));
  expect_good(RAW(0xcf, 1, 2, 3, 4, 5, 6, 7, 8));
  expect_good(RAW(0xc4, 0x00));
}

static void test_validate_map_needs_two_bytes_per_pair(void **state) {
  (void)state;
  /* A map of 2 pairs needs 4 bytes after its header; 3 are a lie. */
  expect_bad(RAW(0x82, 0x01, 0x02, 0x03), "map of 2 pairs declared, 3 bytes remain");
  expect_good(RAW(0x82, 0x01, 0x02, 0x03, 0x04));
  /* An array of 3 needs 3 bytes. */
  expect_bad(RAW(0x93, 0x01, 0x02), "array of 3 elements declared");
  expect_good(RAW(0x93, 0x01, 0x02, 0x03));
}

/* ---- validator: refused documents ---------------------------------------- */

static void test_validate_empty(void **state) {
  (void)state;
  gbx_errbuf_t eb = {0};
  assert_int_equal(gbx_mp_validate((const uint8_t *)"", 0, GBX_MAX_DEPTH, &eb), GBX_E_BAD_FRAME);
  assert_non_null(strstr(eb.msg, "empty"));
  /* eb may be NULL. */
  assert_int_equal(gbx_mp_validate((const uint8_t *)"", 0, GBX_MAX_DEPTH, NULL), GBX_E_BAD_FRAME);
}

static void test_validate_truncated_everywhere(void **state) {
  (void)state;
  pk_t k;
  pk_init(&k);
  pack_send_request(&k);
  expect_good(k.b.data, k.b.len);
  for (size_t cut = 0; cut < k.b.len; cut++) {
    gbx_errbuf_t eb = {0};
    if (validate(k.b.data, cut, &eb) != GBX_E_BAD_FRAME)
      fail_msg("a %zu-byte prefix of a %zu-byte document was accepted", cut, k.b.len);
    assert_true(eb.msg[0] != '\0');
  }
  gbx_buf_free(&k.b);
}

static void test_validate_truncated_fixed_sizes(void **state) {
  (void)state;
  expect_bad(RAW(0xcd, 0x01), "offset 0: truncated uint16 (needs 2 bytes, 1 remain)");
  expect_bad(RAW(0xd1, 0x01), "offset 0: truncated int16");
  expect_bad(RAW(0xcb, 0, 0, 0, 0, 0, 0, 0), "truncated float64");
  expect_bad(RAW(0xd8, 0x01, 0, 0), "truncated fixext16");
  expect_bad(RAW(0xda, 0x00), "truncated str header");
  expect_bad(RAW(0x91), "offset 0: array of 1 elements declared, 0 bytes remain");
  /* The array's count fits what remains, but its first element eats it. */
  expect_bad(RAW(0x92, 0xa2, 'a', 'b'), "offset 4: truncated, 1 more element(s) expected");
  /* A truncated value inside a map reports its own offset. */
  expect_bad(RAW(0x81, 0xa1, 'k', 0xce, 0x00), "offset 3: truncated uint32");
}

static void test_validate_huge_declared_sizes(void **state) {
  (void)state;
  expect_bad(RAW(0xdd, 0xff, 0xff, 0xff, 0xff), "array of 4294967295 elements declared, 0 bytes");
  expect_bad(RAW(0xdf, 0xff, 0xff, 0xff, 0xff, 0x00), "map of 4294967295 pairs");
  expect_bad(RAW(0xdc, 0xff, 0xff, 0x00, 0x00), "array of 65535 elements");
  expect_bad(RAW(0xde, 0xff, 0xff, 0x00, 0x00), "map of 65535 pairs");
  expect_bad(RAW(0xdb, 0xff, 0xff, 0xff, 0xff, 'a'), "str of 4294967295 bytes declared, 1 remain");
  expect_bad(RAW(0xda, 0xff, 0xff, 'a'), "str of 65535 bytes");
  expect_bad(RAW(0xd9, 0x05, 'a'), "str of 5 bytes");
  expect_bad(RAW(0xa5, 'a'), "str of 5 bytes");
  expect_bad(RAW(0xc6, 0xff, 0xff, 0xff, 0xff), "bin of 4294967295 bytes");
  expect_bad(RAW(0xc5, 0x01, 0x00), "bin of 256 bytes");
  expect_bad(RAW(0xc4, 0x02, 0x00), "bin of 2 bytes");
  expect_bad(RAW(0xc9, 0xff, 0xff, 0xff, 0xff, 0x01), "ext of 4294967295 bytes");
  expect_bad(RAW(0xc8, 0x00, 0x02, 0x01, 0xaa), "ext of 2 bytes");
  /* ext8 of 1 data byte needs 2 bytes (type + data). */
  expect_bad(RAW(0xc7, 0x01, 0x05), "ext of 1 bytes declared, 1 remain");
  /* Nested: a value deep inside a map lies about its size. */
  expect_bad(RAW(0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00),
             "offset 3: array of 4294967295");
}

/* n nested single-element arrays around a nil. */
static size_t nest(uint8_t *out, unsigned n) {
  memset(out, 0x91, n);
  out[n] = 0xc0;
  return n + 1;
}

static void test_validate_depth(void **state) {
  (void)state;
  uint8_t b[64];
  size_t n = nest(b, 8);
  expect_good(b, n);
  n = nest(b, 9);
  expect_bad(b, n, "offset 8: nesting deeper than 8");
  /* An empty container still counts as a level. */
  memset(b, 0x91, 8);
  b[8] = 0x80;
  expect_bad(b, 9, "nesting deeper than 8");
  /* Maps count too: 9 nested {"a": ...}. */
  size_t p = 0;
  for (int i = 0; i < 9; i++) {
    b[p++] = 0x81;
    b[p++] = 0xa1;
    b[p++] = 'a';
  }
  b[p++] = 0x01;
  expect_bad(b, p, "nesting deeper than 8");
  /* The caller chooses the limit; asking for more than msgpack-c can unpack
   * (32 levels) is clamped. */
  gbx_errbuf_t eb;
  uint8_t deep[40];
  n = nest(deep, 9);
  assert_int_equal(gbx_mp_validate(deep, n, 9, &eb), GBX_E_OK);
  assert_int_equal(gbx_mp_validate(deep, n, 0, &eb), GBX_E_BAD_FRAME);
  assert_int_equal(gbx_mp_validate((const uint8_t *)"\x05", 1, 0, &eb), GBX_E_OK);
  n = nest(deep, 33);
  assert_int_equal(gbx_mp_validate(deep, n, 1000, &eb), GBX_E_BAD_FRAME);
  n = nest(deep, 32);
  assert_int_equal(gbx_mp_validate(deep, n, 1000, &eb), GBX_E_OK);
}

static void test_validate_reserved_byte(void **state) {
  (void)state;
  expect_bad(RAW(0xc1), "offset 0: reserved byte 0xc1");
  expect_bad(RAW(0x81, 0xa1, 'k', 0xc1), "offset 3: reserved byte 0xc1");
  expect_bad(RAW(0x92, 0x01, 0xc1), "offset 2");
}

static void test_validate_trailing(void **state) {
  (void)state;
  expect_bad(RAW(0x80, 0x00), "offset 1: 1 trailing byte");
  expect_bad(RAW(0x81, 0x01, 0x02, 0xc0, 0xc0), "2 trailing");
  expect_bad(RAW(0x01, 0x02), "trailing");
}

/* Whatever the validator accepts, msgpack-c unpacks whole: random bytes and
 * mutations of a valid document, with a fixed seed so failures repeat. */
static void test_validate_agrees_with_msgpack_c(void **state) {
  (void)state;
  uint32_t seed = 12345;
  pk_t k;
  pk_init(&k);
  pack_send_request(&k);
  unsigned accepted = 0, refused = 0;
  for (int iter = 0; iter < 20000; iter++) {
    uint8_t b[128];
    size_t n;
    if (iter % 2 == 0) {
      seed = seed * 1103515245u + 12345u;
      n = 1 + (seed >> 16) % sizeof b;
      for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (uint8_t)(seed >> 16);
      }
    } else {
      n = k.b.len < sizeof b ? k.b.len : sizeof b;
      memcpy(b, k.b.data, n);
      seed = seed * 1103515245u + 12345u;
      b[(seed >> 16) % n] = (uint8_t)(seed >> 8);
    }
    if (gbx_mp_validate(b, n, GBX_MAX_DEPTH, NULL) != GBX_E_OK) {
      refused++;
      continue;
    }
    accepted++;
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    assert_true(msgpack_zone_init(&z, 1024));
    assert_int_equal(msgpack_unpack((const char *)b, n, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, n);
    msgpack_zone_destroy(&z);
  }
  /* Both branches were really exercised. */
  assert_true(accepted > 100);
  assert_true(refused > 100);
  gbx_buf_free(&k.b);
}

/* ---- documents ------------------------------------------------------------ */

static void test_doc_parse_send_request(void **state) {
  (void)state;
  pk_t k;
  gbx_doc_t d;
  pk_init(&k);
  pack_send_request(&k);
  parse_ok(&d, &k);
  assert_int_equal(d.root.type, MSGPACK_OBJECT_MAP);
  assert_int_equal(d.root.via.map.size, 5);
  const msgpack_object *q = gbx_map_get(&d.root, "q");
  assert_non_null(q);
  assert_int_equal(q->type, MSGPACK_OBJECT_STR);
  /* Strings point into the caller's buffer, not copies. */
  assert_true((const uint8_t *)q->via.str.ptr >= k.b.data);
  assert_true((const uint8_t *)q->via.str.ptr < k.b.data + k.b.len);
  assert_memory_equal(q->via.str.ptr, "orders", 6);
  gbx_doc_free(&d);
  gbx_doc_free(&d); /* a second free is harmless */
  gbx_buf_free(&k.b);
}

static void test_doc_parse_bad_root(void **state) {
  (void)state;
  gbx_doc_t d;
  gbx_errbuf_t eb = {0};
  assert_int_equal(gbx_doc_parse(&d, RAW(0x91, 0x01), &eb), GBX_E_BAD_FRAME);
  assert_non_null(strstr(eb.msg, "array, not a map"));
  assert_int_equal(gbx_doc_parse(&d, RAW(0x07), &eb), GBX_E_BAD_FRAME);
  assert_int_equal(gbx_doc_parse(&d, RAW(0xc1), &eb), GBX_E_BAD_FRAME);
  assert_non_null(strstr(eb.msg, "reserved"));
  assert_int_equal(gbx_doc_parse(&d, (const uint8_t *)"", 0, &eb), GBX_E_BAD_FRAME);
  /* An empty map is a valid (if useless) request. */
  assert_int_equal(gbx_doc_parse(&d, RAW(0x80), &eb), GBX_E_OK);
  gbx_doc_free(&d);
}

static void test_doc_parse_depth(void **state) {
  (void)state;
  uint8_t b[64];
  gbx_doc_t d;
  gbx_errbuf_t eb;
  /* {"a": 7 nested arrays}: 8 levels, accepted. */
  b[0] = 0x81;
  b[1] = 0xa1;
  b[2] = 'a';
  size_t n = 3 + nest(b + 3, 7);
  assert_int_equal(gbx_doc_parse(&d, b, n, &eb), GBX_E_OK);
  gbx_doc_free(&d);
  n = 3 + nest(b + 3, 8);
  assert_int_equal(gbx_doc_parse(&d, b, n, &eb), GBX_E_BAD_FRAME);
  assert_non_null(strstr(eb.msg, "nesting"));
}

static void test_doc_parse_keys(void **state) {
  (void)state;
  gbx_doc_t d;
  gbx_errbuf_t eb = {0};
  /* Non-string key. */
  assert_int_equal(gbx_doc_parse(&d, RAW(0x81, 0x01, 0x02), &eb), GBX_E_BAD_FRAME);
  assert_non_null(strstr(eb.msg, "uint, not a str"));
  /* bin key is not a str key either. */
  assert_int_equal(gbx_doc_parse(&d, RAW(0x81, 0xc4, 0x01, 'q', 0x02), &eb), GBX_E_BAD_FRAME);
  /* Duplicate key. */
  assert_int_equal(
      gbx_doc_parse(&d, RAW(0x83, 0xa1, 'q', 0x01, 0xa2, 'i', 'd', 0x02, 0xa1, 'q', 0x03), &eb),
      GBX_E_DUPLICATE_FIELD);
  assert_int_equal(eb.code, GBX_E_DUPLICATE_FIELD);
  assert_string_equal(eb.msg, "field 'q' appears more than once");
  /* Keys differing only in length are distinct: "q" and "q\0". */
  assert_int_equal(gbx_doc_parse(&d, RAW(0x82, 0xa1, 'q', 0x01, 0xa2, 'q', 0x00, 0x02), &eb),
                   GBX_E_OK);
  gbx_doc_free(&d);
  /* The empty key is a key like any other. */
  assert_int_equal(gbx_doc_parse(&d, RAW(0x82, 0xa0, 0x01, 0xa0, 0x02), &eb),
                   GBX_E_DUPLICATE_FIELD);
}

/* Large maps take the sorting path; the last key repeats the first. */
static void test_doc_parse_large_map_keys(void **state) {
  (void)state;
  for (int dup = 0; dup <= 1; dup++) {
    pk_t k;
    gbx_doc_t d;
    gbx_errbuf_t eb = {0};
    char key[16];
    pk_init(&k);
    msgpack_pack_map(&k.p, 1000);
    for (int i = 0; i < 1000; i++) {
      snprintf(key, sizeof key, "k%d", (dup && i == 999) ? 17 : i);
      gbx_pack_kv_u64(&k.p, key, (uint64_t)i);
    }
    gbx_err_t rc = gbx_doc_parse(&d, k.b.data, k.b.len, &eb);
    if (dup) {
      assert_int_equal(rc, GBX_E_DUPLICATE_FIELD);
      assert_string_equal(eb.msg, "field 'k17' appears more than once");
    } else {
      assert_int_equal(rc, GBX_E_OK);
      assert_true(gbx_map_keys_unique(&d.root));
      gbx_doc_free(&d);
    }
    gbx_buf_free(&k.b);
  }
}

/* Zone memory stays a small multiple of the payload even for the densest
 * payloads: a million one-byte elements, and half a million one-byte pairs.
 * Measured with glibc's mallinfo2; under a sanitizer, whose allocator glibc
 * does not see, the measurement is skipped. */
static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

static void test_doc_parse_zone_bounded(void **state) {
  (void)state;
  /* just under the object cap: the root map, its key and the container
   * count as three objects */
  const size_t n = GBX_MAX_OBJECTS - 3;
  uint8_t *b = malloc(5 + 2 * n);
  assert_non_null(b);
  for (int shape = 0; shape < 2; shape++) {
    /* shape 0: {"a": [nil x n]}; shape 1: {"a": {1-byte str: nil x n/2}}
     * (keys are distinct fixints; nested keys need not be strings). */
    size_t len = 0;
    b[len++] = 0x81;
    b[len++] = 0xa1;
    b[len++] = 'a';
    size_t count = shape == 0 ? n : n / 2;
    b[len++] = shape == 0 ? 0xdd : 0xdf;
    for (int i = 3; i >= 0; i--)
      b[len++] = (uint8_t)(count >> (8 * i));
    for (size_t i = 0; i < count; i++) {
      if (shape == 1)
        b[len++] = (uint8_t)(i & 0x7f);
      b[len++] = 0xc0;
    }
    gbx_doc_t d;
    gbx_errbuf_t eb;
    size_t before = heap_in_use();
    assert_int_equal(gbx_doc_parse(&d, b, len, &eb), GBX_E_OK);
    size_t used = heap_in_use() - before;
    gbx_doc_free(&d);
    if (used == 0) {
      free(b);
      skip();
    }
    /* 24 bytes per object is msgpack-c's own cost; chunk rounding may at
     * most double it. */
    assert_true(used >= 24 * (len - 8) / 2);
    assert_true(used <= 48 * len + 2 * 65536);
  }
  /* one object more than the cap is refused before anything is unpacked */
  {
    size_t len = 0, count = GBX_MAX_OBJECTS - 2;
    b[len++] = 0x81;
    b[len++] = 0xa1;
    b[len++] = 'a';
    b[len++] = 0xdd;
    for (int i = 3; i >= 0; i--)
      b[len++] = (uint8_t)(count >> (8 * i));
    for (size_t i = 0; i < count; i++)
      b[len++] = 0xc0;
    gbx_doc_t d;
    gbx_errbuf_t eb;
    assert_int_equal(gbx_doc_parse(&d, b, len, &eb), GBX_E_BAD_FRAME);
    assert_non_null(strstr(eb.msg, "objects"));
  }
  free(b);
}

static void test_map_keys_unique(void **state) {
  (void)state;
  msgpack_zone z;
  msgpack_object o;
  size_t off = 0;
  assert_true(msgpack_zone_init(&z, 1024));
  /* msgpack_unpack itself does not refuse duplicates: the codec must. */
  assert_int_equal(msgpack_unpack("\x82\xa1x\x01\xa1x\x02", 7, &off, &z, &o),
                   MSGPACK_UNPACK_SUCCESS);
  assert_false(gbx_map_keys_unique(&o));
  off = 0;
  assert_int_equal(msgpack_unpack("\x82\xa1x\x01\xa1y\x02", 7, &off, &z, &o),
                   MSGPACK_UNPACK_SUCCESS);
  assert_true(gbx_map_keys_unique(&o));
  off = 0;
  assert_int_equal(msgpack_unpack("\x82\xa1x\x01\x05\x02", 6, &off, &z, &o),
                   MSGPACK_UNPACK_SUCCESS);
  assert_false(gbx_map_keys_unique(&o));
  off = 0;
  assert_int_equal(msgpack_unpack("\x91\x01", 2, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
  assert_false(gbx_map_keys_unique(&o));
  assert_null(gbx_map_get(&o, "x"));
  assert_false(gbx_map_keys_unique(NULL));
  msgpack_zone_destroy(&z);
}

/* ---- accessors ------------------------------------------------------------ */

/* The document every accessor test reads. */
static void pack_fields(pk_t *k) {
  msgpack_packer *p = &k->p;
  msgpack_pack_map(p, 14);
  gbx_pack_kv_u64(p, "vis", 50000);
  gbx_pack_kv_u64(p, "max", 10);
  gbx_pack_kv_i64(p, "neg", -1);
  gbx_pack_cstr(p, "flt");
  msgpack_pack_double(p, 1.5);
  gbx_pack_kv_cstr(p, "q", "orders");
  gbx_pack_kv_bin(p, "body", "abc", 3);
  gbx_pack_kv_bool(p, "yes", 1);
  gbx_pack_kv_bool(p, "no", 0);
  gbx_pack_cstr(p, "list");
  msgpack_pack_array(p, 3);
  msgpack_pack_uint8(p, 1);
  msgpack_pack_uint8(p, 2);
  msgpack_pack_uint8(p, 3);
  gbx_pack_cstr(p, "tags");
  msgpack_pack_map(p, 2);
  gbx_pack_kv_cstr(p, "a", "1");
  gbx_pack_kv_cstr(p, "b", "2");
  gbx_pack_cstr(p, "duptags");
  msgpack_pack_map(p, 2);
  gbx_pack_kv_cstr(p, "a", "1");
  gbx_pack_kv_cstr(p, "a", "2");
  gbx_pack_cstr(p, "intkeys");
  msgpack_pack_map(p, 1);
  msgpack_pack_uint8(p, 1);
  msgpack_pack_uint8(p, 2);
  gbx_pack_cstr(p, "nil");
  msgpack_pack_nil(p);
  gbx_pack_cstr(p, "i8");
  /* A non-negative value in a signed format is still a uint. */
  msgpack_pack_fix_int8(p, 5);
}

static void test_get_u64(void **state) {
  (void)state;
  pk_t k;
  gbx_doc_t d;
  gbx_errbuf_t eb = {0};
  uint64_t v = 99;
  int present = -1;
  pk_init(&k);
  pack_fields(&k);
  parse_ok(&d, &k);

  assert_int_equal(gbx_get_u64(&d.root, "max", 1, 1, 100, &v, &present, &eb), GBX_E_OK);
  assert_int_equal(v, 10);
  assert_int_equal(present, 1);
  assert_int_equal(gbx_get_u64(&d.root, "i8", 1, 0, 100, &v, NULL, &eb), GBX_E_OK);
  assert_int_equal(v, 5);

  assert_int_equal(gbx_get_u64(&d.root, "vis", 1, 0, GBX_VIS_MAX, &v, NULL, &eb),
                   GBX_E_OUT_OF_RANGE);
  assert_string_equal(eb.msg, "field 'vis': 50000 is out of range 0-43200");
  assert_int_equal(eb.code, GBX_E_OUT_OF_RANGE);
  assert_int_equal(v, 5); /* untouched on error */
  assert_int_equal(gbx_get_u64(&d.root, "max", 1, 11, 100, &v, NULL, &eb), GBX_E_OUT_OF_RANGE);

  assert_int_equal(gbx_get_u64(&d.root, "neg", 1, 0, 100, &v, NULL, &eb), GBX_E_OUT_OF_RANGE);
  assert_string_equal(eb.msg, "field 'neg': -1 is out of range 0-100");
  assert_int_equal(gbx_get_u64(&d.root, "flt", 1, 0, 100, &v, NULL, &eb), GBX_E_BAD_TYPE);
  assert_string_equal(eb.msg, "field 'flt': expected uint, got float");
  assert_int_equal(gbx_get_u64(&d.root, "q", 1, 0, 100, &v, NULL, &eb), GBX_E_BAD_TYPE);
  assert_int_equal(gbx_get_u64(&d.root, "nil", 1, 0, 100, &v, NULL, &eb), GBX_E_BAD_TYPE);
  assert_int_equal(gbx_get_u64(&d.root, "yes", 1, 0, 100, &v, NULL, &eb), GBX_E_BAD_TYPE);

  assert_int_equal(gbx_get_u64(&d.root, "wait", 1, 0, 20, &v, &present, &eb), GBX_E_MISSING_FIELD);
  assert_string_equal(eb.msg, "field 'wait' is missing");
  v = 42;
  assert_int_equal(gbx_get_u64(&d.root, "wait", 0, 0, 20, &v, &present, &eb), GBX_E_OK);
  assert_int_equal(present, 0);
  assert_int_equal(v, 42);
  /* The container itself must be a map. */
  const msgpack_object *list = gbx_map_get(&d.root, "list");
  assert_int_equal(gbx_get_u64(list, "x", 0, 0, 20, &v, &present, &eb), GBX_E_BAD_TYPE);

  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

static void test_get_u64_extremes(void **state) {
  (void)state;
  pk_t k;
  gbx_doc_t d;
  gbx_errbuf_t eb;
  uint64_t v = 0;
  pk_init(&k);
  msgpack_pack_map(&k.p, 2);
  gbx_pack_kv_u64(&k.p, "big", UINT64_MAX);
  gbx_pack_kv_i64(&k.p, "min", INT64_MIN);
  parse_ok(&d, &k);
  assert_int_equal(gbx_get_u64(&d.root, "big", 1, 0, UINT64_MAX, &v, NULL, &eb), GBX_E_OK);
  assert_true(v == UINT64_MAX);
  assert_int_equal(gbx_get_u64(&d.root, "min", 1, 0, UINT64_MAX, &v, NULL, &eb),
                   GBX_E_OUT_OF_RANGE);
  assert_non_null(strstr(eb.msg, "-9223372036854775808"));
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

static void test_get_bool(void **state) {
  (void)state;
  pk_t k;
  gbx_doc_t d;
  gbx_errbuf_t eb;
  int v = 7, present = 0;
  pk_init(&k);
  pack_fields(&k);
  parse_ok(&d, &k);
  assert_int_equal(gbx_get_bool(&d.root, "yes", 1, &v, &present, &eb), GBX_E_OK);
  assert_int_equal(v, 1);
  assert_int_equal(present, 1);
  assert_int_equal(gbx_get_bool(&d.root, "no", 1, &v, NULL, &eb), GBX_E_OK);
  assert_int_equal(v, 0);
  assert_int_equal(gbx_get_bool(&d.root, "max", 1, &v, NULL, &eb), GBX_E_BAD_TYPE);
  assert_string_equal(eb.msg, "field 'max': expected bool, got uint");
  assert_int_equal(gbx_get_bool(&d.root, "absent", 1, &v, NULL, &eb), GBX_E_MISSING_FIELD);
  assert_int_equal(gbx_get_bool(&d.root, "absent", 0, &v, &present, &eb), GBX_E_OK);
  assert_int_equal(present, 0);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

static void test_get_str(void **state) {
  (void)state;
  pk_t k;
  gbx_doc_t d;
  gbx_errbuf_t eb;
  const char *p = NULL;
  uint32_t n = 0;
  int present = 0;
  pk_init(&k);
  pack_fields(&k);
  parse_ok(&d, &k);
  assert_int_equal(gbx_get_str(&d.root, "q", 1, 1, GBX_MAX_NAME, &p, &n, &present, &eb), GBX_E_OK);
  assert_int_equal(n, 6);
  assert_memory_equal(p, "orders", 6);
  assert_int_equal(present, 1);
  assert_int_equal(gbx_get_str(&d.root, "q", 1, 1, 5, &p, &n, NULL, &eb), GBX_E_OUT_OF_RANGE);
  assert_string_equal(eb.msg, "field 'q': length 6 is out of range 1-5");
  assert_int_equal(gbx_get_str(&d.root, "q", 1, 7, 10, &p, &n, NULL, &eb), GBX_E_OUT_OF_RANGE);
  /* bin is not a str. */
  assert_int_equal(gbx_get_str(&d.root, "body", 1, 0, 10, &p, &n, NULL, &eb), GBX_E_BAD_TYPE);
  assert_string_equal(eb.msg, "field 'body': expected str, got bin");
  assert_int_equal(gbx_get_str(&d.root, "nope", 1, 0, 10, &p, &n, NULL, &eb), GBX_E_MISSING_FIELD);
  assert_int_equal(gbx_get_str(&d.root, "nope", 0, 0, 10, &p, &n, &present, &eb), GBX_E_OK);
  assert_int_equal(present, 0);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

static void test_get_bytes(void **state) {
  (void)state;
  pk_t k;
  gbx_doc_t d;
  gbx_errbuf_t eb;
  const char *p = NULL;
  uint32_t n = 0;
  pk_init(&k);
  pack_fields(&k);
  parse_ok(&d, &k);
  assert_int_equal(gbx_get_bytes(&d.root, "body", 1, 3, &p, &n, NULL, &eb), GBX_E_OK);
  assert_int_equal(n, 3);
  assert_memory_equal(p, "abc", 3);
  assert_int_equal(gbx_get_bytes(&d.root, "q", 1, 100, &p, &n, NULL, &eb), GBX_E_OK);
  assert_int_equal(n, 6);
  assert_int_equal(gbx_get_bytes(&d.root, "body", 1, 2, &p, &n, NULL, &eb), GBX_E_OUT_OF_RANGE);
  assert_string_equal(eb.msg, "field 'body': 3 bytes is more than the limit of 2");
  assert_int_equal(gbx_get_bytes(&d.root, "list", 1, 2, &p, &n, NULL, &eb), GBX_E_BAD_TYPE);
  assert_int_equal(gbx_get_bytes(&d.root, "gone", 1, 2, &p, &n, NULL, &eb), GBX_E_MISSING_FIELD);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

static void test_get_array(void **state) {
  (void)state;
  pk_t k;
  gbx_doc_t d;
  gbx_errbuf_t eb;
  const msgpack_object_array *a = NULL;
  pk_init(&k);
  pack_fields(&k);
  parse_ok(&d, &k);
  assert_int_equal(gbx_get_array(&d.root, "list", 1, 1, 3, &a, NULL, &eb), GBX_E_OK);
  assert_int_equal(a->size, 3);
  assert_int_equal(a->ptr[2].via.u64, 3);
  assert_int_equal(gbx_get_array(&d.root, "list", 1, 1, 2, &a, NULL, &eb), GBX_E_OUT_OF_RANGE);
  assert_string_equal(eb.msg, "field 'list': 3 items is out of range 1-2");
  assert_int_equal(gbx_get_array(&d.root, "list", 1, 4, 10, &a, NULL, &eb), GBX_E_OUT_OF_RANGE);
  assert_int_equal(gbx_get_array(&d.root, "tags", 1, 0, 10, &a, NULL, &eb), GBX_E_BAD_TYPE);
  assert_int_equal(gbx_get_array(&d.root, "entries", 1, 1, 10, &a, NULL, &eb), GBX_E_MISSING_FIELD);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

static void test_get_map(void **state) {
  (void)state;
  pk_t k;
  gbx_doc_t d;
  gbx_errbuf_t eb;
  const msgpack_object *m = NULL;
  int present = 0;
  pk_init(&k);
  pack_fields(&k);
  parse_ok(&d, &k);
  assert_int_equal(gbx_get_map(&d.root, "tags", 1, 2, &m, &present, &eb), GBX_E_OK);
  assert_int_equal(m->via.map.size, 2);
  assert_int_equal(present, 1);
  assert_int_equal(gbx_get_map(&d.root, "tags", 1, 1, &m, NULL, &eb), GBX_E_OUT_OF_RANGE);
  assert_string_equal(eb.msg, "field 'tags': 2 entries is more than the limit of 1");
  assert_int_equal(gbx_get_map(&d.root, "duptags", 1, 10, &m, NULL, &eb), GBX_E_DUPLICATE_FIELD);
  assert_string_equal(eb.msg, "field 'duptags': key 'a' appears twice");
  assert_int_equal(gbx_get_map(&d.root, "intkeys", 1, 10, &m, NULL, &eb), GBX_E_BAD_TYPE);
  assert_int_equal(gbx_get_map(&d.root, "list", 1, 10, &m, NULL, &eb), GBX_E_BAD_TYPE);
  assert_int_equal(gbx_get_map(&d.root, "attrs", 1, 10, &m, NULL, &eb), GBX_E_MISSING_FIELD);
  assert_int_equal(gbx_get_map(&d.root, "attrs", 0, 10, &m, &present, &eb), GBX_E_OK);
  assert_int_equal(present, 0);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

/* ---- names ---------------------------------------------------------------- */

static void test_names(void **state) {
  (void)state;
  char s[100];
  memset(s, 'a', sizeof s);
  assert_true(gbx_name_valid(s, 1));
  assert_true(gbx_name_valid(s, 80));
  assert_false(gbx_name_valid(s, 81));
  assert_false(gbx_name_valid(s, 0));
  assert_true(gbx_name_valid("Az09_-", 6));
  assert_false(gbx_name_valid("a.b", 3));
  assert_false(gbx_name_valid("a b", 3));
  assert_false(gbx_name_valid("a/b", 3));
  assert_false(gbx_name_valid("a\0b", 3));
  assert_false(gbx_name_valid("\xc3\xa9", 2));
  assert_true(gbx_entry_id_valid(s, 80));
  assert_false(gbx_entry_id_valid(s, 81));
  assert_false(gbx_entry_id_valid("", 0));
  assert_false(gbx_entry_id_valid("x:y", 3));
  assert_true(gbx_entry_id_valid("msg-1_A", 7));
}

/* ---- attributes ------------------------------------------------------------ */

/* One attribute to pack: value packed as bin when bin is set. */
typedef struct attr_spec {
  const char *name, *type, *value;
  int bin;
} attr_spec_t;

/* Packs {"attrs": {name: {"t": type, "v": value}, ...}}, parses it and
 * decodes the attributes; returns the decode result. */
static gbx_err_t decode_specs(const attr_spec_t *specs, unsigned n, gbx_attr_t *out,
                              uint32_t *count, gbx_errbuf_t *eb, pk_t *k, gbx_doc_t *d) {
  pk_init(k);
  msgpack_pack_map(&k->p, 1);
  gbx_pack_cstr(&k->p, "attrs");
  msgpack_pack_map(&k->p, n);
  for (unsigned i = 0; i < n; i++) {
    gbx_pack_cstr(&k->p, specs[i].name);
    msgpack_pack_map(&k->p, 2);
    gbx_pack_kv_cstr(&k->p, "t", specs[i].type);
    if (specs[i].bin)
      gbx_pack_kv_bin(&k->p, "v", specs[i].value, strlen(specs[i].value));
    else
      gbx_pack_kv_cstr(&k->p, "v", specs[i].value);
  }
  parse_ok(d, k);
  return gbx_attrs_decode(gbx_map_get(&d->root, "attrs"), out, count, eb);
}

static gbx_err_t decode_one(const char *name, const char *type, const char *value, int bin,
                            gbx_errbuf_t *eb) {
  attr_spec_t s = {name, type, value, bin};
  gbx_attr_t out[GBX_MAX_ATTRS];
  uint32_t n = 0;
  pk_t k;
  gbx_doc_t d;
  gbx_err_t rc = decode_specs(&s, 1, out, &n, eb, &k, &d);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
  return rc;
}

static void expect_attr_ok(const char *name, const char *type, const char *value, int bin) {
  gbx_errbuf_t eb = {0};
  if (decode_one(name, type, value, bin, &eb) != GBX_E_OK)
    fail_msg("attribute %s/%s/%s refused: %s", name, type, value, eb.msg);
}

static void expect_attr_bad(const char *name, const char *type, const char *value, int bin,
                            const char *needle) {
  gbx_errbuf_t eb = {0};
  if (decode_one(name, type, value, bin, &eb) != GBX_E_BAD_ATTRIBUTE)
    fail_msg("attribute %s/%s/%s accepted", name, type, value);
  assert_int_equal(eb.code, GBX_E_BAD_ATTRIBUTE);
  if (needle && !strstr(eb.msg, needle))
    fail_msg("message '%s' lacks '%s'", eb.msg, needle);
}

static void test_attrs_valid(void **state) {
  (void)state;
  static const attr_spec_t specs[] = {
      {"s", "String", "hello", 0},      {"n", "Number", "-12.5e3", 0},
      {"f", "Number.float", "3.25", 0}, {"b", "Binary", "\x01\x02", 1},
      {"bs", "Binary.jpeg", "raw", 0},  {"x.y-z_1", "String.xyz", "v", 0},
  };
  gbx_attr_t out[GBX_MAX_ATTRS];
  uint32_t n = 0;
  gbx_errbuf_t eb = {0};
  pk_t k;
  gbx_doc_t d;
  unsigned count = sizeof specs / sizeof specs[0];
  assert_int_equal(decode_specs(specs, count, out, &n, &eb, &k, &d), GBX_E_OK);
  assert_int_equal(n, count);
  uint64_t size = 0;
  for (unsigned i = 0; i < count; i++) {
    assert_int_equal(out[i].name_len, strlen(specs[i].name));
    assert_memory_equal(out[i].name, specs[i].name, out[i].name_len);
    assert_int_equal(out[i].type_len, strlen(specs[i].type));
    assert_memory_equal(out[i].type, specs[i].type, out[i].type_len);
    assert_int_equal(out[i].value_len, strlen(specs[i].value));
    assert_memory_equal(out[i].value, specs[i].value, out[i].value_len);
    size += strlen(specs[i].name) + strlen(specs[i].type) + strlen(specs[i].value);
  }
  assert_int_equal(gbx_attrs_size(out, n), size);
  assert_int_equal(gbx_attrs_size(out, 0), 0);

  /* Round trip: pack, parse, decode gives the same attributes; Binary
   * values travel as bin, the others as str. */
  pk_t k2;
  gbx_doc_t d2;
  gbx_attr_t back[GBX_MAX_ATTRS];
  uint32_t n2 = 0;
  pk_init(&k2);
  msgpack_pack_map(&k2.p, 1);
  gbx_pack_cstr(&k2.p, "attrs");
  gbx_attrs_pack(&k2.p, out, n);
  parse_ok(&d2, &k2);
  const msgpack_object *am = gbx_map_get(&d2.root, "attrs");
  assert_int_equal(gbx_attrs_decode(am, back, &n2, &eb), GBX_E_OK);
  assert_int_equal(n2, n);
  for (unsigned i = 0; i < n; i++) {
    assert_int_equal(back[i].value_len, out[i].value_len);
    assert_memory_equal(back[i].value, out[i].value, out[i].value_len);
    assert_memory_equal(back[i].type, out[i].type, out[i].type_len);
    const msgpack_object *v = gbx_map_get(&am->via.map.ptr[i].val, "v");
    int binary = strncmp(specs[i].type, "Binary", 6) == 0;
    assert_int_equal(v->type, binary ? MSGPACK_OBJECT_BIN : MSGPACK_OBJECT_STR);
  }
  gbx_doc_free(&d2);
  gbx_buf_free(&k2.b);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);

  /* An empty attribute map is fine. */
  assert_int_equal(decode_specs(specs, 0, out, &n, &eb, &k, &d), GBX_E_OK);
  assert_int_equal(n, 0);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

static void test_attrs_numbers(void **state) {
  (void)state;
  static const char *good[] = {"0", "-1", "+1", "12.5", "-12.5e3", "1E10", "1e-5", "007", "1.0e+2"};
  static const char *bad[] = {"1.2.3", "abc", "+",    "-",   ".5",  "5.",  "1e",    "1e+",
                              "1 ",    " 1",  "0x10", "1,5", "NaN", "inf", "1e5.5", "--1"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    expect_attr_ok("n", "Number", good[i], 0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_attr_bad("n", "Number", bad[i], 0, "is not a decimal number");
  expect_attr_bad("n", "Number.int", "1.2.3", 0, "'1.2.3' is not a decimal number");
}

/* SQS's range: 38 significant digits, magnitude in [1e-128, 1e126). The
 * decoder accepts all of these (stored records must still read); the send
 * paths call gbx_attrs_check_numbers. */
static void test_attrs_number_range(void **state) {
  (void)state;
  static const char *good[] = {"0",
                               "-0.000e999999999999",
                               "12345678901234567890123456789012345678",
                               "-1234567890123456789.0123456789012345678",
                               "00012345678901234567890123456789012345678000",
                               "1e125",
                               "9.9999999999999999999999999999999999999E+125",
                               "1e-128",
                               "0.0001e-124",
                               "1000000000000000000000000000000000000000000000000",
                               "10e124"};
  static const char *bad[] = {"123456789012345678901234567890123456789",
                              "1.00000000000000000000000000000000000001",
                              "1e126",
                              "10e125",
                              "-1e126",
                              "1e-129",
                              "0.01e-127",
                              "1e99999999999999999999",
                              "1e-99999999999999999999"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    gbx_attr_t a = {"n", 1, "Number", 6, good[i], (uint32_t)strlen(good[i])};
    gbx_errbuf_t eb = {0};
    assert_int_equal(gbx_attrs_check_numbers(&a, 1, &eb), GBX_E_OK);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gbx_attr_t a[2] = {{"s", 1, "String", 6, "1e999", 5},
                       {"n", 1, "Number.x", 8, bad[i], (uint32_t)strlen(bad[i])}};
    gbx_errbuf_t eb = {0};
    expect_attr_ok("n", "Number", bad[i], 0);
    assert_int_equal(gbx_attrs_check_numbers(a, 2, &eb), GBX_E_BAD_ATTRIBUTE);
    assert_non_null(strstr(eb.msg, "is out of range"));
    assert_non_null(strstr(eb.msg, "attribute 'n'"));
  }
}

static void test_attrs_bad_names(void **state) {
  (void)state;
  char longname[300];
  memset(longname, 'a', sizeof longname);
  longname[256] = '\0';
  expect_attr_ok(longname, "String", "v", 0);
  longname[256] = 'a';
  longname[257] = '\0';
  expect_attr_bad(longname, "String", "v", 0, "longer than 256");
  expect_attr_bad("AWS.x", "String", "v", 0, "reserved prefix");
  expect_attr_bad("aws.x", "String", "v", 0, "reserved prefix");
  expect_attr_bad("Amazon.y", "String", "v", 0, "reserved prefix");
  expect_attr_bad("AMAZON.y", "String", "v", 0, "reserved prefix");
  expect_attr_ok("AWSx", "String", "v", 0);
  expect_attr_ok("Amazonian", "String", "v", 0);
  expect_attr_bad(".a", "String", "v", 0, "starts or ends with '.'");
  expect_attr_bad("a.", "String", "v", 0, "starts or ends with '.'");
  expect_attr_bad("a..b", "String", "v", 0, "contains '..'");
  expect_attr_bad("a b", "String", "v", 0, "outside A-Za-z0-9_-.");
  expect_attr_bad("a/b", "String", "v", 0, "outside");
  expect_attr_bad("", "String", "v", 0, "is empty");
}

static void test_attrs_bad_types_and_values(void **state) {
  (void)state;
  char longtype[300];
  memcpy(longtype, "String.", 7);
  memset(longtype + 7, 'x', 249);
  longtype[256] = '\0';
  expect_attr_ok("a", longtype, "v", 0);
  longtype[256] = 'x';
  longtype[257] = '\0';
  expect_attr_bad("a", longtype, "v", 0, "is not String, Number or Binary");
  expect_attr_bad("a", "string", "v", 0, "type 'string' is not String");
  expect_attr_bad("a", "Strings", "v", 0, "is not String");
  expect_attr_bad("a", "Strin", "v", 0, "is not String");
  expect_attr_bad("a", "String.", "v", 0, "is not String");
  expect_attr_bad("a", "", "v", 0, "is not String");
  expect_attr_bad("a", "Number.x y", "1", 0, "is not String");
  expect_attr_bad("a", "Stringx.y", "v", 0, "is not String");
  expect_attr_ok("a", "String.x.y", "v", 0);
  expect_attr_bad("a", "String", "", 0, "value is empty");
  expect_attr_bad("a", "Number", "", 0, "value is empty");
  expect_attr_bad("a", "Binary", "", 1, "value is empty");
  /* String and Number values are str; Binary accepts bin or str. */
  expect_attr_bad("a", "String", "v", 1, "value is a bin, expected str");
  expect_attr_bad("a", "Number", "1", 1, "value is a bin, expected str");
  expect_attr_ok("a", "Binary", "v", 1);
  expect_attr_ok("a", "Binary", "v", 0);
}

/* Attribute maps written byte by byte, for shapes the packer helper cannot:
 * b is the attribute map, parsed as the value of {"x": b}. */
static gbx_err_t decode_raw(const uint8_t *b, size_t n, gbx_errbuf_t *eb) {
  uint8_t doc[256] = {0x81, 0xa1, 'x'};
  gbx_doc_t d;
  gbx_attr_t out[GBX_MAX_ATTRS];
  uint32_t count = 0;
  assert_true(n + 3 <= sizeof doc);
  memcpy(doc + 3, b, n);
  gbx_err_t rc = gbx_doc_parse(&d, doc, n + 3, eb);
  if (rc != GBX_E_OK)
    fail_msg("raw attribute document did not parse: %s", eb->msg);
  rc = gbx_attrs_decode(gbx_map_get(&d.root, "x"), out, &count, eb);
  gbx_doc_free(&d);
  return rc;
}

static void test_attrs_bad_shapes(void **state) {
  (void)state;
  gbx_errbuf_t eb = {0};
  /* {"a": {"t": "String"}}: no value. */
  assert_int_equal(
      decode_raw(RAW(0x81, 0xa1, 'a', 0x81, 0xa1, 't', 0xa6, 'S', 't', 'r', 'i', 'n', 'g'), &eb),
      GBX_E_BAD_ATTRIBUTE);
  assert_non_null(strstr(eb.msg, "exactly \"t\" and \"v\""));
  /* {"a": {"t": "String", "v": "x", "w": 1}}: stray key. */
  assert_int_equal(decode_raw(RAW(0x81, 0xa1, 'a', 0x83, 0xa1, 't', 0xa6, 'S', 't', 'r', 'i', 'n',
                                  'g', 0xa1, 'v', 0xa1, 'x', 0xa1, 'w', 0x01),
                              &eb),
                   GBX_E_BAD_ATTRIBUTE);
  /* {"a": {"t": "String", "t": "x"}}: two keys, but not t and v. */
  assert_int_equal(
      decode_raw(RAW(0x81, 0xa1, 'a', 0x82, 0xa1, 't', 0xa1, 'x', 0xa1, 't', 0xa1, 'x'), &eb),
      GBX_E_BAD_ATTRIBUTE);
  /* {"a": "String"}: value not a map. */
  assert_int_equal(decode_raw(RAW(0x81, 0xa1, 'a', 0xa1, 'x'), &eb), GBX_E_BAD_ATTRIBUTE);
  assert_non_null(strstr(eb.msg, "value is a str, not a map"));
  /* {"a": {"t": 1, "v": "x"}}: type not a str. */
  assert_int_equal(
      decode_raw(RAW(0x81, 0xa1, 'a', 0x82, 0xa1, 't', 0x01, 0xa1, 'v', 0xa1, 'x'), &eb),
      GBX_E_BAD_ATTRIBUTE);
  assert_non_null(strstr(eb.msg, "type is a uint"));
  /* {"a": {"t": "String", "v": 5}}: value not str/bin. */
  assert_int_equal(decode_raw(RAW(0x81, 0xa1, 'a', 0x82, 0xa1, 't', 0xa6, 'S', 't', 'r', 'i', 'n',
                                  'g', 0xa1, 'v', 0x05),
                              &eb),
                   GBX_E_BAD_ATTRIBUTE);
  /* The attribute map's keys must be str and unique. */
  assert_int_equal(decode_raw(RAW(0x81, 0x01, 0x80), &eb), GBX_E_BAD_ATTRIBUTE);
  assert_non_null(strstr(eb.msg, "not a str"));
  /* Not a map at all. */
  gbx_attr_t out[GBX_MAX_ATTRS];
  uint32_t n = 0;
  msgpack_object arr = {.type = MSGPACK_OBJECT_ARRAY};
  assert_int_equal(gbx_attrs_decode(&arr, out, &n, &eb), GBX_E_BAD_ATTRIBUTE);
  assert_int_equal(gbx_attrs_decode(NULL, out, &n, &eb), GBX_E_BAD_ATTRIBUTE);
}

static void test_attrs_count_and_duplicates(void **state) {
  (void)state;
  attr_spec_t specs[11];
  char names[11][8];
  for (int i = 0; i < 11; i++) {
    snprintf(names[i], sizeof names[i], "a%d", i);
    specs[i] = (attr_spec_t){names[i], "String", "v", 0};
  }
  gbx_attr_t out[GBX_MAX_ATTRS];
  uint32_t n = 0;
  gbx_errbuf_t eb = {0};
  pk_t k;
  gbx_doc_t d;
  assert_int_equal(decode_specs(specs, 10, out, &n, &eb, &k, &d), GBX_E_OK);
  assert_int_equal(n, 10);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
  assert_int_equal(decode_specs(specs, 11, out, &n, &eb, &k, &d), GBX_E_BAD_ATTRIBUTE);
  assert_string_equal(eb.msg, "11 attributes, at most 10 are allowed");
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
  specs[1].name = "a0";
  assert_int_equal(decode_specs(specs, 2, out, &n, &eb, &k, &d), GBX_E_BAD_ATTRIBUTE);
  assert_string_equal(eb.msg, "attribute 'a0' appears twice");
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

/* ---- framing, buffer, packing ---------------------------------------------- */

static void test_frame_header(void **state) {
  (void)state;
  uint8_t h[4];
  uint32_t len = 0;
  gbx_frame_put_len(h, 0x01020304u);
  assert_int_equal(h[0], 1);
  assert_int_equal(h[1], 2);
  assert_int_equal(h[2], 3);
  assert_int_equal(h[3], 4);
  assert_int_equal(gbx_frame_peek(h, 4, &len), 1);
  assert_int_equal(len, 0x01020304u);
  gbx_frame_put_len(h, UINT32_MAX);
  assert_int_equal(gbx_frame_peek(h, 4, &len), 1);
  assert_int_equal(len, UINT32_MAX);
  len = 5;
  assert_int_equal(gbx_frame_peek(h, 3, &len), 0);
  assert_int_equal(gbx_frame_peek(h, 0, &len), 0);
  assert_int_equal(len, 5);
}

static void test_frame_round_trip(void **state) {
  (void)state;
  pk_t k;
  pk_init(&k);
  /* Two frames back to back in one buffer, as a reply stream. */
  size_t off1 = gbx_frame_begin(&k.b);
  assert_int_equal(off1, 0);
  pack_send_request(&k);
  gbx_frame_end(&k.b, off1);
  size_t off2 = gbx_frame_begin(&k.b);
  msgpack_pack_map(&k.p, 2);
  gbx_pack_kv_u64(&k.p, "id", 7);
  gbx_pack_kv_u64(&k.p, "err", 0);
  gbx_frame_end(&k.b, off2);

  uint32_t len1 = 0, len2 = 0;
  assert_int_equal(gbx_frame_peek(k.b.data, k.b.len, &len1), 1);
  assert_int_equal(off2, GBX_FRAME_HDR + len1);
  assert_int_equal(gbx_frame_peek(k.b.data + off2, k.b.len - off2, &len2), 1);
  assert_int_equal(off2 + GBX_FRAME_HDR + len2, k.b.len);

  gbx_doc_t d;
  gbx_errbuf_t eb;
  uint64_t id = 0;
  assert_int_equal(gbx_doc_parse(&d, k.b.data + GBX_FRAME_HDR, len1, &eb), GBX_E_OK);
  assert_int_equal(gbx_get_u64(&d.root, "op", 1, 0, 255, &id, NULL, &eb), GBX_E_OK);
  assert_int_equal(id, 20);
  gbx_doc_free(&d);
  assert_int_equal(gbx_doc_parse(&d, k.b.data + off2 + GBX_FRAME_HDR, len2, &eb), GBX_E_OK);
  assert_int_equal(gbx_get_u64(&d.root, "id", 1, 0, 255, &id, NULL, &eb), GBX_E_OK);
  assert_int_equal(id, 7);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

static void test_buffer(void **state) {
  (void)state;
  gbx_buf_t b;
  gbx_buf_init(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(gbx_buf_append(&b, "", 0), 0);
  uint8_t chunk[100];
  for (int i = 0; i < 100; i++)
    chunk[i] = (uint8_t)i;
  size_t caps_seen = 0, last_cap = 0;
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(gbx_buf_append(&b, chunk, sizeof chunk), 0);
    if (b.cap != last_cap) {
      /* Growth doubles: every capacity is twice the one before. */
      if (last_cap)
        assert_int_equal(b.cap, last_cap * 2);
      last_cap = b.cap;
      caps_seen++;
    }
  }
  assert_int_equal(b.len, 100000);
  assert_true(b.cap >= b.len);
  assert_true(caps_seen >= 5 && caps_seen <= 12);
  for (size_t i = 0; i < b.len; i++)
    if (b.data[i] != (uint8_t)(i % 100))
      fail_msg("byte %zu corrupted", i);

  /* Failures leave the buffer as it was. */
  uint8_t *data = b.data;
  size_t len = b.len, cap = b.cap;
  assert_int_equal(gbx_buf_append(&b, chunk, SIZE_MAX), -1);
  assert_ptr_equal(b.data, data);
  assert_int_equal(b.len, len);
  assert_int_equal(b.cap, cap);
  assert_int_equal(gbx_buf_append(&b, chunk, SIZE_MAX / 4), -1); /* realloc refuses */
  assert_ptr_equal(b.data, data);
  assert_int_equal(b.len, len);
  assert_int_equal(b.cap, cap);
  assert_int_equal(b.data[len - 1], 99);
  /* The packer sees the failure too. */
  assert_int_equal(gbx_buf_write_cb(&b, (const char *)chunk, SIZE_MAX / 4), -1);
  assert_int_equal(gbx_buf_write_cb(&b, (const char *)chunk, 3), 0);
  assert_int_equal(b.len, len + 3);

  gbx_buf_free(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 0);
  gbx_buf_free(&b); /* idempotent */
}

static void test_frame_end_ignores_failed_begin(void **state) {
  (void)state;
  gbx_buf_t b;
  gbx_buf_init(&b);
  assert_int_equal(gbx_buf_append(&b, "xy", 2), 0);
  gbx_frame_end(&b, SIZE_MAX);
  gbx_frame_end(&b, 1); /* fewer than 4 bytes after off: nothing written */
  assert_memory_equal(b.data, "xy", 2);
  gbx_buf_free(&b);
}

static void test_pack_helpers(void **state) {
  (void)state;
  pk_t k;
  gbx_doc_t d;
  gbx_errbuf_t eb;
  pk_init(&k);
  msgpack_pack_map(&k.p, 8);
  gbx_pack_kv_u64(&k.p, "u", 1234567890123ull);
  gbx_pack_kv_i64(&k.p, "i", -5);
  gbx_pack_kv_bool(&k.p, "t", 1);
  gbx_pack_kv_bool(&k.p, "f", 0);
  gbx_pack_kv_str(&k.p, "s", "abcdef", 3);
  gbx_pack_kv_cstr(&k.p, "c", "");
  gbx_pack_kv_bin(&k.p, "b", "\0\1", 2);
  gbx_pack_cstr(&k.p, "arr");
  msgpack_pack_array(&k.p, 2);
  gbx_pack_strn(&k.p, "xyz", 2);
  gbx_pack_binn(&k.p, "", 0);
  parse_ok(&d, &k);

  uint64_t u = 0;
  int bv = -1;
  const char *p;
  uint32_t n;
  const msgpack_object_array *a;
  assert_int_equal(gbx_get_u64(&d.root, "u", 1, 0, UINT64_MAX, &u, NULL, &eb), GBX_E_OK);
  assert_true(u == 1234567890123ull);
  const msgpack_object *i = gbx_map_get(&d.root, "i");
  assert_int_equal(i->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
  assert_int_equal(i->via.i64, -5);
  assert_int_equal(gbx_get_bool(&d.root, "t", 1, &bv, NULL, &eb), GBX_E_OK);
  assert_int_equal(bv, 1);
  assert_int_equal(gbx_get_bool(&d.root, "f", 1, &bv, NULL, &eb), GBX_E_OK);
  assert_int_equal(bv, 0);
  assert_int_equal(gbx_get_str(&d.root, "s", 1, 0, 10, &p, &n, NULL, &eb), GBX_E_OK);
  assert_int_equal(n, 3);
  assert_memory_equal(p, "abc", 3);
  assert_int_equal(gbx_get_str(&d.root, "c", 1, 0, 10, &p, &n, NULL, &eb), GBX_E_OK);
  assert_int_equal(n, 0);
  assert_int_equal(gbx_map_get(&d.root, "b")->type, MSGPACK_OBJECT_BIN);
  assert_int_equal(gbx_get_bytes(&d.root, "b", 1, 10, &p, &n, NULL, &eb), GBX_E_OK);
  assert_int_equal(n, 2);
  assert_memory_equal(p, "\0\1", 2);
  assert_int_equal(gbx_get_array(&d.root, "arr", 1, 2, 2, &a, NULL, &eb), GBX_E_OK);
  assert_int_equal(a->ptr[0].type, MSGPACK_OBJECT_STR);
  assert_int_equal(a->ptr[0].via.str.size, 2);
  assert_int_equal(a->ptr[1].type, MSGPACK_OBJECT_BIN);
  assert_int_equal(a->ptr[1].via.bin.size, 0);
  gbx_doc_free(&d);
  gbx_buf_free(&k.b);
}

static void test_errbuf(void **state) {
  (void)state;
  gbx_errbuf_t eb;
  assert_int_equal(gbx_errbuf_set(&eb, GBX_E_BAD_NAME, "name '%s' (%d)", "x y", 3), GBX_E_BAD_NAME);
  assert_int_equal(eb.code, GBX_E_BAD_NAME);
  assert_string_equal(eb.msg, "name 'x y' (3)");
  assert_int_equal(gbx_errbuf_set(NULL, GBX_E_INTERNAL, "%s", "ignored"), GBX_E_INTERNAL);
  /* Long messages are cut, never overflow. */
  char big[400];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  gbx_errbuf_set(&eb, GBX_E_BAD_FRAME, "%s", big);
  assert_int_equal(strlen(eb.msg), sizeof eb.msg - 1);
}

/* A hostile key is quoted in messages cut short and made printable. */
static void test_error_message_quoting(void **state) {
  (void)state;
  uint8_t b[200];
  size_t p = 0;
  b[p++] = 0x82;
  for (int r = 0; r < 2; r++) {
    b[p++] = 0xd9;
    b[p++] = 60;
    for (int i = 0; i < 60; i++)
      b[p++] = (uint8_t)(i == 0 ? 0x07 : 'k');
    b[p++] = 0x01;
  }
  gbx_doc_t d;
  gbx_errbuf_t eb;
  assert_int_equal(gbx_doc_parse(&d, b, p, &eb), GBX_E_DUPLICATE_FIELD);
  assert_non_null(strstr(eb.msg, "field '?kkk"));
  assert_non_null(strstr(eb.msg, "...' appears more than once"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validate_every_format),
      cmocka_unit_test(test_validate_scalars_at_root),
      cmocka_unit_test(test_validate_map_needs_two_bytes_per_pair),
      cmocka_unit_test(test_validate_empty),
      cmocka_unit_test(test_validate_truncated_everywhere),
      cmocka_unit_test(test_validate_truncated_fixed_sizes),
      cmocka_unit_test(test_validate_huge_declared_sizes),
      cmocka_unit_test(test_validate_depth),
      cmocka_unit_test(test_validate_reserved_byte),
      cmocka_unit_test(test_validate_trailing),
      cmocka_unit_test(test_validate_agrees_with_msgpack_c),
      cmocka_unit_test(test_doc_parse_send_request),
      cmocka_unit_test(test_doc_parse_bad_root),
      cmocka_unit_test(test_doc_parse_depth),
      cmocka_unit_test(test_doc_parse_keys),
      cmocka_unit_test(test_doc_parse_large_map_keys),
      cmocka_unit_test(test_doc_parse_zone_bounded),
      cmocka_unit_test(test_map_keys_unique),
      cmocka_unit_test(test_get_u64),
      cmocka_unit_test(test_get_u64_extremes),
      cmocka_unit_test(test_get_bool),
      cmocka_unit_test(test_get_str),
      cmocka_unit_test(test_get_bytes),
      cmocka_unit_test(test_get_array),
      cmocka_unit_test(test_get_map),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_attrs_valid),
      cmocka_unit_test(test_attrs_numbers),
      cmocka_unit_test(test_attrs_number_range),
      cmocka_unit_test(test_attrs_bad_names),
      cmocka_unit_test(test_attrs_bad_types_and_values),
      cmocka_unit_test(test_attrs_bad_shapes),
      cmocka_unit_test(test_attrs_count_and_duplicates),
      cmocka_unit_test(test_frame_header),
      cmocka_unit_test(test_frame_round_trip),
      cmocka_unit_test(test_buffer),
      cmocka_unit_test(test_frame_end_ignores_failed_begin),
      cmocka_unit_test(test_pack_helpers),
      cmocka_unit_test(test_errbuf),
      cmocka_unit_test(test_error_message_quoting),
  };
  return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
