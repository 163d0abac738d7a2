/* srvproc.h - runs one gearboxd process for the reliability suite: any
 * binary (a deliberately broken build too), extra environment (LD_PRELOAD of
 * the power-cut shim or libfaketime, with libasan first when the binary is
 * an ASan build), restart on the same data dir, kill -9, clean stop, and a
 * scan of its log for sanitizer reports.
 *
 * Why not tests/harness/testserver.h: that harness fails the running cmocka
 * test on any error and hard-codes the gearboxd it was built with; the
 * reliability drivers are plain programs that must run other binaries, set
 * an environment per run and report errors as values.
 *
 * Errors: every function returning int returns 0 on success and -1 with a
 * reason in the srv's error buffer (srv_error) otherwise. Not thread-safe:
 * one driver thread owns a srv_t; load threads only read srv_port_now().
 */
#ifndef GBX_REL_SRVPROC_H
#define GBX_REL_SRVPROC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Environment variables a run may add (LD_PRELOAD is built separately). */
#define SRV_MAX_ENV 16
/* Extra gearboxd arguments. */
#define SRV_MAX_ARGS 16
/* Libraries preloaded after the sanitizer runtime. */
#define SRV_MAX_PRELOAD 4

typedef struct srv_cfg {
  const char *binary;                       /* gearboxd to run */
  const char *data_dir;                     /* --data; created by gearboxd */
  const char *log_path;                     /* stderr of every run is appended here */
  const char *args[SRV_MAX_ARGS + 1];       /* extra arguments, NULL-terminated */
  const char *env[SRV_MAX_ENV + 1];         /* "NAME=value" additions (replacing inherited
                                         ones of the same name), NULL-terminated */
  const char *preload[SRV_MAX_PRELOAD + 1]; /* LD_PRELOAD libraries, NULL-terminated */
  int ready_timeout_ms;                     /* 0: SRV_READY_TIMEOUT_MS */
} srv_cfg_t;

/* How long a start may take to print its ready line: RocksDB recovery of a
 * test-sized store under ASan takes well under a second; 60 s leaves room
 * for a loaded 2-core CI machine and still fails a hang clearly. */
#define SRV_READY_TIMEOUT_MS 60000
/* How long a SIGTERM'ed server may take to drain and exit. */
#define SRV_STOP_TIMEOUT_MS 60000

typedef struct srv srv_t;

/* Copies cfg (strings included). Returns NULL on allocation failure. The
 * sanitizer runtime of cfg->binary (if any) is found with ldd and put first
 * in LD_PRELOAD when cfg->preload is not empty. Free with srv_free(). */
srv_t *srv_new(const srv_cfg_t *cfg);
/* Kills a running server (SIGKILL) and frees everything. NULL is a no-op. */
void srv_free(srv_t *s);
/* Starts the server and waits for "gearboxd ready port=N". */
/* A blocking TCP connection to 127.0.0.1:port with TCP_NODELAY, or -1. */
int srv_connect_port(uint16_t port);
int srv_start(srv_t *s);
/* Starts the server expecting it to refuse: returns 1 if it exited before
 * its ready line (its exit code in *code, its stderr of this run in
 * out[0..cap)), 0 if it started (it is left running), -1 on a harness error. */
int srv_try_start(srv_t *s, int *code, char *out, size_t cap);
/* Starts the server and SIGKILLs it after_ms later, whether or not it is
 * ready (a crash during recovery). Fails if it exited on its own first. */
int srv_start_killed(srv_t *s, unsigned after_ms);
/* SIGKILLs the running server and reaps it. Fails if it had died already. */
int srv_kill9(srv_t *s);
/* Sends SIGTERM and waits; *code gets the exit code (128+signal if a
 * signal ended it). Fails if it does not exit within SRV_STOP_TIMEOUT_MS. */
int srv_stop(srv_t *s, int *code);
/* Waits up to timeout_ms for the server to exit on its own; *code gets its
 * exit code (128+signal). Fails if it is still running (it is left so). */
int srv_wait_exit(srv_t *s, int timeout_ms, int *code);
/* Sets (or replaces) one "NAME=value" of the environment of later starts;
 * "NAME=" leaves it empty. */
int srv_set_env(srv_t *s, const char *name_value);
/* 1 if the server process is running (not reaped). */
int srv_running(srv_t *s);
/* Port of the current run (0 when stopped). Safe from any thread. */
uint16_t srv_port_now(const srv_t *s);
/* Port of the current run's HTTP face (0 when stopped or without one). */
uint16_t srv_http_port_now(const srv_t *s);
/* Pid of the running server, or -1. */
pid_t srv_pid(const srv_t *s);
/* Number of completed starts. */
unsigned srv_starts(const srv_t *s);
/* The first sanitizer report line in the whole log (all runs) copied into
 * buf; returns buf, or NULL if there is none. */
const char *srv_sanitizer_report(const srv_t *s, char *buf, size_t cap);
/* The last error, "" if none. */
const char *srv_error(const srv_t *s);
/* The LD_PRELOAD value of the last start ("" when none). */
const char *srv_preload_value(const srv_t *s);

/* Finds the AddressSanitizer runtime binary links against (ldd), copying
 * its path to out. Returns 1 if found, 0 if binary is not an ASan build,
 * -1 if ldd could not be run. */
int srv_asan_runtime(const char *binary, char *out, size_t cap);

/* Monotonic microseconds (CLOCK_MONOTONIC). */
int64_t srv_now_us(void);
/* Sleeps ms milliseconds (restarting after signals). */
void srv_sleep_ms(unsigned ms);

#endif
