/* test_policy.c - unit tests of IAM-style policy parsing and evaluation
 * (server/policy.h): the glob matcher, action/resource/principal matching,
 * Deny over Allow, the default of NONE, every refused key and shape with its
 * message, and the limits at and one past their values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

#define Q "arn:aws:sqs:us-east-1:123456789012:"
#define T "arn:aws:sns:us-east-1:123456789012:"

static policy_t *parse_ok(const char *json, policy_kind_t kind) {
  char err[256] = "";
  policy_t *p = policy_parse(json, strlen(json), kind, err, sizeof err);
  if (!p)
    fail_msg("policy %s refused: %s", json, err);
  return p;
}

/* Parses json expecting a refusal whose message holds `want`. */
static void parse_bad(const char *json, policy_kind_t kind, const char *want) {
  char err[256] = "";
  policy_t *p = policy_parse(json, strlen(json), kind, err, sizeof err);
  if (p) {
    policy_free(p);
    fail_msg("policy %s accepted, wanted an error with \"%s\"", json, want);
  }
  if (!strstr(err, want))
    fail_msg("policy %s: error \"%s\" lacks \"%s\"", json, err, want);
}

static int m(const char *pat, const char *s, int ci) {
  return policy_match(pat, strlen(pat), s, strlen(s), ci);
}

/* ---- policy_match ------------------------------------------------------ */

static void test_match_glob(void **state) {
  (void)state;
  assert_true(m("", "", 0));
  assert_false(m("", "a", 0));
  assert_true(m("*", "", 0));
  assert_true(m("*", "anything:at:all", 0));
  assert_true(m("a*c", "abc", 0));
  assert_true(m("a*c", "ac", 0));
  assert_true(m("a*c", "a:b:c", 0)); /* '*' crosses colons */
  assert_false(m("a*c", "abd", 0));
  assert_true(m("a?c", "abc", 0));
  assert_false(m("a?c", "ac", 0));
  assert_true(m("*a*b*c*", "xxaxxbxxcxx", 0));
  assert_false(m("*a*b*c*", "xxcxxbxxaxx", 0));
  assert_true(m("a*b*", "aXbYbZ", 0));
  assert_true(m("*ab", "aab", 0));
  assert_true(m("**", "x", 0));
  assert_false(m("abc", "ab", 0));
  assert_false(m("ab", "abc", 0));
  /* case: exact unless ci */
  assert_false(m("orders", "Orders", 0));
  assert_true(m("sqs:sendmessage", "SQS:SendMessage", 1));
  assert_true(m("SQS:Send*", "sqs:sendmessagebatch", 1));
}

static void test_match_literal_subject(void **state) {
  (void)state;
  /* a '*' or '?' in the subject is an ordinary byte */
  assert_false(m("orders", "*", 0));
  assert_false(m("orders", "o*", 0));
  assert_false(m("abc", "a?c", 0));
  assert_true(m("a*", "a*", 0));
  assert_true(m("a?", "a*", 0));
  assert_true(m("*", "*", 0));
  assert_false(m("sqs:SendMessage", "sqs:*", 1));
}

static void test_match_worst_case_is_fast(void **state) {
  (void)state;
  /* a backtracking matcher takes exponential time here; the greedy one is
   * at most plen * slen steps */
  char pat[1025], s[20001];
  for (int i = 0; i < 1024; i++)
    pat[i] = (i % 2) ? 'a' : '*';
  pat[1024] = 0;
  pat[1023] = 'b';
  memset(s, 'a', 20000);
  s[20000] = 0;
  assert_false(m(pat, s, 0));
  s[19999] = 'b';
  assert_true(m(pat, s, 0)); /* (*a) 511 times then *b: 19999 'a's then 'b' fits */
  assert_true(m("*a*b", s, 0));
}

/* ---- evaluation -------------------------------------------------------- */

