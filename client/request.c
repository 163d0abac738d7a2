/* request.c - request frames for every operation of the protocol, packed
 * straight into the client's write buffer (see request.h). */
#include "request.h"

#include <string.h>

#include "qattrs.h"

/* msgpack write callback appending to c->out. After one failed append the
 * request is doomed, so later appends are skipped rather than leaving a
 * frame with a hole in it. */
static int out_write_cb(void *data, const char *buf, size_t len) {
  gbx_client_t *c = data;
  if (c->pack_failed)
    return -1;
  if (gbx_buf_append(&c->out, buf, len) != 0) {
    c->pack_failed = 1;
    return -1;
  }
  return 0;
}

/* Starts a frame for op holding nfields fields after `op` and `id`. */
static msgpack_packer *begin(req_t *rq, gbx_client_t *c, int op, uint32_t nfields) {
  static const char zero[GBX_FRAME_HDR] = {0};
  rq->c = c;
  rq->op = op;
  rq->off = c->out.len;
  c->pack_failed = 0;
  msgpack_packer_init(&rq->pk, c, out_write_cb);
  out_write_cb(c, zero, sizeof zero);
  msgpack_pack_map(&rq->pk, 2 + nfields);
  gbx_pack_kv_u64(&rq->pk, "op", (uint64_t)op);
  gbx_pack_kv_u64(&rq->pk, "id", c->next_id);
  return &rq->pk;
}

/* Finishes the frame: checks it, registers its id, returns the id or 0. */
static uint64_t end(req_t *rq, int longpoll, gbx_error_t *err) {
  gbx_client_t *c = rq->c;
  size_t payload = c->out.len - rq->off - GBX_FRAME_HDR;
  uint64_t id = c->next_id;
  if (c->pack_failed) {
    conn_seterr(err, GBX_E_NOMEM, "out of memory building a %s request", request_op_name(rq->op));
    goto fail;
  }
  /* The server refuses (and hangs up on) frames over its --max-frame; the
   * hard cap is the most any server accepts, so larger is refused here. */
  if (payload > GBX_HARD_MAX_FRAME) {
    conn_seterr(err, GBX_E_FRAME_TOO_LARGE, "request of %zu bytes exceeds the %u-byte frame cap",
                payload, GBX_HARD_MAX_FRAME);
    goto fail;
  }
  if (conn_pending_add(c, id, rq->op, longpoll) != 0) {
    conn_seterr(err, GBX_E_NOMEM, "out of memory recording a request");
    goto fail;
  }
  gbx_frame_put_len(c->out.data + rq->off, (uint32_t)payload);
  c->next_id++;
  return id;

fail:
  c->out.len = rq->off;
  return 0;
}

/* Common preamble: the connection must be open. Returns 1 if it is. */
static int usable(gbx_client_t *c, gbx_error_t *err) {
  return conn_check_open(c, err) == GBX_E_OK;
}

static const char *nz(const char *s) {
  return s ? s : "";
}

/* Checks a body and attributes locally: sizes that could not fit a frame,
 * NULL pointers, more attributes than allowed. Fills tmp (GBX_MAX_ATTRS
 * entries) with the codec's view of the attributes. Adds the entry's bytes to
 * *total. Returns GBX_E_OK or an error in err. */
static int check_message(const void *body, size_t len, const gbx_msg_attr_t *attrs, size_t nattrs,
                         gbx_attr_t *tmp, uint64_t *total, gbx_error_t *err) {
  if (!body && len)
    return conn_seterr(err, GBX_E_BAD_TYPE, "body is NULL with a length of %zu", len);
  if (nattrs && !attrs)
    return conn_seterr(err, GBX_E_BAD_ATTRIBUTE, "attributes are NULL");
  if (nattrs > GBX_MAX_ATTRS)
    return conn_seterr(err, GBX_E_BAD_ATTRIBUTE, "%zu attributes, at most %u are allowed", nattrs,
                       GBX_MAX_ATTRS);
  *total += len;
  for (size_t i = 0; i < nattrs; i++) {
    const gbx_msg_attr_t *a = &attrs[i];
    if (!a->name || !a->type || (!a->value && a->value_len))
      return conn_seterr(err, GBX_E_BAD_ATTRIBUTE, "attribute %zu has a NULL name, type or value",
                         i);
    size_t nl = strlen(a->name), tl = strlen(a->type);
    if (nl > GBX_MAX_ATTR_NAME || tl > GBX_MAX_ATTR_TYPE || a->value_len > GBX_HARD_MAX_FRAME)
      return conn_seterr(err, GBX_E_BAD_ATTRIBUTE, "attribute '%.40s' is too long", a->name);
    tmp[i] = (gbx_attr_t){.name = a->name,
                          .name_len = (uint32_t)nl,
                          .type = a->type,
                          .type_len = (uint32_t)tl,
                          .value = a->value ? a->value : "",
                          .value_len = (uint32_t)a->value_len};
    *total += nl + tl + a->value_len;
  }
  /* Checked before packing so a huge body is never copied for nothing. */
  if (*total > GBX_HARD_MAX_FRAME)
    return conn_seterr(err, GBX_E_FRAME_TOO_LARGE,
                       "%llu bytes of bodies and attributes exceed the %u-byte frame cap",
                       (unsigned long long)*total, GBX_HARD_MAX_FRAME);
  return GBX_E_OK;
}

