/* test_cli.c - integration tests of the gearbox command-line tool against the
 * real gearboxd: queue create/stats, send (argument and stdin), receive with
 * --delete, --json output that parses, and exit codes (0 ok, 1 server or
 * connection error, 2 usage). What the CLI did is checked through libgearbox.
 * Each test starts its own server. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#ifndef GBX_CLI_PATH
#define GBX_CLI_PATH ""
#endif

/* CLI output in these tests is a few KiB at most. */
#define OUT_MAX (64 * 1024)
/* Words of a CLI command line run with stdin (run_stdin). */
#define MAX_WORDS 16

static gbx_error_t e;
static char out[OUT_MAX];

/* Runs the CLI and fails unless it exits with want; stdout lands in out. */
static void cli_expect(gbx_testserver_t *ts, int want, const char *args) {
  int rc = ts_cli(ts, args, out, sizeof out);
  if (rc != want)
    fail_msg("gearbox %s: exit %d, want %d; stdout:\n%s", args, rc, want, out);
}

/* Runs the CLI with "--port P" and words, feeding input[0..len) on stdin;
 * stdout lands in out. Returns the exit code. (ts_cli gives the CLI
 * /dev/null as stdin.) */
static int run_stdin(gbx_testserver_t *ts, const char *const *words, const void *input,
                     size_t len) {
  if (!GBX_CLI_PATH[0])
    fail_msg("the gearbox CLI was not built");
  char port[16];
  snprintf(port, sizeof port, "%u", ts_port(ts));
  const char *argv[MAX_WORDS + 4] = {GBX_CLI_PATH, "--port", port};
  size_t n = 3;
  for (size_t i = 0; words[i]; i++) {
    assert_true(n < MAX_WORDS + 3);
    argv[n++] = words[i];
  }
  argv[n] = NULL;
  int in[2], outp[2];
  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  assert_int_equal(pipe2(outp, O_CLOEXEC), 0);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(outp[1], 1);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(in[0]);
  close(outp[1]);
  /* write all of stdin first: the CLI reads it to the end before it prints */
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  const uint8_t *p = input;
  while (len) {
    ssize_t w = write(in[1], p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break; /* the CLI stopped reading: its exit code tells why */
    p += w;
    len -= (size_t)w;
  }
  close(in[1]);
  signal(SIGPIPE, old);
  size_t used = 0;
  for (;;) {
    ssize_t r = read(outp[0], out + used, sizeof out - 1 - used);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    used += (size_t)r;
    if (used == sizeof out - 1)
      break;
  }
  out[used] = 0;
  close(outp[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Strips trailing whitespace in place. */
static char *trim(char *s) {
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1]))
    s[--n] = 0;
  return s;
}

static void expect_in(const char *hay, const char *needle) {
  if (!strstr(hay, needle))
    fail_msg("'%s' not found in:\n%s", needle, hay);
}

/* ---- JSON: a strict well-formedness check and a compact form -------------------- */

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

static const char *json_string(const char *p) {
  if (*p++ != '"')
    return NULL;
  while (*p != '"') {
    if ((unsigned char)*p < 0x20)
      return NULL; /* raw control characters (and the end) */
    if (*p == '\\') {
      p++;
      if (*p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!isxdigit((unsigned char)p[i]))
            return NULL;
        p += 4;
      } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
        return NULL;
      }
    }
    p++;
  }
  return p + 1;
}

static const char *json_number(const char *p) {
  const char *s = p;
  if (*p == '-')
    p++;
  if (!isdigit((unsigned char)*p))
    return NULL;
  while (isdigit((unsigned char)*p))
    p++;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p))
      return NULL;
    while (isdigit((unsigned char)*p))
      p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (!isdigit((unsigned char)*p))
      return NULL;
    while (isdigit((unsigned char)*p))
      p++;
  }
  return p > s ? p : NULL;
}

static const char *json_container(const char *p, int depth, char close, int keyed) {
  p = json_ws(p + 1);
  if (*p == close)
    return p + 1;
  for (;;) {
    if (keyed) {
      if (!(p = json_string(json_ws(p))))
        return NULL;
      p = json_ws(p);
      if (*p++ != ':')
        return NULL;
    }
    if (!(p = json_value(p, depth + 1)))
      return NULL;
    p = json_ws(p);
    if (*p == close)
      return p + 1;
    if (*p++ != ',')
      return NULL;
  }
}

