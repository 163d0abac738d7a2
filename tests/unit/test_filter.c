/* test_filter.c - unit tests of the SNS filter-policy compiler and matcher
 * (server/filter.h).
 *
 * Most tests are tables of (policy, message, expected match): the examples
 * of the SNS developer guide's filtering pages, then edge cases. Every
 * compile error is checked with its message, every limit at and one past
 * its value, and the per-message JSON caches are checked to parse once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <sys/mman.h>
#include <unistd.h>

#include "filter.h"

/* ---- helpers ------------------------------------------------------------ */

#define ATTRS 4
typedef struct attr_spec {
  const char *name, *type, *value;
} attr_spec_t;

/* One matching case: a policy, a message (attributes or a body) and the
 * expected result. */
typedef struct mcase {
  const char *policy;
  attr_spec_t attrs[ATTRS]; /* attribute scope; ends at the first NULL name */
  const char *body;         /* body scope when not NULL */
  int want;
} mcase_t;

static filter_t *compile_ok(const char *policy, int scope) {
  gbx_errbuf_t eb = {0};
  filter_t *f = filter_compile(policy, strlen(policy), scope, &eb);
  if (!f)
    fail_msg("policy %s refused: %s", policy, eb.msg);
  assert_int_equal(filter_scope(f), scope);
  return f;
}

static uint32_t build_attrs(const attr_spec_t *spec, gbx_attr_t *out) {
  uint32_t n = 0;
  for (; n < ATTRS && spec[n].name; n++) {
    out[n] = (gbx_attr_t){spec[n].name,  (uint32_t)strlen(spec[n].name),
                          spec[n].type,  (uint32_t)strlen(spec[n].type),
                          spec[n].value, (uint32_t)strlen(spec[n].value)};
  }
  return n;
}

/* Runs each case: compiles its policy for its scope, matches twice (the
 * second time through the message's caches) and checks the result. */
static void run_cases(const mcase_t *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const mcase_t *c = &cases[i];
    int scope = c->body ? FILTER_SCOPE_BODY : FILTER_SCOPE_ATTRIBUTES;
    filter_t *f = compile_ok(c->policy, scope);
    gbx_attr_t a[ATTRS];
    uint32_t na = build_attrs(c->attrs, a);
    filter_msg_t m;
    filter_msg_init(&m, a, na, c->body, c->body ? strlen(c->body) : 0);
    int got = filter_match(f, &m), again = filter_match(f, &m);
    filter_msg_free(&m);
    filter_free(f);
    if (got != c->want || again != got)
      fail_msg("case %zu: policy %s, %s %s: got %d (then %d), want %d", i, c->policy,
               c->body ? "body" : "first attribute", c->body ? c->body : c->attrs[0].value, got,
               again, c->want);
  }
}

#define RUN(cases) run_cases(cases, sizeof cases / sizeof cases[0])

/* Expects policy to be refused for scope with a message containing needle. */
static void expect_error(const char *policy, size_t len, int scope, const char *needle) {
  gbx_errbuf_t eb = {0};
  filter_t *f = filter_compile(policy, len, scope, &eb);
  if (f) {
    filter_free(f);
    fail_msg("policy %.200s was accepted; want an error with '%s'", policy, needle);
  }
  assert_int_equal(eb.code, GBX_E_BAD_FILTER_POLICY);
  if (!strstr(eb.msg, needle))
    fail_msg("policy %.200s: message '%s' lacks '%s'", policy, eb.msg, needle);
}

#define BAD_A(p, needle) expect_error(p, strlen(p), FILTER_SCOPE_ATTRIBUTES, needle)
#define BAD_B(p, needle) expect_error(p, strlen(p), FILTER_SCOPE_BODY, needle)

/* Appends n values "v0".."v(n-1)" (quoted) or numbers 0..n-1 to buf. */
static void append_values(char *buf, size_t cap, int n, int numbers) {
  for (int i = 0; i < n; i++) {
    size_t l = strlen(buf);
    snprintf(buf + l, cap - l, numbers ? "%s%d" : "%s\"v%d\"", i ? "," : "", i);
  }
}

/* ---- attribute scope: the guide's examples --------------------------------- */

static void test_exact_string(void **state) {
  (void)state;
  const char *p = "{\"customer_interests\": [\"rugby\", \"tennis\"]}";
  const mcase_t cases[] = {
      {p, {{"customer_interests", "String", "rugby"}}, NULL, 1},
      {p, {{"customer_interests", "String", "tennis"}}, NULL, 1},
      {p, {{"customer_interests", "String.Array", "[\"rugby\", \"tennis\"]"}}, NULL, 1},
      {p, {{"customer_interests", "String", "baseball"}}, NULL, 0},
      {p, {{"customer_interests", "String.Array", "[\"baseball\"]"}}, NULL, 0},
      {p, {{"customer_interests", "String", "Rugby"}}, NULL, 0}, /* case-sensitive */
      {p, {{"customer_interests", "String", "rugby "}}, NULL, 0},
      {p, {{"customer_interests", "String.team", "rugby"}}, NULL, 1}, /* custom type */
      {p, {{"customer_interests", "Binary", "rugby"}}, NULL, 0},      /* ignored */
      {p, {{"other", "String", "rugby"}}, NULL, 0},
      {p, {{0}}, NULL, 0},
      {p, {{"x", "String", "y"}, {"customer_interests", "String", "rugby"}}, NULL, 1},
      /* a string never equals a Number attribute */
      {"{\"a\": [\"300\"]}", {{"a", "Number", "300"}}, NULL, 0},
      /* String.Array: an element matches; bad JSON or a non-array matches nothing */
      {p, {{"customer_interests", "String.Array", "[\"soccer\", \"tennis\"]"}}, NULL, 1},
      {p, {{"customer_interests", "String.Array", "[[\"tennis\"]]"}}, NULL, 1},
      {p, {{"customer_interests", "String.Array", "rugby"}}, NULL, 0},
      {p, {{"customer_interests", "String.Array", "\"rugby\""}}, NULL, 0},
      {p, {{"customer_interests", "String.Array", "[\"rugby\""}}, NULL, 0},
      {p, {{"customer_interests", "String.Array", "[\"rugby\"] x"}}, NULL, 0},
      {p, {{"customer_interests", "String.Array", "[]"}}, NULL, 0},
      {p, {{"customer_interests", "String.Array", "[{\"a\": \"rugby\"}]"}}, NULL, 0},
      /* escapes are decoded before comparing */
      {"{\"a\": [\"r\\u00e9sum\\u00e9\"]}", {{"a", "String", "r\xc3\xa9sum\xc3\xa9"}}, NULL, 1},
      {"{\"a\": [\"\\\"q\\\"\"]}", {{"a", "String.Array", "[\"\\\"q\\\"\"]"}}, NULL, 1},
      /* the empty string is a value like any other */
      {"{\"a\": [\"\"]}", {{"a", "String.Array", "[\"\"]"}}, NULL, 1},
      /* true, false and null only match JSON values of String.Array */
      {"{\"a\": [true]}", {{"a", "String", "true"}}, NULL, 0},
      {"{\"a\": [true]}", {{"a", "String.Array", "[false, true]"}}, NULL, 1},
      {"{\"a\": [false]}", {{"a", "String.Array", "[true]"}}, NULL, 0},
      {"{\"a\": [null]}", {{"a", "String.Array", "[null]"}}, NULL, 1},
      {"{\"a\": [null]}", {{"a", "String", "null"}}, NULL, 0},
  };
  RUN(cases);
}

static void test_exact_number(void **state) {
  (void)state;
  const char *p = "{\"price_usd\": [{\"numeric\": [\"=\", 301.5]}]}";
  const char *q = "{\"price\": [300]}";
  const mcase_t cases[] = {
      {p, {{"price_usd", "Number", "301.5"}}, NULL, 1},
      {p, {{"price_usd", "Number", "3.015e2"}}, NULL, 1},
      {p, {{"price_usd", "Number", "301.50000"}}, NULL, 1},
      {p, {{"price_usd", "Number", "301.6"}}, NULL, 0},
      {p, {{"price_usd", "String", "301.5"}}, NULL, 0},
      {q, {{"price", "Number", "300"}}, NULL, 1},
      {q, {{"price", "Number", "3.0e2"}}, NULL, 1},
      {q, {{"price", "Number", "+300.0"}}, NULL, 1},
      {q, {{"price", "Number", "30000E-2"}}, NULL, 1},
      {q, {{"price", "Number.usd", "300"}}, NULL, 1},
      /* five decimal places of accuracy */
      {q, {{"price", "Number", "300.000001"}}, NULL, 1},
      {q, {{"price", "Number", "300.00001"}}, NULL, 0},
      {q, {{"price", "String", "300"}}, NULL, 0},
      {q, {{"price", "String.Array", "[1, 300]"}}, NULL, 1},
      {q, {{"price", "String.Array", "[\"300\"]"}}, NULL, 0},
      /* text that is not a plain decimal number is no number */
      {q, {{"price", "Number", "0x12c"}}, NULL, 0},
      {q, {{"price", "Number", "300abc"}}, NULL, 0},
      {q, {{"price", "Number", ""}}, NULL, 0},
      {"{\"z\": [0]}", {{"z", "Number", "-0"}}, NULL, 1},
      {"{\"z\": [-1000000000]}", {{"z", "Number", "-1e9"}}, NULL, 1},
      /* outside -1e9..1e9 a message number equals nothing */
      {"{\"z\": [1000000000]}", {{"z", "Number", "1000000000.5"}}, NULL, 0},
  };
  RUN(cases);
}

