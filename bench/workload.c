/* workload.c - W1-W6 as issue 3 defines them, built from flow.c's producer
 * and consumer loops. Each workload creates its own queues (names carry the
 * pid and run, so a shared --server is safe), connects one connection per
 * thread, and reports messages/s and latency percentiles in result_t. */
#include "workload.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "flow.h"
#include "progress.h"

/* Issue 3's sizes. */
#define W1_COUNT   200000u
#define W2_COUNT   200000u
#define W2_DEPTH   64u
#define W3_FETCH   16u
#define W3_SECONDS 10.0
#define W3R_RATE   5000.0
/* W3R producers: each offers rate/16 (312/s, one every 3.2 ms) with one
 * request in flight, so it is idle when its next message is due as long as
 * a send takes less than 3.2 ms: the load is open-loop, as a fixed rate
 * must be. A producer still busy sends late, and the lateness counts in
 * the latency (measured from the intended time). */
#define W3R_CONNS  16u
#define W4_COUNT   50000u
#define W4_QUEUES  10u /* the fan-out; --fanout lowers it (main.c caps it at 10 too) */
#define W4_DEPTH   64u
#define W5_COUNT   10000000u
#define W6_MINUTES 10.0
/* W5 fills with full batches over two connections, two requests each, so
 * the server always has the next batch while one syncs. */
#define W5_FILL_CONNS 2u
#define W5_FILL_BATCH 100u
/* W5's deep-backlog drain and W3R's receive window run this long by
 * default (seconds). */
#define W5_DRAIN_SECONDS 10.0
/* Long-poll wait of consumers that may find a queue empty (ms). */
#define WAIT_MS 1000u
/* W3R consumers keep receiving this long after the last send is due, so
 * the last messages' latency is measured too (ns). */
#define W3R_GRACE_NS (2 * NS_PER_S)
/* W4 publishes for at most this long (ns): a system that fans out one
 * synced put per queue (beanstalkd -f 0, ~45 publishes/s here) would take
 * 20 minutes for 50,000; its rate is measured on what it published. The
 * consumers then have as long again to deliver the rest. */
#define W4_LIMIT_NS (60 * NS_PER_S)
/* --quick sizes: the smoke test must finish in well under a minute even
 * when the disk syncs in milliseconds (a shared CI machine) and every
 * system runs, beanstalkd at one fsync per put and per delete included. */
#define QUICK_W1 100u
#define QUICK_W2 500u
#define QUICK_W4 200u
/* beanstalkd syncs each put and each delete: on a loaded 2-core CI machine
 * (the ASan stage, other jobs) it managed 17 publishes/s to 10 tubes, so the
 * smoke allows it 20 s to publish and as long again to deliver */
#define QUICK_W4_LIMIT_NS (20 * NS_PER_S)
#define QUICK_W5          5000u
/* W6 samples throughput and disk use this often, or in five steps when
 * the run is shorter than five minutes (quick runs). */
#define W6_STEP_S    60.0
#define W6_MIN_STEPS 5u
/* W6 series kept as metrics ("r1".."rN"). */
#define W6_MAX_STEPS 30u
/* W6 weighs the data dir this often: its size swings (the WAL grows to its
 * cap, then a flush releases it), so a step's disk use is its peak, not one
 * sample taken wherever the swing happens to be. */
#define W6_DISK_SAMPLE_S 1.0
/* Most producer or consumer threads of one workload. */
#define MAX_CONNS 64u

const char *const wl_names[] = {"W1", "W2", "W3", "W3R", "W4", "W5", "W6"};
const size_t wl_count = sizeof(wl_names) / sizeof(wl_names[0]);

int wl_known(const char *name) {
  for (size_t i = 0; i < wl_count; i++)
    if (!strcmp(wl_names[i], name))
      return 1;
  return 0;
}

int wl_compared(const char *name) {
  return strcmp(name, "W5") != 0 && strcmp(name, "W6") != 0;
}

size_t wl_auto_batch(const sysrun_t *sys) {
  /* Gearbox: two send_batch requests of 32 fill the 64-message window, so
   * one batch is written while the other is synced. The peers have no
   * batch send: pipelined singles keep their window full. */
  return sys->def->kind == SYS_GEARBOX ? W2_DEPTH / 2 : 1;
}

