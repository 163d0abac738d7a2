/* aws.c - the AWS-compatible face's entry: its lifecycle, the routing of
 * each HTTP request to SQS or SNS in either wire protocol (AWS JSON 1.0 by
 * X-Amz-Target, else the query protocol's Action parameter), the SigV4
 * check of every request when --credentials is given, and the test
 * endpoints (--test-endpoints). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws_fmt.h"
#include "creds.h"
#include "log.h"
#include "records.h"
#include "sigv4.h"
#include "strutil.h"

/* Messages a peek returns at most (test endpoint). */
#define PEEK_MAX 100u

typedef struct qlist {
  const queue_t **v;
  uint32_t n, cap;
} qlist_t;

static void qcollect(void *ctx, const queue_t *q) {
  qlist_t *l = ctx;
  if (l->n < l->cap)
    l->v[l->n++] = q;
}

static void add_str(cJSON *o, const char *k, const char *v) {
  cJSON_AddStringToObject(o, k, v);
}

/* ---- test endpoints (--test-endpoints) ---- */

typedef struct tlist {
  const topic_t *v[1000];
  uint32_t n;
} tlist_t;

static void tcollect(void *ctx, const topic_t *t) {
  tlist_t *l = ctx;
  if (l->n < 1000)
    l->v[l->n++] = t;
}

/* POST /moto-api/reset: deletes every topic and queue, as moto's reset. */
static void test_reset(areq_t *r) {
  server_t *s = r->s;
  int more = 1;
  while (more) {
    tlist_t *tl = malloc(sizeof(*tl));
    if (!tl)
      abort();
    tl->n = 0;
    topics_list(s->topics, "", 0, "", 0, 1000, tcollect, tl, &more);
    for (uint32_t i = 0; i < tl->n; i++)
      topics_delete(s->topics, (topic_t *)tl->v[i]);
    free(tl);
  }
  more = 1;
  while (more) {
    char(*names)[GBX_MAX_NAME + 1] = malloc(1000 * sizeof(*names));
    const queue_t **v = malloc(1000 * sizeof(*v));
    if (!names || !v)
      abort();
    qlist_t l = {v, 0, 1000};
    broker_queue_list(s->broker, "", 0, "", 0, 1000, qcollect, &l, &more);
    for (uint32_t i = 0; i < l.n; i++)
      snprintf(names[i], sizeof(names[i]), "%s", v[i]->name);
    for (uint32_t i = 0; i < l.n; i++) {
      queue_t *q = broker_queue(s->broker, names[i], strlen(names[i]));
      if (q)
        broker_queue_delete(s->broker, q, r->now);
    }
    free(names);
    free(v);
  }
  static const char ok[] = "{\"status\": \"ok\"}";
  aws_reply_raw(r, 200, "application/json", ok, sizeof(ok) - 1);
}

typedef struct peek {
  areq_t *r;
  uint32_t n, max;
  struct pitem {
    uint64_t idn;
    int64_t sent_ms;
    uint32_t rc;
    uint8_t state;
    uint32_t qid;
    uint64_t seq, body_id;
    blob_t *blob;
  } it[PEEK_MAX];
} peek_t;

static void peek_reply(peek_t *p) {
  areq_t *r = p->r;
  static const char *const states[] = {"visible", "delayed", "inflight"};
  cJSON *o = cJSON_CreateObject();
  cJSON *msgs = cJSON_AddArrayToObject(o, "Messages");
  for (uint32_t i = 0; i < p->n; i++) {
    struct pitem *it = &p->it[i];
    if (!it->blob)
      continue;
    const uint8_t *body, *attrs;
    uint32_t bl, al, badc;
    char mid[GBX_MSGID_LEN + 1];
    if (blob_parse(it->blob->data, it->blob->len, &body, &bl, &attrs, &al) != 0)
      continue;
    cJSON *m = cJSON_CreateObject();
    ids_msgid(r->s->ids, it->idn, mid);
    mid[GBX_MSGID_LEN] = 0;
    add_str(m, "MessageId", mid);
    int text = text_valid(body, bl, &badc);
    char *b = text ? str_copy(body, bl) : aws_b64(body, bl);
    if (!b)
      abort();
    add_str(m, "Body", b);
    free(b);
    if (!text)
      add_str(m, "BodyEncoding", "base64");
    add_str(m, "State", states[it->state < 3 ? it->state : 0]);
    cJSON_AddNumberToObject(m, "ReceiveCount", it->rc);
    cJSON_AddNumberToObject(m, "SentTimestamp", (double)it->sent_ms);
    cJSON_AddItemToArray(msgs, m);
  }
  for (uint32_t i = 0; i < p->n; i++)
    blob_unref(p->it[i].blob);
  char *t = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!t)
    abort();
  aws_reply_raw(r, 200, "application/json", t, strlen(t));
  free(t);
  free(p);
}

