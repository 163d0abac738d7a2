/* test_creds.c - unit tests of the credentials file and the principal set
 * (server/creds.h): a valid file, every refusal with its message (JSON line
 * numbers, empty sets, duplicates, bad fields, bad policies, unknown keys),
 * the file checks (mode, symlink, type), lookups, and the admin rules (the
 * file wins over admin-defined principals, on put and on reload). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "creds.h"

#define AK1    "GBXORDERSWORKER0001"
#define AK2    "GBXBILLING000000002"
#define SECRET "s3cret-s3cret-s3cret"

/* A principal object; extra is spliced in before the closing brace. */
#define PR(name, akid, extra)                                                                      \
  "{\"name\":\"" name "\",\"access_key_id\":\"" akid "\",\"secret_access_key\":\"" SECRET          \
  "\"" extra "}"
#define FILE1(list) "{\"principals\":[" list "]}"

static const char *valid_doc =
    "{ \"principals\": [\n"
    "  { \"name\": \"orders-worker\", \"access_key_id\": \"" AK1 "\",\n"
    "    \"secret_access_key\": \"" SECRET "\",\n"
    "    \"policy\": { \"Version\": \"2012-10-17\", \"Statement\": [\n"
    "      { \"Effect\": \"Allow\", \"Action\": \"sqs:*\", \"Resource\": \"orders-*\" } ] } },\n"
    "  { \"name\": \"billing\", \"access_key_id\": \"" AK2 "\",\n"
    "    \"secret_access_key\": \"" SECRET "xyz\", \"account_id\": \"210987654321\" }\n"
    "] }\n";

static creds_t *parse_ok(const char *doc) {
  char err[512] = "";
  creds_t *c = creds_parse(doc, strlen(doc), "123456789012", err, sizeof err);
  if (!c)
    fail_msg("credentials %s refused: %s", doc, err);
  return c;
}

static void parse_bad(const char *doc, const char *want) {
  char err[512] = "";
  creds_t *c = creds_parse(doc, strlen(doc), "123456789012", err, sizeof err);
  if (c) {
    creds_free(c);
    fail_msg("credentials %s accepted, wanted an error with \"%s\"", doc, want);
  }
  if (!strstr(err, want))
    fail_msg("credentials %s: error \"%s\" lacks \"%s\"", doc, err, want);
  /* secrets never appear in a message */
  assert_null(strstr(err, SECRET));
}

static void test_valid(void **state) {
  (void)state;
  creds_t *c = parse_ok(valid_doc);
  assert_int_equal(creds_count(c), 2);
  const principal_t *p = creds_by_akid(c, AK1, strlen(AK1));
  assert_non_null(p);
  assert_ptr_equal(p, creds_at(c, 0));
  assert_string_equal(p->name, "orders-worker");
  assert_string_equal(p->account, "123456789012"); /* the default */
  assert_int_equal(p->secret_len, strlen(SECRET));
  assert_memory_equal(p->secret, SECRET, p->secret_len);
  assert_int_equal(p->source, CREDS_FROM_FILE);
  assert_non_null(p->policy);
  assert_string_equal(p->policy_json,
                      "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
                      "\"Allow\",\"Action\":\"sqs:*\",\"Resource\":\"orders-*\"}]}");
  assert_int_equal(policy_eval(p->policy, NULL, "sqs:SendMessage",
                               "arn:aws:sqs:us-east-1:123456789012:orders-eu"),
                   POLICY_ALLOW);
  assert_int_equal(
      policy_eval(p->policy, NULL, "sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:billing"),
      POLICY_NONE);

  const principal_t *b = creds_by_name(c, "billing", 7);
  assert_non_null(b);
  assert_ptr_equal(b, creds_by_akid(c, AK2, strlen(AK2)));
  assert_string_equal(b->account, "210987654321");
  assert_null(b->policy); /* no policy: nothing is allowed */
  assert_null(b->policy_json);
  assert_int_equal(policy_eval(b->policy, NULL, "sqs:SendMessage", "arn:aws:sqs:r:a:q"),
                   POLICY_NONE);

  /* lookups are by exact length */
  assert_null(creds_by_name(c, "billin", 6));
  assert_null(creds_by_name(c, "billing2", 8));
  assert_null(creds_by_akid(c, AK1, strlen(AK1) - 1));
  assert_null(creds_by_akid(c, "gbxordersworker0001", strlen(AK1)));
  assert_null(creds_at(c, 2));
  creds_free(c);
}

