/* test_auth.c - authentication and authorization against the real gearboxd
 * started with --credentials: the challenge-response handshake, the limits
 * before authentication (frame cap, deadline, throttled failures), reload
 * and revocation on SIGHUP, malformed and unsafe credential files, protected
 * mode, owner-only data files, and an authorization matrix of principals x
 * actions x resources through libgearbox and the CLI. */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "gbx_auth.h"
#include "gbx_codec.h"
#include "testutil.h"

static gbx_error_t e;

/* ---- credentials files ----------------------------------------------------------- */

#define ALLOW_ALL                                                                                  \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","             \
  "\"Resource\":\"*\"}]}"

/* The principals of the matrix: one of each shape of policy. */
static const char *const CREDS =
    "{\"principals\":["
    "{\"name\":\"admin\",\"access_key_id\":\"GBXADMIN00000001\","
    "\"secret_access_key\":\"admin-secret-0123456789\",\"policy\":" ALLOW_ALL "},"
    "{\"name\":\"producer\",\"access_key_id\":\"GBXPRODUCER00001\","
    "\"secret_access_key\":\"producer-secret-012345\",\"policy\":{\"Version\":\"2012-10-17\","
    "\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"sqs:SendMessage\",\"sqs:"
    "GetQueueAttributes\"],"
    "\"Resource\":\"orders-*\"},{\"Effect\":\"Allow\",\"Action\":\"sns:Publish\","
    "\"Resource\":\"arn:aws:sns:*:*:events\"}]}},"
    "{\"name\":\"consumer\",\"access_key_id\":\"GBXCONSUMER00001\","
    "\"secret_access_key\":\"consumer-secret-012345\",\"policy\":{\"Version\":\"2012-10-17\","
    "\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"sqs:Receive*\",\"sqs:DeleteMessage\","
    "\"sqs:ChangeMessageVisibility\",\"sqs:ListQueues\"],\"Resource\":\"orders-*\"},"
    "{\"Effect\":\"Deny\",\"Action\":\"sqs:*\",\"Resource\":\"orders-secret\"}]}},"
    "{\"name\":\"wiring\",\"access_key_id\":\"GBXWIRING0000001\","
    "\"secret_access_key\":\"wiring-secret-0123456\",\"policy\":{\"Version\":\"2012-10-17\","
    "\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"sns:Subscribe\",\"sns:ListTopics\","
    "\"sqs:CreateQueue\",\"sqs:SetQueueAttributes\"],\"Resource\":\"*\"}]}},"
    "{\"name\":\"nobody\",\"access_key_id\":\"GBXNOBODY0000001\","
    "\"secret_access_key\":\"nobody-secret-0123456\"}"
    "]}";

/* Writes text to <dir>/name with mode, returns the path (static buffer). */
static const char *write_file(const char *dir, const char *name, const char *text, mode_t mode) {
  static char path[4][512];
  static int k;
  char *p = path[k++ % 4];
  snprintf(p, 512, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(p, mode), 0);
  return p;
}

/* A server with CREDS (extra: more flags). */
static gbx_testserver_t *start_with(const char *creds, const char *extra) {
  char dir[] = "/tmp/gbx-auth-XXXXXX";
  assert_non_null(mkdtemp(dir));
  const char *path = write_file(dir, "creds.json", creds, 0600);
  char args[1024];
  snprintf(args, sizeof(args), "--credentials %s %s", path, extra ? extra : "");
  return ts_start(args);
}

static gbx_client_t *login(gbx_testserver_t *ts, const char *key, const char *secret) {
  gbx_client_t *c = tu_connect(ts);
  char *who = NULL;
  CHECK_OK(gbx_auth(c, key, secret, &who, &e));
  assert_non_null(who);
  gbx_free(who);
  return c;
}

static int log_has(gbx_testserver_t *ts, const char *needle) {
  FILE *f = fopen(ts_log_path(ts), "r");
  char line[2048];
  int found = 0;
  if (!f)
    return 0;
  while (!found && fgets(line, sizeof(line), f))
    found = strstr(line, needle) != NULL;
  fclose(f);
  return found;
}

/* Waits up to 5 s for a log line holding needle. */
static int log_wait(gbx_testserver_t *ts, const char *needle) {
  for (int i = 0; i < 100; i++) {
    if (log_has(ts, needle))
      return 1;
    tu_sleep_ms(50);
  }
  return 0;
}

/* ---- the handshake ---------------------------------------------------------------- */

static void test_handshake(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  gbx_client_t *c = tu_connect(ts);
  /* before authenticating: ping yes, anything else no */
  CHECK_OK(gbx_ping(c, &e));
  assert_int_equal(gbx_queue_create(c, "q1", NULL, NULL, 0, NULL, &e), GBX_E_UNAUTHENTICATED);
  char *who = NULL;
  CHECK_OK(gbx_auth(c, "GBXADMIN00000001", "admin-secret-0123456789", &who, &e));
  assert_string_equal(who, "admin");
  gbx_free(who);
  CHECK_OK(gbx_queue_create(c, "q1", NULL, NULL, 0, NULL, &e));
  /* a second handshake on an authenticated connection is refused */
  assert_int_equal(gbx_auth(c, "GBXADMIN00000001", "admin-secret-0123456789", NULL, &e),
                   GBX_E_AUTH_FAILED);
  gbx_close(c);

  /* wrong secret and unknown key: the same refusal, and an audit line each */
  c = tu_connect(ts);
  assert_int_equal(gbx_auth(c, "GBXADMIN00000001", "not-the-secret-000000", NULL, &e),
                   GBX_E_AUTH_FAILED);
  gbx_close(c);
  assert_true(log_wait(ts, "audit: authentication refused face=native key=GBXADMIN00000001"));
  c = tu_connect(ts);
  assert_int_equal(gbx_auth(c, "GBXNOSUCHKEY0001", "whatever-secret-00000", NULL, &e),
                   GBX_E_AUTH_FAILED);
  gbx_close(c);
  assert_true(log_wait(ts, "key=GBXNOSUCHKEY0001"));
  assert_true(log_has(ts, "unknown access key id"));
  ts_free(ts);
}

/* Without --credentials the handshake is refused (there is nothing to prove
 * against) and everything works unauthenticated on loopback. */
