/* records.c - see records.h. */
#include "records.h"

#include <stdlib.h>
#include <string.h>

void be32_put(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
void be64_put(uint8_t *p, uint64_t v) {
  be32_put(p, (uint32_t)(v >> 32));
  be32_put(p + 4, (uint32_t)v);
}
uint32_t be32_get(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
uint64_t be64_get(const uint8_t *p) {
  return ((uint64_t)be32_get(p) << 32) | be32_get(p + 4);
}

void qattrs_defaults(qattrs_t *a) {
  memset(a, 0, sizeof(*a));
  a->vis = GBX_VIS_DEFAULT;
  a->delay = 0;
  a->retention = GBX_RETENTION_DEFAULT;
  a->max_size = GBX_MAX_MESSAGE_SIZE;
  a->wait = 0;
  a->max_receives = 10;
}

static int dup_opt(char **dst, const char *src) {
  *dst = NULL;
  if (!src)
    return 0;
  *dst = strdup(src);
  return *dst ? 0 : -1;
}

int qattrs_copy(qattrs_t *dst, const qattrs_t *src) {
  *dst = *src;
  dst->policy = dst->redrive_allow = NULL;
  if (dup_opt(&dst->policy, src->policy) || dup_opt(&dst->redrive_allow, src->redrive_allow)) {
    qattrs_free(dst);
    return -1;
  }
  return 0;
}

void qattrs_free(qattrs_t *a) {
  free(a->policy);
  free(a->redrive_allow);
  a->policy = a->redrive_allow = NULL;
}

static int streq_opt(const char *x, const char *y) {
  return strcmp(x ? x : "", y ? y : "") == 0;
}

int qattrs_equal(const qattrs_t *x, const qattrs_t *y) {
  return x->vis == y->vis && x->delay == y->delay && x->retention == y->retention &&
         x->max_size == y->max_size && x->wait == y->wait && strcmp(x->dlq, y->dlq) == 0 &&
         (x->dlq[0] == 0 || x->max_receives == y->max_receives) &&
         streq_opt(x->policy, y->policy) && streq_opt(x->redrive_allow, y->redrive_allow);
}

void qrec_free(qrec_t *r) {
  qattrs_free(&r->a);
  for (uint32_t i = 0; i < r->ntags; i++) {
    free(r->tags[i].key);
    free(r->tags[i].value);
  }
  free(r->tags);
  r->tags = NULL;
  r->ntags = 0;
}

void qtags_set(qtag_t **tags, uint32_t *n, const qtag_t *in, uint32_t nin) {
  qtag_t *t = *tags;
  if (nin) {
    t = realloc(t, ((size_t)*n + nin) * sizeof(*t));
    if (!t)
      abort();
    *tags = t;
  }
  for (uint32_t i = 0; i < nin; i++) {
    uint32_t j = 0;
    while (j < *n && strcmp(t[j].key, in[i].key) != 0)
      j++;
    char *v = strdup(in[i].value);
    if (!v)
      abort();
    if (j < *n) {
      free(t[j].value);
    } else {
      if (!(t[j].key = strdup(in[i].key)))
        abort();
      (*n)++;
    }
    t[j].value = v;
  }
}

void idx_key(uint8_t out[IDX_KEY_LEN], uint32_t qid, uint64_t seq) {
  be32_put(out, qid);
  be64_put(out + 4, seq);
}

void body_key(uint8_t out[BODY_KEY_LEN], uint64_t body_id) {
  be64_put(out, body_id);
}

void idx_range_key(uint8_t out[IDX_RANGE_KEY_LEN], uint32_t qid) {
  be32_put(out, qid);
}

int idx_key_decode(const void *k, size_t kl, uint32_t *qid, uint64_t *seq) {
  if (kl != IDX_KEY_LEN)
    return -1;
  *qid = be32_get(k);
  *seq = be64_get((const uint8_t *)k + 4);
  if (*qid == 0 || *qid > RECORDS_QID_MAX || *seq == 0 || *seq >= RECORDS_COUNTER_MAX)
    return -1;
  return 0;
}

void idx_encode(uint8_t o[IDX_REC_LEN], const idxrec_t *r) {
  o[0] = IDX_REC_VERSION;
  o[1] = r->flags;
  be64_put(o + 2, r->idn);
  be64_put(o + 10, r->body_id);
  be64_put(o + 18, (uint64_t)r->sent_ms);
  be64_put(o + 26, (uint64_t)r->first_ms);
  be64_put(o + 34, (uint64_t)r->deadline_ms);
  be32_put(o + 42, r->rc);
  be32_put(o + 46, r->size);
  be32_put(o + 50, r->src_qid);
  be64_put(o + 54, (uint64_t)r->recv_ms);
}

int idx_decode(const void *v, size_t vl, idxrec_t *r) {
  const uint8_t *p = v;
  if (vl != IDX_REC_LEN || p[0] != IDX_REC_VERSION)
    return -1;
  r->idn = be64_get(p + 2);
  r->body_id = be64_get(p + 10);
  r->sent_ms = (int64_t)be64_get(p + 18);
  r->first_ms = (int64_t)be64_get(p + 26);
  r->deadline_ms = (int64_t)be64_get(p + 34);
  r->rc = be32_get(p + 42);
  r->size = be32_get(p + 46);
  r->src_qid = be32_get(p + 50);
  r->recv_ms = (int64_t)be64_get(p + 54);
  r->flags = p[1];
  if (r->sent_ms < 0 || r->first_ms < 0 || r->deadline_ms < 0 || r->recv_ms < 0 ||
      r->size > GBX_MAX_MESSAGE_SIZE || (r->flags & ~(IDX_FLAG_SHARED | IDX_FLAG_ENVELOPE)) ||
      r->idn == 0 || r->idn >= RECORDS_COUNTER_MAX || r->body_id == 0 ||
      r->body_id >= RECORDS_COUNTER_MAX || r->src_qid > RECORDS_QID_MAX)
    return -1;
  return 0;
}

/* ---- queue records: msgpack map, version key "v" ---- */

#define QREC_VERSION 1u

int qrec_encode(gbx_buf_t *b, const qrec_t *r) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, b, gbx_buf_write_cb);
  size_t before = b->len;
  msgpack_pack_map(&pk, 16);
  gbx_pack_kv_u64(&pk, "v", QREC_VERSION);
  gbx_pack_kv_u64(&pk, "qid", r->qid);
  gbx_pack_kv_i64(&pk, "created", r->created_ms);
  gbx_pack_kv_i64(&pk, "modified", r->modified_ms);
  gbx_pack_kv_u64(&pk, "vis", r->a.vis);
  gbx_pack_kv_u64(&pk, "delay", r->a.delay);
  gbx_pack_kv_u64(&pk, "retention", r->a.retention);
  gbx_pack_kv_u64(&pk, "max_size", r->a.max_size);
  gbx_pack_kv_u64(&pk, "wait", r->a.wait);
  gbx_pack_kv_u64(&pk, "max_receives", r->a.max_receives);
  gbx_pack_kv_cstr(&pk, "dlq", r->a.dlq);
  gbx_pack_kv_cstr(&pk, "policy", r->a.policy ? r->a.policy : "");
  gbx_pack_kv_cstr(&pk, "redrive_allow", r->a.redrive_allow ? r->a.redrive_allow : "");
  gbx_pack_cstr(&pk, "tags");
  msgpack_pack_map(&pk, r->ntags);
  for (uint32_t i = 0; i < r->ntags; i++) {
    gbx_pack_cstr(&pk, r->tags[i].key);
    gbx_pack_cstr(&pk, r->tags[i].value);
  }
  /* two spare keys keep the map count fixed; decoders ignore unknown keys */
  gbx_pack_kv_u64(&pk, "r1", 0);
  gbx_pack_kv_u64(&pk, "r2", 0);
  return b->len > before ? 0 : -1;
}