static const char *json_value(const char *p, int depth) {
  if (depth > 64)
    return NULL;
  p = json_ws(p);
  switch (*p) {
  case '{':
    return json_container(p, depth, '}', 1);
  case '[':
    return json_container(p, depth, ']', 0);
  case '"':
    return json_string(p);
  case 't':
    return strncmp(p, "true", 4) ? NULL : p + 4;
  case 'f':
    return strncmp(p, "false", 5) ? NULL : p + 5;
  case 'n':
    return strncmp(p, "null", 4) ? NULL : p + 4;
  default:
    return json_number(p);
  }
}

/* Fails unless s is exactly one JSON value (whitespace around it allowed). */
static void assert_json(const char *s) {
  const char *end = json_value(s, 0);
  if (!end || *json_ws(end))
    fail_msg("not valid JSON:\n%s", s);
}

/* s without whitespace outside strings, for substring checks. */
static char *json_compact(const char *s) {
  char *c = malloc(strlen(s) + 1), *o = c;
  assert_non_null(c);
  int in = 0;
  for (const char *p = s; *p; p++) {
    if (in) {
      *o++ = *p;
      if (*p == '\\' && p[1])
        *o++ = *++p;
      else if (*p == '"')
        in = 0;
    } else if (!isspace((unsigned char)*p)) {
      *o++ = *p;
      if (*p == '"')
        in = 1;
    }
  }
  *o = 0;
  return c;
}

static void expect_json_has(const char *json, const char *compact_needle) {
  char *c = json_compact(json);
  if (!strstr(c, compact_needle))
    fail_msg("'%s' not found in JSON:\n%s", compact_needle, json);
  free(c);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_cli_queue_create(void **state) {
  tu_fx_t *f = *state;
  cli_expect(f->ts, 0, "queue create jobs --visibility 45 --max-receives 3 --tag env=prod");
  expect_in(out, "created");
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(f->c, "jobs", &info, &e));
  assert_int_equal(info.attrs.visibility_timeout, 45);
  assert_int_equal(info.attrs.max_receive_count, 3);
  assert_int_equal(info.ntags, 1);
  assert_string_equal(info.tags[0].key, "env");
  assert_string_equal(info.tags[0].value, "prod");
  gbx_queue_info_free(&info);
  /* the same again: fine, and it says so */
  cli_expect(f->ts, 0, "queue create jobs --visibility 45 --max-receives 3");
  expect_in(out, "exists");
  /* different attributes: a server error, nothing on stdout */
  cli_expect(f->ts, 1, "queue create jobs --visibility 46");
  assert_string_equal(out, "");
  /* --json, before or after the command */
  cli_expect(f->ts, 0, "--json queue create j2 --delay 5");
  assert_json(out);
  expect_json_has(out, "\"created\":true");
  cli_expect(f->ts, 0, "queue create j2 --delay 5 --json");
  assert_json(out);
  expect_json_has(out, "\"created\":false");
  CHECK_OK(gbx_queue_get_attrs(f->c, "j2", &info, &e));
  assert_int_equal(info.attrs.delay_seconds, 5);
  gbx_queue_info_free(&info);
  /* a policy with spaces and quotes, passed as one word */
  cli_expect(f->ts, 0, "queue create pol --policy '{\"Statement\": []}'");
  CHECK_OK(gbx_queue_get_attrs(f->c, "pol", &info, &e));
  assert_string_equal(info.attrs.policy, "{\"Statement\": []}");
  gbx_queue_info_free(&info);
}

static void test_cli_send_argument(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "jobs", NULL, NULL, 0, NULL, &e));
  cli_expect(f->ts, 0,
             "send jobs 'hello world' --attr color=String:red --attr ratio=Number.float:1.5 "
             "--attr raw=Binary:AAEC");
  char mid[64];
  snprintf(mid, sizeof mid, "%s", trim(out));
  if (!tu_is_uuid(mid))
    fail_msg("send printed '%s', not a message id", out);
  gbx_message_t *m;
  size_t n;
  CHECK_OK(gbx_queue_receive(f->c, "jobs", 10, 60, 0, &m, &n, &e));
  assert_int_equal(n, 1);
  assert_string_equal(m[0].mid, mid);
  assert_int_equal(m[0].body_len, 11);
  assert_memory_equal(m[0].body, "hello world", 11);
  assert_int_equal(m[0].nattrs, 3);
  int seen = 0;
  for (size_t i = 0; i < m[0].nattrs; i++) {
    const gbx_msg_attr_t *a = &m[0].attrs[i];
    if (!strcmp(a->name, "color")) {
      assert_string_equal(a->type, "String");
      assert_string_equal((const char *)a->value, "red");
      seen |= 1;
    } else if (!strcmp(a->name, "ratio")) {
      assert_string_equal(a->type, "Number.float");
      assert_string_equal((const char *)a->value, "1.5");
      seen |= 2;
    } else if (!strcmp(a->name, "raw")) {
      assert_string_equal(a->type, "Binary");
      assert_int_equal(a->value_len, 3);
      assert_memory_equal(a->value, "\0\1\2", 3);
      seen |= 4;
    }
  }
  assert_int_equal(seen, 7);
  gbx_messages_free(m);

  /* --json prints the id as JSON; --delay delays it */
  cli_expect(f->ts, 0, "--json send jobs later --delay 600");
  assert_json(out);
  expect_json_has(out, "\"mid\":\"");
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(f->c, "jobs", &info, &e));
  assert_int_equal(info.delayed, 1);
  gbx_queue_info_free(&info);
  /* a bad attribute is refused by the server: exit 1, nothing stored */
  cli_expect(f->ts, 1, "send jobs x --attr AWS.nope=String:v");
  cli_expect(f->ts, 1, "send jobs x --attr n=Number:abc");
  CHECK_OK(gbx_queue_get_attrs(f->c, "jobs", &info, &e));
  assert_int_equal(info.visible + info.not_visible + info.delayed, 2);
  gbx_queue_info_free(&info);
}

