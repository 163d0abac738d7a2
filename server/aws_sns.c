/* aws_sns.c - the SNS actions of the AWS-compatible face (query protocol).
 * Topics and subscriptions are topic.h's; a subscription's endpoint is an
 * SQS queue ARN (protocol "sqs", the only one Gearbox delivers to). ARNs:
 * topic arn:aws:sns:REGION:ACCOUNT:NAME, subscription TOPICARN:SUBID. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_fmt.h"
#include "log.h"

/* SNS's page sizes: ListTopics 100, ListSubscriptions(ByTopic) 100. */
#define SNS_PAGE 100u
/* PublishBatch entries, as SNS. */
#define SNS_MAX_BATCH 10u

static const char *const sns_actions[] = {"CreateTopic",
                                          "DeleteTopic",
                                          "ListTopics",
                                          "GetTopicAttributes",
                                          "SetTopicAttributes",
                                          "Subscribe",
                                          "Unsubscribe",
                                          "ListSubscriptions",
                                          "ListSubscriptionsByTopic",
                                          "GetSubscriptionAttributes",
                                          "SetSubscriptionAttributes",
                                          "Publish",
                                          "PublishBatch",
                                          "TagResource",
                                          "UntagResource",
                                          "ListTagsForResource"};

int aws_sns_has(const char *action) {
  for (size_t i = 0; i < sizeof(sns_actions) / sizeof(sns_actions[0]); i++)
    if (!strcmp(action, sns_actions[i]))
      return 1;
  return 0;
}

static void topic_arn(const areq_t *r, const char *name, char *out, size_t n) {
  aws_arn(r->s, "sns", name, out, n);
}

static void sub_arn(const areq_t *r, const sub_t *sb, char *out, size_t n) {
  char id[GBX_MSGID_LEN + 1], tarn[200];
  topics_sub_id(r->s->topics, sb, id);
  id[GBX_MSGID_LEN] = 0;
  topic_arn(r, sb->topic->name, tarn, sizeof(tarn));
  snprintf(out, n, "%s:%s", tarn, id);
}

static void add_str(cJSON *o, const char *k, const char *v) {
  cJSON_AddStringToObject(o, k, v);
}

/* The topic named by parameter k (an ARN); answers r itself when missing
 * or unknown. */
/* aws_authorize on the topic an ARN names (name/nl from aws_arn_name; a
 * malformed ARN is checked as written, so a pattern can still deny it). */
static int authorize_topic(areq_t *r, const char *action, const char *arn, const char *name,
                           size_t nl) {
  if (!nl) {
    name = arn;
    nl = strlen(arn);
  }
  return aws_authorize(r, action, AUTHZ_TOPIC, name, nl);
}

static topic_t *need_topic(areq_t *r, const char *k) {
  const char *arn = aws_str(r->in, k), *name;
  if (!arn) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: %s", k);
    return NULL;
  }
  size_t nl = aws_arn_name(r->s, "sns", arn, &name);
  /* authorized before the lookup: a denied caller learns nothing of existence */
  if (!authorize_topic(r, r->iam, arn, name, nl))
    return NULL;
  topic_t *tp = nl && gbx_name_valid(name, nl) ? topics_find(r->s->topics, name, nl) : NULL;
  if (!tp)
    aws_fail(r, AWS_E_SNS_NOT_FOUND, "Topic does not exist");
  return tp;
}

static sub_t *need_sub(areq_t *r) {
  const char *arn = aws_str(r->in, "SubscriptionArn");
  if (!arn) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: SubscriptionArn");
    return NULL;
  }
  const char *id = strrchr(arn, ':');
  sub_t *sb = id ? topics_sub_find(r->s->topics, id + 1, strlen(id + 1)) : NULL;
  if (!sb) {
    aws_fail(r, AWS_E_SNS_NOT_FOUND, "Subscription does not exist");
    return NULL;
  }
  /* a subscription is authorized as its topic */
  const char *tn = sb->topic->name;
  return aws_authorize(r, r->iam, AUTHZ_TOPIC, tn, strlen(tn)) ? sb : NULL;
}

