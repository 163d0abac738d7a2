/* filter_compile.c - turns an SNS filter policy (JSON) into the compact
 * condition tree of filter_int.h, enforcing SNS's limits.
 *
 * Two passes over the cJSON tree. measure() checks the shape (objects,
 * non-empty value arrays, nesting only with body scope, depth) and counts
 * keys and combinations, so an oversized policy is refused before anything
 * is built. emit() then validates every match value and appends nodes, keys
 * and conditions to growable arrays, which finish() copies into one block.
 * The cJSON tree is freed before filter_compile returns. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "filter_int.h"
#include "text.h"

/* Combination and key counts saturate here: far above any limit, far below
 * overflow, however the products and sums of a 256 KiB policy add up. */
#define SAT_CAP 1000000000000ull
/* Key paths in error messages are cut to this many bytes. */
#define PATH_MAX_SHOWN 64u

/* A growable array of fixed-size elements, addressed by index only: a
 * reservation may move it, so no pointer into it survives an append. */
typedef struct vec {
  char *p;
  uint32_t n, cap;
} vec_t;

typedef struct cc {
  int scope;
  gbx_errbuf_t *eb;
  int failed;
  vec_t nodes, keys, conds, ors, branches, blob;
  char path[PATH_MAX_SHOWN + 1]; /* key path for messages, "a.b.c" */
} cc_t;

enum member_kind { M_LEAF, M_NESTED, M_OR, M_BAD };

/* ---- small helpers ------------------------------------------------------ */

static uint64_t sat_mul(uint64_t a, uint64_t b) {
  if (a && b > SAT_CAP / a)
    return SAT_CAP;
  return a * b > SAT_CAP ? SAT_CAP : a * b;
}

static uint64_t sat_add(uint64_t a, uint64_t b) {
  return a + b > SAT_CAP ? SAT_CAP : a + b;
}

/* Records an allocation failure as the compile's error. */
static void out_of_memory(cc_t *c) {
  if (!c->failed)
    gbx_errbuf_set(c->eb, GBX_E_INTERNAL, "out of memory compiling the filter policy");
  c->failed = 1;
}

/* Reserves k zeroed elements of esz bytes at the end of v. Returns the index
 * of the first, or UINT32_MAX (after out_of_memory) on failure. Counts stay
 * far below 2^31: every element comes from a byte of a 256 KiB policy. */
static uint32_t reserve(cc_t *c, vec_t *v, size_t esz, uint32_t k) {
  if (k == 0)
    return v->n;
  if (v->n + (uint64_t)k > v->cap) {
    uint64_t cap = v->cap ? v->cap : 8;
    while (cap < v->n + (uint64_t)k)
      cap *= 2;
    char *p = cap <= UINT32_MAX / 2 ? realloc(v->p, (size_t)cap * esz) : NULL;
    if (!p) {
      out_of_memory(c);
      return UINT32_MAX;
    }
    v->p = p;
    v->cap = (uint32_t)cap;
  }
  memset(v->p + (size_t)v->n * esz, 0, (size_t)k * esz);
  uint32_t first = v->n;
  v->n += k;
  return first;
}

#define AT(c, vec, type, i) (((type *)(c)->vec.p)[i])

/* Appends len bytes to the blob; returns their offset or UINT32_MAX. */
static uint32_t blob_add(cc_t *c, const void *s, size_t len) {
  if (len > FILTER_MAX_POLICY_BYTES) { /* cannot come from a policy that passed the size check */
    out_of_memory(c);
    return UINT32_MAX;
  }
  uint32_t off = reserve(c, &c->blob, 1, (uint32_t)len);
  if (off != UINT32_MAX && len)
    memcpy(c->blob.p + off, s, len);
  return off;
}

/* Records the first error (GBX_E_BAD_FILTER_POLICY) with the key path. */
__attribute__((format(printf, 2, 3))) static void fail(cc_t *c, const char *fmt, ...) {
  char what[128];
  va_list ap;
  if (c->failed)
    return;
  c->failed = 1;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (c->path[0])
    gbx_errbuf_set(c->eb, GBX_E_BAD_FILTER_POLICY, "key '%s': %s", c->path, what);
  else
    gbx_errbuf_set(c->eb, GBX_E_BAD_FILTER_POLICY, "%s", what);
}

