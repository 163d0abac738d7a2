/* broker.c - see broker.h. */
#include "broker.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counter values are reserved in blocks so the persisted reservation is
 * written once per 65,536 messages, not per message. */
#define COUNTER_BLOCK 65536u
/* Prefetch looks this many messages ahead of a queue's head for bodies that
 * are on disk only. */
#define PREFETCH_AHEAD 64u
/* Redrive moves a tenth of its per-second rate every 100 ms. */
#define REDRIVE_STEP_MS 100u

typedef struct redrive {
  heap_node_t hn; /* next step */
  queue_t *dlq;
  uint32_t dst_qid; /* 0: each message's source */
  uint32_t rate;
  uint64_t moved, total;
  int64_t started_ms; /* wall */
  int state;          /* 0 none, 1 running, 2 completed, 3 cancelled, 4 failed */
  char msg[REDRIVE_MSG_MAX + 1];
} redrive_t;

static const char *const redrive_states[] = {"none", "running", "completed", "cancelled", "failed"};

typedef struct shref {
  uint64_t body_id;
  uint32_t refs;
  struct shref *next;
} shref_t;

struct broker {
  broker_cfg_t cfg;
  journal_t j;
  ids_t *ids;
  broker_cbs_t cbs;
  heap_t heap;
  /* queues sorted by name, and a qid -> queue table */
  queue_t **byname;
  uint32_t nqueues, capqueues;
  queue_t **byid;
  uint32_t nbyid;
  uint64_t next, reserved; /* message counter and its persisted reservation */
  uint32_t next_qid;
  queue_t *ready; /* queues with waiters and visible messages */
  uint64_t cached_bytes, total_bytes, total_msgs;
  uint64_t cold; /* messages whose body is on disk only: prefetch has work */
  /* reference counts of bodies shared by fan-out copies (only those), rebuilt
   * at recovery from the index records' shared flag */
  struct shref **shared;
  uint32_t nshared_slots, nshared;
  broker_stats_t st;
  uint64_t dl_ms;    /* the millisecond dl_moved counts dead-letter moves in */
  uint32_t dl_moved; /* moves made in it (DLQ_MOVES_PER_MS) */
  /* deleted queues that messages were dead-lettered from, by name (META
   * "G"): a queue created with such a name takes the old id, so those
   * messages find their source again (SQS names a source by its ARN) */
  struct grave *graves;
  uint32_t ngraves, capgraves;
};

struct grave {
  char name[GBX_MAX_NAME + 1];
  uint32_t qid;
  uint8_t used; /* a restored message names it as its source */
};

#define J_PUT(b, cf, k, kl, v, vl)   (b)->j.put((b)->j.ctx, cf, k, kl, v, vl)
#define J_DEL(b, cf, k, kl)          (b)->j.del((b)->j.ctx, cf, k, kl)
#define J_SDEL(b, cf, k, kl)         (b)->j.sdel((b)->j.ctx, cf, k, kl)
#define J_RANGE(b, cf, s, sl, e, el) (b)->j.delrange((b)->j.ctx, cf, s, sl, e, el)

static void *xcalloc(size_t n, size_t sz) {
  void *p = calloc(n, sz);
  /* Small internal allocations: running out of memory here leaves no
   * consistent way to continue, so fail loudly (Redis does the same). */
  if (!p)
    abort();
  return p;
}

broker_t *broker_new(const broker_cfg_t *cfg, const journal_t *j, ids_t *ids,
                     const broker_cbs_t *cbs) {
  broker_t *b = calloc(1, sizeof(*b));
  if (!b)
    return NULL;
  b->cfg = *cfg;
  b->j = *j;
  b->ids = ids;
  b->cbs = *cbs;
  heap_init(&b->heap);
  b->next = b->reserved = 1;
  b->next_qid = 1;
  return b;
}

void broker_free(broker_t *b) {
  if (!b)
    return;
  for (uint32_t i = 0; i < b->nshared_slots; i++)
    for (struct shref *e = b->shared[i], *nx; e; e = nx) {
      nx = e->next;
      free(e);
    }
  free(b->shared);
  for (uint32_t i = 0; i < b->nqueues; i++) {
    free(b->byname[i]->redrive);
    queue_free(b->byname[i]);
  }
  free(b->byname);
  free(b->byid);
  free(b->graves);
  heap_free(&b->heap);
  free(b);
}

int64_t broker_wall(const broker_t *b, uint64_t now) {
  return (int64_t)now + b->cfg.wall_offset;
}
static uint64_t to_mono(const broker_t *b, int64_t wall) {
  int64_t m = wall - b->cfg.wall_offset;
  return m < 0 ? 0 : (uint64_t)m;
}
ids_t *broker_ids(broker_t *b) {
  return b->ids;
}

/* ---- shared body reference counts ---- */

static shref_t **sh_slot(broker_t *b, uint64_t body_id) {
  if (!b->nshared_slots)
    return NULL;
  uint32_t h = (uint32_t)((body_id * 0x9E3779B97F4A7C15ull) >> 40) & (b->nshared_slots - 1);
  shref_t **p = &b->shared[h];
  while (*p && (*p)->body_id != body_id)
    p = &(*p)->next;
  return p;
}

static void sh_add(broker_t *b, uint64_t body_id, uint32_t refs) {
  if (b->nshared + 1 > b->nshared_slots) {
    uint32_t n = b->nshared_slots ? b->nshared_slots * 2 : 64;
    shref_t **t = xcalloc(n, sizeof(*t));
    for (uint32_t i = 0; i < b->nshared_slots; i++) {
      for (shref_t *e = b->shared[i], *nx; e; e = nx) {
        nx = e->next;
        uint32_t h = (uint32_t)((e->body_id * 0x9E3779B97F4A7C15ull) >> 40) & (n - 1);
        e->next = t[h];
        t[h] = e;
      }
    }
    free(b->shared);
    b->shared = t;
    b->nshared_slots = n;
  }
  shref_t **p = sh_slot(b, body_id);
  if (*p) {
    (*p)->refs += refs;
    return;
  }
  shref_t *e = xcalloc(1, sizeof(*e));
  e->body_id = body_id;
  e->refs = refs;
  *p = e;
  b->nshared++;
}

/* Drops one reference; returns the references left. */
static uint32_t sh_release(broker_t *b, uint64_t body_id) {
  shref_t **p = sh_slot(b, body_id);
  if (!p || !*p)
    return 0; /* not shared after all */
  if (--(*p)->refs)
    return (*p)->refs;
  shref_t *e = *p;
  *p = e->next;
  free(e);
  b->nshared--;
  return 0;
}

/* ---- counters ---- */

static uint64_t next_counter(broker_t *b) {
  /* Recovery refuses stored values above RECORDS_COUNTER_MAX, so the
   * counter starts at most there and needs another 2^63 ids (~292,000
   * years at a million a second) to get here: reaching it is our bug, and
   * wrapping would issue ids again. */
  if (b->next >= UINT64_MAX - COUNTER_BLOCK) {
    fprintf(stderr, "%s:%d: message id counter exhausted (%llu)\n", __FILE__, __LINE__,
            (unsigned long long)b->next);
    abort();
  }
  if (b->next >= b->reserved) {
    uint8_t v[8];
    b->reserved = b->next + COUNTER_BLOCK;
    be64_put(v, b->reserved);
    J_PUT(b, STORE_CF_META, "C", 1, v, 8);
  }
  return b->next++;
}

