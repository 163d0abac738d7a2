/* scen_clock.c - wall-clock jumps: gearboxd runs under libfaketime (wall
 * clock only; CLOCK_MONOTONIC stays real, as it does when an administrator or
 * NTP steps the clock). With messages in flight under a 5 s visibility
 * timeout and messages delayed 5 s, the wall clock jumps forward 3 hours,
 * then back 6 hours. Visibility and delays run on the monotonic clock, so
 * nothing may come back before its 5 s (no early redelivery) and everything
 * must come back soon after (no lost redelivery); a queue with a 1-hour
 * retention keeps its messages through the forward jump.
 *
 * libfaketime is steered through a timestamp file it re-reads on every call
 * (FAKETIME_NO_CACHE). The server starts 1 day ahead, so the probe message's
 * send time proves the library is active in gearboxd; /bin/date under the
 * same environment proves each jump took.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gearbox.h"
#include "run.h"

/* Visibility and delay under test, s. */
#define VIS_S 5
/* Messages in flight and delayed per phase. */
#define N_INFLIGHT 40
#define N_DELAYED  20
#define N_RETAINED 10
/* The queue whose retention a wall-clock implementation would trip. */
#define RETENTION_S 3600
/* Offsets of the fake wall clock, s: the start, then the two jumps. */
#define START_OFFSET_S 86400
#define FORWARD_S      (START_OFFSET_S + 3 * 3600)
#define BACKWARD_S     (START_OFFSET_S - 3 * 3600)
/* When the jump happens, after the messages went in flight, ms. */
#define JUMP_AT_MS 1000
/* Nothing may come back before VIS_S minus this (the receive that hid
 * them took a few ms after our clock read), ms. */
#define EARLY_MARGIN_MS 300
/* Everything must be back within VIS_S plus this, ms: generous for a loaded
 * CI machine, tiny against the hours a wall-clock deadline would take. */
#define LATE_SLACK_MS 10000
/* Poll interval while waiting, ms. */
#define POLL_MS 100
/* How far the probe's send time may be from the expected fake time, ms. */
#define PROBE_TOLERANCE_MS (10 * 60 * 1000)

typedef struct clk {
  run_t *r;
  srv_t *s;
  gbx_client_t *c;
  char tsfile[PATH_MAX + 16];
  char env_file[PATH_MAX + 48];
} clk_t;

static int64_t real_wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int set_offset(clk_t *k, long offset_s) {
  FILE *f = fopen(k->tsfile, "we");
  if (!f)
    return -1;
  fprintf(f, "%+ld\n", offset_s);
  return fclose(f);
}

/* The fake wall clock as a process preloaded like gearboxd sees it, in s
 * (via /bin/date), or -1. */
static long fake_now_s(clk_t *k) {
  int p[2];
  if (pipe(p) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    char pre[PATH_MAX + 16];
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s", k->r->o.faketime);
    char *envp[] = {pre, k->env_file, "FAKETIME_NO_CACHE=1", "FAKETIME_DONT_FAKE_MONOTONIC=1",
                    NULL};
    execle("/bin/date", "date", "+%s", (char *)NULL, envp);
    _exit(127);
  }
  close(p[1]);
  char buf[64] = "";
  ssize_t n = read(p[0], buf, sizeof buf - 1);
  close(p[0]);
  int st;
  waitpid(pid, &st, 0);
  return n > 0 ? strtol(buf, NULL, 10) : -1;
}

static int jump(clk_t *k, long offset_s, const char *what) {
  if (set_offset(k, offset_s) != 0)
    return -1;
  long got = fake_now_s(k), want = (long)(real_wall_ms() / 1000) + offset_s;
  if (got < 0 || labs(got - want) > 60) {
    run_log(k->r, "error: the fake clock reads %ld after the jump, want about %ld", got, want);
    return -1;
  }
  run_log(k->r, "wall clock jumped %s (now real %+ld s)", what, offset_s);
  return 0;
}

static int create(clk_t *k, const char *q, uint32_t retention) {
  gbx_queue_attrs_t a = {.set = GBX_QA_VISIBILITY | GBX_QA_RETENTION,
                         .visibility_timeout = VIS_S,
                         .retention_period = retention};
  gbx_error_t e;
  if (gbx_queue_create(k->c, q, &a, NULL, 0, NULL, &e) != GBX_E_OK) {
    run_log(k->r, "error: create %s: %s", q, e.message);
    return -1;
  }
  return 0;
}

