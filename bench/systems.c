/* systems.c - starting, checking and stopping the brokers measured (see
 * systems.h). Each server runs on 127.0.0.1 with its data in a fresh
 * bench-tmp-XXXXXX dir on the disk being measured.
 *
 * Durability settings and how they are checked:
 *  - gearboxd --sync always|interval:MS|none; its ready line echoes the
 *    policy, which must match.
 *  - beanstalkd -b DIR -f 0 (fsync after every write, before the reply) or
 *    -f MS (at most once per MS); "none" runs without a binlog. After a
 *    workload its binlog must hold data.
 *  - redis-server --appendonly yes --appendfsync always|everysec, RDB
 *    snapshots off (save ""), or no persistence at all (the ceiling);
 *    CONFIG GET must report exactly that, and the AOF must hold data.
 */
#include "systems.h"

#include <dirent.h>
#ifdef GBX_BENCH_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fsutil.h"
#include "net.h"

/* A fresh server is up in milliseconds; a restart over millions of queued
 * messages replays them, which may take minutes on a slow disk. */
#define START_TIMEOUT_MS   30000
#define RESTART_TIMEOUT_MS 600000
/* A clean stop flushes memtables; allow it a minute before SIGKILL. */
#define STOP_TIMEOUT_MS 60000
/* A peer may lose the race for the free port we picked: try again. */
#define PORT_TRIES 5
/* beanstalkd's default job size limit. */
#define BEANSTALK_DEFAULT_MAX_JOB 65535u

int sys_define(sysdef_t *d, sys_kind_t kind, dur_t dur, unsigned interval_ms) {
  memset(d, 0, sizeof(*d));
  d->kind = kind;
  d->dur = dur;
  d->interval_ms = interval_ms;
  if (dur == DUR_ALWAYS)
    snprintf(d->durability, sizeof(d->durability), "always");
  else if (dur == DUR_INTERVAL)
    snprintf(d->durability, sizeof(d->durability), "interval:%u", interval_ms);
  else
    snprintf(d->durability, sizeof(d->durability), "none");
  switch (kind) {
  case SYS_GEARBOX:
    snprintf(d->label, sizeof(d->label), "gearbox %s", d->durability);
    return 0;
  case SYS_BEANSTALKD:
    if (dur == DUR_ALWAYS)
      snprintf(d->label, sizeof(d->label), "beanstalkd -f 0");
    else if (dur == DUR_INTERVAL)
      snprintf(d->label, sizeof(d->label), "beanstalkd -f %u", interval_ms);
    else
      snprintf(d->label, sizeof(d->label), "beanstalkd no binlog");
    return 0;
  case SYS_REDIS:
    /* Redis syncs its AOF either always or once a second: no other interval. */
    if (dur == DUR_INTERVAL && interval_ms != 1000)
      return -1;
    snprintf(d->label, sizeof(d->label), "redis %s",
             dur == DUR_ALWAYS     ? "always"
             : dur == DUR_INTERVAL ? "everysec"
                                   : "no persistence");
    return 0;
  }
  return -1;
}

static const char *binary_of(sys_kind_t kind, const sysenv_t *env) {
  return kind == SYS_GEARBOX      ? env->gearboxd
         : kind == SYS_BEANSTALKD ? "beanstalkd"
                                  : "redis-server";
}

int sys_available(sys_kind_t kind, const sysenv_t *env) {
#ifndef GBX_BENCH_HAVE_HIREDIS
  if (kind == SYS_REDIS)
    return 0; /* built without hiredis: no Redis client */
#endif
  const char *bin = binary_of(kind, env);
  if (strchr(bin, '/'))
    return access(bin, X_OK) == 0;
  const char *path = getenv("PATH");
  char buf[4096];
  if (!path)
    return 0;
  while (*path) {
    size_t n = strcspn(path, ":");
    snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, bin);
    if (access(buf, X_OK) == 0)
      return 1;
    path += n + (path[n] == ':');
  }
  return 0;
}

