/* gbx_load.c - gbx-load, the driver of the reliability suite: runs one
 * scenario against a real gearboxd and judges it.
 *
 *   gbx-load --scenario kill|powercut|iofault|stop-powercut|clock|frame-cap|corrupt [options]
 *
 * Exit status: 0 the scenario passed; 1 the server broke a promise (the
 * violations are printed); 2 the harness could not run the scenario. With
 * --expect CLASS[,CLASS...]: 0 only if a violation of (one of) CLASS was
 * found (proving the test can fail), 1 otherwise. A scenario that cannot run here (no
 * libfaketime) exits 77, which ctest reports as skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run.h"

#ifndef GBX_REL_GEARBOXD
#define GBX_REL_GEARBOXD "gearboxd"
#endif
#ifndef GBX_REL_SHIM
#define GBX_REL_SHIM ""
#endif
#ifndef GBX_REL_APPLY
#define GBX_REL_APPLY ""
#endif
#ifndef GBX_REL_FAKETIME
#define GBX_REL_FAKETIME ""
#endif

/* ctest's "skipped" exit code (SKIP_RETURN_CODE). */
#define EXIT_SKIP 77

static int64_t t0_us;

void run_found(run_t *r, const char *class_name, uint64_t n) {
  if (!n)
    return;
  char item[64];
  snprintf(item, sizeof item, ",%s,", class_name);
  if (!run_has(r, class_name)) {
    size_t used = strlen(r->found);
    snprintf(r->found + used, sizeof r->found - used, "%s", used ? item + 1 : item);
  }
  run_log(r, "VIOLATION %s x%" PRIu64, class_name, n);
}

int run_has(const run_t *r, const char *class_name) {
  char item[64];
  snprintf(item, sizeof item, ",%s,", class_name);
  return strstr(r->found, item) != NULL;
}

/* 1 if a violation of any class in the comma-separated list was found. */
static int run_has_any(const run_t *r, const char *list) {
  char name[32]; /* class names are short; run_has adds two commas */
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, ",");
    if (n > 0 && n < sizeof name) {
      memcpy(name, p, n);
      name[n] = '\0';
      if (run_has(r, name))
        return 1;
    }
    p += n;
    if (*p == ',')
      p++;
  }
  return 0;
}

uint64_t run_rand(run_t *r) {
  uint64_t x = r->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->rng = x;
  return x * UINT64_C(2685821657736338717);
}

void run_log(const run_t *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stdout, "[%s %7.2fs] ", r->o.scenario, (double)(srv_now_us() - t0_us) / 1e6);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  fflush(stdout);
  va_end(ap);
}

void run_srv_cfg(const run_t *r, srv_cfg_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->binary = r->o.gearboxd;
  cfg->data_dir = r->data;
  cfg->log_path = r->log;
  int a = 0;
  if (r->o.sync) {
    cfg->args[a++] = "--sync";
    cfg->args[a++] = r->o.sync;
  }
}

int run_stop_clean(run_t *r, srv_t *s) {
  int code = -1;
  if (srv_stop(s, &code) != 0) {
    run_log(r, "error: %s", srv_error(s));
    run_found(r, "unclean-exit", 1);
    return -1;
  }
  if (code != 0) {
    run_log(r, "gearboxd exited with code %d after SIGTERM (want 0); see %s", code, r->log);
    run_found(r, "unclean-exit", 1);
    return -1;
  }
  return 0;
}

void run_check_sanitizers(run_t *r, srv_t *s) {
  char line[512];
  if (srv_sanitizer_report(s, line, sizeof line)) {
    run_log(r, "sanitizer report in %s: %s", r->log, line);
    run_found(r, "sanitizer", 1);
  }
}

static int rm_entry(const char *p, const struct stat *sb, int f, struct FTW *w) {
  (void)sb;
  (void)f;
  (void)w;
  remove(p);
  return 0;
}

