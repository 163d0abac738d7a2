/* topics.c - libgearbox's topics and subscriptions (PROTOCOL.md "Topics and
 * subscriptions"): their request frames, the decoding of their replies, the
 * blocking calls, and the pipelined publish with its reply accessors.
 *
 * Built from the same pieces as the queue calls, in the same three steps:
 * build the request (request_begin/request_end of request.c), wait for the
 * reply (conn_call of conn.c), decode it (the checked codec accessors and
 * the one-block allocator of decode.c). Replies are outside input: a
 * missing field, a wrong type or an over-long string is GBX_E_PROTOCOL
 * naming the field, and the connection stays open. */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "reply.h"
#include "request.h"

/* Subscription ids are 36-character UUID strings today; the margin lets a
 * newer server use a longer (ARN-like) form without breaking this client. */
#define SUB_ID_MAX 256u
/* Subscriptions in one sub_list reply. Only the frame size bounds them on
 * the wire; this keeps the allocation for a hostile reply far below what
 * the frame could claim (8 MiB of 1-byte elements). */
#define SUBS_MAX 100000u
/* Attributes of a sub_get_attrs reply: 5 today, the rest room for
 * attributes a newer server adds. */
#define SUB_ATTRS_MAX 64u

/* FilterPolicyScope on the wire. */
#define SCOPE_ATTRIBUTES "MessageAttributes"
#define SCOPE_BODY       "MessageBody"

/* As in ops.c: the request builders report failure only through err, so a
 * caller's NULL is replaced by a local. */
#define ERR_LOCAL(err)                                                                             \
  gbx_error_t err_local_;                                                                          \
  if (!(err))                                                                                      \
  (err) = &err_local_

static const char *nz(const char *s) {
  return s ? s : "";
}

/* ---- request frames ------------------------------------------------------------ */

static unsigned topic_attrs_count(const gbx_topic_attrs_t *a) {
  if (!a)
    return 0;
  return !!(a->set & GBX_TA_DISPLAY_NAME) + !!(a->set & GBX_TA_POLICY);
}

/* Packs a's flagged attributes as a map (a request_attrs_fn). */
static void topic_attrs_pack(msgpack_packer *pk, const void *attrs) {
  const gbx_topic_attrs_t *a = attrs;
  msgpack_pack_map(pk, topic_attrs_count(a));
  if (a && (a->set & GBX_TA_DISPLAY_NAME))
    gbx_pack_kv_cstr(pk, "DisplayName", nz(a->display_name));
  if (a && (a->set & GBX_TA_POLICY))
    gbx_pack_kv_cstr(pk, "Policy", nz(a->policy));
}

static uint64_t request_topic_create(gbx_client_t *c, const char *name,
                                     const gbx_topic_attrs_t *attrs, const gbx_tag_t *tags,
                                     size_t ntags, gbx_error_t *err) {
  return request_create(c, GBX_OP_TOPIC_CREATE, "t", name,
                        topic_attrs_count(attrs) > 0 ? topic_attrs_pack : NULL, attrs, tags, ntags,
                        err);
}

static uint64_t request_topic_set_attrs(gbx_client_t *c, const char *name,
                                        const gbx_topic_attrs_t *attrs, gbx_error_t *err) {
  req_t rq;
  if (conn_check_open(c, err))
    return 0;
  msgpack_packer *pk = request_begin(&rq, c, GBX_OP_TOPIC_SET_ATTRS, 2);
  gbx_pack_kv_cstr(pk, "t", nz(name));
  gbx_pack_cstr(pk, "attrs");
  topic_attrs_pack(pk, attrs);
  return request_end(&rq, 0, err);
}

/* A scope outside the enum cannot be sent: refused before anything is. */
static int sub_attrs_check(const gbx_sub_attrs_t *a, gbx_error_t *err) {
  if (a && (a->set & GBX_SA_FILTER_SCOPE) && a->filter_scope != GBX_FILTER_SCOPE_ATTRIBUTES &&
      a->filter_scope != GBX_FILTER_SCOPE_BODY)
    return conn_seterr(err, GBX_E_OUT_OF_RANGE,
                       "filter scope %d is neither GBX_FILTER_SCOPE_ATTRIBUTES nor "
                       "GBX_FILTER_SCOPE_BODY",
                       a->filter_scope);
  return GBX_E_OK;
}