static int send_n(clk_t *k, const char *q, int n, int delay) {
  for (int i = 0; i < n; i++) {
    char body[32];
    int len = snprintf(body, sizeof body, "%s-%d", q, i);
    gbx_error_t e;
    if (gbx_queue_send(k->c, q, body, (size_t)len, NULL, 0, delay, NULL, &e) != GBX_E_OK) {
      run_log(k->r, "error: send to %s: %s", q, e.message);
      return -1;
    }
  }
  return 0;
}

/* Receives what is visible on q now (vis s), deleting it if del. Returns the
 * number received (receive counts summed into *rcsum), or -1. */
static int take(clk_t *k, const char *q, int vis, int del, uint64_t *rcsum) {
  gbx_message_t *m = NULL;
  size_t n = 0;
  gbx_error_t e;
  if (gbx_queue_receive(k->c, q, GBX_MAX_RECEIVE, vis, 0, &m, &n, &e) != GBX_E_OK) {
    run_log(k->r, "error: receive from %s: %s", q, e.message);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (rcsum)
      *rcsum += m[i].receive_count;
    if (del && gbx_message_delete(k->c, q, m[i].receipt, &e) != GBX_E_OK) {
      run_log(k->r, "error: delete from %s: %s", q, e.message);
      gbx_messages_free(m);
      return -1;
    }
  }
  gbx_messages_free(m);
  return (int)n;
}

/* One phase: messages in flight and delayed, a jump, then the checks. */
static int phase(clk_t *k, long offset_s, const char *what) {
  run_t *r = k->r;
  if (send_n(k, "clk", N_INFLIGHT, 0) != 0)
    return -1;
  int64_t t0 = srv_now_us();
  int got = 0;
  while (got < N_INFLIGHT) {
    int n = take(k, "clk", VIS_S, 0, NULL);
    if (n < 0)
      return -1;
    if (n == 0 && srv_now_us() - t0 > 2000000) {
      run_log(r, "error: only %d of %d fresh messages were visible", got, N_INFLIGHT);
      return -1;
    }
    got += n;
  }
  int64_t t_delay = srv_now_us();
  if (send_n(k, "clk-delay", N_DELAYED, VIS_S) != 0)
    return -1;
  srv_sleep_ms(JUMP_AT_MS);
  if (jump(k, offset_s, what) != 0)
    return -1;
  /* until just before their 5 s: nothing may show up */
  int early = 0, early_d = 0, back = 0, back_d = 0;
  uint64_t rcsum = 0;
  while (srv_now_us() < t0 + (int64_t)(VIS_S * 1000 - EARLY_MARGIN_MS) * 1000) {
    int a = take(k, "clk", 30, 1, &rcsum), b = 0;
    if (srv_now_us() < t_delay + (int64_t)(VIS_S * 1000 - EARLY_MARGIN_MS) * 1000)
      b = take(k, "clk-delay", 30, 1, NULL);
    if (a < 0 || b < 0)
      return -1;
    early += a;
    early_d += b;
    srv_sleep_ms(POLL_MS);
  }
  /* then everything must come back */
  int64_t until = t_delay + (int64_t)(VIS_S * 1000 + LATE_SLACK_MS) * 1000;
  while ((early + back < N_INFLIGHT || early_d + back_d < N_DELAYED) && srv_now_us() < until) {
    int a = take(k, "clk", 30, 1, &rcsum), b = take(k, "clk-delay", 30, 1, NULL);
    if (a < 0 || b < 0)
      return -1;
    back += a;
    back_d += b;
    if (!a && !b)
      srv_sleep_ms(POLL_MS);
  }
  double secs = (double)(srv_now_us() - t0) / 1e6;
  run_log(r,
          "after the jump %s: %d/%d in-flight messages came back early, %d on time; %d/%d "
          "delayed ones early, %d on time (%.1f s)",
          what, early, N_INFLIGHT, back, early_d, N_DELAYED, back_d, secs);
  run_found(r, "early-redelivery", (uint64_t)early);
  run_found(r, "early-delivery", (uint64_t)early_d);
  run_found(r, "lost-redelivery", (uint64_t)(N_INFLIGHT - early - back));
  run_found(r, "lost-delivery", (uint64_t)(N_DELAYED - early_d - back_d));
  if (rcsum != 2u * (uint64_t)(early + back)) {
    run_log(r, "redelivered messages' receive counts sum to %" PRIu64 ", want %d", rcsum,
            2 * (early + back));
    run_found(r, "rc-regression", 1);
  }
  return 0;
}