int broker_restore_counter(broker_t *b, uint64_t next, uint32_t next_qid) {
  if (next > RECORDS_COUNTER_MAX || next_qid > RECORDS_QID_MAX + 1u)
    return -1;
  if (next > b->next)
    b->next = b->reserved = next;
  if (next_qid > b->next_qid)
    b->next_qid = next_qid;
  return 0;
}

/* ---- queue registry ---- */

static int name_cmp(const char *a, size_t al, const char *bn) {
  size_t bl = strlen(bn);
  int c = memcmp(a, bn, al < bl ? al : bl);
  if (c)
    return c;
  return al < bl ? -1 : al > bl ? 1 : 0;
}

/* Index of the first queue whose name is >= name. */
static uint32_t lower_bound(const broker_t *b, const char *name, size_t len) {
  uint32_t lo = 0, hi = b->nqueues;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (name_cmp(name, len, b->byname[mid]->name) > 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

queue_t *broker_queue(const broker_t *b, const char *name, size_t len) {
  uint32_t i = lower_bound(b, name, len);
  if (i < b->nqueues && name_cmp(name, len, b->byname[i]->name) == 0)
    return b->byname[i];
  return NULL;
}

queue_t *broker_queue_by_id(const broker_t *b, uint32_t qid) {
  if (!b->nbyid)
    return NULL;
  for (uint32_t j = qid & (b->nbyid - 1);; j = (j + 1) & (b->nbyid - 1)) {
    queue_t *q = b->byid[j];
    if (!q)
      return NULL;
    if (q->rec.qid == qid)
      return q;
  }
}

static void byid_rebuild(broker_t *b) {
  uint32_t n = 16;
  while (n < b->nqueues * 2 + 2)
    n *= 2;
  free(b->byid);
  b->byid = xcalloc(n, sizeof(*b->byid));
  b->nbyid = n;
  for (uint32_t i = 0; i < b->nqueues; i++) {
    queue_t *q = b->byname[i];
    uint32_t j = q->rec.qid & (n - 1);
    while (b->byid[j])
      j = (j + 1) & (n - 1);
    b->byid[j] = q;
  }
}

static void registry_add(broker_t *b, queue_t *q) {
  if (b->nqueues == b->capqueues) {
    b->capqueues = b->capqueues ? b->capqueues * 2 : 16;
    queue_t **a = realloc(b->byname, b->capqueues * sizeof(*a));
    if (!a)
      abort();
    b->byname = a;
  }
  uint32_t i = lower_bound(b, q->name, strlen(q->name));
  memmove(b->byname + i + 1, b->byname + i, (b->nqueues - i) * sizeof(*b->byname));
  b->byname[i] = q;
  b->nqueues++;
  if (b->nbyid < b->nqueues * 2 + 2) { /* grown by doubling: a restore of n queues is O(n) */
    byid_rebuild(b);
    return;
  }
  uint32_t j = q->rec.qid & (b->nbyid - 1);
  while (b->byid[j])
    j = (j + 1) & (b->nbyid - 1);
  b->byid[j] = q;
}

static void registry_del(broker_t *b, queue_t *q) {
  uint32_t i = lower_bound(b, q->name, strlen(q->name));
  assert(i < b->nqueues && b->byname[i] == q);
  memmove(b->byname + i, b->byname + i + 1, (b->nqueues - i - 1) * sizeof(*b->byname));
  b->nqueues--;
  byid_rebuild(b);
}

static void persist_queue(broker_t *b, const queue_t *q) {
  gbx_buf_t v;
  uint8_t k[1 + GBX_MAX_NAME];
  size_t nl = strlen(q->name);
  gbx_buf_init(&v);
  if (qrec_encode(&v, &q->rec) != 0)
    abort();
  k[0] = 'Q';
  memcpy(k + 1, q->name, nl);
  J_PUT(b, STORE_CF_META, k, 1 + nl, v.data, v.len);
  gbx_buf_free(&v);
}

gbx_err_t broker_restore_queue(broker_t *b, const char *name, qrec_t *r) {
  queue_t *q = queue_new(name);
  if (!q)
    return GBX_E_NOMEM;
  q->rec = *r;
  memset(r, 0, sizeof(*r));
  heap_node_init(&q->retention_hn, HK_RETENTION);
  heap_node_init(&q->dlq_more_hn, HK_DLQ_MORE);
  registry_add(b, q);
  if (q->rec.qid >= b->next_qid)
    b->next_qid = q->rec.qid + 1;
  return GBX_E_OK;
}

/* ---- deadlines and readiness ---- */

static void arm_retention(broker_t *b, queue_t *q) {
  const msg_t *oldest = queue_oldest(q);
  if (!oldest) {
    heap_remove(&b->heap, &q->retention_hn);
    return;
  }
  int64_t exp = oldest->sent_ms + (int64_t)q->rec.a.retention * 1000;
  if (heap_set(&b->heap, &q->retention_hn, to_mono(b, exp)) != 0)
    abort();
}

static void mark_ready(broker_t *b, queue_t *q) {
  if (q->w_head && q->nvisible && !q->on_ready) {
    q->on_ready = 1;
    q->ready_next = b->ready;
    b->ready = q;
  }
}

static void msg_persist(broker_t *b, const queue_t *q, const msg_t *m) {
  idxrec_t r = {0};
  uint8_t k[IDX_KEY_LEN], v[IDX_REC_LEN];
  r.idn = m->idn;
  r.body_id = m->body_id;
  r.sent_ms = m->sent_ms;
  if (m->rc) {
    r.first_ms = m->sent_ms + m->first_d;
    r.recv_ms = m->sent_ms + m->recv_d;
  }
  r.deadline_ms = heap_node_linked(&m->hn) ? broker_wall(b, m->hn.key) : 0;
  r.rc = m->rc;
  r.size = m->size;
  r.src_qid = m->src_qid;
  r.flags = (uint8_t)(((m->state & MSG_SHARED) ? IDX_FLAG_SHARED : 0) |
                      ((m->state & MSG_ENVELOPE) ? IDX_FLAG_ENVELOPE : 0));
  idx_key(k, q->rec.qid, m->seq);
  idx_encode(v, &r);
  J_PUT(b, STORE_CF_IDX, k, sizeof(k), v, sizeof(v));
}

static void body_drop(broker_t *b, msg_t *m) {
  uint8_t k[BODY_KEY_LEN];
  if ((m->state & MSG_SHARED) && sh_release(b, m->body_id) > 0)
    return; /* other copies use it */
  body_key(k, m->body_id);
  /* Bodies are written exactly once, so SingleDelete is safe and leaves a
   * tombstone that vanishes at its first compaction with the put. */
  J_SDEL(b, STORE_CF_BODY, k, sizeof(k));
}

static void uncache(broker_t *b, msg_t *m) {
  if (m->blob) {
    b->cached_bytes -= m->blob->len;
    blob_unref(m->blob);
    m->blob = NULL;
  }
}

/* Removes m from q for good: heap, lists, store (index and body). */
static void msg_destroy(broker_t *b, queue_t *q, msg_t *m, int journal) {
  uint8_t k[IDX_KEY_LEN];
  int was_head = queue_oldest(q) == m;
  heap_remove(&b->heap, &m->hn);
  queue_remove(q, m);
  if (journal) {
    idx_key(k, q->rec.qid, m->seq);
    J_DEL(b, STORE_CF_IDX, k, sizeof(k));
    body_drop(b, m);
  }
  b->total_bytes -= m->size;
  b->total_msgs--;
  if (!m->blob)
    b->cold--;
  uncache(b, m);
  free(m);
  if (was_head)
    arm_retention(b, q);
}

static void prefetch(broker_t *b, queue_t *q) {
  if (!b->cbs.fetch || !b->cold)
    return;
  uint32_t i = 0;
  for (msg_t *m = q->vis_head; m && i < PREFETCH_AHEAD; m = m->next, i++) {
    if (m->blob || (m->state & MSG_FETCHING))
      continue;
    if (b->cached_bytes + m->size > b->cfg.body_cache_bytes)
      break;
    m->state |= MSG_FETCHING;
    b->cbs.fetch(b->cbs.ctx, q->rec.qid, m->seq, m->body_id);
  }
}

/* ---- graves: the ids of deleted dead-letter sources ---- */

static struct grave *grave_find(broker_t *b, const char *name, uint32_t qid) {
  for (uint32_t i = 0; i < b->ngraves; i++)
    if (name ? !strcmp(b->graves[i].name, name) : b->graves[i].qid == qid)
      return &b->graves[i];
  return NULL;
}

static void grave_add(broker_t *b, const char *name, uint32_t qid) {
  if (b->ngraves == b->capgraves) {
    b->capgraves = b->capgraves ? 2 * b->capgraves : 8;
    struct grave *g = realloc(b->graves, b->capgraves * sizeof(*g));
    if (!g)
      abort();
    b->graves = g;
  }
  struct grave *g = &b->graves[b->ngraves++];
  snprintf(g->name, sizeof(g->name), "%s", name);
  g->qid = qid;
  g->used = 0;
}

static size_t grave_key(uint8_t *k, const char *name) {
  size_t nl = strlen(name);
  k[0] = 'G';
  memcpy(k + 1, name, nl);
  return 1 + nl;
}

gbx_err_t broker_restore_grave(broker_t *b, const char *name, uint32_t qid) {
  if (qid == 0 || qid >= b->next_qid || broker_queue_by_id(b, qid) || grave_find(b, NULL, qid) ||
      grave_find(b, name, 0) || broker_queue(b, name, strlen(name)))
    return GBX_E_INTERNAL;
  grave_add(b, name, qid);
  return GBX_E_OK;
}

void broker_prune_graves(broker_t *b) {
  for (uint32_t i = 0; i < b->ngraves;) {
    if (b->graves[i].used) {
      i++;
      continue;
    }
    uint8_t k[1 + GBX_MAX_NAME];
    J_DEL(b, STORE_CF_META, k, grave_key(k, b->graves[i].name));
    b->graves[i] = b->graves[--b->ngraves];
  }
}

int broker_restore_msg(broker_t *b, uint32_t qid, uint64_t seq, const idxrec_t *r, uint64_t now) {
  queue_t *q = broker_queue_by_id(b, qid);
  if (!q)
    return -1;
  if (r->src_qid) {
    queue_t *src = broker_queue_by_id(b, r->src_qid);
    struct grave *g = src ? NULL : grave_find(b, NULL, r->src_qid);
    if (src)
      src->dl_source = 1;
    if (g)
      g->used = 1;
  }
  msg_t *m = xcalloc(1, sizeof(*m));
  heap_node_init(&m->hn, HK_MSG);
  m->seq = seq;
  m->idn = r->idn;
  m->body_id = r->body_id;
  m->sent_ms = r->sent_ms;
  m->rc = r->rc;
  if (r->rc) {
    int64_t fd = r->first_ms - r->sent_ms, rd = r->recv_ms - r->sent_ms;
    m->first_d = fd < 0 ? 0 : fd > UINT32_MAX ? UINT32_MAX : (uint32_t)fd;
    m->recv_d = rd < 0 ? 0 : rd > UINT32_MAX ? UINT32_MAX : (uint32_t)rd;
  }
  m->size = r->size;
  m->src_qid = r->src_qid;
  m->qid = qid;
  uint64_t dl = r->deadline_ms ? to_mono(b, r->deadline_ms) : 0;
  /* a wall clock set back since the record was written must not hide a
   * message for longer than any visibility timeout or delay could */
  uint64_t most = now + 1000ull * (r->rc ? GBX_VIS_MAX : GBX_DELAY_MAX);
  if (dl > most)
    dl = most;
  if (dl > now) {
    m->state = r->rc ? MSG_INFLIGHT : MSG_DELAYED;
    if (heap_insert(&b->heap, &m->hn, dl) != 0)
      abort();
  } else {
    m->state = MSG_VISIBLE;
  }
  if (r->flags & IDX_FLAG_ENVELOPE)
    m->state |= MSG_ENVELOPE;
  if (r->flags & IDX_FLAG_SHARED) {
    m->state |= MSG_SHARED;
    sh_add(b, m->body_id, 1);
  }
  if (queue_add(q, m) != 0)
    abort();
  b->total_bytes += m->size;
  b->total_msgs++;
  b->cold++;
  if (seq >= b->next)
    b->next = b->reserved = seq + 1;
  if (r->idn >= b->next)
    b->next = b->reserved = r->idn + 1;
  if (r->body_id >= b->next)
    b->next = b->reserved = r->body_id + 1;
  return 0;
}

void broker_restore_done(broker_t *b, uint64_t now) {
  for (uint32_t i = 0; i < b->nqueues; i++) {
    arm_retention(b, b->byname[i]);
    prefetch(b, b->byname[i]);
  }
}

/* ---- queues ---- */

/* Would setting q's dead-letter queue to dlq form a cycle? */
static int dlq_cycle(broker_t *b, const char *qname, const char *dlq) {
  /* follow the chain from dlq; each queue has at most one DLQ, so at most
   * nqueues steps reach either the end or a loop */
  const char *cur = dlq;
  for (uint32_t steps = 0; cur[0] && steps <= b->nqueues; steps++) {
    if (strcmp(cur, qname) == 0)
      return 1;
    queue_t *n = broker_queue(b, cur, strlen(cur));
    if (!n)
      return 0;
    cur = n->rec.a.dlq;
  }
  return cur[0] != 0;
}

/* The queue record's decoder refuses longer policies: a rewritten one
 * (RemovePermission re-prints it) must not get past that on the way in. */
static gbx_err_t check_policy_sizes(const qattrs_t *a, gbx_errbuf_t *eb) {
  if ((a->policy && strlen(a->policy) > GBX_MAX_POLICY) ||
      (a->redrive_allow && strlen(a->redrive_allow) > GBX_MAX_POLICY))
    return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE, "a queue policy is at most %u bytes",
                          GBX_MAX_POLICY);
  return GBX_E_OK;
}

static gbx_err_t check_dlq(broker_t *b, const char *qname, const qattrs_t *a, gbx_errbuf_t *eb) {
  if (!a->dlq[0])
    return GBX_E_OK;
  if (!broker_queue(b, a->dlq, strlen(a->dlq)))
    return gbx_errbuf_set(eb, GBX_E_DLQ_NOT_FOUND, "dead-letter queue '%s' does not exist", a->dlq);
  if (dlq_cycle(b, qname, a->dlq))
    return gbx_errbuf_set(eb, GBX_E_REDRIVE_CYCLE, "dead-letter queue '%s' leads back to '%s'",
                          a->dlq, qname);
  return GBX_E_OK;
}

gbx_err_t broker_queue_create(broker_t *b, const char *name, const qattrs_t *a, const qtag_t *tags,
                              uint32_t ntags, uint64_t now, int *created, gbx_errbuf_t *eb) {
  size_t nl = strlen(name);
  queue_t *q = broker_queue(b, name, nl);
  *created = 0;
  if (q) {
    if (!qattrs_equal(&q->rec.a, a))
      return gbx_errbuf_set(eb, GBX_E_QUEUE_EXISTS, "queue '%s' exists with different attributes",
                            name);
    return GBX_E_OK;
  }
  gbx_err_t e = check_dlq(b, name, a, eb);
  if (!e)
    e = check_policy_sizes(a, eb);
  if (e)
    return e;
  /* A new name takes a new id (a deleted dead-letter source's name takes
   * its old one, below); after 4 billion of them there are none left. */
  if (b->next_qid > RECORDS_QID_MAX)
    return gbx_errbuf_set(eb, GBX_E_INTERNAL, "no queue ids left: this store created %u queues",
                          RECORDS_QID_MAX);
  q = queue_new(name);
  if (!q || qattrs_copy(&q->rec.a, a) != 0)
    abort();
  heap_node_init(&q->retention_hn, HK_RETENTION);
  heap_node_init(&q->dlq_more_hn, HK_DLQ_MORE);
  struct grave *g = grave_find(b, name, 0);
  if (g) {
    /* the id of the deleted queue of this name, which messages were
     * dead-lettered from: they redrive here (its index range was
     * deleted before anything of this queue is written, as a purge) */
    uint8_t k[1 + GBX_MAX_NAME];
    q->rec.qid = g->qid;
    q->dl_source = 1;
    J_DEL(b, STORE_CF_META, k, grave_key(k, name));
    *g = b->graves[--b->ngraves];
  } else {
    q->rec.qid = b->next_qid++;
  }
  q->rec.created_ms = q->rec.modified_ms = broker_wall(b, now);
  /* a key given twice (the AWS face's JSON and form inputs allow it) is
   * kept once, with its last value */
  qtags_set(&q->rec.tags, &q->rec.ntags, tags, ntags);
  uint8_t v[4];
  be32_put(v, b->next_qid);
  J_PUT(b, STORE_CF_META, "N", 1, v, 4);
  persist_queue(b, q);
  registry_add(b, q);
  *created = 1;
  return GBX_E_OK;
}

static void serve_waiter(broker_t *b, waiter_t *w, gbx_err_t err, delivery_t *d, uint32_t n) {
  if (w->serve)
    w->serve(w->serve_ctx, w, err, d, n);
  else if (b->cbs.serve)
    b->cbs.serve(b->cbs.ctx, w, err, d, n);
  else
    for (uint32_t i = 0; i < n; i++)
      blob_unref(d[i].blob);
}

static void wake_all_with(broker_t *b, queue_t *q, gbx_err_t err) {
  while (q->w_head) {
    waiter_t *w = q->w_head;
    broker_waiter_cancel(b, w);
    serve_waiter(b, w, err, NULL, 0);
  }
}

/* Drops every message of q: one range tombstone for the index (4-byte
 * bounds: stores before them wrote 12-byte ones covering the same keys), a
 * SingleDelete per body. */
static uint64_t drop_all(broker_t *b, queue_t *q) {
  uint8_t s[IDX_RANGE_KEY_LEN], e[IDX_RANGE_KEY_LEN];
  uint64_t n = q->count;
  idx_range_key(s, q->rec.qid);
  idx_range_key(e, q->rec.qid + 1);
  if (n)
    J_RANGE(b, STORE_CF_IDX, s, sizeof(s), e, sizeof(e));
  /* from the newest end of each age structure: O(1) removals */
  for (msg_t *m; (m = queue_any(q));) {
    body_drop(b, m);
    msg_destroy(b, q, m, 0);
  }
  return n;
}

static void unready(broker_t *b, queue_t *q) {
  if (!q->on_ready)
    return;
  for (queue_t **p = &b->ready; *p; p = &(*p)->ready_next) {
    if (*p == q) {
      *p = q->ready_next;
      break;
    }
  }
  q->on_ready = 0;
}

gbx_err_t broker_queue_delete(broker_t *b, queue_t *q, uint64_t now) {
  uint8_t k[1 + GBX_MAX_NAME];
  size_t nl = strlen(q->name);
  wake_all_with(b, q, GBX_E_QUEUE_NOT_FOUND);
  drop_all(b, q);
  k[0] = 'Q';
  memcpy(k + 1, q->name, nl);
  J_DEL(b, STORE_CF_META, k, 1 + nl);
  if (q->dl_source) {
    /* messages dead-lettered from q may be waiting in a DLQ */
    uint8_t v[4];
    be32_put(v, q->rec.qid);
    J_PUT(b, STORE_CF_META, k, grave_key(k, q->name), v, 4);
    grave_add(b, q->name, q->rec.qid);
  }
  heap_remove(&b->heap, &q->retention_hn);
  heap_remove(&b->heap, &q->dlq_more_hn);
  redrive_t *rd = q->redrive;
  if (rd) {
    uint8_t rk[REDRIVE_KEY_LEN];
    heap_remove(&b->heap, &rd->hn);
    redrive_key(rk, q->rec.qid);
    J_DEL(b, STORE_CF_META, rk, sizeof(rk));
  }
  free(rd);
  /* a redrive task elsewhere that targets q ends (it will fail to find it) */
  unready(b, q);
  registry_del(b, q);
  queue_free(q);
  return GBX_E_OK;
}

gbx_err_t broker_queue_set_attrs(broker_t *b, queue_t *q, const qattrs_t *a, unsigned mask,
                                 uint64_t now, gbx_errbuf_t *eb) {
  gbx_err_t e0 = check_policy_sizes(a, eb);
  if (e0)
    return e0;
  qattrs_t n;
  if (qattrs_copy(&n, &q->rec.a) != 0)
    abort();
  if (mask & QA_VIS)
    n.vis = a->vis;
  if (mask & QA_DELAY)
    n.delay = a->delay;
  if (mask & QA_RETENTION)
    n.retention = a->retention;
  if (mask & QA_MAX_SIZE)
    n.max_size = a->max_size;
  if (mask & QA_WAIT)
    n.wait = a->wait;
  if (mask & QA_DLQ)
    memcpy(n.dlq, a->dlq, sizeof(n.dlq));
  if (mask & QA_MAX_RECEIVES)
    n.max_receives = a->max_receives;
  if (mask & QA_POLICY) {
    free(n.policy);
    n.policy = a->policy && a->policy[0] ? strdup(a->policy) : NULL;
  }
  if (mask & QA_REDRIVE_ALLOW) {
    free(n.redrive_allow);
    n.redrive_allow = a->redrive_allow && a->redrive_allow[0] ? strdup(a->redrive_allow) : NULL;
  }
  gbx_err_t e = (mask & QA_DLQ) ? check_dlq(b, q->name, &n, eb) : GBX_E_OK;
  if (e) {
    qattrs_free(&n);
    return e;
  }
  qattrs_free(&q->rec.a);
  q->rec.a = n;
  q->rec.modified_ms = broker_wall(b, now);
  persist_queue(b, q);
  if (mask & QA_RETENTION)
    arm_retention(b, q);
  return GBX_E_OK;
}

gbx_err_t broker_queue_purge(broker_t *b, queue_t *q, uint64_t now, uint64_t *purged) {
  *purged = drop_all(b, q);
  return GBX_E_OK;
}

gbx_err_t broker_queue_tag(broker_t *b, queue_t *q, const qtag_t *tags, uint32_t n, uint64_t now) {
  /* count the resulting set first: the limit applies to the union */
  uint32_t add = 0;
  for (uint32_t i = 0; i < n; i++) {
    int found = 0;
    for (uint32_t t = 0; t < q->rec.ntags && !found; t++)
      found = strcmp(q->rec.tags[t].key, tags[i].key) == 0;
    for (uint32_t p = 0; p < i && !found; p++)
      found = strcmp(tags[p].key, tags[i].key) == 0;
    add += !found;
  }
  if (q->rec.ntags + add > GBX_MAX_TAGS)
    return GBX_E_TOO_MANY_ENTRIES;
  qtag_t *nt = realloc(q->rec.tags, (q->rec.ntags + add + 1) * sizeof(*nt));
  if (!nt)
    abort();
  q->rec.tags = nt;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t t;
    for (t = 0; t < q->rec.ntags; t++)
      if (strcmp(q->rec.tags[t].key, tags[i].key) == 0)
        break;
    char *v = strdup(tags[i].value);
    if (!v)
      abort();
    if (t < q->rec.ntags) {
      free(q->rec.tags[t].value);
      q->rec.tags[t].value = v;
    } else {
      q->rec.tags[t].key = strdup(tags[i].key);
      if (!q->rec.tags[t].key)
        abort();
      q->rec.tags[t].value = v;
      q->rec.ntags++;
    }
  }
  q->rec.modified_ms = broker_wall(b, now);
  persist_queue(b, q);
  return GBX_E_OK;
}

