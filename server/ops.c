/* ops.c - the protocol layer: decodes one request, calls the broker, packs
 * the reply. One handler per operation of protocol/gbx_ops.def. Replies are
 * queued with server_gate() so none leaves before what it reports is durable.
 * Handlers build their reply only after their broker calls, because a broker
 * call may answer waiters (through ops_serve_waiter) with the same buffer. */
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include "gbx_auth.h"
#include "handshake.h"
#include "log.h"
#include "ops_int.h"
#include "strutil.h"
#include "text.h"

typedef struct oconn {
  waiter_t *waiters; /* this connection's waiting receives */
  uint32_t nwaiters;
  /* authentication (only when --credentials is set) */
  hs_state_t hs; /* the handshake (handshake.h) */
  uint8_t revoked;
  auth_id_t id;         /* who authenticated */
  const principal_t *p; /* id's principal in the set of generation gen */
  uint64_t gen;
  uint8_t *parked; /* an auth_prove frame held by the throttle */
  uint32_t parked_len;
  uint64_t parked_until;
  struct oconn *pnext; /* the server's list of parked connections */
  conn_t *c;
} oconn_t;

msgpack_packer *ops_rbegin(reply_t *r, server_t *s, uint64_t id, uint32_t nfields) {
  r->s = s;
  s->out.len = 0;
  r->off = gbx_frame_begin(&s->out);
  msgpack_packer_init(&r->pk, &s->out, gbx_buf_write_cb);
  msgpack_pack_map(&r->pk, 2 + nfields);
  gbx_pack_kv_u64(&r->pk, "id", id);
  gbx_pack_kv_u64(&r->pk, "err", 0);
  return &r->pk;
}

void ops_rend(reply_t *r, conn_t *c) {
  gbx_frame_end(&r->s->out, r->off);
  net_reply(c, r->s->out.data, r->s->out.len, server_gate(r->s));
}

void ops_reply_err(server_t *s, conn_t *c, uint64_t id, gbx_err_t code, const char *msg) {
  reply_t r;
  r.s = s;
  s->out.len = 0;
  r.off = gbx_frame_begin(&s->out);
  msgpack_packer_init(&r.pk, &s->out, gbx_buf_write_cb);
  msgpack_pack_map(&r.pk, 3);
  gbx_pack_kv_u64(&r.pk, "id", id);
  gbx_pack_kv_u64(&r.pk, "err", code);
  gbx_pack_kv_cstr(&r.pk, "msg", msg && msg[0] ? msg : gbx_err_message(code));
  ops_rend(&r, c);
}

void ops_reply_ok(server_t *s, conn_t *c, uint64_t id) {
  reply_t r;
  ops_rbegin(&r, s, id, 0);
  ops_rend(&r, c);
}

/* ---- request context ---- */

void ops_fail(req_t *q, gbx_err_t code) {
  ops_reply_err(q->s, q->c, q->id, code, q->eb.code == code ? q->eb.msg : NULL);
}

int ops_need_name(req_t *q, const char *field, const char **name, uint32_t *nl) {
  gbx_err_t e = gbx_get_str(q->m, field, 1, 0, UINT32_MAX, name, nl, NULL, &q->eb);
  if (e) {
    ops_fail(q, e);
    return -1;
  }
  if (!gbx_name_valid(*name, *nl)) {
    gbx_errbuf_set(&q->eb, GBX_E_BAD_NAME,
                   "field '%s': name must be 1-80 characters of A-Za-z0-9_-", field);
    ops_fail(q, GBX_E_BAD_NAME);
    return -1;
  }
  return 0;
}

void ops_pack_tags(msgpack_packer *pk, const qtag_t *tags, uint32_t n) {
  gbx_pack_cstr(pk, "tags");
  msgpack_pack_map(pk, n);
  for (uint32_t i = 0; i < n; i++) {
    gbx_pack_cstr(pk, tags[i].key);
    gbx_pack_cstr(pk, tags[i].value);
  }
}

/* Looks up the queue named by field; replies with the error itself. */
static queue_t *need_queue(req_t *q, const char *field) {
  const char *name;
  uint32_t nl;
  if (ops_need_name(q, field, &name, &nl) != 0)
    return NULL;
  if (!ops_authorize(q, q->action, AUTHZ_QUEUE, name, nl))
    return NULL;
  queue_t *qu = broker_queue(q->s->broker, name, nl);
  if (!qu) {
    gbx_errbuf_set(&q->eb, GBX_E_QUEUE_NOT_FOUND, "queue '%.*s' does not exist", (int)nl, name);
    ops_fail(q, GBX_E_QUEUE_NOT_FOUND);
  }
  return qu;
}

/* ---- queue attributes ---- */

int ops_key_is(const msgpack_object *k, const char *s) {
  size_t n = strlen(s);
  return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
}

static gbx_err_t attr_u32(const msgpack_object *k, const msgpack_object *v, uint32_t lo,
                          uint32_t hi, uint32_t *out, gbx_errbuf_t *eb) {
  if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
      (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && (v->via.u64 < lo || v->via.u64 > hi)))
    return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE, "attribute '%.*s' must be %u-%u",
                          (int)k->via.str.size, k->via.str.ptr, lo, hi);
  if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return gbx_errbuf_set(eb, GBX_E_BAD_TYPE, "attribute '%.*s' must be an integer",
                          (int)k->via.str.size, k->via.str.ptr);
  *out = (uint32_t)v->via.u64;
  return GBX_E_OK;
}

gbx_err_t ops_attr_str(const msgpack_object *k, const msgpack_object *v, uint32_t max, int json,
                       char **out, gbx_errbuf_t *eb) {
  uint32_t bad;
  if (v->type != MSGPACK_OBJECT_STR)
    return gbx_errbuf_set(eb, GBX_E_BAD_TYPE, "attribute '%.*s' must be a string",
                          (int)k->via.str.size, k->via.str.ptr);
  if (v->via.str.size > max)
    return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE, "attribute '%.*s' is longer than %u bytes",
                          (int)k->via.str.size, k->via.str.ptr, max);
  if (!text_valid((const uint8_t *)v->via.str.ptr, v->via.str.size, &bad) ||
      (json && json_has_nul(v->via.str.ptr, v->via.str.size)))
    return gbx_errbuf_set(eb, GBX_E_BAD_TYPE,
                          "attribute '%.*s' must be text: UTF-8 without NUL or control characters",
                          (int)k->via.str.size, k->via.str.ptr);
  free(*out);
  *out = malloc(v->via.str.size + 1u);
  if (!*out)
    abort();
  memcpy(*out, v->via.str.ptr, v->via.str.size);
  (*out)[v->via.str.size] = 0;
  return GBX_E_OK;
}

/* Parses an attribute map over a (defaults or current values); sets mask. */
static gbx_err_t parse_qattrs(const msgpack_object *map, qattrs_t *a, unsigned *mask,
                              gbx_errbuf_t *eb) {
  *mask = 0;
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
    gbx_err_t e;
    if (ops_key_is(k, "VisibilityTimeout")) {
      e = attr_u32(k, v, 0, GBX_VIS_MAX, &a->vis, eb);
      *mask |= QA_VIS;
    } else if (ops_key_is(k, "DelaySeconds")) {
      e = attr_u32(k, v, 0, GBX_DELAY_MAX, &a->delay, eb);
      *mask |= QA_DELAY;
    } else if (ops_key_is(k, "MessageRetentionPeriod")) {
      e = attr_u32(k, v, GBX_RETENTION_MIN, GBX_RETENTION_MAX, &a->retention, eb);
      *mask |= QA_RETENTION;
    } else if (ops_key_is(k, "MaximumMessageSize")) {
      e = attr_u32(k, v, GBX_MIN_MESSAGE_SIZE, GBX_MAX_MESSAGE_SIZE, &a->max_size, eb);
      *mask |= QA_MAX_SIZE;
    } else if (ops_key_is(k, "ReceiveMessageWaitTimeSeconds")) {
      e = attr_u32(k, v, 0, GBX_WAIT_MAX, &a->wait, eb);
      *mask |= QA_WAIT;
    } else if (ops_key_is(k, "MaxReceiveCount")) {
      e = attr_u32(k, v, GBX_MAX_RECEIVES_MIN, GBX_MAX_RECEIVES_MAX, &a->max_receives, eb);
      *mask |= QA_MAX_RECEIVES;
    } else if (ops_key_is(k, "DeadLetterQueue")) {
      if (v->type != MSGPACK_OBJECT_STR)
        e = gbx_errbuf_set(eb, GBX_E_BAD_TYPE, "attribute 'DeadLetterQueue' must be a string");
      else if (v->via.str.size && !gbx_name_valid(v->via.str.ptr, v->via.str.size))
        e = gbx_errbuf_set(eb, GBX_E_BAD_NAME, "attribute 'DeadLetterQueue': bad queue name");
      else {
        memcpy(a->dlq, v->via.str.ptr, v->via.str.size);
        a->dlq[v->via.str.size] = 0;
        e = GBX_E_OK;
      }
      *mask |= QA_DLQ;
    } else if (ops_key_is(k, "Policy")) {
      e = ops_attr_str(k, v, GBX_MAX_POLICY, 1, &a->policy, eb);
      *mask |= QA_POLICY;
    } else if (ops_key_is(k, "RedriveAllowPolicy")) {
      e = ops_attr_str(k, v, GBX_MAX_POLICY, 1, &a->redrive_allow, eb);
      *mask |= QA_REDRIVE_ALLOW;
    } else {
      e = gbx_errbuf_set(eb, GBX_E_UNKNOWN_ATTRIBUTE, "unknown queue attribute '%.*s'",
                         (int)(k->type == MSGPACK_OBJECT_STR ? k->via.str.size : 1),
                         k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "?");
    }
    if (e)
      return e;
  }
  if (a->policy && !a->policy[0]) {
    free(a->policy);
    a->policy = NULL;
  }
  if (a->redrive_allow && !a->redrive_allow[0]) {
    free(a->redrive_allow);
    a->redrive_allow = NULL;
  }
  return GBX_E_OK;
}

