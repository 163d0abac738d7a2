/* main.c - gearbox-bench: parse flags, decide which systems run at which
 * durability, run probes and workloads run by run, print the report.
 *
 * Each (run, workload, system) gets a freshly started server on an empty
 * temp dir; systems of one workload run back to back, so slow drift of the
 * machine affects them alike. Exit status: 0 when every workload completed
 * with non-zero throughput, 1 when one failed, 2 on bad usage. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "flow.h"
#include "fsutil.h"
#include "gbx_limits.h"
#include "probe.h"
#include "report.h"
#include "systems.h"
#include "workload.h"

/* Durability classes one invocation may compare (--sync list). */
#define MAX_DURS 4
/* Systems one invocation runs: per class Gearbox and two peers, plus the
 * Redis ceiling. */
#define MAX_SYSTEMS (3 * MAX_DURS + 1)
/* Seconds each floor probe runs: long enough for a stable median. */
#define PROBE_SECONDS       3.0
#define PROBE_SECONDS_QUICK 0.3
/* A W1 send rate at `always` this many times the disk's sync rate is
 * remarked on: one synced request at a time cannot be that fast. */
#define SUSPECT_FACTOR 3.0

typedef struct opts {
  char workloads[16][8];
  size_t nworkloads;
  wl_cfg_t cfg;
  char sync[MAX_DURS][24];
  size_t nsync;
  int compare, json, quick, keep;
  unsigned runs;
  const char *server, *gearboxd, *dir, *json_out;
} opts_t;

static void usage(FILE *f) {
  fprintf(f, "usage: gearbox-bench [options]\n"
             "  --workload LIST     W1,W2,W3,W3R,W4,W5,W6 or all (W1-W4; default all).\n"
             "                      W5 (10 M messages) and W6 (10 min churn) only when named\n"
             "  --size BYTES        message body size (default 256)\n"
             "  --fanout N          W4: queues subscribed to the topic (1-10, default 10)\n"
             "  --count N           messages of W1, W2, W4, W5 (defaults 200000, 200000, 50000,\n"
             "                      10000000)\n"
             "  --duration S        seconds of W3, W3R and of W5's drain (default 10)\n"
             "  --conns N           producers, and as many consumers, of W3, W3R, W6 (default 4)\n"
             "  --batch N           W2 messages per send request (default: Gearbox 32, peers 1)\n"
             "  --depth N           W2 messages outstanding per connection (default 64)\n"
             "  --rate N            W3R messages/s offered (default 5000)\n"
             "  --rate-conns N      W3R producers, each one send in flight (default 16)\n"
             "  --churn-minutes M   W6 length (default 10)\n"
             "  --sync LIST         Gearbox sync policies, comma-separated: always,\n"
             "                      interval:MS, none (default always; with --compare\n"
             "                      always,interval:1000)\n"
             "  --server HOST:PORT  measure a running gearboxd instead of starting one\n"
             "  --gearboxd PATH     the gearboxd to start (default: the one built beside)\n"
             "  --compare           also run beanstalkd and Redis 7 streams at the same\n"
             "                      durability, and Redis without persistence as a ceiling\n"
             "  --runs N            repeat everything N times; tables show medians (default 1)\n"
             "  --dir DIR           where data dirs go (default .; never a tmpfs)\n"
             "  --json              print JSON on stdout (the tables go to stderr)\n"
             "  --json-out FILE     also write the JSON to FILE\n"
             "  --keep              keep the data dirs\n"
             "  --quick             tiny counts and durations (the smoke test)\n"
             "  --help              this text\n");
}