static uint64_t count_or(const wl_cfg_t *cfg, uint64_t dflt, uint64_t quick) {
  return cfg->count ? cfg->count : cfg->quick ? quick : dflt;
}

static double seconds_or(const wl_cfg_t *cfg, double dflt, double quick) {
  return cfg->duration_s > 0 ? cfg->duration_s : cfg->quick ? quick : dflt;
}

static unsigned conns_of(const wl_cfg_t *cfg) {
  unsigned n = cfg->conns ? cfg->conns : 4;
  return n > MAX_CONNS ? MAX_CONNS : n;
}

static int failed(result_t *res, const char *what, const char *why) {
  res->status = RES_FAILED;
  res_note(res, "%s: %s", what, why);
  return -1;
}

/* Opens n connections; on failure closes those opened and fills res. */
static int open_conns(sysrun_t *sys, drv_conn_t **out, size_t n, result_t *res) {
  char err[512];
  for (size_t i = 0; i < n; i++) {
    out[i] = sys->drv->connect(&sys->ep, err, sizeof(err));
    if (!out[i]) {
      while (i--)
        sys->drv->close(out[i]);
      return failed(res, "connect", err);
    }
  }
  return 0;
}

static void close_conns(sysrun_t *sys, drv_conn_t **c, size_t n) {
  for (size_t i = 0; i < n; i++)
    sys->drv->close(c[i]);
}

/* Creates the queue `name` over a short-lived connection. */
static int make_queue(sysrun_t *sys, const char *name, result_t *res) {
  drv_conn_t *c;
  if (open_conns(sys, &c, 1, res))
    return -1;
  int rc = sys->drv->create_queue(c, name);
  if (rc)
    failed(res, "create queue", sys->drv->errmsg(c));
  sys->drv->close(c);
  return rc;
}

static void queue_name(char *out, size_t cap, const char *w, const wl_cfg_t *cfg, int i) {
  if (i < 0)
    snprintf(out, cap, "bench-%s-%d-%u", w, (int)getpid(), cfg->run);
  else
    snprintf(out, cap, "bench-%s-%d-%u-%d", w, (int)getpid(), cfg->run, i);
}

static double rate(uint64_t n, uint64_t t0, uint64_t t1) {
  return t1 > t0 ? (double)n * NS_PER_S / (double)(t1 - t0) : 0;
}

static void set_lat(result_t *res, const char *prefix, const hist_t *h, int tail) {
  char name[RES_NAME];
  static const struct {
    const char *suffix;
    double q;
  } qs[] = {{"p50", 0.5}, {"p99", 0.99}, {"p999", 0.999}, {"max", 1.0}};
  for (size_t i = 0; i < (tail ? 4u : 2u); i++) {
    snprintf(name, sizeof(name), "%s_%s_us", prefix, qs[i].suffix);
    res_set(res, name, (double)hist_quantile(h, qs[i].q) / NS_PER_US);
  }
}

/* W1 and W2: a backlog sent by one producer, then received and deleted by
 * one consumer. W1 keeps one message outstanding; W2 keeps `depth`. */
