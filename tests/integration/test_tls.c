/* test_tls.c - gearboxd with --tls-cert/--tls-key: libgearbox (blocking and
 * pipelined) and the CLI over TLS, openssl s_client's verdict, certificate
 * and name verification (refused, and accepted only when turned off), a
 * plain-text client refused cleanly, the pre-handshake cap, a bad
 * certificate refusing the start, and the AWS face over HTTPS (curl).
 *
 * The CA, a certificate for localhost (SAN DNS:localhost, IP:127.0.0.1) and
 * one for other.example are made with the openssl CLI at run time in a
 * temp dir; no key is committed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

#include "testserver.h"

static char dir[256];      /* the certificates' temp dir */
static char tls_args[768]; /* --tls-cert/--tls-key for localhost */
static char ca[300];
static gbx_testserver_t *srv;   /* localhost certificate */
static gbx_testserver_t *other; /* other.example certificate */

/* Runs a shell command; returns its exit status (-1 if it did not exit). */
static int sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Reads a whole (small) file into buf; returns buf ("" if unreadable). */
static char *slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
  buf[n] = 0;
  if (f)
    fclose(f);
  return buf;
}

/* A key and a certificate named name, signed by the CA, for subject CN
 * cn with subjectAltName san. */
static int make_cert(const char *name, const char *cn, const char *san) {
  return sh("cd %s && printf 'subjectAltName=%s\\n' > %s.ext && "
            "openssl req -newkey rsa:2048 -nodes -keyout %s.key -out %s.csr -subj '/CN=%s' "
            ">/dev/null 2>&1 && "
            "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
            "-out %s.pem -extfile %s.ext >/dev/null 2>&1",
            dir, san, name, name, name, cn, name, name, name);
}

static int group_setup(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/gbx-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir))
    return -1;
  if (sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
         "-days 2 -subj '/CN=Gearbox Test CA' >/dev/null 2>&1",
         dir) != 0 ||
      make_cert("localhost", "localhost", "DNS:localhost,IP:127.0.0.1") != 0 ||
      make_cert("other", "other.example", "DNS:other.example")) {
    fprintf(stderr, "cannot make test certificates with the openssl CLI in %s\n", dir);
    return -1;
  }
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(tls_args, sizeof tls_args, "--tls-cert %s/localhost.pem --tls-key %s/localhost.key", dir,
           dir);
  srv = ts_start(tls_args);
  char o[768];
  snprintf(o, sizeof o, "--tls-cert %s/other.pem --tls-key %s/other.key", dir, dir);
  other = ts_start(o);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  ts_free(srv);
  ts_free(other);
  if (!getenv("GBX_TEST_KEEP"))
    sh("rm -rf %s", dir);
  return 0;
}

static gbx_client_t *tls_connect(gbx_testserver_t *ts, const char *host, const gbx_tls_opts_t *o) {
  gbx_error_t err = {0};
  gbx_client_t *c = gbx_connect_tls(host, ts_port(ts), o, &err);
  if (!c)
    fail_msg("gbx_connect_tls %s:%u: %s: %s", host, ts_port(ts), gbx_errname(err.code),
             err.message);
  gbx_set_timeout(c, TS_TIMEOUT_MS);
  return c;
}

/* The HTTP face's port, from the server's log line "... HTTP API on
 * 127.0.0.1:N (HTTPS)". */
static int http_port(gbx_testserver_t *ts) {
  static char log[16384];
  slurp(ts_log_path(ts), log, sizeof log);
  const char *p = strstr(log, "HTTP API on 127.0.0.1:");
  assert_non_null(p);
  assert_non_null(strstr(p, "(HTTPS)"));
  return atoi(p + strlen("HTTP API on 127.0.0.1:"));
}

/* ---- libgearbox over TLS ---- */