/* Parses a tag map into malloc'd tags (caller frees with ops_tags_free). */
gbx_err_t ops_parse_tags(const msgpack_object *map, qtag_t **out, uint32_t *n, gbx_errbuf_t *eb) {
  *out = NULL;
  *n = 0;
  if (!map || !map->via.map.size)
    return GBX_E_OK;
  qtag_t *t = calloc(map->via.map.size, sizeof(*t));
  if (!t)
    abort();
  *out = t;
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
    if (v->type != MSGPACK_OBJECT_STR)
      return gbx_errbuf_set(eb, GBX_E_BAD_TYPE, "tag values must be strings");
    if (k->via.str.size == 0 || k->via.str.size > GBX_MAX_TAG_KEY ||
        v->via.str.size > GBX_MAX_TAG_VALUE)
      return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE,
                            "tag keys are 1-128 and values 0-256 characters");
    /* kept as C strings (a NUL would cut them: an empty key would be stored)
     * and shown as XML and JSON on the AWS face: text only */
    uint32_t bad;
    if (!text_valid((const uint8_t *)k->via.str.ptr, k->via.str.size, &bad) ||
        !text_valid((const uint8_t *)v->via.str.ptr, v->via.str.size, &bad))
      return gbx_errbuf_set(eb, GBX_E_BAD_TYPE,
                            "tag keys and values must be text: UTF-8 without NUL or control "
                            "characters");
    t[i].key = str_copy(k->via.str.ptr, k->via.str.size);
    t[i].value = str_copy(v->via.str.ptr, v->via.str.size);
    *n = i + 1;
    if (!t[i].key || !t[i].value)
      abort();
  }
  return GBX_E_OK;
}

void ops_tags_free(qtag_t *t, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    free(t[i].key);
    free(t[i].value);
  }
  free(t);
}

gbx_err_t ops_check_policy(req_t *q, const char *text) {
  char why[200];
  if (authz_check_policy(q->s, text, why, sizeof(why)) == 0)
    return GBX_E_OK;
  return gbx_errbuf_set(&q->eb, GBX_E_BAD_POLICY, "attribute 'Policy': %s", why);
}

static void op_queue_create(req_t *q) {
  const char *name;
  uint32_t nl;
  const msgpack_object *am = NULL, *tm = NULL;
  qattrs_t a;
  unsigned mask = 0;
  qtag_t *tags = NULL;
  uint32_t ntags = 0;
  char nbuf[GBX_MAX_NAME + 1];
  int created = 0;
  gbx_err_t e;
  qattrs_defaults(&a);
  if ((e = gbx_get_str(q->m, "q", 1, 0, UINT32_MAX, &name, &nl, NULL, &q->eb)))
    goto out;
  if (!gbx_name_valid(name, nl)) {
    e = gbx_errbuf_set(&q->eb, GBX_E_BAD_NAME, "queue name must be 1-80 characters of A-Za-z0-9_-");
    goto out;
  }
  if (!ops_authorize(q, q->action, AUTHZ_QUEUE, name, nl))
    return;
  if ((e = gbx_get_map(q->m, "attrs", 0, 32, &am, NULL, &q->eb)))
    goto out;
  if ((e = gbx_get_map(q->m, "tags", 0, GBX_MAX_TAGS, &tm, NULL, &q->eb)))
    goto out;
  if (am && (e = parse_qattrs(am, &a, &mask, &q->eb)))
    goto out;
  if ((e = ops_parse_tags(tm, &tags, &ntags, &q->eb)))
    goto out;
  /* a dead-letter queue is written into: it needs send permission there */
  if ((mask & QA_DLQ) && a.dlq[0] &&
      !ops_authorize(q, "sqs:SendMessage", AUTHZ_QUEUE, a.dlq, strlen(a.dlq))) {
    qattrs_free(&a);
    ops_tags_free(tags, ntags);
    return;
  }
  if ((mask & QA_POLICY) && (e = ops_check_policy(q, a.policy)))
    goto out;
  memcpy(nbuf, name, nl);
  nbuf[nl] = 0;
  e = broker_queue_create(q->s->broker, nbuf, &a, tags, ntags, q->now, &created, &q->eb);
out:
  qattrs_free(&a);
  ops_tags_free(tags, ntags);
  if (e) {
    ops_fail(q, e);
    return;
  }
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_kv_bool(pk, "created", created);
  ops_rend(&r, q->c);
}

static void op_queue_delete(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  if (!qu)
    return;
  broker_queue_delete(q->s->broker, qu, q->now);
  ops_reply_ok(q->s, q->c, q->id);
}

static void collect(void *ctx, const queue_t *qu) {
  names_t *ns = ctx;
  ns->last = qu->name;
  if (ns->q && !ops_may_see(ns->q, AUTHZ_QUEUE, qu->name, strlen(qu->name)))
    return;
  if (ns->n < OPS_MAX_NAMES)
    ns->v[ns->n++] = qu->name;
}

names_t *ops_names_new(void) {
  names_t *ns = malloc(sizeof(*ns));
  if (!ns)
    abort();
  ns->n = 0;
  ns->last = NULL;
  ns->q = NULL;
  return ns;
}

void ops_reply_names(req_t *q, const char *field, names_t *ns, int more) {
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, more ? 2 : 1);
  gbx_pack_cstr(pk, field);
  msgpack_pack_array(pk, ns->n);
  for (uint32_t i = 0; i < ns->n; i++)
    gbx_pack_cstr(pk, ns->v[i]);
  /* the token is the last name listed, never one hidden from the caller */
  if (more && ns->n)
    gbx_pack_kv_cstr(pk, "next", ns->v[ns->n - 1]);
  ops_rend(&r, q->c);
  free(ns);
}

gbx_err_t ops_list_args(req_t *q, const char **prefix, uint32_t *pl, const char **next,
                        uint32_t *nl, uint64_t *max) {
  gbx_err_t e;
  *prefix = *next = "";
  *pl = *nl = 0;
  *max = 1000;
  if ((e = gbx_get_str(q->m, "prefix", 0, 0, GBX_MAX_NAME, prefix, pl, NULL, &q->eb)) ||
      (e = gbx_get_str(q->m, "next", 0, 0, GBX_MAX_NAME, next, nl, NULL, &q->eb)) ||
      (e = gbx_get_u64(q->m, "max", 0, 1, OPS_MAX_NAMES, max, NULL, &q->eb)))
    return e;
  return GBX_E_OK;
}

static void op_queue_list(req_t *q) {
  const char *prefix, *next;
  uint32_t pl, nl;
  uint64_t max;
  int more = 0;
  gbx_err_t e = ops_list_args(q, &prefix, &pl, &next, &nl, &max);
  if (e) {
    ops_fail(q, e);
    return;
  }
  names_t *ns = ops_names_new();
  ns->q = q;
  /* hidden names do not count: scan on until max are listed or none are left */
  do {
    ns->last = NULL;
    broker_queue_list(q->s->broker, prefix, pl, next, nl, (uint32_t)(max - ns->n), collect, ns,
                      &more);
    if (!ns->last)
      break;
    next = ns->last;
    nl = (uint32_t)strlen(next);
  } while (more && ns->n < max);
  ops_reply_names(q, "queues", ns, more && ns->n);
}