/* A Tags list [{Key, Value}] into tags (pointers into the request). */
static int read_tags(areq_t *r, const cJSON *tl, qtag_t *out, uint32_t *n) {
  *n = 0;
  for (const cJSON *c = cJSON_IsArray(tl) ? tl->child : NULL; c; c = c->next) {
    const char *k = aws_str(c, "Key"), *v = aws_str(c, "Value");
    if (*n == GBX_MAX_TAGS) {
      aws_fail(r, AWS_E_SNS_TAG_LIMIT,
               "Could not complete request: tag quota of per resource exceeded");
      return -1;
    }
    uint32_t bad;
    size_t kl = k ? strlen(k) : 0, vl = v ? strlen(v) : 0;
    if (!kl || !v || kl > GBX_MAX_TAG_KEY || vl > GBX_MAX_TAG_VALUE ||
        !text_valid((const uint8_t *)k, kl, &bad) || !text_valid((const uint8_t *)v, vl, &bad)) {
      aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: Tags");
      return -1;
    }
    out[(*n)++] = (qtag_t){(char *)k, (char *)v};
  }
  return 0;
}

/* ---- topics ---- */

static void sns_create_topic(areq_t *r) {
  const char *name = aws_str(r->in, "Name");
  const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(r->in, "Attributes");
  const char *display = NULL, *policy = NULL;
  qtag_t tags[GBX_MAX_TAGS];
  uint32_t ntags;
  int created;
  gbx_errbuf_t eb = {0};
  if (!name || !name[0]) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: Topic Name");
    return;
  }
  size_t nl = strlen(name);
  if (nl > 5 && !strcmp(name + nl - 5, ".fifo")) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER,
             "Invalid parameter: Topic Name (FIFO topics are not supported by this server)");
    return;
  }
  if (gbx_name_valid(name, nl) && !aws_authorize(r, r->iam, AUTHZ_TOPIC, name, nl))
    return;
  if (!gbx_name_valid(name, nl)) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: Topic Name");
    return;
  }
  for (const cJSON *c = cJSON_IsObject(attrs) ? attrs->child : NULL; c; c = c->next) {
    const char *v = cJSON_IsString(c) ? c->valuestring : "";
    uint32_t bad;
    if (!strcmp(c->string, "Policy") ? !text_json_valid(v, strlen(v))
                                     : !text_valid((const uint8_t *)v, strlen(v), &bad)) {
      aws_fail(r, AWS_E_SNS_INVALID_PARAMETER,
               "Invalid parameter: Attributes Reason: %s must be text", c->string);
      return;
    } else if (!strcmp(c->string, "DisplayName") && strlen(v) <= TOPIC_MAX_DISPLAY) {
      display = v;
    } else if (!strcmp(c->string, "Policy") && strlen(v) <= GBX_MAX_POLICY) {
      policy = v;
    } else if (!strcmp(c->string, "FifoTopic") && !strcasecmp(v, "false")) {
      continue;
    } else {
      aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: Attributes Reason: %s%s",
               !strcmp(c->string, "FifoTopic") ? "FIFO topics are not supported by this server: "
                                               : "unsupported or invalid attribute ",
               c->string);
      return;
    }
  }
  if (read_tags(r, cJSON_GetObjectItemCaseSensitive(r->in, "Tags"), tags, &ntags) != 0)
    return;
  char why[AWS_MAX_ERRMSG];
  if (authz_check_policy(r->s, policy, why, sizeof(why)) != 0) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: Policy Error: %s", why);
    return;
  }
  gbx_err_t e =
      topics_create(r->s->topics, name, display, policy, tags, ntags, r->now, &created, &eb);
  if (e) {
    aws_fail(
        r, AWS_E_SNS_INVALID_PARAMETER,
        "Invalid parameter: Attributes Reason: Topic already exists with different attributes");
    return;
  }
  char arn[200];
  topic_arn(r, name, arn, sizeof(arn));
  cJSON *o = cJSON_CreateObject();
  add_str(o, "TopicArn", arn);
  aws_reply(r, o);
}

static void sns_delete_topic(areq_t *r) {
  const char *arn = aws_str(r->in, "TopicArn"), *name;
  if (!arn) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: TopicArn");
    return;
  }
  /* as SNS: deleting a topic that does not exist succeeds */
  size_t nl = aws_arn_name(r->s, "sns", arn, &name);
  if (!authorize_topic(r, r->iam, arn, name, nl))
    return;
  topic_t *tp = nl && gbx_name_valid(name, nl) ? topics_find(r->s->topics, name, nl) : NULL;
  if (tp)
    topics_delete(r->s->topics, tp);
  aws_reply(r, NULL);
}