static int backlog_pair(const char *w, sysrun_t *sys, const wl_cfg_t *cfg, result_t *res,
                        int pipelined) {
  char q[128], err[512];
  drv_conn_t *c[2];
  hist_t *send_lat = malloc(sizeof(hist_t)), *recv_lat = malloc(sizeof(hist_t));
  int rc = -1;
  uint64_t n = pipelined ? count_or(cfg, W2_COUNT, QUICK_W2) : count_or(cfg, W1_COUNT, QUICK_W1);
  size_t depth = cfg->depth ? cfg->depth : W2_DEPTH;
  size_t batch = pipelined ? (cfg->batch ? cfg->batch : wl_auto_batch(sys)) : 1;
  size_t fetch = pipelined ? (depth / 2 ? depth / 2 : 1) : 1;
  if (!send_lat || !recv_lat) {
    failed(res, w, "out of memory");
    goto fail;
  }
  hist_init(send_lat);
  hist_init(recv_lat);
  queue_name(q, sizeof(q), w, cfg, -1);
  if (make_queue(sys, q, res) || open_conns(sys, c, 2, res))
    goto fail;
  drv_queue_t dq = {q, NULL};
  flow_prod_t p = {.drv = sys->drv,
                   .conn = c[0],
                   .q = &dq,
                   .count = n,
                   .size = cfg->size,
                   .batch = batch,
                   .depth = pipelined ? depth : 1,
                   .max_reqs = pipelined ? 0 : 1,
                   .lat = send_lat};
  flow_cons_t k = {.drv = sys->drv,
                   .conn = c[1],
                   .q = &dq,
                   .count = n,
                   .fetch = fetch,
                   .depth = pipelined ? depth : 1,
                   .max_reqs = pipelined ? 0 : 1,
                   .wait_ms = WAIT_MS,
                   .backlog = 1,
                   .lat = recv_lat};
  char label[160];
  snprintf(label, sizeof(label), "%s %s send", sys->def->label, w);
  progress_begin(label, n);
  uint64_t t0 = clock_ns();
  int prc = flow_produce(&p);
  uint64_t t1 = clock_ns();
  progress_end();
  if (prc) {
    failed(res, "send", p.err);
    goto close;
  }
  snprintf(label, sizeof(label), "%s %s receive", sys->def->label, w);
  progress_begin(label, n);
  uint64_t t2 = clock_ns();
  int crc = flow_consume(&k);
  uint64_t t3 = clock_ns();
  progress_end();
  if (crc) {
    failed(res, "receive", k.err);
    goto close;
  }
  res_set(res, "messages", (double)n);
  res_set(res, "send_mps", rate(p.sent, t0, t1));
  res_set(res, "recv_mps", rate(k.deleted, t2, t3));
  set_lat(res, "send", send_lat, 0);
  set_lat(res, "recv", recv_lat, 0);
  if (pipelined) {
    res_set(res, "batch", (double)batch);
    res_set(res, "depth", (double)depth);
  }
  if (k.deleted != n) {
    snprintf(err, sizeof(err), "deleted %llu of %llu", (unsigned long long)k.deleted,
             (unsigned long long)n);
    failed(res, "receive", err);
    goto close;
  }
  rc = 0;
close:
  close_conns(sys, c, 2);
fail:
  free(send_lat);
  free(recv_lat);
  return rc;
}

/* Per-thread histograms of a steady-state run, merged afterwards. */
typedef struct steady {
  flow_prod_t p[MAX_CONNS];
  flow_cons_t k[MAX_CONNS];
  hist_t sendh[MAX_CONNS], e2eh[MAX_CONNS];
  drv_conn_t *conns[2 * MAX_CONNS];
  hist_t send_all, e2e_all;
} steady_t;

/* W3 (rate 0: flat out) and W3R (paced): `conns` producers with one send
 * in flight each and as many consumers fetching up to 16, one request in
 * flight each, for `secs` seconds; end-to-end latency from the body stamp
 * (the intended send time when paced). */