static void op_queue_get_attrs(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  if (!qu)
    return;
  const qattrs_t *a = &qu->rec.a;
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 2);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 17);
  gbx_pack_kv_u64(pk, "VisibilityTimeout", a->vis);
  gbx_pack_kv_u64(pk, "DelaySeconds", a->delay);
  gbx_pack_kv_u64(pk, "MessageRetentionPeriod", a->retention);
  gbx_pack_kv_u64(pk, "MaximumMessageSize", a->max_size);
  gbx_pack_kv_u64(pk, "ReceiveMessageWaitTimeSeconds", a->wait);
  gbx_pack_kv_cstr(pk, "DeadLetterQueue", a->dlq);
  gbx_pack_kv_u64(pk, "MaxReceiveCount", a->max_receives);
  gbx_pack_kv_cstr(pk, "Policy", a->policy ? a->policy : "");
  gbx_pack_kv_cstr(pk, "RedriveAllowPolicy", a->redrive_allow ? a->redrive_allow : "");
  gbx_pack_kv_u64(pk, "ApproximateNumberOfMessages", qu->nvisible);
  gbx_pack_kv_u64(pk, "ApproximateNumberOfMessagesNotVisible", qu->ninflight);
  gbx_pack_kv_u64(pk, "ApproximateNumberOfMessagesDelayed", qu->ndelayed);
  gbx_pack_kv_u64(pk, "ApproximateAgeOfOldestMessage", broker_oldest_age(q->s->broker, qu, q->now));
  gbx_pack_kv_u64(pk, "CreatedTimestamp", (uint64_t)qu->rec.created_ms / 1000);
  gbx_pack_kv_u64(pk, "LastModifiedTimestamp", (uint64_t)qu->rec.modified_ms / 1000);
  gbx_pack_kv_u64(pk, "QueueBytes", qu->bytes);
  gbx_pack_kv_u64(pk, "QueueId", qu->rec.qid);
  ops_pack_tags(pk, qu->rec.tags, qu->rec.ntags);
  ops_rend(&r, q->c);
}

static void op_queue_set_attrs(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  const msgpack_object *am;
  if (!qu)
    return;
  gbx_err_t e = gbx_get_map(q->m, "attrs", 1, 32, &am, NULL, &q->eb);
  qattrs_t a;
  unsigned mask = 0;
  if (e) {
    ops_fail(q, e);
    return;
  }
  if (qattrs_copy(&a, &qu->rec.a) != 0)
    abort();
  e = parse_qattrs(am, &a, &mask, &q->eb);
  /* a dead-letter queue is written into: it needs send permission there */
  if (!e && (mask & QA_DLQ) && a.dlq[0] &&
      !ops_authorize(q, "sqs:SendMessage", AUTHZ_QUEUE, a.dlq, strlen(a.dlq))) {
    qattrs_free(&a);
    return;
  }
  if (!e && (mask & QA_POLICY))
    e = ops_check_policy(q, a.policy);
  if (!e)
    e = broker_queue_set_attrs(q->s->broker, qu, &a, mask, q->now, &q->eb);
  qattrs_free(&a);
  if (e)
    ops_fail(q, e);
  else
    ops_reply_ok(q->s, q->c, q->id);
}

static void op_queue_purge(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  uint64_t n = 0;
  if (!qu)
    return;
  broker_queue_purge(q->s->broker, qu, q->now, &n);
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_kv_u64(pk, "purged", n);
  ops_rend(&r, q->c);
}

static void op_queue_tag(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  const msgpack_object *tm;
  qtag_t *tags = NULL;
  uint32_t n = 0;
  if (!qu)
    return;
  gbx_err_t e = gbx_get_map(q->m, "tags", 1, GBX_MAX_TAGS, &tm, NULL, &q->eb);
  if (!e)
    e = ops_parse_tags(tm, &tags, &n, &q->eb);
  if (!e) {
    e = broker_queue_tag(q->s->broker, qu, tags, n, q->now);
    if (e)
      gbx_errbuf_set(&q->eb, e, "a queue has at most %u tags", GBX_MAX_TAGS);
  }
  ops_tags_free(tags, n);
  if (e)
    ops_fail(q, e);
  else
    ops_reply_ok(q->s, q->c, q->id);
}

static void op_queue_untag(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  const msgpack_object_array *ka;
  if (!qu)
    return;
  gbx_err_t e = gbx_get_array(q->m, "keys", 1, 0, GBX_MAX_TAGS, &ka, NULL, &q->eb);
  const char *keys[GBX_MAX_TAGS];
  uint32_t lens[GBX_MAX_TAGS];
  for (uint32_t i = 0; !e && i < ka->size; i++) {
    if (ka->ptr[i].type != MSGPACK_OBJECT_STR) {
      e = gbx_errbuf_set(&q->eb, GBX_E_BAD_TYPE, "field 'keys': tag keys must be strings");
      break;
    }
    keys[i] = ka->ptr[i].via.str.ptr;
    lens[i] = ka->ptr[i].via.str.size;
  }
  if (e) {
    ops_fail(q, e);
    return;
  }
  broker_queue_untag(q->s->broker, qu, keys, lens, ka->size, q->now);
  ops_reply_ok(q->s, q->c, q->id);
}

static void op_queue_dlq_sources(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  if (!qu)
    return;
  names_t *ns = ops_names_new();
  ns->q = q; /* only sources the caller may see */
  broker_dlq_sources(q->s->broker, qu, collect, ns);
  ops_reply_names(q, "queues", ns, 0);
}

/* ---- sending ---- */

/* Decodes one message (body, attrs, delay) from map m and builds its blob.
 * Returns OK with *blob (owned by the caller) and *size. */
static gbx_err_t build_message(server_t *s, const msgpack_object *m, blob_t **blob, uint32_t *size,
                               int32_t *delay, gbx_errbuf_t *eb) {
  const char *body;
  uint32_t bl, na = 0;
  uint64_t d = 0;
  int has_delay = 0;
  const msgpack_object *am = NULL;
  gbx_attr_t attrs[GBX_MAX_ATTRS];
  gbx_err_t e;
  /* sizes and counts are checked below, each with its own error code; the
   * frame limit already bounds what these fields can hold */
  if ((e = gbx_get_bytes(m, "body", 1, UINT32_MAX, &body, &bl, NULL, eb)))
    return e;
  if ((e = gbx_get_u64(m, "delay", 0, 0, GBX_DELAY_MAX, &d, &has_delay, eb)))
    return e;
  if ((e = gbx_get_map(m, "attrs", 0, UINT32_MAX, &am, NULL, eb)))
    return e;
  if (am &&
      ((e = gbx_attrs_decode(am, attrs, &na, eb)) || (e = gbx_attrs_check_numbers(attrs, na, eb))))
    return e;
  uint64_t sz = (uint64_t)bl + gbx_attrs_size(attrs, na);
  if (sz > GBX_MAX_MESSAGE_SIZE)
    return gbx_errbuf_set(eb, GBX_E_MESSAGE_TOO_LONG, "message of %llu bytes exceeds %u",
                          (unsigned long long)sz, GBX_MAX_MESSAGE_SIZE);
  s->scratch.len = 0;
  if (na) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, &s->scratch, gbx_buf_write_cb);
    gbx_attrs_pack(&pk, attrs, na);
  }
  blob_t *b = blob_new((uint32_t)blob_sent_size(bl, (uint32_t)s->scratch.len, 0));
  if (!b)
    return gbx_errbuf_set(eb, GBX_E_NOMEM, "out of memory");
  blob_sent_write(b->data, (const uint8_t *)body, bl, s->scratch.data, (uint32_t)s->scratch.len,
                  NULL, 0);
  *blob = b;
  *size = (uint32_t)sz;
  *delay = has_delay ? (int32_t)d : -1;
  return GBX_E_OK;
}

static gbx_err_t send_one(req_t *q, queue_t *qu, const msgpack_object *m, char mid[GBX_MSGID_LEN]) {
  blob_t *b;
  uint32_t size;
  int32_t delay;
  uint64_t idn;
  if (q->s->disk_low)
    return gbx_errbuf_set(&q->eb, GBX_E_DISK_FULL,
                          "free disk space is below the watermark (--min-free); sends are refused");
  gbx_err_t e = build_message(q->s, m, &b, &size, &delay, &q->eb);
  if (e)
    return e;
  if (size > qu->rec.a.max_size) {
    blob_unref(b);
    return gbx_errbuf_set(&q->eb, GBX_E_MESSAGE_TOO_LONG,
                          "message of %u bytes exceeds the queue's MaximumMessageSize %u", size,
                          qu->rec.a.max_size);
  }
  e = broker_send(q->s->broker, qu, b, size, delay, q->now, &idn);
  if (e)
    return gbx_errbuf_set(&q->eb, e, "%s", gbx_err_message(e));
  ids_msgid(q->s->ids, idn, mid);
  return GBX_E_OK;
}