void sys_version(sys_kind_t kind, const sysenv_t *env, char *out, size_t cap) {
  char cmd[1200];
  snprintf(out, cap, "?");
  if (kind == SYS_GEARBOX) {
    snprintf(out, cap, "gearboxd %s", env->server ? env->server : env->gearboxd);
    return;
  }
  snprintf(cmd, sizeof(cmd), "%s %s 2>&1", binary_of(kind, env),
           kind == SYS_BEANSTALKD ? "-v" : "--version");
  FILE *f = popen(cmd, "r");
  if (!f)
    return;
  if (fgets(out, (int)cap, f))
    out[strcspn(out, "\n")] = 0;
  pclose(f);
}

#ifdef GBX_BENCH_HAVE_HIREDIS
/* Connects with hiredis for setup checks. */
static redisContext *redis_open(const sysrun_t *r, char *err, size_t cap) {
  redisContext *c = redisConnect(r->ep.host, r->ep.port);
  if (!c || c->err) {
    snprintf(err, cap, "redis connect: %s", c ? c->errstr : "out of memory");
    if (c)
      redisFree(c);
    return NULL;
  }
  return c;
}

/* CONFIG GET name must equal want. */
static int redis_expect(redisContext *c, const char *name, const char *want, char *err,
                        size_t cap) {
  redisReply *rep = redisCommand(c, "CONFIG GET %s", name);
  int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
           rep->element[1]->type == REDIS_REPLY_STRING && !strcmp(rep->element[1]->str, want);
  if (!ok)
    snprintf(err, cap, "redis %s is '%s', not '%s'", name,
             rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 ? rep->element[1]->str
                                                                         : "?",
             want);
  if (rep)
    freeReplyObject(rep);
  return ok ? 0 : -1;
}

/* Waits until Redis answers PING with PONG (it answers LOADING while it
 * reads its AOF), then checks its persistence settings. */
static int redis_ready(sysrun_t *r, int timeout_ms, char *err, size_t cap) {
  uint64_t deadline = clock_ns() + (uint64_t)timeout_ms * NS_PER_MS;
  for (;;) {
    redisContext *c = redis_open(r, err, cap);
    if (c) {
      redisReply *rep = redisCommand(c, "PING");
      int pong = rep && rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "PONG");
      if (rep)
        freeReplyObject(rep);
      if (pong) {
        const sysdef_t *d = r->def;
        int bad = redis_expect(c, "save", "", err, cap) ||
                  redis_expect(c, "appendonly", d->dur == DUR_NONE ? "no" : "yes", err, cap) ||
                  (d->dur != DUR_NONE &&
                   redis_expect(c, "appendfsync", d->dur == DUR_ALWAYS ? "always" : "everysec", err,
                                cap));
        redisFree(c);
        return bad ? -1 : 0;
      }
      redisFree(c);
    }
    if (!proc_alive(&r->proc) || clock_ns() >= deadline) {
      char why[200];
      snprintf(why, sizeof(why), "redis-server did not answer PING");
      proc_log_tail(&r->proc, err, cap);
      snprintf(err + strlen(err), cap - strlen(err), "\n%s", why);
      return -1;
    }
    usleep(10000);
  }
}

#else
static int redis_ready(sysrun_t *r, int timeout_ms, char *err, size_t cap) {
  snprintf(err, cap, "gearbox-bench was built without hiredis");
  return -1;
}
#endif

