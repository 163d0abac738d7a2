/* ops_topic.c - the protocol layer's handlers for topics, subscriptions
 * and publish (see ops.c for the conventions). */
#include <stdlib.h>
#include <string.h>

#include "ops_int.h"

/* ---- topics ---- */

static topic_t *need_topic(req_t *q) {
  const char *name;
  uint32_t nl;
  if (ops_need_name(q, "t", &name, &nl) != 0)
    return NULL;
  if (!ops_authorize(q, q->action, AUTHZ_TOPIC, name, nl))
    return NULL;
  topic_t *tp = topics_find(q->s->topics, name, nl);
  if (!tp) {
    gbx_errbuf_set(&q->eb, GBX_E_TOPIC_NOT_FOUND, "topic '%.*s' does not exist", (int)nl, name);
    ops_fail(q, GBX_E_TOPIC_NOT_FOUND);
  }
  return tp;
}

/* Reads DisplayName / Policy from an attribute map into malloc'd strings
 * (NULL when absent). */
static gbx_err_t topic_attrs(req_t *q, const msgpack_object *am, char **display, char **policy) {
  *display = *policy = NULL;
  for (uint32_t i = 0; am && i < am->via.map.size; i++) {
    const msgpack_object *k = &am->via.map.ptr[i].key, *v = &am->via.map.ptr[i].val;
    gbx_err_t e;
    if (ops_key_is(k, "DisplayName"))
      e = ops_attr_str(k, v, TOPIC_MAX_DISPLAY, 0, display, &q->eb);
    else if (ops_key_is(k, "Policy"))
      e = ops_attr_str(k, v, GBX_MAX_POLICY, 1, policy, &q->eb);
    else
      e = gbx_errbuf_set(&q->eb, GBX_E_UNKNOWN_ATTRIBUTE, "unknown topic attribute '%.*s'",
                         (int)k->via.str.size, k->via.str.ptr);
    if (e) {
      free(*display);
      free(*policy);
      *display = *policy = NULL;
      return e;
    }
  }
  return GBX_E_OK;
}

void op_topic_create(req_t *q) {
  const char *name;
  uint32_t nl;
  const msgpack_object *am = NULL, *tm = NULL;
  char nbuf[GBX_MAX_NAME + 1], *display = NULL, *policy = NULL;
  qtag_t *tags = NULL;
  uint32_t ntags = 0;
  int created = 0;
  gbx_err_t e;
  if ((e = gbx_get_str(q->m, "t", 1, 0, UINT32_MAX, &name, &nl, NULL, &q->eb)))
    goto out;
  if (!gbx_name_valid(name, nl)) {
    e = gbx_errbuf_set(&q->eb, GBX_E_BAD_NAME, "topic name must be 1-80 characters of A-Za-z0-9_-");
    goto out;
  }
  if (!ops_authorize(q, q->action, AUTHZ_TOPIC, name, nl))
    return;
  if ((e = gbx_get_map(q->m, "attrs", 0, 8, &am, NULL, &q->eb)) ||
      (e = gbx_get_map(q->m, "tags", 0, GBX_MAX_TAGS, &tm, NULL, &q->eb)) ||
      (e = topic_attrs(q, am, &display, &policy)) ||
      (e = ops_parse_tags(tm, &tags, &ntags, &q->eb)) || (e = ops_check_policy(q, policy)))
    goto out;
  memcpy(nbuf, name, nl);
  nbuf[nl] = 0;
  e = topics_create(q->s->topics, nbuf, display, policy, tags, ntags, q->now, &created, &q->eb);
out:
  free(display);
  free(policy);
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

void op_topic_delete(req_t *q) {
  topic_t *tp = need_topic(q);
  if (!tp)
    return;
  topics_delete(q->s->topics, tp);
  ops_reply_ok(q->s, q->c, q->id);
}

static void tcollect(void *ctx, const topic_t *tp) {
  names_t *ns = ctx;
  ns->last = tp->name;
  if (ns->q && !ops_may_see(ns->q, AUTHZ_TOPIC, tp->name, strlen(tp->name)))
    return;
  if (ns->n < OPS_MAX_NAMES)
    ns->v[ns->n++] = tp->name;
}

void op_topic_list(req_t *q) {
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
    topics_list(q->s->topics, prefix, pl, next, nl, (uint32_t)(max - ns->n), tcollect, ns, &more);
    if (!ns->last)
      break;
    next = ns->last;
    nl = (uint32_t)strlen(next);
  } while (more && ns->n < max);
  ops_reply_names(q, "topics", ns, more && ns->n);
}

