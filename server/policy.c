/* policy.c - IAM-style policy documents: a strict parser that compiles a
 * document into one flat block, and the evaluator that runs per request.
 *
 * Two walks over the cJSON tree share one function: the first (out == NULL)
 * checks every key and value and counts statements, patterns and bytes; the
 * second fills a single allocation sized from those counts. Everything in
 * the block is addressed by offsets, so a copy is one memcpy.
 *
 * Statements are stored Deny first. Evaluation walks them in that order: the
 * first matching statement decides, because once the Deny statements are
 * behind us a matching Allow can no longer be overruled.
 *
 * What the parser refuses, and why: NotAction, NotResource, NotPrincipal and
 * Condition would change what a statement covers; silently skipping them
 * would make an Allow wider or a Deny narrower than its author wrote. The
 * same goes for policy variables ("${aws:username}"), which would be matched
 * as literal text. Unknown and duplicate keys are refused so a typo
 * ("Efect") is an error, not a statement that quietly means something else. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "policy.h"

/* Pattern kinds. */
enum {
  PAT_ANY = 0,     /* "*": everything */
  PAT_GLOB = 1,    /* matched against the whole subject (actions, ARN resources) */
  PAT_NAME = 2,    /* plain resource name: matched against an ARN's resource part */
  PAT_ACCOUNT = 3, /* bare account id principal: matched against the asker's account */
  PAT_PARN = 4     /* principal ARN: matched against the asker's user and root ARNs */
};

/* Which list of a statement a pattern belongs to. */
enum field { F_ACTION, F_RESOURCE, F_PRINCIPAL };

typedef struct pat {
  uint32_t off; /* into the string blob */
  uint32_t len;
  uint32_t kind;
} pat_t;

typedef struct stmt {
  uint32_t deny;
  uint32_t act, nact; /* first pattern index and count */
  uint32_t res, nres;
  uint32_t prin, nprin; /* nprin == 0: no Principal (identity policies) */
} stmt_t;

struct policy {
  size_t size; /* bytes of the whole block */
  policy_kind_t kind;
  uint32_t nstmt, npat;
  size_t pat_off, blob_off; /* from the start of the block */
  stmt_t st[];
};

/* The parse context of both walks. */
typedef struct pc {
  policy_kind_t kind;
  char *err;
  size_t errlen;
  policy_t *out;  /* NULL while measuring */
  uint32_t nstmt; /* measured */
  uint32_t npat;  /* measured, then the fill cursor */
  size_t bytes;   /* measured, then the fill cursor */
} pc_t;