static void test_json_errors(void **state) {
  (void)state;
  parse_bad("{ \"principals\": [\n  { \"name\": \"a\",\n    \"access_key_id\" \"x\" }\n] }",
            "line 3: not valid JSON");
  parse_bad("{\"principals\":[]}\n\n x", "line 3: text after the JSON document");
  parse_bad("", "is empty: an empty credentials file never means allow everyone");
  parse_bad("  \n\t ", "is empty");
  parse_bad("{}", "has no \"principals\" array");
  parse_bad("{\"principals\":{}}", "has no \"principals\" array");
  parse_bad("{\"principals\":[]}", "lists no principals: an empty credentials file never means");
  parse_bad("[]", "must be a JSON object");
  parse_bad("{\"principals\":[],\"admins\":[]}", "unknown key \"admins\"");
  char err[64];
  assert_null(creds_parse(NULL, 0, "1", err, sizeof err));
  assert_null(creds_parse("{}", CREDS_MAX_FILE + 1u, "1", err, sizeof err));
  assert_non_null(strstr(err, "more than"));
}

static void test_bad_principals(void **state) {
  (void)state;
  parse_bad(FILE1(PR("a", AK1, ",\"role\":\"x\"")), "principal 0 (\"a\"): unknown key \"role\"");
  parse_bad(FILE1(PR("a", AK1, ",\"name\":\"b\"")), "principal 0 (\"a\"): duplicate key \"name\"");
  parse_bad(FILE1("1"), "principal 0: must be an object");
  parse_bad(FILE1("{\"name\":\"a\",\"access_key_id\":\"" AK1 "\"}"),
            "principal 0 (\"a\"): \"secret_access_key\" is missing");
  parse_bad(FILE1(PR("", AK1, "")), "principal 0: name must be 1-64 characters");
  parse_bad(FILE1(PR("a b", AK1, "")), "principal 0: name must be");
  parse_bad(FILE1(PR("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", AK1, "")),
            "name must be 1-64"); /* 65 characters */
  parse_bad(FILE1(PR("a", "GBXSHORT", "")), "principal 0 (\"a\"): access_key_id must be 16-128");
  parse_bad(FILE1(PR("a", "gbxorsersworker0001", "")), "access_key_id must be 16-128");
  parse_bad(FILE1("{\"name\":\"a\",\"access_key_id\":\"" AK1 "\",\"secret_access_key\":\"short\"}"),
            "principal 0 (\"a\"): secret_access_key must be 16-128 printable");
  parse_bad(FILE1("{\"name\":\"a\",\"access_key_id\":\"" AK1
                  "\",\"secret_access_key\":\"has a space in it!!\"}"),
            "secret_access_key must be");
  parse_bad(FILE1(PR("a", AK1, ",\"account_id\":\"12:34\"")), "account_id must be 1-32");
  parse_bad(FILE1(PR("a", AK1, ",\"policy\":\"allow\"")),
            "principal 0 (\"a\"): policy must be a policy document");
  parse_bad(FILE1(PR("a", AK1,
                     ",\"policy\":{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\","
                     "\"Resource\":\"*\",\"Condition\":{}}}")),
            "principal 0 (\"a\"): policy: Statement[0].Condition: not supported");
  parse_bad(FILE1(PR("a", AK1,
                     ",\"policy\":{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\","
                     "\"Resource\":\"*\",\"Principal\":\"*\"}}")),
            "policy: Statement[0].Principal: not allowed in an identity policy");
  /* duplicates */
  parse_bad(FILE1(PR("a", AK1, "") "," PR("b", AK1, "")),
            "principal 1 (\"b\"): access_key_id is used twice");
  parse_bad(FILE1(PR("a", AK1, "") "," PR("a", AK2, "")), "principal 1: name \"a\" is used twice");
  /* no default account and none given */
  char err[256];
  const char *doc = FILE1(PR("a", AK1, ""));
  assert_null(creds_parse(doc, strlen(doc), NULL, err, sizeof err));
  assert_non_null(strstr(err, "no account_id"));
}