void op_topic_get_attrs(req_t *q) {
  topic_t *tp = need_topic(q);
  if (!tp)
    return;
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 2);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 6);
  gbx_pack_kv_cstr(pk, "DisplayName", tp->display ? tp->display : "");
  gbx_pack_kv_cstr(pk, "Policy", tp->policy ? tp->policy : "");
  gbx_pack_kv_u64(pk, "SubscriptionsConfirmed", tp->nsubs);
  gbx_pack_kv_u64(pk, "SubscriptionsPending", 0);
  gbx_pack_kv_u64(pk, "SubscriptionsDeleted", 0);
  gbx_pack_kv_u64(pk, "CreatedTimestamp", (uint64_t)tp->created_ms / 1000);
  ops_pack_tags(pk, tp->tags, tp->ntags);
  ops_rend(&r, q->c);
}

void op_topic_set_attrs(req_t *q) {
  topic_t *tp = need_topic(q);
  const msgpack_object *am;
  char *display = NULL, *policy = NULL;
  if (!tp)
    return;
  gbx_err_t e = gbx_get_map(q->m, "attrs", 1, 8, &am, NULL, &q->eb);
  if (!e)
    e = topic_attrs(q, am, &display, &policy);
  if (!e)
    e = ops_check_policy(q, policy);
  if (!e)
    topics_set_attrs(q->s->topics, tp, display, policy);
  free(display);
  free(policy);
  if (e)
    ops_fail(q, e);
  else
    ops_reply_ok(q->s, q->c, q->id);
}

/* Reads subscription attributes (FilterPolicy, FilterPolicyScope,
 * RawMessageDelivery); pointers refer into the request. */
static gbx_err_t parse_sub_attrs(req_t *q, const msgpack_object *am, sub_attrs_t *a) {
  memset(a, 0, sizeof(*a));
  for (uint32_t i = 0; am && i < am->via.map.size; i++) {
    const msgpack_object *k = &am->via.map.ptr[i].key, *v = &am->via.map.ptr[i].val;
    if (ops_key_is(k, "FilterPolicy")) {
      if (v->type != MSGPACK_OBJECT_STR)
        return gbx_errbuf_set(&q->eb, GBX_E_BAD_TYPE, "attribute 'FilterPolicy' must be a string");
      a->set |= SA_FILTER;
      a->filter = v->via.str.ptr;
      a->filter_len = v->via.str.size;
    } else if (ops_key_is(k, "FilterPolicyScope")) {
      if (v->type != MSGPACK_OBJECT_STR)
        return gbx_errbuf_set(&q->eb, GBX_E_BAD_TYPE,
                              "attribute 'FilterPolicyScope' must be a string");
      if (v->via.str.size == 17 && !memcmp(v->via.str.ptr, "MessageAttributes", 17))
        a->scope = FILTER_SCOPE_ATTRIBUTES;
      else if (v->via.str.size == 11 && !memcmp(v->via.str.ptr, "MessageBody", 11))
        a->scope = FILTER_SCOPE_BODY;
      else
        return gbx_errbuf_set(&q->eb, GBX_E_OUT_OF_RANGE,
                              "FilterPolicyScope must be MessageAttributes or MessageBody");
      a->set |= SA_SCOPE;
    } else if (ops_key_is(k, "RawMessageDelivery")) {
      if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return gbx_errbuf_set(&q->eb, GBX_E_BAD_TYPE,
                              "attribute 'RawMessageDelivery' must be a bool");
      a->set |= SA_RAW;
      a->raw = v->via.boolean;
    } else {
      return gbx_errbuf_set(&q->eb, GBX_E_UNKNOWN_ATTRIBUTE,
                            "unknown subscription attribute '%.*s'", (int)k->via.str.size,
                            k->via.str.ptr);
    }
  }
  return GBX_E_OK;
}