static void test_cli_send_stdin(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "in", NULL, NULL, 0, NULL, &e));
  static const uint8_t body[] = "line one\nline two\0\x01\xff tail";
  const char *w1[] = {"send", "in", NULL};
  assert_int_equal(run_stdin(f->ts, w1, body, sizeof body - 1), 0);
  char mid1[64];
  snprintf(mid1, sizeof mid1, "%s", trim(out));
  assert_true(tu_is_uuid(mid1));
  const char *w2[] = {"send", "in", "-", "--json", NULL};
  assert_int_equal(run_stdin(f->ts, w2, "dash", 4), 0);
  assert_json(out);
  /* a larger body read in several chunks */
  size_t big = 300 * 1000;
  uint8_t *b = malloc(big);
  assert_non_null(b);
  for (size_t i = 0; i < big; i++)
    b[i] = (uint8_t)(i * 31 + 7);
  assert_int_equal(run_stdin(f->ts, w1, b, big), 0);

  gbx_message_t *m;
  size_t n;
  CHECK_OK(gbx_queue_receive(f->c, "in", 10, 60, 0, &m, &n, &e));
  assert_int_equal(n, 3);
  assert_string_equal(m[0].mid, mid1);
  assert_int_equal(m[0].body_len, sizeof body - 1);
  assert_memory_equal(m[0].body, body, sizeof body - 1);
  assert_int_equal(m[1].body_len, 4);
  assert_memory_equal(m[1].body, "dash", 4);
  assert_int_equal(m[2].body_len, big);
  assert_memory_equal(m[2].body, b, big);
  gbx_messages_free(m);

  /* over 1 MiB on stdin: refused, nothing stored */
  size_t over = 1024 * 1024 + 1;
  uint8_t *o = calloc(1, over);
  assert_non_null(o);
  int rc = run_stdin(f->ts, w1, o, over);
  assert_true(rc == 1 || rc == 2);
  free(o);
  free(b);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(f->c, "in", &info, &e));
  assert_int_equal(info.visible + info.not_visible, 3);
  gbx_queue_info_free(&info);
}

static void test_cli_receive_delete(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "r", NULL, NULL, 0, NULL, &e));
  char mid[GBX_MID_BUFSZ];
  CHECK_OK(gbx_queue_send(f->c, "r", "first message", 13, NULL, 0, -1, mid, &e));
  cli_expect(f->ts, 0, "receive r --delete");
  expect_in(out, "first message");
  expect_in(out, mid);
  gbx_queue_info_t info;
  CHECK_OK(gbx_queue_get_attrs(f->c, "r", &info, &e));
  assert_int_equal(info.visible + info.not_visible, 0);
  gbx_queue_info_free(&info);
  /* an empty queue: success, no message printed */
  cli_expect(f->ts, 0, "receive r");
  assert_null(strstr(out, "first message"));

  /* without --delete the message stays, in flight */
  CHECK_OK(gbx_queue_send(f->c, "r", "kept", 4, NULL, 0, -1, NULL, &e));
  cli_expect(f->ts, 0, "receive r --visibility 600");
  expect_in(out, "kept");
  CHECK_OK(gbx_queue_get_attrs(f->c, "r", &info, &e));
  assert_int_equal(info.not_visible, 1);
  gbx_queue_info_free(&info);

  /* several at once as JSON, a binary body among them, all deleted */
  char mids[3][GBX_MID_BUFSZ];
  CHECK_OK(gbx_queue_send(f->c, "r", "text one", 8, NULL, 0, -1, mids[0], &e));
  CHECK_OK(gbx_queue_send(f->c, "r", "\xff\xfe\x00", 3, NULL, 0, -1, mids[1], &e));
  gbx_msg_attr_t a = {"k", "String", "v", 1};
  CHECK_OK(gbx_queue_send(f->c, "r", "text three", 10, &a, 1, -1, mids[2], &e));
  cli_expect(f->ts, 0, "--json receive r --max 10 --delete");
  assert_json(out);
  for (int i = 0; i < 3; i++)
    expect_in(out, mids[i]);
  expect_json_has(out, "\"body\":\"text one\"");
  expect_json_has(out, "\"body_base64\":\"//4A\"");
  CHECK_OK(gbx_queue_get_attrs(f->c, "r", &info, &e));
  assert_int_equal(info.visible, 0);
  assert_int_equal(info.not_visible, 1); /* only "kept" */
  gbx_queue_info_free(&info);
}

