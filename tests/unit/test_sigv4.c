/* test_sigv4.c - SigV4 verification (server/sigv4.h) against AWS's published
 * test-suite vectors (key AKIDEXAMPLE, 2015-08-30T12:36:00Z, us-east-1,
 * service "service"), the presigned-URL example of AWS's S3 documentation,
 * requests signed by botocore (an independent signer) for SQS, and the
 * refusals: wrong secret, unknown key, clock skew, expired URL, host not
 * signed, tampered body or query, malformed headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sigv4.h"

#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME   1440938160 /* 20150830T123600Z */
#define SUITE_CRED                                                                                 \
  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
#define HOST "Host: example.amazonaws.com"
#define DATE "X-Amz-Date: 20150830T123600Z"

typedef struct keys {
  const char *akid, *secret;
  int calls;
} keys_t;

static const char *lookup(void *ctx, const char *akid, size_t len, size_t *sl) {
  keys_t *k = ctx;
  k->calls++;
  if (strlen(k->akid) != len || memcmp(k->akid, akid, len) != 0)
    return NULL;
  *sl = strlen(k->secret);
  return k->secret;
}

/* A request from a target "path?query", header lines "Name: value" (NULL
 * ended) and a body. */
typedef struct treq {
  sigv4_req_t rq;
  sigv4_hdr_t h[16];
} treq_t;

static void mk(treq_t *t, const char *method, const char *target, const char *const *lines,
               const char *body) {
  memset(t, 0, sizeof(*t));
  const char *q = strchr(target, '?');
  t->rq.method = method;
  t->rq.path = target;
  t->rq.path_len = q ? (size_t)(q - target) : strlen(target);
  t->rq.query = q ? q + 1 : "";
  t->rq.query_len = q ? strlen(q + 1) : 0;
  for (size_t i = 0; lines && lines[i]; i++) {
    const char *c = strchr(lines[i], ':');
    assert_non_null(c);
    const char *v = c + 1;
    while (*v == ' ')
      v++;
    t->h[i] = (sigv4_hdr_t){lines[i], (size_t)(c - lines[i]), v, strlen(v)};
    t->rq.nhdrs = i + 1;
  }
  t->rq.hdrs = t->h;
  t->rq.body = (const uint8_t *)body;
  t->rq.body_len = body ? strlen(body) : 0;
}

static sigv4_status_t verify_at(treq_t *t, int64_t now, const char *akid, const char *secret,
                                sigv4_result_t *res) {
  keys_t k = {akid, secret, 0};
  return sigv4_verify(&t->rq, now, lookup, &k, res);
}

static sigv4_status_t verify(treq_t *t, sigv4_result_t *res) {
  return verify_at(t, SUITE_TIME, "AKIDEXAMPLE", SUITE_SECRET, res);
}

/* Checks one published vector: accepted with the right secret, refused
 * with SignatureDoesNotMatch with another one. */
static void vector(const char *method, const char *target, const char *const *lines,
                   const char *body) {
  treq_t t;
  sigv4_result_t res;
  mk(&t, method, target, lines, body);
  sigv4_status_t st = verify(&t, &res);
  if (st != SIGV4_OK)
    fail_msg("%s %s: %s %s", method, target, sigv4_code(st), res.msg);
  assert_string_equal(res.akid, "AKIDEXAMPLE");
  assert_string_equal(res.region, "us-east-1");
  assert_string_equal(res.service, "service");
  assert_int_equal(res.presigned, 0);
  assert_int_equal(verify_at(&t, SUITE_TIME, "AKIDEXAMPLE", SUITE_SECRET "x", &res),
                   SIGV4_MISMATCH);
}

#define SIG2(s) SUITE_CRED "SignedHeaders=host;x-amz-date, Signature=" s

