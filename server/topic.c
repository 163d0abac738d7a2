/* topic.c - see topic.h. */
#include "topic.h"

#include "strutil.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

#define TOPIC_REC_VERSION 1u
#define SUB_REC_VERSION   1u

struct topics {
  broker_t *b;
  journal_t j;
  const envelope_ctx_t *env;
  gbx_buf_t envbuf;
  topic_t **byname; /* sorted by name */
  uint32_t n, cap;
  sub_t **subs; /* sorted by number */
  uint32_t nsubs, capsubs;
  gbx_buf_t scratch;
};

#define J_PUT(t, k, kl, v, vl) (t)->j.put((t)->j.ctx, STORE_CF_META, k, kl, v, vl)
#define J_DEL(t, k, kl)        (t)->j.del((t)->j.ctx, STORE_CF_META, k, kl)

static void *xcalloc(size_t n, size_t sz) {
  void *p = calloc(n, sz);
  if (!p)
    abort(); /* small internal allocations: see broker.c */
  return p;
}

static char *xstrndup(const char *s, size_t n) {
  char *d = str_copy(s, n);
  if (!d)
    abort();
  return d;
}

topics_t *topics_new(broker_t *b, const journal_t *j) {
  topics_t *t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->b = b;
  t->j = *j;
  gbx_buf_init(&t->scratch);
  gbx_buf_init(&t->envbuf);
  return t;
}

void topics_set_envelope(topics_t *t, const envelope_ctx_t *ctx) {
  t->env = ctx;
}

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF) without NUL: SNS messages are text, and the JSON
 * envelope cannot carry anything else. */
static int utf8_text(const uint8_t *s, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    if (c == 0)
      return 0;
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (!len || c > 0xf4 || i + len > n)
      return 0;
    uint32_t cp = c & (0x7f >> len);
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
      return 0;
    i += len;
  }
  return 1;
}

static void sub_free(sub_t *s) {
  filter_free(s->filter);
  free(s->filter_json);
  free(s);
}

static void topic_free(topic_t *tp) {
  free(tp->display);
  free(tp->policy);
  for (uint32_t i = 0; i < tp->ntags; i++) {
    free(tp->tags[i].key);
    free(tp->tags[i].value);
  }
  free(tp->tags);
  free(tp);
}

void topics_free(topics_t *t) {
  if (!t)
    return;
  for (uint32_t i = 0; i < t->nsubs; i++)
    sub_free(t->subs[i]);
  for (uint32_t i = 0; i < t->n; i++)
    topic_free(t->byname[i]);
  free(t->subs);
  free(t->byname);
  gbx_buf_free(&t->scratch);
  gbx_buf_free(&t->envbuf);
  free(t);
}

/* ---- registry ---- */

static int name_cmp(const char *a, size_t al, const char *bn) {
  size_t bl = strlen(bn);
  int c = memcmp(a, bn, al < bl ? al : bl);
  return c ? c : (al < bl ? -1 : al > bl);
}