/* Appends ".name" (or "name" at the top) to the path shown in messages;
 * returns the old length for path_pop. */
static size_t path_push(cc_t *c, const char *name) {
  size_t old = strlen(c->path);
  snprintf(c->path + old, sizeof c->path - old, "%s%s", old ? "." : "", name ? name : "");
  return old;
}

static void path_pop(cc_t *c, size_t old) {
  c->path[old] = '\0';
}

/* Operator names; an "$or" array whose objects use one of them as a key is
 * an ordinary key named "$or", as SNS's AND/OR logic page specifies. */
static int is_operator(const char *s) {
  static const char *const ops[] = {"prefix", "suffix", "anything-but",       "numeric",
                                    "exists", "cidr",   "equals-ignore-case", "wildcard"};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (s && strcmp(s, ops[i]) == 0)
      return 1;
  return 0;
}

/* SNS reads "$or" as alternatives only when its value is an array of at
 * least two objects none of whose keys is an operator name. */
static int is_or(const cJSON *m) {
  if (!m->string || strcmp(m->string, "$or") != 0 || !cJSON_IsArray(m))
    return 0;
  int n = 0;
  for (const cJSON *e = m->child; e; e = e->next, n++) {
    if (!cJSON_IsObject(e))
      return 0;
    for (const cJSON *k = e->child; k; k = k->next)
      if (is_operator(k->string))
        return 0;
  }
  return n >= 2;
}

static enum member_kind classify(const cJSON *m) {
  if (is_or(m))
    return M_OR;
  if (cJSON_IsArray(m))
    return M_LEAF;
  if (cJSON_IsObject(m))
    return M_NESTED;
  return M_BAD;
}

/* ---- pass 1: shape, keys and combinations ------------------------------ */

/* Checks the object obj whose keys sit at nesting depth `depth` (1 at the
 * top; $or branches keep their parent's depth) and `level` objects deep.
 * Sets *comb to its combinations and *keys to the keys one alternative
 * tests that count toward the limit. Returns 0, or -1 after fail(). */
static int measure(cc_t *c, const cJSON *obj, unsigned depth, unsigned level, uint64_t *comb,
                   uint64_t *keys) {
  if (level > FILTER_MAX_DEPTH) {
    fail(c, "policy nests objects more than %u levels deep", FILTER_MAX_DEPTH);
    return -1;
  }
  if (!obj->child) {
    fail(c, "empty object");
    return -1;
  }
  *comb = 1;
  *keys = 0;
  for (const cJSON *m = obj->child; m; m = m->next) {
    size_t old = path_push(c, m->string);
    uint64_t cm = 1, km = 0;
    switch (classify(m)) {
    case M_LEAF: {
      int n = cJSON_GetArraySize(m);
      if (n == 0) {
        fail(c, "the value array is empty");
        return -1;
      }
      cm = sat_mul((uint64_t)n, c->scope == FILTER_SCOPE_BODY ? depth : 1);
      km = depth == 1;
      break;
    }
    case M_NESTED:
      if (c->scope != FILTER_SCOPE_BODY) {
        fail(c, "nested keys need the message-body filter scope");
        return -1;
      }
      if (measure(c, m, depth + 1, level + 1, &cm, &km) < 0)
        return -1;
      km = depth == 1;
      break;
    case M_OR: {
      path_pop(c, old);
      cm = 0;
      for (const cJSON *b = m->child; b; b = b->next) {
        uint64_t cb, kb;
        if (!b->child) {
          fail(c, "an $or alternative is an empty object");
          return -1;
        }
        if (measure(c, b, depth, level + 1, &cb, &kb) < 0)
          return -1;
        cm = sat_add(cm, cb);
        km = kb > km ? kb : km;
      }
      break;
    }
    case M_BAD:
      fail(c, "must be an array of values or an object");
      return -1;
    }
    path_pop(c, old);
    *comb = sat_mul(*comb, cm);
    *keys = sat_add(*keys, km);
  }
  return 0;
}

