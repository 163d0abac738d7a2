/* test_limits.c - overload and resource limits, against the real gearboxd:
 * a disk that fills up (a small tmpfs), a byte-at-a-time sender, many idle
 * connections, the connection cap. The offender is cut off or refused with
 * a reason; everyone else keeps being served; nothing acknowledged is lost. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

static gbx_error_t e;

static int file_has(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  char line[2048];
  int found = 0;
  while (f && !found && fgets(line, sizeof(line), f))
    found = strstr(line, needle) != NULL;
  if (f)
    fclose(f);
  return found;
}

/* The disk of the data dir fills up: sends are refused with disk_full
 * before RocksDB runs out of space, receives and deletes keep working, and
 * sending resumes on its own once space is freed. Every acknowledged message
 * is still there. Needs root for a tmpfs mount; skipped (with a message)
 * where mounting is not allowed. */
static void test_disk_full_watermark(void **state) {
  char mnt[512], filler[600], args[1200];
  gbx_testserver_t *probe = ts_start(NULL); /* only for a temp dir of our own */
  snprintf(mnt, sizeof(mnt), "%s/mnt", ts_dir(probe));
  mkdir(mnt, 0700);
  if (mount("tmpfs", mnt, "tmpfs", 0, "size=512m") != 0) {
    ts_free(probe);
    print_message("skipping: cannot mount a tmpfs (%s); run as root to test disk full\n",
                  strerror(errno));
    skip();
  }
  /* a filler leaves ~212 MiB; RocksDB preallocates ~70 MiB for its WAL and
   * the watermark is 96 MiB: some 40 MiB of messages fit before sends are
   * refused */
  snprintf(filler, sizeof(filler), "%s/filler", mnt);
  FILE *f = fopen(filler, "w");
  assert_non_null(f);
  static char chunk[1 << 20];
  memset(chunk, 'f', sizeof(chunk));
  for (int i = 0; i < 300; i++)
    assert_int_equal(fwrite(chunk, 1, sizeof(chunk), f), sizeof(chunk));
  fclose(f);
  snprintf(args, sizeof(args), "--data %s/data --min-free %u", mnt, 96u << 20);
  gbx_testserver_t *ts = ts_start(args);
  gbx_client_t *c = ts_connect(ts);
  CHECK_OK(gbx_queue_create(c, "big", NULL, NULL, 0, NULL, &e));
  /* incompressible: flushed table files are compressed, the WAL is not */
  static char body[512 * 1024];
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < sizeof(body); i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    body[i] = (char)(x >> 32);
  }
  int acked = 0, refused = 0;
  for (int i = 0; i < 400 && !refused; i++) {
    int r = gbx_queue_send(c, "big", body, sizeof(body), NULL, 0, -1, NULL, &e);
    if (r == GBX_E_OK)
      acked++;
    else if (r == GBX_E_DISK_FULL)
      refused = 1;
    else
      fail_msg("send %d: %s (%s)", i, gbx_errname(r), e.message);
    tu_sleep_ms(5); /* let the 250 ms free-space check see the disk fill */
  }
  assert_true(refused);
  assert_true(acked > 10);
  assert_true(file_has(ts_log_path(ts), "refusing sends"));
  /* receives and deletes still work while sends are refused */
  gbx_message_t *m;
  size_t n;
  CHECK_OK(gbx_queue_receive(c, "big", 10, 30, 0, &m, &n, &e));
  assert_int_equal(n, 4); /* 2 MiB reply budget: four 512 KiB messages */
  for (size_t i = 0; i < n; i++)
    CHECK_OK(gbx_message_delete(c, "big", m[i].receipt, &e));
  gbx_messages_free(m);
  /* freeing space lets sends resume without a restart */
  assert_int_equal(unlink(filler), 0);
  int resumed = 0;
  for (int i = 0; i < 100 && !resumed; i++) {
    tu_sleep_ms(50);
    resumed = gbx_queue_send(c, "big", "ok", 2, NULL, 0, -1, NULL, &e) == GBX_E_OK;
  }
  assert_true(resumed);
  /* nothing acknowledged is lost, across a restart too */
  gbx_close(c);
  ts_restart(ts);
  c = ts_connect(ts);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(c, "big", &info, &e));
  assert_int_equal(info.visible + info.not_visible, (uint64_t)(acked - 4 + 1));
  gbx_queue_info_free(&info);
  gbx_close(c);
  ts_free(ts);
  umount2(mnt, MNT_DETACH);
  ts_free(probe);
}

