/* gbx_codec.c - the pure wire codec: framing, a msgpack validator that runs
 * before msgpack-c ever sees outside bytes, document decoding, typed field
 * accessors, message attributes and the packing helpers.
 *
 * Nothing here does I/O. Every function that reads outside input returns an
 * error code with a message in a gbx_errbuf_t; none asserts on input.
 */
#include "gbx_codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The validator keeps one element counter per open container on the C stack.
 * msgpack-c's own unpacker stack holds MSGPACK_EMBED_STACK_SIZE (32) levels,
 * so a max_depth above 32 could validate input that msgpack-c then refuses;
 * larger requests are clamped to this. The protocol itself uses 8. */
#define MP_DEPTH_CAP 32u

/* Maps with at most this many keys are checked for repeats pairwise (at most
 * 2,016 comparisons, no allocation); larger ones are sorted, so a request map
 * of a million distinct keys costs n log n, not n squared. */
#define KEYS_PAIRWISE_MAX 64u

/* Zone chunk sizes for gbx_doc_parse: a decoded object costs 24 bytes (a map
 * pair 48), several times its encoded size, so the first chunk is a few times
 * the payload, at least enough for a small request and at most 64 KiB so a
 * large body (referenced, never copied) does not inflate it. */
#define ZONE_CHUNK_MIN 1024u
#define ZONE_CHUNK_MAX (64u * 1024u)

/* Culprit names quoted in error messages are cut to this many characters so
 * the message (160 bytes) keeps its explanation. */
#define QUOTE_MAX 40u

/* First buffer allocation; later growth doubles. */
#define BUF_INITIAL_CAP 256u

/* ---- error detail ------------------------------------------------------ */