static void test_eval_actions(void **state) {
  (void)state;
  policy_t *p = parse_ok("{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
                         "\"Action\":[\"sqs:Send*\",\"SQS:ReceiveMessage\",\"sns:?ublish\"],"
                         "\"Resource\":\"*\"}}",
                         POLICY_IDENTITY);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "a"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessageBatch", Q "a"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, NULL, "sqs:receivemessage", Q "a"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, NULL, "sns:Publish", T "t"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, NULL, "sqs:DeleteMessage", Q "a"), POLICY_NONE);
  assert_int_equal(policy_eval(p, NULL, "sns:Subscribe", T "t"), POLICY_NONE);
  /* the subject's '*' never widens a narrow pattern */
  assert_int_equal(policy_eval(p, NULL, "sqs:*", Q "a"), POLICY_NONE);
  assert_int_equal(policy_eval(p, NULL, "*", Q "a"), POLICY_NONE);
  policy_free(p);
}

static void test_eval_resources(void **state) {
  (void)state;
  policy_t *p = parse_ok("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","
                         "\"Resource\":[\"orders-*\",\"arn:aws:sqs:*:123456789012:jobs\"]}]}",
                         POLICY_IDENTITY);
  /* plain names match the resource part of any ARN */
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "orders-eu"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, NULL, "sns:Publish", T "orders-eu"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "orders"), POLICY_NONE);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "xorders-eu"), POLICY_NONE);
  /* ARN patterns match the whole ARN, case-sensitively */
  assert_int_equal(
      policy_eval(p, NULL, "sqs:SendMessage", "arn:aws:sqs:eu-west-1:123456789012:jobs"),
      POLICY_ALLOW);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", "arn:aws:sqs:eu-west-1:999:jobs"),
                   POLICY_NONE);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "Jobs"), POLICY_NONE);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", T "jobs"), POLICY_NONE);
  /* a literal '*' resource does not match a name pattern unless it has a star */
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "*"), POLICY_NONE);
  /* a subscription ARN: the resource part is everything after the 5th ':' */
  assert_int_equal(policy_eval(p, NULL, "sns:Unsubscribe", T "orders-x:abcd"), POLICY_ALLOW);
  policy_free(p);

  p = parse_ok("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"sqs:*\",\"Resource\":\"*\"}}",
               POLICY_IDENTITY);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "anything"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, NULL, "sns:Publish", T "anything"), POLICY_NONE);
  policy_free(p);
}

static void test_eval_deny_wins_and_default_none(void **state) {
  (void)state;
  /* the Allow comes first in the document; the Deny still wins */
  policy_t *p =
      parse_ok("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
               "{\"Sid\":\"no-delete\",\"Effect\":\"Deny\",\"Action\":\"sqs:Delete*\","
               "\"Resource\":\"orders-*\"}]}",
               POLICY_IDENTITY);
  assert_int_equal(policy_eval(p, NULL, "sqs:DeleteMessage", Q "orders-eu"), POLICY_DENY);
  assert_int_equal(policy_eval(p, NULL, "sqs:DeleteQueue", Q "orders-eu"), POLICY_DENY);
  assert_int_equal(policy_eval(p, NULL, "sqs:DeleteMessage", Q "billing"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "orders-eu"), POLICY_ALLOW);
  policy_free(p);

  p = parse_ok("{\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"sqs:DeleteQueue\","
               "\"Resource\":\"*\"}}",
               POLICY_IDENTITY);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "a"), POLICY_NONE);
  assert_int_equal(policy_eval(p, NULL, "sqs:DeleteQueue", Q "a"), POLICY_DENY);
  policy_free(p);
  assert_int_equal(policy_eval(NULL, NULL, "sqs:SendMessage", Q "a"), POLICY_NONE);
}

