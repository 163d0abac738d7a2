/* aws_sqs.c - the SQS actions of the AWS-compatible face, in the JSON
 * protocol's shape whatever protocol carried them (aws.c routes, aws_fmt.c
 * decodes and renders). Handlers mirror ops.c: they call the broker, build the
 * result, and answer with aws_reply()/aws_fail(), which hold the response
 * until what it reports is durable (server_gate). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_fmt.h"
#include "log.h"
#include "records.h"
#include "strutil.h"

/* SQS's limits for its API (the binary protocol allows more). */
#define SQS_MAX_BATCH   10u
#define SQS_MAX_RECEIVE 10u
/* ListQueues / ListDeadLetterSourceQueues page size, as SQS. */
#define SQS_MAX_RESULTS 1000u
/* ListMessageMoveTasks returns at most this many, as SQS. */
#define SQS_MAX_MOVE_TASKS 10u
/* Message moves per second (SQS: 1-500). */
#define SQS_MAX_MOVE_RATE GBX_REDRIVE_RATE_MAX
/* The message attribute that marks a body delivered as base64 because it
 * is not valid XML text (see PROTOCOL.md, "The AWS face"). */
#define BODY_ENCODING_ATTR "Gearbox.BodyEncoding"

static const char NO_QUEUE[] = "The specified queue does not exist.";

/* ---- small helpers ---- */

static void queue_url(const areq_t *r, const char *name, char *out, size_t n) {
  snprintf(out, n, "%s/%s/%s", r->base, r->s->cfg.account, name);
}

static void queue_arn(const areq_t *r, const char *name, char *out, size_t n) {
  aws_arn(r->s, "sqs", name, out, n);
}

/* The queue a QueueUrl names (its last path segment); answers r itself on
 * failure. */
static queue_t *need_queue(areq_t *r) {
  const char *url = aws_str(r->in, "QueueUrl");
  if (!url || !url[0]) {
    aws_fail(r, AWS_E_MISSING_PARAMETER, "The request must contain the parameter QueueUrl.");
    return NULL;
  }
  const char *name = strrchr(url, '/');
  name = name ? name + 1 : url;
  /* authorized before the lookup: a denied caller learns nothing of existence */
  if (!aws_authorize(r, r->iam, AUTHZ_QUEUE, name, strlen(name)))
    return NULL;
  queue_t *q =
      gbx_name_valid(name, strlen(name)) ? broker_queue(r->s->broker, name, strlen(name)) : NULL;
  if (!q)
    aws_fail(r, AWS_E_QUEUE_DOES_NOT_EXIST, NO_QUEUE);
  return q;
}

/* A dead-letter queue (a.dlq, set by a RedrivePolicy) is written into: it
 * needs send permission there. 1, or 0 after answering r. */
static int may_use_dlq(areq_t *r, const qattrs_t *a, unsigned mask) {
  return !(mask & QA_DLQ) || !a->dlq[0] ||
         aws_authorize(r, "sqs:SendMessage", AUTHZ_QUEUE, a->dlq, strlen(a->dlq));
}

/* With authentication on, a Policy being set must be a valid resource
 * policy. 1, or 0 after answering r. */
static int policy_ok(areq_t *r, const qattrs_t *a, unsigned mask) {
  char why[AWS_MAX_ERRMSG];
  if (!(mask & QA_POLICY) || authz_check_policy(r->s, a->policy, why, sizeof(why)) == 0)
    return 1;
  aws_fail(r, AWS_E_INVALID_ATTRIBUTE_VALUE, "Invalid value for the parameter Policy. %s", why);
  return 0;
}

/* The queue named by an SQS ARN, or NULL. */
static queue_t *queue_by_arn(const areq_t *r, const char *arn) {
  const char *name;
  size_t nl = aws_arn_name(r->s, "sqs", arn, &name);
  return nl && gbx_name_valid(name, nl) ? broker_queue(r->s->broker, name, nl) : NULL;
}

/* aws_authorize on the queue an SQS ARN names (a malformed ARN names no
 * queue: it is checked as written, so a pattern can still deny it). */
static int authorize_arn(areq_t *r, const char *action, const char *arn) {
  const char *name;
  size_t nl = aws_arn_name(r->s, "sqs", arn, &name);
  if (!nl) {
    name = arn ? arn : "";
    nl = strlen(name);
  }
  return aws_authorize(r, action, AUTHZ_QUEUE, name, nl);
}

/* A move back to the source queues writes into each: all need send
 * permission. 1, or 0 after answering r. */
static int may_send_to_sources(areq_t *r, queue_t *dlq) {
  char denied[GBX_MAX_NAME + 1];
  authz_source_denied(r->s, &r->who, dlq, denied);
  return !denied[0] || aws_authorize(r, "sqs:SendMessage", AUTHZ_QUEUE, denied, strlen(denied));
}

/* A list parameter's strings; NULL when absent. */
static const cJSON *list_of(const cJSON *in, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, k);
  return cJSON_IsArray(v) ? v : NULL;
}

static void add_str(cJSON *o, const char *k, const char *v) {
  cJSON_AddStringToObject(o, k, v);
}

static void add_u64s(cJSON *o, const char *k, uint64_t v) {
  char b[24];
  snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
  cJSON_AddStringToObject(o, k, b);
}

/* An int parameter in [lo, hi]; answers r with InvalidParameterValue
 * otherwise. Returns 1 set, 0 absent, -1 answered. */
static int int_param(areq_t *r, const cJSON *o, const char *k, int64_t lo, int64_t hi, int64_t *out,
                     const char *reason) {
  int rc = aws_int(o, k, out);
  if (rc == 0)
    return 0;
  if (rc < 0 || *out < lo || *out > hi) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    char shown[64];
    if (cJSON_IsString(v))
      snprintf(shown, sizeof(shown), "%.48s", v->valuestring);
    else if (cJSON_IsNumber(v))
      snprintf(shown, sizeof(shown), "%.0f", v->valuedouble);
    else
      snprintf(shown, sizeof(shown), "(not a number)");
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE, "Value %s for parameter %s is invalid. Reason: %s",
             shown, k, reason);
    return -1;
  }
  return 1;
}

/* ---- queue attributes ---- */

typedef struct qnum {
  const char *name;
  unsigned mask;
  size_t off;
  uint32_t lo, hi;
} qnum_t;

static const qnum_t qnums[] = {
    {"DelaySeconds", QA_DELAY, offsetof(qattrs_t, delay), 0, GBX_DELAY_MAX},
    {"MaximumMessageSize", QA_MAX_SIZE, offsetof(qattrs_t, max_size), GBX_MIN_MESSAGE_SIZE,
     GBX_MAX_MESSAGE_SIZE},
    {"MessageRetentionPeriod", QA_RETENTION, offsetof(qattrs_t, retention), GBX_RETENTION_MIN,
     GBX_RETENTION_MAX},
    {"ReceiveMessageWaitTimeSeconds", QA_WAIT, offsetof(qattrs_t, wait), 0, GBX_WAIT_MAX},
    {"VisibilityTimeout", QA_VIS, offsetof(qattrs_t, vis), 0, GBX_VIS_MAX},
};

/* Attributes GetQueueAttributes reports that cannot be set. */
static const char *const readonly_attrs[] = {"ApproximateNumberOfMessages",
                                             "ApproximateNumberOfMessagesNotVisible",
                                             "ApproximateNumberOfMessagesDelayed",
                                             "CreatedTimestamp",
                                             "LastModifiedTimestamp",
                                             "QueueArn"};

/* FIFO-only attributes: on a standard queue SQS does not know them. */
static const char *const fifo_attrs[] = {"ContentBasedDeduplication", "DeduplicationScope",
                                         "FifoThroughputLimit"};

static int in_list(const char *s, const char *const *l, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(s, l[i]))
      return 1;
  return 0;
}
#define IN_LIST(s, l) in_list(s, l, sizeof(l) / sizeof(l[0]))

/* Parses RedrivePolicy JSON into a (dlq, max_receives). Returns 0 or -1
 * with the reason in why. */
static int parse_redrive(const areq_t *r, const char *v, qattrs_t *a, char *why, size_t wl) {
  if (!v[0]) {
    a->dlq[0] = 0;
    return 0;
  }
  cJSON *j = cJSON_Parse(v);
  int rc = -1;
  if (!cJSON_IsObject(j)) {
    snprintf(why, wl, "Redrive policy is not a valid JSON map.");
    goto out;
  }
  const char *arn = aws_str(j, "deadLetterTargetArn");
  int64_t mrc;
  if (!arn) {
    snprintf(why, wl, "Redrive policy does not contain mandatory attribute: deadLetterTargetArn.");
    goto out;
  }
  if (aws_int(j, "maxReceiveCount", &mrc) != 1) {
    snprintf(why, wl, "Redrive policy does not contain mandatory attribute: maxReceiveCount.");
    goto out;
  }
  if (mrc < GBX_MAX_RECEIVES_MIN || mrc > GBX_MAX_RECEIVES_MAX) {
    snprintf(
        why, wl,
        "Invalid value for maxReceiveCount: %lld, valid values are from %u to %u both inclusive.",
        (long long)mrc, GBX_MAX_RECEIVES_MIN, GBX_MAX_RECEIVES_MAX);
    goto out;
  }
  const char *name;
  size_t nl = aws_arn_name(r->s, "sqs", arn, &name);
  if (!nl || !gbx_name_valid(name, nl) || !broker_queue(r->s->broker, name, nl)) {
    snprintf(why, wl, "Dead letter target does not exist.");
    goto out;
  }
  memcpy(a->dlq, name, nl);
  a->dlq[nl] = 0;
  a->max_receives = (uint32_t)mrc;
  rc = 0;
out:
  cJSON_Delete(j);
  return rc;
}

static int set_json_attr(char **dst, const char *v) {
  free(*dst);
  *dst = v[0] ? strdup(v) : NULL;
  return v[0] && !*dst ? -1 : 0;
}