gbx_err_t broker_queue_untag(broker_t *b, queue_t *q, const char *const *keys, const uint32_t *lens,
                             uint32_t n, uint64_t now) {
  for (uint32_t i = 0; i < n; i++) {
    for (uint32_t t = 0; t < q->rec.ntags; t++) {
      if (strlen(q->rec.tags[t].key) == lens[i] &&
          memcmp(q->rec.tags[t].key, keys[i], lens[i]) == 0) {
        free(q->rec.tags[t].key);
        free(q->rec.tags[t].value);
        q->rec.tags[t] = q->rec.tags[--q->rec.ntags];
        break;
      }
    }
  }
  q->rec.modified_ms = broker_wall(b, now);
  persist_queue(b, q);
  return GBX_E_OK;
}

uint32_t broker_queue_list(broker_t *b, const char *prefix, size_t plen, const char *after,
                           size_t alen, uint32_t max, void (*cb)(void *, const queue_t *),
                           void *ctx, int *more) {
  uint32_t i = lower_bound(b, prefix, plen), n = 0;
  if (alen) {
    uint32_t j = lower_bound(b, after, alen);
    if (j < b->nqueues && name_cmp(after, alen, b->byname[j]->name) == 0)
      j++;
    if (j > i)
      i = j;
  }
  *more = 0;
  for (; i < b->nqueues; i++) {
    const queue_t *q = b->byname[i];
    if (strncmp(q->name, prefix, plen) != 0)
      break;
    if (n == max) {
      *more = 1;
      break;
    }
    cb(ctx, q);
    n++;
  }
  return n;
}

