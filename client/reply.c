/* reply.c - a reply frame: its checked decoding, its error, its scalar
 * fields, and the public gbx_reply_* accessors of the pipelined interface.
 * The structured results (messages, lists, attributes, stats) are decoded
 * in decode.c. */
#include "reply.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "request.h"

/* Wire error codes are small table entries; anything above this is not a
 * code but garbage, refused so it never reaches an int conversion. */
#define REPLY_CODE_MAX 65535u

int reply_parse(const uint8_t *payload, size_t len, gbx_reply_t **out, gbx_errbuf_t *eb) {
  gbx_reply_t *r = NULL;
  const msgpack_object *root;
  uint64_t id, code;
  int rc, present = 0;

  *out = NULL;
  if (len == 0 || len > GBX_HARD_MAX_FRAME)
    return gbx_errbuf_set(eb, GBX_E_PROTOCOL, "reply frame of %zu bytes (limit %u)", len,
                          GBX_HARD_MAX_FRAME);
  r = malloc(sizeof *r + len);
  if (!r)
    return gbx_errbuf_set(eb, GBX_E_NOMEM, "out of memory for a %zu-byte reply", len);
  memset(r, 0, sizeof *r);
  memcpy(r->data, payload, len);
  r->len = len;
  rc = gbx_doc_parse(&r->doc, r->data, len, eb);
  if (rc) {
    free(r);
    /* gbx_doc_parse reports its own allocation failures as internal. */
    if (rc == GBX_E_INTERNAL)
      return gbx_errbuf_set(eb, GBX_E_NOMEM, "out of memory decoding");
    eb->code = GBX_E_PROTOCOL;
    return GBX_E_PROTOCOL;
  }
  root = &r->doc.root;
  if ((rc = gbx_get_u64(root, "id", 1, 0, UINT64_MAX, &id, NULL, eb)) ||
      (rc = gbx_get_u64(root, "err", 1, 0, REPLY_CODE_MAX, &code, NULL, eb)))
    goto fail;
  r->id = id;
  r->code = (int)code;
  if (code) {
    const char *msg;
    uint32_t mlen;
    rc = gbx_get_str(root, "msg", 0, 0, GBX_HARD_MAX_FRAME, &msg, &mlen, &present, eb);
    if (rc)
      goto fail;
    if (present) {
      r->msg = msg;
      r->msg_len = mlen;
    }
  }
  *out = r;
  return GBX_E_OK;

fail:
  gbx_reply_free(r);
  eb->code = GBX_E_PROTOCOL;
  return GBX_E_PROTOCOL;
}

const msgpack_object *reply_root(const gbx_reply_t *r) {
  return &r->doc.root;
}

int reply_error(const gbx_reply_t *r, gbx_error_t *err) {
  if (!r->code)
    return GBX_E_OK;
  if (r->msg && r->msg_len)
    return conn_seterr(err, r->code, "%.*s", (int)(r->msg_len > 255 ? 255 : r->msg_len), r->msg);
  return conn_seterr(err, r->code, "%s", gbx_err_message(r->code));
}

/* Copies a str into dst (NUL-terminated) when it fits. */
static int copy_str(const msgpack_object *map, const char *key, int required, uint32_t min_len,
                    char *dst, size_t cap, gbx_errbuf_t *eb) {
  const char *p;
  uint32_t n;
  int present = 0;
  int rc = gbx_get_str(map, key, required, min_len, (uint32_t)(cap - 1), &p, &n, &present, eb);
  if (rc)
    return GBX_E_PROTOCOL;
  if (present) {
    memcpy(dst, p, n);
    dst[n] = '\0';
  }
  return GBX_E_OK;
}

int reply_decode_mid(const gbx_reply_t *r, char mid[GBX_MID_BUFSZ], gbx_errbuf_t *eb) {
  return copy_str(reply_root(r), "mid", 1, 1, mid, GBX_MID_BUFSZ, eb);
}

