/* load.c - see load.h. */
#define _GNU_SOURCE
#include "load.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gearbox.h"

/* Worker threads in all: enough to keep a 2-core server busy. */
#define LOAD_MAX_THREADS 64
/* Pipelined send requests per producer: beyond 64 the server's group
 * commit gains nothing more on 2 cores. */
#define MAX_WINDOW 64
/* Entries of a send batch the producers build (2 to this many). */
#define PROD_BATCH 5
/* Longest body: the tag, "|" and the padding. */
#define BODY_MAX (HIST_TAG_MAX + 1 + 4096)
/* Messages a consumer asks for per receive. */
#define RECV_MAX 10
/* Long-poll wait of a consumer's receive, s: short, so stopping is quick. */
#define RECV_WAIT_S 1
/* A consumer stops deleting a message this long before its visibility
 * timeout ends: a delete racing the expiry could meet the message already
 * moved to the dead-letter queue, where a delete by the old handle is
 * "already gone" and would look like a delete the server ignored. */
#define DELETE_MARGIN_US 1000000
/* Every client call gives up after this long (plus the long-poll wait):
 * only a hung server takes that long, and its requests end in doubt. */
#define CLIENT_TIMEOUT_MS 15000
/* Pause between connection attempts while the server is down. */
#define RECONNECT_PAUSE_MS 10
/* Pause of a producer while the backlog is over its bound. */
#define BACKLOG_PAUSE_MS 5
/* Visibility of the final drain's receives: longer than any drain. */
#define DRAIN_VIS_S 900
/* Pause between polls of a queue's counters while its in-flight messages
 * come back. */
#define DRAIN_POLL_MS 100

typedef enum role { R_PRODUCER, R_CONSUMER, R_DLQ_CONSUMER } role_t;

typedef struct worker {
  struct load *l;
  role_t role;
  uint32_t id;
  uint64_t rng;
  hist_log_t *log;
  pthread_t th;
  int started;
} worker_t;

struct load {
  load_cfg_t cfg;
  hist_t *h;
  srv_t *srv;
  int main_q[LOAD_MAX_QUEUES], dlq_q[LOAD_MAX_QUEUES]; /* history queue indexes */
  _Atomic int stop;
  _Atomic uint64_t issued; /* messages producers have issued */
  load_counters_t ctr;
  worker_t w[LOAD_MAX_THREADS];
  int nw;
  pthread_mutex_t ack_mu;
  pthread_cond_t ack_cv;
};

static uint64_t rnd(uint64_t *s) {
  /* xorshift64*: fast, and reproducible from the seed */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * UINT64_C(2685821657736338717);
}

static unsigned rnd_in(uint64_t *s, unsigned lo, unsigned hi) {
  return hi <= lo ? lo : lo + (unsigned)(rnd(s) % (hi - lo + 1));
}

static const char *qname(const load_t *l, int hq) {
  return l->h->queues[hq].name;
}

load_t *load_new(const load_cfg_t *cfg, hist_t *h, srv_t *srv) {
  if (cfg->nqueues < 1 || cfg->nqueues > LOAD_MAX_QUEUES || cfg->window < 1 ||
      cfg->window > MAX_WINDOW || cfg->pad_max > BODY_MAX - HIST_TAG_MAX - 2 ||
      cfg->producers + cfg->consumers + cfg->dlq_consumers > LOAD_MAX_THREADS ||
      cfg->vis_min_s < 2 || cfg->vis_max_s < cfg->vis_min_s || !cfg->prefix)
    return NULL;
  load_t *l = calloc(1, sizeof *l);
  if (!l)
    return NULL;
  l->cfg = *cfg;
  l->h = h;
  l->srv = srv;
  pthread_mutex_init(&l->ack_mu, NULL);
  pthread_cond_init(&l->ack_cv, NULL);
  return l;
}

void load_free(load_t *l) {
  if (!l)
    return;
  load_stop(l);
  pthread_mutex_destroy(&l->ack_mu);
  pthread_cond_destroy(&l->ack_cv);
  free(l);
}

load_counters_t *load_counters(load_t *l) {
  return &l->ctr;
}

/* Connects to the server's current port, waiting while it is down. NULL
 * once the load is stopping (or, with wait 0, when it is down). */