static int steady_run(const char *w, sysrun_t *sys, const wl_cfg_t *cfg, result_t *res,
                      double total_rate) {
  char q[128], err[512], label[160];
  unsigned nc = conns_of(cfg), n = nc; /* producers, consumers */
  if (total_rate > 0)
    n = cfg->rate_conns ? cfg->rate_conns : W3R_CONNS;
  if (n > MAX_CONNS)
    n = MAX_CONNS;
  double secs = seconds_or(cfg, W3_SECONDS, 1.0);
  steady_t *s = calloc(1, sizeof(*s));
  int rc = -1;
  if (!s)
    return failed(res, w, "out of memory");
  queue_name(q, sizeof(q), w, cfg, -1);
  if (make_queue(sys, q, res) || open_conns(sys, s->conns, (size_t)n + nc, res))
    goto fail;
  drv_queue_t dq = {q, NULL};
  uint64_t t0 = clock_ns() + 50 * NS_PER_MS; /* time for the threads to start */
  uint64_t end = t0 + (uint64_t)(secs * NS_PER_S);
  double per = total_rate / n;
  uint64_t grace = cfg->quick ? W3R_GRACE_NS / 4 : W3R_GRACE_NS;
  for (unsigned i = 0; i < n; i++) {
    hist_init(&s->sendh[i]);
    s->p[i] = (flow_prod_t){.drv = sys->drv,
                            .conn = s->conns[i],
                            .q = &dq,
                            .count = UINT64_MAX,
                            .size = cfg->size,
                            .batch = 1,
                            .depth = 1,
                            .max_reqs = 1,
                            .deadline = end,
                            .rate = per,
                            .lat = &s->sendh[i]};
    /* Paced producers interleave: producer i starts i/n of an interval late. */
    if (per > 0)
      s->p[i].start = t0 + (uint64_t)((double)NS_PER_S / per * i / n);
  }
  for (unsigned i = 0; i < nc; i++) {
    hist_init(&s->e2eh[i]);
    s->k[i] = (flow_cons_t){.drv = sys->drv,
                            .conn = s->conns[n + i],
                            .q = &dq,
                            .count = UINT64_MAX,
                            .fetch = W3_FETCH,
                            .depth = W3_FETCH,
                            .max_reqs = 1,
                            .wait_ms = WAIT_MS,
                            .deadline = per > 0 ? end + grace : end,
                            .e2e = &s->e2eh[i]};
  }
  snprintf(label, sizeof(label), "%s %s delivered", sys->def->label, w);
  progress_begin(label, 0);
  if (per <= 0)
    clock_sleep_until(t0);
  int frc = flow_run(s->p, n, s->k, nc, err, sizeof(err));
  progress_end();
  if (frc) {
    failed(res, w, err);
    goto close;
  }
  uint64_t sent = 0, delivered = 0;
  hist_init(&s->send_all);
  hist_init(&s->e2e_all);
  for (unsigned i = 0; i < n; i++) {
    sent += s->p[i].sent;
    hist_merge(&s->send_all, &s->sendh[i]);
  }
  for (unsigned i = 0; i < nc; i++) {
    delivered += s->k[i].received;
    hist_merge(&s->e2e_all, &s->e2eh[i]);
  }
  if (per > 0) {
    res_set(res, "offered_mps", total_rate);
    res_set(res, "sent_mps", (double)sent / secs);
    res_set(res, "delivered_mps", (double)delivered / secs);
    if (delivered < sent)
      res_note(res, "%llu of %llu sent messages not received within %.1f s of the end",
               (unsigned long long)(sent - delivered), (unsigned long long)sent,
               (double)grace / NS_PER_S);
  } else {
    res_set(res, "sent_mps", (double)sent / secs);
    res_set(res, "delivered_mps", (double)delivered / secs);
  }
  set_lat(res, "e2e", &s->e2e_all, 1);
  set_lat(res, "send", &s->send_all, 1);
  res_set(res, "producers", n);
  res_set(res, "consumers", nc);
  rc = 0;
close:
  close_conns(sys, s->conns, (size_t)n + nc);
fail:
  free(s);
  return rc;
}

/* W4: publishes to a topic with 10 subscribed queues, 64 in flight, while
 * one consumer per queue drains it fetching up to 64. */
