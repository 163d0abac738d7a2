/* probe.h - the floor probes: what any broker on this machine is bounded
 * by. A durable broker answering one request at a time cannot beat one
 * fdatasync plus one loopback round trip per request. */
#ifndef BENCH_PROBE_H
#define BENCH_PROBE_H

#include <stddef.h>

typedef struct probe_result {
  double per_s;  /* operations per second */
  double p50_us; /* median latency */
  double p99_us;
} probe_result_t;

/* Appends 256-byte records to a temp file in dir, each followed by
 * fdatasync, for secs seconds. With prewritten set, the file is first
 * written full of zeros and synced, and the records overwrite it in order
 * instead: no size or extent change to sync, as a log that reuses its files
 * (beanstalkd's binlog, RocksDB's recycle_log_file_num). 0, or -1 with err. */
int probe_fsync(const char *dir, double secs, int prewritten, probe_result_t *out, char *err,
                size_t cap);
/* Round trips of a 256-byte message over loopback TCP (TCP_NODELAY) to an
 * echo thread, for secs seconds. 0, or -1 with err filled. */
int probe_loopback(double secs, probe_result_t *out, char *err, size_t cap);

#endif
