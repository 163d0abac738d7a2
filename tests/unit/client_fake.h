/* client_fake.h - the fake server of libgearbox's unit tests (test_client*.c):
 * each test connects a client to one end of a socketpair and plays the
 * server on the other end by hand, writing reply frames built here and
 * reading back the request frames the client wrote.
 *
 * Every unit test is built on its own, so this header holds static
 * functions (inline, so a test that does not use one gets no warning).
 * Include it after <cmocka.h>; the test links gearbox_static. */
#ifndef GBX_CLIENT_FAKE_H
#define GBX_CLIENT_FAKE_H

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gbx_codec.h"
#include "gearbox.h"

/* Message ids the fake server hands out. */
#define MID1 "0f8fad5b-d9cb-469f-a165-70867728950e"
#define MID2 "7c9e6679-7425-40de-944b-e07fc1f90ae7"

/* Requests the tests read back are small; one with a large body is read
 * through a buffer of this size. */
#define FAKE_REQ_MAX (128 * 1024)

/* A test's state: the client and the "server" end of its socketpair. */
typedef struct fixture {
  gbx_client_t *c;
  int peer; /* the "server" end; a test that closes it sets -1 */
  uint8_t req[FAKE_REQ_MAX];
  gbx_doc_t doc; /* the last request read_request() decoded */
  int have_doc;
} fixture_t;

static inline int setup(void **state) {
  int sv[2];
  gbx_error_t err;
  fixture_t *f = calloc(1, sizeof *f);
  if (!f || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    return -1;
  f->peer = sv[1];
  f->c = gbx_connect_fd(sv[0], &err);
  if (!f->c)
    return -1;
  *state = f;
  return 0;
}

static inline int teardown(void **state) {
  fixture_t *f = *state;
  if (f->have_doc)
    gbx_doc_free(&f->doc);
  gbx_close(f->c);
  if (f->peer >= 0)
    close(f->peer);
  free(f);
  return 0;
}

static inline void write_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t k = write(fd, b, n);
    if (k < 0 && errno == EINTR)
      continue;
    assert_true(k > 0);
    b += k;
    n -= (size_t)k;
  }
}

static inline void read_all(int fd, void *p, size_t n) {
  uint8_t *b = p;
  while (n) {
    ssize_t k = read(fd, b, n);
    if (k < 0 && errno == EINTR)
      continue;
    assert_true(k > 0);
    b += k;
    n -= (size_t)k;
  }
}

/* ---- replies ------------------------------------------------------------------ */

/* A reply frame under construction. */
typedef struct fb {
  gbx_buf_t b;
  msgpack_packer pk;
  size_t off;
} fb_t;

/* Starts a reply map of id, err (and msg when err != 0) plus extra fields. */
static inline msgpack_packer *fb_begin(fb_t *f, uint64_t id, uint64_t err, const char *msg,
                                       uint32_t extra) {
  gbx_buf_init(&f->b);
  msgpack_packer_init(&f->pk, &f->b, gbx_buf_write_cb);
  f->off = gbx_frame_begin(&f->b);
  msgpack_pack_map(&f->pk, 2 + (msg != NULL) + extra);
  gbx_pack_kv_u64(&f->pk, "id", id);
  gbx_pack_kv_u64(&f->pk, "err", err);
  if (msg)
    gbx_pack_kv_cstr(&f->pk, "msg", msg);
  return &f->pk;
}

/* Finishes the frame and writes it to fd. */
static inline void fb_send(fb_t *f, int fd) {
  gbx_frame_end(&f->b, f->off);
  write_all(fd, f->b.data, f->b.len);
  gbx_buf_free(&f->b);
}

/* Writes a frame holding raw payload bytes (any length header we like). */
static inline void send_raw_frame(int fd, uint32_t declared, const void *payload, size_t n) {
  uint8_t hdr[4];
  gbx_frame_put_len(hdr, declared);
  write_all(fd, hdr, 4);
  if (n)
    write_all(fd, payload, n);
}

/* A successful reply to id with no result fields. */
static inline void send_ok(int fd, uint64_t id) {
  fb_t f;
  fb_begin(&f, id, 0, NULL, 0);
  fb_send(&f, fd);
}

/* ---- requests ----------------------------------------------------------------- */

/* Reads one request frame written by the client into buf (cap bytes) and
 * decodes it into d (the caller frees it). Returns the payload length. */
static inline size_t read_frame(int fd, uint8_t *buf, size_t cap, gbx_doc_t *d) {
  uint8_t hdr[4];
  uint32_t len;
  read_all(fd, hdr, 4);
  gbx_frame_peek(hdr, 4, &len);
  assert_true(len > 0 && len <= cap);
  read_all(fd, buf, len);
  assert_int_equal(gbx_doc_parse(d, buf, len, NULL), GBX_E_OK);
  return len;
}

/* Reads the next request the client wrote and decodes it into f->doc
 * (valid until the next call or teardown). Returns its root map. */
static inline const msgpack_object *read_request(fixture_t *f) {
  if (f->have_doc)
    gbx_doc_free(&f->doc);
  f->have_doc = 0;
  read_frame(f->peer, f->req, sizeof f->req, &f->doc);
  f->have_doc = 1;
  return &f->doc.root;
}

static inline uint64_t field_u64(const msgpack_object *m, const char *key) {
  uint64_t v = 0;
  assert_int_equal(gbx_get_u64(m, key, 1, 0, UINT64_MAX, &v, NULL, NULL), GBX_E_OK);
  return v;
}

static inline int field_bool(const msgpack_object *m, const char *key) {
  int v = -1;
  assert_int_equal(gbx_get_bool(m, key, 1, &v, NULL, NULL), GBX_E_OK);
  return v;
}

static inline void assert_field_str(const msgpack_object *m, const char *key, const char *want) {
  const char *p;
  uint32_t n;
  if (gbx_get_bytes(m, key, 1, UINT32_MAX, &p, &n, NULL, NULL) != GBX_E_OK)
    fail_msg("field '%s' is missing or not a string", key);
  if (n != strlen(want) || memcmp(p, want, n) != 0)
    fail_msg("field '%s' is '%.*s', want '%s'", key, (int)n, p, want);
}

/* Checks a request's op and that it has exactly nfields fields after op and id. */
static inline void assert_request(const msgpack_object *m, int op, uint32_t nfields) {
  assert_int_equal(field_u64(m, "op"), op);
  assert_int_equal(m->via.map.size, 2 + nfields);
}

/* 1 if fd has bytes to read right now. */
static inline int readable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) == 1;
}

#endif