static int fanout(sysrun_t *sys, const wl_cfg_t *cfg, result_t *res) {
  char topic[128], names[W4_QUEUES][128], err[512];
  const unsigned nq = cfg->fanout ? cfg->fanout : W4_QUEUES;
  const char *qs[W4_QUEUES];
  drv_queue_t dqs[W4_QUEUES];
  drv_conn_t *c[1 + W4_QUEUES];
  int rc = -1;
  uint64_t n = count_or(cfg, W4_COUNT, QUICK_W4);
  uint64_t limit = cfg->quick ? QUICK_W4_LIMIT_NS : W4_LIMIT_NS;
  if (!sys->drv->create_fanout) {
    res->status = RES_SKIPPED;
    res_note(res, "skipped: %s", sys->drv->fanout_missing);
    return 0;
  }
  flow_cons_t *k = calloc(nq, sizeof(*k));
  if (!k)
    return failed(res, "W4", "out of memory");
  queue_name(topic, sizeof(topic), "W4t", cfg, -1);
  for (unsigned i = 0; i < nq; i++) {
    queue_name(names[i], sizeof(names[i]), "W4q", cfg, (int)i);
    qs[i] = names[i];
    dqs[i] = (drv_queue_t){names[i], topic};
  }
  drv_topic_t t = {topic, qs, nq};
  if (open_conns(sys, c, 1 + nq, res))
    goto fail;
  for (unsigned i = 0; i < nq; i++) {
    if (sys->drv->create_queue(c[0], names[i])) {
      failed(res, "create queue", sys->drv->errmsg(c[0]));
      goto close;
    }
  }
  int frc = sys->drv->create_fanout(c[0], &t);
  if (frc == DRV_UNSUPPORTED) {
    res->status = RES_SKIPPED;
    res_note(res, "skipped: topics not implemented by this server (%s)", sys->drv->errmsg(c[0]));
    rc = 0;
    goto close;
  }
  if (frc) {
    failed(res, "create topic", sys->drv->errmsg(c[0]));
    goto close;
  }
  uint64_t t0 = clock_ns();
  flow_prod_t p = {.drv = sys->drv,
                   .conn = c[0],
                   .topic = &t,
                   .count = n,
                   .size = cfg->size,
                   .batch = 1,
                   .depth = W4_DEPTH,
                   .deadline = t0 + limit};
  for (unsigned i = 0; i < nq; i++)
    k[i] = (flow_cons_t){.drv = sys->drv,
                         .conn = c[1 + i],
                         .q = &dqs[i],
                         .count = n,
                         .fetch = W4_DEPTH,
                         .depth = 2 * W4_DEPTH,
                         .wait_ms = WAIT_MS,
                         .deadline = t0 + 2 * limit};
  char label[160];
  snprintf(label, sizeof(label), "%s W4 publishes+deliveries", sys->def->label);
  progress_begin(label, n * (1 + nq));
  frc = flow_run(&p, 1, k, nq, err, sizeof(err));
  progress_end();
  if (frc) {
    failed(res, "W4", err);
    goto close;
  }
  uint64_t delivered = 0, t1 = t0;
  for (unsigned i = 0; i < nq; i++) {
    delivered += k[i].received;
    if (k[i].t_end > t1)
      t1 = k[i].t_end;
  }
  res_set(res, "publishes", (double)p.sent);
  res_set(res, "queues", nq);
  res_set(res, "publish_mps", rate(p.sent, p.t_begin, p.t_end));
  res_set(res, "deliver_mps", rate(delivered, t0, t1));
  if (p.sent < n)
    res_note(res, "published %llu of %llu in the %.0f s limit", (unsigned long long)p.sent,
             (unsigned long long)n, (double)limit / NS_PER_S);
  if (delivered != p.sent * nq) {
    snprintf(err, sizeof(err), "delivered %llu of %llu", (unsigned long long)delivered,
             (unsigned long long)(p.sent * nq));
    failed(res, "W4", err);
    goto close;
  }
  rc = 0;
close:
  close_conns(sys, c, 1 + nq);
fail:
  free(k);
  return rc;
}

/* W5: fill a deep backlog, weigh it (RSS, disk), restart, then measure the
 * receive rate from it for a while. */
