/* scen_fds.c - running out of file descriptors: gearboxd started with a low
 * RLIMIT_NOFILE, clients connect until it cannot take another. It must keep
 * serving the connections it has, not crash, not spin (its CPU time over two
 * idle seconds stays small), say so in its log, keep its store writable (a
 * send still succeeds, so RocksDB still gets descriptors), and accept again
 * once connections close. The HTTP face draws from the same budget: once the
 * binary connections have taken it, an HTTP connection is refused too (and
 * the log says so), and it is served again once connections close. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gbx_codec.h"
#include "gearbox.h"
#include "run.h"

/* gearboxd's descriptor limit: RocksDB, libuv and the log need a few dozen;
 * the rest are connections. */
#define FD_LIMIT 128
/* Connections tried at most: far more than FD_LIMIT allows. */
#define MAX_TRIES (FD_LIMIT * 3)
/* How long one ping may take: a served connection answers in
 * milliseconds, a refused one is closed at once. */
#define PING_MS 3000
/* CPU time gearboxd may use over IDLE_MS of idleness with every descriptor
 * taken: a spinning accept loop burns all of it. */
#define IDLE_MS         2000
#define IDLE_CPU_MAX_MS 400
/* Connections closed to make room again. */
#define FREED 16

/* Sends a ping and reads its reply: 1 answered with err 0, 0 not answered
 * (closed, reset or timed out), -1 a wrong answer. */
static int ping(int fd, uint32_t id) {
  uint8_t req[16] = {0, 0, 0, 0, 0x82, 0xa2, 'o', 'p', 0x01, 0xa2, 'i', 'd', 0xce};
  req[13] = (uint8_t)(id >> 24);
  req[14] = (uint8_t)(id >> 16);
  req[15] = (uint8_t)(id >> 8);
  uint8_t full[17];
  memcpy(full, req, 16);
  full[16] = (uint8_t)id;
  full[3] = 13; /* payload bytes */
  if (send(fd, full, sizeof full, MSG_NOSIGNAL) != (ssize_t)sizeof full)
    return 0;
  uint8_t buf[512];
  size_t have = 0;
  uint32_t len = 0;
  int64_t deadline = srv_now_us() + (int64_t)PING_MS * 1000;
  for (;;) {
    if (have >= GBX_FRAME_HDR && gbx_frame_peek(buf, have, &len) == 1 &&
        have >= GBX_FRAME_HDR + (size_t)len)
      break;
    int left = (int)((deadline - srv_now_us()) / 1000);
    if (left <= 0)
      return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, left) <= 0)
      continue;
    ssize_t got = recv(fd, buf + have, sizeof buf - have, 0);
    if (got <= 0)
      return 0;
    have += (size_t)got;
    if (have == sizeof buf)
      return -1;
  }
  gbx_doc_t d;
  gbx_errbuf_t eb;
  uint64_t rid = 0, err = 1;
  if (gbx_doc_parse(&d, buf + GBX_FRAME_HDR, len, &eb) != GBX_E_OK)
    return -1;
  int ok = gbx_get_u64(&d.root, "id", 1, 0, UINT64_MAX, &rid, NULL, &eb) == GBX_E_OK &&
           gbx_get_u64(&d.root, "err", 1, 0, UINT64_MAX, &err, NULL, &eb) == GBX_E_OK &&
           rid == id && err == 0;
  gbx_doc_free(&d);
  return ok ? 1 : -1;
}

/* One HTTP request on a fresh connection to the HTTP face: 1 answered
 * (any status), 0 not answered (refused: closed or reset without a reply,
 * or timed out), -1 not even connected. */
