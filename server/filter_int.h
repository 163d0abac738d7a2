/* filter_int.h - the compiled form of a filter policy, shared by
 * filter_compile.c (which builds it) and filter_match.c (which walks it).
 * Private to those two files.
 *
 * A policy compiles into one allocation holding flat arrays linked by index:
 *   node    an object of the policy: its keys (ANDed) and its $or groups
 *   key     a name, and either a child node (a nested object, body scope)
 *           or a run of conditions (ORed)
 *   orgrp   a run of branch node indices, one of which must match
 *   cond    one match value: an exact value or an operator
 *   blob    the bytes of names, strings and CIDR networks
 * Node 0 is the policy's top-level object. */
#ifndef GBX_FILTER_INT_H
#define GBX_FILTER_INT_H

#include <math.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "filter.h"

enum filter_op {
  FOP_EQ_STR, /* off/len: the string */
  FOP_EQ_NUM, /* lo: the number, fixed point */
  FOP_EQ_TRUE,
  FOP_EQ_FALSE,
  FOP_EQ_NULL,
  FOP_PREFIX,       /* off/len */
  FOP_SUFFIX,       /* off/len */
  FOP_ICASE,        /* off/len: equals-ignore-case */
  FOP_NUMERIC,      /* lo/hi with FNUM_* flags */
  FOP_CIDR,         /* off: network bytes (4 or 16) in blob, bits, flags: 4 or 6 */
  FOP_NOT_IN,       /* off/len: first index and count of FOP_EQ_STR/NUM items in conds */
  FOP_NOT_PREFIX,   /* off/len */
  FOP_NOT_SUFFIX,   /* off/len */
  FOP_WILDCARD,     /* off/len: the pattern, each unescaped '*' as WILDCARD_STAR */
  FOP_NOT_WILDCARD, /* off/len, as FOP_WILDCARD */
  FOP_EXISTS_TRUE,  /* handled per key, never per value */
  FOP_EXISTS_FALSE, /* handled per key, never per value */
};

/* A '*' of a compiled wildcard pattern: a byte no UTF-8 text holds, so an
 * escaped "\*" (a literal star) stays apart from it. */
#define WILDCARD_STAR 0xFFu

/* FOP_NUMERIC bound flags. */
enum { FNUM_LO = 1, FNUM_LO_INCL = 2, FNUM_HI = 4, FNUM_HI_INCL = 8 };

typedef struct fcond {
  uint8_t op;    /* enum filter_op */
  uint8_t flags; /* FNUM_* or the CIDR family (4 or 6) */
  uint8_t bits;  /* CIDR prefix length */
  uint32_t off, len;
  int64_t lo, hi;
} fcond_t;

#define FKEY_LEAF UINT32_MAX

typedef struct fkey {
  uint32_t name_off, name_len;
  uint32_t child;             /* node index of a nested object, or FKEY_LEAF */
  uint32_t first_cond, ncond; /* a leaf's conditions */
  uint8_t exists_true;        /* the leaf lists {"exists": true} */
  uint8_t exists_false;       /* the leaf lists {"exists": false} */
} fkey_t;

typedef struct fnode {
  uint32_t first_key, nkeys;
  uint32_t first_or, nor;
} fnode_t;

typedef struct forgrp {
  uint32_t first, n; /* into branches[] */
} forgrp_t;

struct filter {
  int scope;
  uint32_t nnodes, nkeys, nconds, nors, nbranches, blob_len;
  const fnode_t *nodes;
  const fkey_t *keys;
  const fcond_t *conds;
  const forgrp_t *ors;
  const uint32_t *branches;
  const char *blob;
};

/* Numbers are compared as integers in units of 10^-FILTER_NUM_DECIMALS. */
#define FILTER_NUM_SCALE 1e5

/* Converts x to fixed point. Returns 1, or 0 when x is NaN or outside
 * -FILTER_NUM_MAX..FILTER_NUM_MAX (so the result always fits in 2^53). */
static inline int filter_fixed(double x, int64_t *out) {
  if (!(x >= -FILTER_NUM_MAX && x <= FILTER_NUM_MAX))
    return 0;
  *out = (int64_t)llround(x * FILTER_NUM_SCALE);
  return 1;
}

/* Parses text[0..len) as one JSON value with nothing but whitespace after
 * it (cJSON stops at the end of the first value), each "\u0000" escape
 * read as a 0xFF byte (cJSON would end the string there). The tree or NULL
 * (filter_match.c; policies and message bodies alike). */
cJSON *filter_json_parse(const char *text, size_t len);

#endif
