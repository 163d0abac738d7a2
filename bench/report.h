/* report.h - everything one invocation measured, and its presentation: a
 * table of medians with ranges over the runs, Gearbox's ratio to each peer
 * at the same durability, the targets, and JSON. */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "probe.h"
#include "result.h"

/* Runs one invocation may make (--runs). */
#define REPORT_MAX_RUNS 20

typedef struct report_meta {
  char commit[64]; /* git rev-parse HEAD, or "uncommitted working tree" */
  char date[40];   /* UTC, ISO 8601 */
  char disk[512];  /* where the data dirs are */
  char cpu[128];
  int ncpu;
  char kernel[96];
  char versions[3][128]; /* gearboxd, beanstalkd, redis-server */
  char args[1024];       /* the command line */
} report_meta_t;

typedef struct report {
  report_meta_t meta;
  result_t *res;
  size_t n, cap;
  probe_result_t fsync[REPORT_MAX_RUNS], loop[REPORT_MAX_RUNS];
  probe_result_t fsync_pre[REPORT_MAX_RUNS]; /* overwrites of a prewritten file */
  unsigned nprobes;
} report_t;

/* Copies r into the report. 0, or -1 when out of memory. */
int report_add(report_t *rep, const result_t *r);
/* Prints the probes, the per-workload tables and the notes. */
void report_table(const report_t *rep, FILE *f);
/* Prints Gearbox's ratio to each peer and each target of issue 3 with
 * whether it is met (only those the runs measured). */
void report_targets(const report_t *rep, FILE *f);
/* Writes the whole report as one JSON document. 0, or -1. */
int report_json(const report_t *rep, FILE *f);
/* 1 if any result failed, or an OK result reports a zero rate. */
int report_any_failed(const report_t *rep);
/* Frees the results. */
void report_free(report_t *rep);

#endif