static gbx_client_t *connect_wait(load_t *l, int wait) {
  for (;;) {
    uint16_t port = srv_port_now(l->srv);
    if (port) {
      gbx_error_t e;
      gbx_client_t *c = gbx_connect("127.0.0.1", port, &e);
      if (c) {
        gbx_set_timeout(c, CLIENT_TIMEOUT_MS);
        return c;
      }
    }
    if (!wait || atomic_load(&l->stop))
      return NULL;
    srv_sleep_ms(RECONNECT_PAUSE_MS);
  }
}

static int is_conn_error(int code) {
  return code == GBX_E_IO || code == GBX_E_CLOSED || code == GBX_E_TIMEOUT ||
         code == GBX_E_PROTOCOL || code == GBX_E_NOMEM;
}

/* ---- producers ---------------------------------------------------------- */

typedef struct pend {
  uint64_t id;
  unsigned n; /* 1: a single send; more: a batch */
  hist_event_t *ev[PROD_BATCH];
} pend_t;

static void settle(load_t *l, hist_event_t *ev, int outcome, int err) {
  ev->t_rep = srv_now_us();
  ev->outcome = (uint8_t)outcome;
  ev->err = err;
  if (outcome == H_UNKNOWN)
    atomic_fetch_add(&l->ctr.in_doubt, 1);
  if (outcome == H_OK && ev->kind == H_SEND) {
    atomic_fetch_add(&l->ctr.send_acks, 1);
    pthread_mutex_lock(&l->ack_mu);
    pthread_cond_broadcast(&l->ack_cv);
    pthread_mutex_unlock(&l->ack_mu);
  }
}

/* Issues one send or send batch; returns its pend entry's n (0 if the
 * producer's quota is used up), -1 if the client failed before sending. */
static int issue(worker_t *w, gbx_client_t *c, pend_t *p, uint64_t *seq) {
  load_t *l = w->l;
  static __thread char bodies[PROD_BATCH][BODY_MAX];
  unsigned n = rnd(&w->rng) % 8 == 0 ? rnd_in(&w->rng, 2, PROD_BATCH) : 1;
  if (l->cfg.max_messages) {
    uint64_t before = atomic_fetch_add(&l->issued, n);
    if (before >= l->cfg.max_messages)
      return 0;
    if (before + n > l->cfg.max_messages)
      n = (unsigned)(l->cfg.max_messages - before);
  }
  int qi = (int)(rnd(&w->rng) % (uint64_t)l->cfg.nqueues);
  int hq = l->main_q[qi];
  gbx_send_entry_t ent[PROD_BATCH];
  int64_t now = srv_now_us();
  for (unsigned i = 0; i < n; i++) {
    size_t pad = l->cfg.pad_max ? rnd(&w->rng) % (l->cfg.pad_max + 1) : 0;
    int len = hist_body(bodies[i], BODY_MAX, 'p', w->id, (*seq)++, pad);
    hist_event_t *ev = hist_add(w->log);
    if (len < 0 || !ev)
      abort(); /* sizes are checked in load_new; out of memory */
    ev->kind = H_SEND;
    ev->key = hist_parse_body(bodies[i], (size_t)len);
    ev->queue = (int16_t)hq;
    ev->targets = UINT64_C(1) << hq;
    ev->t_req = now;
    p->ev[i] = ev;
    ent[i] = (gbx_send_entry_t){NULL, bodies[i], (size_t)len, NULL, 0, 0};
  }
  gbx_error_t e;
  p->n = n;
  p->id = n == 1 ? gbx_submit_send(c, qname(l, hq), bodies[0], ent[0].body_len, NULL, 0, 0, &e)
                 : gbx_submit_send_batch(c, qname(l, hq), ent, n, &e);
  if (p->id == 0) {
    /* refused by the library before anything was written: not sent */
    for (unsigned i = 0; i < n; i++)
      settle(l, p->ev[i], H_FAIL, e.code);
    return -1;
  }
  return (int)n;
}