static void test_anything_but(void **state) {
  (void)state;
  const char *s = "{\"customer_interests\": [{\"anything-but\": [\"rugby\", \"tennis\"]}]}";
  const char *n = "{\"price\": [{\"anything-but\": [100, 500]}]}";
  const char *pre = "{\"event\": [{\"anything-but\": {\"prefix\": \"order-\"}}]}";
  const char *suf = "{\"file\": [{\"anything-but\": {\"suffix\": \".png\"}}]}";
  const mcase_t cases[] = {
      {s, {{"customer_interests", "String", "baseball"}}, NULL, 1},
      {s, {{"customer_interests", "String", "football"}}, NULL, 1},
      {s, {{"customer_interests", "String.Array", "[\"rugby\", \"baseball\"]"}}, NULL, 1},
      {s, {{"customer_interests", "String", "rugby"}}, NULL, 0},
      {s, {{"customer_interests", "String.Array", "[\"rugby\", \"tennis\"]"}}, NULL, 0},
      {s, {{"customer_interests", "String.Array", "[]"}}, NULL, 0},
      {s, {{0}}, NULL, 0}, /* never matches a missing attribute */
      {s, {{"customer_interests", "Binary", "baseball"}}, NULL, 0},
      {s, {{"customer_interests", "Number", "5"}}, NULL, 1}, /* 5 is not "rugby" */
      {n, {{"price", "Number", "101"}}, NULL, 1},
      {n, {{"price", "Number", "100.1"}}, NULL, 1},
      {n, {{"price", "Number", "100"}}, NULL, 0},
      {n, {{"price", "Number", "1e2"}}, NULL, 0},
      {n, {{"price", "Number", "500.000001"}}, NULL, 0},
      {n, {{"price", "String.Array", "[100, 50]"}}, NULL, 1},
      {n, {{"price", "String.Array", "[100, 500]"}}, NULL, 0},
      {n, {{"price", "String", "100"}}, NULL, 1}, /* a string is not 100 */
      {n, {{"price", "Number", "5e9"}}, NULL, 1}, /* out of range: equals nothing */
      {"{\"a\": [{\"anything-but\": \"x\"}]}", {{"a", "String", "y"}}, NULL, 1},
      {"{\"a\": [{\"anything-but\": \"x\"}]}", {{"a", "String", "x"}}, NULL, 0},
      {"{\"a\": [{\"anything-but\": 7}]}", {{"a", "Number", "7.0"}}, NULL, 0},
      {"{\"a\": [{\"anything-but\": 7}]}", {{"a", "Number", "8"}}, NULL, 1},
      {"{\"a\": [{\"anything-but\": [\"x\", 7]}]}", {{"a", "String.Array", "[\"x\", 7]"}}, NULL, 0},
      {"{\"a\": [{\"anything-but\": [\"x\", 7]}]}", {{"a", "String.Array", "[\"x\", 8]"}}, NULL, 1},
      /* combined with exists: false it also takes a missing attribute (when
       * the message has attributes at all: SNS matches no attribute policy
       * against an empty set) */
      {"{\"a\": [{\"anything-but\": [\"rugby\"]}, {\"exists\": false}]}", {{0}}, NULL, 0},
      {"{\"a\": [{\"anything-but\": [\"rugby\"]}, {\"exists\": false}]}",
       {{"b", "String", "x"}},
       NULL,
       1},
      {"{\"a\": [{\"anything-but\": [\"rugby\"]}, {\"exists\": false}]}",
       {{"a", "String", "rugby"}},
       NULL,
       0},
      {"{\"a\": [{\"anything-but\": [\"rugby\"]}, {\"exists\": false}]}",
       {{"a", "String", "polo"}},
       NULL,
       1},
      {pre, {{"event", "String", "data-entry"}}, NULL, 1},
      {pre, {{"event", "String", "order_number"}}, NULL, 1},
      {pre, {{"event", "String", "order-cancelled"}}, NULL, 0},
      {pre, {{"event", "String", "order-"}}, NULL, 0},
      {pre, {{"event", "Number", "5"}}, NULL, 0}, /* prefix is a string operation */
      {pre, {{0}}, NULL, 0},
      {suf, {{"file", "String", "cat.jpg"}}, NULL, 1},
      {suf, {{"file", "String", "cat.png"}}, NULL, 0},
      {suf, {{"file", "String.Array", "[\"a.png\", \"b.gif\"]"}}, NULL, 1},
  };
  RUN(cases);
}

static void test_prefix_suffix_icase(void **state) {
  (void)state;
  const char *pre = "{\"customer_interests\": [{\"prefix\": \"bas\"}]}";
  const char *suf = "{\"customer_interests\": [{\"suffix\": \"ball\"}]}";
  const char *ic = "{\"customer_interests\": [{\"equals-ignore-case\": \"RuGbY\"}]}";
  const mcase_t cases[] = {
      {pre, {{"customer_interests", "String", "baseball"}}, NULL, 1},
      {pre, {{"customer_interests", "String", "basketball"}}, NULL, 1},
      {pre, {{"customer_interests", "String", "bas"}}, NULL, 1},
      {pre, {{"customer_interests", "String", "ba"}}, NULL, 0},
      {pre, {{"customer_interests", "String", "rugby"}}, NULL, 0},
      {pre, {{"customer_interests", "String", "Baseball"}}, NULL, 0},
      {pre, {{"customer_interests", "String.Array", "[\"rugby\", \"bass\"]"}}, NULL, 1},
      {pre, {{"customer_interests", "String.Array", "[1, true]"}}, NULL, 0},
      {"{\"c\": [\"ba\"]}", {{"c", "String.Array", "[\"ba\\u0000s\"]"}}, NULL, 0},
      {suf, {{"customer_interests", "String", "baseball"}}, NULL, 1},
      {suf, {{"customer_interests", "String", "ball"}}, NULL, 1},
      {suf, {{"customer_interests", "String", "all"}}, NULL, 0},
      {suf, {{"customer_interests", "String", "rugby"}}, NULL, 0},
      {ic, {{"customer_interests", "String", "rugby"}}, NULL, 1},
      {ic, {{"customer_interests", "String", "RUGBY"}}, NULL, 1},
      {ic, {{"customer_interests", "String", "rugby2"}}, NULL, 0},
      {ic, {{"customer_interests", "String", "rugb"}}, NULL, 0},
      {ic, {{"customer_interests", "String.Array", "[\"RugBy\"]"}}, NULL, 1},
      /* an empty prefix takes every string, and only strings */
      {"{\"a\": [{\"prefix\": \"\"}]}", {{"a", "String", "x"}}, NULL, 1},
      {"{\"a\": [{\"prefix\": \"\"}]}", {{"a", "Number", "1"}}, NULL, 0},
      /* letters fold by Unicode's simple case mapping, character by character */
      {"{\"a\": [{\"equals-ignore-case\": \"\xc3\xa9t\xc3\xa9\"}]}",
       {{"a", "String", "\xc3\xa9T\xc3\xa9"}},
       NULL,
       1},
      {"{\"a\": [{\"equals-ignore-case\": \"\xc3\xa9t\xc3\xa9\"}]}", /* "ÉTÉ" */
       {{"a", "String", "\xc3\x89T\xc3\x89"}},
       NULL,
       1},
      {"{\"a\": [{\"equals-ignore-case\": \"\xc3\xa9t\xc3\xa9\"}]}", /* "ete" */
       {{"a", "String", "ete"}},
       NULL,
       0},
      /* final sigma: σ, ς and Σ are one letter */
      {"{\"a\": [{\"equals-ignore-case\": \"\xce\xa3\xce\xa3\"}]}",
       {{"a", "String", "\xcf\x83\xcf\x82"}},
       NULL,
       1},
      /* no expansion: "ß" is not "SS"; and a prefix is not equal */
      {"{\"a\": [{\"equals-ignore-case\": \"stra\xc3\x9f\x65\"}]}",
       {{"a", "String", "STRASSE"}},
       NULL,
       0},
      {"{\"a\": [{\"equals-ignore-case\": \"\xc3\xa9t\xc3\xa9\"}]}",
       {{"a", "String", "\xc3\x89T"}},
       NULL,
       0},
      {"{\"a\": [{\"equals-ignore-case\": \"x\"}]}", {{"a", "String.Array", "[\"X\"]"}}, NULL, 1},
      /* bytes that are not UTF-8 equal only themselves: an overlong "A" is no "a" */
      {"{\"a\": [{\"equals-ignore-case\": \"a\"}]}", {{"a", "String", "\xe0\x81\x81"}}, NULL, 0},
      {"{\"a\": [{\"equals-ignore-case\": \"a\"}]}", {{"a", "String", "\xc1\x81"}}, NULL, 0},
      {"{\"a\": [{\"equals-ignore-case\": \"\xc3\xa9\"}]}", {{"a", "String", "\xc3"}}, NULL, 0},
      {"{\"a\": [{\"equals-ignore-case\": \"\xc3\xa9\"}]}", {{"a", "String", "\xc3\x89"}}, NULL, 1},
  };
  RUN(cases);
}

/* SNS's wildcard operator: '*' is any run of characters (none included),
 * "\\*" a literal star; anything-but takes one too. */