void op_subscribe(req_t *q) {
  topic_t *tp = need_topic(q);
  const char *qn;
  uint32_t ql;
  const msgpack_object *am = NULL;
  sub_attrs_t a;
  sub_t *s = NULL;
  char qname[GBX_MAX_NAME + 1];
  if (!tp)
    return;
  gbx_err_t e = gbx_get_str(q->m, "q", 1, 0, UINT32_MAX, &qn, &ql, NULL, &q->eb);
  if (!e && !gbx_name_valid(qn, ql))
    e = gbx_errbuf_set(&q->eb, GBX_E_BAD_NAME, "queue name must be 1-80 characters of A-Za-z0-9_-");
  /* the subscription writes every matching publish into the queue */
  if (!e && !ops_authorize(q, "sqs:SendMessage", AUTHZ_QUEUE, qn, ql))
    return;
  if (!e)
    e = gbx_get_map(q->m, "attrs", 0, 8, &am, NULL, &q->eb);
  if (!e)
    e = parse_sub_attrs(q, am, &a);
  if (!e) {
    memcpy(qname, qn, ql);
    qname[ql] = 0;
    e = topics_subscribe(q->s->topics, tp, qname, &a, &s, &q->eb);
  }
  if (e) {
    ops_fail(q, e);
    return;
  }
  char id[GBX_MSGID_LEN];
  topics_sub_id(q->s->topics, s, id);
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_kv_str(pk, "sub", id, sizeof(id));
  ops_rend(&r, q->c);
}

static sub_t *need_sub(req_t *q) {
  const char *id;
  uint32_t il;
  gbx_err_t e = gbx_get_str(q->m, "sub", 1, 0, 256, &id, &il, NULL, &q->eb);
  if (e) {
    ops_fail(q, e);
    return NULL;
  }
  sub_t *s = topics_sub_find(q->s->topics, id, il);
  if (!s) {
    gbx_errbuf_set(&q->eb, GBX_E_SUBSCRIPTION_NOT_FOUND, "subscription '%.*s' does not exist",
                   (int)il, id);
    ops_fail(q, GBX_E_SUBSCRIPTION_NOT_FOUND);
    return NULL;
  }
  /* a subscription is authorized as its topic (SNS: the subscription ARN
   * lives under the topic's) */
  const char *tn = s->topic->name;
  return ops_authorize(q, q->action, AUTHZ_TOPIC, tn, strlen(tn)) ? s : NULL;
}

void op_unsubscribe(req_t *q) {
  sub_t *s = need_sub(q);
  if (!s)
    return;
  topics_unsubscribe(q->s->topics, s);
  ops_reply_ok(q->s, q->c, q->id);
}

typedef struct slist {
  const sub_t *v[1000];
  uint32_t n;
  const sub_t *last; /* scanned last, listed or hidden */
  req_t *q;
} slist_t;

static void scollect(void *ctx, const sub_t *s) {
  slist_t *l = ctx;
  l->last = s;
  /* only subscriptions of topics the caller may list */
  const char *tn = s->topic->name;
  if (!ops_may_see(l->q, AUTHZ_TOPIC, tn, strlen(tn)))
    return;
  if (l->n < 1000)
    l->v[l->n++] = s;
}