static int scale(sysrun_t *sys, const wl_cfg_t *cfg, result_t *res) {
  char q[128], err[512], label[160];
  drv_conn_t *c[W5_FILL_CONNS];
  flow_prod_t p[W5_FILL_CONNS];
  uint64_t n = count_or(cfg, W5_COUNT, QUICK_W5);
  double secs = seconds_or(cfg, W5_DRAIN_SECONDS, 1.0);
  int rc = -1;
  queue_name(q, sizeof(q), "W5", cfg, -1);
  if (make_queue(sys, q, res))
    return -1;
  drv_queue_t dq = {q, NULL};
  double rss0 = (double)sys_rss(sys), disk0 = (double)sys_disk(sys);
  if (open_conns(sys, c, W5_FILL_CONNS, res))
    return -1;
  for (unsigned i = 0; i < W5_FILL_CONNS; i++)
    p[i] = (flow_prod_t){.drv = sys->drv,
                         .conn = c[i],
                         .q = &dq,
                         .count = n / W5_FILL_CONNS + (i < n % W5_FILL_CONNS),
                         .size = cfg->size,
                         .batch = W5_FILL_BATCH,
                         .depth = 2 * W5_FILL_BATCH};
  snprintf(label, sizeof(label), "%s W5 fill", sys->def->label);
  progress_begin(label, n);
  uint64_t t0 = clock_ns();
  int frc = flow_run(p, W5_FILL_CONNS, NULL, 0, err, sizeof(err));
  uint64_t t1 = clock_ns();
  progress_end();
  close_conns(sys, c, W5_FILL_CONNS);
  if (frc)
    return failed(res, "fill", err);
  res_set(res, "messages", (double)n);
  res_set(res, "fill_mps", rate(n, t0, t1));
  double rss1 = (double)sys_rss(sys), disk1 = (double)sys_disk(sys);
  if (!sys->external) {
    res_set(res, "rss_empty_mb", rss0 / 1048576);
    res_set(res, "rss_full_mb", rss1 / 1048576);
    res_set(res, "rss_per_msg_b", (rss1 - rss0) / (double)n);
    res_set(res, "disk_mb", disk1 / 1048576);
    res_set(res, "disk_per_msg_b", (disk1 - disk0) / (double)n);
    double stop_s, ready_s;
    if (sys_restart(sys, &stop_s, &ready_s, err, sizeof(err)))
      return failed(res, "restart", err);
    res_set(res, "stop_s", stop_s);
    res_set(res, "restart_s", ready_s);
    res_set(res, "rss_restart_mb", (double)sys_rss(sys) / 1048576);
  } else {
    res_note(res, "external server: RSS, disk and restart not measured");
  }
  hist_t *lat = malloc(sizeof(hist_t));
  if (!lat)
    return failed(res, "W5", "out of memory");
  hist_init(lat);
  if (open_conns(sys, c, 1, res))
    goto fail;
  flow_cons_t k = {.drv = sys->drv,
                   .conn = c[0],
                   .q = &dq,
                   .count = n,
                   .fetch = W2_DEPTH / 2,
                   .depth = W2_DEPTH,
                   .wait_ms = WAIT_MS,
                   .backlog = 1,
                   .deadline = clock_ns() + (uint64_t)(secs * NS_PER_S),
                   .lat = lat};
  snprintf(label, sizeof(label), "%s W5 drain", sys->def->label);
  progress_begin(label, 0);
  uint64_t t2 = clock_ns();
  int crc = flow_consume(&k);
  uint64_t t3 = clock_ns();
  progress_end();
  sys->drv->close(c[0]);
  if (crc) {
    failed(res, "drain", k.err);
    goto fail;
  }
  res_set(res, "drain_mps", rate(k.received, t2, t3 < k.deadline ? t3 : k.deadline));
  set_lat(res, "drain", lat, 0);
  rc = 0;
fail:
  free(lat);
  return rc;
}

/* W6 sampling thread: every step, the messages delivered, and the peak
 * and trough of disk use within it. */
typedef struct churn_mon {
  sysrun_t *sys;
  atomic_uint_fast64_t tally;
  uint64_t t0;
  double step_s;
  unsigned steps;
  double rates[W6_MAX_STEPS];
  double disk[W6_MAX_STEPS];     /* peak */
  double disk_low[W6_MAX_STEPS]; /* trough */
} churn_mon_t;

