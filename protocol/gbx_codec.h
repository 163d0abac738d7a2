/* gbx_codec.h - the pure wire codec of Gearbox (bytes in, objects or an error
 * out). No sockets, no libuv, no RocksDB: built into server and client alike.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes holding
 * exactly one msgpack map. msgpack-c trusts declared container sizes when it
 * allocates, so every payload goes through gbx_mp_validate() before it is
 * unpacked: declared counts are checked against the bytes that remain, nesting
 * against GBX_MAX_DEPTH, and trailing bytes are refused.
 */
#ifndef GBX_CODEC_H
#define GBX_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "gbx_error.h"
#include "gbx_limits.h"

/* ---- error detail ---------------------------------------------------- */

/* An error code with a message naming the culprit ("field 'q': bad_type"). */
typedef struct gbx_errbuf {
  gbx_err_t code;
  char msg[160];
} gbx_errbuf_t;

/* Sets eb (if not NULL) to code with a printf-style message; returns code. */
gbx_err_t gbx_errbuf_set(gbx_errbuf_t *eb, gbx_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- framing --------------------------------------------------------- */

/* Reads the payload length from a frame header. Returns 1 and sets *len when
 * avail >= GBX_FRAME_HDR, 0 when more bytes are needed. */
int gbx_frame_peek(const uint8_t *buf, size_t avail, uint32_t *len);
/* Writes the big-endian length into a 4-byte header. */
void gbx_frame_put_len(uint8_t *hdr, uint32_t len);

/* ---- validation and decoding ----------------------------------------- */

/* Checks that buf holds exactly one well-formed msgpack object: no reserved
 * byte (0xc1), every declared str/bin/ext length and array/map count fits in
 * the remaining bytes (an element needs at least one byte), nesting at most
 * max_depth, at most GBX_MAX_OBJECTS objects, no trailing bytes. Touches nothing outside buf; allocates nothing.
 * Returns GBX_E_OK or GBX_E_BAD_FRAME with a message in eb. */
gbx_err_t gbx_mp_validate(const uint8_t *buf, size_t len, unsigned max_depth, gbx_errbuf_t *eb);

/* A decoded document: msgpack objects living in zone. Objects point into the
 * caller's buffer for str/bin data, so that buffer must outlive the doc. */
typedef struct gbx_doc {
  msgpack_zone zone;
  msgpack_object root;
  int zone_ready;
} gbx_doc_t;

/* Validates then unpacks buf; the root must be a map whose keys are strings,
 * each key present once. On success the caller must gbx_doc_free(d); on
 * failure nothing needs freeing. Zone memory is bounded by a small multiple of
 * len because validation ran first. */
gbx_err_t gbx_doc_parse(gbx_doc_t *d, const uint8_t *buf, size_t len, gbx_errbuf_t *eb);
void gbx_doc_free(gbx_doc_t *d);

/* ---- field accessors on a map object --------------------------------- */
/* Each returns GBX_E_OK (value set), GBX_E_MISSING_FIELD when required and
 * absent (when optional and absent: GBX_E_OK with *present = 0 if present is
 * not NULL, value untouched), GBX_E_BAD_TYPE or GBX_E_OUT_OF_RANGE; eb gets a
 * message naming the field. Returned pointers point into the doc's buffer. */

/* Looks a string key up in a map object; NULL if absent or obj is not a map. */
const msgpack_object *gbx_map_get(const msgpack_object *map, const char *key);
/* 1 if every key of map is a string and no key repeats; else 0. */
int gbx_map_keys_unique(const msgpack_object *map);

gbx_err_t gbx_get_u64(const msgpack_object *map, const char *key, int required, uint64_t min,
                      uint64_t max, uint64_t *out, int *present, gbx_errbuf_t *eb);
gbx_err_t gbx_get_bool(const msgpack_object *map, const char *key, int required, int *out,
                       int *present, gbx_errbuf_t *eb);
/* msgpack str only; length checked against min_len..max_len. */
gbx_err_t gbx_get_str(const msgpack_object *map, const char *key, int required, uint32_t min_len,
                      uint32_t max_len, const char **ptr, uint32_t *len, int *present,
                      gbx_errbuf_t *eb);
/* msgpack bin or str; length checked against max_len. */
gbx_err_t gbx_get_bytes(const msgpack_object *map, const char *key, int required, uint32_t max_len,
                        const char **ptr, uint32_t *len, int *present, gbx_errbuf_t *eb);
/* An array of at most max items (and at least min). */
gbx_err_t gbx_get_array(const msgpack_object *map, const char *key, int required, uint32_t min,
                        uint32_t max, const msgpack_object_array **out, int *present,
                        gbx_errbuf_t *eb);
/* A map of at most max pairs with unique string keys. */
gbx_err_t gbx_get_map(const msgpack_object *map, const char *key, int required, uint32_t max,
                      const msgpack_object **out, int *present, gbx_errbuf_t *eb);

/* ---- names and message attributes ------------------------------------ */

/* 1 if s[0..len) is a valid queue/topic name (1-80 of A-Za-z0-9_-). */
int gbx_name_valid(const char *s, size_t len);
/* 1 if s is a valid batch entry id (1-80 of A-Za-z0-9_-). */
int gbx_entry_id_valid(const char *s, size_t len);

/* One typed message attribute, SQS style. type is "String", "Number" or
 * "Binary", optionally followed by "." and a custom suffix, kept verbatim.
 * For String/Number the value is text; for Binary raw bytes. */
typedef struct gbx_attr {
  const char *name;
  uint32_t name_len;
  const char *type;
  uint32_t type_len;
  const char *value;
  uint32_t value_len;
} gbx_attr_t;

/* Wire shape: a map name -> {"t": str type, "v": str|bin value}.
 * Decodes and validates (SQS rules: at most GBX_MAX_ATTRS, names of
 * A-Za-z0-9_-. up to 256 characters, not starting with "AWS." or "Amazon."
 * (any case), no "..", not starting or ending with "."; type as above; a
 * Number value is a decimal number; values non-empty). Pointers refer into
 * obj's buffer. Returns GBX_E_OK or GBX_E_BAD_ATTRIBUTE with a message. */
gbx_err_t gbx_attrs_decode(const msgpack_object *obj, gbx_attr_t *out, uint32_t *n,
                           gbx_errbuf_t *eb);
/* SQS's bounds on Number values (checked on what is sent and published,
 * not on what is stored: a record written before the check still reads). */
#define GBX_NUMBER_MAX_DIGITS 38u
#define GBX_NUMBER_MIN_EXP    (-128)
#define GBX_NUMBER_MAX_EXP    126
/* GBX_E_BAD_ATTRIBUTE when a decoded Number attribute has more than
 * GBX_NUMBER_MAX_DIGITS significant digits or a non-zero magnitude outside
 * [10^GBX_NUMBER_MIN_EXP, 10^GBX_NUMBER_MAX_EXP). */
gbx_err_t gbx_attrs_check_numbers(const gbx_attr_t *a, uint32_t n, gbx_errbuf_t *eb);
/* Packs n attributes in the wire shape above. */
void gbx_attrs_pack(msgpack_packer *pk, const gbx_attr_t *a, uint32_t n);
/* The size SQS counts for attributes: sum of name, type and value lengths. */
uint64_t gbx_attrs_size(const gbx_attr_t *a, uint32_t n);

/* ---- encoding ---------------------------------------------------------- */

/* A growable byte buffer usable as a msgpack_packer target. */
typedef struct gbx_buf {
  uint8_t *data;
  size_t len;
  size_t cap;
} gbx_buf_t;

void gbx_buf_init(gbx_buf_t *b);
void gbx_buf_free(gbx_buf_t *b);
/* Appends; returns 0 or -1 on allocation failure (buffer unchanged). */
int gbx_buf_append(gbx_buf_t *b, const void *p, size_t n);
/* msgpack_packer_write callback for a gbx_buf_t. */
int gbx_buf_write_cb(void *data, const char *buf, size_t len);

/* Starts a frame in b: appends a 4-byte placeholder and returns its offset. */
size_t gbx_frame_begin(gbx_buf_t *b);
/* Finishes the frame begun at off by writing its length. */
void gbx_frame_end(gbx_buf_t *b, size_t off);

/* Packing helpers for "key": value pairs of a map being packed. */
void gbx_pack_cstr(msgpack_packer *pk, const char *s);
void gbx_pack_strn(msgpack_packer *pk, const char *s, size_t n);
void gbx_pack_binn(msgpack_packer *pk, const void *p, size_t n);
void gbx_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v);
void gbx_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t v);
void gbx_pack_kv_bool(msgpack_packer *pk, const char *key, int v);
void gbx_pack_kv_str(msgpack_packer *pk, const char *key, const char *s, size_t n);
void gbx_pack_kv_cstr(msgpack_packer *pk, const char *key, const char *s);
void gbx_pack_kv_bin(msgpack_packer *pk, const char *key, const void *p, size_t n);

#endif