static int parse_num(const char *flag, const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "gearbox-bench: %s wants a number in %g-%g, not '%s'\n", flag, lo, hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

/* Splits a comma list into fixed-size entries; -1 when too many or too long. */
static int split_list(const char *flag, const char *s, char (*out)[24], size_t width, size_t max,
                      size_t *n) {
  *n = 0;
  while (*s) {
    size_t len = strcspn(s, ",");
    if (len == 0 || len >= width || *n == max) {
      fprintf(stderr, "gearbox-bench: bad %s list '%s'\n", flag, s);
      return -1;
    }
    memcpy(out[*n], s, len);
    out[(*n)++][len] = 0;
    s += len + (s[len] == ',');
  }
  return 0;
}

static int parse_args(int argc, char **argv, opts_t *o) {
  static const struct option lo[] = {{"workload", 1, 0, 'w'},
                                     {"size", 1, 0, 's'},
                                     {"count", 1, 0, 'n'},
                                     {"duration", 1, 0, 'd'},
                                     {"conns", 1, 0, 'c'},
                                     {"rate-conns", 1, 0, 'P'},
                                     {"batch", 1, 0, 'b'},
                                     {"depth", 1, 0, 'D'},
                                     {"rate", 1, 0, 'r'},
                                     {"churn-minutes", 1, 0, 'm'},
                                     {"sync", 1, 0, 'S'},
                                     {"server", 1, 0, 'H'},
                                     {"gearboxd", 1, 0, 'g'},
                                     {"compare", 0, 0, 'C'},
                                     {"runs", 1, 0, 'R'},
                                     {"dir", 1, 0, 'T'},
                                     {"json", 0, 0, 'j'},
                                     {"json-out", 1, 0, 'J'},
                                     {"keep", 0, 0, 'k'},
                                     {"quick", 0, 0, 'q'},
                                     {"help", 0, 0, 'h'},
                                     {"fanout", 1, 0, 'F'},
                                     {0, 0, 0, 0}};
  const char *wl = "all", *sync = NULL;
  double v;
  int c;
  memset(o, 0, sizeof(*o));
  o->cfg.size = 256;
  o->runs = 1;
  o->dir = ".";
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
    case 'w':
      wl = optarg;
      break;
    case 's':
      if (parse_num("--size", optarg, FLOW_STAMP, GBX_MAX_MESSAGE_SIZE / 2, &v))
        return -1;
      o->cfg.size = (size_t)v;
      break;
    case 'n':
      if (parse_num("--count", optarg, 1, 1e10, &v))
        return -1;
      o->cfg.count = (uint64_t)v;
      break;
    case 'd':
      if (parse_num("--duration", optarg, 0.1, 86400, &v))
        return -1;
      o->cfg.duration_s = v;
      break;
    case 'F':
      if (parse_num("--fanout", optarg, 1, 10, &v))
        return -1;
      o->cfg.fanout = (unsigned)v;
      break;
    case 'c':
      if (parse_num("--conns", optarg, 1, 64, &v))
        return -1;
      o->cfg.conns = (unsigned)v;
      break;
    case 'P':
      if (parse_num("--rate-conns", optarg, 1, 64, &v))
        return -1;
      o->cfg.rate_conns = (unsigned)v;
      break;
    case 'b':
      if (parse_num("--batch", optarg, 1, GBX_MAX_BATCH, &v))
        return -1;
      o->cfg.batch = (size_t)v;
      break;
    case 'D':
      if (parse_num("--depth", optarg, 1, 1000, &v))
        return -1;
      o->cfg.depth = (size_t)v;
      break;
    case 'r':
      if (parse_num("--rate", optarg, 1, 1e7, &v))
        return -1;
      o->cfg.rate = v;
      break;
    case 'm':
      if (parse_num("--churn-minutes", optarg, 0.01, 10000, &v))
        return -1;
      o->cfg.churn_min = v;
      break;
    case 'S':
      sync = optarg;
      break;
    case 'H':
      o->server = optarg;
      break;
    case 'g':
      o->gearboxd = optarg;
      break;
    case 'C':
      o->compare = 1;
      break;
    case 'R':
      if (parse_num("--runs", optarg, 1, REPORT_MAX_RUNS, &v))
        return -1;
      o->runs = (unsigned)v;
      break;
    case 'T':
      o->dir = optarg;
      break;
    case 'j':
      o->json = 1;
      break;
    case 'J':
      o->json_out = optarg;
      break;
    case 'k':
      o->keep = 1;
      break;
    case 'q':
      o->quick = o->cfg.quick = 1;
      break;
    case 'h':
      usage(stdout);
      exit(0);
    default:
      usage(stderr);
      return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "gearbox-bench: unexpected argument '%s'\n", argv[optind]);
    return -1;
  }
  if (!strcmp(wl, "all"))
    wl = "W1,W2,W3,W3R,W4";
  char tmp[16][24];
  if (split_list("--workload", wl, tmp, 24, 16, &o->nworkloads))
    return -1;
  for (size_t i = 0; i < o->nworkloads; i++) {
    if (!wl_known(tmp[i])) {
      fprintf(stderr, "gearbox-bench: unknown workload '%s'\n", tmp[i]);
      return -1;
    }
    memcpy(o->workloads[i], tmp[i], strlen(tmp[i]) + 1); /* known names are short */
  }
  if (!sync)
    sync = o->compare ? "always,interval:1000" : "always";
  if (split_list("--sync", sync, o->sync, 24, MAX_DURS, &o->nsync))
    return -1;
  for (size_t i = 0; i < o->nsync; i++) {
    unsigned ms;
    char extra;
    if (strcmp(o->sync[i], "always") && strcmp(o->sync[i], "none") &&
        (sscanf(o->sync[i], "interval:%u%c", &ms, &extra) != 1 || ms < 1 || ms > 60000)) {
      fprintf(stderr, "gearbox-bench: --sync wants always, interval:MS or none, not '%s'\n",
              o->sync[i]);
      return -1;
    }
  }
  if (o->server && o->compare) {
    fprintf(stderr, "gearbox-bench: --compare starts its own servers; it cannot use --server\n");
    return -1;
  }
  if (o->server && o->nsync > 1) {
    fprintf(stderr,
            "gearbox-bench: with --server the server's own sync policy applies: give one --sync\n");
    return -1;
  }
  return 0;
}

