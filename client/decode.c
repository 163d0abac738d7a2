/* decode.c - structured results decoded from replies: received messages,
 * batch outcomes, queue (and topic) name lists, queue attributes, stats,
 * redrive status. Topic results are decoded in topics.c with the one-block
 * allocator exported here.
 *
 * Each result that holds strings lives in one block allocated once: its
 * arrays of structs first, then the strings. The block size is known before
 * anything is copied: the struct counts come from the (already validated)
 * document, and the strings need at most the reply's payload length, since
 * every string copied is copied once and its NUL terminator takes the place
 * of the msgpack header byte (at least one) that preceded it on the wire.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qattrs.h"
#include "reply.h"

/* Queue attributes a queue_get_attrs reply may carry: 16 today; the rest is
 * room for attributes a newer server adds. */
#define QUEUE_ATTRS_MAX 64u
/* Queue names in one queue_dlq_sources or stats reply. Only the frame size
 * bounds them on the wire; this keeps an allocation for a hostile reply
 * far below what the frame could claim (8 MiB of 1-byte elements). */
#define NAMES_MAX 100000u
/* Length of a queue attribute's text value: Policy and RedriveAllowPolicy
 * are at most 20 KiB; 64 KiB leaves room for a newer server. */
#define QUEUE_ATTR_TEXT_MAX (64u * 1024u)

/* ---- one-block allocation ---------------------------------------------------- */

typedef reply_block_t block_t;

static size_t align8(size_t n) {
  return (n + 7u) & ~(size_t)7u;
}

/* Allocates structs (bytes of struct arrays, each taken with align8) plus
 * strings bytes. Returns 0, or -1 out of memory. */
static int block_init(block_t *b, size_t structs, size_t strings) {
  b->cap = structs + strings + 1;
  b->used = 0;
  b->base = malloc(b->cap);
  return b->base ? 0 : -1;
}

/* Takes n bytes (8-aligned when align). The sizes were computed in advance,
 * so running out is our own bug; it is reported, never overrun. */
static void *block_take(block_t *b, size_t n, int align) {
  size_t at = align ? align8(b->used) : b->used;
  if (at > b->cap || b->cap - at < n)
    return NULL;
  b->used = at + n;
  return b->base + at;
}

/* Copies p[0..n) as a NUL-terminated string into the block. */
static char *block_str(block_t *b, const char *p, size_t n) {
  char *s = block_take(b, n + 1, 0);
  if (!s)
    return NULL;
  if (n)
    memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* The exported forms, for decoders in other files (topics.c). */
size_t reply_align8(size_t n) {
  return align8(n);
}

int reply_block_init(reply_block_t *b, size_t structs, size_t strings) {
  return block_init(b, structs, strings);
}

void *reply_block_take(reply_block_t *b, size_t n, int align) {
  return block_take(b, n, align);
}

char *reply_block_str(reply_block_t *b, const char *p, size_t n) {
  return block_str(b, p, n);
}

static int overrun(gbx_errbuf_t *eb) {
  return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "result larger than its reply (client bug)");
}

static int nomem(gbx_errbuf_t *eb) {
  return gbx_errbuf_set(eb, GBX_E_NOMEM, "out of memory decoding a reply");
}

/* Maps an accessor's error to GBX_E_PROTOCOL, keeping its message. */
static int proto(int rc, gbx_errbuf_t *eb) {
  if (rc == GBX_E_OK)
    return GBX_E_OK;
  eb->code = GBX_E_PROTOCOL;
  return GBX_E_PROTOCOL;
}

/* An element of an array that must be a map with unique string keys. */
static int elem_map(const msgpack_object *o, const char *what, uint32_t i, gbx_errbuf_t *eb) {
  if (o->type != MSGPACK_OBJECT_MAP || !gbx_map_keys_unique(o))
    return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "%s[%u] is not a map with unique str keys", what, i);
  return GBX_E_OK;
}

/* ---- received messages ------------------------------------------------------- */

typedef struct wire_msg {
  const char *mid, *rh, *body, *src;
  uint32_t mid_len, rh_len, body_len, src_len;
  gbx_attr_t attrs[GBX_MAX_ATTRS];
  uint32_t nattrs;
  uint64_t rc, sent, first;
} wire_msg_t;