void op_sub_list(req_t *q) {
  const char *tn = NULL, *qn = NULL, *next = NULL;
  uint32_t tl = 0, ql = 0, nl = 0;
  int has_t = 0, has_q = 0, has_next = 0, more = 0;
  topic_t *tp = NULL;
  char qname[GBX_MAX_NAME + 1];
  uint64_t after = 0;
  gbx_err_t e;
  if ((e = gbx_get_str(q->m, "t", 0, 1, GBX_MAX_NAME, &tn, &tl, &has_t, &q->eb)) ||
      (e = gbx_get_str(q->m, "q", 0, 1, GBX_MAX_NAME, &qn, &ql, &has_q, &q->eb)) ||
      (e = gbx_get_str(q->m, "next", 0, 0, 256, &next, &nl, &has_next, &q->eb))) {
    ops_fail(q, e);
    return;
  }
  if (has_t && !ops_authorize(q, q->action, AUTHZ_TOPIC, tn, tl))
    return;
  if (has_t && !(tp = topics_find(q->s->topics, tn, tl))) {
    gbx_errbuf_set(&q->eb, GBX_E_TOPIC_NOT_FOUND, "topic '%.*s' does not exist", (int)tl, tn);
    ops_fail(q, GBX_E_TOPIC_NOT_FOUND);
    return;
  }
  if (has_q && !gbx_name_valid(qn, ql)) { /* "x\0y" would list x's */
    gbx_errbuf_set(&q->eb, GBX_E_BAD_NAME, "queue name must be 1-80 characters of A-Za-z0-9_-");
    ops_fail(q, GBX_E_BAD_NAME);
    return;
  }
  if (has_q) {
    memcpy(qname, qn, ql);
    qname[ql] = 0;
  }
  if (has_next && nl && ids_msgid_parse(q->s->ids, next, nl, &after) != 0) {
    gbx_errbuf_set(&q->eb, GBX_E_OUT_OF_RANGE, "field 'next' is not a token from sub_list");
    ops_fail(q, GBX_E_OUT_OF_RANGE);
    return;
  }
  slist_t *l = malloc(sizeof(*l));
  if (!l)
    abort();
  l->n = 0;
  l->q = q;
  /* hidden subscriptions do not count: scan on until a page is listed */
  do {
    l->last = NULL;
    topics_sub_list(q->s->topics, tp, has_q ? qname : NULL, after, 100 - l->n, scollect, l, &more);
    if (!l->last)
      break;
    after = l->last->num;
  } while (more && l->n < 100);
  more = more && l->n;
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, more ? 2 : 1);
  char id[GBX_MSGID_LEN];
  gbx_pack_cstr(pk, "subs");
  msgpack_pack_array(pk, l->n);
  for (uint32_t i = 0; i < l->n; i++) {
    topics_sub_id(q->s->topics, l->v[i], id);
    msgpack_pack_map(pk, 3);
    gbx_pack_kv_str(pk, "sub", id, sizeof(id));
    gbx_pack_kv_cstr(pk, "t", l->v[i]->topic->name);
    gbx_pack_kv_cstr(pk, "q", l->v[i]->queue);
  }
  if (more) {
    topics_sub_id(q->s->topics, l->v[l->n - 1], id);
    gbx_pack_kv_str(pk, "next", id, sizeof(id));
  }
  ops_rend(&r, q->c);
  free(l);
}

void op_sub_get_attrs(req_t *q) {
  sub_t *s = need_sub(q);
  if (!s)
    return;
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_cstr(pk, "attrs");
  msgpack_pack_map(pk, 5);
  gbx_pack_kv_cstr(pk, "TopicName", s->topic->name);
  gbx_pack_kv_cstr(pk, "QueueName", s->queue);
  gbx_pack_kv_cstr(pk, "FilterPolicy", s->filter_json ? s->filter_json : "");
  gbx_pack_kv_cstr(pk, "FilterPolicyScope",
                   s->scope == FILTER_SCOPE_BODY ? "MessageBody" : "MessageAttributes");
  gbx_pack_kv_bool(pk, "RawMessageDelivery", s->raw);
  ops_rend(&r, q->c);
}

void op_sub_set_attrs(req_t *q) {
  sub_t *s = need_sub(q);
  const msgpack_object *am;
  sub_attrs_t a;
  if (!s)
    return;
  gbx_err_t e = gbx_get_map(q->m, "attrs", 1, 8, &am, NULL, &q->eb);
  if (!e)
    e = parse_sub_attrs(q, am, &a);
  if (!e)
    e = topics_sub_set_attrs(q->s->topics, s, &a, &q->eb);
  if (e)
    ops_fail(q, e);
  else
    ops_reply_ok(q->s, q->c, q->id);
}

typedef struct pres {
  char mid[GBX_MSGID_LEN];
  uint32_t delivered;
} pres_t;