static void test_wildcard(void **state) {
  (void)state;
  const char *w = "{\"c\": [{\"wildcard\": \"*ball\"}]}";
  const char *mid = "{\"c\": [{\"wildcard\": \"a*b*c\"}]}";
  const char *esc = "{\"c\": [{\"wildcard\": \"5\\\\*\"}]}";
  const char *nb = "{\"c\": [{\"anything-but\": {\"wildcard\": \"*ball\"}}]}";
  const mcase_t cases[] = {
      {w, {{"c", "String", "baseball"}}, NULL, 1},
      {w, {{"c", "String", "ball"}}, NULL, 1},
      {w, {{"c", "String", "balls"}}, NULL, 0},
      {w, {{"c", "String", "rugby"}}, NULL, 0},
      {w, {{"c", "String.Array", "[\"rugby\", \"football\"]"}}, NULL, 1},
      {w, {{"c", "Number", "5"}}, NULL, 0},
      {mid, {{"c", "String", "abc"}}, NULL, 1},
      {mid, {{"c", "String", "a-b-c"}}, NULL, 1},
      {mid, {{"c", "String", "abbc"}}, NULL, 1},
      {mid, {{"c", "String", "acb"}}, NULL, 0},
      {mid, {{"c", "String", "ab"}}, NULL, 0},
      {mid, {{"c", "String", "abcx"}}, NULL, 0},
      /* the last run may not overlap one matched before it: "a*ab" */
      {"{\"c\": [{\"wildcard\": \"a*ab\"}]}", {{"c", "String", "ab"}}, NULL, 0},
      {"{\"c\": [{\"wildcard\": \"a*ab\"}]}", {{"c", "String", "aab"}}, NULL, 1},
      {"{\"c\": [{\"wildcard\": \"*\"}]}", {{"c", "String", ""}}, NULL, 1},
      {"{\"c\": [{\"wildcard\": \"x\"}]}", {{"c", "String", "x"}}, NULL, 1},
      {"{\"c\": [{\"wildcard\": \"x\"}]}", {{"c", "String", "xx"}}, NULL, 0},
      {esc, {{"c", "String", "5*"}}, NULL, 1},
      {esc, {{"c", "String", "55"}}, NULL, 0},
      {nb, {{"c", "String", "rugby"}}, NULL, 1},
      {nb, {{"c", "String", "baseball"}}, NULL, 0},
      {nb, {{"c", "String.Array", "[\"rugby\", \"baseball\"]"}}, NULL, 1},
      {nb, {{"c", "Number", "5"}}, NULL, 0},
      /* a body value */
      {w, {{0}}, "{\"c\": \"handball\"}", 1},
  };
  RUN(cases);
}

static void test_numeric(void **state) {
  (void)state;
  const char *neg = "{\"price_usd\": [{\"numeric\": [\"<\", 0]}]}";
  const char *range = "{\"price_usd\": [{\"numeric\": [\">\", 0, \"<=\", 150]}]}";
  const char *closed = "{\"v\": [{\"numeric\": [\">=\", -2.5, \"<\", 2.5]}]}";
  const mcase_t cases[] = {
      {neg, {{"price_usd", "Number", "-0.5"}}, NULL, 1},
      {neg, {{"price_usd", "Number", "-1000000000"}}, NULL, 1},
      {neg, {{"price_usd", "Number", "0"}}, NULL, 0},
      {neg, {{"price_usd", "Number", "-0.000001"}}, NULL, 0}, /* rounds to 0 */
      {neg, {{"price_usd", "Number", "-0.00001"}}, NULL, 1},
      {range, {{"price_usd", "Number", "150"}}, NULL, 1},
      {range, {{"price_usd", "Number", "0.00001"}}, NULL, 1},
      {range, {{"price_usd", "Number", "75"}}, NULL, 1},
      {range, {{"price_usd", "Number", "0"}}, NULL, 0},
      {range, {{"price_usd", "Number", "150.00001"}}, NULL, 0},
      {range, {{"price_usd", "Number", "150.000001"}}, NULL, 1}, /* five decimals */
      {range, {{"price_usd", "Number", "-1"}}, NULL, 0},
      {range, {{"price_usd", "Number", "1.5e2"}}, NULL, 1},
      {range, {{"price_usd", "String", "75"}}, NULL, 0},
      {range, {{"price_usd", "String.Array", "[\"75\", 200, 99]"}}, NULL, 1},
      {range, {{"price_usd", "String.Array", "[\"75\", 200]"}}, NULL, 0},
      {range, {{"price_usd", "Number", "2e9"}}, NULL, 0},
      {range, {{0}}, NULL, 0},
      {closed, {{"v", "Number", "-2.5"}}, NULL, 1},
      {closed, {{"v", "Number", "2.5"}}, NULL, 0},
      {closed, {{"v", "Number", "2.49999"}}, NULL, 1},
      {"{\"v\": [{\"numeric\": [\">=\", 10]}]}", {{"v", "Number", "10"}}, NULL, 1},
      {"{\"v\": [{\"numeric\": [\">=\", 10]}]}", {{"v", "Number", "9.99999"}}, NULL, 0},
      {"{\"v\": [{\"numeric\": [\">\", 10]}]}", {{"v", "Number", "10"}}, NULL, 0},
      {"{\"v\": [{\"numeric\": [\"<=\", -5]}]}", {{"v", "Number", "-5"}}, NULL, 1},
      {"{\"v\": [{\"numeric\": [\"<=\", -5]}]}", {{"v", "Number", "-4.99"}}, NULL, 0},
      {"{\"v\": [{\"numeric\": [\"=\", 0]}]}", {{"v", "Number", "-0.0"}}, NULL, 1},
      {"{\"v\": [{\"numeric\": [\"=\", 1e9]}]}", {{"v", "Number", "1000000000"}}, NULL, 1},
      /* several numeric values are ORed */
      {"{\"v\": [{\"numeric\": [\"<\", 0]}, {\"numeric\": [\">\", 100]}]}",
       {{"v", "Number", "101"}},
       NULL,
       1},
      {"{\"v\": [{\"numeric\": [\"<\", 0]}, {\"numeric\": [\">\", 100]}]}",
       {{"v", "Number", "50"}},
       NULL,
       0},
  };
  RUN(cases);
}

static void test_exists(void **state) {
  (void)state;
  const char *t = "{\"store\": [{\"exists\": true}]}";
  const char *f = "{\"store\": [{\"exists\": false}]}";
  const mcase_t cases[] = {
      {t,
       {{"store", "String", "fans"}, {"customer_interests", "String.Array", "[\"b\"]"}},
       NULL,
       1},
      {t, {{"customer_interests", "String.Array", "[\"baseball\"]"}}, NULL, 0},
      {t, {{"store", "Number", "1"}}, NULL, 1},
      {t, {{"store", "String.Array", "[]"}}, NULL, 0}, /* SNS: non-null, non-empty */
      {t, {{"store", "String.Array", "[null]"}}, NULL, 0},
      {f, {{"store", "String.Array", "[]"}}, NULL, 1},
      {t, {{"store", "Binary", "x"}}, NULL, 0},
      {t, {{0}}, NULL, 0},
      {f, {{"store", "String", "fans"}}, NULL, 0},
      {f, {{"customer_interests", "String.Array", "[\"baseball\"]"}}, NULL, 1},
      {f, {{"store", "Binary", "x"}}, NULL, 1},
      {f, {{0}}, NULL, 0}, /* SNS: exists:false needs at least one attribute */
      {f, {{"other", "String", "x"}}, NULL, 1},
      /* exists true or false: always */
      {"{\"s\": [{\"exists\": true}, {\"exists\": false}]}", {{0}}, NULL, 0},
      {"{\"s\": [{\"exists\": true}, {\"exists\": false}]}", {{"o", "String", "x"}}, NULL, 1},
      {"{\"s\": [{\"exists\": true}, {\"exists\": false}]}", {{"s", "String", "x"}}, NULL, 1},
      /* exists: false or a value */
      {"{\"s\": [\"x\", {\"exists\": false}]}", {{"s", "String", "x"}}, NULL, 1},
      {"{\"s\": [\"x\", {\"exists\": false}]}", {{"s", "String", "y"}}, NULL, 0},
  };
  RUN(cases);
}

static void test_cidr(void **state) {
  (void)state;
  const char *v4 = "{\"source_ip\": [{\"cidr\": \"10.0.0.0/24\"}]}";
  const char *v6 = "{\"ip\": [{\"cidr\": \"2001:db8::/32\"}]}";
  const char *odd = "{\"ip\": [{\"cidr\": \"192.168.1.32/27\"}]}";
  const mcase_t cases[] = {
      {v4, {{"source_ip", "String", "10.0.0.0"}}, NULL, 1},
      {v4, {{"source_ip", "String", "10.0.0.255"}}, NULL, 1},
      {v4, {{"source_ip", "String", "10.1.1.0"}}, NULL, 0},
      {v4, {{"source_ip", "String", "10.0.1.0"}}, NULL, 0},
      {v4, {{"source_ip", "String", "10.0.0.1/32"}}, NULL, 0},
      {v4, {{"source_ip", "String", "10.0.0"}}, NULL, 0},
      {v4, {{"source_ip", "String", "host.example"}}, NULL, 0},
      {v4, {{"source_ip", "String", "::ffff:10.0.0.1"}}, NULL, 0},
      {v4, {{"source_ip", "String", ""}}, NULL, 0},
      {v4, {{"source_ip", "String.Array", "[\"1.2.3.4\", \"10.0.0.9\"]"}}, NULL, 1},
      {v4, {{0}}, NULL, 0},
      {odd, {{"ip", "String", "192.168.1.32"}}, NULL, 1},
      {odd, {{"ip", "String", "192.168.1.63"}}, NULL, 1},
      {odd, {{"ip", "String", "192.168.1.64"}}, NULL, 0},
      {odd, {{"ip", "String", "192.168.1.31"}}, NULL, 0},
      {v6, {{"ip", "String", "2001:db8::1"}}, NULL, 1},
      {v6, {{"ip", "String", "2001:0db8:ffff:ffff:ffff:ffff:ffff:ffff"}}, NULL, 1},
      {v6, {{"ip", "String", "2001:db9::1"}}, NULL, 0},
      {v6, {{"ip", "String", "10.0.0.1"}}, NULL, 0},
      /* host bits in the block are ignored; /0 takes every address */
      {"{\"ip\": [{\"cidr\": \"10.0.0.77/24\"}]}", {{"ip", "String", "10.0.0.5"}}, NULL, 1},
      {"{\"ip\": [{\"cidr\": \"0.0.0.0/0\"}]}", {{"ip", "String", "255.1.2.3"}}, NULL, 1},
      {"{\"ip\": [{\"cidr\": \"1.2.3.4/32\"}]}", {{"ip", "String", "1.2.3.4"}}, NULL, 1},
      {"{\"ip\": [{\"cidr\": \"1.2.3.4/32\"}]}", {{"ip", "String", "1.2.3.5"}}, NULL, 0},
      {"{\"ip\": [{\"cidr\": \"fe80::/65\"}]}", {{"ip", "String", "fe80::7fff:0:0:1"}}, NULL, 1},
      {"{\"ip\": [{\"cidr\": \"fe80::/65\"}]}", {{"ip", "String", "fe80::8000:0:0:1"}}, NULL, 0},
      {"{\"ip\": [{\"cidr\": \"::/0\"}]}", {{"ip", "String", "::1"}}, NULL, 1},
  };
  RUN(cases);
}

