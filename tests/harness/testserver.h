/* testserver.h - the integration-test harness: runs the real gearboxd.
 *
 * Each server gets a fresh temp dir (under $TMPDIR or /tmp) holding its data
 * dir (<dir>/data) and its stderr log (<dir>/gearboxd.log). The server listens
 * on 127.0.0.1 port 0; the harness reads the port from the ready line
 * "gearboxd ready port=<N> ...". Every stop or kill scans the log for
 * sanitizer reports and fails the test on one.
 *
 * Failure policy: functions named ts_try_* report failure by return value;
 * every other function fails the running cmocka test (fail_msg) on a harness
 * or server error, after printing the server's log tail to stderr. Servers a
 * test leaves running are killed at exit and their temp dirs removed (set
 * GBX_TEST_KEEP=1 to keep temp dirs for post-mortem).
 *
 * Environment: GBX_TEST_WRAPPER="valgrind --error-exitcode=99" runs gearboxd
 * under a wrapper command (split on spaces).
 */
#ifndef GBX_TESTSERVER_H
#define GBX_TESTSERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gearbox.h"

/* How long the server may take to print its ready line or to exit after
 * SIGTERM: far above a normal start (RocksDB open, a few ms) so a loaded
 * 2-core CI machine or a sanitizer build never trips it, and still well
 * under ctest's per-test timeout so a hang fails with a clear message. */
#define TS_TIMEOUT_MS 30000
/* How long a CLI run may take before it is killed and the test fails. */
#define TS_CLI_TIMEOUT_MS 30000

typedef struct gbx_testserver gbx_testserver_t;

/* ---- lifecycle ---------------------------------------------------------- */

/* Makes a temp dir and starts gearboxd with --listen 127.0.0.1:0
 * --data <dir>/data plus extra_args (split on spaces; NULL or "" for none),
 * then waits for its ready line. Never returns NULL: fails the test if the
 * server exits or stays silent for TS_TIMEOUT_MS. Free with ts_free(). */
gbx_testserver_t *ts_start(const char *extra_args);
/* As ts_start but returns NULL on failure, with the reason (and the server's
 * stderr tail when it exited) in err[0..errcap). For tests of bad flags. */
gbx_testserver_t *ts_try_start(const char *extra_args, char *err, size_t errcap);

/* Sends sig (SIGTERM or SIGINT) and waits up to TS_TIMEOUT_MS for the exit
 * (then SIGKILLs and fails). Fails on a sanitizer report in the log. Returns
 * the exit code, 128+signal if a signal ended it, or -1 if it was not
 * running. An unclean exit is recorded for ts_assert_clean_exit(). */
int ts_stop_with(gbx_testserver_t *ts, int sig);
/* ts_stop_with(ts, SIGTERM). */
int ts_stop(gbx_testserver_t *ts);
/* Fails unless the last ts_stop ended with exit status 0 (not a signal). */
void ts_assert_clean_exit(gbx_testserver_t *ts);
/* SIGKILLs and reaps the server; fails if it had already died otherwise, or
 * if the log holds a sanitizer report. */
void ts_kill9(gbx_testserver_t *ts);
/* Starts the server again on the same dir and arguments after a stop or a
 * kill; waits for the ready line (the port usually changes). */
void ts_start_again(gbx_testserver_t *ts);
/* As ts_start_again with new extra arguments (kept for later restarts). */
void ts_start_again_args(gbx_testserver_t *ts, const char *extra_args);
/* ts_stop, ts_assert_clean_exit, ts_start_again. */
void ts_restart(gbx_testserver_t *ts);
/* Stops a running server (asserting a clean exit), removes the temp dir and
 * frees ts. NULL is a no-op. */
void ts_free(gbx_testserver_t *ts);

/* ---- accessors ---------------------------------------------------------- */

/* Port of the running server (of the last run when stopped). */
uint16_t ts_port(const gbx_testserver_t *ts);
/* <dir>/data, as passed to --data; valid until ts_free. */
const char *ts_data_dir(const gbx_testserver_t *ts);
/* The temp dir itself, for a test's own files; valid until ts_free. */
const char *ts_dir(const gbx_testserver_t *ts);
/* <dir>/gearboxd.log: stderr of every run, appended. */
const char *ts_log_path(const gbx_testserver_t *ts);
/* Pid of the running server, or -1. */
pid_t ts_pid(const gbx_testserver_t *ts);
/* The first sanitizer report line the current run's log holds, copied into
 * buf (truncated to cap-1 bytes); returns buf, or NULL if there is none. */
const char *ts_sanitizer_report(const gbx_testserver_t *ts, char *buf, size_t cap);

/* ---- clients ------------------------------------------------------------ */

/* A libgearbox client connected to the server, its network waits bounded
 * by TS_TIMEOUT_MS (gbx_set_timeout) so a hung server fails the test instead
 * of stalling it; fails the test if it cannot connect. Close with gbx_close(). */
gbx_client_t *ts_connect(gbx_testserver_t *ts);

/* A blocking TCP socket connected to the server (fails the test if it
 * cannot connect). The caller closes it. */
int ts_raw_connect(gbx_testserver_t *ts);
/* Writes all len bytes of buf. Returns 0, or -1 if the peer closed or the
 * write failed (never raises SIGPIPE). */
int ts_raw_send(int fd, const void *buf, size_t len);
/* Writes a 4-byte big-endian length header then the payload. As ts_raw_send. */
int ts_raw_send_frame(int fd, const void *payload, uint32_t len);
/* Reads one frame into buf, within timeout_ms. Returns the payload length,
 * or -1 on EOF (errno 0), error (errno set), timeout (errno ETIMEDOUT) or a
 * payload longer than cap (errno EMSGSIZE; the stream is then out of sync). */
long ts_raw_read_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms);
/* 1 if the peer closes the connection (EOF or reset) within timeout_ms,
 * reading and discarding anything it sends first; 0 if it stays open. */
int ts_raw_wait_eof(int fd, int timeout_ms);

/* Runs the gearbox CLI with "--port <port>" followed by args (split on
 * spaces; '...' or "..." quote a word holding spaces). Its stdout goes to
 * out (NUL-terminated, truncated to cap-1; out may be NULL when cap is 0),
 * its stderr to the test's stderr. Returns its exit code (128+signal if a
 * signal ended it). Fails the test if the CLI was not built or hangs. */
int ts_cli(gbx_testserver_t *ts, const char *args, char *out, size_t cap);

#endif