/* ---- pass 2: match values ---------------------------------------------- */

/* Fills *out with the fixed-point value of a policy number. Returns 0, or -1
 * after fail() when it is outside SNS's numeric range. */
static int policy_number(cc_t *c, const cJSON *v, int64_t *out) {
  if (!filter_fixed(v->valuedouble, out)) {
    fail(c, "number %g is outside -1e9..1e9", v->valuedouble);
    return -1;
  }
  return 0;
}

/* A string operand: stores it in the blob and sets off/len. */
static int policy_string(cc_t *c, const cJSON *v, const char *op, fcond_t *out) {
  if (!cJSON_IsString(v)) {
    fail(c, "%s needs a string", op);
    return -1;
  }
  size_t n = strlen(v->valuestring);
  out->off = blob_add(c, v->valuestring, n);
  out->len = (uint32_t)n;
  return out->off == UINT32_MAX ? -1 : 0;
}

/* {"wildcard": "pattern"}: '*' matches any run of characters (none
 * included), "\\*" is a literal star and "\\\\" a backslash; "**" is
 * refused, as SNS refuses it. Stored with each star as WILDCARD_STAR. */
static int policy_wildcard(cc_t *c, const cJSON *v, const char *op, fcond_t *out) {
  if (!cJSON_IsString(v)) {
    fail(c, "%s needs a string", op);
    return -1;
  }
  const char *p = v->valuestring;
  size_t n = strlen(p), k = 0;
  char *w = malloc(n + 1);
  if (!w) {
    out_of_memory(c);
    return -1;
  }
  int star = 0; /* the last thing written was a star */
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch == WILDCARD_STAR) {
      free(w);
      fail(c, "%s '%.40s' is not UTF-8 text", op, p);
      return -1;
    }
    if (ch == '*') {
      if (star) {
        free(w);
        fail(c, "%s '%.40s' has consecutive wildcard characters (**)", op, p);
        return -1;
      }
      w[k++] = (char)WILDCARD_STAR;
      star = 1;
      continue;
    }
    if (ch == '\\') {
      if (i + 1 == n || (p[i + 1] != '*' && p[i + 1] != '\\')) {
        free(w);
        fail(c, "%s '%.40s': a backslash may only escape * or \\", op, p);
        return -1;
      }
      ch = (unsigned char)p[++i];
    }
    w[k++] = (char)ch;
    star = 0;
  }
  out->off = blob_add(c, w, k);
  out->len = (uint32_t)k;
  free(w);
  return out->off == UINT32_MAX ? -1 : 0;
}

static int numeric_op(const cJSON *v, const char **name) {
  static const char *const ops[] = {"=", "<", "<=", ">", ">="};
  if (!cJSON_IsString(v))
    return -1;
  for (int i = 0; i < 5; i++)
    if (strcmp(v->valuestring, ops[i]) == 0) {
      *name = ops[i];
      return i;
    }
  return -1;
}

