/* probe.c - the floor probes (see probe.h). */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "hist.h"
#include "net.h"

/* The record size of both probes: a message of the benchmark's default
 * body size. */
#define PROBE_RECORD 256u

/* The prewritten file's size: more records than a probe writes at the
 * disk's speed in a few seconds, so the records rarely wrap. */
#define PREWRITE_BYTES (64u * 1024u * 1024u)

/* Fills fd with PREWRITE_BYTES of zeros and syncs it. */
static int prewrite(int fd, char *err, size_t cap) {
  static const char zeros[65536];
  for (size_t done = 0; done < PREWRITE_BYTES; done += sizeof(zeros)) {
    if (write(fd, zeros, sizeof(zeros)) != (ssize_t)sizeof(zeros)) {
      snprintf(err, cap, "prewrite: %s", strerror(errno));
      return -1;
    }
  }
  if (fsync(fd) != 0) {
    snprintf(err, cap, "fsync: %s", strerror(errno));
    return -1;
  }
  return 0;
}

static void finish(const hist_t *h, uint64_t elapsed, probe_result_t *out) {
  out->per_s = elapsed ? (double)h->count * NS_PER_S / (double)elapsed : 0;
  out->p50_us = (double)hist_quantile(h, 0.5) / NS_PER_US;
  out->p99_us = (double)hist_quantile(h, 0.99) / NS_PER_US;
}

int probe_fsync(const char *dir, double secs, int prewritten, probe_result_t *out, char *err,
                size_t cap) {
  char path[4096], rec[PROBE_RECORD];
  off_t off = 0;
  int rc = -1, fd = -1;
  hist_t *h = malloc(sizeof(*h));
  if (!h) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  hist_init(h);
  memset(rec, 'x', sizeof(rec));
  snprintf(path, sizeof(path), "%s/fsync-probe-%d", dir, (int)getpid());
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (prewritten ? 0 : O_APPEND) | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(err, cap, "open %s: %s", path, strerror(errno));
    goto fail;
  }
  if (prewritten && prewrite(fd, err, cap))
    goto fail;
  uint64_t t0 = clock_ns(), end = t0 + (uint64_t)(secs * NS_PER_S), t = t0;
  while (t < end) {
    uint64_t a = clock_ns();
    if (prewritten && off + (off_t)sizeof(rec) > PREWRITE_BYTES)
      off = 0;
    ssize_t w = prewritten ? pwrite(fd, rec, sizeof(rec), off) : write(fd, rec, sizeof(rec));
    off += (off_t)sizeof(rec);
    if (w != (ssize_t)sizeof(rec) || fdatasync(fd) != 0) {
      snprintf(err, cap, "write+fdatasync %s: %s", path, strerror(errno));
      goto fail;
    }
    t = clock_ns();
    hist_record(h, t - a);
  }
  finish(h, t - t0, out);
  rc = 0;
fail:
  if (fd >= 0) {
    close(fd);
    unlink(path);
  }
  free(h);
  return rc;
}

/* Reads exactly n bytes; 0 or -1. */
static int read_full(int fd, char *p, size_t n) {
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) {
      if (r < 0 && errno == EINTR)
        continue;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Echoes PROBE_RECORD-byte messages until the peer closes. */
static void *echo_main(void *arg) {
  int lfd = *(int *)arg, one = 1;
  char buf[PROBE_RECORD];
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0)
    return NULL;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  while (read_full(fd, buf, sizeof(buf)) == 0 && write_full(fd, buf, sizeof(buf)) == 0) {
  }
  close(fd);
  return NULL;
}

int probe_loopback(double secs, probe_result_t *out, char *err, size_t cap) {
  uint16_t port;
  char buf[PROBE_RECORD];
  pthread_t th;
  int rc = -1, fd = -1;
  hist_t *h = malloc(sizeof(*h));
  int lfd = net_listen_loopback(&port);
  if (!h || lfd < 0) {
    snprintf(err, cap, "loopback probe setup failed");
    free(h);
    if (lfd >= 0)
      close(lfd);
    return -1;
  }
  hist_init(h);
  memset(buf, 'y', sizeof(buf));
  if (pthread_create(&th, NULL, echo_main, &lfd) != 0) {
    snprintf(err, cap, "pthread_create failed");
    close(lfd);
    free(h);
    return -1;
  }
  fd = net_connect("127.0.0.1", port, 0, err, cap);
  if (fd < 0) {
    shutdown(lfd, SHUT_RDWR); /* wakes the accept */
    goto join;
  }
  uint64_t t0 = clock_ns(), end = t0 + (uint64_t)(secs * NS_PER_S), t = t0;
  while (t < end) {
    uint64_t a = clock_ns();
    if (write_full(fd, buf, sizeof(buf)) || read_full(fd, buf, sizeof(buf))) {
      snprintf(err, cap, "loopback round trip: %s", strerror(errno));
      goto join;
    }
    t = clock_ns();
    hist_record(h, t - a);
  }
  finish(h, t - t0, out);
  rc = 0;
join:
  if (fd >= 0)
    close(fd);
  pthread_join(th, NULL);
  close(lfd);
  free(h);
  return rc;
}