static void op_send(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  char mid[GBX_MSGID_LEN];
  if (!qu)
    return;
  gbx_err_t e = send_one(q, qu, q->m, mid);
  if (e) {
    ops_fail(q, e);
    return;
  }
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_kv_str(pk, "mid", mid, GBX_MSGID_LEN);
  ops_rend(&r, q->c);
}

/* Validates a batch's shape: entries 1-100 maps, unique entry ids. */
gbx_err_t ops_batch_entries(req_t *q, const msgpack_object_array **ea) {
  gbx_err_t e = gbx_get_array(q->m, "entries", 1, 0, UINT32_MAX, ea, NULL, &q->eb);
  if (e)
    return e;
  if ((*ea)->size == 0)
    return gbx_errbuf_set(&q->eb, GBX_E_EMPTY_BATCH, "field 'entries' is empty");
  if ((*ea)->size > GBX_MAX_BATCH)
    return gbx_errbuf_set(&q->eb, GBX_E_TOO_MANY_ENTRIES, "a batch holds at most %u entries",
                          GBX_MAX_BATCH);
  for (uint32_t i = 0; i < (*ea)->size; i++) {
    const msgpack_object *en = &(*ea)->ptr[i];
    if (en->type != MSGPACK_OBJECT_MAP || !gbx_map_keys_unique(en))
      return gbx_errbuf_set(&q->eb, GBX_E_BAD_TYPE, "entry %u is not a map with unique keys", i);
    const msgpack_object *id = gbx_map_get(en, "eid");
    if (!id)
      continue;
    if (id->type != MSGPACK_OBJECT_STR || !gbx_entry_id_valid(id->via.str.ptr, id->via.str.size))
      return gbx_errbuf_set(&q->eb, GBX_E_BAD_NAME,
                            "entry %u: eid must be 1-80 characters of A-Za-z0-9_-", i);
    for (uint32_t j = 0; j < i; j++) {
      const msgpack_object *o = gbx_map_get(&(*ea)->ptr[j], "eid");
      if (o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == id->via.str.size &&
          memcmp(o->via.str.ptr, id->via.str.ptr, id->via.str.size) == 0)
        return gbx_errbuf_set(&q->eb, GBX_E_DUPLICATE_ENTRY_ID, "entry id '%.*s' appears twice",
                              (int)id->via.str.size, id->via.str.ptr);
    }
  }
  return GBX_E_OK;
}

static void pack_results(req_t *q, const msgpack_object_array *ea, const eres_t *res,
                         int with_mid) {
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_cstr(pk, "results");
  msgpack_pack_array(pk, ea->size);
  for (uint32_t i = 0; i < ea->size; i++) {
    const msgpack_object *id = gbx_map_get(&ea->ptr[i], "eid");
    int ok = res[i].err == GBX_E_OK;
    msgpack_pack_map(pk, (id ? 1u : 0u) + 1u + (ok ? (with_mid ? 1u : 0u) : 1u));
    if (id)
      gbx_pack_kv_str(pk, "eid", id->via.str.ptr, id->via.str.size);
    gbx_pack_kv_u64(pk, "err", res[i].err);
    if (!ok)
      gbx_pack_kv_cstr(pk, "msg", res[i].msg);
    else if (with_mid)
      gbx_pack_kv_str(pk, "mid", res[i].mid, GBX_MSGID_LEN);
  }
  ops_rend(&r, q->c);
}

void ops_entry_result(req_t *q, eres_t *res, gbx_err_t e) {
  res->err = e;
  if (e)
    snprintf(res->msg, sizeof(res->msg), "%s",
             q->eb.code == e && q->eb.msg[0] ? q->eb.msg : gbx_err_message(e));
  q->eb.code = GBX_E_OK;
  q->eb.msg[0] = 0;
}

static void op_send_batch(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  const msgpack_object_array *ea;
  if (!qu)
    return;
  gbx_err_t e = ops_batch_entries(q, &ea);
  if (e) {
    ops_fail(q, e);
    return;
  }
  /* the batch's total payload, as SQS counts it */
  uint64_t total = 0;
  for (uint32_t i = 0; i < ea->size; i++) {
    const msgpack_object *b = gbx_map_get(&ea->ptr[i], "body");
    if (b && (b->type == MSGPACK_OBJECT_STR || b->type == MSGPACK_OBJECT_BIN))
      total += b->via.bin.size;
  }
  if (total > GBX_MAX_BATCH_BYTES) {
    gbx_errbuf_set(&q->eb, GBX_E_BATCH_TOO_LARGE, "batch bodies total %llu bytes, more than %u",
                   (unsigned long long)total, GBX_MAX_BATCH_BYTES);
    ops_fail(q, GBX_E_BATCH_TOO_LARGE);
    return;
  }
  eres_t *res = calloc(ea->size, sizeof(*res));
  if (!res)
    abort();
  for (uint32_t i = 0; i < ea->size; i++)
    ops_entry_result(q, &res[i], send_one(q, qu, &ea->ptr[i], res[i].mid));
  pack_results(q, ea, res, 1);
  free(res);
}

/* ---- receiving ---- */

static void pack_delivery(server_t *s, msgpack_packer *pk, const delivery_t *d) {
  char mid[GBX_MSGID_LEN], rh[IDS_RECEIPT_LEN];
  receipt_t rc = {d->qid, d->seq, d->rc};
  const uint8_t *body, *attrs;
  uint32_t bl, al;
  queue_t *src = d->src_qid ? broker_queue_by_id(s->broker, d->src_qid) : NULL;
  ids_msgid(s->ids, d->idn, mid);
  ids_receipt_make(s->ids, &rc, rh);
  if (blob_parse(d->blob->data, d->blob->len, &body, &bl, &attrs, &al) != 0) {
    bl = al = 0; /* blobs are validated when fetched; a cached one is ours */
    body = attrs = d->blob->data;
  }
  if (d->envelope) {
    /* from a topic without raw delivery: the body is SNS's envelope, and
     * the attributes travel inside it */
    blob_pub_t pm;
    char sid[GBX_MSGID_LEN + 1];
    const char *sidp = NULL;
    queue_t *dq = broker_queue_by_id(s->broker, d->qid);
    if (blob_pub_meta(d->blob->data, d->blob->len, &pm) == 0 && dq) {
      const sub_t *sb = topics_sub_for(s->topics, pm.topic, pm.topic_len, dq->name);
      if (sb) {
        topics_sub_id(s->topics, sb, sid);
        sid[GBX_MSGID_LEN] = 0;
        sidp = sid;
      }
    }
    if (envelope_render(&s->env, s->ids, d->blob->data, d->blob->len, sidp, &s->envbuf) == 0) {
      body = s->envbuf.data;
      bl = (uint32_t)s->envbuf.len;
      al = 0;
    }
  }
  msgpack_pack_map(pk, 6 + (al ? 1u : 0u) + (src ? 1u : 0u));
  gbx_pack_kv_str(pk, "mid", mid, sizeof(mid));
  gbx_pack_kv_str(pk, "rh", rh, sizeof(rh));
  gbx_pack_kv_bin(pk, "body", body, bl);
  gbx_pack_kv_u64(pk, "rc", d->rc);
  gbx_pack_kv_u64(pk, "sent", (uint64_t)d->sent_ms);
  gbx_pack_kv_u64(pk, "first", (uint64_t)d->first_ms);
  if (al) {
    gbx_pack_cstr(pk, "attrs");
    if (gbx_buf_append(&s->out, attrs, al) != 0)
      abort(); /* stored pre-packed */
  }
  if (src)
    gbx_pack_kv_cstr(pk, "src", src->name);
}

/* Packs and queues a receive reply; releases the deliveries' blobs. Items
 * whose body could not be found (purged meanwhile) are left out. */
static void reply_deliveries(server_t *s, conn_t *c, uint64_t id, delivery_t *d, uint32_t n) {
  uint32_t have = 0;
  for (uint32_t i = 0; i < n; i++)
    have += d[i].blob != NULL;
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, s, id, 1);
  gbx_pack_cstr(pk, "msgs");
  msgpack_pack_array(pk, have);
  for (uint32_t i = 0; i < n; i++) {
    if (!d[i].blob)
      continue;
    pack_delivery(s, pk, &d[i]);
    blob_unref(d[i].blob);
    d[i].blob = NULL;
  }
  ops_rend(&r, c);
}