gbx_err_t gbx_errbuf_set(gbx_errbuf_t *eb, gbx_err_t code, const char *fmt, ...) {
  if (eb) {
    va_list ap;
    va_start(ap, fmt);
    eb->code = code;
    vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* Copies at most QUOTE_MAX bytes of outside text into out, printable ASCII
 * only (others become '?'), adding "..." when cut. out holds QUOTE_MAX + 4. */
static const char *quote(char *out, const char *s, size_t len) {
  size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (len > QUOTE_MAX) {
    memcpy(out + n, "...", 3);
    n += 3;
  }
  out[n] = '\0';
  return out;
}

static const char *type_name(msgpack_object_type t) {
  switch (t) {
  case MSGPACK_OBJECT_NIL:
    return "nil";
  case MSGPACK_OBJECT_BOOLEAN:
    return "bool";
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    return "uint";
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    return "negative int";
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    return "float";
  case MSGPACK_OBJECT_STR:
    return "str";
  case MSGPACK_OBJECT_BIN:
    return "bin";
  case MSGPACK_OBJECT_ARRAY:
    return "array";
  case MSGPACK_OBJECT_MAP:
    return "map";
  case MSGPACK_OBJECT_EXT:
    return "ext";
  }
  return "unknown";
}

/* The type name with its article, for "value is a str, not a map". */
static const char *a_type(msgpack_object_type t) {
  switch (t) {
  case MSGPACK_OBJECT_NIL:
    return "nil";
  case MSGPACK_OBJECT_BOOLEAN:
    return "a bool";
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    return "a uint";
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    return "a negative int";
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    return "a float";
  case MSGPACK_OBJECT_STR:
    return "a str";
  case MSGPACK_OBJECT_BIN:
    return "a bin";
  case MSGPACK_OBJECT_ARRAY:
    return "an array";
  case MSGPACK_OBJECT_MAP:
    return "a map";
  case MSGPACK_OBJECT_EXT:
    return "an ext";
  }
  return "an unknown type";
}

/* ---- framing ------------------------------------------------------------ */

int gbx_frame_peek(const uint8_t *buf, size_t avail, uint32_t *len) {
  if (avail < GBX_FRAME_HDR)
    return 0;
  *len = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) |
         (uint32_t)buf[3];
  return 1;
}

void gbx_frame_put_len(uint8_t *hdr, uint32_t len) {
  hdr[0] = (uint8_t)(len >> 24);
  hdr[1] = (uint8_t)(len >> 16);
  hdr[2] = (uint8_t)(len >> 8);
  hdr[3] = (uint8_t)len;
}

/* ---- validation --------------------------------------------------------- */

/* Reads an n-byte big-endian unsigned integer (n <= 8). */
static uint64_t be_read(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* What a format byte announces: a scalar of `fixed` payload bytes, or a
 * str/bin/ext whose byte length, or an array/map whose count, is either held
 * in the byte itself (fix formats) or in the `lenw` bytes that follow it. An
 * ext carries one type byte (`extra`) beyond its declared length. */
enum mp_kind { MP_SCALAR, MP_BYTES, MP_ARRAY, MP_MAP, MP_RESERVED };

typedef struct mp_head {
  uint8_t kind;  /* enum mp_kind */
  uint8_t lenw;  /* bytes of the big-endian length/count field after the byte */
  uint8_t fixed; /* MP_SCALAR: payload bytes after the format byte */
  uint8_t extra; /* MP_BYTES: bytes beyond the declared length (ext type) */
  const char *what;
} mp_head_t;

/* Formats 0xc0-0xdf, straight from the msgpack spec's format table. */
static const mp_head_t mp_formats[32] = {
    {MP_SCALAR, 0, 0, 0, "nil"},       {MP_RESERVED, 0, 0, 0, "reserved"},
    {MP_SCALAR, 0, 0, 0, "false"},     {MP_SCALAR, 0, 0, 0, "true"},
    {MP_BYTES, 1, 0, 0, "bin"},        {MP_BYTES, 2, 0, 0, "bin"},
    {MP_BYTES, 4, 0, 0, "bin"},        {MP_BYTES, 1, 0, 1, "ext"},
    {MP_BYTES, 2, 0, 1, "ext"},        {MP_BYTES, 4, 0, 1, "ext"},
    {MP_SCALAR, 0, 4, 0, "float32"},   {MP_SCALAR, 0, 8, 0, "float64"},
    {MP_SCALAR, 0, 1, 0, "uint8"},     {MP_SCALAR, 0, 2, 0, "uint16"},
    {MP_SCALAR, 0, 4, 0, "uint32"},    {MP_SCALAR, 0, 8, 0, "uint64"},
    {MP_SCALAR, 0, 1, 0, "int8"},      {MP_SCALAR, 0, 2, 0, "int16"},
    {MP_SCALAR, 0, 4, 0, "int32"},     {MP_SCALAR, 0, 8, 0, "int64"},
    {MP_SCALAR, 0, 2, 0, "fixext1"},   {MP_SCALAR, 0, 3, 0, "fixext2"},
    {MP_SCALAR, 0, 5, 0, "fixext4"},   {MP_SCALAR, 0, 9, 0, "fixext8"},
    {MP_SCALAR, 0, 17, 0, "fixext16"}, {MP_BYTES, 1, 0, 0, "str"},
    {MP_BYTES, 2, 0, 0, "str"},        {MP_BYTES, 4, 0, 0, "str"},
    {MP_ARRAY, 2, 0, 0, "array"},      {MP_ARRAY, 4, 0, 0, "array"},
    {MP_MAP, 2, 0, 0, "map"},          {MP_MAP, 4, 0, 0, "map"},
};

/* Classifies format byte b into *h; fix formats set *inline_n to the length
 * or count the byte holds. */
static void mp_classify(uint8_t b, mp_head_t *h, uint64_t *inline_n) {
  static const mp_head_t fixint = {MP_SCALAR, 0, 0, 0, "fixint"};
  static const mp_head_t fixmap = {MP_MAP, 0, 0, 0, "map"};
  static const mp_head_t fixarray = {MP_ARRAY, 0, 0, 0, "array"};
  static const mp_head_t fixstr = {MP_BYTES, 0, 0, 0, "str"};
  *inline_n = 0;
  if (b <= 0x7f || b >= 0xe0) {
    *h = fixint;
  } else if (b <= 0x8f) {
    *h = fixmap;
    *inline_n = b & 0x0f;
  } else if (b <= 0x9f) {
    *h = fixarray;
    *inline_n = b & 0x0f;
  } else if (b <= 0xbf) {
    *h = fixstr;
    *inline_n = b & 0x1f;
  } else {
    *h = mp_formats[b - 0xc0];
  }
}

/* Iterative walk: left[d] counts the elements still expected by the d-th open
 * container (a map of n pairs expects 2n). An object that completes (a scalar,
 * a str, or an empty container) decrements the innermost counter; a counter
 * reaching zero closes its container, which in turn completes as an element of
 * its parent. The root completing ends the walk. Depth counts containers: the
 * root map is at depth 1, so max_depth 8 admits 8 nested containers. */
gbx_err_t gbx_mp_validate(const uint8_t *buf, size_t len, unsigned max_depth, gbx_errbuf_t *eb) {
  uint64_t left[MP_DEPTH_CAP];
  unsigned depth = 0;
  size_t pos = 0, objects = 0;

  if (max_depth > MP_DEPTH_CAP)
    max_depth = MP_DEPTH_CAP;
  if (len == 0)
    return gbx_errbuf_set(eb, GBX_E_BAD_FRAME, "empty payload");

  for (;;) {
    mp_head_t h;
    size_t start = pos;
    if (pos >= len)
      return gbx_errbuf_set(eb, GBX_E_BAD_FRAME,
                            "offset %zu: truncated, %llu more element(s) expected", pos,
                            (unsigned long long)(depth ? left[depth - 1] : 1));
    if (++objects > GBX_MAX_OBJECTS)
      return gbx_errbuf_set(eb, GBX_E_BAD_FRAME, "offset %zu: more than %u msgpack objects", start,
                            GBX_MAX_OBJECTS);
    uint8_t b = buf[pos++];
    uint64_t n;
    mp_classify(b, &h, &n);
    if (h.kind == MP_RESERVED)
      return gbx_errbuf_set(eb, GBX_E_BAD_FRAME, "offset %zu: reserved byte 0x%02x", start, b);
    size_t rem = len - pos;
    if (h.lenw) {
      if (rem < h.lenw)
        return gbx_errbuf_set(eb, GBX_E_BAD_FRAME,
                              "offset %zu: truncated %s header (0x%02x needs %u bytes, %zu remain)",
                              start, h.what, b, (unsigned)h.lenw, rem);
      n = be_read(buf + pos, h.lenw);
      pos += h.lenw;
      rem -= h.lenw;
    }

    if (h.kind == MP_SCALAR) {
      if (rem < h.fixed)
        return gbx_errbuf_set(eb, GBX_E_BAD_FRAME,
                              "offset %zu: truncated %s (needs %u bytes, %zu remain)", start,
                              h.what, (unsigned)h.fixed, rem);
      pos += h.fixed;
    } else if (h.kind == MP_BYTES) {
      uint64_t need = n + h.extra;
      if (need > rem)
        return gbx_errbuf_set(eb, GBX_E_BAD_FRAME,
                              "offset %zu: %s of %llu bytes declared, %zu remain", start, h.what,
                              (unsigned long long)n, rem);
      pos += (size_t)need;
    } else {
      /* Every element takes at least one byte, so a count larger than what
       * remains is a lie; refusing it here keeps msgpack-c from allocating
       * for elements that cannot exist. */
      uint64_t elems = h.kind == MP_MAP ? 2 * n : n;
      if (elems > rem)
        return gbx_errbuf_set(eb, GBX_E_BAD_FRAME,
                              "offset %zu: %s of %llu %s declared, %zu bytes remain", start, h.what,
                              (unsigned long long)n, h.kind == MP_MAP ? "pairs" : "elements", rem);
      if (depth + 1 > max_depth)
        return gbx_errbuf_set(eb, GBX_E_BAD_FRAME, "offset %zu: nesting deeper than %u", start,
                              max_depth);
      if (elems > 0) {
        left[depth++] = elems;
        continue; /* the container completes when its elements do */
      }
    }

    /* One object completed: close every container it finishes. */
    while (depth > 0) {
      if (--left[depth - 1] > 0)
        break;
      depth--;
    }
    if (depth == 0)
      break;
  }

  if (pos != len)
    return gbx_errbuf_set(eb, GBX_E_BAD_FRAME, "offset %zu: %zu trailing byte(s) after the object",
                          pos, len - pos);
  return GBX_E_OK;
}

/* ---- key uniqueness ------------------------------------------------------ */

static int key_cmp(const void *a, const void *b) {
  const msgpack_object *x = *(const msgpack_object *const *)a;
  const msgpack_object *y = *(const msgpack_object *const *)b;
  if (x->via.str.size != y->via.str.size)
    return x->via.str.size < y->via.str.size ? -1 : 1;
  if (x->via.str.size == 0)
    return 0;
  return memcmp(x->via.str.ptr, y->via.str.ptr, x->via.str.size);
}

static int key_eq(const msgpack_object *x, const msgpack_object *y) {
  return key_cmp(&x, &y) == 0;
}

enum key_check { KEYS_OK, KEYS_NOT_STR, KEYS_DUP, KEYS_NOMEM };

/* Checks that every key of a map object is a str and none repeats. On
 * KEYS_NOT_STR or KEYS_DUP sets *culprit to the offending key. */
static enum key_check map_check_keys(const msgpack_object *map, const msgpack_object **culprit) {
  uint32_t n = map->via.map.size;
  const msgpack_object_kv *kv = map->via.map.ptr;
  const msgpack_object **keys = NULL;
  enum key_check rc = KEYS_OK;

  for (uint32_t i = 0; i < n; i++) {
    if (kv[i].key.type != MSGPACK_OBJECT_STR) {
      *culprit = &kv[i].key;
      return KEYS_NOT_STR;
    }
  }
  if (n <= KEYS_PAIRWISE_MAX) {
    for (uint32_t i = 1; i < n; i++)
      for (uint32_t j = 0; j < i; j++)
        if (key_eq(&kv[i].key, &kv[j].key)) {
          *culprit = &kv[i].key;
          return KEYS_DUP;
        }
    return KEYS_OK;
  }
  keys = malloc((size_t)n * sizeof *keys);
  if (!keys)
    return KEYS_NOMEM;
  for (uint32_t i = 0; i < n; i++)
    keys[i] = &kv[i].key;
  qsort(keys, n, sizeof *keys, key_cmp);
  for (uint32_t i = 1; i < n; i++)
    if (key_cmp(&keys[i - 1], &keys[i]) == 0) {
      *culprit = keys[i];
      rc = KEYS_DUP;
      break;
    }
  free(keys);
  return rc;
}

/* Fails closed: a map too large to check for lack of memory counts as not
 * unique, so the caller refuses it. */
int gbx_map_keys_unique(const msgpack_object *map) {
  const msgpack_object *culprit = NULL;
  if (!map || map->type != MSGPACK_OBJECT_MAP)
    return 0;
  return map_check_keys(map, &culprit) == KEYS_OK;
}

/* ---- documents ------------------------------------------------------------ */

/* msgpack-c's C unpacker (msgpack_unpack) never copies: str, bin and ext
 * objects point into the caller's buffer, and only the object tree (24 bytes
 * per object, 48 per map pair) lives in the zone. Because validation proved
 * every declared element takes at least one byte of buf, the tree is at most
 * 24 bytes per payload byte, plus zone chunk rounding (at most doubling). */
gbx_err_t gbx_doc_parse(gbx_doc_t *d, const uint8_t *buf, size_t len, gbx_errbuf_t *eb) {
  gbx_err_t rc;
  size_t off = 0;
  size_t chunk;
  const msgpack_object *culprit = NULL;
  char q[QUOTE_MAX + 4];

  d->zone_ready = 0;
  rc = gbx_mp_validate(buf, len, GBX_MAX_DEPTH, eb);
  if (rc != GBX_E_OK)
    return rc;

  chunk = len * 4;
  if (chunk < ZONE_CHUNK_MIN)
    chunk = ZONE_CHUNK_MIN;
  if (chunk > ZONE_CHUNK_MAX)
    chunk = ZONE_CHUNK_MAX;
  if (!msgpack_zone_init(&d->zone, chunk))
    return gbx_errbuf_set(eb, GBX_E_INTERNAL, "out of memory decoding %zu bytes", len);
  d->zone_ready = 1;

  switch (msgpack_unpack((const char *)buf, len, &off, &d->zone, &d->root)) {
  case MSGPACK_UNPACK_SUCCESS:
    break;
  case MSGPACK_UNPACK_NOMEM_ERROR:
    rc = gbx_errbuf_set(eb, GBX_E_INTERNAL, "out of memory decoding %zu bytes", len);
    goto fail;
  default:
    /* Validation accepts only what msgpack-c parses; this is a safety net. */
    rc = gbx_errbuf_set(eb, GBX_E_BAD_FRAME, "msgpack decoder refused the payload");
    goto fail;
  }
  if (off != len) {
    rc = gbx_errbuf_set(eb, GBX_E_BAD_FRAME, "offset %zu: trailing bytes", off);
    goto fail;
  }
  if (d->root.type != MSGPACK_OBJECT_MAP) {
    rc = gbx_errbuf_set(eb, GBX_E_BAD_FRAME, "payload is %s, not a map", a_type(d->root.type));
    goto fail;
  }
  switch (map_check_keys(&d->root, &culprit)) {
  case KEYS_OK:
    break;
  case KEYS_NOT_STR:
    rc = gbx_errbuf_set(eb, GBX_E_BAD_FRAME, "a key of the request map is %s, not a str",
                        a_type(culprit->type));
    goto fail;
  case KEYS_DUP:
    rc = gbx_errbuf_set(eb, GBX_E_DUPLICATE_FIELD, "field '%s' appears more than once",
                        quote(q, culprit->via.str.ptr, culprit->via.str.size));
    goto fail;
  case KEYS_NOMEM:
    rc = gbx_errbuf_set(eb, GBX_E_INTERNAL, "out of memory checking keys");
    goto fail;
  }
  return GBX_E_OK;

fail:
  gbx_doc_free(d);
  return rc;
}

void gbx_doc_free(gbx_doc_t *d) {
  if (d && d->zone_ready) {
    msgpack_zone_destroy(&d->zone);
    d->zone_ready = 0;
  }
}

/* ---- field accessors ------------------------------------------------------ */

const msgpack_object *gbx_map_get(const msgpack_object *map, const char *key) {
  if (!map || map->type != MSGPACK_OBJECT_MAP)
    return NULL;
  size_t klen = strlen(key);
  const msgpack_object_kv *kv = map->via.map.ptr;
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object *k = &kv[i].key;
    if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
        (klen == 0 || memcmp(k->via.str.ptr, key, klen) == 0))
      return &kv[i].val;
  }
  return NULL;
}