static void test_no_credentials(void **state) {
  (void)state;
  gbx_testserver_t *ts = ts_start(NULL);
  gbx_client_t *c = tu_connect(ts);
  CHECK_OK(gbx_queue_create(c, "q1", NULL, NULL, 0, NULL, &e));
  assert_int_equal(gbx_auth(c, "GBXADMIN00000001", "admin-secret-0123456789", NULL, &e),
                   GBX_E_AUTH_FAILED);
  assert_non_null(strstr(e.message, "no credentials"));
  gbx_close(c);
  assert_true(log_has(ts, "protected mode"));
  ts_free(ts);
}

/* ---- limits before authentication ---------------------------------------------------- */

static void test_preauth_frame_cap(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  int fd = ts_raw_connect(ts);
  /* a 100 KB frame before authenticating: refused from its header, closed */
  uint8_t hdr[4] = {0, 1, 0x86, 0xa0};
  assert_int_equal(ts_raw_send(fd, hdr, 4), 0);
  tu_reply_t r = tu_raw_read_reply(fd);
  assert_int_equal(r.err, GBX_E_FRAME_TOO_LARGE);
  assert_non_null(strstr(r.msg, "before authentication"));
  assert_true(ts_raw_wait_eof(fd, 5000));
  close(fd);
  /* the same size after authenticating is fine (an ordinary send) */
  gbx_client_t *c = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  CHECK_OK(gbx_queue_create(c, "big", NULL, NULL, 0, NULL, &e));
  static char body[100000];
  memset(body, 'x', sizeof(body));
  CHECK_OK(gbx_queue_send(c, "big", body, sizeof(body), NULL, 0, 0, NULL, &e));
  gbx_close(c);
  ts_free(ts);
}

static void test_handshake_deadline(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, "--auth-timeout 300");
  int fd = ts_raw_connect(ts);
  /* the sweep runs every second: closed within ~1.3 s, certainly within 5 */
  assert_true(ts_raw_wait_eof(fd, 5000));
  close(fd);
  assert_true(log_wait(ts, "did not authenticate in time"));
  /* an authenticated connection outlives the deadline */
  gbx_client_t *c = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  tu_sleep_ms(1500);
  CHECK_OK(gbx_ping(c, &e));
  CHECK_OK(gbx_queue_create(c, "q", NULL, NULL, 0, NULL, &e));
  gbx_close(c);
  ts_free(ts);
}

/* Failures from one address are slowed down: each next attempt waits
 * 100 ms << (failures - 1) before it is even evaluated (a success does not
 * reset that: failures are forgotten 15 minutes after the last), and a
 * connection is closed after 5 failed proofs. */
static void test_failures_throttled(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  int64_t took[5];
  for (int i = 0; i < 5; i++) {
    gbx_client_t *c = tu_connect(ts);
    int64_t t0 = tu_mono_ms();
    assert_int_equal(gbx_auth(c, "GBXADMIN00000001", "wrong-secret-000000000", NULL, &e),
                     GBX_E_AUTH_FAILED);
    took[i] = tu_mono_ms() - t0;
    gbx_close(c);
  }
  /* attempt i+1 waits out 100 << (i - 1) ms after failure i: the 4th at
   * least 400 ms after the 3rd failed, the 5th 800 ms */
  assert_true(took[3] >= 350);
  assert_true(took[4] >= 700);
  /* the right secret still works, after the wait; the next login, with no
   * new failure in between, does not wait */
  gbx_client_t *c = tu_connect(ts);
  int64_t t0 = tu_mono_ms();
  CHECK_OK(gbx_auth(c, "GBXADMIN00000001", "admin-secret-0123456789", NULL, &e));
  assert_true(tu_mono_ms() - t0 >= 1000);
  gbx_close(c);
  c = tu_connect(ts);
  t0 = tu_mono_ms();
  CHECK_OK(gbx_auth(c, "GBXADMIN00000001", "admin-secret-0123456789", NULL, &e));
  assert_true(tu_mono_ms() - t0 < 1000);
  gbx_close(c);
  /* the server kept serving meanwhile */
  tu_assert_alive(ts);
  ts_free(ts);
}

/* ---- reload and revocation --------------------------------------------------------------- */

static const char *const CREDS_B =
    "{\"principals\":["
    "{\"name\":\"admin\",\"access_key_id\":\"GBXADMIN00000001\","
    "\"secret_access_key\":\"admin-secret-0123456789\",\"policy\":" ALLOW_ALL "},"
    "{\"name\":\"newcomer\",\"access_key_id\":\"GBXNEWCOMER00001\","
    "\"secret_access_key\":\"newcomer-secret-01234\",\"policy\":" ALLOW_ALL "}"
    "]}";