uint32_t broker_dlq_sources(broker_t *b, const queue_t *q, void (*cb)(void *, const queue_t *),
                            void *ctx) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < b->nqueues; i++) {
    if (strcmp(b->byname[i]->rec.a.dlq, q->name) == 0) {
      cb(ctx, b->byname[i]);
      n++;
    }
  }
  return n;
}

typedef struct origins {
  broker_t *b;
  void (*cb)(void *, const char *);
  void *ctx;
  uint32_t *seen, n, cap; /* distinct origins are few (at most the queues): a linear set */
} origins_t;

static int origin_of(void *ctx, const msg_t *m) {
  origins_t *o = ctx;
  uint32_t i = 0;
  while (i < o->n && o->seen[i] != m->src_qid)
    i++;
  if (i < o->n)
    return 0;
  if (o->n == o->cap) {
    o->cap = o->cap ? 2 * o->cap : 16;
    uint32_t *p = realloc(o->seen, o->cap * sizeof(*p));
    if (!p)
      abort();
    o->seen = p;
  }
  o->seen[o->n++] = m->src_qid;
  const queue_t *src = m->src_qid ? broker_queue_by_id(o->b, m->src_qid) : NULL;
  const struct grave *g = src || !m->src_qid ? NULL : grave_find(o->b, NULL, m->src_qid);
  if (src || g) /* a deleted source's name too: a queue created with it receives */
    o->cb(o->ctx, src ? src->name : g->name);
  return 0;
}