typedef struct rfetch {
  server_t *s;
  conn_t *c;
  uint64_t id;
  uint32_t n;
  delivery_t d[];
} rfetch_t;

static void receive_done(fetch_job_t *j) {
  rfetch_t *rf = j->ud;
  server_t *s = rf->s;
  uint32_t k = 0;
  /* items were added in delivery order, one per missing body */
  for (uint32_t i = 0; i < rf->n && k < j->n; i++) {
    if (rf->d[i].blob)
      continue;
    rf->d[i].blob = j->items[k].blob;
    j->items[k++].blob = NULL;
  }
  s->fetches_in_flight--;
  /* a body absent from the store while the broker still holds its message
   * is damage, not a race (reads wait for the batch that wrote the body, and
   * a purge or delete removes the message first): say so, never hide it */
  for (uint32_t i = 0; i < rf->n && !j->failed; i++) {
    if (rf->d[i].blob)
      continue;
    queue_t *qu = broker_queue_by_id(s->broker, rf->d[i].qid);
    if (qu && queue_find(qu, rf->d[i].seq)) {
      LOG(LOG_ERROR, "the body of message %llu on queue '%s' is missing from the store",
          (unsigned long long)rf->d[i].idn, qu->name);
      j->failed++;
    }
  }
  if (j->failed) {
    /* a read error on the store: say so rather than drop the messages
     * silently (they stay in flight and reappear after their timeout) */
    if (!net_closing(rf->c))
      ops_reply_err(s, rf->c, rf->id, GBX_E_INTERNAL,
                    "reading message bodies from the store failed");
    for (uint32_t i = 0; i < rf->n; i++)
      blob_unref(rf->d[i].blob);
  } else if (!net_closing(rf->c)) {
    reply_deliveries(s, rf->c, rf->id, rf->d, rf->n);
  } else {
    for (uint32_t i = 0; i < rf->n; i++)
      blob_unref(rf->d[i].blob);
  }
  net_conn_unref(rf->c);
  free(rf);
  fetch_job_free(j);
}

static void deliver(server_t *s, conn_t *c, uint64_t id, delivery_t *d, uint32_t n) {
  uint32_t missing = 0;
  for (uint32_t i = 0; i < n; i++)
    missing += d[i].blob == NULL;
  if (!missing) {
    reply_deliveries(s, c, id, d, n);
    return;
  }
  /* some bodies are on disk only: read them off the loop thread, reply then */
  rfetch_t *rf = malloc(sizeof(*rf) + n * sizeof(delivery_t));
  fetch_job_t *j = rf ? fetch_job_new(s->store, missing, receive_done, rf) : NULL;
  if (!j)
    abort();
  rf->s = s;
  rf->c = c;
  rf->id = id;
  rf->n = n;
  memcpy(rf->d, d, n * sizeof(delivery_t));
  for (uint32_t i = 0; i < n; i++)
    if (!d[i].blob)
      fetch_job_add(j, d[i].qid, d[i].seq, d[i].body_id);
  net_conn_ref(c);
  /* a body sent in the batch still being written is not in RocksDB yet */
  server_fetch_after_gate(s, j);
}

static oconn_t *oconn(conn_t *c) {
  oconn_t *oc = net_conn_data(c);
  if (!oc) {
    oc = calloc(1, sizeof(*oc));
    if (!oc)
      abort();
    net_conn_set_data(c, oc);
  }
  return oc;
}

static void op_receive(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  uint64_t max = 1, vis = 0, wait = 0;
  int has_vis = 0, has_wait = 0;
  gbx_err_t e;
  if (!qu)
    return;
  if ((e = gbx_get_u64(q->m, "max", 0, 1, GBX_MAX_RECEIVE, &max, NULL, &q->eb)) ||
      (e = gbx_get_u64(q->m, "vis", 0, 0, GBX_VIS_MAX, &vis, &has_vis, &q->eb)) ||
      (e = gbx_get_u64(q->m, "wait", 0, 0, GBX_WAIT_MAX, &wait, &has_wait, &q->eb))) {
    ops_fail(q, e);
    return;
  }
  if (!has_wait)
    wait = qu->rec.a.wait;
  delivery_t d[GBX_MAX_RECEIVE];
  uint32_t n = 0;
  e = broker_receive(q->s->broker, qu, (uint32_t)max, has_vis ? (int32_t)vis : -1, q->now, d, &n);
  if (e) {
    ops_fail(q, e);
    return;
  }
  if (n || !wait) {
    deliver(q->s, q->c, q->id, d, n);
    return;
  }
  oconn_t *oc = oconn(q->c);
  if (oc->nwaiters >= q->s->cfg.max_waiters) {
    gbx_errbuf_set(&q->eb, GBX_E_TOO_MANY_WAITERS, "at most %u receives may wait per connection",
                   q->s->cfg.max_waiters);
    ops_fail(q, GBX_E_TOO_MANY_WAITERS);
    return;
  }
  waiter_t *w = calloc(1, sizeof(*w));
  if (!w)
    abort();
  w->max = (uint32_t)max;
  w->vis = has_vis ? (int32_t)vis : -1;
  w->owner = q->c;
  w->req_id = q->id;
  w->who = q->who.p ? &oc->id : NULL;
  if (broker_wait(q->s->broker, qu, w, q->now + wait * 1000) != 0)
    abort();
  w->onext = oc->waiters;
  w->oprev = NULL;
  if (oc->waiters)
    oc->waiters->oprev = w;
  oc->waiters = w;
  oc->nwaiters++;
}

static void owner_unlink(oconn_t *oc, waiter_t *w) {
  if (w->oprev)
    w->oprev->onext = w->onext;
  else
    oc->waiters = w->onext;
  if (w->onext)
    w->onext->oprev = w->oprev;
  oc->nwaiters--;
}

void ops_serve_waiter(void *ctx, waiter_t *w, gbx_err_t err, delivery_t *d, uint32_t n) {
  server_t *s = ctx;
  conn_t *c = w->owner;
  owner_unlink(net_conn_data(c), w);
  if (err) {
    ops_reply_err(s, c, w->req_id, err, NULL);
  } else {
    if (n) {
      commit_note_request(s->commit);
      server_note_writer(s, c);
    }
    deliver(s, c, w->req_id, d, n);
  }
  free(w);
}

void ops_end_waits(server_t *s) {
  broker_end_waits(s->broker);
}

void ops_conn_closed(void *ctx, conn_t *c) {
  server_t *s = ctx;
  oconn_t *oc = net_conn_data(c);
  if (!oc)
    return;
  while (oc->waiters) {
    waiter_t *w = oc->waiters;
    broker_waiter_cancel(s->broker, w);
    owner_unlink(oc, w);
    free(w);
  }
  if (oc->parked) {
    for (oconn_t **pp = &s->parked; *pp; pp = &(*pp)->pnext)
      if (*pp == oc) {
        *pp = oc->pnext;
        break;
      }
    free(oc->parked);
  }
  OPENSSL_cleanse(&oc->hs, sizeof(oc->hs));
  free(oc);
  net_conn_set_data(c, NULL);
}

/* ---- deleting and visibility ---- */

static gbx_err_t get_rh(req_t *q, const msgpack_object *m, const char **rh, uint32_t *len) {
  gbx_err_t e = gbx_get_str(m, "rh", 1, 0, UINT32_MAX, rh, len, NULL, &q->eb);
  if (e)
    return e;
  if (*len == 0 || *len > GBX_MAX_RECEIPT)
    return gbx_errbuf_set(&q->eb, GBX_E_RECEIPT_INVALID, "receipt handle of %u characters", *len);
  return GBX_E_OK;
}

static gbx_err_t delete_one(req_t *q, queue_t *qu, const msgpack_object *m) {
  const char *rh;
  uint32_t len;
  gbx_err_t e = get_rh(q, m, &rh, &len);
  if (e)
    return e;
  return broker_delete(q->s->broker, qu, rh, len, q->now);
}

static gbx_err_t vis_one(req_t *q, queue_t *qu, const msgpack_object *m) {
  const char *rh;
  uint32_t len;
  uint64_t vis;
  gbx_err_t e = get_rh(q, m, &rh, &len);
  if (e || (e = gbx_get_u64(m, "vis", 1, 0, GBX_VIS_MAX, &vis, NULL, &q->eb)))
    return e;
  e = broker_change_vis(q->s->broker, qu, rh, len, (uint32_t)vis, q->now);
  if (e == GBX_E_OUT_OF_RANGE)
    gbx_errbuf_set(&q->eb, e, "visibility would end more than 12 hours after the receive");
  return e;
}

