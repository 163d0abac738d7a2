/* checker.c - see checker.h. Sorts every event by (message, request time),
 * then judges each message's group of events on its own. */
#include "checker.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const class_names[V_COUNT] = {
    "lost",      "unexpected",      "after-delete",   "rc-regression",
    "queue+dlq", "drain-duplicate", "partial-fanout",
};

static const char *const kind_names[] = {"?", "send", "publish", "receive", "delete"};
static const char *const outcome_names[] = {"ok", "FAIL", "in-doubt"};

const char *check_class_name(check_class_t c) {
  return (unsigned)c < V_COUNT ? class_names[c] : "?";
}

typedef struct collect {
  const hist_event_t **ev;
  size_t n;
} collect_t;

static void collect_one(const hist_event_t *e, void *ctx) {
  collect_t *c = ctx;
  c->ev[c->n++] = e;
}

static int by_key_time(const void *a, const void *b) {
  const hist_event_t *x = *(const hist_event_t *const *)a, *y = *(const hist_event_t *const *)b;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  if (x->t_req != y->t_req)
    return x->t_req < y->t_req ? -1 : 1;
  if (x->kind != y->kind)
    return x->kind < y->kind ? -1 : 1;
  return 0;
}

typedef struct judge {
  const hist_t *h;
  check_report_t *r;
  FILE *out;
  unsigned max_examples;
  unsigned shown[V_COUNT];
  const hist_event_t **g; /* the group: one message's events */
  size_t n;
} judge_t;

/* The home queue of an event: the source queue of a dead-letter queue. */
static int home_of(const hist_t *h, const hist_event_t *e) {
  if (e->queue < 0 || e->queue >= h->nqueues)
    return -1;
  int src = h->queues[e->queue].source;
  if (src < 0)
    return e->queue;
  if (e->kind == H_RECEIVE && e->src >= 0)
    return e->src;
  return src;
}

static void print_event(const judge_t *j, const hist_event_t *e) {
  const char *q = e->queue >= 0 && e->queue < j->h->nqueues ? j->h->queues[e->queue].name : "?";
  fprintf(j->out, "      %-8s %-7s q=%s%s%s t=%.3f..%.3fs",
          kind_names[e->kind <= H_DELETE ? e->kind : 0], outcome_names[e->outcome % 3], q,
          e->src >= 0 ? " src=" : "",
          e->src >= 0 && e->src < j->h->nqueues ? j->h->queues[e->src].name : "",
          (double)e->t_req / 1e6, (double)e->t_rep / 1e6);
  if (e->kind == H_RECEIVE || e->kind == H_DELETE)
    fprintf(j->out, " rc=%" PRIu64, e->rc);
  if (e->outcome == H_FAIL)
    fprintf(j->out, " err=%d", e->err);
  fprintf(j->out, " actor=%u%s\n", e->actor, e->drain ? " (drain)" : "");
}