static void collect_one(worker_t *w, gbx_reply_t *r, pend_t *pend, unsigned *npend) {
  load_t *l = w->l;
  uint64_t id = gbx_reply_id(r);
  unsigned k = 0;
  while (k < *npend && pend[k].id != id)
    k++;
  if (k == *npend)
    return; /* the library only returns ids it issued */
  pend_t *p = &pend[k];
  gbx_error_t e;
  int code = gbx_reply_error(r, &e);
  if (p->n == 1) {
    char mid[GBX_MID_BUFSZ];
    if (code == GBX_E_OK)
      code = gbx_reply_mid(r, mid, &e);
    settle(l, p->ev[0], code == GBX_E_OK ? H_OK : H_FAIL, code);
  } else {
    gbx_batch_result_t res[PROD_BATCH];
    if (code == GBX_E_OK)
      code = gbx_reply_batch_results(r, res, p->n, &e);
    for (unsigned i = 0; i < p->n; i++) {
      int c = code != GBX_E_OK ? code : res[i].code;
      settle(l, p->ev[i], c == GBX_E_OK ? H_OK : H_FAIL, c);
    }
  }
  pend[k] = pend[--*npend];
}

static void fail_pending(load_t *l, pend_t *pend, unsigned *npend) {
  for (unsigned k = 0; k < *npend; k++)
    for (unsigned i = 0; i < pend[k].n; i++)
      settle(l, pend[k].ev[i], H_UNKNOWN, 0);
  *npend = 0;
}

static void producer(worker_t *w) {
  load_t *l = w->l;
  pend_t pend[MAX_WINDOW];
  unsigned npend = 0;
  uint64_t seq = 0;
  int quota_done = 0;
  gbx_client_t *c = NULL;
  for (;;) {
    int stopping = atomic_load(&l->stop);
    if (stopping && npend == 0)
      break;
    if (!c) {
      if (stopping)
        break;
      if (!(c = connect_wait(l, 1)))
        break;
    }
    /* Keep the queues short, so consumers, redeliveries and deletes get
     * their share of the crashes and the final drain stays quick: over the
     * backlog bound, only collect what is in flight. */
    int over = l->cfg.max_backlog && atomic_load(&l->ctr.send_acks) >
                                         atomic_load(&l->ctr.delete_acks) + l->cfg.max_backlog;
    while (!stopping && !quota_done && !over && npend < l->cfg.window) {
      int r = issue(w, c, &pend[npend], &seq);
      if (r == 0)
        quota_done = 1;
      else if (r > 0)
        npend++;
      else
        break;
    }
    if (npend == 0) {
      if (!gbx_is_open(c)) {
        gbx_close(c);
        c = NULL;
        atomic_fetch_add(&l->ctr.reconnects, 1);
      } else if (quota_done || over) {
        srv_sleep_ms(over ? BACKLOG_PAUSE_MS : RECONNECT_PAUSE_MS);
      }
      continue;
    }
    gbx_reply_t *r = NULL;
    gbx_error_t e;
    if (gbx_collect(c, &r, &e) != GBX_E_OK) {
      fail_pending(l, pend, &npend);
      gbx_close(c);
      c = NULL;
      atomic_fetch_add(&l->ctr.reconnects, 1);
      continue;
    }
    collect_one(w, r, pend, &npend);
    gbx_reply_free(r);
  }
  fail_pending(l, pend, &npend);
  gbx_close(c);
}

/* ---- consumers ---------------------------------------------------------- */

typedef struct held {
  char rh[GBX_MAX_RECEIPT + 1];
  uint64_t key, rc;
  int hq;
  int64_t deadline; /* monotonic us: no delete attempt after it */
} held_t;

#define MAX_HELD (4 * RECV_MAX)

static hist_event_t *delete_event(worker_t *w, const held_t *m) {
  hist_event_t *ev = hist_add(w->log);
  if (!ev)
    abort();
  ev->kind = H_DELETE;
  ev->key = m->key;
  ev->rc = m->rc;
  ev->queue = (int16_t)m->hq;
  ev->t_req = srv_now_us();
  return ev;
}

/* Deletes held messages whose deadline has not passed; keeps those whose
 * delete ended in doubt for a retry. Returns -1 if the connection failed. */
