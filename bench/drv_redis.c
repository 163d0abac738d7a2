/* drv_redis.c - the benchmark driver for Redis 7 streams with consumer
 * groups, over hiredis's pipelined API (redisAppendCommandArgv /
 * redisGetReply).
 *
 * A queue is a stream with one consumer group "g": send is XADD, receive is
 * XREADGROUP ... COUNT max [BLOCK ms] STREAMS q >, delete is XACK followed
 * by XDEL (the message leaves the group's pending list and the stream, as a
 * delete does in Gearbox). A send of n messages is n pipelined XADDs (Redis
 * has no multi-entry XADD). A topic is one stream with a consumer group per
 * subscribed queue, Redis's own fan-out: a publish is one XADD, and a
 * subscribed queue's delete is XACK only, since the entry is shared with the
 * other groups.
 */
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

/* Logical requests outstanding per connection (a ring). */
#define OPS_CAP 1024u
/* Messages one receive may return; workloads ask for at most 100. */
#define RECV_MAX 100u
/* Arguments of the longest command: XACK/XDEL key group + 100 ids. */
#define ARGV_MAX (RECV_MAX + 4)

typedef struct op {
  int kind;
  uint64_t tag;
  size_t n;         /* messages sent or deleted */
  size_t remaining; /* replies still to read */
} op_t;

struct drv_conn {
  redisContext *rc;
  char consumer[32];
  op_t ops[OPS_CAP];
  size_t ops_head, ops_len;
  drv_msg_t msgs[RECV_MAX];
  char err[256];
};

static atomic_uint consumer_seq;

static int fail(drv_conn_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(drv_conn_t *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err, sizeof(d->err), fmt, ap);
  va_end(ap);
  return -1;
}

static const char *stream_of(const drv_queue_t *q) {
  return q->sub_of ? q->sub_of : q->name;
}

static const char *group_of(const drv_queue_t *q) {
  return q->sub_of ? q->name : "g";
}