void broker_dlq_origins(broker_t *b, const queue_t *dlq, void (*cb)(void *, const char *),
                        void *ctx) {
  origins_t o = {.b = b, .cb = cb, .ctx = ctx};
  queue_each(dlq, origin_of, &o);
  free(o.seen);
}

/* ---- messages ---- */

gbx_err_t broker_send(broker_t *b, queue_t *q, blob_t *blob, uint32_t size, int32_t delay,
                      uint64_t now, uint64_t *idn) {
  if (size > q->rec.a.max_size) {
    blob_unref(blob);
    return GBX_E_MESSAGE_TOO_LONG;
  }
  if (b->cfg.max_bytes && b->total_bytes + size > b->cfg.max_bytes) {
    blob_unref(blob);
    return GBX_E_STORE_FULL;
  }
  uint32_t d = delay < 0 ? q->rec.a.delay : (uint32_t)delay;
  msg_t *m = xcalloc(1, sizeof(*m));
  uint8_t k[BODY_KEY_LEN];
  heap_node_init(&m->hn, HK_MSG);
  m->seq = m->idn = m->body_id = next_counter(b);
  m->sent_ms = broker_wall(b, now);
  m->size = size;
  m->qid = q->rec.qid;
  m->state = d ? MSG_DELAYED : MSG_VISIBLE;
  if (d && heap_insert(&b->heap, &m->hn, now + (uint64_t)d * 1000) != 0)
    abort();
  body_key(k, m->body_id);
  J_PUT(b, STORE_CF_BODY, k, sizeof(k), blob->data, blob->len);
  if (b->cached_bytes + blob->len <= b->cfg.body_cache_bytes) {
    m->blob = blob;
    b->cached_bytes += blob->len;
  } else {
    blob_unref(blob); /* on disk only; fetched ahead of the head later */
    b->cold++;
  }
  if (queue_add(q, m) != 0)
    abort();
  msg_persist(b, q, m);
  b->total_bytes += size;
  b->total_msgs++;
  b->st.sends++;
  if (queue_oldest(q) == m)
    arm_retention(b, q);
  if (!d)
    mark_ready(b, q);
  *idn = m->idn;
  return GBX_E_OK;
}

uint64_t broker_counter(broker_t *b) {
  return next_counter(b);
}