/* Checks message i of a receive reply and collects its fields. */
static int wire_msg_decode(const msgpack_object *m, uint32_t i, wire_msg_t *w, gbx_errbuf_t *eb) {
  const msgpack_object *attrs = NULL;
  int has_attrs = 0, has_src = 0;
  int rc = elem_map(m, "msgs", i, eb);
  if (rc)
    return rc;
  memset(w, 0, sizeof *w);
  if ((rc = gbx_get_str(m, "mid", 1, 1, GBX_MSGID_LEN, &w->mid, &w->mid_len, NULL, eb)) ||
      (rc = gbx_get_str(m, "rh", 1, 1, GBX_MAX_RECEIPT, &w->rh, &w->rh_len, NULL, eb)) ||
      (rc = gbx_get_bytes(m, "body", 1, GBX_HARD_MAX_FRAME, &w->body, &w->body_len, NULL, eb)) ||
      (rc = gbx_get_u64(m, "rc", 1, 0, UINT64_MAX, &w->rc, NULL, eb)) ||
      (rc = gbx_get_u64(m, "sent", 1, 0, UINT64_MAX, &w->sent, NULL, eb)) ||
      (rc = gbx_get_u64(m, "first", 1, 0, UINT64_MAX, &w->first, NULL, eb)) ||
      (rc = gbx_get_str(m, "src", 0, 1, GBX_MAX_NAME, &w->src, &w->src_len, &has_src, eb)))
    return proto(rc, eb);
  attrs = gbx_map_get(m, "attrs");
  has_attrs = attrs != NULL;
  if (has_attrs && (rc = gbx_attrs_decode(attrs, w->attrs, &w->nattrs, eb)))
    return proto(rc, eb);
  if (!has_src)
    w->src = NULL;
  return GBX_E_OK;
}

/* Copies a decoded message and its attributes into the block. */
static int wire_msg_copy(const wire_msg_t *w, block_t *b, gbx_message_t *out, gbx_msg_attr_t *attrs,
                         gbx_errbuf_t *eb) {
  out->mid = block_str(b, w->mid, w->mid_len);
  out->receipt = block_str(b, w->rh, w->rh_len);
  out->body = (const uint8_t *)block_str(b, w->body, w->body_len);
  out->body_len = w->body_len;
  out->receive_count = w->rc;
  out->sent_ms = w->sent;
  out->first_receive_ms = w->first;
  out->source_queue = w->src ? block_str(b, w->src, w->src_len) : NULL;
  out->attrs = w->nattrs ? attrs : NULL;
  out->nattrs = w->nattrs;
  if (!out->mid || !out->receipt || !out->body || (w->src && !out->source_queue))
    return overrun(eb);
  for (uint32_t i = 0; i < w->nattrs; i++) {
    const gbx_attr_t *a = &w->attrs[i];
    attrs[i].name = block_str(b, a->name, a->name_len);
    attrs[i].type = block_str(b, a->type, a->type_len);
    attrs[i].value = block_str(b, a->value, a->value_len);
    attrs[i].value_len = a->value_len;
    if (!attrs[i].name || !attrs[i].type || !attrs[i].value)
      return overrun(eb);
  }
  return GBX_E_OK;
}

int reply_decode_messages(const gbx_reply_t *r, gbx_message_t **msgs, size_t *n, gbx_errbuf_t *eb) {
  const msgpack_object_array *arr;
  wire_msg_t w;
  size_t total_attrs = 0;
  block_t b = {0};
  gbx_message_t *out;
  gbx_msg_attr_t *attrs;
  int rc;

  *msgs = NULL;
  *n = 0;
  rc = gbx_get_array(reply_root(r), "msgs", 1, 0, GBX_MAX_RECEIVE, &arr, NULL, eb);
  if (rc)
    return proto(rc, eb);
  /* First pass: check every message and count attributes. */
  for (uint32_t i = 0; i < arr->size; i++) {
    rc = wire_msg_decode(&arr->ptr[i], i, &w, eb);
    if (rc)
      return rc;
    total_attrs += w.nattrs;
  }
  if (arr->size == 0)
    return GBX_E_OK;
  if (block_init(&b, align8(arr->size * sizeof *out) + align8(total_attrs * sizeof *attrs) + 8,
                 r->len))
    return nomem(eb);
  out = block_take(&b, arr->size * sizeof *out, 1);
  attrs = block_take(&b, total_attrs * sizeof *attrs, 1);
  for (uint32_t i = 0; i < arr->size; i++) {
    wire_msg_decode(&arr->ptr[i], i, &w, eb); /* checked above */
    rc = wire_msg_copy(&w, &b, &out[i], attrs, eb);
    if (rc)
      goto fail;
    attrs += w.nattrs;
  }
  *msgs = out; /* the block's start: gbx_messages_free frees it */
  *n = arr->size;
  return GBX_E_OK;

fail:
  free(b.base);
  return rc;
}

