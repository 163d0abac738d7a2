/* reply.h - libgearbox internals: a reply frame checked by the shared codec
 * and decoded into the public result types. Nothing here does I/O, so every
 * decoder can be fed hand-built frames.
 *
 * Every decoder treats the reply as outside input: a missing field, a wrong
 * type, an over-long string or an over-large array is GBX_E_PROTOCOL with a
 * message naming the field, never a crash or an unbounded allocation.
 */
#ifndef GBX_REPLY_H
#define GBX_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "gbx_codec.h"
#include "gearbox.h"

/* A reply owns a copy of its payload, which its decoded document points into. */
struct gbx_reply {
  gbx_reply_t *next; /* ready list link */
  uint64_t id;
  int op;          /* operation of the request, set when matched to it */
  int code;        /* the reply's err field */
  const char *msg; /* its msg field (into data), or NULL */
  uint32_t msg_len;
  gbx_doc_t doc;
  size_t len;
  uint8_t data[];
};

/* Copies payload[0..len) and decodes it as a reply: a map with `id` and
 * `err` uints and, when err != 0, an optional `msg` str. Returns GBX_E_OK
 * with *out owned by the caller (gbx_reply_free), GBX_E_PROTOCOL with a
 * message in eb, or GBX_E_NOMEM. */
int reply_parse(const uint8_t *payload, size_t len, gbx_reply_t **out, gbx_errbuf_t *eb);

/* The decoded map of a reply. */
const msgpack_object *reply_root(const gbx_reply_t *r);

/* Fills err from a reply carrying an error; returns its code. */
int reply_error(const gbx_reply_t *r, gbx_error_t *err);

/* Each decoder fills its output from a successful reply of the matching op,
 * returning GBX_E_OK, GBX_E_PROTOCOL (message in eb) or GBX_E_NOMEM. Outputs
 * that hold memory are owned by the caller only on GBX_E_OK. */
int reply_decode_mid(const gbx_reply_t *r, char mid[GBX_MID_BUFSZ], gbx_errbuf_t *eb);
int reply_decode_messages(const gbx_reply_t *r, gbx_message_t **msgs, size_t *n, gbx_errbuf_t *eb);
int reply_decode_batch(const gbx_reply_t *r, int with_mid, gbx_batch_result_t *res, size_t n,
                       gbx_errbuf_t *eb);
/* with_next: the reply may carry a `next` paging token (queue_list). */
int reply_decode_queue_list(const gbx_reply_t *r, int with_next, gbx_queue_list_t *out,
                            gbx_errbuf_t *eb);
/* As reply_decode_queue_list for an array of names under another key
 * (topic_list's "topics"). */
int reply_decode_names(const gbx_reply_t *r, const char *key, int with_next, gbx_queue_list_t *out,
                       gbx_errbuf_t *eb);
int reply_decode_queue_info(const gbx_reply_t *r, gbx_queue_info_t *out, gbx_errbuf_t *eb);
int reply_decode_stats(const gbx_reply_t *r, gbx_stats_t *out, gbx_errbuf_t *eb);
int reply_decode_redrive_status(const gbx_reply_t *r, gbx_redrive_status_t *out, gbx_errbuf_t *eb);
/* Topic results (topics.c), with the same contract. */
int reply_decode_topic_info(const gbx_reply_t *r, gbx_topic_info_t *out, gbx_errbuf_t *eb);
int reply_decode_sub_list(const gbx_reply_t *r, gbx_sub_list_t *out, gbx_errbuf_t *eb);
int reply_decode_sub_info(const gbx_reply_t *r, gbx_sub_info_t *out, gbx_errbuf_t *eb);
/* One-block result allocation (decode.c): a result's struct arrays and its
 * strings in one malloc'd block that the public free function releases.
 * init allocates `structs` bytes of arrays (each take()n 8-aligned, so add 8
 * per array) plus `strings` bytes; a reply's payload length always suffices
 * for the strings copied out of it, since each string's NUL replaces at
 * least one msgpack header byte. take/str return NULL when the block is
 * exhausted (a decoder bug, reported as GBX_E_PROTOCOL, never an overrun). */
typedef struct reply_block {
  char *base;
  size_t cap, used;
} reply_block_t;
size_t reply_align8(size_t n);
/* Returns 0, or -1 out of memory. */
int reply_block_init(reply_block_t *b, size_t structs, size_t strings);
void *reply_block_take(reply_block_t *b, size_t n, int align);
/* Copies p[0..n) as a NUL-terminated string into the block. */
char *reply_block_str(reply_block_t *b, const char *p, size_t n);

/* A str field copied into a new NUL-terminated string (*out, gbx_free). */
int reply_decode_strdup(const gbx_reply_t *r, const char *key, uint32_t max_len, char **out,
                        gbx_errbuf_t *eb);
/* A required uint field (or bool, for bool_field). */
int reply_decode_u64(const gbx_reply_t *r, const char *key, uint64_t *out, gbx_errbuf_t *eb);
int reply_decode_bool(const gbx_reply_t *r, const char *key, int *out, gbx_errbuf_t *eb);

#endif
