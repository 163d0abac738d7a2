/* filter_match.c - matches one published message against a compiled filter
 * (filter_int.h). The message is described once per publish by a
 * filter_msg_t; JSON the policies need (the body, String.Array values) is
 * parsed on first need and cached there, so N subscriptions cost one parse.
 *
 * Every condition is tested against a "leaf value" (fval_t): a string, a
 * number in fixed point, true, false or null. An attribute gives one leaf
 * (or one per element for String.Array); a body key path gives every leaf
 * found by following the path through objects and into arrays. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include <cjson/cJSON.h>

#include "filter_int.h"
#include "text.h"

enum { BODY_UNPARSED = 0, BODY_OK = 1, BODY_BAD = 2 };

/* Longest Number attribute text converted: SQS numbers hold at most 38
 * digits plus sign, point and exponent; longer text meets no numeric
 * condition rather than costing an allocation. */
#define NUM_TEXT_MAX 63u

typedef struct fval {
  enum { FV_STR, FV_NUM, FV_TRUE, FV_FALSE, FV_NULL } type;
  int num_ok; /* FV_NUM: within -1e9..1e9, fx valid */
  int64_t fx;
  const char *s; /* FV_STR */
  size_t len;
} fval_t;

/* One String.Array attribute's parsed value, cached per message. */
typedef struct arr_cache {
  cJSON *doc; /* a JSON array, or NULL */
  int state;  /* BODY_* */
} arr_cache_t;

/* ---- values ---------------------------------------------------------------- */

/* 1 if s[0..n) is a plain decimal number: [+-]digits[.digits][(e|E)[+-]digits]
 * with at least one digit before the exponent. Refuses hex, inf and nan,
 * which strtod would take. */
static int decimal_syntax(const char *s, size_t n) {
  size_t i = 0, digits = 0;
  if (i < n && (s[i] == '+' || s[i] == '-'))
    i++;
  while (i < n && s[i] >= '0' && s[i] <= '9')
    i++, digits++;
  if (i < n && s[i] == '.')
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
      digits++;
  if (!digits)
    return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    size_t e = 0;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++, e++;
    if (!e)
      return 0;
  }
  return i == n;
}

/* A Number attribute's text as a leaf value. */
static fval_t number_text(const char *s, size_t n) {
  fval_t v = {.type = FV_NUM};
  char buf[NUM_TEXT_MAX + 1];
  if (n == 0 || n > NUM_TEXT_MAX || !decimal_syntax(s, n))
    return v;
  memcpy(buf, s, n);
  buf[n] = '\0';
  v.num_ok = filter_fixed(strtod(buf, NULL), &v.fx);
  return v;
}

/* A cJSON scalar as a leaf value; 0 for objects and arrays. */
static int json_leaf(const cJSON *j, fval_t *v) {
  memset(v, 0, sizeof *v);
  if (cJSON_IsString(j)) {
    v->type = FV_STR;
    v->s = j->valuestring;
    v->len = strlen(j->valuestring);
  } else if (cJSON_IsNumber(j)) {
    v->type = FV_NUM;
    v->num_ok = filter_fixed(j->valuedouble, &v->fx);
  } else if (cJSON_IsTrue(j)) {
    v->type = FV_TRUE;
  } else if (cJSON_IsFalse(j)) {
    v->type = FV_FALSE;
  } else if (cJSON_IsNull(j)) {
    v->type = FV_NULL;
  } else {
    return 0;
  }
  return 1;
}

/* ---- conditions ------------------------------------------------------------ */

static int is_str(const fval_t *v) {
  return v->type == FV_STR;
}

/* C.UTF-8's case tables (Debian's libc-bin ships the locale), loaded once;
 * NULL when missing, and then only ASCII letters fold. */
