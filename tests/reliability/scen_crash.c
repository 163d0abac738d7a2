/* scen_crash.c - the kill -9 and power-cut scenarios: load, kill at random
 * moments, (power cut: roll the store back to what was synced), restart on
 * the same data dir, repeat; then a clean restart, the final drain and the
 * history check. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checker.h"
#include "gearbox.h"
#include "history.h"
#include "load.h"
#include "run.h"

/* How long the kill waits for "the next acknowledged send" before killing
 * anyway: the load acknowledges hundreds per second, so this only bites
 * when the server is stuck. */
#define ACK_WAIT_MS 500
/* Messages the queues may hold (acknowledged sends not yet deleted): a few
 * seconds of consumer work, so every kind of operation is in flight at every
 * kill and the final drain takes seconds. */
#define LOAD_BACKLOG 3000
/* Every this many cycles the restart itself is killed (and power-cut) too,
 * at a random moment up to INTERRUPT_MAX_MS into it: RocksDB's recovery
 * (WAL replay, flush, MANIFEST and CURRENT rewrites) takes that long. */
#define INTERRUPT_EVERY  4
#define INTERRUPT_MAX_MS 300
/* Examples printed per violation class. */
#define MAX_EXAMPLES 5

/* Runs gbx-powercut-apply on the store; its summary goes to our stdout. */
static int powercut_apply(run_t *r, unsigned cycle, int allow_missing) {
  char seed[32];
  snprintf(seed, sizeof seed, "%" PRIu64, r->o.seed * 1000 + cycle * 2 + (unsigned)allow_missing);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    if (allow_missing)
      execl(r->o.apply, r->o.apply, "--side", r->side, "--seed", seed, "--allow-missing", r->data,
            (char *)NULL);
    else
      execl(r->o.apply, r->o.apply, "--side", r->side, "--seed", seed, r->data, (char *)NULL);
    fprintf(stderr, "gbx-load: exec %s: %s\n", r->o.apply, strerror(errno));
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    run_log(r, "error: %s failed (status 0x%x)", r->o.apply, st);
    return -1;
  }
  return 0;
}

/* The shim writes <side>/ready holding the pid it runs in. */
static int shim_active(const run_t *r, pid_t want) {
  char path[PATH_MAX + 16], buf[32] = "";
  snprintf(path, sizeof path, "%s/ready", r->side);
  FILE *f = fopen(path, "re");
  if (!f)
    return 0;
  int ok = fgets(buf, sizeof buf, f) && atoi(buf) == want;
  fclose(f);
  return ok;
}

static int start_checked(run_t *r, srv_t *s, int powercut, unsigned cycle) {
  if (srv_start(s) != 0) {
    run_log(r, "gearboxd did not restart after cycle %u: %s", cycle, srv_error(s));
    run_found(r, "restart-refused", 1);
    return -1;
  }
  if (powercut && !shim_active(r, srv_pid(s))) {
    run_log(r, "error: the power-cut shim is not active in gearboxd (LD_PRELOAD=%s)",
            srv_preload_value(s));
    return -2;
  }
  return 0;
}

/* The load both scenarios run (queues created, workers started), or NULL
 * after logging why. The caller frees it. */
static load_t *start_load(run_t *r, hist_t *h, srv_t *s) {
  char err[1024];
  load_cfg_t lc = {.prefix = "rq",
                   .producers = r->o.producers,
                   .consumers = r->o.consumers,
                   .dlq_consumers = r->o.dlq_consumers,
                   .nqueues = r->o.nqueues,
                   .window = r->o.window,
                   .pad_max = r->o.pad_max,
                   .vis_min_s = 2,
                   .vis_max_s = 5,
                   .max_receives = r->o.max_receives,
                   .delete_pct = r->o.delete_pct,
                   .max_backlog = LOAD_BACKLOG,
                   .seed = r->o.seed};
  load_t *l = load_new(&lc, h, s);
  if (!l) {
    run_log(r, "error: bad load configuration");
    return NULL;
  }
  if (load_create_queues(l, err, sizeof err) != 0 || load_start(l, err, sizeof err) != 0) {
    run_log(r, "error: %s", err);
    load_free(l);
    return NULL;
  }
  return l;
}

/* The power-cut shim's environment for cfg (env[0..1], preload[0]),
 * pointing into pc (which must outlive cfg's use). Returns 0, or -1 after
 * logging when the shim or its apply tool was not built. */
typedef struct pc_env {
  char dir[PATH_MAX + 16], side[PATH_MAX + 16];
} pc_env_t;

