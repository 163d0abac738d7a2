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

#include "testserver.h"

static gbx_error_t e;

#define CHECK_OK(call)                                                              \
  do {                                                                              \
    if ((call) != GBX_E_OK) fail_msg("%s: %s (%s)", #call, gbx_errname(e.code), e.message); \
  } while (0)

static void sleep_ms(unsigned ms) { usleep(ms * 1000u); }

static int file_has(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  char line[2048];
  int found = 0;
  while (f && !found && fgets(line, sizeof(line), f)) found = strstr(line, needle) != NULL;
  if (f) fclose(f);
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
  for (int i = 0; i < 300; i++) assert_int_equal(fwrite(chunk, 1, sizeof(chunk), f), sizeof(chunk));
  fclose(f);
  snprintf(args, sizeof(args), "--data %s/data --min-free %u", mnt, 96u << 20);
  gbx_testserver_t *ts = ts_start(args);
  gbx_client_t *c = ts_connect(ts);
  CHECK_OK(gbx_queue_create(c, "big", NULL, NULL, 0, NULL, &e));
  static char body[512 * 1024];
  memset(body, 'b', sizeof(body));
  int acked = 0, refused = 0;
  for (int i = 0; i < 400 && !refused; i++) {
    int r = gbx_queue_send(c, "big", body, sizeof(body), NULL, 0, -1, NULL, &e);
    if (r == GBX_E_OK) acked++;
    else if (r == GBX_E_DISK_FULL) refused = 1;
    else fail_msg("send %d: %s (%s)", i, gbx_errname(r), e.message);
    sleep_ms(5); /* let the 250 ms free-space check see the disk fill */
  }
  assert_true(refused);
  assert_true(acked > 10);
  assert_true(file_has(ts_log_path(ts), "refusing sends"));
  /* receives and deletes still work while sends are refused */
  gbx_message_t *m;
  size_t n;
  CHECK_OK(gbx_queue_receive(c, "big", 10, 30, 0, &m, &n, &e));
  assert_int_equal(n, 4); /* 2 MiB reply budget: four 512 KiB messages */
  for (size_t i = 0; i < n; i++) CHECK_OK(gbx_message_delete(c, "big", m[i].receipt, &e));
  gbx_messages_free(m);
  /* freeing space lets sends resume without a restart */
  assert_int_equal(unlink(filler), 0);
  int resumed = 0;
  for (int i = 0; i < 100 && !resumed; i++) {
    sleep_ms(50);
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
  for (int i = 0; i < 299; i++) fds[i] = ts_raw_connect(ts);
  gbx_client_t *c = ts_connect(ts); /* the 300th */
  CHECK_OK(gbx_ping(c, &e));
  int extra = ts_raw_connect(ts); /* the 301st: accepted, then closed */
  assert_int_equal(ts_raw_wait_eof(extra, 5000), 1);
  close(extra);
  assert_true(file_has(ts_log_path(ts), "--max-conns"));
  for (int i = 0; i < 299; i++) close(fds[i]);
  CHECK_OK(gbx_ping(c, &e));
  /* slots come back once the idle ones are gone */
  sleep_ms(200);
  gbx_client_t *c2 = ts_connect(ts);
  CHECK_OK(gbx_ping(c2, &e));
  gbx_close(c2);
  gbx_close(c);
  ts_free(ts);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_disk_full_watermark),
      cmocka_unit_test(test_slow_sender_cut_off),
      cmocka_unit_test(test_idle_connections_and_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
