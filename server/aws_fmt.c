/* aws_fmt.c - see aws_fmt.h. */
#include "aws_fmt.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* Form parameters per request. The largest legal request, a batch of 10
 * messages with 10 attributes of 3 fields each, carries about 350. */
#define FORM_MAX_PARAMS 2048u
/* Dots per parameter name ("SendMessageBatchRequestEntry.1.MessageAttribute.2.Value.StringValue"
 * has 5); more is not a name any action reads. */
#define FORM_MAX_DEPTH 8u
/* List indexes (1-based) above this cannot be valid: no list is longer. */
#define FORM_MAX_INDEX 1000u

static const struct {
  int status;
  const char *code, *type;
  int sender;
} errs[] = {{0, "", "", 0},
#define AWS_X(sym, st, code, type, sender) {st, code, type, sender},
            AWS_ERRORS(AWS_X)
#undef AWS_X
};

const char *aws_err_code(aws_err_t e) {
  return errs[e].code;
}

/* ---- answering ---- */

void aws_req_free(areq_t *r) {
  if (!r)
    return;
  cJSON_Delete(r->in);
  free(r);
}

static void respond(areq_t *r, int status, const char *ctype, const char *extra, const void *body,
                    size_t len) {
  http_respond(r->h, status, ctype, extra, body, len, server_gate(r->s));
}

void aws_reply_raw(areq_t *r, int status, const char *ctype, const void *body, size_t len) {
  respond(r, status, ctype, NULL, body, len);
  aws_req_free(r);
}

static void xml_open(gbx_buf_t *b, const char *tag) {
  gbx_buf_append(b, "<", 1);
  gbx_buf_append(b, tag, strlen(tag));
  gbx_buf_append(b, ">", 1);
}

static void xml_close(gbx_buf_t *b, const char *tag) {
  gbx_buf_append(b, "</", 2);
  gbx_buf_append(b, tag, strlen(tag));
  gbx_buf_append(b, ">", 1);
}

static void xml_elem(gbx_buf_t *b, const char *tag, const char *text) {
  xml_open(b, tag);
  aws_xml_escape(b, text, strlen(text));
  xml_close(b, tag);
}

static void xml_node(gbx_buf_t *b, const char *tag, const cJSON *v, int sns, const char *entry);

/* The children of an object, each as an element named by its key. */
static void xml_children(gbx_buf_t *b, const cJSON *o, int sns, const char *entry) {
  for (const cJSON *c = o->child; c; c = c->next)
    xml_node(b, c->string, c, sns, entry);
}

static void xml_scalar(gbx_buf_t *b, const char *tag, const cJSON *v) {
  char num[32];
  if (cJSON_IsString(v)) {
    xml_elem(b, tag, v->valuestring);
  } else if (cJSON_IsBool(v)) {
    xml_elem(b, tag, cJSON_IsTrue(v) ? "true" : "false");
  } else if (cJSON_IsNumber(v)) {
    snprintf(num, sizeof(num), "%.0f", v->valuedouble);
    xml_elem(b, tag, num);
  }
}

/* SQS's query protocol flattens lists and maps: each item is an element of
 * its own, named per list; SNS wraps lists in <member> and maps in
 * <entry><key/><value/></entry>. */
