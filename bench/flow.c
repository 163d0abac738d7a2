/* flow.c - the producer and consumer loops (see flow.h). */
#include "flow.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "progress.h"

/* Random bytes bodies are cut from: larger than any body (1 MiB, the
 * message size limit) so every offset gives a different body. */
#define POOL_BYTES (2u * 1024u * 1024u)
/* A backlog consumer that gets this many empty receives in a row (each
 * waiting wait_ms) concludes the queue holds fewer messages than expected. */
#define EMPTY_LIMIT 10

static uint8_t pool[POOL_BYTES];

void flow_init(void) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < POOL_BYTES; i += 8) {
    x ^= x << 13; /* xorshift64 */
    x ^= x >> 7;
    x ^= x << 17;
    /* random text, not bytes: topic publishes must be UTF-8 text (SNS) */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t k = 0; k < 8 && i + k < POOL_BYTES; k++)
      pool[i + k] = (uint8_t)alphabet[(x >> (6 * k)) & 63];
  }
}

static void put_hex(uint8_t *o, uint64_t v) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--, v >>= 4)
    o[i] = (uint8_t)hex[v & 15];
}

uint64_t flow_stamp_of(const uint8_t *head) {
  uint64_t t = 0;
  for (int i = 0; i < 16; i++) {
    uint8_t c = head[i];
    t = (t << 4) | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c - '0');
  }
  return t;
}

/* Fills body with random text and the stamp (timestamp, then sequence, as
 * 16 hex digits each, so the body stays text). */
static void make_body(uint8_t *body, size_t size, uint64_t ts, uint64_t seq) {
  size_t off = (size_t)((seq * 2654435761u) % (POOL_BYTES - size));
  memcpy(body, pool + off, size);
  if (size >= 16)
    put_hex(body, ts);
  if (size >= 32)
    put_hex(body + 16, seq);
}

static int prod_fail(flow_prod_t *p, const char *what) {
  snprintf(p->err, sizeof(p->err), "%s: %s", what, p->drv->errmsg(p->conn));
  return -1;
}