static void test_many_principals(void **state) {
  (void)state;
  /* enough principals to exercise the hash tables' probing */
  enum { N = 3000 };
  size_t cap = (size_t)N * 160 + 64;
  char *d = malloc(cap), *w = d;
  w += sprintf(w, "{\"principals\":[");
  for (int i = 0; i < N; i++)
    w += sprintf(w,
                 "%s{\"name\":\"u%d\",\"access_key_id\":\"GBXKEY%013d\",\"secret_access_key\":"
                 "\"" SECRET "\"}",
                 i ? "," : "", i, i);
  sprintf(w, "]}");
  creds_t *c = parse_ok(d);
  free(d);
  assert_int_equal(creds_count(c), N);
  for (int i = 0; i < N; i++) {
    char name[16], ak[32];
    int nl = snprintf(name, sizeof name, "u%d", i);
    int al = snprintf(ak, sizeof ak, "GBXKEY%013d", i);
    const principal_t *p = creds_by_name(c, name, (size_t)nl);
    assert_non_null(p);
    assert_ptr_equal(p, creds_by_akid(c, ak, (size_t)al));
    assert_ptr_equal(p, creds_at(c, (uint32_t)i));
  }
  assert_null(creds_by_name(c, "u3000", 5));
  creds_free(c);
}

/* ---- the file ------------------------------------------------------------ */

/* Writes text to a new temp file with the given mode; path in out. */
static void write_temp(char *out, size_t outlen, const char *text, mode_t mode) {
  snprintf(out, outlen, "/tmp/gbx-creds-XXXXXX");
  int fd = mkstemp(out);
  assert_true(fd >= 0);
  assert_int_equal(fchmod(fd, mode), 0);
  size_t n = strlen(text);
  assert_int_equal(write(fd, text, n), (ssize_t)n);
  close(fd);
}

static void test_file_mode(void **state) {
  (void)state;
  char path[64], err[512], want[256];
  write_temp(path, sizeof path, valid_doc, 0644);
  assert_null(creds_load_file(path, "123456789012", err, sizeof err));
  snprintf(want, sizeof want,
           "credentials file %s has mode 0644: it must not be readable or writable by group or "
           "others (chmod 600 %s)",
           path, path);
  assert_string_equal(err, want);
  assert_int_equal(chmod(path, 0640), 0);
  assert_null(creds_load_file(path, "123456789012", err, sizeof err));
  assert_non_null(strstr(err, "mode 0640"));
  assert_int_equal(chmod(path, 0602), 0);
  assert_null(creds_load_file(path, "123456789012", err, sizeof err));
  assert_int_equal(chmod(path, 0600), 0);
  creds_t *c = creds_load_file(path, "123456789012", err, sizeof err);
  if (!c)
    fail_msg("0600 file refused: %s", err);
  assert_int_equal(creds_count(c), 2);
  creds_free(c);
  assert_int_equal(chmod(path, 0400), 0);
  c = creds_load_file(path, "123456789012", err, sizeof err);
  assert_non_null(c);
  creds_free(c);

  /* a symlink is not followed, even to a good file */
  char link[80];
  snprintf(link, sizeof link, "%s.lnk", path);
  assert_int_equal(symlink(path, link), 0);
  assert_null(creds_load_file(link, "123456789012", err, sizeof err));
  assert_non_null(strstr(err, "is a symbolic link"));
  unlink(link);
  unlink(path);

  /* missing file, a directory */
  assert_null(creds_load_file(path, "123456789012", err, sizeof err));
  assert_non_null(strstr(err, path));
  assert_null(creds_load_file("/tmp", "123456789012", err, sizeof err));
  assert_non_null(strstr(err, "not a regular file"));
}