/* Builds argv for the server into args (strings in store). */
static void build_argv(sysrun_t *r, char *store, size_t cap, char **args, size_t maxargs) {
  const sysdef_t *d = r->def;
  size_t used = 0, n = 0;
#define ARG(...)                                                                                   \
  do {                                                                                             \
    int len_ = snprintf(store + used, cap - used, __VA_ARGS__);                                    \
    if (len_ < 0 || (size_t)len_ >= cap - used || n + 1 >= maxargs)                                \
      break;                                                                                       \
    args[n++] = store + used;                                                                      \
    used += (size_t)len_ + 1;                                                                      \
  } while (0)
  switch (d->kind) {
  case SYS_GEARBOX:
    ARG("%s", r->env->gearboxd);
    ARG("--listen");
    ARG("127.0.0.1:0");
    ARG("--data");
    ARG("%s", r->data);
    ARG("--sync");
    ARG("%s", d->durability);
    break;
  case SYS_BEANSTALKD: {
    size_t z =
        r->env->max_body > BEANSTALK_DEFAULT_MAX_JOB ? r->env->max_body : BEANSTALK_DEFAULT_MAX_JOB;
    ARG("beanstalkd");
    ARG("-l");
    ARG("127.0.0.1");
    ARG("-p");
    ARG("%u", r->ep.port);
    ARG("-z");
    ARG("%zu", z);
    if (d->dur != DUR_NONE) {
      ARG("-b");
      ARG("%s", r->data);
      ARG("-f");
      ARG("%u", d->dur == DUR_ALWAYS ? 0 : d->interval_ms);
    }
    break;
  }
  case SYS_REDIS:
    ARG("redis-server");
    ARG("--port");
    ARG("%u", r->ep.port);
    ARG("--bind");
    ARG("127.0.0.1");
    ARG("--dir");
    ARG("%s", r->data);
    ARG("--logfile");
    ARG("%s/redis.log", r->dir);
    ARG("--daemonize");
    ARG("no");
    ARG("--protected-mode");
    ARG("no");
    ARG("--save");
    ARG("%s", "");
    ARG("--appendonly");
    ARG("%s", d->dur == DUR_NONE ? "no" : "yes");
    ARG("--appendfsync");
    ARG("%s", d->dur == DUR_ALWAYS ? "always" : "everysec");
    break;
  }
#undef ARG
  args[n] = NULL;
}

/* Starts the process on r->data and waits until it serves. */
static int launch(sysrun_t *r, int timeout_ms, char *err, size_t cap) {
  char store[8192], *args[40], log[1200], line[256];
  const sysdef_t *d = r->def;
  snprintf(log, sizeof(log), "%s/%s.log", r->dir,
           d->kind == SYS_GEARBOX      ? "gearboxd"
           : d->kind == SYS_BEANSTALKD ? "beanstalkd"
                                       : "redis-stdout");
  for (int attempt = 0; attempt < PORT_TRIES; attempt++) {
    if (d->kind != SYS_GEARBOX && !(r->ep.port = net_free_port())) {
      snprintf(err, cap, "no free port");
      return -1;
    }
    build_argv(r, store, sizeof(store), args, sizeof(args) / sizeof(args[0]));
    if (proc_spawn(&r->proc, args, log, err, cap))
      return -1;
    if (d->kind == SYS_GEARBOX) {
      unsigned port;
      char sync[32];
      if (proc_wait_line(&r->proc, "gearboxd ready ", line, sizeof(line), timeout_ms, err, cap))
        goto failed;
      const char *p = strstr(line, "port="), *s = strstr(line, "sync=");
      if (!p || sscanf(p, "port=%u", &port) != 1 || !port || port > 65535) {
        snprintf(err, cap, "bad ready line: %s", line);
        goto failed;
      }
      if (s && sscanf(s, "sync=%31s", sync) == 1 && strcmp(sync, d->durability) != 0) {
        snprintf(err, cap, "gearboxd runs with sync=%s, not %s", sync, d->durability);
        goto failed;
      }
      r->ep.port = (uint16_t)port;
      return 0;
    }
    if (d->kind == SYS_BEANSTALKD) {
      if (proc_wait_port(&r->proc, "127.0.0.1", r->ep.port, timeout_ms, err, cap) == 0)
        return 0;
    } else if (redis_ready(r, timeout_ms, err, cap) == 0) {
      return 0;
    }
  failed:
    proc_stop(&r->proc, STOP_TIMEOUT_MS);
    if (d->kind == SYS_GEARBOX)
      return -1;
    /* a lost port race shows as an early exit: try another port */
  }
  return -1;
}