static void test_eval_principals(void **state) {
  (void)state;
  /* what AddPermission writes */
  policy_t *p = parse_ok(
      "{\"Version\":\"2012-10-17\",\"Id\":\"" Q "q/SQSDefaultPolicy\",\"Statement\":[{\"Sid\":"
      "\"l1\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":[\"arn:aws:iam::111122223333:root\"]},"
      "\"Action\":[\"SQS:SendMessage\"],\"Resource\":\"" Q "q\"}]}",
      POLICY_RESOURCE);
  policy_subject_t a = {"alice", "111122223333"}, b = {"bob", "999988887777"};
  assert_int_equal(policy_eval(p, &a, "sqs:SendMessage", Q "q"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, &b, "sqs:SendMessage", Q "q"), POLICY_NONE);
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "q"), POLICY_NONE);
  assert_int_equal(policy_eval(p, &a, "sqs:ReceiveMessage", Q "q"), POLICY_NONE);
  policy_free(p);

  p = parse_ok("{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
               "\"Resource\":\"*\"},{\"Effect\":\"Deny\",\"Principal\":{\"AWS\":["
               "\"arn:aws:iam::111122223333:user/mallory\",\"4444*\"]},\"Action\":\"*\","
               "\"Resource\":\"*\"}]}",
               POLICY_RESOURCE);
  policy_subject_t mal = {"mallory", "111122223333"}, c = {"carol", "444455556666"};
  assert_int_equal(policy_eval(p, &a, "sqs:SendMessage", Q "q"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, &b, "sqs:SendMessage", Q "q"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, &mal, "sqs:SendMessage", Q "q"), POLICY_DENY);
  assert_int_equal(policy_eval(p, &c, "sqs:SendMessage", Q "q"), POLICY_DENY);
  /* "*" is any authenticated principal: nobody anonymous */
  assert_int_equal(policy_eval(p, NULL, "sqs:SendMessage", Q "q"), POLICY_NONE);
  policy_free(p);

  /* a bare account id; a wildcard user ARN; a literal '*' name does not widen */
  p = parse_ok("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":[\"111122223333\","
               "\"arn:aws:iam::*:user/ops-*\"]},\"Action\":\"sqs:*\",\"Resource\":\"*\"}}",
               POLICY_RESOURCE);
  policy_subject_t ops = {"ops-1", "999988887777"}, star = {"*", "*"};
  assert_int_equal(policy_eval(p, &a, "sqs:SendMessage", Q "q"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, &ops, "sqs:SendMessage", Q "q"), POLICY_ALLOW);
  assert_int_equal(policy_eval(p, &b, "sqs:SendMessage", Q "q"), POLICY_NONE);
  assert_int_equal(policy_eval(p, &star, "sqs:SendMessage", Q "q"), POLICY_NONE);
  policy_free(p);

  /* a long name takes the allocated path of the principal ARNs */
  char longname[600];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  p = parse_ok("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":"
               "\"arn:aws:iam::1:user/n*n\"},\"Action\":\"*\",\"Resource\":\"*\"}}",
               POLICY_RESOURCE);
  policy_subject_t ln = {longname, "1"};
  assert_int_equal(policy_eval(p, &ln, "sqs:SendMessage", Q "q"), POLICY_ALLOW);
  policy_free(p);
}

static void test_clone(void **state) {
  (void)state;
  policy_t *p = parse_ok("{\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"sqs:Delete*\","
                         "\"Resource\":\"*\"},{\"Effect\":\"Allow\",\"Action\":\"sqs:*\","
                         "\"Resource\":\"orders\"}]}",
                         POLICY_IDENTITY);
  policy_t *q = policy_clone(p);
  assert_non_null(q);
  policy_free(p);
  assert_int_equal(policy_eval(q, NULL, "sqs:SendMessage", Q "orders"), POLICY_ALLOW);
  assert_int_equal(policy_eval(q, NULL, "sqs:DeleteQueue", Q "orders"), POLICY_DENY);
  assert_int_equal(policy_eval(q, NULL, "sqs:SendMessage", Q "other"), POLICY_NONE);
  policy_free(q);
  assert_null(policy_clone(NULL));
}

/* ---- refusals ------------------------------------------------------------ */

#define ST(body)                                                                                   \
  "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}," body "]}"