static void peek_fetched(fetch_job_t *j) {
  peek_t *p = j->ud;
  uint32_t k = 0;
  for (uint32_t i = 0; i < p->n && k < j->n; i++) {
    if (p->it[i].blob)
      continue;
    p->it[i].blob = j->items[k].blob;
    j->items[k++].blob = NULL;
  }
  p->r->s->fetches_in_flight--;
  p->r->fetching = 0;
  if (p->r->aborted) {
    for (uint32_t i = 0; i < p->n; i++)
      blob_unref(p->it[i].blob);
    aws_req_free(p->r);
    free(p);
  } else {
    peek_reply(p);
  }
  fetch_job_free(j);
}

static int peek_one(void *ctx, const msg_t *m) {
  peek_t *p = ctx;
  struct pitem *it = &p->it[p->n++];
  it->idn = m->idn;
  it->sent_ms = m->sent_ms;
  it->rc = m->rc;
  it->state = msg_state(m);
  it->qid = m->qid;
  it->seq = m->seq;
  it->body_id = m->body_id;
  it->blob = blob_ref(m->blob);
  return p->n >= p->max;
}

/* GET /gearbox/peek/QUEUE?max=N: N messages in any state, without changing
 * them: by age, except that messages which arrived out of age order
 * (queue.h) come after the others. */
static void test_peek(areq_t *r, const char *name, size_t nl) {
  server_t *s = r->s;
  queue_t *q = gbx_name_valid(name, nl) ? broker_queue(s->broker, name, nl) : NULL;
  size_t ql;
  const char *qs = http_req_query(r->h, &ql);
  uint32_t max = 10;
  if (!q) {
    static const char nf[] = "{\"message\": \"The specified queue does not exist.\"}";
    aws_reply_raw(r, 404, "application/json", nf, sizeof(nf) - 1);
    return;
  }
  if (ql > 4 && !strncmp(qs, "max=", 4)) {
    unsigned long m = 0; /* the query is not NUL-terminated: no strtoul */
    for (size_t i = 4; i < ql && qs[i] >= '0' && qs[i] <= '9' && m <= PEEK_MAX; i++)
      m = m * 10 + (unsigned long)(qs[i] - '0');
    max = m < 1 ? 1 : m > PEEK_MAX ? PEEK_MAX : (uint32_t)m;
  }
  peek_t *p = calloc(1, sizeof(*p));
  if (!p)
    abort();
  p->r = r;
  p->max = max;
  queue_each(q, peek_one, p);
  uint32_t missing = 0;
  for (uint32_t i = 0; i < p->n; i++)
    missing += !p->it[i].blob;
  if (!missing) {
    peek_reply(p);
    return;
  }
  fetch_job_t *j = fetch_job_new(s->store, missing, peek_fetched, p);
  if (!j)
    abort();
  for (uint32_t i = 0; i < p->n; i++)
    if (!p->it[i].blob)
      fetch_job_add(j, p->it[i].qid, p->it[i].seq, p->it[i].body_id);
  aws_fetch(r, j);
}

/* ---- authentication (--credentials) ---- */

/* Header lines handed to the verifier: the HTTP face accepts no more. */
#define AUTH_MAX_HDRS 64

typedef struct authctx {
  const creds_t *c;
  const principal_t *p; /* the principal of the key looked up last */
} authctx_t;