static void test_and_or(void **state) {
  (void)state;
  const char *and = "{\"customer_interests\": [\"rugby\"], "
                    "\"price_usd\": [{\"numeric\": [\">\", 100]}]}";
  const char * or = "{\"customer_interests\": [\"rugby\", \"football\", \"baseball\"]}";
  const char *std = "{\"source\": [\"aws.cloudwatch\"], \"$or\": ["
                    "{\"metricName\": [\"CPUUtilization\"]}, {\"namespace\": [\"AWS/EC2\"]}]}";
  const char *nest = "{\"source\": [\"aws.cloudwatch\"], \"$or\": ["
                     "{\"metricName\": [\"CPUUtilization\", \"ReadLatency\"]},"
                     "{\"metricType\": [\"MetricType\"], \"$or\": ["
                     "{\"metricId\": [1234, 4321]}, {\"spaceId\": [1000]}]}]}";
  const mcase_t cases[] = {
      {and, {{"customer_interests", "String", "rugby"}, {"price_usd", "Number", "101"}}, NULL, 1},
      {and, {{"customer_interests", "String", "rugby"}, {"price_usd", "Number", "100"}}, NULL, 0},
      {and, {{"customer_interests", "String", "polo"}, {"price_usd", "Number", "101"}}, NULL, 0},
      {and, {{"customer_interests", "String", "rugby"}}, NULL, 0},
      { or, {{"customer_interests", "String", "football"}}, NULL, 1},
      { or, {{"customer_interests", "String", "baseball"}}, NULL, 1},
      { or, {{"customer_interests", "String", "polo"}}, NULL, 0},
      {std,
       {{"source", "String", "aws.cloudwatch"}, {"metricName", "String", "CPUUtilization"}},
       NULL,
       1},
      {std, {{"source", "String", "aws.cloudwatch"}, {"namespace", "String", "AWS/EC2"}}, NULL, 1},
      {std, {{"source", "String", "aws.cloudwatch"}}, NULL, 0},
      {std,
       {{"metricName", "String", "CPUUtilization"}, {"namespace", "String", "AWS/EC2"}},
       NULL,
       0},
      {std, {{"source", "String", "aws.ec2"}, {"namespace", "String", "AWS/EC2"}}, NULL, 0},
      {nest,
       {{"source", "String", "aws.cloudwatch"}, {"metricName", "String", "ReadLatency"}},
       NULL,
       1},
      {nest,
       {{"source", "String", "aws.cloudwatch"},
        {"metricType", "String", "MetricType"},
        {"metricId", "Number", "1234"}},
       NULL,
       1},
      {nest,
       {{"source", "String", "aws.cloudwatch"},
        {"metricType", "String", "MetricType"},
        {"spaceId", "Number", "1000"}},
       NULL,
       1},
      {nest,
       {{"source", "String", "aws.cloudwatch"}, {"metricType", "String", "MetricType"}},
       NULL,
       0},
      {nest,
       {{"source", "String", "aws.cloudwatch"},
        {"metricType", "String", "Other"},
        {"metricId", "Number", "4321"}},
       NULL,
       0},
      /* mixed kinds of values in one key are ORed */
      {"{\"k\": [\"x\", {\"prefix\": \"y\"}, {\"numeric\": [\">\", 5]}]}",
       {{"k", "String", "yes"}},
       NULL,
       1},
      {"{\"k\": [\"x\", {\"prefix\": \"y\"}, {\"numeric\": [\">\", 5]}]}",
       {{"k", "Number", "6"}},
       NULL,
       1},
      {"{\"k\": [\"x\", {\"prefix\": \"y\"}, {\"numeric\": [\">\", 5]}]}",
       {{"k", "String", "no"}},
       NULL,
       0},
      /* the empty policy takes everything */
      {"{}", {{0}}, NULL, 1},
      {" { } ", {{"a", "String", "b"}}, NULL, 1},
      /* "$or" whose objects use operator names is an ordinary key: no
       * attribute can have that name */
      {"{\"$or\": [{\"prefix\": \"abc\"}, {\"suffix\": \"xyz\"}]}",
       {{"a", "String", "abc"}},
       NULL,
       0},
  };
  RUN(cases);
}

/* ---- body scope -------------------------------------------------------------- */

/* The guide's body example and policy, a nested path, exists both ways. */
#define GUIDE_BODY                                                                                 \
  "{\"customer_interests\": [\"soccer\", \"rugby\", \"hockey\"],"                                  \
  " \"store\": \"example_corp\", \"event\": \"order_placed\", \"price_usd\": 210.75}"
#define GUIDE                                                                                      \
  "{\"store\": [\"example_corp\"], \"event\": [{\"anything-but\": \"order_cancelled\"}],"          \
  " \"customer_interests\": [\"rugby\", \"football\", \"baseball\"],"                              \
  " \"price_usd\": [{\"numeric\": [\">=\", 100]}]}"
#define ABC "{\"a\": {\"b\": {\"c\": [\"x\"]}}}"
#define EX  "{\"a\": [{\"exists\": true}]}"
#define NEX "{\"a\": [{\"exists\": false}]}"

static void test_body(void **state) {
  (void)state;
  const mcase_t cases[] = {
      {GUIDE, {{0}}, GUIDE_BODY, 1},
      {GUIDE,
       {{0}},
       "{\"store\": \"example_corp\", \"event\": \"order_cancelled\","
       " \"customer_interests\": \"rugby\", \"price_usd\": 500}",
       0},
      {GUIDE,
       {{0}},
       "{\"store\": \"example_corp\", \"event\": \"order_placed\","
       " \"customer_interests\": \"rugby\", \"price_usd\": 99.99}",
       0},
      {GUIDE,
       {{0}},
       "{\"store\": \"example_corp\", \"event\": \"order_placed\","
       " \"customer_interests\": [\"rugby\"], \"price_usd\": [99, 1e2]}",
       1},
      /* nested keys follow objects and step into arrays at any level */
      {ABC, {{0}}, "{\"a\": {\"b\": {\"c\": \"x\"}}}", 1},
      {ABC, {{0}}, "{\"a\": {\"b\": {\"c\": \"y\"}}}", 0},
      {ABC, {{0}}, "{\"a\": {\"b\": [{\"c\": \"y\"}, {\"c\": \"x\"}]}}", 1},
      {ABC, {{0}}, "{\"a\": [{\"b\": {\"c\": [\"z\", \"x\"]}}]}", 1},
      {ABC, {{0}}, "{\"a\": [[{\"b\": [[{\"c\": [[\"x\"]]}]]}]]}", 1},
      {ABC, {{0}}, "{\"a\": {\"b\": \"x\"}}", 0},
      /* SNS joins names with dots on both sides: {"a.b.c": ...} and {"a": {"b.c": ...}} are
       * the path a.b.c too, as a policy key "a.b" is the path a.b */
      {ABC, {{0}}, "{\"a.b.c\": \"x\"}", 1},
      {ABC, {{0}}, "{\"a\": {\"b.c\": \"x\"}}", 1},
      {ABC, {{0}}, "{\"a.b\": {\"c\": [\"x\"]}}", 1},
      {ABC, {{0}}, "{\"a.b\": {\"cc\": \"x\"}}", 0},
      {"{\"a.b\": [\"v\"]}", {{0}}, "{\"a\": {\"b\": \"v\"}}", 1},
      {"{\"a.b\": [\"v\"]}", {{0}}, "{\"a.b\": \"v\"}", 1},
      {"{\"a.b\": [\"v\"]}", {{0}}, "{\"a\": {\"bb\": \"v\"}}", 0},
      {"{\"a.b\": [\"v\"]}", {{0}}, "{\"a.bb\": \"v\"}", 0},
      {"{\"a.b\": [\"v\"]}", {{0}}, "{\"ab\": \"v\"}", 0},
      {"{\"a.b\": [\"v\"]}", {{0}}, "{\"a\": \"v\"}", 0},
      {"{\"a.b\": [{\"exists\": false}]}", {{0}}, "{\"a\": {\"c\": 1}}", 1},
      {"{\"a.b\": [{\"exists\": false}]}", {{0}}, "{\"a.b\": 1}", 0},
      {ABC, {{0}}, "{\"a\": {\"b\": {\"c\": {\"x\": 1}}}}", 0},
      {ABC, {{0}}, "{\"a\": {\"c\": \"x\"}, \"a\": {\"b\": {\"c\": \"x\"}}}", 1}, /* repeated key */
      {ABC, {{0}}, "{\"b\": {\"c\": \"x\"}}", 0},
      /* an escaped NUL is a character of the string, not its end: "ab\u0000cd"
       * is not "ab" (cJSON alone would cut it there) */
      {"{\"k\": [\"ab\"]}", {{0}}, "{\"k\": \"ab\\u0000cd\"}", 0},
      {"{\"k\": [{\"prefix\": \"ab\"}]}", {{0}}, "{\"k\": \"ab\\u0000cd\"}", 1},
      {"{\"k\": [{\"suffix\": \"cd\"}]}", {{0}}, "{\"k\": \"ab\\u0000cd\"}", 1},
      {"{\"k\": [{\"anything-but\": \"ab\"}]}", {{0}}, "{\"k\": \"ab\\u0000\"}", 1},
      {"{\"a\": [\"v\"]}", {{0}}, "{\"a\\u0000x\": \"v\"}", 0},
      /* an escaped backslash before "u0000" is text, not a NUL */
      {"{\"k\": [\"ab\\\\u0000\"]}", {{0}}, "{\"k\": \"ab\\\\u0000\"}", 1},
      /* what is not one JSON object matches nothing */
      {ABC, {{0}}, "hello", 0},
      {ABC, {{0}}, "", 0},
      {ABC, {{0}}, "[{\"a\": {\"b\": {\"c\": \"x\"}}}]", 0},
      {ABC, {{0}}, "\"x\"", 0},
      {ABC, {{0}}, "{\"a\": {\"b\": {\"c\": \"x\"}}} trailing", 0},
      {ABC, {{0}}, "{\"a\": {\"b\": {\"c\": \"x\"}}", 0},
      {ABC, {{0}}, "  {\"a\": {\"b\": {\"c\": \"x\"}}}\n", 1},
      /* exists looks for leaves: an object or an empty array has none */
      {EX, {{0}}, "{\"a\": 1}", 1},
      {EX, {{0}}, "{\"a\": null}", 0}, /* SNS: exists:true needs a non-null value */
      {EX, {{0}}, "{\"a\": [false]}", 1},
      {EX, {{0}}, "{\"a\": {\"b\": 1}}", 0},
      {EX, {{0}}, "{\"a\": []}", 0},
      {EX, {{0}}, "{\"x\": 1}", 0},
      {NEX, {{0}}, "{\"x\": 1}", 1},
      {NEX, {{0}}, "{\"a\": {\"b\": 1}}", 1},
      {NEX, {{0}}, "{\"a\": []}", 1},
      {NEX, {{0}}, "{\"a\": null}", 1},
      {NEX, {{0}}, "not json", 0},
  };
  RUN(cases);
}