static unsigned sub_attrs_count(const gbx_sub_attrs_t *a) {
  if (!a)
    return 0;
  return !!(a->set & GBX_SA_FILTER_POLICY) + !!(a->set & GBX_SA_FILTER_SCOPE) +
         !!(a->set & GBX_SA_RAW);
}

static void sub_attrs_pack(msgpack_packer *pk, const gbx_sub_attrs_t *a) {
  msgpack_pack_map(pk, sub_attrs_count(a));
  if (!a)
    return;
  if (a->set & GBX_SA_FILTER_POLICY)
    gbx_pack_kv_cstr(pk, "FilterPolicy", nz(a->filter_policy));
  if (a->set & GBX_SA_FILTER_SCOPE)
    gbx_pack_kv_cstr(pk, "FilterPolicyScope",
                     a->filter_scope == GBX_FILTER_SCOPE_BODY ? SCOPE_BODY : SCOPE_ATTRIBUTES);
  if (a->set & GBX_SA_RAW)
    gbx_pack_kv_bool(pk, "RawMessageDelivery", a->raw != 0);
}

static uint64_t request_subscribe(gbx_client_t *c, const char *topic, const char *queue,
                                  const gbx_sub_attrs_t *attrs, gbx_error_t *err) {
  req_t rq;
  if (conn_check_open(c, err) || sub_attrs_check(attrs, err))
    return 0;
  int with_attrs = sub_attrs_count(attrs) > 0;
  msgpack_packer *pk = request_begin(&rq, c, GBX_OP_SUBSCRIBE, 2 + with_attrs);
  gbx_pack_kv_cstr(pk, "t", nz(topic));
  gbx_pack_kv_cstr(pk, "q", nz(queue));
  if (with_attrs) {
    gbx_pack_cstr(pk, "attrs");
    sub_attrs_pack(pk, attrs);
  }
  return request_end(&rq, 0, err);
}

static uint64_t request_sub_list(gbx_client_t *c, const char *topic, const char *queue,
                                 const char *next, gbx_error_t *err) {
  req_t rq;
  if (conn_check_open(c, err))
    return 0;
  msgpack_packer *pk = request_begin(&rq, c, GBX_OP_SUB_LIST, !!topic + !!queue + !!next);
  if (topic)
    gbx_pack_kv_cstr(pk, "t", topic);
  if (queue)
    gbx_pack_kv_cstr(pk, "q", queue);
  if (next)
    gbx_pack_kv_cstr(pk, "next", next);
  return request_end(&rq, 0, err);
}

static uint64_t request_sub_set_attrs(gbx_client_t *c, const char *sub_id,
                                      const gbx_sub_attrs_t *attrs, gbx_error_t *err) {
  req_t rq;
  if (conn_check_open(c, err) || sub_attrs_check(attrs, err))
    return 0;
  msgpack_packer *pk = request_begin(&rq, c, GBX_OP_SUB_SET_ATTRS, 2);
  gbx_pack_kv_cstr(pk, "sub", nz(sub_id));
  gbx_pack_cstr(pk, "attrs");
  sub_attrs_pack(pk, attrs);
  return request_end(&rq, 0, err);
}

static uint64_t request_publish(gbx_client_t *c, const char *topic, const void *body, size_t len,
                                const gbx_msg_attr_t *attrs, size_t nattrs, const char *subject,
                                gbx_error_t *err) {
  req_t rq;
  gbx_attr_t tmp[GBX_MAX_ATTRS];
  uint64_t total = 0;
  if (conn_check_open(c, err) || request_check_message(body, len, attrs, nattrs, tmp, &total, err))
    return 0;
  msgpack_packer *pk = request_begin(&rq, c, GBX_OP_PUBLISH, 2 + (nattrs > 0) + (subject != NULL));
  gbx_pack_kv_cstr(pk, "t", nz(topic));
  gbx_pack_kv_bin(pk, "body", body, len);
  if (nattrs) {
    gbx_pack_cstr(pk, "attrs");
    gbx_attrs_pack(pk, tmp, (uint32_t)nattrs);
  }
  if (subject)
    gbx_pack_kv_cstr(pk, "subject", subject);
  return request_end(&rq, 0, err);
}