static void test_lib_blocking(void **state) {
  (void)state;
  gbx_tls_opts_t o = {.ca_file = ca};
  gbx_error_t err;
  char mid[GBX_MID_BUFSZ];
  gbx_message_t *m = NULL;
  size_t n = 0;
  /* by address (checked against the IP SAN) and by name (DNS SAN) */
  gbx_client_t *c = tls_connect(srv, "127.0.0.1", &o);
  gbx_client_t *c2 = tls_connect(srv, "localhost", &o);
  assert_int_equal(gbx_queue_create(c, "tq", NULL, NULL, 0, NULL, &err), 0);
  assert_int_equal(gbx_queue_send(c2, "tq", "over tls", 8, NULL, 0, 0, mid, &err), 0);
  /* a body of many TLS records (16 KiB each) both ways */
  size_t big = 200 * 1024;
  char *body = malloc(big);
  assert_non_null(body);
  for (size_t i = 0; i < big; i++)
    body[i] = (char)('a' + i % 26);
  assert_int_equal(gbx_queue_send(c, "tq", body, big, NULL, 0, 0, NULL, &err), 0);
  assert_int_equal(gbx_queue_receive(c, "tq", 10, 30, 1, &m, &n, &err), 0);
  assert_int_equal(n, 2);
  assert_int_equal(m[0].body_len, 8);
  assert_memory_equal(m[0].body, "over tls", 8);
  assert_string_equal(m[0].mid, mid);
  assert_int_equal(m[1].body_len, big);
  assert_memory_equal(m[1].body, body, big);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(gbx_message_delete(c2, "tq", m[i].receipt, &err), 0);
  gbx_messages_free(m);
  free(body);
  assert_int_equal(gbx_queue_delete(c, "tq", &err), 0);
  gbx_close(c);
  gbx_close(c2);
}

static void test_lib_pipelined(void **state) {
  (void)state;
  enum { N = 2000 };
  gbx_tls_opts_t o = {.ca_file = ca, .server_name = "localhost"};
  gbx_error_t err;
  char body[300];
  gbx_client_t *c = tls_connect(srv, "127.0.0.1", &o);
  assert_int_equal(gbx_queue_create(c, "pq", NULL, NULL, 0, NULL, &err), 0);
  memset(body, 'p', sizeof body);
  /* 2,000 x 300 bytes: several pipeline flushes of 64 KiB, many records */
  for (int i = 0; i < N; i++) {
    snprintf(body, sizeof body, "%06d", i);
    body[6] = 'p';
    assert_true(gbx_submit_send(c, "pq", body, sizeof body, NULL, 0, 0, &err) > 0);
  }
  int ok = 0;
  for (int i = 0; i < N; i++) {
    gbx_reply_t *r;
    char mid[GBX_MID_BUFSZ];
    assert_int_equal(gbx_collect(c, &r, &err), 0);
    if (gbx_reply_mid(r, mid, &err) == 0)
      ok++;
    gbx_reply_free(r);
  }
  assert_int_equal(ok, N);
  assert_int_equal(gbx_pending(c), 0);
  size_t got = 0;
  while (got < N) {
    gbx_message_t *m;
    size_t n;
    assert_int_equal(gbx_queue_receive(c, "pq", 10, 60, 0, &m, &n, &err), 0);
    assert_true(n > 0);
    got += n;
    gbx_messages_free(m);
  }
  assert_int_equal(got, N);
  assert_int_equal(gbx_queue_delete(c, "pq", &err), 0);
  gbx_close(c);
}

/* ---- openssl s_client ---- */

static void test_s_client(void **state) {
  (void)state;
  char out[16384], path[300];
  snprintf(path, sizeof path, "%s/s_client.out", dir);
  int rc = sh("openssl s_client -connect 127.0.0.1:%u -CAfile %s -verify_return_error "
              "</dev/null >%s 2>&1",
              ts_port(srv), ca, path);
  slurp(path, out, sizeof out);
  if (rc != 0 || !strstr(out, "Verify return code: 0 (ok)"))
    fail_msg("s_client exit %d:\n%s", rc, out);
  /* the other server's certificate does not name 127.0.0.1 */
  rc = sh("openssl s_client -connect 127.0.0.1:%u -CAfile %s -verify_return_error "
          "-verify_ip 127.0.0.1 </dev/null >%s 2>&1",
          ts_port(other), ca, path);
  assert_int_not_equal(rc, 0);
}

