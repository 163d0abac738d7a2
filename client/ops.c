/* ops.c - the blocking typed calls of gearbox.h: build the request
 * (request.c), wait for its reply (conn.c), decode the result (reply.c,
 * decode.c). Each is the same three steps; only the decoding differs. */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "reply.h"
#include "request.h"

/* A redrive task id: today "<queue>/<ms>", about 100 characters; the
 * margin allows a longer form from a newer server. */
#define TASK_ID_MAX 256u

/* Every public call starts with this: the request builders report their
 * failure only through err, so a caller's NULL is replaced by a local. */
#define ERR_LOCAL(err)                                                                             \
  gbx_error_t err_local_;                                                                          \
  if (!(err))                                                                                      \
  (err) = &err_local_

/* Waits for the reply to request id (0: building it failed, err is set). */
static int call(gbx_client_t *c, uint64_t id, unsigned extra_ms, gbx_reply_t **r,
                gbx_error_t *err) {
  *r = NULL;
  if (!id)
    return err->code;
  return conn_call(c, id, extra_ms, r, err);
}

/* A call whose reply carries no result fields. */
static int call_simple(gbx_client_t *c, uint64_t id, gbx_error_t *err) {
  gbx_reply_t *r;
  int rc = call(c, id, 0, &r, err);
  gbx_reply_free(r);
  return rc;
}

/* Finishes a decoding: frees the reply and turns a failure into err. A
 * malformed reply leaves the connection open: its framing was intact. */
static int done(gbx_reply_t *r, int rc, const gbx_errbuf_t *eb, gbx_error_t *err) {
  if (rc)
    conn_seterr(err, rc, "malformed %s reply: %s", request_op_name(r->op), eb->msg);
  gbx_reply_free(r);
  return rc;
}

/* ---- queues ---------------------------------------------------------------- */

int gbx_ping(gbx_client_t *c, gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_ping(c, err), err);
}

int gbx_queue_create(gbx_client_t *c, const char *name, const gbx_queue_attrs_t *attrs,
                     const gbx_tag_t *tags, size_t ntags, int *created, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  int made = 0;
  int rc = call(c, request_queue_create(c, name, attrs, tags, ntags, err), 0, &r, err);
  if (rc)
    return rc;
  rc = reply_decode_bool(r, "created", &made, &eb);
  if (!rc && created)
    *created = made;
  return done(r, rc, &eb, err);
}

int gbx_queue_delete(gbx_client_t *c, const char *name, gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_queue_only(c, GBX_OP_QUEUE_DELETE, name, err), err);
}

int gbx_queue_list(gbx_client_t *c, const char *prefix, uint32_t max, const char *next,
                   gbx_queue_list_t *out, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  memset(out, 0, sizeof *out);
  int rc = call(c, request_queue_list(c, prefix, max, next, err), 0, &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_queue_list(r, 1, out, &eb), &eb, err);
}

int gbx_queue_dlq_sources(gbx_client_t *c, const char *name, gbx_queue_list_t *out,
                          gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  memset(out, 0, sizeof *out);
  int rc = call(c, request_queue_only(c, GBX_OP_QUEUE_DLQ_SOURCES, name, err), 0, &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_queue_list(r, 0, out, &eb), &eb, err);
}

int gbx_queue_get_attrs(gbx_client_t *c, const char *name, gbx_queue_info_t *out,
                        gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  memset(out, 0, sizeof *out);
  int rc = call(c, request_queue_only(c, GBX_OP_QUEUE_GET_ATTRS, name, err), 0, &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_queue_info(r, out, &eb), &eb, err);
}

int gbx_queue_set_attrs(gbx_client_t *c, const char *name, const gbx_queue_attrs_t *attrs,
                        gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_queue_set_attrs(c, name, attrs, err), err);
}

int gbx_queue_purge(gbx_client_t *c, const char *name, uint64_t *purged, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  uint64_t n = 0;
  int rc = call(c, request_queue_only(c, GBX_OP_QUEUE_PURGE, name, err), 0, &r, err);
  if (rc)
    return rc;
  rc = reply_decode_u64(r, "purged", &n, &eb);
  if (!rc && purged)
    *purged = n;
  return done(r, rc, &eb, err);
}

int gbx_queue_tag(gbx_client_t *c, const char *name, const gbx_tag_t *tags, size_t ntags,
                  gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_queue_tag(c, name, tags, ntags, err), err);
}

int gbx_queue_untag(gbx_client_t *c, const char *name, const char *const *keys, size_t nkeys,
                    gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_queue_untag(c, name, keys, nkeys, err), err);
}

/* ---- messages ---------------------------------------------------------------- */