/* Applies an Attributes map over a; sets mask. Answers r on error. */
static int parse_qattrs(areq_t *r, const cJSON *attrs, qattrs_t *a, unsigned *mask) {
  *mask = 0;
  if (!attrs)
    return 0;
  if (!cJSON_IsObject(attrs)) {
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE, "Attributes must be a map.");
    return -1;
  }
  for (const cJSON *c = attrs->child; c; c = c->next) {
    const char *k = c->string;
    char vbuf[32];
    const char *v = cJSON_IsString(c) ? c->valuestring : NULL;
    if (!v && cJSON_IsNumber(c)) {
      snprintf(vbuf, sizeof(vbuf), "%.0f", c->valuedouble);
      v = vbuf;
    }
    if (!v) {
      aws_fail(r, AWS_E_INVALID_ATTRIBUTE_VALUE, "Invalid value for the parameter %.80s.", k);
      return -1;
    }
    int done = 0;
    for (size_t i = 0; i < sizeof(qnums) / sizeof(qnums[0]); i++) {
      if (strcmp(k, qnums[i].name))
        continue;
      char *end;
      long long x = strtoll(v, &end, 10);
      if (!v[0] || *end || x < qnums[i].lo || x > qnums[i].hi) {
        aws_fail(r, AWS_E_INVALID_ATTRIBUTE_VALUE, "Invalid value for the parameter %s.", k);
        return -1;
      }
      *(uint32_t *)((char *)a + qnums[i].off) = (uint32_t)x;
      *mask |= qnums[i].mask;
      done = 1;
    }
    if (done)
      continue;
    char why[200];
    if (!strcmp(k, "RedrivePolicy")) {
      if (parse_redrive(r, v, a, why, sizeof(why)) != 0) {
        aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE,
                 "Value %.300s for parameter RedrivePolicy is invalid. Reason: %s", v, why);
        return -1;
      }
      *mask |= QA_DLQ | QA_MAX_RECEIVES;
    } else if (!strcmp(k, "Policy") || !strcmp(k, "RedriveAllowPolicy")) {
      cJSON *j = v[0] ? cJSON_Parse(v) : NULL;
      int ok = !v[0] || cJSON_IsObject(j);
      if (ok && j && !strcmp(k, "RedriveAllowPolicy")) {
        const char *perm = aws_str(j, "redrivePermission");
        ok = perm &&
             (!strcmp(perm, "allowAll") || !strcmp(perm, "denyAll") || !strcmp(perm, "byQueue"));
      }
      cJSON_Delete(j);
      if (!ok || strlen(v) > GBX_MAX_POLICY || !text_json_valid(v, strlen(v))) {
        aws_fail(r, AWS_E_INVALID_ATTRIBUTE_VALUE, "Invalid value for the parameter %s.", k);
        return -1;
      }
      if (set_json_attr(!strcmp(k, "Policy") ? &a->policy : &a->redrive_allow, v) != 0)
        abort();
      *mask |= !strcmp(k, "Policy") ? QA_POLICY : QA_REDRIVE_ALLOW;
    } else if (!strcmp(k, "SqsManagedSseEnabled") || !strcmp(k, "KmsMasterKeyId") ||
               !strcmp(k, "KmsDataKeyReusePeriodSeconds")) {
      /* Gearbox does not encrypt at rest: saying "false" is true, anything
       * asking for encryption is refused rather than silently ignored */
      if (strcmp(k, "SqsManagedSseEnabled") || strcasecmp(v, "false")) {
        aws_fail(r, AWS_E_INVALID_ATTRIBUTE_VALUE,
                 "Invalid value for the parameter %s. Reason: server-side encryption is not "
                 "supported by this server.",
                 k);
        return -1;
      }
    } else if (!strcmp(k, "FifoQueue")) {
      if (strcasecmp(v, "false")) {
        aws_fail(r, AWS_E_UNSUPPORTED_OPERATION, "FIFO queues are not supported by this server.");
        return -1;
      }
    } else {
      aws_fail(r, AWS_E_INVALID_ATTRIBUTE_NAME, "Unknown Attribute %.80s.", k);
      return -1;
    }
  }
  return 0;
}

static void add_redrive(const areq_t *r, cJSON *o, const qattrs_t *a) {
  char arn[200], text[320];
  queue_arn(r, a->dlq, arn, sizeof(arn));
  snprintf(text, sizeof(text), "{\"deadLetterTargetArn\":\"%s\",\"maxReceiveCount\":%u}", arn,
           a->max_receives);
  add_str(o, "RedrivePolicy", text);
}

/* Maps a broker error of a create or set to AWS's; answers r. */
static void fail_attrs(areq_t *r, gbx_err_t e, const gbx_errbuf_t *eb, const qattrs_t *a) {
  if (e == GBX_E_QUEUE_EXISTS) {
    aws_fail(r, AWS_E_QUEUE_NAME_EXISTS,
             "A queue already exists with the same name and a different value for attribute(s).");
  } else if (e == GBX_E_DLQ_NOT_FOUND || e == GBX_E_REDRIVE_CYCLE) {
    char arn[200];
    queue_arn(r, a->dlq, arn, sizeof(arn));
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE,
             "Value {\"deadLetterTargetArn\":\"%s\",\"maxReceiveCount\":%u} for parameter "
             "RedrivePolicy is invalid. Reason: %s",
             arn, a->max_receives,
             e == GBX_E_DLQ_NOT_FOUND ? "Dead letter target does not exist." : eb->msg);
  } else {
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE, "%s", eb->msg[0] ? eb->msg : gbx_err_message(e));
  }
}

/* Reads a Tags map into malloc'd tags. Answers r on error. */
static int parse_tags(areq_t *r, const cJSON *tm, qtag_t **out, uint32_t *n) {
  *out = NULL;
  *n = 0;
  if (!tm)
    return 0;
  int count = cJSON_GetArraySize(tm);
  if (!cJSON_IsObject(tm) || count > (int)GBX_MAX_TAGS) {
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE, "Too many tags added for queue (at most %u).",
             GBX_MAX_TAGS);
    return -1;
  }
  if (!count)
    return 0;
  qtag_t *t = calloc((size_t)count, sizeof(*t));
  if (!t)
    abort();
  for (const cJSON *c = tm->child; c; c = c->next) {
    const char *v = cJSON_IsString(c) ? c->valuestring : NULL;
    size_t kl = strlen(c->string), vl = v ? strlen(v) : 0;
    uint32_t bad;
    /* text as in a message body: a form's %00 arrives as an invalid 0xFF */
    if (!v || !kl || kl > GBX_MAX_TAG_KEY || vl > GBX_MAX_TAG_VALUE ||
        !text_valid((const uint8_t *)c->string, kl, &bad) ||
        !text_valid((const uint8_t *)v, vl, &bad)) {
      for (uint32_t i = 0; i < *n; i++) {
        free(t[i].key);
        free(t[i].value);
      }
      free(t);
      aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE,
               "Tag keys must be 1-128 and values 0-256 characters of text.");
      return -1;
    }
    t[*n].key = strdup(c->string);
    t[*n].value = strdup(v);
    if (!t[*n].key || !t[*n].value)
      abort();
    (*n)++;
  }
  *out = t;
  return 0;
}

static void tags_free(qtag_t *t, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    free(t[i].key);
    free(t[i].value);
  }
  free(t);
}

/* ---- queues ---- */

static void sqs_create_queue(areq_t *r) {
  const char *name = aws_str(r->in, "QueueName");
  qattrs_t a;
  unsigned mask = 0;
  qtag_t *tags = NULL;
  uint32_t ntags = 0;
  int created = 0;
  gbx_errbuf_t eb = {0};
  if (!name || !name[0]) {
    aws_fail(r, AWS_E_MISSING_PARAMETER, "The request must contain the parameter QueueName.");
    return;
  }
  size_t nl = strlen(name);
  if (nl > 5 && !strcmp(name + nl - 5, ".fifo")) {
    aws_fail(r, AWS_E_UNSUPPORTED_OPERATION, "FIFO queues are not supported by this server.");
    return;
  }
  if (!gbx_name_valid(name, nl)) {
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE,
             "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in "
             "length");
    return;
  }
  if (!aws_authorize(r, r->iam, AUTHZ_QUEUE, name, nl))
    return;
  qattrs_defaults(&a);
  const cJSON *tm = cJSON_GetObjectItemCaseSensitive(r->in, "tags");
  if (!tm)
    tm = cJSON_GetObjectItemCaseSensitive(r->in, "Tags");
  if (parse_qattrs(r, cJSON_GetObjectItemCaseSensitive(r->in, "Attributes"), &a, &mask) != 0 ||
      parse_tags(r, tm, &tags, &ntags) != 0 || !may_use_dlq(r, &a, mask) ||
      !policy_ok(r, &a, mask)) {
    qattrs_free(&a);
    tags_free(tags, ntags);
    return;
  }
  gbx_err_t e = broker_queue_create(r->s->broker, name, &a, tags, ntags, r->now, &created, &eb);
  tags_free(tags, ntags);
  if (e) {
    fail_attrs(r, e, &eb, &a);
    qattrs_free(&a);
    return;
  }
  qattrs_free(&a);
  char url[512];
  queue_url(r, name, url, sizeof(url));
  cJSON *o = cJSON_CreateObject();
  add_str(o, "QueueUrl", url);
  aws_reply(r, o);
}

static void sqs_get_queue_url(areq_t *r) {
  const char *name = aws_str(r->in, "QueueName");
  if (!name || !name[0]) {
    aws_fail(r, AWS_E_MISSING_PARAMETER, "The request must contain the parameter QueueName.");
    return;
  }
  if (!aws_authorize(r, r->iam, AUTHZ_QUEUE, name, strlen(name)))
    return;
  if (!gbx_name_valid(name, strlen(name)) || !broker_queue(r->s->broker, name, strlen(name))) {
    aws_fail(r, AWS_E_QUEUE_DOES_NOT_EXIST, NO_QUEUE);
    return;
  }
  char url[512];
  queue_url(r, name, url, sizeof(url));
  cJSON *o = cJSON_CreateObject();
  add_str(o, "QueueUrl", url);
  aws_reply(r, o);
}

static void sqs_delete_queue(areq_t *r) {
  queue_t *q = need_queue(r);
  if (!q)
    return;
  broker_queue_delete(r->s->broker, q, r->now);
  aws_reply(r, NULL);
}

static void sqs_purge_queue(areq_t *r) {
  queue_t *q = need_queue(r);
  uint64_t n;
  if (!q)
    return;
  broker_queue_purge(r->s->broker, q, r->now, &n);
  aws_reply(r, NULL);
}

typedef struct qlist {
  const queue_t **v;
  uint32_t n, cap;
} qlist_t;

static void qcollect(void *ctx, const queue_t *q) {
  qlist_t *l = ctx;
  if (l->n < l->cap)
    l->v[l->n++] = q;
}

