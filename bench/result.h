/* result.h - what one run of one workload on one system measured: named
 * numbers (the name's suffix gives the unit), a status and a note. */
#ifndef BENCH_RESULT_H
#define BENCH_RESULT_H

#include <stddef.h>

/* Metrics one workload reports at most (W6 has the most: its per-interval
 * series plus the checks). */
#define RES_MAX_METRICS 112
#define RES_NAME        28

typedef enum { RES_OK = 0, RES_SKIPPED, RES_FAILED } res_status_t;

typedef struct metric {
  char name[RES_NAME]; /* "send_mps", "e2e_p99_us", "rss_mb", "restart_s" */
  double v;
} metric_t;

typedef struct result {
  char workload[8];
  char system[48];     /* sysdef label */
  char durability[24]; /* sysdef durability class */
  int kind;            /* sys_kind_t */
  int run;             /* 1-based */
  res_status_t status;
  char note[768];
  metric_t m[RES_MAX_METRICS];
  size_t nm;
} result_t;

/* Sets metric name to v (adding it, or replacing an earlier value). */
void res_set(result_t *r, const char *name, double v);
/* The value of metric name, or -1 when r does not have it. */
double res_get(const result_t *r, const char *name);
/* Appends a sentence to r->note. */
void res_note(result_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