static char *strndup_opt(const char *p, uint32_t n) {
  if (n == 0)
    return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s)
    return NULL;
  memcpy(s, p, n);
  s[n] = 0;
  return s;
}

int qrec_decode(const void *v, size_t vl, qrec_t *r, gbx_errbuf_t *eb) {
  gbx_doc_t d;
  memset(r, 0, sizeof(*r));
  if (gbx_doc_parse(&d, v, vl, eb) != GBX_E_OK)
    return -1;
  const msgpack_object *m = &d.root;
  uint64_t ver = 0, qid = 0, u = 0;
  const char *s;
  uint32_t sl;
  const msgpack_object *tags;
  qattrs_defaults(&r->a);
  if (gbx_get_u64(m, "v", 1, QREC_VERSION, QREC_VERSION, &ver, NULL, eb) ||
      gbx_get_u64(m, "qid", 1, 1, RECORDS_QID_MAX, &qid, NULL, eb))
    goto fail;
  r->qid = (uint32_t)qid;
  if (gbx_get_u64(m, "created", 1, 0, INT64_MAX, &u, NULL, eb))
    goto fail;
  r->created_ms = (int64_t)u;
  if (gbx_get_u64(m, "modified", 1, 0, INT64_MAX, &u, NULL, eb))
    goto fail;
  r->modified_ms = (int64_t)u;
#define U32F(name, field, lo, hi)                                                                  \
  if (gbx_get_u64(m, name, 1, lo, hi, &u, NULL, eb))                                               \
    goto fail;                                                                                     \
  r->a.field = (uint32_t)u;
  U32F("vis", vis, 0, GBX_VIS_MAX)
  U32F("delay", delay, 0, GBX_DELAY_MAX)
  U32F("retention", retention, GBX_RETENTION_MIN, GBX_RETENTION_MAX)
  U32F("max_size", max_size, GBX_MIN_MESSAGE_SIZE, GBX_MAX_MESSAGE_SIZE)
  U32F("wait", wait, 0, GBX_WAIT_MAX)
  U32F("max_receives", max_receives, GBX_MAX_RECEIVES_MIN, GBX_MAX_RECEIVES_MAX)
#undef U32F
  if (gbx_get_str(m, "dlq", 1, 0, GBX_MAX_NAME, &s, &sl, NULL, eb))
    goto fail;
  if (memchr(s, 0, sl)) {
    gbx_errbuf_set(eb, GBX_E_BAD_TYPE, "queue record: NUL in the dead-letter queue name");
    goto fail;
  }
  memcpy(r->a.dlq, s, sl);
  r->a.dlq[sl] = 0;
  if (gbx_get_str(m, "policy", 1, 0, GBX_MAX_POLICY, &s, &sl, NULL, eb))
    goto fail;
  if (sl && !(r->a.policy = strndup_opt(s, sl)))
    goto oom;
  if (gbx_get_str(m, "redrive_allow", 1, 0, GBX_MAX_POLICY, &s, &sl, NULL, eb))
    goto fail;
  if (sl && !(r->a.redrive_allow = strndup_opt(s, sl)))
    goto oom;
  if (gbx_get_map(m, "tags", 1, GBX_MAX_TAGS, &tags, NULL, eb))
    goto fail;
  if (tags->via.map.size) {
    r->tags = calloc(tags->via.map.size, sizeof(*r->tags));
    if (!r->tags)
      goto oom;
    for (uint32_t i = 0; i < tags->via.map.size; i++) {
      const msgpack_object *k = &tags->via.map.ptr[i].key, *val = &tags->via.map.ptr[i].val;
      /* NUL inside would be cut by the C strings they become, and the
       * record would then not encode back to what was read. */
      if (k->type != MSGPACK_OBJECT_STR || val->type != MSGPACK_OBJECT_STR ||
          k->via.str.size == 0 || k->via.str.size > GBX_MAX_TAG_KEY ||
          val->via.str.size > GBX_MAX_TAG_VALUE || memchr(k->via.str.ptr, 0, k->via.str.size) ||
          memchr(val->via.str.ptr, 0, val->via.str.size)) {
        gbx_errbuf_set(eb, GBX_E_BAD_TYPE, "queue record: bad tag %u", i);
        goto fail;
      }
      r->tags[i].key = strndup_opt(k->via.str.ptr, k->via.str.size);
      r->tags[i].value = malloc(val->via.str.size + 1u);
      r->ntags = i + 1;
      if (!r->tags[i].key || !r->tags[i].value)
        goto oom;
      memcpy(r->tags[i].value, val->via.str.ptr, val->via.str.size);
      r->tags[i].value[val->via.str.size] = 0;
    }
  }
  gbx_doc_free(&d);
  return 0;
oom:
  gbx_errbuf_set(eb, GBX_E_NOMEM, "queue record: out of memory");
fail:
  gbx_doc_free(&d);
  qrec_free(r);
  return -1;
}

