/* drv_beanstalk.c - the benchmark driver for beanstalkd, a small client of
 * its text protocol (beanstalkd doc/protocol.txt): put, reserve-with-timeout,
 * delete, use, watch, ignore.
 *
 * beanstalkd answers the commands of one connection in order, so every
 * command written appends the reply it expects to a FIFO, and a logical
 * request completes when its last reply has been read. It has no batch
 * operations: a send of n messages is n pipelined puts; a receive of up to
 * max is one reserve-with-timeout (which waits) followed by max-1 with
 * timeout 0 (which return a job or TIMED_OUT at once); a delete of n is n
 * deletes. A queue is a tube. It has no fan-out either: a publish to a topic
 * is one put per subscribed tube, which is what a beanstalkd user does.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "net.h"

/* Logical requests outstanding per connection (a ring). */
#define OPS_CAP 1024u
/* Replies expected: a publish to 10 tubes of a 64-deep window is 64 * 20
 * commands (use + put per tube). */
#define EXPECT_CAP 8192u
/* Messages one receive may gather; workloads ask for at most 100. */
#define RECV_MAX 100u
/* Tube names: beanstalkd allows 200 bytes. */
#define TUBE_MAX 200u
/* Time-to-run of a reserved job, beanstalkd's visibility timeout: as long
 * as Gearbox's bench queues (drv_gearbox.c BENCH_VIS_S). */
#define BENCH_TTR_S 300u
/* Read granularity. */
#define READ_CHUNK 65536u

enum { EX_USE, EX_WATCH, EX_IGNORE, EX_PUT, EX_RESERVE, EX_DELETE };

typedef struct op {
  int kind;
  uint64_t tag;
  size_t n;         /* messages (sent, deleted) */
  size_t remaining; /* replies still to read */
} op_t;

typedef struct buf {
  char *p;
  size_t len, off, cap;
} buf_t;

struct drv_conn {
  int fd;
  buf_t out, in;
  char used[TUBE_MAX + 1];    /* tube `use`d by the connection */
  char watched[TUBE_MAX + 1]; /* the one tube watched ("" = default) */
  op_t ops[OPS_CAP];
  size_t ops_head, ops_len;
  unsigned char expect[EXPECT_CAP];
  size_t ex_head, ex_len;
  drv_msg_t msgs[RECV_MAX];
  size_t nmsgs;
  char err[256];
};

static int fail(drv_conn_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(drv_conn_t *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err, sizeof(d->err), fmt, ap);
  va_end(ap);
  return -1;
}

static int buf_reserve(buf_t *b, size_t more) {
  if (b->off && b->off == b->len)
    b->off = b->len = 0;
  if (b->len + more <= b->cap)
    return 0;
  if (b->off) { /* compact before growing */
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->len + more <= b->cap)
      return 0;
  }
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p)
    return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

static int put_bytes(drv_conn_t *d, const void *s, size_t n) {
  if (buf_reserve(&d->out, n))
    return fail(d, "%s", "out of memory");
  memcpy(d->out.p + d->out.len, s, n);
  d->out.len += n;
  return 0;
}

/* Appends one command line and the reply it expects. */
static int command(drv_conn_t *d, int expect, const char *line) {
  if (d->ex_len == EXPECT_CAP)
    return fail(d, "%s", "too many commands outstanding");
  if (put_bytes(d, line, strlen(line)))
    return -1;
  d->expect[(d->ex_head + d->ex_len++) % EXPECT_CAP] = (unsigned char)expect;
  if (d->ops_len)
    d->ops[(d->ops_head + d->ops_len - 1) % OPS_CAP].remaining++;
  return 0;
}

static int op_begin(drv_conn_t *d, int kind, uint64_t tag, size_t n) {
  if (d->ops_len == OPS_CAP)
    return fail(d, "%s", "too many requests outstanding");
  d->ops[(d->ops_head + d->ops_len++) % OPS_CAP] = (op_t){kind, tag, n, 0};
  return 0;
}

static int check_tube(drv_conn_t *d, const char *name) {
  if (strlen(name) > TUBE_MAX)
    return fail(d, "tube name too long: %s", name);
  return 0;
}

/* Makes `name` the tube puts go to. */
static int use_tube(drv_conn_t *d, const char *name) {
  char line[TUBE_MAX + 16];
  if (!strcmp(d->used, name))
    return 0;
  if (check_tube(d, name))
    return -1;
  snprintf(line, sizeof(line), "use %s\r\n", name);
  if (command(d, EX_USE, line))
    return -1;
  snprintf(d->used, sizeof(d->used), "%s", name);
  return 0;
}