static void test_file_content_errors(void **state) {
  (void)state;
  char path[64], err[512];
  write_temp(path, sizeof path, "{ \"principals\": [\n\n  { \"name\": }\n] }\n", 0600);
  assert_null(creds_load_file(path, "123456789012", err, sizeof err));
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "line 3: not valid JSON"));
  unlink(path);
  write_temp(path, sizeof path, "", 0600);
  assert_null(creds_load_file(path, "123456789012", err, sizeof err));
  assert_non_null(strstr(err, "never means allow everyone"));
  unlink(path);
  write_temp(path, sizeof path, "{}", 0600);
  assert_null(creds_load_file(path, "123456789012", err, sizeof err));
  assert_non_null(strstr(err, "never means allow everyone"));
  unlink(path);
}

/* ---- admin-defined principals ------------------------------------------- */

static principal_t admin(const char *name, const char *akid, const char *policy) {
  principal_t p;
  memset(&p, 0, sizeof p);
  snprintf(p.name, sizeof p.name, "%s", name);
  snprintf(p.akid, sizeof p.akid, "%s", akid);
  p.secret_len = (size_t)snprintf(p.secret, sizeof p.secret, "%s", SECRET);
  snprintf(p.account, sizeof p.account, "123456789012");
  if (policy) {
    char err[256];
    p.policy = policy_parse(policy, strlen(policy), POLICY_IDENTITY, err, sizeof err);
    assert_non_null(p.policy);
    p.policy_json = strdup(policy);
  }
  return p;
}

#define POL_ALL "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}"

static void test_admin_put_remove(void **state) {
  (void)state;
  char err[256];
  creds_t *c = parse_ok(valid_doc);
  /* the file wins: same name or same key as a file principal is refused */
  principal_t p = admin("orders-worker", "GBXADMINDEFINED01", NULL);
  assert_int_equal(creds_put_admin(c, &p, err, sizeof err), -1);
  assert_non_null(strstr(err, "its name belongs to a principal of the credentials file"));
  p = admin("ops", AK1, POL_ALL);
  assert_int_equal(creds_put_admin(c, &p, err, sizeof err), -1);
  assert_non_null(strstr(err, "its access key id belongs to a principal of the credentials file"));
  assert_non_null(p.policy); /* a refused put leaves the policy with the caller */
  policy_free(p.policy);
  free(p.policy_json);
  /* invalid fields */
  p = admin("ops", "short", NULL);
  assert_int_equal(creds_put_admin(c, &p, err, sizeof err), -1);
  assert_non_null(strstr(err, "access_key_id must be"));

  p = admin("ops", "GBXADMINDEFINED01", POL_ALL);
  assert_int_equal(creds_put_admin(c, &p, err, sizeof err), 0);
  assert_null(p.policy); /* taken over */
  assert_null(p.policy_json);
  assert_int_equal(creds_count(c), 3);
  const principal_t *q = creds_by_akid(c, "GBXADMINDEFINED01", 17);
  assert_non_null(q);
  assert_int_equal(q->source, CREDS_FROM_ADMIN);
  assert_int_equal(policy_eval(q->policy, NULL, "sqs:DeleteQueue", "arn:aws:sqs:r:a:q"),
                   POLICY_ALLOW);
  /* replacing ops with a new key: the old key is gone */
  p = admin("ops", "GBXADMINDEFINED02", NULL);
  assert_int_equal(creds_put_admin(c, &p, err, sizeof err), 0);
  assert_int_equal(creds_count(c), 3);
  assert_null(creds_by_akid(c, "GBXADMINDEFINED01", 17));
  q = creds_by_name(c, "ops", 3);
  assert_ptr_equal(q, creds_by_akid(c, "GBXADMINDEFINED02", 17));
  assert_null(q->policy);
  /* another admin principal may not take ops's key */
  p = admin("ops2", "GBXADMINDEFINED02", NULL);
  assert_int_equal(creds_put_admin(c, &p, err, sizeof err), -1);
  assert_non_null(strstr(err, "belongs to principal \"ops\""));

  /* removal: only admin-defined, only present */
  assert_int_equal(creds_remove_admin(c, "orders-worker", 13), -1);
  assert_int_equal(creds_remove_admin(c, "nobody", 6), -1);
  assert_int_equal(creds_remove_admin(c, "ops", 3), 0);
  assert_int_equal(creds_remove_admin(c, "ops", 3), -1);
  assert_int_equal(creds_count(c), 2);
  assert_null(creds_by_name(c, "ops", 3));
  assert_non_null(creds_by_name(c, "billing", 7));
  creds_free(c);

  /* an empty set accepts admin principals */
  c = creds_new();
  assert_non_null(c);
  assert_int_equal(creds_count(c), 0);
  assert_null(creds_by_name(c, "ops", 3));
  p = admin("ops", "GBXADMINDEFINED01", NULL);
  assert_int_equal(creds_put_admin(c, &p, err, sizeof err), 0);
  assert_non_null(creds_by_name(c, "ops", 3));
  creds_free(c);
}

