/* fuzz_sigv4.c - libFuzzer target for the SigV4 verifier (server/sigv4.h):
 * the Authorization header parser, the presigned query form, the canonical
 * request (path normalisation, query decoding and sorting, header values).
 *
 * Input layout, fields separated by NUL bytes:
 *   byte 0: flags (bit 0: send an x-amz-content-sha256 header of the
 *           fourth field; bits 1-3: the clock, 0..7 times 10 minutes after
 *           the request's date)
 *   then: Authorization header value (empty: no header) NUL query string
 *         NUL path NUL body (the rest)
 * Missing fields are empty. The header value, query and path are each
 * copied to the end of a buffer that an inaccessible page follows, so a
 * read past one faults.
 *
 * Besides "no crash, no sanitizer report" it aborts when an invariant breaks:
 *   - the status is one of sigv4_status_t and its code and HTTP status agree;
 *   - a refusal carries a message, an acceptance none;
 *   - verifying is a function of the request: a second call agrees;
 *   - no request is accepted when the secret callback knows no key, and an
 *     accepted one is then refused as InvalidClientTokenId.
 * Replayed over tests/fuzz/corpus/fuzz_sigv4 by replay_main.c under ctest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sigv4.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* Inputs longer than this are not fuzzed (the verifier's own target limit
 * is 64 KiB; longer ones only exercise its refusal). */
#define GUARDED_MAX (256u * 1024u)
#define SLOTS       3
#define SUITE_TIME  1440938160 /* 20150830T123600Z, the date the seeds are signed at */

/* Copies s[0..n) so that its last byte sits just before an inaccessible
 * page, in one of SLOTS mappings made once. NULL if one cannot be made. */
static char *guarded(int slot, const char *s, size_t n) {
  static char *region[SLOTS];
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  if (!region[slot]) {
    char *m =
        mmap(NULL, GUARDED_MAX + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + GUARDED_MAX, pg, PROT_NONE) != 0)
      return NULL;
    region[slot] = m;
  }
  char *p = region[slot] + GUARDED_MAX - n;
  if (n)
    memcpy(p, s, n);
  return p;
}

static const char *known(void *ctx, const char *akid, size_t len, size_t *sl) {
  (void)ctx;
  static const char secret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  if (len != 11 || memcmp(akid, "AKIDEXAMPLE", 11) != 0)
    return NULL;
  *sl = sizeof(secret) - 1;
  return secret;
}

static const char *nobody(void *ctx, const char *akid, size_t len, size_t *sl) {
  (void)ctx;
  (void)akid;
  (void)len;
  (void)sl;
  return NULL;
}

/* Next NUL-separated field of [*p, end). */
static const char *field(const char **p, const char *end, size_t *len) {
  const char *s = *p;
  const char *nul = memchr(s, 0, (size_t)(end - s));
  *len = nul ? (size_t)(nul - s) : (size_t)(end - s);
  *p = nul ? nul + 1 : end;
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > GUARDED_MAX)
    return 0;
  uint8_t flags = data[0];
  const char *p = (const char *)data + 1, *end = (const char *)data + size;
  size_t al, ql, pl, bl;
  const char *auth = field(&p, end, &al);
  const char *query = field(&p, end, &ql);
  const char *path = field(&p, end, &pl);
  const char *body = p;
  bl = (size_t)(end - p);

  const char *ga = guarded(0, auth, al), *gq = guarded(1, query, ql), *gp = guarded(2, path, pl);
  if (!ga || !gq || !gp)
    return 0;
  sigv4_hdr_t h[5];
  size_t nh = 0;
  h[nh++] = (sigv4_hdr_t){"Host", 4, "example.amazonaws.com", 21};
  h[nh++] = (sigv4_hdr_t){"X-Amz-Date", 10, "20150830T123600Z", 16};
  h[nh++] = (sigv4_hdr_t){"Content-Type", 12, "application/x-www-form-urlencoded", 33};
  if (al)
    h[nh++] = (sigv4_hdr_t){"Authorization", 13, ga, al};
  if (flags & 1)
    h[nh++] = (sigv4_hdr_t){"x-amz-content-sha256", 20, gp, pl};
  sigv4_req_t rq = {.method = "POST",
                    .path = gp,
                    .path_len = pl,
                    .query = gq,
                    .query_len = ql,
                    .hdrs = h,
                    .nhdrs = nh,
                    .body = (const uint8_t *)body,
                    .body_len = bl};
  int64_t now = SUITE_TIME + 600 * (int64_t)((flags >> 1) & 7);

  sigv4_result_t r1, r2;
  sigv4_status_t s1 = sigv4_verify(&rq, now, known, NULL, &r1);
  CHECK(s1 == r1.status);
  CHECK(s1 >= SIGV4_OK && s1 <= SIGV4_INTERNAL);
  CHECK(memchr(r1.msg, 0, sizeof(r1.msg)) != NULL);
  CHECK((s1 == SIGV4_OK) == (r1.msg[0] == 0));
  CHECK((s1 == SIGV4_OK) == (sigv4_http_status(s1) == 200));
  CHECK((s1 == SIGV4_OK) == (sigv4_code(s1)[0] == 0));
  if (s1 == SIGV4_OK)
    CHECK(strcmp(r1.akid, "AKIDEXAMPLE") == 0);
  CHECK(memchr(r1.akid, 0, sizeof(r1.akid)) != NULL);

  sigv4_status_t s2 = sigv4_verify(&rq, now, known, NULL, &r2);
  CHECK(s2 == s1);
  CHECK(strcmp(r1.msg, r2.msg) == 0);
  CHECK(r1.unsigned_payload == r2.unsigned_payload && r1.presigned == r2.presigned);

  sigv4_status_t s3 = sigv4_verify(&rq, now, nobody, NULL, &r2);
  CHECK(s3 != SIGV4_OK);
  if (s1 == SIGV4_OK)
    CHECK(s3 == SIGV4_UNKNOWN_KEY);
  return 0;
}