static locale_t case_loc;
static pthread_once_t case_once = PTHREAD_ONCE_INIT;
static void case_init(void) {
  case_loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

int filter_unicode_case(void) {
  pthread_once(&case_once, case_init);
  return case_loc != NULL;
}

/* SNS's equals-ignore-case: character by character, equal when the same
 * or the same in upper or in lower case (simple case mapping, as Java's
 * equalsIgnoreCase, which SNS's matcher uses: "ß" is not "SS"). */
static int eq_icase(const char *a, size_t an, const char *b, size_t bn) {
  size_t i = 0, j = 0;
  pthread_once(&case_once, case_init);
  while (i < an && j < bn) {
    uint32_t x = utf8_next((const uint8_t *)a, an, &i), y = utf8_next((const uint8_t *)b, bn, &j);
    if (x == y)
      continue;
    if (x >= UTF8_MALFORMED || y >= UTF8_MALFORMED)
      return 0;
    if (case_loc) {
      if (towupper_l((wint_t)x, case_loc) == towupper_l((wint_t)y, case_loc) ||
          towlower_l((wint_t)x, case_loc) == towlower_l((wint_t)y, case_loc))
        continue;
    } else if (x < 128 && y < 128 && (x | 0x20u) == (y | 0x20u) && (x | 0x20u) >= 'a' &&
               (x | 0x20u) <= 'z') {
      continue;
    }
    return 0;
  }
  return i == an && j == bn;
}

static int has_prefix(const fval_t *v, const char *p, size_t n) {
  return v->len >= n && memcmp(v->s, p, n) == 0;
}

static int has_suffix(const fval_t *v, const char *p, size_t n) {
  return v->len >= n && memcmp(v->s + v->len - n, p, n) == 0;
}

/* A compiled wildcard pattern (literal runs between WILDCARD_STAR bytes)
 * against t: the first run is a prefix, the last a suffix, and each one
 * between is found leftmost after the one before, which is never worse for
 * a later run. Linear in the text (memmem), whatever the stars. */
static int wildcard_match(const char *p, size_t pl, const char *t, size_t tl) {
  const char *star = memchr(p, WILDCARD_STAR, pl);
  if (!star)
    return pl == tl && memcmp(p, t, pl) == 0;
  size_t first = (size_t)(star - p), i = first + 1, j = first;
  if (tl < first || memcmp(p, t, first) != 0)
    return 0;
  for (;;) {
    const char *next = memchr(p + i, WILDCARD_STAR, pl - i);
    if (!next) { /* the last run: a suffix of what is left */
      size_t last = pl - i;
      return tl - j >= last && memcmp(t + tl - last, p + i, last) == 0;
    }
    size_t len = (size_t)(next - (p + i));
    const char *at = memmem(t + j, tl - j, p + i, len);
    if (!at)
      return 0;
    j = (size_t)(at - t) + len;
    i += len + 1;
  }
}

static int numeric_in(const fcond_t *c, const fval_t *v) {
  if (v->type != FV_NUM || !v->num_ok)
    return 0;
  if (c->flags & FNUM_LO)
    if (v->fx < c->lo || (v->fx == c->lo && !(c->flags & FNUM_LO_INCL)))
      return 0;
  if (c->flags & FNUM_HI)
    if (v->fx > c->hi || (v->fx == c->hi && !(c->flags & FNUM_HI_INCL)))
      return 0;
  return 1;
}

/* 1 if the string value is an address inside the CIDR block. */
static int cidr_in(const filter_t *f, const fcond_t *c, const fval_t *v) {
  char buf[INET6_ADDRSTRLEN + 1];
  unsigned char a[16];
  if (!is_str(v) || v->len == 0 || v->len >= sizeof buf)
    return 0;
  memcpy(buf, v->s, v->len);
  buf[v->len] = '\0';
  if (inet_pton(c->flags == 6 ? AF_INET6 : AF_INET, buf, a) != 1)
    return 0;
  const unsigned char *net = (const unsigned char *)f->blob + c->off;
  unsigned full = c->bits / 8u, rest = c->bits % 8u;
  if (memcmp(a, net, full) != 0)
    return 0;
  return rest == 0 || (a[full] & (unsigned char)(0xff00u >> rest)) == net[full];
}

static int cond_match(const filter_t *f, const fcond_t *c, const fval_t *v) {
  const char *s = f->blob + c->off;
  switch ((enum filter_op)c->op) {
  case FOP_EQ_STR:
    return is_str(v) && v->len == c->len && memcmp(v->s, s, c->len) == 0;
  case FOP_EQ_NUM:
    return v->type == FV_NUM && v->num_ok && v->fx == c->lo;
  case FOP_EQ_TRUE:
    return v->type == FV_TRUE;
  case FOP_EQ_FALSE:
    return v->type == FV_FALSE;
  case FOP_EQ_NULL:
    return v->type == FV_NULL;
  case FOP_PREFIX:
    return is_str(v) && has_prefix(v, s, c->len);
  case FOP_SUFFIX:
    return is_str(v) && has_suffix(v, s, c->len);
  case FOP_ICASE:
    return is_str(v) && eq_icase(v->s, v->len, s, c->len);
  case FOP_NUMERIC:
    return numeric_in(c, v);
  case FOP_CIDR:
    return cidr_in(f, c, v);
  case FOP_NOT_IN:
    for (uint32_t i = 0; i < c->len; i++)
      if (cond_match(f, &f->conds[c->off + i], v))
        return 0;
    return 1;
  case FOP_NOT_PREFIX:
    return is_str(v) && !has_prefix(v, s, c->len);
  case FOP_NOT_SUFFIX:
    return is_str(v) && !has_suffix(v, s, c->len);
  case FOP_WILDCARD:
    return is_str(v) && wildcard_match(s, c->len, v->s, v->len);
  case FOP_NOT_WILDCARD:
    return is_str(v) && !wildcard_match(s, c->len, v->s, v->len);
  case FOP_EXISTS_TRUE:
  case FOP_EXISTS_FALSE:
    return 0; /* decided per key by key_result() */
  }
  return 0;
}

/* 1 if any of the key's conditions matches the leaf value. */
static int conds_match(const filter_t *f, const fkey_t *k, const fval_t *v) {
  for (uint32_t i = 0; i < k->ncond; i++)
    if (cond_match(f, &f->conds[k->first_cond + i], v))
      return 1;
  return 0;
}

/* Visits the leaves of a JSON value (itself, or its elements at any array
 * depth; objects hold none) until one matches. Sets *found if any leaf was
 * seen. Returns 1 on a match. */
static int leaves_match(const filter_t *f, const fkey_t *k, const cJSON *j, int *found) {
  fval_t v;
  if (cJSON_IsArray(j)) {
    for (const cJSON *e = j->child; e; e = e->next)
      if (leaves_match(f, k, e, found))
        return 1;
    return 0;
  }
  if (!json_leaf(j, &v))
    return 0;
  /* SNS: exists:true needs a non-null, non-empty value; null is absent */
  int present = v.type != FV_NULL;
  *found |= present;
  return (present && k->exists_true) || conds_match(f, k, &v);
}

/* ---- message caches ------------------------------------------------------ */

/* A copy of JSON text with each "\u0000" escape as one 0xFF byte, or NULL
 * (none, or out of memory). cJSON's strings end at a NUL, so "ab\u0000cd"
 * would read as "ab" and match what SNS's full string does not; 0xFF is in
 * no UTF-8 text, so no policy string equals it, and lengths stay right. */
static char *nul_escapes_replaced(const char *text, size_t len, size_t *out_len) {
  if (!memmem(text, len, "\\u0000", 6))
    return NULL;
  char *o = malloc(len);
  size_t k = 0;
  if (!o)
    return NULL;
  for (size_t i = 0; i < len;) {
    if (text[i] == '\\' && i + 1 < len) {
      if (len - i >= 6 && !memcmp(text + i, "\\u0000", 6)) {
        o[k++] = (char)0xFF;
        i += 6;
      } else { /* an escape pair, so an escaped backslash is not one */
        o[k++] = text[i++];
        o[k++] = text[i++];
      }
      continue;
    }
    o[k++] = text[i++];
  }
  *out_len = k;
  return o;
}

cJSON *filter_json_parse(const char *text, size_t len) {
  const char *end = NULL;
  if (!text || len == 0)
    return NULL;
  size_t cl = 0;
  char *copy = nul_escapes_replaced(text, len, &cl);
  if (copy) {
    text = copy;
    len = cl;
  }
  cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (doc) {
    for (const char *p = end; p < text + len; p++)
      if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
        cJSON_Delete(doc);
        doc = NULL;
        break;
      }
  }
  free(copy);
  return doc;
}