void redrive_key(uint8_t k[REDRIVE_KEY_LEN], uint32_t qid) {
  k[0] = 'M';
  be32_put(k + 1, qid);
}

size_t redrive_encode(uint8_t *o, const redrive_rec_t *r) {
  size_t ml = strnlen(r->msg, REDRIVE_MSG_MAX);
  o[0] = REDRIVE_REC_VERSION;
  o[1] = r->state;
  be32_put(o + 2, r->dst_qid);
  be32_put(o + 6, r->rate);
  be64_put(o + 10, r->moved);
  be64_put(o + 18, r->total);
  be64_put(o + 26, (uint64_t)r->started_ms);
  o[34] = (uint8_t)ml;
  memcpy(o + REDRIVE_REC_FIXED, r->msg, ml);
  return REDRIVE_REC_FIXED + ml;
}

int redrive_decode(const void *v, size_t vl, redrive_rec_t *r) {
  const uint8_t *p = v;
  if (vl < REDRIVE_REC_FIXED || p[0] != REDRIVE_REC_VERSION || p[1] < 1 || p[1] > 4 ||
      p[34] > REDRIVE_MSG_MAX || vl != REDRIVE_REC_FIXED + (size_t)p[34] ||
      memchr(p + REDRIVE_REC_FIXED, 0, p[34]))
    return -1;
  memset(r, 0, sizeof(*r));
  r->state = p[1];
  r->dst_qid = be32_get(p + 2);
  r->rate = be32_get(p + 6);
  r->moved = be64_get(p + 10);
  r->total = be64_get(p + 18);
  r->started_ms = (int64_t)be64_get(p + 26);
  if (r->rate < 1 || r->rate > GBX_REDRIVE_RATE_MAX || r->dst_qid > RECORDS_QID_MAX ||
      r->moved > r->total || r->total > RECORDS_COUNTER_MAX)
    return -1;
  memcpy(r->msg, p + REDRIVE_REC_FIXED, p[34]);
  r->msg[p[34]] = 0;
  return 0;
}