static int perr(pc_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(pc_t *c, const char *fmt, ...) {
  va_list ap;
  if (c->err && c->errlen) {
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* Bytes of outside text shown in a message. */
#define SHOWN_MAX 64u

/* s cut to SHOWN_MAX bytes, bytes outside printable ASCII as '?', so a
 * message (and the log line it may become) holds no control characters. */
static const char *shown(const char *s, char buf[SHOWN_MAX + 1]) {
  size_t i = 0;
  for (; s && s[i] && i < SHOWN_MAX; i++)
    buf[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
  buf[i] = 0;
  return buf;
}

static pat_t *pats_of(const policy_t *p) {
  return (pat_t *)((char *)p + p->pat_off);
}

static const char *blob_of(const policy_t *p) {
  return (const char *)p + p->blob_off;
}

/* ---- matching ------------------------------------------------------------ */

static unsigned char fold(unsigned char ch) {
  return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

int policy_match(const char *pattern, size_t plen, const char *s, size_t slen, int ci) {
  /* Greedy two-pointer glob: on a mismatch after a '*', retry with the star
   * swallowing one more subject byte. Only the last star is ever retried,
   * which is enough for patterns of '*' and '?', and bounds the work by
   * plen * slen with no recursion. */
  size_t p = 0, i = 0, star = SIZE_MAX, mark = 0;
  while (i < slen) {
    if (p < plen && pattern[p] == '*') {
      star = p++;
      mark = i;
    } else if (p < plen && (pattern[p] == '?' ||
                            (ci ? fold((unsigned char)pattern[p]) == fold((unsigned char)s[i])
                                : pattern[p] == s[i]))) {
      p++;
      i++;
    } else if (star != SIZE_MAX) {
      p = star + 1;
      i = ++mark;
    } else {
      return 0;
    }
  }
  while (p < plen && pattern[p] == '*')
    p++;
  return p == plen;
}

/* The subject of one evaluation, with the derived strings computed once. */
typedef struct subj {
  const char *action, *resource, *rpart;
  size_t alen, rlen, rplen;
  const policy_subject_t *who;
  char *user_arn, *root_arn; /* built on first use for PAT_PARN */
  size_t ulen, rootlen;
  int arns_state; /* 0: not built, 1: built, -1: out of memory */
  char buf[512];
} subj_t;

/* Builds arn:aws:iam::ACCOUNT:user/NAME and arn:aws:iam::ACCOUNT:root. */
static int build_arns(subj_t *s) {
  if (s->arns_state)
    return s->arns_state;
  const char *acct = s->who->account ? s->who->account : "";
  const char *name = s->who->name ? s->who->name : "";
  size_t al = strlen(acct), nl = strlen(name);
  size_t need = (13 + al + 6 + nl + 1) + (13 + al + 5 + 1);
  char *b = need <= sizeof s->buf ? s->buf : malloc(need);
  if (!b) {
    s->arns_state = -1;
    return -1;
  }
  s->user_arn = b;
  s->ulen = (size_t)sprintf(b, "arn:aws:iam::%s:user/%s", acct, name);
  s->root_arn = b + s->ulen + 1;
  s->rootlen = (size_t)sprintf(s->root_arn, "arn:aws:iam::%s:root", acct);
  s->arns_state = 1;
  return 1;
}

/* 1 if one of the n patterns from `first` matches, 0 if none, -1 when the
 * principal ARNs could not be built (out of memory). */
static int any_matches(const policy_t *p, uint32_t first, uint32_t n, enum field f, subj_t *s) {
  const pat_t *pt = pats_of(p) + first;
  const char *blob = blob_of(p);
  for (uint32_t k = 0; k < n; k++) {
    const char *ps = blob + pt[k].off;
    size_t pl = pt[k].len;
    switch (pt[k].kind) {
    case PAT_ANY:
      return 1;
    case PAT_GLOB:
      if (f == F_ACTION ? policy_match(ps, pl, s->action, s->alen, 1)
                        : policy_match(ps, pl, s->resource, s->rlen, 0))
        return 1;
      break;
    case PAT_NAME:
      if (policy_match(ps, pl, s->rpart, s->rplen, 0))
        return 1;
      break;
    case PAT_ACCOUNT: {
      const char *a = s->who->account ? s->who->account : "";
      if (policy_match(ps, pl, a, strlen(a), 0))
        return 1;
      break;
    }
    case PAT_PARN:
      if (build_arns(s) < 0)
        return -1;
      if (policy_match(ps, pl, s->user_arn, s->ulen, 0) ||
          policy_match(ps, pl, s->root_arn, s->rootlen, 0))
        return 1;
      break;
    default:
      break;
    }
  }
  return 0;
}

policy_effect_t policy_eval(const policy_t *p, const policy_subject_t *who, const char *action,
                            const char *resource) {
  if (!p || !action || !resource)
    return POLICY_NONE;
  subj_t s;
  s.action = action;
  s.alen = strlen(action);
  s.resource = resource;
  s.rlen = strlen(resource);
  s.who = who;
  s.arns_state = 0;
  /* the resource part follows the 5th ':' (arn:partition:service:region:
   * account:resource); a string with fewer colons is all resource part */
  s.rpart = resource;
  s.rplen = s.rlen;
  int colons = 0;
  for (size_t i = 0; i < s.rlen; i++)
    if (resource[i] == ':' && ++colons == 5) {
      s.rpart = resource + i + 1;
      s.rplen = s.rlen - i - 1;
      break;
    }

  policy_effect_t verdict = POLICY_NONE;
  for (uint32_t i = 0; i < p->nstmt; i++) {
    const stmt_t *st = &p->st[i];
    int m = any_matches(p, st->act, st->nact, F_ACTION, &s);
    if (m == 1)
      m = any_matches(p, st->res, st->nres, F_RESOURCE, &s);
    if (m == 1 && st->nprin)
      m = who ? any_matches(p, st->prin, st->nprin, F_PRINCIPAL, &s) : 0;
    if (m < 0) {
      /* out of memory deciding a principal: fail closed */
      verdict = POLICY_DENY;
      break;
    }
    if (m == 1) {
      verdict = st->deny ? POLICY_DENY : POLICY_ALLOW; /* Deny statements come first */
      break;
    }
  }
  if (s.arns_state == 1 && s.user_arn != s.buf)
    free(s.user_arn);
  return verdict;
}

/* ---- parsing ------------------------------------------------------------- */

static const char *field_key(enum field f) {
  return f == F_ACTION ? "Action" : f == F_RESOURCE ? "Resource" : "Principal";
}

static int is_action_char(unsigned char ch, int service) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '*' || ch == '?' || (service && ch == '-');
}

/* Checks one pattern of field f in statement idx, classifies it and (in the
 * fill walk) stores it. */
static int add_pattern(pc_t *c, uint32_t idx, enum field f, const char *v) {
  const char *key = field_key(f);
  size_t n = strlen(v);
  uint32_t kind;
  char sb[SHOWN_MAX + 1];

  if (n == 0 || n > POLICY_MAX_PATTERN)
    return perr(c, "Statement[%u].%s: a pattern must be 1-%u bytes, not %zu", idx, key,
                POLICY_MAX_PATTERN, n);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)v[i];
    if (ch <= 0x20 || ch >= 0x7f)
      return perr(c, "Statement[%u].%s: \"%s\" holds a space, control or non-ASCII byte", idx, key,
                  shown(v, sb));
  }
  if (strstr(v, "${"))
    return perr(c,
                "Statement[%u].%s: \"%.64s\": policy variables are not supported (matching "
                "them as literal text would change what the policy allows)",
                idx, key, v);
  if (n == 1 && v[0] == '*') {
    kind = PAT_ANY;
  } else if (f == F_ACTION) {
    const char *colon = strchr(v, ':');
    int ok = colon && colon != v && colon[1] && !strchr(colon + 1, ':');
    for (const char *q = v; ok && q < colon; q++)
      ok = is_action_char((unsigned char)*q, 1);
    for (const char *q = colon ? colon + 1 : v; ok && *q; q++)
      ok = is_action_char((unsigned char)*q, 0);
    if (!ok)
      return perr(c, "Statement[%u].Action: \"%.64s\" is not \"*\" or \"service:Name\"", idx, v);
    kind = PAT_GLOB;
  } else if (!strncmp(v, "arn:", 4)) {
    kind = f == F_RESOURCE ? PAT_GLOB : PAT_PARN;
  } else if (strchr(v, ':')) {
    return perr(c,
                "Statement[%u].%s: \"%.64s\" is neither \"*\", an ARN (\"arn:...\") nor %s "
                "without ':'",
                idx, key, v, f == F_RESOURCE ? "a name" : "an account id");
  } else {
    kind = f == F_RESOURCE ? PAT_NAME : PAT_ACCOUNT;
  }

  if (!c->out) {
    if (c->npat >= UINT32_MAX - 1 || c->bytes > POLICY_MAX_BYTES)
      return perr(c, "policy is too large");
    c->npat++;
    c->bytes += n;
    if (c->bytes > POLICY_MAX_BYTES)
      return perr(c, "policy patterns total more than %u bytes", POLICY_MAX_BYTES);
    return 0;
  }
  pat_t *pt = pats_of(c->out) + c->npat++;
  pt->off = (uint32_t)c->bytes;
  pt->len = (uint32_t)n;
  pt->kind = kind;
  memcpy((char *)c->out + c->out->blob_off + c->bytes, v, n);
  c->bytes += n;
  return 0;
}

/* A string or an array of 1..POLICY_MAX_ITEMS strings; sets *first, *n. */
static int add_list(pc_t *c, uint32_t idx, enum field f, const cJSON *v, uint32_t *first,
                    uint32_t *n) {
  const char *key = field_key(f);
  *first = c->npat;
  if (cJSON_IsString(v)) {
    *n = 1;
    return add_pattern(c, idx, f, v->valuestring);
  }
  if (!cJSON_IsArray(v))
    return perr(c, "Statement[%u].%s: must be a string or an array of strings", idx, key);
  uint32_t k = 0;
  for (const cJSON *e = v->child; e; e = e->next) {
    if (++k > POLICY_MAX_ITEMS)
      return perr(c, "Statement[%u].%s: more than %u entries", idx, key, POLICY_MAX_ITEMS);
    if (!cJSON_IsString(e))
      return perr(c, "Statement[%u].%s: entry %u is not a string", idx, key, k - 1);
    if (add_pattern(c, idx, f, e->valuestring) < 0)
      return -1;
  }
  if (k == 0)
    return perr(c, "Statement[%u].%s: must not be an empty array", idx, key);
  *n = k;
  return 0;
}

static int add_principal(pc_t *c, uint32_t idx, const cJSON *v, uint32_t *first, uint32_t *n) {
  char sb[SHOWN_MAX + 1];
  if (cJSON_IsString(v)) {
    if (strcmp(v->valuestring, "*") != 0)
      return perr(c,
                  "Statement[%u].Principal: a string Principal must be \"*\"; name accounts "
                  "and users as {\"AWS\": [...]}",
                  idx);
    *first = c->npat;
    *n = 1;
    return add_pattern(c, idx, F_PRINCIPAL, "*");
  }
  if (!cJSON_IsObject(v))
    return perr(c, "Statement[%u].Principal: must be \"*\" or {\"AWS\": ...}", idx);
  const cJSON *aws = NULL;
  for (const cJSON *e = v->child; e; e = e->next) {
    if (strcmp(e->string, "AWS") != 0)
      return perr(c, "Statement[%u].Principal.%s: only \"AWS\" principals are supported", idx,
                  shown(e->string, sb));
    if (aws)
      return perr(c, "Statement[%u].Principal.AWS: duplicate key", idx);
    aws = e;
  }
  if (!aws)
    return perr(c, "Statement[%u].Principal: must hold \"AWS\"", idx);
  return add_list(c, idx, F_PRINCIPAL, aws, first, n);
}

/* Keys a statement may hold, and the refused ones with their reason. */
static const char *const stmt_keys[] = {"Sid", "Effect", "Action", "Resource", "Principal"};
static const char *const unsupported_keys[] = {"NotAction", "NotResource", "NotPrincipal",
                                               "Condition"};

/* Checks statement idx (a JSON object) and, in the fill walk, stores it in
 * *st. */
static int add_statement(pc_t *c, uint32_t idx, const cJSON *o, stmt_t *st) {
  const cJSON *v[5] = {0};
  char sb[SHOWN_MAX + 1];
  if (!cJSON_IsObject(o))
    return perr(c, "Statement[%u]: must be an object", idx);
  for (const cJSON *e = o->child; e; e = e->next) {
    size_t k;
    for (k = 0; k < 5 && strcmp(e->string, stmt_keys[k]) != 0; k++)
      ;
    if (k < 5) {
      if (v[k])
        return perr(c, "Statement[%u].%s: duplicate key", idx, stmt_keys[k]);
      v[k] = e;
      continue;
    }
    for (k = 0; k < 4; k++)
      if (!strcmp(e->string, unsupported_keys[k]))
        return perr(c,
                    "Statement[%u].%s: not supported, so the policy is refused: ignoring it would "
                    "change what the policy allows",
                    idx, unsupported_keys[k]);
    return perr(c, "Statement[%u].%s: unknown key", idx, shown(e->string, sb));
  }
  const cJSON *sid = v[0], *eff = v[1], *act = v[2], *res = v[3], *pri = v[4];
  if (sid && !cJSON_IsString(sid))
    return perr(c, "Statement[%u].Sid: must be a string", idx);
  if (!eff)
    return perr(c, "Statement[%u].Effect: missing", idx);
  if (!cJSON_IsString(eff) ||
      (strcmp(eff->valuestring, "Allow") != 0 && strcmp(eff->valuestring, "Deny") != 0))
    return perr(c, "Statement[%u].Effect: must be \"Allow\" or \"Deny\"", idx);
  if (!act)
    return perr(c, "Statement[%u].Action: missing", idx);
  if (!res)
    return perr(c, "Statement[%u].Resource: missing", idx);
  if (c->kind == POLICY_RESOURCE && !pri)
    return perr(c, "Statement[%u].Principal: missing (a resource policy must say who)", idx);
  if (c->kind == POLICY_IDENTITY && pri)
    return perr(c,
                "Statement[%u].Principal: not allowed in an identity policy (it applies to the "
                "principal it is attached to)",
                idx);
  stmt_t tmp;
  if (!st)
    st = &tmp;
  memset(st, 0, sizeof *st);
  st->deny = eff->valuestring[0] == 'D';
  if (add_list(c, idx, F_ACTION, act, &st->act, &st->nact) < 0 ||
      add_list(c, idx, F_RESOURCE, res, &st->res, &st->nres) < 0)
    return -1;
  if (pri && add_principal(c, idx, pri, &st->prin, &st->nprin) < 0)
    return -1;
  return 0;
}

/* Walks the document. Measuring (c->out NULL): checks everything and counts.
 * Filling: stores Deny statements first, then Allow ones. */
static int walk(pc_t *c, const cJSON *doc) {
  const cJSON *ver = NULL, *id = NULL, *stm = NULL;
  char sb[SHOWN_MAX + 1];
  if (!cJSON_IsObject(doc))
    return perr(c, "policy must be a JSON object");
  for (const cJSON *e = doc->child; e; e = e->next) {
    const cJSON **slot = !strcmp(e->string, "Version")     ? &ver
                         : !strcmp(e->string, "Id")        ? &id
                         : !strcmp(e->string, "Statement") ? &stm
                                                           : NULL;
    if (!slot)
      return perr(c, "%s: unknown key (a policy holds Version, Id and Statement)",
                  shown(e->string, sb));
    if (*slot)
      return perr(c, "%s: duplicate key", e->string);
    *slot = e;
  }
  if (ver && (!cJSON_IsString(ver) || (strcmp(ver->valuestring, "2012-10-17") != 0 &&
                                       strcmp(ver->valuestring, "2008-10-17") != 0)))
    return perr(c, "Version: must be \"2012-10-17\" or \"2008-10-17\"");
  if (id && !cJSON_IsString(id))
    return perr(c, "Id: must be a string");
  if (!stm)
    return perr(c, "Statement: missing");

  if (cJSON_IsObject(stm)) {
    if (!c->out) {
      c->nstmt = 1;
      return add_statement(c, 0, stm, NULL);
    }
    return add_statement(c, 0, stm, &c->out->st[0]);
  }
  if (!cJSON_IsArray(stm))
    return perr(c, "Statement: must be an object or an array of objects");
  if (!c->out) {
    uint32_t k = 0;
    for (const cJSON *e = stm->child; e; e = e->next, k++) {
      if (k >= POLICY_MAX_STATEMENTS)
        return perr(c, "Statement: more than %u statements", POLICY_MAX_STATEMENTS);
      if (add_statement(c, k, e, NULL) < 0)
        return -1;
    }
    if (k == 0)
      return perr(c, "Statement: must not be an empty array");
    c->nstmt = k;
    return 0;
  }
  uint32_t at = 0;
  for (int pass = 0; pass < 2; pass++) {
    uint32_t k = 0;
    for (const cJSON *e = stm->child; e; e = e->next, k++) {
      const cJSON *eff = cJSON_GetObjectItemCaseSensitive(e, "Effect");
      int deny = eff->valuestring[0] == 'D'; /* checked by the measuring walk */
      if (deny != (pass == 0))
        continue;
      if (add_statement(c, k, e, &c->out->st[at++]) < 0)
        return -1;
    }
  }
  return 0;
}

static size_t align8(size_t n) {
  return (n + 7) & ~(size_t)7;
}

policy_t *policy_from_json(const cJSON *doc, policy_kind_t kind, char *err, size_t errlen) {
  pc_t c = {.kind = kind, .err = err, .errlen = errlen};
  policy_t *p = NULL;

  if (err && errlen)
    err[0] = 0;
  if (kind != POLICY_IDENTITY && kind != POLICY_RESOURCE) {
    perr(&c, "unknown policy kind %d", (int)kind);
    goto fail;
  }
  if (!doc) {
    perr(&c, "policy is missing");
    goto fail;
  }
  if (walk(&c, doc) < 0)
    goto fail;
  /* every count is bounded by the limits checked above: at most 100
   * statements, 30,000 patterns and POLICY_MAX_BYTES bytes */
  size_t pat_off = align8(sizeof(policy_t) + (size_t)c.nstmt * sizeof(stmt_t));
  size_t blob_off = pat_off + (size_t)c.npat * sizeof(pat_t);
  size_t size = blob_off + c.bytes;
  p = calloc(1, size);
  if (!p) {
    perr(&c, "out of memory parsing the policy");
    goto fail;
  }
  p->size = size;
  p->kind = kind;
  p->nstmt = c.nstmt;
  p->npat = c.npat;
  p->pat_off = pat_off;
  p->blob_off = blob_off;
  c.out = p;
  c.npat = 0;
  c.bytes = 0;
  if (walk(&c, doc) < 0) { /* cannot happen: the measuring walk passed */
    perr(&c, "internal error: policy changed between walks");
    goto fail;
  }
  return p;

fail:
  free(p);
  return NULL;
}

policy_t *policy_parse(const char *json, size_t len, policy_kind_t kind, char *err, size_t errlen) {
  pc_t c = {.kind = kind, .err = err, .errlen = errlen};
  cJSON *doc = NULL;
  const char *end = NULL;
  policy_t *p = NULL;

  if (len > POLICY_MAX_BYTES) {
    perr(&c, "policy is %zu bytes, more than %u", len, POLICY_MAX_BYTES);
    goto fail;
  }
  if (!json || len == 0) {
    perr(&c, "policy is empty");
    goto fail;
  }
  doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (doc) {
    /* cJSON stops after the first value; only whitespace may follow */
    for (const char *q = end; q < json + len; q++)
      if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
        perr(&c, "policy has text after the JSON document (offset %zu)", (size_t)(q - json));
        goto fail;
      }
  } else {
    size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
    perr(&c, "policy is not valid JSON (near offset %zu)", off);
    goto fail;
  }
  p = policy_from_json(doc, kind, err, errlen);

fail:
  cJSON_Delete(doc);
  return p;
}

policy_t *policy_clone(const policy_t *p) {
  if (!p)
    return NULL;
  policy_t *q = malloc(p->size);
  if (q)
    memcpy(q, p, p->size);
  return q;
}

void policy_free(policy_t *p) {
  free(p);
}
