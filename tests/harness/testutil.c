/* testutil.c - the integration tests' shared fixture and helpers (see
 * testutil.h). Built into the gbx_harness library with testserver.c. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

/* ---- fixture -------------------------------------------------------------------- */

int tu_setup_server(void **state) {
  tu_fx_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  f->ts = ts_start(NULL);
  *state = f;
  return 0;
}

int tu_setup(void **state) {
  tu_setup_server(state);
  tu_fx_t *f = *state;
  f->c = tu_connect(f->ts);
  return 0;
}

int tu_teardown(void **state) {
  tu_fx_t *f = *state;
  gbx_close(f->c);
  ts_free(f->ts);
  free(f);
  return 0;
}

/* ---- clients and clocks ------------------------------------------------------------ */

gbx_client_t *tu_connect(gbx_testserver_t *ts) {
  gbx_client_t *c = ts_connect(ts);
  gbx_set_timeout(c, TU_CLIENT_TIMEOUT_MS);
  return c;
}

gbx_client_t *tu_reconnect(tu_fx_t *f) {
  gbx_close(f->c);
  f->c = tu_connect(f->ts);
  return f->c;
}

void tu_assert_alive(gbx_testserver_t *ts) {
  gbx_error_t e;
  gbx_client_t *c = tu_connect(ts);
  CHECK_OK(gbx_ping(c, &e));
  gbx_close(c);
}

void tu_sleep_ms(unsigned ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0) {
  }
}

int64_t tu_mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

uint64_t tu_wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* ---- calls most tests make ---------------------------------------------------------- */

void tu_create_queue(gbx_client_t *c, const char *q, const gbx_queue_attrs_t *a) {
  gbx_error_t e;
  CHECK_OK(gbx_queue_create(c, q, a, NULL, 0, NULL, &e));
}

gbx_message_t *tu_recv_n(gbx_client_t *c, const char *q, uint32_t max, int vis, size_t want) {
  gbx_error_t e;
  gbx_message_t *m = NULL;
  size_t n = 0;
  CHECK_OK(gbx_queue_receive(c, q, max, vis, 0, &m, &n, &e));
  if (n != want)
    fail_msg("receive on %s returned %zu messages, want %zu", q, n, want);
  return m;
}

const gbx_msg_attr_t *tu_msg_attr(const gbx_message_t *m, const char *name) {
  for (size_t i = 0; i < m->nattrs; i++)
    if (strcmp(m->attrs[i].name, name) == 0)
      return &m->attrs[i];
  return NULL;
}

const gbx_queue_attr_t *tu_find_attr(const gbx_queue_info_t *info, const char *name) {
  for (size_t i = 0; i < info->nall; i++)
    if (strcmp(info->all[i].name, name) == 0)
      return &info->all[i];
  return NULL;
}

int tu_is_uuid(const char *s) {
  if (strlen(s) != 36)
    return 0;
  for (int i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
      return 0;
  }
  return 1;
}

/* ---- raw requests ----------------------------------------------------------------- */

msgpack_packer *tu_raw_begin(tu_raw_t *r) {
  gbx_buf_init(&r->b);
  msgpack_packer_init(&r->pk, &r->b, gbx_buf_write_cb);
  return &r->pk;
}

msgpack_packer *tu_raw_request(tu_raw_t *r, uint64_t op, uint64_t id, uint32_t nfields) {
  msgpack_packer *pk = tu_raw_begin(r);
  msgpack_pack_map(pk, 2 + nfields);
  gbx_pack_kv_u64(pk, "op", op);
  gbx_pack_kv_u64(pk, "id", id);
  return pk;
}

tu_reply_t tu_raw_read_reply(int fd) {
  static uint8_t buf[TU_RAW_REPLY_MAX];
  tu_reply_t r = {0};
  long n = ts_raw_read_frame(fd, buf, sizeof buf, TU_RAW_TIMEOUT_MS);
  if (n <= 0)
    fail_msg("no reply: the server closed the connection or stayed silent");
  gbx_doc_t d;
  gbx_errbuf_t eb;
  if (gbx_doc_parse(&d, buf, (size_t)n, &eb))
    fail_msg("unparsable reply: %s", eb.msg);
  uint64_t err = 0;
  assert_int_equal(gbx_get_u64(&d.root, "id", 1, 0, UINT64_MAX, &r.id, NULL, &eb), GBX_E_OK);
  assert_int_equal(gbx_get_u64(&d.root, "err", 1, 0, UINT64_MAX, &err, NULL, &eb), GBX_E_OK);
  r.err = (int)err;
  const char *m;
  uint32_t ml;
  gbx_get_str(&d.root, "msg", 0, 0, UINT32_MAX, &m, &ml, &r.has_msg, &eb);
  if (r.has_msg)
    snprintf(r.msg, sizeof r.msg, "%.*s", (int)ml, m);
  gbx_doc_free(&d);
  return r;
}

tu_reply_t tu_raw_call(gbx_testserver_t *ts, const gbx_buf_t *b) {
  int fd = ts_raw_connect(ts);
  assert_int_equal(ts_raw_send_frame(fd, b->data, (uint32_t)b->len), 0);
  tu_reply_t r = tu_raw_read_reply(fd);
  close(fd);
  return r;
}