/* The body as a JSON object, parsed on first call; NULL if it is not one. */
static const cJSON *body_doc(filter_msg_t *m) {
  if (m->body_state_ == BODY_UNPARSED) {
    cJSON *doc = filter_json_parse(m->body, m->body_len);
    if (doc && !cJSON_IsObject(doc)) {
      cJSON_Delete(doc);
      doc = NULL;
    }
    m->body_json_ = doc;
    m->body_state_ = doc ? BODY_OK : BODY_BAD;
  }
  return m->body_state_ == BODY_OK ? m->body_json_ : NULL;
}

/* Attribute i's String.Array value as a JSON array, parsed on first call;
 * NULL if it is not one (or the cache cannot be allocated). */
static const cJSON *array_doc(filter_msg_t *m, uint32_t i) {
  arr_cache_t *cache = m->arrays_json_;
  if (!cache) {
    cache = calloc(m->nattrs, sizeof *cache);
    if (!cache)
      return NULL;
    m->arrays_json_ = cache;
  }
  if (cache[i].state == BODY_UNPARSED) {
    cJSON *doc = filter_json_parse(m->attrs[i].value, m->attrs[i].value_len);
    if (doc && !cJSON_IsArray(doc)) {
      cJSON_Delete(doc);
      doc = NULL;
    }
    cache[i].doc = doc;
    cache[i].state = doc ? BODY_OK : BODY_BAD;
  }
  return cache[i].doc;
}