static gbx_err_t publish_one(req_t *q, topic_t *tp, const msgpack_object *m, pres_t *out) {
  const char *body, *subj = NULL;
  uint32_t bl, sl = 0, na = 0;
  const msgpack_object *am = NULL;
  gbx_attr_t attrs[GBX_MAX_ATTRS];
  uint64_t pub;
  gbx_err_t e;
  if ((e = gbx_get_bytes(m, "body", 1, UINT32_MAX, &body, &bl, NULL, &q->eb)) ||
      (e = gbx_get_str(m, "subject", 0, 1, TOPIC_MAX_SUBJECT, &subj, &sl, NULL, &q->eb)) ||
      (e = gbx_get_map(m, "attrs", 0, UINT32_MAX, &am, NULL, &q->eb)))
    return e;
  if (am && ((e = gbx_attrs_decode(am, attrs, &na, &q->eb)) ||
             (e = gbx_attrs_check_numbers(attrs, na, &q->eb))))
    return e;
  if (q->s->disk_low)
    return gbx_errbuf_set(
        &q->eb, GBX_E_DISK_FULL,
        "free disk space is below the watermark (--min-free); publishes are refused");
  e = topics_publish(q->s->topics, tp, (const uint8_t *)body, bl, attrs, na, subj, sl, q->now, &pub,
                     &out->delivered, &q->eb);
  if (e)
    return e;
  ids_msgid(q->s->ids, pub, out->mid);
  return GBX_E_OK;
}

void op_publish(req_t *q) {
  topic_t *tp = need_topic(q);
  pres_t pr;
  if (!tp)
    return;
  gbx_err_t e = publish_one(q, tp, q->m, &pr);
  if (e) {
    ops_fail(q, e);
    return;
  }
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 2);
  gbx_pack_kv_str(pk, "mid", pr.mid, sizeof(pr.mid));
  gbx_pack_kv_u64(pk, "delivered", pr.delivered);
  ops_rend(&r, q->c);
}

void op_publish_batch(req_t *q) {
  topic_t *tp = need_topic(q);
  const msgpack_object_array *ea;
  if (!tp)
    return;
  gbx_err_t e = ops_batch_entries(q, &ea);
  if (!e && ea->size > TOPIC_MAX_BATCH)
    e = gbx_errbuf_set(&q->eb, GBX_E_TOO_MANY_ENTRIES, "a publish batch holds at most %u entries",
                       TOPIC_MAX_BATCH);
  if (!e) {
    /* SNS caps a whole PublishBatch at 256 KiB */
    uint64_t total = 0;
    for (uint32_t i = 0; i < ea->size; i++) {
      const msgpack_object *b = gbx_map_get(&ea->ptr[i], "body");
      if (b && (b->type == MSGPACK_OBJECT_STR || b->type == MSGPACK_OBJECT_BIN))
        total += b->via.bin.size;
    }
    if (total > TOPIC_MAX_MESSAGE)
      e = gbx_errbuf_set(&q->eb, GBX_E_BATCH_TOO_LARGE,
                         "publish batch bodies total %llu bytes, more than %u",
                         (unsigned long long)total, TOPIC_MAX_MESSAGE);
  }
  if (e) {
    ops_fail(q, e);
    return;
  }
  eres_t res[TOPIC_MAX_BATCH];
  pres_t pr[TOPIC_MAX_BATCH];
  memset(res, 0, sizeof(res));
  memset(pr, 0, sizeof(pr));
  for (uint32_t i = 0; i < ea->size; i++)
    ops_entry_result(q, &res[i], publish_one(q, tp, &ea->ptr[i], &pr[i]));
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_cstr(pk, "results");
  msgpack_pack_array(pk, ea->size);
  for (uint32_t i = 0; i < ea->size; i++) {
    const msgpack_object *id = gbx_map_get(&ea->ptr[i], "eid");
    int ok = res[i].err == GBX_E_OK;
    msgpack_pack_map(pk, (id ? 1u : 0u) + 1u + (ok ? 2u : 1u));
    if (id)
      gbx_pack_kv_str(pk, "eid", id->via.str.ptr, id->via.str.size);
    gbx_pack_kv_u64(pk, "err", res[i].err);
    if (!ok) {
      gbx_pack_kv_cstr(pk, "msg", res[i].msg);
    } else {
      gbx_pack_kv_str(pk, "mid", pr[i].mid, sizeof(pr[i].mid));
      gbx_pack_kv_u64(pk, "delivered", pr[i].delivered);
    }
  }
  ops_rend(&r, q->c);
}