static uint32_t lower_bound(const topics_t *t, const char *name, size_t len) {
  uint32_t lo = 0, hi = t->n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (name_cmp(name, len, t->byname[mid]->name) > 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

topic_t *topics_find(const topics_t *t, const char *name, size_t len) {
  uint32_t i = lower_bound(t, name, len);
  return i < t->n && name_cmp(name, len, t->byname[i]->name) == 0 ? t->byname[i] : NULL;
}

static void topic_insert(topics_t *t, topic_t *tp) {
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 16;
    topic_t **a = realloc(t->byname, t->cap * sizeof(*a));
    if (!a)
      abort();
    t->byname = a;
  }
  uint32_t i = lower_bound(t, tp->name, strlen(tp->name));
  memmove(t->byname + i + 1, t->byname + i, (t->n - i) * sizeof(*t->byname));
  t->byname[i] = tp;
  t->n++;
}

static uint32_t sub_index(const topics_t *t, uint64_t num) {
  uint32_t lo = 0, hi = t->nsubs;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (t->subs[mid]->num < num)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void sub_insert(topics_t *t, sub_t *s) {
  if (t->nsubs == t->capsubs) {
    t->capsubs = t->capsubs ? t->capsubs * 2 : 16;
    sub_t **a = realloc(t->subs, t->capsubs * sizeof(*a));
    if (!a)
      abort();
    t->subs = a;
  }
  uint32_t i = sub_index(t, s->num);
  memmove(t->subs + i + 1, t->subs + i, (t->nsubs - i) * sizeof(*t->subs));
  t->subs[i] = s;
  t->nsubs++;
  s->next = s->topic->subs;
  s->topic->subs = s;
  s->topic->nsubs++;
}

static void sub_remove(topics_t *t, sub_t *s) {
  uint32_t i = sub_index(t, s->num);
  if (i < t->nsubs && t->subs[i] == s) {
    memmove(t->subs + i, t->subs + i + 1, (t->nsubs - i - 1) * sizeof(*t->subs));
    t->nsubs--;
  }
  for (sub_t **p = &s->topic->subs; *p; p = &(*p)->next) {
    if (*p == s) {
      *p = s->next;
      s->topic->nsubs--;
      break;
    }
  }
}

/* ---- records ---- */

static void persist_topic(topics_t *t, const topic_t *tp) {
  msgpack_packer pk;
  uint8_t k[1 + GBX_MAX_NAME];
  size_t nl = strlen(tp->name);
  t->scratch.len = 0;
  msgpack_packer_init(&pk, &t->scratch, gbx_buf_write_cb);
  msgpack_pack_map(&pk, 5);
  gbx_pack_kv_u64(&pk, "v", TOPIC_REC_VERSION);
  gbx_pack_kv_i64(&pk, "created", tp->created_ms);
  gbx_pack_kv_cstr(&pk, "display", tp->display ? tp->display : "");
  gbx_pack_kv_cstr(&pk, "policy", tp->policy ? tp->policy : "");
  gbx_pack_cstr(&pk, "tags");
  msgpack_pack_map(&pk, tp->ntags);
  for (uint32_t i = 0; i < tp->ntags; i++) {
    gbx_pack_cstr(&pk, tp->tags[i].key);
    gbx_pack_cstr(&pk, tp->tags[i].value);
  }
  k[0] = 'T';
  memcpy(k + 1, tp->name, nl);
  J_PUT(t, k, 1 + nl, t->scratch.data, t->scratch.len);
}

static void sub_key(uint8_t k[9], uint64_t num) {
  k[0] = 'U';
  be64_put(k + 1, num);
}

static void persist_sub(topics_t *t, const sub_t *s) {
  msgpack_packer pk;
  uint8_t k[9];
  t->scratch.len = 0;
  msgpack_packer_init(&pk, &t->scratch, gbx_buf_write_cb);
  msgpack_pack_map(&pk, 6);
  gbx_pack_kv_u64(&pk, "v", SUB_REC_VERSION);
  gbx_pack_kv_cstr(&pk, "topic", s->topic->name);
  gbx_pack_kv_cstr(&pk, "queue", s->queue);
  gbx_pack_kv_cstr(&pk, "filter", s->filter_json ? s->filter_json : "");
  gbx_pack_kv_u64(&pk, "scope", (uint64_t)s->scope);
  gbx_pack_kv_bool(&pk, "raw", s->raw);
  sub_key(k, s->num);
  J_PUT(t, k, sizeof(k), t->scratch.data, t->scratch.len);
}

int topics_restore_topic(topics_t *t, const char *name, const void *v, size_t vl,
                         gbx_errbuf_t *eb) {
  gbx_doc_t d;
  uint64_t ver, created;
  const char *disp, *pol;
  uint32_t dl, pl;
  const msgpack_object *tags;
  if (gbx_doc_parse(&d, v, vl, eb) != GBX_E_OK)
    return -1;
  if (gbx_get_u64(&d.root, "v", 1, TOPIC_REC_VERSION, TOPIC_REC_VERSION, &ver, NULL, eb) ||
      gbx_get_u64(&d.root, "created", 1, 0, INT64_MAX, &created, NULL, eb) ||
      gbx_get_str(&d.root, "display", 1, 0, TOPIC_MAX_DISPLAY, &disp, &dl, NULL, eb) ||
      gbx_get_str(&d.root, "policy", 1, 0, GBX_MAX_POLICY, &pol, &pl, NULL, eb) ||
      gbx_get_map(&d.root, "tags", 1, GBX_MAX_TAGS, &tags, NULL, eb)) {
    gbx_doc_free(&d);
    return -1;
  }
  topic_t *tp = xcalloc(1, sizeof(*tp));
  snprintf(tp->name, sizeof(tp->name), "%s", name);
  tp->created_ms = (int64_t)created;
  if (dl)
    tp->display = xstrndup(disp, dl);
  if (pl)
    tp->policy = xstrndup(pol, pl);
  if (tags->via.map.size) {
    tp->tags = xcalloc(tags->via.map.size, sizeof(*tp->tags));
    for (uint32_t i = 0; i < tags->via.map.size; i++) {
      const msgpack_object *k = &tags->via.map.ptr[i].key, *val = &tags->via.map.ptr[i].val;
      if (val->type != MSGPACK_OBJECT_STR)
        continue;
      tp->tags[tp->ntags].key = xstrndup(k->via.str.ptr, k->via.str.size);
      tp->tags[tp->ntags++].value = xstrndup(val->via.str.ptr, val->via.str.size);
    }
  }
  gbx_doc_free(&d);
  topic_insert(t, tp);
  return 0;
}

static gbx_err_t compile(sub_t *s, const char *json, size_t len, int scope, gbx_errbuf_t *eb) {
  filter_t *f = NULL;
  if (len) {
    f = filter_compile(json, len, scope, eb);
    if (!f)
      return eb && eb->code ? eb->code : GBX_E_BAD_FILTER_POLICY;
  }
  filter_free(s->filter);
  free(s->filter_json);
  s->filter = f;
  s->filter_json = len ? xstrndup(json, len) : NULL;
  s->scope = scope;
  return GBX_E_OK;
}

/* A filter policy a client sets must be text (text.h); the store's are
 * compiled as they are. */
static gbx_err_t new_filter_ok(const sub_attrs_t *a, gbx_errbuf_t *eb) {
  if (!(a->set & SA_FILTER) || !a->filter_len || text_json_valid(a->filter, a->filter_len))
    return GBX_E_OK;
  return gbx_errbuf_set(eb, GBX_E_BAD_FILTER_POLICY,
                        "filter policy must be text: UTF-8 without NUL or control characters");
}

int topics_restore_sub(topics_t *t, uint64_t num, const void *v, size_t vl, gbx_errbuf_t *eb) {
  gbx_doc_t d;
  uint64_t ver, scope;
  int raw;
  const char *tn, *qn, *fj;
  uint32_t tl, ql, fl;
  /* Subscription numbers come from the broker's counter: one out of its
   * range is damage, and the counter must resume above every one kept. */
  if (num == 0 || num >= RECORDS_COUNTER_MAX) {
    gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE, "subscription number %llu is out of range",
                   (unsigned long long)num);
    return -1;
  }
  if (gbx_doc_parse(&d, v, vl, eb) != GBX_E_OK)
    return -1;
  int bad = gbx_get_u64(&d.root, "v", 1, SUB_REC_VERSION, SUB_REC_VERSION, &ver, NULL, eb) ||
            gbx_get_str(&d.root, "topic", 1, 1, GBX_MAX_NAME, &tn, &tl, NULL, eb) ||
            gbx_get_str(&d.root, "queue", 1, 1, GBX_MAX_NAME, &qn, &ql, NULL, eb) ||
            gbx_get_str(&d.root, "filter", 1, 0, UINT32_MAX, &fj, &fl, NULL, eb) ||
            gbx_get_u64(&d.root, "scope", 1, 0, 1, &scope, NULL, eb) ||
            gbx_get_bool(&d.root, "raw", 1, &raw, NULL, eb);
  topic_t *tp = bad ? NULL : topics_find(t, tn, tl);
  if (!bad && !tp) {
    gbx_errbuf_set(eb, GBX_E_TOPIC_NOT_FOUND, "subscription of unknown topic '%.*s'", (int)tl, tn);
    bad = 1;
  }
  sub_t *s = NULL;
  if (!bad) {
    s = xcalloc(1, sizeof(*s));
    s->num = num;
    s->topic = tp;
    memcpy(s->queue, qn, ql);
    s->raw = raw;
    if (compile(s, fj, fl, (int)scope, eb) != GBX_E_OK) {
      free(s);
      bad = 1;
    }
  }
  gbx_doc_free(&d);
  if (bad)
    return -1;
  sub_insert(t, s);
  broker_restore_counter(t->b, num + 1, 0); /* in range: checked above */
  return 0;
}

/* ---- topics ---- */

static int streq_opt(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "") == 0;
}