static void test_body_values(void **state) {
  (void)state;
  const mcase_t cases[] = {
      {"{\"p\": [300]}", {{0}}, "{\"p\": 3.0e2}", 1},
      {"{\"p\": [300]}", {{0}}, "{\"p\": 300.000001}", 1},
      {"{\"p\": [300]}", {{0}}, "{\"p\": \"300\"}", 0},
      {"{\"p\": [\"300\"]}", {{0}}, "{\"p\": 300}", 0},
      {"{\"p\": [300]}", {{0}}, "{\"p\": [1, [2, [300]]]}", 1},
      {"{\"p\": [{\"numeric\": [\">\", 0, \"<\", 1]}]}", {{0}}, "{\"p\": 0.5}", 1},
      {"{\"p\": [{\"numeric\": [\">\", 0, \"<\", 1]}]}", {{0}}, "{\"p\": 5e9}", 0},
      {"{\"p\": [{\"numeric\": [\">\", 0, \"<\", 1]}]}", {{0}}, "{\"p\": true}", 0},
      {"{\"flag\": [true]}", {{0}}, "{\"flag\": true}", 1},
      {"{\"flag\": [true]}", {{0}}, "{\"flag\": \"true\"}", 0},
      {"{\"flag\": [false]}", {{0}}, "{\"flag\": false}", 1},
      {"{\"n\": [null]}", {{0}}, "{\"n\": null}", 1},
      {"{\"n\": [null]}", {{0}}, "{\"n\": \"null\"}", 0},
      {"{\"n\": [null]}", {{0}}, "{}", 0},
      {"{\"s\": [\"\\u00e9\"]}", {{0}}, "{\"s\": \"\xc3\xa9\"}", 1},
      {"{\"s\": [\"\xc3\xa9\"]}", {{0}}, "{\"s\": \"\\u00e9\"}", 1},
      {"{\"s\": [{\"prefix\": \"ab\"}]}", {{0}}, "{\"s\": [\"xab\", \"abc\"]}", 1},
      {"{\"s\": [{\"suffix\": \"ab\"}]}", {{0}}, "{\"s\": [\"abx\", 12]}", 0},
      {"{\"s\": [{\"equals-ignore-case\": \"AB\"}]}", {{0}}, "{\"s\": \"ab\"}", 1},
      {"{\"ip\": [{\"cidr\": \"10.0.0.0/8\"}]}", {{0}}, "{\"ip\": \"10.200.3.4\"}", 1},
      {"{\"ip\": [{\"cidr\": \"10.0.0.0/8\"}]}", {{0}}, "{\"ip\": 10}", 0},
      /* anything-but over arrays: some element must differ */
      {"{\"a\": [{\"anything-but\": [\"x\"]}]}", {{0}}, "{\"a\": [\"x\", \"y\"]}", 1},
      {"{\"a\": [{\"anything-but\": [\"x\"]}]}", {{0}}, "{\"a\": [\"x\", \"x\"]}", 0},
      {"{\"a\": [{\"anything-but\": [\"x\"]}]}", {{0}}, "{\"a\": []}", 0},
      {"{\"a\": [{\"anything-but\": [\"x\"]}]}", {{0}}, "{\"b\": \"y\"}", 0},
      {"{\"a\": [{\"anything-but\": [\"x\"]}]}", {{0}}, "{\"a\": null}", 1},
      {"{\"a\": [{\"anything-but\": [\"x\"]}]}", {{0}}, "{\"a\": {\"b\": \"y\"}}", 0},
      {"{\"a\": [{\"anything-but\": {\"prefix\": \"x\"}}]}", {{0}}, "{\"a\": 5}", 0},
      /* keys are matched on their own, even across array elements */
      {"{\"a\": {\"b\": [1], \"c\": [2]}}", {{0}}, "{\"a\": [{\"b\": 1}, {\"c\": 2}]}", 1},
      {"{\"a\": {\"b\": [1], \"c\": [2]}}", {{0}}, "{\"a\": [{\"b\": 1}, {\"c\": 3}]}", 0},
      /* nested exists: false */
      {"{\"a\": {\"b\": [{\"exists\": false}]}}", {{0}}, "{\"a\": {\"c\": 1}}", 1},
      {"{\"a\": {\"b\": [{\"exists\": false}]}}", {{0}}, "{\"a\": {\"b\": 2}}", 0},
      {"{\"a\": {\"b\": [{\"exists\": false}]}}", {{0}}, "{}", 1},
      {"{\"a\": {\"b\": [{\"exists\": false}]}}", {{0}}, "[]", 0},
      {"{\"a\": {\"b\": [{\"exists\": true}]}}", {{0}}, "{\"a\": [{\"x\": 1}, {\"b\": 0}]}", 1},
      /* $or at the top and inside a nested key */
      {"{\"a\": {\"$or\": [{\"b\": [\"1\"]}, {\"c\": [\"2\"]}]}}",
       {{0}},
       "{\"a\": {\"c\": \"2\"}}",
       1},
      {"{\"a\": {\"$or\": [{\"b\": [\"1\"]}, {\"c\": [\"2\"]}]}}",
       {{0}},
       "{\"a\": {\"b\": \"2\"}}",
       0},
      {"{\"a\": {\"$or\": [{\"b\": [\"1\"]}, {\"c\": [\"2\"]}]}}", {{0}}, "{\"b\": \"1\"}", 0},
      {"{\"$or\": [{\"a\": {\"b\": [1]}}, {\"c\": [2]}], \"d\": [3]}",
       {{0}},
       "{\"a\": {\"b\": 1}, \"d\": 3}",
       1},
      {"{\"$or\": [{\"a\": {\"b\": [1]}}, {\"c\": [2]}], \"d\": [3]}",
       {{0}},
       "{\"c\": 2, \"d\": 3}",
       1},
      {"{\"$or\": [{\"a\": {\"b\": [1]}}, {\"c\": [2]}], \"d\": [3]}",
       {{0}},
       "{\"a\": {\"b\": 1}, \"c\": 2}",
       0},
      /* "$or" with operator-named objects is a key called "$or" */
      {"{\"$or\": [{\"prefix\": \"abc\"}, {\"suffix\": \"xyz\"}]}",
       {{0}},
       "{\"$or\": \"abcd\"}",
       1},
      {"{\"$or\": [{\"prefix\": \"abc\"}, {\"suffix\": \"xyz\"}]}", {{0}}, "{\"$or\": \"d\"}", 0},
      /* "$or" with non-object values too */
      {"{\"$or\": [\"a\", \"b\"]}", {{0}}, "{\"$or\": \"b\"}", 1},
      /* the empty policy ignores the body entirely */
      {"{}", {{0}}, "not json", 1},
  };
  RUN(cases);
}

/* ---- compile errors and limits ------------------------------------------------- */

