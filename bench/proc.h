/* proc.h - the server processes the benchmark starts: spawn with stderr in
 * a log file, wait until ready, stop, read memory use. */
#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct proc {
  pid_t pid;     /* 0 when not running */
  int out_fd;    /* read end of the child's stdout; -1 if none */
  char log[512]; /* the child's stderr (appended by every start) */
} proc_t;

/* Starts argv[0] (searched in PATH) with stdout on a pipe and stderr
 * appended to log_path. The child gets SIGTERM if the benchmark dies.
 * Returns 0, or -1 with err filled. */
int proc_spawn(proc_t *p, char *const argv[], const char *log_path, char *err, size_t errcap);
/* Reads the child's stdout until a line starting with prefix; copies it to
 * line (NUL-terminated). -1 with err filled when the child exits or
 * timeout_ms passes first. */
int proc_wait_line(proc_t *p, const char *prefix, char *line, size_t linecap, int timeout_ms,
                   char *err, size_t errcap);
/* Waits until host:port accepts a connection (for servers that print no
 * ready line). -1 with err filled on exit or timeout. */
int proc_wait_port(proc_t *p, const char *host, uint16_t port, int timeout_ms, char *err,
                   size_t errcap);
/* Sends SIGTERM, waits up to timeout_ms (then SIGKILL) and reaps. Returns
 * the exit status (128+signal if killed), or -1 if it was not running. */
int proc_stop(proc_t *p, int timeout_ms);
/* 1 if the child is still running. */
int proc_alive(proc_t *p);
/* Resident set size of the child (VmRSS of /proc/PID/status) in bytes; 0
 * if unknown. */
uint64_t proc_rss(const proc_t *p);
/* CPU time (user + system) the child has used so far, in seconds; -1 if
 * unknown. */
double proc_cpu_seconds(const proc_t *p);
/* Copies the last lines of the log (at most cap-1 bytes) into out. */
void proc_log_tail(const proc_t *p, char *out, size_t cap);

#endif