static const char *secret_for(void *ctx, const char *akid, size_t len, size_t *sl) {
  authctx_t *a = ctx;
  a->p = creds_by_akid(a->c, akid, len);
  if (!a->p)
    return NULL;
  *sl = a->p->secret_len;
  return a->p->secret;
}

static aws_err_t auth_err(sigv4_status_t st) {
  switch (st) {
  case SIGV4_MISSING:
    return AWS_E_MISSING_AUTH_TOKEN;
  case SIGV4_INCOMPLETE:
    return AWS_E_INCOMPLETE_SIGNATURE;
  case SIGV4_UNKNOWN_KEY:
    return AWS_E_INVALID_CLIENT_TOKEN_ID;
  case SIGV4_MISMATCH:
  case SIGV4_SKEWED:
    return AWS_E_SIGNATURE_DOES_NOT_MATCH;
  case SIGV4_EXPIRED:
    return AWS_E_REQUEST_EXPIRED;
  case SIGV4_OK:
  case SIGV4_INTERNAL:
    break;
  }
  return AWS_E_INTERNAL_FAILURE;
}

/* Verifies r's SigV4 signature with the keys of s->creds. Returns 0 with
 * r->principal and r->principal_account copied from the signer, or -1
 * after answering r with AWS's error in r's protocol. */
/* Failed signatures of one (address, key) that cost no delay: an SDK with a
 * stale secret retries a few times; guessing is slowed from the fourth. */
#define AWS_AUTH_GRACE 3u

static int authenticate(areq_t *r, const uint8_t *body, size_t bl) {
  sigv4_hdr_t h[AUTH_MAX_HDRS];
  int n = http_req_header_count(r->h);
  if (n > AUTH_MAX_HDRS)
    n = AUTH_MAX_HDRS;
  for (int i = 0; i < n; i++)
    http_req_header_at(r->h, i, &h[i].name, &h[i].name_len, &h[i].value, &h[i].value_len);
  sigv4_req_t rq = {
      .method = http_req_method(r->h), .hdrs = h, .nhdrs = (size_t)n, .body = body, .body_len = bl};
  rq.path = http_req_path(r->h, &rq.path_len);
  rq.query = http_req_query(r->h, &rq.query_len);
  authctx_t ac = {r->s->creds, NULL};
  sigv4_result_t res;
  sigv4_status_t st = sigv4_verify(&rq, (int64_t)time(NULL), secret_for, &ac, &res);
  /* an UNSIGNED-PAYLOAD signature covers no body: in the query protocol
   * the body holds parameters, which must not be added unsigned */
  if (st == SIGV4_OK && res.unsigned_payload && bl > 0) {
    st = SIGV4_MISMATCH;
    snprintf(res.msg, sizeof(res.msg),
             "The request has a body but its signature covers none (UNSIGNED-PAYLOAD).");
  }
  size_t tl;
  r->json = http_req_header(r->h, "X-Amz-Target", &tl) != NULL;
  r->scope_svc = !strcmp(res.service, "sns") ? AWS_SNS : !strcmp(res.service, "sqs") ? AWS_SQS : 0;
  r->svc = r->scope_svc ? r->scope_svc : AWS_SQS;
  /* Failed signatures slow down their (address, access key id): while the
   * bucket waits out its delay, its requests are refused unverified (so a
   * guess costs a delay), whatever their signature. Per key, not per
   * address alone: one misconfigured client must not lock out the others
   * on its host. */
  char bucket[64 + SIGV4_MAX_AKID + 2], addr[64];
  const char *peer = http_req_peer(r->h), *colon = strrchr(peer, ':');
  snprintf(addr, sizeof(addr), "%.*s", (int)(colon ? colon - peer : (long)strlen(peer)), peer);
  snprintf(bucket, sizeof(bucket), "%s|%s", addr, res.akid);
  uint64_t wait = auth_guard_wait(r->s->auth, bucket, r->now);
  if (wait) {
    aws_fail(r, AWS_E_THROTTLED,
             "Rate exceeded: failed signatures from this address with this key; retry in %llu ms.",
             (unsigned long long)wait);
    return -1;
  }
  if (st != SIGV4_OK) {
    if (st == SIGV4_MISMATCH || st == SIGV4_UNKNOWN_KEY)
      auth_guard_fail(r->s->auth, bucket, r->now, AWS_AUTH_GRACE);
    authz_audit_auth("aws", res.akid, peer, sigv4_code(st));
    aws_fail(r, auth_err(st), "%s", res.msg);
    return -1;
  }
  snprintf(r->principal, sizeof(r->principal), "%s", ac.p->name);
  snprintf(r->principal_account, sizeof(r->principal_account), "%s", ac.p->account);
  auth_id_of(ac.p, &r->id);
  r->who.p = ac.p;
  r->who.addr = http_req_peer(r->h);
  return 0;
}