void gbx_messages_free(gbx_message_t *msgs) {
  free(msgs);
}

/* ---- batch outcomes ------------------------------------------------------------ */

int reply_decode_batch(const gbx_reply_t *r, int with_mid, gbx_batch_result_t *res, size_t n,
                       gbx_errbuf_t *eb) {
  const msgpack_object_array *arr;
  int rc = gbx_get_array(reply_root(r), "results", 1, 0, GBX_MAX_BATCH, &arr, NULL, eb);
  if (rc)
    return proto(rc, eb);
  if (arr->size != n)
    return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "%u results for %zu entries", arr->size, n);
  for (uint32_t i = 0; i < arr->size; i++) {
    const msgpack_object *e = &arr->ptr[i];
    uint64_t code;
    const char *msg;
    uint32_t mlen;
    int has_msg = 0;
    if ((rc = elem_map(e, "results", i, eb)))
      return rc;
    memset(&res[i], 0, sizeof res[i]);
    if ((rc = gbx_get_u64(e, "err", 1, 0, 65535, &code, NULL, eb)) ||
        (rc = gbx_get_str(e, "msg", 0, 0, GBX_HARD_MAX_FRAME, &msg, &mlen, &has_msg, eb)))
      return proto(rc, eb);
    res[i].code = (int)code;
    if (code) {
      /* Long messages are cut: they are prose for a human. */
      if (has_msg) {
        size_t k = mlen < sizeof res[i].message - 1 ? mlen : sizeof res[i].message - 1;
        memcpy(res[i].message, msg, k);
        res[i].message[k] = '\0';
      } else {
        snprintf(res[i].message, sizeof res[i].message, "%s", gbx_err_message((int)code));
      }
    } else if (with_mid) {
      const char *mid;
      uint32_t len;
      if ((rc = gbx_get_str(e, "mid", 1, 1, GBX_MSGID_LEN, &mid, &len, NULL, eb)))
        return proto(rc, eb);
      memcpy(res[i].mid, mid, len);
      res[i].mid[len] = '\0';
    }
  }
  return GBX_E_OK;
}

/* ---- queue lists ------------------------------------------------------------------ */

int reply_decode_queue_list(const gbx_reply_t *r, int with_next, gbx_queue_list_t *out,
                            gbx_errbuf_t *eb) {
  return reply_decode_names(r, "queues", with_next, out, eb);
}

int reply_decode_names(const gbx_reply_t *r, const char *key, int with_next, gbx_queue_list_t *out,
                       gbx_errbuf_t *eb) {
  const msgpack_object_array *arr;
  const char *next = NULL;
  uint32_t next_len = 0;
  int has_next = 0;
  block_t b = {0};
  int rc;

  memset(out, 0, sizeof *out);
  rc = gbx_get_array(reply_root(r), key, 1, 0, NAMES_MAX, &arr, NULL, eb);
  if (rc)
    return proto(rc, eb);
  if (with_next && (rc = gbx_get_str(reply_root(r), "next", 0, 1, GBX_HARD_MAX_FRAME, &next,
                                     &next_len, &has_next, eb)))
    return proto(rc, eb);
  for (uint32_t i = 0; i < arr->size; i++) {
    const msgpack_object *o = &arr->ptr[i];
    if (o->type != MSGPACK_OBJECT_STR || !gbx_name_valid(o->via.str.ptr, o->via.str.size))
      return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "%s[%u] is not a name", key, i);
  }
  if (block_init(&b, align8((size_t)arr->size * sizeof(char *)) + 8, r->len))
    return nomem(eb);
  out->names = block_take(&b, (size_t)arr->size * sizeof(char *), 1);
  for (uint32_t i = 0; i < arr->size; i++) {
    out->names[i] = block_str(&b, arr->ptr[i].via.str.ptr, arr->ptr[i].via.str.size);
    if (!out->names[i])
      goto overran;
  }
  if (has_next && !(out->next = block_str(&b, next, next_len)))
    goto overran;
  out->count = arr->size;
  out->block_ = b.base;
  return GBX_E_OK;