/* Common head of every accessor: finds key in map. Returns GBX_E_OK with *v
 * set when present; GBX_E_OK with *v NULL (and *present 0) when optional and
 * absent; otherwise the error. */
static gbx_err_t lookup(const msgpack_object *map, const char *key, int required, int *present,
                        const msgpack_object **v, gbx_errbuf_t *eb) {
  *v = NULL;
  if (present)
    *present = 0;
  if (!map || map->type != MSGPACK_OBJECT_MAP)
    return gbx_errbuf_set(eb, GBX_E_BAD_TYPE, "field '%s': the enclosing object is %s, not a map",
                          key, map ? a_type(map->type) : "nothing");
  *v = gbx_map_get(map, key);
  if (!*v) {
    if (required)
      return gbx_errbuf_set(eb, GBX_E_MISSING_FIELD, "field '%s' is missing", key);
    return GBX_E_OK;
  }
  if (present)
    *present = 1;
  return GBX_E_OK;
}

static gbx_err_t bad_type(const char *key, const char *want, const msgpack_object *v,
                          gbx_errbuf_t *eb) {
  return gbx_errbuf_set(eb, GBX_E_BAD_TYPE, "field '%s': expected %s, got %s", key, want,
                        type_name(v->type));
}

gbx_err_t gbx_get_u64(const msgpack_object *map, const char *key, int required, uint64_t min,
                      uint64_t max, uint64_t *out, int *present, gbx_errbuf_t *eb) {
  const msgpack_object *v;
  gbx_err_t rc = lookup(map, key, required, present, &v, eb);
  if (rc != GBX_E_OK || !v)
    return rc;
  if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
    return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE, "field '%s': %lld is out of range %llu-%llu", key,
                          (long long)v->via.i64, (unsigned long long)min, (unsigned long long)max);
  if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return bad_type(key, "uint", v, eb);
  if (v->via.u64 < min || v->via.u64 > max)
    return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE, "field '%s': %llu is out of range %llu-%llu", key,
                          (unsigned long long)v->via.u64, (unsigned long long)min,
                          (unsigned long long)max);
  *out = v->via.u64;
  return GBX_E_OK;
}