int aws_authorize(areq_t *r, const char *action, authz_kind_t kind, const char *name, size_t nl) {
  if (!r->who.p || authz_allowed(r->s, &r->who, action, kind, name, nl, 1))
    return 1;
  char arn[384];
  authz_arn(r->s, kind, name, nl, arn, sizeof(arn));
  if (r->svc == AWS_SNS)
    aws_fail(r, AWS_E_SNS_AUTHORIZATION_ERROR,
             "User: arn:aws:iam::%s:user/%s is not authorized to perform: %s on resource: %s",
             r->who.p->account, r->who.p->name, action, arn);
  else
    aws_fail(r, AWS_E_ACCESS_DENIED,
             "User: arn:aws:iam::%s:user/%s is not authorized to perform: %s on resource: %s "
             "because no identity-based policy allows the %s action",
             r->who.p->account, r->who.p->name, action, arn, action);
  return 0;
}

int aws_may_see(areq_t *r, authz_kind_t kind, const char *name, size_t nl) {
  return !r->who.p || authz_allowed(r->s, &r->who, r->iam, kind, name, nl, 0);
}

/* ---- routing ---- */

/* Which service a query-protocol request is for: the SigV4 credential
 * scope when signed, else the action's name (AddPermission and
 * RemovePermission exist in both: SNS's names a TopicArn). */
static int which_service(const areq_t *r, const char *action) {
  size_t l;
  if (r->scope_svc)
    return r->scope_svc;
  const char *auth = http_req_header(r->h, "Authorization", &l);
  if (auth && l < 4096) {
    char a[4096];
    memcpy(a, auth, l);
    a[l] = 0;
    if (strstr(a, "/sns/aws4_request"))
      return AWS_SNS;
    if (strstr(a, "/sqs/aws4_request"))
      return AWS_SQS;
  }
  if (!strcmp(action, "AddPermission") || !strcmp(action, "RemovePermission"))
    return aws_str(r->in, "TopicArn") ? AWS_SNS : AWS_SQS;
  return aws_sns_has(action) ? AWS_SNS : AWS_SQS;
}

static void set_base(areq_t *r) {
  server_t *s = r->s;
  size_t hl;
  const char *host = http_req_header(r->h, "Host", &hl);
  if (s->cfg.public_url[0]) {
    snprintf(r->base, sizeof(r->base), "%s", s->cfg.public_url);
    return;
  }
  int ok = host && hl > 0 && hl < 256;
  for (size_t i = 0; ok && i < hl; i++)
    ok = isalnum((unsigned char)host[i]) || strchr(".-:[]_", host[i]);
  if (ok)
    snprintf(r->base, sizeof(r->base), "http://%.*s", (int)hl, host);
  else
    snprintf(r->base, sizeof(r->base), "http://%s:%d", s->cfg.host, s->bound_port);
}