typedef struct tpage {
  const topic_t *v[SNS_PAGE];
  uint32_t n;
  areq_t *r;
  const topic_t *last; /* scanned last, listed or hidden */
} tpage_t;

static void tcollect(void *ctx, const topic_t *t) {
  tpage_t *p = ctx;
  p->last = t;
  if (!aws_may_see(p->r, AUTHZ_TOPIC, t->name, strlen(t->name)))
    return; /* only what the caller may list */
  if (p->n < SNS_PAGE)
    p->v[p->n++] = t;
}

static void sns_list_topics(areq_t *r) {
  const char *tok = aws_str(r->in, "NextToken");
  char after[GBX_MAX_NAME + 1] = "";
  if (tok && tok[0]) {
    const char *name;
    size_t nl = aws_arn_name(r->s, "sns", tok, &name);
    if (!nl || nl > GBX_MAX_NAME) {
      aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: NextToken");
      return;
    }
    memcpy(after, name, nl);
    after[nl] = 0;
  }
  tpage_t p = {.n = 0, .r = r};
  int more = 0;
  /* hidden topics do not count: scan on until a page is listed or none are
   * left, so the token names a listed topic, never a hidden one */
  do {
    p.last = NULL;
    topics_list(r->s->topics, "", 0, after, strlen(after), SNS_PAGE - p.n, tcollect, &p, &more);
    if (!p.last)
      break;
    snprintf(after, sizeof(after), "%s", p.last->name);
  } while (more && p.n < SNS_PAGE);
  cJSON *o = cJSON_CreateObject();
  cJSON *list = cJSON_AddArrayToObject(o, "Topics");
  char arn[200];
  for (uint32_t i = 0; i < p.n; i++) {
    cJSON *t = cJSON_CreateObject();
    topic_arn(r, p.v[i]->name, arn, sizeof(arn));
    add_str(t, "TopicArn", arn);
    cJSON_AddItemToArray(list, t);
  }
  if (more && p.n) {
    topic_arn(r, p.v[p.n - 1]->name, arn, sizeof(arn)); /* where the next page starts */
    add_str(o, "NextToken", arn);
  }
  aws_reply(r, o);
}

static void sns_get_topic_attributes(areq_t *r) {
  topic_t *tp = need_topic(r, "TopicArn");
  if (!tp)
    return;
  char arn[200], n[16], pol[1024];
  topic_arn(r, tp->name, arn, sizeof(arn));
  cJSON *o = cJSON_CreateObject();
  cJSON *a = cJSON_AddObjectToObject(o, "Attributes");
  add_str(a, "TopicArn", arn);
  add_str(a, "Owner", r->s->cfg.account);
  if (tp->policy) {
    add_str(a, "Policy", tp->policy);
  } else {
    /* SNS's default policy for a new topic */
    snprintf(pol, sizeof(pol),
             "{\"Version\":\"2008-10-17\",\"Id\":\"__default_policy_ID\",\"Statement\":[{\"Sid\":"
             "\"__default_statement_ID\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"*\"},"
             "\"Action\":[\"SNS:GetTopicAttributes\",\"SNS:SetTopicAttributes\",\"SNS:"
             "AddPermission\",\"SNS:RemovePermission\",\"SNS:DeleteTopic\",\"SNS:Subscribe\","
             "\"SNS:ListSubscriptionsByTopic\",\"SNS:Publish\"],\"Resource\":\"%s\",\"Condition\":"
             "{\"StringEquals\":{\"AWS:SourceOwner\":\"%s\"}}}]}",
             arn, r->s->cfg.account);
    add_str(a, "Policy", pol);
  }
  add_str(a, "DisplayName", tp->display ? tp->display : "");
  snprintf(n, sizeof(n), "%u", tp->nsubs);
  add_str(a, "SubscriptionsConfirmed", n);
  add_str(a, "SubscriptionsPending", "0");
  add_str(a, "SubscriptionsDeleted", "0");
  aws_reply(r, o);
}