gbx_err_t broker_fanout(broker_t *b, queue_t *const *qs, const uint8_t *envelope, uint32_t n,
                        blob_t *blob, const uint32_t *sizes, uint64_t now, uint64_t *idns) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; i++)
    total += sizes[i];
  if (!n) {
    blob_unref(blob);
    return GBX_E_OK;
  }
  if (b->cfg.max_bytes && b->total_bytes + total > b->cfg.max_bytes) {
    blob_unref(blob);
    return GBX_E_STORE_FULL;
  }
  uint8_t k[BODY_KEY_LEN];
  uint64_t body_id = next_counter(b);
  body_key(k, body_id);
  J_PUT(b, STORE_CF_BODY, k, sizeof(k), blob->data, blob->len);
  if (n > 1)
    sh_add(b, body_id, n);
  for (uint32_t i = 0; i < n; i++) {
    queue_t *q = qs[i];
    uint32_t d = q->rec.a.delay; /* SQS applies the queue's delay to SNS deliveries */
    msg_t *m = xcalloc(1, sizeof(*m));
    heap_node_init(&m->hn, HK_MSG);
    m->seq = m->idn = next_counter(b);
    m->body_id = body_id;
    m->sent_ms = broker_wall(b, now);
    m->size = sizes[i];
    m->qid = q->rec.qid;
    m->state = (uint8_t)((d ? MSG_DELAYED : MSG_VISIBLE) | (envelope[i] ? MSG_ENVELOPE : 0) |
                         (n > 1 ? MSG_SHARED : 0));
    if (d && heap_insert(&b->heap, &m->hn, now + (uint64_t)d * 1000) != 0)
      abort();
    if (b->cached_bytes + blob->len <= b->cfg.body_cache_bytes) {
      m->blob = blob_ref(blob);
      b->cached_bytes += blob->len;
    } else {
      b->cold++;
    }
    if (queue_add(q, m) != 0)
      abort();
    msg_persist(b, q, m);
    b->total_bytes += sizes[i];
    b->total_msgs++;
    b->st.sends++;
    if (queue_oldest(q) == m)
      arm_retention(b, q);
    if (!d)
      mark_ready(b, q);
    idns[i] = m->idn;
  }
  blob_unref(blob);
  return GBX_E_OK;
}

/* Moves m from q to the dead-letter queue dlq: same id, body, attributes,
 * receive count and send time; source recorded. */
static void dead_letter(broker_t *b, queue_t *q, msg_t *m, queue_t *dlq) {
  uint8_t k[IDX_KEY_LEN];
  int was_head = queue_oldest(q) == m;
  heap_remove(&b->heap, &m->hn);
  queue_remove(q, m);
  idx_key(k, q->rec.qid, m->seq);
  J_DEL(b, STORE_CF_IDX, k, sizeof(k));
  if (was_head)
    arm_retention(b, q);
  m->seq = next_counter(b);
  m->src_qid = q->rec.qid;
  q->dl_source = 1;
  m->qid = dlq->rec.qid;
  /* a body fetch under way is for the old key: it will not find this */
  m->state = (uint8_t)((m->state & 0xf0 & ~MSG_FETCHING) | MSG_VISIBLE);
  if (queue_add(dlq, m) != 0)
    abort();
  msg_persist(b, dlq, m);
  if (queue_oldest(dlq) == m)
    arm_retention(b, dlq);
  b->st.dead_lettered++;
  mark_ready(b, dlq);
}

/* Dead-letter moves the broker makes per millisecond of its clock (so per
 * turn of the loop at most, whatever number of receives the turn serves).
 * Messages over MaxReceiveCount pile up when a redrive policy is set on a
 * queue that already holds them (the usual way a DLQ is added, after poison
 * messages were noticed); moving 100,000 of them in one receive would hold
 * the loop thread, and its batch, for as long as that takes. Past the
 * budget a receive steps over them, at most DLQ_SKIP_MAX, to deliver what
 * is behind them, and a deadline one millisecond on goes on with the moves
 * and wakes the queue's long polls. */
#define DLQ_MOVES_PER_MS 1000u
#define DLQ_SKIP_MAX     10000u

gbx_err_t broker_receive(broker_t *b, queue_t *q, uint32_t max, int32_t vis, uint64_t now,
                         delivery_t *out, uint32_t *n) {
  uint32_t got = 0, skipped = 0;
  uint64_t bytes = 0;
  uint32_t v = vis < 0 ? q->rec.a.vis : (uint32_t)vis;
  queue_t *dlq = q->rec.a.dlq[0] ? broker_queue(b, q->rec.a.dlq, strlen(q->rec.a.dlq)) : NULL;
  *n = 0;
  if (q->nvisible && q->ninflight >= GBX_MAX_INFLIGHT)
    return GBX_E_OVER_LIMIT;
  if (b->dl_ms != now) {
    b->dl_ms = now;
    b->dl_moved = 0;
  }
  for (msg_t *m = q->vis_head, *next; m && got < max && q->ninflight < GBX_MAX_INFLIGHT; m = next) {
    next = m->next; /* taken before m leaves the visible list */
    if (got && bytes + m->size > GBX_RECEIVE_REPLY_BUDGET)
      break;
    if (dlq && m->rc >= q->rec.a.max_receives) {
      if (b->dl_moved < DLQ_MOVES_PER_MS) {
        dead_letter(b, q, m, dlq);
        b->dl_moved++;
        continue;
      }
      if (!heap_node_linked(&q->dlq_more_hn) && heap_insert(&b->heap, &q->dlq_more_hn, now + 1))
        abort();
      if (++skipped > DLQ_SKIP_MAX)
        break;
      continue;
    }
    int64_t wall = broker_wall(b, now);
    int64_t d = wall - m->sent_ms;
    uint32_t dd = d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    if (m->rc == 0)
      m->first_d = dd;
    m->recv_d = dd;
    m->rc++;
    queue_set_state(q, m, MSG_INFLIGHT);
    if (heap_set(&b->heap, &m->hn, now + (uint64_t)v * 1000) != 0)
      abort();
#ifndef GBX_BROKEN_NO_RC_PERSIST /* deliberately broken build (tests/reliability) */
    msg_persist(b, q, m);
#endif
    delivery_t *o = &out[got++];
    o->envelope = (m->state & MSG_ENVELOPE) != 0;
    o->qid = q->rec.qid;
    o->src_qid = m->src_qid;
    o->rc = m->rc;
    o->seq = m->seq;
    o->idn = m->idn;
    o->body_id = m->body_id;
    o->sent_ms = m->sent_ms;
    o->first_ms = m->sent_ms + m->first_d;
    o->blob = blob_ref(m->blob);
    bytes += m->size;
  }
  *n = got;
  b->st.receives += got;
  if (v == 0) {
    /* visibility 0: visible again at once (SQS), also to the next receive of
     * this same loop iteration, but not twice within this one */
    for (uint32_t i = 0; i < got; i++) {
      msg_t *m = queue_find(q, out[i].seq);
      heap_remove(&b->heap, &m->hn);
      queue_set_state(q, m, MSG_VISIBLE);
    }
    if (got)
      mark_ready(b, q);
  }
  prefetch(b, q);
  return GBX_E_OK;
}

/* Resolves a receipt handle to its message; *m NULL with OK means the
 * message is gone (already deleted): a retried delete succeeds. */
static gbx_err_t resolve(broker_t *b, queue_t *q, const char *rh, size_t rhl, msg_t **out) {
  receipt_t r;
  *out = NULL;
  if (ids_receipt_parse(b->ids, rh, rhl, &r) != 0 || r.qid != q->rec.qid)
    return GBX_E_RECEIPT_INVALID;
  msg_t *m = queue_find(q, r.seq);
  if (!m)
    return GBX_E_OK;
  if (r.rc < m->rc)
    return GBX_E_RECEIPT_STALE;
  if (r.rc > m->rc)
    return GBX_E_RECEIPT_INVALID;
  *out = m;
  return GBX_E_OK;
}