gbx_err_t topics_create(topics_t *t, const char *name, const char *display, const char *policy,
                        const qtag_t *tags, uint32_t ntags, uint64_t now, int *created,
                        gbx_errbuf_t *eb) {
  topic_t *tp = topics_find(t, name, strlen(name));
  *created = 0;
  if (tp) {
    /* SNS: CreateTopic is idempotent; attributes given must match */
    if ((display && !streq_opt(display, tp->display)) || (policy && !streq_opt(policy, tp->policy)))
      return gbx_errbuf_set(eb, GBX_E_TOPIC_EXISTS, "topic '%s' exists with different attributes",
                            name);
    return GBX_E_OK;
  }
  tp = xcalloc(1, sizeof(*tp));
  snprintf(tp->name, sizeof(tp->name), "%s", name);
  tp->created_ms = broker_wall(t->b, now);
  if (display && display[0])
    tp->display = xstrndup(display, strlen(display));
  if (policy && policy[0])
    tp->policy = xstrndup(policy, strlen(policy));
  qtags_set(&tp->tags, &tp->ntags, tags, ntags); /* a key given twice: kept once, last value */
  persist_topic(t, tp);
  topic_insert(t, tp);
  *created = 1;
  return GBX_E_OK;
}

gbx_err_t topics_delete(topics_t *t, topic_t *tp) {
  uint8_t k[1 + GBX_MAX_NAME];
  size_t nl = strlen(tp->name);
  /* its subscriptions go with it; messages already delivered stay */
  while (tp->subs) {
    sub_t *s = tp->subs;
    uint8_t sk[9];
    sub_key(sk, s->num);
    J_DEL(t, sk, sizeof(sk));
    sub_remove(t, s);
    sub_free(s);
  }
  k[0] = 'T';
  memcpy(k + 1, tp->name, nl);
  J_DEL(t, k, 1 + nl);
  uint32_t i = lower_bound(t, tp->name, nl);
  memmove(t->byname + i, t->byname + i + 1, (t->n - i - 1) * sizeof(*t->byname));
  t->n--;
  topic_free(tp);
  return GBX_E_OK;
}