/* ---- refusals ---- */

static void test_plaintext_client_refused(void **state) {
  (void)state;
  gbx_error_t err = {0};
  gbx_client_t *p = gbx_connect("127.0.0.1", ts_port(srv), &err);
  assert_non_null(p); /* TCP connects */
  gbx_set_timeout(p, TS_TIMEOUT_MS);
  int rc = gbx_ping(p, &err);
  assert_int_not_equal(rc, 0); /* the server answers no plain text */
  assert_false(gbx_is_open(p));
  gbx_close(p);

  /* a client that never completes a handshake is cut off after 16 KiB: a
   * handshake record header announcing the largest record, then zeros */
  int fd = ts_raw_connect(srv);
  static uint8_t junk[20 * 1024];
  junk[0] = 0x16, junk[1] = 0x03, junk[2] = 0x01, junk[3] = 0x40, junk[4] = 0x00;
  ts_raw_send(fd, junk, sizeof junk); /* may fail once the server hung up */
  assert_int_equal(ts_raw_wait_eof(fd, TS_TIMEOUT_MS), 1);
  close(fd);

  /* the server logged the peer and OpenSSL's reason, and still serves */
  char log[65536];
  slurp(ts_log_path(srv), log, sizeof log);
  assert_non_null(strstr(log, "closing connection 127.0.0.1:"));
  assert_non_null(strstr(log, ": TLS: "));
  gbx_tls_opts_t o = {.ca_file = ca};
  gbx_client_t *c = tls_connect(srv, "127.0.0.1", &o);
  assert_int_equal(gbx_ping(c, &err), 0);
  gbx_close(c);
}

/* The peak virtual size of process pid, in KiB (VmPeak), or -1. */
static long vm_peak_kib(pid_t pid) {
  char path[64], buf[8192];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  const char *p = strstr(slurp(path, buf, sizeof buf), "VmPeak:");
  return p ? atol(p + strlen("VmPeak:")) : -1;
}

/* A frame header announcing 4 GiB, then 200 KiB, sent at once over TLS:
 * TLS decrypts several chunks before the header is checked, and the read
 * buffer must not be sized by it first (it was: a 4 GiB realloc per
 * connection, seen as VmPeak). The connection is cut, the server serves. */
static void test_oversized_frame_header(void **state) {
  (void)state;
  char in[300], out[300];
  snprintf(in, sizeof in, "%s/huge-frame.bin", dir);
  snprintf(out, sizeof out, "%s/huge-frame.out", dir);
  assert_int_equal(sh("{ printf '\\377\\377\\377\\377'; head -c 204800 /dev/zero; } > %s", in), 0);
  long before = vm_peak_kib(ts_pid(srv));
  assert_true(before > 0);
  /* -quiet ignores stdin's end: s_client returns because the server hung up
   * (the error reply may be lost to the reset of the unread data) */
  for (int i = 0; i < 8; i++) { /* whether one read holds it all is up to TCP: try a few */
    int rc =
        sh("timeout 20 openssl s_client -quiet -connect 127.0.0.1:%u -CAfile %s < %s > %s 2>&1",
           ts_port(srv), ca, in, out);
    assert_int_not_equal(rc, 124);
  }
  long after = vm_peak_kib(ts_pid(srv));
  if (after - before > 512 * 1024)
    fail_msg("VmPeak grew from %ld to %ld KiB", before, after);
  gbx_error_t err = {0};
  gbx_tls_opts_t o = {.ca_file = ca};
  gbx_client_t *c = tls_connect(srv, "127.0.0.1", &o);
  assert_int_equal(gbx_ping(c, &err), 0);
  gbx_close(c);
}