/* Paging tokens are the base64 of the last name returned. */
static int token_name(const char *tok, char out[GBX_MAX_NAME + 1]) {
  uint8_t buf[3 * 64];
  size_t tl = strlen(tok);
  if (tl > 4 * ((GBX_MAX_NAME + 2) / 3))
    return -1;
  long n = aws_unb64(tok, tl, buf);
  if (n <= 0 || n > (long)GBX_MAX_NAME || !gbx_name_valid((const char *)buf, (size_t)n))
    return -1;
  memcpy(out, buf, (size_t)n);
  out[n] = 0;
  return 0;
}

static void add_token(cJSON *o, const char *name) {
  char *t = aws_b64(name, strlen(name));
  if (!t)
    abort();
  add_str(o, "NextToken", t);
  free(t);
}

/* Reads MaxResults and NextToken. Returns 0 or -1 (answered). */
static int paging(areq_t *r, int64_t *max, int *has_max, char after[GBX_MAX_NAME + 1]) {
  int rc = int_param(r, r->in, "MaxResults", 1, SQS_MAX_RESULTS, max,
                     "MaxResults must be an integer between 1 and 1000.");
  if (rc < 0)
    return -1;
  *has_max = rc;
  if (!rc)
    *max = SQS_MAX_RESULTS;
  after[0] = 0;
  const char *tok = aws_str(r->in, "NextToken");
  if (tok && tok[0] && token_name(tok, after) != 0) {
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE, "Invalid NextToken value.");
    return -1;
  }
  return 0;
}

/* Collects only the queues r's caller may list (aws_may_see), noting the
 * last one scanned. */
typedef struct vlist {
  qlist_t l;
  areq_t *r;
  const queue_t *last;
} vlist_t;

static void vcollect(void *ctx, const queue_t *q) {
  vlist_t *x = ctx;
  x->last = q;
  if (aws_may_see(x->r, AUTHZ_QUEUE, q->name, strlen(q->name)))
    qcollect(&x->l, q);
}

static void sqs_list_queues(areq_t *r) {
  const char *prefix = aws_str(r->in, "QueueNamePrefix");
  int64_t max;
  int has_max, more = 0;
  char after[GBX_MAX_NAME + 1];
  if (paging(r, &max, &has_max, after) != 0)
    return;
  if (!prefix)
    prefix = "";
  const queue_t *v[SQS_MAX_RESULTS];
  vlist_t x = {{v, 0, (uint32_t)max}, r, NULL};
  /* hidden queues do not count: scan on until max are listed or none are
   * left, so the page token names a listed queue, never a hidden one */
  do {
    x.last = NULL;
    broker_queue_list(r->s->broker, prefix, strlen(prefix), after, strlen(after),
                      (uint32_t)max - x.l.n, vcollect, &x, &more);
    if (!x.last)
      break;
    snprintf(after, sizeof(after), "%s", x.last->name);
  } while (more && x.l.n < (uint32_t)max);
  cJSON *o = cJSON_CreateObject();
  if (x.l.n) {
    cJSON *urls = cJSON_AddArrayToObject(o, "QueueUrls");
    for (uint32_t i = 0; i < x.l.n; i++) {
      char url[512];
      queue_url(r, v[i]->name, url, sizeof(url));
      cJSON_AddItemToArray(urls, cJSON_CreateString(url));
    }
  }
  if (more && has_max && x.l.n)
    add_token(o, v[x.l.n - 1]->name);
  aws_reply(r, o);
}

static void sqs_list_dlq_sources(areq_t *r) {
  queue_t *q = need_queue(r);
  int64_t max;
  int has_max;
  char after[GBX_MAX_NAME + 1];
  if (!q || paging(r, &max, &has_max, after) != 0)
    return;
  uint32_t total = broker_dlq_sources(r->s->broker, q, qcollect, &(qlist_t){NULL, 0, 0});
  const queue_t **v = calloc(total + 1u, sizeof(*v));
  if (!v)
    abort();
  qlist_t l = {v, 0, total};
  broker_dlq_sources(r->s->broker, q, qcollect, &l);
  cJSON *o = cJSON_CreateObject();
  cJSON *urls = cJSON_AddArrayToObject(o, "queueUrls");
  uint32_t shown = 0;
  const char *last = NULL;
  int more = 0;
  for (uint32_t i = 0; i < l.n; i++) {
    if (after[0] && strcmp(v[i]->name, after) <= 0)
      continue;
    if (!aws_may_see(r, AUTHZ_QUEUE, v[i]->name, strlen(v[i]->name)))
      continue; /* only sources the caller may see */
    if (shown == max) {
      more = 1;
      break;
    }
    char url[512];
    queue_url(r, v[i]->name, url, sizeof(url));
    cJSON_AddItemToArray(urls, cJSON_CreateString(url));
    last = v[i]->name;
    shown++;
  }
  if (more && has_max && last)
    add_token(o, last);
  free(v);
  aws_reply(r, o);
}

static const char *const all_queue_attrs[] = {"All",
                                              "ApproximateNumberOfMessages",
                                              "ApproximateNumberOfMessagesDelayed",
                                              "ApproximateNumberOfMessagesNotVisible",
                                              "CreatedTimestamp",
                                              "DelaySeconds",
                                              "LastModifiedTimestamp",
                                              "MaximumMessageSize",
                                              "MessageRetentionPeriod",
                                              "Policy",
                                              "QueueArn",
                                              "ReceiveMessageWaitTimeSeconds",
                                              "RedrivePolicy",
                                              "RedriveAllowPolicy",
                                              "VisibilityTimeout",
                                              "SqsManagedSseEnabled"};

static int wants(const cJSON *names, const char *n) {
  for (const cJSON *c = names ? names->child : NULL; c; c = c->next)
    if (cJSON_IsString(c) && (!strcmp(c->valuestring, "All") || !strcmp(c->valuestring, n)))
      return 1;
  return 0;
}

static void sqs_get_queue_attributes(areq_t *r) {
  queue_t *q = need_queue(r);
  if (!q)
    return;
  const cJSON *names = list_of(r->in, "AttributeNames");
  for (const cJSON *c = names ? names->child : NULL; c; c = c->next) {
    if (!cJSON_IsString(c) || !IN_LIST(c->valuestring, all_queue_attrs)) {
      aws_fail(r, AWS_E_INVALID_ATTRIBUTE_NAME, "Unknown Attribute %.80s.",
               cJSON_IsString(c) ? c->valuestring : "?");
      return;
    }
  }
  const qattrs_t *a = &q->rec.a;
  cJSON *o = cJSON_CreateObject();
  cJSON *m = cJSON_CreateObject();
  char arn[200];
  queue_arn(r, q->name, arn, sizeof(arn));
  if (wants(names, "QueueArn"))
    add_str(m, "QueueArn", arn);
  if (wants(names, "ApproximateNumberOfMessages"))
    add_u64s(m, "ApproximateNumberOfMessages", q->nvisible);
  if (wants(names, "ApproximateNumberOfMessagesNotVisible"))
    add_u64s(m, "ApproximateNumberOfMessagesNotVisible", q->ninflight);
  if (wants(names, "ApproximateNumberOfMessagesDelayed"))
    add_u64s(m, "ApproximateNumberOfMessagesDelayed", q->ndelayed);
  if (wants(names, "CreatedTimestamp"))
    add_u64s(m, "CreatedTimestamp", (uint64_t)q->rec.created_ms / 1000);
  if (wants(names, "LastModifiedTimestamp"))
    add_u64s(m, "LastModifiedTimestamp", (uint64_t)q->rec.modified_ms / 1000);
  if (wants(names, "VisibilityTimeout"))
    add_u64s(m, "VisibilityTimeout", a->vis);
  if (wants(names, "MaximumMessageSize"))
    add_u64s(m, "MaximumMessageSize", a->max_size);
  if (wants(names, "MessageRetentionPeriod"))
    add_u64s(m, "MessageRetentionPeriod", a->retention);
  if (wants(names, "DelaySeconds"))
    add_u64s(m, "DelaySeconds", a->delay);
  if (wants(names, "ReceiveMessageWaitTimeSeconds"))
    add_u64s(m, "ReceiveMessageWaitTimeSeconds", a->wait);
  if (wants(names, "SqsManagedSseEnabled"))
    add_str(m, "SqsManagedSseEnabled", "false");
  if (wants(names, "Policy") && a->policy)
    add_str(m, "Policy", a->policy);
  if (wants(names, "RedrivePolicy") && a->dlq[0])
    add_redrive(r, m, a);
  if (wants(names, "RedriveAllowPolicy") && a->redrive_allow)
    add_str(m, "RedriveAllowPolicy", a->redrive_allow);
  if (m->child)
    cJSON_AddItemToObject(o, "Attributes", m);
  else
    cJSON_Delete(m);
  aws_reply(r, o);
}

static void sqs_set_queue_attributes(areq_t *r) {
  queue_t *q = need_queue(r);
  if (!q)
    return;
  const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(r->in, "Attributes");
  if (!attrs) {
    aws_fail(r, AWS_E_MISSING_PARAMETER, "The request must contain the parameter Attributes.");
    return;
  }
  for (const cJSON *c = cJSON_IsObject(attrs) ? attrs->child : NULL; c; c = c->next) {
    if (IN_LIST(c->string, readonly_attrs) || IN_LIST(c->string, fifo_attrs)) {
      aws_fail(r, AWS_E_INVALID_ATTRIBUTE_NAME, "Unknown Attribute %.80s.", c->string);
      return;
    }
  }
  qattrs_t a;
  unsigned mask;
  gbx_errbuf_t eb = {0};
  if (qattrs_copy(&a, &q->rec.a) != 0)
    abort();
  if (parse_qattrs(r, attrs, &a, &mask) != 0 || !may_use_dlq(r, &a, mask) ||
      !policy_ok(r, &a, mask)) {
    qattrs_free(&a);
    return;
  }
  gbx_err_t e = mask ? broker_queue_set_attrs(r->s->broker, q, &a, mask, r->now, &eb) : GBX_E_OK;
  if (e)
    fail_attrs(r, e, &eb, &a);
  else
    aws_reply(r, NULL);
  qattrs_free(&a);
}