/* ---- attribute scope ------------------------------------------------------- */

/* 1 if the attribute type t[0..n) is base (exactly, or base + "." + suffix). */
static int type_is(const char *t, size_t n, const char *base) {
  size_t b = strlen(base);
  return n >= b && memcmp(t, base, b) == 0 && (n == b || t[b] == '.');
}

/* Index of the attribute the key names, or -1. Binary attributes are
 * skipped: SNS ignores them in filtering. */
static int32_t find_attr(const filter_t *f, const fkey_t *k, const filter_msg_t *m) {
  const char *name = f->blob + k->name_off;
  for (uint32_t i = 0; i < m->nattrs; i++) {
    const gbx_attr_t *a = &m->attrs[i];
    if (a->name_len == k->name_len && memcmp(a->name, name, k->name_len) == 0 &&
        !type_is(a->type, a->type_len, "Binary"))
      return (int32_t)i;
  }
  return -1;
}

static int attr_key(const filter_t *f, const fkey_t *k, filter_msg_t *m) {
  int32_t i = find_attr(f, k, m);
  if (i < 0)
    return k->exists_false;
  const gbx_attr_t *a = &m->attrs[i];
  if (a->type_len == 12 && memcmp(a->type, "String.Array", 12) == 0) {
    /* an array without a non-null element ("[]") is an empty value: absent
     * for exists, as in body scope */
    const cJSON *arr = array_doc(m, (uint32_t)i);
    int found = 0;
    return (arr && leaves_match(f, k, arr, &found)) || (arr && !found && k->exists_false);
  }
  if (k->exists_true)
    return 1;
  fval_t v;
  if (type_is(a->type, a->type_len, "Number")) {
    v = number_text(a->value, a->value_len);
  } else if (type_is(a->type, a->type_len, "String")) {
    v = (fval_t){.type = FV_STR, .s = a->value, .len = a->value_len};
  } else {
    return 0;
  }
  return conds_match(f, k, &v);
}

/* A node in attribute scope: every key, and one branch of every $or group. */
static int attr_node(const filter_t *f, const fnode_t *n, filter_msg_t *m) {
  for (uint32_t i = 0; i < n->nkeys; i++)
    if (!attr_key(f, &f->keys[n->first_key + i], m))
      return 0;
  for (uint32_t g = 0; g < n->nor; g++) {
    const forgrp_t *o = &f->ors[n->first_or + g];
    int any = 0;
    for (uint32_t b = 0; b < o->n && !any; b++)
      any = attr_node(f, &f->nodes[f->branches[o->first + b]], m);
    if (!any)
      return 0;
  }
  return 1;
}

/* ---- body scope ---------------------------------------------------------- */

/* The key path from the top-level object down to a leaf key. */
typedef struct kpath {
  const fkey_t *key[FILTER_MAX_DEPTH + 1];
  unsigned n;
} kpath_t;

/* A body key path as one dotted name ("a.b.c" for {"a": {"b": {"c": ...}}}):
 * SNS matches it against the body's member names joined the same way, so
 * {"a.b": ...}, {"a": {"b": ...}} and {"a": {"b.c": ...}} all reach it. */
typedef struct dpath {
  const char *s;
  size_t len;
} dpath_t;

/* Follows the dotted path from s.s[q] into j, stepping into arrays: a member
 * whose name is the path's next dot-separated part(s) is entered. Tests the
 * leaves at the end; sets *found if any leaf is reached. 1 on a match. */