static void test_get_vanilla(void **state) {
  (void)state;
  const char *h[] = {
      HOST, DATE,
      "Authorization: " SIG2("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
      NULL};
  vector("GET", "/", h, NULL);
}

static void test_post_vanilla(void **state) {
  (void)state;
  const char *h[] = {
      HOST, DATE,
      "Authorization: " SIG2("5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
      NULL};
  vector("POST", "/", h, NULL);
}

static void test_get_vanilla_empty_query_key(void **state) {
  (void)state;
  const char *h[] = {
      HOST, DATE,
      "Authorization: " SIG2("a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
      NULL};
  vector("GET", "/?Param1=value1", h, NULL);
}

static void test_get_vanilla_query_order_key_case(void **state) {
  (void)state;
  const char *h[] = {
      HOST, DATE,
      "Authorization: " SIG2("b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
      NULL};
  vector("GET", "/?Param2=value2&Param1=value1", h, NULL);
}

static void test_get_vanilla_query_order_value(void **state) {
  (void)state;
  const char *h[] = {
      HOST, DATE,
      "Authorization: " SIG2("5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
      NULL};
  vector("GET", "/?Param1=value2&Param1=value1", h, NULL);
}

static void test_get_vanilla_utf8_query(void **state) {
  (void)state;
  const char *h[] = {
      HOST, DATE,
      "Authorization: " SIG2("2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
      NULL};
  vector("GET", "/?\xe1\x88\xb4=bar", h, NULL);
}

static void test_get_unreserved(void **state) {
  (void)state;
  const char *h[] = {
      HOST, DATE,
      "Authorization: " SIG2("07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
      NULL};
  vector("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", h, NULL);
}

static void test_get_slashes(void **state) {
  (void)state;
  const char *h[] = {
      HOST, DATE,
      "Authorization: " SIG2("9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"),
      NULL};
  vector("GET", "//example//", h, NULL);
}

#define SIG3(s) SUITE_CRED "SignedHeaders=host;my-header1;x-amz-date, Signature=" s

static void test_get_header_value_order(void **state) {
  (void)state;
  const char *h[] = {
      HOST,
      "My-Header1: value4",
      "My-Header1: value1",
      "My-Header1: value3",
      "My-Header1: value2",
      DATE,
      "Authorization: " SIG3("08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
      NULL};
  vector("GET", "/", h, NULL);
}

static void test_get_header_key_duplicate(void **state) {
  (void)state;
  const char *h[] = {
      HOST,
      "My-Header1: value2",
      "My-Header1: value2",
      "My-Header1: value1",
      DATE,
      "Authorization: " SIG3("c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
      NULL};
  vector("GET", "/", h, NULL);
}

static void test_get_header_value_trim(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  const char *h[] = {HOST,
                     "My-Header1: x",
                     "My-Header2: x",
                     DATE,
                     "Authorization: " SUITE_CRED
                     "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
                     "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
                     NULL};
  mk(&t, "GET", "/", h, NULL);
  /* the values with their spaces as sent: mk trims what follows ':' */
  t.h[1].value = " value1 ";
  t.h[1].value_len = 8;
  t.h[2].value = "\"a   b   c\"";
  t.h[2].value_len = 11;
  assert_int_equal(verify(&t, &res), SIGV4_OK);
  t.h[2].value = "\"a b c\"";
  t.h[2].value_len = 7; /* collapsed by the client: the same canonical value */
  assert_int_equal(verify(&t, &res), SIGV4_OK);
  t.h[2].value = "\"a bc\"";
  t.h[2].value_len = 6;
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH);
}

static const char *const form_hdrs[] = {
    "Content-Type: application/x-www-form-urlencoded", HOST, DATE,
    "Authorization: " SUITE_CRED "SignedHeaders=content-type;host;x-amz-date, "
    "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    NULL};

static void test_post_x_www_form_urlencoded(void **state) {
  (void)state;
  vector("POST", "/", form_hdrs, "Param1=value1");
}

static void test_tampered_body(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  mk(&t, "POST", "/", form_hdrs, "Param1=value2");
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH);
  assert_string_equal(sigv4_code(res.status), "SignatureDoesNotMatch");
  assert_int_equal(sigv4_http_status(res.status), 403);
  mk(&t, "POST", "/?Param1=value1", form_hdrs, "");
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH); /* moved to the query */
  mk(&t, "PUT", "/", form_hdrs, "Param1=value1");
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH); /* another method */
}

/* botocore's SigV4Auth on an SQS-style request (path with an escape: the
 * canonical URI encodes it again), run with the clock frozen. */
static const char *const boto_hdrs[] = {
    "Content-Type: application/x-www-form-urlencoded; charset=utf-8", "Host: localhost:9324", DATE,
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sqs/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, "
    "Signature=8ef9fab128c692db78be0d08fa4cfe58e7c45d50717e3e04e62f6877621c1f5f",
    NULL};
#define BOTO_BODY "Action=SendMessage&MessageBody=hello%20world&Version=2012-11-05"

static void test_botocore_sqs_post(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  mk(&t, "POST", "/123456789012/my%20queue", boto_hdrs, BOTO_BODY);
  assert_int_equal(verify(&t, &res), SIGV4_OK);
  assert_string_equal(res.service, "sqs");
  assert_int_equal(res.unsigned_payload, 0);
  mk(&t, "POST", "/123456789012/my%20queue", boto_hdrs, BOTO_BODY "&DelaySeconds=5");
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH);
  mk(&t, "POST", "/123456789012/other", boto_hdrs, BOTO_BODY);
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH);
}

static void test_content_sha256_header(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  /* a payload hash header that does not match the body is refused even
   * though the signature (over the header) would be right */
  const char *h[] = {
      HOST, DATE,
      "x-amz-content-sha256: "
      "0000000000000000000000000000000000000000000000000000000000000000",
      "Authorization: " SIG2("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
      NULL};
  mk(&t, "GET", "/", h, "");
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH);
  assert_non_null(strstr(res.msg, "x-amz-content-sha256"));
  /* the right hash of the empty body: get-vanilla's signature holds */
  t.h[2].value = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  t.h[2].value_len = 64;
  assert_int_equal(verify(&t, &res), SIGV4_OK);
  t.h[2].value = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  t.h[2].value_len = strlen(t.h[2].value);
  assert_int_equal(verify(&t, &res), SIGV4_INCOMPLETE);
}

static void test_wrong_secret_and_unknown_key(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  const char *h[] = {
      HOST, DATE,
      "Authorization: " SIG2("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
      NULL};
  mk(&t, "GET", "/", h, NULL);
  assert_int_equal(
      verify_at(&t, SUITE_TIME, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", &res),
      SIGV4_MISMATCH);
  assert_non_null(strstr(res.msg, "does not match the signature you provided"));
  assert_int_equal(verify_at(&t, SUITE_TIME, "AKIDOTHER", SUITE_SECRET, &res), SIGV4_UNKNOWN_KEY);
  assert_string_equal(sigv4_code(res.status), "InvalidClientTokenId");
  assert_int_equal(sigv4_http_status(res.status), 403);
  assert_string_equal(res.akid, "AKIDEXAMPLE");
  /* one flipped digit of the signature */
  const char *h2[] = {
      HOST, DATE,
      "Authorization: " SIG2("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf30"),
      NULL};
  mk(&t, "GET", "/", h2, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH);
}

static void test_skew(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  const char *h[] = {
      HOST, DATE,
      "Authorization: " SIG2("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
      NULL};
  mk(&t, "GET", "/", h, NULL);
  assert_int_equal(verify_at(&t, SUITE_TIME + 900, "AKIDEXAMPLE", SUITE_SECRET, &res), SIGV4_OK);
  assert_int_equal(verify_at(&t, SUITE_TIME - 900, "AKIDEXAMPLE", SUITE_SECRET, &res), SIGV4_OK);
  assert_int_equal(verify_at(&t, SUITE_TIME + 901, "AKIDEXAMPLE", SUITE_SECRET, &res),
                   SIGV4_SKEWED);
  assert_string_equal(sigv4_code(res.status), "SignatureDoesNotMatch");
  assert_int_equal(sigv4_http_status(res.status), 403);
  assert_string_equal(res.msg, "Signature expired: 20150830T123600Z is now earlier than "
                               "20150830T123601Z (20150830T125101Z - 15 min.)");
  assert_int_equal(verify_at(&t, SUITE_TIME - 901, "AKIDEXAMPLE", SUITE_SECRET, &res),
                   SIGV4_SKEWED);
  assert_non_null(strstr(res.msg, "Signature not yet current: 20150830T123600Z"));
}

static void test_date_header(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  /* signed with the Date header instead of X-Amz-Date: a malformed one is
   * refused before any signature is computed */
  const char *h[] = {HOST, "Date: Sun, 30 Aug 2015 12:36:00 XYZ",
                     "Authorization: " SUITE_CRED "SignedHeaders=date;host, Signature="
                     "0000000000000000000000000000000000000000000000000000000000000000",
                     NULL};
  mk(&t, "GET", "/", h, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_INCOMPLETE);
  t.h[1].value = "Sun, 30 Aug 2015 12:36:00 GMT";
  t.h[1].value_len = strlen(t.h[1].value);
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH); /* parsed, dated, compared */
  assert_int_equal(verify_at(&t, SUITE_TIME + 3600, "AKIDEXAMPLE", SUITE_SECRET, &res),
                   SIGV4_SKEWED);
  const char *none[] = {
      HOST,
      "Authorization: " SIG2("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
      NULL};
  mk(&t, "GET", "/", none, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_INCOMPLETE);
  assert_non_null(strstr(res.msg, "'X-Amz-Date' or a 'Date'"));
}

static void test_scope_date(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  const char *h[] = {
      HOST, "X-Amz-Date: 20150831T000100Z",
      "Authorization: " SIG2("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
      NULL};
  mk(&t, "GET", "/", h, NULL);
  assert_int_equal(verify_at(&t, SUITE_TIME + 41460, "AKIDEXAMPLE", SUITE_SECRET, &res),
                   SIGV4_MISMATCH);
  assert_non_null(strstr(res.msg, "Date in Credential scope does not match"));
}

static void test_missing_and_malformed(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  const char *none[] = {HOST, DATE, NULL};
  mk(&t, "GET", "/", none, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_MISSING);
  assert_string_equal(sigv4_code(res.status), "MissingAuthenticationToken");
  assert_int_equal(sigv4_http_status(res.status), 403);

  static const char *const bad[] = {
      "AWS AKIDEXAMPLE:c2lnbmF0dXJl",
      "AWS4-HMAC-SHA256",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host;x-amz-date",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, SignedHeaders=host, "
      "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, "
      "SignedHeaders=host, "
      "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/service/aws4_request, "
      "SignedHeaders=host, "
      "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host, "
      "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      SUITE_CRED "SignedHeaders=host;x-amz-date, Signature=5fa00fa3",
      SUITE_CRED "SignedHeaders=host;x-amz-date, "
                 "Signature=zfa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      SUITE_CRED "SignedHeaders=host;;x-amz-date, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      SUITE_CRED "SignedHeaders=Host;X-Amz-Date, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      SUITE_CRED "SignedHeaders=host, SignedHeaders=host, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      SUITE_CRED "Foo=bar, SignedHeaders=host, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      SUITE_CRED "SignedHeaders host, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    const char *h[] = {HOST, DATE, "Authorization: x", NULL};
    mk(&t, "GET", "/", h, NULL);
    t.h[2].value = bad[i];
    t.h[2].value_len = strlen(bad[i]);
    sigv4_status_t st = verify(&t, &res);
    if (st != SIGV4_INCOMPLETE)
      fail_msg("case %zu (%s): %s %s", i, bad[i], sigv4_code(st), res.msg);
    assert_int_equal(sigv4_http_status(st), 400);
    assert_true(res.msg[0] != 0);
  }
  /* an over-long Authorization header: refused before parsing */
  char *big = malloc(SIGV4_MAX_AUTH + 100);
  assert_non_null(big);
  snprintf(big, SIGV4_MAX_AUTH + 100, "%sSignedHeaders=host;x-amz-date", SUITE_CRED);
  size_t l = strlen(big);
  memset(big + l, 'a', SIGV4_MAX_AUTH + 99 - l);
  big[SIGV4_MAX_AUTH + 99] = 0;
  const char *h[] = {HOST, DATE, "Authorization: x", NULL};
  mk(&t, "GET", "/", h, NULL);
  t.h[2].value = big;
  t.h[2].value_len = strlen(big);
  keys_t k = {"AKIDEXAMPLE", SUITE_SECRET, 0};
  assert_int_equal(sigv4_verify(&t.rq, SUITE_TIME, lookup, &k, &res), SIGV4_INCOMPLETE);
  assert_int_equal(k.calls, 0);
  free(big);
  /* two Authorization headers */
  const char *two[] = {
      HOST, DATE,
      "Authorization: " SIG2("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
      "Authorization: " SIG2("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
      NULL};
  mk(&t, "GET", "/", two, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_INCOMPLETE);
}

static void test_host_not_signed(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  const char *h[] = {HOST, DATE,
                     "Authorization: " SUITE_CRED "SignedHeaders=x-amz-date, Signature="
                     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                     NULL};
  mk(&t, "GET", "/", h, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_INCOMPLETE);
  assert_non_null(strstr(res.msg, "'Host'"));
  /* the same in a presigned URL */
  mk(&t, "GET",
     "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2F"
     "service%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders="
     "x-amz-date&X-Amz-Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
     (const char *const[]){HOST, NULL}, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_INCOMPLETE);
  assert_non_null(strstr(res.msg, "'Host'"));
}

/* AWS's S3 documentation example of a presigned URL ("Authenticating
 * Requests: Using Query Parameters"). */
#define S3_URL                                                                                     \
  "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F" \
  "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-"           \
  "SignedHeaders=host&X-Amz-Signature="                                                            \
  "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_TIME   1369353600 /* 20130524T000000Z */

static void test_presigned_s3_example(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  const char *h[] = {"Host: examplebucket.s3.amazonaws.com", NULL};
  mk(&t, "GET", S3_URL, h, NULL);
  assert_int_equal(verify_at(&t, S3_TIME + 10, "AKIAIOSFODNN7EXAMPLE", S3_SECRET, &res), SIGV4_OK);
  assert_int_equal(res.presigned, 1);
  assert_int_equal(res.unsigned_payload, 1);
  assert_string_equal(res.service, "s3");
  assert_int_equal(verify_at(&t, S3_TIME + 86400, "AKIAIOSFODNN7EXAMPLE", S3_SECRET, &res),
                   SIGV4_OK);
  /* expired one second after X-Amz-Date + X-Amz-Expires */
  assert_int_equal(verify_at(&t, S3_TIME + 86401, "AKIAIOSFODNN7EXAMPLE", S3_SECRET, &res),
                   SIGV4_EXPIRED);
  assert_string_equal(sigv4_code(res.status), "RequestExpired");
  assert_int_equal(sigv4_http_status(res.status), 400);
  assert_non_null(strstr(res.msg, "Request has expired"));
  /* dated more than 15 minutes in the future */
  assert_int_equal(verify_at(&t, S3_TIME - 901, "AKIAIOSFODNN7EXAMPLE", S3_SECRET, &res),
                   SIGV4_SKEWED);
  assert_int_equal(verify_at(&t, S3_TIME, "AKIAIOSFODNN7EXAMPLE", S3_SECRET "x", &res),
                   SIGV4_MISMATCH);
  assert_int_equal(verify_at(&t, S3_TIME, "AKIAOTHER", S3_SECRET, &res), SIGV4_UNKNOWN_KEY);
  /* another host */
  const char *h2[] = {"Host: otherbucket.s3.amazonaws.com", NULL};
  mk(&t, "GET", S3_URL, h2, NULL);
  assert_int_equal(verify_at(&t, S3_TIME, "AKIAIOSFODNN7EXAMPLE", S3_SECRET, &res), SIGV4_MISMATCH);
  /* an extra parameter */
  mk(&t, "GET", S3_URL "&versionId=1", h, NULL);
  assert_int_equal(verify_at(&t, S3_TIME, "AKIAIOSFODNN7EXAMPLE", S3_SECRET, &res), SIGV4_MISMATCH);
  /* an Authorization header as well */
  const char *h3[] = {
      "Host: examplebucket.s3.amazonaws.com",
      "Authorization: " SIG2("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
      NULL};
  mk(&t, "GET", S3_URL, h3, NULL);
  assert_int_equal(verify_at(&t, S3_TIME, "AKIAIOSFODNN7EXAMPLE", S3_SECRET, &res),
                   SIGV4_INCOMPLETE);
}

/* botocore's SigV4QueryAuth (generate_presigned_url's signer) for an SQS
 * SendMessage, with '+', '/', '~' and '*' in the body. */
#define BOTO_URL                                                                                   \
  "/123456789012/q1?Action=SendMessage&MessageBody=hello%20world%2B%2F~%2A&Version=2012-11-05&"    \
  "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsqs%2F"  \
  "aws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-"     \
  "Signature=6ee66b9462ce35523df35a00593863aa96680ef7b59f9e5399e2e8bb80c99eda"

static void test_presigned_botocore(void **state) {
  (void)state;
  treq_t t;
  sigv4_result_t res;
  const char *h[] = {"Host: localhost:9324", NULL};
  mk(&t, "GET", BOTO_URL, h, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_OK);
  assert_int_equal(verify_at(&t, SUITE_TIME + 300, "AKIDEXAMPLE", SUITE_SECRET, &res), SIGV4_OK);
  assert_int_equal(verify_at(&t, SUITE_TIME + 301, "AKIDEXAMPLE", SUITE_SECRET, &res),
                   SIGV4_EXPIRED);
  /* the message body changed */
  char *u = strdup(BOTO_URL);
  assert_non_null(u);
  char *p = strstr(u, "hello");
  p[0] = 'j';
  mk(&t, "GET", u, h, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH);
  free(u);
  /* X-Amz-Expires out of range or malformed */
  static const char *const exp[] = {"0", "604801", "-1", "1e3", ""};
  for (size_t i = 0; i < sizeof(exp) / sizeof(exp[0]); i++) {
    char url[1024];
    snprintf(url, sizeof(url),
             "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%%2F20150830%%2F"
             "us-east-1%%2Fsqs%%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=%s&"
             "X-Amz-SignedHeaders=host&X-Amz-Signature="
             "6ee66b9462ce35523df35a00593863aa96680ef7b59f9e5399e2e8bb80c99eda",
             exp[i]);
    mk(&t, "GET", url, h, NULL);
    assert_int_equal(verify(&t, &res), SIGV4_INCOMPLETE);
  }
  /* a parameter missing */
  mk(&t, "GET", "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z", h, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_INCOMPLETE);
  assert_non_null(strstr(res.msg, "X-Amz-Credential"));
  /* botocore signs the (empty) body's hash: a body added to its URL is
   * refused */
  mk(&t, "GET", BOTO_URL, h, NULL);
  assert_int_equal(verify(&t, &res), SIGV4_OK);
  assert_int_equal(res.unsigned_payload, 0);
  mk(&t, "GET", BOTO_URL, h, "DelaySeconds=5");
  assert_int_equal(verify(&t, &res), SIGV4_MISMATCH);
}

static void test_parse_amzdate(void **state) {
  (void)state;
  int64_t t;
  assert_int_equal(sigv4_parse_amzdate("20150830T123600Z", 16, &t), 0);
  assert_int_equal(t, SUITE_TIME);
  assert_int_equal(sigv4_parse_amzdate("20160229T000000Z", 16, &t), 0);
  assert_int_equal(t, 1456704000);
  assert_int_equal(sigv4_parse_amzdate("20150229T000000Z", 16, &t), -1);
  assert_int_equal(sigv4_parse_amzdate("20151330T000000Z", 16, &t), -1);
  assert_int_equal(sigv4_parse_amzdate("20150830T243600Z", 16, &t), -1);
  assert_int_equal(sigv4_parse_amzdate("20150830 123600Z", 16, &t), -1);
  assert_int_equal(sigv4_parse_amzdate("20150830T123600", 15, &t), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_vanilla),
      cmocka_unit_test(test_post_vanilla),
      cmocka_unit_test(test_get_vanilla_empty_query_key),
      cmocka_unit_test(test_get_vanilla_query_order_key_case),
      cmocka_unit_test(test_get_vanilla_query_order_value),
      cmocka_unit_test(test_get_vanilla_utf8_query),
      cmocka_unit_test(test_get_unreserved),
      cmocka_unit_test(test_get_slashes),
      cmocka_unit_test(test_get_header_value_order),
      cmocka_unit_test(test_get_header_key_duplicate),
      cmocka_unit_test(test_get_header_value_trim),
      cmocka_unit_test(test_post_x_www_form_urlencoded),
      cmocka_unit_test(test_tampered_body),
      cmocka_unit_test(test_botocore_sqs_post),
      cmocka_unit_test(test_content_sha256_header),
      cmocka_unit_test(test_wrong_secret_and_unknown_key),
      cmocka_unit_test(test_skew),
      cmocka_unit_test(test_date_header),
      cmocka_unit_test(test_scope_date),
      cmocka_unit_test(test_missing_and_malformed),
      cmocka_unit_test(test_host_not_signed),
      cmocka_unit_test(test_presigned_s3_example),
      cmocka_unit_test(test_presigned_botocore),
      cmocka_unit_test(test_parse_amzdate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