gbx_err_t gbx_get_bool(const msgpack_object *map, const char *key, int required, int *out,
                       int *present, gbx_errbuf_t *eb) {
  const msgpack_object *v;
  gbx_err_t rc = lookup(map, key, required, present, &v, eb);
  if (rc != GBX_E_OK || !v)
    return rc;
  if (v->type != MSGPACK_OBJECT_BOOLEAN)
    return bad_type(key, "bool", v, eb);
  *out = v->via.boolean ? 1 : 0;
  return GBX_E_OK;
}

gbx_err_t gbx_get_str(const msgpack_object *map, const char *key, int required, uint32_t min_len,
                      uint32_t max_len, const char **ptr, uint32_t *len, int *present,
                      gbx_errbuf_t *eb) {
  const msgpack_object *v;
  gbx_err_t rc = lookup(map, key, required, present, &v, eb);
  if (rc != GBX_E_OK || !v)
    return rc;
  if (v->type != MSGPACK_OBJECT_STR)
    return bad_type(key, "str", v, eb);
  if (v->via.str.size < min_len || v->via.str.size > max_len)
    return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE, "field '%s': length %u is out of range %u-%u",
                          key, v->via.str.size, min_len, max_len);
  *ptr = v->via.str.ptr;
  *len = v->via.str.size;
  return GBX_E_OK;
}