static void test_refused_keys(void **state) {
  (void)state;
  const char *keys[] = {"NotAction", "NotResource", "NotPrincipal", "Condition"};
  char doc[512], want[128];
  for (int i = 0; i < 4; i++) {
    snprintf(doc, sizeof doc,
             ST("{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\",\"%s\":\"x\"}"), keys[i]);
    snprintf(want, sizeof want, "Statement[1].%s: not supported", keys[i]);
    parse_bad(doc, POLICY_IDENTITY, want);
    parse_bad(doc, POLICY_IDENTITY, "would change what the policy allows");
  }
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Efect\":\"x\"}"),
            POLICY_IDENTITY, "Statement[1].Efect: unknown key");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}"),
            POLICY_IDENTITY, "Statement[1].Effect: duplicate key");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},\"Foo\":1}",
            POLICY_IDENTITY, "Foo: unknown key");
  parse_bad("{\"Version\":\"2012-10-17\",\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":"
            "\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}",
            POLICY_IDENTITY, "Version: duplicate key");
  /* a control character in a key is not copied into the message (or a log) */
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
            "\"Ba\\nd\\u001b[31m\":1}}",
            POLICY_IDENTITY, "Statement[0].Ba?d?[31m: unknown key");
}

static void test_refused_shapes(void **state) {
  (void)state;
  const policy_kind_t I = POLICY_IDENTITY, R = POLICY_RESOURCE;
  parse_bad("", I, "empty");
  parse_bad("[]", I, "must be a JSON object");
  parse_bad("{\"Statement\":", I, "not valid JSON");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}} x", I,
            "text after");
  parse_bad("{}", I, "Statement: missing");
  parse_bad("{\"Statement\":[]}", I, "Statement: must not be an empty array");
  parse_bad("{\"Statement\":\"x\"}", I, "Statement: must be an object or an array");
  parse_bad("{\"Statement\":[1]}", I, "Statement[0]: must be an object");
  parse_bad("{\"Version\":\"2013-01-01\",\"Statement\":{}}", I, "Version: must be");
  parse_bad("{\"Id\":5,\"Statement\":{}}", I, "Id: must be a string");
  parse_bad(ST("{\"Action\":\"*\",\"Resource\":\"*\"}"), I, "Statement[1].Effect: missing");
  parse_bad(ST("{\"Effect\":\"allow\",\"Action\":\"*\",\"Resource\":\"*\"}"), I,
            "Statement[1].Effect: must be \"Allow\" or \"Deny\"");
  parse_bad(ST("{\"Sid\":1,\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}"), I,
            "Statement[1].Sid: must be a string");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Resource\":\"*\"}"), I, "Statement[1].Action: missing");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":\"*\"}"), I, "Statement[1].Resource: missing");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":[],\"Resource\":\"*\"}"), I,
            "Statement[1].Action: must not be an empty array");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":[\"sqs:A\",7],\"Resource\":\"*\"}"), I,
            "Statement[1].Action: entry 1 is not a string");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":{},\"Resource\":\"*\"}"), I,
            "Statement[1].Action: must be a string or an array");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":\"SendMessage\",\"Resource\":\"*\"}"), I,
            "Statement[1].Action: \"SendMessage\" is not");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":\"sqs:a:b\",\"Resource\":\"*\"}"), I,
            "Statement[1].Action");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":\"sqs:\",\"Resource\":\"*\"}"), I,
            "Statement[1].Action");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":\"\",\"Resource\":\"*\"}"), I,
            "Statement[1].Action: a pattern must be 1-1024 bytes");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":\"sqs:Send Message\",\"Resource\":\"*\"}"), I,
            "Statement[1].Action: \"sqs:Send Message\" holds a space");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"sqs:orders\"}"), I,
            "Statement[1].Resource: \"sqs:orders\" is neither");
  parse_bad(ST("{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"" Q "${aws:username}\"}"), I,
            "Statement[1].Resource: \"" Q "${aws:username}\": policy variables are not supported");
  /* Principal: refused in identity policies, required in resource ones */
  parse_bad(ST("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}"), I,
            "Statement[1].Principal: not allowed in an identity policy");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}", R,
            "Statement[0].Principal: missing");
  const char *badp[][2] = {
      {"\"alice\"", "a string Principal must be \"*\""},
      {"{}", "Principal: must hold \"AWS\""},
      {"{\"Service\":\"sns.amazonaws.com\"}", "Principal.Service: only \"AWS\""},
      {"{\"AWS\":[]}", "Principal: must not be an empty array"},
      {"{\"AWS\":\"iam::1:root\"}", "is neither \"*\", an ARN"},
      {"[\"*\"]", "Principal: must be \"*\" or"},
  };
  for (size_t i = 0; i < sizeof badp / sizeof badp[0]; i++) {
    char doc[256];
    snprintf(doc, sizeof doc,
             "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":%s,\"Action\":\"*\","
             "\"Resource\":\"*\"}}",
             badp[i][0]);
    parse_bad(doc, R, badp[i][1]);
  }
  char err[64];
  assert_null(policy_parse("{}", 2, (policy_kind_t)7, err, sizeof err));
  assert_non_null(strstr(err, "unknown policy kind"));
  assert_null(policy_from_json(NULL, POLICY_IDENTITY, err, sizeof err));
  /* a tiny error buffer is still terminated; NULL is allowed */
  char tiny[8];
  assert_null(policy_parse("[]", 2, POLICY_IDENTITY, tiny, sizeof tiny));
  assert_int_equal(strlen(tiny), 7);
  assert_null(policy_parse("[]", 2, POLICY_IDENTITY, NULL, 0));
}