static void op_delete(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  if (!qu)
    return;
  gbx_err_t e = delete_one(q, qu, q->m);
  if (e)
    ops_fail(q, e);
  else
    ops_reply_ok(q->s, q->c, q->id);
}

static void op_change_vis(req_t *q) {
  queue_t *qu = need_queue(q, "q");
  if (!qu)
    return;
  gbx_err_t e = vis_one(q, qu, q->m);
  if (e)
    ops_fail(q, e);
  else
    ops_reply_ok(q->s, q->c, q->id);
}

static void batch_apply(req_t *q, gbx_err_t (*one)(req_t *, queue_t *, const msgpack_object *)) {
  queue_t *qu = need_queue(q, "q");
  const msgpack_object_array *ea;
  if (!qu)
    return;
  gbx_err_t e = ops_batch_entries(q, &ea);
  if (e) {
    ops_fail(q, e);
    return;
  }
  eres_t *res = calloc(ea->size, sizeof(*res));
  if (!res)
    abort();
  for (uint32_t i = 0; i < ea->size; i++)
    ops_entry_result(q, &res[i], one(q, qu, &ea->ptr[i]));
  pack_results(q, ea, res, 0);
  free(res);
}

static void op_delete_batch(req_t *q) {
  batch_apply(q, delete_one);
}
static void op_change_vis_batch(req_t *q) {
  batch_apply(q, vis_one);
}

/* ---- redrive ---- */

/* A move back to the source queues writes into each queue its messages
 * came from: every one needs send permission. 1, or 0 after replying
 * access_denied. */
static int may_send_to_sources(req_t *q, queue_t *dlq) {
  char denied[GBX_MAX_NAME + 1];
  authz_source_denied(q->s, &q->who, dlq, denied);
  return !denied[0] || ops_authorize(q, "sqs:SendMessage", AUTHZ_QUEUE, denied, strlen(denied));
}

static void op_redrive_start(req_t *q) {
  queue_t *dlq = need_queue(q, "q"), *dst = NULL;
  uint64_t rate = GBX_REDRIVE_RATE_MAX;
  int has_dst = 0;
  const char *dn;
  uint32_t dl;
  if (!dlq)
    return;
  gbx_err_t e = gbx_get_u64(q->m, "rate", 0, 1, GBX_REDRIVE_RATE_MAX, &rate, NULL, &q->eb);
  if (!e)
    e = gbx_get_str(q->m, "dst", 0, 1, GBX_MAX_NAME, &dn, &dl, &has_dst, &q->eb);
  if (!e && has_dst && !ops_authorize(q, "sqs:SendMessage", AUTHZ_QUEUE, dn, dl))
    return;
  if (!e && !has_dst && !may_send_to_sources(q, dlq))
    return;
  if (!e && has_dst && !(dst = broker_queue(q->s->broker, dn, dl)))
    e = gbx_errbuf_set(&q->eb, GBX_E_QUEUE_NOT_FOUND, "destination queue '%.*s' does not exist",
                       (int)dl, dn);
  if (!e)
    e = broker_redrive_start(q->s->broker, dlq, dst, (uint32_t)rate, q->now, &q->eb);
  if (e) {
    ops_fail(q, e);
    return;
  }
  char task[GBX_MAX_NAME + 32];
  int tl = snprintf(task, sizeof(task), "%s/%llu", dlq->name, (unsigned long long)q->now);
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_kv_str(pk, "task", task, (size_t)tl);
  ops_rend(&r, q->c);
}

static void op_redrive_status(req_t *q) {
  queue_t *dlq = need_queue(q, "q");
  redrive_status_t st;
  if (!dlq)
    return;
  broker_redrive_status(q->s->broker, dlq, &st);
  reply_t r;
  msgpack_packer *pk =
      ops_rbegin(&r, q->s, q->id, 3 + (st.dst[0] ? 1u : 0u) + (st.msg[0] ? 1u : 0u));
  gbx_pack_kv_cstr(pk, "state", st.state);
  gbx_pack_kv_u64(pk, "moved", st.moved);
  gbx_pack_kv_u64(pk, "total", st.total);
  if (st.dst[0])
    gbx_pack_kv_cstr(pk, "dst", st.dst);
  if (st.msg[0])
    gbx_pack_kv_cstr(pk, "msg", st.msg);
  ops_rend(&r, q->c);
}

static void op_redrive_cancel(req_t *q) {
  queue_t *dlq = need_queue(q, "q");
  uint64_t moved = 0;
  if (!dlq)
    return;
  gbx_err_t e = broker_redrive_cancel(q->s->broker, dlq, &moved);
  if (e) {
    ops_fail(q, e);
    return;
  }
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_kv_u64(pk, "moved", moved);
  ops_rend(&r, q->c);
}

/* ---- stats and backup ---- */

static void pack_queue_stats(server_t *s, msgpack_packer *pk, const queue_t *qu, uint64_t now) {
  msgpack_pack_map(pk, 6);
  gbx_pack_kv_cstr(pk, "q", qu->name);
  gbx_pack_kv_u64(pk, "visible", qu->nvisible);
  gbx_pack_kv_u64(pk, "inflight", qu->ninflight);
  gbx_pack_kv_u64(pk, "delayed", qu->ndelayed);
  gbx_pack_kv_u64(pk, "oldest_age", broker_oldest_age(s->broker, qu, now));
  gbx_pack_kv_u64(pk, "bytes", qu->bytes);
}

static void op_stats(req_t *q) {
  int has_q = 0;
  const char *qn;
  uint32_t ql;
  queue_t *one = NULL;
  gbx_err_t e = gbx_get_str(q->m, "q", 0, 1, GBX_MAX_NAME, &qn, &ql, &has_q, &q->eb);
  if (e) {
    ops_fail(q, e);
    return;
  }
  if (has_q && !(one = broker_queue(q->s->broker, qn, ql))) {
    gbx_errbuf_set(&q->eb, GBX_E_QUEUE_NOT_FOUND, "queue '%.*s' does not exist", (int)ql, qn);
    ops_fail(q, GBX_E_QUEUE_NOT_FOUND);
    return;
  }
  broker_stats_t bs;
  commit_stats_t cs;
  broker_get_stats(q->s->broker, &bs);
  commit_get_stats(q->s->commit, &cs);
  names_t *ns = NULL;
  if (!one) {
    int more;
    ns = ops_names_new();
    broker_queue_list(q->s->broker, "", 0, "", 0, OPS_MAX_NAMES, collect, ns, &more);
  }
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 2);
  gbx_pack_cstr(pk, "queues");
  if (one) {
    msgpack_pack_array(pk, 1);
    pack_queue_stats(q->s, pk, one, q->now);
  } else {
    msgpack_pack_array(pk, ns->n);
    for (uint32_t i = 0; i < ns->n; i++)
      pack_queue_stats(q->s, pk, broker_queue(q->s->broker, ns->v[i], strlen(ns->v[i])), q->now);
  }
  gbx_pack_cstr(pk, "broker");
  msgpack_pack_map(pk, 17);
  gbx_pack_kv_u64(pk, "messages", bs.messages);
  gbx_pack_kv_u64(pk, "bytes", bs.bytes);
  gbx_pack_kv_u64(pk, "queues", bs.queues);
  gbx_pack_kv_u64(pk, "connections", net_conn_count(q->s->net));
  gbx_pack_kv_u64(pk, "batches", cs.batches);
  gbx_pack_kv_u64(pk, "synced_mutations", cs.ops);
  gbx_pack_kv_u64(pk, "acked_requests", cs.requests);
  gbx_pack_kv_u64(pk, "msgs_per_sync", cs.commits ? cs.requests / cs.commits : 0);
  gbx_pack_kv_u64(pk, "commit_p50_us", cs.p50_us);
  gbx_pack_kv_u64(pk, "commit_p99_us", cs.p99_us);
  gbx_pack_kv_u64(pk, "index_bytes_per_msg", bs.messages ? bs.index_bytes / bs.messages : 0);
  gbx_pack_kv_u64(pk, "body_cache_bytes", bs.cached_bytes);
  gbx_pack_kv_u64(pk, "sends", bs.sends);
  gbx_pack_kv_u64(pk, "receives", bs.receives);
  gbx_pack_kv_u64(pk, "deletes", bs.deletes);
  gbx_pack_kv_u64(pk, "dead_lettered", bs.dead_lettered);
  gbx_pack_kv_u64(pk, "uptime_s", (q->now - q->s->started_ms) / 1000);
  ops_rend(&r, q->c);
  free(ns);
}