static void xml_node(gbx_buf_t *b, const char *tag, const cJSON *v, int sns, const char *entry) {
  if (sns) {
    if (cJSON_IsArray(v)) {
      xml_open(b, tag);
      for (const cJSON *c = v->child; c; c = c->next)
        xml_node(b, "member", c, sns, entry);
      xml_close(b, tag);
    } else if (cJSON_IsObject(v) && strcmp(tag, "Attributes") == 0) {
      xml_open(b, tag);
      for (const cJSON *c = v->child; c; c = c->next) {
        xml_open(b, "entry");
        xml_elem(b, "key", c->string);
        xml_scalar(b, "value", c);
        xml_close(b, "entry");
      }
      xml_close(b, tag);
    } else if (cJSON_IsObject(v)) {
      xml_open(b, tag);
      xml_children(b, v, sns, entry);
      xml_close(b, tag);
    } else {
      xml_scalar(b, tag, v);
    }
    return;
  }
  if (cJSON_IsObject(v) &&
      (!strcmp(tag, "Attributes") || !strcmp(tag, "Tags") || !strcmp(tag, "MessageAttributes"))) {
    const char *item = !strcmp(tag, "Attributes") ? "Attribute"
                       : !strcmp(tag, "Tags")     ? "Tag"
                                                  : "MessageAttribute";
    const char *kname = !strcmp(tag, "Tags") ? "Key" : "Name";
    for (const cJSON *c = v->child; c; c = c->next) {
      xml_open(b, item);
      xml_elem(b, kname, c->string);
      if (cJSON_IsObject(c)) {
        xml_open(b, "Value");
        xml_children(b, c, sns, entry);
        xml_close(b, "Value");
      } else {
        xml_scalar(b, "Value", c);
      }
      xml_close(b, item);
    }
    return;
  }
  if (cJSON_IsArray(v)) {
    const char *item = !strcmp(tag, "QueueUrls") || !strcmp(tag, "queueUrls") ? "QueueUrl"
                       : !strcmp(tag, "Messages")                             ? "Message"
                       : !strcmp(tag, "Successful")                           ? entry
                       : !strcmp(tag, "Failed")  ? "BatchResultErrorEntry"
                       : !strcmp(tag, "Results") ? "ListMessageMoveTasksResultEntry"
                                                 : tag;
    for (const cJSON *c = v->child; c; c = c->next)
      xml_node(b, item, c, sns, entry);
    return;
  }
  if (cJSON_IsObject(v)) {
    xml_open(b, tag);
    xml_children(b, v, sns, entry);
    xml_close(b, tag);
    return;
  }
  xml_scalar(b, tag, v);
}

static const char *xmlns(int svc) {
  return svc == AWS_SNS ? "http://sns.amazonaws.com/doc/2010-03-31/"
                        : "http://queue.amazonaws.com/doc/2012-11-05/";
}

void aws_reply(areq_t *r, cJSON *result) {
  gbx_buf_t *b = &r->a->out;
  char extra[96];
  b->len = 0;
  snprintf(extra, sizeof(extra), "x-amzn-RequestId: %s\r\n", r->rid);
  if (r->json) {
    char *text = result ? cJSON_PrintUnformatted(result) : NULL;
    if (text) {
      gbx_buf_append(b, text, strlen(text));
      free(text);
    } else {
      gbx_buf_append(b, "{}", 2);
    }
    respond(r, 200, "application/x-amz-json-1.0", extra, b->data, b->len);
  } else {
    char tag[96];
    static const char decl[] = "<?xml version=\"1.0\"?>";
    gbx_buf_append(b, decl, sizeof(decl) - 1);
    snprintf(tag, sizeof(tag), "%sResponse", r->action);
    gbx_buf_append(b, "<", 1);
    gbx_buf_append(b, tag, strlen(tag));
    gbx_buf_append(b, " xmlns=\"", 8);
    gbx_buf_append(b, xmlns(r->svc), strlen(xmlns(r->svc)));
    gbx_buf_append(b, "\">", 2);
    /* always present: botocore looks for the result wrapper of every
     * action that has an output shape, even an empty one */
    char rtag[96], entry[96];
    snprintf(rtag, sizeof(rtag), "%sResult", r->action);
    snprintf(entry, sizeof(entry), "%sResultEntry", r->action);
    xml_open(b, rtag);
    if (result)
      xml_children(b, result, r->svc == AWS_SNS, entry);
    xml_close(b, rtag);
    xml_open(b, "ResponseMetadata");
    xml_elem(b, "RequestId", r->rid);
    xml_close(b, "ResponseMetadata");
    xml_close(b, tag);
    respond(r, 200, "text/xml", extra, b->data, b->len);
  }
  cJSON_Delete(result);
  aws_req_free(r);
}