int gbx_queue_send(gbx_client_t *c, const char *queue, const void *body, size_t len,
                   const gbx_msg_attr_t *attrs, size_t nattrs, int delay, char mid[GBX_MID_BUFSZ],
                   gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  char tmp[GBX_MID_BUFSZ];
  int rc = call(c, request_send(c, queue, body, len, attrs, nattrs, delay, err), 0, &r, err);
  if (rc)
    return rc;
  rc = reply_decode_mid(r, mid ? mid : tmp, &eb);
  return done(r, rc, &eb, err);
}

int gbx_queue_send_batch(gbx_client_t *c, const char *queue, const gbx_send_entry_t *entries,
                         size_t n, gbx_batch_result_t *results, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  int rc = call(c, request_send_batch(c, queue, entries, n, err), 0, &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_batch(r, 1, results, n, &eb), &eb, err);
}

int gbx_queue_receive(gbx_client_t *c, const char *queue, uint32_t max, int vis, int wait,
                      gbx_message_t **msgs, size_t *n, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  *msgs = NULL;
  *n = 0;
  uint64_t id = request_receive(c, queue, max, vis, wait, err);
  int rc = call(c, id, wait == 0 ? 0 : request_wait_ms(wait), &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_messages(r, msgs, n, &eb), &eb, err);
}

int gbx_message_delete(gbx_client_t *c, const char *queue, const char *receipt, gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_delete(c, queue, receipt, err), err);
}

int gbx_message_delete_batch(gbx_client_t *c, const char *queue, const gbx_receipt_entry_t *entries,
                             size_t n, gbx_batch_result_t *results, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  uint64_t id = request_receipt_batch(c, GBX_OP_DELETE_BATCH, queue, entries, n, err);
  int rc = call(c, id, 0, &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_batch(r, 0, results, n, &eb), &eb, err);
}

int gbx_message_change_vis(gbx_client_t *c, const char *queue, const char *receipt, uint32_t vis,
                           gbx_error_t *err) {
  ERR_LOCAL(err);
  return call_simple(c, request_change_vis(c, queue, receipt, vis, err), err);
}

int gbx_message_change_vis_batch(gbx_client_t *c, const char *queue,
                                 const gbx_receipt_entry_t *entries, size_t n,
                                 gbx_batch_result_t *results, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  uint64_t id = request_receipt_batch(c, GBX_OP_CHANGE_VIS_BATCH, queue, entries, n, err);
  int rc = call(c, id, 0, &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_batch(r, 0, results, n, &eb), &eb, err);
}

/* ---- redrive ------------------------------------------------------------------- */

int gbx_redrive_start(gbx_client_t *c, const char *dlq, const char *dst, uint32_t rate, char **task,
                      gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  char *t = NULL;
  if (task)
    *task = NULL;
  int rc = call(c, request_redrive_start(c, dlq, dst, rate, err), 0, &r, err);
  if (rc)
    return rc;
  rc = reply_decode_strdup(r, "task", TASK_ID_MAX, &t, &eb);
  if (!rc && task)
    *task = t;
  else
    free(t);
  return done(r, rc, &eb, err);
}

int gbx_redrive_status(gbx_client_t *c, const char *dlq, gbx_redrive_status_t *out,
                       gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  memset(out, 0, sizeof *out);
  int rc = call(c, request_queue_only(c, GBX_OP_REDRIVE_STATUS, dlq, err), 0, &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_redrive_status(r, out, &eb), &eb, err);
}

int gbx_redrive_cancel(gbx_client_t *c, const char *dlq, uint64_t *moved, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  uint64_t n = 0;
  int rc = call(c, request_queue_only(c, GBX_OP_REDRIVE_CANCEL, dlq, err), 0, &r, err);
  if (rc)
    return rc;
  rc = reply_decode_u64(r, "moved", &n, &eb);
  if (!rc && moved)
    *moved = n;
  return done(r, rc, &eb, err);
}

/* ---- broker ---------------------------------------------------------------------- */

int gbx_stats(gbx_client_t *c, const char *queue, gbx_stats_t *out, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  memset(out, 0, sizeof *out);
  int rc = call(c, request_stats(c, queue, err), 0, &r, err);
  if (rc)
    return rc;
  return done(r, reply_decode_stats(r, out, &eb), &eb, err);
}

int gbx_backup(gbx_client_t *c, const char *dir, char **dir_out, gbx_error_t *err) {
  ERR_LOCAL(err);
  gbx_reply_t *r;
  gbx_errbuf_t eb;
  char *d = NULL;
  if (dir_out)
    *dir_out = NULL;
  int rc = call(c, request_backup(c, dir, err), 0, &r, err);
  if (rc)
    return rc;
  rc = reply_decode_strdup(r, "dir", GBX_HARD_MAX_FRAME, &d, &eb);
  if (!rc && dir_out)
    *dir_out = d;
  else
    free(d);
  return done(r, rc, &eb, err);
}