static int http_answers(uint16_t port) {
  static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  int fd = srv_connect_port(port);
  if (fd < 0)
    return -1;
  char buf[16];
  size_t have = 0;
  int64_t deadline = srv_now_us() + (int64_t)PING_MS * 1000;
  int answered = 0;
  if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1)) {
    while (have < 9) {
      int left = (int)((deadline - srv_now_us()) / 1000);
      if (left <= 0)
        break;
      struct pollfd p = {.fd = fd, .events = POLLIN};
      if (poll(&p, 1, left) <= 0)
        continue;
      ssize_t got = recv(fd, buf + have, sizeof buf - have, 0);
      if (got <= 0)
        break;
      have += (size_t)got;
    }
    answered = have >= 9 && memcmp(buf, "HTTP/1.", 7) == 0;
  }
  close(fd);
  return answered;
}

/* utime + stime of pid in milliseconds, or -1. */
static long cpu_ms(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')');
  unsigned long ut, st;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -1;
  return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

/* 1 if the log of this run mentions the descriptor shortage. */
static int log_mentions(const run_t *r, const char *what) {
  FILE *f = fopen(r->log, "re");
  char line[2048];
  int found = 0;
  if (!f)
    return 0;
  while (!found && fgets(line, sizeof line, f))
    found = strstr(line, what) != NULL;
  fclose(f);
  return found;
}

/* A send and a receive through libgearbox on a fresh connection: the
 * server took it and the store still writes. */
static int send_receive(uint16_t port, char *err, size_t cap) {
  gbx_error_t e;
  gbx_client_t *c = NULL;
  gbx_message_t *m = NULL;
  size_t n = 0;
  char mid[GBX_MID_BUFSZ];
  int rc = -1, created;
  memset(&e, 0, sizeof e);
  if (!(c = gbx_connect("127.0.0.1", port, &e)))
    goto fail;
  gbx_set_timeout(c, PING_MS);
  if (gbx_queue_create(c, "fds", NULL, NULL, 0, &created, &e) != GBX_E_OK ||
      gbx_queue_send(c, "fds", "x", 1, NULL, 0, 0, mid, &e) != GBX_E_OK ||
      gbx_queue_receive(c, "fds", 1, 30, 0, &m, &n, &e) != GBX_E_OK || n != 1) {
    snprintf(err, cap, "%s", n == 1 || e.message[0] ? e.message : "nothing received");
    goto fail;
  }
  rc = gbx_message_delete(c, "fds", m[0].receipt, &e) == GBX_E_OK ? 0 : -1;
  if (rc)
    snprintf(err, cap, "%s", e.message);
fail:
  gbx_messages_free(m);
  gbx_close(c);
  return rc;
}