static int check_batch(const void *entries, size_t n, unsigned max, gbx_error_t *err) {
  if (!entries || n == 0)
    return conn_seterr(err, GBX_E_EMPTY_BATCH, "the batch has no entries");
  if (n > max)
    return conn_seterr(err, GBX_E_TOO_MANY_ENTRIES, "%zu entries, at most %u are allowed", n, max);
  return GBX_E_OK;
}

const char *request_op_name(int op) {
  switch (op) {
#define GBX_OP(sym, code, name, iam)                                                               \
  case code:                                                                                       \
    return name;
#include "gbx_ops.def"
#undef GBX_OP
  }
  return "unknown";
}

unsigned request_wait_ms(int wait) {
  if (wait < 0 || (unsigned)wait > GBX_WAIT_MAX)
    return GBX_WAIT_MAX * 1000u;
  return (unsigned)wait * 1000u;
}

/* ---- requests ---------------------------------------------------------------- */

uint64_t request_ping(gbx_client_t *c, gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  begin(&rq, c, GBX_OP_PING, 0);
  return end(&rq, 0, err);
}

uint64_t request_one(gbx_client_t *c, int op, const char *key, const char *value,
                     gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, op, 1);
  gbx_pack_kv_cstr(pk, key, nz(value));
  return end(&rq, 0, err);
}

uint64_t request_queue_only(gbx_client_t *c, int op, const char *q, gbx_error_t *err) {
  return request_one(c, op, "q", q, err);
}

static void pack_tags(msgpack_packer *pk, const gbx_tag_t *tags, size_t ntags) {
  msgpack_pack_map(pk, ntags);
  for (size_t i = 0; i < ntags; i++)
    gbx_pack_kv_cstr(pk, nz(tags[i].key), nz(tags[i].value));
}

uint64_t request_create(gbx_client_t *c, int op, const char *key, const char *name,
                        request_attrs_fn pack_attrs, const void *attrs, const gbx_tag_t *tags,
                        size_t ntags, gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  if (!tags)
    ntags = 0;
  msgpack_packer *pk = begin(&rq, c, op, 1 + (pack_attrs != NULL) + (ntags > 0));
  gbx_pack_kv_cstr(pk, key, nz(name));
  if (pack_attrs) {
    gbx_pack_cstr(pk, "attrs");
    pack_attrs(pk, attrs);
  }
  if (ntags) {
    gbx_pack_cstr(pk, "tags");
    pack_tags(pk, tags, ntags);
  }
  return end(&rq, 0, err);
}

/* qattrs_pack as a request_attrs_fn. */
static void pack_qattrs(msgpack_packer *pk, const void *attrs) {
  qattrs_pack(pk, attrs);
}

uint64_t request_queue_create(gbx_client_t *c, const char *q, const gbx_queue_attrs_t *attrs,
                              const gbx_tag_t *tags, size_t ntags, gbx_error_t *err) {
  return request_create(c, GBX_OP_QUEUE_CREATE, "q", q,
                        qattrs_count(attrs) > 0 ? pack_qattrs : NULL, attrs, tags, ntags, err);
}

uint64_t request_list(gbx_client_t *c, int op, const char *prefix, uint32_t max, const char *next,
                      gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, op, !!prefix + !!max + !!next);
  if (prefix)
    gbx_pack_kv_cstr(pk, "prefix", prefix);
  if (max)
    gbx_pack_kv_u64(pk, "max", max);
  if (next)
    gbx_pack_kv_cstr(pk, "next", next);
  return end(&rq, 0, err);
}

uint64_t request_queue_list(gbx_client_t *c, const char *prefix, uint32_t max, const char *next,
                            gbx_error_t *err) {
  return request_list(c, GBX_OP_QUEUE_LIST, prefix, max, next, err);
}

uint64_t request_queue_set_attrs(gbx_client_t *c, const char *q, const gbx_queue_attrs_t *attrs,
                                 gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_QUEUE_SET_ATTRS, 2);
  gbx_pack_kv_cstr(pk, "q", nz(q));
  gbx_pack_cstr(pk, "attrs");
  qattrs_pack(pk, attrs);
  return end(&rq, 0, err);
}