gbx_err_t gbx_get_bytes(const msgpack_object *map, const char *key, int required, uint32_t max_len,
                        const char **ptr, uint32_t *len, int *present, gbx_errbuf_t *eb) {
  const msgpack_object *v;
  gbx_err_t rc = lookup(map, key, required, present, &v, eb);
  if (rc != GBX_E_OK || !v)
    return rc;
  uint32_t n;
  const char *p;
  if (v->type == MSGPACK_OBJECT_BIN) {
    n = v->via.bin.size;
    p = v->via.bin.ptr;
  } else if (v->type == MSGPACK_OBJECT_STR) {
    n = v->via.str.size;
    p = v->via.str.ptr;
  } else {
    return bad_type(key, "bin or str", v, eb);
  }
  if (n > max_len)
    return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE,
                          "field '%s': %u bytes is more than the limit of %u", key, n, max_len);
  *ptr = p;
  *len = n;
  return GBX_E_OK;
}

gbx_err_t gbx_get_array(const msgpack_object *map, const char *key, int required, uint32_t min,
                        uint32_t max, const msgpack_object_array **out, int *present,
                        gbx_errbuf_t *eb) {
  const msgpack_object *v;
  gbx_err_t rc = lookup(map, key, required, present, &v, eb);
  if (rc != GBX_E_OK || !v)
    return rc;
  if (v->type != MSGPACK_OBJECT_ARRAY)
    return bad_type(key, "array", v, eb);
  if (v->via.array.size < min || v->via.array.size > max)
    return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE, "field '%s': %u items is out of range %u-%u", key,
                          v->via.array.size, min, max);
  *out = &v->via.array;
  return GBX_E_OK;
}

/* Beyond the header contract: a non-str key is GBX_E_BAD_TYPE, a repeated
 * key GBX_E_DUPLICATE_FIELD, and no memory to check keys GBX_E_INTERNAL. */
gbx_err_t gbx_get_map(const msgpack_object *map, const char *key, int required, uint32_t max,
                      const msgpack_object **out, int *present, gbx_errbuf_t *eb) {
  const msgpack_object *v, *culprit = NULL;
  char q[QUOTE_MAX + 4];
  gbx_err_t rc = lookup(map, key, required, present, &v, eb);
  if (rc != GBX_E_OK || !v)
    return rc;
  if (v->type != MSGPACK_OBJECT_MAP)
    return bad_type(key, "map", v, eb);
  if (v->via.map.size > max)
    return gbx_errbuf_set(eb, GBX_E_OUT_OF_RANGE,
                          "field '%s': %u entries is more than the limit of %u", key,
                          v->via.map.size, max);
  switch (map_check_keys(v, &culprit)) {
  case KEYS_OK:
    break;
  case KEYS_NOT_STR:
    return gbx_errbuf_set(eb, GBX_E_BAD_TYPE, "field '%s': a key is %s, not a str", key,
                          a_type(culprit->type));
  case KEYS_DUP:
    return gbx_errbuf_set(eb, GBX_E_DUPLICATE_FIELD, "field '%s': key '%s' appears twice", key,
                          quote(q, culprit->via.str.ptr, culprit->via.str.size));
  case KEYS_NOMEM:
    return gbx_errbuf_set(eb, GBX_E_INTERNAL, "field '%s': out of memory checking keys", key);
  }
  *out = v;
  return GBX_E_OK;
}