gbx_err_t broker_delete(broker_t *b, queue_t *q, const char *rh, size_t rhl, uint64_t now) {
  msg_t *m;
  gbx_err_t e = resolve(b, q, rh, rhl, &m);
  if (e || !m)
    return e;
  msg_destroy(b, q, m, 1);
  b->st.deletes++;
  /* at the in-flight limit a waiter stays parked while messages are
   * visible: a delete makes room for it */
  mark_ready(b, q);
  return GBX_E_OK;
}

gbx_err_t broker_change_vis(broker_t *b, queue_t *q, const char *rh, size_t rhl, uint32_t vis,
                            uint64_t now) {
  msg_t *m;
  gbx_err_t e = resolve(b, q, rh, rhl, &m);
  if (e)
    return e;
  if (!m || msg_state(m) != MSG_INFLIGHT)
    return GBX_E_NOT_IN_FLIGHT;
  /* SQS caps a message's visibility at 12 hours after the receive. */
  int64_t recv_wall = m->sent_ms + m->recv_d;
  uint64_t recv_mono = to_mono(b, recv_wall);
  uint64_t dl = now + (uint64_t)vis * 1000;
  if (dl > recv_mono + (uint64_t)GBX_VIS_MAX * 1000)
    return GBX_E_OUT_OF_RANGE;
  if (vis == 0) {
    heap_remove(&b->heap, &m->hn);
    queue_set_state(q, m, MSG_VISIBLE);
    mark_ready(b, q);
  } else if (heap_set(&b->heap, &m->hn, dl) != 0) {
    abort();
  }
  msg_persist(b, q, m);
  return GBX_E_OK;
}

int broker_wait(broker_t *b, queue_t *q, waiter_t *w, uint64_t deadline) {
  heap_node_init(&w->hn, HK_WAITER);
  if (heap_insert(&b->heap, &w->hn, deadline) != 0)
    return -1;
  w->q = q;
  w->next = NULL;
  w->prev = q->w_tail;
  if (q->w_tail)
    q->w_tail->next = w;
  else
    q->w_head = w;
  q->w_tail = w;
  mark_ready(b, q);
  return 0;
}

void broker_waiter_cancel(broker_t *b, waiter_t *w) {
  queue_t *q = w->q;
  if (!q)
    return;
  heap_remove(&b->heap, &w->hn);
  if (w->prev)
    w->prev->next = w->next;
  else
    q->w_head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->w_tail = w->prev;
  w->next = w->prev = NULL;
  w->q = NULL;
}

void broker_end_waits_if(broker_t *b, gbx_err_t (*verdict)(void *ctx, const waiter_t *w),
                         void *ctx) {
  for (uint32_t i = 0; i < b->nqueues; i++) {
    queue_t *q = b->byname[i];
    /* serving a waiter may close its connection, which frees that
     * connection's other waiters: after each one served, start over (those
     * kept are asked again, which only costs time) */
    for (waiter_t *w = q->w_head; w;) {
      gbx_err_t e = verdict(ctx, w);
      if (!e) {
        w = w->next;
        continue;
      }
      broker_waiter_cancel(b, w);
      serve_waiter(b, w, e, NULL, 0);
      w = q->w_head;
    }
  }
}

void broker_end_waits(broker_t *b) {
  for (uint32_t i = 0; i < b->nqueues; i++)
    wake_all_with(b, b->byname[i], GBX_E_OK);
}

void broker_serve_ready(broker_t *b, uint64_t now) {
  delivery_t d[GBX_MAX_RECEIVE];
  while (b->ready) {
    queue_t *q = b->ready;
    b->ready = q->ready_next;
    q->on_ready = 0;
    while (q->w_head && q->nvisible) {
      waiter_t *w = q->w_head;
      uint32_t n = 0;
      gbx_err_t e = broker_receive(b, q, w->max, w->vis, now, d, &n);
      /* all visible went to the DLQ, or the in-flight limit: keep waiting */
      if (e != GBX_E_OK || n == 0)
        break;
      broker_waiter_cancel(b, w);
      serve_waiter(b, w, e, d, n);
    }
  }
}

static void retention_sweep(broker_t *b, queue_t *q, uint64_t now) {
  int64_t cutoff = broker_wall(b, now) - (int64_t)q->rec.a.retention * 1000;
  for (msg_t *m; (m = queue_oldest(q)) && m->sent_ms <= cutoff;) {
    msg_destroy(b, q, m, 1);
    b->st.expired++;
  }
  arm_retention(b, q);
}

static void redrive_step(broker_t *b, redrive_t *rd, uint64_t now);

uint64_t broker_tick(broker_t *b, uint64_t now) {
  heap_node_t *n;
  while ((n = heap_min(&b->heap)) && n->key <= now) {
    switch (n->kind) {
    case HK_MSG: {
      msg_t *m = (msg_t *)n; /* hn is msg_t's first member */
      queue_t *q = broker_queue_by_id(b, m->qid);
      heap_remove(&b->heap, n);
      assert(q);
      /* delay over or visibility expired: visible again, no write needed
       * (a passed deadline means visible at recovery too) */
      queue_set_state(q, m, MSG_VISIBLE);
      mark_ready(b, q);
      break;
    }
    case HK_DLQ_MORE: {
      queue_t *q = (queue_t *)((char *)n - offsetof(queue_t, dlq_more_hn));
      heap_remove(&b->heap, n);
      mark_ready(b, q);
      break;
    }
    case HK_RETENTION: {
      queue_t *q = (queue_t *)((char *)n - offsetof(queue_t, retention_hn));
      heap_remove(&b->heap, n);
      retention_sweep(b, q, now);
      break;
    }
    case HK_WAITER: {
      waiter_t *w = (waiter_t *)n; /* hn is waiter_t's first member */
      broker_waiter_cancel(b, w);
      serve_waiter(b, w, GBX_E_OK, NULL, 0);
      break;
    }
    case HK_REDRIVE: {
      redrive_t *rd = (redrive_t *)n;
      heap_remove(&b->heap, n);
      redrive_step(b, rd, now);
      break;
    }
    default:
      assert(!"unknown heap node kind");
      heap_remove(&b->heap, n);
    }
  }
  n = heap_min(&b->heap);
  return n ? n->key : UINT64_MAX;
}

uint64_t broker_next_deadline(const broker_t *b) {
  heap_node_t *n = heap_min(&b->heap);
  return n ? n->key : UINT64_MAX;
}

void broker_attach_blob(broker_t *b, uint32_t qid, uint64_t seq, uint64_t body_id, blob_t *blob) {
  queue_t *q = broker_queue_by_id(b, qid);
  msg_t *m = q ? queue_find(q, seq) : NULL;
  if (!m || m->body_id != body_id)
    return;
  m->state &= (uint8_t)~MSG_FETCHING;
  if (blob && !m->blob && b->cached_bytes + blob->len <= b->cfg.body_cache_bytes) {
    m->blob = blob_ref(blob);
    b->cached_bytes += blob->len;
    b->cold--;
  }
}

/* ---- redrive ---- */

/* The task as its record says (META "M" + the dead-letter queue's id), in
 * the same batch as the moves it counts: after a crash it goes on from
 * what was committed. */