gbx_err_t topics_set_attrs(topics_t *t, topic_t *tp, const char *display, const char *policy) {
  if (display) {
    free(tp->display);
    tp->display = display[0] ? xstrndup(display, strlen(display)) : NULL;
  }
  if (policy) {
    free(tp->policy);
    tp->policy = policy[0] ? xstrndup(policy, strlen(policy)) : NULL;
  }
  persist_topic(t, tp);
  return GBX_E_OK;
}

uint32_t topics_list(topics_t *t, const char *prefix, size_t plen, const char *after, size_t alen,
                     uint32_t max, void (*cb)(void *, const topic_t *), void *ctx, int *more) {
  uint32_t i = lower_bound(t, prefix, plen), n = 0;
  if (alen) {
    uint32_t j = lower_bound(t, after, alen);
    if (j < t->n && name_cmp(after, alen, t->byname[j]->name) == 0)
      j++;
    if (j > i)
      i = j;
  }
  *more = 0;
  for (; i < t->n && strncmp(t->byname[i]->name, prefix, plen) == 0; i++) {
    if (n == max) {
      *more = 1;
      break;
    }
    cb(ctx, t->byname[i]);
    n++;
  }
  return n;
}

/* ---- subscriptions ---- */

const sub_t *topics_sub_for(const topics_t *t, const char *topic, size_t tl, const char *queue) {
  const topic_t *tp = topics_find(t, topic, tl);
  for (const sub_t *s = tp ? tp->subs : NULL; s; s = s->next)
    if (strcmp(s->queue, queue) == 0)
      return s;
  return NULL;
}

void topics_sub_id(const topics_t *t, const sub_t *s, char out[GBX_MSGID_LEN]) {
  ids_msgid(broker_ids(t->b), s->num, out);
}

sub_t *topics_sub_find(const topics_t *t, const char *id, size_t len) {
  uint64_t num;
  if (ids_msgid_parse(broker_ids(t->b), id, len, &num) != 0)
    return NULL;
  uint32_t i = sub_index(t, num);
  return i < t->nsubs && t->subs[i]->num == num ? t->subs[i] : NULL;
}