/* {"numeric": [op, n]} or [">"|">=", lo, "<"|"<=", hi]. */
static int compile_numeric(cc_t *c, const cJSON *arr, fcond_t *out) {
  enum { EQ, LT, LE, GT, GE };
  const char *name = "";
  int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
  if (n != 2 && n != 4) {
    fail(c, "numeric takes [operator, number] or [\">\"|\">=\", number, \"<\"|\"<=\", number]");
    return -1;
  }
  const cJSON *e = arr->child;
  int op = numeric_op(e, &name);
  if (op < 0) {
    fail(c, "numeric operator must be one of =, <, <=, >, >=");
    return -1;
  }
  int64_t x;
  if (!cJSON_IsNumber(e->next)) {
    fail(c, "numeric operator '%s' needs a number", name);
    return -1;
  }
  if (policy_number(c, e->next, &x) < 0)
    return -1;
  out->op = FOP_NUMERIC;
  switch (op) {
  case EQ:
    out->flags = FNUM_LO | FNUM_LO_INCL | FNUM_HI | FNUM_HI_INCL, out->lo = out->hi = x;
    break;
  case LT:
  case LE:
    out->flags = FNUM_HI | (op == LE ? FNUM_HI_INCL : 0), out->hi = x;
    break;
  default:
    out->flags = FNUM_LO | (op == GE ? FNUM_LO_INCL : 0), out->lo = x;
    break;
  }
  if (n == 2)
    return 0;
  if (op != GT && op != GE) {
    fail(c, "a numeric range starts with > or >=, not '%s'", name);
    return -1;
  }
  e = e->next->next;
  int op2 = numeric_op(e, &name);
  if (op2 != LT && op2 != LE) {
    fail(c, "a numeric range ends with < or <=");
    return -1;
  }
  if (!cJSON_IsNumber(e->next)) {
    fail(c, "numeric operator '%s' needs a number", name);
    return -1;
  }
  if (policy_number(c, e->next, &x) < 0)
    return -1;
  if (x <= out->lo) {
    fail(c, "numeric range is empty: the lower bound must be below the upper bound");
    return -1;
  }
  out->flags |= FNUM_HI | (op2 == LE ? FNUM_HI_INCL : 0);
  out->hi = x;
  return 0;
}

/* {"cidr": "addr/bits"}: IPv4 or IPv6; host bits are cleared. */
static int compile_cidr(cc_t *c, const cJSON *v, fcond_t *out) {
  char addr[INET6_ADDRSTRLEN + 1];
  unsigned char net[16];
  if (!cJSON_IsString(v)) {
    fail(c, "cidr needs a string");
    return -1;
  }
  const char *s = v->valuestring, *slash = strchr(s, '/');
  size_t alen = slash ? (size_t)(slash - s) : 0;
  const char *b = slash ? slash + 1 : "";
  size_t blen = strlen(b);
  int fam = slash && memchr(s, ':', alen) ? 6 : 4;
  unsigned maxbits = fam == 6 ? 128 : 32, bits = 0;
  if (!slash || alen == 0 || alen >= sizeof addr || blen == 0 || blen > 3 ||
      strspn(b, "0123456789") != blen)
    goto bad;
  bits = (unsigned)atoi(b);
  memcpy(addr, s, alen);
  addr[alen] = '\0';
  if (bits > maxbits || inet_pton(fam == 6 ? AF_INET6 : AF_INET, addr, net) != 1)
    goto bad;
  size_t nbytes = fam == 6 ? 16 : 4;
  for (size_t i = 0; i < nbytes; i++) {
    unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (unsigned)i : 0;
    net[i] &= (unsigned char)(0xff00u >> keep);
  }
  out->op = FOP_CIDR;
  out->flags = (uint8_t)fam;
  out->bits = (uint8_t)bits;
  out->off = blob_add(c, net, nbytes);
  out->len = (uint32_t)nbytes;
  return out->off == UINT32_MAX ? -1 : 0;
bad:
  fail(c, "cidr '%.50s' is not an IPv4 or IPv6 block like 10.0.0.0/24", s);
  return -1;
}

/* An exact string or number, as an item of anything-but or a plain value. */
static int exact_value(cc_t *c, const cJSON *v, fcond_t *out) {
  if (cJSON_IsString(v)) {
    out->op = FOP_EQ_STR;
    return policy_string(c, v, "", out);
  }
  out->op = FOP_EQ_NUM;
  return policy_number(c, v, &out->lo);
}