size_t blob_pub_size(uint32_t bl, uint32_t al, uint32_t tl, uint32_t sl) {
  return (size_t)BLOB_HDR + bl + 4 + al + 16 + 1 + tl + 1 + sl;
}

void blob_pub_write(uint8_t *o, const uint8_t *body, uint32_t bl, const uint8_t *attrs, uint32_t al,
                    uint64_t pub_idn, int64_t pub_ms, const char *topic, uint32_t tl,
                    const char *subject, uint32_t sl) {
  o[0] = BLOB_VERSION_PUB;
  be32_put(o + 1, bl);
  memcpy(o + BLOB_HDR, body, bl);
  o += BLOB_HDR + bl;
  be32_put(o, al);
  if (al)
    memcpy(o + 4, attrs, al);
  o += 4 + al;
  be64_put(o, pub_idn);
  be64_put(o + 8, (uint64_t)pub_ms);
  o += 16;
  *o++ = (uint8_t)tl;
  memcpy(o, topic, tl);
  o += tl;
  *o++ = (uint8_t)sl;
  if (sl)
    memcpy(o, subject, sl);
}

/* Splits a v2 or v3 blob (body, attrs, then the rest); every length is
 * checked against what remains. */
static int split2(const uint8_t *b, size_t len, uint8_t version, const uint8_t **body, uint32_t *bl,
                  const uint8_t **attrs, uint32_t *al, const uint8_t **meta, size_t *ml) {
  if (len < BLOB_HDR || b[0] != version)
    return -1;
  size_t left = len - BLOB_HDR;
  *bl = be32_get(b + 1);
  if (*bl > left || left - *bl < 4)
    return -1;
  *body = b + BLOB_HDR;
  left -= *bl;
  const uint8_t *p = *body + *bl;
  *al = be32_get(p);
  left -= 4;
  if (*al > left)
    return -1;
  *attrs = p + 4;
  left -= *al;
  *meta = *attrs + *al;
  *ml = left;
  return 0;
}

static int pub_split(const uint8_t *b, size_t len, const uint8_t **body, uint32_t *bl,
                     const uint8_t **attrs, uint32_t *al, const uint8_t **meta, size_t *ml) {
  return split2(b, len, BLOB_VERSION_PUB, body, bl, attrs, al, meta, ml);
}