static void route(areq_t *r) {
  server_t *s = r->s;
  size_t pl, bl;
  const char *path = http_req_path(r->h, &pl);
  const char *method = http_req_method(r->h);
  const uint8_t *body = http_req_body(r->h, &bl);
  char err[200];
  if (s->creds && authenticate(r, body, bl) != 0)
    return;
  if (r->a->test_endpoints) {
    if (pl == 15 && !memcmp(path, "/moto-api/reset", 15) && !strcmp(method, "POST")) {
      if (!aws_authorize(r, "gearbox:Reset", AUTHZ_SERVER, "", 0))
        return;
      test_reset(r);
      return;
    }
    if (pl > 14 && !memcmp(path, "/gearbox/peek/", 14) && !strcmp(method, "GET")) {
      if (!aws_authorize(r, "gearbox:Peek", AUTHZ_QUEUE, path + 14, pl - 14))
        return;
      test_peek(r, path + 14, pl - 14);
      return;
    }
  }
  size_t tl;
  const char *target = http_req_header(r->h, "X-Amz-Target", &tl);
  if (target) {
    /* AWS JSON 1.0: X-Amz-Target: AmazonSQS.<Action> */
    r->json = 1;
    r->svc = AWS_SQS;
    snprintf(r->action, sizeof(r->action), "%.*s", (int)(tl < 63 ? tl : 63), target);
    if (tl <= 10 || strncmp(target, "AmazonSQS.", 10) != 0) {
      aws_fail(r, AWS_E_INVALID_ACTION, "The action %s is not valid for this endpoint.", r->action);
      return;
    }
    memmove(r->action, r->action + 10, strlen(r->action + 10) + 1);
    r->in = bl ? cJSON_ParseWithLength((const char *)body, bl) : cJSON_CreateObject();
    if (!cJSON_IsObject(r->in)) {
      aws_fail(r, AWS_E_MALFORMED, "The request body is not a valid JSON object.");
      return;
    }
    if (json_has_nul((const char *)body, bl)) {
      aws_fail(r, AWS_E_INVALID_MESSAGE_CONTENTS,
               "Invalid binary character '#x0' was found in the request, the set of allowed "
               "characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to "
               "#x10FFFF");
      return;
    }
  } else {
    /* the query protocol: form parameters in the body and/or the target */
    size_t ql;
    const char *qs = http_req_query(r->h, &ql);
    gbx_buf_t *b = &r->a->scratch;
    b->len = 0;
    gbx_buf_append(b, qs, ql);
    if (bl && ql)
      gbx_buf_append(b, "&", 1);
    gbx_buf_append(b, body, bl);
    r->in = cJSON_CreateObject();
    if (!r->in)
      abort();
    char miss[96];
    if (aws_form_decode((const char *)b->data, b->len, r->in, err, sizeof(err), miss,
                        sizeof(miss)) != 0) {
      r->svc = AWS_SQS;
      aws_fail(r, AWS_E_MALFORMED, "%s", err);
      return;
    }
    const char *action = aws_str(r->in, "Action");
    if (!action || !action[0]) {
      r->svc = AWS_SQS;
      aws_fail(r, AWS_E_INVALID_ACTION, "The request has no Action parameter.");
      return;
    }
    snprintf(r->action, sizeof(r->action), "%.63s", action);
    r->svc = which_service(r, r->action);
    if (miss[0] && r->svc == AWS_SNS) {
      aws_fail(r, AWS_E_SNS_INVALID_PARAMETER, "Invalid parameter: %s is missing", miss);
      return;
    }
    if (miss[0])
      snprintf(err, sizeof(err), "The request must contain the parameter %s.", miss);
    if (r->svc == AWS_SQS && (miss[0] || aws_form_sqs_shape(r->in, err, sizeof(err)) != 0)) {
      aws_fail(r, AWS_E_MISSING_PARAMETER, "%s", err);
      return;
    }
  }
  if (s->stopping) {
    aws_fail(r, AWS_E_UNAVAILABLE, "The server is shutting down.");
    return;
  }
  /* every action of both services names its IAM action the same way */
  snprintf(r->iam, sizeof(r->iam), "%s:%s", r->svc == AWS_SNS ? "sns" : "sqs", r->action);
  if (r->svc == AWS_SNS) {
    aws_sns_handle(r);
    return;
  }
  aws_sqs_handle(r);
}