static void test_errors_json(void **state) {
  (void)state;
  BAD_A("", "not valid JSON");
  BAD_A("{", "not valid JSON");
  BAD_A("{\"a\": [\"x\"]} x", "not valid JSON");
  BAD_A("{\"a\": [\"x\"]}{}", "not valid JSON");
  BAD_A("{'a': ['x']}", "not valid JSON");
  BAD_A("{\"a\": [\"\xff\"]}", "not valid UTF-8");
  BAD_A("{\"a\": [\"\xc0\xaf\"]}", "not valid UTF-8");     /* overlong */
  BAD_A("{\"a\": [\"\xed\xa0\x80\"]}", "not valid UTF-8"); /* surrogate */
  BAD_A("{\"a\": [\"\xe2\x82\"]}", "not valid UTF-8");     /* truncated */
  BAD_A("[\"a\"]", "policy must be a JSON object");
  BAD_A("\"a\"", "policy must be a JSON object");
  BAD_A("null", "policy must be a JSON object");
  expect_error("{\"a\": [\"x\"]}\0", 13, FILTER_SCOPE_ATTRIBUTES, "policy holds a NUL character");
  expect_error("{\"a\": [\"x\"]}", 12, 7, "unknown filter scope 7");
  /* NULL with no length is an empty policy, not a crash */
  gbx_errbuf_t eb = {0};
  assert_null(filter_compile(NULL, 0, FILTER_SCOPE_ATTRIBUTES, &eb));
  assert_int_equal(eb.code, GBX_E_BAD_FILTER_POLICY);
  /* a NULL error buffer is allowed */
  assert_null(filter_compile("{", 1, FILTER_SCOPE_ATTRIBUTES, NULL));
}

static void test_errors_shape(void **state) {
  (void)state;
  BAD_A("{\"a\": \"x\"}", "key 'a': must be an array of values or an object");
  BAD_A("{\"a\": 5}", "key 'a': must be an array of values or an object");
  BAD_A("{\"a\": null}", "key 'a': must be an array of values or an object");
  BAD_A("{\"a\": []}", "key 'a': the value array is empty");
  BAD_A("{\"a\": {\"b\": [\"x\"]}}", "key 'a': nested keys need the message-body filter scope");
  BAD_A("{\"$or\": [{\"a\": {\"b\": [1]}}, {\"c\": [1]}]}",
        "key 'a': nested keys need the message-body filter scope");
  BAD_B("{\"a\": {}}", "key 'a': empty object");
  BAD_B("{\"a\": {\"b\": {\"c\": []}}}", "key 'a.b.c': the value array is empty");
  BAD_A("{\"$or\": [{}, {}]}", "an $or alternative is an empty object");
  BAD_A("{\"$or\": [{\"a\": [1]}, {}]}", "an $or alternative is an empty object");
  BAD_A("{\"a\": [1], \"a\": [2]}", "key 'a': appears twice in one object");
  BAD_B("{\"x\": {\"a\": [1], \"a\": [2]}}", "key 'x.a': appears twice in one object");
  BAD_A("{\"a\": [[\"x\"]]}", "key 'a': a match value must be");
  BAD_A("{\"a\": [{}]}", "key 'a': an operator object needs exactly one operator");
  BAD_A("{\"a\": [{\"prefix\": \"x\", \"suffix\": \"y\"}]}",
        "key 'a': an operator object needs exactly one operator");
  BAD_A("{\"a\": [{\"regex\": \"x\"}]}", "key 'a': unknown operator 'regex'");
  /* a one-object $or is an ordinary key whose value is an operator object */
  BAD_A("{\"$or\": [{\"a\": [1]}]}", "key '$or': unknown operator 'a'");
  /* nesting depth: 32 levels of objects compile, 33 do not */
  char deep[512] = "", tail[128] = "";
  for (int i = 0; i < 31; i++)
    strcat(deep, "{\"k\": "), strcat(tail, "}");
  char ok[700];
  snprintf(ok, sizeof ok, "%s{\"v\": [1]}%s", deep, tail);
  filter_free(compile_ok(ok, FILTER_SCOPE_BODY));
  snprintf(ok, sizeof ok, "%s{\"k\": {\"v\": [1]}}%s", deep, tail);
  BAD_B(ok, "more than 32 levels deep");
}

static void test_errors_operators(void **state) {
  (void)state;
  BAD_A("{\"a\": [{\"prefix\": 5}]}", "key 'a': prefix needs a string");
  BAD_A("{\"a\": [{\"suffix\": [\"x\"]}]}", "key 'a': suffix needs a string");
  BAD_A("{\"a\": [{\"equals-ignore-case\": null}]}", "key 'a': equals-ignore-case needs a string");
  BAD_A("{\"a\": [{\"anything-but\": []}]}", "key 'a': the anything-but list is empty");
  BAD_A("{\"a\": [{\"anything-but\": [[\"x\"]]}]}", "may hold only strings and numbers");
  BAD_A("{\"a\": [{\"anything-but\": [\"x\", true]}]}", "may hold only strings and numbers");
  BAD_A("{\"a\": [{\"anything-but\": true}]}", "anything-but needs a string, a number");
  BAD_A("{\"a\": [{\"anything-but\": {\"equals-ignore-case\": \"x\"}}]}",
        "anything-but takes an object with one key, prefix, suffix or wildcard");
  BAD_A("{\"a\": [{\"wildcard\": \"a**b\"}]}", "key 'a': wildcard 'a**b' has consecutive");
  BAD_A("{\"a\": [{\"wildcard\": \"a\\\\b\"}]}", "a backslash may only escape * or \\");
  BAD_A("{\"a\": [{\"wildcard\": 5}]}", "key 'a': wildcard needs a string");
  BAD_A("{\"a\": [{\"prefix\": \"a\\u0000\"}]}", "policy holds a NUL character");
  BAD_B("{\"a\\u0000b\": [\"x\"]}", "policy holds a NUL character");
  BAD_A("{\"a\": [{\"anything-but\": {\"wildcard\": \"**\"}}]}",
        "anything-but wildcard '**' has consecutive");
  BAD_A("{\"a\": [{\"anything-but\": {}}]}", "anything-but takes an object with one key");
  BAD_A("{\"a\": [{\"anything-but\": {\"prefix\": \"x\", \"suffix\": \"y\"}}]}",
        "anything-but takes an object with one key");
  BAD_A("{\"a\": [{\"anything-but\": {\"prefix\": 5}}]}", "anything-but prefix needs a string");
  BAD_A("{\"a\": [{\"anything-but\": {\"suffix\": null}}]}", "anything-but suffix needs a string");
  BAD_A("{\"a\": [{\"anything-but\": [5e9]}]}", "key 'a': number 5e+09 is outside -1e9..1e9");
  BAD_A("{\"price\": [{\"numeric\": [\">\", \"x\"]}]}",
        "key 'price': numeric operator '>' needs a number");
  BAD_A("{\"a\": [{\"numeric\": [\">\"]}]}", "key 'a': numeric takes [operator, number]");
  BAD_A("{\"a\": [{\"numeric\": 5}]}", "key 'a': numeric takes");
  BAD_A("{\"a\": [{\"numeric\": [\">\", 1, \"<\"]}]}", "key 'a': numeric takes");
  BAD_A("{\"a\": [{\"numeric\": [\">\", 1, \"<\", 2, \"<\", 3]}]}", "key 'a': numeric takes");
  BAD_A("{\"a\": [{\"numeric\": [\"!=\", 5]}]}", "numeric operator must be one of =, <, <=, >, >=");
  BAD_A("{\"a\": [{\"numeric\": [5, 5]}]}", "numeric operator must be one of");
  BAD_A("{\"a\": [{\"numeric\": [\"<\", 5, \">\", 0]}]}",
        "a numeric range starts with > or >=, not '<'");
  BAD_A("{\"a\": [{\"numeric\": [\"=\", 5, \"<\", 9]}]}", "a numeric range starts with > or >=");
  BAD_A("{\"a\": [{\"numeric\": [\">\", 5, \">\", 10]}]}", "a numeric range ends with < or <=");
  BAD_A("{\"a\": [{\"numeric\": [\">\", 5, 10, 10]}]}", "a numeric range ends with < or <=");
  BAD_A("{\"a\": [{\"numeric\": [\">\", 0, \"<\", \"x\"]}]}",
        "numeric operator '<' needs a number");
  BAD_A("{\"a\": [{\"numeric\": [\">\", 10, \"<\", 5]}]}", "numeric range is empty");
  BAD_A("{\"a\": [{\"numeric\": [\">=\", 5, \"<=\", 5]}]}", "numeric range is empty");
  /* equal after rounding to five decimals */
  BAD_A("{\"a\": [{\"numeric\": [\">\", 1, \"<\", 1.000001]}]}", "numeric range is empty");
  BAD_A("{\"a\": [{\"numeric\": [\">\", 5e9]}]}", "number 5e+09 is outside -1e9..1e9");
  BAD_A("{\"a\": [{\"numeric\": [\">\", 0, \"<\", 1000000000.5]}]}", "outside -1e9..1e9");
  BAD_A("{\"a\": [-1000000001]}", "key 'a': number -1e+09 is outside -1e9..1e9");
  BAD_A("{\"a\": [1e400]}", "is outside -1e9..1e9");
  BAD_A("{\"a\": [{\"exists\": \"yes\"}]}", "key 'a': exists needs true or false");
  BAD_A("{\"a\": [{\"exists\": 1}]}", "key 'a': exists needs true or false");
  BAD_A("{\"a\": [{\"cidr\": 5}]}", "key 'a': cidr needs a string");
  BAD_A("{\"a\": [{\"cidr\": \"10.0.0.0\"}]}", "cidr '10.0.0.0' is not an IPv4 or IPv6 block");
  BAD_A("{\"a\": [{\"cidr\": \"10.0.0.0/33\"}]}", "is not an IPv4 or IPv6 block");
  BAD_A("{\"a\": [{\"cidr\": \"10.0.0/24\"}]}", "is not an IPv4 or IPv6 block");
  BAD_A("{\"a\": [{\"cidr\": \"10.0.0.0/2x\"}]}", "is not an IPv4 or IPv6 block");
  BAD_A("{\"a\": [{\"cidr\": \"10.0.0.0/\"}]}", "is not an IPv4 or IPv6 block");
  BAD_A("{\"a\": [{\"cidr\": \"/8\"}]}", "is not an IPv4 or IPv6 block");
  BAD_A("{\"a\": [{\"cidr\": \"10.0.0.0/8/8\"}]}", "is not an IPv4 or IPv6 block");
  BAD_A("{\"a\": [{\"cidr\": \"::1/129\"}]}", "is not an IPv4 or IPv6 block");
  BAD_A("{\"a\": [{\"cidr\": \"::1/-1\"}]}", "is not an IPv4 or IPv6 block");
  BAD_A("{\"a\": [{\"cidr\": \"1.2.3.4/0008\"}]}", "is not an IPv4 or IPv6 block");
  /* the path names the nested key */
  BAD_B("{\"a\": {\"b\": [{\"prefix\": 1}]}}", "key 'a.b': prefix needs a string");
  /* the message carries the code and the whole wording */
  gbx_errbuf_t eb = {0};
  const char *p = "{\"price\": [{\"numeric\": [\">\", \"x\"]}]}";
  assert_null(filter_compile(p, strlen(p), FILTER_SCOPE_ATTRIBUTES, &eb));
  assert_int_equal(eb.code, GBX_E_BAD_FILTER_POLICY);
  assert_string_equal(eb.msg, "key 'price': numeric operator '>' needs a number");
}