/* Makes `name` the only tube reserves take from. */
static int watch_tube(drv_conn_t *d, const char *name) {
  char line[TUBE_MAX + 16];
  if (!strcmp(d->watched, name))
    return 0;
  if (check_tube(d, name))
    return -1;
  snprintf(line, sizeof(line), "watch %s\r\n", name);
  if (command(d, EX_WATCH, line))
    return -1;
  snprintf(line, sizeof(line), "ignore %s\r\n", d->watched[0] ? d->watched : "default");
  if (command(d, EX_IGNORE, line))
    return -1;
  snprintf(d->watched, sizeof(d->watched), "%s", name);
  return 0;
}

static drv_conn_t *b_connect(const endpoint_t *ep, char *err, size_t errcap) {
  drv_conn_t *d = calloc(1, sizeof(*d));
  if (!d) {
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  d->fd = net_connect(ep->host, ep->port, 1, err, errcap);
  if (d->fd < 0) {
    free(d);
    return NULL;
  }
  snprintf(d->used, sizeof(d->used), "default");
  return d;
}

static void b_close(drv_conn_t *d) {
  if (!d)
    return;
  close(d->fd);
  free(d->out.p);
  free(d->in.p);
  free(d);
}

/* Writes and reads until `done` (checked after each read) or an error. */
static int pump(drv_conn_t *d, int want_read) {
  struct pollfd pfd = {d->fd, POLLIN, 0};
  if (d->out.len > d->out.off)
    pfd.events |= POLLOUT;
  else if (!want_read)
    return 0;
  if (poll(&pfd, 1, -1) < 0) {
    if (errno == EINTR)
      return 0;
    return fail(d, "poll: %s", strerror(errno));
  }
  if (pfd.revents & POLLOUT) {
    ssize_t w = write(d->fd, d->out.p + d->out.off, d->out.len - d->out.off);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return fail(d, "write: %s", strerror(errno));
    if (w > 0)
      d->out.off += (size_t)w;
  }
  if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
    if (buf_reserve(&d->in, READ_CHUNK))
      return fail(d, "%s", "out of memory");
    ssize_t r = read(d->fd, d->in.p + d->in.len, d->in.cap - d->in.len);
    if (r == 0)
      return fail(d, "%s", "beanstalkd closed the connection");
    if (r < 0 && errno != EAGAIN && errno != EINTR)
      return fail(d, "read: %s", strerror(errno));
    if (r > 0)
      d->in.len += (size_t)r;
  }
  return 0;
}

/* Parses one reply if a whole one is buffered: 1 parsed, 0 need more, -1. */
static int parse_reply(drv_conn_t *d) {
  char *s = d->in.p + d->in.off;
  size_t avail = d->in.len - d->in.off;
  char *nl = avail ? memmem(s, avail, "\r\n", 2) : NULL;
  if (!nl)
    return 0;
  size_t linelen = (size_t)(nl - s), used = linelen + 2;
  int ex = d->expect[d->ex_head];
  op_t *op = &d->ops[d->ops_head];
  char line[128];
  snprintf(line, sizeof(line), "%.*s", (int)(linelen < 127 ? linelen : 127), s);
  switch (ex) {
  case EX_USE:
    if (strncmp(line, "USING ", 6))
      return fail(d, "use: %s", line);
    break;
  case EX_WATCH:
  case EX_IGNORE:
    if (strncmp(line, "WATCHING ", 9))
      return fail(d, "watch/ignore: %s", line);
    break;
  case EX_PUT:
    if (strncmp(line, "INSERTED ", 9))
      return fail(d, "put: %s", line);
    break;
  case EX_DELETE:
    if (strcmp(line, "DELETED"))
      return fail(d, "delete: %s", line);
    break;
  case EX_RESERVE: {
    uint64_t id;
    size_t bytes;
    if (!strcmp(line, "TIMED_OUT"))
      break;
    if (sscanf(line, "RESERVED %" SCNu64 " %zu", &id, &bytes) != 2)
      return fail(d, "reserve: %s", line);
    if (avail < used + bytes + 2)
      return 0; /* the body is still coming */
    if (d->nmsgs == RECV_MAX)
      return fail(d, "%s", "too many jobs reserved at once");
    drv_msg_t *m = &d->msgs[d->nmsgs++];
    snprintf(m->handle, sizeof(m->handle), "%" PRIu64, id);
    memset(m->head, 0, sizeof(m->head));
    memcpy(m->head, nl + 2, bytes < DRV_HEAD ? bytes : DRV_HEAD);
    m->len = bytes;
    used += bytes + 2;
    break;
  }
  }
  d->in.off += used;
  d->ex_head = (d->ex_head + 1) % EXPECT_CAP;
  d->ex_len--;
  op->remaining--;
  return 1;
}