void aws_fail(areq_t *r, aws_err_t e, const char *fmt, ...) {
  char msg[AWS_MAX_ERRMSG], extra[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  gbx_buf_t *b = &r->a->out;
  b->len = 0;
  if (r->json) {
    char type[160];
    const char *t = errs[e].type;
    if (strchr(t, '#'))
      snprintf(type, sizeof(type), "%s", t);
    else
      snprintf(type, sizeof(type), "com.amazonaws.%s#%s", r->svc == AWS_SNS ? "sns" : "sqs", t);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "__type", type);
    cJSON_AddStringToObject(o, "message", msg);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text)
      gbx_buf_append(b, text, strlen(text));
    free(text);
    snprintf(extra, sizeof(extra), "x-amzn-RequestId: %s\r\nx-amzn-query-error: %s;%s\r\n", r->rid,
             errs[e].code, errs[e].sender ? "Sender" : "Receiver");
    respond(r, errs[e].status, "application/x-amz-json-1.0", extra, b->data, b->len);
  } else {
    static const char decl[] = "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"";
    gbx_buf_append(b, decl, sizeof(decl) - 1);
    gbx_buf_append(b, xmlns(r->svc), strlen(xmlns(r->svc)));
    gbx_buf_append(b, "\">", 2);
    xml_open(b, "Error");
    xml_elem(b, "Type", errs[e].sender ? "Sender" : "Receiver");
    xml_elem(b, "Code", errs[e].code);
    xml_elem(b, "Message", msg);
    gbx_buf_append(b, "<Detail/>", 9);
    xml_close(b, "Error");
    xml_elem(b, "RequestId", r->rid);
    xml_close(b, "ErrorResponse");
    snprintf(extra, sizeof(extra), "x-amzn-RequestId: %s\r\n", r->rid);
    respond(r, errs[e].status, "text/xml", extra, b->data, b->len);
  }
  aws_req_free(r);
}

/* ---- form decoding ---- */

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decodes s[0..n) ('+' is a space) into a malloc'd string. */
static char *pct_decode(const char *s, size_t n, size_t *outlen) {
  char *o = malloc(n + 1);
  size_t k = 0;
  if (!o)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        free(o);
        return NULL;
      }
      c = hi * 16 + lo;
      i += 2;
    }
    o[k++] = c ? (char)c : (char)0xFF; /* NUL: see aws_form_decode */
  }
  o[k] = 0;
  *outlen = k;
  return o;
}

static int is_index(const char *seg, size_t n, unsigned *idx) {
  if (!n || n > 4 || seg[0] == '0')
    return 0;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)seg[i]))
      return 0;
    v = v * 10 + (unsigned)(seg[i] - '0');
  }
  *idx = v;
  return v >= 1 && v <= FORM_MAX_INDEX;
}

/* Sets obj[path] = value, creating objects along the way (list indexes
 * stay object keys until fix_lists). */
static int set_path(cJSON *obj, char *key, const char *value, char *err, size_t errlen) {
  char *segs[FORM_MAX_DEPTH];
  unsigned n = 0;
  for (char *p = key;;) {
    if (n == FORM_MAX_DEPTH) {
      snprintf(err, errlen, "parameter name '%.64s' is nested too deeply", key);
      return -1;
    }
    segs[n++] = p;
    char *dot = strchr(p, '.');
    if (!dot)
      break;
    *dot = 0;
    p = dot + 1;
  }
  cJSON *cur = obj;
  for (unsigned i = 0; i < n; i++) {
    const char *seg = segs[i];
    if (!seg[0]) {
      snprintf(err, errlen, "parameter name with an empty part");
      return -1;
    }
    cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, seg);
    if (i + 1 == n) {
      if (next) {
        snprintf(err, errlen, "parameter '%.64s' given twice or conflicting", seg);
        return -1;
      }
      if (!cJSON_AddStringToObject(cur, seg, value))
        return -1;
      return 0;
    }
    if (!next) {
      next = cJSON_AddObjectToObject(cur, seg);
      if (!next)
        return -1;
    } else if (!cJSON_IsObject(next)) {
      snprintf(err, errlen, "parameter '%.64s' given twice or conflicting", seg);
      return -1;
    }
    cur = next;
  }
  return 0;
}