/* Entry i of a gbx_publish_entry_t array, for request_batch. */
static void publish_entry(const void *entries, size_t i, request_entry_t *out) {
  const gbx_publish_entry_t *e = (const gbx_publish_entry_t *)entries + i;
  *out = (request_entry_t){e->eid, e->body, e->body_len, e->attrs, e->nattrs, -1, e->subject};
}

static uint64_t request_publish_batch(gbx_client_t *c, const char *topic,
                                      const gbx_publish_entry_t *entries, size_t n,
                                      gbx_error_t *err) {
  return request_batch(c, GBX_OP_PUBLISH_BATCH, "t", topic, entries, n, GBX_MAX_PUBLISH_BATCH,
                       publish_entry, err);
}

/* ---- reply decoding ---------------------------------------------------------------- */

/* Maps an accessor's error to GBX_E_PROTOCOL, keeping its message. */
static int proto(int rc, gbx_errbuf_t *eb) {
  if (rc == GBX_E_OK)
    return GBX_E_OK;
  eb->code = GBX_E_PROTOCOL;
  return GBX_E_PROTOCOL;
}

/* A required str field that must be a queue or topic name. */
static int get_name(const msgpack_object *map, const char *key, const char **p, uint32_t *n,
                    gbx_errbuf_t *eb) {
  int rc = gbx_get_str(map, key, 1, 1, GBX_MAX_NAME, p, n, NULL, eb);
  if (rc)
    return proto(rc, eb);
  if (!gbx_name_valid(*p, *n))
    return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "field '%s' is not a name", key);
  return GBX_E_OK;
}

/* topic_get_attrs has the shape of queue_get_attrs (a map of uint or str
 * attributes, and tags), so that decoder checks and copies it into one
 * block; the topic's known attributes are then filed by name. */
int reply_decode_topic_info(const gbx_reply_t *r, gbx_topic_info_t *out, gbx_errbuf_t *eb) {
  static const char *const text[] = {"DisplayName", "Policy"};
  static const char *const nums[] = {"SubscriptionsConfirmed", "CreatedTimestamp"};
  gbx_queue_info_t qi;
  int rc = reply_decode_queue_info(r, &qi, eb);
  memset(out, 0, sizeof *out);
  if (rc)
    return rc;
  out->display_name = "";
  out->policy = "";
  for (size_t i = 0; i < qi.nall; i++) {
    const gbx_queue_attr_t *a = &qi.all[i];
    for (size_t k = 0; k < 2; k++) {
      int is_text = strcmp(a->name, text[k]) == 0, is_num = strcmp(a->name, nums[k]) == 0;
      if ((is_text && !a->str) || (is_num && a->str)) {
        gbx_errbuf_set(eb, GBX_E_PROTOCOL, "topic attribute '%s' should be a %s", a->name,
                       is_text ? "str" : "uint");
        gbx_queue_info_free(&qi);
        return GBX_E_PROTOCOL;
      }
      if (is_text)
        *(k == 0 ? &out->display_name : &out->policy) = a->str;
      if (is_num)
        *(k == 0 ? &out->subscriptions : &out->created_s) = a->num;
    }
  }
  out->all = qi.all;
  out->nall = qi.nall;
  out->tags = qi.tags;
  out->ntags = qi.ntags;
  out->block_ = qi.block_;
  return GBX_E_OK;
}