static void *churn_sample(void *arg) {
  churn_mon_t *m = arg;
  uint64_t last = 0, at = m->t0;
  for (unsigned i = 0; i < m->steps; i++) {
    uint64_t step_end = m->t0 + (uint64_t)((i + 1) * m->step_s * NS_PER_S);
    double hi = 0, lo = 0;
    for (int first = 1;; first = 0) {
      at += (uint64_t)(W6_DISK_SAMPLE_S * NS_PER_S);
      if (at > step_end)
        at = step_end;
      clock_sleep_until(at);
      double d = (double)sys_disk(m->sys);
      if (first || d > hi)
        hi = d;
      if (first || d < lo)
        lo = d;
      if (at == step_end)
        break;
    }
    uint64_t now = atomic_load(&m->tally);
    m->rates[i] = (double)(now - last) / m->step_s;
    m->disk[i] = hi;
    m->disk_low[i] = lo;
    last = now;
  }
  return NULL;
}

/* W6: W3's traffic for many minutes; the throughput must stay flat, disk
 * use bounded, and a restart afterwards about as quick as an empty one. */
static int churn(sysrun_t *sys, const wl_cfg_t *cfg, result_t *res) {
  char q[128], err[512], name[RES_NAME];
  unsigned n = conns_of(cfg);
  double minutes = cfg->churn_min > 0 ? cfg->churn_min : cfg->quick ? 0.05 : W6_MINUTES;
  double total_s = minutes * 60, stop_s, empty_s, after_s;
  int rc = -1;
  if (sys->external) {
    res->status = RES_SKIPPED;
    res_note(res, "skipped: W6 restarts the server, which needs one this run started");
    return 0;
  }
  if (sys_restart(sys, &stop_s, &empty_s, err, sizeof(err)))
    return failed(res, "restart", err);
  steady_t *s = calloc(1, sizeof(*s));
  churn_mon_t *m = calloc(1, sizeof(*m));
  if (!s || !m) {
    failed(res, "W6", "out of memory");
    goto fail;
  }
  queue_name(q, sizeof(q), "W6", cfg, -1);
  if (make_queue(sys, q, res) || open_conns(sys, s->conns, 2 * (size_t)n, res))
    goto fail;
  drv_queue_t dq = {q, NULL};
  m->sys = sys;
  m->steps = total_s / W6_STEP_S >= W6_MIN_STEPS ? (unsigned)(total_s / W6_STEP_S) : W6_MIN_STEPS;
  if (m->steps > W6_MAX_STEPS)
    m->steps = W6_MAX_STEPS;
  m->step_s = total_s / m->steps;
  m->t0 = clock_ns() + 50 * NS_PER_MS;
  uint64_t end = m->t0 + (uint64_t)(total_s * NS_PER_S);
  for (unsigned i = 0; i < n; i++) {
    s->p[i] = (flow_prod_t){.drv = sys->drv,
                            .conn = s->conns[i],
                            .q = &dq,
                            .count = UINT64_MAX,
                            .size = cfg->size,
                            .batch = 1,
                            .depth = 1,
                            .max_reqs = 1,
                            .deadline = end};
    s->k[i] = (flow_cons_t){.drv = sys->drv,
                            .conn = s->conns[n + i],
                            .q = &dq,
                            .count = UINT64_MAX,
                            .fetch = W3_FETCH,
                            .depth = W3_FETCH,
                            .max_reqs = 1,
                            .wait_ms = WAIT_MS,
                            .deadline = end,
                            .tally = &m->tally};
  }
  pthread_t mon;
  if (pthread_create(&mon, NULL, churn_sample, m) != 0) {
    failed(res, "W6", "pthread_create failed");
    close_conns(sys, s->conns, 2 * (size_t)n);
    goto fail;
  }
  char label[160];
  snprintf(label, sizeof(label), "%s W6 churn %.1f min", sys->def->label, minutes);
  progress_begin(label, 0);
  clock_sleep_until(m->t0);
  int frc = flow_run(s->p, n, s->k, n, err, sizeof(err));
  pthread_join(mon, NULL);
  progress_end();
  close_conns(sys, s->conns, 2 * (size_t)n);
  if (frc) {
    failed(res, "W6", err);
    goto fail;
  }
  if (sys_restart(sys, &stop_s, &after_s, err, sizeof(err))) {
    failed(res, "restart", err);
    goto fail;
  }
  /* Least-squares slope of the series, as a change over the whole run
   * relative to its mean. */
  double sx = 0, sy = 0, sxx = 0, sxy = 0, k = m->steps;
  for (unsigned i = 0; i < m->steps; i++) {
    snprintf(name, sizeof(name), "r%u_mps", i + 1);
    res_set(res, name, m->rates[i]);
    snprintf(name, sizeof(name), "r%u_disk_mb", i + 1);
    res_set(res, name, m->disk[i] / 1048576);
    snprintf(name, sizeof(name), "r%u_disk_low_mb", i + 1);
    res_set(res, name, m->disk_low[i] / 1048576);
    sx += i;
    sy += m->rates[i];
    sxx += (double)i * i;
    sxy += i * m->rates[i];
  }
  double slope = (k * sxy - sx * sy) / (k * sxx - sx * sx), mean = sy / k;
  double change = mean > 0 ? slope * (k - 1) / mean * 100 : 0;
  double dmax = 0;
  for (unsigned i = 0; i < m->steps; i++)
    if (m->disk[i] > dmax)
      dmax = m->disk[i];
  res_set(res, "step_s", m->step_s);
  res_set(res, "mean_mps", mean);
  res_set(res, "slope_pct", change);
  res_set(res, "disk_step2_mb", m->disk[1] / 1048576);
  res_set(res, "disk_max_mb", dmax / 1048576);
  res_set(res, "disk_ratio", m->disk[1] > 0 ? dmax / m->disk[1] : 0);
  res_set(res, "restart_empty_s", empty_s);
  res_set(res, "restart_after_s", after_s);
  res_set(res, "restart_ratio", empty_s > 0 ? after_s / empty_s : 0);
  res_note(res,
           "slope %+.1f%% (%s), disk peak max/step2 %.2fx (%s), restart after/empty %.2fx (%s)",
           change, change >= -10 && change <= 10 ? "ok" : "MISSED",
           m->disk[1] > 0 ? dmax / m->disk[1] : 0,
           m->disk[1] > 0 && dmax <= 2 * m->disk[1] ? "ok" : "MISSED",
           empty_s > 0 ? after_s / empty_s : 0, after_s <= 2 * empty_s ? "ok" : "MISSED");
  rc = 0;
fail:
  free(s);
  free(m);
  return rc;
}