static int cmp_idx(const void *x, const void *y) {
  const cJSON *a = *(cJSON *const *)x, *b = *(cJSON *const *)y;
  return atoi(a->string) - atoi(b->string);
}

static cJSON *fix_lists(cJSON *o, const char *name, char *miss, size_t ml);

/* Replaces child c of o by its fixed form under the same key. */
static cJSON *fix_child(cJSON *o, cJSON *c, char *miss, size_t ml) {
  cJSON *f = fix_lists(c, c->string, miss, ml);
  if (f == c)
    return c;
  char *k = strdup(c->string);
  if (!k)
    abort();
  free(f->string);
  f->string = k;
  cJSON_ReplaceItemViaPointer(o, c, f);
  return f;
}

/* Objects whose keys are all list indexes become arrays in index order;
 * SNS's "member" and "entry" wrappers become lists and maps. An "entry"
 * without its key (Name) or value names itself in miss, when that is still
 * empty ("Attributes.entry.2.key"), and is left out. */
static cJSON *fix_lists(cJSON *o, const char *name, char *miss, size_t ml) {
  if (!cJSON_IsObject(o))
    return o;
  for (cJSON *c = o->child; c; c = c->next)
    c = fix_child(o, c, miss, ml);
  int n = 0, all = o->child != NULL;
  unsigned idx;
  for (cJSON *c = o->child; c; c = c->next, n++)
    if (!is_index(c->string, strlen(c->string), &idx))
      all = 0;
  if (all) {
    cJSON **items = malloc((size_t)n * sizeof(*items));
    cJSON *arr = cJSON_CreateArray();
    if (!items || !arr) {
      free(items);
      cJSON_Delete(arr);
      return o;
    }
    int k = 0;
    for (cJSON *c = o->child; c; c = c->next)
      items[k++] = c;
    qsort(items, (size_t)n, sizeof(*items), cmp_idx);
    for (int i = 0; i < n; i++) {
      cJSON *d = cJSON_DetachItemViaPointer(o, items[i]);
      free(d->string);
      d->string = NULL;
      cJSON_AddItemToArray(arr, d);
    }
    free(items);
    return arr;
  }
  cJSON *only = o->child && !o->child->next ? o->child : NULL;
  if (only && !strcmp(only->string, "member") && cJSON_IsArray(only)) {
    return cJSON_DetachItemViaPointer(o, only);
  }
  if (only && !strcmp(only->string, "entry") && cJSON_IsArray(only)) {
    cJSON *map = cJSON_CreateObject();
    int n = 0;
    for (cJSON *e = only->child; map && e; e = e->next) {
      cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "key");
      cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "value");
      int named = !k && !v; /* MessageAttributes' entries say Name/Value */
      if (!k)
        k = cJSON_GetObjectItemCaseSensitive(e, "Name");
      if (!v)
        v = cJSON_GetObjectItemCaseSensitive(e, "Value");
      n++;
      if (!cJSON_IsString(k) || !v) {
        named = named && (k || v);
        if (!miss[0])
          snprintf(miss, ml, "%.64s.entry.%d.%s", name ? name : "?", n,
                   !cJSON_IsString(k) ? (named ? "Name" : "key") : (named ? "Value" : "value"));
        continue;
      }
      cJSON_AddItemToObject(map, k->valuestring, cJSON_Duplicate(v, 1));
    }
    return map ? map : o;
  }
  return o;
}

/* SQS's flattened query names and their JSON names. kind: 0 list,
 * 1 map of Name/Value items, 2 map of Key/Value items. */