static void usage(FILE *f) {
  fprintf(
      f, "usage: gbx-load --scenario NAME [options]\n"
         "scenarios:\n"
         "  kill       kill -9 gearboxd at random moments under load, restart, check the history\n"
         "  powercut   the same, emulating a power cut (LD_PRELOAD shim) at each kill\n"
         "  iofault    the Nth write or sync of the store fails (EIO/ENOSPC): exit, ack nothing\n"
         "  stop-powercut  clean stops each followed by a power cut: every start comes up whole\n"
         "  fds        a low descriptor limit: connect until refused; no crash, no spin, recovers\n"
         "  clock      jump the wall clock (libfaketime) with messages in flight and delayed\n"
         "  frame-cap  a 100 MB declared frame gets frame_too_large and a closed connection\n"
         "  corrupt    damage a cleanly stopped store; it must recover fully or refuse loudly\n"
         "options:\n"
         "  --gearboxd PATH   server binary (default: the one built with the suite)\n"
         "  --cycles N        kill/power-cut cycles, or corruption cases (default 20)\n"
         "  --min-ms N --max-ms N  load time before each kill (default 100-800)\n"
         "  --seed N          seeds every random choice (default: from the clock, printed)\n"
         "  --producers N --consumers N --dlq-consumers N --queues N --window N --pad N\n"
         "  --delete-pct N --max-receives N   shape of the load (defaults 3 3 1 2 16 512 60 3)\n"
         "  --kill-after-ack  kill right after an acknowledged send\n"
         "  --sync POLICY     passed to gearboxd\n"
         "  --expect CLASS[,CLASS...]  pass only if a violation of (one) CLASS is found\n"
         "                    (prove-failing)\n"
         "  --only PREFIX --skip PREFIX   corrupt: select cases by name\n"
         "  --allow-refusal-leak  corrupt: ASan leak checks off for damaged-store starts\n"
         "  --fake-monotonic  clock: move the monotonic clock too (the test must then fail)\n"
         "  --shim PATH --apply PATH --faketime PATH   helper paths\n"
         "  --keep            keep the run's temp dir\n"
         "  --verbose         print every cycle\n");
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"scenario", 1, 0, 's'},
                                       {"gearboxd", 1, 0, 'g'},
                                       {"cycles", 1, 0, 'c'},
                                       {"min-ms", 1, 0, 'm'},
                                       {"max-ms", 1, 0, 'M'},
                                       {"seed", 1, 0, 'S'},
                                       {"producers", 1, 0, 'p'},
                                       {"consumers", 1, 0, 'C'},
                                       {"dlq-consumers", 1, 0, 'D'},
                                       {"queues", 1, 0, 'q'},
                                       {"window", 1, 0, 'w'},
                                       {"pad", 1, 0, 'P'},
                                       {"delete-pct", 1, 0, 'd'},
                                       {"max-receives", 1, 0, 'R'},
                                       {"kill-after-ack", 0, 0, 'A'},
                                       {"sync", 1, 0, 'y'},
                                       {"expect", 1, 0, 'e'},
                                       {"shim", 1, 0, 'H'},
                                       {"apply", 1, 0, 'a'},
                                       {"faketime", 1, 0, 'f'},
                                       {"keep", 0, 0, 'k'},
                                       {"verbose", 0, 0, 'v'},
                                       {"drain-timeout", 1, 0, 'T'},
                                       {"help", 0, 0, 'h'},
                                       {"only", 1, 0, 'o'},
                                       {"skip", 1, 0, 'x'},
                                       {"fake-monotonic", 0, 0, 'F'},
                                       {"allow-refusal-leak", 0, 0, 'L'},
                                       {0, 0, 0, 0}};
  static run_t r;
  r.o = (run_opts_t){.gearboxd = GBX_REL_GEARBOXD,
                     .shim = GBX_REL_SHIM,
                     .apply = GBX_REL_APPLY,
                     .faketime = GBX_REL_FAKETIME,
                     .cycles = 20,
                     .min_ms = 100,
                     .max_ms = 800,
                     .producers = 3,
                     .consumers = 3,
                     .dlq_consumers = 1,
                     .nqueues = 2,
                     .window = 16,
                     .pad_max = 512,
                     .delete_pct = 60,
                     .max_receives = 3,
                     .drain_timeout_s = 120};
  int seeded = 0, o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    unsigned long v = optarg ? strtoul(optarg, NULL, 10) : 0;
    switch (o) {
    case 's':
      r.o.scenario = optarg;
      break;
    case 'g':
      r.o.gearboxd = optarg;
      break;
    case 'c':
      r.o.cycles = (unsigned)v;
      break;
    case 'm':
      r.o.min_ms = (unsigned)v;
      break;
    case 'M':
      r.o.max_ms = (unsigned)v;
      break;
    case 'S':
      r.o.seed = strtoull(optarg, NULL, 10);
      seeded = 1;
      break;
    case 'p':
      r.o.producers = (int)v;
      break;
    case 'C':
      r.o.consumers = (int)v;
      break;
    case 'D':
      r.o.dlq_consumers = (int)v;
      break;
    case 'q':
      r.o.nqueues = (int)v;
      break;
    case 'w':
      r.o.window = (unsigned)v;
      break;
    case 'P':
      r.o.pad_max = (unsigned)v;
      break;
    case 'd':
      r.o.delete_pct = (unsigned)v;
      break;
    case 'R':
      r.o.max_receives = (unsigned)v;
      break;
    case 'A':
      r.o.kill_after_ack = 1;
      break;
    case 'y':
      r.o.sync = optarg;
      break;
    case 'e':
      r.o.expect = optarg;
      break;
    case 'H':
      r.o.shim = optarg;
      break;
    case 'a':
      r.o.apply = optarg;
      break;
    case 'f':
      r.o.faketime = optarg;
      break;
    case 'k':
      r.o.keep = 1;
      break;
    case 'v':
      r.o.verbose = 1;
      break;
    case 'T':
      r.o.drain_timeout_s = (unsigned)v;
      break;
    case 'o':
      r.o.only = optarg;
      break;
    case 'x':
      r.o.skip = optarg;
      break;
    case 'F':
      r.o.fake_monotonic = 1;
      break;
    case 'L':
      r.o.allow_refusal_leak = 1;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return RUN_ERROR;
    }
  }
  if (!r.o.scenario || optind < argc || r.o.max_ms < r.o.min_ms) {
    usage(stderr);
    return RUN_ERROR;
  }
  signal(SIGPIPE, SIG_IGN);
  t0_us = srv_now_us();
  if (!seeded)
    r.o.seed = (uint64_t)t0_us ^ (uint64_t)getpid() << 32;
  r.rng = r.o.seed * UINT64_C(0x9E3779B97F4A7C15) | 1;

  const char *tmp = getenv("TMPDIR");
  snprintf(r.dir, sizeof r.dir, "%s/gbx-rel-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(r.dir)) {
    fprintf(stderr, "gbx-load: mkdtemp %s: %s\n", r.dir, strerror(errno));
    return RUN_ERROR;
  }
  snprintf(r.data, sizeof r.data, "%s/data", r.dir);
  snprintf(r.log, sizeof r.log, "%s/gearboxd.log", r.dir);
  snprintf(r.side, sizeof r.side, "%s/powercut", r.dir);
  run_log(&r, "gearboxd %s, seed %" PRIu64 ", dir %s", r.o.gearboxd, r.o.seed, r.dir);

  int res;
  if (!strcmp(r.o.scenario, "kill"))
    res = scen_crash(&r, 0);
  else if (!strcmp(r.o.scenario, "powercut"))
    res = scen_crash(&r, 1);
  else if (!strcmp(r.o.scenario, "iofault"))
    res = scen_iofault(&r);
  else if (!strcmp(r.o.scenario, "stop-powercut"))
    res = scen_stop_powercut(&r);
  else if (!strcmp(r.o.scenario, "fds"))
    res = scen_fds(&r);
  else if (!strcmp(r.o.scenario, "clock"))
    res = scen_clock(&r);
  else if (!strcmp(r.o.scenario, "frame-cap"))
    res = scen_frame_cap(&r);
  else if (!strcmp(r.o.scenario, "corrupt"))
    res = scen_corrupt(&r);
  else {
    fprintf(stderr, "gbx-load: unknown scenario '%s'\n", r.o.scenario);
    res = RUN_ERROR;
  }
  if (res == RUN_PASS && r.found[0])
    res = RUN_VIOLATION;

  int exit_code = res;
  const char *verdict = res == RUN_PASS ? "PASS" : res == RUN_VIOLATION ? "FAIL" : "ERROR";
  if (res == EXIT_SKIP)
    verdict = "SKIPPED";
  char shown[sizeof r.found]; /* r.found is ",a,b,": show "a,b" */
  size_t flen = strlen(r.found);
  if (flen >= 2)
    memcpy(shown, r.found + 1, flen - 2);
  shown[flen >= 2 ? flen - 2 : 0] = '\0';
  run_log(&r, "%s (seed %" PRIu64 ")%s%s", verdict, r.o.seed, shown[0] ? " violations: " : "",
          shown);
  if (r.o.expect && res != EXIT_SKIP) {
    int ok = res == RUN_VIOLATION && run_has_any(&r, r.o.expect);
    run_log(&r, "expected a '%s' violation from this server: %s", r.o.expect,
            ok ? "found it, so the test can fail (PASS)"
               : "NOT found: the test did not catch the broken server (FAIL)");
    exit_code = ok ? 0 : 1;
  }
  int keep = r.o.keep || (exit_code != 0 && exit_code != EXIT_SKIP);
  if (keep)
    run_log(&r, "kept %s", r.dir);
  else
    nftw(r.dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
  return exit_code;
}