static void redrive_persist(broker_t *b, const redrive_t *rd) {
  redrive_rec_t r = {.state = (uint8_t)rd->state,
                     .dst_qid = rd->dst_qid,
                     .rate = rd->rate,
                     .moved = rd->moved,
                     .total = rd->total,
                     .started_ms = rd->started_ms};
  uint8_t k[REDRIVE_KEY_LEN], v[REDRIVE_REC_FIXED + REDRIVE_MSG_MAX];
  snprintf(r.msg, sizeof(r.msg), "%s", rd->msg);
  redrive_key(k, rd->dlq->rec.qid);
  J_PUT(b, STORE_CF_META, k, sizeof(k), v, redrive_encode(v, &r));
}

gbx_err_t broker_restore_redrive(broker_t *b, uint32_t qid, const redrive_rec_t *r, uint64_t now) {
  queue_t *dlq = broker_queue_by_id(b, qid);
  if (!dlq || dlq->redrive || r->dst_qid == qid || (r->dst_qid && r->dst_qid >= b->next_qid))
    return GBX_E_INTERNAL;
  redrive_t *rd = xcalloc(1, sizeof(*rd));
  heap_node_init(&rd->hn, HK_REDRIVE);
  rd->dlq = dlq;
  rd->dst_qid = r->dst_qid;
  rd->rate = r->rate;
  rd->moved = r->moved;
  rd->total = r->total;
  rd->started_ms = r->started_ms;
  rd->state = r->state;
  snprintf(rd->msg, sizeof(rd->msg), "%s", r->msg);
  dlq->redrive = rd;
  /* a task running at the stop (or crash) goes on */
  if (rd->state == 1 && heap_insert(&b->heap, &rd->hn, now) != 0)
    abort();
  return GBX_E_OK;
}

gbx_err_t broker_redrive_start(broker_t *b, queue_t *dlq, queue_t *dst, uint32_t rate, uint64_t now,
                               gbx_errbuf_t *eb) {
  redrive_t *rd = dlq->redrive;
  if (dst == dlq) /* it would only reset receive counts and lose the sources */
    return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE,
                          "the destination of a redrive cannot be the dead-letter queue itself");
  if (rd && rd->state == 1)
    return gbx_errbuf_set(eb, GBX_E_REDRIVE_RUNNING, "a redrive of '%s' is running", dlq->name);
  if (!rd) {
    rd = xcalloc(1, sizeof(*rd));
    dlq->redrive = rd;
  }
  int64_t prev = rd->started_ms;
  memset(rd, 0, sizeof(*rd));
  heap_node_init(&rd->hn, HK_REDRIVE);
  rd->dlq = dlq;
  rd->dst_qid = dst ? dst->rec.qid : 0;
  rd->rate = rate;
  rd->total = dlq->nvisible;
  /* a later task starts later, so each has its own handle (SQS) */
  rd->started_ms = broker_wall(b, now);
  if (rd->started_ms <= prev)
    rd->started_ms = prev + 1;
  rd->state = rd->total ? 1 : 2;
  if (rd->state == 1 && heap_insert(&b->heap, &rd->hn, now) != 0)
    abort();
  redrive_persist(b, rd);
  return GBX_E_OK;
}

static void redrive_step(broker_t *b, redrive_t *rd, uint64_t now) {
  queue_t *dlq = rd->dlq;
  uint32_t step = (rd->rate + 9) / 10;
  for (uint32_t i = 0; i < step && rd->moved < rd->total; i++) {
    msg_t *m = dlq->vis_head;
    if (!m)
      break;
    uint32_t to = rd->dst_qid ? rd->dst_qid : m->src_qid;
    queue_t *dst = to ? broker_queue_by_id(b, to) : NULL;
    if (!dst) {
      rd->state = 4;
      snprintf(rd->msg, sizeof(rd->msg), "destination queue of message %llu does not exist",
               (unsigned long long)m->idn);
      redrive_persist(b, rd);
      return;
    }
    uint8_t k[IDX_KEY_LEN];
    int was_head = queue_oldest(dlq) == m;
    queue_remove(dlq, m);
    idx_key(k, dlq->rec.qid, m->seq);
    J_DEL(b, STORE_CF_IDX, k, sizeof(k));
    if (was_head)
      arm_retention(b, dlq);
    /* back on the source as a new message (SQS: redriven messages get a new
     * enqueue time, so the retention period starts over; kept, it could
     * expire at once on a source with a shorter retention than the DLQ's):
     * receive count starts over; a fetch under way is for the old key */
    m->seq = next_counter(b);
    m->sent_ms = broker_wall(b, now);
    m->rc = 0;
    m->first_d = m->recv_d = 0;
    m->src_qid = 0;
    m->qid = dst->rec.qid;
    m->state = (uint8_t)((m->state & 0xf0 & ~MSG_FETCHING) | MSG_VISIBLE);
    if (queue_add(dst, m) != 0)
      abort();
    msg_persist(b, dst, m);
    if (queue_oldest(dst) == m)
      arm_retention(b, dst);
    mark_ready(b, dst);
    rd->moved++;
  }
  if (rd->moved >= rd->total || !dlq->vis_head) {
    rd->state = 2;
  } else if (heap_insert(&b->heap, &rd->hn, now + REDRIVE_STEP_MS) != 0) {
    abort();
  }
  redrive_persist(b, rd);
}

void broker_redrive_status(broker_t *b, const queue_t *dlq, redrive_status_t *st) {
  const redrive_t *rd = dlq->redrive;
  memset(st, 0, sizeof(*st));
  st->state = redrive_states[rd ? rd->state : 0];
  if (!rd)
    return;
  st->moved = rd->moved;
  st->total = rd->total;
  st->rate = rd->rate;
  st->started_ms = rd->started_ms;
  if (rd->dst_qid) {
    queue_t *d = broker_queue_by_id(b, rd->dst_qid);
    if (d)
      snprintf(st->dst, sizeof(st->dst), "%s", d->name);
  }
  snprintf(st->msg, sizeof(st->msg), "%s", rd->msg);
}

gbx_err_t broker_redrive_cancel(broker_t *b, queue_t *dlq, uint64_t *moved) {
  redrive_t *rd = dlq->redrive;
  if (!rd || rd->state != 1)
    return GBX_E_NO_REDRIVE_TASK;
  heap_remove(&b->heap, &rd->hn);
  rd->state = 3;
  redrive_persist(b, rd);
  *moved = rd->moved;
  return GBX_E_OK;
}

/* ---- stats ---- */

void broker_get_stats(const broker_t *b, broker_stats_t *st) {
  *st = b->st;
  st->messages = b->total_msgs;
  st->bytes = b->total_bytes;
  st->queues = b->nqueues;
  st->cached_bytes = b->cached_bytes;
  size_t idx = b->total_msgs * sizeof(msg_t) + (size_t)b->heap.cap * sizeof(void *);
  for (uint32_t i = 0; i < b->nqueues; i++)
    idx += queue_index_bytes(b->byname[i]);
  st->index_bytes = idx;
}

uint64_t broker_oldest_age(const broker_t *b, const queue_t *q, uint64_t now) {
  const msg_t *oldest = queue_oldest(q);
  if (!oldest)
    return 0;
  int64_t age = broker_wall(b, now) - oldest->sent_ms;
  return age > 0 ? (uint64_t)age / 1000 : 0;
}