static void test_reload_revokes(void **state) {
  (void)state;
  char dir[] = "/tmp/gbx-auth-XXXXXX";
  assert_non_null(mkdtemp(dir));
  const char *path = write_file(dir, "creds.json", CREDS, 0600);
  char args[600];
  snprintf(args, sizeof(args), "--credentials %s", path);
  gbx_testserver_t *ts = ts_start(args);
  gbx_client_t *admin = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  CHECK_OK(gbx_queue_create(admin, "orders-a", NULL, NULL, 0, NULL, &e));
  gbx_client_t *cons = login(ts, "GBXCONSUMER00001", "consumer-secret-012345");
  gbx_message_t *m = NULL;
  size_t n = 0;
  CHECK_OK(gbx_queue_receive(cons, "orders-a", 1, -1, 0, &m, &n, &e));
  assert_int_equal(n, 0);
  /* a long poll of 20 s waits on the consumer's connection */
  uint64_t id = gbx_submit_receive(cons, "orders-a", 1, -1, 20, &e);
  assert_true(id != 0);
  CHECK_OK(gbx_flush(cons, &e));
  tu_sleep_ms(200);

  /* a malformed file changes nothing */
  write_file(dir, "creds.json", "{\"principals\": [", 0600);
  assert_int_equal(kill(ts_pid(ts), SIGHUP), 0);
  assert_true(log_wait(ts, "keeping the current credentials"));
  CHECK_OK(gbx_ping(cons, &e));

  /* the consumer is gone from the new file: its long poll ends now */
  write_file(dir, "creds.json", CREDS_B, 0600);
  int64_t t0 = tu_mono_ms();
  assert_int_equal(kill(ts_pid(ts), SIGHUP), 0);
  gbx_reply_t *r = NULL;
  CHECK_OK(gbx_collect(cons, &r, &e));
  assert_int_equal(gbx_reply_id(r), id);
  assert_int_equal(gbx_reply_error(r, &e), GBX_E_AUTH_REVOKED);
  gbx_reply_free(r);
  assert_true(tu_mono_ms() - t0 < 10000);
  /* its next request is refused and the connection closed */
  assert_int_equal(gbx_queue_receive(cons, "orders-a", 1, -1, 0, &m, &n, &e), GBX_E_AUTH_REVOKED);
  gbx_close(cons);
  assert_true(log_has(ts, "credentials reloaded, 2 principals"));
  /* the admin kept working; the newcomer can log in; the consumer cannot */
  CHECK_OK(gbx_queue_send(admin, "orders-a", "x", 1, NULL, 0, 0, NULL, &e));
  gbx_client_t *nc = login(ts, "GBXNEWCOMER00001", "newcomer-secret-01234");
  CHECK_OK(gbx_queue_receive(nc, "orders-a", 1, -1, 0, &m, &n, &e));
  assert_int_equal(n, 1);
  gbx_messages_free(m);
  gbx_close(nc);
  gbx_client_t *c = tu_connect(ts);
  assert_int_equal(gbx_auth(c, "GBXCONSUMER00001", "consumer-secret-012345", NULL, &e),
                   GBX_E_AUTH_FAILED);
  gbx_close(c);
  gbx_close(admin);
  ts_free(ts);
}

/* A policy change on reload applies to open connections at their next
 * request: allowed before, denied after, without reconnecting. */