static void test_wrong_name_refused(void **state) {
  (void)state;
  gbx_error_t err = {0};
  gbx_tls_opts_t o = {.ca_file = ca};
  /* other.example's certificate, reached as 127.0.0.1 and as localhost */
  assert_null(gbx_connect_tls("127.0.0.1", ts_port(other), &o, &err));
  assert_int_equal(err.code, GBX_E_TLS);
  assert_non_null(strstr(err.message, "certificate verification failed"));
  assert_null(gbx_connect_tls("localhost", ts_port(other), &o, &err));
  assert_int_equal(err.code, GBX_E_TLS);
  assert_non_null(strcasestr(err.message, "hostname mismatch"));
  /* an untrusted CA (the system store does not hold the test CA) */
  assert_null(gbx_connect_tls("localhost", ts_port(srv), NULL, &err));
  assert_int_equal(err.code, GBX_E_TLS);
  /* accepted when the expected name is the certificate's... */
  gbx_tls_opts_t named = {.ca_file = ca, .server_name = "other.example"};
  gbx_client_t *c = tls_connect(other, "127.0.0.1", &named);
  assert_int_equal(gbx_ping(c, &err), 0);
  gbx_close(c);
  /* ...or only when verification is explicitly off */
  gbx_tls_opts_t off = {.no_verify = 1};
  c = tls_connect(other, "localhost", &off);
  assert_int_equal(gbx_ping(c, &err), 0);
  gbx_close(c);
}

/* ---- the CLI ---- */

static void test_cli(void **state) {
  (void)state;
  char out[4096], args[1024];
  snprintf(args, sizeof args, "--tls --ca-file %s queue create cq", ca);
  assert_int_equal(ts_cli(srv, args, out, sizeof out), 0);
  snprintf(args, sizeof args, "--tls --ca-file %s send cq 'hello over tls'", ca);
  assert_int_equal(ts_cli(srv, args, out, sizeof out), 0);
  snprintf(args, sizeof args, "receive cq --delete --ca-file %s --server-name localhost", ca);
  assert_int_equal(ts_cli(srv, args, out, sizeof out), 0);
  assert_non_null(strstr(out, "hello over tls"));
  /* plain TCP to a TLS port fails (exit 1) */
  assert_int_equal(ts_cli(srv, "queue list", out, sizeof out), 1);
  /* the wrong certificate is refused, accepted only with --tls-no-verify */
  snprintf(args, sizeof args, "--tls --ca-file %s --host localhost queue list", ca);
  assert_int_equal(ts_cli(other, args, out, sizeof out), 1);
  assert_int_equal(ts_cli(other, "--tls-no-verify --host localhost queue list", out, sizeof out),
                   0);
}

/* ---- the AWS face over HTTPS ---- */

static void test_https_curl(void **state) {
  (void)state;
  char out[8192], path[300];
  int port = http_port(srv);
  snprintf(path, sizeof path, "%s/curl.out", dir);
  assert_int_equal(sh("curl -sS --max-time 20 --cacert %s -o %s "
                      "'https://localhost:%d/?Action=CreateQueue&QueueName=hq'",
                      ca, path, port),
                   0);
  assert_non_null(strstr(slurp(path, out, sizeof out), "<QueueUrl>"));
  assert_int_equal(sh("curl -sS --max-time 20 --cacert %s -o %s "
                      "'https://localhost:%d/?Action=ListQueues'",
                      ca, path, port),
                   0);
  assert_non_null(strstr(slurp(path, out, sizeof out), "/hq</QueueUrl>"));
  /* plain HTTP to the HTTPS port is refused (no response); the wrong CA too */
  assert_int_not_equal(
      sh("curl -s --max-time 20 -o /dev/null 'http://localhost:%d/?Action=ListQueues'", port), 0);
  assert_int_not_equal(sh("curl -s --max-time 20 -o /dev/null "
                          "'https://localhost:%d/?Action=ListQueues'",
                          port),
                       0);
  gbx_tls_opts_t o = {.ca_file = ca};
  gbx_error_t err;
  gbx_client_t *c = tls_connect(srv, "127.0.0.1", &o);
  assert_int_equal(gbx_queue_delete(c, "hq", &err), 0);
  gbx_close(c);
}

/* TLS and credentials together: the handshake runs inside TLS, and curl's
 * own SigV4 signing (--aws-sigv4) works over HTTPS with the same key. */
