/* report.c - tables, ratios, targets and JSON (see report.h). Tables are
 * Markdown so they paste into RESULTS.md as printed. A cell is the median
 * over the runs with the range [min-max] beside it. */
#include "report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "systems.h"

/* Key metrics per workload, in column order (every metric is in the JSON). */
static const struct {
  const char *w;
  const char *cols[10];
} layout[] = {
    {"W1",
     {"send_mps", "recv_mps", "send_p50_us", "send_p99_us", "recv_p50_us", "srv_cpu_pct",
      "other_cpu_pct", NULL}},
    {"W2",
     {"send_mps", "recv_mps", "send_p50_us", "send_p99_us", "batch", "srv_cpu_pct", "other_cpu_pct",
      NULL}},
    {"W3",
     {"delivered_mps", "e2e_p50_us", "e2e_p99_us", "e2e_p999_us", "e2e_max_us", "send_p50_us",
      "srv_cpu_pct", "other_cpu_pct", NULL}},
    {"W3R",
     {"delivered_mps", "e2e_p50_us", "e2e_p99_us", "e2e_p999_us", "e2e_max_us", "send_p99_us",
      "send_p999_us", "srv_cpu_pct", "other_cpu_pct", NULL}},
    {"W4", {"publish_mps", "deliver_mps", "srv_cpu_pct", "other_cpu_pct", NULL}},
    {"W5",
     {"messages", "fill_mps", "rss_per_msg_b", "disk_per_msg_b", "restart_s", "drain_mps", NULL}},
    {"W6",
     {"mean_mps", "slope_pct", "disk_ratio", "restart_empty_s", "restart_after_s", "restart_ratio",
      NULL}},
};

int report_add(report_t *rep, const result_t *r) {
  if (rep->n == rep->cap) {
    size_t cap = rep->cap ? rep->cap * 2 : 32;
    result_t *p = realloc(rep->res, cap * sizeof(*p));
    if (!p)
      return -1;
    rep->res = p;
    rep->cap = cap;
  }
  rep->res[rep->n++] = *r;
  return 0;
}

void report_free(report_t *rep) {
  free(rep->res);
  rep->res = NULL;
  rep->n = rep->cap = 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct agg {
  double med, lo, hi;
  size_t n;
} agg_t;

/* Median and range of a metric over the OK runs of (workload, system). */
static int agg_label(const report_t *rep, const char *w, const char *sys, const char *metric,
                     agg_t *out) {
  double v[REPORT_MAX_RUNS];
  size_t n = 0;
  for (size_t i = 0; i < rep->n && n < REPORT_MAX_RUNS; i++) {
    const result_t *r = &rep->res[i];
    if (r->status != RES_OK || strcmp(r->workload, w) || strcmp(r->system, sys))
      continue;
    for (size_t k = 0; k < r->nm; k++) {
      if (!strcmp(r->m[k].name, metric)) {
        v[n++] = r->m[k].v;
        break;
      }
    }
  }
  if (!n)
    return -1;
  qsort(v, n, sizeof(v[0]), cmp_double);
  out->n = n;
  out->lo = v[0];
  out->hi = v[n - 1];
  out->med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return 0;
}

/* The same, finding the system by kind and durability class. */
static int agg_kind(const report_t *rep, const char *w, int kind, const char *dur,
                    const char *metric, agg_t *out, const char **label) {
  for (size_t i = 0; i < rep->n; i++) {
    const result_t *r = &rep->res[i];
    if (r->kind == kind && !strcmp(r->durability, dur) && !strcmp(r->workload, w)) {
      if (label)
        *label = r->system;
      return agg_label(rep, w, r->system, metric, out);
    }
  }
  return -1;
}

static void fmt_num(char *out, size_t cap, double v) {
  double a = fabs(v);
  if (a >= 100)
    snprintf(out, cap, "%.0f", v);
  else if (a >= 10)
    snprintf(out, cap, "%.1f", v);
  else
    snprintf(out, cap, "%.2f", v);
}

static void fmt_agg(char *out, size_t cap, const agg_t *a) {
  char m[32], lo[32], hi[32];
  fmt_num(m, sizeof(m), a->med);
  if (a->n < 2) {
    snprintf(out, cap, "%s", m);
    return;
  }
  fmt_num(lo, sizeof(lo), a->lo);
  fmt_num(hi, sizeof(hi), a->hi);
  if (snprintf(out, cap, "%s [%s-%s]", m, lo, hi) >= (int)cap)
    out[cap - 1] = 0;
}

/* Systems that ran workload w, in order of first appearance. */
static size_t systems_of(const report_t *rep, const char *w, const char **out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < rep->n; i++) {
    const result_t *r = &rep->res[i];
    if (strcmp(r->workload, w))
      continue;
    size_t k;
    for (k = 0; k < n && strcmp(out[k], r->system); k++) {
    }
    if (k == n && n < cap)
      out[n++] = r->system;
  }
  return n;
}