static void sns_set_topic_attributes(areq_t *r) {
  topic_t *tp = need_topic(r, "TopicArn");
  if (!tp)
    return;
  const char *name = aws_str(r->in, "AttributeName"), *v = aws_str(r->in, "AttributeValue");
  if (!v)
    v = "";
  uint32_t bad;
  if (name && !strcmp(name, "Policy") ? !text_json_valid(v, strlen(v))
                                      : !text_valid((const uint8_t *)v, strlen(v), &bad)) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: AttributeValue must be text");
    return;
  } else if (name && !strcmp(name, "DisplayName") && strlen(v) <= TOPIC_MAX_DISPLAY) {
    topics_set_attrs(r->s->topics, tp, v, NULL);
  } else if (name && !strcmp(name, "Policy") && strlen(v) <= GBX_MAX_POLICY) {
    cJSON *j = v[0] ? cJSON_Parse(v) : NULL;
    int ok = !v[0] || cJSON_IsObject(j);
    cJSON_Delete(j);
    char why[AWS_MAX_ERRMSG];
    if (!ok) {
      aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: Policy Error: null");
      return;
    }
    if (authz_check_policy(r->s, v, why, sizeof(why)) != 0) {
      aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: Policy Error: %s", why);
      return;
    }
    topics_set_attrs(r->s->topics, tp, NULL, v);
  } else {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: AttributeName");
    return;
  }
  aws_reply(r, NULL);
}

/* ---- subscriptions ---- */

/* Reads subscription settings (RawMessageDelivery, FilterPolicy,
 * FilterPolicyScope) from name/value pairs; answers r on error. */
static int sub_setting(areq_t *r, const char *name, const char *v, sub_attrs_t *a) {
  if (!strcmp(name, "RawMessageDelivery") && (!strcasecmp(v, "true") || !strcasecmp(v, "false"))) {
    a->set |= SA_RAW;
    a->raw = !strcasecmp(v, "true");
  } else if (!strcmp(name, "FilterPolicy")) {
    a->set |= SA_FILTER;
    a->filter = v;
    a->filter_len = strlen(v);
  } else if (!strcmp(name, "FilterPolicyScope") &&
             (!strcmp(v, "MessageAttributes") || !strcmp(v, "MessageBody"))) {
    a->set |= SA_SCOPE;
    a->scope = !strcmp(v, "MessageBody") ? FILTER_SCOPE_BODY : FILTER_SCOPE_ATTRIBUTES;
  } else {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: %s%s",
             !strcmp(name, "RawMessageDelivery") || !strcmp(name, "FilterPolicyScope")
                 ? "Attributes Reason: invalid value for "
                 : "AttributeName: unsupported attribute ",
             name);
    return -1;
  }
  return 0;
}

static void fail_sub(areq_t *r, gbx_err_t e, const gbx_errbuf_t *eb) {
  if (e == GBX_E_BAD_FILTER_POLICY)
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: FilterPolicy: %s", eb->msg);
  else if (e == GBX_E_SUBSCRIPTION_EXISTS)
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER,
             "Invalid parameter: Attributes Reason: Subscription already exists with different "
             "attributes");
  else
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: %s", eb->msg);
}

static void sns_subscribe(areq_t *r) {
  topic_t *tp = need_topic(r, "TopicArn");
  if (!tp)
    return;
  const char *proto = aws_str(r->in, "Protocol"), *ep = aws_str(r->in, "Endpoint"), *qname;
  if (!proto || strcmp(proto, "sqs") != 0) {
    aws_fail(
        r, AWS_E_SNS_INVALID_PARAMETER,
        "Invalid parameter: Protocol: this server delivers to the sqs protocol only, not '%.40s'",
        proto ? proto : "");
    return;
  }
  size_t ql = aws_arn_name(r->s, "sqs", ep, &qname);
  if (!ql || !gbx_name_valid(qname, ql)) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: SQS endpoint ARN");
    return;
  }
  /* the subscription writes every matching publish into the queue */
  if (!aws_authorize(r, "sqs:SendMessage", AUTHZ_QUEUE, qname, ql))
    return;
  sub_attrs_t a;
  memset(&a, 0, sizeof(a));
  const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(r->in, "Attributes");
  for (const cJSON *c = cJSON_IsObject(attrs) ? attrs->child : NULL; c; c = c->next)
    if (sub_setting(r, c->string, cJSON_IsString(c) ? c->valuestring : "", &a) != 0)
      return;
  char q[GBX_MAX_NAME + 1];
  memcpy(q, qname, ql);
  q[ql] = 0;
  sub_t *sb;
  gbx_errbuf_t eb = {0};
  gbx_err_t e = topics_subscribe(r->s->topics, tp, q, &a, &sb, &eb);
  if (e) {
    fail_sub(r, e, &eb);
    return;
  }
  char arn[300];
  sub_arn(r, sb, arn, sizeof(arn));
  cJSON *o = cJSON_CreateObject();
  add_str(o, "SubscriptionArn", arn);
  aws_reply(r, o);
}