static int b_collect(drv_conn_t *d, drv_done_t *out) {
  if (!d->ops_len)
    return fail(d, "%s", "collect with nothing outstanding");
  op_t *op = &d->ops[d->ops_head];
  if (op->kind == DRV_RECEIVED && op->remaining)
    d->nmsgs = 0;
  while (op->remaining) {
    int r = parse_reply(d);
    if (r < 0)
      return -1;
    if (r == 0 && pump(d, 1))
      return -1;
  }
  *out = (drv_done_t){op->kind, op->tag, op->n, NULL};
  if (op->kind == DRV_RECEIVED) {
    out->n = d->nmsgs;
    out->msgs = d->msgs;
  }
  d->ops_head = (d->ops_head + 1) % OPS_CAP;
  d->ops_len--;
  /* Start writing what is queued behind, so the server works meanwhile. */
  while (d->out.len > d->out.off) {
    ssize_t w = write(d->fd, d->out.p + d->out.off, d->out.len - d->out.off);
    if (w <= 0)
      break;
    d->out.off += (size_t)w;
  }
  return 0;
}

/* Waits for a blocking setup command's replies. */
static int b_sync(drv_conn_t *d) {
  drv_done_t done;
  return b_collect(d, &done);
}

static int b_create_queue(drv_conn_t *d, const char *name) {
  /* Tubes exist while used or watched; nothing to create. Validate the name. */
  if (op_begin(d, DRV_SENT, 0, 0) || use_tube(d, name))
    return -1;
  if (d->ops[(d->ops_head + d->ops_len - 1) % OPS_CAP].remaining == 0) {
    d->ops_len--; /* nothing was sent */
    return 0;
  }
  return b_sync(d);
}

static int b_create_fanout(drv_conn_t *d, const drv_topic_t *t) {
  for (size_t i = 0; i < t->nq; i++)
    if (check_tube(d, t->queues[i]))
      return -1;
  return 0;
}

static int put_job(drv_conn_t *d, const uint8_t *body, size_t len) {
  char line[96];
  snprintf(line, sizeof(line), "put 0 0 %u %zu\r\n", BENCH_TTR_S, len);
  if (command(d, EX_PUT, line))
    return -1;
  if (put_bytes(d, body, len) || put_bytes(d, "\r\n", 2))
    return -1;
  return 0;
}

static int b_submit_send(drv_conn_t *d, const drv_queue_t *q, uint8_t *const *bodies, size_t len,
                         size_t n, uint64_t tag) {
  if (op_begin(d, DRV_SENT, tag, n) || use_tube(d, q->name))
    return -1;
  for (size_t i = 0; i < n; i++)
    if (put_job(d, bodies[i], len))
      return -1;
  return 0;
}

static int b_submit_publish(drv_conn_t *d, const drv_topic_t *t, uint8_t *const *bodies, size_t len,
                            size_t n, uint64_t tag) {
  if (op_begin(d, DRV_SENT, tag, n))
    return -1;
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < t->nq; k++)
      if (use_tube(d, t->queues[k]) || put_job(d, bodies[i], len))
        return -1;
  return 0;
}

static int b_submit_receive(drv_conn_t *d, const drv_queue_t *q, size_t max, unsigned wait_ms,
                            uint64_t tag) {
  char line[64];
  if (max == 0)
    max = 1;
  if (max > RECV_MAX)
    max = RECV_MAX;
  if (op_begin(d, DRV_RECEIVED, tag, 0) || watch_tube(d, q->name))
    return -1;
  snprintf(line, sizeof(line), "reserve-with-timeout %u\r\n", (wait_ms + 999) / 1000);
  if (command(d, EX_RESERVE, line))
    return -1;
  for (size_t i = 1; i < max; i++)
    if (command(d, EX_RESERVE, "reserve-with-timeout 0\r\n"))
      return -1;
  return 0;
}

static int b_submit_delete(drv_conn_t *d, const drv_queue_t *q, const drv_msg_t *msgs, size_t n,
                           uint64_t tag) {
  char line[DRV_HANDLE_MAX + 16];
  if (op_begin(d, DRV_DELETED, tag, n))
    return -1;
  for (size_t i = 0; i < n; i++) {
    snprintf(line, sizeof(line), "delete %s\r\n", msgs[i].handle);
    if (command(d, EX_DELETE, line))
      return -1;
  }
  return 0;
}

static const char *b_errmsg(const drv_conn_t *d) {
  return d->err;
}

const driver_t drv_beanstalk = {
    .name = "beanstalkd",
    .max_batch = RECV_MAX,
    .connect = b_connect,
    .close = b_close,
    .create_queue = b_create_queue,
    .create_fanout = b_create_fanout,
    .fanout_missing = NULL,
    .submit_send = b_submit_send,
    .submit_publish = b_submit_publish,
    .submit_receive = b_submit_receive,
    .submit_delete = b_submit_delete,
    .server_stats = NULL,
    .collect = b_collect,
    .errmsg = b_errmsg,
};