static void test_limit_keys(void **state) {
  (void)state;
  const char *five = "{\"a\": [1], \"b\": [1], \"c\": [1], \"d\": [1], \"e\": [1]}";
  filter_free(compile_ok(five, FILTER_SCOPE_ATTRIBUTES));
  const char *six = "{\"a\": [1], \"b\": [1], \"c\": [1], \"d\": [1], \"e\": [1], \"f\": [1]}";
  gbx_errbuf_t eb = {0};
  assert_null(filter_compile(six, strlen(six), FILTER_SCOPE_ATTRIBUTES, &eb));
  assert_string_equal(eb.msg, "policy has 6 keys, more than 5");
  BAD_B(six, "policy has 6 keys, more than 5");
  /* $or adds the keys of its largest alternative */
  filter_free(compile_ok("{\"a\": [1], \"b\": [1], \"c\": [1], \"d\": [1],"
                         " \"$or\": [{\"e\": [1]}, {\"f\": [1]}]}",
                         FILTER_SCOPE_ATTRIBUTES));
  BAD_A("{\"a\": [1], \"b\": [1], \"c\": [1], \"d\": [1],"
        " \"$or\": [{\"e\": [1], \"g\": [1]}, {\"f\": [1]}]}",
        "policy has 6 keys, more than 5");
  BAD_A(
      "{\"a\": [1], \"b\": [1], \"c\": [1],"
      " \"$or\": [{\"e\": [1]}, {\"$or\": [{\"f\": [1], \"g\": [1]}, {\"h\": [1]}], \"i\": [1]}]}",
      "policy has 6 keys, more than 5");
  /* body scope counts top-level keys only: nested ones are free */
  const char *nested = "{\"a\": {\"b\": [1], \"c\": [1], \"d\": [1], \"e\": [1], \"f\": [1],"
                       " \"g\": [1]}}";
  filter_free(compile_ok(nested, FILTER_SCOPE_BODY));
  filter_free(compile_ok("{\"a\": [1], \"b\": [1], \"c\": [1], \"d\": [1], \"e\": {\"f\": [1],"
                         " \"g\": [1]}}",
                         FILTER_SCOPE_BODY));
  BAD_B("{\"a\": [1], \"b\": [1], \"c\": [1], \"d\": [1], \"e\": {\"f\": [1]}, \"g\": [1]}",
        "policy has 6 keys, more than 5");
}

static void test_limit_combinations(void **state) {
  (void)state;
  static char p[8192];
  gbx_errbuf_t eb = {0};
  /* one key with 150 values compiles; 151 do not */
  strcpy(p, "{\"a\": [");
  append_values(p, sizeof p, 150, 0);
  strcat(p, "]}");
  filter_free(compile_ok(p, FILTER_SCOPE_ATTRIBUTES));
  strcpy(p, "{\"a\": [");
  append_values(p, sizeof p, 151, 1);
  strcat(p, "]}");
  assert_null(filter_compile(p, strlen(p), FILTER_SCOPE_ATTRIBUTES, &eb));
  assert_int_equal(eb.code, GBX_E_BAD_FILTER_POLICY);
  assert_string_equal(eb.msg, "policy has 151 combinations, more than 150");
  /* the guide's example, 3 x 1 x 2 = 6; then 10 x 16 = 160 */
  filter_free(compile_ok("{\"key_a\": [\"value_one\", \"value_two\", \"value_three\"],"
                         " \"key_b\": [\"value_one\"], \"key_c\": [\"value_one\", \"value_two\"]}",
                         FILTER_SCOPE_ATTRIBUTES));
  strcpy(p, "{\"a\": [");
  append_values(p, sizeof p, 10, 0);
  strcat(p, "], \"b\": [");
  append_values(p, sizeof p, 16, 0);
  strcat(p, "]}");
  BAD_A(p, "policy has 160 combinations, more than 150");
  /* an operator counts as one value, whatever its list holds */
  filter_free(compile_ok("{\"a\": [{\"anything-but\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,"
                         " 13, 14, 15, 16, 17, 18, 19, 20]}]}",
                         FILTER_SCOPE_ATTRIBUTES));
  /* body scope weighs each array by its key's depth: the guide's nested
   * example is 3 x 4 x 2 x 3 = 72; seven values under key_e make 168 */
  const char *nest = "{\"key_a\": {\"key_b\": {\"key_c\": [\"v1\", \"v2\", \"v3\", \"v4\"]}},"
                     " \"key_d\": {\"key_e\": [\"v1\", \"v2\", \"v3\"]}}";
  filter_free(compile_ok(nest, FILTER_SCOPE_BODY));
  BAD_B("{\"key_a\": {\"key_b\": {\"key_c\": [\"v1\", \"v2\", \"v3\", \"v4\"]}},"
        " \"key_d\": {\"key_e\": [1, 2, 3, 4, 5, 6, 7]}}",
        "policy has 168 combinations, more than 150");
  /* 76 values at depth 2 weigh 152, 75 weigh 150 */
  strcpy(p, "{\"a\": {\"b\": [");
  append_values(p, sizeof p, 76, 1);
  strcat(p, "]}}");
  BAD_B(p, "policy has 152 combinations, more than 150");
  strcpy(p, "{\"a\": {\"b\": [");
  append_values(p, sizeof p, 75, 1);
  strcat(p, "]}}");
  filter_free(compile_ok(p, FILTER_SCOPE_BODY));
  /* $or adds its alternatives: 75 + 75 = 150 compiles, 75 + 76 does not */
  strcpy(p, "{\"$or\": [{\"a\": [");
  append_values(p, sizeof p, 75, 1);
  strcat(p, "]}, {\"b\": [");
  append_values(p, sizeof p, 75, 1);
  strcat(p, "]}]}");
  filter_free(compile_ok(p, FILTER_SCOPE_ATTRIBUTES));
  strcpy(p, "{\"$or\": [{\"a\": [");
  append_values(p, sizeof p, 75, 1);
  strcat(p, "]}, {\"b\": [");
  append_values(p, sizeof p, 76, 1);
  strcat(p, "]}]}");
  BAD_A(p, "policy has 151 combinations, more than 150");
  /* and multiplies with the keys beside it: (2 + 1) x 60 = 180 */
  strcpy(p, "{\"$or\": [{\"a\": [1, 2]}, {\"b\": [1]}], \"c\": [");
  append_values(p, sizeof p, 60, 1);
  strcat(p, "]}");
  BAD_A(p, "policy has 180 combinations, more than 150");
  /* a product far past any count saturates instead of overflowing */
  static char big[200000];
  strcpy(big, "{");
  for (int k = 0; k < 5; k++) {
    size_t l = strlen(big);
    snprintf(big + l, sizeof big - l, "%s\"k%d\": [", k ? ", " : "", k);
    append_values(big, sizeof big, 5000, 1);
    strcat(big, "]");
  }
  strcat(big, "}");
  BAD_A(big, "combinations, more than 150");
}

static void test_limit_size(void **state) {
  (void)state;
  /* {"a":["xxx..."]} of exactly 256 KiB compiles; one byte more does not */
  size_t len = FILTER_MAX_POLICY_BYTES;
  char *p = malloc(len + 2);
  assert_non_null(p);
  memcpy(p, "{\"a\":[\"", 7);
  memset(p + 7, 'x', len - 10);
  memcpy(p + len - 3, "\"]}", 3);
  p[len] = '\0';
  gbx_errbuf_t eb = {0};
  filter_t *f = filter_compile(p, len, FILTER_SCOPE_ATTRIBUTES, &eb);
  if (!f)
    fail_msg("256 KiB policy refused: %s", eb.msg);
  gbx_attr_t a = {"a", 1, "String", 6, p + 7, (uint32_t)(len - 10)};
  filter_msg_t m;
  filter_msg_init(&m, &a, 1, NULL, 0);
  assert_int_equal(filter_match(f, &m), 1);
  a.value_len--;
  assert_int_equal(filter_match(f, &m), 0);
  filter_msg_free(&m);
  filter_free(f);
  memcpy(p, "{\"a\":[\" ", 8); /* a space keeps the JSON valid, one byte longer */
  memset(p + 8, 'x', len - 10);
  memcpy(p + len - 2, "\"]}", 3);
  p[len + 1] = '\0';
  assert_null(filter_compile(p, len + 1, FILTER_SCOPE_ATTRIBUTES, &eb));
  assert_string_equal(eb.msg, "policy is 262145 bytes, more than 262144");
  free(p);
}