static void sqs_tag_queue(areq_t *r) {
  queue_t *q = need_queue(r);
  qtag_t *tags;
  uint32_t n;
  if (!q)
    return;
  const cJSON *tm = cJSON_GetObjectItemCaseSensitive(r->in, "Tags");
  if (!tm) {
    aws_fail(r, AWS_E_MISSING_PARAMETER, "The request must contain the parameter Tags.");
    return;
  }
  if (parse_tags(r, tm, &tags, &n) != 0)
    return;
  gbx_err_t e = broker_queue_tag(r->s->broker, q, tags, n, r->now);
  tags_free(tags, n);
  if (e)
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE, "Too many tags added for queue %s.", q->name);
  else
    aws_reply(r, NULL);
}

static void sqs_untag_queue(areq_t *r) {
  queue_t *q = need_queue(r);
  if (!q)
    return;
  const cJSON *keys = list_of(r->in, "TagKeys");
  int n = cJSON_GetArraySize(keys);
  if (!keys || n > (int)GBX_MAX_TAGS) {
    aws_fail(r, keys ? AWS_E_INVALID_PARAMETER_VALUE : AWS_E_MISSING_PARAMETER,
             keys ? "Too many tag keys." : "The request must contain the parameter TagKeys.");
    return;
  }
  const char *k[GBX_MAX_TAGS];
  uint32_t l[GBX_MAX_TAGS], m = 0;
  for (const cJSON *c = keys->child; c; c = c->next) {
    if (!cJSON_IsString(c))
      continue;
    k[m] = c->valuestring;
    l[m++] = (uint32_t)strlen(c->valuestring);
  }
  broker_queue_untag(r->s->broker, q, k, l, m, r->now);
  aws_reply(r, NULL);
}

static void sqs_list_queue_tags(areq_t *r) {
  queue_t *q = need_queue(r);
  if (!q)
    return;
  cJSON *o = cJSON_CreateObject();
  if (q->rec.ntags) {
    cJSON *t = cJSON_AddObjectToObject(o, "Tags");
    for (uint32_t i = 0; i < q->rec.ntags; i++)
      add_str(t, q->rec.tags[i].key, q->rec.tags[i].value);
  }
  aws_reply(r, o);
}

/* ---- permissions: statements of the queue's Policy document ---- */

static void sqs_add_permission(areq_t *r) {
  queue_t *q = need_queue(r);
  if (!q)
    return;
  const char *label = aws_str(r->in, "Label");
  const cJSON *accts = list_of(r->in, "AWSAccountIds"), *acts = list_of(r->in, "Actions");
  if (!label || !label[0] || !accts || !acts) {
    aws_fail(r, AWS_E_MISSING_PARAMETER, "The request must contain the parameter %s.",
             !label || !label[0] ? "Label"
             : !accts            ? "AWSAccountIds"
                                 : "Actions");
    return;
  }
  cJSON *pol = q->rec.a.policy ? cJSON_Parse(q->rec.a.policy) : NULL;
  char arn[200], id[240];
  queue_arn(r, q->name, arn, sizeof(arn));
  if (!cJSON_IsObject(pol)) {
    cJSON_Delete(pol);
    pol = cJSON_CreateObject();
    snprintf(id, sizeof(id), "%s/SQSDefaultPolicy", arn);
    add_str(pol, "Version", "2012-10-17");
    add_str(pol, "Id", id);
  }
  cJSON *st = cJSON_GetObjectItemCaseSensitive(pol, "Statement");
  if (!cJSON_IsArray(st)) {
    cJSON_DeleteItemFromObjectCaseSensitive(pol, "Statement");
    st = cJSON_AddArrayToObject(pol, "Statement");
  }
  for (const cJSON *c = st->child; c; c = c->next) {
    const char *sid = aws_str(c, "Sid");
    if (sid && !strcmp(sid, label)) {
      cJSON_Delete(pol);
      aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE,
               "Value %.80s for parameter Label is invalid. Reason: Already exists.", label);
      return;
    }
  }
  cJSON *s = cJSON_CreateObject();
  add_str(s, "Sid", label);
  add_str(s, "Effect", "Allow");
  cJSON *pr = cJSON_AddObjectToObject(s, "Principal");
  cJSON *aw = cJSON_AddArrayToObject(pr, "AWS");
  for (const cJSON *c = accts->child; c; c = c->next) {
    if (!cJSON_IsString(c))
      continue;
    char p[96];
    snprintf(p, sizeof(p), "arn:aws:iam::%.40s:root", c->valuestring);
    cJSON_AddItemToArray(aw, cJSON_CreateString(p));
  }
  cJSON *ac = cJSON_AddArrayToObject(s, "Action");
  for (const cJSON *c = acts->child; c; c = c->next) {
    if (!cJSON_IsString(c))
      continue;
    char p[96];
    snprintf(p, sizeof(p), "SQS:%.60s", c->valuestring);
    cJSON_AddItemToArray(ac, cJSON_CreateString(p));
  }
  add_str(s, "Resource", arn);
  cJSON_AddItemToArray(st, s);
  char *text = cJSON_PrintUnformatted(pol);
  cJSON_Delete(pol);
  if (!text)
    abort();
  char why[AWS_MAX_ERRMSG];
  if (authz_check_policy(r->s, text, why, sizeof(why)) != 0) {
    free(text);
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE, "The resulting policy would be invalid: %s", why);
    return;
  }
  qattrs_t a;
  gbx_errbuf_t eb = {0};
  if (qattrs_copy(&a, &q->rec.a) != 0)
    abort();
  free(a.policy);
  a.policy = text;
  gbx_err_t e = strlen(text) > GBX_MAX_POLICY
                    ? gbx_errbuf_set(&eb, GBX_E_OUT_OF_RANGE, "The policy would exceed 20 KiB.")
                    : broker_queue_set_attrs(r->s->broker, q, &a, QA_POLICY, r->now, &eb);
  qattrs_free(&a);
  if (e)
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE, "%s", eb.msg);
  else
    aws_reply(r, NULL);
}

static void sqs_remove_permission(areq_t *r) {
  queue_t *q = need_queue(r);
  if (!q)
    return;
  const char *label = aws_str(r->in, "Label");
  if (!label || !label[0]) {
    aws_fail(r, AWS_E_MISSING_PARAMETER, "The request must contain the parameter Label.");
    return;
  }
  cJSON *pol = q->rec.a.policy ? cJSON_Parse(q->rec.a.policy) : NULL;
  cJSON *st = cJSON_GetObjectItemCaseSensitive(pol, "Statement");
  cJSON *hit = NULL;
  for (cJSON *c = cJSON_IsArray(st) ? st->child : NULL; c; c = c->next) {
    const char *sid = aws_str(c, "Sid");
    if (sid && !strcmp(sid, label))
      hit = c;
  }
  if (!hit) {
    cJSON_Delete(pol);
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE,
             "Value %.80s for parameter Label is invalid. Reason: can't find label on existing "
             "policy.",
             label);
    return;
  }
  cJSON_Delete(cJSON_DetachItemViaPointer(st, hit));
  char *text = st->child ? cJSON_PrintUnformatted(pol) : NULL;
  cJSON_Delete(pol);
  qattrs_t a;
  gbx_errbuf_t eb = {0};
  if (qattrs_copy(&a, &q->rec.a) != 0)
    abort();
  free(a.policy);
  a.policy = text; /* NULL: the last statement went, the policy with it */
  gbx_err_t e = broker_queue_set_attrs(r->s->broker, q, &a, QA_POLICY, r->now, &eb);
  qattrs_free(&a);
  if (e)
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE, "%s", eb.msg);
  else
    aws_reply(r, NULL);
}

/* ---- sending ---- */

/* One message ready to send. */
typedef struct prep {
  blob_t *blob;
  uint32_t size;
  int32_t delay;
  char md5_body[33], md5_attrs[33], md5_sys[33];
  int has_attrs, has_sys;
} prep_t;

/* 1 if t is an X-Ray trace header: ';'-separated key=value fields, one of
 * them Root=1-<8 hex digits>-<24 hex digits>. */
static int xray_header_valid(const char *t, size_t n) {
  int root = 0;
  for (size_t i = 0; i < n;) {
    while (i < n && t[i] == ' ') /* "Root=...; Parent=..." */
      i++;
    if (i == n)
      break;
    size_t end = i;
    while (end < n && t[end] != ';')
      end++;
    const char *eq = memchr(t + i, '=', end - i);
    if (!eq || eq == t + i)
      return 0;
    size_t kl = (size_t)(eq - (t + i)), vl = end - i - kl - 1;
    if (kl == 4 && !memcmp(t + i, "Root", 4)) {
      const char *v = eq + 1;
      if (root || vl != 35 || v[0] != '1' || v[1] != '-' || v[10] != '-')
        return 0;
      for (size_t k = 2; k < 35; k++)
        if (k != 10 && !isxdigit((unsigned char)v[k]))
          return 0;
      root = 1;
    }
    i = end + 1;
  }
  return root;
}

/* MessageSystemAttributes of a send: at most AWSTraceHeader, a String
 * holding an X-Ray trace header (SQS's only one). On success *trace points
 * into m (NULL when absent) and p has its digest. */
static aws_err_t sys_attrs(areq_t *r, const cJSON *m, prep_t *p, const char **trace, char *why,
                           size_t wl) {
  const cJSON *msa = cJSON_GetObjectItemCaseSensitive(m, "MessageSystemAttributes");
  aws_mattrs_t sa;
  *trace = NULL;
  if (!msa)
    return AWS_OK;
  aws_err_t e = aws_mattrs_parse(r->a, msa, &sa, why, wl);
  if (e)
    goto out;
  for (uint32_t i = 0; i < sa.n; i++) {
    const gbx_attr_t *a = &sa.a[i];
    e = AWS_E_INVALID_PARAMETER_VALUE;
    if (a->name_len != 14 || memcmp(a->name, "AWSTraceHeader", 14)) {
      snprintf(why, wl, "Message system attribute name '%.*s' is invalid.",
               (int)(a->name_len > 256 ? 256 : a->name_len), a->name);
      goto out;
    }
    if (a->type_len != 6 || memcmp(a->type, "String", 6)) {
      snprintf(why, wl, "The type of message system attribute 'AWSTraceHeader' must be String.");
      goto out;
    }
    if (a->value_len > BLOB_MAX_TRACE || !xray_header_valid(a->value, a->value_len)) {
      snprintf(why, wl,
               "Value for message system attribute 'AWSTraceHeader' is invalid: it must be an "
               "X-Ray trace header (Root=1-<8 hex>-<24 hex>;Parent=...;Sampled=...) of at most "
               "%u bytes.",
               BLOB_MAX_TRACE);
      goto out;
    }
    *trace = a->value;
  }
  e = AWS_OK;
  if (sa.n) {
    aws_attrs_md5(sa.a, sa.n, p->md5_sys);
    p->has_sys = 1;
  }
out:
  aws_mattrs_free(&sa);
  return e;
}