static const struct {
  const char *q, *json;
  int kind;
} sqs_names[] = {
    {"Attribute", "Attributes", 1},
    {"Tag", "Tags", 2},
    {"AttributeName", "AttributeNames", 0},
    {"MessageSystemAttributeName", "MessageSystemAttributeNames", 0},
    {"MessageAttributeName", "MessageAttributeNames", 0},
    {"MessageAttribute", "MessageAttributes", 1},
    {"MessageSystemAttribute", "MessageSystemAttributes", 1},
    {"SendMessageBatchRequestEntry", "Entries", 0},
    {"DeleteMessageBatchRequestEntry", "Entries", 0},
    {"ChangeMessageVisibilityBatchRequestEntry", "Entries", 0},
    {"TagKey", "TagKeys", 0},
    {"AWSAccountId", "AWSAccountIds", 0},
    {"ActionName", "Actions", 0},
    {"StringListValue", "StringListValues", 0},
    {"BinaryListValue", "BinaryListValues", 0},
};

/* Returns 0, or -1 with err naming the part a map entry lacks. */
static int sqs_rename(cJSON *o, char *err, size_t el) {
  if (!cJSON_IsObject(o) && !cJSON_IsArray(o))
    return 0;
  for (cJSON *c = o->child; c; c = c->next)
    if (sqs_rename(c, err, el) != 0)
      return -1;
  if (!cJSON_IsObject(o))
    return 0;
  for (size_t i = 0; i < sizeof(sqs_names) / sizeof(sqs_names[0]); i++) {
    cJSON *c = cJSON_GetObjectItemCaseSensitive(o, sqs_names[i].q);
    if (!c)
      continue;
    c = cJSON_DetachItemViaPointer(o, c);
    if (!cJSON_IsArray(c)) { /* "AttributeName=All" without an index */
      cJSON *arr = cJSON_CreateArray();
      free(c->string);
      c->string = NULL;
      cJSON_AddItemToArray(arr, c);
      c = arr;
    }
    cJSON *v = c;
    if (sqs_names[i].kind) {
      const char *kn = sqs_names[i].kind == 1 ? "Name" : "Key";
      int n = 0;
      v = cJSON_CreateObject();
      for (cJSON *e = c->child; e; e = e->next) {
        cJSON *k = cJSON_GetObjectItemCaseSensitive(e, kn);
        cJSON *val = cJSON_GetObjectItemCaseSensitive(e, "Value");
        n++;
        if (!cJSON_IsString(k) || !val) {
          /* entries are in index order; the index a client used is n when
           * it numbered them from 1 without gaps, as SDKs do */
          snprintf(err, el, "The request must contain the parameter %s.%d.%s.", sqs_names[i].q, n,
                   !cJSON_IsString(k) ? kn : "Value");
          cJSON_Delete(c);
          cJSON_Delete(v);
          return -1;
        }
        cJSON_AddItemToObject(v, k->valuestring, cJSON_Duplicate(val, 1));
      }
      cJSON_Delete(c);
    }
    cJSON *old = cJSON_GetObjectItemCaseSensitive(o, sqs_names[i].json);
    if (old)
      cJSON_DeleteItemFromObjectCaseSensitive(o, sqs_names[i].json);
    cJSON_AddItemToObject(o, sqs_names[i].json, v);
  }
  return 0;
}