static void test_cli_queue_stats(void **state) {
  tu_fx_t *f = *state;
  gbx_queue_attrs_t at = {.set = GBX_QA_VISIBILITY, .visibility_timeout = 45};
  gbx_tag_t tag = {"env", "prod"};
  CHECK_OK(gbx_queue_create(f->c, "s", &at, &tag, 1, NULL, &e));
  CHECK_OK(gbx_queue_send(f->c, "s", "12345", 5, NULL, 0, -1, NULL, &e));
  CHECK_OK(gbx_queue_send(f->c, "s", "678", 3, NULL, 0, -1, NULL, &e));
  cli_expect(f->ts, 0, "queue stats s");
  expect_in(out, "VisibilityTimeout");
  expect_in(out, "45");
  expect_in(out, "ApproximateNumberOfMessages");
  expect_in(out, "QueueBytes");
  expect_in(out, "prod");
  cli_expect(f->ts, 0, "--json queue stats s");
  assert_json(out);
  expect_json_has(out, "\"VisibilityTimeout\":45");
  expect_json_has(out, "\"ApproximateNumberOfMessages\":2");
  expect_json_has(out, "\"QueueBytes\":8");
  expect_json_has(out, "\"env\":\"prod\"");
  /* broker stats and the queue list as JSON */
  cli_expect(f->ts, 0, "--json stats");
  assert_json(out);
  expect_json_has(out, "\"messages\":2");
  expect_json_has(out, "\"msgs_per_sync\":");
  cli_expect(f->ts, 0, "--json queue list");
  assert_json(out);
  expect_json_has(out, "[\"s\"]");
  cli_expect(f->ts, 0, "queue list");
  assert_string_equal(trim(out), "s");
}

static void test_cli_exit_codes(void **state) {
  tu_fx_t *f = *state;
  CHECK_OK(gbx_queue_create(f->c, "q", NULL, NULL, 0, NULL, &e));
  cli_expect(f->ts, 0, "ping");
  /* server errors: 1, and nothing on stdout */
  cli_expect(f->ts, 1, "queue stats nope");
  assert_string_equal(out, "");
  cli_expect(f->ts, 1, "send nope body");
  cli_expect(f->ts, 1, "receive nope");
  cli_expect(f->ts, 1, "queue create bad.name");
  cli_expect(f->ts, 1, "--json queue stats nope");
  assert_string_equal(out, "");
  /* usage errors: 2 */
  cli_expect(f->ts, 2, "bogus");
  cli_expect(f->ts, 2, "queue");
  cli_expect(f->ts, 2, "queue create");
  cli_expect(f->ts, 2, "queue create x --visibility abc");
  cli_expect(f->ts, 2, "queue create x --no-such-option");
  cli_expect(f->ts, 2, "send");
  cli_expect(f->ts, 2, "receive q --max many");
  cli_expect(f->ts, 2, "queue stats q extra-word");
  /* none of the refused commands created anything */
  gbx_queue_list_t l;
  CHECK_OK(gbx_queue_list(f->c, NULL, 0, NULL, &l, &e));
  assert_int_equal(l.count, 1);
  gbx_queue_list_free(&l);
  /* --help is not an error */
  cli_expect(f->ts, 0, "--help");
  expect_in(out, "queue create");
  /* no server: a connection error is 1 */
  gbx_close(f->c);
  f->c = NULL;
  assert_int_equal(ts_stop(f->ts), 0);
  cli_expect(f->ts, 1, "--timeout 5000 ping");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup, tu_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_cli_queue_create),   T(test_cli_send_argument), T(test_cli_send_stdin),
      T(test_cli_receive_delete), T(test_cli_queue_stats),   T(test_cli_exit_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