/* Validates one message (SendMessage or a batch entry) and builds its
 * blob. Returns 0, or an error with its message in why. */
static aws_err_t prepare(areq_t *r, queue_t *q, const cJSON *m, prep_t *p, char *why, size_t wl) {
  const char *body = aws_str(m, "MessageBody");
  int64_t delay = -1;
  aws_mattrs_t ma;
  uint32_t badc;
  memset(p, 0, sizeof(*p));
  if (!body || !body[0]) {
    snprintf(why, wl, "The request must contain the parameter MessageBody.");
    return AWS_E_MISSING_PARAMETER;
  }
  if (r->s->disk_low) {
    snprintf(why, wl, "Free disk space is below the watermark (--min-free); sends are refused.");
    return AWS_E_OVER_LIMIT;
  }
  if (aws_str(m, "MessageDeduplicationId")) {
    snprintf(why, wl, "The request include parameter that is not valid for this queue type");
    return AWS_E_INVALID_PARAMETER_VALUE;
  }
  if (aws_str(m, "MessageGroupId")) {
    snprintf(why, wl, "MessageGroupId (FIFO and fair queues) is not supported by this server.");
    return AWS_E_UNSUPPORTED_OPERATION;
  }
  const char *trace;
  aws_err_t e = sys_attrs(r, m, p, &trace, why, wl);
  if (e)
    return e;
  int rc = aws_int(m, "DelaySeconds", &delay);
  if (rc < 0 || (rc && (delay < 0 || delay > GBX_DELAY_MAX))) {
    snprintf(why, wl,
             "Value for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and "
             "<= %u.",
             GBX_DELAY_MAX);
    return AWS_E_INVALID_PARAMETER_VALUE;
  }
  size_t bl = strlen(body);
  if (!text_valid((const uint8_t *)body, bl, &badc)) {
    if (badc == 0xFFFFFFFFu)
      snprintf(why, wl,
               "Invalid binary character was found in the message body: it is not valid UTF-8.");
    else
      snprintf(why, wl,
               "Invalid binary character '#x%X' was found in the message body, the set of allowed "
               "characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to "
               "#x10FFFF",
               badc);
    return AWS_E_INVALID_MESSAGE_CONTENTS;
  }
  e = aws_mattrs_parse(r->a, cJSON_GetObjectItemCaseSensitive(m, "MessageAttributes"), &ma, why,
                       wl);
  if (e) {
    aws_mattrs_free(&ma);
    return e;
  }
  uint64_t size = bl + gbx_attrs_size(ma.a, ma.n);
  if (size > q->rec.a.max_size) {
    aws_mattrs_free(&ma);
    snprintf(why, wl,
             "One or more parameters are invalid. Reason: Message must be shorter than %u bytes.",
             q->rec.a.max_size);
    return AWS_E_INVALID_PARAMETER_VALUE;
  }
  gbx_buf_t *sc = &r->a->scratch;
  sc->len = 0;
  if (ma.n) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, sc, gbx_buf_write_cb);
    gbx_attrs_pack(&pk, ma.a, ma.n);
    aws_attrs_md5(ma.a, ma.n, p->md5_attrs);
    p->has_attrs = 1;
  }
  uint32_t tl = trace ? (uint32_t)strlen(trace) : 0;
  blob_t *b = blob_new((uint32_t)blob_sent_size((uint32_t)bl, (uint32_t)sc->len, tl));
  if (!b)
    abort();
  blob_sent_write(b->data, (const uint8_t *)body, (uint32_t)bl, sc->data, (uint32_t)sc->len, trace,
                  tl);
  aws_mattrs_free(&ma);
  aws_md5_hex(body, bl, p->md5_body);
  p->blob = b;
  p->size = (uint32_t)size;
  p->delay = rc ? (int32_t)delay : -1;
  return AWS_OK;
}

/* Sends a prepared message; returns 0 and its id, or an error. */
static aws_err_t send_prepared(areq_t *r, queue_t *q, prep_t *p, char mid[GBX_MSGID_LEN + 1],
                               char *why, size_t wl) {
  uint64_t idn;
  gbx_err_t e = broker_send(r->s->broker, q, p->blob, p->size, p->delay, r->now, &idn);
  p->blob = NULL; /* the broker took the reference, sent or not */
  if (e) {
    snprintf(why, wl, "%s", gbx_err_message(e));
    return AWS_E_OVER_LIMIT;
  }
  ids_msgid(r->s->ids, idn, mid);
  mid[GBX_MSGID_LEN] = 0;
  return AWS_OK;
}

static void sqs_send_message(areq_t *r) {
  queue_t *q = need_queue(r);
  prep_t p;
  char why[AWS_MAX_ERRMSG], mid[GBX_MSGID_LEN + 1];
  if (!q)
    return;
  aws_err_t e = prepare(r, q, r->in, &p, why, sizeof(why));
  if (!e)
    e = send_prepared(r, q, &p, mid, why, sizeof(why));
  if (e) {
    aws_fail(r, e, "%s", why);
    return;
  }
  cJSON *o = cJSON_CreateObject();
  add_str(o, "MD5OfMessageBody", p.md5_body);
  if (p.has_attrs)
    add_str(o, "MD5OfMessageAttributes", p.md5_attrs);
  if (p.has_sys)
    add_str(o, "MD5OfMessageSystemAttributes", p.md5_sys);
  add_str(o, "MessageId", mid);
  aws_reply(r, o);
}

/* Checks a batch's Entries (count, ids) as SQS does; answers r on error. */
static const cJSON *batch_entries(areq_t *r, const char *entry_name) {
  const cJSON *en = list_of(r->in, "Entries");
  int n = cJSON_GetArraySize(en);
  if (!en || n == 0) {
    aws_fail(r, AWS_E_EMPTY_BATCH, "There should be at least one %s in the request.", entry_name);
    return NULL;
  }
  if (n > (int)SQS_MAX_BATCH) {
    aws_fail(r, AWS_E_TOO_MANY_ENTRIES,
             "Maximum number of entries per request are %u. You have sent %d.", SQS_MAX_BATCH, n);
    return NULL;
  }
  for (const cJSON *c = en->child; c; c = c->next) {
    const char *id = aws_str(c, "Id");
    if (!id || !gbx_entry_id_valid(id, strlen(id))) {
      aws_fail(r, AWS_E_INVALID_BATCH_ID,
               "A batch entry id can only contain alphanumeric characters, hyphens and "
               "underscores. It can be at most 80 letters long.");
      return NULL;
    }
    for (const cJSON *d = en->child; d != c; d = d->next) {
      if (!strcmp(aws_str(d, "Id"), id)) {
        aws_fail(r, AWS_E_IDS_NOT_DISTINCT, "Id %s repeated.", id);
        return NULL;
      }
    }
  }
  return en;
}

static void add_failed(cJSON *failed, const char *id, aws_err_t e, const char *why) {
  cJSON *f = cJSON_CreateObject();
  add_str(f, "Id", id);
  cJSON_AddBoolToObject(f, "SenderFault", e != AWS_E_INTERNAL && e != AWS_E_OVER_LIMIT);
  add_str(f, "Code", aws_err_code(e));
  add_str(f, "Message", why);
  cJSON_AddItemToArray(failed, f);
}

/* What a batch entry declares, as SQS sums a batch: the body and each
 * attribute's name, type and value, whether or not the entry is valid (a
 * valid entry's size is prepare()'s). Binary values count decoded. */
static uint64_t entry_bytes(const cJSON *e) {
  const char *body = aws_str(e, "MessageBody");
  uint64_t n = body ? strlen(body) : 0;
  const cJSON *ma = cJSON_GetObjectItemCaseSensitive(e, "MessageAttributes");
  for (const cJSON *a = cJSON_IsObject(ma) ? ma->child : NULL; a; a = a->next) {
    const char *t = aws_str(a, "DataType"), *sv = aws_str(a, "StringValue"),
               *bv = aws_str(a, "BinaryValue");
    n += strlen(a->string) + (t ? strlen(t) : 0) + (sv ? strlen(sv) : 0) +
         (bv ? strlen(bv) / 4 * 3 : 0);
  }
  return n;
}

