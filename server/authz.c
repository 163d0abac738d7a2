/* authz.c - see authz.h. */
#include "authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "server.h"

/* Compiled resource policies, cached by the text they came from: a request
 * against a queue with a Policy attribute must not reparse its JSON. The
 * cache is small and direct-mapped; a miss only costs a parse. */
#define CACHE_SLOTS 256u

typedef struct cslot {
  char *text; /* copy of the policy text the entry was compiled from */
  size_t len;
  policy_t *pol; /* NULL: the text is not a valid policy (grants nothing) */
} cslot_t;

struct authz {
  cslot_t slot[CACHE_SLOTS];
};

authz_t *authz_new(void) {
  return calloc(1, sizeof(authz_t));
}

void authz_forget(authz_t *z) {
  for (uint32_t i = 0; i < CACHE_SLOTS; i++) {
    free(z->slot[i].text);
    policy_free(z->slot[i].pol);
    memset(&z->slot[i], 0, sizeof(z->slot[i]));
  }
}

void authz_free(authz_t *z) {
  if (!z)
    return;
  authz_forget(z);
  free(z);
}

static uint32_t text_hash(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h;
}

static const policy_t *resource_policy(authz_t *z, const char *text) {
  size_t n = strlen(text);
  cslot_t *c = &z->slot[text_hash(text, n) % CACHE_SLOTS];
  if (c->text && c->len == n && !memcmp(c->text, text, n))
    return c->pol;
  free(c->text);
  policy_free(c->pol);
  c->pol = NULL;
  c->len = n;
  c->text = malloc(n + 1);
  if (!c->text)
    abort();
  memcpy(c->text, text, n + 1);
  char err[200];
  c->pol = policy_parse(text, n, POLICY_RESOURCE, err, sizeof(err));
  if (!c->pol)
    LOG(LOG_WARN, "a resource policy grants nothing: %s", err);
  return c->pol;
}

static int repairs(const char *action) {
  static const char *const fix[] = {
      "sqs:SetQueueAttributes", "sqs:GetQueueAttributes", "sqs:RemovePermission", "sqs:DeleteQueue",
      "sns:SetTopicAttributes", "sns:GetTopicAttributes", "sns:DeleteTopic"};
  for (size_t i = 0; i < sizeof(fix) / sizeof(fix[0]); i++)
    if (!strcasecmp(action, fix[i]))
      return 1;
  return 0;
}

int authz_check_policy(const server_t *s, const char *text, char *err, size_t errlen) {
  if (!auth_enabled(s->auth) || !text || !text[0])
    return 0;
  policy_t *p = policy_parse(text, strlen(text), POLICY_RESOURCE, err, errlen);
  if (!p)
    return -1;
  policy_free(p);
  return 0;
}

void authz_arn(const server_t *s, authz_kind_t kind, const char *name, size_t nl, char *buf,
               size_t cap) {
  if (kind == AUTHZ_SERVER)
    snprintf(buf, cap, "arn:aws:gearbox:%s:%s:server", s->cfg.region, s->cfg.account);
  else
    snprintf(buf, cap, "arn:aws:%s:%s:%s:%.*s", kind == AUTHZ_QUEUE ? "sqs" : "sns", s->cfg.region,
             s->cfg.account, (int)nl, name);
}

int authz_allowed(server_t *s, const authz_who_t *who, const char *action, authz_kind_t kind,
                  const char *name, size_t nl, int audit) {
  if (!who || !who->p)
    return 1;
  char arn[384];
  authz_arn(s, kind, name, nl, arn, sizeof(arn));
  policy_subject_t subj = {.name = who->p->name, .account = who->p->account};
  policy_effect_t e = policy_eval(who->p->policy, &subj, action, arn);
  if (e != POLICY_DENY) {
    const char *text = NULL;
    if (kind == AUTHZ_QUEUE) {
      const queue_t *q = broker_queue(s->broker, name, nl);
      text = q ? q->rec.a.policy : NULL;
    } else if (kind == AUTHZ_TOPIC) {
      const topic_t *t = topics_find(s->topics, name, nl);
      text = t ? t->policy : NULL;
    }
    if (text && text[0]) {
      const policy_t *rp = resource_policy(s->authz, text);
      /* a stored policy that does not parse (set before authentication was
       * on) may hold Deny statements: fail closed, except for what repairs
       * or removes the resource, which the identity policy alone decides */
      policy_effect_t r = rp                ? policy_eval(rp, &subj, action, arn)
                          : repairs(action) ? POLICY_NONE
                                            : POLICY_DENY;
      if (r == POLICY_DENY || (r == POLICY_ALLOW && e == POLICY_NONE))
        e = r;
    }
  }
  if (e == POLICY_ALLOW)
    return 1;
  if (audit) {
    /* the resource name may be the peer's raw text: no control characters
     * (a newline would forge a log line) reach the log */
    for (char *c = arn; *c; c++)
      if ((unsigned char)*c < 0x20 || *c == 0x7f)
        *c = '?';
    LOG(LOG_WARN, "audit: denied principal=%s action=%s resource=%s addr=%s (%s)", who->p->name,
        action, arn, who->addr ? who->addr : "?",
        e == POLICY_DENY ? "explicit deny" : "no statement allows it");
  }
  return 0;
}

typedef struct sources {
  server_t *s;
  const authz_who_t *who;
  char *denied; /* GBX_MAX_NAME + 1 bytes: the first source not allowed, "" for none */
} sources_t;

static void check_source(void *ctx, const char *src) {
  sources_t *x = ctx;
  if (!x->denied[0] &&
      !authz_allowed(x->s, x->who, "sqs:SendMessage", AUTHZ_QUEUE, src, strlen(src), 0))
    snprintf(x->denied, GBX_MAX_NAME + 1, "%s", src);
}

void authz_source_denied(server_t *s, const authz_who_t *who, const queue_t *dlq,
                         char denied[GBX_MAX_NAME + 1]) {
  denied[0] = 0;
  if (!who || !who->p)
    return;
  sources_t x = {s, who, denied};
  broker_dlq_origins(s->broker, dlq, check_source, &x);
}

void authz_audit_auth(const char *face, const char *key, const char *addr, const char *why) {
  /* the key is the peer's text: only key characters reach the log, so a
   * newline cannot forge a log line */
  char k[41];
  size_t n = 0;
  for (; key && key[n] && n < sizeof(k) - 1; n++)
    k[n] = (key[n] >= 'A' && key[n] <= 'Z') || (key[n] >= '0' && key[n] <= '9') ||
                   (key[n] >= 'a' && key[n] <= 'z')
               ? key[n]
               : '?';
  k[n] = 0;
  LOG(LOG_WARN, "audit: authentication refused face=%s key=%s addr=%s: %s", face, n ? k : "-",
      addr ? addr : "?", why);
}