uint64_t request_queue_tag(gbx_client_t *c, const char *q, const gbx_tag_t *tags, size_t ntags,
                           gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  if (!tags)
    ntags = 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_QUEUE_TAG, 2);
  gbx_pack_kv_cstr(pk, "q", nz(q));
  gbx_pack_cstr(pk, "tags");
  pack_tags(pk, tags, ntags);
  return end(&rq, 0, err);
}

uint64_t request_queue_untag(gbx_client_t *c, const char *q, const char *const *keys, size_t nkeys,
                             gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  if (!keys)
    nkeys = 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_QUEUE_UNTAG, 2);
  gbx_pack_kv_cstr(pk, "q", nz(q));
  gbx_pack_cstr(pk, "keys");
  msgpack_pack_array(pk, nkeys);
  for (size_t i = 0; i < nkeys; i++)
    gbx_pack_cstr(pk, nz(keys[i]));
  return end(&rq, 0, err);
}

uint64_t request_send(gbx_client_t *c, const char *q, const void *body, size_t len,
                      const gbx_msg_attr_t *attrs, size_t nattrs, int delay, gbx_error_t *err) {
  req_t rq;
  gbx_attr_t tmp[GBX_MAX_ATTRS];
  uint64_t total = 0;
  if (!usable(c, err))
    return 0;
  if (check_message(body, len, attrs, nattrs, tmp, &total, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_SEND, 2 + (nattrs > 0) + (delay >= 0));
  gbx_pack_kv_cstr(pk, "q", nz(q));
  gbx_pack_kv_bin(pk, "body", body, len);
  if (nattrs) {
    gbx_pack_cstr(pk, "attrs");
    gbx_attrs_pack(pk, tmp, (uint32_t)nattrs);
  }
  if (delay >= 0)
    gbx_pack_kv_u64(pk, "delay", (uint64_t)delay);
  return end(&rq, 0, err);
}

uint64_t request_batch(gbx_client_t *c, int op, const char *key, const char *name,
                       const void *entries, size_t n, unsigned max, request_entry_fn view,
                       gbx_error_t *err) {
  req_t rq;
  request_entry_t e;
  gbx_attr_t tmp[GBX_MAX_ATTRS];
  uint64_t total = 0;
  if (!usable(c, err))
    return 0;
  if (check_batch(entries, n, max, err))
    return 0;
  for (size_t i = 0; i < n; i++) {
    view(entries, i, &e);
    if (check_message(e.body, e.len, e.attrs, e.nattrs, tmp, &total, err))
      return 0;
  }
  msgpack_packer *pk = begin(&rq, c, op, 2);
  gbx_pack_kv_cstr(pk, key, nz(name));
  gbx_pack_cstr(pk, "entries");
  msgpack_pack_array(pk, n);
  for (size_t i = 0; i < n; i++) {
    uint64_t unused = 0;
    view(entries, i, &e);
    /* Already checked above; this only refills tmp for this entry. */
    check_message(e.body, e.len, e.attrs, e.nattrs, tmp, &unused, NULL);
    msgpack_pack_map(pk, 1 + !!e.eid + (e.nattrs > 0) + (e.delay >= 0) + !!e.subject);
    if (e.eid)
      gbx_pack_kv_cstr(pk, "eid", e.eid);
    gbx_pack_kv_bin(pk, "body", e.body, e.len);
    if (e.nattrs) {
      gbx_pack_cstr(pk, "attrs");
      gbx_attrs_pack(pk, tmp, (uint32_t)e.nattrs);
    }
    if (e.delay >= 0)
      gbx_pack_kv_u64(pk, "delay", (uint64_t)e.delay);
    if (e.subject)
      gbx_pack_kv_cstr(pk, "subject", e.subject);
  }
  return end(&rq, 0, err);
}

/* Entry i of a gbx_send_entry_t array, for request_batch. */
static void send_entry(const void *entries, size_t i, request_entry_t *out) {
  const gbx_send_entry_t *e = (const gbx_send_entry_t *)entries + i;
  *out = (request_entry_t){e->eid, e->body, e->body_len, e->attrs, e->nattrs, e->delay, NULL};
}

uint64_t request_send_batch(gbx_client_t *c, const char *q, const gbx_send_entry_t *entries,
                            size_t n, gbx_error_t *err) {
  return request_batch(c, GBX_OP_SEND_BATCH, "q", q, entries, n, GBX_MAX_BATCH, send_entry, err);
}

uint64_t request_receive(gbx_client_t *c, const char *q, uint32_t max, int vis, int wait,
                         gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_RECEIVE, 1 + !!max + (vis >= 0) + (wait >= 0));
  gbx_pack_kv_cstr(pk, "q", nz(q));
  if (max)
    gbx_pack_kv_u64(pk, "max", max);
  if (vis >= 0)
    gbx_pack_kv_u64(pk, "vis", (uint64_t)vis);
  if (wait >= 0)
    gbx_pack_kv_u64(pk, "wait", (uint64_t)wait);
  return end(&rq, wait != 0, err);
}

