/* pipeline.c - the pipelined interface: gbx_submit_* buffer a request and
 * return its id at once; gbx_collect hands back replies as they come.
 *
 * Requests accumulate in the client's write buffer and leave in one write
 * once it holds GBX_PIPELINE_FLUSH_BYTES (or on gbx_flush / gbx_collect).
 * While writing, the client also reads, so a caller may submit any number
 * of requests before collecting without deadlocking against the server. */
#include "conn.h"
#include "request.h"

/* Writes the buffer out once it is large enough to be worth a system call. */
static uint64_t submitted(gbx_client_t *c, uint64_t id, gbx_error_t *err) {
  if (id && c->out.len - c->out_off >= GBX_PIPELINE_FLUSH_BYTES &&
      conn_flush(c, conn_deadline(c, 0), err) != GBX_E_OK)
    return 0;
  return id;
}

uint64_t gbx_submit_ping(gbx_client_t *c, gbx_error_t *err) {
  return submitted(c, request_ping(c, err), err);
}

uint64_t gbx_submit_send(gbx_client_t *c, const char *queue, const void *body, size_t len,
                         const gbx_msg_attr_t *attrs, size_t nattrs, int delay, gbx_error_t *err) {
  return submitted(c, request_send(c, queue, body, len, attrs, nattrs, delay, err), err);
}

uint64_t gbx_submit_send_batch(gbx_client_t *c, const char *queue, const gbx_send_entry_t *entries,
                               size_t n, gbx_error_t *err) {
  return submitted(c, request_send_batch(c, queue, entries, n, err), err);
}

uint64_t gbx_submit_receive(gbx_client_t *c, const char *queue, uint32_t max, int vis, int wait,
                            gbx_error_t *err) {
  return submitted(c, request_receive(c, queue, max, vis, wait, err), err);
}

uint64_t gbx_submit_delete(gbx_client_t *c, const char *queue, const char *receipt,
                           gbx_error_t *err) {
  return submitted(c, request_delete(c, queue, receipt, err), err);
}

uint64_t gbx_submit_delete_batch(gbx_client_t *c, const char *queue,
                                 const gbx_receipt_entry_t *entries, size_t n, gbx_error_t *err) {
  return submitted(c, request_receipt_batch(c, GBX_OP_DELETE_BATCH, queue, entries, n, err), err);
}

uint64_t gbx_submit_change_vis(gbx_client_t *c, const char *queue, const char *receipt,
                               uint32_t vis, gbx_error_t *err) {
  return submitted(c, request_change_vis(c, queue, receipt, vis, err), err);
}

int gbx_collect(gbx_client_t *c, gbx_reply_t **out, gbx_error_t *err) {
  return conn_collect(c, out, err);
}