static int with_shim(run_t *r, srv_cfg_t *cfg, pc_env_t *pc) {
  if (!r->o.shim[0] || !r->o.apply[0]) {
    run_log(r, "error: the power-cut shim or apply tool was not built");
    return -1;
  }
  snprintf(pc->dir, sizeof pc->dir, "GBX_PC_DIR=%s", r->data);
  snprintf(pc->side, sizeof pc->side, "GBX_PC_SIDE=%s", r->side);
  cfg->env[0] = pc->dir;
  cfg->env[1] = pc->side;
  cfg->preload[0] = r->o.shim;
  return 0;
}

int scen_crash(run_t *r, int powercut) {
  int res = RUN_ERROR;
  char err[1024];
  hist_t *h = hist_new();
  load_t *l = NULL;
  srv_t *s = NULL;
  load_counters_t *ctr = NULL;
  uint64_t reconnects = 0;
  unsigned interrupted = 0;
  srv_cfg_t cfg;
  pc_env_t pc;
  run_srv_cfg(r, &cfg);
  if (powercut && with_shim(r, &cfg, &pc) != 0)
    goto done;
  if (!h || !(s = srv_new(&cfg))) {
    run_log(r, "error: out of memory");
    goto done;
  }
  if (start_checked(r, s, powercut, 0) != 0)
    goto done;
  if (powercut)
    run_log(r, "LD_PRELOAD=%s", srv_preload_value(s));
  if (!(l = start_load(r, h, s)))
    goto done;
  ctr = load_counters(l);
  int64_t t_start = srv_now_us();
  for (unsigned cyc = 1; cyc <= r->o.cycles; cyc++) {
    unsigned ms = r->o.min_ms + (unsigned)(run_rand(r) % (r->o.max_ms - r->o.min_ms + 1));
    srv_sleep_ms(ms);
    if (r->o.kill_after_ack)
      load_wait_ack(l, ACK_WAIT_MS);
    if (srv_kill9(s) != 0) {
      run_log(r, "gearboxd died on its own before cycle %u: %s (log: %s)", cyc, srv_error(s),
              r->log);
      run_found(r, "server-died", 1);
      goto stop;
    }
    if (powercut && powercut_apply(r, cyc, 0) != 0)
      goto stop;
    if (cyc % INTERRUPT_EVERY == 0) {
      /* a crash (or power cut) during recovery: the next start must cope */
      unsigned at = (unsigned)(run_rand(r) % (INTERRUPT_MAX_MS + 1));
      if (srv_start_killed(s, at) != 0) {
        run_log(r, "gearboxd failed while restarting after cycle %u: %s", cyc, srv_error(s));
        run_found(r, "restart-refused", 1);
        res = RUN_VIOLATION;
        goto stop;
      }
      interrupted++;
      if (r->o.verbose)
        run_log(r, "cycle %u: restart killed %u ms in", cyc, at);
      if (powercut && powercut_apply(r, cyc, 1) != 0)
        goto stop;
    }
    int64_t t_re = srv_now_us();
    int sr = start_checked(r, s, powercut, cyc);
    if (sr == -2)
      goto stop;
    if (sr != 0) {
      res = RUN_VIOLATION;
      goto stop;
    }
    if (r->o.verbose || cyc == r->o.cycles || cyc % 10 == 0)
      run_log(
          r,
          "cycle %u: killed after %u ms, restarted in %.0f ms; so far %" PRIu64
          " sends acked, %" PRIu64 " delivered, %" PRIu64 " deletes acked, %" PRIu64 " in doubt",
          cyc, ms, (double)(srv_now_us() - t_re) / 1000, atomic_load(&ctr->send_acks),
          atomic_load(&ctr->receives), atomic_load(&ctr->delete_acks), atomic_load(&ctr->in_doubt));
  }
  double load_s = (double)(srv_now_us() - t_start) / 1e6;
  load_stop(l);
  run_log(r,
          "%u %s cycles (%u of them also during the next start) in %.1f s; clean restart, "
          "then the final drain",
          r->o.cycles, powercut ? "power-cut" : "kill -9", interrupted, load_s);
  if (run_stop_clean(r, s) != 0 || start_checked(r, s, powercut, r->o.cycles + 1) != 0) {
    res = RUN_VIOLATION;
    goto stop;
  }
  if (load_drain(l, r->o.drain_timeout_s, err, sizeof err) != 0) {
    run_log(r, "%s", err);
    run_found(r, "drain-failed", 1);
  }
  check_report_t rep;
  long v = check_run(h, &rep, stdout, MAX_EXAMPLES);
  if (v < 0) {
    run_log(r, "error: out of memory in the checker");
    goto stop;
  }
  check_print(&rep, stdout);
  for (int c = 0; c < V_COUNT; c++)
    run_found(r, check_class_name(c), rep.violations[c]);
  run_stop_clean(r, s);
  res = RUN_PASS;
stop:
  reconnects = ctr ? atomic_load(&ctr->reconnects) : 0;
  load_free(l); /* ctr points into it */
  l = NULL;
  ctr = NULL;
  if (srv_running(s)) {
    int code;
    srv_stop(s, &code);
  }
  run_check_sanitizers(r, s);
  run_log(r, "%u gearboxd starts, %" PRIu64 " reconnects, %zu history events", srv_starts(s),
          reconnects, hist_count(h));
done:
  load_free(l);
  srv_free(s);
  hist_free(h);
  return res;
}