static void sqs_send_message_batch(areq_t *r) {
  queue_t *q = need_queue(r);
  if (!q)
    return;
  const cJSON *en = batch_entries(r, "SendMessageBatchRequestEntry");
  if (!en)
    return;
  prep_t p[SQS_MAX_BATCH];
  aws_err_t err[SQS_MAX_BATCH];
  char why[SQS_MAX_BATCH][256];
  uint64_t total = 0;
  uint32_t n = 0;
  for (const cJSON *c = en->child; c; c = c->next, n++) {
    err[n] = prepare(r, q, c, &p[n], why[n], sizeof(why[n]));
    total += err[n] ? entry_bytes(c) : p[n].size;
  }
  if (total > GBX_MAX_BATCH_BYTES) {
    for (uint32_t i = 0; i < n; i++)
      blob_unref(p[i].blob);
    aws_fail(r, AWS_E_BATCH_TOO_LONG, "Batch requested message too long.");
    return;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON *ok = cJSON_CreateArray(), *failed = cJSON_CreateArray();
  uint32_t i = 0;
  for (const cJSON *c = en->child; c; c = c->next, i++) {
    char mid[GBX_MSGID_LEN + 1];
    const char *id = aws_str(c, "Id");
    if (!err[i])
      err[i] = send_prepared(r, q, &p[i], mid, why[i], sizeof(why[i]));
    if (err[i]) {
      add_failed(failed, id, err[i], why[i]);
      continue;
    }
    cJSON *s = cJSON_CreateObject();
    add_str(s, "Id", id);
    add_str(s, "MessageId", mid);
    add_str(s, "MD5OfMessageBody", p[i].md5_body);
    if (p[i].has_attrs)
      add_str(s, "MD5OfMessageAttributes", p[i].md5_attrs);
    if (p[i].has_sys)
      add_str(s, "MD5OfMessageSystemAttributes", p[i].md5_sys);
    cJSON_AddItemToArray(ok, s);
  }
  cJSON_AddItemToObject(o, "Successful", ok);
  cJSON_AddItemToObject(o, "Failed", failed);
  aws_reply(r, o);
}

/* ---- receiving ---- */

enum {
  SYS_SENDER = 1,
  SYS_SENT = 2,
  SYS_RC = 4,
  SYS_FIRST = 8,
  SYS_DLQ_SRC = 16,
  SYS_TRACE = 32,
  SYS_ALL = 63
};

static const struct {
  const char *name;
  unsigned bit;
} sysattrs[] = {
    {"All", SYS_ALL},
    {"SenderId", SYS_SENDER},
    {"SentTimestamp", SYS_SENT},
    {"ApproximateReceiveCount", SYS_RC},
    {"ApproximateFirstReceiveTimestamp", SYS_FIRST},
    {"DeadLetterQueueSourceArn", SYS_DLQ_SRC},
    {"AWSTraceHeader", SYS_TRACE},
    /* known to SQS; a standard queue has none of these to return */
    {"SqsManagedSseEnabled", 0},
    {"MessageDeduplicationId", 0},
    {"MessageGroupId", 0},
    {"SequenceNumber", 0},
};

/* The system attributes asked for; -1 (answered) for an unknown name. */
static int sys_mask(areq_t *r, unsigned *mask) {
  static const char *const lists[] = {"AttributeNames", "MessageSystemAttributeNames"};
  *mask = 0;
  for (int l = 0; l < 2; l++) {
    const cJSON *names = list_of(r->in, lists[l]);
    for (const cJSON *c = names ? names->child : NULL; c; c = c->next) {
      size_t i, n = sizeof(sysattrs) / sizeof(sysattrs[0]);
      for (i = 0; i < n; i++)
        if (cJSON_IsString(c) && !strcmp(c->valuestring, sysattrs[i].name))
          break;
      if (i == n) {
        aws_fail(r, AWS_E_INVALID_ATTRIBUTE_NAME, "Unknown Attribute %.80s.",
                 cJSON_IsString(c) ? c->valuestring : "?");
        return -1;
      }
      *mask |= sysattrs[i].bit;
    }
  }
  return 0;
}

/* 1 if the message attribute name is selected by MessageAttributeNames
 * ("All", ".*", "prefix.*" or the name). */
static int attr_wanted(const cJSON *names, const char *n, size_t nl) {
  for (const cJSON *c = names ? names->child : NULL; c; c = c->next) {
    if (!cJSON_IsString(c))
      continue;
    const char *w = c->valuestring;
    size_t wl = strlen(w);
    if (!strcmp(w, "All") || !strcmp(w, ".*"))
      return 1;
    if (wl >= 2 && !strcmp(w + wl - 2, ".*") && nl >= wl - 1 && !strncmp(n, w, wl - 1))
      return 1;
    if (wl == nl && !memcmp(w, n, nl))
      return 1;
  }
  return 0;
}

/* Copies text replacing what is not XML text with U+FFFD (a native
 * attribute value may hold such bytes; SQS text cannot). */
static char *clean_text(const char *p, size_t n) {
  char *o = malloc(3 * n + 1);
  size_t k = 0;
  if (!o)
    abort();
  for (size_t i = 0; i < n;) {
    size_t step = 1;
    uint32_t bad;
    /* find the longest valid prefix of at most 4 bytes */
    for (size_t s = 1; s <= 4 && i + s <= n; s++) {
      if (text_valid((const uint8_t *)p + i, s, &bad)) {
        step = s;
        memcpy(o + k, p + i, s);
        k += s;
        goto next;
      }
    }
    memcpy(o + k, "\xEF\xBF\xBD", 3);
    k += 3;
  next:
    i += step;
  }
  o[k] = 0;
  return o;
}

/* Decodes a blob's stored attributes (a packed msgpack map). */
static int stored_attrs(const uint8_t *attrs, uint32_t al, gbx_buf_t *w, gbx_doc_t *d,
                        gbx_attr_t *out, uint32_t *n) {
  static const uint8_t hdr[] = {0x81, 0xa1, 'a'};
  gbx_errbuf_t eb;
  w->len = 0;
  *n = 0;
  if (!al)
    return 0;
  if (gbx_buf_append(w, hdr, sizeof(hdr)) || gbx_buf_append(w, attrs, al))
    return -1;
  if (gbx_doc_parse(d, w->data, w->len, &eb) != GBX_E_OK)
    return -1;
  if (gbx_attrs_decode(gbx_map_get(&d->root, "a"), out, n, &eb) != GBX_E_OK) {
    gbx_doc_free(d);
    *n = 0;
    return -1;
  }
  return 1;
}

/* Renders one delivered message in the JSON protocol's shape. */
static cJSON *render_msg(areq_t *r, const delivery_t *d, unsigned sys, const cJSON *anames) {
  server_t *s = r->s;
  char mid[GBX_MSGID_LEN + 1], rh[IDS_RECEIPT_LEN + 1], md5[33];
  receipt_t rc = {d->qid, d->seq, d->rc};
  const uint8_t *body, *attrs;
  uint32_t bl, al;
  ids_msgid(s->ids, d->idn, mid);
  mid[GBX_MSGID_LEN] = 0;
  ids_receipt_make(s->ids, &rc, rh);
  rh[IDS_RECEIPT_LEN] = 0;
  if (blob_parse(d->blob->data, d->blob->len, &body, &bl, &attrs, &al) != 0) {
    body = attrs = d->blob->data;
    bl = al = 0;
  }
  if (d->envelope) {
    /* from a topic without raw delivery: the body is SNS's envelope and
     * the attributes travel inside it */
    blob_pub_t pm;
    char sid[GBX_MSGID_LEN + 1];
    const char *sidp = NULL;
    queue_t *dq = broker_queue_by_id(s->broker, d->qid);
    if (blob_pub_meta(d->blob->data, d->blob->len, &pm) == 0 && dq) {
      const sub_t *sb = topics_sub_for(s->topics, pm.topic, pm.topic_len, dq->name);
      if (sb) {
        topics_sub_id(s->topics, sb, sid);
        sid[GBX_MSGID_LEN] = 0;
        sidp = sid;
      }
    }
    if (envelope_render(&s->env, s->ids, d->blob->data, d->blob->len, sidp, &r->a->env) == 0) {
      body = r->a->env.data;
      bl = (uint32_t)r->a->env.len;
      al = 0;
    }
  }
  cJSON *m = cJSON_CreateObject();
  add_str(m, "MessageId", mid);
  add_str(m, "ReceiptHandle", rh);
  uint32_t badc;
  int b64body = !text_valid(body, bl, &badc);
  char *text;
  if (b64body) {
    text = aws_b64(body, bl);
  } else {
    text = malloc((size_t)bl + 1);
    if (text) {
      memcpy(text, body, bl);
      text[bl] = 0;
    }
  }
  if (!text)
    abort();
  aws_md5_hex(text, strlen(text), md5);
  add_str(m, "MD5OfBody", md5);
  add_str(m, "Body", text);
  free(text);
  if (sys) {
    cJSON *sa = cJSON_AddObjectToObject(m, "Attributes");
    if (sys & SYS_SENDER)
      add_str(sa, "SenderId", s->cfg.account);
    if (sys & SYS_SENT)
      add_u64s(sa, "SentTimestamp", (uint64_t)d->sent_ms);
    if (sys & SYS_RC)
      add_u64s(sa, "ApproximateReceiveCount", d->rc);
    if (sys & SYS_FIRST)
      add_u64s(sa, "ApproximateFirstReceiveTimestamp", (uint64_t)d->first_ms);
    queue_t *src = d->src_qid ? broker_queue_by_id(s->broker, d->src_qid) : NULL;
    if ((sys & SYS_DLQ_SRC) && src) {
      char arn[200];
      queue_arn(r, src->name, arn, sizeof(arn));
      add_str(sa, "DeadLetterQueueSourceArn", arn);
    }
    const char *trace;
    uint32_t tl;
    if ((sys & SYS_TRACE) && blob_trace(d->blob->data, d->blob->len, &trace, &tl) == 0 && tl) {
      uint32_t bad;
      char *t = text_valid((const uint8_t *)trace, tl, &bad) ? str_copy(trace, tl)
                                                             : clean_text(trace, tl);
      if (!t)
        abort();
      add_str(sa, "AWSTraceHeader", t);
      free(t);
    }
  }
  /* message attributes: those asked for, plus the body-encoding marker */
  gbx_attr_t all[GBX_MAX_ATTRS + 1], sel[GBX_MAX_ATTRS + 1];
  char *cleaned[GBX_MAX_ATTRS + 1];
  uint32_t n = 0, k = 0;
  gbx_doc_t doc;
  gbx_buf_t w;
  gbx_buf_init(&w);
  int parsed = stored_attrs(attrs, al, &w, &doc, all, &n);
  if (parsed < 0)
    n = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (!attr_wanted(anames, all[i].name, all[i].name_len))
      continue;
    sel[k] = all[i];
    cleaned[k] = NULL;
    if (strncmp(sel[k].type, "Binary", 6) &&
        !text_valid((const uint8_t *)sel[k].value, sel[k].value_len, &badc)) {
      cleaned[k] = clean_text(sel[k].value, sel[k].value_len);
      sel[k].value = cleaned[k];
      sel[k].value_len = (uint32_t)strlen(cleaned[k]);
    }
    k++;
  }
  if (b64body) {
    sel[k] =
        (gbx_attr_t){BODY_ENCODING_ATTR, sizeof(BODY_ENCODING_ATTR) - 1, "String", 6, "base64", 6};
    cleaned[k++] = NULL;
  }
  if (k) {
    cJSON *ma = cJSON_CreateObject();
    for (uint32_t i = 0; i < k; i++) {
      char name[GBX_MAX_ATTR_NAME + 1], type[GBX_MAX_ATTR_TYPE + 1];
      snprintf(name, sizeof(name), "%.*s", (int)sel[i].name_len, sel[i].name);
      snprintf(type, sizeof(type), "%.*s", (int)sel[i].type_len, sel[i].type);
      cJSON *v = cJSON_AddObjectToObject(ma, name);
      if (!strncmp(type, "Binary", 6)) {
        char *b = aws_b64(sel[i].value, sel[i].value_len);
        if (!b)
          abort();
        add_str(v, "BinaryValue", b);
        free(b);
      } else {
        char *t = str_copy(sel[i].value, sel[i].value_len);
        if (!t)
          abort();
        add_str(v, "StringValue", t);
        free(t);
      }
      add_str(v, "DataType", type);
    }
    /* the digest covers the attributes returned, as SDKs verify them */
    if (aws_attrs_md5(sel, k, md5) == 0)
      add_str(m, "MD5OfMessageAttributes", md5);
    cJSON_AddItemToObject(m, "MessageAttributes", ma);
  }
  for (uint32_t i = 0; i < k; i++)
    free(cleaned[i]);
  if (parsed > 0)
    gbx_doc_free(&doc);
  gbx_buf_free(&w);
  return m;
}