/* A backup on the threadpool: a checkpoint flushes the memtables and links
 * or copies files, which the loop thread must not wait for. It counts as a
 * store read in flight, so a stop waits for it before closing the store. */
typedef struct backup_job {
  uv_work_t work;
  server_t *s;
  conn_t *c;
  uint64_t id;
  int rc;
  char *err;
  char path[PATH_MAX];
} backup_job_t;

static void backup_work(uv_work_t *w) {
  backup_job_t *b = w->data;
  b->rc = store_checkpoint(b->s->store, b->path, &b->err);
}

static void backup_done(uv_work_t *w, int status) {
  backup_job_t *b = w->data;
  server_t *s = b->s;
  s->fetches_in_flight--;
  s->backup_running = 0;
  if (status == 0 && b->rc == 0)
    LOG(LOG_INFO, "backup written to %s", b->path);
  if (!net_closing(b->c) && (status != 0 || b->rc != 0)) {
    char msg[PATH_MAX + 256];
    snprintf(msg, sizeof(msg), "checkpoint to '%s' failed: %s", b->path,
             status   ? uv_strerror(status)
             : b->err ? b->err
                      : "?");
    ops_reply_err(s, b->c, b->id, GBX_E_BACKUP_FAILED, msg);
  } else if (!net_closing(b->c)) {
    reply_t r;
    msgpack_packer *pk = ops_rbegin(&r, s, b->id, 1);
    gbx_pack_kv_cstr(pk, "dir", b->path);
    ops_rend(&r, b->c);
  }
  net_conn_unref(b->c);
  free(b->err);
  free(b);
}

static void op_backup(req_t *q) {
  const char *dir;
  uint32_t dl;
  gbx_err_t e = gbx_get_str(q->m, "dir", 1, 1, PATH_MAX - 1, &dir, &dl, NULL, &q->eb);
  if (e) {
    ops_fail(q, e);
    return;
  }
  if (memchr(dir, 0, dl)) {
    gbx_errbuf_set(&q->eb, GBX_E_BAD_TYPE, "field 'dir' holds a NUL byte");
    ops_fail(q, GBX_E_BAD_TYPE);
    return;
  }
  /* one at a time: a checkpoint holds a threadpool worker that body reads
   * share, for as long as its flush and copies take */
  if (q->s->backup_running) {
    gbx_errbuf_set(&q->eb, GBX_E_BACKUP_FAILED, "a backup is running; try again when it ends");
    ops_fail(q, GBX_E_BACKUP_FAILED);
    return;
  }
  backup_job_t *b = calloc(1, sizeof(*b));
  if (!b)
    abort();
  memcpy(b->path, dir, dl);
  b->path[dl] = 0;
  b->s = q->s;
  b->c = q->c;
  b->id = q->id;
  b->work.data = b;
  int rc = uv_queue_work(q->s->loop, &b->work, backup_work, backup_done);
  if (rc != 0) {
    gbx_errbuf_set(&q->eb, GBX_E_BACKUP_FAILED, "cannot start the checkpoint: %s", uv_strerror(rc));
    free(b);
    ops_fail(q, GBX_E_BACKUP_FAILED);
    return;
  }
  net_conn_ref(q->c);
  q->s->fetches_in_flight++;
  q->s->backup_running = 1;
}

/* ---- dispatch ---- */

/* ---- authentication and authorization ---- */

int ops_authorize(req_t *q, const char *action, authz_kind_t kind, const char *name, size_t nl) {
  if (!q->who.p)
    return 1;
  if (authz_allowed(q->s, &q->who, action, kind, name, nl, 1))
    return 1;
  char arn[384];
  authz_arn(q->s, kind, name, nl, arn, sizeof(arn));
  gbx_errbuf_set(&q->eb, GBX_E_ACCESS_DENIED, "principal '%s' may not %s on %s", q->who.p->name,
                 action, arn);
  ops_fail(q, GBX_E_ACCESS_DENIED);
  return 0;
}

int ops_may_see(req_t *q, authz_kind_t kind, const char *name, size_t nl) {
  return !q->who.p || authz_allowed(q->s, &q->who, q->action, kind, name, nl, 0);
}

static void op_auth_begin(req_t *q) {
  oconn_t *oc = oconn(q->c);
  gbx_err_t e = hs_begin(&oc->hs, q->m, auth_creds(q->s->auth), gbx_auth_random, &q->eb);
  if (e) {
    ops_fail(q, e);
    return;
  }
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_kv_bin(pk, "nonce", oc->hs.nonce, GBX_AUTH_NONCE);
  ops_rend(&r, q->c);
}

/* Failed proofs after which a connection is closed (each also slows its
 * address down; a new connection starts over only on the count). */
#define MAX_FAILS_PER_CONN 5

/* The throttle's key for c's peer: its IPv4 address, or its IPv6 /64 (one
 * host commonly holds a whole /64, so single addresses would be free). */
static void peer_addr(conn_t *c, char *buf, size_t cap) {
  const char *p = net_conn_peer(c), *colon = strrchr(p, ':');
  size_t n = colon ? (size_t)(colon - p) : strlen(p);
  char ip[64];
  struct in6_addr a6;
  if (n >= sizeof(ip))
    n = sizeof(ip) - 1;
  memcpy(ip, p, n);
  ip[n] = 0;
  if (strchr(ip, ':') && inet_pton(AF_INET6, ip, &a6) == 1) {
    memset(a6.s6_addr + 8, 0, 8);
    char net[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, net, sizeof(net));
    snprintf(buf, cap, "%s/64", net);
    return;
  }
  snprintf(buf, cap, "%s", ip);
}

static void park(req_t *q, oconn_t *oc, const uint8_t *p, uint32_t len, uint64_t until) {
  oc->parked = malloc(len);
  if (!oc->parked)
    abort();
  memcpy(oc->parked, p, len);
  oc->parked_len = len;
  oc->parked_until = until;
  oc->c = q->c;
  oc->pnext = q->s->parked;
  q->s->parked = oc;
  net_conn_pause(q->c);
}

static void op_auth_prove(req_t *q) {
  oconn_t *oc = oconn(q->c);
  const principal_t *p;
  uint8_t sproof[GBX_AUTH_PROOF];
  hs_outcome_t how;
  char addr[64];
  gbx_err_t e = hs_prove(&oc->hs, q->m, auth_creds(q->s->auth), &p, sproof, &how, &q->eb);
  if (e) {
    if (how == HS_UNKNOWN_KEY || how == HS_WRONG_PROOF) {
      peer_addr(q->c, addr, sizeof(addr));
      auth_guard_fail(q->s->auth, addr, q->now, 0);
      authz_audit_auth("native", oc->hs.key, net_conn_peer(q->c),
                       how == HS_WRONG_PROOF ? "wrong proof (secret)" : "unknown access key id");
    }
    ops_fail(q, e);
    if (oc->hs.fails >= MAX_FAILS_PER_CONN)
      net_close(q->c, "too many failed authentications");
    return;
  }
  /* a success does not clear the address's failures: a valid key of one's
   * own must not reset the throttle on guesses at another key */
  auth_id_of(p, &oc->id);
  oc->p = p;
  oc->gen = auth_generation(q->s->auth);
  net_conn_set_authed(q->c);
  LOG(LOG_DEBUG, "authenticated principal=%s addr=%s", p->name, net_conn_peer(q->c));
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 2);
  gbx_pack_kv_cstr(pk, "principal", p->name);
  gbx_pack_kv_bin(pk, "sproof", sproof, GBX_AUTH_PROOF);
  ops_rend(&r, q->c);
  OPENSSL_cleanse(sproof, sizeof(sproof));
}

static void op_whoami(req_t *q) {
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, q->who.p ? 2 : 1);
  gbx_pack_kv_bool(pk, "auth", q->who.p != NULL);
  if (q->who.p)
    gbx_pack_kv_cstr(pk, "principal", q->who.p->name);
  ops_rend(&r, q->c);
}

void ops_release_parked(server_t *s, uint64_t now) {
  oconn_t **pp = &s->parked;
  while (*pp) {
    oconn_t *oc = *pp;
    if (oc->parked_until > now) {
      pp = &oc->pnext;
      continue;
    }
    *pp = oc->pnext;
    uint8_t *f = oc->parked;
    uint32_t fl = oc->parked_len;
    oc->parked = NULL;
    conn_t *c = oc->c;
    net_conn_ref(c);
    ops_frame(s, c, f, fl); /* evaluated now (it may park again, or close c) */
    free(f);
    if (!net_closing(c) && !oc->parked)
      net_conn_resume(c);
    net_conn_unref(c);
    pp = &s->parked; /* the list may have changed */
  }
}