/* The gearboxd built with this tool: the compile-time path, else beside us. */
static const char *default_gearboxd(char *buf, size_t cap) {
#ifdef GBX_BENCH_GEARBOXD
  if (access(GBX_BENCH_GEARBOXD, X_OK) == 0)
    return GBX_BENCH_GEARBOXD;
#endif
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
      *slash = 0;
    if (snprintf(buf, cap, "%s/../server/gearboxd", self) < (int)cap && access(buf, X_OK) == 0)
      return buf;
  }
  return "gearboxd";
}

/* First line of a command's output into out ("" on failure). */
static void command_line(const char *cmd, char *out, size_t cap) {
  out[0] = 0;
  FILE *f = popen(cmd, "r");
  if (!f)
    return;
  if (!fgets(out, (int)cap, f))
    out[0] = 0;
  out[strcspn(out, "\n")] = 0;
  pclose(f);
}

static void fill_meta(report_meta_t *m, int argc, char **argv) {
  char line[512], dirty[64];
  time_t now = time(NULL);
  strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
#ifdef GBX_BENCH_SOURCE_DIR
  command_line("git -C '" GBX_BENCH_SOURCE_DIR "' rev-parse --verify -q HEAD 2>/dev/null", line,
               sizeof(line));
  command_line("git -C '" GBX_BENCH_SOURCE_DIR "' status --porcelain 2>/dev/null | head -1", dirty,
               sizeof(dirty));
#else
  line[0] = dirty[0] = 0;
#endif
  if (line[0])
    snprintf(m->commit, sizeof(m->commit), "%.40s%s", line, dirty[0] ? " + local changes" : "");
  else
    snprintf(m->commit, sizeof(m->commit), "uncommitted working tree on %.10s", m->date);
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    while (fgets(line, sizeof(line), f)) {
      char *colon = strchr(line, ':');
      if (!strncmp(line, "model name", 10) && colon) {
        snprintf(m->cpu, sizeof(m->cpu), "%s", colon + 2);
        m->cpu[strcspn(m->cpu, "\n")] = 0;
        break;
      }
    }
    fclose(f);
  }
  m->ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
  struct utsname u;
  if (uname(&u) == 0 && snprintf(m->kernel, sizeof(m->kernel), "%s %s", u.sysname, u.release) >=
                            (int)sizeof(m->kernel))
    m->kernel[sizeof(m->kernel) - 1] = 0;
  size_t used = 0;
  for (int i = 0; i < argc && used < sizeof(m->args) - 1; i++)
    used += (size_t)snprintf(m->args + used, sizeof(m->args) - used, "%s%s", i ? " " : "", argv[i]);
}