/* Answers a receive with its deliveries; releases their blobs. Items whose
 * body is gone (purged meanwhile) are left out. */
static void reply_deliveries(areq_t *r, delivery_t *d, uint32_t n) {
  unsigned sys = 0;
  sys_mask(r, &sys); /* validated when the request arrived */
  const cJSON *anames = list_of(r->in, "MessageAttributeNames");
  cJSON *o = cJSON_CreateObject();
  cJSON *msgs = NULL;
  for (uint32_t i = 0; i < n; i++) {
    if (!d[i].blob)
      continue;
    if (!msgs)
      msgs = cJSON_AddArrayToObject(o, "Messages");
    cJSON_AddItemToArray(msgs, render_msg(r, &d[i], sys, anames));
    blob_unref(d[i].blob);
    d[i].blob = NULL;
  }
  aws_reply(r, o);
}

typedef struct rfetch {
  areq_t *r;
  uint32_t n;
  delivery_t d[SQS_MAX_RECEIVE];
} rfetch_t;

static void receive_fetched(fetch_job_t *j) {
  rfetch_t *rf = j->ud;
  areq_t *r = rf->r;
  server_t *s = r->s;
  uint32_t k = 0;
  for (uint32_t i = 0; i < rf->n && k < j->n; i++) {
    if (rf->d[i].blob)
      continue;
    rf->d[i].blob = j->items[k].blob;
    j->items[k++].blob = NULL;
  }
  s->fetches_in_flight--;
  r->fetching = 0;
  if (r->aborted) {
    for (uint32_t i = 0; i < rf->n; i++)
      blob_unref(rf->d[i].blob);
    aws_req_free(r);
  } else if (j->failed) {
    for (uint32_t i = 0; i < rf->n; i++)
      blob_unref(rf->d[i].blob);
    aws_fail(r, AWS_E_INTERNAL, "Reading message bodies from the store failed.");
  } else {
    reply_deliveries(r, rf->d, rf->n);
  }
  free(rf);
  fetch_job_free(j);
}

static void deliver(areq_t *r, delivery_t *d, uint32_t n) {
  uint32_t missing = 0;
  for (uint32_t i = 0; i < n; i++)
    missing += d[i].blob == NULL;
  if (!missing) {
    reply_deliveries(r, d, n);
    return;
  }
  /* some bodies are on disk only: read them off the loop thread first */
  rfetch_t *rf = malloc(sizeof(*rf));
  fetch_job_t *j = rf ? fetch_job_new(r->s->store, missing, receive_fetched, rf) : NULL;
  if (!j)
    abort();
  rf->r = r;
  rf->n = n;
  memcpy(rf->d, d, n * sizeof(delivery_t));
  for (uint32_t i = 0; i < n; i++)
    if (!d[i].blob)
      fetch_job_add(j, d[i].qid, d[i].seq, d[i].body_id);
  aws_fetch(r, j);
}

static void on_waiter(void *ctx, waiter_t *w, gbx_err_t err, delivery_t *d, uint32_t n) {
  areq_t *r = w->owner;
  (void)ctx;
  r->w = NULL;
  free(w);
  if (err == GBX_E_ACCESS_DENIED || err == GBX_E_AUTH_REVOKED) {
    /* a reload revoked the signer or no longer allows the receive */
    aws_fail(r, AWS_E_ACCESS_DENIED,
             err == GBX_E_AUTH_REVOKED
                 ? "The credentials that signed this request were revoked while it waited."
                 : "The caller's policy no longer allows sqs:ReceiveMessage on this queue.");
    return;
  }
  if (err) {
    aws_fail(r, AWS_E_QUEUE_DOES_NOT_EXIST, NO_QUEUE);
    return;
  }
  if (n) {
    commit_note_request(r->s->commit);
    server_note_writer(r->s, r->h);
  }
  deliver(r, d, n);
}

static void sqs_receive_message(areq_t *r) {
  queue_t *q = need_queue(r);
  int64_t max = 1, vis = -1, wait = -1;
  unsigned sys;
  if (!q)
    return;
  if (int_param(r, r->in, "MaxNumberOfMessages", 1, SQS_MAX_RECEIVE, &max,
                "Must be between 1 and 10, if provided.") < 0 ||
      int_param(r, r->in, "VisibilityTimeout", 0, GBX_VIS_MAX, &vis,
                "Must be >= 0 and <= 43200, if provided.") < 0 ||
      int_param(r, r->in, "WaitTimeSeconds", 0, GBX_WAIT_MAX, &wait,
                "Must be >= 0 and <= 20, if provided.") < 0 ||
      sys_mask(r, &sys) < 0)
    return;
  if (wait < 0)
    wait = q->rec.a.wait;
  delivery_t d[SQS_MAX_RECEIVE];
  uint32_t n = 0;
  gbx_err_t e = broker_receive(r->s->broker, q, (uint32_t)max, (int32_t)vis, r->now, d, &n);
  if (e) {
    aws_fail(r, e == GBX_E_OVER_LIMIT ? AWS_E_OVER_LIMIT : AWS_E_INTERNAL, "%s",
             gbx_err_message(e));
    return;
  }
  if (n || !wait) {
    deliver(r, d, n);
    return;
  }
  waiter_t *w = calloc(1, sizeof(*w));
  if (!w)
    abort();
  w->max = (uint32_t)max;
  w->vis = (int32_t)vis;
  w->owner = r;
  w->who = r->who.p ? &r->id : NULL;
  w->serve = on_waiter;
  w->serve_ctx = r->a;
  r->w = w;
  if (broker_wait(r->s->broker, q, w, r->now + (uint64_t)wait * 1000) != 0)
    abort();
}

/* ---- deleting and visibility ---- */

static aws_err_t receipt_err(gbx_err_t e, const char *rh, char *why, size_t wl) {
  switch (e) {
  case GBX_E_OK:
    return AWS_OK;
  case GBX_E_RECEIPT_INVALID:
    snprintf(why, wl, "The input receipt handle \"%.200s\" is not a valid receipt handle.", rh);
    return AWS_E_RECEIPT_INVALID;
  case GBX_E_RECEIPT_STALE:
    snprintf(why, wl,
             "Value %.200s for parameter ReceiptHandle is invalid. Reason: The receipt handle has "
             "expired.",
             rh);
    return AWS_E_INVALID_PARAMETER_VALUE;
  case GBX_E_NOT_IN_FLIGHT:
    snprintf(why, wl, "Message does not exist or is not available for visibility timeout change.");
    return AWS_E_NOT_INFLIGHT;
  case GBX_E_OUT_OF_RANGE:
    snprintf(why, wl,
             "Value for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout "
             "for the message is beyond the limit [43200 seconds]");
    return AWS_E_INVALID_PARAMETER_VALUE;
  default:
    snprintf(why, wl, "%s", gbx_err_message(e));
    return AWS_E_INTERNAL;
  }
}

static aws_err_t delete_one(areq_t *r, queue_t *q, const cJSON *m, char *why, size_t wl) {
  const char *rh = aws_str(m, "ReceiptHandle");
  if (!rh || !rh[0]) {
    snprintf(why, wl, "The request must contain the parameter ReceiptHandle.");
    return AWS_E_MISSING_PARAMETER;
  }
  gbx_err_t e = strlen(rh) > GBX_MAX_RECEIPT
                    ? GBX_E_RECEIPT_INVALID
                    : broker_delete(r->s->broker, q, rh, strlen(rh), r->now);
  /* a handle from an earlier receive: success, nothing deleted (as SQS) */
  if (e == GBX_E_RECEIPT_STALE)
    e = GBX_E_OK;
  return receipt_err(e, rh, why, wl);
}

static aws_err_t vis_one(areq_t *r, queue_t *q, const cJSON *m, char *why, size_t wl) {
  const char *rh = aws_str(m, "ReceiptHandle");
  int64_t vis;
  if (!rh || !rh[0]) {
    snprintf(why, wl, "The request must contain the parameter ReceiptHandle.");
    return AWS_E_MISSING_PARAMETER;
  }
  int rc = aws_int(m, "VisibilityTimeout", &vis);
  if (rc == 0) {
    snprintf(why, wl, "The request must contain the parameter VisibilityTimeout.");
    return AWS_E_MISSING_PARAMETER;
  }
  if (rc < 0 || vis < 0 || vis > GBX_VIS_MAX) {
    snprintf(why, wl,
             "Value for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= "
             "43200.");
    return AWS_E_INVALID_PARAMETER_VALUE;
  }
  gbx_err_t e = strlen(rh) > GBX_MAX_RECEIPT
                    ? GBX_E_RECEIPT_INVALID
                    : broker_change_vis(r->s->broker, q, rh, strlen(rh), (uint32_t)vis, r->now);
  return receipt_err(e, rh, why, wl);
}

typedef aws_err_t (*one_fn)(areq_t *, queue_t *, const cJSON *, char *, size_t);

static void single(areq_t *r, one_fn fn) {
  queue_t *q = need_queue(r);
  char why[AWS_MAX_ERRMSG];
  if (!q)
    return;
  aws_err_t e = fn(r, q, r->in, why, sizeof(why));
  if (e)
    aws_fail(r, e, "%s", why);
  else
    aws_reply(r, NULL);
}

static void batch(areq_t *r, one_fn fn, const char *entry_name) {
  queue_t *q = need_queue(r);
  if (!q)
    return;
  const cJSON *en = batch_entries(r, entry_name);
  if (!en)
    return;
  cJSON *o = cJSON_CreateObject();
  cJSON *ok = cJSON_CreateArray(), *failed = cJSON_CreateArray();
  for (const cJSON *c = en->child; c; c = c->next) {
    char why[AWS_MAX_ERRMSG];
    aws_err_t e = fn(r, q, c, why, sizeof(why));
    if (e) {
      add_failed(failed, aws_str(c, "Id"), e, why);
      continue;
    }
    cJSON *s = cJSON_CreateObject();
    add_str(s, "Id", aws_str(c, "Id"));
    cJSON_AddItemToArray(ok, s);
  }
  cJSON_AddItemToObject(o, "Successful", ok);
  cJSON_AddItemToObject(o, "Failed", failed);
  aws_reply(r, o);
}