uint64_t ops_parked_due(const server_t *s) {
  uint64_t due = UINT64_MAX;
  for (const oconn_t *oc = s->parked; oc; oc = oc->pnext)
    if (oc->parked_until < due)
      due = oc->parked_until;
  return due;
}

static gbx_err_t waiter_verdict(void *ctx, const waiter_t *w) {
  server_t *s = ctx;
  if (!w->who)
    return GBX_E_OK;
  const principal_t *p = auth_current(s->auth, w->who);
  if (!p)
    return GBX_E_AUTH_REVOKED;
  authz_who_t who = {p, "(long poll)"};
  return authz_allowed(s, &who, "sqs:ReceiveMessage", AUTHZ_QUEUE, w->q->name, strlen(w->q->name),
                       1)
             ? GBX_E_OK
             : GBX_E_ACCESS_DENIED;
}

void ops_auth_changed(server_t *s) {
  authz_forget(s->authz);
  broker_end_waits_if(s->broker, waiter_verdict, s);
}

/* The caller of a request on c, or an error: authentication is on and c has
 * not authenticated, or its credentials were revoked since. */
static gbx_err_t caller(server_t *s, conn_t *c, authz_who_t *who) {
  oconn_t *oc = oconn(c);
  if (!oc->hs.authed)
    return GBX_E_UNAUTHENTICATED;
  uint64_t gen = auth_generation(s->auth);
  if (oc->gen != gen) {
    oc->p = auth_current(s->auth, &oc->id);
    oc->gen = gen;
    if (!oc->p)
      oc->revoked = 1;
  }
  if (oc->revoked)
    return GBX_E_AUTH_REVOKED;
  who->p = oc->p;
  who->addr = net_conn_peer(c);
  return GBX_E_OK;
}

static void op_ping(req_t *q) {
  ops_reply_ok(q->s, q->c, q->id);
}

typedef void (*handler_t)(req_t *);

enum {
#define GBX_OP(sym, code, name, action) OP_##sym = code,
#include "gbx_ops.def"
#undef GBX_OP
};

static handler_t handler_for(uint64_t op) {
  switch (op) {
  case OP_PING:
    return op_ping;
  case OP_AUTH_BEGIN:
    return op_auth_begin;
  case OP_AUTH_PROVE:
    return op_auth_prove;
  case OP_WHOAMI:
    return op_whoami;
  case OP_PRINCIPAL_PUT:
    return op_principal_put;
  case OP_PRINCIPAL_DELETE:
    return op_principal_delete;
  case OP_PRINCIPAL_LIST:
    return op_principal_list;
  case OP_QUEUE_CREATE:
    return op_queue_create;
  case OP_QUEUE_DELETE:
    return op_queue_delete;
  case OP_QUEUE_LIST:
    return op_queue_list;
  case OP_QUEUE_GET_ATTRS:
    return op_queue_get_attrs;
  case OP_QUEUE_SET_ATTRS:
    return op_queue_set_attrs;
  case OP_QUEUE_PURGE:
    return op_queue_purge;
  case OP_QUEUE_TAG:
    return op_queue_tag;
  case OP_QUEUE_UNTAG:
    return op_queue_untag;
  case OP_QUEUE_DLQ_SOURCES:
    return op_queue_dlq_sources;
  case OP_SEND:
    return op_send;
  case OP_SEND_BATCH:
    return op_send_batch;
  case OP_RECEIVE:
    return op_receive;
  case OP_DELETE:
    return op_delete;
  case OP_DELETE_BATCH:
    return op_delete_batch;
  case OP_CHANGE_VIS:
    return op_change_vis;
  case OP_CHANGE_VIS_BATCH:
    return op_change_vis_batch;
  case OP_REDRIVE_START:
    return op_redrive_start;
  case OP_REDRIVE_STATUS:
    return op_redrive_status;
  case OP_REDRIVE_CANCEL:
    return op_redrive_cancel;
  case OP_STATS:
    return op_stats;
  case OP_BACKUP:
    return op_backup;
  case OP_TOPIC_CREATE:
    return op_topic_create;
  case OP_TOPIC_DELETE:
    return op_topic_delete;
  case OP_TOPIC_LIST:
    return op_topic_list;
  case OP_TOPIC_GET_ATTRS:
    return op_topic_get_attrs;
  case OP_TOPIC_SET_ATTRS:
    return op_topic_set_attrs;
  case OP_SUBSCRIBE:
    return op_subscribe;
  case OP_UNSUBSCRIBE:
    return op_unsubscribe;
  case OP_SUB_LIST:
    return op_sub_list;
  case OP_SUB_GET_ATTRS:
    return op_sub_get_attrs;
  case OP_SUB_SET_ATTRS:
    return op_sub_set_attrs;
  case OP_PUBLISH:
    return op_publish;
  case OP_PUBLISH_BATCH:
    return op_publish_batch;
  }
  return NULL;
}

int ops_handles(uint64_t op) {
  return handler_for(op) != NULL;
}

/* Operations on the server rather than a named queue or topic. */
static int is_server_op(uint64_t op) {
  return op == OP_STATS || op == OP_BACKUP || op == OP_PRINCIPAL_PUT || op == OP_PRINCIPAL_DELETE ||
         op == OP_PRINCIPAL_LIST;
}

static const char *action_for(uint64_t op) {
  switch (op) {
#define GBX_OP(sym, code, name, action)                                                            \
  case code:                                                                                       \
    return action;
#include "gbx_ops.def"
#undef GBX_OP
  }
  return "";
}

void ops_frame(void *ctx, conn_t *c, const uint8_t *p, uint32_t len) {
  server_t *s = ctx;
  gbx_doc_t d;
  req_t q;
  memset(&q.eb, 0, sizeof(q.eb));
  q.s = s;
  q.c = c;
  q.id = 0;
  q.now = uv_now(s->loop);
  gbx_err_t e = gbx_doc_parse(&d, p, len, &q.eb);
  if (e) {
    ops_reply_err(s, c, 0, e, q.eb.msg);
    return;
  }
  q.m = &d.root;
  uint64_t op = 0;
  if ((e = gbx_get_u64(q.m, "id", 1, 0, UINT64_MAX, &q.id, NULL, &q.eb)) ||
      (e = gbx_get_u64(q.m, "op", 1, 0, UINT64_MAX, &op, NULL, &q.eb))) {
    ops_fail(&q, e);
    goto out;
  }
  handler_t h = handler_for(op);
  q.action = action_for(op);
  q.who.p = NULL;
  q.who.addr = NULL;
  if (h && auth_enabled(s->auth) && op != OP_PING && op != OP_AUTH_BEGIN && op != OP_AUTH_PROVE &&
      (e = caller(s, c, &q.who))) {
    ops_fail(&q, e);
    if (e == GBX_E_AUTH_REVOKED)
      net_close(c, "credentials revoked");
    goto out;
  }
  if (h == op_auth_prove) {
    /* the throttle: an address that failed recently waits before its next
     * proof is even evaluated (the connection stops being read meanwhile) */
    oconn_t *oc = oconn(c);
    char addr[64];
    peer_addr(c, addr, sizeof(addr));
    uint64_t wait = auth_enabled(s->auth) ? auth_guard_wait(s->auth, addr, q.now) : 0;
    if (wait) {
      park(&q, oc, p, len, q.now + wait);
      goto out;
    }
  }
  if (h && q.who.p && is_server_op(op) && !ops_authorize(&q, q.action, AUTHZ_SERVER, "", 0))
    goto out;
  if (!h) {
    gbx_errbuf_set(&q.eb, GBX_E_UNKNOWN_OP, "unknown operation %llu", (unsigned long long)op);
    ops_fail(&q, GBX_E_UNKNOWN_OP);
  } else if (s->stopping) {
    ops_fail(&q, GBX_E_SHUTTING_DOWN);
  } else {
    /* a request that put mutations into the open batch is one of those
     * the batch's sync acknowledges (stats: requests per sync) */
    size_t before = store_batch_count(commit_batch(s->commit));
    h(&q);
    if (store_batch_count(commit_batch(s->commit)) > before) {
      commit_note_request(s->commit);
      server_note_writer(s, c);
    }
  }
out:
  gbx_doc_free(&d);
}