int scen_clock(run_t *r) {
  if (!r->o.faketime[0] || access(r->o.faketime, R_OK) != 0) {
    run_log(r, "libfaketime is not installed (Debian package 'faketime'): skipped");
    return 77;
  }
  int res = RUN_ERROR;
  clk_t k = {.r = r};
  snprintf(k.tsfile, sizeof k.tsfile, "%s/faketime", r->dir);
  snprintf(k.env_file, sizeof k.env_file, "FAKETIME_TIMESTAMP_FILE=%s", k.tsfile);
  if (set_offset(&k, START_OFFSET_S) != 0) {
    run_log(r, "error: cannot write %s", k.tsfile);
    return RUN_ERROR;
  }
  srv_cfg_t cfg;
  run_srv_cfg(r, &cfg);
  cfg.env[0] = k.env_file;
  cfg.env[1] = "FAKETIME_NO_CACHE=1";
  /* --fake-monotonic shows what a server that read the wall clock for its
   * deadlines would do: the test must fail then */
  cfg.env[2] =
      r->o.fake_monotonic ? "FAKETIME_DONT_FAKE_MONOTONIC=0" : "FAKETIME_DONT_FAKE_MONOTONIC=1";
  cfg.preload[0] = r->o.faketime;
  k.s = srv_new(&cfg);
  if (!k.s || srv_start(k.s) != 0) {
    run_log(r, "error: cannot start gearboxd under libfaketime: %s",
            k.s ? srv_error(k.s) : "out of memory");
    goto done;
  }
  run_log(r, "LD_PRELOAD=%s", srv_preload_value(k.s));
  gbx_error_t e;
  if (!(k.c = gbx_connect("127.0.0.1", srv_port_now(k.s), &e))) {
    run_log(r, "error: connect: %s", e.message);
    goto done;
  }
  gbx_set_timeout(k.c, 30000);
  if (create(&k, "clk", GBX_RETENTION_DEFAULT) || create(&k, "clk-delay", GBX_RETENTION_DEFAULT) ||
      create(&k, "clk-retain", RETENTION_S) || create(&k, "clk-probe", GBX_RETENTION_DEFAULT))
    goto done;
  /* the probe: gearboxd must see the fake clock, or the test proves nothing */
  gbx_message_t *m = NULL;
  size_t n = 0;
  if (send_n(&k, "clk-probe", 1, 0) ||
      gbx_queue_receive(k.c, "clk-probe", 1, 30, 0, &m, &n, &e) != GBX_E_OK || n != 1) {
    run_log(r, "error: the probe message did not come back");
    gbx_messages_free(m);
    goto done;
  }
  int64_t skew = (int64_t)m[0].sent_ms - real_wall_ms();
  gbx_messages_free(m);
  if (llabs(skew - (int64_t)START_OFFSET_S * 1000) > PROBE_TOLERANCE_MS) {
    run_log(r,
            "error: gearboxd's clock is %+.0f s off the real one, want %+d: libfaketime is "
            "not active in it",
            (double)skew / 1000, START_OFFSET_S);
    goto done;
  }
  run_log(r, "gearboxd runs %+.0f s ahead of the real clock", (double)skew / 1000);
  if (send_n(&k, "clk-retain", N_RETAINED, 0) != 0)
    goto done;
  if (phase(&k, FORWARD_S, "forward 3 h") != 0 || phase(&k, BACKWARD_S, "back 6 h") != 0)
    goto done;
  int kept = take(&k, "clk-retain", 30, 1, NULL);
  if (kept < 0)
    goto done;
  run_log(r, "%d/%d messages of the 1-hour-retention queue survived the jumps", kept, N_RETAINED);
  run_found(r, "retention-dropped", (uint64_t)(N_RETAINED - kept));
  gbx_close(k.c);
  k.c = NULL;
  run_stop_clean(r, k.s);
  res = RUN_PASS;
done:
  gbx_close(k.c);
  if (k.s) {
    if (srv_running(k.s)) {
      int code;
      srv_stop(k.s, &code);
    }
    run_check_sanitizers(r, k.s);
  }
  srv_free(k.s);
  return res;
}