int reply_decode_strdup(const gbx_reply_t *r, const char *key, uint32_t max_len, char **out,
                        gbx_errbuf_t *eb) {
  const char *p;
  uint32_t n;
  *out = NULL;
  if (gbx_get_str(reply_root(r), key, 1, 0, max_len, &p, &n, NULL, eb))
    return GBX_E_PROTOCOL;
  *out = malloc((size_t)n + 1);
  if (!*out)
    return gbx_errbuf_set(eb, GBX_E_NOMEM, "out of memory");
  memcpy(*out, p, n);
  (*out)[n] = '\0';
  return GBX_E_OK;
}

int reply_decode_u64(const gbx_reply_t *r, const char *key, uint64_t *out, gbx_errbuf_t *eb) {
  if (gbx_get_u64(reply_root(r), key, 1, 0, UINT64_MAX, out, NULL, eb))
    return GBX_E_PROTOCOL;
  return GBX_E_OK;
}

int reply_decode_bool(const gbx_reply_t *r, const char *key, int *out, gbx_errbuf_t *eb) {
  if (gbx_get_bool(reply_root(r), key, 1, out, NULL, eb))
    return GBX_E_PROTOCOL;
  return GBX_E_OK;
}

/* ---- public accessors ------------------------------------------------------ */

uint64_t gbx_reply_id(const gbx_reply_t *r) {
  return r ? r->id : 0;
}

int gbx_reply_op(const gbx_reply_t *r) {
  return r ? r->op : 0;
}

int gbx_reply_error(const gbx_reply_t *r, gbx_error_t *err) {
  if (!r)
    return conn_seterr(err, GBX_E_PROTOCOL, "no reply");
  return reply_error(r, err);
}

/* Common checks of the typed accessors: a reply, successful, of one of the
 * expected operations. */
static int expect(const gbx_reply_t *r, int op1, int op2, int op3, gbx_error_t *err) {
  if (!r)
    return conn_seterr(err, GBX_E_PROTOCOL, "no reply");
  if (r->code)
    return reply_error(r, err);
  if (r->op != op1 && r->op != op2 && r->op != op3)
    return conn_seterr(err, GBX_E_PROTOCOL, "reply %llu answers %s, not %s",
                       (unsigned long long)r->id, request_op_name(r->op), request_op_name(op1));
  return GBX_E_OK;
}

/* Turns a decoder's failure into err, naming the operation. */
static int decoded(const gbx_reply_t *r, int rc, const gbx_errbuf_t *eb, gbx_error_t *err) {
  if (!rc)
    return GBX_E_OK;
  return conn_seterr(err, rc, "malformed %s reply: %s", request_op_name(r->op), eb->msg);
}

int gbx_reply_mid(const gbx_reply_t *r, char mid[GBX_MID_BUFSZ], gbx_error_t *err) {
  gbx_errbuf_t eb;
  int rc = expect(r, GBX_OP_SEND, GBX_OP_SEND, GBX_OP_SEND, err);
  if (rc)
    return rc;
  return decoded(r, reply_decode_mid(r, mid, &eb), &eb, err);
}

int gbx_reply_messages(const gbx_reply_t *r, gbx_message_t **msgs, size_t *n, gbx_error_t *err) {
  gbx_errbuf_t eb;
  int rc;
  *msgs = NULL;
  *n = 0;
  rc = expect(r, GBX_OP_RECEIVE, GBX_OP_RECEIVE, GBX_OP_RECEIVE, err);
  if (rc)
    return rc;
  return decoded(r, reply_decode_messages(r, msgs, n, &eb), &eb, err);
}

int gbx_reply_batch_results(const gbx_reply_t *r, gbx_batch_result_t *results, size_t n,
                            gbx_error_t *err) {
  gbx_errbuf_t eb;
  int rc = expect(r, GBX_OP_SEND_BATCH, GBX_OP_DELETE_BATCH, GBX_OP_CHANGE_VIS_BATCH, err);
  if (rc)
    return rc;
  rc = reply_decode_batch(r, r->op == GBX_OP_SEND_BATCH, results, n, &eb);
  return decoded(r, rc, &eb, err);
}

void gbx_reply_free(gbx_reply_t *r) {
  if (!r)
    return;
  gbx_doc_free(&r->doc);
  free(r);
}