static void test_reload_policy_change(void **state) {
  (void)state;
  char dir[] = "/tmp/gbx-auth-XXXXXX";
  assert_non_null(mkdtemp(dir));
  const char *path = write_file(dir, "creds.json", CREDS_B, 0600);
  char args[600];
  snprintf(args, sizeof(args), "--credentials %s", path);
  gbx_testserver_t *ts = ts_start(args);
  gbx_client_t *c = login(ts, "GBXNEWCOMER00001", "newcomer-secret-01234");
  CHECK_OK(gbx_queue_create(c, "jobs", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_send(c, "jobs", "x", 1, NULL, 0, 0, NULL, &e));
  static const char *const narrowed =
      "{\"principals\":["
      "{\"name\":\"newcomer\",\"access_key_id\":\"GBXNEWCOMER00001\","
      "\"secret_access_key\":\"newcomer-secret-01234\",\"policy\":{\"Version\":\"2012-10-17\","
      "\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sqs:ReceiveMessage\",\"Resource\":\"*\"}]}"
      "}"
      "]}";
  write_file(dir, "creds.json", narrowed, 0600);
  assert_int_equal(kill(ts_pid(ts), SIGHUP), 0);
  assert_true(log_wait(ts, "credentials reloaded, 1 principals"));
  assert_int_equal(gbx_queue_send(c, "jobs", "y", 1, NULL, 0, 0, NULL, &e), GBX_E_ACCESS_DENIED);
  assert_non_null(strstr(e.message, "sqs:SendMessage"));
  assert_true(log_has(ts, "audit: denied principal=newcomer action=sqs:SendMessage "
                          "resource=arn:aws:sqs:us-east-1:123456789012:jobs"));
  gbx_message_t *m = NULL;
  size_t n = 0;
  CHECK_OK(gbx_queue_receive(c, "jobs", 1, -1, 0, &m, &n, &e));
  assert_int_equal(n, 1);
  gbx_messages_free(m);
  gbx_close(c);
  ts_free(ts);
}

/* ---- bad credential files, protected mode, file modes ----------------------------------------- */

static void expect_refused(const char *dir, const char *name, const char *text, mode_t mode,
                           const char *why) {
  char args[700], err[4096];
  const char *path = text ? write_file(dir, name, text, mode) : name;
  snprintf(args, sizeof(args), "--credentials %s", path);
  gbx_testserver_t *ts = ts_try_start(args, err, sizeof(err));
  if (ts) {
    ts_free(ts);
    fail_msg("gearboxd started with credentials file %s (%s)", name, why);
  }
  if (!strstr(err, why))
    fail_msg("refusal for %s does not say '%s': %s", name, why, err);
}

static void test_bad_credential_files(void **state) {
  (void)state;
  char dir[] = "/tmp/gbx-auth-XXXXXX";
  assert_non_null(mkdtemp(dir));
  expect_refused(dir, "empty.json", "", 0600, "empty.json");
  expect_refused(dir, "obj.json", "{}", 0600, "principals");
  expect_refused(dir, "none.json", "{\"principals\": []}", 0600, "never means allow everyone");
  expect_refused(dir, "syntax.json", "{\"principals\": [\n{\"name\": }]}", 0600, "line 2");
  expect_refused(dir, "short.json",
                 "{\"principals\":[{\"name\":\"a\",\"access_key_id\":\"GBXSHORT00000001\","
                 "\"secret_access_key\":\"short\"}]}",
                 0600, "secret");
  expect_refused(
      dir, "badpolicy.json",
      "{\"principals\":[{\"name\":\"a\",\"access_key_id\":\"GBXBADPOL0000001\","
      "\"secret_access_key\":\"long-enough-secret-000\",\"policy\":{\"Statement\":"
      "[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{}}]}}]}",
      0600, "Condition");
  /* readable by others: refused however good the contents */
  expect_refused(dir, "open.json", CREDS, 0644, "chmod 600");
  expect_refused(dir, "/nonexistent/creds.json", NULL, 0, "/nonexistent/creds.json");
}

static void test_protected_mode(void **state) {
  (void)state;
  char err[4096];
  gbx_testserver_t *ts = ts_try_start("--listen 0.0.0.0:0", err, sizeof(err));
  if (ts) {
    ts_free(ts);
    fail_msg("gearboxd listened on 0.0.0.0 without credentials");
  }
  assert_non_null(strstr(err, "--allow-public-without-auth"));
  ts = ts_try_start("--http 0.0.0.0:0", err, sizeof(err));
  if (ts) {
    ts_free(ts);
    fail_msg("the HTTP face listened on 0.0.0.0 without credentials");
  }
  /* explicitly allowed: starts, warns */
  ts = ts_start("--listen 0.0.0.0:0 --allow-public-without-auth");
  assert_true(log_has(ts, "WARNING: serving 0.0.0.0 without authentication"));
  tu_assert_alive(ts);
  ts_free(ts);
  /* with credentials, a public address is fine */
  char dir[] = "/tmp/gbx-auth-XXXXXX";
  assert_non_null(mkdtemp(dir));
  const char *path = write_file(dir, "creds.json", CREDS, 0600);
  char args[700];
  snprintf(args, sizeof(args), "--listen 0.0.0.0:0 --credentials %s", path);
  ts = ts_start(args);
  gbx_client_t *c = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  gbx_close(c);
  ts_free(ts);
}

static void test_data_files_owner_only(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  gbx_client_t *c = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  CHECK_OK(gbx_queue_create(c, "q", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_send(c, "q", "x", 1, NULL, 0, 0, NULL, &e));
  gbx_close(c);
  ts_stop(ts);
  DIR *d = opendir(ts_data_dir(ts));
  assert_non_null(d);
  struct dirent *de;
  int files = 0;
  struct stat st;
  assert_int_equal(stat(ts_data_dir(ts), &st), 0);
  assert_int_equal(st.st_mode & 077, 0);
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", ts_data_dir(ts), de->d_name);
    assert_int_equal(stat(p, &st), 0);
    if (st.st_mode & 077)
      fail_msg("%s has mode %o", p, st.st_mode & 0777);
    files++;
  }
  closedir(d);
  assert_true(files > 3);
  ts_start_again(ts);
  ts_free(ts);
}

/* ---- the authorization matrix ------------------------------------------------------------ */

typedef enum {
  A_SEND,
  A_RECEIVE,
  A_DELETE,
  A_GET_ATTRS,
  A_SET_ATTRS,
  A_PURGE,
  A_CREATE,
  A_DELETE_QUEUE,
  A_PUBLISH,
  A_SUBSCRIBE,
  A_TOPIC_CREATE,
  A_STATS,
  A_SET_DLQ,
  A_NACTIONS
} act_t;

static const char *const ACT_NAME[] = {
    "send",         "receive", "delete",    "get_attrs",    "set_attrs", "purge",  "create",
    "delete_queue", "publish", "subscribe", "topic_create", "stats",     "set_dlq"};

/* Runs one action as c on resource res; returns the error code. The
 * resources exist (the admin re-creates what a test deletes). */
static int run(gbx_client_t *c, act_t a, const char *res) {
  gbx_message_t *m = NULL;
  size_t n = 0;
  gbx_queue_info_t info;
  gbx_queue_attrs_t qa = {0};
  gbx_stats_t st;
  char *sub = NULL;
  int rc;
  switch (a) {
  case A_SEND:
    return gbx_queue_send(c, res, "m", 1, NULL, 0, 0, NULL, &e);
  case A_RECEIVE:
    rc = gbx_queue_receive(c, res, 1, 0, 0, &m, &n, &e);
    gbx_messages_free(m);
    return rc;
  case A_DELETE: /* a forged receipt: allowed gives receipt_invalid */
    rc = gbx_message_delete(c, res, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &e);
    return rc == GBX_E_RECEIPT_INVALID ? GBX_E_OK : rc;
  case A_GET_ATTRS:
    rc = gbx_queue_get_attrs(c, res, &info, &e);
    if (!rc)
      gbx_queue_info_free(&info);
    return rc;
  case A_SET_ATTRS:
    qa.set = GBX_QA_VISIBILITY;
    qa.visibility_timeout = 31;
    return gbx_queue_set_attrs(c, res, &qa, &e);
  case A_PURGE:
    return gbx_queue_purge(c, res, NULL, &e);
  case A_CREATE:
    return gbx_queue_create(c, res, NULL, NULL, 0, NULL, &e);
  case A_DELETE_QUEUE:
    return gbx_queue_delete(c, res, &e);
  case A_PUBLISH:
    return gbx_publish(c, res, "p", 1, NULL, 0, NULL, NULL, NULL, &e);
  case A_SUBSCRIBE: /* res is "topic/queue" */
  {
    char t[100];
    snprintf(t, sizeof(t), "%s", res);
    char *slash = strchr(t, '/');
    *slash = 0;
    rc = gbx_subscribe(c, t, slash + 1, NULL, &sub, &e);
    gbx_free(sub);
    return rc;
  }
  case A_TOPIC_CREATE:
    return gbx_topic_create(c, res, NULL, NULL, 0, NULL, &e);
  case A_STATS:
    rc = gbx_stats(c, NULL, &st, &e);
    if (!rc)
      gbx_stats_free(&st);
    return rc;
  case A_SET_DLQ: /* res is "queue/dlq" */
  {
    char q[100];
    snprintf(q, sizeof(q), "%s", res);
    char *slash = strchr(q, '/');
    *slash = 0;
    qa.set = GBX_QA_DLQ | GBX_QA_MAX_RECEIVES;
    qa.dead_letter_queue = slash + 1;
    qa.max_receive_count = 5;
    return gbx_queue_set_attrs(c, q, &qa, &e);
  }
  case A_NACTIONS:
    break;
  }
  return -1;
}

typedef struct expect {
  const char *who;
  act_t a;
  const char *res;
  int allowed;
} expect_t;

/* The expectations, written from the policies in CREDS by hand. */
static const expect_t MATRIX[] = {
    /* admin: everything */
    {"admin", A_SEND, "billing", 1},
    {"admin", A_RECEIVE, "orders-secret", 1},
    {"admin", A_STATS, "", 1},
    {"admin", A_PUBLISH, "audit", 1},
    /* producer: send + get_attrs on orders-*, publish on events */
    {"producer", A_SEND, "orders-a", 1},
    {"producer", A_SEND, "orders-secret", 1},
    {"producer", A_SEND, "billing", 0},
    {"producer", A_GET_ATTRS, "orders-a", 1},
    {"producer", A_GET_ATTRS, "billing", 0},
    {"producer", A_RECEIVE, "orders-a", 0},
    {"producer", A_DELETE, "orders-a", 0},
    {"producer", A_SET_ATTRS, "orders-a", 0},
    {"producer", A_PURGE, "orders-a", 0},
    {"producer", A_CREATE, "orders-new", 0},
    {"producer", A_DELETE_QUEUE, "orders-a", 0},
    {"producer", A_PUBLISH, "events", 1},
    {"producer", A_PUBLISH, "audit", 0},
    {"producer", A_SUBSCRIBE, "events/orders-a", 0},
    {"producer", A_TOPIC_CREATE, "events2", 0},
    {"producer", A_STATS, "", 0},
    /* consumer: receive/delete/change-vis on orders-* except orders-secret */
    {"consumer", A_RECEIVE, "orders-a", 1},
    {"consumer", A_DELETE, "orders-a", 1},
    {"consumer", A_RECEIVE, "orders-secret", 0},
    {"consumer", A_DELETE, "orders-secret", 0},
    {"consumer", A_RECEIVE, "billing", 0},
    {"consumer", A_SEND, "orders-a", 0},
    {"consumer", A_GET_ATTRS, "orders-a", 0},
    {"consumer", A_PUBLISH, "events", 0},
    {"consumer", A_PURGE, "orders-a", 0},
    /* wiring: subscribe (and create/set attrs) but no send: the subscription
     * and the dead-letter queue write into a queue, so both are denied */
    {"wiring", A_SUBSCRIBE, "events/orders-a", 0},
    {"wiring", A_SET_ATTRS, "orders-a", 1},
    {"wiring", A_SET_DLQ, "orders-a/billing", 0},
    {"wiring", A_CREATE, "wired", 1},
    {"wiring", A_SEND, "orders-a", 0},
    /* nobody: no policy, nothing */
    {"nobody", A_SEND, "orders-a", 0},
    {"nobody", A_RECEIVE, "orders-a", 0},
    {"nobody", A_STATS, "", 0},
    {"nobody", A_CREATE, "x", 0},
    {"nobody", A_TOPIC_CREATE, "t", 0},
    {"nobody", A_PUBLISH, "events", 0},
    {"nobody", A_DELETE_QUEUE, "billing", 0},
};

static const char *key_of(const char *who) {
  if (!strcmp(who, "admin"))
    return "GBXADMIN00000001";
  if (!strcmp(who, "producer"))
    return "GBXPRODUCER00001";
  if (!strcmp(who, "consumer"))
    return "GBXCONSUMER00001";
  if (!strcmp(who, "wiring"))
    return "GBXWIRING0000001";
  return "GBXNOBODY0000001";
}

static const char *secret_of(const char *who) {
  if (!strcmp(who, "admin"))
    return "admin-secret-0123456789";
  if (!strcmp(who, "producer"))
    return "producer-secret-012345";
  if (!strcmp(who, "consumer"))
    return "consumer-secret-012345";
  if (!strcmp(who, "wiring"))
    return "wiring-secret-0123456";
  return "nobody-secret-0123456";
}

/* Creates the matrix's queues and topics (again: an allowed delete or
 * set_attrs changed them; existing with other attributes is fine). */
static void make_world(gbx_client_t *admin) {
  static const char *const qs[] = {"orders-a", "orders-secret", "billing"};
  for (size_t i = 0; i < 3; i++) {
    int rc = gbx_queue_create(admin, qs[i], NULL, NULL, 0, NULL, &e);
    if (rc && rc != GBX_E_QUEUE_EXISTS)
      fail_msg("create %s: %s", qs[i], e.message);
  }
  CHECK_OK(gbx_topic_create(admin, "events", NULL, NULL, 0, NULL, &e));
  CHECK_OK(gbx_topic_create(admin, "audit", NULL, NULL, 0, NULL, &e));
}

static void test_matrix(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  gbx_client_t *admin = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  make_world(admin);
  unsigned bad = 0, n = sizeof(MATRIX) / sizeof(MATRIX[0]);
  for (unsigned i = 0; i < n; i++) {
    const expect_t *x = &MATRIX[i];
    gbx_client_t *c = login(ts, key_of(x->who), secret_of(x->who));
    int rc = run(c, x->a, x->res);
    int allowed = rc != GBX_E_ACCESS_DENIED;
    if (allowed && rc != GBX_E_OK)
      fail_msg("%s %s %s: unexpected error %s (%s)", x->who, ACT_NAME[x->a], x->res,
               gbx_errname(rc), e.message);
    if (allowed != x->allowed) {
      fprintf(stderr, "MATRIX: %s %s %s: %s, expected %s\n", x->who, ACT_NAME[x->a], x->res,
              allowed ? "allowed" : "denied", x->allowed ? "allowed" : "denied");
      bad++;
    }
    gbx_close(c);
    make_world(admin); /* re-create what an allowed delete removed */
  }
  assert_int_equal(bad, 0);
  gbx_close(admin);
  ts_free(ts);
}

/* Lists show only what the caller may list. */
static void test_list_filtered(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  gbx_client_t *admin = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  make_world(admin);
  gbx_client_t *c = login(ts, "GBXCONSUMER00001", "consumer-secret-012345");
  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(c, NULL, 0, NULL, &l, &e));
  /* orders-* may be listed, but orders-secret is denied explicitly */
  assert_int_equal(l.count, 1);
  assert_string_equal(l.names[0], "orders-a");
  gbx_queue_list_free(&l);
  gbx_close(c);
  CHECK_OK(gbx_queue_list(admin, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 3);
  gbx_queue_list_free(&l);
  c = login(ts, "GBXNOBODY0000001", "nobody-secret-0123456");
  CHECK_OK(gbx_queue_list(c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 0);
  gbx_queue_list_free(&l);
  gbx_close(c);
  gbx_close(admin);
  ts_free(ts);
}

/* Paging never names a hidden queue: the token is the last listed name. */
static void test_list_paging_hides(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  gbx_client_t *admin = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  make_world(admin);
  static const char *const more_q[] = {"aaa-hidden", "orders-b", "zzz-hidden"};
  for (size_t i = 0; i < 3; i++)
    CHECK_OK(gbx_queue_create(admin, more_q[i], NULL, NULL, 0, NULL, &e));
  gbx_client_t *c = login(ts, "GBXCONSUMER00001", "consumer-secret-012345");
  char *next = NULL, seen[512] = "";
  for (int pages = 0; pages < 10; pages++) {
    gbx_queue_list_t l;
    CHECK_OK(gbx_queue_list(c, NULL, 1, next, &l, &e));
    for (size_t i = 0; i < l.count; i++) {
      strcat(seen, l.names[i]);
      strcat(seen, " ");
    }
    free(next);
    next = l.next ? strdup(l.next) : NULL;
    if (next && strncmp(next, "orders-", 7) != 0)
      fail_msg("page token names '%s'", next);
    if (next && !strcmp(next, "orders-secret"))
      fail_msg("page token names orders-secret");
    gbx_queue_list_free(&l);
    if (!next)
      break;
  }
  assert_null(next);
  assert_string_equal(seen, "orders-a orders-b ");
  /* a principal that may list nothing gets empty pages and no token */
  gbx_client_t *n = login(ts, "GBXNOBODY0000001", "nobody-secret-0123456");
  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(n, NULL, 1, NULL, &l, &e));
  assert_int_equal(l.count, 0);
  assert_null(l.next);
  gbx_queue_list_free(&l);
  gbx_close(n);
  gbx_close(c);
  gbx_close(admin);
  ts_free(ts);
}

/* With authentication on, a Policy attribute must be a valid resource
 * policy (a broken one would otherwise silently drop its Deny statements). */
static void test_policy_validated(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  gbx_client_t *admin = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  gbx_queue_attrs_t a = {0};
  a.set = GBX_QA_POLICY;
  a.policy = "{\"Statement\": [{\"Effect\": \"Deny\", \"Action\": \"*\"}]}";
  assert_int_equal(gbx_queue_create(admin, "pq", &a, NULL, 0, NULL, &e), GBX_E_BAD_POLICY);
  if (!strstr(e.message, "Policy"))
    fail_msg("message: %s", e.message);
  CHECK_OK(gbx_queue_create(admin, "pq", NULL, NULL, 0, NULL, &e));
  assert_int_equal(gbx_queue_set_attrs(admin, "pq", &a, &e), GBX_E_BAD_POLICY);
  /* a valid one that denies the admin: it wins over the admin's Allow-all */
  a.policy = "{\"Statement\": [{\"Effect\": \"Deny\", \"Principal\": \"*\", "
             "\"Action\": \"sqs:SendMessage\", \"Resource\": \"*\"}]}";
  CHECK_OK(gbx_queue_set_attrs(admin, "pq", &a, &e));
  assert_int_equal(gbx_queue_send(admin, "pq", "x", 1, NULL, 0, 0, NULL, &e), GBX_E_ACCESS_DENIED);
  assert_true(log_has(ts, "action=sqs:SendMessage resource=arn:aws:sqs:us-east-1:123456789012:pq"));
  a.policy = "";
  CHECK_OK(gbx_queue_set_attrs(admin, "pq", &a, &e));
  CHECK_OK(gbx_queue_send(admin, "pq", "x", 1, NULL, 0, 0, NULL, &e));
  gbx_close(admin);
  ts_free(ts);
}

/* A message move without a destination writes into the queues its messages
 * came from: each needs send permission, even one that is no longer
 * configured to use this dead-letter queue. */
static void test_move_needs_send_on_origins(void **state) {
  (void)state;
  static const char *const creds =
      "{\"principals\":["
      "{\"name\":\"admin\",\"access_key_id\":\"GBXADMIN00000001\","
      "\"secret_access_key\":\"admin-secret-0123456789\",\"policy\":" ALLOW_ALL "},"
      "{\"name\":\"mover\",\"access_key_id\":\"GBXMOVER00000001\","
      "\"secret_access_key\":\"mover-secret-012345678\",\"policy\":{\"Statement\":"
      "[{\"Effect\":\"Allow\",\"Action\":\"sqs:*MessageMoveTask*\",\"Resource\":\"dlq\"}]}}"
      "]}";
  gbx_testserver_t *ts = start_with(creds, NULL);
  gbx_client_t *admin = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  CHECK_OK(gbx_queue_create(admin, "dlq", NULL, NULL, 0, NULL, &e));
  gbx_queue_attrs_t a = {0};
  a.set = GBX_QA_DLQ | GBX_QA_MAX_RECEIVES;
  a.dead_letter_queue = "dlq";
  a.max_receive_count = 1;
  CHECK_OK(gbx_queue_create(admin, "src", &a, NULL, 0, NULL, &e));
  CHECK_OK(gbx_queue_send(admin, "src", "x", 1, NULL, 0, 0, NULL, &e));
  gbx_message_t *m = tu_recv_n(admin, "src", 1, 0, 1);
  gbx_messages_free(m);
  m = tu_recv_n(admin, "src", 1, 0, 0); /* the second receive dead-letters it */
  gbx_queue_attrs_t clear = {0};
  clear.set = GBX_QA_DLQ;
  clear.dead_letter_queue = "";
  CHECK_OK(gbx_queue_set_attrs(admin, "src", &clear, &e));
  gbx_client_t *mv = login(ts, "GBXMOVER00000001", "mover-secret-012345678");
  char *task = NULL;
  assert_int_equal(gbx_redrive_start(mv, "dlq", NULL, 0, &task, &e), GBX_E_ACCESS_DENIED);
  assert_non_null(strstr(e.message, ":src"));
  gbx_close(mv);
  gbx_close(admin);
  ts_free(ts);
}

/* A raw connection logged in as key/secret (for requests libgearbox, which
 * takes C strings, cannot make): auth_begin, then auth_prove with a proof
 * computed here. */
static int raw_login(gbx_testserver_t *ts, const char *key, const char *secret) {
  int fd = ts_raw_connect(ts);
  tu_raw_t k;
  msgpack_packer *p = tu_raw_request(&k, GBX_OP_AUTH_BEGIN, 1, 1);
  gbx_pack_kv_cstr(p, "key", key);
  assert_int_equal(ts_raw_send_frame(fd, k.b.data, (uint32_t)k.b.len), 0);
  gbx_buf_free(&k.b);
  static uint8_t buf[TU_RAW_REPLY_MAX];
  long n = ts_raw_read_frame(fd, buf, sizeof buf, 10000);
  assert_true(n > 0);
  gbx_doc_t d;
  gbx_errbuf_t eb;
  assert_int_equal(gbx_doc_parse(&d, buf, (size_t)n, &eb), GBX_E_OK);
  const char *np;
  uint32_t nl;
  assert_int_equal(gbx_get_bytes(&d.root, "nonce", 1, GBX_AUTH_NONCE, &np, &nl, NULL, &eb),
                   GBX_E_OK);
  assert_int_equal(nl, GBX_AUTH_NONCE);
  uint8_t nonce[GBX_AUTH_NONCE], cnonce[GBX_AUTH_NONCE], proof[GBX_AUTH_PROOF];
  memcpy(nonce, np, nl);
  gbx_doc_free(&d);
  assert_int_equal(gbx_auth_random(cnonce, sizeof cnonce), 0);
  assert_int_equal(gbx_auth_proof(GBX_AUTH_CLIENT, secret, strlen(secret), key, strlen(key), nonce,
                                  cnonce, proof),
                   0);
  p = tu_raw_request(&k, GBX_OP_AUTH_PROVE, 2, 2);
  gbx_pack_kv_bin(p, "cnonce", cnonce, sizeof cnonce);
  gbx_pack_kv_bin(p, "proof", proof, sizeof proof);
  assert_int_equal(ts_raw_send_frame(fd, k.b.data, (uint32_t)k.b.len), 0);
  gbx_buf_free(&k.b);
  tu_reply_t r = tu_raw_read_reply(fd);
  assert_int_equal(r.id, 2);
  assert_int_equal(r.err, GBX_E_OK);
  return fd;
}

/* Sends a principal_put (with name, key, secret of the given lengths) or,
 * when !key, a principal_delete of name on fd; returns the reply's error. */
static int raw_principal(int fd, const char *name, size_t nl, const char *key, size_t kl) {
  tu_raw_t k;
  msgpack_packer *p =
      tu_raw_request(&k, key ? GBX_OP_PRINCIPAL_PUT : GBX_OP_PRINCIPAL_DELETE, 7, key ? 3 : 1);
  gbx_pack_kv_str(p, "name", name, nl);
  if (key) {
    gbx_pack_kv_str(p, "key", key, kl);
    gbx_pack_kv_cstr(p, "secret", "nul-test-secret-0123456789");
  }
  assert_int_equal(ts_raw_send_frame(fd, k.b.data, (uint32_t)k.b.len), 0);
  gbx_buf_free(&k.b);
  tu_reply_t r = tu_raw_read_reply(fd);
  assert_int_equal(r.id, 7);
  return r.err;
}

/* Names and keys are kept as C strings: one holding a NUL is refused, so
 * "ops\0x" neither defines a principal "ops" nor deletes it. */
static void test_principal_nul(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  gbx_client_t *admin = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  CHECK_OK(
      gbx_principal_put(admin, "ops", "GBXOPS0000000001", "ops-secret-0123456789", NULL, NULL, &e));
  int fd = raw_login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  assert_int_equal(raw_principal(fd, "nul\0x", 5, "GBXNUL0000000001", 16), GBX_E_BAD_TYPE);
  assert_int_equal(raw_principal(fd, "nul", 3, "GBXNUL0\0AAAAAAAA", 16), GBX_E_BAD_TYPE);
  assert_int_equal(raw_principal(fd, "ops\0", 4, NULL, 0), GBX_E_BAD_TYPE);
  /* the raw path itself works: a clean put is accepted */
  assert_int_equal(raw_principal(fd, "clean", 5, "GBXCLEAN00000001", 16), GBX_E_OK);
  close(fd);
  gbx_principal_list_t l;
  CHECK_OK(gbx_principal_list(admin, &l, &e));
  int ops = 0, clean = 0;
  for (size_t i = 0; i < l.count; i++) {
    assert_null(strstr(l.v[i].name, "nul"));
    ops += !strcmp(l.v[i].name, "ops");
    clean += !strcmp(l.v[i].name, "clean");
  }
  assert_int_equal(ops, 1);
  assert_int_equal(clean, 1);
  gbx_principal_list_free(&l);
  gbx_close(admin);
  ts_free(ts);
}

/* Admin-defined principals: put, list (no secrets), the file wins,
 * persisted across a restart, replaced or deleted ones revoked. */
static void test_admin_principals(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  gbx_client_t *admin = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  static const char *const pol =
      "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sqs:*\",\"Resource\":\"ops-*\"}]}";
  CHECK_OK(
      gbx_principal_put(admin, "ops", "GBXOPS0000000001", "ops-secret-0123456789", NULL, pol, &e));
  /* the file wins: its names and keys cannot be taken */
  assert_int_equal(gbx_principal_put(admin, "producer", "GBXOTHER00000001", "other-secret-01234567",
                                     NULL, NULL, &e),
                   GBX_E_PRINCIPAL_CONFLICT);
  assert_int_equal(gbx_principal_put(admin, "thief", "GBXPRODUCER00001", "other-secret-01234567",
                                     NULL, NULL, &e),
                   GBX_E_PRINCIPAL_CONFLICT);
  assert_int_equal(gbx_principal_put(admin, "weak", "GBXWEAK000000001", "short", NULL, NULL, &e),
                   GBX_E_BAD_PRINCIPAL);
  assert_int_equal(gbx_principal_put(admin, "badpol", "GBXBADPOL0000001", "badpol-secret-012345",
                                     NULL, "{\"Statement\":[{\"Effect\":\"Allow\"}]}", &e),
                   GBX_E_BAD_PRINCIPAL);
  assert_int_equal(gbx_principal_delete(admin, "admin", &e), GBX_E_PRINCIPAL_CONFLICT);
  assert_int_equal(gbx_principal_delete(admin, "nosuch", &e), GBX_E_PRINCIPAL_NOT_FOUND);
  /* only principals allowed to manage principals may */
  gbx_client_t *prod = login(ts, "GBXPRODUCER00001", "producer-secret-012345");
  assert_int_equal(
      gbx_principal_put(prod, "mine", "GBXMINE000000001", "mine-secret-0123456789", NULL, NULL, &e),
      GBX_E_ACCESS_DENIED);
  gbx_principal_list_t l;
  assert_int_equal(gbx_principal_list(prod, &l, &e), GBX_E_ACCESS_DENIED);
  gbx_close(prod);
  CHECK_OK(gbx_principal_list(admin, &l, &e));
  assert_int_equal(l.count, 6);
  int found = 0;
  for (size_t i = 0; i < l.count; i++)
    if (!strcmp(l.v[i].name, "ops")) {
      found = 1;
      assert_string_equal(l.v[i].source, "admin");
      assert_string_equal(l.v[i].key, "GBXOPS0000000001");
      assert_non_null(strstr(l.v[i].policy, "ops-*"));
    } else {
      assert_string_equal(l.v[i].source, "file");
    }
  assert_true(found);
  gbx_principal_list_free(&l);
  /* the new principal works, within its policy */
  gbx_client_t *ops = login(ts, "GBXOPS0000000001", "ops-secret-0123456789");
  CHECK_OK(gbx_queue_create(ops, "ops-q", NULL, NULL, 0, NULL, &e));
  assert_int_equal(gbx_queue_create(ops, "other-q", NULL, NULL, 0, NULL, &e), GBX_E_ACCESS_DENIED);
  gbx_close(ops);
  gbx_close(admin);
  /* it survives a restart */
  ts_restart(ts);
  admin = login(ts, "GBXADMIN00000001", "admin-secret-0123456789");
  ops = login(ts, "GBXOPS0000000001", "ops-secret-0123456789");
  CHECK_OK(gbx_queue_send(ops, "ops-q", "x", 1, NULL, 0, 0, NULL, &e));
  /* a new secret revokes the open connection */
  CHECK_OK(gbx_principal_put(admin, "ops", "GBXOPS0000000001", "ops-secret-rotated-0001", NULL, pol,
                             &e));
  assert_int_equal(gbx_queue_send(ops, "ops-q", "x", 1, NULL, 0, 0, NULL, &e), GBX_E_AUTH_REVOKED);
  gbx_close(ops);
  ops = login(ts, "GBXOPS0000000001", "ops-secret-rotated-0001");
  gbx_close(ops);
  /* deleted: no login */
  CHECK_OK(gbx_principal_delete(admin, "ops", &e));
  gbx_client_t *c = tu_connect(ts);
  assert_int_equal(gbx_auth(c, "GBXOPS0000000001", "ops-secret-rotated-0001", NULL, &e),
                   GBX_E_AUTH_FAILED);
  gbx_close(c);
  /* the CLI lists them too */
  char out[4096];
  setenv("GEARBOX_ACCESS_KEY_ID", "GBXADMIN00000001", 1);
  setenv("GEARBOX_SECRET_ACCESS_KEY", "admin-secret-0123456789", 1);
  setenv("GEARBOX_PRINCIPAL_SECRET", "cli-made-secret-0123456", 1);
  assert_int_equal(ts_cli(ts, "principal put clio --key GBXCLIO000000001", out, sizeof(out)), 0);
  assert_int_equal(ts_cli(ts, "principal list", out, sizeof(out)), 0);
  assert_non_null(strstr(out, "clio\tGBXCLIO000000001"));
  assert_null(strstr(out, "secret"));
  unsetenv("GEARBOX_ACCESS_KEY_ID");
  unsetenv("GEARBOX_SECRET_ACCESS_KEY");
  unsetenv("GEARBOX_PRINCIPAL_SECRET");
  c = login(ts, "GBXCLIO000000001", "cli-made-secret-0123456");
  gbx_close(c);
  gbx_close(admin);
  ts_free(ts);
}

/* The CLI authenticates from GEARBOX_ACCESS_KEY_ID / _SECRET_ACCESS_KEY. */
static void test_cli_credentials(void **state) {
  (void)state;
  gbx_testserver_t *ts = start_with(CREDS, NULL);
  char out[4096];
  unsetenv("GEARBOX_ACCESS_KEY_ID");
  unsetenv("GEARBOX_SECRET_ACCESS_KEY");
  assert_int_equal(ts_cli(ts, "queue create jobs", out, sizeof(out)), 1);
  setenv("GEARBOX_ACCESS_KEY_ID", "GBXADMIN00000001", 1);
  setenv("GEARBOX_SECRET_ACCESS_KEY", "admin-secret-0123456789", 1);
  assert_int_equal(ts_cli(ts, "queue create jobs", out, sizeof(out)), 0);
  setenv("GEARBOX_ACCESS_KEY_ID", "GBXPRODUCER00001", 1);
  setenv("GEARBOX_SECRET_ACCESS_KEY", "producer-secret-012345", 1);
  assert_int_equal(ts_cli(ts, "queue delete jobs", out, sizeof(out)), 1);
  setenv("GEARBOX_SECRET_ACCESS_KEY", "wrong-secret-000000000", 1);
  assert_int_equal(ts_cli(ts, "queue list", out, sizeof(out)), 1);
  unsetenv("GEARBOX_ACCESS_KEY_ID");
  unsetenv("GEARBOX_SECRET_ACCESS_KEY");
  ts_free(ts);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake),
      cmocka_unit_test(test_no_credentials),
      cmocka_unit_test(test_preauth_frame_cap),
      cmocka_unit_test(test_handshake_deadline),
      cmocka_unit_test(test_failures_throttled),
      cmocka_unit_test(test_reload_revokes),
      cmocka_unit_test(test_reload_policy_change),
      cmocka_unit_test(test_bad_credential_files),
      cmocka_unit_test(test_protected_mode),
      cmocka_unit_test(test_data_files_owner_only),
      cmocka_unit_test(test_matrix),
      cmocka_unit_test(test_list_filtered),
      cmocka_unit_test(test_list_paging_hides),
      cmocka_unit_test(test_policy_validated),
      cmocka_unit_test(test_move_needs_send_on_origins),
      cmocka_unit_test(test_cli_credentials),
      cmocka_unit_test(test_admin_principals),
      cmocka_unit_test(test_principal_nul),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