static void probes_median(const report_t *rep, probe_result_t *fs, probe_result_t *lo) {
  double a[REPORT_MAX_RUNS], b[REPORT_MAX_RUNS], c[REPORT_MAX_RUNS], d[REPORT_MAX_RUNS];
  unsigned n = rep->nprobes;
  memset(fs, 0, sizeof(*fs));
  memset(lo, 0, sizeof(*lo));
  if (!n)
    return;
  for (unsigned i = 0; i < n; i++) {
    a[i] = rep->fsync[i].per_s;
    b[i] = rep->fsync[i].p50_us;
    c[i] = rep->loop[i].per_s;
    d[i] = rep->loop[i].p50_us;
  }
  double *arr[] = {a, b, c, d};
  for (int k = 0; k < 4; k++)
    qsort(arr[k], n, sizeof(double), cmp_double);
  fs->per_s = a[n / 2];
  fs->p50_us = b[n / 2];
  lo->per_s = c[n / 2];
  lo->p50_us = d[n / 2];
}

void report_table(const report_t *rep, FILE *f) {
  const char *systems[32];
  char cell[96];
  if (rep->nprobes) {
    fprintf(f, "\n### Floor probes (data disk: %s)\n\n", rep->meta.disk);
    fprintf(f, "| run | append+fdatasync/s | p50 us | p99 us | overwrite+fdatasync/s | p50 us | "
               "p99 us | loopback RTT/s | RTT p50 us | p99 us |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|\n");
    for (unsigned i = 0; i < rep->nprobes; i++)
      fprintf(f, "| %u | %.0f | %.1f | %.1f | %.0f | %.1f | %.1f | %.0f | %.1f | %.1f |\n", i + 1,
              rep->fsync[i].per_s, rep->fsync[i].p50_us, rep->fsync[i].p99_us,
              rep->fsync_pre[i].per_s, rep->fsync_pre[i].p50_us, rep->fsync_pre[i].p99_us,
              rep->loop[i].per_s, rep->loop[i].p50_us, rep->loop[i].p99_us);
    fprintf(f, "\nappend: 256-byte appends to a new file, each followed by fdatasync (the "
               "issue's probe; every sync also writes the grown inode). overwrite: the same "
               "records overwriting a prewritten file (a recycled log).\n");
  }
  for (size_t li = 0; li < sizeof(layout) / sizeof(layout[0]); li++) {
    const char *w = layout[li].w;
    size_t ns = systems_of(rep, w, systems, 32);
    if (!ns)
      continue;
    fprintf(f, "\n### %s\n\n| system |", w);
    for (size_t c = 0; layout[li].cols[c]; c++)
      fprintf(f, " %s |", layout[li].cols[c]);
    fprintf(f, "\n|---|");
    for (size_t c = 0; layout[li].cols[c]; c++)
      fprintf(f, "---|");
    fprintf(f, "\n");
    for (size_t s = 0; s < ns; s++) {
      fprintf(f, "| %s |", systems[s]);
      for (size_t c = 0; layout[li].cols[c]; c++) {
        agg_t a;
        if (agg_label(rep, w, systems[s], layout[li].cols[c], &a) == 0)
          fmt_agg(cell, sizeof(cell), &a);
        else
          snprintf(cell, sizeof(cell), "-");
        fprintf(f, " %s |", cell);
      }
      fprintf(f, "\n");
    }
    /* Notes: skipped and failed runs, and anything a run remarked. */
    for (size_t i = 0; i < rep->n; i++) {
      const result_t *r = &rep->res[i];
      if (strcmp(r->workload, w) || !r->note[0])
        continue;
      int dup = 0;
      for (size_t k = 0; k < i && !dup; k++)
        dup = !strcmp(rep->res[k].workload, w) && !strcmp(rep->res[k].system, r->system) &&
              !strcmp(rep->res[k].note, r->note);
      if (!dup)
        fprintf(f, "\n- %s run %d%s: %s", r->system, r->run,
                r->status == RES_FAILED ? " FAILED" : "", r->note);
    }
    fprintf(f, "\n");
  }
}