/* ---- caches and the API's edges ------------------------------------------------- */

static int cjson_allocs;

static void *counting_malloc(size_t n) {
  cjson_allocs++;
  return malloc(n);
}

/* The body is parsed once per message however many body-scoped filters run,
 * String.Array values once per message, and attribute-scope matching of
 * plain attributes parses nothing. */
static void test_parse_once(void **state) {
  (void)state;
  cJSON_Hooks hooks = {counting_malloc, free};
  cJSON_InitHooks(&hooks);
  filter_t *b1 = compile_ok("{\"a\": [1]}", FILTER_SCOPE_BODY);
  filter_t *b2 = compile_ok("{\"b\": {\"c\": [\"x\"]}}", FILTER_SCOPE_BODY);
  filter_t *s1 =
      compile_ok("{\"s\": [\"x\"], \"n\": [{\"numeric\": [\">\", 1]}]}", FILTER_SCOPE_ATTRIBUTES);
  filter_t *t1 = compile_ok("{\"t\": [\"y\"]}", FILTER_SCOPE_ATTRIBUTES);
  filter_t *t2 = compile_ok("{\"t\": [{\"prefix\": \"z\"}]}", FILTER_SCOPE_ATTRIBUTES);
  gbx_attr_t a[3] = {{"s", 1, "String", 6, "x", 1},
                     {"n", 1, "Number", 6, "2", 1},
                     {"t", 1, "String.Array", 12, "[\"q\", \"y\"]", 10}};
  const char *body = "{\"a\": 1, \"b\": {\"c\": [\"x\"]}}";
  filter_msg_t m;
  filter_msg_init(&m, a, 3, body, strlen(body));

  cjson_allocs = 0;
  for (int i = 0; i < 100; i++)
    assert_int_equal(filter_match(s1, &m), 1);
  assert_int_equal(cjson_allocs, 0);

  assert_int_equal(filter_match(t1, &m), 1);
  int after_array = cjson_allocs;
  assert_true(after_array > 0);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(filter_match(t1, &m), 1);
    assert_int_equal(filter_match(t2, &m), 0);
  }
  assert_int_equal(cjson_allocs, after_array);

  assert_int_equal(filter_match(b1, &m), 1);
  int after_body = cjson_allocs;
  assert_true(after_body > after_array);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(filter_match(b1, &m), 1);
    assert_int_equal(filter_match(b2, &m), 1);
  }
  assert_int_equal(cjson_allocs, after_body);
  filter_msg_free(&m);

  /* a body that is not JSON is tried once too */
  filter_msg_init(&m, NULL, 0, "nope", 4);
  cjson_allocs = 0;
  for (int i = 0; i < 10; i++)
    assert_int_equal(filter_match(b1, &m), 0);
  assert_true(cjson_allocs <= 1);
  filter_msg_free(&m);
  /* a freed message can be set up again and reused */
  filter_msg_init(&m, a, 3, body, strlen(body));
  assert_int_equal(filter_match(b2, &m), 1);
  assert_int_equal(filter_match(t1, &m), 1);
  filter_msg_free(&m);
  filter_msg_free(&m); /* twice is harmless */

  cJSON_InitHooks(NULL);
  filter_free(b1);
  filter_free(b2);
  filter_free(s1);
  filter_free(t1);
  filter_free(t2);
}

static void test_api_edges(void **state) {
  (void)state;
  filter_msg_t m;
  filter_msg_init(&m, NULL, 5, NULL, 9); /* counts without pointers are ignored */
  assert_int_equal(m.nattrs, 0);
  assert_int_equal(m.body_len, 0);
  assert_int_equal(filter_match(NULL, &m), 1); /* no policy: everything */
  filter_t *f = compile_ok("{\"a\": [{\"exists\": false}]}", FILTER_SCOPE_ATTRIBUTES);
  assert_int_equal(filter_match(f, &m), 0); /* no attributes: no attribute policy matches */
  filter_free(f);
  f = compile_ok("{\"a\": [{\"exists\": false}]}", FILTER_SCOPE_BODY);
  assert_int_equal(filter_match(f, &m), 0); /* no body: not a JSON object */
  filter_free(f);
  filter_msg_free(&m);
  filter_free(NULL);
  /* the policy buffer need not be NUL-terminated, and is not read past len */
  const char buf[] = {'{', '"', 'a', '"', ':', '[', '1', ']', '}', 'X'};
  gbx_errbuf_t eb = {0};
  f = filter_compile(buf, 9, FILTER_SCOPE_ATTRIBUTES, &eb);
  assert_non_null(f);
  filter_free(f);
  /* nor is the body */
  f = compile_ok("{\"a\": [1]}", FILTER_SCOPE_BODY);
  const char body[] = {'{', '"', 'a', '"', ':', '1', '}', '2'};
  filter_msg_init(&m, NULL, 0, body, 7);
  assert_int_equal(filter_match(f, &m), 1);
  filter_msg_free(&m);
  filter_msg_init(&m, NULL, 0, body, 8);
  assert_int_equal(filter_match(f, &m), 0);
  filter_msg_free(&m);
  filter_free(f);
  /* one compiled filter serves many messages */
  f = compile_ok("{\"k\": [\"v\"]}", FILTER_SCOPE_ATTRIBUTES);
  for (int i = 0; i < 3; i++) {
    gbx_attr_t a = {"k", 1, "String", 6, i == 1 ? "v" : "w", 1};
    filter_msg_init(&m, &a, 1, NULL, 0);
    assert_int_equal(filter_match(f, &m), i == 1);
    filter_msg_free(&m);
  }
  filter_free(f);
}

/* A buffer whose last byte is followed by an inaccessible page, so reading
 * one byte past a policy, a body or an attribute value faults even inside
 * cJSON, which no sanitizer instruments. */
typedef struct guard {
  char *map;
  size_t size;
} guard_t;

static void guard_init(guard_t *g) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  g->size = 4 * pg;
  g->map = mmap(NULL, g->size + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(g->map != MAP_FAILED);
  assert_int_equal(mprotect(g->map + g->size, pg, PROT_NONE), 0);
}

static const char *guard_place(guard_t *g, const char *s, size_t n) {
  assert_true(n <= g->size);
  char *p = g->map + g->size - n;
  memcpy(p, s, n);
  return p;
}

static void guard_free(guard_t *g) {
  munmap(g->map, g->size + (size_t)sysconf(_SC_PAGESIZE));
}

/* Every prefix of policies, bodies and String.Array values, placed against
 * the guard page, is refused or matched without reading past its end. */
static void test_no_overread(void **state) {
  (void)state;
  static const char *const texts[] = {
      "{\"a\": [\"x\\\"y\", {\"prefix\": \"\\u00e9\"}], \"b\": {\"c\": [1.5e3, true, null]}}",
      "{\"$or\": [{\"a\": [{\"numeric\": [\">\", -1, \"<=\", 2e2]}]}, {\"b\": [false]}]}",
      "{\"ip\": [{\"cidr\": \"2001:db8::/32\"}, {\"anything-but\": {\"suffix\": \"\\\\\"}}]}",
      "[\"x\", 1, [true, {\"a\": \"\\ud83d\\ude00\"}], -0.5e-3, null]",
  };
  guard_t g;
  guard_init(&g);
  filter_t *fb = compile_ok("{\"a\": [\"x\\\"y\"], \"b\": {\"c\": [1500]}}", FILTER_SCOPE_BODY);
  filter_t *fa = compile_ok("{\"a\": [\"x\", 1, {\"prefix\": \"\"}]}", FILTER_SCOPE_ATTRIBUTES);
  for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
    size_t len = strlen(texts[t]);
    for (size_t n = 0; n <= len; n++) {
      gbx_errbuf_t eb;
      for (int scope = 0; scope < 2; scope++)
        filter_free(filter_compile(guard_place(&g, texts[t], n), n, scope, &eb));
      filter_msg_t m;
      filter_msg_init(&m, NULL, 0, guard_place(&g, texts[t], n), n);
      assert_int_equal(filter_match(fb, &m), n == len && t == 0); /* only text 0 matches */
      filter_msg_free(&m);
      const char *types[] = {"String.Array", "Number", "String"};
      for (int ty = 0; ty < 3; ty++) {
        gbx_attr_t a = {
            "a",        1, types[ty], (uint32_t)strlen(types[ty]), guard_place(&g, texts[t], n),
            (uint32_t)n};
        filter_msg_init(&m, &a, 1, NULL, 0);
        int got = filter_match(fa, &m);
        filter_msg_free(&m);
        if (ty == 0)
          assert_int_equal(got, n == len && t == 3); /* "x" is an element */
      }
    }
  }
  filter_free(fb);
  filter_free(fa);
  guard_free(&g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_string), cmocka_unit_test(test_exact_number),
      cmocka_unit_test(test_anything_but), cmocka_unit_test(test_prefix_suffix_icase),
      cmocka_unit_test(test_wildcard),     cmocka_unit_test(test_numeric),
      cmocka_unit_test(test_exists),       cmocka_unit_test(test_cidr),
      cmocka_unit_test(test_and_or),       cmocka_unit_test(test_body),
      cmocka_unit_test(test_body_values),  cmocka_unit_test(test_errors_json),
      cmocka_unit_test(test_errors_shape), cmocka_unit_test(test_errors_operators),
      cmocka_unit_test(test_limit_keys),   cmocka_unit_test(test_limit_combinations),
      cmocka_unit_test(test_limit_size),   cmocka_unit_test(test_parse_once),
      cmocka_unit_test(test_api_edges),    cmocka_unit_test(test_no_overread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