static void sqs_delete_message(areq_t *r) {
  single(r, delete_one);
}
static void sqs_change_visibility(areq_t *r) {
  single(r, vis_one);
}
static void sqs_delete_message_batch(areq_t *r) {
  batch(r, delete_one, "DeleteMessageBatchRequestEntry");
}
static void sqs_change_visibility_batch(areq_t *r) {
  batch(r, vis_one, "ChangeMessageVisibilityBatchRequestEntry");
}

/* ---- message move tasks (the broker's redrive) ---- */

#define TASK_ID_MAX 32 /* "4294967295-" and a signed 64-bit number */
/* The id of dlq's last task, QID-STARTED_MS, into out (TASK_ID_MAX bytes). */
static void task_id(const areq_t *r, const queue_t *dlq, char out[TASK_ID_MAX]) {
  redrive_status_t st;
  broker_redrive_status(r->s->broker, dlq, &st);
  snprintf(out, TASK_ID_MAX, "%u-%lld", dlq->rec.qid, (long long)st.started_ms);
}

/* Task handles are base64 of {"taskId": "QID-STARTED_MS", "sourceArn": ARN},
 * as SQS's are opaque base64 JSON: the DLQ and the task's start (each task
 * of a DLQ starts at least a millisecond after the one before), so the
 * handle of a task that ended does not cancel a later one. */
static void make_handle(const areq_t *r, const queue_t *dlq, char *out, size_t n) {
  char arn[200], text[360], id[TASK_ID_MAX];
  task_id(r, dlq, id);
  queue_arn(r, dlq->name, arn, sizeof(arn));
  snprintf(text, sizeof(text), "{\"taskId\":\"%s\",\"sourceArn\":\"%s\"}", id, arn);
  char *b = aws_b64(text, strlen(text));
  if (!b)
    abort();
  snprintf(out, n, "%s", b);
  free(b);
}

static void sqs_start_move_task(areq_t *r) {
  const char *src = aws_str(r->in, "SourceArn"), *dst_arn = aws_str(r->in, "DestinationArn");
  int64_t rate = SQS_MAX_MOVE_RATE;
  gbx_errbuf_t eb = {0};
  if (!src) {
    aws_fail(r, AWS_E_MISSING_PARAMETER, "The request must contain the parameter SourceArn.");
    return;
  }
  if (!authorize_arn(r, r->iam, src))
    return;
  queue_t *dlq = queue_by_arn(r, src), *dst = NULL;
  if (!dlq) {
    aws_fail(r, AWS_E_RESOURCE_NOT_FOUND,
             "The resource that you specified for the SourceArn parameter doesn't exist.");
    return;
  }
  /* the move writes into its destination, or back into every source */
  if (dst_arn ? !authorize_arn(r, "sqs:SendMessage", dst_arn) : !may_send_to_sources(r, dlq))
    return;
  if (dst_arn && !(dst = queue_by_arn(r, dst_arn))) {
    aws_fail(r, AWS_E_RESOURCE_NOT_FOUND,
             "The resource that you specified for the DestinationArn parameter doesn't exist.");
    return;
  }
  if (int_param(r, r->in, "MaxNumberOfMessagesPerSecond", 1, SQS_MAX_MOVE_RATE, &rate,
                "Must be between 1 and 500.") < 0)
    return;
  qlist_t none = {NULL, 0, 0};
  if (!broker_dlq_sources(r->s->broker, dlq, qcollect, &none)) {
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE,
             "Source queue must be configured as a Dead Letter Queue.");
    return;
  }
  gbx_err_t e = broker_redrive_start(r->s->broker, dlq, dst, (uint32_t)rate, r->now, &eb);
  if (e == GBX_E_REDRIVE_RUNNING) {
    aws_fail(r, AWS_E_UNSUPPORTED_OPERATION,
             "There is already a task running. Only one active task is allowed for a source "
             "queue arn at a given time.");
    return;
  }
  if (e) {
    aws_fail(r, AWS_E_INVALID_PARAMETER_VALUE, "%s", eb.msg);
    return;
  }
  char h[512];
  make_handle(r, dlq, h, sizeof(h));
  cJSON *o = cJSON_CreateObject();
  add_str(o, "TaskHandle", h);
  aws_reply(r, o);
}

static void sqs_cancel_move_task(areq_t *r) {
  const char *h = aws_str(r->in, "TaskHandle");
  uint8_t buf[512];
  if (!h) {
    aws_fail(r, AWS_E_MISSING_PARAMETER, "The request must contain the parameter TaskHandle.");
    return;
  }
  size_t hl = strlen(h);
  long n = hl < 4 * (sizeof(buf) - 1) / 3 ? aws_unb64(h, hl, buf) : -1;
  cJSON *j = NULL;
  queue_t *dlq = NULL;
  if (n > 0) {
    buf[n] = 0;
    j = cJSON_Parse((const char *)buf);
    dlq = queue_by_arn(r, aws_str(j, "sourceArn"));
    const char *tid = aws_str(j, "taskId");
    char want[TASK_ID_MAX];
    if (dlq) {
      task_id(r, dlq, want);
      if (!tid || strcmp(tid, want) != 0)
        dlq = NULL;
    }
  }
  cJSON_Delete(j);
  uint64_t moved = 0;
  if (dlq && !aws_authorize(r, r->iam, AUTHZ_QUEUE, dlq->name, strlen(dlq->name)))
    return;
  if (!dlq || broker_redrive_cancel(r->s->broker, dlq, &moved) != GBX_E_OK) {
    aws_fail(r, AWS_E_RESOURCE_NOT_FOUND, "Task does not exist.");
    return;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "ApproximateNumberOfMessagesMoved", (double)moved);
  aws_reply(r, o);
}

static void sqs_list_move_tasks(areq_t *r) {
  const char *src = aws_str(r->in, "SourceArn");
  int64_t max = 1;
  if (!src) {
    aws_fail(r, AWS_E_MISSING_PARAMETER, "The request must contain the parameter SourceArn.");
    return;
  }
  if (!authorize_arn(r, r->iam, src))
    return;
  queue_t *dlq = queue_by_arn(r, src);
  if (!dlq) {
    aws_fail(r, AWS_E_RESOURCE_NOT_FOUND,
             "The resource that you specified for the SourceArn parameter doesn't exist.");
    return;
  }
  if (int_param(r, r->in, "MaxResults", 1, SQS_MAX_MOVE_TASKS, &max, "Must be between 1 and 10.") <
      0)
    return;
  redrive_status_t st;
  broker_redrive_status(r->s->broker, dlq, &st);
  cJSON *o = cJSON_CreateObject();
  cJSON *res = cJSON_AddArrayToObject(o, "Results");
  if (strcmp(st.state, "none") != 0) {
    static const struct {
      const char *ours, *aws;
    } states[] = {{"running", "RUNNING"},
                  {"completed", "COMPLETED"},
                  {"cancelled", "CANCELLED"},
                  {"failed", "FAILED"}};
    const char *state = "FAILED";
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
      if (!strcmp(st.state, states[i].ours))
        state = states[i].aws;
    cJSON *t = cJSON_CreateObject();
    char arn[200], h[512];
    if (!strcmp(state, "RUNNING")) {
      make_handle(r, dlq, h, sizeof(h));
      add_str(t, "TaskHandle", h);
    }
    add_str(t, "Status", state);
    add_str(t, "SourceArn", src);
    if (st.dst[0]) {
      queue_arn(r, st.dst, arn, sizeof(arn));
      add_str(t, "DestinationArn", arn);
    }
    cJSON_AddNumberToObject(t, "ApproximateNumberOfMessagesMoved", (double)st.moved);
    cJSON_AddNumberToObject(t, "ApproximateNumberOfMessagesToMove", (double)st.total);
    cJSON_AddNumberToObject(t, "MaxNumberOfMessagesPerSecond", (double)st.rate);
    cJSON_AddNumberToObject(t, "StartedTimestamp", (double)st.started_ms);
    if (st.msg[0])
      add_str(t, "FailureReason", st.msg);
    cJSON_AddItemToArray(res, t);
  }
  aws_reply(r, o);
}

/* ---- dispatch ---- */

typedef void (*handler_t)(areq_t *);

static const struct {
  const char *name;
  handler_t fn;
} sqs_actions[] = {
    {"CreateQueue", sqs_create_queue},
    {"DeleteQueue", sqs_delete_queue},
    {"GetQueueUrl", sqs_get_queue_url},
    {"ListQueues", sqs_list_queues},
    {"GetQueueAttributes", sqs_get_queue_attributes},
    {"SetQueueAttributes", sqs_set_queue_attributes},
    {"SendMessage", sqs_send_message},
    {"SendMessageBatch", sqs_send_message_batch},
    {"ReceiveMessage", sqs_receive_message},
    {"DeleteMessage", sqs_delete_message},
    {"DeleteMessageBatch", sqs_delete_message_batch},
    {"ChangeMessageVisibility", sqs_change_visibility},
    {"ChangeMessageVisibilityBatch", sqs_change_visibility_batch},
    {"PurgeQueue", sqs_purge_queue},
    {"TagQueue", sqs_tag_queue},
    {"UntagQueue", sqs_untag_queue},
    {"ListQueueTags", sqs_list_queue_tags},
    {"ListDeadLetterSourceQueues", sqs_list_dlq_sources},
    {"StartMessageMoveTask", sqs_start_move_task},
    {"CancelMessageMoveTask", sqs_cancel_move_task},
    {"ListMessageMoveTasks", sqs_list_move_tasks},
    {"AddPermission", sqs_add_permission},
    {"RemovePermission", sqs_remove_permission},
};

void aws_sqs_handle(areq_t *r) {
  for (size_t i = 0; i < sizeof(sqs_actions) / sizeof(sqs_actions[0]); i++) {
    if (!strcmp(r->action, sqs_actions[i].name)) {
      sqs_actions[i].fn(r);
      return;
    }
  }
  aws_fail(r, AWS_E_INVALID_ACTION, "The action %s is not valid for this endpoint.", r->action);
}