/* The systems to run: per --sync class Gearbox, and with --compare
 * beanstalkd and Redis at that class, plus the Redis ceiling. */
static size_t plan_systems(const opts_t *o, sysdef_t *defs) {
  size_t n = 0;
  int have_none = 0;
  for (size_t i = 0; i < o->nsync; i++) {
    dur_t dur = !strcmp(o->sync[i], "always") ? DUR_ALWAYS
                : !strcmp(o->sync[i], "none") ? DUR_NONE
                                              : DUR_INTERVAL;
    unsigned ms = 0;
    if (dur == DUR_INTERVAL)
      sscanf(o->sync[i], "interval:%u", &ms);
    have_none |= dur == DUR_NONE;
    sys_define(&defs[n++], SYS_GEARBOX, dur, ms);
    if (!o->compare)
      continue;
    sys_define(&defs[n++], SYS_BEANSTALKD, dur, ms);
    if (sys_define(&defs[n], SYS_REDIS, dur, ms) == 0)
      n++;
    else
      fprintf(stderr, "gearbox-bench: Redis syncs always or every second: no peer at %s\n",
              o->sync[i]);
  }
  if (o->compare && !have_none)
    sys_define(&defs[n++], SYS_REDIS, DUR_NONE, 0);
  return n;
}

/* CPU seconds all processes have used (/proc/stat, every non-idle state). */
static double machine_busy_seconds(void) {
  unsigned long long v[10] = {0};
  FILE *f = fopen("/proc/stat", "r");
  if (!f)
    return -1;
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                 &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
  fclose(f);
  if (n < 8)
    return -1;
  /* user nice system idle iowait irq softirq steal: idle and iowait are idle */
  unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

static double tv_s(const struct timeval *tv) {
  return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* Runs one workload on one system and records it. */
static void run_one(const opts_t *o, const sysenv_t *env, const sysdef_t *d, const char *w,
                    unsigned run, const probe_result_t *fsync, const probe_result_t *fsync_pre,
                    report_t *rep) {
  result_t *r = calloc(1, sizeof(*r));
  sysrun_t sys;
  char err[1024];
  if (!r) {
    fprintf(stderr, "gearbox-bench: out of memory\n");
    exit(1);
  }
  snprintf(r->workload, sizeof(r->workload), "%s", w);
  snprintf(r->system, sizeof(r->system), "%s", d->label);
  snprintf(r->durability, sizeof(r->durability), "%s", d->durability);
  r->kind = d->kind;
  r->run = (int)run;
  wl_cfg_t cfg = o->cfg;
  cfg.run = run;
  if (!sys_available(d->kind, env)) {
    r->status = RES_SKIPPED;
    res_note(r, "skipped: %s is not installed",
             d->kind == SYS_GEARBOX      ? env->gearboxd
             : d->kind == SYS_BEANSTALKD ? "beanstalkd"
                                         : "redis-server (or hiredis at build time)");
  } else if (sys_start(&sys, d, env, err, sizeof(err)) != 0) {
    r->status = RES_FAILED;
    res_note(r, "start: %s", err);
  } else {
    /* CPU use of server and benchmark over the workload: on a 2-core
     * machine it tells whether a result is bound by the disk or by CPU. */
    struct rusage ru0, ru1;
    int pid0 = sys_pid(&sys);
    double cpu0 = sys_cpu_seconds(&sys), busy0 = machine_busy_seconds();
    uint64_t t0 = clock_ns();
    getrusage(RUSAGE_SELF, &ru0);
    wl_run(w, &sys, &cfg, r);
    getrusage(RUSAGE_SELF, &ru1);
    double wall = (double)(clock_ns() - t0) / NS_PER_S, cpu1 = sys_cpu_seconds(&sys);
    double busy1 = machine_busy_seconds();
    if (r->status == RES_OK && wall > 0) {
      double bench =
          tv_s(&ru1.ru_utime) + tv_s(&ru1.ru_stime) - tv_s(&ru0.ru_utime) - tv_s(&ru0.ru_stime);
      res_set(r, "wall_s", wall);
      res_set(r, "bench_cpu_pct", 100 * bench / wall);
      if (cpu0 >= 0 && cpu1 >= 0 && sys_pid(&sys) == pid0) {
        res_set(r, "srv_cpu_pct", 100 * (cpu1 - cpu0) / wall);
        /* Everything else the machine did meanwhile (other users' builds
         * and tests): a run with much of it measured a shared machine. */
        if (busy0 >= 0 && busy1 >= 0) {
          double other = (busy1 - busy0) - bench - (cpu1 - cpu0);
          res_set(r, "other_cpu_pct", other > 0 ? 100 * other / wall : 0);
        }
      }
    }
    if (r->status == RES_OK && sys_check_written(&sys, err, sizeof(err)) != 0) {
      r->status = RES_FAILED;
      res_note(r, "%s", err);
    }
    /* One synced request at a time cannot beat the disk's sync rate. The
     * probes ran at another moment and a shared disk's latency wanders, so
     * only a wide margin is worth a remark; an unsynced system is 10x off. */
    double send = res_get(r, "send_mps");
    double floor = fsync->per_s > fsync_pre->per_s ? fsync->per_s : fsync_pre->per_s;
    if (!strcmp(w, "W1") && d->dur == DUR_ALWAYS && floor > 0 && send > SUSPECT_FACTOR * floor)
      res_note(r, "W1 send (%.0f/s) is faster than the disk syncs (%.0f/s): not durable?", send,
               floor);
    int st = sys_stop(&sys, o->keep);
    if (d->kind == SYS_GEARBOX && !sys.external && st != 0) {
      r->status = RES_FAILED;
      res_note(r, "gearboxd exited with status %d", st);
    }
  }
  fprintf(stderr, "run %u %-4s %-22s %s", run, w, d->label,
          r->status == RES_OK        ? "ok"
          : r->status == RES_SKIPPED ? "skipped"
                                     : "FAILED");
  for (size_t i = 0; i < r->nm; i++) {
    size_t len = strlen(r->m[i].name);
    if (len > 4 && (!strcmp(r->m[i].name + len - 4, "_mps") || strstr(r->m[i].name, "p99_us")))
      fprintf(stderr, " %s=%.0f", r->m[i].name, r->m[i].v);
  }
  fprintf(stderr, "%s%s\n", r->note[0] ? " | " : "", r->note);
  if (report_add(rep, r)) {
    fprintf(stderr, "gearbox-bench: out of memory\n");
    exit(1);
  }
  free(r);
}

int main(int argc, char **argv) {
  opts_t o;
  char gbuf[PATH_MAX], err[512];
  sysdef_t defs[MAX_SYSTEMS];
  report_t rep;
  int ram = 0;
  if (parse_args(argc, argv, &o))
    return 2;
  signal(SIGPIPE, SIG_IGN);
  memset(&rep, 0, sizeof(rep));
  fill_meta(&rep.meta, argc, argv);
  /* Absolute: servers (Redis) change into their data dir before opening logs. */
  char dir[PATH_MAX];
  if (!realpath(o.dir, dir)) {
    fprintf(stderr, "gearbox-bench: --dir %s: %s\n", o.dir, strerror(errno));
    return 2;
  }
  sysenv_t env = {o.gearboxd ? o.gearboxd : default_gearboxd(gbuf, sizeof(gbuf)), dir, o.server,
                  o.cfg.size};
  if (fs_describe(dir, rep.meta.disk, sizeof(rep.meta.disk), &ram) != 0) {
    fprintf(stderr, "gearbox-bench: --dir %s: %s\n", o.dir, rep.meta.disk);
    return 2;
  }
  if (ram) {
    fprintf(stderr,
            "gearbox-bench: %s is on %s, a RAM file system where a sync costs nothing; "
            "give --dir on a real disk\n",
            o.dir, rep.meta.disk);
    return 2;
  }
  size_t nsys = plan_systems(&o, defs);
  sys_version(SYS_GEARBOX, &env, rep.meta.versions[0], sizeof(rep.meta.versions[0]));
  if (o.compare) {
    sys_version(SYS_BEANSTALKD, &env, rep.meta.versions[1], sizeof(rep.meta.versions[1]));
    sys_version(SYS_REDIS, &env, rep.meta.versions[2], sizeof(rep.meta.versions[2]));
  }
  fprintf(stderr, "gearbox-bench: data dirs under %s on %s; %d CPUs (%s); %s\n", dir, rep.meta.disk,
          rep.meta.ncpu, rep.meta.cpu, rep.meta.commit);
  flow_init();
  double probe_s = o.quick ? PROBE_SECONDS_QUICK : PROBE_SECONDS;
  for (unsigned run = 1; run <= o.runs; run++) {
    probe_result_t *fs = &rep.fsync[run - 1], *lo = &rep.loop[run - 1];
    if (probe_fsync(dir, probe_s, 0, fs, err, sizeof(err)) ||
        probe_fsync(dir, probe_s, 1, &rep.fsync_pre[run - 1], err, sizeof(err)) ||
        probe_loopback(probe_s, lo, err, sizeof(err))) {
      fprintf(stderr, "gearbox-bench: floor probe failed: %s\n", err);
      return 1;
    }
    rep.nprobes = run;
    fprintf(stderr,
            "run %u probes: append+fdatasync %.0f/s (p50 %.1f us), overwrite+fdatasync %.0f/s "
            "(p50 %.1f us), loopback RTT %.0f/s (p50 %.1f us)\n",
            run, fs->per_s, fs->p50_us, rep.fsync_pre[run - 1].per_s, rep.fsync_pre[run - 1].p50_us,
            lo->per_s, lo->p50_us);
    for (size_t wi = 0; wi < o.nworkloads; wi++) {
      const char *w = o.workloads[wi];
      for (size_t si = 0; si < nsys; si++) {
        if (defs[si].kind != SYS_GEARBOX && !wl_compared(w))
          continue;
        run_one(&o, &env, &defs[si], w, run, fs, &rep.fsync_pre[run - 1], &rep);
      }
    }
  }
  FILE *out = o.json ? stderr : stdout;
  fprintf(out, "\n## gearbox-bench results\n\n");
  fprintf(out, "- commit: %s\n- date: %s\n- machine: %d CPUs, %s, %s\n- data disk: %s\n",
          rep.meta.commit, rep.meta.date, rep.meta.ncpu, rep.meta.cpu, rep.meta.kernel,
          rep.meta.disk);
  fprintf(out, "- servers: %s%s%s%s%s\n- command: %s\n- runs: %u (cells: median [min-max])\n",
          rep.meta.versions[0], o.compare ? "; " : "", rep.meta.versions[1], o.compare ? "; " : "",
          rep.meta.versions[2], rep.meta.args, o.runs);
  report_table(&rep, out);
  report_targets(&rep, out);
  int rc = 0;
  if (o.json && report_json(&rep, stdout))
    rc = 1;
  if (o.json_out) {
    FILE *jf = fopen(o.json_out, "w");
    if (!jf || report_json(&rep, jf)) {
      fprintf(stderr, "gearbox-bench: cannot write %s\n", o.json_out);
      rc = 1;
    }
    if (jf)
      fclose(jf);
  }
  if (report_any_failed(&rep))
    rc = 1;
  report_free(&rep);
  return rc;
}