static void sns_unsubscribe(areq_t *r) {
  sub_t *sb = need_sub(r);
  if (!sb)
    return;
  topics_unsubscribe(r->s->topics, sb);
  aws_reply(r, NULL);
}

typedef struct spage {
  const sub_t *v[SNS_PAGE];
  uint32_t n;
  areq_t *r;
  const sub_t *last; /* scanned last, listed or hidden */
} spage_t;

static void scollect(void *ctx, const sub_t *s) {
  spage_t *p = ctx;
  p->last = s;
  const char *tn = s->topic->name;
  if (!aws_may_see(p->r, AUTHZ_TOPIC, tn, strlen(tn)))
    return; /* only subscriptions of topics the caller may list */
  if (p->n < SNS_PAGE)
    p->v[p->n++] = s;
}

static void list_subs(areq_t *r, const topic_t *tp) {
  const char *tok = aws_str(r->in, "NextToken");
  uint64_t after = 0;
  if (tok && tok[0] && ids_msgid_parse(r->s->ids, tok, strlen(tok), &after) != 0) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: NextToken");
    return;
  }
  spage_t p = {.n = 0, .r = r};
  int more = 0;
  do { /* hidden subscriptions do not count (see sns_list_topics) */
    p.last = NULL;
    topics_sub_list(r->s->topics, tp, NULL, after, SNS_PAGE - p.n, scollect, &p, &more);
    if (!p.last)
      break;
    after = p.last->num;
  } while (more && p.n < SNS_PAGE);
  cJSON *o = cJSON_CreateObject();
  cJSON *list = cJSON_AddArrayToObject(o, "Subscriptions");
  for (uint32_t i = 0; i < p.n; i++) {
    char arn[300], qarn[200], tarn[200];
    sub_arn(r, p.v[i], arn, sizeof(arn));
    aws_arn(r->s, "sqs", p.v[i]->queue, qarn, sizeof(qarn));
    topic_arn(r, p.v[i]->topic->name, tarn, sizeof(tarn));
    cJSON *s = cJSON_CreateObject();
    add_str(s, "SubscriptionArn", arn);
    add_str(s, "Owner", r->s->cfg.account);
    add_str(s, "Protocol", "sqs");
    add_str(s, "Endpoint", qarn);
    add_str(s, "TopicArn", tarn);
    cJSON_AddItemToArray(list, s);
  }
  if (more && p.n) {
    char id[GBX_MSGID_LEN + 1];
    topics_sub_id(r->s->topics, p.v[p.n - 1], id);
    id[GBX_MSGID_LEN] = 0;
    add_str(o, "NextToken", id);
  }
  aws_reply(r, o);
}

static void sns_list_subscriptions(areq_t *r) {
  list_subs(r, NULL);
}

static void sns_list_subscriptions_by_topic(areq_t *r) {
  topic_t *tp = need_topic(r, "TopicArn");
  if (tp)
    list_subs(r, tp);
}

static void sns_get_subscription_attributes(areq_t *r) {
  sub_t *sb = need_sub(r);
  if (!sb)
    return;
  char arn[300], qarn[200], tarn[200];
  sub_arn(r, sb, arn, sizeof(arn));
  aws_arn(r->s, "sqs", sb->queue, qarn, sizeof(qarn));
  topic_arn(r, sb->topic->name, tarn, sizeof(tarn));
  cJSON *o = cJSON_CreateObject();
  cJSON *a = cJSON_AddObjectToObject(o, "Attributes");
  add_str(a, "SubscriptionArn", arn);
  add_str(a, "TopicArn", tarn);
  add_str(a, "Owner", r->s->cfg.account);
  add_str(a, "Protocol", "sqs");
  add_str(a, "Endpoint", qarn);
  add_str(a, "ConfirmationWasAuthenticated", "true");
  add_str(a, "PendingConfirmation", "false");
  add_str(a, "RawMessageDelivery", sb->raw ? "true" : "false");
  if (sb->filter_json) {
    add_str(a, "FilterPolicy", sb->filter_json);
    add_str(a, "FilterPolicyScope",
            sb->scope == FILTER_SCOPE_BODY ? "MessageBody" : "MessageAttributes");
  }
  aws_reply(r, o);
}