static void test_tls_with_credentials(void **state) {
  (void)state;
  char path[300], args[1200], out[8192];
  snprintf(path, sizeof path, "%s/creds.json", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("{\"principals\":[{\"name\":\"tls-user\",\"access_key_id\":\"GBXTLSUSER000001\","
        "\"secret_access_key\":\"tls-user-secret-012345\",\"policy\":{\"Statement\":"
        "[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}}]}",
        f);
  fclose(f);
  assert_int_equal(chmod(path, 0600), 0);
  snprintf(args, sizeof args, "%s --credentials %s", tls_args, path);
  gbx_testserver_t *ts = ts_start(args);
  gbx_tls_opts_t o = {.ca_file = ca};
  gbx_error_t err;
  gbx_client_t *c = tls_connect(ts, "localhost", &o);
  assert_int_equal(gbx_queue_create(c, "sq", NULL, NULL, 0, NULL, &err), GBX_E_UNAUTHENTICATED);
  assert_int_equal(gbx_auth(c, "GBXTLSUSER000001", "tls-user-secret-012345", NULL, &err), 0);
  assert_int_equal(gbx_queue_create(c, "sq", NULL, NULL, 0, NULL, &err), 0);
  gbx_close(c);
  int port = http_port(ts);
  snprintf(path, sizeof path, "%s/curl-sig.out", dir);
  assert_int_equal(sh("curl -sS --max-time 20 --cacert %s -o %s --aws-sigv4 aws:amz:us-east-1:sqs "
                      "--user GBXTLSUSER000001:tls-user-secret-012345 "
                      "'https://localhost:%d/?Action=ListQueues'",
                      ca, path, port),
                   0);
  assert_non_null(strstr(slurp(path, out, sizeof out), "/sq</QueueUrl>"));
  /* unsigned, or signed with a wrong secret: refused with AWS's codes */
  sh("curl -sS --max-time 20 --cacert %s -o %s 'https://localhost:%d/?Action=ListQueues'", ca, path,
     port);
  assert_non_null(strstr(slurp(path, out, sizeof out), "MissingAuthenticationToken"));
  sh("curl -sS --max-time 20 --cacert %s -o %s --aws-sigv4 aws:amz:us-east-1:sqs "
     "--user GBXTLSUSER000001:wrong-secret-0000000 'https://localhost:%d/?Action=ListQueues'",
     ca, path, port);
  assert_non_null(strstr(slurp(path, out, sizeof out), "SignatureDoesNotMatch"));
  ts_free(ts);
}

/* ---- start-up checks ---- */

static void test_bad_cert_refuses_start(void **state) {
  (void)state;
  char args[1024], err[4096];
  snprintf(args, sizeof args, "--tls-cert %s/missing.pem --tls-key %s/localhost.key", dir, dir);
  gbx_testserver_t *t = ts_try_start(args, err, sizeof err);
  assert_null(t);
  assert_non_null(strstr(err, "cannot read the TLS certificate"));
  /* a key that is not the certificate's */
  snprintf(args, sizeof args, "--tls-cert %s/localhost.pem --tls-key %s/other.key", dir, dir);
  t = ts_try_start(args, err, sizeof err);
  assert_null(t);
  assert_non_null(strstr(err, "does not match"));
  /* a file that is no certificate */
  snprintf(args, sizeof args, "--tls-cert %s/localhost.ext --tls-key %s/localhost.key", dir, dir);
  t = ts_try_start(args, err, sizeof err);
  assert_null(t);
  assert_non_null(strstr(err, "cannot load the TLS certificate chain"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lib_blocking),
      cmocka_unit_test(test_lib_pipelined),
      cmocka_unit_test(test_s_client),
      cmocka_unit_test(test_plaintext_client_refused),
      cmocka_unit_test(test_wrong_name_refused),
      cmocka_unit_test(test_cli),
      cmocka_unit_test(test_https_curl),
      cmocka_unit_test(test_bad_cert_refuses_start),
      cmocka_unit_test(test_tls_with_credentials),
      cmocka_unit_test(test_oversized_frame_header),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