overran:
  free(b.base);
  memset(out, 0, sizeof *out);
  return overrun(eb);
}

void gbx_queue_list_free(gbx_queue_list_t *l) {
  if (!l)
    return;
  free(l->block_);
  memset(l, 0, sizeof *l);
}

/* ---- queue attributes ------------------------------------------------------------ */

/* The read-only counters of gbx_queue_info_t, by wire name. */
static const struct {
  const char *name;
  size_t off;
} counters[] = {
    {"ApproximateNumberOfMessages", offsetof(gbx_queue_info_t, visible)},
    {"ApproximateNumberOfMessagesNotVisible", offsetof(gbx_queue_info_t, not_visible)},
    {"ApproximateNumberOfMessagesDelayed", offsetof(gbx_queue_info_t, delayed)},
    {"ApproximateAgeOfOldestMessage", offsetof(gbx_queue_info_t, oldest_age_s)},
    {"CreatedTimestamp", offsetof(gbx_queue_info_t, created_s)},
    {"LastModifiedTimestamp", offsetof(gbx_queue_info_t, modified_s)},
    {"QueueBytes", offsetof(gbx_queue_info_t, bytes)},
};

/* Checks one attribute pair: a number or a text of bounded length, of the
 * type its known definition demands. */
static int attr_check(const msgpack_object_kv *kv, gbx_errbuf_t *eb) {
  const msgpack_object *v = &kv->val;
  const qattr_def_t *d = qattr_find(kv->key.via.str.ptr, kv->key.via.str.size);
  int is_str = v->type == MSGPACK_OBJECT_STR;
  int name_len = kv->key.via.str.size > 60 ? 60 : (int)kv->key.via.str.size;
  if (!is_str && v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "attribute '%.*s' is neither uint nor str", name_len,
                          kv->key.via.str.ptr);
  if (is_str && v->via.str.size > QUEUE_ATTR_TEXT_MAX)
    return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "attribute '%.*s' is too long", name_len,
                          kv->key.via.str.ptr);
  if (d && d->is_str != is_str)
    return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "attribute '%.*s' should be a %s", name_len,
                          kv->key.via.str.ptr, d->is_str ? "str" : "uint");
  if (d && !is_str && v->via.u64 > UINT32_MAX)
    return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "attribute '%.*s' is out of range", name_len,
                          kv->key.via.str.ptr);
  return GBX_E_OK;
}

/* Files one copied attribute into the typed fields of info. */
static void attr_file(gbx_queue_info_t *info, const gbx_queue_attr_t *a) {
  size_t len = strlen(a->name);
  const qattr_def_t *d = qattr_find(a->name, len);
  if (d) {
    char *field = (char *)&info->attrs + d->off;
    if (d->is_str)
      *(const char **)field = a->str;
    else
      *(uint32_t *)field = (uint32_t)a->num;
    info->attrs.set |= d->flag;
    return;
  }
  for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
    if (strcmp(counters[i].name, a->name) == 0)
      *(uint64_t *)((char *)info + counters[i].off) = a->num;
}