static void sns_set_subscription_attributes(areq_t *r) {
  sub_t *sb = need_sub(r);
  if (!sb)
    return;
  const char *name = aws_str(r->in, "AttributeName"), *v = aws_str(r->in, "AttributeValue");
  sub_attrs_t a;
  gbx_errbuf_t eb = {0};
  memset(&a, 0, sizeof(a));
  if (!name) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: AttributeName");
    return;
  }
  if (sub_setting(r, name, v ? v : "", &a) != 0)
    return;
  gbx_err_t e = topics_sub_set_attrs(r->s->topics, sb, &a, &eb);
  if (e)
    fail_sub(r, e, &eb);
  else
    aws_reply(r, NULL);
}

/* ---- publishing ---- */

/* Publishes one message (Publish or a batch entry). Sets mid. */
static aws_err_t publish_one(areq_t *r, topic_t *tp, const cJSON *m, char mid[GBX_MSGID_LEN + 1],
                             char *why, size_t wl) {
  const char *msg = aws_str(m, "Message"), *subj = aws_str(m, "Subject");
  const char *structure = aws_str(m, "MessageStructure");
  uint32_t badc;
  cJSON *per = NULL;
  aws_err_t ae = AWS_OK;
  aws_mattrs_t ma = {.n = 0};
  if (!msg || !msg[0]) {
    snprintf(why, wl, "Invalid parameter: Empty message");
    return AWS_E_SNS_INVALID_PARAMETER;
  }
  if (aws_str(m, "MessageGroupId") || aws_str(m, "MessageDeduplicationId")) {
    snprintf(why, wl,
             "Invalid parameter: MessageGroupId and MessageDeduplicationId apply to FIFO topics, "
             "which this server does not support");
    return AWS_E_SNS_INVALID_PARAMETER;
  }
  if (structure) {
    /* {"default": "...", "sqs": "..."}: SQS subscribers get "sqs" */
    per = strcmp(structure, "json") == 0 ? cJSON_Parse(msg) : NULL;
    const char *def = aws_str(per, "default");
    if (!def) {
      cJSON_Delete(per);
      snprintf(why, wl, "Invalid parameter: Message Structure - %s",
               strcmp(structure, "json") ? "MessageStructure must be json"
                                         : "No default entry in JSON message body");
      return AWS_E_SNS_INVALID_PARAMETER;
    }
    msg = aws_str(per, "sqs") ? aws_str(per, "sqs") : def;
  }
  if (!text_valid((const uint8_t *)msg, strlen(msg), &badc)) {
    snprintf(why, wl, "Invalid parameter: Message: not valid UTF-8 text");
    ae = AWS_E_SNS_INVALID_PARAMETER;
    goto out;
  }
  if (subj) {
    size_t sl = strlen(subj);
    int ok = sl >= 1 && sl <= TOPIC_MAX_SUBJECT;
    for (size_t i = 0; ok && i < sl; i++)
      ok = (unsigned char)subj[i] >= 0x20 && subj[i] != 0x7f;
    if (!ok) {
      snprintf(why, wl, "Invalid parameter: Subject");
      ae = AWS_E_SNS_INVALID_PARAMETER;
      goto out;
    }
  }
  ae = aws_mattrs_parse(r->a, cJSON_GetObjectItemCaseSensitive(m, "MessageAttributes"), &ma, why,
                        wl);
  if (ae) {
    ae = AWS_E_SNS_INVALID_PARAMETER;
    goto out;
  }
  uint64_t pub;
  uint32_t delivered;
  gbx_errbuf_t eb = {0};
  gbx_err_t e = topics_publish(r->s->topics, tp, (const uint8_t *)msg, (uint32_t)strlen(msg), ma.a,
                               ma.n, subj, subj ? strlen(subj) : 0, r->now, &pub, &delivered, &eb);
  if (e) {
    snprintf(why, wl, "Invalid parameter: %s",
             e == GBX_E_MESSAGE_TOO_LONG ? "Message too long" : eb.msg);
    ae = e == GBX_E_MESSAGE_TOO_LONG ? AWS_E_SNS_INVALID_PARAMETER : AWS_E_INTERNAL;
    goto out;
  }
  ids_msgid(r->s->ids, pub, mid);
  mid[GBX_MSGID_LEN] = 0;
out:
  aws_mattrs_free(&ma);
  cJSON_Delete(per);
  return ae;
}