/* ---- names and message attributes ------------------------------------------ */

static int is_name_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

static int name_pattern(const char *s, size_t len, size_t max) {
  if (!s || len == 0 || len > max)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!is_name_char((unsigned char)s[i]))
      return 0;
  return 1;
}

int gbx_name_valid(const char *s, size_t len) {
  return name_pattern(s, len, GBX_MAX_NAME);
}

int gbx_entry_id_valid(const char *s, size_t len) {
  return name_pattern(s, len, GBX_MAX_ENTRY_ID);
}

static int has_prefix_ci(const char *s, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  if (len < n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char a = (unsigned char)s[i], b = (unsigned char)prefix[i];
    if (a >= 'A' && a <= 'Z')
      a = (unsigned char)(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z')
      b = (unsigned char)(b - 'A' + 'a');
    if (a != b)
      return 0;
  }
  return 1;
}

/* Returns NULL when s is a valid attribute name, else why not. */
static const char *attr_name_problem(const char *s, size_t len) {
  if (len == 0)
    return "is empty";
  if (len > GBX_MAX_ATTR_NAME)
    return "is longer than 256 characters";
  for (size_t i = 0; i < len; i++)
    if (!is_name_char((unsigned char)s[i]) && s[i] != '.')
      return "has a character outside A-Za-z0-9_-.";
  if (s[0] == '.' || s[len - 1] == '.')
    return "starts or ends with '.'";
  for (size_t i = 1; i < len; i++)
    if (s[i] == '.' && s[i - 1] == '.')
      return "contains '..'";
  if (has_prefix_ci(s, len, "aws.") || has_prefix_ci(s, len, "amazon."))
    return "starts with a reserved prefix (AWS. or Amazon.)";
  return NULL;
}

enum attr_base { BASE_STRING, BASE_NUMBER, BASE_BINARY, BASE_BAD };

/* The base type of an attribute type string: the part before the first '.',
 * which must be exactly String, Number or Binary. A custom label after the
 * '.' must be non-empty and of A-Za-z0-9_-. characters. */
static enum attr_base attr_base_of(const char *t, size_t len) {
  static const struct {
    const char *name;
    enum attr_base base;
  } bases[] = {{"String", BASE_STRING}, {"Number", BASE_NUMBER}, {"Binary", BASE_BINARY}};
  size_t dot = 0;
  while (dot < len && t[dot] != '.')
    dot++;
  if (len > GBX_MAX_ATTR_TYPE)
    return BASE_BAD;
  if (dot < len) {
    if (dot + 1 == len)
      return BASE_BAD; /* "String." has an empty label */
    for (size_t i = dot + 1; i < len; i++)
      if (!is_name_char((unsigned char)t[i]) && t[i] != '.')
        return BASE_BAD;
  }
  for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
    if (strlen(bases[i].name) == dot && memcmp(bases[i].name, t, dot) == 0)
      return bases[i].base;
  return BASE_BAD;
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* Decimal number grammar: [+-]? digit+ ('.' digit+)? ([eE] [+-]? digit+)? */
static int number_valid(const char *s, size_t len) {
  size_t i = 0, d;
  if (i < len && (s[i] == '+' || s[i] == '-'))
    i++;
  for (d = i; i < len && is_digit(s[i]); i++) {
  }
  if (i == d)
    return 0;
  if (i < len && s[i] == '.') {
    i++;
    for (d = i; i < len && is_digit(s[i]); i++) {
    }
    if (i == d)
      return 0;
  }
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < len && (s[i] == '+' || s[i] == '-'))
      i++;
    for (d = i; i < len && is_digit(s[i]); i++) {
    }
    if (i == d)
      return 0;
  }
  return i == len;
}

/* SQS's bounds on a number_valid() string: at most 38 significant digits
 * (leading and trailing zeros are not), and a magnitude of zero or from
 * 10^-128 up to, not including, 10^126. */
static int number_in_range(const char *s, size_t len) {
  size_t i = 0, k = 0, int_digits = 0;
  int64_t first = -1, last = -1, exp = 0, esign = 1;
  int frac = 0;
  if (i < len && (s[i] == '+' || s[i] == '-'))
    i++;
  for (; i < len && s[i] != 'e' && s[i] != 'E'; i++) {
    if (s[i] == '.') {
      frac = 1;
      continue;
    }
    if (s[i] != '0') {
      if (first < 0)
        first = (int64_t)k;
      last = (int64_t)k;
    }
    k++;
    if (!frac)
      int_digits++;
  }
  if (i < len) {
    i++;
    if (i < len && (s[i] == '+' || s[i] == '-'))
      esign = s[i++] == '-' ? -1 : 1;
    for (; i < len; i++)
      if (exp < 100000000) /* far outside the range whatever the digits */
        exp = exp * 10 + (s[i] - '0');
  }
  if (first < 0)
    return 1; /* zero */
  if (last - first + 1 > GBX_NUMBER_MAX_DIGITS)
    return 0;
  /* the power of ten of the most significant digit */
  int64_t p = (int64_t)int_digits - 1 - first + esign * exp;
  return p >= GBX_NUMBER_MIN_EXP && p < GBX_NUMBER_MAX_EXP;
}