static int compile_anything_but(cc_t *c, const cJSON *v, fcond_t *out) {
  if (cJSON_IsObject(v)) {
    const cJSON *k = v->child;
    int pre = k && k->string && strcmp(k->string, "prefix") == 0;
    int wild = k && k->string && strcmp(k->string, "wildcard") == 0;
    if (!k || k->next || (!pre && !wild && strcmp(k->string, "suffix") != 0)) {
      fail(c, "anything-but takes an object with one key, prefix, suffix or wildcard");
      return -1;
    }
    if (wild) {
      out->op = FOP_NOT_WILDCARD;
      return policy_wildcard(c, k, "anything-but wildcard", out);
    }
    out->op = pre ? FOP_NOT_PREFIX : FOP_NOT_SUFFIX;
    return policy_string(c, k, pre ? "anything-but prefix" : "anything-but suffix", out);
  }
  int n;
  if (cJSON_IsString(v) || cJSON_IsNumber(v)) {
    n = 1;
  } else if (cJSON_IsArray(v)) {
    n = cJSON_GetArraySize(v);
    if (n == 0) {
      fail(c, "the anything-but list is empty");
      return -1;
    }
  } else {
    fail(c, "anything-but needs a string, a number, a list of them, or a prefix/suffix/wildcard "
            "object");
    return -1;
  }
  uint32_t first = reserve(c, &c->conds, sizeof(fcond_t), (uint32_t)n);
  if (first == UINT32_MAX)
    return -1;
  const cJSON *e = cJSON_IsArray(v) ? v->child : v;
  for (uint32_t i = 0; i < (uint32_t)n; i++, e = e->next) {
    fcond_t item = {0};
    if (!cJSON_IsString(e) && !cJSON_IsNumber(e)) {
      fail(c, "the anything-but list may hold only strings and numbers");
      return -1;
    }
    if (exact_value(c, e, &item) < 0)
      return -1;
    AT(c, conds, fcond_t, first + i) = item;
  }
  out->op = FOP_NOT_IN;
  out->off = first;
  out->len = (uint32_t)n;
  return 0;
}

/* One element of a key's value array. */
static int compile_value(cc_t *c, const cJSON *v, fcond_t *out) {
  if (cJSON_IsString(v) || cJSON_IsNumber(v))
    return exact_value(c, v, out);
  if (cJSON_IsTrue(v) || cJSON_IsFalse(v) || cJSON_IsNull(v)) {
    out->op = cJSON_IsTrue(v) ? FOP_EQ_TRUE : cJSON_IsFalse(v) ? FOP_EQ_FALSE : FOP_EQ_NULL;
    return 0;
  }
  if (!cJSON_IsObject(v)) {
    fail(c, "a match value must be a string, number, true, false, null or an operator object");
    return -1;
  }
  const cJSON *k = v->child;
  if (!k || k->next) {
    fail(c, "an operator object needs exactly one operator");
    return -1;
  }
  const char *op = k->string;
  if (strcmp(op, "prefix") == 0 || strcmp(op, "suffix") == 0 ||
      strcmp(op, "equals-ignore-case") == 0) {
    out->op = op[0] == 'p' ? FOP_PREFIX : op[0] == 's' ? FOP_SUFFIX : FOP_ICASE;
    return policy_string(c, k, op, out);
  }
  if (strcmp(op, "wildcard") == 0) {
    out->op = FOP_WILDCARD;
    return policy_wildcard(c, k, op, out);
  }
  if (strcmp(op, "anything-but") == 0)
    return compile_anything_but(c, k, out);
  if (strcmp(op, "numeric") == 0)
    return compile_numeric(c, k, out);
  if (strcmp(op, "cidr") == 0)
    return compile_cidr(c, k, out);
  if (strcmp(op, "exists") == 0) {
    if (!cJSON_IsBool(k)) {
      fail(c, "exists needs true or false");
      return -1;
    }
    out->op = cJSON_IsTrue(k) ? FOP_EXISTS_TRUE : FOP_EXISTS_FALSE;
    return 0;
  }
  fail(c, "unknown operator '%.40s'", op);
  return -1;
}

/* ---- pass 2: nodes and keys -------------------------------------------- */

static int emit_node(cc_t *c, const cJSON *obj, uint32_t *idx);

