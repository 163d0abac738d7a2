/* request.h - libgearbox internals: building request frames into a
 * client's write buffer. Each request_* function validates what it can
 * check locally (sizes, counts, NULL pointers), appends one complete frame,
 * registers its id as pending and returns the id; on failure it returns 0
 * with err set and leaves the buffer as it was. Nothing is written to the
 * socket here: conn_flush() does that. Shared by the blocking calls and the
 * pipelined gbx_submit_* calls so both send identical requests. */
#ifndef GBX_REQUEST_H
#define GBX_REQUEST_H

#include "conn.h"
#include "gbx_auth.h"

uint64_t request_ping(gbx_client_t *c, gbx_error_t *err);
/* auth_prove with the client nonce and proof (GBX_AUTH_NONCE and
 * GBX_AUTH_PROOF bytes; auth_begin is request_one with "key"). */
/* principal_put (account and policy NULL: not sent) and principal_list;
 * principal_delete is request_one with "name". */
uint64_t request_principal_put(gbx_client_t *c, const char *name, const char *key,
                               const char *secret, const char *account, const char *policy,
                               gbx_error_t *err);
uint64_t request_principal_list(gbx_client_t *c, gbx_error_t *err);
uint64_t request_auth_prove(gbx_client_t *c, const uint8_t *cnonce, const uint8_t *proof,
                            gbx_error_t *err);
/* A request whose only field is key: value, NULL sent as "" (topic_delete
 * and topic_get_attrs with "t", unsubscribe and sub_get_attrs with "sub"). */
uint64_t request_one(gbx_client_t *c, int op, const char *key, const char *value, gbx_error_t *err);
/* request_one with key "q" (queue_delete, queue_get_attrs, queue_purge,
 * queue_dlq_sources, redrive_status, redrive_cancel). */
uint64_t request_queue_only(gbx_client_t *c, int op, const char *q, gbx_error_t *err);
/* Packs a create request's non-empty attribute map. */
typedef void (*request_attrs_fn)(msgpack_packer *pk, const void *attrs);
/* A create request (queue_create, topic_create): key: name, then "attrs"
 * packed by pack_attrs (NULL: none to send) and ntags "tags" (none when
 * tags is NULL). */
uint64_t request_create(gbx_client_t *c, int op, const char *key, const char *name,
                        request_attrs_fn pack_attrs, const void *attrs, const gbx_tag_t *tags,
                        size_t ntags, gbx_error_t *err);
uint64_t request_queue_create(gbx_client_t *c, const char *q, const gbx_queue_attrs_t *attrs,
                              const gbx_tag_t *tags, size_t ntags, gbx_error_t *err);
/* A page of names (queue_list, topic_list): the optional prefix, max (0:
 * the server's default) and paging token next. */
uint64_t request_list(gbx_client_t *c, int op, const char *prefix, uint32_t max, const char *next,
                      gbx_error_t *err);
uint64_t request_queue_list(gbx_client_t *c, const char *prefix, uint32_t max, const char *next,
                            gbx_error_t *err);
uint64_t request_queue_set_attrs(gbx_client_t *c, const char *q, const gbx_queue_attrs_t *attrs,
                                 gbx_error_t *err);
uint64_t request_queue_tag(gbx_client_t *c, const char *q, const gbx_tag_t *tags, size_t ntags,
                           gbx_error_t *err);
uint64_t request_queue_untag(gbx_client_t *c, const char *q, const char *const *keys, size_t nkeys,
                             gbx_error_t *err);
uint64_t request_send(gbx_client_t *c, const char *q, const void *body, size_t len,
                      const gbx_msg_attr_t *attrs, size_t nattrs, int delay, gbx_error_t *err);
/* One entry of a send or publish batch, as request_batch packs it. */
typedef struct request_entry {
  const char *eid; /* NULL: none */
  const void *body;
  size_t len;
  const gbx_msg_attr_t *attrs;
  size_t nattrs;
  int delay;           /* send_batch: -1 for the queue's */
  const char *subject; /* publish_batch: NULL for none */
} request_entry_t;
/* Fills *out with entry i of an array of a caller's entry type. */
typedef void (*request_entry_fn)(const void *entries, size_t i, request_entry_t *out);
/* A batch request (send_batch, publish_batch): key: name and the n entries
 * read through view. Refused locally unless 1 <= n <= max and every body
 * and its attributes pass request_check_message. */
uint64_t request_batch(gbx_client_t *c, int op, const char *key, const char *name,
                       const void *entries, size_t n, unsigned max, request_entry_fn view,
                       gbx_error_t *err);
uint64_t request_send_batch(gbx_client_t *c, const char *q, const gbx_send_entry_t *entries,
                            size_t n, gbx_error_t *err);
uint64_t request_receive(gbx_client_t *c, const char *q, uint32_t max, int vis, int wait,
                         gbx_error_t *err);
uint64_t request_delete(gbx_client_t *c, const char *q, const char *receipt, gbx_error_t *err);
uint64_t request_change_vis(gbx_client_t *c, const char *q, const char *receipt, uint32_t vis,
                            gbx_error_t *err);
/* op is GBX_OP_DELETE_BATCH or GBX_OP_CHANGE_VIS_BATCH. */
uint64_t request_receipt_batch(gbx_client_t *c, int op, const char *q,
                               const gbx_receipt_entry_t *entries, size_t n, gbx_error_t *err);
uint64_t request_redrive_start(gbx_client_t *c, const char *q, const char *dst, uint32_t rate,
                               gbx_error_t *err);
uint64_t request_stats(gbx_client_t *c, const char *q, gbx_error_t *err);
uint64_t request_backup(gbx_client_t *c, const char *dir, gbx_error_t *err);

/* ---- building blocks for request builders in other files (topics.c) ---- */

/* A request under construction: where its frame starts in c->out. */
typedef struct req {
  gbx_client_t *c;
  msgpack_packer pk;
  size_t off;
  int op;
} req_t;

/* Starts a frame for op holding nfields fields after `op` and `id` in
 * c->out; the caller checked conn_check_open() first and packs exactly
 * nfields key/value pairs into the returned packer, then calls
 * request_end(). */
msgpack_packer *request_begin(req_t *rq, gbx_client_t *c, int op, uint32_t nfields);
/* Finishes the frame begun by request_begin: checks its size, registers its
 * id as pending and returns it; or returns 0 with err set and removes the
 * frame from the buffer. */
uint64_t request_end(req_t *rq, int longpoll, gbx_error_t *err);
/* Checks a body and its attributes locally (NULL pointers, more than
 * GBX_MAX_ATTRS attributes, sizes past the frame cap) and fills
 * tmp[GBX_MAX_ATTRS] with the codec's view of the attributes; adds the
 * bytes to *total. Returns GBX_E_OK or an error in err (which may be NULL). */
int request_check_message(const void *body, size_t len, const gbx_msg_attr_t *attrs, size_t nattrs,
                          gbx_attr_t *tmp, uint64_t *total, gbx_error_t *err);

/* The protocol name of an operation code ("send"), "unknown" if none. */
const char *request_op_name(int op);

/* Extra time a receive with this wait argument may legitimately take. */
unsigned request_wait_ms(int wait);

#endif