/* Checks subscription i of a sub_list reply; returns its three strings. */
static int sub_elem(const msgpack_object *m, uint32_t i, const char **id, uint32_t *id_len,
                    const char **t, uint32_t *t_len, const char **q, uint32_t *q_len,
                    gbx_errbuf_t *eb) {
  int rc;
  if (m->type != MSGPACK_OBJECT_MAP || !gbx_map_keys_unique(m))
    return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "subs[%u] is not a map with unique str keys", i);
  if ((rc = gbx_get_str(m, "sub", 1, 1, SUB_ID_MAX, id, id_len, NULL, eb)))
    return proto(rc, eb);
  if ((rc = get_name(m, "t", t, t_len, eb)) || (rc = get_name(m, "q", q, q_len, eb)))
    return rc;
  return GBX_E_OK;
}

int reply_decode_sub_list(const gbx_reply_t *r, gbx_sub_list_t *out, gbx_errbuf_t *eb) {
  const msgpack_object_array *arr;
  const char *next = NULL, *id, *t, *q;
  uint32_t next_len = 0, id_len, t_len, q_len;
  int has_next = 0, rc;
  reply_block_t b = {0};

  memset(out, 0, sizeof *out);
  if ((rc = gbx_get_array(reply_root(r), "subs", 1, 0, SUBS_MAX, &arr, NULL, eb)) ||
      (rc = gbx_get_str(reply_root(r), "next", 0, 1, GBX_HARD_MAX_FRAME, &next, &next_len,
                        &has_next, eb)))
    return proto(rc, eb);
  for (uint32_t i = 0; i < arr->size; i++)
    if ((rc = sub_elem(&arr->ptr[i], i, &id, &id_len, &t, &t_len, &q, &q_len, eb)))
      return rc;
  if (reply_block_init(&b, reply_align8((size_t)arr->size * sizeof(gbx_sub_t)) + 8, r->len))
    return gbx_errbuf_set(eb, GBX_E_NOMEM, "out of memory decoding a reply");
  out->subs = reply_block_take(&b, (size_t)arr->size * sizeof(gbx_sub_t), 1);
  for (uint32_t i = 0; i < arr->size; i++) {
    gbx_sub_t *s = &out->subs[i];
    sub_elem(&arr->ptr[i], i, &id, &id_len, &t, &t_len, &q, &q_len, eb); /* checked above */
    s->id = reply_block_str(&b, id, id_len);
    s->topic = reply_block_str(&b, t, t_len);
    s->queue = reply_block_str(&b, q, q_len);
    if (!s->id || !s->topic || !s->queue)
      goto overran;
  }
  if (has_next && !(out->next = reply_block_str(&b, next, next_len)))
    goto overran;
  out->count = arr->size;
  out->block_ = b.base;
  return GBX_E_OK;

overran:
  free(b.base);
  memset(out, 0, sizeof *out);
  return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "result larger than its reply (client bug)");
}

/* Copies a name the caller already checked into a GBX_MAX_NAME+1 buffer. */
static void copy_name(char *dst, const char *p, uint32_t n) {
  memcpy(dst, p, n);
  dst[n] = '\0';
}