size_t blob_sent_size(uint32_t bl, uint32_t al, uint32_t tl) {
  return tl ? (size_t)BLOB_HDR + bl + 4 + al + 2 + tl : (size_t)BLOB_HDR + bl + al;
}

void blob_sent_write(uint8_t *o, const uint8_t *body, uint32_t bl, const uint8_t *attrs,
                     uint32_t al, const char *trace, uint32_t tl) {
  o[0] = tl ? BLOB_VERSION_SYS : BLOB_VERSION;
  be32_put(o + 1, bl);
  memcpy(o + BLOB_HDR, body, bl);
  o += BLOB_HDR + bl;
  if (tl) {
    be32_put(o, al);
    o += 4;
  }
  if (al)
    memcpy(o, attrs, al);
  if (tl) {
    o += al;
    o[0] = (uint8_t)(tl >> 8);
    o[1] = (uint8_t)tl;
    memcpy(o + 2, trace, tl);
  }
}

int blob_trace(const uint8_t *blob, size_t len, const char **trace, uint32_t *tl) {
  const uint8_t *body, *attrs, *m;
  uint32_t bl, al;
  size_t ml;
  *trace = NULL;
  *tl = 0;
  if (len >= 1 && blob[0] != BLOB_VERSION_SYS)
    return 0;
  if (split2(blob, len, BLOB_VERSION_SYS, &body, &bl, &attrs, &al, &m, &ml) != 0 || ml < 2)
    return -1;
  uint32_t n = (uint32_t)m[0] << 8 | m[1];
  if (n == 0 || n > BLOB_MAX_TRACE || ml != 2u + n)
    return -1;
  *trace = (const char *)m + 2;
  *tl = n;
  return 0;
}

int blob_pub_meta(const uint8_t *blob, size_t len, blob_pub_t *o) {
  const uint8_t *body, *attrs, *m;
  uint32_t bl, al;
  size_t ml;
  if (pub_split(blob, len, &body, &bl, &attrs, &al, &m, &ml) != 0 || ml < 18)
    return -1;
  o->pub_idn = be64_get(m);
  o->pub_ms = (int64_t)be64_get(m + 8);
  o->topic_len = m[16];
  if (o->topic_len == 0 || o->topic_len > GBX_MAX_NAME || ml < 18u + o->topic_len)
    return -1;
  o->topic = (const char *)m + 17;
  o->subject_len = m[17 + o->topic_len];
  if (ml != 18u + o->topic_len + o->subject_len)
    return -1;
  o->subject = o->subject_len ? (const char *)m + 18 + o->topic_len : NULL;
  return 0;
}

int blob_parse(const uint8_t *blob, size_t len, const uint8_t **body, uint32_t *body_len,
               const uint8_t **attrs, uint32_t *attrs_len) {
  if (len >= 1 && blob[0] == BLOB_VERSION_PUB) {
    const uint8_t *m;
    size_t ml;
    blob_pub_t meta;
    if (pub_split(blob, len, body, body_len, attrs, attrs_len, &m, &ml) != 0 ||
        blob_pub_meta(blob, len, &meta) != 0)
      return -1;
  } else if (len >= 1 && blob[0] == BLOB_VERSION_SYS) {
    const uint8_t *m;
    size_t ml;
    const char *t;
    uint32_t tl;
    if (split2(blob, len, BLOB_VERSION_SYS, body, body_len, attrs, attrs_len, &m, &ml) != 0 ||
        blob_trace(blob, len, &t, &tl) != 0)
      return -1;
  } else {
    if (len < BLOB_HDR || blob[0] != BLOB_VERSION)
      return -1;
    uint32_t bl = be32_get(blob + 1);
    if (bl > len - BLOB_HDR)
      return -1;
    *body = blob + BLOB_HDR;
    *body_len = bl;
    *attrs = blob + BLOB_HDR + bl;
    *attrs_len = (uint32_t)(len - BLOB_HDR - bl);
  }
  if (*attrs_len) {
    gbx_errbuf_t eb;
    if (gbx_mp_validate(*attrs, *attrs_len, 3, &eb) != GBX_E_OK || (*attrs)[0] < 0x80 ||
        ((*attrs)[0] > 0x8f && (*attrs)[0] != 0xde && (*attrs)[0] != 0xdf))
      return -1;
  }
  return 0;
}