int reply_decode_queue_info(const gbx_reply_t *r, gbx_queue_info_t *out, gbx_errbuf_t *eb) {
  const msgpack_object *attrs, *tags;
  block_t b = {0};
  int rc;

  memset(out, 0, sizeof *out);
  if ((rc = gbx_get_map(reply_root(r), "attrs", 1, QUEUE_ATTRS_MAX, &attrs, NULL, eb)) ||
      (rc = gbx_get_map(reply_root(r), "tags", 1, GBX_MAX_TAGS, &tags, NULL, eb)))
    return proto(rc, eb);
  for (uint32_t i = 0; i < attrs->via.map.size; i++)
    if ((rc = attr_check(&attrs->via.map.ptr[i], eb)))
      return rc;
  for (uint32_t i = 0; i < tags->via.map.size; i++) {
    const msgpack_object_kv *kv = &tags->via.map.ptr[i];
    if (kv->key.via.str.size > GBX_MAX_TAG_KEY || kv->val.type != MSGPACK_OBJECT_STR ||
        kv->val.via.str.size > GBX_MAX_TAG_VALUE)
      return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "tags[%u] is not a str of at most %u bytes", i,
                            GBX_MAX_TAG_VALUE);
  }
  size_t na = attrs->via.map.size, nt = tags->via.map.size;
  if (block_init(&b, align8(na * sizeof(gbx_queue_attr_t)) + align8(nt * sizeof(gbx_tag_t)) + 8,
                 r->len))
    return nomem(eb);
  out->all = block_take(&b, na * sizeof(gbx_queue_attr_t), 1);
  out->tags = block_take(&b, nt * sizeof(gbx_tag_t), 1);
  for (size_t i = 0; i < na; i++) {
    const msgpack_object_kv *kv = &attrs->via.map.ptr[i];
    gbx_queue_attr_t *a = &out->all[i];
    a->name = block_str(&b, kv->key.via.str.ptr, kv->key.via.str.size);
    a->str = NULL;
    a->num = 0;
    if (!a->name)
      goto overran;
    if (kv->val.type == MSGPACK_OBJECT_STR) {
      a->str = block_str(&b, kv->val.via.str.ptr, kv->val.via.str.size);
      if (!a->str)
        goto overran;
    } else {
      a->num = kv->val.via.u64;
    }
    attr_file(out, a);
  }
  for (size_t i = 0; i < nt; i++) {
    const msgpack_object_kv *kv = &tags->via.map.ptr[i];
    out->tags[i].key = block_str(&b, kv->key.via.str.ptr, kv->key.via.str.size);
    out->tags[i].value = block_str(&b, kv->val.via.str.ptr, kv->val.via.str.size);
    if (!out->tags[i].key || !out->tags[i].value)
      goto overran;
  }
  out->nall = na;
  out->ntags = nt;
  out->block_ = b.base;
  return GBX_E_OK;

overran:
  free(b.base);
  memset(out, 0, sizeof *out);
  return overrun(eb);
}

void gbx_queue_info_free(gbx_queue_info_t *info) {
  if (!info)
    return;
  free(info->block_);
  memset(info, 0, sizeof *info);
}

/* ---- stats -------------------------------------------------------------------------- */

/* An optional broker figure: a uint (or, for a double, a uint or float). */
static int broker_num(const msgpack_object *broker, const char *key, uint64_t *u, double *d,
                      gbx_errbuf_t *eb) {
  const msgpack_object *v = gbx_map_get(broker, key);
  if (!v)
    return GBX_E_OK;
  if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    if (u)
      *u = v->via.u64;
    if (d)
      *d = (double)v->via.u64;
    return GBX_E_OK;
  }
  if (d && (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)) {
    *d = v->via.f64;
    return GBX_E_OK;
  }
  return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "broker figure '%s' is not a number", key);
}

static int broker_decode(const msgpack_object *m, gbx_broker_stats_t *s, gbx_errbuf_t *eb) {
  int rc;
#define U(f) broker_num(m, #f, &s->f, NULL, eb)
#define D(f) broker_num(m, #f, NULL, &s->f, eb)
  if ((rc = U(messages)) || (rc = U(bytes)) || (rc = U(queues)) || (rc = U(connections)) ||
      (rc = U(batches)) || (rc = U(synced_mutations)) || (rc = D(msgs_per_sync)) ||
      (rc = U(commit_p50_us)) || (rc = U(commit_p99_us)) || (rc = D(index_bytes_per_msg)) ||
      (rc = U(body_cache_bytes)) || (rc = U(uptime_s)))
    return rc;
#undef U
#undef D
  return GBX_E_OK;
}

