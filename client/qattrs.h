/* qattrs.h - libgearbox internals: the one table of settable queue
 * attributes, mapping wire names to gbx_queue_attrs_t fields, used both to
 * pack requests and to decode queue_get_attrs replies. */
#ifndef GBX_QATTRS_H
#define GBX_QATTRS_H

#include <stddef.h>

#include "gbx_codec.h"
#include "gearbox.h"

typedef struct qattr_def {
  const char *name; /* wire name, as SQS spells it */
  unsigned flag;    /* GBX_QA_* */
  size_t off;       /* offset of the field in gbx_queue_attrs_t */
  int is_str;       /* field is a const char *, else a uint32_t */
} qattr_def_t;

/* The settable attributes, terminated by an entry with name NULL. */
extern const qattr_def_t qattr_defs[];

/* The definition of wire name s[0..len), or NULL if it is not settable. */
const qattr_def_t *qattr_find(const char *s, size_t len);

/* Number of attributes flagged in a->set (0 for NULL). */
unsigned qattrs_count(const gbx_queue_attrs_t *a);

/* Packs the flagged attributes as a map (NULL strings as ""). */
void qattrs_pack(msgpack_packer *pk, const gbx_queue_attrs_t *a);

#endif
