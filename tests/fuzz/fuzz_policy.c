/* fuzz_policy.c - libFuzzer target for the policy parser and evaluator
 * (server/policy.h) and the credentials-file parser (server/creds.h).
 *
 * The whole input is parsed as an identity policy, as a resource policy and
 * as a credentials document. Each accepted policy is evaluated for a few
 * fixed requests; each accepted credentials set is looked up by every
 * principal's name and key.
 *
 * Besides "no crash, no sanitizer report" it aborts when an invariant breaks:
 *   - a refusal comes with a non-empty, terminated message;
 *   - evaluation returns one of the three verdicts, the same on a second
 *     call and on a clone of the policy;
 *   - a NULL policy is NONE;
 *   - every principal of an accepted set is found by its name and its key.
 * Replayed over tests/fuzz/corpus/fuzz_policy by replay_main.c under ctest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "policy.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void check_refusal(const char *err, size_t errlen) {
  CHECK(memchr(err, '\0', errlen) != NULL && err[0] != '\0');
}

static const char *const actions[] = {"sqs:SendMessage", "SQS:receivemessage", "sns:Publish", "*",
                                      "sqs:*"};
static const char *const resources[] = {"arn:aws:sqs:us-east-1:123456789012:orders-eu",
                                        "arn:aws:sns:us-east-1:123456789012:t:sub", "orders", "*",
                                        ""};
static const policy_subject_t subjects[] = {
    {"orders-worker", "123456789012"}, {"*", "*"}, {"", ""}, {NULL, NULL}};

static void eval_all(const policy_t *p) {
  policy_t *q = policy_clone(p);
  for (size_t a = 0; a < sizeof actions / sizeof actions[0]; a++)
    for (size_t r = 0; r < sizeof resources / sizeof resources[0]; r++)
      for (size_t s = 0; s < sizeof subjects / sizeof subjects[0]; s++) {
        const policy_subject_t *who = s == 3 ? NULL : &subjects[s];
        policy_effect_t e = policy_eval(p, who, actions[a], resources[r]);
        CHECK(e == POLICY_NONE || e == POLICY_ALLOW || e == POLICY_DENY);
        CHECK(policy_eval(p, who, actions[a], resources[r]) == e);
        if (q)
          CHECK(policy_eval(q, who, actions[a], resources[r]) == e);
      }
  policy_free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  const char *text = (const char *)data;

  CHECK(policy_eval(NULL, NULL, "sqs:SendMessage", "*") == POLICY_NONE);
  for (int kind = POLICY_IDENTITY; kind <= POLICY_RESOURCE; kind++) {
    err[0] = 0;
    policy_t *p = policy_parse(text, size, (policy_kind_t)kind, err, sizeof err);
    if (!p) {
      check_refusal(err, sizeof err);
      continue;
    }
    eval_all(p);
    policy_free(p);
  }

  err[0] = 0;
  creds_t *c = creds_parse(text, size, "123456789012", err, sizeof err);
  if (!c) {
    check_refusal(err, sizeof err);
    return 0;
  }
  CHECK(creds_count(c) >= 1);
  for (uint32_t i = 0; i < creds_count(c); i++) {
    const principal_t *p = creds_at(c, i);
    CHECK(creds_by_name(c, p->name, strlen(p->name)) == p);
    CHECK(creds_by_akid(c, p->akid, strlen(p->akid)) == p);
    CHECK(p->secret_len >= CREDS_MIN_SECRET && p->secret_len <= CREDS_MAX_SECRET);
    if (p->policy)
      eval_all(p->policy);
  }
  creds_free(c);
  return 0;
}