int aws_form_decode(const char *s, size_t n, cJSON *obj, char *err, size_t errlen, char *incomplete,
                    size_t il) {
  size_t i = 0;
  unsigned count = 0;
  while (i < n) {
    const char *amp = memchr(s + i, '&', n - i);
    size_t end = amp ? (size_t)(amp - s) : n;
    if (end > i) {
      const char *eq = memchr(s + i, '=', end - i);
      size_t kend = eq ? (size_t)(eq - s) : end;
      size_t kl, vl;
      if (++count > FORM_MAX_PARAMS) {
        snprintf(err, errlen, "more than %u parameters", FORM_MAX_PARAMS);
        return -1;
      }
      char *k = pct_decode(s + i, kend - i, &kl);
      char *v = eq ? pct_decode(eq + 1, end - kend - 1, &vl) : strdup("");
      if (!k || !v) {
        free(k);
        free(v);
        snprintf(err, errlen, "malformed percent-encoding");
        return -1;
      }
      int rc = kl ? set_path(obj, k, v, err, errlen) : 0;
      free(k);
      free(v);
      if (rc)
        return -1;
    }
    i = end + 1;
  }
  incomplete[0] = 0;
  for (cJSON *c = obj->child; c; c = c->next)
    c = fix_child(obj, c, incomplete, il);
  return 0;
}

int aws_form_sqs_shape(cJSON *obj, char *err, size_t errlen) {
  return sqs_rename(obj, err, errlen);
}

const char *aws_str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

int aws_int(const cJSON *o, const char *k, int64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!v || cJSON_IsNull(v))
    return 0;
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d != (double)(int64_t)d || d > 9e15 || d < -9e15)
      return -1;
    *out = (int64_t)d;
    return 1;
  }
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return -1;
  char *end;
  errno = 0;
  long long x = strtoll(v->valuestring, &end, 10);
  if (errno || *end || isspace((unsigned char)v->valuestring[0]))
    return -1;
  *out = x;
  return 1;
}

int aws_bool(const cJSON *o, const char *k, int *out, int *present) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  *present = v != NULL;
  if (!v)
    return 0;
  if (cJSON_IsBool(v)) {
    *out = cJSON_IsTrue(v);
    return 1;
  }
  if (cJSON_IsString(v) && !strcasecmp(v->valuestring, "true"))
    *out = 1;
  else if (cJSON_IsString(v) && !strcasecmp(v->valuestring, "false"))
    *out = 0;
  else
    return -1;
  return 1;
}

/* ---- message attributes ---- */

void aws_mattrs_free(aws_mattrs_t *m) {
  for (uint32_t i = 0; i < m->n; i++)
    free(m->bin[i]);
  m->n = 0;
}

/* Checks packed attributes with the codec's own rules (names, number
 * syntax), so both faces accept exactly the same attributes. */
static int attrs_check(aws_t *a, const gbx_attr_t *at, uint32_t n, char *why, size_t wl) {
  static const uint8_t hdr[] = {0x81, 0xa1, 'a'};
  gbx_buf_t *b = &a->scratch;
  msgpack_packer pk;
  gbx_doc_t d;
  gbx_errbuf_t eb = {0};
  gbx_attr_t tmp[GBX_MAX_ATTRS];
  uint32_t tn;
  b->len = 0;
  gbx_buf_append(b, hdr, sizeof(hdr));
  msgpack_packer_init(&pk, b, gbx_buf_write_cb);
  gbx_attrs_pack(&pk, at, n);
  if (gbx_doc_parse(&d, b->data, b->len, &eb) != GBX_E_OK) {
    snprintf(why, wl, "%s", eb.msg);
    return -1;
  }
  gbx_err_t e = gbx_attrs_decode(gbx_map_get(&d.root, "a"), tmp, &tn, &eb);
  if (!e)
    e = gbx_attrs_check_numbers(tmp, tn, &eb);
  gbx_doc_free(&d);
  if (e)
    snprintf(why, wl, "%s", eb.msg);
  return e ? -1 : 0;
}

