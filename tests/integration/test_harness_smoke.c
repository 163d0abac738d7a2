/* test_harness_smoke.c - the integration harness against the real gearboxd:
 * start, ping through libgearbox and raw frames, restart, kill -9, start
 * again on the same data, clean stops, the CLI runner, and the failure paths
 * a test relies on (a server that will not start, a sanitizer report). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gbx_codec.h"
#include "testutil.h"

/* How long a raw read waits for a reply: the server answers a ping at once,
 * so this only bounds a broken run. */
#define REPLY_WAIT_MS 10000

/* Sends a hand-built ping {op: 1, id: 42} and checks the reply's id and err. */
static void raw_ping_ok(int fd) {
  static const uint8_t ping[] = {0x82, 0xa2, 'o', 'p', 0x01, 0xa2, 'i', 'd', 0x2a};
  assert_int_equal(ts_raw_send_frame(fd, ping, sizeof ping), 0);
  tu_reply_t r = tu_raw_read_reply(fd);
  assert_int_equal(r.id, 42);
  assert_int_equal(r.err, GBX_E_OK);
}

static void test_start_restart_kill_stop(void **state) {
  (void)state;
  gbx_testserver_t *ts = ts_start(NULL);
  assert_true(ts_port(ts) > 0);
  assert_true(ts_pid(ts) > 0);
  struct stat st;
  assert_int_equal(stat(ts_data_dir(ts), &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  tu_assert_alive(ts);

  ts_restart(ts);
  tu_assert_alive(ts);

  ts_kill9(ts);
  assert_int_equal(ts_pid(ts), -1);
  ts_start_again(ts);
  tu_assert_alive(ts);

  assert_int_equal(ts_stop(ts), 0);
  ts_assert_clean_exit(ts);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", ts_dir(ts));
  ts_free(ts);
  assert_int_not_equal(stat(dir, &st), 0); /* temp dir removed */
}

static void test_same_data_after_kill9(void **state) {
  (void)state;
  gbx_testserver_t *ts = ts_start("--sync always");
  gbx_client_t *c = ts_connect(ts);
  gbx_error_t err;
  int created = 0;
  assert_int_equal(gbx_queue_create(c, "smoke", NULL, NULL, 0, &created, &err), GBX_E_OK);
  assert_int_equal(created, 1);
  gbx_close(c);

  ts_kill9(ts);
  ts_start_again(ts);
  c = ts_connect(ts);
  gbx_queue_list_t list;
  assert_int_equal(gbx_queue_list(c, NULL, 0, NULL, &list, &err), GBX_E_OK);
  assert_int_equal(list.count, 1);
  assert_string_equal(list.names[0], "smoke");
  gbx_queue_list_free(&list);
  gbx_close(c);
  ts_free(ts);
}

static void test_raw_frames(void **state) {
  (void)state;
  gbx_testserver_t *ts = ts_start(NULL);
  int fd = ts_raw_connect(ts);
  raw_ping_ok(fd);
  raw_ping_ok(fd);

  /* Nothing more is sent: a short read times out and says so. */
  uint8_t buf[64];
  assert_int_equal(ts_raw_read_frame(fd, buf, sizeof buf, 50), -1);
  assert_int_equal(errno, ETIMEDOUT);
  assert_int_equal(ts_raw_wait_eof(fd, 50), 0);

  /* A killed server closes the connection: the raw helpers see EOF. */
  ts_kill9(ts);
  assert_int_equal(ts_raw_wait_eof(fd, REPLY_WAIT_MS), 1);
  close(fd);

  ts_start_again(ts);
  fd = ts_raw_connect(ts);
  raw_ping_ok(fd);
  close(fd);
  ts_free(ts);
}

static void test_sigint_stops_cleanly(void **state) {
  (void)state;
  gbx_testserver_t *ts = ts_start("--sync interval:5 --log-level warn");
  tu_assert_alive(ts);
  assert_int_equal(ts_stop_with(ts, SIGINT), 0);
  ts_assert_clean_exit(ts);
  ts_start_again_args(ts, "--sync none");
  tu_assert_alive(ts);
  ts_free(ts);
}

static void test_bad_flag_fails_start(void **state) {
  (void)state;
  char err[2048];
  gbx_testserver_t *ts = ts_try_start("--max-conns 0", err, sizeof err);
  assert_null(ts);
  assert_non_null(strstr(err, "exited before its ready line"));
  assert_non_null(strstr(err, "--max-conns")); /* the server's own message */
}

static void test_log_scan_finds_sanitizer_reports(void **state) {
  (void)state;
  gbx_testserver_t *ts = ts_start(NULL);
  assert_int_equal(ts_stop(ts), 0);
  char line[256];
  assert_null(ts_sanitizer_report(ts, line, sizeof line));

  /* What UBSan prints, appended to this run's log, must be found. */
  FILE *f = fopen(ts_log_path(ts), "a");
  assert_non_null(f);
  fputs("server/x.c:10:5: runtime error: signed integer overflow\n", f);
  fclose(f);
  assert_non_null(ts_sanitizer_report(ts, line, sizeof line));
  assert_non_null(strstr(line, "runtime error:"));
  ts_free(ts);
}

static void test_cli(void **state) {
  (void)state;
  gbx_testserver_t *ts = ts_start(NULL);
  char out[4096];
  assert_int_equal(ts_cli(ts, "queue create clitest", out, sizeof out), 0);
  /* A quoted word reaches the CLI as one argument, spaces and all. */
  assert_int_equal(ts_cli(ts, "send clitest 'hello from the cli'", out, sizeof out), 0);
  assert_int_equal(ts_cli(ts, "receive clitest --delete", out, sizeof out), 0);
  assert_non_null(strstr(out, "hello from the cli"));
  assert_int_equal(ts_cli(ts, "queue list", out, sizeof out), 0);
  assert_non_null(strstr(out, "clitest"));
  /* A server error is the CLI's exit status 1. */
  assert_int_equal(ts_cli(ts, "receive no-such-queue", out, sizeof out), 1);
  ts_free(ts);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_start_restart_kill_stop),
      cmocka_unit_test(test_same_data_after_kill9),
      cmocka_unit_test(test_raw_frames),
      cmocka_unit_test(test_sigint_stops_cleanly),
      cmocka_unit_test(test_bad_flag_fails_start),
      cmocka_unit_test(test_log_scan_finds_sanitizer_reports),
      cmocka_unit_test(test_cli),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