uint64_t request_delete(gbx_client_t *c, const char *q, const char *receipt, gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_DELETE, 2);
  gbx_pack_kv_cstr(pk, "q", nz(q));
  gbx_pack_kv_cstr(pk, "rh", nz(receipt));
  return end(&rq, 0, err);
}

uint64_t request_change_vis(gbx_client_t *c, const char *q, const char *receipt, uint32_t vis,
                            gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_CHANGE_VIS, 3);
  gbx_pack_kv_cstr(pk, "q", nz(q));
  gbx_pack_kv_cstr(pk, "rh", nz(receipt));
  gbx_pack_kv_u64(pk, "vis", vis);
  return end(&rq, 0, err);
}

uint64_t request_receipt_batch(gbx_client_t *c, int op, const char *q,
                               const gbx_receipt_entry_t *entries, size_t n, gbx_error_t *err) {
  req_t rq;
  int with_vis = op == GBX_OP_CHANGE_VIS_BATCH;
  if (!usable(c, err))
    return 0;
  if (check_batch(entries, n, GBX_MAX_BATCH, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, op, 2);
  gbx_pack_kv_cstr(pk, "q", nz(q));
  gbx_pack_cstr(pk, "entries");
  msgpack_pack_array(pk, n);
  for (size_t i = 0; i < n; i++) {
    const gbx_receipt_entry_t *e = &entries[i];
    msgpack_pack_map(pk, 1 + !!e->eid + with_vis);
    if (e->eid)
      gbx_pack_kv_cstr(pk, "eid", e->eid);
    gbx_pack_kv_cstr(pk, "rh", nz(e->receipt));
    if (with_vis)
      gbx_pack_kv_u64(pk, "vis", e->visibility);
  }
  return end(&rq, 0, err);
}

uint64_t request_redrive_start(gbx_client_t *c, const char *q, const char *dst, uint32_t rate,
                               gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_REDRIVE_START, 1 + !!dst + !!rate);
  gbx_pack_kv_cstr(pk, "q", nz(q));
  if (dst)
    gbx_pack_kv_cstr(pk, "dst", dst);
  if (rate)
    gbx_pack_kv_u64(pk, "rate", rate);
  return end(&rq, 0, err);
}

uint64_t request_stats(gbx_client_t *c, const char *q, gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_STATS, !!q);
  if (q)
    gbx_pack_kv_cstr(pk, "q", q);
  return end(&rq, 0, err);
}

uint64_t request_backup(gbx_client_t *c, const char *dir, gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_BACKUP, 1);
  gbx_pack_kv_cstr(pk, "dir", nz(dir));
  return end(&rq, 0, err);
}

/* ---- building blocks for other files (request.h) ------------------------------- */

msgpack_packer *request_begin(req_t *rq, gbx_client_t *c, int op, uint32_t nfields) {
  return begin(rq, c, op, nfields);
}

uint64_t request_end(req_t *rq, int longpoll, gbx_error_t *err) {
  return end(rq, longpoll, err);
}

int request_check_message(const void *body, size_t len, const gbx_msg_attr_t *attrs, size_t nattrs,
                          gbx_attr_t *tmp, uint64_t *total, gbx_error_t *err) {
  return check_message(body, len, attrs, nattrs, tmp, total, err);
}

uint64_t request_auth_prove(gbx_client_t *c, const uint8_t *cnonce, const uint8_t *proof,
                            gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk = begin(&rq, c, GBX_OP_AUTH_PROVE, 2);
  gbx_pack_kv_bin(pk, "cnonce", cnonce, GBX_AUTH_NONCE);
  gbx_pack_kv_bin(pk, "proof", proof, GBX_AUTH_PROOF);
  return end(&rq, 0, err);
}

uint64_t request_principal_put(gbx_client_t *c, const char *name, const char *key,
                               const char *secret, const char *account, const char *policy,
                               gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  msgpack_packer *pk =
      begin(&rq, c, GBX_OP_PRINCIPAL_PUT, 3 + (account ? 1u : 0u) + (policy ? 1u : 0u));
  gbx_pack_kv_cstr(pk, "name", nz(name));
  gbx_pack_kv_cstr(pk, "key", nz(key));
  gbx_pack_kv_cstr(pk, "secret", nz(secret));
  if (account)
    gbx_pack_kv_cstr(pk, "account", account);
  if (policy)
    gbx_pack_kv_cstr(pk, "policy", policy);
  return end(&rq, 0, err);
}

uint64_t request_principal_list(gbx_client_t *c, gbx_error_t *err) {
  req_t rq;
  if (!usable(c, err))
    return 0;
  begin(&rq, c, GBX_OP_PRINCIPAL_LIST, 0);
  return end(&rq, 0, err);
}