gbx_err_t gbx_attrs_check_numbers(const gbx_attr_t *a, uint32_t n, gbx_errbuf_t *eb) {
  char q[QUOTE_MAX + 4], qn[QUOTE_MAX + 4];
  for (uint32_t i = 0; i < n; i++) {
    if (attr_base_of(a[i].type, a[i].type_len) != BASE_NUMBER ||
        number_in_range(a[i].value, a[i].value_len))
      continue;
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE,
                          "attribute '%s': number '%s' is out of range (at most %u significant "
                          "digits, magnitude from 10^%d to below 10^%d)",
                          quote(qn, a[i].name, a[i].name_len), quote(q, a[i].value, a[i].value_len),
                          GBX_NUMBER_MAX_DIGITS, GBX_NUMBER_MIN_EXP, GBX_NUMBER_MAX_EXP);
  }
  return GBX_E_OK;
}

/* Decodes one attribute value map {"t": str, "v": str|bin} into a. The map
 * must hold exactly those two keys: the shape is fixed, and a stray key would
 * be silently lost when the attribute is stored and packed again. */
static gbx_err_t attr_value_decode(const msgpack_object *val, gbx_attr_t *a, const char *qn,
                                   gbx_errbuf_t *eb) {
  const msgpack_object *t, *v;
  enum attr_base base;
  char q[QUOTE_MAX + 4];

  if (val->type != MSGPACK_OBJECT_MAP)
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE, "attribute '%s': value is %s, not a map", qn,
                          a_type(val->type));
  t = gbx_map_get(val, "t");
  v = gbx_map_get(val, "v");
  if (val->via.map.size != 2 || !t || !v)
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE,
                          "attribute '%s': value must be a map of exactly \"t\" and \"v\"", qn);
  if (t->type != MSGPACK_OBJECT_STR)
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE, "attribute '%s': type is %s, not a str", qn,
                          a_type(t->type));
  base = attr_base_of(t->via.str.ptr, t->via.str.size);
  if (base == BASE_BAD)
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE,
                          "attribute '%s': type '%s' is not String, Number or Binary "
                          "(optionally .label, at most 256 characters)",
                          qn, quote(q, t->via.str.ptr, t->via.str.size));
  a->type = t->via.str.ptr;
  a->type_len = t->via.str.size;

  if (v->type == MSGPACK_OBJECT_STR) {
    a->value = v->via.str.ptr;
    a->value_len = v->via.str.size;
  } else if (v->type == MSGPACK_OBJECT_BIN && base == BASE_BINARY) {
    a->value = v->via.bin.ptr;
    a->value_len = v->via.bin.size;
  } else {
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE, "attribute '%s': value is %s, expected %s", qn,
                          a_type(v->type), base == BASE_BINARY ? "bin or str" : "str");
  }
  if (a->value_len == 0)
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE, "attribute '%s': value is empty", qn);
  if (base == BASE_NUMBER && !number_valid(a->value, a->value_len))
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE, "attribute '%s': '%s' is not a decimal number",
                          qn, quote(q, a->value, a->value_len));
  return GBX_E_OK;
}

/* out must have room for GBX_MAX_ATTRS entries; *n is set on success. */
gbx_err_t gbx_attrs_decode(const msgpack_object *obj, gbx_attr_t *out, uint32_t *n,
                           gbx_errbuf_t *eb) {
  const msgpack_object *culprit = NULL;
  char q[QUOTE_MAX + 4];
  const char *why;

  if (!obj || obj->type != MSGPACK_OBJECT_MAP)
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE, "attributes are %s, not a map",
                          obj ? a_type(obj->type) : "nothing");
  if (obj->via.map.size > GBX_MAX_ATTRS)
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE, "%u attributes, at most %u are allowed",
                          obj->via.map.size, GBX_MAX_ATTRS);
  switch (map_check_keys(obj, &culprit)) {
  case KEYS_OK:
    break;
  case KEYS_NOT_STR:
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE, "an attribute name is %s, not a str",
                          a_type(culprit->type));
  case KEYS_DUP:
    return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE, "attribute '%s' appears twice",
                          quote(q, culprit->via.str.ptr, culprit->via.str.size));
  case KEYS_NOMEM: /* unreachable: at most GBX_MAX_ATTRS keys are compared pairwise */
    return gbx_errbuf_set(eb, GBX_E_INTERNAL, "out of memory checking attributes");
  }

  for (uint32_t i = 0; i < obj->via.map.size; i++) {
    const msgpack_object_kv *kv = &obj->via.map.ptr[i];
    gbx_attr_t *a = &out[i];
    gbx_err_t rc;
    a->name = kv->key.via.str.ptr;
    a->name_len = kv->key.via.str.size;
    quote(q, a->name, a->name_len);
    why = attr_name_problem(a->name, a->name_len);
    if (why)
      return gbx_errbuf_set(eb, GBX_E_BAD_ATTRIBUTE, "attribute name '%s' %s", q, why);
    rc = attr_value_decode(&kv->val, a, q, eb);
    if (rc != GBX_E_OK)
      return rc;
  }
  *n = obj->via.map.size;
  return GBX_E_OK;
}