static int do_deletes(worker_t *w, gbx_client_t *c, held_t *held, unsigned *nheld) {
  load_t *l = w->l;
  unsigned keep = 0;
  int failed = 0;
  for (unsigned i = 0; i < *nheld;) {
    int64_t now = srv_now_us();
    if (failed || held[i].deadline <= now) {
      if (failed && held[i].deadline > now)
        held[keep++] = held[i];
      i++;
      continue;
    }
    /* a batch of the following held messages of the same queue, or one */
    unsigned n = 1;
    if (rnd(&w->rng) % 2)
      while (i + n < *nheld && n < RECV_MAX && held[i + n].hq == held[i].hq &&
             held[i + n].deadline > now)
        n++;
    gbx_error_t e;
    if (n == 1) {
      hist_event_t *ev = delete_event(w, &held[i]);
      int code = gbx_message_delete(c, qname(l, held[i].hq), held[i].rh, &e);
      if (is_conn_error(code)) {
        settle(l, ev, H_UNKNOWN, 0);
        failed = 1;
        continue; /* held[i] is kept above for a retry */
      }
      settle(l, ev, code == GBX_E_OK ? H_OK : H_FAIL, code);
      if (code == GBX_E_OK)
        atomic_fetch_add(&l->ctr.delete_acks, 1);
      i++;
      continue;
    }
    gbx_receipt_entry_t ent[RECV_MAX];
    gbx_batch_result_t res[RECV_MAX];
    hist_event_t *ev[RECV_MAX];
    for (unsigned k = 0; k < n; k++) {
      ent[k] = (gbx_receipt_entry_t){NULL, held[i + k].rh, 0};
      ev[k] = delete_event(w, &held[i + k]);
    }
    int code = gbx_message_delete_batch(c, qname(l, held[i].hq), ent, n, res, &e);
    if (is_conn_error(code)) {
      for (unsigned k = 0; k < n; k++)
        settle(l, ev[k], H_UNKNOWN, 0);
      failed = 1;
      continue;
    }
    for (unsigned k = 0; k < n; k++) {
      int ck = code != GBX_E_OK ? code : res[k].code;
      settle(l, ev[k], ck == GBX_E_OK ? H_OK : H_FAIL, ck);
      if (ck == GBX_E_OK)
        atomic_fetch_add(&l->ctr.delete_acks, 1);
    }
    i += n;
  }
  *nheld = keep;
  return failed ? -1 : 0;
}

static void consumer(worker_t *w) {
  load_t *l = w->l;
  held_t held[MAX_HELD];
  unsigned nheld = 0;
  gbx_client_t *c = NULL;
  while (!atomic_load(&l->stop)) {
    if (!c && !(c = connect_wait(l, 1)))
      break;
    if (nheld && do_deletes(w, c, held, &nheld) != 0) {
      gbx_close(c);
      c = NULL;
      atomic_fetch_add(&l->ctr.reconnects, 1);
      continue;
    }
    int qi = (int)(rnd(&w->rng) % (uint64_t)l->cfg.nqueues);
    int hq = w->role == R_DLQ_CONSUMER ? l->dlq_q[qi] : l->main_q[qi];
    unsigned vis = rnd_in(&w->rng, l->cfg.vis_min_s, l->cfg.vis_max_s);
    gbx_message_t *m = NULL;
    size_t n = 0;
    gbx_error_t e;
    int64_t t_req = srv_now_us();
    int code = gbx_queue_receive(c, qname(l, hq), RECV_MAX, (int)vis, RECV_WAIT_S, &m, &n, &e);
    int64_t t_rep = srv_now_us();
    if (is_conn_error(code)) {
      /* a receive in doubt: whatever it took stays invisible for vis */
      atomic_fetch_add(&l->ctr.in_doubt, 1);
      gbx_close(c);
      c = NULL;
      atomic_fetch_add(&l->ctr.reconnects, 1);
      continue;
    }
    if (code != GBX_E_OK) {
      srv_sleep_ms(RECONNECT_PAUSE_MS);
      continue;
    }
    for (size_t i = 0; i < n; i++) {
      hist_event_t *ev = hist_add(w->log);
      if (!ev)
        abort();
      ev->kind = H_RECEIVE;
      ev->outcome = H_OK;
      ev->key = hist_parse_body(m[i].body, m[i].body_len);
      ev->rc = m[i].receive_count;
      ev->queue = (int16_t)hq;
      if (m[i].source_queue)
        ev->src = (int16_t)hist_queue_index(l->h, m[i].source_queue, strlen(m[i].source_queue));
      ev->t_req = t_req;
      ev->t_rep = t_rep;
      atomic_fetch_add(&l->ctr.receives, 1);
      if (rnd(&w->rng) % 100 < l->cfg.delete_pct && nheld < MAX_HELD &&
          strlen(m[i].receipt) <= GBX_MAX_RECEIPT) {
        held_t *hm = &held[nheld++];
        strcpy(hm->rh, m[i].receipt);
        hm->key = ev->key;
        hm->rc = ev->rc;
        hm->hq = hq;
        hm->deadline = t_req + (int64_t)vis * 1000000 - DELETE_MARGIN_US;
      }
    }
    gbx_messages_free(m);
  }
  gbx_close(c);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  if (w->role == R_PRODUCER)
    producer(w);
  else
    consumer(w);
  return NULL;
}