int sys_start(sysrun_t *r, const sysdef_t *d, const sysenv_t *env, char *err, size_t cap) {
  memset(r, 0, sizeof(*r));
  r->def = d;
  r->env = env;
  r->drv = d->kind == SYS_GEARBOX ? &drv_gearbox : &drv_beanstalk;
#ifdef GBX_BENCH_HAVE_HIREDIS
  if (d->kind == SYS_REDIS)
    r->drv = &drv_redis;
#else
  if (d->kind == SYS_REDIS) {
    snprintf(err, cap, "gearbox-bench was built without hiredis");
    return -1;
  }
#endif
  snprintf(r->ep.host, sizeof(r->ep.host), "127.0.0.1");
  if (env->server) {
    const char *colon = strrchr(env->server, ':');
    unsigned port;
    if (d->kind != SYS_GEARBOX || !colon || (size_t)(colon - env->server) >= sizeof(r->ep.host) ||
        sscanf(colon + 1, "%u", &port) != 1 || !port || port > 65535) {
      snprintf(err, cap, "--server wants HOST:PORT of a gearboxd, not '%s'", env->server);
      return -1;
    }
    snprintf(r->ep.host, sizeof(r->ep.host), "%.*s", (int)(colon - env->server), env->server);
    r->ep.port = (uint16_t)port;
    r->external = 1;
    return 0;
  }
  if (fs_mkdtemp(env->base_dir, r->dir, sizeof(r->dir), err, cap))
    return -1;
  snprintf(r->data, sizeof(r->data), "%s/data", r->dir);
  if (mkdir(r->data, 0700) != 0) {
    snprintf(err, cap, "mkdir %s failed", r->data);
    goto fail;
  }
  if (launch(r, START_TIMEOUT_MS, err, cap))
    goto fail;
  return 0;
fail:
  fs_rmtree(r->dir);
  r->dir[0] = 0;
  return -1;
}

int sys_restart(sysrun_t *r, double *stop_s, double *ready_s, char *err, size_t cap) {
  if (r->external) {
    snprintf(err, cap, "cannot restart a server this run did not start");
    return -1;
  }
  uint64_t t0 = clock_ns();
  int st = proc_stop(&r->proc, STOP_TIMEOUT_MS);
  uint64_t t1 = clock_ns();
  if (st != 0) {
    snprintf(err, cap, "%s exited with status %d on SIGTERM", r->def->label, st);
    return -1;
  }
  if (launch(r, RESTART_TIMEOUT_MS, err, cap))
    return -1;
  uint64_t t2 = clock_ns();
  *stop_s = (double)(t1 - t0) / NS_PER_S;
  *ready_s = (double)(t2 - t1) / NS_PER_S;
  return 0;
}

/* Bytes of the regular files directly in or below dir whose name starts
 * with prefix ("" for all). */
static uint64_t files_bytes(const char *dir, const char *prefix) {
  uint64_t total = 0;
  DIR *dh = opendir(dir);
  struct dirent *e;
  if (!dh)
    return 0;
  while ((e = readdir(dh)) != NULL) {
    char path[2300];
    struct stat st;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (stat(path, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode))
      total += files_bytes(path, prefix);
    else if (!strncmp(e->d_name, prefix, strlen(prefix)))
      total += (uint64_t)st.st_size;
  }
  closedir(dh);
  return total;
}

int sys_check_written(sysrun_t *r, char *err, size_t cap) {
  const sysdef_t *d = r->def;
  if (r->external || d->dur == DUR_NONE || d->kind == SYS_GEARBOX)
    return 0;
  const char *what = d->kind == SYS_BEANSTALKD ? "binlog." : "";
  if (files_bytes(r->data, what) == 0) {
    snprintf(err, cap, "%s wrote no %s in %s: not durable as configured", d->label,
             d->kind == SYS_BEANSTALKD ? "binlog" : "append-only file", r->data);
    return -1;
  }
  return 0;
}

uint64_t sys_rss(sysrun_t *r) {
  return r->external ? 0 : proc_rss(&r->proc);
}

uint64_t sys_disk(sysrun_t *r) {
  return r->external ? 0 : fs_disk_bytes(r->data);
}

double sys_cpu_seconds(sysrun_t *r) {
  return r->external ? -1 : proc_cpu_seconds(&r->proc);
}

int sys_pid(const sysrun_t *r) {
  return r->external ? 0 : (int)r->proc.pid;
}

int sys_stop(sysrun_t *r, int keep) {
  int st = -1;
  if (r->external)
    return 0;
  st = proc_stop(&r->proc, STOP_TIMEOUT_MS);
  if (r->dir[0] && !keep)
    fs_rmtree(r->dir);
  r->dir[0] = 0;
  return st;
}