static void sns_publish(areq_t *r) {
  const char *k = aws_str(r->in, "TopicArn") ? "TopicArn" : "TargetArn";
  if (aws_str(r->in, "PhoneNumber")) {
    aws_fail(r, AWS_E_SNS_INVALID_PARAMETER,
             "Invalid parameter: PhoneNumber: SMS is not supported by this server");
    return;
  }
  topic_t *tp = need_topic(r, k);
  char mid[GBX_MSGID_LEN + 1], why[AWS_MAX_ERRMSG];
  if (!tp)
    return;
  aws_err_t e = publish_one(r, tp, r->in, mid, why, sizeof(why));
  if (e) {
    aws_fail(r, e, "%s", why);
    return;
  }
  cJSON *o = cJSON_CreateObject();
  add_str(o, "MessageId", mid);
  aws_reply(r, o);
}

static void sns_publish_batch(areq_t *r) {
  topic_t *tp = need_topic(r, "TopicArn");
  if (!tp)
    return;
  const cJSON *en = cJSON_GetObjectItemCaseSensitive(r->in, "PublishBatchRequestEntries");
  int n = cJSON_IsArray(en) ? cJSON_GetArraySize(en) : 0;
  if (!n) {
    aws_fail(r, AWS_E_SNS_EMPTY_BATCH, "The batch request doesn't contain any entries");
    return;
  }
  if (n > (int)SNS_MAX_BATCH) {
    aws_fail(r, AWS_E_SNS_TOO_MANY_ENTRIES,
             "The batch request contains more entries than permissible");
    return;
  }
  uint64_t total = 0;
  for (const cJSON *c = en->child; c; c = c->next) {
    const char *id = aws_str(c, "Id"), *msg = aws_str(c, "Message");
    if (!id || !gbx_entry_id_valid(id, strlen(id))) {
      aws_fail(r, AWS_E_SNS_INVALID_BATCH_ID,
               "The Id of a batch entry in a batch request doesn't abide by the specification");
      return;
    }
    for (const cJSON *d = en->child; d != c; d = d->next) {
      if (!strcmp(aws_str(d, "Id"), id)) {
        aws_fail(r, AWS_E_SNS_IDS_NOT_DISTINCT,
                 "Two or more batch entries in the request have the same Id");
        return;
      }
    }
    total += msg ? strlen(msg) : 0;
  }
  if (total > TOPIC_MAX_MESSAGE) {
    aws_fail(r, AWS_E_SNS_BATCH_TOO_LONG,
             "The length of all the messages put together is more than the limit");
    return;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON *ok = cJSON_AddArrayToObject(o, "Successful"),
        *failed = cJSON_AddArrayToObject(o, "Failed");
  for (const cJSON *c = en->child; c; c = c->next) {
    char mid[GBX_MSGID_LEN + 1], why[AWS_MAX_ERRMSG];
    aws_err_t e = publish_one(r, tp, c, mid, why, sizeof(why));
    cJSON *x = cJSON_CreateObject();
    add_str(x, "Id", aws_str(c, "Id"));
    if (e) {
      add_str(x, "Code", aws_err_code(e));
      add_str(x, "Message", why);
      cJSON_AddBoolToObject(x, "SenderFault", e != AWS_E_INTERNAL);
      cJSON_AddItemToArray(failed, x);
    } else {
      add_str(x, "MessageId", mid);
      cJSON_AddItemToArray(ok, x);
    }
  }
  aws_reply(r, o);
}

/* ---- tags (topics are the only taggable SNS resources here) ---- */

static topic_t *need_resource(areq_t *r) {
  const char *arn = aws_str(r->in, "ResourceArn"), *name;
  size_t nl = arn ? aws_arn_name(r->s, "sns", arn, &name) : 0;
  if (arn && !authorize_topic(r, r->iam, arn, name, nl))
    return NULL;
  topic_t *tp = nl && gbx_name_valid(name, nl) ? topics_find(r->s->topics, name, nl) : NULL;
  if (!tp)
    aws_fail(r, AWS_E_SNS_RESOURCE_NOT_FOUND, "Resource does not exist");
  return tp;
}

static char *xstrdup(const char *s) {
  char *d = strdup(s);
  if (!d)
    abort();
  return d;
}

static void sns_tag_resource(areq_t *r) {
  topic_t *tp = need_resource(r);
  qtag_t tags[GBX_MAX_TAGS];
  uint32_t n;
  if (!tp || read_tags(r, cJSON_GetObjectItemCaseSensitive(r->in, "Tags"), tags, &n) != 0)
    return;
  uint32_t add = 0;
  for (uint32_t i = 0; i < n; i++) {
    int found = 0;
    for (uint32_t j = 0; j < tp->ntags; j++)
      found |= !strcmp(tp->tags[j].key, tags[i].key);
    add += !found;
  }
  if (tp->ntags + add > GBX_MAX_TAGS) {
    aws_fail(r, AWS_E_SNS_TAG_LIMIT,
             "Could not complete request: tag quota of per resource exceeded");
    return;
  }
  qtag_t *nt = realloc(tp->tags, (tp->ntags + add + 1) * sizeof(*nt));
  if (!nt)
    abort();
  tp->tags = nt;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t j = 0;
    while (j < tp->ntags && strcmp(tp->tags[j].key, tags[i].key))
      j++;
    if (j == tp->ntags) {
      tp->tags[j].key = xstrdup(tags[i].key);
      tp->tags[j].value = NULL;
      tp->ntags++;
    }
    free(tp->tags[j].value);
    tp->tags[j].value = xstrdup(tags[i].value);
  }
  /* topic.h has no tag call: the tags are the topic's public fields, and
   * topics_set_attrs() with nothing to change persists the topic record */
  topics_set_attrs(r->s->topics, tp, NULL, NULL);
  aws_reply(r, NULL);
}