int flow_produce(flow_prod_t *p) {
  static _Thread_local uint64_t submit_at[FLOW_MAX_REQS];
  size_t batch = p->batch ? p->batch : 1, depth = p->depth ? p->depth : batch;
  uint64_t next = 0, reqseq = 0, interval = 0;
  size_t out_msgs = 0, reqs = 0;
  int rc = -1;
  if (batch > p->drv->max_batch)
    batch = p->drv->max_batch;
  if (depth < batch)
    depth = batch;
  if (p->rate > 0) {
    batch = 1; /* a paced producer sends each message at its own time */
    interval = (uint64_t)((double)NS_PER_S / p->rate);
  }
  if (p->size < FLOW_STAMP || p->size > POOL_BYTES / 2) {
    snprintf(p->err, sizeof(p->err), "body size %zu out of range", p->size);
    return -1;
  }
  uint8_t *mem = malloc(batch * p->size);
  uint8_t **bodies = malloc(batch * sizeof(*bodies));
  if (!mem || !bodies) {
    snprintf(p->err, sizeof(p->err), "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < batch; i++)
    bodies[i] = mem + i * p->size;
  p->sent = 0;
  p->t_begin = clock_ns();
  p->t_end = p->t_begin;
  for (;;) {
    uint64_t now = clock_ns();
    /* Submit while the window, the schedule and the deadline allow. */
    while (next < p->count && (!p->max_reqs || reqs < p->max_reqs) && reqs < FLOW_MAX_REQS) {
      size_t b = p->count - next < batch ? (size_t)(p->count - next) : batch;
      uint64_t stamp = now;
      if (out_msgs + b > depth)
        break;
      if (interval) {
        stamp = p->start + next * interval;
        if ((p->deadline && stamp >= p->deadline) || stamp > now)
          break;
      } else if (p->deadline && now >= p->deadline) {
        break;
      }
      for (size_t i = 0; i < b; i++)
        make_body(bodies[i], p->size, stamp, next + i);
      int s = p->topic ? p->drv->submit_publish(p->conn, p->topic, bodies, p->size, b, reqseq)
                       : p->drv->submit_send(p->conn, p->q, bodies, p->size, b, reqseq);
      if (s) {
        prod_fail(p, "submit");
        goto fail;
      }
      submit_at[reqseq % FLOW_MAX_REQS] = stamp;
      reqseq++;
      out_msgs += b;
      reqs++;
      next += b;
    }
    if (reqs == 0) {
      int more = next < p->count;
      if (interval) {
        uint64_t due = p->start + next * interval;
        if (more && !(p->deadline && due >= p->deadline)) {
          clock_sleep_until(due);
          continue;
        }
      } else if (more && !(p->deadline && clock_ns() >= p->deadline)) {
        continue;
      }
      break;
    }
    drv_done_t d;
    if (p->drv->collect(p->conn, &d)) {
      prod_fail(p, "collect");
      goto fail;
    }
    uint64_t t = clock_ns();
    if (p->lat)
      hist_record(p->lat, t - submit_at[d.tag % FLOW_MAX_REQS]);
    out_msgs -= d.n;
    reqs--;
    p->sent += d.n;
    p->t_end = t;
    progress_add(d.n);
  }
  rc = 0;
fail:
  free(mem);
  free(bodies);
  return rc;
}

static int cons_fail(flow_cons_t *c, const char *what) {
  snprintf(c->err, sizeof(c->err), "%s: %s", what, c->drv->errmsg(c->conn));
  return -1;
}

int flow_consume(flow_cons_t *c) {
  size_t fetch = c->fetch ? c->fetch : 1, depth = c->depth ? c->depth : fetch;
  size_t out_msgs = 0, reqs = 0;
  uint64_t asked = 0; /* capacity of receives in flight */
  uint64_t taken = 0; /* messages received, counted or not */
  int empties = 0, waiting = !c->backlog;
  uint64_t recv_at[FLOW_MAX_REQS], reqseq = 0;
  if (fetch > c->drv->max_batch)
    fetch = c->drv->max_batch;
  if (depth < fetch)
    depth = fetch;
  c->received = c->deleted = 0;
  c->t_begin = clock_ns();
  c->t_end = c->t_begin;
  for (;;) {
    uint64_t now = clock_ns();
    int over = c->deadline && now >= c->deadline;
    while (!over && taken + asked < c->count && (!c->max_reqs || reqs < c->max_reqs) &&
           reqs < FLOW_MAX_REQS) {
      size_t room = depth - out_msgs, want = fetch;
      if (room < fetch && (room == 0 || reqs > 0))
        break; /* wait for a full receive's room */
      if (want > room)
        want = room;
      if (c->count - taken - asked < want)
        want = (size_t)(c->count - taken - asked);
      /* The tag carries the size asked for, so its completion frees it. */
      if (c->drv->submit_receive(c->conn, c->q, want, waiting ? c->wait_ms : 0,
                                 reqseq * 128 + want))
        return cons_fail(c, "submit receive");
      recv_at[reqseq % FLOW_MAX_REQS] = now;
      reqseq++;
      asked += want;
      out_msgs += want;
      reqs++;
    }
    if (reqs == 0)
      break;
    drv_done_t d;
    if (c->drv->collect(c->conn, &d))
      return cons_fail(c, "collect");
    uint64_t t = clock_ns();
    reqs--;
    if (d.kind == DRV_DELETED) {
      out_msgs -= d.n;
      c->deleted += d.n;
      continue;
    }
    size_t want = (size_t)(d.tag % 128);
    asked -= want;
    out_msgs -= want;
    if (c->lat)
      hist_record(c->lat, t - recv_at[(d.tag / 128) % FLOW_MAX_REQS]);
    if (d.n == 0) {
      waiting = 1;
      if (c->backlog && c->wait_ms && ++empties > EMPTY_LIMIT && !c->deadline) {
        snprintf(c->err, sizeof(c->err), "queue ran dry after %llu of %llu messages",
                 (unsigned long long)taken, (unsigned long long)c->count);
        return -1;
      }
      continue;
    }
    empties = 0;
    taken += d.n;
    int counted = !(c->deadline && t >= c->deadline);
    if (counted) {
      c->received += d.n;
      c->t_end = t;
      if (c->tally)
        atomic_fetch_add_explicit(c->tally, d.n, memory_order_relaxed);
      progress_add(d.n);
      if (c->e2e)
        for (size_t i = 0; i < d.n; i++) {
          uint64_t ts = flow_stamp_of(d.msgs[i].head);
          hist_record(c->e2e, t > ts ? t - ts : 0);
        }
    }
    /* The messages are valid until the next collect: delete them now. */
    if (c->drv->submit_delete(c->conn, c->q, d.msgs, d.n, 0))
      return cons_fail(c, "submit delete");
    out_msgs += d.n;
    reqs++;
  }
  return 0;
}

typedef struct job {
  flow_prod_t *p;
  flow_cons_t *c;
  int rc;
  pthread_t th;
} job_t;

static void *job_main(void *arg) {
  job_t *j = arg;
  j->rc = j->p ? flow_produce(j->p) : flow_consume(j->c);
  return NULL;
}

int flow_run(flow_prod_t *ps, size_t np, flow_cons_t *cs, size_t nc, char *err, size_t cap) {
  size_t n = np + nc, started = 0;
  int rc = 0;
  job_t *jobs = calloc(n ? n : 1, sizeof(*jobs));
  if (!jobs) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    jobs[i].p = i < np ? &ps[i] : NULL;
    jobs[i].c = i < np ? NULL : &cs[i - np];
    if (pthread_create(&jobs[i].th, NULL, job_main, &jobs[i]) != 0) {
      snprintf(err, cap, "pthread_create failed");
      rc = -1;
      break;
    }
    started++;
  }
  for (size_t i = 0; i < started; i++) {
    pthread_join(jobs[i].th, NULL);
    if (jobs[i].rc && rc == 0) {
      snprintf(err, cap, "%s %zu: %s", jobs[i].p ? "producer" : "consumer", jobs[i].p ? i : i - np,
               jobs[i].p ? jobs[i].p->err : jobs[i].c->err);
      rc = -1;
    }
  }
  free(jobs);
  return rc;
}