/* A key whose value is an array of match values. */
static int emit_leaf(cc_t *c, const cJSON *arr, fkey_t *k) {
  int n = cJSON_GetArraySize(arr);
  uint32_t first = reserve(c, &c->conds, sizeof(fcond_t), (uint32_t)n);
  if (first == UINT32_MAX)
    return -1;
  k->child = FKEY_LEAF;
  k->first_cond = first;
  k->ncond = (uint32_t)n;
  uint32_t i = 0;
  for (const cJSON *v = arr->child; v; v = v->next, i++) {
    fcond_t cond = {0};
    if (compile_value(c, v, &cond) < 0)
      return -1;
    k->exists_true |= cond.op == FOP_EXISTS_TRUE;
    k->exists_false |= cond.op == FOP_EXISTS_FALSE;
    AT(c, conds, fcond_t, first + i) = cond;
  }
  return 0;
}

/* 1 if a member of obj before m has m's name. Objects reaching here passed
 * measure(), so they hold a handful of members. */
static int duplicate(const cJSON *obj, const cJSON *m) {
  for (const cJSON *p = obj->child; p != m; p = p->next)
    if (strcmp(p->string, m->string) == 0)
      return 1;
  return 0;
}

/* Emits obj (already checked by measure) as a node; sets *idx. */
static int emit_node(cc_t *c, const cJSON *obj, uint32_t *idx) {
  uint32_t nk = 0, no = 0;
  for (const cJSON *m = obj->child; m; m = m->next) {
    if (duplicate(obj, m)) {
      size_t old = path_push(c, m->string);
      fail(c, "appears twice in one object");
      path_pop(c, old);
      return -1;
    }
    if (classify(m) == M_OR)
      no++;
    else
      nk++;
  }
  uint32_t ni = reserve(c, &c->nodes, sizeof(fnode_t), 1);
  uint32_t fk = reserve(c, &c->keys, sizeof(fkey_t), nk);
  uint32_t fo = reserve(c, &c->ors, sizeof(forgrp_t), no);
  if (ni == UINT32_MAX || fk == UINT32_MAX || fo == UINT32_MAX)
    return -1;
  AT(c, nodes, fnode_t, ni) = (fnode_t){fk, nk, fo, no};
  *idx = ni;
  uint32_t ki = 0, oi = 0;
  for (const cJSON *m = obj->child; m; m = m->next) {
    if (classify(m) == M_OR) {
      uint32_t nb = (uint32_t)cJSON_GetArraySize(m), bi = 0;
      uint32_t fb = reserve(c, &c->branches, sizeof(uint32_t), nb);
      if (fb == UINT32_MAX)
        return -1;
      for (const cJSON *b = m->child; b; b = b->next, bi++) {
        uint32_t child;
        if (emit_node(c, b, &child) < 0)
          return -1;
        AT(c, branches, uint32_t, fb + bi) = child;
      }
      AT(c, ors, forgrp_t, fo + oi++) = (forgrp_t){fb, nb};
      continue;
    }
    fkey_t k = {0};
    size_t nlen = strlen(m->string);
    size_t old = path_push(c, m->string);
    k.name_off = blob_add(c, m->string, nlen);
    k.name_len = (uint32_t)nlen;
    int rc = k.name_off == UINT32_MAX ? -1
             : cJSON_IsArray(m)       ? emit_leaf(c, m, &k)
                                      : emit_node(c, m, &k.child);
    path_pop(c, old);
    if (rc < 0)
      return -1;
    AT(c, keys, fkey_t, fk + ki++) = k;
  }
  return 0;
}

/* ---- assembly ------------------------------------------------------------ */

static size_t align8(size_t n) {
  return (n + 7) & ~(size_t)7;
}

/* Copies the built arrays into one block. Returns it, or NULL when out of
 * memory (after reporting it). */