/* How long gearboxd may take to notice an injected failure and exit: the
 * load commits hundreds of batches a second, so the Nth write or sync comes
 * within a second or two; 30 s is a hang, not a slow machine. */
#define FAULT_EXIT_MS 30000

/* One fault cycle: gearboxd restarted with the shim armed to fail the Nth
 * write or sync; it must exit non-zero without acknowledging the failed
 * batch (the power cut applied after it throws away whatever that batch
 * left unsynced, so an acknowledgement of it shows as `lost`). Returns 0,
 * 1 on a violation (recorded), -1 on a harness error. */
static int fault_cycle(run_t *r, srv_t *s, unsigned cyc) {
  static const char *const kinds[] = {"sync", "write"};
  static const char *const errnos[] = {"EIO", "ENOSPC"};
  const char *kind = kinds[cyc % 2], *err = errnos[(cyc / 2) % 2];
  /* RocksDB's own start-up makes a few dozen writes and syncs; the load
   * makes hundreds a second: the fault lands under load, now and then in
   * the start itself (which must then fail loudly too). */
  unsigned at = cyc % 2 ? 60 + (unsigned)(run_rand(r) % 600) : 20 + (unsigned)(run_rand(r) % 200);
  char e_kind[48], e_at[48], e_err[48];
  snprintf(e_kind, sizeof e_kind, "GBX_PC_FAIL=%s", kind);
  snprintf(e_at, sizeof e_at, "GBX_PC_FAIL_AT=%u", at);
  snprintf(e_err, sizeof e_err, "GBX_PC_FAIL_ERRNO=%s", err);
  if (srv_set_env(s, e_kind) || srv_set_env(s, e_at) || srv_set_env(s, e_err)) {
    run_log(r, "error: %s", srv_error(s));
    return -1;
  }
  int code = 0;
  char out[4096];
  int st = srv_try_start(s, &code, out, sizeof out);
  if (st < 0) {
    run_log(r, "error: %s", srv_error(s));
    return -1;
  }
  const char *when = "during its start";
  if (st == 0) {
    when = "under load";
    if (srv_wait_exit(s, FAULT_EXIT_MS, &code) != 0) {
      run_log(r,
              "cycle %u: gearboxd still running %d ms after its %s #%u was armed to fail "
              "with %s (log: %s)",
              cyc, FAULT_EXIT_MS, kind, at, err, r->log);
      run_found(r, "io-error-ignored", 1);
      srv_kill9(s);
      return 1;
    }
  }
  if (code == 0) {
    run_log(r, "cycle %u: gearboxd exited 0 after a failed %s (log: %s)", cyc, kind, r->log);
    run_found(r, "quiet-exit", 1);
    return 1;
  }
  if (r->o.verbose || cyc % 4 == 0)
    run_log(r, "cycle %u: %s #%u failed with %s %s: gearboxd exited with %d", cyc, kind, at, err,
            when, code);
  if (powercut_apply(r, cyc, 1) != 0)
    return -1;
  if (srv_set_env(s, "GBX_PC_FAIL=") != 0)
    return -1;
  int sr = start_checked(r, s, 1, cyc);
  return sr == -2 ? -1 : sr != 0 ? 1 : 0;
}