int reply_decode_sub_info(const gbx_reply_t *r, gbx_sub_info_t *out, gbx_errbuf_t *eb) {
  const msgpack_object *attrs;
  const char *t, *q, *fp = NULL, *scope = NULL;
  uint32_t t_len, q_len, fp_len = 0, scope_len = 0;
  int has_fp = 0, has_scope = 0, has_raw = 0, raw = 0, rc;

  memset(out, 0, sizeof *out);
  if ((rc = gbx_get_map(reply_root(r), "attrs", 1, SUB_ATTRS_MAX, &attrs, NULL, eb)))
    return proto(rc, eb);
  if ((rc = get_name(attrs, "TopicName", &t, &t_len, eb)) ||
      (rc = get_name(attrs, "QueueName", &q, &q_len, eb)))
    return rc;
  if ((rc = gbx_get_str(attrs, "FilterPolicy", 0, 0, GBX_HARD_MAX_FRAME, &fp, &fp_len, &has_fp,
                        eb)) ||
      (rc =
           gbx_get_str(attrs, "FilterPolicyScope", 0, 0, 64, &scope, &scope_len, &has_scope, eb)) ||
      (rc = gbx_get_bool(attrs, "RawMessageDelivery", 0, &raw, &has_raw, eb)))
    return proto(rc, eb);
  if (has_scope) {
    if (scope_len == strlen(SCOPE_BODY) && memcmp(scope, SCOPE_BODY, scope_len) == 0)
      out->attrs.filter_scope = GBX_FILTER_SCOPE_BODY;
    else if (scope_len == strlen(SCOPE_ATTRIBUTES) &&
             memcmp(scope, SCOPE_ATTRIBUTES, scope_len) == 0)
      out->attrs.filter_scope = GBX_FILTER_SCOPE_ATTRIBUTES;
    else
      return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "FilterPolicyScope '%.*s' is unknown",
                            (int)scope_len, scope);
    out->attrs.set |= GBX_SA_FILTER_SCOPE;
  }
  copy_name(out->topic, t, t_len);
  copy_name(out->queue, q, q_len);
  out->attrs.filter_policy = "";
  if (has_fp) {
    char *copy = malloc((size_t)fp_len + 1);
    if (!copy) {
      memset(out, 0, sizeof *out);
      return gbx_errbuf_set(eb, GBX_E_NOMEM, "out of memory decoding a reply");
    }
    memcpy(copy, fp, fp_len);
    copy[fp_len] = '\0';
    out->attrs.filter_policy = copy;
    out->block_ = copy;
    out->attrs.set |= GBX_SA_FILTER_POLICY;
  }
  if (has_raw) {
    out->attrs.raw = raw;
    out->attrs.set |= GBX_SA_RAW;
  }
  return GBX_E_OK;
}

static int decode_publish(const gbx_reply_t *r, char mid[GBX_MID_BUFSZ], uint32_t *delivered,
                          gbx_errbuf_t *eb) {
  uint64_t n;
  int rc = reply_decode_mid(r, mid, eb);
  if (rc)
    return rc;
  if ((rc = gbx_get_u64(reply_root(r), "delivered", 1, 0, UINT32_MAX, &n, NULL, eb)))
    return proto(rc, eb);
  if (delivered)
    *delivered = (uint32_t)n;
  return GBX_E_OK;
}

/* The per-entry outcomes are a send batch's plus `delivered`: the shared
 * batch decoder checks them, then each successful entry's count is read. */
static int decode_publish_results(const gbx_reply_t *r, gbx_publish_result_t *res, size_t n,
                                  gbx_errbuf_t *eb) {
  gbx_batch_result_t tmp[GBX_MAX_PUBLISH_BATCH];
  const msgpack_object_array *arr;
  int rc;
  if (n == 0 || n > GBX_MAX_PUBLISH_BATCH)
    return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "%zu results asked for, a batch holds 1-%u", n,
                          GBX_MAX_PUBLISH_BATCH);
  if ((rc = reply_decode_batch(r, 1, tmp, n, eb)))
    return rc;
  /* Present with n elements: reply_decode_batch checked it. */
  gbx_get_array(reply_root(r), "results", 1, 0, GBX_MAX_PUBLISH_BATCH, &arr, NULL, eb);
  for (size_t i = 0; i < n; i++) {
    uint64_t d = 0;
    if (tmp[i].code == GBX_E_OK &&
        (rc = gbx_get_u64(&arr->ptr[i], "delivered", 1, 0, UINT32_MAX, &d, NULL, eb)))
      return proto(rc, eb);
    res[i].code = tmp[i].code;
    memcpy(res[i].message, tmp[i].message, sizeof res[i].message);
    memcpy(res[i].mid, tmp[i].mid, sizeof res[i].mid);
    res[i].delivered = (uint32_t)d;
  }
  return GBX_E_OK;
}

/* ---- blocking calls --------------------------------------------------------------- */

/* Waits for the reply to request id (0: building it failed, err is set). */
static int call(gbx_client_t *c, uint64_t id, gbx_reply_t **r, gbx_error_t *err) {
  *r = NULL;
  if (!id)
    return err->code;
  return conn_call(c, id, 0, r, err);
}