aws_err_t aws_mattrs_parse(aws_t *a, const cJSON *ma, aws_mattrs_t *m, char *why, size_t wl) {
  m->n = 0;
  if (!ma)
    return AWS_OK;
  int count = cJSON_GetArraySize(ma);
  if (!cJSON_IsObject(ma)) {
    snprintf(why, wl, "MessageAttributes must be a map.");
    return AWS_E_INVALID_PARAMETER_VALUE;
  }
  if (count > (int)GBX_MAX_ATTRS) {
    snprintf(why, wl, "Number of message attributes [%d] exceeds the allowed maximum [%u].", count,
             GBX_MAX_ATTRS);
    return AWS_E_INVALID_PARAMETER_VALUE;
  }
  for (const cJSON *c = ma->child; c; c = c->next) {
    const char *name = c->string;
    const char *type = aws_str(c, "DataType");
    if (!type || !type[0]) {
      snprintf(why, wl,
               "The message attribute '%.256s' must contain non-empty message attribute type.",
               name);
      return AWS_E_INVALID_PARAMETER_VALUE;
    }
    if (cJSON_GetObjectItemCaseSensitive(c, "StringListValues") ||
        cJSON_GetObjectItemCaseSensitive(c, "BinaryListValues")) {
      snprintf(why, wl,
               "Message attribute list values in SendMessage operation are not supported.");
      return AWS_E_INVALID_PARAMETER_VALUE;
    }
    int bin = !strncmp(type, "Binary", 6),
        str = !strncmp(type, "String", 6) || !strncmp(type, "Number", 6);
    if ((!bin && !str) || (type[6] && type[6] != '.')) {
      snprintf(why, wl,
               "The type of message (user) attribute '%.256s' is invalid. You must use only the "
               "following supported type prefixes: Binary, Number, String.",
               name);
      return AWS_E_INVALID_PARAMETER_VALUE;
    }
    gbx_attr_t *x = &m->a[m->n];
    m->bin[m->n] = NULL;
    x->name = name;
    x->name_len = (uint32_t)strlen(name);
    x->type = type;
    x->type_len = (uint32_t)strlen(type);
    if (bin) {
      const char *b64 = aws_str(c, "BinaryValue");
      size_t bl = b64 ? strlen(b64) : 0;
      uint8_t *buf = bl ? malloc(bl) : NULL;
      long n = buf ? aws_unb64(b64, bl, buf) : -1;
      if (n <= 0) {
        free(buf);
        snprintf(why, wl,
                 "The message attribute '%.256s' must contain non-empty message attribute value "
                 "for message attribute type '%.64s'.",
                 name, type);
        return AWS_E_INVALID_PARAMETER_VALUE;
      }
      m->bin[m->n] = buf;
      x->value = (const char *)buf;
      x->value_len = (uint32_t)n;
    } else {
      const char *v = aws_str(c, "StringValue");
      uint32_t badc;
      if (!v || !v[0]) {
        snprintf(why, wl,
                 "The message attribute '%.256s' must contain non-empty message attribute value "
                 "for message attribute type '%.64s'.",
                 name, type);
        return AWS_E_INVALID_PARAMETER_VALUE;
      }
      if (!text_valid((const uint8_t *)v, strlen(v), &badc)) {
        snprintf(why, wl,
                 "Message (user) attribute '%.256s' value contains invalid character #x%X.", name,
                 badc == 0xFFFFFFFFu ? 0xFFFDu : badc);
        return AWS_E_INVALID_PARAMETER_VALUE;
      }
      x->value = v;
      x->value_len = (uint32_t)strlen(v);
    }
    m->n++;
  }
  if (attrs_check(a, m->a, m->n, why, wl) != 0)
    return AWS_E_INVALID_PARAMETER_VALUE;
  return AWS_OK;
}

/* ---- text and digests ---- */

void aws_xml_escape(gbx_buf_t *b, const char *p, size_t n) {
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    const char *rep = NULL;
    switch (p[i]) {
    case '&':
      rep = "&amp;";
      break;
    case '<':
      rep = "&lt;";
      break;
    case '>':
      rep = "&gt;";
      break;
    case '"':
      rep = "&quot;";
      break;
    case '\'':
      rep = "&apos;";
      break;
    case '\r':
      rep = "&#xD;";
      break;
    default:
      continue;
    }
    gbx_buf_append(b, p + run, i - run);
    gbx_buf_append(b, rep, strlen(rep));
    run = i + 1;
  }
  gbx_buf_append(b, p + run, n - run);
}