int scen_iofault(run_t *r) {
  int res = RUN_ERROR;
  char err[1024];
  hist_t *h = hist_new();
  load_t *l = NULL;
  srv_t *s = NULL;
  load_counters_t *ctr = NULL;
  srv_cfg_t cfg;
  pc_env_t pc;
  run_srv_cfg(r, &cfg);
  if (with_shim(r, &cfg, &pc) != 0)
    goto done;
  if (!h || !(s = srv_new(&cfg))) {
    run_log(r, "error: out of memory");
    goto done;
  }
  if (start_checked(r, s, 1, 0) != 0)
    goto done;
  if (!(l = start_load(r, h, s)))
    goto done;
  ctr = load_counters(l);
  for (unsigned cyc = 1; cyc <= r->o.cycles; cyc++) {
    unsigned ms = r->o.min_ms + (unsigned)(run_rand(r) % (r->o.max_ms - r->o.min_ms + 1));
    srv_sleep_ms(ms);
    /* a power cut to start the faulty run from (the shim is re-armed only
     * at a start) */
    if (srv_kill9(s) != 0) {
      run_log(r, "gearboxd died on its own before cycle %u: %s", cyc, srv_error(s));
      run_found(r, "server-died", 1);
      goto stop;
    }
    if (powercut_apply(r, cyc + 100000, 0) != 0)
      goto stop;
    int fr = fault_cycle(r, s, cyc);
    if (fr < 0)
      goto stop;
    if (fr > 0) {
      res = RUN_VIOLATION;
      goto stop;
    }
  }
  load_stop(l);
  run_log(r,
          "%u failing-disk cycles; %" PRIu64 " sends acked, %" PRIu64 " in doubt; clean "
          "restart, then the final drain",
          r->o.cycles, atomic_load(&ctr->send_acks), atomic_load(&ctr->in_doubt));
  if (run_stop_clean(r, s) != 0 || start_checked(r, s, 1, r->o.cycles + 1) != 0) {
    res = RUN_VIOLATION;
    goto stop;
  }
  if (load_drain(l, r->o.drain_timeout_s, err, sizeof err) != 0) {
    run_log(r, "%s", err);
    run_found(r, "drain-failed", 1);
  }
  check_report_t rep;
  if (check_run(h, &rep, stdout, MAX_EXAMPLES) < 0) {
    run_log(r, "error: out of memory in the checker");
    goto stop;
  }
  check_print(&rep, stdout);
  for (int c = 0; c < V_COUNT; c++)
    run_found(r, check_class_name(c), rep.violations[c]);
  run_stop_clean(r, s);
  res = RUN_PASS;
stop:
  load_free(l);
  l = NULL;
  if (srv_running(s)) {
    int code;
    srv_stop(s, &code);
  }
  run_check_sanitizers(r, s);
  run_log(r, "%u gearboxd starts, %zu history events", srv_starts(s), hist_count(h));
done:
  load_free(l);
  srv_free(s);
  hist_free(h);
  return res;
}

/* A clean stop is durable under every --sync policy: N messages are sent
 * (acknowledged), gearboxd stops cleanly, the power is cut, and the next
 * start must come up (its clean-stop marker claims the sequence it stopped
 * at) with all N. Under --sync none a stop that wrote the marker without
 * syncing the WAL refused that start ("acknowledged data is missing"). */
#define STOP_PC_MESSAGES 200
int scen_stop_powercut(run_t *r) {
  int res = RUN_ERROR;
  srv_t *s = NULL;
  gbx_client_t *c = NULL;
  gbx_error_t e = {0};
  srv_cfg_t cfg;
  pc_env_t pc;
  run_srv_cfg(r, &cfg);
  if (with_shim(r, &cfg, &pc) != 0)
    return RUN_ERROR;
  if (!(s = srv_new(&cfg))) {
    run_log(r, "error: out of memory");
    return RUN_ERROR;
  }
  for (unsigned cyc = 1; cyc <= r->o.cycles; cyc++) {
    if (start_checked(r, s, 1, cyc) != 0) {
      res = run_has(r, "restart-refused") ? RUN_VIOLATION : RUN_ERROR;
      goto done;
    }
    if (!(c = gbx_connect("127.0.0.1", srv_port_now(s), &e)) ||
        (cyc == 1 && gbx_queue_create(c, "stop-pc", NULL, NULL, 0, NULL, &e) != 0)) {
      run_log(r, "error: %s", e.message);
      goto done;
    }
    for (int i = 0; i < STOP_PC_MESSAGES; i++)
      if (gbx_queue_send(c, "stop-pc", "x", 1, NULL, 0, 0, NULL, &e) != 0) {
        run_log(r, "error: send: %s", e.message);
        goto done;
      }
    gbx_close(c);
    c = NULL;
    if (run_stop_clean(r, s) != 0 || powercut_apply(r, cyc, 0) != 0)
      goto done;
  }
  if (start_checked(r, s, 1, r->o.cycles + 1) != 0) {
    res = run_has(r, "restart-refused") ? RUN_VIOLATION : RUN_ERROR;
    goto done;
  }
  gbx_queue_info_t info;
  if (!(c = gbx_connect("127.0.0.1", srv_port_now(s), &e)) ||
      gbx_queue_get_attrs(c, "stop-pc", &info, &e) != 0) {
    run_log(r, "error: %s", e.message);
    goto done;
  }
  uint64_t want = (uint64_t)STOP_PC_MESSAGES * r->o.cycles;
  run_log(r,
          "%u clean stops, each followed by a power cut: %" PRIu64 " of %" PRIu64
          " acknowledged messages there",
          r->o.cycles, (uint64_t)info.visible, want);
  if (info.visible != want)
    run_found(r, "lost", want - info.visible);
  gbx_queue_info_free(&info);
  res = RUN_PASS;
done:
  gbx_close(c);
  if (srv_running(s)) {
    int code;
    srv_stop(s, &code);
  }
  run_check_sanitizers(r, s);
  srv_free(s);
  return res;
}
