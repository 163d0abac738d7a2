/* systems.h - the brokers a benchmark runs against: Gearbox, and with
 * --compare beanstalkd and Redis, each started fresh on loopback with its
 * own temp dir at a stated durability, checked to really be configured so,
 * and stopped (dir removed) afterwards. */
#ifndef BENCH_SYSTEMS_H
#define BENCH_SYSTEMS_H

#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "proc.h"

typedef enum { SYS_GEARBOX, SYS_BEANSTALKD, SYS_REDIS } sys_kind_t;
/* Durability classes compared with each other. */
typedef enum { DUR_ALWAYS, DUR_INTERVAL, DUR_NONE } dur_t;

typedef struct sysdef {
  sys_kind_t kind;
  dur_t dur;
  unsigned interval_ms; /* DUR_INTERVAL */
  char label[48];       /* "gearbox always", "beanstalkd -f 0", "redis everysec" */
  char durability[24];  /* the class: "always", "interval:1000", "none" */
} sysdef_t;

typedef struct sysenv {
  const char *gearboxd; /* path of the gearboxd binary */
  const char *base_dir; /* temp dirs are made here (on the disk measured) */
  const char *server;   /* HOST:PORT of a running Gearbox, or NULL */
  size_t max_body;      /* largest body a workload sends (beanstalkd -z) */
} sysenv_t;

typedef struct sysrun {
  const sysdef_t *def;
  const driver_t *drv;
  endpoint_t ep;
  int external; /* --server: not ours to restart or measure */
  proc_t proc;
  char dir[1024];  /* temp dir: data/ and the server's log */
  char data[1100]; /* the data dir */
  const sysenv_t *env;
} sysrun_t;

/* Fills d for kind at durability dur; -1 if the system has no such mode. */
int sys_define(sysdef_t *d, sys_kind_t kind, dur_t dur, unsigned interval_ms);
/* 1 if the system's server binary can be run here (beanstalkd and
 * redis-server are looked up in PATH). */
int sys_available(sys_kind_t kind, const sysenv_t *env);
/* The server's version string ("beanstalkd 1.12") into out. */
void sys_version(sys_kind_t kind, const sysenv_t *env, char *out, size_t cap);
/* Starts the system on a fresh temp dir, waits until it serves, and checks
 * its durability settings are the ones d states. With env->server set
 * (Gearbox only), connects to that server instead. 0, or -1 with err. */
int sys_start(sysrun_t *r, const sysdef_t *d, const sysenv_t *env, char *err, size_t cap);
/* Stops the server (SIGTERM) and starts it again on the same data: the
 * time to stop and the time from exec to ready, in seconds. 0 or -1. */
int sys_restart(sysrun_t *r, double *stop_s, double *ready_s, char *err, size_t cap);
/* Checks the system wrote what it had to (beanstalkd's binlog, Redis's
 * AOF) when it is durable: 0, or -1 with err. Call after a workload. */
int sys_check_written(sysrun_t *r, char *err, size_t cap);
/* Server RSS and data dir disk use in bytes (0 when external). */
uint64_t sys_rss(sysrun_t *r);
uint64_t sys_disk(sysrun_t *r);
/* CPU seconds the server process has used (-1 when external or unknown),
 * and its pid (changes at a restart). */
double sys_cpu_seconds(sysrun_t *r);
int sys_pid(const sysrun_t *r);
/* Stops the server and removes its temp dir (kept when keep is set).
 * Returns the server's exit status (0 clean), or -1 if it was not running. */
int sys_stop(sysrun_t *r, int keep);

#endif