/* ---- driver side -------------------------------------------------------- */

int load_create_queues(load_t *l, char *err, size_t cap) {
  gbx_client_t *c = connect_wait(l, 0);
  if (!c) {
    snprintf(err, cap, "cannot connect to gearboxd on port %u", srv_port_now(l->srv));
    return -1;
  }
  int rc = -1;
  for (int i = 0; i < l->cfg.nqueues; i++) {
    char main[HIST_NAME_MAX + 1], dlq[HIST_NAME_MAX + 1];
    snprintf(main, sizeof main, "%s%d", l->cfg.prefix, i);
    snprintf(dlq, sizeof dlq, "%s%d-dlq", l->cfg.prefix, i);
    gbx_queue_attrs_t da = {.set = GBX_QA_VISIBILITY | GBX_QA_RETENTION,
                            .visibility_timeout = l->cfg.vis_min_s,
                            .retention_period = GBX_RETENTION_MAX};
    gbx_queue_attrs_t ma = da;
    ma.set |= GBX_QA_DLQ | GBX_QA_MAX_RECEIVES;
    ma.dead_letter_queue = dlq;
    ma.max_receive_count = l->cfg.max_receives;
    gbx_error_t e;
    if (gbx_queue_create(c, dlq, &da, NULL, 0, NULL, &e) != GBX_E_OK ||
        gbx_queue_create(c, main, &ma, NULL, 0, NULL, &e) != GBX_E_OK) {
      snprintf(err, cap, "creating queue %s: %s (%s)", main, e.message, gbx_errname(e.code));
      goto fail;
    }
    l->main_q[i] = hist_add_queue(l->h, main, -1);
    l->dlq_q[i] = hist_add_queue(l->h, dlq, l->main_q[i]);
    if (l->main_q[i] < 0 || l->dlq_q[i] < 0) {
      snprintf(err, cap, "the history's queue table is full");
      goto fail;
    }
  }
  rc = 0;
fail:
  gbx_close(c);
  return rc;
}

int load_start(load_t *l, char *err, size_t cap) {
  atomic_store(&l->stop, 0);
  l->nw = 0;
  uint32_t id = 0;
  struct {
    role_t role;
    int n;
  } plan[] = {{R_PRODUCER, l->cfg.producers},
              {R_CONSUMER, l->cfg.consumers},
              {R_DLQ_CONSUMER, l->cfg.dlq_consumers}};
  for (size_t p = 0; p < sizeof plan / sizeof plan[0]; p++) {
    for (int i = 0; i < plan[p].n; i++) {
      worker_t *w = &l->w[l->nw];
      memset(w, 0, sizeof *w);
      w->l = l;
      w->role = plan[p].role;
      w->id = id++;
      w->rng = (l->cfg.seed + 1) * UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)w->id << 32 | 1);
      w->log = hist_log_new(l->h, w->id);
      if (!w->log) {
        snprintf(err, cap, "out of memory");
        load_stop(l);
        return -1;
      }
      int e = pthread_create(&w->th, NULL, worker_main, w);
      if (e) {
        snprintf(err, cap, "pthread_create: %s", strerror(e));
        load_stop(l);
        return -1;
      }
      w->started = 1;
      l->nw++;
    }
  }
  return 0;
}

void load_stop(load_t *l) {
  atomic_store(&l->stop, 1);
  for (int i = 0; i < l->nw; i++)
    if (l->w[i].started) {
      pthread_join(l->w[i].th, NULL);
      l->w[i].started = 0;
    }
  l->nw = 0;
}

int load_wait_ack(load_t *l, int timeout_ms) {
  uint64_t before = atomic_load(&l->ctr.send_acks);
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += timeout_ms / 1000;
  dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&l->ack_mu);
  int r = 0;
  while (atomic_load(&l->ctr.send_acks) == before) {
    if (pthread_cond_timedwait(&l->ack_cv, &l->ack_mu, &dl) == ETIMEDOUT)
      break;
  }
  r = atomic_load(&l->ctr.send_acks) != before;
  pthread_mutex_unlock(&l->ack_mu);
  return r;
}

