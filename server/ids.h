/* ids.h - message ids and receipt handles.
 *
 * Message ids: AES-128 of a 64-bit counter under a secret key persisted in
 * the store, printed as a UUID-shaped string. A keyed permutation of a unique
 * counter is unique and unguessable, and costs no system call per message.
 *
 * Receipt handles: base64url of {version, queue id, sequence, receive count}
 * plus a 96-bit tag (AES CBC-MAC over the fixed-length fields under a second
 * key). Bound to one queue and one receive; forgeries fail the tag. */
#ifndef GBX_IDS_H
#define GBX_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "gbx_limits.h"

#define IDS_KEY_BYTES 32u          /* 16 id key + 16 receipt key */
#define IDS_RECEIPT_LEN 39u        /* base64url of 29 bytes, unpadded */

typedef struct ids ids_t;

typedef struct receipt {
  uint32_t qid;
  uint64_t seq;
  uint32_t rc;
} receipt_t;

/* Creates the id generator from IDS_KEY_BYTES of key material. NULL on OOM. */
ids_t *ids_new(const uint8_t key[IDS_KEY_BYTES]);
void ids_free(ids_t *ids);
/* Fills key with fresh random bytes (getrandom). Returns 0 or -1. */
int ids_random_key(uint8_t key[IDS_KEY_BYTES]);
/* Writes the 36-character id of counter n (no NUL) into out. */
void ids_msgid(ids_t *ids, uint64_t n, char out[GBX_MSGID_LEN]);
/* Inverts ids_msgid: returns 0 and the counter of a 36-character id made by
 * this key, or -1 for anything else (malformed or never issued). */
int ids_msgid_parse(ids_t *ids, const char *s, size_t len, uint64_t *n);
/* Writes a receipt handle (IDS_RECEIPT_LEN characters, no NUL) into out. */
void ids_receipt_make(ids_t *ids, const receipt_t *r, char out[IDS_RECEIPT_LEN]);
/* Decodes and authenticates a handle. Returns 0 and fills r, or -1 if it is
 * malformed or forged. Constant-time tag comparison. */
int ids_receipt_parse(ids_t *ids, const char *s, size_t len, receipt_t *r);

#endif