static void violation(judge_t *j, check_class_t c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void violation(judge_t *j, check_class_t c, const char *fmt, ...) {
  j->r->violations[c]++;
  if (!j->out || j->shown[c] >= j->max_examples)
    return;
  j->shown[c]++;
  char tag[HIST_TAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  fprintf(j->out, "  VIOLATION %s: message %s: ", class_names[c], hist_key_str(j->g[0]->key, tag));
  vfprintf(j->out, fmt, ap);
  va_end(ap);
  fprintf(j->out, "\n    timeline:\n");
  for (size_t i = 0; i < j->n; i++)
    print_event(j, j->g[i]);
}

/* Judges the events of one message in one home queue t. */
static void judge_home(judge_t *j, const hist_event_t *send, int t) {
  const hist_t *h = j->h;
  int dlq = h->queues[t].dlq;
  int drained_q = 0, drained_dlq = 0, del_maybe = 0;
  for (size_t i = 0; i < j->n; i++) {
    const hist_event_t *e = j->g[i];
    if (e->kind == H_DELETE && home_of(h, e) == t) {
      if (e->outcome != H_FAIL)
        del_maybe = 1;
    }
    if (e->kind != H_RECEIVE || home_of(h, e) != t)
      continue;
    if (e->drain && e->queue == t && drained_q++)
      violation(j, V_DRAIN_DUPLICATE, "the final drain got it twice from %s", h->queues[t].name);
    if (e->drain && e->queue == dlq && drained_dlq++)
      violation(j, V_DRAIN_DUPLICATE, "the final drain got it twice from %s", h->queues[dlq].name);
    int after_del = 0, back = 0;
    const hist_event_t *regress = NULL;
    for (size_t k = 0; k < j->n; k++) {
      const hist_event_t *p = j->g[k];
      if (p == e || p->t_rep >= e->t_req)
        continue; /* only what completed before e began */
      if (p->kind == H_DELETE && p->outcome == H_OK && home_of(h, p) == t)
        after_del = 1;
      if (p->kind == H_RECEIVE && home_of(h, p) == t) {
        if (e->rc <= p->rc && (!regress || p->rc > regress->rc))
          regress = p;
        if (dlq >= 0 && p->queue == dlq && e->queue == t)
          back = 1;
      }
    }
    if (after_del)
      violation(j, V_AFTER_DELETE,
                "delivered from %s (rc %" PRIu64 ") after its delete was acknowledged",
                h->queues[e->queue].name, e->rc);
    if (regress)
      violation(j, V_RC_REGRESSION,
                "receive count %" PRIu64 " after an earlier completed receive with %" PRIu64, e->rc,
                regress->rc);
    if (back)
      violation(j, V_QUEUE_AND_DLQ, "back in %s after a delivery from its dead-letter queue",
                h->queues[t].name);
  }
  if (drained_q && drained_dlq)
    violation(j, V_QUEUE_AND_DLQ, "the final drain found it in both %s and %s", h->queues[t].name,
              h->queues[dlq].name);
  if (send && send->outcome == H_OK && !drained_q && !drained_dlq && !del_maybe)
    violation(j, V_LOST, "acknowledged %s to %s, not found by the final drain and never deleted",
              kind_names[send->kind], h->queues[t].name);
}

static void judge_group(judge_t *j) {
  const hist_t *h = j->h;
  const hist_event_t *send = NULL;
  int sends = 0;
  for (size_t i = 0; i < j->n; i++) {
    const hist_event_t *e = j->g[i];
    if (e->kind == H_SEND || e->kind == H_PUBLISH) {
      sends++;
      if (!send)
        send = e;
      if (e->kind == H_SEND)
        j->r->sends[e->outcome % 3]++;
      else
        j->r->publishes[e->outcome % 3]++;
    } else if (e->kind == H_RECEIVE) {
      if (e->drain)
        j->r->drained++;
      else {
        j->r->receives++;
        if (e->rc > 1)
          j->r->redeliveries++;
        if (e->queue >= 0 && h->queues[e->queue].source >= 0)
          j->r->dlq_receives++;
      }
    } else if (e->kind == H_DELETE) {
      j->r->deletes[e->outcome % 3]++;
    }
  }
  if (send)
    j->r->messages++;
  if (j->g[0]->key == HIST_KEY_BAD) {
    for (size_t i = 0; i < j->n; i++)
      if (j->g[i]->kind == H_RECEIVE)
        violation(j, V_UNEXPECTED, "a delivered body carries no valid tag (from %s)",
                  h->queues[j->g[i]->queue].name);
    return;
  }
  if (sends > 1)
    violation(j, V_UNEXPECTED, "the load sent this tag %d times (harness bug)", sends);
  uint64_t targets = send ? send->targets : 0;
  int delivered = 0;
  for (size_t i = 0; i < j->n; i++) {
    const hist_event_t *e = j->g[i];
    if (e->kind != H_RECEIVE)
      continue;
    delivered = 1;
    int t = home_of(h, e);
    if (!send)
      violation(j, V_UNEXPECTED, "delivered from %s but never sent", h->queues[e->queue].name);
    else if (send->outcome == H_FAIL)
      violation(j, V_UNEXPECTED, "delivered from %s but its %s was refused (err %d)",
                h->queues[e->queue].name, kind_names[send->kind], send->err);
    else if (t < 0 || !(targets >> t & 1))
      violation(j, V_UNEXPECTED, "delivered from %s, which it was not sent to",
                h->queues[e->queue].name);
  }
  if (!send)
    return;
  int ntargets = 0, seen = 0;
  for (int t = 0; t < h->nqueues; t++) {
    if (!(targets >> t & 1))
      continue;
    ntargets++;
    int s = 0;
    for (size_t i = 0; i < j->n; i++)
      if (j->g[i]->kind == H_RECEIVE && home_of(h, j->g[i]) == t)
        s = 1;
    seen += s;
    judge_home(j, send, t);
  }
  if (send->kind == H_PUBLISH && send->outcome == H_UNKNOWN && delivered && seen < ntargets)
    violation(j, V_PARTIAL_FANOUT, "a publish in doubt reached %d of its %d queues", seen,
              ntargets);
}

long check_run(const hist_t *h, check_report_t *r, FILE *out, unsigned max_examples) {
  memset(r, 0, sizeof *r);
  size_t total = hist_count(h);
  collect_t c = {calloc(total ? total : 1, sizeof *c.ev), 0};
  if (!c.ev)
    return -1;
  hist_each(h, collect_one, &c);
  qsort(c.ev, c.n, sizeof *c.ev, by_key_time);
  judge_t j = {.h = h, .r = r, .out = out, .max_examples = max_examples};
  for (size_t i = 0; i < c.n;) {
    size_t k = i;
    while (k < c.n && c.ev[k]->key == c.ev[i]->key)
      k++;
    j.g = &c.ev[i];
    j.n = k - i;
    judge_group(&j);
    i = k;
  }
  free(c.ev);
  long v = 0;
  for (int i = 0; i < V_COUNT; i++)
    v += (long)r->violations[i];
  return v;
}

void check_print(const check_report_t *r, FILE *out) {
  fprintf(out,
          "history: %" PRIu64 " messages; sends ok/refused/in-doubt %" PRIu64 "/%" PRIu64
          "/%" PRIu64 "; publishes %" PRIu64 "/%" PRIu64 "/%" PRIu64 "\n",
          r->messages, r->sends[0], r->sends[1], r->sends[2], r->publishes[0], r->publishes[1],
          r->publishes[2]);
  fprintf(out,
          "history: %" PRIu64 " deliveries (%" PRIu64 " redeliveries, %" PRIu64
          " from dead-letter queues), %" PRIu64 " drained; deletes ok/refused/in-doubt %" PRIu64
          "/%" PRIu64 "/%" PRIu64 "\n",
          r->receives, r->redeliveries, r->dlq_receives, r->drained, r->deletes[0], r->deletes[1],
          r->deletes[2]);
  fprintf(out, "checks:");
  for (int i = 0; i < V_COUNT; i++)
    fprintf(out, " %s=%" PRIu64, class_names[i], r->violations[i]);
  fprintf(out, "\n");
}