/* Drains one queue; returns 0 when its counters read zero. */
static int drain_queue(load_t *l, gbx_client_t *c, hist_log_t *log, int hq, int64_t deadline,
                       char *err, size_t cap) {
  for (;;) {
    gbx_message_t *m = NULL;
    size_t n = 0;
    gbx_error_t e;
    int64_t t_req = srv_now_us();
    int code = gbx_queue_receive(c, qname(l, hq), GBX_MAX_RECEIVE, DRAIN_VIS_S, 0, &m, &n, &e);
    int64_t t_rep = srv_now_us();
    if (code != GBX_E_OK) {
      snprintf(err, cap, "drain: receive on %s: %s (%s)", qname(l, hq), e.message,
               gbx_errname(code));
      return -1;
    }
    if (n == 0) {
      gbx_stats_t st;
      if (gbx_stats(c, qname(l, hq), &st, &e) != GBX_E_OK) {
        snprintf(err, cap, "drain: stats of %s: %s", qname(l, hq), e.message);
        return -1;
      }
      uint64_t left = 0;
      for (size_t i = 0; i < st.nqueues; i++)
        left += st.queues[i].visible + st.queues[i].inflight + st.queues[i].delayed;
      gbx_stats_free(&st);
      if (left == 0)
        return 0;
      if (srv_now_us() > deadline) {
        snprintf(err, cap,
                 "drain: %s still holds %" PRIu64 " messages that never became visible again",
                 qname(l, hq), left);
        return -1;
      }
      srv_sleep_ms(DRAIN_POLL_MS);
      continue;
    }
    gbx_receipt_entry_t ent[GBX_MAX_RECEIVE];
    gbx_batch_result_t res[GBX_MAX_RECEIVE];
    hist_event_t *dev[GBX_MAX_RECEIVE];
    for (size_t i = 0; i < n; i++) {
      hist_event_t *ev = hist_add(log);
      hist_event_t *dv = hist_add(log);
      if (!ev || !dv)
        abort();
      ev->kind = H_RECEIVE;
      ev->outcome = H_OK;
      ev->drain = 1;
      ev->key = hist_parse_body(m[i].body, m[i].body_len);
      ev->rc = m[i].receive_count;
      ev->queue = (int16_t)hq;
      if (m[i].source_queue)
        ev->src = (int16_t)hist_queue_index(l->h, m[i].source_queue, strlen(m[i].source_queue));
      ev->t_req = t_req;
      ev->t_rep = t_rep;
      dv->kind = H_DELETE;
      dv->drain = 1;
      dv->key = ev->key;
      dv->rc = ev->rc;
      dv->queue = (int16_t)hq;
      dev[i] = dv;
      ent[i] = (gbx_receipt_entry_t){NULL, m[i].receipt, 0};
    }
    int64_t t_del = srv_now_us();
    code = gbx_message_delete_batch(c, qname(l, hq), ent, n, res, &e);
    for (size_t i = 0; i < n; i++) {
      dev[i]->t_req = t_del;
      dev[i]->t_rep = srv_now_us();
      int ck = code != GBX_E_OK ? code : res[i].code;
      dev[i]->outcome = ck == GBX_E_OK ? H_OK : is_conn_error(ck) ? H_UNKNOWN : H_FAIL;
      dev[i]->err = ck;
    }
    gbx_messages_free(m);
    if (code != GBX_E_OK) {
      snprintf(err, cap, "drain: delete_batch on %s: %s (%s)", qname(l, hq), e.message,
               gbx_errname(code));
      return -1;
    }
  }
}

int load_drain(load_t *l, unsigned timeout_s, char *err, size_t cap) {
  gbx_client_t *c = connect_wait(l, 0);
  if (!c) {
    snprintf(err, cap, "drain: cannot connect to gearboxd");
    return -1;
  }
  hist_log_t *log = hist_log_new(l->h, 9999);
  int rc = log ? 0 : -1;
  int64_t deadline = srv_now_us() + (int64_t)timeout_s * 1000000;
  for (int i = 0; rc == 0 && i < l->cfg.nqueues; i++)
    rc = drain_queue(l, c, log, l->main_q[i], deadline, err, cap);
  for (int i = 0; rc == 0 && i < l->cfg.nqueues; i++)
    rc = drain_queue(l, c, log, l->dlq_q[i], deadline, err, cap);
  gbx_close(c);
  return rc;
}