/* A call whose reply carries no result fields. */
static int call_simple(gbx_client_t *c, uint64_t id, gbx_error_t *err) {
  gbx_reply_t *r;
  int rc = call(c, id, &r, err);
  gbx_reply_free(r);
  return rc;
}

/* Frees the reply and turns a decoding failure into err. A malformed reply
 * leaves the connection open: its framing was intact. */
static int done(gbx_reply_t *r, int rc, const gbx_errbuf_t *eb, gbx_error_t *err) {
  if (rc)
    conn_seterr(err, rc, "malformed %s reply: %s", request_op_name(r->op), eb->msg);
  gbx_reply_free(r);
  return rc;
}

int gbx_topic_create(gbx_client_t *c, const char *name, const gbx_topic_attrs_t *attrs,
                     const gbx_tag_t *tags, size_t ntags, int *created, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  int made = 0;
  int rc = call(c, request_topic_create(c, name, attrs, tags, ntags, err), &r, err);
  if (rc)
    return rc;
  rc = reply_decode_bool(r, "created", &made, &eb);
  if (!rc && created)
    *created = made;
  return done(r, rc, &eb, err);
}

int gbx_topic_delete(gbx_client_t *c, const char *name, gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_one(c, GBX_OP_TOPIC_DELETE, "t", name, err), err);
}

int gbx_topic_list(gbx_client_t *c, const char *prefix, uint32_t max, const char *next,
                   gbx_topic_list_t *out, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  memset(out, 0, sizeof *out);
  int rc = call(c, request_list(c, GBX_OP_TOPIC_LIST, prefix, max, next, err), &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_names(r, "topics", 1, out, &eb), &eb, err);
}

int gbx_topic_get_attrs(gbx_client_t *c, const char *name, gbx_topic_info_t *out,
                        gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  memset(out, 0, sizeof *out);
  int rc = call(c, request_one(c, GBX_OP_TOPIC_GET_ATTRS, "t", name, err), &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_topic_info(r, out, &eb), &eb, err);
}

void gbx_topic_info_free(gbx_topic_info_t *info) {
  if (!info)
    return;
  free(info->block_);
  memset(info, 0, sizeof *info);
}

int gbx_topic_set_attrs(gbx_client_t *c, const char *name, const gbx_topic_attrs_t *attrs,
                        gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_topic_set_attrs(c, name, attrs, err), err);
}

int gbx_subscribe(gbx_client_t *c, const char *topic, const char *queue,
                  const gbx_sub_attrs_t *attrs, char **sub_id, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  char *id = NULL;
  if (sub_id)
    *sub_id = NULL;
  int rc = call(c, request_subscribe(c, topic, queue, attrs, err), &r, err);
  if (rc)
    return rc;
  rc = reply_decode_strdup(r, "sub", SUB_ID_MAX, &id, &eb);
  if (!rc && !id[0])
    rc = gbx_errbuf_set(&eb, GBX_E_PROTOCOL, "field 'sub' is empty");
  if (!rc && sub_id)
    *sub_id = id;
  else
    free(id);
  return done(r, rc, &eb, err);
}

int gbx_unsubscribe(gbx_client_t *c, const char *sub_id, gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_one(c, GBX_OP_UNSUBSCRIBE, "sub", sub_id, err), err);
}

int gbx_sub_list(gbx_client_t *c, const char *topic, const char *queue, const char *next,
                 gbx_sub_list_t *out, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  memset(out, 0, sizeof *out);
  int rc = call(c, request_sub_list(c, topic, queue, next, err), &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_sub_list(r, out, &eb), &eb, err);
}

void gbx_sub_list_free(gbx_sub_list_t *l) {
  if (!l)
    return;
  free(l->block_);
  memset(l, 0, sizeof *l);
}

int gbx_sub_get_attrs(gbx_client_t *c, const char *sub_id, gbx_sub_info_t *out, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  memset(out, 0, sizeof *out);
  int rc = call(c, request_one(c, GBX_OP_SUB_GET_ATTRS, "sub", sub_id, err), &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_sub_info(r, out, &eb), &eb, err);
}