static void on_request(void *ctx, http_req_t *h) {
  aws_t *a = ctx;
  server_t *s = a->s;
  areq_t *r = calloc(1, sizeof(*r));
  if (!r)
    abort();
  r->a = a;
  r->s = s;
  r->h = h;
  r->now = uv_now(s->loop);
  r->vis = -1;
  uint64_t n = ++a->nreq;
  snprintf(r->rid, sizeof(r->rid), "%08x-%04x-4%03x-a%03x-%012llx",
           (unsigned)(s->started_ms & 0xffffffffu), (unsigned)((n >> 48) & 0xffff),
           (unsigned)((n >> 36) & 0xfff), (unsigned)((n >> 24) & 0xfff),
           (unsigned long long)(n & 0xffffffffffffull));
  http_req_set_data(h, r);
  set_base(r);
  /* a request that put mutations into the open batch is one of those the
   * batch's sync acknowledges (stats: requests per sync) */
  size_t before = store_batch_count(commit_batch(s->commit));
  route(r);
  if (store_batch_count(commit_batch(s->commit)) > before) {
    commit_note_request(s->commit);
    server_note_writer(s, h);
  }
}

/* ---- body fetches that wait for a write ---- */

typedef struct aws_deferred {
  fetch_job_t *j;
  uint64_t gate;
  struct aws_deferred *next;
} aws_deferred_t;

static void submit(server_t *s, fetch_job_t *j) {
  if (fetch_submit(s->loop, j) != 0)
    abort();
}

void aws_fetch(areq_t *r, fetch_job_t *j) {
  server_t *s = r->s;
  uint64_t gate = server_gate(s);
  r->fetching = 1;
  s->fetches_in_flight++;
  if (gate <= commit_durable_no(s->commit)) {
    submit(s, j);
    return;
  }
  aws_deferred_t *d = malloc(sizeof(*d));
  if (!d)
    abort();
  d->j = j;
  d->gate = gate;
  d->next = r->a->deferred;
  r->a->deferred = d;
}

static void on_durable(void *ctx, uint64_t durable) {
  aws_t *a = ctx;
  for (aws_deferred_t **p = &a->deferred; *p;) {
    aws_deferred_t *d = *p;
    if (d->gate > durable) {
      p = &d->next;
      continue;
    }
    *p = d->next;
    submit(a->s, d->j);
    free(d);
  }
}

static void on_aborted(void *ctx, http_req_t *h) {
  aws_t *a = ctx;
  areq_t *r = http_req_data(h);
  if (!r)
    return;
  if (r->w) {
    broker_waiter_cancel(a->s->broker, r->w);
    free(r->w);
    r->w = NULL;
  }
  if (r->fetching) {
    r->aborted = 1; /* freed when the fetch completes */
    return;
  }
  aws_req_free(r);
}

http_t *aws_start(server_t *s, const char *host, int port, int test_endpoints, int *bound,
                  char *err, size_t errlen) {
  aws_t *a = calloc(1, sizeof(*a));
  if (!a) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  a->s = s;
  a->test_endpoints = test_endpoints;
  gbx_buf_init(&a->out);
  gbx_buf_init(&a->scratch);
  gbx_buf_init(&a->env);
  http_cfg_t hc = {.max_body = HTTP_MAX_BODY,
                   .max_conns = s->cfg.max_conns,
                   .max_outbuf = s->cfg.max_outbuf,
                   .tls = s->tls,
                   .fds = &s->fds};
  http_cbs_t cb = {.ctx = a, .request = on_request, .aborted = on_aborted, .durable = on_durable};
  a->http = http_new(s->loop, &hc, &cb);
  if (!a->http) {
    snprintf(err, errlen, "out of memory");
    free(a);
    return NULL;
  }
  /* on failure the handles stay with the loop; the process is exiting */
  if (http_listen(a->http, host, port, bound, err, errlen) != 0)
    return NULL;
  return a->http;
}

void aws_free(http_t *h) {
  if (!h)
    return;
  aws_t *a = http_ctx(h);
  while (a->deferred) { /* none are left after a drained shutdown */
    aws_deferred_t *d = a->deferred;
    a->deferred = d->next;
    fetch_job_free(d->j);
    free(d);
  }
  gbx_buf_free(&a->out);
  gbx_buf_free(&a->scratch);
  gbx_buf_free(&a->env);
  free(a);
  http_free(h);
}