int reply_decode_stats(const gbx_reply_t *r, gbx_stats_t *out, gbx_errbuf_t *eb) {
  const msgpack_object_array *arr;
  const msgpack_object *broker;
  block_t b = {0};
  int rc;

  memset(out, 0, sizeof *out);
  if ((rc = gbx_get_array(reply_root(r), "queues", 1, 0, NAMES_MAX, &arr, NULL, eb)) ||
      (rc = gbx_get_map(reply_root(r), "broker", 1, QUEUE_ATTRS_MAX, &broker, NULL, eb)))
    return proto(rc, eb);
  if ((rc = broker_decode(broker, &out->broker, eb)))
    return rc;
  for (uint32_t i = 0; i < arr->size; i++) {
    const msgpack_object *m = &arr->ptr[i];
    const char *name;
    uint32_t len;
    uint64_t v;
    if ((rc = elem_map(m, "queues", i, eb)))
      return rc;
    if ((rc = gbx_get_str(m, "q", 1, 1, GBX_MAX_NAME, &name, &len, NULL, eb)) ||
        (rc = gbx_get_u64(m, "visible", 1, 0, UINT64_MAX, &v, NULL, eb)) ||
        (rc = gbx_get_u64(m, "inflight", 1, 0, UINT64_MAX, &v, NULL, eb)) ||
        (rc = gbx_get_u64(m, "delayed", 1, 0, UINT64_MAX, &v, NULL, eb)) ||
        (rc = gbx_get_u64(m, "oldest_age", 1, 0, UINT64_MAX, &v, NULL, eb)) ||
        (rc = gbx_get_u64(m, "bytes", 1, 0, UINT64_MAX, &v, NULL, eb)))
      return proto(rc, eb);
  }
  if (block_init(&b, align8((size_t)arr->size * sizeof(gbx_queue_stats_t)) + 8, r->len))
    return nomem(eb);
  out->queues = block_take(&b, (size_t)arr->size * sizeof(gbx_queue_stats_t), 1);
  for (uint32_t i = 0; i < arr->size; i++) {
    const msgpack_object *m = &arr->ptr[i];
    gbx_queue_stats_t *q = &out->queues[i];
    const msgpack_object *name = gbx_map_get(m, "q");
    /* Types were checked above. */
    q->name = block_str(&b, name->via.str.ptr, name->via.str.size);
    if (!q->name) {
      free(b.base);
      memset(out, 0, sizeof *out);
      return overrun(eb);
    }
    q->visible = gbx_map_get(m, "visible")->via.u64;
    q->inflight = gbx_map_get(m, "inflight")->via.u64;
    q->delayed = gbx_map_get(m, "delayed")->via.u64;
    q->oldest_age_s = gbx_map_get(m, "oldest_age")->via.u64;
    q->bytes = gbx_map_get(m, "bytes")->via.u64;
  }
  out->nqueues = arr->size;
  out->block_ = b.base;
  return GBX_E_OK;
}

void gbx_stats_free(gbx_stats_t *s) {
  if (!s)
    return;
  free(s->block_);
  memset(s, 0, sizeof *s);
}

/* ---- redrive status ------------------------------------------------------------------ */

int reply_decode_redrive_status(const gbx_reply_t *r, gbx_redrive_status_t *out, gbx_errbuf_t *eb) {
  const msgpack_object *root = reply_root(r);
  const char *p;
  uint32_t n;
  int present = 0, rc;

  memset(out, 0, sizeof *out);
  if ((rc = gbx_get_str(root, "state", 1, 1, sizeof out->state - 1, &p, &n, NULL, eb)))
    return proto(rc, eb);
  memcpy(out->state, p, n);
  if ((rc = gbx_get_u64(root, "moved", 1, 0, UINT64_MAX, &out->moved, NULL, eb)) ||
      (rc = gbx_get_u64(root, "total", 1, 0, UINT64_MAX, &out->total, NULL, eb)) ||
      (rc = gbx_get_str(root, "dst", 0, 0, GBX_MAX_NAME, &p, &n, &present, eb)))
    return proto(rc, eb);
  if (present)
    memcpy(out->dst, p, n);
  if ((rc = gbx_get_str(root, "msg", 0, 0, GBX_HARD_MAX_FRAME, &p, &n, &present, eb)))
    return proto(rc, eb);
  if (present) {
    /* Prose for a human: cut to fit. */
    size_t k = n < sizeof out->message - 1 ? n : sizeof out->message - 1;
    memcpy(out->message, p, k);
  }
  return GBX_E_OK;
}