void aws_md5_hex(const void *p, size_t n, char out[33]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned ml = 0;
  static const char hex[] = "0123456789abcdef";
  EVP_Digest(p, n, md, &ml, EVP_md5(), NULL);
  for (unsigned i = 0; i < 16; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[32] = 0;
}

static int attr_cmp(const void *x, const void *y) {
  const gbx_attr_t *a = *(const gbx_attr_t *const *)x, *b = *(const gbx_attr_t *const *)y;
  size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
  int c = memcmp(a->name, b->name, n);
  return c ? c : (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

static void md5_len(EVP_MD_CTX *m, const void *p, uint32_t n) {
  uint8_t l[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
  EVP_DigestUpdate(m, l, 4);
  EVP_DigestUpdate(m, p, n);
}

int aws_attrs_md5(const gbx_attr_t *a, uint32_t n, char out[33]) {
  /* a received message can carry its 10 attributes plus Gearbox.BodyEncoding */
  const gbx_attr_t *sorted[GBX_MAX_ATTRS + 1];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned ml = 0;
  static const char hex[] = "0123456789abcdef";
  if (!n || n > GBX_MAX_ATTRS + 1)
    return -1;
  for (uint32_t i = 0; i < n; i++)
    sorted[i] = &a[i];
  qsort(sorted, n, sizeof(*sorted), attr_cmp);
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  if (!m)
    return -1;
  EVP_DigestInit_ex(m, EVP_md5(), NULL);
  for (uint32_t i = 0; i < n; i++) {
    const gbx_attr_t *x = sorted[i];
    uint8_t transport = x->type_len >= 6 && !memcmp(x->type, "Binary", 6) ? 2 : 1;
    md5_len(m, x->name, x->name_len);
    md5_len(m, x->type, x->type_len);
    EVP_DigestUpdate(m, &transport, 1);
    md5_len(m, x->value, x->value_len);
  }
  EVP_DigestFinal_ex(m, md, &ml);
  EVP_MD_CTX_free(m);
  for (unsigned i = 0; i < 16; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[32] = 0;
  return 0;
}

char *aws_b64(const void *p, size_t n) {
  char *o = malloc(4 * ((n + 2) / 3) + 1);
  if (o)
    EVP_EncodeBlock((unsigned char *)o, p, (int)n);
  return o;
}

long aws_unb64(const char *s, size_t len, uint8_t *out) {
  if (len % 4)
    return -1;
  size_t pad = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    int ok = isalnum((unsigned char)c) || c == '+' || c == '/';
    if (c == '=' && i + 2 >= len) {
      pad++;
      continue;
    }
    if (!ok || pad)
      return -1;
  }
  if (!len)
    return 0;
  int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
  if (n < 0)
    return -1;
  return (long)n - (long)pad;
}

void aws_arn(const server_t *s, const char *svc, const char *name, char *out, size_t outlen) {
  snprintf(out, outlen, "arn:aws:%s:%s:%s:%s", svc, s->cfg.region, s->cfg.account, name);
}

size_t aws_arn_name(const server_t *s, const char *svc, const char *arn, const char **name) {
  /* arn:aws:SVC:REGION:ACCOUNT:NAME; region and account are not checked, so
   * fixtures written for other local servers' accounts keep working */
  (void)s;
  if (!arn || strncmp(arn, "arn:", 4) != 0)
    return 0;
  const char *p = arn + 4;
  const char *parts[4];
  for (int i = 0; i < 4; i++) {
    parts[i] = p;
    p = strchr(p, ':');
    if (!p)
      return 0;
    p++;
  }
  size_t sl = strlen(svc);
  if ((size_t)(strchr(parts[1], ':') - parts[1]) != sl || strncmp(parts[1], svc, sl) != 0)
    return 0;
  *name = p;
  return strlen(p);
}