static filter_t *finish(cc_t *c) {
  size_t sz_nodes = (size_t)c->nodes.n * sizeof(fnode_t);
  size_t sz_keys = (size_t)c->keys.n * sizeof(fkey_t);
  size_t sz_conds = (size_t)c->conds.n * sizeof(fcond_t);
  size_t sz_ors = (size_t)c->ors.n * sizeof(forgrp_t);
  size_t sz_br = (size_t)c->branches.n * sizeof(uint32_t);
  size_t total = align8(sizeof(filter_t)) + align8(sz_nodes) + align8(sz_keys) + align8(sz_conds) +
                 align8(sz_ors) + align8(sz_br) + c->blob.n + 1;
  char *block = malloc(total);
  if (!block) {
    out_of_memory(c);
    return NULL;
  }
  filter_t *f = (filter_t *)block;
  char *p = block + align8(sizeof(filter_t));
#define PLACE(field, vec, sz)                                                                      \
  do {                                                                                             \
    if (sz)                                                                                        \
      memcpy(p, c->vec.p, sz);                                                                     \
    f->field = (void *)p;                                                                          \
    p += align8(sz);                                                                               \
  } while (0)
  PLACE(nodes, nodes, sz_nodes);
  PLACE(keys, keys, sz_keys);
  PLACE(conds, conds, sz_conds);
  PLACE(ors, ors, sz_ors);
  PLACE(branches, branches, sz_br);
#undef PLACE
  if (c->blob.n)
    memcpy(p, c->blob.p, c->blob.n);
  p[c->blob.n] = '\0';
  f->blob = p;
  f->scope = c->scope;
  f->nnodes = c->nodes.n;
  f->nkeys = c->keys.n;
  f->nconds = c->conds.n;
  f->nors = c->ors.n;
  f->nbranches = c->branches.n;
  f->blob_len = c->blob.n;
  return f;
}

filter_t *filter_compile(const char *json, size_t len, int scope, gbx_errbuf_t *eb) {
  cc_t c = {.scope = scope, .eb = eb};
  cJSON *doc = NULL;
  filter_t *f = NULL;
  uint64_t comb = 0, keys = 0;
  uint32_t root;

  if (scope != FILTER_SCOPE_ATTRIBUTES && scope != FILTER_SCOPE_BODY) {
    fail(&c, "unknown filter scope %d", scope);
    goto fail;
  }
  if (len > FILTER_MAX_POLICY_BYTES) {
    fail(&c, "policy is %zu bytes, more than %u", len, FILTER_MAX_POLICY_BYTES);
    goto fail;
  }
  if (!json)
    len = 0;
  if (!utf8_valid((const uint8_t *)json, len)) { /* SNS requires it */
    fail(&c, "policy is not valid UTF-8");
    goto fail;
  }
  /* cJSON would end a string at it: "a\u0000" would compile as "a" */
  if (json_has_nul(json, len)) {
    fail(&c, "policy holds a NUL character (\\u0000)");
    goto fail;
  }
  doc = filter_json_parse(json, len);
  if (!doc) {
    fail(&c, "policy is not valid JSON");
    goto fail;
  }
  if (!cJSON_IsObject(doc)) {
    fail(&c, "policy must be a JSON object");
    goto fail;
  }
  if (doc->child) { /* {} is the empty policy: it matches every message */
    if (measure(&c, doc, 1, 1, &comb, &keys) < 0)
      goto fail;
    if (keys > FILTER_MAX_KEYS) {
      fail(&c, "policy has %llu keys, more than %u", (unsigned long long)keys, FILTER_MAX_KEYS);
      goto fail;
    }
    if (comb > FILTER_MAX_COMBINATIONS) {
      fail(&c, "policy has %s%llu combinations, more than %u", comb >= SAT_CAP ? "over " : "",
           (unsigned long long)comb, FILTER_MAX_COMBINATIONS);
      goto fail;
    }
  }
  if (emit_node(&c, doc, &root) < 0)
    goto fail;
  f = finish(&c);

fail:
  cJSON_Delete(doc);
  free(c.nodes.p);
  free(c.keys.p);
  free(c.conds.p);
  free(c.ors.p);
  free(c.branches.p);
  free(c.blob.p);
  return f;
}

void filter_free(filter_t *f) {
  free(f);
}

int filter_scope(const filter_t *f) {
  return f->scope;
}
