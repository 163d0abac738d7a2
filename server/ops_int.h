/* ops_int.h - what the protocol layer's files share: the request context,
 * reply packing and the small decoding helpers. ops.c holds queues and
 * messages, ops_topic.c topics, subscriptions and publish. Internal to
 * server/ops*.c. */
#ifndef GBX_OPS_INT_H
#define GBX_OPS_INT_H

#include "authz.h"
#include "server.h"

typedef struct reply {
  server_t *s;
  msgpack_packer pk;
  size_t off;
} reply_t;

typedef struct req {
  server_t *s;
  conn_t *c;
  uint64_t id;
  const msgpack_object *m;
  uint64_t now;
  gbx_errbuf_t eb;
  const char *action; /* the operation's IAM action (gbx_ops.def) */
  authz_who_t who;    /* the caller; who.p NULL: authentication is off */
} req_t;

typedef struct eres {
  gbx_err_t err;
  char msg[160];
  char mid[GBX_MSGID_LEN];
} eres_t;

/* Starts a success reply to request id with nfields result fields. */
msgpack_packer *ops_rbegin(reply_t *r, server_t *s, uint64_t id, uint32_t nfields);
/* Finishes the reply and queues it on c, held until what it saw is durable. */
void ops_rend(reply_t *r, conn_t *c);
/* An error reply (msg NULL or "": the table's message). */
void ops_reply_err(server_t *s, conn_t *c, uint64_t id, gbx_err_t code, const char *msg);
/* A success reply without fields. */
void ops_reply_ok(server_t *s, conn_t *c, uint64_t id);
/* Replies with code, and q->eb's message when it is about code. */
void ops_fail(req_t *q, gbx_err_t code);
/* 1 if msgpack key k is the string s. */
int ops_key_is(const msgpack_object *k, const char *s);
/* Copies a string attribute value (at most max bytes of text, text.h; a
 * JSON document when json) into *out (malloc'd, replacing what was there). */
gbx_err_t ops_attr_str(const msgpack_object *k, const msgpack_object *v, uint32_t max, int json,
                       char **out, gbx_errbuf_t *eb);
/* Parses a tag map into malloc'd tags; free with ops_tags_free. */
gbx_err_t ops_parse_tags(const msgpack_object *map, qtag_t **out, uint32_t *n, gbx_errbuf_t *eb);
void ops_tags_free(qtag_t *t, uint32_t n);
/* Validates a batch's "entries": 1-100 maps with unique entry ids. */
gbx_err_t ops_batch_entries(req_t *q, const msgpack_object_array **ea);
/* Records an entry's outcome (and q->eb's message), then clears q->eb. */
void ops_entry_result(req_t *q, eres_t *res, gbx_err_t e);
/* Reads the queue/topic name in field (must match the name pattern);
 * returns 0, or -1 after replying with the error. */
int ops_need_name(req_t *q, const char *field, const char **name, uint32_t *nl);
/* Packs "tags": {key: value} into a reply map. */
void ops_pack_tags(msgpack_packer *pk, const qtag_t *tags, uint32_t n);
/* Names for a list reply (queues or topics): at most OPS_MAX_NAMES, as
 * SQS's ListQueues pages. */
#define OPS_MAX_NAMES 1000u
typedef struct names {
  const char *v[OPS_MAX_NAMES];
  uint32_t n;
  const char *last; /* the last name scanned (listed or hidden): the next page's start */
  req_t *q;         /* set: list only what q's caller may see (ops_may_see) */
} names_t;
/* An empty list (aborts on OOM, like every small internal allocation). */
names_t *ops_names_new(void);
/* Replies {field: [names], next: last name if more} and frees ns. */
void ops_reply_names(req_t *q, const char *field, names_t *ns, int more);
/* Reads the optional prefix / next / max fields of a list request. */
gbx_err_t ops_list_args(req_t *q, const char **prefix, uint32_t *pl, const char **next,
                        uint32_t *nl, uint64_t *max);

/* 1 if the caller may do action on the resource; else replies access_denied
 * (naming principal, action and resource) and returns 0. */
int ops_authorize(req_t *q, const char *action, authz_kind_t kind, const char *name, size_t nl);
/* GBX_E_OK, or GBX_E_BAD_POLICY (message in q->eb) when authentication is
 * on and text (a Policy attribute being set) is not a valid resource policy. */
gbx_err_t ops_check_policy(req_t *q, const char *text);
/* The same without replying or an audit line: list filtering. */
int ops_may_see(req_t *q, authz_kind_t kind, const char *name, size_t nl);

/* ---- handlers in ops_admin.c ---- */
void op_principal_put(req_t *q);
void op_principal_delete(req_t *q);
void op_principal_list(req_t *q);

/* ---- handlers in ops_topic.c ---- */
void op_topic_create(req_t *q);
void op_topic_delete(req_t *q);
void op_topic_list(req_t *q);
void op_topic_get_attrs(req_t *q);
void op_topic_set_attrs(req_t *q);
void op_subscribe(req_t *q);
void op_unsubscribe(req_t *q);
void op_sub_list(req_t *q);
void op_sub_get_attrs(req_t *q);
void op_sub_set_attrs(req_t *q);
void op_publish(req_t *q);
void op_publish_batch(req_t *q);

#endif