/* Main throughput metrics compared between systems. */
static const struct {
  const char *w, *metric;
} compared[] = {
    {"W1", "send_mps"},      {"W1", "recv_mps"},    {"W2", "send_mps"},    {"W2", "recv_mps"},
    {"W3", "delivered_mps"}, {"W3R", "e2e_p99_us"}, {"W4", "publish_mps"}, {"W4", "deliver_mps"},
};

static void target_line(FILE *f, const char *what, double have, double want, int higher,
                        const char *how) {
  int met = higher ? have >= want : have < want;
  fprintf(f, "| %s | %s | %s |\n", what, how, met ? "met" : "**missed**");
}

void report_targets(const report_t *rep, FILE *f) {
  static const char *durs[] = {"always", "interval:1000", "none"};
  char how[256];
  agg_t g, p;
  const char *plabel;
  fprintf(f, "\n### Gearbox / peer at the same durability (ratio of medians)\n\n");
  fprintf(f, "| workload | metric | gearbox | peer | gearbox | peer | ratio "
             "|\n|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < sizeof(compared) / sizeof(compared[0]); i++) {
    for (size_t d = 0; d < 3; d++) {
      const char *glabel;
      if (agg_kind(rep, compared[i].w, SYS_GEARBOX, durs[d], compared[i].metric, &g, &glabel))
        continue;
      for (int kind = SYS_BEANSTALKD; kind <= SYS_REDIS; kind++) {
        if (agg_kind(rep, compared[i].w, kind, durs[d], compared[i].metric, &p, &plabel))
          continue;
        int lower_better = strstr(compared[i].metric, "_us") != NULL;
        double ratio =
            lower_better ? (g.med > 0 ? p.med / g.med : 0) : (p.med > 0 ? g.med / p.med : 0);
        fprintf(f, "| %s | %s%s | %s | %s | %.0f | %.0f | %.2fx |\n", compared[i].w,
                compared[i].metric, lower_better ? " (peer/gearbox)" : "", glabel, plabel, g.med,
                p.med, ratio);
      }
      /* The ceiling: Redis without persistence, against every Gearbox mode. */
      if (agg_kind(rep, compared[i].w, SYS_REDIS, "none", compared[i].metric, &p, &plabel) == 0 &&
          strcmp(durs[d], "none") != 0) {
        int lower_better = strstr(compared[i].metric, "_us") != NULL;
        double ratio =
            lower_better ? (g.med > 0 ? p.med / g.med : 0) : (p.med > 0 ? g.med / p.med : 0);
        fprintf(f, "| %s | %s%s | %s | %s (ceiling) | %.0f | %.0f | %.2fx |\n", compared[i].w,
                compared[i].metric, lower_better ? " (peer/gearbox)" : "", glabel, plabel, g.med,
                p.med, ratio);
      }
    }
  }

  probe_result_t fs, lo;
  probes_median(rep, &fs, &lo);
  double F = fs.p50_us + lo.p50_us > 0 ? 1e6 / (fs.p50_us + lo.p50_us) : 0;
  fprintf(f, "\n### Targets of issue 3\n\n");
  if (F > 0) {
    double pre[REPORT_MAX_RUNS];
    for (unsigned i = 0; i < rep->nprobes; i++)
      pre[i] = rep->fsync_pre[i].p50_us;
    qsort(pre, rep->nprobes, sizeof(double), cmp_double);
    double pre50 = pre[rep->nprobes / 2];
    fprintf(f,
            "F = 1 / (append+fdatasync p50 %.1f us + loopback RTT p50 %.1f us) = %.0f requests/s "
            "(medians of the runs' probes). With a prewritten log (overwrite+fdatasync p50 "
            "%.1f us) the same formula gives %.0f requests/s.\n\n",
            fs.p50_us, lo.p50_us, F, pre50, pre50 + lo.p50_us > 0 ? 1e6 / (pre50 + lo.p50_us) : 0);
  }
  fprintf(f, "| target | measured | status |\n|---|---|---|\n");
  if (F > 0 && agg_kind(rep, "W1", SYS_GEARBOX, "always", "send_mps", &g, NULL) == 0) {
    snprintf(how, sizeof(how), "%.0f msgs/s = %.0f%% of F", g.med, 100 * g.med / F);
    target_line(f, "W1 send, always: >= 90% of F", g.med, 0.9 * F, 1, how);
  }
  /* Better-peer targets: W2 (both phases), W3 and W4, durable and interval. */
  static const struct {
    const char *w, *metric, *dur, *name;
    double factor;
  } peers[] = {
      {"W2", "send_mps", "always", "W2 send, always: >= 2x better peer", 2.0},
      {"W2", "recv_mps", "always", "W2 receive, always: >= 2x better peer", 2.0},
      {"W4", "publish_mps", "always", "W4 publishes, always: >= 2x better peer", 2.0},
      {"W2", "send_mps", "interval:1000", "W2 send, interval: >= 1.5x better peer", 1.5},
      {"W2", "recv_mps", "interval:1000", "W2 receive, interval: >= 1.5x better peer", 1.5},
      {"W3", "delivered_mps", "interval:1000", "W3, interval: >= 1.2x better peer", 1.2},
  };
  for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
    double best = 0;
    const char *bestl = NULL;
    for (int kind = SYS_BEANSTALKD; kind <= SYS_REDIS; kind++)
      if (agg_kind(rep, peers[i].w, kind, peers[i].dur, peers[i].metric, &p, &plabel) == 0 &&
          p.med > best) {
        best = p.med;
        bestl = plabel;
      }
    if (agg_kind(rep, peers[i].w, SYS_GEARBOX, peers[i].dur, peers[i].metric, &g, NULL) != 0) {
      if (!strcmp(peers[i].w, "W4") && best > 0)
        fprintf(f, "| %s | gearbox not measured (see W4 notes) | **missed** |\n", peers[i].name);
      continue;
    }
    if (!bestl)
      continue;
    snprintf(how, sizeof(how), "%.0f vs %s %.0f = %.2fx", g.med, bestl, best, g.med / best);
    target_line(f, peers[i].name, g.med, peers[i].factor * best, 1, how);
  }
  if (F > 0 && agg_kind(rep, "W3", SYS_GEARBOX, "always", "delivered_mps", &g, NULL) == 0) {
    snprintf(how, sizeof(how), "%.0f msgs/s = %.0f%% of 4F (%.0f)", g.med, 100 * g.med / (4 * F),
             4 * F);
    target_line(f, "W3, always: >= 80% of 4F", g.med, 0.8 * 4 * F, 1, how);
  }
  if (agg_kind(rep, "W3R", SYS_GEARBOX, "always", "e2e_p99_us", &g, NULL) == 0) {
    snprintf(how, sizeof(how), "p99 %.0f us", g.med);
    target_line(f, "W3R, always: end-to-end p99 < 1 ms", g.med, 1000, 0, how);
  }
  if (agg_kind(rep, "W3R", SYS_GEARBOX, "always", "e2e_p999_us", &g, NULL) == 0) {
    snprintf(how, sizeof(how), "p99.9 %.0f us", g.med);
    target_line(f, "W3R, always: end-to-end p99.9 < 3 ms", g.med, 3000, 0, how);
  }
  for (size_t i = 0; i < rep->n; i++) {
    const result_t *r = &rep->res[i];
    if (r->kind == SYS_GEARBOX && !strcmp(r->workload, "W6") && r->status == RES_OK)
      fprintf(f, "| W6 (run %d) | %s | %s |\n", r->run, r->note,
              strstr(r->note, "MISSED") ? "**missed**" : "met");
  }
}