void gbx_sub_info_free(gbx_sub_info_t *info) {
  if (!info)
    return;
  free(info->block_);
  memset(info, 0, sizeof *info);
}

int gbx_sub_set_attrs(gbx_client_t *c, const char *sub_id, const gbx_sub_attrs_t *attrs,
                      gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_sub_set_attrs(c, sub_id, attrs, err), err);
}

int gbx_publish(gbx_client_t *c, const char *topic, const void *body, size_t len,
                const gbx_msg_attr_t *attrs, size_t nattrs, const char *subject,
                char mid[GBX_MID_BUFSZ], uint32_t *delivered, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  char tmp[GBX_MID_BUFSZ];
  int rc = call(c, request_publish(c, topic, body, len, attrs, nattrs, subject, err), &r, err);
  if (rc)
    return rc;
  return done(r, decode_publish(r, mid ? mid : tmp, delivered, &eb), &eb, err);
}

int gbx_publish_batch(gbx_client_t *c, const char *topic, const gbx_publish_entry_t *entries,
                      size_t n, gbx_publish_result_t *results, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  int rc = call(c, request_publish_batch(c, topic, entries, n, err), &r, err);
  if (rc)
    return rc;
  return done(r, decode_publish_results(r, results, n, &eb), &eb, err);
}

/* ---- pipelined publish ------------------------------------------------------------ */

/* As pipeline.c: the buffer is written once it is worth a system call. */
static uint64_t submitted(gbx_client_t *c, uint64_t id, gbx_error_t *err) {
  if (id && c->out.len - c->out_off >= GBX_PIPELINE_FLUSH_BYTES &&
      conn_flush(c, conn_deadline(c, 0), err) != GBX_E_OK)
    return 0;
  return id;
}

uint64_t gbx_submit_publish(gbx_client_t *c, const char *topic, const void *body, size_t len,
                            const gbx_msg_attr_t *attrs, size_t nattrs, const char *subject,
                            gbx_error_t *err) {
  return submitted(c, request_publish(c, topic, body, len, attrs, nattrs, subject, err), err);
}

uint64_t gbx_submit_publish_batch(gbx_client_t *c, const char *topic,
                                  const gbx_publish_entry_t *entries, size_t n, gbx_error_t *err) {
  return submitted(c, request_publish_batch(c, topic, entries, n, err), err);
}

/* A successful reply to op, else the reply's own error or GBX_E_PROTOCOL. */
static int expect(const gbx_reply_t *r, int op, gbx_error_t *err) {
  if (!r)
    return conn_seterr(err, GBX_E_PROTOCOL, "no reply");
  if (r->code)
    return reply_error(r, err);
  if (r->op != op)
    return conn_seterr(err, GBX_E_PROTOCOL, "reply %llu answers %s, not %s",
                       (unsigned long long)r->id, request_op_name(r->op), request_op_name(op));
  return GBX_E_OK;
}

/* Turns a decoder's failure into err, naming the operation. */
static int decoded(const gbx_reply_t *r, int rc, const gbx_errbuf_t *eb, gbx_error_t *err) {
  if (!rc)
    return GBX_E_OK;
  return conn_seterr(err, rc, "malformed %s reply: %s", request_op_name(r->op), eb->msg);
}

int gbx_reply_publish(const gbx_reply_t *r, char mid[GBX_MID_BUFSZ], uint32_t *delivered,
                      gbx_error_t *err) {
  gbx_errbuf_t eb;
  char tmp[GBX_MID_BUFSZ];
  int rc = expect(r, GBX_OP_PUBLISH, err);
  if (rc)
    return rc;
  return decoded(r, decode_publish(r, mid ? mid : tmp, delivered, &eb), &eb, err);
}

int gbx_reply_publish_results(const gbx_reply_t *r, gbx_publish_result_t *results, size_t n,
                              gbx_error_t *err) {
  gbx_errbuf_t eb;
  int rc = expect(r, GBX_OP_PUBLISH_BATCH, err);
  if (rc)
    return rc;
  return decoded(r, decode_publish_results(r, results, n, &eb), &eb, err);
}