typedef struct warns {
  int n;
  char last[256];
} warns_t;

static void warn_cb(void *ctx, const char *msg) {
  warns_t *w = ctx;
  w->n++;
  snprintf(w->last, sizeof w->last, "%s", msg);
}

static void test_merge(void **state) {
  (void)state;
  char err[256];
  creds_t *old = parse_ok(FILE1(PR("filer", "GBXFILER000000001", "")));
  principal_t p = admin("keep", "GBXKEEP0000000001", POL_ALL);
  assert_int_equal(creds_put_admin(old, &p, err, sizeof err), 0);
  p = admin("clash-name", "GBXCLASHNAME00001", NULL);
  assert_int_equal(creds_put_admin(old, &p, err, sizeof err), 0);
  p = admin("clash-key", "GBXCLASHKEY000001", NULL);
  assert_int_equal(creds_put_admin(old, &p, err, sizeof err), 0);

  /* the new file defines clash-name, and clash-key's key under another name;
   * "filer" is gone from the file and is not carried over (it was not admin) */
  creds_t *file = parse_ok(
      FILE1(PR("clash-name", "GBXNEWKEY00000001", "") "," PR("newcomer", "GBXCLASHKEY000001", "")));
  warns_t w = {0};
  creds_t *c = creds_merge_admin(file, old, warn_cb, &w);
  assert_non_null(c);
  creds_free(old); /* the merged set owns its own copies */
  assert_int_equal(w.n, 2);
  assert_non_null(strstr(w.last, "\"clash-key\" dropped: its access key id"));
  assert_int_equal(creds_count(c), 3);
  assert_null(creds_by_name(c, "filer", 5));
  const principal_t *k = creds_by_name(c, "keep", 4);
  assert_non_null(k);
  assert_int_equal(k->source, CREDS_FROM_ADMIN);
  assert_ptr_equal(k, creds_by_akid(c, "GBXKEEP0000000001", 17));
  assert_string_equal(k->policy_json, POL_ALL);
  assert_int_equal(policy_eval(k->policy, NULL, "sqs:SendMessage", "arn:aws:sqs:r:a:q"),
                   POLICY_ALLOW);
  const principal_t *cn = creds_by_name(c, "clash-name", 10);
  assert_int_equal(cn->source, CREDS_FROM_FILE);
  assert_ptr_equal(cn, creds_by_akid(c, "GBXNEWKEY00000001", 17));
  assert_null(creds_by_akid(c, "GBXCLASHNAME00001", 17));
  assert_string_equal(creds_by_akid(c, "GBXCLASHKEY000001", 17)->name, "newcomer");
  creds_free(c);

  /* merging with no old set is the file itself */
  file = parse_ok(FILE1(PR("a", AK1, "")));
  c = creds_merge_admin(file, NULL, NULL, NULL);
  assert_ptr_equal(c, file);
  assert_int_equal(creds_count(c), 1);
  creds_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_json_errors),
      cmocka_unit_test(test_bad_principals),
      cmocka_unit_test(test_many_principals),
      cmocka_unit_test(test_file_mode),
      cmocka_unit_test(test_file_content_errors),
      cmocka_unit_test(test_admin_put_remove),
      cmocka_unit_test(test_merge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