void gbx_attrs_pack(msgpack_packer *pk, const gbx_attr_t *a, uint32_t n) {
  msgpack_pack_map(pk, n);
  for (uint32_t i = 0; i < n; i++) {
    gbx_pack_strn(pk, a[i].name, a[i].name_len);
    msgpack_pack_map(pk, 2);
    gbx_pack_kv_str(pk, "t", a[i].type, a[i].type_len);
    if (attr_base_of(a[i].type, a[i].type_len) == BASE_BINARY)
      gbx_pack_kv_bin(pk, "v", a[i].value, a[i].value_len);
    else
      gbx_pack_kv_str(pk, "v", a[i].value, a[i].value_len);
  }
}

uint64_t gbx_attrs_size(const gbx_attr_t *a, uint32_t n) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n; i++)
    sum += (uint64_t)a[i].name_len + a[i].type_len + a[i].value_len;
  return sum;
}

/* ---- encoding ------------------------------------------------------------- */

void gbx_buf_init(gbx_buf_t *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void gbx_buf_free(gbx_buf_t *b) {
  free(b->data);
  gbx_buf_init(b);
}

int gbx_buf_append(gbx_buf_t *b, const void *p, size_t n) {
  if (n == 0)
    return 0;
  if (n > SIZE_MAX - b->len)
    return -1;
  size_t need = b->len + n;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : BUF_INITIAL_CAP;
    while (cap < need) {
      if (cap > SIZE_MAX / 2) {
        cap = need;
        break;
      }
      cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d)
      return -1; /* realloc failure leaves the old block intact */
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int gbx_buf_write_cb(void *data, const char *buf, size_t len) {
  return gbx_buf_append((gbx_buf_t *)data, buf, len);
}

/* On allocation failure returns SIZE_MAX, which gbx_frame_end ignores: the
 * header API has no error path, so a caller that must know checks
 * b->len after packing (or for SIZE_MAX here). */
size_t gbx_frame_begin(gbx_buf_t *b) {
  static const uint8_t zero[GBX_FRAME_HDR] = {0};
  size_t off = b->len;
  if (gbx_buf_append(b, zero, sizeof zero) != 0)
    return SIZE_MAX;
  return off;
}

void gbx_frame_end(gbx_buf_t *b, size_t off) {
  if (off == SIZE_MAX || off > b->len || b->len - off < GBX_FRAME_HDR)
    return;
  size_t payload = b->len - off - GBX_FRAME_HDR;
  /* Frames are bounded by GBX_HARD_MAX_FRAME far below 4 GiB; a larger one is
   * our own bug, written with a length the peer will refuse. */
  gbx_frame_put_len(b->data + off, payload > UINT32_MAX ? UINT32_MAX : (uint32_t)payload);
}

void gbx_pack_cstr(msgpack_packer *pk, const char *s) {
  gbx_pack_strn(pk, s, s ? strlen(s) : 0);
}

void gbx_pack_strn(msgpack_packer *pk, const char *s, size_t n) {
  msgpack_pack_str(pk, n);
  if (n)
    msgpack_pack_str_body(pk, s, n);
}

void gbx_pack_binn(msgpack_packer *pk, const void *p, size_t n) {
  msgpack_pack_bin(pk, n);
  if (n)
    msgpack_pack_bin_body(pk, p, n);
}

void gbx_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v) {
  gbx_pack_cstr(pk, key);
  msgpack_pack_uint64(pk, v);
}

void gbx_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t v) {
  gbx_pack_cstr(pk, key);
  msgpack_pack_int64(pk, v);
}

void gbx_pack_kv_bool(msgpack_packer *pk, const char *key, int v) {
  gbx_pack_cstr(pk, key);
  if (v)
    msgpack_pack_true(pk);
  else
    msgpack_pack_false(pk);
}

void gbx_pack_kv_str(msgpack_packer *pk, const char *key, const char *s, size_t n) {
  gbx_pack_cstr(pk, key);
  gbx_pack_strn(pk, s, n);
}

void gbx_pack_kv_cstr(msgpack_packer *pk, const char *key, const char *s) {
  gbx_pack_cstr(pk, key);
  gbx_pack_cstr(pk, s);
}

void gbx_pack_kv_bin(msgpack_packer *pk, const char *key, const void *p, size_t n) {
  gbx_pack_cstr(pk, key);
  gbx_pack_binn(pk, p, n);
}