static drv_conn_t *r_connect(const endpoint_t *ep, char *err, size_t errcap) {
  drv_conn_t *d = calloc(1, sizeof(*d));
  if (!d) {
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  d->rc = redisConnect(ep->host, ep->port);
  if (!d->rc || d->rc->err) {
    snprintf(err, errcap, "connect %s:%u: %s", ep->host, ep->port,
             d->rc ? d->rc->errstr : "out of memory");
    if (d->rc)
      redisFree(d->rc);
    free(d);
    return NULL;
  }
  snprintf(d->consumer, sizeof(d->consumer), "c%u", atomic_fetch_add(&consumer_seq, 1));
  return d;
}

static void r_close(drv_conn_t *d) {
  if (!d)
    return;
  redisFree(d->rc);
  free(d);
}

/* Appends one command; it belongs to the newest op. */
static int append(drv_conn_t *d, int argc, const char **argv, const size_t *lens) {
  if (redisAppendCommandArgv(d->rc, argc, argv, lens) != REDIS_OK)
    return fail(d, "append: %s", d->rc->errstr);
  d->ops[(d->ops_head + d->ops_len - 1) % OPS_CAP].remaining++;
  return 0;
}

static int op_begin(drv_conn_t *d, int kind, uint64_t tag, size_t n) {
  if (d->ops_len == OPS_CAP)
    return fail(d, "too many requests outstanding");
  d->ops[(d->ops_head + d->ops_len++) % OPS_CAP] = (op_t){kind, tag, n, 0};
  return 0;
}

/* Runs one command and checks its reply is not an error (BUSYGROUP: the
 * group exists already, fine for an idempotent create). */
static int run(drv_conn_t *d, int argc, const char **argv) {
  redisReply *r = redisCommandArgv(d->rc, argc, argv, NULL);
  if (!r)
    return fail(d, "%s: %s", argv[0], d->rc->errstr);
  int bad = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0;
  if (bad)
    fail(d, "%s: %s", argv[0], r->str);
  freeReplyObject(r);
  return bad ? -1 : 0;
}

static int create_group(drv_conn_t *d, const char *stream, const char *group) {
  const char *argv[] = {"XGROUP", "CREATE", stream, group, "$", "MKSTREAM"};
  return run(d, 6, argv);
}

static int r_create_queue(drv_conn_t *d, const char *name) {
  return create_group(d, name, "g");
}

static int r_create_fanout(drv_conn_t *d, const drv_topic_t *t) {
  for (size_t i = 0; i < t->nq; i++)
    if (create_group(d, t->name, t->queues[i]))
      return -1;
  return 0;
}

static int xadd(drv_conn_t *d, const char *stream, const uint8_t *body, size_t len) {
  const char *argv[] = {"XADD", stream, "*", "b", (const char *)body};
  size_t lens[] = {4, strlen(stream), 1, 1, len};
  return append(d, 5, argv, lens);
}

static int r_submit_send(drv_conn_t *d, const drv_queue_t *q, uint8_t *const *bodies, size_t len,
                         size_t n, uint64_t tag) {
  if (op_begin(d, DRV_SENT, tag, n))
    return -1;
  for (size_t i = 0; i < n; i++)
    if (xadd(d, stream_of(q), bodies[i], len))
      return -1;
  return 0;
}

static int r_submit_publish(drv_conn_t *d, const drv_topic_t *t, uint8_t *const *bodies, size_t len,
                            size_t n, uint64_t tag) {
  if (op_begin(d, DRV_SENT, tag, n))
    return -1;
  for (size_t i = 0; i < n; i++)
    if (xadd(d, t->name, bodies[i], len))
      return -1;
  return 0;
}

static int r_submit_receive(drv_conn_t *d, const drv_queue_t *q, size_t max, unsigned wait_ms,
                            uint64_t tag) {
  char count[24], block[24];
  const char *argv[12];
  int argc = 0;
  if (max == 0)
    max = 1;
  if (max > RECV_MAX)
    max = RECV_MAX;
  snprintf(count, sizeof(count), "%zu", max);
  snprintf(block, sizeof(block), "%u", wait_ms);
  argv[argc++] = "XREADGROUP";
  argv[argc++] = "GROUP";
  argv[argc++] = group_of(q);
  argv[argc++] = d->consumer;
  argv[argc++] = "COUNT";
  argv[argc++] = count;
  if (wait_ms) {
    argv[argc++] = "BLOCK";
    argv[argc++] = block;
  }
  argv[argc++] = "STREAMS";
  argv[argc++] = stream_of(q);
  argv[argc++] = ">";
  if (op_begin(d, DRV_RECEIVED, tag, 0))
    return -1;
  return append(d, argc, argv, NULL);
}

static int r_submit_delete(drv_conn_t *d, const drv_queue_t *q, const drv_msg_t *msgs, size_t n,
                           uint64_t tag) {
  const char *argv[ARGV_MAX];
  if (n == 0 || n > RECV_MAX)
    return fail(d, "delete of %zu messages", n);
  if (op_begin(d, DRV_DELETED, tag, n))
    return -1;
  argv[0] = "XACK";
  argv[1] = stream_of(q);
  argv[2] = group_of(q);
  for (size_t i = 0; i < n; i++)
    argv[3 + i] = msgs[i].handle;
  if (append(d, (int)(3 + n), argv, NULL))
    return -1;
  if (q->sub_of)
    return 0; /* the entry is shared with the topic's other groups */
  argv[0] = "XDEL";
  argv[1] = stream_of(q);
  for (size_t i = 0; i < n; i++)
    argv[2 + i] = msgs[i].handle;
  return append(d, (int)(2 + n), argv, NULL);
}

/* Copies the entries of an XREADGROUP reply: nil, or
 * [[stream, [[id, [field, value, ...]], ...]]]. Returns their number or -1. */
static long take_entries(drv_conn_t *d, const redisReply *r) {
  if (r->type == REDIS_REPLY_NIL)
    return 0;
  if (r->type != REDIS_REPLY_ARRAY)
    return fail(d, "XREADGROUP: unexpected reply type %d", r->type);
  if (r->elements == 0)
    return 0;
  const redisReply *s = r->element[0];
  if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || s->element[1]->type != REDIS_REPLY_ARRAY)
    return fail(d, "XREADGROUP: malformed reply");
  const redisReply *ents = s->element[1];
  if (ents->elements > RECV_MAX)
    return fail(d, "XREADGROUP: %zu entries", ents->elements);
  for (size_t i = 0; i < ents->elements; i++) {
    const redisReply *e = ents->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
        e->element[1]->elements != 2 || e->element[0]->len >= DRV_HANDLE_MAX)
      return fail(d, "XREADGROUP: malformed entry");
    const redisReply *body = e->element[1]->element[1];
    drv_msg_t *m = &d->msgs[i];
    memcpy(m->handle, e->element[0]->str, e->element[0]->len);
    m->handle[e->element[0]->len] = 0;
    memset(m->head, 0, sizeof(m->head));
    memcpy(m->head, body->str, body->len < DRV_HEAD ? body->len : DRV_HEAD);
    m->len = body->len;
  }
  return (long)ents->elements;
}

static int r_collect(drv_conn_t *d, drv_done_t *out) {
  if (!d->ops_len)
    return fail(d, "collect with nothing outstanding");
  op_t *op = &d->ops[d->ops_head];
  long got = 0;
  while (op->remaining) {
    redisReply *r = NULL;
    if (redisGetReply(d->rc, (void **)&r) != REDIS_OK || !r)
      return fail(d, "read: %s", d->rc->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
      fail(d, "reply: %s", r->str);
      freeReplyObject(r);
      return -1;
    }
    if (op->kind == DRV_RECEIVED)
      got = take_entries(d, r);
    freeReplyObject(r);
    if (got < 0)
      return -1;
    op->remaining--;
  }
  *out = (drv_done_t){op->kind, op->tag, op->n, NULL};
  if (op->kind == DRV_RECEIVED) {
    out->n = (size_t)got;
    out->msgs = d->msgs;
  }
  d->ops_head = (d->ops_head + 1) % OPS_CAP;
  d->ops_len--;
  return 0;
}

static const char *r_errmsg(const drv_conn_t *d) {
  return d->err;
}

const driver_t drv_redis = {
    .name = "redis",
    .max_batch = RECV_MAX,
    .connect = r_connect,
    .close = r_close,
    .create_queue = r_create_queue,
    .create_fanout = r_create_fanout,
    .fanout_missing = NULL,
    .submit_send = r_submit_send,
    .submit_publish = r_submit_publish,
    .submit_receive = r_submit_receive,
    .submit_delete = r_submit_delete,
    .server_stats = NULL,
    .collect = r_collect,
    .errmsg = r_errmsg,
};