static int same_settings(const sub_t *s, const sub_attrs_t *a) {
  const char *f = (a->set & SA_FILTER) && a->filter_len ? a->filter : NULL;
  size_t fl = f ? a->filter_len : 0;
  int scope = (a->set & SA_SCOPE) ? a->scope : FILTER_SCOPE_ATTRIBUTES;
  int raw = (a->set & SA_RAW) ? a->raw : 0;
  size_t have = s->filter_json ? strlen(s->filter_json) : 0;
  return have == fl && (!fl || memcmp(s->filter_json, f, fl) == 0) && s->scope == scope &&
         s->raw == raw;
}

gbx_err_t topics_subscribe(topics_t *t, topic_t *tp, const char *queue, const sub_attrs_t *a,
                           sub_t **out, gbx_errbuf_t *eb) {
  for (sub_t *s = tp->subs; s; s = s->next) {
    if (strcmp(s->queue, queue) != 0)
      continue;
    if (!same_settings(s, a))
      return gbx_errbuf_set(eb, GBX_E_SUBSCRIPTION_EXISTS,
                            "queue '%s' is subscribed to '%s' with different attributes", queue,
                            tp->name);
    *out = s;
    return GBX_E_OK;
  }
  gbx_err_t e = new_filter_ok(a, eb);
  if (e)
    return e;
  sub_t *s = xcalloc(1, sizeof(*s));
  s->topic = tp;
  snprintf(s->queue, sizeof(s->queue), "%s", queue);
  s->raw = (a->set & SA_RAW) ? a->raw : 0;
  int scope = (a->set & SA_SCOPE) ? a->scope : FILTER_SCOPE_ATTRIBUTES;
  e = compile(s, (a->set & SA_FILTER) ? a->filter : NULL, (a->set & SA_FILTER) ? a->filter_len : 0,
              scope, eb);
  if (e) {
    free(s);
    return e;
  }
  s->num = broker_counter(t->b);
  persist_sub(t, s);
  sub_insert(t, s);
  *out = s;
  return GBX_E_OK;
}

gbx_err_t topics_unsubscribe(topics_t *t, sub_t *s) {
  uint8_t k[9];
  sub_key(k, s->num);
  J_DEL(t, k, sizeof(k));
  sub_remove(t, s);
  sub_free(s);
  return GBX_E_OK;
}

gbx_err_t topics_sub_set_attrs(topics_t *t, sub_t *s, const sub_attrs_t *a, gbx_errbuf_t *eb) {
  gbx_err_t ok = new_filter_ok(a, eb);
  if (ok)
    return ok;
  if (a->set & (SA_FILTER | SA_SCOPE)) {
    /* recompile with the new policy and/or scope; on error nothing changes */
    const char *f = (a->set & SA_FILTER) ? a->filter : s->filter_json;
    size_t fl =
        (a->set & SA_FILTER) ? a->filter_len : (s->filter_json ? strlen(s->filter_json) : 0);
    int scope = (a->set & SA_SCOPE) ? a->scope : s->scope;
    char *copy = fl ? xstrndup(f, fl) : NULL; /* f may be s->filter_json itself */
    gbx_err_t e = compile(s, copy, fl, scope, eb);
    free(copy);
    if (e)
      return e;
  }
  if (a->set & SA_RAW)
    s->raw = a->raw;
  persist_sub(t, s);
  return GBX_E_OK;
}

uint32_t topics_sub_list(topics_t *t, const topic_t *tp, const char *queue, uint64_t after,
                         uint32_t max, void (*cb)(void *, const sub_t *), void *ctx, int *more) {
  uint32_t n = 0;
  *more = 0;
  for (uint32_t i = after ? sub_index(t, after + 1) : 0; i < t->nsubs; i++) {
    const sub_t *s = t->subs[i];
    if ((tp && s->topic != tp) || (queue && strcmp(s->queue, queue) != 0))
      continue;
    if (n == max) {
      *more = 1;
      break;
    }
    cb(ctx, s);
    n++;
  }
  return n;
}

/* ---- publish ---- */