static cJSON *result_json(const result_t *r) {
  cJSON *o = cJSON_CreateObject(), *m = cJSON_CreateObject();
  if (!o || !m) {
    cJSON_Delete(o);
    cJSON_Delete(m);
    return NULL;
  }
  cJSON_AddStringToObject(o, "workload", r->workload);
  cJSON_AddStringToObject(o, "system", r->system);
  cJSON_AddStringToObject(o, "durability", r->durability);
  cJSON_AddNumberToObject(o, "run", r->run);
  cJSON_AddStringToObject(o, "status",
                          r->status == RES_OK        ? "ok"
                          : r->status == RES_SKIPPED ? "skipped"
                                                     : "failed");
  cJSON_AddStringToObject(o, "note", r->note);
  for (size_t i = 0; i < r->nm; i++)
    cJSON_AddNumberToObject(m, r->m[i].name, r->m[i].v);
  cJSON_AddItemToObject(o, "metrics", m);
  return o;
}

int report_json(const report_t *rep, FILE *f) {
  cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "meta");
  cJSON *probes = cJSON_AddArrayToObject(root, "probes");
  cJSON *results = cJSON_AddArrayToObject(root, "results");
  int rc = -1;
  if (!root || !meta || !probes || !results)
    goto fail;
  cJSON_AddStringToObject(meta, "commit", rep->meta.commit);
  cJSON_AddStringToObject(meta, "date", rep->meta.date);
  cJSON_AddStringToObject(meta, "data_disk", rep->meta.disk);
  cJSON_AddStringToObject(meta, "cpu", rep->meta.cpu);
  cJSON_AddNumberToObject(meta, "ncpu", rep->meta.ncpu);
  cJSON_AddStringToObject(meta, "kernel", rep->meta.kernel);
  cJSON_AddStringToObject(meta, "gearboxd", rep->meta.versions[0]);
  cJSON_AddStringToObject(meta, "beanstalkd", rep->meta.versions[1]);
  cJSON_AddStringToObject(meta, "redis", rep->meta.versions[2]);
  cJSON_AddStringToObject(meta, "args", rep->meta.args);
  for (unsigned i = 0; i < rep->nprobes; i++) {
    cJSON *p = cJSON_CreateObject();
    if (!p)
      goto fail;
    cJSON_AddNumberToObject(p, "run", i + 1);
    cJSON_AddNumberToObject(p, "fdatasync_per_s", rep->fsync[i].per_s);
    cJSON_AddNumberToObject(p, "fdatasync_p50_us", rep->fsync[i].p50_us);
    cJSON_AddNumberToObject(p, "fdatasync_p99_us", rep->fsync[i].p99_us);
    cJSON_AddNumberToObject(p, "overwrite_fdatasync_per_s", rep->fsync_pre[i].per_s);
    cJSON_AddNumberToObject(p, "overwrite_fdatasync_p50_us", rep->fsync_pre[i].p50_us);
    cJSON_AddNumberToObject(p, "overwrite_fdatasync_p99_us", rep->fsync_pre[i].p99_us);
    cJSON_AddNumberToObject(p, "loopback_rtt_per_s", rep->loop[i].per_s);
    cJSON_AddNumberToObject(p, "loopback_rtt_p50_us", rep->loop[i].p50_us);
    cJSON_AddNumberToObject(p, "loopback_rtt_p99_us", rep->loop[i].p99_us);
    cJSON_AddItemToArray(probes, p);
  }
  for (size_t i = 0; i < rep->n; i++) {
    cJSON *o = result_json(&rep->res[i]);
    if (!o)
      goto fail;
    cJSON_AddItemToArray(results, o);
  }
  char *s = cJSON_Print(root);
  if (!s)
    goto fail;
  fprintf(f, "%s\n", s);
  free(s);
  rc = 0;
fail:
  cJSON_Delete(root);
  return rc;
}

int report_any_failed(const report_t *rep) {
  for (size_t i = 0; i < rep->n; i++) {
    const result_t *r = &rep->res[i];
    if (r->status == RES_FAILED)
      return 1;
    if (r->status != RES_OK)
      continue;
    for (size_t k = 0; k < r->nm; k++) {
      size_t len = strlen(r->m[k].name);
      if (len > 4 && !strcmp(r->m[k].name + len - 4, "_mps") && r->m[k].v <= 0)
        return 1;
    }
  }
  return 0;
}