static void sns_untag_resource(areq_t *r) {
  topic_t *tp = need_resource(r);
  if (!tp)
    return;
  const cJSON *keys = cJSON_GetObjectItemCaseSensitive(r->in, "TagKeys");
  for (const cJSON *c = cJSON_IsArray(keys) ? keys->child : NULL; c; c = c->next) {
    if (!cJSON_IsString(c))
      continue;
    for (uint32_t j = 0; j < tp->ntags; j++) {
      if (strcmp(tp->tags[j].key, c->valuestring))
        continue;
      free(tp->tags[j].key);
      free(tp->tags[j].value);
      tp->tags[j] = tp->tags[--tp->ntags];
      break;
    }
  }
  topics_set_attrs(r->s->topics, tp, NULL, NULL);
  aws_reply(r, NULL);
}

static void sns_list_tags(areq_t *r) {
  topic_t *tp = need_resource(r);
  if (!tp)
    return;
  cJSON *o = cJSON_CreateObject();
  cJSON *list = cJSON_AddArrayToObject(o, "Tags");
  for (uint32_t i = 0; i < tp->ntags; i++) {
    cJSON *t = cJSON_CreateObject();
    add_str(t, "Key", tp->tags[i].key);
    add_str(t, "Value", tp->tags[i].value);
    cJSON_AddItemToArray(list, t);
  }
  aws_reply(r, o);
}

/* ---- dispatch ---- */

void aws_sns_handle(areq_t *r) {
  static const struct {
    const char *name;
    void (*fn)(areq_t *);
  } t[] = {
      {"CreateTopic", sns_create_topic},
      {"DeleteTopic", sns_delete_topic},
      {"ListTopics", sns_list_topics},
      {"GetTopicAttributes", sns_get_topic_attributes},
      {"SetTopicAttributes", sns_set_topic_attributes},
      {"Subscribe", sns_subscribe},
      {"Unsubscribe", sns_unsubscribe},
      {"ListSubscriptions", sns_list_subscriptions},
      {"ListSubscriptionsByTopic", sns_list_subscriptions_by_topic},
      {"GetSubscriptionAttributes", sns_get_subscription_attributes},
      {"SetSubscriptionAttributes", sns_set_subscription_attributes},
      {"Publish", sns_publish},
      {"PublishBatch", sns_publish_batch},
      {"TagResource", sns_tag_resource},
      {"UntagResource", sns_untag_resource},
      {"ListTagsForResource", sns_list_tags},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    if (!strcmp(r->action, t[i].name)) {
      t[i].fn(r);
      return;
    }
  }
  aws_fail(r, AWS_E_INVALID_ACTION, "The action %s is not valid for this endpoint.", r->action);
}