/* A sender that trickles a frame is cut off after --slow-timeout, with the
 * reason in the log; a healthy client is served meanwhile. */
static void test_slow_sender_cut_off(void **state) {
  gbx_testserver_t *ts = ts_start("--slow-timeout 700");
  int fd = ts_raw_connect(ts);
  assert_int_equal(ts_raw_send(fd, "\x00\x00", 2), 0); /* half a header */
  gbx_client_t *c = ts_connect(ts);
  CHECK_OK(gbx_ping(c, &e));
  assert_int_equal(ts_raw_wait_eof(fd, 5000), 1);
  close(fd);
  assert_true(file_has(ts_log_path(ts), "slow sender"));
  CHECK_OK(gbx_ping(c, &e));
  gbx_close(c);
  ts_free(ts);
}

/* Hundreds of idle connections cost nothing but their slots; the server
 * keeps serving. The connection cap refuses the one too many. */
static void test_idle_connections_and_cap(void **state) {
  gbx_testserver_t *ts = ts_start("--max-conns 300");
  int fds[300];
  for (int i = 0; i < 299; i++)
    fds[i] = ts_raw_connect(ts);
  gbx_client_t *c = ts_connect(ts); /* the 300th */
  CHECK_OK(gbx_ping(c, &e));
  int extra = ts_raw_connect(ts); /* the 301st: accepted, then closed */
  assert_int_equal(ts_raw_wait_eof(extra, 5000), 1);
  close(extra);
  assert_true(file_has(ts_log_path(ts), "--max-conns"));
  for (int i = 0; i < 299; i++)
    close(fds[i]);
  CHECK_OK(gbx_ping(c, &e));
  /* slots come back once the idle ones are gone */
  tu_sleep_ms(200);
  gbx_client_t *c2 = ts_connect(ts);
  CHECK_OK(gbx_ping(c2, &e));
  gbx_close(c2);
  gbx_close(c);
  ts_free(ts);
}

/* With no body cache every body is read from the store, off the loop
 * thread. A long poll answered by a send must still get the body, although
 * the send's batch may not be written yet when the waiter is served. */
static void test_no_body_cache_long_poll(void **state) {
  gbx_testserver_t *ts = ts_start("--body-cache 0");
  gbx_client_t *a = ts_connect(ts), *b = ts_connect(ts);
  CHECK_OK(gbx_queue_create(a, "cold", NULL, NULL, 0, NULL, &e));
  for (int round = 0; round < 20; round++) {
    uint64_t id = gbx_submit_receive(a, "cold", 1, 30, 5, &e);
    assert_true(id > 0);
    CHECK_OK(gbx_flush(a, &e));
    tu_sleep_ms(20); /* let the receive start waiting */
    char body[32];
    int bl = snprintf(body, sizeof(body), "cold body %d", round);
    CHECK_OK(gbx_queue_send(b, "cold", body, (size_t)bl, NULL, 0, -1, NULL, &e));
    gbx_reply_t *r;
    gbx_message_t *m;
    size_t n;
    CHECK_OK(gbx_collect(a, &r, &e));
    CHECK_OK(gbx_reply_messages(r, &m, &n, &e));
    assert_int_equal(n, 1);
    assert_int_equal(m[0].body_len, (size_t)bl);
    assert_memory_equal(m[0].body, body, (size_t)bl);
    CHECK_OK(gbx_message_delete(a, "cold", m[0].receipt, &e));
    gbx_messages_free(m);
    gbx_reply_free(r);
  }
  /* and a backlog read cold from the store after a restart */
  for (int i = 0; i < 50; i++)
    CHECK_OK(gbx_queue_send(b, "cold", "backlog", 7, NULL, 0, -1, NULL, &e));
  gbx_close(a);
  gbx_close(b);
  ts_restart(ts);
  a = ts_connect(ts);
  size_t got = 0;
  while (got < 50) {
    gbx_message_t *m;
    size_t n;
    CHECK_OK(gbx_queue_receive(a, "cold", 10, 30, 1, &m, &n, &e));
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
      assert_memory_equal(m[i].body, "backlog", 7);
    got += n;
    gbx_messages_free(m);
  }
  gbx_close(a);
  ts_free(ts);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_disk_full_watermark),
      cmocka_unit_test(test_slow_sender_cut_off),
      cmocka_unit_test(test_idle_connections_and_cap),
      cmocka_unit_test(test_no_body_cache_long_poll),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