/* Builds a document of n statements of k actions each. */
static char *build_doc(unsigned n, unsigned k, size_t patlen) {
  size_t cap = 64 + (size_t)n * (80 + k * (patlen + 8));
  char *d = malloc(cap), *w = d;
  w += sprintf(w, "{\"Statement\":[");
  for (unsigned i = 0; i < n; i++) {
    w += sprintf(w, "%s{\"Effect\":\"Allow\",\"Resource\":\"*\",\"Action\":[", i ? "," : "");
    for (unsigned j = 0; j < k; j++) {
      w += sprintf(w, "%s\"sqs:", j ? "," : "");
      memset(w, 'A', patlen - 4);
      w += patlen - 4;
      *w++ = '"';
    }
    w += sprintf(w, "]}");
  }
  sprintf(w, "]}");
  return d;
}

static void test_limits(void **state) {
  (void)state;
  char err[256];
  /* statements: 100 ok, 101 refused */
  char *d = build_doc(POLICY_MAX_STATEMENTS, 1, 8);
  policy_t *p = parse_ok(d, POLICY_IDENTITY);
  assert_int_equal(policy_eval(p, NULL, "sqs:AAAA", Q "x"), POLICY_ALLOW);
  policy_free(p);
  free(d);
  d = build_doc(POLICY_MAX_STATEMENTS + 1, 1, 8);
  parse_bad(d, POLICY_IDENTITY, "Statement: more than 100 statements");
  free(d);
  /* items: 100 ok, 101 refused */
  d = build_doc(1, POLICY_MAX_ITEMS, 8);
  p = parse_ok(d, POLICY_IDENTITY);
  policy_free(p);
  free(d);
  d = build_doc(1, POLICY_MAX_ITEMS + 1, 8);
  parse_bad(d, POLICY_IDENTITY, "Statement[0].Action: more than 100 entries");
  free(d);
  /* pattern length: 1024 ok, 1025 refused */
  d = build_doc(1, 1, POLICY_MAX_PATTERN);
  p = parse_ok(d, POLICY_IDENTITY);
  policy_free(p);
  free(d);
  d = build_doc(1, 1, POLICY_MAX_PATTERN + 1);
  parse_bad(d, POLICY_IDENTITY, "a pattern must be 1-1024 bytes, not 1025");
  free(d);
  /* document bytes: over 20 KiB refused before parsing */
  d = build_doc(1, 30, 1000);
  assert_true(strlen(d) > POLICY_MAX_BYTES);
  assert_null(policy_parse(d, strlen(d), POLICY_IDENTITY, err, sizeof err));
  assert_non_null(strstr(err, "more than 20480"));
  free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_match_glob),
      cmocka_unit_test(test_match_literal_subject),
      cmocka_unit_test(test_match_worst_case_is_fast),
      cmocka_unit_test(test_eval_actions),
      cmocka_unit_test(test_eval_resources),
      cmocka_unit_test(test_eval_deny_wins_and_default_none),
      cmocka_unit_test(test_eval_principals),
      cmocka_unit_test(test_clone),
      cmocka_unit_test(test_refused_keys),
      cmocka_unit_test(test_refused_shapes),
      cmocka_unit_test(test_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
