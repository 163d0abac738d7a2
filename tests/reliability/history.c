/* history.c - see history.h. */
#include "history.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Events per chunk: 4096 x 64 bytes = 256 KiB, few allocations per run. */
#define CHUNK_EVENTS 4096

typedef struct chunk {
  struct chunk *next;
  size_t n;
  hist_event_t ev[CHUNK_EVENTS];
} chunk_t;

struct hist_log {
  hist_log_t *next;
  uint32_t actor;
  chunk_t *head, *tail;
};

hist_t *hist_new(void) {
  hist_t *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  pthread_mutex_init(&h->mu, NULL);
  return h;
}

void hist_free(hist_t *h) {
  if (!h)
    return;
  hist_log_t *l = h->logs;
  while (l) {
    hist_log_t *ln = l->next;
    chunk_t *c = l->head;
    while (c) {
      chunk_t *cn = c->next;
      free(c);
      c = cn;
    }
    free(l);
    l = ln;
  }
  pthread_mutex_destroy(&h->mu);
  free(h);
}

int hist_add_queue(hist_t *h, const char *name, int dlq_of) {
  if (h->nqueues >= HIST_MAX_QUEUES || strlen(name) > HIST_NAME_MAX)
    return -1;
  if (dlq_of >= h->nqueues)
    return -1;
  int i = h->nqueues++;
  hist_queue_t *q = &h->queues[i];
  snprintf(q->name, sizeof q->name, "%s", name);
  q->dlq = -1;
  q->source = dlq_of;
  if (dlq_of >= 0)
    h->queues[dlq_of].dlq = i;
  return i;
}

int hist_queue_index(const hist_t *h, const char *name, size_t n) {
  for (int i = 0; i < h->nqueues; i++)
    if (strlen(h->queues[i].name) == n && memcmp(h->queues[i].name, name, n) == 0)
      return i;
  return -1;
}

hist_log_t *hist_log_new(hist_t *h, uint32_t actor) {
  hist_log_t *l = calloc(1, sizeof *l);
  if (!l)
    return NULL;
  l->actor = actor;
  pthread_mutex_lock(&h->mu);
  l->next = h->logs;
  h->logs = l;
  pthread_mutex_unlock(&h->mu);
  return l;
}

hist_event_t *hist_add(hist_log_t *l) {
  if (!l->tail || l->tail->n == CHUNK_EVENTS) {
    chunk_t *c = malloc(sizeof *c);
    if (!c)
      return NULL;
    c->next = NULL;
    c->n = 0;
    if (l->tail)
      l->tail->next = c;
    else
      l->head = c;
    l->tail = c;
  }
  hist_event_t *e = &l->tail->ev[l->tail->n++];
  memset(e, 0, sizeof *e);
  e->src = -1;
  e->queue = -1;
  e->actor = l->actor;
  return e;
}

void hist_each(const hist_t *h, void (*fn)(const hist_event_t *ev, void *ctx), void *ctx) {
  pthread_mutex_lock((pthread_mutex_t *)&h->mu);
  for (const hist_log_t *l = h->logs; l; l = l->next)
    for (const chunk_t *c = l->head; c; c = c->next)
      for (size_t i = 0; i < c->n; i++)
        fn(&c->ev[i], ctx);
  pthread_mutex_unlock((pthread_mutex_t *)&h->mu);
}

size_t hist_count(const hist_t *h) {
  size_t n = 0;
  pthread_mutex_lock((pthread_mutex_t *)&h->mu);
  for (const hist_log_t *l = h->logs; l; l = l->next)
    for (const chunk_t *c = l->head; c; c = c->next)
      n += c->n;
  pthread_mutex_unlock((pthread_mutex_t *)&h->mu);
  return n;
}

uint64_t hist_key(char kind, uint32_t producer, uint64_t seq) {
  uint64_t k = (uint64_t)(kind == 't') << 62 | (uint64_t)(producer & HIST_MAX_PRODUCER) << 40 |
               (seq & HIST_MAX_SEQ);
  return k;
}

int hist_body(char *buf, size_t cap, char kind, uint32_t producer, uint64_t seq, size_t pad) {
  if (producer > HIST_MAX_PRODUCER || seq > HIST_MAX_SEQ)
    return -1;
  int n = snprintf(buf, cap, "%c%" PRIu32 "-%" PRIu64, kind, producer, seq);
  if (n < 0 || (size_t)n >= cap)
    return -1;
  if (pad) {
    if ((size_t)n + 1 + pad >= cap)
      return -1;
    buf[n++] = '|';
    /* Filler derived from the tag, so a body cut or mixed with another one
     * would show in a byte-for-byte comparison. */
    for (size_t i = 0; i < pad; i++)
      buf[n++] = (char)('a' + (seq + i * 7 + producer) % 26);
    buf[n] = '\0';
  }
  return n;
}

/* Parses decimal digits at p (end e) into *v; returns the pointer after them
 * or NULL if there are none or the value exceeds max. */
static const char *parse_num(const char *p, const char *e, uint64_t max, uint64_t *v) {
  const char *s = p;
  uint64_t x = 0;
  while (p < e && *p >= '0' && *p <= '9') {
    x = x * 10 + (uint64_t)(*p - '0');
    if (x > max)
      return NULL;
    p++;
  }
  if (p == s || (p - s > 1 && *s == '0'))
    return NULL;
  *v = x;
  return p;
}

uint64_t hist_parse_body(const void *body, size_t len) {
  const char *p = body, *e = p + len;
  if (len < 4 || (p[0] != 'p' && p[0] != 't'))
    return HIST_KEY_BAD;
  char kind = p[0];
  uint64_t prod, seq;
  p = parse_num(p + 1, e, HIST_MAX_PRODUCER, &prod);
  if (!p || p == e || *p != '-')
    return HIST_KEY_BAD;
  p = parse_num(p + 1, e, HIST_MAX_SEQ, &seq);
  if (!p || (p != e && *p != '|'))
    return HIST_KEY_BAD;
  if (p != e) {
    /* the padding must be exactly what hist_body wrote */
    size_t pad = (size_t)(e - p) - 1;
    if (pad == 0)
      return HIST_KEY_BAD;
    for (size_t i = 0; i < pad; i++)
      if (p[1 + i] != (char)('a' + (seq + i * 7 + prod) % 26))
        return HIST_KEY_BAD;
  }
  return hist_key(kind, (uint32_t)prod, seq);
}

const char *hist_key_str(uint64_t key, char *buf) {
  if (key == HIST_KEY_BAD) {
    snprintf(buf, HIST_TAG_MAX, "<bad body>");
    return buf;
  }
  snprintf(buf, HIST_TAG_MAX, "%c%" PRIu64 "-%" PRIu64, (key >> 62) & 1 ? 't' : 'p',
           (key >> 40) & HIST_MAX_PRODUCER, key & HIST_MAX_SEQ);
  return buf;
}