/* Adds the server's commit figures (srv_*) when it reports them. */
static void server_figures(sysrun_t *sys, result_t *res) {
  char err[256];
  drv_server_stats_t st;
  if (!sys->drv->server_stats)
    return;
  drv_conn_t *c = sys->drv->connect(&sys->ep, err, sizeof(err));
  if (!c)
    return;
  if (sys->drv->server_stats(c, &st) == 0) {
    res_set(res, "srv_commits", st.commits);
    res_set(res, "srv_per_commit", st.per_commit);
    res_set(res, "srv_commit_p50_us", st.commit_p50_us);
    res_set(res, "srv_commit_p99_us", st.commit_p99_us);
    if (sys->external)
      res_note(res, "srv_* figures count since the server started");
  }
  sys->drv->close(c);
}

int wl_run(const char *name, sysrun_t *sys, const wl_cfg_t *cfg, result_t *res) {
  int rc;
  res->status = RES_OK;
  if (!strcmp(name, "W1"))
    rc = backlog_pair("W1", sys, cfg, res, 0);
  else if (!strcmp(name, "W2"))
    rc = backlog_pair("W2", sys, cfg, res, 1);
  else if (!strcmp(name, "W3"))
    rc = steady_run("W3", sys, cfg, res, 0);
  else if (!strcmp(name, "W3R"))
    rc = steady_run("W3R", sys, cfg, res, cfg->rate > 0 ? cfg->rate : cfg->quick ? 1000 : W3R_RATE);
  else if (!strcmp(name, "W4"))
    rc = fanout(sys, cfg, res);
  else if (!strcmp(name, "W5"))
    rc = scale(sys, cfg, res);
  else if (!strcmp(name, "W6"))
    rc = churn(sys, cfg, res);
  else
    return failed(res, name, "unknown workload");
  /* W5 and W6 restart the server, which resets its figures. */
  if (rc == 0 && res->status == RES_OK && wl_compared(name))
    server_figures(sys, res);
  return rc;
}
