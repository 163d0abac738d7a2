/* run.h - what every gbx-load scenario shares: the options, the work
 * directory of one run, and the verdict.
 *
 * A scenario returns RUN_PASS, RUN_VIOLATION (the server broke a promise:
 * the classes found are named with run_found) or RUN_ERROR (the harness
 * could not do its job: nothing is proven either way). With --expect CLASS
 * gbx-load inverts the verdict for the prove-the-tests-can-fail checks: it
 * passes only when the run found a violation of that class.
 */
#ifndef GBX_REL_RUN_H
#define GBX_REL_RUN_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "srvproc.h"

enum { RUN_PASS = 0, RUN_VIOLATION = 1, RUN_ERROR = 2 };

typedef struct run_opts {
  const char *scenario;
  const char *gearboxd;    /* the server binary under test */
  const char *shim;        /* libgbxpowercut.so */
  const char *apply;       /* gbx-powercut-apply */
  const char *faketime;    /* libfaketime.so.1, "" if not installed */
  const char *sync;        /* --sync value for gearboxd, NULL: its default */
  const char *expect;      /* --expect CLASS, or NULL */
  const char *only;        /* corrupt: run only the cases whose name starts with this */
  const char *skip;        /* corrupt: skip the cases whose name starts with this */
  unsigned cycles;         /* kill or power-cut cycles; corruption cases */
  unsigned min_ms, max_ms; /* load time before each kill */
  uint64_t seed;
  int producers, consumers, dlq_consumers, nqueues;
  unsigned window, pad_max, delete_pct, max_receives;
  unsigned drain_timeout_s;
  int kill_after_ack; /* kill right after the next acknowledged send */
  int keep;           /* keep the work dir even when the run passes */
  int verbose;
  int fake_monotonic;     /* clock: let libfaketime move the monotonic clock too */
  int allow_refusal_leak; /* corrupt: no LeakSanitizer in damaged-store starts (a
                             known server bug: a refused start leaks) */
} run_opts_t;

typedef struct run {
  run_opts_t o;
  char dir[PATH_MAX - 64]; /* the run's temp dir */
  char data[PATH_MAX];     /* <dir>/data, the store */
  char log[PATH_MAX];      /* <dir>/gearboxd.log */
  char side[PATH_MAX];     /* <dir>/powercut: the shim's state */
  char found[512];         /* ",class,class," of the violations found */
  uint64_t rng;
} run_t;

/* Records that class was violated n times (n > 0) and prints it. */
void run_found(run_t *r, const char *class_name, uint64_t n);
/* 1 if a violation of class was recorded. */
int run_has(const run_t *r, const char *class_name);
/* A random number from the run's seeded generator. */
uint64_t run_rand(run_t *r);
/* Prints a line prefixed with the scenario name and the elapsed time. */
void run_log(const run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fills a srv_cfg_t for r's store with the --sync option applied; the
 * caller may add args, env and preloads. */
void run_srv_cfg(const run_t *r, srv_cfg_t *cfg);
/* Stops a server with SIGTERM: records "unclean-exit" unless it exits 0. */
int run_stop_clean(run_t *r, srv_t *s);
/* Scans the server's log: records "sanitizer" on a report. */
void run_check_sanitizers(run_t *r, srv_t *s);

/* The scenarios (scen_*.c); each returns RUN_PASS, RUN_VIOLATION or
 * RUN_ERROR (scen_clock: 77 when libfaketime is missing) and records the
 * violations it found with run_found. */
/* kill -9 (powercut 0) or power-cut (1) cycles under load, then the check. */
int scen_crash(run_t *r, int powercut);
/* A failing disk: the Nth write or sync fails (EIO, ENOSPC) under load;
 * gearboxd must exit non-zero without acknowledging the failed batch. */
int scen_iofault(run_t *r);
/* Clean stops each followed by a power cut: every start must come up
 * with every acknowledged message (--sync none included). */
int scen_stop_powercut(run_t *r);
/* Descriptor exhaustion: a low RLIMIT_NOFILE, connections until refused. */
int scen_fds(run_t *r);
/* Wall-clock jumps with messages in flight and delayed. */
int scen_clock(run_t *r);
/* A 100 MB declared frame. */
int scen_frame_cap(run_t *r);
/* Damaged copies of a cleanly stopped store. */
int scen_corrupt(run_t *r);

#endif