gbx_err_t topics_publish(topics_t *t, topic_t *tp, const uint8_t *body, uint32_t body_len,
                         const gbx_attr_t *attrs, uint32_t nattrs, const char *subject,
                         size_t subject_len, uint64_t now, uint64_t *pub_idn, uint32_t *delivered,
                         gbx_errbuf_t *eb) {
  uint64_t size = (uint64_t)body_len + gbx_attrs_size(attrs, nattrs);
  *delivered = 0;
  if (size > TOPIC_MAX_MESSAGE)
    return gbx_errbuf_set(eb, GBX_E_MESSAGE_TOO_LONG, "message of %llu bytes exceeds SNS's %u",
                          (unsigned long long)size, TOPIC_MAX_MESSAGE);
  if (!utf8_text(body, body_len) || (subject && !utf8_text((const uint8_t *)subject, subject_len)))
    return gbx_errbuf_set(eb, GBX_E_INVALID_MESSAGE,
                          "message and subject must be UTF-8 text without NUL characters");
  for (uint32_t i = 0; i < nattrs; i++)
    if (strncmp(attrs[i].type, "Binary", attrs[i].type_len < 6 ? attrs[i].type_len : 6) != 0 &&
        !utf8_text((const uint8_t *)attrs[i].value, attrs[i].value_len))
      return gbx_errbuf_set(eb, GBX_E_INVALID_MESSAGE,
                            "attribute '%.*s' must be UTF-8 text without NUL characters",
                            (int)attrs[i].name_len, attrs[i].name);
  /* match once per subscription against a message parsed once */
  queue_t *qs_small[16], **qs = qs_small;
  uint8_t env_small[16], *env = env_small;
  if (tp->nsubs > 16) {
    qs = malloc(tp->nsubs * sizeof(*qs));
    env = malloc(tp->nsubs);
    if (!qs || !env)
      abort();
  }
  filter_msg_t fm;
  filter_msg_init(&fm, attrs, nattrs, (const char *)body, body_len);
  uint32_t n = 0, nenv = 0;
  for (const sub_t *s = tp->subs; s; s = s->next) {
    queue_t *q = broker_queue(t->b, s->queue, strlen(s->queue));
    if (!q)
      continue; /* deleted: skipped until it exists again */
    if (s->filter && !filter_match(s->filter, &fm))
      continue;
    qs[n] = q;
    env[n++] = !s->raw;
    nenv += !s->raw;
  }
  filter_msg_free(&fm);
  *pub_idn = broker_counter(t->b);
  gbx_err_t e = GBX_E_OK;
  t->scratch.len = 0;
  if (nattrs) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, &t->scratch, gbx_buf_write_cb);
    gbx_attrs_pack(&pk, attrs, nattrs);
  }
  size_t bl = blob_pub_size(body_len, (uint32_t)t->scratch.len, (uint32_t)strlen(tp->name),
                            (uint32_t)subject_len);
  blob_t *blob = n ? blob_new((uint32_t)bl) : NULL;
  if (n && !blob)
    abort();
  if (blob)
    blob_pub_write(blob->data, body, body_len, t->scratch.data, (uint32_t)t->scratch.len, *pub_idn,
                   broker_wall(t->b, now), tp->name, (uint32_t)strlen(tp->name), subject,
                   (uint32_t)subject_len);
  /* an enveloped copy is as long as its envelope, the same for every
   * subscription (ids are fixed-length): render it once to measure it */
  uint32_t env_size = (uint32_t)size;
  if (nenv && t->env) {
    static const char any_id[GBX_MSGID_LEN + 1] = "00000000-0000-0000-0000-000000000000";
    if (envelope_render(t->env, broker_ids(t->b), blob->data, blob->len, any_id, &t->envbuf) == 0)
      env_size = (uint32_t)t->envbuf.len;
  }
  uint32_t sizes_small[16], *sizes = n > 16 ? malloc(n * sizeof(*sizes)) : sizes_small;
  if (!sizes)
    abort();
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t sz = env[i] ? env_size : (uint32_t)size;
    if (sz > qs[i]->rec.a.max_size)
      continue; /* SQS would refuse it: not delivered */
    qs[k] = qs[i];
    env[k] = env[i];
    sizes[k++] = sz;
  }
  n = k;
  if (n) {
    uint64_t idns_small[16], *idns = n > 16 ? malloc(n * sizeof(*idns)) : idns_small;
    if (!idns)
      abort();
    e = broker_fanout(t->b, qs, env, n, blob, sizes, now, idns);
    if (idns != idns_small)
      free(idns);
    if (e)
      gbx_errbuf_set(eb, e, "%s", gbx_err_message(e));
    else
      *delivered = n;
  } else {
    blob_unref(blob);
  }
  if (sizes != sizes_small)
    free(sizes);
  if (qs != qs_small) {
    free(qs);
    free(env);
  }
  return e;
}