int scen_fds(run_t *r) {
  int res = RUN_ERROR;
  srv_t *s = NULL;
  srv_cfg_t cfg;
  int fds[MAX_TRIES];
  int nfd = 0;
  char err[512];
  struct rlimit old, low;
  run_srv_cfg(r, &cfg);
  if (!(s = srv_new(&cfg)))
    goto done;
  /* the child inherits the soft limit; ours goes back at once */
  if (getrlimit(RLIMIT_NOFILE, &old) != 0)
    goto done;
  low = old;
  low.rlim_cur = FD_LIMIT;
  if (setrlimit(RLIMIT_NOFILE, &low) != 0)
    goto done;
  int st = srv_start(s);
  setrlimit(RLIMIT_NOFILE, &old);
  if (st != 0) {
    run_log(r, "error: gearboxd did not start with %d descriptors: %s", FD_LIMIT, srv_error(s));
    goto done;
  }
  uint16_t port = srv_port_now(s), http = srv_http_port_now(s);
  pid_t pid = srv_pid(s);
  if (send_receive(port, err, sizeof err) != 0) {
    run_log(r, "error: the first send/receive failed: %s", err);
    goto done;
  }
  if (!http)
    run_log(r, "gearboxd has no HTTP face: its checks are skipped");
  else if (http_answers(http) != 1) {
    run_log(r, "error: the HTTP face (port %u) does not answer before the limit", http);
    goto done;
  }

  /* connect until one is not served */
  int refused = 0;
  while (nfd < MAX_TRIES) {
    int fd = srv_connect_port(port);
    if (fd < 0)
      break;
    int p = ping(fd, (uint32_t)nfd + 1);
    if (p < 0) {
      run_log(r, "connection %d: a wrong reply to ping", nfd + 1);
      run_found(r, "bad-reply", 1);
      close(fd);
      goto stop;
    }
    if (p == 0) {
      close(fd);
      refused = 1;
      break;
    }
    fds[nfd++] = fd;
  }
  if (!refused) {
    run_log(r, "error: %d connections served under a %d-descriptor limit", nfd, FD_LIMIT);
    run_found(r, "limit-not-reached", 1);
    res = RUN_VIOLATION;
    goto stop;
  }
  run_log(r, "%d connections served, the next one not", nfd);
  if (!srv_running(s)) {
    run_log(r, "gearboxd died at the limit: %s (log: %s)", srv_error(s), r->log);
    run_found(r, "server-died", 1);
    res = RUN_VIOLATION;
    goto stop;
  }

  /* a few more attempts while full: each must be turned away, not hang */
  for (int i = 0; i < 8; i++) {
    int fd = srv_connect_port(port);
    if (fd >= 0) {
      ping(fd, 999);
      close(fd);
    }
  }
  /* the established connections keep working */
  int bad = 0;
  for (int i = 0; i < nfd; i++)
    if (ping(fds[i], 100000u + (uint32_t)i) != 1)
      bad++;
  if (bad) {
    run_log(r, "%d of %d established connections stopped answering at the limit", bad, nfd);
    run_found(r, "established-lost", (uint64_t)bad);
  }
  /* no spinning while full and idle */
  long c0 = cpu_ms(pid);
  srv_sleep_ms(IDLE_MS);
  long c1 = cpu_ms(pid);
  if (c0 < 0 || c1 < 0) {
    run_log(r, "gearboxd is gone: %s", srv_error(s));
    run_found(r, "server-died", 1);
  } else {
    run_log(r, "%ld ms of CPU in %d ms idle at the limit", c1 - c0, IDLE_MS);
    if (c1 - c0 > IDLE_CPU_MAX_MS)
      run_found(r, "spinning", 1);
  }
  if (!log_mentions(r, "refusing connection")) {
    run_log(r, "the log (%s) does not mention running out of descriptors", r->log);
    run_found(r, "silent-refusal", 1);
  }
  /* the HTTP face shares the budget: with it spent, HTTP is refused too */
  if (http) {
    int a = http_answers(http);
    if (a != 0) {
      run_log(r, "an HTTP connection was %s with the descriptor budget spent by %d connections",
              a > 0 ? "served" : "not even connected", nfd);
      run_found(r, "http-over-cap", 1);
    } else if (!log_mentions(r, "refusing http connection")) {
      run_log(r, "the log (%s) does not mention the refused HTTP connection", r->log);
      run_found(r, "silent-refusal", 1);
    }
  }

  /* room again: a new connection is served and the store still writes */
  for (int i = 0; i < FREED && nfd > 0; i++)
    close(fds[--nfd]);
  int again = -1;
  for (int tries = 0; tries < 20 && again != 0; tries++) {
    again = send_receive(port, err, sizeof err);
    if (again != 0)
      srv_sleep_ms(250);
  }
  if (again != 0) {
    run_log(r, "after closing %d connections a new one is still not served: %s", FREED, err);
    run_found(r, "no-accept-after-close", 1);
  }
  if (http && http_answers(http) != 1) {
    run_log(r, "after closing %d connections an HTTP request is still not answered", FREED);
    run_found(r, "no-accept-after-close", 1);
  }
  res = r->found[0] ? RUN_VIOLATION : RUN_PASS;
  while (nfd > 0)
    close(fds[--nfd]);
  if (run_stop_clean(r, s) != 0)
    res = RUN_VIOLATION;
stop:
  while (nfd > 0)
    close(fds[--nfd]);
  if (srv_running(s)) {
    int code;
    srv_stop(s, &code);
  }
  run_check_sanitizers(r, s);
done:
  srv_free(s);
  return res;
}