static int walk(const filter_t *f, const fkey_t *leaf, dpath_t p, size_t q, const cJSON *j,
                int *found) {
  if (q > p.len)
    return leaves_match(f, leaf, j, found);
  if (cJSON_IsArray(j)) {
    for (const cJSON *e = j->child; e; e = e->next)
      if (walk(f, leaf, p, q, e, found))
        return 1;
    return 0;
  }
  if (!cJSON_IsObject(j))
    return 0;
  /* every member of such a name: a body may repeat a key */
  for (const cJSON *c = j->child; c; c = c->next) {
    size_t nl = c->string ? strlen(c->string) : 0;
    if (!c->string || nl > p.len - q || memcmp(c->string, p.s + q, nl) != 0)
      continue;
    if (q + nl == p.len ? walk(f, leaf, p, p.len + 1, c, found)
                        : p.s[q + nl] == '.' && walk(f, leaf, p, q + nl + 1, c, found))
      return 1;
  }
  return 0;
}

/* The path's keys joined with dots into buf (cap bytes) or a new buffer
 * (*heap, to free). NULL when out of memory. */
static const char *join_path(const filter_t *f, const kpath_t *path, char *buf, size_t cap,
                             char **heap, size_t *len) {
  size_t n = 0;
  for (unsigned i = 0; i < path->n; i++)
    n += path->key[i]->name_len + 1;
  *heap = NULL;
  if (n > cap && !(buf = *heap = malloc(n)))
    return NULL;
  size_t k = 0;
  for (unsigned i = 0; i < path->n; i++) {
    if (i)
      buf[k++] = '.';
    memcpy(buf + k, f->blob + path->key[i]->name_off, path->key[i]->name_len);
    k += path->key[i]->name_len;
  }
  *len = k;
  return buf;
}

static int body_node(const filter_t *f, const fnode_t *n, const cJSON *doc, kpath_t *path) {
  for (uint32_t i = 0; i < n->nkeys; i++) {
    const fkey_t *k = &f->keys[n->first_key + i];
    int ok, found = 0;
    path->key[path->n++] = k;
    if (k->child != FKEY_LEAF)
      ok = body_node(f, &f->nodes[k->child], doc, path);
    else {
      char buf[512], *heap;
      dpath_t p;
      p.s = join_path(f, path, buf, sizeof buf, &heap, &p.len);
      ok = p.s && (walk(f, k, p, 0, doc, &found) || (!found && k->exists_false));
      free(heap);
    }
    path->n--;
    if (!ok)
      return 0;
  }
  for (uint32_t g = 0; g < n->nor; g++) {
    const forgrp_t *o = &f->ors[n->first_or + g];
    int any = 0;
    for (uint32_t b = 0; b < o->n && !any; b++)
      any = body_node(f, &f->nodes[f->branches[o->first + b]], doc, path);
    if (!any)
      return 0;
  }
  return 1;
}

/* ---- API ------------------------------------------------------------------- */

void filter_msg_init(filter_msg_t *m, const gbx_attr_t *a, uint32_t n, const char *body,
                     size_t bl) {
  memset(m, 0, sizeof *m);
  m->attrs = a;
  m->nattrs = a ? n : 0;
  m->body = body;
  m->body_len = body ? bl : 0;
  m->body_state_ = BODY_UNPARSED;
}

void filter_msg_free(filter_msg_t *m) {
  arr_cache_t *cache = m->arrays_json_;
  if (cache) {
    for (uint32_t i = 0; i < m->nattrs; i++)
      cJSON_Delete(cache[i].doc);
    free(cache);
  }
  cJSON_Delete(m->body_json_);
  m->arrays_json_ = NULL;
  m->body_json_ = NULL;
  m->body_state_ = BODY_UNPARSED;
}

int filter_match(const filter_t *f, filter_msg_t *m) {
  if (!f)
    return 1;
  const fnode_t *root = &f->nodes[0];
  if (root->nkeys == 0 && root->nor == 0)
    return 1; /* the empty policy {} */
  /* SNS: a message without attributes matches no attribute policy, not
   * even {"k": [{"exists": false}]} */
  if (f->scope != FILTER_SCOPE_BODY && m->nattrs == 0)
    return 0;
  if (f->scope == FILTER_SCOPE_BODY) {
    const cJSON *doc = body_doc(m);
    kpath_t path = {.n = 0};
    return doc && body_node(f, root, doc, &path);
  }
  return attr_node(f, root, m);
}
